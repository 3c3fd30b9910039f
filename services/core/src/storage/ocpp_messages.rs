//! The recent OCPP messages of each charger, as they went over its socket, for the people
//! who support it. Not a record of what happened (the other tables are): the OCPP service
//! appends without waiting and keeps only the newest of each charger.

use chrono::{DateTime, Utc};
use sqlx::QueryBuilder;

use super::time::Stamp;
use super::{Database, Done, StorageError};

/// The longest body kept, in characters; the rest is cut and `truncated` set.
pub const MAX_BODY_CHARS: usize = 4000;
/// The longest message id kept, in characters.
const MAX_ID_CHARS: usize = 64;

/// A stored message.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct OcppMessage {
    pub id: i64,
    pub charge_point_id: i64,
    /// `in` from the charger, `out` to it.
    pub direction: String,
    /// `CALL`, `CALLRESULT`, `CALLERROR` or `invalid`.
    pub message_type: String,
    pub action: Option<String>,
    pub message_id: Option<String>,
    pub body: String,
    pub truncated: bool,
    pub at: DateTime<Utc>,
}

/// What [`OcppMessages::append`] stores; [`NewOcppMessage::new`] cuts what is too long.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewOcppMessage {
    pub charge_point_id: i64,
    pub direction: &'static str,
    pub message_type: &'static str,
    pub action: Option<String>,
    pub message_id: Option<String>,
    pub body: String,
    pub truncated: bool,
    pub at: DateTime<Utc>,
}

fn cut(text: &str, max: usize) -> (String, bool) {
    match text.char_indices().nth(max) {
        Some((end, _)) => (text[..end].to_owned(), true),
        None => (text.to_owned(), false),
    }
}

impl NewOcppMessage {
    /// A message with its body and id cut to what is kept.
    pub fn new(
        charge_point_id: i64,
        direction: &'static str,
        message_type: &'static str,
        action: Option<&str>,
        message_id: Option<&str>,
        body: &str,
        at: DateTime<Utc>,
    ) -> NewOcppMessage {
        let (body, truncated) = cut(body, MAX_BODY_CHARS);
        NewOcppMessage {
            charge_point_id,
            direction,
            message_type,
            action: action.map(|action| cut(action, MAX_ID_CHARS).0),
            message_id: message_id.map(|id| cut(id, MAX_ID_CHARS).0),
            body,
            truncated,
            at,
        }
    }
}

/// The `ocpp_messages` table; from [`Database::ocpp_messages`].
#[derive(Debug, Clone, Copy)]
pub struct OcppMessages<'a> {
    pub(super) db: &'a Database,
}

impl Database {
    pub fn ocpp_messages(&self) -> OcppMessages<'_> {
        OcppMessages { db: self }
    }
}

impl OcppMessages<'_> {
    /// Appends messages in one statement (of any chargers).
    pub async fn append(&self, messages: &[NewOcppMessage]) -> Result<(), StorageError> {
        if messages.is_empty() {
            return Ok(());
        }
        with_pool!(self.db, |pool| {
            let mut query = QueryBuilder::new(
                "INSERT INTO ocpp_messages (charge_point_id, direction, message_type, action, \
                 message_id, body, truncated, at) ",
            );
            query.push_values(messages, |mut row, message| {
                row.push_bind(message.charge_point_id)
                    .push_bind(message.direction)
                    .push_bind(message.message_type)
                    .push_bind(message.action.as_deref())
                    .push_bind(message.message_id.as_deref())
                    .push_bind(&message.body)
                    .push_bind(message.truncated)
                    .push_bind(Stamp::new(message.at));
            });
            query.build().execute(pool).await.map(|_| ())
        })
        .map_err(|err| {
            self.db.fail_child(
                err,
                "OCPP message",
                format!("{} messages", messages.len()),
                "charge point",
                "of a message",
            )
        })
    }

    /// Deletes a charger's messages beyond its newest `keep`; returns how many went.
    pub async fn trim(&self, charge_point_id: i64, keep: u32) -> Result<u64, StorageError> {
        let fail = |err| {
            self.db.fail(
                err,
                "OCPP message",
                format!("of charge point id {charge_point_id}"),
            )
        };
        let oldest_kept_before = with_pool!(self.db, |pool| {
            sqlx::query_scalar::<_, i64>(
                "SELECT id FROM ocpp_messages WHERE charge_point_id = ? \
                 ORDER BY id DESC LIMIT 1 OFFSET ?",
            )
            .bind(charge_point_id)
            .bind(i64::from(keep))
            .fetch_optional(pool)
            .await
        })
        .map_err(fail)?;
        let Some(newest_dropped) = oldest_kept_before else {
            return Ok(0);
        };
        let done = with_pool!(self.db, |pool| {
            sqlx::query("DELETE FROM ocpp_messages WHERE charge_point_id = ? AND id <= ?")
                .bind(charge_point_id)
                .bind(newest_dropped)
                .execute(pool)
                .await
                .map(Done::from)
        })
        .map_err(fail)?;
        Ok(done.rows_affected)
    }

    /// A charger's newest `limit` messages, newest first.
    pub async fn recent(
        &self,
        charge_point_id: i64,
        limit: u32,
    ) -> Result<Vec<OcppMessage>, StorageError> {
        with_pool!(self.db, |pool| {
            sqlx::query_as::<_, OcppMessage>(
                "SELECT id, charge_point_id, direction, message_type, action, message_id, body, \
                 truncated, at FROM ocpp_messages WHERE charge_point_id = ? \
                 ORDER BY id DESC LIMIT ?",
            )
            .bind(charge_point_id)
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await
        })
        .map_err(|err| {
            self.db.fail(
                err,
                "OCPP message",
                format!("of charge point id {charge_point_id}"),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_bodies_and_ids_are_cut_on_character_boundaries() {
        let body = "é".repeat(MAX_BODY_CHARS + 3);
        let message = NewOcppMessage::new(
            1,
            "in",
            "CALL",
            Some("Heartbeat"),
            Some(&"x".repeat(70)),
            &body,
            Utc::now(),
        );
        assert!(message.truncated);
        assert_eq!(message.body.chars().count(), MAX_BODY_CHARS);
        assert_eq!(message.message_id.map(|id| id.len()), Some(64));
        let short = NewOcppMessage::new(
            1,
            "out",
            "CALLRESULT",
            None,
            None,
            "[3,\"1\",{}]",
            Utc::now(),
        );
        assert!(!short.truncated);
    }
}

//! Cursor pagination: a list answers `{"items": [...], "next_cursor": ...}`, and the client
//! passes `next_cursor` back as `cursor` for the next page.
//!
//! A cursor is the position of the last item of a page (its sort key and id), in base64url
//! JSON: opaque to clients, stable under inserts (no offset that shifts), and checked when it
//! comes back, so a cursor edited by hand or taken from another list gets a 422 naming
//! `cursor` instead of a wrong page.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::FieldError;

/// Items per page when the client asks for no `limit`.
pub const DEFAULT_LIMIT: u32 = 50;
/// The most items a page may hold.
pub const MAX_LIMIT: u32 = 200;

/// One page of a list.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

/// The `limit` query parameter: `DEFAULT_LIMIT` when absent, else 1..=`MAX_LIMIT`.
pub fn limit(raw: Option<&str>, errors: &mut Vec<FieldError>) -> u32 {
    let Some(raw) = raw else {
        return DEFAULT_LIMIT;
    };
    match raw.trim().parse::<u32>() {
        Ok(limit) if (1..=MAX_LIMIT).contains(&limit) => limit,
        _ => {
            errors.push(FieldError::new(
                "limit",
                format!("must be a whole number from 1 to {MAX_LIMIT}"),
            ));
            DEFAULT_LIMIT
        }
    }
}

/// What a cursor holds: which list it belongs to, and the position.
#[derive(Debug, Serialize, Deserialize)]
struct Envelope<P> {
    list: String,
    at: P,
}

/// The cursor for the position `at` in the list named `list`.
pub fn encode<P: Serialize>(list: &str, at: &P) -> String {
    let envelope = Envelope {
        list: list.to_owned(),
        at,
    };
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(&envelope).unwrap_or_default())
}

/// The position in a `cursor` query parameter of the list named `list`; `None` when absent;
/// a field error when it is not a cursor of that list.
pub fn decode<P: DeserializeOwned>(
    list: &str,
    raw: Option<&str>,
    errors: &mut Vec<FieldError>,
) -> Option<P> {
    let raw = raw?;
    let envelope = URL_SAFE_NO_PAD
        .decode(raw.trim())
        .ok()
        .and_then(|bytes| serde_json::from_slice::<Envelope<P>>(&bytes).ok())
        .filter(|envelope| envelope.list == list);
    match envelope {
        Some(envelope) => Some(envelope.at),
        None => {
            errors.push(FieldError::new(
                "cursor",
                "is not a cursor of this list; pass the next_cursor of the previous page as it is",
            ));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_belong_to_one_list() {
        let mut errors = Vec::new();
        let cursor = encode("sessions", &41_i64);
        assert_eq!(
            decode::<i64>("sessions", Some(&cursor), &mut errors),
            Some(41)
        );
        assert!(errors.is_empty());
        assert_eq!(decode::<i64>("cards", Some(&cursor), &mut errors), None);
        assert_eq!(decode::<i64>("sessions", Some("%%%"), &mut errors), None);
        assert_eq!(errors.len(), 2);
        assert!(errors.iter().all(|error| error.field == "cursor"));
        assert_eq!(decode::<i64>("sessions", None, &mut errors), None);
        assert_eq!(errors.len(), 2);
    }

    #[test]
    fn limits_default_and_are_bounded() {
        let mut errors = Vec::new();
        assert_eq!(limit(None, &mut errors), DEFAULT_LIMIT);
        assert_eq!(limit(Some("7"), &mut errors), 7);
        assert!(errors.is_empty());
        for bad in ["0", "201", "-1", "ten"] {
            limit(Some(bad), &mut errors);
        }
        assert_eq!(errors.len(), 4);
    }
}

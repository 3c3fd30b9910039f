//! How timestamps are written, so both backends store the same instant the same way.
//!
//! Rows read timestamps back as `DateTime<Utc>` directly; writes go through [`Stamp`], which
//! cuts the value to whole milliseconds (what `DATETIME(3)` holds; MySQL would round and
//! MariaDB truncate) and, on SQLite, writes a fixed-width RFC 3339 text. sqlx's own SQLite
//! encoding leaves out zero fractions, and `…:00Z` sorts after `…:00.5Z` as text, which would
//! break `ORDER BY` and range queries on timestamp columns.

use chrono::{DateTime, NaiveDateTime, SubsecRound, Utc};
use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::{Encode, MySql, Sqlite, Type};

/// A timestamp as bound to a query.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Stamp(DateTime<Utc>);

impl Stamp {
    pub(crate) fn new(at: DateTime<Utc>) -> Stamp {
        Stamp(at.trunc_subsecs(3))
    }

    pub(crate) fn now() -> Stamp {
        Stamp::new(Utc::now())
    }

    pub(crate) fn opt(at: Option<DateTime<Utc>>) -> Option<Stamp> {
        at.map(Stamp::new)
    }

    fn sqlite_text(&self) -> String {
        self.0.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
    }
}

// Sent as DATETIME: sqlx would send `DateTime<Utc>` as TIMESTAMP, which MariaDB turns into
// NULL after 2038-01-19.
impl Type<MySql> for Stamp {
    fn type_info() -> <MySql as sqlx::Database>::TypeInfo {
        <NaiveDateTime as Type<MySql>>::type_info()
    }
}

impl<'q> Encode<'q, MySql> for Stamp {
    fn encode_by_ref(
        &self,
        buf: &mut <MySql as sqlx::Database>::ArgumentBuffer<'q>,
    ) -> Result<IsNull, BoxDynError> {
        <NaiveDateTime as Encode<'q, MySql>>::encode(self.0.naive_utc(), buf)
    }
}

impl Type<Sqlite> for Stamp {
    fn type_info() -> <Sqlite as sqlx::Database>::TypeInfo {
        <DateTime<Utc> as Type<Sqlite>>::type_info()
    }
}

impl<'q> Encode<'q, Sqlite> for Stamp {
    fn encode_by_ref(
        &self,
        buf: &mut <Sqlite as sqlx::Database>::ArgumentBuffer<'q>,
    ) -> Result<IsNull, BoxDynError> {
        <String as Encode<'q, Sqlite>>::encode(self.sqlite_text(), buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn sqlite_text_has_a_fixed_width_so_it_sorts_in_time_order() {
        let whole = Utc
            .with_ymd_and_hms(2025, 3, 1, 10, 0, 0)
            .single()
            .expect("valid");
        let later = whole + chrono::Duration::microseconds(500_999);
        let (a, b) = (
            Stamp::new(whole).sqlite_text(),
            Stamp::new(later).sqlite_text(),
        );
        assert_eq!(a, "2025-03-01T10:00:00.000Z");
        assert_eq!(b, "2025-03-01T10:00:00.500Z");
        assert!(a < b);
    }
}

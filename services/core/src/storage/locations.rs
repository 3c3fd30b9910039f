//! Sites where chargers stand (OCPI Location): address, coordinates and time zone.

use chrono::{DateTime, Utc};

use super::time::Stamp;
use super::{Database, StorageError};
use crate::domain::CountryCode;

/// A stored location.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct Location {
    pub id: i64,
    /// Unique, compared without regard to letter case.
    pub name: String,
    pub address: String,
    pub city: String,
    pub postal_code: String,
    #[sqlx(try_from = "String")]
    pub country: CountryCode,
    pub latitude: f64,
    pub longitude: f64,
    /// IANA time zone such as `Europe/Madrid`.
    pub time_zone: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// What [`Locations::create`] stores.
#[derive(Debug, Clone, PartialEq)]
pub struct NewLocation {
    pub name: String,
    pub address: String,
    pub city: String,
    pub postal_code: String,
    pub country: CountryCode,
    pub latitude: f64,
    pub longitude: f64,
    pub time_zone: String,
}

macro_rules! select {
    ($rest:literal) => {
        concat!(
            "SELECT id, name, address, city, postal_code, country, latitude, longitude, ",
            "time_zone, created_at, updated_at FROM locations ",
            $rest
        )
    };
}

/// The `locations` table; from [`Database::locations`].
#[derive(Debug, Clone, Copy)]
pub struct Locations<'a> {
    pub(super) db: &'a Database,
}

impl Locations<'_> {
    /// Stores a new location and returns its id; `Conflict` when the name is taken.
    pub async fn create(&self, new: &NewLocation) -> Result<i64, StorageError> {
        let now = Stamp::now();
        let done = with_pool!(self.db, |pool| {
            sqlx::query(
                "INSERT INTO locations (name, address, city, postal_code, country, latitude, \
                 longitude, time_zone, created_at, updated_at) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(&new.name)
            .bind(&new.address)
            .bind(&new.city)
            .bind(&new.postal_code)
            .bind(new.country.as_str())
            .bind(new.latitude)
            .bind(new.longitude)
            .bind(&new.time_zone)
            .bind(now)
            .bind(now)
            .execute(pool)
            .await
            .map(super::Done::from)
        })
        .map_err(|err| {
            self.db
                .fail(err, "location", format!("name `{}`", new.name))
        })?;
        Ok(done.last_id)
    }

    /// The location with this id, or `NotFound`.
    pub async fn get(&self, id: i64) -> Result<Location, StorageError> {
        let found = with_pool!(self.db, |pool| {
            sqlx::query_as::<_, Location>(select!("WHERE id = ?"))
                .bind(id)
                .fetch_optional(pool)
                .await
        })
        .map_err(|err| self.db.fail(err, "location", format!("id {id}")))?;
        found.ok_or_else(|| StorageError::not_found("location", format!("id {id}")))
    }

    /// The location with this name (any letter case), if there is one.
    pub async fn find_by_name(&self, name: &str) -> Result<Option<Location>, StorageError> {
        with_pool!(self.db, |pool| {
            sqlx::query_as::<_, Location>(select!("WHERE name = ?"))
                .bind(name)
                .fetch_optional(pool)
                .await
        })
        .map_err(|err| self.db.fail(err, "location", format!("name `{name}`")))
    }

    /// Every location, by name.
    pub async fn list(&self) -> Result<Vec<Location>, StorageError> {
        with_pool!(self.db, |pool| {
            sqlx::query_as::<_, Location>(select!("ORDER BY name, id"))
                .fetch_all(pool)
                .await
        })
        .map_err(|err| self.db.fail(err, "location", "list"))
    }
}

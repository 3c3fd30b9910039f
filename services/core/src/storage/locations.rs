//! Sites where chargers stand (OCPI Location): address, coordinates, time zone, opening hours
//! and a tariff text; and the search drivers find them with.
//!
//! The search runs in SQL on both backends with keyset pagination: by id, or for a search
//! around a point by an equirectangular distance (exact enough within the 100 km a search
//! may span) computed in the query, so that a page never needs the rows before it.

use chrono::{DateTime, Utc};
use sqlx::QueryBuilder;

use super::time::Stamp;
use super::{Database, StorageError};
use crate::domain::{ConnectorFormat, CountryCode, PowerType};

/// Metres per degree of latitude (and of longitude at the equator), on a sphere of the
/// Earth's mean radius.
pub const METRES_PER_DEGREE: f64 = 6_371_008.8 * std::f64::consts::PI / 180.0;

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
    /// OCPI Hours as JSON text, when known.
    pub opening_hours: Option<String>,
    /// What charging costs here in words, such as `0.39 EUR/kWh`, when known.
    pub tariff_text: Option<String>,
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
    pub opening_hours: Option<String>,
    pub tariff_text: Option<String>,
}

/// Where a [`LocationSearch`] looks.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SearchArea {
    /// Everywhere, by id.
    Anywhere,
    /// Inside a latitude/longitude box (not across the antimeridian), by id.
    Box {
        min_latitude: f64,
        max_latitude: f64,
        min_longitude: f64,
        max_longitude: f64,
    },
    /// Within `radius_m` of a point, nearest first.
    Near {
        latitude: f64,
        longitude: f64,
        radius_m: f64,
    },
}

/// Where the previous page of a search ended.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SearchPosition {
    /// The last location's sort key: its squared distance in scaled degrees for
    /// [`SearchArea::Near`], else unused (0).
    pub key: f64,
    pub id: i64,
}

/// A search for locations; every filter narrows it to locations with at least one accepted
/// charger's connector that passes all of them.
#[derive(Debug, Clone, PartialEq)]
pub struct LocationSearch {
    pub area: SearchArea,
    /// Connectors of at least this power.
    pub min_power_w: Option<i32>,
    /// Connectors of one of these standards (OCPI ConnectorType); empty means any.
    pub connector_types: Vec<String>,
    /// Only EVSEs whose last reported status is `Available`.
    pub available: bool,
    pub after: Option<SearchPosition>,
    pub limit: u32,
}

/// A location a search found, with where it stands in the order.
#[derive(Debug, Clone, PartialEq)]
pub struct LocationHit {
    pub location: Location,
    pub position: SearchPosition,
}

/// One connector of an accepted charger at a location, with its EVSE's status; an EVSE
/// without connectors appears once with the connector fields unset.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct EquipmentRow {
    pub location_id: Option<i64>,
    pub charge_point_id: i64,
    pub identity: String,
    pub evse_number: i32,
    pub evse_status: String,
    pub connector_number: Option<i32>,
    pub standard: Option<String>,
    pub format: Option<String>,
    pub power_type: Option<String>,
    pub max_power_w: Option<i32>,
}

impl EquipmentRow {
    pub fn connector_format(&self) -> Option<ConnectorFormat> {
        self.format.as_deref()?.parse().ok()
    }

    pub fn connector_power_type(&self) -> Option<PowerType> {
        self.power_type.as_deref()?.parse().ok()
    }
}

macro_rules! select {
    ($rest:literal) => {
        concat!(
            "SELECT id, name, address, city, postal_code, country, latitude, longitude, ",
            "time_zone, created_at, updated_at, opening_hours, tariff_text FROM locations ",
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
                 longitude, time_zone, opening_hours, tariff_text, created_at, updated_at) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(&new.name)
            .bind(&new.address)
            .bind(&new.city)
            .bind(&new.postal_code)
            .bind(new.country.as_str())
            .bind(new.latitude)
            .bind(new.longitude)
            .bind(&new.time_zone)
            .bind(new.opening_hours.as_deref())
            .bind(new.tariff_text.as_deref())
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

    /// Sets what drivers are told about opening hours and prices; `NotFound` when there is no
    /// such location.
    pub async fn set_driver_information(
        &self,
        id: i64,
        opening_hours: Option<&str>,
        tariff_text: Option<&str>,
    ) -> Result<(), StorageError> {
        let done = with_pool!(self.db, |pool| {
            sqlx::query(
                "UPDATE locations SET opening_hours = ?, tariff_text = ?, updated_at = ? \
                 WHERE id = ?",
            )
            .bind(opening_hours)
            .bind(tariff_text)
            .bind(Stamp::now())
            .bind(id)
            .execute(pool)
            .await
            .map(super::Done::from)
        })
        .map_err(|err| self.db.fail(err, "location", format!("id {id}")))?;
        super::found_one(done, "location", id)
    }

    /// One page of a search, in its order. Every value is bound, never spliced into the SQL.
    pub async fn search(&self, search: &LocationSearch) -> Result<Vec<LocationHit>, StorageError> {
        let rows = with_pool!(self.db, |pool| {
            let mut query = QueryBuilder::new("SELECT * FROM (SELECT l.*, ");
            let near = match search.area {
                SearchArea::Near {
                    latitude,
                    longitude,
                    radius_m,
                } => Some((latitude, longitude, radius_m)),
                _ => None,
            };
            match near {
                Some((latitude, longitude, _)) => {
                    // Longitude degrees shrink with the cosine of the latitude.
                    let scale = latitude.to_radians().cos();
                    query.push("((l.latitude - ");
                    query.push_bind(latitude);
                    query.push(") * (l.latitude - ");
                    query.push_bind(latitude);
                    query.push(") + (l.longitude - ");
                    query.push_bind(longitude);
                    query.push(") * (l.longitude - ");
                    query.push_bind(longitude);
                    query.push(") * ");
                    query.push_bind(scale * scale);
                    query.push(") AS sort_key");
                }
                None => {
                    // A literal 0.0 would be DECIMAL on MySQL; a column times 0 is DOUBLE on
                    // both backends.
                    query.push("l.latitude * 0 AS sort_key");
                }
            }
            query.push(" FROM locations l WHERE 1 = 1");
            let bounds = match search.area {
                SearchArea::Anywhere => None,
                SearchArea::Box {
                    min_latitude,
                    max_latitude,
                    min_longitude,
                    max_longitude,
                } => Some((min_latitude, max_latitude, min_longitude, max_longitude)),
                SearchArea::Near {
                    latitude,
                    longitude,
                    radius_m,
                } => {
                    let dlat = radius_m / METRES_PER_DEGREE;
                    let dlon = dlat / latitude.to_radians().cos().max(1e-6);
                    Some((
                        latitude - dlat,
                        latitude + dlat,
                        longitude - dlon,
                        longitude + dlon,
                    ))
                }
            };
            if let Some((min_lat, max_lat, min_lon, max_lon)) = bounds {
                query.push(" AND l.latitude BETWEEN ");
                query.push_bind(min_lat);
                query.push(" AND ");
                query.push_bind(max_lat);
                query.push(" AND l.longitude BETWEEN ");
                query.push_bind(min_lon);
                query.push(" AND ");
                query.push_bind(max_lon);
            }
            let filtered = search.min_power_w.is_some()
                || !search.connector_types.is_empty()
                || search.available;
            if filtered {
                query.push(
                    " AND EXISTS (SELECT 1 FROM charge_points cp \
                     JOIN evses e ON e.charge_point_id = cp.id \
                     JOIN connectors c ON c.evse_id = e.id \
                     WHERE cp.location_id = l.id AND cp.registration_status = 'Accepted'",
                );
                if let Some(power) = search.min_power_w {
                    query.push(" AND c.max_power_w >= ");
                    query.push_bind(power);
                }
                if !search.connector_types.is_empty() {
                    query.push(" AND c.standard IN (");
                    let mut list = query.separated(", ");
                    for standard in &search.connector_types {
                        list.push_bind(standard.as_str());
                    }
                    query.push(")");
                }
                if search.available {
                    query.push(" AND e.status = 'Available'");
                }
                query.push(")");
            }
            query.push(") AS found WHERE 1 = 1");
            if let Some((_, _, radius_m)) = near {
                let radius_degrees = radius_m / METRES_PER_DEGREE;
                query.push(" AND sort_key <= ");
                query.push_bind(radius_degrees * radius_degrees);
            }
            if let Some(after) = search.after {
                if near.is_some() {
                    query.push(" AND (sort_key > ");
                    query.push_bind(after.key);
                    query.push(" OR (sort_key = ");
                    query.push_bind(after.key);
                    query.push(" AND id > ");
                    query.push_bind(after.id);
                    query.push("))");
                } else {
                    query.push(" AND id > ");
                    query.push_bind(after.id);
                }
            }
            query.push(if near.is_some() {
                " ORDER BY sort_key, id LIMIT "
            } else {
                " ORDER BY id LIMIT "
            });
            query.push_bind(i64::from(search.limit));
            query.build_query_as::<SearchRow>().fetch_all(pool).await
        })
        .map_err(|err| self.db.fail(err, "location", "search"))?;
        Ok(rows
            .into_iter()
            .map(|row| LocationHit {
                position: SearchPosition {
                    key: row.sort_key,
                    id: row.location.id,
                },
                location: row.location,
            })
            .collect())
    }

    /// The accepted chargers' EVSEs and connectors at these locations, ordered by location,
    /// charger, EVSE and connector.
    pub async fn equipment(&self, location_ids: &[i64]) -> Result<Vec<EquipmentRow>, StorageError> {
        if location_ids.is_empty() {
            return Ok(Vec::new());
        }
        with_pool!(self.db, |pool| {
            let mut query = QueryBuilder::new(EQUIPMENT_SELECT);
            query.push(" AND cp.location_id IN (");
            let mut list = query.separated(", ");
            for id in location_ids {
                list.push_bind(*id);
            }
            query.push(")");
            query.push(EQUIPMENT_ORDER);
            query.build_query_as::<EquipmentRow>().fetch_all(pool).await
        })
        .map_err(|err| self.db.fail(err, "location", "equipment"))
    }
}

/// The start of [`Locations::equipment`]'s query, shared with the charger page's.
pub(super) const EQUIPMENT_SELECT: &str = "SELECT cp.location_id AS location_id, cp.id AS charge_point_id, cp.identity AS identity, \
     e.evse_number AS evse_number, e.status AS evse_status, \
     c.connector_number AS connector_number, c.standard AS standard, c.format AS format, \
     c.power_type AS power_type, c.max_power_w AS max_power_w \
     FROM charge_points cp JOIN evses e ON e.charge_point_id = cp.id \
     LEFT JOIN connectors c ON c.evse_id = e.id \
     WHERE cp.registration_status = 'Accepted'";
pub(super) const EQUIPMENT_ORDER: &str =
    " ORDER BY cp.location_id, cp.id, e.evse_number, c.connector_number";

#[derive(sqlx::FromRow)]
struct SearchRow {
    #[sqlx(flatten)]
    location: Location,
    sort_key: f64,
}

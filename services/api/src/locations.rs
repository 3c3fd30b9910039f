//! Where drivers can charge: location search (a box, or around a point), a location with its
//! chargers, and a charger by its id (what the QR sticker on it leads to), each EVSE with its
//! live availability.
//!
//! An EVSE is available when its charger's last StatusNotification said `Available` and the
//! charger is connected now (the fleet's directory of sockets, one round trip per page).
//! Only accepted chargers are shown; pending or rejected ones do not exist for the public.

use std::collections::{BTreeSet, HashMap};

use axum::extract::{Path, State};
use serde::{Deserialize, Serialize};
use voltfleet_core::context::AppContext;
use voltfleet_core::domain::{ChargePointId, RegistrationStatus};
use voltfleet_core::ocpp::commands::session_entry;
use voltfleet_core::storage::locations::METRES_PER_DEGREE;
use voltfleet_core::storage::{EquipmentRow, Location, LocationSearch, SearchArea, SearchPosition};

use crate::auth::{Caller, Scope};
use crate::error::{ApiError, ApiJson, FieldError, Problem};
use crate::pagination::{self, Page};
use crate::query::{self, ApiQuery};

/// The default and largest radius of a search around a point, in metres.
pub const DEFAULT_RADIUS_M: f64 = 10_000.0;
pub const MAX_RADIUS_M: f64 = 100_000.0;
/// Connector types one search may name.
const MAX_CONNECTOR_TYPES: usize = 16;
/// The status that makes an EVSE available (OCPP 1.6 ChargePointStatus).
const AVAILABLE: &str = "Available";

/// `GET /api/v1/locations`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SearchParams {
    /// `min_lon,min_lat,max_lon,max_lat`.
    pub bbox: Option<String>,
    /// `lat,lon`: nearest first, within `radius_m`.
    pub near: Option<String>,
    /// Metres around `near`, 1 to 100000 (default 10000).
    pub radius_m: Option<String>,
    /// Only locations with a connector of at least this power, in kW.
    pub min_power_kw: Option<String>,
    /// Comma-separated OCPI connector types, such as `IEC_62196_T2,IEC_62196_T2_COMBO`.
    pub connector_type: Option<String>,
    /// `true`: only locations with an EVSE available now.
    pub available: Option<String>,
    /// 1 to 200 (default 50).
    pub limit: Option<String>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// When a location is open (OCPI Hours).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OpeningHours {
    pub twentyfourseven: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub regular_hours: Vec<RegularHours>,
}

/// One opening period of a weekday, in the location's time zone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RegularHours {
    /// 1 = Monday … 7 = Sunday.
    pub weekday: u8,
    /// `HH:MM`.
    pub period_begin: String,
    /// `HH:MM`.
    pub period_end: String,
}

/// A location as a search finds it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct LocationView {
    pub id: i64,
    pub name: String,
    pub address: String,
    pub city: String,
    pub postal_code: String,
    /// ISO 3166-1 alpha-3.
    pub country: String,
    pub latitude: f64,
    pub longitude: f64,
    /// IANA time zone, such as `Europe/Madrid`.
    pub time_zone: String,
    pub opening_hours: Option<OpeningHours>,
    pub tariff_text: Option<String>,
    /// Metres from `near`, only in a search around a point.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub distance_m: Option<u64>,
    pub evses_total: u32,
    pub evses_available: u32,
    /// The most powerful connector, in W.
    pub max_power_w: Option<i32>,
    pub connector_types: Vec<String>,
}

/// A location with its chargers.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct LocationDetail {
    #[serde(flatten)]
    pub location: LocationView,
    pub chargers: Vec<ChargerView>,
}

/// A location as a charger names it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct LocationSummary {
    pub id: i64,
    pub name: String,
    pub address: String,
    pub city: String,
}

/// A charger with its EVSEs.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ChargerView {
    /// The OCPP charge point id, such as `DEMO-CP-1`.
    pub identity: String,
    pub location: Option<LocationSummary>,
    /// Connected to the central system now.
    pub online: bool,
    pub evses: Vec<EvseView>,
}

/// One EVSE (OCPP 1.6 connector) of a charger.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct EvseView {
    /// The number to start charging on.
    pub evse: i32,
    /// The charger's last report, such as `Available`, `Charging` or `Faulted`; `Unknown`
    /// until it sends one.
    pub status: String,
    /// `Available` and the charger online.
    pub available: bool,
    pub connectors: Vec<ConnectorView>,
}

/// One plug or socket.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ConnectorView {
    pub connector: i32,
    /// OCPI ConnectorType such as `IEC_62196_T2`.
    pub standard: String,
    /// `SOCKET` or `CABLE`.
    pub format: String,
    /// `AC_1_PHASE`, `AC_3_PHASE` or `DC`.
    pub power_type: String,
    pub max_power_w: Option<i32>,
}

/// The search position a cursor holds. The sort key travels as its bits: a decimal float
/// read back from JSON may land one unit in the last place off, and the next page would
/// then repeat or skip a location.
#[derive(Debug, Serialize, Deserialize)]
struct Position {
    key_bits: u64,
    id: i64,
}

/// Location search.
#[utoipa::path(
    get,
    path = "/api/v1/locations",
    tag = "locations",
    params(SearchParams),
    responses(
        (status = 200, description = "One page of locations.", body = Page<LocationView>),
        (status = 304, description = "Unchanged since the ETag in If-None-Match."),
        (status = 422, description = "Invalid parameters, each named in `errors`.", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limit used up; see Retry-After.", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn search(
    State(ctx): State<AppContext>,
    caller: Caller,
    ApiQuery(params): ApiQuery<SearchParams>,
) -> Result<ApiJson<Page<LocationView>>, ApiError> {
    caller.allow_public(Scope::LocationsRead)?;
    let (search, near) = parse_search(&params)?;
    let limit = search.limit;
    // One more than a page tells whether another page follows.
    let mut hits = ctx
        .db
        .locations()
        .search(&LocationSearch {
            limit: limit + 1,
            ..search.clone()
        })
        .await?;
    let more = hits.len() > limit as usize;
    hits.truncate(limit as usize);
    let next_cursor = more.then(|| hits.last()).flatten().map(|last| {
        pagination::encode(
            "locations",
            &Position {
                key_bits: last.position.key.to_bits(),
                id: last.position.id,
            },
        )
    });
    let locations: Vec<Location> = hits.into_iter().map(|hit| hit.location).collect();
    let ids: Vec<i64> = locations.iter().map(|location| location.id).collect();
    let equipment = ctx.db.locations().equipment(&ids).await?;
    let online = online_chargers(&ctx, &equipment).await?;
    let items = locations
        .into_iter()
        .map(|location| {
            let rows: Vec<&EquipmentRow> = equipment
                .iter()
                .filter(|row| row.location_id == Some(location.id))
                .collect();
            let distance_m = near.map(|(lat, lon)| {
                distance_m(lat, lon, location.latitude, location.longitude).round() as u64
            });
            location_view(location, &rows, &online, distance_m)
        })
        // The database knows the last status each charger reported, not whether it is still
        // connected; a charger that went offline while Available is not available now. Such
        // a page is shorter, and the cursor still continues after the last location read.
        .filter(|view: &LocationView| !search.available || view.evses_available > 0)
        .collect();
    Ok(ApiJson(Page { items, next_cursor }))
}

/// A location with its chargers.
#[utoipa::path(
    get,
    path = "/api/v1/locations/{id}",
    tag = "locations",
    params(("id" = i64, Path, description = "The location's id")),
    responses(
        (status = 200, description = "The location.", body = LocationDetail),
        (status = 304, description = "Unchanged since the ETag in If-None-Match."),
        (status = 404, description = "No such location.", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn location(
    State(ctx): State<AppContext>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<ApiJson<LocationDetail>, ApiError> {
    caller.allow_public(Scope::LocationsRead)?;
    let id = id
        .parse::<i64>()
        .map_err(|_| ApiError::NotFound(format!("location `{id}`")))?;
    let location = ctx.db.locations().get(id).await?;
    let equipment = ctx.db.locations().equipment(&[id]).await?;
    let online = online_chargers(&ctx, &equipment).await?;
    let rows: Vec<&EquipmentRow> = equipment.iter().collect();
    let summary = LocationSummary {
        id: location.id,
        name: location.name.clone(),
        address: location.address.clone(),
        city: location.city.clone(),
    };
    let chargers = charger_views(&rows, &online, |_| Some(summary.clone()));
    Ok(ApiJson(LocationDetail {
        location: location_view(location, &rows, &online, None),
        chargers,
    }))
}

/// A charger by its id, as the QR code on it names it.
#[utoipa::path(
    get,
    path = "/api/v1/chargers/{identity}",
    tag = "locations",
    params(("identity" = String, Path, description = "The OCPP charge point id, such as DEMO-CP-1")),
    responses(
        (status = 200, description = "The charger.", body = ChargerView),
        (status = 304, description = "Unchanged since the ETag in If-None-Match."),
        (status = 404, description = "No such charger.", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn charger(
    State(ctx): State<AppContext>,
    caller: Caller,
    Path(identity): Path<String>,
) -> Result<ApiJson<ChargerView>, ApiError> {
    caller.allow_public(Scope::LocationsRead)?;
    Ok(ApiJson(charger_view(&ctx, &identity).await?))
}

/// The public view of a charger; 404 when unknown or not accepted.
pub async fn charger_view(ctx: &AppContext, identity: &str) -> Result<ChargerView, ApiError> {
    let not_found = || ApiError::NotFound(format!("charger `{identity}`"));
    let id = identity.parse::<ChargePointId>().map_err(|_| not_found())?;
    let charge_point = ctx
        .db
        .charge_points()
        .find_by_identity(&id)
        .await?
        .filter(|cp| cp.registration_status == RegistrationStatus::Accepted)
        .ok_or_else(not_found)?;
    let location = match charge_point.location_id {
        Some(location_id) => {
            let location = ctx.db.locations().get(location_id).await?;
            Some(LocationSummary {
                id: location.id,
                name: location.name,
                address: location.address,
                city: location.city,
            })
        }
        None => None,
    };
    let equipment = ctx.db.charge_points().equipment(charge_point.id).await?;
    let online = online_chargers(ctx, &equipment).await?;
    let rows: Vec<&EquipmentRow> = equipment.iter().collect();
    let mut views = charger_views(&rows, &online, |_| location.clone());
    Ok(views.pop().unwrap_or(ChargerView {
        identity: charge_point.identity.to_string(),
        location,
        online: online.contains(charge_point.identity.as_str()),
        evses: Vec::new(),
    }))
}

/// Reads and checks the search parameters: the search, and the point of a `near` search.
fn parse_search(params: &SearchParams) -> Result<(LocationSearch, Option<(f64, f64)>), ApiError> {
    let mut errors = Vec::new();
    let mut near_point = None;
    let area = match (&params.bbox, &params.near) {
        (Some(_), Some(_)) => {
            errors.push(FieldError::new(
                "near",
                "cannot be combined with bbox; give one of them",
            ));
            SearchArea::Anywhere
        }
        (Some(bbox), None) => query::numbers(
            "bbox",
            bbox,
            4,
            "min_lon,min_lat,max_lon,max_lat",
            &mut errors,
        )
        .and_then(|v| bbox_area(v[0], v[1], v[2], v[3], &mut errors))
        .unwrap_or(SearchArea::Anywhere),
        (None, Some(near)) => {
            let point = query::numbers("near", near, 2, "lat,lon", &mut errors).and_then(|v| {
                let (lat, lon) = (v[0], v[1]);
                if !(-90.0..=90.0).contains(&lat) || !(-180.0..=180.0).contains(&lon) {
                    errors.push(FieldError::new(
                        "near",
                        "latitude must be within -90..90 and longitude within -180..180",
                    ));
                    None
                } else {
                    Some((lat, lon))
                }
            });
            let radius_m = match &params.radius_m {
                Some(raw) => query::number("radius_m", raw, 1.0, MAX_RADIUS_M, &mut errors),
                None => Some(DEFAULT_RADIUS_M),
            };
            match (point, radius_m) {
                (Some((latitude, longitude)), Some(radius_m)) => {
                    near_point = Some((latitude, longitude));
                    SearchArea::Near {
                        latitude,
                        longitude,
                        radius_m,
                    }
                }
                _ => SearchArea::Anywhere,
            }
        }
        (None, None) => SearchArea::Anywhere,
    };
    if params.radius_m.is_some() && params.near.is_none() {
        errors.push(FieldError::new("radius_m", "needs near"));
    }
    let min_power_w = params.min_power_kw.as_deref().and_then(|raw| {
        query::number("min_power_kw", raw, 0.0, 10_000.0, &mut errors)
            .map(|kw| (kw * 1000.0).round() as i32)
    });
    let connector_types: Vec<String> = params
        .connector_type
        .as_deref()
        .map(|raw| {
            raw.split(',')
                .map(str::trim)
                .filter(|item| !item.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    if connector_types.len() > MAX_CONNECTOR_TYPES
        || connector_types.iter().any(|standard| {
            standard.len() > 32
                || !standard
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_')
        })
    {
        errors.push(FieldError::new(
            "connector_type",
            format!(
                "must be up to {MAX_CONNECTOR_TYPES} comma-separated OCPI connector types, such as IEC_62196_T2"
            ),
        ));
    }
    let available = query::flag("available", params.available.as_deref(), &mut errors);
    let limit = pagination::limit(params.limit.as_deref(), &mut errors);
    let after = pagination::decode::<Position>("locations", params.cursor.as_deref(), &mut errors)
        .map(|position| SearchPosition {
            key: f64::from_bits(position.key_bits),
            id: position.id,
        });
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    Ok((
        LocationSearch {
            area,
            min_power_w,
            connector_types,
            available,
            after,
            limit,
        },
        near_point,
    ))
}

fn bbox_area(
    min_lon: f64,
    min_lat: f64,
    max_lon: f64,
    max_lat: f64,
    errors: &mut Vec<FieldError>,
) -> Option<SearchArea> {
    let lat_ok = |lat: f64| (-90.0..=90.0).contains(&lat);
    let lon_ok = |lon: f64| (-180.0..=180.0).contains(&lon);
    if !(lat_ok(min_lat) && lat_ok(max_lat) && lon_ok(min_lon) && lon_ok(max_lon)) {
        errors.push(FieldError::new(
            "bbox",
            "latitudes must be within -90..90 and longitudes within -180..180",
        ));
        return None;
    }
    if min_lat > max_lat || min_lon > max_lon {
        errors.push(FieldError::new(
            "bbox",
            "the minimum must not exceed the maximum (min_lon,min_lat,max_lon,max_lat)",
        ));
        return None;
    }
    Some(SearchArea::Box {
        min_latitude: min_lat,
        max_latitude: max_lat,
        min_longitude: min_lon,
        max_longitude: max_lon,
    })
}

/// Great-circle distance in metres (haversine).
pub fn distance_m(lat1: f64, lon1: f64, lat2: f64, lon2: f64) -> f64 {
    let (phi1, phi2) = (lat1.to_radians(), lat2.to_radians());
    let dphi = (lat2 - lat1).to_radians();
    let dlambda = (lon2 - lon1).to_radians();
    let a = (dphi / 2.0).sin().powi(2) + phi1.cos() * phi2.cos() * (dlambda / 2.0).sin().powi(2);
    let radius = METRES_PER_DEGREE * 180.0 / std::f64::consts::PI;
    2.0 * radius * a.sqrt().asin()
}

/// The chargers among `equipment` that are connected now.
async fn online_chargers(
    ctx: &AppContext,
    equipment: &[EquipmentRow],
) -> Result<BTreeSet<String>, ApiError> {
    let identities: Vec<&str> = equipment
        .iter()
        .map(|row| row.identity.as_str())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let entries: Vec<String> = identities
        .iter()
        .filter_map(|identity| identity.parse::<ChargePointId>().ok())
        .map(|id| session_entry(&id))
        .collect();
    let owners = ctx.shared.directory.owners(&entries).await?;
    Ok(identities
        .into_iter()
        .zip(owners)
        .filter(|(_, owner)| owner.is_some())
        .map(|(identity, _)| identity.to_owned())
        .collect())
}

fn location_view(
    location: Location,
    rows: &[&EquipmentRow],
    online: &BTreeSet<String>,
    distance_m: Option<u64>,
) -> LocationView {
    let mut evses: HashMap<(i64, i32), bool> = HashMap::new();
    for row in rows {
        let available = row.evse_status == AVAILABLE && online.contains(&row.identity);
        evses.insert((row.charge_point_id, row.evse_number), available);
    }
    let connector_types: BTreeSet<String> =
        rows.iter().filter_map(|row| row.standard.clone()).collect();
    let opening_hours = location.opening_hours.as_deref().and_then(|text| {
        serde_json::from_str::<OpeningHours>(text)
            .map_err(|err| {
                tracing::warn!(location_id = location.id, error = %err, "A location's opening hours are not OCPI Hours; they are left out.");
            })
            .ok()
    });
    LocationView {
        id: location.id,
        name: location.name,
        address: location.address,
        city: location.city,
        postal_code: location.postal_code,
        country: location.country.as_str().to_owned(),
        latitude: location.latitude,
        longitude: location.longitude,
        time_zone: location.time_zone,
        opening_hours,
        tariff_text: location.tariff_text,
        distance_m,
        evses_total: evses.len() as u32,
        evses_available: evses.values().filter(|available| **available).count() as u32,
        max_power_w: rows.iter().filter_map(|row| row.max_power_w).max(),
        connector_types: connector_types.into_iter().collect(),
    }
}

/// Groups equipment rows (ordered by charger, EVSE, connector) into charger views.
fn charger_views(
    rows: &[&EquipmentRow],
    online: &BTreeSet<String>,
    location_of: impl Fn(&EquipmentRow) -> Option<LocationSummary>,
) -> Vec<ChargerView> {
    let mut chargers: Vec<ChargerView> = Vec::new();
    let mut current: Option<i64> = None;
    for row in rows {
        if current != Some(row.charge_point_id) {
            current = Some(row.charge_point_id);
            chargers.push(ChargerView {
                identity: row.identity.clone(),
                location: location_of(row),
                online: online.contains(&row.identity),
                evses: Vec::new(),
            });
        }
        let Some(charger) = chargers.last_mut() else {
            continue;
        };
        if charger.evses.last().map(|evse| evse.evse) != Some(row.evse_number) {
            charger.evses.push(EvseView {
                evse: row.evse_number,
                status: row.evse_status.clone(),
                available: row.evse_status == AVAILABLE && charger.online,
                connectors: Vec::new(),
            });
        }
        if let (Some(evse), Some(connector), Some(standard)) = (
            charger.evses.last_mut(),
            row.connector_number,
            row.standard.clone(),
        ) {
            evse.connectors.push(ConnectorView {
                connector,
                standard,
                format: row.format.clone().unwrap_or_default(),
                power_type: row.power_type.clone().unwrap_or_default(),
                max_power_w: row.max_power_w,
            });
        }
    }
    chargers
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances_match_known_ones() {
        // Madrid (Puerta del Sol) to Barcelona (Plaça de Catalunya): about 505 km.
        let d = distance_m(40.4168, -3.7038, 41.3870, 2.1700);
        assert!((500_000.0..510_000.0).contains(&d), "{d}");
        assert!(distance_m(40.0, -3.0, 40.0, -3.0) < 1e-6);
    }

    #[test]
    fn bad_parameters_are_each_named() {
        let params = SearchParams {
            bbox: Some("1,2,3".into()),
            radius_m: Some("-5".into()),
            min_power_kw: Some("lots".into()),
            connector_type: Some("IEC 62196".into()),
            available: Some("maybe".into()),
            limit: Some("0".into()),
            cursor: Some("nope".into()),
            ..SearchParams::default()
        };
        let Err(ApiError::Validation(errors)) = parse_search(&params) else {
            panic!("the parameters are invalid");
        };
        let fields: BTreeSet<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        for field in [
            "bbox",
            "radius_m",
            "min_power_kw",
            "connector_type",
            "available",
            "limit",
            "cursor",
        ] {
            assert!(fields.contains(field), "{field} in {fields:?}");
        }
    }

    #[test]
    fn a_box_must_be_ordered_and_on_the_globe() {
        let mut errors = Vec::new();
        assert!(bbox_area(-4.0, 40.0, -3.0, 41.0, &mut errors).is_some());
        assert!(bbox_area(-3.0, 40.0, -4.0, 41.0, &mut errors).is_none());
        assert!(bbox_area(-4.0, 40.0, -3.0, 91.0, &mut errors).is_none());
        assert_eq!(errors.len(), 2);
    }
}

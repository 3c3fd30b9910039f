//! Locations and what stands there: each charger with its EVSEs and connectors, their last
//! reported status and whether the charger is connected now.

use std::collections::BTreeMap;

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use voltfleet_core::context::AppContext;
use voltfleet_core::storage::{EquipmentRow, Location, StorageError};

use crate::charge_points::url_of;
use crate::dashboard::connected;
use crate::error::PageError;
use crate::session::Viewer;
use crate::views::{self, Layout};

/// A location in the list.
#[derive(Debug, Clone)]
pub struct Row {
    pub location: Location,
    pub chargers: usize,
    pub evses: usize,
}

#[derive(Template)]
#[template(path = "locations.html")]
struct ListPage {
    layout: Layout,
    rows: Vec<Row>,
}

/// `GET /backoffice/locations`.
pub async fn list(
    State(ctx): State<AppContext>,
    Viewer(signed): Viewer,
) -> Result<Response, PageError> {
    let locations = ctx.db.locations().list().await?;
    let ids: Vec<i64> = locations.iter().map(|location| location.id).collect();
    let equipment = ctx.db.locations().equipment(&ids).await?;
    let rows = locations
        .into_iter()
        .map(|location| {
            let here: Vec<&EquipmentRow> = equipment
                .iter()
                .filter(|row| row.location_id == Some(location.id))
                .collect();
            let chargers = here
                .iter()
                .map(|row| row.charge_point_id)
                .collect::<std::collections::BTreeSet<_>>()
                .len();
            let evses = here
                .iter()
                .map(|row| (row.charge_point_id, row.evse_number))
                .collect::<std::collections::BTreeSet<_>>()
                .len();
            Row {
                location,
                chargers,
                evses,
            }
        })
        .collect();
    Ok(views::render(
        StatusCode::OK,
        &ListPage {
            layout: Layout::new("Locations", Some(&signed), "locations"),
            rows,
        },
    ))
}

/// An EVSE of a charger at the location.
#[derive(Debug, Clone)]
pub struct EvseRow {
    pub number: i32,
    pub status: String,
    /// Such as `IEC_62196_T2 AC_3_PHASE 22 kW`, one per connector.
    pub connectors: Vec<String>,
}

/// A charger at the location.
#[derive(Debug, Clone)]
pub struct ChargerRow {
    pub identity: String,
    pub url: String,
    pub online: bool,
    pub evses: Vec<EvseRow>,
}

#[derive(Template)]
#[template(path = "location.html")]
struct DetailPage {
    layout: Layout,
    location: Location,
    chargers: Vec<ChargerRow>,
}

/// `GET /backoffice/locations/{id}`.
pub async fn detail(
    State(ctx): State<AppContext>,
    Viewer(signed): Viewer,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let not_found = || PageError::NotFound("There is no such location.".to_owned());
    let id = id.parse::<i64>().map_err(|_| not_found())?;
    let location = match ctx.db.locations().get(id).await {
        Ok(location) => location,
        Err(StorageError::NotFound { .. }) => return Err(not_found()),
        Err(other) => return Err(other.into()),
    };
    let equipment = ctx.db.locations().equipment(&[id]).await?;
    let mut chargers: BTreeMap<String, BTreeMap<i32, EvseRow>> = BTreeMap::new();
    for row in &equipment {
        let evse = chargers
            .entry(row.identity.clone())
            .or_default()
            .entry(row.evse_number)
            .or_insert_with(|| EvseRow {
                number: row.evse_number,
                status: row.evse_status.clone(),
                connectors: Vec::new(),
            });
        if let Some(standard) = &row.standard {
            let power = row
                .max_power_w
                .map(|w| format!(" {} kW", w / 1000))
                .unwrap_or_default();
            evse.connectors.push(format!(
                "{standard} {}{power}",
                row.power_type.as_deref().unwrap_or("")
            ));
        }
    }
    let identities: Vec<String> = chargers.keys().cloned().collect();
    let online = connected(&ctx, &identities).await?;
    let chargers = chargers
        .into_iter()
        .zip(online)
        .map(|((identity, evses), online)| ChargerRow {
            url: url_of(&identity),
            identity,
            online,
            evses: evses.into_values().collect(),
        })
        .collect();
    Ok(views::render(
        StatusCode::OK,
        &DetailPage {
            layout: Layout::new(location.name.clone(), Some(&signed), "locations"),
            location,
            chargers,
        },
    ))
}

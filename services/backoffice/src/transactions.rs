//! Transactions: the list (by charger, ID token, running or ended) and one transaction with
//! its meter values drawn as a chart — an SVG made here, so that the page needs no script —
//! and, while it runs, the way to stop it.

use askama::Template;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, Utc};
use voltfleet_core::context::AppContext;
use voltfleet_core::domain::Role;
use voltfleet_core::storage::{MeterValue, StorageError, TransactionFilter, TransactionListing};

use crate::charge_points::url_of;
use crate::error::PageError;
use crate::forms::{Fields, Problems, Reader};
use crate::session::Viewer;
use crate::views::{self, Layout};

const ENERGY: &str = "Energy.Active.Import.Register";
const POWER: &str = "Power.Active.Import";
/// The chart's drawing area, in SVG units.
const WIDTH: f64 = 600.0;
const HEIGHT: f64 = 180.0;
/// Samples listed under the chart at most (the newest).
const SAMPLE_ROWS: usize = 100;

/// A row of the list.
#[derive(Debug, Clone)]
pub struct Row {
    pub listing: TransactionListing,
    pub charger_url: String,
    pub energy_kwh: String,
}

/// Energy between two readings in kWh with two decimals, or empty.
fn kwh(wh: Option<i64>) -> String {
    wh.map_or_else(String::new, |wh| format!("{:.2}", wh as f64 / 1000.0))
}

fn row(listing: TransactionListing) -> Row {
    Row {
        charger_url: url_of(&listing.identity),
        energy_kwh: kwh(listing
            .meter_stop_wh
            .and_then(|stop| stop.checked_sub(listing.meter_start_wh))),
        listing,
    }
}

/// The list's filters as the form shows them.
#[derive(Debug, Clone, Default)]
pub struct Filters {
    pub charger: String,
    pub id_token: String,
    pub state: String,
}

#[derive(Template)]
#[template(path = "transactions.html")]
struct ListPage {
    layout: Layout,
    filters: Filters,
    problems: Problems,
    rows: Vec<Row>,
    total: u64,
    page: u64,
    pages: u64,
    previous_url: Option<String>,
    next_url: Option<String>,
}

fn list_url(filters: &Filters, page: u64) -> String {
    let mut pairs: Vec<(&str, String)> = Vec::new();
    for (name, value) in [
        ("charger", &filters.charger),
        ("id_token", &filters.id_token),
        ("state", &filters.state),
    ] {
        if !value.is_empty() {
            pairs.push((name, value.clone()));
        }
    }
    if page > 1 {
        pairs.push(("page", page.to_string()));
    }
    let query = serde_urlencoded::to_string(&pairs).unwrap_or_default();
    if query.is_empty() {
        "/backoffice/transactions".to_owned()
    } else {
        format!("/backoffice/transactions?{query}")
    }
}

/// `GET /backoffice/transactions?charger=&id_token=&state=running|ended&page=`.
pub async fn list(
    State(ctx): State<AppContext>,
    Viewer(signed): Viewer,
    RawQuery(query): RawQuery,
) -> Result<Response, PageError> {
    let fields = Fields::from_pairs(
        serde_urlencoded::from_str(query.as_deref().unwrap_or_default()).unwrap_or_default(),
    );
    let mut r = Reader::new(&fields);
    let charger = r.text("charger", 48, false);
    let id_token = r.text("id_token", 36, false);
    let page = r.int("page", 1, 1_000_000, false).unwrap_or(1) as u64;
    let active = match fields.get("state") {
        "" => None,
        "running" => Some(true),
        "ended" => Some(false),
        _ => {
            r.problems.add("state", "Choose running, ended or any.");
            None
        }
    };
    let problems = r.problems;
    let filters = Filters {
        charger: fields.get("charger").to_owned(),
        id_token: fields.get("id_token").to_owned(),
        state: fields.get("state").to_owned(),
    };
    let page_size = u64::from(ctx.settings.backoffice_ui.page_size);
    let (items, total) = if problems.is_empty() {
        ctx.db
            .overview()
            .transactions(
                &TransactionFilter {
                    charger,
                    id_token,
                    active,
                },
                (page - 1) * page_size,
                page_size as u32,
            )
            .await?
    } else {
        (Vec::new(), 0)
    };
    let pages = total.div_ceil(page_size).max(1);
    Ok(views::render(
        if problems.is_empty() {
            StatusCode::OK
        } else {
            StatusCode::UNPROCESSABLE_ENTITY
        },
        &ListPage {
            layout: Layout::new("Transactions", Some(&signed), "transactions"),
            previous_url: (page > 1).then(|| list_url(&filters, page - 1)),
            next_url: (page < pages).then(|| list_url(&filters, page + 1)),
            filters,
            problems,
            rows: items.into_iter().map(row).collect(),
            total,
            page,
            pages,
        },
    ))
}

/// One line of the chart, in SVG units, and what its axis reads.
#[derive(Debug, Clone, Default)]
pub struct Series {
    /// `x,y x,y …` for a polyline.
    pub points: String,
    pub max_label: String,
    pub count: usize,
}

/// The chart of a transaction: energy delivered (kWh since the start) and power (kW).
#[derive(Debug, Clone, Default)]
pub struct Chart {
    pub energy: Series,
    pub power: Series,
    pub from: String,
    pub to: String,
    /// What the chart shows, for people who cannot see it.
    pub summary: String,
}

fn series(
    samples: &[(DateTime<Utc>, f64)],
    start: DateTime<Utc>,
    span_s: f64,
    unit: &str,
) -> Series {
    let max = samples
        .iter()
        .map(|(_, value)| *value)
        .fold(0.0_f64, f64::max);
    let scale = if max > 0.0 { HEIGHT / max } else { 0.0 };
    let points = samples
        .iter()
        .map(|(at, value)| {
            let x = ((*at - start).num_milliseconds() as f64 / 1000.0) / span_s * WIDTH;
            let y = HEIGHT - value * scale;
            format!("{:.1},{:.1}", x.clamp(0.0, WIDTH), y.clamp(0.0, HEIGHT))
        })
        .collect::<Vec<_>>()
        .join(" ");
    Series {
        points,
        max_label: format!("{max:.2} {unit}"),
        count: samples.len(),
    }
}

/// Energy (from the start's reading) and power over the transaction, scaled to the chart.
pub fn chart(meter_start_wh: i64, values: &[MeterValue]) -> Chart {
    let to_unit = |value: &MeterValue| match value.unit.as_str() {
        "kWh" | "kW" => value.value,
        _ => value.value / 1000.0,
    };
    let energy: Vec<(DateTime<Utc>, f64)> = values
        .iter()
        .filter(|v| v.measurand == ENERGY && v.phase.is_none())
        .map(|v| {
            let kwh = to_unit(v);
            (
                v.sampled_at,
                (kwh - meter_start_wh as f64 / 1000.0).max(0.0),
            )
        })
        .collect();
    let power: Vec<(DateTime<Utc>, f64)> = values
        .iter()
        .filter(|v| v.measurand == POWER && v.phase.is_none())
        .map(|v| (v.sampled_at, to_unit(v).max(0.0)))
        .collect();
    let times = energy.iter().chain(power.iter()).map(|(at, _)| *at);
    let (Some(start), Some(end)) = (times.clone().min(), times.max()) else {
        return Chart {
            summary: "No energy or power samples were reported.".to_owned(),
            ..Chart::default()
        };
    };
    let span_s = ((end - start).num_milliseconds() as f64 / 1000.0).max(0.001);
    let energy = series(&energy, start, span_s, "kWh");
    let power = series(&power, start, span_s, "kW");
    Chart {
        summary: format!(
            "{} energy and {} power samples from {} to {} UTC; energy up to {}, power up to {}.",
            energy.count,
            power.count,
            start.format("%H:%M:%S"),
            end.format("%H:%M:%S"),
            energy.max_label,
            power.max_label
        ),
        from: start.format("%H:%M:%S").to_string(),
        to: end.format("%H:%M:%S").to_string(),
        energy,
        power,
    }
}

#[derive(Template)]
#[template(path = "transaction.html")]
struct DetailPage {
    layout: Layout,
    listing: TransactionListing,
    charger_url: String,
    energy_kwh: String,
    start_auth_status: String,
    chart: Chart,
    samples: Vec<MeterValue>,
    can_operate: bool,
    csrf: String,
}

/// `GET /backoffice/transactions/{id}`.
pub async fn detail(
    State(ctx): State<AppContext>,
    Viewer(signed): Viewer,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let not_found = || PageError::NotFound("There is no such transaction.".to_owned());
    let id = id.parse::<i64>().map_err(|_| not_found())?;
    let transaction = match ctx.db.transactions().get(id).await {
        Ok(transaction) => transaction,
        Err(StorageError::NotFound { .. }) => return Err(not_found()),
        Err(other) => return Err(other.into()),
    };
    let cp = ctx
        .db
        .charge_points()
        .get(transaction.charge_point_id)
        .await?;
    let values = ctx.db.transactions().meter_values(id).await?;
    let chart = chart(transaction.meter_start_wh.0, &values);
    let samples: Vec<MeterValue> = values.into_iter().rev().take(SAMPLE_ROWS).collect();
    let energy_kwh = kwh(transaction.energy().map(|energy| energy.0));
    let listing = TransactionListing {
        id: transaction.id,
        identity: cp.identity.to_string(),
        evse_number: transaction.evse_number,
        id_token: transaction.id_token,
        meter_start_wh: transaction.meter_start_wh.0,
        meter_stop_wh: transaction.meter_stop_wh.map(|wh| wh.0),
        started_at: transaction.started_at,
        stopped_at: transaction.stopped_at,
        stop_reason: transaction.stop_reason,
    };
    Ok(views::render(
        StatusCode::OK,
        &DetailPage {
            layout: Layout::new(format!("Transaction {id}"), Some(&signed), "transactions"),
            charger_url: url_of(&listing.identity),
            listing,
            energy_kwh,
            start_auth_status: transaction.start_auth_status.unwrap_or_default(),
            chart,
            samples,
            can_operate: signed.can(Role::Operator),
            csrf: signed.csrf().to_owned(),
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(at: &str, measurand: &str, unit: &str, value: f64) -> MeterValue {
        MeterValue {
            id: 0,
            transaction_id: Some(1),
            charge_point_id: 1,
            evse_number: 1,
            sampled_at: DateTime::parse_from_rfc3339(at)
                .expect("a time")
                .with_timezone(&Utc),
            measurand: measurand.into(),
            phase: None,
            unit: unit.into(),
            value,
            context: None,
            location: None,
        }
    }

    #[test]
    fn the_chart_spans_the_samples_and_scales_to_the_largest() {
        let values = [
            sample("2025-06-01T10:00:00Z", ENERGY, "Wh", 1000.0),
            sample("2025-06-01T10:00:00Z", POWER, "W", 7400.0),
            sample("2025-06-01T10:30:00Z", ENERGY, "Wh", 4700.0),
            sample("2025-06-01T11:00:00Z", ENERGY, "kWh", 8.4),
            sample("2025-06-01T11:00:00Z", POWER, "W", 3700.0),
        ];
        let chart = chart(1000, &values);
        assert_eq!(chart.energy.points, "0.0,180.0 300.0,90.0 600.0,0.0");
        assert_eq!(chart.power.points, "0.0,0.0 600.0,90.0");
        assert_eq!(chart.energy.max_label, "7.40 kWh");
        assert_eq!(chart.power.max_label, "7.40 kW");
        assert_eq!(
            (chart.from.as_str(), chart.to.as_str()),
            ("10:00:00", "11:00:00")
        );
        assert!(super::chart(0, &[]).energy.points.is_empty());
    }
}

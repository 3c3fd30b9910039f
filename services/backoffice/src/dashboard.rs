//! The dashboard: chargers online, offline and faulted, active sessions and energy today,
//! kept live by Server-Sent Events from the bus.
//!
//! Whether a charger is connected is its directory entry (the OCPP node holding its socket);
//! the rest is counted in the database. `/backoffice/events` relays the OCPP service's
//! `ChargerEvent`s (connections, status, transactions, meter values) to the page, which then
//! fetches `/backoffice/dashboard.json` again (at most every few seconds) and lists the event.
//! Each stream holds at most [`EVENT_BUFFER`] events for a slow browser; beyond that the
//! oldest are dropped and counted, so one slow page never makes the process grow.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use askama::Template;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use futures_util::stream::{self, Stream};
use serde::Serialize;
use tokio::sync::{Mutex, Notify};
use voltfleet_core::context::AppContext;
use voltfleet_core::domain::ChargePointId;
use voltfleet_core::ocpp::commands::session_entry;
use voltfleet_core::ocpp::events::{
    CONNECTION_TOPIC, ChargerEvent, METER_TOPIC, STATUS_TOPIC, TRANSACTION_TOPIC,
};

use crate::error::PageError;
use crate::session::Viewer;
use crate::views::{self, Layout};

/// Events one SSE stream holds for its browser before it drops the oldest.
pub const EVENT_BUFFER: usize = 256;

/// The dashboard's figures.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
pub struct DashboardFigures {
    pub online: u64,
    pub offline: u64,
    pub faulted: u64,
    pub active_sessions: u64,
    /// Energy of the sessions that ended today (UTC), in Wh.
    pub energy_today_wh: i64,
}

impl DashboardFigures {
    pub fn energy_today_kwh(&self) -> String {
        format!("{:.1}", self.energy_today_wh as f64 / 1000.0)
    }
}

fn midnight(now: DateTime<Utc>) -> DateTime<Utc> {
    now.date_naive()
        .and_hms_opt(0, 0, 0)
        .map_or(now, |midnight| midnight.and_utc())
}

/// Which of `identities` have a connection now, in the same order.
pub async fn connected(ctx: &AppContext, identities: &[String]) -> Result<Vec<bool>, PageError> {
    let entries: Vec<String> = identities
        .iter()
        .map(|identity| match identity.parse::<ChargePointId>() {
            Ok(id) => session_entry(&id),
            Err(_) => String::new(),
        })
        .collect();
    if entries.is_empty() {
        return Ok(Vec::new());
    }
    let owners = ctx.shared.directory.owners(&entries).await?;
    Ok(owners.into_iter().map(|owner| owner.is_some()).collect())
}

pub async fn figures(ctx: &AppContext) -> Result<DashboardFigures, PageError> {
    let overview = ctx.db.overview();
    let (stored, identities) = tokio::try_join!(
        overview.figures(midnight(Utc::now())),
        overview.identities()
    )?;
    let online = connected(ctx, &identities)
        .await?
        .into_iter()
        .filter(|online| *online)
        .count() as u64;
    Ok(DashboardFigures {
        online,
        offline: stored.chargers.saturating_sub(online),
        faulted: stored.faulted,
        active_sessions: stored.active_transactions,
        energy_today_wh: stored.energy_wh,
    })
}

#[derive(Template)]
#[template(path = "dashboard.html")]
struct DashboardPage {
    layout: Layout,
    figures: DashboardFigures,
}

/// `GET /backoffice/`.
pub async fn page(
    State(ctx): State<AppContext>,
    Viewer(signed): Viewer,
) -> Result<Response, PageError> {
    let figures = figures(&ctx).await?;
    Ok(views::render(
        StatusCode::OK,
        &DashboardPage {
            layout: Layout::new("Dashboard", Some(&signed), "dashboard"),
            figures,
        },
    ))
}

/// `GET /backoffice/dashboard.json`: the figures, for the live page.
pub async fn figures_json(
    State(ctx): State<AppContext>,
    Viewer(_): Viewer,
) -> Result<Response, PageError> {
    Ok(Json(figures(&ctx).await?).into_response())
}

/// A bounded queue between the bus and one browser.
struct Queue {
    events: Mutex<(VecDeque<ChargerEvent>, u64)>,
    ready: Notify,
}

/// `GET /backoffice/events`: the chargers' events as they happen.
pub async fn events(
    State(ctx): State<AppContext>,
    Viewer(_): Viewer,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, PageError> {
    let bus = &ctx.shared.bus;
    let subscriptions = vec![
        bus.subscribe(CONNECTION_TOPIC).await?,
        bus.subscribe(STATUS_TOPIC).await?,
        bus.subscribe(TRANSACTION_TOPIC).await?,
        bus.subscribe(METER_TOPIC).await?,
    ];
    let queue = Arc::new(Queue {
        events: Mutex::new((VecDeque::new(), 0)),
        ready: Notify::new(),
    });
    let feeder = {
        let queue = queue.clone();
        let mut merged = stream::select_all(subscriptions);
        async move {
            while let Some(message) = merged.next().await {
                let Ok(event) = serde_json::from_slice::<ChargerEvent>(&message.payload) else {
                    continue;
                };
                let mut guard = queue.events.lock().await;
                if guard.0.len() >= EVENT_BUFFER {
                    guard.0.pop_front();
                    guard.1 += 1;
                }
                guard.0.push_back(event);
                drop(guard);
                queue.ready.notify_one();
            }
        }
    };
    // The feeder stops with the stream: it is aborted when the browser goes away.
    let feeder = tokio::spawn(feeder);
    let guard = AbortOnDrop(feeder);
    let stream = stream::unfold((queue, guard), |(queue, guard)| async move {
        loop {
            let next = {
                let mut events = queue.events.lock().await;
                let dropped = std::mem::take(&mut events.1);
                events.0.pop_front().map(|event| (event, dropped))
            };
            if let Some((event, dropped)) = next {
                if dropped > 0 {
                    tracing::debug!(dropped, "A slow dashboard missed some charger events.");
                }
                let data = serde_json::to_string(&event).unwrap_or_default();
                let sse = Event::default().event("charger").data(data);
                return Some((Ok(sse), (queue, guard)));
            }
            queue.ready.notified().await;
        }
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

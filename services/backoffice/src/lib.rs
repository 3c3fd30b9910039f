//! The Back Office at `/backoffice/`: the operators' web UI.
//!
//! Server-rendered pages (askama templates, escaped by default) with a little JavaScript of
//! our own for the live dashboard; no build step. Every request passes, outermost first:
//! `security::headers` (CSP and the other security headers), `session::load` (the signed-in
//! operator, if any, from the session cookie), `security::csrf` (the Origin check and the
//! session's token on every unsafe method); handlers then ask for a role with the extractors
//! in `session` (`Viewer`, `Operating`, `Admin`), which audit refusals.
//!
//! The service's HTTP routes are mounted by the `voltfleet` app server next to the
//! operational endpoints every service has (`/healthz`, `/readyz`, `/metrics`).

pub mod admin;
pub mod assets;
pub mod audit;
pub mod charge_points;
pub mod client;
pub mod commands;
pub mod dashboard;
pub mod error;
pub mod forms;
pub mod id_tokens;
pub mod locations;
pub mod login;
pub mod security;
pub mod session;
pub mod transactions;
pub mod views;

use axum::Router;
use axum::response::Redirect;
use axum::routing::{get, post};
use voltfleet_core::context::AppContext;

/// Where the Back Office lives behind the proxy; every path and the cookies are under it.
pub const BASE: &str = "/backoffice";

/// The routes this service answers, beyond the operational endpoints.
pub fn routes(ctx: &AppContext) -> Router<AppContext> {
    Router::new()
        .route(
            "/backoffice",
            get(|| async { Redirect::permanent("/backoffice/") }),
        )
        .route("/backoffice/", get(dashboard::page))
        .route("/backoffice/dashboard.json", get(dashboard::figures_json))
        .route("/backoffice/events", get(dashboard::events))
        .route("/backoffice/login", get(login::form).post(login::submit))
        .route("/backoffice/logout", post(login::logout))
        .route("/backoffice/charge-points", get(charge_points::list))
        .route(
            "/backoffice/charge-points/{identity}",
            get(charge_points::detail),
        )
        .route(
            "/backoffice/charge-points/{identity}/approve",
            post(charge_points::approve),
        )
        .route(
            "/backoffice/charge-points/{identity}/password",
            post(charge_points::set_password),
        )
        .route(
            "/backoffice/charge-points/{identity}/commands/{command}",
            post(commands::send),
        )
        .route(
            "/backoffice/operators",
            get(admin::operators).post(admin::create_operator),
        )
        .route("/backoffice/operators/{id}/role", post(admin::set_role))
        .route(
            "/backoffice/operators/{id}/{change}",
            post(admin::set_disabled),
        )
        .route("/backoffice/audit", get(admin::audit_log))
        .route(
            "/backoffice/api-keys",
            get(admin::api_keys).post(admin::create_api_key),
        )
        .route(
            "/backoffice/api-keys/{id}/revoke",
            post(admin::revoke_api_key),
        )
        .route("/backoffice/locations", get(locations::list))
        .route("/backoffice/locations/{id}", get(locations::detail))
        .route(
            "/backoffice/id-tokens",
            get(id_tokens::list).post(id_tokens::create),
        )
        .route(
            "/backoffice/id-tokens/{token}",
            get(id_tokens::detail).post(id_tokens::update),
        )
        .route("/backoffice/transactions", get(transactions::list))
        .route("/backoffice/transactions/{id}", get(transactions::detail))
        .route("/backoffice/static/{file}", get(assets::serve))
        .fallback(error::not_found)
        .layer(axum::middleware::from_fn_with_state(
            ctx.clone(),
            security::csrf,
        ))
        .layer(axum::middleware::from_fn_with_state(
            ctx.clone(),
            session::load,
        ))
        .layer(axum::Extension(login::PasswordHashing::new(
            &ctx.settings.backoffice_ui,
        )))
        .layer(axum::middleware::from_fn_with_state(
            ctx.clone(),
            security::headers,
        ))
}

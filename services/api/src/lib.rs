//! The public REST API under `/api/v1`, for drivers, apps, partners and the website.
//!
//! The service's HTTP routes, mounted by the `voltfleet` app server next to the operational
//! endpoints every service has (`/healthz`, `/readyz`, `/metrics`). Conventions: JSON bodies
//! in and out, errors as RFC 9457 problems (`error`), drivers authenticated by a short-lived
//! bearer access token and a rotating refresh token (`tokens`, `accounts`); the OpenAPI
//! document is derived from the handlers (`openapi`).

pub mod accounts;
pub mod client;
pub mod error;
pub mod openapi;
pub mod tokens;

use axum::Router;
use axum::routing::{get, post};
use voltfleet_core::context::AppContext;

/// The routes this service answers, beyond the operational endpoints.
pub fn routes() -> Router<AppContext> {
    let v1 = Router::new()
        .route("/accounts", post(accounts::sign_up))
        .route("/auth/login", post(accounts::login))
        .route("/auth/refresh", post(accounts::refresh))
        .route("/auth/logout", post(accounts::logout))
        .route("/account/password", post(accounts::change_password))
        .route("/me", get(accounts::me))
        .route("/openapi.json", get(openapi::openapi_json));
    Router::new()
        .nest("/api/v1", v1)
        .fallback(error::not_found)
        .layer(axum::middleware::from_fn(error::finish_problems))
}

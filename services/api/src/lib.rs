//! The public REST API under `/api/v1`, for drivers, apps, partners and the website.
//!
//! The service's HTTP routes, mounted by the `voltfleet` app server next to the operational
//! endpoints every service has (`/healthz`, `/readyz`, `/metrics`). Conventions: JSON bodies
//! in and out, errors as RFC 9457 problems (`error`), drivers authenticated by a short-lived
//! bearer access token and a rotating refresh token (`tokens`, `accounts`) or by an API key
//! (`auth`, `keys`), cursor pagination (`pagination`), entity tags, rate limits and CORS
//! (`conventions`); the OpenAPI document is derived from the handlers (`openapi`).

pub mod accounts;
pub mod auth;
pub mod cards;
pub mod charging;
pub mod client;
pub mod conventions;
pub mod error;
pub mod keys;
pub mod locations;
pub mod openapi;
pub mod pagination;
pub mod query;
pub mod tokens;

use axum::Router;
use axum::routing::{delete, get, post};
use voltfleet_core::context::AppContext;

/// The routes this service answers, beyond the operational endpoints.
pub fn routes(ctx: &AppContext) -> Router<AppContext> {
    let v1 = Router::new()
        .route("/accounts", post(accounts::sign_up))
        .route("/auth/login", post(accounts::login))
        .route("/auth/refresh", post(accounts::refresh))
        .route("/auth/logout", post(accounts::logout))
        .route("/account/password", post(accounts::change_password))
        .route("/me", get(accounts::me))
        .route("/api-keys", get(keys::list).post(keys::create))
        .route("/api-keys/{id}", delete(keys::revoke))
        .route("/locations", get(locations::search))
        .route("/locations/{id}", get(locations::location))
        .route("/chargers/{identity}", get(locations::charger))
        .route("/charging/start", post(charging::start))
        .route("/sessions", get(charging::history))
        .route("/sessions/active", get(charging::active))
        .route("/sessions/{id}", get(charging::session))
        .route("/sessions/{id}/stop", post(charging::stop))
        .route("/cards", get(cards::list).post(cards::add))
        .route("/cards/{token}/block", post(cards::block))
        .route("/openapi.json", get(openapi::openapi_json))
        .route("/docs", get(openapi::docs))
        .method_not_allowed_fallback(error::method_not_allowed)
        .layer(axum::middleware::from_fn(conventions::entity_tags));
    Router::new()
        .nest("/api/v1", v1)
        .layer(axum::Extension(accounts::PasswordHashing::new(
            &ctx.settings.api_accounts,
        )))
        .fallback(error::not_found)
        .layer(axum::middleware::from_fn_with_state(
            ctx.clone(),
            conventions::rate_limits,
        ))
        .layer(axum::middleware::from_fn(error::finish_problems))
        .layer(conventions::cors(&ctx.settings.api_accounts.cors_origins))
}

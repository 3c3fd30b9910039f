//! The Back Office at `/backoffice/`: the operators' web UI.
//!
//! The service's HTTP routes, mounted by the `voltfleet` app server next to the operational
//! endpoints every service has (`/healthz`, `/readyz`, `/metrics`).

use axum::Router;
use voltfleet_core::context::AppContext;

/// The routes this service answers, beyond the operational endpoints.
pub fn routes() -> Router<AppContext> {
    Router::new()
}

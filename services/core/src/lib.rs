//! What the voltfleet services share: configuration, the domain model, storage (MySQL or
//! SQLite), the fast shared state (cache, bus, locks and counters on Redis or in process), and
//! the HTTP runtime every service process runs on (health, readiness, metrics, graceful stop).
//!
//! `voltfleet-core` imports no service; services import it and never each other.

pub mod config;
pub mod context;
pub mod credentials;
pub mod domain;
pub mod http;
pub mod metrics;
pub mod ocpp;
pub mod shared;
pub mod storage;
pub mod telemetry;
#[cfg(any(test, feature = "test-support"))]
pub mod testing;

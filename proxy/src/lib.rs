//! voltfleet-proxy: the edge reverse proxy on Pingora that takes NGINX's place on the web tier.
//!
//! A request crosses these modules in order: `listener` (PROXY protocol, TLS) hands the
//! connection to Pingora, which calls `proxy::EdgeProxy` phase by phase; `routing` picks the
//! route, `forwarded` decides who the client is, `upstream` picks a healthy peer, `respond`
//! answers what the proxy answers itself, and `access_log` and `metrics` record it. `config`
//! holds the checked configuration; `admin` serves the loopback admin listener; `server`
//! assembles the Pingora server from a configuration (`daemon`: what daemon mode adds for
//! systemd); `security_log` writes the firewall's events to files and ships them to S3.

pub mod access_log;
pub mod admin;
pub mod cache;
pub mod config;
pub mod daemon;
pub mod fleet;
pub mod forwarded;
pub mod hygiene;
pub mod limits;
pub mod listener;
pub mod metrics;
pub mod proxy;
pub mod respond;
pub mod routing;
pub mod security;
pub mod security_log;
pub mod server;
pub mod static_files;
pub mod upstream;
pub mod websocket;

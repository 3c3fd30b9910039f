//! HTTP caching as a shared cache under RFC 9111.
//!
//! `directives` reads Cache-Control (and Pragma, and targeted fields such as
//! CDN-Cache-Control) into typed directives; `dates` reads HTTP-dates; `policy` decides from a
//! request and its response whether the response may be stored, for how long it is fresh, when
//! it may be served stale, and which headers a key must vary on; `age` computes how old a
//! stored response is; `serving` decides whether a stored response may answer a request now,
//! or stand in for a failing origin; `key` builds the primary key from a route's template and
//! the secondary key from Vary; `update` freshens a stored response with a 304 and lists what
//! an unsafe request invalidates. They are pure functions of headers and times, so every
//! rule of the RFC is tested on its own.
//!
//! Around them: `store` keeps a zone's objects (a memory tier in front of a disk tier) behind
//! Pingora's `Storage`; `zones` opens the configured zones with their cache locks; `admission`
//! counts uses for `min_uses`; `phases` applies the rules in the proxy's cache phases;
//! `purge` removes objects by URL or prefix, on this proxy or across the fleet; `metrics`
//! counts it all.

pub mod admission;
pub mod age;
pub mod dates;
pub mod directives;
pub mod key;
pub mod metrics;
pub mod phases;
pub mod policy;
pub mod purge;
pub mod serving;
pub mod store;
pub mod update;
pub mod zones;

//! voltfleet-proxy: the edge reverse proxy on Pingora that takes NGINX's place on the web tier.
//!
//! The crate is part of the workspace from the start so the layout and the shared lints hold;
//! its listeners, routing, load balancing and TLS are built in their own change.

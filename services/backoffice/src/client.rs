//! Who the client is, for counting failed sign-ins per address and the audit log.
//!
//! `X-Forwarded-For` is believed only when the socket peer is in
//! `backoffice.trusted_proxies`, and then its first entry is the client (the voltfleet proxy
//! replaces the header when its own peer is not trusted). Nothing else is read.

use std::net::{IpAddr, SocketAddr};

use axum::extract::ConnectInfo;
use axum::http::HeaderMap;
use axum::http::request::Parts;
use voltfleet_core::config::TrustedProxies;
use voltfleet_core::context::AppContext;

/// The client behind `peer`, given the request's headers and the trusted proxies.
pub fn client_address(peer: IpAddr, headers: &HeaderMap, trusted: &TrustedProxies) -> IpAddr {
    if !trusted.contains(peer) {
        return peer;
    }
    headers
        .get("x-forwarded-for")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(',').next())
        .and_then(|first| first.trim().parse::<IpAddr>().ok())
        .map_or(peer, |ip| ip.to_canonical())
}

/// The client of a request; the unspecified address when the server runs without connection
/// info (it always has it under `voltfleet_core::http::serve`).
pub fn of(parts: &Parts, ctx: &AppContext) -> IpAddr {
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::from([0, 0, 0, 0]), |ConnectInfo(address)| {
            address.ip().to_canonical()
        });
    client_address(
        peer,
        &parts.headers,
        &ctx.settings.backoffice_ui.trusted_proxies,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use voltfleet_core::config::ConfigValue;

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_peers() {
        let trusted = TrustedProxies::from_text("127.0.0.1").expect("valid");
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", "203.0.113.9".parse().expect("a value"));
        let ip = |text: &str| text.parse::<IpAddr>().expect("an address");
        assert_eq!(
            client_address(ip("127.0.0.1"), &headers, &trusted),
            ip("203.0.113.9")
        );
        assert_eq!(
            client_address(ip("192.0.2.1"), &headers, &trusted),
            ip("192.0.2.1")
        );
    }
}

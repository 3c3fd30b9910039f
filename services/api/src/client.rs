//! Who the client is, for counting failed logins per address.
//!
//! The API runs behind the proxy (and in AWS the ALB), so the socket peer is usually a proxy.
//! `X-Forwarded-For` is believed only when the peer is in `api.trusted_proxies`, and then its
//! first entry is the client: the voltfleet proxy replaces the header when its own peer is not
//! trusted, so the first entry is what the outermost trusted hop saw. From any other peer the
//! socket address is the client. Nothing else (`Forwarded`, `X-Real-IP`) is read.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::HeaderMap;
use axum::http::request::Parts;
use voltfleet_core::config::TrustedProxies;
use voltfleet_core::context::AppContext;

use crate::error::ApiError;

/// The client's address as this API believes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddress(pub IpAddr);

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

impl FromRequestParts<AppContext> for ClientAddress {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, ctx: &AppContext) -> Result<Self, ApiError> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(address)| address.ip().to_canonical())
            .ok_or_else(|| {
                ApiError::Internal(
                    "the server was started without connection info (use voltfleet_core::http::serve)"
                        .into(),
                )
            })?;
        Ok(ClientAddress(client_address(
            peer,
            &parts.headers,
            &ctx.settings.api_accounts.trusted_proxies,
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use voltfleet_core::config::ConfigValue;

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_peers() {
        let trusted = TrustedProxies::from_text("10.0.0.0/8").expect("valid");
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-forwarded-for",
            "203.0.113.7, 10.0.0.2".parse().expect("a header value"),
        );
        let ip = |text: &str| text.parse::<IpAddr>().expect("an address");
        assert_eq!(
            client_address(ip("10.1.2.3"), &headers, &trusted),
            ip("203.0.113.7")
        );
        assert_eq!(
            client_address(ip("192.0.2.1"), &headers, &trusted),
            ip("192.0.2.1")
        );
        headers.insert(
            "x-forwarded-for",
            "garbage".parse().expect("a header value"),
        );
        assert_eq!(
            client_address(ip("10.1.2.3"), &headers, &trusted),
            ip("10.1.2.3")
        );
        assert_eq!(
            client_address(ip("10.1.2.3"), &HeaderMap::new(), &trusted),
            ip("10.1.2.3")
        );
    }
}

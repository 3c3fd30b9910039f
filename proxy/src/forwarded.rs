//! Who the client is, and what the upstreams are told about it: X-Forwarded-For,
//! X-Forwarded-Proto and X-Request-Id, believed only from trusted proxies.
//!
//! Behind an ALB the socket peer is the ALB; the client is the right-most address in
//! X-Forwarded-For that is not itself a trusted proxy (NGINX's `real_ip_recursive on`). From any
//! other peer the headers are the client's own words and are replaced, never extended.

use std::net::IpAddr;

use http::HeaderValue;
use ipnet::IpNet;

/// The longest request id accepted from a trusted hop; longer ones are replaced.
const MAX_REQUEST_ID_LEN: usize = 128;

/// Whether `peer` is one of the trusted proxies.
pub fn is_trusted(peer: IpAddr, trusted: &[IpNet]) -> bool {
    trusted.iter().any(|net| net.contains(&peer))
}

/// The client's address as far as it can be believed.
pub fn client_address(peer: IpAddr, forwarded_for: Option<&str>, trusted: &[IpNet]) -> IpAddr {
    if !is_trusted(peer, trusted) {
        return peer;
    }
    let Some(chain) = forwarded_for else {
        return peer;
    };
    let mut client = peer;
    for hop in chain.rsplit(',') {
        match hop.trim().parse::<IpAddr>() {
            Ok(address) => {
                client = address;
                if !is_trusted(address, trusted) {
                    break;
                }
            }
            // A garbled entry ends what can be believed; the last good hop is the client.
            Err(_) => break,
        }
    }
    client
}

/// The X-Forwarded-For to send upstream.
pub fn forwarded_for(peer: IpAddr, incoming: Option<&str>, trusted: bool) -> String {
    match incoming.map(str::trim).filter(|chain| !chain.is_empty()) {
        Some(chain) if trusted => format!("{chain}, {peer}"),
        _ => peer.to_string(),
    }
}

/// The X-Forwarded-Proto to send upstream: a trusted hop's word, else the listener's scheme.
pub fn forwarded_proto(incoming: Option<&str>, trusted: bool, tls: bool) -> &'static str {
    match incoming.map(str::trim) {
        Some("https") if trusted => "https",
        Some("http") if trusted => "http",
        _ if tls => "https",
        _ => "http",
    }
}

/// A request's id, as sent upstream and back to the client: visible ASCII only.
#[derive(Debug, Clone)]
pub struct RequestId(HeaderValue);

impl RequestId {
    pub fn as_str(&self) -> &str {
        self.0.to_str().unwrap_or_default()
    }

    /// The id as a header value (shares the bytes, copies nothing).
    pub fn header_value(&self) -> HeaderValue {
        self.0.clone()
    }
}

impl Default for RequestId {
    fn default() -> Self {
        RequestId(HeaderValue::from_static(""))
    }
}

/// The request id to pass on: a trusted hop's id when it is sane, else a new one.
pub fn request_id(incoming: Option<&HeaderValue>, trusted: bool) -> RequestId {
    match incoming {
        Some(id)
            if trusted
                && !id.is_empty()
                && id.len() <= MAX_REQUEST_ID_LEN
                && id.as_bytes().iter().all(u8::is_ascii_graphic) =>
        {
            RequestId(id.clone())
        }
        _ => {
            let mut text = [0u8; uuid::fmt::Hyphenated::LENGTH];
            let id = uuid::Uuid::new_v4().hyphenated().encode_lower(&mut text);
            RequestId(HeaderValue::from_str(id).unwrap_or_else(|_| HeaderValue::from_static("")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|n| n.parse().expect("valid net")).collect()
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("valid ip")
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_peers() {
        let trusted = nets(&["10.0.0.0/16"]);
        let chain = Some("203.0.113.9, 10.0.3.4");
        assert_eq!(
            client_address(ip("10.0.1.1"), chain, &trusted),
            ip("203.0.113.9")
        );
        assert_eq!(
            client_address(ip("198.51.100.7"), chain, &trusted),
            ip("198.51.100.7")
        );
        assert_eq!(
            client_address(ip("10.0.1.1"), None, &trusted),
            ip("10.0.1.1")
        );
        // A client cannot hide behind an address it wrote itself left of a real hop.
        assert_eq!(
            client_address(ip("10.0.1.1"), Some("1.2.3.4, 198.51.100.7"), &trusted),
            ip("198.51.100.7")
        );
        assert_eq!(
            client_address(ip("10.0.1.1"), Some("garbage, 198.51.100.7"), &trusted),
            ip("198.51.100.7")
        );
        assert_eq!(
            client_address(ip("10.0.1.1"), Some("garbage"), &trusted),
            ip("10.0.1.1")
        );
    }

    #[test]
    fn forwarded_headers_are_replaced_for_untrusted_peers() {
        assert_eq!(
            forwarded_for(ip("10.0.1.1"), Some("1.1.1.1"), true),
            "1.1.1.1, 10.0.1.1"
        );
        assert_eq!(
            forwarded_for(ip("198.51.100.7"), Some("1.1.1.1"), false),
            "198.51.100.7"
        );
        assert_eq!(forwarded_proto(Some("https"), true, false), "https");
        assert_eq!(forwarded_proto(Some("https"), false, false), "http");
        assert_eq!(forwarded_proto(Some("gopher"), true, true), "https");
        let id = |text: &'static str, trusted| {
            request_id(Some(&HeaderValue::from_static(text)), trusted)
                .as_str()
                .to_string()
        };
        assert_eq!(id("abc-123", true), "abc-123");
        assert_ne!(id("abc-123", false), "abc-123");
        assert_ne!(id("a b", true), "a b");
        let fresh = request_id(None, false);
        assert_eq!(fresh.as_str().len(), 36, "{fresh:?}");
        assert!(uuid::Uuid::parse_str(fresh.as_str()).is_ok(), "{fresh:?}");
    }
}

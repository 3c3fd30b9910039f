//! Message hygiene at the proxy's two edges: requests whose framing two HTTP parsers could
//! read differently — the shapes of request smuggling — are refused before anything reaches an
//! upstream (RFC 9112 §6.1, §6.3), and an upstream's connection-specific fields never travel on
//! to the client or into the cache (RFC 9110 §7.6.1).

use http::header::{CONNECTION, CONTENT_LENGTH, HOST, TE, TRAILER, TRANSFER_ENCODING, UPGRADE};
use http::{HeaderMap, HeaderName, StatusCode};

/// Why a request's framing is ambiguous, or `None` when it is sound. `raw_header` is the
/// HTTP/1 header block as received: the parser drops Content-Length when Transfer-Encoding is
/// present (RFC 9112 lets it), and the raw block is where the conflict can still be seen.
pub fn framing_problem(headers: &HeaderMap, raw_header: Option<&[u8]>) -> Option<&'static str> {
    if raw_header.is_some_and(has_length_and_encoding) {
        return Some("the request has both Content-Length and Transfer-Encoding");
    }
    let lengths: Vec<&[u8]> = headers
        .get_all(CONTENT_LENGTH)
        .iter()
        .flat_map(|value| value.as_bytes().split(|b| *b == b','))
        .map(<[u8]>::trim_ascii)
        .collect();
    let encodings: Vec<&[u8]> = headers
        .get_all(TRANSFER_ENCODING)
        .iter()
        .flat_map(|value| value.as_bytes().split(|b| *b == b','))
        .map(<[u8]>::trim_ascii)
        .collect();
    if !lengths.is_empty() && !encodings.is_empty() {
        return Some("the request has both Content-Length and Transfer-Encoding");
    }
    if lengths
        .iter()
        .any(|length| length.is_empty() || !length.iter().all(u8::is_ascii_digit))
    {
        return Some("the Content-Length is not a number");
    }
    if lengths.windows(2).any(|pair| pair[0] != pair[1]) {
        return Some("the request has conflicting Content-Length values");
    }
    if let Some(last) = encodings.last()
        && !last.eq_ignore_ascii_case(b"chunked")
    {
        return Some("the final Transfer-Encoding is not chunked");
    }
    if headers.get_all(HOST).iter().count() > 1 {
        return Some("the request has more than one Host header");
    }
    None
}

/// Whether the raw header block names both Content-Length and Transfer-Encoding.
fn has_length_and_encoding(raw: &[u8]) -> bool {
    let names = raw
        .split(|b| *b == b'\n')
        .skip(1)
        .filter_map(|line| line.split(|b| *b == b':').next())
        .map(<[u8]>::trim_ascii);
    let (mut length, mut encoding) = (false, false);
    for name in names {
        length |= name.eq_ignore_ascii_case(b"content-length");
        encoding |= name.eq_ignore_ascii_case(b"transfer-encoding");
    }
    length && encoding
}

/// Whether `name` describes one connection rather than the message: the fields RFC 9110
/// §7.6.1 lists and the legacy ones still seen in the wild.
pub fn is_hop_by_hop(name: &HeaderName) -> bool {
    *name == CONNECTION
        || *name == TE
        || *name == TRAILER
        || *name == TRANSFER_ENCODING
        || *name == UPGRADE
        || matches!(name.as_str(), "keep-alive" | "proxy-connection")
}

/// The fields `Connection` nominates, in every `Connection` line; `close` is an option of the
/// connection, not a field.
pub fn connection_nominated(headers: &HeaderMap) -> Vec<HeaderName> {
    headers
        .get_all(CONNECTION)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|text| text.split(','))
        .filter_map(|name| name.trim().parse::<HeaderName>().ok())
        .filter(|name| name.as_str() != "close")
        .collect()
}

/// The upstream response's fields that must not be forwarded: the hop-by-hop ones and those
/// its `Connection` nominates. The framing fields stay (the HTTP/1 writer frames the body by
/// them and puts its own `Connection` in), and so does a `101`'s handshake, which the client
/// needs to see.
pub fn hop_by_hop_response_fields(status: StatusCode, headers: &HeaderMap) -> Vec<HeaderName> {
    if status == StatusCode::SWITCHING_PROTOCOLS {
        return Vec::new();
    }
    let keeps_framing = |name: &HeaderName| *name == TRANSFER_ENCODING || *name == CONTENT_LENGTH;
    let mut fields: Vec<HeaderName> = connection_nominated(headers)
        .into_iter()
        .chain(headers.keys().filter(|name| is_hop_by_hop(name)).cloned())
        .filter(|name| !keeps_framing(name))
        .collect();
    fields.sort_by(|a, b| a.as_str().cmp(b.as_str()));
    fields.dedup();
    fields
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_specific_response_fields_are_named_for_removal() {
        let mut headers = HeaderMap::new();
        for (name, value) in [
            ("connection", "close, X-Session-Hint"),
            ("connection", "keep-alive"),
            ("keep-alive", "timeout=5"),
            ("x-session-hint", "abc"),
            ("trailer", "x-checksum"),
            ("upgrade", "h2c"),
            ("transfer-encoding", "chunked"),
            ("cache-control", "max-age=60"),
        ] {
            headers.append(
                HeaderName::from_bytes(name.as_bytes()).expect("valid name"),
                value.parse().expect("valid value"),
            );
        }
        let names: Vec<String> = hop_by_hop_response_fields(StatusCode::OK, &headers)
            .iter()
            .map(|name| name.as_str().to_owned())
            .collect();
        assert_eq!(
            names,
            [
                "connection",
                "keep-alive",
                "trailer",
                "upgrade",
                "x-session-hint"
            ]
        );
        assert!(hop_by_hop_response_fields(StatusCode::SWITCHING_PROTOCOLS, &headers).is_empty());
    }

    fn check(headers: &[(&str, &str)], expected: Option<&str>) {
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            map.append(
                http::HeaderName::from_bytes(name.as_bytes()).expect("valid name"),
                value.parse().expect("valid value"),
            );
        }
        let found = framing_problem(&map, None);
        match expected {
            None => assert_eq!(found, None, "{headers:?}"),
            Some(words) => assert!(
                found.is_some_and(|problem| problem.contains(words)),
                "{headers:?}: {found:?}"
            ),
        }
    }

    #[test]
    fn ambiguous_framing_is_refused() {
        check(&[("content-length", "5")], None);
        check(&[("content-length", "5"), ("content-length", "5")], None);
        check(&[("transfer-encoding", "gzip, chunked")], None);
        check(&[("transfer-encoding", "Chunked")], None);
        check(
            &[("content-length", "5"), ("transfer-encoding", "chunked")],
            Some("both"),
        );
        check(
            &[("content-length", "5"), ("content-length", "6")],
            Some("conflicting"),
        );
        check(&[("content-length", "5, 6")], Some("conflicting"));
        check(&[("content-length", "-1")], Some("not a number"));
        check(&[("content-length", "")], Some("not a number"));
        check(
            &[("transfer-encoding", "chunked, gzip")],
            Some("not chunked"),
        );
        check(&[("transfer-encoding", "xchunked")], Some("not chunked"));
        check(&[("host", "a"), ("host", "b")], Some("Host"));
    }

    #[test]
    fn the_raw_header_block_shows_what_the_parser_dropped() {
        let raw = b"POST / HTTP/1.1\r\nHost: x\r\ncontent-LENGTH: 6\r\nTransfer-Encoding: chunked\r\n\r\n";
        let found = framing_problem(&HeaderMap::new(), Some(raw));
        assert!(found.is_some_and(|p| p.contains("both")), "{found:?}");
        let fine = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\n\r\n";
        assert_eq!(framing_problem(&HeaderMap::new(), Some(fine)), None);
    }
}

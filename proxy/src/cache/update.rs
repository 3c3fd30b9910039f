//! What changes stored responses besides storing new ones: a 304 that freshens one (RFC 9111
//! §3.2, §4.3.4), and an unsafe request that invalidates the URLs it may have changed (§4.4).

use http::header::{CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_LOCATION, CONTENT_RANGE, LOCATION};
use http::{HeaderMap, HeaderName, Method, StatusCode};

use crate::hygiene::{connection_nominated, is_hop_by_hop};

/// Replaces the stored header fields with those of a 304 (or a HEAD answer) that validated
/// the stored response. Left alone: hop-by-hop fields (and those `Connection` names), the
/// framing and coding of the stored body (`Content-Length`, `Content-Encoding`,
/// `Content-Range`), and `strip` (fields never kept with the response).
pub fn freshen(stored: &mut HeaderMap, validated_by: &HeaderMap, strip: &[HeaderName]) {
    let named_by_connection = connection_nominated(validated_by);
    let kept = |name: &HeaderName| {
        !(is_hop_by_hop(name)
            || *name == CONTENT_LENGTH
            || *name == CONTENT_ENCODING
            || *name == CONTENT_RANGE
            || strip.contains(name)
            || named_by_connection.contains(name))
    };
    for name in validated_by.keys().filter(|name| kept(name)) {
        stored.remove(name);
        for value in validated_by.get_all(name) {
            stored.append(name.clone(), value.clone());
        }
    }
}

/// The paths (with queries) on the request's own origin that a response to an unsafe request
/// invalidates: the target, and `Location` / `Content-Location` when they point to the same
/// origin (another origin's entries are never touched, so no one can purge them by proxy).
/// Empty for safe methods and for error answers, which changed nothing.
pub fn invalidated(
    method: &Method,
    status: StatusCode,
    origin: &str,
    target: &str,
    response_headers: &HeaderMap,
) -> Vec<String> {
    let safe = matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
    );
    if safe || !(status.is_success() || status.is_redirection()) {
        return Vec::new();
    }
    let mut paths = vec![target.to_owned()];
    for name in [LOCATION, CONTENT_LOCATION] {
        let Some(value) = response_headers.get(name).and_then(|v| v.to_str().ok()) else {
            continue;
        };
        if let Some(path) = same_origin_path(origin, value.trim())
            && !paths.contains(&path)
        {
            paths.push(path);
        }
    }
    paths
}

/// `value` as a path on `origin` (`https://host[:port]`), if it is one: an absolute path, or
/// an absolute URI on the same origin (letter case of scheme and host ignored).
fn same_origin_path(origin: &str, value: &str) -> Option<String> {
    if value.starts_with('/') && !value.starts_with("//") {
        return Some(value.to_owned());
    }
    let origin = origin.trim_end_matches('/');
    let prefix = value.get(..origin.len())?;
    if !prefix.eq_ignore_ascii_case(origin) {
        return None;
    }
    let rest = &value[origin.len()..];
    match rest.chars().next() {
        None => Some("/".to_owned()),
        Some('/') => Some(rest.to_owned()),
        Some('?') => Some(format!("/{rest}")),
        // `https://example.com.evil/` shares the prefix but not the origin.
        Some(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    fn map(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(
                name.parse::<HeaderName>().expect("name"),
                HeaderValue::from_str(value).expect("value"),
            );
        }
        headers
    }

    #[test]
    fn a_304_updates_what_it_carries_and_nothing_else() {
        let mut stored = map(&[
            ("cache-control", "max-age=60"),
            ("etag", "\"v1\""),
            ("content-length", "1200"),
            ("content-encoding", "br"),
            ("x-kept", "yes"),
        ]);
        let not_modified = map(&[
            ("cache-control", "max-age=300"),
            ("etag", "\"v1\""),
            ("content-length", "0"),
            ("content-encoding", "identity"),
            ("connection", "x-hop"),
            ("x-hop", "1"),
            ("keep-alive", "timeout=5"),
            ("set-cookie", "a=1"),
            ("date", "Wed, 02 Dec 2026 06:00:00 GMT"),
        ]);
        freshen(&mut stored, &not_modified, &[http::header::SET_COOKIE]);
        assert_eq!(stored["cache-control"], "max-age=300");
        assert_eq!(stored["content-length"], "1200");
        assert_eq!(stored["content-encoding"], "br");
        assert_eq!(stored["x-kept"], "yes");
        assert_eq!(stored["date"], "Wed, 02 Dec 2026 06:00:00 GMT");
        for absent in ["x-hop", "keep-alive", "connection", "set-cookie"] {
            assert!(!stored.contains_key(absent), "{absent}");
        }
    }

    #[test]
    fn a_field_with_several_lines_is_replaced_whole() {
        let mut stored = map(&[("vary", "accept"), ("vary", "accept-language")]);
        freshen(&mut stored, &map(&[("vary", "accept-encoding")]), &[]);
        let values: Vec<_> = stored.get_all("vary").iter().collect();
        assert_eq!(values, ["accept-encoding"]);
    }

    #[test]
    fn unsafe_requests_invalidate_their_target_and_same_origin_locations() {
        let origin = "https://example.com";
        let headers = map(&[
            ("location", "https://EXAMPLE.com/items/7"),
            ("content-location", "https://other.example/items/7"),
        ]);
        let paths = invalidated(
            &Method::POST,
            StatusCode::CREATED,
            origin,
            "/items",
            &headers,
        );
        assert_eq!(paths, ["/items", "/items/7"]);
        let relative = map(&[("content-location", "/items/7?v=2")]);
        assert_eq!(
            invalidated(&Method::PUT, StatusCode::OK, origin, "/items/7", &relative),
            ["/items/7", "/items/7?v=2"]
        );
    }

    #[test]
    fn safe_methods_and_errors_invalidate_nothing() {
        let origin = "https://example.com";
        let none = HeaderMap::new();
        assert!(invalidated(&Method::GET, StatusCode::OK, origin, "/a", &none).is_empty());
        assert!(
            invalidated(&Method::DELETE, StatusCode::FORBIDDEN, origin, "/a", &none).is_empty()
        );
        assert_eq!(
            invalidated(&Method::DELETE, StatusCode::NO_CONTENT, origin, "/a", &none),
            ["/a"]
        );
    }

    #[test]
    fn lookalike_origins_are_not_the_same_origin() {
        assert_eq!(
            same_origin_path("https://example.com", "https://example.com.evil/x"),
            None
        );
        assert_eq!(
            same_origin_path("https://example.com", "//example.com/x"),
            None
        );
        assert_eq!(
            same_origin_path("https://example.com", "https://example.com"),
            Some("/".into())
        );
        assert_eq!(
            same_origin_path("https://example.com", "https://example.com?q"),
            Some("/?q".into())
        );
    }
}

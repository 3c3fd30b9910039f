//! Requests whose framing two HTTP parsers could read differently — the shapes of request
//! smuggling — are refused before anything reaches an upstream (RFC 9112 §6.1, §6.3).

use http::HeaderMap;
use http::header::{CONTENT_LENGTH, HOST, TRANSFER_ENCODING};

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

#[cfg(test)]
mod tests {
    use super::*;

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

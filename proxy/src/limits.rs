//! Bounds on one request's header and body, refused before the upstream sees them.

use pingora::prelude::*;
use pingora::proxy::Session;

use crate::config::Limits;

/// 414 for a target over the limit, 431 for a header block or a count of fields over it, 413
/// for a declared body over it.
pub fn check_request(session: &Session, raw_header: Option<&[u8]>, limits: &Limits) -> Option<u16> {
    let request = session.req_header();
    let target = request
        .uri
        .path_and_query()
        .map_or(0, |target| target.as_str().len());
    if target > limits.max_uri_bytes {
        return Some(414);
    }
    // HTTP/2 has no raw block: count names, values and the per-field overhead HPACK assumes.
    let header_bytes = raw_header.map_or_else(
        || {
            request
                .headers
                .iter()
                .map(|(name, value)| name.as_str().len() + value.len() + 32)
                .sum::<usize>()
                + request.uri.to_string().len()
        },
        <[u8]>::len,
    );
    if header_bytes > limits.max_request_header_bytes
        || request.headers.len() > limits.max_request_headers
    {
        return Some(431);
    }
    let declared = request
        .headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    match declared {
        Some(length)
            if limits.max_request_body_bytes > 0 && length > limits.max_request_body_bytes =>
        {
            Some(413)
        }
        _ => None,
    }
}

/// Fails a request whose streamed body has passed the limit.
pub fn check_body(received: u64, limits: &Limits) -> Result<()> {
    if limits.max_request_body_bytes > 0 && received > limits.max_request_body_bytes {
        return Error::e_explain(
            ErrorType::HTTPStatus(413),
            format!(
                "the request body passed server.max_request_body_bytes ({})",
                limits.max_request_body_bytes
            ),
        );
    }
    Ok(())
}

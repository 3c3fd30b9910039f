//! Answers the proxy gives itself, without an upstream: errors, redirects, unknown routes.
//! Bodies are short and generic; they never name an internal address.

use bytes::Bytes;
use pingora::prelude::*;
use pingora::proxy::Session;

/// A short text answer.
pub async fn plain(
    session: &mut Session,
    status: u16,
    body: &'static str,
    request_id: &str,
) -> Result<()> {
    text(session, status, body, request_id, None).await
}

/// How long a client is told to wait before trying again after a 503.
const RETRY_AFTER_SECONDS: u64 = 5;

/// The answer to a request that could not be proxied; a 503 says when to try again.
pub async fn error(session: &mut Session, status: u16, request_id: &str) -> Result<()> {
    let retry_after = (status == 503).then_some(RETRY_AFTER_SECONDS);
    let body = match status {
        400 => "Bad request.\n",
        408 => "The request did not arrive in time.\n",
        413 => "The request is too large.\n",
        502 => "The service is unreachable.\n",
        503 => "The service is unavailable; try again shortly.\n",
        504 => "The service did not answer in time.\n",
        _ => "The request failed.\n",
    };
    text(session, status, body, request_id, retry_after).await
}

/// Writes a complete text response and ends the connection's keep-alive.
async fn text(
    session: &mut Session,
    status: u16,
    body: &'static str,
    request_id: &str,
    retry_after: Option<u64>,
) -> Result<()> {
    let extra = retry_after.map(|seconds| ("Retry-After", seconds.to_string()));
    let body = Bytes::from_static(body.as_bytes());
    complete(session, status, TEXT, body, request_id, extra).await
}

const TEXT: &str = "text/plain; charset=utf-8";

/// Writes a whole response the proxy gives itself, not to be stored, and ends the
/// connection's keep-alive; `extra` is one more header when the answer needs it.
async fn complete(
    session: &mut Session,
    status: u16,
    content_type: &str,
    body: Bytes,
    request_id: &str,
    extra: Option<(&str, String)>,
) -> Result<()> {
    let mut response = ResponseHeader::build(status, Some(5))?;
    response.insert_header("Content-Type", content_type)?;
    response.insert_header("Content-Length", body.len().to_string())?;
    response.insert_header("X-Request-Id", request_id)?;
    response.insert_header("Cache-Control", "no-store")?;
    if let Some((name, value)) = extra {
        response.insert_header(name.to_owned(), value)?;
    }
    session.set_keepalive(None);
    session
        .write_response_header(Box::new(response), false)
        .await?;
    session.write_response_body(Some(body), true).await
}

/// 405 with the methods the route accepts.
pub async fn method_not_allowed(
    session: &mut Session,
    allowed: &[http::Method],
    request_id: &str,
) -> Result<()> {
    let allow: Vec<&str> = allowed.iter().map(http::Method::as_str).collect();
    let body = Bytes::from_static(b"The method is not allowed here.\n");
    let extra = Some(("Allow", allow.join(", ")));
    complete(session, 405, TEXT, body, request_id, extra).await
}

/// The answer to a request the firewall refused: a problem document naming the rule and the
/// request id (for the operator to find it in the security log), never what matched.
pub async fn refused(session: &mut Session, rule: u32, request_id: &str) -> Result<()> {
    let body = serde_json::json!({
        "type": "about:blank",
        "title": "Forbidden",
        "status": 403,
        "detail": "The request was refused by the web application firewall. If it was legitimate, quote the request id to the operator.",
        "rule": rule,
        "request_id": request_id,
    })
    .to_string();
    let problem = "application/problem+json";
    complete(session, 403, problem, Bytes::from(body), request_id, None).await
}

/// 429 for a request over a rate limit, with the whole seconds after which one would pass
/// (at least 1: `Retry-After: 0` invites an immediate retry that would be refused too).
pub async fn too_many_requests(
    session: &mut Session,
    retry_after: std::time::Duration,
    request_id: &str,
) -> Result<()> {
    let seconds = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
    let seconds = seconds.max(1);
    let body = serde_json::json!({
        "type": "about:blank",
        "title": "Too Many Requests",
        "status": 429,
        "detail": format!("Too many requests from this address; try again in {seconds} s."),
        "retry_after": seconds,
        "request_id": request_id,
    })
    .to_string();
    let problem = "application/problem+json";
    let extra = Some(("Retry-After", seconds.to_string()));
    complete(session, 429, problem, Bytes::from(body), request_id, extra).await
}

/// A permanent redirect to the same address over HTTPS (308 keeps the method and body).
pub async fn redirect_to_https(
    session: &mut Session,
    host: Option<&str>,
    port: u16,
    request_id: &str,
) -> Result<()> {
    let Some(host) = host else {
        return plain(session, 400, "A Host header is required.\n", request_id).await;
    };
    let name = if host.starts_with('[') {
        host.split_inclusive(']').next().unwrap_or(host)
    } else {
        host.rsplit_once(':').map_or(host, |(name, _)| name)
    };
    let path_and_query = session
        .req_header()
        .uri
        .path_and_query()
        .map_or("/", |pq| pq.as_str());
    let location = if port == 443 {
        format!("https://{name}{path_and_query}")
    } else {
        format!("https://{name}:{port}{path_and_query}")
    };
    let mut response = ResponseHeader::build(308, Some(4))?;
    response.insert_header("Location", location)?;
    response.insert_header("Content-Length", "0")?;
    response.insert_header("X-Request-Id", request_id)?;
    session
        .write_response_header(Box::new(response), true)
        .await
}

//! An origin for cache tests: every response carries the caching headers the request's query
//! asks for, so each test states the origin's behaviour in its URLs, and the origin counts
//! the requests that reached it per path.
//!
//! Query parameters: `cc` (Cache-Control), `cdn_cc` (CDN-Cache-Control), `etag`, `vary`,
//! `expires`, `cookie` (Set-Cookie), `hop` (a field `X-Hop` that `Connection` names, with
//! `Keep-Alive` and `Trailer` beside it: what must not travel past the proxy), `status`, `ms` (delay before answering), `kb` (body size in KiB), `drip_ms` (send the body
//! in 64 KiB pieces this far apart, for fills that take a while). A request whose
//! `If-None-Match` matches `etag` gets a 304.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};

#[derive(Debug, Clone)]
pub struct CacheOrigin {
    pub address: SocketAddr,
    state: Arc<OriginState>,
}

#[derive(Debug, Default)]
struct OriginState {
    requests: Mutex<HashMap<String, usize>>,
    failing: AtomicBool,
}

impl CacheOrigin {
    pub async fn start() -> anyhow::Result<CacheOrigin> {
        let state = Arc::new(OriginState::default());
        let app = Router::new().fallback(answer).with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(CacheOrigin { address, state })
    }

    /// Requests for `path` (without its query) that reached the origin.
    pub fn requests(&self, path: &str) -> usize {
        self.state
            .requests
            .lock()
            .map(|requests| requests.get(path).copied().unwrap_or(0))
            .unwrap_or(0)
    }

    /// Makes every answer a 503 (or normal again).
    pub fn set_failing(&self, failing: bool) {
        self.state.failing.store(failing, Ordering::SeqCst);
    }
}

async fn answer(
    State(state): State<Arc<OriginState>>,
    uri: Uri,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let count = {
        let Ok(mut requests) = state.requests.lock() else {
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        };
        let count = requests.entry(uri.path().to_string()).or_insert(0);
        *count += 1;
        *count
    };
    if let Some(ms) = query.get("ms").and_then(|ms| ms.parse().ok()) {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    if state.failing.load(Ordering::SeqCst) {
        return (StatusCode::SERVICE_UNAVAILABLE, "origin failing\n").into_response();
    }
    let mut response_headers = HeaderMap::new();
    let mut set = |name: &'static str, value: Option<&String>| {
        if let Some(value) = value.and_then(|v| HeaderValue::from_str(v).ok()) {
            response_headers.insert(name, value);
        }
    };
    set("cache-control", query.get("cc"));
    set("etag", query.get("etag"));
    set("vary", query.get("vary"));
    set("expires", query.get("expires"));
    set("set-cookie", query.get("cookie"));
    set("cdn-cache-control", query.get("cdn_cc"));
    if let Some(hop) = query.get("hop") {
        let connection_specific = [
            ("connection", "X-Hop"),
            ("x-hop", hop.as_str()),
            ("keep-alive", "timeout=30"),
            ("trailer", "X-Checksum"),
        ];
        for (name, value) in connection_specific {
            set(name, Some(&value.to_owned()));
        }
    }
    if let (Some(etag), Some(presented)) = (query.get("etag"), headers.get("if-none-match"))
        && presented.as_bytes() == etag.as_bytes()
    {
        return (StatusCode::NOT_MODIFIED, response_headers).into_response();
    }
    let status = query
        .get("status")
        .and_then(|s| s.parse().ok())
        .and_then(|s| StatusCode::from_u16(s).ok())
        .unwrap_or(StatusCode::OK);
    let language = headers
        .get("accept-language")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-");
    let mut body = format!("{} #{count} lang={language}\n", uri.path()).into_bytes();
    if let Some(kb) = query.get("kb").and_then(|kb| kb.parse::<usize>().ok()) {
        body.resize(kb * 1024, b'.');
    }
    match query.get("drip_ms").and_then(|ms| ms.parse().ok()) {
        Some(pause) => (
            status,
            response_headers,
            drip(body, Duration::from_millis(pause)),
        )
            .into_response(),
        None => (status, response_headers, body).into_response(),
    }
}

/// The body in 64 KiB pieces, `pause` apart (chunked: its length is known only at its end).
fn drip(body: Vec<u8>, pause: Duration) -> Body {
    let pieces: Vec<axum::body::Bytes> = body
        .chunks(64 * 1024)
        .map(axum::body::Bytes::copy_from_slice)
        .collect();
    let stream = futures_util::stream::unfold(pieces.into_iter(), move |mut pieces| async move {
        let piece = pieces.next()?;
        tokio::time::sleep(pause).await;
        Some((Ok::<_, std::io::Error>(piece), pieces))
    });
    Body::from_stream(stream)
}

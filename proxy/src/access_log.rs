//! One JSON line per request on standard output, with NGINX's combined fields plus what an
//! operator needs to follow a request through the fleet: upstream address and time, request id,
//! TLS version, route.

use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use pingora::proxy::Session;
use serde::Serialize;

/// Writes access records to standard output (journald or the container log collects them).
#[derive(Debug, Clone, Default)]
pub struct AccessLog;

impl AccessLog {
    pub fn write(&self, record: &AccessRecord) {
        let Ok(mut line) = serde_json::to_vec(record) else {
            return;
        };
        line.push(b'\n');
        // A full or closed pipe must not fail the request; the line is lost instead.
        let _ = std::io::stdout().lock().write_all(&line);
    }
}

#[derive(Debug, Serialize)]
pub struct AccessRecord {
    time: String,
    client: Option<IpAddr>,
    method: String,
    uri: String,
    protocol: &'static str,
    status: u16,
    bytes_sent: usize,
    referer: Option<String>,
    user_agent: Option<String>,
    request_time: f64,
    upstream: Option<SocketAddr>,
    upstream_time: Option<f64>,
    request_id: String,
    tls_version: Option<String>,
    route: String,
    /// `X-Cache-Status` on caching routes (HIT, MISS, …); absent elsewhere.
    #[serde(skip_serializing_if = "Option::is_none")]
    cache: Option<&'static str>,
}

impl AccessRecord {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        session: &Session,
        client: Option<IpAddr>,
        status: u16,
        request_id: &str,
        upstream: Option<SocketAddr>,
        upstream_time: Option<Duration>,
        request_time: Duration,
        route: &str,
    ) -> AccessRecord {
        let request = session.req_header();
        let header = |name: &str| {
            request
                .headers
                .get(name)
                .and_then(|value| value.to_str().ok())
                .map(str::to_string)
        };
        AccessRecord {
            time: humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string(),
            client,
            method: request.method.to_string(),
            uri: request.uri.to_string(),
            protocol: match request.version {
                http::Version::HTTP_2 => "HTTP/2.0",
                http::Version::HTTP_10 => "HTTP/1.0",
                _ => "HTTP/1.1",
            },
            status,
            bytes_sent: session.body_bytes_sent(),
            referer: header("referer"),
            user_agent: header("user-agent"),
            request_time: request_time.as_secs_f64(),
            upstream,
            upstream_time: upstream_time.map(|t| t.as_secs_f64()),
            request_id: request_id.to_string(),
            tls_version: session
                .digest()
                .and_then(|digest| digest.ssl_digest.as_ref())
                .map(|tls| tls.version.to_string()),
            route: route.to_string(),
            cache: None,
        }
    }

    pub fn with_cache_status(mut self, status: Option<&'static str>) -> AccessRecord {
        self.cache = status;
        self
    }
}

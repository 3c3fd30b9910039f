//! A real HTTP and WebSocket server to put behind the proxy in tests: it says who it is,
//! echoes what the proxy told it, can be made unhealthy or slow, and counts what it served.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};

/// A running upstream server on 127.0.0.1.
#[derive(Debug, Clone)]
pub struct TestUpstream {
    pub name: String,
    pub address: SocketAddr,
    state: Arc<UpstreamState>,
}

#[derive(Debug, Default)]
struct UpstreamState {
    name: String,
    healthy: AtomicBool,
    served: AtomicUsize,
    health_checks: AtomicUsize,
}

#[derive(Debug, serde::Deserialize)]
struct SlowQuery {
    ms: Option<u64>,
}

impl TestUpstream {
    /// Starts a server named `name`; it runs until the test's runtime ends.
    pub async fn start(name: &str) -> anyhow::Result<TestUpstream> {
        let state = Arc::new(UpstreamState {
            name: name.to_string(),
            healthy: AtomicBool::new(true),
            ..UpstreamState::default()
        });
        let app = Router::new()
            .route("/healthz", get(health))
            .route("/ws", get(websocket))
            .route("/slow", any(slow))
            .fallback(echo)
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(TestUpstream {
            name: name.to_string(),
            address,
            state,
        })
    }

    /// Makes `/healthz` answer 200 (healthy) or 503.
    pub fn set_healthy(&self, healthy: bool) {
        self.state.healthy.store(healthy, Ordering::SeqCst);
    }

    /// Requests served, health checks excluded.
    pub fn served(&self) -> usize {
        self.state.served.load(Ordering::SeqCst)
    }

    pub fn health_checks(&self) -> usize {
        self.state.health_checks.load(Ordering::SeqCst)
    }
}

async fn health(State(state): State<Arc<UpstreamState>>) -> StatusCode {
    state.health_checks.fetch_add(1, Ordering::SeqCst);
    if state.healthy.load(Ordering::SeqCst) {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    }
}

/// Answers with the server's name and the request as it arrived, as JSON.
async fn echo(
    State(state): State<Arc<UpstreamState>>,
    method: Method,
    version: axum::http::Version,
    uri: Uri,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    state.served.fetch_add(1, Ordering::SeqCst);
    let headers: serde_json::Map<String, serde_json::Value> = headers
        .iter()
        .map(|(name, value)| {
            (
                name.to_string(),
                serde_json::Value::from(value.to_str().unwrap_or_default()),
            )
        })
        .collect();
    axum::Json(serde_json::json!({
        "upstream": state.name,
        "method": method.as_str(),
        "version": format!("{version:?}"),
        "uri": uri.to_string(),
        "headers": headers,
        "body_bytes": body.len(),
    }))
    .into_response()
}

/// Waits `ms` milliseconds before answering: a request in flight, or a hanging upstream.
async fn slow(State(state): State<Arc<UpstreamState>>, Query(query): Query<SlowQuery>) -> String {
    state.served.fetch_add(1, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(query.ms.unwrap_or(1000))).await;
    state.name.clone()
}

/// A WebSocket echo that accepts the `ocpp1.6` subprotocol and starts with a greeting naming
/// the server and the Authorization header it received (and the client certificate subject
/// the proxy asserted, when there is one).
async fn websocket(
    State(state): State<Arc<UpstreamState>>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    state.served.fetch_add(1, Ordering::SeqCst);
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    let mut authorization = header("authorization");
    let subject = header("x-client-cert-subject");
    if !subject.is_empty() {
        authorization = format!("{authorization} {subject}");
    }
    let name = state.name.clone();
    upgrade
        .protocols(["ocpp1.6"])
        .on_upgrade(move |socket| echo_socket(socket, name, authorization))
}

async fn echo_socket(mut socket: WebSocket, name: String, authorization: String) {
    let greeting = format!("{name} {authorization}");
    if socket.send(Message::Text(greeting.into())).await.is_err() {
        return;
    }
    while let Some(Ok(message)) = socket.recv().await {
        let reply = match message {
            Message::Text(text) => Message::Text(text),
            Message::Binary(data) => Message::Binary(data),
            Message::Close(_) => break,
            Message::Ping(_) | Message::Pong(_) => continue,
        };
        if socket.send(reply).await.is_err() {
            break;
        }
    }
}

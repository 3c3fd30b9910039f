//! The HTTP runtime every service process shares: `/healthz`, `/readyz` and `/metrics`, request
//! ids, access metrics and logs, and serving a listener until shutdown with a drain timeout.

use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderName, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

use crate::config::ServiceName;
use crate::context::AppContext;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Wraps a service's own routes with the operational endpoints and the observability layers.
pub fn service_app(service: ServiceName, ctx: AppContext, routes: Router<AppContext>) -> Router {
    routes
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .layer(middleware::from_fn_with_state(
            (service, ctx.clone()),
            record_request,
        ))
        .layer(
            TraceLayer::new_for_http().make_span_with(move |request: &Request| {
                let request_id = request
                    .headers()
                    .get(&REQUEST_ID)
                    .and_then(|value| value.to_str().ok())
                    .unwrap_or("");
                tracing::info_span!(
                    "request",
                    service = service.as_str(),
                    method = %request.method(),
                    path = request.uri().path(),
                    request_id,
                )
            }),
        )
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
        .with_state(ctx)
}

/// Alive: the process runs and answers. Says nothing about dependencies.
async fn healthz() -> &'static str {
    "ok\n"
}

/// Ready: the database and Redis answer now. 503 names what is down.
async fn readyz(State(ctx): State<AppContext>) -> Response {
    let readiness = ctx.readiness().await;
    let status = if readiness.ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(readiness)).into_response()
}

async fn metrics(State(ctx): State<AppContext>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        ctx.metrics.render(),
    )
        .into_response()
}

async fn record_request(
    State((service, ctx)): State<(ServiceName, AppContext)>,
    request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    // The route template, not the path: paths carry charger ids and would explode the labels.
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let response = next.run(request).await;
    let status = response.status();
    let method_label = match method.as_str() {
        known @ ("GET" | "HEAD" | "POST" | "PUT" | "PATCH" | "DELETE" | "OPTIONS") => known,
        _ => "other",
    };
    let status_class = match status.as_u16() {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    };
    ctx.metrics
        .http_requests
        .with_label_values(&[service.as_str(), method_label, &route, status_class])
        .inc();
    ctx.metrics
        .http_request_duration
        .with_label_values(&[service.as_str(), &route])
        .observe(started.elapsed().as_secs_f64());
    if status.is_server_error() {
        tracing::warn!(status = status.as_u16(), route, "Request failed.");
    } else {
        tracing::debug!(status = status.as_u16(), route, "Request answered.");
    }
    response
}

/// Serves `app` on `listener` until `shutdown` is cancelled, then lets requests in flight finish
/// for at most `drain_timeout`.
pub async fn serve(
    service: ServiceName,
    listener: TcpListener,
    app: Router,
    shutdown: CancellationToken,
    drain_timeout: Duration,
) -> std::io::Result<()> {
    let stopping = shutdown.clone();
    // The peer's address reaches handlers as `ConnectInfo<SocketAddr>` (the API's login
    // throttling counts per client address).
    let server = axum::serve(
        listener,
        app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(async move { stopping.cancelled().await })
    .into_future();
    tokio::pin!(server);
    tokio::select! {
        result = &mut server => return result,
        () = shutdown.cancelled() => {}
    }
    match tokio::time::timeout(drain_timeout, server).await {
        Ok(result) => result,
        Err(_) => {
            tracing::warn!(
                service = service.as_str(),
                drain_timeout_seconds = drain_timeout.as_secs_f64(),
                "Requests were still running when the drain timeout ended; stopping anyway."
            );
            Ok(())
        }
    }
}

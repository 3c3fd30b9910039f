//! What every API answer shares beyond its handler: entity tags and conditional GETs, request
//! rate limits per API key, per driver and per client address, and CORS for the website's
//! origin.
//!
//! Rate limits count requests in fixed windows aligned on the clock (`api.rate_limit_window`)
//! in the shared counters — Redis in the fleet, so every API instance counts together. Who is
//! counted is read from the credentials without a database lookup: a validly signed access
//! token counts for its driver, a key-shaped credential for its key prefix, anything else for
//! the client address. When the counters cannot be reached the request goes through, logged:
//! a Redis outage must not take the API down with it.

use std::time::Duration;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use tower_http::cors::{AllowOrigin, CorsLayer};
use voltfleet_core::config::CorsOrigins;
use voltfleet_core::context::AppContext;

use crate::auth::{self, Caller, Presented, presented};
use crate::client::client_address;
use crate::error::ApiError;

/// The largest answer whose entity tag is computed; larger ones go out without one.
const MAX_TAGGED_BODY: usize = 8 * 1024 * 1024;

const RATE_LIMIT_LIMIT: HeaderName = HeaderName::from_static("ratelimit-limit");
const RATE_LIMIT_REMAINING: HeaderName = HeaderName::from_static("ratelimit-remaining");
const RATE_LIMIT_RESET: HeaderName = HeaderName::from_static("ratelimit-reset");

/// Adds a strong `ETag` (a hash of the body) to successful GET answers and answers 304 when
/// the client's `If-None-Match` names it.
pub async fn entity_tags(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    if method != Method::GET && method != Method::HEAD {
        return next.run(request).await;
    }
    let if_none_match = request.headers().get(header::IF_NONE_MATCH).cloned();
    let credentials = presented(request.headers()) != Presented::None;
    let response = next.run(request).await;
    if response.status() != StatusCode::OK {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_TAGGED_BODY).await else {
        tracing::warn!("An answer was too large to tag or could not be read.");
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let digest = Sha256::digest(&bytes);
    let tag = format!("\"{}\"", hex::encode(&digest[..16]));
    let Ok(tag_value) = HeaderValue::from_str(&tag) else {
        return Response::from_parts(parts, Body::from(bytes));
    };
    let headers = &mut parts.headers;
    headers.insert(header::ETAG, tag_value);
    // Answers depend on who asks; caches must revalidate (cheap with the tag) and never share
    // one caller's answer with another.
    headers
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static(if credentials {
            "private, no-cache"
        } else {
            "no-cache"
        }));
    headers.insert(
        header::VARY,
        HeaderValue::from_static("Authorization, X-Api-Key, Origin"),
    );
    if if_none_match.is_some_and(|value| matches_tag(&value, &tag)) {
        parts.status = StatusCode::NOT_MODIFIED;
        parts.headers.remove(header::CONTENT_LENGTH);
        parts.headers.remove(header::CONTENT_TYPE);
        return Response::from_parts(parts, Body::empty());
    }
    Response::from_parts(parts, Body::from(bytes))
}

/// Whether an `If-None-Match` value names `tag` (weak comparison, as RFC 9110 asks for it).
fn matches_tag(if_none_match: &HeaderValue, tag: &str) -> bool {
    let Ok(text) = if_none_match.to_str() else {
        return false;
    };
    text.split(',').map(str::trim).any(|candidate| {
        candidate == "*" || candidate.strip_prefix("W/").unwrap_or(candidate) == tag
    })
}

/// Who a request is counted as, and that identity's limit: the driver or the key its
/// credentials prove, else its client address. Credentials that do not hold count against the
/// address, so inventing keys or tokens never buys a fresh allowance.
async fn rate_identity(ctx: &AppContext, request: &mut Request) -> (String, u32) {
    let settings = &ctx.settings.api_accounts;
    match auth::authenticate(ctx, request.headers()).await {
        Ok(caller @ Caller::Driver { driver_id, .. }) => {
            request.extensions_mut().insert(caller);
            return (format!("driver:{driver_id}"), settings.rate_limit_per_user);
        }
        Ok(caller @ Caller::Key { key_id, .. }) => {
            request.extensions_mut().insert(caller);
            return (format!("key:{key_id}"), settings.rate_limit_per_key);
        }
        Ok(Caller::Anonymous) | Err(_) => {}
    }
    let client = request
        .extensions()
        .get::<ConnectInfo<std::net::SocketAddr>>()
        .map(|ConnectInfo(peer)| {
            client_address(
                peer.ip().to_canonical(),
                request.headers(),
                &settings.trusted_proxies,
            )
        });
    match client {
        Some(client) => (format!("ip:{client}"), settings.rate_limit_per_ip),
        None => ("ip:unknown".to_owned(), settings.rate_limit_per_ip),
    }
}

/// Counts the request against its identity's limit; 429 with `Retry-After` once it is used up.
/// Every answer carries `RateLimit-Limit`, `RateLimit-Remaining` and `RateLimit-Reset`.
pub async fn rate_limits(
    State(ctx): State<AppContext>,
    mut request: Request,
    next: Next,
) -> Response {
    let (identity, limit) = rate_identity(&ctx, &mut request).await;
    if limit == 0 || request.method() == Method::OPTIONS {
        return next.run(request).await;
    }
    let window = ctx
        .settings
        .api_accounts
        .rate_limit_window
        .max(Duration::from_secs(1));
    let window_seconds = window.as_secs().max(1);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let index = now / window_seconds;
    let reset = (index + 1) * window_seconds - now;
    let key = format!("api:rate:{identity}:{index}");
    let used = match ctx.shared.locks.incr(&key, 1, window).await {
        Ok(used) => u64::try_from(used).unwrap_or(0),
        Err(err) => {
            tracing::warn!(error = %err, "The rate-limit counters are unreachable; the request is let through.");
            return next.run(request).await;
        }
    };
    let mut response = if used > u64::from(limit) {
        tracing::info!(identity, limit, "A client went over its rate limit.");
        ApiError::RateLimited {
            limit,
            window_seconds,
            retry_after: reset,
        }
        .into_response()
    } else {
        next.run(request).await
    };
    let headers = response.headers_mut();
    headers.insert(RATE_LIMIT_LIMIT, HeaderValue::from(limit));
    headers.insert(
        RATE_LIMIT_REMAINING,
        HeaderValue::from(u64::from(limit).saturating_sub(used)),
    );
    headers.insert(RATE_LIMIT_RESET, HeaderValue::from(reset));
    response
}

/// CORS for the configured origins: simple and preflighted requests from them may read the
/// answers; credentials are bearer tokens, never cookies, so none are allowed by the browser.
pub fn cors(origins: &CorsOrigins) -> CorsLayer {
    let origins = origins.clone();
    CorsLayer::new()
        .allow_origin(AllowOrigin::predicate(
            move |origin: &HeaderValue, _parts| {
                origin.to_str().is_ok_and(|origin| origins.allows(origin))
            },
        ))
        .allow_methods([Method::GET, Method::HEAD, Method::POST, Method::DELETE])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::IF_NONE_MATCH,
            HeaderName::from_static("x-api-key"),
            HeaderName::from_static("x-request-id"),
        ])
        .expose_headers([
            header::ETAG,
            header::LOCATION,
            header::RETRY_AFTER,
            RATE_LIMIT_LIMIT,
            RATE_LIMIT_REMAINING,
            RATE_LIMIT_RESET,
            HeaderName::from_static("x-request-id"),
        ])
        .max_age(Duration::from_secs(3600))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_none_match_names_the_tag_in_a_list_or_weakly() {
        let tag = "\"abc\"";
        for value in ["\"abc\"", "\"x\", \"abc\"", "W/\"abc\"", "*"] {
            assert!(
                matches_tag(&HeaderValue::from_static(value), tag),
                "{value}"
            );
        }
        for value in ["\"abd\"", "abc", ""] {
            assert!(
                !matches_tag(&HeaderValue::from_static(value), tag),
                "{value}"
            );
        }
    }
}

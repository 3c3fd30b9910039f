//! What each of Pingora's cache phases decides for a request on a caching route, with the
//! RFC 9111 rules of the sibling modules: whether to use the cache at all, the key, whether a
//! stored response may answer, whether a response may be stored and on what terms, the Vary
//! variant, when stale may be served, and the `X-Cache-Status` the client sees.
//!
//! Freshness is decided here, not by Pingora's defaults: a stored response's terms are read
//! again from its stored headers at every hit (they are small, and a reload that changes a
//! route's TTLs then applies at once), and Pingora's own fresh/stale verdict is overridden
//! when the request's directives ask for something else.

use std::time::{Duration, SystemTime};

use http::{HeaderMap, Method, StatusCode};
use pingora::cache::key::{HashBinary, hash_key};
use pingora::cache::{
    CacheKey, CacheMeta, CachePhase, ForcedFreshness, NoCacheReason, RespCacheable,
};
use pingora::http::ResponseHeader;
use pingora::proxy::Session;
use pingora::{Error, ErrorSource, ErrorType};

use super::admission::MinUses;
use super::age::Received;
use super::directives::Directives;
use super::key::{KeyTemplate, RequestTarget, variance};
use super::policy::{self, Exchange, Stored};
use super::serving::{self, Use};
use super::store::ObjectUrl;
use super::update;
use super::zones::{CacheZones, Zone};
use crate::config::{Bypass, RouteCacheConfig};

/// The cache's part of a request's context.
#[derive(Debug, Default)]
pub struct CacheState {
    /// The request skipped the cache on purpose (a bypass rule or `no-store`).
    pub bypassed: bool,
    /// The request's own Cache-Control, read once.
    request: Directives,
    /// What the hit filter decided for the stored response found.
    pub decision: Option<Use>,
    /// The stored response's terms and age at lookup, for stale-if-error.
    stored: Option<(Stored, Duration)>,
    /// When the request to the origin went out, for the stored response's age.
    pub sent_upstream_at: Option<SystemTime>,
    /// The header fields of a 304 that validated the stored response.
    validated_by: Option<HeaderMap>,
    /// Why the response was not stored, for the access log.
    pub not_stored: Option<&'static str>,
}

/// Turns the cache on for a request of a caching route, unless it bypasses it.
pub fn enable(
    session: &mut Session,
    route: &RouteCacheConfig,
    zones: &CacheZones,
    state: &mut CacheState,
) {
    let request = session.req_header();
    if request.method != Method::GET && request.method != Method::HEAD {
        return;
    }
    let Some(zone) = zones.get(&route.zone) else {
        return;
    };
    state.request = Directives::from_headers(&request.headers);
    if bypasses(&request.headers, &route.bypass) || state.request.no_store {
        state.bypassed = true;
        return;
    }
    let overrides = {
        let mut overrides = pingora::cache::CacheOptionOverrides::default();
        overrides.wait_timeout = Some(route.lock_timeout);
        overrides
    };
    let cache = &mut session.cache;
    cache.enable(zone.store, None, None, Some(zone.lock), Some(overrides));
    cache.set_max_file_size_bytes(
        usize::try_from(zone.config.max_object_size).unwrap_or(usize::MAX),
    );
    if route.min_uses > 1 {
        cache.set_admission_policy(zones.uses);
    }
}

fn bypasses(headers: &HeaderMap, rules: &[Bypass]) -> bool {
    rules.iter().any(|rule| match rule {
        Bypass::Header(name) => headers.contains_key(name),
        Bypass::Cookie(name) => headers
            .get_all(http::header::COOKIE)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|text| text.split(';'))
            .any(|pair| pair.split('=').next().is_some_and(|n| n.trim() == name)),
    })
}

/// The parts of the request that keys are built from.
pub fn target<'a>(session: &'a Session, scheme: &'a str, host: &'a str) -> RequestTarget<'a> {
    let request = session.req_header();
    RequestTarget {
        scheme,
        host,
        path_and_query: request
            .uri
            .path_and_query()
            .map_or("/", |path_and_query| path_and_query.as_str()),
        headers: &request.headers,
    }
}

/// The route's key for `target`, carrying the URL purges match and the uses to wait for.
pub fn key(route: &RouteCacheConfig, target: &RequestTarget<'_>) -> CacheKey {
    let mut key = CacheKey::new(route.key.primary(target), "");
    key.extensions.insert(ObjectUrl(url(target)));
    key.extensions.insert(MinUses(route.min_uses));
    key
}

/// The normalised absolute URL of a request: what purges by URL and prefix compare with.
pub fn url(target: &RequestTarget<'_>) -> String {
    KeyTemplate::default().primary(target)
}

/// The terms a stored response was stored on, read again from its stored headers.
fn stored_terms(meta: &CacheMeta, route: &RouteCacheConfig) -> Option<Stored> {
    let header = meta.response_header();
    let exchange = Exchange {
        method: &Method::GET,
        request_headers: &HeaderMap::new(),
        status: header.status,
        response_headers: &header.headers,
        received_at: meta.updated(),
    };
    policy::storable(&exchange, &route.rules).ok()
}

/// Whether the stored response found may answer this request, as Pingora's forced freshness.
pub fn hit_filter(
    meta: &CacheMeta,
    is_fresh: bool,
    route: &RouteCacheConfig,
    state: &mut CacheState,
) -> Option<ForcedFreshness> {
    let Some(stored) = stored_terms(meta, route) else {
        // The route no longer allows what was stored (its TTLs changed): ask the origin.
        state.decision = Some(Use::Revalidate);
        return Some(ForcedFreshness::ForceExpired);
    };
    let age = meta.age();
    let decision = serving::decide(&stored, age, &state.request, &route.stale);
    state.decision = Some(decision);
    state.stored = Some((stored, age));
    match decision {
        Use::Fresh | Use::StaleAccepted => (!is_fresh).then_some(ForcedFreshness::ForceFresh),
        Use::StaleWhileRevalidate => None,
        Use::Revalidate if is_fresh => {
            Some(ForcedFreshness::ForceExpiredServeStale { expired_at: None })
        }
        Use::Revalidate => None,
        Use::GatewayTimeout => Some(ForcedFreshness::ForceMiss),
    }
}

/// `only-if-cached` with nothing usable stored: the origin must not be asked (§5.2.1.7).
pub fn refuses_origin(state: &CacheState) -> bool {
    state.decision == Some(Use::GatewayTimeout) || state.request.only_if_cached
}

/// Keeps the header fields of a 304 that validates the stored response, so that storing the
/// freshened response can apply all of them (§3.2), not only the few Pingora merges.
pub fn note_upstream_response(
    session: &Session,
    response: &ResponseHeader,
    state: &mut CacheState,
) {
    if response.status == StatusCode::NOT_MODIFIED && session.cache.phase() == CachePhase::Stale {
        state.validated_by = Some(response.headers.clone());
    }
}

/// Whether, and on what terms, the response is stored.
pub fn response_cacheable(
    session: &Session,
    response: &ResponseHeader,
    route: &RouteCacheConfig,
    state: &mut CacheState,
) -> RespCacheable {
    let now = SystemTime::now();
    let mut header = response.clone();
    if let Some(validated_by) = &state.validated_by {
        // Start from the stored fields; Pingora's merge copied only some of the 304's.
        let strip = session
            .cache
            .maybe_cache_meta()
            .and_then(|meta| stored_terms(meta, route))
            .map(|stored| stored.strip)
            .unwrap_or_default();
        let mut fields = header.headers.clone();
        update::freshen(&mut fields, validated_by, &strip);
        for name in validated_by.keys() {
            header.remove_header(name);
            for value in fields.get_all(name) {
                // A valid name and value already, so this cannot fail.
                let _ = header.append_header(name.clone(), value.clone());
            }
        }
    }
    let request = session.req_header();
    let exchange = Exchange {
        method: &request.method,
        request_headers: &request.headers,
        status: header.status,
        response_headers: &header.headers,
        received_at: now,
    };
    let stored = match policy::storable(&exchange, &route.rules) {
        Ok(stored) => stored,
        Err(reason) => {
            state.not_stored = Some(reason.as_str());
            return RespCacheable::Uncacheable(NoCacheReason::Custom(reason.as_str()));
        }
    };
    for name in &stored.strip {
        header.remove_header(name);
    }
    let sent = state.sent_upstream_at.unwrap_or(now);
    let received = Received::new(&header.headers, sent, now);
    let updated = now.checked_sub(received.initial_age).unwrap_or(now);
    let fresh_until = if stored.always_revalidate {
        updated
    } else {
        updated + stored.lifetime.duration()
    };
    let (while_revalidate, if_error) = if stored.never_stale {
        (Duration::ZERO, Duration::ZERO)
    } else {
        (
            stored
                .stale_while_revalidate
                .max(route.stale.while_revalidate),
            stored.stale_if_error.max(route.stale.if_error),
        )
    };
    RespCacheable::Cacheable(CacheMeta::new(
        fresh_until,
        updated,
        seconds(while_revalidate),
        seconds(if_error),
        header,
    ))
}

fn seconds(duration: Duration) -> u32 {
    u32::try_from(duration.as_secs()).unwrap_or(u32::MAX)
}

/// The Vary variant of this request for a stored response; `None` when it has no Vary.
pub fn variant(meta: &CacheMeta, request_headers: &HeaderMap) -> Option<HashBinary> {
    let names = policy::vary_names(&meta.response_header().headers)?;
    if names.is_empty() {
        return None;
    }
    Some(hash_key(variance(&names, request_headers)))
}

/// Whether a stale response may be served: while revalidating in the background (`error` is
/// `None`), or in place of an origin that failed.
pub fn serve_stale(state: &CacheState, route: &RouteCacheConfig, error: Option<&Error>) -> bool {
    let Some(error) = error else {
        return state.decision == Some(Use::StaleWhileRevalidate);
    };
    let origin_failed = match error.etype() {
        ErrorType::HTTPStatus(status) => matches!(status, 500 | 502 | 503 | 504),
        _ => error.esource() == &ErrorSource::Upstream,
    };
    let Some((stored, age)) = &state.stored else {
        return false;
    };
    origin_failed && serving::stale_on_error(stored, *age, &state.request, &route.stale)
}

/// The `X-Cache-Status` of a request on a caching route.
pub fn status(session: &Session, state: &CacheState) -> &'static str {
    if state.bypassed {
        return "BYPASS";
    }
    match session.cache.phase() {
        CachePhase::Hit if state.decision == Some(Use::StaleAccepted) => "STALE",
        CachePhase::Hit => "HIT",
        CachePhase::Stale => "STALE",
        CachePhase::StaleUpdating => "UPDATING",
        CachePhase::Expired => "EXPIRED",
        CachePhase::Revalidated | CachePhase::RevalidatedNoCache(_) => "REVALIDATED",
        CachePhase::Bypass => "BYPASS",
        CachePhase::Disabled(NoCacheReason::NeverEnabled) => "BYPASS",
        _ => "MISS",
    }
}

/// Removes what a successful unsafe request may have changed (§4.4): its own URL and the
/// same-origin `Location` / `Content-Location` it answered with, under the route's key.
pub async fn invalidate(
    zone: &Zone,
    route: &RouteCacheConfig,
    session: &Session,
    response: &ResponseHeader,
    scheme: &str,
    host: &str,
) -> usize {
    let request = session.req_header();
    let target = target(session, scheme, host);
    let origin = format!("{scheme}://{host}");
    let paths = update::invalidated(
        &request.method,
        response.status,
        &origin,
        target.path_and_query,
        &response.headers,
    );
    let mut removed = 0;
    for path in paths {
        let changed = RequestTarget {
            path_and_query: &path,
            ..target
        };
        let key = CacheKey::new(route.key.primary(&changed), "");
        if zone.store.remove_primary(&key).await {
            removed += 1;
        }
    }
    removed
}

//! Whether a shared cache may store a response, and on what terms (RFC 9111 §3, §4.2).
//!
//! [`storable`] answers with a [`Stored`] — how long the response is fresh and where that came
//! from, how long it may be served stale and when not at all, what a cache key varies on, and
//! which header fields must not be kept — or with the [`NotStored`] reason, which the access
//! log and `X-Cache-Status: BYPASS` report.

use std::time::{Duration, SystemTime};

use http::header::{AUTHORIZATION, ETAG, EXPIRES, LAST_MODIFIED, SET_COOKIE, VARY};
use http::{HeaderMap, HeaderName, Method, StatusCode};

use super::directives::{Directives, Seconds};

/// Statuses a cache may give heuristic freshness to (RFC 9110 §15.1, "heuristically cacheable").
const HEURISTICALLY_CACHEABLE: [u16; 12] =
    [200, 203, 204, 206, 300, 301, 308, 404, 405, 410, 414, 501];

/// What a route lets the cache do beyond the headers (NGINX's `proxy_cache_valid`,
/// `proxy_ignore_headers Set-Cookie`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RouteRules {
    /// Freshness for a status when the response carries none of its own.
    pub ttl_by_status: Vec<(StatusCode, Duration)>,
    /// Store responses that set cookies (the cookies are never stored).
    pub store_set_cookie: bool,
    /// Upper bound of heuristic freshness (10 % of the time since Last-Modified).
    pub heuristic_max: Duration,
    /// Cache-Control fields aimed at this cache (RFC 9213), first match wins: when one holds
    /// directives, the response's `Cache-Control` and `Expires` are ignored.
    pub targeted_fields: Vec<HeaderName>,
}

/// Where a stored response's freshness lifetime came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lifetime {
    /// `s-maxage`, `max-age` or `Expires`.
    Explicit(Duration),
    /// The route's TTL for the status.
    Route(Duration),
    /// 10 % of the time since Last-Modified, bounded.
    Heuristic(Duration),
}

impl Lifetime {
    pub fn duration(self) -> Duration {
        match self {
            Lifetime::Explicit(d) | Lifetime::Route(d) | Lifetime::Heuristic(d) => d,
        }
    }
}

/// The terms a response is stored on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub lifetime: Lifetime,
    /// Serve stale while revalidating in the background for this long after it goes stale.
    pub stale_while_revalidate: Duration,
    /// Serve stale when the origin fails, for this long after it goes stale.
    pub stale_if_error: Duration,
    /// Never serve it stale (`must-revalidate`, `proxy-revalidate`, `s-maxage`).
    pub never_stale: bool,
    /// Revalidate before every use (`no-cache`).
    pub always_revalidate: bool,
    /// `immutable`: a client's reload does not force a revalidation while it is fresh.
    pub immutable: bool,
    /// Request headers the cache key varies on: lowercase, sorted, without repeats.
    pub vary: Vec<HeaderName>,
    /// Header fields not to keep with it (`private="…"`, `no-cache="…"`, Set-Cookie).
    pub strip: Vec<HeaderName>,
}

/// Why a response is not stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotStored {
    /// Only GET and HEAD are stored.
    Method,
    /// Not a final status this cache stores (1xx, 206 ranges, 304 updates).
    Status,
    /// `no-store` in the request or the response.
    NoStore,
    /// `private`: for one user's cache only.
    Private,
    /// The request carried Authorization and the response did not allow sharing it.
    Authorization,
    /// `Vary: *` can never match a later request.
    VaryAll,
    /// The response sets a cookie and the route does not store those.
    SetCookie,
    /// Nothing says how long it stays fresh.
    NoFreshness,
}

impl NotStored {
    /// For logs and metrics labels.
    pub fn as_str(self) -> &'static str {
        match self {
            NotStored::Method => "method",
            NotStored::Status => "status",
            NotStored::NoStore => "no_store",
            NotStored::Private => "private",
            NotStored::Authorization => "authorization",
            NotStored::VaryAll => "vary_all",
            NotStored::SetCookie => "set_cookie",
            NotStored::NoFreshness => "no_freshness",
        }
    }
}

/// The request and response as the cache sees them.
#[derive(Debug, Clone, Copy)]
pub struct Exchange<'a> {
    pub method: &'a Method,
    pub request_headers: &'a HeaderMap,
    pub status: StatusCode,
    pub response_headers: &'a HeaderMap,
    /// When the response arrived; `Expires` and `Last-Modified` are measured from the
    /// response's `Date`, or from this when it has none.
    pub received_at: SystemTime,
}

/// Whether, and on what terms, a shared cache may store the response.
pub fn storable(exchange: &Exchange<'_>, rules: &RouteRules) -> Result<Stored, NotStored> {
    if exchange.method != Method::GET && exchange.method != Method::HEAD {
        return Err(NotStored::Method);
    }
    let status = exchange.status.as_u16();
    if !(200..600).contains(&status) || status == 206 || status == 304 {
        return Err(NotStored::Status);
    }
    let request = Directives::from_headers(exchange.request_headers);
    let targeted = Directives::targeted(exchange.response_headers, &rules.targeted_fields);
    let response = targeted
        .clone()
        .unwrap_or_else(|| Directives::from_headers(exchange.response_headers));
    if request.no_store || response.no_store {
        return Err(NotStored::NoStore);
    }
    let mut strip: Vec<HeaderName> = Vec::new();
    match &response.private {
        Some(fields) if fields.is_empty() => return Err(NotStored::Private),
        Some(fields) => strip.extend(fields.iter().filter_map(|f| f.parse().ok())),
        None => {}
    }
    if exchange.request_headers.contains_key(AUTHORIZATION)
        && !(response.public || response.must_revalidate || response.s_maxage.is_some())
    {
        return Err(NotStored::Authorization);
    }
    let vary = vary_names(exchange.response_headers).ok_or(NotStored::VaryAll)?;
    if exchange.response_headers.contains_key(SET_COOKIE) {
        if !rules.store_set_cookie {
            return Err(NotStored::SetCookie);
        }
        strip.push(SET_COOKIE);
    }
    let mut always_revalidate = false;
    match &response.no_cache {
        Some(fields) if fields.is_empty() => always_revalidate = true,
        Some(fields) => strip.extend(fields.iter().filter_map(|f| f.parse().ok())),
        None => {}
    }
    let lifetime = match lifetime(exchange, &response, targeted.is_none(), rules) {
        Some(lifetime) => lifetime,
        // Worth keeping though never fresh: every use is a conditional request, answered
        // with a 304 and no body while it has not changed.
        None if always_revalidate && has_validator(exchange.response_headers) => {
            Lifetime::Explicit(Duration::ZERO)
        }
        None => return Err(NotStored::NoFreshness),
    };
    strip.sort_by(|a, b| a.as_str().cmp(b.as_str()));
    strip.dedup();
    let seconds = |value: Option<Seconds>| match value {
        Some(Seconds::Valid(s)) => Duration::from_secs(s),
        _ => Duration::ZERO,
    };
    Ok(Stored {
        lifetime,
        stale_while_revalidate: seconds(response.stale_while_revalidate),
        stale_if_error: seconds(response.stale_if_error),
        never_stale: response.must_revalidate
            || response.proxy_revalidate
            || response.s_maxage.is_some(),
        always_revalidate,
        immutable: response.immutable,
        vary,
        strip,
    })
}

/// The freshness lifetime (§4.2.1): `s-maxage`, else `max-age`, else `Expires` − `Date`,
/// else the route's TTL for the status, else heuristic. An invalid explicit value makes the
/// response stale at once rather than falling through to a later rule. `Expires` does not
/// count when a targeted field set the directives.
fn lifetime(
    exchange: &Exchange<'_>,
    response: &Directives,
    expires_counts: bool,
    rules: &RouteRules,
) -> Option<Lifetime> {
    if let Some(explicit) = response.s_maxage.or(response.max_age) {
        return Some(Lifetime::Explicit(match explicit {
            Seconds::Valid(s) => Duration::from_secs(s),
            Seconds::Invalid => Duration::ZERO,
        }));
    }
    let date =
        header_date(exchange.response_headers, http::header::DATE).unwrap_or(exchange.received_at);
    if expires_counts && exchange.response_headers.contains_key(EXPIRES) {
        // A malformed Expires, such as `0`, means already expired (§5.3).
        let expires = header_date(exchange.response_headers, EXPIRES).unwrap_or(date);
        return Some(Lifetime::Explicit(
            expires.duration_since(date).unwrap_or(Duration::ZERO),
        ));
    }
    if let Some((_, ttl)) = rules
        .ttl_by_status
        .iter()
        .find(|(status, _)| *status == exchange.status)
    {
        return Some(Lifetime::Route(*ttl));
    }
    let heuristic_allowed =
        HEURISTICALLY_CACHEABLE.contains(&exchange.status.as_u16()) || response.public;
    let last_modified = header_date(exchange.response_headers, LAST_MODIFIED)?;
    if !heuristic_allowed {
        return None;
    }
    let since = date.duration_since(last_modified).unwrap_or(Duration::ZERO);
    Some(Lifetime::Heuristic((since / 10).min(rules.heuristic_max)))
}

/// The request header names of `Vary`, normalised; `None` for `Vary: *`.
pub fn vary_names(headers: &HeaderMap) -> Option<Vec<HeaderName>> {
    let mut names = Vec::new();
    for value in headers.get_all(VARY) {
        let Ok(text) = value.to_str() else { continue };
        for name in text.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            if name == "*" {
                return None;
            }
            if let Ok(name) = name.parse::<HeaderName>() {
                names.push(name);
            }
        }
    }
    names.sort_by(|a, b| a.as_str().cmp(b.as_str()));
    names.dedup();
    Some(names)
}

fn has_validator(headers: &HeaderMap) -> bool {
    headers.contains_key(ETAG) || header_date(headers, LAST_MODIFIED).is_some()
}

fn header_date(headers: &HeaderMap, name: HeaderName) -> Option<SystemTime> {
    let text = headers.get(name)?.to_str().ok()?;
    super::dates::parse(text)
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    fn now() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_760_000_000)
    }

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

    fn rules() -> RouteRules {
        RouteRules {
            heuristic_max: Duration::from_secs(86_400),
            ..RouteRules::default()
        }
    }

    fn decide(
        method: Method,
        request: &[(&str, &str)],
        status: u16,
        response: &[(&str, &str)],
        rules: &RouteRules,
    ) -> Result<Stored, NotStored> {
        let (request, response) = (map(request), map(response));
        storable(
            &Exchange {
                method: &method,
                request_headers: &request,
                status: StatusCode::from_u16(status).expect("status"),
                response_headers: &response,
                received_at: now(),
            },
            rules,
        )
    }

    fn get(response: &[(&str, &str)]) -> Result<Stored, NotStored> {
        decide(Method::GET, &[], 200, response, &rules())
    }

    fn date(offset: i64) -> String {
        let at = if offset >= 0 {
            now() + Duration::from_secs(offset.unsigned_abs())
        } else {
            now() - Duration::from_secs(offset.unsigned_abs())
        };
        httpdate::fmt_http_date(at)
    }

    #[test]
    fn s_maxage_beats_max_age_beats_expires() {
        let expires = date(30);
        let both = get(&[
            ("cache-control", "max-age=60, s-maxage=120"),
            ("expires", &expires),
        ]);
        let stored = both.expect("stored");
        assert_eq!(
            stored.lifetime,
            Lifetime::Explicit(Duration::from_secs(120))
        );
        assert!(stored.never_stale, "s-maxage implies proxy-revalidate");
        let stored =
            get(&[("cache-control", "max-age=60"), ("expires", &expires)]).expect("stored");
        assert_eq!(stored.lifetime, Lifetime::Explicit(Duration::from_secs(60)));
        let now_date = date(0);
        let stored = get(&[("expires", &expires), ("date", &now_date)]).expect("stored");
        assert_eq!(stored.lifetime, Lifetime::Explicit(Duration::from_secs(30)));
    }

    #[test]
    fn invalid_freshness_is_stale_not_heuristic() {
        let old = date(-100_000);
        let stored =
            get(&[("cache-control", "max-age=soon"), ("last-modified", &old)]).expect("stored");
        assert_eq!(stored.lifetime, Lifetime::Explicit(Duration::ZERO));
        let stored = get(&[("expires", "0")]).expect("stored");
        assert_eq!(stored.lifetime, Lifetime::Explicit(Duration::ZERO));
    }

    #[test]
    fn heuristic_freshness_only_where_allowed() {
        let modified = date(-10_000);
        let stored = get(&[("last-modified", &modified)]).expect("stored");
        assert_eq!(
            stored.lifetime,
            Lifetime::Heuristic(Duration::from_secs(1_000))
        );
        let long_ago = date(-100_000_000);
        let stored = get(&[("last-modified", &long_ago)]).expect("stored");
        assert_eq!(
            stored.lifetime,
            Lifetime::Heuristic(Duration::from_secs(86_400))
        );
        // 302 is not heuristically cacheable unless marked public.
        assert_eq!(
            decide(
                Method::GET,
                &[],
                302,
                &[("last-modified", &modified)],
                &rules()
            ),
            Err(NotStored::NoFreshness)
        );
        assert!(
            decide(
                Method::GET,
                &[],
                302,
                &[("last-modified", &modified), ("cache-control", "public")],
                &rules()
            )
            .is_ok()
        );
        assert_eq!(get(&[]), Err(NotStored::NoFreshness));
    }

    #[test]
    fn route_ttls_apply_only_without_explicit_freshness() {
        let rules = RouteRules {
            ttl_by_status: vec![(StatusCode::NOT_FOUND, Duration::from_secs(60))],
            ..rules()
        };
        let stored = decide(Method::GET, &[], 404, &[], &rules).expect("stored");
        assert_eq!(stored.lifetime, Lifetime::Route(Duration::from_secs(60)));
        let stored = decide(
            Method::GET,
            &[],
            404,
            &[("cache-control", "max-age=5")],
            &rules,
        )
        .expect("stored");
        assert_eq!(stored.lifetime, Lifetime::Explicit(Duration::from_secs(5)));
    }

    #[test]
    fn what_is_never_stored() {
        let fresh = [("cache-control", "max-age=60")];
        assert_eq!(
            decide(Method::POST, &[], 200, &fresh, &rules()),
            Err(NotStored::Method)
        );
        assert_eq!(
            decide(Method::GET, &[], 206, &fresh, &rules()),
            Err(NotStored::Status)
        );
        assert_eq!(
            decide(Method::GET, &[], 304, &fresh, &rules()),
            Err(NotStored::Status)
        );
        assert_eq!(
            get(&[("cache-control", "max-age=60, no-store")]),
            Err(NotStored::NoStore)
        );
        assert_eq!(
            decide(
                Method::GET,
                &[("cache-control", "no-store")],
                200,
                &fresh,
                &rules()
            ),
            Err(NotStored::NoStore)
        );
        assert_eq!(
            get(&[("cache-control", "private, max-age=60")]),
            Err(NotStored::Private)
        );
        assert_eq!(
            get(&[("cache-control", "max-age=60"), ("vary", "Accept, *")]),
            Err(NotStored::VaryAll)
        );
        assert_eq!(
            get(&[("cache-control", "max-age=60"), ("set-cookie", "a=1")]),
            Err(NotStored::SetCookie)
        );
    }

    #[test]
    fn authorization_needs_an_explicit_permission() {
        let auth = [("authorization", "Bearer x")];
        assert_eq!(
            decide(
                Method::GET,
                &auth,
                200,
                &[("cache-control", "max-age=60")],
                &rules()
            ),
            Err(NotStored::Authorization)
        );
        for allowed in [
            "public, max-age=60",
            "s-maxage=60",
            "must-revalidate, max-age=60",
        ] {
            assert!(
                decide(
                    Method::GET,
                    &auth,
                    200,
                    &[("cache-control", allowed)],
                    &rules()
                )
                .is_ok(),
                "{allowed}"
            );
        }
    }

    #[test]
    fn qualified_private_and_no_cache_strip_fields_and_cookies_may_be_allowed() {
        let stored = get(&[(
            "cache-control",
            "max-age=60, private=\"X-User\", no-cache=\"X-Trace\"",
        )])
        .expect("stored");
        let names: Vec<&str> = stored.strip.iter().map(HeaderName::as_str).collect();
        assert_eq!(names, ["x-trace", "x-user"]);
        assert!(!stored.always_revalidate);
        let cookies = RouteRules {
            store_set_cookie: true,
            ..rules()
        };
        let stored = decide(
            Method::GET,
            &[],
            200,
            &[("cache-control", "max-age=60"), ("set-cookie", "a=1")],
            &cookies,
        )
        .expect("stored");
        assert_eq!(stored.strip, [SET_COOKIE]);
    }

    #[test]
    fn stale_terms_and_revalidation() {
        let stored = get(&[(
            "cache-control",
            "max-age=60, stale-while-revalidate=30, stale-if-error=600, immutable",
        )])
        .expect("stored");
        assert_eq!(stored.stale_while_revalidate, Duration::from_secs(30));
        assert_eq!(stored.stale_if_error, Duration::from_secs(600));
        assert!(stored.immutable && !stored.never_stale && !stored.always_revalidate);
        let stored = get(&[("cache-control", "no-cache, max-age=60")]).expect("stored");
        assert!(stored.always_revalidate);
        // Without freshness, no-cache is still worth storing when it can be revalidated.
        let stored = get(&[("cache-control", "no-cache"), ("etag", "\"v1\"")]).expect("stored");
        assert!(stored.always_revalidate);
        assert_eq!(stored.lifetime, Lifetime::Explicit(Duration::ZERO));
        assert_eq!(
            get(&[("cache-control", "no-cache")]),
            Err(NotStored::NoFreshness)
        );
        let stored = get(&[("cache-control", "max-age=60, proxy-revalidate")]).expect("stored");
        assert!(stored.never_stale);
    }

    #[test]
    fn vary_is_normalised() {
        let stored = get(&[
            ("cache-control", "max-age=60"),
            ("vary", "Accept-Encoding, accept"),
            ("vary", "ACCEPT-encoding"),
        ])
        .expect("stored");
        let names: Vec<&str> = stored.vary.iter().map(HeaderName::as_str).collect();
        assert_eq!(names, ["accept", "accept-encoding"]);
    }

    #[test]
    fn a_targeted_field_overrides_cache_control_and_expires() {
        let cdn = RouteRules {
            targeted_fields: vec![HeaderName::from_static("cdn-cache-control")],
            ..rules()
        };
        let answer = |response: &[(&str, &str)]| decide(Method::GET, &[], 200, response, &cdn);
        let stored = answer(&[
            ("cache-control", "no-store"),
            ("cdn-cache-control", "max-age=600"),
        ])
        .expect("stored under the targeted field");
        assert_eq!(
            stored.lifetime,
            Lifetime::Explicit(Duration::from_secs(600))
        );
        assert_eq!(
            answer(&[
                ("cache-control", "max-age=600"),
                ("cdn-cache-control", "private")
            ]),
            Err(NotStored::Private)
        );
        // Expires belongs to the ordinary field's world: with a targeted field it is ignored.
        let later = date(3600);
        assert_eq!(
            answer(&[("expires", &later), ("cdn-cache-control", "public")]),
            Err(NotStored::NoFreshness)
        );
        // An empty targeted field is as if it were absent.
        let stored = answer(&[("cache-control", "max-age=60"), ("cdn-cache-control", "")])
            .expect("stored under Cache-Control");
        assert_eq!(stored.lifetime, Lifetime::Explicit(Duration::from_secs(60)));
        // A route that targets nothing reads Cache-Control alone.
        assert_eq!(
            get(&[
                ("cache-control", "no-store"),
                ("cdn-cache-control", "max-age=600")
            ]),
            Err(NotStored::NoStore)
        );
    }
}

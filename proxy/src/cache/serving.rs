//! Whether a stored response may answer a request now (RFC 9111 §4, §4.2.4, §5.2.1; RFC 5861
//! stale-while-revalidate and stale-if-error; RFC 8246 immutable).
//!
//! [`decide`] weighs the stored response's terms and age against what the request asks
//! (`max-age`, `min-fresh`, `max-stale`, `no-cache`, `only-if-cached`); [`stale_on_error`]
//! says whether it may stand in for an origin that failed. The route may widen both stale
//! windows, as NGINX's `proxy_cache_use_stale` does, but never past `must-revalidate`.

use std::time::Duration;

use super::directives::{Directives, Seconds};
use super::policy::Stored;

/// What to do with a stored response for this request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Use {
    /// Fresh enough: answer with it (`HIT`).
    Fresh,
    /// Stale, and the request accepts that (`max-stale`): answer with it (`STALE`).
    StaleAccepted,
    /// Stale within stale-while-revalidate: answer with it and refresh it in the background
    /// (`UPDATING`).
    StaleWhileRevalidate,
    /// Ask the origin first, conditionally (`EXPIRED`, then `REVALIDATED` on a 304).
    Revalidate,
    /// `only-if-cached` and nothing usable: answer 504 without asking the origin.
    GatewayTimeout,
}

/// What the route adds to the response's own stale windows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StaleOverrides {
    /// At least this long of stale-while-revalidate (`proxy_cache_background_update`).
    pub while_revalidate: Duration,
    /// At least this long of stale-if-error (`proxy_cache_use_stale error timeout …`).
    pub if_error: Duration,
}

/// Whether the stored response, `age` old, may answer a request with `request` directives.
pub fn decide(
    stored: &Stored,
    age: Duration,
    request: &Directives,
    overrides: &StaleOverrides,
) -> Use {
    let lifetime = stored.lifetime.duration();
    let fresh = age < lifetime;
    let decision = if stored.always_revalidate {
        Use::Revalidate
    } else if fresh {
        decide_fresh(stored, age, lifetime, request)
    } else {
        decide_stale(stored, age - lifetime, request, overrides)
    };
    if decision == Use::Revalidate && request.only_if_cached {
        Use::GatewayTimeout
    } else {
        decision
    }
}

fn decide_fresh(stored: &Stored, age: Duration, lifetime: Duration, request: &Directives) -> Use {
    // A forced reload (`no-cache`) revalidates even an immutable response; a plain reload
    // (`max-age=0`) does not revalidate an immutable one while it is fresh.
    if request.no_cache.is_some() {
        return Use::Revalidate;
    }
    if let Some(max_age) = request.max_age
        && age > seconds_or_zero(max_age)
        && !stored.immutable
    {
        return Use::Revalidate;
    }
    if let Some(min_fresh) = request.min_fresh
        && lifetime - age < seconds_or_zero(min_fresh)
    {
        return Use::Revalidate;
    }
    Use::Fresh
}

fn decide_stale(
    stored: &Stored,
    staleness: Duration,
    request: &Directives,
    overrides: &StaleOverrides,
) -> Use {
    if stored.never_stale || request.no_cache.is_some() {
        return Use::Revalidate;
    }
    if let Some(max_age) = request.max_age
        && matches!(max_age, Seconds::Valid(0) | Seconds::Invalid)
    {
        return Use::Revalidate;
    }
    match request.max_stale {
        Some(None) => return Use::StaleAccepted,
        Some(Some(Seconds::Valid(limit))) if staleness <= Duration::from_secs(limit) => {
            return Use::StaleAccepted;
        }
        _ => {}
    }
    if staleness
        < stored
            .stale_while_revalidate
            .max(overrides.while_revalidate)
    {
        Use::StaleWhileRevalidate
    } else {
        Use::Revalidate
    }
}

/// Whether the stored response, `age` old, may answer in place of an origin that failed or
/// answered 500, 502, 503 or 504.
pub fn stale_on_error(
    stored: &Stored,
    age: Duration,
    request: &Directives,
    overrides: &StaleOverrides,
) -> bool {
    if stored.never_stale {
        return false;
    }
    let lifetime = stored.lifetime.duration();
    if age < lifetime {
        return true;
    }
    let staleness = age - lifetime;
    let mut window = stored.stale_if_error.max(overrides.if_error);
    // The request may ask for a window of its own (RFC 5861 §4).
    if let Some(Seconds::Valid(asked)) = request.stale_if_error {
        window = window.max(Duration::from_secs(asked));
    }
    staleness < window
}

fn seconds_or_zero(value: Seconds) -> Duration {
    match value {
        Seconds::Valid(s) => Duration::from_secs(s),
        Seconds::Invalid => Duration::ZERO,
    }
}

#[cfg(test)]
mod tests {
    use http::header::CACHE_CONTROL;
    use http::{HeaderMap, HeaderValue};

    use super::*;
    use crate::cache::policy::Lifetime;

    fn stored(lifetime: u64) -> Stored {
        Stored {
            lifetime: Lifetime::Explicit(Duration::from_secs(lifetime)),
            stale_while_revalidate: Duration::ZERO,
            stale_if_error: Duration::ZERO,
            never_stale: false,
            always_revalidate: false,
            immutable: false,
            vary: Vec::new(),
            strip: Vec::new(),
        }
    }

    fn request(cache_control: &str) -> Directives {
        let mut headers = HeaderMap::new();
        if !cache_control.is_empty() {
            headers.insert(
                CACHE_CONTROL,
                HeaderValue::from_str(cache_control).expect("value"),
            );
        }
        Directives::from_headers(&headers)
    }

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    const NONE: StaleOverrides = StaleOverrides {
        while_revalidate: Duration::ZERO,
        if_error: Duration::ZERO,
    };

    #[test]
    fn fresh_until_the_lifetime_then_revalidate() {
        assert_eq!(
            decide(&stored(60), secs(59), &request(""), &NONE),
            Use::Fresh
        );
        assert_eq!(
            decide(&stored(60), secs(60), &request(""), &NONE),
            Use::Revalidate
        );
    }

    #[test]
    fn request_limits_on_age_and_freshness() {
        let s = stored(60);
        assert_eq!(
            decide(&s, secs(30), &request("max-age=10"), &NONE),
            Use::Revalidate
        );
        assert_eq!(
            decide(&s, secs(5), &request("max-age=10"), &NONE),
            Use::Fresh
        );
        assert_eq!(
            decide(&s, secs(30), &request("min-fresh=40"), &NONE),
            Use::Revalidate
        );
        assert_eq!(
            decide(&s, secs(10), &request("min-fresh=40"), &NONE),
            Use::Fresh
        );
        assert_eq!(
            decide(&s, secs(1), &request("no-cache"), &NONE),
            Use::Revalidate
        );
    }

    #[test]
    fn immutable_survives_a_reload_but_not_a_forced_one() {
        let s = Stored {
            immutable: true,
            ..stored(3600)
        };
        assert_eq!(
            decide(&s, secs(100), &request("max-age=0"), &NONE),
            Use::Fresh
        );
        assert_eq!(
            decide(&s, secs(100), &request("no-cache"), &NONE),
            Use::Revalidate
        );
    }

    #[test]
    fn stale_windows() {
        let s = Stored {
            stale_while_revalidate: secs(30),
            ..stored(60)
        };
        assert_eq!(
            decide(&s, secs(80), &request(""), &NONE),
            Use::StaleWhileRevalidate
        );
        assert_eq!(decide(&s, secs(100), &request(""), &NONE), Use::Revalidate);
        let wider = StaleOverrides {
            while_revalidate: secs(60),
            ..NONE
        };
        assert_eq!(
            decide(&s, secs(100), &request(""), &wider),
            Use::StaleWhileRevalidate
        );
        assert_eq!(
            decide(&stored(60), secs(500), &request("max-stale"), &NONE),
            Use::StaleAccepted
        );
        assert_eq!(
            decide(&stored(60), secs(70), &request("max-stale=20"), &NONE),
            Use::StaleAccepted
        );
        assert_eq!(
            decide(&stored(60), secs(90), &request("max-stale=20"), &NONE),
            Use::Revalidate
        );
    }

    #[test]
    fn must_revalidate_and_no_cache_allow_nothing_stale() {
        let strict = Stored {
            never_stale: true,
            stale_while_revalidate: secs(30),
            stale_if_error: secs(30),
            ..stored(60)
        };
        let generous = StaleOverrides {
            while_revalidate: secs(600),
            if_error: secs(600),
        };
        assert_eq!(
            decide(&strict, secs(61), &request("max-stale"), &generous),
            Use::Revalidate
        );
        assert!(!stale_on_error(&strict, secs(61), &request(""), &generous));
        let always = Stored {
            always_revalidate: true,
            ..stored(60)
        };
        assert_eq!(
            decide(&always, secs(1), &request(""), &NONE),
            Use::Revalidate
        );
    }

    #[test]
    fn stale_if_error_from_the_response_the_route_or_the_request() {
        let s = Stored {
            stale_if_error: secs(300),
            ..stored(60)
        };
        assert!(stale_on_error(&s, secs(300), &request(""), &NONE));
        assert!(!stale_on_error(&s, secs(400), &request(""), &NONE));
        let route = StaleOverrides {
            if_error: secs(3600),
            ..NONE
        };
        assert!(stale_on_error(&s, secs(400), &request(""), &route));
        assert!(stale_on_error(
            &stored(60),
            secs(100),
            &request("stale-if-error=60"),
            &NONE
        ));
    }

    #[test]
    fn only_if_cached_never_reaches_the_origin() {
        assert_eq!(
            decide(&stored(60), secs(61), &request("only-if-cached"), &NONE),
            Use::GatewayTimeout
        );
        assert_eq!(
            decide(&stored(60), secs(1), &request("only-if-cached"), &NONE),
            Use::Fresh
        );
    }
}

//! The firewall on the request path: what a route's `[routes.waf]` makes of a request — let
//! it through, let it through and count a match, or refuse it — from the parts the route
//! inspects, minus the paths and arguments it excludes.

use super::parts::{Location, Request};
use super::{Detection, inspect_request};
use crate::config::{RouteWafConfig, WafMode};

/// The firewall's decision about one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    /// A rule matched on a route that only counts.
    Count(Detection),
    /// A rule matched on a route that blocks.
    Block(Detection),
}

/// Inspects `request` as `waf` says.
pub fn check(waf: &RouteWafConfig, request: &Request<'_>) -> Verdict {
    if waf.mode == WafMode::Off || waf.excludes_path(request.path) {
        return Verdict::Pass;
    }
    let excluded = |part: &super::parts::Part<'_>| {
        matches!(
            part.location,
            Location::Query | Location::Body | Location::Cookie
        ) && waf.excludes_arg(&part.name)
    };
    match inspect_request(request, &waf.limits, waf.level, excluded).0 {
        None => Verdict::Pass,
        Some(detection) if waf.mode == WafMode::Count => Verdict::Count(detection),
        Some(detection) => Verdict::Block(detection),
    }
}

/// Whether the request's body is to be read: a route that inspects, a path it does not
/// exclude, and a body at all.
pub fn inspects_body(waf: &RouteWafConfig, request: &pingora::http::RequestHeader) -> bool {
    if waf.mode == WafMode::Off || waf.excludes_path(request.uri.path()) {
        return false;
    }
    request
        .headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|length| length.trim() != "0")
        || request
            .headers
            .contains_key(http::header::TRANSFER_ENCODING)
}

/// Inspects a request's body (its start, up to the bound) as `waf` says; the path was read
/// with the header already and does not count again.
pub fn check_body(
    waf: &RouteWafConfig,
    path: &str,
    content_type: Option<&str>,
    body: &[u8],
) -> Verdict {
    let request = Request {
        path,
        query: None,
        headers: &[],
        content_type,
        body,
    };
    match check(waf, &request) {
        Verdict::Count(detection) | Verdict::Block(detection)
            if detection.location == Location::Path =>
        {
            Verdict::Pass
        }
        verdict => verdict,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::security::parts::PartLimits;

    fn waf(mode: WafMode) -> RouteWafConfig {
        RouteWafConfig {
            mode,
            level: 1,
            exclude_paths: vec!["/api/v1/support/".to_owned()],
            exclude_args: vec!["message".to_owned()],
            inspect_headers: Vec::new(),
            limits: PartLimits::default(),
        }
    }

    fn request<'a>(path: &'a str, query: &'a str) -> Request<'a> {
        Request {
            path,
            query: Some(query),
            headers: &[],
            content_type: None,
            body: b"",
        }
    }

    #[test]
    fn the_mode_decides_what_a_match_does() {
        let attack = request("/api/v1/locations", "q=1%27%20or%20%271%27%3D%271");
        assert!(matches!(
            check(&waf(WafMode::Block), &attack),
            Verdict::Block(_)
        ));
        assert!(matches!(
            check(&waf(WafMode::Count), &attack),
            Verdict::Count(_)
        ));
        assert_eq!(check(&waf(WafMode::Off), &attack), Verdict::Pass);
        let benign = request("/api/v1/locations", "q=O%27Brien");
        assert_eq!(check(&waf(WafMode::Block), &benign), Verdict::Pass);
    }

    #[test]
    fn excluded_paths_and_arguments_are_not_inspected() {
        let block = waf(WafMode::Block);
        let in_free_text = request("/api/v1/locations", "message=%27%20or%201%3D1--");
        assert_eq!(check(&block, &in_free_text), Verdict::Pass);
        let elsewhere = request("/api/v1/locations", "other=%27%20or%201%3D1--");
        assert!(matches!(check(&block, &elsewhere), Verdict::Block(_)));
        let under_excluded_path = request("/api/v1/support/tickets", "other=%27%20or%201%3D1--");
        assert_eq!(check(&block, &under_excluded_path), Verdict::Pass);
    }
}

//! The firewall on the request path: what a route's `[routes.waf]` makes of a request — let
//! it through, let it through and count a match, or refuse it — from the parts the route
//! inspects, minus the paths and arguments it excludes.

use super::parts::{Location, PartLimits, Request};
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
pub fn check(waf: &RouteWafConfig, request: &Request<'_>, limits: &PartLimits) -> Verdict {
    if waf.mode == WafMode::Off || waf.excludes_path(request.path) {
        return Verdict::Pass;
    }
    let excluded = |part: &super::parts::Part<'_>| {
        matches!(
            part.location,
            Location::Query | Location::Body | Location::Cookie
        ) && waf.excludes_arg(&part.name)
    };
    match inspect_request(request, limits, waf.level, excluded).0 {
        None => Verdict::Pass,
        Some(detection) if waf.mode == WafMode::Count => Verdict::Count(detection),
        Some(detection) => Verdict::Block(detection),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn waf(mode: WafMode) -> RouteWafConfig {
        RouteWafConfig {
            mode,
            level: 1,
            exclude_paths: vec!["/api/v1/support/".to_owned()],
            exclude_args: vec!["message".to_owned()],
            inspect_headers: Vec::new(),
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
        let limits = PartLimits::default();
        assert!(matches!(
            check(&waf(WafMode::Block), &attack, &limits),
            Verdict::Block(_)
        ));
        assert!(matches!(
            check(&waf(WafMode::Count), &attack, &limits),
            Verdict::Count(_)
        ));
        assert_eq!(check(&waf(WafMode::Off), &attack, &limits), Verdict::Pass);
        let benign = request("/api/v1/locations", "q=O%27Brien");
        assert_eq!(check(&waf(WafMode::Block), &benign, &limits), Verdict::Pass);
    }

    #[test]
    fn excluded_paths_and_arguments_are_not_inspected() {
        let limits = PartLimits::default();
        let block = waf(WafMode::Block);
        let in_free_text = request("/api/v1/locations", "message=%27%20or%201%3D1--");
        assert_eq!(check(&block, &in_free_text, &limits), Verdict::Pass);
        let elsewhere = request("/api/v1/locations", "other=%27%20or%201%3D1--");
        assert!(matches!(
            check(&block, &elsewhere, &limits),
            Verdict::Block(_)
        ));
        let under_excluded_path = request("/api/v1/support/tickets", "other=%27%20or%201%3D1--");
        assert_eq!(check(&block, &under_excluded_path, &limits), Verdict::Pass);
    }
}

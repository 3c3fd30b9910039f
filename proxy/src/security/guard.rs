//! The firewall on the request path: what a route's `[routes.waf]` makes of a request — let
//! it through, let it through and count a match, or refuse it — from the parts the route
//! inspects, minus the paths and arguments it excludes.

use super::parts::{Location, Malformed, Request};
use super::{Detection, Family, Finding, MALFORMED_BODY_RULE, inspect_request};
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
    let (detection, _) = inspect(waf, request);
    verdict(waf, detection)
}

fn inspect(waf: &RouteWafConfig, request: &Request<'_>) -> (Option<Detection>, Option<Malformed>) {
    let excluded = |part: &super::parts::Part<'_>| {
        matches!(
            part.location,
            Location::Query | Location::Body | Location::Cookie
        ) && waf.excludes_arg(&part.name)
    };
    inspect_request(request, &waf.limits, waf.level, excluded)
}

fn verdict(waf: &RouteWafConfig, detection: Option<Detection>) -> Verdict {
    match detection {
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

/// Inspects a request's body (its start, up to the bound) as `waf` says, for a request whose
/// header `check` passed and `inspects_body` chose. `complete` says the whole body is there:
/// only then can it be called malformed, not merely cut at the bound.
pub fn check_body(
    waf: &RouteWafConfig,
    content_type: Option<&str>,
    body: &[u8],
    complete: bool,
) -> Verdict {
    // The path and headers were read with the header; only the body is new.
    let request = Request {
        path: "",
        query: None,
        headers: &[],
        content_type,
        body,
    };
    let (detection, malformed) = inspect(waf, &request);
    let detection = detection.or_else(|| {
        let refused = complete && waf.block_malformed_body;
        malformed.filter(|_| refused).map(|malformed| Detection {
            finding: Finding {
                family: Family::Protocol,
                rule: MALFORMED_BODY_RULE,
            },
            location: Location::Body,
            name: String::new(),
            excerpt: format!("not {malformed:?}").to_ascii_lowercase(),
        })
    });
    verdict(waf, detection)
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
            block_malformed_body: true,
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

    #[test]
    fn a_malformed_body_is_refused_only_whole_and_only_where_the_route_says() {
        let block = waf(WafMode::Block);
        let broken = br#"{"name": "Ana""#;
        let verdict = check_body(&block, Some("application/json"), broken, true);
        assert!(
            matches!(&verdict, Verdict::Block(d) if d.finding.rule == MALFORMED_BODY_RULE),
            "{verdict:?}"
        );
        // Cut at the inspection bound, a document is not broken.
        let cut = check_body(&block, Some("application/json"), broken, false);
        assert_eq!(cut, Verdict::Pass);
        let lenient = RouteWafConfig {
            block_malformed_body: false,
            ..waf(WafMode::Block)
        };
        let read = check_body(&lenient, Some("application/json"), broken, true);
        assert_eq!(read, Verdict::Pass);
        let fine = br#"{"name": "Ana"}"#;
        assert_eq!(
            check_body(&block, Some("application/json"), fine, true),
            Verdict::Pass
        );
    }
}

//! Which route a request takes: host and path prefix, the most specific route winning.
//!
//! A route for an exact host beats a route for any host; among those, the longest path prefix
//! wins. A prefix matches whole path segments (`/api` matches `/api` and `/api/v1`, not
//! `/apis`); a prefix ending in `/` matches everything below it.

use crate::config::RouteConfig;

/// The routes of one configuration, ordered for matching, each carrying what it leads to.
#[derive(Debug, Clone)]
pub struct Router<T> {
    /// Most specific first: exact hosts before any host, longer prefixes before shorter ones.
    routes: Vec<Entry<T>>,
}

#[derive(Debug, Clone)]
struct Entry<T> {
    host: Option<String>,
    path_prefix: String,
    target: T,
}

impl<T> Router<T> {
    pub fn new<'a>(routes: impl IntoIterator<Item = (&'a RouteConfig, T)>) -> Router<T> {
        let mut routes: Vec<Entry<T>> = routes
            .into_iter()
            .map(|(route, target)| Entry {
                host: route.host.clone(),
                path_prefix: route.path_prefix.clone(),
                target,
            })
            .collect();
        routes.sort_by(|a, b| {
            b.host
                .is_some()
                .cmp(&a.host.is_some())
                .then(b.path_prefix.len().cmp(&a.path_prefix.len()))
        });
        Router { routes }
    }

    /// The route for `host` (from the Host header or the HTTP/2 authority, with or without a
    /// port) and `path` (without the query).
    pub fn route(&self, host: Option<&str>, path: &str) -> Option<&T> {
        let host = host.map(host_name);
        self.routes
            .iter()
            .find(|route| {
                let host_matches = match (&route.host, host) {
                    (None, _) => true,
                    (Some(wanted), Some(host)) => wanted.eq_ignore_ascii_case(host),
                    (Some(_), None) => false,
                };
                host_matches && prefix_matches(&route.path_prefix, path)
            })
            .map(|route| &route.target)
    }
}

/// The host without its port and trailing dot, keeping IPv6 brackets intact; compared
/// case-insensitively.
fn host_name(host: &str) -> &str {
    let without_port = if host.starts_with('[') {
        host.split_inclusive(']').next().unwrap_or(host)
    } else {
        host.rsplit_once(':').map_or(host, |(name, _)| name)
    };
    without_port.trim_end_matches('.')
}

fn prefix_matches(prefix: &str, path: &str) -> bool {
    match path.strip_prefix(prefix) {
        None => false,
        Some(rest) => prefix.ends_with('/') || rest.is_empty() || rest.starts_with('/'),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::config::RouteTarget;

    fn route(host: Option<&str>, prefix: &str, upstream: &str) -> RouteConfig {
        RouteConfig {
            host: host.map(str::to_string),
            path_prefix: prefix.to_string(),
            label: prefix.to_string(),
            target: RouteTarget::Upstream(upstream.to_string()),
            websocket_idle_timeout: Duration::from_secs(60),
            set_request_headers: Vec::new(),
            set_response_headers: Vec::new(),
            hide_response_headers: Vec::new(),
            cache: None,
            waf: None,
            methods: None,
            rate_limit: None,
        }
    }

    fn router(routes: &[RouteConfig]) -> Router<RouteTarget> {
        Router::new(routes.iter().map(|route| (route, route.target.clone())))
    }

    fn check(router: &Router<RouteTarget>, host: Option<&str>, path: &str, expected: Option<&str>) {
        let found = router.route(host, path).map(|target| match target {
            RouteTarget::Upstream(name) | RouteTarget::Static(name) => name.as_str(),
        });
        assert_eq!(found, expected, "{host:?} {path}");
    }

    #[test]
    fn the_most_specific_route_wins() {
        let router = router(&[
            route(None, "/", "site"),
            route(None, "/api", "api"),
            route(None, "/api/v1/admin/", "admin"),
            route(None, "/ocpp/", "ocpp"),
            route(Some("partners.example.com"), "/", "ocpi"),
        ]);
        check(
            &router,
            Some("www.example.com"),
            "/index.html",
            Some("site"),
        );
        check(&router, Some("www.example.com"), "/api", Some("api"));
        check(
            &router,
            Some("www.example.com"),
            "/api/v1/chargers",
            Some("api"),
        );
        check(&router, Some("www.example.com"), "/apis", Some("site"));
        check(&router, None, "/api/v1/admin/keys", Some("admin"));
        check(&router, None, "/ocpp/CP-1", Some("ocpp"));
        check(&router, None, "/ocpp", Some("site"));
        check(
            &router,
            Some("Partners.Example.com:443"),
            "/api/v1",
            Some("ocpi"),
        );
        check(&router, Some("partners.example.com."), "/", Some("ocpi"));
    }

    #[test]
    fn no_route_means_none() {
        let router = router(&[route(Some("a.example"), "/", "a"), route(None, "/x/", "x")]);
        check(&router, Some("b.example"), "/", None);
        check(&router, None, "/", None);
        check(&router, None, "/x/1", Some("x"));
    }

    #[test]
    fn hosts_are_normalized() {
        assert_eq!(host_name("Example.COM:8080"), "Example.COM");
        assert_eq!(host_name("[::1]:8080"), "[::1]");
        assert_eq!(host_name("example.com."), "example.com");
    }
}

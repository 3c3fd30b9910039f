//! The proxy's Prometheus metrics, served on the admin listener. Labels are bounded: route
//! (its upstream and prefix, from the configuration), upstream pool, peer address (from the
//! configuration), status class; never a client address or a raw path.

use std::sync::{Arc, Mutex};

use prometheus::core::{Collector, Desc};
use prometheus::process_collector::ProcessCollector;
use prometheus::proto::MetricFamily;
use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

use crate::upstream::Pool;

#[derive(Debug, Clone)]
pub struct ProxyMetrics {
    registry: Registry,
    requests: IntCounterVec,
    request_duration: HistogramVec,
    upstream_duration: HistogramVec,
    upstream_retries: IntCounterVec,
    websockets_active: IntGaugeVec,
    websockets_total: IntCounterVec,
    pub requests_in_flight: IntGauge,
    connections_open: IntGaugeVec,
    connections_accepted: IntCounterVec,
    peer_up: IntGaugeVec,
    peer_in_flight: IntGaugeVec,
    waf_matches: IntCounterVec,
    ip_set_entries: IntGaugeVec,
    pub ip_set_refused: IntCounter,
    rate_limited: IntCounterVec,
    /// Shared limits counted on this proxy alone because Redis did not answer in time.
    pub rate_limit_fallbacks: IntCounter,
    auto_blocks: IntCounterVec,
    connections_refused: IntCounterVec,
    slow_clients: IntCounterVec,
}

const LATENCY_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

impl ProxyMetrics {
    pub fn new() -> ProxyMetrics {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new(
                "voltfleet_proxy_requests_total",
                "Requests answered, by listener, route and status class.",
            ),
            &["listener", "route", "status"],
        )
        .expect("static metric definition is valid");
        let request_duration = HistogramVec::new(
            HistogramOpts::new(
                "voltfleet_proxy_request_duration_seconds",
                "Time from the request's arrival to the end of the response, by route.",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
            &["route"],
        )
        .expect("static metric definition is valid");
        let upstream_duration = HistogramVec::new(
            HistogramOpts::new(
                "voltfleet_proxy_upstream_response_seconds",
                "Time from sending the request upstream to the end of its response, by pool.",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
            &["upstream"],
        )
        .expect("static metric definition is valid");
        let upstream_retries = IntCounterVec::new(
            Opts::new(
                "voltfleet_proxy_upstream_retries_total",
                "Requests tried again on another peer, by pool.",
            ),
            &["upstream"],
        )
        .expect("static metric definition is valid");
        let websockets_active = IntGaugeVec::new(
            Opts::new(
                "voltfleet_proxy_websockets_active",
                "Upgraded (WebSocket) connections open now, by route.",
            ),
            &["route"],
        )
        .expect("static metric definition is valid");
        let websockets_total = IntCounterVec::new(
            Opts::new(
                "voltfleet_proxy_websockets_total",
                "Upgraded (WebSocket) connections accepted, by route.",
            ),
            &["route"],
        )
        .expect("static metric definition is valid");
        let requests_in_flight = IntGauge::new(
            "voltfleet_proxy_requests_in_flight",
            "Requests being answered now, WebSockets included.",
        )
        .expect("static metric definition is valid");
        let connections_open = IntGaugeVec::new(
            Opts::new(
                "voltfleet_proxy_connections_open",
                "Downstream connections open now, by listener.",
            ),
            &["listener"],
        )
        .expect("static metric definition is valid");
        let connections_accepted = IntCounterVec::new(
            Opts::new(
                "voltfleet_proxy_connections_accepted_total",
                "Downstream connections accepted, by listener.",
            ),
            &["listener"],
        )
        .expect("static metric definition is valid");
        let peer_up = IntGaugeVec::new(
            Opts::new(
                "voltfleet_proxy_peer_up",
                "1 when the peer takes traffic (healthy and not ejected), else 0.",
            ),
            &["upstream", "peer"],
        )
        .expect("static metric definition is valid");
        let peer_in_flight = IntGaugeVec::new(
            Opts::new(
                "voltfleet_proxy_peer_requests_in_flight",
                "Requests in flight to the peer.",
            ),
            &["upstream", "peer"],
        )
        .expect("static metric definition is valid");
        let waf_matches = IntCounterVec::new(
            Opts::new(
                "voltfleet_proxy_waf_matches_total",
                "Requests that matched a firewall rule, by route, rule id and action (block or count).",
            ),
            &["route", "rule", "action"],
        )
        .expect("static metric definition is valid");
        let ip_set_entries = IntGaugeVec::new(
            Opts::new(
                "voltfleet_proxy_ip_set_entries",
                "Networks on the firewall's IP sets, by list (allow, deny).",
            ),
            &["list"],
        )
        .expect("static metric definition is valid");
        let ip_set_refused = IntCounter::new(
            "voltfleet_proxy_ip_set_refused_total",
            "Requests refused because the client is on the deny list.",
        )
        .expect("static metric definition is valid");
        let rate_limited = IntCounterVec::new(
            Opts::new(
                "voltfleet_proxy_rate_limited_total",
                "Requests refused with 429 by a route's rate limit, by route.",
            ),
            &["route"],
        )
        .expect("static metric definition is valid");
        let rate_limit_fallbacks = IntCounter::new(
            "voltfleet_proxy_rate_limit_fallbacks_total",
            "Requests of a fleet-shared rate limit counted on this proxy alone because Redis did not answer in time.",
        )
        .expect("static metric definition is valid");
        let auto_blocks = IntCounterVec::new(
            Opts::new(
                "voltfleet_proxy_auto_blocks_total",
                "Clients put on the deny list automatically, by what they did (firewall, rate_limit).",
            ),
            &["trigger"],
        )
        .expect("static metric definition is valid");
        let connections_refused = IntCounterVec::new(
            Opts::new(
                "voltfleet_proxy_connections_refused_total",
                "Connections closed on arrival because their client address had listener.max_connections_per_ip open, by listener.",
            ),
            &["listener"],
        )
        .expect("static metric definition is valid");
        let slow_clients = IntCounterVec::new(
            Opts::new(
                "voltfleet_proxy_slow_clients_total",
                "Connections closed because the request header did not arrive within listener.client_header_timeout, by listener.",
            ),
            &["listener"],
        )
        .expect("static metric definition is valid");
        let build_info = IntGaugeVec::new(
            Opts::new(
                "voltfleet_proxy_build_info",
                "Always 1; labelled with the version.",
            ),
            &["version"],
        )
        .expect("static metric definition is valid");
        build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION")])
            .set(1);
        let collectors: Vec<Box<dyn prometheus::core::Collector>> = vec![
            Box::new(requests.clone()),
            Box::new(request_duration.clone()),
            Box::new(upstream_duration.clone()),
            Box::new(upstream_retries.clone()),
            Box::new(websockets_active.clone()),
            Box::new(websockets_total.clone()),
            Box::new(requests_in_flight.clone()),
            Box::new(connections_open.clone()),
            Box::new(connections_accepted.clone()),
            Box::new(peer_up.clone()),
            Box::new(peer_in_flight.clone()),
            Box::new(waf_matches.clone()),
            Box::new(ip_set_entries.clone()),
            Box::new(ip_set_refused.clone()),
            Box::new(rate_limited.clone()),
            Box::new(rate_limit_fallbacks.clone()),
            Box::new(auto_blocks.clone()),
            Box::new(connections_refused.clone()),
            Box::new(slow_clients.clone()),
            Box::new(build_info),
            Box::new(OwnProcess::new()),
        ];
        for collector in collectors {
            registry
                .register(collector)
                .expect("each metric is registered once");
        }
        ProxyMetrics {
            registry,
            requests,
            request_duration,
            upstream_duration,
            upstream_retries,
            websockets_active,
            websockets_total,
            requests_in_flight,
            connections_open,
            connections_accepted,
            peer_up,
            peer_in_flight,
            waf_matches,
            ip_set_entries,
            ip_set_refused,
            rate_limited,
            rate_limit_fallbacks,
            auto_blocks,
            connections_refused,
            slow_clients,
        }
    }

    /// Sets the IP set sizes.
    pub fn observe_ip_sets(&self, allow: usize, deny: usize) {
        for (list, size) in [("allow", allow), ("deny", deny)] {
            self.ip_set_entries
                .with_label_values(&[list])
                .set(i64::try_from(size).unwrap_or(i64::MAX));
        }
    }

    /// Counts a request that matched firewall rule `rule` on `route`.
    pub fn waf_match(&self, route: &str, rule: u32, action: &str) {
        self.waf_matches
            .with_label_values(&[route, &rule.to_string(), action])
            .inc();
    }

    pub fn rate_limited(&self, route: &str) {
        self.rate_limited.with_label_values(&[route]).inc();
    }

    pub fn auto_block(&self, trigger: &str) {
        self.auto_blocks.with_label_values(&[trigger]).inc();
    }

    /// The registry other modules (the cache) add their series to.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The series one route's requests land in, for each listener (in `listeners` order).
    pub fn route_series(&self, listeners: &[String], route: &str) -> RouteSeries {
        RouteSeries {
            requests: listeners
                .iter()
                .map(|listener| {
                    std::array::from_fn(|class| {
                        self.requests.with_label_values(&[
                            listener.as_str(),
                            route,
                            STATUS_CLASSES[class],
                        ])
                    })
                })
                .collect(),
            duration: self.request_duration.with_label_values(&[route]),
            websockets_total: self.websockets_total.with_label_values(&[route]),
            websockets_active: self.websockets_active.with_label_values(&[route]),
        }
    }

    /// The series of one upstream pool.
    pub fn pool_series(&self, pool: &str) -> PoolSeries {
        PoolSeries {
            upstream_duration: self.upstream_duration.with_label_values(&[pool]),
            retries: self.upstream_retries.with_label_values(&[pool]),
        }
    }

    /// The connection counters of one listener.
    pub fn connection_gauges(&self, listener: &str) -> crate::listener::ConnectionGauges {
        crate::listener::ConnectionGauges {
            open: self.connections_open.with_label_values(&[listener]),
            accepted: self.connections_accepted.with_label_values(&[listener]),
            refused: self.connections_refused.with_label_values(&[listener]),
            slow_clients: self.slow_clients.with_label_values(&[listener]),
        }
    }

    /// The text exposition, with the peers' state read from the pools now.
    pub fn render(&self, pools: &[Arc<Pool>]) -> String {
        for pool in pools {
            for peer in pool.status() {
                let labels = [pool.name(), &peer.address.to_string()];
                self.peer_up
                    .with_label_values(&labels)
                    .set(i64::from(peer.healthy && !peer.ejected));
                self.peer_in_flight
                    .with_label_values(&labels)
                    .set(i64::try_from(peer.in_flight).unwrap_or(i64::MAX));
            }
        }
        let mut buffer = Vec::new();
        if let Err(err) = TextEncoder::new().encode(&self.registry.gather(), &mut buffer) {
            tracing::error!(error = %err, "Encoding the metrics failed.");
        }
        String::from_utf8(buffer).unwrap_or_default()
    }
}

/// The `status` label: no response at all, then the five classes.
const STATUS_CLASSES: [&str; 6] = ["none", "1xx", "2xx", "3xx", "4xx", "5xx"];

/// One route's series, resolved when a configuration is loaded: a request then updates its
/// counters directly instead of hashing label values to find them.
#[derive(Debug, Clone)]
pub struct RouteSeries {
    /// By listener, then by status class.
    requests: Vec<[IntCounter; STATUS_CLASSES.len()]>,
    pub duration: Histogram,
    pub websockets_total: IntCounter,
    pub websockets_active: IntGauge,
}

impl RouteSeries {
    /// Counts one answered request; `status` 0 means none was sent.
    pub fn count(&self, listener: usize, status: u16) {
        let class = match status {
            0 => 0,
            100..=199 => 1,
            200..=299 => 2,
            300..=399 => 3,
            400..=499 => 4,
            _ => 5,
        };
        if let Some(by_class) = self.requests.get(listener) {
            by_class[class].inc();
        }
    }
}

/// One upstream pool's series.
#[derive(Debug, Clone)]
pub struct PoolSeries {
    pub upstream_duration: Histogram,
    pub retries: IntCounter,
}

/// `voltfleet_proxy_process_*` of whichever process collects them. The metrics are set up before
/// Pingora forks into a daemon (`--daemon`); a collector bound to the process id of that moment
/// would read a process that has exited by the first scrape.
struct OwnProcess {
    /// Describes the series, which are the same for every process.
    described: ProcessCollector,
    current: Mutex<(u32, ProcessCollector)>,
}

impl OwnProcess {
    const NAMESPACE: &'static str = "voltfleet_proxy";

    fn new() -> OwnProcess {
        let pid = std::process::id();
        OwnProcess {
            described: ProcessCollector::new(pid as i32, Self::NAMESPACE),
            current: Mutex::new((pid, ProcessCollector::new(pid as i32, Self::NAMESPACE))),
        }
    }
}

impl Collector for OwnProcess {
    fn desc(&self) -> Vec<&Desc> {
        self.described.desc()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let pid = std::process::id();
        let Ok(mut current) = self.current.lock() else {
            return Vec::new();
        };
        if current.0 != pid {
            *current = (pid, ProcessCollector::new(pid as i32, Self::NAMESPACE));
        }
        current.1.collect()
    }
}

impl Default for ProxyMetrics {
    fn default() -> Self {
        ProxyMetrics::new()
    }
}

//! Prometheus metrics of a voltfleet process, named `voltfleet_<subsystem>_<name>_<unit>`.
//!
//! Labels are bounded: service, method, route template and status class; never a charger id,
//! a client address or a raw path.

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

/// The registry of one process and the metrics the shared runtime records.
#[derive(Clone, Debug)]
pub struct Metrics {
    registry: Registry,
    pub http_requests: IntCounterVec,
    pub http_request_duration: HistogramVec,
    /// 1 when the dependency answered the last readiness check, else 0; label `dependency`.
    pub dependency_up: IntGaugeVec,
    pub services_running: IntGauge,
}

impl Metrics {
    /// Creates the registry with the process collector and build information.
    pub fn new() -> Metrics {
        let registry = Registry::new();
        let http_requests = IntCounterVec::new(
            Opts::new(
                "voltfleet_http_requests_total",
                "HTTP requests answered, by service, method, route template and status class.",
            ),
            &["service", "method", "route", "status"],
        )
        .expect("static metric definition is valid");
        let http_request_duration = HistogramVec::new(
            HistogramOpts::new(
                "voltfleet_http_request_duration_seconds",
                "Time to answer an HTTP request, by service and route template.",
            )
            .buckets(vec![
                0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ]),
            &["service", "route"],
        )
        .expect("static metric definition is valid");
        let dependency_up = IntGaugeVec::new(
            Opts::new(
                "voltfleet_dependency_up",
                "1 when the dependency (database, redis) answered the last readiness check.",
            ),
            &["dependency"],
        )
        .expect("static metric definition is valid");
        let services_running = IntGauge::new(
            "voltfleet_services_running",
            "Services this process is running.",
        )
        .expect("static metric definition is valid");
        let build_info = IntGaugeVec::new(
            Opts::new(
                "voltfleet_build_info",
                "Always 1; labelled with the version.",
            ),
            &["version"],
        )
        .expect("static metric definition is valid");
        build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION")])
            .set(1);

        let collectors: Vec<Box<dyn prometheus::core::Collector>> = vec![
            Box::new(http_requests.clone()),
            Box::new(http_request_duration.clone()),
            Box::new(dependency_up.clone()),
            Box::new(services_running.clone()),
            Box::new(build_info),
            Box::new(prometheus::process_collector::ProcessCollector::new(
                std::process::id() as i32,
                "voltfleet",
            )),
        ];
        for collector in collectors {
            registry
                .register(collector)
                .expect("each metric is registered once");
        }
        Metrics {
            registry,
            http_requests,
            http_request_duration,
            dependency_up,
            services_running,
        }
    }

    /// Registers a service's own metric in this process's registry.
    pub fn register(
        &self,
        collector: Box<dyn prometheus::core::Collector>,
    ) -> Result<(), prometheus::Error> {
        self.registry.register(collector)
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut buffer = Vec::new();
        let encoder = TextEncoder::new();
        if let Err(err) = encoder.encode(&self.registry.gather(), &mut buffer) {
            tracing::error!(error = %err, "Encoding the metrics failed.");
        }
        String::from_utf8(buffer).unwrap_or_default()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_has_prefixed_names() {
        let metrics = Metrics::new();
        metrics
            .http_requests
            .with_label_values(&["api", "GET", "/healthz", "2xx"])
            .inc();
        let text = metrics.render();
        assert!(text.contains("voltfleet_http_requests_total{method=\"GET\",route=\"/healthz\",service=\"api\",status=\"2xx\"} 1"), "{text}");
        assert!(text.contains("voltfleet_build_info{version="), "{text}");
        for line in text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
        {
            assert!(line.starts_with("voltfleet_"), "unprefixed metric: {line}");
        }
    }
}

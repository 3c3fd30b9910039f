//! The cache's Prometheus series: lookups by zone and `X-Cache-Status`, the objects, bytes and
//! evictions of each zone's tiers, and the requests that waited behind another's fetch.

use std::sync::atomic::{AtomicU64, Ordering};

use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGaugeVec, Opts,
};

use super::store::ZoneStats;

#[derive(Debug, Clone)]
pub struct CacheMetrics {
    lookups: IntCounterVec,
    bytes_served: IntCounterVec,
    objects: IntGaugeVec,
    stored_bytes: IntGaugeVec,
    evictions: IntCounterVec,
    lock_waits: IntCounterVec,
    lock_wait_seconds: HistogramVec,
}

/// One zone's series, resolved once.
#[derive(Debug)]
pub struct ZoneSeries {
    pub name: String,
    metrics: CacheMetrics,
    pub lock_waits: IntCounter,
    pub lock_wait_seconds: Histogram,
    /// Evictions already reported, per tier, so that the counters grow by the difference.
    reported_evictions: [AtomicU64; 2],
}

impl CacheMetrics {
    pub fn new(registry: &prometheus::Registry) -> CacheMetrics {
        let counter = |name: &str, help: &str, labels: &[&str]| {
            IntCounterVec::new(Opts::new(name, help), labels)
                .expect("static metric definition is valid")
        };
        let gauge = |name: &str, help: &str| {
            IntGaugeVec::new(Opts::new(name, help), &["zone", "tier"])
                .expect("static metric definition is valid")
        };
        let metrics = CacheMetrics {
            lookups: counter(
                "voltfleet_proxy_cache_requests_total",
                "Requests on caching routes, by zone and cache status (HIT, MISS, EXPIRED, STALE, UPDATING, REVALIDATED, BYPASS).",
                &["zone", "status"],
            ),
            bytes_served: counter(
                "voltfleet_proxy_cache_served_bytes_total",
                "Body bytes answered from the cache, by zone.",
                &["zone"],
            ),
            objects: gauge(
                "voltfleet_proxy_cache_objects",
                "Objects stored now, by zone and tier (memory, disk).",
            ),
            stored_bytes: gauge(
                "voltfleet_proxy_cache_bytes",
                "Bytes stored now, by zone and tier (memory, disk).",
            ),
            evictions: counter(
                "voltfleet_proxy_cache_evictions_total",
                "Objects evicted to stay within the size bound, by zone and tier.",
                &["zone", "tier"],
            ),
            lock_waits: counter(
                "voltfleet_proxy_cache_lock_waits_total",
                "Requests that waited for another request fetching the same key, by zone.",
                &["zone"],
            ),
            lock_wait_seconds: HistogramVec::new(
                HistogramOpts::new(
                    "voltfleet_proxy_cache_lock_wait_seconds",
                    "How long requests waited for another request fetching the same key.",
                )
                .buckets(vec![0.001, 0.005, 0.025, 0.1, 0.5, 1.0, 2.5, 5.0, 10.0]),
                &["zone"],
            )
            .expect("static metric definition is valid"),
        };
        let collectors: Vec<Box<dyn prometheus::core::Collector>> = vec![
            Box::new(metrics.lookups.clone()),
            Box::new(metrics.bytes_served.clone()),
            Box::new(metrics.objects.clone()),
            Box::new(metrics.stored_bytes.clone()),
            Box::new(metrics.evictions.clone()),
            Box::new(metrics.lock_waits.clone()),
            Box::new(metrics.lock_wait_seconds.clone()),
        ];
        for collector in collectors {
            registry
                .register(collector)
                .expect("each metric is registered once");
        }
        metrics
    }

    pub fn zone(&self, name: &str) -> ZoneSeries {
        ZoneSeries {
            name: name.to_string(),
            metrics: self.clone(),
            lock_waits: self.lock_waits.with_label_values(&[name]),
            lock_wait_seconds: self.lock_wait_seconds.with_label_values(&[name]),
            reported_evictions: [AtomicU64::new(0), AtomicU64::new(0)],
        }
    }
}

impl ZoneSeries {
    /// Counts one request's cache status and the body bytes a hit answered with.
    pub fn count(&self, status: &str, served_from_cache: u64) {
        self.metrics
            .lookups
            .with_label_values(&[self.name.as_str(), status])
            .inc();
        if served_from_cache > 0 {
            self.metrics
                .bytes_served
                .with_label_values(&[self.name.as_str()])
                .inc_by(served_from_cache);
        }
    }

    /// Publishes the tiers' sizes as they are now.
    pub fn observe(&self, stats: &ZoneStats) {
        let mut tiers = vec![(
            "memory",
            stats.memory.objects,
            stats.memory.bytes,
            stats.memory.evictions,
        )];
        if let Some(disk) = stats.disk {
            tiers.push(("disk", disk.objects, disk.bytes, disk.evictions));
        }
        for (index, (tier, objects, bytes, evictions)) in tiers.into_iter().enumerate() {
            let labels = [self.name.as_str(), tier];
            let as_gauge = |value: u64| i64::try_from(value).unwrap_or(i64::MAX);
            self.metrics
                .objects
                .with_label_values(&labels)
                .set(as_gauge(objects));
            self.metrics
                .stored_bytes
                .with_label_values(&labels)
                .set(as_gauge(bytes));
            let before = self.reported_evictions[index].swap(evictions, Ordering::Relaxed);
            self.metrics
                .evictions
                .with_label_values(&labels)
                .inc_by(evictions.saturating_sub(before));
        }
    }
}

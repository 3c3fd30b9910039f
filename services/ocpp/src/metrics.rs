//! The OCPP service's metrics, registered in the process registry (`/metrics`).
//!
//! Labels are bounded: actions come from the closed list of OCPP actions (anything else is
//! `unknown`), outcomes and reasons from the code; never a charger id.

use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts,
};
use voltfleet_core::metrics::Metrics;

#[derive(Debug, Clone)]
pub struct OcppMetrics {
    /// Chargers with an open WebSocket on this node.
    pub connected: IntGauge,
    /// Messages by direction (`received`, `sent`), action and outcome (`ok`, a CALLERROR
    /// code, `malformed`).
    pub messages: IntCounterVec,
    /// CALLs sent to chargers by action and outcome (`answered`, `error`, `timeout`), with the
    /// time the charger took to answer.
    pub call_duration: HistogramVec,
    /// Handshakes refused, by reason.
    pub rejected_connections: IntCounterVec,
    /// Messages a charger sent faster than `ocpp.rate_limit` allows, and that waited.
    pub throttled: IntCounter,
    /// Sampled values written to the database.
    pub meter_samples_stored: IntCounter,
    /// Sampled values per database write.
    pub meter_batch_rows: Histogram,
    /// Diagnostics uploads by outcome (`uploaded`, `bad_request`, `refused`, `too_large`,
    /// `busy`, `incomplete`, `failed`).
    pub diagnostics_uploads: IntCounterVec,
}

impl OcppMetrics {
    pub fn register(metrics: &Metrics) -> Result<OcppMetrics, prometheus::Error> {
        let connected = IntGauge::new(
            "voltfleet_ocpp_connected_chargers",
            "Chargers with an open WebSocket on this node.",
        )?;
        let messages = IntCounterVec::new(
            Opts::new(
                "voltfleet_ocpp_messages_total",
                "OCPP messages by direction, action and outcome.",
            ),
            &["direction", "action", "outcome"],
        )?;
        let call_duration = HistogramVec::new(
            HistogramOpts::new(
                "voltfleet_ocpp_call_duration_seconds",
                "Time from sending a CALL to a charger until its answer, by action and outcome.",
            )
            .buckets(vec![
                0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
            ]),
            &["action", "outcome"],
        )?;
        let rejected_connections = IntCounterVec::new(
            Opts::new(
                "voltfleet_ocpp_rejected_connections_total",
                "WebSocket handshakes refused, by reason.",
            ),
            &["reason"],
        )?;
        let throttled = IntCounter::new(
            "voltfleet_ocpp_throttled_messages_total",
            "Messages that waited because their charger exceeded ocpp.rate_limit.",
        )?;
        let meter_samples_stored = IntCounter::new(
            "voltfleet_ocpp_meter_samples_stored_total",
            "Sampled meter values written to the database.",
        )?;
        let meter_batch_rows = Histogram::with_opts(
            HistogramOpts::new(
                "voltfleet_ocpp_meter_batch_rows",
                "Sampled values per database write of meter values.",
            )
            .buckets(vec![1.0, 5.0, 10.0, 50.0, 100.0, 500.0, 1000.0, 5000.0]),
        )?;
        let diagnostics_uploads = IntCounterVec::new(
            Opts::new(
                "voltfleet_ocpp_diagnostics_uploads_total",
                "Diagnostics file uploads from chargers, by outcome.",
            ),
            &["outcome"],
        )?;
        metrics.register(Box::new(connected.clone()))?;
        metrics.register(Box::new(messages.clone()))?;
        metrics.register(Box::new(call_duration.clone()))?;
        metrics.register(Box::new(rejected_connections.clone()))?;
        metrics.register(Box::new(throttled.clone()))?;
        metrics.register(Box::new(meter_samples_stored.clone()))?;
        metrics.register(Box::new(meter_batch_rows.clone()))?;
        metrics.register(Box::new(diagnostics_uploads.clone()))?;
        Ok(OcppMetrics {
            connected,
            messages,
            call_duration,
            rejected_connections,
            throttled,
            meter_samples_stored,
            meter_batch_rows,
            diagnostics_uploads,
        })
    }

    pub fn message(&self, direction: &str, action: &str, outcome: &str) {
        self.messages
            .with_label_values(&[direction, action, outcome])
            .inc();
    }
}

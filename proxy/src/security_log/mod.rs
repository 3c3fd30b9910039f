//! The security log: one JSON line per security event (a firewall match today; rate limits and
//! IP denials use the same type), written to hourly files by a thread of its own and shipped
//! gzipped to S3 in a layout Athena reads by partition (`dt=YYYY-MM-DD/hour=HH/`).
//!
//! Recording never blocks a request: [`SecurityLog::record`] puts the event in a bounded
//! queue and returns; when the queue is full the event is dropped and counted. The writer
//! (`writer`) owns every file, the shipper (`shipper`, a Pingora background service) only
//! ever touches files the writer has closed.

mod shipper;
mod writer;

use std::net::IpAddr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use prometheus::{IntCounterVec, IntGauge, Opts, Registry};
use serde::{Serialize, Serializer};

use crate::config::SecurityLogConfig;

pub use shipper::{Shipper, s3_key};
pub use writer::{Writer, WriterError};

/// What the proxy did with the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Refused it.
    Block,
    /// Let it through, logged and counted (a route in `count` mode).
    Count,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Block => "block",
            Action::Count => "count",
        }
    }
}

/// One event, as one line of the log. The field names are the Athena table's columns
/// (`proxy/athena/security_log.sql`): change them there too.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SecurityEvent {
    /// When it happened; RFC 3339 in UTC with milliseconds.
    #[serde(serialize_with = "rfc3339_millis")]
    pub event_time: DateTime<Utc>,
    /// The client as far as it can be believed (what the access log shows).
    pub client_ip: Option<IpAddr>,
    pub listener: String,
    /// The route's label (`*/api/`), or `none` before routing.
    pub route: String,
    pub host: String,
    pub method: String,
    /// The request's path without its query, cut at [`MAX_PATH_BYTES`].
    pub path: String,
    pub rule_id: u32,
    /// `sqli`, `xss`, `protocol`, `rate_limit`, `ip_deny`, `auto_block`, …
    pub kind: &'static str,
    pub action: Action,
    /// Where the matched value was (`query`, `cookie`, `header`, `body`, `path`), if anywhere.
    pub location: Option<&'static str>,
    /// The argument, cookie, header or JSON path of the matched value.
    pub name: Option<String>,
    /// The start of the matched value, cut at `security_log.max_excerpt_bytes`.
    pub excerpt: Option<String>,
    pub request_id: String,
}

/// How much of a path an event keeps; what matched is in the excerpt.
pub const MAX_PATH_BYTES: usize = 1024;

/// The request an event is about.
#[derive(Debug, Clone, Copy)]
pub struct RequestFacts<'a> {
    pub client_ip: Option<IpAddr>,
    pub listener: &'a str,
    pub route: &'a str,
    pub host: &'a str,
    pub method: &'a str,
    pub path: &'a str,
    pub request_id: &'a str,
}

impl SecurityEvent {
    /// An event about `request` happening now; add what matched with [`Self::matched`].
    pub fn new(
        request: RequestFacts<'_>,
        kind: &'static str,
        rule_id: u32,
        action: Action,
    ) -> SecurityEvent {
        SecurityEvent {
            event_time: Utc::now(),
            client_ip: request.client_ip,
            listener: request.listener.to_string(),
            route: request.route.to_string(),
            host: request.host.to_string(),
            method: request.method.to_string(),
            path: truncated(request.path, MAX_PATH_BYTES).to_string(),
            rule_id,
            kind,
            action,
            location: None,
            name: None,
            excerpt: None,
            request_id: request.request_id.to_string(),
        }
    }

    /// Where the matched value was, its name (empty for none) and its start.
    pub fn matched(mut self, location: &'static str, name: &str, excerpt: &str) -> SecurityEvent {
        self.location = Some(location);
        self.name = (!name.is_empty()).then(|| name.to_string());
        self.excerpt = Some(excerpt.to_string());
        self
    }

    /// The JSON line, with the excerpt cut at `max_excerpt_bytes`.
    pub fn to_line(&self, max_excerpt_bytes: usize) -> Vec<u8> {
        let mut line = match &self.excerpt {
            Some(excerpt) if excerpt.len() > max_excerpt_bytes => {
                let mut shorter = self.clone();
                shorter.excerpt = Some(truncated(excerpt, max_excerpt_bytes).to_string());
                serde_json::to_vec(&shorter)
            }
            _ => serde_json::to_vec(self),
        }
        // A struct of strings and numbers always serializes.
        .unwrap_or_default();
        line.push(b'\n');
        line
    }
}

fn rfc3339_millis<S: Serializer>(time: &DateTime<Utc>, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&time.to_rfc3339_opts(SecondsFormat::Millis, true))
}

/// The longest start of `text` of at most `max` bytes that ends on a character boundary.
pub fn truncated(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// What the writer thread is asked to do.
enum Command {
    Write(Box<SecurityEvent>),
    /// Close the open file now (shutdown) and say so.
    Close(std::sync::mpsc::Sender<()>),
}

/// The handle requests record events through; the writer runs behind it.
pub struct SecurityLog {
    sender: SyncSender<Command>,
    /// Taken by the writer thread when it starts (`start_writer`).
    receiver: Mutex<Option<Receiver<Command>>>,
    config: SecurityLogConfig,
    metrics: SecurityLogMetrics,
    /// When a dropped event was last warned about (Unix seconds), so a flood logs once a
    /// minute rather than once per event.
    last_drop_warning: AtomicI64,
}

impl std::fmt::Debug for SecurityLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecurityLog")
            .field("dir", &self.config.dir)
            .field("queue", &self.config.queue)
            .finish_non_exhaustive()
    }
}

impl SecurityLog {
    /// Sets up the queue; nothing is written until the shipper service starts the writer.
    pub fn new(config: &SecurityLogConfig, registry: &Registry) -> Arc<SecurityLog> {
        let (sender, receiver) = std::sync::mpsc::sync_channel(config.queue);
        Arc::new(SecurityLog {
            sender,
            receiver: Mutex::new(Some(receiver)),
            config: config.clone(),
            metrics: SecurityLogMetrics::new(registry),
            last_drop_warning: AtomicI64::new(i64::MIN),
        })
    }

    pub fn config(&self) -> &SecurityLogConfig {
        &self.config
    }

    /// Hands the event to the writer without waiting; a full queue drops it and counts it.
    pub fn record(&self, event: SecurityEvent) {
        match self.sender.try_send(Command::Write(Box::new(event))) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => self.dropped("queue_full"),
            Err(TrySendError::Disconnected(_)) => self.dropped("writer_gone"),
        }
    }

    fn dropped(&self, reason: &'static str) {
        self.metrics.dropped.with_label_values(&[reason]).inc();
        let now = Utc::now().timestamp();
        let last = self.last_drop_warning.load(Ordering::Relaxed);
        if now.saturating_sub(last) >= 60
            && self
                .last_drop_warning
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            tracing::warn!(
                reason,
                queue = self.config.queue,
                "Dropped a security event: the writer cannot keep up (or is gone); voltfleet_proxy_security_log_dropped_total counts them. Raise security_log.queue or check the disk."
            );
        }
    }

    /// Starts the writer thread once; later calls do nothing. It closes files left open by a
    /// crash before it writes anything.
    pub fn start_writer(self: &Arc<Self>) {
        let Some(receiver) = self.receiver.lock().ok().and_then(|mut slot| slot.take()) else {
            return;
        };
        let log = self.clone();
        let started = std::thread::Builder::new()
            .name("security-log".into())
            .spawn(move || log.run_writer(&receiver));
        if let Err(err) = started {
            tracing::error!(error = %err, "Cannot start the security log's writer; events are dropped and counted.");
        }
    }

    fn run_writer(&self, receiver: &Receiver<Command>) {
        /// How often the open file's age and hour are looked at when no event comes.
        const TICK: Duration = Duration::from_secs(1);
        /// Events written between two flushes, at most.
        const BATCH: usize = 256;
        let mut writer = Writer::new(&self.config, &writer::instance_id(), self.metrics.clone());
        writer.recover();
        loop {
            match receiver.recv_timeout(TICK) {
                Ok(Command::Write(event)) => {
                    writer.write(*event, Utc::now());
                    for _ in 1..BATCH {
                        match receiver.try_recv() {
                            Ok(Command::Write(event)) => writer.write(*event, Utc::now()),
                            Ok(Command::Close(done)) => {
                                writer.close();
                                let _ = done.send(());
                            }
                            Err(_) => break,
                        }
                    }
                    writer.flush();
                    writer.tick(Utc::now());
                }
                Ok(Command::Close(done)) => {
                    writer.close();
                    let _ = done.send(());
                }
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => writer.tick(Utc::now()),
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                    writer.close();
                    return;
                }
            }
        }
    }

    /// Asks the writer to close its file and waits for it, at most `limit`. Blocks: call it
    /// from a blocking context.
    pub fn close_blocking(&self, limit: Duration) -> bool {
        let (done, closed) = std::sync::mpsc::channel();
        if self.sender.send(Command::Close(done)).is_err() {
            return false;
        }
        closed.recv_timeout(limit).is_ok()
    }
}

/// `voltfleet_proxy_security_log_*`.
#[derive(Debug, Clone)]
pub struct SecurityLogMetrics {
    events: IntCounterVec,
    dropped: IntCounterVec,
    uploads: IntCounterVec,
    waiting_files: IntGauge,
    waiting_bytes: IntGauge,
    discarded_files: prometheus::IntCounter,
}

impl SecurityLogMetrics {
    fn new(registry: &Registry) -> SecurityLogMetrics {
        let metrics = SecurityLogMetrics {
            events: IntCounterVec::new(
                Opts::new(
                    "voltfleet_proxy_security_log_events_total",
                    "Security events written to the security log, by action.",
                ),
                &["action"],
            )
            .expect("static metric definition is valid"),
            dropped: IntCounterVec::new(
                Opts::new(
                    "voltfleet_proxy_security_log_dropped_total",
                    "Security events lost before reaching a file: the queue was full, or writing failed.",
                ),
                &["reason"],
            )
            .expect("static metric definition is valid"),
            uploads: IntCounterVec::new(
                Opts::new(
                    "voltfleet_proxy_security_log_uploads_total",
                    "Closed security log files uploaded to S3, by outcome.",
                ),
                &["outcome"],
            )
            .expect("static metric definition is valid"),
            waiting_files: IntGauge::new(
                "voltfleet_proxy_security_log_files_waiting",
                "Closed security log files on disk not yet uploaded (or, without S3, not yet expired).",
            )
            .expect("static metric definition is valid"),
            waiting_bytes: IntGauge::new(
                "voltfleet_proxy_security_log_waiting_bytes",
                "Bytes of the closed security log files waiting on disk.",
            )
            .expect("static metric definition is valid"),
            discarded_files: prometheus::IntCounter::new(
                "voltfleet_proxy_security_log_files_discarded_total",
                "Closed security log files deleted before being shipped, to keep within security_log.max_local_bytes.",
            )
            .expect("static metric definition is valid"),
        };
        for action in [Action::Block, Action::Count] {
            metrics.events.with_label_values(&[action.as_str()]);
        }
        for reason in ["queue_full", "write_failed", "writer_gone"] {
            metrics.dropped.with_label_values(&[reason]);
        }
        for outcome in ["success", "failure"] {
            metrics.uploads.with_label_values(&[outcome]);
        }
        let _ = registry.register(Box::new(metrics.events.clone()));
        let _ = registry.register(Box::new(metrics.dropped.clone()));
        let _ = registry.register(Box::new(metrics.uploads.clone()));
        let _ = registry.register(Box::new(metrics.waiting_files.clone()));
        let _ = registry.register(Box::new(metrics.waiting_bytes.clone()));
        let _ = registry.register(Box::new(metrics.discarded_files.clone()));
        metrics
    }

    /// Series registered nowhere, for tests of the parts.
    #[cfg(test)]
    fn unregistered() -> SecurityLogMetrics {
        SecurityLogMetrics::new(&Registry::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn sample() -> SecurityEvent {
        let request = RequestFacts {
            client_ip: Some(IpAddr::from([203, 0, 113, 7])),
            listener: "public",
            route: "*/api/",
            host: "app.example.com",
            method: "GET",
            path: "/api/v1/locations",
            request_id: "3f0c6a3e-8f5e-4d58-9a43-8ad1c4c5b0e1",
        };
        let mut event = SecurityEvent::new(request, "sqli", 101_101, Action::Block).matched(
            "query",
            "q",
            "1' or '1'='1",
        );
        event.event_time = DateTime::parse_from_rfc3339("2024-05-01T13:04:05.678Z")
            .expect("a valid time")
            .with_timezone(&Utc);
        event
    }

    #[test]
    fn an_event_is_one_json_line_with_stable_field_names() {
        let line = sample().to_line(256);
        assert_eq!(line.last(), Some(&b'\n'));
        assert_eq!(line.iter().filter(|b| **b == b'\n').count(), 1);
        let value: serde_json::Value = serde_json::from_slice(&line).expect("JSON");
        assert_eq!(
            value,
            serde_json::json!({
                "event_time": "2024-05-01T13:04:05.678Z",
                "client_ip": "203.0.113.7",
                "listener": "public",
                "route": "*/api/",
                "host": "app.example.com",
                "method": "GET",
                "path": "/api/v1/locations",
                "rule_id": 101101,
                "kind": "sqli",
                "action": "block",
                "location": "query",
                "name": "q",
                "excerpt": "1' or '1'='1",
                "request_id": "3f0c6a3e-8f5e-4d58-9a43-8ad1c4c5b0e1",
            })
        );
    }

    #[test]
    fn an_event_without_a_matched_part_has_nulls() {
        let mut event = sample();
        (event.location, event.name, event.excerpt, event.client_ip) = (None, None, None, None);
        let value: serde_json::Value = serde_json::from_slice(&event.to_line(256)).expect("JSON");
        for field in ["location", "name", "excerpt", "client_ip"] {
            assert_eq!(value[field], serde_json::Value::Null, "{field}");
        }
        let named = sample().matched("path", "", "/etc/passwd");
        assert_eq!(named.name, None, "an empty name is no name");
    }

    #[test]
    fn excerpts_and_paths_are_cut_on_a_character_boundary() {
        // "é" is two bytes: a cut at 5 bytes would split the third one.
        assert_eq!(truncated("ééé", 5), "éé");
        assert_eq!(truncated("ééé", 6), "ééé");
        assert_eq!(truncated("abc", 0), "");
        assert_eq!(truncated("€", 2), "");
        let event = sample().matched("query", "q", &"é".repeat(200));
        let value: serde_json::Value = serde_json::from_slice(&event.to_line(255)).expect("JSON");
        let excerpt = value["excerpt"].as_str().expect("a string");
        assert_eq!(excerpt.len(), 254);
        let long = format!("/{}", "ü".repeat(MAX_PATH_BYTES));
        let request = RequestFacts {
            client_ip: None,
            listener: "l",
            route: "r",
            host: "h",
            method: "GET",
            path: &long,
            request_id: "id",
        };
        let event = SecurityEvent::new(request, "xss", 1, Action::Count);
        assert!(event.path.len() <= MAX_PATH_BYTES && event.path.len() >= MAX_PATH_BYTES - 1);
    }

    /// The Athena table's columns, in order, with their types.
    fn athena_columns(ddl: &str) -> Vec<(String, String)> {
        let start = ddl
            .find("CREATE EXTERNAL TABLE")
            .expect("a CREATE EXTERNAL TABLE");
        let body = &ddl[start..];
        let open = body.find('(').expect("a column list");
        let close = body.find("PARTITIONED BY").expect("partitions");
        body[open + 1..close]
            .lines()
            .filter_map(|line| {
                let line = line.trim().trim_end_matches(',');
                let (name, kind) = line.split_once(' ')?;
                Some((name.trim_matches('`').to_string(), kind.trim().to_string()))
            })
            .collect()
    }

    #[test]
    fn the_athena_table_has_a_column_for_every_field_and_no_other() {
        let ddl = include_str!("../../athena/security_log.sql");
        let columns = athena_columns(ddl);
        let value: serde_json::Value =
            serde_json::from_slice(&sample().to_line(256)).expect("JSON");
        let fields = value.as_object().expect("an object");
        let column_names: Vec<&str> = columns.iter().map(|(name, _)| name.as_str()).collect();
        let field_names: Vec<&str> = fields.keys().map(String::as_str).collect();
        for field in &field_names {
            assert!(column_names.contains(field), "{field} is not a column");
        }
        for column in &column_names {
            assert!(field_names.contains(column), "{column} is not a field");
        }
        for (name, kind) in &columns {
            let expected = if fields[name].is_number() {
                "int"
            } else {
                "string"
            };
            assert_eq!(kind, expected, "{name}");
        }
        for property in [
            "PARTITIONED BY (\n  `dt` string,\n  `hour` string\n)",
            "org.openx.data.jsonserde.JsonSerDe",
            "'projection.enabled' = 'true'",
            "'projection.dt.type' = 'date'",
            "'projection.dt.format' = 'yyyy-MM-dd'",
            "'projection.hour.type' = 'integer'",
            "'projection.hour.digits' = '2'",
            "dt=${dt}/hour=${hour}/",
        ] {
            assert!(ddl.contains(property), "{property}");
        }
        // The partitions in the table are the ones the shipper writes.
        let key = s3_key(
            crate::config::SecurityLogS3Config::default_prefix(),
            "security-20240501-07-h.r-000001.jsonl",
        )
        .expect("a key");
        assert!(ddl.contains(&format!(
            "s3://YOUR-BUCKET/{}dt=${{dt}}/hour=${{hour}}/",
            crate::config::SecurityLogS3Config::default_prefix()
        )));
        assert!(key.contains("/dt=2024-05-01/hour=07/"), "{key}");
    }

    #[test]
    fn a_full_queue_drops_and_counts_without_waiting() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let config = SecurityLogConfig {
            dir: dir.path().to_path_buf(),
            rotate_every: Duration::from_secs(3600),
            max_file_bytes: 1 << 20,
            max_excerpt_bytes: 256,
            queue: 2,
            keep_local: Duration::from_secs(3600),
            max_local_bytes: 1 << 30,
            s3: None,
        };
        let registry = Registry::new();
        let log = SecurityLog::new(&config, &registry);
        // No writer is running: the queue fills after two events.
        let started = std::time::Instant::now();
        for _ in 0..5 {
            log.record(sample());
        }
        assert!(started.elapsed() < Duration::from_secs(1));
        assert_eq!(
            log.metrics.dropped.with_label_values(&["queue_full"]).get(),
            3
        );
        // Started, the writer takes the queued two.
        log.start_writer();
        assert!(log.close_blocking(Duration::from_secs(10)));
        assert_eq!(log.metrics.events.with_label_values(&["block"]).get(), 2);
        let closed: Vec<_> = std::fs::read_dir(dir.path())
            .expect("listable")
            .filter_map(Result::ok)
            .filter(|entry| entry.file_name().to_string_lossy().ends_with(".jsonl"))
            .collect();
        assert_eq!(closed.len(), 1);
        let text = std::fs::read_to_string(closed[0].path()).expect("readable");
        assert_eq!(text.lines().count(), 2);
    }
}

//! The proxies of one web tier act as one through Redis (`[fleet]`, ElastiCache in AWS):
//!
//! - `purges`: a purge made on any proxy's admin listener reaches every proxy's cache;
//! - `ipsets`: the allow and deny lists' run-time entries (admin API, automatic blocking) are
//!   kept in Redis, so every proxy applies them within a second and a restarted one has them;
//! - `ratelimit`: a route's rate limit may be counted in Redis, so that it holds for the tier
//!   as a whole rather than per proxy.
//!
//! Changes travel through streams rather than pub/sub, because pub/sub forgets what it sent
//! while a proxy was away: a proxy that was cut off catches up from the last entry it applied,
//! as far back as the stream reaches. What it can no longer know is logged and counted, not
//! guessed.
//!
//! Redis being unreachable never stops the proxy: every change still acts on the proxy that
//! received it (and says that the fleet was not told), shared limits are counted locally, the
//! followers retry with a pause that doubles up to `fleet.max_reconnect_delay`, and the
//! `voltfleet_proxy_fleet_*` metrics show the state.

mod ipsets;
mod purges;
mod ratelimit;

use std::cmp::Ordering;
use std::time::Duration;

use pingora::server::ShutdownWatch;
use prometheus::{IntCounterVec, IntGauge, Opts, Registry};
use redis::aio::{ConnectionManager, ConnectionManagerConfig, MultiplexedConnection};
use redis::streams::StreamRangeReply;
use redis::{AsyncConnectionConfig, RedisError};

use crate::config::{FleetConfig, redacted_url};

pub use ipsets::IpSetFollower;
pub use purges::PurgeFollower;

/// How long one read of a stream waits for new entries before asking again; it bounds how late
/// a dead connection is noticed when Redis vanishes without closing it.
const READ_BLOCK: Duration = Duration::from_secs(5);
/// Entries applied per read; a proxy catching up takes the backlog in bites of this size.
const READ_BATCH: usize = 100;
/// The first pause after a failure; it doubles up to `fleet.max_reconnect_delay`.
const FIRST_RECONNECT_DELAY: Duration = Duration::from_millis(250);

#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    #[error(
        "Redis at {target}: {source}; check that it runs and is reachable from here (fleet.redis_url, security groups)"
    )]
    Redis {
        target: String,
        #[source]
        source: RedisError,
    },
    #[error(
        "Redis at {target} gave no answer within {limit:?}; check that it runs and is reachable from here (fleet.redis_url, security groups)"
    )]
    Timeout { target: String, limit: Duration },
}

/// This proxy's link to the fleet: it publishes purges and follows the log.
pub struct Fleet {
    client: redis::Client,
    /// Made at the first purge: a connection manager needs the runtime, which starts later.
    publisher: tokio::sync::OnceCell<ConnectionManager>,
    /// `host:port` without credentials, for messages.
    target: String,
    /// The purge log's key.
    log_key: String,
    /// Tells this proxy's own entries apart: it applied them before publishing.
    instance: String,
    config: FleetConfig,
    metrics: FleetMetrics,
    /// The shared rate limits' GCRA step.
    rate_script: redis::Script,
}

impl std::fmt::Debug for Fleet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fleet")
            .field("redis", &self.target)
            .field("key_prefix", &self.config.key_prefix)
            .field("instance", &self.instance)
            .finish_non_exhaustive()
    }
}

impl Fleet {
    /// Sets up the link without connecting: Redis may be down while the proxy starts.
    pub fn new(config: &FleetConfig, registry: &Registry) -> Result<Fleet, FleetError> {
        // rediss:// builds its TLS client from the process-wide provider, which rustls cannot
        // pick alone when two are linked; the listeners use ring, so Redis does too.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let target = redacted_url(&config.redis_url);
        let failed = |source| FleetError::Redis {
            target: target.clone(),
            source,
        };
        let client = redis::Client::open(config.redis_url.as_str()).map_err(failed)?;
        Ok(Fleet {
            client,
            publisher: tokio::sync::OnceCell::new(),
            target,
            log_key: format!("{}purges", config.key_prefix),
            instance: uuid::Uuid::new_v4().to_string(),
            config: config.clone(),
            metrics: FleetMetrics::new(registry),
            rate_script: ratelimit::script(),
        })
    }

    /// The connection commands go through, made at the first command: a connection manager
    /// needs the runtime, which starts later than the fleet is set up.
    async fn commands(&self) -> Result<ConnectionManager, FleetError> {
        self.publisher
            .get_or_try_init(|| async {
                ConnectionManager::new_lazy_with_config(
                    self.client.clone(),
                    ConnectionManagerConfig::new()
                        .set_connection_timeout(Some(self.config.connect_timeout))
                        .set_response_timeout(Some(self.config.response_timeout))
                        .set_number_of_retries(2)
                        .set_max_delay(Duration::from_secs(1)),
                )
            })
            .await
            .cloned()
            .map_err(|source| self.failed(source))
    }

    /// Runs one command (or script invocation) within `limit`, reconnecting included.
    async fn run<T: redis::FromRedisValue>(
        &self,
        operation: &'static str,
        limit: Duration,
        query: impl AsyncFnOnce(&mut ConnectionManager) -> Result<T, RedisError>,
    ) -> Result<T, FleetError> {
        let answer = tokio::time::timeout(limit, async {
            let mut connection = self.commands().await?;
            query(&mut connection)
                .await
                .map_err(|source| self.failed(source))
        })
        .await
        .unwrap_or_else(|_| {
            Err(FleetError::Timeout {
                target: self.target.clone(),
                limit,
            })
        });
        if answer.is_err() {
            self.metrics.errors.with_label_values(&[operation]).inc();
        }
        answer
    }

    /// The bound an operator waits for: connecting and one answer.
    fn operator_limit(&self) -> Duration {
        self.config.connect_timeout + self.config.response_timeout
    }

    fn failed(&self, source: RedisError) -> FleetError {
        FleetError::Redis {
            target: self.target.clone(),
            source,
        }
    }

    /// A connection of its own for a follower, whose blocking reads must not hold up commands.
    async fn follower_connection(&self) -> Result<MultiplexedConnection, FleetError> {
        let connection_config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.config.connect_timeout))
            .set_response_timeout(Some(READ_BLOCK + self.config.response_timeout));
        self.client
            .get_multiplexed_async_connection_with_config(&connection_config)
            .await
            .map_err(|source| self.failed(source))
    }
}

/// A background reader of one of the fleet's streams.
#[async_trait::async_trait]
trait Follower: Send + Sync {
    /// What it follows, for log lines.
    const WHAT: &'static str;

    fn fleet(&self) -> &Fleet;

    /// 1 while a connection lives.
    fn connected_gauge(&self) -> &IntGauge;

    /// One connection's life, from `position` (updated as entries are applied); returns when
    /// the connection fails, after calling `reconnect.connected()` once it worked.
    async fn follow(
        &self,
        position: &mut Option<EntryId>,
        reconnect: &mut Reconnect,
    ) -> Result<(), FleetError>;
}

/// Runs `follower` from `position` until shutdown, reconnecting after each failure.
async fn follow_until_shutdown<F: Follower>(
    follower: &F,
    mut position: Option<EntryId>,
    mut shutdown: ShutdownWatch,
) {
    let mut reconnect = Reconnect::new(&follower.fleet().config);
    loop {
        let result = tokio::select! {
            _ = shutdown.changed() => return,
            result = follower.follow(&mut position, &mut reconnect) => result,
        };
        if !reconnect
            .after(F::WHAT, result, follower.connected_gauge(), &mut shutdown)
            .await
        {
            return;
        }
    }
}

/// The pauses of a follower between connections: doubling from `FIRST_RECONNECT_DELAY` up to
/// `fleet.max_reconnect_delay`, back to the first once a connection works again.
#[derive(Debug)]
struct Reconnect {
    delay: Duration,
    max: Duration,
}

impl Reconnect {
    fn new(config: &FleetConfig) -> Reconnect {
        Reconnect {
            delay: FIRST_RECONNECT_DELAY,
            max: config.max_reconnect_delay,
        }
    }

    /// A connection works: the next failure waits the shortest pause again.
    fn connected(&mut self) {
        self.delay = FIRST_RECONNECT_DELAY;
    }

    /// Logs why a connection ended, waits, and says whether to go on (false at shutdown).
    async fn after(
        &mut self,
        what: &str,
        result: Result<(), FleetError>,
        up: &IntGauge,
        shutdown: &mut ShutdownWatch,
    ) -> bool {
        up.set(0);
        if let Err(err) = result {
            tracing::warn!(error = %err, retry_in = ?self.delay, "Lost the fleet's {what}; changes from other proxies wait until it is back.");
        }
        let pause = self.delay;
        self.delay = (self.delay * 2).min(self.max);
        tokio::select! {
            _ = shutdown.changed() => false,
            () = tokio::time::sleep(pause) => true,
        }
    }
}

/// The id of the newest entry, or `0-0` for an empty or missing log.
async fn newest_entry(
    connection: &mut MultiplexedConnection,
    key: &str,
) -> Result<EntryId, RedisError> {
    let newest: StreamRangeReply = redis::cmd("XREVRANGE")
        .arg(key)
        .arg("+")
        .arg("-")
        .arg("COUNT")
        .arg(1)
        .query_async(connection)
        .await?;
    Ok(newest
        .ids
        .first()
        .and_then(|entry| EntryId::parse(&entry.id))
        .unwrap_or(EntryId(0, 0)))
}

/// A stream entry id, `milliseconds-sequence`, ordered as Redis orders them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct EntryId(u64, u64);

impl EntryId {
    fn parse(text: &str) -> Option<EntryId> {
        let (millis, sequence) = text.split_once('-')?;
        Some(EntryId(millis.parse().ok()?, sequence.parse().ok()?))
    }
}

impl Ord for EntryId {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.0, self.1).cmp(&(other.0, other.1))
    }
}

impl PartialOrd for EntryId {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl std::fmt::Display for EntryId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.0, self.1)
    }
}

/// `voltfleet_proxy_fleet_*`.
#[derive(Debug, Clone)]
struct FleetMetrics {
    up: IntGauge,
    ip_sets_up: IntGauge,
    purges: IntCounterVec,
    gaps: prometheus::IntCounter,
    ip_set_changes: IntCounterVec,
    errors: IntCounterVec,
}

impl FleetMetrics {
    fn new(registry: &Registry) -> FleetMetrics {
        let gauge = |name: &str, help: &str| {
            IntGauge::new(name, help).expect("static metric definition is valid")
        };
        let counters = |name: &str, help: &str, label: &str| {
            IntCounterVec::new(Opts::new(name, help), &[label])
                .expect("static metric definition is valid")
        };
        let metrics = FleetMetrics {
            up: gauge(
                "voltfleet_proxy_fleet_up",
                "1 while this proxy follows the fleet's purge log in Redis, 0 while it cannot.",
            ),
            ip_sets_up: gauge(
                "voltfleet_proxy_fleet_ip_sets_up",
                "1 while this proxy follows the fleet's IP-set changes in Redis, 0 while it cannot.",
            ),
            purges: counters(
                "voltfleet_proxy_fleet_purges_total",
                "Fleet purges: published from this proxy, applied from others, malformed entries skipped.",
                "outcome",
            ),
            gaps: prometheus::IntCounter::new(
                "voltfleet_proxy_fleet_purge_gaps_total",
                "Times this proxy found purges it had not applied already trimmed from the log.",
            )
            .expect("static metric definition is valid"),
            ip_set_changes: counters(
                "voltfleet_proxy_fleet_ip_set_changes_total",
                "IP-set changes: published from this proxy, applied from others, malformed entries skipped.",
                "outcome",
            ),
            errors: counters(
                "voltfleet_proxy_fleet_errors_total",
                "Commands to the fleet's Redis that failed or timed out, by operation.",
                "operation",
            ),
        };
        for outcome in ["published", "applied", "malformed"] {
            metrics.purges.with_label_values(&[outcome]);
            metrics.ip_set_changes.with_label_values(&[outcome]);
        }
        for operation in ["purge", "ip_set", "rate_limit"] {
            metrics.errors.with_label_values(&[operation]);
        }
        let _ = registry.register(Box::new(metrics.up.clone()));
        let _ = registry.register(Box::new(metrics.ip_sets_up.clone()));
        let _ = registry.register(Box::new(metrics.purges.clone()));
        let _ = registry.register(Box::new(metrics.gaps.clone()));
        let _ = registry.register(Box::new(metrics.ip_set_changes.clone()));
        let _ = registry.register(Box::new(metrics.errors.clone()));
        metrics
    }
}

#[cfg(test)]
mod tests {
    use super::EntryId;

    #[test]
    fn entry_ids_order_like_redis() {
        let parse = |text| EntryId::parse(text).expect("a valid id");
        assert!(parse("1700000000000-0") < parse("1700000000000-1"));
        assert!(parse("1700000000000-9") < parse("1700000000001-0"));
        assert_eq!(parse("5-3").to_string(), "5-3");
        assert_eq!(EntryId::parse("5"), None);
        assert_eq!(EntryId::parse("a-b"), None);
    }
}

//! The proxies of one web tier act as one through Redis (`[fleet]`): a purge made on any
//! proxy's admin listener is appended to a stream, the purge log, that every proxy follows, so
//! it reaches all of them as fast as Redis delivers one message.
//!
//! A log rather than pub/sub, because pub/sub forgets what it sent while a proxy was away: a
//! proxy that was cut off or restarting catches up from the last entry it applied, kept in each
//! disk zone's directory (a memory zone starts empty, so it has nothing to catch up on), as far
//! back as the log reaches (`fleet.purge_log_length` entries). What it can no longer know is
//! logged and counted, not guessed.
//!
//! Redis being unreachable never stops the proxy: purges still act on the proxy that received
//! them (and say that the fleet was not told), the follower retries with a pause that doubles
//! up to `fleet.max_reconnect_delay`, and `voltfleet_proxy_fleet_up` shows the state.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use prometheus::{IntCounterVec, IntGauge, Opts, Registry};
use redis::aio::{ConnectionManager, ConnectionManagerConfig, MultiplexedConnection};
use redis::streams::{StreamRangeReply, StreamReadReply};
use redis::{AsyncConnectionConfig, RedisError};

use crate::cache::purge::PurgeRule;
use crate::cache::zones::CacheZones;
use crate::config::{FleetConfig, redacted_url};

/// How long one read of the log waits for new entries before asking again; it bounds how late
/// a dead connection is noticed when Redis vanishes without closing it.
const READ_BLOCK: Duration = Duration::from_secs(5);
/// Entries applied per read; a proxy catching up takes the backlog in bites of this size.
const READ_BATCH: usize = 100;
/// The first pause after a failure; it doubles up to `fleet.max_reconnect_delay`.
const FIRST_RECONNECT_DELAY: Duration = Duration::from_millis(250);
/// The file in each disk zone's directory that holds the last applied entry's id.
const POSITION_FILE: &str = "fleet-purge-position";

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
    log_key: String,
    /// Tells this proxy's own entries apart: it applied them before publishing.
    instance: String,
    config: FleetConfig,
    metrics: FleetMetrics,
}

impl std::fmt::Debug for Fleet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fleet")
            .field("redis", &self.target)
            .field("log_key", &self.log_key)
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
        })
    }

    /// Appends a purge this proxy has already applied to the log; the entry's id.
    pub async fn publish_purge(&self, rule: &PurgeRule) -> Result<String, FleetError> {
        let (kind, url) = rule.to_fields();
        let mut command = redis::cmd("XADD");
        command
            .arg(&self.log_key)
            .arg("MAXLEN")
            .arg("~")
            .arg(self.config.purge_log_length)
            .arg("*")
            .arg("kind")
            .arg(kind)
            .arg("url")
            .arg(url)
            .arg("from")
            .arg(&self.instance);
        let mut connection = self
            .publisher
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
            .map_err(|source| FleetError::Redis {
                target: self.target.clone(),
                source,
            })?
            .clone();
        // Reconnecting counts towards the bound: an operator waits for this answer.
        let limit = self.config.connect_timeout + self.config.response_timeout;
        let answer = tokio::time::timeout(limit, command.query_async::<String>(&mut connection))
            .await
            .map_err(|_| FleetError::Timeout {
                target: self.target.clone(),
                limit,
            })?;
        let id = answer.map_err(|source| FleetError::Redis {
            target: self.target.clone(),
            source,
        })?;
        self.metrics.purges.with_label_values(&["published"]).inc();
        Ok(id)
    }
}

/// The background service that applies the fleet's purges to this proxy's zones.
#[derive(Debug)]
pub struct PurgeFollower {
    fleet: Arc<Fleet>,
    zones: Arc<CacheZones>,
    positions: Positions,
}

impl PurgeFollower {
    pub fn new(fleet: Arc<Fleet>, zones: Arc<CacheZones>) -> PurgeFollower {
        let positions = Positions {
            files: zones
                .iter()
                .filter_map(|zone| zone.config.path.as_ref())
                .map(|path| path.join(POSITION_FILE))
                .collect(),
        };
        PurgeFollower {
            fleet,
            zones,
            positions,
        }
    }

    /// One connection's life: catch up, then read new entries until something fails.
    async fn follow(
        &self,
        position: &mut Option<EntryId>,
        delay: &mut Duration,
    ) -> Result<(), FleetError> {
        let fleet = &self.fleet;
        let failed = |source| FleetError::Redis {
            target: fleet.target.clone(),
            source,
        };
        let connection_config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(fleet.config.connect_timeout))
            .set_response_timeout(Some(READ_BLOCK + fleet.config.response_timeout));
        let mut connection = fleet
            .client
            .get_multiplexed_async_connection_with_config(&connection_config)
            .await
            .map_err(failed)?;
        let start = match *position {
            Some(at) => {
                self.check_reach(&mut connection, at).await?;
                at
            }
            None => {
                // Everything before the newest entry happened before this proxy stored
                // anything it could still serve; recording that much now lets a restart
                // catch up on what comes later.
                let newest = newest_entry(&mut connection, &fleet.log_key)
                    .await
                    .map_err(failed)?;
                self.positions.store(newest);
                newest
            }
        };
        let mut from = start;
        *position = Some(start);
        fleet.metrics.up.set(1);
        *delay = FIRST_RECONNECT_DELAY;
        tracing::info!(redis = %fleet.target, from = %start, "Following the fleet's purge log.");
        loop {
            let reply: Option<StreamReadReply> = redis::cmd("XREAD")
                .arg("COUNT")
                .arg(READ_BATCH)
                .arg("BLOCK")
                .arg(READ_BLOCK.as_millis() as u64)
                .arg("STREAMS")
                .arg(&fleet.log_key)
                .arg(from.to_string())
                .query_async(&mut connection)
                .await
                .map_err(failed)?;
            let entries = reply
                .into_iter()
                .flat_map(|reply| reply.keys)
                .flat_map(|key| key.ids);
            let mut last = None;
            for entry in entries {
                let Some(id) = EntryId::parse(&entry.id) else {
                    continue;
                };
                self.apply(&entry.id, &entry.map).await;
                last = Some(id);
            }
            if let Some(id) = last {
                from = id;
                *position = Some(id);
                self.positions.store(id);
                self.zones.observe();
            }
        }
    }

    async fn apply(&self, id: &str, fields: &HashMap<String, redis::Value>) {
        let field = |name: &str| {
            fields
                .get(name)
                .and_then(|value| redis::from_redis_value::<String>(value.clone()).ok())
        };
        if field("from").as_deref() == Some(self.fleet.instance.as_str()) {
            return;
        }
        let rule = match (field("kind"), field("url")) {
            (Some(kind), Some(url)) => PurgeRule::from_fields(&kind, &url),
            _ => Err(crate::cache::purge::PurgeError::Body(
                "the entry has no kind or url".into(),
            )),
        };
        match rule {
            Ok(rule) => {
                let removed = self.zones.purge_where(|url| rule.matches(url)).await;
                self.fleet
                    .metrics
                    .purges
                    .with_label_values(&["applied"])
                    .inc();
                tracing::info!(
                    entry = id,
                    ?rule,
                    removed,
                    "Applied a purge from the fleet."
                );
            }
            Err(err) => {
                self.fleet
                    .metrics
                    .purges
                    .with_label_values(&["malformed"])
                    .inc();
                tracing::warn!(entry = id, error = %err, "Skipped a malformed entry of the fleet's purge log.");
            }
        }
    }

    /// Warns when entries after `position` were trimmed from the log before this proxy read
    /// them: purges it will never see.
    async fn check_reach(
        &self,
        connection: &mut MultiplexedConnection,
        position: EntryId,
    ) -> Result<(), FleetError> {
        let info: Result<HashMap<String, redis::Value>, RedisError> = redis::cmd("XINFO")
            .arg("STREAM")
            .arg(&self.fleet.log_key)
            .query_async(connection)
            .await;
        let info = match info {
            Ok(info) => info,
            // No log yet: nothing was published, so nothing was missed.
            Err(err)
                if err.kind()
                    == redis::ErrorKind::Server(redis::ServerErrorKind::ResponseError) =>
            {
                return Ok(());
            }
            Err(source) => {
                return Err(FleetError::Redis {
                    target: self.fleet.target.clone(),
                    source,
                });
            }
        };
        let trimmed_up_to = info
            .get("max-deleted-entry-id")
            .and_then(|value| redis::from_redis_value::<String>(value.clone()).ok())
            .and_then(|text| EntryId::parse(&text));
        if let Some(trimmed) = trimmed_up_to
            && trimmed > position
        {
            self.fleet.metrics.gaps.inc();
            tracing::warn!(
                position = %position,
                trimmed = %trimmed,
                "Purges made while this proxy was away are no longer in the fleet's log; objects they removed elsewhere may still be served here until they expire. Purge them again, and raise fleet.purge_log_length if this recurs."
            );
        }
        Ok(())
    }
}

#[async_trait]
impl BackgroundService for PurgeFollower {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let mut position = self.positions.load();
        let mut delay = FIRST_RECONNECT_DELAY;
        loop {
            tokio::select! {
                _ = shutdown.changed() => return,
                result = self.follow(&mut position, &mut delay) => {
                    self.fleet.metrics.up.set(0);
                    if let Err(err) = result {
                        tracing::warn!(error = %err, retry_in = ?delay, "Lost the fleet's purge log; purges from other proxies wait until it is back.");
                    }
                }
            }
            tokio::select! {
                _ = shutdown.changed() => return,
                () = tokio::time::sleep(delay) => {}
            }
            delay = (delay * 2).min(self.fleet.config.max_reconnect_delay);
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

/// The last applied entry, kept in every disk zone so a restarted proxy knows where it was.
#[derive(Debug)]
struct Positions {
    files: Vec<PathBuf>,
}

impl Positions {
    /// The earliest position any disk zone holds: replaying a purge twice is harmless,
    /// skipping one is not.
    fn load(&self) -> Option<EntryId> {
        self.files
            .iter()
            .filter_map(|file| std::fs::read_to_string(file).ok())
            .filter_map(|text| EntryId::parse(text.trim()))
            .min()
    }

    /// Written through a temporary name so a crash leaves the old position or the new one; a
    /// lost write only replays purges.
    fn store(&self, position: EntryId) {
        for file in &self.files {
            let temporary = file.with_extension("tmp");
            let written = std::fs::write(&temporary, format!("{position}\n"))
                .and_then(|()| std::fs::rename(&temporary, file));
            if let Err(err) = written {
                tracing::warn!(file = %file.display(), error = %err, "Cannot record the fleet purge log position; a restart will replay purges.");
            }
        }
    }
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
    purges: IntCounterVec,
    gaps: prometheus::IntCounter,
}

impl FleetMetrics {
    fn new(registry: &Registry) -> FleetMetrics {
        let metrics = FleetMetrics {
            up: IntGauge::new(
                "voltfleet_proxy_fleet_up",
                "1 while this proxy follows the fleet's purge log in Redis, 0 while it cannot.",
            )
            .expect("static metric definition is valid"),
            purges: IntCounterVec::new(
                Opts::new(
                    "voltfleet_proxy_fleet_purges_total",
                    "Fleet purges: published from this proxy, applied from others, malformed entries skipped.",
                ),
                &["outcome"],
            )
            .expect("static metric definition is valid"),
            gaps: prometheus::IntCounter::new(
                "voltfleet_proxy_fleet_purge_gaps_total",
                "Times this proxy found purges it had not applied already trimmed from the log.",
            )
            .expect("static metric definition is valid"),
        };
        for outcome in ["published", "applied", "malformed"] {
            metrics.purges.with_label_values(&[outcome]);
        }
        let _ = registry.register(Box::new(metrics.up.clone()));
        let _ = registry.register(Box::new(metrics.purges.clone()));
        let _ = registry.register(Box::new(metrics.gaps.clone()));
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

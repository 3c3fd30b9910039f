//! The fleet's purge log: a purge made on any proxy's admin listener is appended to a stream
//! that every proxy follows. A proxy that was away catches up from the last entry it applied,
//! kept in each disk zone's directory (a memory zone starts empty, so it has nothing to catch
//! up on), as far back as the log reaches (`fleet.purge_log_length` entries).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use prometheus::IntGauge;
use redis::RedisError;
use redis::aio::MultiplexedConnection;
use redis::streams::StreamReadReply;

use super::{
    EntryId, Fleet, FleetError, Follower, READ_BATCH, READ_BLOCK, Reconnect, follow_until_shutdown,
    newest_entry,
};
use crate::cache::purge::PurgeRule;
use crate::cache::zones::CacheZones;

/// The file in each disk zone's directory that holds the last applied entry's id.
const POSITION_FILE: &str = "fleet-purge-position";

impl Fleet {
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
        let id: String = self
            .run("purge", self.operator_limit(), async |connection| {
                command.query_async(connection).await
            })
            .await?;
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
impl Follower for PurgeFollower {
    const WHAT: &'static str = "purge log";

    fn fleet(&self) -> &Fleet {
        &self.fleet
    }

    fn connected_gauge(&self) -> &IntGauge {
        &self.fleet.metrics.up
    }

    /// One connection's life: catch up, then read new entries until something fails.
    async fn follow(
        &self,
        position: &mut Option<EntryId>,
        reconnect: &mut Reconnect,
    ) -> Result<(), FleetError> {
        let fleet = &self.fleet;
        let failed = |source| fleet.failed(source);
        let mut connection = fleet.follower_connection().await?;
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
        reconnect.connected();
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
}

#[async_trait]
impl BackgroundService for PurgeFollower {
    async fn start(&self, shutdown: ShutdownWatch) {
        follow_until_shutdown(self, self.positions.load(), shutdown).await;
    }
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

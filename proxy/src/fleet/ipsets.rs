//! The IP sets' run-time entries, shared by the fleet: a hash in Redis holds every entry added
//! through the admin API or by automatic blocking on any proxy (so that a proxy starting up
//! has them all), and a stream carries each change as it happens (so that the others apply it
//! within a second). Configured entries stay each proxy's own: they come from its file.
//!
//! An entry's expiry travels with it as an absolute time, so it ends at the same moment on
//! every proxy; entries found expired in the hash are removed by whoever finds them.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use ipnet::IpNet;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use prometheus::IntGauge;
use redis::aio::MultiplexedConnection;
use redis::streams::StreamReadReply;
use redis::{RedisError, Value};
use serde::{Deserialize, Serialize};

use super::{
    EntryId, Fleet, FleetError, Follower, READ_BATCH, READ_BLOCK, Reconnect, follow_until_shutdown,
    newest_entry,
};
use crate::security::ipsets::{Entry, IpSets, List, Origin, parse_network};

/// Changes kept in the stream for proxies that were away; past it they load the whole hash.
const CHANGE_LOG_LENGTH: u64 = 10_000;

/// An entry as the hash stores it, under the field `list|network`.
#[derive(Debug, Serialize, Deserialize)]
struct StoredEntry {
    reason: String,
    origin: String,
    /// Milliseconds since the Unix epoch; absent for an entry kept until removed.
    expires_at_ms: Option<u64>,
}

impl StoredEntry {
    fn from_entry(entry: &Entry) -> StoredEntry {
        StoredEntry {
            reason: entry.reason.clone(),
            origin: entry.origin.as_str().to_owned(),
            expires_at_ms: entry.expires_at.map(|at| {
                at.duration_since(UNIX_EPOCH)
                    .map_or(0, |since| since.as_millis() as u64)
            }),
        }
    }

    fn into_entry(self, network: IpNet) -> Entry {
        Entry {
            network,
            reason: self.reason,
            origin: Origin::parse(&self.origin).unwrap_or(Origin::Api),
            expires_at: self
                .expires_at_ms
                .map(|ms| UNIX_EPOCH + Duration::from_millis(ms)),
        }
    }
}

fn field(list: List, network: IpNet) -> String {
    format!("{}|{}", list.as_str(), network.trunc())
}

fn parse_field(field: &str) -> Option<(List, IpNet)> {
    let (list, network) = field.split_once('|')?;
    Some((List::parse(list)?, parse_network(network)?))
}

impl Fleet {
    fn ip_sets_key(&self) -> String {
        format!("{}ip-sets", self.config.key_prefix)
    }

    fn ip_set_changes_key(&self) -> String {
        format!("{}ip-set-changes", self.config.key_prefix)
    }

    /// Stores an entry this proxy has already added and tells the others.
    pub async fn publish_ip_set_add(&self, list: List, entry: &Entry) -> Result<(), FleetError> {
        let stored = serde_json::to_string(&StoredEntry::from_entry(entry))
            .unwrap_or_else(|_| "{}".to_owned());
        self.publish_ip_set_change(list, entry.network, Some(stored))
            .await
    }

    /// Removes an entry this proxy has already removed and tells the others.
    pub async fn publish_ip_set_remove(
        &self,
        list: List,
        network: IpNet,
    ) -> Result<(), FleetError> {
        self.publish_ip_set_change(list, network, None).await
    }

    async fn publish_ip_set_change(
        &self,
        list: List,
        network: IpNet,
        stored: Option<String>,
    ) -> Result<(), FleetError> {
        let field = field(list, network);
        let mut pipe = redis::pipe();
        pipe.atomic();
        match &stored {
            Some(stored) => pipe.hset(self.ip_sets_key(), &field, stored).ignore(),
            None => pipe.hdel(self.ip_sets_key(), &field).ignore(),
        };
        pipe.cmd("XADD")
            .arg(self.ip_set_changes_key())
            .arg("MAXLEN")
            .arg("~")
            .arg(CHANGE_LOG_LENGTH)
            .arg("*")
            .arg("op")
            .arg(if stored.is_some() { "add" } else { "remove" })
            .arg("field")
            .arg(&field)
            .arg("entry")
            .arg(stored.as_deref().unwrap_or(""))
            .arg("from")
            .arg(&self.instance)
            .ignore();
        self.run("ip_set", self.operator_limit(), async |connection| {
            pipe.query_async::<()>(connection).await
        })
        .await?;
        self.metrics
            .ip_set_changes
            .with_label_values(&["published"])
            .inc();
        Ok(())
    }
}

/// The background service that applies the fleet's IP-set changes to this proxy's lists.
#[derive(Debug)]
pub struct IpSetFollower {
    fleet: Arc<Fleet>,
    ip_sets: Arc<IpSets>,
}

impl IpSetFollower {
    pub fn new(fleet: Arc<Fleet>, ip_sets: Arc<IpSets>) -> IpSetFollower {
        IpSetFollower { fleet, ip_sets }
    }

    /// Whether changes after `position` were trimmed from the stream before this proxy read
    /// them.
    async fn missed_changes(
        &self,
        connection: &mut MultiplexedConnection,
        position: EntryId,
    ) -> Result<bool, FleetError> {
        let info: Result<HashMap<String, Value>, RedisError> = redis::cmd("XINFO")
            .arg("STREAM")
            .arg(self.fleet.ip_set_changes_key())
            .query_async(connection)
            .await;
        match info {
            Ok(info) => Ok(info
                .get("max-deleted-entry-id")
                .and_then(|value| redis::from_redis_value::<String>(value.clone()).ok())
                .and_then(|text| EntryId::parse(&text))
                .is_some_and(|trimmed| trimmed > position)),
            // No stream yet: nothing was published, so nothing was missed.
            Err(err)
                if err.kind()
                    == redis::ErrorKind::Server(redis::ServerErrorKind::ResponseError) =>
            {
                Ok(false)
            }
            Err(source) => Err(self.fleet.failed(source)),
        }
    }

    /// Adds every live entry of the hash to this proxy's lists and removes the expired ones
    /// from the hash; how many were added.
    async fn load_all(&self, connection: &mut MultiplexedConnection) -> Result<usize, FleetError> {
        let key = self.fleet.ip_sets_key();
        let stored: HashMap<String, String> = redis::cmd("HGETALL")
            .arg(&key)
            .query_async(connection)
            .await
            .map_err(|source| self.fleet.failed(source))?;
        let now = SystemTime::now();
        let mut loaded = 0;
        let mut expired = Vec::new();
        for (name, text) in &stored {
            match decode(name, text) {
                Some((list, entry)) if entry.live_at(now) => {
                    self.ip_sets.insert(list, entry);
                    loaded += 1;
                }
                Some(_) => expired.push(name.clone()),
                None => {
                    self.fleet
                        .metrics
                        .ip_set_changes
                        .with_label_values(&["malformed"])
                        .inc();
                    tracing::warn!(field = %name, "Skipped a malformed entry of the fleet's IP sets.");
                }
            }
        }
        if !expired.is_empty() {
            let removed: Result<(), RedisError> = redis::cmd("HDEL")
                .arg(&key)
                .arg(&expired)
                .query_async(connection)
                .await;
            if let Err(err) = removed {
                tracing::debug!(error = %err, "Could not remove expired IP-set entries from Redis.");
            }
        }
        Ok(loaded)
    }

    fn apply(&self, id: &str, fields: &HashMap<String, Value>) {
        let text = |name: &str| {
            fields
                .get(name)
                .and_then(|value| redis::from_redis_value::<String>(value.clone()).ok())
        };
        if text("from").as_deref() == Some(self.fleet.instance.as_str()) {
            return;
        }
        let metrics = &self.fleet.metrics.ip_set_changes;
        let change = match (text("op").as_deref(), text("field")) {
            (Some("add"), Some(name)) => text("entry")
                .and_then(|stored| decode(&name, &stored))
                .map(|(list, entry)| {
                    tracing::info!(entry = id, list = list.as_str(), network = %entry.network, reason = %entry.reason, "Applied an IP-set entry from the fleet.");
                    self.ip_sets.insert(list, entry);
                }),
            (Some("remove"), Some(name)) => parse_field(&name).map(|(list, network)| {
                tracing::info!(entry = id, list = list.as_str(), %network, "Removed an IP-set entry as the fleet asked.");
                self.ip_sets.remove(list, network);
            }),
            _ => None,
        };
        match change {
            Some(()) => metrics.with_label_values(&["applied"]).inc(),
            None => {
                metrics.with_label_values(&["malformed"]).inc();
                tracing::warn!(
                    entry = id,
                    "Skipped a malformed entry of the fleet's IP-set changes."
                );
            }
        }
    }
}

/// An entry from its hash field and stored value.
fn decode(field: &str, stored: &str) -> Option<(List, Entry)> {
    let (list, network) = parse_field(field)?;
    let stored: StoredEntry = serde_json::from_str(stored).ok()?;
    Some((list, stored.into_entry(network)))
}

#[async_trait]
impl Follower for IpSetFollower {
    const WHAT: &'static str = "IP-set changes";

    fn fleet(&self) -> &Fleet {
        &self.fleet
    }

    fn connected_gauge(&self) -> &IntGauge {
        &self.fleet.metrics.ip_sets_up
    }

    /// One connection's life: load what this proxy may have missed, then apply changes as they
    /// come until something fails.
    async fn follow(
        &self,
        position: &mut Option<EntryId>,
        reconnect: &mut Reconnect,
    ) -> Result<(), FleetError> {
        let fleet = &self.fleet;
        let changes_key = fleet.ip_set_changes_key();
        let mut connection = fleet.follower_connection().await?;
        let caught_up = match *position {
            Some(at) => !self.missed_changes(&mut connection, at).await?,
            None => false,
        };
        let mut from = match *position {
            Some(at) if caught_up => at,
            _ => {
                // The newest change first: one made while the hash is read is applied twice,
                // which is harmless, rather than not at all.
                let newest = newest_entry(&mut connection, &changes_key)
                    .await
                    .map_err(|source| fleet.failed(source))?;
                let loaded = self.load_all(&mut connection).await?;
                tracing::info!(entries = loaded, "Loaded the fleet's IP sets.");
                newest
            }
        };
        *position = Some(from);
        fleet.metrics.ip_sets_up.set(1);
        reconnect.connected();
        loop {
            let reply: Option<StreamReadReply> = redis::cmd("XREAD")
                .arg("COUNT")
                .arg(READ_BATCH)
                .arg("BLOCK")
                .arg(READ_BLOCK.as_millis() as u64)
                .arg("STREAMS")
                .arg(&changes_key)
                .arg(from.to_string())
                .query_async(&mut connection)
                .await
                .map_err(|source| fleet.failed(source))?;
            let entries = reply
                .into_iter()
                .flat_map(|reply| reply.keys)
                .flat_map(|key| key.ids);
            for entry in entries {
                let Some(id) = EntryId::parse(&entry.id) else {
                    continue;
                };
                self.apply(&entry.id, &entry.map);
                from = id;
                *position = Some(id);
            }
        }
    }
}

#[async_trait]
impl BackgroundService for IpSetFollower {
    async fn start(&self, shutdown: ShutdownWatch) {
        follow_until_shutdown(self, None, shutdown).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_survive_the_trip_through_redis() {
        let network: IpNet = "203.0.113.0/24".parse().expect("network");
        let expires = UNIX_EPOCH + Duration::from_millis(1_900_000_000_123);
        let entry = Entry {
            network,
            reason: "scanner | from the SOC".to_owned(),
            expires_at: Some(expires),
            origin: Origin::Auto,
        };
        let name = field(List::Deny, network);
        assert_eq!(name, "deny|203.0.113.0/24");
        let stored = serde_json::to_string(&StoredEntry::from_entry(&entry)).expect("serializable");
        assert_eq!(decode(&name, &stored), Some((List::Deny, entry)));
        assert_eq!(decode("maybe|203.0.113.0/24", &stored), None);
        assert_eq!(decode("deny|not-a-net", &stored), None);
        assert_eq!(decode(&name, "{"), None);
    }
}

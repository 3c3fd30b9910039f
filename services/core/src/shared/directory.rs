//! Who holds what across the fleet: entries naming the owner of a resource, such as the OCPP
//! node that holds a charger's WebSocket.
//!
//! Unlike a lock, a claim always succeeds and replaces the previous owner (the newest
//! connection of a charger wins); unlike the cache, entries are never evicted before their time
//! to live, and an owner refreshes or releases only an entry that still names it, so a node
//! whose charger moved elsewhere can never erase the new owner's entry. On Redis an entry is
//! `{redis.key_prefix}directory:{name}`; in process, a map of this process alone.

use std::fmt;
use std::time::Duration;

use tokio::time::Instant;

use super::SharedError;
use super::cache::millis;
use super::memory::{SharedMap, expiry};
use super::owned;
use super::redis::RedisLink;

/// Entries the in-process directory holds at most: far more sockets than one process can have.
const IN_PROCESS_ENTRIES: usize = 1_000_000;

/// Owners of named resources, shared by every process of the deployment.
#[derive(Clone)]
pub struct Directory {
    store: Store,
}

#[derive(Clone)]
enum Store {
    InProcess(SharedMap<String>),
    Redis(RedisLink),
}

impl fmt::Debug for Directory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.store {
            Store::InProcess(_) => f.write_str("Directory(in-process)"),
            Store::Redis(link) => write!(f, "Directory({})", link.display_url()),
        }
    }
}

impl Directory {
    pub fn in_process() -> Directory {
        Directory {
            store: Store::InProcess(SharedMap::new(IN_PROCESS_ENTRIES)),
        }
    }

    pub(crate) fn redis(link: RedisLink) -> Directory {
        Directory {
            store: Store::Redis(link),
        }
    }

    /// Records `owner` as the owner of `name` for `ttl`, replacing any previous owner.
    pub async fn claim(&self, name: &str, owner: &str, ttl: Duration) -> Result<(), SharedError> {
        match &self.store {
            Store::InProcess(map) => {
                let now = Instant::now();
                map.lock()
                    .insert(name, owner.to_owned(), expiry(now, ttl), now);
                Ok(())
            }
            Store::Redis(link) => {
                let mut connection = link.connection();
                link.within(
                    "SET",
                    redis::cmd("SET")
                        .arg(link.key("directory", name))
                        .arg(owner)
                        .arg("PX")
                        .arg(millis(ttl))
                        .query_async::<()>(&mut connection),
                )
                .await
            }
        }
    }

    /// The current owner of `name`, if any.
    pub async fn owner(&self, name: &str) -> Result<Option<String>, SharedError> {
        match &self.store {
            Store::InProcess(map) => Ok(map.lock().get(name, Instant::now()).cloned()),
            Store::Redis(link) => {
                let mut connection = link.connection();
                link.within(
                    "GET",
                    redis::cmd("GET")
                        .arg(link.key("directory", name))
                        .query_async::<Option<String>>(&mut connection),
                )
                .await
            }
        }
    }

    /// The current owners of several names at once (one round trip on Redis), in order.
    pub async fn owners(&self, names: &[String]) -> Result<Vec<Option<String>>, SharedError> {
        if names.is_empty() {
            return Ok(Vec::new());
        }
        match &self.store {
            Store::InProcess(map) => {
                let now = Instant::now();
                let mut map = map.lock();
                Ok(names
                    .iter()
                    .map(|name| map.get(name, now).cloned())
                    .collect())
            }
            Store::Redis(link) => {
                let mut connection = link.connection();
                let mut command = redis::cmd("MGET");
                for name in names {
                    command.arg(link.key("directory", name));
                }
                link.within(
                    "MGET",
                    command.query_async::<Vec<Option<String>>>(&mut connection),
                )
                .await
            }
        }
    }

    /// Gives the entry a fresh `ttl` if `owner` still owns it; false (and untouched) otherwise.
    pub async fn refresh(
        &self,
        name: &str,
        owner: &str,
        ttl: Duration,
    ) -> Result<bool, SharedError> {
        match &self.store {
            Store::InProcess(map) => Ok(owned::extend_in_process(map, name, owner, ttl)),
            Store::Redis(link) => owned::extend_on_redis(link, "directory", name, owner, ttl).await,
        }
    }

    /// Removes the entry if `owner` still owns it; false (and untouched) otherwise.
    pub async fn release(&self, name: &str, owner: &str) -> Result<bool, SharedError> {
        match &self.store {
            Store::InProcess(map) => Ok(owned::release_in_process(map, name, owner)),
            Store::Redis(link) => owned::release_on_redis(link, "directory", name, owner).await,
        }
    }
}

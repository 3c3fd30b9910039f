//! The shared cache: bytes under string keys, each with a time to live. On Redis the key is
//! `{redis.key_prefix}cache:{key}`; in process, a bounded map (see [`super::memory`]).

use std::fmt;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::time::Instant;

use super::SharedError;
use super::memory::{SharedMap, expiry};
use super::redis::RedisLink;

/// How many entries the in-process cache keeps before evicting.
pub const DEFAULT_IN_PROCESS_ENTRIES: usize = 10_000;

/// A cache shared by every process of the deployment (or by this process alone, in process).
#[derive(Clone)]
pub struct Cache {
    store: Store,
}

#[derive(Clone)]
enum Store {
    InProcess(SharedMap<Vec<u8>>),
    Redis(RedisLink),
}

impl fmt::Debug for Cache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.store {
            Store::InProcess(_) => f.write_str("Cache(in-process)"),
            Store::Redis(link) => write!(f, "Cache({})", link.display_url()),
        }
    }
}

impl Cache {
    /// An in-process cache of at most `max_entries` entries: when full, expired entries go
    /// first, then the ones written longest ago.
    pub fn in_process(max_entries: usize) -> Cache {
        Cache {
            store: Store::InProcess(SharedMap::new(max_entries)),
        }
    }

    pub(crate) fn redis(link: RedisLink) -> Cache {
        Cache {
            store: Store::Redis(link),
        }
    }

    pub async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, SharedError> {
        match &self.store {
            Store::InProcess(map) => Ok(map.lock().get(key, Instant::now()).cloned()),
            Store::Redis(link) => {
                let mut connection = link.connection();
                link.within(
                    "GET",
                    redis::cmd("GET")
                        .arg(link.key("cache", key))
                        .query_async::<Option<Vec<u8>>>(&mut connection),
                )
                .await
            }
        }
    }

    /// Stores `value` under `key` for `ttl` (at least a millisecond), replacing what was there.
    pub async fn set(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), SharedError> {
        match &self.store {
            Store::InProcess(map) => {
                let now = Instant::now();
                map.lock()
                    .insert(key, value.to_vec(), expiry(now, ttl), now);
                Ok(())
            }
            Store::Redis(link) => {
                let mut connection = link.connection();
                link.within(
                    "SET",
                    redis::cmd("SET")
                        .arg(link.key("cache", key))
                        .arg(value)
                        .arg("PX")
                        .arg(millis(ttl))
                        .query_async::<()>(&mut connection),
                )
                .await
            }
        }
    }

    /// Removes `key`; true when it was there.
    pub async fn delete(&self, key: &str) -> Result<bool, SharedError> {
        match &self.store {
            Store::InProcess(map) => Ok(map.lock().remove(key).is_some()),
            Store::Redis(link) => {
                let mut connection = link.connection();
                let removed = link
                    .within(
                        "DEL",
                        redis::cmd("DEL")
                            .arg(link.key("cache", key))
                            .query_async::<u64>(&mut connection),
                    )
                    .await?;
                Ok(removed > 0)
            }
        }
    }

    /// The value under `key` read as JSON; a value that is not a `T` is an error, not a miss.
    pub async fn get_json<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, SharedError> {
        let Some(bytes) = self.get(key).await? else {
            return Ok(None);
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|error| SharedError::Decode {
                key: key.to_owned(),
                type_name: std::any::type_name::<T>(),
                detail: error.to_string(),
            })
    }

    /// Stores `value` as JSON under `key` for `ttl`.
    pub async fn set_json<T: Serialize + ?Sized>(
        &self,
        key: &str,
        value: &T,
        ttl: Duration,
    ) -> Result<(), SharedError> {
        let bytes = serde_json::to_vec(value).map_err(|error| SharedError::Encode {
            key: key.to_owned(),
            type_name: std::any::type_name::<T>(),
            detail: error.to_string(),
        })?;
        self.set(key, &bytes, ttl).await
    }
}

/// A TTL in whole milliseconds for PX/PEXPIRE, which reject zero.
pub(crate) fn millis(ttl: Duration) -> u64 {
    u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1)
}

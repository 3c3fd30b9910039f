//! Locks that exclude across the fleet (one node runs a job, one node talks to a charger), and
//! counters over a time window (rate limits).
//!
//! On Redis a lock is `{redis.key_prefix}lock:{name}` holding a random token, taken with
//! `SET NX PX` and released or extended by a script that first checks the token, so a holder
//! whose lock expired can never free or prolong the next holder's. A counter is
//! `{redis.key_prefix}counter:{key}`, whose expiry is set when it is created and not moved by
//! later increments, so a window starts with its first hit.

use std::fmt;
use std::sync::LazyLock;
use std::time::Duration;

use redis::Script;
use tokio::time::Instant;

use super::SharedError;
use super::cache::millis;
use super::memory::{SharedMap, expiry};
use super::owned;
use super::redis::RedisLink;

/// How many locks or counters the in-process store keeps before evicting.
const IN_PROCESS_ENTRIES: usize = 100_000;

// PTTL < 0 also covers a counter that lost its expiry somehow, which would otherwise never reset.
static INCREMENT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        "local value = redis.call('INCRBY', KEYS[1], ARGV[1]) \
         if redis.call('PTTL', KEYS[1]) < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end \
         return value",
    )
});

/// Locks and counters shared by every process of the deployment.
#[derive(Clone)]
pub struct Locks {
    store: Store,
}

#[derive(Clone)]
enum Store {
    InProcess {
        locks: SharedMap<String>,
        counters: SharedMap<i64>,
    },
    Redis(RedisLink),
}

impl fmt::Debug for Locks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.store {
            Store::InProcess { .. } => f.write_str("Locks(in-process)"),
            Store::Redis(link) => write!(f, "Locks({})", link.display_url()),
        }
    }
}

impl Locks {
    /// Locks and counters that exclude only within this process.
    pub fn in_process() -> Locks {
        Locks {
            store: Store::InProcess {
                locks: SharedMap::new(IN_PROCESS_ENTRIES),
                counters: SharedMap::new(IN_PROCESS_ENTRIES),
            },
        }
    }

    pub(crate) fn redis(link: RedisLink) -> Locks {
        Locks {
            store: Store::Redis(link),
        }
    }

    /// Takes the lock `name` for `ttl` if nobody holds it; `None` when someone does.
    ///
    /// The lock frees itself after `ttl` if its holder dies, so choose a ttl longer than the
    /// work, or [`LockGuard::extend`] it while working.
    pub async fn try_acquire(
        &self,
        name: &str,
        ttl: Duration,
    ) -> Result<Option<LockGuard>, SharedError> {
        let token = format!("{:032x}", rand::random::<u128>());
        let acquired = match &self.store {
            Store::InProcess { locks, .. } => {
                let now = Instant::now();
                let mut locks = locks.lock();
                if locks.get(name, now).is_some() {
                    false
                } else {
                    locks.insert(name, token.clone(), expiry(now, ttl), now);
                    true
                }
            }
            Store::Redis(link) => {
                let mut connection = link.connection();
                let reply = link
                    .within(
                        "SET NX",
                        redis::cmd("SET")
                            .arg(link.key("lock", name))
                            .arg(&token)
                            .arg("NX")
                            .arg("PX")
                            .arg(millis(ttl))
                            .query_async::<Option<String>>(&mut connection),
                    )
                    .await?;
                reply.is_some()
            }
        };
        Ok(acquired.then(|| LockGuard {
            locks: self.clone(),
            name: name.to_owned(),
            token,
            released: false,
        }))
    }

    /// Adds `by` to the counter `key` and returns the new value. A counter that did not exist
    /// starts at zero and disappears `window_ttl` after this first increment.
    pub async fn incr(&self, key: &str, by: i64, window_ttl: Duration) -> Result<i64, SharedError> {
        match &self.store {
            Store::InProcess { counters, .. } => {
                let now = Instant::now();
                let mut counters = counters.lock();
                if let Some(value) = counters.get_mut(key, now) {
                    *value = value.saturating_add(by);
                    return Ok(*value);
                }
                counters.insert(key, by, expiry(now, window_ttl), now);
                Ok(by)
            }
            Store::Redis(link) => {
                let mut connection = link.connection();
                link.within(
                    "the counter script (INCRBY)",
                    INCREMENT
                        .key(link.key("counter", key))
                        .arg(by)
                        .arg(millis(window_ttl))
                        .invoke_async::<i64>(&mut connection),
                )
                .await
            }
        }
    }

    /// The current value of the counter `key`; zero when it does not exist or has expired.
    pub async fn get_counter(&self, key: &str) -> Result<i64, SharedError> {
        match &self.store {
            Store::InProcess { counters, .. } => Ok(counters
                .lock()
                .get(key, Instant::now())
                .copied()
                .unwrap_or(0)),
            Store::Redis(link) => {
                let mut connection = link.connection();
                let value = link
                    .within(
                        "GET",
                        redis::cmd("GET")
                            .arg(link.key("counter", key))
                            .query_async::<Option<i64>>(&mut connection),
                    )
                    .await?;
                Ok(value.unwrap_or(0))
            }
        }
    }

    async fn release(&self, name: &str, token: &str) -> Result<bool, SharedError> {
        match &self.store {
            Store::InProcess { locks, .. } => Ok(owned::release_in_process(locks, name, token)),
            Store::Redis(link) => owned::release_on_redis(link, "lock", name, token).await,
        }
    }

    async fn extend(&self, name: &str, token: &str, ttl: Duration) -> Result<bool, SharedError> {
        match &self.store {
            Store::InProcess { locks, .. } => Ok(owned::extend_in_process(locks, name, token, ttl)),
            Store::Redis(link) => owned::extend_on_redis(link, "lock", name, token, ttl).await,
        }
    }
}

/// A held lock. Release it with [`LockGuard::release`]; dropping the guard releases it in the
/// background (on Redis, when a tokio runtime is there to do it; otherwise it expires).
pub struct LockGuard {
    locks: Locks,
    name: String,
    token: String,
    released: bool,
}

impl fmt::Debug for LockGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LockGuard")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl LockGuard {
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Resets the lock's time to live to `ttl`; false when the lock had already expired (and
    /// may be someone else's now), in which case it is not touched.
    pub async fn extend(&self, ttl: Duration) -> Result<bool, SharedError> {
        self.locks.extend(&self.name, &self.token, ttl).await
    }

    /// Frees the lock; false when it had already expired (and may be someone else's now), in
    /// which case it is not touched.
    pub async fn release(mut self) -> Result<bool, SharedError> {
        self.released = true;
        self.locks.release(&self.name, &self.token).await
    }
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        if self.released {
            return;
        }
        match &self.locks.store {
            Store::InProcess { locks, .. } => {
                owned::release_in_process(locks, &self.name, &self.token);
            }
            Store::Redis(_) => {
                let Ok(runtime) = tokio::runtime::Handle::try_current() else {
                    return;
                };
                let locks = self.locks.clone();
                let name = std::mem::take(&mut self.name);
                let token = std::mem::take(&mut self.token);
                runtime.spawn(async move {
                    if let Err(error) = locks.release(&name, &token).await {
                        tracing::warn!(
                            lock = %name,
                            error = %error,
                            "Could not release a dropped lock; it frees itself when its ttl runs out."
                        );
                    }
                });
            }
        }
    }
}

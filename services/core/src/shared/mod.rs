//! Fast state shared by the fleet: cache, bus, locks and counters, and the directory of who
//! holds what, on Redis or in process.
//!
//! [`Shared::connect`] picks the backend from the configuration: with `redis.url` set, every
//! process of the deployment shares one Redis (ElastiCache in production); without it, the same
//! interfaces work inside this process only, which is what `voltfleet up` needs. Both backends
//! pass the same test suite (`tests/shared_state.rs`).
//!
//! Every Redis key and channel starts with `redis.key_prefix`, followed by its space: `cache:`,
//! `lock:`, `counter:`, `directory:` or `bus:`. Redis being unreachable or slow shows up as
//! [`SharedError::Unavailable`] within `redis.response_timeout`; connections are re-established
//! in the background, bus subscriptions included.

mod bus;
mod cache;
mod directory;
mod error;
mod locks;
mod memory;
mod owned;
mod pubsub;
mod redis;

use std::fmt;

use secrecy::ExposeSecret;

pub use bus::{Bus, Message, Request, Requests, Subscription};
pub use cache::{Cache, DEFAULT_IN_PROCESS_ENTRIES};
pub use directory::Directory;
pub use error::{BusError, SharedError};
pub use locks::{LockGuard, Locks};

use self::redis::RedisLink;
use crate::config::{BusSettings, RedisSettings};

/// The shared-state handles of one process; cloning is cheap and clones share connections.
#[derive(Clone, Debug)]
pub struct Shared {
    pub cache: Cache,
    pub bus: Bus,
    pub locks: Locks,
    pub directory: Directory,
    backend: Backend,
}

#[derive(Clone)]
enum Backend {
    InProcess,
    Redis(RedisLink),
}

impl fmt::Debug for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Backend::InProcess => f.write_str("in-process"),
            Backend::Redis(link) => f.write_str(link.display_url()),
        }
    }
}

impl Shared {
    /// Connects to Redis when `redis.url` is set, checking it with a PING, and otherwise
    /// builds the in-process equivalents.
    pub async fn connect(redis: &RedisSettings, bus: &BusSettings) -> Result<Shared, SharedError> {
        let Some(url) = &redis.url else {
            return Ok(Shared::in_process(bus));
        };
        if url.expose_secret().trim().is_empty() {
            return Err(SharedError::Config {
                key: "redis.url",
                problem: "it is empty".into(),
                fix: "give a redis:// or rediss:// URL, or leave it unset for the in-process cache and bus",
            });
        }
        let link = RedisLink::connect(redis, url).await?;
        let shared = Shared {
            cache: Cache::redis(link.clone()),
            bus: Bus::redis(link.clone(), bus).await?,
            locks: Locks::redis(link.clone()),
            directory: Directory::redis(link.clone()),
            backend: Backend::Redis(link),
        };
        tracing::info!(
            server = shared.describe(),
            "Connected to Redis for the shared cache, bus and locks."
        );
        Ok(shared)
    }

    /// Cache, bus and locks that live in this process only.
    pub fn in_process(bus: &BusSettings) -> Shared {
        Shared {
            cache: Cache::in_process(DEFAULT_IN_PROCESS_ENTRIES),
            bus: Bus::in_process(bus),
            locks: Locks::in_process(),
            directory: Directory::in_process(),
            backend: Backend::InProcess,
        }
    }

    /// Checks that the backend answers (a Redis PING); always succeeds in process. For
    /// `/readyz`.
    pub async fn ping(&self) -> Result<(), SharedError> {
        match &self.backend {
            Backend::InProcess => Ok(()),
            Backend::Redis(link) => link.ping().await,
        }
    }

    /// `"redis"` or `"in-process"`, for logs and metrics labels.
    pub fn backend_name(&self) -> &'static str {
        match self.backend {
            Backend::InProcess => "in-process",
            Backend::Redis(_) => "redis",
        }
    }

    /// Where the state lives, safe to print: the Redis URL without credentials, with its key
    /// prefix.
    pub fn describe(&self) -> String {
        match &self.backend {
            Backend::InProcess => "in-process (redis.url is not set)".to_owned(),
            Backend::Redis(link) => {
                format!("{} (key prefix {:?})", link.display_url(), link.prefix())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn is_send_sync<T: Send + Sync>(_: &T) {}
    fn is_send<T: Send>(_: T) {}

    /// Services keep these in axum state and spawned tasks, which need them `Send`.
    #[test]
    fn handles_and_their_futures_can_cross_threads() {
        let shared = Shared::in_process(&BusSettings {
            request_timeout: Duration::from_secs(1),
        });
        is_send_sync(&shared);
        is_send(shared.ping());
        is_send(shared.cache.get("k"));
        is_send(shared.cache.set_json("k", &1, Duration::from_secs(1)));
        is_send(shared.bus.publish("t", b""));
        is_send(shared.bus.subscribe("t"));
        is_send(shared.bus.request("t", b"", None));
        is_send(shared.bus.serve("t"));
        is_send(shared.locks.try_acquire("l", Duration::from_secs(1)));
        is_send(shared.locks.incr("c", 1, Duration::from_secs(1)));
    }
}

//! Entries that only their owner may extend or remove — held locks, directory entries — in
//! process and on Redis, where the check and the change are one script so that nothing can
//! come between them.

use std::sync::LazyLock;
use std::time::Duration;

use redis::Script;
use tokio::time::Instant;

use super::SharedError;
use super::cache::millis;
use super::memory::{SharedMap, expiry};
use super::redis::RedisLink;

/// Deletes KEYS[1] only if it holds ARGV[1].
static RELEASE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end",
    )
});

/// Sets KEYS[1] to expire in ARGV[2] ms only if it holds ARGV[1].
static EXTEND: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) else return 0 end",
    )
});

/// Gives `name` a fresh `ttl` if `owner` still holds it.
pub(super) fn extend_in_process(
    map: &SharedMap<String>,
    name: &str,
    owner: &str,
    ttl: Duration,
) -> bool {
    let now = Instant::now();
    let mut map = map.lock();
    map.get(name, now).is_some_and(|current| current == owner)
        && map.set_expiry(name, expiry(now, ttl), now)
}

/// Removes `name` if `owner` still holds it.
pub(super) fn release_in_process(map: &SharedMap<String>, name: &str, owner: &str) -> bool {
    let mut map = map.lock();
    if map
        .get(name, Instant::now())
        .is_some_and(|current| current == owner)
    {
        map.remove(name);
        true
    } else {
        false
    }
}

/// [`extend_in_process`] on Redis, for the key `{namespace}:{name}`.
pub(super) async fn extend_on_redis(
    link: &RedisLink,
    namespace: &str,
    name: &str,
    owner: &str,
    ttl: Duration,
) -> Result<bool, SharedError> {
    let mut connection = link.connection();
    let extended = link
        .within(
            "an owner-checked PEXPIRE script",
            EXTEND
                .key(link.key(namespace, name))
                .arg(owner)
                .arg(millis(ttl))
                .invoke_async::<i64>(&mut connection),
        )
        .await?;
    Ok(extended == 1)
}

/// [`release_in_process`] on Redis, for the key `{namespace}:{name}`.
pub(super) async fn release_on_redis(
    link: &RedisLink,
    namespace: &str,
    name: &str,
    owner: &str,
) -> Result<bool, SharedError> {
    let mut connection = link.connection();
    let removed = link
        .within(
            "an owner-checked DEL script",
            RELEASE
                .key(link.key(namespace, name))
                .arg(owner)
                .invoke_async::<i64>(&mut connection),
        )
        .await?;
    Ok(removed == 1)
}

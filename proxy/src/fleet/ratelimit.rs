//! Rate limits counted for the whole fleet: the same GCRA step as `security::ratelimit`, run
//! atomically in Redis against one due time per route and client, on Redis's clock so that
//! proxies whose clocks differ still agree.
//!
//! Each limited request costs one round trip to Redis, bounded by `fleet.rate_limit_timeout`;
//! when Redis does not answer in time the caller counts the request on its own proxy instead,
//! so an outage loosens a shared limit to a per-proxy one and never stops traffic.

use std::net::IpAddr;
use std::time::Duration;

use super::{Fleet, FleetError};
use crate::security::ratelimit::{Decision, Rate};

/// KEYS[1]: the client's due time (microseconds on Redis's clock). ARGV[1]: the interval,
/// ARGV[2]: the tolerance (burst × interval), both in microseconds. Returns 0 when the request
/// passes, else the microseconds to wait.
const GCRA: &str = r"
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) * 1000000 + tonumber(now_parts[2])
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local due = tonumber(redis.call('GET', KEYS[1]) or now)
if due < now then due = now end
local early = due - now
if early > tolerance then
  return early - tolerance
end
due = due + interval
redis.call('SET', KEYS[1], string.format('%.0f', due), 'PX', math.ceil((due - now) / 1000) + 1000)
return 0
";

impl Fleet {
    /// Counts one request of `client` (already keyed: an IPv6 network's address) on `route`
    /// for the whole fleet.
    pub async fn rate_check(
        &self,
        route: &str,
        client: IpAddr,
        rate: &Rate,
    ) -> Result<Decision, FleetError> {
        let key = format!("{}rate:{route}:{client}", self.config.key_prefix);
        let interval = (rate.interval_nanos() / 1000).max(1);
        let tolerance = rate.tolerance_nanos() / 1000;
        let script = &self.rate_script;
        let wait: u64 = self
            .run(
                "rate_limit",
                self.config.rate_limit_timeout,
                async |connection| {
                    script
                        .key(&key)
                        .arg(interval)
                        .arg(tolerance)
                        .invoke_async(connection)
                        .await
                },
            )
            .await?;
        Ok(if wait == 0 {
            Decision::Allow
        } else {
            Decision::Limit {
                retry_after: Duration::from_micros(wait),
            }
        })
    }
}

/// The script, hashed once; `invoke_async` sends EVALSHA and falls back to EVAL the first time.
pub(super) fn script() -> redis::Script {
    redis::Script::new(GCRA)
}

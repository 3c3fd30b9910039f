//! The `[fleet]` section: the Redis server through which the proxies of one web tier tell each
//! other what every one of them must do: cache purges, IP-set changes and shared rate limits.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::check::Checker;

/// The Redis the web tier shares (ElastiCache in AWS).
#[derive(Clone, PartialEq, Eq)]
pub struct FleetConfig {
    /// `redis://` or `rediss://` (TLS), possibly with credentials: never logged whole.
    pub redis_url: String,
    /// Put in front of every key, so several deployments can share one server.
    pub key_prefix: String,
    pub connect_timeout: Duration,
    /// How long one command may take before it counts as failed.
    pub response_timeout: Duration,
    /// Purges kept in Redis for proxies that were away (restarting, cut off) to catch up on.
    pub purge_log_length: u64,
    /// The longest pause between attempts to reach Redis again.
    pub max_reconnect_delay: Duration,
    /// How long a request waits for a shared rate limit's answer before it is counted on this
    /// proxy alone.
    pub rate_limit_timeout: Duration,
}

impl std::fmt::Debug for FleetConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FleetConfig")
            .field("redis", &redacted_url(&self.redis_url))
            .field("key_prefix", &self.key_prefix)
            .field("connect_timeout", &self.connect_timeout)
            .field("response_timeout", &self.response_timeout)
            .field("purge_log_length", &self.purge_log_length)
            .field("max_reconnect_delay", &self.max_reconnect_delay)
            .field("rate_limit_timeout", &self.rate_limit_timeout)
            .finish()
    }
}

/// The URL with any user and password replaced, for logs and messages.
pub fn redacted_url(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => match rest.rsplit_once('@') {
            Some((_, host)) => format!("{scheme}://***@{host}"),
            None => url.to_string(),
        },
        None => url.to_string(),
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFleet {
    pub redis_url: Option<String>,
    pub redis_url_file: Option<PathBuf>,
    pub key_prefix: Option<String>,
    pub connect_timeout: Option<String>,
    pub response_timeout: Option<String>,
    pub purge_log_length: Option<u64>,
    pub max_reconnect_delay: Option<String>,
    pub rate_limit_timeout: Option<String>,
}

const DEFAULT_KEY_PREFIX: &str = "voltfleet:proxy:";
const DEFAULT_PURGE_LOG_LENGTH: u64 = 10_000;

impl Checker {
    /// `None` when the section is absent: each proxy then purges only itself.
    pub(super) fn fleet(&mut self, value: Option<toml::Value>) -> Option<FleetConfig> {
        let raw: RawFleet = self.section("fleet", value)?;
        let url = match (raw.redis_url, raw.redis_url_file) {
            (Some(url), None) => url,
            (None, Some(path)) => {
                let path = self.absolute(&path);
                match std::fs::read_to_string(&path) {
                    Ok(text) => text.lines().next().unwrap_or("").trim().to_string(),
                    Err(err) => {
                        self.problem(
                            "fleet.redis_url_file",
                            format!("cannot read {}: {err}", path.display()),
                            "give a file readable by the proxy's user holding the URL on its first line",
                        );
                        return None;
                    }
                }
            }
            (Some(_), Some(_)) => {
                self.problem(
                    "fleet",
                    "both redis_url and redis_url_file are set",
                    "keep one: redis_url_file keeps a password out of this file",
                );
                return None;
            }
            (None, None) => {
                self.problem(
                    "fleet",
                    "the section has no redis_url or redis_url_file",
                    "name the web tier's Redis, like redis_url = \"rediss://cache.internal:6379\", or remove the section",
                );
                return None;
            }
        };
        if let Err(err) = redis::Client::open(url.as_str()) {
            self.problem(
                "fleet.redis_url",
                format!("{:?} is not a Redis URL ({err})", redacted_url(&url)),
                "write it like \"rediss://:PASSWORD@cache.internal:6379\" (rediss:// for TLS)",
            );
            return None;
        }
        let key_prefix = raw
            .key_prefix
            .unwrap_or_else(|| DEFAULT_KEY_PREFIX.to_string());
        let purge_log_length = raw.purge_log_length.unwrap_or(DEFAULT_PURGE_LOG_LENGTH);
        if purge_log_length == 0 {
            self.problem(
                "fleet.purge_log_length",
                "0 would keep no purge for a proxy that was away",
                "keep the default (10000) or give a positive number",
            );
        }
        Some(FleetConfig {
            redis_url: url,
            key_prefix,
            connect_timeout: self.duration(
                "fleet.connect_timeout",
                raw.connect_timeout,
                Duration::from_secs(3),
            ),
            response_timeout: self.duration(
                "fleet.response_timeout",
                raw.response_timeout,
                Duration::from_secs(2),
            ),
            rate_limit_timeout: self.duration(
                "fleet.rate_limit_timeout",
                raw.rate_limit_timeout,
                Duration::from_millis(50),
            ),
            purge_log_length,
            max_reconnect_delay: self.duration(
                "fleet.max_reconnect_delay",
                raw.max_reconnect_delay,
                Duration::from_secs(30),
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::redacted_url;

    #[test]
    fn credentials_never_appear_in_the_redacted_url() {
        assert_eq!(
            redacted_url("rediss://:s3cret@cache.internal:6379/0"),
            "rediss://***@cache.internal:6379/0"
        );
        assert_eq!(
            redacted_url("redis://127.0.0.1:6379"),
            "redis://127.0.0.1:6379"
        );
    }
}

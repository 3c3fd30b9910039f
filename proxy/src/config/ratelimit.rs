//! A route's `[routes.rate_limit]` (requests per client at a steady rate plus a burst) and the
//! `[auto_block]` section (clients that keep tripping the firewall or the limits go onto the
//! deny list for a while).

use std::time::Duration;

use serde::Deserialize;

use super::check::Checker;
use crate::security::ratelimit::{ClientKeying, Rate};

/// How one route limits each client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteRateLimitConfig {
    pub rate: Rate,
    pub keying: ClientKeying,
    /// Clients this proxy tracks for the route; past it the longest idle are forgotten.
    pub max_clients: usize,
    /// Count in the fleet's Redis, so the limit holds across every proxy of the tier.
    pub shared: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRouteRateLimit {
    pub rate: String,
    pub burst: Option<u32>,
    pub ipv6_prefix: Option<u8>,
    pub max_clients: Option<usize>,
    pub shared: Option<bool>,
}

const DEFAULT_MAX_CLIENTS: usize = 100_000;

/// `"10/s"`, `"600/m"`, `"2000/5m"`: requests and the span they are counted over.
pub fn parse_rate(text: &str) -> Option<(u32, Duration)> {
    let (requests, span) = text.split_once('/')?;
    let requests: u32 = requests.trim().parse().ok().filter(|n| *n > 0)?;
    let span = span.trim();
    let span = match span {
        "s" => Duration::from_secs(1),
        "m" => Duration::from_secs(60),
        "h" => Duration::from_secs(3600),
        other => humantime::parse_duration(other).ok()?,
    };
    (!span.is_zero()).then_some((requests, span))
}

impl Checker {
    pub(super) fn route_rate_limit(
        &mut self,
        at: &str,
        raw: RawRouteRateLimit,
    ) -> Option<RouteRateLimitConfig> {
        let Some((requests, per)) = parse_rate(&raw.rate) else {
            self.problem(
                format!("{at}.rate"),
                format!("{:?} is not a rate", raw.rate),
                "write requests per span, like \"10/s\", \"600/m\" or \"2000/5m\"",
            );
            return None;
        };
        let ipv6_prefix = raw.ipv6_prefix.unwrap_or(64);
        if !(32..=128).contains(&ipv6_prefix) {
            self.problem(
                format!("{at}.ipv6_prefix"),
                format!("{ipv6_prefix} is not a prefix length from 32 to 128"),
                "use 64 (the default: one subscriber's network) or 128 (each address)",
            );
        }
        if raw.max_clients == Some(0) {
            self.problem(
                format!("{at}.max_clients"),
                "0 clients cannot be tracked",
                "leave it out (100000) or give a positive number",
            );
        }
        Some(RouteRateLimitConfig {
            rate: Rate {
                requests,
                per,
                // One span's worth at once by default: a page load's burst of requests passes.
                burst: raw.burst.unwrap_or(requests),
            },
            keying: ClientKeying {
                ipv6_prefix: ipv6_prefix.clamp(32, 128),
            },
            max_clients: raw.max_clients.unwrap_or(DEFAULT_MAX_CLIENTS).max(1),
            shared: raw.shared.unwrap_or(false),
        })
    }
}

/// When a client is put on the deny list without anyone asking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AutoBlockConfig {
    /// Requests refused by the firewall (routes in block mode) within `window`; 0 never.
    pub firewall_matches: u32,
    /// Requests refused by a rate limit within `window`; 0 never.
    pub rate_limited: u32,
    pub window: Duration,
    /// How long the client stays on the deny list.
    pub block_for: Duration,
    /// Offenders this proxy tracks; past it the oldest windows are forgotten.
    pub max_tracked: usize,
    /// IPv6 offenders are counted and blocked per network of this prefix length, as rate
    /// limits count them: a host moving within its /64 is still the same offender.
    pub keying: ClientKeying,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAutoBlock {
    firewall_matches: Option<u32>,
    rate_limited: Option<u32>,
    window: Option<String>,
    block_for: Option<String>,
    max_tracked: Option<usize>,
    ipv6_prefix: Option<u8>,
}

impl Checker {
    /// `None` when the section is absent: nobody is blocked automatically.
    pub(super) fn auto_block(&mut self, value: Option<toml::Value>) -> Option<AutoBlockConfig> {
        let raw: RawAutoBlock = self.section("auto_block", value)?;
        let config = AutoBlockConfig {
            firewall_matches: raw.firewall_matches.unwrap_or(5),
            rate_limited: raw.rate_limited.unwrap_or(100),
            window: self.duration("auto_block.window", raw.window, Duration::from_secs(60)),
            block_for: self.duration(
                "auto_block.block_for",
                raw.block_for,
                Duration::from_secs(15 * 60),
            ),
            max_tracked: raw.max_tracked.unwrap_or(DEFAULT_MAX_CLIENTS).max(1),
            keying: ClientKeying {
                ipv6_prefix: raw.ipv6_prefix.unwrap_or(64).clamp(32, 128),
            },
        };
        if raw
            .ipv6_prefix
            .is_some_and(|prefix| !(32..=128).contains(&prefix))
        {
            self.problem(
                "auto_block.ipv6_prefix",
                format!(
                    "{:?} is not a prefix length from 32 to 128",
                    raw.ipv6_prefix
                ),
                "use 64 (the default: one subscriber's network) or 128 (each address)",
            );
        }
        if config.window.is_zero() {
            self.problem(
                "auto_block.window",
                "a window of 0 counts nothing",
                "give a span like \"1m\"",
            );
        }
        if config.block_for.is_zero() {
            self.problem(
                "auto_block.block_for",
                "a block of 0 blocks nothing",
                "give a span like \"15m\", or remove [auto_block]",
            );
        }
        if config.firewall_matches == 0 && config.rate_limited == 0 {
            self.problem(
                "auto_block",
                "both firewall_matches and rate_limited are 0, so nothing triggers a block",
                "set one of them, or remove [auto_block]",
            );
        }
        Some(config)
    }
}

#[cfg(test)]
mod tests {
    use super::parse_rate;
    use std::time::Duration;

    #[test]
    fn rates_parse_with_unit_letters_and_spans() {
        assert_eq!(parse_rate("10/s"), Some((10, Duration::from_secs(1))));
        assert_eq!(parse_rate("600/m"), Some((600, Duration::from_secs(60))));
        assert_eq!(
            parse_rate("2000/5m"),
            Some((2000, Duration::from_secs(300)))
        );
        assert_eq!(parse_rate(" 5 / 1h "), Some((5, Duration::from_secs(3600))));
        for bad in ["10", "0/s", "-1/s", "10/", "10/0s", "x/s", "10/fortnight"] {
            assert_eq!(parse_rate(bad), None, "{bad:?}");
        }
    }
}

//! Automatic blocking: a client refused by the firewall or by a rate limit too many times in a
//! window is put on the deny list for a while, as AWS WAF's rate-based rules and the
//! CloudWatch-fed Lambda of the operator's design would do, without the Lambda.
//!
//! This module only counts and decides; the caller puts the client on the deny list (and tells
//! the fleet). Each proxy counts what it sees itself, so behind a load balancer spreading one
//! client over N proxies the thresholds are reached per proxy; the block, once decided, holds on
//! every proxy.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use ipnet::IpNet;

use crate::config::AutoBlockConfig;

/// What a client did that counts towards a block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offence {
    /// A request the firewall refused (a route in block mode).
    FirewallMatch,
    /// A request a rate limit refused.
    RateLimited,
}

/// A client to put on the deny list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    /// The client's address as a network of one (/32 or /128).
    pub network: IpNet,
    pub block_for: Duration,
    /// Why, for the deny list entry and the log.
    pub reason: String,
}

/// A client's offences in its current window.
#[derive(Debug, Clone, Copy)]
struct Strikes {
    window_start: Instant,
    firewall_matches: u32,
    rate_limited: u32,
}

/// The offenders this proxy has seen.
#[derive(Debug)]
pub struct AutoBlock {
    config: AutoBlockConfig,
    offenders: Mutex<HashMap<IpAddr, Strikes>>,
}

impl AutoBlock {
    pub fn new(config: AutoBlockConfig) -> AutoBlock {
        AutoBlock {
            config,
            offenders: Mutex::default(),
        }
    }

    pub fn config(&self) -> AutoBlockConfig {
        self.config
    }

    /// Counts one offence of `client`; a block when it has reached a threshold. The count
    /// starts again afterwards, so a client blocked, released and offending again is judged on
    /// what it does after its release.
    pub fn note(&self, client: IpAddr, offence: Offence, now: Instant) -> Option<Block> {
        let config = &self.config;
        let client = config.keying.key(client);
        let mut offenders = self
            .offenders
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if offenders.len() >= config.max_tracked && !offenders.contains_key(&client) {
            offenders.retain(|_, strikes| now.duration_since(strikes.window_start) < config.window);
            if offenders.len() >= config.max_tracked {
                // Every tracked client is mid-window: forget the one whose window is oldest
                // rather than stop counting new ones.
                if let Some(oldest) = offenders
                    .iter()
                    .min_by_key(|(_, strikes)| strikes.window_start)
                    .map(|(ip, _)| *ip)
                {
                    offenders.remove(&oldest);
                }
            }
        }
        let strikes = offenders.entry(client).or_insert(Strikes {
            window_start: now,
            firewall_matches: 0,
            rate_limited: 0,
        });
        if now.duration_since(strikes.window_start) >= config.window {
            *strikes = Strikes {
                window_start: now,
                firewall_matches: 0,
                rate_limited: 0,
            };
        }
        let (count, threshold, what) = match offence {
            Offence::FirewallMatch => {
                strikes.firewall_matches += 1;
                (
                    strikes.firewall_matches,
                    config.firewall_matches,
                    "requests refused by the firewall",
                )
            }
            Offence::RateLimited => {
                strikes.rate_limited += 1;
                (
                    strikes.rate_limited,
                    config.rate_limited,
                    "requests over a rate limit",
                )
            }
        };
        if threshold == 0 || count < threshold {
            return None;
        }
        offenders.remove(&client);
        let prefix = match client {
            IpAddr::V4(_) => 32,
            IpAddr::V6(_) => config.keying.ipv6_prefix,
        };
        Some(Block {
            network: IpNet::new(client, prefix).unwrap_or_else(|_| IpNet::from(client)),
            block_for: config.block_for,
            reason: format!(
                "automatic: {count} {what} within {}",
                humantime::format_duration(config.window)
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::security::ratelimit::ClientKeying;

    fn config() -> AutoBlockConfig {
        AutoBlockConfig {
            firewall_matches: 3,
            rate_limited: 5,
            window: Duration::from_secs(60),
            block_for: Duration::from_secs(600),
            max_tracked: 100,
            keying: ClientKeying::default(),
        }
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("an address")
    }

    #[test]
    fn the_threshold_within_the_window_blocks_the_client_alone() {
        let auto = AutoBlock::new(config());
        let start = Instant::now();
        let attacker = ip("198.51.100.7");
        assert_eq!(auto.note(attacker, Offence::FirewallMatch, start), None);
        assert_eq!(
            auto.note(ip("198.51.100.8"), Offence::FirewallMatch, start),
            None
        );
        assert_eq!(auto.note(attacker, Offence::FirewallMatch, start), None);
        let block = auto
            .note(attacker, Offence::FirewallMatch, start)
            .expect("the third match blocks");
        assert_eq!(
            block.network,
            "198.51.100.7/32".parse::<IpNet>().expect("net")
        );
        assert_eq!(block.block_for, Duration::from_secs(600));
        assert!(
            block
                .reason
                .contains("3 requests refused by the firewall within 1m")
        );
        assert_eq!(
            auto.note(attacker, Offence::FirewallMatch, start),
            None,
            "the count starts again after a block"
        );
    }

    #[test]
    fn offences_in_an_old_window_are_forgotten() {
        let auto = AutoBlock::new(config());
        let start = Instant::now();
        let client = ip("2001:db8::5");
        for _ in 0..4 {
            assert_eq!(auto.note(client, Offence::RateLimited, start), None);
        }
        let neighbour = ip("2001:db8::ffff:7");
        let later = start + Duration::from_secs(61);
        for _ in 0..4 {
            assert_eq!(auto.note(client, Offence::RateLimited, later), None);
        }
        let block = auto
            .note(neighbour, Offence::RateLimited, later)
            .expect("five within the new window block, from anywhere in the /64");
        assert_eq!(
            block.network,
            "2001:db8::/64".parse::<IpNet>().expect("net")
        );
    }

    #[test]
    fn a_zero_threshold_never_blocks() {
        let auto = AutoBlock::new(AutoBlockConfig {
            rate_limited: 0,
            ..config()
        });
        let now = Instant::now();
        for _ in 0..1000 {
            assert_eq!(auto.note(ip("192.0.2.1"), Offence::RateLimited, now), None);
        }
    }

    #[test]
    fn the_table_stays_within_its_bound() {
        let auto = AutoBlock::new(AutoBlockConfig {
            max_tracked: 10,
            ..config()
        });
        let now = Instant::now();
        for n in 0..1000u32 {
            auto.note(IpAddr::from(n.to_be_bytes()), Offence::FirewallMatch, now);
        }
        let tracked = auto.offenders.lock().map(|o| o.len()).unwrap_or(usize::MAX);
        assert!(tracked <= 10, "{tracked} tracked");
    }
}

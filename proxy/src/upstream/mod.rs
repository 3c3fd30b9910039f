//! Upstream pools: the peers behind one `[upstreams.NAME]` section, which of them may take a
//! request, and which one does — with NGINX's semantics.
//!
//! A [`Pool`] is built once from its configuration and shared by every request behind an `Arc`.
//! Two things take a peer out of service: active health checks ([`Pool::run_health_checks`]) and
//! passive ejection after failed requests ([`Pool::report_failure`]). Backup peers take requests
//! only while no primary peer can. Picking reads atomics and takes one short lock (the round-robin
//! scores of a tier); nothing is rebuilt when peers come and go.

mod balance;
mod health;
mod passive;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Instant;

use serde::Serialize;

use crate::config::{HealthCheckConfig, UpstreamConfig};
use balance::Tier;
use passive::{EjectionPolicy, PassiveHealth, Transition};

/// The peers of one upstream and the state that decides which of them takes a request.
#[derive(Debug)]
pub struct Pool {
    name: String,
    peers: Box<[Peer]>,
    primary: Tier,
    backup: Tier,
    ejection: EjectionPolicy,
    health_check: Option<HealthCheckConfig>,
}

#[derive(Debug)]
struct Peer {
    address: SocketAddr,
    weight: u32,
    backup: bool,
    /// Cleared by active health checks; peers start healthy.
    healthy: AtomicBool,
    in_flight: Arc<AtomicUsize>,
    passive: PassiveHealth,
}

/// The peer chosen for one try of a request. The request counts as in flight on the peer (for
/// least connections and the metrics) until this is dropped.
#[derive(Debug)]
pub struct Selected {
    pub peer: SocketAddr,
    _in_flight: InFlight,
}

#[derive(Debug)]
struct InFlight(Arc<AtomicUsize>);

impl InFlight {
    fn start(counter: &Arc<AtomicUsize>) -> InFlight {
        counter.fetch_add(1, Ordering::Relaxed);
        InFlight(Arc::clone(counter))
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Every peer of the pool is down, ejected or already tried by this request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("upstream pool \"{pool}\" has no healthy peer left to try ({peers} peers configured)")]
pub struct NoPeerAvailable {
    pub pool: String,
    pub peers: usize,
}

/// One peer as the metrics and the admin API show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PeerStatus {
    pub address: SocketAddr,
    pub weight: u32,
    pub backup: bool,
    /// False while active health checks hold the peer down.
    pub healthy: bool,
    /// True while failed requests keep the peer out (passive health).
    pub ejected: bool,
    pub in_flight: usize,
}

impl Pool {
    pub fn new(config: &UpstreamConfig) -> Pool {
        // NGINX never ejects the only server of a group: that would only turn its errors into
        // instant 502s with nowhere else to go.
        let max_fails = if config.peers.len() == 1 {
            0
        } else {
            config.max_fails
        };
        let policy = EjectionPolicy {
            max_fails,
            fail_timeout: config.fail_timeout,
            epoch: Instant::now(),
        };
        let peers: Box<[Peer]> = config
            .peers
            .iter()
            .map(|peer| Peer {
                address: peer.address,
                // The configuration check rejects 0; a ring cannot hold a peer without weight.
                weight: peer.weight.max(1),
                backup: peer.backup,
                healthy: AtomicBool::new(true),
                in_flight: Arc::new(AtomicUsize::new(0)),
                passive: PassiveHealth::new(policy),
            })
            .collect();
        Pool {
            name: config.name.clone(),
            primary: Tier::new(&config.balance, &peers, false),
            backup: Tier::new(&config.balance, &peers, true),
            peers,
            ejection: policy,
            health_check: config.health_check.clone(),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Picks the peer for one try of a request. `key` is the hash key of a hashing pool (without
    /// one, the request is spread by round robin); `tried` are the peers this request has tried,
    /// which a retry avoids. Backup peers are used only when no primary peer is usable.
    pub fn select(
        &self,
        key: Option<&[u8]>,
        tried: &[SocketAddr],
    ) -> Result<Selected, NoPeerAvailable> {
        self.select_at(key, tried, Instant::now())
    }

    fn select_at(
        &self,
        key: Option<&[u8]>,
        tried: &[SocketAddr],
        now: Instant,
    ) -> Result<Selected, NoPeerAvailable> {
        let usable = |peer: &Peer| {
            peer.healthy.load(Ordering::Acquire)
                && peer.passive.admits(now)
                && !tried.contains(&peer.address)
        };
        for tier in [&self.primary, &self.backup] {
            // A lost race for an ejected peer's probe makes the peer unusable: pick again.
            while let Some(index) = tier.pick(&self.peers, key, usable) {
                let peer = &self.peers[index];
                if peer.passive.claim(now) {
                    return Ok(Selected {
                        peer: peer.address,
                        _in_flight: InFlight::start(&peer.in_flight),
                    });
                }
            }
        }
        Err(NoPeerAvailable {
            pool: self.name.clone(),
            peers: self.peers.len(),
        })
    }

    /// A try on `peer` failed without a response (connect error, timeout, reset). Enough of them
    /// within `fail_timeout` eject the peer for `fail_timeout`.
    pub fn report_failure(&self, peer: SocketAddr) {
        self.report_failure_at(peer, Instant::now());
    }

    fn report_failure_at(&self, address: SocketAddr, now: Instant) {
        let Some(peer) = self.peer(address) else {
            return;
        };
        if peer.passive.report_failure(now) == Some(Transition::Ejected) {
            tracing::warn!(
                upstream = %self.name, peer = %address, max_fails = self.ejection.max_fails,
                fail_timeout = ?self.ejection.fail_timeout,
                "The peer failed too many requests and is ejected for fail_timeout."
            );
        }
    }

    /// A try on `peer` got a response. It brings an ejected peer back when it answers the probe.
    pub fn report_success(&self, peer: SocketAddr) {
        let Some(found) = self.peer(peer) else {
            return;
        };
        if found.passive.report_success() == Some(Transition::Restored) {
            tracing::info!(
                upstream = %self.name, peer = %peer,
                "The ejected peer answered again and is back in the pool."
            );
        }
    }

    pub fn status(&self) -> Vec<PeerStatus> {
        self.peers
            .iter()
            .map(|peer| PeerStatus {
                address: peer.address,
                weight: peer.weight,
                backup: peer.backup,
                healthy: peer.healthy.load(Ordering::Acquire),
                ejected: peer.passive.is_ejected(),
                in_flight: peer.in_flight.load(Ordering::Relaxed),
            })
            .collect()
    }

    /// Runs the pool's active health checks, if it has any configured, until `shutdown`
    /// resolves; without them it returns at once.
    pub async fn run_health_checks(self: Arc<Self>, shutdown: impl Future<Output = ()> + Send) {
        let Some(check) = self.health_check.clone() else {
            return;
        };
        health::run(self, check, shutdown).await;
    }

    fn peer(&self, address: SocketAddr) -> Option<&Peer> {
        self.peers.iter().find(|peer| peer.address == address)
    }
}

/// Pools built from a few lines, for the tests of this module and its submodules.
#[cfg(test)]
mod testing {
    use std::net::SocketAddr;
    use std::time::Duration;

    use super::{Pool, Selected};
    use crate::config::{Balance, PeerConfig, UpstreamConfig, UpstreamProtocol};

    pub(super) fn address(text: &str) -> SocketAddr {
        text.parse().expect("test addresses are valid")
    }

    pub(super) fn primary(address_text: &str, weight: u32) -> PeerConfig {
        PeerConfig {
            address: address(address_text),
            weight,
            backup: false,
            name: None,
        }
    }

    pub(super) fn backup(address_text: &str) -> PeerConfig {
        PeerConfig {
            backup: true,
            ..primary(address_text, 1)
        }
    }

    /// An upstream with NGINX's defaults: max_fails = 1, fail_timeout = 10s.
    pub(super) fn upstream(balance: Balance, peers: Vec<PeerConfig>) -> UpstreamConfig {
        UpstreamConfig {
            name: "app".to_string(),
            peers,
            balance,
            health_check: None,
            max_fails: 1,
            fail_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(1),
            read_timeout: Duration::from_secs(1),
            write_timeout: Duration::from_secs(1),
            idle_timeout: Duration::from_secs(1),
            tries: 2,
            protocol: UpstreamProtocol::Http1,
        }
    }

    pub(super) fn pick(pool: &Pool, key: Option<&[u8]>) -> Selected {
        pool.select(key, &[])
            .expect("the test pool has a usable peer")
    }

    /// `count` picks, each finished before the next, as the `names` of the peers chosen (the
    /// peer at `names[i]` is the pool's i-th).
    pub(super) fn sequence(pool: &Pool, count: usize, names: &str) -> String {
        let addresses: Vec<SocketAddr> = pool.status().iter().map(|peer| peer.address).collect();
        (0..count)
            .map(|_| {
                let chosen = pick(pool, None).peer;
                let position = addresses
                    .iter()
                    .position(|&address| address == chosen)
                    .expect("the pool picks its own peers");
                names.as_bytes()[position] as char
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;
    use std::time::Duration;

    use super::testing::{address, backup, pick, primary, sequence, upstream};
    use super::*;
    use crate::config::Balance;

    fn three_primaries_and_a_backup() -> Pool {
        Pool::new(&upstream(
            Balance::RoundRobin,
            vec![
                primary("10.0.0.1:80", 1),
                primary("10.0.0.2:80", 1),
                primary("10.0.0.3:80", 1),
                backup("10.0.0.9:80"),
            ],
        ))
    }

    fn mark_down(pool: &Pool, address_text: &str) {
        let peer = pool
            .peer(address(address_text))
            .expect("a peer of the pool");
        peer.healthy.store(false, Ordering::Release);
    }

    #[test]
    fn backup_peers_take_requests_only_while_no_primary_can() {
        let pool = three_primaries_and_a_backup();
        assert_eq!(sequence(&pool, 6, "abcz"), "abcabc");

        mark_down(&pool, "10.0.0.1:80");
        let now = Instant::now();
        pool.report_failure_at(address("10.0.0.2:80"), now);
        assert_eq!(
            sequence(&pool, 4, "abcz"),
            "cccc",
            "one primary left is enough"
        );

        mark_down(&pool, "10.0.0.3:80");
        assert_eq!(sequence(&pool, 3, "abcz"), "zzz");

        pool.peer(address("10.0.0.1:80"))
            .expect("a peer of the pool")
            .healthy
            .store(true, Ordering::Release);
        assert_eq!(sequence(&pool, 2, "abcz"), "aa");
    }

    #[test]
    fn a_retry_goes_to_a_peer_not_yet_tried_then_to_the_backups() {
        let pool = three_primaries_and_a_backup();
        let mut tried = Vec::new();
        for _ in 0..4 {
            let selected = pool.select(None, &tried).expect("a peer is left");
            assert!(!tried.contains(&selected.peer));
            tried.push(selected.peer);
        }
        assert_eq!(tried[3], address("10.0.0.9:80"), "the backup comes last");

        let error = pool.select(None, &tried).expect_err("every peer was tried");
        assert_eq!(error.peers, 4);
        let message = error.to_string();
        assert!(
            message.contains("\"app\"") && message.contains("no healthy peer"),
            "{message}"
        );
    }

    #[test]
    fn every_primary_ejected_sends_requests_to_the_backup_until_fail_timeout_has_passed() {
        let pool = three_primaries_and_a_backup();
        let t0 = Instant::now();
        for peer in ["10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80"] {
            pool.report_failure_at(address(peer), t0);
        }
        let ejected: Vec<bool> = pool.status().iter().map(|peer| peer.ejected).collect();
        assert_eq!(ejected, [true, true, true, false]);
        let chosen = pool.select_at(None, &[], t0 + Duration::from_secs(9));
        assert_eq!(chosen.expect("the backup").peer, address("10.0.0.9:80"));

        // After fail_timeout each ejected peer gets one probe; the others keep off it meanwhile.
        let later = t0 + Duration::from_secs(10);
        let probes: Vec<SocketAddr> = (0..4)
            .map(|_| pool.select_at(None, &[], later).expect("a peer").peer)
            .collect();
        assert_eq!(
            probes,
            ["10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80", "10.0.0.9:80"].map(address)
        );
        pool.report_success(address("10.0.0.2:80"));
        let chosen = pool.select_at(None, &[], later).expect("a peer").peer;
        assert_eq!(chosen, address("10.0.0.2:80"), "its probe answered");
    }

    #[test]
    fn max_fails_counts_failures_within_fail_timeout() {
        let mut config = upstream(
            Balance::RoundRobin,
            vec![primary("10.0.0.1:80", 1), primary("10.0.0.2:80", 1)],
        );
        config.max_fails = 3;
        let pool = Pool::new(&config);
        let flaky = address("10.0.0.1:80");
        let t0 = Instant::now();
        for second in [0, 5, 11, 12] {
            pool.report_failure_at(flaky, t0 + Duration::from_secs(second));
        }
        assert!(
            !pool.status()[0].ejected,
            "four failures, but never three within 10s"
        );
        pool.report_failure_at(flaky, t0 + Duration::from_secs(13));
        assert!(pool.status()[0].ejected);
        let at = t0 + Duration::from_secs(14);
        let chosen: Vec<SocketAddr> = (0..3)
            .map(|_| pool.select_at(None, &[], at).expect("a peer").peer)
            .collect();
        assert_eq!(chosen, [address("10.0.0.2:80"); 3]);
    }

    #[test]
    fn max_fails_zero_disables_ejection() {
        let mut config = upstream(
            Balance::RoundRobin,
            vec![primary("10.0.0.1:80", 1), primary("10.0.0.2:80", 1)],
        );
        config.max_fails = 0;
        let pool = Pool::new(&config);
        for _ in 0..10 {
            pool.report_failure(address("10.0.0.1:80"));
        }
        assert!(pool.status().iter().all(|peer| !peer.ejected));
        assert_eq!(sequence(&pool, 4, "ab"), "abab");
    }

    #[test]
    fn the_only_peer_of_a_pool_is_never_ejected() {
        let pool = Pool::new(&upstream(
            Balance::RoundRobin,
            vec![primary("10.0.0.1:80", 1)],
        ));
        pool.report_failure(address("10.0.0.1:80"));
        assert!(!pool.status()[0].ejected);
        assert_eq!(pick(&pool, None).peer, address("10.0.0.1:80"));
    }

    #[test]
    fn a_selection_countsin_flight_until_dropped() {
        let pool = three_primaries_and_a_backup();
        let first = pick(&pool, None);
        let second = pick(&pool, None);
        let in_flight: Vec<usize> = pool.status().iter().map(|peer| peer.in_flight).collect();
        assert_eq!(in_flight, [1, 1, 0, 0]);
        drop((first, second));
        assert!(pool.status().iter().all(|peer| peer.in_flight == 0));
    }

    #[test]
    fn reports_about_strangers_are_ignored() {
        let pool = three_primaries_and_a_backup();
        pool.report_failure(address("192.0.2.1:80"));
        pool.report_success(address("192.0.2.1:80"));
        assert_eq!(sequence(&pool, 3, "abcz"), "abc");
    }
}

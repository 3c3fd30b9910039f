//! Picking a peer within one tier of a pool (its primaries, or its backups) by the pool's
//! [`Balance`]: smooth weighted round robin, least connections, or a consistent-hash ring.
//!
//! Everything here is built once per pool. Which peers are usable changes all the time, so it
//! comes in as a predicate and unusable peers are skipped while picking.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::Ordering as AtomicOrdering;
use std::sync::{Mutex, PoisonError};

use pingora_ketama::{Bucket, Continuum, DEFAULT_POINT_MULTIPLE};

use super::Peer;
use crate::config::Balance;

/// The peers of one tier and how to choose among them.
#[derive(Debug)]
pub(super) struct Tier {
    /// Indices into the pool's peers; the balancers below speak in positions in this list.
    members: Box<[usize]>,
    strategy: Strategy,
    /// Round robin is also how least connections breaks ties and how a hashing pool spreads
    /// requests that carry no key, so every tier keeps one.
    rotation: SmoothWeighted,
}

#[derive(Debug)]
enum Strategy {
    RoundRobin,
    LeastConnections,
    Hash(Ring),
}

impl Tier {
    /// The tier of `peers` whose `backup` flag equals `backup`.
    pub(super) fn new(balance: &Balance, peers: &[Peer], backup: bool) -> Tier {
        let members: Box<[usize]> = (0..peers.len())
            .filter(|&index| peers[index].backup == backup)
            .collect();
        let member_peers = || members.iter().map(|&index| &peers[index]);
        let strategy = match balance {
            Balance::RoundRobin => Strategy::RoundRobin,
            Balance::LeastConnections => Strategy::LeastConnections,
            Balance::Hash(_) => Strategy::Hash(Ring::new(member_peers())),
        };
        let rotation = SmoothWeighted::new(member_peers().map(|peer| peer.weight));
        Tier {
            members,
            strategy,
            rotation,
        }
    }

    /// The index (into `peers`) of the peer for this request, or `None` when no member is usable.
    pub(super) fn pick(
        &self,
        peers: &[Peer],
        key: Option<&[u8]>,
        usable: impl Fn(&Peer) -> bool,
    ) -> Option<usize> {
        let member = |position: usize| &peers[self.members[position]];
        let usable_member = |position: usize| usable(member(position));
        let position = match (&self.strategy, key) {
            (Strategy::Hash(ring), Some(key)) => ring.first_usable(key, usable_member),
            (Strategy::LeastConnections, _) => self.least_loaded(member, usable_member),
            (Strategy::RoundRobin | Strategy::Hash(_), _) => self.rotation.next(usable_member),
        }?;
        Some(self.members[position])
    }

    /// NGINX's least_conn: the usable peer with the fewest requests in flight for its weight;
    /// equally loaded peers take turns by weighted round robin, so an idle pool still spreads.
    fn least_loaded<'p>(
        &self,
        member: impl Fn(usize) -> &'p Peer,
        usable: impl Fn(usize) -> bool,
    ) -> Option<usize> {
        let load = |position: usize| Load::of(member(position));
        let (lightest, lightest_load) = (0..self.members.len())
            .filter(|&position| usable(position))
            .map(|position| (position, load(position)))
            .min_by(|(_, a), (_, b)| a.compare(b))?;
        // Counts move while we look: compare against the snapshot with `<=` and, should every
        // peer have become busier meanwhile, keep the one found lightest.
        let tied = self.rotation.next(|position| {
            usable(position) && load(position).compare(&lightest_load) != Ordering::Greater
        });
        Some(tied.unwrap_or(lightest))
    }
}

/// Requests in flight on a peer, relative to its weight.
#[derive(Debug, Clone, Copy)]
struct Load {
    in_flight: usize,
    weight: u32,
}

impl Load {
    fn of(peer: &Peer) -> Load {
        Load {
            in_flight: peer.in_flight.load(AtomicOrdering::Relaxed),
            weight: peer.weight,
        }
    }

    /// Compares `in_flight / weight` without division or rounding.
    fn compare(&self, other: &Load) -> Ordering {
        let mine = self.in_flight as u128 * u128::from(other.weight);
        let theirs = other.in_flight as u128 * u128::from(self.weight);
        mine.cmp(&theirs)
    }
}

/// NGINX's smooth weighted round robin: every pick adds each eligible peer's weight to its
/// running score, takes the highest score and charges it the sum of the weights added. Weights
/// 5, 1, 1 give `a a b a c a a`: deterministic, and interleaved rather than in bursts.
#[derive(Debug)]
struct SmoothWeighted {
    weights: Box<[i64]>,
    scores: Mutex<Box<[i64]>>,
}

impl SmoothWeighted {
    fn new(weights: impl Iterator<Item = u32>) -> SmoothWeighted {
        let weights: Box<[i64]> = weights.map(i64::from).collect();
        let scores = Mutex::new(vec![0; weights.len()].into_boxed_slice());
        SmoothWeighted { weights, scores }
    }

    /// The next position among those `eligible`; the others keep their scores untouched.
    fn next(&self, eligible: impl Fn(usize) -> bool) -> Option<usize> {
        let mut scores = self.scores.lock().unwrap_or_else(PoisonError::into_inner);
        let mut added = 0;
        let mut best: Option<usize> = None;
        for (position, weight) in self.weights.iter().enumerate() {
            if !eligible(position) {
                continue;
            }
            scores[position] += weight;
            added += weight;
            if best.is_none_or(|best| scores[position] > scores[best]) {
                best = Some(position);
            }
        }
        let best = best?;
        scores[best] -= added;
        Some(best)
    }
}

/// A ketama continuum (the points NGINX's `hash ... consistent` puts on its ring) over one tier.
struct Ring {
    continuum: Continuum,
    positions: HashMap<SocketAddr, usize>,
    /// How many points the ring holds: a walk this long has met every peer on it.
    points: usize,
}

impl Ring {
    fn new<'p>(peers: impl Iterator<Item = &'p Peer>) -> Ring {
        let mut buckets = Vec::new();
        let mut positions = HashMap::new();
        let mut total_weight = 0u64;
        for (position, peer) in peers.enumerate() {
            buckets.push(Bucket::new(peer.address, peer.weight));
            positions.insert(peer.address, position);
            total_weight += u64::from(peer.weight);
        }
        let points =
            usize::try_from(total_weight * u64::from(DEFAULT_POINT_MULTIPLE)).unwrap_or(usize::MAX);
        Ring {
            continuum: Continuum::new(&buckets),
            positions,
            points,
        }
    }

    /// The key's peer on the ring or, when that one is unusable, the next usable peer met walking
    /// on, so only the unusable peer's keys move.
    fn first_usable(&self, key: &[u8], usable: impl Fn(usize) -> bool) -> Option<usize> {
        // With nothing usable the walk would cover the whole ring for naught.
        if !(0..self.positions.len()).any(&usable) {
            return None;
        }
        self.continuum
            .node_iter(key)
            .take(self.points)
            .filter_map(|address| self.positions.get(address).copied())
            .find(|&position| usable(position))
    }
}

impl fmt::Debug for Ring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ring")
            .field("peers", &self.positions.len())
            .field("points", &self.points)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::net::SocketAddr;
    use std::sync::atomic::Ordering;

    use crate::config::{Balance, HashKey};
    use crate::upstream::Pool;
    use crate::upstream::testing::{address, pick, primary, sequence, upstream};

    fn pool(balance: Balance, weights: &[u32]) -> Pool {
        let peers = (1..)
            .zip(weights)
            .map(|(host, &weight)| primary(&format!("10.0.0.{host}:80"), weight))
            .collect();
        Pool::new(&upstream(balance, peers))
    }

    fn hashing(weights: &[u32]) -> Pool {
        pool(Balance::Hash(HashKey::Uri), weights)
    }

    #[test]
    fn smooth_round_robin_interleaves_by_weight() {
        let weighted = pool(Balance::RoundRobin, &[5, 1, 1]);
        assert_eq!(sequence(&weighted, 14, "abc"), "aabacaaaabacaa");
        let even = pool(Balance::RoundRobin, &[1, 1, 1]);
        assert_eq!(sequence(&even, 6, "abc"), "abcabc");
    }

    #[test]
    fn round_robin_skips_an_unusable_peer_and_keeps_the_others_interleaved() {
        let pool = pool(Balance::RoundRobin, &[2, 1, 1]);
        pool.peers[0].healthy.store(false, Ordering::Release);
        assert_eq!(sequence(&pool, 4, "abc"), "bcbc");
    }

    #[test]
    fn least_connections_prefers_the_idle_peer() {
        let pool = pool(Balance::LeastConnections, &[1, 1, 1]);
        let busy = pick(&pool, None);
        let other = pick(&pool, None);
        assert_ne!(busy.peer, other.peer);
        drop(other);
        for _ in 0..10 {
            assert_ne!(
                pick(&pool, None).peer,
                busy.peer,
                "the busy peer is avoided"
            );
        }
    }

    #[test]
    fn least_connections_spreads_an_idle_pool_round_robin() {
        let pool = pool(Balance::LeastConnections, &[1, 1, 1]);
        assert_eq!(sequence(&pool, 6, "abc"), "abcabc");
    }

    #[test]
    fn least_connections_loads_peers_in_proportion_to_their_weights() {
        let pool = pool(Balance::LeastConnections, &[2, 1]);
        let held: Vec<_> = (0..300).map(|_| pick(&pool, None)).collect();
        let in_flight: Vec<usize> = pool.status().iter().map(|peer| peer.in_flight).collect();
        assert_eq!(in_flight, [200, 100]);
        drop(held);
    }

    /// Which peer each of `keys` reaches.
    fn owners(pool: &Pool, keys: &[String]) -> Vec<SocketAddr> {
        keys.iter()
            .map(|key| pick(pool, Some(key.as_bytes())).peer)
            .collect()
    }

    fn keys() -> Vec<String> {
        (0..10_000).map(|n| format!("/ocpp/CP-{n}")).collect()
    }

    fn share(owners: &[SocketAddr], peer: SocketAddr) -> f64 {
        owners.iter().filter(|&&owner| owner == peer).count() as f64 / owners.len() as f64
    }

    #[test]
    fn one_key_keeps_reaching_one_peer() {
        let first = hashing(&[1, 1, 1, 1, 1]);
        let second = hashing(&[1, 1, 1, 1, 1]);
        let keys = keys();
        assert_eq!(owners(&first, &keys), owners(&second, &keys), "pools agree");
        assert_eq!(owners(&first, &keys), owners(&first, &keys), "picks repeat");
    }

    #[test]
    fn removing_a_peer_moves_only_its_keys() {
        let keys = keys();
        let before = owners(&hashing(&[1, 1, 1, 1, 1]), &keys);
        let after = owners(&hashing(&[1, 1, 1, 1]), &keys);
        let removed = address("10.0.0.5:80");
        let moved = before.iter().zip(&after).filter(|(b, a)| b != a).count();
        let owned_by_removed = before.iter().filter(|&&owner| owner == removed).count();
        assert_eq!(moved, owned_by_removed, "no key of another peer moved");
        assert!(
            (1_000..3_000).contains(&moved),
            "about a fifth moved: {moved}"
        );
    }

    #[test]
    fn an_unusable_peer_s_keys_spread_over_the_others_and_nothing_else_moves() {
        let pool = hashing(&[1, 1, 1, 1, 1]);
        let keys = keys();
        let before = owners(&pool, &keys);
        let down = address("10.0.0.3:80");
        pool.peers[2].healthy.store(false, Ordering::Release);
        let after = owners(&pool, &keys);

        let mut moved_to: HashMap<SocketAddr, usize> = HashMap::new();
        for (was, is) in before.iter().zip(&after) {
            if was == is {
                continue;
            }
            assert_eq!(*was, down, "only the unusable peer's keys move");
            *moved_to.entry(*is).or_default() += 1;
        }
        assert!(!moved_to.contains_key(&down));
        assert_eq!(
            moved_to.len(),
            4,
            "they spread over every other peer: {moved_to:?}"
        );
    }

    #[test]
    fn a_retry_walks_the_ring_to_the_next_peer() {
        let pool = hashing(&[1, 1, 1]);
        let key = b"/ocpp/CP-42".as_slice();
        let first = pick(&pool, Some(key)).peer;
        let retry = pool.select(Some(key), &[first]).expect("another peer").peer;
        assert_ne!(retry, first);
        let again = pool.select(Some(key), &[first]).expect("another peer").peer;
        assert_eq!(again, retry, "the fallback is consistent too");
    }

    #[test]
    fn hashing_respects_weights() {
        let owners = owners(&hashing(&[3, 1]), &keys());
        let heavy = share(&owners, address("10.0.0.1:80"));
        assert!((0.65..0.85).contains(&heavy), "weight 3 of 4 owns {heavy}");
    }

    #[test]
    fn requests_without_a_key_are_spread_round_robin() {
        let pool = hashing(&[1, 1, 1]);
        assert_eq!(sequence(&pool, 6, "abc"), "abcabc");
    }
}

//! Rate limits per client and route, as NGINX's `limit_req ... nodelay` and AWS WAF's
//! rate-based rules do them: a steady rate plus a burst, anything beyond refused at once with
//! the time after which the next request would pass.
//!
//! The algorithm is GCRA (the generic cell rate algorithm): one number per client, the
//! theoretical time its next request is due, instead of a queue or a window of timestamps.
//! A request is let through when it arrives no more than `burst` intervals before that time,
//! and moves the time one interval on. The same arithmetic runs in Redis when a route's limit
//! is shared by the fleet (`fleet::ratelimit`), so the two never disagree about a rate.
//!
//! Clients are keyed by address; IPv6 clients by their /64 (configurable), since a single
//! subscriber is routinely given a whole /64 and can use every address in it.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use ipnet::IpNet;

/// A steady rate plus a burst.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// Requests let through per `per`, sustained.
    pub requests: u32,
    pub per: Duration,
    /// Requests let through at once beyond the steady rate.
    pub burst: u32,
}

impl Rate {
    /// The time one request "costs": `per / requests`, in nanoseconds.
    pub fn interval_nanos(&self) -> u64 {
        (self.per.as_nanos() / u128::from(self.requests.max(1))).max(1) as u64
    }

    /// How far ahead of the due time a request may come: `burst` intervals.
    pub fn tolerance_nanos(&self) -> u64 {
        self.interval_nanos().saturating_mul(u64::from(self.burst))
    }
}

/// What the limiter says of one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allow,
    /// Refused; a request after `retry_after` would pass.
    Limit {
        retry_after: Duration,
    },
}

/// One GCRA step. `due` is the client's theoretical arrival time (None for a client not seen,
/// or seen so long ago that it has its whole burst back); all times in nanoseconds on one clock.
/// Returns the new due time when the request passes, or how long to wait.
pub fn step(due: Option<u64>, now: u64, rate: &Rate) -> Result<u64, u64> {
    let interval = rate.interval_nanos();
    let due = due.map_or(now, |due| due.max(now));
    let early = due - now;
    let tolerance = rate.tolerance_nanos();
    if early > tolerance {
        Err(early - tolerance)
    } else {
        Ok(due.saturating_add(interval))
    }
}

/// How clients are told apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientKeying {
    /// IPv6 clients count per network of this prefix length (64 by default; 128 per address).
    pub ipv6_prefix: u8,
}

impl Default for ClientKeying {
    fn default() -> Self {
        ClientKeying { ipv6_prefix: 64 }
    }
}

impl ClientKeying {
    /// The address a client is counted under.
    pub fn key(&self, ip: IpAddr) -> IpAddr {
        match ip {
            IpAddr::V4(_) => ip,
            IpAddr::V6(_) => IpNet::new(ip, self.ipv6_prefix.min(128))
                .map_or(ip, |network| network.trunc().addr()),
        }
    }
}

/// Shards of the client table: one lock per shard keeps threads from queueing on each other.
const SHARDS: usize = 16;

/// One route's limit, on this proxy alone.
#[derive(Debug)]
pub struct ClientLimiter {
    rate: Rate,
    keying: ClientKeying,
    /// Due times in nanoseconds since `epoch`.
    shards: Box<[Mutex<HashMap<IpAddr, u64>>]>,
    hasher: RandomState,
    /// Clients tracked per shard; past it, clients whose burst has come back are forgotten
    /// first, then any one.
    max_per_shard: usize,
    epoch: Instant,
}

impl ClientLimiter {
    pub fn new(rate: Rate, keying: ClientKeying, max_clients: usize) -> ClientLimiter {
        ClientLimiter {
            rate,
            keying,
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            hasher: RandomState::new(),
            max_per_shard: max_clients.div_ceil(SHARDS).max(1),
            epoch: Instant::now(),
        }
    }

    pub fn rate(&self) -> Rate {
        self.rate
    }

    pub fn keying(&self) -> ClientKeying {
        self.keying
    }

    /// Counts one request of `client` at `now`.
    pub fn check(&self, client: IpAddr, now: Instant) -> Decision {
        let key = self.keying.key(client);
        let now = now.saturating_duration_since(self.epoch).as_nanos() as u64;
        let shard = self.hasher.hash_one(key) as usize % SHARDS;
        let mut clients = self.shards[shard]
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        match step(clients.get(&key).copied(), now, &self.rate) {
            Ok(due) => {
                if clients.len() >= self.max_per_shard && !clients.contains_key(&key) {
                    make_room(&mut clients, now, self.max_per_shard);
                }
                clients.insert(key, due);
                Decision::Allow
            }
            Err(wait) => Decision::Limit {
                retry_after: Duration::from_nanos(wait),
            },
        }
    }

    /// How many clients are tracked.
    pub fn tracked(&self) -> usize {
        self.shards
            .iter()
            .map(|shard| shard.lock().unwrap_or_else(PoisonError::into_inner).len())
            .sum()
    }
}

/// Forgets the clients whose whole burst has come back (they would start afresh anyway), or,
/// when every one is still limited, one of them: a full table must not stop new clients.
fn make_room(clients: &mut HashMap<IpAddr, u64>, now: u64, max: usize) {
    clients.retain(|_, due| *due > now);
    if clients.len() >= max
        && let Some(victim) = clients.keys().next().copied()
    {
        clients.remove(&victim);
    }
}

/// The limiters of the running routes, kept across reloads: a route whose limit did not change
/// keeps its clients' state, so a SIGHUP is no way around a limit.
#[derive(Debug, Default)]
pub struct RateLimiters {
    by_route: Mutex<HashMap<String, Arc<ClientLimiter>>>,
}

impl RateLimiters {
    /// The limiter of the route labelled `route`: the running one when its settings are the
    /// same, else a new one.
    pub fn for_route(
        &self,
        route: &str,
        rate: Rate,
        keying: ClientKeying,
        max_clients: usize,
    ) -> Arc<ClientLimiter> {
        let mut by_route = self.by_route.lock().unwrap_or_else(PoisonError::into_inner);
        match by_route.get(route) {
            Some(limiter)
                if limiter.rate == rate
                    && limiter.keying == keying
                    && limiter.max_per_shard == max_clients.div_ceil(SHARDS).max(1) =>
            {
                limiter.clone()
            }
            _ => {
                let limiter = Arc::new(ClientLimiter::new(rate, keying, max_clients));
                by_route.insert(route.to_owned(), limiter.clone());
                limiter
            }
        }
    }

    /// Drops the limiters of routes that no longer exist.
    pub fn retain_routes<'a>(&self, routes: impl IntoIterator<Item = &'a str>) {
        let keep: std::collections::HashSet<&str> = routes.into_iter().collect();
        self.by_route
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|route, _| keep.contains(route.as_str()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: u64 = 1_000_000_000;

    fn rate(requests: u32, per_secs: u64, burst: u32) -> Rate {
        Rate {
            requests,
            per: Duration::from_secs(per_secs),
            burst,
        }
    }

    #[test]
    fn a_burst_passes_at_once_then_the_steady_rate() {
        let rate = rate(10, 1, 5);
        let mut due = None;
        let now = 100 * SECOND;
        for request in 0..6 {
            due = Some(step(due, now, &rate).unwrap_or_else(|_| panic!("request {request}")));
        }
        let wait = step(due, now, &rate).expect_err("the 7th request at once is over the burst");
        assert_eq!(wait, SECOND / 10, "one interval until the next may pass");
        assert!(step(due, now + wait, &rate).is_ok());
        assert!(step(due, now + wait - 1, &rate).is_err());
    }

    #[test]
    fn without_burst_requests_are_spaced_by_the_interval() {
        let rate = rate(2, 1, 0);
        let due = step(None, 0, &rate).expect("the first passes");
        assert_eq!(step(Some(due), SECOND / 4, &rate), Err(SECOND / 4));
        assert!(step(Some(due), SECOND / 2, &rate).is_ok());
    }

    #[test]
    fn an_idle_client_gets_its_burst_back() {
        let rate = rate(1, 1, 2);
        let mut due = None;
        for _ in 0..3 {
            due = step(due, 0, &rate).ok();
        }
        assert!(step(due, 0, &rate).is_err());
        let later = 10 * SECOND;
        let mut due_later = due;
        for _ in 0..3 {
            due_later = Some(step(due_later, later, &rate).expect("burst back after idling"));
        }
        assert!(step(due_later, later, &rate).is_err());
    }

    #[test]
    fn clients_are_limited_apart_and_ipv6_by_network() {
        let limiter = ClientLimiter::new(rate(1, 60, 0), ClientKeying::default(), 1000);
        let now = Instant::now();
        let a: IpAddr = "192.0.2.1".parse().expect("address");
        let b: IpAddr = "192.0.2.2".parse().expect("address");
        assert_eq!(limiter.check(a, now), Decision::Allow);
        assert!(matches!(limiter.check(a, now), Decision::Limit { .. }));
        assert_eq!(limiter.check(b, now), Decision::Allow);
        let v6a: IpAddr = "2001:db8:1:2::1".parse().expect("address");
        let v6b: IpAddr = "2001:db8:1:2:ffff::9".parse().expect("address");
        let v6c: IpAddr = "2001:db8:1:3::1".parse().expect("address");
        assert_eq!(limiter.check(v6a, now), Decision::Allow);
        assert!(
            matches!(limiter.check(v6b, now), Decision::Limit { .. }),
            "the same /64 is one client"
        );
        assert_eq!(limiter.check(v6c, now), Decision::Allow);
    }

    #[test]
    fn the_table_stays_within_its_bound() {
        let limiter = ClientLimiter::new(rate(1, 3600, 0), ClientKeying::default(), 64);
        let now = Instant::now();
        for n in 0..10_000u32 {
            let ip = IpAddr::from(n.to_be_bytes());
            assert_eq!(
                limiter.check(ip, now),
                Decision::Allow,
                "a new client passes"
            );
        }
        assert!(
            limiter.tracked() <= 64 + SHARDS,
            "{} tracked",
            limiter.tracked()
        );
    }

    #[test]
    fn a_reload_keeps_an_unchanged_limit_and_replaces_a_changed_one() {
        let limiters = RateLimiters::default();
        let keying = ClientKeying::default();
        let first = limiters.for_route("*/api/", rate(5, 1, 0), keying, 100);
        let same = limiters.for_route("*/api/", rate(5, 1, 0), keying, 100);
        assert!(Arc::ptr_eq(&first, &same));
        let changed = limiters.for_route("*/api/", rate(6, 1, 0), keying, 100);
        assert!(!Arc::ptr_eq(&first, &changed));
        limiters.retain_routes(["*/other/"]);
        let after = limiters.for_route("*/api/", rate(6, 1, 0), keying, 100);
        assert!(!Arc::ptr_eq(&changed, &after));
    }
}

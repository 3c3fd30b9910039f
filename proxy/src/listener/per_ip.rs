//! The bound on connections one client address holds open on a listener
//! (`listener.max_connections_per_ip`, NGINX's `limit_conn`): past it, a new connection from
//! that address is closed on arrival, before TLS, so that one host cannot take every socket.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// How often a refusal is logged; the metric counts every one.
const REPORT_EVERY: Duration = Duration::from_secs(60);

/// Open connections per client address.
#[derive(Debug)]
pub(crate) struct ConnectionsPerIp {
    max: u32,
    open: Mutex<HashMap<IpAddr, u32>>,
    /// Milliseconds after `started` of the last refusal logged, plus one (0: none yet).
    reported: AtomicU64,
    started: Instant,
}

/// One counted connection; dropping it releases its place.
#[derive(Debug)]
pub(crate) struct Slot {
    counts: Arc<ConnectionsPerIp>,
    ip: IpAddr,
}

impl ConnectionsPerIp {
    pub(crate) fn new(max: u32) -> Arc<ConnectionsPerIp> {
        Arc::new(ConnectionsPerIp {
            max,
            open: Mutex::default(),
            reported: AtomicU64::new(0),
            started: Instant::now(),
        })
    }

    /// Whether a refusal now should be logged: the first, then one per `REPORT_EVERY`.
    pub(crate) fn should_report(&self) -> bool {
        let now = self.started.elapsed().as_millis() as u64 + 1;
        let last = self.reported.load(Ordering::Relaxed);
        let due = last == 0 || now.saturating_sub(last) >= REPORT_EVERY.as_millis() as u64;
        due && self
            .reported
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    }

    /// A place for one more connection from `ip`, or `None` when it has `max` open.
    pub(crate) fn open(self: &Arc<Self>, ip: IpAddr) -> Option<Slot> {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let count = open.entry(ip).or_insert(0);
        if *count >= self.max {
            return None;
        }
        *count += 1;
        Some(Slot {
            counts: self.clone(),
            ip,
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self
            .counts
            .open
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = open.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_gets_its_places_back_as_connections_close() {
        let counts = ConnectionsPerIp::new(2);
        let a: IpAddr = "192.0.2.1".parse().expect("address");
        let b: IpAddr = "192.0.2.2".parse().expect("address");
        let first = counts.open(a).expect("first");
        let second = counts.open(a).expect("second");
        assert!(counts.open(a).is_none(), "a third is refused");
        assert!(counts.open(b).is_some(), "another address is not");
        drop(first);
        let third = counts.open(a).expect("a place came back");
        drop((second, third));
        assert!(counts.should_report(), "the first refusal is logged");
        assert!(
            !counts.should_report(),
            "the next one within the minute is not"
        );
        assert!(
            counts
                .open
                .lock()
                .map(|open| open.is_empty())
                .unwrap_or(false)
        );
    }
}

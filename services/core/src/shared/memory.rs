//! The in-process store behind the cache, locks and counters when no Redis is configured: a map
//! whose entries expire, bounded in size so a busy laptop run cannot grow without limit.
//!
//! When full, an insert first drops every expired entry and then, if still full, the entry
//! written longest ago. Time is tokio's clock, so tests can pause it.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

/// When an entry written at `now` with `ttl` expires: at least a millisecond later, like Redis,
/// and never past what the clock can represent.
pub(crate) fn expiry(now: Instant, ttl: Duration) -> Instant {
    let ttl = ttl.max(Duration::from_millis(1));
    now.checked_add(ttl)
        .unwrap_or_else(|| now + Duration::from_secs(100 * 365 * 24 * 3600))
}

#[derive(Debug)]
struct Slot<V> {
    value: V,
    expires_at: Instant,
    /// Write order, so the oldest entry can be found without a scan.
    seq: u64,
}

/// A bounded map from string keys to values with an expiry each.
#[derive(Debug)]
pub(crate) struct ExpiringMap<V> {
    slots: HashMap<String, Slot<V>>,
    by_age: BTreeMap<u64, String>,
    by_expiry: BTreeMap<(Instant, u64), String>,
    next_seq: u64,
    max_entries: usize,
}

impl<V> ExpiringMap<V> {
    pub(crate) fn new(max_entries: usize) -> Self {
        ExpiringMap {
            slots: HashMap::new(),
            by_age: BTreeMap::new(),
            by_expiry: BTreeMap::new(),
            next_seq: 0,
            max_entries: max_entries.max(1),
        }
    }

    /// The live value under `key`; an expired one is removed on the way.
    pub(crate) fn get_mut(&mut self, key: &str, now: Instant) -> Option<&mut V> {
        let expired = self.slots.get(key)?.expires_at <= now;
        if expired {
            self.remove(key);
            return None;
        }
        self.slots.get_mut(key).map(|slot| &mut slot.value)
    }

    pub(crate) fn get(&mut self, key: &str, now: Instant) -> Option<&V> {
        self.get_mut(key, now).map(|value| &*value)
    }

    /// Stores `value` under `key` until `expires_at`, making room first when the map is full.
    pub(crate) fn insert(&mut self, key: &str, value: V, expires_at: Instant, now: Instant) {
        self.remove(key);
        if self.slots.len() >= self.max_entries {
            self.purge_expired(now);
        }
        while self.slots.len() >= self.max_entries {
            let Some((_, oldest)) = self.by_age.pop_first() else {
                break;
            };
            self.remove(&oldest);
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        self.by_age.insert(seq, key.to_owned());
        self.by_expiry.insert((expires_at, seq), key.to_owned());
        self.slots.insert(
            key.to_owned(),
            Slot {
                value,
                expires_at,
                seq,
            },
        );
    }

    /// Moves the expiry of a live entry; false when there is none.
    pub(crate) fn set_expiry(&mut self, key: &str, expires_at: Instant, now: Instant) -> bool {
        if self.get_mut(key, now).is_none() {
            return false;
        }
        let Some(slot) = self.slots.get_mut(key) else {
            return false;
        };
        self.by_expiry.remove(&(slot.expires_at, slot.seq));
        slot.expires_at = expires_at;
        self.by_expiry
            .insert((expires_at, slot.seq), key.to_owned());
        true
    }

    pub(crate) fn remove(&mut self, key: &str) -> Option<V> {
        let slot = self.slots.remove(key)?;
        self.by_age.remove(&slot.seq);
        self.by_expiry.remove(&(slot.expires_at, slot.seq));
        Some(slot.value)
    }

    fn purge_expired(&mut self, now: Instant) {
        while let Some(entry) = self.by_expiry.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let key = entry.remove();
            self.remove(&key);
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.slots.len()
    }
}

/// An [`ExpiringMap`] shared by the clones of one handle.
#[derive(Debug)]
pub(crate) struct SharedMap<V>(Arc<Mutex<ExpiringMap<V>>>);

impl<V> Clone for SharedMap<V> {
    fn clone(&self) -> Self {
        SharedMap(Arc::clone(&self.0))
    }
}

impl<V> SharedMap<V> {
    pub(crate) fn new(max_entries: usize) -> Self {
        SharedMap(Arc::new(Mutex::new(ExpiringMap::new(max_entries))))
    }

    /// The map, locked. A panic elsewhere while holding the lock leaves the map consistent
    /// (every method finishes its bookkeeping before returning), so poisoning is ignored.
    pub(crate) fn lock(&self) -> MutexGuard<'_, ExpiringMap<V>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_expire() {
        let mut map = ExpiringMap::new(10);
        let now = Instant::now();
        map.insert("a", 1, now + Duration::from_secs(1), now);
        assert_eq!(map.get("a", now), Some(&1));
        assert_eq!(map.get("a", now + Duration::from_secs(1)), None);
        assert_eq!(map.len(), 0, "an expired entry is removed when read");
    }

    #[test]
    fn a_full_map_evicts_expired_entries_before_live_ones() {
        let mut map = ExpiringMap::new(3);
        let now = Instant::now();
        map.insert("old-live", 1, now + Duration::from_secs(60), now);
        map.insert("short", 2, now + Duration::from_secs(1), now);
        map.insert("newer-live", 3, now + Duration::from_secs(60), now);
        let later = now + Duration::from_secs(2);
        map.insert("new", 4, later + Duration::from_secs(60), later);
        assert_eq!(map.get("old-live", later), Some(&1));
        assert_eq!(map.get("short", later), None);
        assert_eq!(map.get("new", later), Some(&4));
    }

    #[test]
    fn a_full_map_of_live_entries_evicts_the_oldest_write() {
        let mut map = ExpiringMap::new(2);
        let now = Instant::now();
        let expiry = now + Duration::from_secs(60);
        map.insert("a", 1, expiry, now);
        map.insert("b", 2, expiry, now);
        map.insert("a", 10, expiry, now);
        map.insert("c", 3, expiry, now);
        assert_eq!(map.get("b", now), None, "b was written longest ago");
        assert_eq!(map.get("a", now), Some(&10));
        assert_eq!(map.get("c", now), Some(&3));
        assert_eq!(map.len(), 2);
    }

    #[test]
    fn set_expiry_moves_only_live_entries() {
        let mut map = ExpiringMap::new(4);
        let now = Instant::now();
        map.insert("a", 1, now + Duration::from_secs(1), now);
        assert!(map.set_expiry("a", now + Duration::from_secs(10), now));
        assert_eq!(map.get("a", now + Duration::from_secs(5)), Some(&1));
        assert!(!map.set_expiry("missing", now + Duration::from_secs(10), now));
    }
}

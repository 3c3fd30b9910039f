//! `min_uses` (NGINX's `proxy_cache_min_uses`): a response is stored only once its key has
//! been asked for that many times, so that one-off URLs (crawlers, unique query strings) do
//! not push popular objects out.
//!
//! Uses are counted in a count-min sketch, bounded in memory whatever the number of keys, and
//! halved every `window` observations so that old popularity fades. A collision can only make
//! a key look more used than it is, which stores it a little early: never a wrong answer.

use std::sync::Mutex;

use pingora::cache::CacheKey;
use pingora::cache::admission::{AdmissionPolicy, Decision};
use pingora::cache::key::CacheHashKey;

/// The uses a route asks for, carried in the cache key's extensions.
#[derive(Debug, Clone, Copy)]
pub struct MinUses(pub u32);

const ROWS: usize = 4;

#[derive(Debug)]
pub struct UseCounter {
    sketch: Mutex<Sketch>,
}

#[derive(Debug)]
struct Sketch {
    counters: Vec<[u8; ROWS]>,
    observed: u64,
    window: u64,
}

impl UseCounter {
    /// `width` counters per row (a power of two is not needed); halved every `window`.
    pub fn new(width: usize, window: u64) -> UseCounter {
        UseCounter {
            sketch: Mutex::new(Sketch {
                counters: vec![[0; ROWS]; width.max(64)],
                observed: 0,
                window: window.max(1),
            }),
        }
    }

    /// Counts one use of `hash` and returns the uses seen so far (at most 255).
    pub fn count(&self, hash: &[u8; 16]) -> u32 {
        let Ok(mut sketch) = self.sketch.lock() else {
            return u32::MAX;
        };
        let width = sketch.counters.len();
        let mut seen = u8::MAX;
        for row in 0..ROWS {
            let slot = slot(hash, row, width);
            let counter = &mut sketch.counters[slot][row];
            *counter = counter.saturating_add(1);
            seen = seen.min(*counter);
        }
        sketch.observed += 1;
        if sketch.observed >= sketch.window {
            sketch.observed = 0;
            for counters in &mut sketch.counters {
                for counter in counters.iter_mut() {
                    *counter /= 2;
                }
            }
        }
        u32::from(seen)
    }
}

/// Each row reads its own four bytes of the (already uniform) key hash.
fn slot(hash: &[u8; 16], row: usize, width: usize) -> usize {
    let bytes = [
        hash[row * 4],
        hash[row * 4 + 1],
        hash[row * 4 + 2],
        hash[row * 4 + 3],
    ];
    u32::from_le_bytes(bytes) as usize % width
}

impl AdmissionPolicy for UseCounter {
    fn observe(&self, key: &CacheKey) -> Decision {
        let required = key.extensions.get::<MinUses>().map_or(1, |uses| uses.0);
        if required <= 1 {
            return Decision::Ready { observed: 1 };
        }
        let observed = self.count(&key.combined_bin());
        if observed >= required {
            Decision::Ready { observed }
        } else {
            Decision::Defer { observed }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(uses: u32, text: &str) -> CacheKey {
        let mut key = CacheKey::new(text, "");
        key.extensions.insert(MinUses(uses));
        key
    }

    #[test]
    fn a_key_is_admitted_on_its_nth_use() {
        let counter = UseCounter::new(4096, 1_000_000);
        let key = key(3, "https://example.com/a");
        assert!(counter.observe(&key).is_deferred());
        assert!(counter.observe(&key).is_deferred());
        assert!(!counter.observe(&key).is_deferred());
        let other = self::key(3, "https://example.com/b");
        assert!(counter.observe(&other).is_deferred());
    }

    #[test]
    fn one_use_is_admitted_at_once_and_not_counted() {
        let counter = UseCounter::new(64, 10);
        assert!(!counter.observe(&key(1, "/x")).is_deferred());
        assert!(!counter.observe(&CacheKey::new("/y", "")).is_deferred());
    }

    #[test]
    fn old_uses_fade() {
        let counter = UseCounter::new(4096, 8);
        let hot = key(2, "https://example.com/hot");
        assert!(counter.observe(&hot).is_deferred());
        for n in 0..16 {
            counter.observe(&key(2, &format!("https://example.com/{n}")));
        }
        assert!(
            counter.observe(&hot).is_deferred(),
            "one use long ago no longer counts"
        );
    }
}

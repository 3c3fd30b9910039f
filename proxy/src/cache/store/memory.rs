//! The memory tier of a cache zone: TinyUFO (TinyLFU admission, S3-FIFO eviction) weighted by
//! each object's size, so that the bound is in bytes and one large object cannot push out
//! thousands of popular small ones without first being popular itself.
//!
//! TinyUFO cannot list what it holds, and purges by URL need to; `resident` mirrors its keys
//! with their URLs and is kept in step with every insertion, eviction and removal.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use pingora::http::ResponseHeader;
use tinyufo::TinyUfo;

use super::disk::{ObjectHead, ObjectKey};

/// TinyUFO weighs with 16 bits: the tier counts in KiB.
const WEIGHT_UNIT: u64 = 1024;

/// One complete stored response.
#[derive(Debug)]
pub struct MemoryObject {
    pub key: ObjectKey,
    pub head: ObjectHead,
    /// The response header `head` holds serialized, kept parsed: a hit clones it instead of
    /// decompressing and parsing it again.
    pub header: ResponseHeader,
    pub body: Bytes,
}

impl MemoryObject {
    fn size(&self) -> u64 {
        (self.body.len() + self.head.meta.0.len() + self.head.meta.1.len() + self.head.url.len())
            as u64
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MemoryStats {
    pub objects: u64,
    pub bytes: u64,
    pub evictions: u64,
}

pub struct MemoryTier {
    objects: TinyUfo<ObjectKey, Arc<MemoryObject>>,
    resident: Mutex<HashMap<ObjectKey, (Arc<str>, u64)>>,
    bytes: AtomicU64,
    evictions: AtomicU64,
}

impl std::fmt::Debug for MemoryTier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryTier")
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl MemoryTier {
    /// A tier holding at most `max_bytes`; `typical_object` sizes TinyUFO's bookkeeping.
    pub fn new(max_bytes: u64, typical_object: u64) -> MemoryTier {
        let limit = usize::try_from(max_bytes / WEIGHT_UNIT)
            .unwrap_or(usize::MAX)
            .max(1);
        let estimated = usize::try_from(max_bytes / typical_object.max(1))
            .unwrap_or(usize::MAX)
            .clamp(1024, 4 << 20);
        MemoryTier {
            objects: TinyUfo::new(limit, estimated),
            resident: Mutex::new(HashMap::new()),
            bytes: AtomicU64::new(0),
            evictions: AtomicU64::new(0),
        }
    }

    pub fn get(&self, key: &ObjectKey) -> Option<Arc<MemoryObject>> {
        self.objects.get(key)
    }

    /// Stores `object`, replacing any earlier one of its key. The insertion is forced past
    /// TinyLFU's admission: requests collapsed behind the one that fetched it look it up next,
    /// and a declined object would send them all to the origin again.
    pub fn put(&self, object: MemoryObject) {
        let key = object.key;
        self.remove(&key);
        let size = object.size();
        let weight = u16::try_from(size.div_ceil(WEIGHT_UNIT).max(1)).unwrap_or(u16::MAX);
        let url: Arc<str> = Arc::from(object.head.url.as_str());
        let object = Arc::new(object);
        if let Ok(mut resident) = self.resident.lock() {
            resident.insert(key, (url, size));
        }
        self.bytes.fetch_add(size, Ordering::Relaxed);
        let evicted = self.objects.force_put(key, object, weight);
        for gone in evicted {
            self.forget(&gone.data.key);
            if gone.data.key != key {
                self.evictions.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Removes the object of `key`; true when it was there.
    pub fn remove(&self, key: &ObjectKey) -> bool {
        let removed = self.objects.remove(key).is_some();
        self.forget(key);
        removed
    }

    fn forget(&self, key: &ObjectKey) {
        let size = self
            .resident
            .lock()
            .ok()
            .and_then(|mut resident| resident.remove(key))
            .map_or(0, |(_, size)| size);
        self.bytes.fetch_sub(size, Ordering::Relaxed);
    }

    /// The keys whose URL satisfies `matches`.
    pub fn keys_where(&self, matches: impl Fn(&str) -> bool) -> Vec<ObjectKey> {
        self.resident
            .lock()
            .map(|resident| {
                resident
                    .iter()
                    .filter(|(_, (url, _))| matches(url))
                    .map(|(key, _)| *key)
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn stats(&self) -> MemoryStats {
        MemoryStats {
            objects: self.resident.lock().map_or(0, |r| r.len() as u64),
            bytes: self.bytes.load(Ordering::Relaxed),
            evictions: self.evictions.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(id: u8, body_bytes: usize) -> MemoryObject {
        MemoryObject {
            key: [id; 16],
            head: ObjectHead {
                url: format!("https://example.com/{id}"),
                meta: (vec![1, 2, 3], vec![4, 5]),
            },
            header: ResponseHeader::build(200, None).expect("a 200 header"),
            body: Bytes::from(vec![id; body_bytes]),
        }
    }

    #[test]
    fn stored_objects_are_found_and_removed() {
        let tier = MemoryTier::new(1 << 20, 4096);
        tier.put(object(1, 1000));
        let found = tier.get(&[1; 16]).expect("stored");
        assert_eq!(found.body.len(), 1000);
        assert_eq!(tier.stats().objects, 1);
        assert!(tier.remove(&[1; 16]));
        assert!(!tier.remove(&[1; 16]));
        assert!(tier.get(&[1; 16]).is_none());
        assert_eq!(tier.stats(), MemoryStats::default());
    }

    #[test]
    fn the_bound_is_in_bytes() {
        let tier = MemoryTier::new(64 * 1024, 4096);
        for id in 0..40 {
            tier.put(object(id, 8 * 1024));
        }
        let stats = tier.stats();
        assert!(stats.bytes <= 64 * 1024 + 8 * 1024, "{stats:?}");
        assert!(stats.evictions > 0, "{stats:?}");
        assert!(stats.objects < 40);
        let listed = tier.keys_where(|_| true).len() as u64;
        assert_eq!(listed, stats.objects);
    }

    #[test]
    fn replacing_an_object_keeps_the_count_right() {
        let tier = MemoryTier::new(1 << 20, 4096);
        tier.put(object(7, 100));
        tier.put(object(7, 300));
        assert_eq!(tier.stats().objects, 1);
        assert_eq!(tier.get(&[7; 16]).map(|o| o.body.len()), Some(300));
    }

    #[test]
    fn purges_find_objects_by_url() {
        let tier = MemoryTier::new(1 << 20, 4096);
        tier.put(object(1, 10));
        tier.put(object(2, 10));
        let exact = tier.keys_where(|url| url == "https://example.com/2");
        assert_eq!(exact, vec![[2; 16]]);
        assert_eq!(
            tier.keys_where(|url| url.starts_with("https://example.com/"))
                .len(),
            2
        );
    }
}

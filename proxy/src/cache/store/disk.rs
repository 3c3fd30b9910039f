//! The disk tier of a cache zone: stored responses that outlive the memory tier and restarts,
//! like the zone NGINX's `proxy_cache_path` keeps on disk. The tier holds at most `max_size`
//! bytes of object files, removing the least recently used objects past it, and removes objects
//! nobody used for `inactive`. Bodies are streamed to disk as they come and read back in chunks
//! of at most 256 KiB.
//!
//! # Layout
//!
//! ```text
//! ZONE/tmp/<key hex>.<random>      objects being written; anything here at open is a leftover
//! ZONE/objects/ab/<32 hex>         the object: body, then a trailer with its head
//! ZONE/objects/ab/<32 hex>.head    optional: a newer head (after a 304) for that same body
//! ```
//!
//! `ab` is the key's first byte, so that no directory holds millions of files.
//!
//! # Object file
//!
//! The body comes first, because its length is known only at its end; a trailer follows,
//! all integers little-endian:
//!
//! ```text
//! magic "VFCACHE\0" | format version u32 | reserved u32 | key [16] | generation u64
//! | body length u64 | url length u32 | meta.0 length u32 | meta.1 length u32
//! | url | meta.0 | meta.1 | CRC-32C of all the trailer before it u32 | trailer length u64
//! ```
//!
//! The trailer length is the file's last 8 bytes, so a reader finds the trailer from the end.
//! A file is valid only when the magic, the version and the checksum match, the lengths add
//! up to the trailer length, and body length plus trailer length is the file's length. The
//! generation is random per written object. A `.head` file is exactly such a trailer alone,
//! and counts only when it carries the key, generation and body length of the object file.
//!
//! # Crash safety
//!
//! Every file is written under `tmp/`, `fsync`ed, and renamed into place; the rename
//! replaces a name at once, so `objects/` only ever names complete, synced files. A crash
//! leaves at most unnamed leftovers in `tmp/`, which `open` deletes. A file in `objects/`
//! that does not validate (cut short by something else, a disk error, an older or newer
//! format) is dropped, never served: at `open`, and again at each `read`, which checks the
//! trailer before handing out the body.
//!
//! A 304 replaces the head without copying the body: the new head goes to the `.head` file
//! (tmp, fsync, rename), stamped with the generation of the body it belongs to. Writing a
//! new body renames the object file first and only then deletes the `.head` file. A crash
//! between the two leaves a `.head` of the old generation next to the new body; it does not
//! match, so readers use the trailer's head and `open` deletes it. A crash in the middle of
//! a head update leaves the old `.head` (or none) in place: the object keeps an older but
//! matching head. So a body is never paired with a head written for another body.
//!
//! Each commit also syncs the directory, so a finished write, head update or removal is
//! durable once the call returns. Evictions do not: one undone by a power loss finds the
//! object again at the next `open`, which evicts it again if the zone is still over its size.
//!
//! # Concurrency
//!
//! The index (key to url, size, last use, generation, plus the LRU order) lives in memory
//! behind a mutex that is never held across an await. Renames and deletions of one key are
//! serialized by an async lock striped by key, so that the index and the files of a key
//! change together: a deletion never removes a newer object that a commit just renamed in.
//! Concurrent writers of one key each write their own temporary file; the last to finish
//! wins, and both are complete objects. Reader, removal and replacement only ever unlink or
//! rename files, never truncate them, so a reader that opened a file streams it to the end.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use tokio::io::{AsyncWriteExt, BufWriter};

/// A 16-byte key (Pingora's HashBinary): the combined hash of a cache key.
pub type ObjectKey = [u8; 16];

const MAGIC: [u8; 8] = *b"VFCACHE\0";
const FORMAT_VERSION: u32 = 1;
/// magic, version, reserved, key, generation, body length and the three head lengths.
const TRAILER_FIXED: usize = 8 + 4 + 4 + 16 + 8 + 8 + 4 + 4 + 4;
/// The checksum and the trailer length that end every trailer.
const TRAILER_CHECK: usize = 4 + 8;
/// A sanity bound on one object's head, so a corrupted length cannot make `open` allocate
/// gigabytes; Pingora's serialized headers are a few KiB.
const MAX_TRAILER: usize = 16 << 20;
/// The largest chunk `read_chunk` hands out: large enough that a megabyte body takes a few
/// trips to the blocking pool, small enough that many concurrent readers stay cheap.
const CHUNK: usize = 256 * 1024;
/// Upstream chunks are often a few KiB; coalescing them saves system calls.
const WRITE_BUFFER: usize = 64 * 1024;
/// Locks for the renames and deletions of keys; more stripes, fewer unrelated keys waiting.
const STRIPES: usize = 64;
const HEAD_SUFFIX: &str = ".head";
/// How stale the file time, which `open` takes as the last use, may get before a read
/// refreshes it: a restart then forgets at most this much of an object's recent use.
const MAX_TOUCH_INTERVAL: Duration = Duration::from_secs(60);

/// The bounds of one disk tier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiskLimits {
    /// Total bytes of all object files; over it, least recently used objects are removed.
    pub max_size: u64,
    /// Objects not read or written for this long are removed by `sweep_inactive`.
    pub inactive: Duration,
}

/// What went wrong on disk, with the file concerned and what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum DiskError {
    #[error(
        "cannot create the cache directory {}: {source}; give the proxy's user write access there or change the zone's path in [cache_zones.NAME]",
        path.display()
    )]
    CreateDir { path: PathBuf, source: io::Error },
    #[error(
        "cannot list the cache directory {}: {source}; give the proxy's user read access to it or change the zone's path in [cache_zones.NAME]",
        path.display()
    )]
    ReadDir { path: PathBuf, source: io::Error },
    #[error(
        "cannot read the cache file {}: {source}; check the disk holding the cache zone and the proxy's read access to it",
        path.display()
    )]
    Read { path: PathBuf, source: io::Error },
    #[error(
        "cannot write the cache file {}: {source}; check the free space on the disk holding the cache zone and the proxy's write access to it",
        path.display()
    )]
    Write { path: PathBuf, source: io::Error },
    #[error(
        "cannot remove the cache file {}: {source}; give the proxy's user write access to its directory",
        path.display()
    )]
    Remove { path: PathBuf, source: io::Error },
    #[error(
        "an object of {size} bytes or more does not fit the cache zone at {}, whose max_size is {max_size} bytes; raise the zone's max_size or lower its max_object_size below it",
        path.display()
    )]
    TooLarge {
        path: PathBuf,
        size: u64,
        max_size: u64,
    },
    #[error(
        "the cache key and metadata of an object would take {size} bytes in the cache zone at {}, over the {MAX_TRAILER} bytes an object's head may take; such responses are passed on uncached, trim their headers at the origin to cache them",
        path.display()
    )]
    HeadTooLarge { path: PathBuf, size: u64 },
    #[error(
        "the cache file {} holds only {found} of its {expected} body bytes: something other than the proxy cut it short; the object is dropped, check the disk if this recurs",
        path.display()
    )]
    Truncated {
        path: PathBuf,
        expected: u64,
        found: u64,
    },
    #[error(
        "cannot restrict the reads of {} to bytes {start}..{end} of its {body_len}-byte body; ask for a range that starts within the body and does not end before it starts",
        path.display()
    )]
    Range {
        path: PathBuf,
        start: u64,
        end: u64,
        body_len: u64,
    },
    #[error(
        "an earlier write to the cache file {} failed, so the object cannot be completed; drop this writer and store the response again",
        path.display()
    )]
    WriterFailed { path: PathBuf },
    #[error(
        "a disk task on {} did not complete: {source}; the proxy is shutting down, or this is a bug to report",
        path.display()
    )]
    Task {
        path: PathBuf,
        source: tokio::task::JoinError,
    },
}

/// What one stored object holds besides its body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectHead {
    /// The primary cache key text (e.g. "https|example.com|/path?x=1"), kept so that purges by URL and prefix can find the object.
    pub url: String,
    /// Pingora's serialized CacheMeta: two opaque byte strings.
    pub meta: (Vec<u8>, Vec<u8>),
}

/// Counters of one disk tier.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DiskStats {
    /// Objects in the index.
    pub objects: u64,
    /// Bytes of their files.
    pub bytes: u64,
    /// Objects removed to keep the tier within `max_size`, since `open`.
    pub evictions: u64,
}

/// The disk tier of one cache zone. Cloning is cheap and shares the tier.
#[derive(Clone)]
pub struct DiskTier {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for DiskTier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DiskTier")
            .field("path", &self.inner.root)
            .field("limits", &self.inner.limits)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

struct Inner {
    root: PathBuf,
    tmp: PathBuf,
    objects: PathBuf,
    limits: DiskLimits,
    touch_every: Duration,
    index: Mutex<Index>,
    stripes: Box<[tokio::sync::Mutex<()>]>,
    evictions: AtomicU64,
}

/// One indexed object.
#[derive(Debug, Clone)]
struct Entry {
    url: Arc<str>,
    generation: u64,
    body_len: u64,
    /// Length of the object file, body and trailer.
    object_file: u64,
    /// Length of the `.head` file, 0 without one.
    head_file: u64,
    last_used: SystemTime,
    /// The object file's modification time as last set, which `open` reads as the last use.
    touched: SystemTime,
    /// Position in the LRU order.
    tick: u64,
}

impl Entry {
    fn size(&self) -> u64 {
        self.object_file + self.head_file
    }
}

#[derive(Debug, Default)]
struct Index {
    entries: HashMap<ObjectKey, Entry>,
    /// Use counter to key, oldest first.
    lru: BTreeMap<u64, ObjectKey>,
    next_tick: u64,
    bytes: u64,
}

impl Index {
    /// Indexes `entry` as the most recently used, replacing any earlier entry of `key`.
    fn insert(&mut self, key: ObjectKey, mut entry: Entry) -> Option<Entry> {
        let old = self.remove(&key);
        entry.tick = self.next_tick;
        self.next_tick += 1;
        self.bytes += entry.size();
        self.lru.insert(entry.tick, key);
        self.entries.insert(key, entry);
        old
    }

    fn remove(&mut self, key: &ObjectKey) -> Option<Entry> {
        let entry = self.entries.remove(key)?;
        self.lru.remove(&entry.tick);
        self.bytes = self.bytes.saturating_sub(entry.size());
        Some(entry)
    }

    /// Marks `key` used now.
    fn touch(&mut self, key: &ObjectKey, now: SystemTime) -> Option<&mut Entry> {
        let entry = self.entries.get_mut(key)?;
        self.lru.remove(&entry.tick);
        entry.tick = self.next_tick;
        self.next_tick += 1;
        entry.last_used = now;
        self.lru.insert(entry.tick, *key);
        Some(entry)
    }

    /// Removes least recently used entries, except `keep`, until the bytes fit `max_size`.
    fn evict(&mut self, max_size: u64, keep: Option<&ObjectKey>) -> Vec<ObjectKey> {
        let mut victims = Vec::new();
        while self.bytes > max_size {
            let Some(victim) = self.lru.values().find(|key| Some(*key) != keep).copied() else {
                break;
            };
            self.remove(&victim);
            victims.push(victim);
        }
        victims
    }
}

impl Inner {
    fn index(&self) -> MutexGuard<'_, Index> {
        // Nothing panics while the index is half updated, so a poisoned one is still whole.
        self.index.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn stripe(&self, key: &ObjectKey) -> &tokio::sync::Mutex<()> {
        // `open` makes STRIPES of them.
        &self.stripes[usize::from(key[15]) % STRIPES]
    }

    fn fan_dir(&self, key: &ObjectKey) -> PathBuf {
        self.objects.join(format!("{:02x}", key[0]))
    }

    fn object_path(&self, key: &ObjectKey) -> PathBuf {
        self.fan_dir(key).join(hex(key))
    }

    fn head_path(&self, key: &ObjectKey) -> PathBuf {
        self.fan_dir(key).join(format!("{}{HEAD_SUFFIX}", hex(key)))
    }

    fn temp_path(&self, key: &ObjectKey) -> PathBuf {
        self.tmp
            .join(format!("{}.{}", hex(key), uuid::Uuid::new_v4().simple()))
    }

    /// Deletes the files of keys already taken out of the index, unless a commit has indexed
    /// the key again since (its files are then a newer object).
    async fn delete_unindexed(&self, keys: Vec<ObjectKey>) {
        for key in keys {
            let _stripe = self.stripe(&key).lock().await;
            if self.index().entries.contains_key(&key) {
                continue;
            }
            for path in [self.object_path(&key), self.head_path(&key)] {
                if let Err(err) = tokio::fs::remove_file(&path).await
                    && err.kind() != io::ErrorKind::NotFound
                {
                    tracing::warn!(path = %path.display(), error = %err, "A cache file could not be deleted; it is indexed again at the next start.");
                }
            }
        }
    }

    /// Drops the object of `key` if it is still the given generation: its files turned out
    /// torn or missing, and a newer object must not be deleted in its place.
    async fn discard(&self, key: &ObjectKey, generation: u64) {
        let _stripe = self.stripe(key).lock().await;
        {
            let mut index = self.index();
            if index.entries.get(key).map(|entry| entry.generation) != Some(generation) {
                return;
            }
            index.remove(key);
        }
        for path in [self.object_path(key), self.head_path(key)] {
            if let Err(err) = tokio::fs::remove_file(&path).await
                && err.kind() != io::ErrorKind::NotFound
            {
                tracing::warn!(path = %path.display(), error = %err, "A torn cache file could not be deleted; it is dropped again at the next start.");
            }
        }
    }
}

impl DiskTier {
    /// Opens (creating if needed) the zone directory, deletes leftovers of unfinished writes, and rebuilds the index from the files, dropping (and deleting) any object whose files are torn, truncated, of an unknown format version, or inconsistent. Logs with tracing::info! how many objects and bytes it found and how many it dropped. Blocking I/O is fine here (called once at startup).
    pub fn open(path: &Path, limits: DiskLimits) -> Result<DiskTier, DiskError> {
        let root = path.to_path_buf();
        let tmp = root.join("tmp");
        let objects = root.join("objects");
        for dir in [&root, &tmp, &objects] {
            create_dir(dir)?;
        }
        for byte in 0..=255u8 {
            create_dir(&objects.join(format!("{byte:02x}")))?;
        }
        // A fan-out directory lost to a power loss would take its objects along.
        for dir in [&objects, &root] {
            sync_dir(dir).map_err(|source| DiskError::Write {
                path: dir.clone(),
                source,
            })?;
        }

        let leftovers = clear_tmp(&tmp)?;
        let mut scan = Scan::default();
        for byte in 0..=255u8 {
            scan.directory(&objects.join(format!("{byte:02x}")), byte)?;
        }

        let mut found = scan.found;
        // Oldest first, so that the use counter follows the file times.
        found.sort_by_key(|(_, entry)| entry.last_used);
        let mut index = Index::default();
        for (key, entry) in found {
            index.insert(key, entry);
        }
        let inner = Inner {
            root,
            tmp,
            objects,
            limits,
            touch_every: (limits.inactive / 8).min(MAX_TOUCH_INTERVAL),
            index: Mutex::new(Index::default()),
            stripes: (0..STRIPES).map(|_| tokio::sync::Mutex::new(())).collect(),
            evictions: AtomicU64::new(0),
        };
        let found_objects = index.entries.len();
        let found_bytes = index.bytes;
        // The zone may have been given a smaller max_size since these were written.
        let victims = index.evict(limits.max_size, None);
        for key in &victims {
            for path in [inner.object_path(key), inner.head_path(key)] {
                if let Err(err) = fs::remove_file(&path)
                    && err.kind() != io::ErrorKind::NotFound
                {
                    tracing::warn!(path = %path.display(), error = %err, "A cache file over the zone's max_size could not be deleted.");
                }
            }
        }
        inner
            .evictions
            .store(victims.len() as u64, Ordering::Relaxed);
        *inner.index() = index;
        tracing::info!(
            path = %inner.root.display(),
            objects = found_objects,
            bytes = found_bytes,
            dropped = scan.dropped,
            stale_heads = scan.stale_heads,
            leftovers,
            evicted = victims.len(),
            "Opened the disk cache zone."
        );
        Ok(DiskTier {
            inner: Arc::new(inner),
        })
    }

    /// Looks the object up; None when absent. Marks it used (LRU and inactive).
    pub async fn read(&self, key: &ObjectKey) -> Result<Option<DiskHit>, DiskError> {
        let now = SystemTime::now();
        let (generation, touch) = {
            let mut index = self.inner.index();
            let touch_every = self.inner.touch_every;
            let Some(entry) = index.touch(key, now) else {
                return Ok(None);
            };
            let touch = now
                .duration_since(entry.touched)
                .is_ok_and(|since| since >= touch_every);
            if touch {
                entry.touched = now;
            }
            (entry.generation, touch)
        };
        let path = self.inner.object_path(key);
        let head_path = self.inner.head_path(key);
        let opened = {
            let (path, key) = (path.clone(), *key);
            blocking(&path.clone(), move || {
                open_object(&path, &head_path, &key, touch.then_some(now))
            })
            .await?
        };
        match opened {
            Opened::Found { file, trailer } => Ok(Some(DiskHit {
                file: Arc::new(file),
                path,
                key: *key,
                generation: trailer.generation,
                body_len: trailer.body_len,
                head: trailer.head,
                pos: 0,
                end: trailer.body_len,
                truncated: None,
                inner: Arc::clone(&self.inner),
            })),
            Opened::Missing => {
                self.inner.discard(key, generation).await;
                Ok(None)
            }
            Opened::Torn(why) => {
                tracing::warn!(path = %path.display(), reason = %why, "A cache file is torn; dropping it.");
                self.inner.discard(key, generation).await;
                Ok(None)
            }
        }
    }

    /// Starts writing an object; nothing is visible to `read` until `finish` succeeds.
    pub async fn writer(&self, key: ObjectKey, head: ObjectHead) -> Result<DiskWriter, DiskError> {
        let head_len = trailer_len(&head);
        if head_len > MAX_TRAILER as u64 {
            return Err(DiskError::HeadTooLarge {
                path: self.inner.root.clone(),
                size: head_len,
            });
        }
        if head_len > self.inner.limits.max_size {
            return Err(self.too_large(head_len));
        }
        let path = self.inner.temp_path(&key);
        let file = tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .await
            .map_err(|source| DiskError::Write {
                path: path.clone(),
                source,
            })?;
        Ok(DiskWriter {
            file: BufWriter::with_capacity(WRITE_BUFFER, file),
            tmp: TempPath(Some(path)),
            inner: Arc::clone(&self.inner),
            key,
            head,
            head_len,
            body_len: 0,
            failed: false,
        })
    }

    /// Replaces the head (a 304 freshened the headers) of an existing object atomically; false when absent.
    ///
    /// Also false when the object was replaced by a new one while the head was written: the
    /// head belonged to the old body, and the new object has a head of its own.
    pub async fn update_head(&self, key: &ObjectKey, head: ObjectHead) -> Result<bool, DiskError> {
        let Some((generation, body_len)) = self
            .inner
            .index()
            .entries
            .get(key)
            .map(|entry| (entry.generation, entry.body_len))
        else {
            return Ok(false);
        };
        let Some(bytes) = encode_trailer(key, generation, body_len, &head) else {
            return Err(DiskError::HeadTooLarge {
                path: self.inner.root.clone(),
                size: trailer_len(&head),
            });
        };
        let head_len = bytes.len() as u64;
        let mut tmp = TempPath(Some(self.inner.temp_path(key)));
        let tmp_path = tmp.path().to_path_buf();
        blocking(&tmp_path.clone(), move || {
            write_synced(&tmp_path, &bytes).map_err(|source| DiskError::Write {
                path: tmp_path.clone(),
                source,
            })
        })
        .await?;

        let stripe = self.inner.stripe(key).lock().await;
        let still = self
            .inner
            .index()
            .entries
            .get(key)
            .is_some_and(|entry| entry.generation == generation);
        if !still {
            return Ok(false);
        }
        let head_path = self.inner.head_path(key);
        let dir = self.inner.fan_dir(key);
        let from = tmp.path().to_path_buf();
        blocking(&head_path.clone(), move || {
            commit(&from, &head_path, None, &dir)
        })
        .await?;
        tmp.disarm();
        let victims = {
            let mut index = self.inner.index();
            let now = SystemTime::now();
            if let Some(mut entry) = index.entries.get(key).cloned() {
                entry.head_file = head_len;
                entry.url = Arc::from(head.url.as_str());
                entry.last_used = now;
                index.insert(*key, entry);
            }
            index.evict(self.inner.limits.max_size, Some(key))
        };
        drop(stripe);
        self.evicted(victims).await;
        Ok(true)
    }

    /// Removes the object; true when it was there.
    pub async fn remove(&self, key: &ObjectKey) -> Result<bool, DiskError> {
        let _stripe = self.inner.stripe(key).lock().await;
        let indexed = self.inner.index().remove(key).is_some();
        let object = self.inner.object_path(key);
        let head = self.inner.head_path(key);
        let dir = self.inner.fan_dir(key);
        let deleted = blocking(&object.clone(), move || {
            let mut deleted = false;
            for path in [&object, &head] {
                match fs::remove_file(path) {
                    Ok(()) => deleted = true,
                    Err(err) if err.kind() == io::ErrorKind::NotFound => {}
                    Err(source) => {
                        return Err(DiskError::Remove {
                            path: path.clone(),
                            source,
                        });
                    }
                }
            }
            // A purge undone by a power loss would serve what was purged.
            if deleted {
                sync_dir(&dir).map_err(|source| DiskError::Remove { path: dir, source })?;
            }
            Ok(deleted)
        })
        .await?;
        Ok(indexed || deleted)
    }

    /// The keys (with their url) whose url satisfies `matches` (for purges by exact URL or prefix).
    pub fn keys_where(&self, matches: impl Fn(&str) -> bool) -> Vec<ObjectKey> {
        self.inner
            .index()
            .entries
            .iter()
            .filter(|(_, entry)| matches(&entry.url))
            .map(|(key, _)| *key)
            .collect()
    }

    /// Removes objects unused for longer than `limits.inactive` as of `now`; returns how many.
    pub async fn sweep_inactive(&self, now: SystemTime) -> Result<usize, DiskError> {
        let inactive = self.inner.limits.inactive;
        let victims = {
            let mut index = self.inner.index();
            // The LRU order is the order of last use, so the sweep stops at the first
            // object still in use instead of visiting them all.
            let expired: Vec<ObjectKey> = index
                .lru
                .values()
                .map_while(|key| {
                    let entry = index.entries.get(key)?;
                    let idle = now.duration_since(entry.last_used).ok()?;
                    (idle > inactive).then_some(*key)
                })
                .collect();
            for key in &expired {
                index.remove(key);
            }
            expired
        };
        let count = victims.len();
        self.inner.delete_unindexed(victims).await;
        Ok(count)
    }

    /// The tier's counters now.
    pub fn stats(&self) -> DiskStats {
        let index = self.inner.index();
        DiskStats {
            objects: index.entries.len() as u64,
            bytes: index.bytes,
            evictions: self.inner.evictions.load(Ordering::Relaxed),
        }
    }

    async fn evicted(&self, victims: Vec<ObjectKey>) {
        if victims.is_empty() {
            return;
        }
        self.inner
            .evictions
            .fetch_add(victims.len() as u64, Ordering::Relaxed);
        self.inner.delete_unindexed(victims).await;
    }

    fn too_large(&self, size: u64) -> DiskError {
        DiskError::TooLarge {
            path: self.inner.root.clone(),
            size,
            max_size: self.inner.limits.max_size,
        }
    }
}

/// A stored object being read: its head, and its body chunk by chunk.
pub struct DiskHit {
    file: Arc<fs::File>,
    path: PathBuf,
    key: ObjectKey,
    generation: u64,
    head: ObjectHead,
    body_len: u64,
    /// Next body byte to read.
    pos: u64,
    /// End of the body range to read.
    end: u64,
    /// How many body bytes the file turned out to hold, once it turned out short.
    truncated: Option<u64>,
    inner: Arc<Inner>,
}

impl std::fmt::Debug for DiskHit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DiskHit")
            .field("path", &self.path)
            .field("url", &self.head.url)
            .field("body_len", &self.body_len)
            .field("pos", &self.pos)
            .field("end", &self.end)
            .finish_non_exhaustive()
    }
}

impl DiskHit {
    /// The object's head: its url and Pingora's metadata.
    pub fn head(&self) -> &ObjectHead {
        &self.head
    }

    /// The length of the whole body, whatever range `seek` set.
    pub fn body_len(&self) -> u64 {
        self.body_len
    }

    /// The next chunk of the body (up to `CHUNK`), None at the end. A body shorter on disk
    /// than recorded is an error, never a silently short answer.
    pub async fn read_chunk(&mut self) -> Result<Option<Bytes>, DiskError> {
        if let Some(found) = self.truncated {
            return Err(self.truncation(found));
        }
        if self.pos >= self.end {
            return Ok(None);
        }
        let want = usize::try_from(self.end - self.pos)
            .unwrap_or(CHUNK)
            .min(CHUNK);
        let mut chunk = vec![0; want];
        // Hits are mostly in the page cache: those bytes are copied here and now, without a
        // trip to the blocking pool, as long as the kernel can do it without waiting.
        let cached = read_cached(&self.file, &mut chunk, self.pos);
        let chunk = if cached == want {
            chunk
        } else {
            let (file, path, at) = (Arc::clone(&self.file), self.path.clone(), self.pos);
            // The buffer was allocated here, not on the blocking thread: an allocator's
            // per-thread heaps would otherwise grow on every thread of the pool.
            blocking(&self.path, move || {
                let mut filled = cached;
                while filled < want {
                    match file.read_at(&mut chunk[filled..], at + filled as u64) {
                        Ok(0) => break,
                        Ok(read) => filled += read,
                        Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                        Err(source) => return Err(DiskError::Read { path, source }),
                    }
                }
                chunk.truncate(filled);
                Ok(chunk)
            })
            .await?
        };
        if chunk.len() < want {
            // The trailer was checked at `read`, so the file was cut after it was opened.
            let found = self.pos + chunk.len() as u64;
            self.truncated = Some(found);
            self.inner.discard(&self.key, self.generation).await;
            return Err(self.truncation(found));
        }
        self.pos += want as u64;
        Ok(Some(Bytes::from(chunk)))
    }

    /// Restricts further reads to bytes [start, end) of the body (end None = to the end); for range requests. Errors when start > end or start > body_len.
    ///
    /// An end past the body is taken as the body's end, as Pingora's own storages do.
    pub fn seek(&mut self, start: u64, end: Option<u64>) -> Result<(), DiskError> {
        let requested_end = end.unwrap_or(self.body_len);
        if start > self.body_len || start > requested_end {
            return Err(DiskError::Range {
                path: self.path.clone(),
                start,
                end: requested_end,
                body_len: self.body_len,
            });
        }
        self.pos = start;
        self.end = requested_end.min(self.body_len);
        Ok(())
    }

    fn truncation(&self, found: u64) -> DiskError {
        DiskError::Truncated {
            path: self.path.clone(),
            expected: self.body_len,
            found,
        }
    }
}

/// An object being written. It becomes visible with `finish`; dropped before that, its
/// temporary file is deleted.
pub struct DiskWriter {
    file: BufWriter<tokio::fs::File>,
    tmp: TempPath,
    inner: Arc<Inner>,
    key: ObjectKey,
    head: ObjectHead,
    /// Length of the trailer that `finish` appends.
    head_len: u64,
    body_len: u64,
    failed: bool,
}

impl std::fmt::Debug for DiskWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DiskWriter")
            .field("tmp", &self.tmp.path())
            .field("url", &self.head.url)
            .field("body_len", &self.body_len)
            .field("failed", &self.failed)
            .finish_non_exhaustive()
    }
}

impl DiskWriter {
    /// Appends `data` to the body.
    ///
    /// Fails once the object can no longer fit the zone, rather than filling the disk with a
    /// body `finish` would refuse.
    pub async fn write(&mut self, data: Bytes) -> Result<(), DiskError> {
        if self.failed {
            return Err(self.writer_failed());
        }
        let body_len = self.body_len + data.len() as u64;
        let size = body_len + self.head_len;
        if size > self.inner.limits.max_size {
            self.failed = true;
            return Err(DiskError::TooLarge {
                path: self.inner.root.clone(),
                size,
                max_size: self.inner.limits.max_size,
            });
        }
        if let Err(source) = self.file.write_all(&data).await {
            self.failed = true;
            return Err(DiskError::Write {
                path: self.tmp.path().to_path_buf(),
                source,
            });
        }
        self.body_len = body_len;
        Ok(())
    }

    /// Completes the object: it becomes visible atomically (replacing any previous object of that key) and the tier evicts least recently used objects while it is over max_size. Returns the object's size on disk in bytes.
    pub async fn finish(self) -> Result<u64, DiskError> {
        if self.failed {
            return Err(self.writer_failed());
        }
        let DiskWriter {
            mut file,
            mut tmp,
            inner,
            key,
            head,
            body_len,
            ..
        } = self;
        let tier = DiskTier { inner };
        let generation = rand::random::<u64>();
        let Some(trailer) = encode_trailer(&key, generation, body_len, &head) else {
            return Err(DiskError::HeadTooLarge {
                path: tier.inner.root.clone(),
                size: trailer_len(&head),
            });
        };
        let object_file = body_len + trailer.len() as u64;
        if object_file > tier.inner.limits.max_size {
            return Err(tier.too_large(object_file));
        }
        let tmp_path = tmp.path().to_path_buf();
        let written = async {
            file.write_all(&trailer).await?;
            file.flush().await?;
            file.get_mut().sync_data().await
        }
        .await;
        written.map_err(|source| DiskError::Write {
            path: tmp_path.clone(),
            source,
        })?;
        drop(file);

        let stripe = tier.inner.stripe(&key).lock().await;
        let object = tier.inner.object_path(&key);
        let head_path = tier.inner.head_path(&key);
        let dir = tier.inner.fan_dir(&key);
        blocking(&object.clone(), move || {
            commit(&tmp_path, &object, Some(&head_path), &dir)
        })
        .await?;
        tmp.disarm();
        let victims = {
            let now = SystemTime::now();
            let mut index = tier.inner.index();
            index.insert(
                key,
                Entry {
                    url: Arc::from(head.url.as_str()),
                    generation,
                    body_len,
                    object_file,
                    head_file: 0,
                    last_used: now,
                    touched: now,
                    tick: 0,
                },
            );
            index.evict(tier.inner.limits.max_size, Some(&key))
        };
        drop(stripe);
        tier.evicted(victims).await;
        Ok(object_file)
    }

    fn writer_failed(&self) -> DiskError {
        DiskError::WriterFailed {
            path: self.tmp.path().to_path_buf(),
        }
    }
}

/// A temporary file that is deleted when dropped, unless renamed into place first.
#[derive(Debug)]
struct TempPath(Option<PathBuf>);

impl TempPath {
    fn path(&self) -> &Path {
        self.0.as_deref().unwrap_or(Path::new(""))
    }

    /// The file was renamed away: nothing is left to delete.
    fn disarm(&mut self) {
        self.0 = None;
    }
}

impl Drop for TempPath {
    fn drop(&mut self) {
        if let Some(path) = self.0.take()
            && let Err(err) = fs::remove_file(&path)
            && err.kind() != io::ErrorKind::NotFound
        {
            tracing::warn!(path = %path.display(), error = %err, "A temporary cache file could not be deleted; it is deleted at the next start.");
        }
    }
}

/// Runs blocking file work off the async threads.
async fn blocking<T: Send + 'static>(
    path: &Path,
    work: impl FnOnce() -> Result<T, DiskError> + Send + 'static,
) -> Result<T, DiskError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|source| DiskError::Task {
            path: path.to_path_buf(),
            source,
        })?
}

/// Reads into `buf` from `offset` what the page cache holds, without blocking on the disk
/// (`RWF_NOWAIT`); returns how many bytes it read, 0 when the kernel would have to wait or
/// cannot read this way. The caller reads the rest on a blocking thread.
fn read_cached(file: &fs::File, buf: &mut [u8], offset: u64) -> usize {
    let mut filled = 0;
    while filled < buf.len() {
        let mut slices = [io::IoSliceMut::new(&mut buf[filled..])];
        match rustix::io::preadv2(
            file,
            &mut slices,
            offset + filled as u64,
            rustix::io::ReadWriteFlags::NOWAIT,
        ) {
            Ok(0) | Err(_) => break,
            Ok(read) => filled += read,
        }
    }
    filled
}

/// Renames the synced temporary file `from` into place at `to`, deletes `stale` (the `.head`
/// of the body being replaced), and syncs the directory. Only a failed rename is an error:
/// after it, the object is in place whatever else fails.
fn commit(from: &Path, to: &Path, stale: Option<&Path>, dir: &Path) -> Result<(), DiskError> {
    fs::rename(from, to).map_err(|source| DiskError::Write {
        path: to.to_path_buf(),
        source,
    })?;
    if let Some(stale) = stale
        && let Err(err) = fs::remove_file(stale)
        && err.kind() != io::ErrorKind::NotFound
    {
        // Harmless to readers: its generation no longer matches.
        tracing::warn!(path = %stale.display(), error = %err, "A replaced cache head could not be deleted; it is deleted at the next start.");
    }
    if let Err(err) = sync_dir(dir) {
        tracing::warn!(path = %dir.display(), error = %err, "A cache directory could not be synced; its latest change may not survive a power loss.");
    }
    Ok(())
}

fn write_synced(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)?;
    file.write_all(bytes)?;
    file.sync_data()
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    fs::File::open(dir)?.sync_all()
}

fn create_dir(dir: &Path) -> Result<(), DiskError> {
    fs::create_dir_all(dir).map_err(|source| DiskError::CreateDir {
        path: dir.to_path_buf(),
        source,
    })
}

/// Deletes everything in `tmp/`: writes that a crash or a kill interrupted. Returns how many.
fn clear_tmp(tmp: &Path) -> Result<usize, DiskError> {
    let entries = fs::read_dir(tmp).map_err(|source| DiskError::ReadDir {
        path: tmp.to_path_buf(),
        source,
    })?;
    let mut count = 0;
    for entry in entries {
        let entry = entry.map_err(|source| DiskError::ReadDir {
            path: tmp.to_path_buf(),
            source,
        })?;
        let path = entry.path();
        let removed = match entry.file_type() {
            Ok(kind) if kind.is_dir() => fs::remove_dir_all(&path),
            _ => fs::remove_file(&path),
        };
        removed.map_err(|source| DiskError::Remove { path, source })?;
        count += 1;
    }
    Ok(count)
}

/// What `open` learns from the object directories.
#[derive(Debug, Default)]
struct Scan {
    found: Vec<(ObjectKey, Entry)>,
    /// Objects and unknown files deleted.
    dropped: usize,
    /// `.head` files deleted for not matching their object.
    stale_heads: usize,
}

impl Scan {
    fn directory(&mut self, dir: &Path, byte: u8) -> Result<(), DiskError> {
        let listing = fs::read_dir(dir).map_err(|source| DiskError::ReadDir {
            path: dir.to_path_buf(),
            source,
        })?;
        let mut bodies = Vec::new();
        let mut heads = HashSet::new();
        for entry in listing {
            let entry = entry.map_err(|source| DiskError::ReadDir {
                path: dir.to_path_buf(),
                source,
            })?;
            let path = entry.path();
            if entry.file_type().is_ok_and(|kind| kind.is_dir()) {
                tracing::warn!(path = %path.display(), "A directory the cache did not make is in its zone; leaving it alone.");
                continue;
            }
            let name = entry.file_name();
            let name = name.to_str().unwrap_or("");
            let (stem, is_head) = match name.strip_suffix(HEAD_SUFFIX) {
                Some(stem) => (stem, true),
                None => (name, false),
            };
            match parse_hex(stem) {
                Some(key) if key[0] == byte && is_head => {
                    heads.insert(key);
                }
                Some(key) if key[0] == byte => bodies.push(key),
                _ => {
                    // Only the cache writes here; anything else would count against nothing.
                    self.delete(&path);
                    self.dropped += 1;
                }
            }
        }
        for key in bodies {
            let object = dir.join(hex(&key));
            let head = dir.join(format!("{}{HEAD_SUFFIX}", hex(&key)));
            let has_head = heads.remove(&key);
            match inspect(&object, &key) {
                Ok(Ok((trailer, object_file, modified))) => {
                    let mut entry = Entry {
                        url: Arc::from(trailer.head.url.as_str()),
                        generation: trailer.generation,
                        body_len: trailer.body_len,
                        object_file,
                        head_file: 0,
                        last_used: modified,
                        touched: modified,
                        tick: 0,
                    };
                    if has_head {
                        match read_head_file(&head, &trailer) {
                            Ok(HeadFile::Valid(newer, len)) => {
                                entry.url = Arc::from(newer.url.as_str());
                                entry.head_file = len;
                            }
                            Ok(HeadFile::Absent) => {}
                            Ok(HeadFile::Stale(why)) => {
                                tracing::debug!(path = %head.display(), reason = %why, "Deleting a cache head that belongs to no stored body.");
                                self.delete(&head);
                                self.stale_heads += 1;
                            }
                            Err(err) => {
                                tracing::warn!(path = %head.display(), error = %err, "A cache head cannot be read; deleting it.");
                                self.delete(&head);
                                self.stale_heads += 1;
                            }
                        }
                    }
                    self.found.push((key, entry));
                }
                Ok(Err(why)) => {
                    tracing::warn!(path = %object.display(), reason = %why, "A cache file is torn; dropping it.");
                    self.drop_object(&object, &head);
                }
                Err(err) => {
                    tracing::warn!(path = %object.display(), error = %err, "A cache file cannot be read; dropping it.");
                    self.drop_object(&object, &head);
                }
            }
        }
        for key in heads {
            let head = dir.join(format!("{}{HEAD_SUFFIX}", hex(&key)));
            self.delete(&head);
            self.stale_heads += 1;
        }
        Ok(())
    }

    fn drop_object(&mut self, object: &Path, head: &Path) {
        self.delete(object);
        self.delete(head);
        self.dropped += 1;
    }

    fn delete(&self, path: &Path) {
        if let Err(err) = fs::remove_file(path)
            && err.kind() != io::ErrorKind::NotFound
        {
            tracing::warn!(path = %path.display(), error = %err, "A cache file could not be deleted.");
        }
    }
}

/// Validates the object file at `path`: its trailer, length and modification time.
fn inspect(
    path: &Path,
    key: &ObjectKey,
) -> io::Result<Result<(Trailer, u64, SystemTime), Invalid>> {
    let mut file = fs::File::open(path)?;
    let metadata = file.metadata()?;
    let len = metadata.len();
    let trailer = match read_trailer(&mut file, len)? {
        Ok(trailer) if trailer.key == *key => trailer,
        Ok(_) => return Ok(Err(Invalid::WrongKey)),
        Err(why) => return Ok(Err(why)),
    };
    let modified = metadata.modified().unwrap_or_else(|_| SystemTime::now());
    Ok(Ok((trailer, len, modified)))
}

enum Opened {
    Missing,
    Torn(Invalid),
    Found { file: fs::File, trailer: Trailer },
}

/// Opens an object for reading: the checked trailer, with the `.head` file's newer head
/// when it belongs to this body. `touch` refreshes the file time that `open` reads as the
/// last use.
fn open_object(
    path: &Path,
    head_path: &Path,
    key: &ObjectKey,
    touch: Option<SystemTime>,
) -> Result<Opened, DiskError> {
    let read_error = |source: io::Error| DiskError::Read {
        path: path.to_path_buf(),
        source,
    };
    let mut file = match fs::File::open(path) {
        Ok(file) => file,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(Opened::Missing),
        Err(err) => return Err(read_error(err)),
    };
    let len = file.metadata().map_err(read_error)?.len();
    let mut trailer = match read_trailer(&mut file, len).map_err(read_error)? {
        Ok(trailer) if trailer.key == *key => trailer,
        Ok(_) => return Ok(Opened::Torn(Invalid::WrongKey)),
        Err(why) => return Ok(Opened::Torn(why)),
    };
    match read_head_file(head_path, &trailer) {
        Ok(HeadFile::Valid(head, _)) => trailer.head = head,
        // A stale head is left for `open`: deleting it here could race a head update.
        Ok(HeadFile::Absent | HeadFile::Stale(_)) => {}
        Err(source) => {
            return Err(DiskError::Read {
                path: head_path.to_path_buf(),
                source,
            });
        }
    }
    if let Some(now) = touch
        && let Err(err) = file.set_modified(now)
    {
        tracing::debug!(path = %path.display(), error = %err, "The time of a cache file could not be refreshed.");
    }
    Ok(Opened::Found { file, trailer })
}

/// Why a file is not a valid object or head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Invalid {
    TooShort,
    BadLength,
    BadMagic,
    UnknownVersion(u32),
    BadChecksum,
    NotUtf8,
    WrongKey,
    WrongGeneration,
}

impl std::fmt::Display for Invalid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Invalid::TooShort => f.write_str("shorter than a trailer"),
            Invalid::BadLength => f.write_str("lengths disagree with the file's length"),
            Invalid::BadMagic => f.write_str("no trailer magic"),
            Invalid::UnknownVersion(version) => write!(f, "unknown format version {version}"),
            Invalid::BadChecksum => f.write_str("the trailer's checksum does not match"),
            Invalid::NotUtf8 => f.write_str("the url is not UTF-8"),
            Invalid::WrongKey => f.write_str("holds another key than its name"),
            Invalid::WrongGeneration => f.write_str("belongs to another body"),
        }
    }
}

/// A decoded trailer.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Trailer {
    key: ObjectKey,
    generation: u64,
    body_len: u64,
    head: ObjectHead,
}

fn trailer_len(head: &ObjectHead) -> u64 {
    (TRAILER_FIXED + head.url.len() + head.meta.0.len() + head.meta.1.len() + TRAILER_CHECK) as u64
}

/// The trailer of an object (or a `.head` file); None when the head is too large for it.
fn encode_trailer(
    key: &ObjectKey,
    generation: u64,
    body_len: u64,
    head: &ObjectHead,
) -> Option<Vec<u8>> {
    let total = usize::try_from(trailer_len(head)).ok()?;
    if total > MAX_TRAILER {
        return None;
    }
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(key);
    out.extend_from_slice(&generation.to_le_bytes());
    out.extend_from_slice(&body_len.to_le_bytes());
    for part in [head.url.as_bytes(), &head.meta.0, &head.meta.1] {
        out.extend_from_slice(&u32::try_from(part.len()).ok()?.to_le_bytes());
    }
    out.extend_from_slice(head.url.as_bytes());
    out.extend_from_slice(&head.meta.0);
    out.extend_from_slice(&head.meta.1);
    out.extend_from_slice(&crc32c(&out).to_le_bytes());
    out.extend_from_slice(&(total as u64).to_le_bytes());
    Some(out)
}

/// Decodes a whole trailer, checking everything that does not need the file around it.
fn decode_trailer(bytes: &[u8]) -> Result<Trailer, Invalid> {
    if bytes.len() < TRAILER_FIXED + TRAILER_CHECK {
        return Err(Invalid::TooShort);
    }
    let (content, check) = bytes.split_at(bytes.len() - TRAILER_CHECK);
    if u64_at(check, 4) != Some(bytes.len() as u64) {
        return Err(Invalid::BadLength);
    }
    if content.get(..8) != Some(&MAGIC[..]) {
        return Err(Invalid::BadMagic);
    }
    let version = u32_at(content, 8).ok_or(Invalid::TooShort)?;
    if version != FORMAT_VERSION {
        return Err(Invalid::UnknownVersion(version));
    }
    if u32_at(check, 0) != Some(crc32c(content)) {
        return Err(Invalid::BadChecksum);
    }
    let key: ObjectKey = content
        .get(16..32)
        .and_then(|key| key.try_into().ok())
        .ok_or(Invalid::TooShort)?;
    let generation = u64_at(content, 32).ok_or(Invalid::TooShort)?;
    let body_len = u64_at(content, 40).ok_or(Invalid::TooShort)?;
    let mut lens = [0usize; 3];
    for (at, len) in lens.iter_mut().enumerate() {
        let recorded = u32_at(content, 48 + 4 * at).ok_or(Invalid::TooShort)?;
        *len = usize::try_from(recorded).map_err(|_| Invalid::BadLength)?;
    }
    let [url_len, meta0_len, meta1_len] = lens;
    let variable = &content[TRAILER_FIXED..];
    if url_len + meta0_len + meta1_len != variable.len() {
        return Err(Invalid::BadLength);
    }
    let (url, rest) = variable.split_at(url_len);
    let (meta0, meta1) = rest.split_at(meta0_len);
    let url = String::from_utf8(url.to_vec()).map_err(|_| Invalid::NotUtf8)?;
    Ok(Trailer {
        key,
        generation,
        body_len,
        head: ObjectHead {
            url,
            meta: (meta0.to_vec(), meta1.to_vec()),
        },
    })
}

/// Reads and checks the trailer at the end of an object file of `file_len` bytes. The outer
/// error is a failure to read; the inner one, a file that is not a valid object.
fn read_trailer(file: &mut fs::File, file_len: u64) -> io::Result<Result<Trailer, Invalid>> {
    if file_len < (TRAILER_FIXED + TRAILER_CHECK) as u64 {
        return Ok(Err(Invalid::TooShort));
    }
    let mut last = [0; 8];
    file.seek(SeekFrom::Start(file_len - 8))?;
    if let Err(err) = file.read_exact(&mut last) {
        return eof_is_torn(err);
    }
    let trailer_len = u64::from_le_bytes(last);
    if trailer_len < (TRAILER_FIXED + TRAILER_CHECK) as u64
        || trailer_len > MAX_TRAILER as u64
        || trailer_len > file_len
    {
        return Ok(Err(Invalid::BadLength));
    }
    let mut bytes = vec![0; usize::try_from(trailer_len).unwrap_or(0)];
    file.seek(SeekFrom::Start(file_len - trailer_len))?;
    if let Err(err) = file.read_exact(&mut bytes) {
        return eof_is_torn(err);
    }
    Ok(decode_trailer(&bytes).and_then(|trailer| {
        if trailer.body_len.checked_add(trailer_len) == Some(file_len) {
            Ok(trailer)
        } else {
            Err(Invalid::BadLength)
        }
    }))
}

/// A file that ends sooner than its metadata said was cut while being read.
fn eof_is_torn(err: io::Error) -> io::Result<Result<Trailer, Invalid>> {
    if err.kind() == io::ErrorKind::UnexpectedEof {
        Ok(Err(Invalid::TooShort))
    } else {
        Err(err)
    }
}

enum HeadFile {
    Absent,
    Stale(Invalid),
    /// The head and the file's length.
    Valid(ObjectHead, u64),
}

/// Reads the `.head` file at `path`; valid only when it belongs to the body of `object`.
fn read_head_file(path: &Path, object: &Trailer) -> io::Result<HeadFile> {
    let file = match fs::File::open(path) {
        Ok(file) => file,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(HeadFile::Absent),
        Err(err) => return Err(err),
    };
    let mut bytes = Vec::new();
    // One byte over the bound tells an oversized file from one at the bound.
    file.take(MAX_TRAILER as u64 + 1).read_to_end(&mut bytes)?;
    if bytes.len() > MAX_TRAILER {
        return Ok(HeadFile::Stale(Invalid::BadLength));
    }
    let len = bytes.len() as u64;
    Ok(match decode_trailer(&bytes) {
        Err(why) => HeadFile::Stale(why),
        Ok(head) if head.key != object.key => HeadFile::Stale(Invalid::WrongKey),
        Ok(head) if head.generation != object.generation || head.body_len != object.body_len => {
            HeadFile::Stale(Invalid::WrongGeneration)
        }
        Ok(head) => HeadFile::Valid(head.head, len),
    })
}

fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
    let raw = bytes.get(at..at.checked_add(4)?)?;
    raw.try_into().ok().map(u32::from_le_bytes)
}

fn u64_at(bytes: &[u8], at: usize) -> Option<u64> {
    let raw = bytes.get(at..at.checked_add(8)?)?;
    raw.try_into().ok().map(u64::from_le_bytes)
}

fn hex(key: &ObjectKey) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(32);
    for byte in key {
        out.push(char::from(DIGITS[usize::from(byte >> 4)]));
        out.push(char::from(DIGITS[usize::from(byte & 0xf)]));
    }
    out
}

/// The key a file name spells, in the lowercase hex `hex` writes.
fn parse_hex(name: &str) -> Option<ObjectKey> {
    let digits = name.as_bytes();
    if digits.len() != 32 {
        return None;
    }
    let value = |digit: u8| match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        _ => None,
    };
    let mut key = [0; 16];
    for (byte, pair) in key.iter_mut().zip(digits.chunks_exact(2)) {
        *byte = (value(pair[0])? << 4) | value(pair[1])?;
    }
    Some(key)
}

/// CRC-32C (Castagnoli), reflected, as in iSCSI and ext4.
const CRC32C_TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut index = 0;
    while index < 256 {
        let mut crc = index as u32;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0x82F6_3B78
            } else {
                crc >> 1
            };
            bit += 1;
        }
        table[index] = crc;
        index += 1;
    }
    table
};

fn crc32c(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in bytes {
        crc = CRC32C_TABLE[usize::from((crc as u8) ^ byte)] ^ (crc >> 8);
    }
    !crc
}

#[cfg(test)]
mod tests {
    use super::*;

    use tempfile::TempDir;

    const KIB: usize = 1024;

    fn limits(max_size: u64) -> DiskLimits {
        DiskLimits {
            max_size,
            inactive: Duration::from_secs(3600),
        }
    }

    fn key(id: u8) -> ObjectKey {
        let mut key = [id; 16];
        key[0] = id.wrapping_mul(37);
        key
    }

    fn head(id: u8) -> ObjectHead {
        ObjectHead {
            url: format!("https|example.com|/objects/{id}?x=1"),
            meta: (vec![id; 40], vec![id.wrapping_add(1); 7]),
        }
    }

    fn body(id: u8, len: usize) -> Vec<u8> {
        (0..len).map(|at| (at % 251) as u8 ^ id).collect()
    }

    fn open(dir: &TempDir, max_size: u64) -> DiskTier {
        DiskTier::open(dir.path(), limits(max_size)).expect("open")
    }

    /// Writes `data` in uneven pieces, so that writes and buffer boundaries do not line up.
    async fn store(tier: &DiskTier, id: u8, data: &[u8]) -> u64 {
        let mut writer = tier.writer(key(id), head(id)).await.expect("writer");
        for piece in data.chunks(10_007) {
            writer
                .write(Bytes::copy_from_slice(piece))
                .await
                .expect("write");
        }
        writer.finish().await.expect("finish")
    }

    async fn read_all(hit: &mut DiskHit) -> Vec<u8> {
        let mut out = Vec::new();
        while let Some(chunk) = hit.read_chunk().await.expect("chunk") {
            assert!(!chunk.is_empty() && chunk.len() <= CHUNK);
            out.extend_from_slice(&chunk);
        }
        out
    }

    async fn read_body(tier: &DiskTier, id: u8) -> Option<Vec<u8>> {
        let mut hit = tier.read(&key(id)).await.expect("read")?;
        Some(read_all(&mut hit).await)
    }

    fn files_in(dir: &Path) -> usize {
        fs::read_dir(dir).expect("list").count()
    }

    fn set_mtime(path: &Path, time: SystemTime) {
        fs::File::options()
            .write(true)
            .open(path)
            .expect("open for the time")
            .set_modified(time)
            .expect("set the time");
    }

    #[test]
    fn crc32c_matches_the_standard_check_value() {
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
    }

    #[test]
    fn keys_round_trip_through_file_names() {
        let key = key(201);
        assert_eq!(parse_hex(&hex(&key)), Some(key));
        assert_eq!(parse_hex(&hex(&key).to_uppercase()), None);
        assert_eq!(parse_hex("abc"), None);
    }

    #[tokio::test]
    async fn writes_and_reads_back_a_multi_chunk_body() {
        let dir = TempDir::new().expect("tempdir");
        let tier = open(&dir, 64 << 20);
        let data = body(1, 4 * CHUNK + 1000);
        let size = store(&tier, 1, &data).await;
        assert_eq!(size, data.len() as u64 + trailer_len(&head(1)));

        let mut hit = tier.read(&key(1)).await.expect("read").expect("found");
        assert_eq!(hit.head(), &head(1));
        assert_eq!(hit.body_len(), data.len() as u64);
        let mut chunks = 0;
        let mut read = Vec::new();
        while let Some(chunk) = hit.read_chunk().await.expect("chunk") {
            assert!(chunk.len() <= CHUNK);
            chunks += 1;
            read.extend_from_slice(&chunk);
        }
        assert_eq!(chunks, 5);
        assert_eq!(read, data);
        assert_eq!(hit.read_chunk().await.expect("after the end"), None);
        assert_eq!(
            tier.stats(),
            DiskStats {
                objects: 1,
                bytes: size,
                evictions: 0
            }
        );
    }

    #[tokio::test]
    async fn seek_restricts_reads_to_a_range() {
        let dir = TempDir::new().expect("tempdir");
        let tier = open(&dir, 64 << 20);
        let data = body(2, 300 * KIB);
        store(&tier, 2, &data).await;
        let mut hit = tier.read(&key(2)).await.expect("read").expect("found");
        let len = data.len() as u64;

        hit.seek(1000, Some(200_000)).expect("seek");
        assert_eq!(read_all(&mut hit).await, &data[1000..200_000]);
        hit.seek(len - 10, None).expect("seek to the tail");
        assert_eq!(read_all(&mut hit).await, &data[data.len() - 10..]);
        // Backwards after reading, and an end past the body taken as the body's end.
        hit.seek(5, Some(len + 1000)).expect("seek past the end");
        assert_eq!(read_all(&mut hit).await, &data[5..]);
        hit.seek(len, None).expect("an empty range at the end");
        assert_eq!(hit.read_chunk().await.expect("chunk"), None);
        hit.seek(7, Some(7)).expect("an empty range");
        assert_eq!(hit.read_chunk().await.expect("chunk"), None);

        assert!(matches!(
            hit.seek(len + 1, None),
            Err(DiskError::Range { .. })
        ));
        assert!(matches!(
            hit.seek(10, Some(5)),
            Err(DiskError::Range { .. })
        ));
    }

    #[tokio::test]
    async fn nothing_is_visible_before_finish() {
        let dir = TempDir::new().expect("tempdir");
        let tier = open(&dir, 64 << 20);
        let mut writer = tier.writer(key(3), head(3)).await.expect("writer");
        writer
            .write(Bytes::from(body(3, 1000)))
            .await
            .expect("write");
        assert!(tier.read(&key(3)).await.expect("read").is_none());
        assert_eq!(tier.stats().objects, 0);
        writer.finish().await.expect("finish");
        assert_eq!(read_body(&tier, 3).await, Some(body(3, 1000)));

        // Replacing: the old object is served until the new one is finished.
        let mut writer = tier.writer(key(3), head(3)).await.expect("writer");
        writer
            .write(Bytes::from(body(9, 500)))
            .await
            .expect("write");
        assert_eq!(read_body(&tier, 3).await, Some(body(3, 1000)));
        writer.finish().await.expect("finish");
        assert_eq!(read_body(&tier, 3).await, Some(body(9, 500)));
        assert_eq!(tier.stats().objects, 1);
    }

    #[tokio::test]
    async fn a_dropped_writer_leaves_no_temporary_file() {
        let dir = TempDir::new().expect("tempdir");
        let tier = open(&dir, 64 << 20);
        let tmp = dir.path().join("tmp");
        let mut writer = tier.writer(key(4), head(4)).await.expect("writer");
        writer
            .write(Bytes::from(body(4, 100 * KIB)))
            .await
            .expect("write");
        assert_eq!(files_in(&tmp), 1);
        drop(writer);
        assert_eq!(files_in(&tmp), 0);
        assert!(tier.read(&key(4)).await.expect("read").is_none());
        assert!(!tier.inner.object_path(&key(4)).exists());
    }

    #[tokio::test]
    async fn objects_survive_a_restart() {
        let dir = TempDir::new().expect("tempdir");
        let data = body(5, 150 * KIB);
        let size = {
            let tier = open(&dir, 64 << 20);
            store(&tier, 5, &data).await
        };
        let tier = open(&dir, 64 << 20);
        assert_eq!(tier.stats().objects, 1);
        assert_eq!(tier.stats().bytes, size);
        let mut hit = tier.read(&key(5)).await.expect("read").expect("found");
        assert_eq!(hit.head(), &head(5));
        assert_eq!(read_all(&mut hit).await, data);
        assert_eq!(tier.keys_where(|url| url == head(5).url), vec![key(5)]);
    }

    #[tokio::test]
    async fn a_torn_write_is_dropped_at_open() {
        let dir = TempDir::new().expect("tempdir");
        let (torn, intact) = {
            let tier = open(&dir, 64 << 20);
            store(&tier, 6, &body(6, 100 * KIB)).await;
            store(&tier, 7, &body(7, 10 * KIB)).await;
            (
                tier.inner.object_path(&key(6)),
                tier.inner.object_path(&key(7)),
            )
        };
        // A file cut in the middle, as a crash would leave one written in place.
        let file = fs::File::options()
            .write(true)
            .open(&torn)
            .expect("open the object");
        file.set_len(50 * KIB as u64).expect("truncate");
        drop(file);
        // A write a kill interrupted before its rename.
        fs::write(dir.path().join("tmp").join("leftover"), body(8, 5000)).expect("leftover");
        // A head whose object is gone, and a file that is no object at all.
        let orphan = tier_head_path(&dir, &key(9));
        fs::write(&orphan, b"half a head").expect("orphan head");
        let junk = intact.with_file_name("not-an-object");
        fs::write(&junk, b"junk").expect("junk");

        let tier = open(&dir, 64 << 20);
        assert!(tier.read(&key(6)).await.expect("read").is_none());
        assert!(!torn.exists());
        assert_eq!(files_in(&dir.path().join("tmp")), 0);
        assert!(!orphan.exists());
        assert!(!junk.exists());
        assert_eq!(read_body(&tier, 7).await, Some(body(7, 10 * KIB)));
        assert_eq!(tier.stats().objects, 1);
    }

    fn tier_head_path(dir: &TempDir, key: &ObjectKey) -> PathBuf {
        dir.path()
            .join("objects")
            .join(format!("{:02x}", key[0]))
            .join(format!("{}{HEAD_SUFFIX}", hex(key)))
    }

    fn flip_byte(path: &Path, from_end: u64) {
        let mut bytes = fs::read(path).expect("read the object");
        let at = bytes.len() - usize::try_from(from_end).expect("small");
        bytes[at] ^= 0x5a;
        // Written in place on purpose: the test plays a disk that corrupted the file.
        fs::write(path, bytes).expect("write the object");
    }

    #[tokio::test]
    async fn a_corrupted_trailer_is_treated_as_absent() {
        let dir = TempDir::new().expect("tempdir");
        let tier = open(&dir, 64 << 20);
        store(&tier, 10, &body(10, 20 * KIB)).await;
        store(&tier, 11, &body(11, 20 * KIB)).await;
        // The last byte of meta.1, covered by the checksum only.
        flip_byte(
            &tier.inner.object_path(&key(10)),
            (TRAILER_CHECK + 1) as u64,
        );
        assert!(tier.read(&key(10)).await.expect("read").is_none());
        assert!(!tier.inner.object_path(&key(10)).exists());
        assert_eq!(tier.stats().objects, 1);

        // The same found at open: a flipped url byte.
        drop(tier);
        let url_at = trailer_len(&head(11)) - TRAILER_FIXED as u64;
        flip_byte(&dir.path().join(object_rel(&key(11))), url_at);
        let tier = open(&dir, 64 << 20);
        assert_eq!(tier.stats().objects, 0);
        assert!(tier.read(&key(11)).await.expect("read").is_none());
        assert!(!dir.path().join(object_rel(&key(11))).exists());
    }

    fn object_rel(key: &ObjectKey) -> PathBuf {
        Path::new("objects")
            .join(format!("{:02x}", key[0]))
            .join(hex(key))
    }

    #[tokio::test]
    async fn an_unknown_format_version_is_dropped_at_open() {
        let dir = TempDir::new().expect("tempdir");
        {
            let tier = open(&dir, 64 << 20);
            store(&tier, 12, &body(12, 1000)).await;
        }
        let path = dir.path().join(object_rel(&key(12)));
        let mut bytes = fs::read(&path).expect("read");
        let start = bytes.len() - usize::try_from(trailer_len(&head(12))).expect("small");
        // A valid trailer in every other respect, so that only the version tells.
        bytes[start + 8..start + 12].copy_from_slice(&2u32.to_le_bytes());
        let crc_at = bytes.len() - TRAILER_CHECK;
        let crc = crc32c(&bytes[start..crc_at]);
        bytes[crc_at..crc_at + 4].copy_from_slice(&crc.to_le_bytes());
        fs::write(&path, bytes).expect("write");
        let tier = open(&dir, 64 << 20);
        assert_eq!(tier.stats().objects, 0);
        assert!(!path.exists());
    }

    #[tokio::test]
    async fn update_head_replaces_the_head_and_keeps_the_body() {
        let dir = TempDir::new().expect("tempdir");
        let data = body(13, 200 * KIB);
        let fresher = ObjectHead {
            url: "https|example.com|/renamed".to_string(),
            meta: (b"freshened".to_vec(), vec![1; 300]),
        };
        {
            let tier = open(&dir, 64 << 20);
            let size = store(&tier, 13, &data).await;
            assert!(!tier.update_head(&key(14), head(14)).await.expect("absent"));
            assert!(
                tier.update_head(&key(13), fresher.clone())
                    .await
                    .expect("update")
            );
            let mut hit = tier.read(&key(13)).await.expect("read").expect("found");
            assert_eq!(hit.head(), &fresher);
            assert_eq!(read_all(&mut hit).await, data);
            assert_eq!(tier.stats().bytes, size + trailer_len(&fresher));
            assert_eq!(
                tier.keys_where(|url| url.ends_with("/renamed")),
                vec![key(13)]
            );
            assert_eq!(files_in(&dir.path().join("tmp")), 0);
        }
        let tier = open(&dir, 64 << 20);
        let mut hit = tier.read(&key(13)).await.expect("read").expect("found");
        assert_eq!(hit.head(), &fresher);
        assert_eq!(read_all(&mut hit).await, data);
    }

    #[tokio::test]
    async fn a_head_left_from_an_older_body_is_ignored() {
        let dir = TempDir::new().expect("tempdir");
        let old_head_file = {
            let tier = open(&dir, 64 << 20);
            store(&tier, 15, &body(15, 1000)).await;
            let fresher = ObjectHead {
                url: head(15).url,
                meta: (b"old body's".to_vec(), Vec::new()),
            };
            assert!(tier.update_head(&key(15), fresher).await.expect("update"));
            let saved = fs::read(tier.inner.head_path(&key(15))).expect("head file");
            // A new body replaces the old one and its head.
            store(&tier, 15, &body(16, 2000)).await;
            assert!(!tier.inner.head_path(&key(15)).exists());
            saved
        };
        // A crash between renaming the new body in and deleting the old head.
        let head_path = tier_head_path(&dir, &key(15));
        fs::write(&head_path, old_head_file).expect("put the old head back");
        let tier = open(&dir, 64 << 20);
        let mut hit = tier.read(&key(15)).await.expect("read").expect("found");
        assert_eq!(hit.head(), &head(15));
        assert_eq!(read_all(&mut hit).await, body(16, 2000));
        assert!(!head_path.exists());
    }

    /// The size of one test object of `len` body bytes.
    fn object_size(id: u8, len: usize) -> u64 {
        len as u64 + trailer_len(&head(id))
    }

    #[tokio::test]
    async fn least_recently_used_objects_are_evicted() {
        let dir = TempDir::new().expect("tempdir");
        let one = object_size(20, 10 * KIB);
        let tier = open(&dir, 2 * one + one / 2);
        store(&tier, 20, &body(20, 10 * KIB)).await;
        store(&tier, 21, &body(21, 10 * KIB)).await;
        assert!(read_body(&tier, 20).await.is_some());
        store(&tier, 22, &body(22, 10 * KIB)).await;

        assert!(tier.read(&key(21)).await.expect("read").is_none());
        assert!(!tier.inner.object_path(&key(21)).exists());
        assert_eq!(read_body(&tier, 20).await, Some(body(20, 10 * KIB)));
        assert_eq!(read_body(&tier, 22).await, Some(body(22, 10 * KIB)));
        let stats = tier.stats();
        assert_eq!(stats.objects, 2);
        assert_eq!(stats.evictions, 1);
        assert_eq!(stats.bytes, 2 * one);
    }

    #[tokio::test]
    async fn an_object_larger_than_max_size_is_refused() {
        let dir = TempDir::new().expect("tempdir");
        let tier = open(&dir, 64 * KIB as u64);
        store(&tier, 23, &body(23, KIB)).await;
        let mut writer = tier.writer(key(24), head(24)).await.expect("writer");
        let mut refused = None;
        for piece in body(24, 100 * KIB).chunks(16 * KIB) {
            if let Err(err) = writer.write(Bytes::copy_from_slice(piece)).await {
                refused = Some(err);
                break;
            }
        }
        assert!(matches!(refused, Some(DiskError::TooLarge { .. })));
        assert!(matches!(
            writer.finish().await,
            Err(DiskError::WriterFailed { .. })
        ));
        assert_eq!(files_in(&dir.path().join("tmp")), 0);
        assert!(!tier.inner.object_path(&key(24)).exists());
        // The smaller object was not pushed out to make room.
        assert_eq!(read_body(&tier, 23).await, Some(body(23, KIB)));
        assert_eq!(tier.stats().evictions, 0);

        let huge_head = ObjectHead {
            url: "x".to_string(),
            meta: (vec![0; 70 * KIB], Vec::new()),
        };
        assert!(matches!(
            tier.writer(key(25), huge_head).await,
            Err(DiskError::TooLarge { .. })
        ));
    }

    #[tokio::test]
    async fn reopening_with_a_smaller_max_size_evicts_the_oldest() {
        let dir = TempDir::new().expect("tempdir");
        let one = object_size(30, 4 * KIB);
        {
            let tier = open(&dir, 64 << 20);
            for id in 30..34 {
                store(&tier, id, &body(id, 4 * KIB)).await;
            }
        }
        let past = SystemTime::now() - Duration::from_secs(600);
        for (age, id) in (30..34u8).rev().enumerate() {
            let path = dir.path().join(object_rel(&key(id)));
            set_mtime(&path, past - Duration::from_secs(60 * age as u64));
        }
        // Object 30 is the oldest, then 31.
        let tier = open(&dir, 2 * one);
        assert_eq!(tier.stats().objects, 2);
        assert_eq!(tier.stats().evictions, 2);
        assert!(tier.read(&key(30)).await.expect("read").is_none());
        assert!(tier.read(&key(31)).await.expect("read").is_none());
        assert!(!dir.path().join(object_rel(&key(30))).exists());
        assert!(read_body(&tier, 33).await.is_some());
    }

    #[tokio::test]
    async fn sweep_removes_inactive_objects() {
        let dir = TempDir::new().expect("tempdir");
        let tier = open(&dir, 64 << 20);
        let inactive = tier.inner.limits.inactive;
        store(&tier, 40, &body(40, 1000)).await;
        store(&tier, 41, &body(41, 1000)).await;
        let now = SystemTime::now();
        assert_eq!(
            tier.sweep_inactive(now + inactive / 2)
                .await
                .expect("sweep"),
            0
        );
        assert_eq!(tier.stats().objects, 2);
        let later = now + inactive + Duration::from_secs(1);
        assert_eq!(tier.sweep_inactive(later).await.expect("sweep"), 2);
        assert_eq!(tier.stats(), DiskStats::default());
        assert!(!tier.inner.object_path(&key(40)).exists());
        assert!(tier.read(&key(41)).await.expect("read").is_none());
    }

    #[tokio::test]
    async fn reads_are_remembered_across_restarts() {
        let dir = TempDir::new().expect("tempdir");
        {
            let tier = open(&dir, 64 << 20);
            store(&tier, 42, &body(42, 1000)).await;
            store(&tier, 43, &body(43, 1000)).await;
        }
        // Both written two hours ago, longer than `inactive`.
        let written = SystemTime::now() - Duration::from_secs(7200);
        for id in [42, 43] {
            set_mtime(&dir.path().join(object_rel(&key(id))), written);
        }
        {
            let tier = open(&dir, 64 << 20);
            assert!(read_body(&tier, 42).await.is_some());
        }
        let tier = open(&dir, 64 << 20);
        assert_eq!(
            tier.sweep_inactive(SystemTime::now()).await.expect("sweep"),
            1
        );
        assert!(read_body(&tier, 42).await.is_some());
        assert!(read_body(&tier, 43).await.is_none());
    }

    #[tokio::test]
    async fn keys_where_finds_by_exact_url_and_by_prefix() {
        let dir = TempDir::new().expect("tempdir");
        let tier = open(&dir, 64 << 20);
        store(&tier, 50, &body(50, 10)).await;
        store(&tier, 51, &body(51, 10)).await;
        let mut writer = tier
            .writer(
                key(52),
                ObjectHead {
                    url: "https|other.example|/".to_string(),
                    meta: (Vec::new(), Vec::new()),
                },
            )
            .await
            .expect("writer");
        writer.write(Bytes::from_static(b"x")).await.expect("write");
        writer.finish().await.expect("finish");

        assert_eq!(tier.keys_where(|url| url == head(51).url), vec![key(51)]);
        let mut prefixed = tier.keys_where(|url| url.starts_with("https|example.com|/objects/"));
        prefixed.sort();
        let mut expected = vec![key(50), key(51)];
        expected.sort();
        assert_eq!(prefixed, expected);
        assert!(tier.keys_where(|url| url == "https|nowhere|/").is_empty());
    }

    #[tokio::test]
    async fn remove_returns_whether_the_object_was_there() {
        let dir = TempDir::new().expect("tempdir");
        let tier = open(&dir, 64 << 20);
        store(&tier, 60, &body(60, 1000)).await;
        assert!(tier.update_head(&key(60), head(61)).await.expect("update"));
        assert!(tier.remove(&key(60)).await.expect("remove"));
        assert!(!tier.remove(&key(60)).await.expect("remove again"));
        assert!(tier.read(&key(60)).await.expect("read").is_none());
        assert!(!tier.inner.object_path(&key(60)).exists());
        assert!(!tier.inner.head_path(&key(60)).exists());
        assert_eq!(tier.stats(), DiskStats::default());
    }

    #[tokio::test]
    async fn the_last_of_concurrent_writers_wins() {
        let dir = TempDir::new().expect("tempdir");
        let tier = open(&dir, 64 << 20);
        let first = body(70, 200 * KIB);
        let second = body(71, 150 * KIB);
        let mut a = tier.writer(key(70), head(70)).await.expect("writer");
        let mut b = tier.writer(key(70), head(70)).await.expect("writer");
        for (x, y) in first.chunks(16 * KIB).zip(second.chunks(16 * KIB)) {
            a.write(Bytes::copy_from_slice(x)).await.expect("write");
            b.write(Bytes::copy_from_slice(y)).await.expect("write");
        }
        for x in first.chunks(16 * KIB).skip(second.len().div_ceil(16 * KIB)) {
            a.write(Bytes::copy_from_slice(x)).await.expect("write");
        }
        let size_b = b.finish().await.expect("finish");
        assert_eq!(read_body(&tier, 70).await, Some(second.clone()));
        let size_a = a.finish().await.expect("finish");
        assert_eq!(read_body(&tier, 70).await, Some(first));
        assert_ne!(size_a, size_b);
        assert_eq!(tier.stats().objects, 1);
        assert_eq!(tier.stats().bytes, size_a);
        assert_eq!(files_in(&dir.path().join("tmp")), 0);
    }

    #[tokio::test]
    async fn a_reader_keeps_its_object_while_it_is_replaced_or_removed() {
        let dir = TempDir::new().expect("tempdir");
        let tier = open(&dir, 64 << 20);
        let data = body(80, 300 * KIB);
        store(&tier, 80, &data).await;
        let mut replaced = tier.read(&key(80)).await.expect("read").expect("found");
        let first = replaced.read_chunk().await.expect("chunk").expect("some");
        store(&tier, 80, &body(81, 10)).await;
        let mut removed = tier.read(&key(80)).await.expect("read").expect("found");
        assert!(tier.remove(&key(80)).await.expect("remove"));

        let mut rest = first.to_vec();
        rest.extend(read_all(&mut replaced).await);
        assert_eq!(rest, data);
        assert_eq!(read_all(&mut removed).await, body(81, 10));
    }

    #[tokio::test]
    async fn a_body_cut_short_under_a_reader_is_an_error() {
        let dir = TempDir::new().expect("tempdir");
        let tier = open(&dir, 64 << 20);
        store(&tier, 90, &body(90, 300 * KIB)).await;
        let mut hit = tier.read(&key(90)).await.expect("read").expect("found");
        fs::File::options()
            .write(true)
            .open(tier.inner.object_path(&key(90)))
            .expect("open")
            .set_len(100 * KIB as u64)
            .expect("truncate");
        let mut error = None;
        for _ in 0..10 {
            match hit.read_chunk().await {
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(err) => {
                    error = Some(err);
                    break;
                }
            }
        }
        assert!(
            matches!(error, Some(DiskError::Truncated { found, .. }) if found == 100 * KIB as u64),
            "{error:?}"
        );
        assert!(matches!(
            hit.read_chunk().await,
            Err(DiskError::Truncated { .. })
        ));
        assert!(tier.read(&key(90)).await.expect("read").is_none());
        assert_eq!(tier.stats().objects, 0);
    }

    #[test]
    fn error_messages_name_the_path_and_the_remedy() {
        let err = DiskError::CreateDir {
            path: PathBuf::from("/x/y"),
            source: io::Error::from(io::ErrorKind::PermissionDenied),
        };
        let text = err.to_string();
        assert!(text.contains("/x/y"), "{text}");
        assert!(text.contains("write access"), "{text}");
    }
}

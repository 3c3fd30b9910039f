//! Where a cache zone keeps its objects: a memory tier for small hot objects in front of an
//! optional disk tier, behind Pingora's `Storage` trait.
//!
//! Lookups try memory, then disk; a small object found on disk is promoted to memory. A fill
//! streams the body to the disk tier as it arrives and keeps a copy in memory only while it
//! stays under the zone's memory object size, so large bodies are never held whole. Objects
//! are stored under Pingora's combined key (primary slot or Vary variant); each carries the
//! normalised URL it answers, which purges by URL and by prefix match against.

pub mod disk;
pub mod memory;

use std::any::Any;
use std::sync::LazyLock;
use std::time::SystemTime;

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use pingora::cache::key::{CacheHashKey, CompactCacheKey};
use pingora::cache::storage::{
    HandleHit, HandleMiss, HitHandler, MissFinishType, MissHandler, PurgeOutcome, PurgeTarget,
    PurgeType,
};
use pingora::cache::trace::SpanHandle;
use pingora::cache::{CacheKey, CacheMeta, Storage};
use pingora::http::ResponseHeader;
use pingora::{Error, ErrorType, Result};

use crate::config::CacheZoneConfig;
use disk::{DiskHit, DiskLimits, DiskTier, DiskWriter, ObjectHead, ObjectKey};
use memory::{MemoryObject, MemoryStats, MemoryTier};

/// The URL an object answers, carried in the cache key's extensions from the phase that
/// built the key to the storage that writes the object.
#[derive(Debug, Clone)]
pub struct ObjectUrl(pub String);

/// Sizes of both tiers, for metrics and the admin listener.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ZoneStats {
    pub memory: MemoryStats,
    pub disk: Option<disk::DiskStats>,
}

/// One zone's storage.
pub struct ZoneStore {
    pub name: String,
    memory: MemoryTier,
    disk: Option<DiskTier>,
    memory_max_object_size: u64,
}

impl std::fmt::Debug for ZoneStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ZoneStore")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl ZoneStore {
    /// Opens the zone, reading back what its disk tier holds from an earlier run.
    pub fn open(config: &CacheZoneConfig) -> std::result::Result<ZoneStore, disk::DiskError> {
        let disk = match &config.path {
            Some(path) => Some(DiskTier::open(
                path,
                DiskLimits {
                    max_size: config.max_size,
                    inactive: config.inactive,
                },
            )?),
            None => None,
        };
        Ok(ZoneStore {
            name: config.name.clone(),
            memory: MemoryTier::new(config.memory_size, 16 * 1024),
            disk,
            memory_max_object_size: config.memory_max_object_size,
        })
    }

    /// Removes every object whose URL satisfies `matches`, from both tiers; how many.
    pub async fn purge_where(&self, matches: impl Fn(&str) -> bool) -> usize {
        let mut keys = self.memory.keys_where(&matches);
        if let Some(disk) = &self.disk {
            keys.extend(disk.keys_where(&matches));
        }
        keys.sort_unstable();
        keys.dedup();
        let mut removed = 0;
        for key in &keys {
            if self.remove(key).await {
                removed += 1;
            }
        }
        removed
    }

    /// Removes the primary slot of `key`: what an unsafe request to its URL invalidates. Its
    /// Vary variants go with it, as Pingora accepts a variant only when it is newer than the
    /// primary slot it was found through.
    pub async fn remove_primary(&self, key: &CacheKey) -> bool {
        self.remove(&key.primary_bin()).await
    }

    /// Removes objects unused for longer than the zone's `inactive`; how many.
    pub async fn sweep_inactive(&self, now: SystemTime) -> usize {
        let Some(disk) = &self.disk else {
            return 0;
        };
        match disk.sweep_inactive(now).await {
            Ok(removed) => removed,
            Err(err) => {
                tracing::warn!(zone = %self.name, error = %err, "Sweeping inactive objects failed.");
                0
            }
        }
    }

    pub fn stats(&self) -> ZoneStats {
        ZoneStats {
            memory: self.memory.stats(),
            disk: self.disk.as_ref().map(DiskTier::stats),
        }
    }

    async fn remove(&self, key: &ObjectKey) -> bool {
        let in_memory = self.memory.remove(key);
        let on_disk = match &self.disk {
            Some(disk) => disk.remove(key).await.unwrap_or_else(|err| {
                tracing::warn!(zone = %self.name, error = %err, "Removing a cached object failed.");
                false
            }),
            None => false,
        };
        in_memory || on_disk
    }

    /// A small object read from disk, whole, to be served and promoted to memory.
    async fn promote(
        &self,
        key: ObjectKey,
        header: ResponseHeader,
        mut hit: DiskHit,
    ) -> Result<HitHandler> {
        let mut body = BytesMut::with_capacity(usize::try_from(hit.body_len()).unwrap_or(0));
        while let Some(chunk) = hit.read_chunk().await.map_err(storage_error)? {
            body.extend_from_slice(&chunk);
        }
        let object = MemoryObject {
            key,
            head: hit.head().clone(),
            header,
            body: body.freeze(),
        };
        let body = object.body.clone();
        self.memory.put(object);
        Ok(ZoneHit::memory(body))
    }
}

fn storage_error(err: impl std::fmt::Display) -> Box<Error> {
    Error::explain(ErrorType::InternalError, format!("cache storage: {err}"))
}

fn object_key(key: &CacheKey) -> ObjectKey {
    key.combined_bin()
}

fn compact_object_key(key: &CompactCacheKey) -> ObjectKey {
    key.combined_bin()
}

/// The URL the request that built `key` asked for; the key's own text if it carries none.
fn object_url(key: &CacheKey) -> String {
    key.extensions
        .get::<ObjectUrl>()
        .map(|url| url.0.clone())
        .or_else(|| key.primary_key_str().map(str::to_string))
        .unwrap_or_default()
}

fn meta_of(head: &ObjectHead) -> Result<CacheMeta> {
    CacheMeta::deserialize(&head.meta.0, &head.meta.1)
}

/// A header of no fields in Pingora's serialized form: cheap to decode where the real header
/// is already at hand parsed. `None` if Pingora could not serialize it.
static EMPTY_HEADER: LazyLock<Option<Vec<u8>>> = LazyLock::new(|| {
    let header = ResponseHeader::build(200, Some(0)).ok()?;
    let meta = CacheMeta::new(SystemTime::UNIX_EPOCH, SystemTime::UNIX_EPOCH, 0, 0, header);
    meta.serialize().ok().map(|(_, header)| header)
});

/// The metadata of an object in memory: its internal part decoded, its header cloned.
fn memory_meta(object: &MemoryObject) -> Result<CacheMeta> {
    let Some(empty) = EMPTY_HEADER.as_ref() else {
        return meta_of(&object.head);
    };
    let mut meta = CacheMeta::deserialize(&object.head.meta.0, empty)?;
    *meta.response_header_mut() = object.header.clone();
    Ok(meta)
}

#[async_trait]
impl Storage for ZoneStore {
    async fn lookup(
        &'static self,
        key: &CacheKey,
        _trace: &SpanHandle,
    ) -> Result<Option<(CacheMeta, HitHandler)>> {
        let object_key = object_key(key);
        if let Some(object) = self.memory.get(&object_key) {
            let meta = memory_meta(&object)?;
            return Ok(Some((meta, ZoneHit::memory(object.body.clone()))));
        }
        let Some(disk) = &self.disk else {
            return Ok(None);
        };
        let Some(hit) = disk.read(&object_key).await.map_err(storage_error)? else {
            return Ok(None);
        };
        let meta = meta_of(hit.head())?;
        if hit.body_len() <= self.memory_max_object_size {
            let header = meta.response_header_copy();
            return Ok(Some((meta, self.promote(object_key, header, hit).await?)));
        }
        Ok(Some((meta, Box::new(ZoneHit::Disk(Box::new(hit))))))
    }

    async fn get_miss_handler(
        &'static self,
        key: &CacheKey,
        meta: &CacheMeta,
        _trace: &SpanHandle,
    ) -> Result<MissHandler> {
        let head = ObjectHead {
            url: object_url(key),
            meta: meta.serialize()?,
        };
        let object_key = object_key(key);
        let disk = match &self.disk {
            Some(disk) => Some(
                disk.writer(object_key, head.clone())
                    .await
                    .map_err(storage_error)?,
            ),
            None => None,
        };
        Ok(Box::new(ZoneFill {
            store: self,
            key: object_key,
            head,
            header: meta.response_header_copy(),
            disk,
            memory_copy: Some(BytesMut::new()),
            written: 0,
        }))
    }

    async fn purge(
        &'static self,
        target: PurgeTarget<'_>,
        _purge_type: PurgeType,
        _trace: &SpanHandle,
    ) -> Result<PurgeOutcome> {
        let key = compact_object_key(target.key());
        Ok(if self.remove(&key).await {
            PurgeOutcome::Purged(None)
        } else {
            PurgeOutcome::NotFound
        })
    }

    async fn update_meta(
        &'static self,
        key: &CacheKey,
        meta: &CacheMeta,
        _trace: &SpanHandle,
    ) -> Result<bool> {
        let object_key = object_key(key);
        let serialized = meta.serialize()?;
        let url = object_url(key);
        let mut updated = false;
        if let Some(object) = self.memory.get(&object_key) {
            self.memory.put(MemoryObject {
                key: object_key,
                head: ObjectHead {
                    url: object.head.url.clone(),
                    meta: serialized.clone(),
                },
                header: meta.response_header_copy(),
                body: object.body.clone(),
            });
            updated = true;
        }
        if let Some(disk) = &self.disk {
            let head = ObjectHead {
                url,
                meta: serialized,
            };
            updated |= disk
                .update_head(&object_key, head)
                .await
                .map_err(storage_error)?;
        }
        Ok(updated)
    }

    fn as_any(&self) -> &(dyn Any + Send + Sync + 'static) {
        self
    }
}

/// A hit: a body in memory (whole or a range of it), or streamed from the disk tier.
enum ZoneHit {
    Memory {
        body: Bytes,
        range: std::ops::Range<usize>,
        done: bool,
    },
    Disk(Box<DiskHit>),
}

impl ZoneHit {
    fn memory(body: Bytes) -> HitHandler {
        let range = 0..body.len();
        Box::new(ZoneHit::Memory {
            body,
            range,
            done: false,
        })
    }
}

#[async_trait]
impl HandleHit for ZoneHit {
    async fn read_body(&mut self) -> Result<Option<Bytes>> {
        match self {
            ZoneHit::Memory { done: true, .. } => Ok(None),
            ZoneHit::Memory { body, range, done } => {
                *done = true;
                Ok(Some(body.slice(range.clone())))
            }
            ZoneHit::Disk(hit) => hit.read_chunk().await.map_err(storage_error),
        }
    }

    async fn finish(
        self: Box<Self>,
        _storage: &'static (dyn Storage + Sync),
        _key: &CacheKey,
        _trace: &SpanHandle,
    ) -> Result<()> {
        Ok(())
    }

    fn can_seek(&self) -> bool {
        true
    }

    fn seek(&mut self, start: usize, end: Option<usize>) -> Result<()> {
        match self {
            ZoneHit::Memory { body, range, done } => {
                let len = body.len();
                if start >= len {
                    return Error::e_explain(
                        ErrorType::InternalError,
                        format!("range start {start} is past the body's {len} bytes"),
                    );
                }
                *range = start..end.map_or(len, |end| end.min(len));
                *done = false;
                Ok(())
            }
            ZoneHit::Disk(hit) => {
                let end = end.map(|end| end as u64);
                hit.seek(start as u64, end).map_err(storage_error)
            }
        }
    }

    fn as_any(&self) -> &(dyn Any + Send + Sync) {
        self
    }

    fn as_any_mut(&mut self) -> &mut (dyn Any + Send + Sync) {
        self
    }
}

/// A response being stored: streamed to disk, copied to memory while it is small enough.
struct ZoneFill {
    store: &'static ZoneStore,
    key: ObjectKey,
    head: ObjectHead,
    header: ResponseHeader,
    disk: Option<DiskWriter>,
    /// Dropped once the body outgrows the memory tier's object size.
    memory_copy: Option<BytesMut>,
    written: u64,
}

#[async_trait]
impl HandleMiss for ZoneFill {
    async fn write_body(&mut self, data: Bytes, _eof: bool) -> Result<()> {
        self.written += data.len() as u64;
        if self.written > self.store.memory_max_object_size {
            if self.disk.is_none() {
                return Error::e_explain(
                    ErrorType::InternalError,
                    format!(
                        "the response is over zone {:?}'s memory_max_object_size and the zone has no disk tier",
                        self.store.name
                    ),
                );
            }
            self.memory_copy = None;
        } else if let Some(copy) = &mut self.memory_copy {
            copy.extend_from_slice(&data);
        }
        if let Some(disk) = &mut self.disk {
            disk.write(data).await.map_err(storage_error)?;
        }
        Ok(())
    }

    async fn finish(self: Box<Self>) -> Result<MissFinishType> {
        let fill = *self;
        let mut size = fill.written as usize;
        if let Some(disk) = fill.disk {
            size =
                usize::try_from(disk.finish().await.map_err(storage_error)?).unwrap_or(usize::MAX);
        }
        if let Some(copy) = fill.memory_copy {
            fill.store.memory.put(MemoryObject {
                key: fill.key,
                head: fill.head,
                header: fill.header,
                body: copy.freeze(),
            });
        }
        Ok(MissFinishType::Created(size))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_memory_hit_rebuilds_the_stored_metadata() {
        let created = SystemTime::UNIX_EPOCH + Duration::from_secs(1_760_000_000);
        let mut header = ResponseHeader::build(203, None).expect("header");
        header
            .append_header("cache-control", "max-age=60, stale-if-error=30")
            .expect("field");
        header
            .append_header("X-Origin-Case", "kept")
            .expect("field");
        let mut meta = CacheMeta::new(created + Duration::from_secs(60), created, 5, 30, header);
        meta.update_freshness(created + Duration::from_secs(120), 5, 30);
        meta.set_variance(*b"0123456789abcdef");
        let object = MemoryObject {
            key: [9; 16],
            head: ObjectHead {
                url: "https://example.com/a".to_owned(),
                meta: meta.serialize().expect("serialize"),
            },
            header: meta.response_header_copy(),
            body: Bytes::from_static(b"body"),
        };
        let decoded = meta_of(&object.head).expect("decode");
        let rebuilt = memory_meta(&object).expect("rebuild");
        for found in [&decoded, &rebuilt] {
            assert_eq!(found.fresh_until(), meta.fresh_until());
            assert_eq!(found.created(), created);
            assert_eq!(found.updated(), meta.updated());
            assert_eq!(found.variance(), meta.variance());
            assert_eq!(found.stale_if_error_sec(), 30);
            assert_eq!(found.response_header().status.as_u16(), 203);
        }
        assert_eq!(
            rebuilt.response_header().headers,
            decoded.response_header().headers
        );
        assert_eq!(
            rebuilt.serialize().expect("serialize").1,
            object.head.meta.1,
            "the header keeps its case and order"
        );
    }
}

//! The running cache zones: each zone's store, its cache lock (which collapses concurrent
//! misses of one key into one origin fetch) and its series, opened once at start and kept
//! across reloads — a store owns files and memory that a reload must not throw away.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, SystemTime};

use pingora::cache::lock::{CacheKeyLockImpl, CacheLock};

use super::admission::UseCounter;
use super::metrics::{CacheMetrics, ZoneSeries};
use super::store::ZoneStore;
use crate::config::CacheZoneConfig;

/// How long a fill may hold a key's lock before the requests waiting behind it give up on it
/// and go to the origin themselves: a stuck origin must not stall a URL forever.
pub const FILL_LOCK_AGE: Duration = Duration::from_secs(60);

/// How often objects unused for longer than their zone's `inactive` are removed.
const SWEEP_INTERVAL: Duration = Duration::from_secs(60);

pub struct Zone {
    pub config: CacheZoneConfig,
    pub store: &'static ZoneStore,
    pub lock: &'static CacheKeyLockImpl,
    pub series: ZoneSeries,
}

impl std::fmt::Debug for Zone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Zone")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
#[error("cache zone {zone:?}: {source}")]
pub struct ZoneError {
    zone: String,
    source: super::store::disk::DiskError,
}

/// Every zone of the configuration, by name.
pub struct CacheZones {
    zones: HashMap<String, Zone>,
    /// Counts uses for routes with `min_uses` above one.
    pub uses: &'static UseCounter,
}

impl std::fmt::Debug for CacheZones {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CacheZones")
            .field("zones", &self.zones)
            .finish_non_exhaustive()
    }
}

impl CacheZones {
    /// Opens every zone; a disk tier that cannot be opened stops the start with its reason.
    ///
    /// Stores live as long as the process (Pingora's `Storage` is `'static`); zones are opened
    /// once per process, so nothing accumulates.
    pub fn open(
        configs: &BTreeMap<String, CacheZoneConfig>,
        metrics: &CacheMetrics,
    ) -> Result<CacheZones, ZoneError> {
        let mut zones = HashMap::new();
        for (name, config) in configs {
            let store = ZoneStore::open(config).map_err(|source| ZoneError {
                zone: name.clone(),
                source,
            })?;
            let store: &'static ZoneStore = Box::leak(Box::new(store));
            let lock: &'static CacheKeyLockImpl = Box::leak(CacheLock::new_boxed(FILL_LOCK_AGE));
            let zone = Zone {
                config: config.clone(),
                store,
                lock,
                series: metrics.zone(name),
            };
            zone.series.observe(&store.stats());
            zones.insert(name.clone(), zone);
        }
        let uses: &'static UseCounter = Box::leak(Box::new(UseCounter::new(1 << 20, 10 << 20)));
        Ok(CacheZones { zones, uses })
    }

    pub fn get(&self, name: &str) -> Option<&Zone> {
        self.zones.get(name)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Zone> {
        self.zones.values()
    }

    /// The zones whose settings differ from `configs`: a reload cannot change them.
    pub fn changed_by(&self, configs: &BTreeMap<String, CacheZoneConfig>) -> Vec<String> {
        let mut changed: Vec<String> = configs
            .iter()
            .filter(|(name, config)| self.get(name).is_none_or(|zone| zone.config != **config))
            .map(|(name, _)| name.clone())
            .collect();
        changed.extend(
            self.zones
                .keys()
                .filter(|name| !configs.contains_key(*name))
                .cloned(),
        );
        changed.sort();
        changed
    }

    /// Removes the objects whose URL satisfies `matches` from every zone; how many.
    pub async fn purge_where(&self, matches: impl Fn(&str) -> bool + Copy) -> usize {
        let mut removed = 0;
        for zone in self.zones.values() {
            removed += zone.store.purge_where(matches).await;
        }
        removed
    }

    /// Publishes every zone's sizes to its series.
    pub fn observe(&self) {
        for zone in self.zones.values() {
            zone.series.observe(&zone.store.stats());
        }
    }

    /// Removes inactive objects every minute until `stop` resolves.
    pub async fn sweep_until(&self, stop: impl std::future::Future<Output = ()>) {
        tokio::pin!(stop);
        loop {
            tokio::select! {
                () = &mut stop => return,
                () = tokio::time::sleep(SWEEP_INTERVAL) => {}
            }
            for zone in self.zones.values() {
                let removed = zone.store.sweep_inactive(SystemTime::now()).await;
                if removed > 0 {
                    tracing::info!(zone = %zone.config.name, removed, "Removed inactive cached objects.");
                }
            }
            self.observe();
        }
    }
}

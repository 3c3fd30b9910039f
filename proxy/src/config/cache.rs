//! The cache sections: `[cache_zones.NAME]` (where and how much, like NGINX's
//! `proxy_cache_path`) and a route's `[routes.cache]` (whether and how its responses are cached,
//! like `proxy_cache`, `proxy_cache_key`, `proxy_cache_bypass`, `proxy_cache_min_uses`,
//! `proxy_cache_valid`, `proxy_cache_use_stale` and `proxy_cache_lock_timeout`).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use http::{HeaderName, StatusCode};
use serde::Deserialize;

use super::check::Checker;
use crate::cache::key::{KeyTemplate, QueryRule};
use crate::cache::policy::RouteRules;
use crate::cache::serving::StaleOverrides;

/// One cache zone: a memory tier and, with a path, a disk tier behind it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheZoneConfig {
    pub name: String,
    /// The disk tier's directory; `None` keeps the zone in memory only.
    pub path: Option<PathBuf>,
    /// Bound of the disk tier, in bytes of object files.
    pub max_size: u64,
    /// Bound of the memory tier, in bytes of stored bodies and headers.
    pub memory_size: u64,
    /// Objects not used for this long leave the disk tier (NGINX's `inactive`).
    pub inactive: Duration,
    /// Responses larger than this are passed on but not stored.
    pub max_object_size: u64,
    /// Objects up to this size are also kept in memory; larger ones live on disk only.
    pub memory_max_object_size: u64,
}

/// How one route uses a cache zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteCacheConfig {
    pub zone: String,
    pub key: KeyTemplate,
    /// Requests matching any of these go to the origin and are not stored.
    pub bypass: Vec<Bypass>,
    /// How many requests for a key are seen before its response is stored.
    pub min_uses: u32,
    pub rules: RouteRules,
    pub stale: StaleOverrides,
    /// How long requests wait for another request that is fetching the same key.
    pub lock_timeout: Duration,
}

/// A request property that makes the cache step aside (`proxy_cache_bypass` plus
/// `proxy_no_cache`): the request neither reads nor fills the cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bypass {
    /// A cookie of this name is present.
    Cookie(String),
    /// A header of this name is present.
    Header(HeaderName),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCacheZone {
    pub path: Option<PathBuf>,
    pub max_size: Option<String>,
    pub memory_size: Option<String>,
    pub inactive: Option<String>,
    pub max_object_size: Option<String>,
    pub memory_max_object_size: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRouteCache {
    pub zone: String,
    pub key_scheme: Option<bool>,
    pub key_host: Option<bool>,
    pub key_query: Option<RawKeyQuery>,
    #[serde(default)]
    pub key_headers: Vec<String>,
    #[serde(default)]
    pub bypass: Vec<String>,
    pub min_uses: Option<u32>,
    #[serde(default)]
    pub valid: BTreeMap<String, String>,
    pub store_set_cookie: Option<bool>,
    pub heuristic_max: Option<String>,
    pub stale_while_revalidate: Option<String>,
    pub stale_if_error: Option<String>,
    pub lock_timeout: Option<String>,
    pub targeted_fields: Option<Vec<String>>,
}

/// `key_query = "all"`, `"none"`, or the list of parameters that take part in the key.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum RawKeyQuery {
    Word(String),
    Names(Vec<String>),
}

/// The memory tier weighs objects in KiB with 16 bits, so one object is at most 64 MiB there.
const MEMORY_OBJECT_LIMIT: u64 = 64 * 1024 * 1024 - 1024;

/// Reads `10g`, `256m`, `64k` or a plain number of bytes.
pub(super) fn parse_size(text: &str) -> Option<u64> {
    let text = text.trim();
    let (digits, unit) = match text.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((at, _)) => text.split_at(at),
        None => (text, ""),
    };
    let number: u64 = digits.parse().ok()?;
    let factor: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        "t" | "tb" | "tib" => 1 << 40,
        _ => return None,
    };
    number.checked_mul(factor)
}

impl Checker {
    fn size(&mut self, location: &str, text: Option<String>, default: u64) -> u64 {
        let Some(text) = text else {
            return default;
        };
        parse_size(&text).unwrap_or_else(|| {
            self.problem(
                location,
                format!("{text:?} is not a size"),
                "write it like \"64k\", \"256m\" or \"10g\"",
            );
            default
        })
    }

    pub(super) fn cache_zones(
        &mut self,
        value: Option<toml::Value>,
    ) -> BTreeMap<String, CacheZoneConfig> {
        let mut zones = BTreeMap::new();
        let table = match value {
            None => return zones,
            Some(toml::Value::Table(table)) => table,
            Some(_) => {
                self.problem(
                    "cache_zones",
                    "expected tables",
                    "write each zone as [cache_zones.NAME]",
                );
                return zones;
            }
        };
        let mut paths = BTreeMap::new();
        for (name, value) in table {
            let at = format!("cache_zones.{name}");
            let Some(raw) = self.section::<RawCacheZone>(&at, Some(value)) else {
                continue;
            };
            let path = raw.path.map(|path| self.absolute(&path));
            if let Some(path) = &path
                && let Some(other) = paths.insert(path.clone(), name.clone())
            {
                self.problem(
                    format!("{at}.path"),
                    format!("zone {other:?} already uses {}", path.display()),
                    "give every zone a directory of its own",
                );
            }
            let memory_size = self.size(&format!("{at}.memory_size"), raw.memory_size, 64 << 20);
            let memory_max_object_size = self.size(
                &format!("{at}.memory_max_object_size"),
                raw.memory_max_object_size,
                (memory_size / 16).clamp(1, 4 << 20),
            );
            let max_object_size = self.size(
                &format!("{at}.max_object_size"),
                raw.max_object_size,
                if path.is_some() {
                    1 << 30
                } else {
                    memory_max_object_size
                },
            );
            if memory_max_object_size > MEMORY_OBJECT_LIMIT {
                self.problem(
                    format!("{at}.memory_max_object_size"),
                    format!("{memory_max_object_size} bytes is over the memory tier's 64 MiB per object"),
                    "keep larger objects on disk: give the zone a path and a smaller memory_max_object_size",
                );
            }
            if path.is_none() && max_object_size > memory_max_object_size {
                self.problem(
                    format!("{at}.max_object_size"),
                    "a zone without a path keeps objects in memory only, and max_object_size is over memory_max_object_size",
                    "lower max_object_size, or give the zone a path for a disk tier",
                );
            }
            let zone = CacheZoneConfig {
                name: name.clone(),
                path,
                max_size: self.size(&format!("{at}.max_size"), raw.max_size, 1 << 30),
                memory_size,
                inactive: self.duration(
                    &format!("{at}.inactive"),
                    raw.inactive,
                    Duration::from_secs(600),
                ),
                max_object_size,
                memory_max_object_size,
            };
            zones.insert(name, zone);
        }
        zones
    }

    pub(super) fn route_cache(
        &mut self,
        at: &str,
        raw: RawRouteCache,
        zones: &BTreeMap<String, CacheZoneConfig>,
    ) -> RouteCacheConfig {
        if !zones.contains_key(&raw.zone) {
            let known: Vec<&str> = zones.keys().map(String::as_str).collect();
            self.problem(
                format!("{at}.zone"),
                format!("there is no cache zone named {:?}", raw.zone),
                &if known.is_empty() {
                    format!("define [cache_zones.{}]", raw.zone)
                } else {
                    format!("use one of: {}", known.join(", "))
                },
            );
        }
        let query = match raw.key_query {
            None => QueryRule::All,
            Some(RawKeyQuery::Word(word)) if word == "all" => QueryRule::All,
            Some(RawKeyQuery::Word(word)) if word == "none" => QueryRule::Ignore,
            Some(RawKeyQuery::Names(names)) => QueryRule::Only(names),
            Some(RawKeyQuery::Word(word)) => {
                self.problem(
                    format!("{at}.key_query"),
                    format!("{word:?} is not a query rule"),
                    "write \"all\", \"none\", or the list of parameters, like [\"page\", \"lat\"]",
                );
                QueryRule::All
            }
        };
        let key_headers = raw
            .key_headers
            .iter()
            .filter_map(|name| self.header_name(&format!("{at}.key_headers"), name))
            .collect();
        let targeted_fields = match &raw.targeted_fields {
            Some(names) => names
                .iter()
                .filter_map(|name| self.header_name(&format!("{at}.targeted_fields"), name))
                .collect(),
            None => vec![HeaderName::from_static("cdn-cache-control")],
        };
        let bypass = raw
            .bypass
            .iter()
            .filter_map(|rule| self.bypass(&format!("{at}.bypass"), rule))
            .collect();
        let mut ttl_by_status = Vec::new();
        for (status, ttl) in raw.valid {
            let location = format!("{at}.valid.{status}");
            let code = status
                .parse::<u16>()
                .ok()
                .and_then(|code| StatusCode::from_u16(code).ok())
                .filter(|code| (200..600).contains(&code.as_u16()));
            let ttl = self.duration(&location, Some(ttl), Duration::ZERO);
            match code {
                Some(code) => ttl_by_status.push((code, ttl)),
                None => self.problem(
                    location,
                    format!("{status:?} is not a status code"),
                    "write it like \"200\" = \"10m\"",
                ),
            }
        }
        let min_uses = raw.min_uses.unwrap_or(1);
        if min_uses == 0 {
            self.problem(
                format!("{at}.min_uses"),
                "0 uses cannot be seen before storing",
                "write 1 to store on the first request, or more to store only what is asked again",
            );
        }
        RouteCacheConfig {
            zone: raw.zone,
            key: KeyTemplate {
                include_scheme: raw.key_scheme.unwrap_or(true),
                include_host: raw.key_host.unwrap_or(true),
                query,
                headers: key_headers,
            },
            bypass,
            min_uses: min_uses.max(1),
            rules: RouteRules {
                ttl_by_status,
                store_set_cookie: raw.store_set_cookie.unwrap_or(false),
                targeted_fields,
                heuristic_max: self.duration(
                    &format!("{at}.heuristic_max"),
                    raw.heuristic_max,
                    Duration::from_secs(86_400),
                ),
            },
            stale: StaleOverrides {
                while_revalidate: self.duration(
                    &format!("{at}.stale_while_revalidate"),
                    raw.stale_while_revalidate,
                    Duration::ZERO,
                ),
                if_error: self.duration(
                    &format!("{at}.stale_if_error"),
                    raw.stale_if_error,
                    Duration::ZERO,
                ),
            },
            lock_timeout: self.duration(
                &format!("{at}.lock_timeout"),
                raw.lock_timeout,
                Duration::from_secs(5),
            ),
        }
    }

    pub(super) fn header_name(&mut self, location: &str, name: &str) -> Option<HeaderName> {
        HeaderName::from_bytes(name.as_bytes()).ok().or_else(|| {
            self.problem(
                location,
                format!("{name:?} is not a header name"),
                "use token characters, like \"accept-language\"",
            );
            None
        })
    }

    fn bypass(&mut self, location: &str, rule: &str) -> Option<Bypass> {
        match rule.split_once(':') {
            Some(("cookie", name)) if !name.is_empty() => Some(Bypass::Cookie(name.to_string())),
            Some(("header", name)) => self.header_name(location, name).map(Bypass::Header),
            _ => {
                self.problem(
                    location,
                    format!("{rule:?} is not a bypass rule"),
                    "write \"cookie:NAME\" or \"header:NAME\", like \"cookie:session\"",
                );
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn sizes_read_with_their_units() {
        assert_eq!(parse_size("512"), Some(512));
        assert_eq!(parse_size("64k"), Some(65_536));
        assert_eq!(parse_size("256m"), Some(256 << 20));
        assert_eq!(parse_size("10g"), Some(10 << 30));
        assert_eq!(parse_size("2 GiB"), Some(2 << 30));
        assert_eq!(parse_size("ten"), None);
        assert_eq!(parse_size("5x"), None);
        assert_eq!(parse_size("99999999999999t"), None);
    }
}

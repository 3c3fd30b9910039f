//! Turns the raw sections into a [`ProxyConfig`], collecting every problem with where it is and
//! how to fix it.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::IpNet;
use serde::de::DeserializeOwned;

use super::cache::{CacheZoneConfig, RawRouteCache};
use super::raw::{RawAdmin, RawListener, RawRoute, RawServer, RawStaticSite, RawTls, RawUpstream};
use super::{
    AdminConfig, Balance, CertificateConfig, ClientAuth, ConfigProblems, DEFAULT_PID_FILE,
    DEFAULT_UPGRADE_SOCKET, HashKey, HealthCheckConfig, Limits, ListenerConfig, PeerConfig,
    ProxyConfig, RouteConfig, RouteTarget, ServerConfig, StaticSiteConfig, TlsConfig,
    UpstreamConfig, UpstreamProtocol,
};

/// One problem in the file: where, what, and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    /// A dotted path such as `upstreams.api.peers[0].address`; empty for the whole file.
    pub location: String,
    pub problem: String,
    pub fix: String,
}

impl ConfigProblem {
    pub fn new(
        location: impl Into<String>,
        problem: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        ConfigProblem {
            location: location.into(),
            problem: problem.into(),
            fix: fix.into(),
        }
    }
}

impl fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.location.is_empty() {
            write!(f, "{}: ", self.location)?;
        }
        write!(f, "{}", self.problem)?;
        if !self.fix.is_empty() {
            write!(f, "; {}", self.fix)?;
        }
        Ok(())
    }
}

/// Weights are relative; a bound keeps the hashing ring small.
const MAX_WEIGHT: u32 = 1000;

const SECTIONS: [&str; 11] = [
    "server",
    "admin",
    "listeners",
    "upstreams",
    "static_sites",
    "cache_zones",
    "routes",
    "fleet",
    "ip_sets",
    "auto_block",
    "security_log",
];

pub fn check(text: &str, path: &Path) -> Result<ProxyConfig, ConfigProblems> {
    let table: toml::Table = text.parse().map_err(|err: toml::de::Error| {
        let line = err
            .span()
            .map(|span| text[..span.start].lines().count().max(1));
        ConfigProblems(vec![ConfigProblem::new(
            line.map(|l| format!("{} line {l}", path.display()))
                .unwrap_or_else(|| path.display().to_string()),
            format!("invalid TOML: {}", err.message()),
            "correct the syntax",
        )])
    })?;
    let mut checker = Checker {
        problems: Vec::new(),
        base_dir: path.parent().map(Path::to_path_buf).unwrap_or_default(),
    };
    let config = checker.config(table);
    if checker.problems.is_empty() {
        Ok(config)
    } else {
        Err(ConfigProblems(checker.problems))
    }
}

pub(super) struct Checker {
    problems: Vec<ConfigProblem>,
    /// Relative file paths are relative to the configuration file.
    base_dir: PathBuf,
}

impl Checker {
    pub(super) fn problem(
        &mut self,
        location: impl Into<String>,
        problem: impl Into<String>,
        fix: &str,
    ) {
        self.problems
            .push(ConfigProblem::new(location, problem, fix));
    }

    fn config(&mut self, mut table: toml::Table) -> ProxyConfig {
        for key in table.keys() {
            if !SECTIONS.contains(&key.as_str()) {
                self.problems.push(ConfigProblem::new(
                    key.clone(),
                    "unknown section",
                    format!("the sections are {}", SECTIONS.join(", ")),
                ));
            }
        }
        let raw_server: RawServer = self
            .section("server", table.remove("server"))
            .unwrap_or_default();
        let raw_admin: RawAdmin = self
            .section("admin", table.remove("admin"))
            .unwrap_or_default();
        let server = self.server(raw_server);
        let admin = AdminConfig {
            listen: raw_admin
                .listen
                .and_then(|text| self.socket_address("admin.listen", &text))
                .unwrap_or(SocketAddr::from(([127, 0, 0, 1], 9180))),
            token: raw_admin
                .token_file
                .and_then(|path| self.secret("admin.token_file", &path)),
        };

        let upstreams = self.upstreams(table.remove("upstreams"));
        let listeners = self.listeners(table.remove("listeners"), &admin);
        let static_sites = self.static_sites(table.remove("static_sites"));
        let cache_zones = self.cache_zones(table.remove("cache_zones"));
        let targets = RouteTargets {
            upstreams: &upstreams,
            static_sites: &static_sites,
            cache_zones: &cache_zones,
        };
        let routes = self.routes(table.remove("routes"), &targets);
        // A [fleet] with problems of its own is reported as such, not again through its users.
        let fleet_written = table.contains_key("fleet");
        let fleet = self.fleet(table.remove("fleet"));
        let ip_sets = self.ip_sets(table.remove("ip_sets"));
        let auto_block = self.auto_block(table.remove("auto_block"));
        if !fleet_written {
            for (index, route) in routes.iter().enumerate() {
                if route.rate_limit.is_some_and(|limit| limit.shared) {
                    self.problem(
                        format!("routes[{index}].rate_limit.shared"),
                        "a limit shared by the fleet needs the fleet's Redis",
                        "add a [fleet] section with redis_url, or set shared = false",
                    );
                }
            }
        }
        let security_log = self.security_log(table.remove("security_log"));
        ProxyConfig {
            server,
            admin,
            listeners,
            upstreams,
            static_sites,
            cache_zones,
            routes,
            fleet,
            ip_sets,
            auto_block,
            security_log,
        }
    }

    /// Deserializes one section or element, recording its error.
    pub(super) fn section<T: DeserializeOwned>(
        &mut self,
        location: &str,
        value: Option<toml::Value>,
    ) -> Option<T> {
        let value = value?;
        match T::deserialize(value) {
            Ok(parsed) => Some(parsed),
            Err(err) => {
                self.problem(
                    location,
                    err.message().to_string(),
                    "see the example configurations in proxy/examples/",
                );
                None
            }
        }
    }

    fn array(&mut self, location: &str, value: Option<toml::Value>) -> Vec<toml::Value> {
        match value {
            None => Vec::new(),
            Some(toml::Value::Array(items)) => items,
            Some(_) => {
                self.problem(
                    location,
                    "expected an array of tables",
                    &format!("write each entry as [[{location}]]"),
                );
                Vec::new()
            }
        }
    }

    pub(super) fn duration(
        &mut self,
        location: &str,
        text: Option<String>,
        default: Duration,
    ) -> Duration {
        let Some(text) = text else {
            return default;
        };
        match humantime::parse_duration(&text) {
            Ok(duration) => duration,
            Err(err) => {
                self.problem(
                    location,
                    format!("{text:?} is not a duration ({err})"),
                    "write it like \"500ms\", \"5s\" or \"2m\"",
                );
                default
            }
        }
    }

    /// An `IP:port`, or `host:port` resolved now (NGINX resolves upstream names at start too).
    fn socket_address(&mut self, location: &str, text: &str) -> Option<SocketAddr> {
        if let Ok(address) = text.parse() {
            return Some(address);
        }
        match text.to_socket_addrs() {
            Ok(mut addresses) => match addresses.next() {
                Some(address) => Some(address),
                None => {
                    self.problem(location, format!("{text:?} resolves to no address"), "");
                    None
                }
            },
            Err(err) => {
                self.problem(
                    location,
                    format!("{text:?} is not an address: {err}"),
                    "write it as IP:PORT or HOST:PORT, like 127.0.0.1:8101",
                );
                None
            }
        }
    }

    /// Every address `host:port` resolves to now.
    fn resolve_all(&mut self, location: &str, text: &str) -> Vec<SocketAddr> {
        match text.to_socket_addrs() {
            Ok(addresses) => {
                let mut all: Vec<SocketAddr> = addresses.collect();
                all.sort();
                all.dedup();
                if all.is_empty() {
                    self.problem(location, format!("{text:?} resolves to no address"), "");
                }
                all
            }
            Err(err) => {
                self.problem(
                    location,
                    format!("{text:?} is not an address: {err}"),
                    "write it as IP:PORT or HOST:PORT, like 127.0.0.1:8101",
                );
                Vec::new()
            }
        }
    }

    /// A path as given, or relative to the configuration file.
    pub(super) fn absolute(&self, path: &Path) -> PathBuf {
        if path.is_absolute() {
            path.to_path_buf()
        } else {
            self.base_dir.join(path)
        }
    }

    /// The first line of a file holding a secret; refused when short enough to guess.
    fn secret(&mut self, location: &str, path: &Path) -> Option<String> {
        let path = self.absolute(path);
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                let secret = text.lines().next().unwrap_or("").trim().to_string();
                if secret.len() < 16 {
                    self.problem(
                        location,
                        format!("{} holds fewer than 16 characters", path.display()),
                        "write a long random token there, e.g. from `openssl rand -hex 32`",
                    );
                    return None;
                }
                Some(secret)
            }
            Err(err) => {
                self.problem(
                    location,
                    format!("cannot read {}: {err}", path.display()),
                    "give a file readable by the proxy's user",
                );
                None
            }
        }
    }

    fn file(&mut self, location: &str, path: &Path) -> PathBuf {
        let resolved = self.absolute(path);
        if !resolved.is_file() {
            self.problem(
                location,
                format!("{} does not exist or is not a file", resolved.display()),
                "give the path of a PEM file (relative paths are relative to the configuration file)",
            );
        }
        resolved
    }

    fn server(&mut self, raw: RawServer) -> ServerConfig {
        let threads = raw.threads.unwrap_or_else(|| {
            std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
        });
        if raw
            .max_request_header_bytes
            .is_some_and(|bytes| bytes < 1024)
        {
            self.problem(
                "server.max_request_header_bytes",
                "below 1024 bytes ordinary browsers fail",
                "use at least 8192; the default is 32768",
            );
        }
        if raw.max_uri_bytes.is_some_and(|bytes| bytes < 256) {
            self.problem(
                "server.max_uri_bytes",
                "below 256 bytes ordinary links fail",
                "use at least 2048; the default is 8192",
            );
        }
        if raw.max_request_headers.is_some_and(|count| count < 16) {
            self.problem(
                "server.max_request_headers",
                "below 16 header fields ordinary browsers fail",
                "use at least 50; the default is 100",
            );
        }
        if threads == 0 {
            self.problem("server.threads", "0 threads cannot serve", "set 1 or more");
        }
        let grace_period = self.duration(
            "server.grace_period",
            raw.grace_period,
            Duration::from_secs(5),
        );
        let websocket_close_spread = self.duration(
            "server.websocket_close_spread",
            raw.websocket_close_spread,
            grace_period / 2,
        );
        if !grace_period.is_zero() && websocket_close_spread >= grace_period {
            self.problem(
                "server.websocket_close_spread",
                format!(
                    "{} is not shorter than server.grace_period ({})",
                    humantime::format_duration(websocket_close_spread),
                    humantime::format_duration(grace_period)
                ),
                "make it shorter than the grace period (the default is half of it), so that every WebSocket is closed before the process exits",
            );
        }
        ServerConfig {
            threads: threads.max(1),
            work_stealing: raw.work_stealing.unwrap_or(true),
            grace_period,
            websocket_close_spread,
            graceful_shutdown_timeout: self.duration(
                "server.graceful_shutdown_timeout",
                raw.graceful_shutdown_timeout,
                Duration::from_secs(30),
            ),
            // A daemon works in `/`, so a relative path must not wait for the process to read it.
            upgrade_socket: raw.upgrade_socket.map_or_else(
                || PathBuf::from(DEFAULT_UPGRADE_SOCKET),
                |path| self.absolute(&path),
            ),
            pid_file: raw.pid_file.map_or_else(
                || PathBuf::from(DEFAULT_PID_FILE),
                |path| self.absolute(&path),
            ),
            access_log: raw.access_log.unwrap_or(true),
            resolve_interval: self.duration(
                "server.resolve_interval",
                raw.resolve_interval,
                Duration::from_secs(30),
            ),
            limits: Limits {
                max_request_header_bytes: raw.max_request_header_bytes.unwrap_or(32 * 1024),
                max_request_body_bytes: raw.max_request_body_bytes.unwrap_or(10 * 1024 * 1024),
                max_uri_bytes: raw.max_uri_bytes.unwrap_or(8 * 1024),
                // Browsers send 10 to 20; Pingora itself reads at most 256.
                max_request_headers: raw.max_request_headers.unwrap_or(100),
            },
        }
    }

    fn listeners(
        &mut self,
        value: Option<toml::Value>,
        admin: &AdminConfig,
    ) -> Vec<ListenerConfig> {
        let items = self.array("listeners", value);
        if items.is_empty() {
            self.problem(
                "listeners",
                "no listener is configured",
                "add at least one [[listeners]] with an address",
            );
        }
        let mut listeners = Vec::new();
        let mut addresses = BTreeSet::new();
        let mut names = BTreeSet::new();
        for (index, item) in items.into_iter().enumerate() {
            let at = format!("listeners[{index}]");
            let Some(raw) = self.section::<RawListener>(&at, Some(item)) else {
                continue;
            };
            let name = raw
                .name
                .clone()
                .unwrap_or_else(|| format!("listener-{index}"));
            if !names.insert(name.clone()) {
                self.problem(
                    format!("{at}.name"),
                    format!("{name:?} is used twice"),
                    "give each listener its own name",
                );
            }
            let Some(address) = self.socket_address(&format!("{at}.address"), &raw.address) else {
                continue;
            };
            if !addresses.insert(address) {
                self.problem(
                    format!("{at}.address"),
                    format!("{address} is used by another listener"),
                    "give each listener its own address",
                );
            }
            if address == admin.listen {
                self.problem(
                    format!("{at}.address"),
                    format!("{address} is the admin listener's address"),
                    "change admin.listen or this address",
                );
            }
            let trusted_proxies = raw
                .trusted_proxies
                .unwrap_or_default()
                .iter()
                .enumerate()
                .filter_map(|(i, text)| self.cidr(&format!("{at}.trusted_proxies[{i}]"), text))
                .collect();
            let tls = raw.tls.and_then(|tls| self.tls(&format!("{at}.tls"), tls));
            listeners.push(ListenerConfig {
                name,
                address,
                proxy_protocol: raw.proxy_protocol.unwrap_or(false),
                proxy_protocol_timeout: self.duration(
                    &format!("{at}.proxy_protocol_timeout"),
                    raw.proxy_protocol_timeout,
                    Duration::from_secs(5),
                ),
                handshake_timeout: self.duration(
                    &format!("{at}.handshake_timeout"),
                    raw.handshake_timeout,
                    Duration::from_secs(30),
                ),
                // Generous for a charger's upgrade request over a 2G link, short enough that a
                // client holding sockets open with a trickle of bytes gets few of them.
                client_header_timeout: self.duration(
                    &format!("{at}.client_header_timeout"),
                    raw.client_header_timeout,
                    Duration::from_secs(20),
                ),
                client_body_timeout: self.duration(
                    &format!("{at}.client_body_timeout"),
                    raw.client_body_timeout,
                    Duration::from_secs(60),
                ),
                // High, because many chargers may share one address behind a carrier's NAT.
                max_connections_per_ip: raw.max_connections_per_ip.unwrap_or(1024),
                trusted_proxies,
                h2c: raw.h2c.unwrap_or(false),
                redirect_https_port: raw.redirect_https_port,
                tls,
            });
        }
        listeners
    }

    fn cidr(&mut self, location: &str, text: &str) -> Option<IpNet> {
        if let Ok(net) = text.parse::<IpNet>() {
            return Some(net);
        }
        if let Ok(ip) = text.parse::<std::net::IpAddr>() {
            return Some(IpNet::from(ip));
        }
        self.problem(
            location,
            format!("{text:?} is not an IP network"),
            "write it like 10.0.0.0/16, 2001:db8::/32 or 10.0.0.7",
        );
        None
    }

    fn tls(&mut self, at: &str, raw: RawTls) -> Option<TlsConfig> {
        if raw.certificates.is_empty() {
            self.problem(
                format!("{at}.certificates"),
                "TLS needs at least one certificate",
                "add { cert = \"...pem\", key = \"...pem\" }",
            );
        }
        let certificates = raw
            .certificates
            .iter()
            .enumerate()
            .map(|(i, pair)| CertificateConfig {
                cert: self.file(&format!("{at}.certificates[{i}].cert"), &pair.cert),
                key: self.file(&format!("{at}.certificates[{i}].key"), &pair.key),
            })
            .collect();
        let client_auth = match raw.client_auth.as_deref().unwrap_or("off") {
            "off" => ClientAuth::Off,
            "optional" => ClientAuth::Optional,
            "required" => ClientAuth::Required,
            other => {
                self.problem(
                    format!("{at}.client_auth"),
                    format!("{other:?} is not a client authentication mode"),
                    "use \"off\", \"optional\" or \"required\"",
                );
                ClientAuth::Off
            }
        };
        let client_ca = raw
            .client_ca
            .map(|path| self.file(&format!("{at}.client_ca"), &path));
        if client_auth != ClientAuth::Off && client_ca.is_none() {
            self.problem(
                format!("{at}.client_ca"),
                "client certificates are asked for but no CA is given to verify them",
                "set client_ca to the PEM bundle of the CA that signs the clients' certificates",
            );
        }
        Some(TlsConfig {
            certificates,
            client_ca,
            client_auth,
            client_identity_header: raw
                .client_identity_header
                .unwrap_or_else(|| "X-Client-Cert-Subject".to_string()),
        })
    }

    fn upstreams(&mut self, value: Option<toml::Value>) -> BTreeMap<String, UpstreamConfig> {
        let mut upstreams = BTreeMap::new();
        let table = match value {
            None => return upstreams,
            Some(toml::Value::Table(table)) => table,
            Some(_) => {
                self.problem(
                    "upstreams",
                    "expected tables",
                    "write each pool as [upstreams.NAME]",
                );
                return upstreams;
            }
        };
        for (name, value) in table {
            let at = format!("upstreams.{name}");
            if let Some(raw) = self.section::<RawUpstream>(&at, Some(value))
                && let Some(upstream) = self.upstream(&at, &name, raw)
            {
                upstreams.insert(name, upstream);
            }
        }
        upstreams
    }

    fn upstream(&mut self, at: &str, name: &str, raw: RawUpstream) -> Option<UpstreamConfig> {
        if raw.peers.is_empty() {
            self.problem(
                format!("{at}.peers"),
                "the pool has no peers",
                "add peers = [{ address = \"10.0.1.10:8101\" }]",
            );
        }
        let mut peers = Vec::new();
        for (i, peer) in raw.peers.iter().enumerate() {
            let location = format!("{at}.peers[{i}]");
            let weight = peer.weight.unwrap_or(1);
            if weight == 0 {
                self.problem(
                    format!("{location}.weight"),
                    "a weight of 0 never receives traffic",
                    "remove the peer or give it a weight of 1 or more",
                );
            }
            if weight > MAX_WEIGHT {
                self.problem(
                    format!("{location}.weight"),
                    format!("{weight} is above the largest weight, {MAX_WEIGHT}"),
                    "weights are relative: scale them down",
                );
            }
            let (addresses, name) = match peer.address.parse::<SocketAddr>() {
                Ok(address) => (vec![address], None),
                Err(_) => (
                    self.resolve_all(&format!("{location}.address"), &peer.address),
                    Some(peer.address.clone()),
                ),
            };
            for address in addresses {
                if peers.iter().any(|p: &PeerConfig| p.address == address) {
                    self.problem(
                        format!("{location}.address"),
                        format!("{address} is listed twice"),
                        "list each peer once and use weight instead",
                    );
                }
                peers.push(PeerConfig {
                    address,
                    weight: weight.clamp(1, MAX_WEIGHT),
                    backup: peer.backup.unwrap_or(false),
                    name: name.clone(),
                });
            }
        }
        if !peers.is_empty() && peers.iter().all(|p| p.backup) {
            self.problem(
                format!("{at}.peers"),
                "every peer is a backup",
                "mark at least one peer as primary (backup = false)",
            );
        }
        let balance = match (
            raw.balance.as_deref().unwrap_or("round_robin"),
            raw.hash_key,
        ) {
            ("round_robin", None) => Balance::RoundRobin,
            ("least_conn", None) => Balance::LeastConnections,
            ("hash", Some(key)) => match parse_hash_key(&key) {
                Some(key) => Balance::Hash(key),
                None => {
                    self.problem(
                        format!("{at}.hash_key"),
                        format!("{key:?} is not a hash key"),
                        "use \"path_segment:N\", \"header:NAME\", \"client_ip\" or \"uri\"",
                    );
                    Balance::RoundRobin
                }
            },
            ("hash", None) => {
                self.problem(
                    format!("{at}.hash_key"),
                    "balance = \"hash\" needs a hash_key",
                    "for chargers: hash_key = \"path_segment:2\" hashes the id in /ocpp/{id}",
                );
                Balance::RoundRobin
            }
            (balance @ ("round_robin" | "least_conn"), Some(_)) => {
                self.problem(
                    format!("{at}.hash_key"),
                    format!("hash_key has no meaning with balance = {balance:?}"),
                    "remove it or set balance = \"hash\"",
                );
                Balance::RoundRobin
            }
            (other, _) => {
                self.problem(
                    format!("{at}.balance"),
                    format!("{other:?} is not a balancing method"),
                    "use \"round_robin\", \"least_conn\" or \"hash\"",
                );
                Balance::RoundRobin
            }
        };
        let health_check = raw.health_check.map(|hc| {
            let location = format!("{at}.health_check");
            let path = hc.path.unwrap_or_else(|| "/healthz".to_string());
            if !path.starts_with('/') {
                self.problem(
                    format!("{location}.path"),
                    format!("{path:?} does not start with /"),
                    "write the path like /healthz",
                );
            }
            let check = HealthCheckConfig {
                path,
                interval: self.duration(
                    &format!("{location}.interval"),
                    hc.interval,
                    Duration::from_secs(5),
                ),
                timeout: self.duration(
                    &format!("{location}.timeout"),
                    hc.timeout,
                    Duration::from_secs(2),
                ),
                rise: hc.rise.unwrap_or(2),
                fall: hc.fall.unwrap_or(3),
            };
            if check.rise == 0 || check.fall == 0 {
                self.problem(
                    &location,
                    "rise and fall must be 1 or more",
                    "the defaults are rise = 2, fall = 3",
                );
            }
            if check.interval.is_zero() {
                self.problem(
                    format!("{location}.interval"),
                    "the interval must not be zero",
                    "use something like \"5s\"",
                );
            }
            check
        });
        let protocol = match raw.protocol.as_deref().unwrap_or("http1") {
            "http1" => UpstreamProtocol::Http1,
            "http2" => UpstreamProtocol::Http2,
            other => {
                self.problem(
                    format!("{at}.protocol"),
                    format!("{other:?} is not an upstream protocol"),
                    "use \"http1\" or \"http2\"",
                );
                UpstreamProtocol::Http1
            }
        };
        let tries = raw.tries.unwrap_or(2);
        if tries == 0 {
            self.problem(
                format!("{at}.tries"),
                "0 tries never sends a request",
                "set 1 (no retry) or more",
            );
        }
        Some(UpstreamConfig {
            name: name.to_string(),
            peers,
            balance,
            health_check,
            max_fails: raw.max_fails.unwrap_or(1),
            fail_timeout: self.duration(
                &format!("{at}.fail_timeout"),
                raw.fail_timeout,
                Duration::from_secs(10),
            ),
            connect_timeout: self.duration(
                &format!("{at}.connect_timeout"),
                raw.connect_timeout,
                Duration::from_secs(5),
            ),
            read_timeout: self.duration(
                &format!("{at}.read_timeout"),
                raw.read_timeout,
                Duration::from_secs(60),
            ),
            write_timeout: self.duration(
                &format!("{at}.write_timeout"),
                raw.write_timeout,
                Duration::from_secs(60),
            ),
            idle_timeout: self.duration(
                &format!("{at}.idle_timeout"),
                raw.idle_timeout,
                Duration::from_secs(60),
            ),
            tries: tries.max(1),
            protocol,
        })
    }

    fn routes(
        &mut self,
        value: Option<toml::Value>,
        targets: &RouteTargets<'_>,
    ) -> Vec<RouteConfig> {
        let items = self.array("routes", value);
        let mut routes = Vec::new();
        let mut seen = BTreeSet::new();
        for (index, item) in items.into_iter().enumerate() {
            let at = format!("routes[{index}]");
            let Some(raw) = self.section::<RawRoute>(&at, Some(item)) else {
                continue;
            };
            if let Some(route) = self.route(&at, raw, targets) {
                if !seen.insert((route.host.clone(), route.path_prefix.clone())) {
                    self.problem(
                        &at,
                        format!(
                            "another route already has host {:?} and path {:?}",
                            route.host.as_deref().unwrap_or("*"),
                            route.path_prefix
                        ),
                        "merge the two routes",
                    );
                }
                routes.push(route);
            }
        }
        routes
    }

    fn route(
        &mut self,
        at: &str,
        raw: RawRoute,
        targets: &RouteTargets<'_>,
    ) -> Option<RouteConfig> {
        let RouteTargets {
            upstreams,
            static_sites,
            cache_zones,
        } = *targets;
        if !raw.path.starts_with('/') {
            self.problem(
                format!("{at}.path"),
                format!("{:?} does not start with /", raw.path),
                "write a path prefix like /api/ or /",
            );
        }
        let target = match (raw.upstream, raw.static_site) {
            (Some(upstream), None) => {
                if !upstreams.contains_key(&upstream) {
                    let known: Vec<_> = upstreams.keys().map(String::as_str).collect();
                    self.problem(
                        format!("{at}.upstream"),
                        format!("there is no upstream pool named {upstream:?}"),
                        &format!(
                            "define [upstreams.{upstream}] or use one of: {}",
                            known.join(", ")
                        ),
                    );
                }
                RouteTarget::Upstream(upstream)
            }
            (None, Some(site)) => {
                if !static_sites.contains_key(&site) {
                    self.problem(
                        format!("{at}.static"),
                        format!("there is no static site named {site:?}"),
                        &format!("define [static_sites.{site}] with its root directory"),
                    );
                }
                RouteTarget::Static(site)
            }
            _ => {
                self.problem(
                    at,
                    "a route needs exactly one of upstream or static",
                    "write upstream = \"POOL\" to proxy, or static = \"SITE\" to serve files",
                );
                return None;
            }
        };
        let header_rules =
            |checker: &mut Checker, location: &str, headers: BTreeMap<String, String>| {
                headers
                    .into_iter()
                    .filter(|(name, value)| {
                        let valid = http::HeaderName::from_bytes(name.as_bytes()).is_ok()
                            && http::HeaderValue::from_str(value).is_ok();
                        if !valid {
                            checker.problem(
                                format!("{location}.{name}"),
                                "not a valid header name and value",
                                "use token characters in the name and visible ASCII in the value",
                            );
                        }
                        valid
                    })
                    .collect::<Vec<_>>()
            };
        let set_request_headers = header_rules(
            self,
            &format!("{at}.set_request_headers"),
            raw.set_request_headers,
        );
        let set_response_headers = header_rules(
            self,
            &format!("{at}.set_response_headers"),
            raw.set_response_headers,
        );
        let cache_at = format!("{at}.cache");
        let cache = self
            .section::<RawRouteCache>(&cache_at, raw.cache)
            .map(|cache| self.route_cache(&cache_at, cache, cache_zones));
        if cache.is_some() && matches!(target, RouteTarget::Static(_)) {
            self.problem(
                &cache_at,
                "a static route serves files from disk already and is not cached",
                "remove [routes.cache] from this route",
            );
        }
        let methods = raw.methods.map(|methods| {
            methods
                .iter()
                .filter_map(|method| {
                    let parsed = method
                        .parse::<http::Method>()
                        .ok()
                        .filter(|parsed| parsed.as_str() == method.to_ascii_uppercase());
                    if parsed.is_none() {
                        self.problem(
                            format!("{at}.methods"),
                            format!("{method:?} is not an HTTP method"),
                            "write methods in capitals, like [\"GET\", \"POST\"]",
                        );
                    }
                    parsed
                })
                .collect::<Vec<_>>()
        });
        let waf_at = format!("{at}.waf");
        let waf = self
            .section::<super::waf::RawRouteWaf>(&waf_at, raw.waf)
            .map(|waf| self.route_waf(&waf_at, waf));
        if waf.is_some() && matches!(target, RouteTarget::Static(_)) {
            self.problem(
                &waf_at,
                "a static route serves files and passes nothing to an application to protect",
                "remove [routes.waf] from this route",
            );
        }
        let rate_limit_at = format!("{at}.rate_limit");
        let rate_limit = self
            .section::<super::ratelimit::RawRouteRateLimit>(&rate_limit_at, raw.rate_limit)
            .and_then(|limit| self.route_rate_limit(&rate_limit_at, limit));
        let host = raw
            .host
            .filter(|host| host != "*")
            .map(|host| host.to_ascii_lowercase());
        Some(RouteConfig {
            label: format!("{}{}", host.as_deref().unwrap_or("*"), raw.path),
            host,
            path_prefix: raw.path,
            target,
            websocket_idle_timeout: self.duration(
                &format!("{at}.websocket_idle_timeout"),
                raw.websocket_idle_timeout,
                Duration::from_secs(600),
            ),
            set_request_headers,
            set_response_headers,
            hide_response_headers: raw.hide_response_headers,
            cache,
            waf,
            methods,
            rate_limit,
        })
    }
}

/// What routes may point at.
#[derive(Clone, Copy)]
struct RouteTargets<'a> {
    upstreams: &'a BTreeMap<String, UpstreamConfig>,
    static_sites: &'a BTreeMap<String, StaticSiteConfig>,
    cache_zones: &'a BTreeMap<String, CacheZoneConfig>,
}

impl Checker {
    fn static_sites(&mut self, value: Option<toml::Value>) -> BTreeMap<String, StaticSiteConfig> {
        let mut sites = BTreeMap::new();
        let table = match value {
            None => return sites,
            Some(toml::Value::Table(table)) => table,
            Some(_) => {
                self.problem(
                    "static_sites",
                    "expected tables",
                    "write each site as [static_sites.NAME]",
                );
                return sites;
            }
        };
        for (name, value) in table {
            let at = format!("static_sites.{name}");
            let Some(raw) = self.section::<RawStaticSite>(&at, Some(value)) else {
                continue;
            };
            let root = if raw.root.is_absolute() {
                raw.root.clone()
            } else {
                self.base_dir.join(&raw.root)
            };
            if !root.is_dir() {
                self.problem(
                    format!("{at}.root"),
                    format!("{} is not a directory", root.display()),
                    "give the directory that holds the site's files",
                );
            }
            let mut cache_control: Vec<(String, String)> = Vec::new();
            for (prefix, value) in raw.cache_control {
                if !prefix.starts_with('/') || http::HeaderValue::from_str(&value).is_err() {
                    self.problem(
                        format!("{at}.cache_control.{prefix}"),
                        "expected a path prefix starting with / and a header value",
                        "write it like \"/assets/\" = \"public, max-age=31536000, immutable\"",
                    );
                    continue;
                }
                cache_control.push((prefix, value));
            }
            cache_control.sort_by_key(|(prefix, _)| std::cmp::Reverse(prefix.len()));
            if let Some(value) = &raw.default_cache_control
                && http::HeaderValue::from_str(value).is_err()
            {
                self.problem(
                    format!("{at}.default_cache_control"),
                    format!("{value:?} is not a header value"),
                    "use visible ASCII, like \"public, max-age=300\"",
                );
            }
            let index = raw.index.unwrap_or_else(|| "index.html".to_string());
            if index.contains('/') || index.is_empty() {
                self.problem(
                    format!("{at}.index"),
                    format!("{index:?} is not a file name"),
                    "use a plain file name like index.html",
                );
            }
            sites.insert(
                name.clone(),
                StaticSiteConfig {
                    name,
                    root,
                    index,
                    cache_control,
                    default_cache_control: raw
                        .default_cache_control
                        .unwrap_or_else(|| "public, max-age=300".to_string()),
                    compress: raw.compress.unwrap_or(true),
                },
            );
        }
        sites
    }
}

fn parse_hash_key(text: &str) -> Option<HashKey> {
    match text.split_once(':') {
        Some(("path_segment", n)) => n.parse().ok().filter(|n| *n >= 1).map(HashKey::PathSegment),
        Some(("header", name)) if http::HeaderName::from_bytes(name.as_bytes()).is_ok() => {
            Some(HashKey::Header(name.to_ascii_lowercase()))
        }
        None if text == "client_ip" => Some(HashKey::ClientIp),
        None if text == "uri" => Some(HashKey::Uri),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(text: &str) -> Vec<String> {
        match check(text, Path::new("/nonexistent/proxy.toml")) {
            Ok(_) => Vec::new(),
            Err(problems) => problems.0.iter().map(ToString::to_string).collect(),
        }
    }

    const MINIMAL: &str = r#"
[[listeners]]
address = "127.0.0.1:8080"

[upstreams.api]
peers = [{ address = "127.0.0.1:8101" }]

[[routes]]
path = "/"
upstream = "api"
"#;

    #[test]
    fn a_minimal_file_is_valid_with_defaults() {
        let config = check(MINIMAL, Path::new("proxy.toml")).expect("valid");
        assert_eq!(
            config.admin.listen,
            SocketAddr::from(([127, 0, 0, 1], 9180))
        );
        let api = config.upstream("api").expect("api pool");
        assert_eq!(api.balance, Balance::RoundRobin);
        assert_eq!((api.max_fails, api.tries), (1, 2));
        assert_eq!(
            config.routes[0].websocket_idle_timeout,
            Duration::from_secs(600)
        );
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let found = problems(
            r#"
[server]
grace_period = "soon"
websocket_close_spread = "10s"

[[listeners]]
address = "127.0.0.1:8080"
trusted_proxies = ["10.0.0.0/33"]
tls = { certificates = [{ cert = "missing.pem", key = "missing.key" }], client_auth = "required" }

[[listeners]]
address = "127.0.0.1:8080"
colour = "blue"

[upstreams.api]
peers = [{ address = "not an address" }, { address = "127.0.0.1:1", weight = 0 }]
balance = "hash"

[upstreams.ocpp]
peers = []
balance = "fastest"

[[routes]]
path = "api/"
upstream = "apis"

[caches]
"#,
        );
        let text = found.join("\n");
        for expected in [
            "server.grace_period",
            "server.websocket_close_spread",
            "listeners[0].trusted_proxies[0]",
            "listeners[0].tls.certificates[0].cert",
            "listeners[0].tls.certificates[0].key",
            "listeners[0].tls.client_ca",
            "listeners[1]: unknown field `colour`",
            "upstreams.api.peers[0].address",
            "upstreams.api.peers[1].weight",
            "upstreams.api.hash_key",
            "upstreams.ocpp.peers",
            "upstreams.ocpp.balance",
            "routes[0].path",
            "routes[0].upstream",
            "caches: unknown section",
        ] {
            assert!(text.contains(expected), "{expected} missing from:\n{text}");
        }
    }

    #[test]
    fn the_pid_file_and_upgrade_socket_default_to_the_runtime_directory() {
        let config = check(MINIMAL, Path::new("/etc/voltfleet/proxy.toml")).expect("valid");
        assert_eq!(
            config.server.pid_file,
            Path::new("/run/voltfleet-proxy/proxy.pid")
        );
        assert_eq!(
            config.server.upgrade_socket,
            Path::new("/run/voltfleet-proxy/upgrade.sock")
        );
    }

    #[test]
    fn a_relative_pid_file_and_upgrade_socket_are_beside_the_file() {
        let text = format!(
            "[server]\npid_file = \"run/proxy.pid\"\nupgrade_socket = \"upgrade.sock\"\n{MINIMAL}"
        );
        let config = check(&text, Path::new("/srv/edge/proxy.toml")).expect("valid");
        assert_eq!(config.server.pid_file, Path::new("/srv/edge/run/proxy.pid"));
        assert_eq!(
            config.server.upgrade_socket,
            Path::new("/srv/edge/upgrade.sock")
        );
    }

    #[test]
    fn hash_keys_parse() {
        assert_eq!(
            parse_hash_key("path_segment:2"),
            Some(HashKey::PathSegment(2))
        );
        assert_eq!(
            parse_hash_key("header:X-Charger"),
            Some(HashKey::Header("x-charger".into()))
        );
        assert_eq!(parse_hash_key("client_ip"), Some(HashKey::ClientIp));
        assert_eq!(parse_hash_key("path_segment:0"), None);
        assert_eq!(parse_hash_key("cookie:x"), None);
    }

    #[test]
    fn syntax_errors_name_the_line() {
        let found = problems("[[listeners]]\naddress = = 1\n");
        assert!(found[0].contains("line 2"), "{found:?}");
    }
}

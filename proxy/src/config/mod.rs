//! The proxy's configuration: one TOML file, checked as a whole.
//!
//! [`ProxyConfig::load`] reads the file, deserializes each section on its own and then checks
//! every rule that spans sections (a route names a pool that exists, listener addresses are
//! unique, certificate files exist), so that `voltfleet-proxy -t` reports every problem at once,
//! the way `nginx -t` does.

mod cache;
mod check;
mod fleet;
mod ipsets;
mod ratelimit;
mod raw;
mod resolve;
mod security_log;
mod waf;

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::IpNet;

pub use cache::{Bypass, CacheZoneConfig, RouteCacheConfig};
pub use check::ConfigProblem;
pub use fleet::{FleetConfig, redacted_url};
pub use ipsets::IpSetsConfig;
pub use ratelimit::{AutoBlockConfig, RouteRateLimitConfig, parse_rate};
pub use resolve::refresh_addresses;
pub use security_log::{SecurityLogConfig, SecurityLogS3Config};
pub use waf::{RouteWafConfig, WafMode};

/// Everything the proxy runs with.
#[derive(Debug, Clone)]
pub struct ProxyConfig {
    pub server: ServerConfig,
    pub admin: AdminConfig,
    pub listeners: Vec<ListenerConfig>,
    pub upstreams: BTreeMap<String, UpstreamConfig>,
    pub static_sites: BTreeMap<String, StaticSiteConfig>,
    pub cache_zones: BTreeMap<String, CacheZoneConfig>,
    pub routes: Vec<RouteConfig>,
    /// The Redis shared with the other proxies of the web tier, when there is one.
    pub fleet: Option<FleetConfig>,
    /// Client networks always let through or always refused.
    pub ip_sets: IpSetsConfig,
    /// When clients go onto the deny list by themselves; `None` never.
    pub auto_block: Option<AutoBlockConfig>,
    /// Where firewall events are written and shipped, when anywhere.
    pub security_log: Option<SecurityLogConfig>,
}

/// A directory of files served as the public website (as S3 + CloudFront would).
#[derive(Debug, Clone)]
pub struct StaticSiteConfig {
    pub name: String,
    pub root: PathBuf,
    /// The file served for a path that names a directory.
    pub index: String,
    /// `Cache-Control` by path prefix, longest prefix first; e.g. immutable for `/assets/`.
    pub cache_control: Vec<(String, String)>,
    /// `Cache-Control` for paths no prefix covers.
    pub default_cache_control: String,
    /// Compress text types with gzip or brotli when the client accepts it.
    pub compress: bool,
}

/// The upgrade socket and the PID file unless the file names others: in the runtime directory
/// the systemd unit gives the proxy (`RuntimeDirectory=voltfleet-proxy`).
pub const DEFAULT_UPGRADE_SOCKET: &str = "/run/voltfleet-proxy/upgrade.sock";
pub const DEFAULT_PID_FILE: &str = "/run/voltfleet-proxy/proxy.pid";

/// Process-wide settings of the Pingora server.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Worker threads per listening service.
    pub threads: usize,
    /// Let idle threads take tasks from busy ones (Pingora's default). Off, each thread is a
    /// runtime of its own and a connection stays on the thread that accepted it.
    pub work_stealing: bool,
    /// After SIGTERM: how long to keep accepting while load balancers notice, then how long
    /// connections in flight may finish.
    pub grace_period: Duration,
    pub graceful_shutdown_timeout: Duration,
    /// When draining, WebSockets are closed at random moments over this long, so that the
    /// chargers of an instance do not all reconnect in the same second.
    pub websocket_close_spread: Duration,
    /// Unix socket through which a new binary takes over the listeners (`--upgrade`).
    pub upgrade_socket: PathBuf,
    /// Written by a daemon (`--daemon`) with its process id; systemd follows the proxy by it.
    pub pid_file: PathBuf,
    /// Log one JSON line per request to standard output.
    pub access_log: bool,
    pub limits: Limits,
    /// How often upstream host names are resolved again; zero means only at load.
    pub resolve_interval: Duration,
}

/// Bounds on what one request may send (NGINX's `large_client_header_buffers` and
/// `client_max_body_size`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The request line and headers together; larger gets 431.
    pub max_request_header_bytes: usize,
    /// The request body; larger gets 413. 0 means no limit.
    pub max_request_body_bytes: u64,
    /// The request target (path and query); longer gets 414.
    pub max_uri_bytes: usize,
    /// Header fields in one request; more gets 431.
    pub max_request_headers: usize,
}

/// The loopback listener for metrics and operations.
#[derive(Debug, Clone)]
pub struct AdminConfig {
    pub listen: SocketAddr,
    /// The bearer token operations such as purges require; without one they are refused.
    pub token: Option<String>,
}

/// One address the proxy accepts connections on.
#[derive(Debug, Clone)]
pub struct ListenerConfig {
    pub name: String,
    pub address: SocketAddr,
    /// Expect a PROXY protocol v1 or v2 header before anything else (behind an NLB).
    pub proxy_protocol: bool,
    /// How long a connection may take to send its PROXY header. The NLB sends it with the first
    /// packet, so anything slow is not the NLB.
    pub proxy_protocol_timeout: Duration,
    /// How long a TLS handshake may take: generous for chargers on 2G/3G links, still bounded
    /// so idle sockets cannot pile up.
    pub handshake_timeout: Duration,
    /// How long an HTTP/1 request header may take to arrive whole (slowloris); zero never cuts.
    pub client_header_timeout: Duration,
    /// How long a read of a request body may wait for the client (NGINX's
    /// `client_body_timeout`); a body stalling longer ends the request.
    pub client_body_timeout: Duration,
    /// Connections one client address may hold open at once; 0 for no bound. Peers in
    /// `trusted_proxies` (the load balancer) are not counted.
    pub max_connections_per_ip: u32,
    /// Peers whose X-Forwarded-For is believed (the ALB's subnets). Everyone else's is replaced.
    pub trusted_proxies: Vec<IpNet>,
    /// Accept HTTP/2 without TLS (prior knowledge).
    pub h2c: bool,
    /// Answer every request with a redirect to this HTTPS port instead of proxying.
    pub redirect_https_port: Option<u16>,
    pub tls: Option<TlsConfig>,
}

/// TLS termination on a listener.
#[derive(Debug, Clone)]
pub struct TlsConfig {
    /// The first certificate is the default; the others are chosen by SNI against their names.
    pub certificates: Vec<CertificateConfig>,
    /// CA bundle that client certificates must chain to (chargers with OCPP security profile 3).
    pub client_ca: Option<PathBuf>,
    pub client_auth: ClientAuth,
    /// Request header carrying the verified client certificate's subject to upstreams.
    pub client_identity_header: String,
}

#[derive(Debug, Clone)]
pub struct CertificateConfig {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Whether a client certificate is asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    Off,
    /// Verified when presented; clients without one are still served.
    Optional,
    Required,
}

/// A pool of peers and how requests are spread over them.
#[derive(Debug, Clone)]
pub struct UpstreamConfig {
    pub name: String,
    pub peers: Vec<PeerConfig>,
    pub balance: Balance,
    pub health_check: Option<HealthCheckConfig>,
    /// Passive ejection with NGINX's meaning: `max_fails` failures within `fail_timeout` take a
    /// peer out for `fail_timeout`. 0 disables it.
    pub max_fails: u32,
    pub fail_timeout: Duration,
    pub connect_timeout: Duration,
    pub read_timeout: Duration,
    pub write_timeout: Duration,
    /// How long an unused upstream connection stays in the keepalive pool.
    pub idle_timeout: Duration,
    /// How many peers one request may try (1 means no retry).
    pub tries: u32,
    pub protocol: UpstreamProtocol,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerConfig {
    pub address: SocketAddr,
    pub weight: u32,
    /// Used only while no primary peer is available.
    pub backup: bool,
    /// The `host:port` this address was resolved from, when the file named a host (an internal
    /// ALB: every address it resolves to is a peer, and they are resolved again periodically).
    pub name: Option<String>,
}

/// How a pool picks a peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Balance {
    /// Smooth weighted round robin, like the ALB and NGINX's default.
    RoundRobin,
    /// The peer with the fewest requests in flight relative to its weight.
    LeastConnections,
    /// Consistent hashing (ketama) on a key, so one key keeps reaching one peer.
    Hash(HashKey),
}

/// What a hashing pool hashes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HashKey {
    /// The n-th segment of the path, from 1: `path_segment:2` of `/ocpp/CP-1` is `CP-1`.
    PathSegment(usize),
    Header(String),
    ClientIp,
    Uri,
}

/// Active health checking: an HTTP GET to every peer on an interval.
#[derive(Debug, Clone)]
pub struct HealthCheckConfig {
    pub path: String,
    pub interval: Duration,
    pub timeout: Duration,
    /// Consecutive successes that bring a peer back.
    pub rise: u32,
    /// Consecutive failures that take a peer out.
    pub fall: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamProtocol {
    Http1,
    /// HTTP/2 with prior knowledge (h2c).
    Http2,
}

/// Where requests for a host and path prefix go. The most specific route wins: an exact host
/// before any host, then the longest prefix.
#[derive(Debug, Clone)]
pub struct RouteConfig {
    /// `None` matches every host.
    pub host: Option<String>,
    pub path_prefix: String,
    /// `host` (or `*`) and prefix: the route's name in metrics and logs.
    pub label: String,
    pub target: RouteTarget,
    /// An upgraded (WebSocket) connection without traffic for this long is closed.
    pub websocket_idle_timeout: Duration,
    /// Request headers set before proxying, replacing what the client sent.
    pub set_request_headers: Vec<(String, String)>,
    /// Response headers set before answering the client.
    pub set_response_headers: Vec<(String, String)>,
    /// Response headers removed before answering the client (e.g. `Server`).
    pub hide_response_headers: Vec<String>,
    /// Caching of the route's responses; `None` passes everything through.
    pub cache: Option<RouteCacheConfig>,
    /// The web application firewall's inspection of the route's requests; `None` inspects
    /// nothing.
    pub waf: Option<RouteWafConfig>,
    /// The methods the route accepts; `None` accepts any. Others get 405.
    pub methods: Option<Vec<http::Method>>,
    /// Requests per client; `None` leaves the route unlimited.
    pub rate_limit: Option<RouteRateLimitConfig>,
}

/// What a route hands its requests to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteTarget {
    /// An upstream pool, by name.
    Upstream(String),
    /// A static site, by name.
    Static(String),
}

impl ProxyConfig {
    /// Reads and checks `path`; the error lists every problem found.
    pub fn load(path: &Path) -> Result<ProxyConfig, ConfigProblems> {
        let text = std::fs::read_to_string(path).map_err(|err| {
            ConfigProblems(vec![ConfigProblem::new(
                "",
                format!("cannot read {}: {err}", path.display()),
                "check the path given with -c and that the file is readable",
            )])
        })?;
        Self::parse(&text, path)
    }

    /// Checks TOML text; `path` is used for messages and relative certificate paths.
    pub fn parse(text: &str, path: &Path) -> Result<ProxyConfig, ConfigProblems> {
        check::check(text, path)
    }

    pub fn upstream(&self, name: &str) -> Option<&UpstreamConfig> {
        self.upstreams.get(name)
    }
}

/// Every problem found in a configuration file.
#[derive(Debug, Clone)]
pub struct ConfigProblems(pub Vec<ConfigProblem>);

impl fmt::Display for ConfigProblems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let count = self.0.len();
        writeln!(
            f,
            "the configuration has {count} error{}:",
            if count == 1 { "" } else { "s" }
        )?;
        for problem in &self.0 {
            writeln!(f, "  - {problem}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigProblems {}

//! The file's shape as written: every section deserialized on its own with lenient leaf types
//! (durations and addresses as text), so that one mistake does not hide the next.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawServer {
    pub threads: Option<usize>,
    pub work_stealing: Option<bool>,
    pub grace_period: Option<String>,
    pub graceful_shutdown_timeout: Option<String>,
    pub websocket_close_spread: Option<String>,
    pub upgrade_socket: Option<PathBuf>,
    pub pid_file: Option<PathBuf>,
    pub access_log: Option<bool>,
    pub max_request_header_bytes: Option<usize>,
    pub max_request_body_bytes: Option<u64>,
    pub max_uri_bytes: Option<usize>,
    pub max_request_headers: Option<usize>,
    pub resolve_interval: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAdmin {
    pub listen: Option<String>,
    pub token_file: Option<PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawListener {
    pub name: Option<String>,
    pub address: String,
    pub proxy_protocol: Option<bool>,
    pub proxy_protocol_timeout: Option<String>,
    pub handshake_timeout: Option<String>,
    pub client_header_timeout: Option<String>,
    pub client_body_timeout: Option<String>,
    pub max_connections_per_ip: Option<u32>,
    pub trusted_proxies: Option<Vec<String>>,
    pub h2c: Option<bool>,
    pub redirect_https_port: Option<u16>,
    pub tls: Option<RawTls>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTls {
    pub certificates: Vec<RawCertificate>,
    pub client_ca: Option<PathBuf>,
    pub client_auth: Option<String>,
    pub client_identity_header: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCertificate {
    pub cert: PathBuf,
    pub key: PathBuf,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawUpstream {
    pub peers: Vec<RawPeer>,
    pub balance: Option<String>,
    pub hash_key: Option<String>,
    pub health_check: Option<RawHealthCheck>,
    pub max_fails: Option<u32>,
    pub fail_timeout: Option<String>,
    pub connect_timeout: Option<String>,
    pub read_timeout: Option<String>,
    pub write_timeout: Option<String>,
    pub idle_timeout: Option<String>,
    pub tries: Option<u32>,
    pub protocol: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPeer {
    pub address: String,
    pub weight: Option<u32>,
    pub backup: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHealthCheck {
    pub path: Option<String>,
    pub interval: Option<String>,
    pub timeout: Option<String>,
    pub rise: Option<u32>,
    pub fall: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRoute {
    pub host: Option<String>,
    pub path: String,
    pub upstream: Option<String>,
    #[serde(rename = "static")]
    pub static_site: Option<String>,
    pub websocket_idle_timeout: Option<String>,
    #[serde(default)]
    pub set_request_headers: BTreeMap<String, String>,
    #[serde(default)]
    pub set_response_headers: BTreeMap<String, String>,
    #[serde(default)]
    pub hide_response_headers: Vec<String>,
    /// Checked on its own (`config::cache`), so that its problems are named under `.cache`.
    pub cache: Option<toml::Value>,
    /// Checked on its own (`config::waf`).
    pub waf: Option<toml::Value>,
    /// Checked on its own (`config::ratelimit`).
    pub rate_limit: Option<toml::Value>,
    pub methods: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStaticSite {
    pub root: PathBuf,
    pub index: Option<String>,
    #[serde(default)]
    pub cache_control: BTreeMap<String, String>,
    pub default_cache_control: Option<String>,
    pub compress: Option<bool>,
}

//! voltfleet's one typed configuration, loaded once at start.
//!
//! Sources, each overriding the one before it key by key: built-in defaults, the TOML file given
//! with `-c/--config`, AWS SSM Parameter Store parameters under `ssm.path` (when set), and
//! `VOLTFLEET__SECTION__KEY` environment variables. Loading reports every problem at once, each
//! naming its key, the source it came from and how to fix it. Secrets are [`SecretString`]s,
//! which never print.

mod layers;
mod reader;
mod ssm;

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

pub use layers::{ENV_PREFIX, Layers, RawValue, Source};
pub use reader::{ConfigValue, EffectiveValue, Reader};

/// The whole configuration of a voltfleet process.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Where local state lives: the embedded SQLite database and demo credentials.
    pub data_dir: PathBuf,
    pub database: DatabaseSettings,
    pub redis: RedisSettings,
    pub bus: BusSettings,
    pub ssm: SsmSettings,
    pub log: LogSettings,
    pub shutdown: ShutdownSettings,
    pub api: ServiceSettings,
    /// The `api.*` keys beyond `api.listen`: drivers' tokens and login throttling.
    pub api_accounts: ApiAccountSettings,
    pub backoffice: ServiceSettings,
    /// The `backoffice.*` keys beyond `backoffice.listen`: operators' sessions and sign-in.
    pub backoffice_ui: BackofficeSettings,
    pub ocpp: ServiceSettings,
    /// The `ocpp.*` keys beyond `ocpp.listen`: how the central system treats chargers.
    pub ocpp_protocol: OcppSettings,
    pub ocpi: ServiceSettings,
    pub jobs: ServiceSettings,
    pub up: UpSettings,
}

/// How the OCPP central system talks to chargers.
#[derive(Debug, Clone)]
pub struct OcppSettings {
    /// What happens when a charger that is not registered connects.
    pub unknown_chargers: UnknownChargerPolicy,
    /// The Heartbeat interval given to accepted chargers in BootNotification.
    pub heartbeat_interval: Duration,
    /// When a Pending or Rejected charger may send BootNotification again.
    pub boot_retry_interval: Duration,
    /// How often the central system pings each charger's WebSocket; shorter than every idle
    /// timeout on the way (the AWS ALB's is 60 s by default), so that quiet sockets stay open.
    pub ping_interval: Duration,
    /// A charger heard nothing from (no message, no pong) for this long is disconnected.
    pub idle_timeout: Duration,
    /// How long a charger has to answer a CALL from the central system.
    pub call_timeout: Duration,
    /// Largest WebSocket message a charger may send; larger ones close the connection (1009).
    pub max_message_size: u32,
    /// Messages per second one charger may send on average; faster senders are slowed down.
    pub rate_limit: u32,
    /// Messages a charger may send at once above `rate_limit` before being slowed down.
    pub rate_burst: u32,
    /// Commands that may wait for one charger while it answers an earlier one.
    pub command_queue: u32,
    /// How long the fleet-wide record of which node holds a charger's socket lives without
    /// being refreshed (a node that dies stops refreshing).
    pub session_ttl: Duration,
    /// The header in which the proxy passes the verified client certificate's subject
    /// (security profile 3).
    pub client_cert_header: String,
    /// Password checks (argon2id) that may run at once, so that a reconnecting fleet cannot
    /// starve the process of CPU and memory.
    pub max_concurrent_password_checks: u32,
    /// Meter values written to the database in one statement at most.
    pub meter_values_batch: u32,
    /// OCPP messages kept per charger for the Back Office (0: none are recorded).
    pub message_log: u32,
    /// Where chargers upload the files GetDiagnostics asks for (`ocpp.diagnostics.*`).
    pub diagnostics: DiagnosticsSettings,
}

/// The central system's own upload target for diagnostics files.
#[derive(Debug, Clone)]
pub struct DiagnosticsSettings {
    pub store: DiagnosticsStore,
    /// Largest file a charger may upload, in bytes; larger uploads are refused with 413.
    pub max_size: u64,
    /// The base URL through which chargers reach this central system, such as
    /// `https://ocpp.example.com`: GetDiagnostics' `location` is built on it. Unset means the
    /// central system cannot tell chargers where to upload.
    pub public_url: Option<String>,
    /// How long the upload token in a `location` stays valid.
    pub token_ttl: Duration,
}

/// Where uploaded diagnostics files are kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DiagnosticsStore {
    /// Files under `{data_dir}/diagnostics/`.
    Local,
    /// Objects in an S3 bucket.
    S3 {
        bucket: String,
        /// Prepended to every object key: empty, or ending with `/`.
        prefix: String,
        /// Endpoint override (a VPC endpoint, or a local test server); objects are then
        /// addressed by path (`endpoint/bucket/key`).
        endpoint: Option<String>,
    },
}

/// `ocpp.diagnostics.store` as written, before the S3 keys are joined to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DiagnosticsStoreKind {
    Local,
    S3,
}

impl ConfigValue for DiagnosticsStoreKind {
    const EXPECTED: &'static str = "one of \"local\", \"s3\"";
    fn from_text(text: &str) -> Result<Self, String> {
        match text.to_ascii_lowercase().as_str() {
            "local" => Ok(Self::Local),
            "s3" => Ok(Self::S3),
            _ => Err(format!("`{text}` is not a diagnostics store")),
        }
    }
    fn display(&self) -> String {
        format!("{self:?}").to_ascii_lowercase()
    }
}

impl DiagnosticsSettings {
    fn read(r: &mut Reader<'_>) -> DiagnosticsSettings {
        let kind = r.value("ocpp.diagnostics.store", DiagnosticsStoreKind::Local);
        let bucket: Option<String> = r.optional("ocpp.diagnostics.s3_bucket");
        let prefix = r.value("ocpp.diagnostics.s3_prefix", "diagnostics/".to_string());
        let endpoint: Option<String> = r.optional("ocpp.diagnostics.s3_endpoint");
        let store = match (kind, bucket) {
            (DiagnosticsStoreKind::S3, Some(bucket)) => DiagnosticsStore::S3 {
                bucket,
                prefix,
                endpoint,
            },
            (DiagnosticsStoreKind::S3, None) => {
                r.invalid(
                    "ocpp.diagnostics.s3_bucket",
                    "ocpp.diagnostics.store is \"s3\" but no bucket is named",
                    "set ocpp.diagnostics.s3_bucket to the bucket that keeps diagnostics files, or set ocpp.diagnostics.store = \"local\"",
                );
                DiagnosticsStore::Local
            }
            (DiagnosticsStoreKind::Local, _) => DiagnosticsStore::Local,
        };
        DiagnosticsSettings {
            store,
            max_size: r.value("ocpp.diagnostics.max_size", 50 * 1024 * 1024),
            public_url: r
                .optional::<String>("ocpp.diagnostics.public_url")
                .map(|url| url.trim_end_matches('/').to_owned()),
            token_ttl: r.value("ocpp.diagnostics.token_ttl", Duration::from_secs(24 * 3600)),
        }
    }

    fn validate(&self, r: &mut Reader<'_>) {
        if let DiagnosticsStore::S3 {
            bucket,
            prefix,
            endpoint,
        } = &self.store
        {
            // S3's rules for bucket names: 3 to 63 lowercase letters, digits, dots and hyphens.
            let valid_bucket = (3..=63).contains(&bucket.len())
                && bucket.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-'
                });
            if !valid_bucket {
                r.invalid(
                    "ocpp.diagnostics.s3_bucket",
                    "it is not an S3 bucket name",
                    "give the bucket's name alone (3 to 63 lowercase letters, digits, dots and hyphens), without s3:// or a path",
                );
            }
            if prefix.starts_with('/') || !(prefix.is_empty() || prefix.ends_with('/')) {
                r.invalid(
                    "ocpp.diagnostics.s3_prefix",
                    "an object key prefix must not start with / and must end with / (or be empty)",
                    "write it like diagnostics/ or leave it empty",
                );
            }
            if let Some(endpoint) = endpoint
                && !is_base_url(endpoint)
            {
                r.invalid(
                    "ocpp.diagnostics.s3_endpoint",
                    "it is not an http:// or https:// URL",
                    "give the endpoint as https://HOST[:PORT], or leave it unset for AWS's own",
                );
            }
        }
        if self.max_size == 0 {
            r.invalid(
                "ocpp.diagnostics.max_size",
                "it is 0, which would refuse every diagnostics file",
                "give the largest file size in bytes, 52428800 (50 MiB) by default",
            );
        }
        if let Some(url) = &self.public_url
            && !is_base_url(url)
        {
            r.invalid(
                "ocpp.diagnostics.public_url",
                "it is not an http:// or https:// URL without user, query or fragment",
                "give the address chargers reach this central system at, like https://ocpp.example.com",
            );
        }
        if self.token_ttl < Duration::from_secs(60) {
            r.invalid(
                "ocpp.diagnostics.token_ttl",
                "it is shorter than one minute, and a charger may start its upload minutes after GetDiagnostics",
                "give it a duration of 1m or more, 24h by default",
            );
        }
    }
}

/// `http(s)://host[:port][/path]`, without user, query or fragment.
fn is_base_url(text: &str) -> bool {
    let Ok(uri) = text.parse::<axum::http::Uri>() else {
        return false;
    };
    let scheme_ok = matches!(uri.scheme_str(), Some("http" | "https"));
    let authority_ok = uri
        .authority()
        .is_some_and(|authority| !authority.host().is_empty() && !authority.as_str().contains('@'));
    scheme_ok && authority_ok && uri.query().is_none() && !text.contains('#')
}

/// What the central system does with a charger it does not know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnknownChargerPolicy {
    /// Refuse the WebSocket handshake (404).
    Reject,
    /// Register it as Pending, without a password, for an operator to approve.
    Pending,
    /// Register it as Accepted (for laboratories and load tests only: anyone may connect).
    Accept,
}

impl ConfigValue for UnknownChargerPolicy {
    const EXPECTED: &'static str = "one of \"reject\", \"pending\", \"accept\"";
    fn from_text(text: &str) -> Result<Self, String> {
        match text.to_ascii_lowercase().as_str() {
            "reject" => Ok(Self::Reject),
            "pending" => Ok(Self::Pending),
            "accept" => Ok(Self::Accept),
            _ => Err(format!("`{text}` is not a policy for unknown chargers")),
        }
    }
    fn display(&self) -> String {
        format!("{self:?}").to_ascii_lowercase()
    }
}

impl OcppSettings {
    fn read(r: &mut Reader<'_>) -> OcppSettings {
        let cpus = std::thread::available_parallelism().map_or(2, |n| n.get() as u32);
        OcppSettings {
            unknown_chargers: r.value("ocpp.unknown_chargers", UnknownChargerPolicy::Reject),
            heartbeat_interval: r.value("ocpp.heartbeat_interval", Duration::from_secs(300)),
            boot_retry_interval: r.value("ocpp.boot_retry_interval", Duration::from_secs(60)),
            ping_interval: r.value("ocpp.ping_interval", Duration::from_secs(30)),
            idle_timeout: r.value("ocpp.idle_timeout", Duration::from_secs(90)),
            call_timeout: r.value("ocpp.call_timeout", Duration::from_secs(30)),
            max_message_size: r.value("ocpp.max_message_size", 128 * 1024),
            rate_limit: r.value("ocpp.rate_limit", 20),
            rate_burst: r.value("ocpp.rate_burst", 100),
            command_queue: r.value("ocpp.command_queue", 16),
            session_ttl: r.value("ocpp.session_ttl", Duration::from_secs(300)),
            client_cert_header: r.value(
                "ocpp.client_cert_header",
                "X-Client-Cert-Subject".to_string(),
            ),
            max_concurrent_password_checks: r.value("ocpp.max_concurrent_password_checks", cpus),
            meter_values_batch: r.value("ocpp.meter_values_batch", 2000),
            message_log: r.value("ocpp.message_log", 100),
            diagnostics: DiagnosticsSettings::read(r),
        }
    }

    fn validate(&self, r: &mut Reader<'_>) {
        let positive = [
            ("ocpp.heartbeat_interval", self.heartbeat_interval),
            ("ocpp.boot_retry_interval", self.boot_retry_interval),
            ("ocpp.ping_interval", self.ping_interval),
            ("ocpp.call_timeout", self.call_timeout),
            ("ocpp.session_ttl", self.session_ttl),
        ];
        for (key, value) in positive {
            if value < Duration::from_secs(1) {
                r.invalid(
                    key,
                    "it is shorter than one second",
                    "give it a duration of 1s or more",
                );
            }
        }
        if self.idle_timeout <= self.ping_interval {
            r.invalid(
                "ocpp.idle_timeout",
                format!(
                    "it is not longer than ocpp.ping_interval ({:?}), so a charger that answers every ping would still be cut",
                    self.ping_interval
                ),
                "make it at least twice ocpp.ping_interval",
            );
        }
        if self.max_message_size < 1024 {
            r.invalid(
                "ocpp.max_message_size",
                "chargers' ordinary messages need more than 1 KiB",
                "give it 65536 or more",
            );
        }
        let at_least_one = [
            ("ocpp.rate_limit", self.rate_limit),
            ("ocpp.rate_burst", self.rate_burst),
            ("ocpp.command_queue", self.command_queue),
            (
                "ocpp.max_concurrent_password_checks",
                self.max_concurrent_password_checks,
            ),
            ("ocpp.meter_values_batch", self.meter_values_batch),
        ];
        for (key, value) in at_least_one {
            if value == 0 {
                r.invalid(
                    key,
                    "it is 0, which would stop every charger",
                    "set it to 1 or more",
                );
            }
        }
        if self.message_log > 10_000 {
            r.invalid(
                "ocpp.message_log",
                format!(
                    "{} messages per charger is more than 10000",
                    self.message_log
                ),
                "keep 10000 or fewer (100 is plenty for support; 0 records none)",
            );
        }
        if self
            .client_cert_header
            .parse::<axum::http::HeaderName>()
            .is_err()
        {
            r.invalid(
                "ocpp.client_cert_header",
                "it is not a valid HTTP header name",
                "use the name the proxy sends, X-Client-Cert-Subject by default",
            );
        }
        self.diagnostics.validate(r);
    }
}

/// How the public API treats its clients: token lifetimes, the signing secret, login
/// throttling, which peers may say who the client is, request rate limits and CORS.
#[derive(Debug, Clone)]
pub struct ApiAccountSettings {
    /// The HMAC-SHA256 key of access tokens, shared by every API instance. Unset means the API
    /// cannot sign anyone in (`voltfleet up` generates one under `data_dir`).
    pub token_secret: Option<SecretString>,
    /// How long an access token is accepted after it was issued.
    pub access_token_ttl: Duration,
    /// How long a refresh token may be used, from the login or rotation that issued it.
    pub refresh_token_ttl: Duration,
    /// How long after a rotation the replaced refresh token is still taken once more, when
    /// its successor was never used: the client lost the answer (a dropped connection, a page
    /// left mid-request). Later, or with the successor used, it is a reuse. Zero: never.
    pub refresh_reuse_grace: Duration,
    /// Failed logins for one account within `login_failure_window` before it is throttled.
    pub login_failures_per_account: u32,
    /// Failed logins from one client address within `login_failure_window` before it is
    /// throttled.
    pub login_failures_per_ip: u32,
    pub login_failure_window: Duration,
    /// Peers (the proxy, the ALB) whose `X-Forwarded-For` names the client; from any other
    /// peer the socket address is the client.
    pub trusted_proxies: TrustedProxies,
    /// The window the request rate limits count in.
    pub rate_limit_window: Duration,
    /// Requests one API key may make per window (0: no limit).
    pub rate_limit_per_key: u32,
    /// Requests one signed-in driver may make per window, over all their tokens (0: no limit).
    pub rate_limit_per_user: u32,
    /// Requests without credentials one client address may make per window (0: no limit).
    pub rate_limit_per_ip: u32,
    /// Origins of web pages allowed to call the API from a browser (the website when it is
    /// served from another origin, such as CloudFront). Empty: none but the API's own.
    pub cors_origins: CorsOrigins,
    /// Password hashes (sign-up, login, password change) computed at once; each takes a core
    /// for tens of milliseconds, so more would only starve the other requests.
    pub password_hash_concurrency: u32,
    /// How long a request waits for its turn to hash before it gets a 503.
    pub password_hash_wait: Duration,
}

/// The shortest `api.token_secret` accepted: HMAC-SHA256 wants a key of the hash's size.
pub const MIN_TOKEN_SECRET_BYTES: usize = 32;

impl ApiAccountSettings {
    fn read(r: &mut Reader<'_>) -> ApiAccountSettings {
        ApiAccountSettings {
            token_secret: r.optional("api.token_secret"),
            access_token_ttl: r.value("api.access_token_ttl", Duration::from_secs(15 * 60)),
            refresh_token_ttl: r
                .value("api.refresh_token_ttl", Duration::from_secs(30 * 24 * 3600)),
            refresh_reuse_grace: r.value("api.refresh_reuse_grace", Duration::from_secs(30)),
            login_failures_per_account: r.value("api.login_failures_per_account", 5),
            login_failures_per_ip: r.value("api.login_failures_per_ip", 20),
            login_failure_window: r.value("api.login_failure_window", Duration::from_secs(15 * 60)),
            trusted_proxies: r.value("api.trusted_proxies", TrustedProxies::default()),
            rate_limit_window: r.value("api.rate_limit_window", Duration::from_secs(60)),
            rate_limit_per_key: r.value("api.rate_limit_per_key", 1200),
            rate_limit_per_user: r.value("api.rate_limit_per_user", 600),
            rate_limit_per_ip: r.value("api.rate_limit_per_ip", 300),
            cors_origins: r.value("api.cors_origins", CorsOrigins::default()),
            password_hash_concurrency: r.value(
                "api.password_hash_concurrency",
                std::thread::available_parallelism().map_or(2, |cores| cores.get() as u32),
            ),
            password_hash_wait: r.value("api.password_hash_wait", Duration::from_secs(10)),
        }
    }

    fn validate(&self, r: &mut Reader<'_>) {
        if let Some(secret) = &self.token_secret
            && secret.expose_secret().len() < MIN_TOKEN_SECRET_BYTES
        {
            r.invalid(
                "api.token_secret",
                format!("it is shorter than {MIN_TOKEN_SECRET_BYTES} bytes"),
                "use a random value of at least 32 bytes, such as the output of `openssl rand -base64 48`",
            );
        }
        let positive = [
            ("api.access_token_ttl", self.access_token_ttl),
            ("api.refresh_token_ttl", self.refresh_token_ttl),
            ("api.login_failure_window", self.login_failure_window),
            ("api.rate_limit_window", self.rate_limit_window),
            ("api.password_hash_wait", self.password_hash_wait),
        ];
        for (key, value) in positive {
            if value.is_zero() {
                r.invalid(
                    key,
                    "it must be longer than zero",
                    "give a duration such as \"15m\"",
                );
            }
        }
        if self.password_hash_concurrency == 0 {
            r.invalid(
                "api.password_hash_concurrency",
                "no password could ever be checked",
                "give at least 1, such as the number of CPU cores",
            );
        }
        if self.refresh_token_ttl <= self.access_token_ttl {
            r.invalid(
                "api.refresh_token_ttl",
                "it is not longer than api.access_token_ttl, so a refresh would never be needed",
                "make it longer, such as \"30d\"",
            );
        }
        for (key, value) in [
            (
                "api.login_failures_per_account",
                self.login_failures_per_account,
            ),
            ("api.login_failures_per_ip", self.login_failures_per_ip),
        ] {
            if value == 0 {
                r.invalid(key, "zero would refuse every login", "set it to 1 or more");
            }
        }
    }
}

/// How the Back Office treats operators: session lifetimes, the session cookie, sign-in
/// throttling, which peers may say who the client is, and password hashing bounds.
#[derive(Debug, Clone)]
pub struct BackofficeSettings {
    /// A session unused for this long ends.
    pub session_idle_timeout: Duration,
    /// A session ends this long after sign-in, however active.
    pub session_lifetime: Duration,
    /// Whether the session cookie is `Secure` (sent over HTTPS only). Only `voltfleet up` on
    /// plain HTTP loopback turns it off.
    pub cookie_secure: bool,
    /// Failed sign-ins for one account within `login_failure_window` before it is throttled.
    pub login_failures_per_account: u32,
    /// Failed sign-ins from one client address within `login_failure_window`.
    pub login_failures_per_ip: u32,
    pub login_failure_window: Duration,
    /// Peers (the proxy, the ALB) whose `X-Forwarded-For` names the client.
    pub trusted_proxies: TrustedProxies,
    /// Password checks computed at once.
    pub password_hash_concurrency: u32,
    /// How long a sign-in waits for its turn to hash before it is turned away.
    pub password_hash_wait: Duration,
    /// Charge points per page of the list.
    pub page_size: u32,
}

impl BackofficeSettings {
    fn read(r: &mut Reader<'_>) -> BackofficeSettings {
        BackofficeSettings {
            session_idle_timeout: r.value(
                "backoffice.session_idle_timeout",
                Duration::from_secs(30 * 60),
            ),
            session_lifetime: r.value(
                "backoffice.session_lifetime",
                Duration::from_secs(12 * 3600),
            ),
            cookie_secure: r.value("backoffice.cookie_secure", true),
            login_failures_per_account: r.value("backoffice.login_failures_per_account", 5),
            login_failures_per_ip: r.value("backoffice.login_failures_per_ip", 20),
            login_failure_window: r.value(
                "backoffice.login_failure_window",
                Duration::from_secs(15 * 60),
            ),
            trusted_proxies: r.value("backoffice.trusted_proxies", TrustedProxies::default()),
            password_hash_concurrency: r.value(
                "backoffice.password_hash_concurrency",
                std::thread::available_parallelism().map_or(2, |cores| cores.get() as u32),
            ),
            password_hash_wait: r.value("backoffice.password_hash_wait", Duration::from_secs(10)),
            page_size: r.value("backoffice.page_size", 50),
        }
    }

    fn validate(&self, r: &mut Reader<'_>) {
        for (key, value) in [
            ("backoffice.session_idle_timeout", self.session_idle_timeout),
            ("backoffice.session_lifetime", self.session_lifetime),
            ("backoffice.login_failure_window", self.login_failure_window),
            ("backoffice.password_hash_wait", self.password_hash_wait),
        ] {
            if value.is_zero() {
                r.invalid(
                    key,
                    "it must be longer than zero",
                    "give a duration such as \"30m\"",
                );
            }
        }
        if self.session_lifetime < self.session_idle_timeout {
            r.invalid(
                "backoffice.session_lifetime",
                "it is shorter than backoffice.session_idle_timeout, so the idle timeout would never apply",
                "make it at least as long, such as \"12h\"",
            );
        }
        for (key, value) in [
            (
                "backoffice.login_failures_per_account",
                self.login_failures_per_account,
            ),
            (
                "backoffice.login_failures_per_ip",
                self.login_failures_per_ip,
            ),
            (
                "backoffice.password_hash_concurrency",
                self.password_hash_concurrency,
            ),
        ] {
            if value == 0 {
                r.invalid(
                    key,
                    "zero would refuse every sign-in",
                    "set it to 1 or more",
                );
            }
        }
        if !(1..=500).contains(&self.page_size) {
            r.invalid(
                "backoffice.page_size",
                format!("{} is outside 1 to 500", self.page_size),
                "give a number of rows per page such as 50",
            );
        }
    }
}

/// Networks whose peers are believed about the client's address: a comma-separated list of
/// addresses and CIDR networks, such as `10.0.0.0/16, 127.0.0.1`. Empty by default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<(IpAddr, u8)>);

impl TrustedProxies {
    /// Whether `peer` lies in one of the networks.
    pub fn contains(&self, peer: IpAddr) -> bool {
        let peer = peer.to_canonical();
        self.0.iter().any(|(network, bits)| match (network, peer) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(*bits)).unwrap_or(0);
                u32::from(*net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(*bits)).unwrap_or(0);
                u128::from(*net) & mask == u128::from(ip) & mask
            }
            _ => false,
        })
    }
}

impl ConfigValue for TrustedProxies {
    const EXPECTED: &'static str =
        "a comma-separated list of IP addresses and CIDR networks, like \"10.0.0.0/16, 127.0.0.1\"";
    fn from_text(text: &str) -> Result<Self, String> {
        let mut networks = Vec::new();
        for item in text
            .split(',')
            .map(str::trim)
            .filter(|item| !item.is_empty())
        {
            let (address, bits) = match item.split_once('/') {
                Some((address, bits)) => (address, Some(bits)),
                None => (item, None),
            };
            let address = IpAddr::from_str(address)
                .map_err(|_| format!("`{item}` is not an IP address or CIDR network"))?;
            let max = if address.is_ipv4() { 32 } else { 128 };
            let bits = match bits {
                None => max,
                Some(bits) => bits
                    .parse::<u8>()
                    .ok()
                    .filter(|bits| *bits <= max)
                    .ok_or_else(|| format!("`{item}` has a prefix length outside 0..={max}"))?,
            };
            networks.push((address, bits));
        }
        Ok(TrustedProxies(networks))
    }
    fn from_toml(value: &toml::Value) -> Result<Self, String> {
        match value {
            toml::Value::String(text) => Self::from_text(text),
            toml::Value::Array(items) => {
                let mut texts = Vec::new();
                for item in items {
                    match item {
                        toml::Value::String(text) => texts.push(text.as_str()),
                        other => return Err(format!("expected text, found {}", other.type_str())),
                    }
                }
                Self::from_text(&texts.join(","))
            }
            other => Err(format!(
                "expected a list of networks, found {}",
                other.type_str()
            )),
        }
    }
    fn display(&self) -> String {
        let items: Vec<String> = self
            .0
            .iter()
            .map(|(address, bits)| format!("{address}/{bits}"))
            .collect();
        format!("{:?}", items.join(", "))
    }
}

/// Web origins allowed to call the API from a browser: a comma-separated list of
/// `scheme://host[:port]`, such as `https://www.example.com`. Empty by default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CorsOrigins(Vec<String>);

impl CorsOrigins {
    /// Whether a request's `Origin` header value is one of them (exact, ASCII case-insensitive).
    pub fn allows(&self, origin: &str) -> bool {
        self.0
            .iter()
            .any(|allowed| allowed.eq_ignore_ascii_case(origin))
    }
}

impl ConfigValue for CorsOrigins {
    const EXPECTED: &'static str =
        "a comma-separated list of origins, like \"https://www.example.com, https://example.com\"";
    fn from_text(text: &str) -> Result<Self, String> {
        let mut origins = Vec::new();
        for item in text
            .split(',')
            .map(str::trim)
            .filter(|item| !item.is_empty())
        {
            let rest = item
                .strip_prefix("https://")
                .or_else(|| item.strip_prefix("http://"))
                .ok_or_else(|| format!("`{item}` does not start with https:// or http://"))?;
            if rest.is_empty() || rest.contains(['/', '?', '#', ' ']) || item == "*" {
                return Err(format!(
                    "`{item}` is not an origin (scheme://host[:port], no path)"
                ));
            }
            origins.push(item.to_owned());
        }
        Ok(CorsOrigins(origins))
    }
    fn from_toml(value: &toml::Value) -> Result<Self, String> {
        match value {
            toml::Value::String(text) => Self::from_text(text),
            toml::Value::Array(items) => {
                let mut texts = Vec::new();
                for item in items {
                    match item {
                        toml::Value::String(text) => texts.push(text.as_str()),
                        other => return Err(format!("expected text, found {}", other.type_str())),
                    }
                }
                Self::from_text(&texts.join(","))
            }
            other => Err(format!(
                "expected a list of origins, found {}",
                other.type_str()
            )),
        }
    }
    fn display(&self) -> String {
        format!("{:?}", self.0.join(", "))
    }
}

/// What `voltfleet up` runs besides the services.
#[derive(Debug, Clone)]
pub struct UpSettings {
    /// Start `voltfleet-proxy` in front of the services (when its binary is installed).
    pub proxy: bool,
    pub proxy_listen: SocketAddr,
    pub proxy_admin_listen: SocketAddr,
    /// The drivers' website that proxy serves at `/` (the repository's `site/`); `None` means
    /// `up` looks for it (see `voltfleet::site`).
    pub site_dir: Option<PathBuf>,
}

/// The relational database: MySQL/MariaDB (RDS) when `url` is set, else SQLite under `data_dir`.
#[derive(Debug, Clone)]
pub struct DatabaseSettings {
    /// `mysql://user:password@host:3306/database`; unset means embedded SQLite.
    pub url: Option<SecretString>,
    pub max_connections: u32,
    pub min_connections: u32,
    /// How long a request waits for a connection before failing; keeps requests from hanging
    /// while the database is down.
    pub acquire_timeout: Duration,
    /// Apply pending migrations when a service starts (`voltfleet migrate` always does).
    pub migrate_on_start: bool,
    pub ssl_mode: DatabaseSslMode,
    /// CA bundle for verifying the server (the RDS global bundle in AWS).
    pub ssl_ca: Option<PathBuf>,
}

/// TLS towards MySQL, with the meanings of MySQL's own `--ssl-mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatabaseSslMode {
    Disabled,
    Preferred,
    Required,
    VerifyCa,
    VerifyIdentity,
}

impl ConfigValue for DatabaseSslMode {
    const EXPECTED: &'static str =
        "one of \"disabled\", \"preferred\", \"required\", \"verify_ca\", \"verify_identity\"";
    fn from_text(text: &str) -> Result<Self, String> {
        match text.to_ascii_lowercase().replace('-', "_").as_str() {
            "disabled" => Ok(Self::Disabled),
            "preferred" => Ok(Self::Preferred),
            "required" => Ok(Self::Required),
            "verify_ca" => Ok(Self::VerifyCa),
            "verify_identity" => Ok(Self::VerifyIdentity),
            _ => Err(format!("`{text}` is not an SSL mode")),
        }
    }
    fn display(&self) -> String {
        format!("{self:?}").to_ascii_lowercase()
    }
}

/// Redis (ElastiCache): shared cache, bus and locks; unset means in-process equivalents.
#[derive(Debug, Clone)]
pub struct RedisSettings {
    /// `redis://[:password@]host:6379/0` or `rediss://` for TLS; unset means in-process.
    pub url: Option<SecretString>,
    /// Prepended to every key and channel, so several deployments can share one Redis.
    pub key_prefix: String,
    pub connect_timeout: Duration,
    /// How long one command may take before it fails instead of hanging.
    pub response_timeout: Duration,
    /// CA certificate (PEM) to trust for `rediss://` instead of the public roots; unset means the
    /// public roots, which cover ElastiCache.
    pub tls_ca: Option<PathBuf>,
}

/// The bus between processes.
#[derive(Debug, Clone)]
pub struct BusSettings {
    /// How long a request waits for its reply by default.
    pub request_timeout: Duration,
}

/// AWS SSM Parameter Store as a configuration source.
#[derive(Debug, Clone)]
pub struct SsmSettings {
    /// Path prefix such as `/voltfleet/prod`; unset means SSM is not read.
    pub path: Option<String>,
    /// AWS region; unset means the SDK's default chain (AWS_REGION, instance metadata).
    pub region: Option<String>,
    /// Endpoint override (a VPC endpoint, or a local test server).
    pub endpoint_url: Option<String>,
    pub timeout: Duration,
}

#[derive(Debug, Clone)]
pub struct LogSettings {
    /// A tracing filter such as `info` or `info,voltfleet_ocpp=debug`; `RUST_LOG` overrides it.
    pub level: String,
    pub format: LogFormat,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// JSON when standard error is not a terminal, text when it is.
    Auto,
    Json,
    Text,
}

impl ConfigValue for LogFormat {
    const EXPECTED: &'static str = "one of \"auto\", \"json\", \"text\"";
    fn from_text(text: &str) -> Result<Self, String> {
        match text.to_ascii_lowercase().as_str() {
            "auto" => Ok(Self::Auto),
            "json" => Ok(Self::Json),
            "text" => Ok(Self::Text),
            _ => Err(format!("`{text}` is not a log format")),
        }
    }
    fn display(&self) -> String {
        format!("{self:?}").to_ascii_lowercase()
    }
}

#[derive(Debug, Clone)]
pub struct ShutdownSettings {
    /// After SIGTERM/SIGINT, how long in-flight requests may take before the process exits.
    pub drain_timeout: Duration,
}

/// Where one service listens.
#[derive(Debug, Clone)]
pub struct ServiceSettings {
    pub listen: SocketAddr,
}

/// The five services of the app tier, with their default local ports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ServiceName {
    Api,
    Backoffice,
    Ocpp,
    Ocpi,
    Jobs,
}

impl ServiceName {
    pub const ALL: [ServiceName; 5] = [
        ServiceName::Api,
        ServiceName::Backoffice,
        ServiceName::Ocpp,
        ServiceName::Ocpi,
        ServiceName::Jobs,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ServiceName::Api => "api",
            ServiceName::Backoffice => "backoffice",
            ServiceName::Ocpp => "ocpp",
            ServiceName::Ocpi => "ocpi",
            ServiceName::Jobs => "jobs",
        }
    }

    pub fn default_port(self) -> u16 {
        match self {
            ServiceName::Api => 8101,
            ServiceName::Backoffice => 8102,
            ServiceName::Ocpp => 8103,
            ServiceName::Ocpi => 8104,
            ServiceName::Jobs => 8105,
        }
    }
}

impl fmt::Display for ServiceName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ServiceName {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        ServiceName::ALL
            .into_iter()
            .find(|service| service.as_str() == text)
            .ok_or_else(|| {
                format!("unknown service `{text}`; the services are api, backoffice, ocpp, ocpi and jobs")
            })
    }
}

impl SsmSettings {
    fn read(r: &mut Reader<'_>) -> SsmSettings {
        SsmSettings {
            path: r.optional("ssm.path"),
            region: r.optional("ssm.region"),
            endpoint_url: r.optional("ssm.endpoint_url"),
            timeout: r.value("ssm.timeout", Duration::from_secs(10)),
        }
    }
}

impl Settings {
    pub fn service(&self, name: ServiceName) -> &ServiceSettings {
        match name {
            ServiceName::Api => &self.api,
            ServiceName::Backoffice => &self.backoffice,
            ServiceName::Ocpp => &self.ocpp,
            ServiceName::Ocpi => &self.ocpi,
            ServiceName::Jobs => &self.jobs,
        }
    }

    /// Reads and validates settings from merged layers.
    pub fn from_layers(layers: &Layers) -> Result<Loaded, ConfigErrors> {
        let mut r = Reader::new(layers);
        let settings = Settings::read(&mut r);
        let (effective, errors) = r.finish();
        if errors.is_empty() {
            Ok(Loaded {
                settings,
                effective,
            })
        } else {
            Err(ConfigErrors(errors))
        }
    }

    fn read(r: &mut Reader<'_>) -> Settings {
        let loopback = |port: u16| SocketAddr::from(([127, 0, 0, 1], port));
        let service = |r: &mut Reader<'_>, name: ServiceName| ServiceSettings {
            listen: r.value(&format!("{name}.listen"), loopback(name.default_port())),
        };
        let settings = Settings {
            data_dir: r.value("data_dir", PathBuf::from("data")),
            database: DatabaseSettings {
                url: r.optional("database.url"),
                max_connections: r.value("database.max_connections", 10),
                min_connections: r.value("database.min_connections", 0),
                acquire_timeout: r.value("database.acquire_timeout", Duration::from_secs(5)),
                migrate_on_start: r.value("database.migrate_on_start", false),
                ssl_mode: r.value("database.ssl_mode", DatabaseSslMode::Preferred),
                ssl_ca: r.optional("database.ssl_ca"),
            },
            redis: RedisSettings {
                url: r.optional("redis.url"),
                key_prefix: r.value("redis.key_prefix", "voltfleet:".to_string()),
                connect_timeout: r.value("redis.connect_timeout", Duration::from_secs(3)),
                response_timeout: r.value("redis.response_timeout", Duration::from_secs(2)),
                tls_ca: r.optional("redis.tls_ca"),
            },
            bus: BusSettings {
                request_timeout: r.value("bus.request_timeout", Duration::from_secs(10)),
            },
            ssm: SsmSettings::read(r),
            log: LogSettings {
                level: r.value("log.level", "info".to_string()),
                format: r.value("log.format", LogFormat::Auto),
            },
            shutdown: ShutdownSettings {
                drain_timeout: r.value("shutdown.drain_timeout", Duration::from_secs(10)),
            },
            api: service(r, ServiceName::Api),
            api_accounts: ApiAccountSettings::read(r),
            backoffice: service(r, ServiceName::Backoffice),
            backoffice_ui: BackofficeSettings::read(r),
            ocpp: service(r, ServiceName::Ocpp),
            ocpp_protocol: OcppSettings::read(r),
            ocpi: service(r, ServiceName::Ocpi),
            jobs: service(r, ServiceName::Jobs),
            up: UpSettings {
                proxy: r.value("up.proxy", true),
                proxy_listen: r.value("up.proxy_listen", loopback(8080)),
                proxy_admin_listen: r.value("up.proxy_admin_listen", loopback(9180)),
                site_dir: r.optional("up.site_dir"),
            },
        };
        settings.validate(r);
        settings
    }

    /// Rules that involve a key's meaning or several keys at once.
    fn validate(&self, r: &mut Reader<'_>) {
        if let Some(url) = &self.database.url {
            let url = url.expose_secret();
            if !(url.starts_with("mysql://") || url.starts_with("mariadb://")) {
                r.invalid(
                    "database.url",
                    "the URL must start with mysql:// (MySQL, MariaDB, RDS)",
                    "use mysql://USER:PASSWORD@HOST:3306/DATABASE, or leave it unset for the embedded SQLite database",
                );
            }
        }
        if self.database.max_connections == 0 {
            r.invalid(
                "database.max_connections",
                "a pool needs at least one connection",
                "set it to 1 or more",
            );
        }
        if self.database.min_connections > self.database.max_connections {
            r.invalid(
                "database.min_connections",
                format!(
                    "it is larger than database.max_connections ({})",
                    self.database.max_connections
                ),
                "lower it or raise database.max_connections",
            );
        }
        if let Some(ca) = &self.database.ssl_ca
            && !ca.is_file()
        {
            r.invalid(
                "database.ssl_ca",
                "the CA bundle file does not exist",
                "give the path of a PEM file, such as the RDS global bundle",
            );
        }
        if let Some(site) = &self.up.site_dir
            && !site.join("index.html").is_file()
        {
            r.invalid(
                "up.site_dir",
                format!("{} holds no index.html", site.display()),
                "give the directory of the website (the repository's site/, or /usr/share/voltfleet/site where it is installed), or leave it unset to have up find it",
            );
        }
        self.ocpp_protocol.validate(r);
        self.api_accounts.validate(r);
        self.backoffice_ui.validate(r);
        if let Some(url) = &self.redis.url {
            let url = url.expose_secret();
            if !(url.starts_with("redis://") || url.starts_with("rediss://")) {
                r.invalid(
                    "redis.url",
                    "the URL must start with redis:// or rediss:// (TLS)",
                    "use rediss://:PASSWORD@HOST:6379 for ElastiCache with TLS and AUTH, or leave it unset for the in-process cache and bus",
                );
            }
        }
        if let Some(ca) = &self.redis.tls_ca
            && !ca.is_file()
        {
            r.invalid(
                "redis.tls_ca",
                "the CA certificate file does not exist",
                "give the path of a PEM file, or leave it unset to trust the public roots",
            );
        }
        if let Some(path) = &self.ssm.path
            && !path.starts_with('/')
        {
            r.invalid(
                "ssm.path",
                "SSM parameter paths start with /",
                "write it like /voltfleet/prod",
            );
        }
        for (i, a) in ServiceName::ALL.iter().enumerate() {
            for b in &ServiceName::ALL[i + 1..] {
                let (left, right) = (self.service(*a).listen, self.service(*b).listen);
                if left.port() != 0 && left == right {
                    r.invalid(
                        &format!("{b}.listen"),
                        format!("{a}.listen uses the same address {left}"),
                        "give each service its own port",
                    );
                }
            }
        }
    }
}

/// Validated settings and, for `config check`, each key's effective value and source.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub settings: Settings,
    pub effective: Vec<EffectiveValue>,
}

/// One problem with the configuration: which key, from where, what is wrong, how to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub key: String,
    pub source: Source,
    /// The offending value as it may be shown (secrets redacted), when there is one.
    pub value: Option<String>,
    pub problem: String,
    pub fix: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key.is_empty() {
            write!(f, "{}: {}; {}", self.source, self.problem, self.fix)
        } else {
            write!(f, "{}", self.key)?;
            if let Some(value) = &self.value {
                write!(f, " = {value}")?;
            }
            write!(f, " (from {}): {}; {}", self.source, self.problem, self.fix)
        }
    }
}

/// Every problem found while loading the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let count = self.0.len();
        writeln!(
            f,
            "the configuration has {count} error{}:",
            if count == 1 { "" } else { "s" }
        )?;
        for error in &self.0 {
            writeln!(f, "  - {error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// Loads the configuration from all sources: defaults, `file`, SSM (when `ssm.path` is set)
/// and the process environment.
pub async fn load(file: Option<&Path>) -> Result<Loaded, ConfigErrors> {
    load_from(file, std::env::vars()).await
}

/// Like [`load`], with the environment given explicitly.
pub async fn load_from(
    file: Option<&Path>,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<Loaded, ConfigErrors> {
    let mut merged = match file {
        Some(path) => Layers::from_toml_file(path)?,
        None => Layers::default(),
    };
    let env = Layers::from_env(env);

    // SSM sits between the file and the environment, but where to find it is itself configured
    // by the file or the environment.
    let mut bootstrap = merged.clone();
    bootstrap.overlay(env.clone());
    let mut reader = Reader::new(&bootstrap);
    let ssm = SsmSettings::read(&mut reader);
    let (_, errors) = reader.finish();
    let ssm_is_valid = !errors.iter().any(|e| e.key.starts_with("ssm."));
    if ssm_is_valid && ssm.path.is_some() {
        let path = ssm.path.clone().unwrap_or_default();
        match ssm::fetch_parameters(&ssm).await {
            Ok(parameters) => merged.overlay(Layers::from_ssm_parameters(&path, parameters)),
            Err(problem) => {
                let source = bootstrap
                    .get("ssm.path")
                    .map_or(Source::Default, |entry| entry.source.clone());
                return Err(ConfigErrors(vec![ConfigError {
                    key: "ssm.path".into(),
                    source,
                    value: Some(format!("{path:?}")),
                    problem,
                    fix: "check ssm.region, ssm.endpoint_url, the AWS credentials and that the role may call ssm:GetParametersByPath and kms:Decrypt".into(),
                }]));
            }
        }
    }
    merged.overlay(env);
    Settings::from_layers(&merged)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn write(text: &str) -> tempfile::NamedTempFile {
        let file = tempfile::NamedTempFile::new().expect("temp file");
        std::fs::write(file.path(), text).expect("write config");
        file
    }

    #[tokio::test]
    async fn defaults_match_the_documented_ports() {
        let loaded = load_from(None, env(&[])).await.expect("defaults are valid");
        let s = loaded.settings;
        assert_eq!(s.api.listen.port(), 8101);
        assert_eq!(s.jobs.listen.port(), 8105);
        assert!(s.database.url.is_none());
        assert_eq!(s.data_dir, PathBuf::from("data"));
    }

    #[tokio::test]
    async fn environment_overrides_file_which_overrides_defaults() {
        let file = write(
            "data_dir = \"/from/file\"\n[database]\nmax_connections = 3\nmin_connections = 1\n",
        );
        let loaded = load_from(
            Some(file.path()),
            env(&[("VOLTFLEET__DATA_DIR", "/from/env")]),
        )
        .await
        .expect("valid");
        assert_eq!(loaded.settings.data_dir, PathBuf::from("/from/env"));
        assert_eq!(loaded.settings.database.max_connections, 3);
        let source_of = |key: &str| {
            loaded
                .effective
                .iter()
                .find(|e| e.key == key)
                .map(|e| e.source.clone())
        };
        assert_eq!(
            source_of("data_dir"),
            Some(Source::Env("VOLTFLEET__DATA_DIR".into()))
        );
        assert_eq!(
            source_of("database.max_connections"),
            Some(Source::File(file.path().to_path_buf()))
        );
        assert_eq!(source_of("database.acquire_timeout"), Some(Source::Default));
    }

    #[tokio::test]
    async fn diagnostics_settings_nest_under_ocpp_in_every_source() {
        let defaults = load_from(None, env(&[])).await.expect("defaults are valid");
        let diagnostics = &defaults.settings.ocpp_protocol.diagnostics;
        assert_eq!(diagnostics.store, DiagnosticsStore::Local);
        assert_eq!(diagnostics.max_size, 50 * 1024 * 1024);
        assert_eq!(diagnostics.public_url, None);

        let file = write("[ocpp.diagnostics]\nstore = \"s3\"\ns3_bucket = \"vf-diagnostics\"\n");
        let loaded = load_from(
            Some(file.path()),
            env(&[
                ("VOLTFLEET__OCPP__DIAGNOSTICS__S3_PREFIX", "uploads/"),
                ("VOLTFLEET__OCPP__DIAGNOSTICS__MAX_SIZE", "1048576"),
                (
                    "VOLTFLEET__OCPP__DIAGNOSTICS__PUBLIC_URL",
                    "https://ocpp.example.com/",
                ),
            ]),
        )
        .await
        .expect("valid");
        let diagnostics = &loaded.settings.ocpp_protocol.diagnostics;
        assert_eq!(
            diagnostics.store,
            DiagnosticsStore::S3 {
                bucket: "vf-diagnostics".into(),
                prefix: "uploads/".into(),
                endpoint: None,
            }
        );
        assert_eq!(diagnostics.max_size, 1024 * 1024);
        assert_eq!(
            diagnostics.public_url.as_deref(),
            Some("https://ocpp.example.com")
        );
    }

    #[tokio::test]
    async fn the_website_directory_of_up_is_found_or_must_hold_a_site() {
        let defaults = load_from(None, env(&[])).await.expect("defaults are valid");
        assert_eq!(
            defaults.settings.up.site_dir, None,
            "unset: up looks for it"
        );

        let site = tempfile::tempdir().expect("temp dir");
        std::fs::write(site.path().join("index.html"), "<!doctype html>").expect("write index");
        let file = write(&format!(
            "[up]\nsite_dir = {:?}\n",
            site.path().display().to_string()
        ));
        let loaded = load_from(Some(file.path()), env(&[]))
            .await
            .expect("a directory with an index.html is a site");
        assert_eq!(loaded.settings.up.site_dir.as_deref(), Some(site.path()));

        let empty = tempfile::tempdir().expect("temp dir");
        let errors = load_from(
            None,
            env(&[(
                "VOLTFLEET__UP__SITE_DIR",
                &empty.path().display().to_string(),
            )]),
        )
        .await
        .expect_err("a directory without index.html is not a site");
        let text = errors.to_string();
        assert!(
            text.contains("up.site_dir")
                && text.contains("VOLTFLEET__UP__SITE_DIR")
                && text.contains("holds no index.html")
                && text.contains("the repository's site/"),
            "{text}"
        );
    }

    #[tokio::test]
    async fn bad_diagnostics_settings_name_their_key_and_the_fix() {
        let errors = load_from(
            None,
            env(&[
                ("VOLTFLEET__OCPP__DIAGNOSTICS__STORE", "s3"),
                ("VOLTFLEET__OCPP__DIAGNOSTICS__S3_PREFIX", "/diagnostics"),
                ("VOLTFLEET__OCPP__DIAGNOSTICS__MAX_SIZE", "0"),
                (
                    "VOLTFLEET__OCPP__DIAGNOSTICS__PUBLIC_URL",
                    "https://user:pw@ocpp.example.com",
                ),
            ]),
        )
        .await
        .expect_err("s3 without a bucket");
        let text = errors.to_string();
        assert!(
            text.contains("ocpp.diagnostics.s3_bucket")
                && text.contains("set ocpp.diagnostics.s3_bucket to the bucket"),
            "{text}"
        );
        let keys: Vec<_> = errors.0.iter().map(|e| e.key.as_str()).collect();
        assert!(keys.contains(&"ocpp.diagnostics.max_size"), "{keys:?}");
        assert!(keys.contains(&"ocpp.diagnostics.public_url"), "{keys:?}");

        let errors = load_from(
            None,
            env(&[
                ("VOLTFLEET__OCPP__DIAGNOSTICS__STORE", "s3"),
                ("VOLTFLEET__OCPP__DIAGNOSTICS__S3_BUCKET", "s3://Bucket/x"),
                ("VOLTFLEET__OCPP__DIAGNOSTICS__S3_PREFIX", "diagnostics"),
                (
                    "VOLTFLEET__OCPP__DIAGNOSTICS__S3_ENDPOINT",
                    "localhost:5000",
                ),
                ("VOLTFLEET__OCPP__DIAGNOSTICS__STORE_KIND", "s3"),
            ]),
        )
        .await
        .expect_err("bad bucket, prefix and endpoint");
        let keys: Vec<_> = errors.0.iter().map(|e| e.key.as_str()).collect();
        for expected in [
            "ocpp.diagnostics.s3_bucket",
            "ocpp.diagnostics.s3_prefix",
            "ocpp.diagnostics.s3_endpoint",
            "ocpp.diagnostics.store_kind",
        ] {
            assert!(keys.contains(&expected), "{expected} missing from {keys:?}");
        }
    }

    #[tokio::test]
    async fn a_broken_file_reports_every_bad_key_with_its_source() {
        let file = write(
            "[database]\nurl = \"postgres://x\"\nmax_connections = \"ten\"\n[redis]\nresponse_timeout = 5\n[api]\nlisten = \"localhost\"\n[ocpi]\nlisten = \"127.0.0.1:8103\"\n[bogus]\nkey = 1\n",
        );
        let errors = load_from(Some(file.path()), env(&[("VOLTFLEET__LOG__FORMAT", "xml")]))
            .await
            .expect_err("broken");
        let keys: Vec<_> = errors.0.iter().map(|e| e.key.as_str()).collect();
        for expected in [
            "database.url",
            "database.max_connections",
            "redis.response_timeout",
            "api.listen",
            "ocpi.listen",
            "log.format",
            "bogus.key",
        ] {
            assert!(keys.contains(&expected), "{expected} missing from {keys:?}");
        }
        let text = errors.to_string();
        assert!(
            text.contains("environment variable VOLTFLEET__LOG__FORMAT"),
            "{text}"
        );
        assert!(!text.contains("postgres://x"), "secret leaked: {text}");
    }

    #[test]
    fn trusted_proxies_match_their_networks_only() {
        let proxies = TrustedProxies::from_text("10.0.0.0/16, 127.0.0.1, fd00::/8").expect("valid");
        let ip = |text: &str| IpAddr::from_str(text).expect("an address");
        assert!(proxies.contains(ip("10.0.200.3")));
        assert!(proxies.contains(ip("127.0.0.1")));
        assert!(proxies.contains(ip("::ffff:127.0.0.1")));
        assert!(proxies.contains(ip("fd12::1")));
        assert!(!proxies.contains(ip("10.1.0.1")));
        assert!(!proxies.contains(ip("127.0.0.2")));
        assert!(!TrustedProxies::default().contains(ip("127.0.0.1")));
        for bad in ["10.0.0.0/33", "localhost", "10.0.0.0/x"] {
            assert!(TrustedProxies::from_text(bad).is_err(), "{bad}");
        }
    }

    #[tokio::test]
    async fn api_secrets_are_checked_and_never_shown() {
        let file = write(
            "[api]\ntoken_secret = \"short-secret\"\naccess_token_ttl = \"1h\"\nrefresh_token_ttl = \"30m\"\nlogin_failures_per_ip = 0\n",
        );
        let errors = load_from(Some(file.path()), env(&[]))
            .await
            .expect_err("broken");
        let keys: Vec<_> = errors.0.iter().map(|e| e.key.as_str()).collect();
        for expected in [
            "api.token_secret",
            "api.refresh_token_ttl",
            "api.login_failures_per_ip",
        ] {
            assert!(keys.contains(&expected), "{expected} missing from {keys:?}");
        }
        assert!(!errors.to_string().contains("short-secret"), "{errors}");
    }

    #[tokio::test]
    async fn backoffice_settings_are_read_and_checked() {
        let file = write(
            "[backoffice]\nsession_idle_timeout = \"10m\"\nsession_lifetime = \"2h\"\ncookie_secure = false\nlogin_failures_per_account = 2\n",
        );
        let loaded = load_from(Some(file.path()), env(&[])).await.expect("valid");
        let bo = &loaded.settings.backoffice_ui;
        assert_eq!(bo.session_idle_timeout, Duration::from_secs(600));
        assert_eq!(bo.session_lifetime, Duration::from_secs(7200));
        assert!(!bo.cookie_secure);
        assert_eq!(bo.login_failures_per_account, 2);
        assert_eq!(bo.login_failures_per_ip, 20, "the default");

        let file = write(
            "[backoffice]\nsession_idle_timeout = \"2h\"\nsession_lifetime = \"1h\"\nlogin_failures_per_ip = 0\npage_size = 0\n",
        );
        let errors = load_from(Some(file.path()), env(&[]))
            .await
            .expect_err("broken");
        let keys: Vec<_> = errors.0.iter().map(|e| e.key.as_str()).collect();
        for expected in [
            "backoffice.session_lifetime",
            "backoffice.login_failures_per_ip",
            "backoffice.page_size",
        ] {
            assert!(keys.contains(&expected), "{expected} missing from {keys:?}");
        }
    }
}

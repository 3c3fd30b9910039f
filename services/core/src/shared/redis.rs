//! The link to Redis that every shared-state handle uses: one self-reconnecting
//! [`ConnectionManager`] for commands, the [`redis::Client`] the bus opens its pub/sub connection
//! from, the key prefix, and the translation of Redis failures into [`SharedError`]s that name the
//! server and what to do — never the password.
//!
//! Every command runs under `redis.response_timeout`, including the time spent waiting for a
//! reconnection, so a lost Redis makes requests fail fast instead of piling up.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use humantime::format_duration;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{
    AsyncConnectionConfig, ConnectionAddr, ErrorKind, RedisError, RedisResult, ServerErrorKind,
};
use secrecy::{ExposeSecret, SecretString};

use super::SharedError;
use crate::config::RedisSettings;

const RETRY_LATER: &str = "the connection is re-established by itself, so retry later; if it lasts, check that Redis is running and reachable from this host (redis.url, security groups)";
const CHECK_REACHABLE: &str = "check that Redis is running at this host and port and reachable from here (redis.url, security groups, ElastiCache endpoint); if the server only speaks TLS use rediss://";
const CHECK_TLS: &str = "check that the server's certificate is signed by the CA in redis.tls_ca (or by a public CA when redis.tls_ca is unset) and names the host in redis.url, and that the server speaks TLS on this port";

/// A cheap-to-clone handle on one Redis server.
#[derive(Clone)]
pub(crate) struct RedisLink {
    inner: Arc<Inner>,
}

struct Inner {
    client: redis::Client,
    manager: ConnectionManager,
    /// `host:port`, for messages.
    target: String,
    /// The URL without credentials, for logs and `describe`.
    display_url: String,
    prefix: String,
    connect_timeout: Duration,
    response_timeout: Duration,
}

impl fmt::Debug for RedisLink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisLink")
            .field("url", &self.inner.display_url)
            .field("prefix", &self.inner.prefix)
            .finish_non_exhaustive()
    }
}

impl RedisLink {
    /// Opens the connection and proves it with a PING, so a wrong URL, password or certificate
    /// is reported at start with the reason, not at the first request.
    pub(crate) async fn connect(
        settings: &RedisSettings,
        url: &SecretString,
    ) -> Result<RedisLink, SharedError> {
        let client = build_client(settings, url)?;
        let info = client.get_connection_info();
        let target = info.addr().to_string();
        let display_url = display_url(info.addr(), info.redis_settings().db());

        let check = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(settings.connect_timeout))
            .set_response_timeout(Some(settings.response_timeout));
        let first = tokio::time::timeout(
            settings.connect_timeout + settings.response_timeout,
            async {
                let mut connection = client
                    .get_multiplexed_async_connection_with_config(&check)
                    .await?;
                redis::cmd("PING")
                    .query_async::<String>(&mut connection)
                    .await
            },
        )
        .await;
        match first {
            Ok(Ok(_)) => {}
            Ok(Err(error)) => return Err(connect_failure(&target, &error)),
            Err(_) => {
                return Err(SharedError::Unavailable {
                    target,
                    detail: format!(
                        "no answer to PING within {}",
                        format_duration(settings.connect_timeout + settings.response_timeout)
                    ),
                    fix: CHECK_REACHABLE,
                });
            }
        }

        // A few quick retries cover a failover; each command is bounded by our own timeout
        // anyway, and the next command after a failed reconnection starts a new one.
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(settings.connect_timeout))
            .set_response_timeout(Some(settings.response_timeout))
            .set_number_of_retries(3)
            .set_min_delay(Duration::from_millis(100))
            .set_max_delay(Duration::from_secs(1));
        let manager = ConnectionManager::new_lazy_with_config(client.clone(), config)
            .map_err(|error| connect_failure(&target, &error))?;

        let link = RedisLink {
            inner: Arc::new(Inner {
                client,
                manager,
                target,
                display_url,
                prefix: settings.key_prefix.clone(),
                connect_timeout: settings.connect_timeout,
                response_timeout: settings.response_timeout,
            }),
        };
        // The first command also waits for the manager's own connection, so it gets the
        // connect budget too.
        let mut connection = link.connection();
        link.within_limit(
            settings.connect_timeout + settings.response_timeout,
            "PING",
            redis::cmd("PING").query_async::<String>(&mut connection),
        )
        .await?;
        Ok(link)
    }

    pub(crate) async fn ping(&self) -> Result<(), SharedError> {
        let mut connection = self.connection();
        self.within(
            "PING",
            redis::cmd("PING").query_async::<String>(&mut connection),
        )
        .await
        .map(drop)
    }

    /// The Redis key for `name` in one space (`cache`, `lock`, `counter`, `bus`), so the
    /// spaces never collide and several deployments can share one server.
    pub(crate) fn key(&self, space: &str, name: &str) -> String {
        format!("{}{space}:{name}", self.inner.prefix)
    }

    pub(crate) fn prefix(&self) -> &str {
        &self.inner.prefix
    }

    /// A handle for one command; clones share the same connection.
    pub(crate) fn connection(&self) -> ConnectionManager {
        self.inner.manager.clone()
    }

    pub(crate) fn client(&self) -> &redis::Client {
        &self.inner.client
    }

    pub(crate) fn target(&self) -> &str {
        &self.inner.target
    }

    pub(crate) fn display_url(&self) -> &str {
        &self.inner.display_url
    }

    pub(crate) fn connect_timeout(&self) -> Duration {
        self.inner.connect_timeout
    }

    pub(crate) fn response_timeout(&self) -> Duration {
        self.inner.response_timeout
    }

    /// Runs one command, failing with [`SharedError::Unavailable`] when it takes longer than
    /// `redis.response_timeout`.
    pub(crate) async fn within<T>(
        &self,
        command: &str,
        future: impl Future<Output = RedisResult<T>>,
    ) -> Result<T, SharedError> {
        self.within_limit(self.inner.response_timeout, command, future)
            .await
    }

    async fn within_limit<T>(
        &self,
        limit: Duration,
        command: &str,
        future: impl Future<Output = RedisResult<T>>,
    ) -> Result<T, SharedError> {
        match tokio::time::timeout(limit, future).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) => Err(self.failure(command, &error)),
            Err(_) => Err(SharedError::Unavailable {
                target: self.inner.target.clone(),
                detail: format!("no answer to {command} within {}", format_duration(limit)),
                fix: RETRY_LATER,
            }),
        }
    }

    pub(crate) fn failure(&self, command: &str, error: &RedisError) -> SharedError {
        classify(&self.inner.target, command, error, RETRY_LATER)
    }
}

fn build_client(
    settings: &RedisSettings,
    url: &SecretString,
) -> Result<redis::Client, SharedError> {
    let url = url.expose_secret();
    let bad_url = |error: RedisError| SharedError::Config {
        key: "redis.url",
        // The parser's messages describe the problem without echoing the URL.
        problem: error.to_string(),
        fix: "write it as redis://[:PASSWORD@]HOST:PORT[/DB] or rediss://[USER:PASSWORD@]HOST:PORT[/DB]",
    };
    let Some(ca_path) = &settings.tls_ca else {
        let client = redis::Client::open(url).map_err(bad_url)?;
        if matches!(
            client.get_connection_info().addr(),
            ConnectionAddr::TcpTls { .. }
        ) {
            install_crypto_provider();
        }
        return Ok(client);
    };
    let ca = std::fs::read(ca_path).map_err(|error| SharedError::Config {
        key: "redis.tls_ca",
        problem: format!("cannot read {}: {error}", ca_path.display()),
        fix: "give the path of a readable PEM file, or leave it unset to trust the public roots",
    })?;
    if !url.starts_with("rediss://") {
        return Err(SharedError::Config {
            key: "redis.tls_ca",
            problem: "it is set but redis.url does not use TLS".into(),
            fix: "use a rediss:// URL, or unset redis.tls_ca",
        });
    }
    install_crypto_provider();
    let certificates = redis::TlsCertificates {
        client_tls: None,
        root_cert: Some(ca),
    };
    redis::Client::build_with_tls(url, certificates).map_err(|error| {
        if error.kind() == ErrorKind::Io {
            SharedError::Config {
                key: "redis.tls_ca",
                problem: format!(
                    "{} is not a usable CA certificate: {error}",
                    ca_path.display()
                ),
                fix: "give a PEM file with one or more CERTIFICATE blocks",
            }
        } else {
            bad_url(error)
        }
    })
}

/// rustls needs one process-wide crypto provider; several are compiled into this workspace, so
/// it cannot pick one by itself. The first installation wins, which is what we want when the
/// binary has already chosen.
fn install_crypto_provider() {
    let _already_installed = rustls::crypto::ring::default_provider().install_default();
}

fn display_url(addr: &ConnectionAddr, db: i64) -> String {
    match addr {
        ConnectionAddr::Tcp(host, port) => format!("redis://{host}:{port}/{db}"),
        ConnectionAddr::TcpTls { host, port, .. } => format!("rediss://{host}:{port}/{db}"),
        ConnectionAddr::Unix(path) => format!("redis+unix://{}?db={db}", path.display()),
        other => format!("redis://{other}/{db}"),
    }
}

fn connect_failure(target: &str, error: &RedisError) -> SharedError {
    let text = error.to_string().to_ascii_lowercase();
    let fix = if [
        "certificate",
        "tls",
        "handshake",
        "corrupt message",
        "unknownissuer",
    ]
    .iter()
    .any(|word| text.contains(word))
    {
        CHECK_TLS
    } else {
        CHECK_REACHABLE
    };
    classify(target, "the connection check", error, fix)
}

fn classify(target: &str, command: &str, error: &RedisError, fix: &'static str) -> SharedError {
    let code = error.code().unwrap_or_default();
    if code == "NOAUTH" {
        return SharedError::Auth {
            target: target.to_owned(),
            detail: "the server requires a password and redis.url gives none".into(),
        };
    }
    if error.kind() == ErrorKind::AuthenticationFailed || code == "WRONGPASS" {
        return SharedError::Auth {
            target: target.to_owned(),
            detail: error.to_string(),
        };
    }
    let unavailable = error.is_io_error()
        || error.is_timeout()
        || error.is_connection_dropped()
        || error.is_connection_refusal()
        || matches!(
            error.kind(),
            ErrorKind::Server(
                ServerErrorKind::BusyLoading
                    | ServerErrorKind::MasterDown
                    | ServerErrorKind::TryAgain
                    | ServerErrorKind::ClusterDown
                    | ServerErrorKind::ReadOnly
            )
        );
    if unavailable {
        SharedError::Unavailable {
            target: target.to_owned(),
            detail: format!("{command} failed: {error}"),
            fix,
        }
    } else {
        SharedError::Command {
            target: target.to_owned(),
            command: command.to_owned(),
            detail: error.to_string(),
        }
    }
}

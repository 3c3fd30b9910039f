//! The connection layer under Pingora's HTTP proxy: the PROXY protocol header from the NLB, then
//! TLS with our own rustls configuration, then the HTTP app.
//!
//! Pingora parses no PROXY protocol, and its TLS listeners finish the handshake before any app
//! sees the connection, so a PROXY header in front of the ClientHello would break them. Each
//! listener's service therefore runs an [`EdgeApp`] that reads the header, then does the TLS
//! handshake itself, and hands the connection, as a Pingora `Stream`, to the HTTP app it wraps.

mod identity;
mod per_ip;
mod proxy_protocol;
mod slow_client;
mod stream;
mod tls;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use pingora::apps::ServerApp;
use pingora::protocols::{Ssl, Stream};
use pingora::server::ShutdownWatch;
use tokio_rustls::TlsAcceptor;

use ipnet::IpNet;

use crate::config::ListenerConfig;
use per_ip::{ConnectionsPerIp, Slot};
use proxy_protocol::ProxyHeaderError;
use slow_client::SlowClientGuard;

pub use identity::{ClientIdentity, client_identity};
pub use tls::{TlsSetupError, server_tls_config};

/// At shutdown, how long idle keep-alive connections are kept before being closed. A request
/// arriving on one meanwhile is answered with `Connection: close`, so a busy client moves to
/// the new process instead of racing a close (which it would see as a failed request).
const KEEPALIVE_DRAIN: Duration = Duration::from_secs(1);

/// Wraps Pingora's HTTP app: reads a PROXY protocol header when the listener expects one,
/// terminates TLS with our own rustls config when the listener has TLS, then hands the stream
/// to `inner`.
pub struct EdgeApp<A> {
    inner: Arc<A>,
    listener: String,
    proxy_protocol: bool,
    tls: Option<TlsAcceptor>,
    connections: Option<ConnectionGauges>,
    proxy_protocol_timeout: Duration,
    handshake_timeout: Duration,
    client_header_timeout: Duration,
    /// `None` when the listener sets no bound.
    per_ip: Option<Arc<ConnectionsPerIp>>,
    /// Load balancers: their connections carry many clients and are not counted per address.
    trusted_proxies: Vec<IpNet>,
}

/// Counters of the downstream connections of one listener.
#[derive(Debug, Clone)]
pub struct ConnectionGauges {
    pub open: prometheus::IntGauge,
    pub accepted: prometheus::IntCounter,
    /// Closed on arrival: the address had `max_connections_per_ip` open.
    pub refused: prometheus::IntCounter,
    /// Closed because a request header came too slowly.
    pub slow_clients: prometheus::IntCounter,
}

/// Counts a connection as open for as long as it lives.
struct OpenConnection(Option<prometheus::IntGauge>);

impl Drop for OpenConnection {
    fn drop(&mut self) {
        if let Some(open) = &self.0 {
            open.dec();
        }
    }
}

impl<A: ServerApp + Send + Sync + 'static> EdgeApp<A> {
    /// `tls` comes from [`server_tls_config`] for listeners that terminate TLS.
    pub fn new(
        inner: Arc<A>,
        listener: &ListenerConfig,
        tls: Option<Arc<rustls::ServerConfig>>,
    ) -> Self {
        EdgeApp {
            inner,
            listener: listener.name.clone(),
            proxy_protocol: listener.proxy_protocol,
            proxy_protocol_timeout: listener.proxy_protocol_timeout,
            handshake_timeout: listener.handshake_timeout,
            client_header_timeout: listener.client_header_timeout,
            per_ip: (listener.max_connections_per_ip > 0)
                .then(|| ConnectionsPerIp::new(listener.max_connections_per_ip)),
            trusted_proxies: listener.trusted_proxies.clone(),
            tls: tls.map(TlsAcceptor::from),
            connections: None,
        }
    }

    /// Counts this listener's connections in the given metrics.
    pub fn with_connection_gauges(mut self, gauges: ConnectionGauges) -> Self {
        self.connections = Some(gauges);
        self
    }

    /// The PROXY protocol, the per-address bound and TLS; `None` when the connection is to be
    /// closed. The slot is the connection's place among its address's.
    async fn accept(&self, stream: Stream) -> Option<(Stream, Option<Slot>)> {
        let stream = self.client_address(stream).await?;
        let slot = match self.count_connection(&stream) {
            Ok(slot) => slot,
            Err(()) => return None,
        };
        let stream = self.tls(stream).await?;
        let slow_clients = self.connections.as_ref().map(|c| c.slow_clients.clone());
        let guarded = SlowClientGuard::new(stream, self.client_header_timeout, slow_clients);
        Some((Box::new(guarded), slot))
    }

    /// Takes a place for the connection among its client address's; `Err` when there is none.
    fn count_connection(&self, stream: &Stream) -> Result<Option<Slot>, ()> {
        let Some(per_ip) = &self.per_ip else {
            return Ok(None);
        };
        let Some(ip) = stream.get_socket_digest().and_then(|digest| {
            digest
                .peer_addr()
                .and_then(|addr| addr.as_inet())
                .map(|addr| addr.ip())
        }) else {
            return Ok(None);
        };
        if crate::forwarded::is_trusted(ip, &self.trusted_proxies) {
            return Ok(None);
        }
        match per_ip.open(ip) {
            Some(slot) => Ok(Some(slot)),
            None => {
                if let Some(connections) = &self.connections {
                    connections.refused.inc();
                }
                // Once a minute at most: an address hammering the bound would flood the log.
                if per_ip.should_report() {
                    tracing::warn!(listener = %self.listener, client = %ip, "Closing connections from an address with listener.max_connections_per_ip open (reported once a minute; voltfleet_proxy_connections_refused_total counts them all).");
                }
                Err(())
            }
        }
    }

    /// Reads the PROXY protocol header when the listener expects one.
    async fn client_address(&self, mut stream: Stream) -> Option<Stream> {
        if self.proxy_protocol {
            match proxy_protocol::read_header(&mut stream, self.proxy_protocol_timeout).await {
                Ok(Some(addresses)) => proxy_protocol::record(&mut stream, addresses),
                Ok(None) => {}
                Err(ProxyHeaderError::Closed) => {
                    tracing::debug!(
                        listener = %self.listener,
                        peer = %peer(&stream),
                        "A connection closed before its PROXY protocol header."
                    );
                    return None;
                }
                Err(err) => {
                    tracing::warn!(
                        listener = %self.listener,
                        peer = %peer(&stream),
                        error = %err,
                        "Closing a connection without a valid PROXY protocol header."
                    );
                    return None;
                }
            }
        }
        Some(stream)
    }

    /// The TLS handshake when the listener terminates TLS.
    async fn tls(&self, stream: Stream) -> Option<Stream> {
        let Some(acceptor) = &self.tls else {
            return Some(stream);
        };
        let peer = peer(&stream);
        match stream::handshake(acceptor, stream, self.handshake_timeout).await {
            Ok(tls) => {
                tracing::debug!(
                    listener = %self.listener,
                    %peer,
                    version = tls.version(),
                    alpn = ?tls.selected_alpn_proto(),
                    client = tls.client_identity().map(|id| id.subject.as_str()),
                    "Completed a TLS handshake."
                );
                Some(Box::new(tls))
            }
            Err(err) if err.is_client_certificate() => {
                tracing::info!(
                    listener = %self.listener,
                    %peer,
                    error = %err,
                    "Refused a client certificate."
                );
                None
            }
            Err(err) => {
                tracing::debug!(
                    listener = %self.listener,
                    %peer,
                    error = %err,
                    "A TLS handshake failed."
                );
                None
            }
        }
    }
}

#[async_trait]
impl<A: ServerApp + Send + Sync + 'static> ServerApp for EdgeApp<A> {
    async fn process_new(
        self: &Arc<Self>,
        stream: Stream,
        shutdown: &ShutdownWatch,
    ) -> Option<Stream> {
        let _open = OpenConnection(self.connections.as_ref().map(|gauges| {
            gauges.accepted.inc();
            gauges.open.inc();
            gauges.open.clone()
        }));
        let (mut stream, _slot) = self.accept(stream).await?;
        // A stream handed back for reuse goes to `inner` again here, not back to Pingora, which
        // would call this method and look for a PROXY header and a handshake a second time.
        loop {
            stream = self.inner.process_new(stream, shutdown).await?;
        }
    }

    async fn cleanup(&self) {
        tokio::time::sleep(KEEPALIVE_DRAIN).await;
        self.inner.cleanup().await;
    }
}

impl<A> fmt::Debug for EdgeApp<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EdgeApp")
            .field("listener", &self.listener)
            .field("proxy_protocol", &self.proxy_protocol)
            .field("tls", &self.tls.is_some())
            .finish_non_exhaustive()
    }
}

/// The client address as Pingora will report it, for log lines.
fn peer(stream: &Stream) -> String {
    stream
        .get_socket_digest()
        .and_then(|digest| digest.peer_addr().map(ToString::to_string))
        .unwrap_or_else(|| "unknown".to_string())
}

//! The TLS handshake of a downstream connection, and the Pingora [`Stream`] it becomes.
//!
//! Pingora reads everything it knows about a connection through the `IO` trait's parts: it picks
//! HTTP/2 from `selected_alpn_proto`, logs the `SslDigest`, and finds the client address in the
//! socket digest. The wrapper answers the TLS parts itself and passes the others to the stream
//! underneath, which may already carry the client address from a PROXY protocol header.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime};

use async_trait::async_trait;
use pingora::protocols::raw_connect::ProxyDigest;
use pingora::protocols::tls::SslDigest;
use pingora::protocols::{
    ALPN, GetProxyDigest, GetSocketDigest, GetTimingDigest, Peek, Shutdown, SocketDigest, Ssl,
    Stream, TimingDigest, UniqueID, UniqueIDType,
};
use rustls::ProtocolVersion;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use super::identity::{ClientIdentity, Registration};

/// Why a TLS handshake did not complete.
#[derive(Debug, thiserror::Error)]
pub(crate) enum HandshakeError {
    #[error("the TLS handshake did not complete within {0:?}")]
    Timeout(Duration),
    #[error("the TLS handshake failed: {0}")]
    Failed(#[source] io::Error),
}

impl HandshakeError {
    /// A client certificate that was missing or did not verify, as opposed to a client that
    /// went away or spoke something other than TLS.
    pub(crate) fn is_client_certificate(&self) -> bool {
        let HandshakeError::Failed(err) = self else {
            return false;
        };
        matches!(
            err.get_ref()
                .and_then(|inner| inner.downcast_ref::<rustls::Error>()),
            Some(rustls::Error::InvalidCertificate(_) | rustls::Error::NoCertificatesPresented)
        )
    }
}

/// Runs the server side of a TLS handshake on `stream` within `timeout`.
pub(crate) async fn handshake(
    acceptor: &TlsAcceptor,
    stream: Stream,
    timeout: Duration,
) -> Result<TlsServerStream, HandshakeError> {
    let started = Instant::now();
    let tls = tokio::time::timeout(timeout, acceptor.accept(stream))
        .await
        .map_err(|_| HandshakeError::Timeout(timeout))?
        .map_err(HandshakeError::Failed)?;
    let timing = TimingDigest {
        established_ts: SystemTime::now(),
        establishment_duration: Some(started.elapsed()),
        offload_wait_duration: None,
    };
    Ok(TlsServerStream::new(tls, timing))
}

/// A server-side TLS connection over a Pingora stream, usable as a Pingora stream itself.
#[derive(Debug)]
pub(crate) struct TlsServerStream {
    tls: TlsStream<Stream>,
    digest: Arc<SslDigest>,
    timing: TimingDigest,
    /// Present while a client certificate's identity is findable from `digest`.
    identity: Option<Registration>,
}

impl TlsServerStream {
    fn new(tls: TlsStream<Stream>, timing: TimingDigest) -> TlsServerStream {
        let (_, connection) = tls.get_ref();
        let identity = connection
            .peer_certificates()
            .and_then(|chain| chain.first())
            .and_then(|leaf| match ClientIdentity::from_der(leaf) {
                Ok(identity) => Some(identity),
                Err(detail) => {
                    // rustls has verified it, so x509-parser failing on it is worth knowing.
                    tracing::warn!(
                        %detail,
                        "A verified client certificate could not be parsed; its requests go \
                         upstream without an identity."
                    );
                    None
                }
            });
        let cipher = connection
            .negotiated_cipher_suite()
            .and_then(|suite| suite.suite().as_str())
            .unwrap_or_default();
        // OpenSSL's names, which Pingora's other TLS backends report and log readers expect.
        let version = match connection.protocol_version() {
            Some(ProtocolVersion::TLSv1_3) => "TLSv1.3",
            Some(ProtocolVersion::TLSv1_2) => "TLSv1.2",
            Some(other) => other.as_str().unwrap_or("unknown"),
            None => "unknown",
        };
        let digest = Arc::new(SslDigest::new(
            cipher,
            version,
            identity.as_ref().and_then(|id| id.organization.clone()),
            identity.as_ref().map(|id| id.serial.clone()),
            // Nothing reads a certificate hash, and rustls gives none without hashing again.
            Vec::new(),
        ));
        let identity = identity.map(|identity| Registration::new(digest.clone(), identity));
        TlsServerStream {
            tls,
            digest,
            timing,
            identity,
        }
    }

    /// The identity of the client certificate, when one was presented and verified.
    pub(crate) fn client_identity(&self) -> Option<&ClientIdentity> {
        self.identity.as_ref().map(Registration::identity)
    }

    pub(crate) fn version(&self) -> &str {
        &self.digest.version
    }
}

impl AsyncRead for TlsServerStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tls).poll_read(cx, buf)
    }
}

impl AsyncWrite for TlsServerStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.tls).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.tls).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.tls.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tls).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tls).poll_shutdown(cx)
    }
}

#[async_trait]
impl Shutdown for TlsServerStream {
    async fn shutdown(&mut self) {
        // Sends close_notify; a peer that has already gone makes this fail, which is no news.
        if let Err(err) = AsyncWriteExt::shutdown(&mut self.tls).await {
            tracing::debug!(error = %err, "TLS shutdown of a downstream connection failed.");
        }
    }
}

impl UniqueID for TlsServerStream {
    fn id(&self) -> UniqueIDType {
        self.tls.get_ref().0.id()
    }
}

impl Ssl for TlsServerStream {
    fn get_ssl_digest(&self) -> Option<Arc<SslDigest>> {
        Some(self.digest.clone())
    }

    fn selected_alpn_proto(&self) -> Option<ALPN> {
        match self.tls.get_ref().1.alpn_protocol() {
            Some(b"h2") => Some(ALPN::H2),
            Some(b"http/1.1") => Some(ALPN::H1),
            // Only those two are offered.
            _ => None,
        }
    }
}

impl GetTimingDigest for TlsServerStream {
    fn get_timing_digest(&self) -> Vec<Option<TimingDigest>> {
        let mut layers = self.tls.get_ref().0.get_timing_digest();
        layers.push(Some(self.timing.clone()));
        layers
    }

    fn get_read_pending_time(&self) -> Duration {
        self.tls.get_ref().0.get_read_pending_time()
    }

    fn get_write_pending_time(&self) -> Duration {
        self.tls.get_ref().0.get_write_pending_time()
    }
}

impl GetProxyDigest for TlsServerStream {
    fn get_proxy_digest(&self) -> Option<Arc<ProxyDigest>> {
        self.tls.get_ref().0.get_proxy_digest()
    }

    fn set_proxy_digest(&mut self, digest: ProxyDigest) {
        self.tls.get_mut().0.set_proxy_digest(digest);
    }
}

impl GetSocketDigest for TlsServerStream {
    fn get_socket_digest(&self) -> Option<Arc<SocketDigest>> {
        self.tls.get_ref().0.get_socket_digest()
    }

    fn set_socket_digest(&mut self, digest: SocketDigest) {
        self.tls.get_mut().0.set_socket_digest(digest);
    }
}

/// Decrypted bytes cannot be peeked without reading them; Pingora asks only to look for the
/// h2c preface, which does not concern TLS connections.
impl Peek for TlsServerStream {}

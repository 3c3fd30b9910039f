//! The defence against slow clients (slowloris): an HTTP/1 request header must arrive whole
//! within `listener.client_header_timeout`, counted from the connection's start for the first
//! request and from the first byte of each request after it.
//!
//! Pingora bounds each read of a header, not the header as a whole, so a client sending a byte
//! every few seconds would hold its connection forever. The guard sits between the connection
//! and Pingora and watches the bytes go by: it looks for the blank line that ends a header,
//! stops watching until the response starts, and then watches for the next request. HTTP/2
//! frames its headers itself and is left alone, as are the frames of an upgraded connection
//! (a 101 is no final response, so the guard never starts watching again).
//!
//! Slow bodies are bounded per read by Pingora (its read timeout), as NGINX's
//! `client_body_timeout` does.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use async_trait::async_trait;
use pingora::protocols::raw_connect::ProxyDigest;
use pingora::protocols::tls::SslDigest;
use pingora::protocols::{
    ALPN, GetProxyDigest, GetSocketDigest, GetTimingDigest, Peek, Shutdown, SocketDigest, Ssl,
    Stream, TimingDigest, UniqueID, UniqueIDType,
};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// The bytes that end a request header.
const HEADER_END: &[u8; 4] = b"\r\n\r\n";
/// The start of the HTTP/2 connection preface (h2c with prior knowledge).
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0";

/// Where the connection is in its request-response cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// A header is arriving; `matched` bytes of `HEADER_END` were the last seen.
    Header { matched: usize },
    /// The header arrived; the body, the response or a tunnel follow.
    Passed,
    /// The response has started: the next byte read begins a new request.
    BetweenRequests,
    /// Not HTTP/1: nothing to watch.
    Off,
}

/// A connection whose request headers must each arrive within a time.
#[derive(Debug)]
pub(crate) struct SlowClientGuard {
    inner: Stream,
    phase: Phase,
    /// Whether any byte has been read yet (the HTTP/2 preface can only come first).
    started: bool,
    timeout: Duration,
    deadline: Option<Pin<Box<Sleep>>>,
    slow_clients: Option<prometheus::IntCounter>,
}

impl SlowClientGuard {
    /// Watches `inner` from now; a connection that negotiated HTTP/2 is passed through.
    pub(crate) fn new(
        inner: Stream,
        timeout: Duration,
        slow_clients: Option<prometheus::IntCounter>,
    ) -> SlowClientGuard {
        let h2 = matches!(inner.selected_alpn_proto(), Some(ALPN::H2));
        let phase = if h2 || timeout.is_zero() {
            Phase::Off
        } else {
            Phase::Header { matched: 0 }
        };
        let deadline = (phase != Phase::Off)
            .then(|| Box::pin(tokio::time::sleep_until(Instant::now() + timeout)));
        SlowClientGuard {
            inner,
            phase,
            started: false,
            timeout,
            deadline,
            slow_clients,
        }
    }

    /// Follows the request bytes just read.
    fn saw_request_bytes(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        if !self.started {
            self.started = true;
            if bytes.starts_with(H2_PREFACE) {
                self.phase = Phase::Off;
                self.deadline = None;
                return;
            }
        }
        if self.phase == Phase::BetweenRequests {
            self.phase = Phase::Header { matched: 0 };
            self.deadline = Some(Box::pin(tokio::time::sleep_until(
                Instant::now() + self.timeout,
            )));
        }
        let Phase::Header { mut matched } = self.phase else {
            return;
        };
        for &byte in bytes {
            matched = if byte == HEADER_END[matched] {
                matched + 1
            } else if byte == HEADER_END[0] {
                1
            } else {
                0
            };
            if matched == HEADER_END.len() {
                self.phase = Phase::Passed;
                self.deadline = None;
                return;
            }
        }
        self.phase = Phase::Header { matched };
    }

    /// Follows the response bytes about to be written: a final status line starts the wait for
    /// the next request; an interim one (100 Continue, 101 Switching Protocols) does not.
    fn saw_response_bytes(&mut self, bytes: &[u8]) {
        if self.phase != Phase::Passed {
            return;
        }
        let final_status = bytes.len() > 9
            && (bytes.starts_with(b"HTTP/1.1 ") || bytes.starts_with(b"HTTP/1.0 "))
            && bytes[9] != b'1';
        if final_status {
            self.phase = Phase::BetweenRequests;
        }
    }
}

impl AsyncRead for SlowClientGuard {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        match Pin::new(&mut self.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                let this = &mut *self;
                this.saw_request_bytes(&buf.filled()[before..]);
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(err)) => Poll::Ready(Err(err)),
            Poll::Pending => {
                let timeout = self.timeout;
                let expired = self
                    .deadline
                    .as_mut()
                    .is_some_and(|deadline| deadline.as_mut().poll(cx).is_ready());
                if !expired {
                    return Poll::Pending;
                }
                self.deadline = None;
                if let Some(counter) = &self.slow_clients {
                    counter.inc();
                }
                // Debug only: under a slowloris attack this happens for every socket held; the
                // metric counts them all.
                tracing::debug!(
                    peer = ?self.inner.get_socket_digest().and_then(|digest| digest.peer_addr().cloned()),
                    ?timeout,
                    "Closing a connection whose request header did not arrive in time (listener.client_header_timeout)."
                );
                Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("the request header did not arrive within {timeout:?}"),
                )))
            }
        }
    }
}

impl AsyncWrite for SlowClientGuard {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.saw_response_bytes(buf);
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        if let Some(first) = bufs.iter().find(|buf| !buf.is_empty()) {
            self.saw_response_bytes(first);
        }
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[async_trait]
impl Shutdown for SlowClientGuard {
    async fn shutdown(&mut self) {
        self.inner.shutdown().await;
    }
}

impl UniqueID for SlowClientGuard {
    fn id(&self) -> UniqueIDType {
        self.inner.id()
    }
}

impl Ssl for SlowClientGuard {
    fn get_ssl_digest(&self) -> Option<Arc<SslDigest>> {
        self.inner.get_ssl_digest()
    }

    fn selected_alpn_proto(&self) -> Option<ALPN> {
        self.inner.selected_alpn_proto()
    }
}

impl GetTimingDigest for SlowClientGuard {
    fn get_timing_digest(&self) -> Vec<Option<TimingDigest>> {
        self.inner.get_timing_digest()
    }

    fn get_read_pending_time(&self) -> Duration {
        self.inner.get_read_pending_time()
    }

    fn get_write_pending_time(&self) -> Duration {
        self.inner.get_write_pending_time()
    }
}

impl GetProxyDigest for SlowClientGuard {
    fn get_proxy_digest(&self) -> Option<Arc<ProxyDigest>> {
        self.inner.get_proxy_digest()
    }

    fn set_proxy_digest(&mut self, digest: ProxyDigest) {
        self.inner.set_proxy_digest(digest);
    }
}

impl GetSocketDigest for SlowClientGuard {
    fn get_socket_digest(&self) -> Option<Arc<SocketDigest>> {
        self.inner.get_socket_digest()
    }

    fn set_socket_digest(&mut self, digest: SocketDigest) {
        self.inner.set_socket_digest(digest);
    }
}

#[async_trait]
impl Peek for SlowClientGuard {
    /// Pingora peeks for the h2c preface before reading anything; what it peeks is read again
    /// afterwards and followed then.
    async fn try_peek(&mut self, buf: &mut [u8]) -> io::Result<bool> {
        self.inner.try_peek(buf).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn guard(stream: tokio::io::DuplexStream, timeout: Duration) -> SlowClientGuard {
        SlowClientGuard::new(Box::new(stream), timeout, None)
    }

    #[tokio::test(start_paused = true)]
    async fn a_header_dripped_byte_by_byte_is_cut_off_at_the_deadline() {
        let (mut client, server) = tokio::io::duplex(1024);
        let mut guarded = guard(server, Duration::from_secs(10));
        let drip = tokio::spawn(async move {
            for byte in b"GET / HTTP/1.1\r\nHost: x\r\n".iter().cycle().take(200) {
                if client.write_all(&[*byte]).await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        });
        let started = Instant::now();
        let mut buf = [0u8; 64];
        let err = loop {
            match guarded.read(&mut buf).await {
                Ok(0) => panic!("the client never closed"),
                Ok(_) => continue,
                Err(err) => break err,
            }
        };
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        let elapsed = started.elapsed();
        assert!(
            elapsed >= Duration::from_secs(10) && elapsed < Duration::from_secs(11),
            "{elapsed:?}"
        );
        drip.abort();
    }

    #[tokio::test(start_paused = true)]
    async fn keep_alive_requests_and_slow_bodies_are_left_alone() {
        let (mut client, server) = tokio::io::duplex(4096);
        let mut guarded = guard(server, Duration::from_secs(10));
        let mut buf = [0u8; 256];
        client
            .write_all(b"POST /up HTTP/1.1\r\nContent-Length: 3\r\n\r\n")
            .await
            .expect("write");
        assert!(guarded.read(&mut buf).await.expect("read") > 0);
        // The body comes slowly: that is Pingora's per-read timeout's business, not this one.
        tokio::time::sleep(Duration::from_secs(30)).await;
        client.write_all(b"abc").await.expect("write");
        assert_eq!(guarded.read(&mut buf).await.expect("read"), 3);
        // An interim answer does not end the request; the final one does.
        guarded
            .write_all(b"HTTP/1.1 100 Continue\r\n\r\n")
            .await
            .expect("write");
        assert_eq!(guarded.phase, Phase::Passed);
        guarded
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
            .await
            .expect("write");
        assert_eq!(guarded.phase, Phase::BetweenRequests);
        // Idle between requests is the keep-alive timeout's business.
        tokio::time::sleep(Duration::from_secs(30)).await;
        client
            .write_all(b"GET /next HTTP/1.1\r\n")
            .await
            .expect("write");
        assert!(guarded.read(&mut buf).await.expect("read") > 0);
        assert_eq!(guarded.phase, Phase::Header { matched: 2 });
        // The header ends across two reads.
        client.write_all(b"Host: x\r").await.expect("write");
        assert!(guarded.read(&mut buf).await.expect("read") > 0);
        client.write_all(b"\n\r\n").await.expect("write");
        assert!(guarded.read(&mut buf).await.expect("read") > 0);
        assert_eq!(guarded.phase, Phase::Passed);
    }

    #[tokio::test(start_paused = true)]
    async fn http2_with_prior_knowledge_is_not_watched() {
        let (mut client, server) = tokio::io::duplex(1024);
        let mut guarded = guard(server, Duration::from_secs(1));
        client
            .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
            .await
            .expect("write");
        let mut buf = [0u8; 64];
        assert!(guarded.read(&mut buf).await.expect("read") > 0);
        assert_eq!(guarded.phase, Phase::Off);
        let read = tokio::time::timeout(Duration::from_secs(5), guarded.read(&mut buf)).await;
        assert!(read.is_err(), "still waiting, not cut off");
    }
}

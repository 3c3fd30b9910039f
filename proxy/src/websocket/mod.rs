//! Upgraded connections (WebSockets: chargers' OCPP sessions) carried by the proxy itself.
//!
//! Pingora 0.9 tunnels an upgrade inside its HTTP proxy, where the end of the (empty) request
//! body can reach the upstream half after the 101 and be taken for the end of the tunnel, so a
//! fresh connection now and then closes after its first frame; nor does it offer a way to close
//! tunnels when the process drains. So `EdgeProxy` hands upgrade requests to this module: the
//! request goes to the peer over a connection of its own ([`handshake`]), and after the 101 the
//! bytes are relayed both ways until either side closes, the route's idle timeout passes, or
//! the proxy drains — then, at a random moment within the close spread, each side gets a close
//! frame (1001, going away) between two frames (`frames`), so the chargers reconnect to other
//! instances one by one rather than all in the same second.

mod frames;
pub mod handshake;

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use pingora::protocols::http::ServerSession;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::Instant;

use frames::{FrameTracker, GOING_AWAY_TO_CLIENT, GOING_AWAY_TO_SERVER};

/// The largest answer head (and refusal body) taken from a peer: a sanity bound on a service
/// of our own, like Pingora's fixed bound on response heads.
pub const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// What one read from the peer takes at most. OCPP messages are a few hundred bytes and a
/// proxy holds thousands of idle tunnels, so this stays small; larger frames take more reads.
const READ_CHUNK: usize = 4 * 1024;

/// How long a client gets to answer our close frame before the connection is dropped.
const CLOSE_ANSWER_WAIT: Duration = Duration::from_secs(1);

/// How a tunnel ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TunnelEnd {
    ClientClosed,
    UpstreamClosed,
    Idle,
    /// The proxy drained: both sides were sent a close frame.
    Drained,
    ClientFailed,
    UpstreamFailed,
}

impl TunnelEnd {
    pub fn as_str(self) -> &'static str {
        match self {
            TunnelEnd::ClientClosed => "client closed",
            TunnelEnd::UpstreamClosed => "upstream closed",
            TunnelEnd::Idle => "idle timeout",
            TunnelEnd::Drained => "proxy draining",
            TunnelEnd::ClientFailed => "client error",
            TunnelEnd::UpstreamFailed => "upstream error",
        }
    }
}

/// The limits of one tunnel.
#[derive(Debug, Clone, Copy)]
pub struct TunnelLimits {
    /// Closed after this long without a byte in either direction.
    pub idle_timeout: Duration,
    /// A write to either side taking longer than this ends the tunnel.
    pub write_timeout: Duration,
    /// When the proxy drains, the tunnel is closed at a random moment within this long.
    pub close_spread: Duration,
}

/// Relays an upgraded connection whose 101 the client has already been sent. `early` holds
/// what the peer sent right after its 101. Ends when a side closes, on the idle timeout, or
/// at a random moment within the close spread after `draining` turns true.
pub async fn relay(
    client: &mut ServerSession,
    mut upstream: TcpStream,
    early: BytesMut,
    limits: TunnelLimits,
    mut draining: watch::Receiver<bool>,
) -> TunnelEnd {
    // The tunnel's idle timeout governs, not the session's own read timeout for request bodies
    // (60 s in Pingora), which would cut a charger that stays quiet between heartbeats.
    client.set_read_timeout(None);
    client.set_write_timeout(Some(limits.write_timeout));
    let mut to_client = FrameTracker::default();
    let mut to_upstream = FrameTracker::default();
    if !early.is_empty() {
        to_client.advance(&early);
        if client
            .write_response_body(early.freeze(), false)
            .await
            .is_err()
        {
            return TunnelEnd::ClientFailed;
        }
    }
    let mut buffer = BytesMut::with_capacity(READ_CHUNK);
    // Once the proxy drains: when this tunnel is to be closed.
    let mut close_at = draining
        .borrow_and_update()
        .then(|| Instant::now() + close_delay(limits.close_spread));
    let mut idle_deadline = Instant::now() + limits.idle_timeout;
    loop {
        let close_due = close_at.is_some_and(|at| at <= Instant::now());
        if close_due && to_client.at_boundary() {
            return close_both(client, &mut upstream, &mut to_upstream, limits).await;
        }
        tokio::select! {
            body = client.read_request_body() => match body {
                Ok(Some(bytes)) => {
                    to_upstream.advance(&bytes);
                    let write = upstream.write_all(&bytes);
                    match tokio::time::timeout(limits.write_timeout, write).await {
                        Ok(Ok(())) => {}
                        _ => return TunnelEnd::UpstreamFailed,
                    }
                }
                Ok(None) => {
                    let _ = upstream.shutdown().await;
                    return TunnelEnd::ClientClosed;
                }
                Err(_) => return TunnelEnd::ClientFailed,
            },
            read = upstream.read_buf(&mut buffer) => match read {
                Ok(0) => return TunnelEnd::UpstreamClosed,
                Ok(_) => {
                    let chunk = buffer.split().freeze();
                    to_client.advance(&chunk);
                    if client.write_response_body(chunk, false).await.is_err() {
                        return TunnelEnd::ClientFailed;
                    }
                    buffer.reserve(READ_CHUNK);
                }
                Err(_) => return TunnelEnd::UpstreamFailed,
            },
            _ = tokio::time::sleep_until(idle_deadline) => return TunnelEnd::Idle,
            // A dropped sender means the process is going away as well.
            _ = draining.changed(), if close_at.is_none() => {
                close_at = Some(Instant::now() + close_delay(limits.close_spread));
                continue;
            },
            _ = tokio::time::sleep_until(close_at.unwrap_or(idle_deadline)), if close_at.is_some() && !close_due => continue,
        }
        idle_deadline = Instant::now() + limits.idle_timeout;
    }
}

/// A random moment within `spread`, so that the tunnels of a draining proxy close one by one.
fn close_delay(spread: Duration) -> Duration {
    let millis = u64::try_from(spread.as_millis()).unwrap_or(u64::MAX);
    match millis {
        0 => Duration::ZERO,
        _ => Duration::from_millis(rand::random_range(0..millis)),
    }
}

/// Sends both sides a close frame (the peer's only between two of the client's frames; a peer
/// mid-frame just sees the connection end) and gives the client a moment to answer.
async fn close_both(
    client: &mut ServerSession,
    upstream: &mut TcpStream,
    from_client: &mut FrameTracker,
    limits: TunnelLimits,
) -> TunnelEnd {
    if from_client.at_boundary() {
        let close = upstream.write_all(&GOING_AWAY_TO_SERVER);
        let _ = tokio::time::timeout(limits.write_timeout, close).await;
    }
    let _ = upstream.shutdown().await;
    let going_away = Bytes::from_static(&GOING_AWAY_TO_CLIENT);
    if client.write_response_body(going_away, false).await.is_err() {
        return TunnelEnd::Drained;
    }
    // Whatever the client still had in flight is dropped, up to its answering close frame.
    let _ = tokio::time::timeout(CLOSE_ANSWER_WAIT, async {
        while let Ok(Some(bytes)) = client.read_request_body().await {
            from_client.advance(&bytes);
            if from_client.closed() {
                break;
            }
        }
    })
    .await;
    TunnelEnd::Drained
}

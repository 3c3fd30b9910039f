//! Active health checks: an HTTP/1.1 GET to every peer of a pool on an interval. `fall`
//! consecutive failures take a peer out, `rise` consecutive passes bring it back.
//!
//! The request is written by hand on a tokio `TcpStream`: all a check needs is the status line,
//! read into a small fixed buffer, with the whole exchange bounded by the check's timeout.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinSet;
use tokio::time::MissedTickBehavior;

use super::Pool;
use crate::config::HealthCheckConfig;

/// Checks every peer of `pool` until `shutdown` resolves. Each peer has its own task so that a
/// peer that never answers delays nobody else's checks.
pub(super) async fn run(
    pool: Arc<Pool>,
    check: HealthCheckConfig,
    shutdown: impl Future<Output = ()> + Send,
) {
    let mut watchers = JoinSet::new();
    for index in 0..pool.peers.len() {
        watchers.spawn(watch(Arc::clone(&pool), index, check.clone()));
    }
    shutdown.await;
    watchers.shutdown().await;
}

async fn watch(pool: Arc<Pool>, index: usize, check: HealthCheckConfig) {
    let peer = &pool.peers[index];
    let mut verdicts = Hysteresis::new(check.rise, check.fall);
    let mut ticks = tokio::time::interval(check.interval);
    // A check that outlasts the interval pushes the next one back instead of firing a burst.
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let outcome = probe(peer.address, &check.path, check.timeout).await;
        if let Err(failure) = &outcome {
            tracing::debug!(
                upstream = %pool.name, peer = %peer.address, %failure,
                "A health check failed."
            );
        }
        match (verdicts.observe(outcome.is_ok()), outcome) {
            (Some(Health::Down), Err(failure)) => {
                peer.healthy.store(false, Ordering::Release);
                tracing::warn!(
                    upstream = %pool.name, peer = %peer.address, %failure, fall = check.fall,
                    "The peer failed its health checks and is taken out of the pool."
                );
            }
            (Some(Health::Up), _) => {
                peer.healthy.store(true, Ordering::Release);
                tracing::info!(
                    upstream = %pool.name, peer = %peer.address, rise = check.rise,
                    "The peer passed its health checks and is back in the pool."
                );
            }
            _ => {}
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Health {
    Up,
    Down,
}

/// Turns single check results into health with NGINX Plus's rise/fall hysteresis. Peers start up.
#[derive(Debug)]
struct Hysteresis {
    rise: u32,
    fall: u32,
    health: Health,
    /// Consecutive results that disagree with `health`.
    streak: u32,
}

impl Hysteresis {
    fn new(rise: u32, fall: u32) -> Hysteresis {
        Hysteresis {
            rise,
            fall,
            health: Health::Up,
            streak: 0,
        }
    }

    /// The new health when this result completes a streak long enough to change it.
    fn observe(&mut self, passed: bool) -> Option<Health> {
        let (agrees, needed, other) = match self.health {
            Health::Up => (passed, self.fall, Health::Down),
            Health::Down => (!passed, self.rise, Health::Up),
        };
        if agrees {
            self.streak = 0;
            return None;
        }
        self.streak += 1;
        if self.streak < needed {
            return None;
        }
        self.health = other;
        self.streak = 0;
        Some(other)
    }
}

/// Why a check did not pass.
#[derive(Debug, thiserror::Error)]
enum ProbeFailure {
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("cannot connect: {0}")]
    Connect(io::Error),
    #[error("the exchange failed: {0}")]
    Io(io::Error),
    #[error("the peer closed the connection before a status line")]
    Closed,
    #[error("the response does not start with an HTTP/1.x status line")]
    Malformed,
    #[error("status {0}")]
    Status(u16),
}

/// The longest status line accepted; a real one is about 20 bytes.
const STATUS_LINE_LIMIT: usize = 256;

/// One check of one peer: passes on a 2xx or 3xx status.
async fn probe(address: SocketAddr, path: &str, timeout: Duration) -> Result<(), ProbeFailure> {
    let status = tokio::time::timeout(timeout, fetch_status(address, path))
        .await
        .map_err(|_| ProbeFailure::Timeout(timeout))??;
    if (200..400).contains(&status) {
        Ok(())
    } else {
        Err(ProbeFailure::Status(status))
    }
}

async fn fetch_status(address: SocketAddr, path: &str) -> Result<u16, ProbeFailure> {
    let mut stream = TcpStream::connect(address)
        .await
        .map_err(ProbeFailure::Connect)?;
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\
         User-Agent: voltfleet-proxy-health-check\r\n\r\n"
    );
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(ProbeFailure::Io)?;
    let mut buffer = [0u8; STATUS_LINE_LIMIT];
    let mut filled = 0;
    loop {
        if let Some(end) = buffer[..filled].windows(2).position(|pair| pair == b"\r\n") {
            return parse_status_line(&buffer[..end]).ok_or(ProbeFailure::Malformed);
        }
        if filled == buffer.len() {
            return Err(ProbeFailure::Malformed);
        }
        match stream.read(&mut buffer[filled..]).await {
            Ok(0) => return Err(ProbeFailure::Closed),
            Ok(read) => filled += read,
            Err(err) => return Err(ProbeFailure::Io(err)),
        }
    }
}

/// The status code of `HTTP/1.x NNN reason`.
fn parse_status_line(line: &[u8]) -> Option<u16> {
    let rest = line.strip_prefix(b"HTTP/1.")?;
    let (_minor, rest) = rest.split_first()?;
    let rest = rest.strip_prefix(b" ")?;
    let code = rest.get(..3)?;
    if !code.iter().all(u8::is_ascii_digit) || rest.get(3).is_some_and(|&byte| byte != b' ') {
        return None;
    }
    std::str::from_utf8(code).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fall_failures_in_a_row_take_a_peer_down_and_rise_passes_bring_it_back() {
        let mut verdicts = Hysteresis::new(2, 3);
        let results = [
            false, false, true, // interrupted: the streak starts over
            false, false, false, // down after the third
            true, false, true, true, // up after two passes in a row
        ];
        let changes: Vec<_> = results
            .iter()
            .enumerate()
            .filter_map(|(check, &passed)| verdicts.observe(passed).map(|health| (check, health)))
            .collect();
        assert_eq!(changes, [(5, Health::Down), (9, Health::Up)]);
    }

    #[test]
    fn rise_and_fall_of_one_switch_at_once() {
        let mut verdicts = Hysteresis::new(1, 1);
        assert_eq!(verdicts.observe(true), None);
        assert_eq!(verdicts.observe(false), Some(Health::Down));
        assert_eq!(verdicts.observe(true), Some(Health::Up));
    }

    #[test]
    fn status_lines() {
        let check = |line: &str| parse_status_line(line.as_bytes());
        assert_eq!(check("HTTP/1.1 200 OK"), Some(200));
        assert_eq!(check("HTTP/1.0 302 Found"), Some(302));
        assert_eq!(check("HTTP/1.1 503"), Some(503));
        assert_eq!(check("HTTP/1.1 204 "), Some(204));
        assert_eq!(check("HTTP/2 200 OK"), None);
        assert_eq!(check("HTTP/1.1 20 OK"), None);
        assert_eq!(check("HTTP/1.1 2000 OK"), None);
        assert_eq!(check("SSH-2.0-OpenSSH_9.6"), None);
        assert_eq!(check(""), None);
    }
}

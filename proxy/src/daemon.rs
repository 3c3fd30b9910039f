//! Daemon mode (`--daemon`), for systemd's `Type=forking`: Pingora forks twice and the first
//! process waits until the daemon says it runs (`daemon_wait_for_ready`), so that the command
//! systemd started ends only once the PID file names the daemon. systemd reads that file when
//! the command ends; a command that ended earlier would leave systemd following the old process
//! after a reload, and the next reload would signal the wrong one.

use std::time::Duration;

use async_trait::async_trait;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use rustix::process::{Pid, Signal};

/// How long the daemon tries to reach the process waiting for it.
const NOTIFY_FOR: Duration = Duration::from_secs(30);

/// Runs in the daemon once Pingora has forked and written the PID file: sends SIGUSR1, which
/// Pingora's waiting process takes as "ready", to the process that started the daemon.
///
/// That process installs its SIGUSR1 handler after the fork, and the signal's default action
/// would kill it, so this waits until `/proc` shows the signal caught before sending it.
#[derive(Debug)]
pub struct DaemonReady {
    starter: Pid,
}

impl DaemonReady {
    /// `starter` is the process calling `Server::run`, the one that will wait.
    pub fn new(starter: Pid) -> DaemonReady {
        DaemonReady { starter }
    }
}

#[async_trait]
impl BackgroundService for DaemonReady {
    async fn start(&self, _shutdown: ShutdownWatch) {
        let deadline = tokio::time::Instant::now() + NOTIFY_FOR;
        let pid = self.starter.as_raw_nonzero();
        loop {
            match catches(self.starter, Signal::USR1) {
                Ok(true) => {
                    if let Err(err) = rustix::process::kill_process(self.starter, Signal::USR1) {
                        tracing::error!(starter = pid, error = %err, "Cannot tell the starting process that the daemon runs; it will give up and exit with failure.");
                    }
                    return;
                }
                Ok(false) if tokio::time::Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                Ok(false) => {
                    tracing::error!(
                        starter = pid,
                        "The starting process never waited for SIGUSR1; it is left to its own timeout."
                    );
                    return;
                }
                // It is gone: nobody waits for the news.
                Err(_) => return,
            }
        }
    }
}

/// Whether `pid` has a handler for `signal`, from the `SigCgt` mask of `/proc/PID/status`.
fn catches(pid: Pid, signal: Signal) -> std::io::Result<bool> {
    let status = std::fs::read_to_string(format!("/proc/{}/status", pid.as_raw_nonzero()))?;
    Ok(caught_in(&status, signal.as_raw()))
}

fn caught_in(status: &str, signal: i32) -> bool {
    let Some(mask) = status
        .lines()
        .find_map(|line| line.strip_prefix("SigCgt:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
    else {
        return false;
    };
    (1..=64).contains(&signal) && mask & (1 << (signal - 1)) != 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_caught_mask_is_read_bit_by_signal_number() {
        let status =
            "Name:\tvoltfleet-proxy\nSigIgn:\t0000000000001000\nSigCgt:\t0000000000000200\n";
        assert!(caught_in(status, Signal::USR1.as_raw()));
        assert!(!caught_in(status, Signal::USR2.as_raw()));
        assert!(!caught_in("Name:\tx\n", Signal::USR1.as_raw()));
    }

    #[test]
    fn this_process_is_seen_catching_what_it_handles() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        let own = rustix::process::getpid();
        let _guard = runtime.enter();
        let _listener =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::user_defined2())
                .expect("a SIGUSR2 handler");
        assert_eq!(catches(own, Signal::USR2).ok(), Some(true));
    }
}

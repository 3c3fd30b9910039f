//! `moto_server` (PyPI `moto[server]`, in `.venv`): AWS APIs on loopback for tests.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use anyhow::Context;

use crate::free_port;

/// moto_server on a free loopback port, killed when dropped.
#[derive(Debug)]
pub struct MotoServer {
    /// `http://127.0.0.1:PORT`, for the SDK clients' `endpoint_url`.
    pub endpoint: String,
    child: std::process::Child,
}

impl MotoServer {
    /// Starts `VOLTFLEET_MOTO_SERVER` (default `.venv/bin/moto_server`) and waits until it
    /// accepts connections.
    pub async fn start() -> anyhow::Result<MotoServer> {
        Self::start_on(free_port()?).await
    }

    /// Like `start`, on `port` (a test that first points a client at a closed port).
    pub async fn start_on(port: u16) -> anyhow::Result<MotoServer> {
        let program = std::env::var_os("VOLTFLEET_MOTO_SERVER")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/moto_server")
            });
        let child = std::process::Command::new(&program)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| {
                format!(
                    "starting {} (scripts/setup.sh installs it into .venv; or set VOLTFLEET_MOTO_SERVER)",
                    program.display()
                )
            })?;
        let server = MotoServer {
            endpoint: format!("http://127.0.0.1:{port}"),
            child,
        };
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            anyhow::ensure!(
                tokio::time::Instant::now() < deadline,
                "moto_server did not start"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(server)
    }
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

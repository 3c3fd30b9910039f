//! Harness for end-to-end tests: starts the real `voltfleet` binary as a child process on
//! random loopback ports, learns where each service listens from its JSON log, and stops it
//! with a real signal.
//!
//! The binaries are those cargo built next to this test executable (`cargo build --bins`
//! first; `make test` does).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, bail};

pub mod browser;
pub mod charger;
pub mod fleet;
pub mod moto;
pub mod origin;
pub mod pki;
pub mod proxy;
pub mod upstream;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};

/// How long a process may take to start or stop before a test gives up on it.
pub const PROCESS_DEADLINE: Duration = Duration::from_secs(60);

/// The services and their section names in the configuration.
pub const SERVICES: [&str; 5] = ["api", "backoffice", "ocpp", "ocpi", "jobs"];

/// Path of a binary of this workspace built in the same profile as the running test.
pub fn binary(name: &str) -> anyhow::Result<PathBuf> {
    let test_exe = std::env::current_exe()?;
    // <target>/<profile>/deps/<test> → <target>/<profile>/<name>
    let profile_dir = test_exe
        .parent()
        .and_then(Path::parent)
        .context("the test executable is not inside a cargo target directory")?;
    let path = profile_dir.join(name);
    if !path.is_file() {
        bail!(
            "{} does not exist; build the binaries first with `cargo build --workspace --bins` (make test does)",
            path.display()
        );
    }
    Ok(path)
}

/// A `voltfleet` command ready to run, with every service on a random loopback port and JSON
/// logs so the harness can read them.
#[derive(Debug)]
pub struct Voltfleet {
    command: Command,
    /// A fresh `data_dir` unless the test sets its own; removed when the process is done.
    data_dir: tempfile::TempDir,
    /// The proxy's HTTP and admin ports under `up`.
    proxy_ports: (u16, u16),
}

impl Voltfleet {
    pub fn new(args: &[&str]) -> anyhow::Result<Voltfleet> {
        let data_dir = tempfile::tempdir()?;
        let mut command = Command::new(binary("voltfleet")?);
        command
            .args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("VOLTFLEET__LOG__FORMAT", "json")
            .env("VOLTFLEET__LOG__LEVEL", "info")
            .env("VOLTFLEET__SHUTDOWN__DRAIN_TIMEOUT", "5s")
            .env("VOLTFLEET__DATA_DIR", data_dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        // `up` starts the proxy in front; give it ports of its own too.
        let proxy_ports = (free_port()?, free_port()?);
        command
            .env(
                "VOLTFLEET__UP__PROXY_LISTEN",
                format!("127.0.0.1:{}", proxy_ports.0),
            )
            .env(
                "VOLTFLEET__UP__PROXY_ADMIN_LISTEN",
                format!("127.0.0.1:{}", proxy_ports.1),
            );
        for service in SERVICES {
            command.env(
                format!("VOLTFLEET__{}__LISTEN", service.to_ascii_uppercase()),
                "127.0.0.1:0",
            );
        }
        Ok(Voltfleet {
            command,
            data_dir,
            proxy_ports,
        })
    }

    pub fn env(mut self, key: &str, value: impl AsRef<std::ffi::OsStr>) -> Self {
        self.command.env(key, value);
        self
    }

    /// Runs to completion (for commands such as `migrate` and `config check`).
    pub async fn output(mut self) -> anyhow::Result<Finished> {
        let output = tokio::time::timeout(PROCESS_DEADLINE, self.command.output())
            .await
            .context("voltfleet did not finish in time")??;
        Ok(Finished {
            status: output.status,
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        })
    }

    /// Starts a long-running command and waits until `services` all log that they listen.
    pub async fn start(mut self, services: &[&str]) -> anyhow::Result<Running> {
        let mut child = self.command.spawn().context("spawning voltfleet")?;
        let output = Output::default();
        let stdout = child.stdout.take().context("stdout is piped")?;
        let stderr = child.stderr.take().context("stderr is piped")?;
        collect_lines(stdout, output.stdout.clone());
        collect_lines(stderr, output.stderr.clone());
        let mut running = Running {
            child,
            _data_dir: self.data_dir,
            proxy_ports: self.proxy_ports,
            output,
            addresses: HashMap::new(),
        };
        let deadline = tokio::time::Instant::now() + PROCESS_DEADLINE;
        while running.addresses.len() < services.len() {
            if let Some(status) = running.child.try_wait()? {
                tokio::time::sleep(Duration::from_millis(200)).await;
                bail!(
                    "voltfleet exited with {status} before listening; stderr:\n{}",
                    running.stderr()
                );
            }
            if tokio::time::Instant::now() > deadline {
                bail!(
                    "voltfleet did not listen on {services:?} in time; stderr:\n{}",
                    running.stderr()
                );
            }
            running.addresses = listening_addresses(&running.output.stderr_lines());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(running)
    }
}

/// The line of `config check` output that sets `key`, or an empty string.
pub fn config_line(output: &str, key: &str) -> String {
    let assignment = format!("{key} =");
    output
        .lines()
        .find(|line| line.starts_with(&assignment))
        .unwrap_or_default()
        .to_string()
}

/// A finished process and what it printed.
#[derive(Debug)]
pub struct Finished {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Finished {
    /// Asserts that the process failed and said each of `expected` (on either stream): a
    /// configuration check that must name every problem.
    #[track_caller]
    pub fn assert_refused_saying(&self, expected: &[&str]) {
        let output = format!("{}{}", self.stdout, self.stderr);
        assert!(!self.status.success(), "it did not fail: {output}");
        for expected in expected {
            assert!(
                output.contains(expected),
                "{expected:?} missing from:\n{output}"
            );
        }
    }
}

#[derive(Debug, Default, Clone)]
pub(crate) struct Output {
    pub(crate) stdout: Arc<Mutex<Vec<String>>>,
    pub(crate) stderr: Arc<Mutex<Vec<String>>>,
}

impl Output {
    pub(crate) fn stderr_lines(&self) -> Vec<String> {
        self.stderr.lock().map(|l| l.clone()).unwrap_or_default()
    }
}

pub(crate) fn collect_lines(
    stream: impl AsyncRead + Unpin + Send + 'static,
    sink: Arc<Mutex<Vec<String>>>,
) {
    tokio::spawn(async move {
        let mut lines = BufReader::new(stream).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            if let Ok(mut sink) = sink.lock() {
                sink.push(line);
            }
        }
    });
}

/// Addresses from the "Service listening." JSON log lines.
fn listening_addresses(lines: &[String]) -> HashMap<String, SocketAddr> {
    lines
        .iter()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|event| event["message"] == "Service listening.")
        .filter_map(|event| {
            let service = event["service"].as_str()?.to_string();
            let address = event["address"].as_str()?.parse().ok()?;
            Some((service, address))
        })
        .collect()
}

/// A running `voltfleet` process.
#[derive(Debug)]
pub struct Running {
    child: Child,
    _data_dir: tempfile::TempDir,
    proxy_ports: (u16, u16),
    output: Output,
    addresses: HashMap<String, SocketAddr>,
}

impl Running {
    /// `http://<address of service><path>`.
    pub fn url(&self, service: &str, path: &str) -> String {
        match self.addresses.get(service) {
            Some(address) => format!("http://{address}{path}"),
            None => format!("http://service-{service}-is-not-running{path}"),
        }
    }

    /// `http://<proxy started by up><path>`.
    pub fn proxy_url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.proxy_ports.0)
    }

    /// `http://<admin listener of the proxy started by up><path>`.
    pub fn proxy_admin_url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.proxy_ports.1)
    }

    pub fn stdout(&self) -> String {
        self.output
            .stdout
            .lock()
            .map(|l| l.join("\n"))
            .unwrap_or_default()
    }

    pub fn stderr(&self) -> String {
        self.output.stderr_lines().join("\n")
    }

    /// Waits (bounded) until stdout contains `text`.
    pub async fn wait_for_stdout(&self, text: &str) -> anyhow::Result<String> {
        let deadline = tokio::time::Instant::now() + PROCESS_DEADLINE;
        loop {
            let stdout = self.stdout();
            if stdout.contains(text) {
                return Ok(stdout);
            }
            if tokio::time::Instant::now() > deadline {
                bail!("stdout never contained {text:?}; it was:\n{stdout}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Sends `signal` (such as "TERM" or "INT") and waits for the process to exit.
    pub async fn stop_with(mut self, signal: &str) -> anyhow::Result<(ExitStatus, String)> {
        let pid = self.child.id().context("the process already exited")?;
        let sent = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(pid.to_string())
            .status()
            .await?;
        if !sent.success() {
            bail!("kill -{signal} {pid} failed");
        }
        let status = tokio::time::timeout(PROCESS_DEADLINE, self.child.wait())
            .await
            .context("voltfleet did not stop after the signal")??;
        // Let the readers drain the last lines.
        tokio::time::sleep(Duration::from_millis(100)).await;
        Ok((status, self.stderr()))
    }
}

/// A Redis server of a test's own on a free loopback port, stopped when dropped.
#[derive(Debug)]
pub struct PrivateRedis {
    pub port: u16,
    child: Option<std::process::Child>,
}

impl PrivateRedis {
    pub async fn start() -> anyhow::Result<PrivateRedis> {
        let port = free_port()?;
        let mut redis = PrivateRedis { port, child: None };
        redis.restart().await?;
        Ok(redis)
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Starts the server (again) on the same port and waits until it answers.
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        let child = std::process::Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &self.port.to_string()])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting redis-server (make test installs it)")?;
        self.child = Some(child);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while tokio::net::TcpStream::connect(("127.0.0.1", self.port))
            .await
            .is_err()
        {
            if tokio::time::Instant::now() > deadline {
                bail!("redis-server on port {} did not come up", self.port);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(())
    }

    /// Sends a signal to the server: `STOP` freezes it (connections stay open, nothing
    /// answers), `CONT` thaws it.
    pub fn signal(&self, signal: &str) -> anyhow::Result<()> {
        let child = self.child.as_ref().context("redis-server is not running")?;
        let status = std::process::Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(child.id().to_string())
            .status()?;
        anyhow::ensure!(status.success(), "kill -{signal} redis-server failed");
        Ok(())
    }

    /// Kills the server, as a lost ElastiCache node would vanish.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A port that was free a moment ago on 127.0.0.1.
///
/// Ports come from 20000–32767, below the kernel's ephemeral range, each handed out once per
/// test process: a port the OS picked for "port 0" could be given to another socket (an
/// upstream, a client) between this probe and the server's own bind.
pub fn free_port() -> anyhow::Result<u16> {
    use std::sync::atomic::{AtomicU32, Ordering};
    const FIRST: u32 = 20_000;
    const SPAN: u32 = 12_768;
    static NEXT: AtomicU32 = AtomicU32::new(0);
    // Spread test processes apart so two running at once rarely meet.
    let start = (std::process::id() % 64) * 199;
    for _ in 0..SPAN {
        let offset = (start + NEXT.fetch_add(1, Ordering::SeqCst)) % SPAN;
        let port = u16::try_from(FIRST + offset)?;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return Ok(port);
        }
    }
    bail!("no free port between {FIRST} and {}", FIRST + SPAN)
}

/// GETs `url` and returns the status and body.
pub async fn get(url: &str) -> anyhow::Result<(u16, String)> {
    let response = reqwest::Client::new()
        .get(url)
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .with_context(|| format!("GET {url}"))?;
    let status = response.status().as_u16();
    Ok((status, response.text().await?))
}

/// A TCP forwarder on a free loopback port in front of a real server, that a test can cut (every
/// connection dropped, new ones refused) and restore, as a network partition would.
#[derive(Debug)]
pub struct TcpGate {
    pub port: u16,
    open: Arc<std::sync::atomic::AtomicBool>,
    generation: tokio::sync::watch::Sender<u64>,
    task: tokio::task::JoinHandle<()>,
}

impl TcpGate {
    /// Starts forwarding from a new port to `target`.
    pub async fn start(target: SocketAddr) -> anyhow::Result<TcpGate> {
        use std::sync::atomic::Ordering;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let open = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let (generation, _) = tokio::sync::watch::channel(0u64);
        let accept_open = open.clone();
        let cuts = generation.clone();
        let task = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if !accept_open.load(Ordering::SeqCst) {
                    continue; // dropping the socket refuses the client
                }
                let mut cut = cuts.subscribe();
                tokio::spawn(async move {
                    let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = cut.changed() => {}
                    }
                });
            }
        });
        Ok(TcpGate {
            port,
            open,
            generation,
            task,
        })
    }

    /// Drops every forwarded connection and refuses new ones.
    pub fn cut(&self) {
        self.open.store(false, std::sync::atomic::Ordering::SeqCst);
        self.generation.send_modify(|g| *g += 1);
    }

    /// Accepts and forwards connections again.
    pub fn restore(&self) {
        self.open.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Drop for TcpGate {
    fn drop(&mut self) {
        self.task.abort();
    }
}

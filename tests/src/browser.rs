//! Browser tests: a Node script in `tests/browser/` drives Debian's headless Chromium with
//! `playwright-core` (both installed by `scripts/setup.sh`), while the Rust test owns the
//! stack and the chargers. The script says what it reached with `step NAME` lines on its
//! standard output; the test waits for them (bounded) to play the charger's part in time.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

/// How long a browser script may run before the test gives up on it.
pub const SCRIPT_DEADLINE: Duration = Duration::from_secs(90);

/// `tests/browser/`, where the scripts and their `node_modules` live.
pub fn scripts_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("browser")
}

/// The repository's `site/`.
pub fn site_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../site")
}

/// Where a test's screenshots go: `<cargo target dir>/test-artefacts/<name>/`, emptied.
pub fn artefacts_dir(name: &str) -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    // <target>/<profile>/deps/<test> → <target>
    let target = exe
        .parent()
        .and_then(Path::parent)
        .and_then(Path::parent)
        .context("the test executable is not inside a cargo target directory")?;
    let dir = target.join("test-artefacts").join(name);
    if dir.exists() {
        std::fs::remove_dir_all(&dir).with_context(|| format!("emptying {}", dir.display()))?;
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}

/// Node and Chromium, checked to be there: a missing one fails the test, saying how to
/// install it, instead of letting it pass without a browser.
#[derive(Debug, Clone)]
pub struct BrowserTools {
    pub node: PathBuf,
    pub chromium: PathBuf,
}

impl BrowserTools {
    pub fn find() -> anyhow::Result<BrowserTools> {
        let setup = "run `bash scripts/setup.sh` (make test does), which installs Debian's chromium and nodejs and runs npm ci in tests/browser";
        let chromium = std::env::var_os("VOLTFLEET_TEST_CHROMIUM")
            .map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from);
        if !chromium.is_file() {
            bail!("Chromium is not at {}; {setup}", chromium.display());
        }
        let node = PathBuf::from("node");
        let version = std::process::Command::new(&node)
            .arg("--version")
            .output()
            .map_err(|err| anyhow::anyhow!("node cannot be started ({err}); {setup}"))?;
        if !version.status.success() {
            bail!("`node --version` failed; {setup}");
        }
        for package in ["playwright-core", "axe-core"] {
            let manifest = scripts_dir()
                .join("node_modules")
                .join(package)
                .join("package.json");
            if !manifest.is_file() {
                bail!("{} is missing; {setup}", manifest.display());
            }
        }
        Ok(BrowserTools { node, chromium })
    }

    /// Starts `tests/browser/<script>` with `env`.
    pub fn run(&self, script: &str, env: &[(&str, String)]) -> anyhow::Result<BrowserScript> {
        let mut command = Command::new(&self.node);
        command
            .arg(scripts_dir().join(script))
            .current_dir(scripts_dir())
            .env("VOLTFLEET_CHROMIUM", &self.chromium)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        for (key, value) in env {
            command.env(key, value);
        }
        let mut child = command
            .spawn()
            .with_context(|| format!("starting node {script}"))?;
        let stdout = child.stdout.take().context("stdout is piped")?;
        let stderr = child.stderr.take().context("stderr is piped")?;
        let (sender, lines) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut reader = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = reader.next_line().await {
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        let errors = Arc::new(Mutex::new(Vec::new()));
        let sink = errors.clone();
        let stderr_reader = tokio::spawn(async move {
            let mut reader = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = reader.next_line().await {
                if let Ok(mut sink) = sink.lock() {
                    sink.push(line);
                }
            }
        });
        Ok(BrowserScript {
            name: script.to_owned(),
            child,
            lines,
            seen: Vec::new(),
            errors,
            stderr_reader: Some(stderr_reader),
            deadline: tokio::time::Instant::now() + SCRIPT_DEADLINE,
        })
    }
}

/// A running browser script.
#[derive(Debug)]
pub struct BrowserScript {
    name: String,
    child: Child,
    lines: mpsc::UnboundedReceiver<String>,
    /// Every line it printed so far.
    seen: Vec<String>,
    errors: Arc<Mutex<Vec<String>>>,
    /// Ends when the script's standard error closes.
    stderr_reader: Option<tokio::task::JoinHandle<()>>,
    deadline: tokio::time::Instant,
}

impl BrowserScript {
    /// Waits until the script prints `step <name>`.
    pub async fn step(&mut self, name: &str) -> anyhow::Result<()> {
        self.line(&format!("step {name}")).await
    }

    /// Waits for the script to print `done` and exit successfully; returns what it printed.
    pub async fn finish(mut self) -> anyhow::Result<Vec<String>> {
        self.line("done").await?;
        let status = tokio::time::timeout_at(self.deadline, self.child.wait())
            .await
            .with_context(|| format!("{} did not exit", self.name))??;
        if !status.success() {
            let output = self.output().await;
            bail!("{} failed ({status}):\n{output}", self.name);
        }
        Ok(self.seen)
    }

    /// Waits until the script prints `wanted`; fails when it exits first or the deadline
    /// passes, with everything it printed.
    async fn line(&mut self, wanted: &str) -> anyhow::Result<()> {
        loop {
            match tokio::time::timeout_at(self.deadline, self.lines.recv()).await {
                Ok(Some(line)) => {
                    eprintln!("{}: {line}", self.name);
                    let found = line == wanted;
                    self.seen.push(line);
                    if found {
                        return Ok(());
                    }
                }
                Ok(None) => {
                    let status = self.child.wait().await?;
                    let output = self.output().await;
                    bail!(
                        "{} exited ({status}) before printing {wanted:?}:\n{output}",
                        self.name
                    );
                }
                Err(_) => {
                    let output = self.output().await;
                    bail!(
                        "{} did not print {wanted:?} within {SCRIPT_DEADLINE:?}:\n{output}",
                        self.name
                    );
                }
            }
        }
    }

    async fn output(&mut self) -> String {
        // An exited script's last lines may still be on their way through the reader.
        if let Some(reader) = self.stderr_reader.take() {
            let _ = tokio::time::timeout(Duration::from_secs(2), reader).await;
        }
        let errors = self.errors.lock().map(|e| e.join("\n")).unwrap_or_default();
        format!("--- stdout\n{}\n--- stderr\n{errors}", self.seen.join("\n"))
    }
}

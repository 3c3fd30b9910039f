//! Runs the real `voltfleet-proxy` binary with a configuration written by the test.
//!
//! Configurations are TOML templates in which `{LISTEN}` and `{ADMIN}` become free loopback
//! addresses and `{DIR}` the test's private directory; `[server]` and `[admin]` are added.

use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::process::{Child, Command};

use crate::{Finished, Output, PROCESS_DEADLINE, binary, collect_lines, free_port};

/// A running proxy.
#[derive(Debug)]
pub struct ProxyProcess {
    child: Child,
    output: Output,
    pub port: u16,
    pub admin_port: u16,
    dir: std::sync::Arc<tempfile::TempDir>,
    template: String,
    /// Lines added under `[admin]`.
    admin_extra: String,
    /// Environment variables the process is started with, besides the test's own.
    env: Vec<(String, String)>,
}

impl ProxyProcess {
    fn render(
        template: &str,
        admin_extra: &str,
        port: u16,
        admin_port: u16,
        dir: &std::path::Path,
    ) -> String {
        let admin_extra = admin_extra.replace("{DIR}", &dir.display().to_string());
        let body = template
            .replace("{LISTEN}", &format!("127.0.0.1:{port}"))
            .replace("{ADMIN}", &format!("127.0.0.1:{admin_port}"))
            .replace("{DIR}", &dir.display().to_string());
        format!(
            "[server]\nthreads = 2\ngrace_period = \"2s\"\ngraceful_shutdown_timeout = \"1s\"\nupgrade_socket = \"{dir}/upgrade.sock\"\npid_file = \"{dir}/proxy.pid\"\n\n[admin]\nlisten = \"127.0.0.1:{admin_port}\"\n{admin_extra}\n\n{body}",
            dir = dir.display()
        )
    }

    fn config_path(&self) -> PathBuf {
        self.dir.path().join("proxy.toml")
    }

    /// Runs `voltfleet-proxy -t` on a template.
    pub async fn check(template: &str) -> anyhow::Result<Finished> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("proxy.toml");
        std::fs::write(
            &path,
            Self::render(template, "", free_port()?, free_port()?, dir.path()),
        )?;
        let output = tokio::time::timeout(
            PROCESS_DEADLINE,
            Command::new(binary("voltfleet-proxy")?)
                .arg("-t")
                .arg("-c")
                .arg(&path)
                .output(),
        )
        .await
        .context("voltfleet-proxy -t did not finish")??;
        Ok(Finished {
            status: output.status,
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        })
    }

    /// Starts the proxy and waits until its admin listener and its first listener answer.
    pub async fn start(template: &str) -> anyhow::Result<ProxyProcess> {
        Self::start_with(template, "", &[]).await
    }

    /// Like `start`, with `admin_extra` added under `[admin]` and `files` (name, content)
    /// written into the proxy's directory first.
    pub async fn start_with(
        template: &str,
        admin_extra: &str,
        files: &[(&str, &str)],
    ) -> anyhow::Result<ProxyProcess> {
        Self::start_with_env(template, admin_extra, files, &[]).await
    }

    /// Like `start_with`, with `env` (name, value) set for the process (AWS credentials for
    /// a test server, say).
    pub async fn start_with_env(
        template: &str,
        admin_extra: &str,
        files: &[(&str, &str)],
        env: &[(&str, &str)],
    ) -> anyhow::Result<ProxyProcess> {
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect();
        let dir = tempfile::tempdir()?;
        for (name, content) in files {
            std::fs::write(dir.path().join(name), content)?;
        }
        let (port, admin_port) = (free_port()?, free_port()?);
        std::fs::write(
            dir.path().join("proxy.toml"),
            Self::render(template, admin_extra, port, admin_port, dir.path()),
        )?;
        let (child, output) = spawn(&[], &dir.path().join("proxy.toml"), &env)?;
        let mut proxy = ProxyProcess {
            child,
            output,
            port,
            admin_port,
            dir: std::sync::Arc::new(dir),
            template: template.to_string(),
            admin_extra: admin_extra.to_string(),
            env,
        };
        proxy.wait_until_listening().await?;
        Ok(proxy)
    }

    /// Starts a second proxy with `--upgrade` on the same configuration, then sends SIGQUIT to
    /// this one so it hands over its listening sockets; returns the new process once it serves.
    pub async fn upgrade(&self) -> anyhow::Result<ProxyProcess> {
        let (child, output) = spawn(&["--upgrade"], &self.config_path(), &self.env)?;
        let mut successor = ProxyProcess {
            child,
            output,
            port: self.port,
            admin_port: self.admin_port,
            dir: self.dir.clone(),
            template: self.template.clone(),
            admin_extra: self.admin_extra.clone(),
            env: self.env.clone(),
        };
        // The new process waits on the upgrade socket; give it a moment to open it.
        let socket = self.dir.path().join("upgrade.sock");
        let deadline = tokio::time::Instant::now() + PROCESS_DEADLINE;
        while !socket.exists() {
            anyhow::ensure!(
                tokio::time::Instant::now() < deadline,
                "the upgrade socket never appeared; stderr:\n{}",
                successor.stderr()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.signal("QUIT").await?;
        successor.wait_until_listening().await?;
        Ok(successor)
    }

    /// Waits for the process to exit by itself (after handing over, or after a signal).
    pub async fn wait(mut self) -> anyhow::Result<ExitStatus> {
        let status = tokio::time::timeout(PROCESS_DEADLINE, self.child.wait())
            .await
            .context("the proxy did not exit")??;
        Ok(status)
    }

    async fn wait_until_listening(&mut self) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + PROCESS_DEADLINE;
        loop {
            // Someone else answering on our port must not pass for our proxy.
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "voltfleet-proxy exited with {status}; stderr:\n{}",
                    self.stderr()
                );
            }
            let admin = tokio::net::TcpStream::connect(("127.0.0.1", self.admin_port)).await;
            let http = tokio::net::TcpStream::connect(("127.0.0.1", self.port)).await;
            if admin.is_ok() && http.is_ok() {
                return Ok(());
            }
            if tokio::time::Instant::now() > deadline {
                bail!(
                    "voltfleet-proxy did not listen in time; stderr:\n{}",
                    self.stderr()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// The admin listener's `/metrics`, or empty when it does not answer.
    pub async fn metrics(&self) -> String {
        match reqwest::get(self.admin_url("/metrics")).await {
            Ok(response) => response.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        }
    }

    /// One series' value, `series` being its name with its labels as printed.
    pub async fn metric(&self, series: &str) -> Option<f64> {
        series_value(&self.metrics().await, series)
    }

    /// Waits (bounded, 5 s) until `series` reaches `value`.
    pub async fn wait_for_metric(&self, series: &str, value: f64) -> anyhow::Result<()> {
        for _ in 0..100 {
            if self.metric(series).await == Some(value) {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        bail!("{series} never reached {value}; stderr:\n{}", self.stderr())
    }

    pub fn ws_url(&self, path: &str) -> String {
        format!("ws://127.0.0.1:{}{path}", self.port)
    }

    pub fn admin_url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.admin_port)
    }

    /// The proxy's private directory, `{DIR}` in templates.
    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    pub fn stderr(&self) -> String {
        self.output.stderr_lines().join("\n")
    }

    /// Access log lines (JSON) written so far.
    pub fn access_log(&self) -> Vec<serde_json::Value> {
        self.output
            .stdout
            .lock()
            .map(|lines| {
                lines
                    .iter()
                    .filter_map(|l| serde_json::from_str(l).ok())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Replaces the configuration file with `template` (same ports) and sends SIGHUP.
    pub async fn reload(&mut self, template: &str) -> anyhow::Result<()> {
        std::fs::write(
            self.config_path(),
            Self::render(
                template,
                &self.admin_extra,
                self.port,
                self.admin_port,
                self.dir.path(),
            ),
        )?;
        self.template = template.to_string();
        self.signal("HUP").await
    }

    pub async fn signal(&self, signal: &str) -> anyhow::Result<()> {
        let pid = self.child.id().context("the proxy already exited")?;
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(pid.to_string())
            .status()
            .await?;
        anyhow::ensure!(status.success(), "kill -{signal} {pid} failed");
        Ok(())
    }

    /// Sends `signal` and waits for the proxy to exit.
    pub async fn stop_with(mut self, signal: &str) -> anyhow::Result<ExitStatus> {
        self.signal(signal).await?;
        let status = tokio::time::timeout(PROCESS_DEADLINE, self.child.wait())
            .await
            .context("the proxy did not stop")??;
        Ok(status)
    }
}

/// Starts `voltfleet-proxy ARGS -c CONFIG` with its output collected line by line.
fn spawn(
    args: &[&str],
    config: &std::path::Path,
    env: &[(String, String)],
) -> anyhow::Result<(Child, Output)> {
    let mut child = Command::new(binary("voltfleet-proxy")?)
        .args(args)
        .envs(env.iter().map(|(name, value)| (name, value)))
        .arg("-c")
        .arg(config)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("spawning voltfleet-proxy")?;
    let output = Output::default();
    collect_lines(child.stdout.take().context("piped")?, output.stdout.clone());
    collect_lines(child.stderr.take().context("piped")?, output.stderr.clone());
    Ok((child, output))
}

/// One series' value in a Prometheus text exposition.
pub fn series_value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
}

//! A real OCPP 1.6J charger for the tests: the `ocpp` package's ChargePoint (PyPI), run by
//! `tests/ocpp/charger.py` in the repository's `.venv` and driven over its stdin and stdout
//! with one JSON object per line (the script's doc comment lists them).

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::mpsc;

/// How long a charger waits for anything the test expects of it.
pub const CHARGER_DEADLINE: Duration = Duration::from_secs(20);

/// How to connect.
#[derive(Debug, Clone)]
pub struct ChargerOptions {
    /// `ws://host:port/ocpp`; the id is appended.
    pub base_url: String,
    pub id: String,
    pub password: Option<String>,
    /// Comma-separated subprotocols to offer.
    pub protocols: String,
    /// Only raw frames: the test speaks OCPP-J itself.
    pub raw: bool,
}

impl ChargerOptions {
    pub fn new(base_url: &str, id: &str) -> ChargerOptions {
        ChargerOptions {
            base_url: base_url.to_owned(),
            id: id.to_owned(),
            password: None,
            protocols: "ocpp1.6".to_owned(),
            raw: false,
        }
    }

    pub fn password(mut self, password: &str) -> ChargerOptions {
        self.password = Some(password.to_owned());
        self
    }

    pub fn protocols(mut self, protocols: &str) -> ChargerOptions {
        self.protocols = protocols.to_owned();
        self
    }

    pub fn raw(mut self) -> ChargerOptions {
        self.raw = true;
        self
    }
}

/// The Python interpreter of the repository's virtualenv (`make test` creates it), or
/// `VOLTFLEET_TEST_PYTHON`.
fn python() -> PathBuf {
    std::env::var_os("VOLTFLEET_TEST_PYTHON").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python"),
        PathBuf::from,
    )
}

/// A running charger process.
#[derive(Debug)]
pub struct Charger {
    pub id: String,
    child: Child,
    stdin: ChildStdin,
    events: mpsc::UnboundedReceiver<Value>,
    /// Events read while waiting for another one.
    backlog: Vec<Value>,
}

/// What became of a connection attempt.
#[derive(Debug)]
pub enum Connected {
    /// The handshake succeeded with this subprotocol (`null` for none).
    Open(Box<Charger>, Value),
    /// The handshake was refused with this HTTP status and body.
    Refused(u16, String),
}

impl Charger {
    /// Connects and expects the handshake to succeed.
    pub async fn connect(options: ChargerOptions) -> anyhow::Result<Charger> {
        match Charger::attempt(options).await? {
            Connected::Open(charger, _) => Ok(*charger),
            Connected::Refused(status, body) => bail!("the handshake was refused: {status} {body}"),
        }
    }

    /// Connects and reports how the handshake went.
    pub async fn attempt(options: ChargerOptions) -> anyhow::Result<Connected> {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("ocpp/charger.py");
        let mut command = Command::new(python());
        command
            .arg(script)
            .args(["--url", &options.base_url, "--id", &options.id])
            .args(["--protocol", &options.protocols])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        if let Some(password) = &options.password {
            command.args(["--password", password]);
        }
        if options.raw {
            command.arg("--raw");
        }
        let mut child = command
            .spawn()
            .context("starting the test charger (make test creates .venv with the ocpp package)")?;
        let stdin = child.stdin.take().context("stdin is piped")?;
        let stdout = child.stdout.take().context("stdout is piped")?;
        let (sender, events) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                match serde_json::from_str::<Value>(&line) {
                    Ok(event) => {
                        if sender.send(event).is_err() {
                            break;
                        }
                    }
                    Err(_) => eprintln!("test charger: {line}"),
                }
            }
        });
        let mut charger = Charger {
            id: options.id,
            child,
            stdin,
            events,
            backlog: Vec::new(),
        };
        let first = charger
            .next_matching(|event| event["event"] == "connected" || event["event"] == "refused")
            .await?;
        if first["event"] == "refused" {
            let status = first["status"].as_u64().unwrap_or_default();
            return Ok(Connected::Refused(
                u16::try_from(status).unwrap_or_default(),
                first["body"].as_str().unwrap_or_default().to_owned(),
            ));
        }
        Ok(Connected::Open(
            Box::new(charger),
            first["protocol"].clone(),
        ))
    }

    async fn send_line(&mut self, command: Value) -> anyhow::Result<()> {
        let mut line = serde_json::to_vec(&command)?;
        line.push(b'\n');
        self.stdin
            .write_all(&line)
            .await
            .context("the test charger exited")?;
        self.stdin.flush().await?;
        Ok(())
    }

    /// Sends a CALL and returns the `result` or `error` event (the schema of the payload is
    /// checked by the library unless `skip_validation`).
    pub async fn call(&mut self, action: &str, payload: Value) -> anyhow::Result<Value> {
        self.call_with(action, payload, false).await
    }

    pub async fn call_with(
        &mut self,
        action: &str,
        payload: Value,
        skip_validation: bool,
    ) -> anyhow::Result<Value> {
        self.send_line(json!({
            "op": "call", "action": action, "payload": payload, "skip_validation": skip_validation
        }))
        .await?;
        self.next_matching(|event| {
            matches!(
                event["event"].as_str(),
                Some("result" | "error" | "timeout")
            ) && event["action"] == action
        })
        .await
    }

    /// Sends a CALL that must be answered with a CALLRESULT; returns its payload.
    pub async fn call_ok(&mut self, action: &str, payload: Value) -> anyhow::Result<Value> {
        let event = self.call(action, payload).await?;
        anyhow::ensure!(
            event["event"] == "result",
            "{action} was not answered with a CALLRESULT: {event}"
        );
        Ok(event["payload"].clone())
    }

    /// Sets the answer to the central system's next CALLs of `action`.
    pub async fn answer(&mut self, action: &str, payload: Value) -> anyhow::Result<()> {
        self.send_line(json!({"op": "answer", "action": action, "payload": payload}))
            .await?;
        self.next_matching(|event| event["event"] == "ok").await?;
        Ok(())
    }

    /// Sends a text frame as it is.
    pub async fn raw(&mut self, text: &str) -> anyhow::Result<()> {
        self.send_line(json!({"op": "raw", "text": text})).await
    }

    /// Sends a text frame and returns the next frame the central system sends back (raw mode).
    pub async fn exchange(&mut self, text: &str) -> anyhow::Result<Value> {
        self.raw(text).await?;
        let frame = self
            .next_matching(|event| event["event"] == "frame" || event["event"] == "closed")
            .await?;
        anyhow::ensure!(
            frame["event"] == "frame",
            "closed instead of answering: {frame}"
        );
        let text = frame["text"].as_str().unwrap_or_default();
        serde_json::from_str(text).with_context(|| format!("the answer is not JSON: {text}"))
    }

    /// The next event that matches, from the backlog first; fails after [`CHARGER_DEADLINE`].
    pub async fn next_matching(
        &mut self,
        wanted: impl Fn(&Value) -> bool,
    ) -> anyhow::Result<Value> {
        if let Some(index) = self.backlog.iter().position(&wanted) {
            return Ok(self.backlog.remove(index));
        }
        let deadline = tokio::time::Instant::now() + CHARGER_DEADLINE;
        loop {
            let event = tokio::time::timeout_at(deadline, self.events.recv())
                .await
                .with_context(|| {
                    format!(
                        "charger {} waited in vain; it had seen {:?}",
                        self.id, self.backlog
                    )
                })?
                .with_context(|| {
                    format!("charger {} exited; it had seen {:?}", self.id, self.backlog)
                })?;
            if wanted(&event) {
                return Ok(event);
            }
            self.backlog.push(event);
        }
    }

    /// The next CALL of `action` the central system sent to this charger.
    pub async fn received(&mut self, action: &str) -> anyhow::Result<Value> {
        let event = self
            .next_matching(|event| event["event"] == "received" && event["action"] == action)
            .await?;
        Ok(event["payload"].clone())
    }

    /// Waits until the central system closes the connection; returns the close code.
    pub async fn closed(&mut self) -> anyhow::Result<(u64, String)> {
        let event = self
            .next_matching(|event| event["event"] == "closed")
            .await?;
        Ok((
            event["code"].as_u64().unwrap_or_default(),
            event["reason"].as_str().unwrap_or_default().to_owned(),
        ))
    }

    /// Closes the WebSocket and waits for the process to exit.
    pub async fn close(mut self) -> anyhow::Result<()> {
        let _ = self.send_line(json!({"op": "close"})).await;
        let _ = tokio::time::timeout(CHARGER_DEADLINE, self.child.wait()).await;
        Ok(())
    }

    /// Kills the charger without a close frame, as a power cut or a lost modem link would.
    pub async fn kill(mut self) {
        let _ = self.child.kill().await;
    }
}

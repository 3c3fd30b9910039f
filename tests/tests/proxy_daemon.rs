//! voltfleet-proxy as systemd runs it (`systemd/voltfleet-proxy.service`): a daemon that names
//! itself in its PID file and keeps writing to the streams it was started with (the journal,
//! under systemd), upgraded by the unit's own `ExecReload=` lines while clients keep being
//! served, a broken file refused before the running proxy is touched, and an upgrade nobody
//! takes over ending in a failure that `Restart=on-failure` acts on.
//!
//! systemd adopts the processes its services leave behind when they daemonize; this test
//! process makes itself a subreaper and does the same, so that it sees whether a daemon still
//! runs and how it exited as systemd does.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, bail, ensure};
use rustix::process::{Pid, Signal, WaitOptions, WaitStatus};
use voltfleet_e2e::upstream::TestUpstream;
use voltfleet_e2e::{PROCESS_DEADLINE, binary, free_port, get};

/// The unit's command lines, read from the file systemd reads.
struct Unit {
    start_pre: Vec<String>,
    start: Vec<String>,
    reload: Vec<String>,
}

impl Unit {
    fn read() -> anyhow::Result<Unit> {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../systemd/voltfleet-proxy.service");
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        // Settings as systemd reads them: comments dropped, continued lines joined.
        let mut settings = Vec::new();
        let mut pending = String::new();
        for line in text.lines().map(str::trim) {
            if pending.is_empty() && (line.starts_with('#') || line.starts_with(';')) {
                continue;
            }
            match line.strip_suffix('\\') {
                Some(head) => {
                    pending.push_str(head);
                    pending.push(' ');
                }
                None => {
                    pending.push_str(line);
                    settings.push(std::mem::take(&mut pending));
                }
            }
        }
        let values = |key: &str| -> Vec<String> {
            settings
                .iter()
                .filter_map(|setting| setting.strip_prefix(key)?.strip_prefix('='))
                .map(|value| value.trim().to_string())
                .collect()
        };
        let unit = Unit {
            start_pre: values("ExecStartPre"),
            start: values("ExecStart"),
            reload: values("ExecReload"),
        };
        ensure!(
            !unit.start.is_empty() && !unit.reload.is_empty(),
            "{} has no ExecStart= or no ExecReload=",
            path.display()
        );
        Ok(unit)
    }
}

/// A proxy's directory: its configuration, PID file, upgrade socket and "journal" — every
/// command's standard output and error appended to two files, as journald collects a unit's.
struct Site {
    dir: tempfile::TempDir,
    port: u16,
    admin_port: u16,
}

/// One command line that ran to its end, with what it wrote to standard error itself.
#[derive(Debug)]
struct Ran {
    line: String,
    status: ExitStatus,
    stderr: String,
}

impl Site {
    fn new() -> anyhow::Result<Site> {
        Ok(Site {
            dir: tempfile::tempdir()?,
            port: free_port()?,
            admin_port: free_port()?,
        })
    }

    fn config(&self) -> PathBuf {
        self.dir.path().join("proxy.toml")
    }

    /// A configuration sending everything to `upstream`. The PID file and the upgrade socket
    /// are relative to the file, which a daemon (working in `/`) must not take literally.
    fn write_config(&self, upstream: &TestUpstream) -> anyhow::Result<()> {
        self.write_text(&format!(
            "[server]\nthreads = 2\ngrace_period = \"2s\"\ngraceful_shutdown_timeout = \"1s\"\npid_file = \"proxy.pid\"\nupgrade_socket = \"upgrade.sock\"\n\n[admin]\nlisten = \"127.0.0.1:{admin}\"\n\n[[listeners]]\naddress = \"127.0.0.1:{port}\"\n\n[upstreams.app]\npeers = [{{ address = \"{upstream}\" }}]\n\n[[routes]]\npath = \"/\"\nupstream = \"app\"\n",
            admin = self.admin_port,
            port = self.port,
            upstream = upstream.address,
        ))
    }

    fn write_text(&self, text: &str) -> anyhow::Result<()> {
        std::fs::write(self.config(), text)?;
        Ok(())
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn journal(&self, stream: &str) -> PathBuf {
        self.dir.path().join(format!("journal-{stream}.log"))
    }

    fn journal_text(&self, stream: &str) -> String {
        std::fs::read_to_string(self.journal(stream)).unwrap_or_default()
    }

    /// The process the PID file names, if it names one.
    fn named(&self) -> Option<Pid> {
        let text = std::fs::read_to_string(self.dir.path().join("proxy.pid")).ok()?;
        Pid::from_raw(text.trim().parse().ok()?)
    }

    /// The unit's `line` with its binary, its configuration file and `$MAINPID` replaced by
    /// this build's binary, this site's file and `main_pid`.
    fn words(&self, line: &str, main_pid: Option<Pid>) -> anyhow::Result<Vec<String>> {
        let proxy = binary("voltfleet-proxy")?;
        line.split_whitespace()
            .map(|word| match word {
                "/usr/bin/voltfleet-proxy" => Ok(proxy.display().to_string()),
                "/etc/voltfleet/proxy.toml" => Ok(self.config().display().to_string()),
                "$MAINPID" => main_pid
                    .map(|pid| pid.as_raw_nonzero().to_string())
                    .context("the line needs $MAINPID and there is no main process"),
                other if other.starts_with('$') => bail!("{line:?} uses {other}, unknown here"),
                other => Ok(other.to_string()),
            })
            .collect()
    }

    /// Runs one command line to its end, its output appended to the journal.
    async fn run(&self, line: &str, main_pid: Option<Pid>) -> anyhow::Result<Ran> {
        self.run_in(line, main_pid, None).await
    }

    async fn run_in(
        &self,
        line: &str,
        main_pid: Option<Pid>,
        cwd: Option<&Path>,
    ) -> anyhow::Result<Ran> {
        let words = self.words(line, main_pid)?;
        let (program, args) = words.split_first().context("an empty command line")?;
        let append = |path: PathBuf| -> anyhow::Result<File> {
            Ok(OpenOptions::new().create(true).append(true).open(path)?)
        };
        let before = std::fs::metadata(self.journal("stderr")).map_or(0, |m| m.len());
        let mut command = tokio::process::Command::new(program);
        command
            .args(args)
            .stdin(Stdio::null())
            .stdout(append(self.journal("stdout"))?)
            .stderr(append(self.journal("stderr"))?)
            .kill_on_drop(true);
        if let Some(cwd) = cwd {
            command.current_dir(cwd);
        }
        let mut child = command
            .spawn()
            .with_context(|| format!("running {line:?}"))?;
        let status = tokio::time::timeout(PROCESS_DEADLINE, child.wait())
            .await
            .with_context(|| format!("{line:?} did not finish"))??;
        // A daemon keeps appending; what came before the command ended is the command's own.
        let journal = std::fs::read(self.journal("stderr"))?;
        let own = journal
            .get(usize::try_from(before).unwrap_or(usize::MAX)..)
            .unwrap_or_default();
        Ok(Ran {
            line: line.to_string(),
            status,
            stderr: String::from_utf8_lossy(own).into_owned(),
        })
    }

    /// Runs `lines` in order and stops at the first that fails, as systemd runs a unit's
    /// commands of one kind; returns those that ran.
    async fn run_all(&self, lines: &[String], main_pid: Option<Pid>) -> anyhow::Result<Vec<Ran>> {
        let mut ran = Vec::new();
        for line in lines {
            let done = self.run(line, main_pid).await?;
            let failed = !done.status.success();
            ran.push(done);
            if failed {
                break;
            }
        }
        Ok(ran)
    }

    /// Starts the proxy as systemd starts the unit, and adopts the daemon.
    async fn start(&self, unit: &Unit) -> anyhow::Result<Adopted> {
        let ran = self
            .run_all(&[unit.start_pre.clone(), unit.start.clone()].concat(), None)
            .await?;
        for done in &ran {
            ensure!(
                done.status.success(),
                "{:?} failed with {}: {}",
                done.line,
                done.status,
                done.stderr
            );
        }
        ensure_waited_for_the_daemon(ran.last())?;
        self.adopt_named()
    }

    /// The running process the PID file names, other than `previous`: at once, since the
    /// command that started it has ended and systemd reads the file right then.
    fn adopt_named(&self) -> anyhow::Result<Adopted> {
        self.adopt_other_than(None)
    }

    fn adopt_other_than(&self, previous: Option<Pid>) -> anyhow::Result<Adopted> {
        let pid = self.named().with_context(|| {
            format!(
                "the starting command ended and the PID file names no process; journal:\n{}",
                self.journal_text("stderr")
            )
        })?;
        ensure!(
            Some(pid) != previous,
            "the starting command ended and the PID file still names the previous process {pid:?}"
        );
        let daemon = Adopted::new(pid);
        ensure!(
            daemon.running()?,
            "the PID file names {pid:?}, which is not running; journal:\n{}",
            self.journal_text("stderr")
        );
        Ok(daemon)
    }

    /// Waits (bounded) until the proxy answers on its listener.
    async fn wait_until_serving(&self) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + PROCESS_DEADLINE;
        while tokio::net::TcpStream::connect(("127.0.0.1", self.port))
            .await
            .is_err()
        {
            ensure!(
                tokio::time::Instant::now() < deadline,
                "the proxy never listened; journal:\n{}",
                self.journal_text("stderr")
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(())
    }
}

/// The command that daemonized ended only once the daemon said it runs (Pingora's waiting
/// parent logs it), which is after the daemon wrote the PID file: systemd, reading the file the
/// moment the command ends, cannot find it missing or naming the previous process.
fn ensure_waited_for_the_daemon(last: Option<&Ran>) -> anyhow::Result<()> {
    let last = last.context("nothing ran")?;
    ensure!(
        last.stderr.contains("Daemon signaled readiness"),
        "{:?} ended without waiting for the daemon to say it runs:\n{}",
        last.line,
        last.stderr
    );
    Ok(())
}

impl Drop for Site {
    /// A daemon a failed test never adopted is still named in the PID file: kill it too.
    fn drop(&mut self) {
        if let Some(pid) = self.named() {
            drop(Adopted::new(pid));
        }
    }
}

/// A daemon this process adopted (as systemd does): running or not is what `waitpid` says,
/// and whatever a test leaves running is killed and reaped when it is dropped.
struct Adopted {
    pid: Pid,
    exited: Mutex<Option<WaitStatus>>,
}

impl Adopted {
    fn new(pid: Pid) -> Adopted {
        Adopted {
            pid,
            exited: Mutex::new(None),
        }
    }

    /// Reaps the process if it has exited; true while it runs.
    fn running(&self) -> anyhow::Result<bool> {
        let mut exited = self
            .exited
            .lock()
            .map_err(|_| anyhow::anyhow!("poisoned"))?;
        if exited.is_some() {
            return Ok(false);
        }
        match rustix::process::waitpid(Some(self.pid), WaitOptions::NOHANG).with_context(|| {
            format!(
                "waiting for {:?}, which should be a child of this test process (a subreaper)",
                self.pid
            )
        })? {
            None => Ok(true),
            Some((_, status)) => {
                *exited = Some(status);
                Ok(false)
            }
        }
    }

    /// Waits (bounded) for the process to exit and returns how.
    async fn exit(&self) -> anyhow::Result<WaitStatus> {
        let deadline = tokio::time::Instant::now() + PROCESS_DEADLINE;
        while self.running()? {
            ensure!(
                tokio::time::Instant::now() < deadline,
                "{:?} did not exit",
                self.pid
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let exited = self
            .exited
            .lock()
            .map_err(|_| anyhow::anyhow!("poisoned"))?;
        exited.context("exited without a status")
    }

    fn signal(&self, signal: Signal) -> anyhow::Result<()> {
        rustix::process::kill_process(self.pid, signal)
            .with_context(|| format!("sending {signal:?} to {:?}", self.pid))
    }
}

impl Drop for Adopted {
    fn drop(&mut self) {
        if self.running().unwrap_or(false) {
            let _ = rustix::process::kill_process(self.pid, Signal::KILL);
            let _ = rustix::process::waitpid(Some(self.pid), WaitOptions::empty());
        }
    }
}

/// Makes this process the one that adopts the daemons its children leave, as PID 1 is for
/// systemd's services. Done by every test before it starts a proxy.
fn adopt_orphans() -> anyhow::Result<()> {
    rustix::process::set_child_subreaper(Some(rustix::process::getpid()))
        .context("becoming a child subreaper")
}

fn exited_with(status: WaitStatus) -> Option<i32> {
    status.exit_status()
}

/// Which upstream answered `url` (from its JSON echo).
async fn answered_by(url: &str) -> anyhow::Result<String> {
    let (status, body) = get(url).await?;
    ensure!(status == 200, "{url} answered {status}: {body}");
    let echo: serde_json::Value = serde_json::from_str(&body)?;
    Ok(echo["upstream"].as_str().unwrap_or_default().to_string())
}

/// Clients until `stop`: some open a new connection for every request (a refused connection
/// fails them), some keep theirs alive (a connection closed under a request fails them).
struct Load {
    ok: Arc<AtomicUsize>,
    failures: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    fn start(url: String) -> anyhow::Result<Load> {
        let ok = Arc::new(AtomicUsize::new(0));
        let failures = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let mut tasks = Vec::new();
        for worker in 0..6 {
            let client = if worker < 4 {
                reqwest::Client::builder()
                    .pool_max_idle_per_host(0)
                    .build()?
            } else {
                reqwest::Client::new()
            };
            let (url, ok, failures, stop) =
                (url.clone(), ok.clone(), failures.clone(), stop.clone());
            tasks.push(tokio::spawn(async move {
                for _ in 0..50_000 {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    match client.get(&url).send().await {
                        Ok(response) if response.status() == 200 => {
                            ok.fetch_add(1, Ordering::SeqCst);
                        }
                        Ok(response) => {
                            if let Ok(mut failures) = failures.lock() {
                                failures.push(format!("status {}", response.status()));
                            }
                        }
                        Err(err) => {
                            if let Ok(mut failures) = failures.lock() {
                                failures.push(format!("{err:?}"));
                            }
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }));
        }
        Ok(Load {
            ok,
            failures,
            stop,
            tasks,
        })
    }

    fn served(&self) -> usize {
        self.ok.load(Ordering::SeqCst)
    }

    async fn finish(self) -> anyhow::Result<(usize, Vec<String>)> {
        self.stop.store(true, Ordering::SeqCst);
        for task in self.tasks {
            task.await?;
        }
        let failures = self
            .failures
            .lock()
            .map_err(|_| anyhow::anyhow!("poisoned"))?
            .clone();
        Ok((self.ok.load(Ordering::SeqCst), failures))
    }
}

#[tokio::test]
async fn the_daemon_names_itself_in_the_pid_file_and_writes_to_the_streams_it_was_given()
-> anyhow::Result<()> {
    adopt_orphans()?;
    let unit = Unit::read()?;
    let app = TestUpstream::start("app").await?;
    let site = Site::new()?;
    site.write_config(&app)?;
    let daemon = site.start(&unit).await?;
    site.wait_until_serving().await?;
    assert_eq!(answered_by(&site.url("/daemon")).await?, "app");

    // The access log of that request, written after the fork, is on the starting command's
    // standard output: under systemd, the journal.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !site.journal_text("stdout").contains("\"/daemon\"") {
        ensure!(
            tokio::time::Instant::now() < deadline,
            "no access log line for /daemon; stdout:\n{}",
            site.journal_text("stdout")
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The process's own figures are the daemon's, not those of the process that forked it.
    let metrics = reqwest::get(format!("http://127.0.0.1:{}/metrics", site.admin_port))
        .await?
        .text()
        .await?;
    assert!(
        metrics.contains("voltfleet_proxy_process_open_fds "),
        "no process metrics: the collector reads a process that is gone"
    );

    daemon.signal(Signal::TERM)?;
    let status = daemon.exit().await?;
    assert_eq!(exited_with(status), Some(0), "{status:?}");
    // Its log lines after the fork reached the same standard error.
    let stderr = site.journal_text("stderr");
    assert!(stderr.contains("SIGTERM received"), "{stderr}");
    assert!(
        site.named().is_none(),
        "a daemon that stops for good removes its PID file"
    );
    Ok(())
}

#[tokio::test]
async fn a_daemon_started_with_a_relative_path_works_in_root_and_reloads_the_same_file()
-> anyhow::Result<()> {
    adopt_orphans()?;
    let (first, second) = (
        TestUpstream::start("first").await?,
        TestUpstream::start("second").await?,
    );
    let site = Site::new()?;
    site.write_config(&first)?;
    let started = site
        .run_in(
            "/usr/bin/voltfleet-proxy -d -c proxy.toml",
            None,
            Some(site.dir.path()),
        )
        .await?;
    assert!(started.status.success(), "{started:?}");
    let daemon = site.adopt_named()?;
    site.wait_until_serving().await?;
    assert_eq!(answered_by(&site.url("/")).await?, "first");
    let cwd = std::fs::read_link(format!("/proc/{}/cwd", daemon.pid.as_raw_nonzero()))?;
    assert_eq!(cwd, Path::new("/"), "a daemon holds no directory busy");

    site.write_config(&second)?;
    daemon.signal(Signal::HUP)?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while answered_by(&site.url("/")).await? != "second" {
        ensure!(
            tokio::time::Instant::now() < deadline,
            "SIGHUP did not load the new file; journal:\n{}",
            site.journal_text("stderr")
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    daemon.signal(Signal::TERM)?;
    assert_eq!(exited_with(daemon.exit().await?), Some(0));
    Ok(())
}

impl Site {
    /// Runs the unit's `ExecReload=` lines with `main` as `$MAINPID`; every one must succeed,
    /// and the PID file must then name the process that took over.
    async fn reload(&self, unit: &Unit, main: &Adopted) -> anyhow::Result<Adopted> {
        let ran = self.run_all(&unit.reload, Some(main.pid)).await?;
        for done in &ran {
            ensure!(
                done.status.success(),
                "{:?} failed with {}: {}",
                done.line,
                done.status,
                done.stderr
            );
        }
        ensure!(ran.len() == unit.reload.len());
        ensure_waited_for_the_daemon(ran.last())?;
        self.adopt_other_than(Some(main.pid))
    }
}

#[tokio::test]
async fn the_units_reload_upgrades_while_every_client_is_served() -> anyhow::Result<()> {
    adopt_orphans()?;
    let unit = Unit::read()?;
    let (first, second, third) = (
        TestUpstream::start("first").await?,
        TestUpstream::start("second").await?,
        TestUpstream::start("third").await?,
    );
    let site = Site::new()?;
    site.write_config(&first)?;
    let oldest = site.start(&unit).await?;
    site.wait_until_serving().await?;
    let load = Load::start(site.url("/"))?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while load.served() < 50 {
        ensure!(
            tokio::time::Instant::now() < deadline,
            "the load never got going"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // A new configuration (another upstream) goes in with the new process. A second reload
    // follows at once, while the first old process still drains: systemd must already follow
    // the new one, or the second would signal the process that is leaving.
    site.write_config(&second)?;
    let middle = site.reload(&unit, &oldest).await?;
    site.write_config(&third)?;
    let newest = site.reload(&unit, &middle).await?;

    // The old processes serve on for a while, then drain and leave, with success.
    for old in [&oldest, &middle] {
        let status = old.exit().await?;
        assert_eq!(
            exited_with(status),
            Some(0),
            "an old proxy exits cleanly after handing over: {status:?}; journal:\n{}",
            site.journal_text("stderr")
        );
    }
    let served_by_old = load.served();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while load.served() < served_by_old + 50 {
        ensure!(
            tokio::time::Instant::now() < deadline,
            "nothing served after the old processes left"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (ok, failures) = load.finish().await?;
    assert!(
        failures.is_empty(),
        "{} of {} requests failed across the upgrades, first: {:?}",
        failures.len(),
        ok + failures.len(),
        failures.first()
    );
    assert!(newest.running()?, "the newest process serves on");
    assert_eq!(
        site.named(),
        Some(newest.pid),
        "the PID file names the newest"
    );
    assert_eq!(answered_by(&site.url("/")).await?, "third");
    assert!(
        second.served() > 0,
        "the middle process served its configuration"
    );

    newest.signal(Signal::TERM)?;
    assert_eq!(exited_with(newest.exit().await?), Some(0));
    Ok(())
}

#[tokio::test]
async fn a_broken_file_fails_the_reload_at_the_check_and_the_running_proxy_serves_on()
-> anyhow::Result<()> {
    adopt_orphans()?;
    let unit = Unit::read()?;
    let app = TestUpstream::start("app").await?;
    let site = Site::new()?;
    site.write_config(&app)?;
    let running = site.start(&unit).await?;
    site.wait_until_serving().await?;

    site.write_text(&format!(
        "[server]\npid_file = \"proxy.pid\"\nupgrade_socket = \"upgrade.sock\"\n[[listeners]]\naddress = \"127.0.0.1:{}\"\n[upstreams.app]\npeers = [{{ address = \"not an address\" }}]\n[[routes]]\npath = \"/\"\nupstream = \"apps\"\n",
        site.port
    ))?;
    let ran = site.run_all(&unit.reload, Some(running.pid)).await?;
    let failed = ran.last().context("nothing ran")?;
    assert_eq!(ran.len(), 1, "the check comes first: {ran:?}");
    assert!(!failed.status.success(), "{failed:?}");
    for expected in [
        "the configuration has 2 errors",
        "upstreams.app.peers[0].address",
        "routes[0].upstream",
    ] {
        assert!(
            failed.stderr.contains(expected),
            "{expected:?} missing from the check's message:\n{}",
            failed.stderr
        );
    }

    // Untouched: it got no SIGQUIT (which it logs at once), serves, and is still the one the
    // PID file names.
    let load = Load::start(site.url("/"))?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (ok, failures) = load.finish().await?;
    assert!(failures.is_empty(), "{failures:?}");
    assert!(ok > 20, "{ok}");
    assert!(running.running()?);
    assert_eq!(site.named(), Some(running.pid));
    let journal = site.journal_text("stderr");
    assert!(!journal.contains("SIGQUIT received"), "{journal}");

    running.signal(Signal::TERM)?;
    assert_eq!(exited_with(running.exit().await?), Some(0));
    Ok(())
}

#[tokio::test]
async fn an_upgrade_that_no_process_takes_over_ends_the_old_one_in_failure() -> anyhow::Result<()> {
    adopt_orphans()?;
    let unit = Unit::read()?;
    let app = TestUpstream::start("app").await?;
    let site = Site::new()?;
    site.write_config(&app)?;
    let old = site.start(&unit).await?;
    site.wait_until_serving().await?;

    // The unit's SIGQUIT, and then no new process (one that failed to start, say).
    let quit = unit
        .reload
        .iter()
        .find(|line| line.contains("-QUIT"))
        .context("the unit's reload sends no SIGQUIT")?;
    let ran = site.run(quit, Some(old.pid)).await?;
    assert!(ran.status.success(), "{ran:?}");
    let status = old.exit().await?;
    assert_eq!(
        exited_with(status),
        Some(1),
        "a failure, for Restart=on-failure: {status:?}"
    );
    let journal = site.journal_text("stderr");
    assert!(
        journal.contains("no new process names itself in the PID file"),
        "{journal}"
    );
    Ok(())
}

//! `voltfleet up` runs `voltfleet-proxy` as a child process in front of the services, with a
//! configuration written for the addresses the services actually listen on. Pingora owns its
//! process, so the proxy never runs inside the app server.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::Context;
use tokio::process::{Child, Command};
use voltfleet_core::config::{ServiceName, Settings};

/// Where each path of the public address space goes (DESIGN.md's contract).
const ROUTES: [(&str, ServiceName); 4] = [
    ("/api/", ServiceName::Api),
    ("/ocpp/", ServiceName::Ocpp),
    ("/ocpi/", ServiceName::Ocpi),
    ("/backoffice/", ServiceName::Backoffice),
];

/// The running proxy.
#[derive(Debug)]
pub struct ProxyChild {
    child: Child,
    /// Held open for the proxy's life: when this process dies, however it dies, the pipe
    /// closes and the proxy stops (`--exit-with-stdin`).
    _lifeline: tokio::process::ChildStdin,
    pub listen: SocketAddr,
    /// The website's directory, served at `/`, when there is one.
    pub site: Option<PathBuf>,
}

/// What the website's answers carry. The site loads nothing but its own files — no inline
/// script or style, no other origin — so the strictest policy holds.
const SITE_HEADERS: [(&str, &str); 4] = [
    (
        "Content-Security-Policy",
        "default-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'",
    ),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "same-origin"),
    (
        "Permissions-Policy",
        "geolocation=(self), camera=(), microphone=()",
    ),
];

/// Room beyond `ocpp.diagnostics.max_size` for a multipart upload's boundaries and headers.
const DIAGNOSTICS_SLACK: u64 = 64 * 1024;
/// The proxy's own default request body limit, kept when diagnostics need less.
const PROXY_DEFAULT_BODY_LIMIT: u64 = 10 * 1024 * 1024;

/// The `voltfleet-proxy` binary installed next to this one, if any.
pub fn find_binary() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let candidate = exe.parent()?.join("voltfleet-proxy");
    candidate.is_file().then_some(candidate)
}

/// The proxy configuration for the services at `addresses`, and the website in `site` at `/`
/// (every other path: the longest prefix wins).
pub fn configuration(
    settings: &Settings,
    addresses: &[(ServiceName, SocketAddr)],
    data_dir: &Path,
    site: Option<&Path>,
) -> String {
    let mut toml = String::new();
    let _ = writeln!(
        toml,
        "# Written by `voltfleet up`; changes are overwritten at the next start."
    );
    let _ = writeln!(
        toml,
        "[server]\nthreads = 1\ngrace_period = \"0s\"\ngraceful_shutdown_timeout = \"5s\""
    );
    let _ = writeln!(
        toml,
        "upgrade_socket = {:?}",
        data_dir.join("proxy-upgrade.sock").display().to_string()
    );
    let _ = writeln!(
        toml,
        "pid_file = {:?}",
        data_dir.join("proxy.pid").display().to_string()
    );
    let _ = writeln!(toml, "access_log = false");
    // Chargers upload diagnostics files through the proxy; let the largest accepted one pass.
    let diagnostics = settings.ocpp_protocol.diagnostics.max_size + DIAGNOSTICS_SLACK;
    let _ = writeln!(
        toml,
        "max_request_body_bytes = {}\n",
        diagnostics.max(PROXY_DEFAULT_BODY_LIMIT)
    );
    let _ = writeln!(
        toml,
        "[admin]\nlisten = \"{}\"\n",
        settings.up.proxy_admin_listen
    );
    let _ = writeln!(
        toml,
        // On one machine every client is the loopback address: no bound per address.
        "[[listeners]]\nname = \"http\"\naddress = \"{}\"\nh2c = true\nmax_connections_per_ip = 0\n",
        settings.up.proxy_listen
    );
    for (prefix, service) in ROUTES {
        let Some((_, address)) = addresses.iter().find(|(name, _)| *name == service) else {
            continue;
        };
        let _ = writeln!(
            toml,
            "[upstreams.{service}]\npeers = [{{ address = \"{address}\" }}]"
        );
        let _ = writeln!(
            toml,
            "health_check = {{ path = \"/healthz\", interval = \"2s\", rise = 1, fall = 2 }}\n"
        );
        let _ = writeln!(
            toml,
            "[[routes]]\npath = \"{prefix}\"\nupstream = \"{service}\"\n"
        );
    }
    if let Some(site) = site {
        // `no-cache`: the files are revalidated (a cheap 304), so edits show at the next load.
        let _ = writeln!(
            toml,
            "[static_sites.website]\nroot = {:?}\ndefault_cache_control = \"no-cache\"\n",
            site.display().to_string()
        );
        let headers: Vec<String> = SITE_HEADERS
            .iter()
            .map(|(name, value)| format!("{name:?} = {value:?}"))
            .collect();
        let _ = writeln!(
            toml,
            "[[routes]]\npath = \"/\"\nstatic = \"website\"\nset_response_headers = {{ {} }}\n",
            headers.join(", ")
        );
    }
    toml
}

impl ProxyChild {
    /// Writes the configuration into `data_dir` and starts the proxy; waits (bounded) until its
    /// admin listener answers.
    pub async fn start(
        binary: &Path,
        settings: &Settings,
        addresses: &[(ServiceName, SocketAddr)],
        site: Option<PathBuf>,
    ) -> anyhow::Result<ProxyChild> {
        let data_dir = &settings.data_dir;
        let path = data_dir.join("proxy.toml");
        std::fs::write(
            &path,
            configuration(settings, addresses, data_dir, site.as_deref()),
        )
        .with_context(|| format!("writing {}", path.display()))?;
        let mut child = Command::new(binary)
            .arg("-c")
            .arg(&path)
            .arg("--exit-with-stdin")
            // Pingora's start-up chatter would bury the banner; warnings and errors still show.
            .env("RUST_LOG", "warn")
            .stdin(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let lifeline = child
            .stdin
            .take()
            .context("the proxy's standard input is piped")?;
        let admin = settings.up.proxy_admin_listen;
        for _ in 0..100 {
            if let Some(status) = child.try_wait()? {
                anyhow::bail!(
                    "voltfleet-proxy exited with {status} at start; is {} or {admin} already in use? (set up.proxy_listen / up.proxy_admin_listen, or up.proxy = false)",
                    settings.up.proxy_listen
                );
            }
            if tokio::net::TcpStream::connect(admin).await.is_ok() {
                return Ok(ProxyChild {
                    child,
                    _lifeline: lifeline,
                    listen: settings.up.proxy_listen,
                    site,
                });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        anyhow::bail!("voltfleet-proxy did not open its admin listener {admin} within 10 s")
    }

    /// Asks the proxy to stop (SIGINT: no drain needed on one machine) and waits for it.
    pub async fn stop(mut self) {
        if let Some(pid) = self
            .child
            .id()
            .and_then(|id| rustix::process::Pid::from_raw(id as i32))
        {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::INT);
        }
        if tokio::time::timeout(Duration::from_secs(10), self.child.wait())
            .await
            .is_err()
        {
            tracing::warn!("voltfleet-proxy did not stop within 10 s; killing it.");
            let _ = self.child.kill().await;
        }
    }
}

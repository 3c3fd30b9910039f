//! `voltfleet healthcheck [SERVICE...]`: asks services of this machine for `/healthz` and exits 0
//! only when every one probed answers 200. The container image's `HEALTHCHECK` and the app
//! tier's systemd units run it.
//!
//! It reads where each service listens from the same configuration file and environment as
//! `serve`, but not from SSM Parameter Store: a probe runs every few seconds on every container,
//! and liveness must neither wait for nor load SSM (an SSM outage would otherwise mark every
//! healthy container unhealthy). In the image the environment sets every listen address.

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, bail};
use bytes::Bytes;
use http_body_util::Empty;
use hyper::header::{CONNECTION, HOST, USER_AGENT};
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use voltfleet_core::config::{ConfigErrors, Layers, Reader, ServiceName};

/// How long a service may take to accept and answer unless `--timeout` says otherwise.
pub const DEFAULT_TIMEOUT: &str = "3s";

/// One service to probe and where.
#[derive(Debug, Clone, Copy)]
struct Target {
    service: ServiceName,
    /// The address to connect to: the listen address, with a wildcard turned into loopback.
    address: SocketAddr,
}

/// What a probe found.
#[derive(Debug)]
enum Finding {
    /// Nothing accepted a TCP connection.
    NotListening(String),
    /// It answered 200.
    Healthy,
    /// It accepted the connection but did not answer 200 in time.
    Unhealthy(String),
}

/// `voltfleet healthcheck`: probes `services`, or every service listening here when none is
/// named, and prints one line for each service probed.
pub async fn healthcheck(
    file: Option<&Path>,
    services: &[ServiceName],
    timeout: Duration,
) -> anyhow::Result<()> {
    let addresses = listen_addresses(file, std::env::vars())?;
    let named = !services.is_empty();
    let wanted: Vec<ServiceName> = if named {
        let mut wanted = services.to_vec();
        wanted.sort();
        wanted.dedup();
        wanted
    } else {
        ServiceName::ALL.to_vec()
    };

    let mut targets = Vec::new();
    let mut unprobeable = Vec::new();
    for service in wanted {
        let listen = addresses
            .iter()
            .find(|(name, _)| *name == service)
            .map(|(_, address)| *address)
            .context("every service has a listen address")?;
        match probe_address(listen) {
            Some(address) => targets.push(Target { service, address }),
            None => unprobeable.push((service, listen)),
        }
    }

    let probes: Vec<_> = targets
        .iter()
        .map(|target| tokio::spawn(probe(*target, timeout)))
        .collect();
    let mut findings = Vec::with_capacity(probes.len());
    for (target, probe) in targets.iter().zip(probes) {
        findings.push((*target, probe.await.context("a probe task failed")?));
    }

    let mut out = std::io::stdout().lock();
    let mut failed = Vec::new();
    if named {
        for (service, listen) in &unprobeable {
            writeln!(
                out,
                "{service}: not checked: {service}.listen is {listen}, a port chosen at start; give the service a fixed port to check it"
            )?;
            failed.push(*service);
        }
    }
    // Services that got a line of their own: every one named, or those found listening.
    let mut checked = failed.len();
    for (target, finding) in &findings {
        let Target { service, address } = target;
        match finding {
            Finding::Healthy => {
                checked += 1;
                writeln!(
                    out,
                    "{service}: healthy (http://{address}/healthz answered 200)"
                )?;
            }
            Finding::Unhealthy(why) => {
                checked += 1;
                writeln!(out, "{service}: NOT HEALTHY: {why}")?;
                failed.push(*service);
            }
            Finding::NotListening(why) if named => {
                checked += 1;
                writeln!(out, "{service}: NOT HEALTHY: {why}")?;
                failed.push(*service);
            }
            Finding::NotListening(_) => {}
        }
    }
    out.flush()?;

    if !named && targets.is_empty() {
        bail!(
            "no service has a port to check: every *.listen setting has port 0, chosen at start; give the services fixed ports (VOLTFLEET__API__LISTEN=0.0.0.0:8101, ...)"
        );
    }
    if !named && checked == 0 {
        let tried = targets
            .iter()
            .map(|t| format!("{} on {}", t.service, t.address))
            .collect::<Vec<_>>()
            .join(", ");
        bail!(
            "no voltfleet service is listening here (tried {tried}); start one with `voltfleet serve SERVICE`, or check the *.listen settings (VOLTFLEET__API__LISTEN, ...)"
        );
    }
    if !failed.is_empty() {
        let names = failed
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        bail!(
            "not healthy: {names} ({} of {checked} checked)",
            failed.len()
        );
    }
    Ok(())
}

/// Parses `--timeout`: a duration such as `3s` or `500ms`, more than zero.
pub fn parse_timeout(text: &str) -> Result<Duration, String> {
    let timeout = <Duration as voltfleet_core::config::ConfigValue>::from_text(text)?;
    if timeout.is_zero() {
        return Err("the timeout must be longer than 0, such as 3s or 500ms".into());
    }
    Ok(timeout)
}

/// Every service's `<service>.listen`, from the defaults, the file and the environment.
fn listen_addresses(
    file: Option<&Path>,
    env: impl IntoIterator<Item = (String, String)>,
) -> anyhow::Result<Vec<(ServiceName, SocketAddr)>> {
    let mut layers = match file {
        Some(path) => Layers::from_toml_file(path)?,
        None => Layers::default(),
    };
    layers.overlay(Layers::from_env(env));
    let mut reader = Reader::new(&layers);
    let addresses: Vec<(ServiceName, SocketAddr)> = ServiceName::ALL
        .into_iter()
        .map(|service| {
            let default = SocketAddr::from((Ipv4Addr::LOCALHOST, service.default_port()));
            (service, reader.value(&format!("{service}.listen"), default))
        })
        .collect();
    // Only the listen keys were read: every other key would be reported as unknown here, and
    // its problems are `serve`'s and `config check`'s to report.
    let (_, errors) = reader.finish();
    let errors: Vec<_> = errors
        .into_iter()
        .filter(|error| {
            ServiceName::ALL
                .iter()
                .any(|service| error.key == format!("{service}.listen"))
        })
        .collect();
    if !errors.is_empty() {
        return Err(ConfigErrors(errors).into());
    }
    Ok(addresses)
}

/// Where to connect to reach a service listening on `listen`: a wildcard address is reached on
/// loopback. `None` for port 0, which the service replaces with a port of the system's choice.
fn probe_address(listen: SocketAddr) -> Option<SocketAddr> {
    if listen.port() == 0 {
        return None;
    }
    let ip = match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    Some(SocketAddr::new(ip, listen.port()))
}

/// Connects to the target and GETs `/healthz`, all within `timeout`.
async fn probe(target: Target, timeout: Duration) -> Finding {
    let address = target.address;
    let deadline = tokio::time::Instant::now() + timeout;
    let shown = humantime::format_duration(timeout);
    let stream = match tokio::time::timeout_at(deadline, TcpStream::connect(address)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(err)) => {
            return Finding::NotListening(format!("nothing listens on {address} ({err})"));
        }
        Err(_) => {
            return Finding::NotListening(format!(
                "{address} accepted no connection within {shown}"
            ));
        }
    };
    let url = format!("http://{address}/healthz");
    match tokio::time::timeout_at(deadline, get_healthz(stream, address)).await {
        Ok(Ok(StatusCode::OK)) => Finding::Healthy,
        Ok(Ok(status)) => Finding::Unhealthy(format!("{url} answered {status}")),
        Ok(Err(err)) => Finding::Unhealthy(format!("{url} failed: {err:#}")),
        Err(_) => Finding::Unhealthy(format!("{url} gave no answer within {shown}")),
    }
}

/// One HTTP/1.1 GET of `/healthz` over an open connection; the status of the answer.
async fn get_healthz(stream: TcpStream, address: SocketAddr) -> anyhow::Result<StatusCode> {
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .context("HTTP handshake")?;
    let connection = tokio::spawn(connection);
    let request = Request::get("/healthz")
        .header(HOST, address.to_string())
        .header(
            USER_AGENT,
            concat!("voltfleet-healthcheck/", env!("CARGO_PKG_VERSION")),
        )
        .header(CONNECTION, "close")
        .body(Empty::<Bytes>::new())
        .context("building the request")?;
    let response = sender.send_request(request).await;
    connection.abort();
    Ok(response.context("no HTTP answer")?.status())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn wildcard_listen_addresses_are_probed_on_loopback() {
        let probe =
            |text: &str| probe_address(text.parse().expect("address")).map(|a| a.to_string());
        assert_eq!(probe("0.0.0.0:8101").as_deref(), Some("127.0.0.1:8101"));
        assert_eq!(probe("[::]:8102").as_deref(), Some("[::1]:8102"));
        assert_eq!(probe("10.1.2.3:8103").as_deref(), Some("10.1.2.3:8103"));
        assert_eq!(probe("127.0.0.1:0"), None);
    }

    #[test]
    fn listen_addresses_follow_the_environment_and_ignore_other_keys() -> anyhow::Result<()> {
        let addresses = listen_addresses(
            None,
            env(&[
                ("VOLTFLEET__API__LISTEN", "0.0.0.0:9101"),
                // Broken or unknown settings of other keys are not the probe's concern.
                ("VOLTFLEET__DATABASE__MAX_CONNECTIONS", "many"),
                ("VOLTFLEET__NO_SUCH__KEY", "1"),
            ]),
        )?;
        assert_eq!(addresses[0], (ServiceName::Api, "0.0.0.0:9101".parse()?));
        assert_eq!(addresses[4], (ServiceName::Jobs, "127.0.0.1:8105".parse()?));
        Ok(())
    }

    #[test]
    fn a_broken_listen_address_is_named() {
        let Err(err) = listen_addresses(None, env(&[("VOLTFLEET__OCPP__LISTEN", "8103")])) else {
            panic!("a port without an address must be refused");
        };
        let message = err.to_string();
        assert!(message.contains("ocpp.listen"), "{message}");
        assert!(message.contains("VOLTFLEET__OCPP__LISTEN"), "{message}");
    }

    #[test]
    fn the_timeout_is_a_duration_above_zero() {
        assert_eq!(parse_timeout("500ms"), Ok(Duration::from_millis(500)));
        assert!(parse_timeout("0s").is_err());
        assert!(parse_timeout("soon").is_err());
    }
}

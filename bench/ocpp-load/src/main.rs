//! `ocpp-load`: many simulated OCPP 1.6J chargers against a central system, directly or
//! through the proxy.
//!
//! Each charger is one task with one WebSocket. It boots, reports its connector available,
//! starts a transaction, then heartbeats; in each meter phase it sends MeterValues so that all
//! chargers together reach the phase's rate. One CALL is outstanding per charger at a time, as
//! OCPP-J requires, so a slow server lowers the rate reached instead of queueing without end.
//! The central system answers a MeterValues only once its samples are committed, so every
//! answer counted is a persisted message.
//!
//! It prints the connections held, the MeterValues answered per second, the round-trip
//! percentiles of each phase and, given the server's process ids, its resident memory per
//! connected charger. See `bench/README.md`.

// The report on standard output is what this program is for.
#![allow(clippy::print_stdout)]

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use base64::Engine;
use clap::Parser;
use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio::time::MissedTickBehavior;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

#[derive(Debug, Parser)]
#[command(version, about = "Simulated OCPP 1.6J chargers for load tests")]
struct Args {
    /// The OCPP endpoint without the charger id, such as ws://127.0.0.1:8103/ocpp.
    #[arg(long)]
    url: String,
    /// How many chargers connect.
    #[arg(long, default_value_t = 1000)]
    chargers: usize,
    /// Chargers are called `{prefix}{n}`.
    #[arg(long, default_value = "LOAD-")]
    prefix: String,
    /// New connections per second while connecting.
    #[arg(long, default_value_t = 500)]
    connect_rate: u32,
    /// How long all chargers may take to connect and boot, in seconds.
    #[arg(long, default_value_t = 120)]
    connect_timeout: u64,
    /// HTTP Basic password of every charger (security profile 1); none by default.
    #[arg(long)]
    password: Option<String>,
    /// Seconds of heartbeats only before the server's memory is read.
    #[arg(long, default_value_t = 10)]
    idle: u64,
    /// Seconds between heartbeats of each charger.
    #[arg(long, default_value_t = 60)]
    heartbeat_interval: u64,
    /// MeterValues per second of all chargers together, one phase per value (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "5000")]
    meter_rates: Vec<u32>,
    /// Sampled values in each MeterValues (energy, power, current, voltage, SoC, ...).
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u8).range(1..=6))]
    samples: u8,
    /// Seconds each meter phase is measured, after its warm-up.
    #[arg(long, default_value_t = 20)]
    duration: u64,
    /// Seconds of each meter phase before measuring starts.
    #[arg(long, default_value_t = 3)]
    warmup: u64,
    /// A server process whose memory to report, as `name=pid` (repeatable).
    #[arg(long = "server-pid")]
    server_pids: Vec<String>,
    /// Also write the results as JSON to this file.
    #[arg(long)]
    json: Option<std::path::PathBuf>,
}

/// What every charger task follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Connecting,
    Idle,
    /// Index into `meter_rates`.
    Meter(usize),
    Done,
}

/// Counters all tasks add to.
#[derive(Debug, Default)]
struct Counters {
    connected: AtomicU64,
    failed: AtomicU64,
    /// Connection attempts that failed and were tried again.
    retries: AtomicU64,
    disconnected: AtomicU64,
    meter_answered: AtomicU64,
    meter_errors: AtomicU64,
    heartbeats: AtomicU64,
    /// Round trips are recorded only while a phase is being measured.
    measuring: AtomicBool,
}

/// Round trips of all chargers, one histogram per kind. Shared rather than per charger: a
/// histogram covering a minute in microseconds is a few hundred KB, too much to hold 10,000 of.
struct Latencies {
    boot: Mutex<Histogram<u64>>,
    meter: Vec<Mutex<Histogram<u64>>>,
    heartbeat: Mutex<Histogram<u64>>,
}

impl Latencies {
    fn new(phases: usize) -> anyhow::Result<Latencies> {
        let histogram = || Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).map(Mutex::new);
        Ok(Latencies {
            boot: histogram()?,
            meter: (0..phases).map(|_| histogram()).collect::<Result<_, _>>()?,
            heartbeat: histogram()?,
        })
    }
}

/// Records one round trip; values beyond the histogram's minute are clamped to it.
fn record(histogram: &Mutex<Histogram<u64>>, elapsed: Duration) {
    histogram
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .saturating_record(micros(elapsed));
}

/// A snapshot of a histogram to report.
fn snapshot(histogram: &Mutex<Histogram<u64>>) -> Histogram<u64> {
    histogram
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone()
}

fn micros(elapsed: Duration) -> u64 {
    u64::try_from(elapsed.as_micros())
        .unwrap_or(u64::MAX)
        .max(1)
}

/// One simulated charger's connection and its CALLs.
struct SimCharger {
    socket: Socket,
    next_id: u64,
    energy_wh: u64,
    transaction_id: i64,
}

impl SimCharger {
    async fn connect(
        url: &str,
        identity: &str,
        password: Option<&str>,
    ) -> anyhow::Result<SimCharger> {
        let mut request = format!("{url}/{identity}").into_client_request()?;
        let headers = request.headers_mut();
        headers.insert(
            "Sec-WebSocket-Protocol",
            HeaderValue::from_static("ocpp1.6"),
        );
        if let Some(password) = password {
            let token =
                base64::engine::general_purpose::STANDARD.encode(format!("{identity}:{password}"));
            headers.insert("Authorization", format!("Basic {token}").parse()?);
        }
        // Small buffers: the load generator holds as many sockets as the server.
        let config = WebSocketConfig::default()
            .read_buffer_size(4096)
            .write_buffer_size(0);
        let (socket, _) =
            tokio_tungstenite::connect_async_with_config(request, Some(config), true).await?;
        Ok(SimCharger {
            socket,
            next_id: 0,
            energy_wh: 0,
            transaction_id: 0,
        })
    }

    /// Sends a CALL and waits for its CALLRESULT payload; a CALLERROR is `Ok(Err(..))`.
    async fn call(
        &mut self,
        action: &str,
        payload: Value,
    ) -> anyhow::Result<Result<Value, String>> {
        self.next_id += 1;
        let id = self.next_id.to_string();
        let frame = json!([2, id, action, payload]).to_string();
        self.socket.send(Message::text(frame)).await?;
        loop {
            let message = self
                .socket
                .next()
                .await
                .context("the server closed the connection")??;
            let Message::Text(text) = message else {
                if let Message::Close(frame) = message {
                    bail!("the server closed the connection: {frame:?}");
                }
                continue;
            };
            let frame: Value = serde_json::from_str(text.as_str())?;
            match (frame[0].as_u64(), frame[1].as_str()) {
                (Some(3), Some(answered)) if answered == id => return Ok(Ok(frame[2].clone())),
                (Some(4), Some(answered)) if answered == id => {
                    return Ok(Err(format!(
                        "{action} answered with {}: {}",
                        frame[2], frame[3]
                    )));
                }
                (Some(2), Some(call_id)) => {
                    // The load test sends no commands; refuse whatever comes.
                    let refusal = json!([4, call_id, "NotSupported", "load generator", {}]);
                    self.socket.send(Message::text(refusal.to_string())).await?;
                }
                _ => {}
            }
        }
    }

    /// A CALL that must be answered with a CALLRESULT.
    async fn call_ok(&mut self, action: &str, payload: Value) -> anyhow::Result<Value> {
        self.call(action, payload)
            .await?
            .map_err(anyhow::Error::msg)
    }

    async fn boot(&mut self, identity: &str) -> anyhow::Result<()> {
        let boot = self
            .call_ok(
                "BootNotification",
                json!({"chargePointVendor": "voltfleet", "chargePointModel": "ocpp-load"}),
            )
            .await?;
        if boot["status"] != "Accepted" {
            bail!(
                "BootNotification answered {}; start the server with ocpp.unknown_chargers = accept",
                boot["status"]
            );
        }
        let now = now();
        self.call_ok(
            "StatusNotification",
            json!({"connectorId": 1, "errorCode": "NoError", "status": "Charging", "timestamp": now}),
        )
        .await?;
        let started = self
            .call_ok(
                "StartTransaction",
                json!({"connectorId": 1, "idTag": identity.chars().take(20).collect::<String>(),
                       "meterStart": 0, "timestamp": now}),
            )
            .await?;
        self.transaction_id = started["transactionId"]
            .as_i64()
            .context("StartTransaction answered without a transactionId")?;
        Ok(())
    }

    fn meter_values(&mut self, samples: u8) -> Value {
        self.energy_wh += 7;
        let all = [
            json!({"value": self.energy_wh.to_string(), "measurand": "Energy.Active.Import.Register", "unit": "Wh"}),
            json!({"value": "7400", "measurand": "Power.Active.Import", "unit": "W"}),
            json!({"value": "32.0", "measurand": "Current.Import", "unit": "A", "phase": "L1"}),
            json!({"value": "230.4", "measurand": "Voltage", "unit": "V", "phase": "L1-N"}),
            json!({"value": "57", "measurand": "SoC", "unit": "Percent", "location": "EV"}),
            json!({"value": "31", "measurand": "Temperature", "unit": "Celsius", "location": "Body"}),
        ];
        let sampled: Vec<Value> = all.into_iter().take(usize::from(samples)).collect();
        json!({"connectorId": 1, "transactionId": self.transaction_id,
               "meterValue": [{"timestamp": now(), "sampledValue": sampled}]})
    }
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

struct Plan {
    url: String,
    password: Option<String>,
    chargers: usize,
    heartbeat: Duration,
    connect_timeout: Duration,
    meter_rates: Vec<u32>,
    samples: u8,
}

/// One charger from connection to the end of the run.
async fn run_charger(
    index: usize,
    identity: String,
    plan: Arc<Plan>,
    counters: Arc<Counters>,
    latencies: Arc<Latencies>,
    mut phase: watch::Receiver<Phase>,
) {
    let started = Instant::now();
    let mut attempt: u64 = 0;
    let mut charger = loop {
        let connected = async {
            let mut charger =
                SimCharger::connect(&plan.url, &identity, plan.password.as_deref()).await?;
            charger.boot(&identity).await?;
            anyhow::Ok(charger)
        }
        .await;
        match connected {
            Ok(charger) => break charger,
            Err(err) => {
                attempt += 1;
                if counters.retries.fetch_add(1, Ordering::Relaxed) < 5 {
                    eprintln!("ocpp-load: {identity} could not connect and boot: {err:#}");
                }
                // As chargers do: back off a while, differently for each, then again.
                let backoff =
                    Duration::from_millis(1000 + (index as u64 * 7919 + attempt * 104_729) % 4000);
                if started.elapsed() + backoff > plan.connect_timeout {
                    counters.failed.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                tokio::time::sleep(backoff).await;
            }
        }
    };
    record(&latencies.boot, started.elapsed());
    counters.connected.fetch_add(1, Ordering::Relaxed);

    // Spread the chargers' ticks over the interval, so the rate is even rather than bursty.
    let spread = |interval: Duration| interval.mul_f64(index as f64 / plan.chargers.max(1) as f64);
    let mut heartbeat = tokio::time::interval_at(
        tokio::time::Instant::now() + plan.heartbeat + spread(plan.heartbeat),
        plan.heartbeat,
    );
    heartbeat.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut meter: Option<(usize, tokio::time::Interval)> = None;
    loop {
        tokio::select! {
            changed = phase.changed() => {
                if changed.is_err() {
                    break;
                }
                let current = *phase.borrow_and_update();
                match current {
                    Phase::Done => break,
                    Phase::Meter(index) => {
                        let rate = f64::from(plan.meter_rates[index].max(1));
                        let every = Duration::from_secs_f64(plan.chargers as f64 / rate);
                        let mut ticks = tokio::time::interval_at(
                            tokio::time::Instant::now() + spread(every),
                            every,
                        );
                        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
                        meter = Some((index, ticks));
                    }
                    Phase::Connecting | Phase::Idle => meter = None,
                }
            }
            _ = heartbeat.tick() => {
                let sent = Instant::now();
                if let Err(err) = charger.call_ok("Heartbeat", json!({})).await {
                    return lost(&counters, &identity, &err);
                }
                counters.heartbeats.fetch_add(1, Ordering::Relaxed);
                record(&latencies.heartbeat, sent.elapsed());
            }
            Some(index) = async {
                match meter.as_mut() {
                    Some((index, ticks)) => { ticks.tick().await; Some(*index) }
                    None => std::future::pending().await,
                }
            } => {
                let payload = charger.meter_values(plan.samples);
                let sent = Instant::now();
                match charger.call("MeterValues", payload).await {
                    Ok(Ok(_)) => {
                        counters.meter_answered.fetch_add(1, Ordering::Relaxed);
                        if counters.measuring.load(Ordering::Relaxed) {
                            record(&latencies.meter[index], sent.elapsed());
                        }
                    }
                    Ok(Err(refusal)) => {
                        if counters.meter_errors.fetch_add(1, Ordering::Relaxed) < 5 {
                            eprintln!("ocpp-load: {identity}: {refusal}");
                        }
                    }
                    Err(err) => return lost(&counters, &identity, &err),
                }
            }
            incoming = charger.socket.next() => {
                // Between CALLs only pings (answered by the library) and closes come.
                match incoming {
                    None | Some(Err(_)) | Some(Ok(Message::Close(_))) => {
                        let err = anyhow::anyhow!("the server closed the connection");
                        return lost(&counters, &identity, &err);
                    }
                    Some(Ok(_)) => {}
                }
            }
        }
    }
    let _ = charger.socket.close(None).await;
}

fn lost(counters: &Counters, identity: &str, err: &anyhow::Error) {
    if counters.disconnected.fetch_add(1, Ordering::Relaxed) < 5 {
        eprintln!("ocpp-load: {identity} lost its connection: {err:#}");
    }
}

/// Resident memory of a process in bytes, from /proc.
fn rss_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

fn parse_pids(specs: &[String]) -> anyhow::Result<Vec<(String, u32)>> {
    specs
        .iter()
        .map(|spec| {
            let (name, pid) = spec
                .split_once('=')
                .with_context(|| format!("--server-pid {spec:?} is not name=pid"))?;
            let pid = pid
                .parse()
                .with_context(|| format!("--server-pid {spec:?}: {pid:?} is not a process id"))?;
            Ok((name.to_owned(), pid))
        })
        .collect()
}

fn ms(histogram: &Histogram<u64>, quantile: f64) -> f64 {
    histogram.value_at_quantile(quantile) as f64 / 1000.0
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.meter_rates.is_empty() {
        bail!("--meter-rates needs at least one rate");
    }
    let servers = parse_pids(&args.server_pids)?;
    let baseline: Vec<Option<u64>> = servers.iter().map(|(_, pid)| rss_bytes(*pid)).collect();
    let plan = Arc::new(Plan {
        url: args.url.trim_end_matches('/').to_owned(),
        password: args.password.clone(),
        chargers: args.chargers,
        heartbeat: Duration::from_secs(args.heartbeat_interval.max(1)),
        connect_timeout: Duration::from_secs(args.connect_timeout),
        meter_rates: args.meter_rates.clone(),
        samples: args.samples,
    });
    let counters = Arc::new(Counters::default());
    let latencies = Arc::new(Latencies::new(args.meter_rates.len())?);
    let (phase, phase_updates) = watch::channel(Phase::Connecting);

    eprintln!(
        "ocpp-load: connecting {} chargers to {} at {}/s",
        args.chargers, plan.url, args.connect_rate
    );
    let connect_started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    let spawn_every = Duration::from_secs_f64(1.0 / f64::from(args.connect_rate.max(1)));
    let mut progress = Instant::now();
    for index in 0..args.chargers {
        let identity = format!("{}{index}", args.prefix);
        tasks.spawn(run_charger(
            index,
            identity,
            Arc::clone(&plan),
            Arc::clone(&counters),
            Arc::clone(&latencies),
            phase_updates.clone(),
        ));
        let due = connect_started + spawn_every.mul_f64(index as f64 + 1.0);
        tokio::time::sleep_until(due.into()).await;
        if progress.elapsed() >= Duration::from_secs(2) {
            progress = Instant::now();
            eprintln!(
                "ocpp-load: {} connected, {} failed",
                counters.connected.load(Ordering::Relaxed),
                counters.failed.load(Ordering::Relaxed)
            );
        }
    }
    let deadline = connect_started + Duration::from_secs(args.connect_timeout);
    loop {
        let connected = counters.connected.load(Ordering::Relaxed);
        let failed = counters.failed.load(Ordering::Relaxed);
        if connected + failed >= args.chargers as u64 || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let connect_seconds = connect_started.elapsed().as_secs_f64();
    eprintln!(
        "ocpp-load: {} connected and booted in {connect_seconds:.1} s, {} failed; idle for {} s",
        counters.connected.load(Ordering::Relaxed),
        counters.failed.load(Ordering::Relaxed),
        args.idle
    );
    let _ = phase.send(Phase::Idle);
    tokio::time::sleep(Duration::from_secs(args.idle)).await;
    let held_idle =
        counters.connected.load(Ordering::Relaxed) - counters.disconnected.load(Ordering::Relaxed);
    let idle_rss: Vec<Option<u64>> = servers.iter().map(|(_, pid)| rss_bytes(*pid)).collect();

    let mut phases = Vec::new();
    for (index, rate) in args.meter_rates.iter().enumerate() {
        eprintln!(
            "ocpp-load: meter phase {}: {rate} MeterValues/s for {} s (+{} s warm-up)",
            index + 1,
            args.duration,
            args.warmup
        );
        let _ = phase.send(Phase::Meter(index));
        tokio::time::sleep(Duration::from_secs(args.warmup)).await;
        counters.measuring.store(true, Ordering::Relaxed);
        let answered_before = counters.meter_answered.load(Ordering::Relaxed);
        let errors_before = counters.meter_errors.load(Ordering::Relaxed);
        let measured = Instant::now();
        for second in 1..=args.duration {
            tokio::time::sleep_until((measured + Duration::from_secs(second)).into()).await;
            if second % 5 == 0 {
                let answered = counters.meter_answered.load(Ordering::Relaxed) - answered_before;
                eprintln!(
                    "ocpp-load:   {second} s: {:.0} MeterValues/s answered",
                    answered as f64 / measured.elapsed().as_secs_f64()
                );
            }
        }
        counters.measuring.store(false, Ordering::Relaxed);
        let seconds = measured.elapsed().as_secs_f64();
        let answered = counters.meter_answered.load(Ordering::Relaxed) - answered_before;
        let errors = counters.meter_errors.load(Ordering::Relaxed) - errors_before;
        phases.push((*rate, answered as f64 / seconds, errors));
    }
    let held_end =
        counters.connected.load(Ordering::Relaxed) - counters.disconnected.load(Ordering::Relaxed);
    let end_rss: Vec<Option<u64>> = servers.iter().map(|(_, pid)| rss_bytes(*pid)).collect();

    let _ = phase.send(Phase::Done);
    while tasks.join_next().await.is_some() {}
    let boot = snapshot(&latencies.boot);
    let meter: Vec<Histogram<u64>> = latencies.meter.iter().map(snapshot).collect();
    let heartbeat = snapshot(&latencies.heartbeat);

    let samples = f64::from(args.samples);
    println!();
    println!("ocpp-load against {}", plan.url);
    println!(
        "  chargers          {} asked, {} connected and booted in {connect_seconds:.1} s ({} attempts retried), {} gave up",
        args.chargers,
        counters.connected.load(Ordering::Relaxed),
        counters.retries.load(Ordering::Relaxed),
        counters.failed.load(Ordering::Relaxed)
    );
    println!("  connections held  {held_idle} when idle, {held_end} after the meter phases");
    println!(
        "  boot round trip   p50 {:.1} ms, p99 {:.1} ms (connect, BootNotification, StatusNotification, StartTransaction)",
        ms(&boot, 0.5),
        ms(&boot, 0.99)
    );
    println!(
        "  heartbeats        {} answered, round trip p50 {:.1} ms, p99 {:.1} ms",
        counters.heartbeats.load(Ordering::Relaxed),
        ms(&heartbeat, 0.5),
        ms(&heartbeat, 0.99)
    );
    let mut json_phases = Vec::new();
    for (index, (rate, reached, errors)) in phases.iter().enumerate() {
        let histogram = &meter[index];
        println!(
            "  meter phase {}     asked {rate}/s: {reached:.0} MeterValues/s persisted ({:.0} samples/s), {errors} errors, round trip p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            index + 1,
            reached * samples,
            ms(histogram, 0.5),
            ms(histogram, 0.99),
            histogram.max() as f64 / 1000.0
        );
        json_phases.push(json!({
            "asked_per_second": rate, "meter_values_per_second": reached,
            "samples_per_second": reached * samples, "errors": errors,
            "p50_ms": ms(histogram, 0.5), "p99_ms": ms(histogram, 0.99),
            "max_ms": histogram.max() as f64 / 1000.0,
        }));
    }
    let mut json_servers = Vec::new();
    for (index, (name, pid)) in servers.iter().enumerate() {
        let (Some(before), Some(idle)) = (baseline[index], idle_rss[index]) else {
            println!("  {name} (pid {pid})  memory unreadable");
            continue;
        };
        let per_charger = idle.saturating_sub(before) as f64 / held_idle.max(1) as f64;
        let end = end_rss[index].unwrap_or(idle);
        println!(
            "  {name} memory  {:.1} MiB before, {:.1} MiB idle with {held_idle} chargers ({:.1} KB per idle charger), {:.1} MiB after the meter phases",
            before as f64 / 1048576.0,
            idle as f64 / 1048576.0,
            per_charger / 1024.0,
            end as f64 / 1048576.0
        );
        json_servers.push(json!({
            "name": name, "pid": pid, "rss_before": before, "rss_idle": idle, "rss_end": end,
            "bytes_per_idle_charger": per_charger,
        }));
    }
    if let Some(path) = &args.json {
        let report = json!({
            "url": plan.url, "chargers": args.chargers,
            "connected": counters.connected.load(Ordering::Relaxed),
            "failed": counters.failed.load(Ordering::Relaxed),
            "retries": counters.retries.load(Ordering::Relaxed),
            "held_idle": held_idle, "held_end": held_end,
            "connect_seconds": connect_seconds,
            "boot_p50_ms": ms(&boot, 0.5), "boot_p99_ms": ms(&boot, 0.99),
            "samples_per_meter_values": args.samples,
            "phases": json_phases, "servers": json_servers,
        });
        std::fs::write(path, serde_json::to_string_pretty(&report)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

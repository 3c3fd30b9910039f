//! The shared-state layer (cache, bus, locks, counters) against both backends.
//!
//! Every `check_*` runs twice: in process, and on the Redis at `VOLTFLEET_TEST_REDIS_URL`
//! (default `redis://127.0.0.1:6379`) under a fresh key prefix, so tests never see each other's
//! keys. A check that needs two processes gets two `Shared`s: on Redis each has its own
//! connections, in process they are clones (a process has one in-process state).
//!
//! Then Redis-only tests against private `redis-server`s started on free loopback ports: losing
//! and regaining the server, AUTH, and TLS.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use voltfleet_core::config::{BusSettings, RedisSettings};
use voltfleet_core::shared::{BusError, LockGuard, Shared, SharedError};

/// Upper bound for anything that should happen "soon"; loops stop by themselves after it.
const PATIENCE: Duration = Duration::from_secs(15);

fn bus_settings() -> BusSettings {
    BusSettings {
        request_timeout: Duration::from_secs(5),
    }
}

fn redis_settings(url: &str) -> RedisSettings {
    RedisSettings {
        url: Some(SecretString::from(url.to_owned())),
        key_prefix: format!("voltfleet-test:{}:", uuid::Uuid::new_v4().simple()),
        connect_timeout: Duration::from_secs(2),
        response_timeout: Duration::from_secs(1),
        tls_ca: None,
    }
}

fn test_redis_url() -> String {
    std::env::var("VOLTFLEET_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

async fn on_redis() -> (Shared, Shared) {
    let settings = redis_settings(&test_redis_url());
    let connect = || async {
        Shared::connect(&settings, &bus_settings()).await.expect(
            "the test Redis answers (set VOLTFLEET_TEST_REDIS_URL if it is not at 127.0.0.1:6379)",
        )
    };
    (connect().await, connect().await)
}

fn in_process() -> (Shared, Shared) {
    let shared = Shared::in_process(&bus_settings());
    (shared.clone(), shared)
}

/// Polls `condition` until it holds or [`PATIENCE`] runs out; returns whether it held.
async fn eventually<F, Fut>(mut condition: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + PATIENCE;
    while Instant::now() < deadline {
        if condition().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

/// Generates `in_process::NAME` and `on_redis::NAME` tests for each check; `one` checks take a
/// `&Shared`, `two` checks take two (`&Shared, &Shared`) standing for two processes.
macro_rules! on_both_backends {
    (one: [$($one:ident),* $(,)?], two: [$($two:ident),* $(,)?] $(,)?) => {
        mod in_process {
            $(
                #[tokio::test]
                async fn $one() {
                    let (shared, _) = super::in_process();
                    super::$one(&shared).await;
                }
            )*
            $(
                #[tokio::test]
                async fn $two() {
                    let (a, b) = super::in_process();
                    super::$two(&a, &b).await;
                }
            )*
        }
        mod on_redis {
            $(
                #[tokio::test]
                async fn $one() {
                    let (shared, _) = super::on_redis().await;
                    super::$one(&shared).await;
                }
            )*
            $(
                #[tokio::test]
                async fn $two() {
                    let (a, b) = super::on_redis().await;
                    super::$two(&a, &b).await;
                }
            )*
        }
    };
}

on_both_backends! {
    one: [
        check_ping_and_describe,
        check_cache_set_get_delete,
        check_cache_expiry,
        check_json_helpers,
        check_no_responder_fails_fast,
        check_counter_window_expires,
    ],
    two: [
        check_cache_is_shared,
        check_publish_subscribe,
        check_request_reply,
        check_request_timeout,
        check_locks_exclude_each_other,
        check_lock_expires,
        check_other_holder_cannot_release,
        check_counters,
        check_directory_newest_claim_wins,
    ],
}

async fn check_ping_and_describe(shared: &Shared) {
    shared.ping().await.expect("the backend answers");
    let described = shared.describe();
    match shared.backend_name() {
        "in-process" => assert!(described.contains("in-process"), "{described}"),
        "redis" => assert!(described.starts_with("redis"), "{described}"),
        other => panic!("unexpected backend name {other}"),
    }
}

async fn check_cache_set_get_delete(shared: &Shared) {
    let cache = &shared.cache;
    assert_eq!(cache.get("missing").await.expect("get"), None);
    cache
        .set("tariff:1", b"0.35 EUR/kWh", Duration::from_secs(60))
        .await
        .expect("set");
    assert_eq!(
        cache.get("tariff:1").await.expect("get"),
        Some(b"0.35 EUR/kWh".to_vec())
    );
    cache
        .set("tariff:1", &[0, 159, 146, 150], Duration::from_secs(60))
        .await
        .expect("overwrite with binary bytes");
    assert_eq!(
        cache.get("tariff:1").await.expect("get"),
        Some(vec![0, 159, 146, 150])
    );
    assert!(cache.delete("tariff:1").await.expect("delete"));
    assert_eq!(cache.get("tariff:1").await.expect("get"), None);
    assert!(!cache.delete("tariff:1").await.expect("delete again"));
}

async fn check_cache_expiry(shared: &Shared) {
    let cache = &shared.cache;
    cache
        .set("session:short", b"x", Duration::from_secs(1))
        .await
        .expect("set");
    cache
        .set("session:long", b"y", Duration::from_secs(60))
        .await
        .expect("set");
    assert_eq!(
        cache.get("session:short").await.expect("get"),
        Some(b"x".to_vec())
    );
    let expired =
        eventually(|| async { cache.get("session:short").await.expect("get").is_none() }).await;
    assert!(expired, "a 1 s entry was still there after {PATIENCE:?}");
    assert_eq!(
        cache.get("session:long").await.expect("get"),
        Some(b"y".to_vec())
    );
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Connector {
    id: String,
    max_power_w: u32,
    available: bool,
}

async fn check_json_helpers(shared: &Shared) {
    let cache = &shared.cache;
    let connector = Connector {
        id: "DEMO-CP-1/1".into(),
        max_power_w: 22_000,
        available: true,
    };
    cache
        .set_json("connector:1", &connector, Duration::from_secs(60))
        .await
        .expect("set_json");
    assert_eq!(
        cache
            .get_json::<Connector>("connector:1")
            .await
            .expect("get_json"),
        Some(connector)
    );
    assert_eq!(
        cache
            .get_json::<Connector>("connector:none")
            .await
            .expect("a miss is not an error"),
        None
    );

    cache
        .set("connector:2", b"not json", Duration::from_secs(60))
        .await
        .expect("set");
    let error = cache
        .get_json::<Connector>("connector:2")
        .await
        .expect_err("bytes that are not JSON are an error, not a miss");
    assert!(matches!(error, SharedError::Decode { .. }), "{error:?}");
    let message = error.to_string();
    assert!(message.contains("connector:2"), "{message}");
    assert!(message.contains("Connector"), "{message}");
}

async fn check_cache_is_shared(a: &Shared, b: &Shared) {
    a.cache
        .set("shared:key", b"from a", Duration::from_secs(60))
        .await
        .expect("set");
    assert_eq!(
        b.cache.get("shared:key").await.expect("get"),
        Some(b"from a".to_vec())
    );
}

async fn check_publish_subscribe(a: &Shared, b: &Shared) {
    let mut events = b.bus.subscribe("station.events").await.expect("subscribe");
    let mut other = b.bus.subscribe("station.other").await.expect("subscribe");
    assert_eq!(events.topic(), "station.events");

    let receivers = a
        .bus
        .publish("station.events", b"connector 1 available")
        .await
        .expect("publish");
    assert!(receivers >= 1, "published to {receivers} receivers");
    let message = tokio::time::timeout(PATIENCE, events.next())
        .await
        .expect("the message arrives")
        .expect("the subscription is open");
    assert_eq!(message.topic, "station.events");
    assert_eq!(message.payload, b"connector 1 available");

    a.bus
        .publish("station.events", &[0, 255, b'\n', 1])
        .await
        .expect("publish binary");
    let message = tokio::time::timeout(PATIENCE, events.next())
        .await
        .expect("the message arrives")
        .expect("the subscription is open");
    assert_eq!(message.payload, [0, 255, b'\n', 1]);

    assert!(
        tokio::time::timeout(Duration::from_millis(200), other.next())
            .await
            .is_err(),
        "a subscription receives only its own topic"
    );

    drop(events);
    drop(other);
    let unsubscribed = eventually(|| async {
        a.bus
            .publish("station.events", b"anyone?")
            .await
            .expect("publish")
            == 0
    })
    .await;
    assert!(unsubscribed, "a dropped subscription still receives");
}

async fn check_request_reply(a: &Shared, b: &Shared) {
    let bus = b.bus.clone();
    let mut requests = bus.serve("ocpp.node.1").await.expect("serve");
    let responder = tokio::spawn(async move {
        while let Some(request) = requests.next().await {
            assert_eq!(request.topic, "ocpp.node.1");
            let mut answer = b"ack:".to_vec();
            answer.extend_from_slice(&request.payload);
            request.reply(&answer).await.expect("reply");
        }
    });

    let reply = a
        .bus
        .request("ocpp.node.1", b"RemoteStartTransaction", None)
        .await
        .expect("a reply");
    assert_eq!(reply, b"ack:RemoteStartTransaction");

    // Concurrent requests each get their own reply.
    let replies = futures_util::future::join_all((0..8).map(|i| {
        let bus = a.bus.clone();
        async move {
            let payload = format!("Reset {i}");
            let reply = bus
                .request("ocpp.node.1", payload.as_bytes(), Some(PATIENCE))
                .await
                .expect("a reply");
            (payload, reply)
        }
    }))
    .await;
    for (payload, reply) in replies {
        assert_eq!(reply, format!("ack:{payload}").into_bytes());
    }
    responder.abort();
}

async fn check_no_responder_fails_fast(shared: &Shared) {
    let started = Instant::now();
    let error = shared
        .bus
        .request(
            "nobody.serves.this",
            b"hello",
            Some(Duration::from_secs(60)),
        )
        .await
        .expect_err("nobody answers");
    assert!(
        matches!(&error, BusError::NoResponder { topic } if topic == "nobody.serves.this"),
        "{error:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "NoResponder must not wait for the timeout"
    );
    assert!(error.to_string().contains("nobody.serves.this"), "{error}");
}

async fn check_request_timeout(a: &Shared, b: &Shared) {
    let mut requests = b.bus.serve("ocpp.node.stuck").await.expect("serve");
    // Receives requests and keeps them without ever answering.
    let responder = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Some(request) = requests.next().await {
            held.push(request);
        }
    });
    let after = Duration::from_millis(300);
    let error = a
        .bus
        .request("ocpp.node.stuck", b"GetDiagnostics", Some(after))
        .await
        .expect_err("no reply comes");
    match &error {
        BusError::Timeout {
            topic,
            after: waited,
        } => {
            assert_eq!(topic, "ocpp.node.stuck");
            assert_eq!(*waited, after);
        }
        other => panic!("expected a timeout, got {other:?}"),
    }
    assert!(error.to_string().contains("ocpp.node.stuck"), "{error}");
    responder.abort();
}

async fn check_locks_exclude_each_other(a: &Shared, b: &Shared) {
    let guard = a
        .locks
        .try_acquire("jobs:nightly-invoices", Duration::from_secs(30))
        .await
        .expect("try_acquire")
        .expect("the lock is free");
    assert_eq!(guard.name(), "jobs:nightly-invoices");
    assert!(
        b.locks
            .try_acquire("jobs:nightly-invoices", Duration::from_secs(30))
            .await
            .expect("try_acquire")
            .is_none(),
        "a held lock excludes others"
    );
    assert!(
        b.locks
            .try_acquire("jobs:other", Duration::from_secs(30))
            .await
            .expect("try_acquire")
            .is_some(),
        "other locks are independent"
    );
    assert!(
        guard.release().await.expect("release"),
        "the holder frees its lock"
    );
    let again = b
        .locks
        .try_acquire("jobs:nightly-invoices", Duration::from_secs(30))
        .await
        .expect("try_acquire");
    assert!(again.is_some(), "a released lock can be taken again");
}

/// Tries to take the lock `name` for 30 s until it succeeds or [`PATIENCE`] runs out.
async fn acquire_within_patience(shared: &Shared, name: &str) -> Option<LockGuard> {
    let deadline = Instant::now() + PATIENCE;
    while Instant::now() < deadline {
        let guard = shared
            .locks
            .try_acquire(name, Duration::from_secs(30))
            .await
            .expect("try_acquire");
        if guard.is_some() {
            return guard;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    None
}

async fn check_lock_expires(a: &Shared, b: &Shared) {
    let _held = a
        .locks
        .try_acquire("ocpp:DEMO-CP-1", Duration::from_millis(300))
        .await
        .expect("try_acquire")
        .expect("the lock is free");
    let acquired = acquire_within_patience(b, "ocpp:DEMO-CP-1").await;
    assert!(
        acquired.is_some(),
        "a lock whose holder never released it frees itself after its ttl"
    );
}

async fn check_other_holder_cannot_release(a: &Shared, b: &Shared) {
    let first = a
        .locks
        .try_acquire("ocpp:DEMO-CP-2", Duration::from_millis(300))
        .await
        .expect("try_acquire")
        .expect("the lock is free");
    let second = acquire_within_patience(b, "ocpp:DEMO-CP-2")
        .await
        .expect("the first holder's lock expired");

    assert!(
        !first.extend(Duration::from_secs(30)).await.expect("extend"),
        "an expired holder cannot prolong the new holder's lock"
    );
    assert!(
        !first.release().await.expect("release"),
        "an expired holder cannot free the new holder's lock"
    );
    assert!(
        a.locks
            .try_acquire("ocpp:DEMO-CP-2", Duration::from_secs(30))
            .await
            .expect("try_acquire")
            .is_none(),
        "the second holder still holds the lock"
    );
    assert!(
        second
            .extend(Duration::from_secs(30))
            .await
            .expect("extend")
    );
    assert!(second.release().await.expect("release"));
}

async fn check_counters(a: &Shared, b: &Shared) {
    let window = Duration::from_secs(60);
    assert_eq!(
        a.locks.get_counter("rate:203.0.113.7").await.expect("get"),
        0
    );
    assert_eq!(
        a.locks
            .incr("rate:203.0.113.7", 1, window)
            .await
            .expect("incr"),
        1
    );
    assert_eq!(
        b.locks
            .incr("rate:203.0.113.7", 1, window)
            .await
            .expect("incr"),
        2
    );
    assert_eq!(
        a.locks
            .incr("rate:203.0.113.7", 5, window)
            .await
            .expect("incr"),
        7
    );
    assert_eq!(
        a.locks
            .incr("rate:203.0.113.7", -2, window)
            .await
            .expect("incr"),
        5
    );
    assert_eq!(
        b.locks.get_counter("rate:203.0.113.7").await.expect("get"),
        5
    );
    assert_eq!(b.locks.get_counter("rate:other").await.expect("get"), 0);
}

async fn check_counter_window_expires(shared: &Shared) {
    let locks = &shared.locks;
    let window = Duration::from_millis(400);
    assert_eq!(locks.incr("rate:login", 1, window).await.expect("incr"), 1);
    assert_eq!(locks.incr("rate:login", 1, window).await.expect("incr"), 2);
    let reset =
        eventually(|| async { locks.get_counter("rate:login").await.expect("get") == 0 }).await;
    assert!(reset, "the counter's window never ended");
    assert_eq!(
        locks.incr("rate:login", 1, window).await.expect("incr"),
        1,
        "a new window starts from zero"
    );
}

// ---------------------------------------------------------------------------------------------
// Redis-only tests on private servers.

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free loopback port")
        .port()
}

/// A `redis-server` child process on 127.0.0.1, killed when dropped.
struct RedisServer {
    child: Option<Child>,
    port: u16,
    args: Vec<String>,
    dir: tempfile::TempDir,
}

impl RedisServer {
    /// Starts a plain server on a free port with `extra` arguments.
    fn plain(extra: &[&str]) -> RedisServer {
        let port = free_port();
        let mut args = vec!["--port".to_owned(), port.to_string()];
        args.extend(extra.iter().map(|arg| (*arg).to_owned()));
        let mut server = RedisServer::new(port, args);
        server.start().expect("redis-server starts");
        server
    }

    fn new(port: u16, args: Vec<String>) -> RedisServer {
        RedisServer {
            child: None,
            port,
            args,
            dir: tempfile::tempdir().expect("a temporary directory"),
        }
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("redis.log")
    }

    /// Starts the server and waits until it accepts connections; the error carries its log.
    fn start(&mut self) -> Result<(), String> {
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .arg("--logfile")
            .arg(self.log_path())
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|error| format!("cannot run redis-server: {error}"))?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Some(child) = &mut self.child
                && let Ok(Some(status)) = child.try_wait()
            {
                self.child = None;
                let log = std::fs::read_to_string(self.log_path()).unwrap_or_default();
                return Err(format!("redis-server exited with {status}: {log}"));
            }
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.kill();
        Err("redis-server did not accept connections within 10 s".into())
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

fn settings_for(url: String) -> RedisSettings {
    RedisSettings {
        response_timeout: Duration::from_millis(500),
        connect_timeout: Duration::from_millis(500),
        ..redis_settings(&url)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_lost_and_regained_fails_fast_then_recovers_with_its_subscriptions() {
    let mut server = RedisServer::plain(&[]);
    let target = format!("127.0.0.1:{}", server.port);
    let settings = settings_for(format!("redis://{target}"));
    let a = Shared::connect(&settings, &bus_settings())
        .await
        .expect("connect a");
    let b = Shared::connect(&settings, &bus_settings())
        .await
        .expect("connect b");
    let mut events = b.bus.subscribe("fleet.events").await.expect("subscribe");
    a.cache
        .set("before", b"1", Duration::from_secs(60))
        .await
        .expect("set while up");

    server.kill();
    for attempt in 0..3 {
        let started = Instant::now();
        let error = a.cache.get("before").await.expect_err("Redis is down");
        assert!(error.is_unavailable(), "attempt {attempt}: {error:?}");
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "attempt {attempt} hung for {:?} with response_timeout 500 ms",
            started.elapsed()
        );
        let message = error.to_string();
        assert!(message.contains(&target), "{message}");
    }
    let error = a.ping().await.expect_err("PING fails while Redis is down");
    assert!(error.is_unavailable(), "{error:?}");
    let error = a
        .bus
        .request("fleet.rpc", b"x", None)
        .await
        .expect_err("the bus fails while Redis is down");
    assert!(error.is_unavailable(), "{error:?}");

    server
        .start()
        .expect("redis-server starts again on the same port");

    let recovered = eventually(|| async {
        a.cache
            .set("after", b"2", Duration::from_secs(60))
            .await
            .is_ok()
    })
    .await;
    assert!(
        recovered,
        "cache commands did not recover within {PATIENCE:?}"
    );
    assert_eq!(
        a.cache.get("after").await.expect("get after recovery"),
        Some(b"2".to_vec())
    );
    a.ping().await.expect("PING after recovery");

    let resubscribed = eventually(|| async {
        a.bus
            .publish("fleet.events", b"after the restart")
            .await
            .is_ok_and(|receivers| receivers > 0)
    })
    .await;
    assert!(
        resubscribed,
        "the subscription was not renewed within {PATIENCE:?}"
    );
    let message = tokio::time::timeout(PATIENCE, events.next())
        .await
        .expect("the message published after the restart arrives")
        .expect("the subscription is open");
    assert_eq!(message.payload, b"after the restart");
}

#[tokio::test]
async fn redis_keys_and_channels_carry_the_key_prefix() {
    let settings = redis_settings(&test_redis_url());
    let prefix = settings.key_prefix.clone();
    let shared = Shared::connect(&settings, &bus_settings())
        .await
        .expect("connect");
    shared
        .cache
        .set("tariff", b"v", Duration::from_secs(60))
        .await
        .expect("set");
    shared
        .locks
        .incr("hits", 1, Duration::from_secs(60))
        .await
        .expect("incr");
    let _lock = shared
        .locks
        .try_acquire("job", Duration::from_secs(60))
        .await
        .expect("try_acquire");
    let _subscription = shared.bus.subscribe("events").await.expect("subscribe");

    let client = redis::Client::open(test_redis_url()).expect("test Redis URL");
    let mut raw = client
        .get_multiplexed_async_connection()
        .await
        .expect("a plain connection");
    let mut keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}*"))
        .query_async(&mut raw)
        .await
        .expect("KEYS");
    keys.sort();
    assert_eq!(
        keys,
        [
            format!("{prefix}cache:tariff"),
            format!("{prefix}counter:hits"),
            format!("{prefix}lock:job"),
        ]
    );
    let channels: Vec<String> = redis::cmd("PUBSUB")
        .arg("CHANNELS")
        .arg(format!("{prefix}*"))
        .query_async(&mut raw)
        .await
        .expect("PUBSUB CHANNELS");
    assert_eq!(channels, [format!("{prefix}bus:events")]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_idle_subscription_survives_its_keepalive_pings() {
    let (a, b) = on_redis().await;
    let mut events = b.bus.subscribe("quiet.topic").await.expect("subscribe");
    // Longer than the pub/sub connection's PING interval (5 s): a failing PING would drop and
    // renew the connection, and this publish would then find no subscriber.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let receivers = a
        .bus
        .publish("quiet.topic", b"still there")
        .await
        .expect("publish");
    assert_eq!(receivers, 1, "the idle subscription is still registered");
    let message = tokio::time::timeout(PATIENCE, events.next())
        .await
        .expect("the message arrives")
        .expect("the subscription is open");
    assert_eq!(message.payload, b"still there");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_that_is_not_there_fails_at_connect_naming_host_and_port() {
    let port = free_port();
    let started = Instant::now();
    let error = Shared::connect(
        &settings_for(format!("redis://:not-shown@127.0.0.1:{port}")),
        &bus_settings(),
    )
    .await
    .expect_err("nothing listens there");
    assert!(started.elapsed() < Duration::from_secs(5), "connect hung");
    assert!(error.is_unavailable(), "{error:?}");
    let message = error.to_string();
    assert!(message.contains(&format!("127.0.0.1:{port}")), "{message}");
    assert!(
        message.contains("redis.url"),
        "the message says what to check: {message}"
    );
    assert!(!message.contains("not-shown"), "password leaked: {message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_auth_uses_the_password_in_the_url() {
    let password = "correct-horse-battery";
    let server = RedisServer::plain(&["--requirepass", password]);
    let target = format!("127.0.0.1:{}", server.port);

    for url in [
        format!("redis://:{password}@{target}"),
        format!("redis://default:{password}@{target}"),
    ] {
        let shared = Shared::connect(&settings_for(url), &bus_settings())
            .await
            .expect("the right password is accepted");
        shared.ping().await.expect("ping");
        shared
            .cache
            .set("k", b"v", Duration::from_secs(60))
            .await
            .expect("set");
        assert_eq!(
            shared.cache.get("k").await.expect("get"),
            Some(b"v".to_vec())
        );
        // The pub/sub connection authenticates too.
        let mut subscription = shared.bus.subscribe("auth.topic").await.expect("subscribe");
        shared
            .bus
            .publish("auth.topic", b"hi")
            .await
            .expect("publish");
        let message = tokio::time::timeout(PATIENCE, subscription.next())
            .await
            .expect("message")
            .expect("open");
        assert_eq!(message.payload, b"hi");
        for shown in [shared.describe(), format!("{shared:?}")] {
            assert!(!shown.contains(password), "password leaked: {shown}");
        }
    }

    let error = Shared::connect(
        &settings_for(format!("redis://:wrong-password@{target}")),
        &bus_settings(),
    )
    .await
    .expect_err("a wrong password is refused");
    assert!(matches!(error, SharedError::Auth { .. }), "{error:?}");
    let message = error.to_string();
    assert!(message.contains(&target), "{message}");
    assert!(message.contains("password"), "{message}");
    assert!(
        !message.contains("wrong-password"),
        "password leaked: {message}"
    );

    let error = Shared::connect(&settings_for(format!("redis://{target}")), &bus_settings())
        .await
        .expect_err("no password is refused");
    assert!(matches!(error, SharedError::Auth { .. }), "{error:?}");
}

/// A CA and a server certificate for 127.0.0.1, as PEM files in `dir`.
fn write_test_certificates(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    };

    let ca_key = KeyPair::generate().expect("CA key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "voltfleet test CA");
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_cert = ca_params.self_signed(&ca_key).expect("CA certificate");
    let issuer = Issuer::new(ca_params, ca_key);

    let server_key = KeyPair::generate().expect("server key");
    let mut server_params =
        CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
            .expect("server params");
    server_params
        .distinguished_name
        .push(DnType::CommonName, "127.0.0.1");
    let server_cert = server_params
        .signed_by(&server_key, &issuer)
        .expect("server certificate");

    let paths = (
        dir.join("ca.pem"),
        dir.join("server.pem"),
        dir.join("server.key"),
    );
    std::fs::write(&paths.0, ca_cert.pem()).expect("write CA");
    std::fs::write(&paths.1, server_cert.pem()).expect("write certificate");
    std::fs::write(&paths.2, server_key.serialize_pem()).expect("write key");
    paths
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_over_tls_trusts_the_configured_ca() {
    let certificates = tempfile::tempdir().expect("a temporary directory");
    let (ca, cert, key) = write_test_certificates(certificates.path());
    let port = free_port();
    let path = |p: &Path| p.display().to_string();
    let mut server = RedisServer::new(
        port,
        vec![
            "--port".into(),
            "0".into(),
            "--tls-port".into(),
            port.to_string(),
            "--tls-cert-file".into(),
            path(&cert),
            "--tls-key-file".into(),
            path(&key),
            "--tls-ca-cert-file".into(),
            path(&ca),
            "--tls-auth-clients".into(),
            "no".into(),
        ],
    );
    if let Err(problem) = server.start() {
        eprintln!("skipped: this redis-server cannot serve TLS: {problem}");
        return;
    }
    let url = format!("rediss://127.0.0.1:{port}");

    let settings = RedisSettings {
        tls_ca: Some(ca.clone()),
        ..settings_for(url.clone())
    };
    let shared = Shared::connect(&settings, &bus_settings())
        .await
        .expect("TLS with the test CA");
    assert!(
        shared.describe().starts_with("rediss://"),
        "{}",
        shared.describe()
    );
    shared
        .cache
        .set("tls", b"encrypted", Duration::from_secs(60))
        .await
        .expect("set over TLS");
    assert_eq!(
        shared.cache.get("tls").await.expect("get over TLS"),
        Some(b"encrypted".to_vec())
    );
    let mut subscription = shared
        .bus
        .subscribe("tls.topic")
        .await
        .expect("subscribe over TLS");
    shared
        .bus
        .publish("tls.topic", b"hi")
        .await
        .expect("publish");
    let message = tokio::time::timeout(PATIENCE, subscription.next())
        .await
        .expect("message")
        .expect("open");
    assert_eq!(message.payload, b"hi");

    let error = Shared::connect(&settings_for(url), &bus_settings())
        .await
        .expect_err("the public roots do not trust the test CA");
    let message = error.to_string();
    assert!(message.contains(&format!("127.0.0.1:{port}")), "{message}");
    assert!(
        message.contains("redis.tls_ca"),
        "the message says what to do: {message}"
    );
}

async fn check_directory_newest_claim_wins(a: &Shared, b: &Shared) {
    let name = format!("ocpp.session.CP-{}", uuid_suffix());
    let ttl = Duration::from_secs(30);
    assert_eq!(a.directory.owner(&name).await.expect("owner"), None);
    a.directory
        .claim(&name, "node-a", ttl)
        .await
        .expect("claim");
    assert_eq!(
        b.directory.owner(&name).await.expect("owner").as_deref(),
        Some("node-a"),
        "every process sees the claim"
    );

    // The charger reconnects through another node, which takes the entry over.
    b.directory
        .claim(&name, "node-b", ttl)
        .await
        .expect("claim");
    assert!(
        !a.directory
            .refresh(&name, "node-a", ttl)
            .await
            .expect("refresh"),
        "the old owner cannot refresh the new owner's entry"
    );
    assert!(
        !a.directory.release(&name, "node-a").await.expect("release"),
        "the old owner cannot remove the new owner's entry"
    );
    assert_eq!(
        a.directory.owner(&name).await.expect("owner").as_deref(),
        Some("node-b")
    );
    assert!(
        b.directory
            .refresh(&name, "node-b", ttl)
            .await
            .expect("refresh")
    );
    assert!(b.directory.release(&name, "node-b").await.expect("release"));
    assert_eq!(a.directory.owner(&name).await.expect("owner"), None);

    // An owner that stops refreshing (a node that died) loses the entry after its ttl.
    a.directory
        .claim(&name, "node-a", Duration::from_millis(200))
        .await
        .expect("claim");
    let mut gone = false;
    for _ in 0..40 {
        if b.directory.owner(&name).await.expect("owner").is_none() {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(gone, "an entry nobody refreshes expires");
}

fn uuid_suffix() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

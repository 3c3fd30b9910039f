//! Active health checks against real HTTP servers on loopback: peers that answer 503, answer
//! nothing, hang up or are not listening at all.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use voltfleet_proxy::config::{
    Balance, HealthCheckConfig, PeerConfig, UpstreamConfig, UpstreamProtocol,
};
use voltfleet_proxy::upstream::Pool;

/// How a test peer treats the requests it receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Behaviour {
    Ok,
    Unavailable,
    /// Reads the request and never answers.
    Silent,
    /// Closes the connection without a word.
    HangUp,
}

/// One request a test peer received, and whether the pool held the peer healthy at that moment.
/// A peer's checks run one after another, so that is the verdict of all the checks before it.
#[derive(Debug, Clone, Copy)]
struct Received {
    behaviour: Behaviour,
    healthy_before: bool,
}

/// A tiny HTTP server on 127.0.0.1 whose behaviour the test switches.
struct TestPeer {
    behaviour: Arc<Mutex<Behaviour>>,
    received: Arc<Mutex<Vec<Received>>>,
    /// The request heads it answered.
    heads: Arc<Mutex<Vec<String>>>,
}

impl TestPeer {
    async fn bind() -> (TcpListener, SocketAddr) {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a loopback port is free");
        let address = listener
            .local_addr()
            .expect("a bound listener has an address");
        (listener, address)
    }

    fn serve(listener: TcpListener, pool: Arc<Pool>, behaviour: Behaviour) -> TestPeer {
        let address = listener
            .local_addr()
            .expect("a bound listener has an address");
        let peer = TestPeer {
            behaviour: Arc::new(Mutex::new(behaviour)),
            received: Arc::new(Mutex::new(Vec::new())),
            heads: Arc::new(Mutex::new(Vec::new())),
        };
        let (behaviour, received) = (Arc::clone(&peer.behaviour), Arc::clone(&peer.received));
        let heads = Arc::clone(&peer.heads);
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let behaviour = *behaviour
                    .lock()
                    .expect("the test holds no lock across a panic");
                let healthy_before = healthy(&pool, address);
                received
                    .lock()
                    .expect("the test holds no lock across a panic")
                    .push(Received {
                        behaviour,
                        healthy_before,
                    });
                tokio::spawn(answer(stream, behaviour, Arc::clone(&heads)));
            }
        });
        peer
    }

    fn behave(&self, behaviour: Behaviour) {
        *self
            .behaviour
            .lock()
            .expect("the test holds no lock across a panic") = behaviour;
    }

    fn received(&self) -> Vec<Received> {
        self.received
            .lock()
            .expect("the test holds no lock across a panic")
            .clone()
    }

    fn heads(&self) -> Vec<String> {
        self.heads
            .lock()
            .expect("the test holds no lock across a panic")
            .clone()
    }
}

async fn answer(mut stream: TcpStream, behaviour: Behaviour, heads: Arc<Mutex<Vec<String>>>) {
    let status = match behaviour {
        Behaviour::HangUp => return,
        Behaviour::Ok => "200 OK",
        Behaviour::Unavailable => "503 Service Unavailable",
        Behaviour::Silent => {
            // Holding the socket open without answering is the whole point.
            std::future::pending::<()>().await;
            return;
        }
    };
    let mut head = Vec::new();
    let mut buffer = [0u8; 1024];
    while !head.ends_with(b"\r\n\r\n") && head.len() < 8192 {
        match stream.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(read) => head.extend_from_slice(&buffer[..read]),
        }
    }
    heads
        .lock()
        .expect("the test holds no lock across a panic")
        .push(String::from_utf8_lossy(&head).into_owned());
    let response = format!("HTTP/1.1 {status}\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
    // The checker may hang up as soon as it has the status line.
    let _ = stream.write_all(response.as_bytes()).await;
}

fn healthy(pool: &Pool, address: SocketAddr) -> bool {
    pool.status()
        .into_iter()
        .find(|peer| peer.address == address)
        .expect("the peer belongs to the pool")
        .healthy
}

fn upstream(addresses: &[SocketAddr], check: HealthCheckConfig) -> UpstreamConfig {
    UpstreamConfig {
        name: "app".to_string(),
        peers: addresses
            .iter()
            .map(|&address| PeerConfig {
                address,
                weight: 1,
                backup: false,
                name: None,
            })
            .collect(),
        balance: Balance::RoundRobin,
        health_check: Some(check),
        max_fails: 1,
        fail_timeout: Duration::from_secs(10),
        connect_timeout: Duration::from_secs(1),
        read_timeout: Duration::from_secs(1),
        write_timeout: Duration::from_secs(1),
        idle_timeout: Duration::from_secs(1),
        tries: 2,
        protocol: UpstreamProtocol::Http1,
    }
}

fn check(timeout: Duration, rise: u32, fall: u32) -> HealthCheckConfig {
    HealthCheckConfig {
        path: "/healthz".to_string(),
        interval: Duration::from_millis(20),
        timeout,
        rise,
        fall,
    }
}

/// The pool's health checks, running until [`Checks::stop`].
struct Checks {
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl Checks {
    fn start(pool: &Arc<Pool>) -> Checks {
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(Arc::clone(pool).run_health_checks(async {
            let _ = stopped.await;
        }));
        Checks { stop, task }
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        tokio::time::timeout(Duration::from_secs(5), self.task)
            .await
            .expect("health checks stop when shutdown resolves")
            .expect("the health-check task does not panic");
    }
}

/// Waits, at most five seconds, for `condition`.
async fn eventually(what: &str, condition: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !condition() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn a_peer_answering_503_is_down_after_fall_checks_and_back_after_rise_checks() {
    let (flaky_listener, flaky) = TestPeer::bind().await;
    let (steady_listener, steady) = TestPeer::bind().await;
    let pool = Arc::new(Pool::new(&upstream(
        &[flaky, steady],
        check(Duration::from_secs(1), 2, 3),
    )));
    let flaky_peer = TestPeer::serve(flaky_listener, Arc::clone(&pool), Behaviour::Ok);
    let _steady_peer = TestPeer::serve(steady_listener, Arc::clone(&pool), Behaviour::Ok);
    let checks = Checks::start(&pool);

    eventually("the flaky peer is answered", || {
        !flaky_peer.heads().is_empty()
    })
    .await;
    let head = &flaky_peer.heads()[0];
    assert!(head.starts_with("GET /healthz HTTP/1.1\r\n"), "{head}");
    assert!(head.contains(&format!("\r\nHost: {flaky}\r\n")), "{head}");
    assert!(head.contains("\r\nConnection: close\r\n"), "{head}");
    flaky_peer.behave(Behaviour::Unavailable);
    eventually("the flaky peer is down", || !healthy(&pool, flaky)).await;
    let failed: Vec<bool> = flaky_peer
        .received()
        .iter()
        .filter(|request| request.behaviour == Behaviour::Unavailable)
        .map(|request| request.healthy_before)
        .collect();
    assert_eq!(failed[..3], [true; 3], "up until the third 503 in a row");
    assert!(failed[3..].iter().all(|&healthy| !healthy), "{failed:?}");
    assert!(healthy(&pool, steady));
    for _ in 0..10 {
        let selected = pool.select(None, &[]).expect("the steady peer is usable");
        assert_eq!(
            selected.peer, steady,
            "a peer that is down takes no requests"
        );
    }

    let before_recovery = flaky_peer.received().len();
    flaky_peer.behave(Behaviour::Ok);
    eventually("the flaky peer is back", || healthy(&pool, flaky)).await;
    let passed: Vec<bool> = flaky_peer.received()[before_recovery..]
        .iter()
        .filter(|request| request.behaviour == Behaviour::Ok)
        .map(|request| request.healthy_before)
        .collect();
    assert_eq!(
        passed[..2],
        [false; 2],
        "down until the second pass in a row"
    );
    assert!(passed[2..].iter().all(|&healthy| healthy), "{passed:?}");

    checks.stop().await;
}

#[tokio::test]
async fn a_peer_that_does_not_answer_within_the_timeout_fails_its_checks() {
    let (listener, silent) = TestPeer::bind().await;
    let pool = Arc::new(Pool::new(&upstream(
        &[silent],
        check(Duration::from_millis(50), 1, 2),
    )));
    let peer = TestPeer::serve(listener, Arc::clone(&pool), Behaviour::Silent);
    let checks = Checks::start(&pool);

    eventually("the silent peer is down", || !healthy(&pool, silent)).await;
    let verdicts: Vec<bool> = peer.received().iter().map(|r| r.healthy_before).collect();
    assert_eq!(verdicts[..2], [true; 2], "down after the second timeout");
    let error = pool.select(None, &[]).expect_err("its only peer is down");
    assert!(error.to_string().contains("no healthy peer"), "{error}");

    checks.stop().await;
}

#[tokio::test]
async fn a_closed_port_and_a_peer_that_hangs_up_fail_their_checks() {
    let (closed_listener, closed) = TestPeer::bind().await;
    drop(closed_listener);
    let (hang_up_listener, hangs_up) = TestPeer::bind().await;
    let (steady_listener, steady) = TestPeer::bind().await;
    let pool = Arc::new(Pool::new(&upstream(
        &[closed, hangs_up, steady],
        check(Duration::from_secs(1), 1, 1),
    )));
    let _hang_up_peer = TestPeer::serve(hang_up_listener, Arc::clone(&pool), Behaviour::HangUp);
    let steady_peer = TestPeer::serve(steady_listener, Arc::clone(&pool), Behaviour::Ok);
    let checks = Checks::start(&pool);

    eventually("both failing peers are down", || {
        !healthy(&pool, closed) && !healthy(&pool, hangs_up)
    })
    .await;
    eventually("the steady peer is checked", || {
        steady_peer.received().len() >= 2
    })
    .await;
    assert!(healthy(&pool, steady));

    checks.stop().await;
}

#[tokio::test]
async fn no_check_runs_after_shutdown() {
    let (listener, address) = TestPeer::bind().await;
    let pool = Arc::new(Pool::new(&upstream(
        &[address],
        check(Duration::from_secs(1), 1, 1),
    )));
    let peer = TestPeer::serve(listener, Arc::clone(&pool), Behaviour::Ok);
    let checks = Checks::start(&pool);
    eventually("the peer is checked", || !peer.received().is_empty()).await;
    checks.stop().await;

    let checked = peer.received().len();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(peer.received().len(), checked, "five intervals later");
}

#[tokio::test]
async fn a_pool_without_health_checks_returns_at_once() {
    let mut config = upstream(
        &["127.0.0.1:9".parse().expect("a valid address")],
        check(Duration::from_secs(1), 1, 1),
    );
    config.health_check = None;
    let pool = Arc::new(Pool::new(&config));
    tokio::time::timeout(
        Duration::from_secs(5),
        pool.run_health_checks(std::future::pending()),
    )
    .await
    .expect("nothing to run");
}

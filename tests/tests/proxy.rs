//! voltfleet-proxy end to end: the real binary in front of real upstream servers on loopback.

use std::collections::BTreeMap;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use voltfleet_e2e::proxy::ProxyProcess;
use voltfleet_e2e::upstream::TestUpstream;
use voltfleet_e2e::{free_port, get};

/// GETs through the proxy and returns which upstream answered (from its JSON echo).
async fn answered_by(url: &str) -> anyhow::Result<String> {
    let (status, body) = get(url).await?;
    anyhow::ensure!(status == 200, "{url} answered {status}: {body}");
    let echo: serde_json::Value = serde_json::from_str(&body)?;
    Ok(echo["upstream"].as_str().unwrap_or_default().to_string())
}

type WsSocket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Opens a WebSocket through the proxy and reads the upstream's greeting.
async fn open_websocket(
    request: tokio_tungstenite::tungstenite::handshake::client::Request,
) -> anyhow::Result<(WsSocket, reqwest::header::HeaderMap, Option<Message>)> {
    let (mut socket, response) = tokio_tungstenite::connect_async(request).await?;
    let greeting = socket.next().await.transpose()?;
    let mut headers = reqwest::header::HeaderMap::new();
    for (name, value) in response.headers() {
        headers.insert(name.clone(), value.clone());
    }
    Ok((socket, headers, greeting))
}

async fn count_answers(url: &str, requests: usize) -> anyhow::Result<BTreeMap<String, usize>> {
    let mut counts = BTreeMap::new();
    for _ in 0..requests {
        *counts.entry(answered_by(url).await?).or_default() += 1;
    }
    Ok(counts)
}

/// Polls `check` every 50 ms until it holds, for at most `limit`.
async fn eventually<F, Fut>(limit: Duration, what: &str, mut check: F) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<bool>>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if check().await? {
            return Ok(());
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "{what} did not happen within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn peers(upstreams: &[(&TestUpstream, &str)]) -> String {
    let list: Vec<String> = upstreams
        .iter()
        .map(|(u, extra)| format!("{{ address = \"{}\"{extra} }}", u.address))
        .collect();
    format!("[{}]", list.join(", "))
}

#[tokio::test]
async fn check_mode_reports_every_problem_like_nginx_t() -> anyhow::Result<()> {
    let broken = ProxyProcess::check(
        r#"
[[listeners]]
address = "{LISTEN}"
trusted_proxies = ["not-a-network"]

[upstreams.app]
peers = [{ address = "127.0.0.1:1", weight = 0 }]
balance = "fastest"

[[routes]]
path = "/"
upstream = "missing"
"#,
    )
    .await?;
    broken.assert_refused_saying(&[
        "listeners[0].trusted_proxies[0]",
        "upstreams.app.peers[0].weight",
        "upstreams.app.balance",
        "routes[0].upstream",
        "4 errors",
    ]);
    let valid = ProxyProcess::check(
        "[[listeners]]\naddress = \"{LISTEN}\"\n[upstreams.app]\npeers = [{ address = \"127.0.0.1:1\" }]\n[[routes]]\npath = \"/\"\nupstream = \"app\"\n",
    )
    .await?;
    assert!(valid.status.success(), "{}", valid.stderr);
    assert!(valid.stderr.contains("is valid"), "{}", valid.stderr);
    Ok(())
}

#[tokio::test]
async fn weighted_round_robin_spreads_by_weight_and_routes_by_prefix() -> anyhow::Result<()> {
    let (a, b, c) = (
        TestUpstream::start("a").await?,
        TestUpstream::start("b").await?,
        TestUpstream::start("c").await?,
    );
    let admin = TestUpstream::start("admin").await?;
    let proxy = ProxyProcess::start(&format!(
        r#"
[[listeners]]
address = "{{LISTEN}}"

[upstreams.app]
peers = {}

[upstreams.admin]
peers = {}

[[routes]]
path = "/"
upstream = "app"

[[routes]]
path = "/api/v1/admin/"
upstream = "admin"
"#,
        peers(&[(&a, ", weight = 2"), (&b, ""), (&c, "")]),
        peers(&[(&admin, "")])
    ))
    .await?;
    let counts = count_answers(&proxy.url("/api/v1/chargers"), 40).await?;
    assert_eq!(counts.get("a"), Some(&20), "{counts:?}");
    assert_eq!(counts.get("b"), Some(&10), "{counts:?}");
    assert_eq!(counts.get("c"), Some(&10), "{counts:?}");
    assert_eq!(
        answered_by(&proxy.url("/api/v1/admin/keys")).await?,
        "admin"
    );

    let metrics = get(&proxy.admin_url("/metrics")).await?.1;
    assert!(
        metrics.contains(
            "voltfleet_proxy_requests_total{listener=\"listener-0\",route=\"*/\",status=\"2xx\"} 40"
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains(&format!(
            "voltfleet_proxy_peer_up{{peer=\"{}\",upstream=\"app\"}} 1",
            a.address
        )),
        "{metrics}"
    );
    eventually(Duration::from_secs(5), "the access log line", || async {
        Ok(proxy.access_log().len() == 41)
    })
    .await?;
    let log = proxy.access_log();
    let last = log.last().cloned().unwrap_or_default();
    assert_eq!(last["uri"], "/api/v1/admin/keys", "{log:?}");
    assert_eq!(last["status"], 200);
    assert_eq!(last["upstream"], admin.address.to_string());
    Ok(())
}

#[tokio::test]
async fn consistent_hashing_keeps_a_charger_on_one_peer() -> anyhow::Result<()> {
    let nodes = [
        TestUpstream::start("n1").await?,
        TestUpstream::start("n2").await?,
        TestUpstream::start("n3").await?,
    ];
    let proxy = ProxyProcess::start(&format!(
        "[[listeners]]\naddress = \"{{LISTEN}}\"\n[upstreams.ocpp]\npeers = {}\nbalance = \"hash\"\nhash_key = \"path_segment:2\"\n[[routes]]\npath = \"/ocpp/\"\nupstream = \"ocpp\"\n",
        peers(&[(&nodes[0], ""), (&nodes[1], ""), (&nodes[2], "")])
    ))
    .await?;
    let mut used = std::collections::BTreeSet::new();
    for charger in 0..30 {
        let url = proxy.url(&format!("/ocpp/CP-{charger}"));
        let first = answered_by(&url).await?;
        for _ in 0..3 {
            assert_eq!(answered_by(&url).await?, first, "CP-{charger} moved");
        }
        used.insert(first);
    }
    assert_eq!(
        used.len(),
        3,
        "30 chargers should reach every node: {used:?}"
    );
    Ok(())
}

#[tokio::test]
async fn least_connections_avoids_the_busy_peer() -> anyhow::Result<()> {
    let (a, b) = (
        TestUpstream::start("a").await?,
        TestUpstream::start("b").await?,
    );
    let proxy = ProxyProcess::start(&format!(
        "[[listeners]]\naddress = \"{{LISTEN}}\"\n[upstreams.app]\npeers = {}\nbalance = \"least_conn\"\n[[routes]]\npath = \"/\"\nupstream = \"app\"\n",
        peers(&[(&a, ""), (&b, "")])
    ))
    .await?;
    // Two slow requests occupy one peer each... then one more slow request goes to either;
    // while three are in flight, the peer with one gets the quick requests.
    let slow = proxy.url("/slow?ms=1500");
    let busy: Vec<_> = (0..3)
        .map(|_| tokio::spawn(get_owned(slow.clone())))
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (busier, idler) = if a.served() > b.served() {
        ("a", "b")
    } else {
        ("b", "a")
    };
    for _ in 0..5 {
        assert_eq!(
            answered_by(&proxy.url("/quick")).await?,
            idler,
            "{busier} has more in flight"
        );
    }
    for request in busy {
        request.await??;
    }
    Ok(())
}

async fn get_owned(url: String) -> anyhow::Result<(u16, String)> {
    get(&url).await
}

#[tokio::test]
async fn health_checks_take_a_failing_peer_out_and_bring_it_back() -> anyhow::Result<()> {
    let (a, b) = (
        TestUpstream::start("a").await?,
        TestUpstream::start("b").await?,
    );
    let proxy = ProxyProcess::start(&format!(
        "[[listeners]]\naddress = \"{{LISTEN}}\"\n[upstreams.app]\npeers = {}\nhealth_check = {{ path = \"/healthz\", interval = \"100ms\", timeout = \"500ms\", rise = 2, fall = 2 }}\n[[routes]]\npath = \"/\"\nupstream = \"app\"\n",
        peers(&[(&a, ""), (&b, "")])
    ))
    .await?;
    eventually(Duration::from_secs(5), "health checks", || async {
        Ok(a.health_checks() > 0)
    })
    .await?;
    b.set_healthy(false);
    eventually(Duration::from_secs(5), "b taken out", || async {
        let status = get(&proxy.admin_url("/status")).await?.1;
        Ok(status.contains("\"healthy\":false"))
    })
    .await?;
    let counts = count_answers(&proxy.url("/"), 10).await?;
    assert_eq!(counts.get("a"), Some(&10), "{counts:?}");

    a.set_healthy(false);
    eventually(Duration::from_secs(5), "no healthy peer", || async {
        Ok(get(&proxy.admin_url("/readyz")).await?.0 == 503)
    })
    .await?;
    let response = reqwest::get(proxy.url("/")).await?;
    assert_eq!(response.status(), 503);
    assert_eq!(
        response.headers().get("retry-after").map(|v| v.as_bytes()),
        Some(&b"5"[..])
    );
    let body = response.text().await?;
    assert!(
        !body.contains("127.0.0.1"),
        "internal addresses leak: {body}"
    );

    b.set_healthy(true);
    eventually(Duration::from_secs(5), "b back", || async {
        Ok(get(&proxy.admin_url("/readyz")).await?.0 == 200)
    })
    .await?;
    assert_eq!(answered_by(&proxy.url("/")).await?, "b");
    Ok(())
}

#[tokio::test]
async fn a_refused_connection_is_retried_elsewhere_and_the_peer_ejected() -> anyhow::Result<()> {
    let a = TestUpstream::start("a").await?;
    let closed = free_port()?;
    let proxy = ProxyProcess::start(&format!(
        "[[listeners]]\naddress = \"{{LISTEN}}\"\n[upstreams.app]\npeers = [{{ address = \"127.0.0.1:{closed}\" }}, {{ address = \"{}\" }}]\nmax_fails = 1\nfail_timeout = \"30s\"\n[[routes]]\npath = \"/\"\nupstream = \"app\"\n",
        a.address
    ))
    .await?;
    for _ in 0..6 {
        assert_eq!(answered_by(&proxy.url("/")).await?, "a");
    }
    let metrics = get(&proxy.admin_url("/metrics")).await?.1;
    assert!(
        metrics.contains("voltfleet_proxy_upstream_retries_total{upstream=\"app\"} 1"),
        "one retry, then the dead peer is ejected:\n{metrics}"
    );
    assert!(
        metrics.contains(&format!(
            "voltfleet_proxy_peer_up{{peer=\"127.0.0.1:{closed}\",upstream=\"app\"}} 0"
        )),
        "{metrics}"
    );
    Ok(())
}

/// A peer that accepts a request and closes the connection without answering.
async fn black_hole() -> anyhow::Result<(
    std::net::SocketAddr,
    std::sync::Arc<std::sync::atomic::AtomicUsize>,
)> {
    use tokio::io::AsyncReadExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    let seen = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut buffer = [0u8; 4096];
            if let Ok(n) = socket.read(&mut buffer).await
                && n > 0
            {
                counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
            drop(socket);
        }
    });
    Ok((address, seen))
}

#[tokio::test]
async fn only_idempotent_requests_are_retried_after_they_were_sent() -> anyhow::Result<()> {
    let good = TestUpstream::start("good").await?;
    let (hole, seen) = black_hole().await?;
    let proxy = ProxyProcess::start(&format!(
        "[[listeners]]\naddress = \"{{LISTEN}}\"\n[upstreams.app]\npeers = [{{ address = \"{hole}\", weight = 100 }}, {{ address = \"{}\" }}]\nmax_fails = 0\ntries = 2\n[[routes]]\npath = \"/\"\nupstream = \"app\"\n",
        good.address
    ))
    .await?;
    let client = reqwest::Client::new();
    let post = client
        .post(proxy.url("/charge"))
        .body("start")
        .send()
        .await?;
    assert_eq!(
        post.status(),
        502,
        "a POST the peer dropped is not replayed"
    );
    assert_eq!(good.served(), 0, "the POST reached no second peer");
    assert_eq!(seen.load(std::sync::atomic::Ordering::SeqCst), 1);
    let get = client.get(proxy.url("/status")).send().await?;
    assert_eq!(get.status(), 200, "a GET is replayed on the next peer");
    assert_eq!(good.served(), 1);
    Ok(())
}

#[tokio::test]
async fn backup_peers_serve_only_when_the_primaries_are_down() -> anyhow::Result<()> {
    let (primary, backup) = (
        TestUpstream::start("primary").await?,
        TestUpstream::start("backup").await?,
    );
    let proxy = ProxyProcess::start(&format!(
        "[[listeners]]\naddress = \"{{LISTEN}}\"\n[upstreams.app]\npeers = {}\nhealth_check = {{ interval = \"100ms\", rise = 1, fall = 1 }}\n[[routes]]\npath = \"/\"\nupstream = \"app\"\n",
        peers(&[(&primary, ""), (&backup, ", backup = true")])
    ))
    .await?;
    assert_eq!(
        count_answers(&proxy.url("/"), 5).await?.get("primary"),
        Some(&5)
    );
    primary.set_healthy(false);
    eventually(Duration::from_secs(5), "failover to the backup", || async {
        Ok(answered_by(&proxy.url("/")).await? == "backup")
    })
    .await?;
    primary.set_healthy(true);
    eventually(Duration::from_secs(5), "back to the primary", || async {
        Ok(answered_by(&proxy.url("/")).await? == "primary")
    })
    .await?;
    Ok(())
}

#[tokio::test]
async fn forwarded_headers_are_trusted_only_from_trusted_proxies() -> anyhow::Result<()> {
    let app = TestUpstream::start("app").await?;
    let template = |trusted: &str| {
        format!(
            "[[listeners]]\naddress = \"{{LISTEN}}\"\ntrusted_proxies = [{trusted}]\n[upstreams.app]\npeers = [{{ address = \"{}\" }}]\n[[routes]]\npath = \"/\"\nupstream = \"app\"\nset_request_headers = {{ \"X-Edge\" = \"voltfleet\" }}\nset_response_headers = {{ \"X-Frame-Options\" = \"DENY\" }}\n",
            app.address
        )
    };
    let client = reqwest::Client::new();
    let echo = |response: reqwest::Response| async move {
        let headers = response.headers().clone();
        let body: serde_json::Value = response.json().await?;
        anyhow::Ok((headers, body))
    };

    let untrusting = ProxyProcess::start(&template("")).await?;
    let (headers, body) = echo(
        client
            .get(untrusting.url("/"))
            .header("X-Forwarded-For", "6.6.6.6")
            .header("X-Forwarded-Proto", "https")
            .header("X-Request-Id", "spoofed")
            .header("Host", "www.example.com")
            .send()
            .await?,
    )
    .await?;
    assert_eq!(body["headers"]["x-forwarded-for"], "127.0.0.1");
    assert_eq!(body["headers"]["x-forwarded-proto"], "http");
    assert_eq!(body["headers"]["x-forwarded-host"], "www.example.com");
    assert_eq!(body["headers"]["x-edge"], "voltfleet");
    let id = body["headers"]["x-request-id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(id.len() >= 32 && id != "spoofed", "{id}");
    assert_eq!(
        headers.get("x-request-id").and_then(|v| v.to_str().ok()),
        Some(id.as_str())
    );
    assert_eq!(
        headers.get("x-frame-options").map(|v| v.as_bytes()),
        Some(&b"DENY"[..])
    );

    let trusting = ProxyProcess::start(&template("\"127.0.0.0/8\"")).await?;
    let (_, body) = echo(
        client
            .get(trusting.url("/"))
            .header("X-Forwarded-For", "203.0.113.9")
            .header("X-Forwarded-Proto", "https")
            .header("X-Request-Id", "from-the-alb")
            .send()
            .await?,
    )
    .await?;
    assert_eq!(body["headers"]["x-forwarded-for"], "203.0.113.9, 127.0.0.1");
    assert_eq!(body["headers"]["x-forwarded-proto"], "https");
    assert_eq!(body["headers"]["x-request-id"], "from-the-alb");
    // The access log line is written after the response, in the logging phase.
    eventually(Duration::from_secs(5), "the access log line", || async {
        Ok(trusting.access_log().last().map(|l| l["client"].clone())
            == Some(serde_json::json!("203.0.113.9")))
    })
    .await?;
    Ok(())
}

#[tokio::test]
async fn websockets_pass_through_with_subprotocol_and_outlive_the_read_timeout()
-> anyhow::Result<()> {
    let ocpp = TestUpstream::start("ocpp-node").await?;
    let proxy = ProxyProcess::start(&format!(
        "[[listeners]]\naddress = \"{{LISTEN}}\"\n[upstreams.ocpp]\npeers = [{{ address = \"{}\" }}]\nread_timeout = \"500ms\"\n[[routes]]\npath = \"/ws\"\nupstream = \"ocpp\"\nwebsocket_idle_timeout = \"5s\"\n",
        ocpp.address
    ))
    .await?;
    let url = proxy.ws_url("/ws");
    let mut request = url.as_str().into_client_request()?;
    request
        .headers_mut()
        .insert("Sec-WebSocket-Protocol", "ocpp1.6".parse()?);
    request
        .headers_mut()
        .insert("Authorization", "Basic REVNTy1DUC0xOnNlY3JldA==".parse()?);
    let (mut socket, headers, greeting) = open_websocket(request).await?;
    assert_eq!(
        headers.get("sec-websocket-protocol").map(|v| v.as_bytes()),
        Some(&b"ocpp1.6"[..])
    );
    assert_eq!(
        greeting,
        Some(Message::Text(
            "ocpp-node Basic REVNTy1DUC0xOnNlY3JldA==".into()
        ))
    );
    let metrics = get(&proxy.admin_url("/metrics")).await?.1;
    assert!(
        metrics.contains("voltfleet_proxy_websockets_active{route=\"*/ws\"} 1"),
        "{metrics}\nproxy stderr:\n{}",
        proxy.stderr()
    );
    // The WebSocket's connection is open (the harness's own readiness probe may still be too).
    let open = metrics
        .lines()
        .find_map(|line| {
            line.strip_prefix("voltfleet_proxy_connections_open{listener=\"listener-0\"} ")
        })
        .and_then(|value| value.parse::<u32>().ok());
    assert!(open.is_some_and(|open| open >= 1), "{metrics}");

    // Quiet for longer than the pool's read timeout, shorter than the WebSocket idle timeout.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let call = r#"[2,"1","Heartbeat",{}]"#;
    socket.send(Message::Text(call.into())).await?;
    assert_eq!(
        socket.next().await.transpose()?,
        Some(Message::Text(call.into()))
    );
    socket.send(Message::Binary(vec![0, 1, 2].into())).await?;
    assert_eq!(
        socket.next().await.transpose()?,
        Some(Message::Binary(vec![0, 1, 2].into()))
    );
    socket.close(None).await?;
    no_websocket_left_open(&proxy).await
}

#[tokio::test]
async fn a_hanging_upstream_gets_504_and_http2_works_without_tls() -> anyhow::Result<()> {
    let app = TestUpstream::start("app").await?;
    let proxy = ProxyProcess::start(&format!(
        "[[listeners]]\naddress = \"{{LISTEN}}\"\nh2c = true\n[upstreams.app]\npeers = [{{ address = \"{}\" }}]\nread_timeout = \"300ms\"\ntries = 1\n[[routes]]\npath = \"/\"\nupstream = \"app\"\n",
        app.address
    ))
    .await?;
    let (status, body) = get(&proxy.url("/slow?ms=3000")).await?;
    assert_eq!(status, 504, "{body}");
    let h2 = reqwest::Client::builder().http2_prior_knowledge().build()?;
    let response = h2.get(proxy.url("/over-h2")).send().await?;
    assert_eq!(response.version(), reqwest::Version::HTTP_2);
    assert_eq!(response.status(), 200);
    Ok(())
}

#[tokio::test]
async fn sighup_reloads_routes_and_refuses_a_broken_file() -> anyhow::Result<()> {
    let (old, new) = (
        TestUpstream::start("old").await?,
        TestUpstream::start("new").await?,
    );
    let template = |upstream: &TestUpstream| {
        format!(
            "[[listeners]]\naddress = \"{{LISTEN}}\"\n[upstreams.app]\npeers = [{{ address = \"{}\" }}]\n[[routes]]\npath = \"/\"\nupstream = \"app\"\n",
            upstream.address
        )
    };
    let mut proxy = ProxyProcess::start(&template(&old)).await?;
    assert_eq!(answered_by(&proxy.url("/")).await?, "old");
    proxy.reload(&template(&new)).await?;
    eventually(Duration::from_secs(5), "the reload", || async {
        Ok(answered_by(&proxy.url("/")).await? == "new")
    })
    .await?;
    proxy.reload("[[listeners]]\naddress = \"{LISTEN}\"\n[[routes]]\npath = \"/\"\nupstream = \"nowhere\"\n").await?;
    eventually(
        Duration::from_secs(5),
        "the refusal to be logged",
        || async { Ok(proxy.stderr().contains("keeping the running one")) },
    )
    .await?;
    assert_eq!(answered_by(&proxy.url("/")).await?, "new");
    let status = proxy.stop_with("TERM").await?;
    assert!(
        status.success(),
        "SIGTERM drains and exits cleanly: {status}"
    );
    Ok(())
}

#[tokio::test]
async fn http2_upstreams_are_reached_over_h2c() -> anyhow::Result<()> {
    let app = TestUpstream::start("h2").await?;
    let proxy = ProxyProcess::start(&format!(
        "[[listeners]]\naddress = \"{{LISTEN}}\"\n[upstreams.app]\npeers = [{{ address = \"{}\" }}]\nprotocol = \"http2\"\n[[routes]]\npath = \"/\"\nupstream = \"app\"\n",
        app.address
    ))
    .await?;
    let (status, body) = get(&proxy.url("/over-h2c")).await?;
    assert_eq!(status, 200, "{body}");
    let echo: serde_json::Value = serde_json::from_str(&body)?;
    assert_eq!(echo["version"], "HTTP/2.0", "{echo}");
    Ok(())
}

#[tokio::test]
async fn the_example_configurations_are_valid() -> anyhow::Result<()> {
    let examples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../proxy/examples");
    let local = examples.join("local.toml");
    let checked = tokio::process::Command::new(voltfleet_e2e::binary("voltfleet-proxy")?)
        .args(["-t", "-c"])
        .arg(&local)
        .output()
        .await?;
    assert!(
        checked.status.success(),
        "{}",
        String::from_utf8_lossy(&checked.stderr)
    );
    // The web-tier example names certificate and secret files and the installed website
    // that exist only on a real instance: those are the only problems -t may find in it.
    let web = tokio::process::Command::new(voltfleet_e2e::binary("voltfleet-proxy")?)
        .args(["-t", "-c"])
        .arg(examples.join("web-tier.toml"))
        .output()
        .await?;
    let stderr = String::from_utf8_lossy(&web.stderr);
    for line in stderr
        .lines()
        .filter(|line| line.trim_start().starts_with("- "))
    {
        assert!(
            line.contains("does not exist or is not a file")
                || line.contains("cannot read /etc/voltfleet/")
                || line.contains("/usr/share/voltfleet/site is not a directory")
                || line.contains("internal-app.example.internal"),
            "unexpected problem in web-tier.toml: {line}"
        );
    }
    Ok(())
}

/// Waits (bounded) until the proxy counts no open WebSocket on the `/ws` route.
async fn no_websocket_left_open(proxy: &ProxyProcess) -> anyhow::Result<()> {
    eventually(
        Duration::from_secs(5),
        "the WebSocket gauge to drop",
        || async {
            let metrics = get(&proxy.admin_url("/metrics")).await?.1;
            Ok(metrics.contains("voltfleet_proxy_websockets_active{route=\"*/ws\"} 0"))
        },
    )
    .await
}

/// A proxy with one WebSocket route, `/ws`, to `upstream`.
async fn websocket_proxy(
    upstream: &TestUpstream,
    route_extra: &str,
) -> anyhow::Result<ProxyProcess> {
    ProxyProcess::start(&format!(
        "[[listeners]]\naddress = \"{{LISTEN}}\"\n[upstreams.ocpp]\npeers = [{{ address = \"{}\" }}]\n[[routes]]\npath = \"/ws\"\nupstream = \"ocpp\"\n{route_extra}",
        upstream.address
    ))
    .await
}

#[tokio::test]
async fn a_burst_of_websockets_all_stay_open() -> anyhow::Result<()> {
    // Chargers come back in bursts (after a deploy, a network blip); each tunnel must outlast
    // its first frame, every time.
    let ocpp = TestUpstream::start("ocpp-node").await?;
    let proxy = websocket_proxy(&ocpp, "").await?;
    let url = proxy.ws_url("/ws");
    let mut requests = Vec::new();
    for _ in 0..200 {
        requests.push(url.as_str().into_client_request()?);
    }
    let sockets =
        futures_util::future::try_join_all(requests.into_iter().map(open_websocket)).await?;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let echoes = sockets
        .into_iter()
        .enumerate()
        .map(|(n, (mut socket, _, _))| async move {
            let text = format!("charger {n}");
            socket.send(Message::Text(text.clone().into())).await?;
            match socket.next().await.transpose()? {
                Some(Message::Text(echo)) if echo.as_str() == text => Ok(()),
                other => anyhow::bail!("tunnel {n} answered {other:?} instead of its echo"),
            }
        });
    futures_util::future::try_join_all(echoes).await?;
    Ok(())
}

#[tokio::test]
async fn an_idle_websocket_is_closed_after_its_idle_timeout() -> anyhow::Result<()> {
    let ocpp = TestUpstream::start("ocpp-node").await?;
    let proxy = websocket_proxy(&ocpp, "websocket_idle_timeout = \"300ms\"\n").await?;
    let (mut socket, _, greeting) =
        open_websocket(proxy.ws_url("/ws").as_str().into_client_request()?).await?;
    assert!(greeting.is_some());
    let ended = tokio::time::timeout(Duration::from_secs(3), socket.next())
        .await
        .map_err(|_| anyhow::anyhow!("the idle tunnel was still open after 3 s"))?;
    assert!(
        !matches!(ended, Some(Ok(Message::Text(_) | Message::Binary(_)))),
        "{ended:?}"
    );
    no_websocket_left_open(&proxy).await
}

#[tokio::test]
async fn a_websocket_quiet_for_over_a_minute_stays_open() -> anyhow::Result<()> {
    // Chargers may send nothing between heartbeats for minutes; only the route's idle timeout
    // (5 minutes here) may close their tunnel, not a read timeout of the HTTP session (60 s).
    let ocpp = TestUpstream::start("ocpp-node").await?;
    let proxy = websocket_proxy(&ocpp, "websocket_idle_timeout = \"5m\"\n").await?;
    let (mut socket, _, greeting) =
        open_websocket(proxy.ws_url("/ws").as_str().into_client_request()?).await?;
    assert!(greeting.is_some());
    tokio::time::sleep(Duration::from_secs(65)).await;
    socket
        .send(Message::Text("after a quiet minute".into()))
        .await?;
    assert_eq!(
        socket.next().await.transpose()?,
        Some(Message::Text("after a quiet minute".into()))
    );
    Ok(())
}

#[tokio::test]
async fn a_refused_upgrade_is_passed_on_whole() -> anyhow::Result<()> {
    // The echo route answers an upgrade request with an ordinary 200 and a JSON body.
    let app = TestUpstream::start("app").await?;
    let proxy = ProxyProcess::start(&format!(
        "[[listeners]]\naddress = \"{{LISTEN}}\"\n[upstreams.app]\npeers = [{{ address = \"{}\" }}]\n[[routes]]\npath = \"/\"\nupstream = \"app\"\n",
        app.address
    ))
    .await?;
    let response = reqwest::Client::new()
        .get(proxy.url("/not-a-socket"))
        .header("Connection", "Upgrade")
        .header("Upgrade", "websocket")
        .send()
        .await?;
    assert_eq!(response.status(), 200);
    assert!(response.headers().contains_key("x-request-id"));
    let body: serde_json::Value = response.json().await?;
    assert_eq!(body["upstream"], "app");
    assert_eq!(body["headers"]["upgrade"], "websocket");
    assert_eq!(body["headers"]["x-forwarded-for"], "127.0.0.1");
    // And a WebSocket to a pool with no peer left gets 503, not a hang.
    let closed = free_port()?;
    let proxy = ProxyProcess::start(&format!(
        "[[listeners]]\naddress = \"{{LISTEN}}\"\n[upstreams.app]\npeers = [{{ address = \"127.0.0.1:{closed}\" }}]\ntries = 1\nmax_fails = 1\n[[routes]]\npath = \"/\"\nupstream = \"app\"\n"
    ))
    .await?;
    let request = proxy.ws_url("/ws").as_str().into_client_request()?;
    let refused = tokio_tungstenite::connect_async(request).await;
    let status = match refused {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => response.status().as_u16(),
        other => anyhow::bail!("expected an HTTP error, got {other:?}"),
    };
    assert_eq!(
        status, 502,
        "the first try finds the peer refusing connections"
    );
    Ok(())
}

#[tokio::test]
async fn a_draining_proxy_closes_websockets_with_going_away() -> anyhow::Result<()> {
    use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
    let ocpp = TestUpstream::start("ocpp-node").await?;
    let proxy = ProxyProcess::start(&format!(
        "[[listeners]]\naddress = \"{{LISTEN}}\"\n[upstreams.ocpp]\npeers = [{{ address = \"{}\" }}]\n[[routes]]\npath = \"/ws\"\nupstream = \"ocpp\"\n",
        ocpp.address
    ))
    .await?;
    let (mut socket, _, greeting) =
        open_websocket(proxy.ws_url("/ws").as_str().into_client_request()?).await?;
    assert!(greeting.is_some(), "the upstream's greeting came through");
    socket.send(Message::Text("before".into())).await?;
    assert_eq!(
        socket.next().await.transpose()?,
        Some(Message::Text("before".into()))
    );
    proxy.signal("TERM").await?;
    // The upstream stays silent: the close frame comes from the proxy as it drains, well
    // within its 2 s grace period.
    let frame = tokio::time::timeout(Duration::from_secs(5), socket.next())
        .await
        .map_err(|_| anyhow::anyhow!("no close frame within 5 s of SIGTERM"))?;
    match frame.transpose()? {
        Some(Message::Close(Some(frame))) => assert_eq!(frame.code, CloseCode::Away),
        other => anyhow::bail!("expected a close frame with 1001, got {other:?}"),
    }
    Ok(())
}

#[tokio::test]
async fn a_draining_proxy_closes_its_websockets_one_by_one() -> anyhow::Result<()> {
    use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
    // The chargers of one instance are closed at random moments over the close spread (by
    // default half the harness's 2 s grace period), so they do not reconnect all at once.
    let ocpp = TestUpstream::start("ocpp-node").await?;
    let proxy = websocket_proxy(&ocpp, "").await?;
    let mut sockets = Vec::new();
    for _ in 0..20 {
        let request = proxy.ws_url("/ws").as_str().into_client_request()?;
        sockets.push(open_websocket(request).await?.0);
    }
    proxy.signal("TERM").await?;
    let signalled = tokio::time::Instant::now();
    let closes = sockets.into_iter().map(|mut socket| async move {
        let frame = tokio::time::timeout(Duration::from_secs(5), socket.next())
            .await
            .map_err(|_| anyhow::anyhow!("no close frame within 5 s of SIGTERM"))?;
        match frame.transpose()? {
            Some(Message::Close(Some(frame))) if frame.code == CloseCode::Away => {
                Ok(signalled.elapsed())
            }
            other => anyhow::bail!("expected a close frame with 1001, got {other:?}"),
        }
    });
    let mut after = futures_util::future::try_join_all(closes).await?;
    after.sort();
    let (first, last) = (after[0], after[after.len() - 1]);
    assert!(
        last < Duration::from_secs(2),
        "all closed within the grace period: {after:?}"
    );
    assert!(
        last - first >= Duration::from_millis(200),
        "the closes are spread out: {after:?}"
    );
    Ok(())
}

#[tokio::test]
async fn a_client_hanging_up_does_not_count_against_the_peer() -> anyhow::Result<()> {
    let (a, b) = (
        TestUpstream::start("a").await?,
        TestUpstream::start("b").await?,
    );
    let proxy = ProxyProcess::start(&format!(
        "[[listeners]]\naddress = \"{{LISTEN}}\"\n[upstreams.app]\npeers = {}\nmax_fails = 1\nfail_timeout = \"30s\"\n[[routes]]\npath = \"/\"\nupstream = \"app\"\n",
        peers(&[(&a, ""), (&b, "")])
    ))
    .await?;
    let impatient = reqwest::Client::builder()
        .timeout(Duration::from_millis(200))
        .build()?;
    for _ in 0..4 {
        assert!(
            impatient
                .get(proxy.url("/slow?ms=1000"))
                .send()
                .await
                .is_err()
        );
    }
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let counts = count_answers(&proxy.url("/"), 10).await?;
    assert_eq!(
        counts.get("a"),
        Some(&5),
        "both peers still serve: {counts:?}"
    );
    assert_eq!(
        counts.get("b"),
        Some(&5),
        "both peers still serve: {counts:?}"
    );
    let metrics = get(&proxy.admin_url("/metrics")).await?.1;
    assert!(
        metrics.contains("voltfleet_proxy_upstream_retries_total{upstream=\"app\"} 0"),
        "nothing was retried:\n{metrics}"
    );
    Ok(())
}

#[tokio::test]
async fn one_pool_down_is_degraded_not_unready() -> anyhow::Result<()> {
    let app = TestUpstream::start("app").await?;
    let closed = free_port()?;
    let proxy = ProxyProcess::start(&format!(
        "[[listeners]]\naddress = \"{{LISTEN}}\"\n[upstreams.app]\npeers = [{{ address = \"{}\" }}]\n[upstreams.ocpi]\npeers = [{{ address = \"127.0.0.1:{closed}\" }}]\nhealth_check = {{ interval = \"100ms\", fall = 1 }}\n[[routes]]\npath = \"/\"\nupstream = \"app\"\n[[routes]]\npath = \"/ocpi/\"\nupstream = \"ocpi\"\n",
        app.address
    ))
    .await?;
    eventually(
        Duration::from_secs(5),
        "the OCPI pool to be marked down",
        || async {
            let (status, body) = get(&proxy.admin_url("/readyz")).await?;
            let readiness: serde_json::Value = serde_json::from_str(&body)?;
            Ok(status == 200 && readiness["degraded"] == true)
        },
    )
    .await?;
    assert_eq!(
        answered_by(&proxy.url("/api/v1/x")).await?,
        "app",
        "the healthy pool still serves"
    );
    assert_eq!(get(&proxy.url("/ocpi/versions")).await?.0, 503);
    Ok(())
}

//! voltfleet-proxy's limits on clients, through the real binary in front of a real upstream:
//! rate limits with their burst and 429, automatic blocking and its expiry, IP sets and a
//! shared limit across two proxies of one fleet sharing Redis, and what a Redis outage leaves
//! working.

use std::time::Duration;

use voltfleet_e2e::fleet::FleetRedis;
use voltfleet_e2e::proxy::{ProxyProcess, series_value};
use voltfleet_e2e::upstream::TestUpstream;

const TOKEN: &str = "limits-token-for-tests-0123456789";

/// A listener that believes the X-Forwarded-For of 127.0.0.1 (the tests play the load
/// balancer), `/api/` limited to 1 request per `span` with a burst of 2, `/free/` unlimited,
/// both inspected by the firewall; `extra` adds sections.
fn template(upstream: &TestUpstream, span: &str, shared: bool, extra: &str) -> String {
    format!(
        r#"
[[listeners]]
address = "{{LISTEN}}"
trusted_proxies = ["127.0.0.1/32"]

[upstreams.app]
peers = [{{ address = "{}" }}]

[[routes]]
path = "/api/"
upstream = "app"
[routes.rate_limit]
rate = "1/{span}"
burst = 2
shared = {shared}
[routes.waf]
mode = "block"

[[routes]]
path = "/free/"
upstream = "app"
[routes.waf]
mode = "block"
{extra}
"#,
        upstream.address
    )
}

struct Answer {
    status: u16,
    retry_after: Option<String>,
    body: String,
}

/// `path` asked for by `client`, as a trusted load balancer in front reports it.
async fn from(proxy: &ProxyProcess, client: &str, path: &str) -> anyhow::Result<Answer> {
    let response = reqwest::Client::new()
        .get(proxy.url(path))
        .header("x-forwarded-for", client)
        .timeout(Duration::from_secs(5))
        .send()
        .await?;
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    Ok(Answer {
        status,
        retry_after,
        body: response.text().await?,
    })
}

async fn statuses(
    proxy: &ProxyProcess,
    client: &str,
    path: &str,
    n: usize,
) -> anyhow::Result<Vec<u16>> {
    let mut statuses = Vec::new();
    for _ in 0..n {
        statuses.push(from(proxy, client, path).await?.status);
    }
    Ok(statuses)
}

/// Waits (bounded) until `client` gets `status` on `path`.
async fn wait_for_status(
    proxy: &ProxyProcess,
    client: &str,
    path: &str,
    status: u16,
    within: Duration,
) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if from(proxy, client, path).await?.status == status {
            return Ok(());
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "{client} never got {status} on {path} within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn ip_set_change(
    proxy: &ProxyProcess,
    method: reqwest::Method,
    body: serde_json::Value,
) -> anyhow::Result<(u16, serde_json::Value)> {
    let response = reqwest::Client::new()
        .request(method, proxy.admin_url("/ip-sets"))
        .bearer_auth(TOKEN)
        .json(&body)
        .send()
        .await?;
    let status = response.status().as_u16();
    let text = response.text().await?;
    Ok((
        status,
        serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)),
    ))
}

async fn start(template: &str) -> anyhow::Result<ProxyProcess> {
    ProxyProcess::start_with(
        template,
        "token_file = \"{DIR}/admin.token\"",
        &[("admin.token", TOKEN)],
    )
    .await
}

#[tokio::test]
async fn a_route_limits_each_client_to_its_rate_and_burst() -> anyhow::Result<()> {
    let app = TestUpstream::start("app").await?;
    let proxy = start(&template(&app, "1s", false, "")).await?;

    // One at the steady rate plus a burst of two pass at once; the next is refused.
    assert_eq!(
        statuses(&proxy, "198.51.100.1", "/api/v1/me", 3).await?,
        [200, 200, 200]
    );
    let refused = from(&proxy, "198.51.100.1", "/api/v1/me").await?;
    assert_eq!(refused.status, 429);
    assert_eq!(refused.retry_after.as_deref(), Some("1"), "a whole second");
    let problem: serde_json::Value = serde_json::from_str(&refused.body)?;
    assert_eq!(problem["status"], 429);
    assert!(problem["request_id"].is_string(), "{problem}");
    let served = app.served();

    // Another client has its own budget; the route without a limit has none.
    assert_eq!(
        from(&proxy, "198.51.100.2", "/api/v1/me").await?.status,
        200
    );
    assert_eq!(
        statuses(&proxy, "198.51.100.1", "/free/page", 5).await?,
        [200; 5]
    );
    // IPv6 clients count by /64: another address of the same network shares the budget.
    assert_eq!(
        statuses(&proxy, "2001:db8:7:7::1", "/api/x", 3).await?,
        [200; 3]
    );
    assert_eq!(
        from(&proxy, "2001:db8:7:7::abcd", "/api/x").await?.status,
        429
    );
    assert_eq!(from(&proxy, "2001:db8:7:8::1", "/api/x").await?.status, 200);
    assert_eq!(
        app.served(),
        served + 1 + 5 + 3 + 1,
        "refused requests never reach the app"
    );

    // A second later, one more request's worth has come back, not more.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(
        statuses(&proxy, "198.51.100.1", "/api/v1/me", 2).await?,
        [200, 429]
    );

    let text = proxy.metrics().await;
    assert_eq!(
        series_value(
            &text,
            r#"voltfleet_proxy_rate_limited_total{route="*/api/"}"#
        ),
        Some(3.0),
        "{text}"
    );
    Ok(())
}

#[tokio::test]
async fn repeat_offenders_are_blocked_for_a_while() -> anyhow::Result<()> {
    let app = TestUpstream::start("app").await?;
    let auto_block = r#"
[auto_block]
firewall_matches = 3
rate_limited = 4
window = "1m"
block_for = "2s"
"#;
    let proxy = start(&template(&app, "1m", false, auto_block)).await?;
    let attack = "/free/search?q=1%27%20or%20%271%27%3D%271";

    // Two refused attacks: still only the attacks are refused.
    assert_eq!(
        statuses(&proxy, "203.0.113.9", attack, 2).await?,
        [403, 403]
    );
    assert_eq!(from(&proxy, "203.0.113.9", "/free/ok").await?.status, 200);
    // The third puts the client on the deny list: now everything it asks is refused.
    assert_eq!(from(&proxy, "203.0.113.9", attack).await?.status, 403);
    let denied = from(&proxy, "203.0.113.9", "/free/ok").await?;
    assert_eq!(denied.status, 403, "blocked after three matches");
    assert_eq!(
        denied.body, "Forbidden.\n",
        "by the deny list, not the firewall"
    );
    assert_eq!(from(&proxy, "203.0.113.10", "/free/ok").await?.status, 200);

    let (status, listed) =
        ip_set_change(&proxy, reqwest::Method::GET, serde_json::json!({})).await?;
    assert_eq!(status, 200);
    let entry = listed["deny"]
        .as_array()
        .and_then(|deny| deny.iter().find(|e| e["network"] == "203.0.113.9/32"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(entry["origin"], "auto", "{listed}");
    assert!(
        entry["reason"]
            .as_str()
            .is_some_and(|reason| reason.contains("3 requests refused by the firewall")),
        "{entry}"
    );

    // It expires by itself.
    wait_for_status(
        &proxy,
        "203.0.113.9",
        "/free/ok",
        200,
        Duration::from_secs(5),
    )
    .await?;

    // Hammering a limited route: the limit answers 429 first, then the block takes over.
    let hammered = statuses(&proxy, "192.0.2.50", "/api/x", 3 + 4 + 1).await?;
    assert_eq!(
        hammered,
        [200, 200, 200, 429, 429, 429, 429, 403],
        "{hammered:?}"
    );
    let text = proxy.metrics().await;
    assert_eq!(
        series_value(
            &text,
            r#"voltfleet_proxy_auto_blocks_total{trigger="firewall"}"#
        ),
        Some(1.0)
    );
    assert_eq!(
        series_value(
            &text,
            r#"voltfleet_proxy_auto_blocks_total{trigger="rate_limit"}"#
        ),
        Some(1.0)
    );
    Ok(())
}

#[tokio::test]
async fn ip_sets_and_blocks_reach_the_whole_fleet_and_survive_a_restart() -> anyhow::Result<()> {
    let app = TestUpstream::start("app").await?;
    let redis = FleetRedis::new();
    let auto_block = "\n[auto_block]\nfirewall_matches = 2\nblock_for = \"1h\"\n";
    let template = template(&app, "1m", false, auto_block) + &redis.section();
    let (first, second) = (start(&template).await?, start(&template).await?);
    for proxy in [&first, &second] {
        proxy
            .wait_for_metric("voltfleet_proxy_fleet_ip_sets_up", 1.0)
            .await?;
    }

    // An entry added on one proxy is applied by the other.
    let entry = serde_json::json!({"list": "deny", "network": "2001:db8:bad::/48", "ttl": "1h", "reason": "scanner"});
    let (status, answer) = ip_set_change(&first, reqwest::Method::POST, entry.clone()).await?;
    assert_eq!(status, 201, "{answer}");
    wait_for_status(
        &second,
        "2001:db8:bad::1",
        "/free/",
        403,
        Duration::from_secs(3),
    )
    .await?;

    // A client blocked automatically on the second is refused by the first.
    let attack = "/free/?q=%3Cscript%3Ealert(1)%3C/script%3E";
    assert_eq!(
        statuses(&second, "198.51.100.66", attack, 2).await?,
        [403, 403]
    );
    wait_for_status(
        &first,
        "198.51.100.66",
        "/free/",
        403,
        Duration::from_secs(3),
    )
    .await?;

    // A proxy started afterwards has both from Redis.
    let third = start(&template).await?;
    third
        .wait_for_metric("voltfleet_proxy_fleet_ip_sets_up", 1.0)
        .await?;
    assert_eq!(from(&third, "2001:db8:bad::2", "/free/").await?.status, 403);
    assert_eq!(from(&third, "198.51.100.66", "/free/").await?.status, 403);

    // A removal reaches every proxy too.
    let (status, _) = ip_set_change(&third, reqwest::Method::DELETE, entry).await?;
    assert_eq!(status, 200);
    for proxy in [&first, &second] {
        wait_for_status(
            proxy,
            "2001:db8:bad::1",
            "/free/",
            200,
            Duration::from_secs(3),
        )
        .await?;
    }
    let text = first.metrics().await;
    assert!(
        series_value(
            &text,
            r#"voltfleet_proxy_fleet_ip_set_changes_total{outcome="applied"}"#
        )
        .is_some_and(|applied| applied >= 2.0),
        "{text}"
    );
    redis.remove_keys().await
}

#[tokio::test]
async fn a_shared_limit_holds_across_the_fleet() -> anyhow::Result<()> {
    let app = TestUpstream::start("app").await?;
    let redis = FleetRedis::new();
    let template = template(&app, "1m", true, "") + &redis.section();
    let (first, second) = (start(&template).await?, start(&template).await?);

    // The burst is spent across both proxies, as a load balancer would spread the client.
    let mut seen = Vec::new();
    for proxy in [&first, &second, &first, &second] {
        seen.push(from(proxy, "198.51.100.77", "/api/x").await?.status);
    }
    assert_eq!(seen, [200, 200, 200, 429], "one budget for the fleet");
    let refused = from(&first, "198.51.100.77", "/api/x").await?;
    assert_eq!(refused.status, 429);
    let wait: u64 = refused.retry_after.as_deref().unwrap_or("0").parse()?;
    assert!((55..=60).contains(&wait), "about a minute: {wait}");
    let text = first.metrics().await;
    assert_eq!(
        series_value(&text, "voltfleet_proxy_rate_limit_fallbacks_total"),
        Some(0.0),
        "counted in Redis"
    );
    redis.remove_keys().await
}

#[tokio::test]
async fn without_redis_local_sets_and_limits_keep_working_and_metrics_say_so() -> anyhow::Result<()>
{
    let app = TestUpstream::start("app").await?;
    // A port nothing listens on: bound and released at once.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let fleet = format!(
        "\n[fleet]\nredis_url = \"redis://127.0.0.1:{closed}\"\nconnect_timeout = \"200ms\"\nmax_reconnect_delay = \"1s\"\n"
    );
    let template = template(
        &app,
        "1m",
        true,
        "\n[ip_sets]\ndeny = [\"203.0.113.0/24\"]\n",
    ) + &fleet;
    let proxy = start(&template).await?;

    assert_eq!(from(&proxy, "203.0.113.1", "/free/").await?.status, 403);
    assert_eq!(
        statuses(&proxy, "198.51.100.5", "/api/x", 4).await?,
        [200, 200, 200, 429],
        "the shared limit is counted here alone"
    );
    let (status, answer) = ip_set_change(
        &proxy,
        reqwest::Method::POST,
        serde_json::json!({"list": "deny", "network": "192.0.2.0/24"}),
    )
    .await?;
    assert_eq!(status, 503, "the fleet was not told: {answer}");
    assert!(
        answer["detail"]
            .as_str()
            .is_some_and(|detail| detail.contains("added 192.0.2.0/24 to this proxy's deny list")),
        "{answer}"
    );
    assert_eq!(
        from(&proxy, "192.0.2.1", "/free/").await?.status,
        403,
        "applied here"
    );

    let text = proxy.metrics().await;
    assert_eq!(
        series_value(&text, "voltfleet_proxy_fleet_ip_sets_up"),
        Some(0.0)
    );
    assert_eq!(
        series_value(&text, "voltfleet_proxy_rate_limit_fallbacks_total"),
        Some(4.0),
        "{text}"
    );
    assert!(
        series_value(
            &text,
            r#"voltfleet_proxy_fleet_errors_total{operation="rate_limit"}"#
        )
        .is_some_and(|errors| errors >= 4.0),
        "{text}"
    );
    Ok(())
}

#[tokio::test]
async fn limit_settings_are_checked_with_reasons() -> anyhow::Result<()> {
    let finished = ProxyProcess::check(
        r#"
[[listeners]]
address = "{LISTEN}"

[upstreams.app]
peers = [{ address = "127.0.0.1:9" }]

[[routes]]
path = "/api/"
upstream = "app"
[routes.rate_limit]
rate = "ten per second"

[[routes]]
path = "/shared/"
upstream = "app"
[routes.rate_limit]
rate = "10/s"
shared = true
ipv6_prefix = 200

[auto_block]
firewall_matches = 0
rate_limited = 0
block_for = "0s"
"#,
    )
    .await?;
    finished.assert_refused_saying(&[
        "routes[0].rate_limit.rate: \"ten per second\" is not a rate",
        "routes[1].rate_limit.ipv6_prefix: 200 is not a prefix length",
        "routes[1].rate_limit.shared: a limit shared by the fleet needs the fleet's Redis",
        "auto_block.block_for: a block of 0 blocks nothing",
        "auto_block: both firewall_matches and rate_limited are 0",
    ]);
    Ok(())
}

/// A listener of its own for the connection-level bounds, without a trusted load balancer, so
/// that the tests' own address is the client's.
fn direct_template(upstream: &TestUpstream, listener_extra: &str) -> String {
    format!(
        r#"
[[listeners]]
address = "{{LISTEN}}"
{listener_extra}

[upstreams.app]
peers = [{{ address = "{}" }}]

[[routes]]
path = "/"
upstream = "app"
"#,
        upstream.address
    )
}

/// Reads until the proxy closes the connection or `within` passes; how long it took, or
/// `None` if it stayed open.
async fn closed_within<R: tokio::io::AsyncRead + Unpin>(
    stream: &mut R,
    within: Duration,
) -> Option<Duration> {
    use tokio::io::AsyncReadExt;
    let started = tokio::time::Instant::now();
    let mut buf = [0u8; 1024];
    loop {
        let left = within.checked_sub(started.elapsed())?;
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0) | Err(_)) => return Some(started.elapsed()),
            Ok(Ok(_)) => {}
        }
    }
}

fn proxy_address(proxy: &ProxyProcess) -> String {
    proxy
        .url("")
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned()
}

/// Reads one response head and its (short, Content-Length) body.
async fn read_response(stream: &mut tokio::net::TcpStream) -> anyhow::Result<String> {
    use tokio::io::AsyncReadExt;
    let mut received = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let text = String::from_utf8_lossy(&received).to_string();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length = head
                .lines()
                .find_map(|line| {
                    let (name, value) = line.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse::<usize>().ok())?
                })
                .unwrap_or(0);
            if body.len() >= length {
                return Ok(text);
            }
        }
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let n = tokio::time::timeout(left, stream.read(&mut buf)).await??;
        anyhow::ensure!(n > 0, "closed before a whole response: {text}");
        received.extend_from_slice(&buf[..n]);
    }
}

#[tokio::test]
async fn a_client_dripping_its_header_is_cut_off_and_others_are_served() -> anyhow::Result<()> {
    use tokio::io::AsyncWriteExt;
    let app = TestUpstream::start("app").await?;
    let proxy = start(&direct_template(&app, "client_header_timeout = \"1s\"")).await?;
    let address = proxy_address(&proxy);

    let slow = tokio::net::TcpStream::connect(&address).await?;
    let (mut reader, mut writer) = slow.into_split();
    writer.write_all(b"GET / HTTP/1.1\r\nHost: a\r\n").await?;
    let drip = tokio::spawn(async move {
        for _ in 0..20 {
            tokio::time::sleep(Duration::from_millis(200)).await;
            if writer.write_all(b"X").await.is_err() {
                return;
            }
        }
    });
    let closed = closed_within(&mut reader, Duration::from_secs(4)).await;
    drip.abort();
    let closed = closed.ok_or_else(|| anyhow::anyhow!("a dripping client was never cut off"))?;
    assert!(
        closed >= Duration::from_millis(900) && closed < Duration::from_millis(2500),
        "cut off after {closed:?}"
    );

    // A header that arrives in pieces within the time is served; so is the next request on the
    // same connection after an idle pause longer than the timeout.
    let mut client = tokio::net::TcpStream::connect(&address).await?;
    for piece in [&b"GET /a HTTP/1.1\r\n"[..], b"Host: a\r\n", b"\r\n"] {
        client.write_all(piece).await?;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let answer = read_response(&mut client).await?;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    client
        .write_all(b"GET /b HTTP/1.1\r\nHost: a\r\n\r\n")
        .await?;
    let answer = read_response(&mut client).await?;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");

    let text = proxy.metrics().await;
    assert_eq!(
        series_value(
            &text,
            r#"voltfleet_proxy_slow_clients_total{listener="listener-0"}"#
        ),
        Some(1.0),
        "{text}"
    );
    Ok(())
}

/// A connection that has been answered 200 once, trying again (bounded) while the proxy
/// refuses new ones.
async fn served_connection(address: &str) -> anyhow::Result<tokio::net::TcpStream> {
    use tokio::io::AsyncWriteExt;
    for _ in 0..40 {
        let mut stream = tokio::net::TcpStream::connect(address).await?;
        let sent = stream.write_all(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n").await;
        if sent.is_ok()
            && read_response(&mut stream)
                .await
                .is_ok_and(|answer| answer.starts_with("HTTP/1.1 200"))
        {
            return Ok(stream);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    anyhow::bail!("no connection to {address} was served")
}

#[tokio::test]
async fn one_address_cannot_hold_more_than_its_connections() -> anyhow::Result<()> {
    use tokio::io::AsyncWriteExt;
    let app = TestUpstream::start("app").await?;
    let proxy = start(&direct_template(&app, "max_connections_per_ip = 3")).await?;
    let address = proxy_address(&proxy);

    // Three connections that each got an answer, so all three are counted. (The readiness
    // probe's connection may still hold a place for a moment: hence the retries.)
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(served_connection(&address).await?);
    }
    let mut fourth = tokio::net::TcpStream::connect(&address).await?;
    let _ = fourth.write_all(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n").await;
    assert!(
        closed_within(&mut fourth, Duration::from_secs(3))
            .await
            .is_some(),
        "the fourth connection was served"
    );

    // Once one closes, its place comes back.
    drop(held.pop());
    served_connection(&address).await?;
    let text = proxy.metrics().await;
    assert!(
        series_value(
            &text,
            r#"voltfleet_proxy_connections_refused_total{listener="listener-0"}"#
        )
        .is_some_and(|refused| refused >= 1.0),
        "{text}"
    );
    Ok(())
}

#[tokio::test]
async fn too_many_header_fields_get_431() -> anyhow::Result<()> {
    let app = TestUpstream::start("app").await?;
    let proxy = start(&direct_template(&app, "")).await?;
    let client = reqwest::Client::new();
    let with_fields = |count: usize| {
        let mut request = client.get(proxy.url("/"));
        for n in 0..count {
            request = request.header(format!("x-field-{n}"), "v");
        }
        request
    };
    assert_eq!(with_fields(60).send().await?.status().as_u16(), 200);
    assert_eq!(with_fields(120).send().await?.status().as_u16(), 431);
    Ok(())
}

#[tokio::test]
async fn a_stalled_body_ends_its_request_with_408() -> anyhow::Result<()> {
    use tokio::io::AsyncWriteExt;
    let app = TestUpstream::start("app").await?;
    let proxy = start(&direct_template(&app, "client_body_timeout = \"1s\"")).await?;
    let mut client = tokio::net::TcpStream::connect(proxy_address(&proxy)).await?;
    let started = tokio::time::Instant::now();
    client
        .write_all(b"POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nhalf-")
        .await?;
    let answer = read_response(&mut client).await?;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(900) && elapsed < Duration::from_secs(4),
        "answered after {elapsed:?}"
    );
    assert_eq!(app.served(), 0, "the upstream never got a whole request");
    Ok(())
}

//! voltfleet-proxy's web application firewall on the request path, through the real binary in
//! front of a real upstream: SQL injection and XSS refused before the upstream sees them, a
//! counting route that lets them through and says so, exclusions for free text, and the
//! benign requests of drivers left alone.

use std::time::Duration;

use voltfleet_e2e::proxy::ProxyProcess;
use voltfleet_e2e::upstream::TestUpstream;

/// `/api/` blocks, `/count/` counts, `/support/` excludes the `message` argument, `/strict/`
/// refuses malformed bodies, all at level 1, in front of `upstream`.
fn template(upstream: &TestUpstream) -> String {
    format!(
        r#"
[[listeners]]
address = "{{LISTEN}}"

[upstreams.app]
peers = [{{ address = "{}" }}]

[[routes]]
path = "/api/"
upstream = "app"
[routes.waf]
mode = "block"

[[routes]]
path = "/count/"
upstream = "app"
[routes.waf]
mode = "count"

[[routes]]
path = "/support/"
upstream = "app"
[routes.waf]
exclude_args = ["message"]
exclude_paths = ["/support/raw/"]

[[routes]]
path = "/strict/"
upstream = "app"
[routes.waf]
malformed_body = "block"
"#,
        upstream.address
    )
}

async fn get(url: &str, headers: &[(&str, &str)]) -> anyhow::Result<(u16, String)> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()?;
    let mut request = client.get(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await?;
    let status = response.status().as_u16();
    Ok((status, response.text().await?))
}

#[tokio::test]
async fn attacks_are_refused_before_the_upstream_and_drivers_pass() -> anyhow::Result<()> {
    let app = TestUpstream::start("app").await?;
    let proxy = ProxyProcess::start(&template(&app)).await?;

    for (path, headers) in [
        ("/api/v1/locations?q=1%27%20or%20%271%27%3D%271", vec![]),
        (
            "/api/v1/locations?id=-1%20UNION%20ALL%20SELECT%201,2,3--",
            vec![],
        ),
        (
            "/api/v1/chargers?name=%3Cscript%3Ealert(1)%3C/script%3E",
            vec![],
        ),
        (
            "/api/v1/session",
            vec![("cookie", "theme=%22%3E%3Csvg/onload=alert(1)%3E")],
        ),
        ("/api/v1/session", vec![("user-agent", "' or sleep(5)#")]),
    ] {
        let (status, body) = get(&proxy.url(path), &headers).await?;
        assert_eq!(status, 403, "{path} {headers:?}: {body}");
        let problem: serde_json::Value = serde_json::from_str(&body)?;
        assert!(problem["rule"].as_u64().is_some(), "{body}");
        assert!(
            problem["request_id"]
                .as_str()
                .is_some_and(|id| !id.is_empty())
        );
        assert!(
            !body.contains("script"),
            "the answer never echoes what matched: {body}"
        );
    }
    assert_eq!(app.served(), 0, "no attack reached the upstream");

    for path in [
        "/api/v1/locations?q=O%27Brien&lat=40.4168&lng=-3.7038&connector=CCS2",
        "/api/v1/locations?address=Calle%20de%20O%27Donnell%2012%2C%203%C2%BA%20B",
        "/api/v1/search?q=select%20another%20charger%3B%20it%20says%20%27error%2042%27",
    ] {
        let (status, body) = get(&proxy.url(path), &[]).await?;
        assert_eq!(status, 200, "{path}: {body}");
    }
    assert_eq!(app.served(), 3);

    let metrics = get(&proxy.admin_url("/metrics"), &[]).await?.1;
    let blocked: f64 = metrics
        .lines()
        .filter(|line| {
            line.starts_with("voltfleet_proxy_waf_matches_total{")
                && line.contains(r#"action="block""#)
                && line.contains(r#"route="*/api/""#)
        })
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert_eq!(blocked, 5.0, "{metrics}");
    let log = proxy.stderr();
    assert!(
        log.contains("A request matched a firewall rule.") && log.contains(r#""action":"block""#),
        "{log}"
    );
    Ok(())
}

#[tokio::test]
async fn a_counting_route_lets_matches_through_and_exclusions_hold() -> anyhow::Result<()> {
    let app = TestUpstream::start("app").await?;
    let proxy = ProxyProcess::start(&template(&app)).await?;
    let attack = "%27%20or%20%271%27%3D%271";

    let (status, _) = get(&proxy.url(&format!("/count/x?q={attack}")), &[]).await?;
    assert_eq!(status, 200, "counted, not blocked");
    assert_eq!(app.served(), 1);
    let log = proxy.stderr();
    assert!(log.contains(r#""action":"count""#), "{log}");

    // Free text where the route expects it, and a path it does not inspect.
    let (status, _) = get(
        &proxy.url(&format!("/support/tickets?message={attack}")),
        &[],
    )
    .await?;
    assert_eq!(status, 200);
    let (status, _) = get(&proxy.url(&format!("/support/raw/x?q={attack}")), &[]).await?;
    assert_eq!(status, 200);
    // The same text in another argument of that route is inspected.
    let (status, _) = get(
        &proxy.url(&format!("/support/tickets?subject={attack}")),
        &[],
    )
    .await?;
    assert_eq!(status, 403);
    assert_eq!(app.served(), 3);
    Ok(())
}

#[tokio::test]
async fn firewall_settings_are_checked_with_reasons() -> anyhow::Result<()> {
    let finished = ProxyProcess::check(
        r#"
[[listeners]]
address = "{LISTEN}"
[upstreams.app]
peers = [{ address = "127.0.0.1:9" }]
[[routes]]
path = "/"
upstream = "app"
methods = ["get"]
[routes.waf]
mode = "deny"
level = 7
exclude_paths = ["support"]
inspect_headers = ["bad header"]
max_body = "lots"
[ip_sets]
deny = ["203.0.113.0/33"]
"#,
    )
    .await?;
    finished.assert_refused_saying(&[
        "routes[0].waf.mode",
        "\"deny\" is not a mode",
        "routes[0].waf.level",
        "routes[0].waf.exclude_paths",
        "routes[0].waf.inspect_headers",
        "routes[0].waf.max_body",
        "ip_sets.deny",
        "routes[0].methods",
    ]);
    Ok(())
}

async fn post(url: &str, content_type: &str, body: &str) -> anyhow::Result<(u16, String)> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()?;
    let response = client
        .post(url)
        .header("content-type", content_type)
        .body(body.to_owned())
        .send()
        .await?;
    let status = response.status().as_u16();
    Ok((status, response.text().await?))
}

#[tokio::test]
async fn bodies_are_read_before_the_upstream_gets_them() -> anyhow::Result<()> {
    let app = TestUpstream::start("app").await?;
    let proxy = ProxyProcess::start(&template(&app)).await?;

    for (content_type, body) in [
        (
            "application/json",
            r#"{"driver": {"name": "x' or '1'='1"}}"#,
        ),
        (
            "application/x-www-form-urlencoded",
            "name=%3Cscript%3Ealert(1)%3C%2Fscript%3E",
        ),
        ("text/plain", "1; DROP TABLE users; --"),
    ] {
        let (status, answer) = post(&proxy.url("/api/v1/drivers"), content_type, body).await?;
        assert_eq!(status, 403, "{content_type}: {answer}");
        let problem: serde_json::Value = serde_json::from_str(&answer)?;
        assert!(problem["rule"].as_u64().is_some(), "{answer}");
    }
    assert_eq!(app.served(), 0, "no attacking body reached the upstream");

    // A driver's own data, bigger than what is held back for reading, arrives whole.
    let notes = "Llego tarde: O'Donnell 12, 3º B — ¿reservan el conector #2? ".repeat(1500);
    let body = serde_json::json!({"name": "Siobhán O'Brien", "notes": notes}).to_string();
    let (status, answer) = post(&proxy.url("/api/v1/drivers"), "application/json", &body).await?;
    assert_eq!(status, 200, "{answer}");
    let echoed: serde_json::Value = serde_json::from_str(&answer)?;
    assert_eq!(echoed["body_bytes"].as_u64(), Some(body.len() as u64));

    // Free text in an excluded field is passed on.
    let (status, _) = post(
        &proxy.url("/support/tickets"),
        "application/json",
        r#"{"message": "it says ' or 1=1 -- on the screen", "charger": "ES*VLT*E1"}"#,
    )
    .await?;
    assert_eq!(status, 200);
    assert_eq!(app.served(), 2);

    // A broken document is read as text where the route says so, refused where it says so.
    let broken = r#"{"name": "Ana", "evse": "#;
    let (status, _) = post(&proxy.url("/api/v1/drivers"), "application/json", broken).await?;
    assert_eq!(status, 200);
    let (status, answer) = post(&proxy.url("/strict/drivers"), "application/json", broken).await?;
    assert_eq!(status, 403, "{answer}");
    let problem: serde_json::Value = serde_json::from_str(&answer)?;
    assert_eq!(problem["rule"].as_u64(), Some(100_100));
    assert_eq!(app.served(), 3);
    Ok(())
}

const TOKEN: &str = "ip-set-token-for-tests-0123456789";

/// The status of `path` asked for by `client`, as a trusted load balancer in front reports it.
async fn from(proxy: &ProxyProcess, client: &str, path: &str) -> anyhow::Result<u16> {
    Ok(get(&proxy.url(path), &[("x-forwarded-for", client)])
        .await?
        .0)
}

async fn admin(
    proxy: &ProxyProcess,
    method: reqwest::Method,
    body: Option<serde_json::Value>,
    token: Option<&str>,
) -> anyhow::Result<(u16, serde_json::Value)> {
    let client = reqwest::Client::new();
    let mut request = client.request(method, proxy.admin_url("/ip-sets"));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await?;
    let status = response.status().as_u16();
    let text = response.text().await?;
    Ok((
        status,
        serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)),
    ))
}

#[tokio::test]
async fn ip_sets_from_config_files_and_the_admin_api() -> anyhow::Result<()> {
    let app = TestUpstream::start("app").await?;
    let proxy = ProxyProcess::start_with(
        &format!(
            r#"
[[listeners]]
address = "{{LISTEN}}"
trusted_proxies = ["127.0.0.1/32"]

[ip_sets]
allow = ["192.0.2.10"]
deny = ["203.0.113.0/24"]
deny_files = ["{{DIR}}/deny.txt"]

[upstreams.app]
peers = [{{ address = "{}" }}]

[[routes]]
path = "/"
upstream = "app"
[routes.waf]
mode = "block"
"#,
            app.address
        ),
        "token_file = \"{DIR}/admin.token\"",
        &[
            ("admin.token", TOKEN),
            (
                "deny.txt",
                "# scanners seen last week\n198.51.100.7   # port scans\n\n",
            ),
        ],
    )
    .await?;
    let attack = "/api/v1/locations?q=1%27%20or%20%271%27%3D%271";

    assert_eq!(
        from(&proxy, "203.0.113.5", "/").await?,
        403,
        "denied in the configuration"
    );
    assert_eq!(
        from(&proxy, "198.51.100.7", "/").await?,
        403,
        "denied in the file"
    );
    assert_eq!(from(&proxy, "198.51.100.8", "/").await?, 200);
    assert_eq!(
        from(&proxy, "192.0.2.10", attack).await?,
        200,
        "allowed clients are not inspected"
    );
    assert_eq!(from(&proxy, "192.0.2.11", attack).await?, 403, "others are");

    // Without the token, nothing changes.
    let change = serde_json::json!({"list": "deny", "network": "2001:db8::/32", "ttl": "2s", "reason": "scanner"});
    let (status, _) = admin(&proxy, reqwest::Method::POST, Some(change.clone()), None).await?;
    assert_eq!(status, 401);
    let (status, _) = admin(&proxy, reqwest::Method::POST, Some(change), Some(TOKEN)).await?;
    assert_eq!(status, 201);
    assert_eq!(
        from(&proxy, "2001:db8::1", "/").await?,
        403,
        "added at run time"
    );
    let (status, listed) = admin(&proxy, reqwest::Method::GET, None, Some(TOKEN)).await?;
    assert_eq!(status, 200);
    let deny = listed["deny"].as_array().cloned().unwrap_or_default();
    assert!(
        deny.iter().any(|e| e["network"] == "2001:db8::/32"
            && e["reason"] == "scanner"
            && e["origin"] == "api"),
        "{listed}"
    );
    assert!(
        deny.iter()
            .any(|e| e["network"] == "198.51.100.7/32" && e["origin"] == "config"),
        "{listed}"
    );

    // It expires by itself.
    let mut expired = false;
    for _ in 0..40 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if from(&proxy, "2001:db8::1", "/").await? == 200 {
            expired = true;
            break;
        }
    }
    assert!(expired, "the entry outlived its ttl");

    // Removed by hand; a bad change says what is wrong.
    let entry = serde_json::json!({"list": "deny", "network": "100.64.0.0/10"});
    admin(
        &proxy,
        reqwest::Method::POST,
        Some(entry.clone()),
        Some(TOKEN),
    )
    .await?;
    assert_eq!(from(&proxy, "100.64.1.1", "/").await?, 403);
    let (status, _) = admin(
        &proxy,
        reqwest::Method::DELETE,
        Some(entry.clone()),
        Some(TOKEN),
    )
    .await?;
    assert_eq!(status, 200);
    assert_eq!(from(&proxy, "100.64.1.1", "/").await?, 200);
    let (status, _) = admin(&proxy, reqwest::Method::DELETE, Some(entry), Some(TOKEN)).await?;
    assert_eq!(status, 404);
    let bad = serde_json::json!({"list": "block", "network": "10.0.0.0/33"});
    let (status, problem) = admin(&proxy, reqwest::Method::POST, Some(bad), Some(TOKEN)).await?;
    assert_eq!(status, 400);
    assert!(problem.to_string().contains("neither"), "{problem}");

    let metrics = get(&proxy.admin_url("/metrics"), &[]).await?.1;
    assert!(
        metrics.contains(r#"voltfleet_proxy_ip_set_entries{list="deny"} 2"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"voltfleet_proxy_ip_set_entries{list="allow"} 1"#),
        "{metrics}"
    );
    let refused: f64 = metrics
        .lines()
        .find_map(|line| line.strip_prefix("voltfleet_proxy_ip_set_refused_total "))
        .and_then(|value| value.parse().ok())
        .unwrap_or(0.0);
    // Three addresses refused above, the expiring one perhaps more than once while it lived.
    assert!(refused >= 4.0, "{metrics}");
    Ok(())
}

#[tokio::test]
async fn methods_per_route_and_the_target_length_are_enforced() -> anyhow::Result<()> {
    let app = TestUpstream::start("app").await?;
    let proxy = ProxyProcess::start(&format!(
        r#"
[[listeners]]
address = "{{LISTEN}}"

[upstreams.app]
peers = [{{ address = "{}" }}]

[[routes]]
path = "/locations/"
upstream = "app"
methods = ["GET", "HEAD"]

[[routes]]
path = "/"
upstream = "app"
"#,
        app.address
    ))
    .await?;
    let client = reqwest::Client::new();
    let refused = client
        .post(proxy.url("/locations/1"))
        .body("x")
        .send()
        .await?;
    assert_eq!(refused.status().as_u16(), 405);
    assert_eq!(refused.headers()["allow"], "GET, HEAD");
    assert_eq!(
        client
            .get(proxy.url("/locations/1"))
            .send()
            .await?
            .status()
            .as_u16(),
        200
    );
    assert_eq!(
        client
            .post(proxy.url("/sessions"))
            .body("x")
            .send()
            .await?
            .status()
            .as_u16(),
        200
    );

    // The default bound is 8 KiB of path and query.
    let long = format!("/sessions?q={}", "a".repeat(8300));
    assert_eq!(
        client.get(proxy.url(&long)).send().await?.status().as_u16(),
        414
    );
    let fits = format!("/sessions?q={}", "a".repeat(8000));
    assert_eq!(
        client.get(proxy.url(&fits)).send().await?.status().as_u16(),
        200
    );
    assert_eq!(app.served(), 3);
    Ok(())
}

//! voltfleet-proxy's HTTP cache: the real binary in front of a real origin on 127.0.0.1 whose
//! responses carry the caching headers under test; every test counts what reached the origin.

use std::time::Duration;

use anyhow::Context;
use reqwest::StatusCode;
use voltfleet_e2e::fleet::FleetRedis;
use voltfleet_e2e::origin::CacheOrigin;
use voltfleet_e2e::proxy::ProxyProcess;

const TOKEN: &str = "purge-token-for-tests-0123456789";

/// A proxy caching everything under `/` in zone `web`; `zone_path` adds a disk tier.
fn template(
    origin: &CacheOrigin,
    zone_path: Option<&std::path::Path>,
    route_extra: &str,
) -> String {
    let path = zone_path
        .map(|path| format!("path = \"{}\"\nmax_size = \"64m\"\n", path.display()))
        .unwrap_or_default();
    zone_template(
        origin,
        &format!("{path}memory_size = \"16m\"\nmemory_max_object_size = \"256k\""),
        route_extra,
    )
}

/// Like [`template`], with the zone's settings as given.
fn zone_template(origin: &CacheOrigin, zone: &str, route_extra: &str) -> String {
    format!(
        r#"
[[listeners]]
address = "{{LISTEN}}"

[upstreams.origin]
peers = [{{ address = "{origin}" }}]
tries = 1

[cache_zones.web]
{zone}

[[routes]]
path = "/"
upstream = "origin"

[routes.cache]
zone = "web"
{route_extra}
"#,
        origin = origin.address
    )
}

/// Starts the proxy with the admin token in a file beside its configuration.
async fn start(template: &str) -> anyhow::Result<ProxyProcess> {
    ProxyProcess::start_with(
        template,
        "token_file = \"{DIR}/admin.token\"",
        &[("admin.token", TOKEN)],
    )
    .await
}

/// An origin, a memory-only caching proxy in front of it, and a client.
async fn setup(route_extra: &str) -> anyhow::Result<(CacheOrigin, ProxyProcess, reqwest::Client)> {
    let origin = CacheOrigin::start().await?;
    let proxy = start(&template(&origin, None, route_extra)).await?;
    Ok((origin, proxy, reqwest::Client::new()))
}

struct Answer {
    status: StatusCode,
    cache: String,
    body: String,
    age: Option<u64>,
}

async fn get(client: &reqwest::Client, url: &str, headers: &[(&str, &str)]) -> Answer {
    let mut request = client.get(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.expect("the proxy answers");
    let status = response.status();
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let cache = header("x-cache-status").unwrap_or_default();
    let age = header("age").and_then(|age| age.parse().ok());
    let body = response.text().await.unwrap_or_default();
    Answer {
        status,
        cache,
        body,
        age,
    }
}

#[tokio::test]
async fn fresh_responses_are_stored_and_served_without_the_origin() -> anyhow::Result<()> {
    let (origin, proxy, client) = setup("").await?;
    let url = proxy.url("/fresh?cc=max-age%3D60");

    let first = get(&client, &url, &[]).await;
    assert_eq!(
        (first.status, first.cache.as_str()),
        (StatusCode::OK, "MISS")
    );
    let second = get(&client, &url, &[]).await;
    assert_eq!(second.cache, "HIT");
    assert_eq!(second.body, first.body);
    assert!(second.age.is_some(), "a stored answer carries Age");
    // The same URL spelled differently meets the same entry.
    let respelled = get(&client, &proxy.url("/fresh?cc=max-age%3d60"), &[]).await;
    assert_eq!(respelled.cache, "HIT");
    let head = client.head(&url).send().await?;
    assert_eq!(head.headers()["x-cache-status"], "HIT");
    assert_eq!(origin.requests("/fresh"), 1);

    let log = proxy.access_log();
    let statuses: Vec<&str> = log.iter().filter_map(|l| l["cache"].as_str()).collect();
    assert!(statuses.starts_with(&["MISS", "HIT"]), "{statuses:?}");
    let metrics = client
        .get(proxy.admin_url("/metrics"))
        .send()
        .await?
        .text()
        .await?;
    assert!(
        metrics.contains(r#"voltfleet_proxy_cache_requests_total{status="HIT",zone="web"} 3"#),
        "{metrics}"
    );
    assert!(metrics.contains(r#"voltfleet_proxy_cache_objects{tier="memory",zone="web"} 1"#));
    Ok(())
}

#[tokio::test]
async fn responses_the_rfc_keeps_out_are_not_stored() -> anyhow::Result<()> {
    let (origin, proxy, client) = setup("").await?;
    for (path, query) in [
        ("/no-store", "cc=no-store"),
        ("/private", "cc=private%2C%20max-age%3D60"),
        ("/cookie", "cc=max-age%3D60&cookie=session%3Dabc"),
        ("/no-freshness", ""),
        ("/error", "status=500"),
    ] {
        let url = proxy.url(&format!("{path}?{query}"));
        for _ in 0..2 {
            let answer = get(&client, &url, &[]).await;
            assert_eq!(answer.cache, "MISS", "{path}");
        }
        assert_eq!(
            origin.requests(path),
            2,
            "{path} reached the origin each time"
        );
    }
    // Authorization keeps a response out unless it is explicitly public.
    let url = proxy.url("/auth?cc=max-age%3D60");
    get(&client, &url, &[("authorization", "Bearer x")]).await;
    get(&client, &url, &[("authorization", "Bearer x")]).await;
    assert_eq!(origin.requests("/auth"), 2);
    let url = proxy.url("/auth-public?cc=public%2C%20max-age%3D60");
    get(&client, &url, &[("authorization", "Bearer x")]).await;
    let again = get(&client, &url, &[("authorization", "Bearer x")]).await;
    assert_eq!(again.cache, "HIT");
    Ok(())
}

#[tokio::test]
async fn connection_specific_fields_reach_neither_the_client_nor_the_cache() -> anyhow::Result<()> {
    let (origin, proxy, client) = setup("").await?;
    let url = proxy.url("/hop?cc=max-age%3D60&hop=secret");
    for expected in ["MISS", "HIT"] {
        let response = client.get(&url).send().await?;
        let headers = response.headers().clone();
        assert_eq!(headers["x-cache-status"], expected);
        for name in ["x-hop", "keep-alive", "trailer"] {
            assert!(
                !headers.contains_key(name),
                "{expected}: {name} was forwarded"
            );
        }
        assert_eq!(headers["cache-control"], "max-age=60");
    }
    assert_eq!(origin.requests("/hop"), 1);
    Ok(())
}

#[tokio::test]
async fn cdn_cache_control_rules_over_cache_control() -> anyhow::Result<()> {
    let (origin, proxy, client) = setup("").await?;
    // The origin keeps browsers from storing it, and lets the edge keep it for a minute.
    let url = proxy.url("/cdn?cc=no-store&cdn_cc=max-age%3D60");
    assert_eq!(get(&client, &url, &[]).await.cache, "MISS");
    let second = client.get(&url).send().await?;
    assert_eq!(second.headers()["x-cache-status"], "HIT");
    assert_eq!(
        second.headers()["cache-control"],
        "no-store",
        "browsers still see theirs"
    );
    // And the other way round: the edge is told not to store what browsers may.
    let url = proxy.url("/cdn-private?cc=max-age%3D60&cdn_cc=no-store");
    get(&client, &url, &[]).await;
    assert_eq!(get(&client, &url, &[]).await.cache, "MISS");
    assert_eq!(origin.requests("/cdn"), 1);
    assert_eq!(origin.requests("/cdn-private"), 2);
    Ok(())
}

#[tokio::test]
async fn expired_responses_are_revalidated_with_their_validator() -> anyhow::Result<()> {
    let (origin, proxy, client) = setup("").await?;
    let url = proxy.url("/validated?cc=max-age%3D1&etag=%22v1%22");
    let first = get(&client, &url, &[]).await;
    assert_eq!(first.cache, "MISS");
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let revalidated = get(&client, &url, &[]).await;
    assert_eq!(revalidated.cache, "REVALIDATED");
    assert_eq!(
        revalidated.body, first.body,
        "the 304 freshened the stored body"
    );
    assert_eq!(get(&client, &url, &[]).await.cache, "HIT");
    assert_eq!(origin.requests("/validated"), 2);

    // A client's own conditional request is answered from the cache.
    let conditional = client
        .get(&url)
        .header("if-none-match", "\"v1\"")
        .send()
        .await?;
    assert_eq!(conditional.status(), StatusCode::NOT_MODIFIED);
    // A forced reload asks the origin even while the response is fresh.
    let reload = get(&client, &url, &[("cache-control", "no-cache")]).await;
    assert_eq!(reload.cache, "REVALIDATED");
    assert_eq!(origin.requests("/validated"), 3);

    // `no-cache` without freshness is kept for its validator and revalidated on every use.
    let url = proxy.url("/always-ask?cc=no-cache&etag=%22n1%22");
    let first = get(&client, &url, &[]).await;
    assert_eq!(first.cache, "MISS");
    for _ in 0..2 {
        let again = get(&client, &url, &[]).await;
        assert_eq!(again.cache, "REVALIDATED");
        assert_eq!(
            again.body, first.body,
            "a 304 each time, the stored body served"
        );
    }
    assert_eq!(origin.requests("/always-ask"), 3);
    Ok(())
}

#[tokio::test]
async fn vary_keeps_one_variant_per_value() -> anyhow::Result<()> {
    let (origin, proxy, client) = setup("").await?;
    let url = proxy.url("/varied?cc=max-age%3D60&vary=accept-language");
    let en = get(&client, &url, &[("accept-language", "en")]).await;
    let fr = get(&client, &url, &[("accept-language", "fr")]).await;
    assert_eq!((en.cache.as_str(), fr.cache.as_str()), ("MISS", "MISS"));
    let en_again = get(&client, &url, &[("accept-language", "en")]).await;
    let fr_again = get(&client, &url, &[("accept-language", "fr")]).await;
    assert_eq!(
        (en_again.cache.as_str(), fr_again.cache.as_str()),
        ("HIT", "HIT")
    );
    assert!(en_again.body.contains("lang=en"), "{}", en_again.body);
    assert!(fr_again.body.contains("lang=fr"), "{}", fr_again.body);
    assert_eq!(origin.requests("/varied"), 2);
    Ok(())
}

#[tokio::test]
async fn concurrent_misses_make_one_origin_request() -> anyhow::Result<()> {
    let (origin, proxy, client) = setup("").await?;
    // The origin takes long enough that, even on a loaded machine, the other 19 requests
    // arrive while the first is still being fetched.
    let url = proxy.url("/collapsed?cc=max-age%3D60&ms=1500");
    let answers = futures_util::future::join_all((0..20).map(|_| get(&client, &url, &[]))).await;
    assert!(answers.iter().all(|a| a.status == StatusCode::OK));
    assert_eq!(origin.requests("/collapsed"), 1, "one fetch fed all 20");
    let misses = answers.iter().filter(|a| a.cache == "MISS").count();
    assert_eq!(
        misses,
        1,
        "{:?}",
        answers.iter().map(|a| &a.cache).collect::<Vec<_>>()
    );
    let metrics = client
        .get(proxy.admin_url("/metrics"))
        .send()
        .await?
        .text()
        .await?;
    let waits: u32 = metrics
        .lines()
        .find_map(|line| {
            line.strip_prefix(r#"voltfleet_proxy_cache_lock_waits_total{zone="web"} "#)
        })
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or(0);
    // A request that arrives after the fetch completed is a plain hit, not a wait.
    assert!(
        (1..=19).contains(&waits),
        "{waits} requests waited for the one fetch:\n{metrics}"
    );
    Ok(())
}

#[tokio::test]
async fn stale_responses_stand_in_for_a_failing_or_absent_origin() -> anyhow::Result<()> {
    let (origin, proxy, client) = setup("").await?;
    let allowed = proxy.url("/stale-ok?cc=max-age%3D1%2C%20stale-if-error%3D60");
    let forbidden = proxy.url("/stale-no?cc=max-age%3D1%2C%20must-revalidate");
    let first = get(&client, &allowed, &[]).await;
    get(&client, &forbidden, &[]).await;
    tokio::time::sleep(Duration::from_millis(2100)).await;

    origin.set_failing(true);
    let stale = get(&client, &allowed, &[]).await;
    assert_eq!(
        (stale.status, stale.cache.as_str()),
        (StatusCode::OK, "STALE")
    );
    assert_eq!(stale.body, first.body);
    let refused = get(&client, &forbidden, &[]).await;
    assert_eq!(
        refused.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "must-revalidate is never served stale"
    );
    origin.set_failing(false);
    Ok(())
}

#[tokio::test]
async fn stale_while_revalidate_answers_at_once_and_refreshes_behind() -> anyhow::Result<()> {
    let (origin, proxy, client) = setup("").await?;
    let url = proxy.url("/swr?cc=max-age%3D3%2C%20stale-while-revalidate%3D60&ms=300");
    get(&client, &url, &[]).await;
    // Date has whole seconds, so a response may already be up to a second old on arrival.
    tokio::time::sleep(Duration::from_millis(3100)).await;
    let started = std::time::Instant::now();
    let updating = get(&client, &url, &[]).await;
    assert_eq!(updating.cache, "UPDATING");
    assert!(
        started.elapsed() < Duration::from_millis(250),
        "served without waiting for the origin"
    );
    for _ in 0..50 {
        if origin.requests("/swr") == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(origin.requests("/swr"), 2, "refreshed in the background");
    // The origin takes 300 ms to answer the refresh.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let refreshed = get(&client, &url, &[]).await;
    assert_eq!(
        refreshed.cache,
        "HIT",
        "{:?}\n{}",
        proxy.access_log(),
        proxy.stderr()
    );
    Ok(())
}

#[tokio::test]
async fn unsafe_requests_invalidate_what_they_change() -> anyhow::Result<()> {
    let (_origin, proxy, client) = setup("").await?;
    let url = proxy.url("/changed?cc=max-age%3D60");
    get(&client, &url, &[]).await;
    assert_eq!(get(&client, &url, &[]).await.cache, "HIT");
    let posted = client.post(&url).body("new").send().await?;
    assert_eq!(posted.status(), StatusCode::OK);
    assert_eq!(get(&client, &url, &[]).await.cache, "MISS");
    Ok(())
}

#[tokio::test]
async fn bypass_rules_and_min_uses_keep_requests_out() -> anyhow::Result<()> {
    let extra = "bypass = [\"cookie:session\", \"header:x-preview\"]\nmin_uses = 2\n";
    let (origin, proxy, client) = setup(extra).await?;
    let url = proxy.url("/popular?cc=max-age%3D60");
    assert_eq!(get(&client, &url, &[]).await.cache, "MISS");
    assert_eq!(
        get(&client, &url, &[]).await.cache,
        "MISS",
        "stored on its second use"
    );
    assert_eq!(get(&client, &url, &[]).await.cache, "HIT");
    let bypassed = get(&client, &url, &[("cookie", "theme=dark; session=abc")]).await;
    assert_eq!(bypassed.cache, "BYPASS");
    assert_eq!(
        get(&client, &url, &[("x-preview", "1")]).await.cache,
        "BYPASS"
    );
    assert_eq!(origin.requests("/popular"), 4);
    Ok(())
}

#[tokio::test]
async fn purges_remove_by_url_and_prefix_for_the_token_holder() -> anyhow::Result<()> {
    let (_origin, proxy, client) = setup("").await?;
    for path in ["/assets/a.js", "/assets/b.js", "/page"] {
        get(&client, &proxy.url(&format!("{path}?cc=max-age%3D60")), &[]).await;
    }
    let purge = |body: serde_json::Value, token: &str| {
        client
            .post(proxy.admin_url("/cache/purge"))
            .bearer_auth(token)
            .json(&body)
            .send()
    };
    let host = format!("http://127.0.0.1:{}", proxy.port);
    let refused = purge(serde_json::json!({ "prefix": format!("{host}/") }), "wrong").await?;
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    let bad = purge(serde_json::json!({ "path": "/x" }), TOKEN).await?;
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);

    let by_prefix = purge(
        serde_json::json!({ "prefix": format!("{host}/assets/") }),
        TOKEN,
    )
    .await?;
    assert_eq!(by_prefix.status(), StatusCode::OK);
    assert_eq!(by_prefix.json::<serde_json::Value>().await?["removed"], 2);
    let page = proxy.url("/page?cc=max-age%3D60");
    assert_eq!(get(&client, &page, &[]).await.cache, "HIT");
    let by_url = purge(
        serde_json::json!({ "url": format!("{host}/page?cc=max-age%3D60") }),
        TOKEN,
    )
    .await?;
    assert_eq!(by_url.json::<serde_json::Value>().await?["removed"], 1);
    assert_eq!(get(&client, &page, &[]).await.cache, "MISS");
    Ok(())
}

#[tokio::test]
async fn the_disk_tier_survives_a_restart() -> anyhow::Result<()> {
    let origin = CacheOrigin::start().await?;
    let zone = tempfile::tempdir()?;
    let template = template(&origin, Some(zone.path()), "");
    let client = reqwest::Client::new();
    // The key holds the host: the restarted proxy listens on another port, not another site.
    const HOST: &[(&str, &str)] = &[("host", "www.example.test")];
    // Larger than memory_max_object_size: stored on disk only, streamed from there.
    let large = "/large?cc=max-age%3D600&kb=1024";
    let small = "/small?cc=max-age%3D600";
    let proxy = start(&template).await?;
    let large_body = get(&client, &proxy.url(large), HOST).await.body;
    get(&client, &proxy.url(small), HOST).await;
    assert_eq!(get(&client, &proxy.url(large), HOST).await.cache, "HIT");
    proxy.stop_with("TERM").await?;

    let restarted = start(&template).await?;
    let large_again = get(&client, &restarted.url(large), HOST).await;
    assert_eq!(large_again.cache, "HIT");
    assert_eq!(large_again.body.len(), 1024 * 1024);
    assert_eq!(large_again.body, large_body);
    assert_eq!(get(&client, &restarted.url(small), HOST).await.cache, "HIT");
    assert_eq!(origin.requests("/large"), 1);
    assert_eq!(origin.requests("/small"), 1);
    // A range of a stored body is cut from the disk copy.
    let range = client
        .get(restarted.url(large))
        .header("range", "bytes=10-19")
        .header("host", "www.example.test")
        .send()
        .await?;
    assert_eq!(range.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(range.bytes().await?.len(), 10);
    Ok(())
}

#[tokio::test]
async fn an_object_cut_short_by_a_kill_is_never_served() -> anyhow::Result<()> {
    let origin = CacheOrigin::start().await?;
    let zone = tempfile::tempdir()?;
    let template = template(&origin, Some(zone.path()), "");
    let client = reqwest::Client::new();
    // 2 MiB in 32 pieces 50 ms apart: the fill takes over a second and a half.
    let slow = "/slow?cc=max-age%3D600&kb=2048&drip_ms=50";
    let proxy = start(&template).await?;
    let mut response = client
        .get(proxy.url(slow))
        .header("host", "www.example.test")
        .send()
        .await?;
    assert_eq!(response.headers()["x-cache-status"], "MISS");
    let mut received = 0;
    while received < 256 * 1024 {
        let chunk = response.chunk().await?.context("the body ended early")?;
        received += chunk.len();
    }
    // The disk tier has part of the body by now; nothing gets to finish it.
    proxy.stop_with("KILL").await?;
    drop(response);
    let leftovers = files_under(&zone.path().join("tmp")).0;
    assert!(leftovers > 0, "the fill was under way in tmp/");
    assert_eq!(files_under(&zone.path().join("objects")).0, 0);

    let restarted = start(&template).await?;
    assert_eq!(
        files_under(&zone.path().join("tmp")).0,
        0,
        "leftovers are removed at start"
    );
    let again = get(&client, &restarted.url(slow), SITE).await;
    assert_eq!(again.cache, "MISS", "a partial object must not be served");
    assert_eq!(again.body.len(), 2048 * 1024);
    assert_eq!(get(&client, &restarted.url(slow), SITE).await.cache, "HIT");
    assert_eq!(origin.requests("/slow"), 2);
    Ok(())
}

/// How many regular files there are under `dir`, at any depth, and their bytes.
fn files_under(dir: &std::path::Path) -> (usize, u64) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return (0, 0);
    };
    entries
        .filter_map(Result::ok)
        .map(|entry| match entry.metadata() {
            Ok(meta) if meta.is_dir() => files_under(&entry.path()),
            Ok(meta) if meta.is_file() => (1, meta.len()),
            _ => (0, 0),
        })
        .fold((0, 0), |(files, bytes), (more, size)| {
            (files + more, bytes + size)
        })
}

#[tokio::test]
async fn each_tier_stays_within_its_size_bound() -> anyhow::Result<()> {
    let origin = CacheOrigin::start().await?;
    let zone = tempfile::tempdir()?;
    let settings = format!(
        "path = \"{}\"\nmax_size = \"1m\"\nmemory_size = \"256k\"\nmemory_max_object_size = \"64k\"",
        zone.path().display()
    );
    let proxy = start(&zone_template(&origin, &settings, "")).await?;
    let client = reqwest::Client::new();
    // Ten objects of 200 KiB: twice what the disk tier may hold; each also too big for memory.
    let object = |n: usize| format!("/big-{n}?cc=max-age%3D600&kb=200");
    for n in 0..10 {
        assert_eq!(
            get(&client, &proxy.url(&object(n)), SITE).await.cache,
            "MISS"
        );
    }
    // Twenty of 32 KiB for the memory tier: 640 KiB against its 256 KiB.
    let small = |n: usize| format!("/small-{n}?cc=max-age%3D600&kb=32");
    for n in 0..20 {
        get(&client, &proxy.url(&small(n)), SITE).await;
    }
    let stored = files_under(&zone.path().join("objects")).1;
    assert!(
        stored <= 1 << 20,
        "{stored} bytes on disk, over the 1 MiB bound"
    );
    assert!(
        stored >= 600 * 1024,
        "only {stored} bytes on disk: evicted too much"
    );
    let disk_bytes = proxy
        .metric(r#"voltfleet_proxy_cache_bytes{tier="disk",zone="web"}"#)
        .await
        .context("the disk tier's size is published")?;
    assert!(disk_bytes <= f64::from(1 << 20), "{disk_bytes}");
    let memory_bytes = proxy
        .metric(r#"voltfleet_proxy_cache_bytes{tier="memory",zone="web"}"#)
        .await
        .context("the memory tier's size is published")?;
    assert!(memory_bytes <= f64::from(256 << 10), "{memory_bytes}");
    let evicted = proxy
        .metric(r#"voltfleet_proxy_cache_evictions_total{tier="disk",zone="web"}"#)
        .await
        .unwrap_or(0.0);
    assert!(evicted >= 5.0, "{evicted} disk evictions");
    // The least recently used went first: the newest object is still there, the oldest not.
    assert_eq!(
        get(&client, &proxy.url(&object(9)), SITE).await.cache,
        "HIT"
    );
    assert_eq!(
        get(&client, &proxy.url(&object(0)), SITE).await.cache,
        "MISS"
    );
    Ok(())
}

#[tokio::test]
async fn a_configuration_with_bad_cache_settings_is_refused_with_reasons() -> anyhow::Result<()> {
    let finished = ProxyProcess::check(
        r#"
[[listeners]]
address = "{LISTEN}"

[upstreams.origin]
peers = [{ address = "127.0.0.1:9" }]

[cache_zones.web]
memory_size = "lots"

[[routes]]
path = "/"
upstream = "origin"

[routes.cache]
zone = "elsewhere"
key_query = "some"
bypass = ["body:x"]
valid = { "999" = "1m" }
"#,
    )
    .await?;
    finished.assert_refused_saying(&[
        "cache_zones.web.memory_size: \"lots\" is not a size",
        "routes[0].cache.zone: there is no cache zone named \"elsewhere\"",
        "routes[0].cache.key_query",
        "routes[0].cache.bypass: \"body:x\" is not a bypass rule",
        "routes[0].cache.valid.999",
    ]);
    Ok(())
}

async fn purge(
    client: &reqwest::Client,
    proxy: &ProxyProcess,
    body: serde_json::Value,
) -> anyhow::Result<reqwest::Response> {
    Ok(client
        .post(proxy.admin_url("/cache/purge"))
        .bearer_auth(TOKEN)
        .json(&body)
        .send()
        .await?)
}

const SITE: &[(&str, &str)] = &[("host", "www.example.test")];
const FLEET_UP: &str = "voltfleet_proxy_fleet_up";
const APPLIED: &str = r#"voltfleet_proxy_fleet_purges_total{outcome="applied"}"#;

#[tokio::test]
async fn a_purge_on_one_proxy_reaches_every_proxy_of_the_fleet() -> anyhow::Result<()> {
    let origin = CacheOrigin::start().await?;
    let redis = FleetRedis::new();
    let template = template(&origin, None, "") + &redis.section();
    let (first, second) = (start(&template).await?, start(&template).await?);
    let client = reqwest::Client::new();
    for proxy in [&first, &second] {
        proxy.wait_for_metric(FLEET_UP, 1.0).await?;
    }
    let page = "/fleet-page?cc=max-age%3D600";
    let other = "/fleet-other?cc=max-age%3D600";
    for proxy in [&first, &second] {
        get(&client, &proxy.url(page), SITE).await;
        get(&client, &proxy.url(other), SITE).await;
        assert_eq!(get(&client, &proxy.url(page), SITE).await.cache, "HIT");
    }

    let answer = purge(
        &client,
        &first,
        serde_json::json!({ "url": format!("http://www.example.test{page}") }),
    )
    .await?;
    assert_eq!(answer.status(), StatusCode::OK);
    let answer: serde_json::Value = answer.json().await?;
    assert_eq!(answer["removed"], 1);
    assert!(answer["fleet_entry"].is_string(), "{answer}");

    second.wait_for_metric(APPLIED, 1.0).await?;
    assert_eq!(get(&client, &second.url(page), SITE).await.cache, "MISS");
    assert_eq!(get(&client, &first.url(page), SITE).await.cache, "MISS");
    // Only what was purged: the other page is still stored on both.
    assert_eq!(get(&client, &second.url(other), SITE).await.cache, "HIT");
    assert_eq!(get(&client, &first.url(other), SITE).await.cache, "HIT");
    assert_eq!(origin.requests("/fleet-page"), 4);
    // The proxy that published applied it itself, not a second time from the log.
    assert_eq!(first.metric(APPLIED).await, Some(0.0));
    redis.remove_keys().await
}

#[tokio::test]
async fn a_proxy_that_was_away_catches_up_on_the_purges_it_missed() -> anyhow::Result<()> {
    let origin = CacheOrigin::start().await?;
    let redis = FleetRedis::new();
    let zone = tempfile::tempdir()?;
    let memory_only = template(&origin, None, "") + &redis.section();
    let with_disk = template(&origin, Some(zone.path()), "") + &redis.section();
    let client = reqwest::Client::new();
    let publisher = start(&memory_only).await?;
    let away = start(&with_disk).await?;
    away.wait_for_metric(FLEET_UP, 1.0).await?;
    let kept = "/assets/kept.js?cc=max-age%3D600";
    let purged = "/news/today?cc=max-age%3D600";
    get(&client, &away.url(kept), SITE).await;
    get(&client, &away.url(purged), SITE).await;
    away.stop_with("TERM").await?;

    let answer = purge(
        &client,
        &publisher,
        serde_json::json!({ "prefix": "http://www.example.test/news/" }),
    )
    .await?;
    assert_eq!(answer.status(), StatusCode::OK);

    let back = start(&with_disk).await?;
    back.wait_for_metric(APPLIED, 1.0).await?;
    assert_eq!(get(&client, &back.url(purged), SITE).await.cache, "MISS");
    assert_eq!(get(&client, &back.url(kept), SITE).await.cache, "HIT");
    redis.remove_keys().await
}

#[tokio::test]
async fn a_purge_says_so_when_the_fleet_could_not_be_told() -> anyhow::Result<()> {
    let origin = CacheOrigin::start().await?;
    // Nothing listens there: the fleet's Redis is down.
    let unreachable = voltfleet_e2e::free_port()?;
    let template = template(&origin, None, "")
        + &format!(
            "\n[fleet]\nredis_url = \"redis://127.0.0.1:{unreachable}\"\nconnect_timeout = \"200ms\"\nresponse_timeout = \"200ms\"\n"
        );
    let proxy = start(&template).await?;
    let client = reqwest::Client::new();
    let page = "/lonely?cc=max-age%3D600";
    get(&client, &proxy.url(page), SITE).await;
    assert_eq!(get(&client, &proxy.url(page), SITE).await.cache, "HIT");

    let answer = purge(
        &client,
        &proxy,
        serde_json::json!({ "url": format!("http://www.example.test{page}") }),
    )
    .await?;
    assert_eq!(answer.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(answer.headers()["content-type"], "application/problem+json");
    let problem: serde_json::Value = answer.json().await?;
    assert_eq!(problem["removed"], 1);
    let detail = problem["detail"].as_str().unwrap_or_default();
    assert!(detail.contains("other proxies were not told"), "{detail}");
    assert!(
        detail.contains(&format!("127.0.0.1:{unreachable}")),
        "{detail}"
    );
    // This proxy purged all the same, and serves on.
    assert_eq!(get(&client, &proxy.url(page), SITE).await.cache, "MISS");
    assert_eq!(proxy.metric(FLEET_UP).await, Some(0.0));
    Ok(())
}

//! voltfleet-proxy's security log through the real binary: firewall matches written as JSON
//! lines, shipped gzipped to an S3 bucket of moto_server on loopback under `dt=…/hour=…/`,
//! kept on disk while S3 cannot be reached and shipped once it can, closed at shutdown.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_s3::error::DisplayErrorContext;
use aws_sdk_s3::types::{BucketLocationConstraint, CreateBucketConfiguration};
use chrono::{DateTime, Utc};
use voltfleet_e2e::free_port;
use voltfleet_e2e::moto::MotoServer;
use voltfleet_e2e::proxy::ProxyProcess;
use voltfleet_e2e::upstream::TestUpstream;

const BUCKET: &str = "vf-security-log";
const PREFIX: &str = "voltfleet-proxy/security/";
/// A query argument the firewall reads as SQL injection.
const ATTACK: &str = "1%27%20or%20%271%27%3D%271";

/// The SDK's credentials for moto, and no instance metadata to wait for.
const AWS_ENV: [(&str, &str); 3] = [
    ("AWS_ACCESS_KEY_ID", "testing"),
    ("AWS_SECRET_ACCESS_KEY", "testing"),
    ("AWS_EC2_METADATA_DISABLED", "true"),
];

/// `/api/` blocks and `/count/` counts, in front of `upstream`; every event closes its file
/// (`max_file_bytes = 1`), so that files are shipped without waiting for the hour. `s3` is
/// the `[security_log.s3]` table, or empty for none.
fn template(upstream: &TestUpstream, s3: &str) -> String {
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

[security_log]
dir = "{{DIR}}/security"
{}
{s3}
"#,
        upstream.address,
        if s3.is_empty() {
            ""
        } else {
            "max_file_bytes = 1"
        }
    )
}

fn s3_section(endpoint: &str) -> String {
    format!(
        "[security_log.s3]\nbucket = \"{BUCKET}\"\nregion = \"eu-west-1\"\nendpoint_url = \"{endpoint}\"\nupload_interval = \"1s\"\n"
    )
}

fn s3(endpoint: &str) -> aws_sdk_s3::Client {
    let config = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("eu-west-1"))
        .endpoint_url(endpoint)
        .force_path_style(true)
        .credentials_provider(Credentials::new("testing", "testing", None, None, "test"))
        .build();
    aws_sdk_s3::Client::from_conf(config)
}

async fn create_bucket(endpoint: &str) -> anyhow::Result<()> {
    s3(endpoint)
        .create_bucket()
        .bucket(BUCKET)
        .create_bucket_configuration(
            CreateBucketConfiguration::builder()
                .location_constraint(BucketLocationConstraint::EuWest1)
                .build(),
        )
        .send()
        .await
        .map_err(|err| anyhow::anyhow!("creating {BUCKET}: {}", DisplayErrorContext(&err)))?;
    Ok(())
}

/// Every key under the prefix.
async fn keys(endpoint: &str) -> anyhow::Result<Vec<String>> {
    let listed = s3(endpoint)
        .list_objects_v2()
        .bucket(BUCKET)
        .prefix(PREFIX)
        .send()
        .await
        .map_err(|err| anyhow::anyhow!("listing {BUCKET}: {}", DisplayErrorContext(&err)))?;
    Ok(listed
        .contents()
        .iter()
        .filter_map(|object| object.key().map(str::to_owned))
        .collect())
}

/// The events of one object: downloaded, gunzipped, one JSON object per line.
async fn events_of(endpoint: &str, key: &str) -> anyhow::Result<Vec<serde_json::Value>> {
    let object = s3(endpoint)
        .get_object()
        .bucket(BUCKET)
        .key(key)
        .send()
        .await
        .map_err(|err| anyhow::anyhow!("reading {key}: {}", DisplayErrorContext(&err)))?;
    let compressed = object.body.collect().await?.into_bytes();
    let mut text = String::new();
    std::io::Read::read_to_string(
        &mut flate2::read::GzDecoder::new(compressed.as_ref()),
        &mut text,
    )
    .with_context(|| format!("{key} is not gzip"))?;
    text.lines()
        .map(|line| serde_json::from_str(line).with_context(|| format!("{key}: {line}")))
        .collect()
}

/// Polls `check` until it gives a value, for at most `limit`.
async fn eventually<T, F, Fut>(limit: Duration, what: &str, mut check: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<Option<T>>>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let last = match check().await {
            Ok(Some(value)) => return Ok(value),
            Ok(None) => String::new(),
            Err(err) => format!(" (last error: {err:#})"),
        };
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "{what} did not happen within {limit:?}{last}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Sends a GET; the status, the `X-Request-Id` answered and the body.
async fn get(url: &str) -> anyhow::Result<(u16, String, String)> {
    let response = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()?
        .get(url)
        .send()
        .await?;
    let status = response.status().as_u16();
    let request_id = response
        .headers()
        .get("x-request-id")
        .and_then(|value| value.to_str().ok())
        .context("the answer has no X-Request-Id")?
        .to_string();
    Ok((status, request_id, response.text().await?))
}

/// The sum of a metric's series whose labels contain `labels`.
async fn metric(proxy: &ProxyProcess, name: &str, labels: &str) -> anyhow::Result<f64> {
    let text = reqwest::get(proxy.admin_url("/metrics"))
        .await?
        .text()
        .await?;
    Ok(text
        .lines()
        .filter(|line| {
            line.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with(['{', ' ']))
                && line.contains(labels)
        })
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum())
}

/// File names in `dir` ending with `suffix`.
fn files_ending(dir: &Path, suffix: &str) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|entry| entry.file_name().to_string_lossy().into_owned())
                .filter(|name| name.ends_with(suffix))
                .collect()
        })
        .unwrap_or_default()
}

/// `dt=YYYY-MM-DD/hour=HH/` of a moment.
fn partition(time: DateTime<Utc>) -> String {
    time.format("dt=%Y-%m-%d/hour=%H/").to_string()
}

#[tokio::test]
async fn firewall_events_reach_s3_as_gzipped_json_lines_partitioned_by_hour() -> anyhow::Result<()>
{
    let moto = MotoServer::start().await?;
    create_bucket(&moto.endpoint).await?;
    let app = TestUpstream::start("app").await?;
    let proxy = ProxyProcess::start_with_env(
        &template(&app, &s3_section(&moto.endpoint)),
        "",
        &[],
        &AWS_ENV,
    )
    .await?;

    let before = Utc::now();
    let (status, blocked_id, body) =
        get(&proxy.url(&format!("/api/v1/locations?q={ATTACK}"))).await?;
    assert_eq!(status, 403, "{body}");
    let rule = serde_json::from_str::<serde_json::Value>(&body)?["rule"]
        .as_u64()
        .context("the refusal names its rule")?;
    let (status, counted_id, _) = get(&proxy.url(&format!("/count/x?q={ATTACK}"))).await?;
    assert_eq!(status, 200, "counted, not blocked");
    let after = Utc::now();

    let endpoint = moto.endpoint.clone();
    let shipped = eventually(Duration::from_secs(30), "two objects in S3", || {
        let endpoint = endpoint.clone();
        async move {
            let keys = keys(&endpoint).await?;
            Ok((keys.len() >= 2).then_some(keys))
        }
    })
    .await?;
    assert_eq!(shipped.len(), 2, "one file per event: {shipped:?}");
    // The hour may turn between the two requests: each object is in the partition of its
    // events, which is one of these.
    let partitions: BTreeSet<String> = [before, after]
        .into_iter()
        .map(|time| format!("{PREFIX}{}", partition(time)))
        .collect();
    let mut events = Vec::new();
    for key in &shipped {
        assert!(
            partitions
                .iter()
                .any(|prefix| key.starts_with(prefix.as_str())),
            "{key} is not under {partitions:?}"
        );
        let name = key.rsplit('/').next().unwrap_or_default();
        assert!(
            name.starts_with("security-") && name.ends_with(".jsonl.gz"),
            "{key}"
        );
        for event in events_of(&moto.endpoint, key).await? {
            let time: DateTime<Utc> = event["event_time"]
                .as_str()
                .context("an event_time")?
                .parse()?;
            assert!(
                key.contains(&partition(time)),
                "{key} holds an event of {time}"
            );
            events.push(event);
        }
    }
    assert_eq!(events.len(), 2, "{events:?}");

    let by_id = |id: &str| {
        events
            .iter()
            .find(|event| event["request_id"] == id)
            .cloned()
            .with_context(|| format!("no event has request id {id}: {events:?}"))
    };
    let blocked = by_id(&blocked_id)?;
    assert_eq!(blocked["rule_id"].as_u64(), Some(rule), "{blocked}");
    assert_eq!(blocked["action"], "block", "{blocked}");
    assert_eq!(blocked["kind"], "sqli", "{blocked}");
    assert_eq!(blocked["client_ip"], "127.0.0.1", "{blocked}");
    assert_eq!(blocked["route"], "*/api/", "{blocked}");
    assert_eq!(blocked["listener"], "listener-0", "{blocked}");
    assert_eq!(blocked["method"], "GET", "{blocked}");
    assert_eq!(blocked["path"], "/api/v1/locations", "{blocked}");
    assert_eq!(blocked["location"], "query", "{blocked}");
    assert_eq!(blocked["name"], "q", "{blocked}");
    assert!(
        blocked["excerpt"]
            .as_str()
            .is_some_and(|excerpt| excerpt.contains("or")),
        "{blocked}"
    );
    let time: DateTime<Utc> = blocked["event_time"].as_str().unwrap_or_default().parse()?;
    assert!(
        before <= time && time <= after,
        "{time} outside {before}..{after}"
    );
    let counted = by_id(&counted_id)?;
    assert_eq!(counted["action"], "count", "{counted}");
    assert_eq!(counted["route"], "*/count/", "{counted}");
    assert_eq!(counted["rule_id"].as_u64(), Some(rule), "{counted}");

    // Uploaded files are deleted; the metrics say what happened.
    let dir = proxy.dir().join("security");
    eventually(Duration::from_secs(10), "the local files to go", || {
        let dir = dir.clone();
        async move { Ok(files_ending(&dir, ".jsonl").is_empty().then_some(())) }
    })
    .await?;
    let uploads = "voltfleet_proxy_security_log_uploads_total";
    assert_eq!(metric(&proxy, uploads, r#"outcome="success""#).await?, 2.0);
    assert_eq!(metric(&proxy, uploads, r#"outcome="failure""#).await?, 0.0);
    let written = "voltfleet_proxy_security_log_events_total";
    assert_eq!(metric(&proxy, written, r#"action="block""#).await?, 1.0);
    assert_eq!(metric(&proxy, written, r#"action="count""#).await?, 1.0);
    let dropped = "voltfleet_proxy_security_log_dropped_total";
    assert_eq!(metric(&proxy, dropped, "").await?, 0.0);
    let log = proxy.stderr();
    assert!(log.contains("Uploaded a security log file."), "{log}");
    Ok(())
}

#[tokio::test]
async fn while_s3_is_unreachable_files_wait_on_disk_and_none_is_lost() -> anyhow::Result<()> {
    // Nothing listens on this port until moto is started on it.
    let port = free_port()?;
    let endpoint = format!("http://127.0.0.1:{port}");
    let app = TestUpstream::start("app").await?;
    let proxy =
        ProxyProcess::start_with_env(&template(&app, &s3_section(&endpoint)), "", &[], &AWS_ENV)
            .await?;
    let (status, request_id, _) = get(&proxy.url(&format!("/api/v1/x?q={ATTACK}"))).await?;
    assert_eq!(status, 403);

    eventually(Duration::from_secs(30), "a failed upload", || async {
        let failed = metric(
            &proxy,
            "voltfleet_proxy_security_log_uploads_total",
            r#"outcome="failure""#,
        )
        .await?;
        Ok((failed >= 1.0).then_some(()))
    })
    .await?;
    let dir = proxy.dir().join("security");
    let waiting = files_ending(&dir, ".jsonl");
    assert_eq!(waiting.len(), 1, "the file stays: {waiting:?}");
    let gauge = "voltfleet_proxy_security_log_files_waiting";
    assert_eq!(metric(&proxy, gauge, "").await?, 1.0);
    let log = proxy.stderr();
    assert!(
        log.contains("Cannot ship a security log file") && log.contains(BUCKET),
        "{log}"
    );

    // S3 comes back: the file is shipped and nothing was lost.
    let moto = MotoServer::start_on(port).await?;
    create_bucket(&moto.endpoint).await?;
    let shipped = eventually(Duration::from_secs(90), "the object in S3", || {
        let endpoint = endpoint.clone();
        async move {
            let keys = keys(&endpoint).await?;
            Ok((!keys.is_empty()).then_some(keys))
        }
    })
    .await?;
    assert_eq!(shipped.len(), 1, "{shipped:?}");
    assert!(
        shipped[0].ends_with(&format!("{}.gz", waiting[0])),
        "{shipped:?}"
    );
    let events = events_of(&endpoint, &shipped[0]).await?;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["request_id"], request_id.as_str());
    eventually(Duration::from_secs(10), "the local file to go", || {
        let dir = dir.clone();
        async move { Ok(files_ending(&dir, ".jsonl").is_empty().then_some(())) }
    })
    .await?;
    eventually(Duration::from_secs(10), "the gauge to drop", || async {
        Ok((metric(&proxy, gauge, "").await? == 0.0).then_some(()))
    })
    .await?;
    Ok(())
}

#[tokio::test]
async fn without_s3_files_stay_local_and_shutdown_closes_the_open_one() -> anyhow::Result<()> {
    let app = TestUpstream::start("app").await?;
    // A directory of the test's own: the proxy's goes when it stops.
    let kept = tempfile::tempdir()?;
    let dir = kept.path().join("security");
    let template = template(&app, "").replace("{DIR}/security", &dir.display().to_string());
    let proxy = ProxyProcess::start(&template).await?;
    let (status, request_id, _) = get(&proxy.url(&format!("/count/x?q={ATTACK}"))).await?;
    assert_eq!(status, 200);
    let open = eventually(Duration::from_secs(10), "the open file", || {
        let dir = dir.clone();
        async move {
            let open = files_ending(&dir, ".jsonl.open");
            Ok((!open.is_empty()).then_some(open))
        }
    })
    .await?;
    assert_eq!(open.len(), 1, "{open:?}");
    let status = proxy.stop_with("TERM").await?;
    assert!(status.success(), "{status}");
    assert!(files_ending(&dir, ".open").is_empty(), "closed at shutdown");
    let closed = files_ending(&dir, ".jsonl");
    assert_eq!(closed.len(), 1, "{closed:?}");
    let text = std::fs::read_to_string(dir.join(&closed[0]))?;
    let event: serde_json::Value = serde_json::from_str(text.trim_end())?;
    assert_eq!(event["request_id"], request_id.as_str());
    assert_eq!(event["action"], "count");
    Ok(())
}

#[tokio::test]
async fn security_log_settings_are_checked_with_reasons() -> anyhow::Result<()> {
    let finished = ProxyProcess::check(
        r#"
[[listeners]]
address = "{LISTEN}"
[upstreams.app]
peers = [{ address = "127.0.0.1:9" }]
[[routes]]
path = "/"
upstream = "app"
[security_log]
dir = "{DIR}/security"
rotate_every = "5s"
max_file_bytes = "big"
queue = 0
[security_log.s3]
bucket = "Bad_Bucket"
endpoint_url = "127.0.0.1:9000"
"#,
    )
    .await?;
    finished.assert_refused_saying(&[
        "security_log.rotate_every: 5s is shorter than a minute",
        "security_log.max_file_bytes: \"big\" is not a size",
        "security_log.queue",
        "security_log.s3.bucket: \"Bad_Bucket\"",
        "security_log.s3.endpoint_url",
    ]);
    let missing = ProxyProcess::check(
        r#"
[[listeners]]
address = "{LISTEN}"
[upstreams.app]
peers = [{ address = "127.0.0.1:9" }]
[[routes]]
path = "/"
upstream = "app"
[security_log]
queue = 100
"#,
    )
    .await?;
    let output = format!("{}{}", missing.stdout, missing.stderr);
    assert!(output.contains("security_log.dir"), "{output}");
    Ok(())
}

#[tokio::test]
async fn rate_limits_deny_lists_and_automatic_blocks_are_logged_too() -> anyhow::Result<()> {
    let app = TestUpstream::start("app").await?;
    let kept = tempfile::tempdir()?;
    let dir = kept.path().join("security");
    let template = format!(
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
rate = "1/m"
burst = 0

[ip_sets]
deny = ["203.0.113.0/24"]

[auto_block]
rate_limited = 2
firewall_matches = 0

[security_log]
dir = "{}"
"#,
        app.address,
        dir.display()
    );
    let proxy = ProxyProcess::start(&template).await?;
    let client = reqwest::Client::new();
    let mut statuses = Vec::new();
    for from in [
        "198.51.100.3",
        "198.51.100.3",
        "198.51.100.3",
        "198.51.100.3",
        "203.0.113.4",
    ] {
        let response = client
            .get(proxy.url("/api/v1/me"))
            .header("x-forwarded-for", from)
            .send()
            .await?;
        statuses.push(response.status().as_u16());
    }
    assert_eq!(statuses, [200, 429, 429, 403, 403]);
    let status = proxy.stop_with("TERM").await?;
    assert!(status.success(), "{status}");

    let mut events = Vec::new();
    for file in files_ending(&dir, ".jsonl") {
        for line in std::fs::read_to_string(dir.join(file))?.lines() {
            events.push(serde_json::from_str::<serde_json::Value>(line)?);
        }
    }
    let summary: Vec<(String, u64, String)> = events
        .iter()
        .map(|event| {
            (
                event["kind"].as_str().unwrap_or("").to_owned(),
                event["rule_id"].as_u64().unwrap_or(0),
                event["client_ip"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    let expected = [
        ("rate_limit", 200_100, "198.51.100.3"),
        ("rate_limit", 200_100, "198.51.100.3"),
        ("auto_block", 300_200, "198.51.100.3"),
        ("ip_deny", 300_100, "198.51.100.3"),
        ("ip_deny", 300_100, "203.0.113.4"),
    ];
    assert_eq!(
        summary,
        expected
            .iter()
            .map(|(kind, rule, ip)| (kind.to_string(), *rule, ip.to_string()))
            .collect::<Vec<_>>()
    );
    let block = &events[2];
    assert_eq!(block["route"], "*/api/", "{block}");
    assert!(
        block["excerpt"]
            .as_str()
            .is_some_and(|reason| reason.contains("2 requests over a rate limit")),
        "{block}"
    );
    assert!(events.iter().all(|event| event["action"] == "block"));
    Ok(())
}

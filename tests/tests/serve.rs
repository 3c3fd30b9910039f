//! `voltfleet serve` and `voltfleet migrate` in production mode: MariaDB and Redis.

use std::time::Duration;

use voltfleet_core::testing::TestMySql;
use voltfleet_e2e::{PrivateRedis, TcpGate, Voltfleet, free_port, get};

/// Polls `/readyz` until it answers `want`, for at most `limit`.
async fn wait_for_readiness(url: &str, want: u16, limit: Duration) -> anyhow::Result<String> {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let (status, body) = get(url).await?;
        if status == want {
            return Ok(body);
        }
        if tokio::time::Instant::now() > deadline {
            anyhow::bail!("/readyz stayed {status} (wanted {want}): {body}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn services_run_on_mariadb_and_redis_and_follow_redis_going_away_and_back()
-> anyhow::Result<()> {
    let database = TestMySql::create().await?;
    let mut redis = PrivateRedis::start().await?;

    let unmigrated = Voltfleet::new(&["serve", "api", "ocpp"])?
        .env("VOLTFLEET__DATABASE__URL", &database.url)
        .env("VOLTFLEET__REDIS__URL", redis.url())
        .output()
        .await?;
    assert!(
        !unmigrated.status.success(),
        "serving an unmigrated database must fail"
    );
    assert!(
        unmigrated.stderr.contains("voltfleet migrate"),
        "{}",
        unmigrated.stderr
    );

    let migrate = Voltfleet::new(&["migrate"])?
        .env("VOLTFLEET__DATABASE__URL", &database.url)
        .output()
        .await?;
    assert!(migrate.status.success(), "{}", migrate.stderr);
    assert!(
        migrate.stderr.contains("Applied database migrations"),
        "{}",
        migrate.stderr
    );

    let running = Voltfleet::new(&["serve", "api", "ocpp"])?
        .env("VOLTFLEET__DATABASE__URL", &database.url)
        .env("VOLTFLEET__REDIS__URL", redis.url())
        .env("VOLTFLEET__REDIS__RESPONSE_TIMEOUT", "500ms")
        .start(&["api", "ocpp"])
        .await?;
    for service in ["api", "ocpp"] {
        let (status, body) = get(&running.url(service, "/healthz")).await?;
        assert_eq!((status, body.trim()), (200, "ok"));
        let body = wait_for_readiness(
            &running.url(service, "/readyz"),
            200,
            Duration::from_secs(5),
        )
        .await?;
        assert!(body.contains("\"backend\":\"mysql\""), "{body}");
        assert!(body.contains("\"backend\":\"redis\""), "{body}");
    }
    assert_eq!(
        get(&running.url("backoffice", "/healthz"))
            .await
            .ok()
            .map(|r| r.0),
        None
    );

    redis.kill();
    let down =
        wait_for_readiness(&running.url("api", "/readyz"), 503, Duration::from_secs(10)).await?;
    assert!(down.contains("\"name\":\"redis\""), "{down}");
    assert!(down.contains("\"error\""), "{down}");
    let (status, _) = get(&running.url("api", "/healthz")).await?;
    assert_eq!(status, 200, "liveness does not depend on Redis");
    let metrics = get(&running.url("api", "/metrics")).await?.1;
    assert!(
        metrics.contains("voltfleet_dependency_up{dependency=\"redis\"} 0"),
        "{metrics}"
    );

    redis.restart().await?;
    wait_for_readiness(&running.url("api", "/readyz"), 200, Duration::from_secs(20)).await?;

    let (status, stderr) = running.stop_with("TERM").await?;
    assert!(
        status.success(),
        "SIGTERM must stop cleanly: {status}\n{stderr}"
    );
    assert!(stderr.contains("SIGTERM"), "{stderr}");
    database.drop_database().await?;
    Ok(())
}

#[tokio::test]
async fn migrate_on_start_prepares_a_fresh_database() -> anyhow::Result<()> {
    let database = TestMySql::create().await?;
    let running = Voltfleet::new(&["serve", "jobs"])?
        .env("VOLTFLEET__DATABASE__URL", &database.url)
        .env("VOLTFLEET__DATABASE__MIGRATE_ON_START", "true")
        .start(&["jobs"])
        .await?;
    wait_for_readiness(&running.url("jobs", "/readyz"), 200, Duration::from_secs(5)).await?;
    let (status, _) = running.stop_with("INT").await?;
    assert!(status.success());
    database.drop_database().await?;
    Ok(())
}

#[tokio::test]
async fn unreachable_dependencies_stop_the_start_and_are_each_named() -> anyhow::Result<()> {
    let (db_port, redis_port) = (free_port()?, free_port()?);
    let finished = Voltfleet::new(&["serve", "api"])?
        .env(
            "VOLTFLEET__DATABASE__URL",
            format!("mysql://voltfleet:topsecret@127.0.0.1:{db_port}/voltfleet"),
        )
        .env("VOLTFLEET__DATABASE__ACQUIRE_TIMEOUT", "2s")
        .env(
            "VOLTFLEET__REDIS__URL",
            format!("redis://:alsosecret@127.0.0.1:{redis_port}"),
        )
        .output()
        .await?;
    assert!(!finished.status.success());
    let stderr = &finished.stderr;
    assert!(stderr.contains(&format!("127.0.0.1:{db_port}")), "{stderr}");
    assert!(
        stderr.contains(&format!("127.0.0.1:{redis_port}")),
        "{stderr}"
    );
    assert!(
        !stderr.contains("topsecret") && !stderr.contains("alsosecret"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("Service listening."),
        "nothing may start: {stderr}"
    );
    Ok(())
}

#[tokio::test]
async fn losing_the_database_turns_readiness_red_until_it_returns() -> anyhow::Result<()> {
    let database = TestMySql::create().await?;
    let migrate = Voltfleet::new(&["migrate"])?
        .env("VOLTFLEET__DATABASE__URL", &database.url)
        .output()
        .await?;
    assert!(migrate.status.success(), "{}", migrate.stderr);

    // The same database, reached through a gate the test can close.
    let mut url = reqwest::Url::parse(&database.url)?;
    let target = format!(
        "{}:{}",
        url.host_str().unwrap_or("127.0.0.1"),
        url.port().unwrap_or(3306)
    );
    let gate = TcpGate::start(
        tokio::net::lookup_host(&target)
            .await?
            .next()
            .ok_or_else(|| anyhow::anyhow!("no address for {target}"))?,
    )
    .await?;
    url.set_port(Some(gate.port))
        .map_err(|()| anyhow::anyhow!("cannot set the port"))?;
    let running = Voltfleet::new(&["serve", "api"])?
        .env("VOLTFLEET__DATABASE__URL", url.as_str())
        .env("VOLTFLEET__DATABASE__ACQUIRE_TIMEOUT", "1s")
        .start(&["api"])
        .await?;
    wait_for_readiness(&running.url("api", "/readyz"), 200, Duration::from_secs(5)).await?;

    gate.cut();
    let down =
        wait_for_readiness(&running.url("api", "/readyz"), 503, Duration::from_secs(15)).await?;
    assert!(down.contains("\"name\":\"database\""), "{down}");
    let started = std::time::Instant::now();
    let (status, _) = get(&running.url("api", "/readyz")).await?;
    assert_eq!(status, 503);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "readiness must not hang on a lost database"
    );

    gate.restore();
    wait_for_readiness(&running.url("api", "/readyz"), 200, Duration::from_secs(20)).await?;
    let (status, _) = running.stop_with("TERM").await?;
    assert!(status.success());
    database.drop_database().await?;
    Ok(())
}

#[tokio::test]
async fn sigterm_lets_a_request_in_flight_finish() -> anyhow::Result<()> {
    let redis = PrivateRedis::start().await?;
    let running = Voltfleet::new(&["serve", "api"])?
        .env("VOLTFLEET__DATABASE__MIGRATE_ON_START", "true")
        .env("VOLTFLEET__REDIS__URL", redis.url())
        .env("VOLTFLEET__REDIS__RESPONSE_TIMEOUT", "10s")
        .start(&["api"])
        .await?;
    // A frozen Redis makes /readyz wait for its 2-second check: a request in flight.
    redis.signal("STOP")?;
    let in_flight = tokio::spawn(get_owned(running.url("api", "/readyz")));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (status, stderr) = running.stop_with("TERM").await?;
    assert!(status.success(), "{stderr}");
    let (answered, body) = in_flight.await??;
    assert_eq!(
        answered, 503,
        "the request in flight got its answer: {body}"
    );
    redis.signal("CONT")?;
    Ok(())
}

async fn get_owned(url: String) -> anyhow::Result<(u16, String)> {
    get(&url).await
}

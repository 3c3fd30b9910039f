//! `voltfleet healthcheck`: the probe the container image and the app tier's units run, against
//! a real `voltfleet serve`, a real server that answers 503 and one that never answers.

use std::time::{Duration, Instant};

use voltfleet_e2e::upstream::TestUpstream;
use voltfleet_e2e::{Finished, Voltfleet, free_port};

/// A secret in the probe's environment, which nothing it prints may show.
const DATABASE_URL: &str = "mysql://voltfleet:probe-topsecret@127.0.0.1:1/voltfleet";

/// `voltfleet healthcheck ARGS` with `listen` as `(VARIABLE, address)` pairs.
async fn healthcheck(args: &[&str], listen: &[&(&str, String)]) -> anyhow::Result<Finished> {
    let mut command = ["healthcheck"].to_vec();
    command.extend_from_slice(args);
    let mut voltfleet = Voltfleet::new(&command)?.env("VOLTFLEET__DATABASE__URL", DATABASE_URL);
    for (variable, address) in listen {
        voltfleet = voltfleet.env(variable, address);
    }
    let finished = voltfleet.output().await?;
    let output = format!("{}{}", finished.stdout, finished.stderr);
    assert!(!output.contains("probe-topsecret"), "{output}");
    Ok(finished)
}

#[tokio::test]
async fn a_running_service_is_healthy_named_or_found_and_a_stopped_one_is_not() -> anyhow::Result<()>
{
    let api = (
        "VOLTFLEET__API__LISTEN",
        format!("127.0.0.1:{}", free_port()?),
    );
    let ocpi = (
        "VOLTFLEET__OCPI__LISTEN",
        format!("127.0.0.1:{}", free_port()?),
    );
    let running = Voltfleet::new(&["serve", "api"])?
        .env(api.0, &api.1)
        .env("VOLTFLEET__DATABASE__MIGRATE_ON_START", "true")
        .start(&["api"])
        .await?;
    let healthy_line = format!("api: healthy (http://{}/healthz answered 200)", api.1);

    // No service named: the one listening is found and checked, and only it.
    let found = healthcheck(&[], &[&api, &ocpi]).await?;
    assert!(found.status.success(), "{}{}", found.stdout, found.stderr);
    assert_eq!(found.stdout.trim(), healthy_line);

    let named = healthcheck(&["api"], &[&api]).await?;
    assert!(named.status.success(), "{}{}", named.stdout, named.stderr);
    assert_eq!(named.stdout.trim(), healthy_line);

    // A named service that is not running fails the check, next to the healthy one.
    let with_ocpi = healthcheck(&["api", "ocpi"], &[&api, &ocpi]).await?;
    assert!(!with_ocpi.status.success(), "{}", with_ocpi.stdout);
    assert!(
        with_ocpi.stdout.contains(&healthy_line),
        "{}",
        with_ocpi.stdout
    );
    assert!(
        with_ocpi
            .stdout
            .contains(&format!("ocpi: NOT HEALTHY: nothing listens on {}", ocpi.1)),
        "{}",
        with_ocpi.stdout
    );
    assert!(
        with_ocpi
            .stderr
            .contains("not healthy: ocpi (1 of 2 checked)"),
        "{}",
        with_ocpi.stderr
    );

    // A service named whose port is chosen at start cannot be checked: that is a failure too.
    let unfixed = healthcheck(&["jobs"], &[]).await?;
    assert!(!unfixed.status.success());
    assert!(
        unfixed
            .stdout
            .contains("jobs: not checked: jobs.listen is 127.0.0.1:0"),
        "{}",
        unfixed.stdout
    );

    // The harness gives every other service port 0: with nothing fixed there is nothing to find.
    let nothing_fixed = healthcheck(&[], &[]).await?;
    assert!(!nothing_fixed.status.success());
    assert!(
        nothing_fixed
            .stderr
            .contains("no service has a port to check"),
        "{}",
        nothing_fixed.stderr
    );

    let (status, stderr) = running.stop_with("TERM").await?;
    assert!(status.success(), "{stderr}");

    let stopped = healthcheck(&["api"], &[&api]).await?;
    assert!(!stopped.status.success(), "{}", stopped.stdout);
    assert!(
        stopped.stdout.contains("api: NOT HEALTHY"),
        "{}",
        stopped.stdout
    );

    let none = healthcheck(&[], &[&api, &ocpi]).await?;
    assert!(!none.status.success(), "{}", none.stdout);
    assert_eq!(none.stdout, "", "no service was probed");
    assert!(
        none.stderr
            .contains("no voltfleet service is listening here")
            && none.stderr.contains(&format!("api on {}", api.1))
            && none.stderr.contains(&format!("ocpi on {}", ocpi.1)),
        "{}",
        none.stderr
    );
    Ok(())
}

#[tokio::test]
async fn a_service_that_answers_503_or_never_answers_is_not_healthy() -> anyhow::Result<()> {
    let unhealthy = TestUpstream::start("unhealthy").await?;
    unhealthy.set_healthy(false);
    // Accepts connections (the kernel does, from its backlog) and never reads or answers.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let api = ("VOLTFLEET__API__LISTEN", unhealthy.address.to_string());
    let jobs = ("VOLTFLEET__JOBS__LISTEN", silent.local_addr()?.to_string());
    let listen = [&api, &jobs];

    let started = Instant::now();
    let finished = healthcheck(&["--timeout", "500ms"], &listen).await?;
    let took = started.elapsed();
    assert!(!finished.status.success(), "{}", finished.stdout);
    assert!(
        finished.stdout.contains(&format!(
            "api: NOT HEALTHY: http://{}/healthz answered 503 Service Unavailable",
            unhealthy.address
        )),
        "{}",
        finished.stdout
    );
    assert!(
        finished.stdout.contains(&format!(
            "jobs: NOT HEALTHY: http://{}/healthz gave no answer within 500ms",
            silent.local_addr()?
        )),
        "{}",
        finished.stdout
    );
    assert!(
        finished
            .stderr
            .contains("not healthy: api, jobs (2 of 2 checked)"),
        "{}",
        finished.stderr
    );
    assert_eq!(unhealthy.health_checks(), 1, "one GET /healthz per check");
    // Bounded: the probes run side by side, each within its timeout, far from the harness's.
    assert!(took < Duration::from_secs(10), "the check took {took:?}");

    unhealthy.set_healthy(true);
    let recovered = healthcheck(&["api"], &listen).await?;
    assert!(recovered.status.success(), "{}", recovered.stdout);
    Ok(())
}

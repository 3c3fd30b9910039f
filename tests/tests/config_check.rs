//! `voltfleet config check`: the effective configuration with sources, and every error at once.

use voltfleet_e2e::{Voltfleet, config_line};

fn write_config(dir: &tempfile::TempDir, text: &str) -> std::path::PathBuf {
    let path = dir.path().join("voltfleet.toml");
    std::fs::write(&path, text).expect("write config file");
    path
}

#[tokio::test]
async fn a_broken_file_lists_every_bad_key_and_exits_non_zero() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let config = write_config(
        &dir,
        r#"
[database]
url = "postgres://admin:hunter2@db/voltfleet"
max_connections = "many"
acquire_timeout = 5

[redis]
url = "http://cache:6379"

[bus]
request_timeout = "forever"

[ocpp]
lisen = "127.0.0.1:9000"
"#,
    );
    let finished = Voltfleet::new(&["config", "check", "-c", &config.display().to_string()])?
        .env("VOLTFLEET__LOG__FORMAT", "yaml")
        .output()
        .await?;
    assert!(!finished.status.success(), "a broken config must fail");
    let errors = &finished.stderr;
    for key in [
        "database.url",
        "database.max_connections",
        "database.acquire_timeout",
        "redis.url",
        "bus.request_timeout",
        "ocpp.lisen",
        "log.format",
    ] {
        assert!(errors.contains(key), "{key} is not reported in:\n{errors}");
    }
    assert!(errors.contains("7 errors"), "{errors}");
    assert!(errors.contains("did you mean `ocpp.listen`"), "{errors}");
    assert!(
        errors.contains("environment variable VOLTFLEET__LOG__FORMAT"),
        "{errors}"
    );
    assert!(
        !errors.contains("hunter2"),
        "a secret was printed:\n{errors}"
    );
    Ok(())
}

#[tokio::test]
async fn a_valid_file_prints_the_effective_values_with_their_sources() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let config = write_config(
        &dir,
        "[redis]\nkey_prefix = \"fleet-a:\"\nurl = \"rediss://:s3cret-token@cache.internal:6379\"\n",
    );
    let finished = Voltfleet::new(&["config", "check", "--config", &config.display().to_string()])?
        .env("VOLTFLEET__DATABASE__MAX_CONNECTIONS", "25")
        .output()
        .await?;
    assert!(finished.status.success(), "{}", finished.stderr);
    let out = &finished.stdout;
    let line = |key: &str| config_line(out, key);
    assert!(line("redis.key_prefix").contains("\"fleet-a:\""), "{out}");
    assert!(line("redis.key_prefix").contains("# file"), "{out}");
    assert!(line("redis.url").contains("<redacted>"), "{out}");
    assert!(
        !out.contains("s3cret-token"),
        "a secret was printed:\n{out}"
    );
    assert!(line("database.max_connections").contains("= 25"), "{out}");
    assert!(
        line("database.max_connections")
            .contains("environment variable VOLTFLEET__DATABASE__MAX_CONNECTIONS"),
        "{out}"
    );
    assert!(
        line("api.listen").contains("# environment variable"),
        "{out}"
    );
    assert!(
        line("database.acquire_timeout").contains("# default"),
        "{out}"
    );
    Ok(())
}

#[tokio::test]
async fn a_missing_file_is_named() -> anyhow::Result<()> {
    let finished = Voltfleet::new(&["config", "check", "-c", "/nonexistent/voltfleet.toml"])?
        .output()
        .await?;
    assert!(!finished.status.success());
    assert!(
        finished.stderr.contains("/nonexistent/voltfleet.toml"),
        "{}",
        finished.stderr
    );
    assert!(
        finished.stderr.contains("cannot read"),
        "{}",
        finished.stderr
    );
    Ok(())
}

#[tokio::test]
async fn version_and_help_name_the_commands() -> anyhow::Result<()> {
    let version = Voltfleet::new(&["--version"])?.output().await?;
    assert!(version.status.success());
    assert!(
        version.stdout.starts_with("voltfleet "),
        "{}",
        version.stdout
    );
    let help = Voltfleet::new(&["--help"])?.output().await?;
    for command in ["up", "serve", "migrate", "config"] {
        assert!(help.stdout.contains(command), "{}", help.stdout);
    }
    let unknown = Voltfleet::new(&["serve", "billing"])?.output().await?;
    assert!(!unknown.status.success());
    assert!(
        unknown.stderr.contains("unknown service `billing`"),
        "{}",
        unknown.stderr
    );
    Ok(())
}

#[tokio::test]
async fn the_apis_limits_are_checked_before_it_starts() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let config = write_config(
        &dir,
        r#"
[api]
token_secret = "too-short"
rate_limit_window = "0s"
rate_limit_per_ip = -1
cors_origins = "https://www.example.com, *"
password_hash_concurrency = 0
password_hash_wait = "soon"
"#,
    );
    let finished = Voltfleet::new(&["config", "check", "-c", &config.display().to_string()])?
        .output()
        .await?;
    assert!(!finished.status.success(), "a broken config must fail");
    let errors = &finished.stderr;
    for key in [
        "api.token_secret",
        "api.rate_limit_window",
        "api.rate_limit_per_ip",
        "api.cors_origins",
        "api.password_hash_concurrency",
        "api.password_hash_wait",
    ] {
        assert!(errors.contains(key), "{key} is not reported in:\n{errors}");
    }
    assert!(
        !errors.contains("too-short"),
        "a secret was printed:\n{errors}"
    );
    Ok(())
}

//! Configuration from AWS SSM Parameter Store, against moto_server on loopback: SecureString
//! parameters decrypted, SSM between the file and the environment, errors naming the parameter.

use anyhow::Context;
use aws_sdk_ssm::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_ssm::types::ParameterType;
use voltfleet_e2e::moto::MotoServer;
use voltfleet_e2e::{Voltfleet, config_line, free_port};

/// moto_server, and the clients this test talks to it with.
struct Moto {
    server: MotoServer,
}

impl Moto {
    async fn start() -> anyhow::Result<Moto> {
        Ok(Moto {
            server: MotoServer::start().await?,
        })
    }

    fn client(&self) -> aws_sdk_ssm::Client {
        let config = aws_sdk_ssm::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("eu-west-1"))
            .endpoint_url(&self.server.endpoint)
            .credentials_provider(Credentials::new("testing", "testing", None, None, "test"))
            .build();
        aws_sdk_ssm::Client::from_conf(config)
    }

    async fn put(&self, name: &str, value: &str, kind: ParameterType) -> anyhow::Result<()> {
        self.client()
            .put_parameter()
            .name(name)
            .value(value)
            .r#type(kind)
            .overwrite(true)
            .send()
            .await
            .with_context(|| format!("putting {name}"))?;
        Ok(())
    }

    fn voltfleet(&self, args: &[&str], path: &str) -> anyhow::Result<Voltfleet> {
        Ok(Voltfleet::new(args)?
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("VOLTFLEET__SSM__PATH", path)
            .env("VOLTFLEET__SSM__REGION", "eu-west-1")
            .env("VOLTFLEET__SSM__ENDPOINT_URL", &self.server.endpoint))
    }
}

#[tokio::test]
async fn ssm_parameters_sit_between_the_file_and_the_environment() -> anyhow::Result<()> {
    let moto = Moto::start().await?;
    let path = "/voltfleet/test";
    moto.put(
        &format!("{path}/database/max_connections"),
        "42",
        ParameterType::String,
    )
    .await?;
    moto.put(
        &format!("{path}/data_dir"),
        "/from/ssm",
        ParameterType::String,
    )
    .await?;
    moto.put(
        &format!("{path}/redis/url"),
        "rediss://:elasticache-token@cache.internal:6379",
        ParameterType::SecureString,
    )
    .await?;

    let dir = tempfile::tempdir()?;
    let file = dir.path().join("voltfleet.toml");
    std::fs::write(
        &file,
        "[database]\nmax_connections = 3\nmin_connections = 2\n",
    )?;
    let finished = moto
        .voltfleet(
            &["config", "check", "-c", &file.display().to_string()],
            path,
        )?
        .env("VOLTFLEET__DATA_DIR", "/from/env")
        .output()
        .await?;
    assert!(finished.status.success(), "{}", finished.stderr);
    let out = &finished.stdout;
    let line = |key: &str| config_line(out, key);
    assert!(line("database.max_connections").contains("= 42"), "{out}");
    assert!(
        line("database.max_connections")
            .contains("SSM parameter /voltfleet/test/database/max_connections"),
        "{out}"
    );
    assert!(line("database.min_connections").contains("# file"), "{out}");
    assert!(line("data_dir").contains("/from/env"), "{out}");
    assert!(line("redis.url").contains("<redacted>"), "{out}");
    assert!(
        line("redis.url").contains("SSM parameter /voltfleet/test/redis/url"),
        "{out}"
    );
    assert!(
        !out.contains("elasticache-token"),
        "a SecureString was printed:\n{out}"
    );
    Ok(())
}

#[tokio::test]
async fn a_bad_ssm_value_is_reported_with_its_parameter_name() -> anyhow::Result<()> {
    let moto = Moto::start().await?;
    let path = "/voltfleet/broken";
    moto.put(
        &format!("{path}/bus/request_timeout"),
        "soon",
        ParameterType::String,
    )
    .await?;
    moto.put(&format!("{path}/database/pool"), "7", ParameterType::String)
        .await?;
    let finished = moto.voltfleet(&["config", "check"], path)?.output().await?;
    assert!(!finished.status.success());
    let errors = &finished.stderr;
    assert!(errors.contains("bus.request_timeout"), "{errors}");
    assert!(
        errors.contains("SSM parameter /voltfleet/broken/bus/request_timeout"),
        "{errors}"
    );
    assert!(errors.contains("database.pool"), "{errors}");
    assert!(errors.contains("unknown configuration key"), "{errors}");
    Ok(())
}

#[tokio::test]
async fn an_unreachable_parameter_store_fails_the_start_with_a_fix() -> anyhow::Result<()> {
    let port = free_port()?;
    let finished = Voltfleet::new(&["config", "check"])?
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("VOLTFLEET__SSM__PATH", "/voltfleet/prod")
        .env("VOLTFLEET__SSM__REGION", "eu-west-1")
        .env("VOLTFLEET__SSM__TIMEOUT", "2s")
        .env(
            "VOLTFLEET__SSM__ENDPOINT_URL",
            format!("http://127.0.0.1:{port}"),
        )
        .output()
        .await?;
    assert!(!finished.status.success());
    assert!(finished.stderr.contains("ssm.path"), "{}", finished.stderr);
    assert!(
        finished.stderr.contains("/voltfleet/prod"),
        "{}",
        finished.stderr
    );
    Ok(())
}

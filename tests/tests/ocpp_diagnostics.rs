//! Diagnostics uploads end to end: `voltfleet serve ocpp` on MariaDB and Redis stores chargers'
//! uploads in an S3 bucket of moto_server on loopback; with neither a database URL nor an S3
//! bucket (SQLite under `data_dir`), it writes them under `data_dir/diagnostics`. Uploads come
//! from a real HTTP client, as a charger sends them.

use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_s3::error::DisplayErrorContext;
use aws_sdk_s3::types::{BucketLocationConstraint, CreateBucketConfiguration};
use futures_util::StreamExt;
use voltfleet_core::config::{BusSettings, DiagnosticsSettings, DiagnosticsStore, RedisSettings};
use voltfleet_core::credentials::hash_password;
use voltfleet_core::domain::RegistrationStatus;
use voltfleet_core::ocpp::diagnostics::diagnostics_location;
use voltfleet_core::shared::Shared;
use voltfleet_core::storage::{Database, NewChargePoint};
use voltfleet_core::testing::{TestMySql, mysql_settings, sqlite_settings};
use voltfleet_e2e::moto::MotoServer;
use voltfleet_e2e::{Running, Voltfleet, get};

const PASSWORD: &str = "s3cret-charger-password";
const BUCKET: &str = "vf-diagnostics";
/// Small enough for quick tests, larger than one S3 part (8 MiB) so that multipart uploads run.
const MAX_SIZE: usize = 12 * 1024 * 1024;

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

    fn s3(&self) -> aws_sdk_s3::Client {
        let config = aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("eu-west-1"))
            .endpoint_url(&self.server.endpoint)
            .force_path_style(true)
            .credentials_provider(Credentials::new("testing", "testing", None, None, "test"))
            .build();
        aws_sdk_s3::Client::from_conf(config)
    }

    async fn create_bucket(&self) -> anyhow::Result<()> {
        self.s3()
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

    /// Every object key in the bucket.
    async fn keys(&self) -> anyhow::Result<Vec<String>> {
        let listed = self.s3().list_objects_v2().bucket(BUCKET).send().await?;
        Ok(listed
            .contents()
            .iter()
            .filter_map(|object| object.key().map(str::to_owned))
            .collect())
    }

    /// The bytes of the one object whose key ends with `-{file_name}`.
    async fn object(&self, file_name: &str) -> anyhow::Result<(String, Vec<u8>)> {
        let suffix = format!("-{file_name}");
        let keys: Vec<String> = self
            .keys()
            .await?
            .into_iter()
            .filter(|key| key.ends_with(&suffix))
            .collect();
        let [key] = keys.as_slice() else {
            anyhow::bail!("expected one object named *{suffix}, found {keys:?}");
        };
        let object = self
            .s3()
            .get_object()
            .bucket(BUCKET)
            .key(key)
            .send()
            .await?;
        Ok((
            key.clone(),
            object.body.collect().await?.into_bytes().to_vec(),
        ))
    }

    /// Multipart uploads started and neither completed nor aborted.
    async fn pending_uploads(&self) -> anyhow::Result<usize> {
        let listed = self
            .s3()
            .list_multipart_uploads()
            .bucket(BUCKET)
            .send()
            .await?;
        Ok(listed.uploads().len())
    }
}

/// Bytes that are not all alike, so that a part out of order would show.
fn content(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[3] ^ seed)
        .collect()
}

/// A body sent in chunks without a Content-Length, as a charger streaming a file does.
fn streamed(bytes: Vec<u8>) -> reqwest::Body {
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        bytes.chunks(64 * 1024).map(|c| Ok(c.to_vec())).collect();
    reqwest::Body::wrap_stream(futures_util::stream::iter(chunks).boxed())
}

async fn status_of(response: reqwest::Response) -> anyhow::Result<(u16, String)> {
    let status = response.status().as_u16();
    Ok((status, response.text().await?))
}

fn client() -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()?)
}

fn upload_url(node: &Running, charger: &str, file_name: &str) -> String {
    node.url("ocpp", &format!("/ocpp/diagnostics/{charger}/{file_name}"))
}

async fn create_charger(db: &Database, identity: &str) -> anyhow::Result<i64> {
    Ok(db
        .charge_points()
        .create(&NewChargePoint {
            identity: identity.parse()?,
            location_id: None,
            ocpp_password_hash: Some(hash_password(PASSWORD)?),
            registration_status: RegistrationStatus::Accepted,
        })
        .await?)
}

async fn diagnostics_status(db: &Database, identity: &str) -> anyhow::Result<Option<String>> {
    Ok(db
        .charge_points()
        .find_by_identity(&identity.parse()?)
        .await?
        .context("the charger exists")?
        .diagnostics_status)
}

fn counter(metrics: &str, outcome: &str) -> String {
    let series = format!("voltfleet_ocpp_diagnostics_uploads_total{{outcome=\"{outcome}\"}} ");
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(&series))
        .unwrap_or("absent")
        .to_owned()
}

#[tokio::test]
async fn uploads_reach_s3_whole_or_not_at_all() -> anyhow::Result<()> {
    let database = TestMySql::create().await?;
    let migrate = Voltfleet::new(&["migrate"])?
        .env("VOLTFLEET__DATABASE__URL", &database.url)
        .output()
        .await?;
    anyhow::ensure!(migrate.status.success(), "{}", migrate.stderr);
    let db = Database::connect(&mysql_settings(&database.url), Path::new(".")).await?;
    create_charger(&db, "CP-DIAG-1").await?;

    let moto = Moto::start().await?;
    moto.create_bucket().await?;
    let redis_url = std::env::var("VOLTFLEET_TEST_REDIS_URL")
        .unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let prefix = format!("vf-diagnostics-test:{}:", database.name);
    let node = Voltfleet::new(&["serve", "ocpp"])?
        .env("VOLTFLEET__DATABASE__URL", &database.url)
        .env("VOLTFLEET__REDIS__URL", &redis_url)
        .env("VOLTFLEET__REDIS__KEY_PREFIX", &prefix)
        .env("VOLTFLEET__OCPP__DIAGNOSTICS__STORE", "s3")
        .env("VOLTFLEET__OCPP__DIAGNOSTICS__S3_BUCKET", BUCKET)
        .env(
            "VOLTFLEET__OCPP__DIAGNOSTICS__S3_ENDPOINT",
            &moto.server.endpoint,
        )
        .env(
            "VOLTFLEET__OCPP__DIAGNOSTICS__MAX_SIZE",
            MAX_SIZE.to_string(),
        )
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "eu-west-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .start(&["ocpp"])
        .await?;
    let http = client()?;

    // A small file with the charger's own Basic credentials: one PutObject.
    let small = content(100_000, 1);
    let (status, body) = status_of(
        http.put(upload_url(&node, "CP-DIAG-1", "small.log"))
            .basic_auth("CP-DIAG-1", Some(PASSWORD))
            .body(small.clone())
            .send()
            .await?,
    )
    .await?;
    assert_eq!(status, 201, "{body}");
    let (key, stored) = moto.object("small.log").await?;
    assert!(key.starts_with("diagnostics/CP-DIAG-1/"), "{key}");
    assert!(stored == small, "the stored object differs from the upload");
    assert_eq!(
        diagnostics_status(&db, "CP-DIAG-1").await?.as_deref(),
        Some("Uploaded")
    );

    // A streamed body larger than a part: a multipart upload, reassembled byte for byte.
    let large = content(MAX_SIZE - 1000, 2);
    let (status, body) = status_of(
        http.post(upload_url(&node, "CP-DIAG-1", "large.tar.gz"))
            .basic_auth("CP-DIAG-1", Some(PASSWORD))
            .body(streamed(large.clone()))
            .send()
            .await?,
    )
    .await?;
    assert_eq!(status, 201, "{body}");
    assert!(
        moto.object("large.tar.gz").await?.1 == large,
        "the multipart object differs from the upload"
    );

    // The location GetDiagnostics would carry: a one-time token, and a multipart POST to the
    // directory itself, the file named by its part.
    let shared = Shared::connect(
        &RedisSettings {
            url: Some(redis_url.clone().into()),
            key_prefix: prefix.clone(),
            connect_timeout: Duration::from_secs(2),
            response_timeout: Duration::from_secs(2),
            tls_ca: None,
        },
        &BusSettings {
            request_timeout: Duration::from_secs(10),
        },
    )
    .await?;
    let settings = DiagnosticsSettings {
        store: DiagnosticsStore::Local,
        max_size: MAX_SIZE as u64,
        public_url: Some(node.url("ocpp", "")),
        token_ttl: Duration::from_secs(600),
    };
    let location = diagnostics_location(&settings, &shared.cache, &"CP-DIAG-1".parse()?)
        .await?
        .context("public_url is set")?;
    assert!(
        location.ends_with("/ocpp/diagnostics/CP-DIAG-1/"),
        "{location}"
    );
    let multipart_upload = |bytes: Vec<u8>| {
        let part = reqwest::multipart::Part::bytes(bytes).file_name("multipart.zip");
        http.post(&location).multipart(
            reqwest::multipart::Form::new()
                .text("id", "CP-DIAG-1")
                .part("file", part),
        )
    };
    let by_token = content(3000, 3);
    let (status, body) = status_of(multipart_upload(by_token.clone()).send().await?).await?;
    assert_eq!(status, 201, "{body}");
    assert!(moto.object("multipart.zip").await?.1 == by_token);
    let (status, body) = status_of(multipart_upload(by_token.clone()).send().await?).await?;
    assert_eq!(status, 401, "a used token was accepted again: {body}");

    let objects_before = moto.keys().await?;

    // A wrong password stores nothing.
    let (status, _) = status_of(
        http.put(upload_url(&node, "CP-DIAG-1", "intruder.log"))
            .basic_auth("CP-DIAG-1", Some("wrong"))
            .body(content(1000, 4))
            .send()
            .await?,
    )
    .await?;
    assert_eq!(status, 401);

    // Too large, declared or streamed: 413, and no object or parts left behind.
    let (status, body) = status_of(
        http.put(upload_url(&node, "CP-DIAG-1", "declared.bin"))
            .basic_auth("CP-DIAG-1", Some(PASSWORD))
            .body(content(MAX_SIZE + 1, 5))
            .send()
            .await?,
    )
    .await?;
    assert_eq!(status, 413, "{body}");
    let (status, body) = status_of(
        http.put(upload_url(&node, "CP-DIAG-1", "streamed.bin"))
            .basic_auth("CP-DIAG-1", Some(PASSWORD))
            .body(streamed(content(MAX_SIZE + 1, 6)))
            .send()
            .await?,
    )
    .await?;
    assert_eq!(status, 413, "{body}");
    assert!(body.contains("ocpp.diagnostics.max_size"), "{body}");

    // File names that could leave the charger's directory.
    for bad in [
        "diag..log",
        "%2E%2E%2Fescape.log",
        "diag%0A.log",
        "logs%5Cdiag.log",
    ] {
        let (status, body) = status_of(
            http.put(upload_url(&node, "CP-DIAG-1", bad))
                .basic_auth("CP-DIAG-1", Some(PASSWORD))
                .body(content(10, 7))
                .send()
                .await?,
        )
        .await?;
        assert_eq!(status, 400, "{bad}: {body}");
    }

    assert_eq!(moto.keys().await?, objects_before);
    assert_eq!(moto.pending_uploads().await?, 0);
    let metrics = get(&node.url("ocpp", "/metrics")).await?.1;
    assert_eq!(counter(&metrics, "uploaded"), "3", "{metrics}");
    assert_eq!(counter(&metrics, "refused"), "2", "{metrics}");
    assert_eq!(counter(&metrics, "too_large"), "2", "{metrics}");
    assert_eq!(counter(&metrics, "bad_request"), "4", "{metrics}");

    node.stop_with("TERM").await?;
    database.drop_database().await?;
    Ok(())
}

#[tokio::test]
async fn the_local_store_writes_under_data_dir() -> anyhow::Result<()> {
    let data_dir = tempfile::tempdir()?;
    let migrate = Voltfleet::new(&["migrate"])?
        .env("VOLTFLEET__DATA_DIR", data_dir.path())
        .output()
        .await?;
    anyhow::ensure!(migrate.status.success(), "{}", migrate.stderr);
    let db = Database::connect(&sqlite_settings(data_dir.path()), data_dir.path()).await?;
    create_charger(&db, "CP-LOCAL-1").await?;
    let node = Voltfleet::new(&["serve", "ocpp"])?
        .env("VOLTFLEET__DATA_DIR", data_dir.path())
        .env("VOLTFLEET__OCPP__DIAGNOSTICS__MAX_SIZE", "65536")
        .start(&["ocpp"])
        .await?;
    let http = client()?;

    let file = content(50_000, 8);
    let (status, body) = status_of(
        http.put(upload_url(&node, "CP-LOCAL-1", "local.log"))
            .basic_auth("CP-LOCAL-1", Some(PASSWORD))
            .body(file.clone())
            .send()
            .await?,
    )
    .await?;
    assert_eq!(status, 201, "{body}");
    let (status, body) = status_of(
        http.put(upload_url(&node, "CP-LOCAL-1", "too-large.log"))
            .basic_auth("CP-LOCAL-1", Some(PASSWORD))
            .body(streamed(content(70_000, 9)))
            .send()
            .await?,
    )
    .await?;
    assert_eq!(status, 413, "{body}");

    let directory = data_dir.path().join("diagnostics").join("CP-LOCAL-1");
    let names: Vec<String> = std::fs::read_dir(&directory)?
        .map(|entry| entry.map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect::<Result<_, _>>()?;
    let [name] = names.as_slice() else {
        anyhow::bail!("expected the one stored file in {directory:?}, found {names:?}");
    };
    assert!(name.ends_with("Z-local.log"), "{name}");
    assert!(std::fs::read(directory.join(name))? == file);
    assert_eq!(
        diagnostics_status(&db, "CP-LOCAL-1").await?.as_deref(),
        Some("Uploaded")
    );
    node.stop_with("TERM").await?;
    Ok(())
}

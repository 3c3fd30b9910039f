//! Ships closed security log files to S3 and keeps the directory within its bounds: a Pingora
//! background service.
//!
//! Every `upload_interval` it gzips each closed file, oldest first, to
//! `s3://<bucket>/<prefix>dt=YYYY-MM-DD/hour=HH/<file>.gz` (the hour is the events' hour, from
//! the file's name) and deletes it, or moves it to `uploaded/` with `keep_uploaded`. A failure
//! keeps the file and pauses the uploads, the pause doubling up to [`MAX_RETRY_PAUSE`].
//! Without `[security_log.s3]` files stay on disk for `keep_local`. Either way the closed files
//! may take `max_local_bytes`; beyond it the oldest are deleted, loudly, since a full disk
//! would stop more than the log.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use aws_sdk_s3::config::Region;
use aws_sdk_s3::error::DisplayErrorContext;
use aws_sdk_s3::primitives::ByteStream;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;

use super::SecurityLog;
use super::writer::{CLOSED_SUFFIX, FILE_PREFIX};
use crate::config::SecurityLogS3Config;

/// The longest pause between upload attempts while S3 fails (or `upload_interval`, if longer).
pub const MAX_RETRY_PAUSE: Duration = Duration::from_secs(300);
/// How often the directory is looked at when nothing is shipped.
const LOCAL_SCAN_INTERVAL: Duration = Duration::from_secs(60);
/// Where `keep_uploaded` keeps shipped files.
const UPLOADED_DIR: &str = "uploaded";

#[derive(Debug, thiserror::Error)]
pub enum ShipError {
    #[error(
        "no AWS region for the security log bucket {bucket}; set security_log.s3.region or AWS_REGION, or run where the instance metadata tells it"
    )]
    NoRegion { bucket: String },
    #[error("cannot read the security log file {path}: {source}; the file stays for the next try")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "cannot upload to s3://{bucket}/{key}: {detail}; check security_log.s3 (bucket, region, endpoint_url), the AWS credentials, and that the role may call s3:PutObject there"
    )]
    Upload {
        bucket: String,
        key: String,
        detail: String,
    },
}

/// The S3 key of a closed file: `<prefix>dt=YYYY-MM-DD/hour=HH/<name>.gz`, the date and hour
/// read from the name (`security-YYYYMMDD-HH-…`). `None` for a name the writer never makes.
pub fn s3_key(prefix: &str, file_name: &str) -> Option<String> {
    let rest = file_name.strip_prefix(FILE_PREFIX)?;
    if !file_name.ends_with(CLOSED_SUFFIX) {
        return None;
    }
    let (date, rest) = rest.split_at_checked(8)?;
    let (dash, rest) = rest.split_at_checked(1)?;
    let (hour, rest) = rest.split_at_checked(2)?;
    let digits = |text: &str| text.bytes().all(|b| b.is_ascii_digit());
    if dash != "-" || !rest.starts_with('-') || !digits(date) || !digits(hour) {
        return None;
    }
    let (year, month, day) = (&date[..4], &date[4..6], &date[6..]);
    Some(format!(
        "{prefix}dt={year}-{month}-{day}/hour={hour}/{file_name}.gz"
    ))
}

/// A closed file on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ClosedFile {
    path: PathBuf,
    name: String,
    bytes: u64,
    modified: SystemTime,
}

/// The closed files of `dir`, oldest first.
fn closed_files(dir: &Path) -> Vec<ClosedFile> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<ClosedFile> = entries
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let name = entry.file_name().into_string().ok()?;
            s3_key("", &name)?;
            let metadata = entry.metadata().ok().filter(std::fs::Metadata::is_file)?;
            Some(ClosedFile {
                path: entry.path(),
                name,
                bytes: metadata.len(),
                modified: metadata.modified().unwrap_or(SystemTime::UNIX_EPOCH),
            })
        })
        .collect();
    files.sort_by(|a, b| (a.modified, &a.name).cmp(&(b.modified, &b.name)));
    files
}

/// What to delete to bring `kept` (already shipped) and `waiting` (not) within `max` bytes:
/// shipped copies first, then waiting files, oldest first. Both lists are oldest first.
fn over_bound<'a>(
    kept: &'a [ClosedFile],
    waiting: &'a [ClosedFile],
    max: u64,
) -> (Vec<&'a ClosedFile>, Vec<&'a ClosedFile>) {
    let mut total: u64 = kept.iter().chain(waiting).map(|file| file.bytes).sum();
    let mut take = |files: &'a [ClosedFile]| {
        files
            .iter()
            .take_while(|file| {
                let over = total > max;
                if over {
                    total -= file.bytes;
                }
                over
            })
            .collect::<Vec<_>>()
    };
    let kept = take(kept);
    let waiting = take(waiting);
    (kept, waiting)
}

/// Files last changed `keep` or longer before `now`.
fn expired(files: &[ClosedFile], keep: Duration, now: SystemTime) -> Vec<&ClosedFile> {
    files
        .iter()
        .filter(|file| {
            now.duration_since(file.modified)
                .is_ok_and(|age| age >= keep)
        })
        .collect()
}

/// The background service of the security log: starts the writer, ships and bounds files,
/// and closes the open file at shutdown.
#[derive(Debug)]
pub struct Shipper {
    log: Arc<SecurityLog>,
    /// How long the proxy keeps serving after SIGTERM: the bound on the last uploads.
    grace_period: Duration,
}

impl Shipper {
    pub fn new(log: Arc<SecurityLog>, grace_period: Duration) -> Shipper {
        Shipper { log, grace_period }
    }

    fn dir(&self) -> &Path {
        &self.log.config().dir
    }

    /// One look at the directory: bounds applied, then (with S3) every waiting file shipped,
    /// oldest first, stopping at the first failure. True unless an upload failed.
    async fn round(&self, client: &mut Option<aws_sdk_s3::Client>) -> bool {
        let config = self.log.config();
        let uploaded_dir = self.dir().join(UPLOADED_DIR);
        let now = SystemTime::now();
        let mut waiting = closed_files(self.dir());
        let mut kept = closed_files(&uploaded_dir);
        // Shipped copies, and without S3 every closed file, live for keep_local.
        let mut aged: Vec<&ClosedFile> = expired(&kept, config.keep_local, now);
        if config.s3.is_none() {
            aged.extend(expired(&waiting, config.keep_local, now));
        }
        for file in aged {
            remove(
                &file.path,
                "Deleted a security log file older than security_log.keep_local.",
            );
        }
        waiting.retain(|file| file.path.exists());
        kept.retain(|file| file.path.exists());
        let (kept_over, waiting_over) = over_bound(&kept, &waiting, config.max_local_bytes);
        for file in kept_over {
            remove(
                &file.path,
                "Deleted an uploaded security log file to stay within security_log.max_local_bytes.",
            );
        }
        for file in &waiting_over {
            tracing::error!(
                file = %file.path.display(),
                bytes = file.bytes,
                max_local_bytes = config.max_local_bytes,
                "Deleted a security log file that was never shipped, to keep the disk from filling; its events are lost. Check the uploads (voltfleet_proxy_security_log_uploads_total) or raise security_log.max_local_bytes."
            );
            if std::fs::remove_file(&file.path).is_ok() {
                self.log.metrics.discarded_files.inc();
            }
        }
        waiting.retain(|file| file.path.exists());
        self.set_waiting(&waiting);
        let Some(s3) = &config.s3 else {
            return true;
        };
        for file in &waiting {
            match self.upload(client, s3, file).await {
                Ok(key) => {
                    self.log
                        .metrics
                        .uploads
                        .with_label_values(&["success"])
                        .inc();
                    tracing::info!(
                        bucket = %s3.bucket,
                        key = %key,
                        bytes = file.bytes,
                        "Uploaded a security log file."
                    );
                    self.after_upload(s3, file, &uploaded_dir);
                }
                Err(err) => {
                    self.log
                        .metrics
                        .uploads
                        .with_label_values(&["failure"])
                        .inc();
                    tracing::warn!(
                        bucket = %s3.bucket,
                        key = s3_key(&s3.prefix, &file.name).unwrap_or_default(),
                        error = %err,
                        "Cannot ship a security log file; it stays on disk and is tried again."
                    );
                    self.set_waiting(&closed_files(self.dir()));
                    return false;
                }
            }
        }
        self.set_waiting(&closed_files(self.dir()));
        true
    }

    fn set_waiting(&self, waiting: &[ClosedFile]) {
        let bytes: u64 = waiting.iter().map(|file| file.bytes).sum();
        let metrics = &self.log.metrics;
        metrics
            .waiting_files
            .set(i64::try_from(waiting.len()).unwrap_or(i64::MAX));
        metrics
            .waiting_bytes
            .set(i64::try_from(bytes).unwrap_or(i64::MAX));
    }

    /// Gzips and uploads one file; its key.
    async fn upload(
        &self,
        client: &mut Option<aws_sdk_s3::Client>,
        s3: &SecurityLogS3Config,
        file: &ClosedFile,
    ) -> Result<String, ShipError> {
        let key = s3_key(&s3.prefix, &file.name).unwrap_or_default();
        let client = match client {
            Some(client) => client,
            None => client.insert(s3_client(s3).await?),
        };
        let path = file.path.clone();
        let body = tokio::task::spawn_blocking(move || gzip(&path))
            .await
            .map_err(|err| ShipError::Read {
                path: file.path.clone(),
                source: std::io::Error::other(err),
            })??;
        client
            .put_object()
            .bucket(&s3.bucket)
            .key(&key)
            .content_type("application/gzip")
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(|err| ShipError::Upload {
                bucket: s3.bucket.clone(),
                key: key.clone(),
                detail: DisplayErrorContext(&err).to_string(),
            })?;
        Ok(key)
    }

    fn after_upload(&self, s3: &SecurityLogS3Config, file: &ClosedFile, uploaded_dir: &Path) {
        let result = if s3.keep_uploaded {
            std::fs::create_dir_all(uploaded_dir)
                .and_then(|()| std::fs::rename(&file.path, uploaded_dir.join(&file.name)))
        } else {
            std::fs::remove_file(&file.path)
        };
        if let Err(err) = result {
            // Left where it is, it would be uploaded again: harmless, the key is the same.
            tracing::warn!(file = %file.path.display(), error = %err, "Cannot remove an uploaded security log file; it will be uploaded again.");
        }
    }

    /// The pause before the next round: the interval, or after `failures` failed rounds in a
    /// row, the interval doubled as often, up to `MAX_RETRY_PAUSE`.
    fn pause(&self, failures: u32) -> Duration {
        let interval = self
            .log
            .config()
            .s3
            .as_ref()
            .map_or(LOCAL_SCAN_INTERVAL, |s3| s3.upload_interval);
        let bound = MAX_RETRY_PAUSE.max(interval);
        interval
            .checked_mul(1 << failures.min(16))
            .unwrap_or(bound)
            .min(bound)
    }
}

fn remove(path: &Path, message: &'static str) {
    match std::fs::remove_file(path) {
        Ok(()) => tracing::info!(file = %path.display(), "{message}"),
        Err(err) => {
            tracing::warn!(file = %path.display(), error = %err, "Cannot delete a security log file.");
        }
    }
}

fn gzip(path: &Path) -> Result<Vec<u8>, ShipError> {
    let failed = |source| ShipError::Read {
        path: path.to_path_buf(),
        source,
    };
    let mut input = std::fs::File::open(path).map_err(failed)?;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::copy(&mut input, &mut encoder).map_err(failed)?;
    encoder.finish().map_err(failed)
}

async fn s3_client(s3: &SecurityLogS3Config) -> Result<aws_sdk_s3::Client, ShipError> {
    use aws_config::BehaviorVersion;
    use aws_config::timeout::TimeoutConfig;
    let mut loader = aws_config::defaults(BehaviorVersion::latest()).timeout_config(
        TimeoutConfig::builder()
            .connect_timeout(Duration::from_secs(5))
            // A whole file of max_file_bytes over a slow link, with room to spare.
            .operation_attempt_timeout(Duration::from_secs(120))
            .build(),
    );
    if let Some(region) = &s3.region {
        loader = loader.region(Region::new(region.clone()));
    }
    if let Some(endpoint) = &s3.endpoint_url {
        loader = loader.endpoint_url(endpoint);
    }
    let sdk_config = loader.load().await;
    if sdk_config.region().is_none() {
        return Err(ShipError::NoRegion {
            bucket: s3.bucket.clone(),
        });
    }
    // An endpoint override (a test server, some VPC endpoints) has no per-bucket host names.
    let config = aws_sdk_s3::config::Builder::from(&sdk_config)
        .force_path_style(s3.endpoint_url.is_some())
        .build();
    Ok(aws_sdk_s3::Client::from_conf(config))
}

/// Closes the open file when the service's runtime drops it at the end of shutdown: events
/// recorded during the grace period then end in a closed file too.
struct CloseOnDrop(Arc<SecurityLog>);

impl Drop for CloseOnDrop {
    fn drop(&mut self) {
        self.0.close_blocking(Duration::from_secs(2));
    }
}

#[async_trait]
impl BackgroundService for Shipper {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        self.log.start_writer();
        let _close = CloseOnDrop(self.log.clone());
        let mut client = None;
        let mut failures = 0;
        loop {
            if self.round(&mut client).await {
                failures = 0;
            } else {
                failures += 1;
            }
            tokio::select! {
                _ = shutdown.changed() => break,
                () = tokio::time::sleep(self.pause(failures)) => {}
            }
        }
        // Shipped now, the files of an instance that is scaled in are not lost with it.
        let log = self.log.clone();
        let _ =
            tokio::task::spawn_blocking(move || log.close_blocking(Duration::from_secs(5))).await;
        if self.log.config().s3.is_some()
            && tokio::time::timeout(self.grace_period, self.round(&mut client))
                .await
                .is_err()
        {
            tracing::warn!(
                dir = %self.dir().display(),
                "The last security log uploads did not finish before shutdown; the files stay for the next start."
            );
        }
        // Until the runtime drops this task, which closes what the grace period wrote.
        std::future::pending::<()>().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_partitioned_by_the_hour_of_the_events() {
        assert_eq!(
            s3_key(
                "voltfleet-proxy/security/",
                "security-20240501-07-ip-10-0-1-5.3f9a2c1b-000012.jsonl"
            )
            .as_deref(),
            Some(
                "voltfleet-proxy/security/dt=2024-05-01/hour=07/security-20240501-07-ip-10-0-1-5.3f9a2c1b-000012.jsonl.gz"
            )
        );
        assert_eq!(
            s3_key("", "security-20241231-23-h.r-000001.jsonl").as_deref(),
            Some("dt=2024-12-31/hour=23/security-20241231-23-h.r-000001.jsonl.gz")
        );
        for not_ours in [
            "security-20240501-07-h.r-000001.jsonl.open",
            "security-2024050-07-h.r-000001.jsonl",
            "security-20240501-7-h.r-000001.jsonl",
            "security-20240501_07-h.r-000001.jsonl",
            "access-20240501-07-h.r-000001.jsonl",
            "security-2024é501-07-h.r-000001.jsonl",
        ] {
            assert_eq!(s3_key("p/", not_ours), None, "{not_ours}");
        }
    }

    fn file(name: &str, bytes: u64, age_secs: u64) -> ClosedFile {
        ClosedFile {
            path: PathBuf::from(name),
            name: name.into(),
            bytes,
            modified: SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000 - age_secs),
        }
    }

    #[test]
    fn over_the_disk_bound_shipped_copies_go_first_then_the_oldest() {
        let kept = [file("k1", 100, 50), file("k2", 100, 40)];
        let waiting = [
            file("w1", 100, 30),
            file("w2", 100, 20),
            file("w3", 100, 10),
        ];
        let names = |files: Vec<&ClosedFile>| {
            files
                .iter()
                .map(|f| f.name.clone())
                .collect::<Vec<String>>()
        };
        let (k, w) = over_bound(&kept, &waiting, 500);
        assert!(k.is_empty() && w.is_empty());
        let (k, w) = over_bound(&kept, &waiting, 350);
        assert_eq!(
            (names(k), names(w)),
            (vec!["k1".to_string(), "k2".into()], vec![])
        );
        let (k, w) = over_bound(&kept, &waiting, 150);
        assert_eq!(
            (names(k), names(w)),
            (
                vec!["k1".to_string(), "k2".into()],
                vec!["w1".to_string(), "w2".into()]
            )
        );
    }

    #[test]
    fn files_expire_after_keep_local() {
        let files = [file("old", 1, 7200), file("new", 1, 60)];
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let gone = expired(&files, Duration::from_secs(3600), now);
        assert_eq!(gone.len(), 1);
        assert_eq!(gone[0].name, "old");
    }

    #[test]
    fn closed_files_are_listed_oldest_first_and_open_ones_never() {
        let dir = tempfile::tempdir().expect("temporary directory");
        for name in [
            "security-20240501-08-h.r-000002.jsonl",
            "security-20240501-07-h.r-000001.jsonl",
            "security-20240501-09-h.r-000003.jsonl.open",
            "unrelated.jsonl",
        ] {
            std::fs::write(dir.path().join(name), "{}\n").expect("write");
        }
        let old = SystemTime::now() - Duration::from_secs(3600);
        let first = std::fs::File::options()
            .write(true)
            .open(dir.path().join("security-20240501-07-h.r-000001.jsonl"))
            .expect("open");
        first.set_modified(old).expect("set the time");
        let names: Vec<String> = closed_files(dir.path())
            .into_iter()
            .map(|f| f.name)
            .collect();
        assert_eq!(
            names,
            [
                "security-20240501-07-h.r-000001.jsonl",
                "security-20240501-08-h.r-000002.jsonl"
            ]
        );
    }

    #[test]
    fn the_retry_pause_doubles_up_to_its_bound() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let mut config = crate::config::SecurityLogConfig {
            dir: dir.path().to_path_buf(),
            rotate_every: Duration::from_secs(3600),
            max_file_bytes: 1 << 20,
            max_excerpt_bytes: 256,
            queue: 16,
            keep_local: Duration::from_secs(3600),
            max_local_bytes: 1 << 30,
            s3: None,
        };
        config.s3 = Some(SecurityLogS3Config {
            bucket: "waf-logs".into(),
            prefix: String::new(),
            region: None,
            endpoint_url: None,
            upload_interval: Duration::from_secs(30),
            keep_uploaded: false,
        });
        let shipper = Shipper::new(
            SecurityLog::new(&config, &prometheus::Registry::new()),
            Duration::from_secs(5),
        );
        let pauses: Vec<u64> = (0..6).map(|n| shipper.pause(n).as_secs()).collect();
        assert_eq!(pauses, [30, 60, 120, 240, 300, 300]);
        assert_eq!(shipper.pause(40), MAX_RETRY_PAUSE);
    }

    #[test]
    fn a_gzipped_file_reads_back_whole() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("security-20240501-07-h.r-000001.jsonl");
        let text = "{\"a\":1}\n".repeat(1000);
        std::fs::write(&path, &text).expect("write");
        let compressed = gzip(&path).expect("gzip");
        assert!(compressed.len() < text.len());
        let mut back = String::new();
        std::io::Read::read_to_string(
            &mut flate2::read::GzDecoder::new(compressed.as_slice()),
            &mut back,
        )
        .expect("gunzip");
        assert_eq!(back, text);
    }
}

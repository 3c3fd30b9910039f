//! The `[security_log]` section: where the firewall's events are written as JSON lines, how
//! files are rotated and bounded on disk, and `[security_log.s3]`, the bucket they are shipped
//! to for Athena.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::cache::parse_size;
use super::check::Checker;

/// The security log: one JSON line per firewall event, in hourly files under `dir`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecurityLogConfig {
    pub dir: PathBuf,
    /// A file is closed when it has been open this long, at the latest.
    pub rotate_every: Duration,
    /// A file is closed once it holds this many bytes.
    pub max_file_bytes: u64,
    /// How much of the matched value an event keeps.
    pub max_excerpt_bytes: usize,
    /// Events waiting for the writer; beyond it they are dropped and counted.
    pub queue: usize,
    /// Closed files not shipped to S3 (or shipped and kept) are deleted after this long.
    pub keep_local: Duration,
    /// Closed files together may take this much disk; the oldest go first.
    pub max_local_bytes: u64,
    pub s3: Option<SecurityLogS3Config>,
}

/// Where closed files are shipped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecurityLogS3Config {
    pub bucket: String,
    /// Ends with `/` unless empty; the partitions `dt=…/hour=…/` follow it.
    pub prefix: String,
    /// `None`: the SDK's chain (AWS_REGION, the profile, the instance's metadata).
    pub region: Option<String>,
    /// An endpoint other than AWS's (a VPC endpoint, a test server); path-style addressing.
    pub endpoint_url: Option<String>,
    pub upload_interval: Duration,
    /// Keep uploaded files under `dir/uploaded/` (for `keep_local`) instead of deleting them.
    pub keep_uploaded: bool,
}

const DEFAULT_PREFIX: &str = "voltfleet-proxy/security/";

impl SecurityLogS3Config {
    /// The key prefix when `prefix` is not given.
    pub fn default_prefix() -> &'static str {
        DEFAULT_PREFIX
    }
}
const DEFAULT_ROTATE_EVERY: Duration = Duration::from_secs(3600);
/// Shorter periods make many small objects, which Athena reads slowly.
const MIN_ROTATE_EVERY: Duration = Duration::from_secs(60);
const DEFAULT_MAX_FILE_BYTES: u64 = 64 << 20;
const DEFAULT_MAX_EXCERPT_BYTES: u64 = 256;
const DEFAULT_QUEUE: usize = 10_000;
const DEFAULT_KEEP_LOCAL: Duration = Duration::from_secs(7 * 24 * 3600);
const DEFAULT_MAX_LOCAL_BYTES: u64 = 1 << 30;
const DEFAULT_UPLOAD_INTERVAL: Duration = Duration::from_secs(30);

/// A size written as a number of bytes or as text with a unit (`"64m"`).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum RawSize {
    Bytes(u64),
    Text(String),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSecurityLog {
    dir: Option<PathBuf>,
    rotate_every: Option<String>,
    max_file_bytes: Option<RawSize>,
    max_excerpt_bytes: Option<RawSize>,
    queue: Option<usize>,
    keep_local: Option<String>,
    max_local_bytes: Option<RawSize>,
    s3: Option<toml::Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSecurityLogS3 {
    bucket: Option<String>,
    prefix: Option<String>,
    region: Option<String>,
    endpoint_url: Option<String>,
    upload_interval: Option<String>,
    keep_uploaded: Option<bool>,
}

impl Checker {
    /// `None` when the section is absent: events are then only logged and counted.
    pub(super) fn security_log(&mut self, value: Option<toml::Value>) -> Option<SecurityLogConfig> {
        let raw: RawSecurityLog = self.section("security_log", value)?;
        let s3 = self
            .section::<RawSecurityLogS3>("security_log.s3", raw.s3)
            .and_then(|s3| self.security_log_s3(s3));
        let Some(dir) = raw.dir else {
            self.problem(
                "security_log.dir",
                "the section has no dir",
                "name the directory the events are written to, like dir = \"/var/log/voltfleet-proxy/security\", or remove the section",
            );
            return None;
        };
        let dir = self.absolute(&dir);
        if dir.exists() && !dir.is_dir() {
            self.problem(
                "security_log.dir",
                format!("{} is not a directory", dir.display()),
                "give a directory (it is created when missing)",
            );
        } else if !dir.exists() && dir.parent().is_some_and(|parent| !parent.is_dir()) {
            self.problem(
                "security_log.dir",
                format!(
                    "{} does not exist, nor does its parent directory",
                    dir.display()
                ),
                "create the parent directory, or give one that exists; the proxy creates only the last level",
            );
        }
        let rotate_every = self.duration(
            "security_log.rotate_every",
            raw.rotate_every,
            DEFAULT_ROTATE_EVERY,
        );
        if rotate_every < MIN_ROTATE_EVERY {
            self.problem(
                "security_log.rotate_every",
                format!(
                    "{} is shorter than a minute",
                    humantime::format_duration(rotate_every)
                ),
                "give at least \"1m\" (the default is \"1h\"; files are also closed when the hour changes and at max_file_bytes)",
            );
        }
        let max_file_bytes = self.log_size(
            "security_log.max_file_bytes",
            raw.max_file_bytes,
            DEFAULT_MAX_FILE_BYTES,
        );
        let max_excerpt_bytes = self.log_size(
            "security_log.max_excerpt_bytes",
            raw.max_excerpt_bytes,
            DEFAULT_MAX_EXCERPT_BYTES,
        );
        let max_local_bytes = self.log_size(
            "security_log.max_local_bytes",
            raw.max_local_bytes,
            DEFAULT_MAX_LOCAL_BYTES,
        );
        if max_local_bytes < max_file_bytes {
            self.problem(
                "security_log.max_local_bytes",
                format!("{max_local_bytes} bytes is less than max_file_bytes ({max_file_bytes})"),
                "allow the disk at least one whole file; the default is \"1g\"",
            );
        }
        let queue = raw.queue.unwrap_or(DEFAULT_QUEUE);
        if queue == 0 {
            self.problem(
                "security_log.queue",
                "0 would drop every event",
                "keep the default (10000) or give a positive number",
            );
        }
        let keep_local = self.duration(
            "security_log.keep_local",
            raw.keep_local,
            DEFAULT_KEEP_LOCAL,
        );
        Some(SecurityLogConfig {
            dir,
            rotate_every: rotate_every.max(MIN_ROTATE_EVERY),
            max_file_bytes: max_file_bytes.max(1),
            max_excerpt_bytes: usize::try_from(max_excerpt_bytes).unwrap_or(usize::MAX),
            queue: queue.max(1),
            keep_local,
            max_local_bytes,
            s3,
        })
    }

    fn security_log_s3(&mut self, raw: RawSecurityLogS3) -> Option<SecurityLogS3Config> {
        let Some(bucket) = raw.bucket else {
            self.problem(
                "security_log.s3.bucket",
                "the section has no bucket",
                "name the bucket the closed files are uploaded to, or remove [security_log.s3] to keep them on disk only",
            );
            return None;
        };
        if !is_bucket_name(&bucket) {
            self.problem(
                "security_log.s3.bucket",
                format!("{bucket:?} is not an S3 bucket name"),
                "use 3 to 63 lower-case letters, digits, dots and hyphens, starting and ending with a letter or digit",
            );
        }
        let mut prefix = raw.prefix.unwrap_or_else(|| DEFAULT_PREFIX.to_string());
        if prefix.starts_with('/') {
            self.problem(
                "security_log.s3.prefix",
                format!("{prefix:?} starts with /"),
                "write the key prefix without a leading slash, like \"voltfleet-proxy/security/\"",
            );
        }
        if !prefix.is_empty() && !prefix.ends_with('/') {
            prefix.push('/');
        }
        if raw.region.as_deref().is_some_and(str::is_empty) {
            self.problem(
                "security_log.s3.region",
                "the region is empty",
                "write one like \"eu-west-1\", or leave the key out to use AWS_REGION or the instance's region",
            );
        }
        if let Some(url) = &raw.endpoint_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            self.problem(
                "security_log.s3.endpoint_url",
                format!("{url:?} is not an http:// or https:// URL"),
                "write it like \"https://bucket.vpce-0abc.s3.eu-west-1.vpce.amazonaws.com\", or leave it out for AWS's own",
            );
        }
        let upload_interval = self.duration(
            "security_log.s3.upload_interval",
            raw.upload_interval,
            DEFAULT_UPLOAD_INTERVAL,
        );
        if upload_interval.is_zero() {
            self.problem(
                "security_log.s3.upload_interval",
                "0 would scan the directory without pause",
                "give a duration like \"30s\" (the default)",
            );
        }
        Some(SecurityLogS3Config {
            bucket,
            prefix,
            region: raw.region.filter(|region| !region.is_empty()),
            endpoint_url: raw.endpoint_url,
            upload_interval: upload_interval.max(Duration::from_millis(100)),
            keep_uploaded: raw.keep_uploaded.unwrap_or(false),
        })
    }

    fn log_size(&mut self, location: &str, raw: Option<RawSize>, default: u64) -> u64 {
        let parsed = match raw {
            None => return default,
            Some(RawSize::Bytes(bytes)) => Some(bytes),
            Some(RawSize::Text(ref text)) => parse_size(text),
        };
        match parsed {
            Some(bytes) if bytes > 0 => bytes,
            _ => {
                let written = match raw {
                    Some(RawSize::Text(text)) => format!("{text:?}"),
                    Some(RawSize::Bytes(bytes)) => bytes.to_string(),
                    None => String::new(),
                };
                self.problem(
                    location,
                    format!("{written} is not a size"),
                    "write a positive number of bytes, or text like \"256k\" or \"64m\"",
                );
                default
            }
        }
    }
}

/// S3's rules for bucket names, as far as a typo can break them.
fn is_bucket_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    (3..=63).contains(&bytes.len())
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'.' || *b == b'-')
        && bytes.first().is_some_and(u8::is_ascii_alphanumeric)
        && bytes.last().is_some_and(u8::is_ascii_alphanumeric)
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::Duration;

    use super::super::check::check;
    use super::*;

    const BASE: &str = r#"
[[listeners]]
address = "127.0.0.1:8080"
[upstreams.api]
peers = [{ address = "127.0.0.1:8101" }]
[[routes]]
path = "/"
upstream = "api"
"#;

    fn problems(section: &str) -> String {
        match check(&format!("{BASE}{section}"), Path::new("/tmp/proxy.toml")) {
            Ok(_) => String::new(),
            Err(problems) => problems.to_string(),
        }
    }

    #[test]
    fn the_section_is_optional_and_has_defaults() {
        let config = check(BASE, Path::new("/tmp/proxy.toml")).expect("valid");
        assert_eq!(config.security_log, None);
        let config = check(
            &format!(
                "{BASE}[security_log]\ndir = \"seclog\"\n[security_log.s3]\nbucket = \"waf-logs\"\n"
            ),
            Path::new("/tmp/proxy.toml"),
        )
        .expect("valid");
        let log = config.security_log.expect("configured");
        assert_eq!(log.dir, Path::new("/tmp/seclog"), "relative to the file");
        assert_eq!(log.rotate_every, Duration::from_secs(3600));
        assert_eq!(log.max_file_bytes, 64 << 20);
        assert_eq!(log.max_excerpt_bytes, 256);
        assert_eq!(log.queue, 10_000);
        assert_eq!(log.keep_local, Duration::from_secs(7 * 24 * 3600));
        assert_eq!(log.max_local_bytes, 1 << 30);
        let s3 = log.s3.expect("shipped");
        assert_eq!(s3.bucket, "waf-logs");
        assert_eq!(s3.prefix, DEFAULT_PREFIX);
        assert_eq!((s3.region, s3.endpoint_url), (None, None));
        assert_eq!(s3.upload_interval, Duration::from_secs(30));
        assert!(!s3.keep_uploaded);
    }

    #[test]
    fn sizes_are_numbers_or_text_and_the_prefix_gets_its_slash() {
        let config = check(
            &format!(
                "{BASE}[security_log]\ndir = \"/tmp\"\nmax_file_bytes = 1024\nmax_local_bytes = \"2m\"\n[security_log.s3]\nbucket = \"waf-logs\"\nprefix = \"edge/waf\"\n"
            ),
            Path::new("/tmp/proxy.toml"),
        )
        .expect("valid");
        let log = config.security_log.expect("configured");
        assert_eq!((log.max_file_bytes, log.max_local_bytes), (1024, 2 << 20));
        assert_eq!(log.s3.expect("shipped").prefix, "edge/waf/");
    }

    #[test]
    fn every_bad_key_is_reported_with_its_value() {
        let found = problems(
            r#"
[security_log]
rotate_every = "10s"
max_file_bytes = "huge"
max_excerpt_bytes = 0
queue = 0
keep_local = "a week"
colour = "red"
"#,
        );
        assert!(
            found.contains("security_log: unknown field `colour`"),
            "{found}"
        );
        let found = problems(
            r#"
[security_log]
dir = "/nonexistent/deeper/seclog"
rotate_every = "10s"
max_file_bytes = "huge"
max_excerpt_bytes = 0
queue = 0
keep_local = "a week"
max_local_bytes = "1k"
[security_log.s3]
bucket = "Not_A_Bucket"
prefix = "/waf/"
region = ""
endpoint_url = "localhost:9000"
upload_interval = "0s"
"#,
        );
        for expected in [
            "security_log.dir: /nonexistent/deeper/seclog does not exist",
            "security_log.rotate_every: 10s is shorter than a minute",
            "security_log.max_file_bytes: \"huge\" is not a size",
            "security_log.max_excerpt_bytes: 0 is not a size",
            "security_log.queue: 0 would drop every event",
            "security_log.keep_local: \"a week\" is not a duration",
            "security_log.max_local_bytes: 1024 bytes is less than max_file_bytes",
            "security_log.s3.bucket: \"Not_A_Bucket\" is not an S3 bucket name",
            "security_log.s3.prefix: \"/waf/\" starts with /",
            "security_log.s3.region: the region is empty",
            "security_log.s3.endpoint_url: \"localhost:9000\" is not an http",
            "security_log.s3.upload_interval: 0 would scan",
        ] {
            assert!(
                found.contains(expected),
                "{expected} missing from:\n{found}"
            );
        }
    }

    #[test]
    fn dir_and_bucket_are_required() {
        let found = problems("[security_log]\n[security_log.s3]\nprefix = \"waf/\"\n");
        assert!(
            found.contains("security_log.dir: the section has no dir"),
            "{found}"
        );
        assert!(
            found.contains("security_log.s3.bucket: the section has no bucket"),
            "{found}"
        );
    }

    #[test]
    fn bucket_names_follow_s3s_rules() {
        for good in ["waf-logs", "edge.logs.2024", "abc"] {
            assert!(is_bucket_name(good), "{good}");
        }
        for bad in ["ab", "Waf", "waf_logs", "-waf", "waf-", &"a".repeat(64)] {
            assert!(!is_bucket_name(bad), "{bad}");
        }
    }
}

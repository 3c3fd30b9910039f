//! The security log's files: events appended to
//! `security-<YYYYMMDD>-<HH>-<instance>-<seq>.jsonl.open`, renamed to `.jsonl` (closed) when
//! the UTC hour of the events changes, when the file reaches `max_file_bytes`, when it has been
//! open `rotate_every`, and at shutdown. Only closed files are shipped, so the shipper never
//! reads a file being written. A file left `.open` by a crash is closed at the next start.
//!
//! Every method takes the time from its caller, so rotation is tested with any clock.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::{SecurityEvent, SecurityLogMetrics};
use crate::config::SecurityLogConfig;

/// What a closed file's name starts with.
pub const FILE_PREFIX: &str = "security-";
/// A closed file's suffix; an open one has [`OPEN_SUFFIX`] after it.
pub const CLOSED_SUFFIX: &str = ".jsonl";
pub const OPEN_SUFFIX: &str = ".open";

#[derive(Debug, thiserror::Error)]
pub enum WriterError {
    #[error(
        "cannot create the security log directory {path}: {source}; check security_log.dir and that the proxy's user may create it"
    )]
    Directory {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "cannot write the security log file {path}: {source}; check free space and that the proxy's user may write in security_log.dir"
    )]
    File {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The file being written.
#[derive(Debug)]
struct OpenFile {
    /// With the `.open` suffix.
    path: PathBuf,
    out: BufWriter<File>,
    /// `YYYYMMDD-HH` of its events.
    hour: String,
    opened: DateTime<Utc>,
    bytes: u64,
}

/// Appends events to the current file and closes files when they are due.
#[derive(Debug)]
pub struct Writer {
    dir: PathBuf,
    instance: String,
    rotate_every: Duration,
    max_file_bytes: u64,
    max_excerpt_bytes: usize,
    /// The number of the next file this writer opens.
    next_seq: u64,
    current: Option<OpenFile>,
    metrics: SecurityLogMetrics,
    /// Logged once per failing file rather than once per event.
    failing: bool,
}

/// This process's part of file names: the host name and a run id drawn at start, so that a
/// restarted proxy never reuses a name it already shipped, and proxies of the fleet never
/// share one.
pub fn instance_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_default();
    let host: String = host
        .trim()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .take(63)
        .collect();
    let run = uuid::Uuid::new_v4().simple().to_string();
    let host = if host.is_empty() { "proxy" } else { &host };
    format!("{host}.{}", &run[..8])
}

/// `YYYYMMDD-HH` of a moment, the hour its events belong to.
pub fn hour_of(time: &DateTime<Utc>) -> String {
    time.format("%Y%m%d-%H").to_string()
}

impl Writer {
    pub fn new(config: &SecurityLogConfig, instance: &str, metrics: SecurityLogMetrics) -> Writer {
        Writer {
            dir: config.dir.clone(),
            instance: instance.to_string(),
            rotate_every: config.rotate_every,
            max_file_bytes: config.max_file_bytes,
            max_excerpt_bytes: config.max_excerpt_bytes,
            next_seq: 1,
            current: None,
            metrics,
            failing: false,
        }
    }

    /// Creates the directory and closes every file a previous run left open, dropping a last
    /// line the crash cut short (it would not parse). Empty leftovers are removed.
    pub fn recover(&mut self) {
        if let Err(err) = self.create_dir() {
            tracing::error!(error = %err, "The security log cannot be written.");
            return;
        }
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return;
        };
        for entry in entries.filter_map(Result::ok) {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(closed) = name.strip_suffix(OPEN_SUFFIX) else {
                continue;
            };
            if !name.starts_with(FILE_PREFIX) || !closed.ends_with(CLOSED_SUFFIX) {
                continue;
            }
            let path = entry.path();
            match recover_file(&path, &self.dir.join(closed)) {
                Ok(true) => tracing::info!(
                    file = %path.display(),
                    "Closed a security log file a previous run left open."
                ),
                Ok(false) => {}
                Err(err) => tracing::error!(
                    file = %path.display(),
                    error = %err,
                    "Cannot close a security log file a previous run left open; it will not be shipped."
                ),
            }
        }
    }

    fn create_dir(&self) -> Result<(), WriterError> {
        std::fs::create_dir_all(&self.dir).map_err(|source| WriterError::Directory {
            path: self.dir.clone(),
            source,
        })
    }

    /// Appends one event; a failure drops it, counts it and logs once per failing file.
    pub fn write(&mut self, event: SecurityEvent, now: DateTime<Utc>) {
        let action = event.action.as_str();
        match self.try_write(&event, now) {
            Ok(()) => {
                self.failing = false;
                self.metrics.events.with_label_values(&[action]).inc();
            }
            Err(err) => {
                self.metrics
                    .dropped
                    .with_label_values(&["write_failed"])
                    .inc();
                if !self.failing {
                    tracing::error!(error = %err, "Security events are being lost.");
                }
                self.failing = true;
                // Start afresh with the next event: the directory may come back.
                self.current = None;
            }
        }
    }

    fn try_write(&mut self, event: &SecurityEvent, now: DateTime<Utc>) -> Result<(), WriterError> {
        let hour = hour_of(&event.event_time);
        if self.current.as_ref().is_some_and(|file| file.hour != hour) {
            self.close();
        }
        let line = event.to_line(self.max_excerpt_bytes);
        if self.current.is_none() {
            self.current = Some(self.open(hour, now)?);
        }
        let Some(file) = self.current.as_mut() else {
            return Ok(());
        };
        file.out
            .write_all(&line)
            .map_err(|source| WriterError::File {
                path: file.path.clone(),
                source,
            })?;
        file.bytes += line.len() as u64;
        if file.bytes >= self.max_file_bytes {
            self.close();
        }
        Ok(())
    }

    fn open(&mut self, hour: String, now: DateTime<Utc>) -> Result<OpenFile, WriterError> {
        self.create_dir()?;
        let name = format!(
            "{FILE_PREFIX}{hour}-{}-{:06}{CLOSED_SUFFIX}{OPEN_SUFFIX}",
            self.instance, self.next_seq
        );
        self.next_seq += 1;
        let path = self.dir.join(name);
        // Client addresses and what attackers sent: not for every local user.
        let file = OpenOptions::new()
            .create_new(true)
            .append(true)
            .mode(0o640)
            .open(&path)
            .map_err(|source| WriterError::File {
                path: path.clone(),
                source,
            })?;
        Ok(OpenFile {
            path,
            out: BufWriter::new(file),
            hour,
            opened: now,
            bytes: 0,
        })
    }

    /// Makes what was written visible to readers of the open file.
    pub fn flush(&mut self) {
        if let Some(file) = self.current.as_mut()
            && let Err(err) = file.out.flush()
        {
            tracing::error!(file = %file.path.display(), error = %err, "Cannot write the security log file.");
        }
    }

    /// Closes the open file when its hour is over or it has been open long enough.
    pub fn tick(&mut self, now: DateTime<Utc>) {
        let due = self.current.as_ref().is_some_and(|file| {
            let open_for = (now - file.opened).to_std().unwrap_or_default();
            file.hour != hour_of(&now) || open_for >= self.rotate_every
        });
        if due {
            self.close();
        }
    }

    /// Flushes and renames the open file to its closed name, if one is open.
    pub fn close(&mut self) {
        let Some(mut file) = self.current.take() else {
            return;
        };
        let closed = closed_name(&file.path);
        let result = file
            .out
            .flush()
            .and_then(|()| file.out.get_ref().sync_data())
            .and_then(|()| std::fs::rename(&file.path, &closed));
        if let Err(err) = result {
            tracing::error!(file = %file.path.display(), error = %err, "Cannot close the security log file; the next start closes it.");
        }
    }

    /// The open file's path, if one is open.
    pub fn open_path(&self) -> Option<&Path> {
        self.current.as_ref().map(|file| file.path.as_path())
    }
}

fn closed_name(open: &Path) -> PathBuf {
    let name = open.to_string_lossy();
    PathBuf::from(name.strip_suffix(OPEN_SUFFIX).unwrap_or(&name))
}

/// Renames a leftover to its closed name after cutting an incomplete last line; removes it
/// when nothing whole is left. True when a file was closed.
fn recover_file(open: &Path, closed: &Path) -> std::io::Result<bool> {
    let mut file = OpenOptions::new().read(true).write(true).open(open)?;
    let whole = whole_lines_length(&mut file)?;
    if whole == 0 {
        drop(file);
        std::fs::remove_file(open)?;
        return Ok(false);
    }
    file.set_len(whole)?;
    file.sync_data()?;
    drop(file);
    std::fs::rename(open, closed)?;
    Ok(true)
}

/// The length of the file up to and including its last newline.
fn whole_lines_length(file: &mut File) -> std::io::Result<u64> {
    const CHUNK: u64 = 8 * 1024;
    let mut end = file.seek(SeekFrom::End(0))?;
    let mut buffer = vec![0; CHUNK as usize];
    while end > 0 {
        let start = end.saturating_sub(CHUNK);
        let length = (end - start) as usize;
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(&mut buffer[..length])?;
        if let Some(at) = buffer[..length].iter().rposition(|b| *b == b'\n') {
            return Ok(start + at as u64 + 1);
        }
        end = start;
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::super::tests::sample;
    use super::*;

    fn config(dir: &Path) -> SecurityLogConfig {
        SecurityLogConfig {
            dir: dir.to_path_buf(),
            rotate_every: Duration::from_secs(3600),
            max_file_bytes: 1 << 20,
            max_excerpt_bytes: 256,
            queue: 16,
            keep_local: Duration::from_secs(3600),
            max_local_bytes: 1 << 30,
            s3: None,
        }
    }

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .expect("a valid time")
            .with_timezone(&Utc)
    }

    fn event_at(text: &str) -> SecurityEvent {
        let mut event = sample();
        event.event_time = at(text);
        event
    }

    /// The directory's file names, sorted.
    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .expect("listable")
            .filter_map(Result::ok)
            .map(|entry| entry.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    fn writer(config: &SecurityLogConfig) -> Writer {
        Writer::new(config, "host.run1", SecurityLogMetrics::unregistered())
    }

    #[test]
    fn a_file_is_named_by_hour_and_closed_when_the_hour_changes() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let mut writer = writer(&config(dir.path()));
        writer.write(
            event_at("2024-05-01T13:59:58.000Z"),
            at("2024-05-01T13:59:58Z"),
        );
        writer.write(
            event_at("2024-05-01T13:59:59.000Z"),
            at("2024-05-01T13:59:59Z"),
        );
        writer.flush();
        assert_eq!(
            names(dir.path()),
            ["security-20240501-13-host.run1-000001.jsonl.open"]
        );
        // The clock alone closes it when the hour is over.
        writer.tick(at("2024-05-01T13:59:59.500Z"));
        assert!(writer.open_path().is_some());
        writer.tick(at("2024-05-01T14:00:00.100Z"));
        assert_eq!(writer.open_path(), None);
        // An event of the next hour opens the next file; one of another hour closes it.
        writer.write(
            event_at("2024-05-01T14:00:01.000Z"),
            at("2024-05-01T14:00:01Z"),
        );
        writer.write(
            event_at("2024-05-01T15:00:00.000Z"),
            at("2024-05-01T15:00:00Z"),
        );
        writer.close();
        assert_eq!(
            names(dir.path()),
            [
                "security-20240501-13-host.run1-000001.jsonl",
                "security-20240501-14-host.run1-000002.jsonl",
                "security-20240501-15-host.run1-000003.jsonl",
            ]
        );
        let first = std::fs::read_to_string(dir.path().join(&names(dir.path())[0])).expect("read");
        assert_eq!(first.lines().count(), 2);
        for line in first.lines() {
            let value: serde_json::Value = serde_json::from_str(line).expect("JSON");
            assert!(
                value["event_time"]
                    .as_str()
                    .is_some_and(|t| t.starts_with("2024-05-01T13:59:5"))
            );
        }
        let mode = std::fs::metadata(dir.path().join(&names(dir.path())[0]))
            .expect("metadata")
            .permissions()
            .mode();
        assert_eq!(mode & 0o077 & !0o040, 0, "{mode:o}: no access for others");
    }

    #[test]
    fn a_file_is_closed_at_its_size_and_its_age() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let line_length = sample().to_line(256).len() as u64;
        let mut config = config(dir.path());
        config.max_file_bytes = line_length * 2;
        config.rotate_every = Duration::from_secs(60);
        let mut writer = writer(&config);
        let now = at("2024-05-01T13:04:05.678Z");
        for _ in 0..5 {
            writer.write(sample(), now);
        }
        assert_eq!(
            names(dir.path()),
            [
                "security-20240501-13-host.run1-000001.jsonl",
                "security-20240501-13-host.run1-000002.jsonl",
                "security-20240501-13-host.run1-000003.jsonl.open",
            ]
        );
        writer.tick(now + chrono::Duration::seconds(59));
        assert!(writer.open_path().is_some());
        writer.tick(now + chrono::Duration::seconds(60));
        assert_eq!(writer.open_path(), None);
        let lines: usize = names(dir.path())
            .iter()
            .map(|name| {
                std::fs::read_to_string(dir.path().join(name))
                    .expect("read")
                    .lines()
                    .count()
            })
            .sum();
        assert_eq!(lines, 5, "nothing lost across rotations");
        assert_eq!(writer.metrics.events.with_label_values(&["block"]).get(), 5);
    }

    #[test]
    fn files_left_open_by_a_crash_are_closed_at_start() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let whole = String::from_utf8(sample().to_line(256)).expect("UTF-8");
        std::fs::write(
            dir.path()
                .join("security-20240501-13-old.run0-000001.jsonl.open"),
            format!("{whole}{whole}{{\"event_time\":\"2024-05-01T13:"),
        )
        .expect("write");
        std::fs::write(
            dir.path()
                .join("security-20240501-13-old.run0-000002.jsonl.open"),
            "{\"cut\":",
        )
        .expect("write");
        std::fs::write(dir.path().join("notes.open"), "left alone").expect("write");
        let mut writer = writer(&config(dir.path()));
        writer.recover();
        assert_eq!(
            names(dir.path()),
            ["notes.open", "security-20240501-13-old.run0-000001.jsonl"]
        );
        let text = std::fs::read_to_string(
            dir.path()
                .join("security-20240501-13-old.run0-000001.jsonl"),
        )
        .expect("read");
        assert_eq!(text, format!("{whole}{whole}"), "the cut line is dropped");
    }

    #[test]
    fn a_missing_directory_is_created_and_a_failing_one_counts_losses() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let nested = dir.path().join("security");
        let mut writer = writer(&config(&nested));
        writer.recover();
        assert!(nested.is_dir());
        std::fs::remove_dir(&nested).expect("remove");
        // The directory's place is taken by a file: nothing can be written.
        std::fs::write(&nested, "").expect("write");
        writer.write(sample(), Utc::now());
        assert_eq!(
            writer
                .metrics
                .dropped
                .with_label_values(&["write_failed"])
                .get(),
            1
        );
    }

    #[test]
    fn instance_ids_are_file_name_safe_and_differ_per_run() {
        let (one, two) = (instance_id(), instance_id());
        assert_ne!(one, two);
        assert!(
            one.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-._".contains(c)),
            "{one}"
        );
    }
}

//! Validators of a file (`ETag`, `Last-Modified`) and the conditional request headers that
//! compare against them, evaluated in the order RFC 9110 §13.2.2 gives.
//!
//! The ETag is built from the modification time and the size only. The inode would make it
//! more exact on one machine, but every instance of the web tier has its own inodes for the same
//! deployed file, and a validator that differs between instances behind the load balancer makes
//! every revalidation a full download.

use std::fs::Metadata;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::header::{IF_MATCH, IF_MODIFIED_SINCE, IF_NONE_MATCH, IF_RANGE, IF_UNMODIFIED_SINCE};
use http::{HeaderMap, Method};

/// What identifies one version of a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Validators {
    /// A strong entity-tag, quotes included.
    pub etag: String,
    /// Whole seconds: the resolution of an HTTP date, so that comparisons with the dates clients
    /// send back are exact.
    pub last_modified: Option<SystemTime>,
}

impl Validators {
    pub fn of(metadata: &Metadata) -> Validators {
        Validators::new(metadata.len(), metadata.modified().ok())
    }

    pub fn new(size: u64, modified: Option<SystemTime>) -> Validators {
        let since_epoch = modified
            .and_then(|time| time.duration_since(UNIX_EPOCH).ok())
            .unwrap_or_default();
        Validators {
            etag: format!(
                "\"{:x}.{:x}-{size:x}\"",
                since_epoch.as_secs(),
                since_epoch.subsec_nanos()
            ),
            last_modified: modified
                .map(|_| UNIX_EPOCH + Duration::from_secs(since_epoch.as_secs())),
        }
    }

    /// The `Last-Modified` value.
    pub fn last_modified_header(&self) -> Option<String> {
        self.last_modified.map(httpdate::fmt_http_date)
    }
}

/// The outcome of the preconditions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precondition {
    /// Serve the file (or the range).
    Proceed,
    /// 304: the client's copy is current.
    NotModified,
    /// 412: the client wanted a version that is not this one.
    Failed,
}

/// Evaluates `If-Match`, `If-Unmodified-Since`, `If-None-Match` and `If-Modified-Since`.
pub fn evaluate(method: &Method, headers: &HeaderMap, validators: &Validators) -> Precondition {
    if let Some(list) = header_text(headers, &IF_MATCH) {
        if !matches_list(list, &validators.etag, Comparison::Strong) {
            return Precondition::Failed;
        }
    } else if let Some(since) = header_date(headers, &IF_UNMODIFIED_SINCE)
        && validators
            .last_modified
            .is_some_and(|modified| modified > since)
    {
        return Precondition::Failed;
    }
    if let Some(list) = header_text(headers, &IF_NONE_MATCH) {
        // A match means "not modified" for GET and HEAD; If-Modified-Since is then ignored
        // either way (RFC 9110 §13.1.3).
        return if matches_list(list, &validators.etag, Comparison::Weak) {
            Precondition::NotModified
        } else {
            Precondition::Proceed
        };
    }
    let read = *method == Method::GET || *method == Method::HEAD;
    if read
        && let Some(since) = header_date(headers, &IF_MODIFIED_SINCE)
        && validators
            .last_modified
            .is_some_and(|modified| modified <= since)
    {
        return Precondition::NotModified;
    }
    Precondition::Proceed
}

/// Whether `If-Range` lets a `Range` header apply; without `If-Range` it always does. An
/// entity-tag must match strongly, a date exactly (RFC 9110 §13.1.5).
pub fn range_applies(headers: &HeaderMap, validators: &Validators) -> bool {
    let Some(value) = header_text(headers, &IF_RANGE) else {
        return true;
    };
    let value = value.trim();
    if value.starts_with('"') || value.starts_with("W/") {
        return strong_match(value, &validators.etag);
    }
    match (httpdate::parse_http_date(value), validators.last_modified) {
        (Ok(date), Some(modified)) => date == modified,
        _ => false,
    }
}

#[derive(Debug, Clone, Copy)]
enum Comparison {
    Strong,
    Weak,
}

/// Whether a list of entity-tags (or `*`) matches `ours`. A malformed list matches nothing
/// from the point where it stops parsing.
fn matches_list(list: &str, ours: &str, comparison: Comparison) -> bool {
    if list.trim() == "*" {
        return true;
    }
    let mut rest = list;
    loop {
        rest = rest.trim_start_matches([' ', '\t', ',']);
        if rest.is_empty() {
            return false;
        }
        let Some((tag, after)) = entity_tag(rest) else {
            return false;
        };
        let matched = match comparison {
            Comparison::Strong => strong_match(tag, ours),
            Comparison::Weak => opaque(tag) == opaque(ours),
        };
        if matched {
            return true;
        }
        rest = after;
    }
}

/// Splits one entity-tag (`"x"` or `W/"x"`) off the front of `text`.
fn entity_tag(text: &str) -> Option<(&str, &str)> {
    let prefix = if text.starts_with("W/") { 2 } else { 0 };
    let quoted = text.get(prefix..)?.strip_prefix('"')?;
    let close = quoted.find('"')?;
    let end = prefix + 1 + close + 1;
    Some((&text[..end], &text[end..]))
}

/// Strong comparison: both tags strong and identical.
fn strong_match(tag: &str, ours: &str) -> bool {
    !tag.starts_with("W/") && !ours.starts_with("W/") && tag == ours
}

fn opaque(tag: &str) -> &str {
    tag.strip_prefix("W/").unwrap_or(tag)
}

fn header_text<'a>(headers: &'a HeaderMap, name: &http::HeaderName) -> Option<&'a str> {
    headers.get(name).and_then(|value| value.to_str().ok())
}

/// An HTTP date; an invalid one is ignored, as RFC 9110 requires.
fn header_date(headers: &HeaderMap, name: &http::HeaderName) -> Option<SystemTime> {
    header_text(headers, name).and_then(|text| httpdate::parse_http_date(text.trim()).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Tue, 14 Nov 2023 22:13:20 GMT, plus half a second.
    fn modified() -> SystemTime {
        UNIX_EPOCH + Duration::new(1_700_000_000, 500_000_000)
    }

    fn validators() -> Validators {
        Validators::new(1234, Some(modified()))
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, value.parse().expect("header value"));
        }
        map
    }

    #[test]
    fn etag_is_strong_and_changes_with_size_and_time() {
        let ours = validators();
        assert_eq!(ours.etag, "\"6553f100.1dcd6500-4d2\"");
        assert_ne!(Validators::new(1235, Some(modified())).etag, ours.etag);
        let later = modified() + Duration::from_millis(1);
        assert_ne!(Validators::new(1234, Some(later)).etag, ours.etag);
        assert_eq!(
            ours.last_modified_header().as_deref(),
            Some("Tue, 14 Nov 2023 22:13:20 GMT")
        );
        assert_eq!(Validators::new(0, None).last_modified_header(), None);
    }

    #[test]
    fn evaluate_follows_rfc_9110_precedence() {
        use Precondition::{Failed, NotModified, Proceed};
        let ours = validators().etag;
        let weak = format!("W/{ours}");
        let listed = format!("\"other\", {ours}");
        let cases: Vec<(Vec<(&'static str, &str)>, Precondition)> = vec![
            (vec![], Proceed),
            (vec![("if-none-match", &ours)], NotModified),
            (vec![("if-none-match", &weak)], NotModified),
            (vec![("if-none-match", &listed)], NotModified),
            (vec![("if-none-match", "*")], NotModified),
            (vec![("if-none-match", "\"other\"")], Proceed),
            (vec![("if-none-match", "garbage")], Proceed),
            (vec![("if-none-match", "\"unclosed")], Proceed),
            (
                vec![("if-modified-since", "Tue, 14 Nov 2023 22:13:20 GMT")],
                NotModified,
            ),
            (
                vec![("if-modified-since", "Wed, 15 Nov 2023 00:00:00 GMT")],
                NotModified,
            ),
            (
                vec![("if-modified-since", "Tue, 14 Nov 2023 22:13:19 GMT")],
                Proceed,
            ),
            (vec![("if-modified-since", "yesterday")], Proceed),
            // If-None-Match wins over If-Modified-Since, both ways.
            (
                vec![
                    ("if-none-match", "\"other\""),
                    ("if-modified-since", "Wed, 15 Nov 2023 00:00:00 GMT"),
                ],
                Proceed,
            ),
            (
                vec![
                    ("if-none-match", &ours),
                    ("if-modified-since", "Mon, 01 Jan 2001 00:00:00 GMT"),
                ],
                NotModified,
            ),
            (vec![("if-match", &ours)], Proceed),
            (vec![("if-match", "*")], Proceed),
            (vec![("if-match", &weak)], Failed),
            (vec![("if-match", "\"other\"")], Failed),
            (
                vec![("if-unmodified-since", "Tue, 14 Nov 2023 22:13:20 GMT")],
                Proceed,
            ),
            (
                vec![("if-unmodified-since", "Tue, 14 Nov 2023 22:00:00 GMT")],
                Failed,
            ),
            // If-Match is evaluated first, and then If-Unmodified-Since is ignored.
            (
                vec![
                    ("if-match", &ours),
                    ("if-unmodified-since", "Mon, 01 Jan 2001 00:00:00 GMT"),
                ],
                Proceed,
            ),
        ];
        for (pairs, expected) in cases {
            let got = evaluate(&Method::GET, &headers(&pairs), &validators());
            assert_eq!(got, expected, "{pairs:?}");
        }
    }

    #[test]
    fn if_modified_since_only_applies_to_reads() {
        let since = headers(&[("if-modified-since", "Wed, 15 Nov 2023 00:00:00 GMT")]);
        assert_eq!(
            evaluate(&Method::HEAD, &since, &validators()),
            Precondition::NotModified
        );
        assert_eq!(
            evaluate(&Method::POST, &since, &validators()),
            Precondition::Proceed
        );
    }

    #[test]
    fn if_range_needs_a_strong_match() {
        let ours = validators().etag;
        let weak = format!("W/{ours}");
        let cases = [
            (vec![], true),
            (vec![("if-range", ours.as_str())], true),
            (vec![("if-range", weak.as_str())], false),
            (vec![("if-range", "\"other\"")], false),
            (vec![("if-range", "Tue, 14 Nov 2023 22:13:20 GMT")], true),
            (vec![("if-range", "Wed, 15 Nov 2023 00:00:00 GMT")], false),
            (vec![("if-range", "not a date")], false),
        ];
        for (pairs, expected) in cases {
            assert_eq!(
                range_applies(&headers(&pairs), &validators()),
                expected,
                "{pairs:?}"
            );
        }
    }
}

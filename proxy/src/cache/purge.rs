//! Purges: which stored objects an operator asks to remove, by exact URL or by URL prefix.
//!
//! Both are normalised the way keys are (scheme and host lowercased, default port dropped,
//! percent-encodings and query order normalised), so `HTTPS://Example.com:443/a?b=1&a=2`
//! purges what `https://example.com/a?a=2&b=1` stored.

use http::HeaderMap;
use serde::Deserialize;

use super::key::{KeyTemplate, RequestTarget};

/// What to remove.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PurgeRule {
    /// Every stored variant of this URL.
    Url(String),
    /// Everything whose URL starts with this.
    Prefix(String),
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PurgeError {
    #[error("the body is not a JSON object with \"url\" or \"prefix\": {0}")]
    Body(String),
    #[error("{0:?} is not an absolute http:// or https:// URL with a host")]
    NotAbsolute(String),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPurge {
    url: Option<String>,
    prefix: Option<String>,
}

impl PurgeRule {
    /// Reads `{"url": "…"}` or `{"prefix": "…"}`.
    pub fn from_json(body: &[u8]) -> Result<PurgeRule, PurgeError> {
        let raw: RawPurge =
            serde_json::from_slice(body).map_err(|err| PurgeError::Body(err.to_string()))?;
        match (raw.url, raw.prefix) {
            (Some(url), None) => Ok(PurgeRule::Url(normalise(&url)?)),
            (None, Some(prefix)) => Ok(PurgeRule::Prefix(normalise(&prefix)?)),
            _ => Err(PurgeError::Body(
                "give exactly one of url and prefix".into(),
            )),
        }
    }

    /// The rule as it travels in the fleet's purge log: a kind (`url`, `prefix`) and a URL.
    pub fn to_fields(&self) -> (&'static str, &str) {
        match self {
            PurgeRule::Url(url) => ("url", url),
            PurgeRule::Prefix(prefix) => ("prefix", prefix),
        }
    }

    /// Reads what [`PurgeRule::to_fields`] wrote, checking it again: the log is shared, and a
    /// malformed entry must be skipped, not obeyed.
    pub fn from_fields(kind: &str, url: &str) -> Result<PurgeRule, PurgeError> {
        match kind {
            "url" => Ok(PurgeRule::Url(normalise(url)?)),
            "prefix" => Ok(PurgeRule::Prefix(normalise(url)?)),
            other => Err(PurgeError::Body(format!(
                "{other:?} is not a kind of purge (url, prefix)"
            ))),
        }
    }

    pub fn matches(&self, url: &str) -> bool {
        match self {
            PurgeRule::Url(exact) => url == exact,
            PurgeRule::Prefix(prefix) => url.starts_with(prefix.as_str()),
        }
    }
}

fn normalise(url: &str) -> Result<String, PurgeError> {
    let not_absolute = || PurgeError::NotAbsolute(url.to_string());
    let (scheme, rest) = url.split_once("://").ok_or_else(not_absolute)?;
    let scheme = scheme.to_ascii_lowercase();
    if scheme != "http" && scheme != "https" {
        return Err(not_absolute());
    }
    let (host, path_and_query) = match rest.find('/') {
        Some(at) => rest.split_at(at),
        None => (rest, "/"),
    };
    if host.is_empty() {
        return Err(not_absolute());
    }
    let headers = HeaderMap::new();
    let target = RequestTarget {
        scheme: &scheme,
        host,
        path_and_query,
        headers: &headers,
    };
    Ok(KeyTemplate::default().primary(&target))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_normalised_like_keys() {
        let rule = PurgeRule::from_json(br#"{"url": "HTTPS://Example.com:443/a?b=1&a=2"}"#);
        let Ok(PurgeRule::Url(url)) = rule else {
            panic!("{rule:?}");
        };
        assert!(PurgeRule::Url(url).matches("https://example.com/a?a=2&b=1"));
    }

    #[test]
    fn prefixes_match_what_starts_with_them() {
        let rule = PurgeRule::from_json(br#"{"prefix": "https://example.com/assets/"}"#)
            .expect("a valid prefix purge");
        assert!(rule.matches("https://example.com/assets/app.js"));
        assert!(!rule.matches("https://example.com/api/v1"));
    }

    #[test]
    fn rules_survive_the_fleet_log() {
        for rule in [
            PurgeRule::from_json(br#"{"url": "https://example.com/a?b=1&a=2"}"#),
            PurgeRule::from_json(br#"{"prefix": "http://example.com/assets/"}"#),
        ] {
            let rule = rule.expect("a valid purge");
            let (kind, url) = rule.to_fields();
            assert_eq!(PurgeRule::from_fields(kind, url), Ok(rule.clone()));
        }
        assert!(PurgeRule::from_fields("everything", "https://example.com/").is_err());
        assert!(PurgeRule::from_fields("url", "/relative").is_err());
    }

    #[test]
    fn bad_requests_say_what_is_wrong() {
        assert!(matches!(
            PurgeRule::from_json(b"{}"),
            Err(PurgeError::Body(_))
        ));
        assert!(matches!(
            PurgeRule::from_json(br#"{"url": "/relative"}"#),
            Err(PurgeError::NotAbsolute(_))
        ));
        assert!(matches!(
            PurgeRule::from_json(br#"{"url": "ftp://x/y"}"#),
            Err(PurgeError::NotAbsolute(_))
        ));
        assert!(matches!(
            PurgeRule::from_json(b"not json"),
            Err(PurgeError::Body(_))
        ));
    }
}

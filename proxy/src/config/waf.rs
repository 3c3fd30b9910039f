//! A route's `[routes.waf]`: whether the web application firewall inspects its requests, how
//! sensitively, what it does with a match, and where free text is expected and not inspected.

use http::HeaderName;
use serde::Deserialize;

use super::cache::parse_size;
use super::check::Checker;
use crate::security::parts::PartLimits;
use crate::security::{DEFAULT_LEVEL, MAX_LEVEL};

/// What the firewall does with a request that matches a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WafMode {
    /// Answer 403 and never forward it.
    Block,
    /// Forward it, and log and count the match.
    Count,
    /// Do not inspect.
    Off,
}

impl WafMode {
    pub fn as_str(self) -> &'static str {
        match self {
            WafMode::Block => "block",
            WafMode::Count => "count",
            WafMode::Off => "off",
        }
    }
}

/// How one route's requests are inspected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteWafConfig {
    pub mode: WafMode,
    /// Sensitivity, 1 to 3, like the OWASP Core Rule Set's paranoia levels.
    pub level: u8,
    /// Path prefixes under the route that are not inspected.
    pub exclude_paths: Vec<String>,
    /// Argument names (query, form, JSON member, cookie) whose values are not inspected: the
    /// places that carry free text.
    pub exclude_args: Vec<String>,
    /// Request headers inspected besides cookies.
    pub inspect_headers: Vec<HeaderName>,
    /// Bounds on what one request costs to inspect.
    pub limits: PartLimits,
    /// Refuse a body that is not what its Content-Type says, rather than read it as text.
    pub block_malformed_body: bool,
}

impl RouteWafConfig {
    /// Whether a value found under `name` is left alone: the name itself, or the last member
    /// of a JSON path (`ticket.message` under `message`), case ignored.
    pub fn excludes_arg(&self, name: &str) -> bool {
        self.exclude_args.iter().any(|excluded| {
            name.eq_ignore_ascii_case(excluded)
                || name
                    .rsplit_once('.')
                    .is_some_and(|(_, last)| last.eq_ignore_ascii_case(excluded))
        })
    }

    pub fn excludes_path(&self, path: &str) -> bool {
        self.exclude_paths
            .iter()
            .any(|prefix| path.starts_with(prefix.as_str()))
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRouteWaf {
    pub mode: Option<String>,
    pub level: Option<u8>,
    #[serde(default)]
    pub exclude_paths: Vec<String>,
    #[serde(default)]
    pub exclude_args: Vec<String>,
    pub inspect_headers: Option<Vec<String>>,
    pub max_body: Option<String>,
    pub max_value: Option<String>,
    pub max_parts: Option<usize>,
    pub max_json_depth: Option<usize>,
    pub malformed_body: Option<String>,
}

/// Headers attacks ride in that applications commonly echo or log.
const DEFAULT_HEADERS: [&str; 2] = ["user-agent", "referer"];

impl Checker {
    pub(super) fn route_waf(&mut self, at: &str, raw: RawRouteWaf) -> RouteWafConfig {
        let mode = match raw.mode.as_deref() {
            None | Some("block") => WafMode::Block,
            Some("count") => WafMode::Count,
            Some("off") => WafMode::Off,
            Some(other) => {
                self.problem(
                    format!("{at}.mode"),
                    format!("{other:?} is not a mode"),
                    "write \"block\", \"count\" (log and let through) or \"off\"",
                );
                WafMode::Block
            }
        };
        let level = raw.level.unwrap_or(DEFAULT_LEVEL);
        if !(1..=MAX_LEVEL).contains(&level) {
            self.problem(
                format!("{at}.level"),
                format!("{level} is not a sensitivity level"),
                "write 1 (the default: few false positives), 2 or 3 (most sensitive)",
            );
        }
        for prefix in &raw.exclude_paths {
            if !prefix.starts_with('/') {
                self.problem(
                    format!("{at}.exclude_paths"),
                    format!("{prefix:?} is not a path prefix"),
                    "start it with /, like \"/api/v1/support/\"",
                );
            }
        }
        let inspect_headers = raw
            .inspect_headers
            .unwrap_or_else(|| DEFAULT_HEADERS.iter().map(|h| h.to_string()).collect())
            .iter()
            .filter_map(|name| self.header_name(&format!("{at}.inspect_headers"), name))
            .collect();
        let defaults = PartLimits::default();
        let mut size = |key: &str, value: Option<String>, default: usize| match value {
            None => default,
            Some(text) => match parse_size(&text).and_then(|n| usize::try_from(n).ok()) {
                Some(bytes) if bytes > 0 => bytes,
                _ => {
                    self.problem(
                        format!("{at}.{key}"),
                        format!("{text:?} is not a size"),
                        "write it like \"64k\" or \"1m\"",
                    );
                    default
                }
            },
        };
        let limits = PartLimits {
            max_body_bytes: size("max_body", raw.max_body, defaults.max_body_bytes),
            max_value_bytes: size("max_value", raw.max_value, defaults.max_value_bytes),
            max_parts: raw.max_parts.unwrap_or(defaults.max_parts).max(1),
            max_json_depth: raw.max_json_depth.unwrap_or(defaults.max_json_depth),
        };
        let block_malformed_body = match raw.malformed_body.as_deref() {
            None | Some("inspect") => false,
            Some("block") => true,
            Some(other) => {
                self.problem(
                    format!("{at}.malformed_body"),
                    format!("{other:?} is not a policy"),
                    "write \"inspect\" (read it as text, the default) or \"block\"",
                );
                false
            }
        };
        RouteWafConfig {
            mode,
            level: level.clamp(1, MAX_LEVEL),
            block_malformed_body,
            exclude_paths: raw.exclude_paths,
            exclude_args: raw.exclude_args,
            inspect_headers,
            limits,
        }
    }
}

//! The `[ip_sets]` section: client networks always let through (`allow`) and always refused
//! (`deny`), written in the configuration or in files of one network per line.

use std::path::PathBuf;

use ipnet::IpNet;
use serde::Deserialize;

use super::check::Checker;
use crate::security::ipsets::parse_network;

/// The configured networks of both lists.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IpSetsConfig {
    pub allow: Vec<IpNet>,
    pub deny: Vec<IpNet>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIpSets {
    #[serde(default)]
    allow: Vec<String>,
    #[serde(default)]
    deny: Vec<String>,
    #[serde(default)]
    allow_files: Vec<PathBuf>,
    #[serde(default)]
    deny_files: Vec<PathBuf>,
}

impl Checker {
    pub(super) fn ip_sets(&mut self, value: Option<toml::Value>) -> IpSetsConfig {
        let Some(raw) = self.section::<RawIpSets>("ip_sets", value) else {
            return IpSetsConfig::default();
        };
        let mut lists = IpSetsConfig::default();
        for (key, written, files, into) in [
            ("allow", raw.allow, raw.allow_files, &mut lists.allow),
            ("deny", raw.deny, raw.deny_files, &mut lists.deny),
        ] {
            for text in written {
                match parse_network(&text) {
                    Some(network) => into.push(network),
                    None => self.problem(
                        format!("ip_sets.{key}"),
                        format!("{text:?} is not an address or a network"),
                        "write an IPv4 or IPv6 address, or a CIDR like \"203.0.113.0/24\"",
                    ),
                }
            }
            for path in files {
                let location = format!("ip_sets.{key}_files");
                let text = match std::fs::read_to_string(&path) {
                    Ok(text) => text,
                    Err(err) => {
                        self.problem(
                            location,
                            format!("cannot read {}: {err}", path.display()),
                            "give the proxy's user read access to the file or fix the path",
                        );
                        continue;
                    }
                };
                for (number, line) in text.lines().enumerate() {
                    let line = line.split('#').next().unwrap_or("").trim();
                    if line.is_empty() {
                        continue;
                    }
                    match parse_network(line) {
                        Some(network) => into.push(network),
                        None => self.problem(
                            format!("{} line {}", path.display(), number + 1),
                            format!("{line:?} is not an address or a network"),
                            "write one address or CIDR per line; # starts a comment",
                        ),
                    }
                }
            }
        }
        lists
    }
}

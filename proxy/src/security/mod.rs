//! The proxy's web application firewall: what in a request looks like an attack.
//!
//! `decode` undoes the encodings attacks hide behind; `sqli` and `xss` read the decoded value
//! for SQL injection and cross-site scripting, each rule with an id and the sensitivity
//! (1 to 3, like the OWASP Core Rule Set's paranoia levels) from which it applies. They are
//! pure functions of a value, so every rule is tested on its own and measured against the
//! corpus in `bench/waf-corpus`.

pub mod autoblock;
pub mod decode;
pub mod guard;
pub mod ipsets;
pub mod parts;
pub mod ratelimit;
pub mod sqli;
pub mod xss;

/// The sensitivity routes get unless they say otherwise.
pub const DEFAULT_LEVEL: u8 = 1;
/// The most sensitive level; higher numbers read as this.
pub const MAX_LEVEL: u8 = 3;

/// The kind of attack a rule looks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    Sqli,
    Xss,
    /// The request's own form: a body that is not what its Content-Type says.
    Protocol,
}

impl Family {
    pub fn as_str(self) -> &'static str {
        match self {
            Family::Sqli => "sqli",
            Family::Xss => "xss",
            Family::Protocol => "protocol",
        }
    }
}

/// A rule that matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Finding {
    pub family: Family,
    pub rule: u32,
}

/// Every rule: id, the level from which it applies, what it looks for.
pub fn rules() -> impl Iterator<Item = (Family, u32, u8, &'static str)> {
    let sqli = sqli::RULES
        .iter()
        .map(|rule| (Family::Sqli, rule.id, rule.level, rule.what));
    let xss = xss::RULES
        .iter()
        .map(|(id, level, what)| (Family::Xss, *id, *level, *what));
    let protocol = std::iter::once((
        Family::Protocol,
        MALFORMED_BODY_RULE,
        1,
        "a body that is not what its Content-Type says (broken JSON, multipart without its boundary)",
    ));
    sqli.chain(xss).chain(protocol)
}

/// The rule a malformed body matches on routes whose policy refuses one.
pub const MALFORMED_BODY_RULE: u32 = 100_100;
/// The security log's rule id of a request refused by a rate limit.
pub const RATE_LIMIT_RULE: u32 = 200_100;
/// The security log's rule id of a request refused because its client is on the deny list.
pub const DENY_LIST_RULE: u32 = 300_100;
/// The security log's rule id of the request that put its client on the deny list.
pub const AUTO_BLOCK_RULE: u32 = 300_200;

/// A finding with where in the request it was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Detection {
    pub finding: Finding,
    pub location: parts::Location,
    /// The argument, cookie, header or JSON path; empty for the path and a whole body.
    pub name: String,
    /// The start of the matched value, for the security log.
    pub excerpt: String,
}

/// How much of a matched value the security log keeps.
const EXCERPT_CHARS: usize = 120;

/// The first finding in `request` at `level` among the parts not `excluded`, and whether its
/// body was malformed.
pub fn inspect_request(
    request: &parts::Request<'_>,
    limits: &parts::PartLimits,
    level: u8,
    excluded: impl Fn(&parts::Part<'_>) -> bool,
) -> (Option<Detection>, Option<parts::Malformed>) {
    let (found, malformed) = parts::parts(request, limits);
    let detection = found
        .iter()
        .filter(|part| !excluded(part))
        .find_map(|part| {
            let finding = inspect_value(&part.value, level)?;
            Some(Detection {
                finding,
                location: part.location,
                name: part.name.to_string(),
                excerpt: part.value.chars().take(EXCERPT_CHARS).collect(),
            })
        });
    (detection, malformed)
}

/// The first finding in one value (as received, before decoding) at `level`.
pub fn inspect_value(value: &str, level: u8) -> Option<Finding> {
    let level = level.min(MAX_LEVEL);
    let decoded = decode::normalize(value);
    sqli::detect(&decoded, level).or_else(|| xss::detect(&decoded, level))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_ids_are_unique_across_families() {
        let mut ids: Vec<u32> = rules().map(|(_, id, _, _)| id).collect();
        let count = ids.len();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), count);
        assert!(rules().all(|(_, _, level, _)| (1..=MAX_LEVEL).contains(&level)));
    }

    #[test]
    fn a_value_is_decoded_before_it_is_read() {
        let finding = inspect_value("%3Cscript%3E", DEFAULT_LEVEL).expect("xss");
        assert_eq!(finding.family, Family::Xss);
        let finding = inspect_value("1%2527%20or%20%25271%2527%3D%25271", DEFAULT_LEVEL);
        assert_eq!(finding.map(|f| f.family), Some(Family::Sqli));
        assert_eq!(inspect_value("Jean-Luc O'Brien", DEFAULT_LEVEL), None);
    }
}

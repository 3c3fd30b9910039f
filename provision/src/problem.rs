//! A problem found by `check`: where it is and what is wrong, in words an operator can act on.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// `file:line`, `file`, or a stack and parameter.
    pub location: String,
    pub message: String,
}

impl Problem {
    pub fn new(location: impl Into<String>, message: impl Into<String>) -> Problem {
        Problem {
            location: location.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.location, self.message)
    }
}

/// The candidate closest to `word`, when it is close enough to be what was meant: the same
/// letters in another case, or a small edit away relative to the length.
pub fn nearest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let lower = word.to_ascii_lowercase();
    let mut best: Option<(&str, f64)> = None;
    for candidate in candidates {
        if candidate == word {
            continue;
        }
        let score = if candidate.to_ascii_lowercase() == lower {
            1.0
        } else {
            strsim::normalized_damerau_levenshtein(&lower, &candidate.to_ascii_lowercase())
                .max(strsim::jaro_winkler(&lower, &candidate.to_ascii_lowercase()) - 0.15)
        };
        if score >= 0.7 && best.is_none_or(|(_, s)| score > s) {
            best = Some((candidate, score));
        }
    }
    best.map(|(c, _)| c)
}

#[cfg(test)]
mod tests {
    use super::nearest;

    #[test]
    fn suggests_close_names_only() {
        let names = ["VpcCidr", "VpcId", "WebAmiId", "AppAmiId", "AlertEmail"];
        assert_eq!(nearest("VpcCdir", names), Some("VpcCidr"));
        assert_eq!(nearest("vpccidr", names), Some("VpcCidr"));
        assert_eq!(nearest("WebAmi", names), Some("WebAmiId"));
        assert_eq!(nearest("AlertsEmail", names), Some("AlertEmail"));
        assert_eq!(nearest("DatabaseInstanceClass", names), None);
        assert_eq!(nearest("Zzz", names), None);
    }
}

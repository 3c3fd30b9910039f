//! Reading and checking form fields: every problem is kept with the field it belongs to, so
//! that the page shows it next to that field, with what the operator typed still in place.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDateTime, Utc};

/// A submitted form: field name to value (the first value of a repeated field).
#[derive(Debug, Clone, Default)]
pub struct Fields(pub BTreeMap<String, String>);

impl Fields {
    pub fn from_pairs(pairs: Vec<(String, String)>) -> Fields {
        let mut map = BTreeMap::new();
        for (name, value) in pairs {
            map.entry(name).or_insert(value);
        }
        Fields(map)
    }

    /// The trimmed value, empty when absent.
    pub fn get(&self, name: &str) -> &str {
        self.0.get(name).map_or("", |value| value.trim())
    }
}

/// The problems found in a form, by field.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Problems(pub BTreeMap<String, String>);

impl Problems {
    pub fn add(&mut self, field: &str, message: impl Into<String>) {
        self.0
            .entry(field.to_owned())
            .or_insert_with(|| message.into());
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn of(&self, field: &str) -> Option<&str> {
        self.0.get(field).map(String::as_str)
    }
}

/// Reads typed values out of [`Fields`], noting each problem in [`Problems`].
#[derive(Debug)]
pub struct Reader<'a> {
    pub fields: &'a Fields,
    pub problems: Problems,
}

impl<'a> Reader<'a> {
    pub fn new(fields: &'a Fields) -> Reader<'a> {
        Reader {
            fields,
            problems: Problems::default(),
        }
    }

    /// A whole number within `min..=max`; `None` when absent and not `required`.
    pub fn int(&mut self, name: &str, min: i64, max: i64, required: bool) -> Option<i64> {
        let text = self.fields.get(name);
        if text.is_empty() {
            if required {
                self.problems.add(name, "Enter a number.");
            }
            return None;
        }
        match text.parse::<i64>() {
            Ok(value) if (min..=max).contains(&value) => Some(value),
            Ok(_) => {
                self.problems
                    .add(name, format!("Enter a number from {min} to {max}."));
                None
            }
            Err(_) => {
                self.problems
                    .add(name, format!("“{}” is not a whole number.", shorten(text)));
                None
            }
        }
    }

    /// A number within `min..=max` with at most one decimal.
    pub fn decimal(&mut self, name: &str, min: f64, max: f64) -> Option<f64> {
        let text = self.fields.get(name);
        if text.is_empty() {
            self.problems.add(name, "Enter a number.");
            return None;
        }
        match text.parse::<f64>() {
            Ok(value) if value.is_finite() && (min..=max).contains(&value) => {
                let tenths = (value * 10.0).round() / 10.0;
                if (tenths - value).abs() > 1e-9 {
                    self.problems
                        .add(name, "Use at most one decimal, such as 16.5.");
                    None
                } else {
                    Some(tenths)
                }
            }
            Ok(_) => {
                self.problems
                    .add(name, format!("Enter a number from {min} to {max}."));
                None
            }
            Err(_) => {
                self.problems
                    .add(name, format!("“{}” is not a number.", shorten(text)));
                None
            }
        }
    }

    /// Text of 1 to `max` characters without control characters; `None` when absent and not
    /// `required`.
    pub fn text(&mut self, name: &str, max: usize, required: bool) -> Option<String> {
        let text = self.fields.get(name);
        if text.is_empty() {
            if required {
                self.problems.add(name, "This is required.");
            }
            return None;
        }
        if text.chars().count() > max {
            self.problems
                .add(name, format!("Use at most {max} characters."));
            return None;
        }
        if text.chars().any(char::is_control) {
            self.problems.add(name, "Remove the control characters.");
            return None;
        }
        Some(text.to_owned())
    }

    /// One of `T::ALL`'s spellings.
    pub fn choice<T: std::str::FromStr>(&mut self, name: &str, required: bool) -> Option<T> {
        let text = self.fields.get(name);
        if text.is_empty() {
            if required {
                self.problems.add(name, "Choose one.");
            }
            return None;
        }
        match text.parse::<T>() {
            Ok(value) => Some(value),
            Err(_) => {
                self.problems.add(
                    name,
                    format!("“{}” is not one of the choices.", shorten(text)),
                );
                None
            }
        }
    }

    /// An instant: RFC 3339, or a `datetime-local` value read as UTC.
    pub fn instant(&mut self, name: &str, required: bool) -> Option<DateTime<Utc>> {
        let text = self.fields.get(name);
        if text.is_empty() {
            if required {
                self.problems.add(name, "Enter a date and time (UTC).");
            }
            return None;
        }
        if let Ok(at) = DateTime::parse_from_rfc3339(text) {
            return Some(at.with_timezone(&Utc));
        }
        for format in ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"] {
            if let Ok(at) = NaiveDateTime::parse_from_str(text, format) {
                return Some(at.and_utc());
            }
        }
        self.problems.add(
            name,
            format!(
                "“{}” is not a date and time such as 2025-06-01T10:00 (UTC).",
                shorten(text)
            ),
        );
        None
    }

    /// An absolute `http`, `https`, `ftp` or `ftps` URL.
    pub fn url(&mut self, name: &str, required: bool) -> Option<String> {
        let text = self.text(name, 512, required)?;
        let scheme_ok = ["http://", "https://", "ftp://", "ftps://"]
            .iter()
            .any(|scheme| text.to_ascii_lowercase().starts_with(scheme));
        if !scheme_ok || text.contains(char::is_whitespace) {
            self.problems.add(
                name,
                "Enter an absolute URL starting with http://, https://, ftp:// or ftps://.",
            );
            return None;
        }
        Some(text)
    }
}

/// At most 40 characters of what someone typed, for messages.
pub fn shorten(text: &str) -> String {
    match text.char_indices().nth(40) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(pairs: &[(&str, &str)]) -> Fields {
        Fields::from_pairs(
            pairs
                .iter()
                .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
                .collect(),
        )
    }

    #[test]
    fn each_problem_names_its_field() {
        let form = fields(&[
            ("a", "12"),
            ("b", "x"),
            ("c", "99"),
            ("d", "2025-06-01T10:00"),
            ("e", "16.55"),
            ("u", "javascript:alert(1)"),
        ]);
        let mut r = Reader::new(&form);
        assert_eq!(r.int("a", 0, 20, true), Some(12));
        assert_eq!(r.int("b", 0, 20, true), None);
        assert_eq!(r.int("c", 0, 20, true), None);
        assert_eq!(r.int("missing", 0, 20, false), None);
        assert_eq!(
            r.instant("d", true).map(|at| at.to_rfc3339()),
            Some("2025-06-01T10:00:00+00:00".into())
        );
        assert_eq!(r.decimal("e", 0.0, 100.0), None);
        assert_eq!(r.url("u", true), None);
        assert_eq!(r.problems.of("b"), Some("“x” is not a whole number."));
        assert_eq!(r.problems.of("c"), Some("Enter a number from 0 to 20."));
        assert!(r.problems.of("e").is_some());
        assert!(r.problems.of("u").is_some());
        assert_eq!(r.problems.of("missing"), None);
    }
}

//! Typed reading of merged configuration layers, collecting every error instead of stopping at
//! the first, and recording the effective value and source of each key for `config check`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use secrecy::SecretString;

use super::ConfigError;
use super::layers::{Layers, RawValue, Source};

/// A type that a configuration value can be read as.
pub trait ConfigValue: Sized {
    /// Words for the expected form, used in error messages ("a port number", "a duration like 5s").
    const EXPECTED: &'static str;
    /// Whether the value must never be printed.
    const SECRET: bool = false;

    fn from_text(text: &str) -> Result<Self, String>;

    fn from_toml(value: &toml::Value) -> Result<Self, String> {
        match value {
            toml::Value::String(text) => Self::from_text(text),
            other => Self::from_text(&other.to_string()),
        }
    }

    /// How the value is shown by `config check`.
    fn display(&self) -> String;
}

/// One line of the effective configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EffectiveValue {
    pub key: String,
    /// The value as shown to people: secrets are replaced by `"<redacted>"`.
    pub shown: String,
    pub source: Source,
}

/// Reads keys from [`Layers`], accumulating errors and the effective configuration.
#[derive(Debug)]
pub struct Reader<'a> {
    layers: &'a Layers,
    errors: Vec<ConfigError>,
    effective: Vec<EffectiveValue>,
    known: Vec<String>,
}

impl<'a> Reader<'a> {
    pub fn new(layers: &'a Layers) -> Self {
        Reader {
            layers,
            errors: Vec::new(),
            effective: Vec::new(),
            known: Vec::new(),
        }
    }

    /// Reads `key`, falling back to `default` when no source sets it.
    pub fn value<T: ConfigValue>(&mut self, key: &str, default: T) -> T {
        match self.parse::<T>(key) {
            Some(value) => value,
            None => {
                self.record(key, display_of(&default), Source::Default);
                default
            }
        }
    }

    /// Reads `key` that has no default; `None` when no source sets it (or it is empty text).
    pub fn optional<T: ConfigValue>(&mut self, key: &str) -> Option<T> {
        let value = self.parse::<T>(key);
        if value.is_none() && !self.effective.iter().any(|e| e.key == key) {
            self.record(key, "(unset)".into(), Source::Default);
        }
        value
    }

    /// Reports a problem with a key that was read successfully but fails a cross-key rule.
    pub fn invalid(&mut self, key: &str, problem: impl Into<String>, fix: impl Into<String>) {
        let entry = self.layers.get(key);
        self.errors.push(ConfigError {
            key: key.to_string(),
            source: entry.map_or(Source::Default, |e| e.source.clone()),
            value: self
                .effective
                .iter()
                .find(|e| e.key == key)
                .map(|e| e.shown.clone()),
            problem: problem.into(),
            fix: fix.into(),
        });
    }

    /// Finishes reading: every key some source set but nobody read is reported as unknown.
    pub fn finish(mut self) -> (Vec<EffectiveValue>, Vec<ConfigError>) {
        for key in self.layers.keys() {
            if self.known.iter().any(|known| known == key) {
                continue;
            }
            let entry = self.layers.get(key);
            let suggestion = closest(key, &self.known);
            self.errors.push(ConfigError {
                key: key.to_string(),
                source: entry.map_or(Source::Default, |e| e.source.clone()),
                value: None,
                problem: "unknown configuration key".into(),
                fix: match suggestion {
                    Some(known) => format!("did you mean `{known}`? otherwise remove it"),
                    None => "remove it; README.md lists every key".into(),
                },
            });
        }
        (self.effective, self.errors)
    }

    fn parse<T: ConfigValue>(&mut self, key: &str) -> Option<T> {
        self.known.push(key.to_string());
        let entry = self.layers.get(key)?;
        let parsed = match &entry.value {
            RawValue::Toml(value) => T::from_toml(value),
            RawValue::Text(text) if text.trim().is_empty() => return None,
            RawValue::Text(text) => T::from_text(text.trim()),
        };
        match parsed {
            Ok(value) => {
                self.record(key, display_of(&value), entry.source.clone());
                Some(value)
            }
            Err(problem) => {
                let shown = if T::SECRET {
                    "<redacted>".to_string()
                } else {
                    match &entry.value {
                        RawValue::Toml(value) => value.to_string(),
                        RawValue::Text(text) => format!("{text:?}"),
                    }
                };
                self.errors.push(ConfigError {
                    key: key.to_string(),
                    source: entry.source.clone(),
                    value: Some(shown),
                    problem,
                    fix: format!("set it to {}", T::EXPECTED),
                });
                None
            }
        }
    }

    fn record(&mut self, key: &str, shown: String, source: Source) {
        self.effective.retain(|e| e.key != key);
        self.effective.push(EffectiveValue {
            key: key.to_string(),
            shown,
            source,
        });
    }
}

fn display_of<T: ConfigValue>(value: &T) -> String {
    if T::SECRET {
        "<redacted>".into()
    } else {
        value.display()
    }
}

/// The known key nearest to a misspelt one, if it is close enough to be a likely typo.
fn closest<'k>(key: &str, known: &'k [String]) -> Option<&'k str> {
    known
        .iter()
        .map(|candidate| (edit_distance(key, candidate), candidate.as_str()))
        .filter(|(distance, _)| *distance <= 3)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| candidate)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != *cb);
            current.push(substitution.min(previous[j + 1] + 1).min(current[j] + 1));
        }
        previous = current;
    }
    previous[b.len()]
}

impl ConfigValue for String {
    const EXPECTED: &'static str = "text";
    fn from_text(text: &str) -> Result<Self, String> {
        Ok(text.to_string())
    }
    fn from_toml(value: &toml::Value) -> Result<Self, String> {
        match value {
            toml::Value::String(text) => Ok(text.clone()),
            other => Err(format!("expected text, found {}", other.type_str())),
        }
    }
    fn display(&self) -> String {
        format!("{self:?}")
    }
}

impl ConfigValue for PathBuf {
    const EXPECTED: &'static str = "a file system path";
    fn from_text(text: &str) -> Result<Self, String> {
        Ok(PathBuf::from(text))
    }
    fn from_toml(value: &toml::Value) -> Result<Self, String> {
        match value {
            toml::Value::String(text) => Ok(PathBuf::from(text)),
            other => Err(format!("expected a path, found {}", other.type_str())),
        }
    }
    fn display(&self) -> String {
        format!("{:?}", Path::new(self).display().to_string())
    }
}

impl ConfigValue for SecretString {
    const EXPECTED: &'static str = "text (kept secret)";
    const SECRET: bool = true;
    fn from_text(text: &str) -> Result<Self, String> {
        Ok(SecretString::from(text.to_string()))
    }
    fn from_toml(value: &toml::Value) -> Result<Self, String> {
        match value {
            toml::Value::String(text) => Ok(SecretString::from(text.clone())),
            other => Err(format!("expected text, found {}", other.type_str())),
        }
    }
    fn display(&self) -> String {
        "<redacted>".into()
    }
}

impl ConfigValue for bool {
    const EXPECTED: &'static str = "true or false";
    fn from_text(text: &str) -> Result<Self, String> {
        match text.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Ok(true),
            "false" | "0" | "no" | "off" => Ok(false),
            _ => Err(format!("`{text}` is not a boolean")),
        }
    }
    fn from_toml(value: &toml::Value) -> Result<Self, String> {
        match value {
            toml::Value::Boolean(flag) => Ok(*flag),
            toml::Value::String(text) => Self::from_text(text),
            other => Err(format!(
                "expected true or false, found {}",
                other.type_str()
            )),
        }
    }
    fn display(&self) -> String {
        self.to_string()
    }
}

macro_rules! integer_config_value {
    ($($ty:ty => $expected:literal),* $(,)?) => {$(
        impl ConfigValue for $ty {
            const EXPECTED: &'static str = $expected;
            fn from_text(text: &str) -> Result<Self, String> {
                text.parse::<$ty>().map_err(|err| format!("`{text}` is not {}: {err}", $expected))
            }
            fn display(&self) -> String {
                self.to_string()
            }
        }
    )*};
}

integer_config_value!(
    u16 => "a whole number from 0 to 65535",
    u32 => "a whole number from 0 to 4294967295",
    u64 => "a non-negative whole number",
);

impl ConfigValue for SocketAddr {
    const EXPECTED: &'static str = "an address with a port, like 127.0.0.1:8101 or [::]:8101";
    fn from_text(text: &str) -> Result<Self, String> {
        SocketAddr::from_str(text).map_err(|_| format!("`{text}` is not an IP address with a port"))
    }
    fn display(&self) -> String {
        format!("{:?}", self.to_string())
    }
}

impl ConfigValue for Duration {
    const EXPECTED: &'static str = "a duration like \"500ms\", \"5s\" or \"2m\"";
    fn from_text(text: &str) -> Result<Self, String> {
        humantime::parse_duration(text).map_err(|err| format!("`{text}` is not a duration: {err}"))
    }
    fn from_toml(value: &toml::Value) -> Result<Self, String> {
        match value {
            toml::Value::String(text) => Self::from_text(text),
            toml::Value::Integer(_) => Err(format!(
                "`{value}` has no unit; write it as a string with one, like \"{value}s\""
            )),
            other => Err(format!("expected a duration, found {}", other.type_str())),
        }
    }
    fn display(&self) -> String {
        format!("{:?}", humantime::format_duration(*self).to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layers(toml: &str) -> Layers {
        Layers::from_toml_str(toml, Source::File("t.toml".into())).expect("valid toml")
    }

    #[test]
    fn every_bad_key_is_reported_at_once() {
        let layers = layers("a = \"x\"\nb = \"soon\"\nc = 70000\ndatabse = 1\n");
        let mut reader = Reader::new(&layers);
        let _ = reader.value::<bool>("a", false);
        let _ = reader.value::<Duration>("b", Duration::from_secs(1));
        let _ = reader.value::<u16>("c", 1);
        let _ = reader.value::<u16>("database", 1);
        let (_, errors) = reader.finish();
        let keys: Vec<_> = errors.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(keys, ["a", "b", "c", "databse"]);
        assert!(
            errors[3].fix.contains("did you mean `database`"),
            "{}",
            errors[3]
        );
    }

    #[test]
    fn secrets_are_redacted_in_errors_and_effective_values() {
        let layers = layers("s = \"hunter2\"\nt = 5\n");
        let mut reader = Reader::new(&layers);
        let _ = reader.optional::<SecretString>("s");
        let _ = reader.optional::<SecretString>("t");
        let (effective, errors) = reader.finish();
        assert_eq!(effective[0].shown, "<redacted>");
        assert_eq!(errors[0].value.as_deref(), Some("<redacted>"));
        assert!(!format!("{effective:?}{errors:?}").contains("hunter2"));
    }

    #[test]
    fn durations_need_a_unit() {
        assert!(Duration::from_toml(&toml::Value::Integer(5)).is_err());
        assert_eq!(Duration::from_text("250ms"), Ok(Duration::from_millis(250)));
    }
}

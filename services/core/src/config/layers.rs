//! The raw layers of configuration and where each value came from.
//!
//! Every source (the TOML file, SSM Parameter Store, environment variables) is flattened into
//! dotted keys (`database.url`) before anything is typed, so that a later source overrides an
//! earlier one key by key and every value keeps the name of the place it was read from. The typed
//! [`Settings`](super::Settings) are read from the merged layers by [`super::reader`].

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use super::{ConfigError, ConfigErrors};

/// Prefix of the environment variables that configure voltfleet: `VOLTFLEET__SECTION__KEY`.
pub const ENV_PREFIX: &str = "VOLTFLEET__";

/// Where a configuration value was read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The built-in default.
    Default,
    /// A TOML configuration file.
    File(PathBuf),
    /// An AWS SSM Parameter Store parameter (its full name).
    Ssm(String),
    /// An environment variable (its name).
    Env(String),
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Default => f.write_str("default"),
            Source::File(path) => write!(f, "file {}", path.display()),
            Source::Ssm(name) => write!(f, "SSM parameter {name}"),
            Source::Env(name) => write!(f, "environment variable {name}"),
        }
    }
}

/// A value as it stands in its source, before it is given a type.
#[derive(Debug, Clone, PartialEq)]
pub enum RawValue {
    /// A typed TOML value from the configuration file.
    Toml(toml::Value),
    /// Text from SSM or the environment, parsed when the key's type is known.
    Text(String),
}

/// One key's value and its origin.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub value: RawValue,
    pub source: Source,
}

/// Flattened configuration keys from all sources, later sources overriding earlier ones.
#[derive(Debug, Default, Clone)]
pub struct Layers {
    entries: BTreeMap<String, Entry>,
}

impl Layers {
    /// Sets `key`, replacing what an earlier source said.
    pub fn set(&mut self, key: impl Into<String>, value: RawValue, source: Source) {
        self.entries.insert(key.into(), Entry { value, source });
    }

    pub fn get(&self, key: &str) -> Option<&Entry> {
        self.entries.get(key)
    }

    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.entries.keys().map(String::as_str)
    }

    /// Adds every value of `other` on top of this layer.
    pub fn overlay(&mut self, other: Layers) {
        self.entries.extend(other.entries);
    }

    /// Reads a TOML file and flattens its tables into dotted keys.
    pub fn from_toml_file(path: &Path) -> Result<Layers, ConfigErrors> {
        let source = Source::File(path.to_path_buf());
        let text = std::fs::read_to_string(path).map_err(|err| {
            ConfigErrors(vec![ConfigError {
                key: String::new(),
                source: source.clone(),
                value: None,
                problem: format!("cannot read the configuration file: {err}"),
                fix: "check the path given with -c/--config and that the file is readable".into(),
            }])
        })?;
        Self::from_toml_str(&text, source)
    }

    /// Parses TOML text and flattens it; `source` names it in errors.
    pub fn from_toml_str(text: &str, source: Source) -> Result<Layers, ConfigErrors> {
        let table: toml::Table = text.parse().map_err(|err: toml::de::Error| {
            ConfigErrors(vec![ConfigError {
                key: String::new(),
                source: source.clone(),
                value: None,
                problem: format!("invalid TOML: {}", err.message()),
                fix: match err.span() {
                    Some(span) => {
                        let line = text[..span.start].lines().count().max(1);
                        format!("correct the syntax near line {line}")
                    }
                    None => "correct the TOML syntax".into(),
                },
            }])
        })?;
        let mut layers = Layers::default();
        flatten_table("", &table, &source, &mut layers);
        Ok(layers)
    }

    /// Collects `VOLTFLEET__SECTION__KEY` variables: `VOLTFLEET__DATABASE__URL` sets `database.url`.
    pub fn from_env(vars: impl IntoIterator<Item = (String, String)>) -> Layers {
        let mut layers = Layers::default();
        for (name, value) in vars {
            let Some(rest) = name.strip_prefix(ENV_PREFIX) else {
                continue;
            };
            let key = rest
                .split("__")
                .map(str::to_ascii_lowercase)
                .collect::<Vec<_>>()
                .join(".");
            layers.set(key, RawValue::Text(value), Source::Env(name));
        }
        layers
    }

    /// Turns SSM parameters under `path` into keys: `<path>/database/url` sets `database.url`.
    pub fn from_ssm_parameters(
        path: &str,
        parameters: impl IntoIterator<Item = (String, String)>,
    ) -> Layers {
        let prefix = path.trim_end_matches('/');
        let mut layers = Layers::default();
        for (name, value) in parameters {
            let Some(rest) = name.strip_prefix(prefix) else {
                continue;
            };
            let key = rest
                .trim_matches('/')
                .split('/')
                .filter(|part| !part.is_empty())
                .collect::<Vec<_>>()
                .join(".");
            if !key.is_empty() {
                layers.set(key, RawValue::Text(value), Source::Ssm(name));
            }
        }
        layers
    }
}

fn flatten_table(prefix: &str, table: &toml::Table, source: &Source, layers: &mut Layers) {
    for (name, value) in table {
        let key = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{prefix}.{name}")
        };
        match value {
            toml::Value::Table(inner) => flatten_table(&key, inner, source, layers),
            other => layers.set(key, RawValue::Toml(other.clone()), source.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_variables_map_to_dotted_lowercase_keys() {
        let layers = Layers::from_env([
            (
                "VOLTFLEET__DATABASE__URL".to_string(),
                "mysql://x".to_string(),
            ),
            ("VOLTFLEET__DATA_DIR".to_string(), "/srv".to_string()),
            ("PATH".to_string(), "/bin".to_string()),
        ]);
        let keys: Vec<_> = layers.keys().collect();
        assert_eq!(keys, ["data_dir", "database.url"]);
        assert_eq!(
            layers.get("database.url").map(|e| e.source.clone()),
            Some(Source::Env("VOLTFLEET__DATABASE__URL".into()))
        );
    }

    #[test]
    fn ssm_parameter_names_below_the_path_become_keys() {
        let layers = Layers::from_ssm_parameters(
            "/voltfleet/prod/",
            [
                (
                    "/voltfleet/prod/redis/url".to_string(),
                    "redis://r".to_string(),
                ),
                ("/voltfleet/prod/data_dir".to_string(), "/d".to_string()),
                ("/other/thing".to_string(), "x".to_string()),
            ],
        );
        let keys: Vec<_> = layers.keys().collect();
        assert_eq!(keys, ["data_dir", "redis.url"]);
    }

    #[test]
    fn toml_tables_are_flattened() {
        let layers = Layers::from_toml_str(
            "data_dir = \"/x\"\n[database]\nmax_connections = 4\n",
            Source::File("a.toml".into()),
        )
        .expect("valid toml");
        assert_eq!(
            layers.get("database.max_connections").map(|e| &e.value),
            Some(&RawValue::Toml(toml::Value::Integer(4)))
        );
    }

    #[test]
    fn toml_syntax_errors_name_the_line() {
        let err = Layers::from_toml_str("a = 1\nb = = 2\n", Source::File("bad.toml".into()))
            .expect_err("invalid toml");
        assert!(err.to_string().contains("line 2"), "{err}");
    }
}

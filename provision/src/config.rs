//! The two files the deploy command reads besides the templates: `stacks.json` (the stacks, in
//! order) and an environment file (`environments/<env>.json`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use regex::Regex;
use serde_json::Value;

use crate::problem::{Problem, nearest};

/// The environments a deployment can be.
pub const ENVIRONMENTS: &[&str] = &["staging", "production"];

/// Tags the deploy command sets itself on every stack.
pub const RESERVED_TAGS: &[&str] = &["Project", "Environment", "Stack"];

/// One entry of `stacks.json`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StackEntry {
    pub name: String,
    /// As written, relative to the directory of `stacks.json`.
    pub template: String,
    /// A fixed region (`us-east-1` for what CloudFront needs), else the environment's.
    pub region: Option<String>,
}

/// `eu-west-1`, `us-gov-west-1`, `ap-southeast-3`, …
pub fn is_region(text: &str) -> bool {
    static REGION: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"^[a-z]{2}(-[a-z]+)+-\d{1,2}$").expect("constant pattern"));
    REGION.is_match(text)
}

fn json_error(path: &Path, e: &serde_json::Error) -> Problem {
    // The position leads the problem; serde_json's message repeats it at the end.
    let message = e.to_string();
    let suffix = format!(" at line {} column {}", e.line(), e.column());
    let message = message.strip_suffix(&suffix).unwrap_or(&message);
    Problem::new(
        format!("{}:{}:{}", path.display(), e.line(), e.column()),
        format!("not valid JSON: {message}"),
    )
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// Reads `stacks.json`; problems are pushed, the entries that make sense are returned.
pub fn parse_stacks(path: &Path, text: &str, problems: &mut Vec<Problem>) -> Vec<StackEntry> {
    let here = path.display().to_string();
    let value: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => {
            problems.push(json_error(path, &e));
            return Vec::new();
        }
    };
    let Some(items) = value.as_array() else {
        problems.push(Problem::new(
            here,
            format!(
                "must be a list of stacks ([{{\"name\": …, \"template\": …}}, …]), not {}",
                kind(&value)
            ),
        ));
        return Vec::new();
    };
    static NAME: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"^[a-z][a-z0-9-]{0,63}$").expect("constant pattern"));
    let mut entries: Vec<StackEntry> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let at = format!("{here}: stack {}", i + 1);
        let Some(obj) = item.as_object() else {
            problems.push(Problem::new(
                at,
                format!("must be an object, not {}", kind(item)),
            ));
            continue;
        };
        for key in obj.keys() {
            if !["name", "template", "region"].contains(&key.as_str()) {
                let hint = nearest(key, ["name", "template", "region"])
                    .map(|n| format!("; did you mean {n}?"))
                    .unwrap_or_default();
                problems.push(Problem::new(
                    at.clone(),
                    format!("unknown key {key:?}{hint}"),
                ));
            }
        }
        let text_field = |key: &str, problems: &mut Vec<Problem>| match obj.get(key) {
            Some(Value::String(s)) => Some(s.clone()),
            Some(other) => {
                problems.push(Problem::new(
                    at.clone(),
                    format!("{key} must be a string, not {}", kind(other)),
                ));
                None
            }
            None => None,
        };
        let name = text_field("name", problems);
        let template = text_field("template", problems);
        let region = text_field("region", problems);
        let (Some(name), Some(template)) = (name, template) else {
            problems.push(Problem::new(at, "needs a \"name\" and a \"template\""));
            continue;
        };
        if !NAME.is_match(&name) {
            problems.push(Problem::new(
                at.clone(),
                format!(
                    "name {name:?} must be lower-case letters, digits and -, starting with a letter"
                ),
            ));
        }
        if let Some(r) = &region
            && !is_region(r)
        {
            problems.push(Problem::new(
                at.clone(),
                format!("region {r:?} is not an AWS region name like us-east-1"),
            ));
        }
        if entries.iter().any(|e| e.name == name) {
            problems.push(Problem::new(at, format!("stack {name} is listed twice")));
            continue;
        }
        entries.push(StackEntry {
            name,
            template,
            region,
        });
    }
    if entries.is_empty() && problems.is_empty() {
        problems.push(Problem::new(here, "lists no stack"));
    }
    entries
}

/// An environment file, as far as it is valid. A field that failed its check is `None` (or
/// left out) and has its problem reported.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EnvFile {
    pub path: PathBuf,
    /// The file was read and is a JSON object: its parameters are worth checking.
    pub parsed: bool,
    pub environment: Option<String>,
    pub region: Option<String>,
    pub tags: BTreeMap<String, String>,
    /// Values as CloudFormation takes them: lists already joined with commas.
    pub parameters: BTreeMap<String, String>,
}

const ENV_KEYS: &[&str] = &["environment", "region", "tags", "parameters"];

/// Reads an environment file: `{"environment": "staging", "region": "eu-west-1", "tags": {…},
/// "parameters": {…}}`.
pub fn parse_env(path: &Path, text: &str, problems: &mut Vec<Problem>) -> EnvFile {
    let here = path.display().to_string();
    let mut env = EnvFile {
        path: path.to_path_buf(),
        ..EnvFile::default()
    };
    let value: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => {
            problems.push(json_error(path, &e));
            return env;
        }
    };
    let Some(obj) = value.as_object() else {
        problems.push(Problem::new(
            here,
            format!(
                "must be an object {{\"environment\": …, \"region\": …, \"tags\": {{…}}, \"parameters\": {{…}}}}, not {}",
                kind(&value)
            ),
        ));
        return env;
    };
    env.parsed = true;
    for key in obj.keys() {
        if !ENV_KEYS.contains(&key.as_str()) {
            let hint = nearest(key, ENV_KEYS.iter().copied())
                .map(|n| format!("; did you mean {n}?"))
                .unwrap_or_default();
            problems.push(Problem::new(
                here.clone(),
                format!("unknown key {key:?} (the file has environment, region, tags and parameters){hint}"),
            ));
        }
    }

    match obj.get("environment") {
        Some(Value::String(e)) if ENVIRONMENTS.contains(&e.as_str()) => {
            env.environment = Some(e.clone());
        }
        Some(Value::String(e)) => problems.push(Problem::new(
            format!("{here}: environment"),
            format!("{e:?} is not an environment: staging or production"),
        )),
        Some(other) => problems.push(Problem::new(
            format!("{here}: environment"),
            format!("must be \"staging\" or \"production\", not {}", kind(other)),
        )),
        None => problems.push(Problem::new(
            here.clone(),
            "\"environment\" is missing: \"staging\" or \"production\"",
        )),
    }

    match obj.get("region") {
        Some(Value::String(r)) if is_region(r) => env.region = Some(r.clone()),
        Some(Value::String(r)) => problems.push(Problem::new(
            format!("{here}: region"),
            format!("{r:?} is not an AWS region name like eu-west-1"),
        )),
        Some(other) => problems.push(Problem::new(
            format!("{here}: region"),
            format!(
                "must be a region name like \"eu-west-1\", not {}",
                kind(other)
            ),
        )),
        None => problems.push(Problem::new(
            here.clone(),
            "\"region\" is missing: the AWS region of the environment, like \"eu-west-1\"",
        )),
    }

    match obj.get("tags") {
        None => {}
        Some(Value::Object(tags)) => {
            static TAG_TEXT: LazyLock<Regex> = LazyLock::new(|| {
                Regex::new(r"^[\p{L}\p{Z}\p{N}_.:/=+\-@]*$").expect("constant pattern")
            });
            for (k, v) in tags {
                let at = format!("{here}: tags.{k}");
                let Value::String(v) = v else {
                    problems.push(Problem::new(
                        at,
                        format!("a tag's value is a string, not {}", kind(v)),
                    ));
                    continue;
                };
                if RESERVED_TAGS.contains(&k.as_str()) {
                    problems.push(Problem::new(
                        at,
                        format!("the deploy command sets {k} itself on every stack; leave it out of tags"),
                    ));
                    continue;
                }
                if k.to_ascii_lowercase().starts_with("aws:") {
                    problems.push(Problem::new(
                        at,
                        "tag keys starting with aws: are reserved by AWS",
                    ));
                    continue;
                }
                if k.is_empty() || k.chars().count() > 128 || !TAG_TEXT.is_match(k) {
                    problems.push(Problem::new(
                        at,
                        "a tag key is 1 to 128 letters, digits, spaces and _ . : / = + - @",
                    ));
                    continue;
                }
                if v.chars().count() > 256 || !TAG_TEXT.is_match(v) {
                    problems.push(Problem::new(
                        at,
                        "a tag value is up to 256 letters, digits, spaces and _ . : / = + - @",
                    ));
                    continue;
                }
                env.tags.insert(k.clone(), v.clone());
            }
            // CloudFormation takes 50 tags on a stack; three are the deploy command's.
            if tags.len() > 47 {
                problems.push(Problem::new(
                    format!("{here}: tags"),
                    format!("{} tags, more than the 47 a stack can carry besides Project, Environment and Stack", tags.len()),
                ));
            }
        }
        Some(other) => problems.push(Problem::new(
            format!("{here}: tags"),
            format!(
                "must be an object of tag names to values, not {}",
                kind(other)
            ),
        )),
    }

    match obj.get("parameters") {
        None => {}
        Some(Value::Object(params)) => {
            for (k, v) in params {
                let at = format!("{here}: parameters.{k}");
                if k == "Environment" {
                    problems.push(Problem::new(
                        at,
                        "Environment is the file's top-level \"environment\"; remove it from parameters",
                    ));
                    continue;
                }
                match parameter_text(v) {
                    Some(text) => {
                        env.parameters.insert(k.clone(), text);
                    }
                    None => problems.push(Problem::new(
                        at,
                        format!(
                            "a parameter's value is a string, a number, a boolean or a list of those, not {}",
                            kind(v)
                        ),
                    )),
                }
            }
        }
        Some(other) => problems.push(Problem::new(
            format!("{here}: parameters"),
            format!(
                "must be an object of parameter names to values, not {}",
                kind(other)
            ),
        )),
    }
    env
}

/// A JSON value as a CloudFormation parameter value: lists join with commas, as
/// CommaDelimitedList and List<…> parameters take them.
fn parameter_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Array(items) => items
            .iter()
            .map(|i| match i {
                Value::Array(_) => None,
                other => parameter_text(other),
            })
            .collect::<Option<Vec<_>>>()
            .map(|v| v.join(",")),
        Value::Null | Value::Object(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(text: &str) -> (EnvFile, Vec<String>) {
        let mut problems = Vec::new();
        let e = parse_env(Path::new("staging.json"), text, &mut problems);
        (e, problems.iter().map(ToString::to_string).collect())
    }

    #[test]
    fn a_good_environment_file() {
        let (e, problems) = env(r#"{"environment": "production", "region": "eu-west-1",
                "tags": {"CostCentre": "ev-42"},
                "parameters": {"VpcCidr": "10.20.0.0/16", "MinSize": 2, "Zones": ["a", "b"], "Flag": true}}"#);
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(e.environment.as_deref(), Some("production"));
        assert_eq!(e.region.as_deref(), Some("eu-west-1"));
        assert_eq!(e.tags["CostCentre"], "ev-42");
        assert_eq!(e.parameters["MinSize"], "2");
        assert_eq!(e.parameters["Zones"], "a,b");
        assert_eq!(e.parameters["Flag"], "true");
    }

    #[test]
    fn json_errors_name_line_and_column() {
        let (_, problems) = env(
            "{\n  \"environment\": \"staging\",\n  \"region\": \"eu-west-1\"\n  \"parameters\": {}\n}",
        );
        assert_eq!(problems.len(), 1);
        assert!(
            problems[0].starts_with("staging.json:4:3: not valid JSON: expected `,` or `}`"),
            "{problems:?}"
        );
    }

    #[test]
    fn every_problem_of_the_file_is_reported() {
        let (e, problems) = env(r#"{"environment": "prod", "region": "Europe", "tag": {},
                "tags": {"Project": "x", "aws:owner": "y", "Team": 5},
                "parameters": {"Environment": "staging", "Nested": {"a": 1}, "Nothing": null}}"#);
        assert_eq!(e.environment, None);
        assert_eq!(e.region, None);
        assert_eq!(
            problems,
            [
                "staging.json: unknown key \"tag\" (the file has environment, region, tags and parameters); did you mean tags?",
                "staging.json: environment: \"prod\" is not an environment: staging or production",
                "staging.json: region: \"Europe\" is not an AWS region name like eu-west-1",
                "staging.json: tags.Project: the deploy command sets Project itself on every stack; leave it out of tags",
                "staging.json: tags.Team: a tag's value is a string, not a number",
                "staging.json: tags.aws:owner: tag keys starting with aws: are reserved by AWS",
                "staging.json: parameters.Environment: Environment is the file's top-level \"environment\"; remove it from parameters",
                "staging.json: parameters.Nested: a parameter's value is a string, a number, a boolean or a list of those, not an object",
                "staging.json: parameters.Nothing: a parameter's value is a string, a number, a boolean or a list of those, not null",
            ]
        );
    }

    #[test]
    fn regions() {
        for ok in [
            "eu-west-1",
            "us-east-1",
            "us-gov-west-1",
            "ap-southeast-3",
            "cn-northwest-1",
        ] {
            assert!(is_region(ok), "{ok}");
        }
        for bad in ["eu-west", "EU-WEST-1", "euwest1", "eu-west-1a", ""] {
            assert!(!is_region(bad), "{bad}");
        }
    }

    #[test]
    fn stacks_file() {
        let mut problems = Vec::new();
        let entries = parse_stacks(
            Path::new("stacks.json"),
            r#"[{"name": "network", "template": "templates/network.yaml"},
                {"name": "global", "template": "templates/global.yaml", "region": "us-east-1"},
                {"name": "network", "template": "templates/other.yaml"},
                {"name": "Bad_Name", "template": "t.yaml", "regoin": "x"}]"#,
            &mut problems,
        );
        let problems: Vec<String> = problems.iter().map(ToString::to_string).collect();
        assert_eq!(entries.len(), 3);
        assert_eq!(entries[1].region.as_deref(), Some("us-east-1"));
        assert_eq!(
            problems,
            [
                "stacks.json: stack 3: stack network is listed twice",
                "stacks.json: stack 4: unknown key \"regoin\"; did you mean region?",
                "stacks.json: stack 4: name \"Bad_Name\" must be lower-case letters, digits and -, starting with a letter",
            ]
        );
    }
}

//! The parts of a CloudFormation template the deploy command reads: `Parameters` (with their
//! constraints) and the names of the `Outputs`.
//!
//! The rest of the file is never interpreted, but it must parse: CloudFormation's short-form
//! intrinsic functions (`!Ref`, `!Sub`, `!GetAtt`, …) are YAML tags, which saphyr keeps as tagged
//! nodes instead of rejecting them.

use saphyr::{LoadableYamlNode, MarkedYaml, Scalar, YamlData};

use crate::problem::Problem;
use crate::validate::{self, ParamType};

/// One entry of a template's `Parameters`.
#[derive(Debug, Clone, PartialEq)]
pub struct ParamSpec {
    pub name: String,
    /// The `Type` as written (`String`, `List<AWS::EC2::Subnet::Id>`, …).
    pub type_name: String,
    pub param_type: ParamType,
    pub default: Option<String>,
    pub allowed_values: Option<Vec<String>>,
    pub allowed_pattern: Option<String>,
    pub min_length: Option<u64>,
    pub max_length: Option<u64>,
    pub min_value: Option<f64>,
    pub max_value: Option<f64>,
    pub no_echo: bool,
    pub description: Option<String>,
    pub constraint_description: Option<String>,
    /// 1-based line of the parameter's name in the template.
    pub line: usize,
}

impl ParamSpec {
    /// A parameter CloudFormation cannot fill by itself.
    pub fn is_required(&self) -> bool {
        self.default.is_none()
    }
}

/// What a template declares, as far as the deploy command is concerned.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TemplateInfo {
    /// In the order of the file.
    pub parameters: Vec<ParamSpec>,
    /// The names of its `Outputs`, in the order of the file.
    pub outputs: Vec<String>,
}

impl TemplateInfo {
    pub fn parameter(&self, name: &str) -> Option<&ParamSpec> {
        self.parameters.iter().find(|p| p.name == name)
    }
}

/// The attributes CloudFormation accepts on a parameter.
const PARAMETER_ATTRIBUTES: &[&str] = &[
    "Type",
    "Default",
    "AllowedValues",
    "AllowedPattern",
    "MinLength",
    "MaxLength",
    "MinValue",
    "MaxValue",
    "NoEcho",
    "Description",
    "ConstraintDescription",
];

/// Parses `body` (the text of the template at `path`, used in messages). Every problem found is
/// pushed to `problems`; what could be read is returned all the same, so that one bad parameter
/// does not hide the problems of the others.
pub fn parse(path: &str, body: &str, problems: &mut Vec<Problem>) -> TemplateInfo {
    let docs = match MarkedYaml::load_from_str(body) {
        Ok(docs) => docs,
        Err(e) => {
            problems.push(Problem::new(
                format!("{path}:{}:{}", e.marker().line(), e.marker().col() + 1),
                format!("not valid YAML: {}", e.info()),
            ));
            return TemplateInfo::default();
        }
    };
    let Some(root) = docs.first() else {
        problems.push(Problem::new(path, "the template is empty"));
        return TemplateInfo::default();
    };
    if docs.len() > 1 {
        problems.push(Problem::new(
            path,
            "the file holds more than one YAML document; a template is one",
        ));
    }
    let Some(root_map) = root.data.as_mapping() else {
        problems.push(Problem::new(
            at(path, root),
            "a template is a mapping (AWSTemplateFormatVersion, Parameters, Resources, …)",
        ));
        return TemplateInfo::default();
    };

    let mut info = TemplateInfo::default();
    for (key, value) in root_map {
        match key.data.as_str() {
            Some("Parameters") => info.parameters = parse_parameters(path, value, problems),
            Some("Outputs") => info.outputs = parse_outputs(path, value, problems),
            _ => {}
        }
    }
    info
}

fn at(path: &str, node: &MarkedYaml<'_>) -> String {
    format!("{path}:{}", node.span.start.line())
}

fn parse_parameters(
    path: &str,
    node: &MarkedYaml<'_>,
    problems: &mut Vec<Problem>,
) -> Vec<ParamSpec> {
    let Some(map) = node.data.as_mapping() else {
        if !node.data.is_null() {
            problems.push(Problem::new(
                at(path, node),
                "Parameters must be a mapping of parameter names to their declarations",
            ));
        }
        return Vec::new();
    };
    let mut out = Vec::new();
    for (key, value) in map {
        let Some(name) = scalar_text(key) else {
            problems.push(Problem::new(
                at(path, key),
                "a parameter's name must be a plain string",
            ));
            continue;
        };
        if !name.chars().all(|c| c.is_ascii_alphanumeric()) || name.is_empty() {
            problems.push(Problem::new(
                at(path, key),
                format!("parameter name {name:?} must be alphanumeric (A-Z, a-z, 0-9)"),
            ));
        }
        if let Some(spec) = parse_parameter(path, &name, key, value, problems) {
            out.push(spec);
        }
    }
    out
}

fn parse_parameter(
    path: &str,
    name: &str,
    key: &MarkedYaml<'_>,
    node: &MarkedYaml<'_>,
    problems: &mut Vec<Problem>,
) -> Option<ParamSpec> {
    let line = key.span.start.line();
    let here = format!("{path}:{line}");
    let Some(map) = node.data.as_mapping() else {
        problems.push(Problem::new(
            here,
            format!("parameter {name} must be a mapping with at least a Type"),
        ));
        return None;
    };
    let mut spec = ParamSpec {
        name: name.to_string(),
        type_name: String::new(),
        param_type: ParamType::String,
        default: None,
        allowed_values: None,
        allowed_pattern: None,
        min_length: None,
        max_length: None,
        min_value: None,
        max_value: None,
        no_echo: false,
        description: None,
        constraint_description: None,
        line,
    };
    let mut has_type = false;
    for (attr_node, value) in map {
        let Some(attr) = attr_node.data.as_str() else {
            problems.push(Problem::new(
                at(path, attr_node),
                format!("parameter {name}: attribute names are strings"),
            ));
            continue;
        };
        let attr_at = at(path, attr_node);
        if value.data.is_tag_node() {
            problems.push(Problem::new(
                attr_at,
                format!(
                    "parameter {name}: {attr} uses an intrinsic function ({}); CloudFormation takes only literal values in Parameters",
                    tag_text(value)
                ),
            ));
            continue;
        }
        match attr {
            "Type" => match scalar_text(value) {
                Some(t) => {
                    has_type = true;
                    match ParamType::parse(&t) {
                        Ok(pt) => spec.param_type = pt,
                        Err(e) => problems.push(Problem::new(
                            attr_at,
                            format!("parameter {name}: {e}"),
                        )),
                    }
                    spec.type_name = t;
                }
                None => problems.push(Problem::new(
                    attr_at,
                    format!("parameter {name}: Type must be a string"),
                )),
            },
            "Default" => match scalar_text(value) {
                Some(v) => spec.default = Some(v),
                None => problems.push(Problem::new(
                    attr_at,
                    format!(
                        "parameter {name}: Default must be a single value (a list is written \"a,b\")"
                    ),
                )),
            },
            "AllowedValues" => match value.data.as_sequence() {
                Some(items) => {
                    let mut values = Vec::new();
                    for item in items {
                        match scalar_text(item) {
                            Some(v) => values.push(v),
                            None => problems.push(Problem::new(
                                at(path, item),
                                format!("parameter {name}: AllowedValues holds single values only"),
                            )),
                        }
                    }
                    spec.allowed_values = Some(values);
                }
                None => problems.push(Problem::new(
                    attr_at,
                    format!("parameter {name}: AllowedValues must be a list"),
                )),
            },
            "AllowedPattern" => match scalar_text(value) {
                Some(v) => spec.allowed_pattern = Some(v),
                None => problems.push(Problem::new(
                    attr_at,
                    format!("parameter {name}: AllowedPattern must be a string"),
                )),
            },
            "MinLength" | "MaxLength" => match scalar_text(value).and_then(|v| v.parse::<u64>().ok()) {
                Some(n) if attr == "MinLength" => spec.min_length = Some(n),
                Some(n) => spec.max_length = Some(n),
                None => problems.push(Problem::new(
                    attr_at,
                    format!("parameter {name}: {attr} must be a whole number ≥ 0"),
                )),
            },
            "MinValue" | "MaxValue" => match scalar_text(value).and_then(|v| validate::parse_number(&v)) {
                Some(n) if attr == "MinValue" => spec.min_value = Some(n),
                Some(n) => spec.max_value = Some(n),
                None => problems.push(Problem::new(
                    attr_at,
                    format!("parameter {name}: {attr} must be a number"),
                )),
            },
            "NoEcho" => match scalar_text(value).map(|v| v.to_ascii_lowercase()) {
                Some(v) if v == "true" => spec.no_echo = true,
                Some(v) if v == "false" => spec.no_echo = false,
                _ => problems.push(Problem::new(
                    attr_at,
                    format!("parameter {name}: NoEcho must be true or false"),
                )),
            },
            "Description" => spec.description = scalar_text(value),
            "ConstraintDescription" => spec.constraint_description = scalar_text(value),
            other => {
                let hint = crate::problem::nearest(other, PARAMETER_ATTRIBUTES.iter().copied())
                    .map(|n| format!("; did you mean {n}?"))
                    .unwrap_or_default();
                problems.push(Problem::new(
                    attr_at,
                    format!("parameter {name}: {other} is not a parameter attribute{hint}"),
                ));
            }
        }
    }
    if !has_type {
        problems.push(Problem::new(
            here.clone(),
            format!("parameter {name} has no Type"),
        ));
    }
    if let (Some(min), Some(max)) = (spec.min_length, spec.max_length)
        && min > max
    {
        problems.push(Problem::new(
            here.clone(),
            format!("parameter {name}: MinLength {min} is greater than MaxLength {max}"),
        ));
    }
    if let (Some(min), Some(max)) = (spec.min_value, spec.max_value)
        && min > max
    {
        problems.push(Problem::new(
            here.clone(),
            format!("parameter {name}: MinValue {min} is greater than MaxValue {max}"),
        ));
    }
    if let Some(pattern) = &spec.allowed_pattern
        && let Err(e) = validate::compile_pattern(pattern)
    {
        problems.push(Problem::new(
            here,
            format!("parameter {name}: AllowedPattern {pattern:?} does not compile: {e}"),
        ));
    }
    Some(spec)
}

fn parse_outputs(path: &str, node: &MarkedYaml<'_>, problems: &mut Vec<Problem>) -> Vec<String> {
    let Some(map) = node.data.as_mapping() else {
        if !node.data.is_null() {
            problems.push(Problem::new(
                at(path, node),
                "Outputs must be a mapping of output names to their declarations",
            ));
        }
        return Vec::new();
    };
    map.keys()
        .filter_map(|k| {
            let name = scalar_text(k);
            if name.is_none() {
                problems.push(Problem::new(
                    at(path, k),
                    "an output's name must be a plain string",
                ));
            }
            name
        })
        .collect()
}

/// The text of a scalar as CloudFormation reads it (`5` and `"5"` are both `5`); `None` for
/// null, collections and tagged nodes.
fn scalar_text(node: &MarkedYaml<'_>) -> Option<String> {
    match &node.data {
        YamlData::Value(Scalar::String(s)) => Some(s.to_string()),
        YamlData::Value(Scalar::Integer(i)) => Some(i.to_string()),
        YamlData::Value(Scalar::FloatingPoint(f)) => Some(f.to_string()),
        YamlData::Value(Scalar::Boolean(b)) => Some(b.to_string()),
        YamlData::Representation(s, _, _) => Some(s.to_string()),
        _ => None,
    }
}

fn tag_text(node: &MarkedYaml<'_>) -> String {
    match &node.data {
        YamlData::Tagged(tag, _) => format!("{}{}", tag.handle, tag.suffix),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_ok(body: &str) -> TemplateInfo {
        let mut problems = Vec::new();
        let info = parse("t.yaml", body, &mut problems);
        assert!(problems.is_empty(), "unexpected problems: {problems:?}");
        info
    }

    #[test]
    fn reads_parameters_and_outputs_past_short_form_tags() {
        let info = parse_ok(
            r#"
AWSTemplateFormatVersion: "2010-09-09"
Conditions:
  IsProd: !Equals [!Ref Environment, production]
Parameters:
  Environment:
    Type: String
    AllowedValues: [staging, production]
  Count:
    Type: Number
    Default: 2
    MinValue: 1
    MaxValue: 10
  Secret:
    Type: String
    NoEcho: true
    MinLength: 8
Resources:
  Vpc:
    Type: AWS::EC2::VPC
    Properties:
      CidrBlock: !Sub "${AWS::Region}"
      Tags: !If [IsProd, [], !Ref AWS::NoValue]
Outputs:
  VpcId:
    Value: !Ref Vpc
  Ids:
    Value: !Join [",", [!GetAtt Vpc.CidrBlock]]
"#,
        );
        let names: Vec<_> = info.parameters.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["Environment", "Count", "Secret"]);
        let count = info.parameter("Count").expect("Count");
        assert_eq!(count.default.as_deref(), Some("2"));
        assert_eq!(count.min_value, Some(1.0));
        assert_eq!(count.param_type, ParamType::Number);
        assert_eq!(count.line, 9);
        let secret = info.parameter("Secret").expect("Secret");
        assert!(secret.no_echo && secret.is_required());
        assert_eq!(secret.min_length, Some(8));
        assert_eq!(
            info.parameter("Environment")
                .and_then(|p| p.allowed_values.clone()),
            Some(vec!["staging".to_string(), "production".to_string()])
        );
        assert_eq!(info.outputs, ["VpcId", "Ids"]);
    }

    #[test]
    fn reports_every_bad_parameter_with_its_line() {
        let mut problems = Vec::new();
        let info = parse(
            "t.yaml",
            "Parameters:\n  A:\n    Type: Strng\n  B:\n    Defualt: x\n    Type: String\n  C:\n    Type: String\n    Default: !Ref AWS::Region\n  D:\n    Type: Number\n    MinValue: 5\n    MaxValue: 1\n",
            &mut problems,
        );
        let text: Vec<String> = problems.iter().map(ToString::to_string).collect();
        assert_eq!(text.len(), 4, "{text:#?}");
        assert!(
            text[0].starts_with(
                "t.yaml:3: parameter A: Type Strng is not a CloudFormation parameter type"
            ),
            "{text:#?}"
        );
        assert!(text[0].contains("did you mean String"), "{text:#?}");
        assert_eq!(
            text[1],
            "t.yaml:5: parameter B: Defualt is not a parameter attribute; did you mean Default?"
        );
        assert!(
            text[2].starts_with("t.yaml:9: parameter C: Default uses an intrinsic function (!Ref)"),
            "{text:#?}"
        );
        assert_eq!(
            text[3],
            "t.yaml:10: parameter D: MinValue 5 is greater than MaxValue 1"
        );
        // The parameters are still there for the checks that follow.
        assert_eq!(info.parameters.len(), 4);
    }

    #[test]
    fn yaml_errors_carry_line_and_column() {
        let mut problems = Vec::new();
        parse(
            "t.yaml",
            "Parameters:\n  A:\n    Type: [String\n",
            &mut problems,
        );
        assert_eq!(problems.len(), 1);
        let text = problems[0].to_string();
        assert!(text.starts_with("t.yaml:4:1: not valid YAML"), "{text}");
    }
}

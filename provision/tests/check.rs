//! `check`: the parameters of the fixture stacks under `tests/fixtures/check/` matched with the
//! environment file, the outputs of earlier stacks and the Defaults, and every problem reported.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use voltfleet_provision::plan::{self, Inputs, Outputs, Plan, Source};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/check")
}

/// A good environment file for the fixtures, as JSON text.
fn good_env() -> serde_json::Value {
    serde_json::json!({
        "environment": "staging",
        "region": "eu-west-1",
        "tags": {"CostCentre": "ev-ops"},
        "parameters": {
            "VpcCidr": "10.20.0.0/16",
            "AmiId": "ami-0123456789abcdef0",
            "ZoneId": "Z2FDTNDATAQYW2",
            "Zones": ["eu-west-1a", "eu-west-1b"],
            "DbPassword": "correct-horse-battery",
            "AlertEmail": "ops@example.com",
            "CertificateArn": "arn:aws:acm:us-east-1:123456789012:certificate/12345678-1234-1234-1234-123456789012"
        }
    })
}

struct EnvFile {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

fn write_env(text: &str) -> EnvFile {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("staging.json");
    std::fs::write(&path, text).expect("write the environment file");
    EnvFile { _dir: dir, path }
}

fn inputs(env: &EnvFile) -> Inputs {
    Inputs {
        stacks_file: fixtures().join("stacks.json"),
        env_file: env.path.clone(),
        region_override: None,
    }
}

fn check_ok(env: &serde_json::Value) -> Plan {
    let file = write_env(&env.to_string());
    match plan::check(&inputs(&file)) {
        Ok(plan) => plan,
        Err(problems) => panic!("unexpected problems: {problems:#?}"),
    }
}

fn check_problems(text: &str) -> Vec<String> {
    let file = write_env(text);
    match plan::check(&inputs(&file)) {
        Ok(plan) => panic!("the check passed: {plan:#?}"),
        Err(problems) => problems.iter().map(ToString::to_string).collect(),
    }
}

fn source(plan: &Plan, stack: &str, param: &str) -> Source {
    plan.stack(stack)
        .and_then(|s| s.parameters.iter().find(|p| p.spec.name == param))
        .map(|p| p.source.clone())
        .unwrap_or_else(|| panic!("no parameter {param} in {stack}"))
}

#[test]
fn every_parameter_gets_its_source() {
    let plan = check_ok(&good_env());
    assert_eq!(plan.environment, "staging");
    let names: Vec<_> = plan
        .stacks
        .iter()
        .map(|s| (s.stack_name.as_str(), s.region.as_str()))
        .collect();
    assert_eq!(
        names,
        [
            ("voltfleet-staging-base", "eu-west-1"),
            ("voltfleet-staging-consumer", "eu-west-1"),
            ("voltfleet-staging-cdn", "us-east-1"),
        ]
    );
    assert_eq!(
        source(&plan, "base", "Environment"),
        Source::Environment("staging".into())
    );
    assert_eq!(
        source(&plan, "base", "VpcCidr"),
        Source::File("10.20.0.0/16".into())
    );
    assert_eq!(
        source(&plan, "base", "Zones"),
        Source::File("eu-west-1a,eu-west-1b".into())
    );
    assert_eq!(
        source(&plan, "base", "DesiredCount"),
        Source::Default("2".into())
    );
    assert_eq!(
        source(&plan, "consumer", "VpcId"),
        Source::Output {
            stack: "base".into()
        }
    );
    assert_eq!(
        source(&plan, "consumer", "SubnetIds"),
        Source::Output {
            stack: "base".into()
        }
    );
    assert_eq!(
        source(&plan, "consumer", "LogRetention"),
        Source::Default("30".into())
    );
    // cdn offers Endpoint, but after consumer: consumer keeps its Default.
    assert_eq!(
        source(&plan, "consumer", "Endpoint"),
        Source::Default("none".into())
    );
    assert_eq!(
        source(&plan, "cdn", "TopicArn"),
        Source::Output {
            stack: "consumer".into()
        }
    );
    assert_eq!(
        plan.stack_tags("cdn"),
        [
            ("Project".to_string(), "voltfleet".to_string()),
            ("Environment".to_string(), "staging".to_string()),
            ("Stack".to_string(), "cdn".to_string()),
            ("CostCentre".to_string(), "ev-ops".to_string()),
        ]
    );
}

#[test]
fn the_environment_file_wins_over_an_output_and_a_default() {
    let mut env = good_env();
    env["parameters"]["VpcId"] = "vpc-0123456789abcdef0".into();
    env["parameters"]["LogRetention"] = 90.into();
    let plan = check_ok(&env);
    assert_eq!(
        source(&plan, "consumer", "VpcId"),
        Source::File("vpc-0123456789abcdef0".into())
    );
    assert_eq!(
        source(&plan, "consumer", "LogRetention"),
        Source::File("90".into())
    );
}

#[test]
fn the_plan_shows_sources_and_hides_secrets() {
    let plan = check_ok(&good_env());
    let text = plan::render(&plan);
    assert!(!text.contains("correct-horse-battery"), "{text}");
    let line = |name: &str| {
        text.lines()
            .find(|l| l.trim_start().starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("no line for {name} in\n{text}"))
            .to_string()
    };
    assert!(
        line("DbPassword").contains("****") && line("DbPassword").contains("NoEcho"),
        "{text}"
    );
    assert!(
        line("VpcId").contains("← base.VpcId") && line("VpcId").contains("output of base"),
        "{text}"
    );
    assert!(
        line("DesiredCount").contains("2") && line("DesiredCount").ends_with("default"),
        "{text}"
    );
    assert!(
        text.contains("3. cdn → voltfleet-staging-cdn in us-east-1 (templates/cdn.yaml)"),
        "{text}"
    );
    assert!(
        text.contains("Project=voltfleet Environment=staging Stack=<stack> CostCentre=ev-ops"),
        "{text}"
    );
}

#[test]
fn every_problem_is_reported_at_once() {
    let problems = check_problems(
        &serde_json::json!({
            "environment": "staging",
            "region": "eu-west-1",
            "parameters": {
                "VpcCdir": "10.20.0.0/16",
                "VpcCidr": "10.20.0.0/33",
                "AmiId": "ami-XYZ",
                "ZoneId": "/hostedzone/Z2FDTNDATAQYW2",
                "Zones": ["eu-west-1a", "eu-west-1"],
                "DesiredCount": "two",
                "DbPassword": "hunter2",
                "LogRetention": 14,
                "CertificateArn": "arn:aws:acm:eu-west-1:123456789012:certificate/12345678-1234-1234-1234-123456789012"
            }
        })
        .to_string(),
    );
    let has = |needle: &str| {
        assert!(
            problems.iter().any(|p| p.contains(needle)),
            "no problem contains {needle:?}:\n{problems:#?}"
        );
    };
    has(
        "parameters.VpcCdir: no stack declares a parameter VpcCdir; did you mean VpcCidr (declared by base)?",
    );
    has("stack base, parameter VpcCidr (");
    has(
        "templates/base.yaml:9): \"10.20.0.0/33\" does not match AllowedPattern (\\d{1,3}\\.){3}\\d{1,3}/(1[6-9]|2[0-4]) (ConstraintDescription: \"a CIDR block from /16 to /24, like 10.20.0.0/16\")",
    );
    has("\"ami-XYZ\" is not an AMI id: ami- and 8 or 17 hexadecimal digits");
    has("\"/hostedzone/Z2FDTNDATAQYW2\" is not a Route 53 hosted zone id");
    has("element 2 (\"eu-west-1\") of \"eu-west-1a,eu-west-1\" is not an Availability Zone name");
    has("stack base, parameter DesiredCount");
    has("\"two\" is not a number");
    has(
        "the value (NoEcho, not shown) is 7 characters long, shorter than MinLength 12 (ConstraintDescription: \"12 to 64 characters\")",
    );
    has("\"14\" is not one of the AllowedValues: 7, 30, 90");
    has("stack consumer, parameter AlertEmail");
    has("required (no Default), and neither");
    has("stack cdn, parameter CertificateArn");
    has("(ConstraintDescription: \"an ACM certificate ARN in us-east-1\")");
    assert!(
        !problems.iter().any(|p| p.contains("hunter2")),
        "{problems:#?}"
    );
    assert_eq!(problems.len(), 10, "{problems:#?}");
}

#[test]
fn a_required_parameter_names_a_later_provider() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir(dir.path().join("templates")).expect("mkdir");
    std::fs::write(
        dir.path().join("stacks.json"),
        r#"[{"name": "first", "template": "templates/first.yaml"}, {"name": "second", "template": "templates/second.yaml"}]"#,
    )
    .expect("write");
    std::fs::write(
        dir.path().join("templates/first.yaml"),
        "Parameters:\n  QueueUrl:\n    Type: String\nResources:\n  Q:\n    Type: AWS::SQS::Queue\n",
    )
    .expect("write");
    std::fs::write(
        dir.path().join("templates/second.yaml"),
        "Resources:\n  Q:\n    Type: AWS::SQS::Queue\nOutputs:\n  QueueUrl:\n    Value: !Ref Q\n",
    )
    .expect("write");
    let env = dir.path().join("staging.json");
    std::fs::write(&env, r#"{"environment": "staging", "region": "eu-west-1"}"#).expect("write");
    let problems = plan::check(&Inputs {
        stacks_file: dir.path().join("stacks.json"),
        env_file: env,
        region_override: None,
    })
    .expect_err("QueueUrl has no source");
    assert_eq!(problems.len(), 1, "{problems:#?}");
    let text = problems[0].to_string();
    assert!(
        text.starts_with("stack first, parameter QueueUrl ("),
        "{text}"
    );
    assert!(
        text.contains("(stack second has an output QueueUrl, but it comes later in the order)"),
        "{text}"
    );
}

#[test]
fn outputs_flow_into_later_parameters_and_are_checked() {
    let plan = check_ok(&good_env());
    let consumer = plan.stack("consumer").expect("consumer");
    let mut outputs: Outputs = BTreeMap::new();
    outputs.insert(
        "base".into(),
        BTreeMap::from([
            ("VpcId".to_string(), "vpc-0ca6424180d57545e".to_string()),
            (
                "SubnetIds".to_string(),
                "subnet-0123456789abcdef0,subnet-12345678".to_string(),
            ),
        ]),
    );
    let values = plan::resolve(consumer, &outputs).expect("resolves");
    assert_eq!(
        values,
        [
            ("Environment".to_string(), "staging".to_string()),
            ("VpcId".to_string(), "vpc-0ca6424180d57545e".to_string()),
            (
                "SubnetIds".to_string(),
                "subnet-0123456789abcdef0,subnet-12345678".to_string()
            ),
            ("AlertEmail".to_string(), "ops@example.com".to_string()),
        ],
        "Defaults are left to CloudFormation"
    );

    // An output that does not fit the parameter's type stops that stack.
    outputs
        .get_mut("base")
        .expect("base")
        .insert("VpcId".into(), "sg-0ca6424180d57545e".into());
    let problems = plan::resolve(consumer, &outputs).expect_err("a security group id is no VPC id");
    assert_eq!(problems.len(), 1);
    assert_eq!(
        problems[0].to_string(),
        "stack consumer, parameter VpcId: \"sg-0ca6424180d57545e\" is not a VPC id: vpc- and 8 or 17 hexadecimal digits, from the output VpcId of stack base"
    );

    // A provider that is not deployed, or lacks the output.
    let problems = plan::resolve(consumer, &BTreeMap::new()).expect_err("base is not deployed");
    assert_eq!(problems.len(), 2);
    assert!(
        problems[0].to_string().contains("comes from the output VpcId of stack base, but stack base is not deployed; deploy base first, or set VpcId in the environment file's parameters"),
        "{problems:#?}"
    );
    let partial: Outputs = BTreeMap::from([(
        "base".to_string(),
        BTreeMap::from([("VpcId".to_string(), "vpc-12345678".to_string())]),
    )]);
    let problems = plan::resolve(consumer, &partial).expect_err("SubnetIds is missing");
    assert_eq!(problems.len(), 1);
    assert!(
        problems[0]
            .to_string()
            .contains("stack base has no output SubnetIds (it has VpcId)"),
        "{problems:#?}"
    );

    // A provider deployed earlier in the same run is not known yet, and not an error yet.
    let pending = BTreeSet::from(["base".to_string()]);
    let values = plan::resolve_except(consumer, &BTreeMap::new(), &pending).expect("pending");
    assert!(values.iter().all(|(k, _)| k != "VpcId"), "{values:?}");
}

#[test]
fn malformed_files_are_reported_with_their_position() {
    let problems = check_problems(
        "{\n  \"environment\": \"staging\",\n  \"region\": \"eu-west-1\",\n  \"parameters\": {\"VpcCidr\": \"10.20.0.0/16\",}\n}\n",
    );
    assert_eq!(problems.len(), 1, "{problems:#?}");
    assert!(
        problems[0].ends_with("staging.json:4:44: not valid JSON: trailing comma"),
        "{problems:#?}"
    );

    let problems =
        check_problems(r#"{"environment": "prod", "region": "eu_west_1", "parameters": {}}"#);
    let has = |needle: &str| {
        assert!(
            problems.iter().any(|p| p.contains(needle)),
            "{needle:?} in {problems:#?}"
        )
    };
    has("environment: \"prod\" is not an environment: staging or production");
    has("region: \"eu_west_1\" is not an AWS region name like eu-west-1");
    // The other problems are still found: the required parameters the file lacks.
    has("stack base, parameter VpcCidr");
    has("stack consumer, parameter AlertEmail");
}

fn provision() -> Command {
    Command::new(env!("CARGO_BIN_EXE_voltfleet-provision"))
}

#[test]
fn the_command_prints_the_plan_or_every_problem() {
    // The default list of stacks is stacks.json beside the environment file's directory.
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir_all(dir.path().join("templates")).expect("mkdir");
    std::fs::create_dir_all(dir.path().join("environments")).expect("mkdir");
    std::fs::copy(
        fixtures().join("stacks.json"),
        dir.path().join("stacks.json"),
    )
    .expect("copy");
    for t in ["base", "consumer", "cdn"] {
        let name = format!("templates/{t}.yaml");
        std::fs::copy(fixtures().join(&name), dir.path().join(&name)).expect("copy");
    }
    let env = dir.path().join("environments/staging.json");
    std::fs::write(&env, good_env().to_string()).expect("write");

    let out = provision()
        .arg("check")
        .arg("--env")
        .arg(&env)
        .output()
        .expect("runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.starts_with("Plan for staging"), "{stdout}");
    assert!(
        stdout.contains("2. consumer → voltfleet-staging-consumer in eu-west-1"),
        "{stdout}"
    );
    assert!(!stdout.contains("correct-horse-battery"), "{stdout}");

    // --region moves the environment, not the stack pinned to us-east-1.
    let out = provision()
        .args(["check", "--region", "eu-central-1", "--env"])
        .arg(&env)
        .output()
        .expect("runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("1. base → voltfleet-staging-base in eu-central-1"),
        "{stdout}"
    );
    assert!(
        stdout.contains("3. cdn → voltfleet-staging-cdn in us-east-1"),
        "{stdout}"
    );

    let mut bad = good_env();
    bad["parameters"]["AmiId"] = "ami-1".into();
    bad["parameters"]["AlertMail"] = "ops@example.com".into();
    std::fs::write(&env, bad.to_string()).expect("write");
    let out = provision()
        .arg("check")
        .arg("--env")
        .arg(&env)
        .output()
        .expect("runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(out.stdout.is_empty(), "no plan when the check fails");
    assert!(
        stderr.starts_with("voltfleet-provision: the check found 2 problems:"),
        "{stderr}"
    );
    assert!(stderr.contains("no stack declares a parameter AlertMail; did you mean AlertEmail (declared by consumer)?"), "{stderr}");
    assert!(stderr.contains("\"ami-1\" is not an AMI id"), "{stderr}");
}

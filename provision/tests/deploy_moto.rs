//! `voltfleet-provision deploy` against a real `moto_server` on loopback: the fixture stacks
//! under `tests/fixtures/e2e/` created in order, the first one's outputs feeding the second's
//! parameters, updated, left alone when nothing changed, and a failure stopping the run.
//!
//! `VOLTFLEET_MOTO_SERVER` names the server (default `.venv/bin/moto_server`, which
//! `scripts/setup.sh` installs).

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_sdk_cloudformation::config::{Credentials, Region};
use aws_sdk_cloudformation::types::Stack;

/// moto_server on a free loopback port, killed when dropped.
struct Moto {
    endpoint: String,
    child: std::process::Child,
}

impl Moto {
    async fn start() -> Moto {
        let program = std::env::var_os("VOLTFLEET_MOTO_SERVER")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/moto_server")
            });
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free loopback port")
            .port();
        let child = std::process::Command::new(&program)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "starting {}: {e} (scripts/setup.sh installs it into .venv; or set VOLTFLEET_MOTO_SERVER)",
                    program.display()
                )
            });
        let moto = Moto {
            endpoint: format!("http://127.0.0.1:{port}"),
            child,
        };
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            assert!(
                tokio::time::Instant::now() < deadline,
                "moto_server did not start within 30 s"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        moto
    }

    async fn sdk_config(&self) -> aws_config::SdkConfig {
        aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new("eu-west-1"))
            .endpoint_url(&self.endpoint)
            .credentials_provider(Credentials::new("testing", "testing", None, None, "moto"))
            .load()
            .await
    }

    async fn cloudformation(&self) -> aws_sdk_cloudformation::Client {
        aws_sdk_cloudformation::Client::new(&self.sdk_config().await)
    }

    async fn ssm_value(&self, name: &str) -> String {
        let ssm = aws_sdk_ssm::Client::new(&self.sdk_config().await);
        let out = ssm
            .get_parameter()
            .name(name)
            .send()
            .await
            .expect("the SSM parameter exists");
        out.parameter()
            .and_then(|p| p.value())
            .unwrap_or_default()
            .to_string()
    }

    /// The names of the stacks that exist (not deleted).
    async fn stack_names(&self) -> Vec<String> {
        let out = self
            .cloudformation()
            .await
            .list_stacks()
            .send()
            .await
            .expect("list_stacks");
        let mut names: Vec<String> = out
            .stack_summaries()
            .iter()
            .filter(|s| {
                s.stack_status()
                    .is_some_and(|st| st.as_str() != "DELETE_COMPLETE")
            })
            .filter_map(|s| s.stack_name().map(str::to_string))
            .collect();
        names.sort();
        names
    }

    async fn stack(&self, name: &str) -> Stack {
        let out = self
            .cloudformation()
            .await
            .describe_stacks()
            .stack_name(name)
            .send()
            .await
            .unwrap_or_else(|e| panic!("describe_stacks {name}: {e:?}"));
        out.stacks().first().cloned().expect("one stack")
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn output(stack: &Stack, key: &str) -> String {
    stack
        .outputs()
        .iter()
        .find(|o| o.output_key() == Some(key))
        .and_then(|o| o.output_value())
        .unwrap_or_else(|| panic!("no output {key}"))
        .to_string()
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/e2e")
}

/// An environment file in a directory of its own.
struct Env {
    dir: tempfile::TempDir,
    path: PathBuf,
}

impl Env {
    fn new(environment: &str, greeting: Option<&str>, vpc_cidr: &str) -> Env {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join(format!("{environment}.json"));
        let env = Env { dir, path };
        env.write(environment, greeting, vpc_cidr);
        env
    }

    fn write(&self, environment: &str, greeting: Option<&str>, vpc_cidr: &str) {
        let mut parameters = serde_json::json!({
            "VpcCidr": vpc_cidr,
            "SubnetCidrs": ["10.20.1.0/24", "10.20.2.0/24"],
            "AvailabilityZones": ["eu-west-1a", "eu-west-1b"],
        });
        if let Some(g) = greeting {
            parameters["Greeting"] = g.into();
        }
        let text = serde_json::json!({
            "environment": environment,
            "region": "eu-west-1",
            "tags": {"Owner": "ev-ops"},
            "parameters": parameters,
        });
        std::fs::write(&self.path, text.to_string()).expect("write the environment file");
    }
}

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    fn from(out: Output) -> Run {
        Run {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    fn ok(&self) -> &Run {
        assert_eq!(
            self.code,
            Some(0),
            "stdout:\n{}\nstderr:\n{}",
            self.stdout,
            self.stderr
        );
        self
    }

    fn failed(&self) -> &Run {
        assert_eq!(
            self.code,
            Some(1),
            "stdout:\n{}\nstderr:\n{}",
            self.stdout,
            self.stderr
        );
        self
    }

    fn stdout_has(&self, needle: &str) -> &Run {
        assert!(
            self.stdout.contains(needle),
            "{needle:?} not on stdout:\n{}\nstderr:\n{}",
            self.stdout,
            self.stderr
        );
        self
    }

    fn stderr_has(&self, needle: &str) -> &Run {
        assert!(
            self.stderr.contains(needle),
            "{needle:?} not on stderr:\n{}\nstdout:\n{}",
            self.stderr,
            self.stdout
        );
        self
    }

    fn stdout_lacks(&self, needle: &str) -> &Run {
        assert!(
            !self.stdout.contains(needle),
            "{needle:?} on stdout:\n{}",
            self.stdout
        );
        self
    }
}

/// Runs the command against moto, with credentials of its own and nothing from the machine's
/// AWS configuration.
async fn provision(moto: &Moto, env: &Env, stacks: &str, args: &[&str]) -> Run {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_voltfleet-provision"));
    cmd.args(args)
        .arg("--env")
        .arg(&env.path)
        .arg("--stacks")
        .arg(fixtures().join(stacks))
        .args(["--endpoint-url", &moto.endpoint])
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_CONFIG_FILE", env.dir.path().join("no-aws-config"))
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            env.dir.path().join("no-aws-credentials"),
        );
    for var in [
        "AWS_PROFILE",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "AWS_ENDPOINT_URL",
        "AWS_SESSION_TOKEN",
    ] {
        cmd.env_remove(var);
    }
    let out = tokio::time::timeout(Duration::from_secs(120), cmd.output())
        .await
        .expect("voltfleet-provision finished within 120 s")
        .expect("voltfleet-provision runs");
    Run::from(out)
}

const FAST: &[&str] = &[
    "--yes",
    "--poll-interval",
    "100ms",
    "--stack-timeout",
    "60s",
    "--change-set-timeout",
    "30s",
];

fn deploy_args<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["deploy"];
    args.extend_from_slice(FAST);
    args.extend_from_slice(extra);
    args
}

#[tokio::test]
async fn deploys_in_order_feeds_outputs_updates_and_reports_no_changes() {
    let moto = Moto::start().await;
    let env = Env::new("staging", None, "10.20.0.0/16");

    let first = provision(&moto, &env, "stacks.json", &deploy_args(&[])).await;
    first
        .ok()
        .stdout_has("1. network → voltfleet-staging-network in eu-west-1")
        .stdout_has("network: created (CREATE_COMPLETE, voltfleet-staging-network in eu-west-1)")
        .stdout_has("storage: created (CREATE_COMPLETE, voltfleet-staging-storage in eu-west-1)")
        .stdout_has("Deployed 2 stacks: network (created), storage (created)")
        .stderr_has("Deploying 2 stacks: network, storage");
    // The events as they arrived, on standard error: timestamp, resource, type, status, reason.
    let events: Vec<&str> = first
        .stderr
        .lines()
        .filter(|l| l.starts_with("  network  "))
        .collect();
    assert!(
        events.iter().any(|l| l.contains("voltfleet-staging-network  AWS::CloudFormation::Stack  CREATE_IN_PROGRESS  User Initiated")),
        "{events:#?}"
    );
    assert!(
        events
            .last()
            .is_some_and(|l| l.ends_with("AWS::CloudFormation::Stack  CREATE_COMPLETE")),
        "{events:#?}"
    );
    assert!(
        events.iter().all(|l| l
            .split("  ")
            .nth(2)
            .is_some_and(|t| humantime::parse_rfc3339(t).is_ok())),
        "a timestamp leads: {events:#?}"
    );

    // The network's resources exist, and its outputs reached the storage stack's parameters.
    let network = moto.stack("voltfleet-staging-network").await;
    let (vpc, subnets, sg) = (
        output(&network, "VpcId"),
        output(&network, "SubnetIds"),
        output(&network, "WebSecurityGroupId"),
    );
    assert!(
        vpc.starts_with("vpc-") && sg.starts_with("sg-"),
        "{vpc} {sg}"
    );
    assert_eq!(
        subnets
            .split(',')
            .filter(|s| s.starts_with("subnet-"))
            .count(),
        2,
        "{subnets}"
    );
    let resources = moto
        .cloudformation()
        .await
        .describe_stack_resources()
        .stack_name("voltfleet-staging-network")
        .send()
        .await
        .expect("describe_stack_resources");
    let physical = |logical: &str| {
        resources
            .stack_resources()
            .iter()
            .find(|r| r.logical_resource_id() == Some(logical))
            .and_then(|r| r.physical_resource_id())
            .unwrap_or_else(|| panic!("no resource {logical}"))
            .to_string()
    };
    assert_eq!(physical("Vpc"), vpc);
    assert_eq!(
        format!("{},{}", physical("SubnetA"), physical("SubnetB")),
        subnets
    );
    assert!(physical("InternetGateway").starts_with("igw-"));
    assert_eq!(physical("WebSecurityGroup"), sg);
    assert_eq!(
        moto.ssm_value("/voltfleet/staging/e2e/network").await,
        format!("{vpc}|{subnets}|{sg}")
    );
    assert_eq!(
        moto.ssm_value("/voltfleet/staging/e2e/greeting").await,
        "hello"
    );
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&moto.sdk_config().await)
            .force_path_style(true)
            .build(),
    );
    s3.head_bucket()
        .bucket("voltfleet-staging-e2e-storage")
        .send()
        .await
        .expect("the bucket exists");

    // The stack tags, and no termination protection outside production.
    let mut tags: Vec<(String, String)> = network
        .tags()
        .iter()
        .map(|t| {
            (
                t.key().unwrap_or_default().to_string(),
                t.value().unwrap_or_default().to_string(),
            )
        })
        .collect();
    tags.sort();
    assert_eq!(
        tags,
        [
            ("Environment", "staging"),
            ("Owner", "ev-ops"),
            ("Project", "voltfleet"),
            ("Stack", "network")
        ]
        .map(|(k, v)| (k.to_string(), v.to_string()))
    );
    assert_eq!(network.enable_termination_protection(), Some(false));

    // Nothing changed: nothing is executed, and the run succeeds.
    let again = provision(&moto, &env, "stacks.json", &deploy_args(&[])).await;
    again
        .ok()
        .stdout_has("network: no changes (CREATE_COMPLETE")
        .stdout_has("storage: no changes (CREATE_COMPLETE")
        .stdout_has("Deployed 2 stacks: network (no changes), storage (no changes)")
        .stdout_lacks("change set voltfleet-deploy");
    assert!(
        !again.stderr.contains("_IN_PROGRESS"),
        "no operation ran:\n{}",
        again.stderr
    );

    // An update: a change set computed, shown, executed; the new value arrives.
    env.write("staging", Some("hello again"), "10.20.0.0/16");
    let update = provision(&moto, &env, "stacks.json", &deploy_args(&[])).await;
    update
        .ok()
        .stdout_has("network: no changes")
        .stdout_has("storage: change set voltfleet-deploy-storage-")
        .stdout_has("storage: updated (UPDATE_COMPLETE, voltfleet-staging-storage in eu-west-1)")
        .stderr_has("storage: executing change set voltfleet-deploy-storage-")
        .stderr_has("voltfleet-staging-storage  AWS::CloudFormation::Stack  UPDATE_COMPLETE");
    assert_eq!(
        moto.ssm_value("/voltfleet/staging/e2e/greeting").await,
        "hello again"
    );
    assert_eq!(
        moto.stack("voltfleet-staging-storage")
            .await
            .stack_status()
            .map(|s| s.as_str()),
        Some("UPDATE_COMPLETE")
    );

    // --only: the network is not touched, and its outputs are read from the stack that exists.
    env.write("staging", Some("only storage"), "10.20.0.0/16");
    let only = provision(
        &moto,
        &env,
        "stacks.json",
        &deploy_args(&["--only", "storage"]),
    )
    .await;
    only.ok()
        .stderr_has("Deploying 1 stack: storage (not deployed now: network)")
        .stdout_has("storage: updated")
        .stdout_lacks("network: ");
    assert_eq!(
        moto.ssm_value("/voltfleet/staging/e2e/greeting").await,
        "only storage"
    );
    assert_eq!(
        moto.ssm_value("/voltfleet/staging/e2e/network").await,
        format!("{vpc}|{subnets}|{sg}")
    );

    // outputs: every stack's, as they are.
    let outputs = provision(&moto, &env, "stacks.json", &["outputs"]).await;
    outputs
        .ok()
        .stdout_has("network (voltfleet-staging-network in eu-west-1, CREATE_COMPLETE):")
        .stdout_has(&format!("VpcId               {vpc}"))
        .stdout_has("storage (voltfleet-staging-storage in eu-west-1, UPDATE_COMPLETE):")
        .stdout_has("BucketName            voltfleet-staging-e2e-storage");
}

#[tokio::test]
async fn a_failing_stack_stops_the_run_and_later_stacks_are_not_created() {
    let moto = Moto::start().await;
    let env = Env::new("staging", None, "10.20.0.0/16");

    let run = provision(&moto, &env, "stacks-failing.json", &deploy_args(&[])).await;
    run.failed()
        .stdout_has("network: created")
        .stdout_lacks("broken: ")
        .stdout_lacks("storage: ")
        .stderr_has("voltfleet-provision: stack broken (voltfleet-staging-broken in eu-west-1) failed: CloudFormation refused to create it: InvalidSubnet.Range: The CIDR '192.168.0.0/24' is invalid.")
        .stderr_has("  Deployed before it (left as they are): network")
        .stderr_has("  Not touched (after it): storage")
        .stderr_has("  Next:  ");
    let names = moto.stack_names().await;
    assert!(
        names.contains(&"voltfleet-staging-network".to_string()),
        "{names:?}"
    );
    assert!(
        !names.contains(&"voltfleet-staging-storage".to_string()),
        "{names:?}"
    );
    assert!(
        moto.cloudformation()
            .await
            .describe_stacks()
            .stack_name("voltfleet-staging-storage")
            .send()
            .await
            .is_err()
    );

    // Running again does not step over the failed stack: it is refused before anything changes.
    let again = provision(&moto, &env, "stacks-failing.json", &deploy_args(&[])).await;
    again
        .failed()
        .stderr_has("nothing was deployed: 1 problem:")
        .stderr_has("stack broken: voltfleet-staging-broken is");
    assert!(
        !moto
            .stack_names()
            .await
            .contains(&"voltfleet-staging-storage".to_string())
    );
}

#[tokio::test]
async fn a_malformed_parameter_stops_deploy_before_any_stack_exists() {
    let moto = Moto::start().await;
    let env = Env::new("staging", None, "10.20.0.0/33");

    let run = provision(&moto, &env, "stacks.json", &deploy_args(&[])).await;
    run.failed()
        .stderr_has("voltfleet-provision: the check found 1 problem:")
        .stderr_has("stack network, parameter VpcCidr (")
        .stderr_has("\"10.20.0.0/33\" does not match AllowedPattern")
        .stderr_has("(ConstraintDescription: \"a CIDR block from /16 to /24, like 10.20.0.0/16\")");
    assert!(run.stdout.is_empty(), "no plan: {}", run.stdout);
    assert_eq!(moto.stack_names().await, Vec::<String>::new());

    // Without --yes and without a terminal to ask on, nothing starts either.
    env.write("staging", None, "10.20.0.0/16");
    let run = provision(
        &moto,
        &env,
        "stacks.json",
        &["deploy", "--poll-interval", "100ms"],
    )
    .await;
    run.failed()
        .stderr_has("pass --yes to deploy without asking");
    assert_eq!(moto.stack_names().await, Vec::<String>::new());
}

#[tokio::test]
async fn only_needs_the_stacks_it_reads_and_production_is_protected() {
    let moto = Moto::start().await;
    let env = Env::new("production", None, "10.20.0.0/16");

    // The storage stack alone cannot start: the network it reads from is not there.
    let run = provision(
        &moto,
        &env,
        "stacks.json",
        &deploy_args(&["--only", "storage"]),
    )
    .await;
    run.failed()
        .stderr_has("nothing was deployed: 3 problems:")
        .stderr_has("stack storage, parameter VpcId: comes from the output VpcId of stack network, but stack network is not deployed; deploy network first, or set VpcId in the environment file's parameters");
    assert_eq!(moto.stack_names().await, Vec::<String>::new());

    let run = provision(
        &moto,
        &env,
        "stacks.json",
        &deploy_args(&["--only", "netwrok"]),
    )
    .await;
    run.failed()
        .stderr_has("--only: no stack netwrok in")
        .stderr_has("did you mean network?");

    provision(
        &moto,
        &env,
        "stacks.json",
        &deploy_args(&["--only", "network"]),
    )
    .await
    .ok()
    .stdout_has("network: created (CREATE_COMPLETE, voltfleet-production-network in eu-west-1)")
    .stdout_has("termination protection on");
    let network = moto.stack("voltfleet-production-network").await;
    assert_eq!(network.enable_termination_protection(), Some(true));
    assert_eq!(moto.stack_names().await, ["voltfleet-production-network"]);

    provision(
        &moto,
        &env,
        "stacks.json",
        &deploy_args(&["--only", "storage"]),
    )
    .await
    .ok()
    .stdout_has("storage: created (CREATE_COMPLETE, voltfleet-production-storage in eu-west-1)");
    assert_eq!(
        moto.ssm_value("/voltfleet/production/e2e/network").await,
        format!(
            "{}|{}|{}",
            output(&network, "VpcId"),
            output(&network, "SubnetIds"),
            output(&network, "WebSecurityGroupId")
        )
    );
}

/// The compute pieces the real web and app stacks are made of, as far as moto's CloudFormation
/// creates them: a load balancer with its target group and listener, a launch template, an
/// Auto Scaling group over the network stack's two subnets, and a Multi-AZ database. What moto
/// cannot create (WAF, CloudFront, RDS Proxy, ElastiCache replication groups, `Fn::Cidr`, KMS
/// keys) is checked offline by `provision/check` instead.
#[tokio::test]
async fn deploys_load_balancer_launch_template_auto_scaling_group_and_database() {
    let moto = Moto::start().await;
    let env = Env::new("staging", None, "10.20.0.0/16");
    provision(&moto, &env, "stacks-compute.json", &deploy_args(&[]))
        .await
        .ok()
        .stdout_has("compute: created (CREATE_COMPLETE, voltfleet-staging-compute in eu-west-1)")
        .stdout_has("Deployed 3 stacks: network (created), storage (created), compute (created)");

    let compute = moto.stack("voltfleet-staging-compute").await;
    assert_eq!(
        output(&compute, "AutoScalingGroupName"),
        "voltfleet-staging-web"
    );
    assert_eq!(
        output(&compute, "DatabaseInstanceId"),
        "voltfleet-staging-db"
    );
    assert!(
        output(&compute, "LoadBalancerDnsName").ends_with(".elb.amazonaws.com"),
        "{}",
        output(&compute, "LoadBalancerDnsName")
    );
    let resources = moto
        .cloudformation()
        .await
        .describe_stack_resources()
        .stack_name("voltfleet-staging-compute")
        .send()
        .await
        .expect("describe_stack_resources");
    let created: Vec<(&str, &str)> = resources
        .stack_resources()
        .iter()
        .filter_map(|r| Some((r.logical_resource_id()?, r.resource_type()?)))
        .collect();
    for (logical, kind) in [
        ("LoadBalancer", "AWS::ElasticLoadBalancingV2::LoadBalancer"),
        ("TargetGroup", "AWS::ElasticLoadBalancingV2::TargetGroup"),
        ("Listener", "AWS::ElasticLoadBalancingV2::Listener"),
        ("LaunchTemplate", "AWS::EC2::LaunchTemplate"),
        ("Group", "AWS::AutoScaling::AutoScalingGroup"),
        ("DatabaseSubnets", "AWS::RDS::DBSubnetGroup"),
        ("Database", "AWS::RDS::DBInstance"),
    ] {
        assert!(
            created.contains(&(logical, kind)),
            "{logical} ({kind}) was not created: {created:#?}"
        );
    }
}

//! `voltfleet-provision`: checks and deploys voltfleet's CloudFormation stacks.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};

use voltfleet_provision::deploy::{self, AwsOptions, Clients, DeployError, DeployOptions, Limits};
use voltfleet_provision::plan::{self, Inputs};

#[derive(Debug, Parser)]
#[command(
    name = "voltfleet-provision",
    version,
    about = "Checks and deploys voltfleet's CloudFormation stacks in order"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    #[command(flatten)]
    global: Global,
}

#[derive(Debug, Args)]
struct Global {
    /// The list of stacks, in order (default: stacks.json beside the environment file's directory).
    #[arg(long, global = true, value_name = "FILE")]
    stacks: Option<PathBuf>,
    /// Use this endpoint instead of AWS's (moto_server, LocalStack).
    #[arg(long, global = true, value_name = "URL")]
    endpoint_url: Option<String>,
    /// Replace the environment file's region (stacks pinned to a region keep theirs).
    #[arg(long, global = true, value_name = "REGION")]
    region: Option<String>,
    /// The AWS profile to use from the shared configuration.
    #[arg(long, global = true, value_name = "NAME")]
    profile: Option<String>,
}

#[derive(Debug, Args)]
struct EnvArg {
    /// The environment file: provision/environments/<env>.json.
    #[arg(long, value_name = "FILE")]
    env: PathBuf,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check the stacks, their templates and the environment file; print the plan, or every problem.
    Check(EnvArg),
    /// Check, then create or update the stacks in order, each one's outputs feeding the next.
    Deploy(DeployArgs),
    /// Print every stack's outputs as they are in AWS.
    Outputs(EnvArg),
}

#[derive(Debug, Args)]
struct DeployArgs {
    #[command(flatten)]
    env: EnvArg,
    /// Deploy only these stacks (comma-separated); the others' outputs are read from AWS.
    #[arg(long, value_delimiter = ',', value_name = "STACK,...")]
    only: Vec<String>,
    /// Create stacks and execute change sets without asking.
    #[arg(long)]
    yes: bool,
    /// Delete a stack whose creation failed (ROLLBACK_COMPLETE) and create it again.
    #[arg(long)]
    recreate_failed: bool,
    /// How long one stack may take to create, update or delete.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "60m", value_name = "DURATION")]
    stack_timeout: Duration,
    /// How long CloudFormation may take to compute a change set.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "10m", value_name = "DURATION")]
    change_set_timeout: Duration,
    /// How often stacks, events and change sets are read while waiting.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "5s", value_name = "DURATION")]
    poll_interval: Duration,
}

/// `provision/environments/staging.json` → `provision/stacks.json`.
fn default_stacks_file(env: &Path) -> PathBuf {
    let env_dir = env.parent().filter(|dir| !dir.as_os_str().is_empty());
    match env_dir {
        // `environments/staging.json`, from inside provision/: the parent of `environments`.
        Some(dir) => dir.parent().unwrap_or(Path::new("")).join("stacks.json"),
        // `staging.json`, from inside provision/environments/.
        None => PathBuf::from("../stacks.json"),
    }
}

fn inputs(global: &Global, env: &Path) -> Inputs {
    Inputs {
        stacks_file: global
            .stacks
            .clone()
            .unwrap_or_else(|| default_stacks_file(env)),
        env_file: env.to_path_buf(),
        region_override: global.region.clone(),
    }
}

/// The command line again, for the advice after a failure.
fn rerun_command() -> String {
    std::env::args()
        .enumerate()
        .filter(|(_, a)| a != "--recreate-failed")
        .map(|(i, a)| {
            if i == 0 {
                "voltfleet-provision".to_string()
            } else {
                a
            }
        })
        .map(|a| {
            if a.is_empty() || a.contains(|c: char| c.is_whitespace() || "'\"$`\\".contains(c)) {
                format!("'{}'", a.replace('\'', r"'\''"))
            } else {
                a
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn print_stdout(text: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .context("writing to standard output")?;
    out.flush().context("writing to standard output")
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let aws = AwsOptions {
        endpoint_url: cli.global.endpoint_url.clone(),
        profile: cli.global.profile.clone(),
    };
    match cli.command {
        Command::Check(a) => {
            let plan = plan::check(&inputs(&cli.global, &a.env)).map_err(DeployError::Check)?;
            print_stdout(&plan::render(&plan))
        }
        Command::Deploy(a) => {
            let plan = plan::check(&inputs(&cli.global, &a.env.env)).map_err(DeployError::Check)?;
            print_stdout(&plan::render(&plan))?;
            let options = DeployOptions {
                only: a.only,
                yes: a.yes,
                recreate_failed: a.recreate_failed,
                limits: Limits {
                    stack_timeout: a.stack_timeout,
                    change_set_timeout: a.change_set_timeout,
                    poll_interval: a.poll_interval,
                },
                rerun: rerun_command(),
            };
            let mut clients = Clients::new(aws);
            let done = deploy::deploy(&plan, &mut clients, &options).await?;
            print_stdout(&format!(
                "\nDeployed {} stack{}: {}\n",
                done.len(),
                if done.len() == 1 { "" } else { "s" },
                done.iter()
                    .map(|(name, outcome)| format!("{name} ({outcome})"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        }
        Command::Outputs(a) => {
            let stacks = plan::locate(&inputs(&cli.global, &a.env)).map_err(DeployError::Check)?;
            let mut clients = Clients::new(aws);
            deploy::show_outputs(&stacks, &mut clients).await?;
            Ok(())
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("voltfleet-provision: {e:#}");
            ExitCode::FAILURE
        }
    }
}

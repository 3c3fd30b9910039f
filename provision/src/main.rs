//! `voltfleet-provision`: checks and deploys voltfleet's CloudFormation stacks.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};

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
}

/// `provision/environments/staging.json` → `provision/stacks.json`.
fn default_stacks_file(env: &Path) -> PathBuf {
    match env.parent().and_then(Path::parent) {
        Some(dir) if !dir.as_os_str().is_empty() => dir.join("stacks.json"),
        _ => PathBuf::from("../stacks.json"),
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

fn print_stdout(text: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .context("writing to standard output")?;
    out.flush().context("writing to standard output")
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Check(a) => {
            let plan = plan::check(&inputs(&cli.global, &a.env)).map_err(|problems| {
                let mut text = format!(
                    "the check found {} problem{}:",
                    problems.len(),
                    if problems.len() == 1 { "" } else { "s" }
                );
                for p in &problems {
                    text.push_str("\n  - ");
                    text.push_str(&p.to_string());
                }
                anyhow::anyhow!(text)
            })?;
            print_stdout(&plan::render(&plan))
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

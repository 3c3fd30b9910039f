//! `check`: every stack's parameters matched with where their values come from — the
//! environment file, an earlier stack's output, or the template's Default — and every problem
//! found on the way, before anything exists in AWS.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::config::{self, EnvFile, StackEntry};
use crate::problem::{Problem, nearest};
use crate::template::{self, ParamSpec, TemplateInfo};
use crate::validate;

/// What `check` reads.
#[derive(Debug, Clone)]
pub struct Inputs {
    /// `provision/stacks.json`; templates are relative to its directory.
    pub stacks_file: PathBuf,
    /// `provision/environments/<env>.json`.
    pub env_file: PathBuf,
    /// Replaces the environment file's region (not that of a stack pinned to a region).
    pub region_override: Option<String>,
}

/// Where a parameter's value comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The environment file's top-level `environment`.
    Environment(String),
    /// The environment file's `parameters`.
    File(String),
    /// The output of the same name of an earlier stack.
    Output { stack: String },
    /// The template's Default (not passed: CloudFormation applies it).
    Default(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct PlannedParam {
    pub spec: ParamSpec,
    pub source: Source,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PlannedStack {
    /// As in stacks.json: `network`.
    pub name: String,
    /// `voltfleet-<environment>-<name>`.
    pub stack_name: String,
    pub region: String,
    /// As written in stacks.json.
    pub template: String,
    pub template_body: String,
    pub parameters: Vec<PlannedParam>,
    pub outputs: Vec<String>,
}

/// A checked deployment: every stack with every parameter's source.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub environment: String,
    pub region: String,
    pub env_file: PathBuf,
    pub stacks_file: PathBuf,
    pub tags: BTreeMap<String, String>,
    pub stacks: Vec<PlannedStack>,
}

impl Plan {
    pub fn is_production(&self) -> bool {
        self.environment == "production"
    }

    pub fn stack(&self, name: &str) -> Option<&PlannedStack> {
        self.stacks.iter().find(|s| s.name == name)
    }

    /// The tags every stack carries: the deploy command's own, then the file's.
    pub fn stack_tags(&self, stack: &str) -> Vec<(String, String)> {
        let mut tags = vec![
            ("Project".to_string(), "voltfleet".to_string()),
            ("Environment".to_string(), self.environment.clone()),
            ("Stack".to_string(), stack.to_string()),
        ];
        tags.extend(self.tags.iter().map(|(k, v)| (k.clone(), v.clone())));
        tags
    }
}

/// A stack's template, read and parsed (or not), for the checks.
struct Loaded {
    entry: StackEntry,
    body: String,
    info: TemplateInfo,
}

/// Reads everything and checks it; `Err` lists every problem found.
pub fn check(inputs: &Inputs) -> Result<Plan, Vec<Problem>> {
    let mut problems = Vec::new();

    let entries = read_stacks(inputs, &mut problems);
    let base = inputs.stacks_file.parent().unwrap_or(Path::new("."));
    let loaded: Vec<Loaded> = entries
        .into_iter()
        .map(|entry| {
            let path = base.join(&entry.template);
            let shown = path.display().to_string();
            match std::fs::read_to_string(&path) {
                Ok(body) => {
                    let info = template::parse(&shown, &body, &mut problems);
                    Loaded { entry, body, info }
                }
                Err(e) => {
                    problems.push(Problem::new(
                        format!("stack {}", entry.name),
                        format!("template {shown} cannot be read: {e}"),
                    ));
                    Loaded {
                        entry,
                        body: String::new(),
                        info: TemplateInfo::default(),
                    }
                }
            }
        })
        .collect();

    let env = read_env(inputs, &mut problems);
    if let Some(r) = &inputs.region_override
        && !config::is_region(r)
    {
        problems.push(Problem::new(
            "--region",
            format!("{r:?} is not an AWS region name like eu-west-1"),
        ));
    }
    let env = env.unwrap_or_default();

    // Without a readable environment file, every required parameter would be reported missing:
    // noise around the one problem that matters.
    let mut stack_problems = Vec::new();
    check_unknown_keys(&env, &loaded, &mut stack_problems);
    let stacks = plan_stacks(&env, &loaded, inputs, &mut stack_problems);
    if env.parsed {
        problems.extend(stack_problems);
    }

    match (&env.environment, &env.region, problems.is_empty()) {
        (Some(environment), Some(region), true) => Ok(Plan {
            environment: environment.clone(),
            region: inputs
                .region_override
                .clone()
                .unwrap_or_else(|| region.clone()),
            env_file: inputs.env_file.clone(),
            stacks_file: inputs.stacks_file.clone(),
            tags: env.tags.clone(),
            stacks,
        }),
        _ => Err(problems),
    }
}

/// Where each stack lives (name, stack name, region), from stacks.json and the environment file
/// only: `outputs` needs neither the templates nor the parameters.
pub fn locate(inputs: &Inputs) -> Result<Vec<(String, String, String)>, Vec<Problem>> {
    let mut problems = Vec::new();
    let entries = read_stacks(inputs, &mut problems);
    let env = read_env(inputs, &mut problems).unwrap_or_default();
    let region = inputs.region_override.clone().or(env.region);
    match (env.environment, region) {
        (Some(environment), Some(region)) if problems.is_empty() => Ok(entries
            .into_iter()
            .map(|e| {
                let r = e.region.unwrap_or_else(|| region.clone());
                let stack_name = format!("voltfleet-{environment}-{}", e.name);
                (e.name, stack_name, r)
            })
            .collect()),
        _ => Err(problems),
    }
}

/// `stacks.json`, parsed; a file that cannot be read is a problem and no stacks.
fn read_stacks(inputs: &Inputs, problems: &mut Vec<Problem>) -> Vec<config::StackEntry> {
    match std::fs::read_to_string(&inputs.stacks_file) {
        Ok(text) => config::parse_stacks(&inputs.stacks_file, &text, problems),
        Err(e) => {
            problems.push(Problem::new(
                inputs.stacks_file.display().to_string(),
                format!("cannot be read: {e} (name the list of stacks with --stacks)"),
            ));
            Vec::new()
        }
    }
}

/// The environment file, parsed; `None` (and a problem) when it cannot be read.
fn read_env(inputs: &Inputs, problems: &mut Vec<Problem>) -> Option<EnvFile> {
    match std::fs::read_to_string(&inputs.env_file) {
        Ok(text) => Some(config::parse_env(&inputs.env_file, &text, problems)),
        Err(e) => {
            problems.push(Problem::new(
                inputs.env_file.display().to_string(),
                format!("cannot be read: {e}"),
            ));
            None
        }
    }
}

/// A key in the environment file that no stack declares is a typo or a leftover.
fn check_unknown_keys(env: &EnvFile, loaded: &[Loaded], problems: &mut Vec<Problem>) {
    let mut declared: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for l in loaded {
        for p in &l.info.parameters {
            declared
                .entry(p.name.as_str())
                .or_default()
                .push(l.entry.name.as_str());
        }
    }
    for key in env.parameters.keys() {
        if declared.contains_key(key.as_str()) {
            continue;
        }
        let hint = match nearest(key, declared.keys().copied()) {
            Some(n) => format!(
                "; did you mean {n} (declared by {})?",
                declared[n].join(", ")
            ),
            None => String::new(),
        };
        problems.push(Problem::new(
            format!("{}: parameters.{key}", env.path.display()),
            format!("no stack declares a parameter {key}{hint}"),
        ));
    }
}

fn plan_stacks(
    env: &EnvFile,
    loaded: &[Loaded],
    inputs: &Inputs,
    problems: &mut Vec<Problem>,
) -> Vec<PlannedStack> {
    let env_region = inputs
        .region_override
        .clone()
        .or_else(|| env.region.clone())
        .unwrap_or_default();
    let environment = env.environment.clone().unwrap_or_default();
    let env_shown = env.path.display().to_string();
    let base = inputs.stacks_file.parent().unwrap_or(Path::new("."));

    let mut planned = Vec::new();
    for (i, l) in loaded.iter().enumerate() {
        let template_shown = base.join(&l.entry.template).display().to_string();
        let mut parameters = Vec::new();
        for spec in &l.info.parameters {
            let at = format!(
                "stack {}, parameter {} ({template_shown}:{})",
                l.entry.name, spec.name, spec.line
            );
            let (source, value_from) = if spec.name == "Environment" {
                (
                    Source::Environment(environment.clone()),
                    Some("the environment file's \"environment\""),
                )
            } else if let Some(v) = env.parameters.get(&spec.name) {
                (Source::File(v.clone()), Some(env_shown.as_str()))
            } else if let Some(provider) = loaded[..i]
                .iter()
                .rev()
                .find(|e| e.info.outputs.contains(&spec.name))
            {
                (
                    Source::Output {
                        stack: provider.entry.name.clone(),
                    },
                    None,
                )
            } else if let Some(d) = &spec.default {
                (Source::Default(d.clone()), Some("its Default"))
            } else {
                let later = loaded[i + 1..]
                    .iter()
                    .filter(|e| e.info.outputs.contains(&spec.name))
                    .map(|e| e.entry.name.as_str())
                    .collect::<Vec<_>>();
                let later = if later.is_empty() {
                    String::new()
                } else {
                    format!(
                        " (stack {} has an output {}, but it comes later in the order)",
                        later.join(", "),
                        spec.name
                    )
                };
                problems.push(Problem::new(
                    at,
                    format!(
                        "required (no Default), and neither {env_shown} nor an earlier stack's outputs provide it{later}; add \"{}\": … to the file's parameters",
                        spec.name
                    ),
                ));
                continue;
            };
            let skip_value_check =
                matches!(source, Source::Environment(_)) && env.environment.is_none();
            if let (Some(from), false) = (value_from, skip_value_check) {
                let value = match &source {
                    Source::Environment(v) | Source::File(v) | Source::Default(v) => v.as_str(),
                    Source::Output { .. } => "",
                };
                for failure in validate::check_value(spec, value) {
                    problems.push(Problem::new(at.clone(), format!("{failure}, from {from}")));
                }
            }
            parameters.push(PlannedParam {
                spec: spec.clone(),
                source,
            });
        }
        planned.push(PlannedStack {
            name: l.entry.name.clone(),
            stack_name: format!("voltfleet-{environment}-{}", l.entry.name),
            region: l.entry.region.clone().unwrap_or_else(|| env_region.clone()),
            template: l.entry.template.clone(),
            template_body: l.body.clone(),
            parameters,
            outputs: l.info.outputs.clone(),
        });
    }
    planned
}

/// The outputs known so far, by stack.
pub type Outputs = BTreeMap<String, BTreeMap<String, String>>;

/// The parameters to pass for `stack`: values from the file, and from the outputs of the stacks
/// before it (checked now that they are known). Parameters left to their Default are not passed.
pub fn resolve(
    stack: &PlannedStack,
    outputs: &Outputs,
) -> Result<Vec<(String, String)>, Vec<Problem>> {
    resolve_except(stack, outputs, &BTreeSet::new())
}

/// Like [`resolve`], leaving out the outputs of the `pending` stacks: those deployed earlier in
/// the same run, whose outputs are not known yet.
pub fn resolve_except(
    stack: &PlannedStack,
    outputs: &Outputs,
    pending: &BTreeSet<String>,
) -> Result<Vec<(String, String)>, Vec<Problem>> {
    let mut values = Vec::new();
    let mut problems = Vec::new();
    for p in &stack.parameters {
        let at = format!("stack {}, parameter {}", stack.name, p.spec.name);
        match &p.source {
            Source::Environment(v) | Source::File(v) => {
                values.push((p.spec.name.clone(), v.clone()))
            }
            Source::Default(_) => {}
            Source::Output { stack: provider } if pending.contains(provider) => {}
            Source::Output { stack: provider } => {
                match outputs.get(provider).and_then(|o| o.get(&p.spec.name)) {
                    Some(v) => {
                        let failures = validate::check_value(&p.spec, v);
                        if failures.is_empty() {
                            values.push((p.spec.name.clone(), v.clone()));
                        }
                        for failure in failures {
                            problems.push(Problem::new(
                                at.clone(),
                                format!(
                                    "{failure}, from the output {} of stack {provider}",
                                    p.spec.name
                                ),
                            ));
                        }
                    }
                    // A conditional output that the stack did not produce.
                    None if p.spec.default.is_some() => {}
                    None => {
                        let state = match outputs.get(provider) {
                            Some(o) if o.is_empty() => format!("stack {provider} has no outputs"),
                            Some(o) => format!(
                                "stack {provider} has no output {} (it has {})",
                                p.spec.name,
                                o.keys().cloned().collect::<Vec<_>>().join(", ")
                            ),
                            None => format!("stack {provider} is not deployed"),
                        };
                        problems.push(Problem::new(
                            at.clone(),
                            format!(
                                "comes from the output {} of stack {provider}, but {state}; deploy {provider} first, or set {} in the environment file's parameters",
                                p.spec.name, p.spec.name
                            ),
                        ));
                    }
                }
            }
        }
    }
    if problems.is_empty() {
        Ok(values)
    } else {
        Err(problems)
    }
}

/// The value of a parameter for display: NoEcho values are never shown.
fn shown(spec: &ParamSpec, value: &str) -> String {
    if spec.no_echo {
        "****".to_string()
    } else if value.is_empty() {
        "\"\"".to_string()
    } else {
        value.to_string()
    }
}

/// The plan as `check` prints it.
pub fn render(plan: &Plan) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Plan for {} ({}): {} stack{}, default region {}",
        plan.environment,
        plan.env_file.display(),
        plan.stacks.len(),
        if plan.stacks.len() == 1 { "" } else { "s" },
        plan.region
    );
    let extra: Vec<String> = plan.tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let _ = writeln!(
        out,
        "Tags on every stack: Project=voltfleet Environment={} Stack=<stack>{}{}",
        plan.environment,
        if extra.is_empty() { "" } else { " " },
        extra.join(" ")
    );
    for (i, s) in plan.stacks.iter().enumerate() {
        let _ = writeln!(
            out,
            "\n{}. {} → {} in {} ({}){}",
            i + 1,
            s.name,
            s.stack_name,
            s.region,
            s.template,
            if plan.is_production() {
                ", termination protection on"
            } else {
                ""
            }
        );
        let width = s
            .parameters
            .iter()
            .map(|p| p.spec.name.len())
            .max()
            .unwrap_or(0);
        let rows: Vec<(String, String, String)> = s
            .parameters
            .iter()
            .map(|p| {
                let (value, from) = match &p.source {
                    Source::Environment(v) => (shown(&p.spec, v), "environment".to_string()),
                    Source::File(v) => (shown(&p.spec, v), plan.env_file.display().to_string()),
                    Source::Output { stack } => (
                        format!("← {stack}.{}", p.spec.name),
                        format!("output of {stack}"),
                    ),
                    Source::Default(v) => (shown(&p.spec, v), "default".to_string()),
                };
                let from = if p.spec.no_echo {
                    format!("{from}, NoEcho")
                } else {
                    from
                };
                (p.spec.name.clone(), value, from)
            })
            .collect();
        let value_width = rows.iter().map(|r| r.1.chars().count()).max().unwrap_or(0);
        if rows.is_empty() {
            let _ = writeln!(out, "   (no parameters)");
        }
        for (name, value, from) in rows {
            let pad = value_width.saturating_sub(value.chars().count());
            let _ = writeln!(out, "   {name:<width$}  {value}{}  {from}", " ".repeat(pad));
        }
    }
    out
}

/// Names given to `--only`, checked against the plan; the selected names in deploy order.
pub fn select(plan: &Plan, only: &[String]) -> Result<BTreeSet<String>, Vec<Problem>> {
    let mut problems = Vec::new();
    let mut selected = BTreeSet::new();
    for name in only {
        if plan.stack(name).is_some() {
            selected.insert(name.clone());
        } else {
            let hint = nearest(name, plan.stacks.iter().map(|s| s.name.as_str()))
                .map(|n| format!("; did you mean {n}?"))
                .unwrap_or_default();
            problems.push(Problem::new(
                "--only",
                format!(
                    "no stack {name} in {} (it has {}){hint}",
                    plan.stacks_file.display(),
                    plan.stacks
                        .iter()
                        .map(|s| s.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
    }
    if problems.is_empty() {
        Ok(selected)
    } else {
        Err(problems)
    }
}

//! `deploy` and `outputs`: the stacks created or updated in order through CloudFormation, each
//! one's outputs fed to the parameters of those after it.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt;
use std::io::{IsTerminal, Write as _};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_config::BehaviorVersion;
use aws_sdk_cloudformation::Client;
use aws_sdk_cloudformation::config::Region;
use aws_sdk_cloudformation::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_cloudformation::primitives::DateTime;
use aws_sdk_cloudformation::types::{Capability, ChangeSetType, Parameter, Stack, StackEvent, Tag};

use crate::plan::{self, Outputs, Plan, PlannedStack};
use crate::problem::Problem;
use crate::status::{self, Action};

/// How to reach AWS.
#[derive(Debug, Clone, Default)]
pub struct AwsOptions {
    /// moto_server or LocalStack instead of AWS.
    pub endpoint_url: Option<String>,
    /// A profile of the shared AWS configuration.
    pub profile: Option<String>,
}

/// Every wait is bounded.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// How long one stack may take to create, update or delete.
    pub stack_timeout: Duration,
    /// How long CloudFormation may take to compute a change set.
    pub change_set_timeout: Duration,
    /// How often the stack, its events and change sets are read while waiting.
    pub poll_interval: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            stack_timeout: Duration::from_secs(60 * 60),
            change_set_timeout: Duration::from_secs(10 * 60),
            poll_interval: Duration::from_secs(5),
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct DeployOptions {
    /// Deploy only these stacks (the others' outputs are read from AWS).
    pub only: Vec<String>,
    /// Execute change sets and create stacks without asking.
    pub yes: bool,
    /// Delete a stack whose creation failed (ROLLBACK_COMPLETE) and create it again.
    pub recreate_failed: bool,
    pub limits: Limits,
    /// The command that runs this deployment again, for the advice after a failure.
    pub rerun: String,
}

/// Why a deployment stopped.
#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    #[error("{}", list("the check found", .0))]
    Check(Vec<Problem>),
    #[error("{}", list("nothing was deployed:", .0))]
    Preflight(Vec<Problem>),
    #[error("{0}")]
    Failed(Box<StackFailure>),
    #[error(
        "deploy asks before it changes a stack, and standard input is not a terminal; pass --yes to deploy without asking"
    )]
    NeedsYes,
    #[error("{0}")]
    Declined(String),
    #[error("{what}: {message}")]
    Aws { what: String, message: String },
}

fn list(head: &str, problems: &[Problem]) -> String {
    let mut text = format!(
        "{head} {} problem{}:",
        problems.len(),
        if problems.len() == 1 { "" } else { "s" }
    );
    for p in problems {
        text.push_str("\n  - ");
        text.push_str(&p.to_string());
    }
    text
}

/// A stack that did not deploy, and the state the run leaves things in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StackFailure {
    pub stack: String,
    pub stack_name: String,
    pub region: String,
    /// What went wrong, in one sentence.
    pub cause: String,
    /// The failure events' reasons, oldest first.
    pub reasons: Vec<String>,
    /// The stack's status now (`None`: there is no such stack).
    pub status: Option<String>,
    /// Stacks of this run deployed before it.
    pub deployed: Vec<String>,
    /// Stacks of this run after it, not touched.
    pub untouched: Vec<String>,
    pub advice: Vec<String>,
}

impl fmt::Display for StackFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "stack {} ({} in {}) failed: {}",
            self.stack, self.stack_name, self.region, self.cause
        )?;
        if !self.reasons.is_empty() {
            writeln!(f, "  Failure events:")?;
            for r in &self.reasons {
                writeln!(f, "    {r}")?;
            }
        }
        let none = "none".to_string();
        for (i, line) in self.advice.iter().enumerate() {
            writeln!(f, "  {} {line}", if i == 0 { "State:" } else { "Next: " })?;
        }
        writeln!(
            f,
            "  Deployed before it (left as they are): {}",
            if self.deployed.is_empty() {
                none.clone()
            } else {
                self.deployed.join(", ")
            }
        )?;
        write!(
            f,
            "  Not touched (after it): {}",
            if self.untouched.is_empty() {
                none
            } else {
                self.untouched.join(", ")
            }
        )
    }
}

/// What happened to a stack that deployed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Created,
    Updated,
    NoChanges,
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Outcome::Created => "created",
            Outcome::Updated => "updated",
            Outcome::NoChanges => "no changes",
        })
    }
}

/// A line of results on standard output.
fn result_line(text: impl fmt::Display) {
    let mut out = std::io::stdout().lock();
    // A closed stdout (a pager quit early) must not stop a deployment half-way.
    let _ = writeln!(out, "{text}");
    let _ = out.flush();
}

/// A line of progress on standard error.
fn progress(text: impl fmt::Display) {
    eprintln!("{text}");
}

/// One CloudFormation client per region, built on first use.
#[derive(Debug)]
pub struct Clients {
    aws: AwsOptions,
    by_region: HashMap<String, Client>,
}

impl Clients {
    pub fn new(aws: AwsOptions) -> Clients {
        Clients {
            aws,
            by_region: HashMap::new(),
        }
    }

    pub async fn get(&mut self, region: &str) -> Client {
        if let Some(c) = self.by_region.get(region) {
            return c.clone();
        }
        let mut loader =
            aws_config::defaults(BehaviorVersion::latest()).region(Region::new(region.to_string()));
        if let Some(p) = &self.aws.profile {
            loader = loader.profile_name(p);
        }
        if let Some(u) = &self.aws.endpoint_url {
            loader = loader.endpoint_url(u);
        }
        let client = Client::new(&loader.load().await);
        self.by_region.insert(region.to_string(), client.clone());
        client
    }
}

fn sdk_message<E, R>(e: &SdkError<E, R>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: fmt::Debug + 'static,
{
    match (e.code(), e.message()) {
        (Some(code), Some(message)) => format!("{code}: {message}"),
        (None, Some(message)) => message.to_string(),
        // Not an answer from CloudFormation: the error's chain says why (no connection, no
        // credentials, a timeout).
        _ => {
            let mut parts: Vec<String> = Vec::new();
            let mut next: Option<&(dyn std::error::Error + 'static)> = Some(e);
            while let Some(err) = next {
                let text = err.to_string();
                if !parts.iter().any(|p| p.contains(&text)) {
                    parts.push(text);
                }
                next = err.source();
            }
            format!(
                "{} (check --endpoint-url, --region and the AWS credentials)",
                parts.join(": ")
            )
        }
    }
}

/// The stack of that name, or `None` when there is none.
pub async fn describe(client: &Client, stack_name: &str) -> Result<Option<Stack>, String> {
    match client.describe_stacks().stack_name(stack_name).send().await {
        Ok(out) => Ok(out.stacks().first().cloned()),
        Err(e)
            if e.code() == Some("ValidationError")
                && e.message().is_some_and(|m| m.contains("does not exist")) =>
        {
            Ok(None)
        }
        Err(e) => Err(sdk_message(&e)),
    }
}

fn status_of(stack: &Stack) -> Option<String> {
    stack.stack_status().map(|s| s.as_str().to_string())
}

fn outputs_of(stack: &Stack) -> BTreeMap<String, String> {
    stack
        .outputs()
        .iter()
        .filter_map(|o| {
            Some((
                o.output_key()?.to_string(),
                o.output_value().unwrap_or_default().to_string(),
            ))
        })
        .collect()
}

/// An event's time to the second (UTC), as an operator reads it.
fn time(t: Option<&DateTime>) -> String {
    t.and_then(|t| SystemTime::try_from(*t).ok())
        .map(|t| humantime::format_rfc3339_seconds(t).to_string())
        .unwrap_or_else(|| "-".to_string())
}

/// A stack event as one line: timestamp, resource, type, status, reason.
pub fn event_line(e: &StackEvent) -> String {
    let mut line = format!(
        "{}  {}  {}  {}",
        time(e.timestamp()),
        e.logical_resource_id().unwrap_or("-"),
        e.resource_type().unwrap_or("-"),
        e.resource_status().map(|s| s.as_str()).unwrap_or("-"),
    );
    if let Some(reason) = e.resource_status_reason().filter(|r| !r.is_empty()) {
        line.push_str("  ");
        line.push_str(reason);
    }
    line
}

/// Follows a stack's events: each is shown once, as it arrives.
struct EventWatcher {
    stack: String,
    stack_name: String,
    seen: HashSet<String>,
    since: Option<DateTime>,
    /// The events of this operation, oldest first.
    events: Vec<StackEvent>,
}

impl EventWatcher {
    fn new(stack: &str, stack_name: &str) -> EventWatcher {
        EventWatcher {
            stack: stack.to_string(),
            stack_name: stack_name.to_string(),
            seen: HashSet::new(),
            since: None,
            events: Vec::new(),
        }
    }

    /// Marks the events the stack already has, so that only this operation's are shown.
    async fn seed(&mut self, client: &Client) {
        if let Ok(out) = client
            .describe_stack_events()
            .stack_name(&self.stack_name)
            .send()
            .await
        {
            for e in out.stack_events() {
                if let Some(id) = e.event_id() {
                    self.seen.insert(id.to_string());
                }
                if let Some(t) = e.timestamp()
                    && self.since.is_none_or(|s| *t > s)
                {
                    self.since = Some(*t);
                }
            }
        }
    }

    /// Reads and prints the events that arrived since the last call.
    async fn poll(&mut self, client: &Client) {
        let mut fresh = Vec::new();
        let mut token: Option<String> = None;
        // Newest first: read back until an event already shown; a bounded number of pages.
        'pages: for _ in 0..20 {
            let out = match client
                .describe_stack_events()
                .stack_name(&self.stack_name)
                .set_next_token(token.clone())
                .send()
                .await
            {
                Ok(out) => out,
                Err(e) => {
                    progress(format!(
                        "  (events of {} not readable now: {})",
                        self.stack_name,
                        sdk_message(&e)
                    ));
                    return;
                }
            };
            for e in out.stack_events() {
                let id = e.event_id().unwrap_or_default();
                let old = self
                    .since
                    .is_some_and(|s| e.timestamp().is_some_and(|t| *t < s));
                if self.seen.contains(id) || old {
                    break 'pages;
                }
                fresh.push(e.clone());
            }
            token = out.next_token().map(str::to_string);
            if token.is_none() {
                break;
            }
        }
        for e in fresh.into_iter().rev() {
            self.seen
                .insert(e.event_id().unwrap_or_default().to_string());
            progress(format!("  {}  {}", self.stack, event_line(&e)));
            self.events.push(e);
        }
    }

    /// The reasons of this operation's failure events, oldest first.
    fn failure_reasons(&self) -> Vec<String> {
        self.events
            .iter()
            .filter(|e| {
                e.resource_status()
                    .is_some_and(|s| s.as_str().ends_with("_FAILED"))
            })
            .map(event_line)
            .collect()
    }
}

/// What went wrong with one stack (completed into a [`StackFailure`] by the run).
struct Failed {
    /// The operator answered no: the run stops, and nothing failed.
    declined: bool,
    cause: String,
    reasons: Vec<String>,
    status: Option<String>,
}

fn token(stack: &str, what: &str) -> String {
    let millis = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or_default();
    format!("voltfleet-{what}-{stack}-{millis}")
}

/// Asks on the terminal; `true` to go on.
async fn confirm(question: String) -> bool {
    tokio::task::spawn_blocking(move || {
        eprint!("{question} [y/N] ");
        let _ = std::io::stderr().flush();
        let mut answer = String::new();
        std::io::stdin().read_line(&mut answer).is_ok()
            && matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes")
    })
    .await
    .unwrap_or(false)
}

/// One deployment run.
struct Run<'a> {
    plan: &'a Plan,
    options: &'a DeployOptions,
}

impl Run<'_> {
    fn limits(&self) -> Limits {
        self.options.limits
    }

    fn parameters(values: &[(String, String)]) -> Vec<Parameter> {
        values
            .iter()
            .map(|(k, v)| {
                Parameter::builder()
                    .parameter_key(k)
                    .parameter_value(v)
                    .build()
            })
            .collect()
    }

    fn tags(&self, stack: &PlannedStack) -> Vec<Tag> {
        self.plan
            .stack_tags(&stack.name)
            .into_iter()
            .map(|(k, v)| Tag::builder().key(k).value(v).build())
            .collect()
    }

    fn capabilities() -> Vec<Capability> {
        vec![Capability::CapabilityIam, Capability::CapabilityNamedIam]
    }

    async fn current_status(client: &Client, stack_name: &str) -> Option<String> {
        describe(client, stack_name)
            .await
            .ok()
            .flatten()
            .as_ref()
            .and_then(status_of)
    }

    /// Waits for the stack to reach a terminal status, showing its events.
    async fn wait(&self, client: &Client, watcher: &mut EventWatcher) -> Result<Stack, Failed> {
        let deadline = tokio::time::Instant::now() + self.limits().stack_timeout;
        loop {
            watcher.poll(client).await;
            match describe(client, &watcher.stack_name).await {
                Ok(Some(stack)) => {
                    let s = status_of(&stack).unwrap_or_default();
                    if status::is_terminal(&s) {
                        watcher.poll(client).await;
                        return Ok(stack);
                    }
                    if tokio::time::Instant::now() >= deadline {
                        return Err(Failed {
                            declined: false,
                            cause: format!(
                                "still {s} after {} (--stack-timeout); CloudFormation goes on with it",
                                humantime::format_duration(self.limits().stack_timeout)
                            ),
                            reasons: watcher.failure_reasons(),
                            status: Some(s),
                        });
                    }
                }
                Ok(None) => {
                    return Err(Failed {
                        declined: false,
                        cause: "the stack disappeared while deploy waited for it".to_string(),
                        reasons: watcher.failure_reasons(),
                        status: None,
                    });
                }
                Err(e) => progress(format!(
                    "  (status of {} not readable now: {e})",
                    watcher.stack_name
                )),
            }
            tokio::time::sleep(self.limits().poll_interval).await;
        }
    }

    fn ended(&self, stack: &Stack, watcher: &EventWatcher, ok: Outcome) -> Result<Outcome, Failed> {
        let s = status_of(stack).unwrap_or_default();
        if status::is_success(&s) {
            return Ok(ok);
        }
        let mut reasons = watcher.failure_reasons();
        if reasons.is_empty()
            && let Some(r) = stack.stack_status_reason()
        {
            reasons.push(r.to_string());
        }
        Err(Failed {
            declined: false,
            cause: format!("it ended in {s}"),
            reasons,
            status: Some(s),
        })
    }

    async fn create(
        &self,
        client: &Client,
        stack: &PlannedStack,
        values: &[(String, String)],
    ) -> Result<Outcome, Failed> {
        if !self.options.yes
            && !confirm(format!(
                "Create stack {} in {}?",
                stack.stack_name, stack.region
            ))
            .await
        {
            return Err(Failed {
                declined: true,
                cause: "not created: the answer was no".to_string(),
                reasons: Vec::new(),
                status: None,
            });
        }
        progress(format!(
            "{}: creating {} in {}",
            stack.name, stack.stack_name, stack.region
        ));
        let mut watcher = EventWatcher::new(&stack.name, &stack.stack_name);
        let sent = client
            .create_stack()
            .stack_name(&stack.stack_name)
            .template_body(&stack.template_body)
            .set_parameters(Some(Self::parameters(values)))
            .set_capabilities(Some(Self::capabilities()))
            .set_tags(Some(self.tags(stack)))
            .enable_termination_protection(self.plan.is_production())
            .client_request_token(token(&stack.name, "create"))
            .send()
            .await;
        if let Err(e) = sent {
            // The request itself was refused (a template or property CloudFormation rejects at
            // once); show what events there are, if a stack was made at all.
            watcher.poll(client).await;
            return Err(Failed {
                declined: false,
                cause: format!("CloudFormation refused to create it: {}", sdk_message(&e)),
                reasons: watcher.failure_reasons(),
                status: Self::current_status(client, &stack.stack_name).await,
            });
        }
        let done = self.wait(client, &mut watcher).await?;
        self.ended(&done, &watcher, Outcome::Created)
    }

    async fn change_set(
        &self,
        client: &Client,
        stack: &PlannedStack,
        values: &[(String, String)],
        kind: ChangeSetType,
    ) -> Result<Outcome, Failed> {
        let before = Self::current_status(client, &stack.stack_name).await;
        let refused = |cause: String, status: Option<String>| Failed {
            declined: false,
            cause,
            reasons: Vec::new(),
            status,
        };
        let mut watcher = EventWatcher::new(&stack.name, &stack.stack_name);
        watcher.seed(client).await;
        let name = token(&stack.name, "deploy");
        progress(format!(
            "{}: computing a change set for {}",
            stack.name, stack.stack_name
        ));
        let created = client
            .create_change_set()
            .stack_name(&stack.stack_name)
            .change_set_name(&name)
            .change_set_type(kind.clone())
            .template_body(&stack.template_body)
            .set_parameters(Some(Self::parameters(values)))
            .set_capabilities(Some(Self::capabilities()))
            .set_tags(Some(self.tags(stack)))
            .send()
            .await;
        let id = match created {
            Ok(out) => out.id().unwrap_or(&name).to_string(),
            Err(e) if is_no_changes(e.message()) => return Ok(Outcome::NoChanges),
            Err(e) => {
                return Err(refused(
                    format!("CloudFormation refused the change set: {}", sdk_message(&e)),
                    before,
                ));
            }
        };

        // Wait for CloudFormation to compute it.
        let deadline = tokio::time::Instant::now() + self.limits().change_set_timeout;
        let mut changes = Vec::new();
        loop {
            let described = client
                .describe_change_set()
                .change_set_name(&id)
                .stack_name(&stack.stack_name)
                .send()
                .await;
            let out = match described {
                Ok(out) => out,
                Err(e) => {
                    return Err(refused(
                        format!("the change set cannot be read: {}", sdk_message(&e)),
                        before,
                    ));
                }
            };
            let st = out
                .status()
                .map(|s| s.as_str().to_string())
                .unwrap_or_default();
            match st.as_str() {
                "CREATE_COMPLETE" => {
                    changes.extend(out.changes().iter().cloned());
                    let mut next = out.next_token().map(str::to_string);
                    // The rest of a long list of changes, bounded.
                    for _ in 0..50 {
                        let Some(t) = next.take() else { break };
                        match client
                            .describe_change_set()
                            .change_set_name(&id)
                            .stack_name(&stack.stack_name)
                            .next_token(t)
                            .send()
                            .await
                        {
                            Ok(more) => {
                                changes.extend(more.changes().iter().cloned());
                                next = more.next_token().map(str::to_string);
                            }
                            Err(e) => {
                                return Err(refused(
                                    format!("the change set cannot be read: {}", sdk_message(&e)),
                                    before,
                                ));
                            }
                        }
                    }
                    break;
                }
                "FAILED" => {
                    let reason = out.status_reason().unwrap_or_default().to_string();
                    // CloudFormation keeps an empty change set as FAILED; it is of no use.
                    let _ = client
                        .delete_change_set()
                        .change_set_name(&id)
                        .stack_name(&stack.stack_name)
                        .send()
                        .await;
                    if is_no_changes(Some(&reason)) {
                        return Ok(Outcome::NoChanges);
                    }
                    return Err(refused(format!("the change set failed: {reason}"), before));
                }
                _ => {}
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(refused(
                    format!(
                        "the change set {name} was not ready after {} (--change-set-timeout); nothing was executed",
                        humantime::format_duration(self.limits().change_set_timeout)
                    ),
                    before,
                ));
            }
            tokio::time::sleep(self.limits().poll_interval).await;
        }

        result_line(format!("{}: change set {name}:", stack.name));
        if changes.is_empty() {
            result_line("  (no resource changes; parameters, outputs or tags change)");
        }
        for c in &changes {
            if let Some(rc) = c.resource_change() {
                let replacement = match rc.replacement().map(|r| r.as_str()) {
                    Some("True") => "  (replacement)",
                    Some("Conditional") => "  (may be replaced)",
                    _ => "",
                };
                result_line(format!(
                    "  {:<8} {} ({}){replacement}",
                    rc.action().map(|a| a.as_str()).unwrap_or("-"),
                    rc.logical_resource_id().unwrap_or("-"),
                    rc.resource_type().unwrap_or("-"),
                ));
            }
        }
        if !self.options.yes
            && !confirm(format!("Execute this change set on {}?", stack.stack_name)).await
        {
            let _ = client
                .delete_change_set()
                .change_set_name(&id)
                .stack_name(&stack.stack_name)
                .send()
                .await;
            return Err(Failed {
                declined: true,
                ..refused(
                    "not changed: the answer was no (the change set was deleted)".to_string(),
                    before,
                )
            });
        }
        if let Err(e) = client
            .execute_change_set()
            .change_set_name(&id)
            .stack_name(&stack.stack_name)
            .client_request_token(token(&stack.name, "execute"))
            .send()
            .await
        {
            watcher.poll(client).await;
            return Err(Failed {
                declined: false,
                cause: format!(
                    "CloudFormation refused to execute the change set: {}",
                    sdk_message(&e)
                ),
                reasons: watcher.failure_reasons(),
                status: Self::current_status(client, &stack.stack_name).await,
            });
        }
        progress(format!("{}: executing change set {name}", stack.name));
        let done = self.wait(client, &mut watcher).await?;
        let ok = if kind == ChangeSetType::Create {
            Outcome::Created
        } else {
            Outcome::Updated
        };
        self.ended(&done, &watcher, ok)
    }

    /// Deletes a stack whose creation failed, waiting for it to be gone.
    async fn delete_failed(
        &self,
        client: &Client,
        stack: &PlannedStack,
        found: &Stack,
    ) -> Result<(), Failed> {
        let fail = |cause: String, status: Option<String>| Failed {
            declined: false,
            cause,
            reasons: Vec::new(),
            status,
        };
        let before = status_of(found);
        if !self.options.yes
            && !confirm(format!(
                "Delete {} ({}) to create it again?",
                stack.stack_name,
                before.as_deref().unwrap_or("-")
            ))
            .await
        {
            return Err(Failed {
                declined: true,
                ..fail("not recreated: the answer was no".to_string(), before)
            });
        }
        // An empty stack whose creation was rolled back holds nothing worth protecting.
        if found.enable_termination_protection() == Some(true)
            && before.as_deref() == Some("ROLLBACK_COMPLETE")
            && let Err(e) = client
                .update_termination_protection()
                .stack_name(&stack.stack_name)
                .enable_termination_protection(false)
                .send()
                .await
        {
            return Err(fail(
                format!(
                    "termination protection could not be turned off: {}",
                    sdk_message(&e)
                ),
                before,
            ));
        }
        progress(format!(
            "{}: deleting {} ({})",
            stack.name,
            stack.stack_name,
            before.as_deref().unwrap_or("-")
        ));
        let mut watcher = EventWatcher::new(&stack.name, &stack.stack_name);
        watcher.seed(client).await;
        if let Err(e) = client
            .delete_stack()
            .stack_name(&stack.stack_name)
            .send()
            .await
        {
            return Err(fail(
                format!("CloudFormation refused to delete it: {}", sdk_message(&e)),
                before,
            ));
        }
        let deadline = tokio::time::Instant::now() + self.limits().stack_timeout;
        loop {
            watcher.poll(client).await;
            match describe(client, &stack.stack_name).await {
                Ok(None) => return Ok(()),
                Ok(Some(s)) if status_of(&s).as_deref() == Some("DELETE_COMPLETE") => return Ok(()),
                Ok(Some(s)) if status_of(&s).as_deref() == Some("DELETE_FAILED") => {
                    return Err(Failed {
                        declined: false,
                        cause: "its deletion failed".to_string(),
                        reasons: watcher.failure_reasons(),
                        status: status_of(&s),
                    });
                }
                Ok(Some(s)) if tokio::time::Instant::now() >= deadline => {
                    return Err(fail(
                        "its deletion did not finish in time (--stack-timeout)".to_string(),
                        status_of(&s),
                    ));
                }
                Ok(Some(_)) => {}
                Err(e) => progress(format!(
                    "  (status of {} not readable now: {e})",
                    stack.stack_name
                )),
            }
            tokio::time::sleep(self.limits().poll_interval).await;
        }
    }

    /// Production stacks carry termination protection, also those created before it was set.
    async fn protect(
        &self,
        client: &Client,
        stack: &PlannedStack,
        found: &Stack,
    ) -> Result<(), Failed> {
        if !self.plan.is_production() || found.enable_termination_protection() == Some(true) {
            return Ok(());
        }
        progress(format!("{}: turning termination protection on", stack.name));
        client
            .update_termination_protection()
            .stack_name(&stack.stack_name)
            .enable_termination_protection(true)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| Failed {
                declined: false,
                cause: format!(
                    "deployed, but termination protection could not be turned on: {}",
                    sdk_message(&e)
                ),
                reasons: Vec::new(),
                status: status_of(found),
            })
    }
}

fn is_no_changes(message: Option<&str>) -> bool {
    message.is_some_and(|m| {
        m.contains("No updates are to be performed") || m.contains("didn't contain changes")
    })
}

/// Checks the plan against what exists, then deploys the selected stacks in order.
pub async fn deploy(
    plan: &Plan,
    clients: &mut Clients,
    options: &DeployOptions,
) -> Result<Vec<(String, Outcome)>, DeployError> {
    let selected: BTreeSet<String> = if options.only.is_empty() {
        plan.stacks.iter().map(|s| s.name.clone()).collect()
    } else {
        plan::select(plan, &options.only).map_err(DeployError::Preflight)?
    };
    if !options.yes && !std::io::stdin().is_terminal() {
        return Err(DeployError::NeedsYes);
    }
    let order: Vec<&PlannedStack> = plan
        .stacks
        .iter()
        .filter(|s| selected.contains(&s.name))
        .collect();
    let last = plan
        .stacks
        .iter()
        .rposition(|s| selected.contains(&s.name))
        .unwrap_or(0);

    // Before anything changes: every stack's state, the outputs of those not deployed now, and
    // every parameter those outputs feed.
    let mut problems = Vec::new();
    let mut outputs: Outputs = BTreeMap::new();
    let mut found: HashMap<String, Option<Stack>> = HashMap::new();
    for stack in &plan.stacks[..=last] {
        let client = clients.get(&stack.region).await;
        let existing = match describe(&client, &stack.stack_name).await {
            Ok(e) => e,
            Err(e) => {
                problems.push(Problem::new(
                    format!("stack {}", stack.name),
                    format!(
                        "{} in {} cannot be read: {e}",
                        stack.stack_name, stack.region
                    ),
                ));
                continue;
            }
        };
        if selected.contains(&stack.name) {
            let st = existing.as_ref().and_then(status_of);
            if let Action::Refuse(why) = status::action_for(
                st.as_deref(),
                &stack.stack_name,
                &stack.region,
                options.recreate_failed,
            ) {
                problems.push(Problem::new(format!("stack {}", stack.name), why));
            }
        } else if let Some(s) = &existing {
            outputs.insert(stack.name.clone(), outputs_of(s));
        }
        found.insert(stack.name.clone(), existing);
    }
    for stack in &order {
        let pending: BTreeSet<String> = selected
            .iter()
            .filter(|s| *s != &stack.name)
            .cloned()
            .collect();
        if let Err(p) = plan::resolve_except(stack, &outputs, &pending) {
            problems.extend(p);
        }
    }
    if !problems.is_empty() {
        return Err(DeployError::Preflight(problems));
    }

    let skipped: Vec<&str> = plan
        .stacks
        .iter()
        .filter(|s| !selected.contains(&s.name))
        .map(|s| s.name.as_str())
        .collect();
    progress(format!(
        "Deploying {} stack{}: {}{}",
        order.len(),
        if order.len() == 1 { "" } else { "s" },
        order
            .iter()
            .map(|s| s.name.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        if skipped.is_empty() {
            String::new()
        } else {
            format!(" (not deployed now: {})", skipped.join(", "))
        }
    ));

    let run = Run { plan, options };
    let mut done: Vec<(String, Outcome)> = Vec::new();
    for (i, stack) in order.iter().enumerate() {
        let client = clients.get(&stack.region).await;
        let fail = |f: Failed, done: &[(String, Outcome)]| {
            if f.declined {
                let deployed: Vec<&str> = done.iter().map(|(n, _)| n.as_str()).collect();
                let later: Vec<&str> = order[i + 1..].iter().map(|s| s.name.as_str()).collect();
                return DeployError::Declined(format!(
                    "stopped at stack {}: {}. Deployed before it: {}. Not touched: {}.",
                    stack.name,
                    f.cause,
                    if deployed.is_empty() {
                        "none".to_string()
                    } else {
                        deployed.join(", ")
                    },
                    if later.is_empty() {
                        "none".to_string()
                    } else {
                        later.join(", ")
                    },
                ));
            }
            DeployError::Failed(Box::new(StackFailure {
                stack: stack.name.clone(),
                stack_name: stack.stack_name.clone(),
                region: stack.region.clone(),
                advice: status::failure_advice(
                    f.status.as_deref(),
                    &stack.stack_name,
                    &stack.region,
                    &options.rerun,
                ),
                cause: f.cause,
                reasons: f.reasons,
                status: f.status,
                deployed: done.iter().map(|(n, _)| n.clone()).collect(),
                untouched: order[i + 1..].iter().map(|s| s.name.clone()).collect(),
            }))
        };
        let values = match plan::resolve(stack, &outputs) {
            Ok(v) => v,
            Err(p) => {
                let failed = Failed {
                    declined: false,
                    cause: format!(
                        "not touched: {}",
                        p.iter()
                            .map(ToString::to_string)
                            .collect::<Vec<_>>()
                            .join("; ")
                    ),
                    reasons: Vec::new(),
                    status: found
                        .get(&stack.name)
                        .cloned()
                        .flatten()
                        .as_ref()
                        .and_then(status_of),
                };
                return Err(fail(failed, &done));
            }
        };
        let existing = found.get(&stack.name).cloned().flatten();
        let st = existing.as_ref().and_then(status_of);
        let action = status::action_for(
            st.as_deref(),
            &stack.stack_name,
            &stack.region,
            options.recreate_failed,
        );
        let outcome = match action {
            Action::Create => run.create(&client, stack, &values).await,
            Action::CreateByChangeSet => {
                run.change_set(&client, stack, &values, ChangeSetType::Create)
                    .await
            }
            Action::Update => {
                run.change_set(&client, stack, &values, ChangeSetType::Update)
                    .await
            }
            Action::Recreate => match &existing {
                Some(e) => match run.delete_failed(&client, stack, e).await {
                    Ok(()) => run.create(&client, stack, &values).await,
                    Err(f) => Err(f),
                },
                None => run.create(&client, stack, &values).await,
            },
            Action::Refuse(why) => Err(Failed {
                declined: false,
                cause: why,
                reasons: Vec::new(),
                status: st.clone(),
            }),
        };
        let outcome = match outcome {
            Ok(o) => o,
            Err(f) => return Err(fail(f, &done)),
        };
        let now = match describe(&client, &stack.stack_name).await {
            Ok(Some(s)) => s,
            Ok(None) => {
                let f = Failed {
                    declined: false,
                    cause: "deployed, but the stack cannot be found afterwards".to_string(),
                    reasons: Vec::new(),
                    status: None,
                };
                return Err(fail(f, &done));
            }
            Err(e) => {
                let f = Failed {
                    declined: false,
                    cause: format!("deployed, but its outputs cannot be read: {e}"),
                    reasons: Vec::new(),
                    status: st,
                };
                return Err(fail(f, &done));
            }
        };
        if let Err(f) = run.protect(&client, stack, &now).await {
            return Err(fail(f, &done));
        }
        let out = outputs_of(&now);
        result_line(format!(
            "{}: {outcome} ({}, {} in {})",
            stack.name,
            status_of(&now).unwrap_or_default(),
            stack.stack_name,
            stack.region
        ));
        print_outputs(&stack.name, &out);
        outputs.insert(stack.name.clone(), out);
        done.push((stack.name.clone(), outcome));
    }
    Ok(done)
}

fn print_outputs(stack: &str, outputs: &BTreeMap<String, String>) {
    if outputs.is_empty() {
        result_line(format!("  {stack} has no outputs"));
        return;
    }
    let width = outputs.keys().map(String::len).max().unwrap_or(0);
    for (k, v) in outputs {
        result_line(format!("  {k:<width$}  {v}"));
    }
}

/// `outputs`: every stack's outputs as they are in AWS now; `stacks` as [`plan::locate`] gives them.
pub async fn show_outputs(
    stacks: &[(String, String, String)],
    clients: &mut Clients,
) -> Result<(), DeployError> {
    for (name, stack_name, region) in stacks {
        let client = clients.get(region).await;
        match describe(&client, stack_name).await {
            Ok(Some(s)) => {
                result_line(format!(
                    "{name} ({stack_name} in {region}, {}):",
                    status_of(&s).unwrap_or_default()
                ));
                print_outputs(name, &outputs_of(&s));
            }
            Ok(None) => result_line(format!("{name} ({stack_name} in {region}): not deployed")),
            Err(e) => {
                return Err(DeployError::Aws {
                    what: format!("stack {name} ({stack_name} in {region})"),
                    message: e,
                });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_ways_of_saying_no_changes_are_recognised() {
        // create_change_set's refusal (moto, and CloudFormation for some updates) and the
        // reason of a FAILED change set.
        assert!(is_no_changes(Some("No updates are to be performed.")));
        assert!(is_no_changes(Some(
            "The submitted information didn't contain changes. Submit different information to create a change set."
        )));
        assert!(!is_no_changes(Some(
            "Template format error: unsupported structure."
        )));
        assert!(!is_no_changes(None));
    }

    #[test]
    fn a_failure_report_says_what_failed_where_things_stand_and_what_next() {
        let failure = StackFailure {
            stack: "data".into(),
            stack_name: "voltfleet-staging-data".into(),
            region: "eu-west-1".into(),
            cause: "it ended in UPDATE_ROLLBACK_COMPLETE".into(),
            reasons: vec![
                "2025-05-06T10:21:07Z  Database  AWS::RDS::DBInstance  UPDATE_FAILED  Cannot upgrade mysql from 8.0 to 5.7".into(),
            ],
            status: Some("UPDATE_ROLLBACK_COMPLETE".into()),
            deployed: vec!["network".into(), "security".into()],
            untouched: vec!["app".into(), "web".into()],
            advice: status::failure_advice(
                Some("UPDATE_ROLLBACK_COMPLETE"),
                "voltfleet-staging-data",
                "eu-west-1",
                "voltfleet-provision deploy --env staging.json --yes",
            ),
        };
        let text = failure.to_string();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines,
            [
                "stack data (voltfleet-staging-data in eu-west-1) failed: it ended in UPDATE_ROLLBACK_COMPLETE",
                "  Failure events:",
                "    2025-05-06T10:21:07Z  Database  AWS::RDS::DBInstance  UPDATE_FAILED  Cannot upgrade mysql from 8.0 to 5.7",
                "  State: voltfleet-staging-data is in UPDATE_ROLLBACK_COMPLETE: the update was rolled back and the stack runs as it did before.",
                "  Next:  Fix the cause above and run again: voltfleet-provision deploy --env staging.json --yes",
                "  Deployed before it (left as they are): network, security",
                "  Not touched (after it): app, web",
            ]
        );
    }

    #[test]
    fn an_event_is_one_line() {
        let event = StackEvent::builder()
            .timestamp(DateTime::from_secs(1_746_526_867))
            .logical_resource_id("Database")
            .resource_type("AWS::RDS::DBInstance")
            .resource_status(aws_sdk_cloudformation::types::ResourceStatus::UpdateFailed)
            .resource_status_reason("Cannot upgrade")
            .build();
        assert_eq!(
            event_line(&event),
            "2025-05-06T10:21:07Z  Database  AWS::RDS::DBInstance  UPDATE_FAILED  Cannot upgrade"
        );
    }
}

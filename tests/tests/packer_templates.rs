//! The Packer templates in `packer/`, read with hcl-rs and evaluated with the variables of a
//! bake, checked for what a review of an AMI build looks for: the plugin pinned, the base AMI
//! from Debian's account, IMDSv2 only, every volume encrypted, tags on everything the build
//! makes, the bake directory of the shipping contract and the files uploaded into it, every file
//! the templates name present in the repository, a clean-up that leaves nothing of the build
//! instance behind, a manifest, and variables that say what they are and refuse values of the
//! wrong shape.
//!
//! Packer cannot bake here (the Amazon plugin needs `packer init` and an AWS account), so these
//! checks stand where a review and `packer validate` would; `tests/shipping/packer.sh` runs
//! `packer fmt` on the same files.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Component, Path, PathBuf};

use hcl::eval::{Context, Evaluate, FuncArgs, FuncDef, ParamType};
use hcl::{Block, Body, Expression, Map, Value};

/// What a bake passes for the variables that have no default.
const BAKE: [(&str, &str); 3] = [
    ("region", "eu-west-1"),
    ("version", "1.2.3"),
    ("revision", "4c1e2f9d0b7a"),
];

/// What `timestamp()` answers during these checks.
const NOW: &str = "2026-07-16T09:30:05Z";

/// The bake directory of the shipping contract.
const BAKE_DIR: &str = "/tmp/voltfleet-bake";

/// What the Amazon plugin fills in for `build.*` once it has found the source AMI.
const BUILD_DATA: [(&str, &str); 2] = [
    ("SourceAMI", "ami-0123456789abcdef0"),
    ("SourceAMIName", "debian-12-amd64-20260701-2100"),
];

struct Tier {
    name: &'static str,
    /// What the shipping contract has the tier upload: the path in the repository and where it
    /// lands on the build instance.
    uploads: &'static [Upload],
}

struct Upload {
    local: &'static str,
    remote: &'static str,
    /// Made by a build step before the bake (cargo, scripts/build-image.sh), so not in git.
    built: bool,
}

const TIERS: [Tier; 2] = [
    Tier {
        name: "web",
        uploads: &[
            Upload {
                local: "ami",
                remote: "/tmp/voltfleet-bake/ami",
                built: false,
            },
            Upload {
                local: "systemd",
                remote: "/tmp/voltfleet-bake/systemd",
                built: false,
            },
            Upload {
                local: "target/release/voltfleet-proxy",
                remote: "/tmp/voltfleet-bake/artifacts/voltfleet-proxy",
                built: true,
            },
            Upload {
                local: "site",
                remote: "/tmp/voltfleet-bake/artifacts/site",
                built: false,
            },
        ],
    },
    Tier {
        name: "app",
        uploads: &[
            Upload {
                local: "ami",
                remote: "/tmp/voltfleet-bake/ami",
                built: false,
            },
            Upload {
                local: "systemd",
                remote: "/tmp/voltfleet-bake/systemd",
                built: false,
            },
            Upload {
                local: "dist/voltfleet-image.tar",
                remote: "/tmp/voltfleet-bake/artifacts/voltfleet-image.tar",
                built: true,
            },
        ],
    },
];

/// Every `*.pkr.hcl` file of `packer/`, parsed.
struct Templates {
    repo: PathBuf,
    dir: PathBuf,
    files: Vec<(String, Body)>,
}

struct Variable {
    name: String,
    file: String,
    default: Option<Value>,
    description: Option<String>,
    validations: Vec<Validation>,
}

struct Validation {
    condition: Expression,
    error_message: String,
}

impl Templates {
    fn load() -> Templates {
        let repo = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("the tests crate lives inside the repository")
            .to_path_buf();
        let dir = repo.join("packer");
        let entries = fs::read_dir(&dir)
            .unwrap_or_else(|err| panic!("cannot list the templates in {}: {err}", dir.display()));
        let mut names: Vec<String> = entries
            .map(|entry| {
                let entry =
                    entry.unwrap_or_else(|err| panic!("cannot list {}: {err}", dir.display()));
                entry.file_name().to_string_lossy().into_owned()
            })
            .filter(|name| name.ends_with(".pkr.hcl"))
            .collect();
        names.sort();
        assert!(
            !names.is_empty(),
            "{} holds no *.pkr.hcl template",
            dir.display()
        );
        let files = names
            .into_iter()
            .map(|name| {
                let path = dir.join(&name);
                let text = fs::read_to_string(&path)
                    .unwrap_or_else(|err| panic!("cannot read {}: {err}", path.display()));
                let body = hcl::parse(&text)
                    .unwrap_or_else(|err| panic!("packer/{name} is not valid HCL: {err}"));
                (name, body)
            })
            .collect();
        Templates { repo, dir, files }
    }

    fn top_blocks<'a>(&'a self, identifier: &'a str) -> impl Iterator<Item = (&'a str, &'a Block)> {
        self.files.iter().flat_map(move |(file, body)| {
            body.blocks()
                .filter(move |block| block.identifier() == identifier)
                .map(move |block| (file.as_str(), block))
        })
    }

    fn source(&self, tier: &str) -> (&str, &Block) {
        let found: Vec<_> = self
            .top_blocks("source")
            .filter(|(_, block)| labels(block) == ["amazon-ebs", tier])
            .collect();
        assert_eq!(
            found.len(),
            1,
            "packer/ must have exactly one source \"amazon-ebs\" \"{tier}\", found {}",
            found.len()
        );
        found[0]
    }

    fn build(&self, tier: &str) -> (&str, &Block) {
        let found: Vec<_> = self
            .top_blocks("build")
            .filter(|(_, block)| literal_attr(block.body(), "name").as_deref() == Some(tier))
            .collect();
        assert_eq!(
            found.len(),
            1,
            "packer/ must have exactly one build named \"{tier}\" (so that -only='{tier}.*' picks it), found {}",
            found.len()
        );
        found[0]
    }

    fn variables(&self) -> Vec<Variable> {
        self.top_blocks("variable")
            .map(|(file, block)| {
                let name = labels(block).first().cloned().unwrap_or_else(|| {
                    panic!("packer/{file}: a variable block has no name")
                });
                let body = block.body();
                let default = body.attributes().find(|attr| attr.key() == "default").map(|attr| {
                    attr.expr().evaluate(&Context::new()).unwrap_or_else(|err| {
                        panic!("packer/{file}: the default of variable {name} does not evaluate: {err}")
                    })
                });
                let validations = body
                    .blocks()
                    .filter(|block| block.identifier() == "validation")
                    .map(|block| Validation {
                        condition: block
                            .body()
                            .attributes()
                            .find(|attr| attr.key() == "condition")
                            .map(|attr| attr.expr().clone())
                            .unwrap_or_else(|| {
                                panic!("packer/{file}: a validation of variable {name} has no condition")
                            }),
                        error_message: literal_attr(block.body(), "error_message").unwrap_or_default(),
                    })
                    .collect();
                Variable {
                    description: literal_attr(body, "description"),
                    name,
                    file: file.to_owned(),
                    default,
                    validations,
                }
            })
            .collect()
    }

    /// The variables of a bake: every default, then `BAKE`, then `overrides`.
    fn var_object(&self, overrides: &[(&str, Value)]) -> Value {
        let variables = self.variables();
        let mut var = Map::new();
        for variable in &variables {
            if let Some(default) = &variable.default {
                var.insert(variable.name.clone(), default.clone());
            }
        }
        for (name, value) in BAKE {
            var.insert(name.to_owned(), Value::from(value));
        }
        for (name, value) in overrides {
            assert!(
                variables.iter().any(|variable| variable.name == *name),
                "this test sets variable {name}, which the templates do not declare"
            );
            var.insert((*name).to_owned(), value.clone());
        }
        for variable in &variables {
            assert!(
                var.contains_key(&variable.name),
                "packer/{}: variable {} has no default, and this test's BAKE gives it no value; add one",
                variable.file,
                variable.name
            );
        }
        Value::Object(var)
    }

    /// Everything an expression of the templates can refer to, as `packer build` would have it
    /// with the given variables: `var`, `path.root`, `build.*` and every local.
    fn context(&self, overrides: &[(&str, Value)]) -> Context<'static> {
        let mut ctx = functions();
        ctx.declare_var("var", self.var_object(overrides));
        ctx.declare_var(
            "path",
            object([("root", Value::from(self.dir.to_string_lossy().into_owned()))]),
        );
        ctx.declare_var(
            "build",
            object(BUILD_DATA.map(|(key, value)| (key, Value::from(value)))),
        );

        // Locals may use each other, in any order: evaluate in rounds until none is left.
        let mut pending: Vec<(String, Expression)> = self
            .top_blocks("locals")
            .flat_map(|(_, block)| block.body().attributes())
            .map(|attr| (attr.key().to_owned(), attr.expr().clone()))
            .collect();
        let mut locals = Map::new();
        while !pending.is_empty() {
            ctx.declare_var("local", Value::Object(locals.clone()));
            let mut failures = Vec::new();
            let before = pending.len();
            pending.retain(|(name, expr)| match expr.evaluate(&ctx) {
                Ok(value) => {
                    locals.insert(name.clone(), value);
                    false
                }
                Err(err) => {
                    failures.push(format!("local.{name}: {err}"));
                    true
                }
            });
            assert!(
                pending.len() < before,
                "these locals do not evaluate with a bake's variables {overrides:?}: {failures:#?}"
            );
        }
        ctx.declare_var("local", Value::Object(locals));
        ctx
    }

    fn repo_relative(&self, path: &str) -> Option<String> {
        let normal = normalize(Path::new(path));
        normal
            .strip_prefix(&self.repo)
            .ok()
            .map(|relative| relative.to_string_lossy().into_owned())
    }
}

fn labels(block: &Block) -> Vec<String> {
    block
        .labels()
        .iter()
        .map(|label| label.as_str().to_owned())
        .collect()
}

fn literal_attr(body: &Body, key: &str) -> Option<String> {
    body.attributes()
        .find(|attr| attr.key() == key)
        .and_then(|attr| Value::from(attr.expr().clone()).as_str().map(str::to_owned))
}

fn evaluated(file: &str, what: &str, block: &Block, ctx: &Context) -> Body {
    block.body().evaluate(ctx).unwrap_or_else(|err| {
        panic!("packer/{file}: {what} does not evaluate with a bake's variables: {err}")
    })
}

fn value(body: &Body, key: &str) -> Option<Value> {
    body.attributes()
        .find(|attr| attr.key() == key)
        .map(|attr| Value::from(attr.expr().clone()))
}

fn blocks<'a>(body: &'a Body, identifier: &str) -> Vec<&'a Block> {
    body.blocks()
        .filter(|block| block.identifier() == identifier)
        .collect()
}

fn string(body: &Body, key: &str) -> String {
    value(body, key)
        .and_then(|value| value.as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn strings(body: &Body, key: &str) -> Vec<String> {
    match value(body, key) {
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| {
                item.as_str()
                    .map(str::to_owned)
                    .unwrap_or_else(|| item.to_string())
            })
            .collect(),
        _ => Vec::new(),
    }
}

fn object<const N: usize>(entries: [(&str, Value); N]) -> Value {
    Value::Object(
        entries
            .into_iter()
            .map(|(key, value)| (key.to_owned(), value))
            .collect(),
    )
}

fn string_map(entries: &[(&str, &str)]) -> Value {
    Value::Object(
        entries
            .iter()
            .map(|(key, value)| ((*key).to_owned(), Value::from(*value)))
            .collect(),
    )
}

/// A path with `.` and `..` taken away without asking the file system, as Packer joins
/// `path.root` and `..`.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// Every string in an evaluated body, with the attribute it came from.
fn all_strings(body: &Body, at: &str, out: &mut Vec<(String, String)>) {
    fn walk(value: &Value, at: &str, out: &mut Vec<(String, String)>) {
        match value {
            Value::String(text) => out.push((at.to_owned(), text.clone())),
            Value::Array(items) => items.iter().for_each(|item| walk(item, at, out)),
            Value::Object(entries) => entries
                .iter()
                .for_each(|(key, item)| walk(item, &format!("{at}.{key}"), out)),
            _ => {}
        }
    }
    for attr in body.attributes() {
        walk(
            &Value::from(attr.expr().clone()),
            &format!("{at}{}", attr.key()),
            out,
        );
    }
    for block in body.blocks() {
        let name = std::iter::once(block.identifier().to_owned())
            .chain(
                labels(block)
                    .into_iter()
                    .map(|label| format!("\"{label}\"")),
            )
            .collect::<Vec<_>>()
            .join(" ");
        all_strings(block.body(), &format!("{at}{name} > "), out);
    }
}

// --- The functions of Packer's HCL the templates use, with Packer's meaning. -------------------

fn functions() -> Context<'static> {
    let mut ctx = Context::new();
    ctx.declare_func(
        "merge",
        FuncDef::builder()
            .variadic_param(ParamType::Any)
            .build(merge),
    );
    ctx.declare_func("keys", FuncDef::builder().param(ParamType::Any).build(keys));
    ctx.declare_func(
        "values",
        FuncDef::builder().param(ParamType::Any).build(values),
    );
    ctx.declare_func(
        "length",
        FuncDef::builder().param(ParamType::Any).build(length),
    );
    ctx.declare_func(
        "contains",
        FuncDef::builder()
            .param(ParamType::Any)
            .param(ParamType::Any)
            .build(contains),
    );
    ctx.declare_func(
        "regexall",
        FuncDef::builder()
            .param(ParamType::String)
            .param(ParamType::String)
            .build(regexall),
    );
    ctx.declare_func("timestamp", FuncDef::builder().build(timestamp));
    ctx.declare_func(
        "formatdate",
        FuncDef::builder()
            .param(ParamType::String)
            .param(ParamType::String)
            .build(formatdate),
    );
    ctx
}

fn merge(args: FuncArgs) -> Result<Value, String> {
    let mut out = Map::new();
    for arg in args.iter() {
        match arg {
            Value::Object(entries) => out.extend(entries.clone()),
            Value::Null => {}
            other => return Err(format!("merge takes objects, not {other}")),
        }
    }
    Ok(Value::Object(out))
}

/// Packer's keys and values go by the keys' lexical order.
fn sorted_entries(value: &Value) -> Result<Vec<(&String, &Value)>, String> {
    let entries = value
        .as_object()
        .ok_or_else(|| format!("keys and values take an object, not {value}"))?;
    let mut sorted: Vec<_> = entries.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(b.0));
    Ok(sorted)
}

fn keys(args: FuncArgs) -> Result<Value, String> {
    let entries = sorted_entries(&args[0])?;
    Ok(Value::Array(
        entries
            .into_iter()
            .map(|(key, _)| Value::from(key.clone()))
            .collect(),
    ))
}

fn values(args: FuncArgs) -> Result<Value, String> {
    let entries = sorted_entries(&args[0])?;
    Ok(Value::Array(
        entries
            .into_iter()
            .map(|(_, value)| value.clone())
            .collect(),
    ))
}

fn length(args: FuncArgs) -> Result<Value, String> {
    let count = match &args[0] {
        Value::Array(items) => items.len(),
        Value::Object(entries) => entries.len(),
        Value::String(text) => text.chars().count(),
        other => return Err(format!("length takes a list, map or string, not {other}")),
    };
    Ok(Value::from(count as u64))
}

fn contains(args: FuncArgs) -> Result<Value, String> {
    let items = args[0]
        .as_array()
        .ok_or_else(|| format!("contains takes a list first, not {}", args[0]))?;
    Ok(Value::from(items.contains(&args[1])))
}

fn regexall(args: FuncArgs) -> Result<Value, String> {
    let (Some(pattern), Some(text)) = (args[0].as_str(), args[1].as_str()) else {
        return Err("regexall takes a pattern and a string".to_owned());
    };
    let regex =
        regex::Regex::new(pattern).map_err(|err| format!("bad pattern {pattern:?}: {err}"))?;
    Ok(Value::Array(
        regex
            .find_iter(text)
            .map(|found| Value::from(found.as_str()))
            .collect(),
    ))
}

fn timestamp(_: FuncArgs) -> Result<Value, String> {
    Ok(Value::from(NOW))
}

/// formatdate for the parts of its spec the templates use; anything else is refused rather
/// than guessed.
fn formatdate(args: FuncArgs) -> Result<Value, String> {
    let (Some(spec), Some(time)) = (args[0].as_str(), args[1].as_str()) else {
        return Err("formatdate takes a spec and an RFC 3339 time".to_owned());
    };
    let shape = regex::Regex::new(r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})Z$")
        .map_err(|err| err.to_string())?;
    let parts = shape
        .captures(time)
        .ok_or_else(|| format!("formatdate needs an RFC 3339 UTC time, not {time:?}"))?;
    let fields = [
        ("YYYY", 1),
        ("MM", 2),
        ("DD", 3),
        ("hh", 4),
        ("mm", 5),
        ("ss", 6),
    ];
    let mut out = String::new();
    let mut rest = spec;
    while let Some(first) = rest.chars().next() {
        if let Some((token, group)) = fields.iter().find(|(token, _)| rest.starts_with(token)) {
            out.push_str(&parts[*group]);
            rest = &rest[token.len()..];
        } else if first.is_ascii_alphabetic() || first == '\'' {
            return Err(format!(
                "this test's formatdate knows YYYY, MM, DD, hh, mm and ss, not the rest of {spec:?}"
            ));
        } else {
            out.push(first);
            rest = &rest[first.len_utf8()..];
        }
    }
    Ok(Value::from(out))
}

// --- The checks. -------------------------------------------------------------------------------

#[test]
fn the_amazon_plugin_and_packer_are_pinned() {
    let templates = Templates::load();
    let packer: Vec<_> = templates.top_blocks("packer").collect();
    assert_eq!(
        packer.len(),
        1,
        "packer/ must have one packer {{ }} block, found {}",
        packer.len()
    );
    let (file, block) = packer[0];
    let body = evaluated(file, "the packer block", block, &Context::new());

    let required_version = string(&body, "required_version");
    assert!(
        required_version.starts_with(">="),
        "packer/{file}: required_version must name the oldest Packer that reads these templates (>= X), not {required_version:?}"
    );

    let plugins = blocks(&body, "required_plugins");
    assert_eq!(
        plugins.len(),
        1,
        "packer/{file}: the packer block must have one required_plugins block"
    );
    let amazon = value(plugins[0].body(), "amazon")
        .unwrap_or_else(|| panic!("packer/{file}: required_plugins must name the amazon plugin"));
    assert_eq!(
        amazon
            .as_object()
            .and_then(|plugin| plugin.get("source"))
            .and_then(Value::as_str),
        Some("github.com/hashicorp/amazon"),
        "packer/{file}: the amazon plugin must come from github.com/hashicorp/amazon, not {amazon}"
    );
    let version = amazon
        .as_object()
        .and_then(|plugin| plugin.get("version"))
        .and_then(Value::as_str)
        .unwrap_or_default();
    // Pinned: "~> 1.8.2" (1.8.x), "= 1.8.2", or a range with an upper bound.
    let pinned = version.trim_start().starts_with("~>")
        || version.trim_start().starts_with('=')
        || version.contains('<');
    assert!(
        pinned,
        "packer/{file}: the amazon plugin's version must be pinned (~> X.Y.Z, = X.Y.Z or < X), so that a bake runs the builder the last one ran; it is {version:?}"
    );
}

#[test]
fn each_tier_has_one_source_and_one_build_of_it() {
    let templates = Templates::load();
    for tier in &TIERS {
        let (file, build) = templates.build(tier.name);
        let body = evaluated(
            file,
            &format!("build {}", tier.name),
            build,
            &templates.context(&[]),
        );
        assert_eq!(
            strings(&body, "sources"),
            [format!("source.amazon-ebs.{}", tier.name)],
            "packer/{file}: build {} must build source.amazon-ebs.{} and nothing else",
            tier.name,
            tier.name
        );
        templates.source(tier.name);
    }
}

#[test]
fn the_base_is_debian_12_from_debians_account() {
    let templates = Templates::load();
    for (architecture, ami_architecture, instance_prefix) in
        [("amd64", "x86_64", "t3."), ("arm64", "arm64", "t4g.")]
    {
        let ctx = templates.context(&[("architecture", Value::from(architecture))]);
        for tier in &TIERS {
            let (file, source) = templates.source(tier.name);
            let body = evaluated(
                file,
                &format!("source amazon-ebs.{}", tier.name),
                source,
                &ctx,
            );
            let filters = blocks(&body, "source_ami_filter");
            assert_eq!(
                filters.len(),
                1,
                "packer/{file}: source {} must find its base with one source_ami_filter",
                tier.name
            );
            let filter = filters[0].body();
            assert_eq!(
                strings(filter, "owners"),
                ["136693071363"],
                "packer/{file}: source {} must take its base only from Debian's account 136693071363",
                tier.name
            );
            assert_eq!(
                value(filter, "most_recent"),
                Some(Value::from(true)),
                "packer/{file}: source {} must take the newest Debian 12 AMI (most_recent = true)",
                tier.name
            );
            let wanted = object([
                ("name", Value::from(format!("debian-12-{architecture}-*"))),
                ("architecture", Value::from(ami_architecture)),
                ("root-device-type", Value::from("ebs")),
                ("virtualization-type", Value::from("hvm")),
            ]);
            assert_eq!(
                value(filter, "filters"),
                Some(wanted.clone()),
                "packer/{file}: source {} with architecture {architecture} must look for Debian 12's AMIs: {wanted}",
                tier.name
            );
            let instance_type = string(&body, "instance_type");
            assert!(
                instance_type.starts_with(instance_prefix),
                "packer/{file}: source {} must build {architecture} on a {instance_prefix}* instance by default, not {instance_type:?}",
                tier.name
            );
            assert_eq!(
                string(&body, "ssh_username"),
                "admin",
                "packer/{file}: Debian's AMIs log in as admin"
            );
        }
    }
}

#[test]
fn build_instances_and_amis_answer_only_imdsv2() {
    let templates = Templates::load();
    let ctx = templates.context(&[]);
    for tier in &TIERS {
        let (file, source) = templates.source(tier.name);
        let body = evaluated(
            file,
            &format!("source amazon-ebs.{}", tier.name),
            source,
            &ctx,
        );
        let metadata = blocks(&body, "metadata_options");
        assert_eq!(
            metadata.len(),
            1,
            "packer/{file}: source {} must set metadata_options for its build instance",
            tier.name
        );
        let metadata = metadata[0].body();
        assert_eq!(
            string(metadata, "http_tokens"),
            "required",
            "packer/{file}: source {}'s metadata_options must have http_tokens = \"required\", so that the build instance answers IMDSv2 only",
            tier.name
        );
        assert_eq!(
            string(metadata, "http_endpoint"),
            "enabled",
            "packer/{file}: source {}'s metadata_options must keep http_endpoint = \"enabled\" (cloud-init reads the user data from it)",
            tier.name
        );
        assert_eq!(
            value(metadata, "http_put_response_hop_limit").and_then(|limit| limit.as_u64()),
            Some(1),
            "packer/{file}: source {}'s metadata_options must keep http_put_response_hop_limit = 1: nothing on the build instance is a hop further",
            tier.name
        );
        assert_eq!(
            string(&body, "imds_support"),
            "v2.0",
            "packer/{file}: source {} must register its AMI with imds_support = \"v2.0\", so that instances launched from it answer IMDSv2 only",
            tier.name
        );
    }
}

#[test]
fn every_volume_and_snapshot_is_encrypted_with_the_chosen_key() {
    let templates = Templates::load();
    for key in ["", "alias/voltfleet-ami"] {
        let ctx = templates.context(&[("kms_key_id", Value::from(key))]);
        for tier in &TIERS {
            let (file, source) = templates.source(tier.name);
            let body = evaluated(
                file,
                &format!("source amazon-ebs.{}", tier.name),
                source,
                &ctx,
            );
            assert_eq!(
                value(&body, "encrypt_boot"),
                Some(Value::from(true)),
                "packer/{file}: source {} must set encrypt_boot = true, so that the AMI's snapshots are encrypted whatever the base was",
                tier.name
            );
            assert_eq!(
                string(&body, "kms_key_id"),
                key,
                "packer/{file}: source {} must encrypt the AMI with var.kms_key_id",
                tier.name
            );
            let launch = blocks(&body, "launch_block_device_mappings");
            assert!(
                launch
                    .iter()
                    .any(|mapping| string(mapping.body(), "device_name") == "/dev/xvda"),
                "packer/{file}: source {} must map the root volume /dev/xvda of Debian's AMI in launch_block_device_mappings, so that the build volume is encrypted from the start",
                tier.name
            );
            for mapping in launch
                .iter()
                .chain(blocks(&body, "ami_block_device_mappings").iter())
            {
                let device = string(mapping.body(), "device_name");
                assert_eq!(
                    value(mapping.body(), "encrypted"),
                    Some(Value::from(true)),
                    "packer/{file}: source {}'s {} for {device} must set encrypted = true",
                    tier.name,
                    mapping.identifier()
                );
                assert_eq!(
                    string(mapping.body(), "kms_key_id"),
                    key,
                    "packer/{file}: source {}'s {} for {device} must use var.kms_key_id, the AMI's key",
                    tier.name,
                    mapping.identifier()
                );
            }
        }
    }
}

#[test]
fn copies_go_to_the_regions_asked_each_with_its_key() {
    let templates = Templates::load();
    let copies = string_map(&[("us-east-1", ""), ("eu-central-1", "alias/voltfleet-ami")]);
    for (asked, regions, keys) in [
        (
            Value::Object(Map::new()),
            Vec::<String>::new(),
            Value::Object(Map::new()),
        ),
        (
            copies.clone(),
            vec!["eu-central-1".to_owned(), "us-east-1".to_owned()],
            copies,
        ),
    ] {
        let ctx = templates.context(&[("copy_regions", asked.clone())]);
        for tier in &TIERS {
            let (file, source) = templates.source(tier.name);
            let body = evaluated(
                file,
                &format!("source amazon-ebs.{}", tier.name),
                source,
                &ctx,
            );
            let mut copied = strings(&body, "ami_regions");
            copied.sort();
            assert_eq!(
                copied, regions,
                "packer/{file}: with copy_regions = {asked}, source {} must copy its AMI to exactly those regions",
                tier.name
            );
            assert_eq!(
                value(&body, "region_kms_key_ids").unwrap_or(Value::Object(Map::new())),
                keys,
                "packer/{file}: with copy_regions = {asked}, source {} must encrypt each copy with the key given for its region",
                tier.name
            );
        }
    }
}

#[test]
fn amis_snapshots_and_build_instances_carry_the_tags() {
    let templates = Templates::load();
    // extra_tags that try to take the templates' own tags: theirs must win.
    let extra = string_map(&[
        ("CostCentre", "charging"),
        ("Name", "something else"),
        ("Tier", "other"),
        ("Version", "0.0.0"),
        ("Revision", "0000000"),
    ]);
    let ctx = templates.context(&[("extra_tags", extra)]);
    let version = BAKE[1].1;
    let revision = BAKE[2].1;
    for tier in &TIERS {
        let (file, source) = templates.source(tier.name);
        let body = evaluated(
            file,
            &format!("source amazon-ebs.{}", tier.name),
            source,
            &ctx,
        );
        for (attribute, what) in [
            ("tags", "the AMI"),
            ("snapshot_tags", "the AMI's snapshots"),
            (
                "run_tags",
                "the build instance (and its key pair and security group)",
            ),
            ("run_volume_tags", "the build instance's volume"),
        ] {
            let tags = value(&body, attribute)
                .and_then(|tags| tags.as_object().cloned())
                .unwrap_or_else(|| {
                    panic!(
                        "packer/{file}: source {} must set {attribute}, the tags of {what}",
                        tier.name
                    )
                });
            let tag = |key: &str| {
                tags.get(key)
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned()
            };
            let name = tag("Name");
            assert!(
                name.contains(tier.name) && name.contains(version),
                "packer/{file}: source {}'s {attribute} must have a Name that tells the tier and version of {what}, not {name:?}",
                tier.name
            );
            for (key, wanted) in [
                ("Project", "voltfleet"),
                ("Tier", tier.name),
                ("Version", version),
                ("Revision", revision),
                ("CostCentre", "charging"),
            ] {
                assert_eq!(
                    tag(key),
                    wanted,
                    "packer/{file}: source {}'s {attribute} (on {what}) must have {key} = {wanted:?}; it has {tags:?}",
                    tier.name
                );
            }
        }
    }
}

#[test]
fn ami_names_tell_tier_version_architecture_and_time_and_nothing_is_replaced() {
    let templates = Templates::load();
    let version = BAKE[1].1;
    let revision = BAKE[2].1;
    let allowed = regex::Regex::new(r"^[A-Za-z0-9()\[\] ./\-'@_]{3,128}$")
        .expect("the pattern of AMI names compiles");
    for architecture in ["amd64", "arm64"] {
        let ctx = templates.context(&[("architecture", Value::from(architecture))]);
        for tier in &TIERS {
            let (file, source) = templates.source(tier.name);
            let body = evaluated(
                file,
                &format!("source amazon-ebs.{}", tier.name),
                source,
                &ctx,
            );
            let name = string(&body, "ami_name");
            for part in [tier.name, version, architecture, "20260716093005"] {
                assert!(
                    name.contains(part),
                    "packer/{file}: source {}'s ami_name must carry the tier, the version, the architecture and the bake's time (from timestamp()); {name:?} lacks {part:?}",
                    tier.name
                );
            }
            assert!(
                allowed.is_match(&name),
                "packer/{file}: source {}'s ami_name {name:?} must be 3 to 128 of the characters AWS allows in AMI names",
                tier.name
            );
            let description = string(&body, "ami_description");
            assert!(
                description.contains(version)
                    && description.contains(revision)
                    && description.len() <= 255,
                "packer/{file}: source {}'s ami_description must tell the version and revision in at most 255 characters, not {description:?}",
                tier.name
            );
            assert_eq!(
                value(&body, "force_deregister"),
                Some(Value::from(false)),
                "packer/{file}: source {} must say force_deregister = false: a bake never removes an AMI a fleet may run",
                tier.name
            );
            assert_ne!(
                value(&body, "force_delete_snapshot"),
                Some(Value::from(true)),
                "packer/{file}: source {} must not delete snapshots of earlier AMIs",
                tier.name
            );
        }
    }
}

/// The provisioners of a tier's build, evaluated, in order: (type, body).
fn provisioners(templates: &Templates, tier: &str, ctx: &Context) -> (String, Vec<(String, Body)>) {
    let (file, build) = templates.build(tier);
    let body = evaluated(file, &format!("build {tier}"), build, ctx);
    let list = blocks(&body, "provisioner")
        .into_iter()
        .map(|block| (labels(block).concat(), block.body().clone()))
        .collect();
    (file.to_owned(), list)
}

/// A file provisioner's upload as (path in the repository, path on the build instance), with
/// Packer's rule: a destination ending in / receives the source under its own name.
fn upload(templates: &Templates, file: &str, tier: &str, body: &Body) -> (String, String) {
    let source = string(body, "source");
    let destination = string(body, "destination");
    let local = templates.repo_relative(&source).unwrap_or_else(|| {
        panic!("packer/{file}: build {tier} uploads {source:?}, which is not inside the repository (use ${{path.root}}/..)")
    });
    let remote = if destination.ends_with('/') {
        let name = Path::new(&local)
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_default();
        format!("{destination}{name}")
    } else {
        destination
    };
    (local, remote)
}

#[test]
fn provisioners_follow_the_bake_directory_of_the_shipping_contract() {
    let templates = Templates::load();
    let ctx = templates.context(&[]);
    for tier in &TIERS {
        let (file, list) = provisioners(&templates, tier.name, &ctx);
        let kinds: Vec<&str> = list.iter().map(|(kind, _)| kind.as_str()).collect();
        let first_file = kinds.iter().position(|kind| *kind == "file");
        let last_file = kinds.iter().rposition(|kind| *kind == "file");

        // The bake directory exists before the first upload into it.
        let prepare = list
            .iter()
            .position(|(kind, body)| {
                kind == "shell"
                    && strings(body, "inline")
                        .iter()
                        .any(|line| line.contains(&format!("mkdir -p {BAKE_DIR}/artifacts")))
            })
            .unwrap_or_else(|| panic!("packer/{file}: build {} must make {BAKE_DIR}/artifacts before uploading into it", tier.name));
        assert!(
            first_file.is_some_and(|first| prepare < first),
            "packer/{file}: build {} must make {BAKE_DIR}/artifacts before its file provisioners run (order: {kinds:?})",
            tier.name
        );

        // Exactly the contract's uploads.
        let uploads: BTreeSet<(String, String)> = list
            .iter()
            .filter(|(kind, _)| kind == "file")
            .map(|(_, body)| upload(&templates, &file, tier.name, body))
            .collect();
        let wanted: BTreeSet<(String, String)> = tier
            .uploads
            .iter()
            .map(|upload| (upload.local.to_owned(), upload.remote.to_owned()))
            .collect();
        assert_eq!(
            uploads, wanted,
            "packer/{file}: build {} must upload what the shipping contract says, to where it says",
            tier.name
        );

        // The install script, as root, with the version, after every upload.
        let install_line = format!("bash {BAKE_DIR}/ami/{}/install.sh {BAKE_DIR}", tier.name);
        let install = list
            .iter()
            .position(|(kind, body)| {
                kind == "shell" && strings(body, "inline").contains(&install_line)
            })
            .unwrap_or_else(|| {
                panic!(
                    "packer/{file}: build {} must run `{install_line}`",
                    tier.name
                )
            });
        let install_body = &list[install].1;
        assert_eq!(
            strings(install_body, "inline"),
            std::slice::from_ref(&install_line),
            "packer/{file}: build {}'s install provisioner must run only `{install_line}`",
            tier.name
        );
        let version = format!("VOLTFLEET_VERSION={}", BAKE[1].1);
        assert!(
            strings(install_body, "environment_vars").contains(&version),
            "packer/{file}: build {} must run its install script with {version} (environment_vars = [\"VOLTFLEET_VERSION=${{var.version}}\"])",
            tier.name
        );
        assert!(
            string(install_body, "execute_command").contains("sudo"),
            "packer/{file}: build {} must run its install script as root (execute_command with sudo)",
            tier.name
        );
        assert!(
            last_file.is_some_and(|last| last < install),
            "packer/{file}: build {} must upload everything before it runs the install script (order: {kinds:?})",
            tier.name
        );

        // The clean-up comes last, as root, and is told the bake directory.
        let (kind, cleanup) = list
            .last()
            .unwrap_or_else(|| panic!("packer/{file}: build {} has no provisioner", tier.name));
        let script = templates.repo_relative(&string(cleanup, "script"));
        assert!(
            kind == "shell" && script.as_deref() == Some("packer/scripts/cleanup.sh"),
            "packer/{file}: build {}'s last provisioner must run packer/scripts/cleanup.sh (order: {kinds:?})",
            tier.name
        );
        assert!(
            install < list.len() - 1,
            "packer/{file}: build {} must clean up after its install script",
            tier.name
        );
        assert!(
            string(cleanup, "execute_command").contains("sudo"),
            "packer/{file}: build {} must run the clean-up as root (execute_command with sudo)",
            tier.name
        );
        let bake_dir = format!("VOLTFLEET_BAKE_DIR={BAKE_DIR}");
        assert!(
            strings(cleanup, "environment_vars").contains(&bake_dir),
            "packer/{file}: build {} must tell the clean-up {bake_dir}",
            tier.name
        );
    }
}

#[test]
fn every_file_the_templates_name_is_in_the_repository() {
    let templates = Templates::load();
    let repo = templates.repo.to_string_lossy().into_owned();
    for session_manager in [false, true] {
        let ctx = templates.context(&[("ssh_via_session_manager", Value::from(session_manager))]);
        for tier in &TIERS {
            let built: Vec<&str> = tier
                .uploads
                .iter()
                .filter(|upload| upload.built)
                .map(|upload| upload.local)
                .collect();

            // Local paths anywhere in the source and the build: scripts, uploads, user data.
            let (source_file, source) = templates.source(tier.name);
            let (build_file, build) = templates.build(tier.name);
            for (file, what, block) in [
                (
                    source_file,
                    format!("source amazon-ebs.{}", tier.name),
                    source,
                ),
                (build_file, format!("build {}", tier.name), build),
            ] {
                let mut found = Vec::new();
                all_strings(&evaluated(file, &what, block, &ctx), "", &mut found);
                for (at, text) in &found {
                    let Some(relative) = templates
                        .repo_relative(text)
                        .filter(|_| text.starts_with(&repo))
                    else {
                        continue;
                    };
                    if relative == "packer/manifest.json" || built.contains(&relative.as_str()) {
                        continue;
                    }
                    assert!(
                        templates.repo.join(&relative).exists(),
                        "packer/{file}: {what} names {relative} (at {at}), which is not in the repository"
                    );
                }
            }

            // Paths on the build instance in shell commands: each under an upload whose source
            // is in the repository (or is built before the bake).
            let (file, list) = provisioners(&templates, tier.name, &ctx);
            let uploads: Vec<(String, String)> = list
                .iter()
                .filter(|(kind, _)| kind == "file")
                .map(|(_, body)| upload(&templates, &file, tier.name, body))
                .collect();
            for (_, body) in list.iter().filter(|(kind, _)| kind == "shell") {
                for line in strings(body, "inline") {
                    for token in line.split_whitespace() {
                        let token = token.trim_end_matches(';');
                        if !token.starts_with(&format!("{BAKE_DIR}/"))
                            || token == format!("{BAKE_DIR}/artifacts")
                        {
                            continue;
                        }
                        let (local, remote) = uploads
                            .iter()
                            .find(|(_, remote)| token == remote || token.starts_with(&format!("{remote}/")))
                            .unwrap_or_else(|| {
                                panic!("packer/{file}: build {} runs `{line}`, but no file provisioner uploads {token}", tier.name)
                            });
                        let relative = format!("{local}{}", &token[remote.len()..]);
                        if built.contains(&local.as_str()) {
                            continue;
                        }
                        assert!(
                            templates.repo.join(&relative).exists(),
                            "packer/{file}: build {} runs `{line}`, and {token} comes from {relative}, which is not in the repository",
                            tier.name
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn session_manager_brings_its_agent_and_an_instance_profile() {
    let templates = Templates::load();
    for (session_manager, profile) in [(false, ""), (true, ""), (true, "voltfleet-bake")] {
        let ctx = templates.context(&[
            ("ssh_via_session_manager", Value::from(session_manager)),
            ("iam_instance_profile", Value::from(profile)),
        ]);
        for tier in &TIERS {
            let (file, source) = templates.source(tier.name);
            let body = evaluated(
                file,
                &format!("source amazon-ebs.{}", tier.name),
                source,
                &ctx,
            );
            let interface = string(&body, "ssh_interface");
            let user_data = string(&body, "user_data_file");
            let temporary: Vec<Value> = blocks(&body, "dynamic")
                .into_iter()
                .filter(|block| labels(block) == ["temporary_iam_instance_profile_policy_document"])
                .flat_map(|block| match value(block.body(), "for_each") {
                    Some(Value::Array(items)) => items,
                    _ => Vec::new(),
                })
                .collect();
            if !session_manager {
                assert!(
                    interface.is_empty() && user_data.is_empty() && temporary.is_empty(),
                    "packer/{file}: without Session Manager, source {} must connect as Packer does by default, with no user data and no temporary profile",
                    tier.name
                );
                continue;
            }
            assert_eq!(
                interface, "session_manager",
                "packer/{file}: source {} must set ssh_interface = \"session_manager\"",
                tier.name
            );
            assert_eq!(
                templates.repo_relative(&user_data).as_deref(),
                Some("packer/scripts/ssm-agent-user-data.sh"),
                "packer/{file}: with Session Manager, source {} must install the SSM agent at boot, which Debian's AMIs lack",
                tier.name
            );
            let agent = fs::read_to_string(templates.dir.join("scripts/ssm-agent-user-data.sh"))
                .unwrap_or_else(|err| {
                    panic!("cannot read packer/scripts/ssm-agent-user-data.sh: {err}")
                });
            assert!(
                agent.contains("amazon-ssm-agent") && agent.contains("systemctl enable --now"),
                "packer/scripts/ssm-agent-user-data.sh must install and start amazon-ssm-agent"
            );
            if profile.is_empty() {
                assert_eq!(
                    temporary.len(),
                    1,
                    "packer/{file}: with Session Manager and no iam_instance_profile, source {} must make one temporary instance profile",
                    tier.name
                );
                let policy = blocks(&body, "dynamic")
                    .into_iter()
                    .flat_map(|block| blocks(block.body(), "content"))
                    .flat_map(|content| blocks(content.body(), "Statement"))
                    .flat_map(|statement| strings(statement.body(), "Action"))
                    .collect::<Vec<_>>();
                for action in [
                    "ssm:UpdateInstanceInformation",
                    "ssmmessages:CreateDataChannel",
                    "ssmmessages:OpenDataChannel",
                ] {
                    assert!(
                        policy.iter().any(|allowed| allowed == action),
                        "packer/{file}: source {}'s temporary instance profile must allow {action}, which the agent needs for a session; it allows {policy:?}",
                        tier.name
                    );
                }
            } else {
                assert!(
                    temporary.is_empty() && string(&body, "iam_instance_profile") == profile,
                    "packer/{file}: with iam_instance_profile = {profile:?}, source {} must use that profile and make none",
                    tier.name
                );
            }
        }
    }
}

#[test]
fn the_clean_up_leaves_nothing_of_the_build_instance_in_the_ami() {
    let templates = Templates::load();
    let path = templates.dir.join("scripts/cleanup.sh");
    let script = fs::read_to_string(&path)
        .unwrap_or_else(|err| panic!("cannot read {}: {err}", path.display()));
    for (needle, why) in [
        ("set -euo pipefail", "a failed step must fail the bake"),
        (
            "VOLTFLEET_BAKE_DIR",
            "it removes the bake directory it is told",
        ),
        (
            "rm -rf -- \"$bake_dir\"",
            "the uploads must not stay in the AMI",
        ),
        (
            "cloud-init clean",
            "instances launched from the AMI must run their own user data",
        ),
        (
            "/etc/ssh/ssh_host_",
            "every instance must make SSH host keys of its own",
        ),
        (
            "authorized_keys",
            "the build instance's login key must not stay authorized",
        ),
        (
            ": >/etc/machine-id",
            "every instance must get a machine id of its own",
        ),
        (
            "/var/lib/systemd/random-seed",
            "instances must not share a random seed",
        ),
    ] {
        assert!(
            script.contains(needle),
            "packer/scripts/cleanup.sh must contain `{needle}`: {why}"
        );
    }
}

#[test]
fn builds_write_the_manifest_with_tier_version_and_revision() {
    let templates = Templates::load();
    let ctx = templates.context(&[]);
    for tier in &TIERS {
        let (file, build) = templates.build(tier.name);
        let body = evaluated(file, &format!("build {}", tier.name), build, &ctx);
        let manifests: Vec<_> = blocks(&body, "post-processor")
            .into_iter()
            .filter(|block| labels(block) == ["manifest"])
            .collect();
        assert_eq!(
            manifests.len(),
            1,
            "packer/{file}: build {} must have one manifest post-processor",
            tier.name
        );
        let manifest = manifests[0].body();
        assert_eq!(
            templates
                .repo_relative(&string(manifest, "output"))
                .as_deref(),
            Some("packer/manifest.json"),
            "packer/{file}: build {}'s manifest must be written to packer/manifest.json",
            tier.name
        );
        let data = value(manifest, "custom_data")
            .and_then(|data| data.as_object().cloned())
            .unwrap_or_default();
        for (key, wanted) in [
            ("tier", tier.name),
            ("version", BAKE[1].1),
            ("revision", BAKE[2].1),
        ] {
            assert_eq!(
                data.get(key).and_then(Value::as_str),
                Some(wanted),
                "packer/{file}: build {}'s manifest custom_data must have {key} = {wanted:?}, so that a rollout can pick its AMI; it has {data:?}",
                tier.name
            );
        }
    }
    let ignore = fs::read_to_string(templates.dir.join(".gitignore")).unwrap_or_default();
    assert!(
        ignore
            .lines()
            .any(|line| line.trim() == "/manifest.json" || line.trim() == "manifest.json"),
        "packer/.gitignore must keep packer/manifest.json out of git"
    );
}

/// Values each validated variable must accept, and values it must refuse.
fn samples() -> Vec<(&'static str, Vec<Value>, Vec<Value>)> {
    let strs = |values: &[&str]| {
        values
            .iter()
            .map(|value| Value::from(*value))
            .collect::<Vec<_>>()
    };
    let numbers = |values: &[u64]| {
        values
            .iter()
            .map(|value| Value::from(*value))
            .collect::<Vec<_>>()
    };
    let key_arn = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";
    vec![
        (
            "region",
            strs(&["eu-west-1", "eu-south-2", "us-gov-west-1", "ap-southeast-3"]),
            strs(&["eu-west", "EU-WEST-1", "eu_west_1", "eu-west-1a", ""]),
        ),
        (
            "copy_regions",
            vec![
                Value::Object(Map::new()),
                string_map(&[("eu-central-1", "")]),
                string_map(&[
                    ("eu-central-1", "alias/voltfleet-ami"),
                    ("us-east-1", key_arn),
                ]),
            ],
            vec![
                string_map(&[("eu-central", "")]),
                string_map(&[("Frankfurt", "")]),
                string_map(&[("eu-central-1", "voltfleet-ami")]),
            ],
        ),
        (
            "version",
            strs(&["0.1.0", "1.2.3", "10.0.0-rc.1", "2.0.0-beta"]),
            strs(&["v1.2.3", "1.2", "latest", "1.2.3+build.5", "1.2.3-", ""]),
        ),
        (
            "revision",
            strs(&["4c1e2f9", "4c1e2f9d0b7a4c1e2f9d0b7a4c1e2f9d0b7a4c1e"]),
            strs(&["HEAD", "main", "4C1E2F9", "4c1e2f", ""]),
        ),
        (
            "architecture",
            strs(&["amd64", "arm64"]),
            strs(&["x86_64", "aarch64", ""]),
        ),
        (
            "instance_type",
            strs(&["", "t3.medium", "c7g.xlarge", "m7i-flex.large"]),
            strs(&["t3", "medium", "T3.MEDIUM"]),
        ),
        (
            "source_ami_owner",
            strs(&["136693071363"]),
            strs(&["debian", "13669307136", ""]),
        ),
        (
            "kms_key_id",
            strs(&[
                "",
                "alias/voltfleet-ami",
                "1234abcd-12ab-34cd-56ef-1234567890ab",
                "mrk-1234abcd12ab34cd56ef1234567890ab",
                key_arn,
            ]),
            strs(&[
                "voltfleet-ami",
                "alias/",
                "arn:aws:kms:eu-west-1:123456789012:key/",
            ]),
        ),
        (
            "subnet_id",
            strs(&["", "subnet-0123456789abcdef0", "subnet-01234567"]),
            strs(&["subnet-", "sg-0123456789abcdef0", "0123456789abcdef0"]),
        ),
        (
            "vpc_id",
            strs(&["", "vpc-0123456789abcdef0"]),
            strs(&["vpc-", "subnet-0123456789abcdef0"]),
        ),
        ("web_volume_size", numbers(&[8, 30]), numbers(&[4, 0])),
        ("app_volume_size", numbers(&[8, 16, 100]), numbers(&[7])),
        (
            "extra_tags",
            vec![
                Value::Object(Map::new()),
                string_map(&[("CostCentre", "charging")]),
            ],
            vec![string_map(&[("aws:createdBy", "me")])],
        ),
    ]
}

#[test]
fn variables_are_described_and_refuse_values_of_the_wrong_shape() {
    let templates = Templates::load();
    let variables = templates.variables();
    let samples = samples();

    for required in [
        "region",
        "copy_regions",
        "version",
        "revision",
        "architecture",
        "kms_key_id",
    ] {
        let variable = variables
            .iter()
            .find(|variable| variable.name == required)
            .unwrap_or_else(|| panic!("packer/ must declare variable {required}"));
        assert!(
            !variable.validations.is_empty(),
            "packer/{}: variable {required} must have a validation: a wrong value there bakes a wrong AMI",
            variable.file
        );
    }

    for variable in &variables {
        let name = &variable.name;
        let file = &variable.file;
        assert!(
            variable
                .description
                .as_deref()
                .is_some_and(|text| text.trim().len() > 10),
            "packer/{file}: variable {name} must have a description that says what it is"
        );
        for validation in &variable.validations {
            let message = &validation.error_message;
            assert!(
                message.starts_with(|first: char| first.is_uppercase())
                    && (message.ends_with('.') || message.ends_with('?')),
                "packer/{file}: variable {name}'s error_message must be a sentence (capital first, full stop last), as Packer requires: {message:?}"
            );
        }
        if variable.validations.is_empty() {
            continue;
        }
        let (_, good, bad) = samples
            .iter()
            .find(|(sample, _, _)| sample == name)
            .unwrap_or_else(|| panic!("packer/{file}: variable {name} has a validation but this test has no samples for it; add some to samples()"));

        let check = |sample: &Value| -> Vec<String> {
            let mut ctx = functions();
            ctx.declare_var(
                "var",
                templates.var_object(&[(name.as_str(), sample.clone())]),
            );
            variable
                .validations
                .iter()
                .filter_map(|validation| match validation.condition.evaluate(&ctx) {
                    Ok(Value::Bool(true)) => None,
                    Ok(Value::Bool(false)) => Some(validation.error_message.clone()),
                    Ok(other) => panic!("packer/{file}: a validation of {name} gives {other} for {sample}, not true or false"),
                    Err(err) => panic!("packer/{file}: a validation of {name} does not evaluate for {sample}: {err}"),
                })
                .collect()
        };
        if let Some(default) = &variable.default {
            let refused = check(default);
            assert!(
                refused.is_empty(),
                "packer/{file}: variable {name} refuses its own default {default}: {refused:?}"
            );
        }
        for sample in good {
            let refused = check(sample);
            assert!(
                refused.is_empty(),
                "packer/{file}: variable {name} must accept {sample}, but refuses it: {refused:?}"
            );
        }
        for sample in bad {
            assert!(
                !check(sample).is_empty(),
                "packer/{file}: variable {name} must refuse {sample}, but accepts it"
            );
        }
    }
}

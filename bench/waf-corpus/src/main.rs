//! `waf-corpus FILE.jsonl...`: runs every request of a labelled corpus (bench/waf-corpus/corpus)
//! through voltfleet-proxy's inspection at each sensitivity level and prints, per source and
//! label, how many attacks are caught and how many benign requests are flagged, the CRS
//! attacks by the paranoia level of the rule they were written for, the time the inspection
//! takes per request, and the goals beside the figures. `--misses N` lists N missed attacks
//! and every flagged benign request, for tuning; `--json PATH` writes the figures;
//! `--verdicts PATH` writes, per request, the rule that matched at each level and where, so that two
//! builds can be compared request by request (`diff`). The time per request is the median of
//! five inspections of it, at each level.

// A report printed for a person is what this program is for.
#![allow(clippy::print_stdout)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde::Deserialize;
use voltfleet_proxy::security::parts::{PartLimits, Request};
use voltfleet_proxy::security::{self, DEFAULT_LEVEL, MAX_LEVEL};

/// One corpus line (see bench/waf-corpus/corpus/README.md).
#[derive(Debug, Deserialize)]
struct Line {
    id: String,
    label: String,
    source: String,
    path: String,
    query: Option<String>,
    headers: Vec<(String, String)>,
    content_type: Option<String>,
    body: Option<String>,
    note: Option<String>,
}

const GOAL_DETECTED: f64 = 95.0;
const GOAL_FLAGGED: f64 = 0.5;
const GOAL_P99_US: f64 = 50.0;
/// Each request is timed this many times; the median counts.
const TIMING_ROUNDS: usize = 5;

#[derive(Debug, Default, Clone)]
struct Tally {
    total: usize,
    /// Matched at each level, 1-based.
    matched: [usize; MAX_LEVEL as usize],
}

impl Tally {
    fn add(&mut self, levels: &[bool]) {
        self.total += 1;
        for (slot, hit) in self.matched.iter_mut().zip(levels) {
            *slot += usize::from(*hit);
        }
    }

    fn merge(&mut self, other: &Tally) {
        self.total += other.total;
        for (sum, n) in self.matched.iter_mut().zip(other.matched) {
            *sum += n;
        }
    }

    fn percent(&self, level: u8) -> f64 {
        if self.total == 0 {
            return f64::NAN;
        }
        100.0 * self.matched[usize::from(level) - 1] as f64 / self.total as f64
    }
}

fn main() -> anyhow::Result<()> {
    let mut files = Vec::new();
    let mut misses = 0usize;
    let mut json_out = None;
    let mut verdicts_out: Option<String> = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--misses" => {
                misses = args
                    .next()
                    .context("--misses needs a number")?
                    .parse()
                    .context("--misses needs a number")?;
            }
            "--json" => json_out = Some(args.next().context("--json needs a path")?),
            "--verdicts" => {
                verdicts_out = Some(args.next().context("--verdicts needs a path")?);
            }
            "-h" | "--help" => {
                println!(
                    "usage: waf-corpus [--misses N] [--json PATH] [--verdicts PATH] FILE.jsonl..."
                );
                return Ok(());
            }
            _ => files.push(arg),
        }
    }
    if files.is_empty() {
        bail!(
            "name the corpus files: waf-corpus bench/waf-corpus/corpus/benign.jsonl /var/tmp/waf-corpus/attacks-*.jsonl"
        );
    }

    let limits = PartLimits::default();
    let mut by_source: BTreeMap<(String, String), Tally> = BTreeMap::new();
    let mut by_crs_level: BTreeMap<(String, u8), Tally> = BTreeMap::new();
    let mut by_rule: BTreeMap<u32, (usize, usize)> = BTreeMap::new();
    let mut missed: Vec<String> = Vec::new();
    let mut flagged: Vec<String> = Vec::new();
    // Per level, 1-based: the time each request took to inspect, and each benign one.
    let mut timings: Vec<Vec<Duration>> = vec![Vec::new(); usize::from(MAX_LEVEL)];
    let mut benign_timings: Vec<Vec<Duration>> = vec![Vec::new(); usize::from(MAX_LEVEL)];
    // One line per request: its id, then the rule matched at each level (`-` for none).
    let mut verdict_lines = String::new();
    let started = Instant::now();

    for file in &files {
        let text = std::fs::read_to_string(file).with_context(|| format!("cannot read {file}"))?;
        let mut lines = 0usize;
        for (number, raw) in text.lines().enumerate() {
            if raw.trim().is_empty() {
                continue;
            }
            let line: Line = serde_json::from_str(raw)
                .with_context(|| format!("{file}:{}: not a corpus line", number + 1))?;
            lines += 1;
            let headers: Vec<(&str, &str)> = line
                .headers
                .iter()
                .map(|(name, value)| (name.as_str(), value.as_str()))
                .collect();
            let request = Request {
                path: &line.path,
                query: line.query.as_deref(),
                headers: &headers,
                content_type: line.content_type.as_deref(),
                body: line.body.as_deref().unwrap_or("").as_bytes(),
            };
            let verdicts: Vec<Option<security::Detection>> = (1..=MAX_LEVEL)
                .map(|level| security::inspect_request(&request, &limits, level, |_| false).0)
                .collect();
            let hits: Vec<bool> = verdicts.iter().map(Option::is_some).collect();
            if verdicts_out.is_some() {
                verdict_lines.push_str(&line.id);
                for verdict in &verdicts {
                    match verdict {
                        Some(detection) => {
                            verdict_lines.push_str(&format!(
                                " {}@{}",
                                detection.finding.rule,
                                detection.location.as_str()
                            ));
                        }
                        None => verdict_lines.push_str(" -"),
                    }
                }
                verdict_lines.push('\n');
            }
            // The median of a few rounds: one preemption of this process is not the
            // inspection's cost, while a request that is slow to inspect is slow every time.
            for level in 1..=MAX_LEVEL {
                let mut rounds: Vec<Duration> = (0..TIMING_ROUNDS)
                    .map(|_| {
                        let at = Instant::now();
                        let verdict =
                            security::inspect_request(&request, &limits, level, |_| false);
                        let took = at.elapsed();
                        std::hint::black_box(verdict);
                        took
                    })
                    .collect();
                rounds.sort_unstable();
                let took = rounds[TIMING_ROUNDS / 2];
                let slot = usize::from(level) - 1;
                timings[slot].push(took);
                if line.label == "benign" {
                    benign_timings[slot].push(took);
                }
            }
            let attack = line.label != "benign";
            by_source
                .entry((line.source.clone(), line.label.clone()))
                .or_default()
                .add(&hits);
            if line.source == "crs"
                && let Some(level) = crs_level(line.note.as_deref())
            {
                by_crs_level
                    .entry((line.label.clone(), level))
                    .or_default()
                    .add(&hits);
            }
            if let Some(detection) = &verdicts[usize::from(DEFAULT_LEVEL) - 1] {
                let entry = by_rule.entry(detection.finding.rule).or_default();
                if attack {
                    entry.0 += 1;
                } else {
                    entry.1 += 1;
                    flagged.push(format!(
                        "{} rule {} in {} {:?}: {:?}",
                        line.id,
                        detection.finding.rule,
                        detection.location.as_str(),
                        detection.name,
                        detection.excerpt
                    ));
                }
            } else if attack && missed.len() < misses {
                missed.push(format!(
                    "{} {}{}{} {}",
                    line.id,
                    line.path,
                    line.query
                        .as_deref()
                        .map(|q| format!("?{q}"))
                        .unwrap_or_default(),
                    line.body
                        .as_deref()
                        .map(|b| format!(" body={}", b.chars().take(160).collect::<String>()))
                        .unwrap_or_default(),
                    line.note.as_deref().unwrap_or("")
                ));
            }
        }
        eprintln!(
            "[{:>6.1}s] {file}: {lines} requests",
            started.elapsed().as_secs_f64()
        );
    }

    for sorted in timings.iter_mut().chain(benign_timings.iter_mut()) {
        sorted.sort_unstable();
    }
    let default_slot = usize::from(DEFAULT_LEVEL) - 1;
    let micros = |fraction: f64| percentile(&timings[default_slot], fraction);

    println!();
    println!(
        "voltfleet-proxy WAF against the corpus, levels 1 to {MAX_LEVEL} (default {DEFAULT_LEVEL})"
    );
    println!();
    println!(
        "{:<22}{:<8}{:>8}{:>10}{:>10}{:>10}",
        "source", "label", "requests", "level 1", "level 2", "level 3"
    );
    for ((source, label), tally) in &by_source {
        let cells: Vec<String> = (1..=MAX_LEVEL)
            .map(|level| format!("{:.2}%", tally.percent(level)))
            .collect();
        println!(
            "{source:<22}{label:<8}{:>8}{:>10}{:>10}{:>10}",
            tally.total, cells[0], cells[1], cells[2]
        );
    }
    if !by_crs_level.is_empty() {
        println!();
        println!("CRS attacks by the paranoia level of the rule they test:");
        for ((label, level), tally) in &by_crs_level {
            let cells: Vec<String> = (1..=MAX_LEVEL)
                .map(|l| format!("{:.2}%", tally.percent(l)))
                .collect();
            println!(
                "  {label:<6} PL{level}{:>8}{:>10}{:>10}{:>10}",
                tally.total, cells[0], cells[1], cells[2]
            );
        }
    }

    let mut attacks = Tally::default();
    let mut benign = Tally::default();
    for ((_, label), tally) in &by_source {
        if label == "benign" {
            benign.merge(tally);
        } else {
            attacks.merge(tally);
        }
    }
    let mut crs_default = Tally::default();
    for ((_, level), tally) in &by_crs_level {
        if *level <= DEFAULT_LEVEL {
            crs_default.merge(tally);
        }
    }
    let (p50, p99, max) = (micros(0.5), micros(0.99), micros(1.0));
    let benign_p99 = percentile(&benign_timings[default_slot], 0.99);
    println!();
    println!(
        "Inspection time per request at level {DEFAULT_LEVEL} ({} requests, median of {TIMING_ROUNDS} runs each): p50 {p50:.1} µs, p99 {p99:.1} µs, max {max:.1} µs",
        timings[default_slot].len()
    );
    println!(
        "  benign requests only: p50 {:.1} µs, p99 {:.1} µs, max {:.1} µs",
        percentile(&benign_timings[default_slot], 0.5),
        benign_p99,
        percentile(&benign_timings[default_slot], 1.0)
    );
    println!("  by level (µs):   all p50   all p99   benign p50   benign p99   max");
    for level in 1..=MAX_LEVEL {
        let (all, benign) = (
            &timings[usize::from(level) - 1],
            &benign_timings[usize::from(level) - 1],
        );
        println!(
            "  level {level}        {:>8.1}  {:>8.1}  {:>11.1}  {:>11.1}  {:>5.1}",
            percentile(all, 0.5),
            percentile(all, 0.99),
            percentile(benign, 0.5),
            percentile(benign, 0.99),
            percentile(all, 1.0)
        );
    }
    println!();
    let verdict = |met: bool| if met { "MET    " } else { "NOT MET" };
    let level = DEFAULT_LEVEL;
    println!("Goals at level {level}:");
    if attacks.total > 0 {
        let detected = attacks.percent(level);
        println!(
            "  {} attacks caught {detected:.2}% (goal ≥ {GOAL_DETECTED}%) of {}",
            verdict(detected >= GOAL_DETECTED),
            attacks.total
        );
    }
    if crs_default.total > 0 {
        let detected = crs_default.percent(level);
        println!(
            "  {} CRS attacks on PL1 rules caught {detected:.2}% (goal ≥ {GOAL_DETECTED}%) of {}",
            verdict(detected >= GOAL_DETECTED),
            crs_default.total
        );
    }
    if benign.total > 0 {
        let rate = benign.percent(level);
        println!(
            "  {} benign requests flagged {rate:.2}% (goal ≤ {GOAL_FLAGGED}%) of {}",
            verdict(rate <= GOAL_FLAGGED),
            benign.total
        );
    }
    println!(
        "  {} inspection p99 {p99:.1} µs, of benign requests {benign_p99:.1} µs (goal < {GOAL_P99_US} µs)",
        verdict(p99 < GOAL_P99_US && benign_p99 < GOAL_P99_US)
    );

    println!();
    println!("Matches at level {level} by rule (attacks / benign):");
    for (rule, (on_attacks, on_benign)) in &by_rule {
        println!("  {rule}  {on_attacks:>7} / {on_benign}");
    }
    if !flagged.is_empty() {
        println!();
        println!(
            "Benign requests flagged at level {level} ({}):",
            flagged.len()
        );
        for line in flagged.iter().take(misses.max(20)) {
            println!("  {line}");
        }
    }
    if !missed.is_empty() {
        println!();
        println!("Attacks missed at level {level} (first {}):", missed.len());
        for line in &missed {
            println!("  {line}");
        }
    }

    if let Some(path) = json_out {
        let sources: Vec<serde_json::Value> = by_source
            .iter()
            .map(|((source, label), tally)| {
                serde_json::json!({
                    "source": source, "label": label, "requests": tally.total,
                    "matched_by_level": tally.matched,
                })
            })
            .collect();
        let document = serde_json::json!({
            "default_level": DEFAULT_LEVEL,
            "sources": sources,
            "attacks_caught_percent": attacks.percent(level),
            "benign_flagged_percent": benign.percent(level),
            "inspection_us": {"p50": p50, "p99": p99, "max": max},
            "inspection_us_by_level": (1..=MAX_LEVEL).map(|level| {
                let slot = usize::from(level) - 1;
                serde_json::json!({
                    "level": level,
                    "p50": percentile(&timings[slot], 0.5),
                    "p99": percentile(&timings[slot], 0.99),
                    "benign_p50": percentile(&benign_timings[slot], 0.5),
                    "benign_p99": percentile(&benign_timings[slot], 0.99),
                })
            }).collect::<Vec<_>>(),
        });
        std::fs::write(&path, serde_json::to_string_pretty(&document)? + "\n")
            .with_context(|| format!("cannot write {path}"))?;
        println!("\nJSON: {path}");
    }
    if let Some(path) = verdicts_out {
        std::fs::write(&path, verdict_lines).with_context(|| format!("cannot write {path}"))?;
        println!("Verdicts per request: {path}");
    }
    Ok(())
}

/// The value at `fraction` of sorted durations, in microseconds.
fn percentile(sorted: &[Duration], fraction: f64) -> f64 {
    let index = ((sorted.len() as f64 * fraction).ceil() as usize).saturating_sub(1);
    sorted
        .get(index)
        .map_or(f64::NAN, |d| d.as_secs_f64() * 1e6)
}

/// The paranoia level a CRS line's note names (`paranoia-level/N; …`).
fn crs_level(note: Option<&str>) -> Option<u8> {
    note?
        .strip_prefix("paranoia-level/")?
        .split(';')
        .next()?
        .trim()
        .parse()
        .ok()
}

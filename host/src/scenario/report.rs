//! What `tenure test` prints, and the JUnit XML it writes for CI systems.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use super::model::show_time;
use super::run::SeedResult;

/// One scenario file's outcome: its seeds, or why it could not run.
#[derive(Debug)]
pub struct ScenarioOutcome {
    /// The file, as given on the command line.
    pub file: String,
    /// The scenario's name (the file name if it did not parse).
    pub name: String,
    /// It could not be read, parsed or its plugins loaded: why.
    pub error: Option<String>,
    /// Each seed run.
    pub seeds: Vec<SeedResult>,
}

impl ScenarioOutcome {
    /// Whether it parsed and every seed passed.
    pub fn passed(&self) -> bool {
        self.error.is_none() && self.seeds.iter().all(SeedResult::passed)
    }
}

/// The readable report of one scenario: every step of the first seed and
/// of each failing seed, one line per other passing seed, and for a
/// failure the expectation, the plugin log and the simulator's trace
/// before it, and the command that replays it.
pub fn text(outcome: &ScenarioOutcome, replay_program: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{}: {}", outcome.file, outcome.name);
    if let Some(error) = &outcome.error {
        let _ = writeln!(out, "  error: {}", indent(error, "         "));
        return out;
    }
    for (i, seed) in outcome.seeds.iter().enumerate() {
        let verdict = if seed.passed() { "ok" } else { "FAILED" };
        let _ = writeln!(
            out,
            "  seed {}: {verdict} ({} steps, {} virtual, {} ms real)",
            seed.seed,
            seed.steps.len(),
            show_time(seed.virtual_time),
            seed.wall.as_millis()
        );
        if let Some(error) = &seed.start_error {
            let _ = writeln!(
                out,
                "    the cluster did not start: {}",
                indent(error, "      ")
            );
        }
        if i == 0 || !seed.passed() {
            for step in &seed.steps {
                let (mark, detail) = match &step.outcome {
                    Ok(d) => ("ok  ", d.clone()),
                    Err(e) => ("FAIL", e.clone()),
                };
                let detail = if detail.is_empty() {
                    String::new()
                } else {
                    format!(": {detail}")
                };
                let _ = writeln!(
                    out,
                    "    {mark} {:>2} (line {}) {}{}",
                    step.number,
                    step.line,
                    step.description,
                    indent(&detail, "           ")
                );
            }
        }
        if !seed.passed() {
            if !seed.log_tail.is_empty() {
                let _ = writeln!(out, "    plugin log before the failure:");
                for line in &seed.log_tail {
                    let _ = writeln!(
                        out,
                        "      {:>12} {} {}",
                        show_time(line.at),
                        line.node,
                        line.message
                    );
                }
            }
            let events = &seed.trace_tail;
            if !events.is_empty() {
                let _ = writeln!(out, "    the cluster's events before the failure:");
                for line in &events[events.len().saturating_sub(12)..] {
                    let _ = writeln!(out, "      {}", line.trim_start());
                }
            }
            let _ = writeln!(
                out,
                "    replay: {replay_program} test {} --seed {}",
                shell_word(&outcome.file),
                seed.seed
            );
        }
    }
    out
}

/// JUnit XML for `outcomes`: a test suite per scenario file, a test case
/// per seed, with the failing step's message and the plugin log.
pub fn junit(outcomes: &[ScenarioOutcome]) -> String {
    let total: usize = outcomes.iter().map(|o| o.seeds.len().max(1)).sum();
    let failures = outcomes
        .iter()
        .map(|o| match o.error {
            Some(_) => 1,
            None => o.seeds.iter().filter(|s| !s.passed()).count(),
        })
        .sum::<usize>();
    let seconds = |d: Duration| format!("{:.3}", d.as_secs_f64());
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"tenure test\" tests=\"{total}\" failures=\"{failures}\">"
    );
    for o in outcomes {
        let suite_time: Duration = o.seeds.iter().map(|s| s.wall).sum();
        let suite_failures = if o.error.is_some() {
            1
        } else {
            o.seeds.iter().filter(|s| !s.passed()).count()
        };
        let _ = writeln!(
            out,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{suite_failures}\" time=\"{}\">",
            xml(&o.name),
            o.seeds.len().max(1),
            seconds(suite_time)
        );
        if let Some(error) = &o.error {
            let _ = writeln!(
                out,
                "    <testcase classname=\"{}\" name=\"{}\"><failure message=\"{}\">{}</failure></testcase>",
                xml(&o.file),
                xml(&o.name),
                xml(first_line(error)),
                xml(error)
            );
        }
        for seed in &o.seeds {
            let _ = write!(
                out,
                "    <testcase classname=\"{}\" name=\"{} (seed {})\" time=\"{}\"",
                xml(&o.file),
                xml(&o.name),
                seed.seed,
                seconds(seed.wall)
            );
            if seed.passed() {
                out.push_str("/>\n");
                continue;
            }
            let message = match (&seed.start_error, seed.failed_step()) {
                (Some(e), _) => format!("the cluster did not start: {e}"),
                (None, Some(step)) => format!(
                    "step {} (line {}) {}: {}",
                    step.number,
                    step.line,
                    step.description,
                    step.outcome.as_ref().err().map_or("", String::as_str)
                ),
                (None, None) => "failed".into(),
            };
            let mut log: Vec<String> = seed
                .log_tail
                .iter()
                .map(|l| format!("{} {} {}", show_time(l.at), l.node, l.message))
                .collect();
            if !seed.trace_tail.is_empty() {
                log.push("-- the cluster's events before the failure:".into());
                log.extend(seed.trace_tail.iter().map(|l| l.trim_start().to_string()));
            }
            let _ = writeln!(
                out,
                ">\n      <failure message=\"{}\">{}</failure>\n      <system-out>{}</system-out>\n    </testcase>",
                xml(first_line(&message)),
                xml(&message),
                xml(&log.join("\n"))
            );
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
}

/// Writes `junit(outcomes)` to `path`.
pub fn write_junit(path: &Path, outcomes: &[ScenarioOutcome]) -> std::io::Result<()> {
    std::fs::write(path, junit(outcomes))
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or("")
}

fn indent(text: &str, prefix: &str) -> String {
    text.replace('\n', &format!("\n{prefix}"))
}

/// Text escaped for an XML attribute or element; characters XML 1.0
/// cannot carry become `?`.
fn xml(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' | '\t' | '\r' => out.push(c),
            c if (c as u32) < 0x20 => out.push('?'),
            c => out.push(c),
        }
    }
    out
}

/// `word`, quoted for a POSIX shell if it needs it.
fn shell_word(word: &str) -> String {
    if word
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+".contains(c))
        && !word.is_empty()
    {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', "'\\''"))
    }
}

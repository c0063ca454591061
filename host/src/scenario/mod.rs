//! Scenario files: component-level tests of a behaviour plugin, written in
//! TOML instead of Rust, run by `tenure test FILE…`.
//!
//! A scenario names a cluster (nodes, timings, seeds), the plugin build
//! each node runs with its config, and steps: run for a while, crash or
//! restart nodes, partition (both ways or one way) and heal, change the
//! network's delays and loss, call the plugin, hot-swap it, hand
//! leadership over — and expectations about the plugins' log lines and
//! replies. It runs on the same simulated cluster as [`crate::testing`]:
//! the real election component and the real plugin `.wasm`, in virtual
//! time, the protocol's invariants checked after every step.
//!
//! ```
//! let text = r#"
//! [cluster]
//! nodes = 3
//!
//! [[step]]
//! elect = true
//! [[step]]
//! crash = "leader"
//! [[step]]
//! elect = { within = "2s", changed = true }
//! "#;
//! let scenario = tenure_host::scenario::parse(text, std::path::Path::new("failover.toml")).unwrap();
//! let loaded = tenure_host::scenario::load_plugins(&scenario, None).unwrap();
//! let result = tenure_host::scenario::run_seed(&scenario, &loaded, 1);
//! assert!(result.passed(), "{:?}", result.steps);
//! ```
//!
//! The format is documented with every key in `docs/testing-behaviours.md`.
//!
//! # Layout
//!
//! - `model.rs`: [`Scenario`] and its steps, as run;
//! - `parse.rs`, `values.rs`: the file into a [`Scenario`], with errors
//!   naming line and key;
//! - `run.rs`: one seed's run ([`run_seed`]);
//! - `expect.rs`: checking log expectations;
//! - `report.rs`: the text report and JUnit XML.

mod expect;
mod model;
mod parse;
mod report;
mod run;
mod values;

#[cfg(test)]
mod tests;

use std::fmt;
use std::path::{Path, PathBuf};

pub use model::{
    Action, Count, LogExpectation, NodeRef, Pattern, PluginSpec, Scenario, Since, Step, Targets,
};
pub use parse::{MAX_NODES, parse};
pub use report::{ScenarioOutcome, junit, text, write_junit};
pub use run::{Loaded, SeedResult, StepResult, load_plugins, run_seed};
pub use values::parse_duration;

use crate::artifact_cache::ArtifactCache;

/// Why a scenario file was refused: where, and what was expected.
///
/// ```
/// let error = tenure_host::scenario::parse("[cluster]\nnodes = 3\n[[step]]\nwait = 1\n", "s.toml".as_ref())
///     .unwrap_err();
/// assert_eq!(error.to_string(), "s.toml:3: step 1: `wait`: unknown action; expected one of \
///     elect, run, crash, restart, pause, partition, cut, heal, network, call, swap, transfer, expect");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScenarioError {
    /// The file.
    pub path: PathBuf,
    /// The line, when known.
    pub line: Option<usize>,
    /// What is wrong and what was expected.
    pub message: String,
}

impl ScenarioError {
    fn at(path: &Path, line: Option<usize>, message: String) -> ScenarioError {
        ScenarioError {
            path: path.to_path_buf(),
            line,
            message,
        }
    }
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{line}: {}", self.path.display(), self.message),
            None => write!(f, "{}: {}", self.path.display(), self.message),
        }
    }
}

impl std::error::Error for ScenarioError {}

/// Reads and parses the scenario file at `path`.
///
/// ```no_run
/// let scenario = tenure_host::scenario::load("examples/plugins/python/greeter.scenario.toml".as_ref()).unwrap();
/// println!("{}: {} steps", scenario.name, scenario.steps.len());
/// ```
pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ScenarioError::at(path, None, format!("cannot read it: {e}")))?;
    parse(&text, path)
}

/// Which seeds to run a scenario with.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SeedChoice {
    /// What the file says (`cluster.seed`, `cluster.seeds`).
    #[default]
    FromFile,
    /// `N` seeds from the file's first seed on.
    Count(u64),
    /// Exactly this seed (a replay).
    Exactly(u64),
}

/// Loads, compiles and runs the scenario at `file` over the chosen seeds:
/// what `tenure test` does for each file. Never fails: a file that cannot
/// run is an outcome with its error.
///
/// ```no_run
/// use tenure_host::scenario::{SeedChoice, run_file};
/// let outcome = run_file("failover.toml", SeedChoice::Count(20), None);
/// assert!(outcome.passed(), "{}", tenure_host::scenario::text(&outcome, "tenure"));
/// ```
pub fn run_file(file: &str, seeds: SeedChoice, cache: Option<&ArtifactCache>) -> ScenarioOutcome {
    let path = Path::new(file);
    let fallback_name = path
        .file_stem()
        .map_or_else(|| file.to_string(), |s| s.to_string_lossy().into_owned());
    let failed = |name: String, error: String| ScenarioOutcome {
        file: file.to_string(),
        name,
        error: Some(error),
        seeds: Vec::new(),
    };
    let scenario = match load(path) {
        Ok(s) => s,
        Err(e) => return failed(fallback_name, e.to_string()),
    };
    let loaded = match load_plugins(&scenario, cache) {
        Ok(l) => l,
        Err(e) => return failed(scenario.name.clone(), e.to_string()),
    };
    let seeds: Vec<u64> = match seeds {
        SeedChoice::FromFile => (0..scenario.seeds)
            .map(|i| scenario.first_seed.wrapping_add(i))
            .collect(),
        SeedChoice::Count(n) => (0..n.max(1))
            .map(|i| scenario.first_seed.wrapping_add(i))
            .collect(),
        SeedChoice::Exactly(seed) => vec![seed],
    };
    ScenarioOutcome {
        file: file.to_string(),
        name: scenario.name.clone(),
        error: None,
        seeds: seeds
            .into_iter()
            .map(|seed| run_seed(&scenario, &loaded, seed))
            .collect(),
    }
}

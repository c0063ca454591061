//! `tenure test FILE… [--seeds N | --seed S] [--junit PATH]`: runs
//! scenario files (see `tenure_host::scenario`) against the plugin builds they
//! name, in the simulator, and exits non-zero if any failed.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context as _;

use tenure_host::artifact_cache::ArtifactCache;
use tenure_host::scenario::{self, ScenarioOutcome, SeedChoice};

/// What `tenure test` was asked to do.
#[derive(Clone, Debug, Default)]
pub struct TestRequest {
    /// The scenario files.
    pub files: Vec<PathBuf>,
    /// Run each scenario over this many seeds instead of what it says.
    pub seeds: Option<u64>,
    /// Run exactly this seed (a replay).
    pub seed: Option<u64>,
    /// Write JUnit XML here.
    pub junit: Option<PathBuf>,
    /// Where compiled plugins are cached (default
    /// `$XDG_CACHE_HOME/tenure/artifacts`, else `~/.cache/tenure/artifacts`).
    pub cache_dir: Option<PathBuf>,
}

/// Runs the request and prints the report; `Ok(ExitCode::FAILURE)` when a
/// scenario failed, `Err` when the request itself is wrong.
pub fn test(request: &TestRequest) -> anyhow::Result<ExitCode> {
    if request.files.is_empty() {
        anyhow::bail!("name at least one scenario file: tenure test FILE.toml…");
    }
    let choice = match (request.seeds, request.seed) {
        (Some(_), Some(_)) => anyhow::bail!("give --seeds N or --seed S, not both"),
        (Some(0), None) => anyhow::bail!("--seeds must be at least 1"),
        (Some(n), None) => SeedChoice::Count(n),
        (None, Some(seed)) => SeedChoice::Exactly(seed),
        (None, None) => SeedChoice::FromFile,
    };
    let cache = open_cache(request.cache_dir.as_deref());
    let started = Instant::now();
    let mut outcomes: Vec<ScenarioOutcome> = Vec::new();
    for file in &request.files {
        let outcome = scenario::run_file(&file.display().to_string(), choice, cache.as_ref());
        print!("{}", scenario::text(&outcome, "tenure"));
        outcomes.push(outcome);
    }
    let seeds: usize = outcomes.iter().map(|o| o.seeds.len()).sum();
    let failed_seeds: usize = outcomes
        .iter()
        .map(|o| o.seeds.iter().filter(|s| !s.passed()).count())
        .sum();
    let broken = outcomes.iter().filter(|o| o.error.is_some()).count();
    let failed = outcomes.iter().filter(|o| !o.passed()).count();
    println!(
        "\n{} scenario(s), {seeds} seed(s): {} passed, {failed} failed{} in {:.2} s",
        outcomes.len(),
        outcomes.len() - failed,
        if broken > 0 {
            format!(" ({broken} could not run, {failed_seeds} seed(s) failed)")
        } else {
            String::new()
        },
        started.elapsed().as_secs_f64()
    );
    if let Some(path) = &request.junit {
        scenario::write_junit(path, &outcomes)
            .with_context(|| format!("writing the JUnit report {}", path.display()))?;
        println!("JUnit report: {}", path.display());
    }
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The artifact cache, or none (with a warning) if it cannot be opened:
/// a test run is slower without it, not wrong.
fn open_cache(dir: Option<&Path>) -> Option<ArtifactCache> {
    let dir = match dir {
        Some(dir) => dir.to_path_buf(),
        None => default_cache_dir()?,
    };
    match ArtifactCache::open(&dir) {
        Ok(cache) => Some(cache),
        Err(e) => {
            eprintln!("warning: compiling without the artifact cache: {e:#}");
            None
        }
    }
}

/// `$XDG_CACHE_HOME/tenure/artifacts`, else `$HOME/.cache/tenure/artifacts`.
fn default_cache_dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|v| !v.is_empty())
                .map(|h| PathBuf::from(h).join(".cache"))
        })?;
    Some(base.join("tenure").join("artifacts"))
}

//! `tenure test`, as a user runs it: the examples' scenario files pass (and
//! write JUnit XML), scenarios that must fail do with a useful message and
//! a replay that reproduces them, bad files name their line, and a project
//! from `tenure new-plugin` in each language builds outside this
//! repository and passes its own scenario.
//!
//! The plugins are built by the README's test command first
//! (`scripts/build-guests.sh`, `scripts/build-polyglot.sh`).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Instant;

/// This repository.
fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The target directory the plugins were built into.
fn target() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|t| if t.is_absolute() { t } else { repo().join(t) })
        .unwrap_or_else(|| repo().join("target"))
}

/// `tenure ARGS` in `dir`, with an artifact cache shared by every run of
/// the suite (so compiled Python and JavaScript plugins are reused).
fn tenure(dir: &Path, args: &[&str]) -> Output {
    let cache = target().join("tenure-test-artifacts");
    Command::new(env!("CARGO_BIN_EXE_tenure"))
        .arg("test")
        .args(args)
        .arg("--cache-dir")
        .arg(&cache)
        .current_dir(dir)
        .env("CARGO_TARGET_DIR", target())
        .output()
        .expect("tenure runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// A fresh, empty directory outside the repository.
fn temp_dir(what: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let dir = std::env::temp_dir().join(format!("tenure-{what}-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

#[test]
fn the_examples_scenarios_pass_and_write_junit() {
    let files = [
        "examples/scenarios/scheduler.toml",
        "examples/scenarios/lock.toml",
        "examples/plugins/python/greeter.scenario.toml",
        "examples/plugins/js/greeter.scenario.toml",
    ];
    let dir = temp_dir("scenarios-junit");
    let junit = dir.join("junit.xml");
    let mut args: Vec<&str> = files.to_vec();
    let junit_arg = junit.display().to_string();
    args.extend(["--junit", &junit_arg]);
    let started = Instant::now();
    let output = tenure(&repo(), &args);
    let text = stdout(&output);
    eprintln!("{text}(in {:.1} s)", started.elapsed().as_secs_f64());
    assert!(
        output.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        text.contains("4 scenario(s), 10 seed(s): 4 passed, 0 failed"),
        "{text}"
    );
    let xml = std::fs::read_to_string(&junit).expect("the JUnit report");
    assert!(xml.starts_with("<?xml"), "{xml}");
    assert!(
        xml.contains("<testsuites name=\"tenure test\" tests=\"10\" failures=\"0\">"),
        "{xml}"
    );
    assert_eq!(xml.matches("<testcase ").count(), 10, "{xml}");
    assert!(!xml.contains("<failure"), "{xml}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_scenario_that_cannot_hold_fails_with_the_expectation_the_log_and_a_replay() {
    let output = tenure(&repo(), &["tests/scenarios/impossible.toml"]);
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    for part in [
        "seed 1: FAILED",
        "ok    2 (line 15) run 1s",
        "FAIL  3 (line 18) expect log /^run / on leader: expected at least 1000 line(s) matching /^run / from n1, found 10",
        "plugin log before the failure:",
        "n1 run 10 of job by n1 in term 1",
        "replay: tenure test tests/scenarios/impossible.toml --seed 1",
        "1 scenario(s), 1 seed(s): 0 passed, 1 failed",
    ] {
        assert!(text.contains(part), "no {part:?} in:\n{text}");
    }
    // The printed replay runs the same seed to the same failure.
    let replay = tenure(&repo(), &["tests/scenarios/impossible.toml", "--seed", "1"]);
    let replayed = stdout(&replay);
    let failure = |t: &str| {
        t.lines()
            .filter(|l| l.contains("FAIL ") || l.contains(" at "))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(replay.status.code(), Some(1), "{replayed}");
    assert_eq!(failure(&replayed), failure(&text));
}

#[test]
fn a_job_run_on_two_nodes_in_one_term_fails_and_the_leader_only_plugin_passes() {
    let broken = tenure(&repo(), &["tests/scenarios/leader-job-broken.toml"]);
    let text = stdout(&broken);
    assert_eq!(broken.status.code(), Some(1), "{text}");
    assert!(
        text.contains("expected at most one node per term to write lines matching"),
        "{text}"
    );
    assert!(text.contains("n1, n2 and n3 did"), "{text}");
    assert!(
        text.contains("replay: tenure test tests/scenarios/leader-job-broken.toml --seed 2"),
        "{text}"
    );

    let correct = tenure(
        &repo(),
        &["tests/scenarios/leader-job.toml", "--seeds", "20"],
    );
    let text = stdout(&correct);
    assert!(correct.status.success(), "{text}");
    assert!(
        text.contains("1 scenario(s), 20 seed(s): 1 passed, 0 failed"),
        "{text}"
    );
    assert_eq!(text.matches(": ok (3 steps").count(), 20, "{text}");
}

#[test]
fn every_fault_a_scenario_can_make_keeps_the_scheduler_on_one_node_per_term() {
    // A frozen leader, a one-way cut, a slow lossy network, two crashes at
    // once; 30 seeds.
    let output = tenure(&repo(), &["tests/scenarios/faults.toml", "--seeds", "30"]);
    let text = stdout(&output);
    assert!(output.status.success(), "{text}");
    assert!(
        text.contains("1 scenario(s), 30 seed(s): 1 passed, 0 failed"),
        "{text}"
    );
    for step in [
        "pause leader for 1s",
        "cut leader -> followers",
        "network delay 5-30 ms, loss 0.05",
        "crash leader, n5",
        "restart crashed",
    ] {
        assert!(text.contains(step), "no {step:?} in:\n{text}");
    }
}

#[test]
fn bad_files_and_missing_plugins_are_named_and_fail_the_run() {
    let output = tenure(
        &repo(),
        &[
            "tests/scenarios/two-actions.toml",
            "tests/scenarios/leader-job.toml",
        ],
    );
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(
        text.contains(
            "error: tests/scenarios/two-actions.toml:7: step 2: a step has exactly one action"
        ),
        "{text}"
    );
    assert!(text.contains("found crash and run"), "{text}");
    assert!(
        text.contains("2 scenario(s), 2 seed(s): 1 passed, 1 failed (1 could not run"),
        "{text}"
    );

    let dir = temp_dir("scenarios-missing");
    let file = dir.join("missing.toml");
    std::fs::write(
        &file,
        "[cluster]\nnodes = 3\n[plugin]\npath = \"nothing.wasm\"\n[[step]]\nelect = true\n",
    )
    .expect("write");
    let output = tenure(&dir, &["missing.toml"]);
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(
        text.contains("plugin not found at") && text.contains("nothing.wasm"),
        "{text}"
    );
    let _ = std::fs::remove_dir_all(&dir);

    let none = Command::new(env!("CARGO_BIN_EXE_tenure"))
        .arg("test")
        .output()
        .expect("tenure runs");
    assert_eq!(
        none.status.code(),
        Some(2),
        "clap refuses a run with no files"
    );
}

/// `tenure new-plugin NAME --lang LANG` in a directory outside the
/// repository, then the project's own build, then `tenure test
/// scenario.toml` there.
fn scaffold_builds_and_passes(lang: &str, build: &[&str]) {
    let dir = temp_dir(&format!("scaffold-{lang}"));
    let project = dir.join("nightly-job");
    let made = Command::new(env!("CARGO_BIN_EXE_tenure"))
        .args(["new-plugin", "nightly-job", "--lang", lang, "--dir"])
        .arg(&project)
        .output()
        .expect("tenure runs");
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    assert!(
        stdout(&made).contains("tenure test scenario.toml"),
        "{}",
        stdout(&made)
    );

    let started = Instant::now();
    // Rust projects build into a target directory shared between runs
    // (incremental); the scenario finds the .wasm through CARGO_TARGET_DIR.
    let rust_target = target().join("scaffold-test");
    let built = Command::new(build[0])
        .args(&build[1..])
        .current_dir(&project)
        .env("CARGO_TARGET_DIR", &rust_target)
        .output()
        .expect("the build runs");
    assert!(
        built.status.success(),
        "the {lang} project did not build:\n{}\n{}",
        String::from_utf8_lossy(&built.stdout),
        String::from_utf8_lossy(&built.stderr)
    );
    let build_s = started.elapsed().as_secs_f64();

    let started = Instant::now();
    let cache = target().join("tenure-test-artifacts");
    let output = Command::new(env!("CARGO_BIN_EXE_tenure"))
        .args(["test", "scenario.toml", "--cache-dir"])
        .arg(&cache)
        .current_dir(&project)
        .env("CARGO_TARGET_DIR", &rust_target)
        .output()
        .expect("tenure runs");
    let text = stdout(&output);
    eprintln!(
        "{lang} scaffold: built in {build_s:.1} s, tested in {:.1} s\n{text}",
        started.elapsed().as_secs_f64()
    );
    assert!(
        output.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        text.contains("1 scenario(s), 5 seed(s): 1 passed, 0 failed"),
        "{text}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_rust_scaffold_builds_outside_the_repository_and_passes_its_scenario() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    scaffold_builds_and_passes(
        "rust",
        &[&cargo, "build", "--release", "--target", "wasm32-wasip2"],
    );
}

#[test]
fn a_python_scaffold_builds_outside_the_repository_and_passes_its_scenario() {
    scaffold_builds_and_passes("python", &["./build.sh"]);
}

#[test]
fn a_javascript_scaffold_builds_outside_the_repository_and_passes_its_scenario() {
    scaffold_builds_and_passes("js", &["./build.sh"]);
}

/// `tenure sim chaos --plugin …`: every node runs the first plugin and
/// operators hot-swap nodes between the versions in the middle of the
/// faults; the batch passes. A plugin path that does not exist is named.
#[test]
fn sim_chaos_runs_seeds_with_plugin_swaps_and_names_a_missing_plugin() {
    let plugin = |name: &str| {
        target()
            .join("wasm32-wasip2/release")
            .join(format!("tenure_plugin_{name}.wasm"))
    };
    let chaos = |plugins: &[PathBuf]| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_tenure"));
        command.args(["sim", "chaos", "--seeds", "20"]);
        for path in plugins {
            command.arg("--plugin").arg(path);
        }
        command
            .env("CARGO_TARGET_DIR", target())
            .output()
            .expect("tenure runs")
    };
    let ran = chaos(&[plugin("scheduler"), plugin("logger")]);
    let out = stdout(&ran);
    assert!(
        ran.status.success() && out.contains("20 seeds from 0") && out.contains(": 0 failed"),
        "{out}\n{}",
        String::from_utf8_lossy(&ran.stderr)
    );
    let missing = chaos(&[plugin("no-such-plugin")]);
    let err = String::from_utf8_lossy(&missing.stderr);
    assert!(
        !missing.status.success() && err.contains("tenure_plugin_no-such-plugin.wasm"),
        "{err}"
    );
}

//! `tenure new-plugin`: names, refusals, and a generated project that
//! really builds to a component the simulator runs.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use tenure_host::testing::{Cluster, Plugin};

use super::*;

/// A fresh, empty directory under the system's temp dir.
fn temp_dir(what: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let dir = std::env::temp_dir().join(format!("tenure-{what}-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

#[test]
fn names_must_make_a_package_and_a_file_name() {
    for good in ["my-plugin", "lock2", "a_b"] {
        assert!(check_name(good).is_ok(), "{good}");
    }
    for (bad, reason) in [
        ("", "1 to 64"),
        ("2fast", "start with a lowercase letter"),
        ("My", "start with a lowercase letter"),
        ("a b", "only lowercase"),
        ("../x", "start with"),
        ("a/b", "only lowercase"),
        ("tenure_sdk", "taken"),
        ("std", "taken"),
    ] {
        let error = check_name(bad).expect_err(bad).to_string();
        assert!(error.contains(reason), "{bad:?}: {error}");
    }
}

#[test]
fn a_non_empty_directory_is_refused_and_left_alone() {
    let dir = temp_dir("scaffold-refuse");
    std::fs::write(dir.join("keep.txt"), "mine").expect("write");
    let error = scaffold("p", &dir, &repository()).expect_err("refused");
    assert!(error.to_string().contains("not empty"), "{error}");
    let names: Vec<_> = std::fs::read_dir(&dir)
        .expect("read")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(names, ["keep.txt"]);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_missing_sdk_is_named() {
    let dir = temp_dir("scaffold-nosdk");
    let error = scaffold("p", &dir.join("p"), &dir).expect_err("no sdk");
    assert!(error.to_string().contains("SDK is not at"), "{error}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Generates a project outside the workspace, builds it with the one
/// documented command, and runs the `.wasm` in the simulator.
#[test]
fn a_generated_project_builds_to_a_plugin_the_simulator_runs() {
    let dir = temp_dir("scaffold-build");
    let project = dir.join("hello-leader");
    let written = scaffold("hello-leader", &project, &repository()).expect("scaffolded");
    assert!(written.iter().any(|p| p.ends_with("tests/simulator.rs")));

    // A target directory shared between runs keeps this incremental.
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repository().join("target"))
        .join("scaffold-test");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let started = Instant::now();
    let output = Command::new(cargo)
        .args(["build", "--release", "--target", "wasm32-wasip2"])
        .current_dir(&project)
        .env("CARGO_TARGET_DIR", &target)
        .output()
        .expect("cargo runs");
    assert!(
        output.status.success(),
        "the generated project did not build:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let wasm = target.join("wasm32-wasip2/release/hello_leader.wasm");
    let size = std::fs::metadata(&wasm).expect("the .wasm exists").len();
    eprintln!(
        "generated plugin built in {:.1} s: {} ({size} bytes)",
        started.elapsed().as_secs_f64(),
        wasm.display()
    );

    let plugin = Plugin::load(&wasm)
        .expect("a valid plugin")
        .config("period-ms", "200");
    let mut cluster = Cluster::new(3, &plugin).expect("starts");
    let leader = cluster.elect().expect("elects");
    cluster.run_for(Duration::from_secs(2));
    cluster.check_safety().expect("safe");
    let runs: Vec<String> = cluster
        .logs()
        .into_iter()
        .filter(|l| l.message.starts_with("run "))
        .map(|l| l.message)
        .collect();
    assert!(runs.len() >= 9, "{runs:#?}");
    let by_leader = format!("of job by {} in term {}", leader.id, leader.term);
    assert!(runs.iter().all(|r| r.ends_with(&by_leader)), "{runs:#?}");
    assert_eq!(
        cluster.call(leader.index, b"runs"),
        Some(Ok(runs.len().to_string().into_bytes()))
    );
    let _ = std::fs::remove_dir_all(&dir);
}

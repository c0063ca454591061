//! `tenure new-plugin`: names, refusals, and the files each language's
//! project gets. That each project builds and passes `tenure test` is
//! tests/scenarios.rs.

use std::path::PathBuf;

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
    let error = scaffold("p", Lang::Rust, &dir, &repository()).expect_err("refused");
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
    let error = scaffold("p", Lang::Rust, &dir.join("p"), &dir).expect_err("no sdk");
    assert!(error.to_string().contains("SDK is not at"), "{error}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn every_language_gets_its_build_script_tests_scenario_and_wit() {
    for (lang, expected) in [
        (
            Lang::Rust,
            &["Cargo.toml", "src/lib.rs", "scenario.toml", "Cargo.lock"][..],
        ),
        (
            Lang::Python,
            &[
                "app.py",
                "behaviour.py",
                "test_behaviour.py",
                "tenure_http.py",
                "build.sh",
                "scenario.toml",
                "wit/behaviour.wit",
                "wit/deps/http/http.wit",
            ][..],
        ),
        (
            Lang::Js,
            &[
                "app.js",
                "behaviour.js",
                "behaviour.test.mjs",
                "build.sh",
                "package.json",
                "package-lock.json",
                "scenario.toml",
                "wit/types.wit",
            ][..],
        ),
    ] {
        let dir = temp_dir("scaffold-files");
        let written = scaffold("my-job", lang, &dir, &repository()).expect("scaffolded");
        for file in expected {
            assert!(
                written.contains(&dir.join(file)),
                "{lang:?}: no {file} in {written:#?}"
            );
        }
        let scenario = std::fs::read_to_string(dir.join("scenario.toml")).expect("scenario");
        assert!(
            !scenario.contains("{{"),
            "{lang:?}: a template marker was left:\n{scenario}"
        );
        let parsed = tenure_host::scenario::parse(&scenario, &dir.join("scenario.toml"))
            .expect("the scenario parses");
        let wasm = parsed.plugins[0].as_ref().expect("a plugin").path.clone();
        let expected_wasm = match lang {
            Lang::Rust => "wasm32-wasip2/release/my_job.wasm",
            Lang::Python | Lang::Js => "my-job.wasm",
        };
        assert!(
            wasm.ends_with(expected_wasm),
            "{lang:?}: {}",
            wasm.display()
        );
        if lang == Lang::Js {
            let lock = std::fs::read_to_string(dir.join("package-lock.json")).expect("lock");
            assert!(
                lock.contains("\"name\": \"my-job\"") && !lock.contains(JS_LOCK_NAME),
                "{lock}"
            );
        }
        if lang != Lang::Rust {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(dir.join("build.sh"))
                .expect("build.sh")
                .permissions()
                .mode();
            assert_eq!(mode & 0o111, 0o111, "build.sh is executable");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}

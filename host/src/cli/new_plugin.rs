//! `tenure new-plugin NAME [--lang rust|python|js] [--dir DIR]`: writes a
//! ready-to-build behaviour plugin project.
//!
//! Every project has the same behaviour (a job run by the leader only), its
//! native unit tests, a build script and `scenario.toml`, a component-level
//! test for `tenure test`. Templates live in `new_plugin/` (Rust),
//! `new_plugin/python/` and `new_plugin/js/`.
//!
//! - **Rust**: a workspace of its own that depends on this repository's SDK
//!   (`sdk/`) and, for its simulator test, on this host, by absolute path:
//!   the repository `tenure` was built from. It also gets this
//!   repository's `Cargo.lock`, so it builds with the dependency versions
//!   Tenure is tested with, without a registry look-up.
//! - **Python** and **JavaScript**: a copy of this repository's `wit/`
//!   (the `plugin` world and the WASI packages it imports), so the project
//!   builds anywhere; JavaScript also gets the examples' `package-lock.json`,
//!   pinning componentize-js.

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// The language a project is written in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Lang {
    /// Rust, on Tenure's SDK; built with cargo.
    Rust,
    /// Python, built with componentize-py.
    Python,
    /// JavaScript, built with componentize-js.
    Js,
}

/// The Rust project's files: (path in the project, template).
const RUST_FILES: [(&str, &str); 6] = [
    ("Cargo.toml", include_str!("new_plugin/Cargo.toml.tmpl")),
    ("src/lib.rs", include_str!("new_plugin/lib.rs.tmpl")),
    (
        "tests/simulator.rs",
        include_str!("new_plugin/simulator.rs.tmpl"),
    ),
    (
        "scenario.toml",
        include_str!("new_plugin/scenario.toml.tmpl"),
    ),
    ("README.md", include_str!("new_plugin/README.md.tmpl")),
    (".gitignore", "/target\n"),
];

/// The Python project's files. `tenure_http.py`, the HTTP helper, is the
/// Python greeter's own, so the example and every new project share one.
const PYTHON_FILES: [(&str, &str); 8] = [
    (
        "behaviour.py",
        include_str!("new_plugin/python/behaviour.py.tmpl"),
    ),
    ("app.py", include_str!("new_plugin/python/app.py.tmpl")),
    (
        "test_behaviour.py",
        include_str!("new_plugin/python/test_behaviour.py.tmpl"),
    ),
    ("build.sh", include_str!("new_plugin/python/build.sh.tmpl")),
    (
        "tenure_http.py",
        include_str!("../../../examples/plugins/python/tenure_http.py"),
    ),
    (
        "scenario.toml",
        include_str!("new_plugin/scenario.toml.tmpl"),
    ),
    (
        "README.md",
        include_str!("new_plugin/python/README.md.tmpl"),
    ),
    (".gitignore", "*.wasm\n*.wasm.tmp\n__pycache__/\n"),
];

/// The JavaScript project's files.
const JS_FILES: [(&str, &str); 8] = [
    (
        "behaviour.js",
        include_str!("new_plugin/js/behaviour.js.tmpl"),
    ),
    ("app.js", include_str!("new_plugin/js/app.js.tmpl")),
    (
        "behaviour.test.mjs",
        include_str!("new_plugin/js/behaviour.test.mjs.tmpl"),
    ),
    (
        "package.json",
        include_str!("new_plugin/js/package.json.tmpl"),
    ),
    ("build.sh", include_str!("new_plugin/js/build.sh.tmpl")),
    (
        "scenario.toml",
        include_str!("new_plugin/scenario.toml.tmpl"),
    ),
    ("README.md", include_str!("new_plugin/js/README.md.tmpl")),
    (".gitignore", "*.wasm\n*.wasm.tmp\nnode_modules/\n"),
];

/// Where the JavaScript examples' lock file is, in the repository: the
/// versions Tenure's tests build with.
const JS_LOCK: &str = "examples/plugins/js/package-lock.json";

/// The package name in [`JS_LOCK`], replaced by the plugin's.
const JS_LOCK_NAME: &str = "tenure-greeter-js";

/// Names a plugin may not take: crates every plugin links, or that Rust
/// reserves.
const RESERVED: [&str; 9] = [
    "tenure-sdk",
    "tenure-host",
    "test",
    "std",
    "core",
    "alloc",
    "self",
    "super",
    "crate",
];

/// Why a project was not written.
#[derive(Debug)]
pub enum ScaffoldError {
    /// NAME is not a usable package name.
    InvalidName { name: String, reason: &'static str },
    /// The target directory exists and holds files.
    NotEmpty(PathBuf),
    /// This repository's SDK is not where `tenure` was built from.
    NoSdk(PathBuf),
    /// A file the project copies from this repository (its `wit/`, the
    /// JavaScript lock file) is missing.
    NoRepositoryFile(PathBuf),
    /// Writing a file failed.
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
}

impl fmt::Display for ScaffoldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ScaffoldError::InvalidName { name, reason } => {
                write!(f, "invalid plugin name {name:?}: {reason}")
            }
            ScaffoldError::NotEmpty(dir) => write!(
                f,
                "{} exists and is not empty; choose another NAME or --dir",
                dir.display()
            ),
            ScaffoldError::NoSdk(sdk) => write!(
                f,
                "the Tenure SDK is not at {} (tenure was built from a repository that has \
                 moved); rebuild tenure from the repository",
                sdk.display()
            ),
            ScaffoldError::NoRepositoryFile(path) => write!(
                f,
                "{} is missing (tenure was built from a repository that has moved or \
                 changed); rebuild tenure from the repository",
                path.display()
            ),
            ScaffoldError::Io { path, error } => write!(f, "writing {}: {error}", path.display()),
        }
    }
}

impl std::error::Error for ScaffoldError {}

/// Checks NAME: a Cargo package name that also makes a clean file name.
pub fn check_name(name: &str) -> Result<(), ScaffoldError> {
    let invalid = |reason| ScaffoldError::InvalidName {
        name: name.to_string(),
        reason,
    };
    if name.is_empty() || name.len() > 64 {
        return Err(invalid("use 1 to 64 characters"));
    }
    if !name.starts_with(|c: char| c.is_ascii_lowercase()) {
        return Err(invalid("start with a lowercase letter"));
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
    {
        return Err(invalid("use only lowercase letters, digits, `-` and `_`"));
    }
    if RESERVED.contains(&name) || RESERVED.contains(&name.replace('_', "-").as_str()) {
        return Err(invalid("that name is taken by Rust or Tenure"));
    }
    Ok(())
}

/// This repository's root, as `tenure` was built from it.
pub fn repository() -> PathBuf {
    let host = Path::new(env!("CARGO_MANIFEST_DIR"));
    host.parent().unwrap_or(host).to_path_buf()
}

/// Writes the `lang` project for plugin `name` into `dir` (which must be
/// absent or empty), against the repository at `repo`. Returns the files
/// written.
pub fn scaffold(
    name: &str,
    lang: Lang,
    dir: &Path,
    repo: &Path,
) -> Result<Vec<PathBuf>, ScaffoldError> {
    check_name(name)?;
    let sdk = repo.join("sdk");
    if lang == Lang::Rust && !sdk.join("Cargo.toml").is_file() {
        return Err(ScaffoldError::NoSdk(sdk));
    }
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |error| ScaffoldError::Io { path, error }
    };
    if dir.exists() && std::fs::read_dir(dir).map_err(io(dir))?.next().is_some() {
        return Err(ScaffoldError::NotEmpty(dir.to_path_buf()));
    }
    let crate_name = name.replace('-', "_");
    let wasm = match lang {
        Lang::Rust => {
            format!("${{CARGO_TARGET_DIR:-target}}/wasm32-wasip2/release/{crate_name}.wasm")
        }
        Lang::Python | Lang::Js => format!("{name}.wasm"),
    };
    let slash = |p: PathBuf| p.display().to_string().replace('\\', "/");
    let fill = |template: &str| {
        template
            .replace("{{name}}", name)
            .replace("{{crate}}", &crate_name)
            .replace("{{wasm}}", &wasm)
            .replace("{{sdk}}", &slash(sdk.clone()))
            .replace("{{host}}", &slash(repo.join("host")))
            .replace("{{repo}}", &slash(repo.to_path_buf()))
    };
    let templates: &[(&str, &str)] = match lang {
        Lang::Rust => &RUST_FILES,
        Lang::Python => &PYTHON_FILES,
        Lang::Js => &JS_FILES,
    };
    let mut files: Vec<(String, String)> = templates
        .iter()
        .map(|(p, t)| (p.to_string(), fill(t)))
        .collect();
    match lang {
        Lang::Rust => {
            if let Ok(lock) = std::fs::read_to_string(repo.join("Cargo.lock")) {
                files.push(("Cargo.lock".into(), lock));
            }
        }
        Lang::Python | Lang::Js => files.extend(wit_files(&repo.join("wit"))?),
    }
    if lang == Lang::Js {
        let lock = repo.join(JS_LOCK);
        let text =
            std::fs::read_to_string(&lock).map_err(|_| ScaffoldError::NoRepositoryFile(lock))?;
        let named = format!("\"name\": \"{name}\"");
        files.push((
            "package-lock.json".into(),
            text.replace(&format!("\"name\": \"{JS_LOCK_NAME}\""), &named),
        ));
    }
    let mut written = Vec::new();
    for (relative, text) in files {
        let path = dir.join(&relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io(parent))?;
        }
        std::fs::write(&path, text).map_err(io(&path))?;
        if relative.ends_with(".sh") {
            make_executable(&path).map_err(io(&path))?;
        }
        written.push(path);
    }
    Ok(written)
}

/// Every `.wit` file under `wit` (the repository's), as (path in the
/// project, text).
fn wit_files(wit: &Path) -> Result<Vec<(String, String)>, ScaffoldError> {
    if !wit.join("behaviour.wit").is_file() {
        return Err(ScaffoldError::NoRepositoryFile(wit.join("behaviour.wit")));
    }
    let mut out = Vec::new();
    let mut pending = vec![wit.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let entries = std::fs::read_dir(&dir).map_err(|error| ScaffoldError::Io {
            path: dir.clone(),
            error,
        })?;
        for entry in entries {
            let path = entry
                .map_err(|error| ScaffoldError::Io {
                    path: dir.clone(),
                    error,
                })?
                .path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "wit") {
                let text = std::fs::read_to_string(&path).map_err(|error| ScaffoldError::Io {
                    path: path.clone(),
                    error,
                })?;
                let relative = path.strip_prefix(wit).unwrap_or(&path);
                out.push((format!("wit/{}", relative.display()), text));
            }
        }
    }
    out.sort();
    Ok(out)
}

#[cfg(unix)]
fn make_executable(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
}

#[cfg(not(unix))]
fn make_executable(_path: &Path) -> std::io::Result<()> {
    Ok(())
}

/// `tenure new-plugin NAME [--lang LANG] [--dir DIR]`.
pub fn new_plugin(name: &str, dir: Option<PathBuf>, lang: Lang) -> anyhow::Result<ExitCode> {
    let dir = dir.unwrap_or_else(|| PathBuf::from(name));
    let repo = repository();
    scaffold(name, lang, &dir, &repo)?;
    let (build, wasm) = match lang {
        Lang::Rust => (
            "cargo build --release --target wasm32-wasip2".to_string(),
            format!(
                "target/wasm32-wasip2/release/{}.wasm",
                name.replace('-', "_")
            ),
        ),
        Lang::Python | Lang::Js => ("./build.sh".to_string(), format!("{name}.wasm")),
    };
    let unit = match lang {
        Lang::Rust => "cargo test",
        Lang::Python => "python3 -m unittest (build.sh runs it)",
        Lang::Js => "node --test (build.sh runs it)",
    };
    println!(
        "Wrote the plugin project {name} in {}.\n\n\
         Build it:\n    cd {}\n    {build}\n\n\
         Unit tests:                  {unit}\n\
         Test it in the simulator:    tenure test scenario.toml\n\
         Run it in the demo cluster:  tenure demo --plugin {wasm}\n\n\
         The guides: {}/docs/writing-a-behaviour.md and {}/docs/testing-behaviours.md",
        dir.display(),
        dir.display(),
        repo.display(),
        repo.display()
    );
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests;

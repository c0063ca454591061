//! `tenure new-plugin NAME [--dir DIR]`: writes a ready-to-build behaviour
//! plugin project.
//!
//! The project (templates in `new_plugin/`) is a workspace of its own
//! that depends on this repository's SDK (`sdk/`) and, for its simulator
//! test, on this host, by absolute path: the repository `tenure` was built
//! from. It also gets this repository's `Cargo.lock`, so it builds with
//! the dependency versions Tenure is tested with, without a registry
//! look-up.

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// The project's files: (path in the project, template).
const FILES: [(&str, &str); 5] = [
    ("Cargo.toml", include_str!("new_plugin/Cargo.toml.tmpl")),
    ("src/lib.rs", include_str!("new_plugin/lib.rs.tmpl")),
    (
        "tests/simulator.rs",
        include_str!("new_plugin/simulator.rs.tmpl"),
    ),
    ("README.md", include_str!("new_plugin/README.md.tmpl")),
    (".gitignore", "/target\n"),
];

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

/// Writes the project for plugin `name` into `dir` (which must be absent
/// or empty), against the repository at `repo`. Returns the files written.
pub fn scaffold(name: &str, dir: &Path, repo: &Path) -> Result<Vec<PathBuf>, ScaffoldError> {
    check_name(name)?;
    let sdk = repo.join("sdk");
    if !sdk.join("Cargo.toml").is_file() {
        return Err(ScaffoldError::NoSdk(sdk));
    }
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |error| ScaffoldError::Io { path, error }
    };
    if dir.exists() && std::fs::read_dir(dir).map_err(io(dir))?.next().is_some() {
        return Err(ScaffoldError::NotEmpty(dir.to_path_buf()));
    }
    let slash = |p: PathBuf| p.display().to_string().replace('\\', "/");
    let fill = |template: &str| {
        template
            .replace("{{name}}", name)
            .replace("{{crate}}", &name.replace('-', "_"))
            .replace("{{sdk}}", &slash(sdk.clone()))
            .replace("{{host}}", &slash(repo.join("host")))
            .replace("{{repo}}", &slash(repo.to_path_buf()))
    };
    let mut written = Vec::new();
    let mut files: Vec<(&str, String)> = FILES.iter().map(|(p, t)| (*p, fill(t))).collect();
    if let Ok(lock) = std::fs::read_to_string(repo.join("Cargo.lock")) {
        files.push(("Cargo.lock", lock));
    }
    for (relative, text) in files {
        let path = dir.join(relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io(parent))?;
        }
        std::fs::write(&path, text).map_err(io(&path))?;
        written.push(path);
    }
    Ok(written)
}

/// `tenure new-plugin NAME [--dir DIR]`.
pub fn new_plugin(name: &str, dir: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    let dir = dir.unwrap_or_else(|| PathBuf::from(name));
    let repo = repository();
    scaffold(name, &dir, &repo)?;
    let wasm = format!(
        "target/wasm32-wasip2/release/{}.wasm",
        name.replace('-', "_")
    );
    println!(
        "Wrote the plugin project {name} in {}.\n\n\
         Build it:\n    cd {}\n    cargo build --release --target wasm32-wasip2\n\n\
         Test it in the simulator:  cargo test\n\
         Run it in the demo cluster: tenure demo --plugin {wasm}\n\n\
         It depends on Tenure's SDK at {} by path. \
         The guide: {}/docs/writing-a-behaviour.md",
        dir.display(),
        dir.display(),
        repo.join("sdk").display(),
        repo.display()
    );
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests;

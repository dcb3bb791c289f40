//! `cargo xtask tidy`: the repository's rules, checked (rust-analyzer's "tidy", in small). The
//! same check runs as a test of this crate, so `cargo test --workspace` (CI) enforces it.
//!
//! The rules:
//! - **Dependencies point one way**: `sorted-provenance` (atomic writes, time stamps, the
//!   machine) is the base layer: it depends on no crate of ours, and any crate may use it.
//!   `sorted-nn` and `sorted-kernels` depend on no crate of ours; `sorted-data` on none that knows
//!   about nesting or models (`sorted-nn`, `sorted-zoo`, `sorted-sched`); `sorted-sched` on
//!   `sorted-nn` only; `sorted-zoo` on `sorted-nn`, `sorted-kernels` and `sorted-data` (file
//!   formats such as GGUF); the zoo and the scheduler never on each other; no library on
//!   `sorted-runner`.
//! - **Library crates choose no backend**: a backend crate or feature only as an optional
//!   dependency of a crate without default features.
//! - **Files stay readable**: no `.rs` file of `crates/` or `xtask/` over [`MAX_LINES`] lines,
//!   and no grab-bag module (`utils.rs`, `util.rs`, `helpers.rs`, `misc.rs`).
//! - **Examples stay short**: a file under a crate's `examples/` has fewer than
//!   [`MAX_EXAMPLE_LINES`] lines of code (neither blank nor comment), issue 28's "in under 60
//!   lines each".
//! - **Every crate documents itself**: a `README.md` used as the crate docs, `#![deny(missing_docs)]`.
//! - **Burn stays pinned** at `=0.21.0`; `README.md`, `ARCHITECTURE.md`, `LICENSE` and
//!   `Cargo.lock` exist.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;

/// The longest a source file may be.
pub const MAX_LINES: usize = 1200;

/// An example's lines of code (neither blank nor comment) stay under this.
pub const MAX_EXAMPLE_LINES: usize = 60;

/// The library crates and the crates of ours each may depend on.
const ALLOWED: &[(&str, &[&str])] = &[
    ("sorted-provenance", &[]),
    ("sorted-nn", &[]),
    ("sorted-kernels", &[]),
    ("sorted-data", &["sorted-provenance"]),
    ("sorted-sched", &["sorted-nn", "sorted-provenance"]),
    ("sorted-zoo", &["sorted-nn", "sorted-kernels", "sorted-data", "sorted-provenance"]),
];

/// `cargo xtask tidy` takes no options.
#[derive(Args)]
pub struct TidyArgs {}

/// Runs the check on the workspace and prints every violation.
///
/// # Errors
/// When a rule is broken (the message counts them) or a file cannot be read.
pub fn run(_args: TidyArgs) -> anyhow::Result<()> {
    let violations = check(&crate::workspace_root())?;
    for v in &violations {
        eprintln!("tidy: {v}");
    }
    anyhow::ensure!(violations.is_empty(), "{} tidy rule(s) broken", violations.len());
    println!("tidy: every rule holds");
    Ok(())
}

/// Every violation of the rules in the workspace at `root`, as sentences naming the file.
///
/// # Errors
/// When a manifest or source file cannot be read or parsed.
pub fn check(root: &Path) -> anyhow::Result<Vec<String>> {
    let mut violations = Vec::new();
    for (krate, allowed) in ALLOWED {
        let manifest_path = root.join("crates").join(krate).join("Cargo.toml");
        let text = std::fs::read_to_string(&manifest_path)
            .with_context(|| format!("reading `{}`", manifest_path.display()))?;
        let manifest: toml::Table =
            toml::from_str(&text).with_context(|| format!("parsing `{}`", manifest_path.display()))?;
        let deps = manifest.get("dependencies").and_then(toml::Value::as_table).cloned().unwrap_or_default();
        for name in deps.keys().filter(|name| name.starts_with("sorted-")) {
            if !allowed.contains(&name.as_str()) {
                violations.push(format!(
                    "{}: {krate} depends on {name}, against the direction (allowed: {})",
                    manifest_path.display(),
                    if allowed.is_empty() { "none of ours".to_string() } else { allowed.join(", ") }
                ));
            }
        }
        check_backends(krate, &manifest, &deps, &manifest_path, &mut violations);
        check_crate_docs(&root.join("crates").join(krate), &mut violations);
    }
    check_crate_docs(&root.join("crates/sorted-runner"), &mut violations);
    let mut files = Vec::new();
    for dir in ["crates", "xtask"] {
        rust_files(&root.join(dir), &mut files)?;
    }
    for file in &files {
        let name = file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        if matches!(name.as_str(), "utils.rs" | "util.rs" | "helpers.rs" | "misc.rs") {
            violations.push(format!("{}: a grab-bag module; name files after their concept", file.display()));
        }
        let text = std::fs::read_to_string(file).with_context(|| format!("reading `{}`", file.display()))?;
        let lines = text.lines().count();
        if lines > MAX_LINES {
            violations.push(format!("{}: {lines} lines, more than {MAX_LINES}: split it by concept", file.display()));
        }
        if file.parent().and_then(Path::file_name).is_some_and(|d| d == "examples") {
            let code = text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with("//")).count();
            if code >= MAX_EXAMPLE_LINES {
                violations.push(format!(
                    "{}: an example of {code} lines of code, not under {MAX_EXAMPLE_LINES}",
                    file.display()
                ));
            }
        }
    }
    let workspace = std::fs::read_to_string(root.join("Cargo.toml")).context("reading the workspace Cargo.toml")?;
    if !workspace.contains("burn = { version = \"=0.21.0\"") {
        violations.push("Cargo.toml: burn must stay pinned at =0.21.0".into());
    }
    for file in ["README.md", "ARCHITECTURE.md", "LICENSE", "Cargo.lock"] {
        if !root.join(file).is_file() {
            violations.push(format!("{file} is missing"));
        }
    }
    Ok(violations)
}

/// A backend may be an optional dependency of a library with no default features (a fast path
/// for users of that backend), never a default one.
fn check_backends(krate: &str, manifest: &toml::Table, deps: &toml::Table, path: &Path, violations: &mut Vec<String>) {
    let default_features = manifest
        .get("features")
        .and_then(|f| f.get("default"))
        .and_then(toml::Value::as_array)
        .is_some_and(|d| !d.is_empty());
    for (name, spec) in deps {
        let backend_crate = matches!(name.as_str(), "burn-flex" | "burn-ndarray" | "burn-wgpu" | "burn-cuda");
        let optional = spec.get("optional").and_then(toml::Value::as_bool).unwrap_or(false);
        if backend_crate && (!optional || default_features) {
            violations.push(format!(
                "{}: {krate} depends on the backend {name} by default: only the runner and the benches choose backends",
                path.display()
            ));
        }
        let features = spec.get("features").and_then(toml::Value::as_array).cloned().unwrap_or_default();
        for feature in features.iter().filter_map(toml::Value::as_str) {
            if matches!(feature, "flex" | "ndarray" | "wgpu" | "cuda") {
                violations.push(format!(
                    "{}: {krate} enables the `{feature}` backend of {name}: only the runner and the benches choose backends",
                    path.display()
                ));
            }
        }
    }
}

fn check_crate_docs(dir: &Path, violations: &mut Vec<String>) {
    if !dir.join("README.md").is_file() {
        violations.push(format!("{}: no README.md", dir.display()));
    }
    let lib = std::fs::read_to_string(dir.join("src/lib.rs")).unwrap_or_default();
    if !lib.contains("#![doc = include_str!(\"../README.md\")]") {
        violations.push(format!("{}/src/lib.rs: the README must be the crate docs", dir.display()));
    }
    if !lib.contains("#![deny(missing_docs)]") {
        violations.push(format!("{}/src/lib.rs: must deny missing docs", dir.display()));
    }
}

/// Every `.rs` file under `dir`, skipping build outputs.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("listing `{}`", dir.display()))? {
        let path = entry?.path();
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        if path.is_dir() {
            if name != "target" && !name.starts_with('.') {
                rust_files(&path, out)?;
            }
        } else if name.ends_with(".rs") {
            out.push(path);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_repository_keeps_its_rules() {
        let violations = check(&crate::workspace_root()).unwrap();
        assert!(violations.is_empty(), "tidy:\n{}", violations.join("\n"));
    }

    /// A copy of the workspace's manifests and lib files with one wrong dependency added.
    #[test]
    fn issue_28_a_dependency_against_the_direction_is_caught() {
        let root = crate::workspace_root();
        let copy = tempfile::tempdir().unwrap();
        for file in ["Cargo.toml", "README.md", "ARCHITECTURE.md", "LICENSE", "Cargo.lock"] {
            std::fs::copy(root.join(file), copy.path().join(file)).unwrap();
        }
        std::fs::create_dir_all(copy.path().join("xtask")).unwrap();
        for (krate, _) in ALLOWED.iter().chain([&("sorted-runner", &[][..])]) {
            let dir = copy.path().join("crates").join(krate);
            std::fs::create_dir_all(dir.join("src")).unwrap();
            for file in ["Cargo.toml", "README.md", "src/lib.rs"] {
                std::fs::copy(root.join("crates").join(krate).join(file), dir.join(file)).unwrap();
            }
        }
        assert!(check(copy.path()).unwrap().is_empty());
        let manifest = copy.path().join("crates/sorted-zoo/Cargo.toml");
        let text = std::fs::read_to_string(&manifest).unwrap();
        let wrong = text.replacen("[dependencies]\n", "[dependencies]\nsorted-sched = { workspace = true }\n", 1);
        std::fs::write(&manifest, wrong).unwrap();
        std::fs::write(copy.path().join("crates/sorted-nn/src/utils.rs"), "//! x\n".repeat(MAX_LINES + 1)).unwrap();
        let examples = copy.path().join("crates/sorted-runner/examples");
        std::fs::create_dir_all(&examples).unwrap();
        let long = format!("//! An example.\n\n{}", "let x = 1; // code\n".repeat(MAX_EXAMPLE_LINES));
        std::fs::write(examples.join("long.rs"), &long).unwrap();
        std::fs::write(examples.join("short.rs"), long.replacen("let x = 1;", "// x", 1)).unwrap();
        let violations = check(copy.path()).unwrap();
        assert_eq!(violations.len(), 4, "{violations:#?}");
        assert!(violations.iter().any(|v| v.contains("long.rs: an example of 60 lines of code")), "{violations:#?}");
        assert!(violations[0].contains("sorted-zoo depends on sorted-sched, against the direction"), "{violations:#?}");
        assert!(violations.iter().any(|v| v.contains("utils.rs: a grab-bag")), "{violations:#?}");
        assert!(violations.iter().any(|v| v.contains("more than 1200")), "{violations:#?}");
    }
}

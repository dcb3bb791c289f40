//! Repository rules, checked as a test (rust-analyzer's "tidy" idea, in small).

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

/// Every file under `dir` (recursively) whose extension is `ext`, appended to `out`.
pub(crate) fn files_with_extension(dir: &Path, ext: &str, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files_with_extension(&path, ext, out);
        } else if path.extension().is_some_and(|e| e == ext) {
            out.push(path);
        }
    }
}

#[test]
fn every_crate_has_a_readme_used_as_its_crate_docs() {
    for entry in std::fs::read_dir(root().join("crates")).unwrap() {
        let dir = entry.unwrap().path();
        let readme = dir.join("README.md");
        assert!(readme.is_file(), "{} has no README.md", dir.display());
        let lib = std::fs::read_to_string(dir.join("src/lib.rs")).unwrap();
        assert!(
            lib.contains("#![doc = include_str!(\"../README.md\")]"),
            "{}: lib.rs must use the README as crate docs",
            dir.display()
        );
        assert!(lib.contains("#![deny(missing_docs)]"), "{}: lib.rs must deny missing docs", dir.display());
    }
    for file in ["README.md", "ARCHITECTURE.md", "LICENSE", "Cargo.lock"] {
        assert!(root().join(file).is_file(), "missing {file}");
    }
}

#[test]
fn no_grab_bag_modules() {
    let mut files = Vec::new();
    files_with_extension(&root().join("crates"), "rs", &mut files);
    for file in files {
        let name = file.file_name().unwrap().to_string_lossy();
        assert!(
            !matches!(name.as_ref(), "utils.rs" | "util.rs" | "helpers.rs" | "misc.rs"),
            "{}: name files after their concept",
            file.display()
        );
    }
}

#[test]
fn library_crates_enable_no_backend() {
    for krate in ["sorted-nn", "sorted-sched", "sorted-zoo", "sorted-data"] {
        let manifest = std::fs::read_to_string(root().join("crates").join(krate).join("Cargo.toml")).unwrap();
        let deps = manifest.split("[dependencies]").nth(1).unwrap().split("\n[").next().unwrap();
        // A backend crate may appear only as an optional dependency (a fast path for when the
        // user's backend is that one, like sorted-zoo's `flex` feature) of a crate with no
        // default features.
        let default_features = manifest.lines().find(|l| l.starts_with("default =")).unwrap_or("");
        for backend in ["flex", "ndarray", "wgpu", "cuda", "burn-flex", "burn-ndarray"] {
            assert!(
                !deps.contains(&format!("\"{backend}\"")),
                "{krate} enables the `{backend}` backend in [dependencies]: only the runner and the benches choose backends"
            );
            for line in deps.lines().filter(|l| l.starts_with(&format!("{backend} ="))) {
                assert!(
                    line.contains("optional = true") && matches!(default_features, "" | "default = []"),
                    "{krate} depends on `{backend}` by default ({line}): only the runner and the benches choose backends"
                );
            }
        }
    }
}

#[test]
fn burn_is_pinned_exactly() {
    let manifest = std::fs::read_to_string(root().join("Cargo.toml")).unwrap();
    assert!(manifest.contains("burn = { version = \"=0.21.0\""), "burn must stay pinned at =0.21.0");
}

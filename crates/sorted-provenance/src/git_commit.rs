//! The commit a binary runs from.

/// The commit of the working tree the binary runs in. Outside a git checkout (a binary carried
/// to another machine), the commit it was built from, if the build set `SORTED_BUILD_COMMIT`
/// (`SORTED_BUILD_COMMIT=$(git rev-parse --short=12 HEAD) cargo build --release ...`); else
/// `unknown`.
pub fn git_commit() -> String {
    let tree = std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    commit_or_build(tree, option_env!("SORTED_BUILD_COMMIT"))
}

/// The working tree's commit, else the build's (marked as such), else `unknown`.
fn commit_or_build(tree: Option<String>, build: Option<&str>) -> String {
    match (tree, build.map(str::trim)) {
        (Some(tree), _) if !tree.is_empty() => tree,
        (_, Some(build)) if !build.is_empty() => format!("{build} (the binary's build; no git checkout here)"),
        _ => "unknown".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_commit_falls_back_to_the_build_commit_then_unknown() {
        assert_eq!(commit_or_build(Some("abc123".into()), Some("def456")), "abc123");
        assert_eq!(commit_or_build(None, Some("def456")), "def456 (the binary's build; no git checkout here)");
        assert_eq!(commit_or_build(Some(String::new()), Some(" ")), "unknown");
        assert_eq!(commit_or_build(None, None), "unknown");
    }
}

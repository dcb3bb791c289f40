//! Provenance every report carries and every command shares: the run context (device, command
//! line, commit), the machine, time stamps and run folder names, atomic file writes.

use std::path::{Path, PathBuf};

use anyhow::Context;
use sorted_sched::write_atomic;

/// Context shared by the commands.
#[derive(Clone, Debug)]
pub struct RunContext {
    /// The device's name for reports.
    pub device_name: String,
    /// No progress bars or tables.
    pub quiet: bool,
    /// The command line, for reports.
    pub command: String,
    /// The commit the binary was started from (read once at start: a long run's reports must
    /// not name a commit made while it ran).
    pub commit: String,
}

/// The UTC time as `YYYYMMDD-HHMMSS`, for run folder names.
pub fn utc_stamp() -> String {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (days, rest) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}{m:02}{d:02}-{:02}{:02}{:02}", rest / 3600, rest % 3600 / 60, rest % 60)
}

/// A new folder `runs/<name>-<UTC time>` (with `-1`, `-2`, ... if it exists).
pub fn new_run_dir(name: &str) -> PathBuf {
    let base = PathBuf::from("runs").join(format!("{name}-{}", utc_stamp()));
    let mut dir = base.clone();
    let mut i = 1;
    while dir.exists() {
        dir = PathBuf::from(format!("{}-{i}", base.display()));
        i += 1;
    }
    dir
}

/// Writes one file atomically, naming it on failure.
///
/// # Errors
/// The I/O error, with the path.
pub fn write_file(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    write_atomic(path, bytes).with_context(|| format!("writing `{}`", path.display()))
}

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

/// `args` as one line a POSIX shell runs as the same command: arguments of only plain characters
/// as they are, others single-quoted, and those with a line break, another control character or a
/// `|` in `$'...'` with escapes, so the line also fits in one Markdown table cell (a multi-line
/// `--prompt` would otherwise break a report's table).
pub fn command_line<I: IntoIterator<Item = String>>(args: I) -> String {
    args.into_iter().map(|a| shell_quote(&a)).collect::<Vec<_>>().join(" ")
}

fn shell_quote(arg: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "_-./=:,@%+".contains(c);
    if !arg.is_empty() && arg.chars().all(plain) {
        return arg.to_string();
    }
    if !arg.chars().any(|c| c.is_control() || c == '|') {
        return format!("'{}'", arg.replace('\'', r"'\''"));
    }
    let mut out = String::from("$'");
    for c in arg.chars() {
        match c {
            '\n' => out.push_str(r"\n"),
            '\t' => out.push_str(r"\t"),
            '\r' => out.push_str(r"\r"),
            '\\' => out.push_str(r"\\"),
            '\'' => out.push_str(r"\'"),
            '|' => out.push_str(r"\x7c"),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// The CPU model and logical core count.
pub fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_string());
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    format!("{cpu}, {cores} logical cores")
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

    #[test]
    fn the_command_line_quotes_what_a_shell_or_a_table_would_split() {
        let line = |args: &[&str]| command_line(args.iter().map(|a| a.to_string()));
        assert_eq!(
            line(&["sorted-runner", "soft", "--lr", "2e-4", "--out=runs/a"]),
            "sorted-runner soft --lr 2e-4 --out=runs/a"
        );
        assert_eq!(line(&["--prompt", "What is it?", ""]), "--prompt 'What is it?' ''");
        assert_eq!(line(&["--prompt", "don't"]), r"--prompt 'don'\''t'");
        assert_eq!(
            line(&["--prompt", "LEONTES.\n  I say\t'no' | \\ \u{1}"]),
            r"--prompt $'LEONTES.\n  I say\t\'no\' \x7c \\ \u0001'"
        );
        assert!(!line(&["a\nb\r"]).contains(['\n', '\r']));
    }
}

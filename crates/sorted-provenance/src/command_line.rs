//! A command line as one shell-safe, table-safe line.

/// `args` as one line a POSIX shell runs as the same command: arguments of only plain characters
/// as they are, others single-quoted, and those with a line break, another control character or a
/// `|` in `$'...'` with escapes, so the line also fits in one Markdown table cell (a multi-line
/// `--prompt` would otherwise break a report's table).
pub fn command_line<I: IntoIterator<Item = String>>(args: I) -> String {
    args.into_iter().map(|a| shell_quote(&a)).collect::<Vec<_>>().join(" ")
}

/// One argument as [`command_line`] writes it.
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

#[cfg(test)]
mod tests {
    use super::*;

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

//! The CSV reader and writer: RFC 4180 quoting, line numbers, and errors that name file and line.

use sorted_data::{DataError, csv};

fn fields(text: &str) -> Vec<Vec<String>> {
    csv::parse(text, "t.csv").unwrap().into_iter().map(|record| record.fields).collect()
}

#[test]
fn quoted_fields_hold_commas_quotes_and_line_breaks() {
    let text = "a,b,c\n\"x, y\",\"say \"\"hi\"\"\",\"two\nlines\"\n\"\",,\"\"\"\"\n";
    assert_eq!(fields(text), [vec!["a", "b", "c"], vec!["x, y", "say \"hi\"", "two\nlines"], vec!["", "", "\""]]);
}

#[test]
fn records_carry_the_line_they_start_on() {
    let text = "h1,h2\n1,\"a\nb\nc\"\n\n2,x\n3,\"\r\n\"\n4,y";
    let records = csv::parse(text, "t.csv").unwrap();
    let lines: Vec<usize> = records.iter().map(|record| record.line).collect();
    // The empty line 5 is skipped; the last record has no line end.
    assert_eq!(lines, [1, 2, 6, 7, 9]);
    assert_eq!(records[2].fields, ["2", "x"]);
    assert_eq!(records[3].fields, ["3", "\r\n"]);
    assert_eq!(records[4].fields, ["4", "y"]);
}

#[test]
fn crlf_line_ends_and_a_byte_order_mark_read_like_lf() {
    let lf = "a,b\n1,\"q\"\n2,\n";
    let crlf = "\u{FEFF}a,b\r\n1,\"q\"\r\n2,\r\n";
    assert_eq!(csv::parse(lf, "lf.csv").unwrap(), csv::parse(crlf, "crlf.csv").unwrap());
    assert_eq!(fields(lf), [vec!["a", "b"], vec!["1", "q"], vec!["2", ""]]);
    assert!(fields("").is_empty() && fields("\n\r\n").is_empty());
}

#[test]
fn an_unterminated_quote_names_the_line_it_opens_on() {
    let err = csv::parse("a,b\n1,2\n3,\"never\nclosed,\n\n", "reviews.csv").unwrap_err();
    assert!(matches!(&err, DataError::UnterminatedQuote { line: 3, .. }), "{err:?}");
    assert!(err.to_string().starts_with("reviews.csv:3: unterminated quoted field"), "{err}");
}

#[test]
fn stray_quotes_and_carriage_returns_are_syntax_errors_with_the_line() {
    let cases = [
        ("a,b\n1,5\" tall\n", 2, "a quote inside an unquoted field"),
        ("a,b\n\"x\"y,2\n", 2, "`y` after the closing quote"),
        ("a,b\n\"multi\nline\" ,2\n", 3, "` ` after the closing quote"),
        ("a,b\r1,2\n", 1, "a lone `\\r`"),
    ];
    for (text, line, got) in cases {
        let err = csv::parse(text, "bad.csv").unwrap_err();
        match &err {
            DataError::CsvSyntax { line: l, got: g, .. } => assert_eq!((*l, g.as_str()), (line, got), "{text:?}"),
            other => panic!("{text:?}: {other:?}"),
        }
        assert!(err.to_string().starts_with(&format!("bad.csv:{line}: bad CSV: expected ")), "{err}");
    }
}

#[test]
fn invalid_utf8_names_line_and_offset() {
    let err = csv::parse_bytes(b"a,b\n1,caf\xe9\n", "latin1.csv").unwrap_err();
    assert!(matches!(&err, DataError::Utf8 { line: 2, offset: 9, .. }), "{err:?}");
    assert!(err.to_string().starts_with("latin1.csv:2: not valid UTF-8"), "{err}");
}

#[test]
fn writing_quotes_only_where_needed_and_round_trips() {
    let records: [&[&str]; 5] =
        [&["plain", "with space", ""], &["a,b", "say \"hi\"", "two\nlines"], &["cr\rlf", "ok", "x"], &[""], &["", ""]];
    let mut out = String::new();
    for record in records {
        csv::write_record(&mut out, record);
    }
    assert_eq!(out, "plain,with space,\n\"a,b\",\"say \"\"hi\"\"\",\"two\nlines\"\n\"cr\rlf\",ok,x\n\"\"\n,\n");
    let back = csv::parse(&out, "out.csv").unwrap();
    let back: Vec<Vec<&str>> = back.iter().map(|r| r.fields.iter().map(String::as_str).collect()).collect();
    assert_eq!(back, records.map(<[&str]>::to_vec));
}

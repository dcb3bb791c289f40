//! A small CSV reader and writer (RFC 4180): what the Rotten Tomatoes corpus needs, with errors
//! that name the file and line.
//!
//! Fields are separated by commas and records by `\n` or `\r\n`. A field may be quoted with
//! `"`; inside quotes, commas and line breaks are data and `""` stands for one `"`. A quote may
//! not appear inside an unquoted field, and a closing quote must be followed by a comma or the
//! end of the record: both are errors rather than guesses. Empty lines between records are
//! skipped. A leading byte-order mark is ignored.
//!
//! ```
//! use sorted_data::csv;
//!
//! let text = "category,text\nfresh,\"Funny, \"\"warm\"\"\nand long.\"\r\nrotten,Dull.\n";
//! let records = csv::parse(text, "reviews.csv")?;
//! assert_eq!(records.len(), 3);
//! assert_eq!(records[1].fields, ["fresh", "Funny, \"warm\"\nand long."]);
//! assert_eq!((records[1].line, records[2].line), (2, 4));
//!
//! // Writing quotes only the fields that need it, and reads back the same.
//! let mut out = String::new();
//! for record in &records {
//!     csv::write_record(&mut out, &record.fields);
//! }
//! assert_eq!(out, "category,text\nfresh,\"Funny, \"\"warm\"\"\nand long.\"\nrotten,Dull.\n");
//! # Ok::<(), sorted_data::DataError>(())
//! ```

use std::path::Path;

use crate::DataError;

/// One record of a CSV file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CsvRecord {
    /// The line (counted from 1) the record starts on; a quoted field may make it span several.
    pub line: usize,
    /// The fields, unquoted.
    pub fields: Vec<String>,
}

/// Parses CSV bytes, which must be UTF-8; `name` names the file in errors.
///
/// # Errors
/// [`DataError::Utf8`] if the bytes are not UTF-8, and every error of [`parse`].
pub fn parse_bytes(bytes: &[u8], name: impl AsRef<Path>) -> Result<Vec<CsvRecord>, DataError> {
    let path = name.as_ref();
    parse(utf8(bytes, path)?, path)
}

/// Parses CSV text into its records, the header (if any) included; `name` names the file in
/// errors.
///
/// # Errors
/// - [`DataError::UnterminatedQuote`] if the text ends inside a quoted field, naming the line
///   of its opening quote;
/// - [`DataError::CsvSyntax`] for a quote inside an unquoted field, a character between a
///   closing quote and the next comma or line end, or a carriage return not followed by `\n`.
pub fn parse(text: &str, name: impl AsRef<Path>) -> Result<Vec<CsvRecord>, DataError> {
    let path = name.as_ref();
    let text = text.strip_prefix('\u{FEFF}').unwrap_or(text);
    let mut reader = Reader { text, bytes: text.as_bytes(), at: 0, line: 1, path };
    let mut records = Vec::new();
    while reader.at < reader.bytes.len() {
        if reader.line_end() {
            continue; // an empty line
        }
        let line = reader.line;
        let mut fields = Vec::new();
        loop {
            fields.push(reader.field()?);
            match reader.bytes.get(reader.at) {
                Some(b',') => reader.at += 1,
                _ => {
                    // `field` stops only at a comma, a line end or the end of the text.
                    reader.line_end();
                    break;
                }
            }
        }
        records.push(CsvRecord { line, fields });
    }
    Ok(records)
}

/// Appends one record to `out`, ending it with `\n`. A field is quoted only if it holds a
/// comma, a quote or a line break (Python's `csv.QUOTE_MINIMAL`), quotes doubled; a record of
/// one empty field is written `""`, so that it is not an empty line.
pub fn write_record<S: AsRef<str>>(out: &mut String, fields: &[S]) {
    for (k, field) in fields.iter().enumerate() {
        let field = field.as_ref();
        if k > 0 {
            out.push(',');
        }
        if field.contains([',', '"', '\n', '\r']) || (fields.len() == 1 && field.is_empty()) {
            out.push('"');
            out.push_str(&field.replace('"', "\"\""));
            out.push('"');
        } else {
            out.push_str(field);
        }
    }
    out.push('\n');
}

/// `bytes` as UTF-8 text, or an error naming the file, the line and the offset of the first
/// invalid byte.
pub(crate) fn utf8<'a>(bytes: &'a [u8], path: &Path) -> Result<&'a str, DataError> {
    std::str::from_utf8(bytes).map_err(|error| {
        let offset = error.valid_up_to();
        let line = 1 + bytes[..offset].iter().filter(|&&b| b == b'\n').count();
        DataError::Utf8 { path: path.to_path_buf(), line, offset }
    })
}

/// The parser's position in the text.
struct Reader<'a> {
    text: &'a str,
    /// `text` as bytes: every delimiter is ASCII, so byte offsets next to one are char
    /// boundaries.
    bytes: &'a [u8],
    at: usize,
    /// The line of `at`, counted from 1.
    line: usize,
    path: &'a Path,
}

impl Reader<'_> {
    /// Consumes a line end (`\n` or `\r\n`) at the position, if there is one.
    fn line_end(&mut self) -> bool {
        let len = match self.bytes[self.at..] {
            [b'\n', ..] => 1,
            [b'\r', b'\n', ..] => 2,
            _ => return false,
        };
        self.at += len;
        self.line += 1;
        true
    }

    /// Reads one field, stopping before the comma or line end after it.
    fn field(&mut self) -> Result<String, DataError> {
        if self.bytes.get(self.at) == Some(&b'"') {
            return self.quoted_field();
        }
        let start = self.at;
        while let Some(&b) = self.bytes.get(self.at) {
            match b {
                b',' | b'\n' => break,
                b'\r' if self.bytes.get(self.at + 1) == Some(&b'\n') => break,
                b'\r' => {
                    let expected = "`\\n` after a carriage return (line ends are `\\n` or `\\r\\n`)";
                    return Err(self.syntax(expected, "a lone `\\r`".to_owned()));
                }
                b'"' => {
                    let expected =
                        "a quote only at the start of a field (quote the whole field and double inner quotes)";
                    return Err(self.syntax(expected, "a quote inside an unquoted field".to_owned()));
                }
                _ => self.at += 1,
            }
        }
        Ok(self.text[start..self.at].to_owned())
    }

    /// Reads a quoted field, the position at its opening quote.
    fn quoted_field(&mut self) -> Result<String, DataError> {
        let open_line = self.line;
        self.at += 1;
        let mut field = String::new();
        loop {
            let Some(quote) = self.bytes[self.at..].iter().position(|&b| b == b'"') else {
                return Err(DataError::UnterminatedQuote { path: self.path.to_path_buf(), line: open_line });
            };
            let chunk = &self.text[self.at..self.at + quote];
            self.line += chunk.bytes().filter(|&b| b == b'\n').count();
            field.push_str(chunk);
            self.at += quote + 1;
            if self.bytes.get(self.at) == Some(&b'"') {
                field.push('"');
                self.at += 1;
                continue;
            }
            return match self.bytes[self.at..] {
                [] | [b',', ..] | [b'\n', ..] | [b'\r', b'\n', ..] => Ok(field),
                _ => {
                    let next = self.text[self.at..].chars().next().unwrap_or_default();
                    let got = format!("`{}` after the closing quote", next.escape_debug());
                    Err(self.syntax("a comma or the end of the line after a closing quote", got))
                }
            };
        }
    }

    /// A syntax error on the current line: what was `expected`, and what the text holds.
    fn syntax(&self, expected: &'static str, got: String) -> DataError {
        DataError::CsvSyntax { path: self.path.to_path_buf(), line: self.line, expected, got }
    }
}

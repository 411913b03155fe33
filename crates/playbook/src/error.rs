//! Load-time errors: a playbook is rejected with the list of every problem found.

use std::fmt;

/// One problem in a playbook document.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PlaybookError {
    /// Where in the document, e.g. `actions[1].depends_on[0]` or `triggers[0].if`; empty for the whole document.
    pub path: String,
    /// 1-based line in the YAML source, when known.
    pub line: Option<usize>,
    /// What is wrong, in one sentence.
    pub message: String,
}

impl PlaybookError {
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            line: None,
            message: message.into(),
        }
    }

    pub fn at_line(mut self, line: Option<usize>) -> Self {
        self.line = line;
        self
    }
}

impl fmt::Display for PlaybookError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(line) = self.line {
            write!(f, "{line}: ")?;
        }
        if self.path.is_empty() {
            write!(f, "{}", self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// Every problem found while loading a playbook (never empty when returned as an error).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct PlaybookErrors(pub Vec<PlaybookError>);

impl PlaybookErrors {
    pub fn single(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self(vec![PlaybookError::new(path, message)])
    }

    pub fn errors(&self) -> &[PlaybookError] {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn push(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.0.push(PlaybookError::new(path, message));
    }

    /// `FILE:line: path: message`, one problem per line, as `bulwark playbook validate FILE` prints them.
    pub fn render_for_file(&self, file: &str) -> String {
        let mut out = String::new();
        for e in &self.0 {
            out.push_str(file);
            out.push(':');
            if let Some(line) = e.line {
                out.push_str(&line.to_string());
                out.push(':');
            }
            out.push(' ');
            if !e.path.is_empty() {
                out.push_str(&e.path);
                out.push_str(": ");
            }
            out.push_str(&e.message);
            out.push('\n');
        }
        out
    }
}

impl fmt::Display for PlaybookErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for PlaybookErrors {}

impl IntoIterator for PlaybookErrors {
    type Item = PlaybookError;
    type IntoIter = std::vec::IntoIter<PlaybookError>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

/// Levenshtein distance, for "did you mean" suggestions.
pub(crate) fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.chars().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

/// The closest candidate within a plausible distance, for "did you mean `x`?".
pub(crate) fn closest<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let limit = (word.chars().count() / 2).max(2);
    candidates
        .into_iter()
        .map(|c| (edit_distance(&word.to_lowercase(), &c.to_lowercase()), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, c)| (*d, *c))
        .map(|(_, c)| c)
}

pub(crate) fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> String {
    match closest(word, candidates) {
        Some(c) => format!(" (did you mean `{c}`?)"),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_for_file() {
        let mut errs = PlaybookErrors::default();
        errs.0.push(
            PlaybookError::new("actions[1].depends_on[0]", "unknown ref `tga`").at_line(Some(12)),
        );
        errs.push("", "empty document");
        assert_eq!(
            errs.render_for_file("pb.yaml"),
            "pb.yaml:12: actions[1].depends_on[0]: unknown ref `tga`\npb.yaml: empty document\n"
        );
        assert_eq!(
            errs.to_string(),
            "12: actions[1].depends_on[0]: unknown ref `tga`\nempty document"
        );
    }

    #[test]
    fn suggestions() {
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(
            closest("alert.updte", ["alert.update", "alert.comment"]),
            Some("alert.update")
        );
        assert_eq!(closest("zzzzzz", ["alert.update"]), None);
    }
}

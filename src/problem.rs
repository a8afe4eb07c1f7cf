//! One thing wrong with a config, where (the field's path) and what (with the fix). A leaf
//! module: the config, the check kinds and the other sections' own configs all report with it.

use std::fmt;

/// One thing wrong with a config: where (field path) and what, with the fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// `services[0].checks[2].spec.url`; empty for the document as a whole.
    pub path: String,
    pub message: String,
}

impl Problem {
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Problem {
        Problem {
            path: path.into(),
            message: message.into(),
        }
    }
    /// The same problem one level down: `spec` + `url` -> `spec.url`.
    pub fn under(mut self, prefix: &str) -> Problem {
        self.path = join_path(prefix, &self.path);
        self
    }
}

fn join_path(prefix: &str, rest: &str) -> String {
    match (prefix.is_empty(), rest.is_empty()) {
        (true, _) => rest.to_string(),
        (_, true) => prefix.to_string(),
        _ if rest.starts_with('[') => format!("{prefix}{rest}"),
        _ => format!("{prefix}.{rest}"),
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}", self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

//! One thing wrong with a config, where (the field's path, and its line and column in the
//! file when known) and what (with the fix). A leaf module: the config, the check kinds and
//! the other sections' own configs all report with it, by path only; the position is added
//! afterwards, for every problem alike, by looking the path up in the document
//! ([`crate::config::position`]).

use std::fmt;

/// A place in a config file: 1-based line and column (in characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Position {
    pub line: u64,
    pub column: u64,
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}, column {}", self.line, self.column)
    }
}

/// One thing wrong with a config: where (field path, position) and what, with the fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// `services[0].checks[2].spec.url`; empty for the document as a whole (and for a
    /// syntax error, which belongs to no field).
    pub path: String,
    pub message: String,
    /// Where in the file: the field's value, or the map a missing field belongs in.
    pub at: Option<Position>,
}

impl Problem {
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Problem {
        Problem {
            path: path.into(),
            message: message.into(),
            at: None,
        }
    }
    /// The same problem one level down: `spec` + `url` -> `spec.url`.
    pub fn under(mut self, prefix: &str) -> Problem {
        self.path = join_path(prefix, &self.path);
        self
    }
    /// The same problem at `at` in the file.
    pub fn at(mut self, at: Option<Position>) -> Problem {
        self.at = at;
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

/// `path (line 18, column 11): message`; the parts that are unknown are left out.
impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.path.is_empty(), self.at) {
            (true, None) => write!(f, "{}", self.message),
            (true, Some(at)) => write!(f, "{at}: {}", self.message),
            (false, None) => write!(f, "{}: {}", self.path, self.message),
            (false, Some(at)) => write!(f, "{} ({at}): {}", self.path, self.message),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_leaves_out_what_is_unknown() {
        let at = Some(Position {
            line: 18,
            column: 11,
        });
        let p = Problem::new("services[0].rise", "must be at least 1");
        assert_eq!(p.to_string(), "services[0].rise: must be at least 1");
        assert_eq!(
            p.clone().at(at).to_string(),
            "services[0].rise (line 18, column 11): must be at least 1"
        );
        let syntax = Problem::new("", "a `[` is not closed").at(at);
        assert_eq!(
            syntax.to_string(),
            "line 18, column 11: a `[` is not closed"
        );
        assert_eq!(Problem::new("", "x").to_string(), "x");
        assert_eq!(
            Problem::new("url", "bad")
                .under("spec")
                .under("checks[0]")
                .path,
            "checks[0].spec.url"
        );
    }
}

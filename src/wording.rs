//! Words shared by every message anycastd writes: a value quoted, a "did you mean", an
//! error with its causes on one line, a time in RFC 3339. A leaf module: messages are made
//! everywhere from these, and they import nothing of the crate.

use std::time::SystemTime;

/// A value as messages quote it: in backticks, control characters escaped, at most 60
/// characters.
pub fn quote(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars().take(60) {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    if s.chars().nth(60).is_some() {
        out.push('…');
    }
    format!("`{out}`")
}

/// The candidate closest to `word`, if it is close enough to be a typo of it (a third of
/// its letters wrong at most, transpositions counting once).
pub fn did_you_mean<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let w = word.to_lowercase();
    candidates
        .iter()
        .filter(|c| **c != word)
        .map(|c| (strsim::damerau_levenshtein(&w, &c.to_lowercase()), *c))
        .filter(|(d, c)| *d <= (c.chars().count().max(w.chars().count()) / 3).max(1))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// ` (did you mean `x`?)` or nothing.
pub fn suggestion(word: &str, candidates: &[&str]) -> String {
    did_you_mean(word, candidates)
        .map(|c| format!(" (did you mean `{c}`?)"))
        .unwrap_or_default()
}

/// An error and its causes on one line (`a: b: c`), skipping causes that repeat what is
/// already said: the form operators read in logs and check failures.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let m = c.to_string();
        if !s.contains(&m) {
            s.push_str(": ");
            s.push_str(&m);
        }
        cur = c.source();
    }
    s
}

/// A time as logs and status show it: RFC 3339, UTC, milliseconds.
pub fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typos_get_a_suggestion() {
        let keys = ["url", "method", "timeout", "tries"];
        assert_eq!(did_you_mean("timout", &keys), Some("timeout"));
        assert_eq!(did_you_mean("Timeout", &keys), Some("timeout"));
        assert_eq!(did_you_mean("mehtod", &keys), Some("method"));
        assert_eq!(did_you_mean("colour", &keys), None);
        assert_eq!(did_you_mean("ur", &keys), Some("url"));
        assert_eq!(did_you_mean("x", &keys), None);
    }

    #[test]
    fn quoting_clips_and_escapes() {
        assert_eq!(quote("abc"), "`abc`");
        assert_eq!(quote("a\tb"), "`a\\tb`");
        assert_eq!(quote(&"x".repeat(100)), format!("`{}…`", "x".repeat(60)));
        assert_eq!(quote("é"), "`é`");
    }
}

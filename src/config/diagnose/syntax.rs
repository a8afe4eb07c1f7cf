//! Syntax errors in the project's words: YAML's by the parser's error kind (a tab, an
//! indentation that does not fit, a bracket or quote not closed, with where it opens),
//! serde_json's by its fixed messages.

use serde_saphyr::granit_parser::ErrorKind as ScanKind;

use crate::problem::{Position, Problem};

/// A YAML syntax error in the project's words.
pub(super) fn syntax_problem(kind: &ScanKind, at: Option<Position>, text: &str) -> Problem {
    use ScanKind as K;
    let unclosed = || at.and_then(|a| unclosed_bracket(text, a));
    let msg = match kind {
        K::TabNotAllowed
        | K::TabInBlockIndentation
        | K::TabInIndentation
        | K::TabInPlainScalar
        | K::TabAtBlockScalarStart => {
            let tab = at.and_then(|a| first_indenting_tab(text, a.line)).or(at);
            return Problem::new(
                "",
                "a tab indents this line: YAML is indented with spaces only; replace the tab with spaces",
            )
            .at(tab);
        }
        K::ExpectedBlockSequenceEntry
        | K::ExpectedBlockMappingKey
        | K::InvalidIndentation
        | K::BlockSequenceEntryNotAllowed
        | K::InvalidFlowScalarIndent
        | K::InvalidQuotedScalarIndent
        | K::InvalidBlockScalarIndent
        | K::SimpleKeyExpected
        | K::InvalidSimpleKey => {
            "this line is indented differently from the lines above it: the keys of one map start in the same column, and so do the `-` of one list".to_string()
        }
        K::MappingValueNotAllowed
        | K::MappingKeyNotAllowed
        | K::InvalidColonPlacement
        | K::InvalidMappingValueWhitespace
        | K::FlowMappingValueAdjacentCollection => match unclosed() {
            Some((c, p)) => not_closed(c, p),
            None => "a `:` here makes a key where none can be: indent this line like the other keys of its map, or quote a value that contains `: `".to_string(),
        },
        K::ExpectedFlowMappingSeparator
        | K::ExpectedFlowSequenceSeparator
        | K::UnclosedFlowCollection { .. }
        | K::UnexpectedEofFlowSequence
        | K::UnexpectedEofFlowMapping
        | K::UnexpectedEofImplicitFlowMapping
        | K::BlockEntryInFlowCollection => match unclosed() {
            Some((c, p)) => not_closed(c, p),
            None => "a `,` is missing between two items of a [list] or {map}, or a bracket is not closed".to_string(),
        },
        K::MismatchedFlowCollectionEnd { open, close } => {
            format!("a `{open}` is closed by `{close}`: close a [list] with `]` and a {{map}} with `}}`")
        }
        K::MisplacedFlowCollectionEnd => {
            "this closing bracket closes nothing: remove it, or add the `[` or `{` it closes".to_string()
        }
        K::UnclosedQuotedScalar | K::DocumentIndicatorInQuotedScalar => {
            "a quoted value is not closed: end it with the quote it starts with".to_string()
        }
        K::InvalidTrailingSingleQuotedScalar | K::InvalidTrailingDoubleQuotedScalar => {
            "text follows a quoted value: put all of the value inside the quotes".to_string()
        }
        K::UnknownQuotedScalarEscape
        | K::InvalidQuotedScalarHexEscape
        | K::InvalidLowSurrogateHexEscape
        | K::InvalidLowSurrogate
        | K::MissingLowSurrogate
        | K::UnpairedLowSurrogate
        | K::InvalidUnicodeEscape => {
            "a backslash in a double-quoted value starts an escape that YAML does not know: write \\\\ for a backslash, or use single quotes".to_string()
        }
        K::UnexpectedCharacter { character } => format!(
            "`{}` cannot start a value: put the value in quotes",
            character.escape_default()
        ),
        K::PlainScalarStartsWithDashFlowIndicator => {
            "a value cannot start with `-` followed by a bracket or comma: put it in quotes".to_string()
        }
        K::UnexpectedEofBlockSequence | K::UnexpectedEofBlockMapping | K::UnexpectedEof => {
            "the file ends in the middle of a list or map: is it complete?".to_string()
        }
        K::RecursionLimitExceeded => {
            "the lists and maps are nested too deeply to be a config: is this the config file?".to_string()
        }
        K::UnknownAnchor => {
            "an alias (`*name`) refers to no anchor (`&name`) above it: define the anchor first, or write the value out".to_string()
        }
        K::CommentInterceptedScalar | K::CommentNotSeparated => {
            "a `#` starts a comment only after a space, and a comment cannot split a value: put a space before the `#`, or quote the value".to_string()
        }
        K::BomInsideDocument => {
            "the file has a byte order mark (U+FEFF) inside it: remove it".to_string()
        }
        K::InputDecoding { .. } => "the file is not UTF-8 text: save it as UTF-8".to_string(),
        _ => "this is not valid YAML: check the indentation, brackets and quotes of this line and the one above".to_string(),
    };
    Problem::new("", msg).at(at)
}

fn not_closed(c: char, p: Position) -> String {
    let close = if c == '[' { ']' } else { '}' };
    format!(
        "the `{c}` at line {}, column {} is not closed: end it with `{close}` (or, if a value contains `{c}`, quote the value)",
        p.line, p.column
    )
}

/// The first tab in the indentation of line `from` or a later line.
fn first_indenting_tab(text: &str, from: u64) -> Option<Position> {
    text.lines()
        .enumerate()
        .skip(usize::try_from(from.saturating_sub(1)).ok()?)
        .find_map(|(i, l)| {
            let indent: String = l.chars().take_while(|c| *c == ' ' || *c == '\t').collect();
            indent.find('\t').map(|col| Position {
                line: i as u64 + 1,
                column: col as u64 + 1,
            })
        })
}

/// A `[` or `{` that starts a value before `upto` and is not closed by then, ignoring
/// brackets inside quotes, comments and plain text. A scanner over the text, one character
/// at a time with its state (in quotes, in a comment): it reads best whole.
fn unclosed_bracket(text: &str, upto: Position) -> Option<(char, Position)> {
    let mut stack: Vec<(char, Position)> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let n = i as u64 + 1;
        if n > upto.line {
            break;
        }
        let mut quote: Option<char> = None;
        let mut prev = ' ';
        for (j, c) in line.chars().enumerate() {
            let col = j as u64 + 1;
            if n == upto.line && col >= upto.column {
                break;
            }
            match quote {
                Some(q) => {
                    if c == q {
                        quote = None;
                    }
                }
                None => match c {
                    '#' if prev == ' ' => break,
                    '"' | '\'' if matches!(prev, ' ' | '[' | '{' | ',' | ':') => quote = Some(c),
                    '[' | '{' if matches!(prev, ' ' | '[' | '{' | ',') || j == 0 => stack.push((
                        c,
                        Position {
                            line: n,
                            column: col,
                        },
                    )),
                    ']' | '}' if !stack.is_empty() => {
                        stack.pop();
                    }
                    _ => {}
                },
            }
            prev = c;
        }
    }
    stack.pop()
}

/// serde_json's syntax messages in the project's words.
pub(super) fn json_syntax(msg: &str) -> String {
    let m = msg.trim();
    match m {
        "EOF while parsing a value" | "EOF while parsing a list" | "EOF while parsing an object"
        | "EOF while parsing a string" => {
            "the file ends before the JSON document does: a closing `]`, `}` or `\"` is missing".into()
        }
        "expected `:`" => "a `:` is missing between a key and its value".into(),
        "expected `,` or `]`" => {
            "a `,` is missing between two items of a list, or its `]` is missing".into()
        }
        "expected `,` or `}`" => {
            "a `,` is missing between two entries of an object, or its `}` is missing".into()
        }
        "expected ident" | "expected value" => {
            "this is not a JSON value: text needs double quotes; true, false and null are lower case".into()
        }
        "key must be a string" => "a key must be text in double quotes".into(),
        "trailing comma" => {
            "a `,` comes right before a closing bracket: remove it (JSON allows no trailing comma)".into()
        }
        "trailing characters" => {
            "something follows the end of the JSON document: remove it, or put it inside".into()
        }
        "recursion limit exceeded" => {
            "the lists and objects are nested too deeply to be a config: is this the config file?".into()
        }
        "invalid number" | "number out of range" => {
            "this number is not valid JSON: write digits, with an optional `-`, `.` and exponent".into()
        }
        m if m.starts_with("control character") => {
            "a string contains a control character (a tab or a line break): write it as \\t or \\n".into()
        }
        m if m.contains("escape") || m.contains("surrogate") || m.contains("unicode") => {
            "a backslash in a string starts an escape JSON does not know: write \\\\ for a backslash".into()
        }
        _ => "this is not valid JSON here: check the brackets, commas and quotes".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unclosed_brackets_are_found() {
        let text = "a: [1, 2\nb: {c: [x]}\nd: e\n";
        assert_eq!(
            unclosed_bracket(text, Position { line: 3, column: 2 }),
            Some(('[', Position { line: 1, column: 4 }))
        );
        assert_eq!(
            unclosed_bracket("a: x[1]\nb: 2\n", Position { line: 2, column: 2 }),
            None
        );
    }
}

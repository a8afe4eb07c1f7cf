//! Logging setup: `LOG_LEVEL` (the seed's names, any case) and `LOG_FORMAT` (`text` or
//! `json`, one JSON object per line); and [`Reporter`], the one way a command reports the
//! error that ends it, in the format in force.

use tracing::level_filters::LevelFilter;
use tracing_subscriber::filter::Targets;

/// The values `LOG_LEVEL` accepts.
pub const LEVELS: &[&str] = &[
    "TRACE", "DEBUG", "INFO", "WARNING", "WARN", "ERROR", "FATAL", "PANIC",
];

/// Parses a `LOG_LEVEL` value. `FATAL` and `PANIC` log errors only.
pub fn parse_level(s: &str) -> Result<LevelFilter, String> {
    match s.trim().to_ascii_uppercase().as_str() {
        "TRACE" => Ok(LevelFilter::TRACE),
        "DEBUG" => Ok(LevelFilter::DEBUG),
        "INFO" => Ok(LevelFilter::INFO),
        "WARNING" | "WARN" => Ok(LevelFilter::WARN),
        "ERROR" | "FATAL" | "PANIC" => Ok(LevelFilter::ERROR),
        _ => Err(format!(
            "LOG_LEVEL={s:?} is not a log level; use one of {}",
            LEVELS.join(", ")
        )),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

pub fn parse_format(s: &str) -> Result<LogFormat, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "text" | "" => Ok(LogFormat::Text),
        "json" => Ok(LogFormat::Json),
        _ => Err(format!(
            "LOG_FORMAT={s:?} is not a log format; use text or json"
        )),
    }
}

/// Which events are logged: anycastd's own at `level`; the libraries' (HTTP/2 frames, TLS,
/// DNS) at WARN at most, unless `level` is TRACE. At DEBUG, 93 of 136 lines in 5 s were
/// HTTP/2 plumbing before this.
pub fn filter(level: LevelFilter) -> Targets {
    let libraries = if level == LevelFilter::TRACE {
        LevelFilter::TRACE
    } else {
        level.min(LevelFilter::WARN)
    };
    Targets::new()
        .with_default(libraries)
        .with_target(env!("CARGO_CRATE_NAME"), level)
}

/// Installs the process's log subscriber: to journald's socket when stderr is journald's
/// stream (`JOURNAL_STREAM`, set by systemd) and the socket answers, with the text format
/// ([`super::journal`]: each line with its priority and fields, SPEC 19); else to stderr
/// (`LOG_FORMAT=json` keeps JSON lines on stderr: whoever asked for them reads them there).
/// The level (`LOG_LEVEL`, WARN by default) decides what is logged either way.
pub fn init(level: LevelFilter, format: LogFormat) {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    if format == LogFormat::Text
        && super::journal::stderr_is_journal()
        && let Ok(journal) =
            super::journal::Journal::connect(std::path::Path::new(super::journal::SOCKET))
    {
        let _ = tracing_subscriber::registry()
            .with(journal)
            .with(filter(level))
            .try_init();
        return;
    }
    let builder = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false);
    let _ = match format {
        LogFormat::Text => builder.finish().with(filter(level)).try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .finish()
            .with(filter(level))
            .try_init(),
    };
}

/// How a command reports the error that ends it: once, in the log format in force. With
/// `text`, `anycastd: <message>` on stderr, as other command-line tools say it (no
/// timestamped log line besides it); with `json`, one JSON object on stderr, shaped like
/// the log lines (`timestamp`, `level`, `message`) plus the error's own fields (a config
/// error's `file` and `problems`, each with `path`, `line`, `column` and `message`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reporter {
    format: LogFormat,
}

impl Reporter {
    pub fn new(format: LogFormat) -> Reporter {
        Reporter { format }
    }

    /// Reports `message`.
    pub fn error(&self, message: &str) {
        self.report(message, serde_json::Map::new());
    }

    /// Reports an error that has fields: `text` in the text format; `fields` (with its own
    /// `message`, else `text`) in JSON.
    pub fn report(&self, text: &str, fields: serde_json::Map<String, serde_json::Value>) {
        self.write("ERROR", text, fields);
    }

    /// Reports a warning: a client command goes on despite it.
    pub fn warning(&self, text: &str, fields: serde_json::Map<String, serde_json::Value>) {
        self.write("WARN", text, fields);
    }

    fn write(&self, level: &str, text: &str, fields: serde_json::Map<String, serde_json::Value>) {
        use std::io::Write;
        let out = self.render_at(level, text, fields, std::time::SystemTime::now());
        // Nothing is left to tell the error to if stderr is gone.
        let _ = std::io::stderr().lock().write_all(out.as_bytes());
    }

    /// What [`Reporter::report`] writes, one line in JSON.
    pub fn render(
        &self,
        text: &str,
        fields: serde_json::Map<String, serde_json::Value>,
        now: std::time::SystemTime,
    ) -> String {
        self.render_at("ERROR", text, fields, now)
    }

    fn render_at(
        &self,
        level: &str,
        text: &str,
        fields: serde_json::Map<String, serde_json::Value>,
        now: std::time::SystemTime,
    ) -> String {
        match self.format {
            LogFormat::Text if level == "WARN" => format!("anycastd: warning: {text}\n"),
            LogFormat::Text => format!("anycastd: {text}\n"),
            LogFormat::Json => {
                // In the order of the log lines: timestamp, level, message, then the rest.
                let message = fields
                    .get("message")
                    .cloned()
                    .unwrap_or_else(|| text.into());
                let mut members = vec![
                    (
                        "timestamp".to_string(),
                        humantime::format_rfc3339_micros(now).to_string().into(),
                    ),
                    ("level".to_string(), level.into()),
                    ("message".to_string(), message),
                ];
                members.extend(fields.into_iter().filter(|(k, _)| k != "message"));
                let body: Vec<String> = members
                    .iter()
                    .map(|(k, v)| format!("{}:{v}", serde_json::Value::from(k.as_str())))
                    .collect();
                format!("{{{}}}\n", body.join(","))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fatal_error_is_one_line_of_json_or_the_plain_text() {
        let now = std::time::UNIX_EPOCH + std::time::Duration::from_micros(1_700_000_000_123_456);
        let text = Reporter::new(LogFormat::Text);
        assert_eq!(
            text.render(
                "config file x is not valid:\n  - a: b",
                Default::default(),
                now
            ),
            "anycastd: config file x is not valid:\n  - a: b\n"
        );
        let json = Reporter::new(LogFormat::Json);
        let mut fields = serde_json::Map::new();
        fields.insert("message".into(), "config file x is not valid".into());
        fields.insert("problems".into(), serde_json::json!([{"path": "a"}]));
        assert_eq!(
            json.render("config file x is not valid:\n  - a: b", fields, now),
            "{\"timestamp\":\"2023-11-14T22:13:20.123456Z\",\"level\":\"ERROR\",\"message\":\"config file x is not valid\",\"problems\":[{\"path\":\"a\"}]}\n"
        );
        assert_eq!(
            json.render("cannot start", Default::default(), now),
            "{\"timestamp\":\"2023-11-14T22:13:20.123456Z\",\"level\":\"ERROR\",\"message\":\"cannot start\"}\n"
        );
    }

    #[test]
    fn libraries_stay_at_warn_unless_trace() {
        use tracing::Level;
        let debug = filter(LevelFilter::DEBUG);
        assert!(debug.would_enable("anycastd::announcer", &Level::DEBUG));
        assert!(!debug.would_enable("h2::codec", &Level::DEBUG));
        assert!(debug.would_enable("h2::codec", &Level::WARN));
        let trace = filter(LevelFilter::TRACE);
        assert!(trace.would_enable("h2::codec", &Level::TRACE));
        let error = filter(LevelFilter::ERROR);
        assert!(!error.would_enable("tonic", &Level::WARN));
    }

    #[test]
    fn levels_of_the_seed_in_any_case() {
        assert_eq!(parse_level("warning"), Ok(LevelFilter::WARN));
        assert_eq!(parse_level("Warn"), Ok(LevelFilter::WARN));
        assert_eq!(parse_level("FATAL"), Ok(LevelFilter::ERROR));
        assert_eq!(parse_level("panic"), Ok(LevelFilter::ERROR));
        assert_eq!(parse_level("trace"), Ok(LevelFilter::TRACE));
        let e = parse_level("verbose").expect_err("not a level");
        assert!(
            e.contains("TRACE, DEBUG, INFO, WARNING, WARN, ERROR, FATAL, PANIC"),
            "{e}"
        );
    }
}

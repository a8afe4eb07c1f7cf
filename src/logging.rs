//! Logging setup: `LOG_LEVEL` (the seed's names, any case) and `LOG_FORMAT` (`text` or
//! `json`, one JSON object per line).

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

/// Installs the process's log subscriber (to stderr).
pub fn init(level: LevelFilter, format: LogFormat) {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
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

#[cfg(test)]
mod tests {
    use super::*;

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

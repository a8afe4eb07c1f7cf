//! Reading a config file: its format by extension, the text (settled, never half a file),
//! parsing, validation, and [`ConfigError`], which says what is wrong with each problem's
//! path, line and column.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::model::{Config, DEFAULT_PATH};
use crate::problem::Problem;

/// The format of a config file, decided by its extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Yaml,
    Json,
}

impl Format {
    pub fn of(path: &Path) -> Result<Format, String> {
        match path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
        {
            Some(e) if e == "yaml" || e == "yml" => Ok(Format::Yaml),
            Some(e) if e == "json" => Ok(Format::Json),
            _ => Err(
                "has no .yaml, .yml or .json extension, which tells its format: rename it"
                    .to_string(),
            ),
        }
    }
}

/// Why a config file could not be used.
#[derive(Debug)]
pub enum ConfigError {
    /// The file could not be read, or cannot be a config file (its name).
    Unreadable {
        file: PathBuf,
        /// What is wrong and what to do, worded to follow the file's name (`does not
        /// exist: ...`).
        why: String,
    },
    /// The file was read: every problem found in it.
    Invalid {
        file: PathBuf,
        problems: Vec<Problem>,
    },
}

impl ConfigError {
    pub fn file(&self) -> &Path {
        match self {
            ConfigError::Unreadable { file, .. } | ConfigError::Invalid { file, .. } => file,
        }
    }

    /// The problems found in the file (none when it could not be read).
    pub fn problems(&self) -> &[Problem] {
        match self {
            ConfigError::Unreadable { .. } => &[],
            ConfigError::Invalid { problems, .. } => problems,
        }
    }

    /// The error as one JSON object's fields, for `LOG_FORMAT=json`: `message` (the first
    /// line of the text form), `file`, and each problem with its path, line and column.
    pub fn json_fields(&self) -> serde_json::Map<String, serde_json::Value> {
        use serde_json::{Value, json};
        let mut m = serde_json::Map::new();
        let head = match self {
            ConfigError::Unreadable { .. } => self.to_string(),
            ConfigError::Invalid { file, .. } => {
                format!("config file {} is not valid", file.display())
            }
        };
        m.insert("message".into(), Value::from(head));
        m.insert(
            "file".into(),
            Value::from(self.file().display().to_string()),
        );
        if let ConfigError::Invalid { problems, .. } = self {
            let list: Vec<Value> = problems
                .iter()
                .map(|p| {
                    json!({
                        "path": p.path,
                        "line": p.at.map(|a| a.line),
                        "column": p.at.map(|a| a.column),
                        "message": p.message,
                    })
                })
                .collect();
            m.insert("problems".into(), Value::from(list));
        }
        m
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Unreadable { file, why } => {
                write!(f, "config file {} {why}", file.display())
            }
            ConfigError::Invalid { file, problems } => {
                write!(f, "config file {} is not valid:", file.display())?;
                for p in problems {
                    write!(f, "\n  - {p}")?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for ConfigError {}

/// A config that passed validation, with the warnings it raised.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub config: Config,
    pub warnings: Vec<String>,
}

/// The largest config file read: 16 MiB, some fifty times a config of 10,000 prefixes.
pub const MAX_CONFIG_BYTES: u64 = 16 << 20;

/// Reads, parses and validates the config file at `path` (blocking up to
/// [`crate::small_file::SETTLE_LIMIT`] while the file is being written). Every problem has the path of its
/// field and, when the document has that field (or the map it is missing from), its line
/// and column: the document is read a second time for them, only when there are problems.
pub fn load(path: &Path) -> Result<Loaded, ConfigError> {
    let (config, checked) = load_unchecked(path)?;
    Ok(Loaded {
        warnings: checked?,
        config,
    })
}

/// For the client commands (`status`, `drain`, `reload`, `healthcheck`), which need only
/// the daemon's addresses: the file parsed, and apart from it whether it is valid. A file
/// edited into an invalid one must not keep an operator from draining the daemon, which
/// still runs the config it loaded before. `Err` only when the file cannot be read or
/// parsed at all.
pub fn load_for_client(path: &Path) -> Result<(Config, Option<ConfigError>), ConfigError> {
    let (config, checked) = load_unchecked(path)?;
    Ok((config, checked.err()))
}

/// The file read and parsed (`Err` when it cannot be), and the result of validating it.
fn load_unchecked(path: &Path) -> Result<(Config, Result<Vec<String>, ConfigError>), ConfigError> {
    let unreadable = |why: String| ConfigError::Unreadable {
        file: path.to_path_buf(),
        why,
    };
    let invalid = |problems| ConfigError::Invalid {
        file: path.to_path_buf(),
        problems,
    };
    let format = Format::of(path).map_err(unreadable)?;
    // Settled: a reload racing a slow writer must not apply half a file (issue 20).
    let text = crate::small_file::read_settled(path, MAX_CONFIG_BYTES)
        .map_err(|e| unreadable(why_unreadable(&e)))?;
    let config = parse(&text, format).map_err(|p| invalid(vec![p]))?;
    let checked = config.validate().map_err(|mut problems| {
        crate::config::diagnose::locate(&text, &mut problems);
        invalid(problems)
    });
    Ok((config, checked))
}

/// Why the config file could not be read, and what to do, following its name.
fn why_unreadable(e: &crate::small_file::ReadError) -> String {
    use crate::small_file::ReadError;
    use std::io::ErrorKind;
    match e {
        ReadError::Io { source, .. } if source.kind() == ErrorKind::NotFound => format!(
            "does not exist: give the config's path with --config FILE or the CONFIG_PATH environment variable (without either, {DEFAULT_PATH} is read)"
        ),
        ReadError::Io { source, .. } if source.kind() == ErrorKind::PermissionDenied => format!(
            "cannot be read by user id {}, which anycastd runs as (permission denied): give that user read access to the file and search access to its directories, e.g. through the file's group and chmod 640",
            rustix::process::getuid().as_raw()
        ),
        ReadError::Io { source, .. } => {
            format!("cannot be read: {}", crate::small_file::describe_io(source))
        }
        ReadError::NotRegular {
            path,
            kind: "directory",
        } => format!(
            "is a directory, not a regular file: give the path of the config file itself, e.g. {}",
            path.join("config.yaml").display()
        ),
        ReadError::NotRegular { kind, .. } => format!(
            "is a {kind}, not a regular file: give the path of a regular file (a FIFO or a device could block or never end)"
        ),
        ReadError::TooLarge { .. } => format!(
            "is larger than {} MiB, the limit of a config file (a config of 10,000 prefixes is some 300 KiB): is this the config file?",
            MAX_CONFIG_BYTES >> 20
        ),
        ReadError::NotText { .. } => "is not UTF-8 text: save it as UTF-8".to_string(),
        ReadError::Unsettled { .. } => format!(
            "kept changing for {}s: it is still being written; have the writer write a temporary file and rename it over this one",
            crate::small_file::SETTLE_LIMIT.as_secs()
        ),
    }
}

/// Parses a config document (no semantic validation: see [`Config::validate`]). An error
/// is worded by [`crate::config::diagnose`]: the field's path, its line and column, and the fix.
pub fn parse(text: &str, format: Format) -> Result<Config, Problem> {
    if text.trim().is_empty() {
        return Err(crate::config::diagnose::empty_file());
    }
    match format {
        Format::Json => {
            let mut de = serde_json::Deserializer::from_str(text);
            serde_path_to_error::deserialize(&mut de).map_err(|e| {
                let path = e.path().to_string();
                crate::config::diagnose::json(text, e.inner(), &path)
            })
        }
        Format::Yaml => {
            let mut path = String::new();
            let mut options = serde_saphyr::Options::default();
            // The error is worded by `diagnose`: the library's snippet would go unused.
            options.with_snippet = false;
            let result =
                serde_saphyr::with_deserializer_from_str_with_options(text, options, |de| {
                    let mut track = serde_path_to_error::Track::new();
                    let r =
                        Config::deserialize(serde_path_to_error::Deserializer::new(de, &mut track));
                    path = track.path().to_string();
                    r
                });
            result.map_err(|e| crate::config::diagnose::yaml(text, &e, &path))
        }
    }
}

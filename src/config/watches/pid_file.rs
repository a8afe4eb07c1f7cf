//! `pid_file: PATH`: the spec of a pid_file watch (the config side); its loop is
//! `watch/pid_file.rs`.

use std::path::PathBuf;

use serde::Deserialize;

/// `pid_file: PATH`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(transparent)]
pub struct Spec {
    /// Absolute path of the file holding the process id (`/run/nginx.pid`).
    pub path: PathBuf,
}

impl Spec {
    /// `Err` with the message (and fix) when `path` is empty or relative.
    pub fn validate(&self) -> Result<(), String> {
        if self.path.as_os_str().is_empty() {
            return Err(
                "must not be empty; write the path of the service's pid file, e.g. /run/nginx.pid"
                    .to_string(),
            );
        }
        if !self.path.is_absolute() {
            return Err(format!(
                "{} is a relative path; write an absolute one, e.g. /run/nginx.pid",
                self.path.display()
            ));
        }
        Ok(())
    }
}

impl Spec {
    /// What it watches.
    pub fn target(&self) -> String {
        self.path.display().to_string()
    }
}

impl schemars::JsonSchema for Spec {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "PidFileWatch".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "pattern": "^/",
            "description": "Absolute path of a pid file: the exit of the process it names starts a round",
            "examples": ["/run/nginx.pid"]
        })
    }
}

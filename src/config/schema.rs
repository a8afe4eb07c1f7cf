//! `anycastd config-schema`: a JSON Schema (2020-12) of the config file, generated from the
//! config types themselves, so that an editor (yaml-language-server, VS Code, ...) completes
//! keys, shows their documentation and flags mistakes while the file is written. It checks
//! the shape (keys, types, kinds and their specs, duration and prefix syntax);
//! `anycastd check-config` remains the full check (unique names, host bits, ...).
//!
//! Most types derive their schema; the few read by hand are described here.

use std::borrow::Cow;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};

use super::checks::{CheckConfig, OnFailure};
use super::model::Config;
use crate::config::attributes::{Community, LargeCommunity, WELL_KNOWN};
use crate::duration::Dur;

/// The schema, pretty-printed.
pub fn config_schema() -> String {
    let mut schema = schemars::schema_for!(Config);
    schema.insert("title".into(), "anycastd config file (YAML or JSON)".into());
    serde_json::to_string_pretty(&schema).unwrap_or_default()
}

/// A duration as the config writes it: digits with a unit, possibly several (`1m30s`).
const DURATION_PATTERN: &str = r"^\s*([0-9]+(\.[0-9]+)?\s*(nsec|ns|usec|us|µs|msec|ms|seconds|second|secs|sec|s|minutes|minute|mins|min|m|hours|hour|hrs|hr|h|days|day|d|weeks|week|w|months|month|M|years|year|y)\s*)+$";

impl JsonSchema for Dur {
    fn schema_name() -> Cow<'static, str> {
        "Duration".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "pattern": DURATION_PATTERN,
            "description": "A duration with a unit: 100ms, 10s, 1m30s (a bare number is an error)",
            "examples": ["100ms", "10s", "1m30s"]
        })
    }
}

impl JsonSchema for Community {
    fn schema_name() -> Cow<'static, str> {
        "Community".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        let names: Vec<&str> = WELL_KNOWN.iter().map(|(n, _)| *n).collect();
        json_schema!({
            "type": "string",
            "anyOf": [
                { "pattern": r"^[0-9]{1,5}:[0-9]{1,5}$" },
                { "enum": names }
            ],
            "description": "ASN:VALUE (each 0..65535) or a well-known name"
        })
    }
}

impl JsonSchema for LargeCommunity {
    fn schema_name() -> Cow<'static, str> {
        "LargeCommunity".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "pattern": r"^[0-9]{1,10}:[0-9]{1,10}:[0-9]{1,10}$",
            "description": "GLOBAL:LOCAL1:LOCAL2, three numbers in 0..4294967295"
        })
    }
}

impl JsonSchema for CheckConfig {
    fn schema_name() -> Cow<'static, str> {
        "Check".into()
    }
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let on_failure = generator.subschema_for::<OnFailure>();
        let kinds: Vec<Schema> = crate::config::checks::spec_schemas(generator)
            .into_iter()
            .map(|(kind, spec)| {
                json_schema!({
                    "type": "object",
                    "properties": {
                        "kind": { "const": kind },
                        "name": {
                            "type": "string",
                            "description": "Unique within the service; default: the kind"
                        },
                        "on_failure": on_failure,
                        "spec": spec
                    },
                    "required": ["kind"],
                    "additionalProperties": false
                })
            })
            .collect();
        json_schema!({
            "description": "A check: its kind, an optional name, what its failure does, and the kind's spec",
            "oneOf": kinds
        })
    }
}

//! A service's `watch:` items: a map with one key, the kind, whose value is the kind's
//! config (`- tcp: 127.0.0.1:8080`, `- pid_file: /run/nginx.pid`). The kinds are listed
//! once, in [`crate::kinds`]; each has its spec here (`watches/<kind>.rs`) and its loop in
//! `watch/<kind>.rs`.

pub mod pid_file;
pub mod tcp;

use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer};

use crate::problem::Problem;

/// Defines [`KINDS`], [`WatchSpec`] and its dispatch from the list of kinds.
macro_rules! watch_specs {
    ($($name:literal => $variant:ident($module:ident),)*) => {
        /// Every watch kind, as written in the config.
        pub const KINDS: &[&str] = &[$($name),*];

        /// One item of a service's `watch:` list.
        #[derive(Debug, Clone, PartialEq)]
        pub enum WatchSpec {
            $($variant($module::Spec),)*
        }

        impl WatchSpec {
            pub fn kind(&self) -> &'static str {
                match self { $(WatchSpec::$variant(_) => $name,)* }
            }

            /// What it watches: `127.0.0.1:8080`, `/run/nginx.pid`.
            pub fn target(&self) -> String {
                match self { $(WatchSpec::$variant(s) => s.target(),)* }
            }

            /// Problems with its fields, with paths relative to the item (`tcp`, `pid_file`).
            pub fn validate(&self) -> Vec<Problem> {
                let problem = match self { $(WatchSpec::$variant(s) => s.validate(),)* };
                problem
                    .err()
                    .map(|m| Problem::new(self.kind(), m))
                    .into_iter()
                    .collect()
            }

            /// The value of the item's one key, `kind`.
            fn value<'de, A: de::MapAccess<'de>>(kind: &str, map: &mut A) -> Result<Option<WatchSpec>, A::Error> {
                Ok(match kind {
                    $($name => Some(WatchSpec::$variant(map.next_value()?)),)*
                    _ => None,
                })
            }
        }

        // The item's schema: one of `{KIND: VALUE}`, each with its kind's own schema.
        impl schemars::JsonSchema for WatchSpec {
            fn schema_name() -> std::borrow::Cow<'static, str> {
                "Watch".into()
            }
            fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
                let one_of = vec![$(
                    schemars::json_schema!({
                        "type": "object",
                        "properties": { $name: generator.subschema_for::<$module::Spec>() },
                        "required": [$name],
                        "additionalProperties": false
                    }),
                )*];
                schemars::json_schema!({
                    "description": "An event that starts a round at once (the checks still decide)",
                    "oneOf": one_of
                })
            }
        }
    };
}

crate::kinds::watch_kinds!(watch_specs);

impl WatchSpec {
    /// The `watch` label of its metrics and its name in status: `tcp:127.0.0.1:8080`.
    pub fn label(&self) -> String {
        format!("{}:{}", self.kind(), self.target())
    }
}

impl<'de> Deserialize<'de> for WatchSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> de::Visitor<'de> for V {
            type Value = WatchSpec;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a watch: a map with one key, `tcp: HOST:PORT` or `pid_file: PATH`")
            }
            fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<WatchSpec, A::Error> {
                let unknown = |k: &str| {
                    de::Error::custom(format!(
                        "unknown field `{k}`, expected {} (one per watch item)",
                        KINDS
                            .iter()
                            .map(|k| format!("`{k}`"))
                            .collect::<Vec<_>>()
                            .join(" or ")
                    ))
                };
                let Some(key) = map.next_key::<String>()? else {
                    return Err(de::Error::custom(
                        "empty watch: write `- tcp: HOST:PORT` or `- pid_file: PATH`",
                    ));
                };
                let Some(spec) = WatchSpec::value(&key, &mut map)? else {
                    return Err(unknown(&key));
                };
                if let Some(more) = map.next_key::<String>()? {
                    return Err(if KINDS.contains(&more.as_str()) {
                        de::Error::custom(format!(
                            "a `watch` item has one kind: write `{}` and `{more}` as two items",
                            spec.kind()
                        ))
                    } else {
                        unknown(&more)
                    });
                }
                Ok(spec)
            }
        }
        d.deserialize_map(V)
    }
}

/// Problems with a service's `watch` list, with paths relative to the service
/// (`watch[1].tcp`).
pub fn problems(watches: &[WatchSpec]) -> Vec<Problem> {
    watches
        .iter()
        .enumerate()
        .flat_map(|(i, w)| {
            w.validate()
                .into_iter()
                .map(move |x| x.under(&format!("watch[{i}]")))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> Result<Vec<WatchSpec>, String> {
        serde_saphyr::from_str(yaml).map_err(|e| e.to_string())
    }

    #[test]
    fn items_are_maps_with_one_kind() {
        let w = parse("- tcp: 127.0.0.1:8080\n- pid_file: /run/nginx.pid\n").expect("parses");
        assert_eq!(w[0].label(), "tcp:127.0.0.1:8080");
        assert_eq!(w[1].label(), "pid_file:/run/nginx.pid");
        assert_eq!(w[1].kind(), "pid_file");
    }

    #[test]
    fn unknown_and_doubled_kinds_say_how_to_write_them() {
        let e = parse("- tpc: 127.0.0.1:8080\n").expect_err("typo");
        assert!(
            e.contains("unknown field `tpc`") && e.contains("`pid_file`"),
            "{e}"
        );
        let e = parse("- tcp: 127.0.0.1:8080\n  pid_file: /run/x.pid\n").expect_err("two");
        assert!(e.contains("as two items"), "{e}");
        let e = parse("- {}\n").expect_err("empty");
        assert!(e.contains("empty watch"), "{e}");
    }
}

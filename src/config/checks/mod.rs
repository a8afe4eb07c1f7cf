//! A service's `checks:` item: `kind`, optional `name` and `on_failure`, and the kind's
//! `spec`, read straight into the kind's own type.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer};

pub mod assigned_address;
pub mod attempts;
pub mod dns_lookup;
pub mod grpc_health;
pub mod http_2xx;
pub mod icmp_ping;
pub mod ntp;
pub mod tcp_connect;
pub mod tftp_rrq;
pub mod tls_certificate;

use serde::de::DeserializeSeed;

use self::attempts::{Attempts, KindSpec};
use crate::problem::Problem;
use schemars::JsonSchema;

/// Defines [`CheckSpec`], [`KINDS`], [`spec_schemas`] and [`SpecSeed`]'s dispatch from the
/// list of kinds ([`crate::kinds`]).
macro_rules! specs {
    ($($name:literal => $variant:ident($module:ident),)*) => {
        /// Every kind name, as written in the config.
        pub const KINDS: &[&str] = &[$($name),*];

        /// The spec of a check, by kind.
        #[derive(Debug, Clone, PartialEq)]
        pub enum CheckSpec {
            $($variant($module::Spec),)*
        }

        impl CheckSpec {
            pub fn kind(&self) -> &'static str {
                match self { $(CheckSpec::$variant(_) => $name,)* }
            }
            pub fn attempts(&self) -> Attempts {
                match self { $(CheckSpec::$variant(s) => s.attempts(),)* }
            }
            pub fn validate(&self) -> Vec<Problem> {
                match self { $(CheckSpec::$variant(s) => s.validate(),)* }
            }
            pub fn target(&self) -> String {
                match self { $(CheckSpec::$variant(s) => s.target(),)* }
            }
        }

        /// The JSON Schema of each kind's spec, by kind name.
        pub fn spec_schemas(
            generator: &mut schemars::SchemaGenerator,
        ) -> Vec<(&'static str, schemars::Schema)> {
            vec![$(($name, generator.subschema_for::<$module::Spec>()),)*]
        }

        impl<'de> DeserializeSeed<'de> for SpecSeed<'_> {
            type Value = CheckSpec;
            fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<CheckSpec, D::Error> {
                match self.0 {
                    $($name => $module::Spec::deserialize(d).map(CheckSpec::$variant),)*
                    other => Err(serde::de::Error::custom(format!(
                        "unknown check kind {other:?}; valid kinds: {}", KINDS.join(", ")
                    ))),
                }
            }
        }
    };
}

crate::kinds::check_kinds!(specs);

impl fmt::Display for OnFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            OnFailure::Withdraw => "withdraw",
            OnFailure::Degrade => "degrade",
        })
    }
}

/// What a failing check does to its service (SPEC 9).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OnFailure {
    /// The seed's behaviour: `fall` failing rounds take the service down.
    #[default]
    Withdraw,
    /// `fall` failing rounds make an up service *degraded*: still announced, with the
    /// `degraded` attributes.
    Degrade,
}

/// Deserializes the `spec` of the named kind.
pub struct SpecSeed<'a>(pub &'a str);

/// One check of a service: `kind`, optional `name` (default: the kind), `on_failure` and
/// the kind's `spec`.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckConfig {
    pub name: String,
    pub on_failure: OnFailure,
    pub spec: CheckSpec,
}

impl CheckConfig {
    pub fn kind(&self) -> &'static str {
        self.spec.kind()
    }
}

// `CheckConfig` is `{kind, name, spec}` where the type of `spec` depends on `kind`. It is
// read by hand so that the spec is deserialized straight into the kind's own struct, which
// keeps field paths (and YAML positions) of errors inside the spec. Keys and the values
// that are checked here are read through seeds, so that an error is raised while its key is
// being read and carries the key's path (`checks[2].kind`), as derived code's errors do.
impl<'de> Deserialize<'de> for CheckConfig {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(field_identifier, rename_all = "snake_case")]
        enum Field {
            Kind,
            Name,
            OnFailure,
            Spec,
        }
        struct V;
        impl<'de> de::Visitor<'de> for V {
            type Value = CheckConfig;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a check: a map with `kind`, optional `name` and `spec`")
            }
            fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<CheckConfig, A::Error> {
                let mut kind: Option<String> = None;
                let mut name: Option<String> = None;
                let mut on_failure = OnFailure::default();
                let mut spec: Option<CheckSpec> = None;
                // A spec written before its kind is kept as generic data until the kind is known.
                let mut early_spec: Option<serde_json::Value> = None;
                while let Some(key) = map.next_key::<Field>()? {
                    match key {
                        Field::Kind => kind = Some(map.next_value_seed(KindSeed)?),
                        Field::Name => name = Some(map.next_value()?),
                        Field::OnFailure => on_failure = map.next_value_seed(OnFailureSeed)?,
                        Field::Spec => match &kind {
                            Some(k) => spec = Some(map.next_value_seed(SpecSeed(k))?),
                            None => early_spec = Some(map.next_value()?),
                        },
                    }
                }
                let kind = kind.ok_or_else(|| {
                    de::Error::custom(format!(
                        "`kind` is missing: give the kind of the check, one of {}",
                        KINDS.join(", ")
                    ))
                })?;
                let spec = match (spec, early_spec) {
                    (Some(s), _) => s,
                    (None, Some(v)) => {
                        let mut track = serde_path_to_error::Track::new();
                        let de = serde_path_to_error::Deserializer::new(v, &mut track);
                        de::DeserializeSeed::deserialize(SpecSeed(&kind), de).map_err(|e| {
                            // The path inside the spec goes back to the error's own (see
                            // `diagnose::SUBPATH`).
                            let sub = super::diagnose::SUBPATH;
                            let inner = track.path().to_string();
                            let inner = if inner == "." { String::new() } else { inner };
                            de::Error::custom(format!(
                                "{sub}{}{sub}{e}",
                                Problem::new(inner, "").under("spec").path
                            ))
                        })?
                    }
                    // A kind whose fields all have defaults may leave out `spec`.
                    (None, None) => {
                        let empty = serde_json::Value::Object(Default::default());
                        de::DeserializeSeed::deserialize(SpecSeed(&kind), empty).map_err(|e| {
                            let e = e.to_string();
                            let what = e
                                .strip_prefix("missing field ")
                                .map(|f| format!(" (it needs {f})"))
                                .unwrap_or_default();
                            de::Error::custom(format!(
                                "`spec` is missing: a {kind} check needs one{what}"
                            ))
                        })?
                    }
                };
                Ok(CheckConfig {
                    name: name.unwrap_or_else(|| kind.clone()),
                    on_failure,
                    spec,
                })
            }
        }
        d.deserialize_map(V)
    }
}

/// A check's `kind`: one of [`KINDS`].
struct KindSeed;

impl<'de> de::DeserializeSeed<'de> for KindSeed {
    type Value = String;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<String, D::Error> {
        let k = String::deserialize(d)?;
        if KINDS.contains(&k.as_str()) {
            return Ok(k);
        }
        Err(de::Error::custom(format!(
            "{} is not a check kind{}; the kinds are {}",
            crate::wording::quote(&k),
            crate::wording::suggestion(&k, KINDS),
            KINDS.join(", ")
        )))
    }
}

/// A check's `on_failure`, with what each action does in the error.
struct OnFailureSeed;

impl<'de> de::DeserializeSeed<'de> for OnFailureSeed {
    type Value = OnFailure;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<OnFailure, D::Error> {
        let v = String::deserialize(d)?;
        match v.as_str() {
            "withdraw" => Ok(OnFailure::Withdraw),
            "degrade" => Ok(OnFailure::Degrade),
            _ => Err(de::Error::custom(format!(
                "{} is not an action{}; use withdraw (the default: the service goes down and its routes are withdrawn) or degrade (they stay announced with the degraded attributes)",
                crate::wording::quote(&v),
                crate::wording::suggestion(&v, &["withdraw", "degrade"])
            ))),
        }
    }
}

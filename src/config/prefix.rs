//! Prefixes as the config writes them: CIDR notation, read into `IpNet` with an error that
//! says how to write one, and their JSON Schema.

use std::borrow::Cow;
use std::net::IpAddr;

use ipnet::IpNet;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::Deserialize;
use serde::de::{self, Deserializer};

/// A list of prefixes in CIDR notation, with an error that says how to write one.
pub fn prefixes<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<IpNet>, D::Error> {
    struct Prefix(IpNet);
    impl<'de> Deserialize<'de> for Prefix {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            let s = String::deserialize(d)?;
            if let Ok(net) = s.trim().parse::<IpNet>() {
                return Ok(Prefix(net));
            }
            let hint = match s.trim().parse::<IpAddr>() {
                Ok(IpAddr::V4(a)) => format!("; for one address write {a}/32"),
                Ok(IpAddr::V6(a)) => format!("; for one address write {a}/128"),
                Err(_) => String::new(),
            };
            Err(de::Error::custom(format!(
                "{s:?} is not a prefix in CIDR notation (e.g. 192.0.2.0/24){hint}"
            )))
        }
    }
    Ok(Vec::<Prefix>::deserialize(d)?
        .into_iter()
        .map(|p| p.0)
        .collect())
}

/// A prefix in CIDR notation, for the schema only (the config reads it into `IpNet`).
pub struct Prefix;

impl JsonSchema for Prefix {
    fn schema_name() -> Cow<'static, str> {
        "Prefix".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "pattern": r"^[0-9a-fA-F:.]+/[0-9]{1,3}$",
            "description": "A prefix in CIDR notation, without host bits: 192.0.2.0/24, 2001:db8::/48",
            "examples": ["192.0.2.1/32", "2001:db8:100::/48"]
        })
    }
}

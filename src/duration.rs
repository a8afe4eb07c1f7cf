//! Durations as the config writes them: with a unit (`100ms`, `10s`, `1m30s`), never a bare
//! number. A leaf module: the config and the check kinds both use it.

use std::fmt;
use std::time::Duration;

use serde::Deserialize;
use serde::de::{self, Deserializer};

/// A duration written with a unit (`100ms`, `10s`, `1m30s`). A bare number is an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Dur(pub Duration);

impl Dur {
    pub const fn millis(ms: u64) -> Dur {
        Dur(Duration::from_millis(ms))
    }
    pub const fn secs(s: u64) -> Dur {
        Dur(Duration::from_secs(s))
    }

    /// `Err` with the fix when shorter than `min`, the documented lower bound of its field
    /// (README, "Config reference"; the `MIN_*` constants next to the fields).
    pub fn at_least(self, min: Dur) -> Result<(), String> {
        if self >= min {
            Ok(())
        } else {
            Err(format!("{self} is too short: write at least {min}"))
        }
    }
}

impl Dur {
    /// `Err` with the fix when longer than `max`, the documented upper bound of its field.
    pub fn at_most(self, max: Dur) -> Result<(), String> {
        if self <= max {
            Ok(())
        } else {
            Err(format!("{self} is too long: write at most {max}"))
        }
    }
}

/// As the config writes it, and as it parses back: `1d`, `1m30s`, `100ms`, `0s` (humantime
/// wrote `1day` and `1m 30s`, which read as neither).
impl fmt::Display for Dur {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.0.as_secs();
        let nanos = u64::from(self.0.subsec_nanos());
        if secs == 0 && nanos == 0 {
            return f.write_str("0s");
        }
        let parts = [
            (secs / 86_400, "d"),
            (secs / 3600 % 24, "h"),
            (secs / 60 % 60, "m"),
            (secs % 60, "s"),
            (nanos / 1_000_000, "ms"),
            (nanos / 1000 % 1000, "us"),
            (nanos % 1000, "ns"),
        ];
        for (n, unit) in parts {
            if n > 0 {
                write!(f, "{n}{unit}")?;
            }
        }
        Ok(())
    }
}

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl de::Visitor<'_> for V {
            type Value = Dur;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a duration with a unit, such as \"100ms\", \"10s\" or \"1m30s\"")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Dur, E> {
                parse_duration(s).map_err(E::custom)
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<Dur, E> {
                Err(E::custom(format!(
                    "a duration needs a unit: write \"{n}s\" or \"{n}ms\", not {n}"
                )))
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<Dur, E> {
                Err(E::custom(format!(
                    "a duration needs a unit: write \"{n}s\" or \"{n}ms\", not {n}"
                )))
            }
            fn visit_f64<E: de::Error>(self, n: f64) -> Result<Dur, E> {
                Err(E::custom(format!(
                    "a duration needs a unit: write \"{n}s\", not {n}"
                )))
            }
        }
        d.deserialize_any(V)
    }
}

/// Parses `100ms`, `10s`, `1m30s`, `1h`; rejects bare numbers.
pub fn parse_duration(s: &str) -> Result<Dur, String> {
    let t = s.trim();
    if !t.is_empty() && t.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return Err(format!(
            "a duration needs a unit: write \"{t}s\" or \"{t}ms\", not {t}"
        ));
    }
    if let Some(positive) = t.strip_prefix('-') {
        return Err(format!(
            "`{t}` is negative, and a duration is a length of time: write it without the minus sign, e.g. {positive}"
        ));
    }
    let how = "write a number and a unit, e.g. 100ms, 10s or 1m30s (units: ns, us, ms, s, m, h, d)";
    let d = humantime::parse_duration(t).map_err(|e| match e {
        humantime::DurationError::Empty => format!("is empty: {how}"),
        humantime::DurationError::UnknownUnit { unit, value, .. } if unit.is_empty() => {
            format!("`{value}` in `{t}` has no unit: {how}")
        }
        humantime::DurationError::UnknownUnit { unit, .. } => {
            format!("`{unit}` in `{t}` is not a unit of time: {how}")
        }
        humantime::DurationError::NumberOverflow => {
            format!("duration `{t}` is longer than 1000 years; write a shorter one")
        }
        _ => format!("`{t}` is not a duration: {how}"),
    })?;
    // One bound here keeps deadlines (now + timeout) and the per-request offsets of a
    // series far from overflowing an Instant; `Attempts::worst_case` saturates.
    if d > MAX_DURATION {
        return Err(format!(
            "duration `{t}` is longer than 1000 years; write a shorter one"
        ));
    }
    Ok(Dur(d))
}

/// The longest duration a config may give.
pub const MAX_DURATION: Duration = Duration::from_secs(1000 * 366 * 24 * 3600);

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 23.7: `1d` was summarised as `every 1day`, and `1m 30` said "`` in `1m 30` is
    /// not a unit".
    #[test]
    fn durations_read_as_written_and_a_bare_number_is_named() {
        for (text, shown) in [
            ("1d", "1d"),
            ("1m30s", "1m30s"),
            ("90s", "1m30s"),
            ("100ms", "100ms"),
            ("1h 5ms", "1h5ms"),
            ("0s", "0s"),
            ("1500us", "1ms500us"),
        ] {
            let d = parse_duration(text).expect(text);
            assert_eq!(d.to_string(), shown, "{text}");
            assert_eq!(parse_duration(shown).expect(shown), d);
        }
        assert_eq!(
            parse_duration("1m 30").expect_err("no unit"),
            "`30` in `1m 30` has no unit: write a number and a unit, e.g. 100ms, 10s or 1m30s (units: ns, us, ms, s, m, h, d)"
        );
    }
}

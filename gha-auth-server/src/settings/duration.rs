//! Human-readable durations in the configuration file: `"30d"`, `"10m"`, `"1h30m"`, `"90s"`, or
//! a bare integer number of seconds.

use std::fmt;
use std::str::FromStr;

use chrono::TimeDelta;
use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A non-negative duration as written in the configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Duration(TimeDelta);

impl Duration {
    /// A duration of `seconds` seconds.
    pub const fn seconds(seconds: i64) -> Self {
        Self(TimeDelta::seconds(seconds))
    }

    /// A duration of `minutes` minutes.
    pub const fn minutes(minutes: i64) -> Self {
        Self::seconds(minutes * 60)
    }

    /// A duration of `hours` hours.
    pub const fn hours(hours: i64) -> Self {
        Self::seconds(hours * 3600)
    }

    /// A duration of `days` days.
    pub const fn days(days: i64) -> Self {
        Self::seconds(days * 86_400)
    }

    /// As a chrono [`TimeDelta`].
    pub fn as_delta(self) -> TimeDelta {
        self.0
    }

    /// Whole seconds.
    pub fn as_secs(self) -> i64 {
        self.0.num_seconds()
    }

    /// As a std [`std::time::Duration`] (zero if negative, which parsing never produces).
    pub fn as_std(self) -> std::time::Duration {
        self.0.to_std().unwrap_or_default()
    }
}

impl From<TimeDelta> for Duration {
    fn from(value: TimeDelta) -> Self {
        Self(value)
    }
}

/// A duration string that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid duration {input:?}: expected e.g. \"90s\", \"10m\", \"24h\", \"30d\" or \"1h30m\""
)]
pub struct DurationParseError {
    input: String,
}

impl FromStr for Duration {
    type Err = DurationParseError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let error = || DurationParseError {
            input: input.to_owned(),
        };
        let text = input.trim();
        if text.is_empty() {
            return Err(error());
        }
        if let Ok(secs) = text.parse::<i64>() {
            return if secs >= 0 {
                Ok(Self::seconds(secs))
            } else {
                Err(error())
            };
        }
        let mut total: i64 = 0;
        let mut number: Option<i64> = None;
        for ch in text.chars() {
            if let Some(digit) = ch.to_digit(10) {
                let value = number.unwrap_or(0);
                number = Some(
                    value
                        .checked_mul(10)
                        .and_then(|v| v.checked_add(i64::from(digit)))
                        .ok_or_else(error)?,
                );
                continue;
            }
            let unit = match ch {
                's' => 1,
                'm' => 60,
                'h' => 3600,
                'd' => 86_400,
                _ => return Err(error()),
            };
            let value = number.take().ok_or_else(error)?;
            total = value
                .checked_mul(unit)
                .and_then(|v| total.checked_add(v))
                .ok_or_else(error)?;
        }
        if number.is_some() {
            // trailing digits without a unit, as in "1h30"
            return Err(error());
        }
        // Keep far away from chrono's limits.
        if total > 100 * 365 * 86_400 {
            return Err(error());
        }
        Ok(Self::seconds(total))
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut secs = self.as_secs();
        if secs == 0 {
            return f.write_str("0s");
        }
        for (unit, size) in [("d", 86_400), ("h", 3600), ("m", 60), ("s", 1)] {
            if secs >= size {
                write!(f, "{}{unit}", secs / size)?;
                secs %= size;
            }
        }
        Ok(())
    }
}

impl Serialize for Duration {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct DurationVisitor;

        impl Visitor<'_> for DurationVisitor {
            type Value = Duration;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration such as \"10m\", \"30d\", or a number of seconds")
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Duration, E> {
                if v < 0 {
                    return Err(E::custom("a duration cannot be negative"));
                }
                Ok(Duration::seconds(v))
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Duration, E> {
                i64::try_from(v)
                    .map_err(|_| E::custom("duration too large"))
                    .and_then(|v| self.visit_i64(v))
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<Duration, E> {
                v.parse().map_err(E::custom)
            }
        }

        deserializer.deserialize_any(DurationVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units_and_combinations() {
        let cases = [
            ("90", 90),
            ("90s", 90),
            ("10m", 600),
            ("24h", 86_400),
            ("30d", 2_592_000),
            ("1h30m", 5400),
            ("0s", 0),
        ];
        for (input, secs) in cases {
            assert_eq!(
                input.parse::<Duration>().unwrap().as_secs(),
                secs,
                "{input}"
            );
        }
    }

    #[test]
    fn rejects_garbage() {
        for input in [
            "",
            "m",
            "10x",
            "1h30",
            "-5",
            "5 m",
            "99999999999999999999d",
            "40000d",
        ] {
            assert!(input.parse::<Duration>().is_err(), "{input}");
        }
    }

    #[test]
    fn displays_in_the_largest_units() {
        assert_eq!(Duration::days(30).to_string(), "30d");
        assert_eq!(Duration::seconds(5400).to_string(), "1h30m");
        assert_eq!(Duration::seconds(0).to_string(), "0s");
        for d in [
            Duration::seconds(1),
            Duration::seconds(86_461),
            Duration::minutes(15),
        ] {
            assert_eq!(d.to_string().parse::<Duration>().unwrap(), d);
        }
    }
}

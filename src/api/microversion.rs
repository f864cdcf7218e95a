//! Microversions: `OpenStack-API-Version: volume 3.N` negotiation.
//!
//! No header means 3.0; `latest` means [`MAX`]. A malformed header is a 400, a
//! version outside [`MIN`]..=[`MAX`] a 406. The version in force is echoed on every
//! response (errors too) with `Vary: OpenStack-API-Version`.

use std::fmt;

use crate::error::{Error, Result};

/// A `3.N` version.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version(pub u16, pub u16);

/// The oldest version served.
pub const MIN: Version = Version(3, 0);

/// The newest version served: every microversion up to this one is implemented.
pub const MAX: Version = Version(3, 67);

/// The header clients send and servers echo.
pub const HEADER: &str = "OpenStack-API-Version";

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.0, self.1)
    }
}

impl Version {
    /// Whether this version is at least `3.minor`.
    pub fn at_least(self, minor: u16) -> bool {
        self >= Version(3, minor)
    }

    /// Parse `3.N` (or `latest`).
    fn parse_number(s: &str) -> Option<Version> {
        if s.eq_ignore_ascii_case("latest") {
            return Some(MAX);
        }
        let (maj, min) = s.split_once('.')?;
        let ok = |p: &str| !p.is_empty() && p.len() <= 4 && p.bytes().all(|b| b.is_ascii_digit());
        if !ok(maj) || !ok(min) {
            return None;
        }
        Some(Version(maj.parse().ok()?, min.parse().ok()?))
    }

    /// The version a request asks for, from its `OpenStack-API-Version` header values.
    pub fn from_header(value: Option<&str>) -> Result<Version> {
        let Some(value) = value else { return Ok(MIN) };
        // The header may carry several services: "volume 3.5, compute 2.1".
        for part in value.split(',') {
            let mut words = part.split_whitespace();
            let (Some(service), Some(number), None) = (words.next(), words.next(), words.next()) else {
                if part.trim().is_empty() {
                    continue;
                }
                return Err(Error::Invalid(format!(
                    "Invalid OpenStack-API-Version header value '{value}': expected 'volume 3.N'."
                )));
            };
            if !service.eq_ignore_ascii_case("volume") {
                continue;
            }
            let v = Version::parse_number(number).ok_or_else(|| {
                Error::Invalid(format!(
                    "API Version String {number} is of invalid format. Must be of format MajorNum.MinorNum."
                ))
            })?;
            if v < MIN || v > MAX {
                return Err(Error::NotAcceptable(format!(
                    "Version {v} is not supported by the API. Minimum is {MIN} and maximum is {MAX}."
                )));
            }
            return Ok(v);
        }
        Ok(MIN)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation_table() {
        let table: &[(Option<&str>, Result<Version, u16>)] = &[
            (None, Ok(MIN)),
            (Some("volume 3.0"), Ok(Version(3, 0))),
            (Some("volume 3.12"), Ok(Version(3, 12))),
            (Some("Volume 3.12"), Ok(Version(3, 12))),
            (Some("volume latest"), Ok(MAX)),
            (Some("compute 2.1"), Ok(MIN)),
            (Some("compute 2.1, volume 3.5"), Ok(Version(3, 5))),
            (Some("volume 2.0"), Err(406)),
            (Some("volume 3.999"), Err(406)),
            (Some("volume 4.0"), Err(406)),
            (Some("volume 3"), Err(400)),
            (Some("volume 3.x"), Err(400)),
            (Some("volume"), Err(400)),
            (Some("volume 3.1 extra"), Err(400)),
        ];
        for (header, want) in table {
            let got = Version::from_header(*header).map_err(|e| e.status());
            assert_eq!(&got, want, "{header:?}");
        }
    }
}

//! Identifiers and units validated at the boundary.
//!
//! Past the API parser, a volume is named by a [`VolumeId`] (a canonical, lower-case
//! UUID), a size by [`Gib`], and time by [`Timestamp`]; never by bare strings and
//! integers. Each constructor is the one place that decides what is valid. Secrets
//! hearth makes up (CHAP credentials, transfer auth keys) are [`random_token`]s.

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};

/// The largest size, in GiB, hearth accepts for one volume (Cinder's `MAX_INT`).
pub const MAX_GIB: u64 = 0x7FFF_FFFF;

/// A UUID-based object id (volumes, types, snapshots, attachments).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Id(uuid::Uuid);

impl Id {
    /// A new id: a UUIDv7 (RFC 9562: a millisecond timestamp, then 74 random bits),
    /// so that new rows land at the end of the store's id indexes instead of at random
    /// places in them, which keeps a create's cost flat as the store grows.
    pub fn new() -> Id {
        Id(uuid::Uuid::now_v7())
    }

    /// Parse an id given by a client; `None` when it is not a UUID (callers then
    /// answer "not found", as Cinder does for a malformed id).
    pub fn parse(s: &str) -> Option<Id> {
        uuid::Uuid::parse_str(s).ok().map(Id)
    }

    /// The all-zero id (`00000000-0000-0000-0000-000000000000`).
    pub const fn nil() -> Id {
        Id(uuid::Uuid::nil())
    }

    /// The 32 hex digits without dashes (a SCSI unit serial, say).
    pub fn simple(&self) -> String {
        self.0.simple().to_string()
    }
}

impl Default for Id {
    fn default() -> Self {
        Id::new()
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

impl FromStr for Id {
    type Err = Error;
    fn from_str(s: &str) -> Result<Id> {
        Id::parse(s).ok_or_else(|| Error::Invalid(format!("'{s}' is not a valid UUID.")))
    }
}

/// A size in GiB, the unit of the Cinder API.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Gib(u64);

impl Gib {
    /// A size from a number of GiB; refuses zero and sizes above [`MAX_GIB`].
    pub fn new(n: u64) -> Result<Gib> {
        if n == 0 {
            return Err(Error::Invalid("Invalid input received: size must be an integer greater than 0.".into()));
        }
        if n > MAX_GIB {
            return Err(Error::Invalid(format!(
                "Invalid input received: size must be less than or equal to {MAX_GIB}."
            )));
        }
        Ok(Gib(n))
    }

    /// The number of GiB.
    pub fn get(self) -> u64 {
        self.0
    }

    /// The size in bytes.
    pub fn bytes(self) -> u64 {
        self.0 << 30
    }
}

impl fmt::Display for Gib {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} GiB", self.0)
    }
}

/// A point in time in UTC, shown as Cinder shows it: ISO 8601 with microseconds and
/// no zone (`2018-11-28T06:21:12.715987`). Stored in the same text form, which sorts
/// chronologically.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Timestamp(chrono::NaiveDateTime);

impl Timestamp {
    /// Now, to the microsecond.
    pub fn now() -> Timestamp {
        let now = chrono::Utc::now().naive_utc();
        Timestamp(now - chrono::Duration::nanoseconds(now.and_utc().timestamp_subsec_nanos() as i64 % 1000))
    }

    /// This time plus `secs` seconds (saturating at the latest representable time).
    pub fn plus_seconds(self, secs: u64) -> Timestamp {
        let d = chrono::Duration::seconds(i64::try_from(secs).unwrap_or(i64::MAX).min(1 << 40));
        Timestamp(self.0.checked_add_signed(d).unwrap_or(chrono::NaiveDateTime::MAX))
    }

    /// This time minus `secs` seconds (saturating at the earliest representable time).
    pub fn minus_seconds(self, secs: u64) -> Timestamp {
        let d = chrono::Duration::seconds(i64::try_from(secs).unwrap_or(i64::MAX).min(1 << 40));
        Timestamp(self.0.checked_sub_signed(d).unwrap_or(chrono::NaiveDateTime::MIN))
    }

    /// Whole seconds from this time to `later` (negative when `later` is earlier).
    pub fn seconds_until(self, later: Timestamp) -> i64 {
        (later.0 - self.0).num_seconds()
    }

    /// Parse the stored form (`YYYY-MM-DDTHH:MM:SS.ffffff`) quickly, falling back to
    /// [`Timestamp::parse`] for anything else. Lists parse two per row.
    pub fn parse_stored(s: &str) -> Option<Timestamp> {
        let b = s.as_bytes();
        let shape_ok = b.len() == 26
            && b[4] == b'-'
            && b[7] == b'-'
            && b[10] == b'T'
            && b[13] == b':'
            && b[16] == b':'
            && b[19] == b'.';
        if !shape_ok {
            return Timestamp::parse(s);
        }
        let num = |from: usize, to: usize| -> Option<u32> {
            b[from..to].iter().try_fold(0u32, |acc, c| c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0')))
        };
        let date = chrono::NaiveDate::from_ymd_opt(num(0, 4)? as i32, num(5, 7)?, num(8, 10)?)?;
        let time = date.and_hms_micro_opt(num(11, 13)?, num(14, 16)?, num(17, 19)?, num(20, 26)?)?;
        Some(Timestamp(time))
    }

    /// Parse a client's time (`2024-01-01`, `2024-01-01T00:00:00`, with or without
    /// fraction and a trailing `Z`).
    pub fn parse(s: &str) -> Option<Timestamp> {
        let s = s.trim().trim_end_matches('Z');
        chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f")
            .or_else(|_| chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f"))
            .ok()
            .or_else(|| chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").ok().and_then(|d| d.and_hms_opt(0, 0, 0)))
            .map(Timestamp)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use chrono::{Datelike, Timelike};
        let t = self.0;
        write!(
            f,
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}",
            t.year(),
            t.month(),
            t.day(),
            t.hour(),
            t.minute(),
            t.second(),
            t.nanosecond() / 1000 % 1_000_000
        )
    }
}

/// A random token of `n` characters from [A-Za-z0-9], read from the kernel's
/// generator (rejection sampling keeps every character equally likely).
pub fn random_token(n: usize) -> String {
    use std::io::Read;
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let limit = (256 / ALPHABET.len() * ALPHABET.len()) as u8;
    let mut out = String::with_capacity(n);
    let mut urandom = std::fs::File::open("/dev/urandom").expect("/dev/urandom is readable");
    let mut buf = [0u8; 64];
    while out.len() < n {
        urandom.read_exact(&mut buf).expect("/dev/urandom is readable");
        for b in buf.iter().filter(|b| **b < limit) {
            if out.len() == n {
                break;
            }
            out.push(ALPHABET[*b as usize % ALPHABET.len()] as char);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_alphanumeric() {
        let (a, b) = (random_token(20), random_token(20));
        assert_eq!(a.len(), 20);
        assert_ne!(a, b);
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric()));
    }

    #[test]
    fn ids_parse_only_uuids() {
        let id = Id::new();
        assert_eq!(Id::parse(&id.to_string()), Some(id));
        assert_eq!(Id::parse(&id.to_string().to_uppercase()), Some(id));
        for bad in ["", "vol1", "1234", "../etc/passwd"] {
            assert_eq!(Id::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn sizes_are_bounded() {
        assert!(matches!(Gib::new(0), Err(Error::Invalid(_))));
        assert!(matches!(Gib::new(MAX_GIB + 1), Err(Error::Invalid(_))));
        assert_eq!(Gib::new(2).unwrap().bytes(), 2 << 30);
    }

    #[test]
    fn timestamps_round_trip_and_sort() {
        let t = Timestamp::now();
        let shown = t.to_string();
        assert_eq!(shown.len(), 26, "{shown}");
        assert_eq!(Timestamp::parse(&shown), Some(t));
        assert_eq!(Timestamp::parse_stored(&shown), Some(t));
        assert_eq!(t.to_string(), t.0.format("%Y-%m-%dT%H:%M:%S%.6f").to_string());
        assert_eq!(Timestamp::parse_stored("2024-01-01"), Timestamp::parse("2024-01-01"));
        assert_eq!(Timestamp::parse_stored("2024-13-01T00:00:00.000000"), None);
        assert!(Timestamp::parse("2024-01-01").unwrap() < Timestamp::parse("2024-01-01T00:00:01Z").unwrap());
        assert_eq!(Timestamp::parse("yesterday"), None);
    }
}

//! `hearthd status`: what a person wants to see of a hearth at a glance, whether
//! hearthd runs or not.
//!
//! It reads the store read-only ([`crate::store::open_read_only`]: nothing in the data
//! directory changes but SQLite's shared-memory index of the write-ahead log, when
//! there is a log) and measures each configured pool as `check-config` does, then
//! prints:
//!
//! - the services and how long ago each last reported (up or down as `os-services`
//!   says: a heartbeat within 2.5 report intervals, at least 60 s);
//! - each pool with a bar of its fill, its free space and what hearth's volumes take;
//! - volumes, snapshots, backups and attachments by status;
//! - the work under way, oldest first (what would be stuck);
//! - the last user messages (Cinder's record of what failed and why).

use std::fmt::Write as _;

use crate::config::Config;
use crate::error::Result;
use crate::ids::Timestamp;
use crate::model::Message;
use crate::query::{ColumnQuery, SortDir};
use crate::store::{self, count_by_status, overview, Counted};

/// Work under way listed at most.
const UNDER_WAY_SHOWN: usize = 10;
/// Messages listed at most.
const MESSAGES_SHOWN: usize = 5;
/// Width of a pool's fill bar, in characters.
const BAR: usize = 30;

/// The report, as printed.
pub fn report(config: &Config) -> Result<String> {
    match store::Database::of(config)? {
        store::Database::Sqlite(dir) => {
            let conn = store::open_read_only(&dir)?;
            report_from(config, &store::db::Connection::sqlite(&conn), &dir.display().to_string())
        }
        store::Database::Postgres(url, password) => {
            let mut conn = store::open_pg_read_only(&url, password.as_deref())?;
            let c = store::db::Connection::pg(&mut conn);
            c.execute_batch("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")?;
            report_from(config, &c, "PostgreSQL")
        }
    }
}

fn report_from(config: &Config, conn: &store::db::Connection<'_>, store_name: &str) -> Result<String> {
    let now = Timestamp::now();
    let mut out = String::new();
    let _ = writeln!(out, "hearth on {} (store {store_name}, read-only)", config.host());

    let _ = writeln!(out, "\nServices");
    let window = i64::try_from(config.report_interval * 5 / 2).unwrap_or(i64::MAX).max(60);
    let services = store::services::list(conn)?;
    if services.is_empty() {
        let _ = writeln!(out, "  none yet");
    }
    for s in services {
        let age = s.updated_at.seconds_until(now);
        let state = match (age <= window, s.disabled, s.frozen) {
            (false, _, _) => "down",
            (true, true, _) => "up, disabled",
            (true, false, true) => "up, frozen",
            (true, false, false) => "up",
        };
        let _ = writeln!(out, "  {:<17} {:<32} {:<13} last report {} ago", s.binary, s.host, state, duration(age));
    }

    let _ = writeln!(out, "\nPools");
    for (name, bc) in &config.backends {
        let measured = crate::backend::from_config(config, name, bc)
            .and_then(|b| b.pools().into_iter().map(|p| Ok((p.clone(), b.capacity(&p)?))).collect::<Result<Vec<_>>>());
        match measured {
            Ok(pools) => {
                for (pool, c) in pools {
                    let used = c.total_bytes.saturating_sub(c.free_bytes);
                    let _ = writeln!(
                        out,
                        "  {:<40} {} {:>3}% of {} used, {} free; {} volumes, {} provisioned",
                        format!("{}@{name}#{pool}", config.host()),
                        bar(used, c.total_bytes),
                        percent(used, c.total_bytes),
                        gib(c.total_bytes),
                        gib(c.free_bytes),
                        c.total_volumes,
                        gib(c.provisioned_bytes),
                    );
                }
            }
            Err(e) => {
                let _ = writeln!(out, "  {:<40} cannot be measured: {e}", format!("{}@{name}", config.host()));
            }
        }
    }

    let _ = writeln!(out, "\nObjects by status");
    for (title, what) in [
        ("volumes", Counted::Volumes),
        ("snapshots", Counted::Snapshots),
        ("backups", Counted::Backups),
        ("attachments", Counted::Attachments),
    ] {
        let counts = count_by_status(conn, what)?;
        let total: u64 = counts.iter().map(|(_, n)| n).sum();
        let by: Vec<String> = counts.iter().map(|(s, n)| format!("{s} {n}")).collect();
        let _ = writeln!(out, "  {title:<12} {total:>7}  {}", by.join(", "));
    }

    let (total, oldest) = overview::under_way(conn, UNDER_WAY_SHOWN)?;
    let _ = writeln!(out, "\nWork under way: {total}{}", if total > 0 { ", oldest first" } else { "" });
    for w in &oldest {
        let _ =
            writeln!(out, "  {:<9} {}  {:<17} for {}", w.kind, w.id, w.status, duration(w.since.seconds_until(now)));
    }
    if total > oldest.len() as u64 {
        let _ = writeln!(out, "  … and {} more", total - oldest.len() as u64);
    }

    let q =
        ColumnQuery { sort: vec![("created_at", SortDir::Desc)], limit: Some(MESSAGES_SHOWN), ..Default::default() };
    let messages: Vec<Message> = store::messages::list(conn, &q)?;
    let _ = writeln!(out, "\nLast errors (user messages)");
    if messages.is_empty() {
        let _ = writeln!(out, "  none");
    }
    for m in &messages {
        let _ = writeln!(
            out,
            "  {} ago  {} {}  {}  ({}, project {})",
            duration(m.created_at.seconds_until(now)),
            m.resource_type,
            m.resource_uuid.map(|i| i.to_string()).unwrap_or_else(|| "-".into()),
            crate::volume::messages::user_message(m),
            m.request_id,
            m.project_id,
        );
    }
    Ok(out)
}

/// `[#########.....]`: `used` of `total`.
fn bar(used: u64, total: u64) -> String {
    let filled = if total == 0 { 0 } else { ((used as f64 / total as f64) * BAR as f64).round() as usize };
    let filled = filled.min(BAR);
    format!("[{}{}]", "#".repeat(filled), ".".repeat(BAR - filled))
}

fn percent(used: u64, total: u64) -> u64 {
    if total == 0 {
        0
    } else {
        ((used as f64 / total as f64) * 100.0).round() as u64
    }
}

fn gib(bytes: u64) -> String {
    format!("{:.1} GiB", bytes as f64 / (1u64 << 30) as f64)
}

/// `42 s`, `3 min`, `5 h`, `2 d`.
fn duration(secs: i64) -> String {
    let s = secs.max(0);
    match s {
        0..=119 => format!("{s} s"),
        120..=7199 => format!("{} min", s / 60),
        7200..=172_799 => format!("{} h", s / 3600),
        _ => format!("{} d", s / 86_400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_and_durations() {
        assert_eq!(bar(0, 100), format!("[{}]", ".".repeat(BAR)));
        assert_eq!(bar(50, 100), format!("[{}{}]", "#".repeat(BAR / 2), ".".repeat(BAR / 2)));
        assert_eq!(bar(200, 100), format!("[{}]", "#".repeat(BAR)));
        assert_eq!(bar(1, 0), format!("[{}]", ".".repeat(BAR)));
        assert_eq!(percent(1, 3), 33);
        assert_eq!(duration(-5), "0 s");
        assert_eq!(duration(119), "119 s");
        assert_eq!(duration(600), "10 min");
        assert_eq!(duration(3 * 3600), "3 h");
        assert_eq!(duration(3 * 86_400), "3 d");
        assert_eq!(gib(3 << 29), "1.5 GiB");
    }
}

//! Quotas: limits per project (defaults from the config, overrides in the store),
//! usage counted from the records, and the check-and-reserve that guards creates
//! and extends.

use std::collections::BTreeMap;

use crate::store::db::Connection;

use crate::error::{Error, Result};
use crate::ids::Id;
use crate::policy::rules;
use crate::store::{quotas as q, types as store_types, QuotaUsage, Reservation};
use crate::volume::{Caller, Core};

/// The project-wide resources, in Cinder's names.
pub const RESOURCES: &[&str] =
    &["volumes", "snapshots", "gigabytes", "backups", "backup_gigabytes", "groups", "per_volume_gigabytes"];

/// The per-type resources: `<prefix>_<type name>`.
const PER_TYPE: &[&str] = &["volumes", "snapshots", "gigabytes"];

/// A resource amount a request needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Need {
    /// The resource name.
    pub resource: String,
    /// How much.
    pub delta: i64,
}

/// The amounts a volume of `size` GiB and type `type_name` needs.
pub fn volume_needs(size: u64, type_name: &str, count: i64) -> Vec<Need> {
    let size = size as i64;
    vec![
        Need { resource: "volumes".into(), delta: count },
        Need { resource: "gigabytes".into(), delta: size },
        Need { resource: format!("volumes_{type_name}"), delta: count },
        Need { resource: format!("gigabytes_{type_name}"), delta: size },
    ]
}

/// The amounts a snapshot of `size` GiB of type `type_name` needs.
pub fn snapshot_needs(size: u64, type_name: &str) -> Vec<Need> {
    let size = size as i64;
    vec![
        Need { resource: "snapshots".into(), delta: 1 },
        Need { resource: "gigabytes".into(), delta: size },
        Need { resource: format!("snapshots_{type_name}"), delta: 1 },
        Need { resource: format!("gigabytes_{type_name}"), delta: size },
    ]
}

/// The amounts a backup of a volume of `size` GiB needs.
pub fn backup_needs(size: u64) -> Vec<Need> {
    vec![
        Need { resource: "backups".into(), delta: 1 },
        Need { resource: "backup_gigabytes".into(), delta: size as i64 },
    ]
}

fn over_quota(resource: &str, limit: i64, used: i64, delta: i64) -> Error {
    if resource == "backups" {
        return Error::OverQuota(format!(
            "BackupLimitExceeded: Maximum number of backups allowed ({limit}) exceeded for quota 'backups'."
        ));
    }
    if resource == "backup_gigabytes" {
        return Error::OverQuota(format!(
            "VolumeBackupSizeExceedsAvailableQuota: Requested backup exceeds allowed Backup gigabytes quota. \
             Requested {delta}G, quota is {limit}G and {used}G has been consumed."
        ));
    }
    if resource == "groups" {
        return Error::OverQuota(format!(
            "GroupLimitExceeded: Maximum number of groups allowed ({limit}) exceeded for quota 'groups'."
        ));
    }
    if resource == "gigabytes" || resource.starts_with("gigabytes_") {
        Error::OverQuota(format!(
            "VolumeSizeExceedsAvailableQuota: Requested volume or snapshot exceeds allowed {resource} \
             quota. Requested {delta}G, quota is {limit}G and {used}G has been consumed."
        ))
    } else {
        let what = resource.split('_').next().unwrap_or(resource);
        Error::OverQuota(format!(
            "{}LimitExceeded: Maximum number of {what} allowed ({limit}) exceeded for quota '{resource}'.",
            match what {
                "snapshots" => "Snapshot",
                _ => "Volume",
            }
        ))
    }
}

/// The quota class whose limits are every project's defaults.
pub const DEFAULT_CLASS: &str = "default";

impl Core {
    /// The default limit of every resource, per-type ones included: the configured
    /// defaults, with the quota class `default`'s limits over them (as Cinder's
    /// `use_default_quota_class`).
    pub fn quota_defaults_in(&self, conn: &Connection) -> Result<BTreeMap<String, i64>> {
        let mut m = self.configured_quota_defaults_in(conn)?;
        for (k, v) in q::class_limits(conn, DEFAULT_CLASS)? {
            if let Some(slot) = m.get_mut(&k) {
                *slot = v;
            }
        }
        Ok(m)
    }

    fn configured_quota_defaults_in(&self, conn: &Connection) -> Result<BTreeMap<String, i64>> {
        let c = &self.config.quota;
        let mut m: BTreeMap<String, i64> = [
            ("volumes", c.quota_volumes),
            ("snapshots", c.quota_snapshots),
            ("gigabytes", c.quota_gigabytes),
            ("backups", c.quota_backups),
            ("backup_gigabytes", c.quota_backup_gigabytes),
            ("groups", c.quota_groups),
            ("per_volume_gigabytes", c.per_volume_size_limit),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        for name in store_types::names(conn)? {
            for p in PER_TYPE {
                m.insert(format!("{p}_{name}"), -1);
            }
        }
        Ok(m)
    }

    /// A project's limits: defaults with its overrides applied.
    pub fn quota_limits_in(&self, conn: &Connection, project: &str) -> Result<BTreeMap<String, i64>> {
        let mut m = self.quota_defaults_in(conn)?;
        for (k, v) in q::overrides(conn, project)? {
            if m.contains_key(&k) {
                m.insert(k, v);
            }
        }
        Ok(m)
    }

    /// Refuse (413) unless the project has room for `needs` beside what it uses and
    /// has reserved. Enough on its own for a change committed in the same transaction
    /// as the check: its records count at once, no reservation is needed.
    pub fn check_quota(&self, conn: &Connection, project: &str, needs: &[Need]) -> Result<()> {
        let limits = self.quota_limits_in(conn, project)?;
        // Needs of several objects may name the same resource: they add up.
        let mut total: BTreeMap<&str, i64> = BTreeMap::new();
        for n in needs {
            *total.entry(n.resource.as_str()).or_insert(0) += n.delta;
        }
        let limited: Vec<(&str, i64, i64)> = total
            .into_iter()
            .filter(|(_, d)| *d > 0)
            .filter_map(|(r, d)| limits.get(r).copied().filter(|l| *l >= 0).map(|l| (r, d, l)))
            .collect();
        if limited.is_empty() {
            // Nothing asked for is limited: what is in use does not matter.
            return Ok(());
        }
        let usage = q::usage(conn, project)?;
        for (resource, delta, limit) in limited {
            let used =
                usage.in_use.get(resource).copied().unwrap_or(0) + usage.reserved.get(resource).copied().unwrap_or(0);
            if used + delta > limit {
                return Err(over_quota(resource, limit, used, delta));
            }
        }
        Ok(())
    }

    /// Check `needs` against the project's limits and reserve them, in the caller's
    /// write transaction. Returns the reservation ids to release on commit or undo.
    pub fn reserve_quota(&self, tx: &Connection, project: &str, needs: &[Need]) -> Result<Vec<Id>> {
        self.check_quota(tx, project, needs)?;
        let rs: Vec<Reservation> = needs
            .iter()
            .filter(|n| n.delta != 0)
            .map(|n| Reservation {
                id: Id::new(),
                project_id: project.to_string(),
                resource: n.resource.clone(),
                delta: n.delta,
            })
            .collect();
        q::reserve(tx, self.host(), &rs)?;
        Ok(rs.into_iter().map(|r| r.id).collect())
    }

    /// Refuse a volume larger than `per_volume_gigabytes`.
    pub fn check_per_volume_size(&self, conn: &Connection, project: &str, size: u64) -> Result<()> {
        let limit = self.quota_limits_in(conn, project)?.get("per_volume_gigabytes").copied().unwrap_or(-1);
        if limit >= 0 && size as i64 > limit {
            return Err(Error::OverQuota(format!(
                "VolumeSizeExceedsLimit: Requested volume size {size}G is larger than maximum allowed limit {limit}G."
            )));
        }
        Ok(())
    }

    /// Limits of a project (and usage when asked).
    pub fn quota_show(&self, caller: &Caller, project: &str) -> Result<(BTreeMap<String, i64>, QuotaUsage)> {
        caller.authorize(rules::QUOTAS_SHOW, project)?;
        self.store.read(|tx| Ok((self.quota_limits_in(tx, project)?, q::usage(tx, project)?)))
    }

    /// The default limits.
    pub fn quota_defaults(&self, caller: &Caller, project: &str) -> Result<BTreeMap<String, i64>> {
        caller.authorize(rules::QUOTAS_SHOW, project)?;
        self.store.read(|tx| self.quota_defaults_in(tx))
    }

    /// Set some of a project's limits; `validate` refuses a limit below current use.
    pub fn quota_update(
        &self,
        caller: &Caller,
        project: &str,
        updates: &BTreeMap<String, i64>,
        validate: bool,
    ) -> Result<BTreeMap<String, i64>> {
        caller.authorize(rules::QUOTAS_UPDATE, project)?;
        self.store.write(|tx| {
            let limits = self.quota_limits_in(tx, project)?;
            let bad: Vec<&str> = updates.keys().filter(|k| !limits.contains_key(*k)).map(|k| k.as_str()).collect();
            if !bad.is_empty() {
                return Err(Error::Invalid(format!("Bad key(s) {} in quota_set.", bad.join(", "))));
            }
            let usage = q::usage(tx, project)?;
            for (k, &v) in updates {
                if v < -1 {
                    return Err(Error::Invalid(format!("Quota limit for {k} must be -1 or greater, not {v}.")));
                }
                if validate && v >= 0 && k != "per_volume_gigabytes" {
                    let used = usage.in_use.get(k).copied().unwrap_or(0);
                    let reserved = usage.reserved.get(k).copied().unwrap_or(0);
                    if v < used + reserved {
                        return Err(Error::Invalid(format!(
                            "Quota limit {v} for {k} must be equal or greater than existing resources. \
                             Current usage is {used} and the reserved is {reserved}."
                        )));
                    }
                }
                q::set_override(tx, project, k, v)?;
            }
            self.quota_limits_in(tx, project)
        })
    }

    /// A quota class's limits (`os-quota-class-sets`): the defaults, with the class's
    /// own limits over them. Only the class `default` affects projects.
    pub fn quota_class_show(&self, caller: &Caller, class: &str) -> Result<BTreeMap<String, i64>> {
        caller.authorize_own(rules::QUOTA_CLASSES_GET)?;
        self.store.read(|tx| {
            let mut m = self.configured_quota_defaults_in(tx)?;
            for (k, v) in q::class_limits(tx, class)? {
                if let Some(slot) = m.get_mut(&k) {
                    *slot = v;
                }
            }
            Ok(m)
        })
    }

    /// Set some of a quota class's limits; returns all of them.
    pub fn quota_class_update(
        &self,
        caller: &Caller,
        class: &str,
        updates: &BTreeMap<String, i64>,
    ) -> Result<BTreeMap<String, i64>> {
        caller.authorize_own(rules::QUOTA_CLASSES_UPDATE)?;
        if class.is_empty() || class.len() > 255 {
            return Err(Error::Invalid("The quota class name must be 1 to 255 characters.".into()));
        }
        self.store.write(|tx| {
            let known = self.configured_quota_defaults_in(tx)?;
            let bad: Vec<&str> = updates.keys().filter(|k| !known.contains_key(*k)).map(|k| k.as_str()).collect();
            if !bad.is_empty() {
                return Err(Error::Invalid(format!("Bad key(s) {} in quota_class_set.", bad.join(", "))));
            }
            for (k, &v) in updates {
                if v < -1 {
                    return Err(Error::Invalid(format!("Quota limit for {k} must be -1 or greater, not {v}.")));
                }
                q::set_class_limit(tx, class, k, v)?;
            }
            Ok(())
        })?;
        self.quota_class_show(caller, class)
    }

    /// Reset a project's limits to the defaults.
    pub fn quota_delete(&self, caller: &Caller, project: &str) -> Result<()> {
        caller.authorize(rules::QUOTAS_DELETE, project)?;
        self.store.write(|tx| q::delete_overrides(tx, project))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn over_quota_messages_name_the_quota() {
        let e = over_quota("volumes", 10, 10, 1).to_string();
        assert!(e.contains("Maximum number of volumes allowed (10) exceeded for quota 'volumes'"), "{e}");
        let e = over_quota("gigabytes", 1000, 999, 2).to_string();
        assert!(e.contains("Requested 2G, quota is 1000G and 999G has been consumed"), "{e}");
        let e = over_quota("volumes_fast", 1, 1, 1).to_string();
        assert!(e.contains("'volumes_fast'"), "{e}");
        let e = over_quota("backups", 2, 2, 1).to_string();
        assert!(e.starts_with("BackupLimitExceeded") && e.contains("(2)"), "{e}");
        let e = over_quota("backup_gigabytes", 10, 9, 2).to_string();
        assert!(e.contains("Requested 2G, quota is 10G and 9G has been consumed"), "{e}");
    }

    #[test]
    fn volume_needs_cover_type_quotas() {
        let n = volume_needs(5, "fast", 1);
        assert!(n.contains(&Need { resource: "gigabytes_fast".into(), delta: 5 }));
        assert!(n.contains(&Need { resource: "volumes".into(), delta: 1 }));
    }
}

//! QoS specs (admin): named sets of limits (`read_iops_sec`, `total_bytes_sec`, ...)
//! with a consumer, associated with volume types.
//!
//! hearth's backends apply no limits themselves; what counts is the front end: when a
//! volume of a type whose specs are consumed by `front-end` or `both` is connected,
//! its `connection_info` carries the specs (`data.qos_specs`) and Nova applies them in
//! the hypervisor, as with Cinder's LVM driver. Per-GiB specs (`read_iops_sec_per_gb`,
//! with `_per_gb_min` and `_max`) are turned into absolute ones for the volume's size
//! there, as Cinder's volume manager does.
//!
//! A type has at most one set of specs; associating another is refused until the
//! first is disassociated. Specs still associated with types are deleted only with
//! `force`, which disassociates them first, in the same transaction.

use std::collections::BTreeMap;

use crate::store::db::Connection;
use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::ids::{Id, Timestamp};
use crate::model::{QosConsumer, QosSpecs, Volume, VolumeStatus, VolumeType};
use crate::policy::rules;
use crate::query::ColumnQuery;
use crate::store::qos as sq;
use crate::volume::{Caller, Core};

/// Specs to create.
#[derive(Clone, Debug, Default)]
pub struct NewQos {
    /// Unique name (already trimmed).
    pub name: String,
    /// Who applies them; `None`: `back-end`, Cinder's default.
    pub consumer: Option<QosConsumer>,
    /// The specs.
    pub specs: BTreeMap<String, Option<String>>,
}

/// The options a per-GiB spec may scale (Cinder's list).
const PER_GB_OPTIONS: &[&str] =
    &["read_iops_sec", "read_bytes_sec", "write_iops_sec", "write_bytes_sec", "total_iops_sec", "total_bytes_sec"];

fn not_found(id: &str) -> Error {
    Error::NotFound(format!("No such QoS spec {id}."))
}

/// The specs a host applies for a volume of `size_gib`: every spec, with the per-GiB
/// ones turned into absolute values (`max(per_gb * size, per_gb_min)`, capped by
/// `_max`). A per-GiB spec whose numbers do not parse is passed on as it is.
pub fn specs_for_size(specs: &BTreeMap<String, Option<String>>, size_gib: u64) -> Map<String, Value> {
    let mut out: Map<String, Value> =
        specs.iter().map(|(k, v)| (k.clone(), v.clone().map(Value::String).unwrap_or(Value::Null))).collect();
    let int = |m: &Map<String, Value>, k: &str| -> Option<Option<i64>> {
        match m.get(k) {
            None => Some(None),
            Some(Value::String(s)) => s.trim().parse::<i64>().ok().map(Some),
            Some(_) => None,
        }
    };
    for option in PER_GB_OPTIONS {
        let (per_gb, min, max) = (format!("{option}_per_gb"), format!("{option}_per_gb_min"), format!("{option}_max"));
        let (Some(Some(per)), Some(minimum), Some(maximum)) = (int(&out, &per_gb), int(&out, &min), int(&out, &max))
        else {
            continue;
        };
        let value = per.saturating_mul(i64::try_from(size_gib).unwrap_or(i64::MAX)).max(minimum.unwrap_or(0));
        let value = maximum.map_or(value, |m| value.min(m));
        out.remove(&per_gb);
        out.remove(&min);
        out.remove(&max);
        out.insert((*option).to_string(), Value::from(value));
    }
    out
}

/// Whether a volume in `status` may change from type `old` to `new` in place, as far
/// as QoS goes: an in-use volume keeps its front-end specs, since the hypervisor
/// applied them when it connected (Cinder's `volume_qos_allows_retype`).
pub fn check_retype(conn: &Connection, status: VolumeStatus, old: &VolumeType, new: &VolumeType) -> Result<()> {
    if status != VolumeStatus::InUse || old.qos_specs_id == new.qos_specs_id {
        return Ok(());
    }
    let front_end = |id: Option<Id>| -> Result<bool> {
        Ok(id.map(|i| sq::get(conn, i)).transpose()?.flatten().is_some_and(|q| q.consumer != QosConsumer::BackEnd))
    };
    if front_end(old.qos_specs_id)? || front_end(new.qos_specs_id)? {
        return Err(Error::InvalidState(
            "Invalid volume: Retype needs volume to be in available or in-use state, not be part of an active \
             migration or a consistency group, requested type has to be different that the one from the volume, \
             and for in-use volumes front-end qos specs cannot change."
                .into(),
        ));
    }
    Ok(())
}

impl Core {
    fn qos_in(&self, conn: &Connection, id: &str) -> Result<QosSpecs> {
        Id::parse(id).map(|i| sq::get(conn, i)).transpose()?.flatten().ok_or_else(|| not_found(id))
    }

    /// Create specs (admin); a name in use is a 409.
    pub fn create_qos(&self, caller: &Caller, new: NewQos) -> Result<QosSpecs> {
        caller.authorize_own(rules::QOS_CREATE)?;
        self.store.write(|tx| {
            if sq::name_taken(tx, &new.name)? {
                return Err(Error::Conflict(format!("QoS Specs {} already exists.", new.name)));
            }
            let now = Timestamp::now();
            let q = QosSpecs {
                id: Id::new(),
                name: new.name.clone(),
                consumer: new.consumer.unwrap_or(QosConsumer::BackEnd),
                specs: new.specs.clone(),
                created_at: now,
                updated_at: now,
            };
            sq::insert(tx, &q)?;
            Ok(q)
        })
    }

    /// List specs (admin).
    pub fn list_qos(&self, caller: &Caller, q: ColumnQuery) -> Result<Vec<QosSpecs>> {
        caller.authorize_own(rules::QOS_GET_ALL)?;
        self.store.read(|tx| sq::list(tx, &q))
    }

    /// Show specs (admin).
    pub fn get_qos(&self, caller: &Caller, id: &str) -> Result<QosSpecs> {
        caller.authorize_own(rules::QOS_GET)?;
        self.store.read(|tx| self.qos_in(tx, id))
    }

    /// Add or change keys, and the consumer when given (admin).
    pub fn update_qos(
        &self,
        caller: &Caller,
        id: &str,
        consumer: Option<QosConsumer>,
        specs: BTreeMap<String, Option<String>>,
    ) -> Result<QosSpecs> {
        caller.authorize_own(rules::QOS_UPDATE)?;
        self.store.write(|tx| {
            let mut q = self.qos_in(tx, id)?;
            if let Some(c) = consumer {
                q.consumer = c;
            }
            q.specs.extend(specs.clone());
            q.updated_at = Timestamp::now();
            sq::save(tx, &q)?;
            Ok(q)
        })
    }

    /// Remove keys (admin). Every key must be there, else nothing is removed and the
    /// first missing one is named (404).
    pub fn delete_qos_keys(&self, caller: &Caller, id: &str, keys: &[String]) -> Result<()> {
        caller.authorize_own(rules::QOS_DELETE)?;
        self.store.write(|tx| {
            let mut q = self.qos_in(tx, id)?;
            for k in keys {
                if q.specs.remove(k).is_none() {
                    return Err(Error::NotFound(format!("QoS spec {id} has no spec with key {k}.")));
                }
            }
            q.updated_at = Timestamp::now();
            sq::save(tx, &q)
        })
    }

    /// Delete specs (admin): refused while types use them, unless `force`, which
    /// disassociates them first.
    pub fn delete_qos(&self, caller: &Caller, id: &str, force: bool) -> Result<()> {
        caller.authorize_own(rules::QOS_DELETE)?;
        self.store.write(|tx| {
            let q = self.qos_in(tx, id)?;
            if !sq::associations(tx, q.id)?.is_empty() {
                if !force {
                    return Err(Error::InvalidState("Qos specs still in use.".into()));
                }
                sq::disassociate_all(tx, q.id, &Timestamp::now().to_string())?;
            }
            sq::delete(tx, q.id)
        })
    }

    /// The volume types using specs (admin): (id, name).
    pub fn qos_associations(&self, caller: &Caller, id: &str) -> Result<Vec<(Id, String)>> {
        caller.authorize_own(rules::QOS_GET_ALL)?;
        self.store.read(|tx| {
            let q = self.qos_in(tx, id)?;
            sq::associations(tx, q.id)
        })
    }

    /// Associate specs with a volume type (admin). Associating again is a no-op; a
    /// type with other specs is refused.
    pub fn associate_qos(&self, caller: &Caller, id: &str, type_id: &str) -> Result<()> {
        caller.authorize_own(rules::QOS_UPDATE)?;
        self.store.write(|tx| {
            let q = self.qos_in(tx, id)?;
            let t = self.type_in(tx, caller, type_id)?;
            match t.qos_specs_id {
                Some(other) if other == q.id => Ok(()),
                Some(other) => Err(Error::Invalid(format!(
                    "Invalid volume type: Type {} is already associated with another qos specs: {other}.",
                    t.id
                ))),
                None => sq::set_type_specs(tx, t.id, Some(q.id), &Timestamp::now().to_string()),
            }
        })
    }

    /// Disassociate specs from a volume type (admin); a type without them is left
    /// as it is.
    pub fn disassociate_qos(&self, caller: &Caller, id: &str, type_id: &str) -> Result<()> {
        caller.authorize_own(rules::QOS_UPDATE)?;
        self.store.write(|tx| {
            let q = self.qos_in(tx, id)?;
            let t = self.type_in(tx, caller, type_id)?;
            if t.qos_specs_id == Some(q.id) {
                sq::set_type_specs(tx, t.id, None, &Timestamp::now().to_string())?;
            }
            Ok(())
        })
    }

    /// Disassociate specs from every volume type (admin).
    pub fn disassociate_all_qos(&self, caller: &Caller, id: &str) -> Result<()> {
        caller.authorize_own(rules::QOS_UPDATE)?;
        self.store.write(|tx| {
            let q = self.qos_in(tx, id)?;
            sq::disassociate_all(tx, q.id, &Timestamp::now().to_string())?;
            Ok(())
        })
    }

    /// What a volume's `connection_info` carries as `qos_specs`: its type's specs
    /// when they are consumed by the front end (or both), sized for the volume;
    /// `null` otherwise.
    pub fn front_end_qos(&self, conn: &Connection, v: &Volume) -> Result<Value> {
        let Some(t) = crate::store::types::get(conn, v.volume_type_id)? else { return Ok(Value::Null) };
        let Some(q) = t.qos_specs_id.map(|id| sq::get(conn, id)).transpose()?.flatten() else {
            return Ok(Value::Null);
        };
        Ok(match q.consumer {
            QosConsumer::FrontEnd | QosConsumer::Both => Value::Object(specs_for_size(&q.specs, v.size)),
            QosConsumer::BackEnd => Value::Null,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn specs(pairs: &[(&str, &str)]) -> BTreeMap<String, Option<String>> {
        pairs.iter().map(|(k, v)| (k.to_string(), Some(v.to_string()))).collect()
    }

    #[test]
    fn per_gib_specs_scale_with_the_size() {
        let s = specs(&[("read_iops_sec_per_gb", "10"), ("total_bytes_sec", "1000")]);
        assert_eq!(Value::Object(specs_for_size(&s, 5)), json!({"read_iops_sec": 50, "total_bytes_sec": "1000"}));
        // the minimum and the cap
        let s = specs(&[
            ("write_iops_sec_per_gb", "10"),
            ("write_iops_sec_per_gb_min", "100"),
            ("total_iops_sec_per_gb", "100"),
            ("total_iops_sec_max", "250"),
        ]);
        assert_eq!(Value::Object(specs_for_size(&s, 5)), json!({"write_iops_sec": 100, "total_iops_sec": 250}));
        // numbers that do not parse are passed on untouched
        let s = specs(&[("read_bytes_sec_per_gb", "lots")]);
        assert_eq!(Value::Object(specs_for_size(&s, 5)), json!({"read_bytes_sec_per_gb": "lots"}));
        let mut s = specs(&[("x", "1")]);
        s.insert("y".into(), None);
        assert_eq!(Value::Object(specs_for_size(&s, 1)), json!({"x": "1", "y": null}));
    }
}

//! The volume state machine: which operations each status allows.
//!
//! Each rule is a plain function of the record (and, where the API version matters,
//! a flag), returning Cinder's error sentence when the operation is refused.

use crate::error::{Error, Result};
use crate::model::{AttachStatus, Volume, VolumeStatus};

use VolumeStatus::*;

/// Statuses from which a volume may be deleted (without `force`).
pub const DELETABLE: &[VolumeStatus] = &[Available, Error, ErrorRestoring, ErrorExtending];

fn refuse(v: &Volume, what: &str, allowed: &[VolumeStatus]) -> Error {
    let list: Vec<&str> = allowed.iter().map(|s| s.as_str()).collect();
    Error::InvalidState(format!(
        "Invalid volume: Volume {} status must be {} to {what}, but current status is: {}.",
        v.id,
        list.join(" or "),
        v.status
    ))
}

/// May the volume be deleted? `force` skips the status check (not the attachment
/// check).
pub fn check_delete(v: &Volume, force: bool) -> Result<()> {
    if v.attach_status == AttachStatus::Attached || v.status == InUse {
        return Err(Error::InvalidState(format!(
            "Invalid volume: Volume {} is attached; detach it before deleting it.",
            v.id
        )));
    }
    if v.status == Deleting {
        return Err(Error::InvalidState(format!("Invalid volume: Volume {} is already being deleted.", v.id)));
    }
    if !force && !DELETABLE.contains(&v.status) {
        return Err(refuse(v, "delete", DELETABLE));
    }
    Ok(())
}

/// May the volume grow to `new_size` GiB? In-use volumes only when `in_use_ok`
/// (microversion 3.42 and a backend that supports it).
pub fn check_extend(v: &Volume, new_size: u64, in_use_ok: bool) -> Result<()> {
    let allowed: &[VolumeStatus] = if in_use_ok { &[Available, InUse] } else { &[Available] };
    if !allowed.contains(&v.status) {
        return Err(refuse(v, "extend", allowed));
    }
    if new_size <= v.size {
        return Err(Error::Invalid(format!(
            "Invalid input received: New size for extend must be greater than current size. \
             (current: {}, extended: {new_size}).",
            v.size
        )));
    }
    Ok(())
}

/// May the read-only flag change?
pub fn check_readonly_update(v: &Volume) -> Result<()> {
    if v.status != Available {
        return Err(refuse(v, "update readonly flag", &[Available]));
    }
    Ok(())
}

/// May metadata change? Not while the volume is being deleted or under maintenance.
pub fn check_metadata_update(v: &Volume) -> Result<()> {
    if matches!(v.status, Maintenance | Deleting) {
        return Err(Error::InvalidState(format!(
            "Invalid volume: Volume {} status is {}; its metadata cannot change now.",
            v.id, v.status
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{Id, Timestamp};
    use std::collections::BTreeMap;

    fn vol(status: VolumeStatus, attach: AttachStatus) -> Volume {
        Volume {
            id: Id::new(),
            project_id: "p".into(),
            user_id: "u".into(),
            name: None,
            description: None,
            size: 2,
            status,
            attach_status: attach,
            migration_status: None,
            availability_zone: "nova".into(),
            bootable: false,
            multiattach: false,
            volume_type_id: Id::new(),
            volume_type_name: "t".into(),
            snapshot_id: None,
            source_volid: None,
            group_id: None,
            host: None,
            task: None,
            error_reason: None,
            consumes_quota: true,
            created_at: Timestamp::now(),
            updated_at: Timestamp::now(),
            metadata: BTreeMap::new(),
            admin_metadata: BTreeMap::new(),
            provider_auth: None,
            encryption_key_id: None,
            attachments: Vec::new(),
        }
    }

    #[test]
    fn delete_rules() {
        use AttachStatus::*;
        for status in VolumeStatus::ALL {
            let v = vol(*status, Detached);
            let plain = check_delete(&v, false).is_ok();
            let forced = check_delete(&v, true).is_ok();
            assert_eq!(plain, DELETABLE.contains(status), "{status}");
            assert_eq!(forced, !matches!(status, InUse | Deleting), "{status} forced");
        }
        assert!(check_delete(&vol(Available, Attached), true).is_err());
        let e = check_delete(&vol(Creating, Detached), false).unwrap_err();
        assert!(e.to_string().contains("current status is: creating"), "{e}");
    }

    #[test]
    fn extend_rules() {
        let table: &[(VolumeStatus, u64, bool, bool)] = &[
            (Available, 3, false, true),
            (Available, 2, false, false),
            (Available, 1, false, false),
            (InUse, 3, false, false),
            (InUse, 3, true, true),
            (Creating, 3, true, false),
            (Error, 3, false, false),
            (Extending, 3, false, false),
        ];
        for (status, size, inuse, ok) in table {
            let r = check_extend(&vol(*status, AttachStatus::Detached), *size, *inuse);
            assert_eq!(r.is_ok(), *ok, "{status} -> {size} (in-use ok: {inuse}): {r:?}");
        }
    }

    #[test]
    fn readonly_and_metadata_rules() {
        assert!(check_readonly_update(&vol(Available, AttachStatus::Detached)).is_ok());
        assert!(check_readonly_update(&vol(Creating, AttachStatus::Detached)).is_err());
        assert!(check_metadata_update(&vol(Error, AttachStatus::Detached)).is_ok());
        assert!(check_metadata_update(&vol(Deleting, AttachStatus::Detached)).is_err());
    }
}

//! The one place that names what hearth creates on the host.
//!
//! Every object hearth makes (a file, later a logical volume or an iSCSI target) is
//! named `volume-<uuid>` (Cinder's `volume_name_template`), so that reconcile can tell
//! hearth's objects from everything else by name alone and never touches the rest.
//!
//! Lengths: a name is `volume-` (7) + a hyphenated UUID (36) = 43 bytes, below LVM's
//! 127-byte LV name limit and device-mapper's 128-byte `DM_NAME_LEN` once the VG name
//! (at most 64 bytes in practice) and a `-` are prefixed.

use crate::ids::Id;

/// The prefix of every volume object hearth creates.
pub const VOLUME_PREFIX: &str = "volume-";

/// The prefix of in-progress objects (created, then renamed into place when complete).
pub const PARTIAL_PREFIX: &str = ".partial-volume-";

/// The prefix of every snapshot object hearth creates.
pub const SNAPSHOT_PREFIX: &str = "snapshot-";

/// The prefix of in-progress snapshots.
pub const PARTIAL_SNAPSHOT_PREFIX: &str = ".partial-snapshot-";

/// The host-side name of a snapshot.
pub fn snapshot(id: Id) -> String {
    format!("{SNAPSHOT_PREFIX}{id}")
}

/// The host-side name of a snapshot while it is still being made.
pub fn partial_snapshot(id: Id) -> String {
    format!("{PARTIAL_SNAPSHOT_PREFIX}{id}")
}

/// The snapshot id in a host-side name, if it is one of hearth's snapshot names.
pub fn parse_snapshot(name: &str) -> Option<Id> {
    name.strip_prefix(SNAPSHOT_PREFIX).and_then(Id::parse).filter(|id| snapshot(*id) == name)
}

/// Whether a name is one of hearth's partial (half-made) objects.
pub fn is_partial(name: &str) -> bool {
    parse_partial_volume(name).is_some()
        || name.strip_prefix(PARTIAL_SNAPSHOT_PREFIX).and_then(Id::parse).is_some_and(|id| partial_snapshot(id) == name)
}

/// The thin pool hearth creates in a volume group that has none.
pub const LVM_THIN_POOL: &str = "hearth-thinpool";

/// The prefix of snapshot LVs (LVM reserves names that start with `snapshot`).
pub const LV_SNAPSHOT_PREFIX: &str = "_snapshot-";

/// The prefix of LVs that are copies still being made.
pub const LV_PARTIAL_PREFIX: &str = "_partial-volume-";

/// The LV name of a snapshot.
pub fn lv_snapshot(id: Id) -> String {
    format!("{LV_SNAPSHOT_PREFIX}{id}")
}

/// The snapshot id in an LV name, if it is one of hearth's.
pub fn parse_lv_snapshot(name: &str) -> Option<Id> {
    name.strip_prefix(LV_SNAPSHOT_PREFIX).and_then(Id::parse).filter(|id| lv_snapshot(*id) == name)
}

/// The LV name of a volume copy still being made.
pub fn lv_partial_volume(id: Id) -> String {
    format!("{LV_PARTIAL_PREFIX}{id}")
}

/// The volume id in a partial LV name, if it is one of hearth's.
pub fn parse_lv_partial_volume(name: &str) -> Option<Id> {
    name.strip_prefix(LV_PARTIAL_PREFIX).and_then(Id::parse).filter(|id| lv_partial_volume(*id) == name)
}

/// The host-side name of a volume.
pub fn volume(id: Id) -> String {
    format!("{VOLUME_PREFIX}{id}")
}

/// The host-side name of a volume while it is still being made.
pub fn partial_volume(id: Id) -> String {
    format!("{PARTIAL_PREFIX}{id}")
}

/// The volume id in a host-side name, if the name is one of hearth's volume names.
pub fn parse_volume(name: &str) -> Option<Id> {
    name.strip_prefix(VOLUME_PREFIX).and_then(Id::parse).filter(|id| volume(*id) == name)
}

/// The volume id in a partial name, if it is one of hearth's partial names.
pub fn parse_partial_volume(name: &str) -> Option<Id> {
    name.strip_prefix(PARTIAL_PREFIX).and_then(Id::parse).filter(|id| partial_volume(*id) == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_fit() {
        let id = Id::new();
        assert_eq!(parse_volume(&volume(id)), Some(id));
        assert_eq!(parse_partial_volume(&partial_volume(id)), Some(id));
        assert_eq!(volume(id).len(), 43);
    }

    #[test]
    fn snapshot_names_round_trip() {
        let id = Id::new();
        assert_eq!(parse_snapshot(&snapshot(id)), Some(id));
        assert!(is_partial(&partial_snapshot(id)) && is_partial(&partial_volume(id)));
        assert!(!is_partial(&snapshot(id)) && !is_partial(&volume(id)));
        assert_eq!(parse_volume(&snapshot(id)), None);
    }

    #[test]
    fn lvm_names_round_trip_and_avoid_reserved_prefixes() {
        let id = Id::new();
        assert_eq!(parse_lv_snapshot(&lv_snapshot(id)), Some(id));
        assert_eq!(parse_lv_partial_volume(&lv_partial_volume(id)), Some(id));
        for n in [lv_snapshot(id), lv_partial_volume(id), volume(id), LVM_THIN_POOL.to_string()] {
            assert!(!n.starts_with("snapshot") && !n.starts_with("pvmove") && !n.starts_with('-'), "{n}");
            assert!(n.len() < 64, "{n}");
        }
        assert_eq!(parse_volume(&lv_partial_volume(id)), None);
    }

    #[test]
    fn foreign_names_are_not_ours() {
        let id = Id::new();
        for name in [
            "root".to_string(),
            "volume-".to_string(),
            format!("volume-{id}.bak"),
            format!("volume-{}", id.to_string().to_uppercase()),
            format!("xvolume-{id}"),
            partial_volume(id),
        ] {
            assert_eq!(parse_volume(&name), None, "{name}");
        }
    }
}

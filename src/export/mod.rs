//! The seam between hearth and the way hosts reach a volume's data.
//!
//! An [`Export`] makes a volume reachable (a target, a LUN, a path), lets one host's
//! connector in with an access mode, and answers with the `data` part of Cinder's
//! `connection_info` that the host's os-brick connector expects. Two implementations:
//! [`local`] (os-brick's LOCAL connector: a path on this host) and [`lio`] (iSCSI
//! through the kernel's LIO target: the connector's initiator gets an ACL, with the
//! volume's CHAP credentials, and the data lists portals, IQNs and LUNs).
//!
//! Every operation is idempotent: making an export that exists, or removing one
//! that is gone, succeeds ([`Outcome::AlreadyDone`]).

pub mod lio;
pub mod local;

use std::path::PathBuf;

use serde_json::{Map, Value};

use crate::backend::Outcome;
use crate::error::{Error, Result};
use crate::ids::Id;
use crate::model::AttachMode;

/// What a host says about itself when it connects (os-brick's connector properties).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Connector {
    /// The host's iSCSI initiator name.
    pub initiator: Option<String>,
    /// The host's name.
    pub host: Option<String>,
    /// The host's address.
    pub ip: Option<String>,
    /// Whether the host wants every path (multipath).
    pub multipath: bool,
}

impl Connector {
    /// Read a connector from its JSON form; unknown keys are ignored, as Cinder does.
    pub fn from_json(v: &Value) -> Result<Connector> {
        let Value::Object(m) = v else {
            return Err(Error::Invalid(format!("Invalid connector {v}: expected an object.")));
        };
        let text = |k: &str| -> Result<Option<String>> {
            match m.get(k) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(other) => Err(Error::Invalid(format!("Invalid connector: {k} must be a string, not {other}."))),
            }
        };
        let multipath = match m.get("multipath") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(Value::String(s)) => s.eq_ignore_ascii_case("true"),
            Some(other) => {
                return Err(Error::Invalid(format!("Invalid connector: multipath must be a boolean, not {other}.")))
            }
        };
        Ok(Connector { initiator: text("initiator")?, host: text("host")?, ip: text("ip")?, multipath })
    }

    /// Whether two connectors are the same host (by host name, else initiator).
    pub fn same_host(&self, other: &Connector) -> bool {
        match (&self.host, &other.host) {
            (Some(a), Some(b)) => a == b,
            _ => self.initiator.is_some() && self.initiator == other.initiator,
        }
    }
}

/// CHAP credentials of one volume, made once and kept in its record. Its `Debug`
/// never shows the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct Chap {
    /// The user name.
    pub username: String,
    /// The secret.
    pub password: String,
}

impl std::fmt::Debug for Chap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Chap").field("username", &self.username).field("password", &"<secret>").finish()
    }
}

impl Chap {
    /// The record form, as Cinder keeps it: `CHAP <user> <secret>`.
    pub fn to_provider_auth(&self) -> String {
        format!("CHAP {} {}", self.username, self.password)
    }

    /// Parse the record form.
    pub fn from_provider_auth(s: &str) -> Option<Chap> {
        let mut w = s.split_whitespace();
        match (w.next(), w.next(), w.next(), w.next()) {
            (Some("CHAP"), Some(u), Some(p), None) => Some(Chap { username: u.into(), password: p.into() }),
            _ => None,
        }
    }
}

/// The volume an export is about.
#[derive(Clone, Debug)]
pub struct ExportTarget {
    /// The volume.
    pub volume_id: Id,
    /// Where its data is on this host (a block device or a file).
    pub device_path: PathBuf,
    /// Its CHAP credentials, when the export uses them.
    pub chap: Option<Chap>,
}

/// A way for hosts to reach volumes.
pub trait Export: Send + Sync {
    /// `driver_volume_type` in `connection_info` (`local`, `iscsi`).
    fn driver_volume_type(&self) -> &'static str;

    /// The pool capability `storage_protocol` (`local`, `iSCSI`).
    fn storage_protocol(&self) -> &'static str;

    /// Whether volumes exported this way need CHAP credentials.
    fn uses_chap(&self) -> bool;

    /// Make the volume reachable (without letting anyone in yet).
    fn ensure_export(&self, t: &ExportTarget) -> Result<Outcome>;

    /// Stop exporting the volume at all.
    fn remove_export(&self, volume: Id) -> Result<Outcome>;

    /// Let a host in with `mode`; returns the `data` of `connection_info`.
    fn allow(&self, t: &ExportTarget, c: &Connector, mode: AttachMode) -> Result<Map<String, Value>>;

    /// Take a host's access away.
    fn deny(&self, volume: Id, c: &Connector) -> Result<Outcome>;

    /// The volumes this export currently exports (for reconcile).
    fn list_exports(&self) -> Result<Vec<Id>>;

    /// The hosts (initiator names) a volume's export currently lets in (for
    /// reconcile); none for exports that keep no per-host state.
    fn list_initiators(&self, _volume: Id) -> Result<Vec<String>> {
        Ok(Vec::new())
    }

    /// Check that the export can work on this host (start-up, `check-config`).
    fn check(&self) -> Result<()> {
        Ok(())
    }
}

/// Build the export a backend's configuration asks for.
pub fn from_config(b: &crate::config::BackendConfig) -> std::sync::Arc<dyn Export> {
    use crate::config::{Driver, TargetHelper};
    match b.target_helper {
        TargetHelper::Local => std::sync::Arc::new(local::LocalExport),
        TargetHelper::Lioadm => {
            let port = b.target_port.unwrap_or(3260);
            let portals = b
                .target_ip_address
                .iter()
                .chain(b.target_secondary_ip_addresses.iter().flatten())
                .map(|ip| lio::Portal { ip: *ip, port })
                .collect();
            std::sync::Arc::new(lio::LioExport::new(lio::LioSettings {
                root: b.configfs_path.clone().unwrap_or_else(|| lio::DEFAULT_CONFIGFS_PATH.into()),
                target_prefix: b.target_prefix.clone().unwrap_or_else(|| lio::DEFAULT_TARGET_PREFIX.into()),
                portals,
                backstore: match b.driver {
                    Driver::Lvm => lio::Backstore::Iblock,
                    Driver::File => lio::Backstore::Fileio,
                },
            }))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn connectors_parse_like_cinder() {
        let c = Connector::from_json(&json!({"initiator": "iqn.x", "host": "h1", "ip": "127.0.0.1",
            "multipath": false, "platform": "x86_64", "os_type": "linux", "do_local_attach": false}))
        .unwrap();
        assert_eq!(c.initiator.as_deref(), Some("iqn.x"));
        assert!(!c.multipath);
        assert!(Connector::from_json(&json!("h1")).is_err());
        assert!(Connector::from_json(&json!({"host": 5})).is_err());
        let d = Connector::from_json(&json!({"host": "h1"})).unwrap();
        assert!(c.same_host(&d));
        assert!(!c.same_host(&Connector::from_json(&json!({"host": "h2"})).unwrap()));
    }

    #[test]
    fn chap_round_trips() {
        let c = Chap { username: "u1".into(), password: "s3cret".into() };
        assert_eq!(Chap::from_provider_auth(&c.to_provider_auth()), Some(c));
        assert_eq!(Chap::from_provider_auth("CHAP only"), None);
    }
}

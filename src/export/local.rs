//! The `local` export: the volume's data is reached through its path on this host,
//! as os-brick's LOCAL connector expects (`{"device_path": ...}`).
//!
//! Nothing is created on the host, so making and removing the export only checks
//! that the data is there; it is the export of the file backend and of an
//! all-in-one host where compute and storage share a machine.

use serde_json::{json, Map, Value};

use crate::backend::Outcome;
use crate::error::{Error, Result};
use crate::export::{Connector, Export, ExportTarget};
use crate::ids::Id;
use crate::model::AttachMode;

/// Exports by local path.
#[derive(Debug, Default)]
pub struct LocalExport;

impl Export for LocalExport {
    fn driver_volume_type(&self) -> &'static str {
        "local"
    }

    fn storage_protocol(&self) -> &'static str {
        "local"
    }

    fn uses_chap(&self) -> bool {
        false
    }

    fn ensure_export(&self, t: &ExportTarget) -> Result<Outcome> {
        if t.device_path.exists() {
            Ok(Outcome::AlreadyDone)
        } else {
            Err(Error::Backend(format!(
                "local export: the data of volume {} is missing at {}",
                t.volume_id,
                t.device_path.display()
            )))
        }
    }

    fn remove_export(&self, _volume: Id) -> Result<Outcome> {
        Ok(Outcome::AlreadyDone)
    }

    fn allow(&self, t: &ExportTarget, _c: &Connector, mode: AttachMode) -> Result<Map<String, Value>> {
        self.ensure_export(t)?;
        let mut data = Map::new();
        data.insert("device_path".into(), json!(t.device_path.display().to_string()));
        data.insert("access_mode".into(), json!(mode.as_str()));
        Ok(data)
    }

    fn deny(&self, _volume: Id, _c: &Connector) -> Result<Outcome> {
        Ok(Outcome::AlreadyDone)
    }

    fn list_exports(&self) -> Result<Vec<Id>> {
        Ok(Vec::new())
    }
}

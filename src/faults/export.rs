//! [`FaultyExport`]: an export with the plan's faults in front of each call.

use std::sync::Arc;

use serde_json::{Map, Value};

use super::{act, hit};
use crate::backend::Outcome;
use crate::error::Result;
use crate::export::{Connector, Export, ExportTarget};
use crate::ids::Id;
use crate::model::AttachMode;

/// An export whose calls may fail, hang or answer nonsense (see [`super`]).
pub struct FaultyExport {
    name: String,
    inner: Arc<dyn Export>,
}

impl FaultyExport {
    /// Wrap the export of backend `name`.
    pub fn wrap(name: &str, inner: Arc<dyn Export>) -> Arc<dyn Export> {
        Arc::new(FaultyExport { name: name.to_string(), inner })
    }

    fn act(&self, method: &str) -> Result<()> {
        act(Some(&self.name), &format!("export.{method}"))
    }
}

impl Export for FaultyExport {
    fn driver_volume_type(&self) -> &'static str {
        self.inner.driver_volume_type()
    }

    fn storage_protocol(&self) -> &'static str {
        self.inner.storage_protocol()
    }

    fn uses_chap(&self) -> bool {
        self.inner.uses_chap()
    }

    fn ensure_export(&self, t: &ExportTarget) -> Result<Outcome> {
        self.act("ensure_export")?;
        self.inner.ensure_export(t)
    }

    fn remove_export(&self, volume: Id) -> Result<Outcome> {
        self.act("remove_export")?;
        self.inner.remove_export(volume)
    }

    fn allow(&self, t: &ExportTarget, c: &Connector, mode: AttachMode) -> Result<Map<String, Value>> {
        self.act("allow")?;
        self.inner.allow(t, c, mode)
    }

    fn deny(&self, volume: Id, c: &Connector) -> Result<Outcome> {
        self.act("deny")?;
        self.inner.deny(volume, c)
    }

    fn list_exports(&self) -> Result<Vec<Id>> {
        if hit(Some(&self.name), "export.list_exports")? {
            return Ok(vec![Id::new()]);
        }
        self.inner.list_exports()
    }

    fn list_initiators(&self, volume: Id) -> Result<Vec<String>> {
        if hit(Some(&self.name), "export.list_initiators")? {
            return Ok(vec!["iqn.1994-05.com.example:made-up".into()]);
        }
        self.inner.list_initiators(volume)
    }

    fn check(&self) -> Result<()> {
        self.act("check")?;
        self.inner.check()
    }
}

//! Volume types: create, show, list, update, delete; extra specs; project access for
//! private types. A private type is invisible (404) to projects without access.

use std::collections::BTreeMap;

use crate::store::db::Connection;

use crate::error::{Error, Result};
use crate::ids::{Id, Timestamp};
use crate::model::VolumeType;
use crate::policy::rules;
use crate::store::types as st;
use crate::volume::{Caller, Core};

/// A type to create.
#[derive(Clone, Debug, Default)]
pub struct NewType {
    /// Unique name.
    pub name: String,
    /// Description.
    pub description: Option<String>,
    /// Public (default) or private.
    pub is_public: bool,
    /// Initial extra specs.
    pub extra_specs: BTreeMap<String, String>,
}

/// Changes to a type; `None` leaves a field as it is.
#[derive(Clone, Debug, Default)]
pub struct TypeUpdate {
    /// New name.
    pub name: Option<String>,
    /// New description.
    pub description: Option<String>,
    /// New visibility.
    pub is_public: Option<bool>,
}

/// The extra specs a non-admin may see (Cinder's user-visible keys).
const USER_VISIBLE_SPECS: &[&str] = &["RESKEY:availability_zones", "multiattach", "replication_enabled"];

/// Whether a non-admin may see an extra spec.
pub fn spec_visible_to_users(key: &str) -> bool {
    USER_VISIBLE_SPECS.contains(&key)
}

fn not_found(id: &str) -> Error {
    Error::NotFound(format!("Volume type {id} could not be found."))
}

impl Core {
    fn visible(&self, conn: &Connection, caller: &Caller, t: &VolumeType) -> Result<bool> {
        Ok(caller.is_admin || t.is_public || st::projects(conn, t.id)?.contains(&caller.project_id))
    }

    /// A type by id, if the caller may see it.
    pub fn type_in(&self, conn: &Connection, caller: &Caller, id: &str) -> Result<VolumeType> {
        let t = Id::parse(id).map(|i| st::get(conn, i)).transpose()?.flatten().ok_or_else(|| not_found(id))?;
        if self.visible(conn, caller, &t)? {
            Ok(t)
        } else {
            Err(not_found(id))
        }
    }

    /// A type by id or by name, if the caller may see it (volume create accepts both).
    pub fn type_by_name_or_id(&self, conn: &Connection, caller: &Caller, key: &str) -> Result<VolumeType> {
        let t = match Id::parse(key) {
            Some(id) => st::get(conn, id)?,
            None => None,
        };
        let t = match t {
            Some(t) => Some(t),
            None => st::get_by_name(conn, key)?,
        };
        match t {
            Some(t) if self.visible(conn, caller, &t)? => Ok(t),
            _ => Err(Error::NotFound(format!("Volume type with name {key} could not be found."))),
        }
    }

    /// The default type of a project: its own (3.62 default-types) if set, else the
    /// configured one.
    pub fn default_type_in(&self, conn: &Connection, project: &str) -> Result<VolumeType> {
        if let Some(t) = st::project_default(conn, project)?.map(|id| st::get(conn, id)).transpose()?.flatten() {
            return Ok(t);
        }
        st::get_by_name(conn, &self.config.default_volume_type)?.ok_or_else(|| {
            Error::Internal(format!("default volume type {} is missing", self.config.default_volume_type))
        })
    }

    /// Set a project's default type (admin).
    pub fn set_project_default_type(&self, caller: &Caller, project: &str, key: &str) -> Result<VolumeType> {
        caller.authorize(rules::DEFAULT_TYPE_SET, project)?;
        self.store.write(|tx| {
            let t = self.type_by_name_or_id(tx, caller, key)?;
            st::set_project_default(tx, project, t.id)?;
            Ok(t)
        })
    }

    /// A project's own default type (3.62); 404 when it has none.
    pub fn project_default_type(&self, caller: &Caller, project: &str) -> Result<Id> {
        caller.authorize(rules::DEFAULT_TYPE_GET, project)?;
        self.store
            .read(|tx| st::project_default(tx, project))?
            .ok_or_else(|| Error::NotFound(format!("Default type for project {project} could not be found.")))
    }

    /// Every project's own default type (admin).
    pub fn project_default_types(&self, caller: &Caller) -> Result<Vec<(String, Id)>> {
        caller.authorize_own(rules::DEFAULT_TYPE_GET_ALL)?;
        self.store.read(st::project_defaults)
    }

    /// Drop a project's own default type (admin).
    pub fn unset_project_default_type(&self, caller: &Caller, project: &str) -> Result<()> {
        caller.authorize(rules::DEFAULT_TYPE_UNSET, project)?;
        if self.store.write(|tx| st::unset_project_default(tx, project))? {
            Ok(())
        } else {
            Err(Error::NotFound(format!("Default type for project {project} could not be found.")))
        }
    }

    /// A type by name or id, if the caller may see it.
    pub fn find_type(&self, caller: &Caller, key: &str) -> Result<VolumeType> {
        caller.authorize_own(rules::TYPE_GET)?;
        self.store.read(|tx| self.type_by_name_or_id(tx, caller, key))
    }

    /// Show a type.
    pub fn get_type(&self, caller: &Caller, id: &str) -> Result<VolumeType> {
        caller.authorize_own(rules::TYPE_GET)?;
        self.store.read(|tx| self.type_in(tx, caller, id))
    }

    /// Show the caller's default type.
    pub fn default_type(&self, caller: &Caller) -> Result<VolumeType> {
        caller.authorize_own(rules::TYPE_GET)?;
        self.store.read(|tx| self.default_type_in(tx, &caller.project_id))
    }

    /// List the types the caller may see. `is_public`: `Some(true)` public only,
    /// `Some(false)` private only, `None` both (admins; others always get public ones
    /// plus private ones they have access to).
    pub fn list_types(&self, caller: &Caller, is_public: Option<bool>) -> Result<Vec<VolumeType>> {
        caller.authorize_own(rules::TYPE_GET_ALL)?;
        self.store.read(|tx| {
            let all = st::list(tx)?;
            if !caller.is_admin {
                let mine = st::accessible_to(tx, &caller.project_id)?;
                return Ok(all.into_iter().filter(|t| t.is_public || mine.contains(&t.id)).collect());
            }
            Ok(all.into_iter().filter(|t| is_public.is_none_or(|p| t.is_public == p)).collect())
        })
    }

    /// Create a type (admin).
    pub fn create_type(&self, caller: &Caller, new: NewType) -> Result<VolumeType> {
        caller.authorize_own(rules::TYPE_CREATE)?;
        self.store.write(|tx| {
            if st::get_by_name(tx, &new.name)?.is_some() {
                return Err(Error::Conflict(format!("Volume Type {} already exists.", new.name)));
            }
            let now = Timestamp::now();
            let t = VolumeType {
                id: Id::new(),
                name: new.name.clone(),
                description: new.description.clone(),
                is_public: new.is_public,
                extra_specs: new.extra_specs.clone(),
                qos_specs_id: None,
                created_at: now,
                updated_at: now,
            };
            st::insert(tx, &t)?;
            Ok(t)
        })
    }

    /// Update a type (admin).
    pub fn update_type(&self, caller: &Caller, id: &str, upd: TypeUpdate) -> Result<VolumeType> {
        caller.authorize_own(rules::TYPE_UPDATE)?;
        self.store.write(|tx| {
            let mut t = self.type_in(tx, caller, id)?;
            if let Some(name) = upd.name.clone() {
                if name != t.name {
                    if t.name == self.config.default_volume_type {
                        return Err(Error::Invalid("The default volume type cannot be renamed.".into()));
                    }
                    if st::get_by_name(tx, &name)?.is_some() {
                        return Err(Error::Conflict(format!("Volume Type {name} already exists.")));
                    }
                    t.name = name;
                }
            }
            if let Some(d) = upd.description.clone() {
                t.description = Some(d);
            }
            if let Some(p) = upd.is_public {
                t.is_public = p;
            }
            t.updated_at = Timestamp::now();
            st::save(tx, &t)?;
            Ok(t)
        })
    }

    /// Delete a type (admin); refused while volumes use it or when it is the default.
    pub fn delete_type(&self, caller: &Caller, id: &str) -> Result<()> {
        caller.authorize_own(rules::TYPE_DELETE)?;
        self.store.write(|tx| {
            let t = self.type_in(tx, caller, id)?;
            if t.name == self.config.default_volume_type {
                return Err(Error::Invalid("Default volume type can not be deleted.".into()));
            }
            if st::default_for_projects(tx, t.id)? > 0 {
                return Err(Error::Invalid(format!(
                    "Volume type {} is the default type of a project; unset that first.",
                    t.id
                )));
            }
            if crate::store::groups::groups_allowing_volume_type(tx, t.id)? > 0 {
                return Err(Error::Invalid(format!(
                    "Target volume type is still in use. Volume type {} is used by groups.",
                    t.id
                )));
            }
            if st::volume_count(tx, t.id)? > 0 {
                return Err(Error::Invalid(format!(
                    "Target volume type is still in use. Volume type {} is used by volumes.",
                    t.id
                )));
            }
            st::delete(tx, t.id)
        })
    }

    /// Add or overwrite extra specs (admin); returns the given ones.
    pub fn set_extra_specs(
        &self,
        caller: &Caller,
        id: &str,
        specs: BTreeMap<String, String>,
        one_key: bool,
    ) -> Result<BTreeMap<String, String>> {
        caller.authorize_own(if one_key { rules::EXTRA_SPECS_UPDATE } else { rules::EXTRA_SPECS_CREATE })?;
        self.store.write(|tx| {
            let t = self.type_in(tx, caller, id)?;
            st::set_specs(tx, t.id, &specs)?;
            Ok(specs.clone())
        })
    }

    /// Remove one extra spec (admin).
    pub fn delete_extra_spec(&self, caller: &Caller, id: &str, key: &str) -> Result<()> {
        caller.authorize_own(rules::EXTRA_SPECS_DELETE)?;
        self.store.write(|tx| {
            let t = self.type_in(tx, caller, id)?;
            if st::delete_spec(tx, t.id, key)? {
                Ok(())
            } else {
                Err(Error::NotFound(format!("Volume Type {id} has no extra specs with key {key}.")))
            }
        })
    }

    /// The projects with access to a private type (admin).
    pub fn type_access(&self, caller: &Caller, id: &str) -> Result<(VolumeType, Vec<String>)> {
        caller.authorize_own(rules::TYPE_ACCESS_GET_ALL_FOR_TYPE)?;
        self.store.read(|tx| {
            let t = self.type_in(tx, caller, id)?;
            if t.is_public {
                return Err(Error::NotFound("Access list not available for public volume types.".into()));
            }
            let p = st::projects(tx, t.id)?;
            Ok((t, p))
        })
    }

    /// Give or take a project's access to a private type (admin).
    pub fn set_type_access(&self, caller: &Caller, id: &str, project: &str, grant: bool) -> Result<()> {
        caller.authorize_own(if grant { rules::TYPE_ADD_PROJECT_ACCESS } else { rules::TYPE_REMOVE_PROJECT_ACCESS })?;
        self.store.write(|tx| {
            let t = self.type_in(tx, caller, id)?;
            if t.is_public {
                return Err(Error::Invalid(
                    "Invalid volume type: Type access modification is not applicable to public volume type.".into(),
                ));
            }
            if grant {
                if !st::add_project(tx, t.id, project)? {
                    return Err(Error::Conflict(format!(
                        "Volume type access for {id}/{project} combination already exists."
                    )));
                }
            } else if !st::remove_project(tx, t.id, project)? {
                return Err(Error::NotFound(format!("Volume type access not found for {id}/{project} combination.")));
            }
            Ok(())
        })
    }
}

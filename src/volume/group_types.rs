//! Group types (3.11): what kind of group a generic volume group is. Create, show,
//! list, update, delete (admin), their group specs, and the configured default.
//!
//! As in Cinder, a private group type is visible to admins only (Cinder has no API to
//! grant a project access to one), and listing or showing group types needs no policy
//! rule, only an authenticated caller.

use std::collections::BTreeMap;

use crate::store::db::Connection;

use crate::error::{Error, Result};
use crate::ids::{Id, Timestamp};
use crate::model::GroupType;
use crate::policy::rules;
use crate::query::GroupQuery;
use crate::store::groups as sg;
use crate::volume::{Caller, Core};

/// A group type to create.
#[derive(Clone, Debug, Default)]
pub struct NewGroupType {
    /// Unique name.
    pub name: String,
    /// Description.
    pub description: Option<String>,
    /// Public (default) or private.
    pub is_public: bool,
    /// Initial group specs.
    pub group_specs: BTreeMap<String, String>,
}

/// Changes to a group type; `None` leaves a field as it is.
#[derive(Clone, Debug, Default)]
pub struct GroupTypeUpdate {
    /// New name.
    pub name: Option<String>,
    /// New description.
    pub description: Option<String>,
    /// New visibility.
    pub is_public: Option<bool>,
}

fn not_found(id: &str) -> Error {
    Error::NotFound(format!("Group type {id} could not be found."))
}

impl Core {
    /// A group type by id, if the caller may see it.
    pub fn group_type_in(&self, conn: &Connection, caller: &Caller, id: &str) -> Result<GroupType> {
        match Id::parse(id).map(|i| sg::get_type(conn, i)).transpose()?.flatten() {
            Some(t) if t.is_public || caller.is_admin => Ok(t),
            _ => Err(not_found(id)),
        }
    }

    /// A group type by id or by name (group create accepts both), if the caller may
    /// see it.
    pub fn group_type_by_name_or_id(&self, conn: &Connection, caller: &Caller, key: &str) -> Result<GroupType> {
        let t = match Id::parse(key).map(|i| sg::get_type(conn, i)).transpose()?.flatten() {
            Some(t) => Some(t),
            None => sg::get_type_by_name(conn, key)?,
        };
        match t {
            Some(t) if t.is_public || caller.is_admin => Ok(t),
            _ if Id::parse(key).is_some() => Err(not_found(key)),
            _ => Err(Error::NotFound(format!("Group type with name {key} could not be found."))),
        }
    }

    /// Show a group type.
    pub fn get_group_type(&self, caller: &Caller, id: &str) -> Result<GroupType> {
        self.store.read(|tx| self.group_type_in(tx, caller, id))
    }

    /// The configured default group type (`default_group_type`); 404 when none is
    /// configured or it does not exist.
    pub fn default_group_type(&self) -> Result<GroupType> {
        let missing = || Error::NotFound("Default group type can not be found.".into());
        let name = self.config.default_group_type.as_deref().ok_or_else(missing)?;
        self.store.read(|tx| sg::get_type_by_name(tx, name))?.ok_or_else(missing)
    }

    /// List group types: non-admins see public ones only; admins choose with
    /// `is_public` (`None`: all).
    pub fn list_group_types(
        &self,
        caller: &Caller,
        mut q: GroupQuery,
        is_public: Option<bool>,
    ) -> Result<Vec<GroupType>> {
        let is_public = if caller.is_admin { is_public } else { Some(true) };
        if let Some(p) = is_public {
            q.exact.push(("is_public", if p { "1" } else { "0" }.into()));
        }
        self.store.read(|tx| sg::list_types(tx, &q))
    }

    /// Create a group type (admin).
    pub fn create_group_type(&self, caller: &Caller, new: NewGroupType) -> Result<GroupType> {
        caller.authorize_own(rules::GROUP_TYPE_CREATE)?;
        self.store.write(|tx| {
            if sg::get_type_by_name(tx, &new.name)?.is_some() {
                return Err(Error::Conflict(format!("Group Type {} already exists.", new.name)));
            }
            let now = Timestamp::now();
            let t = GroupType {
                id: Id::new(),
                name: new.name.clone(),
                description: new.description.clone(),
                is_public: new.is_public,
                group_specs: new.group_specs.clone(),
                created_at: now,
                updated_at: now,
            };
            sg::insert_type(tx, &t)?;
            Ok(t)
        })
    }

    /// Update a group type (admin).
    pub fn update_group_type(&self, caller: &Caller, id: &str, upd: GroupTypeUpdate) -> Result<GroupType> {
        caller.authorize_own(rules::GROUP_TYPE_UPDATE)?;
        self.store.write(|tx| {
            let mut t = self.group_type_in(tx, caller, id)?;
            if let Some(name) = upd.name.clone() {
                if name != t.name {
                    if sg::get_type_by_name(tx, &name)?.is_some() {
                        return Err(Error::Conflict(format!("Group Type {name} already exists.")));
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
            sg::save_type(tx, &t)?;
            Ok(t)
        })
    }

    /// Delete a group type (admin); refused while groups have it.
    pub fn delete_group_type(&self, caller: &Caller, id: &str) -> Result<()> {
        caller.authorize_own(rules::GROUP_TYPE_DELETE)?;
        self.store.write(|tx| {
            let t = self.group_type_in(tx, caller, id)?;
            if sg::groups_of_type(tx, t.id)? > 0 {
                return Err(Error::Invalid(format!(
                    "Target group type is still in use. Group Type {} deletion is not allowed with groups present \
                     with the type.",
                    t.id
                )));
            }
            sg::delete_type(tx, t.id)
        })
    }

    /// A group type's specs (admin).
    pub fn group_specs(&self, caller: &Caller, id: &str) -> Result<BTreeMap<String, String>> {
        caller.authorize_own(rules::GROUP_SPECS_GET_ALL)?;
        Ok(self.store.read(|tx| self.group_type_in(tx, caller, id))?.group_specs)
    }

    /// One group spec (admin).
    pub fn group_spec(&self, caller: &Caller, id: &str, key: &str) -> Result<String> {
        caller.authorize_own(rules::GROUP_SPECS_GET)?;
        let t = self.store.read(|tx| self.group_type_in(tx, caller, id))?;
        t.group_specs
            .get(key)
            .cloned()
            .ok_or_else(|| Error::NotFound(format!("Group Type {id} has no extra spec with key {key}.")))
    }

    /// Add or overwrite group specs (admin); `one_key` for `PUT .../group_specs/{key}`.
    pub fn set_group_specs(
        &self,
        caller: &Caller,
        id: &str,
        specs: BTreeMap<String, String>,
        one_key: bool,
    ) -> Result<BTreeMap<String, String>> {
        caller.authorize_own(if one_key { rules::GROUP_SPECS_UPDATE } else { rules::GROUP_SPECS_CREATE })?;
        self.store.write(|tx| {
            let t = self.group_type_in(tx, caller, id)?;
            sg::set_specs(tx, t.id, &specs)?;
            Ok(specs.clone())
        })
    }

    /// Remove one group spec (admin).
    pub fn delete_group_spec(&self, caller: &Caller, id: &str, key: &str) -> Result<()> {
        caller.authorize_own(rules::GROUP_SPECS_DELETE)?;
        self.store.write(|tx| {
            let t = self.group_type_in(tx, caller, id)?;
            if sg::delete_spec(tx, t.id, key)? {
                Ok(())
            } else {
                Err(Error::NotFound(format!("Group Type {id} has no specs with key {key}.")))
            }
        })
    }
}

//! Volume type encryption (admin), and the encryption metadata of a volume.
//!
//! hearth never encrypts data itself. A type's encryption tells the compute host how
//! to encrypt the type's volumes, as with Cinder's LVM driver: the volume says
//! `encrypted: true`, so does its `connection_info`, and Nova's encryptor (os-brick's
//! LUKS or plain dm-crypt) asks `GET /volumes/{id}/encryption` for the provider,
//! cipher, key size and key id, and sets up dm-crypt on the host.
//!
//! **The key.** Cinder asks its key manager for a key for each new encrypted volume.
//! hearth has no key manager service; it behaves as Cinder does with its fixed-key
//! manager (`ConfKeyManager`): every encrypted volume's `encryption_key_id` is that
//! manager's one id, `00000000-0000-0000-0000-000000000000`, and the key itself is
//! the compute hosts' `[key_manager] fixed_key` (Nova's `ConfKeyManager` resolves the
//! id to it). hearth never holds or sees key material. A key id of `null` would not
//! do: Cinder's views and `connection_info` call a volume encrypted only when it has
//! a key id, and Nova cannot attach an encrypted volume without one. (Cinder with its
//! default Barbican manager and no Barbican refuses such volumes with "Key manager
//! error"; clouds with Barbican cannot use hearth's encrypted types.)
//!
//! As Cinder: a type's encryption cannot be created, changed or deleted while
//! volumes of the type exist; a type with encryption but no cipher cannot make
//! volumes; an encrypted type cannot be multiattach.

use crate::store::db::Connection;
use serde_json::{json, Map, Value};

use crate::error::{Error, Result};
use crate::ids::{Id, Timestamp};
use crate::model::{ControlLocation, TypeEncryption, VolumeType};
use crate::policy::rules;
use crate::store::{encryption as se, types as st};
use crate::volume::{Caller, Core};

/// The key id of every encrypted volume: Cinder's fixed-key manager's only id.
pub const FIXED_KEY_ID: Id = Id::nil();

/// Encryption fields as a request gives them; `None`: not given.
#[derive(Clone, Debug, Default)]
pub struct EncryptionSpec {
    /// The encryptor.
    pub provider: Option<String>,
    /// The cipher (`Some(None)`: given as null).
    pub cipher: Option<Option<String>>,
    /// The key size in bits (`Some(None)`: given as null).
    pub key_size: Option<Option<u64>>,
    /// Where the encryption happens.
    pub control_location: Option<ControlLocation>,
}

fn no_encryption(type_id: &str) -> Error {
    Error::NotFound(format!("Volume type encryption for type {type_id} does not exist."))
}

/// The key id a new volume of type `t` gets, and the checks Cinder makes before it
/// asks its key manager: a cipher is needed, and multiattach cannot go with
/// encryption.
pub fn key_for_new_volume(conn: &Connection, t: &VolumeType) -> Result<Option<Id>> {
    let Some(e) = se::get(conn, t.id)? else { return Ok(None) };
    if e.cipher.as_deref().is_none_or(str::is_empty) {
        return Err(Error::Invalid(format!(
            "Invalid volume type: the encryption of volume type {} names no cipher.",
            t.id
        )));
    }
    if t.multiattach() {
        return Err(Error::InvalidState("Invalid volume: Multiattach cannot be used with encrypted volumes.".into()));
    }
    Ok(Some(FIXED_KEY_ID))
}

/// Whether a volume may change from type `old` to `new` in place (retype), as far as
/// encryption goes: Cinder migrates a volume whose encryption changes (its data must
/// be copied through dm-crypt), which hearth does not do; and an encrypted type
/// cannot be multiattach.
pub fn check_retype(conn: &Connection, old: &VolumeType, new: &VolumeType) -> Result<()> {
    /// What an encryptor uses: provider, cipher, key size, control location.
    type Fields = (String, Option<String>, Option<u64>, ControlLocation);
    let fields = |t: &VolumeType| -> Result<Option<Fields>> {
        Ok(se::get(conn, t.id)?.map(|e| (e.provider, e.cipher, e.key_size, e.control_location)))
    };
    let (before, after) = (fields(old)?, fields(new)?);
    if after.is_some() && new.multiattach() {
        return Err(Error::Invalid(
            "Invalid input received: Retype requested both encryption and multi-attach, which is not supported.".into(),
        ));
    }
    if before != after {
        return Err(Error::Invalid(format!(
            "Invalid input received: retyping from {} to {} changes the encryption, which needs the volume's \
             data copied to a new volume; hearth does not migrate volumes.",
            old.name, new.name
        )));
    }
    Ok(())
}

impl Core {
    /// A type by id that the caller may see, and whether volumes use it.
    fn encryption_type(&self, conn: &Connection, caller: &Caller, type_id: &str) -> Result<(VolumeType, bool)> {
        let t = self.type_in(conn, caller, type_id)?;
        let in_use = st::volume_count(conn, t.id)? > 0;
        Ok((t, in_use))
    }

    /// A type's encryption, `None` when it has none (admin).
    pub fn type_encryption(&self, caller: &Caller, type_id: &str) -> Result<Option<TypeEncryption>> {
        caller.authorize_own(rules::TYPE_ENCRYPTION_GET)?;
        self.store.read(|tx| {
            let t = self.type_in(tx, caller, type_id)?;
            se::get(tx, t.id)
        })
    }

    /// Give a type encryption (admin): `provider` and `control_location` are needed.
    pub fn create_type_encryption(
        &self,
        caller: &Caller,
        type_id: &str,
        spec: EncryptionSpec,
    ) -> Result<TypeEncryption> {
        caller.authorize_own(rules::TYPE_ENCRYPTION_CREATE)?;
        let (Some(provider), Some(control_location)) = (spec.provider, spec.control_location) else {
            return Err(Error::Invalid(
                "Invalid input for field/attribute encryption: 'provider' and 'control_location' are required \
                 properties."
                    .into(),
            ));
        };
        self.store.write(|tx| {
            let (t, in_use) = self.encryption_type(tx, caller, type_id)?;
            if in_use {
                return Err(Error::InvalidState("Cannot create encryption specs. Volume type in use.".into()));
            }
            if se::get(tx, t.id)?.is_some() {
                return Err(Error::Invalid(format!("Volume type encryption for type {} already exists.", t.id)));
            }
            let e = TypeEncryption {
                volume_type_id: t.id,
                encryption_id: Id::new(),
                provider: provider.clone(),
                cipher: spec.cipher.clone().flatten(),
                key_size: spec.key_size.flatten(),
                control_location,
                created_at: Timestamp::now(),
                updated_at: None,
            };
            se::put(tx, &e)?;
            Ok(e)
        })
    }

    /// Change a type's encryption (admin): the given fields only.
    pub fn update_type_encryption(
        &self,
        caller: &Caller,
        type_id: &str,
        spec: EncryptionSpec,
    ) -> Result<TypeEncryption> {
        caller.authorize_own(rules::TYPE_ENCRYPTION_UPDATE)?;
        self.store.write(|tx| {
            let (t, in_use) = self.encryption_type(tx, caller, type_id)?;
            if in_use {
                return Err(Error::InvalidState("Cannot update encryption specs. Volume type in use.".into()));
            }
            let mut e = se::get(tx, t.id)?.ok_or_else(|| no_encryption(type_id))?;
            if let Some(p) = spec.provider.clone() {
                e.provider = p;
            }
            if let Some(c) = spec.cipher.clone() {
                e.cipher = c;
            }
            if let Some(k) = spec.key_size {
                e.key_size = k;
            }
            if let Some(l) = spec.control_location {
                e.control_location = l;
            }
            e.updated_at = Some(Timestamp::now());
            se::put(tx, &e)?;
            Ok(e)
        })
    }

    /// Take a type's encryption away (admin).
    pub fn delete_type_encryption(&self, caller: &Caller, type_id: &str) -> Result<()> {
        caller.authorize_own(rules::TYPE_ENCRYPTION_DELETE)?;
        self.store.write(|tx| {
            // As Cinder: an unknown type has no encryption to delete.
            let t = match self.type_in(tx, caller, type_id) {
                Ok(t) => t,
                Err(Error::NotFound(_)) => return Err(no_encryption(type_id)),
                Err(e) => return Err(e),
            };
            if st::volume_count(tx, t.id)? > 0 {
                return Err(Error::InvalidState("Cannot delete encryption specs. Volume type in use.".into()));
            }
            if se::delete(tx, t.id)? {
                Ok(())
            } else {
                Err(no_encryption(type_id))
            }
        })
    }

    /// `GET /volumes/{id}/encryption`: what the compute host's encryptor needs
    /// (`encryption_key_id`, and for an encrypted type `provider`, `cipher`,
    /// `key_size`, `control_location`).
    pub fn volume_encryption_metadata(&self, caller: &Caller, id: &str) -> Result<Map<String, Value>> {
        self.store.read(|tx| {
            let v = self.volume_in(tx, caller, id, rules::VOLUME_ENCRYPTION_METADATA)?;
            let mut out = Map::new();
            out.insert("encryption_key_id".into(), json!(v.encryption_key_id.map(|k| k.to_string())));
            if let Some(e) = se::get(tx, v.volume_type_id)? {
                out.insert("control_location".into(), json!(e.control_location.as_str()));
                out.insert("cipher".into(), json!(e.cipher));
                out.insert("key_size".into(), json!(e.key_size));
                out.insert("provider".into(), json!(e.provider));
            }
            Ok(out)
        })
    }
}

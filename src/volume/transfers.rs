//! Volume transfers: a project offers one of its volumes, and a member of another
//! project who was given the transfer's id and auth key accepts it.
//!
//! 1. Create: the volume must be `available`, with no attachments and, unless
//!    `no_snapshots`, only available snapshots. The transfer is recorded and the
//!    volume becomes `awaiting-transfer`; the auth key is returned this once.
//! 2. Delete: the record goes, and an `awaiting-transfer` volume is `available` again.
//! 3. Accept: the key must match; the accepter's quota must hold the volume (and the
//!    snapshots that go with it); the volume and those snapshots then belong to the
//!    accepter's project and user, the volume is `available`, and the record goes.
//!
//! Each step is one store transaction: a crash leaves all of it or none, so an offered
//! volume always has its record and a moved one always has its new owner. Quota usage
//! is counted from the records (see [`crate::store::quotas`]), so moving the records
//! moves the usage with them. The key is kept only as a salted SHA-256
//! ([`AuthKeyHash`]) and never logged.

use crate::store::db::Connection;

use crate::error::{Error, Result};
use crate::ids::{random_token, Id, Timestamp};
use crate::model::{AuthKeyHash, SnapshotStatus, Transfer, VolumeStatus};
use crate::policy::rules;
use crate::query::ColumnQuery;
use crate::store::{snapshots as ss, transfers as st, volumes as sv};
use crate::volume::quotas::{snapshot_needs, volume_needs};
use crate::volume::{Caller, Core};

/// Characters in an auth key ([A-Za-z0-9]: about 95 bits).
const AUTH_KEY_LEN: usize = 16;

/// Characters in a key's salt.
const SALT_LEN: usize = 16;

/// A transfer to create.
#[derive(Clone, Debug, Default)]
pub struct NewTransfer {
    /// The volume to offer.
    pub volume_id: String,
    /// Display name.
    pub name: Option<String>,
    /// Leave the volume's snapshots behind (3.55).
    pub no_snapshots: bool,
}

/// A transfer just created, with the auth key its creator passes on to the accepter.
pub struct Offered {
    /// The record.
    pub transfer: Transfer,
    /// The key, in clear: shown in the create response only.
    pub auth_key: String,
}

fn not_found(id: &str) -> Error {
    Error::NotFound(format!("Transfer {id} could not be found."))
}

fn load(conn: &Connection, id: &str) -> Result<Transfer> {
    let tid = Id::parse(id).ok_or_else(|| not_found(id))?;
    st::get(conn, tid)?.ok_or_else(|| not_found(id))
}

impl Core {
    /// A transfer the caller may see: its own project's, any for an admin (404
    /// otherwise, as for volumes).
    fn transfer_in(&self, conn: &Connection, caller: &Caller, id: &str) -> Result<Transfer> {
        let t = load(conn, id)?;
        if caller.is_admin || t.source_project_id == caller.project_id {
            Ok(t)
        } else {
            Err(not_found(id))
        }
    }

    /// Offer a volume for transfer (step 1).
    pub fn create_transfer(&self, caller: &Caller, req: NewTransfer) -> Result<Offered> {
        let offered = self.store.write(|tx| {
            let mut v = self.volume_in(tx, caller, &req.volume_id, rules::TRANSFER_CREATE)?;
            if v.status != VolumeStatus::Available {
                return Err(Error::InvalidState(format!(
                    "Invalid volume: status must be available, but volume {} is {}.",
                    v.id, v.status
                )));
            }
            if !v.attachments.is_empty() {
                return Err(Error::InvalidState(format!(
                    "Invalid volume: Volume {} has {} attachment(s); delete them before transferring it.",
                    v.id,
                    v.attachments.len()
                )));
            }
            if !req.no_snapshots {
                if let Some(s) = ss::of_volume(tx, v.id)?.iter().find(|s| s.status != SnapshotStatus::Available) {
                    return Err(Error::InvalidState(format!(
                        "Invalid snapshot: snapshot: {} status must be available, but it is {}.",
                        s.id, s.status
                    )));
                }
            }
            if let Some(stale) = st::of_volume(tx, v.id)? {
                // The volume left awaiting-transfer without it (an admin reset its
                // status): that offer is void, and a volume has one offer at most.
                log::warn!("transfer {} of volume {} is replaced: the volume was no longer offered", stale.id, v.id);
                st::delete(tx, stale.id)?;
            }
            let auth_key = random_token(AUTH_KEY_LEN);
            let t = Transfer {
                id: Id::new(),
                volume_id: v.id,
                name: req.name.clone(),
                source_project_id: v.project_id.clone(),
                no_snapshots: req.no_snapshots,
                auth: AuthKeyHash::new(random_token(SALT_LEN), &auth_key),
                created_at: Timestamp::now(),
            };
            st::insert(tx, &t)?;
            v.status = VolumeStatus::AwaitingTransfer;
            v.updated_at = t.created_at;
            sv::save(tx, &v)?;
            Ok(Offered { transfer: t, auth_key })
        })?;
        let t = &offered.transfer;
        log::info!("transfer {} offers volume {} of project {}", t.id, t.volume_id, t.source_project_id);
        Ok(offered)
    }

    /// Show a transfer.
    pub fn get_transfer(&self, caller: &Caller, id: &str) -> Result<Transfer> {
        caller.authorize_own(rules::TRANSFER_GET)?;
        self.store.read(|tx| self.transfer_in(tx, caller, id))
    }

    /// List transfers: the caller's project's, or every project's for an admin who
    /// asks for all (then `query.project` may narrow it to one).
    pub fn list_transfers(&self, caller: &Caller, mut query: ColumnQuery, all_tenants: bool) -> Result<Vec<Transfer>> {
        caller.authorize_own(rules::TRANSFER_GET_ALL)?;
        if !(caller.is_admin && all_tenants) {
            query.project = Some(caller.project_id.clone());
        }
        self.store.read(|tx| st::list(tx, &query))
    }

    /// Withdraw an offer (step 2). A volume no longer `awaiting-transfer` (an admin
    /// reset it) keeps its status.
    pub fn delete_transfer(&self, caller: &Caller, id: &str) -> Result<()> {
        let t = self.store.write(|tx| {
            let t = self.transfer_in(tx, caller, id)?;
            caller.authorize(rules::TRANSFER_DELETE, &t.source_project_id)?;
            if let Some(mut v) = sv::get(tx, t.volume_id)? {
                if v.status == VolumeStatus::AwaitingTransfer {
                    v.status = VolumeStatus::Available;
                    v.updated_at = Timestamp::now();
                    sv::save(tx, &v)?;
                } else {
                    log::warn!("transfer {}: volume {} is {}, not awaiting-transfer; left so", t.id, v.id, v.status);
                }
            }
            st::delete(tx, t.id)?;
            Ok(t)
        })?;
        log::info!("transfer {} of volume {} deleted", t.id, t.volume_id);
        Ok(())
    }

    /// Accept a transfer (step 3) into the caller's project. Any project's transfer:
    /// the key is the proof, and policy is checked on the caller's own project.
    pub fn accept_transfer(&self, caller: &Caller, id: &str, auth_key: &str) -> Result<Transfer> {
        caller.authorize_own(rules::TRANSFER_ACCEPT)?;
        let to = caller.project_id.as_str();
        let (t, moved) = self.store.write(|tx| {
            let t = load(tx, id)?;
            if !t.auth.matches(auth_key) {
                return Err(Error::Invalid(format!(
                    "Invalid auth key: Attempt to transfer {} with invalid auth key.",
                    t.id
                )));
            }
            let mut v = sv::get(tx, t.volume_id)?
                .ok_or_else(|| Error::Internal(format!("transfer {} names no volume record", t.id)))?;
            let snapshots = if t.no_snapshots { Vec::new() } else { ss::of_volume(tx, v.id)? };
            if v.project_id != to {
                self.check_per_volume_size(tx, to, v.size)?;
                // A snapshot has its volume's type: hearth does not retype.
                let mut needs = volume_needs(v.size, &v.volume_type_name, 1);
                for s in &snapshots {
                    needs.extend(snapshot_needs(s.size, &v.volume_type_name));
                }
                self.check_quota(tx, to, &needs)?;
            }
            if v.status != VolumeStatus::AwaitingTransfer {
                return Err(Error::InvalidState(format!(
                    "Invalid volume: Transfer {}: Volume id {} expected in awaiting-transfer state, but it is {}.",
                    t.id, v.id, v.status
                )));
            }
            if let Some(s) = snapshots.iter().find(|s| s.status != SnapshotStatus::Available) {
                return Err(Error::InvalidState(format!(
                    "Invalid snapshot: Transfer {}: Snapshot {} is not in the expected available state (it is {}).",
                    t.id, s.id, s.status
                )));
            }
            let now = Timestamp::now();
            for s in &snapshots {
                ss::set_owner(tx, s.id, to, &caller.user_id, now)?;
            }
            v.status = VolumeStatus::Available;
            v.updated_at = now;
            sv::save(tx, &v)?;
            sv::set_owner(tx, v.id, to, &caller.user_id)?;
            st::delete(tx, t.id)?;
            Ok((t, snapshots.len()))
        })?;
        log::info!(
            "transfer {} accepted: volume {} and {moved} snapshot(s) moved from project {} to project {to}",
            t.id,
            t.volume_id,
            t.source_project_id
        );
        Ok(t)
    }
}

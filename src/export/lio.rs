//! The `lio` export (Cinder's `target_helper = lioadm`): iSCSI through the kernel's
//! LIO target, driven by writing configfs directly, as rtslib does, without
//! targetcli and without `/etc/target/saveconfig.json`.
//!
//! One volume is one iSCSI target, `<target_prefix>volume-<uuid>`, with:
//!
//! ```text
//! core/iblock_0/volume-<uuid>            backstore (fileio_0 for the file backend)
//! iscsi/<iqn>/tpgt_1                     TPG 1, attrib/authentication = 1, enable = 1
//! iscsi/<iqn>/tpgt_1/lun/lun_0/…         LUN 0 → the backstore (symlink)
//! iscsi/<iqn>/tpgt_1/np/<ip>:<port>      one network portal per configured address
//! iscsi/<iqn>/tpgt_1/acls/<initiator>    one ACL per host: lun_0 → LUN 0, CHAP in auth/,
//!                                        lun_0/write_protect for read-only attachments
//! ```
//!
//! Every operation is idempotent: directories are made when missing and removed when
//! present, attributes are written only when they differ (so re-exporting a live
//! target, as start-up does, never disturbs a logged-in initiator). Operations on one
//! volume are serialised by a lock of that volume alone; nothing holds a global lock
//! across configfs work. Only names that start with hearth's target prefix and
//! `volume-` are ever touched.
//!
//! The configfs root is a setting, so this module runs unchanged on a temporary
//! directory in tests. Real configfs differs from a plain directory in two ways that
//! matter: `mkdir` of a group makes its default groups and attribute files, and `rmdir`
//! of a group removes them. On a directory that is not configfs, [`remove_group`]
//! therefore clears attribute files and empty default groups first, and refuses, as
//! configfs does, while a link (a LUN mapping) is still inside.

use std::collections::HashMap;
use std::fmt;
use std::fs;
use std::io;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde_json::{json, Map, Value};

use crate::backend::Outcome;
use crate::error::{Error, Result};
use crate::export::{Connector, Export, ExportTarget};
use crate::ids::Id;
use crate::model::AttachMode;
use crate::names;

/// `statfs` magic of configfs.
const CONFIGFS_MAGIC: nix::libc::__fsword_t = 0x6265_6570;

/// Cinder's default `target_prefix`.
pub const DEFAULT_TARGET_PREFIX: &str = "iqn.2010-10.org.openstack:";

/// The configfs directory of LIO.
pub const DEFAULT_CONFIGFS_PATH: &str = "/sys/kernel/config/target";

/// Which LIO backstore a volume's data sits behind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backstore {
    /// A block device (an LV).
    Iblock,
    /// A regular file (the file backend).
    Fileio,
}

impl Backstore {
    /// The HBA directory under `core/`.
    fn hba(self) -> &'static str {
        match self {
            Backstore::Iblock => "iblock_0",
            Backstore::Fileio => "fileio_0",
        }
    }
}

/// One network portal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Portal {
    /// The address.
    pub ip: IpAddr,
    /// The TCP port.
    pub port: u16,
}

impl fmt::Display for Portal {
    /// `ip:port`, IPv6 bracketed: the form of both configfs `np/` names and
    /// os-brick's `target_portal`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.ip {
            IpAddr::V4(ip) => write!(f, "{ip}:{}", self.port),
            IpAddr::V6(ip) => write!(f, "[{ip}]:{}", self.port),
        }
    }
}

/// What the `lio` export needs to know.
#[derive(Clone, Debug)]
pub struct LioSettings {
    /// LIO's configfs directory (`/sys/kernel/config/target`).
    pub root: PathBuf,
    /// The IQN prefix of targets.
    pub target_prefix: String,
    /// The portals; the first is the primary (`target_portal`).
    pub portals: Vec<Portal>,
    /// The backstore kind of this backend's volumes.
    pub backstore: Backstore,
}

/// Exports volumes over iSCSI through LIO.
pub struct LioExport {
    s: LioSettings,
    locks: Mutex<HashMap<Id, Arc<Mutex<()>>>>,
    /// Held while a portal is made or removed and while a TPG is disabled: the kernel
    /// shares one listening socket (and its login thread) among every TPG with the
    /// same portal; a portal made while that thread is being reset (by another TPG's
    /// portal removal or disabling) binds a second socket and is refused. Measured in
    /// the VM tier's guest: one portal made in twenty was refused while another TPG
    /// on the address was disabled and enabled, or lost its portal, in a loop.
    portal_lock: Mutex<()>,
}

fn cfs_err(what: &str, path: &Path, e: io::Error) -> Error {
    Error::Backend(format!("lio: cannot {what} {}: {e}", path.display()))
}

/// Whether `name` is an iSCSI name LIO accepts as an ACL directory.
pub fn valid_iscsi_name(name: &str) -> bool {
    (name.starts_with("iqn.") || name.starts_with("eui.") || name.starts_with("naa."))
        && name.len() <= 223
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b".:-_".contains(&b))
}

/// An attribute's value without the trailing newline configfs shows; `None` when
/// the attribute does not exist.
fn read_attr(path: &Path) -> Result<Option<String>> {
    match fs::read_to_string(path) {
        Ok(s) => Ok(Some(s.trim_end_matches(['\n', '\0']).to_string())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(cfs_err("read", path, e)),
    }
}

/// Write an attribute, exactly `value` (no newline: LIO keeps one as part of a
/// CHAP secret). On a plain directory the attribute's group is made first.
fn write_attr(path: &Path, value: &str) -> Result<()> {
    match fs::write(path, value) {
        Err(e) if e.kind() == io::ErrorKind::NotFound && path.parent().is_some_and(|p| !p.exists()) => {
            let parent = path.parent().expect("checked above");
            fs::create_dir_all(parent).map_err(|e| cfs_err("create", parent, e))?;
            fs::write(path, value).map_err(|e| cfs_err("write", path, e))
        }
        r => r.map_err(|e| cfs_err("write", path, e)),
    }
}

/// Write an attribute only when it shows another value; true when written.
fn set_attr(path: &Path, value: &str) -> Result<bool> {
    if read_attr(path)?.as_deref() == Some(value) {
        return Ok(false);
    }
    write_attr(path, value)?;
    Ok(true)
}

/// Make a group (and its parents) unless it exists; true when made.
fn make_group(path: &Path) -> Result<bool> {
    if path.is_dir() {
        return Ok(false);
    }
    match fs::create_dir_all(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(cfs_err("create", path, e)),
    }
}

/// Link `link` to `target` unless a link is there; true when made.
fn make_link(target: &Path, link: &Path) -> Result<bool> {
    if link.symlink_metadata().is_ok() {
        return Ok(false);
    }
    match std::os::unix::fs::symlink(target, link) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(cfs_err(&format!("link {} to", target.display()), link, e)),
    }
}

/// Remove every link directly inside `dir`.
fn remove_links_in(dir: &Path) -> Result<()> {
    for entry in entries(dir)? {
        let p = dir.join(&entry);
        if p.symlink_metadata().is_ok_and(|m| m.file_type().is_symlink()) {
            match fs::remove_file(&p) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(cfs_err("unlink", &p, e)),
            }
        }
    }
    Ok(())
}

/// The names in a directory; none when it does not exist.
fn entries(dir: &Path) -> Result<Vec<String>> {
    let rd = match fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(cfs_err("list", dir, e)),
    };
    let mut names = Vec::new();
    for entry in rd {
        let entry = entry.map_err(|e| cfs_err("list", dir, e))?;
        if let Some(n) = entry.file_name().to_str() {
            names.push(n.to_string());
        }
    }
    names.sort();
    Ok(names)
}

fn is_configfs(path: &Path) -> bool {
    nix::sys::statfs::statfs(path).is_ok_and(|s| s.filesystem_type().0 == CONFIGFS_MAGIC)
}

/// Remove a group; done when already gone. See the module doc for plain directories.
pub fn remove_group(path: &Path) -> Result<Outcome> {
    match fs::remove_dir(path) {
        Ok(()) => Ok(Outcome::Done),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Outcome::AlreadyDone),
        Err(e) if e.raw_os_error() == Some(nix::libc::ENOTEMPTY) && !is_configfs(path) => {
            clear_defaults(path)?;
            fs::remove_dir(path).map_err(|e| cfs_err("remove", path, e))?;
            Ok(Outcome::Done)
        }
        Err(e) => Err(cfs_err("remove", path, e)),
    }
}

/// On a plain directory: remove what configfs removes with a group (attribute files
/// and default groups); links stay, so removing a still-mapped group fails.
fn clear_defaults(dir: &Path) -> Result<()> {
    for name in entries(dir)? {
        let p = dir.join(name);
        let Ok(meta) = p.symlink_metadata() else { continue };
        if meta.is_file() {
            fs::remove_file(&p).map_err(|e| cfs_err("remove", &p, e))?;
        } else if meta.is_dir() {
            clear_defaults(&p)?;
            fs::remove_dir(&p).map_err(|e| cfs_err("remove", &p, e))?;
        }
    }
    Ok(())
}

impl LioExport {
    /// An export with these settings; nothing is touched yet.
    pub fn new(s: LioSettings) -> LioExport {
        LioExport { s, locks: Mutex::new(HashMap::new()), portal_lock: Mutex::new(()) }
    }

    /// The IQN of a volume's target.
    pub fn target_iqn(&self, volume: Id) -> String {
        format!("{}{}", self.s.target_prefix, names::volume(volume))
    }

    fn target_dir(&self, volume: Id) -> PathBuf {
        self.s.root.join("iscsi").join(self.target_iqn(volume))
    }

    fn tpg_dir(&self, volume: Id) -> PathBuf {
        self.target_dir(volume).join("tpgt_1")
    }

    fn backstore_dir(&self, volume: Id) -> PathBuf {
        self.s.root.join("core").join(self.s.backstore.hba()).join(names::volume(volume))
    }

    /// The lock of one volume's target.
    fn lock(&self, volume: Id) -> Arc<Mutex<()>> {
        let mut locks = self.locks.lock().unwrap_or_else(|p| p.into_inner());
        locks.entry(volume).or_default().clone()
    }

    /// The backstore: made, pointed at the data and enabled, unless it is enabled.
    fn ensure_backstore(&self, t: &ExportTarget) -> Result<bool> {
        let dir = self.backstore_dir(t.volume_id);
        let mut changed = make_group(&dir)?;
        if read_attr(&dir.join("enable"))?.as_deref() != Some("1") {
            let dev = t.device_path.display().to_string();
            let control = match self.s.backstore {
                Backstore::Iblock => format!("udev_path={dev}"),
                Backstore::Fileio => {
                    let size = fs::metadata(&t.device_path).map_err(|e| cfs_err("stat", &t.device_path, e))?.len();
                    format!("fd_dev_name={dev},fd_dev_size={size}")
                }
            };
            write_attr(&dir.join("control"), &control)?;
            // The volume's UUID without dashes: 32 characters, within what every
            // kernel accepts as a unit serial.
            write_attr(&dir.join("wwn/vpd_unit_serial"), &t.volume_id.simple())?;
            write_attr(&dir.join("enable"), "1")?;
            changed = true;
        }
        Ok(changed)
    }

    /// Make a portal of a TPG. The kernel shares one listening socket among the TPGs
    /// of an address, found only while its login thread is not being reset: a portal
    /// made while another TPG is disabled or loses its portal (by hearth, which keeps
    /// those apart with `portal_lock`, or by another tool managing its own targets)
    /// binds a second socket, which fails. configfs reports every failure to make a
    /// portal as EINVAL (the kernel logs `kernel_bind() failed: -98`), and the kernel
    /// binds even addresses this host does not have, so a refused portal is tried
    /// again, backing off, for up to 15 s: a reset lasts milliseconds; longer, the
    /// port is someone else's.
    fn make_portal(&self, path: &Path) -> Result<bool> {
        if path.is_dir() {
            return Ok(false);
        }
        if let Some(np) = path.parent() {
            make_group(np)?;
        }
        let _held = self.portal_lock.lock().unwrap_or_else(|p| p.into_inner());
        let started = std::time::Instant::now();
        let mut pause = std::time::Duration::from_millis(5);
        loop {
            let e = match fs::create_dir(path) {
                Ok(()) => return Ok(true),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Ok(false),
                Err(e) => e,
            };
            let refused = matches!(e.raw_os_error(), Some(nix::libc::EINVAL | nix::libc::EADDRINUSE));
            if !refused {
                return Err(cfs_err("create the portal", path, e));
            }
            if started.elapsed() >= std::time::Duration::from_secs(15) {
                return Err(Error::Backend(format!(
                    "lio: the kernel refused the portal {} for 15 s ({e}): is another program (tgtd, say) \
                     listening on that address and port?",
                    path.display()
                )));
            }
            log::debug!("lio: the kernel refused the portal {} ({e}); trying again", path.display());
            std::thread::sleep(pause);
            pause = (pause * 2).min(std::time::Duration::from_millis(500));
        }
    }

    fn remove_portal(&self, path: &Path) -> Result<Outcome> {
        let _held = self.portal_lock.lock().unwrap_or_else(|p| p.into_inner());
        remove_group(path)
    }

    /// Remove one ACL and its LUN mappings.
    fn remove_acl(&self, tpg: &Path, initiator: &str) -> Result<Outcome> {
        let acl = tpg.join("acls").join(initiator);
        if !acl.exists() {
            return Ok(Outcome::AlreadyDone);
        }
        for lun in entries(&acl)?.into_iter().filter(|n| n.starts_with("lun_")) {
            let mapped = acl.join(lun);
            remove_links_in(&mapped)?;
            remove_group(&mapped)?;
        }
        remove_group(&acl)
    }

    fn initiator_of(c: &Connector) -> Result<&str> {
        let ini = c.initiator.as_deref().ok_or_else(|| {
            Error::Invalid("Invalid connector: an iSCSI connection needs the connector's initiator.".into())
        })?;
        if !valid_iscsi_name(ini) {
            return Err(Error::Invalid(format!(
                "Invalid connector: initiator {ini:?} is not an iSCSI name (iqn., eui. or naa., at most 223 \
                 characters of letters, digits, '.', ':', '-' and '_')."
            )));
        }
        Ok(ini)
    }
}

impl Export for LioExport {
    fn driver_volume_type(&self) -> &'static str {
        "iscsi"
    }

    fn storage_protocol(&self) -> &'static str {
        "iSCSI"
    }

    fn uses_chap(&self) -> bool {
        true
    }

    fn check(&self) -> Result<()> {
        if !self.s.root.is_dir() {
            return Err(Error::Backend(format!(
                "lio: LIO's configfs directory {} is missing: load the target_core_mod, target_core_iblock and \
                 iscsi_target_mod modules and mount configfs (mount -t configfs configfs /sys/kernel/config)",
                self.s.root.display()
            )));
        }
        Ok(())
    }

    fn ensure_export(&self, t: &ExportTarget) -> Result<Outcome> {
        let lock = self.lock(t.volume_id);
        let _held = lock.lock().unwrap_or_else(|p| p.into_inner());
        let mut changed = self.ensure_backstore(t)?;
        let tpg = self.tpg_dir(t.volume_id);
        let lun = tpg.join("lun").join("lun_0");
        changed |= make_group(&lun)?;
        changed |= make_link(&self.backstore_dir(t.volume_id), &lun.join(names::volume(t.volume_id)))?;
        let np = tpg.join("np");
        let wanted: Vec<String> = self.s.portals.iter().map(Portal::to_string).collect();
        for p in &wanted {
            changed |= self.make_portal(&np.join(p))?;
        }
        for stale in entries(&np)?.into_iter().filter(|n| !wanted.contains(n)) {
            self.remove_portal(&np.join(stale))?;
            changed = true;
        }
        changed |= set_attr(&tpg.join("attrib").join("authentication"), "1")?;
        changed |= set_attr(&tpg.join("enable"), "1")?;
        Ok(if changed { Outcome::Done } else { Outcome::AlreadyDone })
    }

    fn remove_export(&self, volume: Id) -> Result<Outcome> {
        let lock = self.lock(volume);
        let held = lock.lock().unwrap_or_else(|p| p.into_inner());
        let target = self.target_dir(volume);
        let tpg = target.join("tpgt_1");
        let mut removed = false;
        if tpg.exists() {
            if read_attr(&tpg.join("enable"))?.as_deref() == Some("1") {
                // Disabling resets the login threads of the TPG's portals, shared
                // with other TPGs: no portal is made meanwhile.
                let _portals = self.portal_lock.lock().unwrap_or_else(|p| p.into_inner());
                write_attr(&tpg.join("enable"), "0")?;
            }
            for ini in entries(&tpg.join("acls"))? {
                self.remove_acl(&tpg, &ini)?;
            }
            for lun in entries(&tpg.join("lun"))? {
                let dir = tpg.join("lun").join(lun);
                remove_links_in(&dir)?;
                remove_group(&dir)?;
            }
            for p in entries(&tpg.join("np"))? {
                self.remove_portal(&tpg.join("np").join(p))?;
            }
            removed |= remove_group(&tpg)? == Outcome::Done;
        }
        removed |= remove_group(&target)? == Outcome::Done;
        // The backstore, whichever HBA holds it.
        for hba in entries(&self.s.root.join("core"))? {
            let dir = self.s.root.join("core").join(hba).join(names::volume(volume));
            if dir.exists() {
                removed |= remove_group(&dir)? == Outcome::Done;
            }
        }
        drop(held);
        // Forget the volume's lock unless another caller holds it too (they take their
        // copy under the map's lock, so the count cannot grow while it is checked).
        let mut locks = self.locks.lock().unwrap_or_else(|p| p.into_inner());
        if Arc::strong_count(&lock) == 2 {
            locks.remove(&volume);
        }
        Ok(if removed { Outcome::Done } else { Outcome::AlreadyDone })
    }

    fn allow(&self, t: &ExportTarget, c: &Connector, mode: AttachMode) -> Result<Map<String, Value>> {
        let ini = Self::initiator_of(c)?;
        let chap = t.chap.as_ref().ok_or_else(|| {
            Error::Internal(format!("lio: volume {} has no CHAP credentials to export with", t.volume_id))
        })?;
        let lock = self.lock(t.volume_id);
        let _held = lock.lock().unwrap_or_else(|p| p.into_inner());
        let tpg = self.tpg_dir(t.volume_id);
        if !tpg.join("lun").join("lun_0").is_dir() {
            return Err(Error::Backend(format!("lio: volume {} is not exported; cannot let {ini} in", t.volume_id)));
        }
        let acl = tpg.join("acls").join(ini);
        let mapped = acl.join("lun_0");
        make_group(&mapped)?;
        make_link(&tpg.join("lun").join("lun_0"), &mapped.join("lun_0"))?;
        set_attr(&mapped.join("write_protect"), if mode == AttachMode::Ro { "1" } else { "0" })?;
        set_attr(&acl.join("auth").join("userid"), &chap.username)?;
        set_attr(&acl.join("auth").join("password"), &chap.password)?;

        let iqn = self.target_iqn(t.volume_id);
        let portals: Vec<String> = self.s.portals.iter().map(Portal::to_string).collect();
        let mut data = Map::new();
        data.insert("target_discovered".into(), json!(false));
        data.insert("target_portal".into(), json!(portals[0]));
        data.insert("target_iqn".into(), json!(iqn));
        data.insert("target_lun".into(), json!(0));
        if c.multipath || portals.len() > 1 {
            data.insert("target_portals".into(), json!(portals));
            data.insert("target_iqns".into(), json!(vec![iqn; portals.len()]));
            data.insert("target_luns".into(), json!(vec![0; portals.len()]));
        }
        data.insert("auth_method".into(), json!("CHAP"));
        data.insert("auth_username".into(), json!(chap.username));
        data.insert("auth_password".into(), json!(chap.password));
        data.insert("access_mode".into(), json!(mode.as_str()));
        Ok(data)
    }

    fn deny(&self, volume: Id, c: &Connector) -> Result<Outcome> {
        let Some(ini) = c.initiator.as_deref().filter(|i| valid_iscsi_name(i)) else {
            // No ACL can have been made for it.
            return Ok(Outcome::AlreadyDone);
        };
        let lock = self.lock(volume);
        let _held = lock.lock().unwrap_or_else(|p| p.into_inner());
        self.remove_acl(&self.tpg_dir(volume), ini)
    }

    fn list_exports(&self) -> Result<Vec<Id>> {
        let mut found: Vec<Id> = entries(&self.s.root.join("iscsi"))?
            .iter()
            .filter_map(|n| n.strip_prefix(&self.s.target_prefix).and_then(names::parse_volume))
            .collect();
        let core = self.s.root.join("core");
        for hba in entries(&core)?.into_iter().filter(|h| h.starts_with("iblock_") || h.starts_with("fileio_")) {
            found.extend(entries(&core.join(hba))?.iter().filter_map(|n| names::parse_volume(n)));
        }
        found.sort();
        found.dedup();
        Ok(found)
    }

    fn list_initiators(&self, volume: Id) -> Result<Vec<String>> {
        entries(&self.tpg_dir(volume).join("acls"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::Chap;

    struct Fixture {
        _dir: tempfile::TempDir,
        root: PathBuf,
        data: PathBuf,
        lio: LioExport,
    }

    fn fixture(portals: &[&str]) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("target");
        fs::create_dir(&root).unwrap();
        let data = dir.path().join("data");
        fs::write(&data, vec![0u8; 4096]).unwrap();
        let portals = portals
            .iter()
            .map(|p| {
                let (ip, port) = p.rsplit_once(':').unwrap();
                Portal { ip: ip.trim_matches(['[', ']']).parse().unwrap(), port: port.parse().unwrap() }
            })
            .collect();
        let lio = LioExport::new(LioSettings {
            root: root.clone(),
            target_prefix: DEFAULT_TARGET_PREFIX.into(),
            portals,
            backstore: Backstore::Fileio,
        });
        Fixture { _dir: dir, root, data, lio }
    }

    fn target(f: &Fixture, id: Id) -> ExportTarget {
        ExportTarget {
            volume_id: id,
            device_path: f.data.clone(),
            chap: Some(Chap { username: "user1".into(), password: "secret1".into() }),
        }
    }

    fn host(ini: &str, multipath: bool) -> Connector {
        Connector { initiator: Some(ini.into()), host: Some("h".into()), ip: None, multipath }
    }

    fn read(p: PathBuf) -> String {
        fs::read_to_string(p).unwrap()
    }

    #[test]
    fn export_writes_the_configfs_sequence() {
        let f = fixture(&["192.0.2.1:3260", "[2001:db8::1]:3260"]);
        let id = Id::new();
        let t = target(&f, id);
        assert_eq!(f.lio.ensure_export(&t).unwrap(), Outcome::Done);
        let bs = f.root.join("core/fileio_0").join(names::volume(id));
        assert_eq!(
            read(bs.join("control")),
            "fd_dev_name=".to_string() + f.data.to_str().unwrap() + ",fd_dev_size=4096"
        );
        assert_eq!(read(bs.join("wwn/vpd_unit_serial")).len(), 32);
        assert_eq!(read(bs.join("enable")), "1");
        let iqn = format!("iqn.2010-10.org.openstack:volume-{id}");
        let tpg = f.root.join("iscsi").join(&iqn).join("tpgt_1");
        assert_eq!(fs::read_link(tpg.join("lun/lun_0").join(names::volume(id))).unwrap(), bs);
        assert!(tpg.join("np/192.0.2.1:3260").is_dir());
        assert!(tpg.join("np/[2001:db8::1]:3260").is_dir());
        assert_eq!(read(tpg.join("attrib/authentication")), "1");
        assert_eq!(read(tpg.join("enable")), "1");
        // A second time changes nothing.
        assert_eq!(f.lio.ensure_export(&t).unwrap(), Outcome::AlreadyDone);

        let data = f.lio.allow(&t, &host("iqn.1994-05.com.redhat:c1", false), AttachMode::Rw).unwrap();
        let acl = tpg.join("acls/iqn.1994-05.com.redhat:c1");
        assert_eq!(fs::read_link(acl.join("lun_0/lun_0")).unwrap(), tpg.join("lun/lun_0"));
        assert_eq!(read(acl.join("lun_0/write_protect")), "0");
        // CHAP without a trailing newline.
        assert_eq!(read(acl.join("auth/userid")), "user1");
        assert_eq!(read(acl.join("auth/password")), "secret1");
        assert_eq!(data["target_portal"], "192.0.2.1:3260");
        assert_eq!(data["target_iqn"], iqn.as_str());
        assert_eq!(data["target_lun"], 0);
        assert_eq!(data["auth_method"], "CHAP");
        assert_eq!(data["auth_username"], "user1");
        assert_eq!(data["auth_password"], "secret1");
        assert_eq!(data["target_discovered"], false);
        // Two portals: every path is listed, IPv6 bracketed.
        assert_eq!(data["target_portals"], json!(["192.0.2.1:3260", "[2001:db8::1]:3260"]));
        assert_eq!(data["target_iqns"], json!([iqn, iqn]));
        assert_eq!(data["target_luns"], json!([0, 0]));
        assert_eq!(f.lio.list_exports().unwrap(), vec![id]);
        assert_eq!(f.lio.list_initiators(id).unwrap(), vec!["iqn.1994-05.com.redhat:c1".to_string()]);
    }

    #[test]
    fn read_only_hosts_get_a_write_protected_lun_and_one_portal_lists_no_paths() {
        let f = fixture(&["192.0.2.1:3260"]);
        let id = Id::new();
        let t = target(&f, id);
        f.lio.ensure_export(&t).unwrap();
        let data = f.lio.allow(&t, &host("iqn.2004-10.com.ubuntu:ro", false), AttachMode::Ro).unwrap();
        assert!(data.get("target_portals").is_none());
        assert_eq!(data["access_mode"], "ro");
        let tpg = f.root.join("iscsi").join(f.lio.target_iqn(id)).join("tpgt_1");
        assert_eq!(read(tpg.join("acls/iqn.2004-10.com.ubuntu:ro/lun_0/write_protect")), "1");
        // Multipath asks for the path lists even with one portal.
        let data = f.lio.allow(&t, &host("iqn.2004-10.com.ubuntu:mp", true), AttachMode::Rw).unwrap();
        assert_eq!(data["target_portals"], json!(["192.0.2.1:3260"]));
    }

    #[test]
    fn deny_and_remove_tear_down_in_order_and_are_idempotent() {
        let f = fixture(&["192.0.2.1:3260"]);
        let (a, b) = (Id::new(), Id::new());
        for id in [a, b] {
            let t = target(&f, id);
            f.lio.ensure_export(&t).unwrap();
            f.lio.allow(&t, &host("iqn.2004-10.com.ubuntu:one", false), AttachMode::Rw).unwrap();
            f.lio.allow(&t, &host("iqn.2004-10.com.ubuntu:two", false), AttachMode::Rw).unwrap();
        }
        assert_eq!(f.lio.deny(a, &host("iqn.2004-10.com.ubuntu:one", false)).unwrap(), Outcome::Done);
        assert_eq!(f.lio.deny(a, &host("iqn.2004-10.com.ubuntu:one", false)).unwrap(), Outcome::AlreadyDone);
        assert_eq!(f.lio.list_initiators(a).unwrap(), vec!["iqn.2004-10.com.ubuntu:two".to_string()]);
        assert_eq!(f.lio.remove_export(a).unwrap(), Outcome::Done);
        assert_eq!(f.lio.remove_export(a).unwrap(), Outcome::AlreadyDone);
        assert!(!f.root.join("iscsi").join(f.lio.target_iqn(a)).exists());
        assert!(!f.root.join("core/fileio_0").join(names::volume(a)).exists());
        // The other volume's export is untouched.
        assert_eq!(f.lio.list_exports().unwrap(), vec![b]);
        assert_eq!(f.lio.list_initiators(b).unwrap().len(), 2);
    }

    #[test]
    fn a_mapped_lun_cannot_be_removed_as_in_configfs() {
        let f = fixture(&["192.0.2.1:3260"]);
        let id = Id::new();
        let t = target(&f, id);
        f.lio.ensure_export(&t).unwrap();
        let lun = f.root.join("iscsi").join(f.lio.target_iqn(id)).join("tpgt_1/lun/lun_0");
        assert!(remove_group(&lun).is_err(), "a group with a link inside must not go");
        assert!(lun.is_dir());
    }

    #[test]
    fn other_targets_are_never_listed_or_touched() {
        let f = fixture(&["192.0.2.1:3260"]);
        let foreign = f.root.join("iscsi/iqn.2003-01.org.linux-iscsi.other:sn.1234/tpgt_1");
        fs::create_dir_all(&foreign).unwrap();
        fs::create_dir_all(f.root.join("core/iblock_0/somebody-elses")).unwrap();
        let cinder_like = f.root.join("iscsi/iqn.2010-10.org.openstack:volume-not-a-uuid");
        fs::create_dir_all(&cinder_like).unwrap();
        assert!(f.lio.list_exports().unwrap().is_empty());
        let id = Id::new();
        f.lio.ensure_export(&target(&f, id)).unwrap();
        f.lio.remove_export(id).unwrap();
        assert!(foreign.is_dir() && cinder_like.is_dir());
        assert!(f.root.join("core/iblock_0/somebody-elses").is_dir());
    }

    #[test]
    fn stale_portals_go_and_bad_initiators_are_refused() {
        let f = fixture(&["192.0.2.1:3260"]);
        let id = Id::new();
        let t = target(&f, id);
        let np = f.root.join("iscsi").join(f.lio.target_iqn(id)).join("tpgt_1/np");
        fs::create_dir_all(np.join("192.0.2.9:3260")).unwrap();
        f.lio.ensure_export(&t).unwrap();
        assert_eq!(entries(&np).unwrap(), vec!["192.0.2.1:3260".to_string()]);
        for bad in [None, Some("host1"), Some("iqn.x/../../etc"), Some("iqn.a b")] {
            let c = Connector { initiator: bad.map(str::to_string), ..Connector::default() };
            let e = f.lio.allow(&t, &c, AttachMode::Rw).unwrap_err();
            assert!(matches!(e, Error::Invalid(_)), "{bad:?}: {e}");
        }
        assert_eq!(f.lio.deny(id, &Connector::default()).unwrap(), Outcome::AlreadyDone);
    }

    #[test]
    fn concurrent_exports_end_as_asked() {
        let f = fixture(&["192.0.2.1:3260"]);
        let ids: Vec<Id> = (0..20).map(|_| Id::new()).collect();
        std::thread::scope(|s| {
            for (n, id) in ids.iter().enumerate() {
                let f = &f;
                s.spawn(move || {
                    let t = target(f, *id);
                    for round in 0..3 {
                        f.lio.ensure_export(&t).unwrap();
                        f.lio.allow(&t, &host(&format!("iqn.2004-10.com.ubuntu:h{n}"), false), AttachMode::Rw).unwrap();
                        if n % 2 == 0 || round < 2 {
                            f.lio.remove_export(*id).unwrap();
                        }
                    }
                });
            }
        });
        let mut kept: Vec<Id> = ids.iter().enumerate().filter(|(n, _)| n % 2 == 1).map(|(_, id)| *id).collect();
        kept.sort();
        assert_eq!(f.lio.list_exports().unwrap(), kept);
    }

    #[test]
    fn portals_show_like_os_brick_expects() {
        assert_eq!(Portal { ip: "10.0.0.1".parse().unwrap(), port: 3260 }.to_string(), "10.0.0.1:3260");
        assert_eq!(Portal { ip: "fe80::1".parse().unwrap(), port: 3261 }.to_string(), "[fe80::1]:3261");
        assert!(valid_iscsi_name("iqn.1993-08.org.debian:01:abcdef"));
        assert!(!valid_iscsi_name("iqn.bad name"));
    }
}

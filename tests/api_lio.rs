//! The `lio` export driven over HTTP: what attaching and detaching leave in LIO's
//! configfs, the connection_info os-brick reads, restarts, reconcile, concurrency.
//!
//! On the host (no configfs here) hearthd writes a temporary directory laid out as
//! configfs, with the file backend (fileio backstores). In the VM tier
//! (`HEARTH_TEST_VG` set, configfs mounted) the same tests run against real LIO with
//! LVM (iblock backstores) on `/sys/kernel/config/target`; there the kernel checks
//! every step (order, links, attribute values).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use common::{lio_at, Daemon};
use hearth::export::Export;
use hearth::ids::Id;
use serde_json::{json, Value};

const PREFIX: &str = "iqn.2010-10.org.openstack:";
const REAL_CONFIGFS: &str = "/sys/kernel/config/target";

/// A hearthd whose backend exports with LIO, and the configfs it writes.
struct Lio {
    d: Daemon,
    root: PathBuf,
    _tmp: Option<tempfile::TempDir>,
}

impl Drop for Lio {
    /// Leave no export behind (a failed test's would keep its LVs open).
    fn drop(&mut self) {
        self.d.stop();
        clear(&self.root);
    }
}

fn real() -> bool {
    std::env::var_os("HEARTH_TEST_VG").is_some() && Path::new(REAL_CONFIGFS).is_dir()
}

fn start() -> Lio {
    let (root, tmp) = if real() {
        (PathBuf::from(REAL_CONFIGFS), None)
    } else {
        let t = tempfile::tempdir().unwrap();
        (t.path().join("target"), Some(t))
    };
    if !real() {
        std::fs::create_dir_all(&root).unwrap();
    }
    clear(&root);
    // The scenario's backend table, with the lio export added to it.
    let mut config = common::backends_toml();
    config.push_str("target_helper = \"lioadm\"\ntarget_ip_address = \"127.0.0.1\"\n");
    if !real() {
        config.push_str(&format!("configfs_path = {:?}\n", root.display().to_string()));
    }
    let config = format!("[quota]\nquota_volumes = -1\nquota_gigabytes = -1\n\n{config}");
    // Everything hearth logs, so that a secret in any log line is seen.
    Lio { d: Daemon::start_logging(&config, "hearth=trace,info"), root, _tmp: tmp }
}

/// Remove every hearth-named export, as a reboot would.
fn clear(root: &Path) {
    let lio = lio_at(root);
    for id in lio.list_exports().unwrap() {
        lio.remove_export(id).unwrap();
    }
}

fn connector(host: &str) -> Value {
    json!({"platform": "x86_64", "os_type": "linux", "ip": "127.0.0.1", "host": host,
           "multipath": false, "initiator": format!("iqn.1994-05.com.redhat:{host}")})
}

fn tpg(root: &Path, vol: &str) -> PathBuf {
    root.join("iscsi").join(format!("{PREFIX}volume-{vol}")).join("tpgt_1")
}

fn read(p: PathBuf) -> String {
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display())).trim_end_matches('\n').to_string()
}

fn names(dir: PathBuf) -> BTreeSet<String> {
    match std::fs::read_dir(&dir) {
        Ok(rd) => rd.map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect(),
        Err(_) => BTreeSet::new(),
    }
}

/// hearth's targets in configfs: volume id → initiators in its ACLs.
fn targets(root: &Path) -> BTreeMap<String, BTreeSet<String>> {
    names(root.join("iscsi"))
        .into_iter()
        .filter_map(|n| n.strip_prefix(&format!("{PREFIX}volume-")).map(str::to_string))
        .map(|vol| {
            let acls = names(tpg(root, &vol).join("acls"));
            (vol, acls)
        })
        .collect()
}

fn available(d: &Daemon) -> String {
    let id = d.create_volume(json!({"size": 1}));
    d.wait_status(&id, "available");
    id
}

fn act(d: &Daemon, id: &str, body: Value) -> common::Resp {
    d.post(&format!("/volumes/{id}/action"), body)
}

/// Attachments API: create with a connector; returns (attachment id, connection_info).
fn attach(d: &Daemon, vol: &str, host: &str, mode: &str) -> (String, Value) {
    let r = d.call(
        "POST",
        "/attachments",
        Some(json!({"attachment": {"volume_uuid": vol, "instance_uuid": Id::new().to_string(),
                                   "connector": connector(host), "mode": mode}})),
        Some("3.54"),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    let a = r.json()["attachment"].clone();
    (a["id"].as_str().unwrap().to_string(), a["connection_info"].clone())
}

#[test]
fn attachments_api_exports_one_target_with_chap_and_an_acl_per_host() {
    let lio = start();
    let (d, root) = (&lio.d, &lio.root);
    let v = available(d);
    let (aid, ci) = attach(d, &v, "compute1", "rw");
    // Cinder's attachments API puts the iSCSI keys at the top of connection_info.
    assert_eq!(ci["driver_volume_type"], "iscsi");
    assert_eq!(ci["target_iqn"], format!("{PREFIX}volume-{v}"));
    assert_eq!(ci["target_portal"], "127.0.0.1:3260");
    assert_eq!(ci["target_lun"], 0);
    assert_eq!(ci["target_discovered"], false);
    assert_eq!(ci["auth_method"], "CHAP");
    assert_eq!(ci["volume_id"], v.as_str());
    assert_eq!(ci["access_mode"], "rw");
    assert_eq!(ci["encrypted"], false);
    assert!(ci.get("target_portals").is_none(), "one portal and no multipath: {ci}");
    let (user, secret) = (ci["auth_username"].as_str().unwrap(), ci["auth_password"].as_str().unwrap());
    assert!(user.len() >= 12 && secret.len() >= 12, "{ci}");

    let tpg = tpg(root, &v);
    let acl = tpg.join("acls/iqn.1994-05.com.redhat:compute1");
    // Written with no trailing newline (LIO would keep it as part of the secret);
    // real configfs shows the value with one.
    let shown = |name: &str| {
        let mut v = std::fs::read(acl.join("auth").join(name)).unwrap();
        if real() {
            assert_eq!(v.pop(), Some(b'\n'));
        }
        String::from_utf8(v).unwrap()
    };
    assert_eq!((shown("userid").as_str(), shown("password").as_str()), (user, secret));
    assert_eq!(read(acl.join("lun_0/write_protect")), "0");
    assert_eq!(read(tpg.join("attrib/authentication")), "1");
    assert_eq!(read(tpg.join("enable")), "1");
    assert!(tpg.join("np/127.0.0.1:3260").is_dir());
    let links: Vec<PathBuf> = names(tpg.join("lun/lun_0"))
        .into_iter()
        .filter_map(|n| std::fs::read_link(tpg.join("lun/lun_0").join(n)).ok())
        .collect();
    assert_eq!(links.len(), 1, "LUN 0 maps one backstore: {links:?}");
    assert!(links[0].ends_with(format!("volume-{v}")), "{links:?}");

    // A second host on a volume that is not multiattach: refused, configfs untouched.
    d.call(
        "POST",
        "/attachments",
        Some(json!({"attachment": {"volume_uuid": v, "instance_uuid": Id::new().to_string(),
                                   "connector": connector("compute2")}})),
        Some("3.54"),
    )
    .fault(400, "badRequest");
    assert_eq!(targets(root)[&v], BTreeSet::from(["iqn.1994-05.com.redhat:compute1".to_string()]));

    let r = d.post(&format!("/attachments/{aid}/action"), json!({"os-complete": null}));
    assert_eq!(r.status, 204, "{}", r.text);
    assert_eq!(d.delete(&format!("/attachments/{aid}")).status, 200);
    assert!(targets(root).is_empty(), "the target goes with the last attachment");
    assert!(lio_at(root).list_exports().unwrap().is_empty(), "the backstore goes too");
    // The CHAP secret went to the client and to configfs, never to the log.
    assert!(!d.log().contains(secret), "the CHAP secret is in hearthd's log");
}

#[test]
fn legacy_actions_export_and_terminate() {
    let lio = start();
    let (d, root) = (&lio.d, &lio.root);
    let v = available(d);
    assert_eq!(act(d, &v, json!({"os-reserve": null})).status, 202);
    let r = act(d, &v, json!({"os-initialize_connection": {"connector": connector("compute1")}}));
    assert_eq!(r.status, 200, "{}", r.text);
    let info = r.json()["connection_info"].clone();
    assert_eq!(info["driver_volume_type"], "iscsi");
    let data = &info["data"];
    assert_eq!(data["target_iqn"], format!("{PREFIX}volume-{v}"));
    assert_eq!(data["auth_method"], "CHAP");
    // The same CHAP pair every time for this volume.
    let again = act(d, &v, json!({"os-initialize_connection": {"connector": connector("compute1")}})).json();
    assert_eq!(again["connection_info"]["data"]["auth_password"], data["auth_password"]);
    let r = act(d, &v, json!({"os-attach": {"instance_uuid": Id::new().to_string(), "mountpoint": "/dev/vdb"}}));
    assert_eq!(r.status, 202, "{}", r.text);
    assert_eq!(targets(root).len(), 1);
    // A connector without an initiator cannot be let in: 400, and nothing is left behind.
    let other = available(d);
    let msg =
        act(d, &other, json!({"os-initialize_connection": {"connector": {"host": "h9"}}})).fault(400, "badRequest");
    assert!(msg.contains("initiator"), "{msg}");
    assert!(!targets(root).contains_key(&other), "no export without a connection");

    assert_eq!(act(d, &v, json!({"os-begin_detaching": null})).status, 202);
    assert_eq!(act(d, &v, json!({"os-terminate_connection": {"connector": connector("compute1")}})).status, 202);
    assert!(targets(root).is_empty());
    assert_eq!(act(d, &v, json!({"os-detach": {}})).status, 202);
    d.wait_status(&v, "available");
}

#[test]
fn multiattach_keeps_the_target_while_a_host_remains_and_ro_is_write_protected() {
    let lio = start();
    let (d, root) = (&lio.d, &lio.root);
    let r = d.post("/types", json!({"volume_type": {"name": "multi", "extra_specs": {"multiattach": "<is> True"}}}));
    assert_eq!(r.status, 200, "{}", r.text);
    let v = d.create_volume(json!({"size": 1, "volume_type": "multi"}));
    d.wait_status(&v, "available");
    let (a1, c1) = attach(d, &v, "compute1", "rw");
    let (a2, c2) = attach(d, &v, "compute2", "ro");
    // One CHAP pair per volume, for every host (as Cinder does).
    assert_eq!(c1["auth_password"], c2["auth_password"]);
    assert_eq!(c2["access_mode"], "ro");
    let tpg = tpg(root, &v);
    assert_eq!(read(tpg.join("acls/iqn.1994-05.com.redhat:compute1/lun_0/write_protect")), "0");
    assert_eq!(read(tpg.join("acls/iqn.1994-05.com.redhat:compute2/lun_0/write_protect")), "1");
    assert_eq!(d.delete(&format!("/attachments/{a1}")).status, 200);
    assert_eq!(targets(root)[&v], BTreeSet::from(["iqn.1994-05.com.redhat:compute2".to_string()]));
    assert_eq!(d.delete(&format!("/attachments/{a2}")).status, 200);
    assert!(targets(root).is_empty());
}

#[test]
fn restarts_keep_exports_reboots_get_them_back_and_strays_go() {
    let mut lio = start();
    let root = lio.root.clone();
    let d = &mut lio.d;
    let v = available(d);
    let (aid, ci) = attach(d, &v, "compute1", "rw");
    assert_eq!(d.post(&format!("/attachments/{aid}/action"), json!({"os-complete": null})).status, 204);
    let acl = tpg(&root, &v).join("acls/iqn.1994-05.com.redhat:compute1");
    let before = (read(acl.join("auth/userid")), read(acl.join("auth/password")), targets(&root));

    // A plain restart leaves the live export as it is.
    d.restart();
    assert_eq!((read(acl.join("auth/userid")), read(acl.join("auth/password")), targets(&root)), before);

    // Reboot: configfs is empty when hearthd starts; the export comes back as it was.
    d.stop();
    clear(&root);
    assert!(targets(&root).is_empty());
    d.respawn();
    assert_eq!((read(acl.join("auth/userid")), read(acl.join("auth/password")), targets(&root)), before);
    assert_eq!(read(tpg(&root, &v).join("enable")), "1");
    let shown = d.get(&format!("/attachments/{aid}")).json()["attachment"]["connection_info"].clone();
    assert_eq!(shown["auth_password"], ci["auth_password"]);

    // Strays: a target no attachment explains, and a host let in without one.
    d.stop();
    let lio = lio_at(&root);
    let stray = Id::new();
    let stray_file = tempfile::NamedTempFile::new().unwrap();
    stray_file.as_file().set_len(1 << 20).unwrap();
    let data = hearth::export::ExportTarget {
        volume_id: stray,
        device_path: stray_file.path().to_path_buf(),
        chap: Some(hearth::export::Chap { username: "u".repeat(12), password: "p".repeat(12) }),
    };
    lio.ensure_export(&data).unwrap();
    let known = hearth::export::ExportTarget { volume_id: v.parse().unwrap(), ..data.clone() };
    let intruder =
        hearth::export::Connector { initiator: Some("iqn.2004-10.com.ubuntu:intruder".into()), ..Default::default() };
    lio.allow(&known, &intruder, hearth::model::AttachMode::Rw).unwrap();
    assert_eq!(targets(&root).len(), 2);
    d.respawn();
    assert_eq!(targets(&root), before.2, "the stray target and the stray host are gone");
    assert!(d.log().contains("no attachment"), "reconcile says why: {}", d.log());

    assert_eq!(d.delete(&format!("/attachments/{aid}")).status, 200);
    assert!(targets(&root).is_empty());
}

#[test]
fn twenty_parallel_attaches_and_detaches_leave_configfs_as_the_store_says() {
    let lio = start();
    let (d, root) = (&lio.d, &lio.root);
    let vols: Vec<String> = (0..20).map(|_| d.create_volume(json!({"size": 1}))).collect();
    for v in &vols {
        d.wait_status(v, "available");
    }
    std::thread::scope(|s| {
        for (n, v) in vols.iter().enumerate() {
            let d = &d;
            s.spawn(move || {
                let (aid, _) = attach(d, v, &format!("c{n}"), "rw");
                if n % 2 == 0 {
                    assert_eq!(d.delete(&format!("/attachments/{aid}")).status, 200);
                    // ... and once more, attached and detached again.
                    let (aid, _) = attach(d, v, &format!("c{n}"), "rw");
                    assert_eq!(d.delete(&format!("/attachments/{aid}")).status, 200);
                }
            });
        }
    });
    // What the store says: the odd volumes keep one connected attachment each.
    let listed = d.call("GET", "/attachments/detail", None, Some("3.54")).json()["attachments"].clone();
    let connected: BTreeSet<String> = listed
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["connection_info"]["target_iqn"].is_string())
        .map(|a| a["volume_id"].as_str().unwrap().to_string())
        .collect();
    let expected: BTreeMap<String, BTreeSet<String>> = vols
        .iter()
        .enumerate()
        .filter(|(n, _)| n % 2 == 1)
        .map(|(n, v)| (v.clone(), BTreeSet::from([format!("iqn.1994-05.com.redhat:c{n}")])))
        .collect();
    assert_eq!(connected, expected.keys().cloned().collect::<BTreeSet<_>>(), "{listed}");
    assert_eq!(targets(root), expected);
    for a in listed.as_array().unwrap() {
        assert_eq!(d.delete(&format!("/attachments/{}", a["id"].as_str().unwrap())).status, 200);
    }
    assert!(targets(root).is_empty());
    for v in &vols {
        assert_eq!(d.delete(&format!("/volumes/{v}")).status, 202);
    }
}

/// Portals coming and going on an address another tool's target shares: while a
/// foreign target (not hearth's: another tool managing its own exports on this
/// appliance) is disabled and enabled in a loop, which resets the kernel's listening
/// thread that every TPG on the address shares, four hosts attach and detach their
/// volumes six times each, all at once. The kernel refuses a portal made during a
/// reset (as EINVAL, one in twenty in the guest); hearth tries it again, so every
/// request succeeds, and the foreign target is left as it was.
#[test]
fn portals_made_while_another_target_on_the_address_resets_succeed() {
    let lio = start();
    let (d, root) = (&lio.d, &lio.root);
    let foreign = root.join("iscsi/iqn.2003-01.org.example:foreign/tpgt_1");
    std::fs::create_dir_all(foreign.join("np/127.0.0.1:3260")).unwrap();
    std::fs::write(foreign.join("enable"), "1").unwrap();
    let vols: Vec<String> = (0..4).map(|_| d.create_volume(json!({"size": 1}))).collect();
    for v in &vols {
        d.wait_status(v, "available");
    }
    let done = std::sync::atomic::AtomicBool::new(false);
    let toggles = std::thread::scope(|s| {
        let toggler = s.spawn(|| {
            let mut n = 0u32;
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                std::fs::write(foreign.join("enable"), "0").unwrap();
                std::fs::write(foreign.join("enable"), "1").unwrap();
                n += 1;
            }
            n
        });
        let hosts: Vec<_> = vols
            .iter()
            .enumerate()
            .map(|(n, v)| {
                s.spawn(move || {
                    for round in 0..6 {
                        let (aid, ci) = attach(d, v, &format!("v{n}r{round}"), "rw");
                        assert_eq!(ci["target_portal"], "127.0.0.1:3260");
                        assert_eq!(d.delete(&format!("/attachments/{aid}")).status, 200);
                    }
                })
            })
            .collect();
        let outcome: Vec<_> = hosts.into_iter().map(|h| h.join()).collect();
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        let toggles = toggler.join().unwrap();
        for o in outcome {
            o.unwrap_or_else(|e| std::panic::resume_unwind(e));
        }
        toggles
    });
    assert!(toggles > 0);
    assert!(targets(root).is_empty());
    assert_eq!(read(foreign.join("enable")), "1", "the foreign target is as it was");
    assert!(foreign.join("np/127.0.0.1:3260").is_dir());
    if real() {
        std::fs::write(foreign.join("enable"), "0").unwrap();
        std::fs::remove_dir(foreign.join("np/127.0.0.1:3260")).unwrap();
        std::fs::remove_dir(&foreign).unwrap();
        std::fs::remove_dir(foreign.parent().unwrap()).unwrap();
    } else {
        std::fs::remove_dir_all(foreign.parent().unwrap()).unwrap();
    }
    assert!(!d.log().contains(" ERROR "), "{}", d.log());
}

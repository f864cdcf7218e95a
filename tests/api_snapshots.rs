//! Snapshots, volumes from snapshots, clones, revert and delete rules, over HTTP,
//! with the data checked byte for byte on the file backend.

mod common;

use std::io::{Read, Seek, SeekFrom, Write};

use common::{Daemon, PROJECT};
use serde_json::json;

fn vol_path(d: &Daemon, id: &str) -> std::path::PathBuf {
    d.volume_path(id)
}

fn write_at(d: &Daemon, id: &str, offset: u64, data: &[u8]) {
    let mut f = std::fs::OpenOptions::new().write(true).open(vol_path(d, id)).unwrap();
    f.seek(SeekFrom::Start(offset)).unwrap();
    f.write_all(data).unwrap();
    f.sync_all().unwrap();
}

fn read_at(d: &Daemon, id: &str, offset: u64, len: usize) -> Vec<u8> {
    let mut f = std::fs::File::open(vol_path(d, id)).unwrap();
    f.seek(SeekFrom::Start(offset)).unwrap();
    let mut buf = vec![0u8; len];
    f.read_exact(&mut buf).unwrap();
    buf
}

fn wait_snapshot(d: &Daemon, id: &str, status: &str) -> serde_json::Value {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let r = d.get(&format!("/snapshots/{id}"));
        if r.status == 200 && r.json()["snapshot"]["status"] == status {
            return r.json()["snapshot"].clone();
        }
        assert!(std::time::Instant::now() < deadline, "snapshot {id} never {status}: {}", r.text);
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

fn snapshot(d: &Daemon, volume: &str, extra: serde_json::Value) -> String {
    let mut body = json!({"volume_id": volume, "name": "s"});
    body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    let r = d.post("/snapshots", json!({ "snapshot": body }));
    assert_eq!(r.status, 202, "{}", r.text);
    r.json()["snapshot"]["id"].as_str().unwrap().to_string()
}

#[test]
fn snapshot_lifecycle_views_and_quota() {
    let d = Daemon::start();
    let v = d.create_volume(json!({"size": 2, "name": "src"}));
    d.wait_status(&v, "available");
    let r = d.post(
        "/snapshots",
        json!({"snapshot": {"volume_id": v, "name": "s1", "description": null, "metadata": {"k": "v"}}}),
    );
    assert_eq!(r.status, 202, "{}", r.text);
    let s = r.json()["snapshot"].clone();
    assert_eq!(s["status"], "creating");
    assert!(s.get("os-extended-snapshot-attributes:progress").is_none());
    let sid = s["id"].as_str().unwrap().to_string();
    let s = wait_snapshot(&d, &sid, "available");
    assert_eq!(s["size"], 2);
    assert_eq!(s["os-extended-snapshot-attributes:progress"], "100%");
    assert_eq!(s["os-extended-snapshot-attributes:project_id"], PROJECT);
    assert_eq!(s["user_id"], "demo");
    // microversion-gated fields
    let old = d.call("GET", &format!("/snapshots/{sid}"), None, Some("3.0")).json()["snapshot"].clone();
    for f in ["user_id", "group_snapshot_id", "consumes_quota"] {
        assert!(old.get(f).is_none(), "{f} shown at 3.0: {old}");
    }
    // lists, filters, metadata, update
    assert_eq!(d.get("/snapshots").json()["snapshots"].as_array().unwrap().len(), 1);
    assert_eq!(d.get(&format!("/snapshots/detail?volume_id={v}")).json()["snapshots"].as_array().unwrap().len(), 1);
    assert_eq!(d.get("/snapshots?name=nope").json()["snapshots"].as_array().unwrap().len(), 0);
    assert_eq!(d.get("/snapshots?with_count=true").json()["count"], 1);
    d.get("/snapshots?colour=red").fault(400, "badRequest");
    assert_eq!(
        d.post(&format!("/snapshots/{sid}/metadata"), json!({"metadata": {"a": "1"}})).json()["metadata"],
        json!({"a": "1", "k": "v"})
    );
    assert_eq!(
        d.put(&format!("/snapshots/{sid}"), json!({"snapshot": {"name": "s2"}})).json()["snapshot"]["name"],
        "s2"
    );
    // quota: snapshots and gigabytes count
    let u = d.get(&format!("/os-quota-sets/{PROJECT}?usage=True")).json();
    assert_eq!(u["quota_set"]["snapshots"]["in_use"], 1);
    assert_eq!(u["quota_set"]["gigabytes"]["in_use"], 4);
    assert_eq!(d.get("/limits").json()["limits"]["absolute"]["totalSnapshotsUsed"], 1);
    // a volume with snapshots cannot be deleted without cascade
    d.delete(&format!("/volumes/{v}")).fault(400, "badRequest");
    // snapshot status actions
    let act = |b: serde_json::Value| d.post(&format!("/snapshots/{sid}/action"), b);
    act(json!({"os-update_snapshot_status": {"status": "available"}})).fault(400, "badRequest");
    act(json!({"os-reset_status": {"status": "bogus"}})).fault(400, "badRequest");
    assert_eq!(act(json!({"os-reset_status": {"status": "error"}})).status, 202);
    assert_eq!(d.get(&format!("/snapshots/{sid}")).json()["snapshot"]["status"], "error");
    // cascade deletes both
    assert_eq!(d.delete(&format!("/volumes/{v}?cascade=true")).status, 202);
    d.wait_gone(&v);
    assert_eq!(d.get(&format!("/snapshots/{sid}")).status, 404);
    assert!(!d.volume_path(&v).exists(), "the volume's data is still there");
    let u = d.get(&format!("/os-quota-sets/{PROJECT}?usage=True")).json();
    assert_eq!(u["quota_set"]["snapshots"]["in_use"], 0);
    assert_eq!(u["quota_set"]["gigabytes"]["in_use"], 0);
}

#[test]
fn snapshot_rules_for_in_use_volumes_and_bad_requests() {
    let d = Daemon::start();
    let v = d.create_volume(json!({"size": 1}));
    d.wait_status(&v, "available");
    d.post("/snapshots", json!({"snapshot": {}})).fault(400, "badRequest");
    d.post("/snapshots", json!({"snapshot": {"volume_id": "00000000-0000-0000-0000-000000000000"}}))
        .fault(404, "itemNotFound");
    // make it in-use through the attachments API
    let r = d.post(
        "/attachments",
        json!({"attachment": {"volume_uuid": v, "instance_uuid": "7f0e6f6c-1111-4222-8333-944455556666",
        "connector": {"host": "h1", "initiator": "iqn.1994-05.com.redhat:h1"}}}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    let aid = r.json()["attachment"]["id"].as_str().unwrap().to_string();
    assert_eq!(d.post(&format!("/attachments/{aid}/action"), json!({"os-complete": null})).status, 204);
    d.wait_status(&v, "in-use");
    // before 3.66 an in-use volume needs force
    let r = d.call("POST", "/snapshots", Some(json!({"snapshot": {"volume_id": v}})), Some("3.65"));
    r.fault(400, "badRequest");
    let r = d.call("POST", "/snapshots", Some(json!({"snapshot": {"volume_id": v, "force": true}})), Some("3.65"));
    assert_eq!(r.status, 202, "{}", r.text);
    // from 3.66 no force is needed, and force=false is refused
    let r = d.call("POST", "/snapshots", Some(json!({"snapshot": {"volume_id": v}})), Some("3.66"));
    assert_eq!(r.status, 202, "{}", r.text);
    d.call("POST", "/snapshots", Some(json!({"snapshot": {"volume_id": v, "force": false}})), Some("3.66"))
        .fault(400, "badRequest");
    // quota
    d.put(&format!("/os-quota-sets/{PROJECT}"), json!({"quota_set": {"snapshots": 2}}));
    d.post("/snapshots", json!({"snapshot": {"volume_id": v}})).fault(413, "overLimit");
}

#[test]
fn volumes_from_snapshots_and_clones_hold_the_right_bytes() {
    let d = Daemon::start();
    let v = d.create_volume(json!({"size": 1, "metadata": {"m": "1"}}));
    d.wait_status(&v, "available");
    let before: Vec<u8> = (0..(4 << 20)).map(|i| (i % 251) as u8).collect();
    write_at(&d, &v, 0, &before);
    write_at(&d, &v, 900 << 20, b"tail of the volume");
    let sid = snapshot(&d, &v, json!({}));
    wait_snapshot(&d, &sid, "available");
    let after = vec![0x5au8; 4 << 20];
    write_at(&d, &v, 0, &after);

    // from the snapshot: the bytes at snapshot time; size defaults to the snapshot's
    let from_snap = d.create_volume(json!({"snapshot_id": sid, "name": "from-snap"}));
    let fv = d.wait_status(&from_snap, "available");
    assert_eq!(fv["size"], 1);
    assert_eq!(fv["snapshot_id"], sid.as_str());
    assert_eq!(read_at(&d, &from_snap, 0, 4 << 20), before);
    assert_eq!(read_at(&d, &from_snap, 900 << 20, 18), b"tail of the volume");
    // a clone, bigger than its source: the bytes now, then zeroes
    let clone = d.create_volume(json!({"source_volid": v, "size": 2}));
    let cv = d.wait_status(&clone, "available");
    assert_eq!(cv["source_volid"], v.as_str());
    assert_eq!(cv["size"], 2);
    assert_eq!(read_at(&d, &clone, 0, 4 << 20), after);
    assert_eq!(read_at(&d, &clone, (1 << 30) + 4096, 16), vec![0u8; 16]);
    assert_eq!(common::device_len(&vol_path(&d, &clone)), 2 << 30);
    // later writes to the source show in neither
    write_at(&d, &v, 0, &[1u8; 4096]);
    assert_eq!(read_at(&d, &from_snap, 0, 4096), before[..4096].to_vec());
    assert_eq!(read_at(&d, &clone, 0, 4096), after[..4096].to_vec());
    // refusals
    d.post("/volumes", json!({"volume": {"snapshot_id": sid, "size": 0}})).fault(400, "badRequest");
    d.post("/volumes", json!({"volume": {"source_volid": clone, "size": 1}})).fault(400, "badRequest");
    d.post("/volumes", json!({"volume": {"snapshot_id": sid, "source_volid": v}})).fault(400, "badRequest");
    d.post("/volumes", json!({"volume": {"snapshot_id": "00000000-0000-0000-0000-000000000000"}}))
        .fault(404, "itemNotFound");
    d.post("/types", json!({"volume_type": {"name": "other"}}));
    d.post("/volumes", json!({"volume": {"source_volid": v, "volume_type": "other"}})).fault(400, "badRequest");
    assert_eq!(d.post("/volumes", json!({"volume": {"source_volid": v, "volume_type": "__DEFAULT__"}})).status, 202);
    // the capability says how copies are made
    let pools = d.get("/scheduler-stats/get_pools?detail=True").json();
    let method = pools["pools"][0]["capabilities"]["copy_method"].as_str().unwrap().to_string();
    assert!(["reflink", "sparse-copy", "thin-snapshot", "block-copy"].contains(&method.as_str()), "{method}");
}

#[test]
fn a_source_being_copied_cannot_be_deleted() {
    let d = Daemon::start();
    let v = d.create_volume(json!({"size": 1}));
    d.wait_status(&v, "available");
    // Enough data that the (sparse) copy takes a while.
    let chunk = vec![0xcdu8; 8 << 20];
    for i in 0..(common::bulk_bytes(512 << 20) / (8 << 20)) as u64 {
        write_at(&d, &v, i * (8 << 20), &chunk);
    }
    let copies: Vec<String> = (0..3).map(|_| d.create_volume(json!({"source_volid": v}))).collect();
    let r = d.delete(&format!("/volumes/{v}"));
    let copying = copies.iter().any(|c| d.get(&format!("/volumes/{c}")).json()["volume"]["status"] == "creating");
    if r.status == 400 {
        assert!(r.fault(400, "badRequest").contains("being copied"));
    } else {
        assert!(!copying, "the source was deleted while a copy was being made");
    }
    for c in &copies {
        d.wait_status(c, "available");
        assert_eq!(read_at(&d, c, 4 << 20, 4096), vec![0xcd; 4096]);
    }
}

#[test]
fn revert_to_the_latest_snapshot() {
    let d = Daemon::start();
    let v = d.create_volume(json!({"size": 1}));
    d.wait_status(&v, "available");
    write_at(&d, &v, 0, b"first");
    let s1 = snapshot(&d, &v, json!({}));
    wait_snapshot(&d, &s1, "available");
    write_at(&d, &v, 0, b"second");
    let s2 = snapshot(&d, &v, json!({}));
    wait_snapshot(&d, &s2, "available");
    write_at(&d, &v, 0, b"third!");
    let act = |b: serde_json::Value, mv: &str| d.call("POST", &format!("/volumes/{v}/action"), Some(b), Some(mv));
    // revert exists from 3.40, to the latest snapshot only
    act(json!({"revert": {"snapshot_id": s2}}), "3.39").fault(400, "badRequest");
    act(json!({"revert": {"snapshot_id": s1}}), "3.40").fault(400, "badRequest");
    act(json!({"revert": {"snapshot_id": "00000000-0000-0000-0000-000000000000"}}), "3.40").fault(404, "itemNotFound");
    assert_eq!(act(json!({"revert": {"snapshot_id": s2}}), "3.40").status, 202);
    d.wait_status(&v, "available");
    assert_eq!(read_at(&d, &v, 0, 6), b"second");
    assert_eq!(wait_snapshot(&d, &s2, "available")["status"], "available");
    // not after the volume grew past the snapshot's size (as Cinder)
    assert_eq!(d.post(&format!("/volumes/{v}/action"), json!({"os-extend": {"new_size": 2}})).status, 202);
    d.wait_volume(&v, "extended", |x| x["size"] == 2 && x["status"] == "available");
    act(json!({"revert": {"snapshot_id": s2}}), "3.40").fault(400, "badRequest");
    // a snapshot of another volume is refused
    let w = d.create_volume(json!({"size": 1}));
    d.wait_status(&w, "available");
    d.call("POST", &format!("/volumes/{w}/action"), Some(json!({"revert": {"snapshot_id": s2}})), Some("3.40"))
        .fault(400, "badRequest");
}

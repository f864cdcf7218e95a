//! Crash safety: SIGKILL hearthd while creates, extends and deletes are in flight,
//! start it again, and check that no record is lost, nothing stays in a transitional
//! state, and the pool holds exactly what the records say.

mod common;

use std::io::Write;

use common::{Daemon, PROJECT};
use serde_json::json;

const CONFIG: &str = r#"
[quota]
quota_volumes = 200
quota_gigabytes = 10000

[backends.file-1]
driver = "file"
volume_backend_name = "file"
size_gb = 1000
volume_clear = "zero"
"#;

fn db_tasks(d: &Daemon) -> i64 {
    d.store_count("SELECT COUNT(*) FROM volumes WHERE task IS NOT NULL")
}

#[test]
fn sigkill_with_work_in_flight_loses_nothing() {
    let mut d = Daemon::start_with(CONFIG);
    // Volumes with real data, so that their deletes (which wipe) take a while.
    let doomed: Vec<String> = (0..6).map(|_| d.create_volume(json!({"size": 1}))).collect();
    let chunk = vec![0xabu8; 1 << 20];
    for id in &doomed {
        d.wait_status(id, "available");
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .open(d.data_dir().join("volumes/file-1").join(format!("volume-{id}")))
            .unwrap();
        for _ in 0..192 {
            f.write_all(&chunk).unwrap();
        }
        f.sync_all().unwrap();
    }
    let to_extend = d.create_volume(json!({"size": 1}));
    d.wait_status(&to_extend, "available");

    // In flight: a burst of creates, then deletes (wiping) and an extend, and the
    // kill right after the last of them is accepted, while the wipes run.
    let created: Vec<String> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..4)
            .map(|_| {
                s.spawn(|| {
                    (0..10).map(|i| d.create_volume(json!({"size": 1 + i % 3, "name": "burst"}))).collect::<Vec<_>>()
                })
            })
            .collect();
        hs.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(d.post(&format!("/volumes/{to_extend}/action"), json!({"os-extend": {"new_size": 3}})).status, 202);
    for id in &doomed {
        assert_eq!(d.delete(&format!("/volumes/{id}")).status, 202);
    }
    d.kill9();
    let in_flight = db_tasks(&d);
    assert!(in_flight > 0, "the test must kill hearthd with work in flight");

    d.respawn();
    let log = d.log();
    assert!(log.contains("reconcile:"), "{log}");
    // Everything settles: no transitional states remain.
    for id in &created {
        let v = d.wait_volume(id, "settled", |v| v["status"] == "available" || v["status"] == "error");
        assert_eq!(v["name"], "burst");
    }
    let v = d.wait_volume(&to_extend, "settled", |v| v["status"] == "available" && v["size"] == 3);
    assert_eq!(v["size"], 3);
    for id in &doomed {
        d.wait_gone(id);
    }
    assert_eq!(db_tasks(&d), 0);
    let all = d.get("/volumes/detail?all_tenants=1").json();
    for v in all["volumes"].as_array().unwrap() {
        let s = v["status"].as_str().unwrap();
        assert!(s == "available" || s == "error", "{v}");
    }
    // The pool holds exactly the available volumes; no partial files.
    let mut expected: Vec<String> = all["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| v["status"] == "available")
        .map(|v| format!("volume-{}", v["id"].as_str().unwrap()))
        .collect();
    expected.sort();
    assert_eq!(d.volume_files("file-1"), expected);
    // Quota usage counts exactly the records.
    let u = d.get(&format!("/os-quota-sets/{PROJECT}?usage=True")).json();
    assert_eq!(u["quota_set"]["volumes"]["in_use"], all["volumes"].as_array().unwrap().len());
    assert_eq!(u["quota_set"]["volumes"]["reserved"], 0);
}

#[test]
fn unexplained_objects_are_reported_and_left_alone() {
    let mut d = Daemon::start_with(CONFIG);
    let dir = d.data_dir().join("volumes/file-1");
    let stray = dir.join("volume-00000000-0000-4000-8000-000000000001");
    let foreign = dir.join("somebody-elses.img");
    let partial = dir.join(".partial-volume-00000000-0000-4000-8000-000000000002");
    for f in [&stray, &foreign, &partial] {
        std::fs::write(f, b"data").unwrap();
    }
    d.restart();
    assert!(stray.exists() && foreign.exists());
    assert!(!partial.exists(), "partial objects are removed");
    // Reported in the background once hearth serves.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !d.log().contains("no volume record explains it") {
        assert!(std::time::Instant::now() < deadline, "{}", d.log());
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

fn sha_of_ranges(path: &std::path::Path, ranges: &[(u64, usize)]) -> Vec<Vec<u8>> {
    use std::os::unix::fs::FileExt;
    let f = std::fs::File::open(path).unwrap();
    ranges
        .iter()
        .map(|(off, len)| {
            let mut buf = vec![0u8; *len];
            f.read_exact_at(&mut buf, *off).unwrap();
            buf
        })
        .collect()
}

#[test]
fn sigkill_during_snapshot_and_copies_never_leaves_partial_data() {
    let mut d = Daemon::start_with(CONFIG);
    let src = d.create_volume(json!({"size": 1}));
    d.wait_status(&src, "available");
    let path = d.data_dir().join("volumes/file-1").join(format!("volume-{src}"));
    {
        let mut f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        let chunk: Vec<u8> = (0..(1 << 20)).map(|i| (i % 253) as u8).collect();
        for _ in 0..384 {
            f.write_all(&chunk).unwrap();
        }
        f.sync_all().unwrap();
    }
    let probe: Vec<(u64, usize)> = vec![(0, 4096), (200 << 20, 4096), ((384 << 20) - 4096, 4096)];
    let expected = sha_of_ranges(&path, &probe);
    let r = d.post("/snapshots", json!({"snapshot": {"volume_id": src}}));
    let snap = r.json()["snapshot"]["id"].as_str().unwrap().to_string();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while d.get(&format!("/snapshots/{snap}")).json()["snapshot"]["status"] != "available" {
        assert!(std::time::Instant::now() < deadline);
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    // Copies in flight: from the snapshot and from the volume; and a second snapshot.
    let copies: Vec<String> = (0..3)
        .map(|i| {
            let body = if i % 2 == 0 { json!({"snapshot_id": snap}) } else { json!({"source_volid": src}) };
            d.create_volume(body)
        })
        .collect();
    let r = d.post("/snapshots", json!({"snapshot": {"volume_id": src}}));
    let snap2 = r.json()["snapshot"]["id"].as_str().unwrap().to_string();
    d.kill9();
    let was_in_flight = db_tasks(&d);
    d.respawn();
    let mut finished = 0;
    for c in &copies {
        let v = d.wait_volume(c, "settled", |v| v["status"] == "available" || v["status"] == "error");
        if v["status"] == "available" {
            finished += 1;
            let p = d.data_dir().join("volumes/file-1").join(format!("volume-{c}"));
            assert_eq!(sha_of_ranges(&p, &probe), expected, "copy {c} is available with other data");
        }
    }
    let s2 = d.get(&format!("/snapshots/{snap2}")).json()["snapshot"].clone();
    assert!(s2["status"] == "available" || s2["status"] == "error", "{s2}");
    let files = d.volume_files("file-1");
    assert!(files.iter().all(|f| !f.starts_with(".partial")), "{files:?}");
    println!("in flight at the kill: {was_in_flight}; copies finished before it: {finished}");
    // Everything can be cleaned up afterwards.
    for c in &copies {
        assert_eq!(d.delete(&format!("/volumes/{c}")).status, 202);
        d.wait_gone(c);
    }
    assert_eq!(d.delete(&format!("/volumes/{src}?cascade=true")).status, 202);
    d.wait_gone(&src);
    assert!(d.volume_files("file-1").is_empty(), "{:?}", d.volume_files("file-1"));
}

#[test]
fn sigkill_during_attach_leaves_consistent_records() {
    let mut d = Daemon::start_with(CONFIG);
    let vols: Vec<String> = (0..4).map(|_| d.create_volume(json!({"size": 1}))).collect();
    for v in &vols {
        d.wait_status(v, "available");
    }
    let stop = std::sync::atomic::AtomicBool::new(false);
    let pid = nix::unistd::Pid::from_raw(d.pid());
    std::thread::scope(|s| {
        for v in &vols {
            let (d, stop) = (&d, &stop);
            s.spawn(move || {
                let connector = json!({"host": "compute1", "initiator": "iqn.1994-05.com.redhat:c1"});
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    // Once the daemon dies, requests fail: stop quietly.
                    let Some(r) = common::try_call(
                        d,
                        "POST",
                        "/attachments",
                        json!({"attachment": {
                        "volume_uuid": v, "instance_uuid": "7f0e6f6c-1111-4222-8333-944455556666",
                        "connector": connector}}),
                    ) else {
                        break;
                    };
                    let Some(aid) = r.json()["attachment"]["id"].as_str().map(str::to_string) else { break };
                    if common::try_call(d, "POST", &format!("/attachments/{aid}/action"), json!({"os-complete": null}))
                        .is_none()
                    {
                        break;
                    }
                    if common::try_call(d, "DELETE", &format!("/attachments/{aid}"), json!(null)).is_none() {
                        break;
                    }
                }
            });
        }
        std::thread::sleep(std::time::Duration::from_millis(300));
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL).unwrap();
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
    });
    d.kill9();
    d.respawn();
    // Every volume's status agrees with its attachments, and each can be detached.
    for v in &vols {
        let vol = d.get(&format!("/volumes/{v}")).json()["volume"].clone();
        let atts = d.get(&format!("/attachments/detail?volume_id={v}")).json()["attachments"].clone();
        let atts = atts.as_array().unwrap();
        let status = vol["status"].as_str().unwrap();
        match atts.iter().map(|a| a["status"].as_str().unwrap()).collect::<Vec<_>>().as_slice() {
            [] => assert_eq!(status, "available", "{vol}"),
            list if list.contains(&"attached") => assert_eq!(status, "in-use", "{vol}"),
            list if list.contains(&"attaching") => assert_eq!(status, "attaching", "{vol}"),
            _ => assert_eq!(status, "reserved", "{vol}"),
        }
        for a in atts {
            let aid = a["id"].as_str().unwrap();
            if a["status"] == "attaching" {
                assert_eq!(d.post(&format!("/attachments/{aid}/action"), json!({"os-complete": null})).status, 204);
            }
            assert_eq!(d.delete(&format!("/attachments/{aid}")).status, 200);
        }
        assert_eq!(d.get(&format!("/volumes/{v}")).json()["volume"]["status"], "available");
    }
}

/// Offers and acceptances are one transaction each. Volumes go back and forth between
/// two projects while hearthd is killed; afterwards every volume awaiting transfer has
/// its transfer and every transfer its offered volume, each volume belongs to one
/// project, and each project's quota usage counts exactly its volumes.
#[test]
fn sigkill_amid_transfers_leaves_each_whole_or_undone() {
    const OTHER: &str = "0a1b2c3d4e5f40718293a4b5c6d7e8f9";
    let mut d = Daemon::start_with(CONFIG);
    let vols: Vec<String> = (0..6).map(|_| d.create_volume(json!({"size": 1}))).collect();
    for v in &vols {
        d.wait_status(v, "available");
    }
    let accepted = std::sync::atomic::AtomicUsize::new(0);
    let pid = nix::unistd::Pid::from_raw(d.pid());
    std::thread::scope(|s| {
        for v in &vols {
            let (d, accepted) = (&d, &accepted);
            s.spawn(move || {
                // Once the daemon dies, requests fail: stop quietly.
                for (from, to) in [(PROJECT, OTHER), (OTHER, PROJECT)].into_iter().cycle() {
                    let offer = json!({"transfer": {"volume_id": v}});
                    let Some(r) = common::try_call_in(d, from, "POST", "/os-volume-transfer", offer) else { break };
                    let t = &r.json()["transfer"];
                    let (Some(id), Some(key)) = (t["id"].as_str(), t["auth_key"].as_str()) else { break };
                    let path = format!("/os-volume-transfer/{id}/accept");
                    let body = json!({"accept": {"auth_key": key}});
                    match common::try_call_in(d, to, "POST", &path, body) {
                        Some(r) if r.status == 202 => accepted.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
                        _ => break,
                    };
                }
            });
        }
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while accepted.load(std::sync::atomic::Ordering::Relaxed) < 30 {
            assert!(std::time::Instant::now() < deadline, "transfers did not get going:\n{}", d.log());
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL).unwrap();
    });
    d.kill9();
    d.respawn();

    let all = d.get("/volumes/detail?all_tenants=1").json()["volumes"].clone();
    let all = all.as_array().unwrap();
    assert_eq!(all.len(), vols.len(), "{all:?}");
    let transfers = d.call("GET", "/os-volume-transfer/detail?all_tenants=1", None, Some("3.57")).json();
    let transfers = transfers["transfers"].as_array().unwrap().clone();
    for v in all {
        let (id, owner) = (v["id"].as_str().unwrap(), v["os-vol-tenant-attr:tenant_id"].as_str().unwrap());
        let offers: Vec<&serde_json::Value> = transfers.iter().filter(|t| t["volume_id"] == id).collect();
        match v["status"].as_str().unwrap() {
            "awaiting-transfer" => {
                assert_eq!(offers.len(), 1, "{v}: {offers:?}");
                assert_eq!(offers[0]["source_project_id"], owner, "{v}: {offers:?}");
            }
            "available" => assert!(offers.is_empty(), "{v}: {offers:?}"),
            other => panic!("volume {id} is {other}"),
        }
    }
    for project in [PROJECT, OTHER] {
        let owned = all.iter().filter(|v| v["os-vol-tenant-attr:tenant_id"] == project).count();
        let u = d.get(&format!("/os-quota-sets/{project}?usage=True")).json();
        assert_eq!(u["quota_set"]["volumes"]["in_use"], owned, "{project}: {u}");
        assert_eq!(u["quota_set"]["gigabytes"]["in_use"], owned, "{project}: {u}");
    }
    println!("offers open after the kill: {} of {} volumes", transfers.len(), all.len());
    // Every offer left open can still be withdrawn.
    for t in &transfers {
        let path = format!("/os-volume-transfer/{}", t["id"].as_str().unwrap());
        let from = t["source_project_id"].as_str().unwrap();
        assert_eq!(d.call_in(from, "DELETE", &path, None, Some("3.0")).status, 202);
    }
    let left = d.get("/volumes/detail?all_tenants=1&status=awaiting-transfer").json();
    assert_eq!(left["volumes"], json!([]));
}

//! The scheduler through the API, on several file backends: pinning, zones,
//! capacity, weighing, retries on a failing pool, and no overcommit under load.

mod common;

use common::Daemon;
use serde_json::json;

const TWO_BACKENDS: &str = r#"
[quota]
quota_volumes = 100
quota_gigabytes = 10000

[backends.a]
driver = "file"
volume_backend_name = "gold"
size_gb = 100
backend_availability_zone = "az1"

[backends.b]
driver = "file"
volume_backend_name = "silver"
size_gb = 10
backend_availability_zone = "az2"
"#;

fn error_reason(d: &Daemon, id: &str) -> Option<String> {
    d.with_store(|conn| conn.query_row("SELECT error_reason FROM volumes WHERE id = ?1", [id], |r| r.get(0)).unwrap())
}

fn make_type(d: &Daemon, name: &str, specs: serde_json::Value) {
    let r = d.post("/types", json!({"volume_type": {"name": name, "extra_specs": specs}}));
    assert_eq!(r.status, 200, "{}", r.text);
}

fn host_of(d: &Daemon, id: &str) -> String {
    d.wait_status(id, "available")["os-vol-host-attr:host"].as_str().unwrap().to_string()
}

#[test]
fn pinning_zones_and_weighing() {
    let d = Daemon::start_with(TWO_BACKENDS);
    make_type(&d, "silver", json!({"volume_backend_name": "silver"}));
    make_type(&d, "either", json!({"volume_backend_name": "<or> gold <or> silver"}));
    let zones: Vec<String> = d.get("/os-availability-zone").json()["availabilityZoneInfo"]
        .as_array()
        .unwrap()
        .iter()
        .map(|z| z["zoneName"].as_str().unwrap().to_string())
        .collect();
    assert!(zones.contains(&"az1".to_string()) && zones.contains(&"az2".to_string()), "{zones:?}");
    // pinned by volume_backend_name (and the zone must agree)
    let id = d.create_volume(json!({"size": 1, "volume_type": "silver", "availability_zone": "az2"}));
    assert!(host_of(&d, &id).ends_with("@b#b"));
    let id = d.create_volume(json!({"size": 1, "volume_type": "silver", "availability_zone": "az1"}));
    d.wait_status(&id, "error");
    assert!(error_reason(&d, &id).unwrap().contains("AvailabilityZoneFilter"));
    // by zone
    let id = d.create_volume(json!({"size": 1, "availability_zone": "az1"}));
    assert!(host_of(&d, &id).ends_with("@a#a"));
}

#[test]
fn capacity_filter_and_no_valid_host_reason() {
    let d = Daemon::start_with(TWO_BACKENDS);
    make_type(&d, "thick-silver", json!({"volume_backend_name": "silver", "provisioning:type": "thick"}));
    make_type(&d, "thin-silver", json!({"volume_backend_name": "silver"}));
    // b is 10 GiB: a 20 GiB thick volume does not fit; a 20 GiB thin one does (ratio 20)
    let id = d.create_volume(json!({"size": 20, "volume_type": "thick-silver", "availability_zone": "az2"}));
    d.wait_status(&id, "error");
    let why = error_reason(&d, &id).unwrap();
    assert!(why.contains("No valid backend") && why.contains("CapacityFilter"), "{why}");
    assert!(d.log().contains("CapacityFilter"), "the reason is logged too");
    let id = d.create_volume(json!({"size": 20, "volume_type": "thin-silver", "availability_zone": "az2"}));
    d.wait_status(&id, "available");
}

#[test]
fn a_failing_pool_is_retried_elsewhere() {
    let d = Daemon::start_with(&TWO_BACKENDS.replace("\"az2\"", "\"az1\""));
    // a weighs more (100 GiB free); break it, once measured, so the create fails there
    assert_eq!(d.get("/scheduler-stats/get_pools").status, 200, "get_pools answers once the pools are measured");
    let dir = d.data_dir().join("volumes/a");
    std::fs::remove_dir_all(&dir).unwrap();
    std::fs::write(&dir, b"not a directory").unwrap();
    let id = d.create_volume(json!({"size": 1, "availability_zone": "az1"}));
    let host = host_of(&d, &id);
    assert!(host.ends_with("@b#b"), "{host}");
    assert!(d.log().contains("attempt 1/3"), "{}", d.log());
    std::fs::remove_file(&dir).unwrap();
    std::fs::create_dir(&dir).unwrap();
}

#[test]
fn concurrent_creates_never_overcommit() {
    let d = Daemon::start_with(&TWO_BACKENDS.replace("size_gb = 100", "size_gb = 1000"));
    make_type(&d, "thick-silver", json!({"volume_backend_name": "silver", "provisioning:type": "thick"}));
    let ids: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..15)
            .map(|_| {
                s.spawn(|| {
                    d.create_volume(json!({"size": 1, "volume_type": "thick-silver", "availability_zone": "az2"}))
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut available = 0;
    for id in &ids {
        let v = d.wait_volume(id, "settled", |v| v["status"] == "available" || v["status"] == "error");
        if v["status"] == "available" {
            available += 1;
        }
    }
    // b holds 10 GiB (minus what the filesystem reports as used, never more)
    assert!((1..=10).contains(&available), "{available} thick 1 GiB volumes on a 10 GiB pool");
    let caps = &d.get("/scheduler-stats/get_pools?detail=True").json()["pools"];
    let b = caps.as_array().unwrap().iter().find(|p| p["name"].as_str().unwrap().ends_with("#b")).unwrap();
    assert!(b["capabilities"]["provisioned_capacity_gb"].as_f64().unwrap() <= 10.0);
}

/// Poll a resource (`/snapshots/ID`, `/backups/ID`) until it is `available`.
fn wait_available(d: &Daemon, path: &str, key: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        let r = d.get(path);
        assert_eq!(r.status, 200, "{}", r.text);
        match r.json()[key]["status"].as_str().unwrap() {
            "available" => return,
            "error" => panic!("{path} went to error: {}\n{}", r.text, d.log()),
            _ => {}
        }
        assert!(std::time::Instant::now() < deadline, "{path} never became available: {}", r.text);
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn copies_and_restores_that_cannot_fit_are_refused_at_once() {
    let d = Daemon::start_with(TWO_BACKENDS);
    make_type(&d, "thick-silver", json!({"volume_backend_name": "silver", "provisioning:type": "thick"}));
    let v = d.create_volume(json!({"size": 6, "volume_type": "thick-silver", "availability_zone": "az2"}));
    assert!(host_of(&d, &v).ends_with("@b#b"));
    let count = |d: &Daemon| d.get("/volumes").json()["volumes"].as_array().unwrap().len();
    // A copy is made on its source's pool, b, where 4 of 10 GiB are left: refused
    // now (400, with the scheduler's reason), not a volume that goes to error.
    let msg = d.post("/volumes", json!({"volume": {"source_volid": v}})).fault(400, "badRequest");
    assert!(msg.contains("Insufficient free space in pool") && msg.contains("CapacityFilter"), "{msg}");
    assert!(msg.contains(&format!("a copy of volume {v}")), "{msg}");
    let r = d.post("/snapshots", json!({"snapshot": {"volume_id": v}}));
    assert_eq!(r.status, 202, "{}", r.text);
    let s = r.json()["snapshot"]["id"].as_str().unwrap().to_string();
    wait_available(&d, &format!("/snapshots/{s}"), "snapshot");
    let msg = d.post("/volumes", json!({"volume": {"snapshot_id": s}})).fault(400, "badRequest");
    assert!(msg.contains(&format!("a copy of snapshot {s}")) && msg.contains("CapacityFilter"), "{msg}");
    assert_eq!(count(&d), 1, "a refused copy leaves no record");
    // One that fits is made as before.
    let small = d.create_volume(json!({"size": 1, "volume_type": "thick-silver", "availability_zone": "az2"}));
    d.wait_status(&small, "available");
    let copy = d.create_volume(json!({"source_volid": small}));
    assert!(host_of(&d, &copy).ends_with("@b#b"));
    // A volume for a backup's data (3.47 backup_id) that no pool can hold: refused
    // with every pool's reason; the backup stays available.
    let r = d.post("/backups", json!({"backup": {"volume_id": small}}));
    assert_eq!(r.status, 202, "{}", r.text);
    let b = r.json()["backup"]["id"].as_str().unwrap().to_string();
    wait_available(&d, &format!("/backups/{b}"), "backup");
    let msg = d
        .post("/volumes", json!({"volume": {"backup_id": b, "size": 5000, "volume_type": "thick-silver", "availability_zone": "az2"}}))
        .fault(400, "badRequest");
    assert!(msg.contains(&format!("restore backup {b}")) && msg.contains("CapacityFilter"), "{msg}");
    let r = d.get(&format!("/backups/{b}"));
    assert_eq!(r.json()["backup"]["status"], "available", "{}", r.text);
    assert_eq!(count(&d), 3);
}

#[test]
fn a_charge_waiting_for_the_first_measurement_holds_up_no_other_write() {
    let mut d = Daemon::start_with(TWO_BACKENDS);
    let v = d.create_volume(json!({"size": 1, "availability_zone": "az1"}));
    d.wait_status(&v, "available");
    // Started again, its pools' first measurement takes 10 s (then fails): an extend,
    // which charges its pool, waits for it.
    d.env = vec![
        ("HEARTH_FAULTS".into(), "backend.capacity=hang".into()),
        ("HEARTH_FAULTS_HANG_MS".into(), "10000".into()),
    ];
    d.restart();
    std::thread::scope(|s| {
        let extend = s.spawn(|| d.post(&format!("/volumes/{v}/action"), json!({"os-extend": {"new_size": 2}})));
        std::thread::sleep(std::time::Duration::from_millis(500));
        // Another request's write meanwhile is not kept waiting behind it.
        let r = d.post(&format!("/volumes/{v}/metadata"), json!({"metadata": {"k": "v"}}));
        assert_eq!(r.status, 200, "{}", r.text);
        assert!(!extend.is_finished(), "the extend did not wait for the measurement");
        let r = extend.join().unwrap();
        assert!(r.status == 202 || r.status == 400, "{} {}", r.status, r.text);
    });
    assert_eq!(d.get(&format!("/volumes/{v}/metadata")).json()["metadata"]["k"], "v");
}

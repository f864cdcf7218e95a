//! Admin APIs tempest exercises: quota classes, hosts, backend capabilities, service
//! filters, freeze and thaw, retype; and list edge cases (limit=0, unknown status).

mod common;

use common::Daemon;
use serde_json::{json, Value};

fn host_of(d: &Daemon) -> String {
    let pools = d.get("/scheduler-stats/get_pools").json();
    let pool = pools["pools"][0]["name"].as_str().unwrap().to_string();
    pool.split('#').next().unwrap().to_string()
}

#[test]
fn quota_classes_change_every_projects_defaults() {
    let d = Daemon::start();
    let c = d.get("/os-quota-class-sets/default").json();
    assert_eq!(c["quota_class_set"]["id"], "default");
    let volumes = c["quota_class_set"]["volumes"].as_i64().unwrap();
    let r =
        d.put("/os-quota-class-sets/default", json!({"quota_class_set": {"volumes": volumes + 5, "gigabytes": 77}}));
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json()["quota_class_set"]["volumes"], volumes + 5);
    assert!(r.json()["quota_class_set"].get("id").is_none());
    // Any project's defaults and limits follow, unless overridden.
    let other = "0c0ffee0c0ffee0c0ffee0c0ffee0c0f";
    assert_eq!(d.get(&format!("/os-quota-sets/{other}/defaults")).json()["quota_set"]["gigabytes"], 77);
    assert_eq!(d.get(&format!("/os-quota-sets/{other}")).json()["quota_set"]["volumes"], volumes + 5);
    // Per-type limits are classes' keys too, once the type exists.
    d.post("/types", json!({"volume_type": {"name": "gold"}}));
    let r = d.put("/os-quota-class-sets/default", json!({"quota_class_set": {"volumes_gold": 3}}));
    assert_eq!(r.json()["quota_class_set"]["volumes_gold"], 3);
    d.put("/os-quota-class-sets/default", json!({"quota_class_set": {"volumes_lead": 3}})).fault(400, "badRequest");
    d.put("/os-quota-class-sets/default", json!({"quota_class_set": {"volumes": -2}})).fault(400, "badRequest");
    d.put("/os-quota-class-sets/default", json!({"quota_class_set": {"volumes": "many"}})).fault(400, "badRequest");
    // Survives a restart.
    let mut d = d;
    d.restart();
    assert_eq!(d.get(&format!("/os-quota-sets/{other}/defaults")).json()["quota_set"]["gigabytes"], 77);
}

#[test]
fn hosts_capabilities_and_service_filters() {
    let d = Daemon::start();
    let host = host_of(&d);
    let bare = host.split('@').next().unwrap().to_string();
    let hosts = d.get("/os-hosts").json();
    let names: Vec<&str> =
        hosts["hosts"].as_array().unwrap().iter().map(|h| h["host_name"].as_str().unwrap()).collect();
    assert!(names.contains(&host.as_str()) && names.contains(&bare.as_str()), "{hosts}");
    for h in hosts["hosts"].as_array().unwrap() {
        for k in ["service-status", "service", "zone", "service-state", "host_name", "last-update"] {
            assert!(h.get(k).is_some(), "{h}");
        }
    }
    let vid = d.create_volume(json!({"size": 2}));
    d.wait_status(&vid, "available");
    let shown = d.get(&format!("/os-hosts/{host}")).json();
    let rows = shown["host"].as_array().unwrap();
    assert_eq!(rows[0]["resource"]["project"], "(total)");
    assert_eq!(rows[0]["resource"]["volume_count"], "1");
    assert_eq!(rows[0]["resource"]["total_volume_gb"], "2");
    assert_eq!(rows[1]["resource"]["project"], common::PROJECT);
    d.get("/os-hosts/nowhere@none").fault(404, "itemNotFound");

    let caps = d.get(&format!("/capabilities/{}", host.replace('@', "%40"))).json();
    assert!(caps["namespace"].as_str().unwrap().starts_with("OS::Storage::Capabilities::"), "{caps}");
    let pool_caps = &d.get("/scheduler-stats/get_pools?detail=True").json()["pools"][0]["capabilities"];
    for k in ["vendor_name", "volume_backend_name", "storage_protocol"] {
        assert_eq!(caps[k], pool_caps[k], "{k}");
    }
    d.get("/capabilities/nowhere@none").fault(404, "itemNotFound");

    // ?host= matches as Cinder's: the bare host takes in its backends.
    let binaries = |q: &str| -> Vec<String> {
        let mut b: Vec<String> = d.get(&format!("/os-services?{q}")).json()["services"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["binary"].as_str().unwrap().to_string())
            .collect();
        b.sort();
        b
    };
    assert_eq!(binaries(&format!("host={bare}")), ["cinder-scheduler", "cinder-volume"]);
    assert_eq!(binaries(&format!("host={bare}&binary=cinder-volume")), ["cinder-volume"]);
    assert_eq!(binaries(&format!("host={host}")), ["cinder-volume"]);
    assert!(binaries("host=elsewhere").is_empty());
}

#[test]
fn a_frozen_backend_takes_no_new_work() {
    let d = Daemon::start();
    let host = host_of(&d);
    let vid = d.create_volume(json!({"size": 1}));
    d.wait_status(&vid, "available");
    d.put("/os-services/freeze", json!({"host": "nowhere"})).fault(400, "badRequest");
    d.put("/os-services/thaw", json!({"host": host})).fault(400, "badRequest");
    assert_eq!(d.put("/os-services/freeze", json!({"host": host})).status, 200);
    d.put("/os-services/freeze", json!({"host": host})).fault(400, "badRequest");
    let svc = d.get("/os-services?binary=cinder-volume").json();
    assert_eq!(svc["services"][0]["frozen"], true);
    // No deletes, extends or snapshots on it; new volumes find no pool.
    d.delete(&format!("/volumes/{vid}")).fault(400, "badRequest");
    d.post(&format!("/volumes/{vid}/action"), json!({"os-extend": {"new_size": 2}})).fault(400, "badRequest");
    d.post("/snapshots", json!({"snapshot": {"volume_id": vid}})).fault(400, "badRequest");
    let other = d.create_volume(json!({"size": 1}));
    let v = d.wait_volume(&other, "settled", |v| v["status"] == "error");
    assert_eq!(v["status"], "error");
    // Thawed, it works again, and the state survives a restart.
    let mut d = d;
    d.restart();
    d.delete(&format!("/volumes/{vid}")).fault(400, "badRequest");
    assert_eq!(d.put("/os-services/thaw", json!({"host": host})).status, 200);
    assert_eq!(d.delete(&format!("/volumes/{vid}")).status, 202);
    d.wait_gone(&vid);
}

#[test]
fn retype_in_place() {
    let d = Daemon::start();
    for name in ["bronze", "silver"] {
        assert_eq!(d.post("/types", json!({"volume_type": {"name": name}})).status, 200);
    }
    let vid = d.create_volume(json!({"size": 1, "volume_type": "bronze"}));
    d.wait_status(&vid, "available");
    let act = |body: Value| d.post(&format!("/volumes/{vid}/action"), body);
    assert_eq!(act(json!({"os-retype": {"new_type": "silver", "migration_policy": "never"}})).status, 202);
    let v = d.wait_status(&vid, "available");
    assert_eq!(v["volume_type"], "silver");
    act(json!({"os-retype": {"new_type": "silver"}})).fault(400, "badRequest");
    act(json!({"os-retype": {"new_type": "lead"}})).fault(404, "itemNotFound");
    act(json!({"os-retype": {"new_type": "bronze", "migration_policy": "sometimes"}})).fault(400, "badRequest");
    act(json!({"os-retype": {}})).fault(400, "badRequest");
    // A type no pool of this volume suits would need a migration: refused.
    let r =
        d.post("/types", json!({"volume_type": {"name": "elsewhere", "extra_specs": {"volume_backend_name": "none"}}}));
    assert_eq!(r.status, 200);
    let msg =
        act(json!({"os-retype": {"new_type": "elsewhere", "migration_policy": "on-demand"}})).fault(400, "badRequest");
    assert!(msg.contains("migrate"), "{msg}");
    // The per-type quota of the new type is checked.
    let other = d.create_volume(json!({"size": 1, "volume_type": "bronze"}));
    d.wait_status(&other, "available");
    let project = common::PROJECT;
    d.put(&format!("/os-quota-sets/{project}"), json!({"quota_set": {"volumes_silver": 1}}));
    d.post(&format!("/volumes/{other}/action"), json!({"os-retype": {"new_type": "silver"}})).fault(413, "overLimit");
    let usage = d.get(&format!("/os-quota-sets/{project}?usage=True")).json();
    assert_eq!(usage["quota_set"]["volumes_silver"]["in_use"], 1);
    assert_eq!(usage["quota_set"]["volumes_bronze"]["in_use"], 1);
}

#[test]
fn list_edge_cases_as_cinder() {
    let d = Daemon::start();
    let vid = d.create_volume(json!({"size": 1}));
    d.wait_status(&vid, "available");
    assert_eq!(d.post("/snapshots", json!({"snapshot": {"volume_id": vid}})).status, 202);
    for path in ["/volumes?limit=0", "/volumes/detail?limit=0", "/snapshots?limit=0", "/snapshots/detail?limit=0"] {
        let r = d.get(path).json();
        let list = r.as_object().unwrap().values().next().unwrap().as_array().unwrap().clone();
        assert!(list.is_empty(), "{path}: {r}");
    }
    for path in ["/volumes?status=null", "/volumes/detail?status=null", "/snapshots?status=nothing"] {
        let r = d.get(path);
        assert_eq!(r.status, 200, "{path}: {r:?}");
    }
    assert!(d.get("/volumes?status=null").json()["volumes"].as_array().unwrap().is_empty());
    d.post("/snapshots", json!({"snapshot": {"volume_id": null}})).fault(404, "itemNotFound");
    d.post("/snapshots", json!({"snapshot": {"name": "x"}})).fault(400, "badRequest");
}

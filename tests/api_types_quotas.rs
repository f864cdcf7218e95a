//! Volume types, quotas, limits, zones, pools and services over HTTP.

mod common;

use common::{backends_toml, Daemon, PROJECT};
use serde_json::json;

#[test]
fn volume_types() {
    let d = Daemon::start();
    let r = d.get("/types/default").json();
    assert_eq!(r["volume_type"]["name"], "__DEFAULT__");
    // create as the cinder CLI sends it, then pin with an extra spec
    let r = d.post(
        "/types",
        json!({"volume_type": {"name": "fast", "description": "fast", "os-volume-type-access:is_public": true}}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    let t = r.json()["volume_type"].clone();
    for f in ["id", "name", "description", "is_public", "os-volume-type-access:is_public", "extra_specs"] {
        assert!(t.get(f).is_some(), "type lacks {f}: {t}");
    }
    let tid = t["id"].as_str().unwrap().to_string();
    let r =
        d.post(&format!("/types/{tid}/extra_specs"), json!({"extra_specs": {"volume_backend_name": "file", "k": "v"}}));
    assert_eq!(r.json()["extra_specs"]["k"], "v");
    assert_eq!(d.get(&format!("/types/{tid}/extra_specs/k")).json()["k"], "v");
    assert_eq!(d.put(&format!("/types/{tid}/extra_specs/k"), json!({"k": "w"})).json()["k"], "w");
    assert_eq!(d.delete(&format!("/types/{tid}/extra_specs/k")).status, 202);
    d.get(&format!("/types/{tid}/extra_specs/k")).fault(404, "itemNotFound");
    // lookups by name are 404 (clients then list)
    d.get("/types/fast").fault(404, "itemNotFound");
    let l = d.get("/types?is_public=None").json();
    assert_eq!(l["volume_types"].as_array().unwrap().len(), 2);
    assert_eq!(d.get("/types?is_public=none").status, 200);
    d.get("/types?is_public=maybe").fault(400, "badRequest");
    // duplicate, bad names
    d.post("/types", json!({"volume_type": {"name": "fast"}})).fault(409, "conflictingRequest");
    d.post("/types", json!({"volume_type": {"name": ""}})).fault(400, "badRequest");
    d.post("/types", json!({"volume_type": {}})).fault(400, "badRequest");
    d.post("/types", json!({"volume_type": {"name": "x", "extra_specs": {"a": 1}}})).fault(400, "badRequest");
    // update
    let r = d.put(&format!("/types/{tid}"), json!({"volume_type": {"description": "faster"}}));
    assert_eq!(r.json()["volume_type"]["description"], "faster");
    d.put(&format!("/types/{tid}"), json!({"volume_type": {}})).fault(400, "badRequest");
    // a volume of the type pins it; the type cannot go while used
    let vid = d.create_volume(json!({"size": 1, "volume_type": "fast"}));
    let v = d.wait_status(&vid, "available");
    assert_eq!(v["volume_type"], "fast");
    d.delete(&format!("/types/{tid}")).fault(400, "badRequest");
    d.delete(&format!("/volumes/{vid}"));
    d.wait_gone(&vid);
    assert_eq!(d.delete(&format!("/types/{tid}")).status, 202);
    d.get(&format!("/types/{tid}")).fault(404, "itemNotFound");
    // the default type stays
    let def = d.get("/types/default").json()["volume_type"]["id"].as_str().unwrap().to_string();
    d.delete(&format!("/types/{def}")).fault(400, "badRequest");
}

#[test]
fn private_types_and_access() {
    let d = Daemon::start_with(&format!("admin_projects = [\"admin\"]\n{}", common::backends_toml()));
    let admin = |m: &str, p: &str, b: Option<serde_json::Value>| {
        let body = b.map(|b| b.to_string());
        d.raw(m, &format!("/v3/admin{p}"), body.as_deref().map(str::as_bytes), &[])
    };
    let r = admin(
        "POST",
        "/types",
        Some(json!({"volume_type": {"name": "secret", "os-volume-type-access:is_public": false}})),
    );
    let tid = r.json()["volume_type"]["id"].as_str().unwrap().to_string();
    // invisible to alice
    assert_eq!(d.raw("GET", &format!("/v3/alice/types/{tid}"), None, &[]).status, 404);
    let l = d.raw("GET", "/v3/alice/types", None, &[]).json();
    assert!(l["volume_types"].as_array().unwrap().iter().all(|t| t["name"] != "secret"));
    let r = d.raw("POST", "/v3/alice/volumes", Some(br#"{"volume":{"size":1,"volume_type":"secret"}}"#), &[]);
    r.fault(404, "itemNotFound");
    // alice may not create types
    d.raw("POST", "/v3/alice/types", Some(br#"{"volume_type":{"name":"mine"}}"#), &[]).fault(403, "forbidden");
    // grant access
    let r = admin("POST", &format!("/types/{tid}/action"), Some(json!({"addProjectAccess": {"project": "alice"}})));
    assert_eq!(r.status, 202, "{}", r.text);
    admin("POST", &format!("/types/{tid}/action"), Some(json!({"addProjectAccess": {"project": "alice"}})))
        .fault(409, "conflictingRequest");
    let acc = admin("GET", &format!("/types/{tid}/os-volume-type-access"), None).json();
    assert_eq!(acc["volume_type_access"][0]["project_id"], "alice");
    assert_eq!(d.raw("GET", &format!("/v3/alice/types/{tid}"), None, &[]).status, 200);
    let r = d.raw("POST", "/v3/alice/volumes", Some(br#"{"volume":{"size":1,"volume_type":"secret"}}"#), &[]);
    assert_eq!(r.status, 202, "{}", r.text);
    // revoke
    let r = admin("POST", &format!("/types/{tid}/action"), Some(json!({"removeProjectAccess": {"project": "alice"}})));
    assert_eq!(r.status, 202);
    assert_eq!(d.raw("GET", &format!("/v3/alice/types/{tid}"), None, &[]).status, 404);
    admin("POST", &format!("/types/{tid}/action"), Some(json!({"removeProjectAccess": {"project": "alice"}})))
        .fault(404, "itemNotFound");
    // public types have no access list
    let def = admin("GET", "/types/default", None).json()["volume_type"]["id"].as_str().unwrap().to_string();
    admin("POST", &format!("/types/{def}/action"), Some(json!({"addProjectAccess": {"project": "bob"}})))
        .fault(400, "badRequest");
}

#[test]
fn quotas_enforced_and_managed() {
    let d = Daemon::start();
    let q = d.get(&format!("/os-quota-sets/{PROJECT}?usage=False")).json();
    assert_eq!(q["quota_set"]["volumes"], 10);
    assert_eq!(q["quota_set"]["gigabytes"], 1000);
    assert_eq!(q["quota_set"]["id"], PROJECT);
    assert_eq!(q["quota_set"]["volumes___DEFAULT__"], -1);
    let dq = d.get(&format!("/os-quota-sets/{PROJECT}/defaults")).json();
    assert_eq!(dq["quota_set"]["snapshots"], 10);
    // update as the cinder CLI sends it
    let r = d.put(
        &format!("/os-quota-sets/{PROJECT}?skip_validation=False"),
        json!({"quota_set": {"tenant_id": PROJECT, "volumes": 2, "gigabytes": 5}}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["quota_set"]["volumes"], 2);
    let a = d.create_volume(json!({"size": 2}));
    let b = d.create_volume(json!({"size": 2}));
    // third volume: over the volumes quota
    let r = d.post("/volumes", json!({"volume": {"size": 1}}));
    let msg = r.fault(413, "overLimit");
    assert!(msg.contains("volumes"), "{msg}");
    assert_eq!(r.json()["overLimit"]["retryAfter"], "0");
    assert_eq!(r.header("Retry-After"), Some("0"));
    // usage
    let u = d.get(&format!("/os-quota-sets/{PROJECT}?usage=True")).json();
    assert_eq!(u["quota_set"]["volumes"]["in_use"], 2);
    assert_eq!(u["quota_set"]["gigabytes"]["in_use"], 4);
    assert_eq!(u["quota_set"]["gigabytes"]["limit"], 5);
    // extend beyond gigabytes
    d.wait_status(&a, "available");
    let r = d.post(&format!("/volumes/{a}/action"), json!({"os-extend": {"new_size": 4}}));
    assert!(r.fault(413, "overLimit").contains("gigabytes"));
    // cannot lower below use when validating; can when skipping
    d.put(&format!("/os-quota-sets/{PROJECT}?skip_validation=False"), json!({"quota_set": {"volumes": 1}}))
        .fault(400, "badRequest");
    assert_eq!(d.put(&format!("/os-quota-sets/{PROJECT}"), json!({"quota_set": {"volumes": 1}})).status, 200);
    d.put(&format!("/os-quota-sets/{PROJECT}"), json!({"quota_set": {"bogus": 1}})).fault(400, "badRequest");
    d.put(&format!("/os-quota-sets/{PROJECT}"), json!({"quota_set": {"volumes": -2}})).fault(400, "badRequest");
    d.put(&format!("/os-quota-sets/{PROJECT}"), json!({"quota_set": {"volumes": "many"}})).fault(400, "badRequest");
    // per-type quotas
    assert_eq!(
        d.put(
            &format!("/os-quota-sets/{PROJECT}"),
            json!({"quota_set": {"volumes": 10, "gigabytes": 100, "volumes___DEFAULT__": 2}})
        )
        .status,
        200
    );
    d.post("/volumes", json!({"volume": {"size": 1}})).fault(413, "overLimit");
    // delete resets to defaults
    assert_eq!(d.delete(&format!("/os-quota-sets/{PROJECT}")).status, 200);
    assert_eq!(d.get(&format!("/os-quota-sets/{PROJECT}")).json()["quota_set"]["volumes"], 10);
    // per_volume_gigabytes
    d.put(&format!("/os-quota-sets/{PROJECT}"), json!({"quota_set": {"per_volume_gigabytes": 3}}));
    d.post("/volumes", json!({"volume": {"size": 4}})).fault(413, "overLimit");
    // limits
    let l = d.get("/limits").json();
    let abs = &l["limits"]["absolute"];
    assert_eq!(abs["maxTotalVolumes"], 10);
    assert_eq!(abs["totalVolumesUsed"], 2);
    assert_eq!(abs["totalGigabytesUsed"], 4);
    assert!(l["limits"]["rate"].as_array().unwrap().is_empty());
    for id in [a, b] {
        d.wait_status(&id, "available");
        d.delete(&format!("/volumes/{id}"));
        d.wait_gone(&id);
    }
    assert_eq!(d.get("/limits").json()["limits"]["absolute"]["totalVolumesUsed"], 0);
}

#[test]
fn zones_pools_services() {
    let d = Daemon::start();
    let z = d.get("/os-availability-zone").json();
    assert_eq!(z["availabilityZoneInfo"][0]["zoneName"], "nova");
    assert_eq!(z["availabilityZoneInfo"][0]["zoneState"]["available"], true);
    let p = d.get("/scheduler-stats/get_pools").json();
    let name = p["pools"][0]["name"].as_str().unwrap().to_string();
    assert!(name.contains('@') && name.contains('#'), "{name}");
    assert!(p["pools"][0].get("capabilities").is_none());
    let p = d.get("/scheduler-stats/get_pools?detail=True").json();
    let caps = &p["pools"][0]["capabilities"];
    for k in [
        "pool_name",
        "total_capacity_gb",
        "free_capacity_gb",
        "allocated_capacity_gb",
        "provisioned_capacity_gb",
        "reserved_percentage",
        "max_over_subscription_ratio",
        "thin_provisioning_support",
        "thick_provisioning_support",
        "volume_backend_name",
        "storage_protocol",
        "QoS_support",
        "multiattach",
        "location_info",
        "backend_state",
        "total_volumes",
    ] {
        assert!(caps.get(k).is_some(), "capability {k} missing: {caps}");
    }
    // services: disable the volume service and creates fail with NoValidHost
    let s = d.get("/os-services").json();
    let vol = s["services"].as_array().unwrap().iter().find(|s| s["binary"] == "cinder-volume").unwrap().clone();
    assert_eq!(vol["status"], "enabled");
    assert_eq!(vol["state"], "up");
    let host = vol["host"].as_str().unwrap().to_string();
    let r = d.put(
        "/os-services/disable-log-reason",
        json!({"host": host, "binary": "cinder-volume", "disabled_reason": "maintenance"}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["status"], "disabled");
    assert_eq!(r.json()["disabled_reason"], "maintenance");
    let id = d.create_volume(json!({"size": 1}));
    d.wait_status(&id, "error");
    let r = d.put("/os-services/enable", json!({"host": host, "binary": "cinder-volume"}));
    assert_eq!(r.json()["status"], "enabled");
    let id2 = d.create_volume(json!({"size": 1}));
    d.wait_status(&id2, "available");
    d.put("/os-services/enable", json!({"host": "nowhere", "binary": "cinder-volume"})).fault(404, "itemNotFound");
    d.put("/os-services/reboot", json!({"host": host})).fault(404, "itemNotFound");
    // an error volume never placed is deleted at once
    assert_eq!(d.delete(&format!("/volumes/{id}")).status, 202);
    assert_eq!(d.get(&format!("/volumes/{id}")).status, 404);
}

#[test]
fn a_volume_on_another_hosts_pool_is_left_to_that_host() {
    // A volume on a pool of another host (this node under an earlier `host`) is not
    // this node's to touch: what needs its disks is refused with the node to ask,
    // before anything is recorded; records still change.
    let d = Daemon::start_with(&backends_toml());
    let v = d.create_volume(json!({"size": 1}));
    let pool = d.wait_status(&v, "available")["os-vol-host-attr:host"].as_str().unwrap().to_string();
    let theirs = format!("earlier@{}", pool.split_once('@').unwrap().1);
    d.with_store(|c| c.execute(&format!("UPDATE volumes SET host = '{theirs}' WHERE id = '{v}'"), []).unwrap());
    let connector = json!({"host": "compute-1", "initiator": "iqn.1994-05.com.redhat:c1"});
    for (what, r) in [
        ("delete", d.delete(&format!("/volumes/{v}"))),
        ("extend", d.post(&format!("/volumes/{v}/action"), json!({"os-extend": {"new_size": 2}}))),
        ("snapshot", d.post("/snapshots", json!({"snapshot": {"volume_id": v}}))),
        ("clone", d.post("/volumes", json!({"volume": {"size": 1, "source_volid": v}}))),
        ("attach", d.post("/attachments", json!({"attachment": {"volume_uuid": v, "connector": connector}}))),
        (
            "connect",
            d.post(&format!("/volumes/{v}/action"), json!({"os-initialize_connection": {"connector": connector}})),
        ),
        ("backup", d.post("/backups", json!({"backup": {"volume_id": v}}))),
    ] {
        // On PostgreSQL the request is handed to that node, which is not in the fleet.
        let (status, said) = match d.database {
            None => (409, format!("is on pool {theirs}, which node earlier serves")),
            Some(_) => (503, "Node earlier, which the volume's pool names, has no volume service".to_string()),
        };
        assert_eq!(r.status, status, "{what}: {}", r.text);
        assert!(r.text.contains(&said), "{what}: {}", r.text);
    }
    let r = d.post(&format!("/volumes/{v}/metadata"), json!({"metadata": {"k": "v"}}));
    assert_eq!(r.status, 200, "{}", r.text);
    let after = d.get(&format!("/volumes/{v}")).json()["volume"].clone();
    assert_eq!((after["status"].clone(), after["size"].clone()), (json!("available"), json!(1)), "{after}");
    for table in ["snapshots", "backups", "attachments"] {
        assert_eq!(d.store_count(&format!("SELECT COUNT(*) FROM {table}")), 0, "{table}");
    }
    assert_eq!(d.store_count("SELECT COUNT(*) FROM volumes"), 1);
}

#[test]
fn services_of_another_host_change_nothing_here_and_the_store_is_followed() {
    let d = Daemon::start_with(&format!("report_interval = 1\n{}", backends_toml()));
    let services = d.get("/os-services?binary=cinder-volume").json();
    let own = services["services"][0]["host"].as_str().unwrap().to_string();
    let backend = own.split_once('@').unwrap().1.to_string();
    // A volume service of another host with this node's backend name: a fleet's other
    // node, or this node under an earlier `host`.
    let other = format!("elsewhere@{backend}");
    d.with_store(|c| {
        c.execute(
            &format!(
                "INSERT INTO services (host, binary, zone, disabled, disabled_reason, updated_at, frozen)
                 VALUES ('{other}', 'cinder-volume', 'nova', 0, NULL, '2026-12-04T00:00:00Z', 0)"
            ),
            [],
        )
        .unwrap()
    });
    // Disabling and freezing it are recorded on it, and leave this node's pools alone.
    let r = d.put("/os-services/disable", json!({"host": other, "binary": "cinder-volume"}));
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["status"], "disabled");
    assert_eq!(d.put("/os-services/freeze", json!({"host": "elsewhere"})).status, 200);
    let v = d.create_volume(json!({"size": 1}));
    d.wait_status(&v, "available");
    let r = d.post(&format!("/volumes/{v}/action"), json!({"os-extend": {"new_size": 2}}));
    assert_eq!(r.status, 202, "{}", r.text);
    d.wait_status(&v, "available");
    // This node's own service changed in the store by someone else (another node's API)
    // takes effect here within a report interval.
    let placed = |d: &Daemon| {
        let id = d.create_volume(json!({"size": 1}));
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let status = d.get(&format!("/volumes/{id}")).json()["volume"]["status"].as_str().unwrap().to_string();
            if status == "available" {
                return true;
            }
            if status != "creating" {
                // Never placed: deleted at once, so that the tries keep within quota.
                assert_eq!(d.delete(&format!("/volumes/{id}")).status, 202);
                return false;
            }
            assert!(std::time::Instant::now() < deadline, "volume {id} still creating");
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    };
    let set_disabled = |flag: i32| {
        d.with_store(|c| {
            c.execute(&format!("UPDATE services SET disabled = {flag} WHERE host = '{own}'"), []).unwrap();
        })
    };
    let followed = |want: bool| {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while placed(&d) != want {
            assert!(std::time::Instant::now() < deadline, "the store's change to {own} was not followed");
            std::thread::sleep(std::time::Duration::from_millis(500));
        }
    };
    set_disabled(1);
    followed(false);
    set_disabled(0);
    followed(true);
}

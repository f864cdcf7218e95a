//! Generic volume groups over HTTP: group types and their specs (3.11), groups and
//! their volumes (3.13), group snapshots and groups made from a source (3.14), the
//! status resets (3.19, 3.20); bad input, wrong states, other projects; and SIGKILL
//! while a group snapshot, a copy of a group or a group delete is in flight.

mod common;

use std::io::{Read, Seek, SeekFrom, Write};
use std::time::{Duration, Instant};

use common::{Daemon, Resp, PROJECT};
use serde_json::{json, Value};

/// A request as `project` (noauth) at microversion `mv`.
fn req(d: &Daemon, project: &str, method: &str, path: &str, body: Option<Value>, mv: &str) -> Resp {
    let body = body.map(|b| b.to_string());
    let token = format!("u-{project}:{project}");
    let version = format!("volume {mv}");
    d.raw(
        method,
        &format!("/v3/{project}{path}"),
        body.as_deref().map(str::as_bytes),
        &[("X-Auth-Token", token.as_str()), ("OpenStack-API-Version", version.as_str())],
    )
}

fn id_of(r: &Resp, key: &str) -> String {
    assert!(r.status < 300, "{} {}", r.status, r.text);
    r.json()[key]["id"].as_str().unwrap_or_else(|| panic!("no {key} id: {}", r.text)).to_string()
}

fn volume_type(d: &Daemon, name: &str) -> String {
    id_of(&d.post("/types", json!({"volume_type": {"name": name}})), "volume_type")
}

fn group_type(d: &Daemon, name: &str) -> String {
    let r = d.post("/group_types", json!({"group_type": {"name": name}}));
    assert_eq!(r.status, 202, "{}", r.text);
    id_of(&r, "group_type")
}

/// Poll `path` until its `key` object has `status` (bounded); returns it.
fn wait_for(d: &Daemon, path: &str, key: &str, status: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let r = d.get(path);
        if r.status == 200 && r.json()[key]["status"] == status {
            return r.json()[key].clone();
        }
        assert!(Instant::now() < deadline, "{path} never became {status}: {} {}\n{}", r.status, r.text, d.log());
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Poll `path` until it is 404.
fn wait_gone(d: &Daemon, path: &str) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while d.get(path).status != 404 {
        assert!(Instant::now() < deadline, "{path} was never deleted\n{}", d.log());
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn create_group(d: &Daemon, gtype: &str, vtypes: &[&str], name: &str) -> String {
    let r = d.post("/groups", json!({"group": {"group_type": gtype, "volume_types": vtypes, "name": name}}));
    assert_eq!(r.status, 202, "{}", r.text);
    let id = id_of(&r, "group");
    wait_for(d, &format!("/groups/{id}"), "group", "available");
    id
}

fn group_volume(d: &Daemon, group: &str, vtype: &str) -> String {
    let id = d.create_volume(json!({"size": 1, "volume_type": vtype, "group_id": group}));
    d.wait_status(&id, "available");
    id
}

fn ids(list: &Value) -> Vec<String> {
    list.as_array().unwrap().iter().map(|o| o["id"].as_str().unwrap().to_string()).collect()
}

#[test]
fn group_types_and_their_specs() {
    let d = Daemon::start_with(&format!(
        "default_group_type = \"gdef\"\nadmin_projects = [\"{PROJECT}\"]\n{}",
        common::backends_toml()
    ));
    // Before 3.11 there are no group types.
    d.call("GET", "/group_types", None, Some("3.10")).fault(404, "itemNotFound");
    // The configured default does not exist yet.
    d.get("/group_types/default").fault(404, "itemNotFound");

    let r = d.post(
        "/group_types",
        json!({"group_type": {"name": "gdef", "description": "d", "is_public": "true",
                              "group_specs": {"consistent_group_snapshot_enabled": "<is> False"}}}),
    );
    assert_eq!(r.status, 202, "{}", r.text);
    let t = r.json()["group_type"].clone();
    let keys: Vec<&String> = t.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["description", "group_specs", "id", "is_public", "name"]);
    assert_eq!(t["is_public"], true);
    let gdef = t["id"].as_str().unwrap().to_string();
    assert_eq!(d.get("/group_types/default").json()["group_type"]["id"], gdef.as_str());
    d.post("/group_types", json!({"group_type": {"name": "gdef"}})).fault(409, "conflictingRequest");
    for bad in [
        json!({"group_type": {}}),
        json!({"group_type": {"name": "  "}}),
        json!({"group_type": {"name": "x", "colour": "red"}}),
        json!({"group_type": {"name": "x", "is_public": "perhaps"}}),
        json!({"group_type": {"name": "x", "group_specs": {"bad key": "v"}}}),
        json!({"group_type": {"name": "x", "group_specs": {"k": 1}}}),
        json!({"group_type": "x"}),
    ] {
        d.post("/group_types", bad).fault(400, "badRequest");
    }

    // A private type: listed for admins with is_public=false or None, never by default.
    let private =
        id_of(&d.post("/group_types", json!({"group_type": {"name": "b-private", "is_public": false}})), "group_type");
    let a = group_type(&d, "a-public");
    let names = |q: &str| -> Vec<String> {
        d.get(&format!("/group_types{q}")).json()["group_types"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(names("?sort=name:asc&is_public=None"), ["a-public", "b-private", "gdef"]);
    assert_eq!(names("?sort=name:desc&is_public=None"), ["gdef", "b-private", "a-public"]);
    assert_eq!(names("?is_public=false"), ["b-private"]);
    assert_eq!(names("?sort=name"), ["gdef", "a-public"]);
    assert_eq!(names("?sort=name:asc&limit=1").len(), 1);
    d.get("/group_types?is_public=perhaps").fault(400, "badRequest");
    d.get("/group_types?sort=colour").fault(400, "badRequest");
    assert_eq!(d.get(&format!("/group_types/{private}")).status, 200);

    // Update: name, description, visibility; a taken name is a conflict.
    let r = d.put(&format!("/group_types/{a}"), json!({"group_type": {"name": "a-renamed", "description": "new"}}));
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["group_type"]["name"], "a-renamed");
    assert_eq!(r.json()["group_type"]["description"], "new");
    d.put(&format!("/group_types/{a}"), json!({"group_type": {"name": "gdef"}})).fault(409, "conflictingRequest");
    d.put(&format!("/group_types/{a}"), json!({"group_type": {"name": " "}})).fault(400, "badRequest");
    d.put(&format!("/group_types/{a}"), json!({"group_type": {}})).fault(400, "badRequest");
    d.put("/group_types/00000000-0000-4000-8000-000000000000", json!({"group_type": {"description": "x"}}))
        .fault(404, "itemNotFound");

    // Group specs: create (202, echoed), list, show, update one, delete.
    let specs = format!("/group_types/{a}/group_specs");
    let r = d.post(&specs, json!({"group_specs": {"key1": "value1", "key2": "value2"}}));
    assert_eq!((r.status, r.json()), (202, json!({"group_specs": {"key1": "value1", "key2": "value2"}})));
    let r = d.post(&specs, json!({"group_specs": {"key2": "value2-updated", "key3": "value3"}}));
    assert_eq!(r.status, 202);
    assert_eq!(d.get(&format!("{specs}/key2")).json(), json!({"key2": "value2-updated"}));
    let r = d.put(&format!("{specs}/key3"), json!({"key3": "value3-updated"}));
    assert_eq!((r.status, r.json()), (200, json!({"key3": "value3-updated"})));
    d.put(&format!("{specs}/key3"), json!({"key1": "x"})).fault(400, "badRequest");
    d.put(&format!("{specs}/key3"), json!({"key3": "x", "key1": "y"})).fault(400, "badRequest");
    d.post(&specs, json!({"specs": {"a": "b"}})).fault(400, "badRequest");
    assert_eq!(
        d.get(&specs).json(),
        json!({"group_specs": {"key1": "value1", "key2": "value2-updated", "key3": "value3-updated"}})
    );
    assert_eq!(d.delete(&format!("{specs}/key1")).status, 202);
    d.get(&format!("{specs}/key1")).fault(404, "itemNotFound");
    d.delete(&format!("{specs}/key1")).fault(404, "itemNotFound");
    d.get("/group_types/00000000-0000-4000-8000-000000000000/group_specs").fault(404, "itemNotFound");

    // Non-admins: no create, no specs, no private types; public ones without specs.
    let other = |m: &str, p: &str, b: Option<Value>| req(&d, "alice", m, p, b, "latest");
    other("POST", "/group_types", Some(json!({"group_type": {"name": "mine"}}))).fault(403, "forbidden");
    other("GET", &specs, None).fault(403, "forbidden");
    other("GET", &format!("/group_types/{private}"), None).fault(404, "itemNotFound");
    let seen = other("GET", "/group_types?is_public=None", None).json();
    let listed: Vec<&str> =
        seen["group_types"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert!(!listed.contains(&"b-private"), "{seen}");
    let shown = other("GET", &format!("/group_types/{a}"), None).json()["group_type"].clone();
    assert!(shown.get("group_specs").is_none(), "{shown}");

    // Delete: refused while a group has the type.
    let vt = volume_type(&d, "vt");
    let g = create_group(&d, &a, &[&vt], "g");
    d.delete(&format!("/group_types/{a}")).fault(400, "badRequest");
    // The volume type too.
    d.delete(&format!("/types/{vt}")).fault(400, "badRequest");
    assert_eq!(d.post(&format!("/groups/{g}/action"), json!({"delete": {"delete-volumes": false}})).status, 202);
    wait_gone(&d, &format!("/groups/{g}"));
    assert_eq!(d.delete(&format!("/group_types/{a}")).status, 202);
    d.get(&format!("/group_types/{a}")).fault(404, "itemNotFound");
}

#[test]
fn groups_and_their_volumes() {
    let d = Daemon::start();
    let gt = group_type(&d, "gt");
    let vt = volume_type(&d, "vt");
    let vt2 = volume_type(&d, "vt2");
    d.call("GET", "/groups", None, Some("3.12")).fault(404, "itemNotFound");

    // Bad input.
    for (bad, code) in [
        (json!({"group": {"group_type": gt}}), 400),
        (json!({"group": {"group_type": gt, "volume_types": []}}), 400),
        (json!({"group": {"group_type": gt, "volume_types": "vt"}}), 400),
        (json!({"group": {"group_type": gt, "volume_types": [vt, "vt"]}}), 400),
        (json!({"group": {"volume_types": [vt]}}), 400),
        (json!({"group": {"group_type": gt, "volume_types": [vt], "size": 1}}), 400),
        (json!({"group": {"group_type": gt, "volume_types": [vt], "availability_zone": "mars"}}), 400),
        (json!({"group": {"group_type": "nope", "volume_types": [vt]}}), 404),
        (json!({"group": {"group_type": gt, "volume_types": ["nope"]}}), 404),
    ] {
        let r = d.post("/groups", bad.clone());
        r.fault(code, if code == 400 { "badRequest" } else { "itemNotFound" });
    }

    // Create by names; the views by microversion.
    let r = d.post(
        "/groups",
        json!({"group": {"group_type": "gt", "volume_types": ["vt", vt2], "name": " g1 ", "description": "d"}}),
    );
    assert_eq!(r.status, 202, "{}", r.text);
    let created = r.json()["group"].clone();
    assert_eq!(created.as_object().unwrap().len(), 2, "{created}");
    assert_eq!(created["name"], "g1");
    let g1 = created["id"].as_str().unwrap().to_string();
    let g = wait_for(&d, &format!("/groups/{g1}"), "group", "available");
    assert_eq!(g["group_type"], gt.as_str());
    assert_eq!(g["volume_types"], json!([vt, vt2]));
    assert_eq!(g["availability_zone"], "nova");
    assert_eq!(g["replication_status"], "disabled");
    assert!(g["group_snapshot_id"].is_null() && g["source_group_id"].is_null());
    let at13 = d.call("GET", &format!("/groups/{g1}"), None, Some("3.13")).json()["group"].clone();
    let keys: Vec<&String> = at13.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        ["availability_zone", "created_at", "description", "group_type", "id", "name", "status", "volume_types"]
    );
    d.get("/groups/00000000-0000-4000-8000-000000000000").fault(404, "itemNotFound");
    d.get("/groups/not-a-uuid").fault(404, "itemNotFound");

    // Volumes in the group: a type of the group, given; on the group's pool.
    d.post("/volumes", json!({"volume": {"size": 1, "group_id": g1}})).fault(400, "badRequest");
    let vt3 = volume_type(&d, "vt3");
    d.post("/volumes", json!({"volume": {"size": 1, "group_id": g1, "volume_type": vt3}})).fault(400, "badRequest");
    d.call("POST", "/volumes", Some(json!({"volume": {"size": 1, "group_id": g1, "volume_type": vt}})), Some("3.12"))
        .fault(400, "badRequest");
    d.post(
        "/volumes",
        json!({"volume": {"size": 1, "volume_type": vt, "group_id": "00000000-0000-4000-8000-000000000000"}}),
    )
    .fault(404, "itemNotFound");
    let v1 = group_volume(&d, &g1, &vt);
    let v2 = group_volume(&d, &g1, &vt2);
    let shown = d.get(&format!("/volumes/{v1}")).json()["volume"].clone();
    assert_eq!(shown["group_id"], g1.as_str());
    let group_host = shown["os-vol-host-attr:host"].clone();
    assert_eq!(d.get(&format!("/volumes/{v2}")).json()["volume"]["os-vol-host-attr:host"], group_host);
    assert!(d.call("GET", &format!("/volumes/{v1}"), None, Some("3.12")).json()["volume"].get("group_id").is_none());
    let listed = d.get(&format!("/volumes/detail?group_id={g1}")).json();
    assert_eq!(listed["volumes"].as_array().unwrap().len(), 2);
    let g = d.call("GET", &format!("/groups/{g1}?list_volume=true"), None, Some("3.25")).json()["group"].clone();
    let mut members: Vec<String> =
        g["volumes"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect();
    members.sort();
    let mut want = vec![v1.clone(), v2.clone()];
    want.sort();
    assert_eq!(members, want);
    // A volume of a group is deleted with the group only, and keeps its type.
    d.delete(&format!("/volumes/{v1}")).fault(400, "badRequest");
    d.post(&format!("/volumes/{v1}/action"), json!({"os-force_delete": {}})).fault(400, "badRequest");
    d.post(&format!("/volumes/{v1}/action"), json!({"os-retype": {"new_type": vt2, "migration_policy": "never"}}))
        .fault(400, "badRequest");

    // Update: name and description; nothing valid is a 400.
    let path = format!("/groups/{g1}");
    assert_eq!(d.put(&path, json!({"group": {"name": "renamed", "description": "new"}})).status, 202);
    let g = d.get(&path).json()["group"].clone();
    assert_eq!((g["name"].as_str(), g["description"].as_str()), (Some("renamed"), Some("new")));
    d.put(&path, json!({"group": {"name": "renamed"}})).fault(400, "badRequest");
    d.put(&path, json!({"group": {}})).fault(400, "badRequest");
    d.put(&path, json!({"group": {"size": 3}})).fault(400, "badRequest");

    // Remove and add volumes, with Cinder's checks.
    assert_eq!(d.put(&path, json!({"group": {"remove_volumes": v2}})).status, 202);
    assert_eq!(d.get(&format!("/volumes/detail?group_id={g1}")).json()["volumes"].as_array().unwrap().len(), 1);
    assert!(d.get(&format!("/volumes/{v2}")).json()["volume"]["group_id"].is_null());
    d.put(&path, json!({"group": {"remove_volumes": v2}})).fault(400, "badRequest");
    d.put(&path, json!({"group": {"add_volumes": v2, "remove_volumes": v2}})).fault(400, "badRequest");
    d.put(&path, json!({"group": {"add_volumes": "00000000-0000-4000-8000-000000000000"}})).fault(400, "badRequest");
    let stray = d.create_volume(json!({"size": 1, "volume_type": vt3}));
    d.wait_status(&stray, "available");
    d.put(&path, json!({"group": {"add_volumes": stray}})).fault(400, "badRequest");
    assert_eq!(d.put(&path, json!({"group": {"add_volumes": format!("{v2},")}})).status, 202);
    assert_eq!(d.get(&format!("/volumes/{v2}")).json()["volume"]["group_id"], g1.as_str());
    // A volume already in another group cannot join.
    let g2 = create_group(&d, &gt, &[&vt], "g2");
    d.put(&format!("/groups/{g2}"), json!({"group": {"add_volumes": v1}})).fault(400, "badRequest");
    // Nor can volumes be added to a group that is not available.
    let loose = d.create_volume(json!({"size": 1, "volume_type": vt}));
    d.wait_status(&loose, "available");
    let r = d.post(&format!("/groups/{g2}/action"), json!({"reset_status": {"status": "error"}}));
    assert_eq!(r.status, 202, "{}", r.text);
    d.put(&format!("/groups/{g2}"), json!({"group": {"add_volumes": loose}})).fault(400, "badRequest");
    // Nor volumes made in it.
    d.post("/volumes", json!({"volume": {"size": 1, "volume_type": vt, "group_id": g2}})).fault(400, "badRequest");
    for bad in [
        json!({"reset_status": {"status": "sleepy"}}),
        json!({"reset_status": {}}),
        json!({"reset_status": {"status": "error", "x": 1}}),
    ] {
        d.post(&format!("/groups/{g2}/action"), bad).fault(400, "badRequest");
    }
    d.call(
        "POST",
        &format!("/groups/{g2}/action"),
        Some(json!({"reset_status": {"status": "available"}})),
        Some("3.19"),
    )
    .fault(400, "badRequest");
    assert_eq!(d.post(&format!("/groups/{g2}/action"), json!({"reset_status": {"status": "AVAILABLE"}})).status, 202);
    d.post(&format!("/groups/{g2}/action"), json!({"enable_replication": {}})).fault(501, "notImplemented");
    d.post(&format!("/groups/{g2}/action"), json!({"fly": {}})).fault(400, "badRequest");

    // Lists: summary and detail, name filter, non-admin filters from 3.31.
    let l = d.get("/groups").json();
    assert_eq!(l["groups"].as_array().unwrap().len(), 2);
    assert_eq!(l["groups"][0].as_object().unwrap().len(), 2);
    assert_eq!(ids(&d.get("/groups/detail?name=g2").json()["groups"]), [g2.as_str()]);
    assert_eq!(ids(&d.get("/groups/detail?name~=renam").json()["groups"]), [g1.as_str()]);
    assert_eq!(ids(&d.get("/groups?sort=name:asc").json()["groups"]), [g2.clone(), g1.clone()]);
    let page = d.get("/groups?limit=1").json();
    assert_eq!(page["groups"].as_array().unwrap().len(), 1);
    assert!(page["group_links"][0]["href"].as_str().unwrap().contains("marker="), "{page}");

    // Quota: groups count.
    let r = d.put(&format!("/os-quota-sets/{PROJECT}"), json!({"quota_set": {"groups": 2}}));
    assert_eq!(r.status, 200, "{}", r.text);
    d.post("/groups", json!({"group": {"group_type": gt, "volume_types": [vt]}})).fault(413, "overLimit");
    let u = d.get(&format!("/os-quota-sets/{PROJECT}?usage=True")).json();
    assert_eq!(u["quota_set"]["groups"]["in_use"], 2);

    // Delete: a group with volumes needs delete-volumes; then all goes.
    d.post(&format!("/groups/{g1}/action"), json!({"delete": {}})).fault(400, "badRequest");
    d.post(&format!("/groups/{g1}/action"), json!({"delete": {"delete-volumes": "maybe"}})).fault(400, "badRequest");
    d.post(&format!("/groups/{g1}/action"), json!({"delete": {"cascade": true}})).fault(400, "badRequest");
    assert_eq!(d.post(&format!("/groups/{g1}/action"), json!({"delete": {"delete-volumes": true}})).status, 202);
    wait_gone(&d, &format!("/groups/{g1}"));
    d.wait_gone(&v1);
    d.wait_gone(&v2);
    assert_eq!(d.post(&format!("/groups/{g2}/action"), json!({"delete": null})).status, 202);
    wait_gone(&d, &format!("/groups/{g2}"));
    let u = d.get(&format!("/os-quota-sets/{PROJECT}?usage=True")).json();
    assert_eq!(u["quota_set"]["groups"]["in_use"], 0);
}

#[test]
fn a_frozen_backend_keeps_its_groups_as_they_are() {
    let d = Daemon::start();
    let gt = group_type(&d, "gt");
    let vt = volume_type(&d, "vt");
    let g = create_group(&d, &gt, &[&vt], "g");
    let v = group_volume(&d, &g, &vt);
    let r = d.post("/group_snapshots", json!({"group_snapshot": {"group_id": g}}));
    let gs = id_of(&r, "group_snapshot");
    wait_for(&d, &format!("/group_snapshots/{gs}"), "group_snapshot", "available");
    let pool = d.get(&format!("/volumes/{v}")).json()["volume"]["os-vol-host-attr:host"].as_str().unwrap().to_string();
    let host = pool.split('#').next().unwrap().to_string();
    assert_eq!(d.put("/os-services/freeze", json!({"host": host})).status, 200);
    d.post("/group_snapshots", json!({"group_snapshot": {"group_id": g}})).fault(400, "badRequest");
    d.delete(&format!("/group_snapshots/{gs}")).fault(400, "badRequest");
    d.post("/groups/action", json!({"create-from-src": {"source_group_id": g}})).fault(400, "badRequest");
    d.post("/groups/action", json!({"create-from-src": {"group_snapshot_id": gs}})).fault(400, "badRequest");
    // A new group finds no pool.
    let r = d.post("/groups", json!({"group": {"group_type": gt, "volume_types": [vt]}}));
    wait_for(&d, &format!("/groups/{}", id_of(&r, "group")), "group", "error");
    assert_eq!(d.put("/os-services/thaw", json!({"host": host})).status, 200);
    assert_eq!(d.delete(&format!("/group_snapshots/{gs}")).status, 202);
    wait_gone(&d, &format!("/group_snapshots/{gs}"));
    assert_eq!(d.put("/os-services/freeze", json!({"host": host})).status, 200);
    d.post(&format!("/groups/{g}/action"), json!({"delete": {"delete-volumes": true}})).fault(400, "badRequest");
    assert_eq!(d.put("/os-services/thaw", json!({"host": host})).status, 200);
    assert_eq!(d.post(&format!("/groups/{g}/action"), json!({"delete": {"delete-volumes": true}})).status, 202);
    wait_gone(&d, &format!("/groups/{g}"));
}

#[test]
fn a_group_no_pool_can_take_is_an_error() {
    let d = Daemon::start();
    let gt = group_type(&d, "gt");
    let r =
        d.post("/types", json!({"volume_type": {"name": "nowhere", "extra_specs": {"volume_backend_name": "nope"}}}));
    let nowhere = id_of(&r, "volume_type");
    let r = d.post("/groups", json!({"group": {"group_type": gt, "volume_types": [nowhere]}}));
    assert_eq!(r.status, 202, "{}", r.text);
    let g = id_of(&r, "group");
    wait_for(&d, &format!("/groups/{g}"), "group", "error");
    // Nothing can be made in it; it is deleted at once.
    d.post("/volumes", json!({"volume": {"size": 1, "volume_type": nowhere, "group_id": g}})).fault(400, "badRequest");
    assert_eq!(d.post(&format!("/groups/{g}/action"), json!({"delete": {"delete-volumes": false}})).status, 202);
    assert_eq!(d.get(&format!("/groups/{g}")).status, 404);
}

fn write_at(d: &Daemon, id: &str, offset: u64, data: &[u8]) {
    let mut f = std::fs::OpenOptions::new().write(true).open(d.volume_path(id)).unwrap();
    f.seek(SeekFrom::Start(offset)).unwrap();
    f.write_all(data).unwrap();
    f.sync_all().unwrap();
}

fn read_at(d: &Daemon, id: &str, offset: u64, len: usize) -> Vec<u8> {
    let mut f = std::fs::File::open(d.volume_path(id)).unwrap();
    f.seek(SeekFrom::Start(offset)).unwrap();
    let mut buf = vec![0u8; len];
    f.read_exact(&mut buf).unwrap();
    buf
}

/// The volumes of a group, by the group_id filter.
fn members(d: &Daemon, group: &str) -> Vec<Value> {
    d.get(&format!("/volumes/detail?group_id={group}")).json()["volumes"].as_array().unwrap().clone()
}

#[test]
fn group_snapshots_and_groups_from_sources() {
    let d = Daemon::start();
    let gt = group_type(&d, "gt");
    let vt = volume_type(&d, "vt");
    let g = create_group(&d, &gt, &[&vt], "src");
    let v1 = group_volume(&d, &g, &vt);
    let v2 = group_volume(&d, &g, &vt);
    write_at(&d, &v1, 4096, b"first volume");
    write_at(&d, &v2, 1 << 20, b"second volume");

    // Bad input and wrong objects.
    for bad in [
        json!({"group_snapshot": {}}),
        json!({"group_snapshot": {"group_id": "nope"}}),
        json!({"group_snapshot": {"group_id": g, "force": true}}),
    ] {
        d.post("/group_snapshots", bad).fault(400, "badRequest");
    }
    d.post("/group_snapshots", json!({"group_snapshot": {"group_id": "00000000-0000-4000-8000-000000000000"}}))
        .fault(404, "itemNotFound");
    d.call("GET", "/group_snapshots", None, Some("3.13")).fault(404, "itemNotFound");

    let r = d.post("/group_snapshots", json!({"group_snapshot": {"group_id": g, "name": "gs", "description": "d"}}));
    assert_eq!(r.status, 202, "{}", r.text);
    let created = r.json()["group_snapshot"].clone();
    assert_eq!(created["group_type_id"], gt.as_str());
    assert_eq!(created.as_object().unwrap().len(), 3, "{created}");
    let gs = created["id"].as_str().unwrap().to_string();
    let shown = wait_for(&d, &format!("/group_snapshots/{gs}"), "group_snapshot", "available");
    let keys: Vec<&String> = shown.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["created_at", "description", "group_id", "group_type_id", "id", "name", "project_id", "status"]);
    assert_eq!(shown["group_id"], g.as_str());
    // A snapshot of each volume, carrying the group snapshot's id (from 3.14).
    let snaps = d.get("/snapshots/detail").json()["snapshots"].as_array().unwrap().clone();
    assert_eq!(snaps.len(), 2);
    for s in &snaps {
        assert_eq!(s["group_snapshot_id"], gs.as_str());
        assert_eq!(s["status"], "available");
        assert_eq!(s["name"], "gs");
        let sid = s["id"].as_str().unwrap();
        // Not deletable one by one.
        d.delete(&format!("/snapshots/{sid}")).fault(400, "badRequest");
        let old = d.call("GET", &format!("/snapshots/{sid}"), None, Some("3.13")).json()["snapshot"].clone();
        assert!(old.get("group_snapshot_id").is_none(), "{old}");
    }
    // Lists.
    let l = d.get("/group_snapshots").json();
    assert_eq!(l["group_snapshots"][0].as_object().unwrap().len(), 2, "{l}");
    assert_eq!(ids(&d.get(&format!("/group_snapshots/detail?group_id={g}")).json()["group_snapshots"]), [gs.as_str()]);
    assert_eq!(d.get("/group_snapshots/detail?status=error").json()["group_snapshots"], json!([]));
    // An admin may filter on anything; what the records lack matches nothing.
    assert_eq!(d.call("GET", "/group_snapshots?host=x", None, Some("3.31")).json()["group_snapshots"], json!([]));
    // The group cannot go while it has snapshots; its volumes cannot leave it either way.
    d.post(&format!("/groups/{g}/action"), json!({"delete": {"delete-volumes": true}})).fault(400, "badRequest");
    // A volume with a group snapshot's snapshot cannot be deleted with cascade either.
    assert_eq!(d.put(&format!("/groups/{g}"), json!({"group": {"remove_volumes": v2}})).status, 202);
    d.delete(&format!("/volumes/{v2}?cascade=true")).fault(400, "badRequest");
    assert_eq!(d.put(&format!("/groups/{g}"), json!({"group": {"add_volumes": v2}})).status, 202);

    // create-from-src: bad input.
    for bad in [
        json!({"create-from-src": {}}),
        json!({"create-from-src": {"group_snapshot_id": gs, "source_group_id": g}}),
        json!({"create-from-src": {"source_group_id": "nope"}}),
        json!({"create-from-src": {"source_group_id": g, "volume_types": []}}),
        json!({"create-from-src": "x"}),
        json!({"create-from": {"source_group_id": g}}),
    ] {
        d.post("/groups/action", bad).fault(400, "badRequest");
    }
    d.post("/groups/action", json!({"create-from-src": {"group_snapshot_id": "00000000-0000-4000-8000-000000000000"}}))
        .fault(404, "itemNotFound");
    d.call("POST", "/groups/action", Some(json!({"create-from-src": {"source_group_id": g}})), Some("3.13"))
        .fault(400, "badRequest");

    // From the group snapshot: a volume from each snapshot, with its data.
    let r = d.post("/groups/action", json!({"create-from-src": {"group_snapshot_id": gs, "name": "from-snap"}}));
    assert_eq!(r.status, 202, "{}", r.text);
    assert_eq!(r.json()["group"]["name"], "from-snap");
    let gfs = id_of(&r, "group");
    let shown = wait_for(&d, &format!("/groups/{gfs}"), "group", "available");
    assert_eq!(shown["group_snapshot_id"], gs.as_str());
    assert_eq!(shown["volume_types"], json!([vt]));
    let copies = members(&d, &gfs);
    assert_eq!(copies.len(), 2);
    let mut found = Vec::new();
    for c in &copies {
        assert_eq!(c["status"], "available");
        let id = c["id"].as_str().unwrap();
        found.push((read_at(&d, id, 4096, 12), read_at(&d, id, 1 << 20, 13)));
    }
    assert!(found.contains(&(b"first volume".to_vec(), vec![0; 13])), "{found:?}");
    assert!(found.contains(&(vec![0; 12], b"second volume".to_vec())), "{found:?}");
    // From the group: a clone of each volume.
    let r = d.post("/groups/action", json!({"create-from-src": {"source_group_id": g, "name": "from-group"}}));
    let gfg = id_of(&r, "group");
    let shown = wait_for(&d, &format!("/groups/{gfg}"), "group", "available");
    assert_eq!(shown["source_group_id"], g.as_str());
    assert_eq!(members(&d, &gfg).len(), 2);
    // An empty group cannot be copied.
    let empty = create_group(&d, &gt, &[&vt], "empty");
    d.post("/groups/action", json!({"create-from-src": {"source_group_id": empty}})).fault(400, "badRequest");

    // Reset the group snapshot's status (3.19, admin); a group snapshot in creating
    // cannot be deleted, nor copied.
    let path = format!("/group_snapshots/{gs}");
    d.call("POST", &format!("{path}/action"), Some(json!({"reset_status": {"status": "error"}})), Some("3.18"))
        .fault(400, "badRequest");
    d.post(&format!("{path}/action"), json!({"reset_status": {"status": "in-use"}})).fault(400, "badRequest");
    for status in ["creating", "available", "error", "creating"] {
        assert_eq!(d.post(&format!("{path}/action"), json!({"reset_status": {"status": status}})).status, 202);
        assert_eq!(d.get(&path).json()["group_snapshot"]["status"], status);
    }
    d.delete(&path).fault(400, "badRequest");
    d.post("/groups/action", json!({"create-from-src": {"group_snapshot_id": gs}})).fault(400, "badRequest");
    assert_eq!(d.post(&format!("{path}/action"), json!({"reset_status": {"status": "available"}})).status, 202);
    d.put(&path, json!({"group_snapshot": {"name": "x"}})).fault(405, "badMethod");

    // Delete the group snapshot: its snapshots go with it.
    assert_eq!(d.delete(&path).status, 202);
    wait_gone(&d, &path);
    let deadline = Instant::now() + Duration::from_secs(60);
    while !d.get("/snapshots").json()["snapshots"].as_array().unwrap().is_empty() {
        assert!(Instant::now() < deadline, "snapshots stayed");
        std::thread::sleep(Duration::from_millis(20));
    }
    // Now every group goes, with its volumes, and the pool is empty.
    for grp in [&g, &gfs, &gfg, &empty] {
        assert_eq!(d.post(&format!("/groups/{grp}/action"), json!({"delete": {"delete-volumes": true}})).status, 202);
    }
    for grp in [&g, &gfs, &gfg, &empty] {
        wait_gone(&d, &format!("/groups/{grp}"));
    }
    if std::env::var_os("HEARTH_TEST_BACKENDS").is_none() {
        assert!(d.volume_files("file-1").is_empty(), "{:?}", d.volume_files("file-1"));
    }
}

#[test]
fn other_projects_see_nothing_and_members_no_admin_actions() {
    let d = Daemon::start_with(&format!("admin_projects = [\"admin\"]\n{}", common::backends_toml()));
    let admin = |m: &str, p: &str, b: Option<Value>| req(&d, "admin", m, p, b, "latest");
    let alice = |m: &str, p: &str, b: Option<Value>| req(&d, "alice", m, p, b, "latest");
    let bob = |m: &str, p: &str, b: Option<Value>| req(&d, "bob", m, p, b, "latest");
    let r = admin("POST", "/group_types", Some(json!({"group_type": {"name": "gt"}})));
    let gt = id_of(&r, "group_type");
    let vt = id_of(&admin("POST", "/types", Some(json!({"volume_type": {"name": "vt"}}))), "volume_type");
    let r = alice("POST", "/groups", Some(json!({"group": {"group_type": gt, "volume_types": [vt], "name": "a"}})));
    let g = id_of(&r, "group");
    let r = alice("POST", "/volumes", Some(json!({"volume": {"size": 1, "volume_type": vt, "group_id": g}})));
    let v = id_of(&r, "volume");
    let deadline = Instant::now() + Duration::from_secs(60);
    while alice("GET", &format!("/volumes/{v}"), None).json()["volume"]["status"] != "available" {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(20));
    }
    let r = alice("POST", "/group_snapshots", Some(json!({"group_snapshot": {"group_id": g, "name": "s"}})));
    let gs = id_of(&r, "group_snapshot");
    while alice("GET", &format!("/group_snapshots/{gs}"), None).json()["group_snapshot"]["status"] != "available" {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(20));
    }
    // alice sees no project_id (3.58 admin attribute); the admin does.
    let shown = alice("GET", &format!("/groups/{g}"), None).json()["group"].clone();
    assert!(shown.get("project_id").is_none(), "{shown}");
    assert_eq!(admin("GET", &format!("/groups/{g}"), None).json()["group"]["project_id"], "alice");
    let shown = alice("GET", &format!("/group_snapshots/{gs}"), None).json()["group_snapshot"].clone();
    assert!(shown.get("project_id").is_none(), "{shown}");

    // bob: every way in is a 404, and lists are empty even with all_tenants.
    bob("GET", &format!("/groups/{g}"), None).fault(404, "itemNotFound");
    bob("PUT", &format!("/groups/{g}"), Some(json!({"group": {"name": "mine"}}))).fault(404, "itemNotFound");
    bob("POST", &format!("/groups/{g}/action"), Some(json!({"delete": {"delete-volumes": true}})))
        .fault(404, "itemNotFound");
    bob("POST", "/volumes", Some(json!({"volume": {"size": 1, "volume_type": vt, "group_id": g}})))
        .fault(404, "itemNotFound");
    bob("POST", "/group_snapshots", Some(json!({"group_snapshot": {"group_id": g}}))).fault(404, "itemNotFound");
    bob("GET", &format!("/group_snapshots/{gs}"), None).fault(404, "itemNotFound");
    bob("DELETE", &format!("/group_snapshots/{gs}"), None).fault(404, "itemNotFound");
    bob("POST", "/groups/action", Some(json!({"create-from-src": {"source_group_id": g}}))).fault(404, "itemNotFound");
    bob("POST", "/groups/action", Some(json!({"create-from-src": {"group_snapshot_id": gs}})))
        .fault(404, "itemNotFound");
    assert_eq!(bob("GET", "/groups/detail?all_tenants=1", None).json()["groups"], json!([]));
    assert_eq!(bob("GET", "/group_snapshots/detail?all_tenants=1", None).json()["group_snapshots"], json!([]));
    // bob cannot pull alice's volume into his group.
    let r = bob("POST", "/groups", Some(json!({"group": {"group_type": gt, "volume_types": [vt]}})));
    let bg = id_of(&r, "group");
    bob("PUT", &format!("/groups/{bg}"), Some(json!({"group": {"add_volumes": v}}))).fault(400, "badRequest");
    // Non-admin filters beyond Cinder's list are refused from 3.31.
    alice("GET", "/groups?status=available", None).fault(400, "badRequest");
    alice("GET", "/group_snapshots?group_type_id=x", None).fault(400, "badRequest");
    assert_eq!(ids(&admin("GET", "/groups/detail?all_tenants=1&status=available", None).json()["groups"]).len(), 2);

    // alice may not reset statuses.
    alice("POST", &format!("/groups/{g}/action"), Some(json!({"reset_status": {"status": "error"}})))
        .fault(403, "forbidden");
    alice("POST", &format!("/group_snapshots/{gs}/action"), Some(json!({"reset_status": {"status": "error"}})))
        .fault(403, "forbidden");
    // The admin may, in any project.
    let r = admin("POST", &format!("/groups/{g}/action"), Some(json!({"reset_status": {"status": "available"}})));
    assert_eq!(r.status, 202, "{}", r.text);

    // alice cleans up.
    assert_eq!(alice("DELETE", &format!("/group_snapshots/{gs}"), None).status, 202);
    while alice("GET", &format!("/group_snapshots/{gs}"), None).status != 404 {
        assert!(Instant::now() < deadline + Duration::from_secs(60));
        std::thread::sleep(Duration::from_millis(20));
    }
    let r = alice("POST", &format!("/groups/{g}/action"), Some(json!({"delete": {"delete-volumes": true}})));
    assert_eq!(r.status, 202, "{}", r.text);
}

const CRASH_CONFIG: &str = r#"
[quota]
quota_volumes = 100
quota_snapshots = 100
quota_gigabytes = 10000

[backends.file-1]
driver = "file"
volume_backend_name = "file"
size_gb = 1000
volume_clear = "zero"
"#;

fn fill(d: &Daemon, id: &str, mib: usize, seed: u8) {
    let chunk: Vec<u8> = (0..(1 << 20)).map(|i| (i % 251) as u8 ^ seed).collect();
    let mut f = std::fs::OpenOptions::new().write(true).open(d.volume_path(id)).unwrap();
    for _ in 0..mib {
        f.write_all(&chunk).unwrap();
    }
    f.sync_all().unwrap();
}

/// Every group, group snapshot, volume and snapshot has settled (nothing
/// transitional stays), within a bound.
fn wait_all_settled(d: &Daemon) -> (Value, Value, Value, Value) {
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let groups = d.get("/groups/detail?all_tenants=1").json()["groups"].clone();
        let gsnaps = d.get("/group_snapshots/detail?all_tenants=1").json()["group_snapshots"].clone();
        let vols = d.get("/volumes/detail?all_tenants=1").json()["volumes"].clone();
        let snaps = d.get("/snapshots/detail?all_tenants=1").json()["snapshots"].clone();
        let settled = |list: &Value| {
            list.as_array().unwrap().iter().all(|o| matches!(o["status"].as_str(), Some("available" | "error")))
        };
        if settled(&groups) && settled(&gsnaps) && settled(&vols) && settled(&snaps) {
            return (groups, gsnaps, vols, snaps);
        }
        assert!(Instant::now() < deadline, "not settled:\n{groups}\n{gsnaps}\n{vols}\n{snaps}\n{}", d.log());
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// What the store says is in flight: groups, group snapshots, volumes and snapshots
/// in a transitional status or with recorded work.
fn in_flight(d: &Daemon) -> [i64; 4] {
    let count = |sql: &str| -> i64 { d.store_count(sql) };
    [
        count("SELECT COUNT(*) FROM groups WHERE status IN ('creating', 'deleting')"),
        count("SELECT COUNT(*) FROM group_snapshots WHERE status IN ('creating', 'deleting')"),
        count("SELECT COUNT(*) FROM volumes WHERE task IS NOT NULL"),
        count("SELECT COUNT(*) FROM snapshots WHERE task IS NOT NULL"),
    ]
}

#[test]
fn sigkill_during_group_snapshot_and_copies_of_a_group() {
    let mut d = Daemon::start_with(CRASH_CONFIG);
    let gt = group_type(&d, "gt");
    let vt = volume_type(&d, "vt");
    let g = create_group(&d, &gt, &[&vt], "src");
    let vols: Vec<String> = (0..3).map(|_| group_volume(&d, &g, &vt)).collect();
    for (i, v) in vols.iter().enumerate() {
        fill(&d, v, 128, i as u8);
    }
    let probe = |d: &Daemon, id: &str| read_at(d, id, 100 << 20, 4096);
    let expected: Vec<Vec<u8>> = vols.iter().map(|v| probe(&d, v)).collect();
    // A group snapshot that completes, then in flight at once: a copy of the group
    // snapshot, a copy of the group and a second group snapshot.
    let r = d.post("/group_snapshots", json!({"group_snapshot": {"group_id": g, "name": "first"}}));
    let gs1 = id_of(&r, "group_snapshot");
    wait_for(&d, &format!("/group_snapshots/{gs1}"), "group_snapshot", "available");
    let from_snap = id_of(&d.post("/groups/action", json!({"create-from-src": {"group_snapshot_id": gs1}})), "group");
    let from_group = id_of(&d.post("/groups/action", json!({"create-from-src": {"source_group_id": g}})), "group");
    let gs2 = id_of(&d.post("/group_snapshots", json!({"group_snapshot": {"group_id": g}})), "group_snapshot");
    d.kill9();
    let in_flight = in_flight(&d);
    println!("in flight at the kill: {in_flight:?}");
    assert!(in_flight.iter().any(|n| *n > 0), "the test must kill hearthd with work in flight");
    d.respawn();
    assert!(d.log().contains("reconcile:"), "{}", d.log());

    let (_, gsnaps, vols_after, _) = wait_all_settled(&d);
    // The second group snapshot: available with all its snapshots, or error.
    let s2 = gsnaps.as_array().unwrap().iter().find(|s| s["id"] == gs2.as_str()).unwrap().clone();
    let taken: Vec<Value> = d.get("/snapshots/detail").json()["snapshots"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["group_snapshot_id"] == gs2.as_str())
        .cloned()
        .collect();
    assert_eq!(taken.len(), 3);
    if s2["status"] == "available" {
        assert!(taken.iter().all(|s| s["status"] == "available"), "{taken:?}");
    }
    // Each copy: available with every volume holding its source's data, or error.
    for copy in [&from_snap, &from_group] {
        let shown = d.get(&format!("/groups/{copy}")).json()["group"].clone();
        let copies = members(&d, copy);
        assert_eq!(copies.len(), 3, "{copies:?}");
        if shown["status"] == "available" {
            for c in &copies {
                assert_eq!(c["status"], "available");
                let data = probe(&d, c["id"].as_str().unwrap());
                assert!(expected.contains(&data), "copy {} has other data", c["id"]);
            }
        } else {
            assert_eq!(shown["status"], "error", "{shown}");
        }
    }
    // No half-made objects; the pool holds exactly the available volumes (and
    // snapshots).
    let files = d.volume_files("file-1");
    assert!(files.iter().all(|f| !f.starts_with(".partial")), "{files:?}");
    let mut want: Vec<String> = vols_after
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| v["status"] == "available")
        .map(|v| format!("volume-{}", v["id"].as_str().unwrap()))
        .collect();
    want.sort();
    let got: Vec<&String> = files.iter().filter(|f| f.starts_with("volume-")).collect();
    assert_eq!(got, want.iter().collect::<Vec<_>>());

    // Everything can be cleaned up afterwards, even what failed.
    for s in [&gs1, &gs2] {
        assert_eq!(d.delete(&format!("/group_snapshots/{s}")).status, 202);
    }
    for s in [&gs1, &gs2] {
        wait_gone(&d, &format!("/group_snapshots/{s}"));
    }
    for grp in [&g, &from_snap, &from_group] {
        let r = d.post(&format!("/groups/{grp}/action"), json!({"delete": {"delete-volumes": true}}));
        assert_eq!(r.status, 202, "{}", r.text);
    }
    for grp in [&g, &from_snap, &from_group] {
        wait_gone(&d, &format!("/groups/{grp}"));
    }
    assert!(d.volume_files("file-1").is_empty(), "{:?}", d.volume_files("file-1"));
}

#[test]
fn sigkill_during_group_delete_finishes_it() {
    let mut d = Daemon::start_with(CRASH_CONFIG);
    let gt = group_type(&d, "gt");
    let vt = volume_type(&d, "vt");
    let g = create_group(&d, &gt, &[&vt], "doomed");
    let vols: Vec<String> = (0..3).map(|_| group_volume(&d, &g, &vt)).collect();
    for v in &vols {
        // Real data, so that the wipes take a while.
        fill(&d, v, 192, 7);
    }
    assert_eq!(d.post(&format!("/groups/{g}/action"), json!({"delete": {"delete-volumes": true}})).status, 202);
    d.kill9();
    let in_flight = in_flight(&d);
    println!("in flight at the kill: {in_flight:?}");
    assert!(in_flight[0] > 0, "the test must kill hearthd while the group is being deleted");
    d.respawn();
    wait_gone(&d, &format!("/groups/{g}"));
    for v in &vols {
        d.wait_gone(v);
    }
    assert!(d.volume_files("file-1").is_empty(), "{:?}", d.volume_files("file-1"));
    let u = d.get(&format!("/os-quota-sets/{PROJECT}?usage=True")).json();
    assert_eq!(u["quota_set"]["groups"]["in_use"], 0);
    assert_eq!(u["quota_set"]["volumes"]["in_use"], 0);
}

//! API tests of volumes against the real daemon over HTTP.

mod common;

use common::{Daemon, PROJECT};
use serde_json::json;

#[test]
fn version_documents_answer_without_auth() {
    let d = Daemon::start();
    let r = d.raw("GET", "/", None, &[]);
    assert_eq!(r.status, 300);
    let v = r.json();
    let ver = &v["versions"][0];
    assert_eq!(ver["id"], "v3.0");
    assert_eq!(ver["status"], "CURRENT");
    assert_eq!(ver["min_version"], "3.0");
    assert!(ver["version"].as_str().unwrap().starts_with("3."));
    assert_eq!(ver["links"][0]["rel"], "self");
    for path in ["/v3", "/v3/"] {
        let r = d.raw("GET", path, None, &[]);
        assert_eq!(r.status, 200, "{path}");
        assert_eq!(r.json()["versions"][0]["id"], "v3.0");
    }
}

#[test]
fn every_response_has_request_id_and_version_headers() {
    let d = Daemon::start();
    for r in [
        d.get("/volumes"),
        d.get("/volumes/nope"),
        d.call("GET", "/volumes", None, Some("3.5")),
        d.call("GET", "/volumes", None, None),
    ] {
        let id = r.header("x-openstack-request-id").expect("request id");
        assert!(id.starts_with("req-") && id.len() == 40, "{id}");
        assert!(r.header("OpenStack-API-Version").unwrap().starts_with("volume 3."));
        assert_eq!(r.header("Vary"), Some("OpenStack-API-Version"));
    }
    let r = d.call("GET", "/volumes", None, Some("3.5"));
    assert_eq!(r.header("OpenStack-API-Version"), Some("volume 3.5"));
    let r = d.call("GET", "/volumes", None, None);
    assert_eq!(r.header("OpenStack-API-Version"), Some("volume 3.0"));
}

#[test]
fn microversion_errors() {
    let d = Daemon::start();
    d.call("GET", "/volumes", None, Some("3.9999")).fault(406, "notAcceptable");
    d.call("GET", "/volumes", None, Some("2.0")).fault(406, "notAcceptable");
    d.call("GET", "/volumes", None, Some("three")).fault(400, "badRequest");
    // summary exists from 3.12 only
    d.call("GET", "/volumes/summary", None, Some("3.11")).fault(404, "itemNotFound");
    assert_eq!(d.call("GET", "/volumes/summary", None, Some("3.12")).status, 200);
}

#[test]
fn volume_lifecycle() {
    let d = Daemon::start();
    let r = d.post(
        "/volumes",
        json!({"volume": {"size": 1, "name": "v1", "description": "d1",
        "metadata": {"a": "b"}, "availability_zone": null, "backup_id": null, "imageRef": null,
        "snapshot_id": null, "source_volid": null, "volume_type": null, "consistencygroup_id": null}}),
    );
    assert_eq!(r.status, 202, "{}", r.text);
    let v = r.json()["volume"].clone();
    assert_eq!(v["status"], "creating");
    assert_eq!(v["size"], 1);
    assert_eq!(v["volume_type"], "__DEFAULT__");
    assert_eq!(v["bootable"], "false");
    assert!(v.as_object().unwrap().keys().all(|k| !k.starts_with("os-vol-")), "create shows os-vol-*: {v}");
    for field in [
        "attachments",
        "links",
        "encrypted",
        "updated_at",
        "replication_status",
        "id",
        "size",
        "user_id",
        "availability_zone",
        "metadata",
        "status",
        "description",
        "multiattach",
        "consistencygroup_id",
        "name",
        "bootable",
        "created_at",
        "volume_type",
        "snapshot_id",
        "source_volid",
    ] {
        assert!(v.get(field).is_some(), "missing {field} in {v}");
    }
    let id = v["id"].as_str().unwrap().to_string();
    let v = d.wait_status(&id, "available");
    assert_eq!(v["os-vol-tenant-attr:tenant_id"], PROJECT);
    assert!(v["os-vol-host-attr:host"].as_str().unwrap().contains('@'));
    assert_eq!(v["metadata"]["a"], "b");

    // list, detail, by name
    let l = d.get("/volumes").json();
    assert_eq!(l["volumes"].as_array().unwrap().len(), 1);
    assert_eq!(l["volumes"][0].as_object().unwrap().len(), 3, "index shows id, name, links only");
    let l = d.get("/volumes/detail?name=v1").json();
    assert_eq!(l["volumes"][0]["id"], id.as_str());
    assert_eq!(d.get("/volumes/detail?name=v2").json()["volumes"].as_array().unwrap().len(), 0);
    // OSC looks a name up as an id first: that must be 404
    d.get("/volumes/v1").fault(404, "itemNotFound");

    // update
    let r = d.put(&format!("/volumes/{id}"), json!({"volume": {"name": "v1b", "description": "d2"}}));
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["volume"]["name"], "v1b");
    assert!(r.json()["volume"].get("os-vol-tenant-attr:tenant_id").is_none());

    // metadata
    let m = d.post(&format!("/volumes/{id}/metadata"), json!({"metadata": {"k1": "v1"}}));
    assert_eq!(m.json()["metadata"], json!({"a": "b", "k1": "v1"}));
    let m = d.put(&format!("/volumes/{id}/metadata/k1"), json!({"meta": {"k1": "v2"}}));
    assert_eq!(m.json()["meta"], json!({"k1": "v2"}));
    assert_eq!(d.get(&format!("/volumes/{id}/metadata/k1")).json()["meta"]["k1"], "v2");
    d.put(&format!("/volumes/{id}/metadata/k1"), json!({"meta": {"other": "x"}})).fault(400, "badRequest");
    assert_eq!(d.delete(&format!("/volumes/{id}/metadata/k1")).status, 200);
    d.get(&format!("/volumes/{id}/metadata/k1")).fault(404, "itemNotFound");
    d.delete(&format!("/volumes/{id}/metadata/k1")).fault(404, "itemNotFound");
    let m = d.put(&format!("/volumes/{id}/metadata"), json!({"metadata": {"only": "this"}}));
    assert_eq!(m.json()["metadata"], json!({"only": "this"}));
    assert_eq!(d.get(&format!("/volumes/{id}/metadata")).json()["metadata"], json!({"only": "this"}));

    // actions
    assert_eq!(d.post(&format!("/volumes/{id}/action"), json!({"os-set_bootable": {"bootable": true}})).status, 200);
    assert_eq!(
        d.post(&format!("/volumes/{id}/action"), json!({"os-update_readonly_flag": {"readonly": true}})).status,
        202
    );
    let v = d.get(&format!("/volumes/{id}")).json()["volume"].clone();
    assert_eq!(v["bootable"], "true");
    assert_eq!(v["metadata"]["readonly"], "True");
    assert_eq!(d.post(&format!("/volumes/{id}/action"), json!({"os-extend": {"new_size": 2}})).status, 202);
    let v = d.wait_volume(&id, "extended", |v| v["size"] == 2 && v["status"] == "available");
    assert_eq!(v["size"], 2);
    d.post(&format!("/volumes/{id}/action"), json!({"os-extend": {"new_size": 2}})).fault(400, "badRequest");
    d.post(&format!("/volumes/{id}/action"), json!({"os-extend": {"new_size": 1}})).fault(400, "badRequest");
    assert_eq!(common::device_len(&d.volume_path(&id)), 2 << 30);

    // summary; its metadata from 3.36
    let s = d.call("GET", "/volumes/summary", None, Some("3.12")).json();
    assert_eq!(s["volume-summary"]["total_size"], 2);
    assert_eq!(s["volume-summary"]["total_count"], 1);
    assert!(s["volume-summary"].get("metadata").is_none());
    if common::max_minor(&d) >= 36 {
        let s = d.call("GET", "/volumes/summary", None, Some("3.36")).json();
        assert_eq!(s["volume-summary"]["metadata"]["only"], json!(["this"]));
    }

    // delete (as OSC sends it)
    assert_eq!(d.delete(&format!("/volumes/{id}?cascade=False&force=False")).status, 202);
    d.wait_gone(&id);
    assert!(!d.volume_path(&id).exists(), "the volume's data is still there");
}

#[test]
fn project_less_urls_and_tokens() {
    let d = Daemon::start();
    let h = [("X-Auth-Token", "demo:p2"), ("OpenStack-API-Version", "volume latest")];
    let body = json!({"volume": {"size": 1}}).to_string();
    let r = d.raw("POST", "/v3/volumes", Some(body.as_bytes()), &h);
    assert_eq!(r.status, 202, "{}", r.text);
    let id = r.json()["volume"]["id"].as_str().unwrap().to_string();
    // the token's project owns it
    let r = d.raw("GET", &format!("/v3/p2/volumes/{id}"), None, &[("X-Auth-Token", "notused")]);
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["volume"]["os-vol-tenant-attr:tenant_id"], "p2");
    // lists are scoped to the caller's project; admins may ask for all
    let l = d.raw("GET", "/v3/p3/volumes", None, &[]).json();
    assert_eq!(l["volumes"].as_array().unwrap().len(), 0);
    let l = d.raw("GET", "/v3/p3/volumes?all_tenants=1", None, &[]).json();
    assert_eq!(l["volumes"].as_array().unwrap().len(), 1);
    let l = d.raw("GET", "/v3/p3/volumes/detail?all_tenants=1&project_id=p4", None, &[]).json();
    assert_eq!(l["volumes"].as_array().unwrap().len(), 0);
    // no token at all is accepted
    assert_eq!(d.raw("GET", "/v3/p2/volumes", None, &[]).status, 200);
}

#[test]
fn non_admins_see_only_their_own() {
    let d = Daemon::start_with(&format!("admin_projects = [\"admin\"]\n{}", common::backends_toml()));
    let r = d.raw("POST", "/v3/alice/volumes", Some(br#"{"volume": {"size": 1}}"#), &[]);
    assert_eq!(r.status, 202);
    let id = r.json()["volume"]["id"].as_str().unwrap().to_string();
    // bob cannot see it, even by id or with all_tenants
    assert_eq!(d.raw("GET", &format!("/v3/bob/volumes/{id}"), None, &[]).status, 404);
    let l = d.raw("GET", "/v3/bob/volumes?all_tenants=1", None, &[]).json();
    assert_eq!(l["volumes"].as_array().unwrap().len(), 0);
    // alice sees no admin fields
    let v = d.raw("GET", &format!("/v3/alice/volumes/{id}"), None, &[]).json()["volume"].clone();
    assert!(v.get("os-vol-host-attr:host").is_none());
    assert_eq!(v["os-vol-tenant-attr:tenant_id"], "alice");
    // admin-only operations are 403 for alice
    let r = d.raw(
        "POST",
        &format!("/v3/alice/volumes/{id}/action"),
        Some(br#"{"os-reset_status": {"status": "error"}}"#),
        &[],
    );
    r.fault(403, "forbidden");
    let r = d.raw("GET", "/v3/alice/scheduler-stats/get_pools", None, &[]);
    r.fault(403, "forbidden");
    // the admin project sees it
    assert_eq!(d.raw("GET", &format!("/v3/admin/volumes/{id}"), None, &[]).status, 200);
    // non-admin filters outside Cinder's list are refused from 3.31
    if common::max_minor(&d) >= 31 {
        let r = d.raw("GET", "/v3/alice/volumes?host=x", None, &[("OpenStack-API-Version", "volume 3.31")]);
        r.fault(400, "badRequest");
    }
}

#[test]
fn pagination_sorting_and_filters() {
    let d = Daemon::start();
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(
            d.create_volume(json!({"size": 1 + i % 2, "name": format!("vol-{i}"), "metadata": {"n": i.to_string()}})),
        );
    }
    for id in &ids {
        d.wait_status(id, "available");
    }
    // follow next links to the end
    let mut seen = Vec::new();
    let mut path = "/volumes?limit=2&sort=name:asc".to_string();
    loop {
        let r = d.get(&path).json();
        let page: Vec<String> =
            r["volumes"].as_array().unwrap().iter().map(|v| v["name"].as_str().unwrap().to_string()).collect();
        seen.extend(page);
        match r.get("volumes_links") {
            Some(links) => {
                let href = links[0]["href"].as_str().unwrap();
                assert_eq!(links[0]["rel"], "next");
                path = href[href.find("/volumes").unwrap()..].to_string();
            }
            None => break,
        }
    }
    assert_eq!(seen, ["vol-0", "vol-1", "vol-2", "vol-3", "vol-4"]);
    // default order: newest first
    let r = d.get("/volumes").json();
    assert_eq!(r["volumes"][0]["name"], "vol-4");
    assert!(r.get("volumes_links").is_none());
    // sort_key/sort_dir and display_name alias
    let r = d.get("/volumes?sort_key=display_name&sort_dir=desc").json();
    assert_eq!(r["volumes"][0]["name"], "vol-4");
    // offset
    let r = d.get("/volumes?sort=name:asc&offset=3").json();
    assert_eq!(r["volumes"][0]["name"], "vol-3");
    // filters: size, like, metadata (JSON and Python dict forms), status, time
    assert_eq!(d.get("/volumes?size=2").json()["volumes"].as_array().unwrap().len(), 2);
    if common::max_minor(&d) >= 34 {
        assert_eq!(d.get("/volumes?name~=ol-3").json()["volumes"].as_array().unwrap().len(), 1);
    }
    // before 3.31 unknown filters are ignored, from 3.31 refused
    assert_eq!(d.call("GET", "/volumes?bogus=1", None, Some("3.0")).json()["volumes"].as_array().unwrap().len(), 5);
    assert_eq!(d.get("/volumes?metadata=%7B%22n%22%3A%222%22%7D").json()["volumes"].as_array().unwrap().len(), 1);
    assert_eq!(d.get("/volumes?metadata=%7B%27n%27%3A+%273%27%7D").json()["volumes"].as_array().unwrap().len(), 1);
    assert_eq!(d.get("/volumes?status=available").json()["volumes"].as_array().unwrap().len(), 5);
    assert_eq!(d.get("/volumes?created_at=gt:2000-01-01T00:00:00").json()["volumes"].as_array().unwrap().len(), 5);
    assert_eq!(d.get("/volumes?created_at=lt:2000-01-01").json()["volumes"].as_array().unwrap().len(), 0);
    // bad list parameters
    d.get("/volumes?limit=-1").fault(400, "badRequest");
    d.get("/volumes?limit=abc").fault(400, "badRequest");
    d.get("/volumes?offset=x").fault(400, "badRequest");
    // Past Cinder's bound (past i64::MAX it was a 500: found by schemathesis).
    d.get("/volumes?offset=18446744073709551615").fault(400, "badRequest");
    d.get("/snapshots?offset=2147483648").fault(400, "badRequest");
    assert_eq!(d.get("/volumes?offset=2147483647").json()["volumes"], serde_json::json!([]));
    d.get("/volumes?sort=colour:asc").fault(400, "badRequest");
    d.get("/volumes?sort=name:sideways").fault(400, "badRequest");
    d.get("/volumes?sort=name&sort_key=size").fault(400, "badRequest");
    if common::max_minor(&d) >= 31 {
        d.get("/volumes?bogus=1").fault(400, "badRequest");
    }
    // An unknown status matches nothing (Cinder: an equality filter, not a 400).
    assert!(d.get("/volumes?status=melted").json()["volumes"].as_array().unwrap().is_empty());
    d.get("/volumes?created_at=gt:later").fault(400, "badRequest");
    d.get("/volumes?marker=00000000-0000-0000-0000-000000000000").fault(404, "itemNotFound");
    d.get("/volumes?marker=junk").fault(404, "itemNotFound");
}

/// Every log line a request causes names its request id (the response's
/// `x-openstack-request-id`), the background work it started included.
#[test]
fn log_lines_name_the_request_that_caused_them() {
    let d = Daemon::start_logging(&common::backends_toml(), "debug");
    let r = d.post("/volumes", json!({"volume": {"size": 1}}));
    assert_eq!(r.status, 202, "{}", r.text);
    let req = r.header("x-openstack-request-id").unwrap().to_string();
    let id = r.json()["volume"]["id"].as_str().unwrap().to_string();
    d.wait_status(&id, "available");
    let log = d.log();
    let mine: Vec<&str> = log.lines().filter(|l| l.contains(&req)).collect();
    // the access line, the flow's steps in the request and in the background, the end
    assert!(mine.iter().any(|l| l.contains("\"POST ") && l.contains("status: 202")), "{mine:#?}");
    assert!(mine.iter().any(|l| l.contains("flow volume_create_api: create record")), "{mine:#?}");
    assert!(mine.iter().any(|l| l.contains(&format!("volume {id} is available on"))), "{mine:#?}");
    // each line names it once, right after the level and target (an event's JSON
    // names it instead)
    for l in mine.iter().filter(|l| !l.contains(" hearth::event] ")) {
        assert_eq!(l.matches(&req).count(), 1, "{l}");
        assert!(l.split("] ").nth(1).is_some_and(|rest| rest.starts_with(&req)), "{l}");
    }
    // a line of another request does not carry this one's id
    let other = d.get(&format!("/volumes/{id}"));
    let other_req = other.header("x-openstack-request-id").unwrap().to_string();
    assert!(d.log().lines().filter(|l| l.contains(&other_req)).all(|l| !l.contains(&req)));
}

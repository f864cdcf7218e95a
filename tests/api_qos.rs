//! QoS specs over HTTP: create, list, show, set and delete keys, delete (with
//! `force`), associations with volume types, the front-end specs in a connection's
//! `connection_info`, bad input, and who may do what.

mod common;

use std::collections::BTreeSet;

use common::accounts::Accounts;
use common::Daemon;
use serde_json::{json, Value};

fn create(d: &Daemon, body: Value) -> Value {
    let r = d.post("/qos-specs", json!({ "qos_specs": body }));
    assert_eq!(r.status, 200, "{}", r.text);
    r.json()
}

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object().unwrap().keys().cloned().collect()
}

fn new_type(d: &Daemon, name: &str) -> String {
    let r = d.post("/types", json!({"volume_type": {"name": name}}));
    assert_eq!(r.status, 200, "{}", r.text);
    r.json()["volume_type"]["id"].as_str().unwrap().to_string()
}

#[test]
fn qos_specs_lifecycle() {
    let d = Daemon::start();
    // create: Cinder's view, and its links
    let r = create(&d, json!({"name": " gold ", "consumer": "front-end", "read_iops_sec": "2000"}));
    assert_eq!(keys(&r), BTreeSet::from(["qos_specs".into(), "links".into()]), "{r}");
    let q = r["qos_specs"].clone();
    assert_eq!(keys(&q), ["consumer", "id", "name", "specs"].iter().map(|s| s.to_string()).collect());
    assert_eq!(q["name"], "gold", "the name is trimmed");
    assert_eq!(q["consumer"], "front-end");
    assert_eq!(q["specs"], json!({"read_iops_sec": "2000"}));
    let id = q["id"].as_str().unwrap().to_string();
    assert!(r["links"][0]["href"].as_str().unwrap().ends_with(&format!("/qos-specs/{id}")), "{r}");
    // the default consumer is back-end
    let silver = create(&d, json!({"name": "silver", "total_bytes_sec": "100"}))["qos_specs"].clone();
    assert_eq!(silver["consumer"], "back-end");

    // show and list give the same object as create
    let shown = d.get(&format!("/qos-specs/{id}")).json();
    assert_eq!(shown["qos_specs"], q);
    let list = d.get("/qos-specs").json();
    assert_eq!(keys(&list), BTreeSet::from(["qos_specs".to_string()]), "{list}");
    assert!(list["qos_specs"].as_array().unwrap().contains(&q));
    assert_eq!(d.get("/qos-specs?name=silver").json()["qos_specs"], json!([silver]));
    assert_eq!(d.get("/qos-specs?consumer=front-end").json()["qos_specs"], json!([q]));
    assert_eq!(d.get("/qos-specs?colour=red").json()["qos_specs"], json!([]), "an unknown filter matches nothing");
    let page = d.get("/qos-specs?limit=1&sort=name:asc").json();
    assert_eq!(page["qos_specs"][0]["name"], "gold");
    let next = page["qos_specs_links"][0]["href"].as_str().unwrap();
    assert!(next.contains(&format!("marker={id}")), "{next}");
    let page2 = d.get(&format!("/qos-specs?limit=1&sort=name:asc&marker={id}")).json();
    assert_eq!(page2["qos_specs"][0]["name"], "silver");
    d.get("/qos-specs?sort=colour").fault(400, "badRequest");
    d.get("/qos-specs?limit=-1").fault(400, "badRequest");

    // set keys: the answer is what was given; consumer moves too
    let r = d.put(&format!("/qos-specs/{id}"), json!({"qos_specs": {"iops_bytes": "500", "consumer": "both"}}));
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json(), json!({"qos_specs": {"iops_bytes": "500", "consumer": "both"}}));
    let shown = d.get(&format!("/qos-specs/{id}")).json()["qos_specs"].clone();
    assert_eq!(shown["specs"], json!({"read_iops_sec": "2000", "iops_bytes": "500"}));
    assert_eq!(shown["consumer"], "both");

    // delete keys: all or nothing
    let r = d.put(&format!("/qos-specs/{id}/delete_keys"), json!({"keys": ["iops_bytes", "missing"]}));
    let msg = r.fault(404, "itemNotFound");
    assert!(msg.contains("missing"), "{msg}");
    assert_eq!(d.get(&format!("/qos-specs/{id}")).json()["qos_specs"]["specs"]["iops_bytes"], "500");
    let r = d.put(&format!("/qos-specs/{id}/delete_keys"), json!({"keys": ["iops_bytes"]}));
    assert_eq!(r.status, 202, "{}", r.text);
    assert_eq!(d.get(&format!("/qos-specs/{id}")).json()["qos_specs"]["specs"], json!({"read_iops_sec": "2000"}));

    // delete
    assert_eq!(d.delete(&format!("/qos-specs/{}", silver["id"].as_str().unwrap())).status, 202);
    d.get(&format!("/qos-specs/{}", silver["id"].as_str().unwrap())).fault(404, "itemNotFound");
    d.delete(&format!("/qos-specs/{}", silver["id"].as_str().unwrap())).fault(404, "itemNotFound");
    d.get("/qos-specs/not-a-uuid").fault(404, "itemNotFound");
    assert_eq!(d.get("/qos-specs").json()["qos_specs"].as_array().unwrap().len(), 1);
}

#[test]
fn bad_input_is_refused() {
    let d = Daemon::start();
    create(&d, json!({"name": "gold"}));
    let bad = [
        (json!({"qos_specs": {"name": "gold"}}), 409, "conflictingRequest"),
        (json!({"qos_specs": {"consumer": "front-end"}}), 400, "badRequest"),
        (json!({"qos_specs": {"name": "  "}}), 400, "badRequest"),
        (json!({"qos_specs": {"name": 5}}), 400, "badRequest"),
        (json!({"qos_specs": {"name": "x".repeat(256)}}), 400, "badRequest"),
        (json!({"qos_specs": {"name": "a", "consumer": "middle"}}), 400, "badRequest"),
        (json!({"qos_specs": {"name": "a", "consumer": null}}), 400, "badRequest"),
        (json!({"qos_specs": {"name": "a", "read_iops_sec": 100}}), 400, "badRequest"),
        (json!({"qos_specs": {"name": "a", "k": "v".repeat(256)}}), 400, "badRequest"),
        (json!({"qos_specs": {"name": "a"}, "extra": 1}), 400, "badRequest"),
        (json!({"qos_specs": "gold"}), 400, "badRequest"),
        (json!({"name": "a"}), 400, "badRequest"),
    ];
    for (body, code, fault) in bad {
        d.post("/qos-specs", body.clone()).fault(code, fault);
    }
    let id = d.get("/qos-specs").json()["qos_specs"][0]["id"].as_str().unwrap().to_string();
    let bad_updates = [
        json!({"qos_specs": {"consumer": "sideways"}}),
        json!({"qos_specs": {"bad key!": "1"}}),
        json!({"qos_specs": {"k": 1}}),
        json!({"qos_specs": []}),
        json!({"specs": {"k": "1"}}),
        json!({"qos_specs": {"k": "1"}, "more": {}}),
    ];
    for body in bad_updates {
        d.put(&format!("/qos-specs/{id}"), body).fault(400, "badRequest");
    }
    d.put(&format!("/qos-specs/{}", common::PROJECT), json!({"qos_specs": {"k": "1"}})).fault(404, "itemNotFound");
    for body in
        [json!({"keys": "k"}), json!({"keys": [1]}), json!({"keys": ["a", "a"]}), json!({}), json!({"keys": [""]})]
    {
        d.put(&format!("/qos-specs/{id}/delete_keys"), body).fault(400, "badRequest");
    }
    d.delete(&format!("/qos-specs/{id}?force=perhaps")).fault(400, "badRequest");
    d.get(&format!("/qos-specs/{id}/associate")).fault(400, "badRequest");
    d.get(&format!("/qos-specs/{id}/disassociate?vol_type_id=")).fault(400, "badRequest");
    d.post(&format!("/qos-specs/{id}"), json!({})).fault(405, "badMethod");
    // nothing above changed it
    assert_eq!(d.get(&format!("/qos-specs/{id}")).json()["qos_specs"]["specs"], json!({}));
}

#[test]
fn associations_follow_the_types() {
    let d = Daemon::start();
    let gold =
        create(&d, json!({"name": "gold", "consumer": "front-end"}))["qos_specs"]["id"].as_str().unwrap().to_string();
    let silver = create(&d, json!({"name": "silver"}))["qos_specs"]["id"].as_str().unwrap().to_string();
    let types: Vec<String> = (0..3).map(|i| new_type(&d, &format!("t{i}"))).collect();
    for t in &types {
        let r = d.get(&format!("/qos-specs/{gold}/associate?vol_type_id={t}"));
        assert_eq!(r.status, 202, "{}", r.text);
    }
    // again: nothing changes
    assert_eq!(d.get(&format!("/qos-specs/{gold}/associate?vol_type_id={}", types[0])).status, 202);
    // the type shows it to admins
    assert_eq!(d.get(&format!("/types/{}", types[0])).json()["volume_type"]["qos_specs_id"], gold.as_str());
    let r = d.get(&format!("/qos-specs/{gold}/associations")).json();
    let listed: BTreeSet<String> =
        r["qos_associations"].as_array().unwrap().iter().map(|a| a["id"].as_str().unwrap().to_string()).collect();
    assert_eq!(listed, types.iter().cloned().collect());
    assert_eq!(r["qos_associations"][0], json!({"association_type": "volume_type", "name": "t0", "id": types[0]}));
    // a type has one set of specs
    let msg = d.get(&format!("/qos-specs/{silver}/associate?vol_type_id={}", types[0])).fault(400, "badRequest");
    assert!(msg.contains(&gold), "{msg}");
    d.get(&format!("/qos-specs/{gold}/associate?vol_type_id={}", common::PROJECT)).fault(404, "itemNotFound");
    d.get(&format!("/qos-specs/{}/associate?vol_type_id={}", common::PROJECT, types[0])).fault(404, "itemNotFound");
    d.get(&format!("/qos-specs/{}/associations", common::PROJECT)).fault(404, "itemNotFound");

    // disassociate one; another specs' disassociate leaves the type alone
    assert_eq!(d.get(&format!("/qos-specs/{silver}/disassociate?vol_type_id={}", types[1])).status, 202);
    assert_eq!(d.get(&format!("/types/{}", types[1])).json()["volume_type"]["qos_specs_id"], gold.as_str());
    assert_eq!(d.get(&format!("/qos-specs/{gold}/disassociate?vol_type_id={}", types[0])).status, 202);
    assert_eq!(d.get(&format!("/types/{}", types[0])).json()["volume_type"]["qos_specs_id"], Value::Null);
    assert_eq!(
        d.get(&format!("/qos-specs/{gold}/associations")).json()["qos_associations"].as_array().unwrap().len(),
        2
    );

    // in use: delete needs force, which disassociates
    let msg = d.delete(&format!("/qos-specs/{gold}")).fault(400, "badRequest");
    assert!(msg.contains("in use"), "{msg}");
    assert_eq!(d.delete(&format!("/qos-specs/{gold}?force=false")).status, 400);
    assert_eq!(d.get(&format!("/qos-specs/{gold}")).status, 200);
    assert_eq!(d.get(&format!("/qos-specs/{silver}/associate?vol_type_id={}", types[0])).status, 202);
    assert_eq!(d.get(&format!("/qos-specs/{silver}/disassociate_all")).status, 202);
    assert_eq!(d.get(&format!("/types/{}", types[0])).json()["volume_type"]["qos_specs_id"], Value::Null);
    assert_eq!(d.delete(&format!("/qos-specs/{gold}?force=True")).status, 202);
    for t in &types {
        assert_eq!(d.get(&format!("/types/{t}")).json()["volume_type"]["qos_specs_id"], Value::Null);
    }
    // a type with specs can still be deleted
    assert_eq!(d.get(&format!("/qos-specs/{silver}/associate?vol_type_id={}", types[2])).status, 202);
    assert_eq!(d.delete(&format!("/types/{}", types[2])).status, 202);
    assert!(d.get(&format!("/qos-specs/{silver}/associations")).json()["qos_associations"]
        .as_array()
        .unwrap()
        .is_empty());
}

#[test]
fn front_end_specs_reach_the_connection() {
    let d = Daemon::start();
    let front = create(
        &d,
        json!({"name": "front", "consumer": "front-end", "total_bytes_sec": "1048576",
               "read_iops_sec_per_gb": "100", "read_iops_sec_max": "250"}),
    )["qos_specs"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let back = create(&d, json!({"name": "back", "consumer": "back-end", "total_iops_sec": "5"}))["qos_specs"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let tf = new_type(&d, "limited");
    let tb = new_type(&d, "backend-limited");
    d.get(&format!("/qos-specs/{front}/associate?vol_type_id={tf}"));
    d.get(&format!("/qos-specs/{back}/associate?vol_type_id={tb}"));
    let connector = json!({"initiator": "iqn.1994-05.com.redhat:c1", "host": "c1", "ip": "127.0.0.1"});

    // legacy: os-initialize_connection's data; 2 GiB at 100 IOPS/GiB, capped at 250
    let v = d.create_volume(json!({"size": 2, "volume_type": "limited"}));
    d.wait_status(&v, "available");
    let r = d.post(&format!("/volumes/{v}/action"), json!({"os-initialize_connection": {"connector": connector}}));
    assert_eq!(r.status, 200, "{}", r.text);
    let data = &r.json()["connection_info"]["data"];
    assert_eq!(data["qos_specs"], json!({"total_bytes_sec": "1048576", "read_iops_sec": 200}), "{data}");
    assert_eq!(data["encrypted"], false);

    // attachments API: at the top level of connection_info
    let w = d.create_volume(json!({"size": 3, "volume_type": "limited"}));
    d.wait_status(&w, "available");
    let r = d.post(
        "/attachments",
        json!({"attachment": {"volume_uuid": w, "instance_uuid": "8c2ff6b4-6e4b-4fd5-9c6c-4a1f1e6c1d55",
                              "connector": connector}}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    let info = &r.json()["attachment"]["connection_info"];
    assert_eq!(info["qos_specs"], json!({"total_bytes_sec": "1048576", "read_iops_sec": 250}), "{info}");

    // back-end specs are not the host's business; nor are no specs
    for ty in ["backend-limited", "__DEFAULT__"] {
        let x = d.create_volume(json!({"size": 1, "volume_type": ty}));
        d.wait_status(&x, "available");
        let r = d.post(&format!("/volumes/{x}/action"), json!({"os-initialize_connection": {"connector": connector}}));
        assert_eq!(r.json()["connection_info"]["data"]["qos_specs"], Value::Null, "{ty}: {}", r.text);
    }
}

#[test]
fn only_admins_manage_qos_specs() {
    let a = Accounts::start("", "3.67");
    let r = a.own("root", "POST", "/qos-specs", Some(json!({"qos_specs": {"name": "gold"}})));
    assert_eq!(r.status, 200, "{r:?}");
    let id = r.json()["qos_specs"]["id"].as_str().unwrap().to_string();
    let t = a.own("root", "POST", "/types", Some(json!({"volume_type": {"name": "t"}}))).json()["volume_type"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(a.own("root", "GET", &format!("/qos-specs/{id}/associate?vol_type_id={t}"), None).status, 202);
    for who in ["alice", "rita"] {
        let calls: Vec<(&str, String, Option<Value>)> = vec![
            ("GET", "/qos-specs".into(), None),
            ("POST", "/qos-specs".into(), Some(json!({"qos_specs": {"name": "mine"}}))),
            ("GET", format!("/qos-specs/{id}"), None),
            ("PUT", format!("/qos-specs/{id}"), Some(json!({"qos_specs": {"k": "v"}}))),
            ("PUT", format!("/qos-specs/{id}/delete_keys"), Some(json!({"keys": ["k"]}))),
            ("GET", format!("/qos-specs/{id}/associations"), None),
            ("GET", format!("/qos-specs/{id}/associate?vol_type_id={t}"), None),
            ("GET", format!("/qos-specs/{id}/disassociate?vol_type_id={t}"), None),
            ("GET", format!("/qos-specs/{id}/disassociate_all"), None),
            ("DELETE", format!("/qos-specs/{id}?force=true"), None),
        ];
        for (m, p, b) in calls {
            let msg = a.own(who, m, &p, b).fault(403, "forbidden");
            assert!(msg.contains("qos_specs_manage"), "{who} {m} {p}: {msg}");
        }
        // a type's qos_specs_id is the admins' business
        let v = a.own(who, "GET", &format!("/types/{t}"), None).json();
        assert!(v["volume_type"].get("qos_specs_id").is_none(), "{v}");
    }
    let v = a.own("root", "GET", &format!("/types/{t}"), None).json();
    assert_eq!(v["volume_type"]["qos_specs_id"], id.as_str());
    // the specs are intact
    let q = a.own("root", "GET", &format!("/qos-specs/{id}"), None).json();
    assert_eq!(q["qos_specs"]["specs"], json!({}));
}

#[test]
fn in_use_volumes_keep_their_front_end_specs() {
    let d = Daemon::start();
    let front = create(&d, json!({"name": "front", "consumer": "front-end", "total_iops_sec": "10"}))["qos_specs"]
        ["id"]
        .as_str()
        .unwrap()
        .to_string();
    let back =
        create(&d, json!({"name": "back", "consumer": "back-end"}))["qos_specs"]["id"].as_str().unwrap().to_string();
    let (tf, tb) = (new_type(&d, "front-t"), new_type(&d, "back-t"));
    new_type(&d, "bare-t");
    d.get(&format!("/qos-specs/{front}/associate?vol_type_id={tf}"));
    d.get(&format!("/qos-specs/{back}/associate?vol_type_id={tb}"));
    let retype = |v: &str, to: &str| d.post(&format!("/volumes/{v}/action"), json!({"os-retype": {"new_type": to}}));
    let attach = |v: &str| {
        let r = d.post(
            "/attachments",
            json!({"attachment": {"volume_uuid": v, "instance_uuid": "8c2ff6b4-6e4b-4fd5-9c6c-4a1f1e6c1d55",
                                  "connector": {"host": "c1", "initiator": "iqn.1994-05.com.redhat:c1"}}}),
        );
        assert_eq!(r.status, 200, "{}", r.text);
        let a = r.json()["attachment"]["id"].as_str().unwrap().to_string();
        assert_eq!(d.post(&format!("/attachments/{a}/action"), json!({"os-complete": null})).status, 204);
        d.wait_status(v, "in-use");
    };
    // in use with front-end specs: the specs cannot change
    let v = d.create_volume(json!({"size": 1, "volume_type": "front-t"}));
    d.wait_status(&v, "available");
    attach(&v);
    let msg = retype(&v, "bare-t").fault(400, "badRequest");
    assert!(msg.contains("front-end qos specs cannot change"), "{msg}");
    // back-end specs or none: fine while in use
    let w = d.create_volume(json!({"size": 1, "volume_type": "back-t"}));
    d.wait_status(&w, "available");
    attach(&w);
    assert_eq!(retype(&w, "bare-t").status, 202);
    // available: anything goes
    let x = d.create_volume(json!({"size": 1, "volume_type": "front-t"}));
    d.wait_status(&x, "available");
    assert_eq!(retype(&x, "bare-t").status, 202);
    d.wait_volume(&x, "retyped", |y| y["volume_type"] == "bare-t");
}

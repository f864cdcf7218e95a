//! Attach and detach over HTTP, both ways clients do it, with every state
//! transition and the refused ones answered with Cinder's codes.

mod common;

use common::Daemon;
use serde_json::{json, Value};

const INSTANCE: &str = "7f0e6f6c-1111-4222-8333-944455556666";
const OTHER_INSTANCE: &str = "8a1e6f6c-1111-4222-8333-944455556666";

fn connector(host: &str) -> Value {
    json!({"platform": "x86_64", "os_type": "linux", "ip": "127.0.0.1", "host": host,
           "multipath": false, "initiator": format!("iqn.1994-05.com.redhat:{host}")})
}

fn available(d: &Daemon, body: Value) -> String {
    let id = d.create_volume(body);
    d.wait_status(&id, "available");
    id
}

fn act(d: &Daemon, id: &str, body: Value) -> common::Resp {
    d.post(&format!("/volumes/{id}/action"), body)
}

fn volume(d: &Daemon, id: &str) -> Value {
    d.get(&format!("/volumes/{id}")).json()["volume"].clone()
}

#[test]
fn legacy_attach_detach_cycle() {
    let d = Daemon::start();
    let v = available(&d, json!({"size": 1}));
    // os-reserve takes null (as Nova and the SDK send it)
    assert_eq!(act(&d, &v, json!({"os-reserve": null})).status, 202);
    assert_eq!(volume(&d, &v)["status"], "attaching");
    act(&d, &v, json!({"os-reserve": {}})).fault(400, "badRequest");
    act(&d, &v, json!({"os-initialize_connection": {}})).fault(400, "badRequest");
    let r = act(&d, &v, json!({"os-initialize_connection": {"connector": connector("compute1")}}));
    assert_eq!(r.status, 200, "{}", r.text);
    let info = r.json()["connection_info"].clone();
    assert_eq!(info["driver_volume_type"], "local");
    let path = info["data"]["device_path"].as_str().unwrap().to_string();
    assert!(std::path::Path::new(&path).exists(), "{path}");
    assert_eq!(info["data"]["access_mode"], "rw");
    assert_eq!(info["data"]["volume_id"], v.as_str());
    // attach; the volume shows the attachment
    let r = act(
        &d,
        &v,
        json!({"os-attach": {"instance_uuid": INSTANCE, "mountpoint": "/dev/vdb", "host_name": "compute1"}}),
    );
    assert_eq!(r.status, 202, "{}", r.text);
    let vol = volume(&d, &v);
    assert_eq!((vol["status"].as_str(), vol["attach_status"].as_str()), (Some("in-use"), None));
    let att = &vol["attachments"][0];
    assert_eq!(att["server_id"], INSTANCE);
    assert_eq!(att["device"], "/dev/vdb");
    assert_eq!(att["host_name"], "compute1");
    assert_eq!(att["volume_id"], v.as_str());
    assert_eq!(vol["metadata"]["attached_mode"], "rw");
    let attachment_id = att["attachment_id"].as_str().unwrap().to_string();
    // in-use: no delete, no plain extend before 3.42, extend from 3.42
    d.delete(&format!("/volumes/{v}")).fault(400, "badRequest");
    d.call("POST", &format!("/volumes/{v}/action"), Some(json!({"os-extend": {"new_size": 2}})), Some("3.41"))
        .fault(400, "badRequest");
    assert_eq!(
        d.call("POST", &format!("/volumes/{v}/action"), Some(json!({"os-extend": {"new_size": 2}})), Some("3.42"))
            .status,
        202
    );
    let vol = d.wait_volume(&v, "extended in use", |x| x["size"] == 2 && x["status"] == "in-use");
    assert_eq!(vol["attachments"].as_array().unwrap().len(), 1);
    assert_eq!(common::device_len(std::path::Path::new(&path)), 2 << 30);
    // detaching, rolled back, then done
    act(&d, &v, json!({"os-roll_detaching": null})).fault(400, "badRequest");
    assert_eq!(act(&d, &v, json!({"os-begin_detaching": null})).status, 202);
    assert_eq!(volume(&d, &v)["status"], "detaching");
    assert_eq!(act(&d, &v, json!({"os-roll_detaching": null})).status, 202);
    assert_eq!(volume(&d, &v)["status"], "in-use");
    assert_eq!(act(&d, &v, json!({"os-begin_detaching": null})).status, 202);
    assert_eq!(act(&d, &v, json!({"os-terminate_connection": {"connector": connector("compute1")}})).status, 202);
    act(&d, &v, json!({"os-detach": {"attachment_id": "00000000-0000-0000-0000-000000000000"}}))
        .fault(404, "itemNotFound");
    assert_eq!(act(&d, &v, json!({"os-detach": {"attachment_id": attachment_id}})).status, 202);
    let vol = volume(&d, &v);
    assert_eq!(vol["status"], "available");
    assert!(vol["attachments"].as_array().unwrap().is_empty());
    assert!(vol["metadata"].get("attached_mode").is_none());
    act(&d, &v, json!({"os-detach": {}})).fault(400, "badRequest");
    // reserve then unreserve leaves nothing behind
    assert_eq!(act(&d, &v, json!({"os-reserve": null})).status, 202);
    assert_eq!(act(&d, &v, json!({"os-initialize_connection": {"connector": connector("compute2")}})).status, 200);
    assert_eq!(act(&d, &v, json!({"os-unreserve": null})).status, 202);
    let vol = volume(&d, &v);
    assert_eq!(vol["status"], "available");
    act(&d, &v, json!({"os-unreserve": null})).fault(400, "badRequest");
    assert_eq!(d.get(&format!("/attachments?volume_id={v}")).json()["attachments"].as_array().unwrap().len(), 0);
    assert_eq!(d.delete(&format!("/volumes/{v}")).status, 202);
}

#[test]
fn refused_attaches() {
    let d = Daemon::start();
    // an error volume cannot be attached either way
    let v = available(&d, json!({"size": 1}));
    act(&d, &v, json!({"os-reset_status": {"status": "error"}}));
    act(&d, &v, json!({"os-reserve": null})).fault(400, "badRequest");
    act(&d, &v, json!({"os-initialize_connection": {"connector": connector("h1")}})).fault(400, "badRequest");
    d.post("/attachments", json!({"attachment": {"volume_uuid": v, "instance_uuid": INSTANCE}}))
        .fault(400, "badRequest");
    // os-attach without reserve
    let w = available(&d, json!({"size": 1}));
    act(&d, &w, json!({"os-attach": {"instance_uuid": INSTANCE, "mountpoint": "/dev/vdb"}})).fault(400, "badRequest");
    act(&d, &w, json!({"os-attach": {"mountpoint": "/dev/vdb"}})).fault(400, "badRequest");
    // a read-only volume attaches read-only
    assert_eq!(act(&d, &w, json!({"os-update_readonly_flag": {"readonly": true}})).status, 202);
    assert_eq!(act(&d, &w, json!({"os-reserve": null})).status, 202);
    let r = act(&d, &w, json!({"os-initialize_connection": {"connector": connector("h1")}}));
    assert_eq!(r.json()["connection_info"]["data"]["access_mode"], "ro");
    act(&d, &w, json!({"os-attach": {"instance_uuid": INSTANCE, "mountpoint": "/dev/vdb", "mode": "rw"}}))
        .fault(400, "badRequest");
    assert_eq!(
        act(&d, &w, json!({"os-attach": {"instance_uuid": INSTANCE, "mountpoint": "/dev/vdb", "mode": "ro"}})).status,
        202
    );
    // a second host on a volume that is not multiattach: 409
    let r = act(&d, &w, json!({"os-initialize_connection": {"connector": connector("h2")}}));
    r.fault(409, "conflictingRequest");
    // the same host again is fine
    assert_eq!(act(&d, &w, json!({"os-initialize_connection": {"connector": connector("h1")}})).status, 200);
    // a second instance cannot reserve it through the attachments API
    d.post("/attachments", json!({"attachment": {"volume_uuid": w, "instance_uuid": OTHER_INSTANCE}}))
        .fault(400, "badRequest");
    // the attachments API does not exist before 3.27
    d.call("GET", "/attachments", None, Some("3.26")).fault(404, "itemNotFound");
    // force_detach (admin) clears it all
    let r = act(&d, &w, json!({"os-force_detach": {"connector": connector("h1")}}));
    assert_eq!(r.status, 202, "{}", r.text);
    assert_eq!(volume(&d, &w)["status"], "available");
}

#[test]
fn attachments_api_cycle() {
    let d = Daemon::start();
    let v = available(&d, json!({"size": 1}));
    // reserve without a connector (as cinderclient sends it)
    let r =
        d.post("/attachments", json!({"attachment": {"volume_uuid": v, "instance_uuid": INSTANCE, "connector": null}}));
    assert_eq!(r.status, 200, "{}", r.text);
    let a = r.json()["attachment"].clone();
    assert_eq!(a["status"], "reserved");
    assert_eq!(a["instance"], INSTANCE);
    assert_eq!(a["connection_info"], json!({}));
    assert_eq!(a["attached_at"], "");
    let aid = a["id"].as_str().unwrap().to_string();
    assert_eq!(volume(&d, &v)["status"], "reserved");
    // lists
    let l = d.get("/attachments").json();
    assert_eq!(l["attachments"][0].as_object().unwrap().len(), 4, "summary view: {l}");
    let l = d.get(&format!("/attachments/detail?volume_id={v}")).json();
    assert_eq!(l["attachments"][0]["attach_mode"], "rw");
    d.get("/attachments?colour=red").fault(400, "badRequest");
    d.get("/attachments/00000000-0000-0000-0000-000000000000").fault(404, "itemNotFound");
    // complete before a connection is refused
    d.post(&format!("/attachments/{aid}/action"), json!({"os-complete": null})).fault(400, "badRequest");
    // update with a connector: the export is made
    let r = d.put(&format!("/attachments/{aid}"), json!({"attachment": {"connector": connector("compute1")}}));
    assert_eq!(r.status, 200, "{}", r.text);
    let a = r.json()["attachment"].clone();
    assert_eq!(a["status"], "attaching");
    let ci = &a["connection_info"];
    assert_eq!(ci["driver_volume_type"], "local");
    assert_eq!(ci["attachment_id"], aid.as_str());
    assert!(std::path::Path::new(ci["device_path"].as_str().unwrap()).exists());
    assert_eq!(volume(&d, &v)["status"], "attaching");
    d.put(&format!("/attachments/{aid}"), json!({"attachment": {}})).fault(400, "badRequest");
    // complete: 3.44
    d.call("POST", &format!("/attachments/{aid}/action"), Some(json!({"os-complete": null})), Some("3.43"))
        .fault(400, "badRequest");
    let r = d.post(&format!("/attachments/{aid}/action"), json!({"os-complete": aid}));
    assert_eq!(r.status, 204, "{}", r.text);
    let vol = volume(&d, &v);
    assert_eq!(vol["status"], "in-use");
    assert_eq!(vol["attachments"][0]["attachment_id"], aid.as_str());
    assert_ne!(d.get(&format!("/attachments/{aid}")).json()["attachment"]["attached_at"], "");
    // delete: 200 with what remains
    let r = d.delete(&format!("/attachments/{aid}"));
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json(), json!({"attachments": []}));
    assert_eq!(volume(&d, &v)["status"], "available");
    d.delete(&format!("/attachments/{aid}")).fault(404, "itemNotFound");
    // with a connector at once, read-only (3.54)
    d.call(
        "POST",
        "/attachments",
        Some(json!({"attachment": {"volume_uuid": v, "instance_uuid": INSTANCE, "mode": "ro"}})),
        Some("3.53"),
    )
    .fault(400, "badRequest");
    let r = d.post(
        "/attachments",
        json!({"attachment": {"volume_uuid": v, "instance_uuid": INSTANCE, "mode": "ro",
        "connector": connector("compute1")}}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    let a = r.json()["attachment"].clone();
    assert_eq!(a["attach_mode"], "ro");
    assert_eq!(a["connection_info"]["access_mode"], "ro");
    assert_eq!(volume(&d, &v)["status"], "attaching");
    let aid = a["id"].as_str().unwrap().to_string();
    assert_eq!(d.delete(&format!("/attachments/{aid}")).status, 200);
    assert_eq!(volume(&d, &v)["status"], "available");
}

#[test]
fn multiattach_from_the_type() {
    let d = Daemon::start();
    let r = d.post("/types", json!({"volume_type": {"name": "shared", "extra_specs": {"multiattach": "<is> True"}}}));
    assert_eq!(r.status, 200);
    let v = available(&d, json!({"size": 1, "volume_type": "shared"}));
    assert_eq!(volume(&d, &v)["multiattach"], true);
    let mut ids = Vec::new();
    for (inst, host) in [(INSTANCE, "h1"), (OTHER_INSTANCE, "h2")] {
        let r = d.post(
            "/attachments",
            json!({"attachment": {"volume_uuid": v, "instance_uuid": inst, "connector": connector(host)}}),
        );
        assert_eq!(r.status, 200, "{}", r.text);
        let aid = r.json()["attachment"]["id"].as_str().unwrap().to_string();
        assert_eq!(d.post(&format!("/attachments/{aid}/action"), json!({"os-complete": null})).status, 204);
        ids.push(aid);
    }
    let vol = volume(&d, &v);
    assert_eq!(vol["status"], "in-use");
    assert_eq!(vol["attachments"].as_array().unwrap().len(), 2);
    let r = d.delete(&format!("/attachments/{}", ids[0]));
    assert_eq!(r.json()["attachments"].as_array().unwrap().len(), 1);
    assert_eq!(volume(&d, &v)["status"], "in-use");
    d.delete(&format!("/attachments/{}", ids[1]));
    assert_eq!(volume(&d, &v)["status"], "available");
}

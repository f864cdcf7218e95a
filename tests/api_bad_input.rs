//! Bad input: every malformed or impossible request gets the right code and Cinder's
//! error body with a sentence, nothing panics, and nothing is left half-made.

mod common;

use common::{Daemon, PROJECT};
use serde_json::json;

fn post_raw(d: &Daemon, path: &str, body: &[u8], ct: &str) -> common::Resp {
    let auth = format!("demo:{PROJECT}");
    d.raw("POST", &format!("/v3/{PROJECT}{path}"), Some(body), &[("Content-Type", ct), ("X-Auth-Token", &auth)])
}

#[test]
fn volume_create_refusals() {
    let d = Daemon::start();
    let cases: Vec<(serde_json::Value, u16, &str)> = vec![
        (json!({}), 400, "badRequest"),
        (json!({"volume": 1}), 400, "badRequest"),
        (json!({"volume": {}}), 400, "badRequest"),
        (json!({"volume": {"size": 0}}), 400, "badRequest"),
        (json!({"volume": {"size": -1}}), 400, "badRequest"),
        (json!({"volume": {"size": 1.5}}), 400, "badRequest"),
        (json!({"volume": {"size": "ten"}}), 400, "badRequest"),
        (json!({"volume": {"size": true}}), 400, "badRequest"),
        (json!({"volume": {"size": 2147483648u64}}), 400, "badRequest"),
        (json!({"volume": {"size": 18446744073709551615u64}}), 400, "badRequest"),
        (json!({"volume": {"size": 1001}}), 413, "overLimit"),
        (json!({"volume": {"size": 1, "volume_type": "no-such-type"}}), 404, "itemNotFound"),
        (json!({"volume": {"size": 1, "availability_zone": "mars"}}), 400, "badRequest"),
        (json!({"volume": {"size": 1, "multiattach": true}}), 400, "badRequest"),
        (json!({"volume": {"size": 1, "name": "x".repeat(256)}}), 400, "badRequest"),
        (json!({"volume": {"size": 1, "name": 5}}), 400, "badRequest"),
        (json!({"volume": {"size": 1, "metadata": {"k": 1}}}), 400, "badRequest"),
        (json!({"volume": {"size": 1, "metadata": ["k"]}}), 400, "badRequest"),
        (json!({"volume": {"size": 1, "metadata": {"": "v"}}}), 400, "badRequest"),
        (json!({"volume": {"size": 1, "imageRef": "abc"}}), 400, "badRequest"),
        (json!({"volume": {"size": 1, "consistencygroup_id": "abc"}}), 400, "badRequest"),
    ];
    for (body, code, fault) in cases {
        let r = d.post("/volumes", body.clone());
        let msg = r.fault(code, fault);
        println!("{body} -> {code}: {msg}");
    }
    // a string size of digits is accepted, as Cinder does
    let id = d.create_volume(json!({"size": "1"}));
    d.wait_status(&id, "available");
    // nothing else was recorded
    assert_eq!(d.get("/volumes").json()["volumes"].as_array().unwrap().len(), 1);
    assert_eq!(d.get(&format!("/os-quota-sets/{PROJECT}?usage=True")).json()["quota_set"]["volumes"]["reserved"], 0);
}

#[test]
fn malformed_bodies_media_types_and_sizes() {
    let d = Daemon::start();
    post_raw(&d, "/volumes", b"{not json", "application/json").fault(400, "badRequest");
    post_raw(&d, "/volumes", b"[1,2", "application/json").fault(400, "badRequest");
    post_raw(&d, "/volumes", b"\"volume\"", "application/json").fault(400, "badRequest");
    post_raw(&d, "/volumes", b"\xff\xfe", "application/json").fault(400, "badRequest");
    post_raw(&d, "/volumes", br#"{"volume":{"size":1}}"#, "text/plain").fault(415, "badMediaType");
    // bodies above the cap (112 KiB, Cinder's default) are refused
    let big = format!(r#"{{"volume":{{"size":1,"description":"{}"}}}}"#, "x".repeat(200_000));
    let r = post_raw(&d, "/volumes", big.as_bytes(), "application/json");
    r.fault(413, "overLimit");
    // an empty body where one is needed
    d.call("POST", "/volumes", None, Some("latest")).fault(400, "badRequest");
    assert_eq!(d.get("/volumes").json()["volumes"].as_array().unwrap().len(), 0);
}

#[test]
fn routes_methods_and_ids() {
    let d = Daemon::start();
    d.get("/volumes/").fault(404, "itemNotFound");
    d.get("/volumes/not-a-uuid").fault(404, "itemNotFound");
    d.get("/volumes/00000000-0000-0000-0000-000000000000").fault(404, "itemNotFound");
    d.get("/nothing-here").fault(404, "itemNotFound");
    d.raw("GET", "/v2/volumes", None, &[]).fault(404, "itemNotFound");
    d.call("PATCH", "/volumes", None, Some("latest")).fault(405, "badMethod");
    d.delete("/volumes").fault(405, "badMethod");
    d.delete("/volumes/00000000-0000-0000-0000-000000000000").fault(404, "itemNotFound");
    d.put("/volumes/00000000-0000-0000-0000-000000000000", json!({"volume": {"name": "x"}})).fault(404, "itemNotFound");
}

#[test]
fn action_and_update_refusals() {
    let d = Daemon::start();
    let id = d.create_volume(json!({"size": 1}));
    d.wait_status(&id, "available");
    let act = |body: serde_json::Value| d.post(&format!("/volumes/{id}/action"), body);
    act(json!({"os-frobnicate": null})).fault(400, "badRequest");
    act(json!({})).fault(400, "badRequest");
    act(json!({"os-extend": {}})).fault(400, "badRequest");
    act(json!({"os-extend": {"new_size": "big"}})).fault(400, "badRequest");
    act(json!({"os-extend": {"new_size": 1}})).fault(400, "badRequest");
    act(json!({"os-extend": {"new_size": 5000}})).fault(413, "overLimit");
    act(json!({"os-extend": 3})).fault(400, "badRequest");
    act(json!({"os-reset_status": {}})).fault(400, "badRequest");
    act(json!({"os-reset_status": {"status": "melted"}})).fault(400, "badRequest");
    act(json!({"os-update_readonly_flag": {"readonly": "perhaps"}})).fault(400, "badRequest");
    act(json!({"os-set_bootable": {}})).fault(400, "badRequest");
    act(json!({"os-force_delete": 7})).fault(400, "badRequest");
    d.put(&format!("/volumes/{id}"), json!({"volume": {"size": 3}})).fault(400, "badRequest");
    d.put(&format!("/volumes/{id}"), json!({"volume": {"name": ["x"]}})).fault(400, "badRequest");
    d.put(&format!("/volumes/{id}/metadata/a"), json!({"meta": {"a": "1", "b": "2"}})).fault(400, "badRequest");
    // the volume is untouched by all of that
    let v = d.get(&format!("/volumes/{id}")).json()["volume"].clone();
    assert_eq!((v["status"].as_str(), v["size"].as_u64()), (Some("available"), Some(1)));
    // a creating volume cannot be deleted; parameterless actions take null or {}
    act(json!({"os-reset_status": {"status": "creating"}}));
    d.delete(&format!("/volumes/{id}")).fault(400, "badRequest");
    assert_eq!(act(json!({"os-reset_status": {"status": "available"}})).status, 202);
    assert_eq!(act(json!({"os-force_delete": null})).status, 202);
    d.wait_gone(&id);
}

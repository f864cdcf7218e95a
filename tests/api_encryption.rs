//! Volume type encryption over HTTP: create, show, show one key, update, delete;
//! volumes of an encrypted type (`encrypted`, `encryption_key_id`, their encryption
//! metadata and `connection_info`); changes refused while the type is in use; bad
//! input; who may do what.

mod common;

use std::collections::BTreeSet;

use common::accounts::Accounts;
use common::Daemon;
use serde_json::{json, Value};

const FIXED_KEY: &str = "00000000-0000-0000-0000-000000000000";

fn new_type(d: &Daemon, name: &str, specs: Value) -> String {
    let r = d.post("/types", json!({"volume_type": {"name": name, "extra_specs": specs}}));
    assert_eq!(r.status, 200, "{}", r.text);
    r.json()["volume_type"]["id"].as_str().unwrap().to_string()
}

fn luks() -> Value {
    json!({"encryption": {"provider": "luks", "cipher": "aes-xts-plain64", "key_size": 256,
                          "control_location": "front-end"}})
}

#[test]
fn type_encryption_lifecycle() {
    let d = Daemon::start();
    let t = new_type(&d, "secret", json!({}));
    // none yet: an empty object
    assert_eq!(d.get(&format!("/types/{t}/encryption")).json(), json!({}));
    d.get(&format!("/types/{t}/encryption/cipher")).fault(404, "itemNotFound");

    let r = d.post(&format!("/types/{t}/encryption"), luks());
    assert_eq!(r.status, 200, "{}", r.text);
    let e = r.json()["encryption"].clone();
    let fields: BTreeSet<&str> = e.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        fields,
        BTreeSet::from(["cipher", "control_location", "encryption_id", "key_size", "provider", "volume_type_id"])
    );
    assert_eq!(e["volume_type_id"], t.as_str());
    assert_eq!(e["key_size"], 256);
    let eid = e["encryption_id"].as_str().unwrap().to_string();
    d.post(&format!("/types/{t}/encryption"), luks()).fault(400, "badRequest");

    // show: Cinder's whole row
    let row = d.get(&format!("/types/{t}/encryption")).json();
    for (k, v) in [
        ("provider", json!("luks")),
        ("cipher", json!("aes-xts-plain64")),
        ("key_size", json!(256)),
        ("control_location", json!("front-end")),
        ("encryption_id", json!(eid)),
        ("deleted", json!(false)),
        ("deleted_at", Value::Null),
        ("updated_at", Value::Null),
    ] {
        assert_eq!(row[k], v, "{k}: {row}");
    }
    assert!(row["created_at"].is_string());
    assert_eq!(d.get(&format!("/types/{t}/encryption/provider")).json(), json!({"provider": "luks"}));
    d.get(&format!("/types/{t}/encryption/colour")).fault(404, "itemNotFound");

    // update: the answer holds what was given
    let r = d.put(
        &format!("/types/{t}/encryption/{eid}"),
        json!({"encryption": {"key_size": "128", "provider": "SomeProvider", "control_location": "back-end"}}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.json(),
        json!({"encryption": {"key_size": 128, "provider": "SomeProvider", "control_location": "back-end"}})
    );
    let row = d.get(&format!("/types/{t}/encryption")).json();
    assert_eq!((row["key_size"].clone(), row["cipher"].clone()), (json!(128), json!("aes-xts-plain64")));
    assert!(row["updated_at"].is_string(), "{row}");
    let r = d.put(&format!("/types/{t}/encryption/{eid}"), json!({"encryption": {"cipher": null}}));
    assert_eq!(r.json(), json!({"encryption": {"cipher": null}}));

    // delete
    assert_eq!(d.delete(&format!("/types/{t}/encryption/{eid}")).status, 202);
    assert_eq!(d.get(&format!("/types/{t}/encryption")).json(), json!({}));
    d.delete(&format!("/types/{t}/encryption/{eid}")).fault(404, "itemNotFound");
    d.put(&format!("/types/{t}/encryption/{eid}"), luks()).fault(404, "itemNotFound");

    // unknown types
    let nobody = common::PROJECT;
    d.get(&format!("/types/{nobody}/encryption")).fault(404, "itemNotFound");
    d.post(&format!("/types/{nobody}/encryption"), luks()).fault(404, "itemNotFound");
    d.delete(&format!("/types/{nobody}/encryption/x")).fault(404, "itemNotFound");
}

#[test]
fn bad_encryption_is_refused() {
    let d = Daemon::start();
    let t = new_type(&d, "secret", json!({}));
    let bad = [
        json!({"encryption": {"control_location": "front-end"}}),
        json!({"encryption": {"provider": "luks"}}),
        json!({"encryption": {"provider": "luks", "control_location": "middle"}}),
        json!({"encryption": {"provider": "luks", "control_location": "front-end", "key_size": "big"}}),
        json!({"encryption": {"provider": "luks", "control_location": "front-end", "key_size": -256}}),
        json!({"encryption": {"provider": 7, "control_location": "front-end"}}),
        json!({"encryption": {"provider": "luks", "control_location": "front-end", "cipher": 1}}),
        json!({"encryption": {"provider": "x".repeat(256), "control_location": "front-end"}}),
        json!({"encryption": "luks"}),
        json!({"provider": "luks", "control_location": "front-end"}),
        json!({"encryption": {"provider": "luks", "control_location": "front-end"}, "more": 1}),
    ];
    for body in bad {
        d.post(&format!("/types/{t}/encryption"), body.clone()).fault(400, "badRequest");
    }
    assert_eq!(d.get(&format!("/types/{t}/encryption")).json(), json!({}), "nothing was made");
    assert_eq!(d.post(&format!("/types/{t}/encryption"), luks()).status, 200);
    d.put(&format!("/types/{t}/encryption/x"), json!({"encryption": {"key_size": true}})).fault(400, "badRequest");
    d.put(&format!("/types/{t}/encryption/x"), json!({"encryption": {"control_location": null}}))
        .fault(400, "badRequest");
}

#[test]
fn volumes_of_an_encrypted_type() {
    let d = Daemon::start();
    let t = new_type(&d, "secret", json!({}));
    assert_eq!(d.post(&format!("/types/{t}/encryption"), luks()).status, 200);
    let v = d.create_volume(json!({"size": 1, "volume_type": "secret"}));
    let vol = d.wait_status(&v, "available");
    assert_eq!(vol["encrypted"], true);
    assert_eq!(vol["encryption_key_id"], FIXED_KEY);
    // encryption_key_id is a 3.64 field
    let old = d.call("GET", &format!("/volumes/{v}"), None, Some("3.63")).json();
    assert!(old["volume"].get("encryption_key_id").is_none(), "{old}");
    assert_eq!(old["volume"]["encrypted"], true);

    // what the compute host's encryptor reads
    let meta = d.get(&format!("/volumes/{v}/encryption")).json();
    assert_eq!(
        meta,
        json!({"encryption_key_id": FIXED_KEY, "provider": "luks", "cipher": "aes-xts-plain64", "key_size": 256,
               "control_location": "front-end"})
    );
    assert_eq!(d.get(&format!("/volumes/{v}/encryption/cipher")).json(), json!("aes-xts-plain64"));
    d.get(&format!("/volumes/{v}/encryption/colour")).fault(404, "itemNotFound");
    d.get(&format!("/volumes/{}/encryption", common::PROJECT)).fault(404, "itemNotFound");

    // connection_info says so
    let connector = json!({"initiator": "iqn.1994-05.com.redhat:c1", "host": "c1"});
    let r = d.post(&format!("/volumes/{v}/action"), json!({"os-initialize_connection": {"connector": connector}}));
    assert_eq!(r.json()["connection_info"]["data"]["encrypted"], true, "{}", r.text);

    // a clone is encrypted too
    let c = d.create_volume(json!({"source_volid": v}));
    assert_eq!(d.wait_status(&c, "available")["encryption_key_id"], FIXED_KEY);

    // a plain volume is not
    let p = d.create_volume(json!({"size": 1}));
    let plain = d.wait_status(&p, "available");
    assert_eq!((plain["encrypted"].clone(), plain["encryption_key_id"].clone()), (json!(false), Value::Null));
    assert_eq!(d.get(&format!("/volumes/{p}/encryption")).json(), json!({"encryption_key_id": null}));

    // the type's encryption is frozen while volumes use it
    d.post(&format!("/types/{t}/encryption"), luks()).fault(400, "badRequest");
    let msg =
        d.put(&format!("/types/{t}/encryption/x"), json!({"encryption": {"key_size": 512}})).fault(400, "badRequest");
    assert!(msg.contains("in use"), "{msg}");
    d.delete(&format!("/types/{t}/encryption/x")).fault(400, "badRequest");
    assert_eq!(d.get(&format!("/types/{t}/encryption")).json()["key_size"], 256);
    let r = d.post(&format!("/volumes/{v}/action"), json!({"os-terminate_connection": {"connector": connector}}));
    assert_eq!(r.status, 202, "{}", r.text);
    for id in [&c, &v] {
        assert_eq!(d.delete(&format!("/volumes/{id}")).status, 202);
        d.wait_gone(id);
    }
    assert_eq!(d.delete(&format!("/types/{t}/encryption/x")).status, 202);
}

#[test]
fn encrypted_types_need_a_cipher_and_no_multiattach() {
    let d = Daemon::start();
    let t = new_type(&d, "nocipher", json!({}));
    let r = d.post(
        &format!("/types/{t}/encryption"),
        json!({"encryption": {"provider": "luks", "control_location": "front-end"}}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    d.post("/volumes", json!({"volume": {"size": 1, "volume_type": "nocipher"}})).fault(400, "badRequest");
    let m = new_type(&d, "shared", json!({"multiattach": "<is> True"}));
    assert_eq!(d.post(&format!("/types/{m}/encryption"), luks()).status, 200);
    let msg = d.post("/volumes", json!({"volume": {"size": 1, "volume_type": "shared"}})).fault(400, "badRequest");
    assert!(msg.contains("Multiattach"), "{msg}");
    let all = d.get("/volumes").json();
    assert_eq!(all["volumes"], json!([]), "no volume was made");
}

#[test]
fn only_admins_manage_type_encryption() {
    let a = Accounts::start("", "3.67");
    let t = a.own("root", "POST", "/types", Some(json!({"volume_type": {"name": "secret"}}))).json()["volume_type"]
        ["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(a.own("root", "POST", &format!("/types/{t}/encryption"), Some(luks())).status, 200);
    for who in ["alice", "rita"] {
        let calls: Vec<(&str, String, Option<Value>)> = vec![
            ("GET", format!("/types/{t}/encryption"), None),
            ("GET", format!("/types/{t}/encryption/cipher"), None),
            ("POST", format!("/types/{t}/encryption"), Some(luks())),
            ("PUT", format!("/types/{t}/encryption/x"), Some(json!({"encryption": {"key_size": 128}}))),
            ("DELETE", format!("/types/{t}/encryption/x"), None),
        ];
        for (m, p, b) in calls {
            let msg = a.own(who, m, &p, b).fault(403, "forbidden");
            assert!(msg.contains("volume_type_encryption"), "{who} {m} {p}: {msg}");
        }
    }
    // members make encrypted volumes; readers of the project read their metadata;
    // other projects do not see them
    let r = a.own("alice", "POST", "/volumes", Some(json!({"volume": {"size": 1, "volume_type": "secret"}})));
    assert_eq!(r.status, 202, "{r:?}");
    let v = r.json()["volume"]["id"].as_str().unwrap().to_string();
    a.wait_status("alice", &v, "available");
    let meta = a.own("rita", "GET", &format!("/volumes/{v}/encryption"), None);
    assert_eq!(meta.json()["encryption_key_id"], FIXED_KEY, "{meta:?}");
    a.own("bob", "GET", &format!("/volumes/{v}/encryption"), None).fault(404, "itemNotFound");
    assert_eq!(a.own("root", "GET", &format!("/volumes/{v}/encryption"), None).status, 200);
}

#[test]
fn retype_keeps_the_encryption() {
    let d = Daemon::start();
    let t = new_type(&d, "secret", json!({}));
    assert_eq!(d.post(&format!("/types/{t}/encryption"), luks()).status, 200);
    new_type(&d, "plain", json!({}));
    let other = new_type(&d, "secret2", json!({}));
    assert_eq!(d.post(&format!("/types/{other}/encryption"), luks()).status, 200);
    let shared = new_type(&d, "shared", json!({"multiattach": "<is> True"}));
    assert_eq!(d.post(&format!("/types/{shared}/encryption"), luks()).status, 200);
    let retype = |v: &str, to: &str| d.post(&format!("/volumes/{v}/action"), json!({"os-retype": {"new_type": to}}));

    // encrypted -> plain and plain -> encrypted would copy the data: refused
    let v = d.create_volume(json!({"size": 1, "volume_type": "secret"}));
    d.wait_status(&v, "available");
    let msg = retype(&v, "plain").fault(400, "badRequest");
    assert!(msg.contains("encryption"), "{msg}");
    let p = d.create_volume(json!({"size": 1, "volume_type": "plain"}));
    d.wait_status(&p, "available");
    retype(&p, "secret").fault(400, "badRequest");
    let msg = retype(&p, "shared").fault(400, "badRequest");
    assert!(msg.contains("multi-attach"), "{msg}");
    // the same encryption under another type: in place, the key id stays
    assert_eq!(retype(&v, "secret2").status, 202);
    let vol = d.wait_volume(&v, "retyped", |x| x["volume_type"] == "secret2" && x["status"] == "available");
    assert_eq!(vol["encryption_key_id"], FIXED_KEY);
    assert_eq!(d.get(&format!("/volumes/{p}")).json()["volume"]["volume_type"], "plain");
}

//! The OpenAPI document (`docs/openapi.json`, served at `GET /openapi.json`): it is
//! served without authentication or a microversion, it is OpenAPI 3.1, and it has
//! exactly the routes of `src/api/router.rs` (plus the version documents, `/metrics`
//! and itself). `tests/openapi/run.sh` holds the daemon's responses to it.

mod common;

use std::collections::BTreeSet;

use common::Daemon;
use serde_json::Value;

/// Every (method, path) hearthd serves: the arms of the `match` in
/// `src/api/router.rs` under `/v3/{project_id}/`, with the names the document gives
/// their ids, and the routes of `src/api/mod.rs`. A route added there belongs here
/// and in `scripts/openapi/gen.py`.
const ROUTES: &[(&str, &[&str])] = &[
    ("volumes", &["get", "post"]),
    ("volumes/detail", &["get"]),
    ("volumes/summary", &["get"]),
    ("volumes/{volume_id}", &["get", "put", "delete"]),
    ("volumes/{volume_id}/action", &["post"]),
    ("volumes/{volume_id}/encryption", &["get"]),
    ("volumes/{volume_id}/encryption/{key}", &["get"]),
    ("volumes/{volume_id}/metadata", &["get", "post", "put"]),
    ("volumes/{volume_id}/metadata/{key}", &["get", "put", "delete"]),
    ("snapshots/{snapshot_id}/metadata", &["get", "post", "put"]),
    ("snapshots/{snapshot_id}/metadata/{key}", &["get", "put", "delete"]),
    ("snapshots", &["get", "post"]),
    ("snapshots/detail", &["get"]),
    ("snapshots/{snapshot_id}", &["get", "put", "delete"]),
    ("snapshots/{snapshot_id}/action", &["post"]),
    ("attachments", &["get", "post"]),
    ("attachments/detail", &["get"]),
    ("attachments/{attachment_id}", &["get", "put", "delete"]),
    ("attachments/{attachment_id}/action", &["post"]),
    ("backups", &["get", "post"]),
    ("backups/detail", &["get"]),
    ("backups/import_record", &["post"]),
    ("backups/{backup_id}", &["get", "put", "delete"]),
    ("backups/{backup_id}/restore", &["post"]),
    ("backups/{backup_id}/export_record", &["get"]),
    ("backups/{backup_id}/action", &["post"]),
    ("os-volume-transfer", &["get", "post"]),
    ("os-volume-transfer/detail", &["get"]),
    ("os-volume-transfer/{transfer_id}", &["get", "delete"]),
    ("os-volume-transfer/{transfer_id}/accept", &["post"]),
    ("volume-transfers", &["get", "post"]),
    ("volume-transfers/detail", &["get"]),
    ("volume-transfers/{transfer_id}", &["get", "delete"]),
    ("volume-transfers/{transfer_id}/accept", &["post"]),
    ("types", &["get", "post"]),
    ("types/default", &["get"]),
    ("types/{volume_type_id}", &["get", "put", "delete"]),
    ("types/{volume_type_id}/extra_specs", &["get", "post"]),
    ("types/{volume_type_id}/extra_specs/{key}", &["get", "put", "delete"]),
    ("types/{volume_type_id}/action", &["post"]),
    ("types/{volume_type_id}/os-volume-type-access", &["get"]),
    ("types/{volume_type_id}/encryption", &["get", "post"]),
    ("types/{volume_type_id}/encryption/{key}", &["get", "put", "delete"]),
    ("qos-specs", &["get", "post"]),
    ("qos-specs/{qos_id}", &["get", "put", "delete"]),
    ("qos-specs/{qos_id}/delete_keys", &["put"]),
    ("qos-specs/{qos_id}/associations", &["get"]),
    ("qos-specs/{qos_id}/associate", &["get"]),
    ("qos-specs/{qos_id}/disassociate", &["get"]),
    ("qos-specs/{qos_id}/disassociate_all", &["get"]),
    ("messages", &["get"]),
    ("messages/{message_id}", &["get", "delete"]),
    ("default-types", &["get"]),
    ("default-types/{target_project_id}", &["get", "put", "delete"]),
    ("group_types", &["get", "post"]),
    ("group_types/default", &["get"]),
    ("group_types/{group_type_id}", &["get", "put", "delete"]),
    ("group_types/{group_type_id}/group_specs", &["get", "post"]),
    ("group_types/{group_type_id}/group_specs/{key}", &["get", "put", "delete"]),
    ("groups", &["get", "post"]),
    ("groups/detail", &["get"]),
    ("groups/action", &["post"]),
    ("groups/{group_id}", &["get", "put"]),
    ("groups/{group_id}/action", &["post"]),
    ("group_snapshots", &["get", "post"]),
    ("group_snapshots/detail", &["get"]),
    ("group_snapshots/{group_snapshot_id}", &["get", "delete"]),
    ("group_snapshots/{group_snapshot_id}/action", &["post"]),
    ("resource_filters", &["get"]),
    ("limits", &["get"]),
    ("os-quota-sets/{target_project_id}", &["get", "put", "delete"]),
    ("os-quota-sets/{target_project_id}/defaults", &["get"]),
    ("os-quota-class-sets/{quota_class_name}", &["get", "put"]),
    ("scheduler-stats/get_pools", &["get"]),
    ("os-availability-zone", &["get"]),
    ("os-services", &["get"]),
    // `os-services/{action}`: each action the router knows.
    ("os-services/set-log", &["put"]),
    ("os-services/get-log", &["put"]),
    ("os-services/enable", &["put"]),
    ("os-services/disable", &["put"]),
    ("os-services/disable-log-reason", &["put"]),
    ("os-services/freeze", &["put"]),
    ("os-services/thaw", &["put"]),
    ("os-hosts", &["get"]),
    ("os-hosts/{host_name}", &["get", "put"]),
    ("capabilities/{host_name}", &["get"]),
    ("extensions", &["get"]),
];

/// Routes outside `/v3/{project_id}/` (src/api/mod.rs).
const TOP_ROUTES: &[&str] = &["/", "/v3", "/v3/", "/metrics", "/openapi.json"];

const METHODS: &[&str] = &["get", "put", "post", "delete", "patch", "head", "options", "trace"];

fn operations(doc: &Value) -> BTreeSet<(String, String)> {
    let paths = doc["paths"].as_object().expect("paths is an object");
    let mut out = BTreeSet::new();
    for (path, item) in paths {
        for (k, _) in item.as_object().expect("a path item is an object") {
            if METHODS.contains(&k.as_str()) {
                out.insert((path.clone(), k.clone()));
            }
        }
    }
    out
}

#[test]
fn the_document_is_served_without_auth_and_has_every_route() {
    let d = Daemon::start();
    // No token, no microversion; a bad microversion does not matter either.
    for headers in [&[][..], &[("OpenStack-API-Version", "volume 9.99")][..]] {
        let r = d.raw("GET", "/openapi.json", None, headers);
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.header("Content-Type"), Some("application/json"));
    }
    let r = d.raw("GET", "/openapi.json", None, &[]);
    let doc = r.json();
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(
        doc,
        serde_json::from_str::<Value>(hearth::api::OPENAPI).unwrap(),
        "the served document is docs/openapi.json"
    );

    let mut want = BTreeSet::new();
    for (path, methods) in ROUTES {
        for m in *methods {
            want.insert((format!("/v3/{{project_id}}/{path}"), m.to_string()));
        }
    }
    for path in TOP_ROUTES {
        want.insert((path.to_string(), "get".to_string()));
    }
    let have = operations(&doc);
    let missing: Vec<_> = want.difference(&have).collect();
    let extra: Vec<_> = have.difference(&want).collect();
    assert!(missing.is_empty(), "routes of src/api/router.rs missing from docs/openapi.json: {missing:?}");
    assert!(extra.is_empty(), "operations in docs/openapi.json that hearthd does not route: {extra:?}");

    // Every fixed segment the router matches appears in some documented path.
    for literal in hearth::api::router::LITERALS {
        assert!(
            have.iter().any(|(p, _)| p.split('/').any(|s| s == *literal)),
            "router literal {literal:?} is in no documented path"
        );
    }

    // Every error response is the one fault body.
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let Some(responses) = op.get("responses").and_then(Value::as_object) else { continue };
            for (code, resp) in responses {
                if code.starts_with('4') || code.starts_with('5') {
                    assert_eq!(resp["$ref"], format!("#/components/responses/{code}"), "{method} {path} {code}");
                }
            }
        }
    }
    for (code, resp) in doc["components"]["responses"].as_object().unwrap() {
        assert_eq!(resp["content"]["application/json"]["schema"]["$ref"], "#/components/schemas/Fault", "{code}");
    }
}

#[test]
fn the_document_answers_only_get() {
    let d = Daemon::start();
    d.raw("POST", "/openapi.json", Some(b"{}"), &[("Content-Type", "application/json")]).fault(405, "badMethod");
}

//! Volume transfers over HTTP: offer, show, list, delete and accept on both routes
//! (`os-volume-transfer`, `volume-transfers` from 3.55), the fields of each
//! microversion, what Cinder refuses (and how), quotas moving with the volume, and who
//! may do what under Cinder's default policy.

mod common;

use std::collections::BTreeSet;

use common::accounts::Accounts;
use common::{Daemon, Resp, PROJECT};
use serde_json::{json, Value};

/// The project that accepts (noauth: the URL names it).
const ALT: &str = "0a1b2c3d4e5f40718293a4b5c6d7e8f9";
/// The admin project (`admin_projects`).
const ADMIN: &str = "admin";

/// noauth with one admin project, so that PROJECT and ALT are plain members.
fn daemon() -> Daemon {
    Daemon::start_with(&format!("admin_projects = [\"{ADMIN}\"]\n{}", common::backends_toml()))
}

/// A request in `project` as user `user` at `mv`.
fn req(d: &Daemon, user: &str, project: &str, mv: &str, method: &str, path: &str, body: Option<Value>) -> Resp {
    let token = format!("{user}:{project}");
    let mv = format!("volume {mv}");
    let body = body.map(|b| b.to_string());
    let headers = [("X-Auth-Token", token.as_str()), ("OpenStack-API-Version", mv.as_str())];
    d.raw(method, &format!("/v3/{project}{path}"), body.as_deref().map(str::as_bytes), &headers)
}

fn keys(v: &Value) -> BTreeSet<&str> {
    v.as_object().unwrap_or_else(|| panic!("not an object: {v}")).keys().map(String::as_str).collect()
}

fn set<'a>(names: &[&'a str]) -> BTreeSet<&'a str> {
    names.iter().copied().collect()
}

const SUMMARY: &[&str] = &["id", "volume_id", "name", "links"];
const DETAIL_30: &[&str] = &["id", "volume_id", "name", "links", "created_at"];
const DETAIL_355: &[&str] = &["id", "volume_id", "name", "links", "created_at", "no_snapshots"];
const DETAIL_357: &[&str] = &[
    "id",
    "volume_id",
    "name",
    "links",
    "created_at",
    "no_snapshots",
    "source_project_id",
    "destination_project_id",
    "accepted",
];

/// A 1 GiB volume of PROJECT with one snapshot, both available.
fn volume_with_snapshot(d: &Daemon) -> (String, String) {
    let v = d.create_volume(json!({"size": 1, "name": "gift"}));
    d.wait_status(&v, "available");
    let r = d.post("/snapshots", json!({"snapshot": {"volume_id": v, "name": "s"}}));
    assert_eq!(r.status, 202, "{}", r.text);
    let s = r.json()["snapshot"]["id"].as_str().unwrap().to_string();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while d.get(&format!("/snapshots/{s}")).json()["snapshot"]["status"] != "available" {
        assert!(std::time::Instant::now() < deadline, "snapshot {s} never became available");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    (v, s)
}

/// `in_use` of some quota resources of a project, read by the admin.
fn usage(d: &Daemon, project: &str) -> Vec<i64> {
    let q = req(d, "root", ADMIN, "3.0", "GET", &format!("/os-quota-sets/{project}?usage=True"), None).json();
    ["volumes", "gigabytes", "snapshots", "volumes___DEFAULT__", "gigabytes___DEFAULT__", "snapshots___DEFAULT__"]
        .iter()
        .map(|k| q["quota_set"][k]["in_use"].as_i64().unwrap_or_else(|| panic!("no {k}: {q}")))
        .collect()
}

fn create(d: &Daemon, mv: &str, route: &str, body: Value) -> Resp {
    req(d, "demo", PROJECT, mv, "POST", &format!("/{route}"), Some(json!({ "transfer": body })))
}

/// The id and auth key of a created transfer (202 asserted).
fn offered(r: &Resp) -> (String, String) {
    assert_eq!(r.status, 202, "{}", r.text);
    let t = &r.json()["transfer"];
    (t["id"].as_str().unwrap().to_string(), t["auth_key"].as_str().unwrap().to_string())
}

/// ALT's user accepts transfer `id` with `key`.
fn accept(d: &Daemon, id: &str, key: Value) -> Resp {
    let body = json!({"accept": {"auth_key": key}});
    req(d, "alt-user", ALT, "3.0", "POST", &format!("/os-volume-transfer/{id}/accept"), Some(body))
}

/// An admin's `os-reset_status` of a volume or snapshot (`kind`: `volumes`, `snapshots`).
fn reset(d: &Daemon, kind: &str, id: &str, status: &str) {
    let body = json!({"os-reset_status": {"status": status}});
    let r = req(d, "root", ADMIN, "3.67", "POST", &format!("/{kind}/{id}/action"), Some(body));
    assert_eq!(r.status, 202, "{}", r.text);
}

#[test]
fn offer_show_list_and_accept_move_the_volume_its_snapshots_and_their_quota() {
    let d = daemon();
    let (v, s) = volume_with_snapshot(&d);
    assert_eq!(usage(&d, PROJECT), vec![1, 2, 1, 1, 2, 1]);
    assert_eq!(usage(&d, ALT), vec![0, 0, 0, 0, 0, 0]);

    // volume-transfers is a 3.55 route; no_snapshots is only for it.
    create(&d, "3.54", "volume-transfers", json!({"volume_id": v})).fault(404, "itemNotFound");
    let msg = create(&d, "3.57", "os-volume-transfer", json!({"volume_id": v, "no_snapshots": false}))
        .fault(400, "badRequest");
    assert!(msg.contains("no_snapshots"), "{msg}");

    // Create: 202, the key shown this once, the fields of 3.57.
    let r = create(&d, "3.57", "volume-transfers", json!({"volume_id": v, "name": "  t1  "}));
    let (id, key) = offered(&r);
    let t = r.json()["transfer"].clone();
    let mut want = set(DETAIL_357);
    want.insert("auth_key");
    assert_eq!(keys(&t), want, "{t}");
    assert_eq!(t["name"], "t1");
    assert_eq!(t["volume_id"], v.as_str());
    assert_eq!(t["source_project_id"], PROJECT);
    assert_eq!(t["destination_project_id"], Value::Null);
    assert_eq!(t["accepted"], false);
    assert_eq!(t["no_snapshots"], false);
    assert!(key.len() >= 16, "{key}");
    let self_link = t["links"][0]["href"].as_str().unwrap();
    assert!(self_link.ends_with(&format!("/v3/{PROJECT}/os-volume-transfer/{id}")), "{self_link}");
    assert_eq!(d.get(&format!("/volumes/{v}")).json()["volume"]["status"], "awaiting-transfer");
    let listed = d.get("/volumes/detail?status=awaiting-transfer").json();
    assert_eq!(listed["volumes"].as_array().unwrap().len(), 1, "{listed}");

    // The key is nowhere in clear: not in the store, not in the log.
    if common::on_postgres() {
        let rows = d.store_count(&format!("SELECT COUNT(*) FROM transfers t WHERE CAST(t AS TEXT) LIKE '%{key}%'"));
        assert_eq!(rows, 0, "the auth key is stored in clear");
        assert_eq!(d.store_count("SELECT COUNT(*) FROM transfers"), 1);
    } else {
        let db = std::fs::read(d.data_dir().join("hearth.db")).unwrap();
        let wal = std::fs::read(d.data_dir().join("hearth.db-wal")).unwrap_or_default();
        for bytes in [&db, &wal] {
            assert!(!bytes.windows(key.len()).any(|w| w == key.as_bytes()), "the auth key is stored in clear");
        }
    }
    assert!(!d.log().contains(&key), "the auth key is in the log");

    // One offer at a time: the volume is no longer available.
    let msg = create(&d, "3.0", "os-volume-transfer", json!({"volume_id": v})).fault(400, "badRequest");
    assert!(msg.contains("Invalid volume") && msg.contains("available"), "{msg}");

    // Show and list, field by field per microversion, on both routes.
    for (mv, route, want) in [
        ("3.0", "os-volume-transfer", DETAIL_30),
        ("3.55", "os-volume-transfer", DETAIL_355),
        ("3.55", "volume-transfers", DETAIL_355),
        ("3.57", "volume-transfers", DETAIL_357),
    ] {
        let shown = req(&d, "demo", PROJECT, mv, "GET", &format!("/{route}/{id}"), None);
        assert_eq!(shown.status, 200, "{}", shown.text);
        assert_eq!(keys(&shown.json()["transfer"]), set(want), "show at {mv} on {route}");
        let brief = req(&d, "demo", PROJECT, mv, "GET", &format!("/{route}"), None).json();
        assert_eq!(brief["transfers"].as_array().unwrap().len(), 1, "{brief}");
        assert_eq!(keys(&brief["transfers"][0]), set(SUMMARY), "list at {mv}");
        let detail = req(&d, "demo", PROJECT, mv, "GET", &format!("/{route}/detail"), None).json();
        assert_eq!(keys(&detail["transfers"][0]), set(want), "detail at {mv}");
    }
    // Filters: by name and volume; a field transfers do not have matches nothing.
    for (query, n) in
        [("name=t1".to_string(), 1), ("name=t2".into(), 0), (format!("volume_id={v}"), 1), ("bogus=1".into(), 0)]
    {
        let l = d.get(&format!("/volume-transfers?{query}")).json();
        assert_eq!(l["transfers"].as_array().unwrap().len(), n, "{query}: {l}");
    }

    // Another project sees nothing of it.
    req(&d, "alt-user", ALT, "3.0", "GET", &format!("/os-volume-transfer/{id}"), None).fault(404, "itemNotFound");
    let l = req(&d, "alt-user", ALT, "3.0", "GET", "/os-volume-transfer/detail?all_tenants=1", None).json();
    assert_eq!(l["transfers"], json!([]), "a member's all_tenants is ignored");
    // An admin sees every project's with all_tenants, and only its own without.
    let l = req(&d, "root", ADMIN, "3.0", "GET", "/os-volume-transfer?all_tenants=1", None).json();
    assert_eq!(l["transfers"].as_array().unwrap().len(), 1, "{l}");
    let l = req(&d, "root", ADMIN, "3.0", "GET", "/os-volume-transfer", None).json();
    assert_eq!(l["transfers"], json!([]));

    // Accept: a wrong key is a 400, an unknown transfer a 404; nothing moves.
    let msg = accept(&d, &id, json!("not-the-key")).fault(400, "badRequest");
    assert!(msg.contains("Invalid auth key"), "{msg}");
    accept(&d, &id, json!(12345)).fault(400, "badRequest");
    accept(&d, &id, json!(null)).fault(400, "badRequest");
    accept(&d, "6d1f5ab0-8d0a-4d57-9a49-2b0a8f2c3e11", json!(key)).fault(404, "itemNotFound");
    assert_eq!(usage(&d, ALT), vec![0, 0, 0, 0, 0, 0]);

    let r = accept(&d, &id, json!(key));
    assert_eq!(r.status, 202, "{}", r.text);
    let a = r.json()["transfer"].clone();
    assert_eq!(keys(&a), set(SUMMARY), "{a}");
    assert_eq!(
        (a["id"].as_str(), a["volume_id"].as_str(), a["name"].as_str()),
        (Some(&id[..]), Some(&v[..]), Some("t1"))
    );

    // The volume and its snapshot are ALT's, with the accepter as their user.
    let got = req(&d, "alt-user", ALT, "3.67", "GET", &format!("/volumes/{v}"), None).json();
    assert_eq!(got["volume"]["status"], "available");
    assert_eq!(got["volume"]["user_id"], "alt-user");
    assert_eq!(got["volume"]["os-vol-tenant-attr:tenant_id"], ALT);
    let snap = req(&d, "alt-user", ALT, "3.67", "GET", &format!("/snapshots/{s}"), None).json();
    assert_eq!(snap["snapshot"]["user_id"], "alt-user", "{snap}");
    d.get(&format!("/volumes/{v}")).fault(404, "itemNotFound");
    d.get(&format!("/snapshots/{s}")).fault(404, "itemNotFound");
    assert_eq!(usage(&d, PROJECT), vec![0, 0, 0, 0, 0, 0]);
    assert_eq!(usage(&d, ALT), vec![1, 2, 1, 1, 2, 1]);

    // An accepted transfer is gone.
    d.get(&format!("/volume-transfers/{id}")).fault(404, "itemNotFound");
    accept(&d, &id, json!(key)).fault(404, "itemNotFound");
    assert_eq!(d.get("/volume-transfers").json()["transfers"], json!([]));
}

#[test]
fn with_no_snapshots_the_snapshots_stay_behind() {
    let d = daemon();
    let (v, s) = volume_with_snapshot(&d);
    // Snapshots that stay need not be available.
    reset(&d, "snapshots", &s, "error");
    let (id, key) = offered(&create(&d, "3.55", "volume-transfers", json!({"volume_id": v, "no_snapshots": true})));
    assert_eq!(accept(&d, &id, json!(key)).status, 202);
    assert_eq!(req(&d, "alt-user", ALT, "3.0", "GET", &format!("/volumes/{v}"), None).status, 200);
    assert_eq!(d.get(&format!("/snapshots/{s}")).json()["snapshot"]["volume_id"], v.as_str());
    assert_eq!(usage(&d, PROJECT), vec![0, 1, 1, 0, 1, 1]);
    assert_eq!(usage(&d, ALT), vec![1, 1, 0, 1, 1, 0]);
}

#[test]
fn what_cannot_be_offered_or_accepted_is_refused_as_cinder_refuses_it() {
    let d = daemon();
    let (v, s) = volume_with_snapshot(&d);
    let attach = || {
        let body = json!({"attachment": {"volume_uuid": v, "instance_uuid": "8c2ff6b4-6e4b-4fd5-9c6c-4a1f1e6c1d55"}});
        d.post("/attachments", body)
    };

    // Malformed requests, and volumes the caller does not have.
    for body in [
        json!({"transfer": {}}),
        json!({"transfer": {"volume_id": "not-a-uuid"}}),
        json!({"transfer": {"volume_id": v, "name": ""}}),
        json!({"transfer": {"volume_id": v, "name": "   "}}),
        json!({"transfer": {"volume_id": v, "name": "x".repeat(256)}}),
        json!({"transfer": {"volume_id": v, "bogus": 1}}),
        json!({"transfer": {"volume_id": v}, "extra": 1}),
        json!({"volume_id": v}),
    ] {
        req(&d, "demo", PROJECT, "3.67", "POST", "/volume-transfers", Some(body)).fault(400, "badRequest");
    }
    create(&d, "3.0", "os-volume-transfer", json!({"volume_id": "6d1f5ab0-8d0a-4d57-9a49-2b0a8f2c3e11"}))
        .fault(404, "itemNotFound");
    req(&d, "demo", ALT, "3.0", "POST", "/os-volume-transfer", Some(json!({"transfer": {"volume_id": v}})))
        .fault(404, "itemNotFound");

    // A snapshot that is not available stops the offer.
    reset(&d, "snapshots", &s, "error");
    let msg = create(&d, "3.0", "os-volume-transfer", json!({"volume_id": v})).fault(400, "badRequest");
    assert!(msg.contains("Invalid snapshot") && msg.contains(&s), "{msg}");
    reset(&d, "snapshots", &s, "available");

    // A volume with an attachment (here: reserved) cannot be offered.
    let r = attach();
    assert_eq!(r.status, 200, "{}", r.text);
    let msg = create(&d, "3.0", "os-volume-transfer", json!({"volume_id": v})).fault(400, "badRequest");
    assert!(msg.contains("Invalid volume"), "{msg}");
    assert_eq!(d.delete(&format!("/attachments/{}", r.json()["attachment"]["id"].as_str().unwrap())).status, 200);

    // Delete: 202 and the volume is available again; a second delete is a 404.
    let (id, _) = offered(&create(&d, "3.0", "os-volume-transfer", json!({"volume_id": v})));
    assert_eq!(d.delete(&format!("/os-volume-transfer/{id}")).status, 202);
    assert_eq!(d.get(&format!("/volumes/{v}")).json()["volume"]["status"], "available");
    d.delete(&format!("/os-volume-transfer/{id}")).fault(404, "itemNotFound");

    // While offered, the volume cannot be deleted, extended, snapshotted or attached.
    let (id, key) = offered(&create(&d, "3.57", "volume-transfers", json!({"volume_id": v})));
    d.delete(&format!("/volumes/{v}")).fault(400, "badRequest");
    d.post(&format!("/volumes/{v}/action"), json!({"os-extend": {"new_size": 2}})).fault(400, "badRequest");
    d.post("/snapshots", json!({"snapshot": {"volume_id": v}})).fault(400, "badRequest");
    attach().fault(400, "badRequest");

    // Over the accepter's quota: 413, and nothing moves. The volume alone fits ALT's
    // gigabytes; with its snapshot it does not.
    for limits in [
        json!({"volumes": 0}),
        json!({"gigabytes": 1}),
        json!({"per_volume_gigabytes": 0}),
        json!({"snapshots___DEFAULT__": 0}),
    ] {
        let r = req(&d, "root", ADMIN, "3.0", "DELETE", &format!("/os-quota-sets/{ALT}"), None);
        assert_eq!(r.status, 200, "{}", r.text);
        let r = req(
            &d,
            "root",
            ADMIN,
            "3.0",
            "PUT",
            &format!("/os-quota-sets/{ALT}"),
            Some(json!({ "quota_set": limits })),
        );
        assert_eq!(r.status, 200, "{}", r.text);
        let r = accept(&d, &id, json!(key));
        r.fault(413, "overLimit");
        assert_eq!(r.header("Retry-After"), Some("0"));
        assert_eq!(usage(&d, ALT), vec![0, 0, 0, 0, 0, 0], "{limits}");
        assert_eq!(d.get(&format!("/volumes/{v}")).json()["volume"]["status"], "awaiting-transfer");
    }
    assert_eq!(req(&d, "root", ADMIN, "3.0", "DELETE", &format!("/os-quota-sets/{ALT}"), None).status, 200);

    // A snapshot gone to error after the offer: the accept fails as a whole.
    reset(&d, "snapshots", &s, "error");
    let msg = accept(&d, &id, json!(key)).fault(400, "badRequest");
    assert!(msg.contains("Invalid snapshot") && msg.contains(&s), "{msg}");
    assert_eq!(usage(&d, ALT), vec![0, 0, 0, 0, 0, 0]);
    assert_eq!(usage(&d, PROJECT), vec![1, 2, 1, 1, 2, 1]);
    assert_eq!(d.get(&format!("/volumes/{v}")).json()["volume"]["status"], "awaiting-transfer");
    reset(&d, "snapshots", &s, "available");

    // A volume an admin reset out of awaiting-transfer cannot be accepted; deleting
    // the transfer then leaves its status alone.
    reset(&d, "volumes", &v, "error");
    let msg = accept(&d, &id, json!(key)).fault(400, "badRequest");
    assert!(msg.contains("awaiting-transfer"), "{msg}");
    assert_eq!(d.delete(&format!("/volume-transfers/{id}")).status, 202);
    assert_eq!(d.get(&format!("/volumes/{v}")).json()["volume"]["status"], "error");

    // The transfer of a deleted volume disappears with it.
    reset(&d, "volumes", &v, "available");
    let r = create(&d, "3.0", "os-volume-transfer", json!({"volume_id": v, "name": null}));
    let (id, _) = offered(&r);
    assert_eq!(r.json()["transfer"]["name"], Value::Null);
    assert_eq!(d.delete(&format!("/snapshots/{s}")).status, 202);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while d.get(&format!("/snapshots/{s}")).status != 404 {
        assert!(std::time::Instant::now() < deadline, "snapshot {s} was never deleted");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let r = req(&d, "root", ADMIN, "3.67", "DELETE", &format!("/volumes/{v}?force=true"), None);
    assert_eq!(r.status, 202, "{}", r.text);
    d.wait_gone(&v);
    d.get(&format!("/os-volume-transfer/{id}")).fault(404, "itemNotFound");
    assert_eq!(d.get("/os-volume-transfer").json()["transfers"], json!([]));
}

#[test]
fn lists_page_and_sort_as_the_microversion_says() {
    let d = daemon();
    let mut ids = Vec::new();
    for i in 0..3 {
        let v = d.create_volume(json!({"size": 1}));
        d.wait_status(&v, "available");
        let r = create(&d, "3.0", "os-volume-transfer", json!({"volume_id": v, "name": format!("t{i}")}));
        assert_eq!(r.status, 202, "{}", r.text);
        ids.push(r.json()["transfer"]["id"].as_str().unwrap().to_string());
    }
    let names = |mv: &str, path: &str| -> Vec<String> {
        let l = req(&d, "demo", PROJECT, mv, "GET", path, None);
        assert_eq!(l.status, 200, "{}", l.text);
        l.json()["transfers"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap().to_string()).collect()
    };
    // Oldest first on the extension route and before 3.59; newest first after.
    assert_eq!(names("3.67", "/os-volume-transfer"), ["t0", "t1", "t2"]);
    assert_eq!(names("3.58", "/volume-transfers"), ["t0", "t1", "t2"]);
    assert_eq!(names("3.59", "/volume-transfers"), ["t2", "t1", "t0"]);
    assert_eq!(names("3.59", "/volume-transfers?sort=name:asc"), ["t0", "t1", "t2"]);
    req(&d, "demo", PROJECT, "3.59", "GET", "/volume-transfers?sort=salt", None).fault(400, "badRequest");
    // Pages: limit, marker, and the next link of a full page.
    let l = req(&d, "demo", PROJECT, "3.59", "GET", "/volume-transfers/detail?limit=2", None).json();
    assert_eq!(l["transfers"].as_array().unwrap().len(), 2);
    let next = l["transfers_links"][0]["href"].as_str().unwrap();
    assert!(next.contains(&format!("marker={}", ids[1])), "{next}");
    assert_eq!(names("3.59", &format!("/volume-transfers?marker={}", ids[1])), ["t0"]);
    assert_eq!(names("3.0", "/os-volume-transfer?offset=2"), ["t2"]);
}

/// http_basic accounts (alice and rita of pa, bob of pb, root the admin of ops).
fn accounts(extra: &str) -> Accounts {
    Accounts::start(extra, "3.67")
}

/// A 1 GiB volume of `who`'s project, available.
fn volume_of(a: &Accounts, who: &str) -> String {
    let r = a.own(who, "POST", "/volumes", Some(json!({"volume": {"size": 1}})));
    assert_eq!(r.status, 202, "{r:?}");
    let id = r.json()["volume"]["id"].as_str().unwrap().to_string();
    a.wait_status(who, &id, "available");
    id
}

/// `who` offers `volume` from its own project.
fn offer_as(a: &Accounts, who: &str, volume: &str) -> Resp {
    a.own(who, "POST", "/volume-transfers", Some(json!({"transfer": {"volume_id": volume}})))
}

/// `who` accepts transfer `id` into its own project.
fn accept_as(a: &Accounts, who: &str, id: &str, key: &str) -> Resp {
    a.own(who, "POST", &format!("/volume-transfers/{id}/accept"), Some(json!({"accept": {"auth_key": key}})))
}

/// Cinder's default policy: readers read, members offer, withdraw and accept.
#[test]
fn readers_read_and_members_offer_withdraw_and_accept() {
    let a = accounts("");
    let v = volume_of(&a, "alice");
    offer_as(&a, "rita", &v).fault(403, "forbidden");
    let (id, key) = offered(&offer_as(&a, "alice", &v));

    assert_eq!(a.own("rita", "GET", &format!("/volume-transfers/{id}"), None).status, 200);
    let listed = a.own("rita", "GET", "/volume-transfers/detail", None).json();
    assert_eq!(listed["transfers"].as_array().unwrap().len(), 1, "{listed}");
    a.own("rita", "DELETE", &format!("/volume-transfers/{id}"), None).fault(403, "forbidden");
    a.own("bob", "GET", &format!("/volume-transfers/{id}"), None).fault(404, "itemNotFound");
    a.own("bob", "DELETE", &format!("/volume-transfers/{id}"), None).fault(404, "itemNotFound");
    accept_as(&a, "rita", &id, &key).fault(403, "forbidden");
    assert_eq!(accept_as(&a, "bob", &id, &key).status, 202);
    let got = a.own("bob", "GET", &format!("/volumes/{v}"), None).json();
    assert_eq!((got["volume"]["user_id"].as_str(), got["volume"]["status"].as_str()), (Some("bob"), Some("available")));
    a.own("alice", "GET", &format!("/volumes/{v}"), None).fault(404, "itemNotFound");

    // The admin sees every project's transfers with all_tenants, and may narrow them.
    let v2 = volume_of(&a, "alice");
    offered(&offer_as(&a, "alice", &v2));
    let all = a.own("root", "GET", "/os-volume-transfer?all_tenants=1", None).json();
    assert_eq!(all["transfers"].as_array().unwrap().len(), 1, "{all}");
    let none = a.own("root", "GET", "/os-volume-transfer?all_tenants=1&project_id=pb", None).json();
    assert_eq!(none["transfers"], json!([]));
}

/// The accepter is of another project than the volume: its check is made on the
/// accepter's own project, as Cinder makes it.
#[test]
fn accept_is_checked_against_the_accepters_own_project() {
    // Were the target the volume's project (pa), bob of pb would fail this rule.
    let a = accounts("[policy]\n\"volume:accept_transfer\" = \"role:member and project_id:%(project_id)s\"\n");
    let v = volume_of(&a, "alice");
    let (id, key) = offered(&offer_as(&a, "alice", &v));
    assert_eq!(accept_as(&a, "bob", &id, &key).status, 202);

    // And an override is in force.
    let a = accounts("[policy]\n\"volume:accept_transfer\" = \"role:admin\"\n");
    let v = volume_of(&a, "alice");
    let (id, key) = offered(&offer_as(&a, "alice", &v));
    let msg = accept_as(&a, "bob", &id, &key).fault(403, "forbidden");
    assert!(msg.contains("volume:accept_transfer"), "{msg}");
    assert_eq!(accept_as(&a, "root", &id, &key).status, 202);
}

#[test]
fn extensions_list_volume_transfer_as_cinder_does() {
    let d = Daemon::start();
    let e = d.get("/extensions").json();
    let t = e["extensions"].as_array().unwrap().iter().find(|x| x["alias"] == "os-volume-transfer");
    assert_eq!(t.map(|x| x["name"].clone()), Some(json!("VolumeTransfer")), "{e}");
}

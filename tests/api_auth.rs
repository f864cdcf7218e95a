//! Identity and policy over HTTP: http_basic accounts (a real htpasswd file with
//! bcrypt hashes), project isolation (404), readers and members (403), admin-only
//! actions, policy overrides, noauth off loopback, an unreachable Keystone (503) and
//! the bound on in-flight requests. Keystone itself is exercised by the client tier,
//! which starts a real one.

mod common;

use std::io::Write;
use std::net::TcpListener;
use std::time::{Duration, Instant};

use base64::Engine;
use common::{Daemon, Resp};
use serde_json::{json, Value};

const MV: &str = "3.67";

struct Basic {
    d: Daemon,
}

/// A daemon with http_basic accounts: alice (member of pa), bob (member of pb),
/// rita (reader of pa), root (admin of ops).
fn basic(extra: &str) -> Basic {
    let dir = tempfile::tempdir().unwrap().keep();
    let file = dir.join("htpasswd");
    let mut text = String::new();
    for (u, p) in [("alice", "alice-pw"), ("bob", "bob-pw"), ("rita", "rita-pw"), ("root", "root-pw")] {
        text.push_str(&format!("{u}:{}\n", bcrypt::hash(p, 4).unwrap()));
    }
    std::fs::write(&file, text).unwrap();
    let config = format!(
        "auth_strategy = \"http_basic\"\nhttp_basic_auth_user_file = {:?}\n{extra}\n\
         [http_basic_users]\n\
         alice = {{ project_id = \"pa\", roles = [\"member\"] }}\n\
         bob = {{ project_id = \"pb\", roles = [\"member\"] }}\n\
         rita = {{ project_id = \"pa\", roles = [\"reader\"] }}\n\
         root = {{ project_id = \"ops\", roles = [\"admin\"] }}\n{}",
        file.display().to_string(),
        common::backends_toml()
    );
    Basic { d: Daemon::start_with(&config) }
}

impl Basic {
    fn call(&self, who: &str, method: &str, path: &str, body: Option<Value>) -> Resp {
        let cred = base64::engine::general_purpose::STANDARD.encode(format!("{who}:{who}-pw"));
        self.call_raw(&format!("Basic {cred}"), method, path, body)
    }

    fn call_raw(&self, authorization: &str, method: &str, path: &str, body: Option<Value>) -> Resp {
        let body = body.map(|b| b.to_string());
        let mv = format!("volume {MV}");
        let headers = [("Authorization", authorization), ("OpenStack-API-Version", mv.as_str())];
        self.d.raw(method, &format!("/v3{path}"), body.as_deref().map(str::as_bytes), &headers)
    }

    fn create(&self, who: &str, project: &str) -> String {
        let r = self.call(who, "POST", &format!("/{project}/volumes"), Some(json!({"volume": {"size": 1}})));
        assert_eq!(r.status, 202, "{r:?}");
        let id = r.json()["volume"]["id"].as_str().unwrap().to_string();
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.call(who, "GET", &format!("/{project}/volumes/{id}"), None).json()["volume"]["status"] != "available"
        {
            assert!(Instant::now() < deadline, "volume {id} never became available");
            std::thread::sleep(Duration::from_millis(20));
        }
        id
    }
}

#[test]
fn http_basic_refuses_wrong_and_missing_credentials() {
    let b = basic("");
    let wrong = base64::engine::general_purpose::STANDARD.encode("alice:nope");
    let unknown = base64::engine::general_purpose::STANDARD.encode("mallory:alice-pw");
    for auth in [format!("Basic {wrong}"), format!("Basic {unknown}"), "Basic !!!".into(), "Bearer x".into()] {
        let r = b.call_raw(&auth, "GET", "/pa/volumes", None);
        r.fault(401, "unauthorized");
        assert_eq!(r.header("WWW-Authenticate"), Some("Basic realm=\"hearth\""), "{r:?}");
    }
    let r = b.d.raw("GET", "/v3/pa/volumes", None, &[]);
    r.fault(401, "unauthorized");
    // The version documents need no credentials.
    assert_eq!(b.d.raw("GET", "/v3/", None, &[]).status, 200);
    assert_eq!(b.call("alice", "GET", "/pa/volumes", None).status, 200);
    // The project comes from the account, not the URL.
    let msg = b.call("alice", "GET", "/pb/volumes", None).fault(400, "badRequest");
    assert!(msg.contains("(pb)") && msg.contains("(pa)"), "{msg}");
    assert_eq!(b.call("alice", "GET", "/volumes", None).status, 200);
    // The store (CHAP secrets live there) is the owner's alone.
    use std::os::unix::fs::PermissionsExt;
    if !common::sqlite_only("the store file's mode") {
        let store = std::fs::read_dir(b.d.data_dir())
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.extension().is_some_and(|e| e == "db" || e == "sqlite"))
            .expect("a store file");
        let mode = std::fs::metadata(&store).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", store.display());
    }
}

#[test]
fn projects_are_isolated_and_roles_decide() {
    let b = basic("");
    let mine = b.create("alice", "pa");
    let theirs = b.create("bob", "pb");

    // Another project's volume does not exist for alice: every way in is 404.
    let path = format!("/pa/volumes/{theirs}");
    b.call("alice", "GET", &path, None).fault(404, "itemNotFound");
    b.call("alice", "PUT", &path, Some(json!({"volume": {"name": "x"}}))).fault(404, "itemNotFound");
    b.call("alice", "DELETE", &path, None).fault(404, "itemNotFound");
    b.call("alice", "POST", &format!("{path}/action"), Some(json!({"os-extend": {"new_size": 2}})))
        .fault(404, "itemNotFound");
    b.call("alice", "POST", "/pa/snapshots", Some(json!({"snapshot": {"volume_id": theirs}})))
        .fault(404, "itemNotFound");
    b.call(
        "alice",
        "POST",
        "/pa/attachments",
        Some(json!({"attachment": {"volume_uuid": theirs, "instance_uuid": "8c2ff6b4-6e4b-4fd5-9c6c-4a1f1e6c1d55"}})),
    )
    .fault(404, "itemNotFound");
    let listed = b.call("alice", "GET", "/pa/volumes/detail?all_tenants=1", None).json();
    let ids: Vec<&str> = listed["volumes"].as_array().unwrap().iter().map(|v| v["id"].as_str().unwrap()).collect();
    assert_eq!(ids, vec![mine.as_str()], "a member's all_tenants is ignored");

    // A reader of pa reads, and cannot write (403, Cinder's body).
    assert_eq!(b.call("rita", "GET", &format!("/pa/volumes/{mine}"), None).status, 200);
    let msg = b.call("rita", "POST", "/pa/volumes", Some(json!({"volume": {"size": 1}}))).fault(403, "forbidden");
    assert!(msg.contains("volume:create"), "{msg}");
    b.call("rita", "DELETE", &format!("/pa/volumes/{mine}"), None).fault(403, "forbidden");
    b.call("rita", "POST", &format!("/pa/volumes/{mine}/action"), Some(json!({"os-extend": {"new_size": 2}})))
        .fault(403, "forbidden");
    b.call("rita", "POST", "/pa/snapshots", Some(json!({"snapshot": {"volume_id": mine}}))).fault(403, "forbidden");

    // Admin-only actions are 403 for members, on their own volumes too.
    let admin_only = [
        json!({"os-reset_status": {"status": "error"}}),
        json!({"os-force_delete": {}}),
        json!({"os-force_detach": {}}),
    ];
    for body in &admin_only {
        b.call("alice", "POST", &format!("/pa/volumes/{mine}/action"), Some(body.clone())).fault(403, "forbidden");
    }
    b.call("alice", "POST", "/pa/types", Some(json!({"volume_type": {"name": "t"}}))).fault(403, "forbidden");
    b.call("alice", "GET", "/pa/os-services", None).fault(403, "forbidden");
    b.call("alice", "GET", "/pa/scheduler-stats/get_pools", None).fault(403, "forbidden");
    b.call("alice", "PUT", "/pa/os-quota-sets/pa", Some(json!({"quota_set": {"volumes": 50}}))).fault(403, "forbidden");
    b.call("alice", "GET", "/pa/os-quota-sets/pb", None).fault(403, "forbidden");
    assert_eq!(b.call("alice", "GET", "/pa/os-quota-sets/pa", None).status, 200);
    // Members see no admin fields.
    let v = b.call("alice", "GET", &format!("/pa/volumes/{mine}"), None).json();
    assert!(v["volume"].get("os-vol-host-attr:host").is_none(), "{v}");

    // The admin sees and acts on every project.
    let v = b.call("root", "GET", &format!("/ops/volumes/{theirs}"), None).json();
    assert!(v["volume"]["os-vol-host-attr:host"].is_string(), "{v}");
    let all = b.call("root", "GET", "/ops/volumes/detail?all_tenants=1", None).json();
    assert_eq!(all["volumes"].as_array().unwrap().len(), 2);
    let r = b.call(
        "root",
        "POST",
        &format!("/ops/volumes/{theirs}/action"),
        Some(json!({"os-reset_status": {"status": "error"}})),
    );
    assert_eq!(r.status, 202, "{r:?}");
    assert_eq!(b.call("bob", "GET", &format!("/pb/volumes/{theirs}"), None).json()["volume"]["status"], "error");
}

#[test]
fn policy_overrides_take_effect() {
    let b = basic("[policy]\n\"volume:create\" = \"role:admin\"\n\"volume:get_all\" = \"@\"\n");
    b.call("alice", "POST", "/pa/volumes", Some(json!({"volume": {"size": 1}}))).fault(403, "forbidden");
    assert_eq!(b.call("root", "POST", "/ops/volumes", Some(json!({"volume": {"size": 1}}))).status, 202);
}

fn check_config(text: &str) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.toml");
    std::fs::write(&path, format!("{text}\n{}", common::backends_toml())).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hearthd"))
        .arg("--config")
        .arg(&path)
        .arg("check-config")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

#[test]
fn bad_identity_setups_are_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let md5 = dir.path().join("htpasswd-md5");
    std::fs::write(
        &md5,
        format!("alice:{}\nbob:$apr1$x8c1dk3S$Q0Jmhgm4hFX/MbNGN8Z9i/\n", bcrypt::hash("a", 4).unwrap()),
    )
    .unwrap();
    let users = "[http_basic_users]\nalice = { project_id = \"p\", roles = [\"member\"] }\n\
                 bob = { project_id = \"p\", roles = [\"member\"] }\n";
    let (ok, err) = check_config(&format!(
        "auth_strategy = \"http_basic\"\nhttp_basic_auth_user_file = {:?}\n{users}",
        md5.display().to_string()
    ));
    assert!(!ok && err.contains("line 2") && err.contains("bcrypt"), "{err}");
    let (ok, err) = check_config("listen = \"0.0.0.0:8776\"");
    assert!(!ok && err.contains("noauth_allow_remote"), "{err}");
    let (ok, _) = check_config("listen = \"0.0.0.0:8776\"\nnoauth_allow_remote = true");
    assert!(ok);
    // --listen is held to the same rule.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hearthd"))
        .args(["--listen", "0.0.0.0:0", "check-config"])
        .output()
        .unwrap();
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("noauth_allow_remote"));
}

/// A Keystone that accepts connections and never answers, and one that is not there.
#[test]
fn an_unreachable_keystone_is_503_never_let_through() {
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let closed = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    for (url, timeout) in [(format!("http://{}", silent.local_addr().unwrap()), 1), (format!("http://{closed}"), 1)] {
        let config = format!(
            "auth_strategy = \"keystone\"\n[keystone_authtoken]\nauth_url = \"{url}\"\n\
             www_authenticate_uri = \"{url}/v3\"\nusername = \"hearth\"\npassword = \"secret-pw\"\n\
             project_name = \"service\"\nhttp_connect_timeout = {timeout}\n{}",
            common::backends_toml()
        );
        let d = Daemon::start_with(&config);
        let r = d.raw("GET", "/v3/p/volumes", None, &[("X-Auth-Token", "some-token")]);
        r.fault(503, "serviceUnavailable");
        assert!(r.header("Retry-After").is_some(), "{r:?}");
        // No token: 401 at once, naming where to authenticate.
        let r = d.raw("GET", "/v3/p/volumes", None, &[]);
        r.fault(401, "unauthorized");
        assert_eq!(r.header("WWW-Authenticate"), Some(format!("Keystone uri=\"{url}/v3\"").as_str()));
        // Nothing was created, and neither the token nor the password is in the log.
        let log = d.log();
        assert!(!log.contains("some-token") && !log.contains("secret-pw"), "{log}");
    }
    drop(silent);
}

/// Past max_in_flight_requests, hearth answers 503 with Retry-After at once. Two
/// requests at the same time with room for one: each holds the only worker for
/// seconds (its token is checked against a Keystone that never answers), so whichever
/// comes second is refused for load while the first is still being handled.
#[test]
fn past_the_in_flight_bound_requests_get_503() {
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", silent.local_addr().unwrap());
    let config = format!(
        "api_threads = 1\nmax_in_flight_requests = 1\nauth_strategy = \"keystone\"\n[keystone_authtoken]\n\
         auth_url = \"{url}\"\nusername = \"hearth\"\npassword = \"pw\"\nproject_name = \"service\"\n\
         http_connect_timeout = 2\n{}",
        common::backends_toml()
    );
    let d = Daemon::start_with(&config);
    let send = |token: &'static str| {
        let addr = d.addr.clone();
        std::thread::spawn(move || {
            let started = Instant::now();
            let mut s = std::net::TcpStream::connect(&addr).unwrap();
            let req =
                format!("GET /v3/p/volumes HTTP/1.1\r\nHost: x\r\nX-Auth-Token: {token}\r\nConnection: close\r\n\r\n");
            s.write_all(req.as_bytes()).unwrap();
            let mut out = String::new();
            let _ = std::io::Read::read_to_string(&mut s, &mut out);
            (out, started.elapsed())
        })
    };
    let (a, b) = (send("token-a"), send("token-b"));
    let (a, b) = (a.join().unwrap(), b.join().unwrap());
    let load = |r: &(String, Duration)| r.0.contains("handling 1 requests");
    let (refused, handled) = match (load(&a), load(&b)) {
        (true, false) => (a, b),
        (false, true) => (b, a),
        _ => panic!("expected exactly one refusal for load:\n{}\n---\n{}", a.0, b.0),
    };
    assert!(
        refused.0.starts_with("HTTP/1.1 503") && refused.0.to_lowercase().contains("retry-after: 5"),
        "{}",
        refused.0
    );
    assert!(refused.0.contains("serviceUnavailable"), "{}", refused.0);
    assert!(refused.1 < Duration::from_secs(2), "the refusal took {:?}: it waited", refused.1);
    assert!(handled.0.starts_with("HTTP/1.1 503") && handled.0.contains("Keystone"), "{}", handled.0);
    drop(silent);
}

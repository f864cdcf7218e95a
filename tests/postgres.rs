//! The PostgreSQL store against real servers of the test's own (Debian's PostgreSQL,
//! `scripts/postgres/server.sh`: initdb and pg_ctl in a temp dir, loopback ports):
//! nodes sharing one database (one process per `host`, each acting only on its own
//! pools and handing what needs another node's to it through the store, 503 when that
//! node does not take it), a node settling only its own work at
//! start-up (another node's is left to it), writes that carry on across a restart of
//! the server or a connection cut between a commit and its answer, a failover from a
//! primary to its synchronous streaming replica that loses nothing acknowledged, and
//! TLS as libpq's `sslmode` asks it (certificates made with openssl by `server.sh
//! tls`).
//!
//! Without PostgreSQL installed (and no root to install it) these tests fail: the
//! test command installs it.

mod common;

use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::Daemon;
use serde_json::json;

const BACKENDS: &str = "[backends.file-1]\ndriver = \"file\"\nvolume_backend_name = \"file\"\nsize_gb = 1000\n";

/// A PostgreSQL server of this test's.
struct Server {
    dir: tempfile::TempDir,
    port: u16,
}

fn script() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/postgres/server.sh")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn run(args: &[&str], env: &[(&str, &str)]) {
    let out = Command::new(script()).args(args).envs(env.iter().copied()).output().unwrap();
    assert!(
        out.status.success(),
        "server.sh {args:?}: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Server {
    /// A primary.
    fn primary() -> Server {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        run(&["start", dir.path().to_str().unwrap(), &port.to_string()], &[]);
        Server { dir, port }
    }

    /// From now on, commits wait until a replica has them.
    fn synchronous(&self) {
        let mut c = postgres::Client::connect(&self.admin(), postgres::NoTls).unwrap();
        c.batch_execute("ALTER SYSTEM SET synchronous_standby_names = '*'").unwrap();
        c.batch_execute("SELECT pg_reload_conf()").unwrap();
    }

    /// A streaming replica of `primary`.
    fn replica(primary: &Server) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        run(&["replica", dir.path().to_str().unwrap(), &port.to_string(), &primary.port.to_string()], &[]);
        Server { dir, port }
    }

    fn admin(&self) -> String {
        format!("postgresql://hearth@127.0.0.1:{}/postgres", self.port)
    }

    /// Make the database `name`.
    fn create_database(&self, name: &str) {
        let mut c = postgres::Client::connect(&self.admin(), postgres::NoTls).unwrap();
        c.batch_execute(&format!(
            "CREATE DATABASE {name} TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C'"
        ))
        .unwrap();
    }

    fn stop(&self) {
        run(&["stop", self.dir.path().to_str().unwrap()], &[]);
    }

    fn start(&self) {
        run(&["start", self.dir.path().to_str().unwrap(), &self.port.to_string()], &[]);
    }

    /// TLS on (`server.sh tls`): its files are under [`Server::tls_dir`].
    fn tls(&self) {
        run(&["tls", self.dir.path().to_str().unwrap()], &[]);
    }

    fn tls_dir(&self) -> std::path::PathBuf {
        self.dir.path().join("tls")
    }

    /// The sessions of hearthd nodes on database `db`, and how many of them use TLS.
    fn hearthd_sessions(&self, db: &str) -> (i64, i64) {
        let mut c = postgres::Client::connect(&self.admin(), postgres::NoTls).unwrap();
        let r = c
            .query_one(
                "SELECT COUNT(*), COUNT(*) FILTER (WHERE s.ssl) FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid)
                  WHERE a.datname = $1 AND a.application_name LIKE 'hearthd-%'",
                &[&db],
            )
            .unwrap();
        (r.get(0), r.get(1))
    }

    fn promote(&self) {
        run(&["promote", self.dir.path().to_str().unwrap()], &[]);
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = Command::new(script()).args(["stop", self.dir.path().to_str().unwrap()]).output();
    }
}

/// Node `host` on the store at `url`.
fn node(url: &str, host: &str) -> Daemon {
    let mut d = Daemon::start_with(&format!("host = {host:?}\n{BACKENDS}\n[database]\nconnection = {url:?}\n"));
    d.database = Some(url.to_string());
    d
}

/// What hearthd `host` on the store at `url` says when it refuses to start (it must).
fn refused(url: &str, host: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("hearth.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = {:?}\nhost = {host:?}\n{BACKENDS}\n[database]\nconnection = {url:?}\n",
            dir.path().join("data")
        ),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_hearthd"))
        .args(["--config", config.to_str().unwrap(), "--listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "hearthd started on {url}: {stderr}");
    stderr
}

/// Create a volume, retrying while the store answers 503 (it is being reached
/// again); any other refusal fails the test.
fn create_retrying(d: &Daemon, name: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let r = d.post("/volumes", json!({"volume": {"size": 1, "name": name}}));
        match r.status {
            202 => return r.json()["volume"]["id"].as_str().unwrap().to_string(),
            503 if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(200)),
            _ => panic!("create {name}: {} {}", r.status, r.text),
        }
    }
}

/// Wait for a volume's status, riding out 503s.
fn wait_available(d: &Daemon, id: &str) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let r = d.get(&format!("/volumes/{id}"));
        if r.status == 200 {
            let v = r.json()["volume"].clone();
            match v["status"].as_str().unwrap() {
                "available" => return,
                "error" => panic!("{id} went to error: {v}"),
                _ => {}
            }
        } else {
            assert_eq!(r.status, 503, "{}", r.text);
        }
        assert!(Instant::now() < deadline, "{id} did not become available");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Node `host` on the store at `url`, waiting `rpc` seconds for the nodes it hands
/// requests to.
fn fleet_node(url: &str, host: &str, rpc: u64) -> Daemon {
    let mut d = Daemon::start_with(&format!(
        "host = {host:?}\nrpc_response_timeout = {rpc}\n{BACKENDS}\n[database]\nconnection = {url:?}\n"
    ));
    d.database = Some(url.to_string());
    d
}

/// Poll `path` until its `key` object has `status`.
fn wait_for(d: &Daemon, path: &str, key: &str, status: &str) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let got = d.get(path).json()[key].clone();
        if got["status"] == status {
            return got;
        }
        assert!(Instant::now() < deadline && got["status"] != "error", "{path}: {got}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Poll `path` until it is 404.
fn wait_gone_at(d: &Daemon, path: &str) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while d.get(path).status != 404 {
        assert!(Instant::now() < deadline, "{path} is still there");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn nodes_share_a_store_and_run_what_needs_their_disks_for_each_other() {
    let pg = Server::primary();
    pg.create_database("hearth");
    let url = format!("postgresql://hearth@127.0.0.1:{}/hearth", pg.port);
    let (mut a, mut b) = (fleet_node(&url, "node-a", 3), fleet_node(&url, "node-b", 3));
    // A second process under a node's `host` is refused at start, with the reason.
    let stderr = refused(&url, "node-a");
    assert!(stderr.contains("another hearthd with host \"node-a\" uses this PostgreSQL store"), "{stderr}");
    // Each node schedules onto its own pools; both see every volume and service.
    let v = a.create_volume(json!({"size": 1, "name": "on-a"}));
    let on_a = a.wait_status(&v, "available");
    assert!(on_a["os-vol-host-attr:host"].as_str().unwrap().starts_with("node-a@"), "{on_a}");
    let w = b.create_volume(json!({"size": 1, "name": "on-b"}));
    b.wait_status(&w, "available");
    for d in [&a, &b] {
        let names: Vec<String> = d.get("/volumes").json()["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["name"].as_str().unwrap().to_string())
            .collect();
        assert!(names.contains(&"on-a".to_string()) && names.contains(&"on-b".to_string()), "{names:?}");
        let services = d.get("/os-services?binary=cinder-volume").json()["services"].clone();
        for host in ["node-a@file-1", "node-b@file-1"] {
            let s = services.as_array().unwrap().iter().find(|s| s["host"] == host);
            assert_eq!(s.map(|s| s["state"].clone()), Some(json!("up")), "{host}: {services}");
        }
    }

    // What needs node a's disks, asked of node b, is handed to a and run there.
    let ok = |r: common::Resp, status: u16, what: &str| {
        assert_eq!(r.status, status, "{what}: {}", r.text);
        r
    };
    ok(b.post(&format!("/volumes/{v}/metadata"), json!({"metadata": {"set-by": "node-b"}})), 200, "metadata");
    ok(b.post(&format!("/volumes/{v}/action"), json!({"os-extend": {"new_size": 2}})), 202, "extend");
    assert_eq!(b.wait_status(&v, "available")["size"], 2);
    let snap = ok(b.post("/snapshots", json!({"snapshot": {"volume_id": v}})), 202, "snapshot").json()["snapshot"]
        ["id"]
        .as_str()
        .unwrap()
        .to_string();
    wait_for(&b, &format!("/snapshots/{snap}"), "snapshot", "available");
    let clone = ok(b.post("/volumes", json!({"volume": {"size": 2, "source_volid": v}})), 202, "clone").json()
        ["volume"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let made = b.wait_status(&clone, "available");
    assert!(made["os-vol-host-attr:host"].as_str().unwrap().starts_with("node-a@"), "{made}");
    // Connections: node a exports and answers with the connection (a path on a).
    let connector = json!({"host": "compute-1", "initiator": "iqn.1994-05.com.redhat:c1", "ip": "127.0.0.1"});
    let info = ok(
        b.post(&format!("/volumes/{v}/action"), json!({"os-initialize_connection": {"connector": connector}})),
        200,
        "initialize_connection",
    )
    .json()["connection_info"]
        .clone();
    let device = info["data"]["device_path"].as_str().unwrap_or_default().to_string();
    assert!(Path::new(&device).starts_with(a.dir.path()), "{info}");
    ok(
        b.post(&format!("/volumes/{v}/action"), json!({"os-terminate_connection": {"connector": connector}})),
        202,
        "terminate",
    );
    let att =
        ok(b.post("/attachments", json!({"attachment": {"volume_uuid": v, "connector": connector}})), 200, "attach")
            .json()["attachment"]
            .clone();
    assert!(att["connection_info"]["device_path"].as_str().is_some(), "{att}");
    ok(b.delete(&format!("/attachments/{}", att["id"].as_str().unwrap())), 200, "detach");
    // Backups: each node has a repository of its own (the default, in its data_dir):
    // refused, each node's repository named, nothing recorded.
    let r = b.post("/backups", json!({"backup": {"volume_id": v}}));
    r.fault(400, "badRequest");
    for named in ["different backup repositories", "node node-a: posix:", "node node-b: posix:", "every node mounts"] {
        assert!(r.text.contains(named), "{named}: {}", r.text);
    }
    assert_eq!(b.get("/backups").json()["backups"], json!([]));
    // Node b restarted on node a's repository: a backup is made by a, its records
    // seen by b (once b published the repository it now uses).
    let config = std::fs::read_to_string(&b.config_path).unwrap();
    let shared = format!("backup_posix_path = {:?}\n", a.data_dir().join("backups"));
    std::fs::write(&b.config_path, shared + &config).unwrap();
    b.restart();
    let deadline = Instant::now() + Duration::from_secs(30);
    let backup = loop {
        let r = b.post("/backups", json!({"backup": {"volume_id": v}}));
        if r.status == 400 && r.text.contains("different backup repositories") && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
            continue;
        }
        break ok(r, 202, "backup").json()["backup"]["id"].as_str().unwrap().to_string();
    };
    wait_for(&b, &format!("/backups/{backup}"), "backup", "available");
    assert!(b.log().contains("published for the fleet"), "{}", b.log());
    ok(b.delete(&format!("/snapshots/{snap}")), 202, "snapshot delete");
    wait_gone_at(&b, &format!("/snapshots/{snap}"));
    ok(b.delete(&format!("/volumes/{clone}")), 202, "clone delete");
    b.wait_gone(&clone);
    let a_log = a.log();
    assert!(a_log.contains("handed by node node-b"), "{a_log}");
    assert_eq!(a.store_count("SELECT COUNT(*) FROM handed_requests"), 0, "handed rows left");

    // Node a killed: what b hands it is not taken, cancelled after rpc_response_timeout
    // (its heartbeat is still recent): 503, nothing done, no row left.
    a.kill9();
    let r = b.delete(&format!("/volumes/{v}"));
    assert_eq!(r.status, 503, "{}", r.text);
    assert!(r.text.contains("Node node-a") && r.text.contains("did not take the request within 3 s"), "{}", r.text);
    assert_eq!(b.get(&format!("/volumes/{v}")).json()["volume"]["status"], "available");
    assert_eq!(b.store_count("SELECT COUNT(*) FROM handed_requests"), 0, "handed rows left");
    // b serves its own meanwhile; a back, b's request for it goes through.
    assert_eq!(b.post(&format!("/volumes/{w}/action"), json!({"os-extend": {"new_size": 2}})).status, 202);
    b.wait_status(&w, "available");
    a.respawn();
    ok(b.delete(&format!("/volumes/{v}")), 202, "delete");
    b.wait_gone(&v);
    // The schema is the SQLite store's: every migration applied once.
    let n = b.store_count("SELECT COUNT(*) FROM schema_migrations");
    assert_eq!(n, b.store_count("SELECT MAX(version) FROM schema_migrations"));
    assert!(n >= 12, "{n} migrations");
}

#[test]
fn a_handed_request_its_node_does_not_answer_is_504_and_one_it_lost_is_503() {
    let pg = Server::primary();
    pg.create_database("hearth");
    let url = format!("postgresql://hearth@127.0.0.1:{}/hearth", pg.port);
    // Node a's exports hang: a request for a connection handed to it is taken and
    // never answered.
    let faults = [("HEARTH_FAULTS", "export.ensure_export=hang"), ("HEARTH_FAULTS_HANG_MS", "600000")];
    let mut a = Daemon::start_env(
        &format!("host = \"node-a\"\n{BACKENDS}\n[database]\nconnection = {url:?}\n"),
        "info",
        &faults,
    );
    a.database = Some(url.clone());
    let b = fleet_node(&url, "node-b", 3);
    let v = a.create_volume(json!({"size": 1}));
    a.wait_status(&v, "available");
    let connect = json!({"os-initialize_connection": {"connector": {"host": "compute-1", "initiator": "iqn.c1"}}});
    let r = b.post(&format!("/volumes/{v}/action"), connect.clone());
    assert_eq!(r.status, 504, "{}", r.text);
    assert!(r.text.contains("Node node-a") && r.text.contains("did not answer within 6 s"), "{}", r.text);
    // Node a killed while it runs one: back, it marks it lost, and the node waiting
    // answers 503.
    std::thread::scope(|s| {
        let waiting = s.spawn(|| b.post(&format!("/volumes/{v}/action"), connect.clone()));
        let deadline = Instant::now() + Duration::from_secs(5);
        while a.store_count("SELECT COUNT(*) FROM handed_requests WHERE state = 'running'") < 2 {
            assert!(Instant::now() < deadline, "node a did not take the second request");
            std::thread::sleep(Duration::from_millis(20));
        }
        a.kill9();
        a.env.clear();
        a.respawn();
        let r = waiting.join().unwrap();
        assert_eq!(r.status, 503, "{}", r.text);
        assert!(r.text.contains("Node node-a") && r.text.contains("stopped while it ran the request"), "{}", r.text);
    });
    // The first one's row stays, lost, until it is purged; a answers again.
    assert_eq!(a.store_count("SELECT COUNT(*) FROM handed_requests WHERE state = 'lost'"), 1);
    let r = b.post(&format!("/volumes/{v}/action"), connect);
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.json()["connection_info"]["data"]["device_path"].is_string(), "{}", r.text);
}

#[test]
fn a_lost_session_of_the_same_process_gives_the_node_lock_back() {
    let pg = Server::primary();
    pg.create_database("hearth");
    let url = format!("postgresql://hearth@127.0.0.1:{}/hearth", pg.port);
    let mut config: postgres::Config = url.parse().unwrap();
    config.application_name("hearthd-test-1");
    let mut lost = hearth::store::db::PgConn::connect(&config.clone().into()).unwrap();
    lost.take_node_lock("node-1").unwrap();
    // Another process is refused while the session lives (another host is not)...
    let mut other_config = config.clone();
    other_config.application_name("hearthd-test-2");
    let mut other = hearth::store::db::PgConn::connect(&other_config.into()).unwrap();
    let e = other.take_node_lock("node-1").unwrap_err().to_string();
    assert!(e.contains("another hearthd with host \"node-1\" uses this PostgreSQL store"), "{e}");
    assert!(e.contains("127.0.0.1 (pid "), "{e}");
    other.take_node_lock("node-2").unwrap();
    // ...but the same process, reconnecting, ends its lost session and takes it.
    let mut again = hearth::store::db::PgConn::connect(&config.clone().into()).unwrap();
    again.take_node_lock("node-1").unwrap();
    assert!(other.take_node_lock("node-1").is_err());
    // The lost session was ended by the server.
    let deadline = Instant::now() + Duration::from_secs(5);
    while !lost.is_closed() && Instant::now() < deadline {
        let _ = lost.batch("SELECT 1");
    }
    assert!(lost.is_closed(), "the lost session is still open");
}

#[test]
fn a_node_settles_only_its_own_work() {
    let pg = Server::primary();
    pg.create_database("hearth");
    let url = format!("postgresql://hearth@127.0.0.1:{}/hearth", pg.port);
    let config = |host: &str| format!("host = {host:?}\n{BACKENDS}\n[database]\nconnection = {url:?}\n");
    // Node a: a volume whose delete hangs in its backend when a is killed, so that its
    // record says deleting, on a's pool.
    let faults = [("HEARTH_FAULTS", "backend.delete_volume=hang"), ("HEARTH_FAULTS_HANG_MS", "600000")];
    let mut a = Daemon::start_env(&config("node-a"), "info", &faults);
    a.database = Some(url.clone());
    let v = a.create_volume(json!({"size": 1}));
    a.wait_status(&v, "available");
    assert_eq!(a.delete(&format!("/volumes/{v}")).status, 202);
    a.wait_status(&v, "deleting");
    a.kill9();
    // a again, its pools' first measurement hanging too: a create it accepts waits to
    // be scheduled when a is killed, so that its record is a's, on no pool yet.
    a.env.retain(|(k, _)| k != "HEARTH_FAULTS");
    a.env.push(("HEARTH_FAULTS".into(), "backend.delete_volume=hang,backend.capacity=hang".into()));
    a.respawn();
    let u = a.create_volume(json!({"size": 1}));
    let waiting = a.get(&format!("/volumes/{u}")).json()["volume"].clone();
    assert_eq!(waiting["status"], "creating", "{waiting}");
    assert!(waiting["os-vol-host-attr:host"].is_null(), "{waiting}");
    // And a quota reservation of a request a had in flight.
    a.with_store(|c| {
        c.execute(
            "INSERT INTO reservations (id, project_id, resource, delta, created_at, node)
             VALUES ('r-a', 'p', 'volumes', 1, '2026-12-04T00:00:00Z', 'node-a')",
            [],
        )
        .unwrap()
    });
    a.kill9();

    // Node b starts on the same store while a is down: a's work is a's. The volumes
    // stay listed as they were, the delete is not touched, the create not failed, a's
    // reservation stays.
    let mut b = Daemon::start_with(&config("node-b"));
    b.database = Some(url.clone());
    let shown = b.get(&format!("/volumes/{v}")).json()["volume"].clone();
    assert_eq!(shown["status"], "deleting", "{shown}");
    assert!(shown["os-vol-host-attr:host"].as_str().unwrap().starts_with("node-a@"), "{shown}");
    assert!(b.log().contains(&format!("volume {v} is on node-a@")), "{}", b.log());
    assert_eq!(b.get(&format!("/volumes/{u}")).json()["volume"]["status"], "creating");
    assert!(b.log().contains(&format!("volume {u} was accepted by node node-a")), "{}", b.log());
    assert_eq!(b.store_count("SELECT COUNT(*) FROM reservations WHERE node = 'node-a'"), 1);
    // b serves and schedules onto its own pool.
    let w = b.create_volume(json!({"size": 1}));
    let mine = b.wait_status(&w, "available");
    assert!(mine["os-vol-host-attr:host"].as_str().unwrap().starts_with("node-b@"), "{mine}");
    assert!(b.stop());

    // a returns (its backend well again) and finishes its own work.
    a.env.clear();
    a.respawn();
    a.wait_gone(&v);
    assert_eq!(a.store_count("SELECT COUNT(*) FROM reservations WHERE node = 'node-a'"), 0);
    // The create it had accepted is settled as any create a crash cut short: error.
    let failed = a.wait_status(&u, "error");
    assert!(failed["os-vol-host-attr:host"].is_null(), "{failed}");
    // b's volume is b's: a leaves it as it is.
    assert_eq!(a.get(&format!("/volumes/{w}")).json()["volume"]["status"], "available");
}

/// A TCP proxy in front of a PostgreSQL server that, once armed, cuts the first
/// write connection (one that took the advisory write lock) to send a `COMMIT`: the
/// server gets the commit and applies it, its answer never reaches the client. What
/// a connection lost at the worst moment does.
struct CommitCutter {
    port: u16,
    armed: Arc<AtomicBool>,
    cuts: Arc<std::sync::atomic::AtomicUsize>,
}

impl CommitCutter {
    fn new(upstream: u16) -> CommitCutter {
        use std::io::{Read, Write};
        use std::net::{Shutdown, TcpListener, TcpStream};
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let armed = Arc::new(AtomicBool::new(false));
        let cuts = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (armed2, cuts2) = (armed.clone(), cuts.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else { continue };
                let cut = Arc::new(AtomicBool::new(false));
                let (mut from_server, mut to_client) = (server.try_clone().unwrap(), client.try_clone().unwrap());
                let (cut2, cuts) = (cut.clone(), cuts2.clone());
                std::thread::spawn(move || {
                    let mut buf = vec![0u8; 1 << 16];
                    while let Ok(n @ 1..) = from_server.read(&mut buf) {
                        if cut2.load(Ordering::SeqCst) {
                            // The server answered the commit: it is applied. Drop the answer.
                            cuts.fetch_add(1, Ordering::SeqCst);
                            break;
                        }
                        if to_client.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                    let _ = to_client.shutdown(Shutdown::Both);
                    let _ = from_server.shutdown(Shutdown::Both);
                });
                let armed = armed2.clone();
                std::thread::spawn(move || {
                    let (mut from_client, mut to_server) = (client, server);
                    let mut buf = vec![0u8; 1 << 16];
                    let mut writer = false;
                    while let Ok(n @ 1..) = from_client.read(&mut buf) {
                        let sent = &buf[..n];
                        let has = |what: &[u8]| sent.windows(what.len()).any(|w| w == what);
                        writer |= has(b"pg_advisory_xact_lock");
                        if writer && has(b"COMMIT") && armed.swap(false, Ordering::SeqCst) {
                            cut.store(true, Ordering::SeqCst);
                        }
                        if to_server.write_all(sent).is_err() {
                            break;
                        }
                    }
                    let _ = to_server.shutdown(Shutdown::Both);
                });
            }
        });
        CommitCutter { port, armed, cuts }
    }
}

#[test]
fn a_commit_whose_answer_was_lost_is_known_applied_and_not_written_twice() {
    let pg = Server::primary();
    pg.create_database("hearth");
    let cutter = CommitCutter::new(pg.port);
    let d = node(&format!("postgresql://hearth@127.0.0.1:{}/hearth", cutter.port), "node-1");
    let before = create_retrying(&d, "before");
    wait_available(&d, &before);
    // The create's record is committed, and the answer of the commit lost: hearthd
    // asks the store again and answers as if it had come.
    cutter.armed.store(true, Ordering::SeqCst);
    let r = d.post("/volumes", json!({"volume": {"size": 1, "name": "cut"}}));
    assert_eq!(cutter.cuts.load(Ordering::SeqCst), 1, "no commit was cut");
    assert_eq!(r.status, 202, "{}", r.text);
    let id = r.json()["volume"]["id"].as_str().unwrap().to_string();
    wait_available(&d, &id);
    assert!(d.log().contains("it was applied"), "{}", d.log());
    // Once: no second volume, no second quota charge.
    let listed = d.get("/volumes?name=cut").json();
    assert_eq!(listed["volumes"].as_array().unwrap().len(), 1, "{listed}");
    let quotas = d.get(&format!("/os-quota-sets/{}?usage=true", common::PROJECT)).json();
    assert_eq!(quotas["quota_set"]["volumes"]["in_use"], 2, "{quotas}");
    assert!(!d.log().contains("panicked"), "{}", d.log());
    // The tokens of writers gone for a week are dropped when a node starts.
    let mut d = d;
    d.with_store(|c| {
        c.execute("INSERT INTO write_tokens VALUES ('gone', '7', '2026-01-01T00:00:00.000000')", []).unwrap()
    });
    d.restart();
    assert_eq!(d.store_count("SELECT COUNT(*) FROM write_tokens WHERE writer = 'gone'"), 0);
    assert!(d.store_count("SELECT COUNT(*) FROM write_tokens") >= 1);
}

#[test]
fn writes_carry_on_across_a_restart_of_the_server() {
    let pg = Server::primary();
    pg.create_database("hearth");
    let url = format!("postgresql://hearth@127.0.0.1:{}/hearth", pg.port);
    let d = node(&url, "node-1");
    let before: Vec<String> = (0..3).map(|i| create_retrying(&d, &format!("before-{i}"))).collect();
    for id in &before {
        wait_available(&d, id);
    }
    pg.stop();
    // Down: requests that need the store are refused with 503 and a reason, never 500.
    let r = d.post("/volumes", json!({"volume": {"size": 1}}));
    assert!(r.status == 503 || r.status == 202, "{} {}", r.status, r.text);
    pg.start();
    // Readers whose connections were lost make them again before they read.
    for id in &before {
        let r = d.get(&format!("/volumes/{id}"));
        assert_eq!(r.status, 200, "{}", r.text);
    }
    let after = create_retrying(&d, "after");
    wait_available(&d, &after);
    let listed = d.get("/volumes/detail").json();
    let names: Vec<&str> = listed["volumes"].as_array().unwrap().iter().filter_map(|v| v["name"].as_str()).collect();
    for name in ["before-0", "before-1", "before-2", "after"] {
        assert!(names.contains(&name), "{name} missing: {names:?}");
    }
    for v in listed["volumes"].as_array().unwrap() {
        wait_available(&d, v["id"].as_str().unwrap());
    }
    let log = d.log();
    assert!(!log.contains("panicked"), "{log}");
}

/// Creates arriving at each of `nodes` (from one client each, 50 ms apart) while the
/// primary of `pg` dies and `replica` is promoted: the ids accepted (202), how many
/// were accepted before the failover, and how many were refused with 503.
fn creates_across_a_failover(nodes: &[Arc<Daemon>], primary: &Server, replica: &Server) -> (Vec<String>, usize, usize) {
    let accepted = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = nodes
        .iter()
        .enumerate()
        .map(|(c, d)| {
            let (d, accepted, stop) = (d.clone(), accepted.clone(), stop.clone());
            std::thread::spawn(move || {
                let (mut i, mut refused) = (0, 0);
                while !stop.load(Ordering::Relaxed) {
                    let name = format!("c{c}-{i}");
                    let r = d.post("/volumes", json!({"volume": {"size": 1, "name": name}}));
                    match r.status {
                        202 => accepted.lock().unwrap().push(r.json()["volume"]["id"].as_str().unwrap().to_string()),
                        503 => refused += 1,
                        other => {
                            let log = d.log();
                            let tail: Vec<&str> = log.lines().rev().take(40).collect();
                            let tail: Vec<&str> = tail.into_iter().rev().collect();
                            panic!("create {name}: {other} {}\nhearthd's log ends:\n{}", r.text, tail.join("\n"))
                        }
                    }
                    i += 1;
                    std::thread::sleep(Duration::from_millis(50));
                }
                refused
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(2));
    let before_failover = accepted.lock().unwrap().len();
    assert!(before_failover > 0, "nothing was accepted before the failover");
    primary.stop();
    std::thread::sleep(Duration::from_millis(500));
    replica.promote();
    std::thread::sleep(Duration::from_secs(4));
    stop.store(true, Ordering::Relaxed);
    let refused: usize = clients.into_iter().map(|c| c.join().unwrap()).sum();
    let accepted = accepted.lock().unwrap().clone();
    assert!(accepted.len() > before_failover, "nothing was accepted after the failover ({refused} refused)");
    (accepted, before_failover, refused)
}

/// A primary with a synchronous replica, and the URL that follows a failover to it.
fn replicated() -> (Server, Server, String) {
    let primary = Server::primary();
    primary.create_database("hearth");
    let replica = Server::replica(&primary);
    primary.synchronous();
    let url = format!(
        "postgresql://hearth@127.0.0.1:{},127.0.0.1:{}/hearth?target_session_attrs=read-write",
        primary.port, replica.port
    );
    (primary, replica, url)
}

#[test]
fn a_failover_to_the_replica_loses_nothing_acknowledged() {
    let (primary, replica, url) = replicated();
    let d = node(&url, "node-1");
    let r =
        d.put(&format!("/os-quota-sets/{}", common::PROJECT), json!({"quota_set": {"volumes": -1, "gigabytes": -1}}));
    assert_eq!(r.status, 200, "{}", r.text);
    // Creates keep arriving from four clients while the primary dies and the
    // replica is promoted.
    let d = Arc::new(d);
    let clients = [d.clone(), d.clone(), d.clone(), d.clone()];
    let (accepted, _, refused) = creates_across_a_failover(&clients, &primary, &replica);
    // Every acknowledged create is on the new primary and finishes there.
    for id in &accepted {
        wait_available(&d, id);
    }
    let listed = d.get("/volumes/detail").json();
    assert_eq!(listed["volumes"].as_array().unwrap().len(), accepted.len(), "{listed}");
    assert_eq!(d.store_count("SELECT COUNT(*) FROM volumes WHERE task IS NOT NULL"), 0);
    eprintln!("{} creates accepted across the failover, {refused} refused with 503", accepted.len());
    let log = d.log();
    assert!(!log.contains("panicked"), "{log}");
}

#[test]
fn tls_to_postgresql_as_libpq_asks() {
    let pg = Server::primary();
    pg.tls();
    pg.create_database("tls");
    pg.create_database("tlscert");
    let t = pg.tls_dir();
    let file = |name: &str| t.join(name).display().to_string();
    let port = pg.port;
    // verify-full: the certificate chains to the CA and names the host; every session
    // of the node is encrypted (the server refuses plain TCP to this database anyway).
    let url = format!("postgresql://hearth@localhost:{port}/tls?sslmode=verify-full&sslrootcert={}", file("ca.pem"));
    let mut d = node(&url, "node-1");
    let v = d.create_volume(json!({"size": 1}));
    d.wait_status(&v, "available");
    let (sessions, encrypted) = pg.hearthd_sessions("tls");
    assert!(sessions >= 2 && encrypted == sessions, "{encrypted} of {sessions} sessions use TLS");
    assert!(d.stop());
    // What libpq refuses, hearthd refuses at start, with the server's or TLS's reason.
    for (url, why) in [
        (format!("postgresql://hearth@127.0.0.1:{port}/tls?sslmode=disable"), "no encryption"),
        (
            format!(
                "postgresql://hearth@localhost:{port}/tls?sslmode=verify-full&sslrootcert={}",
                file("other-ca.pem")
            ),
            "UnknownIssuer",
        ),
        // The certificate names localhost, not 127.0.0.1.
        (
            format!("postgresql://hearth@127.0.0.1:{port}/tls?sslmode=verify-full&sslrootcert={}", file("ca.pem")),
            "certificate not valid for name \"127.0.0.1\"",
        ),
        (format!("postgresql://hearth@localhost:{port}/tlscert?sslmode=require"), "valid client certificate"),
    ] {
        let stderr = refused(&url, "node-1");
        assert!(stderr.contains(why) && stderr.contains("cannot be reached"), "{url}: {stderr}");
    }
    // verify-ca checks the chain only; require checks nothing (libpq's meanings):
    // both reach 127.0.0.1, encrypted. The volume made before is there.
    for url in [
        format!("postgresql://hearth@127.0.0.1:{port}/tls?sslmode=verify-ca&sslrootcert={}", file("ca.pem")),
        format!("postgresql://hearth@127.0.0.1:{port}/tls?sslmode=require"),
    ] {
        let mut d = node(&url, "node-1");
        assert_eq!(d.get(&format!("/volumes/{v}")).json()["volume"]["status"], "available", "{url}");
        let (sessions, encrypted) = pg.hearthd_sessions("tls");
        assert!(sessions >= 2 && encrypted == sessions, "{url}: {encrypted} of {sessions} sessions use TLS");
        assert!(d.stop());
    }
    // A client certificate, for a server that takes nothing else.
    let url = format!(
        "postgresql://hearth@localhost:{port}/tlscert?sslmode=verify-full&sslrootcert={}&sslcert={}&sslkey={}",
        file("ca.pem"),
        file("client.crt"),
        file("client.key")
    );
    let d = node(&url, "node-1");
    let v = d.create_volume(json!({"size": 1}));
    d.wait_status(&v, "available");
    assert_eq!(d.store_count("SELECT COUNT(*) FROM volumes"), 1);
}

/// A node of a three-node fleet: its own file pool of `size_gb` (no over-subscription)
/// named `file-<host's last letter>` for types to pin, no quota limits, and `more`
/// config (backends) and `env`.
fn sized_node(url: &str, host: &str, size_gb: u64, more: &str, env: &[(&str, &str)]) -> Daemon {
    let name = format!("file-{}", host.chars().last().unwrap());
    let mut d = Daemon::start_env(
        &format!(
            "host = {host:?}\nrpc_response_timeout = 30\n[quota]\nquota_volumes = -1\nquota_gigabytes = -1\n\
             [backends.file-1]\ndriver = \"file\"\nvolume_backend_name = {name:?}\nsize_gb = {size_gb}\n\
             max_over_subscription_ratio = 1.0\nvolume_clear = \"none\"\n{more}\n[database]\nconnection = {url:?}\n"
        ),
        "info",
        env,
    );
    d.database = Some(url.to_string());
    d
}

/// The hosts (`node-x`) of every volume with `status`, counted.
fn placed(d: &Daemon, status: &str) -> std::collections::BTreeMap<String, usize> {
    let mut by_node = std::collections::BTreeMap::new();
    for v in d.get("/volumes/detail?all_tenants=True&limit=1000").json()["volumes"].as_array().unwrap() {
        if v["status"] == status {
            let host = v["os-vol-host-attr:host"].as_str().unwrap_or("none");
            *by_node.entry(host.split('@').next().unwrap().to_string()).or_insert(0) += 1;
        }
    }
    by_node
}

#[test]
fn three_nodes_schedule_across_every_pool_and_never_overcommit_one() {
    let pg = Server::primary();
    pg.create_database("hearth");
    let url = format!("postgresql://hearth@127.0.0.1:{}/hearth", pg.port);
    // Node b also has a pool in zone "slow" whose creates hang (until b is killed).
    let slow = "[backends.slow]\ndriver = \"file\"\nsize_gb = 10\nbackend_availability_zone = \"slow\"\n";
    let hang = [("HEARTH_FAULTS", "slow/backend.create_volume=hang"), ("HEARTH_FAULTS_HANG_MS", "600000")];
    let (a, mut b, c) = (
        sized_node(&url, "node-a", 34, "", &[]),
        sized_node(&url, "node-b", 33, slow, &hang),
        sized_node(&url, "node-c", 33, "", &[]),
    );
    // Every node lists every node's pools, as each published them.
    let deadline = Instant::now() + Duration::from_secs(60);
    for d in [&a, &b, &c] {
        loop {
            let pools = d.get("/scheduler-stats/get_pools?detail=True").json()["pools"].clone();
            let names: Vec<&str> = pools.as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
            if names == ["node-a@file-1#file-1", "node-b@file-1#file-1", "node-b@slow#slow", "node-c@file-1#file-1"] {
                break;
            }
            assert!(Instant::now() < deadline, "{names:?}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    // A volume asked of node a for node b's pool is placed and made by b, and attached
    // through node c (which hands the export to b).
    let t =
        a.post("/types", json!({"volume_type": {"name": "on-b", "extra_specs": {"volume_backend_name": "file-b"}}}));
    assert_eq!(t.status, 200, "{}", t.text);
    let v = a.create_volume(json!({"size": 1, "volume_type": "on-b"}));
    let made = a.wait_status(&v, "available");
    assert_eq!(made["os-vol-host-attr:host"], "node-b@file-1#file-1", "{made}");
    assert!(a.log().contains(&format!("volume {v} is placed by node node-b")), "{}", a.log());
    assert!(b.log().contains(&format!("volume {v}, scheduled by node node-a, is placed on")), "{}", b.log());
    let connector = json!({"host": "compute-1", "initiator": "iqn.1994-05.com.redhat:c1", "ip": "127.0.0.1"});
    let att = c.post("/attachments", json!({"attachment": {"volume_uuid": v, "connector": connector}}));
    assert_eq!(att.status, 200, "{}", att.text);
    let att = att.json()["attachment"].clone();
    let device = att["connection_info"]["device_path"].as_str().unwrap_or_default().to_string();
    assert!(Path::new(&device).starts_with(b.dir.path()), "{att}");
    assert_eq!(c.delete(&format!("/attachments/{}", att["id"].as_str().unwrap())).status, 200);
    assert_eq!(c.delete(&format!("/volumes/{v}")).status, 202);
    c.wait_gone(&v);

    // A group asked of node a for a type only b's pool takes goes on b's pool; a
    // volume made in it through node c is made by b; the group with its volume is
    // deleted through a.
    let gt = a.post("/group_types", json!({"group_type": {"name": "fleet-group"}}));
    assert_eq!(gt.status, 202, "{}", gt.text);
    let g = a.post("/groups", json!({"group": {"group_type": "fleet-group", "volume_types": ["on-b"], "name": "g"}}));
    assert_eq!(g.status, 202, "{}", g.text);
    let gid = g.json()["group"]["id"].as_str().unwrap().to_string();
    let shown = a.get(&format!("/groups/{gid}")).json()["group"].clone();
    assert_eq!(shown["status"], "available", "{shown}\n{}", a.log());
    assert!(a.log().contains(&format!("group {gid} is available on node-b@file-1#file-1")), "{}", a.log());
    let gv = c.create_volume(json!({"size": 1, "volume_type": "on-b", "group_id": gid}));
    let made = c.wait_status(&gv, "available");
    assert_eq!(made["os-vol-host-attr:host"], "node-b@file-1#file-1", "{made}");
    assert_eq!(made["group_id"], gid.as_str(), "{made}");
    let del = a.post(&format!("/groups/{gid}/action"), json!({"delete": {"delete-volumes": true}}));
    assert_eq!(del.status, 202, "{}", del.text);
    a.wait_gone(&gv);
    let deadline = Instant::now() + Duration::from_secs(60);
    while a.get(&format!("/groups/{gid}")).status != 404 {
        assert!(Instant::now() < deadline, "group {gid} was never deleted\n{}", b.log());
        std::thread::sleep(Duration::from_millis(50));
    }

    // 200 concurrent creates of 1 GiB through all three nodes (120 through a, 60
    // through c, 20 through b), on pools that hold 100 between them: exactly 100 are
    // made, each pool filled and none beyond its size, whichever node took them.
    let through = [&a, &a, &a, &a, &a, &a, &c, &c, &c, &b];
    let ids: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> =
            (0..200).map(|i| s.spawn(move || through[i % 10].create_volume(json!({"size": 1})))).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for id in &ids {
        a.wait_volume(id, "settled", |v| v["status"] == "available" || v["status"] == "error");
    }
    let made = placed(&a, "available");
    let expected: std::collections::BTreeMap<String, usize> =
        [("node-a".to_string(), 34), ("node-b".to_string(), 33), ("node-c".to_string(), 33)].into();
    assert_eq!(made, expected, "volumes made per node");
    assert_eq!(placed(&a, "error").values().sum::<usize>(), 100);
    let failed = a
        .get(&format!(
            "/volumes/{}",
            ids.iter().find(|id| { a.get(&format!("/volumes/{id}")).json()["volume"]["status"] == "error" }).unwrap()
        ))
        .json();
    assert_eq!(failed["volume"]["os-vol-host-attr:host"], serde_json::Value::Null, "{failed}");
    for (d, node) in [(&a, "node-a"), (&b, "node-b"), (&c, "node-c")] {
        let files = d.volume_files("file-1").iter().filter(|n| n.starts_with("volume-")).count();
        assert_eq!(files, expected[node], "{node}'s volume files");
    }
    assert_eq!(a.store_count("SELECT COUNT(*) FROM handed_requests WHERE state <> 'done'"), 0);

    // Node b killed in the middle of a create it took from a (in zone "slow", which
    // only b has): its volumes stay listed, the create among them, a and c go on
    // serving, and a volume that fits only on a's pool (room freed there) is made
    // there whichever node takes it.
    let mid = a.create_volume(json!({"size": 1, "availability_zone": "slow"}));
    b.wait_volume(&mid, "on b's slow pool", |v| v["os-vol-host-attr:host"] == "node-b@slow#slow");
    std::thread::sleep(Duration::from_millis(300));
    b.kill9();
    assert_eq!(a.get(&format!("/volumes/{mid}")).json()["volume"]["status"], "creating");
    assert_eq!(placed(&c, "available")["node-b"], 33);
    let on_a = ids.iter().find(|id| {
        a.get(&format!("/volumes/{id}")).json()["volume"]["os-vol-host-attr:host"] == "node-a@file-1#file-1"
    });
    let on_a = on_a.unwrap().clone();
    assert_eq!(c.delete(&format!("/volumes/{on_a}")).status, 202);
    c.wait_gone(&on_a);
    let w = c.create_volume(json!({"size": 1, "name": "after-b"}));
    let made = c.wait_status(&w, "available");
    assert_eq!(made["os-vol-host-attr:host"], "node-a@file-1#file-1", "{made}");
    // b back: it settles the create it was making (not made: error, with the reason),
    // its volumes are there, and what is asked of it through another node runs.
    b.respawn();
    let settled = c.wait_volume(&mid, "settled by b", |v| v["status"] != "creating");
    assert_eq!(settled["status"], "error", "{settled}");
    assert!(b.log().contains(&format!("reconcile: volume {mid} was not created before hearthd stopped")));
    let on_b = ids.iter().find(|id| {
        c.get(&format!("/volumes/{id}")).json()["volume"]["os-vol-host-attr:host"] == "node-b@file-1#file-1"
    });
    let on_b = on_b.unwrap().clone();
    assert_eq!(c.delete(&format!("/volumes/{on_b}")).status, 202);
    c.wait_gone(&on_b);
    let mut left = expected;
    *left.get_mut("node-b").unwrap() -= 1;
    assert_eq!(placed(&a, "available"), left);
}

#[test]
fn a_fleet_of_three_carries_on_across_a_failover_of_its_store() {
    let (primary, replica, url) = replicated();
    let nodes: Vec<Arc<Daemon>> = ["node-a", "node-b", "node-c"].iter().map(|h| Arc::new(node(&url, h))).collect();
    let r = nodes[0]
        .put(&format!("/os-quota-sets/{}", common::PROJECT), json!({"quota_set": {"volumes": -1, "gigabytes": -1}}));
    assert_eq!(r.status, 200, "{}", r.text);
    // Creates keep arriving at every node (which place them across the fleet) while
    // the primary dies and the replica is promoted.
    let (accepted, _, refused) = creates_across_a_failover(&nodes, &primary, &replica);
    // Every acknowledged create finishes, on some node's pool; every node lists them all.
    let mut hosts = std::collections::BTreeSet::new();
    for id in &accepted {
        wait_available(&nodes[0], id);
        let v = nodes[0].get(&format!("/volumes/{id}")).json()["volume"].clone();
        hosts.insert(v["os-vol-host-attr:host"].as_str().unwrap().split('@').next().unwrap().to_string());
    }
    assert_eq!(hosts.len(), 3, "volumes were placed on {hosts:?} only");
    for d in &nodes {
        let listed = d.get("/volumes/detail?limit=1000").json();
        assert_eq!(listed["volumes"].as_array().unwrap().len(), accepted.len(), "{listed}");
        assert!(!d.log().contains("panicked"), "{}", d.log());
    }
    assert_eq!(nodes[0].store_count("SELECT COUNT(*) FROM volumes WHERE task IS NOT NULL"), 0);
    eprintln!("{} creates accepted by three nodes across the failover, {refused} refused with 503", accepted.len());
}

/// A create placed across the fleet waits on the other node without a backend slot:
/// creates handed to a node that does not take them (killed, its heartbeat still
/// fresh) do not hold up the accepting node's own work.
#[test]
fn creates_waiting_on_a_silent_node_hold_up_nothing_else() {
    let pg = Server::primary();
    pg.create_database("hearth");
    let url = format!("postgresql://hearth@127.0.0.1:{}/hearth", pg.port);
    let node = |host: &str, size_gb: u64| {
        let mut d = Daemon::start_with(&format!(
            "host = {host:?}\nrpc_response_timeout = 10\n[quota]\nquota_volumes = -1\nquota_gigabytes = -1\n\
             [backends.file-1]\ndriver = \"file\"\nsize_gb = {size_gb}\nmax_over_subscription_ratio = 1.0\n\
             volume_clear = \"none\"\n[database]\nconnection = {url:?}\n"
        ));
        d.database = Some(url.clone());
        d
    };
    let a = node("node-a", 20);
    let mine = a.create_volume(json!({"size": 1}));
    a.wait_status(&mine, "available");
    // Node b's pool is the roomier: a hands creates to b first.
    let mut b = node("node-b", 200);
    let deadline = Instant::now() + Duration::from_secs(60);
    while !a.get("/scheduler-stats/get_pools").text.contains("node-b@file-1#file-1") {
        assert!(Instant::now() < deadline, "node a never saw node b's pool");
        std::thread::sleep(Duration::from_millis(100));
    }
    b.kill9();
    // More creates than a has backend slots (8): eight at a time wait for b to take
    // them (as many as run at once), the others wait their turn.
    let ids: Vec<String> = (0..12).map(|_| a.create_volume(json!({"size": 1}))).collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    while a.log().matches("handed to node node-b").count() < 8 {
        assert!(Instant::now() < deadline, "{}", a.log());
        std::thread::sleep(Duration::from_millis(50));
    }
    // a's own work goes on meanwhile: its volume is deleted while every create still
    // waits for b (10 s, rpc_response_timeout).
    assert_eq!(a.delete(&format!("/volumes/{mine}")).status, 202);
    a.wait_gone(&mine);
    for id in &ids {
        let v = a.get(&format!("/volumes/{id}")).json()["volume"].clone();
        assert!(v["status"] == "creating" && v["os-vol-host-attr:host"].is_null(), "{v}\n{}", a.log());
    }
    // b did not take them: each is placed on a's pool after the timeout.
    for id in &ids {
        let v = a.wait_status(id, "available");
        assert_eq!(v["os-vol-host-attr:host"], "node-a@file-1#file-1", "{v}");
    }
}

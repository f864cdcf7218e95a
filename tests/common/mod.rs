//! Test harness: the real `hearthd` binary on an ephemeral port with a temporary data
//! directory, and a small HTTP/1.1 client that can also send what real clients never
//! would (malformed bodies, wrong media types, oversized requests).
//!
//! The same scenarios run against any backend: `HEARTH_TEST_BACKENDS` may name a TOML
//! file whose `[backends.*]` tables replace the default file backend (the VM tier
//! points it at LVM volume groups).
//!
//! With `HEARTH_TEST_POSTGRES` set to a PostgreSQL server's URL (scripts/postgres/
//! server.sh), each hearthd started here gets a new database of its own on that server
//! as its store (`[database] connection`) instead of the SQLite file; tests that read
//! the SQLite file themselves say so with [`sqlite_only`] and are skipped.

#![allow(dead_code)]

pub mod accounts;
pub mod swift;
pub mod xfs;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The project most tests act in.
pub const PROJECT: &str = "ab1d2e3f4a5b4c6d8e9f0a1b2c3d4e5f";

/// A response.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub text: String,
}

impl Resp {
    /// The body as JSON (panics with the body when it is not).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }

    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// Assert a Cinder fault body with this code and fault name; returns its message.
    pub fn fault(&self, code: u16, name: &str) -> String {
        assert_eq!(self.status, code, "expected {code} {name}, got {}: {}", self.status, self.text);
        let v = self.json();
        let f = &v[name];
        assert_eq!(f["code"], code, "fault body: {}", self.text);
        let msg = f["message"].as_str().unwrap_or_else(|| panic!("no message: {}", self.text)).to_string();
        assert!(msg.len() > 10 && msg.ends_with(['.', ']', ')']), "message is not a sentence: {msg:?}");
        msg
    }
}

/// Deterministic bytes (xorshift), different for each `seed`: test data that
/// neither compresses nor deduplicates.
pub fn pattern(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// A running hearthd.
pub struct Daemon {
    child: Option<Child>,
    pub addr: String,
    pub dir: tempfile::TempDir,
    pub config_path: PathBuf,
    stderr_path: PathBuf,
    rust_log: String,
    /// Extra environment of the process (kept across restarts; change it between).
    pub env: Vec<(String, String)>,
    /// The PostgreSQL database of the store, when it is one (`HEARTH_TEST_POSTGRES`).
    pub database: Option<String>,
}

/// Whether the daemons of this run keep their store in PostgreSQL (`HEARTH_TEST_POSTGRES`).
pub fn on_postgres() -> bool {
    std::env::var_os("HEARTH_TEST_POSTGRES").is_some()
}

/// For a test that reads or damages the SQLite file itself: `true` (and a line
/// saying so) when the store is PostgreSQL, for the test to return early.
pub fn sqlite_only(what: &str) -> bool {
    if on_postgres() {
        eprintln!("skipped on PostgreSQL: {what} is about the SQLite store file");
        return true;
    }
    false
}

/// A new, empty database on the `HEARTH_TEST_POSTGRES` server, as a URL; `None`
/// without one.
pub fn new_postgres_database() -> Option<String> {
    let admin = std::env::var("HEARTH_TEST_POSTGRES").ok()?;
    let name = format!("hearth_{}", uuid_like());
    let mut client = postgres::Client::connect(&admin, postgres::NoTls)
        .unwrap_or_else(|e| panic!("HEARTH_TEST_POSTGRES={admin}: {e}"));
    client
        .batch_execute(&format!(
            "CREATE DATABASE {name} TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C'"
        ))
        .unwrap();
    let base = admin.rsplit_once('/').map(|(b, _)| b).unwrap_or(&admin);
    Some(format!("{base}/{name}"))
}

/// A random lowercase hex name.
fn uuid_like() -> String {
    let mut b = [0u8; 12];
    getrandom::fill(&mut b).unwrap();
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Backends of the scenario: the file default, or what `HEARTH_TEST_BACKENDS` names.
pub fn backends_toml() -> String {
    match std::env::var("HEARTH_TEST_BACKENDS") {
        Ok(path) => std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}")),
        Err(_) => "[backends.file-1]\ndriver = \"file\"\nvolume_backend_name = \"file\"\nsize_gb = 100\n".into(),
    }
}

impl Daemon {
    /// Start with the scenario's backends and default settings.
    pub fn start() -> Daemon {
        Daemon::start_with(&backends_toml())
    }

    /// Start with this configuration text (data_dir and listen are set by the harness).
    pub fn start_with(config: &str) -> Daemon {
        Daemon::start_logging(config, "info")
    }

    /// Start with this configuration text and log filter (`RUST_LOG`).
    pub fn start_logging(config: &str, rust_log: &str) -> Daemon {
        Daemon::start_prepared(config, rust_log, |_| {})
    }

    /// Start after `prepare` has been given the (not yet made) data directory's path
    /// (to mount a filesystem there, say).
    pub fn start_prepared(config: &str, rust_log: &str, prepare: impl FnOnce(&Path)) -> Daemon {
        Daemon::start_full(config, rust_log, &[], prepare)
    }

    /// Start with these extra environment variables (`HEARTH_FAULTS`, say).
    pub fn start_env(config: &str, rust_log: &str, env: &[(&str, &str)]) -> Daemon {
        Daemon::start_full(config, rust_log, env, |_| {})
    }

    fn start_full(config: &str, rust_log: &str, env: &[(&str, &str)], prepare: impl FnOnce(&Path)) -> Daemon {
        let dir = tempfile::tempdir().unwrap();
        prepare(&dir.path().join("data"));
        let config_path = dir.path().join("hearth.toml");
        let mut text = format!("data_dir = {:?}\n{config}", dir.path().join("data").display().to_string());
        // A configuration that names its own database keeps it.
        let database = if config.contains("[database]") { None } else { new_postgres_database() };
        if let Some(url) = &database {
            text.push_str(&format!("\n[database]\nconnection = {url:?}\n"));
        }
        std::fs::write(&config_path, text).unwrap();
        let stderr_path = dir.path().join("hearthd.log");
        let env = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let mut d = Daemon {
            child: None,
            addr: String::new(),
            dir,
            config_path,
            stderr_path,
            rust_log: rust_log.into(),
            env,
            database,
        };
        d.spawn();
        d
    }

    /// `f` on a connection to this daemon's store (the SQLite file, or its PostgreSQL
    /// database), through hearth's own database layer: each statement is its own
    /// transaction.
    pub fn with_store<T>(&self, f: impl FnOnce(&hearth::store::db::Connection<'_>) -> T) -> T {
        match &self.database {
            Some(url) => {
                let target = hearth::store::pg_target::PgTarget::new(url, None).unwrap();
                let mut conn = hearth::store::db::PgConn::connect(&target).unwrap();
                f(&hearth::store::db::Connection::pg(&mut conn))
            }
            None => {
                let conn = rusqlite::Connection::open(self.data_dir().join("hearth.db")).unwrap();
                conn.busy_timeout(Duration::from_secs(30)).unwrap();
                f(&hearth::store::db::Connection::sqlite(&conn))
            }
        }
    }

    /// One integer the store answers `sql` with (a count, say).
    pub fn store_count(&self, sql: &str) -> i64 {
        self.with_store(|c| c.query_row(sql, [], |r| r.get(0)).unwrap_or_else(|e| panic!("{sql}: {e}")))
    }

    /// The data directory.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.stderr_path).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_hearthd"))
            .arg("--config")
            .arg(&self.config_path)
            .args(["--listen", "127.0.0.1:0", "--stop-grace", "5"])
            .env("RUST_LOG", &self.rust_log)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("starting hearthd");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("hearthd: listening on http://") {
                    let _ = tx.send(url.to_string());
                }
            }
        });
        self.child = Some(child);
        match rx.recv_timeout(Duration::from_secs(180)) {
            Ok(addr) => self.addr = addr,
            Err(e) => {
                let status = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten());
                panic!("hearthd did not become ready ({e}; exit status {status:?}):\n{}", self.log())
            }
        }
    }

    /// hearthd's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// The daemon's process id.
    pub fn pid(&self) -> i32 {
        self.child.as_ref().map(|c| c.id() as i32).unwrap_or(0)
    }

    /// SIGKILL the daemon (no chance to clean up).
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM and wait; returns whether it exited cleanly.
    pub fn stop(&mut self) -> bool {
        let Some(mut c) = self.child.take() else {
            return true;
        };
        let pid = nix::unistd::Pid::from_raw(c.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(Some(status)) = c.try_wait() {
                return status.success();
            }
            if Instant::now() > deadline {
                let _ = c.kill();
                let _ = c.wait();
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Start again on the same data directory and configuration.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    /// Start again after a SIGKILL.
    pub fn respawn(&mut self) {
        self.spawn();
    }

    /// One request. `path` is absolute (`/v3/...`).
    pub fn raw(&self, method: &str, path: &str, body: Option<&[u8]>, headers: &[(&str, &str)]) -> Resp {
        let mv = headers.iter().find(|(k, _)| k.eq_ignore_ascii_case("OpenStack-API-Version")).map(|(_, v)| *v);
        let mut s = TcpStream::connect(&self.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n", self.addr);
        let mut has_ct = false;
        for (k, v) in headers {
            has_ct |= k.eq_ignore_ascii_case("content-type");
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        if let Some(b) = body {
            if !has_ct {
                req.push_str("Content-Type: application/json\r\n");
            }
            req.push_str(&format!("Content-Length: {}\r\n", b.len()));
        }
        req.push_str("\r\n");
        s.write_all(req.as_bytes()).unwrap();
        if let Some(b) = body {
            // The server may answer (413) before reading everything.
            let _ = s.write_all(b);
        }
        let mut raw = Vec::new();
        let _ = s.read_to_end(&mut raw);
        let text = String::from_utf8_lossy(&raw).into_owned();
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or_else(|| panic!("bad response: {text:?}"));
        let mut lines = head.lines();
        let status: u16 = lines.next().unwrap().split_whitespace().nth(1).unwrap().parse().unwrap();
        let headers = lines
            .filter_map(|l| l.split_once(':').map(|(k, v)| (k.trim().to_string(), v.trim().to_string())))
            .collect();
        let resp = Resp { status, headers, text: body.to_string() };
        record(method, path, mv, &resp);
        resp
    }

    /// A request in `PROJECT` at microversion `mv` (`None`: no header).
    pub fn call(&self, method: &str, path: &str, body: Option<Value>, mv: Option<&str>) -> Resp {
        self.call_in(PROJECT, method, path, body, mv)
    }

    /// A request in `project` (noauth: the URL names it; the user is `demo`).
    pub fn call_in(&self, project: &str, method: &str, path: &str, body: Option<Value>, mv: Option<&str>) -> Resp {
        let full = format!("/v3/{project}{path}");
        let body = body.map(|b| b.to_string());
        let mv_header;
        let mut headers = vec![("X-Auth-Token", "demo:".to_string() + project)];
        if let Some(v) = mv {
            mv_header = format!("volume {v}");
            headers.push(("OpenStack-API-Version", mv_header.clone()));
        }
        let h: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        self.raw(method, &full, body.as_deref().map(str::as_bytes), &h)
    }

    pub fn get(&self, path: &str) -> Resp {
        self.call("GET", path, None, Some(MV))
    }

    pub fn post(&self, path: &str, body: Value) -> Resp {
        self.call("POST", path, Some(body), Some(MV))
    }

    pub fn put(&self, path: &str, body: Value) -> Resp {
        self.call("PUT", path, Some(body), Some(MV))
    }

    pub fn delete(&self, path: &str) -> Resp {
        self.call("DELETE", path, None, Some(MV))
    }

    /// Create a volume and return its id (202 asserted).
    pub fn create_volume(&self, body: Value) -> String {
        let r = self.post("/volumes", serde_json::json!({ "volume": body }));
        assert_eq!(r.status, 202, "{}", r.text);
        r.json()["volume"]["id"].as_str().unwrap().to_string()
    }

    /// Poll a volume until `done` holds for it (bounded), returning it.
    pub fn wait_volume(&self, id: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(300);
        loop {
            let r = self.get(&format!("/volumes/{id}"));
            if r.status == 200 && done(&r.json()["volume"]) {
                return r.json()["volume"].clone();
            }
            if r.status == 200 && r.json()["volume"]["status"] == "error" && what != "settled" {
                panic!("volume {id} went to error while waiting for {what}: {}\n{}", r.text, self.log());
            }
            if Instant::now() > deadline {
                panic!("volume {id} never became {what}: {} {}\n{}", r.status, r.text, self.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Poll until a volume has this status.
    pub fn wait_status(&self, id: &str, status: &str) -> Value {
        self.wait_volume(id, status, |v| v["status"] == status)
    }

    /// Poll until a volume is gone (404).
    pub fn wait_gone(&self, id: &str) {
        let deadline = Instant::now() + Duration::from_secs(300);
        while self.get(&format!("/volumes/{id}")).status != 404 {
            assert!(Instant::now() < deadline, "volume {id} was never deleted\n{}", self.log());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Where a volume's data is on this host: the LV when the scenario runs on LVM
    /// (`HEARTH_TEST_VG`), else the file of the file backend `file-1`.
    pub fn volume_path(&self, id: &str) -> PathBuf {
        match std::env::var("HEARTH_TEST_VG") {
            Ok(vg) => PathBuf::from(format!("/dev/{vg}/volume-{id}")),
            Err(_) => self.data_dir().join("volumes/file-1").join(format!("volume-{id}")),
        }
    }

    /// Files (volumes) in a file backend's directory, hearth's names only.
    pub fn volume_files(&self, backend: &str) -> Vec<String> {
        let dir = self.data_dir().join("volumes").join(backend);
        let mut names: Vec<String> = std::fs::read_dir(&dir)
            .map(|it| it.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect())
            .unwrap_or_default();
        names.sort();
        names
    }
}

/// Remove every LV of the scenario's volume groups (VM tier only: the groups belong
/// to the tests, which run one at a time there).
pub fn clean_volume_groups() {
    for var in ["HEARTH_TEST_VG", "HEARTH_TEST_VG2"] {
        if let Ok(vg) = std::env::var(var) {
            let _ = std::process::Command::new("lvremove").args(["-f", "-y", &vg]).output();
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let clean = self.stop();
        clean_volume_groups();
        let log = self.log();
        if std::thread::panicking() {
            // The test failed: what hearthd said last is what explains it (its log
            // goes with the temporary directory).
            let tail: Vec<&str> = log.lines().rev().take(80).collect();
            eprintln!("hearthd's last log lines:");
            for line in tail.iter().rev() {
                eprintln!("  {line}");
            }
        } else {
            assert!(!log.contains("panicked"), "hearthd panicked:\n{log}");
            assert!(clean, "hearthd did not exit cleanly on SIGTERM:\n{log}");
        }
    }
}

/// The microversion the helpers send.
pub const MV: &str = "latest";

/// The size of a file or block device, by seeking to its end.
pub fn device_len(path: &Path) -> u64 {
    use std::io::Seek;
    let mut f = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    f.seek(std::io::SeekFrom::End(0)).unwrap()
}

/// Bytes of test data to write where a scenario wants "a lot": less in the VM tier,
/// where every byte goes through an emulated disk.
pub fn bulk_bytes(normal: usize) -> usize {
    if std::env::var_os("HEARTH_TEST_LIGHT").is_some() {
        (normal / 8).max(1 << 20)
    } else {
        normal
    }
}

/// A request that may fail at the connection (the daemon was killed): `None` then.
pub fn try_call(d: &Daemon, method: &str, path: &str, body: Value) -> Option<Resp> {
    try_call_in(d, PROJECT, method, path, body)
}

/// [`try_call`] in `project`.
pub fn try_call_in(d: &Daemon, project: &str, method: &str, path: &str, body: Value) -> Option<Resp> {
    try_request(d, project, method, path, body).filter(|r| r.status < 500)
}

/// A request that may fail at the connection (the daemon was killed): `None` then;
/// every answer, 5xx included, otherwise.
pub fn try_request(d: &Daemon, project: &str, method: &str, path: &str, body: Value) -> Option<Resp> {
    let addr = d.addr.clone();
    let body = if body.is_null() { None } else { Some(body.to_string()) };
    let full = format!("/v3/{project}{path}");
    let method = method.to_string();
    std::panic::catch_unwind(move || {
        let mut s = TcpStream::connect(&addr).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
        let mut req = format!(
            "{method} {full} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nOpenStack-API-Version: volume latest\r\n\
             X-Auth-Token: demo:{project}\r\n"
        );
        if let Some(b) = &body {
            req.push_str(&format!("Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{b}", b.len()));
        } else {
            req.push_str("\r\n");
        }
        s.write_all(req.as_bytes()).ok()?;
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).ok()?;
        let text = String::from_utf8_lossy(&raw).into_owned();
        let (head, body) = text.split_once("\r\n\r\n")?;
        let mut lines = head.lines();
        let status: u16 = lines.next()?.split_whitespace().nth(1)?.parse().ok()?;
        let headers = lines
            .filter_map(|l| l.split_once(':').map(|(k, v)| (k.trim().to_string(), v.trim().to_string())))
            .collect();
        let resp = Resp { status, headers, text: body.to_string() };
        record(&method, &full, Some("volume latest"), &resp);
        Some(resp)
    })
    .ok()
    .flatten()
}

/// With `HEARTH_RECORD_RESPONSES=DIR`, append the exchange as one JSON line to
/// `DIR/<pid>.jsonl` (tests/openapi/check-recorded.py holds them to docs/openapi.json).
/// One lock and one write per line: the test threads' lines do not interleave.
fn record(method: &str, path: &str, mv: Option<&str>, resp: &Resp) {
    static LOCK: Mutex<()> = Mutex::new(());
    let Some(dir) = std::env::var_os("HEARTH_RECORD_RESPONSES") else {
        return;
    };
    let mut line = serde_json::json!({
        "method": method,
        "path": path,
        "status": resp.status,
        "content_type": resp.header("content-type"),
        "body": resp.text,
        "mv": mv,
    })
    .to_string();
    line.push('\n');
    let file = Path::new(&dir).join(format!("{}.jsonl", std::process::id()));
    let _guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&file)
        .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    f.write_all(line.as_bytes()).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
}

/// The minor number of the newest microversion the daemon claims.
pub fn max_minor(d: &Daemon) -> u16 {
    let v = d.raw("GET", "/", None, &[]).json();
    v["versions"][0]["version"].as_str().unwrap().split('.').nth(1).unwrap().parse().unwrap()
}

/// Run a file path through `Path` for display.
pub fn show(p: &Path) -> String {
    p.display().to_string()
}

/// hearth's own view of a configfs tree rooted at `root` (the real one is
/// `/sys/kernel/config/target`): to list, clear and plant exports. File-backed, so
/// that a planted export opens no block device; listing sees both kinds.
pub fn lio_at(root: &Path) -> hearth::export::lio::LioExport {
    use hearth::export::lio::{Backstore, LioExport, LioSettings, Portal, DEFAULT_TARGET_PREFIX};
    LioExport::new(LioSettings {
        root: root.to_path_buf(),
        target_prefix: DEFAULT_TARGET_PREFIX.into(),
        portals: vec![Portal { ip: "127.0.0.1".parse().unwrap(), port: 3260 }],
        backstore: Backstore::Fileio,
    })
}

//! Backups over HTTP on the posix and S3 targets: a full backup, a 1% change and an
//! incremental one (few new chunks), restores into new and existing volumes with the
//! bytes of the source at backup time, export and import into a fresh hearth on the
//! same repository, a corrupted chunk caught by verify and by restore, in-use volumes
//! with `force`, quotas, who may do what, the views of each microversion, and SIGKILL
//! amid backups, restores and deletes.
//!
//! The volumes are on the scenario's backends (`common::backends_toml`): the file
//! backend on the host, thin and thick LVM in the VM tier, where the S3 scenario uses
//! the host's Swift (`HEARTH_TEST_OBJECTSTORE`, see `common::swift`) and where data
//! written and hashed is kept small (`HEARTH_TEST_LIGHT`: every byte of a volume goes
//! through an emulated disk and CPU).

mod common;

use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::accounts::Accounts;
use common::{Daemon, Resp, PROJECT};
use serde_json::{json, Value};

/// The admin project (`admin_projects`): PROJECT's callers are plain members.
const ADMIN: &str = "admin";
const OTHER: &str = "0a1b2c3d4e5f40718293a4b5c6d7e8f9";
const INSTANCE: &str = "7f0e6f6c-1111-4222-8333-944455556666";
const MIB: u64 = 1 << 20;
static T0: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
macro_rules! step {
    ($m:expr) => {
        eprintln!("STEP {:>7.1}s {}", T0.get_or_init(Instant::now).elapsed().as_secs_f64(), $m)
    };
}

fn config(extra: &str) -> String {
    format!(
        "admin_projects = [\"{ADMIN}\"]\n{extra}\n[quota]\nquota_volumes = 50\nquota_gigabytes = 1000\n\n{}",
        common::backends_toml()
    )
}

fn daemon() -> Daemon {
    Daemon::start_with(&config(""))
}

/// A request as the admin.
fn admin(d: &Daemon, method: &str, path: &str, body: Option<Value>) -> Resp {
    d.call_in(ADMIN, method, path, body, Some(common::MV))
}

/// Deterministic bytes, different for each `seed`.
fn pattern(seed: u64, len: usize) -> Vec<u8> {
    common::pattern(seed, len)
}

fn write_at(path: &Path, offset: u64, data: &[u8]) {
    let f = std::fs::OpenOptions::new().write(true).open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    f.write_all_at(data, offset).unwrap();
    f.sync_all().unwrap();
}

/// A fingerprint of the first `len` bytes (whole MiBs) of a file or block device: the
/// SHA-256 (coreutils' `sha256sum`, fed through a pipe) of the offset and bytes of
/// each MiB that is not all zeroes, so equal fingerprints mean equal bytes. A zero MiB
/// (most of a test volume) costs a read and a `memcmp`, not a hash, and the reads
/// bypass the page cache (`O_DIRECT`, when the file system has it): in the emulated VM
/// tier, `head -c 1G | sha256sum` took 13-20 s per GiB, a buffered read alone 5-8 s,
/// a direct one 0.5 s.
fn sha256(path: &Path, len: u64) -> String {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    assert!(len.is_multiple_of(MIB), "whole MiBs only: {len}");
    assert!(common::device_len(path) >= len, "{} is shorter than {len} bytes", path.display());
    let direct = nix::fcntl::OFlag::O_DIRECT.bits();
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(direct)
        .open(path)
        .or_else(|_| std::fs::File::open(path))
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut child = std::process::Command::new("sha256sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("running sha256sum");
    let mut sink = child.stdin.take().unwrap();
    let zeroes = vec![0u8; MIB as usize];
    // O_DIRECT wants an aligned buffer.
    let mut raw = vec![0u8; (MIB + 4096) as usize];
    let skip = raw.as_ptr().align_offset(4096);
    let buf = &mut raw[skip..skip + MIB as usize];
    for at in (0..len).step_by(MIB as usize) {
        f.read_exact_at(buf, at).unwrap_or_else(|e| panic!("{} at {at}: {e}", path.display()));
        if buf[..] != zeroes[..] {
            sink.write_all(&at.to_le_bytes()).unwrap();
            sink.write_all(buf).unwrap();
        }
    }
    drop(sink);
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "sha256sum failed");
    String::from_utf8_lossy(&out.stdout).split_whitespace().next().unwrap().to_string()
}

/// A 1 GiB volume holding 12 pieces of data spread over it (4 MiB each, 1 MiB with
/// `HEARTH_TEST_LIGHT`); its id.
fn volume_with_data(d: &Daemon, name: &str, seed: u64) -> String {
    let v = d.create_volume(json!({"size": 1, "name": name, "metadata": {"owner": name}}));
    d.wait_status(&v, "available");
    let path = d.volume_path(&v);
    let piece = common::bulk_bytes(4 * MIB as usize);
    for i in 0..12u64 {
        write_at(&path, i * 80 * MIB + 4096, &pattern(seed + i, piece));
    }
    v
}

/// A volume of `gib` GiB holding `pieces` pieces of 8 MiB of data (an eighth of them
/// with `HEARTH_TEST_LIGHT`) spread over it; its id.
fn big_volume(d: &Daemon, gib: u64, pieces: u64, seed: u64) -> String {
    let v = d.create_volume(json!({"size": gib}));
    d.wait_status(&v, "available");
    let path = d.volume_path(&v);
    let pieces = (common::bulk_bytes((pieces * 8 * MIB) as usize) as u64 / (8 * MIB)).max(1);
    let stride = (gib << 30) / pieces;
    for i in 0..pieces {
        write_at(&path, i * stride, &pattern(seed * 1000 + i, 8 * MIB as usize));
    }
    v
}

/// Wait up to `limit` for a line of hearthd's log that `matches`; whether one came.
fn wait_logged(d: &Daemon, limit: Duration, matches: impl Fn(&str) -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if d.log().lines().any(&matches) {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn create_backup(d: &Daemon, body: Value) -> String {
    let r = d.post("/backups", json!({ "backup": body }));
    assert_eq!(r.status, 202, "{}", r.text);
    r.json()["backup"]["id"].as_str().unwrap().to_string()
}

fn backup(d: &Daemon, id: &str) -> Value {
    let r = admin(d, "GET", &format!("/backups/{id}"), None);
    assert_eq!(r.status, 200, "{}", r.text);
    r.json()["backup"].clone()
}

/// Poll a backup until its status is `status` (an unexpected error fails at once).
fn wait_backup(d: &Daemon, id: &str, status: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let b = backup(d, id);
        if b["status"] == status {
            return b;
        }
        if b["status"] == "error" && status != "error" {
            panic!("backup {id} went to error while waiting for {status}: {b}\n{}", d.log());
        }
        assert!(Instant::now() < deadline, "backup {id} never became {status}: {b}\n{}", d.log());
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn wait_backup_gone(d: &Daemon, id: &str) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while admin(d, "GET", &format!("/backups/{id}"), None).status != 404 {
        assert!(Instant::now() < deadline, "backup {id} was never deleted\n{}", d.log());
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// What the repository reported when the backup finished (the record's `stats`).
fn stats(d: &Daemon, id: &str) -> Value {
    let s: String =
        d.with_store(|conn| conn.query_row("SELECT stats FROM backups WHERE id = ?1", [id], |r| r.get(0)).unwrap());
    serde_json::from_str(&s).unwrap()
}

/// The repository's chunk files.
fn chunk_files(repo: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(dirs) = std::fs::read_dir(repo.join("chunks")) else { return out };
    for d in dirs.flatten() {
        for f in std::fs::read_dir(d.path()).into_iter().flatten().flatten() {
            if !f.file_name().to_string_lossy().starts_with('.') {
                out.push(f.path());
            }
        }
    }
    out.sort();
    out
}

fn restore(d: &Daemon, id: &str, body: Value) -> Value {
    let r = d.post(&format!("/backups/{id}/restore"), json!({ "restore": body }));
    assert_eq!(r.status, 202, "{}", r.text);
    r.json()["restore"].clone()
}

/// Wait for the log to say the repository's chunks were collected `n` times.
fn wait_gc(d: &Daemon, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while d.log().matches("backup repository gc: GcReport").count() < n {
        assert!(Instant::now() < deadline, "no gc ran:\n{}", d.log());
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The whole scenario of the issue on the posix target.
#[test]
fn full_incremental_restore_and_delete() {
    let d = daemon();
    step!("let d = daemon();");
    let repo = d.data_dir().join("backups");
    step!("let repo = d.data_dir().join(\"backups\");");
    scenario(&d, &|| chunk_files(&repo).len());
}

/// The same scenario on the S3 target, against a real object store (OpenStack Swift
/// with s3api, started for the test).
#[test]
fn full_incremental_restore_and_delete_on_s3() {
    use hearth::backup::Target;
    let swift = common::swift::Swift::start();
    step!("let swift = common::swift::Swift::start();");
    let d = Daemon::start_with(&config(&swift.config()));
    step!("let d = Daemon::start_with(&config(&swift.config()));");
    let target = swift.target();
    step!("let target = swift.target();");
    let r = std::process::Command::new(env!("CARGO_BIN_EXE_hearthd"))
        .args(["--config", d.config_path.to_str().unwrap(), "check-config"])
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&r.stdout);
    step!("let out = String::from_utf8_lossy(&r.stdout);");
    assert!(r.status.success() && out.contains("backup_driver S3: ok, repository s3:"), "{out}");
    step!("assert!(r.status.success() && out.contains(\"backup_driver S3: ok, repo");
    scenario(&d, &|| target.list("chunks/").unwrap().len());
    assert!(target.exists("config").unwrap(), "the repository lives in the bucket");
    step!("assert!(target.exists(\"config\").unwrap(), \"the repository lives in the");
}

/// Full backup, a 1% change, an incremental backup, the source deleted, the
/// incremental restored into a new volume and into an existing one (a too small one
/// refused), parent deletion refused while the child lives; once every backup is
/// deleted the repository holds no chunk (`chunks` counts them).
fn scenario(d: &Daemon, chunks: &dyn Fn() -> usize) {
    let v = volume_with_data(d, "src", 1);
    step!("let v = volume_with_data(d, \"src\", 1);");
    let path = d.volume_path(&v);
    step!("let path = d.volume_path(&v);");
    let full_sha = sha256(&path, 1 << 30);
    step!("let full_sha = sha256(&path, 1 << 30);");

    let full = create_backup(d, json!({"volume_id": v, "name": "full", "description": "first"}));
    step!("let full = create_backup(d, json!((\"volume_id\": v, \"name\": \"full\", \"de");
    // The volume is backing-up meanwhile, then available again.
    let b = wait_backup(d, &full, "available");
    step!("let b = wait_backup(d, &full, \"available\");");
    assert_eq!(d.wait_status(&v, "available")["status"], "available");
    step!("assert_eq!(d.wait_status(&v, \"available\")[\"status\"], \"available\");");
    assert_eq!(b["is_incremental"], false);
    step!("assert_eq!(b[\"is_incremental\"], false);");
    assert_eq!(b["has_dependent_backups"], false);
    step!("assert_eq!(b[\"has_dependent_backups\"], false);");
    assert_eq!(b["size"], 1);
    step!("assert_eq!(b[\"size\"], 1);");
    assert_eq!(b["volume_id"], v.as_str());
    step!("assert_eq!(b[\"volume_id\"], v.as_str());");
    let full_objects = b["object_count"].as_u64().unwrap();
    step!("let full_objects = b[\"object_count\"].as_u64().unwrap();");
    assert!(full_objects >= 12, "{b}");
    step!("assert!(full_objects >= 12, \"(b)\");");
    let s = stats(d, &full);
    step!("let s = stats(d, &full);");
    assert_eq!(s["chunk_count"], full_objects);
    step!("assert_eq!(s[\"chunk_count\"], full_objects);");
    assert!(chunks() >= 12, "the repository holds the chunks");
    step!("assert!(chunks() >= 12, \"the repository holds the chunks\");");

    // Change ~1% of the volume: three 4 KiB writes in three chunks, one of them where
    // the volume had no data.
    for (i, off) in [0u64, 500 * MIB, 1000 * MIB].iter().enumerate() {
        write_at(&path, *off, &pattern(100 + i as u64, 4096));
    }
    let incr_sha = sha256(&path, 1 << 30);
    step!("let incr_sha = sha256(&path, 1 << 30);");
    assert_ne!(incr_sha, full_sha);
    step!("assert_ne!(incr_sha, full_sha);");
    let incr = create_backup(d, json!({"volume_id": v, "name": "incr", "incremental": true}));
    step!("let incr = create_backup(d, json!((\"volume_id\": v, \"name\": \"incr\", \"in");
    let b = wait_backup(d, &incr, "available");
    step!("let b = wait_backup(d, &incr, \"available\");");
    assert_eq!(b["is_incremental"], true);
    step!("assert_eq!(b[\"is_incremental\"], true);");
    assert_eq!(backup(d, &full)["has_dependent_backups"], true);
    step!("assert_eq!(backup(d, &full)[\"has_dependent_backups\"], true);");
    let s = stats(d, &incr);
    step!("let s = stats(d, &incr);");
    let new_chunks = s["new_chunks"].as_u64().unwrap();
    step!("let new_chunks = s[\"new_chunks\"].as_u64().unwrap();");
    assert!((1..=3).contains(&new_chunks), "an incremental after a 1% change stores few chunks: {s}");
    step!("assert!((1..=3).contains(&new_chunks), \"an incremental after a 1% chan");
    assert!(b["object_count"].as_u64().unwrap() >= full_objects, "{b}");
    step!("assert!(b[\"object_count\"].as_u64().unwrap() >= full_objects, \"(b)\");");
    println!("full: {full_objects} chunks; incremental: {s}");

    // Lists, filters and the detail view.
    let l = d.get("/backups").json();
    step!("let l = d.get(\"/backups\").json();");
    assert_eq!(l["backups"].as_array().unwrap().len(), 2);
    step!("assert_eq!(l[\"backups\"].as_array().unwrap().len(), 2);");
    assert_eq!(l["backups"][0].as_object().unwrap().len(), 3, "summary view: {l}");
    step!("assert_eq!(l[\"backups\"][0].as_object().unwrap().len(), 3, \"summary vie");
    let l = d.get("/backups/detail?name=incr").json();
    step!("let l = d.get(\"/backups/detail?name=incr\").json();");
    assert_eq!(l["backups"].as_array().unwrap().len(), 1);
    step!("assert_eq!(l[\"backups\"].as_array().unwrap().len(), 1);");
    assert_eq!(l["backups"][0]["id"], incr.as_str());
    step!("assert_eq!(l[\"backups\"][0][\"id\"], incr.as_str());");
    let l = d.get(&format!("/backups/detail?volume_id={v}&status=available&with_count=true")).json();
    step!("let l = d.get(&format!(\"/backups/detail?volume_id=(v)&status=available");
    assert_eq!(l["count"], 2);
    step!("assert_eq!(l[\"count\"], 2);");
    d.get("/backups/detail?colour=red").fault(400, "badRequest");
    step!("d.get(\"/backups/detail?colour=red\").fault(400, \"badRequest\");");
    assert_eq!(d.call("GET", "/backups?colour=red", None, Some("3.30")).status, 200);
    step!("assert_eq!(d.call(\"GET\", \"/backups?colour=red\", None, Some(\"3.30\")).st");
    let l = d.get("/backups/detail?limit=1").json();
    step!("let l = d.get(\"/backups/detail?limit=1\").json();");
    assert!(l["backups_links"][0]["href"].as_str().unwrap().contains("marker="), "{l}");
    step!("assert!(l[\"backups_links\"][0][\"href\"].as_str().unwrap().contains(\"mark");
    let p = d.get(&format!("/backups/{incr}?with_progress=true")).json();
    step!("let p = d.get(&format!(\"/backups/(incr)?with_progress=true\")).json();");
    assert_eq!(p["backup"]["progress"], "100%");
    step!("assert_eq!(p[\"backup\"][\"progress\"], \"100%\");");

    // A parent with a dependent incremental cannot go.
    let m = d.delete(&format!("/backups/{full}")).fault(400, "badRequest");
    step!("let m = d.delete(&format!(\"/backups/(full)\")).fault(400, \"badRequest\")");
    assert!(m.contains("Incremental backups exist"), "{m}");
    step!("assert!(m.contains(\"Incremental backups exist\"), \"(m)\");");

    // The source goes; the incremental restores alone into a new volume.
    assert_eq!(d.delete(&format!("/volumes/{v}")).status, 202);
    step!("assert_eq!(d.delete(&format!(\"/volumes/(v)\")).status, 202);");
    d.wait_gone(&v);
    step!("d.wait_gone(&v);");
    let r = restore(d, &incr, json!(null));
    step!("let r = restore(d, &incr, json!(null));");
    assert_eq!(r["backup_id"], incr.as_str());
    step!("assert_eq!(r[\"backup_id\"], incr.as_str());");
    assert_eq!(r["volume_name"], format!("restore_backup_{incr}"));
    step!("assert_eq!(r[\"volume_name\"], format!(\"restore_backup_(incr)\"));");
    let nv = r["volume_id"].as_str().unwrap().to_string();
    step!("let nv = r[\"volume_id\"].as_str().unwrap().to_string();");
    let vol = d.wait_status(&nv, "available");
    step!("let vol = d.wait_status(&nv, \"available\");");
    assert_eq!(wait_backup(d, &incr, "available")["status"], "available");
    step!("assert_eq!(wait_backup(d, &incr, \"available\")[\"status\"], \"available\");");
    assert_eq!(sha256(&d.volume_path(&nv), 1 << 30), incr_sha, "the restore holds the source at backup time");
    step!("assert_eq!(sha256(&d.volume_path(&nv), 1 << 30), incr_sha, \"the restor");
    // As Cinder: the source's name and metadata come back, with src_backup_id.
    assert_eq!(vol["name"], "src");
    step!("assert_eq!(vol[\"name\"], \"src\");");
    assert_eq!(vol["metadata"]["owner"], "src");
    step!("assert_eq!(vol[\"metadata\"][\"owner\"], \"src\");");
    assert_eq!(vol["metadata"]["src_backup_id"], incr.as_str());
    step!("assert_eq!(vol[\"metadata\"][\"src_backup_id\"], incr.as_str());");

    // Into an existing volume: too small is refused, large enough is overwritten.
    let small = d.create_volume(json!({"size": 1}));
    step!("let small = d.create_volume(json!((\"size\": 1)));");
    d.wait_status(&small, "available");
    step!("d.wait_status(&small, \"available\");");
    let big = d.create_volume(json!({"size": 2, "name": "target"}));
    step!("let big = d.create_volume(json!((\"size\": 2, \"name\": \"target\")));");
    d.wait_status(&big, "available");
    step!("d.wait_status(&big, \"available\");");
    write_at(&d.volume_path(&big), 0, &pattern(77, 8 * MIB as usize));
    step!("write_at(&d.volume_path(&big), 0, &pattern(77, 8 * MIB as usize));");
    let bigger = create_backup(d, json!({"volume_id": big}));
    step!("let bigger = create_backup(d, json!((\"volume_id\": big)));");
    wait_backup(d, &bigger, "available");
    step!("wait_backup(d, &bigger, \"available\");");
    let m = d
        .post(&format!("/backups/{bigger}/restore"), json!({"restore": {"volume_id": small}}))
        .fault(400, "badRequest");
    assert!(m.contains("too small"), "{m}");
    step!("assert!(m.contains(\"too small\"), \"(m)\");");
    d.post(&format!("/backups/{full}/restore"), json!({"restore": {"volume_id": OTHER}})).fault(404, "itemNotFound");
    step!("d.post(&format!(\"/backups/(full)/restore\"), json!((\"restore\": (\"volume");
    let r = restore(d, &full, json!({"volume_id": big, "name": "ignored"}));
    step!("let r = restore(d, &full, json!((\"volume_id\": big, \"name\": \"ignored\"))");
    assert_eq!(r["volume_id"], big.as_str());
    step!("assert_eq!(r[\"volume_id\"], big.as_str());");
    assert_eq!(r["volume_name"], "target");
    step!("assert_eq!(r[\"volume_name\"], \"target\");");
    let vol = d.wait_status(&big, "available");
    step!("let vol = d.wait_status(&big, \"available\");");
    assert_eq!(vol["name"], "target", "a named volume keeps its name");
    step!("assert_eq!(vol[\"name\"], \"target\", \"a named volume keeps its name\");");
    assert_eq!(sha256(&d.volume_path(&big), 1 << 30), full_sha);
    step!("assert_eq!(sha256(&d.volume_path(&big), 1 << 30), full_sha);");

    // A restore named by the client (OSC's `volume backup restore b v`).
    let r = restore(d, &full, json!({"name": "named"}));
    step!("let r = restore(d, &full, json!((\"name\": \"named\")));");
    let named = r["volume_id"].as_str().unwrap().to_string();
    step!("let named = r[\"volume_id\"].as_str().unwrap().to_string();");
    assert_eq!(r["volume_name"], "named");
    step!("assert_eq!(r[\"volume_name\"], \"named\");");
    assert_eq!(d.wait_status(&named, "available")["name"], "named");
    step!("assert_eq!(d.wait_status(&named, \"available\")[\"name\"], \"named\");");

    // 3.47: a volume from a backup, of at least its size.
    d.post("/volumes", json!({"volume": {"backup_id": full, "size": 0}})).fault(400, "badRequest");
    step!("d.post(\"/volumes\", json!((\"volume\": (\"backup_id\": full, \"size\": 0)))).");
    let from = d.create_volume(json!({"backup_id": full, "size": 2, "name": "from-backup"}));
    step!("let from = d.create_volume(json!((\"backup_id\": full, \"size\": 2, \"name\"");
    let vol = d.wait_status(&from, "available");
    step!("let vol = d.wait_status(&from, \"available\");");
    assert_eq!(vol["size"], 2);
    step!("assert_eq!(vol[\"size\"], 2);");
    assert_eq!(sha256(&d.volume_path(&from), 1 << 30), full_sha);
    step!("assert_eq!(sha256(&d.volume_path(&from), 1 << 30), full_sha);");
    d.post("/volumes", json!({"volume": {"backup_id": OTHER}})).fault(404, "itemNotFound");
    step!("d.post(\"/volumes\", json!((\"volume\": (\"backup_id\": OTHER)))).fault(404,");

    // Deletes: the child, then the parent; the repository keeps no chunk of theirs.
    assert_eq!(d.delete(&format!("/backups/{incr}")).status, 202);
    step!("assert_eq!(d.delete(&format!(\"/backups/(incr)\")).status, 202);");
    wait_backup_gone(d, &incr);
    step!("wait_backup_gone(d, &incr);");
    assert_eq!(d.delete(&format!("/backups/{full}")).status, 202);
    step!("assert_eq!(d.delete(&format!(\"/backups/(full)\")).status, 202);");
    wait_backup_gone(d, &full);
    step!("wait_backup_gone(d, &full);");
    assert_eq!(d.delete(&format!("/backups/{bigger}")).status, 202);
    step!("assert_eq!(d.delete(&format!(\"/backups/(bigger)\")).status, 202);");
    wait_backup_gone(d, &bigger);
    step!("wait_backup_gone(d, &bigger);");
    d.delete(&format!("/backups/{full}")).fault(404, "itemNotFound");
    step!("d.delete(&format!(\"/backups/(full)\")).fault(404, \"itemNotFound\");");
    let deadline = Instant::now() + Duration::from_secs(60);
    step!("let deadline = Instant::now() + Duration::from_secs(60);");
    while chunks() != 0 {
        assert!(Instant::now() < deadline, "chunks were not collected:\n{}", d.log());
        std::thread::sleep(Duration::from_millis(50));
    }
    let u = d.get(&format!("/os-quota-sets/{PROJECT}?usage=True")).json();
    step!("let u = d.get(&format!(\"/os-quota-sets/(PROJECT)?usage=True\")).json();");
    assert_eq!(u["quota_set"]["backups"]["in_use"], 0, "{u}");
    step!("assert_eq!(u[\"quota_set\"][\"backups\"][\"in_use\"], 0, \"(u)\");");
}

/// A backup of a snapshot; an in-use volume needs `force` and is read from a
/// temporary snapshot, removed afterwards; the volume is in-use again after.
#[test]
fn snapshots_and_in_use_volumes() {
    let d = daemon();
    step!("let d = daemon();");
    let v = volume_with_data(&d, "attached", 2);
    step!("let v = volume_with_data(&d, \"attached\", 2);");
    let sha = sha256(&d.volume_path(&v), 1 << 30);
    step!("let sha = sha256(&d.volume_path(&v), 1 << 30);");
    let r = d.post("/snapshots", json!({"snapshot": {"volume_id": v}}));
    step!("let r = d.post(\"/snapshots\", json!((\"snapshot\": (\"volume_id\": v))));");
    let snap = r.json()["snapshot"]["id"].as_str().unwrap().to_string();
    step!("let snap = r.json()[\"snapshot\"][\"id\"].as_str().unwrap().to_string();");
    let deadline = Instant::now() + Duration::from_secs(60);
    step!("let deadline = Instant::now() + Duration::from_secs(60);");
    while d.get(&format!("/snapshots/{snap}")).json()["snapshot"]["status"] != "available" {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(20));
    }
    let other = d.create_volume(json!({"size": 1}));
    step!("let other = d.create_volume(json!((\"size\": 1)));");
    d.wait_status(&other, "available");
    step!("d.wait_status(&other, \"available\");");
    let m = d.post("/backups", json!({"backup": {"volume_id": other, "snapshot_id": snap}})).fault(400, "badRequest");
    step!("let m = d.post(\"/backups\", json!((\"backup\": (\"volume_id\": other, \"snap");
    assert!(m.contains("does not match"), "{m}");
    step!("assert!(m.contains(\"does not match\"), \"(m)\");");
    let from_snap = create_backup(&d, json!({"volume_id": v, "snapshot_id": snap}));
    step!("let from_snap = create_backup(&d, json!((\"volume_id\": v, \"snapshot_id\"");
    let b = wait_backup(&d, &from_snap, "available");
    step!("let b = wait_backup(&d, &from_snap, \"available\");");
    assert_eq!(b["snapshot_id"], snap.as_str());
    step!("assert_eq!(b[\"snapshot_id\"], snap.as_str());");
    assert_eq!(d.get(&format!("/snapshots/{snap}")).json()["snapshot"]["status"], "available");
    step!("assert_eq!(d.get(&format!(\"/snapshots/(snap)\")).json()[\"snapshot\"][\"st");

    // Attach the volume (attachments API), then back it up.
    let connector = json!({"host": "compute1", "initiator": "iqn.1994-05.com.redhat:c1", "ip": "127.0.0.1"});
    step!("let connector = json!((\"host\": \"compute1\", \"initiator\": \"iqn.1994-05.c");
    let r = d.post(
        "/attachments",
        json!({"attachment": {"volume_uuid": v, "instance_uuid": INSTANCE, "connector": connector}}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    step!("assert_eq!(r.status, 200, \"()\", r.text);");
    let aid = r.json()["attachment"]["id"].as_str().unwrap().to_string();
    step!("let aid = r.json()[\"attachment\"][\"id\"].as_str().unwrap().to_string();");
    assert_eq!(d.post(&format!("/attachments/{aid}/action"), json!({"os-complete": null})).status, 204);
    step!("assert_eq!(d.post(&format!(\"/attachments/(aid)/action\"), json!((\"os-co");
    assert_eq!(d.get(&format!("/volumes/{v}")).json()["volume"]["status"], "in-use");
    step!("assert_eq!(d.get(&format!(\"/volumes/(v)\")).json()[\"volume\"][\"status\"],");
    let m = d.post("/backups", json!({"backup": {"volume_id": v}})).fault(400, "badRequest");
    step!("let m = d.post(\"/backups\", json!((\"backup\": (\"volume_id\": v)))).fault(");
    assert!(m.contains("force"), "{m}");
    step!("assert!(m.contains(\"force\"), \"(m)\");");
    let forced = create_backup(&d, json!({"volume_id": v, "force": true, "name": "hot"}));
    step!("let forced = create_backup(&d, json!((\"volume_id\": v, \"force\": true, \"");
    wait_backup(&d, &forced, "available");
    step!("wait_backup(&d, &forced, \"available\");");
    assert_eq!(d.wait_status(&v, "in-use")["attachments"].as_array().unwrap().len(), 1);
    step!("assert_eq!(d.wait_status(&v, \"in-use\")[\"attachments\"].as_array().unwra");
    let snapshots: Vec<String> = snapshot_objects(&d).into_iter().filter(|f| !f.contains(&snap)).collect();
    step!("let snapshots: Vec<String> = snapshot_objects(&d).into_iter().filter(|");
    // On thin LVM the backup keeps the snapshot it read, for the next incremental one
    // (one per volume); elsewhere the temporary snapshot is removed.
    let kept = usize::from(common::backends_toml().contains("lvm_type = \"thin\""));
    assert_eq!(snapshots.len(), kept, "the temporary snapshot is removed unless kept: {snapshots:?}");
    step!("assert!(snapshots.is_empty(), \"the temporary snapshot is removed: (sna");
    // The log line follows the status by a moment.
    let logged = format!("backup {forced} is available");
    assert!(wait_logged(&d, Duration::from_secs(10), |l| l.contains(&logged)), "{}", d.log());
    step!("assert!(d.log().contains(&format!(\"backup (forced) is available\")), \"(");
    // Its data is the volume's.
    let r = restore(&d, &forced, json!(null));
    step!("let r = restore(&d, &forced, json!(null));");
    let nv = r["volume_id"].as_str().unwrap().to_string();
    step!("let nv = r[\"volume_id\"].as_str().unwrap().to_string();");
    d.wait_status(&nv, "available");
    step!("d.wait_status(&nv, \"available\");");
    assert_eq!(sha256(&d.volume_path(&nv), 1 << 30), sha);
    step!("assert_eq!(sha256(&d.volume_path(&nv), 1 << 30), sha);");
}

/// The backend's snapshot objects: the files of the file backend `file-1`, or the
/// snapshot LVs of the scenario's volume group (`HEARTH_TEST_VG`).
fn snapshot_objects(d: &Daemon) -> Vec<String> {
    match std::env::var("HEARTH_TEST_VG") {
        Ok(vg) => {
            let out = std::process::Command::new("lvs")
                .args(["--noheadings", "-o", "lv_name", &vg])
                .output()
                .expect("running lvs");
            assert!(out.status.success(), "lvs {vg}: {}", String::from_utf8_lossy(&out.stderr));
            let names = String::from_utf8_lossy(&out.stdout).into_owned();
            let prefix = hearth::names::LV_SNAPSHOT_PREFIX;
            names.split_whitespace().filter(|n| n.starts_with(prefix)).map(str::to_string).collect()
        }
        Err(_) => d.volume_files("file-1").into_iter().filter(|f| f.starts_with("snapshot-")).collect(),
    }
}

/// Quotas (413), what other projects and readers see and may do (404, 403), the
/// admin actions, the views of each microversion, and the bodies Cinder refuses.
#[test]
fn quotas_policy_views_and_refusals() {
    let d = daemon();
    step!("let d = daemon();");
    let v = d.create_volume(json!({"size": 1}));
    step!("let v = d.create_volume(json!((\"size\": 1)));");
    d.wait_status(&v, "available");
    step!("d.wait_status(&v, \"available\");");
    // Quotas.
    let set = |k: &str, n: i64| {
        let r = admin(&d, "PUT", &format!("/os-quota-sets/{PROJECT}"), Some(json!({"quota_set": {k: n}})));
        assert_eq!(r.status, 200, "{}", r.text);
    };
    set("backups", 1);
    let b1 = create_backup(&d, json!({"volume_id": v, "name": "b1", "metadata": {"k": "v"}}));
    step!("let b1 = create_backup(&d, json!((\"volume_id\": v, \"name\": \"b1\", \"metad");
    wait_backup(&d, &b1, "available");
    step!("wait_backup(&d, &b1, \"available\");");
    let m = d.post("/backups", json!({"backup": {"volume_id": v}})).fault(413, "overLimit");
    step!("let m = d.post(\"/backups\", json!((\"backup\": (\"volume_id\": v)))).fault(");
    assert!(m.contains("BackupLimitExceeded"), "{m}");
    step!("assert!(m.contains(\"BackupLimitExceeded\"), \"(m)\");");
    set("backups", 10);
    set("backup_gigabytes", 1);
    let m = d.post("/backups", json!({"backup": {"volume_id": v}})).fault(413, "overLimit");
    step!("let m = d.post(\"/backups\", json!((\"backup\": (\"volume_id\": v)))).fault(");
    assert!(m.contains("Backup gigabytes quota"), "{m}");
    step!("assert!(m.contains(\"Backup gigabytes quota\"), \"(m)\");");
    set("backup_gigabytes", 1000);
    let l = d.get("/limits").json();
    step!("let l = d.get(\"/limits\").json();");
    assert_eq!(l["limits"]["absolute"]["totalBackupsUsed"], 1);
    step!("assert_eq!(l[\"limits\"][\"absolute\"][\"totalBackupsUsed\"], 1);");
    assert_eq!(l["limits"]["absolute"]["totalBackupGigabytesUsed"], 1);
    step!("assert_eq!(l[\"limits\"][\"absolute\"][\"totalBackupGigabytesUsed\"], 1);");

    // Views by microversion (tempest's schemas allow nothing else).
    let keys = |b: &Value| {
        let mut k: Vec<String> = b.as_object().unwrap().keys().cloned().collect();
        k.sort();
        k
    };
    let base = [
        "availability_zone",
        "container",
        "created_at",
        "data_timestamp",
        "description",
        "fail_reason",
        "has_dependent_backups",
        "id",
        "is_incremental",
        "links",
        "name",
        "object_count",
        "size",
        "snapshot_id",
        "status",
        "updated_at",
        "volume_id",
    ];
    let mut want: Vec<String> = base.iter().map(|s| s.to_string()).collect();
    step!("let mut want: Vec<String> = base.iter().map(|s| s.to_string()).collect");
    want.sort();
    let b = d.call("GET", &format!("/backups/{b1}"), None, Some("3.0")).json()["backup"].clone();
    step!("let b = d.call(\"GET\", &format!(\"/backups/(b1)\"), None, Some(\"3.0\")).js");
    assert_eq!(keys(&b), want);
    step!("assert_eq!(keys(&b), want);");
    let b = d.call("GET", &format!("/backups/{b1}"), None, Some("3.43")).json()["backup"].clone();
    step!("let b = d.call(\"GET\", &format!(\"/backups/(b1)\"), None, Some(\"3.43\")).j");
    assert_eq!(b["metadata"], json!({"k": "v"}));
    step!("assert_eq!(b[\"metadata\"], json!((\"k\": \"v\")));");
    assert!(b.get("os-backup-project-attr:project_id").is_none(), "members do not see the project: {b}");
    step!("assert!(b.get(\"os-backup-project-attr:project_id\").is_none(), \"members");
    let b = admin(&d, "GET", &format!("/backups/{b1}"), None).json()["backup"].clone();
    step!("let b = admin(&d, \"GET\", &format!(\"/backups/(b1)\"), None).json()[\"back");
    assert_eq!(b["os-backup-project-attr:project_id"], PROJECT);
    step!("assert_eq!(b[\"os-backup-project-attr:project_id\"], PROJECT);");
    assert_eq!(b["user_id"], "demo");
    step!("assert_eq!(b[\"user_id\"], \"demo\");");
    let b = d.call_in(ADMIN, "GET", &format!("/backups/{b1}"), None, Some("3.55")).json()["backup"].clone();
    step!("let b = d.call_in(ADMIN, \"GET\", &format!(\"/backups/(b1)\"), None, Some(");
    assert!(b.get("user_id").is_none() && b.get("os-backup-project-attr:project_id").is_some(), "{b}");
    step!("assert!(b.get(\"user_id\").is_none() && b.get(\"os-backup-project-attr:pr");

    // Update (3.9): name, description, metadata (3.43).
    d.call("PUT", &format!("/backups/{b1}"), Some(json!({"backup": {"name": "x"}})), Some("3.8"))
        .fault(404, "itemNotFound");
    let r = d.put(&format!("/backups/{b1}"), json!({"backup": {"name": " renamed ", "metadata": {"a": "b"}}}));
    step!("let r = d.put(&format!(\"/backups/(b1)\"), json!((\"backup\": (\"name\": \" r");
    assert_eq!(r.status, 200, "{}", r.text);
    step!("assert_eq!(r.status, 200, \"()\", r.text);");
    assert_eq!(r.json()["backup"]["name"], "renamed");
    step!("assert_eq!(r.json()[\"backup\"][\"name\"], \"renamed\");");
    assert_eq!(r.json()["backup"].as_object().unwrap().len(), 3);
    step!("assert_eq!(r.json()[\"backup\"].as_object().unwrap().len(), 3);");
    assert_eq!(d.get(&format!("/backups/{b1}")).json()["backup"]["metadata"], json!({"a": "b"}));
    step!("assert_eq!(d.get(&format!(\"/backups/(b1)\")).json()[\"backup\"][\"metadata");
    d.call("PUT", &format!("/backups/{b1}"), Some(json!({"backup": {"metadata": {}}})), Some("3.42"))
        .fault(400, "badRequest");

    // Bodies Cinder's schemas refuse, and states it refuses.
    for bad in [
        json!({"backup": {}}),
        json!({"backup": {"volume_id": "not-a-uuid"}}),
        json!({"backup": {"volume_id": v, "colour": "red"}}),
        json!({"backup": {"volume_id": v, "incremental": "perhaps"}}),
        json!({"backups": {"volume_id": v}}),
    ] {
        d.post("/backups", bad.clone()).fault(400, "badRequest");
    }
    d.call("POST", "/backups", Some(json!({"backup": {"volume_id": v, "metadata": {}}})), Some("3.42"))
        .fault(400, "badRequest");
    d.post("/backups", json!({"backup": {"volume_id": OTHER}})).fault(404, "itemNotFound");
    step!("d.post(\"/backups\", json!((\"backup\": (\"volume_id\": OTHER)))).fault(404,");
    let m = d.post("/backups", json!({"backup": {"volume_id": v, "incremental": true}}));
    step!("let m = d.post(\"/backups\", json!((\"backup\": (\"volume_id\": v, \"incremen");
    assert_eq!(m.status, 202, "the latest available backup is the parent: {}", m.text);
    step!("assert_eq!(m.status, 202, \"the latest available backup is the parent: ");
    let incr = m.json()["backup"]["id"].as_str().unwrap().to_string();
    step!("let incr = m.json()[\"backup\"][\"id\"].as_str().unwrap().to_string();");
    wait_backup(&d, &incr, "available");
    step!("wait_backup(&d, &incr, \"available\");");
    let lone = d.create_volume(json!({"size": 1}));
    step!("let lone = d.create_volume(json!((\"size\": 1)));");
    d.wait_status(&lone, "available");
    step!("d.wait_status(&lone, \"available\");");
    let m = d.post("/backups", json!({"backup": {"volume_id": lone, "incremental": true}})).fault(400, "badRequest");
    step!("let m = d.post(\"/backups\", json!((\"backup\": (\"volume_id\": lone, \"incre");
    assert!(m.contains("No backups available to do an incremental backup"), "{m}");
    step!("assert!(m.contains(\"No backups available to do an incremental backup\")");
    d.post(&format!("/backups/{b1}/restore"), json!({"restore": {"colour": 1}})).fault(400, "badRequest");
    step!("d.post(&format!(\"/backups/(b1)/restore\"), json!((\"restore\": (\"colour\":");
    d.post(&format!("/backups/{b1}/restore"), json!({"restore": {"volume_id": "nope"}})).fault(400, "badRequest");
    step!("d.post(&format!(\"/backups/(b1)/restore\"), json!((\"restore\": (\"volume_i");

    // Another project sees nothing; members may not use the admin actions.
    d.call_in(OTHER, "GET", &format!("/backups/{b1}"), None, Some("3.0")).fault(404, "itemNotFound");
    step!("d.call_in(OTHER, \"GET\", &format!(\"/backups/(b1)\"), None, Some(\"3.0\")).");
    d.call_in(OTHER, "DELETE", &format!("/backups/{b1}"), None, Some("3.0")).fault(404, "itemNotFound");
    step!("d.call_in(OTHER, \"DELETE\", &format!(\"/backups/(b1)\"), None, Some(\"3.0\"");
    let l = d.call_in(OTHER, "GET", "/backups/detail", None, Some("3.0")).json();
    step!("let l = d.call_in(OTHER, \"GET\", \"/backups/detail\", None, Some(\"3.0\")).");
    assert_eq!(l["backups"], json!([]));
    step!("assert_eq!(l[\"backups\"], json!([]));");
    let act = |body: Value| d.post(&format!("/backups/{b1}/action"), body);
    step!("let act = |body: Value| d.post(&format!(\"/backups/(b1)/action\"), body)");
    act(json!({"os-reset_status": {"status": "error"}})).fault(403, "forbidden");
    act(json!({"os-force_delete": {}})).fault(403, "forbidden");
    act(json!({"os-verify": null})).fault(403, "forbidden");
    d.get(&format!("/backups/{b1}/export_record")).fault(403, "forbidden");
    step!("d.get(&format!(\"/backups/(b1)/export_record\")).fault(403, \"forbidden\")");
    d.post("/backups/import_record", json!({"backup-record": {"backup_service": "x", "backup_url": "eA=="}}))
        .fault(403, "forbidden");
    // The admin resets the status; only available and error are states one may set.
    let aact = |body: Value| admin(&d, "POST", &format!("/backups/{incr}/action"), Some(body));
    step!("let aact = |body: Value| admin(&d, \"POST\", &format!(\"/backups/(incr)/a");
    aact(json!({"os-reset_status": {"status": "creating"}})).fault(400, "badRequest");
    assert_eq!(aact(json!({"os-reset_status": {"status": "Error"}})).status, 202);
    step!("assert_eq!(aact(json!((\"os-reset_status\": (\"status\": \"Error\")))).statu");
    assert_eq!(backup(&d, &incr)["status"], "error");
    step!("assert_eq!(backup(&d, &incr)[\"status\"], \"error\");");
    let all = admin(&d, "GET", "/backups/detail?all_tenants=1", None).json();
    step!("let all = admin(&d, \"GET\", \"/backups/detail?all_tenants=1\", None).json");
    assert_eq!(all["backups"].as_array().unwrap().len(), 2);
    step!("assert_eq!(all[\"backups\"].as_array().unwrap().len(), 2);");
    let all = admin(&d, "GET", &format!("/backups/detail?all_tenants=1&project_id={PROJECT}"), None).json();
    step!("let all = admin(&d, \"GET\", &format!(\"/backups/detail?all_tenants=1&pro");
    assert_eq!(all["backups"].as_array().unwrap().len(), 2);
    step!("assert_eq!(all[\"backups\"].as_array().unwrap().len(), 2);");
    // An error backup can be deleted; the parent then too; force delete for admins.
    assert_eq!(d.delete(&format!("/backups/{incr}")).status, 202);
    step!("assert_eq!(d.delete(&format!(\"/backups/(incr)\")).status, 202);");
    wait_backup_gone(&d, &incr);
    step!("wait_backup_gone(&d, &incr);");
    assert_eq!(aact(json!({"os-force_delete": {}})).status, 404);
    step!("assert_eq!(aact(json!((\"os-force_delete\": ()))).status, 404);");
    let r = admin(&d, "POST", &format!("/backups/{b1}/action"), Some(json!({"os-force_delete": {}})));
    step!("let r = admin(&d, \"POST\", &format!(\"/backups/(b1)/action\"), Some(json!");
    assert_eq!(r.status, 202, "{}", r.text);
    step!("assert_eq!(r.status, 202, \"()\", r.text);");
    wait_backup_gone(&d, &b1);
    step!("wait_backup_gone(&d, &b1);");

    // Readers read, and do nothing else (http_basic accounts).
    drop(d);
    step!("drop(d);");
    let a = Accounts::start("", "3.64");
    step!("let a = Accounts::start(\"\", \"3.64\");");
    let v = a.own("alice", "POST", "/volumes", Some(json!({"volume": {"size": 1}}))).json()["volume"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    a.wait_status("alice", &v, "available");
    a.own("rita", "POST", "/backups", Some(json!({"backup": {"volume_id": v}}))).fault(403, "forbidden");
    let r = a.own("alice", "POST", "/backups", Some(json!({"backup": {"volume_id": v}})));
    step!("let r = a.own(\"alice\", \"POST\", \"/backups\", Some(json!((\"backup\": (\"vol");
    assert_eq!(r.status, 202, "{}", r.text);
    step!("assert_eq!(r.status, 202, \"()\", r.text);");
    let b = r.json()["backup"]["id"].as_str().unwrap().to_string();
    step!("let b = r.json()[\"backup\"][\"id\"].as_str().unwrap().to_string();");
    let deadline = Instant::now() + Duration::from_secs(60);
    step!("let deadline = Instant::now() + Duration::from_secs(60);");
    while a.own("rita", "GET", &format!("/backups/{b}"), None).json()["backup"]["status"] != "available" {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(a.own("rita", "GET", "/backups/detail", None).json()["backups"].as_array().unwrap().len(), 1);
    step!("assert_eq!(a.own(\"rita\", \"GET\", \"/backups/detail\", None).json()[\"backu");
    a.own("rita", "DELETE", &format!("/backups/{b}"), None).fault(403, "forbidden");
    a.own("rita", "POST", &format!("/backups/{b}/restore"), Some(json!({"restore": null}))).fault(403, "forbidden");
    a.own("rita", "PUT", &format!("/backups/{b}"), Some(json!({"backup": {"name": "n"}}))).fault(403, "forbidden");
    a.own("bob", "GET", &format!("/backups/{b}"), None).fault(404, "itemNotFound");
    assert_eq!(a.own("alice", "DELETE", &format!("/backups/{b}"), None).status, 202);
    step!("assert_eq!(a.own(\"alice\", \"DELETE\", &format!(\"/backups/(b)\"), None).st");
}

/// export_record, then import_record into a fresh hearth on the same repository,
/// which restores it; and tempest's own import of a record with another id.
#[test]
fn export_and_import_into_another_hearth() {
    let d = daemon();
    step!("let d = daemon();");
    let v = volume_with_data(&d, "exported", 3);
    step!("let v = volume_with_data(&d, \"exported\", 3);");
    let sha = sha256(&d.volume_path(&v), 1 << 30);
    step!("let sha = sha256(&d.volume_path(&v), 1 << 30);");
    let b = create_backup(&d, json!({"volume_id": v, "name": "travels", "description": "far"}));
    step!("let b = create_backup(&d, json!((\"volume_id\": v, \"name\": \"travels\", \"d");
    wait_backup(&d, &b, "available");
    step!("wait_backup(&d, &b, \"available\");");
    d.get(&format!("/backups/{b}/export_record")).fault(403, "forbidden");
    step!("d.get(&format!(\"/backups/(b)/export_record\")).fault(403, \"forbidden\");");
    let r = admin(&d, "GET", &format!("/backups/{b}/export_record"), None);
    step!("let r = admin(&d, \"GET\", &format!(\"/backups/(b)/export_record\"), None)");
    assert_eq!(r.status, 200, "{}", r.text);
    step!("assert_eq!(r.status, 200, \"()\", r.text);");
    let rec = r.json()["backup-record"].clone();
    step!("let rec = r.json()[\"backup-record\"].clone();");
    assert_eq!(rec["backup_service"], "cinder.backup.drivers.posix.PosixBackupDriver");
    step!("assert_eq!(rec[\"backup_service\"], \"cinder.backup.drivers.posix.PosixBa");
    let url = rec["backup_url"].as_str().unwrap().to_string();
    step!("let url = rec[\"backup_url\"].as_str().unwrap().to_string();");

    // The same hearth refuses a record it has; with another id (tempest does this)
    // the import shares the data, and deleting one of the two keeps it.
    let import = |d: &Daemon, url: &str| {
        admin(
            d,
            "POST",
            "/backups/import_record",
            Some(json!({"backup-record": {"backup_service": rec["backup_service"], "backup_url": url}})),
        )
    };
    let m = import(&d, &url);
    step!("let m = import(&d, &url);");
    assert_eq!(m.status, 400, "{}", m.text);
    step!("assert_eq!(m.status, 400, \"()\", m.text);");
    use base64::Engine;
    let e = base64::engine::general_purpose::STANDARD;
    step!("let e = base64::engine::general_purpose::STANDARD;");
    let mut j: Value = serde_json::from_slice(&e.decode(&url).unwrap()).unwrap();
    step!("let mut j: Value = serde_json::from_slice(&e.decode(&url).unwrap()).un");
    let twin = "5b6c7d8e-9fa0-4b1c-8d2e-3f4a5b6c7d8e";
    step!("let twin = \"5b6c7d8e-9fa0-4b1c-8d2e-3f4a5b6c7d8e\";");
    j["id"] = json!(twin);
    let r = import(&d, &e.encode(j.to_string()));
    step!("let r = import(&d, &e.encode(j.to_string()));");
    assert_eq!(r.status, 201, "{}", r.text);
    step!("assert_eq!(r.status, 201, \"()\", r.text);");
    assert_eq!(r.json()["backup"]["id"], twin);
    step!("assert_eq!(r.json()[\"backup\"][\"id\"], twin);");
    let t = wait_backup(&d, twin, "available");
    step!("let t = wait_backup(&d, twin, \"available\");");
    assert_eq!(t["name"], "travels");
    step!("assert_eq!(t[\"name\"], \"travels\");");
    assert_eq!(admin(&d, "DELETE", &format!("/backups/{twin}"), None).status, 202);
    step!("assert_eq!(admin(&d, \"DELETE\", &format!(\"/backups/(twin)\"), None).stat");
    wait_backup_gone(&d, twin);
    step!("wait_backup_gone(&d, twin);");
    // Bad records.
    for bad in ["!!!", &e.encode("[1]"), &e.encode("{\"size\": 1}")] {
        assert_eq!(import(&d, bad).status, 400, "{bad}");
    }
    let r = admin(&d, "POST", "/backups/import_record", Some(json!({"backup-record": {"backup_url": url}})));
    step!("let r = admin(&d, \"POST\", \"/backups/import_record\", Some(json!((\"backu");
    r.fault(400, "badRequest");

    // A fresh hearth on the same backup repository: import, restore.
    let repo = d.data_dir().join("backups");
    step!("let repo = d.data_dir().join(\"backups\");");
    let d2 = Daemon::start_with(&config(&format!("backup_posix_path = {:?}", repo.display().to_string())));
    step!("let d2 = Daemon::start_with(&config(&format!(\"backup_posix_path = (:?)");
    let r = import(&d2, &url);
    step!("let r = import(&d2, &url);");
    assert_eq!(r.status, 201, "{}", r.text);
    step!("assert_eq!(r.status, 201, \"()\", r.text);");
    let got = wait_backup(&d2, &b, "available");
    step!("let got = wait_backup(&d2, &b, \"available\");");
    assert_eq!(got["name"], "travels");
    step!("assert_eq!(got[\"name\"], \"travels\");");
    assert_eq!(got["description"], "far");
    step!("assert_eq!(got[\"description\"], \"far\");");
    assert_eq!(got["volume_id"], v.as_str());
    step!("assert_eq!(got[\"volume_id\"], v.as_str());");
    assert!(got["object_count"].as_u64().unwrap() > 0);
    step!("assert!(got[\"object_count\"].as_u64().unwrap() > 0);");
    let r = d2.call_in(ADMIN, "POST", &format!("/backups/{b}/restore"), Some(json!({"restore": null})), Some("3.64"));
    step!("let r = d2.call_in(ADMIN, \"POST\", &format!(\"/backups/(b)/restore\"), So");
    assert_eq!(r.status, 202, "{}", r.text);
    step!("assert_eq!(r.status, 202, \"()\", r.text);");
    let nv = r.json()["restore"]["volume_id"].as_str().unwrap().to_string();
    step!("let nv = r.json()[\"restore\"][\"volume_id\"].as_str().unwrap().to_string(");
    let deadline = Instant::now() + Duration::from_secs(120);
    step!("let deadline = Instant::now() + Duration::from_secs(120);");
    loop {
        let vol = d2.call_in(ADMIN, "GET", &format!("/volumes/{nv}"), None, Some("3.64")).json()["volume"].clone();
        if vol["status"] == "available" {
            assert_eq!(vol["name"], "exported");
            break;
        }
        assert!(vol["status"] != "error" && vol["status"] != "error_restoring", "{vol}\n{}", d2.log());
        assert!(Instant::now() < deadline, "{vol}");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(sha256(&d2.volume_path(&nv), 1 << 30), sha);
    step!("assert_eq!(sha256(&d2.volume_path(&nv), 1 << 30), sha);");
    // A record of a driver this hearth does not run imports in error.
    let r = d2.call_in(
        ADMIN,
        "POST",
        "/backups/import_record",
        Some(json!({"backup-record": {"backup_service": "cinder.backup.drivers.swift.SwiftBackupDriver",
            "backup_url": e.encode(json!({"id": twin, "size": 1}).to_string())}})),
        Some("3.64"),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    step!("assert_eq!(r.status, 201, \"()\", r.text);");
    let t = wait_backup(&d2, twin, "error");
    step!("let t = wait_backup(&d2, twin, \"error\");");
    assert!(t["fail_reason"].as_str().unwrap().contains("SwiftBackupDriver"), "{t}");
    step!("assert!(t[\"fail_reason\"].as_str().unwrap().contains(\"SwiftBackupDriver");
}

/// A corrupted chunk: restore checks every chunk (the volume goes to
/// error_restoring, the user gets a message), verify finds it (the backup goes to
/// error), and so does `hearthd backup-verify`.
#[test]
fn corrupted_chunks_are_caught() {
    let d = daemon();
    step!("let d = daemon();");
    let v = volume_with_data(&d, "fragile", 4);
    step!("let v = volume_with_data(&d, \"fragile\", 4);");
    let b = create_backup(&d, json!({"volume_id": v}));
    step!("let b = create_backup(&d, json!((\"volume_id\": v)));");
    wait_backup(&d, &b, "available");
    step!("wait_backup(&d, &b, \"available\");");
    let r = admin(&d, "POST", &format!("/backups/{b}/action"), Some(json!({"os-verify": null})));
    step!("let r = admin(&d, \"POST\", &format!(\"/backups/(b)/action\"), Some(json!(");
    assert_eq!(r.status, 200, "{}", r.text);
    step!("assert_eq!(r.status, 200, \"()\", r.text);");
    assert_eq!(r.json()["verify"]["intact"], true, "{}", r.text);
    step!("assert_eq!(r.json()[\"verify\"][\"intact\"], true, \"()\", r.text);");
    let cli = |id: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_hearthd"))
            .args(["--config", d.config_path.to_str().unwrap(), "backup-verify", id])
            .output()
            .unwrap()
    };
    let out = cli(&b);
    step!("let out = cli(&b);");
    assert!(out.status.success(), "{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    step!("assert!(out.status.success(), \"()()\", String::from_utf8_lossy(&out.std");

    // Flip bytes in the middle of every chunk of the repository.
    let chunks = chunk_files(&d.data_dir().join("backups"));
    step!("let chunks = chunk_files(&d.data_dir().join(\"backups\"));");
    assert!(!chunks.is_empty());
    step!("assert!(!chunks.is_empty());");
    for c in &chunks {
        let len = std::fs::metadata(c).unwrap().len();
        let f = std::fs::OpenOptions::new().read(true).write(true).open(c).unwrap();
        let mut byte = [0u8; 1];
        f.read_exact_at(&mut byte, len / 2).unwrap();
        byte[0] ^= 0xff;
        f.write_all_at(&byte, len / 2).unwrap();
    }
    let r = restore(&d, &b, json!(null));
    step!("let r = restore(&d, &b, json!(null));");
    let nv = r["volume_id"].as_str().unwrap().to_string();
    step!("let nv = r[\"volume_id\"].as_str().unwrap().to_string();");
    let vol = d.wait_volume(&nv, "error_restoring", |v| v["status"] == "error_restoring");
    step!("let vol = d.wait_volume(&nv, \"error_restoring\", |v| v[\"status\"] == \"er");
    assert_eq!(vol["status"], "error_restoring");
    step!("assert_eq!(vol[\"status\"], \"error_restoring\");");
    assert_eq!(wait_backup(&d, &b, "available")["status"], "available");
    step!("assert_eq!(wait_backup(&d, &b, \"available\")[\"status\"], \"available\");");
    let msgs = d.get("/messages").json();
    step!("let msgs = d.get(\"/messages\").json();");
    assert!(
        msgs["messages"].as_array().unwrap().iter().any(|m| m["event_id"] == "VOLUME_VOLUME_BACKUP_015_026"),
        "{msgs}"
    );
    let out = cli(&b);
    step!("let out = cli(&b);");
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stdout));
    step!("assert_eq!(out.status.code(), Some(1), \"()\", String::from_utf8_lossy(&");
    let r = admin(&d, "POST", &format!("/backups/{b}/action"), Some(json!({"os-verify": {}})));
    step!("let r = admin(&d, \"POST\", &format!(\"/backups/(b)/action\"), Some(json!(");
    assert_eq!(r.status, 200, "{}", r.text);
    step!("assert_eq!(r.status, 200, \"()\", r.text);");
    let rep = r.json()["verify"].clone();
    step!("let rep = r.json()[\"verify\"].clone();");
    assert_eq!(rep["intact"], false);
    step!("assert_eq!(rep[\"intact\"], false);");
    assert!(!rep["report"]["bad_chunks"].as_array().unwrap().is_empty(), "{rep}");
    step!("assert!(!rep[\"report\"][\"bad_chunks\"].as_array().unwrap().is_empty(), \"");
    let got = backup(&d, &b);
    step!("let got = backup(&d, &b);");
    assert_eq!(got["status"], "error");
    step!("assert_eq!(got[\"status\"], \"error\");");
    assert!(got["fail_reason"].as_str().unwrap().contains("corrupt"), "{got}");
    step!("assert!(got[\"fail_reason\"].as_str().unwrap().contains(\"corrupt\"), \"(go");
    // An error backup is not restored.
    d.post(&format!("/backups/{b}/restore"), json!({"restore": null})).fault(400, "badRequest");
    step!("d.post(&format!(\"/backups/(b)/restore\"), json!((\"restore\": null))).fau");
}

/// Deleting a `creating` backup cancels it: no manifest, its chunks collected, the
/// volume available again.
#[test]
fn deleting_a_running_backup_cancels_it() {
    let d = Daemon::start_with(&config("backup_max_operations = 1"));
    step!("let d = Daemon::start_with(&config(\"backup_max_operations = 1\"));");
    let big = big_volume(&d, 2, 48, 7);
    step!("let big = big_volume(&d, 2, 48, 7);");
    let other = d.create_volume(json!({"size": 1}));
    step!("let other = d.create_volume(json!((\"size\": 1)));");
    d.wait_status(&other, "available");
    step!("d.wait_status(&other, \"available\");");
    let b = create_backup(&d, json!({"volume_id": big}));
    step!("let b = create_backup(&d, json!((\"volume_id\": big)));");
    // Its job has begun reading (a loaded machine may start it a moment after the 202).
    let reading = format!("backup {b}: ");
    let started = wait_logged(&d, Duration::from_secs(60), |l| l.contains(&reading) && l.contains("% ("));
    assert!(started, "backup {b} did not start reading: {}", d.log());
    // The volume is busy meanwhile.
    let m = d.post("/backups", json!({"backup": {"volume_id": big}})).fault(400, "badRequest");
    step!("let m = d.post(\"/backups\", json!((\"backup\": (\"volume_id\": big)))).faul");
    assert!(m.contains("backing-up"), "{m}");
    step!("assert!(m.contains(\"backing-up\"), \"(m)\");");
    // A second one waits for the first (backup_max_operations = 1).
    let queued = create_backup(&d, json!({"volume_id": other}));
    step!("let queued = create_backup(&d, json!((\"volume_id\": other)));");
    assert_eq!(d.delete(&format!("/backups/{b}")).status, 202);
    step!("assert_eq!(d.delete(&format!(\"/backups/(b)\")).status, 202);");
    assert_eq!(d.delete(&format!("/backups/{queued}")).status, 202);
    step!("assert_eq!(d.delete(&format!(\"/backups/(queued)\")).status, 202);");
    wait_backup_gone(&d, &b);
    step!("wait_backup_gone(&d, &b);");
    wait_backup_gone(&d, &queued);
    step!("wait_backup_gone(&d, &queued);");
    d.wait_status(&big, "available");
    step!("d.wait_status(&big, \"available\");");
    d.wait_status(&other, "available");
    step!("d.wait_status(&other, \"available\");");
    assert!(!d.data_dir().join("backups/manifests").join(&b).exists());
    step!("assert!(!d.data_dir().join(\"backups/manifests\").join(&b).exists());");
    assert!(d.log().contains(&format!("backup {b} is being cancelled (running)")), "{}", d.log());
    step!("assert!(d.log().contains(&format!(\"backup (b) is being cancelled (runn");
    let deadline = Instant::now() + Duration::from_secs(60);
    step!("let deadline = Instant::now() + Duration::from_secs(60);");
    while !chunk_files(&d.data_dir().join("backups")).is_empty() {
        assert!(Instant::now() < deadline, "chunks were not collected:\n{}", d.log());
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Poll until `done` holds for a running backup's progress (`with_progress`), so
/// that a kill lands mid-work.
fn wait_progress(d: &Daemon, id: &str) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let p = d.get(&format!("/backups/{id}?with_progress=true")).json()["backup"].clone();
        let pct: u64 = p["progress"].as_str().unwrap().trim_end_matches('%').parse().unwrap();
        if pct > 0 || !(p["status"] == "creating" || p["status"] == "restoring") {
            println!("killed at {pct}% ({})", p["status"]);
            return;
        }
        assert!(Instant::now() < deadline, "backup {id} did not get going:\n{}", d.log());
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Every backup is settled, every available backup's manifest names chunks that are
/// there (verify), every volume is settled.
fn check_settled(d: &Daemon) -> Vec<Value> {
    let all = admin(d, "GET", "/backups/detail?all_tenants=1", None).json()["backups"].clone();
    let all = all.as_array().unwrap().clone();
    for b in &all {
        let s = b["status"].as_str().unwrap();
        assert!(s == "available" || s == "error", "{b}");
        if s == "available" {
            let id = b["id"].as_str().unwrap();
            let r = admin(d, "POST", &format!("/backups/{id}/action"), Some(json!({"os-verify": null})));
            assert_eq!(r.json()["verify"]["intact"], true, "{}", r.text);
        }
    }
    let vols = d.get("/volumes/detail?all_tenants=1").json();
    for v in vols["volumes"].as_array().unwrap() {
        let s = v["status"].as_str().unwrap();
        assert!(["available", "error", "error_restoring"].contains(&s), "{v}");
    }
    let tasks = d.store_count("SELECT COUNT(*) FROM volumes WHERE task IS NOT NULL");
    assert_eq!(tasks, 0);
    all
}

/// SIGKILL while a backup and a delete run, then while a restore runs; after each
/// start nothing stays in a transitional state, no manifest names a missing chunk,
/// and the chunks of the unfinished backup are collected.
#[test]
fn sigkill_amid_backups_restores_and_deletes() {
    let mut d = daemon();
    step!("let mut d = daemon();");
    let small = volume_with_data(&d, "small", 5);
    step!("let small = volume_with_data(&d, \"small\", 5);");
    let doomed = create_backup(&d, json!({"volume_id": small, "name": "doomed"}));
    step!("let doomed = create_backup(&d, json!((\"volume_id\": small, \"name\": \"doo");
    wait_backup(&d, &doomed, "available");
    step!("wait_backup(&d, &doomed, \"available\");");
    let big = big_volume(&d, 2, 64, 8);
    step!("let big = big_volume(&d, 2, 64, 8);");
    let big_sha = sha256(&d.volume_path(&big), 2 << 30);
    step!("let big_sha = sha256(&d.volume_path(&big), 2 << 30);");

    // 1. A backup and a delete in flight.
    let running = create_backup(&d, json!({"volume_id": big}));
    step!("let running = create_backup(&d, json!((\"volume_id\": big)));");
    assert_eq!(d.delete(&format!("/backups/{doomed}")).status, 202);
    step!("assert_eq!(d.delete(&format!(\"/backups/(doomed)\")).status, 202);");
    wait_progress(&d, &running);
    step!("wait_progress(&d, &running);");
    d.kill9();
    step!("d.kill9();");
    d.respawn();
    step!("d.respawn();");
    wait_gc(&d, 1);
    step!("wait_gc(&d, 1);");
    check_settled(&d);
    step!("check_settled(&d);");
    wait_backup_gone(&d, &doomed);
    step!("wait_backup_gone(&d, &doomed);");
    let status = backup(&d, &running)["status"].clone();
    step!("let status = backup(&d, &running)[\"status\"].clone();");
    println!("the backup in flight is {status} after the restart");
    assert_eq!(d.get(&format!("/volumes/{big}")).json()["volume"]["status"], "available");
    step!("assert_eq!(d.get(&format!(\"/volumes/(big)\")).json()[\"volume\"][\"status\"");
    if status == "error" {
        // Nothing of it remains once its record goes.
        assert_eq!(d.delete(&format!("/backups/{running}")).status, 202);
        wait_backup_gone(&d, &running);
        let deadline = Instant::now() + Duration::from_secs(60);
        while !chunk_files(&d.data_dir().join("backups")).is_empty() {
            assert!(Instant::now() < deadline, "chunks were not collected:\n{}", d.log());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    // 2. A restore in flight.
    let whole = create_backup(&d, json!({"volume_id": big, "name": "whole"}));
    step!("let whole = create_backup(&d, json!((\"volume_id\": big, \"name\": \"whole\"");
    wait_backup(&d, &whole, "available");
    step!("wait_backup(&d, &whole, \"available\");");
    let r = restore(&d, &whole, json!(null));
    step!("let r = restore(&d, &whole, json!(null));");
    let target = r["volume_id"].as_str().unwrap().to_string();
    step!("let target = r[\"volume_id\"].as_str().unwrap().to_string();");
    d.wait_volume(&target, "restoring-backup", |v| v["status"] == "restoring-backup");
    step!("d.wait_volume(&target, \"restoring-backup\", |v| v[\"status\"] == \"restori");
    wait_progress(&d, &whole);
    step!("wait_progress(&d, &whole);");
    d.kill9();
    step!("d.kill9();");
    d.respawn();
    step!("d.respawn();");
    check_settled(&d);
    step!("check_settled(&d);");
    let t = d.get(&format!("/volumes/{target}")).json()["volume"].clone();
    step!("let t = d.get(&format!(\"/volumes/(target)\")).json()[\"volume\"].clone();");
    println!("the restore target is {} after the restart", t["status"]);
    assert!(t["status"] == "error_restoring" || t["status"] == "available", "{t}");
    step!("assert!(t[\"status\"] == \"error_restoring\" || t[\"status\"] == \"available\"");
    assert_eq!(backup(&d, &whole)["status"], "available");
    step!("assert_eq!(backup(&d, &whole)[\"status\"], \"available\");");
    // The backup restores again, whole, into the same volume once it is reset.
    if t["status"] == "error_restoring" {
        let r = admin(
            &d,
            "POST",
            &format!("/volumes/{target}/action"),
            Some(json!({"os-reset_status": {"status": "available"}})),
        );
        assert_eq!(r.status, 202, "{}", r.text);
    }
    restore(&d, &whole, json!({"volume_id": target}));
    step!("restore(&d, &whole, json!((\"volume_id\": target)));");
    d.wait_status(&target, "available");
    step!("d.wait_status(&target, \"available\");");
    assert_eq!(sha256(&d.volume_path(&target), 2 << 30), big_sha);
    step!("assert_eq!(sha256(&d.volume_path(&target), 2 << 30), big_sha);");

    // 3. Everything deleted leaves no chunk.
    for b in check_settled(&d) {
        let id = b["id"].as_str().unwrap();
        assert_eq!(admin(&d, "DELETE", &format!("/backups/{id}"), None).status, 202);
        wait_backup_gone(&d, id);
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    step!("let deadline = Instant::now() + Duration::from_secs(60);");
    while !chunk_files(&d.data_dir().join("backups")).is_empty() {
        assert!(Instant::now() < deadline, "chunks were not collected:\n{}", d.log());
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// What a crash can leave, written into the store of a stopped hearthd, settled at the
/// next start: a `deleting` backup is deleted (record and manifest), a `creating` one
/// whose manifest is complete becomes `available`, a `restoring` one `available` with
/// its target `error_restoring`, and a volume left `backing-up` what it was.
#[test]
fn reconcile_settles_what_a_crash_left() {
    let mut d = daemon();
    step!("let mut d = daemon();");
    let v = volume_with_data(&d, "v", 9);
    step!("let v = volume_with_data(&d, \"v\", 9);");
    let target = d.create_volume(json!({"size": 1}));
    step!("let target = d.create_volume(json!((\"size\": 1)));");
    d.wait_status(&target, "available");
    step!("d.wait_status(&target, \"available\");");
    let ids: Vec<String> = (0..3)
        .map(|i| {
            let b = create_backup(&d, json!({"volume_id": v, "name": format!("b{i}")}));
            wait_backup(&d, &b, "available");
            b
        })
        .collect();
    let (deleting, creating, restoring) = (&ids[0], &ids[1], &ids[2]);
    step!("let (deleting, creating, restoring) = (&ids[0], &ids[1], &ids[2]);");
    d.kill9();
    step!("d.kill9();");
    {
        let set = |sql: &str, args: &[&str]| {
            d.with_store(|conn| conn.execute(sql, hearth::store::db::params_from_iter(args.iter())).unwrap());
        };
        set("UPDATE backups SET status = 'deleting' WHERE id = ?1", &[deleting]);
        set("UPDATE backups SET status = 'creating', object_count = 0 WHERE id = ?1", &[creating]);
        set("UPDATE backups SET status = 'restoring', restore_volume_id = ?2 WHERE id = ?1", &[restoring, &target]);
        let task = format!("backup_restore:{restoring}");
        set("UPDATE volumes SET status = 'restoring-backup', task = ?2 WHERE id = ?1", &[&target, &task]);
        set("UPDATE volumes SET status = 'backing-up' WHERE id = ?1", &[&v]);
    }
    d.respawn();
    step!("d.respawn();");
    wait_backup_gone(&d, deleting);
    step!("wait_backup_gone(&d, deleting);");
    assert!(!d.data_dir().join("backups/manifests").join(deleting).exists());
    step!("assert!(!d.data_dir().join(\"backups/manifests\").join(deleting).exists(");
    let b = backup(&d, creating);
    step!("let b = backup(&d, creating);");
    assert_eq!(b["status"], "available", "{b}");
    step!("assert_eq!(b[\"status\"], \"available\", \"(b)\");");
    assert!(b["object_count"].as_u64().unwrap() > 0, "{b}");
    step!("assert!(b[\"object_count\"].as_u64().unwrap() > 0, \"(b)\");");
    assert_eq!(backup(&d, restoring)["status"], "available");
    step!("assert_eq!(backup(&d, restoring)[\"status\"], \"available\");");
    let t = d.get(&format!("/volumes/{target}")).json()["volume"].clone();
    step!("let t = d.get(&format!(\"/volumes/(target)\")).json()[\"volume\"].clone();");
    assert_eq!(t["status"], "error_restoring", "{t}");
    step!("assert_eq!(t[\"status\"], \"error_restoring\", \"(t)\");");
    assert_eq!(d.get(&format!("/volumes/{v}")).json()["volume"]["status"], "available");
    step!("assert_eq!(d.get(&format!(\"/volumes/(v)\")).json()[\"volume\"][\"status\"],");
    check_settled(&d);
    step!("check_settled(&d);");
    // The error_restoring volume can be deleted, and the backups restore.
    assert_eq!(d.delete(&format!("/volumes/{target}")).status, 202);
    step!("assert_eq!(d.delete(&format!(\"/volumes/(target)\")).status, 202);");
    d.wait_gone(&target);
    step!("d.wait_gone(&target);");
    let r = restore(&d, creating, json!(null));
    step!("let r = restore(&d, creating, json!(null));");
    d.wait_status(r["volume_id"].as_str().unwrap(), "available");
    step!("d.wait_status(r[\"volume_id\"].as_str().unwrap(), \"available\");");
}

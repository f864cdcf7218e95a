//! The data directory's filesystem full (ENOSPC): requests that must write get a
//! clear error (a Cinder fault body, no panic, no dropped connection), the daemon
//! keeps serving reads, nothing is left half-made, and once space is back it carries
//! on with its store intact. The data directory is a small tmpfs (mounting needs
//! root, as CI has; elsewhere the test says so and passes).

mod common;

use std::io::Write;
use std::path::Path;
use std::process::Command;

use common::Daemon;
use serde_json::json;

const CONFIG: &str = "[quota]\nquota_volumes = 1000\nquota_gigabytes = 100000\n\n\
                      [backends.file-1]\ndriver = \"file\"\nvolume_backend_name = \"file\"\nsize_gb = 100\n";

struct Unmount(std::path::PathBuf);
impl Drop for Unmount {
    fn drop(&mut self) {
        Command::new("umount").arg("-l").arg(&self.0).status().ok();
    }
}

/// Fill the filesystem at `dir` with one file, to the last byte it takes.
fn fill(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("filler");
    let mut f = std::fs::File::create(&path).unwrap();
    let chunk = vec![0x5au8; 64 << 10];
    loop {
        if f.write_all(&chunk).is_err() {
            break;
        }
    }
    for _ in 0..64 {
        if f.write_all(&[1u8; 512]).is_err() {
            break;
        }
    }
    let _ = f.sync_all();
    path
}

#[test]
fn a_full_data_dir_gets_clear_errors_and_an_intact_store() {
    if common::sqlite_only("a full data directory") {
        return;
    }
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: mounting a tmpfs needs root");
        return;
    }
    let mut mounted = None;
    let mut d = Daemon::start_prepared(CONFIG, "info", |data| {
        std::fs::create_dir_all(data).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=48m", "hearth-test"])
            .arg(data)
            .status()
            .unwrap()
            .success();
        assert!(ok, "mounting a tmpfs on {}", data.display());
        mounted = Some(Unmount(data.to_path_buf()));
    });
    let _unmount = mounted;
    let before: Vec<String> = (0..3).map(|_| d.create_volume(json!({"size": 1}))).collect();
    for id in &before {
        d.wait_status(id, "available");
    }
    let filler = fill(&d.data_dir());
    // Writes fail with a sentence, never a panic or a dropped connection; what
    // failed leaves no record behind.
    let mut refused = 0;
    for i in 0..20 {
        let r = d.post(
            "/volumes",
            json!({"volume": {"size": 1, "name": format!("full-{i}"), "metadata": {"k": "v".repeat(200)}}}),
        );
        match r.status {
            202 => {}
            400..=599 => {
                let name = r.json().as_object().and_then(|o| o.keys().next().cloned()).unwrap_or_default();
                let msg = r.fault(r.status, &name);
                assert!(msg.contains("full") || msg.contains("space"), "{msg}");
                refused += 1;
            }
            other => panic!("status {other}: {}", r.text),
        }
        let r = d.put(&format!("/volumes/{}", before[0]), json!({"volume": {"description": "d".repeat(4000)}}));
        assert!(r.status == 200 || r.status >= 400, "{}", r.text);
        if r.status >= 400 {
            let name = r.json().as_object().and_then(|o| o.keys().next().cloned()).unwrap_or_default();
            r.fault(r.status, &name);
        }
    }
    assert!(refused > 0, "a full filesystem refused no create");
    // Reads go on.
    let r = d.get("/volumes/detail");
    assert_eq!(r.status, 200, "{}", r.text);
    // Space back: writes work again, and every volume settles.
    std::fs::remove_file(&filler).unwrap();
    let after = d.create_volume(json!({"size": 1}));
    d.wait_status(&after, "available");
    let all = d.get("/volumes/detail").json();
    for v in all["volumes"].as_array().unwrap() {
        let id = v["id"].as_str().unwrap();
        let v = d.wait_volume(id, "settled", |v| v["status"] == "available" || v["status"] == "error");
        assert!(v["status"] == "available" || v["error_reason"].is_string(), "{v}");
    }
    let log = d.log();
    assert!(!log.contains("panicked"), "{log}");
    // The store survives a restart and is sound.
    d.restart();
    let listed = d.get("/volumes/detail").json();
    assert!(listed["volumes"].as_array().unwrap().len() >= 4, "{listed}");
    for id in before.iter().chain([&after]) {
        assert_eq!(d.get(&format!("/volumes/{id}")).status, 200);
    }
    d.stop();
    let conn = rusqlite::Connection::open(d.data_dir().join("hearth.db")).unwrap();
    let check: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
    assert_eq!(check, "ok");
}

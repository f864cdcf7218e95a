//! Crash safety: SIGKILL hearthd while creates, extends and deletes are in flight,
//! start it again, and check that no record is lost, nothing stays in a transitional
//! state, and the pool holds exactly what the records say.

mod common;

use std::io::Write;

use common::{Daemon, PROJECT};
use serde_json::json;

const CONFIG: &str = r#"
[quota]
quota_volumes = 200
quota_gigabytes = 10000

[backends.file-1]
driver = "file"
volume_backend_name = "file"
size_gb = 1000
volume_clear = "zero"
"#;

fn db_tasks(d: &Daemon) -> i64 {
    let conn = rusqlite::Connection::open(d.data_dir().join("hearth.db")).unwrap();
    conn.query_row("SELECT COUNT(*) FROM volumes WHERE task IS NOT NULL", [], |r| r.get(0)).unwrap()
}

#[test]
fn sigkill_with_work_in_flight_loses_nothing() {
    let mut d = Daemon::start_with(CONFIG);
    // Volumes with real data, so that their deletes (which wipe) take a while.
    let doomed: Vec<String> = (0..6).map(|_| d.create_volume(json!({"size": 1}))).collect();
    let chunk = vec![0xabu8; 1 << 20];
    for id in &doomed {
        d.wait_status(id, "available");
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .open(d.data_dir().join("volumes/file-1").join(format!("volume-{id}")))
            .unwrap();
        for _ in 0..192 {
            f.write_all(&chunk).unwrap();
        }
        f.sync_all().unwrap();
    }
    let to_extend = d.create_volume(json!({"size": 1}));
    d.wait_status(&to_extend, "available");

    // In flight: deletes (wiping), an extend, and a burst of creates.
    for id in &doomed {
        assert_eq!(d.delete(&format!("/volumes/{id}")).status, 202);
    }
    assert_eq!(d.post(&format!("/volumes/{to_extend}/action"), json!({"os-extend": {"new_size": 3}})).status, 202);
    let created: Vec<String> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..4)
            .map(|_| {
                s.spawn(|| {
                    (0..10).map(|i| d.create_volume(json!({"size": 1 + i % 3, "name": "burst"}))).collect::<Vec<_>>()
                })
            })
            .collect();
        hs.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    d.kill9();
    let in_flight = db_tasks(&d);
    assert!(in_flight > 0, "the test must kill hearthd with work in flight");

    d.respawn();
    let log = d.log();
    assert!(log.contains("reconcile:"), "{log}");
    // Everything settles: no transitional states remain.
    for id in &created {
        let v = d.wait_volume(id, "settled", |v| v["status"] == "available" || v["status"] == "error");
        assert_eq!(v["name"], "burst");
    }
    let v = d.wait_volume(&to_extend, "settled", |v| v["status"] == "available" && v["size"] == 3);
    assert_eq!(v["size"], 3);
    for id in &doomed {
        d.wait_gone(id);
    }
    assert_eq!(db_tasks(&d), 0);
    let all = d.get("/volumes/detail?all_tenants=1").json();
    for v in all["volumes"].as_array().unwrap() {
        let s = v["status"].as_str().unwrap();
        assert!(s == "available" || s == "error", "{v}");
    }
    // The pool holds exactly the available volumes; no partial files.
    let mut expected: Vec<String> = all["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| v["status"] == "available")
        .map(|v| format!("volume-{}", v["id"].as_str().unwrap()))
        .collect();
    expected.sort();
    assert_eq!(d.volume_files("file-1"), expected);
    // Quota usage counts exactly the records.
    let u = d.get(&format!("/os-quota-sets/{PROJECT}?usage=True")).json();
    assert_eq!(u["quota_set"]["volumes"]["in_use"], all["volumes"].as_array().unwrap().len());
    assert_eq!(u["quota_set"]["volumes"]["reserved"], 0);
}

#[test]
fn unexplained_objects_are_reported_and_left_alone() {
    let mut d = Daemon::start_with(CONFIG);
    let dir = d.data_dir().join("volumes/file-1");
    let stray = dir.join("volume-00000000-0000-4000-8000-000000000001");
    let foreign = dir.join("somebody-elses.img");
    let partial = dir.join(".partial-volume-00000000-0000-4000-8000-000000000002");
    for f in [&stray, &foreign, &partial] {
        std::fs::write(f, b"data").unwrap();
    }
    d.restart();
    assert!(stray.exists() && foreign.exists());
    assert!(!partial.exists(), "partial objects are removed");
    assert!(d.log().contains("no volume record explains it"), "{}", d.log());
}

//! Reliability, measured at random through the API:
//!
//! - fault injection (`HEARTH_FAULTS`, test builds only): a thousand random operations
//!   while backend, export, backup-target and store calls fail, hang or answer
//!   nonsense at random; then nothing is left in a transitional state, quota usage is
//!   what the records add up to, the pools hold exactly what the records say, and,
//!   with the faults off, everything can be deleted down to the last file and chunk;
//!   a pool whose creates fail is skipped by rescheduling, as Cinder does;
//! - the kill -9 campaign: the same mixed workload from two clients with SIGKILL at
//!   50 random moments, hearthd started again each time; afterwards every accepted
//!   request is accounted for (done, or failed with a reason a user can read), nothing
//!   is stuck, and no file or backup chunk is left without a record. In the VM tier
//!   (`HEARTH_TEST_VG` set) the campaign runs on the scenario's LVM group with real LIO
//!   exports: no LV, target or backstore without a record either.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use common::{try_request, Daemon, Resp, PROJECT};
use hearth::export::Export;
use serde_json::{json, Value};

const INSTANCE: &str = "7f0e6f6c-1111-4222-8333-944455556666";
const POOLS: [&str; 2] = ["file-a", "file-b"];

const CONFIG: &str = r#"
[quota]
quota_volumes = 1000
quota_snapshots = 1000
quota_gigabytes = 100000
quota_backups = 1000
quota_backup_gigabytes = 100000

[backends.file-a]
driver = "file"
volume_backend_name = "file"
size_gb = 1000

[backends.file-b]
driver = "file"
volume_backend_name = "file"
size_gb = 1000
"#;

/// The LVM group of the VM tier's scenario (`HEARTH_TEST_VG`), when there is one.
fn lvm_group() -> Option<String> {
    std::env::var("HEARTH_TEST_VG").ok()
}

/// The kill -9 campaign's configuration: the two file pools, or in the VM tier the
/// scenario's LVM backend exported through LIO.
fn campaign_config() -> String {
    match lvm_group() {
        None => CONFIG.to_string(),
        Some(_) => {
            let quota = CONFIG.split("[backends").next().unwrap();
            let backends = common::backends_toml();
            format!("{quota}{backends}target_helper = \"lioadm\"\ntarget_ip_address = \"127.0.0.1\"\n")
        }
    }
}

/// hearth's objects where its volumes live, named as the file backend names them
/// (`volume-<id>`, `snapshot-<id>`, `.partial-…`): the files of the two pools, or
/// the LVs of the LVM group (`_snapshot-<id>` is `snapshot-<id>`, `_partial-volume-`
/// is `.partial-volume-`; the thin pool and others' LVs are left out).
fn pool_objects(d: &Daemon) -> BTreeSet<String> {
    let Some(vg) = lvm_group() else {
        return POOLS.iter().flat_map(|pool| d.volume_files(pool)).collect();
    };
    let out = std::process::Command::new("lvs")
        .args(["--reportformat", "json", "-o", "lv_name", &vg])
        .output()
        .expect("lvs runs");
    assert!(out.status.success(), "lvs {vg}: {}", String::from_utf8_lossy(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    report["report"][0]["lv"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|lv| {
            let name = lv["lv_name"].as_str()?;
            if name.starts_with("volume-") {
                Some(name.to_string())
            } else if let Some(id) = name.strip_prefix(hearth::names::LV_SNAPSHOT_PREFIX) {
                Some(format!("snapshot-{id}"))
            } else {
                name.strip_prefix(hearth::names::LV_PARTIAL_PREFIX).map(|id| format!(".partial-volume-{id}"))
            }
        })
        .collect()
}

/// On LVM, wait until the pools' first measurement is in (creates wait for it, and
/// in the VM it takes seconds), so that each round's window is spent on work.
fn pools_measured(d: &Daemon) {
    if lvm_group().is_none() {
        return;
    }
    wait_until(d, "pools measured", || {
        let pools = d.get("/scheduler-stats/get_pools?detail=True").json();
        pools["pools"].as_array().is_some_and(|p| {
            !p.is_empty() && p.iter().all(|p| p["capabilities"]["free_capacity_gb"].as_f64().is_some())
        })
    });
}

/// The volumes exported through LIO (targets and backstores), in the VM tier.
fn lio_exports() -> Vec<String> {
    if lvm_group().is_none() {
        return Vec::new();
    }
    let lio = common::lio_at(std::path::Path::new("/sys/kernel/config/target"));
    lio.list_exports().unwrap().iter().map(|id| id.to_string()).collect()
}

/// Random faults at every kind of point: the acting calls of the backend and the
/// export fail or hang, capacity reports are nonsense now and then, the backup
/// target loses writes and returns damaged objects, and a store commit fails.
const PLAN: &str = "backend.create_volume=fail:0.15,\
                    backend.clone_volume=fail:0.2,\
                    backend.create_volume_from_snapshot=hang:0.2,\
                    backend.extend_volume=hang:0.2,\
                    backend.delete_volume=fail:0.1,\
                    backend.create_snapshot=fail:0.15,\
                    backend.delete_snapshot=fail:0.1,\
                    backend.snapshot_device=fail:0.1,\
                    backend.capacity=nonsense:0.2,\
                    export.ensure_export=fail:0.1,\
                    export.remove_export=fail:0.1,\
                    export.allow=fail:0.1,\
                    export.deny=fail:0.1,\
                    target.put*=fail:0.05,\
                    target.get=nonsense:0.05,\
                    target.delete=fail:0.05,\
                    store.commit=fail:0.01";

const OPERATIONS: usize = 1000;

fn connector(host: &str) -> Value {
    json!({"platform": "x86_64", "os_type": "linux", "ip": "127.0.0.1", "host": host,
           "multipath": false, "initiator": format!("iqn.1994-05.com.redhat:{host}")})
}

fn list(d: &Daemon, path: &str, key: &str) -> Vec<Value> {
    let r = d.get(path);
    assert_eq!(r.status, 200, "GET {path}: {}", r.text);
    r.json()[key].as_array().cloned().unwrap_or_default()
}

fn id(v: &Value) -> String {
    v["id"].as_str().unwrap().to_string()
}

fn status(v: &Value) -> &str {
    v["status"].as_str().unwrap_or("")
}

/// Pick one of the items whose status is one of `statuses`.
fn pick<'a>(rng: &mut fastrand::Rng, items: &'a [Value], statuses: &[&str]) -> Option<&'a Value> {
    let fit: Vec<&Value> = items.iter().filter(|v| statuses.contains(&status(v))).collect();
    (!fit.is_empty()).then(|| fit[rng.usize(..fit.len())])
}

/// What the run saw, to check that the faults were felt and every answer was sane.
#[derive(Default)]
struct Tally {
    codes: BTreeMap<(String, u16), usize>,
}

impl Tally {
    /// Record an answer: a 5xx or 4xx must be Cinder's error body with a sentence.
    fn note(&mut self, op: &str, r: &Resp) {
        *self.codes.entry((op.to_string(), r.status)).or_default() += 1;
        if r.status >= 400 {
            let body: Value = serde_json::from_str(&r.text)
                .unwrap_or_else(|e| panic!("{op}: {} with a body that is not JSON ({e}): {}", r.status, r.text));
            let (_, fault) = body.as_object().and_then(|o| o.iter().next()).expect("an error body");
            assert_eq!(fault["code"], r.status, "{op}: {}", r.text);
            let message = fault["message"].as_str().unwrap_or("");
            assert!(message.len() > 10, "{op}: an error without a sentence: {}", r.text);
        }
    }
}

/// How the workload sends a request: `None` when no answer came (the daemon died).
type Call<'a> = &'a (dyn Fn(&str, &str, Value) -> Option<Resp> + Sync);

/// A request the workload sent and what came back.
struct Sent {
    op: &'static str,
    /// The object acted on (deletes, extends, detaches), if any.
    target: Option<String>,
    /// The size asked for (extends).
    size: u64,
    /// The answer; `None` when none came (the daemon died meanwhile: the request may
    /// or may not have been carried out).
    resp: Option<Resp>,
}

/// One random operation on what exists now; `None` when nothing fit or no answer came.
fn random_operation(call: Call<'_>, rng: &mut fastrand::Rng, tally: &mut Tally) -> Option<Sent> {
    let list = |path: &str, key: &str| -> Option<Vec<Value>> {
        let r = call("GET", path, Value::Null)?;
        assert_eq!(r.status, 200, "GET {path}: {}", r.text);
        // A body cut short by a SIGKILL is no answer either.
        let body: Value = serde_json::from_str(&r.text).ok()?;
        Some(body[key].as_array().cloned().unwrap_or_default())
    };
    let volumes = list("/volumes/detail", "volumes")?;
    let snapshots = list("/snapshots/detail", "snapshots")?;
    let backups = list("/backups/detail", "backups")?;
    let crowded = volumes.len() > 30;
    let roll = rng.u32(..100);
    let send = |op: &'static str, target: Option<String>, size: u64, method: &str, path: &str, body: Value| {
        Some(Sent { op, target, size, resp: call(method, path, body) })
    };
    let sent = match roll {
        0..=14 if !crowded => {
            send("create", None, 0, "POST", "/volumes", json!({"volume": {"size": rng.u64(1..=2), "name": "rel"}}))
        }
        15..=21 if !crowded => {
            let v = pick(rng, &volumes, &["available"])?;
            send("clone", None, 0, "POST", "/volumes", json!({"volume": {"size": v["size"], "source_volid": id(v)}}))
        }
        22..=27 if !crowded => {
            let s = pick(rng, &snapshots, &["available"])?;
            let body = json!({"volume": {"size": s["size"], "snapshot_id": id(s)}});
            send("from-snapshot", None, 0, "POST", "/volumes", body)
        }
        28..=33 => {
            let v = pick(rng, &volumes, &["available", "in-use"])?;
            let grown = v["size"].as_u64().unwrap() + 1;
            let body = json!({"os-extend": {"new_size": grown}});
            send("extend", Some(id(v)), grown, "POST", &format!("/volumes/{}/action", id(v)), body)
        }
        34..=43 => {
            let v = pick(rng, &volumes, &["available", "in-use"])?;
            let body = json!({"snapshot": {"volume_id": id(v), "force": true, "name": "rel"}});
            send("snapshot", None, 0, "POST", "/snapshots", body)
        }
        44..=50 => {
            let s = pick(rng, &snapshots, &["available", "error"])?;
            send("delete-snapshot", Some(id(s)), 0, "DELETE", &format!("/snapshots/{}", id(s)), Value::Null)
        }
        51..=60 => {
            let v = pick(rng, &volumes, &["available"])?;
            let body = json!({"attachment": {"volume_uuid": id(v), "instance_uuid": INSTANCE,
                              "connector": connector("compute1"), "mode": "rw"}});
            let sent = send("attach", Some(id(v)), 0, "POST", "/attachments", body)?;
            if let Some(resp) = sent.resp.as_ref().filter(|r| r.status == 200) {
                // As Nova does once the guest has the disk.
                let aid = resp.json()["attachment"]["id"].as_str().unwrap().to_string();
                if let Some(done) = call("POST", &format!("/attachments/{aid}/action"), json!({"os-complete": null})) {
                    tally.note("attach-complete", &done);
                    if done.status >= 300 {
                        // As Nova does when it cannot complete: the attachment goes.
                        if let Some(r) = call("DELETE", &format!("/attachments/{aid}"), Value::Null) {
                            tally.note("attach-rollback", &r);
                        }
                    }
                }
            }
            Some(sent)
        }
        61..=68 => {
            let v = pick(rng, &volumes, &["in-use"])?;
            let a = v["attachments"].as_array().and_then(|a| a.first())?;
            let aid = a["attachment_id"].as_str().unwrap().to_string();
            send("detach", Some(aid.clone()), 0, "DELETE", &format!("/attachments/{aid}"), Value::Null)
        }
        69..=76 => {
            let v = pick(rng, &volumes, &["available", "in-use"])?;
            let body = json!({"backup": {"volume_id": id(v), "force": true, "name": "rel", "incremental": rng.bool()}});
            send("backup", None, 0, "POST", "/backups", body)
        }
        77..=80 => {
            let b = pick(rng, &backups, &["available"])?;
            send("restore", None, 0, "POST", &format!("/backups/{}/restore", id(b)), json!({"restore": {}}))
        }
        81..=85 => {
            let b = pick(rng, &backups, &["available", "error"])?;
            send("delete-backup", Some(id(b)), 0, "DELETE", &format!("/backups/{}", id(b)), Value::Null)
        }
        _ => {
            let v = pick(rng, &volumes, &["available", "error", "error_extending", "error_restoring"])?;
            send("delete", Some(id(v)), 0, "DELETE", &format!("/volumes/{}", id(v)), Value::Null)
        }
    }?;
    if let Some(resp) = &sent.resp {
        tally.note(sent.op, resp);
    }
    Some(sent)
}

const SETTLED_VOLUME: &[&str] =
    &["available", "in-use", "error", "error_deleting", "error_extending", "error_restoring"];
const SETTLED_SNAPSHOT: &[&str] = &["available", "error", "error_deleting"];
const SETTLED_BACKUP: &[&str] = &["available", "error", "error_deleting"];

/// Wait until no volume, snapshot or backup is in a transitional state; return them.
fn settle(d: &Daemon) -> (Vec<Value>, Vec<Value>, Vec<Value>) {
    settle_allowing(d, &[])
}

/// [`settle`], taking volumes in `waiting` (states that wait for the client, not for
/// hearth) as settled too.
fn settle_allowing(d: &Daemon, waiting: &[&str]) -> (Vec<Value>, Vec<Value>, Vec<Value>) {
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let volumes = list(d, "/volumes/detail?all_tenants=1", "volumes");
        let snapshots = list(d, "/snapshots/detail?all_tenants=1", "snapshots");
        let backups = list(d, "/backups/detail?all_tenants=1", "backups");
        let busy: Vec<String> = volumes
            .iter()
            .filter(|v| !SETTLED_VOLUME.contains(&status(v)) && !waiting.contains(&status(v)))
            .chain(snapshots.iter().filter(|s| !SETTLED_SNAPSHOT.contains(&status(s))))
            .chain(backups.iter().filter(|b| !SETTLED_BACKUP.contains(&status(b))))
            .map(|x| format!("{} {}", id(x), status(x)))
            .collect();
        if busy.is_empty() {
            return (volumes, snapshots, backups);
        }
        assert!(Instant::now() < deadline, "still in transitional states after 180 s: {busy:?}\n{}", tail(d));
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn tail(d: &Daemon) -> String {
    let log = d.log();
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(60)..].join("\n")
}

fn gb(items: &[Value]) -> u64 {
    items.iter().map(|x| x["size"].as_u64().unwrap()).sum()
}

/// Quota usage is what the records add up to, with nothing reserved.
fn check_quota(d: &Daemon, volumes: &[Value], snapshots: &[Value], backups: &[Value]) {
    let u = d.get(&format!("/os-quota-sets/{PROJECT}?usage=True")).json()["quota_set"].clone();
    let expect = [
        ("volumes", volumes.len() as u64),
        ("snapshots", snapshots.len() as u64),
        ("gigabytes", gb(volumes) + gb(snapshots)),
        ("backups", backups.len() as u64),
        ("backup_gigabytes", gb(backups)),
    ];
    for (key, n) in expect {
        assert_eq!(u[key]["in_use"], n, "quota usage of {key}: {u}");
        assert_eq!(u[key]["reserved"], 0, "quota reservations of {key}: {u}");
    }
}

/// The pools hold exactly what the records say: a file (or LV) for every volume that
/// has data, none for a create that failed, none without a record, no partial one;
/// on LVM, a thin backup's snapshot LV (named after the backup) for incrementals, and
/// LIO exports only of volumes with attachments.
fn check_pools(d: &Daemon, volumes: &[Value], snapshots: &[Value], backups: &[Value]) {
    let files = pool_objects(d);
    let partial: Vec<&String> = files.iter().filter(|f| f.starts_with(".partial")).collect();
    assert!(partial.is_empty(), "partial objects stayed: {partial:?}");
    // A backup's temporary snapshot that could not be removed (a fault) stays named
    // by the backup's record, not the API, until reconcile removes it at the next start.
    let temporary: Vec<String> = d.with_store(|c| {
        let mut st = c.prepare("SELECT temp_snapshot_id FROM backups WHERE temp_snapshot_id IS NOT NULL").unwrap();
        st.query_map([], |r| r.get::<_, String>(0)).unwrap().map(Result::unwrap).collect()
    });
    let known: BTreeSet<String> = volumes
        .iter()
        .map(|v| format!("volume-{}", id(v)))
        .chain(snapshots.iter().map(|s| format!("snapshot-{}", id(s))))
        .chain(temporary.iter().map(|t| format!("snapshot-{t}")))
        .collect();
    let (kept, orphans): (Vec<&String>, Vec<&String>) =
        files.difference(&known).partition(|f| lvm_group().is_some() && f.starts_with("snapshot-"));
    assert!(orphans.is_empty(), "objects without a record: {orphans:?}");
    // A backup of a thin LV keeps the snapshot it read (its id is not in the API) for
    // the next incremental: at most one per backup. All go with the backups (see
    // `delete_everything`).
    assert!(kept.len() <= backups.len(), "{} snapshot LVs without a record, {} backups", kept.len(), backups.len());
    for v in volumes {
        let file = format!("volume-{}", id(v));
        match status(v) {
            "available" | "in-use" | "error_extending" => assert!(files.contains(&file), "no file for {v}"),
            // A volume made for a restore that failed is `error` with its data as far
            // as the restore got (hearth's and Cinder's state); it is deleted below.
            "error" if v["description"] == "auto-created_from_restore_from_backup" => {}
            "error" => assert!(!files.contains(&file), "a failed create left its file: {v}"),
            _ => {}
        }
    }
    for s in snapshots.iter().filter(|s| status(s) == "available") {
        assert!(files.contains(&format!("snapshot-{}", id(s))), "no file for {s}");
    }
    for exported in lio_exports() {
        let v = volumes.iter().find(|v| id(v) == exported);
        let attached = v.is_some_and(|v| v["attachments"].as_array().is_some_and(|a| !a.is_empty()));
        let attaching = v.is_some_and(|v| ["attaching", "reserved", "in-use"].contains(&status(v)));
        assert!(attached || attaching, "an export without an attachment: {exported}: {v:?}");
    }
}

fn chunk_count(dir: &std::path::Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries.filter_map(Result::ok).map(|e| if e.path().is_dir() { chunk_count(&e.path()) } else { 1 }).sum()
}

fn wait_until(d: &Daemon, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while !done() {
        assert!(Instant::now() < deadline, "{what}: not after 120 s\n{}", tail(d));
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Delete every backup, snapshot and volume (force-deleting what is stuck in
/// `error_deleting`); then no file, chunk or quota usage is left.
fn delete_everything(d: &Daemon, snapshots: &[Value]) {
    // Backups newest first: a backup with incrementals on it is refused (as Cinder
    // does) until they are gone.
    wait_until(d, "backups deleted", || {
        let backups = list(d, "/backups/detail?all_tenants=1", "backups");
        for b in backups.iter().filter(|b| b["has_dependent_backups"] != true) {
            let r = match status(b) {
                "error_deleting" => d.post(&format!("/backups/{}/action", id(b)), json!({"os-force_delete": {}})),
                "deleting" => continue,
                _ => d.delete(&format!("/backups/{}", id(b))),
            };
            assert_eq!(r.status, 202, "{}", r.text);
        }
        backups.is_empty()
    });
    for s in snapshots {
        let r = match status(s) {
            "error_deleting" => d.post(&format!("/snapshots/{}/action", id(s)), json!({"os-force_delete": {}})),
            _ => d.delete(&format!("/snapshots/{}", id(s))),
        };
        assert_eq!(r.status, 202, "{}", r.text);
    }
    wait_until(d, "snapshots deleted", || list(d, "/snapshots?all_tenants=1", "snapshots").is_empty());
    for v in list(d, "/volumes/detail?all_tenants=1", "volumes") {
        let r = match status(&v) {
            "available" | "error" | "error_extending" | "error_restoring" => d.delete(&format!("/volumes/{}", id(&v))),
            _ => d.post(&format!("/volumes/{}/action", id(&v)), json!({"os-force_delete": {}})),
        };
        assert_eq!(r.status, 202, "deleting {v}: {}", r.text);
    }
    wait_until(d, "volumes deleted", || list(d, "/volumes?all_tenants=1", "volumes").is_empty());
    check_quota(d, &[], &[], &[]);
    assert_eq!(pool_objects(d), BTreeSet::new(), "objects left in the pools");
    assert_eq!(lio_exports(), Vec::<String>::new(), "exports left");
    let chunks = d.data_dir().join("backups/chunks");
    wait_until(d, "backup chunks collected", || chunk_count(&chunks) == 0);
    assert!(!d.log().contains("panicked"), "a panic:\n{}", tail(d));
}

#[test]
fn a_thousand_random_operations_with_random_faults_leave_consistent_records() {
    let seed: u64 = std::env::var("HEARTH_FAULTS_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64
    });
    eprintln!("faults: seed {seed} (HEARTH_FAULTS_SEED={seed} repeats this run's choices)");
    let seed_text = seed.to_string();
    let env = [("HEARTH_FAULTS", PLAN), ("HEARTH_FAULTS_SEED", seed_text.as_str()), ("HEARTH_FAULTS_HANG_MS", "100")];
    let mut d = Daemon::start_env(CONFIG, "info", &env);
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut tally = Tally::default();
    let started = Instant::now();
    let call = |m: &str, p: &str, b: Value| Some(d.call(m, p, (!b.is_null()).then_some(b), Some(common::MV)));
    for _ in 0..OPERATIONS {
        random_operation(&call, &mut rng, &mut tally);
    }
    eprintln!("faults: {OPERATIONS} operations in {:.1} s: {:?}", started.elapsed().as_secs_f64(), tally.codes);

    let (volumes, snapshots, backups) = settle(&d);
    let log = d.log();
    let injected = log.matches("injected fault at").count();
    assert!(injected >= 50, "only {injected} faults were injected");
    assert!(!log.contains("panicked"), "a panic:\n{log}");
    // A failed commit is written again, not left as a lost outcome.
    if log.contains("injected fault at store.commit") {
        assert!(log.contains("writing again"), "a failed commit was not retried");
    }
    let accepted =
        |op: &str| tally.codes.iter().filter(|((o, c), _)| o == op && *c < 300).map(|(_, n)| n).sum::<usize>();
    for op in ["create", "snapshot", "attach", "detach", "backup", "delete"] {
        assert!(accepted(op) > 0, "no {op} was accepted: {:?}", tally.codes);
    }
    check_quota(&d, &volumes, &snapshots, &backups);
    check_pools(&d, &volumes, &snapshots, &backups);
    // An in-use volume has its attachments, an available one none (a failed extend
    // of an attached volume leaves it error_extending and attached, as in Cinder).
    for v in &volumes {
        let attachments = v["attachments"].as_array().map_or(0, Vec::len);
        match status(v) {
            "in-use" => assert!(attachments > 0, "in-use without attachments: {v}"),
            "available" => assert_eq!(attachments, 0, "available with attachments: {v}"),
            _ => {}
        }
    }

    // With the faults off (and after a restart's reconcile), everything can go.
    d.env.clear();
    d.restart();
    let (volumes, snapshots, backups) = settle(&d);
    check_quota(&d, &volumes, &snapshots, &backups);
    check_pools(&d, &volumes, &snapshots, &backups);
    for v in &volumes {
        for a in v["attachments"].as_array().into_iter().flatten() {
            let r = d.delete(&format!("/attachments/{}", a["attachment_id"].as_str().unwrap()));
            assert_eq!(r.status, 200, "{}", r.text);
        }
    }
    delete_everything(&d, &snapshots);
}

#[test]
fn a_pool_whose_creates_fail_is_skipped_by_rescheduling() {
    let env = [("HEARTH_FAULTS", "file-a/backend.create_volume=fail,file-b/backend.extend_volume=hang")];
    let d = Daemon::start_env(CONFIG, "info", &env);
    let ids: Vec<String> = (0..6).map(|_| d.create_volume(json!({"size": 1}))).collect();
    for id in &ids {
        let v = d.wait_status(id, "available");
        let host = v["os-vol-host-attr:host"].as_str().unwrap();
        assert!(host.ends_with("@file-b#file-b"), "{id} is on {host}");
    }
    let log = d.log();
    assert!(log.contains("injected fault at file-a/backend.create_volume"), "{log}");
    assert!(log.contains("attempt 1/3"), "{log}");
    // An extend that hangs past its time leaves the volume error_extending, its size
    // as it was (Cinder's state; an extend is not rescheduled).
    let r = d.post(&format!("/volumes/{}/action", ids[0]), json!({"os-extend": {"new_size": 2}}));
    assert_eq!(r.status, 202, "{}", r.text);
    let v = d.wait_volume(&ids[0], "extend failed", |v| v["status"] == "error_extending");
    assert_eq!(v["size"], 1);
    // The failure's log line follows the status change by a moment.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !d.log().contains("timed out") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(d.log().contains("timed out"), "{}", d.log());
    assert_eq!(d.volume_files("file-a"), Vec::<String>::new());
}

const KILLS: usize = 50;

/// Why an object is in `error`: a user message about it (GET /messages), or a
/// backup's `fail_reason`.
fn explained(messages: &BTreeSet<String>, x: &Value) -> bool {
    messages.contains(&id(x)) || x["fail_reason"].as_str().is_some_and(|r| !r.is_empty())
}

#[test]
fn fifty_sigkills_in_a_mixed_workload_lose_nothing() {
    let seed: u64 = std::env::var("HEARTH_KILL_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64
    });
    eprintln!("kill -9 campaign: seed {seed} (HEARTH_KILL_SEED={seed} repeats this run's choices)");
    let mut d = Daemon::start_logging(&campaign_config(), "info");
    pools_measured(&d);
    let mut rng = fastrand::Rng::with_seed(seed);
    // Every request answered with a 2xx, and every one that got no answer.
    let mut accepted: Vec<Sent> = Vec::new();
    let mut tally = Tally::default();
    let started = Instant::now();
    for round in 0..KILLS {
        let dead = std::sync::atomic::AtomicBool::new(false);
        let call = |m: &str, p: &str, b: Value| try_request(&d, PROJECT, m, p, b);
        let pid = nix::unistd::Pid::from_raw(d.pid());
        // On LVM in the VM (software emulation) work takes several times longer: the
        // windows grow so that volumes get made, snapshotted, attached and backed up.
        let wait = Duration::from_millis(if lvm_group().is_some() { rng.u64(1000..8000) } else { rng.u64(50..1500) });
        let seeds = [rng.u64(..), rng.u64(..)];
        let results: Vec<(Vec<Sent>, Tally)> = std::thread::scope(|s| {
            s.spawn(|| {
                std::thread::sleep(wait);
                nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL).unwrap();
                dead.store(true, std::sync::atomic::Ordering::SeqCst);
            });
            let clients: Vec<_> = seeds
                .iter()
                .map(|&seed| {
                    let (call, dead) = (&call, &dead);
                    s.spawn(move || {
                        let mut rng = fastrand::Rng::with_seed(seed);
                        let (mut sent, mut tally) = (Vec::new(), Tally::default());
                        while !dead.load(std::sync::atomic::Ordering::SeqCst) {
                            if let Some(x) = random_operation(call, &mut rng, &mut tally) {
                                if x.resp.as_ref().is_none_or(|r| r.status < 300) {
                                    sent.push(x);
                                }
                            }
                        }
                        (sent, tally)
                    })
                })
                .collect();
            clients.into_iter().map(|c| c.join().unwrap()).collect()
        });
        for (sent, t) in results {
            accepted.extend(sent);
            for (k, n) in t.codes {
                *tally.codes.entry(k).or_default() += n;
            }
        }
        d.kill9();
        d.respawn();
        assert!(!d.log().contains("panicked"), "round {round}: a panic:\n{}", tail(&d));
        pools_measured(&d);
    }
    eprintln!(
        "kill -9 campaign: {KILLS} kills in {:.1} s, {} requests accepted, {} unanswered: {:?}",
        started.elapsed().as_secs_f64(),
        accepted.iter().filter(|x| x.resp.is_some()).count(),
        accepted.iter().filter(|x| x.resp.is_none()).count(),
        tally.codes
    );
    for op in ["create", "snapshot", "attach", "backup", "delete"] {
        assert!(accepted.iter().any(|x| x.op == op && x.resp.is_some()), "no {op} was accepted: {:?}", tally.codes);
    }
    // A kill leaves a request unanswered; a 500 is hearth's own failure (one attach
    // in nine VM runs was, until portals refused by the kernel were tried again).
    let internal: Vec<_> = tally.codes.iter().filter(|((_, code), _)| *code == 500).collect();
    assert!(internal.is_empty(), "requests answered 500: {internal:?} (hearthd's log says why)");

    // Nothing stuck: what waits for hearth finishes; an attachment whose completion
    // was never acknowledged waits for its client (Nova), as in Cinder.
    let (volumes, snapshots, backups) = settle_allowing(&d, &["attaching", "reserved"]);
    let messages: BTreeSet<String> = list(&d, "/messages", "messages")
        .iter()
        .filter_map(|m| m["resource_uuid"].as_str().map(str::to_string))
        .collect();
    let by_id = |items: &[Value]| -> BTreeMap<String, Value> { items.iter().map(|x| (id(x), x.clone())).collect() };
    let (vols, snaps, baks) = (by_id(&volumes), by_id(&snapshots), by_id(&backups));
    // Whether a request of `op` on `target` was accepted, or sent without an answer.
    let deleted = |op: &str, target: &str| accepted.iter().any(|x| x.op == op && x.target.as_deref() == Some(target));

    // An object a request made: still there (in error only with its reason), or gone
    // by a delete that was asked for.
    let made = |items: &BTreeMap<String, Value>, id: &str, delete_op: &str, what: &str| match items.get(id) {
        None => assert!(deleted(delete_op, id), "{what}: {id} is gone without a delete"),
        Some(x) if status(x) == "error" => assert!(explained(&messages, x), "{what}: error, no reason: {x}"),
        Some(_) => {}
    };

    // Every accepted request is accounted for: done, or failed with a reason.
    for x in &accepted {
        // Unanswered requests only excuse what they may have done (see `deleted`).
        let Some(resp) = &x.resp else { continue };
        let body: Value = serde_json::from_str(&resp.text).unwrap_or(Value::Null);
        let what = format!("{} ({}): {}", x.op, resp.status, resp.text);
        match x.op {
            "create" | "clone" | "from-snapshot" | "restore" => {
                let vid = if x.op == "restore" { &body["restore"]["volume_id"] } else { &body["volume"]["id"] };
                let vid = vid.as_str().unwrap_or_else(|| panic!("no volume id in {what}"));
                match vols.get(vid) {
                    None => assert!(deleted("delete", vid), "{what}: the volume is gone without a delete"),
                    Some(v) if status(v) == "error" => {
                        // A failed restore's message is about its backup, as in Cinder.
                        let backup = body["restore"]["backup_id"].as_str().unwrap_or("-");
                        assert!(explained(&messages, v) || messages.contains(backup), "{what}: error, no reason: {v}")
                    }
                    Some(_) => {}
                }
            }
            "snapshot" => made(&snaps, body["snapshot"]["id"].as_str().unwrap(), "delete-snapshot", &what),
            "backup" => made(&baks, body["backup"]["id"].as_str().unwrap(), "delete-backup", &what),
            "delete" => {
                let vid = x.target.as_deref().unwrap();
                if let Some(v) = vols.get(vid) {
                    assert_eq!(status(v), "error_deleting", "{what}: the volume is still there: {v}");
                }
            }
            "delete-snapshot" => {
                let sid = x.target.as_deref().unwrap();
                if let Some(s) = snaps.get(sid) {
                    assert!(["error_deleting", "error"].contains(&status(s)), "{what}: still there: {s}");
                }
            }
            "delete-backup" => {
                let bid = x.target.as_deref().unwrap();
                if let Some(b) = baks.get(bid) {
                    assert!(["error", "error_deleting"].contains(&status(b)), "{what}: the backup is still there: {b}");
                }
            }
            "extend" => {
                let vid = x.target.as_deref().unwrap();
                if let Some(v) = vols.get(vid) {
                    assert!(
                        v["size"].as_u64().unwrap() >= x.size || status(v) == "error_extending",
                        "{what}: not extended to {} and not error_extending: {v}",
                        x.size
                    );
                }
            }
            "attach" => {
                let aid = body["attachment"]["id"].as_str().unwrap();
                let vid = x.target.as_deref().unwrap();
                if let Some(v) = vols.get(vid) {
                    let attached = v["attachments"].as_array().into_iter().flatten().any(|a| a["attachment_id"] == aid);
                    let reserved = ["attaching", "reserved"].contains(&status(v));
                    assert!(attached || reserved || deleted("detach", aid), "{what}: the attachment is lost: {v}");
                }
            }
            _ => {}
        }
    }
    check_quota(&d, &volumes, &snapshots, &backups);
    check_pools(&d, &volumes, &snapshots, &backups);

    // And everything can go, down to the last file and chunk.
    for v in &volumes {
        for a in v["attachments"].as_array().into_iter().flatten() {
            let r = d.delete(&format!("/attachments/{}", a["attachment_id"].as_str().unwrap()));
            assert_eq!(r.status, 200, "{}", r.text);
        }
    }
    for a in list(&d, "/attachments", "attachments") {
        let r = d.delete(&format!("/attachments/{}", id(&a)));
        assert_eq!(r.status, 200, "{}", r.text);
    }
    delete_everything(&d, &snapshots);
}

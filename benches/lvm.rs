//! LVM benchmark, run inside the VM tier's guest (real LVM):
//! `vm-tests/run.sh --disk-size 24G -- vm-tests/guest/lvm-bench.sh`.
//!
//! Thin volumes on volume group `$HEARTH_BENCH_VG`, thick ones on
//! `$HEARTH_BENCH_VG_THICK` (a large sparse disk: 500 thick volumes of 1 GiB). For each,
//! hearth first fills the group with 500 volumes (`$HEARTH_BENCH_LVS`) through the API,
//! then, side by side in alternating rounds at that count:
//! - create to `available` through hearth against a bare `lvcreate` of the same size
//!   (median of 5);
//! - thin: show and list latency, and one full capacity measurement through
//!   device-mapper ioctls against `vgs` + `lvs`;
//! - thick: delete with wipe of a 1 GiB volume (hearth: `BLKZEROOUT`, then `lvremove`)
//!   against `dd if=/dev/zero oflag=direct` of the same size.
//!
//! Without the two variables it says so and does nothing. Nothing is asserted.

use std::process::Command;
use std::time::{Duration, Instant};

use hearth::backend::lvm::LvmBackend;
use hearth::config::Config;

mod support;

use support::{start, stop, Conn};

trait Volumes {
    fn create(&mut self, size: u64) -> String;
    fn wait(&mut self, id: &str, done: impl FnMut(u16, &serde_json::Value) -> bool) {
        // A poll costs ~5 ms of the guest's two emulated CPUs, taken from the
        // lvcreate being timed: every 25 ms slows that lvcreate by ~100 ms (hearth's
        // debug log shows it); the recorded figure below polls every 250 ms.
        self.wait_every(id, Duration::from_millis(25), done)
    }
    fn wait_every(&mut self, id: &str, every: Duration, done: impl FnMut(u16, &serde_json::Value) -> bool);
}

impl Volumes for Conn {
    fn create(&mut self, size: u64) -> String {
        let (st, v) = self.req("POST", "/volumes", Some(&format!(r#"{{"volume":{{"size":{size}}}}}"#)));
        assert_eq!(st, 202, "{v}");
        v["volume"]["id"].as_str().unwrap().to_string()
    }

    fn wait_every(&mut self, id: &str, every: Duration, mut done: impl FnMut(u16, &serde_json::Value) -> bool) {
        loop {
            let (st, v) = self.req("GET", &format!("/volumes/{id}"), None);
            if done(st, &v) {
                return;
            }
            assert_ne!(v["volume"]["status"], "error", "{v}");
            std::thread::sleep(every);
        }
    }
}

fn config_text(vg: &str, lvm_type: &str, dir: &std::path::Path) -> String {
    format!(
        "data_dir = {:?}\nreport_interval = 3600\n[quota]\nquota_volumes = -1\nquota_gigabytes = -1\n\
         [backends.lvm]\ndriver = \"lvm\"\nvolume_group = \"{vg}\"\nlvm_type = \"{lvm_type}\"\nvolume_clear = \"zero\"\n\
         max_over_subscription_ratio = 100\n",
        dir.join("data").display().to_string()
    )
}

fn sh(args: &[&str]) -> Duration {
    let t = Instant::now();
    let out = Command::new(args[0]).args(&args[1..]).output().unwrap();
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    t.elapsed()
}

fn median(mut xs: Vec<Duration>) -> f64 {
    xs.sort();
    xs[xs.len() / 2].as_secs_f64() * 1000.0
}

fn pct(mut xs: Vec<Duration>, p: f64) -> f64 {
    xs.sort();
    xs[((xs.len() as f64 * p) as usize).min(xs.len() - 1)].as_secs_f64() * 1000.0
}

fn empty(vg: &str) {
    let _ = Command::new("lvremove").args(["-f", "-y", vg]).output();
}

/// `n` volumes of 1 GiB made through the API by 8 clients, waited for until
/// `available`: their ids and the time it took.
fn fill(addr: &str, n: usize) -> (Vec<String>, Duration) {
    let t = Instant::now();
    let ids: Vec<String> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..8)
            .map(|k| {
                s.spawn(move || {
                    let mut c = Conn::new(addr, "bench");
                    (k..n).step_by(8).map(|_| c.create(1)).collect::<Vec<_>>()
                })
            })
            .collect();
        hs.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    let mut c = Conn::new(addr, "bench");
    for id in &ids {
        c.wait_every(id, Duration::from_millis(250), |_, v| v["volume"]["status"] == "available");
    }
    (ids, t.elapsed())
}

fn lv_count(vg: &str) -> usize {
    String::from_utf8(Command::new("lvs").args(["--noheadings", "-o", "lv_name", vg]).output().unwrap().stdout)
        .unwrap()
        .lines()
        .filter(|l| l.trim().starts_with("volume-"))
        .count()
}

/// With the group already holding its volumes: create → available through hearth
/// (as hearth records it, and as a client polling every 25 ms sees it) against a bare
/// `lvcreate` of the same size and against that `lvcreate` through hearth's command
/// runner, in alternating rounds so that anything else the machine does falls on all
/// of them alike.
fn creates_at(c: &mut Conn, vg: &str, lvm_type: &str, rows: &mut Vec<(String, String)>) {
    let lvs = lv_count(vg);
    let lvcreate = |name: &str| -> Vec<String> {
        let mut a = vec!["--yes", "-Wy"];
        if lvm_type == "thick" {
            a.extend(["-L", "1073741824b"]);
        } else {
            a.extend(["-V", "1073741824b", "--thinpool", "hearth-thinpool"]);
        }
        a.extend(["-n", name, vg]);
        a.into_iter().map(String::from).collect()
    };
    let tool = hearth::cmd::Tool::resolve("lvcreate").unwrap();
    let (mut recorded, mut polled, mut bare, mut runner) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for i in 0..5 {
        // As hearth records it: from sending the POST to the `updated_at` of the
        // change to `available` (the same clock), polling only every 250 ms so that
        // the polls take no CPU from the lvcreate being timed.
        let sent = chrono::Utc::now().naive_utc();
        let id = c.create(1);
        let mut at = String::new();
        c.wait_every(&id, Duration::from_millis(250), |_, v| {
            at = v["volume"]["updated_at"].as_str().unwrap_or("").to_string();
            v["volume"]["status"] == "available"
        });
        let at = chrono::NaiveDateTime::parse_from_str(&at, "%Y-%m-%dT%H:%M:%S%.f").expect("updated_at");
        recorded.push((at - sent).to_std().expect("available after the POST"));
        // The bare command, then removed so that the group keeps its count.
        let name = format!("bare{i}");
        let mut argv = vec!["lvcreate".to_string()];
        argv.extend(lvcreate(&name));
        bare.push(sh(&argv.iter().map(String::as_str).collect::<Vec<_>>()));
        sh(&["lvremove", "-f", "-y", &format!("{vg}/{name}")]);
        // As a client sees it: POST, then GET every 25 ms until `available`.
        let t = Instant::now();
        let id = c.create(1);
        c.wait(&id, |_, v| v["volume"]["status"] == "available");
        polled.push(t.elapsed());
        // The same lvcreate through hearth's command runner (timeout, pipes, its own
        // process group), without the API: what the runner itself costs.
        let name = format!("runner{i}");
        let argv = lvcreate(&name);
        let t = Instant::now();
        tool.run(&argv.iter().map(String::as_str).collect::<Vec<_>>(), Duration::from_secs(120)).unwrap();
        runner.push(t.elapsed());
        sh(&["lvremove", "-f", "-y", &format!("{vg}/{name}")]);
    }
    let b = median(bare);
    for (how, xs) in [("as hearth records it", recorded), ("as a client polling every 25 ms sees it", polled)] {
        let h = median(xs);
        rows.push((
            format!("create 1 GiB {lvm_type} → available at {lvs} LVs, {how}: hearth / bare `lvcreate` (median of 5)"),
            format!("{h:.0} ms / {b:.0} ms ({:.2}×)", h / b),
        ));
    }
    rows.push((
        format!("the same `lvcreate` ({lvm_type}) through hearth's command runner (median of 5)"),
        format!("{:.0} ms", median(runner)),
    ));
}

fn main() {
    let (Ok(vg), Ok(vg_thick)) = (std::env::var("HEARTH_BENCH_VG"), std::env::var("HEARTH_BENCH_VG_THICK")) else {
        println!(
            "lvm benchmark not run: HEARTH_BENCH_VG and HEARTH_BENCH_VG_THICK are not set (run it in the VM tier's guest)"
        );
        return;
    };
    // 500 by default; HEARTH_BENCH_LVS for a shorter run (TCG makes each lvcreate
    // take most of a second).
    let n: usize = std::env::var("HEARTH_BENCH_LVS").ok().and_then(|v| v.parse().ok()).unwrap_or(500);
    let mut rows: Vec<(String, String)> = Vec::new();
    for (lvm_type, vg) in [("thin", vg.as_str()), ("thick", vg_thick.as_str())] {
        empty(vg);
        let dir = tempfile::tempdir().unwrap();
        let daemon = start(&config_text(vg, lvm_type, dir.path()), dir.path());
        let addr = daemon.addr.clone();
        // The group filled first: every create below is timed with n LVs present.
        let (ids, took) = fill(&addr, n);
        // Connected after the fill: hearthd closes a connection idle that long.
        let mut c = Conn::new(&addr, "bench");
        let lvs = lv_count(vg);
        rows.push((
            format!("{lvs} {lvm_type} volumes made through the API, 8 clients"),
            format!("{:.0} s", took.as_secs_f64()),
        ));
        creates_at(&mut c, vg, lvm_type, &mut rows);
        if lvm_type == "thick" {
            // Delete with wipe of a full 1 GiB thick volume vs dd of zeroes.
            let id = c.create(1);
            c.wait(&id, |_, v| v["volume"]["status"] == "available");
            let t = Instant::now();
            assert_eq!(c.req("DELETE", &format!("/volumes/{id}"), None).0, 202);
            c.wait(&id, |st, _| st == 404);
            let hearth = t.elapsed();
            sh(&["lvcreate", "--yes", "-Wy", "-L", "1073741824b", "-n", "ddwipe", vg]);
            let dd =
                sh(&["dd", "if=/dev/zero", &format!("of=/dev/{vg}/ddwipe"), "bs=1M", "count=1024", "oflag=direct"]);
            sh(&["lvremove", "-f", "-y", &format!("{vg}/ddwipe")]);
            rows.push((
                "delete 1 GiB thick with wipe: hearth (`BLKZEROOUT` + lvremove) / `dd if=/dev/zero oflag=direct`"
                    .into(),
                format!("{:.0} ms / {:.0} ms", hearth.as_secs_f64() * 1000.0, dd.as_secs_f64() * 1000.0),
            ));
        } else {
            let show: Vec<Duration> = (0..200)
                .map(|i| {
                    let t = Instant::now();
                    assert_eq!(c.req("GET", &format!("/volumes/{}", ids[i * 7 % ids.len()]), None).0, 200);
                    t.elapsed()
                })
                .collect();
            let detail: Vec<Duration> = (0..20)
                .map(|_| {
                    let t = Instant::now();
                    assert_eq!(c.req("GET", "/volumes/detail?limit=1000", None).0, 200);
                    t.elapsed()
                })
                .collect();
            rows.push((
                format!("show p50 / p99 with {lvs} LVs"),
                format!("{:.2} ms / {:.2} ms", pct(show.clone(), 0.5), pct(show, 0.99)),
            ));
            rows.push((format!("list detail p50 with {lvs} LVs"), format!("{:.1} ms", pct(detail, 0.5))));
            let cfg = Config::parse(&config_text(vg, "thin", dir.path()), "bench").unwrap();
            let b = LvmBackend::new(&cfg.backends["lvm"]).unwrap();
            let via_lvs: Vec<Duration> = (0..5)
                .map(|_| {
                    let t = Instant::now();
                    let c = b.capacity_with_lvs().unwrap();
                    assert!(c.total_volumes as usize >= lvs);
                    t.elapsed()
                })
                .collect();
            let via_dm: Vec<Duration> = (0..5)
                .map(|_| {
                    let t = Instant::now();
                    let c = b.capacity_with_dm().unwrap();
                    assert!(c.total_volumes as usize >= lvs);
                    t.elapsed()
                })
                .collect();
            rows.push((
                format!(
                    "a full capacity measurement with {lvs} LVs: device-mapper ioctls / `vgs` + `lvs` (median of 5)"
                ),
                format!("{:.1} ms / {:.1} ms", median(via_dm), median(via_lvs)),
            ));
        }
        stop(daemon);
        empty(vg);
    }
    println!(
        "hearth LVM benchmark (QEMU TCG guest, LVM {})",
        String::from_utf8_lossy(&Command::new("lvm").arg("version").output().unwrap().stdout)
            .lines()
            .next()
            .unwrap_or("")
            .trim()
    );
    println!();
    println!("| measure | result |");
    println!("|---|---|");
    for (k, v) in rows {
        println!("| {k} | {v} |");
    }
}

//! LIO export benchmark, run inside the VM tier's guest (real configfs):
//! `vm-tests/run.sh -- vm-tests/guest/lio-bench.sh target/release/deps/lio-<hash>`.
//!
//! Side by side in one run, exporting one block device (a loop device) as hearth does
//! it — iblock backstore, target, TPG with CHAP, LUN 0, portal, one initiator's ACL:
//! - hearth's `lio` export (`ensure_export` + `allow`), in-process;
//! - the same configfs writes by a shell script (`benches/lio-export.sh`);
//! - `targetcli`, one process given every command on stdin (its most favourable use;
//!   no saveconfig);
//!
//! each the median of 5, teardown measured apart. Then 200 exports (fileio on sparse
//! files) one after another: the time of the 1st and of the 200th with 199 present.
//!
//! Without LIO's configfs (not root, or no target_core_mod) it says so and does
//! nothing. Nothing is asserted.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use hearth::export::lio::{Backstore, LioExport, LioSettings, Portal};
use hearth::export::{Chap, Connector, Export, ExportTarget};
use hearth::ids::Id;
use hearth::model::AttachMode;

const ROOT: &str = "/sys/kernel/config/target";
const PREFIX: &str = "iqn.2010-10.org.openstack:";
const INITIATOR: &str = "iqn.1994-05.com.redhat:bench";
const ROUNDS: usize = 5;

fn median(mut xs: Vec<Duration>) -> f64 {
    xs.sort();
    xs[xs.len() / 2].as_secs_f64() * 1000.0
}

fn lio(backstore: Backstore) -> LioExport {
    LioExport::new(LioSettings {
        root: ROOT.into(),
        target_prefix: PREFIX.into(),
        portals: vec![Portal { ip: "127.0.0.1".parse().unwrap(), port: 3260 }],
        backstore,
    })
}

fn run(args: &[&str], stdin: Option<&str>) -> Duration {
    use std::io::Write;
    let t = Instant::now();
    let mut child = Command::new(args[0])
        .args(&args[1..])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{args:?}: {e}"));
    if let Some(text) = stdin {
        child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    }
    drop(child.stdin.take());
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    t.elapsed()
}

fn target(id: Id, device: &Path) -> ExportTarget {
    ExportTarget {
        volume_id: id,
        device_path: device.to_path_buf(),
        chap: Some(Chap { username: "benchuser0123456789".into(), password: "benchsecret01234".into() }),
    }
}

fn host() -> Connector {
    Connector { initiator: Some(INITIATOR.into()), host: Some("bench".into()), ip: None, multipath: false }
}

fn main() {
    if !Path::new(ROOT).is_dir() || !nix::unistd::geteuid().is_root() {
        println!("lio benchmark not run: needs root and LIO's configfs at {ROOT} (run it in the VM tier's guest)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("disk.img");
    std::fs::File::create(&image).unwrap().set_len(1 << 30).unwrap();
    let out = Command::new("losetup").args(["-f", "--show"]).arg(&image).output().unwrap();
    assert!(out.status.success(), "losetup: {}", String::from_utf8_lossy(&out.stderr));
    let loop_dev = PathBuf::from(String::from_utf8(out.stdout).unwrap().trim());
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/lio-export.sh");
    let iblock = lio(Backstore::Iblock);
    let t = target(Id::new(), &loop_dev);
    let iqn = iblock.target_iqn(t.volume_id);
    let name = format!("volume-{}", t.volume_id);
    let portal = "127.0.0.1:3260";

    let (mut h_up, mut h_down, mut s_up, mut s_down, mut c_up, mut c_down) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        let start = Instant::now();
        iblock.ensure_export(&t).unwrap();
        iblock.allow(&t, &host(), AttachMode::Rw).unwrap();
        h_up.push(start.elapsed());
        let start = Instant::now();
        iblock.remove_export(t.volume_id).unwrap();
        h_down.push(start.elapsed());

        let dev = loop_dev.to_str().unwrap();
        s_up.push(run(
            &[
                "/bin/sh",
                script,
                "create",
                &name,
                dev,
                &iqn,
                INITIATOR,
                "benchuser0123456789",
                "benchsecret01234",
                portal,
            ],
            None,
        ));
        s_down.push(run(&["/bin/sh", script, "destroy", &name, &iqn, INITIATOR, portal], None));

        let create = format!(
            "set global auto_save_on_exit=false auto_add_default_portal=false\n\
             /backstores/block create name={name} dev={dev}\n\
             /iscsi create {iqn}\n\
             /iscsi/{iqn}/tpg1/luns create /backstores/block/{name} lun=0\n\
             /iscsi/{iqn}/tpg1/portals create 127.0.0.1 3260\n\
             /iscsi/{iqn}/tpg1/acls create {INITIATOR} add_mapped_luns=true\n\
             /iscsi/{iqn}/tpg1/acls/{INITIATOR} set auth userid=benchuser0123456789 password=benchsecret01234\n\
             /iscsi/{iqn}/tpg1 set attribute authentication=1\n\
             exit\n"
        );
        c_up.push(run(&["targetcli"], Some(&create)));
        let destroy =
            format!("set global auto_save_on_exit=false\n/iscsi delete {iqn}\n/backstores/block delete {name}\nexit\n");
        c_down.push(run(&["targetcli"], Some(&destroy)));
    }

    // 200 exports, one after another, each with its own file.
    let fileio = lio(Backstore::Fileio);
    let mut each = Vec::new();
    let mut ids = Vec::new();
    for n in 0..200 {
        let f = dir.path().join(format!("v{n}"));
        std::fs::File::create(&f).unwrap().set_len(1 << 30).unwrap();
        let t = target(Id::new(), &f);
        let start = Instant::now();
        fileio.ensure_export(&t).unwrap();
        fileio.allow(&t, &host(), AttachMode::Rw).unwrap();
        each.push(start.elapsed());
        ids.push(t.volume_id);
    }
    let teardown = Instant::now();
    for id in &ids {
        fileio.remove_export(*id).unwrap();
    }
    let teardown = teardown.elapsed();
    let _ = Command::new("losetup").arg("-d").arg(&loop_dev).status();

    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let (h, s, c) = (median(h_up), median(s_up), median(c_up));
    println!("| measure | hearth | shell script | targetcli |");
    println!("|---|---|---|---|");
    println!(
        "| export: backstore + target + LUN + portal + ACL with CHAP (median of {ROUNDS}) | {h:.1} ms | {s:.1} ms | {c:.1} ms |"
    );
    println!(
        "| teardown of that export (median of {ROUNDS}) | {:.1} ms | {:.1} ms | {:.1} ms |",
        median(h_down),
        median(s_down),
        median(c_down)
    );
    println!("| hearth's speed-up | | {:.1}× | {:.1}× |", s / h, c / h);
    println!();
    println!("| 200 exports (fileio), one after another | time |");
    println!("|---|---|");
    println!("| 1st export | {:.1} ms |", ms(each[0]));
    println!("| 200th export, 199 present | {:.1} ms ({:.2}× the 1st) |", ms(each[199]), ms(each[199]) / ms(each[0]));
    println!(
        "| median of the first 10 / of the last 10 | {:.1} ms / {:.1} ms |",
        median(each[..10].to_vec()),
        median(each[190..].to_vec())
    );
    println!("| removing all 200 | {:.0} ms |", ms(teardown));
}

//! The file backend on a reflink-capable filesystem (XFS on a loop device): copies are
//! reflinks, the pool says so, and the bytes are right. Needs root and mkfs.xfs (the
//! test command installs xfsprogs); elsewhere it says why it did not run.

mod common;

use std::os::unix::fs::{FileExt, MetadataExt};

use common::xfs::Xfs;
use common::Daemon;
use serde_json::json;

#[test]
fn copies_are_reflinks_on_xfs() {
    let fs = match Xfs::mount(4) {
        Ok(fs) => fs,
        Err(why) if std::env::var_os("CI").is_none() => {
            eprintln!("reflink test not run: {why}");
            return;
        }
        Err(why) => panic!("CI must run the reflink test: {why}"),
    };
    let config = format!(
        "[backends.xfs]\ndriver = \"file\"\nvolume_backend_name = \"xfs\"\npath = {:?}\nsize_gb = 3\n",
        fs.path().display().to_string()
    );
    let d = Daemon::start_with(&config);
    let caps = d.get("/scheduler-stats/get_pools?detail=True").json()["pools"][0]["capabilities"].clone();
    assert_eq!(caps["copy_method"], "reflink", "{caps}");
    let v = d.create_volume(json!({"size": 1}));
    d.wait_status(&v, "available");
    let path = fs.path().join(format!("volume-{v}"));
    let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    let data = vec![0x42u8; 256 << 20];
    f.write_all_at(&data, 0).unwrap();
    f.sync_all().unwrap();
    // Three 1 GiB copies of 256 MiB of data fit in a 4 GiB filesystem only because
    // they share extents.
    let clones: Vec<String> = (0..3).map(|_| d.create_volume(json!({"source_volid": v}))).collect();
    for c in &clones {
        d.wait_status(c, "available");
        let cf = std::fs::File::open(fs.path().join(format!("volume-{c}"))).unwrap();
        let mut buf = vec![0u8; 4096];
        cf.read_exact_at(&mut buf, 128 << 20).unwrap();
        assert!(buf.iter().all(|&b| b == 0x42));
    }
    let vfs = nix::sys::statvfs::statvfs(fs.path()).unwrap();
    let used = (vfs.blocks() - vfs.blocks_free()) * vfs.fragment_size();
    assert!(used < 700 << 20, "copies did not share extents: {} MiB used", used >> 20);
    // A write to the source does not show in the clones (copy on write).
    f.write_all_at(&[0u8; 4096], 128 << 20).unwrap();
    let cf = std::fs::File::open(fs.path().join(format!("volume-{}", clones[0]))).unwrap();
    let mut buf = vec![0u8; 4096];
    cf.read_exact_at(&mut buf, 128 << 20).unwrap();
    assert!(buf.iter().all(|&b| b == 0x42));
    assert!(std::fs::metadata(&path).unwrap().blocks() > 0);
    drop(d);
}

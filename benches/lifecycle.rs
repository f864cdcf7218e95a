//! Lifecycle benchmark: `cargo bench --bench lifecycle`.
//!
//! - time to clone a 1 GiB volume full of data, until the clone is `available`,
//!   on a sparse-copy pool (this machine's filesystem) and on a reflink pool (XFS on
//!   a loop device; needs root and mkfs.xfs, else that row says why it is missing);
//! - the attach/detach round trip through the attachments API (create with a
//!   connector, complete, delete), as Nova does it.
//!
//! Figures are printed as a Markdown table; nothing is asserted.

#[path = "../tests/common/xfs.rs"]
mod xfs;

use std::os::unix::fs::FileExt;

use std::time::{Duration, Instant};

mod support;

use support::{start, stop, Conn};

trait Wait {
    fn wait_available(&mut self, id: &str);
}

impl Wait for Conn {
    fn wait_available(&mut self, id: &str) {
        loop {
            let (_, v) = self.req("GET", &format!("/volumes/{id}"), None);
            match v["volume"]["status"].as_str() {
                Some("available") => return,
                Some("error") => panic!("volume {id} failed"),
                _ => std::thread::sleep(Duration::from_millis(1)),
            }
        }
    }
}

fn median(mut xs: Vec<Duration>) -> f64 {
    xs.sort();
    xs[xs.len() / 2].as_secs_f64() * 1000.0
}

fn clone_time(c: &mut Conn, vtype: &str, dir: &std::path::Path) -> f64 {
    let (_, v) = c.req("POST", "/volumes", Some(&format!(r#"{{"volume":{{"size":1,"volume_type":"{vtype}"}}}}"#)));
    let id = v["volume"]["id"].as_str().unwrap().to_string();
    c.wait_available(&id);
    let f = std::fs::OpenOptions::new().write(true).open(dir.join(format!("volume-{id}"))).unwrap();
    let chunk: Vec<u8> = (0..(8 << 20)).map(|i| (i * 7 % 251) as u8).collect();
    for i in 0..128u64 {
        f.write_all_at(&chunk, i * (8 << 20)).unwrap();
    }
    f.sync_all().unwrap();
    let times: Vec<Duration> = (0..5)
        .map(|_| {
            let t = Instant::now();
            let (st, v) = c.req("POST", "/volumes", Some(&format!(r#"{{"volume":{{"source_volid":"{id}"}}}}"#)));
            assert_eq!(st, 202);
            let clone = v["volume"]["id"].as_str().unwrap().to_string();
            c.wait_available(&clone);
            let e = t.elapsed();
            c.req("DELETE", &format!("/volumes/{clone}"), None);
            e
        })
        .collect();
    median(times)
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let xfs = xfs::Xfs::mount(8);
    let mut config = String::from(
        "[quota]\nquota_volumes = -1\nquota_gigabytes = -1\n[backends.copy]\ndriver = \"file\"\nvolume_backend_name = \"copy\"\nvolume_clear = \"none\"\n",
    );
    if let Ok(x) = &xfs {
        config.push_str(&format!(
            "[backends.reflink]\ndriver = \"file\"\nvolume_backend_name = \"reflink\"\nvolume_clear = \"none\"\npath = {:?}\n",
            x.path().display().to_string()
        ));
    }
    let config = format!("data_dir = {:?}\n{config}", dir.path().join("data").display().to_string());
    let h = start(&config, dir.path());
    let addr = h.addr.clone();
    let mut c = Conn::new(&addr, "bench");
    for t in ["copy", "reflink"] {
        c.req(
            "POST",
            "/types",
            Some(&format!(r#"{{"volume_type":{{"name":"{t}","extra_specs":{{"volume_backend_name":"{t}"}}}}}}"#)),
        );
    }
    let copy = clone_time(&mut c, "copy", &dir.path().join("data/volumes/copy"));
    let reflink = match &xfs {
        Ok(x) => format!("{:.1} ms", clone_time(&mut c, "reflink", x.path())),
        Err(why) => format!("not measured: {why}"),
    };
    // Attach/detach round trips.
    let (_, v) = c.req("POST", "/volumes", Some(r#"{"volume":{"size":1,"volume_type":"copy"}}"#));
    let vid = v["volume"]["id"].as_str().unwrap().to_string();
    c.wait_available(&vid);
    let body = format!(
        r#"{{"attachment":{{"volume_uuid":"{vid}","instance_uuid":"7f0e6f6c-1111-4222-8333-944455556666","connector":{{"host":"c1","initiator":"iqn.1994-05.com.redhat:c1","ip":"127.0.0.1"}}}}}}"#
    );
    let mut trips: Vec<Duration> = (0..200)
        .map(|_| {
            let t = Instant::now();
            let (st, a) = c.req("POST", "/attachments", Some(&body));
            assert_eq!(st, 200);
            let aid = a["attachment"]["id"].as_str().unwrap().to_string();
            assert_eq!(c.req("POST", &format!("/attachments/{aid}/action"), Some(r#"{"os-complete":null}"#)).0, 204);
            assert_eq!(c.req("DELETE", &format!("/attachments/{aid}"), None).0, 200);
            t.elapsed()
        })
        .collect();
    trips.sort();
    let p = |q: f64| trips[((trips.len() as f64 * q) as usize).min(trips.len() - 1)].as_secs_f64() * 1000.0;
    stop(h);
    println!("hearth lifecycle benchmark (file backend, release build)");
    println!();
    println!("| measure | result |");
    println!("|---|---|");
    println!("| clone a 1 GiB volume full of data → available, sparse copy (ext4), median of 5 | {copy:.1} ms |");
    println!("| clone a 1 GiB volume full of data → available, reflink (XFS), median of 5 | {reflink} |");
    println!("| attach/detach round trip (attachments API: create with connector, complete, delete) p50 / p99 | {:.2} ms / {:.2} ms |", p(0.5), p(0.99));
}

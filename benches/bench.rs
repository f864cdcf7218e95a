//! hearth's API benchmark: `cargo bench` (or `cargo bench -- --volumes N`).
//!
//! Starts the release `hearthd` on an ephemeral port with a temporary data directory
//! and the file backend, fills the store with N volumes through the API, then
//! measures, over keep-alive HTTP connections like real clients use:
//!
//! - time from process start to ready (empty store, and with N volumes);
//! - p50/p99 latency of `GET /volumes/{id}`, `GET /volumes/detail?limit=1000`, and
//!   `POST /volumes` until 202;
//! - requests per second of show with 16 concurrent clients;
//! - the daemon's resident memory after all of that.
//!
//! Figures are printed as a Markdown table for the README; nothing is asserted.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

const PROJECT: &str = "bench";

mod support;

use support::{create_volumes, drain, percentiles, rss_mib, start, stop, timed, Conn, Hearthd};

fn config(dir: &std::path::Path) -> String {
    format!(
        "data_dir = {:?}\n[quota]\nquota_volumes = -1\nquota_gigabytes = -1\n[backends.file]\ndriver = \"file\"\nsize_gb = 100000\nvolume_clear = \"none\"\n",
        dir.join("data").display().to_string()
    )
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let volumes: usize = args
        .iter()
        .position(|a| a == "--volumes")
        .and_then(|i| args.get(i + 1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(10_000);
    let dir = tempfile::tempdir().unwrap();
    let d: Hearthd = start(&config(dir.path()), dir.path());
    let ready_empty = d.ready;

    // Fill the store through the API, 16 clients at a time.
    let fill = Instant::now();
    let ids =
        create_volumes(&d.addr, PROJECT, volumes, 16, r#"{"volume":{"size":1,"name":"bench","metadata":{"k":"v"}}}"#);
    let fill_time = fill.elapsed();
    // Wait until the background work is done.
    drain(&d.addr, PROJECT, Duration::from_millis(100));
    stop(d);

    // Measure on a fresh process over the full store.
    let d: Hearthd = start(&config(dir.path()), dir.path());
    let ready_full = d.ready;
    let mut c = Conn::new(&d.addr, PROJECT);
    let show = timed(2000, |i| {
        let (st, _) = c.req_raw("GET", &format!("/volumes/{}", ids[(i * 7919) % ids.len()]), None);
        assert_eq!(st, 200);
    });
    let detail = timed(50, |_| {
        let (st, b) = c.req_raw("GET", "/volumes/detail?limit=1000", None);
        assert_eq!(st, 200);
        assert!(b.len() > ids.len().min(1000) * 500);
    });
    let create = timed(300, |_| {
        let (st, _) = c.req_raw("POST", "/volumes", Some(r#"{"volume":{"size":1}}"#));
        assert_eq!(st, 202);
    });

    // Show throughput with 16 concurrent clients for 5 seconds.
    let done = AtomicBool::new(false);
    let count = AtomicU64::new(0);
    let window = Duration::from_secs(5);
    std::thread::scope(|s| {
        for t in 0..16 {
            let (addr, ids, done, count) = (d.addr.clone(), &ids, &done, &count);
            s.spawn(move || {
                let mut c = Conn::new(&addr, PROJECT);
                let mut i = t * 1000;
                while !done.load(Ordering::Relaxed) {
                    let (st, _) = c.req_raw("GET", &format!("/volumes/{}", ids[i % ids.len()]), None);
                    assert_eq!(st, 200);
                    count.fetch_add(1, Ordering::Relaxed);
                    i += 1;
                }
            });
        }
        std::thread::sleep(window);
        done.store(true, Ordering::Relaxed);
    });
    let rps = count.load(Ordering::Relaxed) as f64 / window.as_secs_f64();
    let rss = rss_mib(d.child.id());
    stop(d);

    let (s50, s99) = percentiles(show);
    let (d50, d99) = percentiles(detail);
    let (c50, c99) = percentiles(create);
    println!("hearth API benchmark: {volumes} volumes in the store (file backend), release build");
    println!();
    println!("| measure | result | target |");
    println!("|---|---|---|");
    println!("| show `GET /volumes/{{id}}` p50 / p99 | {s50:.3} ms / {s99:.3} ms | p50 < 1 ms |");
    println!("| detail `GET /volumes/detail?limit=1000` p50 / p99 | {d50:.2} ms / {d99:.2} ms | p50 < 20 ms |");
    println!("| create accepted `POST /volumes` → 202 p50 / p99 | {c50:.3} ms / {c99:.3} ms | |");
    println!("| show, 16 concurrent clients | {rps:.0} requests/s | |");
    println!("| RSS after the run | {rss:.1} MiB | < 30 MiB |");
    println!(
        "| start to ready, empty store / {volumes} volumes | {:.0} ms / {:.0} ms | < 200 ms |",
        ready_empty.as_secs_f64() * 1000.0,
        ready_full.as_secs_f64() * 1000.0
    );
    println!(
        "| filling {volumes} volumes through the API, 16 clients | {:.1} s ({:.0} creates/s) | |",
        fill_time.as_secs_f64(),
        volumes as f64 / fill_time.as_secs_f64()
    );
}

//! The cost of a create as the store grows: `cargo bench --bench scale`
//! (`-- --volumes N --points 0,10000,... --window N` to change the run).
//!
//! Starts the release `hearthd` with the file backend, and at each point of the curve
//! (volumes present: 0, 10k, 50k, 100k by default) measures creates with 8 keep-alive
//! clients: `POST /volumes` until 202, its p50/p99 and creates accepted per second,
//! after the background work of the fill is done. The fill between points goes
//! through the API too. At the last point it restarts hearthd and measures start to
//! ready, show and `detail?limit=1000` latency and the resident memory.
//!
//! The floor is this disk's: the p50 of a 4 KiB write + `fdatasync` in the same data
//! directory, measured in the same run. The figures are printed as Markdown for the
//! README and the curve is drawn to `docs/bench/scale.svg`. Nothing is asserted.

mod support;

use std::io::Write;
use std::os::unix::fs::FileExt;
use std::time::{Duration, Instant};

use support::{percentiles, rss_mib, start, stop, timed, Conn, Hearthd};

const PROJECT: &str = "bench";
const CLIENTS: usize = 8;

fn config(dir: &std::path::Path) -> String {
    format!(
        "data_dir = {:?}\n[quota]\nquota_volumes = -1\nquota_gigabytes = -1\n[backends.file]\ndriver = \"file\"\nsize_gb = 10000000\nvolume_clear = \"none\"\n",
        dir.join("data").display().to_string()
    )
}

fn arg<T: std::str::FromStr>(name: &str) -> Option<T> {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).and_then(|v| v.parse().ok())
}

/// p50 of a 4 KiB write and `fdatasync` in `dir`, in milliseconds.
fn fsync_floor(dir: &std::path::Path) -> f64 {
    let path = dir.join("fsync-probe");
    let f = std::fs::OpenOptions::new().create(true).truncate(true).read(true).write(true).open(&path).unwrap();
    let block = [0x5au8; 4096];
    let times = timed(300, |i| {
        f.write_all_at(&block, (i as u64 % 64) * 4096).unwrap();
        f.sync_data().unwrap();
    });
    std::fs::remove_file(&path).unwrap();
    percentiles(times).0
}

/// `n` creates by 8 clients at once: each one's time to 202, and the wall time.
fn creates(d: &Hearthd, n: usize, body: &str) -> (Vec<Duration>, Duration) {
    let t0 = Instant::now();
    let times = std::thread::scope(|s| {
        let handles: Vec<_> = (0..CLIENTS)
            .map(|t| {
                let addr = d.addr.clone();
                s.spawn(move || {
                    let mut c = Conn::new(&addr, PROJECT);
                    let mine = n / CLIENTS + usize::from(t < n % CLIENTS);
                    timed(mine, |_| {
                        let (st, b) = c.req_raw("POST", "/volumes", Some(body));
                        assert_eq!(st, 202, "{}", String::from_utf8_lossy(&b));
                    })
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    (times, t0.elapsed())
}

/// Wait until no volume is `creating`.
fn drain(d: &Hearthd) {
    support::drain(&d.addr, PROJECT, Duration::from_millis(200));
}

/// One point of the curve.
struct Point {
    volumes: usize,
    per_second: f64,
    p50: f64,
    p99: f64,
}

/// The curve as an SVG: creates/s (left axis) and p50 ms (right axis) against the
/// volumes present.
fn svg(points: &[Point], floor_ms: f64) -> String {
    let (w, h, left, right, top, bottom) = (640.0, 360.0, 70.0, 70.0, 40.0, 50.0);
    let (pw, ph) = (w - left - right, h - top - bottom);
    let max_x = points.iter().map(|p| p.volumes).max().unwrap_or(1).max(1) as f64;
    let max_rate = points.iter().map(|p| p.per_second).fold(1.0, f64::max) * 1.15;
    let max_ms = points.iter().map(|p| p.p50).fold(floor_ms, f64::max) * 1.15;
    let x = |v: f64| left + v / max_x * pw;
    let y = |v: f64, max: f64| top + ph - v / max * ph;
    let line = |f: &dyn Fn(&Point) -> f64, max: f64| {
        points.iter().map(|p| format!("{:.1},{:.1}", x(p.volumes as f64), y(f(p), max))).collect::<Vec<_>>().join(" ")
    };
    let mut s = String::new();
    s += &format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" font-family=\"sans-serif\" font-size=\"12\">\n"
    );
    s += &format!("<rect width=\"{w}\" height=\"{h}\" fill=\"white\"/>\n");
    s += &format!(
        "<text x=\"{}\" y=\"22\" text-anchor=\"middle\" font-size=\"14\">hearth: creates accepted (8 clients) against volumes present</text>\n",
        w / 2.0
    );
    s += &format!(
        "<path d=\"M{left},{top} V{} H{}\" stroke=\"black\" fill=\"none\"/>\n<path d=\"M{},{top} V{}\" stroke=\"black\"/>\n",
        top + ph,
        left + pw,
        left + pw,
        top + ph
    );
    for i in 0..=4 {
        let f = i as f64 / 4.0;
        let yy = top + ph - f * ph;
        s += &format!(
            "<text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\" fill=\"#1f77b4\">{:.0}</text>\n",
            left - 6.0,
            yy + 4.0,
            max_rate * f
        );
        s += &format!(
            "<text x=\"{}\" y=\"{:.1}\" fill=\"#d62728\">{:.2}</text>\n",
            left + pw + 6.0,
            yy + 4.0,
            max_ms * f
        );
        s += &format!(
            "<text x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\">{:.0}k</text>\n",
            left + f * pw,
            top + ph + 18.0,
            max_x * f / 1000.0
        );
    }
    s += &format!("<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">volumes present</text>\n", left + pw / 2.0, h - 10.0);
    s += &format!("<text x=\"16\" y=\"{}\" fill=\"#1f77b4\" transform=\"rotate(-90 16 {})\" text-anchor=\"middle\">creates/s</text>\n", top + ph / 2.0, top + ph / 2.0);
    s += &format!(
        "<text x=\"{}\" y=\"{}\" fill=\"#d62728\" transform=\"rotate(90 {} {})\" text-anchor=\"middle\">p50 ms to 202</text>\n",
        w - 14.0,
        top + ph / 2.0,
        w - 14.0,
        top + ph / 2.0
    );
    s += &format!(
        "<polyline points=\"{}\" stroke=\"#1f77b4\" stroke-width=\"2\" fill=\"none\"/>\n",
        line(&|p| p.per_second, max_rate)
    );
    s += &format!(
        "<polyline points=\"{}\" stroke=\"#d62728\" stroke-width=\"2\" fill=\"none\"/>\n",
        line(&|p| p.p50, max_ms)
    );
    let fy = y(floor_ms, max_ms);
    s += &format!(
        "<path d=\"M{left},{fy:.1} H{}\" stroke=\"#d62728\" stroke-dasharray=\"4 4\"/>\n<text x=\"{}\" y=\"{:.1}\" fill=\"#d62728\">fsync p50 {floor_ms:.2} ms</text>\n",
        left + pw,
        left + 6.0,
        fy - 4.0
    );
    s += "</svg>\n";
    s
}

fn main() {
    let volumes: usize = arg("--volumes").unwrap_or(100_000);
    let points: Vec<usize> = arg::<String>("--points")
        .map(|p| p.split(',').filter_map(|n| n.parse().ok()).collect())
        .unwrap_or_else(|| vec![0, volumes / 10, volumes / 2, volumes]);
    let window: usize = arg("--window").unwrap_or(4000);
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("data")).unwrap();
    let floor = fsync_floor(&dir.path().join("data"));
    let d = start(&config(dir.path()), dir.path());
    let ready_empty = d.ready;
    let fill_body = r#"{"volume":{"size":1,"name":"bench","metadata":{"k":"v"}}}"#;
    let mut present = 0;
    let mut curve = Vec::new();
    for &p in &points {
        if p > present {
            creates(&d, p - present, fill_body);
            present = p;
        }
        drain(&d);
        let (times, wall) = creates(&d, window, r#"{"volume":{"size":1}}"#);
        let per_second = window as f64 / wall.as_secs_f64();
        let (p50, p99) = percentiles(times);
        eprintln!("at {present} volumes: {per_second:.0} creates/s, p50 {p50:.3} ms, p99 {p99:.3} ms");
        curve.push(Point { volumes: present, per_second, p50, p99 });
        present += window;
    }
    drain(&d);
    stop(d);

    // The store as it is now, read by a fresh process.
    let d = start(&config(dir.path()), dir.path());
    let ready_full = d.ready;
    let mut c = Conn::new(&d.addr, PROJECT);
    let (_, some) = c.req("GET", "/volumes?limit=1000", None);
    let ids: Vec<String> =
        some["volumes"].as_array().unwrap().iter().map(|v| v["id"].as_str().unwrap().to_string()).collect();
    let show = timed(2000, |i| {
        let (st, _) = c.req_raw("GET", &format!("/volumes/{}", ids[(i * 7919) % ids.len()]), None);
        assert_eq!(st, 200);
    });
    let detail = timed(50, |_| {
        let (st, _) = c.req_raw("GET", "/volumes/detail?limit=1000", None);
        assert_eq!(st, 200);
    });
    let rss = rss_mib(d.child.id());
    stop(d);

    let (s50, _) = percentiles(show);
    let (d50, _) = percentiles(detail);
    let out = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/bench/scale.svg");
    std::fs::create_dir_all(out.parent().unwrap()).unwrap();
    std::fs::File::create(&out).unwrap().write_all(svg(&curve, floor).as_bytes()).unwrap();

    let first = &curve[0];
    println!(
        "hearth scale benchmark: file backend, release build, {CLIENTS} keep-alive clients, {window} creates a point"
    );
    println!();
    println!("fsync floor (4 KiB write + fdatasync in the data directory) p50: {floor:.3} ms");
    println!();
    println!("| volumes present | creates accepted/s | create → 202 p50 / p99 | vs empty store |");
    println!("|---|---|---|---|");
    for p in &curve {
        println!(
            "| {} | {:.0} | {:.2} ms / {:.2} ms | {:+.0}% creates/s, {:+.0}% p50 |",
            p.volumes,
            p.per_second,
            p.p50,
            p.p99,
            (p.per_second / first.per_second - 1.0) * 100.0,
            (p.p50 / first.p50 - 1.0) * 100.0
        );
    }
    println!();
    println!("| at {present} volumes | result | target |");
    println!("|---|---|---|");
    println!("| show p50 | {s50:.3} ms | ≤ 0.5 ms |");
    println!("| detail?limit=1000 p50 | {d50:.2} ms | ≤ 15 ms |");
    println!(
        "| start to ready (empty store / {present} volumes) | {:.0} ms / {:.0} ms | ≤ 200 ms |",
        ready_empty.as_secs_f64() * 1000.0,
        ready_full.as_secs_f64() * 1000.0
    );
    println!("| RSS after show and detail | {rss:.1} MiB | ≤ 40 MiB |");
    println!();
    println!("curve: {}", out.display());
}

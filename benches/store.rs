//! Store benchmark: `cargo bench --bench store` (or `-- --volumes N`).
//!
//! One release `hearthd` (file backend) with its store in SQLite, then one with its
//! store in PostgreSQL (a server of the benchmark's own: Debian's PostgreSQL through
//! `scripts/postgres/server.sh`, on loopback, with fsync on as in production), in the
//! same run, then a fleet of three nodes on one PostgreSQL database (each its own
//! host, data directory and port; see `crate::volume::placement`), each measured the
//! same way:
//!
//! - creates per second: N volumes through the API by 16 clients (on the fleet, 16
//!   spread over its three nodes), until each is accepted (202), and until all are
//!   `available`;
//! - p50/p99 latency of `GET /volumes/{id}` and `GET /volumes/detail?limit=100` over
//!   the N volumes (on the fleet, asked of the nodes in turn).
//!
//! Figures are printed as a Markdown table for the README; nothing is asserted.

use std::path::Path;
use std::time::{Duration, Instant};

mod support;

use support::{create_volumes, drain, percentiles, start, stop, timed, Conn};

const PROJECT: &str = "bench";

const BACKENDS: &str = "[quota]\nquota_volumes = -1\nquota_gigabytes = -1\n[backends.file]\ndriver = \"file\"\nsize_gb = 100000\nvolume_clear = \"none\"\n";

struct Figures {
    accepted_per_s: f64,
    available_per_s: f64,
    show: (f64, f64),
    detail: (f64, f64),
}

fn measure(config: &str, dir: &Path, volumes: usize) -> Figures {
    measure_nodes(&[(config.to_string(), dir.to_path_buf())], volumes)
}

/// [`measure`] over the nodes of a fleet, each started with its config in its dir.
fn measure_nodes(nodes: &[(String, std::path::PathBuf)], volumes: usize) -> Figures {
    let started: Vec<_> = nodes.iter().map(|(config, dir)| start(config, dir)).collect();
    let addrs: Vec<&str> = started.iter().map(|d| d.addr.as_str()).collect();
    let t0 = Instant::now();
    let per_node = volumes.div_ceil(addrs.len());
    let clients = (16 / addrs.len()).max(1);
    let ids: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = addrs
            .iter()
            .map(|addr| {
                s.spawn(move || {
                    create_volumes(addr, PROJECT, per_node, clients, r#"{"volume":{"size":1,"name":"bench"}}"#)
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    let accepted = t0.elapsed();
    drain(addrs[0], PROJECT, Duration::from_millis(20));
    let available = t0.elapsed();
    let mut conns: Vec<Conn> = addrs.iter().map(|a| Conn::new(a, PROJECT)).collect();
    let n = conns.len();
    let show = timed(2000, |i| {
        let (st, _) = conns[i % n].req_raw("GET", &format!("/volumes/{}", ids[(i * 7919) % ids.len()]), None);
        assert_eq!(st, 200);
    });
    let detail = timed(100, |i| {
        let (st, _) = conns[i % n].req_raw("GET", "/volumes/detail?limit=100", None);
        assert_eq!(st, 200);
    });
    let volumes = ids.len();
    started.into_iter().for_each(stop);
    Figures {
        accepted_per_s: volumes as f64 / accepted.as_secs_f64(),
        available_per_s: volumes as f64 / available.as_secs_f64(),
        show: percentiles(show),
        detail: percentiles(detail),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let volumes: usize = args
        .iter()
        .position(|a| a == "--volumes")
        .and_then(|i| args.get(i + 1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(2000);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/postgres/server.sh");

    let sqlite_dir = tempfile::tempdir().unwrap();
    let sqlite_config = format!("data_dir = {:?}\n{BACKENDS}", sqlite_dir.path().join("data"));
    let sqlite = measure(&sqlite_config, sqlite_dir.path(), volumes);

    let pg_dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let server = pg_dir.path().join("server");
    let out = std::process::Command::new(&script)
        .args(["start", server.to_str().unwrap(), &port.to_string()])
        // Durable commits, as a production server has them.
        .env("HEARTH_PG_FSYNC", "on")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mut admin =
        postgres::Client::connect(&format!("postgresql://hearth@127.0.0.1:{port}/postgres"), postgres::NoTls).unwrap();
    admin.batch_execute("CREATE DATABASE bench TEMPLATE template0 LC_COLLATE 'C' LC_CTYPE 'C'").unwrap();
    let pg_config = format!(
        "data_dir = {:?}\n{BACKENDS}\n[database]\nconnection = \"postgresql://hearth@127.0.0.1:{port}/bench\"\n",
        pg_dir.path().join("data")
    );
    let pg = measure(&pg_config, pg_dir.path(), volumes);

    // Three nodes on a database of their own, pools of the same size: the scheduler
    // spreads the volumes over the three.
    admin.batch_execute("CREATE DATABASE fleet TEMPLATE template0 LC_COLLATE 'C' LC_CTYPE 'C'").unwrap();
    let fleet_dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    // One backup repository for the fleet, as its nodes must share (none is made here).
    let backups = fleet_dirs[0].path().join("backups");
    let fleet_nodes: Vec<(String, std::path::PathBuf)> = fleet_dirs
        .iter()
        .enumerate()
        .map(|(i, dir)| {
            let config = format!(
                "host = \"node-{i}\"\ndata_dir = {:?}\nbackup_posix_path = {backups:?}\n{BACKENDS}\n[database]\n\
                 connection = \"postgresql://hearth@127.0.0.1:{port}/fleet\"\n",
                dir.path().join("data")
            );
            (config, dir.path().to_path_buf())
        })
        .collect();
    let fleet = measure_nodes(&fleet_nodes, volumes);
    let _ = std::process::Command::new(&script).args(["stop", server.to_str().unwrap()]).output();

    println!(
        "hearth store benchmark: {volumes} volumes by 16 clients (file backend), release build; one node on \
         SQLite, one on PostgreSQL, three on one PostgreSQL"
    );
    println!();
    println!("| measure | 1 node, SQLite | 1 node, PostgreSQL (loopback) | 3-node fleet, PostgreSQL |");
    println!("|---|---|---|---|");
    println!(
        "| creates accepted (202) | {:.0} /s | {:.0} /s | {:.0} /s |",
        sqlite.accepted_per_s, pg.accepted_per_s, fleet.accepted_per_s
    );
    println!(
        "| creates until available | {:.0} /s | {:.0} /s | {:.0} /s |",
        sqlite.available_per_s, pg.available_per_s, fleet.available_per_s
    );
    println!(
        "| show `GET /volumes/{{id}}` p50 / p99 | {:.3} / {:.3} ms | {:.3} / {:.3} ms | {:.3} / {:.3} ms |",
        sqlite.show.0, sqlite.show.1, pg.show.0, pg.show.1, fleet.show.0, fleet.show.1
    );
    println!(
        "| detail `GET /volumes/detail?limit=100` p50 / p99 | {:.2} / {:.2} ms | {:.2} / {:.2} ms | {:.2} / {:.2} ms |",
        sqlite.detail.0, sqlite.detail.1, pg.detail.0, pg.detail.1, fleet.detail.0, fleet.detail.1
    );
}

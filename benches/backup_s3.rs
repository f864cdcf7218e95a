//! S3 backup target throughput: `cargo bench --bench backup_s3`.
//!
//! Starts a real object store (Swift with s3api, `scripts/objectstore/swift.sh`, its
//! venv made on first use) and moves the same bytes through it two ways, in
//! alternating rounds so that both see the same machine:
//!
//! - hearth's `S3Target` (`put` / `get`, Content-MD5 on);
//! - boto3 (from the store's venv, default settings: path-style, SigV4 with a signed
//!   payload hash and a CRC32 checksum), the "plain client" the issue compares with.
//!
//! `HEARTH_BENCH_S3_OBJECTS` objects (default 100) of 4 MiB, one at a time and four at
//! a time; PUT, then GET of what was put. Figures are MB/s (10^6 bytes), printed as a
//! Markdown table with S3Target's ratio to boto3. Nothing is asserted. Swift is
//! CPU-bound on this kind of machine (Python): the figures are the store's ceiling as
//! much as the clients'.

use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use hearth::backup::{S3Settings, S3Target, Target};

const SIZE: usize = 4 << 20;
const ROUNDS: usize = 3;
const THREADS: usize = 4;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

struct Swift {
    dir: tempfile::TempDir,
    info: serde_json::Value,
}

impl Swift {
    fn start() -> Swift {
        let dir = tempfile::tempdir().unwrap();
        let ok = Command::new(repo().join("scripts/objectstore/swift.sh"))
            .arg("start")
            .arg(dir.path())
            .env("SWIFT_WATCH_PID", std::process::id().to_string())
            .status()
            .expect("running scripts/objectstore/swift.sh");
        assert!(ok.success(), "swift.sh start failed");
        let info = serde_json::from_slice(&std::fs::read(dir.path().join("objectstore.json")).unwrap()).unwrap();
        Swift { dir, info }
    }

    fn s(&self, k: &str) -> &str {
        self.info[k].as_str().unwrap()
    }
}

impl Drop for Swift {
    fn drop(&mut self) {
        let _ = Command::new(repo().join("scripts/objectstore/swift.sh")).arg("stop").arg(self.dir.path()).status();
    }
}

/// boto3 moving `count` copies of the file's bytes; its own timing, in seconds
/// (without the interpreter's start and boto3's import).
const BOTO3: &str = r#"
import sys, time, json, boto3, botocore.config
from concurrent.futures import ThreadPoolExecutor
endpoint, access, secret, region, bucket, path, count, threads, prefix, op = sys.argv[1:]
count, threads = int(count), int(threads)
data = open(path, "rb").read()
s3 = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=access, aws_secret_access_key=secret,
                  region_name=region, config=botocore.config.Config(s3={"addressing_style": "path"},
                  max_pool_connections=max(10, threads)))
def put(i): s3.put_object(Bucket=bucket, Key=f"{prefix}{i}", Body=data)
def get(i):
    body = s3.get_object(Bucket=bucket, Key=f"{prefix}{i}")["Body"].read()
    assert len(body) == len(data)
fn = put if op == "put" else get
fn(0)  # a connection and credentials in place, as for the other client
t = time.perf_counter()
with ThreadPoolExecutor(threads) as ex:
    list(ex.map(fn, range(count)))
print(json.dumps(time.perf_counter() - t))
"#;

fn boto3(swift: &Swift, file: &Path, count: usize, threads: usize, op: &str) -> Duration {
    let out = Command::new(repo().join(".venv-swift/bin/python"))
        .args(["-c", BOTO3])
        .args([
            swift.s("endpoint_url"),
            swift.s("access_key"),
            swift.s("secret_key"),
            swift.s("region"),
            swift.s("bucket"),
        ])
        .arg(file)
        .args([&count.to_string(), &threads.to_string(), "bench/boto3/", op])
        .output()
        .unwrap();
    assert!(out.status.success(), "boto3: {}", String::from_utf8_lossy(&out.stderr));
    let secs: f64 = serde_json::from_slice(&out.stdout).unwrap();
    Duration::from_secs_f64(secs)
}

fn hearth(t: &S3Target, data: &[u8], count: usize, threads: usize, op: &str) -> Duration {
    let run = |i: usize| {
        let key = format!("bench/hearth/{i}");
        if op == "put" {
            t.put(&key, data).unwrap();
        } else {
            assert_eq!(t.get(&key).unwrap().unwrap().len(), data.len());
        }
    };
    run(0);
    let next = AtomicUsize::new(0);
    let start = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= count {
                    break;
                }
                run(i);
            });
        }
    });
    start.elapsed()
}

fn mbps(bytes: usize, d: Duration) -> f64 {
    bytes as f64 / d.as_secs_f64() / 1e6
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(|a, b| a.partial_cmp(b).unwrap());
    xs[xs.len() / 2]
}

fn main() {
    let count: usize = std::env::var("HEARTH_BENCH_S3_OBJECTS").ok().and_then(|v| v.parse().ok()).unwrap_or(100);
    let swift = Swift::start();
    let mut settings =
        S3Settings::new(swift.s("endpoint_url"), swift.s("access_key"), swift.s("secret_key"), swift.s("bucket"));
    settings.region = swift.s("region").to_string();
    let target = S3Target::new(settings).unwrap();
    target.check().unwrap();

    let mut data = vec![0u8; SIZE];
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    for b in data.iter_mut() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    let file = swift.dir.path().join("object.bin");
    std::fs::write(&file, &data).unwrap();

    let total = count * SIZE;
    println!(
        "{count} x 4 MiB, {ROUNDS} rounds (median), memcached: {}",
        swift.info["memcached"].as_bool().unwrap_or(false)
    );
    println!("\n| | boto3 MB/s | S3Target MB/s | ratio |\n|---|---|---|---|");
    for (op, threads) in [("put", 1), ("get", 1), ("put", THREADS), ("get", THREADS)] {
        let (mut b, mut h) = (vec![], vec![]);
        for round in 0..ROUNDS {
            // Alternate which goes first.
            if round % 2 == 0 {
                b.push(mbps(total, boto3(&swift, &file, count, threads, op)));
                h.push(mbps(total, hearth(&target, &data, count, threads, op)));
            } else {
                h.push(mbps(total, hearth(&target, &data, count, threads, op)));
                b.push(mbps(total, boto3(&swift, &file, count, threads, op)));
            }
        }
        let (b, h) = (median(b), median(h));
        let how = if threads == 1 { "one at a time".to_string() } else { format!("{threads} at a time") };
        println!("| {} {how} | {b:.0} | {h:.0} | {:.2} |", op.to_uppercase(), h / b);
    }
}

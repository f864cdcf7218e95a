//! What the benchmarks share: starting the release `hearthd` on a configuration
//! ([`start`], [`stop`]) and an HTTP client that keeps one connection alive, as real
//! clients do, with `TCP_NODELAY`, speaking to `/v3/<project>` at the newest
//! microversion ([`Conn`]); the backup benchmarks' volume content and helpers
//! ([`volume`]). Each benchmark includes it and uses part of it.

#![allow(dead_code)]

pub mod volume;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running hearthd.
pub struct Hearthd {
    /// The process.
    pub child: Child,
    /// Where it listens (host:port).
    pub addr: String,
    /// Time from spawn to its "listening" line.
    pub ready: Duration,
}

/// Start hearthd with `config` (written to `dir/bench.toml`) on an ephemeral port.
pub fn start(config: &str, dir: &Path) -> Hearthd {
    let path = dir.join("bench.toml");
    std::fs::write(&path, config).unwrap();
    // It may hold a password: owner only, as hearthd asks.
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let t0 = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_hearthd"))
        .arg("--config")
        .arg(&path)
        .args(["--listen", "127.0.0.1:0"])
        // HEARTH_BENCH_LOG (e.g. `debug`) shows hearthd's own timings on stderr.
        .env("RUST_LOG", std::env::var("HEARTH_BENCH_LOG").unwrap_or_else(|_| "warn".into()))
        .stdout(Stdio::piped())
        .spawn()
        .expect("start hearthd");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let ready = t0.elapsed();
    let addr = line.trim().strip_prefix("hearthd: listening on http://").expect("ready line").to_string();
    Hearthd { child, addr, ready }
}

/// SIGTERM and wait.
pub fn stop(mut h: Hearthd) {
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(h.child.id() as i32), nix::sys::signal::Signal::SIGTERM);
    let _ = h.child.wait();
}

/// A keep-alive connection to hearthd.
pub struct Conn {
    s: BufReader<TcpStream>,
    addr: String,
    project: String,
    token: String,
    extra: String,
}

impl Conn {
    /// Connect to `addr` (host:port) on behalf of `project`.
    pub fn new(addr: &str, project: &str) -> Conn {
        let s = TcpStream::connect(addr).expect("connect");
        s.set_nodelay(true).unwrap();
        Conn {
            s: BufReader::new(s),
            addr: addr.into(),
            project: project.into(),
            token: format!("bench:{project}"),
            extra: String::new(),
        }
    }

    /// The same, sending `token` as `X-Auth-Token` (a Keystone token).
    pub fn with_token(addr: &str, project: &str, token: &str) -> Conn {
        let mut c = Conn::new(addr, project);
        c.token = token.into();
        c
    }

    /// Send this header too from now on.
    pub fn set_header(&mut self, name: &str, value: &str) {
        self.extra.push_str(&format!("{name}: {value}\r\n"));
    }

    /// Send `token` from now on.
    pub fn set_token(&mut self, token: &str) {
        self.token = token.into();
    }

    /// One request to `/v3/<project><path>`; (status, body bytes).
    pub fn req_raw(&mut self, method: &str, path: &str, body: Option<&str>) -> (u16, Vec<u8>) {
        let mut head = format!(
            "{method} /v3/{}{path} HTTP/1.1\r\nHost: {}\r\nX-Auth-Token: {}\r\nOpenStack-API-Version: volume latest\r\n{}",
            self.project, self.addr, self.token, self.extra
        );
        match body {
            Some(b) => {
                head.push_str(&format!("Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{b}", b.len()))
            }
            None => head.push_str("\r\n"),
        }
        self.s.get_mut().write_all(head.as_bytes()).unwrap();
        let mut line = String::new();
        self.s.read_line(&mut line).unwrap();
        let status: u16 = line.split_whitespace().nth(1).expect("status line").parse().unwrap();
        let mut len = 0usize;
        loop {
            line.clear();
            self.s.read_line(&mut line).unwrap();
            if line == "\r\n" || line.is_empty() {
                break;
            }
            if let Some((k, v)) = line.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    len = v.trim().parse().unwrap();
                }
            }
        }
        let mut buf = vec![0u8; len];
        self.s.read_exact(&mut buf).unwrap();
        (status, buf)
    }

    /// One request; (status, body as JSON, `null` when there is none).
    pub fn req(&mut self, method: &str, path: &str, body: Option<&str>) -> (u16, serde_json::Value) {
        let (status, bytes) = self.req_raw(method, path, body);
        (status, serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null))
    }
}

/// A process's resident memory in MiB (NaN when it cannot be read).
pub fn rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

/// p50 and p99 of `xs`, in milliseconds.
pub fn percentiles(mut xs: Vec<Duration>) -> (f64, f64) {
    xs.sort();
    let at = |p: f64| xs[((xs.len() as f64 * p) as usize).min(xs.len() - 1)].as_secs_f64() * 1000.0;
    (at(0.50), at(0.99))
}

/// Run `f` `n` times; how long each took.
pub fn timed(n: usize, mut f: impl FnMut(usize)) -> Vec<Duration> {
    (0..n)
        .map(|i| {
            let t = Instant::now();
            f(i);
            t.elapsed()
        })
        .collect()
}

/// Create `n` volumes with `body` through the API of `addr`, by `clients` concurrent
/// clients with a keep-alive connection each, every one accepted (202); their ids.
pub fn create_volumes(addr: &str, project: &str, n: usize, clients: usize, body: &str) -> Vec<String> {
    std::thread::scope(|s| {
        let per = n.div_ceil(clients);
        let handles: Vec<_> = (0..clients)
            .map(|t| {
                s.spawn(move || {
                    let mut c = Conn::new(addr, project);
                    (0..per)
                        .filter(|i| t * per + i < n)
                        .map(|_| {
                            let (st, b) = c.req_raw("POST", "/volumes", Some(body));
                            assert_eq!(st, 202, "{}", String::from_utf8_lossy(&b));
                            let v: serde_json::Value = serde_json::from_slice(&b).unwrap();
                            v["volume"]["id"].as_str().unwrap().to_string()
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().unwrap()).collect()
    })
}

/// Wait until no volume of `project` at `addr` is `creating`, looking every `every`.
pub fn drain(addr: &str, project: &str, every: Duration) {
    let mut c = Conn::new(addr, project);
    loop {
        let (_, v) = c.req("GET", "/volumes?status=creating&limit=1", None);
        if v["volumes"].as_array().is_some_and(|a| a.is_empty()) {
            return;
        }
        std::thread::sleep(every);
    }
}

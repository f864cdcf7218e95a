//! What an operator watches, against a real hearthd: `GET /metrics` over HTTP (admins
//! only on the API, the `metrics_listen` listener without authentication; the figures
//! follow what the daemon did: requests by route and code, volumes by status,
//! background work, flows, pools, events; the OpenMetrics text a Prometheus scrapes),
//! and `hearthd status` while it runs and after it stopped.

mod common;

use std::time::{Duration, Instant};

use common::{Daemon, PROJECT};
use serde_json::json;

const ADMIN: &str = "admin";

fn config(extra: &str) -> String {
    format!("admin_projects = [\"{ADMIN}\"]\n{extra}\n{}", common::backends_toml())
}

/// `GET /metrics` as a caller of `project`.
fn scrape(d: &Daemon, project: &str) -> common::Resp {
    let token = format!("demo:{project}");
    d.raw("GET", "/metrics", None, &[("X-Auth-Token", token.as_str())])
}

/// The value of the sample `name{labels}` (labels exactly as printed), if present.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.split(' ').next()?.parse().ok())
}

/// Every line is a comment or `name{labels} value`; the text ends with `# EOF`.
fn assert_well_formed(text: &str) {
    assert!(text.ends_with("# EOF\n"), "no # EOF at the end:\n{text}");
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("no value: {line:?}"));
        assert!(value.parse::<f64>().is_ok(), "not a number in {line:?}");
        let name = series.split('{').next().unwrap();
        assert!(
            name.starts_with("hearth_") && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "bad metric name in {line:?}"
        );
    }
}

#[test]
fn admins_see_what_the_daemon_did() {
    let d = Daemon::start_with(&config(""));
    let v = d.create_volume(json!({"size": 1, "name": "m"}));
    d.wait_status(&v, "available");
    let missing = d.get("/volumes/5a4bd6b7-0000-4000-8000-000000000000");
    assert_eq!(missing.status, 404);

    // Members and readers are refused with Cinder's fault body.
    let m = scrape(&d, PROJECT).fault(403, "forbidden");
    assert!(m.contains("hearth:metrics"), "{m}");

    // What follows a state change (the work's and flow's end, the event) comes a
    // moment after it: scrape until it is there. Every admin scrape is counted.
    let mut scrapes = 0;
    let mut scrape_when = |done: &dyn Fn(&str) -> bool| {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let r = scrape(&d, ADMIN);
            scrapes += 1;
            if r.status != 200 || done(&r.text) || Instant::now() > deadline {
                return r;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    let r = scrape_when(&|t| {
        sample(t, r#"hearth_work_duration_seconds_count{work="create volume"}"#).is_some()
            && sample(t, r#"hearth_flow_duration_seconds_count{flow="volume_create_api",outcome="done"}"#).is_some()
            && sample(t, r#"hearth_flow_duration_seconds_count{flow="volume_create_manager",outcome="done"}"#).is_some()
            && sample(t, r#"hearth_events_total{event_type="volume.create.end"}"#).is_some()
    });
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.header("Content-Type").unwrap().starts_with("application/openmetrics-text"), "{:?}", r.headers);
    let t = &r.text;
    assert_well_formed(t);
    assert_eq!(sample(t, r#"hearth_volumes{status="available"}"#), Some(1.0), "{t}");
    assert_eq!(sample(t, r#"hearth_api_requests_total{method="POST",route="/v3/volumes",code="202"}"#), Some(1.0));
    // The id is not in the label; the 404 is counted under the route's template.
    assert_eq!(sample(t, r#"hearth_api_requests_total{method="GET",route="/v3/volumes/{id}",code="404"}"#), Some(1.0));
    assert!(!t.contains(&v), "a volume id leaked into a label:\n{t}");
    assert!(sample(t, r#"hearth_api_request_duration_seconds_count{method="POST",route="/v3/volumes"}"#) >= Some(1.0));
    assert_eq!(sample(t, r#"hearth_work_duration_seconds_count{work="create volume"}"#), Some(1.0), "{t}");
    assert_eq!(sample(t, r#"hearth_work_in_flight{work="create volume"}"#), Some(0.0));
    assert_eq!(
        sample(t, r#"hearth_flow_duration_seconds_count{flow="volume_create_manager",outcome="done"}"#),
        Some(1.0)
    );
    assert_eq!(sample(t, r#"hearth_flow_duration_seconds_count{flow="volume_create_api",outcome="done"}"#), Some(1.0));
    assert_eq!(sample(t, r#"hearth_events_total{event_type="volume.create.end"}"#), Some(1.0));
    let pools: Vec<&str> = t.lines().filter(|l| l.starts_with("hearth_pool_capacity_bytes{")).collect();
    assert_eq!(pools.len(), 1, "{t}");
    assert!(sample(t, pools[0].rsplit_once(' ').unwrap().0).unwrap() > 0.0);
    assert!(t.lines().any(|l| l.starts_with("hearth_pool_up{") && l.ends_with(" 1")), "{t}");

    // A delete moves the counts: nothing left, one more event.
    assert_eq!(d.delete(&format!("/volumes/{v}")).status, 202);
    d.wait_gone(&v);
    let t = scrape_when(&|t| sample(t, r#"hearth_events_total{event_type="volume.delete.end"}"#).is_some()).text;
    assert_eq!(sample(&t, r#"hearth_volumes{status="available"}"#), None, "{t}");
    assert_eq!(sample(&t, r#"hearth_events_total{event_type="volume.delete.end"}"#), Some(1.0));
    // A scrape counts the ones before it.
    assert_eq!(
        sample(&t, r#"hearth_api_requests_total{method="GET",route="/metrics",code="200"}"#),
        Some(f64::from(scrapes - 1))
    );
    assert_eq!(sample(&t, r#"hearth_api_requests_total{method="GET",route="/metrics",code="403"}"#), Some(1.0));
}

/// The port of the metrics listener, from the daemon's log.
fn metrics_addr(d: &Daemon) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let log = d.log();
        if let Some(rest) = log.split("metrics on http://").nth(1) {
            return rest.split('/').next().unwrap().to_string();
        }
        assert!(Instant::now() < deadline, "no metrics listener in the log:\n{log}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A plain request to `addr`.
fn plain(addr: &str, method: &str, path: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(s, "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    let (head, body) = out.split_once("\r\n\r\n").unwrap_or_else(|| panic!("bad response: {out:?}"));
    (head.split_whitespace().nth(1).unwrap().parse().unwrap(), body.to_string())
}

#[test]
fn the_metrics_listener_serves_only_metrics_without_auth() {
    let d = Daemon::start_with(&config("metrics_listen = \"127.0.0.1:0\""));
    let addr = metrics_addr(&d);
    assert_ne!(addr, d.addr);
    // The pool's first measurement is taken after start-up: until then it has no
    // capacity figures and is not up.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, body) = plain(&addr, "GET", "/metrics");
        assert_eq!(status, 200, "{body}");
        assert_well_formed(&body);
        if body.contains("hearth_pool_capacity_bytes{") {
            assert!(body.lines().any(|l| l.starts_with("hearth_pool_up{") && l.ends_with(" 1")), "{body}");
            break;
        }
        assert!(body.lines().any(|l| l.starts_with("hearth_pool_up{") && l.ends_with(" 0")), "{body}");
        assert!(Instant::now() < deadline, "the pool was never measured:\n{body}");
        std::thread::sleep(Duration::from_millis(50));
    }
    let (status, body) = plain(&addr, "GET", &format!("/v3/{PROJECT}/volumes"));
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("only GET /metrics"), "{body}");
    assert_eq!(plain(&addr, "POST", "/metrics").0, 405);
}

#[test]
fn failed_flows_count_their_step() {
    let env = [("HEARTH_FAULTS", "backend.create_volume=fail")];
    let d = Daemon::start_env(&config(""), "info", &env);
    let v = d.create_volume(json!({"size": 1}));
    d.wait_status(&v, "error");
    let t = scrape(&d, ADMIN).text;
    assert_well_formed(&t);
    // Every attempt failed on the backend (one pool: one attempt).
    let failures = r#"hearth_flow_step_failures_total{flow="volume_create_manager",step="create on backend"}"#;
    assert!(sample(&t, failures) >= Some(1.0), "{t}");
    assert!(
        sample(&t, r#"hearth_flow_duration_seconds_count{flow="volume_create_manager",outcome="failed"}"#) >= Some(1.0)
    );
    assert_eq!(sample(&t, r#"hearth_volumes{status="error"}"#), Some(1.0));
    assert_eq!(sample(&t, r#"hearth_events_total{event_type="volume.create.error"}"#), Some(1.0));
}

fn status(d: &Daemon) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hearthd"))
        .args(["--config", d.config_path.to_str().unwrap(), "status"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "status failed: {text}{}", String::from_utf8_lossy(&out.stderr));
    text
}

/// Every file of `dir` (recursively) with its contents, but SQLite's `-shm` (the
/// write-ahead log's shared-memory index, which every reader of a store with a log
/// writes to: not data).
fn snapshot_of(dir: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                todo.push(p);
            } else if !p.to_string_lossy().ends_with("-shm") {
                out.push((p.display().to_string(), std::fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn status_shows_pools_states_work_and_errors_and_changes_nothing() {
    // A create that fails on the backend leaves a volume in error and a user message.
    let mut d = Daemon::start_env(&config(""), "info", &[("HEARTH_FAULTS", "backend.create_volume=fail")]);
    let bad = d.create_volume(json!({"size": 1, "name": "bad"}));
    d.wait_status(&bad, "error");
    d.env.clear();
    d.restart();
    let good = d.create_volume(json!({"size": 2, "name": "good"}));
    d.wait_status(&good, "available");

    let t = status(&d);
    assert!(t.contains("cinder-volume"), "{t}");
    let volume_service = t.lines().find(|l| l.contains("cinder-volume")).unwrap();
    assert!(volume_service.contains(" up "), "{t}");
    let pool =
        t.lines().find(|l| l.contains('#') && l.contains("% of")).unwrap_or_else(|| panic!("no pool line:\n{t}"));
    assert!(pool.contains("[#") || pool.contains("[."), "{t}");
    assert!(pool.contains("1 volumes, 2.0 GiB provisioned"), "{t}");
    assert!(t.contains("  volumes            2  available 1, error 1\n"), "{t}");
    assert!(t.contains("Work under way: 0"), "{t}");
    let errors = t.split("Last errors").nth(1).unwrap();
    assert!(errors.contains(&format!("VOLUME {bad}")) || errors.contains(&bad), "{t}");
    assert!(errors.contains("create volume from backend storage:Driver failed to create the volume."), "{t}");

    // A create whose backend call hangs is work under way until it times out.
    d.env = vec![
        ("HEARTH_FAULTS".into(), "backend.create_volume=hang".into()),
        ("HEARTH_FAULTS_HANG_MS".into(), "8000".into()),
    ];
    d.restart();
    let slow = d.create_volume(json!({"size": 1, "name": "slow"}));
    let deadline = Instant::now() + Duration::from_secs(8);
    let t = loop {
        let t = status(&d);
        if t.contains("Work under way: 1, oldest first") || Instant::now() > deadline {
            break t;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let line = t.lines().find(|l| l.contains(&slow)).unwrap_or_else(|| panic!("{slow} is not under way:\n{t}"));
    assert!(line.trim_start().starts_with("volume") && line.contains("creating"), "{t}");
    d.wait_status(&slow, "error");

    // Stopped: the rest reads the same, and the status changes nothing in the data
    // directory.
    assert!(d.stop());
    let before = snapshot_of(&d.data_dir());
    let t = status(&d);
    assert!(t.contains("  volumes            3  available 1, error 2\n"), "{t}");
    assert!(t.contains("Work under way: 0"), "{t}");
    let after = snapshot_of(&d.data_dir());
    let changed: Vec<&String> = after.iter().filter(|f| !before.contains(f)).map(|(p, _)| p).collect();
    let gone: Vec<&String> = before.iter().filter(|f| !after.contains(f)).map(|(p, _)| p).collect();
    assert!(changed.is_empty() && gone.is_empty(), "hearthd status changed {changed:?}, removed {gone:?}");
}

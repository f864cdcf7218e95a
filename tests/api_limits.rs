//! Limits that keep the API up: header and body caps, and a read timeout that drops
//! clients sending too slowly (slowloris) or sitting idle.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{Daemon, PROJECT};

fn daemon(extra: &str) -> Daemon {
    Daemon::start_with(&format!("{extra}\n{}", common::backends_toml()))
}

/// Read until the server closes the connection or `limit` passes; what was read and
/// when the connection ended (None: still open at the limit).
fn read_until_closed(s: &mut TcpStream, limit: Duration) -> (String, Option<Duration>) {
    let started = Instant::now();
    s.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while started.elapsed() < limit {
        match s.read(&mut buf) {
            Ok(0) => return (String::from_utf8_lossy(&got).into_owned(), Some(started.elapsed())),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
            Err(_) => return (String::from_utf8_lossy(&got).into_owned(), Some(started.elapsed())),
        }
    }
    (String::from_utf8_lossy(&got).into_owned(), None)
}

#[test]
fn oversized_headers_are_refused() {
    let d = daemon("max_header_size = 4096");
    let big = "x".repeat(8000);
    let r = d.raw("GET", &format!("/v3/{PROJECT}/volumes"), None, &[("X-Big", &big)]);
    assert_eq!(r.status, 431, "{r:?}");
    // Under the cap, the same request is served.
    let r = d.raw("GET", &format!("/v3/{PROJECT}/volumes"), None, &[("X-Small", "x")]);
    assert_eq!(r.status, 200, "{r:?}");
}

#[test]
fn a_client_sending_one_byte_a_second_is_dropped() {
    let d = daemon("client_socket_timeout = 2");
    let mut s = TcpStream::connect(&d.addr).unwrap();
    s.write_all(b"GET /v3/ HTTP/1.1\r\nHost: x\r\n").unwrap();
    let started = Instant::now();
    let mut closed = None;
    // One header byte every 300 ms for up to 10 s: the server must hang up after ~2 s.
    for b in b"X-Slow: ".iter().cycle().take(33) {
        std::thread::sleep(Duration::from_millis(300));
        if s.write_all(&[*b]).is_err() {
            closed = Some(started.elapsed());
            break;
        }
        let (_, ended) = read_until_closed(&mut s, Duration::from_millis(1));
        if ended.is_some() {
            closed = Some(started.elapsed());
            break;
        }
    }
    let closed = closed.expect("the server kept a connection that trickled headers for 10 s");
    assert!(closed < Duration::from_secs(6), "closed only after {closed:?}");
    // Other clients are served meanwhile and after.
    assert_eq!(d.get("/volumes").status, 200);
}

#[test]
fn a_body_that_does_not_arrive_is_a_timeout() {
    let d = daemon("client_socket_timeout = 2");
    let mut s = TcpStream::connect(&d.addr).unwrap();
    let head = format!(
        "POST /v3/{PROJECT}/volumes HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"volume\""
    );
    s.write_all(head.as_bytes()).unwrap();
    let (text, ended) = read_until_closed(&mut s, Duration::from_secs(10));
    let ended = ended.expect("the server waited 10 s for a body");
    assert!(ended < Duration::from_secs(6), "answered only after {ended:?}");
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("\"computeFault\"") && text.contains("did not arrive"), "{text}");
    // Nothing was created.
    assert_eq!(d.get("/volumes").json()["volumes"].as_array().unwrap().len(), 0);
}

#[test]
fn idle_keep_alive_connections_are_closed() {
    let d = daemon("client_socket_timeout = 1");
    let mut s = TcpStream::connect(&d.addr).unwrap();
    s.write_all(b"GET /v3/ HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let (text, ended) = read_until_closed(&mut s, Duration::from_secs(8));
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    let ended = ended.expect("an idle keep-alive connection stayed open for 8 s");
    assert!(ended < Duration::from_secs(5), "closed only after {ended:?}");
}

#[test]
fn limits_are_checked_at_start() {
    for (text, key) in [
        ("max_header_size = 10", "max_header_size"),
        ("client_socket_timeout = 0", "client_socket_timeout"),
        ("api_threads = 8\nmax_in_flight_requests = 2", "max_in_flight_requests"),
        ("ssl_cert_file = \"/nonexistent.pem\"", "ssl_key_file"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, format!("{text}\n{}", common::backends_toml())).unwrap();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_hearthd"))
            .arg("--config")
            .arg(&path)
            .arg("check-config")
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && err.contains(key), "{text}: {err}");
    }
}

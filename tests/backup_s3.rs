//! The S3 backup target against a real object store: OpenStack Swift with its s3api
//! middleware, started by these tests on loopback (`scripts/objectstore/swift.sh`, its
//! venv made on first use) in a temporary directory and stopped when the last test
//! that uses it ends (and by the script's watcher if this process dies).
//!
//! One store serves the tests that run at the same time; each works under a key
//! prefix of its own. The store pages listings by 50 keys (`SWIFT_S3_MAX_LISTING`), so
//! a listing of 120 keys needs three pages.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex, Weak};
use std::time::{Duration, Instant, SystemTime};

use hearth::backup::{S3Settings, S3Target, S3Timeouts, Target};
use hearth::error::Error;

/// Keys per listing page of the test store.
const PAGE: usize = 50;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// A Swift started from a temporary directory; stopped on drop.
struct Swift {
    dir: tempfile::TempDir,
    info: serde_json::Value,
}

impl Swift {
    /// A new store; `env` adds to swift.sh's environment.
    fn start(env: &[(&str, &str)]) -> Swift {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new(repo().join("scripts/objectstore/swift.sh"))
            .arg("start")
            .arg(dir.path())
            .env("SWIFT_WATCH_PID", std::process::id().to_string())
            .env("SWIFT_S3_MAX_LISTING", PAGE.to_string())
            .envs(env.iter().copied())
            .output()
            .expect("running scripts/objectstore/swift.sh");
        assert!(
            out.status.success(),
            "swift.sh start failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        eprintln!("{}", String::from_utf8_lossy(&out.stdout).trim());
        let info = serde_json::from_slice(&std::fs::read(dir.path().join("objectstore.json")).unwrap()).unwrap();
        Swift { dir, info }
    }

    fn get(&self, name: &str) -> &str {
        self.info[name].as_str().unwrap()
    }

    fn settings(&self) -> S3Settings {
        let mut s = S3Settings::new(
            self.get("endpoint_url"),
            self.get("access_key"),
            self.get("secret_key"),
            self.get("bucket"),
        );
        s.region = self.get("region").to_string();
        s.ca_cert_file = self.info["ca_cert_file"].as_str().map(Into::into);
        s
    }

    fn target(&self) -> S3Target {
        S3Target::new(self.settings()).unwrap()
    }

    /// The bucket's objects as the Swift API sees them in `container` (a listing).
    fn swift_listing(&self, container: &str) -> Vec<serde_json::Value> {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(30)))
            .build()
            .new_agent();
        let auth = agent
            .get(self.info["swift"]["auth_url"].as_str().unwrap())
            .header("X-Auth-User", self.info["swift"]["user"].as_str().unwrap())
            .header("X-Auth-Key", self.info["swift"]["key"].as_str().unwrap())
            .call()
            .unwrap();
        assert_eq!(auth.status(), 200);
        let token = auth.headers().get("x-auth-token").unwrap().to_str().unwrap().to_string();
        let url = format!("{}/{container}?format=json", self.info["swift"]["storage_url"].as_str().unwrap());
        let mut r = agent.get(&url).header("X-Auth-Token", &token).call().unwrap();
        if r.status() == 404 {
            return vec![];
        }
        assert_eq!(r.status(), 200);
        r.body_mut().read_json().unwrap()
    }
}

impl Drop for Swift {
    fn drop(&mut self) {
        let ok = Command::new(repo().join("scripts/objectstore/swift.sh")).arg("stop").arg(self.dir.path()).status();
        if !matches!(ok, Ok(s) if s.success()) {
            eprintln!("swift.sh stop {} failed: {ok:?}", self.dir.path().display());
        }
    }
}

/// The store shared by the tests running now (started by the first, stopped after
/// the last).
fn swift() -> Arc<Swift> {
    static SHARED: Mutex<Weak<Swift>> = Mutex::new(Weak::new());
    let mut shared = SHARED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(s) = shared.upgrade() {
        return s;
    }
    let s = Arc::new(Swift::start(&[]));
    *shared = Arc::downgrade(&s);
    s
}

/// A key prefix no other test uses.
fn prefix(name: &str) -> String {
    format!("t-{name}-{}/", &uuid::Uuid::new_v4().simple().to_string()[..8])
}

/// Bytes that differ from call to call (the content does not matter).
fn bytes(len: usize, seed: u64) -> Vec<u8> {
    common::pattern(seed, len)
}

fn backend_message(r: Result<impl std::fmt::Debug, Error>) -> String {
    match r {
        Err(Error::Backend(m)) => m,
        other => panic!("expected Error::Backend, got {other:?}"),
    }
}

#[test]
fn put_get_exists_delete() {
    let swift = swift();
    let t = swift.target();
    t.check().unwrap();
    let p = prefix("basic");
    let key = format!("{p}chunks/ab/abcdef0123");
    assert_eq!(t.get(&key).unwrap(), None);
    assert!(!t.exists(&key).unwrap());

    let data = bytes(100_000, 1);
    t.put(&key, &data).unwrap();
    assert!(t.exists(&key).unwrap());
    assert_eq!(t.get(&key).unwrap().as_deref(), Some(&data[..]));

    // An overwrite replaces the object whole.
    let other = bytes(3, 2);
    t.put(&key, &other).unwrap();
    assert_eq!(t.get(&key).unwrap().as_deref(), Some(&other[..]));

    // An empty object is an object.
    let empty = format!("{p}empty");
    t.put(&empty, b"").unwrap();
    assert_eq!(t.get(&empty).unwrap(), Some(vec![]));
    assert!(t.exists(&empty).unwrap());

    t.delete(&key).unwrap();
    assert!(!t.exists(&key).unwrap());
    assert_eq!(t.get(&key).unwrap(), None);
    // Deleting what is gone is Ok.
    t.delete(&key).unwrap();
    t.delete(&empty).unwrap();
    assert!(t.list(&p).unwrap().is_empty());
}

#[test]
fn list_pages_through_more_keys_than_one_page() {
    let swift = swift();
    let t = Arc::new(swift.target());
    let p = prefix("list");
    let outside = prefix("list-outside");
    let before = SystemTime::now() - Duration::from_secs(5);
    let mut want: Vec<String> = (0..120).map(|i| format!("{p}chunks/{:02x}/{i:04}", i % 7)).collect();
    // Four threads at once: the target is shared by the repository's workers.
    std::thread::scope(|s| {
        for slice in want.chunks(30) {
            let t = &t;
            s.spawn(move || {
                for k in slice {
                    t.put(k, k.as_bytes()).unwrap();
                }
            });
        }
    });
    t.put(&format!("{outside}x"), b"x").unwrap();
    let after = SystemTime::now() + Duration::from_secs(5);

    let mut got = t.list(&p).unwrap();
    assert!(got.len() > 2 * PAGE, "the listing must span pages");
    for (k, modified) in &got {
        assert!(*modified > before && *modified < after, "{k}: {modified:?}");
    }
    got.sort();
    want.sort();
    assert_eq!(got.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>(), want);

    // A deeper prefix; the whole bucket.
    let sub = format!("{p}chunks/03/");
    let n = t.list(&sub).unwrap().len();
    assert_eq!(n, want.iter().filter(|k| k.starts_with(&sub)).count());
    let all = t.list("").unwrap();
    assert!(all.iter().any(|(k, _)| k == &format!("{outside}x")));
    assert!(want.iter().all(|w| all.iter().any(|(k, _)| k == w)));
    // A prefix with nothing under it.
    assert!(t.list(&prefix("none")).unwrap().is_empty());
}

#[test]
fn put_new_writes_only_when_there_is_no_object() {
    let swift = swift();
    let t = Arc::new(swift.target());
    let p = prefix("putnew");
    let key = format!("{p}locks/exclusive");
    assert!(t.put_new(&key, b"first").unwrap());
    assert!(!t.put_new(&key, b"second").unwrap());
    assert_eq!(t.get(&key).unwrap().as_deref(), Some(&b"first"[..]));
    t.delete(&key).unwrap();
    assert!(t.put_new(&key, b"third").unwrap());

    // Eight writers race for one key, ROUNDS times. Swift checks If-None-Match when a
    // PUT starts, so overlapping PUTs all store (put_new is best effort there): at
    // least one writer wins, every winner read its own bytes back, and the object
    // holds a winner's bytes.
    let mut contested = 0;
    const ROUNDS: usize = 10;
    for round in 0..ROUNDS {
        let race = format!("{p}locks/race-{round}");
        let barrier = Barrier::new(8);
        let winners: Vec<usize> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|i| {
                    let (t, race, barrier) = (&t, &race, &barrier);
                    s.spawn(move || {
                        barrier.wait();
                        t.put_new(race, format!("writer {i}").as_bytes()).unwrap().then_some(i)
                    })
                })
                .collect();
            handles.into_iter().filter_map(|h| h.join().unwrap()).collect()
        });
        assert!(!winners.is_empty(), "round {round}: nobody won");
        let stored = String::from_utf8(t.get(&race).unwrap().unwrap()).unwrap();
        assert!(winners.iter().any(|w| stored == format!("writer {w}")), "round {round}: {stored} not in {winners:?}");
        if winners.len() > 1 {
            contested += 1;
        }
        assert!(!t.put_new(&race, b"late").unwrap());
    }
    eprintln!("put_new races on Swift: {contested} of {ROUNDS} rounds had more than one winner");
}

#[test]
fn large_objects_go_in_parts() {
    let swift = swift();
    let mut settings = swift.settings();
    settings.object_size = 5 * 1024 * 1024;
    let t = S3Target::new(settings).unwrap();
    let p = prefix("large");
    let key = format!("{p}manifests/big");
    let data = bytes(12 * 1024 * 1024 + 123, 3);
    t.put(&key, &data).unwrap();
    assert_eq!(t.get(&key).unwrap().as_deref(), Some(&data[..]));
    assert!(t.exists(&key).unwrap());
    // Swift's s3api keeps the parts of a multipart upload in <bucket>+segments.
    let bucket = swift.get("bucket");
    let segments = swift.swift_listing(&format!("{bucket}+segments"));
    let ours = segments.iter().filter(|o| o["name"].as_str().unwrap().starts_with(&key)).count();
    assert_eq!(ours, 3, "three parts: {segments:?}");

    // Exactly the limit is one PUT; put_new of a large object works too.
    let exact = format!("{p}exact");
    t.put(&exact, &data[..5 * 1024 * 1024]).unwrap();
    assert_eq!(t.get(&exact).unwrap().unwrap().len(), 5 * 1024 * 1024);
    let new_big = format!("{p}new-big");
    assert!(t.put_new(&new_big, &data).unwrap());
    assert!(!t.put_new(&new_big, b"x").unwrap());
    assert_eq!(t.get(&new_big).unwrap().as_deref(), Some(&data[..]));

    // Overwritten by a small object, deleted.
    t.put(&key, b"small").unwrap();
    assert_eq!(t.get(&key).unwrap().as_deref(), Some(&b"small"[..]));
    for k in [&key, &exact, &new_big] {
        t.delete(k).unwrap();
    }
    assert!(t.list(&p).unwrap().is_empty());
}

#[test]
fn wrong_credentials_and_bucket_are_clear_errors() {
    let swift = swift();
    let right = swift.get("secret_key").to_string();
    let mut settings = swift.settings();
    settings.secret_key = "not-the-secret-0123456789".into();
    let t = S3Target::new(settings).unwrap().with_retry_delay(Duration::from_millis(1));
    let p = prefix("wrong");
    let mut messages = vec![
        backend_message(t.check()),
        backend_message(t.put(&format!("{p}k"), b"data")),
        backend_message(t.get(&format!("{p}k"))),
        backend_message(t.list(&p)),
        backend_message(t.put_new(&format!("{p}k"), b"data")),
    ];
    for m in &messages {
        assert!(m.contains("403"), "{m}");
        assert!(m.contains("backup_s3_store_secret_key"), "{m}");
        assert!(m.starts_with(&format!("S3 backup target {}: ", t.describe())), "{m}");
    }
    assert!(messages[0].contains("SignatureDoesNotMatch"), "{}", messages[0]);
    assert!(messages[1].contains(&format!("PUT {p}k")), "{}", messages[1]);

    let mut settings = swift.settings();
    settings.access_key = "nobody:nobody".into();
    let t = S3Target::new(settings).unwrap();
    let m = backend_message(t.check());
    assert!(m.contains("403") && m.contains("backup_s3_store_access_key"), "{m}");
    messages.push(m);

    let mut settings = swift.settings();
    settings.bucket = "no-such-bucket".into();
    let t = S3Target::new(settings).unwrap();
    let m = backend_message(t.check());
    assert!(m.contains("NoSuchBucket") && m.contains("backup_s3_store_bucket"), "{m}");
    // A missing bucket is an error for get too, not "no such object".
    messages.push(backend_message(t.get("k")));
    messages.push(m);

    for m in &messages {
        assert!(!m.contains(&right), "the secret key in {m}");
        assert!(!m.contains("not-the-secret"), "the (wrong) secret key in {m}");
        assert!(!m.contains("X-Amz-Signature"), "a signed URL in {m}");
    }
}

/// A proxy that flips one byte of each request body on its way to the store (the
/// 100th byte after the first request's headers on each connection).
fn corrupting_proxy(upstream: String) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(mut client) = client else { return };
            let Ok(mut server) = TcpStream::connect(&upstream) else { return };
            let (mut c2, mut s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut s2, &mut c2);
                let _ = c2.shutdown(std::net::Shutdown::Both);
            });
            std::thread::spawn(move || {
                let mut seen = Vec::new();
                let mut flipped = false;
                let mut buf = vec![0u8; 64 * 1024];
                loop {
                    let n = match client.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => n,
                    };
                    if !flipped {
                        let start = seen.len();
                        seen.extend_from_slice(&buf[..n]);
                        if let Some(end) = seen.windows(4).position(|w| w == b"\r\n\r\n") {
                            let target = end + 4 + 100;
                            if target < seen.len() {
                                buf[target - start] ^= 0x55;
                                flipped = true;
                            }
                        }
                    }
                    if server.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
                let _ = server.shutdown(std::net::Shutdown::Write);
            });
        }
    });
    addr
}

#[test]
fn content_md5_lets_the_store_refuse_corrupted_data() {
    let swift = swift();
    let upstream = swift.get("endpoint_url").trim_start_matches("http://").to_string();
    let proxy = corrupting_proxy(upstream);
    let mut settings = swift.settings();
    settings.endpoint_url = format!("http://{proxy}");
    let p = prefix("md5");
    let data = bytes(64 * 1024, 4);

    let t = S3Target::new(settings.clone()).unwrap();
    let m = backend_message(t.put(&format!("{p}checked"), &data));
    assert!(m.contains("400") && m.contains("BadDigest"), "{m}");
    assert!(!swift.target().exists(&format!("{p}checked")).unwrap(), "nothing is stored");

    // Without Content-MD5 the corruption goes through unnoticed: what the option is for.
    settings.md5_validation = false;
    let t = S3Target::new(settings).unwrap();
    t.put(&format!("{p}unchecked"), &data).unwrap();
    let stored = swift.target().get(&format!("{p}unchecked")).unwrap().unwrap();
    assert_eq!(stored.len(), data.len());
    assert_ne!(stored, data);
    swift.target().delete(&format!("{p}unchecked")).unwrap();
}

/// How a flaky proxy fails a connection.
#[derive(Clone, Copy)]
enum Failure {
    /// Answers 503 SlowDown without reaching the store.
    SlowDown,
    /// Closes the connection after reading the request's first bytes.
    Reset,
}

/// A proxy that fails its first `fail` connections as `how` and forwards the rest;
/// returns its address and its connection count.
fn flaky_proxy(upstream: String, fail: usize, how: Failure) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let count = Arc::new(AtomicUsize::new(0));
    let seen = count.clone();
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(mut client) = client else { return };
            if seen.fetch_add(1, Ordering::SeqCst) < fail {
                let mut buf = [0u8; 1024];
                let _ = client.read(&mut buf);
                if let Failure::SlowDown = how {
                    let body = "<?xml version=\"1.0\"?><Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>";
                    let _ = write!(
                        client,
                        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                }
                continue;
            }
            let Ok(server) = TcpStream::connect(&upstream) else { return };
            let (mut c2, mut s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
            let mut server = server;
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut s2, &mut c2);
                let _ = c2.shutdown(std::net::Shutdown::Both);
            });
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut client, &mut server);
                let _ = server.shutdown(std::net::Shutdown::Write);
            });
        }
    });
    (addr, count)
}

#[test]
fn connection_errors_and_5xx_are_retried_a_bounded_number_of_times() {
    let swift = swift();
    let upstream = swift.get("endpoint_url").trim_start_matches("http://").to_string();
    let p = prefix("retry");
    let data = bytes(200_000, 6);
    for how in [Failure::SlowDown, Failure::Reset] {
        // Three failures: the fourth attempt gets through.
        let (proxy, count) = flaky_proxy(upstream.clone(), 3, how);
        let mut settings = swift.settings();
        settings.endpoint_url = format!("http://{proxy}");
        let t = S3Target::new(settings).unwrap().with_retry_delay(Duration::from_millis(20));
        t.put(&format!("{p}k"), &data).unwrap();
        assert_eq!(count.load(Ordering::SeqCst), 4);
        assert_eq!(t.get(&format!("{p}k")).unwrap().as_deref(), Some(&data[..]));

        // Failing for ever: an error after four attempts, no more.
        let (proxy, count) = flaky_proxy(upstream.clone(), usize::MAX, how);
        let mut settings = swift.settings();
        settings.endpoint_url = format!("http://{proxy}");
        let t = S3Target::new(settings).unwrap().with_retry_delay(Duration::from_millis(20));
        let m = backend_message(t.get(&format!("{p}k")));
        assert!(m.contains(&format!("GET {p}k")) && m.contains("after 4 attempts"), "{m}");
        if let Failure::SlowDown = how {
            assert!(m.contains("503") && m.contains("SlowDown"), "{m}");
        }
        assert_eq!(count.load(Ordering::SeqCst), 4);
    }
    swift.target().delete(&format!("{p}k")).unwrap();
}

#[test]
fn a_silent_store_times_out() {
    // Accepts connections (the kernel's backlog does) and never reads or answers.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let secret = "silent-secret-abcdef";
    let t = S3Target::new(S3Settings::new(&format!("http://{addr}"), "ak", secret, "bucket"))
        .unwrap()
        .with_timeouts(S3Timeouts {
            connect: Duration::from_secs(1),
            idle: Duration::from_millis(500),
            call: Duration::from_secs(2),
        })
        .with_retry_delay(Duration::from_millis(10));
    let started = Instant::now();
    let m = backend_message(t.get("some/key"));
    let took = started.elapsed();
    assert!(m.contains("GET some/key") && m.contains("timeout"), "{m}");
    assert!(m.contains("after 4 attempts"), "{m}");
    assert!(took < Duration::from_secs(8), "{took:?}");
    // A PUT larger than the socket buffers stalls while sending.
    let m = backend_message(t.put("some/key", &bytes(32 * 1024 * 1024, 5)));
    assert!(m.contains("PUT some/key") && m.contains("timeout"), "{m}");
    let m2 = backend_message(t.check());
    for m in [&m, &m2] {
        assert!(!m.contains(secret), "{m}");
    }
    drop(listener);
}

#[test]
fn https_with_a_private_ca() {
    let swift = Swift::start(&[("SWIFT_TLS", "1")]);
    assert!(swift.get("endpoint_url").starts_with("https://"));
    let p = prefix("tls");

    // backup_s3_ca_cert_file: the store's CA is trusted.
    let t = swift.target();
    t.check().unwrap();
    t.put(&format!("{p}k"), b"over TLS").unwrap();
    assert_eq!(t.get(&format!("{p}k")).unwrap().as_deref(), Some(&b"over TLS"[..]));

    // Without it the built-in roots do not know that CA: a clear error, not retried.
    let mut settings = swift.settings();
    settings.ca_cert_file = None;
    let t = S3Target::new(settings.clone()).unwrap();
    let started = Instant::now();
    let m = backend_message(t.check());
    assert!(m.to_lowercase().contains("certificate"), "{m}");
    assert!(!m.contains("attempts"), "a certificate error is not retried: {m}");
    assert!(started.elapsed() < Duration::from_secs(5));

    // backup_s3_verify_ssl = false: any certificate.
    settings.verify_ssl = false;
    let t = S3Target::new(settings).unwrap();
    assert_eq!(t.get(&format!("{p}k")).unwrap().as_deref(), Some(&b"over TLS"[..]));
    t.delete(&format!("{p}k")).unwrap();

    // A file with no certificate in it is refused when the target is made.
    let mut settings = swift.settings();
    let empty = swift.dir.path().join("empty.pem");
    std::fs::write(&empty, "not a certificate\n").unwrap();
    settings.ca_cert_file = Some(empty);
    let m = backend_message(S3Target::new(settings));
    assert!(m.contains("backup_s3_ca_cert_file") && m.contains("no certificate"), "{m}");
}

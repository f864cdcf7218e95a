//! Lifecycle events: each create, delete, attach and failure of volumes, snapshots
//! and attachments is a structured log record and a POST to the configured webhook
//! (a real HTTP receiver on a loopback port here), naming the request that caused it.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::Daemon;
use serde_json::{json, Value};

/// An HTTP receiver that answers 204 to every POST and passes the JSON bodies on.
fn receiver() -> (String, mpsc::Receiver<Value>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/events", listener.local_addr().unwrap());
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let tx = tx.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(conn.try_clone().unwrap());
                loop {
                    let mut len = 0usize;
                    let mut first = String::new();
                    if reader.read_line(&mut first).unwrap_or(0) == 0 {
                        return;
                    }
                    loop {
                        let mut line = String::new();
                        reader.read_line(&mut line).unwrap();
                        if line == "\r\n" || line.is_empty() {
                            break;
                        }
                        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                            len = v.trim().parse().unwrap();
                        }
                    }
                    let mut body = vec![0; len];
                    reader.read_exact(&mut body).unwrap();
                    assert!(first.starts_with("POST /events "), "{first}");
                    conn.write_all(b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n").unwrap();
                    let _ = tx.send(serde_json::from_slice(&body).unwrap());
                }
            });
        }
    });
    (url, rx)
}

/// Events received until one of `event_type` about `id` (bounded), in order.
fn until(rx: &mpsc::Receiver<Value>, seen: &mut Vec<Value>, event_type: &str, id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(e) = seen.iter().find(|e| e["event_type"] == event_type && e["resource_id"] == id) {
            return e.clone();
        }
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(e) => seen.push(e),
            Err(_) => panic!("no {event_type} of {id}; got {seen:#?}"),
        }
    }
}

#[test]
fn lifecycle_events_reach_the_log_and_the_webhook() {
    let (url, rx) = receiver();
    let d = Daemon::start_with(&format!("event_webhook = \"{url}\"\n{}", common::backends_toml()));
    let mut seen = Vec::new();
    // volume create: start in the request, end when it is made, same request id
    let r = d.post("/volumes", json!({"volume": {"size": 1}}));
    assert_eq!(r.status, 202, "{}", r.text);
    let req = r.header("x-openstack-request-id").unwrap().to_string();
    let v = r.json()["volume"]["id"].as_str().unwrap().to_string();
    let start = until(&rx, &mut seen, "volume.create.start", &v);
    let end = until(&rx, &mut seen, "volume.create.end", &v);
    for e in [&start, &end] {
        assert_eq!(e["request_id"], req.as_str(), "{e}");
        assert_eq!(e["project_id"], common::PROJECT, "{e}");
        assert_eq!(e["resource_type"], "volume");
    }
    assert_eq!(end["status"], "available");
    assert_eq!(end["payload"]["size"], 1);
    assert!(end["payload"]["host"].as_str().is_some_and(|h| h.contains('@')), "{end}");
    // snapshot create and delete
    let r = d.post("/snapshots", json!({"snapshot": {"volume_id": v}}));
    assert_eq!(r.status, 202, "{}", r.text);
    let s = r.json()["snapshot"]["id"].as_str().unwrap().to_string();
    let e = until(&rx, &mut seen, "snapshot.create.end", &s);
    assert_eq!(e["payload"]["volume_id"], v.as_str());
    assert_eq!(d.delete(&format!("/snapshots/{s}")).status, 202);
    until(&rx, &mut seen, "snapshot.delete.end", &s);
    // an attachment made and deleted: attachment events and the volume's detach
    let r = d.post(
        "/attachments",
        json!({"attachment": {"volume_uuid": v, "instance_uuid": "7f0e6f6c-1111-4222-8333-944455556666"}}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    let a = r.json()["attachment"]["id"].as_str().unwrap().to_string();
    let e = until(&rx, &mut seen, "attachment.create.end", &a);
    assert_eq!(e["payload"]["volume_id"], v.as_str());
    assert_eq!(d.delete(&format!("/attachments/{a}")).status, 200);
    until(&rx, &mut seen, "attachment.delete.end", &a);
    let e = until(&rx, &mut seen, "volume.detach.end", &v);
    assert_eq!(e["payload"]["attachment_id"], a.as_str());
    // a create that fails for good: .error with the reason
    let r = d
        .post("/types", json!({"volume_type": {"name": "nowhere", "extra_specs": {"volume_backend_name": "nowhere"}}}));
    assert_eq!(r.status, 200, "{}", r.text);
    let bad = d.create_volume(json!({"size": 1, "volume_type": "nowhere"}));
    let e = until(&rx, &mut seen, "volume.create.error", &bad);
    assert_eq!(e["status"], "error");
    assert!(e["reason"].as_str().is_some_and(|r| r.contains("No valid backend")), "{e}");
    // a backup made, restored into a new volume, deleted
    let r = d.post("/backups", json!({"backup": {"volume_id": v}}));
    assert_eq!(r.status, 202, "{}", r.text);
    let b = r.json()["backup"]["id"].as_str().unwrap().to_string();
    until(&rx, &mut seen, "backup.create.start", &b);
    let e = until(&rx, &mut seen, "backup.create.end", &b);
    assert_eq!(e["status"], "available");
    let r = d.post(&format!("/backups/{b}/restore"), json!({"restore": {"name": "restored"}}));
    assert_eq!(r.status, 202, "{}", r.text);
    let restored = r.json()["restore"]["volume_id"].as_str().unwrap().to_string();
    let e = until(&rx, &mut seen, "backup.restore.end", &b);
    assert_eq!(e["payload"]["volume_id"], restored.as_str());
    d.wait_status(&restored, "available");
    assert_eq!(d.delete(&format!("/backups/{b}")).status, 202);
    until(&rx, &mut seen, "backup.delete.end", &b);
    // deletes
    for id in [&v, &bad, &restored] {
        assert_eq!(d.delete(&format!("/volumes/{id}")).status, 202);
        until(&rx, &mut seen, "volume.delete.start", id);
        until(&rx, &mut seen, "volume.delete.end", id);
    }
    // the same records are in the log, one JSON object a line on hearth::event
    let log = d.log();
    let logged: Vec<Value> = log
        .lines()
        .filter_map(|l| l.split_once(" hearth::event] ").map(|(_, rest)| rest))
        .map(|j| serde_json::from_str(j).unwrap_or_else(|e| panic!("{e}: {j}")))
        .collect();
    for e in &seen {
        assert!(logged.contains(e), "not logged: {e}");
    }
}

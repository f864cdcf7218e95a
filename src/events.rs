//! Lifecycle events: what happened to a volume, snapshot, backup or attachment, as
//! one structured log record each and, when `event_webhook` is set, a JSON POST.
//!
//! Names follow Cinder's notifications (`volume.create.end`, `snapshot.delete.end`,
//! `volume.attach.end`, ...), with `.error` for an operation that failed for good
//! (its reason in `reason`):
//!
//! - `volume.create`, `volume.delete`, `snapshot.create`, `snapshot.delete`,
//!   `backup.create`, `backup.delete`: `.start` when accepted, `.end` when done,
//!   `.error` when failed;
//! - `volume.resize` (an extend) and `backup.restore`: `.end` or `.error`;
//! - `volume.attach.end`, `volume.detach.end`, `attachment.create.end`,
//!   `attachment.delete.end`.
//!
//! A record is the JSON object on the log target
//! `hearth::event` (`RUST_LOG=hearth::event=info` keeps only them):
//!
//! ```json
//! {"event_type":"volume.create.end","timestamp":"2026-12-03T11:20:59.913Z",
//!  "request_id":"req-…","project_id":"…","resource_type":"volume",
//!  "resource_id":"…","status":"available","payload":{"size":1,"host":"…"}}
//! ```
//!
//! The webhook gets the same objects, one POST each (`Content-Type:
//! application/json`), from one sender thread: a slow or dead receiver never holds up
//! the work that emits them. Each POST is tried 3 times (1 s, then 2 s apart) with a
//! 5 s timeout; the queue holds 4,096 events and drops (and counts, and logs) what
//! does not fit. Events are notifications, not a log of record: the store is that.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use serde_json::{json, Value};

/// The log target of event records.
pub const LOG_TARGET: &str = "hearth::event";

/// Events queued for the webhook at most; more are dropped.
const QUEUE: usize = 4096;
/// Attempts of one POST.
const ATTEMPTS: u32 = 3;
/// Time limit of one POST.
const TIMEOUT: Duration = Duration::from_secs(5);

static WEBHOOK: OnceLock<crossbeam_channel::Sender<Value>> = OnceLock::new();
static DROPPED: AtomicU64 = AtomicU64::new(0);

/// What an event is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resource {
    Volume,
    Snapshot,
    Backup,
    Attachment,
}

impl Resource {
    fn as_str(self) -> &'static str {
        match self {
            Resource::Volume => "volume",
            Resource::Snapshot => "snapshot",
            Resource::Backup => "backup",
            Resource::Attachment => "attachment",
        }
    }
}

/// Send every event to `url` from now on (once, at start-up).
pub fn start_webhook(url: &str) {
    let (tx, rx) = crossbeam_channel::bounded::<Value>(QUEUE);
    if WEBHOOK.set(tx).is_err() {
        log::warn!("events: a webhook is already set; {url} is not used");
        return;
    }
    let url = url.to_string();
    let spawned = std::thread::Builder::new().name("event-webhook".into()).spawn(move || {
        let agent: ureq::Agent = ureq::Agent::config_builder().timeout_global(Some(TIMEOUT)).build().into();
        for event in rx {
            post(&agent, &url, &event);
        }
    });
    if let Err(e) = spawned {
        log::error!("events: cannot start the webhook sender: {e}");
    }
}

fn post(agent: &ureq::Agent, url: &str, event: &Value) {
    let mut last = String::new();
    for attempt in 1..=ATTEMPTS {
        match agent.post(url).header("Content-Type", "application/json").send(event.to_string()) {
            Ok(_) => return,
            Err(e) => last = e.to_string(),
        }
        if attempt < ATTEMPTS {
            std::thread::sleep(Duration::from_secs(u64::from(attempt)));
        }
    }
    log::warn!("events: webhook {url} refused {} after {ATTEMPTS} attempts: {last}", event["event_type"]);
}

/// How many events did not fit the webhook's queue.
pub fn dropped() -> u64 {
    DROPPED.load(Ordering::Relaxed)
}

/// An event being made: [`event`], then what it has, then [`Event::emit`].
#[derive(Debug)]
#[must_use = "an event is sent by emit"]
pub struct Event {
    resource: Resource,
    name: String,
    id: String,
    project: String,
    status: Option<String>,
    reason: Option<String>,
    payload: Value,
}

/// `<resource>.<action>.<phase>` (`start`, `end`, `error`) about `id` of `project`.
pub fn event(resource: Resource, action: &str, phase: &str, id: impl std::fmt::Display, project: &str) -> Event {
    Event {
        resource,
        name: format!("{}.{action}.{phase}", resource.as_str()),
        id: id.to_string(),
        project: project.to_string(),
        status: None,
        reason: None,
        payload: json!({}),
    }
}

impl Event {
    /// The resource's status after it.
    pub fn status(mut self, status: impl std::fmt::Display) -> Event {
        self.status = Some(status.to_string());
        self
    }

    /// Why it failed (an `.error`).
    pub fn reason(mut self, reason: impl std::fmt::Display) -> Event {
        self.reason = Some(reason.to_string());
        self
    }

    /// What else a consumer wants (size, host, the volume of a snapshot, ...).
    pub fn payload(mut self, payload: Value) -> Event {
        self.payload = payload;
        self
    }

    /// Log it, and queue it for the webhook if there is one.
    pub fn emit(self) {
        let mut event = json!({
            "event_type": self.name,
            "timestamp": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "request_id": crate::logging::current().as_deref(),
            "project_id": self.project,
            "resource_type": self.resource.as_str(),
            "resource_id": self.id,
            "status": self.status,
            "payload": self.payload,
        });
        if let Some(r) = self.reason {
            event["reason"] = json!(r);
        }
        crate::metrics::metrics().event(&self.name);
        log::info!(target: LOG_TARGET, "{event}");
        if let Some(tx) = WEBHOOK.get() {
            if tx.try_send(event).is_err() {
                let n = DROPPED.fetch_add(1, Ordering::Relaxed) + 1;
                if n.is_power_of_two() {
                    log::warn!("events: the webhook's queue is full; {n} events dropped so far");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader, Read, Write};

    /// A real HTTP receiver on a loopback port: the first request is refused (503),
    /// the rest accepted; bodies are sent back over a channel.
    #[test]
    fn the_webhook_gets_each_event_retrying_a_refusal() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let (tx, rx) = std::sync::mpsc::channel::<Value>();
        std::thread::spawn(move || {
            for (n, conn) in listener.incoming().enumerate() {
                let mut conn = conn.unwrap();
                let mut reader = BufReader::new(conn.try_clone().unwrap());
                let mut len = 0usize;
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
                let status = if n == 0 { "503 Service Unavailable" } else { "204 No Content" };
                write!(conn, "HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n").unwrap();
                if n > 0 {
                    tx.send(serde_json::from_slice(&body).unwrap()).unwrap();
                }
            }
        });
        start_webhook(&url);
        let _scope = crate::logging::RequestScope::enter(Some("req-7".into()));
        event(Resource::Volume, "create", "end", "v-1", "p").status("available").payload(json!({"size": 1})).emit();
        event(Resource::Backup, "create", "error", "b-1", "p").status("error").reason("disk on fire").emit();
        let first = rx.recv_timeout(Duration::from_secs(20)).unwrap();
        assert_eq!(first["event_type"], "volume.create.end");
        assert_eq!(first["request_id"], "req-7");
        assert_eq!(first["resource_id"], "v-1");
        assert_eq!(first["payload"]["size"], 1);
        let second = rx.recv_timeout(Duration::from_secs(20)).unwrap();
        assert_eq!(second["event_type"], "backup.create.error");
        assert_eq!(second["reason"], "disk on fire");
        assert_eq!(dropped(), 0);
    }
}

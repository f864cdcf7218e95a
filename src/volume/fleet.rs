//! A fleet's nodes hand each other the requests that need another node's disks.
//!
//! Nodes sharing a PostgreSQL store each act only on their own pools
//! ([`Core::check_acts_here`]); a request that needs a pool of another node fails
//! that check before anything of it is recorded. The API then hands the whole request
//! to the pool's node through the store, the fleet's durable work queue
//! (`handed_requests`, [`crate::store::handed`]): a row `queued` for that node and a
//! `pg_notify` that wakes it. The node takes its rows in order (`running`), runs each
//! as if it had arrived at its own API (authenticating the caller again) and keeps the
//! reply in the row (`done`); the handing node reads it back and answers its client
//! with it. Nothing but the store is involved: no broker, no node addresses. The
//! answer's row change sends a `pg_notify` too ([`REPLY_CHANNEL`], the row's id),
//! which wakes the waiting node at once; it also reads the row now and then, so a
//! notification lost while a listener reconnects costs at most 100 ms.
//!
//! Failures stay clear. A node whose services' heartbeats stopped is not handed
//! anything: 503 at once. A node that does not take a request within
//! `rpc_response_timeout` seconds: the row is cancelled (it never runs) and the client
//! gets 503. A node that took it but does not answer within as long again: 504, the
//! outcome showing in the objects' states as for any request whose answer was lost. A
//! node that stops while running one marks it `lost` when it starts again (503 to a
//! client still waiting). Rows nobody waits for any more are purged after ten minutes.
//!
//! On SQLite (one node) nothing is handed: the check's 409 reaches the client.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::Core;
use crate::error::{Error, Result};
use crate::ids::{Id, Timestamp};
use crate::model::{Handed, HandedState};
use crate::store::handed as sh;

/// The PostgreSQL channel that wakes a node for requests handed to it (the payload
/// names the node).
pub const CHANNEL: &str = "hearth_handed";

/// The PostgreSQL channel that tells the node waiting for a handed request that its
/// answer is in (the payload is the row's id).
pub const REPLY_CHANNEL: &str = "hearth_handed_reply";

/// How long a row nobody waits for is kept.
const KEEP: u64 = 600;

/// A request as the node it is handed to runs it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Call {
    /// The handing node's request id (the log lines of both nodes name it).
    pub request_id: String,
    /// The HTTP method.
    pub method: String,
    /// Path and query.
    pub uri: String,
    /// Every header, as received.
    pub headers: Vec<(String, String)>,
    /// The body (the API's bodies are JSON, so text).
    pub body: String,
    /// Whether it came over TLS.
    pub tls: bool,
}

/// The reply of the node a request was handed to.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Answer {
    /// The HTTP status.
    pub status: u16,
    /// The headers the reply adds (content type, location, ...).
    pub headers: Vec<(String, String)>,
    /// The body, if any.
    pub body: Option<String>,
}

/// What runs a handed request on the node that takes it (the API's pipeline).
pub type Runner = Arc<dyn Fn(Call) -> Answer + Send + Sync>;

/// The handed requests this node waits for, each marked when the notification of its
/// answer arrives; only registered ids are kept, so nothing piles up.
#[derive(Default)]
pub struct Replies {
    answered: Mutex<HashMap<Id, bool>>,
    wake: Condvar,
}

impl Replies {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Id, bool>> {
        self.answered.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Wait for `id`'s answers from now on.
    fn register(&self, id: Id) {
        self.lock().insert(id, false);
    }

    /// Stop waiting for `id`.
    fn forget(&self, id: Id) {
        self.lock().remove(&id);
    }

    /// The notification of `id`'s answer arrived (ignored when nobody here waits).
    fn answered(&self, id: Id) {
        if let Some(a) = self.lock().get_mut(&id) {
            *a = true;
            self.wake.notify_all();
        }
    }

    /// Wait up to `max` for `id`'s notification; whether it came (and is taken).
    fn wait(&self, id: Id, max: Duration) -> bool {
        let deadline = Instant::now() + max;
        let mut g = self.lock();
        loop {
            if let Some(a) = g.get_mut(&id) {
                if *a {
                    *a = false;
                    return true;
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            g = self.wake.wait_timeout(g, left).unwrap_or_else(|e| e.into_inner()).0;
        }
    }
}

impl Core {
    /// Whether requests can be handed to other nodes: the store is shared.
    pub fn hands_over(&self) -> bool {
        self.store.is_shared()
    }

    /// Hand `call` to node `node` and wait for its answer (see the module's doc).
    pub fn hand_to(&self, node: &str, call: &Call) -> Result<Answer> {
        self.check_node_up(node)?;
        let now = Timestamp::now();
        let h = Handed {
            id: Id::new(),
            node: node.to_string(),
            from_node: self.host.clone(),
            state: HandedState::Queued,
            request: serde_json::to_string(call).map_err(|e| Error::Internal(format!("a handed request: {e}")))?,
            reply: None,
            created_at: now,
            updated_at: now,
        };
        self.replies.register(h.id);
        let inserted = self.store.write(|tx| {
            sh::insert(tx, &h)?;
            tx.notify(CHANNEL, node)?;
            Ok(())
        });
        if let Err(e) = inserted {
            self.replies.forget(h.id);
            return Err(e);
        }
        log::info!("request {} handed to node {node} as {}", call.request_id, h.id);
        let answer = self.await_answer(node, &h);
        self.replies.forget(h.id);
        answer
    }

    /// Wait for the answer to `h`, handed to `node` (see [`Core::hand_to`]).
    fn await_answer(&self, node: &str, h: &Handed) -> Result<Answer> {
        let timeout = Duration::from_secs(self.config.rpc_response_timeout);
        let started = Instant::now();
        let mut pause = Duration::from_millis(5);
        loop {
            if !self.replies.wait(h.id, pause) {
                pause = (pause * 2).min(Duration::from_millis(100));
            }
            let Some(row) = self.store.read(|tx| sh::get(tx, h.id))? else {
                return Err(Error::Internal(format!("the handed request {} is gone", h.id)));
            };
            match row.state {
                HandedState::Done => {
                    self.store.write(|tx| sh::delete(tx, h.id))?;
                    let reply = row.reply.unwrap_or_default();
                    return serde_json::from_str(&reply)
                        .map_err(|e| Error::Internal(format!("node {node}'s answer to {} does not parse: {e}", h.id)));
                }
                HandedState::Lost => {
                    self.store.write(|tx| sh::delete(tx, h.id))?;
                    return Err(Error::Unavailable(format!(
                        "Node {node}, which serves the volume's pool, stopped while it ran the request; what it \
                         recorded shows in the objects' status. Retry when it is back."
                    )));
                }
                HandedState::Queued if started.elapsed() >= timeout => {
                    let cancelled = self.store.write(|tx| {
                        let c = sh::transition(tx, h.id, HandedState::Queued, HandedState::Cancelled, None)?;
                        if c {
                            sh::delete(tx, h.id)?;
                        }
                        Ok(c)
                    })?;
                    if cancelled {
                        return Err(Error::Unavailable(format!(
                            "Node {node}, which serves the volume's pool, did not take the request within {} s; \
                             nothing of it was done. Retry later.",
                            timeout.as_secs()
                        )));
                    }
                }
                HandedState::Running if started.elapsed() >= 2 * timeout => {
                    return Err(Error::NoAnswer(format!(
                        "Node {node}, which serves the volume's pool, took the request but did not answer within {} \
                         s; its outcome will show in the objects' status.",
                        2 * timeout.as_secs()
                    )));
                }
                _ => {}
            }
        }
    }

    /// 503 when no volume service of node `node` has a recent heartbeat.
    fn check_node_up(&self, node: &str) -> Result<()> {
        let services = self.services_with_liveness()?;
        let of_node: Vec<_> = services
            .iter()
            .filter(|s| s.service.binary == "cinder-volume" && s.service.host.split('@').next() == Some(node))
            .collect();
        if of_node.iter().any(|s| s.up) {
            return Ok(());
        }
        let last = of_node.iter().map(|s| s.service.updated_at).max();
        Err(Error::Unavailable(match last {
            Some(t) => format!(
                "Node {node}, which serves the volume's pool, is down (its last heartbeat was at {t}); the volume \
                 waits for it. Retry when it is back."
            ),
            None => format!("Node {node}, which the volume's pool names, has no volume service in this fleet."),
        }))
    }

    /// Take and run the requests handed to this node, with `run`, on a thread of its
    /// own (a shared store only). Requests it was running when it stopped are marked
    /// lost first.
    pub fn serve_handed(self: &Arc<Core>, run: Runner) -> Result<()> {
        if !self.hands_over() {
            return Ok(());
        }
        let host = self.host.clone();
        let lost = self.store.write(|tx| sh::abandon_running(tx, &host))?;
        if lost > 0 {
            log::warn!("{lost} handed request(s) this node was running when it stopped are marked lost");
        }
        let weak = Arc::downgrade(self);
        let slots = self.config.api_threads.max(2);
        let in_flight = Arc::new(AtomicUsize::new(0));
        std::thread::Builder::new()
            .name("handed".into())
            .spawn(move || {
                let mut listener = None;
                let mut purged = Instant::now() - Duration::from_secs(KEEP);
                let (mut take, mut taken) = (true, Instant::now());
                loop {
                    let Some(core) = weak.upgrade() else { break };
                    if listener.is_none() {
                        match core.store.listener(&[CHANNEL, REPLY_CHANNEL]) {
                            Some(Ok(l)) => listener = Some(l),
                            Some(Err(e)) => log::warn!("handed requests: cannot listen for them ({e}); polling"),
                            None => break,
                        }
                    }
                    let free = slots.saturating_sub(in_flight.load(Ordering::SeqCst));
                    if take && free > 0 {
                        core.take_handed(&run, &in_flight, free);
                        (take, taken) = (false, Instant::now());
                    }
                    if purged.elapsed() >= Duration::from_secs(60) {
                        let cutoff = Timestamp::now().minus_seconds(KEEP);
                        match core.store.write(|tx| sh::purge(tx, cutoff)) {
                            Ok(n) if n > 0 => log::info!("purged {n} handed request(s) nobody waits for"),
                            Ok(_) => {}
                            Err(e) => log::warn!("purging handed requests failed: {e}"),
                        }
                        purged = Instant::now();
                    }
                    drop(core);
                    // Woken by a notification, or every second anyway (one lost while
                    // the listener reconnected is taken then). Answers to this node's
                    // handed requests wake their waiters; only requests for this node
                    // (or a second without a look) make it look for work.
                    match listener.as_mut().map(|l| l.notifications(Duration::from_secs(1))) {
                        Some(Ok(got)) => {
                            for (channel, payload) in &got {
                                if channel == REPLY_CHANNEL {
                                    if let (Some(id), Some(core)) = (Id::parse(payload), weak.upgrade()) {
                                        core.replies.answered(id);
                                    }
                                } else {
                                    take |= *payload == host;
                                }
                            }
                            take |= taken.elapsed() >= Duration::from_secs(1);
                        }
                        Some(Err(e)) => {
                            log::warn!("handed requests: the listener's connection failed ({e})");
                            listener = None;
                            std::thread::sleep(Duration::from_secs(1));
                        }
                        None => std::thread::sleep(Duration::from_secs(1)),
                    }
                    if listener.is_none() {
                        take = true;
                    }
                }
            })
            .map_err(|e| Error::Internal(format!("cannot start the handed requests' thread: {e}")))?;
        Ok(())
    }

    /// Take up to `free` queued requests of this node's and run each on a thread.
    fn take_handed(self: &Arc<Core>, run: &Runner, in_flight: &Arc<AtomicUsize>, free: usize) {
        let host = self.host.clone();
        // What was handed over longer ago than the handing node waits is not run.
        let since = Timestamp::now().minus_seconds(self.config.rpc_response_timeout);
        match self.store.read(|tx| sh::any_queued(tx, &host, since)) {
            Ok(true) => {}
            Ok(false) => return,
            Err(e) => {
                log::warn!("looking for handed requests failed: {e}");
                return;
            }
        }
        let taken = match self.store.write(|tx| sh::claim(tx, &host, since, free as u32)) {
            Ok(t) => t,
            Err(e) => {
                log::warn!("taking handed requests failed: {e}");
                return;
            }
        };
        for h in taken {
            in_flight.fetch_add(1, Ordering::SeqCst);
            let (core, run, in_flight) = (self.clone(), run.clone(), in_flight.clone());
            let spawned = std::thread::Builder::new().name("handed-run".into()).spawn(move || {
                let answer = match serde_json::from_str::<Call>(&h.request) {
                    Ok(call) if call.method == super::placement::PLACE => {
                        log::info!("placing {} for node {} ({})", call.uri, h.from_node, h.id);
                        core.run_placement(&h.from_node, &call)
                    }
                    Ok(call) => {
                        log::info!("running request {} handed by node {} ({})", call.request_id, h.from_node, h.id);
                        run(call)
                    }
                    Err(e) => {
                        log::error!("handed request {} does not parse: {e}", h.id);
                        Answer { status: 500, headers: Vec::new(), body: None }
                    }
                };
                let reply = serde_json::to_string(&answer).unwrap_or_default();
                let done = core.store.write(|tx| {
                    if sh::transition(tx, h.id, HandedState::Running, HandedState::Done, Some(&reply))? {
                        tx.notify(REPLY_CHANNEL, &h.id.to_string())?;
                    }
                    Ok(())
                });
                if let Err(e) = done {
                    log::error!("the answer to handed request {} could not be recorded: {e}", h.id);
                }
                in_flight.fetch_sub(1, Ordering::SeqCst);
            });
            if let Err(e) = spawned {
                log::error!("cannot run handed request: {e}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_wakes_its_waiter_and_nothing_is_kept_for_nobody() {
        let replies = Arc::new(Replies::default());
        let (mine, other) = (Id::new(), Id::new());
        replies.register(mine);
        // Nothing yet: the wait times out.
        assert!(!replies.wait(mine, Duration::from_millis(10)));
        // An answer for nobody here is dropped; one for `mine` wakes its waiter.
        replies.answered(other);
        let waiter = {
            let replies = replies.clone();
            std::thread::spawn(move || replies.wait(mine, Duration::from_secs(60)))
        };
        std::thread::sleep(Duration::from_millis(20));
        replies.answered(mine);
        assert!(waiter.join().unwrap());
        // Taken: a second wait does not see it again.
        assert!(!replies.wait(mine, Duration::from_millis(1)));
        replies.forget(mine);
        replies.answered(mine);
        assert!(replies.lock().is_empty());
    }
}

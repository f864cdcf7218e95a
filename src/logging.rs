//! hearthd's log: env_logger with each line naming the request that caused it.
//!
//! The API sets the request id (`req-<uuid>`, the `x-openstack-request-id` header)
//! for the thread that serves the request ([`RequestScope`]); background work started
//! by a request carries it to the thread that runs it
//! ([`crate::volume::Core::spawn_blocking`]). Every log line written meanwhile starts
//! with that id, so `grep req-…` shows all that one request did, as Cinder's
//! `[req-… user project]` log context does. Lines of work no request started
//! (reconcile, measuring, purges) carry none.

use std::cell::RefCell;
use std::io::Write;
use std::sync::Arc;

thread_local! {
    static REQUEST: RefCell<Option<Arc<str>>> = const { RefCell::new(None) };
}

/// The request id of the work on this thread, if a request started it.
pub fn current() -> Option<Arc<str>> {
    REQUEST.with(|r| r.borrow().clone())
}

/// While alive, log lines on this thread name `id`; the previous one comes back
/// when it is dropped (scopes nest).
#[must_use = "the request id is named only while the scope lives"]
pub struct RequestScope {
    previous: Option<Arc<str>>,
}

impl RequestScope {
    /// Name `id` on this thread's log lines.
    pub fn enter(id: Option<Arc<str>>) -> RequestScope {
        RequestScope { previous: REQUEST.with(|r| r.replace(id)) }
    }
}

impl Drop for RequestScope {
    fn drop(&mut self) {
        let previous = self.previous.take();
        REQUEST.with(|r| *r.borrow_mut() = previous);
    }
}

/// The line for a record: `[time LEVEL target] req-… message`; a message that
/// already starts with its request id (the API's access lines) is not given it twice,
/// nor is an event (its JSON names it: see [`crate::events`]).
fn line(out: &mut impl Write, time: impl std::fmt::Display, record: &log::Record<'_>) -> std::io::Result<()> {
    write!(out, "[{time} {:<5} {}] ", record.level(), record.target())?;
    let message = record.args().to_string();
    match current() {
        Some(id) if !message.starts_with(&*id) && record.target() != crate::events::LOG_TARGET => {
            writeln!(out, "{id} {message}")
        }
        _ => writeln!(out, "{message}"),
    }
}

/// Install the logger: `RUST_LOG` filters (default `info`), lines as [`line`] makes
/// them, on standard error.
pub fn init() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"))
        .format(|buf, record| {
            let time = buf.timestamp_millis();
            line(buf, time, record)
        })
        .init();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(message: &str) -> String {
        let mut out = Vec::new();
        let args = format_args!("{message}");
        let record = log::Record::builder().args(args).level(log::Level::Info).target("hearth::x").build();
        line(&mut out, "T", &record).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn lines_name_the_request_of_their_scope() {
        assert_eq!(render("plain"), "[T INFO  hearth::x] plain\n");
        {
            let _outer = RequestScope::enter(Some("req-1".into()));
            assert_eq!(render("made"), "[T INFO  hearth::x] req-1 made\n");
            assert_eq!(render("req-1 \"GET /\" status: 200"), "[T INFO  hearth::x] req-1 \"GET /\" status: 200\n");
            {
                let _inner = RequestScope::enter(Some("req-2".into()));
                assert_eq!(render("x"), "[T INFO  hearth::x] req-2 x\n");
            }
            assert_eq!(current().as_deref(), Some("req-1"));
            let event = log::Record::builder()
                .args(format_args!("{{}}"))
                .level(log::Level::Info)
                .target(crate::events::LOG_TARGET)
                .build();
            let mut out = Vec::new();
            line(&mut out, "T", &event).unwrap();
            assert_eq!(String::from_utf8(out).unwrap(), "[T INFO  hearth::event] {}\n");
            let _none = RequestScope::enter(None);
            assert_eq!(render("y"), "[T INFO  hearth::x] y\n");
        }
        assert_eq!(current(), None);
    }

    #[test]
    fn another_thread_has_its_own() {
        let _s = RequestScope::enter(Some("req-main".into()));
        std::thread::spawn(|| assert_eq!(current(), None)).join().unwrap();
    }
}

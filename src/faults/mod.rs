//! Fault injection, in test builds only: make chosen backend, export, store and
//! backup-target operations fail, hang past their time, or answer nonsense.
//!
//! A debug build (what `cargo test` builds and runs) reads a plan from the
//! environment at start-up; a release build ignores it (and says so once if it is
//! set), so no shipped hearthd can be made to misbehave this way.
//!
//! ```text
//! HEARTH_FAULTS="backend.create_volume=fail:0.2,backend.*=hang:0.02,store.commit=fail:0.01"
//! HEARTH_FAULTS_SEED=42        # the random choices (default: from the clock)
//! HEARTH_FAULTS_HANG_MS=200    # how long a hang lasts before it times out (default 200)
//! ```
//!
//! Each rule is `point=action[:probability]` (probability 1 when left out). A point is
//! `backend.<method>`, `export.<method>`, `target.<method>` or `store.commit`, with the
//! methods of [`crate::backend::Backend`], [`crate::export::Export`] and
//! [`crate::backup::Target`]; a rule's point may end in `*` to match every point it
//! starts. A backend or export rule may name one backend: `file-a/backend.create_volume`.
//! The first rule that matches a call decides it:
//!
//! - `fail`: the call returns an error (`injected fault at …`) without doing anything;
//! - `hang`: the call sleeps `HEARTH_FAULTS_HANG_MS`, then returns a time-out error
//!   without doing anything, as a command killed at its time limit does;
//! - `nonsense`: a call that reports (capacity, lists, sizes, an object's bytes)
//!   returns made-up values; one that acts fails as with `fail`.
//!
//! Every injected fault is logged at `warn` (`injected fault at …`) and counted
//! ([`injected`]), so a test can tell that its faults happened.

mod backend;
mod export;
mod target;

pub use backend::FaultyBackend;
pub use export::FaultyExport;
pub use target::FaultyTarget;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use crate::error::{Error, Result};

/// What a matching call does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Return an error.
    Fail,
    /// Sleep, then return a time-out error.
    Hang,
    /// Report made-up values (acting calls fail).
    Nonsense,
}

#[derive(Clone, Debug, PartialEq)]
struct Rule {
    /// The backend or export it is limited to.
    scope: Option<String>,
    /// The point, or its start when `prefix`.
    point: String,
    prefix: bool,
    action: Action,
    probability: f64,
}

/// A parsed fault plan.
#[derive(Debug)]
pub struct Plan {
    rules: Vec<Rule>,
    hang: Duration,
    rng: Mutex<fastrand::Rng>,
}

static PLAN: OnceLock<Option<Plan>> = OnceLock::new();
static INJECTED: AtomicU64 = AtomicU64::new(0);

impl Plan {
    /// Parse a plan (`HEARTH_FAULTS`' syntax).
    pub fn parse(text: &str, seed: u64, hang: Duration) -> Result<Plan> {
        let mut rules = Vec::new();
        for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let bad = |why: &str| Error::Invalid(format!("HEARTH_FAULTS: {item:?}: {why}."));
            let (target, act) = item.split_once('=').ok_or_else(|| bad("expected point=action[:probability]"))?;
            let (scope, point) = match target.split_once('/') {
                Some((s, p)) => (Some(s.to_string()), p),
                None => (None, target),
            };
            let (action, probability) = match act.split_once(':') {
                Some((a, p)) => (a, p.parse::<f64>().map_err(|_| bad("the probability is not a number"))?),
                None => (act, 1.0),
            };
            if !(0.0..=1.0).contains(&probability) {
                return Err(bad("the probability must be between 0 and 1"));
            }
            let action = match action {
                "fail" => Action::Fail,
                "hang" => Action::Hang,
                "nonsense" => Action::Nonsense,
                _ => return Err(bad("the action must be fail, hang or nonsense")),
            };
            let (point, prefix) = match point.strip_suffix('*') {
                Some(p) => (p.to_string(), true),
                None => (point.to_string(), false),
            };
            let known = ["backend.", "export.", "target.", "store.commit"];
            if !known.iter().any(|k| point.starts_with(k) || (prefix && k.starts_with(point.as_str()))) {
                return Err(bad("the point must be backend.*, export.*, target.* or store.commit"));
            }
            rules.push(Rule { scope, point, prefix, action, probability });
        }
        Ok(Plan { rules, hang, rng: Mutex::new(fastrand::Rng::with_seed(seed)) })
    }

    /// What `point` (of backend or export `scope`) does this time, if anything.
    pub fn decide(&self, scope: Option<&str>, point: &str) -> Option<Action> {
        let rule = self.rules.iter().find(|r| {
            let scoped = r.scope.is_none() || r.scope.as_deref() == scope;
            let matched = if r.prefix { point.starts_with(&r.point) } else { point == r.point };
            scoped && matched
        })?;
        let roll = self.rng.lock().unwrap_or_else(|e| e.into_inner()).f64();
        (roll < rule.probability).then_some(rule.action)
    }

    /// A random number, for made-up values.
    pub fn random(&self) -> u64 {
        self.rng.lock().unwrap_or_else(|e| e.into_inner()).u64(..)
    }
}

/// The plan of this process: read once from the environment (debug builds only).
pub fn plan() -> Option<&'static Plan> {
    PLAN.get_or_init(|| {
        let text = std::env::var("HEARTH_FAULTS").ok().filter(|t| !t.trim().is_empty())?;
        if !cfg!(debug_assertions) {
            log::warn!("HEARTH_FAULTS is set but this is a release build: no faults are injected");
            return None;
        }
        let seed = std::env::var("HEARTH_FAULTS_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64)
        });
        let hang_ms = std::env::var("HEARTH_FAULTS_HANG_MS").ok().and_then(|s| s.parse().ok()).unwrap_or(200);
        match Plan::parse(&text, seed, Duration::from_millis(hang_ms)) {
            Ok(p) => {
                log::warn!("fault injection is on (seed {seed}): {text}");
                Some(p)
            }
            Err(e) => {
                // A test that asked for faults must not run without them.
                eprintln!("hearthd: {e}");
                std::process::exit(2);
            }
        }
    })
    .as_ref()
}

/// How many faults were injected so far.
pub fn injected() -> u64 {
    INJECTED.load(Ordering::Relaxed)
}

/// The fault `point` gets now, if any: `Err` for fail and hang (after the hang),
/// `Ok(true)` when it should answer nonsense, `Ok(false)` when it runs as usual.
pub fn hit(scope: Option<&str>, point: &str) -> Result<bool> {
    let Some(plan) = plan() else { return Ok(false) };
    let Some(action) = plan.decide(scope, point) else { return Ok(false) };
    INJECTED.fetch_add(1, Ordering::Relaxed);
    let at = match scope {
        Some(s) => format!("{s}/{point}"),
        None => point.to_string(),
    };
    log::warn!("injected fault at {at}: {action:?}");
    match action {
        Action::Fail => Err(Error::Backend(format!("injected fault at {at}"))),
        Action::Hang => {
            std::thread::sleep(plan.hang);
            Err(Error::Backend(format!("injected fault at {at}: timed out after {:?}", plan.hang)))
        }
        Action::Nonsense => Ok(true),
    }
}

/// [`hit`] for a call that acts: nonsense is a failure too.
pub fn act(scope: Option<&str>, point: &str) -> Result<()> {
    if hit(scope, point)? {
        let at = scope.map_or(point.to_string(), |s| format!("{s}/{point}"));
        return Err(Error::Backend(format!("injected fault at {at}: nonsense")));
    }
    Ok(())
}

/// A made-up number (for nonsense answers).
pub fn random() -> u64 {
    plan().map_or(4, Plan::random)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_parse_and_decide() {
        let p = Plan::parse(
            "file-a/backend.create_volume=fail, backend.*=hang:0, store.commit=nonsense:1",
            7,
            Duration::ZERO,
        )
        .unwrap();
        assert_eq!(p.decide(Some("file-a"), "backend.create_volume"), Some(Action::Fail));
        // scoped to file-a; for file-b the wildcard rule (probability 0) matches first
        assert_eq!(p.decide(Some("file-b"), "backend.create_volume"), None);
        assert_eq!(p.decide(None, "store.commit"), Some(Action::Nonsense));
        assert_eq!(p.decide(None, "export.allow"), None);
        // about half of the calls at 0.5
        let half = Plan::parse("backend.*=fail:0.5", 1, Duration::ZERO).unwrap();
        let n = (0..1000).filter(|_| half.decide(None, "backend.delete_volume").is_some()).count();
        assert!((400..600).contains(&n), "{n}");
    }

    #[test]
    fn bad_plans_say_what_is_wrong() {
        for (text, why) in [
            ("backend.create_volume", "point=action"),
            ("backend.x=explode", "fail, hang or nonsense"),
            ("backend.x=fail:2", "between 0 and 1"),
            ("backend.x=fail:often", "not a number"),
            ("kernel.panic=fail", "backend.*, export.*"),
        ] {
            let e = Plan::parse(text, 0, Duration::ZERO).unwrap_err().to_string();
            assert!(e.contains(why), "{text}: {e}");
        }
    }
}

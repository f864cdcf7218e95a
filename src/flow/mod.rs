//! Flows: multi-step operations whose every step has an undo.
//!
//! A flow is an ordered list of [`Step`]s over a shared context. [`run`] executes
//! them in order; when one fails, it reverts that step and every step before it, in
//! reverse order, and reports both the failure and any undo that failed too (an
//! object whose undo failed is degraded, and the caller says so in its record rather
//! than pretending it is back to normal).
//!
//! Crash safety comes from the steps themselves: a step that changes the host first
//! records its intent in the store (see [`crate::model::Task`]), so that start-up
//! reconcile knows what was in flight and can finish or undo it.

pub mod create_volume;

use std::fmt;

use crate::error::Error;

/// One step of a flow.
pub trait Step<C> {
    /// A short name for logs and error reasons.
    fn name(&self) -> &'static str;

    /// Do the step.
    fn execute(&self, ctx: &mut C) -> Result<(), Error>;

    /// Undo the step (also called for the step that failed, which may have done part
    /// of its work). The default has nothing to undo.
    fn revert(&self, _ctx: &mut C) -> Result<(), Error> {
        Ok(())
    }
}

/// A failed flow: which step failed, why, and which undos failed as well.
#[derive(Debug)]
pub struct FlowError {
    /// The step that failed.
    pub step: &'static str,
    /// Why.
    pub error: Error,
    /// Undos that failed, by step.
    pub revert_failures: Vec<(&'static str, Error)>,
}

impl FlowError {
    /// Whether every undo succeeded (the flow left nothing behind).
    pub fn clean(&self) -> bool {
        self.revert_failures.is_empty()
    }
}

impl fmt::Display for FlowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "step {} failed: {}", self.step, self.error)?;
        for (step, e) in &self.revert_failures {
            write!(f, "; undo of {step} failed too: {e}")?;
        }
        Ok(())
    }
}

/// Run `steps` in order over `ctx`, reverting on failure.
pub fn run<C>(flow: &str, steps: &[&dyn Step<C>], ctx: &mut C) -> Result<(), FlowError> {
    let started = std::time::Instant::now();
    let result = run_steps(flow, steps, ctx);
    crate::metrics::metrics().flow(flow, result.as_ref().err().map(|e| e.step), started.elapsed());
    result
}

fn run_steps<C>(flow: &str, steps: &[&dyn Step<C>], ctx: &mut C) -> Result<(), FlowError> {
    for (i, step) in steps.iter().enumerate() {
        let started = std::time::Instant::now();
        let done = step.execute(ctx);
        log::debug!("flow {flow}: {} in {:.1} ms", step.name(), started.elapsed().as_secs_f64() * 1000.0);
        if let Err(error) = done {
            log::warn!("flow {flow}: step {} failed: {error}", step.name());
            let mut revert_failures = Vec::new();
            for done in steps[..=i].iter().rev() {
                if let Err(e) = done.revert(ctx) {
                    log::error!("flow {flow}: undo of {} failed: {e}", done.name());
                    revert_failures.push((done.name(), e));
                }
            }
            return Err(FlowError { step: step.name(), error, revert_failures });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Rec {
        name: &'static str,
        fail: bool,
        fail_revert: bool,
    }

    impl Step<Vec<String>> for Rec {
        fn name(&self) -> &'static str {
            self.name
        }
        fn execute(&self, log: &mut Vec<String>) -> Result<(), Error> {
            log.push(format!("do {}", self.name));
            if self.fail {
                Err(Error::Backend(format!("{} broke", self.name)))
            } else {
                Ok(())
            }
        }
        fn revert(&self, log: &mut Vec<String>) -> Result<(), Error> {
            log.push(format!("undo {}", self.name));
            if self.fail_revert {
                Err(Error::Backend("stuck".into()))
            } else {
                Ok(())
            }
        }
    }

    fn step(name: &'static str, fail: bool, fail_revert: bool) -> Rec {
        Rec { name, fail, fail_revert }
    }

    #[test]
    fn success_runs_every_step_once() {
        let (a, b) = (step("a", false, false), step("b", false, false));
        let mut log = Vec::new();
        run("t", &[&a, &b], &mut log).unwrap();
        assert_eq!(log, ["do a", "do b"]);
    }

    #[test]
    fn failure_reverts_in_reverse_including_the_failed_step() {
        let (a, b, c) = (step("a", false, false), step("b", true, false), step("c", false, false));
        let mut log = Vec::new();
        let err = run("t", &[&a, &b, &c], &mut log).unwrap_err();
        assert_eq!(log, ["do a", "do b", "undo b", "undo a"]);
        assert_eq!(err.step, "b");
        assert!(err.clean());
    }

    #[test]
    fn failed_undo_is_reported_and_others_still_run() {
        let (a, b, c) = (step("a", false, false), step("b", false, true), step("c", true, false));
        let mut log = Vec::new();
        let err = run("t", &[&a, &b, &c], &mut log).unwrap_err();
        assert_eq!(log, ["do a", "do b", "do c", "undo c", "undo b", "undo a"]);
        assert!(!err.clean());
        assert!(err.to_string().contains("undo of b failed"), "{err}");
    }
}

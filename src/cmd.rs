//! External commands, carefully.
//!
//! 1. Every program is resolved to an absolute path once, at start-up
//!    ([`Tool::resolve`]): first in the directory the build names
//!    (`HEARTH_TOOL_PATH` at build time, which a Nix package sets to its store
//!    paths), then in the usual system directories. A missing program fails start-up.
//! 2. Programs run with an argv, never through a shell, with `LC_ALL=C` and a
//!    timeout after which they are killed.
//! 3. A failure carries the command line, the exit status, and stderr
//!    ([`CmdError`]), so the log says exactly what was run and what it said.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::error::Error;

/// Directories searched for programs after the build-time one.
const SYSTEM_DIRS: &[&str] = &["/usr/sbin", "/sbin", "/usr/bin", "/bin", "/usr/local/sbin", "/usr/local/bin"];

/// A program, resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tool {
    /// Its name (`lvcreate`).
    pub name: &'static str,
    /// Its absolute path.
    pub path: PathBuf,
}

/// A failed command.
#[derive(Debug, thiserror::Error)]
#[error("command `{argv}` {outcome}: {stderr}")]
pub struct CmdError {
    /// The command line, for the log.
    pub argv: String,
    /// What happened (exit status, signal, timeout, spawn error).
    pub outcome: String,
    /// Exit code, when it exited.
    pub code: Option<i32>,
    /// What it wrote to stderr (trimmed).
    pub stderr: String,
    /// Whether it was killed for taking too long.
    pub timed_out: bool,
}

impl From<CmdError> for Error {
    fn from(e: CmdError) -> Error {
        Error::Backend(e.to_string())
    }
}

impl Tool {
    /// Find `name` (see the module doc for where).
    pub fn resolve(name: &'static str) -> Result<Tool, Error> {
        let build_dir = option_env!("HEARTH_TOOL_PATH");
        let dirs = build_dir.into_iter().flat_map(|d| d.split(':')).chain(SYSTEM_DIRS.iter().copied());
        for dir in dirs {
            let p = Path::new(dir).join(name);
            if is_executable(&p) {
                return Ok(Tool { name, path: p });
            }
        }
        Err(Error::Internal(format!(
            "the program {name} was not found (looked in {}{})",
            build_dir.map(|d| format!("{d}:")).unwrap_or_default(),
            SYSTEM_DIRS.join(":")
        )))
    }

    /// Run with `args`; stdout on success.
    pub fn run(&self, args: &[&str], timeout: Duration) -> Result<String, CmdError> {
        run(&self.path, args, timeout)
    }
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0).unwrap_or(false)
}

/// Run `program` with `args`, `LC_ALL=C`, no stdin, and a timeout; stdout on success.
pub fn run(program: &Path, args: &[&str], timeout: Duration) -> Result<String, CmdError> {
    let argv = std::iter::once(program.display().to_string())
        .chain(args.iter().map(|a| a.to_string()))
        .collect::<Vec<_>>()
        .join(" ");
    let fail = |outcome: String, code: Option<i32>, stderr: String, timed_out: bool| CmdError {
        argv: argv.clone(),
        outcome,
        code,
        stderr: stderr.trim().to_string(),
        timed_out,
    };
    use std::os::unix::process::CommandExt;
    let started = Instant::now();
    let mut command = Command::new(program);
    // SAFETY: between fork and exec only async-signal-safe calls are allowed, and
    // sigprocmask is one. hearthd blocks SIGTERM/SIGINT in its threads (to wait for
    // them in one place); the programs it runs must get them normally.
    let command = unsafe {
        command.pre_exec(|| {
            nix::sys::signal::sigprocmask(
                nix::sys::signal::SigmaskHow::SIG_SETMASK,
                Some(&nix::sys::signal::SigSet::empty()),
                None,
            )
            .map_err(std::io::Error::from)
        })
    };
    let mut child = command
        .args(args)
        // Its own process group, so a timeout kills whatever it started too.
        .process_group(0)
        .env("LC_ALL", "C")
        .env("LVM_SUPPRESS_FD_WARNINGS", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            record(program, Some("spawn"), started.elapsed());
            fail(format!("could not start ({e})"), None, String::new(), false)
        })?;
    // Read both pipes on threads so a chatty program cannot block on a full pipe. Each
    // says when its pipe closes: the program has then (almost always) exited, so the
    // wait below wakes at once instead of polling while the program runs.
    let (closed_tx, closed) = mpsc::channel::<()>();
    let read_all = |mut pipe: Box<dyn Read + Send>, closed_tx: mpsc::Sender<()>| {
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = pipe.read_to_string(&mut s);
            let _ = closed_tx.send(());
            s
        })
    };
    let out_t = read_all(Box::new(child.stdout.take().expect("piped")), closed_tx.clone());
    let err_t = read_all(Box::new(child.stderr.take().expect("piped")), closed_tx);
    let deadline = Instant::now() + timeout;
    let mut open_pipes = 2;
    let mut idle = Duration::from_millis(1);
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if Instant::now() >= deadline => {
                let group = nix::unistd::Pid::from_raw(-(child.id() as i32));
                let _ = nix::sys::signal::kill(group, nix::sys::signal::Signal::SIGKILL);
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            // Both pipes closed but not exited: usually a moment away, but a program
            // may close them and go on, so back off.
            Ok(None) if open_pipes == 0 => {
                std::thread::sleep(idle);
                idle = (idle * 2).min(Duration::from_millis(50));
            }
            // Still running: sleep until a pipe closes, checking now and then in
            // case it exited leaving its pipes to a child of its own.
            Ok(None) => {
                let wait = deadline.saturating_duration_since(Instant::now()).min(Duration::from_millis(50));
                match closed.recv_timeout(wait) {
                    Ok(()) => open_pipes -= 1,
                    Err(mpsc::RecvTimeoutError::Timeout) => {}
                    Err(mpsc::RecvTimeoutError::Disconnected) => open_pipes = 0,
                }
            }
            Err(e) => return Err(fail(format!("could not be waited for ({e})"), None, String::new(), false)),
        }
    };
    let stdout = out_t.join().unwrap_or_default();
    let stderr = err_t.join().unwrap_or_default();
    log::debug!(
        "{argv}: {} after {:.1} ms",
        status.map_or_else(|| "timed out".to_string(), |s| s.to_string()),
        started.elapsed().as_secs_f64() * 1000.0
    );
    let failure = match status {
        None => Some("timeout"),
        Some(s) if s.success() => None,
        Some(s) if s.code().is_none() => Some("signal"),
        Some(_) => Some("exit"),
    };
    record(program, failure, started.elapsed());
    match status {
        None => Err(fail(format!("timed out after {} s", timeout.as_secs()), None, stderr, true)),
        Some(s) if s.success() => Ok(stdout),
        Some(s) => Err(fail(format!("failed with {s}"), s.code(), stderr, false)),
    }
}

/// Count a run in the metrics, by the program's file name.
fn record(program: &Path, failure: Option<&'static str>, took: Duration) {
    let name = program.file_name().map_or_else(|| program.display().to_string(), |n| n.to_string_lossy().into_owned());
    crate::metrics::metrics().command(&name, failure, took);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_with_argv_and_reports_failures() {
        let sh = Tool::resolve("sh").unwrap();
        assert!(sh.path.is_absolute());
        // argv, not a shell string: the argument reaches the program verbatim
        assert_eq!(sh.run(&["-c", "printf %s \"$0\"", "a b;c"], Duration::from_secs(5)).unwrap(), "a b;c");
        assert_eq!(sh.run(&["-c", "echo $LC_ALL"], Duration::from_secs(5)).unwrap().trim(), "C");
        let e = sh.run(&["-c", "echo oops >&2; exit 3"], Duration::from_secs(5)).unwrap_err();
        assert_eq!(e.code, Some(3));
        assert_eq!(e.stderr, "oops");
        assert!(e.to_string().contains("exit status: 3") && e.to_string().contains("-c"), "{e}");
        // Closes its pipes, then goes on: its status is still the one reported.
        let e = sh.run(&["-c", "exec >&- 2>&-; sleep 0.3; exit 4"], Duration::from_secs(5)).unwrap_err();
        assert_eq!(e.code, Some(4), "{e}");
        // Exits, leaving its pipes to a child: its output is complete all the same.
        assert_eq!(
            sh.run(&["-c", "(sleep 0.3; echo late) & echo early"], Duration::from_secs(5)).unwrap(),
            "early\nlate\n"
        );
        let e = sh.run(&["-c", "sleep 5"], Duration::from_millis(200)).unwrap_err();
        assert!(e.timed_out, "{e}");
        // Every run is in the metrics, failures by reason.
        let text = crate::metrics::counted_text();
        let failures = |reason: &str| {
            let series = format!("hearth_command_failures_total{{program=\"sh\",reason=\"{reason}\"}} ");
            text.lines().find_map(|l| l.strip_prefix(series.as_str())?.parse::<f64>().ok()).unwrap_or(0.0)
        };
        assert!(failures("exit") >= 2.0 && failures("timeout") >= 1.0, "{text}");
        assert!(text.contains("hearth_command_duration_seconds_count{program=\"sh\"}"), "{text}");
        assert!(Tool::resolve("no-such-program-hearth").is_err());
    }
}

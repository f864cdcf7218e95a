//! Repository locks: how backups and the garbage collector keep out of each other's
//! way, in this process or any other on any host that shares the target (restic's
//! protocol, in spirit).
//!
//! A lock is an object `locks/<32 random hex digits>` holding [`LockObject`] JSON:
//! `shared` for a backup, a restore or a verify (any number at once), `exclusive` for
//! a gc (alone). A lock is *stale*, and ignored, when both its `refreshed` time and
//! the target's modification time of the object are older than the stale timeout
//! (30 minutes), or at once when its holder ran on this machine, in this pid
//! namespace, and that process is gone (a crash). Taking a lock:
//!
//! 1. write our own lock object with `put_new` (never replacing another);
//! 2. list `locks/` and read every other lock;
//! 3. shared: while a live exclusive lock exists, wait and list again (step 2)
//!    until it goes or the wait times out; our own lock stays written meanwhile, so a
//!    gc that starts now sees it and gives up. Exclusive: if any other live lock
//!    exists, delete ours and fail with a conflict; stale locks are deleted.
//!
//! Both sides write before they look, so of a backup and a gc that start at the same
//! time at least one sees the other. While held, a thread rewrites the lock with a
//! new `refreshed` time every 5 minutes. The holder checks its lock
//! ([`RepoLock::check`]) before anything that relies on it — a backup before writing
//! its manifest, a gc before each batch of deletions — and treats it as lost when the
//! object was removed, or when it could not refresh it for half the stale timeout:
//! another host may then call it stale. Dropping a lock stops its thread and deletes
//! the object, trying again a few times when the target fails. A lock object of this
//! very process that it no longer holds (its delete failed even so) is stale to this
//! process at once, so one failed delete does not keep its own gc, or its own
//! backups behind a gc's lock, waiting for the stale timeout; the next gc deletes it.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::backup::format::LOCKS_PREFIX;
use crate::backup::target::Target;
use crate::error::{Error, Result};

/// The timings of the lock protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LockTiming {
    /// How often a held lock is rewritten (5 minutes).
    pub refresh: Duration,
    /// A lock not refreshed for this long is stale (30 minutes).
    pub stale: Duration,
    /// How long a backup waits for a gc's exclusive lock to go (30 minutes).
    pub wait: Duration,
    /// The longest pause between two looks while waiting (5 s; it starts at 50 ms).
    pub poll: Duration,
}

impl Default for LockTiming {
    fn default() -> Self {
        LockTiming {
            refresh: Duration::from_secs(300),
            stale: Duration::from_secs(1800),
            wait: Duration::from_secs(1800),
            poll: Duration::from_secs(5),
        }
    }
}

/// Shared or exclusive.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LockKind {
    /// A backup, restore or verify: any number at once.
    Shared,
    /// A gc: alone.
    Exclusive,
}

/// A lock object's JSON.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockObject {
    /// Shared or exclusive.
    pub kind: LockKind,
    /// What holds it (`backup <id>`, `gc`), for people and errors.
    pub purpose: String,
    /// The holder's host name.
    pub host: String,
    /// The holder's kernel boot id (`/proc/sys/kernel/random/boot_id`).
    pub boot_id: String,
    /// The holder's pid namespace (`/proc/self/ns/pid`).
    pub pid_ns: String,
    /// The holder's process id.
    pub pid: u32,
    /// The holder's start time in clock ticks since boot (`/proc/<pid>/stat` field
    /// 22), so that a reused pid is not taken for the holder.
    pub start_time: u64,
    /// When the lock was taken, in seconds since the Unix epoch.
    pub created: u64,
    /// When it was last refreshed, in seconds since the Unix epoch.
    pub refreshed: u64,
}

/// The keys of the lock objects this process holds now.
static HELD: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());

fn held() -> std::sync::MutexGuard<'static, BTreeSet<String>> {
    HELD.lock().unwrap_or_else(|e| e.into_inner())
}

/// How many times releasing a lock tries to delete its object.
const RELEASE_ATTEMPTS: u32 = 3;

/// Who we are, for lock objects.
#[derive(Clone, Debug)]
struct Holder {
    host: String,
    boot_id: String,
    pid_ns: String,
    pid: u32,
    start_time: u64,
}

impl Holder {
    fn me() -> Holder {
        let pid = std::process::id();
        Holder {
            host: nix::unistd::gethostname().ok().and_then(|h| h.into_string().ok()).unwrap_or_default(),
            boot_id: std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap_or_default().trim().to_string(),
            pid_ns: std::fs::read_link("/proc/self/ns/pid").map(|p| p.display().to_string()).unwrap_or_default(),
            pid,
            start_time: process_start_time(pid).unwrap_or(0),
        }
    }

    /// Whether `lock` was taken on this machine in this pid namespace, so that its
    /// holder's process can be looked up.
    fn same_machine(&self, lock: &LockObject) -> bool {
        !self.boot_id.is_empty()
            && !self.pid_ns.is_empty()
            && lock.host == self.host
            && lock.boot_id == self.boot_id
            && lock.pid_ns == self.pid_ns
    }

    /// Whether `lock` was taken by this very process.
    fn is_me(&self, lock: &LockObject) -> bool {
        self.same_machine(lock) && lock.pid == self.pid && lock.start_time == self.start_time
    }
}

/// A process's start time (`/proc/<pid>/stat` field 22), or None when there is no
/// such process.
fn process_start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces.
    let after_name = &stat[stat.rfind(')')? + 1..];
    after_name.split_whitespace().nth(19)?.parse().ok()
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// Whether a lock is stale (see the module doc).
fn is_stale(lock: Option<&LockObject>, mtime: SystemTime, me: &Holder, stale: Duration) -> bool {
    if let Some(lock) = lock {
        if me.same_machine(lock) && process_start_time(lock.pid) != Some(lock.start_time) {
            return true;
        }
    }
    let now = SystemTime::now();
    let old = |t: SystemTime| now.duration_since(t).map(|age| age > stale).unwrap_or(false);
    let refreshed_old = lock.map(|l| old(UNIX_EPOCH + Duration::from_secs(l.refreshed))).unwrap_or(true);
    refreshed_old && old(mtime)
}

/// The health of a held lock, shared with its refresh thread.
struct Health {
    /// When the last refresh that succeeded started (or the lock was taken).
    last_ok: Instant,
    /// Why the lock is lost, once it is.
    lost: Option<String>,
}

struct State {
    stop: Mutex<bool>,
    wake: Condvar,
    health: Mutex<Health>,
}

/// A lock held in a repository; dropping it releases it.
pub struct RepoLock {
    target: Arc<dyn Target>,
    key: String,
    purpose: String,
    timing: LockTiming,
    state: Arc<State>,
    refresher: Option<JoinHandle<()>>,
}

/// Another lock seen while taking ours.
struct Other {
    key: String,
    lock: Option<LockObject>,
    stale: bool,
}

impl RepoLock {
    /// Take a shared lock, waiting for a gc's exclusive lock to go (at most
    /// `timing.wait`, or until `cancel` is set).
    pub fn shared(
        target: &Arc<dyn Target>,
        timing: LockTiming,
        purpose: &str,
        cancel: Option<&AtomicBool>,
    ) -> Result<RepoLock> {
        let lock = RepoLock::write(target, timing, LockKind::Shared, purpose)?;
        let started = Instant::now();
        let mut pause = Duration::from_millis(50).min(timing.poll);
        loop {
            let others = lock.others()?;
            let Some(gc) =
                others.iter().find(|o| !o.stale && o.lock.as_ref().map(|l| l.kind) != Some(LockKind::Shared))
            else {
                return Ok(lock);
            };
            if cancel.is_some_and(|c| c.load(Ordering::Relaxed)) {
                return Err(Error::Backend(format!("{purpose} was cancelled while waiting for a lock")));
            }
            if started.elapsed() >= timing.wait {
                return Err(Error::Conflict(format!(
                    "{purpose}: the backup repository at {} is locked by {} (waited {:.1} s)",
                    target.describe(),
                    describe(gc),
                    timing.wait.as_secs_f64()
                )));
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(timing.poll);
        }
    }

    /// Take the exclusive lock, or fail with a conflict when another live lock exists.
    /// Stale locks found are deleted; their number is returned too.
    pub fn exclusive(target: &Arc<dyn Target>, timing: LockTiming, purpose: &str) -> Result<(RepoLock, u64)> {
        let lock = RepoLock::write(target, timing, LockKind::Exclusive, purpose)?;
        let others = lock.others()?;
        if let Some(live) = others.iter().find(|o| !o.stale) {
            let live_count = others.iter().filter(|o| !o.stale).count();
            return Err(Error::Conflict(format!(
                "{purpose}: the backup repository at {} is in use by {}{}; try again when it is done",
                target.describe(),
                describe(live),
                if live_count > 1 { format!(" and {} more", live_count - 1) } else { String::new() }
            )));
        }
        let mut removed = 0;
        for stale in others {
            log::info!(
                "{purpose}: removing the stale lock {} ({}) from {}",
                stale.key,
                describe(&stale),
                target.describe()
            );
            target.delete(&stale.key)?;
            removed += 1;
        }
        Ok((lock, removed))
    }

    /// Step 1: write our lock object and start refreshing it.
    fn write(target: &Arc<dyn Target>, timing: LockTiming, kind: LockKind, purpose: &str) -> Result<RepoLock> {
        let me = Holder::me();
        let now = unix_now();
        let object = LockObject {
            kind,
            purpose: purpose.to_string(),
            host: me.host,
            boot_id: me.boot_id,
            pid_ns: me.pid_ns,
            pid: me.pid,
            start_time: me.start_time,
            created: now,
            refreshed: now,
        };
        let json = serde_json::to_vec(&object).expect("a lock serializes");
        let key = loop {
            let key = format!("{LOCKS_PREFIX}{}", super::random_hex(16));
            // Held from before it is written: a look of another of our locks meanwhile
            // must not take it for one left behind.
            held().insert(key.clone());
            match target.put_new(&key, &json) {
                Ok(true) => break key,
                Ok(false) => {
                    held().remove(&key);
                }
                Err(e) => {
                    held().remove(&key);
                    return Err(e);
                }
            }
        };
        let state = Arc::new(State {
            stop: Mutex::new(false),
            wake: Condvar::new(),
            health: Mutex::new(Health { last_ok: Instant::now(), lost: None }),
        });
        let refresher = {
            let (target, key, state) = (Arc::clone(target), key.clone(), Arc::clone(&state));
            std::thread::Builder::new()
                .name("backup-lock".into())
                .spawn(move || refresh_loop(&*target, &key, object, timing, &state))
                .map_err(|e| Error::internal("starting the backup lock's refresh thread", e))?
        };
        Ok(RepoLock {
            target: Arc::clone(target),
            key,
            purpose: purpose.to_string(),
            timing,
            state,
            refresher: Some(refresher),
        })
    }

    /// Step 2: every other lock, and whether it is stale.
    fn others(&self) -> Result<Vec<Other>> {
        let me = Holder::me();
        let mut out = Vec::new();
        for (key, mtime) in self.target.list(LOCKS_PREFIX)? {
            if key == self.key {
                continue;
            }
            let lock = match self.target.get(&key)? {
                Some(bytes) => serde_json::from_slice::<LockObject>(&bytes).ok(),
                None => continue, // released meanwhile
            };
            let left_behind = lock.as_ref().is_some_and(|l| me.is_me(l)) && !held().contains(&key);
            let stale = left_behind || is_stale(lock.as_ref(), mtime, &me, self.timing.stale);
            out.push(Other { key, lock, stale });
        }
        Ok(out)
    }

    /// Whether the lock is still ours: Err when it was removed by another process or
    /// not refreshed for half the stale timeout.
    pub fn check(&self) -> Result<()> {
        let health = self.state.health.lock().expect("lock health");
        let lost = match &health.lost {
            Some(why) => Some(why.clone()),
            None if health.last_ok.elapsed() > self.timing.stale / 2 => {
                Some(format!("it could not be refreshed for {} s", health.last_ok.elapsed().as_secs()))
            }
            None => None,
        };
        match lost {
            Some(why) => Err(Error::Backend(format!(
                "{}: lost the lock {} on the backup repository at {}: {why}",
                self.purpose,
                self.key,
                self.target.describe()
            ))),
            None => Ok(()),
        }
    }

    /// Release the lock now, saying whether its object could be deleted.
    pub fn release(mut self) -> Result<()> {
        self.stop();
        self.delete_object()
    }

    fn stop(&mut self) {
        if let Some(thread) = self.refresher.take() {
            *self.state.stop.lock().expect("lock stop flag") = true;
            self.state.wake.notify_all();
            let _ = thread.join();
        }
    }

    /// Delete the lock object, trying again when the target fails; the lock is not
    /// held any more either way (see the module doc for one left behind).
    fn delete_object(&self) -> Result<()> {
        held().remove(&self.key);
        let mut attempt = 1;
        loop {
            match self.target.delete(&self.key) {
                Ok(()) => return Ok(()),
                Err(e) if attempt < RELEASE_ATTEMPTS => {
                    log::warn!(
                        "{}: deleting the lock {} failed (attempt {attempt} of {RELEASE_ATTEMPTS}): {e}",
                        self.purpose,
                        self.key
                    );
                    std::thread::sleep(Duration::from_millis(100 << attempt));
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }
}

impl Drop for RepoLock {
    fn drop(&mut self) {
        if self.refresher.is_some() {
            self.stop();
            if let Err(e) = self.delete_object() {
                log::warn!("{}: could not release the backup repository lock: {e}", self.purpose);
            }
        }
    }
}

/// The refresh thread: rewrite the lock every `timing.refresh` until stopped.
fn refresh_loop(target: &dyn Target, key: &str, mut object: LockObject, timing: LockTiming, state: &State) {
    let mut stop = state.stop.lock().expect("lock stop flag");
    loop {
        // A stop asked before this thread first waited must not wait a whole refresh.
        if !*stop {
            stop = state.wake.wait_timeout(stop, timing.refresh).expect("lock stop flag").0;
        }
        if *stop {
            return;
        }
        let started = Instant::now();
        object.refreshed = unix_now();
        let json = serde_json::to_vec(&object).expect("a lock serializes");
        let outcome = match target.get(key) {
            Ok(Some(_)) => target.put(key, &json).map(|()| true),
            Ok(None) => Ok(false),
            Err(e) => Err(e),
        };
        let mut health = state.health.lock().expect("lock health");
        match outcome {
            Ok(true) if health.last_ok.elapsed() > timing.stale => {
                health.lost = Some(format!("it went {} s without a refresh", health.last_ok.elapsed().as_secs()));
            }
            Ok(true) => health.last_ok = started,
            Ok(false) => {
                health.lost = Some("another process removed it as stale".into());
                return;
            }
            Err(e) => log::warn!("{}: could not refresh the backup lock {key}: {e}", object.purpose),
        }
    }
}

fn describe(other: &Other) -> String {
    match &other.lock {
        Some(l) => format!(
            "{} lock of {} on {} (pid {}, refreshed {} s ago)",
            match l.kind {
                LockKind::Shared => "a shared",
                LockKind::Exclusive => "an exclusive",
            },
            l.purpose,
            l.host,
            l.pid,
            unix_now().saturating_sub(l.refreshed)
        ),
        None => format!("an unreadable lock {}", other.key),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backup::posix::PosixTarget;

    fn fast() -> LockTiming {
        LockTiming {
            refresh: Duration::from_millis(20),
            stale: Duration::from_secs(10),
            wait: Duration::from_millis(400),
            poll: Duration::from_millis(10),
        }
    }

    fn target() -> (tempfile::TempDir, Arc<dyn Target>) {
        let dir = tempfile::tempdir().unwrap();
        let t: Arc<dyn Target> = Arc::new(PosixTarget::new(dir.path()).unwrap());
        (dir, t)
    }

    fn lock_keys(t: &Arc<dyn Target>) -> Vec<String> {
        t.list(LOCKS_PREFIX).unwrap().into_iter().map(|(k, _)| k).collect()
    }

    #[test]
    fn shared_locks_coexist_and_keep_gc_out() {
        let (_d, t) = target();
        let a = RepoLock::shared(&t, fast(), "backup a", None).unwrap();
        let b = RepoLock::shared(&t, fast(), "backup b", None).unwrap();
        assert_eq!(lock_keys(&t).len(), 2);
        match RepoLock::exclusive(&t, fast(), "gc") {
            Err(Error::Conflict(msg)) => {
                assert!(msg.contains("in use by a shared lock of backup"), "{msg}");
                assert!(msg.contains("and 1 more"), "{msg}");
            }
            other => panic!("{:?}", other.map(|_| ())),
        }
        assert_eq!(lock_keys(&t).len(), 2, "the gc's own lock is gone again");
        a.release().unwrap();
        drop(b);
        assert!(lock_keys(&t).is_empty());
        let (gc, stale) = RepoLock::exclusive(&t, fast(), "gc").unwrap();
        assert_eq!(stale, 0);
        gc.check().unwrap();
    }

    #[test]
    fn a_backup_waits_for_gc_and_times_out_or_is_cancelled() {
        let (_d, t) = target();
        let (gc, _) = RepoLock::exclusive(&t, fast(), "gc").unwrap();
        match RepoLock::shared(&t, fast(), "backup a", None) {
            Err(Error::Conflict(msg)) => assert!(msg.contains("locked by an exclusive lock of gc"), "{msg}"),
            other => panic!("{:?}", other.map(|_| ())),
        }
        let cancel = AtomicBool::new(true);
        assert!(matches!(RepoLock::shared(&t, fast(), "backup a", Some(&cancel)), Err(Error::Backend(_))));
        assert_eq!(lock_keys(&t).len(), 1, "the waiting backups' locks are gone");
        // Released while a backup waits: the backup goes on.
        std::thread::scope(|s| {
            let waiter =
                s.spawn(|| RepoLock::shared(&t, LockTiming { wait: Duration::from_secs(10), ..fast() }, "b", None));
            std::thread::sleep(Duration::from_millis(100));
            gc.release().unwrap();
            waiter.join().unwrap().unwrap();
        });
    }

    /// A release whose delete failed leaves the object; this process, which knows
    /// it does not hold it, does not wait for it (a backup behind a gc's lock left
    /// so would wait the whole stale timeout), and its next gc deletes it.
    #[test]
    fn a_lock_this_process_left_behind_is_stale_to_it() {
        let (_d, t) = target();
        let timing = LockTiming { stale: Duration::from_secs(3600), wait: Duration::from_secs(3600), ..fast() };
        let (gc, _) = RepoLock::exclusive(&t, timing, "gc").unwrap();
        let bytes = t.get(&gc.key).unwrap().unwrap();
        let left = format!("{LOCKS_PREFIX}0123456789abcdef0123456789abcdef");
        t.put(&left, &bytes).unwrap();
        gc.release().unwrap();
        let started = Instant::now();
        drop(RepoLock::shared(&t, timing, "backup a", None).unwrap());
        assert!(started.elapsed() < Duration::from_secs(5), "the backup waited for a lock left behind");
        let (gc, stale) = RepoLock::exclusive(&t, timing, "gc").unwrap();
        assert_eq!(stale, 1);
        gc.release().unwrap();
        assert!(lock_keys(&t).is_empty());
        // A lock of this process that it holds is not stale, of course.
        let a = RepoLock::shared(&t, timing, "backup a", None).unwrap();
        assert!(matches!(RepoLock::exclusive(&t, timing, "gc"), Err(Error::Conflict(_))));
        drop(a);
    }

    #[test]
    fn locks_are_refreshed_while_held() {
        let (_d, t) = target();
        let lock = RepoLock::shared(&t, fast(), "backup a", None).unwrap();
        let read = || serde_json::from_slice::<LockObject>(&t.get(&lock.key).unwrap().unwrap()).unwrap();
        let first = read();
        // The time is in whole seconds: wait for a refresh in a later second.
        let deadline = Instant::now() + Duration::from_secs(20);
        while read().refreshed <= first.refreshed {
            assert!(Instant::now() < deadline, "the lock was not refreshed");
            std::thread::sleep(Duration::from_millis(50));
        }
        lock.check().unwrap();
    }

    #[test]
    fn a_lock_removed_by_another_process_is_lost() {
        let (_d, t) = target();
        let lock = RepoLock::shared(&t, fast(), "backup a", None).unwrap();
        t.delete(&lock.key).unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while lock.check().is_ok() {
            assert!(Instant::now() < deadline, "the loss was not noticed");
            std::thread::sleep(Duration::from_millis(10));
        }
        match lock.check() {
            Err(Error::Backend(msg)) => assert!(msg.contains("another process removed it"), "{msg}"),
            other => panic!("{other:?}"),
        }
    }

    fn plant(t: &Arc<dyn Target>, key: &str, lock: &LockObject) {
        t.put(key, &serde_json::to_vec(lock).unwrap()).unwrap();
    }

    fn foreign(kind: LockKind, age: Duration) -> LockObject {
        let at = unix_now() - age.as_secs();
        LockObject {
            kind,
            purpose: "backup x".into(),
            host: "elsewhere".into(),
            boot_id: "b".into(),
            pid_ns: "pid:[1]".into(),
            pid: 1,
            start_time: 1,
            created: at,
            refreshed: at,
        }
    }

    #[test]
    fn stale_locks_are_ignored_and_removed_by_gc() {
        let (_d, t) = target();
        // Another host's lock, refreshed long ago, on an object also old: stale.
        plant(&t, "locks/old", &foreign(LockKind::Shared, Duration::from_secs(3600)));
        let path = _d.path().join("locks/old");
        std::fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(SystemTime::now() - Duration::from_secs(3600))
            .unwrap();
        // A crashed process on this machine: its pid is alive but started at another time.
        let me = Holder::me();
        let crashed = LockObject {
            host: me.host.clone(),
            boot_id: me.boot_id.clone(),
            pid_ns: me.pid_ns.clone(),
            pid: me.pid,
            start_time: me.start_time + 1,
            ..foreign(LockKind::Exclusive, Duration::ZERO)
        };
        plant(&t, "locks/crashed", &crashed);
        // A backup is not held up by either.
        let b = RepoLock::shared(&t, fast(), "backup a", None).unwrap();
        drop(b);
        let (gc, removed) = RepoLock::exclusive(&t, fast(), "gc").unwrap();
        assert_eq!(removed, 2);
        assert_eq!(lock_keys(&t), std::slice::from_ref(&gc.key));
    }

    #[test]
    fn a_fresh_foreign_lock_is_live_even_when_old_by_its_own_clock() {
        let (_d, t) = target();
        // Its own time says an hour ago (clock skew), but the target wrote it now.
        plant(&t, "locks/skewed", &foreign(LockKind::Shared, Duration::from_secs(3600)));
        assert!(matches!(RepoLock::exclusive(&t, fast(), "gc"), Err(Error::Conflict(_))));
        // An unreadable lock counts by its modification time.
        t.delete("locks/skewed").unwrap();
        t.put("locks/garbage", b"{not json").unwrap();
        assert!(matches!(RepoLock::exclusive(&t, fast(), "gc"), Err(Error::Conflict(_))));
    }

    #[test]
    fn our_start_time_is_known() {
        let me = Holder::me();
        assert!(me.start_time > 0);
        assert!(!me.boot_id.is_empty() && me.pid_ns.starts_with("pid:"));
        assert_eq!(process_start_time(me.pid), Some(me.start_time));
        assert_eq!(process_start_time(u32::MAX), None);
    }
}

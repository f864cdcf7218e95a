//! The posix target: a backup repository in a directory, on a local disk or a mounted
//! NFS export.
//!
//! An object is a file: the key `chunks/ab/abcd…` is the file `<root>/chunks/ab/abcd…`.
//! Keys are checked by [`check_key`] first, so no key reaches outside the root (no
//! absolute keys, no `..`). Names starting with `.` are the target's own.
//!
//! Writing an object ([`Target::put`]), so that a reader or a crash sees the old
//! object or the new one, never a part:
//!
//! 1. write the data to a temporary file `.tmp-<random>` in the object's directory
//!    (making the directory first when needed, and syncing its parent so that the
//!    new directory survives a crash);
//! 2. `fdatasync` the temporary file;
//! 3. `rename` it over the object's name (atomic within a directory);
//! 4. remember the directory; [`Target::flush`] `fsync`s every directory remembered,
//!    which makes the renames durable: one sync for many chunks, where a sync per
//!    chunk would double the journal commits. As the data was synced before the
//!    rename, a name that survives a crash always holds the whole object.
//!
//! Finding an object with [`Target::exists`] remembers its directory too: another
//! process may have renamed it into place and not synced yet, and a backup that uses a
//! chunk it found must not write a manifest that outlives the chunk's name in a crash.
//! Deleting an object remembers its directory the same way (the repository flushes
//! after deleting a manifest, so that it cannot reappear after a crash once the chunks
//! it named are gone). [`Target::put_new`] does steps 1–2, then `link`s the temporary
//! file to the object's name, which fails with `EEXIST` when the name exists: the
//! classic NFS-safe lock file (when `link` reports an error, the temporary file's link
//! count says whether it really happened, as a retransmitted NFS `LINK` can fail after
//! succeeding); it syncs the directory at once.
//!
//! A crash can leave temporary files behind; listing removes those older than a day.

use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io::{self, ErrorKind, Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use crate::backup::target::{check_key, check_prefix, Target};
use crate::error::{Error, Result};

/// Temporary files left by a crash are removed by `list` after this long.
const TEMP_MAX_AGE: Duration = Duration::from_secs(24 * 3600);

/// The prefix of temporary files' names.
const TEMP_PREFIX: &str = ".tmp-";

/// A backup target in a directory.
pub struct PosixTarget {
    root: PathBuf,
    /// Directories with renames or removals not yet synced (step 4).
    unsynced: Mutex<HashSet<PathBuf>>,
}

impl PosixTarget {
    /// The target in directory `root`, which is made (with its parents) when missing.
    pub fn new(root: impl Into<PathBuf>) -> Result<PosixTarget> {
        let root = root.into();
        if root.as_os_str().is_empty() {
            return Err(Error::Invalid("the posix backup target has an empty path".into()));
        }
        fs::create_dir_all(&root)
            .map_err(|e| Error::Backend(format!("posix:{}: could not make the directory: {e}", root.display())))?;
        Ok(PosixTarget { root, unsynced: Mutex::new(HashSet::new()) })
    }

    /// The directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn err(&self, what: &str, key: &str, e: impl std::fmt::Display) -> Error {
        Error::Backend(format!("{}: could not {what} the object {key}: {e}", self.describe()))
    }

    /// The path of `key`, after checking it.
    fn path(&self, key: &str) -> Result<PathBuf> {
        check_key(&self.describe(), key)?;
        Ok(self.root.join(key))
    }

    /// Make the directories of `key` that are missing, syncing the parent of each one
    /// made.
    fn make_dirs(&self, key: &str) -> io::Result<()> {
        let mut dir = self.root.clone();
        let segments: Vec<&str> = key.split('/').collect();
        for segment in &segments[..segments.len() - 1] {
            let parent = dir.clone();
            dir.push(segment);
            match fs::create_dir(&dir) {
                Ok(()) => sync_dir(&parent)?,
                Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Steps 1 and 2 of a write: `data` in a synced temporary file beside `path`.
    fn write_temp(&self, key: &str, path: &Path, data: &[u8]) -> Result<PathBuf> {
        let dir = path.parent().expect("a checked key has a parent under the root");
        let temp = dir.join(format!("{TEMP_PREFIX}{}", super::random_hex(8)));
        let open = || OpenOptions::new().write(true).create_new(true).open(&temp);
        let mut file = match open() {
            Err(e) if e.kind() == ErrorKind::NotFound => {
                self.make_dirs(key).map_err(|e| self.err("make the directory of", key, e))?;
                open()
            }
            other => other,
        }
        .map_err(|e| self.err("create a temporary file for", key, e))?;
        let written = file.write_all(data).and_then(|()| file.sync_data());
        if let Err(e) = written {
            let _ = fs::remove_file(&temp);
            return Err(self.err("write", key, e));
        }
        Ok(temp)
    }
}

/// `fsync` a directory, making the names in it durable.
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

impl Target for PosixTarget {
    fn describe(&self) -> String {
        format!("posix:{}", self.root.display())
    }

    fn put(&self, key: &str, data: &[u8]) -> Result<()> {
        let path = self.path(key)?;
        let temp = self.write_temp(key, &path, data)?;
        if let Err(e) = fs::rename(&temp, &path) {
            let _ = fs::remove_file(&temp);
            return Err(self.err("rename into place", key, e));
        }
        self.unsynced.lock().expect("unsynced directories").insert(path.parent().expect("checked key").to_path_buf());
        Ok(())
    }

    fn put_new(&self, key: &str, data: &[u8]) -> Result<bool> {
        let path = self.path(key)?;
        let temp = self.write_temp(key, &path, data)?;
        let linked = match fs::hard_link(&temp, &path) {
            Ok(()) => Ok(true),
            // A retransmitted NFS LINK can report an error after it succeeded: then
            // the temporary file has two names.
            Err(e) => match fs::metadata(&temp) {
                Ok(m) if m.nlink() == 2 => Ok(true),
                _ if e.kind() == ErrorKind::AlreadyExists => Ok(false),
                _ => Err(e),
            },
        };
        let _ = fs::remove_file(&temp);
        let created = linked.map_err(|e| self.err("create", key, e))?;
        sync_dir(path.parent().expect("checked key")).map_err(|e| self.err("sync the directory of", key, e))?;
        Ok(created)
    }

    fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        let path = self.path(key)?;
        let mut file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if is_missing(&e) => return Ok(None),
            Err(e) => return Err(self.err("open", key, e)),
        };
        let len = file.metadata().map(|m| m.len() as usize).unwrap_or(0);
        let mut data = Vec::with_capacity(len);
        file.read_to_end(&mut data).map_err(|e| self.err("read", key, e))?;
        Ok(Some(data))
    }

    fn exists(&self, key: &str) -> Result<bool> {
        let path = self.path(key)?;
        match fs::symlink_metadata(&path) {
            Ok(m) if m.is_file() => {
                // Another process may have renamed it into place without syncing the
                // directory yet: whoever relies on it finding it flushes.
                self.unsynced
                    .lock()
                    .expect("unsynced directories")
                    .insert(path.parent().expect("checked key").to_path_buf());
                Ok(true)
            }
            Ok(_) => Ok(false),
            Err(e) if is_missing(&e) => Ok(false),
            Err(e) => Err(self.err("look up", key, e)),
        }
    }

    fn delete(&self, key: &str) -> Result<()> {
        let path = self.path(key)?;
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if is_missing(&e) => return Ok(()),
            Err(e) => return Err(self.err("delete", key, e)),
        }
        self.unsynced.lock().expect("unsynced directories").insert(path.parent().expect("checked key").to_path_buf());
        Ok(())
    }

    fn flush(&self) -> Result<()> {
        let dirs: Vec<PathBuf> = self.unsynced.lock().expect("unsynced directories").drain().collect();
        for (i, dir) in dirs.iter().enumerate() {
            if let Err(e) = sync_dir(dir) {
                // Keep the ones not synced for the next flush.
                self.unsynced.lock().expect("unsynced directories").extend(dirs[i..].iter().cloned());
                let rel = dir.strip_prefix(&self.root).unwrap_or(dir).display().to_string();
                return Err(self.err("sync the directory", &format!("{rel}/"), e));
            }
        }
        Ok(())
    }

    fn list(&self, prefix: &str) -> Result<Vec<(String, SystemTime)>> {
        check_prefix(&self.describe(), prefix)?;
        let now = SystemTime::now();
        let mut out = Vec::new();
        let mut pending = vec![prefix.trim_end_matches('/').to_string()];
        while let Some(rel) = pending.pop() {
            let dir = if rel.is_empty() { self.root.clone() } else { self.root.join(&rel) };
            let entries = match fs::read_dir(&dir) {
                Ok(entries) => entries,
                Err(e) if is_missing(&e) => continue,
                Err(e) => return Err(self.err("list", &format!("{rel}/"), e)),
            };
            for entry in entries {
                let entry = entry.map_err(|e| self.err("list", &format!("{rel}/"), e))?;
                let Some(name) = entry.file_name().to_str().map(str::to_string) else { continue };
                let key = if rel.is_empty() { name.clone() } else { format!("{rel}/{name}") };
                let meta = match entry.metadata() {
                    Ok(m) => m,
                    Err(e) if is_missing(&e) => continue,
                    Err(e) => return Err(self.err("look up", &key, e)),
                };
                let mtime = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
                if name.starts_with(TEMP_PREFIX) {
                    let old = now.duration_since(mtime).map(|age| age > TEMP_MAX_AGE).unwrap_or(false);
                    if meta.is_file() && old {
                        log::info!("{}: removing the temporary file {key} left by a crash", self.describe());
                        let _ = fs::remove_file(entry.path());
                    }
                    continue;
                }
                if check_key("", &key).is_err() {
                    continue; // not one of ours (lost+found, a stray file)
                }
                if meta.is_dir() {
                    pending.push(key);
                } else if meta.is_file() {
                    out.push((key, mtime));
                }
            }
        }
        Ok(out)
    }
}

fn is_missing(e: &io::Error) -> bool {
    e.kind() == ErrorKind::NotFound || e.raw_os_error() == Some(nix::libc::ENOTDIR)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target() -> (tempfile::TempDir, PosixTarget) {
        let dir = tempfile::tempdir().unwrap();
        let t = PosixTarget::new(dir.path().join("repo")).unwrap();
        (dir, t)
    }

    #[test]
    fn put_get_exists_delete_round_trip() {
        let (_d, t) = target();
        assert_eq!(t.get("chunks/ab/abc").unwrap(), None);
        assert!(!t.exists("chunks/ab/abc").unwrap());
        t.put("chunks/ab/abc", b"one").unwrap();
        assert!(t.exists("chunks/ab/abc").unwrap());
        assert_eq!(t.get("chunks/ab/abc").unwrap().unwrap(), b"one");
        t.put("chunks/ab/abc", b"two").unwrap();
        assert_eq!(t.get("chunks/ab/abc").unwrap().unwrap(), b"two");
        t.delete("chunks/ab/abc").unwrap();
        t.delete("chunks/ab/abc").unwrap(); // missing is Ok
        t.delete("nothing/here").unwrap();
        assert!(!t.exists("chunks/ab/abc").unwrap());
        // No temporary file is left beside the object.
        let names: Vec<_> = fs::read_dir(t.root().join("chunks/ab")).unwrap().collect();
        assert!(names.is_empty(), "{names:?}");
    }

    #[test]
    fn flush_syncs_the_directories_written_and_says_which_failed() {
        let (_d, t) = target();
        t.put("chunks/ab/1", b"1").unwrap();
        t.put("chunks/cd/2", b"2").unwrap();
        t.delete("chunks/ab/1").unwrap();
        assert_eq!(t.unsynced.lock().unwrap().len(), 2);
        t.flush().unwrap();
        assert!(t.unsynced.lock().unwrap().is_empty());
        // Found present: synced at the next flush, as another process may have put it.
        fs::create_dir_all(t.root().join("chunks/99")).unwrap();
        fs::write(t.root().join("chunks/99/x"), b"x").unwrap();
        assert!(t.exists("chunks/99/x").unwrap());
        assert!(!t.exists("chunks/99/y").unwrap());
        assert_eq!(t.unsynced.lock().unwrap().len(), 1);
        t.flush().unwrap();
        t.put("chunks/ef/3", b"3").unwrap();
        fs::remove_dir_all(t.root().join("chunks/ef")).unwrap();
        match t.flush() {
            Err(Error::Backend(msg)) => assert!(msg.contains("sync the directory the object chunks/ef/"), "{msg}"),
            other => panic!("{other:?}"),
        }
        assert_eq!(t.unsynced.lock().unwrap().len(), 1, "kept for the next flush");
    }

    #[test]
    fn put_new_does_not_replace() {
        let (_d, t) = target();
        assert!(t.put_new("locks/a", b"first").unwrap());
        assert!(!t.put_new("locks/a", b"second").unwrap());
        assert_eq!(t.get("locks/a").unwrap().unwrap(), b"first");
        let names: Vec<_> = fs::read_dir(t.root().join("locks")).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names.len(), 1, "{names:?}");
    }

    #[test]
    fn put_new_races_have_one_winner() {
        let (_d, t) = target();
        let t = &t;
        let wins: usize = std::thread::scope(|s| {
            let handles: Vec<_> =
                (0..8).map(|i| s.spawn(move || t.put_new("locks/x", format!("{i}").as_bytes()).unwrap())).collect();
            handles.into_iter().map(|h| h.join().unwrap() as usize).sum()
        });
        assert_eq!(wins, 1);
    }

    #[test]
    fn list_walks_prefixes_and_skips_foreign_and_temporary_files() {
        let (_d, t) = target();
        t.put("config", b"c").unwrap();
        t.put("chunks/ab/ab01", b"1").unwrap();
        t.put("chunks/cd/cd02", b"2").unwrap();
        t.put("manifests/m1", b"m").unwrap();
        fs::create_dir(t.root().join("lost+found")).unwrap();
        fs::write(t.root().join("lost+found/x"), b"").unwrap();
        fs::write(t.root().join("chunks/ab/.tmp-fresh"), b"").unwrap();
        let old = t.root().join("chunks/ab/.tmp-old");
        fs::write(&old, b"").unwrap();
        File::options()
            .write(true)
            .open(&old)
            .unwrap()
            .set_modified(SystemTime::now() - TEMP_MAX_AGE - Duration::from_secs(60))
            .unwrap();

        let mut chunks: Vec<String> = t.list("chunks/").unwrap().into_iter().map(|(k, _)| k).collect();
        chunks.sort();
        assert_eq!(chunks, ["chunks/ab/ab01", "chunks/cd/cd02"]);
        assert!(!old.exists(), "an old temporary file is removed");
        assert!(t.root().join("chunks/ab/.tmp-fresh").exists(), "a fresh one may be a write in progress");
        let mut all: Vec<String> = t.list("").unwrap().into_iter().map(|(k, _)| k).collect();
        all.sort();
        assert_eq!(all, ["chunks/ab/ab01", "chunks/cd/cd02", "config", "manifests/m1"]);
        assert!(t.list("locks/").unwrap().is_empty());
        let (_, mtime) = &t.list("manifests/").unwrap()[0];
        assert!(now_minus(*mtime) < Duration::from_secs(60));
    }

    fn now_minus(t: SystemTime) -> Duration {
        SystemTime::now().duration_since(t).unwrap_or_default()
    }

    #[test]
    fn keys_cannot_escape_the_root() {
        let (d, t) = target();
        fs::write(d.path().join("outside"), b"secret").unwrap();
        for key in ["../outside", "/etc/passwd", "a/../../outside", ".tmp-x"] {
            assert!(matches!(t.get(key), Err(Error::Invalid(_))), "{key}");
            assert!(matches!(t.put(key, b"x"), Err(Error::Invalid(_))), "{key}");
            assert!(matches!(t.delete(key), Err(Error::Invalid(_))), "{key}");
        }
        assert!(matches!(t.list("../"), Err(Error::Invalid(_))));
        assert_eq!(fs::read(d.path().join("outside")).unwrap(), b"secret");
    }

    #[test]
    fn errors_name_the_target_and_the_key() {
        let (_d, t) = target();
        t.put("a", b"file").unwrap();
        // `a` is a file, so `a/b` cannot be made.
        match t.put("a/b", b"x") {
            Err(Error::Backend(msg)) => {
                assert!(msg.starts_with(&format!("posix:{}", t.root().display())), "{msg}");
                assert!(msg.contains("a/b"), "{msg}");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(t.get("a/b").unwrap(), None);
        assert!(!t.exists("a/b").unwrap());
    }
}

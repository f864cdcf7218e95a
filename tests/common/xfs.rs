//! A reflink-capable filesystem for tests and benchmarks: an XFS image mounted on a
//! loop device under a temporary directory (root only), unmounted on drop.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A mounted XFS filesystem with reflink.
pub struct Xfs {
    _dir: tempfile::TempDir,
    mnt: PathBuf,
}

fn run(cmd: &str, args: &[&str]) -> Result<(), String> {
    let out = Command::new(cmd).args(args).output().map_err(|e| format!("{cmd}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("{cmd} {args:?}: {} {}", out.status, String::from_utf8_lossy(&out.stderr).trim()))
    }
}

impl Xfs {
    /// Make and mount one of `size_gib`; the reason when this machine cannot.
    pub fn mount(size_gib: u64) -> Result<Xfs, String> {
        if !nix::unistd::geteuid().is_root() {
            return Err("not root: cannot mount a loop device".into());
        }
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let img = dir.path().join("xfs.img");
        let mnt = dir.path().join("mnt");
        std::fs::create_dir(&mnt).map_err(|e| e.to_string())?;
        std::fs::File::create(&img).and_then(|f| f.set_len(size_gib << 30)).map_err(|e| e.to_string())?;
        run("mkfs.xfs", &["-q", "-m", "reflink=1", img.to_str().unwrap()])?;
        run("mount", &["-o", "loop", img.to_str().unwrap(), mnt.to_str().unwrap()])?;
        Ok(Xfs { _dir: dir, mnt })
    }

    /// Where it is mounted.
    pub fn path(&self) -> &Path {
        &self.mnt
    }
}

impl Drop for Xfs {
    fn drop(&mut self) {
        let _ = run("umount", &[self.mnt.to_str().unwrap()]);
    }
}

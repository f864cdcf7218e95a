//! A real object store for tests of the S3 backup target: OpenStack Swift with its
//! s3api middleware on loopback (`scripts/objectstore/swift.sh`, its venv made on
//! first use), in a temporary directory, stopped on drop (and by the script's watcher
//! when the test process dies).
//!
//! With `HEARTH_TEST_OBJECTSTORE` naming an `objectstore.json` (what `swift.sh start`
//! writes, its `endpoint_url` reachable from here), the store is that running one
//! instead: each [`Swift`] gets a fresh bucket of its own in it (so tests stay
//! independent, and runs that share the store do not see each other's objects), and
//! the store is left running on drop. The VM tier does this: Swift cannot run in the
//! guest (no Python it can use), so it runs on the host, reached through
//! `vm-tests/run.sh --host-port`. In the guest (`HEARTH_VM` set) the variable is
//! required: the S3 scenarios must not quietly start nothing there.

use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use serde_json::Value;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The variable naming a running store's `objectstore.json`.
pub const OBJECTSTORE_ENV: &str = "HEARTH_TEST_OBJECTSTORE";

/// A running Swift.
pub struct Swift {
    /// The state directory of a store started here (stopped on drop); `None` for a
    /// shared store (`HEARTH_TEST_OBJECTSTORE`).
    dir: Option<tempfile::TempDir>,
    /// What `swift.sh` wrote to `objectstore.json` (for a shared store, with the
    /// bucket made for this test).
    pub info: Value,
}

impl Swift {
    /// A fresh store, or a fresh bucket in the shared one (`HEARTH_TEST_OBJECTSTORE`).
    pub fn start() -> Swift {
        match std::env::var(OBJECTSTORE_ENV) {
            Ok(path) => Swift::shared(Path::new(&path)),
            Err(_) => {
                assert!(
                    std::env::var_os("HEARTH_VM").is_none(),
                    "{OBJECTSTORE_ENV} is not set in the VM tier: the host's Swift must be given to the guest \
                     (scripts/test.sh vm starts it and passes it with vm-tests/run.sh -e and --host-port)"
                );
                Swift::own()
            }
        }
    }

    /// A new bucket in the store that `objectstore.json` at `path` describes.
    fn shared(path: &Path) -> Swift {
        static SEQ: AtomicU32 = AtomicU32::new(0);
        let text = std::fs::read(path).unwrap_or_else(|e| panic!("{OBJECTSTORE_ENV}={}: {e}", path.display()));
        let mut info: Value = serde_json::from_slice(&text)
            .unwrap_or_else(|e| panic!("{OBJECTSTORE_ENV}={}: not JSON: {e}", path.display()));
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
        let bucket = format!("hearth-t{}-{:08x}-{}", std::process::id(), nanos, SEQ.fetch_add(1, Ordering::Relaxed));
        info["bucket"] = Value::from(bucket);
        let swift = Swift { dir: None, info };
        swift.create_bucket();
        swift
    }

    /// `info["bucket"]`, made through S3 (CreateBucket).
    fn create_bucket(&self) {
        use rusty_s3::S3Action;
        let endpoint = self.get("endpoint_url").parse().unwrap_or_else(|e| panic!("endpoint_url: {e}"));
        let bucket = rusty_s3::Bucket::new(
            endpoint,
            rusty_s3::UrlStyle::Path,
            self.get("bucket").to_string(),
            self.get("region").to_string(),
        )
        .unwrap();
        let credentials = rusty_s3::Credentials::new(self.get("access_key"), self.get("secret_key"));
        let url = bucket.create_bucket(&credentials).sign(Duration::from_secs(600));
        let agent: ureq::Agent =
            ureq::Agent::config_builder().timeout_global(Some(Duration::from_secs(60))).build().into();
        if let Err(e) = agent.put(url.as_str()).send_empty() {
            panic!("creating bucket {} at {}: {e}", self.get("bucket"), self.get("endpoint_url"));
        }
    }

    /// Start a fresh store in a temporary directory.
    fn own() -> Swift {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new(repo().join("scripts/objectstore/swift.sh"))
            .arg("start")
            .arg(dir.path())
            .env("SWIFT_WATCH_PID", std::process::id().to_string())
            .output()
            .expect("running scripts/objectstore/swift.sh");
        assert!(
            out.status.success(),
            "swift.sh start failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let info = serde_json::from_slice(&std::fs::read(dir.path().join("objectstore.json")).unwrap()).unwrap();
        Swift { dir: Some(dir), info }
    }

    fn get(&self, name: &str) -> &str {
        self.info[name].as_str().unwrap_or_else(|| panic!("objectstore.json has no {name}: {}", self.info))
    }

    /// hearthd's configuration keys for this store (`backup_driver = "s3"`).
    pub fn config(&self) -> String {
        let mut c = format!(
            "backup_driver = \"s3\"\nbackup_s3_endpoint_url = {:?}\nbackup_s3_store_access_key = {:?}\n\
             backup_s3_store_secret_key = {:?}\nbackup_s3_store_bucket = {:?}\nbackup_s3_region = {:?}\n",
            self.get("endpoint_url"),
            self.get("access_key"),
            self.get("secret_key"),
            self.get("bucket"),
            self.get("region"),
        );
        if let Some(ca) = self.info["ca_cert_file"].as_str() {
            c.push_str(&format!("backup_s3_ca_cert_file = {ca:?}\n"));
        }
        c
    }

    /// The S3 target hearthd's configuration makes.
    pub fn target(&self) -> hearth::backup::S3Target {
        let mut s = hearth::backup::S3Settings::new(
            self.get("endpoint_url"),
            self.get("access_key"),
            self.get("secret_key"),
            self.get("bucket"),
        );
        s.region = self.get("region").to_string();
        s.ca_cert_file = self.info["ca_cert_file"].as_str().map(Into::into);
        hearth::backup::S3Target::new(s).unwrap()
    }
}

impl Drop for Swift {
    fn drop(&mut self) {
        // A shared store is someone else's to stop; its bucket goes with it.
        let Some(dir) = &self.dir else { return };
        let ok = Command::new(repo().join("scripts/objectstore/swift.sh")).arg("stop").arg(dir.path()).status();
        if !matches!(ok, Ok(s) if s.success()) {
            eprintln!("swift.sh stop {} failed: {ok:?}", dir.path().display());
        }
    }
}

//! A real object store for tests of the S3 backup target: OpenStack Swift with its
//! s3api middleware on loopback (`scripts/objectstore/swift.sh`, its venv made on
//! first use), in a temporary directory, stopped on drop (and by the script's watcher
//! when the test process dies).

use std::path::Path;
use std::process::Command;

use serde_json::Value;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// A running Swift.
pub struct Swift {
    dir: tempfile::TempDir,
    /// What `swift.sh` wrote to `objectstore.json`.
    pub info: Value,
}

impl Swift {
    /// Start a fresh store.
    pub fn start() -> Swift {
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
        Swift { dir, info }
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
        let ok = Command::new(repo().join("scripts/objectstore/swift.sh")).arg("stop").arg(self.dir.path()).status();
        if !matches!(ok, Ok(s) if s.success()) {
            eprintln!("swift.sh stop {} failed: {ok:?}", self.dir.path().display());
        }
    }
}

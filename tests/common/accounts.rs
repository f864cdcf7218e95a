//! http_basic accounts for tests of who may do what: alice (member of `pa`), bob
//! (member of `pb`), rita (reader of `pa`), root (admin of `ops`). Each password is
//! `<user>-pw`.

use base64::Engine;
use serde_json::Value;

use super::{Daemon, Resp};

/// A daemon serving those accounts.
pub struct Accounts {
    pub d: Daemon,
    mv: String,
}

impl Accounts {
    /// Start with `extra` configuration text, requests at microversion `mv`.
    pub fn start(extra: &str, mv: &str) -> Accounts {
        let dir = tempfile::tempdir().unwrap().keep();
        let file = dir.join("htpasswd");
        let mut text = String::new();
        for u in ["alice", "bob", "rita", "root"] {
            text.push_str(&format!("{u}:{}\n", bcrypt::hash(format!("{u}-pw"), 4).unwrap()));
        }
        std::fs::write(&file, text).unwrap();
        let config = format!(
            "auth_strategy = \"http_basic\"\nhttp_basic_auth_user_file = {:?}\n{extra}\n\
             [http_basic_users]\n\
             alice = {{ project_id = \"pa\", roles = [\"member\"] }}\n\
             bob = {{ project_id = \"pb\", roles = [\"member\"] }}\n\
             rita = {{ project_id = \"pa\", roles = [\"reader\"] }}\n\
             root = {{ project_id = \"ops\", roles = [\"admin\"] }}\n{}",
            file.display().to_string(),
            super::backends_toml()
        );
        Accounts { d: Daemon::start_with(&config), mv: mv.to_string() }
    }

    /// A request as `who` (`path` after `/v3`, with the project).
    pub fn call(&self, who: &str, method: &str, path: &str, body: Option<Value>) -> Resp {
        let cred = base64::engine::general_purpose::STANDARD.encode(format!("{who}:{who}-pw"));
        let auth = format!("Basic {cred}");
        let mv = format!("volume {}", self.mv);
        let body = body.map(|b| b.to_string());
        let headers = [("Authorization", auth.as_str()), ("OpenStack-API-Version", mv.as_str())];
        self.d.raw(method, &format!("/v3{path}"), body.as_deref().map(str::as_bytes), &headers)
    }

    /// The project each account acts in.
    pub fn project(who: &str) -> &'static str {
        match who {
            "alice" | "rita" => "pa",
            "bob" => "pb",
            _ => "ops",
        }
    }

    /// A request as `who` in its own project (`path` after `/v3/<project>`).
    pub fn own(&self, who: &str, method: &str, path: &str, body: Option<Value>) -> Resp {
        self.call(who, method, &format!("/{}{path}", Self::project(who)), body)
    }

    /// Poll a volume of `who`'s project until its status is `status`.
    pub fn wait_status(&self, who: &str, id: &str, status: &str) -> Value {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        loop {
            let v = self.own(who, "GET", &format!("/volumes/{id}"), None).json();
            if v["volume"]["status"] == status {
                return v["volume"].clone();
            }
            assert!(std::time::Instant::now() < deadline, "volume {id} never became {status}: {v}");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}

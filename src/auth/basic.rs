//! HTTP basic authentication for appliances without a cloud (Ironic's `http_basic`).
//!
//! Users and their bcrypt password hashes come from an Apache htpasswd file
//! (`http_basic_auth_user_file`, made with `htpasswd -B`); each user's project and
//! roles from the `[http_basic_users]` table. The roles are completed as Keystone's
//! default roles imply them (`admin` → `member` → `reader`), so the same policy serves
//! both. A verified user and password are remembered for five minutes (by a hash, not
//! the password), since bcrypt is deliberately slow.
//!
//! The file is read once at start: any line that is not `user:bcrypt-hash`, a user
//! without a table entry or an entry without a user is refused, naming the line or
//! the user.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::{Duration, Instant};

use base64::Engine;

use crate::auth::cache::{self, Cache};
use crate::config::BasicUser;
use crate::error::{Error, Result};
use crate::policy::Credentials;

/// How long a verified password is remembered.
const REMEMBER: Duration = Duration::from_secs(300);

/// Accounts from an htpasswd file.
pub struct Basic {
    users: HashMap<String, (String, Credentials)>,
    verified: Cache<()>,
    /// A hash of the same cost, checked for unknown users: a wrong user name takes
    /// as long as a wrong password, so names cannot be probed by timing.
    decoy: String,
}

/// Keystone's default role implications: each role with the ones it implies.
pub fn implied_roles(roles: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut add = |r: &str| {
        if !out.iter().any(|o| o.eq_ignore_ascii_case(r)) {
            out.push(r.to_string());
        }
    };
    for r in roles {
        add(r);
        if r.eq_ignore_ascii_case("admin") {
            add("member");
            add("reader");
        } else if r.eq_ignore_ascii_case("member") {
            add("reader");
        }
    }
    out
}

/// Parse an htpasswd file's text into user → hash; `origin` names it in errors.
pub fn parse_htpasswd(text: &str, origin: &str) -> Result<BTreeMap<String, String>, String> {
    let mut users = BTreeMap::new();
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((user, hash)) = line.split_once(':') else {
            return Err(format!("{origin} line {n}: not \"user:hash\""));
        };
        if user.is_empty() {
            return Err(format!("{origin} line {n}: the user name is empty"));
        }
        let bcrypt = ["$2y$", "$2b$", "$2a$"].iter().any(|p| hash.starts_with(p)) && hash.len() == 60;
        if !bcrypt {
            return Err(format!(
                "{origin} line {n}: user {user}'s password is not a bcrypt hash ($2y$...); only bcrypt \
                 entries are accepted: make them with htpasswd -B"
            ));
        }
        if users.insert(user.to_string(), hash.to_string()).is_some() {
            return Err(format!("{origin} line {n}: user {user} appears twice"));
        }
    }
    Ok(users)
}

impl Basic {
    /// Load the htpasswd file and match its users with the table.
    pub fn load(file: &Path, table: &BTreeMap<String, BasicUser>) -> Result<Basic> {
        let origin = format!("http_basic_auth_user_file {}", file.display());
        let text = std::fs::read_to_string(file).map_err(|e| Error::Internal(format!("{origin}: {e}")))?;
        let hashes = parse_htpasswd(&text, &origin).map_err(Error::Internal)?;
        let mut users = HashMap::new();
        for (user, hash) in hashes {
            let Some(entry) = table.get(&user) else {
                return Err(Error::Internal(format!(
                    "{origin}: user {user} has no [http_basic_users.{user}] entry (its project and roles)"
                )));
            };
            let creds = Credentials {
                user_id: user.clone(),
                user_name: Some(user.clone()),
                project_id: Some(entry.project_id.clone()),
                roles: implied_roles(&entry.roles),
                is_admin_project: true,
                ..Default::default()
            };
            users.insert(user, (hash, creds));
        }
        if let Some(user) = table.keys().find(|u| !users.contains_key(*u)) {
            return Err(Error::Internal(format!("http_basic_users.{user}: no such user in {}", file.display())));
        }
        let cost = users.values().next().and_then(|(h, _)| h.get(4..6)).and_then(|c| c.parse().ok()).unwrap_or(10);
        let decoy = bcrypt::hash("decoy", cost).map_err(|e| Error::internal("making a bcrypt hash", e))?;
        Ok(Basic { users, verified: Cache::new(10_000, true), decoy })
    }

    /// The `WWW-Authenticate` header of a 401.
    pub fn challenge(&self) -> &'static str {
        "Basic realm=\"hearth\""
    }

    /// The credentials of a request with this `Authorization` header.
    pub fn authenticate(&self, authorization: Option<&str>) -> Result<Credentials> {
        let refused = || Error::Unauthorized("The user name or password is not right.".into());
        let Some(value) = authorization.map(str::trim) else {
            return Err(Error::Unauthorized(
                "The request you have made requires authentication: send HTTP basic credentials.".into(),
            ));
        };
        let encoded = match value.split_once(' ') {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("basic") => rest.trim(),
            _ => return Err(Error::Unauthorized("The Authorization header must use the Basic scheme.".into())),
        };
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or_else(|| {
                Error::Unauthorized("The Authorization header is not valid base64 of user:password.".into())
            })?;
        let (user, password) = decoded.split_once(':').ok_or_else(refused)?;
        let Some((hash, creds)) = self.users.get(user) else {
            let _ = bcrypt::verify(password, &self.decoy);
            return Err(refused());
        };
        let key = cache::key(&[user.as_bytes(), password.as_bytes(), hash.as_bytes()]);
        if self.verified.get(&key).is_none() {
            if !bcrypt::verify(password, hash).unwrap_or(false) {
                return Err(refused());
            }
            self.verified.put(key, (), Instant::now() + REMEMBER);
        }
        Ok(creds.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn htpasswd_lines_are_checked() {
        let good = "# comment\n\nalice:$2y$05$5mQ2ch2AAFDtZVVMr5rjse9CYkzSXyt9BNJRZ1WWrP7XwDBZuJfny\n";
        assert_eq!(parse_htpasswd(good, "f").unwrap().len(), 1);
        for (text, says) in [
            ("alice\n", "line 1: not"),
            ("bob:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=\n", "line 1: user bob's password is not a bcrypt"),
            ("# x\ncarol:$apr1$abc$def\n", "line 2"),
            (":$2y$05$5mQ2ch2AAFDtZVVMr5rjse9CYkzSXyt9BNJRZ1WWrP7XwDBZuJfny\n", "empty"),
        ] {
            let err = parse_htpasswd(text, "f").expect_err(text);
            assert!(err.contains(says), "{text}: {err}");
        }
    }

    #[test]
    fn roles_are_completed_as_keystone_implies_them() {
        let r = |v: &[&str]| implied_roles(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(r(&["admin"]), vec!["admin", "member", "reader"]);
        assert_eq!(r(&["member"]), vec!["member", "reader"]);
        assert_eq!(r(&["reader"]), vec!["reader"]);
        assert_eq!(r(&["observer"]), vec!["observer"]);
    }

    #[test]
    fn passwords_are_verified() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("htpasswd");
        let hash = bcrypt::hash("s3cret", 4).unwrap();
        std::fs::write(&file, format!("alice:{hash}\n")).unwrap();
        let table: BTreeMap<String, BasicUser> =
            [("alice".to_string(), BasicUser { project_id: "p".into(), roles: vec!["member".into()] })]
                .into_iter()
                .collect();
        let b = Basic::load(&file, &table).unwrap();
        let header = |u: &str, p: &str| {
            format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}")))
        };
        let c = b.authenticate(Some(&header("alice", "s3cret"))).unwrap();
        assert_eq!(c.project_id.as_deref(), Some("p"));
        assert_eq!(c.roles, vec!["member", "reader"]);
        // Again, from the cache.
        assert!(b.authenticate(Some(&header("alice", "s3cret"))).is_ok());
        for bad in [Some(header("alice", "wrong")), Some(header("mallory", "s3cret")), None, Some("Bearer x".into())] {
            assert!(matches!(b.authenticate(bad.as_deref()), Err(Error::Unauthorized(_))), "{bad:?}");
        }
        let mut extra = table.clone();
        extra.insert("bob".into(), BasicUser { project_id: "p".into(), roles: vec![] });
        assert!(Basic::load(&file, &extra).is_err());
        assert!(Basic::load(&file, &BTreeMap::new()).is_err());
    }
}

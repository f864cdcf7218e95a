//! Authentication: who is calling, from a request's headers.
//!
//! An [`Auth`] is one of the strategies of `auth_strategy` and turns the headers into
//! [`Credentials`] (user, project, roles), or refuses:
//!
//! - `noauth` ([`Auth::Noauth`]): Cinder's lab mode. The token is `user:project`, or
//!   anything (or nothing); the project in the URL wins. Callers of `admin_projects`
//!   (all projects when the list is empty) get the roles admin, member and reader,
//!   others member and reader. hearthd refuses to listen off loopback with it unless
//!   `noauth_allow_remote` says so, and warns whenever it runs;
//! - `keystone` ([`keystone`]): tokens validated with Keystone;
//! - `http_basic` ([`basic`]): users and bcrypt hashes from an htpasswd file.
//!
//! Refusals are 401s, answered with the strategy's `WWW-Authenticate` challenge; an
//! identity service that cannot be reached is a 503.

pub mod basic;
pub mod cache;
pub mod keystone;

use crate::config::{AuthStrategy, Config};
use crate::error::Result;
use crate::policy::Credentials;

/// The strategy in force.
pub enum Auth {
    /// Cinder's noauth.
    Noauth {
        /// Projects whose callers are admins (empty: all).
        admin_projects: Vec<String>,
        /// The project of requests that name none.
        default_project: String,
    },
    /// Keystone tokens.
    Keystone(keystone::Keystone),
    /// HTTP basic against an htpasswd file.
    Basic(basic::Basic),
}

/// The headers authentication looks at.
#[derive(Clone, Copy, Debug, Default)]
pub struct Presented<'a> {
    /// `X-Auth-Token`.
    pub token: Option<&'a str>,
    /// `X-Service-Token`.
    pub service_token: Option<&'a str>,
    /// `Authorization`.
    pub authorization: Option<&'a str>,
}

impl Auth {
    /// The strategy a configuration asks for (files read, Keystone not yet asked).
    pub fn from_config(config: &Config) -> Result<Auth> {
        Ok(match config.auth_strategy {
            AuthStrategy::Noauth => {
                log::warn!(
                    "auth_strategy is noauth: every caller on {} is trusted by what it claims; for labs only",
                    config.listen
                );
                Auth::Noauth {
                    admin_projects: config.admin_projects.clone(),
                    default_project: config.noauth_default_project.clone(),
                }
            }
            AuthStrategy::Keystone => Auth::Keystone(keystone::Keystone::new(&config.keystone_authtoken)?),
            AuthStrategy::HttpBasic => {
                let file = config
                    .http_basic_auth_user_file
                    .as_deref()
                    .ok_or_else(|| crate::error::Error::Internal("http_basic_auth_user_file is not set".into()))?;
                Auth::Basic(basic::Basic::load(file, &config.http_basic_users)?)
            }
        })
    }

    /// Work worth doing before the first request (Keystone: log in).
    pub fn warm_up(&self) {
        if let Auth::Keystone(k) = self {
            k.warm_up();
        }
    }

    /// The caller's credentials. `url_project` is the project id in the URL, if any.
    pub fn authenticate(&self, p: Presented<'_>, url_project: Option<&str>) -> Result<Credentials> {
        match self {
            Auth::Noauth { admin_projects, default_project } => {
                Ok(noauth(p.token, url_project, admin_projects, default_project))
            }
            Auth::Keystone(k) => k.authenticate(p.token, p.service_token),
            Auth::Basic(b) => b.authenticate(p.authorization),
        }
    }

    /// The `WWW-Authenticate` value sent with a 401.
    pub fn challenge(&self) -> Option<&str> {
        match self {
            Auth::Noauth { .. } => None,
            Auth::Keystone(k) => Some(k.challenge()),
            Auth::Basic(b) => Some(b.challenge()),
        }
    }

    /// Whether the project in a URL may differ from the caller's (noauth: the URL
    /// names the project).
    pub fn url_names_project(&self) -> bool {
        matches!(self, Auth::Noauth { .. })
    }
}

/// Cinder's noauth: the token is `user:project`, or anything else (or nothing), and
/// the project in the URL wins.
fn noauth(token: Option<&str>, url_project: Option<&str>, admin_projects: &[String], default: &str) -> Credentials {
    let (user, token_project) = match token.map(str::trim).filter(|t| !t.is_empty()) {
        Some(t) => match t.split_once(':') {
            Some((u, p)) if !p.is_empty() => (u.to_string(), Some(p.to_string())),
            _ => (t.to_string(), None),
        },
        None => ("admin".to_string(), None),
    };
    let project = url_project.map(str::to_string).or(token_project).unwrap_or_else(|| default.to_string());
    let admin = admin_projects.is_empty() || admin_projects.contains(&project);
    let roles: &[&str] = if admin { &["admin", "member", "reader"] } else { &["member", "reader"] };
    Credentials {
        user_id: user,
        project_id: Some(project),
        roles: roles.iter().map(|r| r.to_string()).collect(),
        is_admin_project: true,
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn noauth_takes_the_url_then_the_token() {
        let c = noauth(Some("demo:p1"), Some("p2"), &[], "admin");
        assert_eq!((c.user_id.as_str(), c.project_id.as_deref()), ("demo", Some("p2")));
        assert!(c.roles.contains(&"admin".to_string()));
        let c = noauth(Some("demo:p1"), None, &["adm".to_string()], "admin");
        assert_eq!(c.project_id.as_deref(), Some("p1"));
        assert_eq!(c.roles, vec!["member", "reader"]);
        let c = noauth(None, None, &["adm".to_string()], "adm");
        assert_eq!(c.project_id.as_deref(), Some("adm"));
        assert!(c.roles.contains(&"admin".to_string()));
    }
}

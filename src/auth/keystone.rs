//! Keystone tokens, validated as keystonemiddleware's `auth_token` does.
//!
//! 1. hearth logs in to Keystone as its own service user (password method, scoped to
//!    its project, `[keystone_authtoken]`) and keeps that token, renewing it a few
//!    minutes before it expires, or at once when Keystone refuses it;
//! 2. a request's `X-Service-Token` (Nova sends one on attach and detach), if any, is
//!    validated first: invalid is a 401; valid but without one of
//!    `service_token_roles` is a 401 when `service_token_roles_required`, else it is
//!    only not counted; a counted one's roles reach policy as `service_roles`;
//! 3. the request's `X-Auth-Token` is validated with `GET /v3/auth/tokens`
//!    (`X-Auth-Token`: hearth's token, `X-Subject-Token`: the user's); with a counted
//!    service token, an expired user token is accepted (`allow_expired`), as
//!    keystonemiddleware does for long-running operations. User, project, domain and
//!    roles come from Keystone's answer, never from the request;
//! 4. answers are cached (valid and invalid alike) until the earlier of the token's
//!    expiry and `token_cache_time`, keyed by a hash of the token;
//! 5. no token, or one Keystone does not know (404), is a 401 with
//!    `WWW-Authenticate: Keystone uri="<www_authenticate_uri>"`; Keystone unreachable,
//!    erroring or refusing hearth's own login is a 503: never "let it through".
//!
//! Tokens and the password appear in no log line and no error.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use serde::Deserialize;
use serde_json::json;

use crate::auth::cache::{self, Cache};
use crate::config::KeystoneAuthtoken;
use crate::error::{Error, Result};
use crate::policy::Credentials;

/// Renew hearth's own token when it has less than this left.
const RENEW_BEFORE: Duration = Duration::from_secs(300);

/// A token validator backed by Keystone.
pub struct Keystone {
    agent: ureq::Agent,
    /// Keystone's base URL, without `/v3`.
    base: String,
    /// The `WWW-Authenticate` value of a 401.
    challenge: String,
    login: serde_json::Value,
    login_who: String,
    service_roles: Vec<String>,
    service_roles_required: bool,
    cache_time: Duration,
    cache: Cache<Validation>,
    own: Mutex<Option<OwnToken>>,
}

struct OwnToken {
    token: String,
    expires: SystemTime,
}

/// What Keystone said of a token.
#[derive(Clone, Debug)]
enum Validation {
    Valid(Arc<Credentials>, SystemTime),
    Invalid,
}

#[derive(Deserialize)]
struct TokenBody {
    token: TokenData,
}

#[derive(Deserialize)]
struct TokenData {
    expires_at: String,
    user: Named,
    project: Option<Named>,
    domain: Option<Named>,
    system: Option<serde_json::Value>,
    #[serde(default)]
    roles: Vec<Named>,
    is_admin_project: Option<bool>,
}

#[derive(Deserialize)]
struct Named {
    id: String,
    name: Option<String>,
    domain: Option<Box<Named>>,
}

fn unreachable(what: impl std::fmt::Display) -> Error {
    log::error!("keystone: {what}");
    Error::Unavailable("The identity service (Keystone) could not be reached to check the token; retry later.".into())
}

impl Keystone {
    /// A validator from `[keystone_authtoken]` (already checked by the config).
    pub fn new(k: &KeystoneAuthtoken) -> Result<Keystone> {
        let missing = |key: &str| Error::Internal(format!("keystone_authtoken.{key} is not set"));
        let auth_url = k.auth_url.clone().ok_or_else(|| missing("auth_url"))?;
        let base = auth_url.trim_end_matches('/').trim_end_matches("/v3").trim_end_matches('/').to_string();
        let mut tls = ureq::tls::TlsConfig::builder().disable_verification(k.insecure);
        if let Some(ca) = &k.cafile {
            let pem = std::fs::read(ca)
                .map_err(|e| Error::Internal(format!("keystone_authtoken.cafile {}: {e}", ca.display())))?;
            let certs = ureq::tls::parse_pem(&pem)
                .filter_map(|item| match item {
                    Ok(ureq::tls::PemItem::Certificate(c)) => Some(Ok(c)),
                    Ok(_) => None,
                    Err(e) => Some(Err(e)),
                })
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| Error::Internal(format!("keystone_authtoken.cafile {}: {e}", ca.display())))?;
            if certs.is_empty() {
                return Err(Error::Internal(format!(
                    "keystone_authtoken.cafile {}: no certificate in the file",
                    ca.display()
                )));
            }
            tls = tls.root_certs(ureq::tls::RootCerts::Specific(Arc::new(certs)));
        }
        let timeout = Duration::from_secs(k.http_connect_timeout);
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .proxy(None)
            .tls_config(tls.build())
            .timeout_connect(Some(timeout))
            .timeout_global(Some(timeout * 2))
            .user_agent("hearth keystone client")
            .build()
            .new_agent();
        let user = k.username.clone().ok_or_else(|| missing("username"))?;
        let project = k.project_name.clone().ok_or_else(|| missing("project_name"))?;
        let password = match (&k.password, &k.password_file) {
            (Some(p), _) => p.clone(),
            (None, Some(f)) => {
                let text = std::fs::read_to_string(f)
                    .map_err(|e| Error::Internal(format!("keystone_authtoken.password_file {}: {e}", f.display())))?;
                text.strip_suffix('\n').unwrap_or(&text).to_string()
            }
            (None, None) => return Err(missing("password")),
        };
        let login = json!({"auth": {
            "identity": {"methods": ["password"], "password": {"user": {
                "name": user, "domain": {"name": k.user_domain_name}, "password": password,
            }}},
            "scope": {"project": {"name": project, "domain": {"name": k.project_domain_name}}},
        }});
        let uri = k.www_authenticate_uri.clone().unwrap_or(auth_url);
        let cache_time = Duration::from_secs(k.token_cache_time.max(0) as u64);
        Ok(Keystone {
            agent,
            base,
            challenge: format!("Keystone uri=\"{uri}\""),
            login,
            login_who: format!("user {user} of project {project}"),
            service_roles: k.service_token_roles.clone(),
            service_roles_required: k.service_token_roles_required,
            cache_time,
            cache: Cache::new(k.token_cache_size, k.token_cache_time > 0),
            own: Mutex::new(None),
        })
    }

    /// The `WWW-Authenticate` header of a 401.
    pub fn challenge(&self) -> &str {
        &self.challenge
    }

    /// Log in now (at start-up), so that a wrong password or an unreachable Keystone
    /// shows in the log at once; not fatal, since Keystone may come up later.
    pub fn warm_up(&self) {
        match self.own_token(false) {
            Ok(_) => log::info!("keystone: logged in to {} as {}", self.base, self.login_who),
            Err(_) => log::warn!("keystone: cannot log in yet; requests get 503 until it works"),
        }
    }

    /// The credentials of a request with these tokens.
    pub fn authenticate(&self, token: Option<&str>, service_token: Option<&str>) -> Result<Credentials> {
        let token = token.map(str::trim).filter(|t| !t.is_empty()).ok_or_else(|| {
            Error::Unauthorized(
                "The request you have made requires authentication: send a token in X-Auth-Token.".into(),
            )
        })?;
        let mut service = None;
        if let Some(st) = service_token.map(str::trim).filter(|t| !t.is_empty()) {
            let Validation::Valid(c, _) = self.validate(st, false)? else {
                return Err(Error::Unauthorized("The service token (X-Service-Token) is not valid.".into()));
            };
            if c.roles.iter().any(|r| self.service_roles.iter().any(|s| s.eq_ignore_ascii_case(r))) {
                service = Some(c);
            } else if self.service_roles_required {
                return Err(Error::Unauthorized(
                    "The service token (X-Service-Token) has none of the roles service_token_roles asks for.".into(),
                ));
            } else {
                log::warn!(
                    "keystone: a valid service token without any of the roles {:?} was sent; it is not counted",
                    self.service_roles
                );
            }
        }
        let Validation::Valid(creds, _) = self.validate(token, service.is_some())? else {
            return Err(Error::Unauthorized("The token is not valid: it is unknown, expired or revoked.".into()));
        };
        let mut creds = (*creds).clone();
        if let Some(s) = service {
            creds.service_roles = s.roles.clone();
            creds.service_user_id = Some(s.user_id.clone());
            creds.service_project_id = s.project_id.clone();
        }
        Ok(creds)
    }

    /// What Keystone says of `token`, from the cache when it can.
    fn validate(&self, token: &str, allow_expired: bool) -> Result<Validation> {
        let key = cache::key(&[token.as_bytes(), &[allow_expired as u8]]);
        if let Some(v) = self.cache.get(&key) {
            match &v {
                Validation::Valid(_, expires) if !allow_expired && *expires <= SystemTime::now() => {}
                _ => return Ok(v),
            }
        }
        let v = self.fetch(token, allow_expired)?;
        let until = match &v {
            Validation::Valid(_, expires) if !allow_expired => {
                let left = expires.duration_since(SystemTime::now()).unwrap_or_default();
                Instant::now() + left.min(self.cache_time)
            }
            _ => Instant::now() + self.cache_time,
        };
        self.cache.put(key, v.clone(), until);
        Ok(v)
    }

    /// Ask Keystone, with hearth's own token (logging in again once if it was refused).
    fn fetch(&self, token: &str, allow_expired: bool) -> Result<Validation> {
        let mut url = format!("{}/v3/auth/tokens?nocatalog", self.base);
        if allow_expired {
            url.push_str("&allow_expired=1");
        }
        for fresh in [false, true] {
            let own = self.own_token(fresh)?;
            let started = Instant::now();
            let resp = self
                .agent
                .get(&url)
                .header("X-Auth-Token", &own)
                .header("X-Subject-Token", token)
                .header("Accept", "application/json")
                .call();
            let mut resp = match resp {
                Ok(r) => r,
                Err(e) => return Err(unreachable(format!("validating a token at {}: {e}", self.base))),
            };
            let status = resp.status().as_u16();
            log::debug!(
                "keystone: token validation answered {status} in {:.1} ms",
                started.elapsed().as_secs_f64() * 1e3
            );
            match status {
                200 => {
                    let body: TokenBody = resp.body_mut().read_json().map_err(|e| {
                        unreachable(format!("Keystone's token validation answer is not understood: {e}"))
                    })?;
                    return credentials(body.token).map(|(c, exp)| Validation::Valid(Arc::new(c), exp));
                }
                404 => return Ok(Validation::Invalid),
                401 if !fresh => {
                    log::info!("keystone: hearth's own token was refused; logging in again");
                    *self.own.lock().unwrap_or_else(|e| e.into_inner()) = None;
                }
                401 | 403 => {
                    return Err(unreachable(format!(
                        "Keystone refuses to let {} validate tokens ({status}); give it the admin or service role",
                        self.login_who
                    )))
                }
                _ => return Err(unreachable(format!("token validation answered {status}"))),
            }
        }
        Err(unreachable("token validation was refused twice"))
    }

    /// hearth's own token: the kept one, or a new login when it is missing, about to
    /// expire, or `fresh` is asked.
    fn own_token(&self, fresh: bool) -> Result<String> {
        let mut own = self.own.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(t) = own.as_ref() {
            let left = t.expires.duration_since(SystemTime::now()).unwrap_or_default();
            if !fresh && left > RENEW_BEFORE {
                return Ok(t.token.clone());
            }
        }
        let url = format!("{}/v3/auth/tokens?nocatalog", self.base);
        let login = self.agent.post(&url).header("Accept", "application/json").send_json(&self.login);
        let renewed = match login {
            Err(e) => Err(unreachable(format!("logging in at {}: {e}", self.base))),
            Ok(mut resp) => {
                let status = resp.status().as_u16();
                let token = resp.headers().get("X-Subject-Token").and_then(|v| v.to_str().ok()).map(str::to_string);
                match (status, token) {
                    (201, Some(token)) => {
                        let body: TokenBody = resp
                            .body_mut()
                            .read_json()
                            .map_err(|e| unreachable(format!("Keystone's login answer is not understood: {e}")))?;
                        let expires = parse_expiry(&body.token.expires_at)?;
                        Ok(OwnToken { token, expires })
                    }
                    (401, _) => Err(unreachable(format!(
                        "Keystone refused the login of {} (401): check [keystone_authtoken]",
                        self.login_who
                    ))),
                    (status, _) => Err(unreachable(format!("logging in as {} answered {status}", self.login_who))),
                }
            }
        };
        match renewed {
            Ok(t) => {
                let token = t.token.clone();
                *own = Some(t);
                Ok(token)
            }
            // Keystone is away but the kept token is still good: use it meanwhile.
            Err(e) => match own.as_ref() {
                Some(t) if !fresh && t.expires > SystemTime::now() + Duration::from_secs(10) => Ok(t.token.clone()),
                _ => Err(e),
            },
        }
    }
}

fn parse_expiry(text: &str) -> Result<SystemTime> {
    chrono::DateTime::parse_from_rfc3339(text)
        .map(SystemTime::from)
        .map_err(|e| unreachable(format!("Keystone's expires_at {text:?} is not a time: {e}")))
}

/// The credentials a validated token carries, and its expiry.
fn credentials(t: TokenData) -> Result<(Credentials, SystemTime)> {
    let expires = parse_expiry(&t.expires_at)?;
    let system_scope = match &t.system {
        Some(s) if s.get("all").and_then(|v| v.as_bool()) == Some(true) => Some("all".to_string()),
        _ => None,
    };
    let c = Credentials {
        user_id: t.user.id,
        user_name: t.user.name,
        user_domain_id: t.user.domain.map(|d| d.id),
        project_id: t.project.as_ref().map(|p| p.id.clone()),
        project_name: t.project.as_ref().and_then(|p| p.name.clone()),
        project_domain_id: t.project.and_then(|p| p.domain).map(|d| d.id),
        domain_id: t.domain.map(|d| d.id),
        system_scope,
        roles: t.roles.into_iter().filter_map(|r| r.name).collect(),
        // keystonemiddleware's default when Keystone does not say.
        is_admin_project: t.is_admin_project.unwrap_or(true),
        ..Default::default()
    };
    Ok((c, expires))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_validation_answer_becomes_credentials() {
        let body = r#"{"token": {"methods": ["password"], "expires_at": "2030-01-01T00:00:00.000000Z",
            "user": {"id": "u1", "name": "demo", "domain": {"id": "default", "name": "Default"}},
            "project": {"id": "p1", "name": "demo", "domain": {"id": "default", "name": "Default"}},
            "roles": [{"id": "r1", "name": "member"}, {"id": "r2", "name": "reader"}],
            "audit_ids": ["x"], "issued_at": "2029-12-31T23:00:00.000000Z"}}"#;
        let t: TokenBody = serde_json::from_str(body).unwrap();
        let (c, exp) = credentials(t.token).unwrap();
        assert_eq!(c.user_id, "u1");
        assert_eq!(c.project_id.as_deref(), Some("p1"));
        assert_eq!(c.project_domain_id.as_deref(), Some("default"));
        assert_eq!(c.roles, vec!["member", "reader"]);
        assert!(c.is_admin_project);
        assert!(exp > SystemTime::now());
        let system = r#"{"token": {"expires_at": "2030-01-01T00:00:00Z", "user": {"id": "a"},
            "system": {"all": true}, "roles": [{"id": "r", "name": "admin"}], "is_admin_project": false}}"#;
        let (c, _) = credentials(serde_json::from_str::<TokenBody>(system).unwrap().token).unwrap();
        assert_eq!(c.system_scope.as_deref(), Some("all"));
        assert_eq!(c.project_id, None);
        assert!(!c.is_admin_project);
    }
}

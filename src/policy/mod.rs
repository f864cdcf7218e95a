//! Policy: who may do what, as Cinder decides it.
//!
//! A [`Policy`] holds every rule of [`rules::DEFAULTS`], each a check string
//! ([`expr`]), with the operator's overrides from the `[policy]` table applied. An
//! action is allowed when its rule passes for the caller's [`Credentials`] and the
//! target: the object acted on (its project), or the caller's own project when there
//! is no object yet.
//!
//! Overrides are checked when the configuration is read: an unknown rule name, an
//! expression that does not parse, a `rule:` reference to no rule, or rules that
//! refer to each other in a circle are refused, naming the rule.

pub mod expr;
pub mod rules;

use std::collections::{BTreeMap, HashMap};

use expr::{Expr, Facts};

/// Who the caller is, as the identity service (or hearth's own accounts) says.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Credentials {
    /// The user's id.
    pub user_id: String,
    /// The user's name, when known.
    pub user_name: Option<String>,
    /// The user's domain.
    pub user_domain_id: Option<String>,
    /// The project the token is scoped to.
    pub project_id: Option<String>,
    /// The project's name, when known.
    pub project_name: Option<String>,
    /// The project's domain.
    pub project_domain_id: Option<String>,
    /// The domain of a domain-scoped token.
    pub domain_id: Option<String>,
    /// `all` for a system-scoped token.
    pub system_scope: Option<String>,
    /// The roles on the scope (implied roles included, as Keystone lists them).
    pub roles: Vec<String>,
    /// Whether the project is the cloud's admin project (Keystone's `is_admin_project`).
    pub is_admin_project: bool,
    /// The roles of a valid service token sent along (`X-Service-Token`).
    pub service_roles: Vec<String>,
    /// The user of the service token.
    pub service_user_id: Option<String>,
    /// The project of the service token.
    pub service_project_id: Option<String>,
}

/// The rules in force.
#[derive(Debug)]
pub struct Policy {
    rules: HashMap<&'static str, Expr>,
}

/// What a check is evaluated on.
struct Eval<'a> {
    policy: &'a Policy,
    creds: &'a Credentials,
    is_admin: bool,
    target_project: &'a str,
    depth: usize,
}

impl Facts for Eval<'_> {
    fn roles(&self) -> &[String] {
        &self.creds.roles
    }

    fn credential(&self, key: &str) -> Vec<String> {
        let c = self.creds;
        let one = |v: &Option<String>| v.iter().cloned().collect();
        let flag = |b: bool| vec![if b { "True" } else { "False" }.to_string()];
        match key {
            "user_id" => vec![c.user_id.clone()],
            "project_id" | "tenant" | "tenant_id" => one(&c.project_id),
            "domain_id" => one(&c.domain_id),
            "user_domain_id" => one(&c.user_domain_id),
            "project_domain_id" => one(&c.project_domain_id),
            "system_scope" => one(&c.system_scope),
            "roles" => c.roles.clone(),
            "is_admin" => flag(self.is_admin),
            "is_admin_project" => flag(c.is_admin_project),
            "service_roles" => c.service_roles.clone(),
            "service_user_id" => one(&c.service_user_id),
            "service_project_id" => one(&c.service_project_id),
            _ => Vec::new(),
        }
    }

    fn target(&self, field: &str) -> Option<String> {
        match field {
            "project_id" => Some(self.target_project.to_string()),
            _ => None,
        }
    }

    fn rule(&self, name: &str) -> bool {
        // Cycles are refused at load; the depth bound is a second guard.
        match self.policy.rules.get(name) {
            Some(e) if self.depth < 16 => e.eval(&Eval { depth: self.depth + 1, ..*self }),
            _ => false,
        }
    }
}

impl Policy {
    /// Cinder's defaults with `overrides` (rule name → check string) applied.
    pub fn new(overrides: &BTreeMap<String, String>) -> Result<Policy, String> {
        let mut rules = HashMap::new();
        for r in rules::DEFAULTS {
            let e = Expr::parse(r.check).map_err(|e| format!("the default of {} does not parse: {e}", r.name))?;
            rules.insert(r.name, e);
        }
        for (name, text) in overrides {
            let Some(def) = rules::DEFAULTS.iter().find(|r| r.name == name) else {
                return Err(format!("policy.\"{name}\": hearth has no rule of that name"));
            };
            let e = Expr::parse(text).map_err(|e| format!("policy.\"{name}\": {e}"))?;
            rules.insert(def.name, e);
        }
        let policy = Policy { rules };
        policy.check_references()?;
        Ok(policy)
    }

    fn check_references(&self) -> Result<(), String> {
        fn visit<'a>(p: &'a Policy, name: &'a str, path: &mut Vec<&'a str>) -> Result<(), String> {
            if path.contains(&name) {
                path.push(name);
                return Err(format!("policy rules refer to each other in a circle: {}", path.join(" -> ")));
            }
            let Some(e) = p.rules.get(name) else {
                return Err(format!(
                    "policy.\"{}\" refers to rule:{name}, which does not exist",
                    path.last().unwrap_or(&name)
                ));
            };
            path.push(name);
            for r in e.rule_refs() {
                visit(p, r, path)?;
            }
            path.pop();
            Ok(())
        }
        let mut names: Vec<&str> = self.rules.keys().copied().collect();
        names.sort_unstable();
        for name in names {
            visit(self, name, &mut Vec::new())?;
        }
        Ok(())
    }

    /// Whether `rule` passes for the caller on an object of `target_project`.
    pub fn allows(&self, rule: &str, creds: &Credentials, is_admin: bool, target_project: &str) -> bool {
        match self.rules.get(rule) {
            Some(e) => e.eval(&Eval { policy: self, creds, is_admin, target_project, depth: 0 }),
            None => {
                log::error!("policy rule {rule} is not defined; refusing");
                false
            }
        }
    }

    /// Whether the caller is an admin (`context_is_admin`), which `is_admin:True`
    /// checks and which lets a caller see every project's objects.
    pub fn is_admin(&self, creds: &Credentials) -> bool {
        let project = creds.project_id.as_deref().unwrap_or("");
        self.allows(rules::CONTEXT_IS_ADMIN, creds, false, project)
    }

    /// The check string in force for a rule.
    pub fn check_string(&self, rule: &str) -> Option<String> {
        self.rules.get(rule).map(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds(project: &str, roles: &[&str]) -> Credentials {
        Credentials {
            user_id: "u".into(),
            project_id: Some(project.into()),
            roles: roles.iter().map(|r| r.to_string()).collect(),
            is_admin_project: true,
            ..Default::default()
        }
    }

    fn allows(p: &Policy, rule: &str, c: &Credentials, target: &str) -> bool {
        p.allows(rule, c, p.is_admin(c), target)
    }

    #[test]
    fn personas_under_the_defaults() {
        let p = Policy::new(&BTreeMap::new()).unwrap();
        let reader = creds("a", &["reader"]);
        let member = creds("a", &["member", "reader"]);
        let admin = creds("x", &["admin", "member", "reader"]);
        let nobody = creds("a", &[]);
        for (rule, target, who, want) in [
            (rules::VOLUME_GET, "a", &reader, true),
            (rules::VOLUME_GET, "b", &reader, false),
            (rules::VOLUME_CREATE, "a", &reader, false),
            (rules::VOLUME_CREATE, "a", &member, true),
            (rules::VOLUME_CREATE, "b", &member, false),
            (rules::VOLUME_GET, "a", &nobody, false),
            (rules::VOLUME_RESET_STATUS, "a", &member, false),
            (rules::VOLUME_RESET_STATUS, "a", &admin, true),
            (rules::VOLUME_DELETE, "b", &admin, true),
            (rules::TYPE_CREATE, "a", &member, false),
            (rules::QUOTAS_SHOW, "a", &reader, true),
        ] {
            assert_eq!(allows(&p, rule, who, target), want, "{rule} on {target} by {:?}", who.roles);
        }
        assert!(p.is_admin(&admin) && !p.is_admin(&member));
    }

    #[test]
    fn overrides_replace_defaults() {
        let o: BTreeMap<String, String> =
            [("volume:create".to_string(), "role:admin".to_string()), ("volume:get".to_string(), "@".to_string())]
                .into_iter()
                .collect();
        let p = Policy::new(&o).unwrap();
        assert!(!allows(&p, rules::VOLUME_CREATE, &creds("a", &["member"]), "a"));
        assert!(allows(&p, rules::VOLUME_GET, &creds("a", &[]), "zzz"));
        assert_eq!(p.check_string("volume:create").unwrap(), "role:admin");
    }

    #[test]
    fn bad_overrides_are_refused_naming_the_rule() {
        let table: &[(&[(&str, &str)], &str)] = &[
            (&[("volume:explode", "@")], "no rule of that name"),
            (&[("volume:create", "role:admin or")], "policy.\"volume:create\""),
            (&[("volume:create", "rule:nonexistent")], "rule:nonexistent"),
            (&[("admin_api", "rule:context_is_admin")], ""),
            (&[("context_is_admin", "rule:context_is_admin")], "circle"),
            (&[("admin_api", "rule:context_is_admin"), ("context_is_admin", "not rule:admin_api")], "circle"),
        ];
        for (pairs, says) in table {
            let o: BTreeMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
            match Policy::new(&o) {
                Ok(_) => assert!(says.is_empty(), "{pairs:?} was accepted"),
                Err(e) => assert!(!says.is_empty() && e.contains(says), "{pairs:?}: {e}"),
            }
        }
    }
}

//! Policy check strings, the oslo.policy language Cinder's rules are written in.
//!
//! A check string is an [`Expr`]:
//!
//! - `@` always passes, `!` never does, and the empty string passes;
//! - `rule:NAME` passes when the rule NAME does;
//! - `role:NAME` passes when the caller holds the role (case-insensitive);
//! - `KEY:VALUE` passes when the caller's credential KEY equals VALUE, where VALUE may
//!   name a field of the target as `%(project_id)s`; a credential that is a list
//!   passes when any element equals it (`is_admin:True`, `project_id:%(project_id)s`,
//!   `system_scope:all`, `service_roles:service`);
//! - `not X`, `X and Y`, `X or Y` and parentheses, with `not` binding tightest and
//!   `or` loosest.
//!
//! Remote checks (`http:`) are not supported and are refused when parsed.

use std::fmt;

/// A parsed check string.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Expr {
    /// `@` (or an empty string).
    Always,
    /// `!`.
    Never,
    /// `rule:NAME`.
    Rule(String),
    /// `role:NAME`.
    Role(Value),
    /// `KEY:VALUE`.
    Generic(String, Value),
    /// `not X`.
    Not(Box<Expr>),
    /// `X and Y and ...`.
    And(Vec<Expr>),
    /// `X or Y or ...`.
    Or(Vec<Expr>),
}

/// The right side of a check: a literal, or a template over the target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    /// A literal string (`True`, `all`, `admin`).
    Literal(String),
    /// `%(field)s`: the target's field.
    Target(String),
}

/// What a check looks at: the caller's credentials and the target object.
pub trait Facts {
    /// The caller's roles, as named by the identity service.
    fn roles(&self) -> &[String];
    /// A credential by key (`project_id`, `is_admin`, ...), as strings; a list for
    /// list-valued credentials, empty when the caller has none.
    fn credential(&self, key: &str) -> Vec<String>;
    /// A field of the target (`project_id`, `user_id`), if it has it.
    fn target(&self, field: &str) -> Option<String>;
    /// Whether the rule NAME passes (for `rule:` checks).
    fn rule(&self, name: &str) -> bool;
}

impl Expr {
    /// Parse a check string; the error says what is wrong, in a sentence.
    pub fn parse(text: &str) -> Result<Expr, String> {
        let tokens = tokenize(text)?;
        if tokens.is_empty() {
            return Ok(Expr::Always);
        }
        let mut p = Parser { tokens, pos: 0 };
        let e = p.or()?;
        if p.pos != p.tokens.len() {
            return Err(format!("unexpected {} after a complete expression", p.tokens[p.pos]));
        }
        Ok(e)
    }

    /// Evaluate against the facts.
    pub fn eval(&self, f: &dyn Facts) -> bool {
        match self {
            Expr::Always => true,
            Expr::Never => false,
            Expr::Rule(name) => f.rule(name),
            Expr::Role(v) => match v.resolve(f) {
                Some(role) => f.roles().iter().any(|r| r.eq_ignore_ascii_case(&role)),
                None => false,
            },
            Expr::Generic(key, v) => match v.resolve(f) {
                Some(want) => f.credential(key).contains(&want),
                None => false,
            },
            Expr::Not(e) => !e.eval(f),
            Expr::And(es) => es.iter().all(|e| e.eval(f)),
            Expr::Or(es) => es.iter().any(|e| e.eval(f)),
        }
    }

    /// The names of the rules this expression refers to.
    pub fn rule_refs(&self) -> Vec<&str> {
        match self {
            Expr::Rule(name) => vec![name.as_str()],
            Expr::Not(e) => e.rule_refs(),
            Expr::And(es) | Expr::Or(es) => es.iter().flat_map(Expr::rule_refs).collect(),
            _ => Vec::new(),
        }
    }
}

impl Value {
    fn parse(text: &str) -> Value {
        match text.strip_prefix("%(").and_then(|t| t.strip_suffix(")s")) {
            Some(field) => Value::Target(field.to_string()),
            None => Value::Literal(text.to_string()),
        }
    }

    fn resolve(&self, f: &dyn Facts) -> Option<String> {
        match self {
            Value::Literal(s) => Some(s.clone()),
            // A target without the field fails the check (as oslo.policy does).
            Value::Target(field) => f.target(field),
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Literal(s) => f.write_str(s),
            Value::Target(field) => write!(f, "%({field})s"),
        }
    }
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let join = |f: &mut fmt::Formatter<'_>, es: &[Expr], op: &str| -> fmt::Result {
            f.write_str("(")?;
            for (i, e) in es.iter().enumerate() {
                if i > 0 {
                    write!(f, " {op} ")?;
                }
                write!(f, "{e}")?;
            }
            f.write_str(")")
        };
        match self {
            Expr::Always => f.write_str("@"),
            Expr::Never => f.write_str("!"),
            Expr::Rule(n) => write!(f, "rule:{n}"),
            Expr::Role(v) => write!(f, "role:{v}"),
            Expr::Generic(k, v) => write!(f, "{k}:{v}"),
            Expr::Not(e) => write!(f, "not {e}"),
            Expr::And(es) => join(f, es, "and"),
            Expr::Or(es) => join(f, es, "or"),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Token {
    Open,
    Close,
    And,
    Or,
    Not,
    Check(Expr),
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Token::Open => f.write_str("'('"),
            Token::Close => f.write_str("')'"),
            Token::And => f.write_str("'and'"),
            Token::Or => f.write_str("'or'"),
            Token::Not => f.write_str("'not'"),
            Token::Check(e) => write!(f, "'{e}'"),
        }
    }
}

fn tokenize(text: &str) -> Result<Vec<Token>, String> {
    let mut out = Vec::new();
    // As oslo.policy: words split on whitespace, parentheses peeled off their ends
    // ("(role:a)" is three tokens; the ")s" of "%(project_id)s" is part of the check).
    for word in text.split_whitespace() {
        let mut w = word;
        while let Some(rest) = w.strip_prefix('(') {
            out.push(Token::Open);
            w = rest;
        }
        let mut closes = 0;
        while let Some(rest) = w.strip_suffix(')') {
            closes += 1;
            w = rest;
        }
        if !w.is_empty() {
            out.push(match w {
                w if w.eq_ignore_ascii_case("and") => Token::And,
                w if w.eq_ignore_ascii_case("or") => Token::Or,
                w if w.eq_ignore_ascii_case("not") => Token::Not,
                "@" => Token::Check(Expr::Always),
                "!" => Token::Check(Expr::Never),
                w => Token::Check(check(w)?),
            });
        }
        out.extend(std::iter::repeat_n(Token::Close, closes));
    }
    Ok(out)
}

fn check(word: &str) -> Result<Expr, String> {
    let Some((kind, value)) = word.split_once(':') else {
        return Err(format!(
            "'{word}' is not a check: write KIND:VALUE (role:admin, rule:NAME, project_id:%(project_id)s)"
        ));
    };
    let bad_value = || format!("'{word}' has nothing after the ':'");
    if value.is_empty() {
        return Err(bad_value());
    }
    match kind {
        "rule" => Ok(Expr::Rule(value.to_string())),
        "role" => Ok(Expr::Role(Value::parse(value))),
        "http" | "https" => Err(format!("'{word}': remote (http) checks are not supported")),
        k if k.is_empty() || !k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.') => {
            Err(format!("'{word}': '{k}' is not a credential name"))
        }
        k => Ok(Expr::Generic(k.to_string(), Value::parse(value))),
    }
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    fn or(&mut self) -> Result<Expr, String> {
        let mut items = vec![self.and()?];
        while self.peek() == Some(&Token::Or) {
            self.pos += 1;
            items.push(self.and()?);
        }
        Ok(if items.len() == 1 { items.remove(0) } else { Expr::Or(items) })
    }

    fn and(&mut self) -> Result<Expr, String> {
        let mut items = vec![self.not()?];
        while self.peek() == Some(&Token::And) {
            self.pos += 1;
            items.push(self.not()?);
        }
        Ok(if items.len() == 1 { items.remove(0) } else { Expr::And(items) })
    }

    fn not(&mut self) -> Result<Expr, String> {
        if self.peek() == Some(&Token::Not) {
            self.pos += 1;
            return Ok(Expr::Not(Box::new(self.not()?)));
        }
        self.atom()
    }

    fn atom(&mut self) -> Result<Expr, String> {
        let Some(t) = self.tokens.get(self.pos).cloned() else {
            return Err("the expression ends where a check was expected".into());
        };
        self.pos += 1;
        match t {
            Token::Check(e) => Ok(e),
            Token::Open => {
                let e = self.or()?;
                match self.peek() {
                    Some(Token::Close) => {
                        self.pos += 1;
                        Ok(e)
                    }
                    Some(other) => Err(format!("expected ')' but found {other}")),
                    None => Err("a '(' is never closed".into()),
                }
            }
            other => Err(format!("expected a check or '(' but found {other}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    struct F {
        roles: Vec<String>,
        creds: BTreeMap<&'static str, Vec<String>>,
        target: BTreeMap<&'static str, String>,
    }

    impl Facts for F {
        fn roles(&self) -> &[String] {
            &self.roles
        }
        fn credential(&self, key: &str) -> Vec<String> {
            self.creds.get(key).cloned().unwrap_or_default()
        }
        fn target(&self, field: &str) -> Option<String> {
            self.target.get(field).cloned()
        }
        fn rule(&self, name: &str) -> bool {
            name == "yes"
        }
    }

    fn facts(roles: &[&str], project: &str, target_project: &str) -> F {
        F {
            roles: roles.iter().map(|r| r.to_string()).collect(),
            creds: [("project_id", vec![project.to_string()]), ("is_admin", vec!["False".to_string()])]
                .into_iter()
                .collect(),
            target: [("project_id", target_project.to_string())].into_iter().collect(),
        }
    }

    #[test]
    fn cinders_default_check_strings() {
        let member = Expr::parse("(role:admin) or (role:member and project_id:%(project_id)s)").unwrap();
        assert!(member.eval(&facts(&["member", "reader"], "p", "p")));
        assert!(!member.eval(&facts(&["member", "reader"], "p", "q")));
        assert!(!member.eval(&facts(&["reader"], "p", "p")));
        assert!(member.eval(&facts(&["Admin"], "p", "q")));
        let admin_api = Expr::parse("is_admin:True or (role:admin and is_admin_project:True)").unwrap();
        assert!(!admin_api.eval(&facts(&["member"], "p", "p")));
        let mut f = facts(&["member"], "p", "p");
        f.creds.insert("is_admin", vec!["True".into()]);
        assert!(admin_api.eval(&f));
    }

    #[test]
    fn operators_and_precedence() {
        let f = facts(&["a"], "p", "p");
        for (text, want) in [
            ("", true),
            ("@", true),
            ("!", false),
            ("role:a or role:b and role:c", true),
            ("(role:a or role:b) and role:c", false),
            ("not role:a", false),
            ("not role:b and role:a", true),
            ("not (role:b or role:a)", false),
            ("rule:yes and rule:no", false),
            ("rule:yes", true),
            ("project_id:%(user_id)s", false),
            ("project_id:p", true),
            ("ROLE:a", false),
            ("(role:a)", true),
            ("((project_id:%(project_id)s))", true),
            ("(role:b) or (role:a and project_id:%(project_id)s)", true),
        ] {
            let e = Expr::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(e.eval(&f), want, "{text} parsed as {e}");
        }
    }

    #[test]
    fn list_credentials_match_any_element() {
        let mut f = facts(&[], "p", "p");
        f.creds.insert("service_roles", vec!["service".into(), "reader".into()]);
        assert!(Expr::parse("service_roles:service").unwrap().eval(&f));
        assert!(!Expr::parse("service_roles:admin").unwrap().eval(&f));
    }

    #[test]
    fn bad_expressions_are_refused_with_a_reason() {
        for (text, says) in [
            ("role:admin and", "ends"),
            ("(role:admin", "never closed"),
            ("role:admin)", "unexpected"),
            ("admin", "not a check"),
            ("role:", "nothing after"),
            ("http://example.com/check", "remote"),
            ("role:a or or role:b", "found 'or'"),
            ("role:a role:b", "unexpected"),
            ("$x:y", "credential name"),
        ] {
            let err = Expr::parse(text).expect_err(text);
            assert!(err.contains(says), "{text}: {err}");
        }
    }

    #[test]
    fn rule_references_are_listed() {
        let e = Expr::parse("rule:a or (not rule:b and role:c)").unwrap();
        assert_eq!(e.rule_refs(), vec!["a", "b"]);
    }
}

//! Typed access to JSON request bodies, with Cinder's 400 sentences for every
//! missing element and wrong type. Nulls mean "not given", as clients send them.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::error::{Error, Result};

/// The longest name, description or metadata key/value accepted.
pub const MAX_STRING: usize = 255;

/// A JSON object from a request body, with the name it had for messages.
#[derive(Clone, Copy, Debug)]
pub struct Obj<'a> {
    map: &'a Map<String, Value>,
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn invalid(field: &str, v: &Value, want: &str) -> Error {
    Error::Invalid(format!(
        "Invalid input for field/attribute {field}. Value: {v}. {} is not of type '{want}'.",
        type_name(v)
    ))
}

/// The request body's top-level element `key`, which must be an object.
pub fn element<'a>(body: Option<&'a Value>, key: &str) -> Result<Obj<'a>> {
    let missing = || Error::Invalid(format!("Missing required element '{key}' in request body."));
    match body {
        Some(Value::Object(m)) => match m.get(key) {
            Some(Value::Object(inner)) => Ok(Obj { map: inner }),
            Some(other) => Err(invalid(key, other, "object")),
            None => Err(missing()),
        },
        Some(other) => {
            Err(Error::Invalid(format!("The request body must be a JSON object, not {}.", type_name(other))))
        }
        None => Err(missing()),
    }
}

/// Parse a boolean as Cinder does: JSON booleans, or the strings true/false/yes/no/1/0.
pub fn parse_bool(field: &str, v: &Value) -> Result<bool> {
    match v {
        Value::Bool(b) => Ok(*b),
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "t" | "yes" | "y" | "on" | "1" => Ok(true),
            "false" | "f" | "no" | "n" | "off" | "0" => Ok(false),
            _ => Err(Error::Invalid(format!("Invalid value '{s}' for {field}: expected a boolean."))),
        },
        other => Err(invalid(field, other, "boolean")),
    }
}

/// Parse a non-negative integer given as a JSON number or a string of digits.
pub fn parse_uint(field: &str, v: &Value) -> Result<u64> {
    let bad = || Error::Invalid(format!("Invalid input received: {field} must be an integer greater than 0, got {v}."));
    match v {
        Value::Number(n) => n.as_u64().ok_or_else(bad),
        Value::String(s) => {
            let t = s.trim();
            if t.is_empty() || t.len() > 19 || !t.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
            t.parse().map_err(|_| bad())
        }
        _ => Err(bad()),
    }
}

impl<'a> Obj<'a> {
    /// An object's field that is itself an object.
    pub fn wrap(map: &'a Map<String, Value>) -> Obj<'a> {
        Obj { map }
    }

    /// The raw value of a field, `None` when missing or null.
    pub fn get(&self, key: &str) -> Option<&'a Value> {
        self.map.get(key).filter(|v| !v.is_null())
    }

    /// Whether a field is present (even as null).
    pub fn has(&self, key: &str) -> bool {
        self.map.contains_key(key)
    }

    /// The keys present.
    pub fn keys(&self) -> impl Iterator<Item = &'a String> {
        self.map.keys()
    }

    /// An optional string of at most 255 characters.
    pub fn opt_str(&self, key: &str) -> Result<Option<String>> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => {
                if s.chars().count() > MAX_STRING {
                    return Err(Error::Invalid(format!(
                        "Invalid input for field/attribute {key}. Value is longer than {MAX_STRING} characters."
                    )));
                }
                Ok(Some(s.clone()))
            }
            Some(v) => Err(invalid(key, v, "string")),
        }
    }

    /// A required non-empty string.
    pub fn req_str(&self, key: &str) -> Result<String> {
        match self.opt_str(key)? {
            Some(s) if !s.trim().is_empty() => Ok(s),
            Some(_) => Err(Error::Invalid(format!("Invalid input received: {key} must not be empty."))),
            None => Err(Error::Invalid(format!("Invalid input received: '{key}' is a required property."))),
        }
    }

    /// An optional boolean.
    pub fn opt_bool(&self, key: &str) -> Result<Option<bool>> {
        self.get(key).map(|v| parse_bool(key, v)).transpose()
    }

    /// An optional non-negative integer.
    pub fn opt_uint(&self, key: &str) -> Result<Option<u64>> {
        self.get(key).map(|v| parse_uint(key, v)).transpose()
    }

    /// An optional object of string values (metadata, extra specs).
    pub fn opt_str_map(&self, key: &str) -> Result<Option<BTreeMap<String, String>>> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Object(m)) => str_map(key, m).map(Some),
            Some(v) => Err(invalid(key, v, "object")),
        }
    }

    /// Refuse keys outside `allowed`.
    pub fn only(&self, what: &str, allowed: &[&str]) -> Result<()> {
        let extra: Vec<&str> = self.map.keys().map(|k| k.as_str()).filter(|k| !allowed.contains(k)).collect();
        if extra.is_empty() {
            Ok(())
        } else {
            Err(Error::Invalid(format!(
                "Invalid input for {what}: additional properties are not allowed ({} unexpected).",
                extra.join(", ")
            )))
        }
    }
}

/// An object of strings, with Cinder's limits on keys and values.
pub fn str_map(field: &str, m: &Map<String, Value>) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for (k, v) in m {
        if k.is_empty() || k.chars().count() > MAX_STRING {
            return Err(Error::Invalid(format!(
                "Invalid input for field/attribute {field}: keys must be 1 to {MAX_STRING} characters."
            )));
        }
        let s = match v {
            Value::String(s) => s.clone(),
            other => return Err(invalid(&format!("{field}.{k}"), other, "string")),
        };
        if s.chars().count() > MAX_STRING {
            return Err(Error::Invalid(format!(
                "Invalid input for field/attribute {field}.{k}: values must be at most {MAX_STRING} characters."
            )));
        }
        out.insert(k.clone(), s);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn elements_and_types() {
        let body = json!({"volume": {"size": "3", "name": null, "bootable": "True", "metadata": {"a": "b"}}});
        let v = element(Some(&body), "volume").unwrap();
        assert_eq!(v.opt_uint("size").unwrap(), Some(3));
        assert_eq!(v.opt_str("name").unwrap(), None);
        assert_eq!(v.opt_bool("bootable").unwrap(), Some(true));
        assert_eq!(v.opt_str_map("metadata").unwrap().unwrap()["a"], "b");
        assert!(element(Some(&body), "snapshot")
            .unwrap_err()
            .to_string()
            .contains("Missing required element 'snapshot'"));
        assert!(element(Some(&json!([1])), "volume").is_err());
        assert!(element(Some(&json!({"volume": 3})), "volume").is_err());
        assert!(element(None, "volume").is_err());
    }

    #[test]
    fn bad_values_are_refused() {
        let table = [
            json!({"size": -1}),
            json!({"size": 1.5}),
            json!({"size": "ten"}),
            json!({"size": "-3"}),
            json!({"size": true}),
            json!({"size": "99999999999999999999999"}),
        ];
        for b in table {
            let m = b.as_object().unwrap();
            assert!(Obj::wrap(m).opt_uint("size").is_err(), "{b}");
        }
        let long = "x".repeat(256);
        let m = json!({"name": long, "metadata": {"k": 1}, "flag": "perhaps"});
        let o = Obj::wrap(m.as_object().unwrap());
        assert!(o.opt_str("name").is_err());
        assert!(o.opt_str_map("metadata").is_err());
        assert!(o.opt_bool("flag").is_err());
        assert!(o.only("volume", &["name"]).is_err());
    }
}

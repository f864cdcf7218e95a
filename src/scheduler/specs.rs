//! Cinder's extra-spec operators, as the CapabilitiesFilter applies them.
//!
//! A requirement is a string such as `"<is> True"`, `">= 10"`, `"<or> a <or> b"` or a
//! bare value (exact match). [`matches`] compares a pool's capability (as text) with
//! it exactly as Cinder's `extra_specs_ops.match` does.

fn as_bool(s: &str) -> Option<bool> {
    match s.trim().to_ascii_lowercase().as_str() {
        "1" | "t" | "true" | "on" | "y" | "yes" => Some(true),
        "0" | "f" | "false" | "off" | "n" | "no" => Some(false),
        _ => None,
    }
}

fn num(s: &str) -> Option<f64> {
    s.trim().parse::<f64>().ok().filter(|f| !f.is_nan())
}

/// Whether a capability value satisfies a requirement.
pub fn matches(value: Option<&str>, requirement: &str) -> bool {
    let mut words = requirement.split_whitespace();
    let op = words.next();
    let known = matches!(
        op,
        Some("=" | "<in>" | "<is>" | "==" | "!=" | ">=" | "<=" | "s==" | "s!=" | "s<" | "s<=" | "s>" | "s>=" | "<or>")
    );
    if !known {
        return value == Some(requirement);
    }
    let Some(value) = value else { return false };
    let op = op.unwrap_or_default();
    if op == "<or>" {
        // "<or> a <or> b <or> c": every other word is a candidate.
        return requirement.split_whitespace().skip(1).step_by(2).any(|w| w == value);
    }
    let Some(arg) = words.next() else {
        return false;
    };
    let numeric = |f: fn(f64, f64) -> bool| match (num(value), num(arg)) {
        (Some(a), Some(b)) => f(a, b),
        _ => false,
    };
    match op {
        "=" | ">=" => numeric(|a, b| a >= b),
        "==" => numeric(|a, b| a == b),
        "!=" => numeric(|a, b| a != b),
        "<=" => numeric(|a, b| a <= b),
        "<in>" => value.contains(arg),
        "<is>" => match (as_bool(value), as_bool(arg)) {
            (Some(a), Some(b)) => a == b,
            _ => false,
        },
        "s==" => value == arg,
        "s!=" => value != arg,
        "s<" => value < arg,
        "s<=" => value <= arg,
        "s>" => value > arg,
        "s>=" => value >= arg,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn operators_behave_as_cinders() {
        let table: &[(Option<&str>, &str, bool)] = &[
            (Some("lvm"), "lvm", true),
            (Some("lvm"), "LVM", false),
            (None, "lvm", false),
            (Some("20"), "= 10", true),
            (Some("5"), "= 10", false),
            (Some("10"), "== 10", true),
            (Some("10.0"), "== 10", true),
            (Some("11"), "!= 10", true),
            (Some("10"), ">= 10", true),
            (Some("9"), ">= 10", false),
            (Some("9"), "<= 10", true),
            (Some("abc"), "<= 10", false),
            (Some("a"), "s== a", true),
            (Some("a"), "s!= a", false),
            (Some("a"), "s< b", true),
            (Some("b"), "s<= b", true),
            (Some("c"), "s> b", true),
            (Some("b"), "s>= c", false),
            (Some("thin,thick"), "<in> thick", true),
            (Some("thin"), "<in> thick", false),
            (Some("True"), "<is> True", true),
            (Some("true"), "<is> True", true),
            (Some("False"), "<is> True", false),
            (Some("maybe"), "<is> True", false),
            (None, "<is> False", false),
            (Some("b"), "<or> a <or> b <or> c", true),
            (Some("d"), "<or> a <or> b <or> c", false),
            (Some("10"), "=", false),
        ];
        for (value, req, want) in table {
            assert_eq!(matches(*value, req), *want, "{value:?} vs {req:?}");
        }
    }
}

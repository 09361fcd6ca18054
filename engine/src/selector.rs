//! Kubernetes label selectors (`metav1.LabelSelector`): parsing and validation
//! ([`SelectorSpec`]), and the interned form the dataflow evaluates (`Selector`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::index::IndexKey;
use crate::intern::{Interner, Sym};
use crate::labels::Labels;
use crate::strict_json::{describe_duplicates, duplicate_keys};

/// A label selector requirement operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Operator {
    /// The key is present and its value is one of the values.
    In,
    /// The key is absent, or its value is none of the values.
    NotIn,
    /// The key is present.
    Exists,
    /// The key is absent.
    DoesNotExist,
}

/// One validated `matchExpressions` entry, in string form.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct RequirementSpec {
    /// The label key.
    pub key: String,
    /// The operator.
    pub operator: Operator,
    /// The values (`In`/`NotIn` only).
    pub values: Vec<String>,
}

/// A validated label selector, in string form.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct SelectorSpec {
    /// `matchLabels`.
    pub match_labels: BTreeMap<String, String>,
    /// `matchExpressions`.
    pub match_expressions: Vec<RequirementSpec>,
}

impl SelectorSpec {
    /// Parses and validates a selector from its JSON form. The error says what is wrong,
    /// relative to the selector (for example `matchExpressions[1]: operator "Exists"
    /// takes no values`).
    pub fn parse(value: &Value) -> Result<SelectorSpec, String> {
        let obj = match value {
            Value::Object(obj) => obj,
            Value::Null => return Ok(SelectorSpec::default()),
            other => return Err(format!("must be an object, got {}", json_kind(other))),
        };
        check_fields(obj, &["matchLabels", "matchExpressions"])?;
        let mut spec = SelectorSpec::default();
        match obj.get("matchLabels") {
            None | Some(Value::Null) => {}
            Some(Value::Object(labels)) => {
                if let Some(keys) = duplicate_keys(labels) {
                    return Err(format!("matchLabels: {}", describe_duplicates(&keys)));
                }
                for (k, v) in labels {
                    let Value::String(v) = v else {
                        return Err(format!("matchLabels[{k:?}]: value must be a string"));
                    };
                    validate_label_key(k).map_err(|e| format!("matchLabels: key {k:?}: {e}"))?;
                    validate_label_value(v)
                        .map_err(|e| format!("matchLabels[{k:?}]: value {v:?}: {e}"))?;
                    spec.match_labels.insert(k.clone(), v.clone());
                }
            }
            Some(other) => {
                return Err(format!(
                    "matchLabels must be an object, got {}",
                    json_kind(other)
                ));
            }
        }
        match obj.get("matchExpressions") {
            None | Some(Value::Null) => {}
            Some(Value::Array(exprs)) => {
                for (i, expr) in exprs.iter().enumerate() {
                    let req = parse_requirement(expr)
                        .map_err(|e| format!("matchExpressions[{i}]: {e}"))?;
                    spec.match_expressions.push(req);
                }
            }
            Some(other) => {
                return Err(format!(
                    "matchExpressions must be a list, got {}",
                    json_kind(other)
                ));
            }
        }
        Ok(spec)
    }

    /// True for the empty selector `{}`, which matches everything.
    pub fn is_empty(&self) -> bool {
        self.match_labels.is_empty() && self.match_expressions.is_empty()
    }
}

fn parse_requirement(expr: &Value) -> Result<RequirementSpec, String> {
    let Value::Object(obj) = expr else {
        return Err(format!("must be an object, got {}", json_kind(expr)));
    };
    check_fields(obj, &["key", "operator", "values"])?;
    let key = match obj.get("key") {
        Some(Value::String(k)) => k.clone(),
        None | Some(Value::Null) => return Err("key is required".to_string()),
        Some(other) => return Err(format!("key must be a string, got {}", json_kind(other))),
    };
    validate_label_key(&key).map_err(|e| format!("key {key:?}: {e}"))?;
    let operator = match obj.get("operator") {
        Some(Value::String(op)) => match op.as_str() {
            "In" => Operator::In,
            "NotIn" => Operator::NotIn,
            "Exists" => Operator::Exists,
            "DoesNotExist" => Operator::DoesNotExist,
            other => return Err(format!("unknown operator {other:?}")),
        },
        None | Some(Value::Null) => return Err("operator is required".to_string()),
        Some(other) => {
            return Err(format!(
                "operator must be a string, got {}",
                json_kind(other)
            ));
        }
    };
    let mut values = Vec::new();
    match obj.get("values") {
        None | Some(Value::Null) => {}
        Some(Value::Array(vs)) => {
            for v in vs {
                let Value::String(v) = v else {
                    return Err("values must be strings".to_string());
                };
                values.push(v.clone());
            }
        }
        Some(other) => return Err(format!("values must be a list, got {}", json_kind(other))),
    }
    match operator {
        Operator::In | Operator::NotIn if values.is_empty() => {
            return Err(format!("operator {operator:?} needs at least one value"));
        }
        Operator::Exists | Operator::DoesNotExist if !values.is_empty() => {
            return Err(format!("operator {operator:?} takes no values"));
        }
        _ => {}
    }
    for v in &values {
        validate_label_value(v).map_err(|e| format!("value {v:?}: {e}"))?;
    }
    Ok(RequirementSpec {
        key,
        operator,
        values,
    })
}

/// Fails on duplicate keys and on fields other than `known` (a strict API server refuses
/// both), naming them.
fn check_fields(obj: &serde_json::Map<String, Value>, known: &[&str]) -> Result<(), String> {
    if let Some(keys) = duplicate_keys(obj) {
        return Err(describe_duplicates(&keys));
    }
    if let Some(unknown) = obj.keys().find(|k| !known.contains(&k.as_str())) {
        return Err(format!(
            "unknown field {unknown:?} (expected {})",
            known.join(" or ")
        ));
    }
    Ok(())
}

/// The kind of a JSON value, for messages (`a list`, `null`, ...).
pub(crate) fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// Checks a label key: an optional DNS-1123 subdomain prefix and `/`, then a name of at
/// most 63 characters (alphanumerics, `-`, `_`, `.`; alphanumeric at both ends).
pub fn validate_label_key(key: &str) -> Result<(), String> {
    let (prefix, name) = match key.split_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    if let Some(prefix) = prefix {
        if prefix.is_empty() {
            return Err("prefix part must not be empty".to_string());
        }
        if prefix.len() > 253 || !is_dns1123_subdomain(prefix) {
            return Err(
                "prefix part must be a DNS-1123 subdomain (lower-case alphanumerics, '-' and '.')"
                    .to_string(),
            );
        }
    }
    if name.is_empty() {
        return Err("name part must not be empty".to_string());
    }
    if name.len() > 63 {
        return Err("name part must be no more than 63 characters".to_string());
    }
    if !is_qualified_name_part(name) {
        return Err("name part must consist of alphanumerics, '-', '_' or '.', and begin and end with an alphanumeric".to_string());
    }
    Ok(())
}

/// Checks a label value: empty, or at most 63 characters of alphanumerics, `-`, `_`,
/// `.`, alphanumeric at both ends.
pub fn validate_label_value(value: &str) -> Result<(), String> {
    if value.is_empty() {
        return Ok(());
    }
    if value.len() > 63 {
        return Err("must be no more than 63 characters".to_string());
    }
    if !is_qualified_name_part(value) {
        return Err("must consist of alphanumerics, '-', '_' or '.', and begin and end with an alphanumeric".to_string());
    }
    Ok(())
}

fn is_qualified_name_part(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
}

fn is_dns1123_subdomain(s: &str) -> bool {
    s.split('.').all(|label| {
        let b = label.as_bytes();
        !b.is_empty()
            && is_lower_alnum(b[0])
            && is_lower_alnum(b[b.len() - 1])
            && b.iter().all(|&c| is_lower_alnum(c) || c == b'-')
    })
}

fn is_lower_alnum(c: u8) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit()
}

/// One requirement of a compiled [`Selector`]; `matchLabels` entries become
/// single-value `In` requirements.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub(crate) struct Requirement {
    /// The label key.
    pub key: Sym,
    /// The operator.
    pub operator: Operator,
    /// The values, sorted by symbol.
    pub values: Vec<Sym>,
}

impl Requirement {
    fn matches(&self, labels: &Labels) -> bool {
        let value = labels.get(self.key);
        match self.operator {
            Operator::In => value.is_some_and(|v| self.values.binary_search(&v).is_ok()),
            Operator::NotIn => value.is_none_or(|v| self.values.binary_search(&v).is_err()),
            Operator::Exists => value.is_some(),
            Operator::DoesNotExist => value.is_none(),
        }
    }
}

/// A valid label selector in interned form: all requirements must hold.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub(crate) struct Selector {
    requirements: Vec<Requirement>,
}

impl Selector {
    /// Interns a validated selector.
    pub fn compile(spec: &SelectorSpec, interner: &mut Interner) -> Selector {
        let mut requirements: Vec<Requirement> = spec
            .match_labels
            .iter()
            .map(|(k, v)| Requirement {
                key: interner.intern(k),
                operator: Operator::In,
                values: vec![interner.intern(v)],
            })
            .collect();
        for req in &spec.match_expressions {
            let mut values: Vec<Sym> = req.values.iter().map(|v| interner.intern(v)).collect();
            values.sort_unstable();
            values.dedup();
            requirements.push(Requirement {
                key: interner.intern(&req.key),
                operator: req.operator,
                values,
            });
        }
        Selector { requirements }
    }

    /// True when every requirement holds for `labels`.
    pub fn matches(&self, labels: &Labels) -> bool {
        self.requirements.iter().all(|r| r.matches(labels))
    }

    /// True for the empty selector, which matches every label set.
    pub fn matches_everything(&self) -> bool {
        self.requirements.is_empty()
    }

    /// The index keys under which this selector looks for candidates: every label set it
    /// matches carries exactly one of them. Taken from its most selective positive
    /// requirement (a single-value `In`, then a multi-value `In`, then `Exists`); a
    /// selector without one gets [`IndexKey::All`].
    pub fn index_keys(&self) -> Vec<IndexKey> {
        let positive = |r: &&Requirement| matches!(r.operator, Operator::In | Operator::Exists);
        let best = self
            .requirements
            .iter()
            .filter(positive)
            .min_by_key(|r| match r.operator {
                Operator::In => r.values.len(),
                _ => usize::MAX,
            });
        match best {
            Some(r) if r.operator == Operator::In => r
                .values
                .iter()
                .map(|v| IndexKey::Label(r.key, *v))
                .collect(),
            Some(r) => vec![IndexKey::LabelKey(r.key)],
            None => vec![IndexKey::All],
        }
    }

    /// True when [`Selector::index_keys`] is not just [`IndexKey::All`].
    pub fn is_indexed(&self) -> bool {
        self.requirements
            .iter()
            .any(|r| matches!(r.operator, Operator::In | Operator::Exists))
    }
}

/// Checks, for `spec` and each of `label_sets`, the invariants the dataflow's index
/// relies on: a set the compiled selector matches carries one of the selector's index
/// keys, and the empty selector matches every set. For the fuzz targets and property
/// tests; the error says which set broke which invariant.
pub fn check_index_invariants(
    spec: &SelectorSpec,
    label_sets: &[crate::LabelMap],
) -> Result<(), String> {
    let mut interner = Interner::default();
    let selector = Selector::compile(spec, &mut interner);
    let keys = selector.index_keys();
    for map in label_sets {
        let labels = Labels::intern(map, &mut interner);
        let matches = selector.matches(&labels);
        if matches && !crate::index::label_keys(&labels).any(|k| keys.contains(&k)) {
            return Err(format!(
                "{spec:?} matches {map:?}, which carries none of its index keys {keys:?}"
            ));
        }
        if selector.matches_everything() && !matches {
            return Err(format!("the empty selector must match {map:?}"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn labels(i: &mut Interner, pairs: &[(&str, &str)]) -> Labels {
        let map = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Labels::intern(&map, i)
    }

    #[test]
    fn operators_follow_kubernetes() {
        let mut i = Interner::default();
        let spec = SelectorSpec::parse(&json!({
            "matchLabels": {"app": "nginx"},
            "matchExpressions": [
                {"key": "tier", "operator": "In", "values": ["a", "b"]},
                {"key": "env", "operator": "NotIn", "values": ["prod"]},
                {"key": "team", "operator": "Exists"},
                {"key": "legacy", "operator": "DoesNotExist"}
            ]
        }))
        .unwrap();
        let sel = Selector::compile(&spec, &mut i);
        assert!(sel.matches(&labels(
            &mut i,
            &[("app", "nginx"), ("tier", "a"), ("team", "x")]
        )));
        assert!(sel.matches(&labels(
            &mut i,
            &[
                ("app", "nginx"),
                ("tier", "b"),
                ("team", "x"),
                ("env", "dev")
            ]
        )));
        assert!(!sel.matches(&labels(
            &mut i,
            &[
                ("app", "nginx"),
                ("tier", "b"),
                ("team", "x"),
                ("env", "prod")
            ]
        )));
        assert!(!sel.matches(&labels(
            &mut i,
            &[("app", "nginx"), ("tier", "c"), ("team", "x")]
        )));
        assert!(!sel.matches(&labels(&mut i, &[("app", "nginx"), ("tier", "a")])));
        assert!(!sel.matches(&labels(
            &mut i,
            &[
                ("app", "nginx"),
                ("tier", "a"),
                ("team", "x"),
                ("legacy", "")
            ]
        )));
        assert!(!sel.matches(&labels(&mut i, &[("tier", "a"), ("team", "x")])));
    }

    #[test]
    fn empty_selector_matches_everything() {
        let mut i = Interner::default();
        let sel = Selector::compile(&SelectorSpec::parse(&json!({})).unwrap(), &mut i);
        assert!(sel.matches_everything());
        assert!(sel.matches(&labels(&mut i, &[])));
        assert_eq!(sel.index_keys(), vec![IndexKey::All]);
    }

    #[test]
    fn invalid_selectors_are_reported() {
        let cases = [
            (
                json!({"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]}),
                "takes no values",
            ),
            (
                json!({"matchExpressions": [{"key": "a", "operator": "In", "values": []}]}),
                "at least one value",
            ),
            (
                json!({"matchExpressions": [{"key": "a", "operator": "NotIn"}]}),
                "at least one value",
            ),
            (
                json!({"matchExpressions": [{"key": "a", "operator": "Gt", "values": ["1"]}]}),
                "unknown operator",
            ),
            (json!({"matchLabels": {"bad key": "x"}}), "key \"bad key\""),
            (json!({"matchLabels": {"a": "-x"}}), "value \"-x\""),
            (json!({"matchLabels": {"Example.com/a": "x"}}), "prefix"),
            (json!({"matchLabels": {"a": "x".repeat(64)}}), "63"),
            (
                json!({"matchExpressions": [{"operator": "Exists"}]}),
                "key is required",
            ),
            (json!({"matchLabels": "x"}), "must be an object"),
        ];
        for (json, want) in cases {
            let err = SelectorSpec::parse(&json).unwrap_err();
            assert!(
                err.contains(want),
                "{json}: {err:?} should mention {want:?}"
            );
        }
    }

    #[test]
    fn label_keys_and_values() {
        assert!(validate_label_key("app.kubernetes.io/name").is_ok());
        assert!(validate_label_key("a").is_ok());
        assert!(validate_label_key("/a").is_err());
        assert!(validate_label_key("a/").is_err());
        assert!(validate_label_key("a/b/c").is_err());
        assert!(validate_label_key(&"a".repeat(64)).is_err());
        assert!(validate_label_value("").is_ok());
        assert!(validate_label_value("x_1.y-z").is_ok());
        assert!(validate_label_value("x_").is_err());
    }

    #[test]
    fn index_keys_come_from_the_most_selective_positive_test() {
        let mut i = Interner::default();
        let spec = SelectorSpec::parse(&json!({
            "matchExpressions": [
                {"key": "tier", "operator": "In", "values": ["a", "b"]},
                {"key": "team", "operator": "Exists"},
                {"key": "env", "operator": "NotIn", "values": ["prod"]}
            ]
        }))
        .unwrap();
        let sel = Selector::compile(&spec, &mut i);
        let (tier, a, b) = (i.intern("tier"), i.intern("a"), i.intern("b"));
        assert_eq!(
            sel.index_keys(),
            vec![IndexKey::Label(tier, a), IndexKey::Label(tier, b)]
        );
        let neg = SelectorSpec::parse(
            &json!({"matchExpressions": [{"key": "env", "operator": "DoesNotExist"}]}),
        )
        .unwrap();
        assert_eq!(
            Selector::compile(&neg, &mut i).index_keys(),
            vec![IndexKey::All]
        );
    }
}

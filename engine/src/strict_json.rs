//! Reading JSON (or YAML) values strictly: duplicate keys are kept track of and nesting
//! is bounded, as a strict API server would have it.
//!
//! serde_json's own `Value` keeps the last of duplicate keys silently. [`StrictValue`]
//! (a `DeserializeSeed` for any serde deserializer) keeps the last one too, but marks
//! the object: it gets an extra entry [`DUPLICATE_KEYS`] listing the keys that were
//! given more than once. Policy parsing ([`crate::PolicySpec::parse`]) reports a marked
//! spec, clause or selector as a problem, and that part matches nothing; readers strip
//! the marks from everything else ([`strip_duplicate_keys`]).

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// The key of the entry marking an object read with duplicate keys: its value lists
/// the keys given more than once. (It starts with NUL: no Kubernetes field does.)
pub const DUPLICATE_KEYS: &str = "\u{0}duplicateKeys";

/// The keys `map` was given more than once, when it was read by [`StrictValue`].
pub fn duplicate_keys(map: &Map<String, Value>) -> Option<Vec<String>> {
    let keys = map.get(DUPLICATE_KEYS)?;
    Some(match keys {
        Value::Array(keys) => keys
            .iter()
            .map(|k| k.as_str().map_or_else(|| k.to_string(), str::to_string))
            .collect(),
        other => vec![other.to_string()],
    })
}

/// `duplicate key "a"` or `duplicate keys "a", "b"`, for messages.
pub fn describe_duplicates(keys: &[String]) -> String {
    let list = keys
        .iter()
        .map(|k| format!("{k:?}"))
        .collect::<Vec<_>>()
        .join(", ");
    if keys.len() == 1 {
        format!("duplicate key {list}")
    } else {
        format!("duplicate keys {list}")
    }
}

/// Removes every [`DUPLICATE_KEYS`] mark in `value` and returns where they were:
/// `path: duplicate key "k"`, `path` relative to `value` (`metadata`, `a[1].b`, or
/// `(top)`).
pub fn strip_duplicate_keys(value: &mut Value) -> Vec<String> {
    let mut found = Vec::new();
    strip(value, &mut String::new(), &mut found);
    found
}

fn strip(value: &mut Value, path: &mut String, found: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            if let Some(keys) = duplicate_keys(map) {
                map.shift_remove(DUPLICATE_KEYS);
                let at = if path.is_empty() {
                    "(top)"
                } else {
                    path.as_str()
                };
                found.push(format!("{at}: {}", describe_duplicates(&keys)));
            }
            for (k, v) in map.iter_mut() {
                let len = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(k);
                strip(v, path, found);
                path.truncate(len);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter_mut().enumerate() {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                strip(v, path, found);
                path.truncate(len);
            }
        }
        _ => {}
    }
}

/// A `DeserializeSeed` reading a [`Value`] with duplicate keys marked ([`DUPLICATE_KEYS`])
/// and at most `max_depth` levels of nested lists and objects (an error past that, read
/// no further).
#[derive(Clone, Copy, Debug)]
pub struct StrictValue {
    max_depth: usize,
    depth_left: usize,
}

impl StrictValue {
    /// A reader allowing `max_depth` levels of nesting (the top-level object is one).
    pub fn new(max_depth: usize) -> StrictValue {
        StrictValue {
            max_depth,
            depth_left: max_depth,
        }
    }

    fn enter<E: de::Error>(self) -> Result<StrictValue, E> {
        match self.depth_left.checked_sub(1) {
            Some(depth_left) => Ok(StrictValue { depth_left, ..self }),
            None => Err(E::custom(format!(
                "nested deeper than {} levels",
                self.max_depth
            ))),
        }
    }
}

impl<'de> DeserializeSeed<'de> for StrictValue {
    type Value = Value;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for StrictValue {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        self.deserialize(d)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let inner = self.enter()?;
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
        while let Some(item) = seq.next_element_seed(inner)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        let inner = self.enter()?;
        let mut map = Map::new();
        let mut duplicates = std::collections::BTreeSet::new();
        while let Some(key) = access.next_key::<String>()? {
            let value = access.next_value_seed(inner)?;
            if let Some(_previous) = map.insert(key.clone(), value) {
                duplicates.insert(key);
            }
        }
        if !duplicates.is_empty() {
            let keys: Vec<String> = duplicates.into_iter().collect();
            map.insert(DUPLICATE_KEYS.to_string(), Value::from(keys));
        }
        Ok(Value::Object(map))
    }
}

/// Parses one JSON text with [`StrictValue`] (`max_depth` levels).
pub fn from_slice(bytes: &[u8], max_depth: usize) -> Result<Value, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = StrictValue::new(max_depth).deserialize(&mut de)?;
    de.end()?;
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn duplicates_are_marked_and_the_last_kept() {
        let v = from_slice(br#"{"a":1,"b":{"x":1,"x":2,"x":3},"a":2}"#, 8).unwrap();
        assert_eq!(v["a"], json!(2));
        assert_eq!(v["b"]["x"], json!(3));
        assert_eq!(
            duplicate_keys(v.as_object().unwrap()),
            Some(vec!["a".into()])
        );
        assert_eq!(
            duplicate_keys(v["b"].as_object().unwrap()),
            Some(vec!["x".into()])
        );
        let mut v = v;
        assert_eq!(
            strip_duplicate_keys(&mut v),
            vec![
                "(top): duplicate key \"a\"".to_string(),
                "b: duplicate key \"x\"".to_string()
            ]
        );
        assert_eq!(v, json!({"a": 2, "b": {"x": 3}}));
    }

    #[test]
    fn same_values_as_serde_json_without_duplicates() {
        let text = br#"{"a":[1,-2,3.5,null,true,"s",{"b":[]}],"c":{}}"#;
        assert_eq!(
            from_slice(text, 8).unwrap(),
            serde_json::from_slice::<Value>(text).unwrap()
        );
    }

    #[test]
    fn nesting_is_bounded() {
        assert!(from_slice(b"[[[1]]]", 3).is_ok());
        let e = from_slice(b"[[[[1]]]]", 3).unwrap_err();
        assert!(e.to_string().contains("nested deeper than 3 levels"), "{e}");
        let deep = "[".repeat(1_000_000);
        assert!(from_slice(deep.as_bytes(), 64).is_err());
    }
}

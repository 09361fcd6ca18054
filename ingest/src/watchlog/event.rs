//! Mapping between [`WatchEvent`] and the flat event line format.

use serde::de::Error as _;
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use super::{EventType, ResourceRef, Space, WatchEvent};

/// The keys every event line must have, in the order they are written.
const REQUIRED_KEYS: [&str; 6] = ["ts", "space", "group", "version", "resource", "type"];

impl Serialize for WatchEvent {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let object = self
            .object
            .as_ref()
            .filter(|_| self.event_type.has_object());
        let mut map = serializer.serialize_map(Some(6 + usize::from(object.is_some())))?;
        map.serialize_entry("ts", &self.ts)?;
        map.serialize_entry("space", &self.resource.space)?;
        map.serialize_entry("group", &self.resource.group)?;
        map.serialize_entry("version", &self.resource.version)?;
        map.serialize_entry("resource", &self.resource.resource)?;
        map.serialize_entry("type", &self.event_type)?;
        if let Some(object) = object {
            map.serialize_entry("object", object)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for WatchEvent {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let map = Map::<String, Value>::deserialize(deserializer)?;
        event_from_map(map).map_err(D::Error::custom)
    }
}

/// Builds an event from a parsed line, with a human-readable reason on failure.
/// Unknown keys are ignored; an `object` on `SYNCED`/`RESET` is dropped.
pub(crate) fn event_from_map(mut map: Map<String, Value>) -> Result<WatchEvent, String> {
    if let Some(missing) = REQUIRED_KEYS.iter().find(|k| !map.contains_key(**k)) {
        return Err(format!("missing required key `{missing}`"));
    }
    let ts = match map.get("ts") {
        Some(Value::Number(n)) => n.as_i64().ok_or_else(|| {
            format!("key `ts` must be an integer (epoch milliseconds), found {n}")
        })?,
        Some(other) => {
            return Err(format!(
                "key `ts` must be an integer (epoch milliseconds), found {}",
                kind(other)
            ));
        }
        None => unreachable!("checked above"),
    };
    let space = take_string(&mut map, "space")?;
    let space = Space::parse(&space).ok_or_else(|| {
        format!("key `space`: unknown space {space:?} (expected \"wds\" or \"its\")")
    })?;
    let event_type = take_string(&mut map, "type")?;
    let event_type = EventType::parse(&event_type).ok_or_else(|| {
        format!(
            "key `type`: unknown event type {event_type:?} \
             (expected ADDED, MODIFIED, DELETED, SYNCED or RESET)"
        )
    })?;
    let resource = ResourceRef {
        space,
        group: take_string(&mut map, "group")?,
        version: take_string(&mut map, "version")?,
        resource: take_string(&mut map, "resource")?,
    };
    let object = if event_type.has_object() {
        match map.remove("object") {
            Some(object @ Value::Object(_)) => Some(object),
            Some(other) => {
                return Err(format!(
                    "key `object` must be a JSON object, found {}",
                    kind(&other)
                ));
            }
            None => {
                return Err(format!(
                    "missing required key `object` (required for {event_type} events)"
                ));
            }
        }
    } else {
        None
    };
    Ok(WatchEvent {
        ts,
        resource,
        event_type,
        object,
    })
}

/// Checks that an event can be written as a line that [`event_from_map`] accepts.
pub(crate) fn check_writable(event: &WatchEvent) -> Result<(), String> {
    if event.event_type.has_object() {
        match &event.object {
            Some(Value::Object(_)) => {}
            Some(other) => {
                return Err(format!(
                    "{} event for {}: `object` must be a JSON object, found {}",
                    event.event_type,
                    event.resource,
                    kind(other)
                ));
            }
            None => {
                return Err(format!(
                    "{} event for {} has no `object`",
                    event.event_type, event.resource
                ));
            }
        }
    }
    Ok(())
}

fn take_string(map: &mut Map<String, Value>, key: &str) -> Result<String, String> {
    match map.remove(key) {
        Some(Value::String(s)) => Ok(s),
        Some(other) => Err(format!(
            "key `{key}` must be a string, found {}",
            kind(&other)
        )),
        None => Err(format!("missing required key `{key}`")),
    }
}

/// A short description of a JSON value's kind, for error messages.
pub(crate) fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

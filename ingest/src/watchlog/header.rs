//! The header line of a watch log.

use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};
use serde_json::{Map, Value};

use super::WATCH_LOG_VERSION;
use super::event::kind;

/// The key of the header that holds the format version.
const VERSION_KEY: &str = "watchLog";

/// A watch log's header (line 1): the format version and free-form information.
#[derive(Clone, Debug, PartialEq)]
pub struct LogHeader {
    /// The format version (`watchLog`).
    pub version: u64,
    /// Every other header key (`recordedAt`, ...), in file order.
    pub extra: Map<String, Value>,
}

impl LogHeader {
    /// A header of the current format version with the given extra keys.
    pub fn new(extra: Map<String, Value>) -> LogHeader {
        LogHeader {
            version: WATCH_LOG_VERSION,
            extra,
        }
    }
}

/// Written as `{"watchLog":<version>, <extra keys...>}`; an extra key named
/// `watchLog` is not written (the version wins).
impl Serialize for LogHeader {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let extra = self.extra.iter().filter(|(k, _)| *k != VERSION_KEY);
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry(VERSION_KEY, &self.version)?;
        for (key, value) in extra {
            map.serialize_entry(key, value)?;
        }
        map.end()
    }
}

/// Why a first line is not a header.
pub(crate) enum HeaderProblem {
    /// Not a header at all; the reason says why.
    NotAHeader(String),
    /// A header, but the version is not supported.
    Unsupported(u64),
}

/// Parses and validates the first line of a log (without its newline).
pub(crate) fn parse_header(line: &[u8]) -> Result<LogHeader, HeaderProblem> {
    let line = line.strip_prefix("\u{feff}".as_bytes()).unwrap_or(line);
    let value: Value = serde_json::from_slice(line)
        .map_err(|e| HeaderProblem::NotAHeader(super::reader::json_error_reason(&e)))?;
    let Value::Object(mut extra) = value else {
        return Err(HeaderProblem::NotAHeader(format!(
            "expected a JSON object with key `{VERSION_KEY}`, found {}",
            kind(&value)
        )));
    };
    let version = match extra.shift_remove(VERSION_KEY) {
        Some(Value::Number(n)) => n.as_u64().ok_or_else(|| {
            HeaderProblem::NotAHeader(format!(
                "key `{VERSION_KEY}` must be a non-negative integer, found {n}"
            ))
        })?,
        Some(other) => {
            return Err(HeaderProblem::NotAHeader(format!(
                "key `{VERSION_KEY}` must be an integer, found {}",
                kind(&other)
            )));
        }
        None => {
            return Err(HeaderProblem::NotAHeader(format!(
                "missing key `{VERSION_KEY}`"
            )));
        }
    };
    if !super::SUPPORTED_VERSIONS.contains(&version) {
        return Err(HeaderProblem::Unsupported(version));
    }
    Ok(LogHeader { version, extra })
}

//! Watch logs as the tests write them (`docs/watch-log.md`): the header line, then one
//! event a line, of a resource named `space:group/version/resource`
//! (`space:version/resource` in the core group).

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

/// The header line of a log (format version 1).
pub const HEADER: &str = r#"{"watchLog": 1}"#;

/// OCM's ManagedClusters (the WECs) in the ITS.
pub const WECS: &str = "its:cluster.open-cluster-management.io/v1/managedclusters";
/// BindingPolicies in the WDS.
pub const POLICIES: &str = "wds:control.kubestellar.io/v1alpha1/bindingpolicies";
/// Namespaces in the WDS.
pub const NAMESPACES: &str = "wds:v1/namespaces";
/// ConfigMaps in the WDS.
pub const CONFIGMAPS: &str = "wds:v1/configmaps";

/// The event of `resource` (`space:group/version/resource`) at `ts`, of type `ty`
/// (`ADDED`, `MODIFIED`, `DELETED`, `RESET`, `SYNCED`), with `object` if it has one.
pub fn event(ts: i64, resource: &str, ty: &str, object: Option<Value>) -> Value {
    let (space, rest) = resource
        .split_once(':')
        .unwrap_or_else(|| panic!("{resource:?} is not space:group/version/resource"));
    let (group, version, plural) = match rest.split('/').collect::<Vec<_>>()[..] {
        [version, plural] => ("", version, plural),
        [group, version, plural] => (group, version, plural),
        _ => panic!("{resource:?} is not space:group/version/resource"),
    };
    let mut event = json!({"ts": ts, "space": space, "group": group, "version": version,
                           "resource": plural, "type": ty});
    if let Some(object) = object {
        event["object"] = object;
    }
    event
}

/// Writes `lines` (the header among them or not, as the test wants), each ended by a
/// newline, to `dir/name`; returns the path.
pub fn write_lines(dir: &Path, name: &str, lines: &[String]) -> PathBuf {
    let path = dir.join(name);
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    std::fs::write(&path, text).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
    path
}

/// Writes a log of the header and `events` to `dir/name`; returns the path.
pub fn write(dir: &Path, name: &str, events: &[Value]) -> PathBuf {
    let lines: Vec<String> = std::iter::once(HEADER.to_string())
        .chain(events.iter().map(Value::to_string))
        .collect();
    write_lines(dir, name, &lines)
}

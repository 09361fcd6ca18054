//! The BindingPolicy `status` the sink writes: `observedGeneration`, `errors` and a
//! `Ready` condition whose `lastTransitionTime` changes only when its status does.

use bindery_engine::binding::API_VERSION;
use kube::api::DynamicObject;
use serde_json::{Map, Value, json};

use crate::apiserver::DesiredStatus;

/// The condition type the sink maintains.
pub const READY: &str = "Ready";
/// `reason` of a `Ready=True` condition: the Binding reflects the policy, no problems.
pub const REASON_APPLIED: &str = "Applied";
/// `reason` of a `Ready=False` condition: the policy has problems (listed in `errors`).
pub const REASON_PROBLEMS: &str = "Problems";
/// `message` of a `Ready=True` condition.
pub const MESSAGE_APPLIED: &str = "The Binding reflects the policy";

/// A `Ready` condition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ReadyCondition {
    pub(crate) status: String,
    pub(crate) reason: String,
    pub(crate) message: String,
    pub(crate) last_transition_time: String,
}

impl ReadyCondition {
    /// The condition for `desired`, keeping `previous`'s `lastTransitionTime` when the
    /// status is the same; `now` gives the time otherwise.
    pub(crate) fn for_status(
        desired: &DesiredStatus,
        previous: Option<&ReadyCondition>,
        now: impl FnOnce() -> String,
    ) -> Self {
        let (status, reason, message) = wanted(desired);
        let last_transition_time = match previous {
            Some(p) if p.status == status && !p.last_transition_time.is_empty() => {
                p.last_transition_time.clone()
            }
            _ => now(),
        };
        ReadyCondition {
            status: status.into(),
            reason: reason.into(),
            message,
            last_transition_time,
        }
    }

    fn to_json(&self) -> Value {
        json!({
            "type": READY,
            "status": self.status,
            "reason": self.reason,
            "message": self.message,
            "lastTransitionTime": self.last_transition_time,
        })
    }
}

/// `(status, reason, message)` of the `Ready` condition for `desired`.
fn wanted(desired: &DesiredStatus) -> (&'static str, &'static str, String) {
    if desired.errors.is_empty() {
        ("True", REASON_APPLIED, MESSAGE_APPLIED.to_string())
    } else {
        ("False", REASON_PROBLEMS, desired.errors.join("; "))
    }
}

/// The part of a policy's status the sink writes, as stored.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct StoredStatus {
    observed_generation: Option<i64>,
    errors: Vec<String>,
    pub(crate) ready: Option<ReadyCondition>,
}

impl StoredStatus {
    /// Reads the status of a BindingPolicy the server returned.
    pub(crate) fn from_object(obj: &DynamicObject) -> Self {
        let status = obj.data.get("status").unwrap_or(&Value::Null);
        let errors = status
            .get("errors")
            .and_then(Value::as_array)
            .map(|es| {
                es.iter()
                    .filter_map(|e| e.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        let ready = status
            .get("conditions")
            .and_then(Value::as_array)
            .and_then(|cs| cs.iter().find(|c| c["type"] == READY))
            .map(|c| {
                let s = |k: &str| c.get(k).and_then(Value::as_str).unwrap_or("").to_string();
                ReadyCondition {
                    status: s("status"),
                    reason: s("reason"),
                    message: s("message"),
                    last_transition_time: s("lastTransitionTime"),
                }
            });
        StoredStatus {
            observed_generation: status.get("observedGeneration").and_then(Value::as_i64),
            errors,
            ready,
        }
    }

    /// What writing `desired` with `ready` stores.
    pub(crate) fn written(desired: &DesiredStatus, ready: ReadyCondition) -> Self {
        StoredStatus {
            observed_generation: Some(desired.observed_generation),
            errors: desired.errors.clone(),
            ready: Some(ready),
        }
    }

    /// True when writing `desired` would change nothing but times.
    pub(crate) fn satisfies(&self, desired: &DesiredStatus) -> bool {
        let (status, reason, message) = wanted(desired);
        self.observed_generation == Some(desired.observed_generation)
            && self.errors == desired.errors
            && self
                .ready
                .as_ref()
                .is_some_and(|r| r.status == status && r.reason == reason && r.message == message)
    }
}

/// The server-side apply body for the status subresource of `desired.policy`. `errors` is
/// omitted when empty (as KubeStellar's `omitempty` does); owning it, the apply removes it.
pub(crate) fn status_body(desired: &DesiredStatus, ready: &ReadyCondition) -> Value {
    let mut status = Map::new();
    status.insert(
        "observedGeneration".into(),
        json!(desired.observed_generation),
    );
    if !desired.errors.is_empty() {
        status.insert("errors".into(), json!(desired.errors));
    }
    status.insert("conditions".into(), json!([ready.to_json()]));
    json!({
        "apiVersion": API_VERSION,
        "kind": "BindingPolicy",
        "metadata": { "name": desired.policy },
        "status": status,
    })
}

/// Now, as a Kubernetes `metav1.Time` (RFC 3339, seconds, UTC).
pub(crate) fn now() -> String {
    let ts = k8s_openapi::jiff::Timestamp::now();
    k8s_openapi::jiff::fmt::strtime::format("%Y-%m-%dT%H:%M:%SZ", ts)
        .unwrap_or_else(|_| ts.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn desired(errors: &[&str]) -> DesiredStatus {
        DesiredStatus {
            policy: "p".into(),
            observed_generation: 3,
            errors: errors.iter().map(|e| e.to_string()).collect(),
        }
    }

    #[test]
    fn transition_time_changes_only_with_the_status() {
        let t0 = || "2026-01-01T00:00:00Z".to_string();
        let t1 = || "2026-01-02T00:00:00Z".to_string();
        let ok = ReadyCondition::for_status(&desired(&[]), None, t0);
        assert_eq!(
            (ok.status.as_str(), ok.reason.as_str()),
            ("True", "Applied")
        );
        let still_ok = ReadyCondition::for_status(&desired(&[]), Some(&ok), t1);
        assert_eq!(still_ok.last_transition_time, "2026-01-01T00:00:00Z");
        let bad = ReadyCondition::for_status(&desired(&["a", "b"]), Some(&ok), t1);
        assert_eq!(bad.status, "False");
        assert_eq!(bad.reason, "Problems");
        assert_eq!(bad.message, "a; b");
        assert_eq!(bad.last_transition_time, "2026-01-02T00:00:00Z");
    }

    #[test]
    fn body_and_stored_status_round_trip() {
        let d = desired(&["x"]);
        let ready = ReadyCondition::for_status(&d, None, now);
        let body = status_body(&d, &ready);
        assert_eq!(body["status"]["errors"], json!(["x"]));
        assert_eq!(body["status"]["conditions"][0]["type"], "Ready");
        let obj: DynamicObject = serde_json::from_value(body).unwrap();
        let stored = StoredStatus::from_object(&obj);
        assert!(stored.satisfies(&d));
        assert_eq!(stored, StoredStatus::written(&d, ready));
        assert!(!stored.satisfies(&desired(&[])));
        let ok = desired(&[]);
        let body = status_body(&ok, &ReadyCondition::for_status(&ok, None, now));
        assert!(body["status"].get("errors").is_none());
        assert!(now().ends_with('Z'));
    }
}

//! The BindingPolicy `status` the sink writes, as [`bindery_api`] types:
//! `observedGeneration`, `errors`, and the `Ready` and `Synced` conditions (and, with
//! status return, `StatusCollectorsAvailable`), whose `lastTransitionTime` changes only
//! when their status does.

use bindery_api::condition::{
    self, BindingPolicyCondition, READY, REASON_APPLIED, REASON_PROBLEMS, REASON_RECONCILE_ERROR,
    REASON_RECONCILE_SUCCESS, STATUS_COLLECTORS_AVAILABLE, SYNCED,
};
use bindery_api::{API_VERSION, BindingPolicyStatus};
use kube::api::DynamicObject;
use serde_json::{Value, json};

use crate::apiserver::DesiredStatus;

/// `message` of a `Ready=True` condition.
pub(crate) const MESSAGE_APPLIED: &str = "The Binding reflects the policy";
/// `message` of a `Synced=True` condition.
pub(crate) const MESSAGE_SYNCED: &str = "The Binding is written as computed";
/// `message` of a `StatusCollectorsAvailable=True` condition (KubeStellar's).
pub(crate) const MESSAGE_COLLECTORS_AVAILABLE: &str = "All StatusCollector(s) are available";

/// `(type, ok, reason, message)` of each condition the sink maintains, for `desired`:
/// `Ready` is false when the policy or its Binding has a problem, `Synced` only when the
/// Binding could not be written; `StatusCollectorsAvailable` (when maintained) when a
/// collector is missing, with KubeStellar's texts (the names as Go prints a slice).
fn wanted(desired: &DesiredStatus) -> Vec<(&'static str, bool, &'static str, String)> {
    let errors = desired.errors();
    let ready = if errors.is_empty() {
        (READY, true, REASON_APPLIED, MESSAGE_APPLIED.to_string())
    } else {
        (READY, false, REASON_PROBLEMS, errors.join("; "))
    };
    let synced = match &desired.binding_problem {
        None => (
            SYNCED,
            true,
            REASON_RECONCILE_SUCCESS,
            MESSAGE_SYNCED.to_string(),
        ),
        Some(problem) => (SYNCED, false, REASON_RECONCILE_ERROR, problem.clone()),
    };
    let collectors = desired.missing_collectors.as_ref().map(|missing| {
        if missing.is_empty() {
            (
                STATUS_COLLECTORS_AVAILABLE,
                true,
                REASON_RECONCILE_SUCCESS,
                MESSAGE_COLLECTORS_AVAILABLE.to_string(),
            )
        } else {
            (
                STATUS_COLLECTORS_AVAILABLE,
                false,
                REASON_RECONCILE_ERROR,
                format!("Missing StatusCollector(s) [{}]", missing.join(" ")),
            )
        }
    });
    [ready, synced].into_iter().chain(collectors).collect()
}

/// The conditions to write for `desired`, keeping the transition times of `previous`
/// where a condition's status is the same; `now` gives the time otherwise.
pub(crate) fn conditions(
    desired: &DesiredStatus,
    previous: &[BindingPolicyCondition],
    now: impl Fn() -> String,
) -> Vec<BindingPolicyCondition> {
    wanted(desired)
        .into_iter()
        .map(|(type_, ok, reason, message)| {
            let before = condition::find(previous, type_);
            BindingPolicyCondition::transition(type_, ok, reason, message, before, &now)
        })
        .collect()
}

/// The part of a policy's status the sink writes, as stored.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct StoredStatus {
    status: Option<BindingPolicyStatus>,
}

impl StoredStatus {
    /// Reads the status of a BindingPolicy the server returned (none when it has no
    /// status or one that is not a BindingPolicy status: then it is written).
    pub(crate) fn from_object(obj: &DynamicObject) -> Self {
        let status = obj
            .data
            .get("status")
            .and_then(|s| serde_json::from_value(s.clone()).ok());
        StoredStatus { status }
    }

    /// What writing `desired` with `conditions` stores.
    pub(crate) fn written(
        desired: &DesiredStatus,
        conditions: Vec<BindingPolicyCondition>,
    ) -> Self {
        StoredStatus {
            status: Some(typed(desired, conditions)),
        }
    }

    /// The stored conditions (empty when there is no status).
    pub(crate) fn conditions(&self) -> &[BindingPolicyCondition] {
        self.status.as_ref().map_or(&[], |s| &s.conditions)
    }

    /// True when writing `desired` would change nothing but times.
    pub(crate) fn satisfies(&self, desired: &DesiredStatus) -> bool {
        let Some(status) = &self.status else {
            return false;
        };
        status.observed_generation == desired.observed_generation
            && status.errors == desired.errors()
            && wanted(desired).iter().all(|(type_, ok, reason, message)| {
                condition::find(&status.conditions, type_).is_some_and(|c| {
                    c.status == if *ok { "True" } else { "False" }
                        && c.reason == *reason
                        && c.message == *message
                })
            })
    }
}

fn typed(desired: &DesiredStatus, conditions: Vec<BindingPolicyCondition>) -> BindingPolicyStatus {
    BindingPolicyStatus {
        conditions,
        observed_generation: desired.observed_generation,
        errors: desired.errors(),
    }
}

/// The server-side apply body for the status subresource of `desired.policy`. `errors` is
/// omitted when empty (as KubeStellar's `omitempty` does); owning it, the apply removes
/// it. `conditions` is a map list keyed by `type`, so conditions of other types that
/// other writers own are kept.
pub(crate) fn status_body(
    desired: &DesiredStatus,
    conditions: Vec<BindingPolicyCondition>,
) -> Value {
    json!({
        "apiVersion": API_VERSION,
        "kind": "BindingPolicy",
        "metadata": { "name": desired.policy },
        "status": typed(desired, conditions),
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

    fn desired(errors: &[&str], binding_problem: Option<&str>) -> DesiredStatus {
        DesiredStatus {
            policy: "p".into(),
            observed_generation: 3,
            errors: errors.iter().map(|e| e.to_string()).collect(),
            binding_problem: binding_problem.map(str::to_string),
            missing_collectors: None,
        }
    }

    fn find<'a>(cs: &'a [BindingPolicyCondition], t: &str) -> &'a BindingPolicyCondition {
        condition::find(cs, t).unwrap()
    }

    #[test]
    fn ready_and_synced_follow_the_problems() {
        let t0 = || "2026-01-01T00:00:00Z".to_string();
        let t1 = || "2026-01-02T00:00:00Z".to_string();
        let ok = conditions(&desired(&[], None), &[], t0);
        assert_eq!(
            (
                find(&ok, READY).status.as_str(),
                find(&ok, READY).reason.as_str()
            ),
            ("True", "Applied")
        );
        assert_eq!(find(&ok, SYNCED).reason, "ReconcileSuccess");

        // A policy problem: not ready, still synced (its Binding is written).
        let bad = conditions(&desired(&["a", "b"], None), &ok, t1);
        assert_eq!(find(&bad, READY).status, "False");
        assert_eq!(find(&bad, READY).message, "a; b");
        assert_eq!(
            find(&bad, READY).last_transition_time,
            "2026-01-02T00:00:00Z"
        );
        assert_eq!(find(&bad, SYNCED).status, "True");
        assert_eq!(
            find(&bad, SYNCED).last_transition_time,
            "2026-01-01T00:00:00Z"
        );

        // A Binding that cannot be written: neither synced nor ready, both say why.
        let unwritten = conditions(&desired(&[], Some("too large")), &ok, t1);
        assert_eq!(find(&unwritten, SYNCED).status, "False");
        assert_eq!(find(&unwritten, SYNCED).reason, "ReconcileError");
        assert_eq!(find(&unwritten, SYNCED).message, "too large");
        assert_eq!(find(&unwritten, READY).message, "too large");
    }

    #[test]
    fn body_and_stored_status_round_trip() {
        let d = desired(&["x"], Some("refused"));
        let cs = conditions(&d, &[], now);
        let body = status_body(&d, cs.clone());
        assert_eq!(body["status"]["errors"], json!(["x", "refused"]));
        assert_eq!(body["status"]["conditions"][0]["type"], "Ready");
        assert_eq!(body["status"]["conditions"][1]["type"], "Synced");
        let obj: DynamicObject = serde_json::from_value(body).unwrap();
        let stored = StoredStatus::from_object(&obj);
        assert!(stored.satisfies(&d));
        assert_eq!(stored, StoredStatus::written(&d, cs));
        assert!(!stored.satisfies(&desired(&["x"], None)));
        let ok = desired(&[], None);
        let body = status_body(&ok, conditions(&ok, &[], now));
        assert!(body["status"].get("errors").is_none());
        assert!(now().ends_with('Z'));
        // A status with only `Ready` (as an older Bindery wrote it) is written again.
        let mut old = serde_json::to_value(&body).unwrap();
        old["status"]["conditions"]
            .as_array_mut()
            .unwrap()
            .truncate(1);
        let obj: DynamicObject = serde_json::from_value(old).unwrap();
        assert!(!StoredStatus::from_object(&obj).satisfies(&ok));
    }

    #[test]
    fn status_collectors_available_is_maintained_with_status_return_only() {
        let t0 = || "2026-01-01T00:00:00Z".to_string();
        let t1 = || "2026-01-02T00:00:00Z".to_string();
        let with = |missing: &[&str]| DesiredStatus {
            missing_collectors: Some(missing.iter().map(|m| m.to_string()).collect()),
            ..desired(&[], None)
        };
        // Not maintained: the two conditions of before, nothing else.
        let off = conditions(&desired(&[], None), &[], t0);
        assert_eq!(off.len(), 2);
        assert!(condition::find(&off, STATUS_COLLECTORS_AVAILABLE).is_none());

        let missing = conditions(&with(&["a", "b"]), &off, t0);
        let c = find(&missing, STATUS_COLLECTORS_AVAILABLE);
        assert_eq!(
            (c.status.as_str(), c.reason.as_str(), c.message.as_str()),
            (
                "False",
                "ReconcileError",
                "Missing StatusCollector(s) [a b]"
            )
        );
        // Another missing set: the same status, so the same transition time.
        let fewer = conditions(&with(&["b"]), &missing, t1);
        let c = find(&fewer, STATUS_COLLECTORS_AVAILABLE);
        assert_eq!(c.message, "Missing StatusCollector(s) [b]");
        assert_eq!(c.last_transition_time, "2026-01-01T00:00:00Z");
        let all = conditions(&with(&[]), &fewer, t1);
        let c = find(&all, STATUS_COLLECTORS_AVAILABLE);
        assert_eq!(
            (c.status.as_str(), c.reason.as_str(), c.message.as_str()),
            (
                "True",
                "ReconcileSuccess",
                "All StatusCollector(s) are available"
            )
        );
        assert_eq!(c.last_transition_time, "2026-01-02T00:00:00Z");
        // Ready and Synced keep their own times.
        assert_eq!(
            find(&all, READY).last_transition_time,
            "2026-01-01T00:00:00Z"
        );

        // A stored status satisfies only the missing set it was written with; one
        // written without the condition does not satisfy a status that has it.
        let stored = StoredStatus::written(&with(&["b"]), fewer);
        assert!(stored.satisfies(&with(&["b"])));
        assert!(!stored.satisfies(&with(&["a", "b"])));
        assert!(!stored.satisfies(&with(&[])));
        // Not maintained: whatever condition is stored is not looked at.
        assert!(stored.satisfies(&desired(&[], None)));
        let plain = StoredStatus::written(&desired(&[], None), off);
        assert!(!plain.satisfies(&with(&[])));
        let body = status_body(&with(&[]), all);
        assert_eq!(
            body["status"]["conditions"][2]["type"],
            "StatusCollectorsAvailable"
        );
    }
}

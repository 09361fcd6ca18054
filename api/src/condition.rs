//! KubeStellar's condition type, the condition types Bindery maintains on a
//! BindingPolicy, and their reasons.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A condition of a BindingPolicy (and of a Binding). KubeStellar's own condition type:
/// unlike `metav1.Condition` it has no `observedGeneration`, and all five fields are
/// required (`message` may be empty).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BindingPolicyCondition {
    /// The condition type, e.g. `Ready` or `Synced`.
    #[serde(rename = "type")]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    pub status: String,
    /// When the condition last changed status, RFC 3339 (e.g. `2026-01-02T03:04:05Z`).
    #[schemars(extend("format" = "date-time"))]
    pub last_transition_time: String,
    /// A CamelCase reason for the last transition.
    pub reason: String,
    /// A human-readable message (may be empty).
    pub message: String,
}

/// Condition type: the policy's Binding reflects the policy and the policy has no
/// problems (`False` lists them in the message).
pub const READY: &str = "Ready";
/// Condition type: the policy's Binding is written as computed (`False` when the write
/// failed: refused, too large, or fought over by another writer).
pub const SYNCED: &str = "Synced";

/// Condition type: every StatusCollector the policy's Binding entries name exists and
/// is valid (`False` lists the missing ones in the message), as KubeStellar's status
/// controller sets it.
pub const STATUS_COLLECTORS_AVAILABLE: &str = "StatusCollectorsAvailable";

/// `reason` of `Ready=True`: the Binding reflects the policy, no problems.
pub const REASON_APPLIED: &str = "Applied";
/// `reason` of `Ready=False`: the policy has problems (listed in `status.errors`).
pub const REASON_PROBLEMS: &str = "Problems";
/// `reason` of `Synced=True`, as KubeStellar's controller writes it.
pub const REASON_RECONCILE_SUCCESS: &str = "ReconcileSuccess";
/// `reason` of `Synced=False`, as KubeStellar's controller writes it.
pub const REASON_RECONCILE_ERROR: &str = "ReconcileError";

impl BindingPolicyCondition {
    /// A condition of `type_` that is `True` when `ok`, with `reason` and `message`. Its
    /// `lastTransitionTime` is `previous`'s when the status is the same, else `now()`.
    pub fn transition(
        type_: &str,
        ok: bool,
        reason: &str,
        message: impl Into<String>,
        previous: Option<&BindingPolicyCondition>,
        now: impl FnOnce() -> String,
    ) -> Self {
        let status = if ok { "True" } else { "False" };
        let last_transition_time = match previous {
            Some(p) if p.status == status && !p.last_transition_time.is_empty() => {
                p.last_transition_time.clone()
            }
            _ => now(),
        };
        BindingPolicyCondition {
            type_: type_.into(),
            status: status.into(),
            last_transition_time,
            reason: reason.into(),
            message: message.into(),
        }
    }
}

/// The condition of `type_` among `conditions` (a map list: at most one per type).
pub fn find<'a>(
    conditions: &'a [BindingPolicyCondition],
    type_: &str,
) -> Option<&'a BindingPolicyCondition> {
    conditions.iter().find(|c| c.type_ == type_)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_transition_time_changes_only_with_the_status() {
        let t0 = || "2026-01-01T00:00:00Z".to_string();
        let t1 = || "2026-01-02T00:00:00Z".to_string();
        let ok = BindingPolicyCondition::transition(READY, true, REASON_APPLIED, "", None, t0);
        assert_eq!((ok.status.as_str(), ok.type_.as_str()), ("True", "Ready"));
        let again = BindingPolicyCondition::transition(READY, true, "Other", "m", Some(&ok), t1);
        assert_eq!(again.last_transition_time, "2026-01-01T00:00:00Z");
        assert_eq!(
            (again.reason.as_str(), again.message.as_str()),
            ("Other", "m")
        );
        let bad =
            BindingPolicyCondition::transition(READY, false, REASON_PROBLEMS, "x", Some(&ok), t1);
        assert_eq!(bad.last_transition_time, "2026-01-02T00:00:00Z");
        let list = [ok.clone(), bad.clone()];
        assert_eq!(find(&list, READY), Some(&ok));
        assert_eq!(find(&list, SYNCED), None);
    }
}

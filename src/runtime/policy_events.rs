//! Kubernetes Events on BindingPolicies, so that `kubectl describe bindingpolicy NAME` and
//! event-based alerts show what went wrong and when it was mended:
//!
//! - `PolicyProblem` (Warning): the policy has problems it did not have before (the new
//!   ones are the note);
//! - `BindingWriteFailed` (Warning): its Binding cannot be written (too large, refused,
//!   fought over by another writer), or fails for another reason than before;
//! - `ProblemsResolved` (Normal): a policy that had problems has none any more;
//! - `DestinationAdded` and `DestinationRemoved` (Normal, with `--destination-events`):
//!   a WEC became or stopped being a destination of its Binding, the note naming the
//!   cause (from the history journal).
//!
//! [`ProblemTracker`] tells these from the statuses the engine loop hands to the sink;
//! [`EventSender`] queues them for a task that publishes them with kube-runtime's
//! [`Recorder`] (in the `default` namespace, as for every cluster-scoped object), each
//! (policy, reason) at most once per [`RateLimit::per_policy`], all of them within a
//! token bucket, and never waits: a full queue drops the event. Each outcome is counted in
//! `bindery_policy_events_total{reason,result}`.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use bindery_sink::DesiredStatus;
use k8s_openapi::api::core::v1::ObjectReference;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::observe::metrics::{Metrics, PolicyEventResult};

/// The Event API's limit on a note (1 kB); longer notes are cut.
const MAX_NOTE_BYTES: usize = 1000;
/// Events waiting to be published; beyond that they are dropped (and counted).
const QUEUE: usize = 256;

/// Why an Event is published.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Reason {
    /// The policy has new problems.
    PolicyProblem,
    /// The policy's Binding cannot be written.
    BindingWriteFailed,
    /// The policy's problems are gone.
    ProblemsResolved,
    /// A WEC became a destination.
    DestinationAdded,
    /// A WEC stopped being a destination.
    DestinationRemoved,
}

impl Reason {
    /// The Event's `reason`.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::PolicyProblem => "PolicyProblem",
            Reason::BindingWriteFailed => "BindingWriteFailed",
            Reason::ProblemsResolved => "ProblemsResolved",
            Reason::DestinationAdded => "DestinationAdded",
            Reason::DestinationRemoved => "DestinationRemoved",
        }
    }

    fn event_type(self) -> EventType {
        match self {
            Reason::ProblemsResolved | Reason::DestinationAdded | Reason::DestinationRemoved => {
                EventType::Normal
            }
            Reason::PolicyProblem | Reason::BindingWriteFailed => EventType::Warning,
        }
    }

    /// The Event's `action`: what Bindery was doing.
    fn action(self) -> &'static str {
        match self {
            Reason::PolicyProblem | Reason::ProblemsResolved => "Evaluate",
            Reason::BindingWriteFailed => "WriteBinding",
            Reason::DestinationAdded | Reason::DestinationRemoved => "Bind",
        }
    }
}

/// One Event to publish on a BindingPolicy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyEvent {
    /// The policy's name.
    pub policy: String,
    /// The policy's uid (Events are matched to their object by it).
    pub uid: String,
    /// Why.
    pub reason: Reason,
    /// What, for a person (at most 1 kB).
    pub note: String,
}

/// The Events of `changes` (one epoch's, from the history journal) that are
/// destination changes, each naming its first cause; `uid(policy)` gives a policy's
/// uid (`None`: gone, no Event).
pub fn destination_events<'a>(
    changes: impl IntoIterator<Item = &'a crate::history::Change>,
    uid: &mut dyn FnMut(&str) -> Option<String>,
) -> Vec<PolicyEvent> {
    use crate::history::What;
    let mut events = Vec::new();
    for change in changes {
        let (reason, what) = match &change.change {
            What::DestinationAdded { cluster } => (
                Reason::DestinationAdded,
                format!("WEC {cluster} is now a destination"),
            ),
            What::DestinationRemoved { cluster } => (
                Reason::DestinationRemoved,
                format!("WEC {cluster} is no longer a destination"),
            ),
            _ => continue,
        };
        let Some(uid) = uid(&change.binding) else {
            continue;
        };
        let cause = match change.causes.as_slice() {
            [] => "no cause found in the epoch's events".to_string(),
            [one] => format!("cause: {}", crate::history::cause_text(one)),
            [first, rest @ ..] => format!(
                "cause: {} (and {} more)",
                crate::history::cause_text(first),
                rest.len()
            ),
        };
        events.push(PolicyEvent {
            policy: change.binding.clone(),
            uid,
            reason,
            note: format!("{what}; {cause}"),
        });
    }
    events
}

/// What a policy's status said when last seen.
#[derive(Debug, Default)]
struct Seen {
    problems: BTreeSet<String>,
    binding_problem: Option<String>,
}

/// Tells the Events a policy's new status calls for, from what its previous one said.
/// It remembers only policies that have problems.
#[derive(Debug, Default)]
pub struct ProblemTracker {
    last: HashMap<String, Seen>,
}

impl ProblemTracker {
    /// The Events `desired` (the status about to be written for the policy with `uid`)
    /// calls for.
    pub fn observe(&mut self, uid: &str, desired: &DesiredStatus) -> Vec<PolicyEvent> {
        let before = self.last.remove(&desired.policy).unwrap_or_default();
        let event = |reason, note: String| PolicyEvent {
            policy: desired.policy.clone(),
            uid: uid.to_string(),
            reason,
            note: cut(note),
        };
        let mut events = Vec::new();
        let new: Vec<&str> = desired
            .errors
            .iter()
            .filter(|p| !before.problems.contains(*p))
            .map(String::as_str)
            .collect();
        if !new.is_empty() {
            events.push(event(Reason::PolicyProblem, new.join("; ")));
        }
        if let Some(problem) = &desired.binding_problem
            && before.binding_problem.as_ref() != Some(problem)
        {
            events.push(event(Reason::BindingWriteFailed, problem.clone()));
        }
        let had = !before.problems.is_empty() || before.binding_problem.is_some();
        let has = !desired.errors.is_empty() || desired.binding_problem.is_some();
        if had && !has {
            events.push(event(
                Reason::ProblemsResolved,
                "The policy has no problems any more".into(),
            ));
        }
        if has {
            self.last.insert(
                desired.policy.clone(),
                Seen {
                    problems: desired.errors.iter().cloned().collect(),
                    binding_problem: desired.binding_problem.clone(),
                },
            );
        }
        events
    }

    /// Forgets a deleted policy.
    pub fn forget(&mut self, policy: &str) {
        self.last.remove(policy);
    }
}

/// `note` cut to the Event API's limit, at a character boundary.
fn cut(mut note: String) -> String {
    if note.len() > MAX_NOTE_BYTES {
        let mut end = MAX_NOTE_BYTES - '…'.len_utf8();
        while !note.is_char_boundary(end) {
            end -= 1;
        }
        note.truncate(end);
        note.push('…');
    }
    note
}

/// How often Events are published.
#[derive(Clone, Copy, Debug)]
pub struct RateLimit {
    /// At most one Event per (policy, reason) in this time.
    pub per_policy: Duration,
    /// Events per second over all policies, on average.
    pub per_second: f64,
    /// Events that may go at once above `per_second`.
    pub burst: u32,
}

impl Default for RateLimit {
    fn default() -> Self {
        RateLimit {
            per_policy: Duration::from_secs(60),
            per_second: 5.0,
            burst: 20,
        }
    }
}

/// [`RateLimit`] applied: which Events go out.
#[derive(Debug)]
struct Limiter {
    limit: RateLimit,
    last: HashMap<(String, Reason), Instant>,
    tokens: f64,
    refilled: Instant,
}

impl Limiter {
    fn new(limit: RateLimit, now: Instant) -> Self {
        Limiter {
            limit,
            last: HashMap::new(),
            tokens: f64::from(limit.burst.max(1)),
            refilled: now,
        }
    }

    /// True when an Event with `reason` on `policy` may be published at `now`.
    fn admit(&mut self, policy: &str, reason: Reason, now: Instant) -> bool {
        let per_policy = self.limit.per_policy;
        if self.last.len() > 4096 {
            self.last.retain(|_, t| now.duration_since(*t) < per_policy);
        }
        let key = (policy.to_string(), reason);
        if self
            .last
            .get(&key)
            .is_some_and(|t| now.duration_since(*t) < per_policy)
        {
            return false;
        }
        let burst = f64::from(self.limit.burst.max(1));
        let elapsed = now.duration_since(self.refilled).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.limit.per_second).min(burst);
        self.refilled = now;
        if self.tokens < 1.0 {
            return false;
        }
        self.tokens -= 1.0;
        self.last.insert(key, now);
        true
    }
}

/// Queues Events for publishing; cheap to clone, never blocks.
#[derive(Clone)]
pub struct EventSender {
    tx: mpsc::Sender<PolicyEvent>,
    metrics: Arc<Metrics>,
}

impl EventSender {
    /// Starts the task that publishes the queued Events with `client` as `reporter`.
    pub fn start(
        client: kube::Client,
        reporter: Reporter,
        limit: RateLimit,
        metrics: Arc<Metrics>,
    ) -> (EventSender, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(QUEUE);
        let recorder = Recorder::new(client, reporter);
        let task = tokio::spawn(publish(rx, recorder, limit, metrics.clone()));
        (EventSender { tx, metrics }, task)
    }

    /// Queues `event`; dropped (and counted) when the queue is full.
    pub fn send(&self, event: PolicyEvent) {
        let reason = event.reason;
        if self.tx.try_send(event).is_err() {
            self.metrics
                .policy_event(reason, PolicyEventResult::Dropped);
        }
    }
}

/// Publishes what `rx` brings, as `limit` allows, until every sender is gone.
async fn publish(
    mut rx: mpsc::Receiver<PolicyEvent>,
    recorder: Recorder,
    limit: RateLimit,
    metrics: Arc<Metrics>,
) {
    let mut limiter = Limiter::new(limit, Instant::now());
    while let Some(event) = rx.recv().await {
        let reason = event.reason;
        if !limiter.admit(&event.policy, reason, Instant::now()) {
            metrics.policy_event(reason, PolicyEventResult::Suppressed);
            continue;
        }
        let reference = ObjectReference {
            api_version: Some(bindery_api::API_VERSION.into()),
            kind: Some("BindingPolicy".into()),
            name: Some(event.policy.clone()),
            uid: Some(event.uid.clone()),
            ..ObjectReference::default()
        };
        let published = recorder
            .publish(
                &Event {
                    type_: event.reason.event_type(),
                    reason: reason.as_str().into(),
                    note: Some(event.note.clone()),
                    action: event.reason.action().into(),
                    secondary: None,
                },
                &reference,
            )
            .await;
        match published {
            Ok(()) => {
                metrics.policy_event(reason, PolicyEventResult::Published);
                tracing::debug!(policy = %event.policy, reason = reason.as_str(), "event published");
            }
            Err(e) => {
                metrics.policy_event(reason, PolicyEventResult::Failed);
                tracing::warn!(policy = %event.policy, reason = reason.as_str(), error = %e, "cannot publish an event");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(errors: &[&str], binding_problem: Option<&str>) -> DesiredStatus {
        DesiredStatus {
            policy: "p".into(),
            observed_generation: 1,
            errors: errors.iter().map(|e| e.to_string()).collect(),
            binding_problem: binding_problem.map(str::to_string),
            missing_collectors: None,
        }
    }

    fn reasons(events: &[PolicyEvent]) -> Vec<Reason> {
        events.iter().map(|e| e.reason).collect()
    }

    #[test]
    fn only_new_problems_and_their_end_make_events() {
        let mut t = ProblemTracker::default();
        assert!(t.observe("u", &status(&[], None)).is_empty());
        let e = t.observe("u", &status(&["a"], None));
        assert_eq!(reasons(&e), [Reason::PolicyProblem]);
        assert_eq!((e[0].note.as_str(), e[0].uid.as_str()), ("a", "u"));
        // The same problem again: nothing new.
        assert!(t.observe("u", &status(&["a"], None)).is_empty());
        // One more: only it is the note.
        let e = t.observe("u", &status(&["a", "b"], None));
        assert_eq!(e[0].note, "b");
        let e = t.observe("u", &status(&["a", "b"], Some("too large")));
        assert_eq!(reasons(&e), [Reason::BindingWriteFailed]);
        assert!(
            t.observe("u", &status(&["a", "b"], Some("too large")))
                .is_empty()
        );
        let e = t.observe("u", &status(&[], None));
        assert_eq!(reasons(&e), [Reason::ProblemsResolved]);
        assert!(t.last.is_empty(), "policies without problems are not kept");
        // Problems that come back are new again; a forgotten policy starts afresh.
        assert_eq!(t.observe("u", &status(&["a"], None)).len(), 1);
        t.forget("p");
        assert!(t.observe("u", &status(&[], None)).is_empty());
    }

    #[test]
    fn long_notes_are_cut_at_a_character_boundary() {
        let note = cut("é".repeat(800));
        assert!(note.len() <= MAX_NOTE_BYTES && note.ends_with('…'));
        assert_eq!(cut("short".into()), "short");
    }

    #[test]
    fn the_limiter_allows_one_per_policy_and_reason_and_a_bounded_rate() {
        let t0 = Instant::now();
        let limit = RateLimit {
            per_policy: Duration::from_secs(60),
            per_second: 1.0,
            burst: 3,
        };
        let mut l = Limiter::new(limit, t0);
        assert!(l.admit("p", Reason::PolicyProblem, t0));
        assert!(!l.admit("p", Reason::PolicyProblem, t0 + Duration::from_secs(59)));
        assert!(l.admit("p", Reason::BindingWriteFailed, t0));
        assert!(l.admit("q", Reason::PolicyProblem, t0));
        // The burst of 3 is spent: a fourth policy waits for a token.
        assert!(!l.admit("r", Reason::PolicyProblem, t0));
        assert!(l.admit("r", Reason::PolicyProblem, t0 + Duration::from_secs(1)));
        assert!(l.admit("p", Reason::PolicyProblem, t0 + Duration::from_secs(61)));
    }
}

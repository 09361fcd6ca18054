//! Following the ITS's WorkStatus CRD: KubeStellar's OCM status add-on may be installed
//! after Bindery starts, or removed, so WorkStatuses are watched only while the ITS
//! serves them. A task checks the ITS every `work_status_poll` (KubeStellar's
//! controller-manager polls every 15 s for the same CRD, `CheckWorkStatusPresence`):
//! discovery of `control.kubestellar.io/v1alpha1` lists `workstatuses`, and the ITS lets
//! Bindery list them. The supervisor adds or removes the watch by the usual [`plan`].
//! A WorkStatus watch that is not there never holds the first publish back.

use std::time::Duration;

use kube::api::{Api, DynamicObject, ListParams};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::plan::{Action, plan};
use super::target::WatchTarget;

/// The longest one check may take (a hung ITS is a failed check).
pub(crate) const CHECK_TIMEOUT: Duration = Duration::from_secs(30);

/// What one check of the ITS found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Presence {
    /// The CRD is served and Bindery may list WorkStatuses.
    Present,
    /// The ITS does not serve `workstatuses` (discovery says so, or a list is `404`).
    Absent,
    /// The CRD is served, but listing WorkStatuses is forbidden (`403`): the ITS RBAC
    /// lacks them.
    Forbidden(String),
    /// The check failed otherwise (unreachable, timed out, a server error).
    Failed(String),
}

impl Presence {
    /// Whether two checks found the same kind of thing (errors aside), for logging
    /// transitions only.
    pub(crate) fn same_kind(&self, other: &Presence) -> bool {
        std::mem::discriminant(self) == std::mem::discriminant(other)
    }
}

/// Whether WorkStatuses are watched after a check found `presence`, when they were
/// (`watched`) or not: a present CRD is watched, an absent one is not, and a check
/// that could not tell (forbidden, failed) changes nothing.
pub(crate) fn next_watched(watched: bool, presence: &Presence) -> bool {
    match presence {
        Presence::Present => true,
        Presence::Absent => false,
        Presence::Forbidden(_) | Presence::Failed(_) => watched,
    }
}

/// The actions that take the WorkStatus watch from `watched` (the target watched now,
/// if any) to what `presence` asks, and the target watched then: `RESET` and start
/// when it appears, stop, `RESET` and `SYNCED` (its objects deleted) when it goes.
pub(crate) fn transition(
    watched: Option<&WatchTarget>,
    wanted: &WatchTarget,
    presence: &Presence,
) -> (Option<WatchTarget>, Vec<Action>) {
    let next = next_watched(watched.is_some(), presence).then(|| match watched {
        Some(current) => current.clone(),
        None => wanted.clone(),
    });
    let actions = plan(
        watched.map(std::slice::from_ref).unwrap_or_default(),
        next.as_slice(),
    );
    (next, actions)
}

/// Checks once whether the ITS behind `its` serves `target` (WorkStatuses) and lets
/// this client list them (with the target's label selector, one item at most).
pub(crate) async fn check(its: &kube::Client, target: &WatchTarget) -> Presence {
    let group_version = &target.api_resource.api_version;
    match its.list_api_group_resources(group_version).await {
        Ok(list) => {
            let plural = &target.api_resource.plural;
            if !list.resources.iter().any(|r| &r.name == plural) {
                return Presence::Absent;
            }
        }
        Err(kube::Error::Api(status)) if status.code == 404 => return Presence::Absent,
        Err(err) => return Presence::Failed(err.to_string()),
    }
    let api: Api<DynamicObject> = Api::all_with(its.clone(), &target.api_resource);
    let mut params = ListParams::default().limit(1);
    if let Some(selector) = &target.label_selector {
        params = params.labels(selector);
    }
    match api.list_metadata(&params).await {
        Ok(_) => Presence::Present,
        Err(kube::Error::Api(status)) if status.code == 404 => Presence::Absent,
        Err(kube::Error::Api(status)) if status.code == 403 => {
            Presence::Forbidden(status.message.clone())
        }
        Err(err) => Presence::Failed(err.to_string()),
    }
}

/// Spawns the task that checks the ITS at once and then every `period`, sending each
/// result on `tx`; it ends when `tx`'s receiver is dropped (or when aborted).
pub(crate) fn spawn_checks(
    its: kube::Client,
    target: WatchTarget,
    period: Duration,
    tx: mpsc::Sender<Presence>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let presence = match tokio::time::timeout(CHECK_TIMEOUT, check(&its, &target)).await {
                Ok(presence) => presence,
                Err(_) => Presence::Failed(format!("no answer within {CHECK_TIMEOUT:?}")),
            };
            if tx.send(presence).await.is_err() {
                return;
            }
            tokio::time::sleep(period).await;
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn show(actions: &[Action]) -> Vec<String> {
        actions
            .iter()
            .map(|a| match a {
                Action::Reset(r) => format!("reset {r}"),
                Action::Synced(r) => format!("synced {r}"),
                Action::Stop(r) => format!("stop {r}"),
                Action::Start(t) => format!("start {}", t.resource),
            })
            .collect()
    }

    const WS: &str = "its:control.kubestellar.io/v1alpha1/workstatuses";

    #[test]
    fn an_appearing_crd_is_reset_then_watched() {
        let wanted = WatchTarget::work_statuses("wds1");
        let (next, actions) = transition(None, &wanted, &Presence::Present);
        assert_eq!(next.as_ref(), Some(&wanted));
        assert_eq!(
            show(&actions),
            [format!("reset {WS}"), format!("start {WS}")]
        );
        let Action::Start(started) = &actions[1] else {
            unreachable!()
        };
        assert_eq!(
            started.label_selector.as_deref(),
            Some("transport.kubestellar.io/originWdsName=wds1")
        );
    }

    #[test]
    fn a_vanishing_crd_is_stopped_then_cleared() {
        let wanted = WatchTarget::work_statuses("wds1");
        let (next, actions) = transition(Some(&wanted), &wanted, &Presence::Absent);
        assert_eq!(next, None);
        assert_eq!(
            show(&actions),
            [
                format!("stop {WS}"),
                format!("reset {WS}"),
                format!("synced {WS}")
            ]
        );
    }

    #[test]
    fn a_check_that_cannot_tell_changes_nothing() {
        let wanted = WatchTarget::work_statuses("wds1");
        for presence in [
            Presence::Forbidden("workstatuses is forbidden".into()),
            Presence::Failed("connection refused".into()),
        ] {
            let (next, actions) = transition(None, &wanted, &presence);
            assert_eq!((next, actions), (None, vec![]), "{presence:?}");
            let (next, actions) = transition(Some(&wanted), &wanted, &presence);
            assert_eq!(
                (next, actions),
                (Some(wanted.clone()), vec![]),
                "{presence:?}"
            );
        }
        // Present while watched, absent while not: nothing either.
        assert_eq!(
            transition(Some(&wanted), &wanted, &Presence::Present),
            (Some(wanted.clone()), vec![])
        );
        assert_eq!(transition(None, &wanted, &Presence::Absent), (None, vec![]));
    }

    #[test]
    fn kinds_compare_without_their_errors() {
        assert!(Presence::Failed("a".into()).same_kind(&Presence::Failed("b".into())));
        assert!(!Presence::Failed("a".into()).same_kind(&Presence::Forbidden("a".into())));
        assert!(!Presence::Present.same_kind(&Presence::Absent));
    }
}

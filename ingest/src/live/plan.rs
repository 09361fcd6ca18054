//! Moving from one watched set to another: the pure diff of two target lists into an
//! ordered list of [`Action`]s.
//!
//! The order keeps the pipeline from ever seeing "all synced" while a change is in
//! flight, and keeps a stopped watcher from writing after its resource was cleared:
//!
//! 1. `RESET` every resource about to be (re)started (new resources, the new version
//!    of a switched one, restarted ones): from here on they count as unsynced;
//! 2. stop the watchers of vanished, switched and restarted resources (and wait
//!    for them: nothing of theirs arrives later);
//! 3. `RESET` then
//! 4. `SYNCED` each vanished resource and the old version of each switched one: by
//!    the relist rule this deletes all their objects;
//! 5. start the new watchers (each begins with its own `RESET` ... `SYNCED` list).
//!
//! The first run is the same diff from nothing: a `RESET` for everything, then every
//! watcher starts.

use std::collections::BTreeMap;

use super::target::WatchTarget;
use crate::watchlog::{ResourceRef, Space};

/// One step of moving from one watched set to another.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Send a synthetic `RESET` of the resource.
    Reset(ResourceRef),
    /// Send a synthetic `SYNCED` of the resource.
    Synced(ResourceRef),
    /// Stop the resource's watcher and wait until it has stopped.
    Stop(ResourceRef),
    /// Start a watcher for the target.
    Start(WatchTarget),
}

/// What happens to one `(space, group, resource)`.
enum Change<'a> {
    Added(&'a WatchTarget),
    Removed(&'a WatchTarget),
    /// Same resource in another version.
    Switched(&'a WatchTarget, &'a WatchTarget),
    /// Same version, but watched differently (kind, scope or shape changed).
    Restarted(&'a WatchTarget, &'a WatchTarget),
}

/// The actions that take the watched set from `old` to `new`, in the order of the
/// module documentation (within each step, by `(space, group, resource)`). Targets
/// are matched by [`WatchTarget::key`]; identical targets need nothing.
pub fn plan(old: &[WatchTarget], new: &[WatchTarget]) -> Vec<Action> {
    plan_restarting(old, new, |_| false)
}

/// [`plan`], and the targets kept as they were for which `restart` is true are
/// restarted as a changed one is (`RESET`, stop, start: a relist). For a resource whose
/// CRD was deleted and created again between two discoveries: the same target, but its
/// old watch belongs to storage the API server tore down.
pub fn plan_restarting(
    old: &[WatchTarget],
    new: &[WatchTarget],
    restart: impl Fn(&WatchTarget) -> bool,
) -> Vec<Action> {
    type Key<'a> = (Space, &'a str, &'a str);
    let old: BTreeMap<Key, &WatchTarget> = old.iter().map(|t| (t.key(), t)).collect();
    let new: BTreeMap<Key, &WatchTarget> = new.iter().map(|t| (t.key(), t)).collect();

    let mut changes = Vec::new();
    for (key, &o) in &old {
        match new.get(key) {
            None => changes.push(Change::Removed(o)),
            Some(&n) if n.resource.version != o.resource.version => {
                changes.push(Change::Switched(o, n));
            }
            Some(&n) if n != o || restart(o) => changes.push(Change::Restarted(o, n)),
            Some(_) => {}
        }
    }
    changes.extend(
        new.iter()
            .filter(|(key, _)| !old.contains_key(*key))
            .map(|(_, &n)| Change::Added(n)),
    );
    changes.sort_by(|a, b| a.key().cmp(&b.key()));

    let mut actions = Vec::new();
    for change in &changes {
        if let Change::Added(n) | Change::Switched(_, n) | Change::Restarted(_, n) = change {
            actions.push(Action::Reset(n.resource.clone()));
        }
    }
    for change in &changes {
        if let Change::Removed(o) | Change::Switched(o, _) | Change::Restarted(o, _) = change {
            actions.push(Action::Stop(o.resource.clone()));
        }
    }
    for change in &changes {
        if let Change::Removed(o) | Change::Switched(o, _) = change {
            actions.push(Action::Reset(o.resource.clone()));
        }
    }
    for change in &changes {
        if let Change::Removed(o) | Change::Switched(o, _) = change {
            actions.push(Action::Synced(o.resource.clone()));
        }
    }
    for change in &changes {
        if let Change::Added(n) | Change::Switched(_, n) | Change::Restarted(_, n) = change {
            actions.push(Action::Start((*n).clone()));
        }
    }
    actions
}

impl Change<'_> {
    fn key(&self) -> (Space, &str, &str) {
        match self {
            Change::Added(t) | Change::Removed(t) | Change::Switched(t, _) => t.key(),
            Change::Restarted(t, _) => t.key(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::live::target::ObjectShape;

    fn t(group: &str, version: &str, resource: &str) -> WatchTarget {
        WatchTarget::new(
            Space::Wds,
            group,
            version,
            resource,
            "Kind",
            true,
            ObjectShape::Metadata,
        )
    }

    /// Actions as short strings: `reset wds:v1/pods`, `start wds:v1/pods`, ...
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

    #[test]
    fn first_run_resets_everything_before_starting_anything() {
        let targets = [
            WatchTarget::managed_clusters(),
            WatchTarget::binding_policies(),
            t("", "v1", "namespaces"),
            t("apps", "v1", "deployments"),
        ];
        assert_eq!(
            show(&plan(&[], &targets)),
            [
                "reset wds:v1/namespaces",
                "reset wds:apps/v1/deployments",
                "reset wds:control.kubestellar.io/v1alpha1/bindingpolicies",
                "reset its:cluster.open-cluster-management.io/v1/managedclusters",
                "start wds:v1/namespaces",
                "start wds:apps/v1/deployments",
                "start wds:control.kubestellar.io/v1alpha1/bindingpolicies",
                "start its:cluster.open-cluster-management.io/v1/managedclusters",
            ]
        );
    }

    #[test]
    fn nothing_changes_nothing() {
        let targets = [t("", "v1", "pods"), t("apps", "v1", "deployments")];
        assert!(plan(&targets, &targets).is_empty());
    }

    #[test]
    fn a_new_resource_is_reset_then_started() {
        let old = [t("", "v1", "pods")];
        let new = [t("", "v1", "pods"), t("example.com", "v1", "widgets")];
        assert_eq!(
            show(&plan(&old, &new)),
            [
                "reset wds:example.com/v1/widgets",
                "start wds:example.com/v1/widgets"
            ]
        );
    }

    #[test]
    fn a_vanished_resource_is_stopped_then_cleared() {
        let old = [t("", "v1", "pods"), t("example.com", "v1", "widgets")];
        let new = [t("", "v1", "pods")];
        assert_eq!(
            show(&plan(&old, &new)),
            [
                "stop wds:example.com/v1/widgets",
                "reset wds:example.com/v1/widgets",
                "synced wds:example.com/v1/widgets",
            ]
        );
    }

    #[test]
    fn a_version_switch_resets_the_new_version_first() {
        let old = [t("example.com", "v1beta1", "widgets")];
        let new = [t("example.com", "v1", "widgets")];
        assert_eq!(
            show(&plan(&old, &new)),
            [
                "reset wds:example.com/v1/widgets",
                "stop wds:example.com/v1beta1/widgets",
                "reset wds:example.com/v1beta1/widgets",
                "synced wds:example.com/v1beta1/widgets",
                "start wds:example.com/v1/widgets",
            ]
        );
    }

    #[test]
    fn a_changed_target_in_the_same_version_restarts() {
        let old = [t("example.com", "v1", "widgets")];
        let mut changed = t("example.com", "v1", "widgets");
        changed.api_resource.kind = "Widget".into();
        assert_eq!(
            show(&plan(&old, &[changed])),
            [
                "reset wds:example.com/v1/widgets",
                "stop wds:example.com/v1/widgets",
                "start wds:example.com/v1/widgets",
            ]
        );
    }

    #[test]
    fn a_recreated_crds_resource_restarts_and_the_others_stay() {
        let targets = [t("", "v1", "configmaps"), t("example.com", "v1", "widgets")];
        let recreated = |t: &WatchTarget| t.resource.resource == "widgets";
        assert_eq!(
            show(&plan_restarting(&targets, &targets, recreated)),
            [
                "reset wds:example.com/v1/widgets",
                "stop wds:example.com/v1/widgets",
                "start wds:example.com/v1/widgets",
            ]
        );
        // Gone from discovery (deleted, not created again): removed as before.
        assert_eq!(
            show(&plan_restarting(&targets, &targets[..1], recreated)),
            [
                "stop wds:example.com/v1/widgets",
                "reset wds:example.com/v1/widgets",
                "synced wds:example.com/v1/widgets",
            ]
        );
    }

    #[test]
    fn mixed_changes_keep_every_reset_before_any_synced() {
        let old = [
            t("a.io", "v1", "gone"),
            t("b.io", "v1alpha1", "moved"),
            t("c.io", "v1", "kept"),
        ];
        let new = [
            t("b.io", "v1", "moved"),
            t("c.io", "v1", "kept"),
            t("d.io", "v1", "fresh"),
        ];
        let actions = show(&plan(&old, &new));
        assert_eq!(
            actions,
            [
                "reset wds:b.io/v1/moved",
                "reset wds:d.io/v1/fresh",
                "stop wds:a.io/v1/gone",
                "stop wds:b.io/v1alpha1/moved",
                "reset wds:a.io/v1/gone",
                "reset wds:b.io/v1alpha1/moved",
                "synced wds:a.io/v1/gone",
                "synced wds:b.io/v1alpha1/moved",
                "start wds:b.io/v1/moved",
                "start wds:d.io/v1/fresh",
            ]
        );
    }
}

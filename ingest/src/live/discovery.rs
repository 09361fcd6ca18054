//! Which WDS resources are workload: API discovery, and the pure selection over what
//! it found (`docs/binding-semantics.md`: every resource that supports `list` and `watch`,
//! in the preferred version of its group, minus the excluded groups and resources).
//!
//! The version rule is client-go's `ServerPreferredResources`, which KubeStellar's
//! binding controller uses: a resource served in its group's preferred version is
//! watched in that version; a resource the preferred version does not serve is watched
//! in the first version (in the server's order) that serves it. Each resource is
//! watched once.
//!
//! Discovery asks `/api`, `/apis` and each group version itself rather than using
//! `kube::Discovery`, so that one broken group (an aggregated API whose service is
//! down) is reported in [`WorkloadDiscovery::failed_groups`] instead of failing the
//! whole discovery.
//!
//! With status return, discovery also looks for the WDS's StatusCollectors
//! (`control.kubestellar.io` `statuscollectors`, an excluded group otherwise, asked even
//! under an `--api-groups` filter): [`select_status_collectors`] adds their watch while
//! the WDS serves them, so a CRD installed later is picked up by the re-discovery its
//! CRD event starts, as a workload CRD is.

use std::collections::BTreeMap;

use futures::{StreamExt, TryFutureExt, stream};
use kube::Client;

use super::target::{ObjectShape, WatchTarget};
use crate::feed::{COLLECTOR_RESOURCE, POLICY_GROUP, is_excluded};
use crate::watchlog::Space;

/// How many group discoveries run at once.
const CONCURRENT_GROUPS: usize = 8;

/// One resource as discovery lists it in one version of its group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiscoveredResource {
    /// The API group, `""` for the core group.
    pub group: String,
    /// The version it was listed in.
    pub version: String,
    /// Whether `version` is the group's preferred version.
    pub preferred: bool,
    /// The name as listed: the plural, or `plural/subresource` for a subresource.
    pub resource: String,
    /// The kind.
    pub kind: String,
    /// The verbs the resource supports.
    pub verbs: Vec<String>,
    /// Whether the resource is namespaced.
    pub namespaced: bool,
}

/// The outcome of one workload discovery.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct WorkloadDiscovery {
    /// The workload resources to watch (and the StatusCollectors, when wanted and
    /// served), sorted by `(group, resource)`.
    pub targets: Vec<WatchTarget>,
    /// Groups whose discovery failed, with the error. None of their resources are in
    /// `targets`: the caller should keep watching what it watched of them
    /// ([`carry_over`]) and retry.
    pub failed_groups: BTreeMap<String, String>,
}

/// Whether workload of `group` is wanted under the `api_groups` filter (`None`: every
/// group; the core group may be named `""` or `"core"`).
pub fn group_allowed(group: &str, api_groups: Option<&[String]>) -> bool {
    api_groups.is_none_or(|groups| {
        groups
            .iter()
            .any(|g| g == group || (group.is_empty() && g == "core"))
    })
}

/// Selects the workload resources among `discovered` (listed in the server's order:
/// groups, then each group's versions in priority order): one version per
/// `(group, resource)` (the preferred version if it serves the resource, else the
/// first that does), no subresources, only resources supporting `list` and `watch`,
/// without the excluded groups and resources, and only groups `api_groups` allows
/// (core `namespaces` are always kept). Sorted by `(group, resource)`.
pub fn select_workload(
    discovered: &[DiscoveredResource],
    api_groups: Option<&[String]>,
) -> Vec<WatchTarget> {
    chosen_versions(discovered)
        .into_values()
        .filter(|d| {
            watchable(d)
                && !is_excluded(&d.group, &d.resource)
                && (group_allowed(&d.group, api_groups)
                    || (d.group.is_empty() && d.resource == "namespaces"))
        })
        .map(|d| target(d, ObjectShape::Metadata))
        .collect()
}

/// One version per `(group, resource)`, subresources left out: the group's preferred
/// version if it serves the resource, else the first that does.
fn chosen_versions(
    discovered: &[DiscoveredResource],
) -> BTreeMap<(&str, &str), &DiscoveredResource> {
    let mut chosen: BTreeMap<(&str, &str), &DiscoveredResource> = BTreeMap::new();
    for d in discovered {
        if d.resource.contains('/') {
            continue;
        }
        chosen
            .entry((d.group.as_str(), d.resource.as_str()))
            .and_modify(|seen| {
                if d.preferred && !seen.preferred {
                    *seen = d;
                }
            })
            .or_insert(d);
    }
    chosen
}

/// The WDS watch of `d`, recording `shape`.
fn target(d: &DiscoveredResource, shape: ObjectShape) -> WatchTarget {
    WatchTarget::new(
        Space::Wds,
        &d.group,
        &d.version,
        &d.resource,
        &d.kind,
        d.namespaced,
        shape,
    )
}

/// Whether `d` supports `list` and `watch`.
fn watchable(d: &DiscoveredResource) -> bool {
    let verbs = |verb: &str| d.verbs.iter().any(|v| v == verb);
    verbs("list") && verbs("watch")
}

/// The watch of the StatusCollectors (`control.kubestellar.io` `statuscollectors`,
/// with their `spec`), if `discovered` serves them (in the version chosen as for
/// workload) with `list` and `watch`.
pub fn select_status_collectors(discovered: &[DiscoveredResource]) -> Option<WatchTarget> {
    let chosen = chosen_versions(discovered);
    let d = chosen.get(&(POLICY_GROUP, COLLECTOR_RESOURCE))?;
    watchable(d).then(|| target(d, ObjectShape::MetadataAndSpec))
}

/// What discovery selects: the workload ([`select_workload`]) and, when
/// `status_collectors`, the StatusCollectors ([`select_status_collectors`], whatever
/// `api_groups` says). Sorted by `(group, resource)`.
pub fn select_targets(
    discovered: &[DiscoveredResource],
    api_groups: Option<&[String]>,
    status_collectors: bool,
) -> Vec<WatchTarget> {
    let mut targets = select_workload(discovered, api_groups);
    if status_collectors {
        targets.extend(select_status_collectors(discovered));
        targets.sort_by(|a, b| a.key().cmp(&b.key()));
    }
    targets
}

/// The next watched set after a discovery: its targets, plus the `previous` targets
/// of the groups it failed to discover (a group that cannot be asked is not a group
/// that vanished). Sorted by `(group, resource)`.
pub fn carry_over(previous: &[WatchTarget], discovery: WorkloadDiscovery) -> Vec<WatchTarget> {
    let mut targets = discovery.targets;
    targets.extend(
        previous
            .iter()
            .filter(|t| discovery.failed_groups.contains_key(&t.resource.group))
            .cloned(),
    );
    targets.sort_by(|a, b| a.key().cmp(&b.key()));
    targets.dedup_by(|a, b| a.key() == b.key());
    targets
}

/// Lists the resources of every group the filter allows (and always the core group,
/// and `control.kubestellar.io` when `status_collectors`), in every served version.
/// Fails if `/api`, `/apis` or the core group cannot be read; other groups that fail
/// are returned with their errors.
pub async fn discover(
    client: &Client,
    api_groups: Option<&[String]>,
    status_collectors: bool,
) -> Result<(Vec<DiscoveredResource>, BTreeMap<String, String>), kube::Error> {
    let core_versions = client.list_core_api_versions().await?.versions;
    let mut discovered = Vec::new();
    for (i, version) in core_versions.iter().enumerate() {
        let list = client.list_core_api_resources(version).await?;
        discovered.extend(resources_of("", version, i == 0, list));
    }

    let groups: Vec<_> = client
        .list_api_groups()
        .await?
        .groups
        .into_iter()
        .filter(|g| {
            group_allowed(&g.name, api_groups) || (status_collectors && g.name == POLICY_GROUP)
        })
        .collect();
    // Each group's versions, fetched concurrently, results kept in the server's order.
    let mut results: Vec<(usize, String, Result<Vec<DiscoveredResource>, kube::Error>)> =
        stream::iter(groups.into_iter().enumerate())
            .map(|(index, group)| async move {
                let preferred = group
                    .preferred_version
                    .as_ref()
                    .map(|v| v.version.clone())
                    .or_else(|| group.versions.first().map(|v| v.version.clone()))
                    .unwrap_or_default();
                let name = group.name.as_str();
                let versions = group.versions.iter().map(|v| {
                    let preferred = v.version == preferred;
                    client
                        .list_api_group_resources(&v.group_version)
                        .map_ok(move |list| resources_of(name, &v.version, preferred, list))
                });
                let result = futures::future::try_join_all(versions)
                    .await
                    .map(|lists| lists.into_iter().flatten().collect());
                (index, group.name.clone(), result)
            })
            .buffer_unordered(CONCURRENT_GROUPS)
            .collect()
            .await;
    results.sort_by_key(|(index, _, _)| *index);

    let mut failed = BTreeMap::new();
    for (_, group, result) in results {
        match result {
            Ok(resources) => discovered.extend(resources),
            Err(err) => {
                failed.insert(group, err.to_string());
            }
        }
    }
    Ok((discovered, failed))
}

fn resources_of(
    group: &str,
    version: &str,
    preferred: bool,
    list: k8s_openapi::apimachinery::pkg::apis::meta::v1::APIResourceList,
) -> Vec<DiscoveredResource> {
    list.resources
        .into_iter()
        .map(|r| DiscoveredResource {
            group: group.to_owned(),
            version: version.to_owned(),
            preferred,
            resource: r.name,
            kind: r.kind,
            verbs: r.verbs,
            namespaced: r.namespaced,
        })
        .collect()
}

/// Discovers the WDS's workload resources, and its StatusCollectors when
/// `status_collectors` ([`discover`] then [`select_targets`]), reporting the groups
/// that failed.
pub async fn discover_workload(
    client: &Client,
    api_groups: Option<&[String]>,
    status_collectors: bool,
) -> Result<WorkloadDiscovery, kube::Error> {
    let (discovered, failed_groups) = discover(client, api_groups, status_collectors).await?;
    Ok(WorkloadDiscovery {
        targets: select_targets(&discovered, api_groups, status_collectors),
        failed_groups,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(
        group: &str,
        version: &str,
        preferred: bool,
        resource: &str,
        verbs: &[&str],
    ) -> DiscoveredResource {
        DiscoveredResource {
            group: group.into(),
            version: version.into(),
            preferred,
            resource: resource.into(),
            kind: format!("Kind{resource}"),
            verbs: verbs.iter().map(|v| v.to_string()).collect(),
            namespaced: resource != "namespaces",
        }
    }

    const LW: &[&str] = &["get", "list", "watch"];

    fn names(targets: &[WatchTarget]) -> Vec<String> {
        targets.iter().map(|t| t.resource.to_string()).collect()
    }

    fn cluster() -> Vec<DiscoveredResource> {
        vec![
            res("", "v1", true, "namespaces", LW),
            res("", "v1", true, "configmaps", LW),
            res("", "v1", true, "pods", LW),
            res("", "v1", true, "pods/status", LW),
            res("", "v1", true, "pods/log", &["get"]),
            res("", "v1", true, "events", LW),
            res("", "v1", true, "nodes", LW),
            res("", "v1", true, "endpoints", LW),
            res("", "v1", true, "bindings", &["create"]),
            res("", "v1", true, "componentstatuses", &["get", "list"]),
            res("apps", "v1", true, "deployments", LW),
            res("apps", "v1", true, "deployments/scale", LW),
            res("autoscaling", "v2", true, "horizontalpodautoscalers", LW),
            res("autoscaling", "v1", false, "horizontalpodautoscalers", LW),
            res("events.k8s.io", "v1", true, "events", LW),
            res("coordination.k8s.io", "v1", true, "leases", LW),
            res("discovery.k8s.io", "v1", true, "endpointslices", LW),
            res("storage.k8s.io", "v1", true, "csinodes", LW),
            res("storage.k8s.io", "v1", true, "storageclasses", LW),
            res(
                "control.kubestellar.io",
                "v1alpha1",
                true,
                "bindingpolicies",
                LW,
            ),
            res("control.kubestellar.io", "v1alpha1", true, "bindings", LW),
            res(
                "authorization.k8s.io",
                "v1",
                true,
                "subjectaccessreviews",
                &["create"],
            ),
            // A CRD group: the preferred version is listed second; `gadgets` only in v1beta1.
            res("example.com", "v1beta1", false, "widgets", LW),
            res("example.com", "v1beta1", false, "gadgets", LW),
            res("example.com", "v1", true, "widgets", LW),
        ]
    }

    #[test]
    fn selection_follows_the_spec() {
        assert_eq!(
            names(&select_workload(&cluster(), None)),
            [
                "wds:v1/configmaps",
                "wds:v1/namespaces",
                "wds:v1/pods",
                "wds:apps/v1/deployments",
                "wds:autoscaling/v2/horizontalpodautoscalers",
                "wds:example.com/v1beta1/gadgets",
                "wds:example.com/v1/widgets",
                "wds:storage.k8s.io/v1/storageclasses",
            ]
        );
    }

    #[test]
    fn targets_carry_kind_scope_and_metadata_shape() {
        let targets = select_workload(&cluster(), None);
        let ns = targets
            .iter()
            .find(|t| t.resource.resource == "namespaces")
            .unwrap();
        assert!(!ns.namespaced);
        assert_eq!(ns.api_resource.api_version, "v1");
        assert_eq!(ns.api_resource.kind, "Kindnamespaces");
        assert_eq!(ns.shape, ObjectShape::Metadata);
        let w = targets
            .iter()
            .find(|t| t.resource.resource == "widgets")
            .unwrap();
        assert!(w.namespaced);
        assert_eq!(w.api_resource.api_version, "example.com/v1");
    }

    #[test]
    fn group_filter_keeps_namespaces() {
        let only_apps = ["apps".to_string()];
        assert_eq!(
            names(&select_workload(&cluster(), Some(&only_apps))),
            ["wds:v1/namespaces", "wds:apps/v1/deployments"]
        );
        for core in ["", "core"] {
            let groups = [core.to_string(), "example.com".to_string()];
            assert_eq!(
                names(&select_workload(&cluster(), Some(&groups))),
                [
                    "wds:v1/configmaps",
                    "wds:v1/namespaces",
                    "wds:v1/pods",
                    "wds:example.com/v1beta1/gadgets",
                    "wds:example.com/v1/widgets",
                ],
                "core named {core:?}"
            );
        }
        // Asking for an excluded group does not include it.
        let kubestellar = ["control.kubestellar.io".to_string()];
        assert_eq!(
            names(&select_workload(&cluster(), Some(&kubestellar))),
            ["wds:v1/namespaces"]
        );
        assert!(group_allowed("", Some(&["core".to_string()])));
        assert!(!group_allowed("core", Some(&["".to_string()])));
    }

    #[test]
    fn status_collectors_are_selected_when_wanted_whatever_the_group_filter() {
        let mut discovered = cluster();
        let collectors = "wds:control.kubestellar.io/v1alpha1/statuscollectors";
        // Not served: nothing to watch, wanted or not.
        assert_eq!(select_status_collectors(&discovered), None);
        assert_eq!(
            select_targets(&discovered, None, true),
            select_workload(&discovered, None)
        );
        discovered.push(res(
            "control.kubestellar.io",
            "v1alpha1",
            true,
            "statuscollectors",
            LW,
        ));
        discovered.push(res(
            "control.kubestellar.io",
            "v1alpha1",
            true,
            "statuscollectors/status",
            LW,
        ));
        // Served but not wanted (status return off): an excluded group's resource.
        assert!(!names(&select_targets(&discovered, None, false)).contains(&collectors.into()));
        let all = select_targets(&discovered, None, true);
        let t = all
            .iter()
            .find(|t| t.resource.to_string() == collectors)
            .unwrap();
        assert_eq!(t.shape, ObjectShape::MetadataAndSpec);
        assert_eq!(
            t.api_resource.api_version,
            "control.kubestellar.io/v1alpha1"
        );
        assert_eq!(
            crate::feed::classify(&t.resource),
            crate::feed::ObjectKind::Collector
        );
        // Sorted among the workload; the group's other resources stay excluded.
        let mut sorted = all.clone();
        sorted.sort_by(|a, b| a.key().cmp(&b.key()));
        assert_eq!(all, sorted);
        assert_eq!(
            all.iter()
                .filter(|t| t.resource.group == "control.kubestellar.io")
                .count(),
            1
        );
        // A group filter does not leave them out.
        let only_apps = ["apps".to_string()];
        assert_eq!(
            names(&select_targets(&discovered, Some(&only_apps), true)),
            [
                "wds:v1/namespaces",
                "wds:apps/v1/deployments",
                "wds:control.kubestellar.io/v1alpha1/statuscollectors",
            ]
        );
        // Listed but not watchable: not selected.
        let last = discovered.len() - 2;
        discovered[last].verbs = vec!["get".into()];
        assert_eq!(select_status_collectors(&discovered), None);
    }

    #[test]
    fn the_chosen_version_decides_the_verbs() {
        // Preferred version cannot be watched: the resource is not workload, even
        // though another version could be (client-go picks the version first).
        let discovered = [
            res("x.io", "v2", true, "things", &["get", "list"]),
            res("x.io", "v1", false, "things", LW),
        ];
        assert!(select_workload(&discovered, None).is_empty());
    }

    #[test]
    fn failed_groups_keep_their_previous_targets() {
        let previous = select_workload(&cluster(), None);
        // example.com failed this time; apps vanished.
        let now: Vec<_> = cluster()
            .into_iter()
            .filter(|d| d.group != "example.com" && d.group != "apps")
            .collect();
        let discovery = WorkloadDiscovery {
            targets: select_workload(&now, None),
            failed_groups: BTreeMap::from([("example.com".into(), "503".into())]),
        };
        assert_eq!(
            names(&carry_over(&previous, discovery)),
            [
                "wds:v1/configmaps",
                "wds:v1/namespaces",
                "wds:v1/pods",
                "wds:autoscaling/v2/horizontalpodautoscalers",
                "wds:example.com/v1beta1/gadgets",
                "wds:example.com/v1/widgets",
                "wds:storage.k8s.io/v1/storageclasses",
            ]
        );
    }
}

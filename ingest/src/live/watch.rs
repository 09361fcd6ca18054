//! One watcher task per [`WatchTarget`]: kube-runtime's watcher with the default
//! backoff, its events mapped to [`WatchEvent`]s and sent on the channel.

use std::fmt::Debug;
use std::pin::pin;

use futures::{Stream, StreamExt};
use kube::core::{DynamicObject, PartialObjectMeta};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use kube::{Api, Client};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::Instrument;

use super::event::{full_event, metadata_event, now_ms};
use super::target::{ObjectShape, WatchTarget};
use crate::feed::{ObjectKind, classify};
use crate::watchlog::WatchEvent;

/// Maps one watcher event of a target at a receive time.
type MapFn<K> = fn(&WatchTarget, Event<K>, i64) -> WatchEvent;

/// Spawns the watcher task of `target` on `client`. It runs until aborted or until
/// `tx` is closed; watch errors are logged and retried with backoff (a `410 Gone`
/// makes the watcher relist, which arrives as `RESET` ... `SYNCED`).
pub(crate) fn spawn(
    target: WatchTarget,
    client: Client,
    tx: mpsc::Sender<WatchEvent>,
) -> JoinHandle<()> {
    let config = list_config(&target);
    match target.shape {
        ObjectShape::Metadata => {
            // `PartialObjectMeta` makes the watcher send metadata-only requests.
            let api: Api<PartialObjectMeta<DynamicObject>> =
                Api::all_with(client, &target.api_resource);
            let stream = watcher::watcher(api, config).default_backoff();
            let span = watch_span(&target);
            tokio::spawn(pump(stream, target, tx, metadata_event).instrument(span))
        }
        ObjectShape::MetadataAndSpec | ObjectShape::WorkStatus => {
            let api: Api<DynamicObject> = Api::all_with(client, &target.api_resource);
            let stream = watcher::watcher(api, config).default_backoff();
            let span = watch_span(&target);
            tokio::spawn(pump(stream, target, tx, full_event).instrument(span))
        }
    }
}

/// The span of `target`'s watch task: every log of the task, kube-runtime's own
/// included, carries the resource.
fn watch_span(target: &WatchTarget) -> tracing::Span {
    tracing::info_span!("watch", resource = %target.resource)
}

/// The watcher configuration of `target`. Workload resources (the bulk of every list)
/// are listed from the API server's watch cache (`resourceVersion=0`, kube-runtime's
/// `any_semantic()`): no quorum read of etcd, and no paging of a large list through
/// etcd. Such a list may be a little older than a quorum read would be; the watch that
/// follows brings it up to date, and before the first publish nothing is published
/// anyway. WECs and BindingPolicies, which are small and move whole Bindings, keep the
/// most recent (quorum) list, so a relist of them never goes back in time. WorkStatuses
/// are listed like workload. The target's label selector, if any, filters server-side.
fn list_config(target: &WatchTarget) -> watcher::Config {
    let mut config = watcher::Config::default();
    if let Some(selector) = &target.label_selector {
        config = config.labels(selector);
    }
    match classify(&target.resource) {
        ObjectKind::Inventory | ObjectKind::Policy | ObjectKind::Collector => config,
        ObjectKind::Workload
        | ObjectKind::WorkStatus
        | ObjectKind::StatusWrite
        | ObjectKind::Content
        | ObjectKind::Ignored => config.any_semantic(),
    }
}

async fn pump<K: Debug>(
    stream: impl Stream<Item = Result<Event<K>, watcher::Error>>,
    target: WatchTarget,
    tx: mpsc::Sender<WatchEvent>,
    map: MapFn<K>,
) {
    tracing::debug!("watch starts");
    let mut stream = pin!(stream);
    while let Some(item) = stream.next().await {
        match item {
            Ok(event) => {
                let event = map(&target, event, now_ms());
                if tx.send(event).await.is_err() {
                    tracing::debug!("event receiver closed; watch stops");
                    return;
                }
            }
            Err(watcher::Error::WatchError(status)) if status.code == 410 => {
                tracing::info!("watch expired (410 Gone); relisting");
            }
            Err(err) => {
                tracing::warn!(error = %err, "watch failed; retrying with backoff");
            }
        }
    }
    // The backoff never gives up, so a watcher stream does not end.
    tracing::warn!("watch stream ended");
}

#[cfg(test)]
mod tests {
    use kube::runtime::watcher::ListSemantic;

    use super::*;
    use crate::live::target::ObjectShape;
    use crate::watchlog::Space;

    #[test]
    fn workload_lists_come_from_the_watch_cache_wecs_and_policies_from_a_quorum_read() {
        let pods = WatchTarget::new(
            Space::Wds,
            "",
            "v1",
            "pods",
            "Pod",
            true,
            ObjectShape::Metadata,
        );
        assert_eq!(list_config(&pods).list_semantic, ListSemantic::Any);
        for target in [
            WatchTarget::managed_clusters(),
            WatchTarget::binding_policies(),
        ] {
            assert_eq!(list_config(&target).list_semantic, ListSemantic::MostRecent);
            assert_eq!(list_config(&target).label_selector, None);
        }
    }

    #[test]
    fn work_statuses_are_selected_by_their_wds_server_side() {
        let config = list_config(&WatchTarget::work_statuses("wds1"));
        assert_eq!(
            config.label_selector.as_deref(),
            Some("transport.kubestellar.io/originWdsName=wds1")
        );
        assert_eq!(config.list_semantic, ListSemantic::Any);
    }
}

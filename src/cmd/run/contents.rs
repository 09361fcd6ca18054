//! Fetching workload objects' content for the StatusCollectors that read `obj`
//! (`docs/status-semantics.md`): the engine asks for an object
//! (`EpochOutput::content_requests`), a task GETs it from the WDS and sends the answer
//! into the engine's event channel as a `binderyobjectcontents` line, so that it is
//! recorded and replayed like a watch event. At most [`CONCURRENT_FETCHES`] GETs at
//! once, one per object at a time; a failed GET is retried with backoff
//! ([`ATTEMPTS`] in all), then logged and left until the engine asks again (the
//! object's next change). Never a Secret's `data` or `stringData`, and never
//! `managedFields`.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bindery_engine::{ObjectContent, ObjectKey, WorkloadRef};
use bindery_ingest::feed::{CONTENT_RESOURCE, POLICY_GROUP};
use bindery_ingest::live::{CancellationToken, now_ms};
use bindery_ingest::{ResourceRef, Space, WatchEvent, object_content_line};
use kube::api::DynamicObject;
use serde_json::Value;
use tokio::sync::{Semaphore, mpsc};

/// GETs in flight at once.
pub(super) const CONCURRENT_FETCHES: usize = 4;
/// Attempts per object, the first included.
pub(super) const ATTEMPTS: u32 = 5;
/// The backoff before the first retry (doubling).
const FIRST_BACKOFF: Duration = Duration::from_millis(500);

/// Where the engine loop sends the objects whose content it wants.
pub(crate) type ContentRequests = mpsc::UnboundedSender<WorkloadRef>;

/// Starts the fetcher: GETs through `wds` and sends the lines into `events`, until
/// `shutdown` (then it drops its sender, so the engine's channel can close).
pub(super) fn spawn(
    wds: kube::Client,
    events: mpsc::Sender<WatchEvent>,
    shutdown: CancellationToken,
) -> ContentRequests {
    let (tx, mut rx) = mpsc::unbounded_channel::<WorkloadRef>();
    tokio::spawn(async move {
        let slots = Arc::new(Semaphore::new(CONCURRENT_FETCHES));
        let in_flight = Arc::new(Mutex::new(HashSet::<String>::new()));
        loop {
            let object = tokio::select! {
                o = rx.recv() => match o { Some(o) => o, None => return },
                () = shutdown.cancelled() => return,
            };
            let key = key_of(&object);
            if !in_flight.lock().expect("not poisoned").insert(key.clone()) {
                // One GET at a time per object: the one in flight reads it after the ask.
                continue;
            }
            let Ok(slot) = slots.clone().acquire_owned().await else {
                return;
            };
            let (wds, events, in_flight, shutdown) = (
                wds.clone(),
                events.clone(),
                in_flight.clone(),
                shutdown.clone(),
            );
            tokio::spawn(async move {
                let _slot = slot;
                let line = tokio::select! {
                    line = fetch(&wds, &object) => line,
                    () = shutdown.cancelled() => None,
                };
                in_flight.lock().expect("not poisoned").remove(&key);
                if let Some(event) = line {
                    // The engine may be gone at shutdown.
                    let _ = events.send(event).await;
                }
            });
        }
    });
    tx
}

fn key_of(o: &WorkloadRef) -> String {
    let (group, resource, namespace, name) = o.identity();
    format!("{group}/{resource}/{namespace}/{name}")
}

/// GETs `object` (retrying) into its content line; `None` when every attempt failed.
async fn fetch(wds: &kube::Client, object: &WorkloadRef) -> Option<WatchEvent> {
    let api = bindery_sink::workload_api(wds.clone(), object);
    let key = ObjectKey {
        group: object.group.clone(),
        resource: object.resource.clone(),
        namespace: object.namespace.clone(),
        name: object.name.clone(),
    };
    let mut backoff = FIRST_BACKOFF;
    for attempt in 1..=ATTEMPTS {
        match api.get_opt(&object.name).await {
            Ok(found) => {
                let content = found.map(|o| content_of(&object.group, &object.resource, o));
                let (event_type, line) = object_content_line(&key, content.as_ref());
                tracing::debug!(object = %key_of(object), found = content.is_some(), "object content fetched");
                return Some(WatchEvent {
                    ts: now_ms(),
                    resource: ResourceRef::new(
                        Space::Wds,
                        POLICY_GROUP,
                        "v1alpha1",
                        CONTENT_RESOURCE,
                    ),
                    event_type,
                    object: Some(line),
                });
            }
            Err(e) if attempt < ATTEMPTS => {
                tracing::warn!(object = %key_of(object), error = %e, retry_in = ?backoff, "fetching an object's content (for a StatusCollector reading obj)");
                tokio::time::sleep(backoff).await;
                backoff *= 2;
            }
            Err(e) => {
                tracing::error!(object = %key_of(object), error = %e, attempts = ATTEMPTS,
                    "cannot fetch an object's content: its CombinedStatuses wait for its next change");
            }
        }
    }
    None
}

/// What `obj` sees of a fetched object: all of it but `metadata.managedFields`, and
/// for a core Secret neither `data` nor `stringData`.
fn content_of(group: &str, resource: &str, object: DynamicObject) -> ObjectContent {
    let resource_version = object.metadata.resource_version.clone().unwrap_or_default();
    let mut value = serde_json::to_value(object).unwrap_or(Value::Null);
    if let Some(meta) = value.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("managedFields");
    }
    if group.is_empty()
        && resource == "secrets"
        && let Some(map) = value.as_object_mut()
    {
        map.remove("data");
        map.remove("stringData");
    }
    ObjectContent {
        resource_version,
        object: value,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn content_leaves_out_managed_fields_and_a_secrets_data() {
        let object = |kind: &str| -> DynamicObject {
            serde_json::from_value(json!({
                "apiVersion": "v1", "kind": kind,
                "metadata": {"name": "x", "namespace": "ns", "resourceVersion": "9",
                             "managedFields": [{"manager": "kubectl"}]},
                "data": {"password": "c2VjcmV0"},
            }))
            .unwrap()
        };
        let secret = content_of("", "secrets", object("Secret"));
        assert_eq!(secret.resource_version, "9");
        assert_eq!(secret.object.get("data"), None);
        assert_eq!(secret.object["metadata"].get("managedFields"), None);
        assert_eq!(secret.object["metadata"]["name"], "x");
        let config = content_of("", "configmaps", object("ConfigMap"));
        assert_eq!(config.object["data"]["password"], "c2VjcmV0");
        assert_eq!(config.object["metadata"].get("managedFields"), None);
    }
}

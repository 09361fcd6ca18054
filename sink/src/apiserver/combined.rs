//! CombinedStatus objects (`docs/status-semantics.md`): the sink's view of the stored
//! ones, kept by a watch of those carrying KubeStellar's `binding-policy` label, and
//! their writes. A CombinedStatus is created when missing, patched when its labels,
//! owner reference or `results` differ from what the engine computed (other labels are
//! removed, as KubeStellar does; annotations and finalizers others put on it are kept),
//! and deleted when the engine has none of its name, only if it carries all five of
//! KubeStellar's labels. One changed or deleted by another writer while no write of it
//! is queued is drift, told to the caller ([`SinkEvent::CombinedDrift`]) to be written
//! again, with the Bindings' fight backoff.
//!
//! Also here: the StatusCollectors' `status` (`observedGeneration` and `errors`), a
//! JSON merge patch of the status subresource, written when it changes.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use bindery_engine::collector::status::{LABELS, REPORT_NAMESPACE};
use futures::StreamExt;
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, Patch, PostParams};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use serde_json::{Map, Value, json};
use tokio::time::Instant;
use tracing::{Span, debug, error, info, warn};

use super::dispatch::{Key, Shared, State};
use super::error::{describe, status_code};
use super::observer::{WriteObject, WriteReport, WriteResult};
use super::stored::{Fight, SinkEvent, record_newer};
use super::writer::{Writer, is_not_leader};

/// `control.kubestellar.io/v1alpha1`.
const GROUP_VERSION: &str = "control.kubestellar.io/v1alpha1";

/// The CombinedStatus resource.
pub(crate) fn combined_resource() -> ApiResource {
    ApiResource {
        group: "control.kubestellar.io".into(),
        version: "v1alpha1".into(),
        api_version: GROUP_VERSION.into(),
        kind: "CombinedStatus".into(),
        plural: "combinedstatuses".into(),
    }
}

/// The StatusCollector resource.
fn collector_resource() -> ApiResource {
    ApiResource {
        group: "control.kubestellar.io".into(),
        version: "v1alpha1".into(),
        api_version: GROUP_VERSION.into(),
        kind: "StatusCollector".into(),
        plural: "statuscollectors".into(),
    }
}

/// What one CombinedStatus must be.
#[derive(Clone, Debug, PartialEq)]
pub struct DesiredCombined {
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
    /// The whole object as the engine renders it (`CombinedResult::to_json`), or `None`
    /// when it must not exist.
    pub object: Option<Value>,
}

impl DesiredCombined {
    /// Its key in the queue, the logs and [`SinkEvent::CombinedDrift`]: `namespace/name`.
    pub fn key(&self) -> String {
        combined_key(&self.namespace, &self.name)
    }
}

/// `namespace/name`.
pub fn combined_key(namespace: &str, name: &str) -> String {
    format!("{namespace}/{name}")
}

/// What a StatusCollector's `status` must be.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DesiredCollectorStatus {
    /// The collector's name.
    pub name: String,
    /// The generation of the spec checked.
    pub observed_generation: i64,
    /// What is wrong with it (empty: valid).
    pub errors: Vec<String>,
}

/// The part of a CombinedStatus Bindery owns: its labels, owner references and
/// `results` (absent and empty alike), compared whole.
fn owned_part(obj: &Value) -> Value {
    let meta = &obj["metadata"];
    let or_empty = |v: &Value, empty: Value| if v.is_null() { empty } else { v.clone() };
    json!({
        "labels": or_empty(&meta["labels"], json!({})),
        "ownerReferences": or_empty(&meta["ownerReferences"], json!([])),
        "results": or_empty(&obj["results"], json!([])),
    })
}

/// [`owned_part`] of a stored CombinedStatus, from its typed metadata (serializing the
/// whole object, its `managedFields` included, cost more than the rest of a write).
fn stored_owned_part(obj: &DynamicObject) -> Value {
    let meta = &obj.metadata;
    let labels = meta.labels.as_ref().map_or_else(|| json!({}), |l| json!(l));
    let owners = meta
        .owner_references
        .as_ref()
        .and_then(|o| serde_json::to_value(o).ok())
        .unwrap_or_else(|| json!([]));
    let results = match obj.data.get("results") {
        None | Some(Value::Null) => json!([]),
        Some(results) => results.clone(),
    };
    json!({"labels": labels, "ownerReferences": owners, "results": results})
}

/// Whether `labels` holds all five of KubeStellar's CombinedStatus labels: only such a
/// CombinedStatus is Bindery's to delete.
fn is_kubestellars(labels: &Value) -> bool {
    LABELS.iter().all(|l| labels.get(l).is_some())
}

/// One stored CombinedStatus as the sink knows it.
#[derive(Clone, Debug)]
pub(crate) struct StoredCombined {
    /// [`owned_part`] of it, or `None` when unknown (after a failed write).
    owned: Option<Arc<Value>>,
    /// Its label keys (a patch removes those Bindery does not want).
    label_keys: Vec<String>,
    /// It carries all five labels.
    managed: bool,
    /// Its `resourceVersion` as a number, when it is one.
    resource_version: Option<u64>,
    /// When the sink last learned of it.
    seen: Instant,
}

impl StoredCombined {
    fn from_object(obj: &DynamicObject) -> Option<(String, StoredCombined)> {
        let namespace = obj.metadata.namespace.as_deref()?;
        let name = obj.metadata.name.as_deref()?;
        let owned = stored_owned_part(obj);
        let labels = &owned["labels"];
        let entry = StoredCombined {
            label_keys: labels
                .as_object()
                .map(|m| m.keys().cloned().collect())
                .unwrap_or_default(),
            managed: is_kubestellars(labels),
            owned: Some(Arc::new(owned)),
            resource_version: obj.metadata.resource_version.as_deref()?.parse().ok(),
            seen: Instant::now(),
        };
        Some((combined_key(namespace, name), entry))
    }
}

/// The sink's CombinedStatus state (part of the dispatcher's [`State`]).
#[derive(Debug, Default)]
pub(crate) struct CombinedState {
    /// The stored CombinedStatuses carrying the `binding-policy` label, by key.
    stored: HashMap<String, StoredCombined>,
    /// What the sink last set out to store per key (`None`: nothing).
    wanted: HashMap<String, Option<Arc<Value>>>,
    /// The watch has listed them once.
    pub(crate) synced: bool,
    /// CombinedStatuses another writer keeps changing.
    fights: HashMap<String, Fight>,
    /// Drift told and not yet written again.
    restoring: HashSet<String>,
    /// What the sink last wrote into each StatusCollector's status.
    pub(crate) collectors: HashMap<String, DesiredCollectorStatus>,
}

impl CombinedState {
    /// Forgets what was wanted and fought over (a leadership change: the other writer
    /// in between was the leader) and the collector statuses written.
    pub(crate) fn forget(&mut self) {
        self.wanted.clear();
        self.fights.clear();
        self.restoring.clear();
        self.collectors.clear();
    }

    /// Takes in what is stored under `key` (`None`: nothing) unless a newer version is
    /// known. Returns false when it kept the newer one.
    fn record(&mut self, key: &str, entry: Option<StoredCombined>) -> bool {
        record_newer(&mut self.stored, key, entry, |e| e.resource_version)
    }

    /// The stored CombinedStatuses, by key, each with whether it carries all five labels.
    pub(crate) fn stored(&self) -> Vec<(String, bool)> {
        let mut out: Vec<(String, bool)> = self
            .stored
            .iter()
            .map(|(k, e)| (k.clone(), e.managed))
            .collect();
        out.sort_unstable();
        out
    }
}

/// Another writer changed or deleted a CombinedStatus: write it again after `delay`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CombinedDrift {
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
    /// The fight backoff.
    pub delay: Duration,
}

impl State {
    /// Takes in what the watch says is stored under `key`; returns the drift it makes.
    fn observe_combined(&mut self, key: &str, entry: Option<StoredCombined>) -> Option<Duration> {
        let c = &mut self.combined;
        if entry.is_none() && !c.stored.contains_key(key) {
            return None;
        }
        let managed = entry.as_ref().is_some_and(|e| e.managed);
        let owned = entry.as_ref().and_then(|e| e.owned.clone());
        if !c.record(key, entry) {
            return None;
        }
        let drifted = match c.wanted.get(key) {
            Some(Some(want)) => owned.as_ref() != Some(want),
            Some(None) => owned.is_some() && managed,
            None => false,
        };
        let queued = Key::Combined(key.to_string());
        let writing = self.queue.is_pending(&queued) || self.queue.is_in_flight(&queued);
        let c = &mut self.combined;
        if !drifted || !self.leading || writing || c.restoring.contains(key) {
            return None;
        }
        c.restoring.insert(key.to_string());
        let fight = Fight::next(c.fights.get(key).copied(), Instant::now());
        c.fights.insert(key.to_string(), fight);
        Some(fight.delay)
    }

    /// A write of `key` was submitted: drift from now on is a new round.
    pub(crate) fn combined_submitted(&mut self, key: &str) {
        self.combined.restoring.remove(key);
    }
}

impl Shared {
    fn observed_combined(&self, key: &str, entry: Option<StoredCombined>) {
        let delay = self.lock().observe_combined(key, entry);
        if let Some(delay) = delay {
            self.combined_drifted(key, delay);
        }
    }

    fn relisted_combined(&self, listed: HashMap<String, StoredCombined>, began: Instant) {
        let mut state = self.lock();
        let vanished: Vec<String> = state
            .combined
            .stored
            .iter()
            .filter(|(k, e)| !listed.contains_key(*k) && e.seen < began)
            .map(|(k, _)| k.clone())
            .collect();
        let mut drifts = Vec::new();
        for key in vanished {
            drifts.extend(state.observe_combined(&key, None).map(|d| (key, d)));
        }
        for (key, entry) in listed {
            drifts.extend(state.observe_combined(&key, Some(entry)).map(|d| (key, d)));
        }
        state.combined.synced = true;
        drop(state);
        for (key, delay) in drifts {
            self.combined_drifted(&key, delay);
        }
    }

    fn combined_drifted(&self, key: &str, delay: Duration) {
        super::stats::bump(&self.counters.drift);
        warn!(
            combined_status = key,
            restore_in = ?delay,
            "CombinedStatus changed or deleted by another writer: restoring it"
        );
        let (namespace, name) = key.split_once('/').unwrap_or(("", key));
        self.tell(SinkEvent::CombinedDrift(CombinedDrift {
            namespace: namespace.to_string(),
            name: name.to_string(),
            delay,
        }));
    }
}

/// Watches the CombinedStatuses carrying the `binding-policy` label into `shared` until
/// the task is aborted. Where the WDS does not serve them (no CRD), the watch retries
/// with backoff and the sink never counts them as listed: none is written.
pub(crate) async fn watch(shared: Arc<Shared>, client: kube::Client) {
    let api: Api<DynamicObject> = Api::all_with(client, &combined_resource());
    let config = watcher::Config::default().labels(LABELS[4]).any_semantic();
    let mut relist: Option<(HashMap<String, StoredCombined>, Instant)> = None;
    let mut failures = 0u32;
    let stream = watcher::watcher(api, config).default_backoff();
    futures::pin_mut!(stream);
    while let Some(event) = stream.next().await {
        match event {
            Ok(Event::Init) => relist = Some((HashMap::new(), Instant::now())),
            Ok(Event::InitApply(obj)) => {
                if let (Some((listed, _)), Some((key, entry))) =
                    (relist.as_mut(), StoredCombined::from_object(&obj))
                {
                    listed.insert(key, entry);
                }
            }
            Ok(Event::InitDone) => {
                let (listed, began) = relist
                    .take()
                    .unwrap_or_else(|| (HashMap::new(), Instant::now()));
                if failures > 0 {
                    info!("watching the CombinedStatuses again");
                    failures = 0;
                }
                debug!(
                    combined_statuses = listed.len(),
                    "listed the stored CombinedStatuses"
                );
                shared.relisted_combined(listed, began);
            }
            Ok(Event::Apply(obj)) => {
                if let Some((key, entry)) = StoredCombined::from_object(&obj) {
                    shared.observed_combined(&key, Some(entry));
                }
            }
            Ok(Event::Delete(obj)) => {
                if let (Some(ns), Some(name)) = (&obj.metadata.namespace, &obj.metadata.name) {
                    shared.observed_combined(&combined_key(ns, name), None);
                }
            }
            Err(e) => {
                failures += 1;
                // A WDS without the CRD fails every attempt: say so once.
                if failures == 1 {
                    warn!(error = %e, "watching the CombinedStatuses (retrying with backoff; none is written until they are listed)");
                } else {
                    debug!(error = %e, failures, "watching the CombinedStatuses");
                }
            }
        }
    }
    info!("the CombinedStatus watch ended");
}

/// The JSON merge patch that takes a stored CombinedStatus with labels `stored_labels`
/// to `desired`: labels (Bindery's five, the others removed), owner references and
/// `results` (removed when empty), each replaced whole.
fn combined_patch(desired: &Value, stored_labels: &[String]) -> Value {
    let mut labels: Map<String, Value> = stored_labels
        .iter()
        .map(|k| (k.clone(), Value::Null))
        .collect();
    if let Some(want) = desired["metadata"]["labels"].as_object() {
        labels.extend(want.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
    json!({
        "metadata": {
            "labels": labels,
            "ownerReferences": desired["metadata"]["ownerReferences"],
        },
        "results": desired.get("results").cloned().unwrap_or(Value::Null),
    })
}

/// How a CombinedStatus write went wrong.
enum Failure {
    NotLeader,
    Failed(String),
}

impl Writer {
    fn combined_api(&self, namespace: &str) -> Api<DynamicObject> {
        Api::namespaced_with(self.client(), namespace, &combined_resource())
    }

    /// Writes `desired` unless the stored CombinedStatus already is so.
    pub(crate) async fn apply_combined(&self, desired: &DesiredCombined) {
        let key = desired.key();
        let want = desired.object.as_ref().map(|o| Arc::new(owned_part(o)));
        let stored = {
            let mut state = self.shared.lock();
            let c = &mut state.combined;
            c.wanted.insert(key.clone(), want.clone());
            c.stored.get(&key).cloned()
        };
        let started = Instant::now();
        let result = match (&desired.object, &stored) {
            (None, None) => return self.combined_done(&key, WriteResult::Unchanged, None),
            (None, Some(s)) if !s.managed => {
                debug!(combined_status = %key, "not carrying KubeStellar's five labels: left alone");
                return self.combined_done(&key, WriteResult::Unchanged, None);
            }
            (None, Some(_)) => self.delete_combined(desired).await.map(|()| None),
            (Some(_), Some(s)) if s.owned.is_some() && s.owned == want => {
                return self.combined_done(&key, WriteResult::Unchanged, None);
            }
            (Some(obj), stored) => self
                .put_combined(desired, obj, stored.as_ref())
                .await
                .map(Some),
        };
        let latency = Some(started.elapsed());
        match result {
            Ok(written) => {
                let deleted = written.is_none();
                let entry = written.as_ref().and_then(StoredCombined::from_object);
                self.shared
                    .lock()
                    .combined
                    .record(&key, entry.map(|(_, e)| e));
                let result = if deleted {
                    WriteResult::Deleted
                } else {
                    WriteResult::Applied
                };
                debug!(combined_status = %key, ?latency, result = result.as_str(), "CombinedStatus written");
                self.combined_done(&key, result, latency);
            }
            Err(failure) => {
                if let Some(entry) = self.shared.lock().combined.stored.get_mut(&key) {
                    entry.owned = None;
                }
                match failure {
                    Failure::NotLeader => self.combined_done(&key, WriteResult::Dropped, None),
                    Failure::Failed(message) => {
                        error!(combined_status = %key, error = %message, "CombinedStatus cannot be written");
                        self.combined_done(&key, WriteResult::Failed, latency);
                    }
                }
            }
        }
    }

    async fn delete_combined(&self, desired: &DesiredCombined) -> Result<(), Failure> {
        let api = self.combined_api(&desired.namespace);
        let key = desired.key();
        let params = DeleteParams::default();
        match self
            .write_request("delete", &key, || api.delete(&desired.name, &params))
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if status_code(&e) == Some(404) => Ok(()),
            Err(e) => Err(failure(e)),
        }
    }

    /// Patches the stored one, or creates it (creating the `kubestellar-report`
    /// namespace first when it is missing); switches when the server says the sink
    /// guessed wrong.
    async fn put_combined(
        &self,
        desired: &DesiredCombined,
        obj: &Value,
        stored: Option<&StoredCombined>,
    ) -> Result<DynamicObject, Failure> {
        let api = self.combined_api(&desired.namespace);
        let key = desired.key();
        let mut labels = stored.map(|s| s.label_keys.clone());
        let mut namespace_made = false;
        for _ in 0..3 {
            let result = match &labels {
                Some(keys) => {
                    let patch = Patch::Merge(combined_patch(obj, keys));
                    let params = self.patch_params();
                    self.write_request("patch", &key, || api.patch(&desired.name, &params, &patch))
                        .await
                }
                None => {
                    let body: DynamicObject = serde_json::from_value(obj.clone()).map_err(|e| {
                        Failure::Failed(format!("the CombinedStatus is not an object: {e}"))
                    })?;
                    let params = PostParams {
                        field_manager: Some(self.config.field_manager.clone()),
                        ..PostParams::default()
                    };
                    self.write_request("create", &key, || api.create(&params, &body))
                        .await
                }
            };
            match result {
                Ok(written) => return Ok(written),
                // Not there after all: create it.
                Err(e) if labels.is_some() && status_code(&e) == Some(404) => labels = None,
                // There after all: read its labels, then patch it.
                Err(e) if labels.is_none() && status_code(&e) == Some(409) => {
                    let current = self
                        .write_request("get", &key, || api.get(&desired.name))
                        .await
                        .map_err(failure)?;
                    labels = Some(
                        current
                            .metadata
                            .labels
                            .unwrap_or_default()
                            .into_keys()
                            .collect(),
                    );
                }
                Err(e)
                    if labels.is_none()
                        && status_code(&e) == Some(404)
                        && desired.namespace == REPORT_NAMESPACE
                        && !namespace_made =>
                {
                    self.create_report_namespace().await.map_err(failure)?;
                    namespace_made = true;
                }
                Err(e) => return Err(failure(e)),
            }
        }
        Err(Failure::Failed(
            "created and deleted by another writer while being written".into(),
        ))
    }

    /// Creates the `kubestellar-report` namespace (where CombinedStatuses of
    /// cluster-scoped objects go), as KubeStellar's controller-manager does.
    async fn create_report_namespace(&self) -> Result<(), kube::Error> {
        let api: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(self.client());
        let ns = serde_json::from_value(json!({"metadata": {"name": REPORT_NAMESPACE}}))
            .expect("a valid Namespace");
        let params = PostParams {
            field_manager: Some(self.config.field_manager.clone()),
            ..PostParams::default()
        };
        match self
            .write_request("create", REPORT_NAMESPACE, || api.create(&params, &ns))
            .await
        {
            Ok(_) => {
                info!(namespace = REPORT_NAMESPACE, "namespace created");
                Ok(())
            }
            Err(e) if status_code(&e) == Some(409) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Writes a StatusCollector's `status` unless the sink last wrote the same.
    pub(crate) async fn apply_collector_status(&self, desired: &DesiredCollectorStatus) {
        let name = desired.name.as_str();
        if self.shared.lock().combined.collectors.get(name) == Some(desired) {
            return self.collector_done(name, WriteResult::Unchanged, None);
        }
        let api: Api<DynamicObject> = Api::all_with(self.client(), &collector_resource());
        let errors = (!desired.errors.is_empty()).then_some(&desired.errors);
        let patch = Patch::Merge(json!({"status": {
            "observedGeneration": desired.observed_generation,
            "errors": errors,
        }}));
        let params = self.patch_params();
        let started = Instant::now();
        let result = self
            .write_request("patch status", name, || {
                api.patch_status(name, &params, &patch)
            })
            .await;
        let latency = Some(started.elapsed());
        let mut state = self.shared.lock();
        match result {
            Ok(_) => {
                state
                    .combined
                    .collectors
                    .insert(name.to_string(), desired.clone());
                drop(state);
                self.collector_done(name, WriteResult::Applied, latency);
            }
            Err(e) => {
                state.combined.collectors.remove(name);
                drop(state);
                if status_code(&e) == Some(404) || is_not_leader(&e) {
                    return self.collector_done(name, WriteResult::Dropped, latency);
                }
                error!(collector = name, error = %describe(&e), "StatusCollector status cannot be written");
                self.collector_done(name, WriteResult::Failed, latency);
            }
        }
    }

    fn combined_done(&self, key: &str, result: WriteResult, latency: Option<Duration>) {
        self.done_as(WriteObject::CombinedStatus, key, result, latency);
    }

    fn collector_done(&self, name: &str, result: WriteResult, latency: Option<Duration>) {
        self.done_as(WriteObject::CollectorStatus, name, result, latency);
    }

    fn done_as(
        &self,
        object: WriteObject,
        name: &str,
        result: WriteResult,
        latency: Option<Duration>,
    ) {
        Span::current().record("result", result.as_str());
        self.observer.write_done(&WriteReport {
            object,
            name,
            result,
            latency,
            changed_at: None,
        });
    }
}

fn failure(e: kube::Error) -> Failure {
    if is_not_leader(&e) {
        Failure::NotLeader
    } else {
        Failure::Failed(describe(&e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn desired() -> Value {
        json!({
            "apiVersion": GROUP_VERSION,
            "kind": "CombinedStatus",
            "metadata": {
                "name": "u1.u2",
                "namespace": "default",
                "labels": {
                    "status.kubestellar.io/api-group": "apps",
                    "status.kubestellar.io/resource": "deployments",
                    "status.kubestellar.io/namespace": "default",
                    "status.kubestellar.io/name": "web",
                    "status.kubestellar.io/binding-policy": "p",
                },
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "web", "uid": "u1"}],
            },
            "results": [{"name": "count", "columnNames": ["n"], "rows": [{"columns": [{"type": "Number", "float": "2"}]}]}],
        })
    }

    #[test]
    fn the_owned_part_ignores_what_others_may_add_and_treats_absent_as_empty() {
        let mut stored = desired();
        stored["metadata"]["annotations"] = json!({"note": "x"});
        stored["metadata"]["finalizers"] = json!(["f"]);
        stored["metadata"]["resourceVersion"] = json!("7");
        assert_eq!(owned_part(&stored), owned_part(&desired()));
        stored["metadata"]["labels"]["extra"] = json!("y");
        assert_ne!(owned_part(&stored), owned_part(&desired()));

        let mut empty = desired();
        empty.as_object_mut().unwrap().remove("results");
        let mut listed = empty.clone();
        listed["results"] = json!([]);
        assert_eq!(owned_part(&empty), owned_part(&listed));
    }

    #[test]
    fn the_stored_owned_part_is_the_owned_part_of_the_whole_object() {
        let mut stored = desired();
        stored["metadata"]["managedFields"] = json!([{"manager": "m", "operation": "Update"}]);
        stored["metadata"]["ownerReferences"][0]["controller"] = json!(true);
        let mut bare = json!({"apiVersion": "control.kubestellar.io/v1alpha1",
                              "kind": "CombinedStatus", "metadata": {"name": "n", "namespace": "ns"}});
        for object in [stored, bare.clone(), {
            bare["results"] = Value::Null;
            bare
        }] {
            let typed: DynamicObject = serde_json::from_value(object.clone()).unwrap();
            let whole = serde_json::to_value(&typed).unwrap();
            assert_eq!(stored_owned_part(&typed), owned_part(&whole), "{object}");
        }
    }

    #[test]
    fn only_a_combined_status_with_all_five_labels_is_kubestellars() {
        let d = desired();
        assert!(is_kubestellars(&d["metadata"]["labels"]));
        let mut four = d["metadata"]["labels"].clone();
        four.as_object_mut()
            .unwrap()
            .remove("status.kubestellar.io/name");
        assert!(!is_kubestellars(&four));
    }

    #[test]
    fn the_patch_removes_foreign_labels_and_empty_results() {
        let stored = vec![
            "extra".to_string(),
            "status.kubestellar.io/binding-policy".to_string(),
        ];
        let patch = combined_patch(&desired(), &stored);
        assert_eq!(patch["metadata"]["labels"]["extra"], Value::Null);
        assert!(patch["metadata"]["labels"].get("extra").is_some());
        assert_eq!(
            patch["metadata"]["labels"]["status.kubestellar.io/binding-policy"],
            "p"
        );
        assert_eq!(patch["results"], desired()["results"]);
        let mut empty = desired();
        empty.as_object_mut().unwrap().remove("results");
        let patch = combined_patch(&empty, &[]);
        assert!(patch.get("results").is_some_and(Value::is_null));
    }
}

//! Returned status written into workload objects (`docs/status-semantics.md`): the
//! status-return label by a JSON merge patch of `metadata.labels`, the status by a JSON
//! patch replacing `.status` whole through the `status` subresource (without reading
//! the object first), or of the main resource where the resource has no such
//! subresource (a 404 there), as KubeStellar's fallback does. The label is written only
//! when it changes, and a resource found without the subresource is remembered, so a
//! status change costs one request.

use bindery_engine::WorkloadRef;
use bindery_engine::reported::{Label, MULTI_WEC_LABEL, Report, SINGLETON_LABEL};
use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams};
use serde_json::{Value, json};
use tokio::time::Instant;
use tracing::{Span, debug, error};

use super::error::{describe, status_code};
use super::observer::{WriteObject, WriteReport, WriteResult};
use super::stored::SinkEvent;
use super::writer::{Writer, is_not_leader};

/// What Bindery is to write into one workload object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DesiredReport {
    /// The object, in the version it was last seen in.
    pub object: WorkloadRef,
    /// What to write (`None`: nothing any more; a queued write of it is dropped).
    pub report: Option<Report>,
}

impl DesiredReport {
    /// The object's key in the queue and logs: `group/resource/namespace/name`.
    pub fn key(&self) -> String {
        let (group, resource, namespace, name) = self.object.identity();
        format!("{group}/{resource}/{namespace}/{name}")
    }
}

/// The label patch that leaves exactly `label` of the two status-return labels (none
/// for `None`).
fn label_patch(label: Option<Label>) -> Value {
    let value = |l: Label| (label == Some(l)).then_some("true");
    json!({"metadata": {"labels": {
        SINGLETON_LABEL: value(Label::Singleton),
        MULTI_WEC_LABEL: value(Label::MultiWec),
    }}})
}

/// The JSON patch replacing `.status` whole (`add` replaces an existing member).
fn status_patch(status: &Value) -> json_patch::Patch {
    json_patch::Patch(vec![json_patch::PatchOperation::Add(
        json_patch::AddOperation {
            path: json_patch::jsonptr::PointerBuf::parse("/status").expect("a valid pointer"),
            value: status.clone(),
        },
    )])
}

/// Why a report was not written.
enum Stop {
    /// The object is gone (404).
    Gone,
    /// The sink stopped leading.
    NotLeader,
    /// A permanent failure, described.
    Failed(String),
}

/// The dynamic API of `object`'s resource through `client` (in its namespace, if it
/// has one).
pub fn workload_api(client: kube::Client, object: &WorkloadRef) -> Api<DynamicObject> {
    let api_version = if object.group.is_empty() {
        object.version.clone()
    } else {
        format!("{}/{}", object.group, object.version)
    };
    let resource = ApiResource {
        group: object.group.clone(),
        version: object.version.clone(),
        api_version,
        kind: String::new(),
        plural: object.resource.clone(),
    };
    if object.namespace.is_empty() {
        Api::all_with(client, &resource)
    } else {
        Api::namespaced_with(client, &object.namespace, &resource)
    }
}

impl Writer {
    /// The sink's field manager, for the patches of a report.
    pub(super) fn patch_params(&self) -> PatchParams {
        PatchParams {
            field_manager: Some(self.config.field_manager.clone()),
            ..PatchParams::default()
        }
    }

    /// Writes `desired` unless it is what the sink last wrote into the object.
    pub(crate) async fn apply_report(&self, desired: &DesiredReport) {
        let key = desired.key();
        let Some(report) = &desired.report else {
            self.shared.lock().reports.remove(&key);
            return self.report_done(&key, WriteResult::Dropped, None);
        };
        // What was last written: unchanged, nothing to write; the same label, only the
        // status (the label is written only when it changes, the status far more often).
        let (unchanged, labelled) = {
            let state = self.shared.lock();
            let last = state.reports.get(&key);
            let labelled = matches!(
                (last, report),
                (Some(Report::Status(_, was)), Report::Status(_, label)) if was == label
            );
            (last == Some(report), labelled)
        };
        if unchanged {
            debug!(object = %key, "returned status unchanged: not written");
            return self.report_done(&key, WriteResult::Unchanged, None);
        }
        let started = Instant::now();
        let result = self
            .write_report(&desired.object, &key, report, labelled)
            .await;
        let latency = Some(started.elapsed());
        let mut state = self.shared.lock();
        match result {
            Ok(()) => {
                state.reports.insert(key.clone(), report.clone());
                drop(state);
                debug!(object = %key, ?latency, "returned status written");
                self.report_done(&key, WriteResult::Applied, latency);
            }
            Err(stop) => {
                state.reports.remove(&key);
                drop(state);
                match stop {
                    Stop::Gone => {
                        debug!(object = %key, "object gone: returned status dropped");
                        self.report_done(&key, WriteResult::Dropped, latency);
                    }
                    Stop::NotLeader => self.report_done(&key, WriteResult::Dropped, None),
                    Stop::Failed(message) => {
                        error!(object = %key, error = %message, "returned status cannot be written");
                        self.report_done(&key, WriteResult::Failed, latency);
                    }
                }
            }
        }
    }

    /// The requests: a status with its label set first (unless this sink `labelled` the
    /// object so already); a clear with the labels removed after it (KubeStellar's order:
    /// a labelled object is one whose status Bindery returned).
    async fn write_report(
        &self,
        object: &WorkloadRef,
        key: &str,
        report: &Report,
        labelled: bool,
    ) -> Result<(), Stop> {
        let api = workload_api(self.client(), object);
        match report {
            Report::Status(status, label) => {
                if !labelled {
                    self.patch_labels(&api, object, key, Some(*label)).await?;
                }
                self.patch_status(&api, object, key, status).await
            }
            Report::Clear => {
                self.patch_status(&api, object, key, &json!({})).await?;
                self.patch_labels(&api, object, key, None).await
            }
        }
    }

    async fn patch_labels(
        &self,
        api: &Api<DynamicObject>,
        object: &WorkloadRef,
        key: &str,
        label: Option<Label>,
    ) -> Result<(), Stop> {
        let params = self.patch_params();
        let patch = Patch::Merge(label_patch(label));
        self.write_request("patch labels", key, || {
            api.patch(&object.name, &params, &patch)
        })
        .await
        .map(drop)
        .map_err(stop)
    }

    async fn patch_status(
        &self,
        api: &Api<DynamicObject>,
        object: &WorkloadRef,
        key: &str,
        status: &Value,
    ) -> Result<(), Stop> {
        let params = self.patch_params();
        let patch: Patch<Value> = Patch::Json(status_patch(status));
        let name = &object.name;
        let resource = format!("{}/{}", object.group, object.resource);
        let patch_main = || {
            self.write_request("patch status field", key, || {
                api.patch(name, &params, &patch)
            })
        };
        if self.shared.lock().status_in_main.contains(&resource) {
            let stored = patch_main().await.map_err(stop)?;
            if stored.data.get("status") == Some(status) {
                self.own_write(object, stored);
                return Ok(());
            }
            // The server kept another status: the resource may have gained a status
            // subresource since (the main resource's status is then not written).
            self.shared.lock().status_in_main.remove(&resource);
        }
        let written = match self
            .write_request("patch status", key, || {
                api.patch_status(name, &params, &patch)
            })
            .await
        {
            Ok(written) => written,
            // No status subresource (or the object is gone: the next request says).
            Err(e) if status_code(&e) == Some(404) => {
                let written = patch_main().await.map_err(stop)?;
                self.shared.lock().status_in_main.insert(resource);
                written
            }
            Err(e) => return Err(stop(e)),
        };
        self.own_write(object, written);
        Ok(())
    }

    /// Tells that the update the watch brings for `written`'s version of `object` is
    /// Bindery's own status write.
    fn own_write(&self, object: &WorkloadRef, written: DynamicObject) {
        if let Some(rv) = written.metadata.resource_version {
            self.shared.tell(SinkEvent::StatusWritten {
                object: object.clone(),
                resource_version: rv,
            });
        }
    }

    /// Tells the observer how a report write ended.
    fn report_done(&self, key: &str, result: WriteResult, latency: Option<std::time::Duration>) {
        Span::current().record("result", result.as_str());
        self.observer.write_done(&WriteReport {
            object: WriteObject::ObjectStatus,
            name: key,
            result,
            latency,
            changed_at: None,
        });
    }
}

fn stop(e: kube::Error) -> Stop {
    if status_code(&e) == Some(404) {
        Stop::Gone
    } else if is_not_leader(&e) {
        Stop::NotLeader
    } else {
        Stop::Failed(describe(&e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_label_patch_leaves_one_label_or_none() {
        assert_eq!(
            label_patch(Some(Label::Singleton)),
            json!({"metadata": {"labels": {SINGLETON_LABEL: "true", MULTI_WEC_LABEL: null}}})
        );
        assert_eq!(
            label_patch(None),
            json!({"metadata": {"labels": {SINGLETON_LABEL: null, MULTI_WEC_LABEL: null}}})
        );
        let patch = serde_json::to_value(status_patch(&json!({"replicas": 1}))).unwrap();
        assert_eq!(
            patch,
            json!([{"op": "add", "path": "/status", "value": {"replicas": 1}}])
        );
    }
}

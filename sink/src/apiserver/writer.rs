//! The requests: listing the policies' statuses, writing and deleting Bindings, applying
//! policy statuses, removing KubeStellar's finalizer; each through the rate limiter, with
//! retries.

use std::future::Future;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use backon::{ExponentialBuilder, Retryable};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use kube::api::{
    Api, DeleteParams, DynamicObject, ListParams, ObjectList, Patch, PatchParams, PostParams,
};
use serde_json::{Value, json};
use tokio::time::Instant;
use tracing::{Instrument, Span, debug, error, field, info, info_span, warn};

use super::dispatch::{Job, Shared};
use super::error::{describe, is_retryable, retry_after, status_code};
use super::objects::{StoredBinding, binding_resource, policy_resource, write_body};
use super::stats::bump;
use super::status::{self, StoredStatus, status_body};
use super::stored::{StoredEntry, Wanted};
use super::{
    DesiredBinding, DesiredStatus, SinkConfig, SinkError, SinkObserver, WriteObject, WriteReport,
    WriteResult,
};

/// Page size of the start-up LISTs.
const LIST_PAGE: u32 = 500;

/// Performs the writes of one sink.
pub(crate) struct Writer {
    client: kube::Client,
    bindings: Api<DynamicObject>,
    policies: Api<DynamicObject>,
    limiter: Option<DefaultDirectRateLimiter>,
    pub(super) config: SinkConfig,
    pub(super) shared: Arc<Shared>,
    pub(super) observer: Arc<dyn SinkObserver>,
}

impl Writer {
    pub(crate) fn new(
        client: kube::Client,
        config: SinkConfig,
        shared: Arc<Shared>,
        observer: Arc<dyn SinkObserver>,
    ) -> Self {
        let limiter = NonZeroU32::new(config.qps).map(|qps| {
            let burst = NonZeroU32::new(config.burst).unwrap_or(NonZeroU32::MIN);
            RateLimiter::direct(Quota::per_second(qps).allow_burst(burst))
        });
        Writer {
            bindings: Api::all_with(client.clone(), &binding_resource()),
            policies: Api::all_with(client.clone(), &policy_resource()),
            client,
            limiter,
            config,
            shared,
            observer,
        }
    }

    /// The client the sink writes with.
    pub(super) fn client(&self) -> kube::Client {
        self.client.clone()
    }

    /// Tells the observer how a Binding write ended, and the caller whether the problem
    /// to report for it changed.
    fn binding_done(&self, b: &DesiredBinding, result: WriteResult, latency: Option<Duration>) {
        self.shared.tell_problem(&b.name);
        Span::current().record("result", result.as_str());
        self.observer.write_done(&WriteReport {
            object: WriteObject::Binding,
            name: &b.name,
            result,
            latency,
            changed_at: b.changed_at,
        });
    }

    /// Tells the observer how a status write ended.
    fn status_done(&self, name: &str, result: WriteResult, latency: Option<Duration>) {
        Span::current().record("result", result.as_str());
        self.observer.write_done(&WriteReport {
            object: WriteObject::Status,
            name,
            result,
            latency,
            changed_at: None::<SystemTime>,
        });
    }

    /// A read: see [`attempts`](Self::attempts).
    async fn request<T, Fut>(
        &self,
        op: &'static str,
        name: &str,
        call: impl FnMut() -> Fut,
    ) -> Result<T, kube::Error>
    where
        Fut: Future<Output = Result<T, kube::Error>>,
    {
        self.attempts(op, name, false, call).await
    }

    /// A write: see [`attempts`](Self::attempts); no attempt is sent once the sink is no
    /// longer leading (the error then is [`not_leader`]).
    pub(super) async fn write_request<T, Fut>(
        &self,
        op: &'static str,
        name: &str,
        call: impl FnMut() -> Fut,
    ) -> Result<T, kube::Error>
    where
        Fut: Future<Output = Result<T, kube::Error>>,
    {
        self.attempts(op, name, true, call).await
    }

    /// One request: waits for the rate limiter before each attempt, retries what is worth
    /// retrying with exponential backoff (at least a server's `retryAfterSeconds`, up to
    /// `max_backoff`), and logs each retry. When `gated`, each attempt is sent only while
    /// the sink is leading.
    async fn attempts<T, Fut>(
        &self,
        op: &'static str,
        name: &str,
        gated: bool,
        mut call: impl FnMut() -> Fut,
    ) -> Result<T, kube::Error>
    where
        Fut: Future<Output = Result<T, kube::Error>>,
    {
        let backoff = ExponentialBuilder::default()
            .with_min_delay(self.config.initial_backoff)
            .with_max_delay(self.config.max_backoff)
            .with_max_times(self.config.max_attempts.saturating_sub(1) as usize)
            .with_jitter();
        let max_backoff = self.config.max_backoff;
        let attempt = || {
            let fut = call();
            async move {
                if let Some(limiter) = &self.limiter {
                    limiter.until_ready().await;
                }
                if gated && !self.shared.is_leading() {
                    return Err(not_leader());
                }
                fut.await
            }
        };
        attempt
            .retry(backoff)
            .sleep(tokio::time::sleep)
            .when(is_retryable)
            .adjust(|err, delay| {
                // Jitter may take the delay past `max_backoff`: keep the bound.
                let delay = delay?.min(max_backoff);
                Some(retry_after(err).map_or(delay, |asked| delay.max(asked.min(max_backoff))))
            })
            .notify(|err, delay| {
                bump(&self.shared.counters.retries);
                warn!(op, name, error = %describe(err), retry_in = ?delay, "retrying");
            })
            .await
    }

    /// Lists every page of `api`.
    async fn list_all(
        &self,
        api: &Api<DynamicObject>,
        resource: &'static str,
    ) -> Result<Vec<DynamicObject>, SinkError> {
        let mut params = ListParams::default().limit(LIST_PAGE);
        let mut items = Vec::new();
        loop {
            let page: ObjectList<DynamicObject> = self
                .request("list", resource, || api.list(&params))
                .await
                .map_err(|source| SinkError::List { resource, source })?;
            items.extend(page.items);
            match page.metadata.continue_ {
                Some(token) if !token.is_empty() => params = params.continue_token(&token),
                _ => return Ok(items),
            }
        }
    }

    /// The Bindings API (for the watch on them).
    pub(crate) fn bindings(&self) -> Api<DynamicObject> {
        self.bindings.clone()
    }

    /// Lists the BindingPolicies for their current statuses.
    pub(crate) async fn load_statuses(&self) -> Result<(), SinkError> {
        let policies = self.list_all(&self.policies, "bindingpolicies").await?;
        let mut state = self.shared.lock();
        for obj in &policies {
            if let Some(name) = &obj.metadata.name {
                state
                    .statuses
                    .insert(name.clone(), StoredStatus::from_object(obj));
            }
        }
        debug!(policies = policies.len(), "listed the policies' statuses");
        Ok(())
    }

    /// Performs one queued write, in a `sink_write` span naming the object (so every log
    /// line of the write, its retries included, names it) and, once done, its result.
    pub(crate) async fn write(&self, job: Job) {
        let span = match &job {
            Job::Binding(b) => {
                info_span!("sink_write", object = "binding", binding = %b.name, result = field::Empty)
            }
            Job::Status(s, _) => {
                info_span!("sink_write", object = "status", policy = %s.policy, result = field::Empty)
            }
            Job::Finalizer(name, _) => {
                info_span!("sink_write", object = "finalizer", policy = %name, result = field::Empty)
            }
            Job::Report(r) => {
                info_span!("sink_write", object = "object_status", target = %r.key(), result = field::Empty)
            }
            Job::Combined(c) => {
                info_span!("sink_write", object = "combined_status", target = %c.key(), result = field::Empty)
            }
            Job::CollectorStatus(c) => {
                info_span!("sink_write", object = "collector_status", collector = %c.name, result = field::Empty)
            }
        };
        let written = async {
            match job {
                Job::Binding(b) => match &b.binding {
                    Some(desired) => self.apply_binding(&b, desired).await,
                    None => self.delete_binding(&b).await,
                },
                Job::Status(s, _) => self.apply_status(&s).await,
                Job::Finalizer(name, _) => self.remove_finalizer(&name).await,
                Job::Report(r) => self.apply_report(&r).await,
                Job::Combined(c) => self.apply_combined(&c).await,
                Job::CollectorStatus(c) => self.apply_collector_status(&c).await,
            }
        };
        written.instrument(span).await
    }

    fn binding_failed(&self, b: &DesiredBinding, message: String, latency: Option<Duration>) {
        let name = b.name.as_str();
        error!(binding = name, error = %message, "Binding cannot be written");
        self.shared.lock().failed.insert(name.to_string(), message);
        self.binding_done(b, WriteResult::Failed, latency);
    }

    async fn apply_binding(&self, b: &DesiredBinding, desired: &Value) {
        let name = b.name.as_str();
        let body = match write_body(name, desired) {
            Ok(body) => body,
            Err(message) => return self.binding_failed(b, message, None),
        };
        let wanted = StoredBinding::from_write_body(&body);
        let exists = {
            let mut state = self.shared.lock();
            state
                .wanted
                .insert(name.to_string(), Wanted::Present(wanted));
            let stored = state.stored.get(name);
            if stored.and_then(|e| e.content) == Some(wanted) {
                state.failed.remove(name);
                drop(state);
                debug!(binding = name, "Binding unchanged: not written");
                return self.binding_done(b, WriteResult::Unchanged, None);
            }
            stored.is_some()
        };
        let size = serde_json::to_vec(&body).map_or(0, |v| v.len());
        if size > self.config.max_binding_bytes {
            let message = format!(
                "the Binding is {size} bytes of JSON, more than the {} bytes the API server can store (--max-binding-bytes); \
                 select fewer objects in this policy or split it",
                self.config.max_binding_bytes
            );
            return self.binding_failed(b, message, None);
        }
        let started = Instant::now();
        let result = self
            .write_request("write", name, || self.put_binding(name, &body, exists))
            .await;
        let latency = started.elapsed();
        match result {
            Ok(obj) => {
                let mut state = self.shared.lock();
                state.record(name, Some(StoredEntry::from_object(&obj)));
                state.failed.remove(name);
                drop(state);
                debug!(binding = name, bytes = size, ?latency, "Binding written");
                self.binding_done(b, WriteResult::Applied, Some(latency));
            }
            Err(e) => {
                self.shared.lock().unknown(name);
                if is_not_leader(&e) {
                    debug!(binding = name, "no longer the leader: Binding not written");
                    return self.binding_done(b, WriteResult::Dropped, None);
                }
                self.binding_failed(b, describe(&e), Some(latency));
            }
        }
    }

    /// Writes `body` as Binding `name`: a JSON merge patch when it exists (lists are
    /// replaced whole, so entries other writers put there go too, and the API server may
    /// drop managedFields to fit a large Binding, which it never does for a server-side
    /// apply), else a create; switches when the server says it guessed wrong.
    async fn put_binding(
        &self,
        name: &str,
        body: &Value,
        mut exists: bool,
    ) -> Result<DynamicObject, kube::Error> {
        let field_manager = Some(self.config.field_manager.clone());
        for _ in 0..2 {
            let result = if exists {
                let params = PatchParams {
                    field_manager: field_manager.clone(),
                    ..PatchParams::default()
                };
                self.bindings
                    .patch(name, &params, &Patch::Merge(body))
                    .await
            } else {
                let params = PostParams {
                    field_manager: field_manager.clone(),
                    ..PostParams::default()
                };
                let obj: DynamicObject =
                    serde_json::from_value(body.clone()).map_err(kube::Error::SerdeError)?;
                self.bindings.create(&params, &obj).await
            };
            match result {
                Err(e) if exists && status_code(&e) == Some(404) => exists = false,
                Err(kube::Error::Api(s)) if !exists && s.reason == "AlreadyExists" => exists = true,
                other => return other,
            }
        }
        // Created and deleted again between two requests: let the caller retry.
        Err(kube::Error::Api(
            kube::core::Status::failure("the Binding keeps appearing and vanishing", "Conflict")
                .with_code(409)
                .boxed(),
        ))
    }

    async fn delete_binding(&self, b: &DesiredBinding) {
        let name = b.name.as_str();
        {
            let mut state = self.shared.lock();
            state.wanted.insert(name.to_string(), Wanted::Absent);
            let unmanaged = state.stored.get(name).map(|e| !e.managed);
            if unmanaged != Some(false) {
                state.failed.remove(name);
                state.statuses.remove(name);
                drop(state);
                if unmanaged == Some(true) {
                    info!(
                        binding = name,
                        "Binding not managed by a BindingPolicy: not deleted"
                    );
                } else {
                    debug!(binding = name, "Binding not stored: nothing to delete");
                }
                return self.binding_done(b, WriteResult::Unchanged, None);
            }
        }
        let params = DeleteParams::default();
        let started = Instant::now();
        let result = self
            .write_request("delete", name, || self.bindings.delete(name, &params))
            .await;
        let latency = started.elapsed();
        match result {
            Ok(_) => debug!(binding = name, "Binding deleted"),
            Err(e) if status_code(&e) == Some(404) => debug!(binding = name, "Binding was gone"),
            Err(e) => {
                self.shared.lock().unknown(name);
                if is_not_leader(&e) {
                    debug!(binding = name, "no longer the leader: Binding not deleted");
                    return self.binding_done(b, WriteResult::Dropped, None);
                }
                return self.binding_failed(b, describe(&e), Some(latency));
            }
        }
        let mut state = self.shared.lock();
        state.record(name, None);
        state.failed.remove(name);
        // The policy is gone: a policy made later under the same name starts afresh.
        state.statuses.remove(name);
        drop(state);
        self.binding_done(b, WriteResult::Deleted, Some(latency));
    }

    async fn apply_status(&self, desired: &DesiredStatus) {
        let name = desired.policy.as_str();
        let known = self.shared.lock().statuses.get(name).cloned();
        let current = match known {
            Some(current) => current,
            None => match self
                .request("get status", name, || self.policies.get_status(name))
                .await
            {
                Ok(obj) => StoredStatus::from_object(&obj),
                Err(e) if status_code(&e) == Some(404) => {
                    debug!(policy = name, "policy gone: status dropped");
                    return self.status_done(name, WriteResult::Dropped, None);
                }
                Err(e) => {
                    warn!(policy = name, error = %describe(&e), "cannot read the policy status: writing it anyway");
                    StoredStatus::default()
                }
            },
        };
        if current.satisfies(desired) {
            self.shared
                .lock()
                .statuses
                .insert(name.to_string(), current);
            debug!(policy = name, "policy status unchanged: not written");
            return self.status_done(name, WriteResult::Unchanged, None);
        }
        let conditions = status::conditions(desired, current.conditions(), status::now);
        let body = status_body(desired, conditions.clone());
        let params = PatchParams::apply(&self.config.field_manager).force();
        let patch = Patch::Apply(&body);
        let started = Instant::now();
        let result = self
            .write_request("apply status", name, || {
                self.policies.patch_status(name, &params, &patch)
            })
            .await;
        let latency = started.elapsed();
        let mut state = self.shared.lock();
        match result {
            Ok(_) => {
                let written = StoredStatus::written(desired, conditions);
                state.statuses.insert(name.to_string(), written);
                drop(state);
                debug!(policy = name, ?latency, "policy status applied");
                self.status_done(name, WriteResult::Applied, Some(latency));
            }
            Err(e) if status_code(&e) == Some(404) => {
                state.statuses.remove(name);
                drop(state);
                debug!(policy = name, "policy gone: status dropped");
                self.status_done(name, WriteResult::Dropped, Some(latency));
            }
            Err(e) if is_not_leader(&e) => {
                state.statuses.remove(name);
                drop(state);
                debug!(policy = name, "no longer the leader: status not written");
                self.status_done(name, WriteResult::Dropped, None);
            }
            Err(e) => {
                state.statuses.remove(name);
                drop(state);
                error!(policy = name, error = %describe(&e), "policy status cannot be written");
                self.status_done(name, WriteResult::Failed, Some(latency));
            }
        }
    }

    /// Removes KubeStellar's finalizer (and only it) from policy `name` if it is being
    /// deleted, so that its deletion completes without KubeStellar's controller. The
    /// Binding was deleted before (this job follows its write).
    async fn remove_finalizer(&self, name: &str) {
        for _ in 0..5 {
            let policy = match self
                .request("get policy", name, || self.policies.get(name))
                .await
            {
                Ok(policy) => policy,
                Err(e) if status_code(&e) == Some(404) => return,
                Err(e) => {
                    error!(policy = name, error = %describe(&e), "cannot read the policy to remove KubeStellar's finalizer");
                    return;
                }
            };
            let finalizers = policy.metadata.finalizers.clone().unwrap_or_default();
            if policy.metadata.deletion_timestamp.is_none()
                || !finalizers.iter().any(|f| f == KUBESTELLAR_FINALIZER)
            {
                return;
            }
            let kept: Vec<&String> = finalizers
                .iter()
                .filter(|f| *f != KUBESTELLAR_FINALIZER)
                .collect();
            // The resourceVersion makes it a precondition: a concurrent change of the
            // finalizers is a 409, and the list is read again.
            let patch = json!({"metadata": {
                "finalizers": kept,
                "resourceVersion": policy.metadata.resource_version,
            }});
            let params = PatchParams {
                field_manager: Some(self.config.field_manager.clone()),
                ..PatchParams::default()
            };
            if let Some(limiter) = &self.limiter {
                limiter.until_ready().await;
            }
            if !self.shared.is_leading() {
                debug!(
                    policy = name,
                    "no longer the leader: finalizer left for the next"
                );
                return;
            }
            match self
                .policies
                .patch(name, &params, &Patch::Merge(&patch))
                .await
            {
                Ok(_) => {
                    info!(
                        policy = name,
                        "removed KubeStellar's finalizer from the policy being deleted"
                    );
                    return;
                }
                Err(e) if matches!(status_code(&e), Some(404)) => return,
                Err(e) if matches!(status_code(&e), Some(409)) => continue,
                Err(e) => {
                    error!(policy = name, error = %describe(&e), "cannot remove KubeStellar's finalizer");
                    return;
                }
            }
        }
        warn!(
            policy = name,
            "gave up removing KubeStellar's finalizer after repeated conflicts"
        );
    }
}

/// The error of a write attempt not sent because the sink is no longer leading.
fn not_leader() -> kube::Error {
    kube::Error::Api(
        kube::core::Status::failure("not the leader: not sent", NOT_LEADER)
            .with_code(0)
            .boxed(),
    )
}

/// The `reason` of [`not_leader`].
const NOT_LEADER: &str = "NotLeader";

pub(super) fn is_not_leader(err: &kube::Error) -> bool {
    matches!(err, kube::Error::Api(s) if s.code == 0 && s.reason == NOT_LEADER)
}

/// The finalizer KubeStellar's binding controller puts on every BindingPolicy; without
/// that controller, nothing else removes it.
pub const KUBESTELLAR_FINALIZER: &str = "bindingpolicy.kubestellar.io/kscontroller";

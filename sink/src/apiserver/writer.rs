//! The requests: listing what is stored, applying and deleting Bindings, applying policy
//! statuses; each through the rate limiter, with retries.

use std::future::Future;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use backon::{ExponentialBuilder, Retryable};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, ObjectList, Patch, PatchParams};
use serde_json::Value;
use tokio::time::Instant;
use tracing::{debug, error, warn};

use super::dispatch::{Job, Shared, Stored};
use super::error::{describe, is_retryable, retry_after, status_code};
use super::objects::{StoredBinding, apply_body, binding_resource, policy_resource};
use super::stats::bump;
use super::status::{self, ReadyCondition, StoredStatus, status_body};
use super::{
    DesiredBinding, DesiredStatus, SinkConfig, SinkError, SinkObserver, WriteObject, WriteReport,
    WriteResult,
};

/// Page size of the start-up LISTs.
const LIST_PAGE: u32 = 500;

/// Performs the writes of one sink.
pub(crate) struct Writer {
    bindings: Api<DynamicObject>,
    policies: Api<DynamicObject>,
    limiter: Option<DefaultDirectRateLimiter>,
    config: SinkConfig,
    shared: Arc<Shared>,
    observer: Arc<dyn SinkObserver>,
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
            policies: Api::all_with(client, &policy_resource()),
            limiter,
            config,
            shared,
            observer,
        }
    }

    /// Tells the observer how a Binding write ended.
    fn binding_done(&self, b: &DesiredBinding, result: WriteResult, latency: Option<Duration>) {
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
        self.observer.write_done(&WriteReport {
            object: WriteObject::Status,
            name,
            result,
            latency,
            changed_at: None::<SystemTime>,
        });
    }

    /// One request: waits for the rate limiter before each attempt, retries what is worth
    /// retrying with exponential backoff (at least a server's `retryAfterSeconds`, up to
    /// `max_backoff`), and logs each retry.
    async fn request<T, Fut>(
        &self,
        op: &'static str,
        name: &str,
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

    /// Lists the stored Bindings, and the BindingPolicies for their current statuses.
    pub(crate) async fn load_stored(&self) -> Result<(), SinkError> {
        let bindings = self.list_all(&self.bindings, "bindings").await?;
        let policies = self.list_all(&self.policies, "bindingpolicies").await?;
        let mut state = self.shared.lock();
        for obj in &bindings {
            if let Some(name) = &obj.metadata.name {
                let stored = Stored::Known(StoredBinding::from_object(obj));
                state.stored.insert(name.clone(), stored);
            }
        }
        let mut names: Vec<String> = state.stored.keys().cloned().collect();
        names.sort_unstable();
        state.stored_at_start = names;
        for obj in &policies {
            if let Some(name) = &obj.metadata.name {
                state
                    .statuses
                    .insert(name.clone(), StoredStatus::from_object(obj));
            }
        }
        debug!(
            bindings = bindings.len(),
            policies = policies.len(),
            "listed what is stored"
        );
        Ok(())
    }

    /// Performs one queued write.
    pub(crate) async fn write(&self, job: Job) {
        match job {
            Job::Binding(b) => match &b.binding {
                Some(desired) => self.apply_binding(&b, desired).await,
                None => self.delete_binding(&b).await,
            },
            Job::Status(s, _) => self.apply_status(&s).await,
        }
    }

    fn binding_failed(&self, b: &DesiredBinding, message: String, latency: Option<Duration>) {
        let name = b.name.as_str();
        error!(binding = name, error = %message, "Binding cannot be written");
        bump(&self.shared.counters.bindings_failed);
        self.shared.lock().failed.insert(name.to_string(), message);
        self.binding_done(b, WriteResult::Failed, latency);
    }

    async fn apply_binding(&self, b: &DesiredBinding, desired: &Value) {
        let counters = &self.shared.counters;
        let name = b.name.as_str();
        let body = match apply_body(name, desired) {
            Ok(body) => body,
            Err(message) => return self.binding_failed(b, message, None),
        };
        let wanted = StoredBinding::from_apply_body(&body);
        {
            let mut state = self.shared.lock();
            if state.stored.get(name) == Some(&Stored::Known(wanted)) {
                state.failed.remove(name);
                drop(state);
                bump(&counters.bindings_unchanged);
                debug!(binding = name, "Binding unchanged: not written");
                return self.binding_done(b, WriteResult::Unchanged, None);
            }
        }
        let params = PatchParams::apply(&self.config.field_manager).force();
        let patch = Patch::Apply(&body);
        let started = Instant::now();
        let result = self
            .request("apply", name, || self.bindings.patch(name, &params, &patch))
            .await;
        let latency = started.elapsed();
        counters.record_latency(latency);
        match result {
            Ok(obj) => {
                let mut state = self.shared.lock();
                let stored = Stored::Known(StoredBinding::from_object(&obj));
                state.stored.insert(name.to_string(), stored);
                state.failed.remove(name);
                drop(state);
                bump(&counters.bindings_applied);
                debug!(binding = name, ?latency, "Binding applied");
                self.binding_done(b, WriteResult::Applied, Some(latency));
            }
            Err(e) => {
                self.shared
                    .lock()
                    .stored
                    .insert(name.to_string(), Stored::Unknown);
                self.binding_failed(b, describe(&e), Some(latency));
            }
        }
    }

    async fn delete_binding(&self, b: &DesiredBinding) {
        let counters = &self.shared.counters;
        let name = b.name.as_str();
        {
            let mut state = self.shared.lock();
            if !state.stored.contains_key(name) {
                state.failed.remove(name);
                state.statuses.remove(name);
                drop(state);
                bump(&counters.bindings_unchanged);
                debug!(binding = name, "Binding not stored: nothing to delete");
                return self.binding_done(b, WriteResult::Unchanged, None);
            }
        }
        let params = DeleteParams::default();
        let started = Instant::now();
        let result = self
            .request("delete", name, || self.bindings.delete(name, &params))
            .await;
        let latency = started.elapsed();
        counters.record_latency(latency);
        match result {
            Ok(_) => debug!(binding = name, "Binding deleted"),
            Err(e) if status_code(&e) == Some(404) => debug!(binding = name, "Binding was gone"),
            Err(e) => {
                self.shared
                    .lock()
                    .stored
                    .insert(name.to_string(), Stored::Unknown);
                return self.binding_failed(b, describe(&e), Some(latency));
            }
        }
        let mut state = self.shared.lock();
        state.stored.remove(name);
        state.failed.remove(name);
        // The policy is gone: a policy made later under the same name starts afresh.
        state.statuses.remove(name);
        drop(state);
        bump(&counters.bindings_deleted);
        self.binding_done(b, WriteResult::Deleted, Some(latency));
    }

    async fn apply_status(&self, desired: &DesiredStatus) {
        let counters = &self.shared.counters;
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
                    bump(&counters.statuses_dropped);
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
            bump(&counters.statuses_unchanged);
            debug!(policy = name, "policy status unchanged: not written");
            return self.status_done(name, WriteResult::Unchanged, None);
        }
        let ready = ReadyCondition::for_status(desired, current.ready.as_ref(), status::now);
        let body = status_body(desired, &ready);
        let params = PatchParams::apply(&self.config.field_manager).force();
        let patch = Patch::Apply(&body);
        let started = Instant::now();
        let result = self
            .request("apply status", name, || {
                self.policies.patch_status(name, &params, &patch)
            })
            .await;
        let latency = started.elapsed();
        counters.record_latency(latency);
        let mut state = self.shared.lock();
        match result {
            Ok(_) => {
                let written = StoredStatus::written(desired, ready);
                state.statuses.insert(name.to_string(), written);
                drop(state);
                bump(&counters.statuses_applied);
                debug!(policy = name, ?latency, "policy status applied");
                self.status_done(name, WriteResult::Applied, Some(latency));
            }
            Err(e) if status_code(&e) == Some(404) => {
                state.statuses.remove(name);
                drop(state);
                bump(&counters.statuses_dropped);
                debug!(policy = name, "policy gone: status dropped");
                self.status_done(name, WriteResult::Dropped, Some(latency));
            }
            Err(e) => {
                state.statuses.remove(name);
                drop(state);
                bump(&counters.statuses_failed);
                error!(policy = name, error = %describe(&e), "policy status cannot be written");
                self.status_done(name, WriteResult::Failed, Some(latency));
            }
        }
    }
}

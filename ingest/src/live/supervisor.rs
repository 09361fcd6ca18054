//! The live run: the initial watched set, the watcher tasks, the CRD watch that
//! re-runs discovery and applies the diff ([`plan()`]), and the checks of the ITS's
//! WorkStatus CRD that add and remove the WorkStatus watch ([`work_status`]).

use std::collections::{BTreeSet, HashMap};
use std::pin::pin;
use std::time::Duration;

use futures::StreamExt;
use kube::core::{DynamicObject, PartialObjectMeta};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use kube::{Api, Client};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::discovery::{WorkloadDiscovery, carry_over, discover_workload};
use super::event::{marker_event, now_ms};
use super::plan::{Action, plan, plan_restarting};
use super::schedule::Schedule;
use super::target::{WatchTarget, crd_api_resource};
use super::work_status::{self, CHECK_TIMEOUT, Presence};
use super::{LiveConfig, LiveError, watch};
use crate::watchlog::{EventType, ResourceRef, Space, WatchEvent};

/// Whether to go on after a step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Flow {
    Continue,
    /// Shutdown was signalled or the receiver is gone.
    Stop,
}

pub(crate) struct Supervisor {
    config: LiveConfig,
    tx: mpsc::Sender<WatchEvent>,
    shutdown: CancellationToken,
    /// The watched workload resources (the fixed targets are not in it).
    workload: Vec<WatchTarget>,
    tasks: HashMap<ResourceRef, JoinHandle<()>>,
    /// Names (`<plural>.<group>`) of the CRDs deleted since the last discovery.
    deleted_crds: BTreeSet<String>,
    /// The WorkStatus watch wanted (`None`: status return off).
    work_status_target: Option<WatchTarget>,
    /// The WorkStatus watch, while there is one.
    work_statuses: Option<WatchTarget>,
    /// What the last check of the ITS found (for logging transitions).
    last_presence: Option<Presence>,
    /// The task checking the ITS for the WorkStatus CRD.
    checks: Option<JoinHandle<()>>,
}

impl Supervisor {
    pub(crate) fn new(
        config: LiveConfig,
        tx: mpsc::Sender<WatchEvent>,
        shutdown: CancellationToken,
    ) -> Supervisor {
        let work_status_target = config
            .work_statuses
            .as_deref()
            .map(WatchTarget::work_statuses);
        Supervisor {
            config,
            tx,
            shutdown,
            workload: Vec::new(),
            deleted_crds: BTreeSet::new(),
            tasks: HashMap::new(),
            work_status_target,
            work_statuses: None,
            last_presence: None,
            checks: None,
        }
    }

    pub(crate) async fn run(mut self) -> Result<(), LiveError> {
        let result = self.run_inner().await;
        self.stop_all().await;
        result
    }

    async fn run_inner(&mut self) -> Result<(), LiveError> {
        let mut schedule = Schedule::new(self.config.crd_debounce);
        // The ITS's WorkStatus CRD is checked beside the WDS's discovery.
        let mut presences = self.start_checks();

        // The initial set: RESET everything, then start every watcher.
        let first = tokio::select! {
            r = discover_workload(
                &self.config.wds,
                self.config.api_groups.as_deref(),
                self.config.status_collectors,
            ) => r,
            () = self.shutdown.cancelled() => return Ok(()),
        };
        let discovery = first.map_err(|source| LiveError::Discovery {
            space: Space::Wds,
            source,
        })?;
        let complete = log_failed_groups(&discovery);
        let run = schedule.start();
        schedule.finished(run, Instant::now(), complete);
        self.workload = discovery.targets;
        let mut initial = vec![
            WatchTarget::managed_clusters(),
            WatchTarget::binding_policies(),
        ];
        initial.extend(self.workload.iter().cloned());
        // WorkStatuses are in the initial set only if the first check finds them (within
        // a bound: a slow ITS does not hold the WDS's watches back).
        if let Some(rx) = presences.as_mut() {
            let first = tokio::select! {
                r = tokio::time::timeout(CHECK_TIMEOUT, rx.recv()) => r.ok().flatten(),
                () = self.shutdown.cancelled() => return Ok(()),
            };
            if let Some(presence) = first {
                let (next, _) = self.work_status_transition(&presence);
                initial.extend(next.iter().cloned());
                self.work_statuses = next;
            }
        }
        tracing::info!(
            resources = initial.len(),
            workload = self.workload.len(),
            "live ingest starts watching"
        );
        if self.apply(plan(&[], &initial)).await == Flow::Stop {
            return Ok(());
        }

        // CRD changes in the WDS re-run discovery. The watch's first InitDone also
        // does, which covers CRDs created while the initial set was being set up.
        let crds: Api<PartialObjectMeta<DynamicObject>> =
            Api::all_with(self.config.wds.clone(), &crd_api_resource());
        let mut crd_events =
            pin!(watcher::watcher(crds, watcher::Config::default()).default_backoff());
        let mut crd_watch_alive = true;

        loop {
            let due = schedule.due();
            tokio::select! {
                () = self.shutdown.cancelled() => return Ok(()),
                () = self.tx.closed() => {
                    tracing::debug!("event receiver closed; live ingest stops");
                    return Ok(());
                }
                item = crd_events.next(), if crd_watch_alive => match item {
                    Some(Ok(Event::Delete(crd))) => {
                        // Its resource, if discovery still lists it next time (the CRD
                        // created again meanwhile), is watched anew.
                        if let Some(name) = crd.metadata.name {
                            self.deleted_crds.insert(name);
                        }
                        schedule.changed(Instant::now());
                    }
                    Some(Ok(Event::Apply(_) | Event::InitDone)) => {
                        schedule.changed(Instant::now());
                    }
                    Some(Ok(Event::Init | Event::InitApply(_))) => {}
                    Some(Err(err)) => {
                        tracing::warn!(error = %err, "CRD watch failed; retrying with backoff");
                    }
                    None => {
                        tracing::warn!("CRD watch ended; resources will no longer follow CRDs");
                        crd_watch_alive = false;
                    }
                },
                presence = recv(&mut presences), if presences.is_some() => match presence {
                    Some(presence) => {
                        let (next, actions) = self.work_status_transition(&presence);
                        self.work_statuses = next;
                        if self.apply(actions).await == Flow::Stop {
                            return Ok(());
                        }
                    }
                    None => {
                        tracing::warn!("the WorkStatus CRD checks ended; the WorkStatus watch stays as it is");
                        presences = None;
                    }
                },
                () = tokio::time::sleep_until(due.unwrap_or_else(Instant::now)), if due.is_some() => {
                    let run = schedule.start();
                    let (complete, flow) = self.rediscover().await;
                    if flow == Flow::Stop {
                        return Ok(());
                    }
                    schedule.finished(run, Instant::now(), complete);
                }
            }
        }
    }

    /// Re-runs discovery and applies the difference. Returns whether discovery was
    /// complete (no failure), and whether to go on.
    async fn rediscover(&mut self) -> (bool, Flow) {
        let result = tokio::select! {
            r = discover_workload(
                &self.config.wds,
                self.config.api_groups.as_deref(),
                self.config.status_collectors,
            ) => r,
            () = self.shutdown.cancelled() => return (false, Flow::Stop),
        };
        let discovery = match result {
            Ok(discovery) => discovery,
            Err(err) => {
                tracing::warn!(error = %err, "API discovery failed; keeping the watched resources");
                return (false, Flow::Continue);
            }
        };
        let complete = log_failed_groups(&discovery);
        let next = carry_over(&self.workload, discovery);
        let deleted = std::mem::take(&mut self.deleted_crds);
        let actions = plan_restarting(&self.workload, &next, |t| {
            deleted.contains(&format!("{}.{}", t.resource.resource, t.resource.group))
        });
        self.workload = next;
        if actions.is_empty() {
            tracing::debug!("API discovery: no change in the watched resources");
            return (complete, Flow::Continue);
        }
        let count = |f: fn(&Action) -> bool| actions.iter().filter(|a| f(a)).count();
        tracing::info!(
            started = count(|a| matches!(a, Action::Start(_))),
            stopped = count(|a| matches!(a, Action::Stop(_))),
            watched = self.workload.len(),
            "API discovery changed the watched workload resources"
        );
        (complete, self.apply(actions).await)
    }

    /// Starts the checks of the ITS's WorkStatus CRD, if status return is on; returns
    /// the receiver of their results.
    fn start_checks(&mut self) -> Option<mpsc::Receiver<Presence>> {
        let target = self.work_status_target.clone()?;
        let (tx, rx) = mpsc::channel(1);
        let its = self.config.its.clone();
        self.checks = Some(work_status::spawn_checks(
            its,
            target,
            self.config.work_status_poll,
            tx,
        ));
        Some(rx)
    }

    /// What a check that found `presence` does to the WorkStatus watch (the next watch
    /// and the actions to get there), logging a change of what the checks find.
    fn work_status_transition(
        &mut self,
        presence: &Presence,
    ) -> (Option<WatchTarget>, Vec<Action>) {
        let Some(wanted) = &self.work_status_target else {
            return (None, Vec::new());
        };
        let (next, actions) =
            work_status::transition(self.work_statuses.as_ref(), wanted, presence);
        let changed = self
            .last_presence
            .as_ref()
            .is_none_or(|last| !last.same_kind(presence));
        if changed {
            log_presence(wanted, presence, self.config.work_status_poll, &actions);
        }
        self.last_presence = Some(presence.clone());
        (next, actions)
    }

    /// Carries out `actions` in order.
    async fn apply(&mut self, actions: Vec<Action>) -> Flow {
        for action in actions {
            match action {
                Action::Reset(resource) => {
                    if self.send_marker(&resource, EventType::Reset).await == Flow::Stop {
                        return Flow::Stop;
                    }
                }
                Action::Synced(resource) => {
                    if self.send_marker(&resource, EventType::Synced).await == Flow::Stop {
                        return Flow::Stop;
                    }
                }
                Action::Stop(resource) => {
                    tracing::info!(%resource, "no longer watched");
                    if let Some(task) = self.tasks.remove(&resource) {
                        task.abort();
                        join(&resource, task).await;
                    }
                }
                Action::Start(target) => {
                    tracing::debug!(resource = %target.resource, "watch starts");
                    let client = self.client(target.resource.space);
                    let resource = target.resource.clone();
                    let task = watch::spawn(target, client, self.tx.clone());
                    if let Some(old) = self.tasks.insert(resource.clone(), task) {
                        // The plan stops a watcher before restarting it; be safe anyway.
                        old.abort();
                        join(&resource, old).await;
                    }
                }
            }
        }
        Flow::Continue
    }

    async fn send_marker(&self, resource: &ResourceRef, event_type: EventType) -> Flow {
        let event = marker_event(resource, event_type, now_ms());
        tokio::select! {
            sent = self.tx.send(event) => match sent {
                Ok(()) => Flow::Continue,
                Err(_) => Flow::Stop,
            },
            () = self.shutdown.cancelled() => Flow::Stop,
        }
    }

    fn client(&self, space: Space) -> Client {
        match space {
            Space::Wds => self.config.wds.clone(),
            Space::Its => self.config.its.clone(),
        }
    }

    async fn stop_all(&mut self) {
        if let Some(checks) = self.checks.take() {
            checks.abort();
            let _ = checks.await;
        }
        let tasks: Vec<_> = self.tasks.drain().collect();
        for (_, task) in &tasks {
            task.abort();
        }
        for (resource, task) in tasks {
            join(&resource, task).await;
        }
    }
}

/// The next result of the WorkStatus CRD checks (never, without them).
async fn recv(presences: &mut Option<mpsc::Receiver<Presence>>) -> Option<Presence> {
    match presences {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// Logs what the checks of the ITS found, when it differs from the last check.
fn log_presence(wanted: &WatchTarget, presence: &Presence, period: Duration, actions: &[Action]) {
    let resource = &wanted.resource;
    let selector = wanted.label_selector.as_deref().unwrap_or_default();
    let starts = actions.iter().any(|a| matches!(a, Action::Start(_)));
    let stops = actions.iter().any(|a| matches!(a, Action::Stop(_)));
    match presence {
        Presence::Present if starts => tracing::info!(
            %resource,
            selector,
            "the ITS serves WorkStatuses: watching them"
        ),
        Presence::Present => {}
        Presence::Absent if stops => tracing::info!(
            %resource,
            "the ITS no longer serves WorkStatuses: their watch stops and what it held is cleared"
        ),
        Presence::Absent => tracing::info!(
            %resource,
            period = ?period,
            "the ITS serves no WorkStatuses (no WorkStatus CRD): status return waits for it, checking periodically"
        ),
        Presence::Forbidden(error) => tracing::warn!(
            %resource,
            error,
            "listing WorkStatuses in the ITS is forbidden: grant get, list and watch of control.kubestellar.io workstatuses; checking periodically"
        ),
        Presence::Failed(error) => tracing::warn!(
            %resource,
            error,
            "checking the ITS for WorkStatuses failed; retrying periodically"
        ),
    }
}

/// Waits for an aborted watcher task; reports a panic.
async fn join(resource: &ResourceRef, task: JoinHandle<()>) {
    if let Err(err) = task.await
        && err.is_panic()
    {
        tracing::error!(%resource, error = %err, "watcher task panicked");
    }
}

/// Logs the groups a discovery could not read; true when there are none.
fn log_failed_groups(discovery: &WorkloadDiscovery) -> bool {
    for (group, error) in &discovery.failed_groups {
        tracing::warn!(
            group,
            error,
            "API discovery failed for a group; keeping what was watched of it, will retry"
        );
    }
    discovery.failed_groups.is_empty()
}

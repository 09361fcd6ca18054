//! A measurement for BENCHMARKS.md ("First publish"): how long the engine loop of
//! `bindery run` takes from the first event of an initial list of `objects` ConfigMaps to
//! its first published epoch, fed through the same bounded channel as the live ingest
//! (16k events), by a task that sends as fast as the loop takes, to a sink that writes
//! nothing. The API server's share (listing) is not in it: this is the loop's own cost.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use bindery_ingest::{EventType, ResourceRef, Space, WatchEvent};
use bindery_sink::{DesiredBinding, DesiredReport, DesiredStatus};
use serde_json::json;
use tokio::sync::{mpsc, watch};

use super::engine_loop::{BindingWriter, EngineLoop};
use crate::input::pipeline::Pipeline;
use crate::observe::metrics::{Metrics, MetricsOptions};
use crate::runtime::health::{Health, LIVENESS_THRESHOLD};

/// What [`measure_first_publish`] measured.
#[derive(Clone, Copy, Debug)]
pub struct FirstPublish {
    /// Events in the initial lists.
    pub events: usize,
    /// From sending the first event to the first epoch published.
    pub elapsed: Duration,
}

/// A sink that takes everything and writes nothing, always leading.
struct NullWriter(watch::Sender<bool>);

impl BindingWriter for NullWriter {
    fn submit(&self, _: DesiredBinding) {}
    fn submit_status(&self, _: DesiredStatus) {}
    fn remove_finalizer(&self, _: String) {}
    fn submit_report(&self, _: DesiredReport) {}
    fn submit_combined(&self, _: bindery_sink::DesiredCombined) {}
    fn submit_collector_status(&self, _: bindery_sink::DesiredCollectorStatus) {}
    fn combined_listed(&self) -> bool {
        false
    }
    fn stored_combined(&self) -> Vec<(String, bool)> {
        Vec::new()
    }
    fn stored_bindings(&self) -> Vec<(String, bool)> {
        Vec::new()
    }
    fn leading(&self) -> watch::Receiver<bool> {
        self.0.subscribe()
    }
}

/// The initial lists: one WEC, one policy selecting every ConfigMap, `objects`
/// ConfigMaps over 100 namespaces.
fn initial_lists(objects: usize) -> Vec<WatchEvent> {
    let marker = |resource: &ResourceRef, event_type| WatchEvent {
        ts: 0,
        resource: resource.clone(),
        event_type,
        object: None,
    };
    let added = |resource: &ResourceRef, object| WatchEvent {
        ts: 0,
        resource: resource.clone(),
        event_type: EventType::Added,
        object: Some(object),
    };
    let wecs = ResourceRef::new(
        Space::Its,
        "cluster.open-cluster-management.io",
        "v1",
        "managedclusters",
    );
    let policies = ResourceRef::new(
        Space::Wds,
        "control.kubestellar.io",
        "v1alpha1",
        "bindingpolicies",
    );
    let configmaps = ResourceRef::new(Space::Wds, "", "v1", "configmaps");
    let mut events = Vec::with_capacity(objects + 9);
    for resource in [&wecs, &policies, &configmaps] {
        events.push(marker(resource, EventType::Reset));
    }
    events.push(added(
        &wecs,
        json!({"metadata": {"name": "c1", "resourceVersion": "1", "labels": {"env": "edge"}}}),
    ));
    events.push(marker(&wecs, EventType::Synced));
    events.push(added(&policies, json!({"metadata": {"name": "p", "uid": "u", "generation": 1},
        "spec": {"clusterSelectors": [{"matchLabels": {"env": "edge"}}], "downsync": [{"resources": ["configmaps"]}]}})));
    events.push(marker(&policies, EventType::Synced));
    for i in 0..objects {
        let cm = json!({"metadata": {"name": format!("cm{i}"), "namespace": format!("ns{}", i % 100), "resourceVersion": "1"}});
        events.push(added(&configmaps, cm));
    }
    events.push(marker(&configmaps, EventType::Synced));
    events
}

/// Runs the engine loop on its own thread, feeds it the initial lists of `objects`
/// ConfigMaps, and measures the time to its first published epoch.
pub fn measure_first_publish(objects: usize) -> Result<FirstPublish> {
    let runtime = tokio::runtime::Runtime::new()?;
    let events = initial_lists(objects);
    let total = events.len();
    let metrics = Arc::new(Metrics::new(MetricsOptions::default()));
    let health = Arc::new(Health::new(LIVENESS_THRESHOLD));
    let (tx, rx) = mpsc::channel::<WatchEvent>(16 * 1024);
    let (_explain_tx, explain_rx) = mpsc::channel(1);
    let (_sink_tx, sink_events) = mpsc::unbounded_channel();
    let handle = runtime.handle().clone();
    let loop_health = health.clone();
    // The engine (a timely worker) is not Send: it is built on its own thread.
    let engine = std::thread::spawn(move || {
        let writer = NullWriter(watch::channel(true).0);
        let coalesce = Duration::from_millis(250);
        let pipeline = Pipeline::new();
        EngineLoop::new(writer, None, coalesce, pipeline, metrics, loop_health).run(
            rx,
            explain_rx,
            sink_events,
            handle,
        )
    });
    let started = Instant::now();
    let feeding = runtime.spawn(async move {
        for event in events {
            if tx.send(event).await.is_err() {
                break;
            }
        }
        tx
    });
    while health.ready().is_err() {
        std::thread::sleep(Duration::from_micros(200));
    }
    let elapsed = started.elapsed();
    drop(runtime.block_on(feeding).context("the feeding task")?);
    engine
        .join()
        .map_err(|_| anyhow::anyhow!("the engine thread panicked"))??;
    Ok(FirstPublish {
        events: total,
        elapsed,
    })
}

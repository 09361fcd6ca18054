//! The engine loop against a fake sink, with tokio's paused clock: coalescing, leadership,
//! orphan marking, drift restores, write problems in the statuses, KubeStellar's
//! finalizer.

use std::sync::Mutex;

use bindery_ingest::{EventType, ResourceRef, Space};
use serde_json::{Value, json};

use super::*;
use crate::observe::metrics::MetricsOptions;
use crate::runtime::health::LIVENESS_THRESHOLD;
use crate::test_support::{configmaps, policies, wecs};

/// What the engine loop handed to the sink, in order.
#[derive(Clone, Debug, PartialEq)]
enum Handed {
    /// A Binding, present (with its destinations) or absent.
    Binding(String, Option<Vec<String>>),
    /// A status: the policy, its problems and its Binding's problem.
    Status(String, Vec<String>, Option<String>),
    /// KubeStellar's finalizer to remove.
    Finalizer(String),
    /// A returned status: the object's key and what is written (`None`: nothing).
    Report(String, Option<Value>),
    /// A CombinedStatus (`namespace/name`): its `results`, or `None` to delete it.
    Combined(String, Option<Value>),
    /// A StatusCollector's status: name, observed generation, errors.
    Collector(String, i64, Vec<String>),
}

struct FakeSink {
    handed: Mutex<Vec<Handed>>,
    /// The missing StatusCollectors of each status handed over, in order.
    missing: Mutex<Vec<(String, Option<Vec<String>>)>>,
    stored: Mutex<Vec<(String, bool)>>,
    /// The stored CombinedStatuses, once listed.
    stored_combined: Mutex<Option<Vec<(String, bool)>>>,
    leading: watch::Sender<bool>,
}

impl FakeSink {
    fn new(leading: bool) -> Arc<FakeSink> {
        Arc::new(FakeSink {
            handed: Mutex::default(),
            missing: Mutex::default(),
            stored: Mutex::default(),
            stored_combined: Mutex::default(),
            leading: watch::channel(leading).0,
        })
    }

    /// What was handed over since the last call.
    fn take(&self) -> Vec<Handed> {
        std::mem::take(&mut self.handed.lock().unwrap())
    }
}

impl BindingWriter for Arc<FakeSink> {
    fn submit(&self, desired: DesiredBinding) {
        let destinations = desired.binding.map(|b| {
            b["spec"]["destinations"]
                .as_array()
                .map(|ds| {
                    ds.iter()
                        .map(|d| d["clusterId"].as_str().unwrap().to_string())
                        .collect()
                })
                .unwrap_or_default()
        });
        let handed = Handed::Binding(desired.name, destinations);
        self.handed.lock().unwrap().push(handed);
    }
    fn submit_status(&self, desired: DesiredStatus) {
        let missing = (desired.policy.clone(), desired.missing_collectors.clone());
        self.missing.lock().unwrap().push(missing);
        let handed = Handed::Status(desired.policy, desired.errors, desired.binding_problem);
        self.handed.lock().unwrap().push(handed);
    }
    fn remove_finalizer(&self, name: String) {
        self.handed.lock().unwrap().push(Handed::Finalizer(name));
    }
    fn submit_report(&self, desired: DesiredReport) {
        let report = desired.report.as_ref().map(|r| r.to_json());
        self.handed
            .lock()
            .unwrap()
            .push(Handed::Report(desired.key(), report));
    }
    fn submit_combined(&self, desired: DesiredCombined) {
        let results = desired.object.as_ref().map(|o| o["results"].clone());
        self.handed
            .lock()
            .unwrap()
            .push(Handed::Combined(desired.key(), results));
    }
    fn submit_collector_status(&self, d: DesiredCollectorStatus) {
        let handed = Handed::Collector(d.name, d.observed_generation, d.errors);
        self.handed.lock().unwrap().push(handed);
    }
    fn combined_listed(&self) -> bool {
        self.stored_combined.lock().unwrap().is_some()
    }
    fn stored_combined(&self) -> Vec<(String, bool)> {
        self.stored_combined
            .lock()
            .unwrap()
            .clone()
            .unwrap_or_default()
    }
    fn stored_bindings(&self) -> Vec<(String, bool)> {
        self.stored.lock().unwrap().clone()
    }
    fn leading(&self) -> watch::Receiver<bool> {
        self.leading.subscribe()
    }
}

const WINDOW: Duration = Duration::from_millis(250);

fn event(resource: ResourceRef, event_type: EventType, object: Option<Value>) -> WatchEvent {
    WatchEvent {
        ts: 0,
        resource,
        event_type,
        object,
    }
}

fn wec(name: &str, env: &str) -> Value {
    json!({"apiVersion": "cluster.open-cluster-management.io/v1", "kind": "ManagedCluster",
           "metadata": {"name": name, "resourceVersion": "1", "labels": {"env": env}}})
}

fn policy(name: &str, generation: i64, selector: Value) -> Value {
    json!({"apiVersion": "control.kubestellar.io/v1alpha1", "kind": "BindingPolicy",
           "metadata": {"name": name, "uid": format!("uid-{name}"), "generation": generation},
           "spec": {"clusterSelectors": [selector], "downsync": [{"resources": ["configmaps"]}]}})
}

fn configmap(name: &str, rv: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap",
           "metadata": {"name": name, "namespace": "ns", "resourceVersion": rv}})
}

/// An engine loop on `sink`, fed the initial lists: WECs c1 (edge) and c2 (core), policy
/// `p` selecting edge, one ConfigMap.
fn started(sink: &Arc<FakeSink>) -> EngineLoop<Arc<FakeSink>> {
    let metrics = Arc::new(Metrics::new(MetricsOptions { per_policy: false }));
    let health = Arc::new(Health::new(LIVENESS_THRESHOLD));
    let mut lp = EngineLoop::new(sink.clone(), None, WINDOW, Pipeline::new(), metrics, health);
    let edge = json!({"matchLabels": {"env": "edge"}});
    for (resource, objects) in [
        (wecs(), vec![wec("c1", "edge"), wec("c2", "core")]),
        (policies(), vec![policy("p", 1, edge)]),
        (configmaps(), vec![configmap("a", "5")]),
    ] {
        lp.push(event(resource.clone(), EventType::Reset, None))
            .unwrap();
        for o in objects {
            lp.push(event(resource.clone(), EventType::Added, Some(o)))
                .unwrap();
        }
        lp.push(event(resource, EventType::Synced, None)).unwrap();
    }
    lp
}

/// [`started`], its first Bindings handed over (and forgotten by the fake sink).
async fn published(sink: &Arc<FakeSink>) -> EngineLoop<Arc<FakeSink>> {
    let mut lp = started(sink);
    turn(&mut lp);
    tokio::time::advance(WINDOW).await;
    turn(&mut lp);
    assert!(
        !sink.take().is_empty(),
        "the first Bindings are handed over"
    );
    lp
}

/// One turn of the loop (what `serve` does after each wake-up).
fn turn(lp: &mut EngineLoop<Arc<FakeSink>>) {
    lp.close_epoch();
    lp.hand_over(false);
}

fn binding(name: &str, destinations: &[&str]) -> Handed {
    Handed::Binding(
        name.into(),
        Some(destinations.iter().map(|d| d.to_string()).collect()),
    )
}

fn ok_status(name: &str) -> Handed {
    Handed::Status(name.into(), vec![], None)
}

#[tokio::test(start_paused = true)]
async fn changes_are_handed_over_once_per_coalescing_window() {
    let sink = FakeSink::new(true);
    let mut lp = started(&sink);
    turn(&mut lp);
    assert_eq!(sink.take(), [], "nothing before the window has passed");
    tokio::time::advance(WINDOW).await;
    turn(&mut lp);
    assert_eq!(sink.take(), [binding("p", &["c1"]), ok_status("p")]);

    // Two changes within one window: one hand-over, with the latest state.
    lp.push(event(wecs(), EventType::Modified, Some(wec("c2", "edge"))))
        .unwrap();
    turn(&mut lp);
    tokio::time::advance(WINDOW / 2).await;
    update_configmap(&mut lp, "6");
    turn(&mut lp);
    assert_eq!(sink.take(), [], "the window runs from the first change");
    tokio::time::advance(WINDOW / 2).await;
    turn(&mut lp);
    assert_eq!(sink.take(), [binding("p", &["c1", "c2"]), ok_status("p")]);
}

#[tokio::test(start_paused = true)]
async fn at_the_first_publish_only_managed_orphans_are_deleted() {
    let sink = FakeSink::new(true);
    *sink.stored.lock().unwrap() = vec![
        ("p".into(), true),
        ("gone".into(), true),
        ("someone-elses".into(), false),
    ];
    let mut lp = started(&sink);
    turn(&mut lp);
    tokio::time::advance(WINDOW).await;
    turn(&mut lp);
    let handed = sink.take();
    assert!(
        handed.contains(&Handed::Binding("gone".into(), None)),
        "{handed:?}"
    );
    assert!(handed.contains(&binding("p", &["c1"])), "{handed:?}");
    assert!(
        !handed
            .iter()
            .any(|h| matches!(h, Handed::Binding(n, _) if n == "someone-elses")),
        "an unmanaged Binding is never touched: {handed:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_follower_hands_over_nothing_until_it_leads_then_everything() {
    let sink = FakeSink::new(false);
    *sink.stored.lock().unwrap() = vec![("gone".into(), true)];
    let mut lp = started(&sink);
    for _ in 0..3 {
        turn(&mut lp);
        tokio::time::advance(WINDOW).await;
    }
    assert_eq!(sink.take(), []);
    sink.leading.send_replace(true);
    lp.took_over();
    turn(&mut lp);
    let handed = sink.take();
    assert!(handed.contains(&binding("p", &["c1"])), "{handed:?}");
    assert!(
        handed.contains(&Handed::Binding("gone".into(), None)),
        "{handed:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn write_problems_reach_the_status_and_leave_it_when_mended() {
    let sink = FakeSink::new(true);
    let mut lp = published(&sink).await;
    let problem = |problem: Option<&str>| SinkEvent::Problem {
        name: "p".into(),
        problem: problem.map(String::from),
    };
    lp.sink_event(problem(Some("too large"))).unwrap();
    turn(&mut lp);
    assert_eq!(
        sink.take(),
        [Handed::Status("p".into(), vec![], Some("too large".into()))],
        "only the status: the Binding is unchanged"
    );
    lp.sink_event(problem(Some("too large"))).unwrap();
    turn(&mut lp);
    assert_eq!(sink.take(), [], "the same problem: nothing new");
    lp.sink_event(problem(None)).unwrap();
    turn(&mut lp);
    assert_eq!(sink.take(), [ok_status("p")]);
}

#[tokio::test(start_paused = true)]
async fn a_drifted_binding_is_restored_after_its_backoff_and_the_window() {
    let sink = FakeSink::new(true);
    let mut lp = published(&sink).await;
    lp.sink_event(SinkEvent::Drift(Drift {
        name: "p".into(),
        delay: Duration::from_secs(2),
    }))
    .unwrap();
    tokio::time::advance(Duration::from_secs(2)).await;
    turn(&mut lp);
    assert_eq!(sink.take(), [], "the backoff and then the window");
    tokio::time::advance(WINDOW).await;
    turn(&mut lp);
    assert_eq!(sink.take(), [binding("p", &["c1"]), ok_status("p")]);
}

#[tokio::test(start_paused = true)]
async fn kubestellars_finalizer_goes_after_the_binding_of_a_policy_being_deleted() {
    let sink = FakeSink::new(true);
    let mut lp = published(&sink).await;
    let mut deleting = policy("p", 1, json!({"matchLabels": {"env": "edge"}}));
    deleting["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
    deleting["metadata"]["finalizers"] = json!(["bindingpolicy.kubestellar.io/kscontroller"]);
    lp.push(event(policies(), EventType::Modified, Some(deleting)))
        .unwrap();
    turn(&mut lp);
    assert_eq!(
        sink.take(),
        [],
        "its Binding's deletion is not handed over yet"
    );
    tokio::time::advance(WINDOW).await;
    turn(&mut lp);
    assert_eq!(
        sink.take(),
        [
            Handed::Binding("p".into(), None),
            Handed::Finalizer("p".into())
        ]
    );
}

/// An initial list larger than a batch is taken a batch per wake (the loop's other
/// duties run in between), and published once it has synced.
#[tokio::test(start_paused = true)]
async fn a_large_initial_list_is_taken_in_batches() {
    const OBJECTS: usize = 200_000;
    let sink = FakeSink::new(true);
    let metrics = Arc::new(Metrics::new(MetricsOptions { per_policy: false }));
    let health = Arc::new(Health::new(LIVENESS_THRESHOLD));
    let mut lp = EngineLoop::new(sink.clone(), None, WINDOW, Pipeline::new(), metrics, health);
    let edge = json!({"matchLabels": {"env": "edge"}});
    let mut events = Vec::with_capacity(OBJECTS + 8);
    for (resource, objects) in [
        (wecs(), vec![wec("c1", "edge")]),
        (policies(), vec![policy("p", 1, edge)]),
    ] {
        events.push(event(resource.clone(), EventType::Reset, None));
        for o in objects {
            events.push(event(resource.clone(), EventType::Added, Some(o)));
        }
        events.push(event(resource, EventType::Synced, None));
    }
    events.push(event(configmaps(), EventType::Reset, None));
    for i in 0..OBJECTS {
        let cm = configmap(&format!("cm{i}"), "1");
        events.push(event(configmaps(), EventType::Added, Some(cm)));
    }
    events.push(event(configmaps(), EventType::Synced, None));
    let total = events.len();
    let (tx, mut rx) = mpsc::channel(total);
    for e in events {
        tx.try_send(e).unwrap();
    }
    let mut batches = Vec::new();
    while let Ok(first) = rx.try_recv() {
        batches.push(lp.take_events(first, &mut rx).unwrap());
        turn(&mut lp);
    }
    let full = total / MAX_EVENTS_PER_WAKE;
    assert_eq!(batches.len(), full + 1, "{batches:?}");
    assert!(batches[..full].iter().all(|&n| n == MAX_EVENTS_PER_WAKE));
    assert_eq!(batches[full], total % MAX_EVENTS_PER_WAKE);
    tokio::time::advance(WINDOW).await;
    turn(&mut lp);
    let binding = lp.pipeline.engine().binding("p").unwrap();
    assert_eq!(binding.namespace_scope.len(), OBJECTS);
    assert_eq!(sink.take().len(), 2, "the Binding and its status, once");
}

fn work_statuses() -> ResourceRef {
    ResourceRef::new(
        Space::Its,
        "control.kubestellar.io",
        "v1alpha1",
        "workstatuses",
    )
}

/// A WorkStatus in WEC `wec` reporting ConfigMap `ns/a` with `status`.
fn work_status(wec: &str, status: Value) -> Value {
    json!({"apiVersion": "control.kubestellar.io/v1alpha1", "kind": "WorkStatus",
           "metadata": {"name": "w-a", "namespace": wec, "resourceVersion": "3"},
           "spec": {"sourceRef": {"group": "", "version": "v1", "resource": "configmaps",
                                  "kind": "ConfigMap", "namespace": "ns", "name": "a"}},
           "status": status})
}

/// Policy `s` asks for singleton status of the ConfigMaps on the edge WEC (c1).
fn singleton_policy() -> Value {
    json!({"apiVersion": "control.kubestellar.io/v1alpha1", "kind": "BindingPolicy",
           "metadata": {"name": "s", "uid": "uid-s", "generation": 1},
           "spec": {"clusterSelectors": [{"matchLabels": {"env": "edge"}}],
                    "downsync": [{"resources": ["configmaps"], "wantSingletonReportedState": true}]}})
}

/// The reports handed over since the last call.
fn reports(sink: &Arc<FakeSink>) -> Vec<Handed> {
    sink.take()
        .into_iter()
        .filter(|h| matches!(h, Handed::Report(..)))
        .collect()
}

#[tokio::test(start_paused = true)]
async fn returned_statuses_wait_for_the_work_statuses_list_and_the_flag() {
    for status_return in [true, false] {
        let sink = FakeSink::new(true);
        let mut lp = published(&sink).await.with_status_return(status_return);
        lp.push(event(
            policies(),
            EventType::Modified,
            Some(singleton_policy()),
        ))
        .unwrap();
        turn(&mut lp);
        tokio::time::advance(WINDOW).await;
        turn(&mut lp);
        assert_eq!(reports(&sink), [], "no WorkStatuses watched yet");
        // The WorkStatuses' list begins: nothing until it completes.
        lp.push(event(work_statuses(), EventType::Reset, None))
            .unwrap();
        lp.push(event(
            work_statuses(),
            EventType::Added,
            Some(work_status("c1", json!({"phase": "Ready"}))),
        ))
        .unwrap();
        turn(&mut lp);
        tokio::time::advance(WINDOW).await;
        turn(&mut lp);
        assert_eq!(reports(&sink), [], "the WorkStatuses' list is not complete");
        lp.push(event(work_statuses(), EventType::Synced, None))
            .unwrap();
        turn(&mut lp);
        tokio::time::advance(WINDOW).await;
        turn(&mut lp);
        let want = Handed::Report(
            "/configmaps/ns/a".into(),
            Some(json!({"status": {"phase": "Ready"}, "label": "singleton"})),
        );
        let expected = if status_return { vec![want] } else { vec![] };
        assert_eq!(reports(&sink), expected, "status return {status_return}");
    }
}

fn status_collectors() -> ResourceRef {
    ResourceRef::new(
        Space::Wds,
        "control.kubestellar.io",
        "v1alpha1",
        "statuscollectors",
    )
}

/// The CombinedStatuses and collector statuses handed over since the last call.
fn combined(sink: &Arc<FakeSink>) -> Vec<Handed> {
    sink.take()
        .into_iter()
        .filter(|h| matches!(h, Handed::Combined(..) | Handed::Collector(..)))
        .collect()
}

#[tokio::test(start_paused = true)]
async fn combined_statuses_wait_for_the_stored_list_then_orphans_go_and_drift_is_restored() {
    let sink = FakeSink::new(true);
    let mut lp = published(&sink).await;
    // Policy `cs` collects the edge WECs' count for ConfigMap ns/a (given a uid).
    let cs = json!({"apiVersion": "control.kubestellar.io/v1alpha1", "kind": "BindingPolicy",
        "metadata": {"name": "cs", "uid": "uid-cs", "generation": 1},
        "spec": {"clusterSelectors": [{"matchLabels": {"env": "edge"}}],
                 "downsync": [{"resources": ["configmaps"], "statusCollectors": ["count"]}]}});
    let collector = json!({"apiVersion": "control.kubestellar.io/v1alpha1", "kind": "StatusCollector",
        "metadata": {"name": "count", "generation": 2},
        "spec": {"combinedFields": [{"name": "wecs", "type": "COUNT"}], "limit": 20}});
    let mut a = configmap("a", "6");
    a["metadata"]["uid"] = json!("uid-a");
    lp.push(event(policies(), EventType::Added, Some(cs)))
        .unwrap();
    lp.push(event(configmaps(), EventType::Modified, Some(a)))
        .unwrap();
    for (resource, object) in [
        (status_collectors(), Some(collector)),
        (work_statuses(), None),
    ] {
        lp.push(event(resource.clone(), EventType::Reset, None))
            .unwrap();
        if let Some(o) = object {
            lp.push(event(resource.clone(), EventType::Added, Some(o)))
                .unwrap();
        }
        lp.push(event(resource, EventType::Synced, None)).unwrap();
    }
    turn(&mut lp);
    tokio::time::advance(WINDOW).await;
    turn(&mut lp);
    assert_eq!(
        combined(&sink),
        [Handed::Collector("count".into(), 2, vec![])],
        "collector statuses go at once; CombinedStatuses wait for the stored ones' list"
    );

    // Listed: one of Bindery's with no (policy, object) any more, one of someone else.
    *sink.stored_combined.lock().unwrap() = Some(vec![
        ("ns/gone.uid-cs".into(), true),
        ("ns/foreign".into(), false),
    ]);
    turn(&mut lp);
    let count = json!([{"name": "count", "columnNames": ["wecs"],
                        "rows": [{"columns": [{"type": "Number", "float": "1"}]}]}]);
    let mut handed = combined(&sink);
    handed.sort_by_key(|h| format!("{h:?}"));
    assert_eq!(
        handed,
        [
            Handed::Combined("ns/gone.uid-cs".into(), None),
            Handed::Combined("ns/uid-a.uid-cs".into(), Some(count.clone())),
        ]
    );

    // Another writer changed it: handed over again after the window.
    lp.sink_event(SinkEvent::CombinedDrift(bindery_sink::CombinedDrift {
        namespace: "ns".into(),
        name: "uid-a.uid-cs".into(),
        delay: Duration::ZERO,
    }))
    .unwrap();
    turn(&mut lp);
    assert_eq!(combined(&sink), [], "not before the window");
    tokio::time::advance(WINDOW).await;
    turn(&mut lp);
    assert_eq!(
        combined(&sink),
        [Handed::Combined("ns/uid-a.uid-cs".into(), Some(count))]
    );
    // Drift of one the engine does not have: deleted again.
    lp.sink_event(SinkEvent::CombinedDrift(bindery_sink::CombinedDrift {
        namespace: "ns".into(),
        name: "gone.uid-cs".into(),
        delay: Duration::ZERO,
    }))
    .unwrap();
    tokio::time::advance(WINDOW).await;
    turn(&mut lp);
    assert_eq!(
        combined(&sink),
        [Handed::Combined("ns/gone.uid-cs".into(), None)]
    );
}

/// A valid StatusCollector `name`.
fn collector(name: &str) -> Value {
    json!({"apiVersion": "control.kubestellar.io/v1alpha1", "kind": "StatusCollector",
           "metadata": {"name": name, "generation": 1, "resourceVersion": "1"},
           "spec": {"select": [{"name": "wec", "def": "inventory.name"}], "limit": 20}})
}

#[tokio::test(start_paused = true)]
async fn a_change_of_missing_collectors_writes_the_status_again() {
    for status_return in [true, false] {
        let sink = FakeSink::new(true);
        let mut lp = published(&sink).await.with_status_return(status_return);
        sink.missing.lock().unwrap().clear();
        lp.push(event(status_collectors(), EventType::Reset, None))
            .unwrap();
        lp.push(event(status_collectors(), EventType::Synced, None))
            .unwrap();
        // Policy `p` now names collectors a and b: its Binding changes, and its status
        // follows the Binding's write.
        let mut p = policy("p", 2, json!({"matchLabels": {"env": "edge"}}));
        p["spec"]["downsync"][0]["statusCollectors"] = json!(["b", "a"]);
        lp.push(event(policies(), EventType::Modified, Some(p)))
            .unwrap();
        turn(&mut lp);
        tokio::time::advance(WINDOW).await;
        turn(&mut lp);
        assert_eq!(sink.take(), [binding("p", &["c1"]), ok_status("p")]);
        let missing = |names: &[&str]| {
            let names = names.iter().map(|n| n.to_string()).collect();
            vec![("p".to_string(), status_return.then_some(names))]
        };
        let handed = std::mem::take(&mut *sink.missing.lock().unwrap());
        assert_eq!(handed, missing(&["a", "b"]));
        // Collector a appears: the Binding is the same; with status return the status is
        // handed over again at once (no window), without it nothing is.
        lp.push(event(
            status_collectors(),
            EventType::Added,
            Some(collector("a")),
        ))
        .unwrap();
        turn(&mut lp);
        let handed = std::mem::take(&mut *sink.missing.lock().unwrap());
        if status_return {
            // With the collector's own status.
            let a = Handed::Collector("a".into(), 1, vec![]);
            assert_eq!(sink.take(), [a, ok_status("p")]);
            assert_eq!(handed, missing(&["b"]));
        } else {
            assert_eq!(sink.take(), []);
            assert_eq!(handed, []);
        }
        // A change that leaves the missing set as it is hands no policy status over
        // (only the new collector's own status, with status return).
        lp.push(event(
            status_collectors(),
            EventType::Added,
            Some(collector("c")),
        ))
        .unwrap();
        turn(&mut lp);
        tokio::time::advance(WINDOW).await;
        turn(&mut lp);
        let c = status_return.then(|| Handed::Collector("c".into(), 1, vec![]));
        assert_eq!(sink.take(), Vec::from_iter(c));
    }
}

#[tokio::test(start_paused = true)]
async fn an_epoch_lingers_half_a_window_and_its_window_runs_from_its_first_event() {
    let sink = FakeSink::new(true);
    let mut lp = published(&sink).await;
    assert!(!lp.epoch_due(Instant::now()), "no epoch is open");
    update_configmap(&mut lp, "6");
    assert!(!lp.epoch_due(Instant::now()), "it has just opened");
    tokio::time::advance(WINDOW / 2).await;
    assert!(lp.epoch_due(Instant::now()), "it has lingered");
    turn(&mut lp);
    assert_eq!(sink.take(), [], "the window has not passed");
    tokio::time::advance(WINDOW / 2).await;
    turn(&mut lp);
    assert_eq!(
        sink.take(),
        [binding("p", &["c1"]), ok_status("p")],
        "the window ran from the event, not from the epoch's close"
    );
}

/// ConfigMap `a` updated to `rv` in the open epoch.
fn update_configmap(lp: &mut EngineLoop<Arc<FakeSink>>, rv: &str) {
    lp.push(event(
        configmaps(),
        EventType::Modified,
        Some(configmap("a", rv)),
    ))
    .unwrap();
}

/// ConfigMap `a` updated to each of `versions`, an epoch each.
fn move_configmap(lp: &mut EngineLoop<Arc<FakeSink>>, versions: &[&str]) {
    for rv in versions {
        update_configmap(lp, rv);
        turn(lp);
    }
}

#[tokio::test(start_paused = true)]
async fn changes_undone_within_the_window_hand_nothing_over() {
    let sink = FakeSink::new(true);
    let mut lp = published(&sink).await;
    // The object moves to 6 and back to 5 in two epochs (as Bindery's own status write
    // and its answer do): the Binding is as handed over.
    move_configmap(&mut lp, &["6", "5"]);
    tokio::time::advance(WINDOW).await;
    turn(&mut lp);
    assert_eq!(sink.take(), [], "nothing changed in the end");
    // Moved on: handed over.
    move_configmap(&mut lp, &["6", "7"]);
    tokio::time::advance(WINDOW).await;
    turn(&mut lp);
    assert_eq!(sink.take(), [binding("p", &["c1"]), ok_status("p")]);
}

#[tokio::test(start_paused = true)]
async fn on_taking_over_even_a_netted_binding_is_handed_over() {
    let sink = FakeSink::new(true);
    let mut lp = published(&sink).await;
    sink.leading.send_replace(false);
    move_configmap(&mut lp, &["6", "5"]);
    // What the other leader wrote meanwhile is not known: compared again.
    sink.leading.send_replace(true);
    lp.took_over();
    tokio::time::advance(WINDOW).await;
    turn(&mut lp);
    let handed = sink.take();
    assert!(handed.contains(&binding("p", &["c1"])), "{handed:?}");
}

#[tokio::test(start_paused = true)]
async fn a_write_due_closes_the_open_epoch_first() {
    let sink = FakeSink::new(true);
    let mut lp = published(&sink).await;
    move_configmap(&mut lp, &["6"]);
    tokio::time::advance(WINDOW * 3 / 4).await;
    update_configmap(&mut lp, "7");
    assert!(
        !lp.epoch_due(Instant::now()),
        "the new epoch has not lingered"
    );
    tokio::time::advance(WINDOW / 4).await;
    assert!(
        lp.epoch_due(Instant::now()),
        "the first change's write is due: the later one joins it"
    );
}

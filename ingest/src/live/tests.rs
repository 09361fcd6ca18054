//! The live run against a fake API server: a tower service behind a `kube::Client`
//! that answers discovery, lists, and watches that stay open (the CRD watch sends
//! what a test pushes).

use std::collections::BTreeSet;
use std::convert::Infallible;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;
use http::{Request, Response};
use http_body::Frame;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};

use super::*;
use crate::watchlog::{EventType, ResourceRef};

type Body = UnsyncBoxBody<Bytes, Infallible>;

struct Fake {
    /// Whether the `example.com` group (a CRD) is served.
    widgets: AtomicBool,
    /// Lines sent to open CRD watches.
    crd_events: broadcast::Sender<String>,
    /// Whether the WorkStatus CRD is served: [`ABSENT`], [`PRESENT`] or [`FORBIDDEN`]
    /// (served, but lists of it are refused).
    work_statuses: AtomicU8,
    /// The query strings of the requests for WorkStatuses.
    work_status_queries: Mutex<Vec<String>>,
}

const ABSENT: u8 = 0;
const PRESENT: u8 = 1;
const FORBIDDEN: u8 = 2;

fn forbidden() -> Response<Body> {
    let mut response = ok(
        json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "Forbidden",
               "code": 403, "message": "workstatuses.control.kubestellar.io is forbidden"}),
    );
    *response.status_mut() = http::StatusCode::FORBIDDEN;
    response
}

fn json_body(value: Value) -> Body {
    Full::new(Bytes::from(value.to_string())).boxed_unsync()
}

fn ok(value: Value) -> Response<Body> {
    Response::new(json_body(value))
}

fn not_found() -> Response<Body> {
    let mut response = ok(
        json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                                 "reason": "NotFound", "code": 404, "message": "not found"}),
    );
    *response.status_mut() = http::StatusCode::NOT_FOUND;
    response
}

fn resources(group_version: &str, list: &[(&str, &str, bool)]) -> Value {
    let resources: Vec<Value> = list
        .iter()
        .map(|(name, kind, namespaced)| {
            json!({"name": name, "singularName": "", "kind": kind, "namespaced": namespaced,
                   "verbs": ["get", "list", "watch"]})
        })
        .collect();
    json!({"kind": "APIResourceList", "groupVersion": group_version, "resources": resources})
}

fn group(name: &str, version: &str) -> Value {
    let gv = json!({"groupVersion": format!("{name}/{version}"), "version": version});
    json!({"name": name, "versions": [gv.clone()], "preferredVersion": gv})
}

fn list(items: Vec<Value>) -> Value {
    json!({"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadataList",
           "metadata": {"resourceVersion": "1"}, "items": items})
}

impl Fake {
    fn handle(&self, request: &Request<kube::client::Body>) -> Response<Body> {
        let path = request.uri().path();
        let watch = request
            .uri()
            .query()
            .is_some_and(|q| q.contains("watch=true"));
        let widgets = self.widgets.load(Ordering::SeqCst);
        let work_statuses = self.work_statuses.load(Ordering::SeqCst);
        let ws_path = "/apis/control.kubestellar.io/v1alpha1/workstatuses";
        if path == ws_path {
            let query = request.uri().query().unwrap_or_default().to_string();
            self.work_status_queries.lock().unwrap().push(query);
            match work_statuses {
                ABSENT => return not_found(),
                FORBIDDEN => return forbidden(),
                _ => {}
            }
        }
        if watch {
            let stream: BoxStream<'static, Result<Frame<Bytes>, Infallible>> =
                if path.ends_with("/customresourcedefinitions") {
                    futures::stream::unfold(self.crd_events.subscribe(), |mut rx| async move {
                        loop {
                            match rx.recv().await {
                                Ok(line) => return Some((Ok(Frame::data(Bytes::from(line))), rx)),
                                Err(broadcast::error::RecvError::Lagged(_)) => {}
                                Err(broadcast::error::RecvError::Closed) => return None,
                            }
                        }
                    })
                    .boxed()
                } else {
                    futures::stream::pending().boxed()
                };
            return Response::new(StreamBody::new(stream).boxed_unsync());
        }
        match path {
            "/api" => ok(json!({"kind": "APIVersions", "versions": ["v1"],
                                "serverAddressByClientCIDRs": []})),
            "/api/v1" => ok(resources(
                "v1",
                &[
                    ("namespaces", "Namespace", false),
                    ("configmaps", "ConfigMap", true),
                    ("events", "Event", true),
                    ("pods/status", "Pod", true),
                ],
            )),
            "/apis" => {
                let mut groups = vec![
                    group("apps", "v1"),
                    group("apiextensions.k8s.io", "v1"),
                    group("control.kubestellar.io", "v1alpha1"),
                ];
                if widgets {
                    groups.push(group("example.com", "v1"));
                }
                ok(json!({"kind": "APIGroupList", "groups": groups}))
            }
            "/apis/apps/v1" => ok(resources("apps/v1", &[("deployments", "Deployment", true)])),
            "/apis/apiextensions.k8s.io/v1" => ok(resources(
                "apiextensions.k8s.io/v1",
                &[(
                    "customresourcedefinitions",
                    "CustomResourceDefinition",
                    false,
                )],
            )),
            "/apis/control.kubestellar.io/v1alpha1" => {
                let mut list = vec![
                    ("bindingpolicies", "BindingPolicy", false),
                    ("bindings", "Binding", false),
                ];
                if work_statuses != ABSENT {
                    list.push(("workstatuses", "WorkStatus", true));
                    list.push(("workstatuses/status", "WorkStatus", true));
                }
                ok(resources("control.kubestellar.io/v1alpha1", &list))
            }
            p if p == ws_path => ok(json!({
                "apiVersion": "control.kubestellar.io/v1alpha1", "kind": "WorkStatusList",
                "metadata": {"resourceVersion": "1"},
                "items": [{"metadata": {"name": "ws1", "namespace": "cluster1", "uid": "w-uid",
                                         "resourceVersion": "7", "managedFields": [{"manager": "x"}],
                                         "labels": {"transport.kubestellar.io/originWdsName": "wds1"}},
                           "spec": {"sourceRef": {"group": "apps", "version": "v1",
                                                  "resource": "deployments", "kind": "Deployment",
                                                  "namespace": "web", "name": "nginx"},
                                    "extra": "x"},
                           "status": {"replicas": 1},
                           "statusDetails": {"x": 1}}]})),
            "/apis/example.com/v1" if widgets => {
                ok(resources("example.com/v1", &[("widgets", "Widget", true)]))
            }
            "/apis/example.com/v1" => not_found(),
            "/api/v1/namespaces" => ok(list(vec![json!({"metadata": {
                "name": "default", "uid": "ns-uid", "resourceVersion": "1",
                "labels": {"team": "a"}, "annotations": {"secret": "s3cr3t"},
                "managedFields": [{"manager": "kubectl"}]}})])),
            "/apis/cluster.open-cluster-management.io/v1/managedclusters" => {
                ok(list(vec![json!({"metadata": {
                    "name": "cluster1", "uid": "c-uid", "resourceVersion": "5",
                    "labels": {"location-group": "edge"}}})]))
            }
            "/apis/control.kubestellar.io/v1alpha1/bindingpolicies" => ok(json!({
                "apiVersion": "control.kubestellar.io/v1alpha1", "kind": "BindingPolicyList",
                "metadata": {"resourceVersion": "1"},
                "items": [{"metadata": {"name": "p", "uid": "p-uid", "resourceVersion": "3",
                                         "generation": 2, "annotations": {"x": "y"}},
                           "spec": {"clusterSelectors": []}, "status": {"errors": []}}]})),
            "/apis/example.com/v1/widgets" if !widgets => not_found(),
            _ => ok(list(vec![])),
        }
    }
}

fn fake() -> (Arc<Fake>, kube::Client) {
    let fake = Arc::new(Fake {
        widgets: AtomicBool::new(false),
        crd_events: broadcast::channel(16).0,
        work_statuses: AtomicU8::new(ABSENT),
        work_status_queries: Mutex::new(Vec::new()),
    });
    let server = Arc::clone(&fake);
    let service = tower::service_fn(move |request: Request<kube::client::Body>| {
        let response = server.handle(&request);
        async move { Ok::<_, Infallible>(response) }
    });
    (fake, kube::Client::new(service, "default"))
}

fn config(client: &kube::Client) -> LiveConfig {
    LiveConfig {
        crd_debounce: Duration::from_millis(10),
        ..LiveConfig::new(client.clone(), client.clone())
    }
}

async fn next(rx: &mut mpsc::Receiver<WatchEvent>) -> WatchEvent {
    tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("an event within 10 s")
        .expect("the channel is open")
}

/// Receives events until one matches `done`; returns all of them.
async fn until(
    rx: &mut mpsc::Receiver<WatchEvent>,
    done: impl Fn(&WatchEvent) -> bool,
) -> Vec<WatchEvent> {
    let mut seen = Vec::new();
    loop {
        let event = next(rx).await;
        let stop = done(&event);
        seen.push(event);
        if stop {
            return seen;
        }
    }
}

fn is(event: &WatchEvent, event_type: EventType, resource: &str) -> bool {
    event.event_type == event_type && event.resource.resource == resource
}

fn widgets_v1() -> ResourceRef {
    ResourceRef::new(Space::Wds, "example.com", "v1", "widgets")
}

fn crd_line(event_type: &str) -> String {
    json!({"type": event_type, "object": {"apiVersion": "meta.k8s.io/v1",
           "kind": "PartialObjectMetadata",
           "metadata": {"name": "widgets.example.com", "resourceVersion": "9"}}})
    .to_string()
        + "\n"
}

#[tokio::test]
async fn live_run_resets_everything_first_then_follows_crds() {
    let (fake, client) = fake();
    let (tx, mut rx) = mpsc::channel(64);
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(LiveIngest::new(config(&client)).run(tx, shutdown.clone()));

    let watched: BTreeSet<String> = [
        "its:cluster.open-cluster-management.io/v1/managedclusters",
        "wds:control.kubestellar.io/v1alpha1/bindingpolicies",
        "wds:v1/namespaces",
        "wds:v1/configmaps",
        "wds:apps/v1/deployments",
        "wds:apiextensions.k8s.io/v1/customresourcedefinitions",
    ]
    .into_iter()
    .map(String::from)
    .collect();

    // One synthetic RESET per watched resource comes before anything else.
    let mut reset = BTreeSet::new();
    for _ in 0..watched.len() {
        let event = next(&mut rx).await;
        assert_eq!(event.event_type, EventType::Reset, "{event:?}");
        assert!(reset.insert(event.resource.to_string()), "twice: {event:?}");
    }
    assert_eq!(reset, watched);

    // Then every watcher lists (RESET, ADDED..., SYNCED).
    let mut synced = BTreeSet::new();
    let mut added = Vec::new();
    while synced != watched {
        let event = next(&mut rx).await;
        match event.event_type {
            EventType::Synced => {
                synced.insert(event.resource.to_string());
            }
            EventType::Added => added.push(event),
            EventType::Reset => {}
            other => panic!("unexpected {other}: {event:?}"),
        }
    }
    let object = |resource: &str| {
        added
            .iter()
            .find(|e| e.resource.resource == resource)
            .and_then(|e| e.object.clone())
            .unwrap()
    };
    assert_eq!(
        object("namespaces"),
        json!({"apiVersion": "v1", "kind": "Namespace",
               "metadata": {"name": "default", "uid": "ns-uid", "resourceVersion": "1",
                            "labels": {"team": "a"}}})
    );
    assert_eq!(
        object("managedclusters"),
        json!({"apiVersion": "cluster.open-cluster-management.io/v1", "kind": "ManagedCluster",
               "metadata": {"name": "cluster1", "uid": "c-uid", "resourceVersion": "5",
                            "labels": {"location-group": "edge"}}})
    );
    assert_eq!(
        object("bindingpolicies"),
        json!({"apiVersion": "control.kubestellar.io/v1alpha1", "kind": "BindingPolicy",
               "metadata": {"name": "p", "uid": "p-uid", "resourceVersion": "3", "generation": 2},
               "spec": {"clusterSelectors": []}})
    );

    // A CRD appears: its resource is RESET, then its watcher lists it.
    while fake.crd_events.receiver_count() == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    fake.widgets.store(true, Ordering::SeqCst);
    fake.crd_events.send(crd_line("ADDED")).unwrap();
    let seen = until(&mut rx, |e| is(e, EventType::Synced, "widgets")).await;
    let widgets: Vec<EventType> = seen
        .iter()
        .filter(|e| e.resource == widgets_v1())
        .map(|e| e.event_type)
        .collect();
    assert_eq!(
        widgets,
        [EventType::Reset, EventType::Reset, EventType::Synced]
    );

    // It vanishes: RESET then SYNCED clear it.
    fake.widgets.store(false, Ordering::SeqCst);
    fake.crd_events.send(crd_line("DELETED")).unwrap();
    let seen = until(&mut rx, |e| is(e, EventType::Synced, "widgets")).await;
    let widgets: Vec<EventType> = seen
        .iter()
        .filter(|e| e.resource == widgets_v1())
        .map(|e| e.event_type)
        .collect();
    assert_eq!(widgets, [EventType::Reset, EventType::Synced]);

    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("stops on shutdown")
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn live_run_stops_when_the_receiver_is_dropped() {
    let (_fake, client) = fake();
    let (tx, mut rx) = mpsc::channel(64);
    let task = tokio::spawn(LiveIngest::new(config(&client)).run(tx, CancellationToken::new()));
    next(&mut rx).await;
    drop(rx);
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("stops when the receiver is gone")
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn a_failing_initial_discovery_is_an_error() {
    let service = tower::service_fn(|_request: Request<kube::client::Body>| async {
        Ok::<_, Infallible>(not_found())
    });
    let client = kube::Client::new(service, "default");
    let (tx, _rx) = mpsc::channel(64);
    let err = LiveIngest::new(config(&client))
        .run(tx, CancellationToken::new())
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("API discovery in the wds failed"),
        "{err}"
    );
}

fn work_statuses() -> ResourceRef {
    ResourceRef::new(
        Space::Its,
        "control.kubestellar.io",
        "v1alpha1",
        "workstatuses",
    )
}

fn with_work_statuses(client: &kube::Client) -> LiveConfig {
    LiveConfig {
        work_statuses: Some("wds1".into()),
        work_status_poll: Duration::from_millis(50),
        ..config(client)
    }
}

/// Receives events until every one of `count` resources has synced once; returns them.
async fn until_synced(rx: &mut mpsc::Receiver<WatchEvent>, count: usize) -> Vec<WatchEvent> {
    let mut synced = BTreeSet::new();
    let mut seen = Vec::new();
    while synced.len() < count {
        let event = next(rx).await;
        if event.event_type == EventType::Synced {
            synced.insert(event.resource.to_string());
        }
        seen.push(event);
    }
    seen
}

#[tokio::test]
async fn work_statuses_are_watched_while_the_its_serves_them() {
    let (fake, client) = fake();
    let (tx, mut rx) = mpsc::channel(64);
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(LiveIngest::new(with_work_statuses(&client)).run(tx, shutdown.clone()));

    // No WorkStatus CRD: the six other resources sync, nothing of WorkStatuses.
    let seen = until_synced(&mut rx, 6).await;
    assert!(
        seen.iter().all(|e| e.resource != work_statuses()),
        "{seen:?}"
    );

    // Forbidden: still nothing (checked, not watched).
    fake.work_statuses.store(FORBIDDEN, Ordering::SeqCst);
    let queries = || fake.work_status_queries.lock().unwrap().len();
    let before = queries();
    while queries() < before + 2 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(rx.try_recv().is_err(), "nothing sent while forbidden");

    // It appears: RESET, then the watcher lists it with the WDS's selector.
    fake.work_statuses.store(PRESENT, Ordering::SeqCst);
    let seen = until(&mut rx, |e| is(e, EventType::Synced, "workstatuses")).await;
    let types: Vec<EventType> = seen
        .iter()
        .filter(|e| e.resource == work_statuses())
        .map(|e| e.event_type)
        .collect();
    assert_eq!(
        types,
        [
            EventType::Reset,
            EventType::Reset,
            EventType::Added,
            EventType::Synced
        ]
    );
    let added = seen
        .iter()
        .find(|e| e.event_type == EventType::Added)
        .unwrap();
    assert_eq!(
        added.object.clone().unwrap(),
        json!({"apiVersion": "control.kubestellar.io/v1alpha1", "kind": "WorkStatus",
               "metadata": {"name": "ws1", "namespace": "cluster1", "uid": "w-uid",
                            "resourceVersion": "7",
                            "labels": {"transport.kubestellar.io/originWdsName": "wds1"}},
               "spec": {"sourceRef": {"group": "apps", "version": "v1",
                                      "resource": "deployments", "kind": "Deployment",
                                      "namespace": "web", "name": "nginx"}},
               "status": {"replicas": 1}})
    );
    // Every request for WorkStatuses (checks, list, watch) selects this WDS's.
    for query in fake.work_status_queries.lock().unwrap().iter() {
        assert!(
            query.contains("labelSelector=transport.kubestellar.io%2ForiginWdsName%3Dwds1"),
            "{query}"
        );
    }

    // It goes: its watch stops, RESET then SYNCED clear it.
    fake.work_statuses.store(ABSENT, Ordering::SeqCst);
    let seen = until(&mut rx, |e| is(e, EventType::Synced, "workstatuses")).await;
    let types: Vec<EventType> = seen
        .iter()
        .filter(|e| e.resource == work_statuses())
        .map(|e| e.event_type)
        .collect();
    assert_eq!(types, [EventType::Reset, EventType::Synced]);

    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("stops on shutdown")
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn work_statuses_served_at_start_are_in_the_initial_set() {
    let (fake, client) = fake();
    fake.work_statuses.store(PRESENT, Ordering::SeqCst);
    let (tx, mut rx) = mpsc::channel(64);
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(LiveIngest::new(with_work_statuses(&client)).run(tx, shutdown.clone()));
    let mut reset = BTreeSet::new();
    for _ in 0..7 {
        let event = next(&mut rx).await;
        assert_eq!(event.event_type, EventType::Reset, "{event:?}");
        reset.insert(event.resource.to_string());
    }
    assert!(reset.contains(&work_statuses().to_string()), "{reset:?}");
    until_synced(&mut rx, 7).await;
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("stops on shutdown")
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn without_a_wds_name_the_its_is_not_asked_for_work_statuses() {
    let (fake, client) = fake();
    fake.work_statuses.store(PRESENT, Ordering::SeqCst);
    let (tx, mut rx) = mpsc::channel(64);
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(LiveIngest::new(config(&client)).run(tx, shutdown.clone()));
    let seen = until_synced(&mut rx, 6).await;
    assert!(seen.iter().all(|e| e.resource != work_statuses()));
    assert!(fake.work_status_queries.lock().unwrap().is_empty());
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("stops on shutdown")
        .unwrap()
        .unwrap();
}

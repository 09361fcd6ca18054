//! The live run against a fake API server: a tower service behind a `kube::Client`
//! that answers discovery, lists, and watches that stay open (the CRD watch sends
//! what a test pushes).

use std::collections::BTreeSet;
use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
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
            "/apis/control.kubestellar.io/v1alpha1" => ok(resources(
                "control.kubestellar.io/v1alpha1",
                &[
                    ("bindingpolicies", "BindingPolicy", false),
                    ("bindings", "Binding", false),
                ],
            )),
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

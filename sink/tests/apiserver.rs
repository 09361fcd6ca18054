//! The API-server sink against a scripted mock API server (`tower-test`): request shapes,
//! skipping unchanged writes, retries, permanent failures, coalescing, statuses, drift
//! told by the watch on Bindings, ownership. The same against a real API server, with a
//! second writer: tests/tests/live/ownership.rs.

use std::time::Duration;

use bindery_engine::{Binding, WorkloadEntry};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use bindery_sink::{
    BindingSink, DesiredBinding, DesiredStatus, Drift, SinkConfig, SinkEvent, SinkEvents,
    SinkHandle, SinkObserver, WriteObject, WriteReport, WriteResult,
};
use http::{Method, Request, Response};
use kube::client::Body;
use serde_json::{Value, json};
use tokio::task::JoinHandle;
use tower_test::mock::{self, SendResponse};

/// The mock API server: the scripted requests, and the watches on Bindings, held open (a
/// watch answered ends, and the watcher starts another).
struct Handle {
    requests: mock::Handle<Request<Body>, Response<Body>>,
    watches: Vec<SendResponse<Response<Body>>>,
    /// What the sink reported of its finished writes (nothing when the test gave the
    /// sink an observer of its own).
    reports: Arc<Reports>,
}

impl Handle {
    /// Finished writes of `object` with `result`, as reported to the observer.
    fn count(&self, object: WriteObject, result: WriteResult) -> usize {
        let reports = self.reports.0.lock().unwrap();
        reports
            .iter()
            .filter(|r| r.0 == object && r.2 == result)
            .count()
    }

    /// Finished writes that reached the API server (reported with a latency).
    fn timed(&self) -> usize {
        self.reports
            .0
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.3)
            .count()
    }
}

fn is_watch<B>(req: &Request<B>) -> bool {
    req.uri().query().unwrap_or("").contains("watch=true")
}

const BINDINGS: &str = "/apis/control.kubestellar.io/v1alpha1/bindings";
const POLICIES: &str = "/apis/control.kubestellar.io/v1alpha1/bindingpolicies";

fn config() -> SinkConfig {
    SinkConfig {
        max_attempts: 4,
        initial_backoff: Duration::from_millis(100),
        max_backoff: Duration::from_secs(10),
        ..SinkConfig::default()
    }
}

fn binding(name: &str, clusters: &[&str], rv: &str) -> Binding {
    let entry = WorkloadEntry {
        group: "apps".into(),
        version: "v1".into(),
        resource: "deployments".into(),
        namespace: "ns".into(),
        name: "d".into(),
        resource_version: rv.into(),
        create_only: false,
        status_collectors: vec![],
        want_singleton_reported_state: false,
        want_multi_wec_reported_state: false,
    };
    Binding::new(
        name.into(),
        format!("uid-{name}"),
        clusters.iter().map(|c| c.to_string()).collect(),
        vec![entry],
    )
}

/// `obj` as the server would return it: with server-set metadata (and someone's label).
fn as_stored(mut obj: Value) -> Value {
    let meta = obj["metadata"].as_object_mut().unwrap();
    meta.insert("resourceVersion".into(), json!("100"));
    meta.insert("uid".into(), json!("binding-uid"));
    meta.insert("generation".into(), json!(1));
    meta.insert("labels".into(), json!({"someone": "else"}));
    obj
}

fn respond(send: SendResponse<Response<Body>>, code: u16, body: &Value) {
    let response = Response::builder()
        .status(code)
        .header("content-type", "application/json")
        .body(Body::from(serde_json::to_vec(body).unwrap()))
        .unwrap();
    send.send_response(response);
}

fn failure(code: u16, reason: &str, message: &str) -> Value {
    json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "code": code, "reason": reason, "message": message,
    })
}

fn list(kind: &str, items: Vec<Value>) -> Value {
    json!({
        "apiVersion": "control.kubestellar.io/v1alpha1",
        "kind": kind,
        "metadata": {"resourceVersion": "1"},
        "items": items,
    })
}

/// The next request that is not a watch (watches are held open).
async fn next_raw(handle: &mut Handle) -> (Request<Body>, SendResponse<Response<Body>>) {
    loop {
        let (req, send) = handle
            .requests
            .next_request()
            .await
            .expect("the client is alive");
        if is_watch(&req) {
            handle.watches.push(send);
        } else {
            return (req, send);
        }
    }
}

/// One request, with its body as JSON (`null` when empty).
async fn next(handle: &mut Handle) -> (Request<Value>, SendResponse<Response<Body>>) {
    let (req, send) = tokio::time::timeout(Duration::from_secs(600), next_raw(handle))
        .await
        .expect("a request");
    let (parts, body) = req.into_parts();
    let bytes = body.collect_bytes().await.unwrap();
    let json = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap()
    };
    (Request::from_parts(parts, json), send)
}

/// True when no request (but watches) arrives within a (paused-time) minute.
async fn quiet(handle: &mut Handle) -> bool {
    tokio::time::timeout(Duration::from_secs(60), next_raw(handle))
        .await
        .is_err()
}

/// Answers the open watch on Bindings with these events (`(type, object)`); the watch
/// then ends and the watcher opens the next one.
async fn watch_events(handle: &mut Handle, events: &[(&str, Value)]) {
    while handle.watches.is_empty() {
        let (req, send) = handle.requests.next_request().await.expect("alive");
        assert!(
            is_watch(&req),
            "a watch, not {} {}",
            req.method(),
            req.uri()
        );
        handle.watches.push(send);
    }
    let send = handle.watches.remove(0);
    let mut body = Vec::new();
    for (kind, object) in events {
        serde_json::to_writer(&mut body, &json!({"type": kind, "object": object})).unwrap();
        body.push(b'\n');
    }
    let response = Response::builder()
        .status(200)
        .header("content-type", "application/json")
        .body(Body::from(body))
        .unwrap();
    send.send_response(response);
}

/// Starts a sink whose LISTs return `bindings` and `policies`.
async fn start(
    config: SinkConfig,
    bindings: Vec<Value>,
    policies: Vec<Value>,
) -> (SinkHandle, SinkEvents, JoinHandle<()>, Handle) {
    let reports = Arc::new(Reports::default());
    let (sink, drift, task, mut handle) =
        start_observed(config, bindings, policies, reports.clone()).await;
    handle.reports = reports;
    (sink, drift, task, handle)
}

/// [`start`] with an observer.
async fn start_observed(
    config: SinkConfig,
    bindings: Vec<Value>,
    policies: Vec<Value>,
    observer: Arc<dyn SinkObserver>,
) -> (SinkHandle, SinkEvents, JoinHandle<()>, Handle) {
    let (service, requests) = mock::pair::<Request<Body>, Response<Body>>();
    let mut handle = Handle {
        requests,
        watches: Vec::new(),
        reports: Arc::default(),
    };
    let client = kube::Client::new(service, "default");
    let starting = tokio::spawn(BindingSink::start_observed(client, config, observer));
    for (path, kind, items) in [
        (BINDINGS, "BindingList", bindings),
        (POLICIES, "BindingPolicyList", policies),
    ] {
        let (req, send) = next(&mut handle).await;
        assert_eq!(req.method(), Method::GET);
        assert_eq!(req.uri().path(), path);
        assert!(req.uri().query().unwrap_or("").contains("limit=500"));
        respond(send, 200, &list(kind, items));
    }
    let (sink, drift, task) = starting.await.unwrap().unwrap();
    (sink, drift, task, handle)
}

/// One report as kept: (object, name, result, sent, changed_at).
type Report = (WriteObject, String, WriteResult, bool, Option<SystemTime>);

/// An observer keeping every report.
#[derive(Default)]
struct Reports(Mutex<Vec<Report>>);

impl SinkObserver for Reports {
    fn write_done(&self, r: &WriteReport<'_>) {
        let entry = (
            r.object,
            r.name.to_string(),
            r.result,
            r.latency.is_some(),
            r.changed_at,
        );
        self.0.lock().unwrap().push(entry);
    }
}

/// Flushes while the test goes on answering requests.
fn flush(sink: &SinkHandle) -> JoinHandle<()> {
    let sink = sink.clone();
    tokio::spawn(async move { sink.flush().await })
}

async fn flushed(sink: &SinkHandle) {
    tokio::time::timeout(Duration::from_secs(600), sink.flush())
        .await
        .expect("flush finishes without any request answered");
}

#[tokio::test(start_paused = true)]
async fn nothing_is_written_when_the_stored_binding_is_equal() {
    let b = binding("p", &["c1", "c2"], "5");
    let (sink, _drift, _task, mut handle) =
        start(config(), vec![as_stored(b.to_json())], vec![]).await;
    assert_eq!(sink.stored_bindings(), vec![("p".to_string(), true)]);

    sink.submit(DesiredBinding::present(&b));
    flushed(&sink).await;
    assert!(quiet(&mut handle).await);
    assert_eq!(
        (
            handle.count(WriteObject::Binding, WriteResult::Unchanged),
            handle.count(WriteObject::Binding, WriteResult::Applied)
        ),
        (1, 0)
    );

    // A change is written.
    let changed = binding("p", &["c1"], "5");
    sink.submit(DesiredBinding::present(&changed));
    let (req, send) = next(&mut handle).await;
    assert_eq!(req.method(), Method::PATCH);
    respond(send, 200, &as_stored(changed.to_json()));
    flushed(&sink).await;
    assert_eq!(handle.count(WriteObject::Binding, WriteResult::Applied), 1);
}

#[tokio::test(start_paused = true)]
async fn a_new_binding_is_created_and_a_stored_one_merge_patched() {
    let (sink, _drift, _task, mut handle) = start(config(), vec![], vec![]).await;
    assert!(sink.stored_bindings().is_empty());
    let b = binding("p", &["c1"], "5");
    let mut desired = DesiredBinding::present(&b);
    // Whatever else the caller's JSON holds is not sent.
    desired.binding.as_mut().unwrap()["status"] = json!({"x": 1});
    sink.submit(desired);

    let (req, send) = next(&mut handle).await;
    assert_eq!(req.method(), Method::POST);
    assert_eq!(req.uri().path(), BINDINGS);
    let query = req.uri().query().unwrap();
    assert!(query.contains("fieldManager=bindery"), "{query}");
    let body = req.body();
    assert_eq!(body, &applied(&b));
    assert!(body.get("status").is_none());
    assert_eq!(body["metadata"]["ownerReferences"][0]["uid"], "uid-p");
    assert_eq!(body["spec"]["destinations"], json!([{"clusterId": "c1"}]));
    respond(send, 201, &as_stored(b.to_json()));
    flushed(&sink).await;

    // What the server returned is now what is stored: the same again is not written.
    sink.submit(DesiredBinding::present(&b));
    flushed(&sink).await;
    assert!(quiet(&mut handle).await);
    assert_eq!(
        (
            handle.count(WriteObject::Binding, WriteResult::Applied),
            handle.count(WriteObject::Binding, WriteResult::Unchanged)
        ),
        (1, 1)
    );
    assert_eq!(handle.timed(), 1);

    // A change of a stored Binding is a JSON merge patch of ownerReferences and spec,
    // whose lists replace the stored ones whole (another writer's entries go too).
    let changed = binding("p", &["c2"], "6");
    sink.submit(DesiredBinding::present(&changed));
    let (req, send) = next(&mut handle).await;
    assert_eq!(req.method(), Method::PATCH);
    assert_eq!(req.uri().path(), format!("{BINDINGS}/p"));
    assert!(req.uri().query().unwrap().contains("fieldManager=bindery"));
    assert_eq!(
        req.headers()["content-type"],
        "application/merge-patch+json"
    );
    assert_eq!(req.body(), &applied(&changed));
    respond(send, 200, &as_stored(changed.to_json()));
    flushed(&sink).await;
    assert_eq!(handle.count(WriteObject::Binding, WriteResult::Applied), 2);
}

#[tokio::test(start_paused = true)]
async fn a_create_that_finds_the_binding_patches_it_and_a_patch_that_does_not_creates_it() {
    let stored = as_stored(binding("gone", &["c1"], "1").to_json());
    let (sink, _drift, _task, mut handle) = start(config(), vec![stored], vec![]).await;
    let b = binding("p", &["c1"], "5");
    sink.submit(DesiredBinding::present(&b));
    let (req, send) = next(&mut handle).await;
    assert_eq!(req.method(), Method::POST);
    let exists = failure(409, "AlreadyExists", "bindings \"p\" already exists");
    respond(send, 409, &exists);
    let (req, send) = next(&mut handle).await;
    assert_eq!(req.method(), Method::PATCH);
    assert_eq!(req.uri().path(), format!("{BINDINGS}/p"));
    respond(send, 200, &as_stored(b.to_json()));
    flushed(&sink).await;

    let g = binding("gone", &["c2"], "2");
    sink.submit(DesiredBinding::present(&g));
    let (req, send) = next(&mut handle).await;
    assert_eq!(req.method(), Method::PATCH);
    respond(
        send,
        404,
        &failure(404, "NotFound", "bindings \"gone\" not found"),
    );
    let (req, send) = next(&mut handle).await;
    assert_eq!(req.method(), Method::POST);
    respond(send, 201, &as_stored(g.to_json()));
    flushed(&sink).await;
    let stats = sink.stats();
    assert_eq!(
        (
            handle.count(WriteObject::Binding, WriteResult::Applied),
            stats.retries
        ),
        (2, 0)
    );
}

#[tokio::test(start_paused = true)]
async fn a_binding_larger_than_the_limit_is_not_sent_and_is_reported() {
    let small = binding("small", &["c1"], "1");
    let big = binding(
        "big",
        &["c1", "c2", "c3", "c4", "c5", "c6", "c7", "c8"],
        "1",
    );
    // Exactly the small one's size: at the limit is allowed, one byte more is not.
    let limit = serde_json::to_vec(&applied(&small)).unwrap().len();
    let config = SinkConfig {
        max_binding_bytes: limit,
        ..config()
    };
    let (sink, _drift, _task, mut handle) = start(config, vec![], vec![]).await;
    sink.submit(DesiredBinding::present(&big));
    sink.submit(DesiredBinding::present(&small));
    let (req, send) = next(&mut handle).await;
    assert_eq!(req.body()["metadata"]["name"], "small");
    respond(send, 201, &as_stored(small.to_json()));
    flushed(&sink).await;
    assert!(quiet(&mut handle).await);
    let problems = sink.problems();
    assert!(
        problems["big"].contains(&format!(
            "more than the {limit} bytes the API server can store"
        )),
        "{problems:?}"
    );
    assert!(!problems.contains_key("small"));
    assert_eq!(sink.stats().retries, 0);
}

#[tokio::test(start_paused = true)]
async fn unmanaged_bindings_are_never_deleted() {
    let mut unmanaged = as_stored(binding("mine", &["c1"], "1").to_json());
    unmanaged["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("ownerReferences");
    let mut other_owner = as_stored(binding("theirs", &["c1"], "1").to_json());
    other_owner["metadata"]["ownerReferences"][0]["kind"] = json!("Deployment");
    other_owner["metadata"]["ownerReferences"][0]["apiVersion"] = json!("apps/v1");
    let (sink, _drift, _task, mut handle) =
        start(config(), vec![unmanaged, other_owner], vec![]).await;
    let stored = sink.stored_bindings();
    assert_eq!(
        stored,
        vec![("mine".to_string(), false), ("theirs".to_string(), false)]
    );
    assert_eq!(sink.stats().unmanaged_bindings, 2);
    sink.submit(DesiredBinding::absent("mine"));
    sink.submit(DesiredBinding::absent("theirs"));
    flushed(&sink).await;
    assert!(quiet(&mut handle).await);
    assert_eq!(
        handle.count(WriteObject::Binding, WriteResult::Unchanged),
        2
    );

    // A policy of its name makes it that policy's Binding: written, with the owner.
    let b = binding("mine", &["c2"], "1");
    sink.submit(DesiredBinding::present(&b));
    let (req, send) = next(&mut handle).await;
    assert_eq!(req.method(), Method::PATCH);
    assert_eq!(
        req.body()["metadata"]["ownerReferences"][0]["kind"],
        "BindingPolicy"
    );
    respond(send, 200, &as_stored(b.to_json()));
    flushed(&sink).await;
    assert_eq!(sink.stats().unmanaged_bindings, 1);
}

/// The next drift the sink tells; the problems told before it go to `problems`.
async fn next_drift_noting(events: &mut SinkEvents, problems: &mut Vec<SinkEvent>) -> Drift {
    loop {
        match events.recv().await.expect("the sink is running") {
            SinkEvent::Drift(drift) => return drift,
            problem => problems.push(problem),
        }
    }
}

/// The next drift the sink tells, with no problem told before it.
async fn next_drift(events: &mut SinkEvents) -> Drift {
    let mut problems = Vec::new();
    let drift = next_drift_noting(events, &mut problems).await;
    assert_eq!(problems, [], "problems told before {drift:?}");
    drift
}

/// The events told so far (none waited for).
fn told(events: &mut SinkEvents) -> Vec<SinkEvent> {
    std::iter::from_fn(|| events.try_recv().ok()).collect()
}

/// A [`SinkEvent::Problem`] of `name`.
fn problem(name: &str, problem: Option<&str>) -> SinkEvent {
    SinkEvent::Problem {
        name: name.into(),
        problem: problem.map(String::from),
    }
}

/// Restores `b` as the engine does after a drift (submits it) and answers the write with
/// `b` stored at resourceVersion `rv`.
async fn restore(sink: &SinkHandle, handle: &mut Handle, b: &Binding, rv: u64) {
    sink.submit(DesiredBinding::present(b));
    let (req, send) = next(handle).await;
    let code = if req.method() == Method::POST {
        201
    } else {
        200
    };
    let mut stored = as_stored(b.to_json());
    stored["metadata"]["resourceVersion"] = json!(rv.to_string());
    respond(send, code, &stored);
    flushed(sink).await;
}

#[tokio::test(start_paused = true)]
async fn drift_seen_by_the_watch_is_reported_and_fights_back_off() {
    let b = binding("p", &["c1"], "5");
    let (sink, mut drift, _task, mut handle) =
        start(config(), vec![as_stored(b.to_json())], vec![]).await;
    sink.submit(DesiredBinding::present(&b));
    flushed(&sink).await;
    // Another writer edits the spec, then deletes it; a label alone is no drift.
    let edited = |clusters: &[&str], rv: u64| {
        let mut edited = as_stored(binding("p", clusters, "5").to_json());
        edited["metadata"]["resourceVersion"] = json!(rv.to_string());
        edited
    };
    watch_events(&mut handle, &[("MODIFIED", edited(&["c1", "c9"], 101))]).await;
    let first = next_drift(&mut drift).await;
    assert_eq!(
        first,
        Drift {
            name: "p".into(),
            delay: Duration::ZERO
        }
    );
    restore(&sink, &mut handle, &b, 102).await;
    let mut relabelled = as_stored(b.to_json());
    relabelled["metadata"]["resourceVersion"] = json!("103");
    relabelled["metadata"]["labels"] = json!({"new": "label"});
    let mut deleted = relabelled.clone();
    deleted["metadata"]["resourceVersion"] = json!("104");
    watch_events(
        &mut handle,
        &[("MODIFIED", relabelled), ("DELETED", deleted)],
    )
    .await;
    assert_eq!(next_drift(&mut drift).await.name, "p");
    assert_eq!(told(&mut drift), [], "the label change is no drift");
    assert_eq!(sink.stats().drift, 2);
    restore(&sink, &mut handle, &b, 105).await;

    // A writer that keeps at it: after the free restores, each waits longer, and the
    // policy's status tells. Its changes while a restore is due are the same round:
    // not counted, and the backoff does not grow with them.
    let (mut delays, mut problems) = (Vec::new(), Vec::new());
    let mut last_drift = tokio::time::Instant::now();
    for rv in (200..212).step_by(4) {
        watch_events(&mut handle, &[("ADDED", edited(&["c7"], rv))]).await;
        delays.push(next_drift_noting(&mut drift, &mut problems).await.delay);
        last_drift = tokio::time::Instant::now();
        watch_events(&mut handle, &[("MODIFIED", edited(&["c8"], rv + 1))]).await;
        watch_events(&mut handle, &[("MODIFIED", edited(&["c7"], rv + 2))]).await;
        assert!(
            tokio::time::timeout(
                Duration::from_secs(1),
                next_drift_noting(&mut drift, &mut problems)
            )
            .await
            .is_err(),
            "a change while the restore is due is no new drift"
        );
        restore(&sink, &mut handle, &b, rv + 3).await;
    }
    assert_eq!(
        delays,
        [
            Duration::ZERO,
            Duration::from_secs(1),
            Duration::from_secs(2)
        ]
    );
    assert_eq!(sink.stats().drift, 5, "one per restore");
    assert!(sink.problems()["p"].contains("being changed by another writer"));
    assert!(
        quiet(&mut handle).await,
        "the sink itself writes nothing on drift"
    );
    // The fight was told as a problem when its backoff began (the 4th restore) and at
    // each restore since; once its last drift is old enough, that it is over.
    problems.extend(told(&mut drift));
    let fight = |n, secs| {
        format!(
            "the Binding is being changed by another writer: restored {n} times in a row, next restore after {secs}s"
        )
    };
    assert_eq!(
        problems,
        [
            problem("p", Some(&fight(4, 1))),
            problem("p", Some(&fight(5, 2)))
        ]
    );
    // Reported until 60 s and the 2 s backoff after the last drift.
    tokio::time::sleep_until(last_drift + Duration::from_secs(61)).await;
    assert_eq!(
        told(&mut drift),
        [],
        "still reported 61 s after the last drift"
    );
    tokio::time::sleep_until(last_drift + Duration::from_secs(63)).await;
    assert_eq!(told(&mut drift), [problem("p", None)]);
    assert!(sink.problems().is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_conflict_is_retried() {
    let (sink, _drift, _task, mut handle) = start(config(), vec![], vec![]).await;
    let b = binding("p", &["c1"], "5");
    sink.submit(DesiredBinding::present(&b));
    let done = flush(&sink);

    let (_, send) = next(&mut handle).await;
    respond(
        send,
        409,
        &failure(409, "Conflict", "the object has been modified"),
    );
    let (req, send) = next(&mut handle).await;
    assert_eq!(req.method(), Method::POST);
    respond(send, 200, &as_stored(b.to_json()));
    done.await.unwrap();

    let stats = sink.stats();
    assert_eq!(
        (
            stats.retries,
            handle.count(WriteObject::Binding, WriteResult::Applied)
        ),
        (1, 1)
    );
    assert!(sink.problems().is_empty());
}

#[tokio::test(start_paused = true)]
async fn transport_errors_and_429_are_retried_honouring_retry_after() {
    let (sink, _drift, _task, mut handle) = start(config(), vec![], vec![]).await;
    let b = binding("p", &["c1"], "5");
    sink.submit(DesiredBinding::present(&b));
    let done = flush(&sink);

    let (_, send) = next(&mut handle).await;
    send.send_error(std::io::Error::other("connection reset"));
    let (_, send) = next(&mut handle).await;
    let mut too_many = failure(429, "TooManyRequests", "slow down");
    too_many["details"] = json!({"retryAfterSeconds": 3});
    respond(send, 429, &too_many);
    let asked = tokio::time::Instant::now();
    let (_, send) = next(&mut handle).await;
    assert!(
        asked.elapsed() >= Duration::from_secs(3),
        "{:?}",
        asked.elapsed()
    );
    respond(send, 200, &as_stored(b.to_json()));
    done.await.unwrap();
    assert_eq!(sink.stats().retries, 2);
    assert_eq!(handle.count(WriteObject::Binding, WriteResult::Applied), 1);
}

#[tokio::test(start_paused = true)]
async fn server_errors_give_up_after_max_attempts_and_are_reported() {
    let (sink, mut events, _task, mut handle) = start(config(), vec![], vec![]).await;
    let b = binding("p", &["c1"], "5");
    sink.submit(DesiredBinding::present(&b));
    let done = flush(&sink);
    for _ in 0..config().max_attempts {
        let (_, send) = next(&mut handle).await;
        respond(send, 500, &failure(500, "InternalError", "etcd is sad"));
    }
    done.await.unwrap();
    assert!(quiet(&mut handle).await);
    let stats = sink.stats();
    assert_eq!(
        (
            handle.count(WriteObject::Binding, WriteResult::Failed),
            stats.retries
        ),
        (1, 3)
    );
    let errors = sink.problems();
    let message = "Binding cannot be written: HTTP 500 InternalError: etcd is sad";
    assert_eq!(errors["p"], message);
    assert_eq!(told(&mut events), [problem("p", Some(message))]);

    // The same desired state is tried again, and success clears the error.
    sink.submit(DesiredBinding::present(&b));
    let done = flush(&sink);
    let (_, send) = next(&mut handle).await;
    respond(send, 200, &as_stored(b.to_json()));
    done.await.unwrap();
    assert!(sink.problems().is_empty());
    assert_eq!(told(&mut events), [problem("p", None)]);
}

#[tokio::test(start_paused = true)]
async fn too_large_and_invalid_bindings_fail_at_once() {
    let (sink, _drift, _task, mut handle) = start(config(), vec![], vec![]).await;
    sink.submit(DesiredBinding::present(&binding("big", &["c1"], "5")));
    sink.submit(DesiredBinding::present(&binding("bad", &["c1"], "5")));
    let done = flush(&sink);
    for _ in 0..2 {
        let (req, send) = next(&mut handle).await;
        if req.body()["metadata"]["name"] == "big" {
            let msg = "etcdserver: request is too large";
            respond(send, 500, &failure(500, "InternalError", msg));
        } else {
            let msg = "Binding.control.kubestellar.io \"bad\" is invalid";
            respond(send, 422, &failure(422, "Invalid", msg));
        }
    }
    done.await.unwrap();
    assert!(quiet(&mut handle).await);
    let errors = sink.problems();
    assert!(errors["big"].contains("too large"), "{errors:?}");
    assert!(
        errors["bad"].starts_with("Binding cannot be written: HTTP 422 Invalid"),
        "{errors:?}"
    );
    assert_eq!(sink.stats().retries, 0);
    assert_eq!(handle.count(WriteObject::Binding, WriteResult::Failed), 2);
}

#[tokio::test(start_paused = true)]
async fn deleting_a_binding_that_is_gone_is_a_success() {
    let stored = vec![
        as_stored(binding("p", &["c1"], "5").to_json()),
        as_stored(binding("q", &["c1"], "5").to_json()),
    ];
    let (sink, _drift, _task, mut handle) = start(config(), stored, vec![]).await;
    let both = vec![("p".to_string(), true), ("q".to_string(), true)];
    assert_eq!(sink.stored_bindings(), both);
    sink.submit(DesiredBinding::absent("p"));
    sink.submit(DesiredBinding::absent("q"));
    let done = flush(&sink);
    for _ in 0..2 {
        let (req, send) = next(&mut handle).await;
        assert_eq!(req.method(), Method::DELETE);
        if req.uri().path() == format!("{BINDINGS}/p") {
            respond(
                send,
                404,
                &failure(404, "NotFound", "bindings \"p\" not found"),
            );
        } else {
            assert_eq!(req.uri().path(), format!("{BINDINGS}/q"));
            let status = json!({"kind": "Status", "apiVersion": "v1", "status": "Success"});
            respond(send, 200, &status);
        }
    }
    done.await.unwrap();
    assert_eq!(handle.count(WriteObject::Binding, WriteResult::Deleted), 2);
    assert!(sink.problems().is_empty());

    // Known to be gone now: deleting again sends nothing.
    sink.submit(DesiredBinding::absent("p"));
    flushed(&sink).await;
    assert!(quiet(&mut handle).await);
    assert_eq!(
        handle.count(WriteObject::Binding, WriteResult::Unchanged),
        1
    );
}

#[tokio::test(start_paused = true)]
async fn the_latest_desired_state_wins() {
    let (sink, _drift, _task, mut handle) = start(config(), vec![], vec![]).await;
    let a1 = binding("a", &["c1"], "1");
    let a2 = binding("a", &["c1"], "2");
    let a3 = binding("a", &["c1"], "3");
    sink.submit(DesiredBinding::present(&a1));
    let (first, send_first) = next(&mut handle).await;
    assert_eq!(first.body(), &applied(&a1));
    // The first write is in flight (blocked): these coalesce.
    sink.submit(DesiredBinding::present(&a2));
    sink.submit(DesiredBinding::present(&a3));
    assert_eq!((sink.stats().in_flight, sink.stats().pending), (1, 1));
    let done = flush(&sink);
    respond(send_first, 200, &as_stored(a1.to_json()));
    let (second, send) = next(&mut handle).await;
    assert_eq!(second.body(), &applied(&a3));
    respond(send, 200, &as_stored(a3.to_json()));
    done.await.unwrap();
    assert!(quiet(&mut handle).await);
    assert_eq!(handle.count(WriteObject::Binding, WriteResult::Applied), 2);
}

#[tokio::test(start_paused = true)]
async fn at_most_concurrency_writes_are_in_flight() {
    let config = SinkConfig {
        concurrency: 2,
        ..config()
    };
    let (sink, _drift, _task, mut handle) = start(config, vec![], vec![]).await;
    for name in ["a", "b", "c"] {
        sink.submit(DesiredBinding::present(&binding(name, &["c1"], "1")));
    }
    let (_, send_a) = next(&mut handle).await;
    let (_, send_b) = next(&mut handle).await;
    assert!(quiet(&mut handle).await);
    assert_eq!((sink.stats().in_flight, sink.stats().pending), (2, 1));
    respond(
        send_a,
        200,
        &as_stored(binding("a", &["c1"], "1").to_json()),
    );
    let (req, send_c) = next(&mut handle).await;
    assert_eq!(req.body()["metadata"]["name"], "c");
    respond(
        send_b,
        200,
        &as_stored(binding("b", &["c1"], "1").to_json()),
    );
    respond(
        send_c,
        200,
        &as_stored(binding("c", &["c1"], "1").to_json()),
    );
    flushed(&sink).await;
    assert_eq!(handle.count(WriteObject::Binding, WriteResult::Applied), 3);
}

fn policy(name: &str, status: Option<Value>) -> Value {
    let mut p = json!({
        "apiVersion": "control.kubestellar.io/v1alpha1",
        "kind": "BindingPolicy",
        "metadata": {"name": name, "uid": format!("uid-{name}"), "generation": 2},
        "spec": {},
    });
    if let Some(status) = status {
        p["status"] = status;
    }
    p
}

#[tokio::test(start_paused = true)]
async fn statuses_are_applied_to_the_status_subresource_once() {
    let (sink, _drift, _task, mut handle) = start(config(), vec![], vec![policy("p", None)]).await;
    let desired = DesiredStatus {
        policy: "p".into(),
        observed_generation: 2,
        errors: vec!["bad selector".into(), "too many WECs".into()],
        binding_problem: None,
        missing_collectors: None,
    };
    sink.submit_status(desired.clone());
    let (req, send) = next(&mut handle).await;
    assert_eq!(req.method(), Method::PATCH);
    assert_eq!(req.uri().path(), format!("{POLICIES}/p/status"));
    assert!(req.uri().query().unwrap().contains("fieldManager=bindery"));
    assert_eq!(
        req.headers()["content-type"],
        "application/apply-patch+yaml"
    );
    let body = req.body().clone();
    assert_eq!(body["kind"], "BindingPolicy");
    assert_eq!(body["metadata"], json!({"name": "p"}));
    assert!(body.get("spec").is_none());
    let status = &body["status"];
    assert_eq!(status["observedGeneration"], 2);
    assert_eq!(status["errors"], json!(["bad selector", "too many WECs"]));
    let ready = &status["conditions"][0];
    assert_eq!(ready["type"], "Ready");
    assert_eq!(ready["status"], "False");
    assert_eq!(ready["reason"], "Problems");
    assert_eq!(ready["message"], "bad selector; too many WECs");
    assert!(ready["lastTransitionTime"].as_str().unwrap().ends_with('Z'));
    // The Binding is written: synced, as KubeStellar's controller says it.
    let synced = &status["conditions"][1];
    assert_eq!(synced["type"], "Synced");
    assert_eq!(synced["status"], "True");
    assert_eq!(synced["reason"], "ReconcileSuccess");
    let mut returned = policy("p", None);
    returned["status"] = status.clone();
    respond(send, 200, &returned);
    flushed(&sink).await;

    // The same status again: not written.
    sink.submit_status(desired);
    flushed(&sink).await;
    assert!(quiet(&mut handle).await);
    assert_eq!(
        (
            handle.count(WriteObject::Status, WriteResult::Applied),
            handle.count(WriteObject::Status, WriteResult::Unchanged)
        ),
        (1, 1)
    );
}

#[tokio::test(start_paused = true)]
async fn the_transition_time_is_kept_while_the_ready_status_stays() {
    let at = "2020-01-01T00:00:00Z";
    let stored = json!({
        "observedGeneration": 1,
        "conditions": [{"type": "Ready", "status": "True", "reason": "Applied",
            "message": "The Binding reflects the policy", "lastTransitionTime": at},
            {"type": "Synced", "status": "True", "reason": "ReconcileSuccess",
            "message": "The Binding is written as computed", "lastTransitionTime": at}],
    });
    let (sink, _drift, _task, mut handle) =
        start(config(), vec![], vec![policy("p", Some(stored))]).await;

    // Already stored: nothing to write.
    sink.submit_status(DesiredStatus {
        policy: "p".into(),
        observed_generation: 1,
        errors: vec![],
        binding_problem: None,
        missing_collectors: None,
    });
    flushed(&sink).await;
    assert!(quiet(&mut handle).await);

    sink.submit_status(DesiredStatus {
        policy: "p".into(),
        observed_generation: 2,
        errors: vec![],
        binding_problem: None,
        missing_collectors: None,
    });
    let (req, send) = next(&mut handle).await;
    let status = &req.body()["status"];
    assert_eq!(status["observedGeneration"], 2);
    assert!(status.get("errors").is_none());
    assert_eq!(status["conditions"][0]["status"], "True");
    assert_eq!(status["conditions"][0]["reason"], "Applied");
    assert_eq!(status["conditions"][0]["lastTransitionTime"], at);
    assert_eq!(status["conditions"][1]["lastTransitionTime"], at);
    respond(send, 200, &policy("p", Some(status.clone())));
    flushed(&sink).await;

    // Its Binding cannot be written: Synced turns False (a new transition time), and
    // Ready with it.
    sink.submit_status(DesiredStatus {
        policy: "p".into(),
        observed_generation: 2,
        errors: vec![],
        binding_problem: Some("the Binding is too large".into()),
        missing_collectors: None,
    });
    let (req, send) = next(&mut handle).await;
    let status = &req.body()["status"];
    assert_eq!(status["errors"], json!(["the Binding is too large"]));
    let synced = &status["conditions"][1];
    assert_eq!(
        (&synced["type"], &synced["status"], &synced["reason"]),
        (&json!("Synced"), &json!("False"), &json!("ReconcileError"))
    );
    assert_eq!(synced["message"], "the Binding is too large");
    assert_ne!(synced["lastTransitionTime"], at);
    assert_eq!(status["conditions"][0]["status"], "False");
    respond(send, 200, &policy("p", Some(status.clone())));
    flushed(&sink).await;
}

#[tokio::test(start_paused = true)]
async fn the_status_of_a_policy_that_is_gone_is_dropped() {
    let (sink, _drift, _task, mut handle) = start(config(), vec![], vec![]).await;
    // Not listed at start: its status is read first.
    sink.submit_status(DesiredStatus {
        policy: "new".into(),
        observed_generation: 1,
        errors: vec![],
        binding_problem: None,
        missing_collectors: None,
    });
    let done = flush(&sink);
    let (req, send) = next(&mut handle).await;
    assert_eq!(req.method(), Method::GET);
    assert_eq!(req.uri().path(), format!("{POLICIES}/new/status"));
    respond(send, 404, &failure(404, "NotFound", "not found"));
    done.await.unwrap();
    assert!(quiet(&mut handle).await);
    assert_eq!(
        (
            handle.count(WriteObject::Status, WriteResult::Dropped),
            handle.count(WriteObject::Status, WriteResult::Failed)
        ),
        (1, 0)
    );
}

#[tokio::test(start_paused = true)]
async fn shutdown_drains_and_stops_the_task() {
    let (sink, _drift, task, mut handle) = start(config(), vec![], vec![]).await;
    let b = binding("p", &["c1"], "5");
    sink.submit(DesiredBinding::present(&b));
    let stopping = {
        let sink = sink.clone();
        tokio::spawn(async move { sink.shutdown().await })
    };
    let (_, send) = next(&mut handle).await;
    respond(send, 200, &as_stored(b.to_json()));
    stopping.await.unwrap();
    tokio::time::timeout(Duration::from_secs(60), task)
        .await
        .expect("the task ends")
        .unwrap();
    // Submissions after shutdown are dropped.
    sink.submit(DesiredBinding::present(&binding("q", &["c1"], "5")));
    assert_eq!(sink.stats().pending, 0);
    assert_eq!(handle.count(WriteObject::Binding, WriteResult::Applied), 1);
}

#[tokio::test(start_paused = true)]
async fn dropping_every_handle_stops_the_task() {
    let (sink, _drift, task, _handle) = start(config(), vec![], vec![]).await;
    drop(sink);
    tokio::time::timeout(Duration::from_secs(60), task)
        .await
        .expect("the task ends")
        .unwrap();
}

#[tokio::test(start_paused = true)]
async fn start_fails_when_bindings_cannot_be_listed() {
    let (service, requests) = mock::pair::<Request<Body>, Response<Body>>();
    let mut handle = Handle {
        requests,
        watches: Vec::new(),
        reports: Arc::default(),
    };
    let client = kube::Client::new(service, "default");
    let starting = tokio::spawn(BindingSink::start(client, config()));
    let (_, send) = next(&mut handle).await;
    respond(send, 403, &failure(403, "Forbidden", "no"));
    let err = starting.await.unwrap().unwrap_err();
    assert!(err.to_string().contains("bindings"), "{err}");
}

#[tokio::test]
async fn requests_are_rate_limited() {
    // Burst 1 at 20/s: the policies' LIST and two writes take at least ~100 ms (real
    // time: governor keeps its own clock; the watch on Bindings is not rate-limited).
    let config = SinkConfig {
        qps: 20,
        burst: 1,
        ..config()
    };
    let began = std::time::Instant::now();
    let (sink, _drift, _task, mut handle) = start(config, vec![], vec![]).await;
    for name in ["a", "b"] {
        sink.submit(DesiredBinding::present(&binding(name, &["c1"], "1")));
    }
    for _ in 0..2 {
        let (req, send) = next(&mut handle).await;
        let name = req.body()["metadata"]["name"].as_str().unwrap().to_string();
        respond(
            send,
            200,
            &as_stored(binding(&name, &["c1"], "1").to_json()),
        );
    }
    sink.flush().await;
    assert!(
        began.elapsed() >= Duration::from_millis(90),
        "{:?}",
        began.elapsed()
    );
}

#[tokio::test(start_paused = true)]
async fn a_status_waits_for_the_binding_write_submitted_before_it() {
    let (sink, _drift, _task, mut handle) = start(config(), vec![], vec![policy("p", None)]).await;
    let b1 = binding("p", &["c1"], "1");
    let b2 = binding("p", &["c1"], "2");
    let status = DesiredStatus {
        policy: "p".into(),
        observed_generation: 2,
        errors: vec![],
        binding_problem: None,
        missing_collectors: None,
    };
    sink.submit(DesiredBinding::present(&b1));
    let (req, send_b1) = next(&mut handle).await;
    assert_eq!(req.body(), &applied(&b1));
    sink.submit_status(status.clone());
    // Free slots, but the Binding write it follows is in flight.
    assert!(quiet(&mut handle).await);
    // A later Binding change does not hold the status back beyond the write it follows.
    sink.submit(DesiredBinding::present(&b2));
    let done = flush(&sink);
    respond(send_b1, 200, &as_stored(b1.to_json()));
    let mut paths = Vec::new();
    for _ in 0..2 {
        let (req, send) = next(&mut handle).await;
        paths.push(req.uri().path().to_string());
        if req.uri().path().ends_with("/status") {
            respond(send, 200, &policy("p", Some(req.body()["status"].clone())));
        } else {
            respond(send, 200, &as_stored(b2.to_json()));
        }
    }
    done.await.unwrap();
    paths.sort();
    assert_eq!(
        paths,
        [format!("{POLICIES}/p/status"), format!("{BINDINGS}/p")]
    );

    // Pending (not yet started) when the status comes: the status goes after it.
    let b3 = binding("p", &["c2"], "3");
    let config = SinkConfig {
        concurrency: 1,
        ..config()
    };
    let (sink, _drift, _task, mut handle) = start(config, vec![], vec![policy("p", None)]).await;
    sink.submit(DesiredBinding::present(&binding("other", &["c1"], "1")));
    let (_, send_other) = next(&mut handle).await;
    sink.submit(DesiredBinding::present(&b3));
    sink.submit_status(status);
    respond(
        send_other,
        200,
        &as_stored(binding("other", &["c1"], "1").to_json()),
    );
    let (req, send) = next(&mut handle).await;
    assert_eq!(req.body()["metadata"]["name"], "p");
    respond(send, 200, &as_stored(b3.to_json()));
    let (req, send) = next(&mut handle).await;
    assert_eq!(req.uri().path(), format!("{POLICIES}/p/status"));
    respond(send, 200, &policy("p", Some(req.body()["status"].clone())));
    flushed(&sink).await;
}

/// The body the sink sends for `b`: its JSON with empty workload lists spelled out (so
/// that writing them removes the stored entries).
fn applied(b: &Binding) -> serde_json::Value {
    let mut v = b.to_json();
    if v["spec"].get("destinations").is_none() {
        v["spec"]["destinations"] = json!([]);
    }
    for list in ["clusterScope", "namespaceScope"] {
        if v["spec"]["workload"].get(list).is_none() {
            v["spec"]["workload"][list] = json!([]);
        }
    }
    v
}

#[tokio::test(start_paused = true)]
async fn the_observer_sees_every_outcome_with_the_oldest_coalesced_change() {
    let reports = Arc::new(Reports::default());
    let stored = binding("same", &["c1"], "1");
    let (sink, _drift, _task, mut handle) = start_observed(
        config(),
        vec![as_stored(stored.to_json())],
        vec![],
        reports.clone(),
    )
    .await;
    let t = |s: u64| Some(SystemTime::UNIX_EPOCH + Duration::from_secs(s));
    sink.submit(DesiredBinding::present(&stored).changed_at(t(5)));
    flushed(&sink).await;

    let a1 = binding("a", &["c1"], "1");
    let a2 = binding("a", &["c1"], "2");
    let a3 = binding("a", &["c1"], "3");
    sink.submit(DesiredBinding::present(&a1).changed_at(t(10)));
    let (_, send_first) = next(&mut handle).await;
    // While a1 is in flight, a2 (older change) and a3 (newer) coalesce: a3's write
    // carries a2's change too, so it reports the oldest time.
    sink.submit(DesiredBinding::present(&a2).changed_at(t(11)));
    sink.submit(DesiredBinding::present(&a3).changed_at(t(12)));
    let done = flush(&sink);
    respond(send_first, 200, &as_stored(a1.to_json()));
    let (_, send) = next(&mut handle).await;
    respond(send, 422, &failure(422, "Invalid", "nope"));
    done.await.unwrap();

    let got = reports.0.lock().unwrap().clone();
    use WriteObject::Binding as B;
    assert_eq!(
        got,
        vec![
            (B, "same".to_string(), WriteResult::Unchanged, false, t(5)),
            (B, "a".to_string(), WriteResult::Applied, true, t(10)),
            (B, "a".to_string(), WriteResult::Failed, true, t(11)),
        ]
    );
}

/// Starts a sink that writes only while `leader` says so, on a mock API server whose
/// LISTs return `bindings` and no policies.
async fn start_elected(
    config: SinkConfig,
    bindings: Vec<Value>,
    leader: tokio::sync::watch::Receiver<bool>,
) -> (SinkHandle, SinkEvents, JoinHandle<()>, Handle) {
    let (service, requests) = mock::pair::<Request<Body>, Response<Body>>();
    let mut handle = Handle {
        requests,
        watches: Vec::new(),
        reports: Arc::default(),
    };
    let client = kube::Client::new(service, "default");
    let observer = handle.reports.clone();
    let starting = tokio::spawn(BindingSink::start_elected(client, config, observer, leader));
    for (path, kind, items) in [
        (BINDINGS, "BindingList", bindings),
        (POLICIES, "BindingPolicyList", vec![]),
    ] {
        let (req, send) = next(&mut handle).await;
        assert_eq!((req.method(), req.uri().path()), (&Method::GET, path));
        respond(send, 200, &list(kind, items));
    }
    let (sink, drift, task) = starting.await.unwrap().unwrap();
    (sink, drift, task, handle)
}

#[tokio::test(start_paused = true)]
async fn a_follower_writes_nothing_and_a_new_leader_writes_only_differences() {
    let p = binding("p", &["c1"], "5");
    let q = binding("q", &["c1"], "5");
    let (lease, leader) = tokio::sync::watch::channel(false);
    let config = SinkConfig {
        concurrency: 1,
        ..config()
    };
    let stored = vec![as_stored(p.to_json()), as_stored(q.to_json())];
    let (sink, mut drift, _task, mut handle) = start_elected(config, stored, leader).await;
    let mut leading = sink.leading();
    assert!(!*leading.borrow());

    // A follower: nothing is sent, whatever is submitted.
    sink.submit(DesiredBinding::present(&binding("p", &["c2"], "5")));
    sink.submit(DesiredBinding::absent("q"));
    sink.submit_status(DesiredStatus {
        policy: "p".into(),
        observed_generation: 1,
        errors: vec![],
        binding_problem: None,
        missing_collectors: None,
    });
    sink.remove_finalizer("p");
    flushed(&sink).await;
    assert!(quiet(&mut handle).await, "a follower sends no request");
    // The leader changes p: the follower's view follows, and that is no drift.
    let by_leader = binding("p", &["c1", "c3"], "5");
    let mut changed = as_stored(by_leader.to_json());
    changed["metadata"]["resourceVersion"] = json!("101");
    watch_events(&mut handle, &[("MODIFIED", changed)]).await;
    assert!(quiet(&mut handle).await);
    assert!(drift.try_recv().is_err(), "the leader's write is no drift");
    let stats = sink.stats();
    assert_eq!(
        (
            handle.count(WriteObject::Binding, WriteResult::Applied),
            handle.count(WriteObject::Binding, WriteResult::Deleted),
            handle.count(WriteObject::Status, WriteResult::Applied)
        ),
        (0, 0, 0)
    );
    assert_eq!((stats.pending, stats.drift), (0, 0));

    // Taking over: the statuses are read again first, then only differences are written.
    lease.send_replace(true);
    let (req, send) = next(&mut handle).await;
    assert_eq!((req.method(), req.uri().path()), (&Method::GET, POLICIES));
    respond(send, 200, &list("BindingPolicyList", vec![]));
    leading.wait_for(|l| *l).await.unwrap();
    sink.submit(DesiredBinding::present(&by_leader));
    flushed(&sink).await;
    assert!(
        quiet(&mut handle).await,
        "what the leader stored is not rewritten"
    );
    let q2 = binding("q", &["c2"], "5");
    sink.submit(DesiredBinding::present(&q2));
    let (req, send) = next(&mut handle).await;
    assert_eq!(
        (req.method(), req.uri().path()),
        (
            &Method::PATCH,
            "/apis/control.kubestellar.io/v1alpha1/bindings/q"
        )
    );
    respond(send, 200, &as_stored(q2.to_json()));
    flushed(&sink).await;
    assert_eq!(
        (
            handle.count(WriteObject::Binding, WriteResult::Applied),
            handle.count(WriteObject::Binding, WriteResult::Unchanged)
        ),
        (1, 1)
    );

    // Losing the lease mid-queue: the write in flight gets no further attempt, the queued
    // one is dropped.
    sink.submit(DesiredBinding::present(&binding("p", &["c9"], "5")));
    sink.submit(DesiredBinding::present(&binding("q", &["c9"], "5")));
    let (req, send) = next(&mut handle).await;
    assert_eq!(req.method(), Method::PATCH);
    lease.send_replace(false);
    leading.wait_for(|l| !*l).await.unwrap();
    assert_eq!(sink.stats().pending, 0, "the queued write is dropped");
    respond(send, 500, &failure(500, "InternalError", "retry me"));
    flushed(&sink).await;
    assert!(quiet(&mut handle).await, "no retry once not leading");
    assert_eq!(
        (
            handle.count(WriteObject::Binding, WriteResult::Applied),
            handle.count(WriteObject::Binding, WriteResult::Failed)
        ),
        (1, 0)
    );
    assert!(sink.problems().is_empty(), "{:?}", sink.problems());
}

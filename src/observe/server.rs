//! The HTTP server of `bindery run` and `bindery replay --dashboard` (axum):
//!
//! | path | what |
//! | --- | --- |
//! | `GET /metrics` | Prometheus metrics (OpenMetrics text) |
//! | `GET /dashboard` | the live churn dashboard (self-contained page, assets embedded) |
//! | `GET /dashboard/events` | the dashboard's samples as server-sent events: `history`, then one `sample` a second |
//! | `GET /dashboard/snapshot` | the latest sample (JSON) |
//! | `GET /explain?policy=P[&object=G/R/[NS/]N][&cluster=C][&output=json]` | explain on the engine's current state (`bindery run` only) |
//! | `GET /history[?binding=P][&object=G/R/[NS/]N][&cluster=C][&since=T][&until=T][&last=N][&output=json]` | the recent Binding changes with their causes, from the journal (`bindery run` only) |
//! | `GET /readyz` | 200 `ok` once the first epoch is published (`replay`: while serving), else 503 and the reason |
//! | `GET /livez` | 200 `ok` while the engine loop makes progress ([`Health::live`]), else 503 and the reason |
//! | `GET /healthz` | the same as `/livez` |

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{Context, Result};
use axum::Router;
use axum::extract::{Query as UrlQuery, State};
use axum::http::{StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use bindery_engine::{ExplainError, Explanation, ObjectKey, Query};

use crate::history::Filter;
use crate::history::journal::JournalAnswer;
use bindery_ingest::live::CancellationToken;
use futures::Stream;
use futures::StreamExt;
use serde::Deserialize;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
use tokio_stream::wrappers::BroadcastStream;

use crate::observe::dashboard::Dashboard;
use crate::observe::metrics::Metrics;
use crate::runtime::health::Health;

/// The default listen address: loopback only.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:9477";

/// Where and what to serve.
#[derive(Clone, Copy, Debug)]
pub struct ServeOptions {
    /// Listen address (port 0: any free port).
    pub listen: SocketAddr,
    /// Export per-policy metric series.
    pub per_policy_metrics: bool,
}

/// Where `bindery run` and `bindery replay --dashboard` serve metrics, the dashboard and
/// the health probes (`/readyz`, `/livez`).
#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    /// Listen address of the metrics, dashboard and explain server (loopback by default;
    /// port 0: any free port, logged at start).
    /// [default: 127.0.0.1:9477]
    #[arg(long, value_name = "ADDR", env = "BINDERY_LISTEN")]
    listen: Option<SocketAddr>,
    /// Export per-policy metric series (one series per policy: mind the cardinality).
    #[arg(long, env = "BINDERY_PER_POLICY_METRICS")]
    per_policy_metrics: bool,
}

impl ServeArgs {
    /// The options these flags give ([`DEFAULT_LISTEN`] unless `--listen`).
    pub fn options(&self) -> ServeOptions {
        let default = DEFAULT_LISTEN.parse().expect("a valid default");
        ServeOptions {
            listen: self.listen.unwrap_or(default),
            per_policy_metrics: self.per_policy_metrics,
        }
    }

    /// The server flag given without a server to apply it to (`replay` without
    /// `--dashboard`), for an error rather than silence.
    pub fn given(&self) -> Option<&'static str> {
        if self.listen.is_some() {
            Some("--listen")
        } else if self.per_policy_metrics {
            Some("--per-policy-metrics")
        } else {
            None
        }
    }
}

/// A question for the engine thread.
#[derive(Debug)]
pub enum Question {
    /// `GET /explain`.
    Explain(ExplainRequest),
    /// `GET /history`.
    History(HistoryRequest),
}

/// A question for the engine thread: the journal's changes that `filter` asks for.
#[derive(Debug)]
pub struct HistoryRequest {
    /// Which changes.
    pub filter: Filter,
    /// None later than this (Unix ms).
    pub until: Option<i64>,
    /// Only the latest this many.
    pub last: Option<usize>,
    /// Where the answer goes.
    pub reply: oneshot::Sender<Result<JournalAnswer, ExplainFailure>>,
}

/// A question for the engine thread: explain `query` on the current state.
#[derive(Debug)]
pub struct ExplainRequest {
    /// What to explain.
    pub query: Query,
    /// Where the answer goes.
    pub reply: oneshot::Sender<Result<Explanation, ExplainFailure>>,
}

/// Why the engine thread gives no explanation.
#[derive(Debug, thiserror::Error)]
pub enum ExplainFailure {
    /// Not every watch has synced yet: the state is partial.
    #[error("not every watch has synced yet (waiting for {}): try again shortly", .0.join(", "))]
    NotSynced(Vec<String>),
    /// The question names what does not exist, or is malformed.
    #[error(transparent)]
    Explain(#[from] ExplainError),
    /// No journal is kept (`--history-limit 0`).
    #[error(
        "no history is kept (--history-limit 0); for a recording use `bindery history --log LOG`"
    )]
    NoJournal,
}

/// What the handlers share.
#[derive(Clone, Debug)]
pub struct ServerState {
    /// The metrics, for `/metrics`.
    pub metrics: Arc<Metrics>,
    /// The dashboard's samples.
    pub dashboard: Arc<Dashboard>,
    /// The engine thread's questions (`None`: explain and history not served).
    pub engine: Option<mpsc::Sender<Question>>,
    /// Readiness and liveness, for `/readyz` and `/livez`.
    pub health: Arc<Health>,
    /// Cancelled at shutdown: ends the event streams, which would otherwise keep the
    /// server's graceful shutdown waiting for their pages to go.
    pub shutdown: CancellationToken,
}

/// Binds `addr` (port 0: any free port) and returns the listener and its address.
pub async fn bind(addr: SocketAddr) -> Result<(TcpListener, SocketAddr)> {
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("listening on {addr} (metrics and dashboard)"))?;
    let local = listener.local_addr()?;
    Ok((listener, local))
}

/// The routes.
pub fn router(state: ServerState) -> Router {
    Router::new()
        .route("/", get(|| async { Redirect::temporary("/dashboard") }))
        .route("/readyz", get(readyz))
        .route("/livez", get(livez))
        .route("/healthz", get(livez))
        .route("/metrics", get(metrics))
        .route("/dashboard", get(|| asset(Asset::Index)))
        .route("/dashboard/", get(|| asset(Asset::Index)))
        .route("/dashboard/dashboard.js", get(|| asset(Asset::Js)))
        .route("/dashboard/dashboard.css", get(|| asset(Asset::Css)))
        .route(
            "/dashboard/vendor/uPlot.iife.min.js",
            get(|| asset(Asset::UplotJs)),
        )
        .route(
            "/dashboard/vendor/uPlot.min.css",
            get(|| asset(Asset::UplotCss)),
        )
        .route("/dashboard/events", get(events))
        .route("/dashboard/snapshot", get(snapshot))
        .route("/explain", get(explain))
        .route("/history", get(history))
        .with_state(state)
}

/// Serves `router(state)` on `listener` until `state.shutdown`, sampling the dashboard
/// once a second meanwhile.
pub async fn serve(listener: TcpListener, state: ServerState) -> Result<()> {
    let shutdown = state.shutdown.clone();
    tokio::spawn(state.dashboard.clone().run_sampler(shutdown.clone()));
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
        .context("serving metrics and dashboard")
}

/// 200 `ok`, or 503 with the reason.
fn probe(result: Result<(), String>) -> Response {
    match result {
        Ok(()) => (StatusCode::OK, "ok\n").into_response(),
        Err(reason) => (StatusCode::SERVICE_UNAVAILABLE, reason + "\n").into_response(),
    }
}

async fn readyz(State(state): State<ServerState>) -> Response {
    probe(state.health.ready())
}

async fn livez(State(state): State<ServerState>) -> Response {
    probe(state.health.live())
}

async fn metrics(State(state): State<ServerState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.encode(),
    )
        .into_response()
}

/// The page's files, embedded in the binary.
#[derive(Clone, Copy)]
enum Asset {
    Index,
    Js,
    Css,
    UplotJs,
    UplotCss,
}

async fn asset(which: Asset) -> Response {
    let (content_type, body) = match which {
        Asset::Index => (
            "text/html; charset=utf-8",
            include_str!("dashboard/index.html"),
        ),
        Asset::Js => (
            "text/javascript; charset=utf-8",
            include_str!("dashboard/dashboard.js"),
        ),
        Asset::Css => (
            "text/css; charset=utf-8",
            include_str!("dashboard/dashboard.css"),
        ),
        Asset::UplotJs => (
            "text/javascript; charset=utf-8",
            include_str!("dashboard/vendor/uPlot.iife.min.js"),
        ),
        Asset::UplotCss => (
            "text/css; charset=utf-8",
            include_str!("dashboard/vendor/uPlot.min.css"),
        ),
    };
    ([(header::CONTENT_TYPE, content_type)], body).into_response()
}

async fn snapshot(State(state): State<ServerState>) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        state.dashboard.latest_json(),
    )
        .into_response()
}

async fn events(
    State(state): State<ServerState>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    // Subscribe before reading the history, so no sample falls in between (a page may
    // see one twice, which it ignores by `t`).
    let live = BroadcastStream::new(state.dashboard.subscribe()).filter_map(|sample| async move {
        // A lagging page skips samples rather than stalling the others.
        sample
            .ok()
            .map(|json| Ok(Event::default().event("sample").data(&*json)))
    });
    let history = Event::default()
        .event("history")
        .data(state.dashboard.history_json());
    let stream = futures::stream::once(async move { Ok(history) })
        .chain(live)
        .take_until(state.shutdown.cancelled_owned());
    Sse::new(stream).keep_alive(KeepAlive::default())
}

/// Parameters of `GET /explain`.
#[derive(Debug, Deserialize)]
struct ExplainParams {
    policy: Option<String>,
    object: Option<String>,
    cluster: Option<String>,
    output: Option<String>,
}

/// A plain-text answer.
fn text(code: StatusCode, body: String) -> Response {
    (code, body).into_response()
}

/// A JSON answer.
fn json_response(value: &impl serde::Serialize) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        serde_json::to_string_pretty(value).unwrap_or_default() + "\n",
    )
        .into_response()
}

/// A 400 with `message`.
fn bad_request(message: String) -> Response {
    text(StatusCode::BAD_REQUEST, message + "\n")
}

/// A 503: the engine thread is gone.
fn engine_stopped() -> Response {
    text(
        StatusCode::SERVICE_UNAVAILABLE,
        "the engine has stopped\n".into(),
    )
}

/// Whether `output` asks for JSON (`text`, the default, or `json`), else why not.
fn wants_json(output: Option<&str>) -> Result<bool, String> {
    match output {
        None | Some("text") => Ok(false),
        Some("json") => Ok(true),
        Some(other) => Err(format!("output {other:?}: expected text or json")),
    }
}

/// The `object` parameter (`GROUP/RESOURCE/[NAMESPACE/]NAME`), else why not.
fn object_param(object: Option<&str>) -> Result<Option<ObjectKey>, String> {
    object
        .map(str::parse::<ObjectKey>)
        .transpose()
        .map_err(|e| e.to_string())
}

/// Asks the engine thread the question `question` makes of a reply channel, and waits
/// for its answer (`None`: the engine has stopped).
async fn ask<T>(
    engine: &mpsc::Sender<Question>,
    question: impl FnOnce(oneshot::Sender<Result<T, ExplainFailure>>) -> Question,
) -> Option<Result<T, ExplainFailure>> {
    let (reply, answer) = oneshot::channel();
    engine.send(question(reply)).await.ok()?;
    answer.await.ok()
}

async fn explain(
    State(state): State<ServerState>,
    UrlQuery(params): UrlQuery<ExplainParams>,
) -> Response {
    let Some(engine) = state.engine else {
        return text(
            StatusCode::NOT_IMPLEMENTED,
            "explain is served by `bindery run`; for a log use `bindery explain --log LOG`\n"
                .into(),
        );
    };
    let Some(policy) = params.policy.filter(|p| !p.is_empty()) else {
        return text(
            StatusCode::BAD_REQUEST,
            "the `policy` parameter is required\n".into(),
        );
    };
    let (json, object) = match (
        wants_json(params.output.as_deref()),
        object_param(params.object.as_deref()),
    ) {
        (Ok(json), Ok(object)) => (json, object),
        (Err(bad), _) | (_, Err(bad)) => return bad_request(bad),
    };
    let query = Query {
        policy,
        object,
        cluster: params.cluster,
    };
    let answer = ask(&engine, |reply| {
        Question::Explain(ExplainRequest { query, reply })
    });
    match answer.await {
        None => engine_stopped(),
        Some(Ok(explanation)) if json => json_response(&explanation),
        Some(Ok(explanation)) => text(StatusCode::OK, explanation.to_text()),
        Some(Err(e @ ExplainFailure::NotSynced(_))) => {
            text(StatusCode::SERVICE_UNAVAILABLE, format!("{e}\n"))
        }
        Some(Err(ExplainFailure::Explain(e @ ExplainError::MalformedObject { .. }))) => {
            bad_request(e.to_string())
        }
        Some(Err(e)) => text(StatusCode::NOT_FOUND, format!("{e}\n")),
    }
}

/// Parameters of `GET /history`.
#[derive(Debug, Deserialize)]
struct HistoryParams {
    binding: Option<String>,
    object: Option<String>,
    cluster: Option<String>,
    since: Option<String>,
    until: Option<String>,
    last: Option<usize>,
    output: Option<String>,
}

async fn history(
    State(state): State<ServerState>,
    UrlQuery(params): UrlQuery<HistoryParams>,
) -> Response {
    let Some(engine) = state.engine else {
        return text(
            StatusCode::NOT_IMPLEMENTED,
            "history is served by `bindery run`; for a log use `bindery history --log LOG`\n"
                .into(),
        );
    };
    let time = |name: &str, value: Option<&str>| {
        value
            .map(|v| crate::cmd::log_time::parse(v).map_err(|e| format!("{name} {v:?}: {e}")))
            .transpose()
    };
    let parsed = (
        wants_json(params.output.as_deref()),
        object_param(params.object.as_deref()),
        time("since", params.since.as_deref()),
        time("until", params.until.as_deref()),
    );
    let (json, object, since, until) = match parsed {
        (Ok(json), Ok(object), Ok(since), Ok(until)) => (json, object, since, until),
        (Err(bad), ..) | (_, Err(bad), ..) | (_, _, Err(bad), _) | (.., Err(bad)) => {
            return bad_request(bad);
        }
    };
    let filter = Filter {
        binding: params.binding.filter(|b| !b.is_empty()),
        object,
        cluster: params.cluster.filter(|c| !c.is_empty()),
        since,
    };
    let answer = ask(&engine, |reply| {
        Question::History(HistoryRequest {
            filter,
            until,
            last: params.last,
            reply,
        })
    });
    match answer.await {
        None => engine_stopped(),
        Some(Ok(answer)) if json => json_response(&answer),
        Some(Ok(answer)) => text(StatusCode::OK, crate::history::journal_text(&answer)),
        Some(Err(e @ ExplainFailure::NoJournal)) => text(StatusCode::NOT_FOUND, format!("{e}\n")),
        Some(Err(e)) => text(StatusCode::SERVICE_UNAVAILABLE, format!("{e}\n")),
    }
}

/// The address to print for people: `http://ADDR`.
pub fn url(addr: SocketAddr) -> String {
    format!("http://{addr}")
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    use super::*;
    use crate::observe::dashboard::Mode;
    use crate::observe::metrics::MetricsOptions;
    use crate::runtime::health::LIVENESS_THRESHOLD;

    fn state(health: Arc<Health>) -> ServerState {
        let metrics = Arc::new(Metrics::new(MetricsOptions::default()));
        ServerState {
            dashboard: Dashboard::new(metrics.clone(), Mode::Run),
            metrics,
            engine: None,
            health,
            shutdown: CancellationToken::new(),
        }
    }

    async fn get(health: &Arc<Health>, path: &str) -> (StatusCode, String) {
        let request = Request::get(path).body(Body::empty()).unwrap();
        let response = router(state(health.clone()))
            .oneshot(request)
            .await
            .unwrap();
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        (status, String::from_utf8(body.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn readyz_turns_200_once_published_and_livez_fails_once_stopped() {
        let health = Arc::new(Health::new(LIVENESS_THRESHOLD));
        let (code, body) = get(&health, "/readyz").await;
        assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE);
        assert!(body.contains("no epoch published"), "{body}");
        assert_eq!(
            get(&health, "/livez").await,
            (StatusCode::OK, "ok\n".into())
        );
        health.mark_published();
        assert_eq!(
            get(&health, "/readyz").await,
            (StatusCode::OK, "ok\n".into())
        );
        health.mark_stopped();
        for path in ["/livez", "/healthz"] {
            assert_eq!(
                get(&health, path).await,
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the engine thread has stopped\n".into()
                ),
                "{path}"
            );
        }
        assert_eq!(
            get(&health, "/readyz").await.0,
            StatusCode::SERVICE_UNAVAILABLE
        );
    }

    #[tokio::test]
    async fn a_replay_server_is_ready_and_live() {
        let health = Arc::new(Health::serving());
        for path in ["/readyz", "/livez", "/healthz"] {
            assert_eq!(
                get(&health, path).await,
                (StatusCode::OK, "ok\n".into()),
                "{path}"
            );
        }
    }
}

//! The live write path at scale: `bindery run` against real kube-apiservers (envtest),
//! timed from a change applied to the API server to the last Binding write it caused.
//!
//! Setup: 100 WECs in the ITS (labels `region` r0-r4, `tier` gold/silver/bronze), 50
//! namespaces and N ConfigMaps in the WDS (labels `app` a0-a99 and `group` g0-g19), 200
//! BindingPolicies: policy i binds the WECs of region `r(i mod 5)` and selects the
//! ConfigMaps of `app: a(i mod 100)` or of `group: g(i mod 20)`. Bindery runs with its
//! defaults (50 qps, burst 100, 250 ms coalescing, concurrency 8). Cases, one after the
//! other on the same servers:
//!
//! 1. initial sync with nothing stored: from start to the last Binding written;
//! 2. a new policy selecting every ConfigMap for the `gold` WECs;
//! 3. one WEC relabelled from region r0 to r1: it leaves 40 policies and enters 40;
//! 4. one ConfigMap relabelled from group g1 to g2: it leaves 10 policies, enters 10;
//! 5. a restart with nothing changed: time to ready, Binding writes made.
//!
//! A case ends when no Binding has changed for 3 s and Bindery's sink is idle; its time is
//! that of the last Binding event its watch saw. For each it prints the Bindings changed,
//! Bindery's Binding writes, and the p50/p99 of `bindery_event_to_binding_seconds` over
//! the case (from the histogram's bucket deltas, interpolated within a bucket).
//!
//! With `--kubestellar KS_BINARY` (from `bench/kubestellar/build.sh`; a relative path is
//! taken from the workspace root, as cargo runs the bench in `bench/`) the same cases run
//! again with KubeStellar's binding controller instead, on fresh servers, and the two
//! controllers' Bindings are compared entry by entry at the end of each case.
//!
//! ```text
//! cargo bench -p bindery-bench --bench live_write                   # 10,000 ConfigMaps
//! cargo bench -p bindery-bench --bench live_write -- --configmaps 100000
//! cargo bench -p bindery-bench --bench live_write -- --kubestellar target/ks-binding
//! ```

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use bindery_bench::{cli, live, memory, stats};
use bindery_tests::bindery_run::BinderyRun;
use bindery_tests::control_plane::{self, apply, res};
use bindery_tests::metrics::{sum, value};
use bindery_tests::{free_port, http_get};
use futures::StreamExt;
use kube::api::{Api, DynamicObject, PostParams, WatchEvent, WatchParams};
use serde_json::{Value, json};

const WECS: usize = 100;
const NAMESPACES: usize = 50;
const POLICIES: usize = 200;

/// Every Binding event the watch saw: when, which Binding, how many workload entries.
#[derive(Clone, Default)]
struct Seen(
    Arc<Mutex<Vec<(Instant, String, usize)>>>,
    Arc<Mutex<BTreeMap<String, Value>>>,
);

impl Seen {
    fn len(&self) -> usize {
        self.0.lock().unwrap().len()
    }

    /// The events from index `from` on.
    fn since(&self, from: usize) -> Vec<(Instant, String, usize)> {
        self.0.lock().unwrap()[from..].to_vec()
    }

    /// Every Binding's latest spec, [`normal_spec`]ed.
    fn latest(&self) -> BTreeMap<String, Value> {
        self.1.lock().unwrap().clone()
    }

    fn last_at(&self) -> Option<Instant> {
        self.0.lock().unwrap().last().map(|e| e.0)
    }
}

/// Watches Bindings for good, recording every ADDED/MODIFIED event.
fn watch_bindings(wds: kube::Client, seen: Seen) {
    tokio::spawn(async move {
        let api: Api<DynamicObject> = Api::all_with(wds, &res::bindings());
        let mut version = "0".to_string();
        loop {
            let Ok(stream) = api
                .watch(&WatchParams::default().timeout(290), &version)
                .await
            else {
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            };
            let mut stream = stream.boxed();
            while let Some(Ok(event)) = stream.next().await {
                let object = match event {
                    WatchEvent::Added(o) | WatchEvent::Modified(o) => o,
                    WatchEvent::Bookmark(b) => {
                        version = b.metadata.resource_version;
                        continue;
                    }
                    WatchEvent::Deleted(o) => {
                        version = control_plane::rv(&o);
                        let name = o.metadata.name.clone().unwrap_or_default();
                        seen.1.lock().unwrap().remove(&name);
                        continue;
                    }
                    WatchEvent::Error(_) => break,
                };
                version = control_plane::rv(&object);
                let entries = ["clusterScope", "namespaceScope"]
                    .iter()
                    .map(|k| {
                        object.data["spec"]["workload"][k]
                            .as_array()
                            .map_or(0, Vec::len)
                    })
                    .sum();
                let name = object.metadata.name.clone().unwrap_or_default();
                seen.1
                    .lock()
                    .unwrap()
                    .insert(name.clone(), normal_spec(&object.data["spec"]));
                seen.0.lock().unwrap().push((Instant::now(), name, entries));
            }
        }
    });
}

/// Bindery's `/metrics`.
fn metrics(listen: &str) -> Result<String> {
    let (code, text) = http_get(&format!("http://{listen}/metrics"))?;
    if code != 200 {
        bail!("/metrics: HTTP {code}");
    }
    Ok(text)
}

/// The cumulative buckets of `bindery_event_to_binding_seconds`: (upper bound, count).
fn latency_buckets(text: &str) -> Vec<(f64, f64)> {
    let prefix = "bindery_event_to_binding_seconds_bucket{le=\"";
    let mut buckets: Vec<(f64, f64)> = text
        .lines()
        .filter_map(|l| l.strip_prefix(prefix))
        .filter_map(|rest| {
            let (le, count) = rest.split_once("\"} ")?;
            let le = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().ok()?
            };
            Some((le, count.trim().parse().ok()?))
        })
        .collect();
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    buckets
}

/// The bucket `(lower, upper]` holding the `q` quantile of the observations between two
/// bucket snapshots (the buckets double: 0.5 ms to 65 s).
fn quantile(before: &[(f64, f64)], after: &[(f64, f64)], q: f64) -> Option<(f64, f64)> {
    let deltas: Vec<(f64, f64)> = after
        .iter()
        .map(|&(le, n)| {
            let was = before.iter().find(|b| b.0 == le).map_or(0.0, |b| b.1);
            (le, n - was)
        })
        .collect();
    let total = deltas.last()?.1;
    if total <= 0.0 {
        return None;
    }
    let rank = q * total;
    let mut lower = 0.0;
    for &(le, n) in &deltas {
        if n >= rank {
            return Some((lower, le));
        }
        lower = le;
    }
    None
}

/// A controller process's CPU time and peak RSS so far (`/proc`).
struct Usage {
    what: &'static str,
    cpu_seconds: f64,
    peak_rss_kb: u64,
}

impl Usage {
    fn of(what: &'static str, pid: u32) -> Result<Usage> {
        Ok(Usage {
            what,
            cpu_seconds: memory::cpu_seconds_of(pid).context("/proc/PID/stat")?,
            peak_rss_kb: memory::peak_rss_kb_of(pid).unwrap_or(0),
        })
    }
}

/// What one case measured.
struct CaseResult {
    name: String,
    seconds: f64,
    bindings_changed: usize,
    /// Bindings created, changed or deleted on the server.
    binding_writes: f64,
    /// Binding writes not sent: the server already had the desired state.
    unchanged: f64,
    /// Policy status writes applied.
    status_writes: f64,
    p50: Option<(f64, f64)>,
    p99: Option<(f64, f64)>,
}

/// Waits until no Binding has changed for 3 s and (Bindery, whose `/metrics` is at
/// `listen`) the sink is idle, at most 15 min; measures from `started`.
async fn settle(
    name: &str,
    started: Instant,
    seen: &Seen,
    from: usize,
    listen: Option<&str>,
    before: &str,
    expect: Option<(&BTreeMap<String, Value>, bool)>,
) -> Result<CaseResult> {
    let deadline = Instant::now() + Duration::from_secs(900);
    loop {
        tokio::time::sleep(Duration::from_millis(250)).await;
        // Another controller (no metrics to say it is idle): done when its Bindings are
        // the expected ones (Bindery's at the end of the same case), after it wrote at
        // least once when `must_change` (a restart that rewrites them), and quiet.
        if let Some((expected, must_change)) = expect {
            let changed = seen.len() > from || started.elapsed() > Duration::from_secs(120);
            let quiet = seen
                .last_at()
                .is_none_or(|t| t.elapsed() > Duration::from_secs(3));
            let done = (changed || !must_change) && quiet && seen.latest() == *expected;
            if !done && Instant::now() < deadline {
                continue;
            }
        }
        let text = match listen {
            Some(listen) => metrics(listen)?,
            None => String::new(),
        };
        let idle = listen.is_none()
            || (value(&text, "bindery_sink_pending_writes") == 0.0
                && value(&text, "bindery_sink_in_flight_writes") == 0.0);
        let quiet = seen
            .last_at()
            .is_none_or(|t| t.elapsed() > Duration::from_secs(3));
        if (idle && quiet && started.elapsed() > Duration::from_secs(3))
            || Instant::now() > deadline
        {
            let events = seen.since(from);
            let end = events.last().map_or(started, |e| e.0);
            let changed: std::collections::BTreeSet<&String> =
                events.iter().map(|e| &e.1).collect();
            let count = |t: &str, object: &str, result: &str| {
                let (object, result) = (
                    format!("object=\"{object}\""),
                    format!("result=\"{result}\""),
                );
                sum(t, "bindery_sink_writes_total", &[&object, &result])
            };
            let writes = |t: &str| count(t, "binding", "applied") + count(t, "binding", "deleted");
            let (b, a) = (latency_buckets(before), latency_buckets(&text));
            let result = CaseResult {
                name: name.to_string(),
                seconds: end.saturating_duration_since(started).as_secs_f64(),
                bindings_changed: changed.len(),
                // Without Bindery's metrics: the Binding versions the watch saw.
                binding_writes: match listen {
                    Some(_) => writes(&text) - writes(before),
                    None => events.len() as f64,
                },
                unchanged: count(&text, "binding", "unchanged")
                    - count(before, "binding", "unchanged"),
                status_writes: count(&text, "status", "applied")
                    - count(before, "status", "applied"),
                p50: quantile(&b, &a, 0.5),
                p99: quantile(&b, &a, 0.99),
            };
            eprintln!(
                "[live_write] {name}: {:.2} s, {} Bindings changed",
                result.seconds, result.bindings_changed
            );
            return Ok(result);
        }
    }
}

fn policy(i: usize) -> Value {
    json!({"apiVersion": "control.kubestellar.io/v1alpha1", "kind": "BindingPolicy",
        "metadata": {"name": format!("p-{i:03}")},
        "spec": {"clusterSelectors": [{"matchLabels": {"region": format!("r{}", i % 5)}}],
                 "downsync": [
                     {"resources": ["configmaps"], "objectSelectors": [{"matchLabels": {"app": format!("a{}", i % 100)}}]},
                     {"resources": ["configmaps"], "objectSelectors": [{"matchLabels": {"group": format!("g{}", i % 20)}}]}]}})
}

fn wec(i: usize, region: usize) -> Value {
    let tier = ["gold", "silver", "bronze"][i % 3];
    json!({"apiVersion": "cluster.open-cluster-management.io/v1", "kind": "ManagedCluster",
        "metadata": {"name": format!("wec-{i:03}"), "labels": {"region": format!("r{region}"), "tier": tier}},
        "spec": {"hubAcceptsClient": true}})
}

fn configmap(k: usize, group: usize) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": format!("cm-{k:06}"), "namespace": format!("ns-{:02}", k % NAMESPACES),
                     "labels": {"app": format!("a{}", k % 100), "group": format!("g{group}")}},
        "data": {"k": "v"}})
}

/// The controller keeping the Bindings.
#[derive(Clone, Debug)]
enum Controller {
    Bindery,
    /// KubeStellar's binding controller: the `ks-binding` binary of
    /// `bench/kubestellar/build.sh`.
    KubeStellar(std::path::PathBuf),
}

impl Controller {
    fn name(&self) -> &'static str {
        match self {
            Controller::Bindery => "Bindery",
            Controller::KubeStellar(_) => "KubeStellar's binding controller",
        }
    }

    /// Starts it against the servers, logging to `live_write-WHO-LOG` in the temporary
    /// directory; Bindery serves
    /// `/metrics` and `/readyz` at `listen`.
    fn start(
        &self,
        env: &bindery_tests::envtest::Envtest,
        listen: &str,
        log: &str,
    ) -> Result<BinderyRun> {
        let who = match self {
            Controller::Bindery => "bindery",
            Controller::KubeStellar(_) => "kubestellar",
        };
        let log = live::log_path("live_write", &format!("{who}-{log}"), self.name());
        match self {
            Controller::Bindery => BinderyRun::start(
                &env.wds.kubeconfig,
                &env.its.kubeconfig,
                &log,
                &["--listen", listen],
            ),
            Controller::KubeStellar(binary) => {
                BinderyRun::start_command(live::kubestellar_command(binary, env, &[]), &log)
            }
        }
    }

    /// Where its `/metrics` is, for Bindery.
    fn metrics_at<'a>(&self, listen: &'a str) -> Option<&'a str> {
        matches!(self, Controller::Bindery).then_some(listen)
    }

    /// Waits until it is ready (Bindery's `/readyz`; KubeStellar's: nothing to wait on).
    async fn ready(&self, listen: &str) -> Result<()> {
        match self {
            Controller::Bindery => ready(listen).await,
            Controller::KubeStellar(_) => Ok(()),
        }
    }
}

/// A Binding's spec with its lists sorted (to compare two controllers' Bindings entry by
/// entry), empty lists left out and entries without their `resourceVersion` (the two
/// controllers run on servers of their own).
fn normal_spec(spec: &Value) -> Value {
    let sorted = |v: &Value| -> Value {
        let mut items: Vec<Value> = v.as_array().cloned().unwrap_or_default();
        for item in &mut items {
            // Each run has servers of its own: their resourceVersions differ.
            if let Some(entry) = item.as_object_mut() {
                entry.remove("resourceVersion");
            }
        }
        items.sort_by_key(|i| i.to_string());
        Value::Array(items)
    };
    let mut normal = serde_json::Map::new();
    for (key, list) in [
        ("destinations", &spec["destinations"]),
        ("clusterScope", &spec["workload"]["clusterScope"]),
        ("namespaceScope", &spec["workload"]["namespaceScope"]),
    ] {
        if list.as_array().is_some_and(|l| !l.is_empty()) {
            normal.insert(key.to_string(), sorted(list));
        }
    }
    Value::Object(normal)
}

/// Every Binding's spec, by name, [`normal_spec`]ed.
async fn snapshot(wds: &kube::Client) -> Result<BTreeMap<String, Value>> {
    let api: Api<DynamicObject> = Api::all_with(wds.clone(), &res::bindings());
    let mut out = BTreeMap::new();
    for binding in api.list(&Default::default()).await? {
        let name = binding.metadata.name.clone().unwrap_or_default();
        out.insert(name, normal_spec(&binding.data["spec"]));
    }
    Ok(out)
}

async fn ready(listen: &str) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(600);
    while Instant::now() < deadline {
        if let Ok((200, _)) = http_get(&format!("http://{listen}/readyz")) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("bindery was not ready in 600 s")
}

/// The cases on fresh servers with `controller`; each case's result and the Bindings at
/// its end.
async fn bench(
    configmaps: usize,
    controller: &Controller,
    expected: Option<&[BTreeMap<String, Value>]>,
) -> Result<(Vec<CaseResult>, Vec<BTreeMap<String, Value>>, Vec<Usage>)> {
    // With `expected` (another controller's run after Bindery's), case `i` ends when the
    // Bindings are Bindery's at the end of case `i`; the restart (4) must write first.
    let expect = |i: usize| expected.map(|e| (&e[i], i == 4));
    eprintln!(
        "[live_write] {} on {configmaps} ConfigMaps",
        controller.name()
    );
    let mut snapshots = Vec::new();
    let (env, wds, its) = control_plane::start().await;
    let mut results = Vec::new();
    live::create_all(
        "live_write",
        &its,
        &res::managed_clusters(),
        (0..WECS).map(|i| wec(i, i % 5)).collect(),
        "WECs",
    )
    .await?;
    let namespaces = (0..NAMESPACES)
        .map(|j| json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": format!("ns-{j:02}")}}))
        .collect();
    live::create_all(
        "live_write",
        &wds,
        &res::namespaces(),
        namespaces,
        "namespaces",
    )
    .await?;
    live::create_all(
        "live_write",
        &wds,
        &res::configmaps(),
        (0..configmaps).map(|k| configmap(k, k % 20)).collect(),
        "ConfigMaps",
    )
    .await?;
    live::create_all(
        "live_write",
        &wds,
        &res::binding_policies(),
        (0..POLICIES).map(policy).collect(),
        "policies",
    )
    .await?;

    let seen = Seen::default();
    watch_bindings(wds.clone(), seen.clone());
    let listen = format!("127.0.0.1:{}", free_port());

    // 1. Initial sync, nothing stored.
    let started = Instant::now();
    let mut bindery = controller.start(&env, &listen, "controller-1.log")?;
    controller.ready(&listen).await?;
    let none = String::new();
    results.push(
        settle(
            "initial sync, nothing stored",
            started,
            &seen,
            0,
            controller.metrics_at(&listen),
            &none,
            expect(0),
        )
        .await?,
    );
    snapshots.push(snapshot(&wds).await?);

    // One change, then its settling: the case's result and the Bindings at its end.
    let metrics_text = || match controller.metrics_at(&listen) {
        Some(listen) => metrics(listen),
        None => Ok(String::new()),
    };
    macro_rules! case {
        ($name:expr, $index:expr, $change:expr) => {{
            let before = metrics_text()?;
            let from = seen.len();
            let started = Instant::now();
            $change.await?;
            let at = controller.metrics_at(&listen);
            results.push(settle($name, started, &seen, from, at, &before, expect($index)).await?);
            snapshots.push(snapshot(&wds).await?);
        }};
    }
    // 2. A new policy selecting every ConfigMap.
    let every = json!({"apiVersion": "control.kubestellar.io/v1alpha1", "kind": "BindingPolicy",
        "metadata": {"name": "every-configmap"},
        "spec": {"clusterSelectors": [{"matchLabels": {"tier": "gold"}}], "downsync": [{"resources": ["configmaps"]}]}});
    case!(
        &format!("new policy selecting all {configmaps} ConfigMaps"),
        1,
        apply(&wds, &res::binding_policies(), every)
    );
    // 3. One WEC from region r0 to r1.
    case!(
        "one WEC relabel (leaves 40 policies, enters 40)",
        2,
        apply(&its, &res::managed_clusters(), wec(0, 1))
    );
    // 4. One ConfigMap from group g1 to g2.
    case!(
        "one object relabel (leaves 10 policies, enters 10)",
        3,
        apply(&wds, &res::configmaps(), configmap(1, 2))
    );

    // The API server's own cost of a write, with Bindery idle: a copy of one Binding that
    // no policy owns (left alone), patched in turn with its whole spec (as the sink does)
    // and with only `spec.destinations`.
    server_write_cost(&wds).await?;

    // 5. Restart, nothing changed.
    let mut usage = vec![Usage::of("cases 1-4 (one process)", bindery.pid())?];
    bindery.stop()?;
    let from = seen.len();
    let started = Instant::now();
    let bindery2 = controller.start(&env, &listen, "controller-2.log")?;
    controller.ready(&listen).await?;
    let ready_after = started.elapsed().as_secs_f64();
    let mut restart = settle(
        "restart, nothing changed (Bindery: time to ready; else to the last Binding written)",
        started,
        &seen,
        from,
        controller.metrics_at(&listen),
        &none,
        expect(4),
    )
    .await?;
    // Bindery need write no Binding: the time that counts is to ready. KubeStellar's
    // controller rewrites them: the time is to its last write (`settle`'s).
    if matches!(controller, Controller::Bindery) {
        restart.seconds = ready_after;
    }
    results.push(restart);
    snapshots.push(snapshot(&wds).await?);
    usage.push(Usage::of("restart (the second process)", bindery2.pid())?);
    drop(bindery2);
    Ok((results, snapshots, usage))
}

/// Times 20 sequential merge patches of an unowned copy of Binding `p-000`: with the
/// whole spec (destinations changed each time), then with only `spec.destinations`.
async fn server_write_cost(wds: &kube::Client) -> Result<()> {
    use kube::api::{Patch, PatchParams};
    let api: Api<DynamicObject> = Api::all_with(wds.clone(), &res::bindings());
    let source = api.get("p-000").await?;
    let spec = source.data["spec"].clone();
    let probe: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "control.kubestellar.io/v1alpha1", "kind": "Binding",
        "metadata": {"name": "write-cost-probe"}, "spec": spec}))?;
    api.create(&PostParams::default(), &probe).await?;
    let destinations = |i: usize| -> Value {
        (0..20)
            .map(|d| json!({"clusterId": format!("wec-{:03}", (d * 5 + i) % WECS)}))
            .collect()
    };
    let bytes = serde_json::to_vec(&spec)?.len();
    let params = PatchParams::default();
    for (what, whole) in [("the whole spec", true), ("only spec.destinations", false)] {
        let mut latencies = Vec::new();
        for i in 0..20 {
            let body = if whole {
                let mut spec = spec.clone();
                spec["destinations"] = destinations(i);
                json!({"spec": spec})
            } else {
                json!({"spec": {"destinations": destinations(i)}})
            };
            let started = Instant::now();
            api.patch("write-cost-probe", &params, &Patch::Merge(&body))
                .await?;
            latencies.push(started.elapsed().as_secs_f64());
        }
        eprintln!(
            "[live_write] API server, one merge patch of a Binding of {bytes} bytes of spec, sending {what}: p50 {:.0} ms, max {:.0} ms (20 in a row)",
            stats::median(&latencies) * 1000.0,
            stats::quantile(&latencies, 1.0) * 1000.0
        );
    }
    api.delete("write-cost-probe", &Default::default()).await?;
    Ok(())
}

fn main() -> Result<()> {
    let mut configmaps = 10_000;
    let mut kubestellar = None;
    let mut args = cli::args();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--configmaps" => configmaps = cli::count(&args.next().context("--configmaps N")?)?,
            "--kubestellar" => kubestellar = Some(args.next().context("--kubestellar PATH")?),
            other => bail!("unknown argument {other:?}"),
        }
    }
    // bindery-tests builds the `bindery` binary on first use: before the first case's
    // clock starts, not inside it.
    eprintln!(
        "[live_write] bindery binary: {}",
        bindery_tests::bindery_bin().display()
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let mut controllers = vec![Controller::Bindery];
    if let Some(path) = &kubestellar {
        // Cargo runs the bench in bench/: the documented paths are the workspace root's.
        let binary = bindery_tests::workspace_root().join(path);
        let binary = std::fs::canonicalize(&binary)
            .with_context(|| format!("--kubestellar {}", binary.display()))?;
        controllers.push(Controller::KubeStellar(binary));
    }
    println!("## Live write path: {configmaps} ConfigMaps, {WECS} WECs, {POLICIES} policies\n");
    println!(
        "`cargo bench -p bindery-bench --bench live_write -- --configmaps {configmaps}{}`; Bindery with its defaults (50 qps, burst 100, --coalesce-ms 250, --concurrency 8){}; one controller at a time, each on fresh servers.\n",
        if kubestellar.is_some() {
            " --kubestellar KS_BINARY"
        } else {
            ""
        },
        if kubestellar.is_some() {
            ", KubeStellar's binding controller with 50 qps, burst 100 and its 4 workers"
        } else {
            ""
        },
    );
    let mut all = Vec::new();
    for controller in &controllers {
        let expected = match controller {
            Controller::Bindery => None,
            Controller::KubeStellar(_) => all.first().map(Vec::as_slice),
        };
        let (results, snapshots, usage) =
            runtime.block_on(bench(configmaps, controller, expected))?;
        print_results(controller, &results);
        for u in &usage {
            println!(
                "{}, {}: {:.1} CPU-seconds (user + system), peak RSS {:.0} MiB.",
                controller.name(),
                u.what,
                u.cpu_seconds,
                u.peak_rss_kb as f64 / 1024.0
            );
        }
        println!();
        all.push(snapshots);
    }
    if let [ours, theirs] = &all[..] {
        println!(
            "Bindings compared entry by entry (destinations, clusterScope, namespaceScope; lists sorted, resourceVersions left out: each controller ran on servers of its own) at the end of each case:\n"
        );
        println!("| case | Bindings equal | differ | only one side |");
        println!("| --- | --- | --- | --- |");
        for (i, (a, b)) in ours.iter().zip(theirs).enumerate() {
            let names: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            let (mut equal, mut differ, mut one_side) = (0, Vec::new(), Vec::new());
            for name in names {
                match (a.get(name), b.get(name)) {
                    (Some(x), Some(y)) if x == y => equal += 1,
                    (Some(_), Some(_)) => differ.push(name.as_str()),
                    _ => one_side.push(name.as_str()),
                }
            }
            println!(
                "| {} | {equal} | {} {:?} | {} {:?} |",
                i + 1,
                differ.len(),
                &differ[..differ.len().min(5)],
                one_side.len(),
                &one_side[..one_side.len().min(5)]
            );
        }
        println!();
    }
    Ok(())
}

fn print_results(controller: &Controller, results: &[CaseResult]) {
    let bucket =
        |b: Option<(f64, f64)>| b.map_or("-".to_string(), |(lo, hi)| format!("{lo:.2}-{hi:.2} s"));
    println!("### {}\n", controller.name());
    println!(
        "| case | change to last Binding written | Bindings changed | Binding writes (not sent: unchanged) | status writes | event_to_binding p50 (its bucket) | p99 (its bucket) |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- |");
    for r in results {
        println!(
            "| {} | {:.2} s | {} | {:.0} ({:.0}) | {:.0} | {} | {} |",
            r.name,
            r.seconds,
            r.bindings_changed,
            r.binding_writes,
            r.unchanged,
            r.status_writes,
            bucket(r.p50),
            bucket(r.p99)
        );
    }
    println!();
    if matches!(controller, Controller::KubeStellar(_)) {
        println!(
            "(KubeStellar's controller has no metrics of Bindery's: its Binding writes are the Binding versions the watch saw.)\n"
        );
    }
}

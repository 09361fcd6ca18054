//! Status return at scale, side by side: `bindery run --wds-name wds1` and, with
//! `--kubestellar KS_BINARY`, KubeStellar's `ks-controller-manager`, each on fresh envtest
//! servers, timed from a WorkStatus status write to the WDS object's `.status` and to
//! its CombinedStatus showing it (issue 19).
//!
//! Setup (sizes are flags): W WECs (default 100, `wec-000`...; labelled `name` and
//! `location-group: rN`, N in 0-4), O Widgets (default 10,000; namespaced objects of a
//! test CRD without a status subresource, so a returned `.status` is kept where a
//! ConfigMap's would be dropped) in 20 namespaces, and:
//!
//! - R objects (default 1,000) labelled `role: returned`, policy `singleton` binding them
//!   to `wec-000` with `wantSingletonReportedState`;
//! - C objects (default 1,000) labelled `role: collected`, policy `combined` binding them
//!   to `wec-001` and `wec-002` and naming two StatusCollectors: `sum-x` (SUM of
//!   `returned.status.x`, COUNT) and `wecs` (a select of `inventory.name` and
//!   `returned.status.v`);
//! - the other objects labelled `bulk: bN` (N in 0-49), 50 policies `bulk-N` without
//!   status return binding them to the 20 WECs of a region: 52 Bindings in all.
//!
//! The bench plays KubeStellar's transport and OCM status add-on: once the two status
//! policies' Bindings list their objects, it creates a WorkStatus for each (object, WEC)
//! pair they list (R + 2C), 32 requests in flight, and writes their status (`{"x": N,
//! "v": "WEC@GEN"}`) through the status subresource. Measured per controller: the
//! initial settle (until every object's status and every CombinedStatus show the
//! WorkStatuses); the latency of M single changes (`--changes`, default 50), one at a
//! time, of a returned object's WorkStatus to the object's `.status` and of a collected
//! object's WorkStatus in `wec-001` to its CombinedStatus (from the start of the status
//! write request to the watch event showing it); bursts changing all R returned
//! WorkStatuses, then all 2C collected ones, as fast as the stand-in writes (32 in
//! flight), until every object (CombinedStatus) shows them; the controller's CPU seconds
//! over each phase and its peak RSS.
//!
//! ```text
//! cargo bench -p bindery-bench --bench live_status_scale -- --kubestellar /tmp/ks-controller-manager
//! cargo bench -p bindery-bench --bench live_status_scale -- --objects 2000 --wecs 20 --returned 200 --collected 200
//! ```

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use bindery_bench::live::{self, StatusController};
use bindery_bench::{cli, fmt, memory, stats};
use bindery_tests::control_plane::{self, res};
use bindery_tests::free_port;
use bindery_tests::objects;
use bindery_tests::world::World;
use futures::{StreamExt, TryStreamExt};
use kube::api::DynamicObject;
use serde_json::{Value, json};

const BENCH: &str = "live_status_scale";
const WDS_NAME: &str = "wds1";
const NAMESPACES: usize = 20;
const BULK_POLICIES: usize = 50;
const REGIONS: usize = 5;
/// The WEC of the singleton policy and the two of the collected one.
const SINGLETON_WEC: &str = "wec-000";
const COLLECTED_WECS: [&str; 2] = ["wec-001", "wec-002"];

#[derive(Clone, Copy)]
struct Sizes {
    objects: usize,
    wecs: usize,
    returned: usize,
    collected: usize,
    changes: usize,
}

fn object_name(k: usize) -> (String, String) {
    (format!("ns-{:02}", k % NAMESPACES), format!("w-{k:05}"))
}

fn widget(k: usize, sizes: Sizes) -> Value {
    let (ns, name) = object_name(k);
    let labels = if k < sizes.returned {
        json!({"role": "returned"})
    } else if k < sizes.returned + sizes.collected {
        json!({"role": "collected"})
    } else {
        json!({"bulk": format!("b{}", k % BULK_POLICIES)})
    };
    objects::widget(&ns, &name, labels)
}

fn widget_ref(ns: &str, name: &str) -> Value {
    json!({"group": "example.com", "version": "v1", "resource": "widgets", "kind": "Widget",
           "namespace": ns, "name": name})
}

/// What `wec` reports for an object at generation `generation` (`x` differs per change).
fn reported(wec: &str, generation: usize) -> Value {
    json!({"x": generation + 1, "v": format!("{wec}@{generation}")})
}

/// The policies: 50 bulk ones, `singleton` and `combined`.
fn policies() -> Vec<Value> {
    let mut out: Vec<Value> = (0..BULK_POLICIES)
        .map(|i| {
            objects::policy(
                &format!("bulk-{i:02}"),
                objects::location_group(&format!("r{}", i % REGIONS)),
                json!([objects::labelled(
                    &["widgets"],
                    json!({"bulk": format!("b{i}")})
                )]),
            )
        })
        .collect();
    let mut singleton = objects::labelled(&["widgets"], json!({"role": "returned"}));
    singleton["wantSingletonReportedState"] = json!(true);
    out.push(objects::policy(
        "singleton",
        json!([{"matchLabels": {"name": SINGLETON_WEC}}]),
        json!([singleton]),
    ));
    let mut combined = objects::labelled(&["widgets"], json!({"role": "collected"}));
    combined["statusCollectors"] = json!(["sum-x", "wecs"]);
    out.push(objects::policy(
        "combined",
        COLLECTED_WECS
            .iter()
            .map(|w| json!({"matchLabels": {"name": w}}))
            .collect(),
        json!([combined]),
    ));
    out
}

fn collectors() -> Vec<Value> {
    let sc = objects::status_collector;
    vec![
        sc(
            "sum-x",
            json!({"combinedFields": [{"name": "sum", "type": "SUM", "subject": "returned.status.x"},
                                      {"name": "count", "type": "COUNT"}], "limit": 10}),
        ),
        sc(
            "wecs",
            json!({"select": [{"name": "wec", "def": "inventory.name"},
                              {"name": "v", "def": "returned.status.v"}], "limit": 10}),
        ),
    ]
}

/// A test of an object's latest view.
type Check = Box<dyn Fn(&Value) -> bool + Send + Sync>;
/// An object's key and the test its view must pass.
type Want = (String, Check);

/// Each object's latest view (by `ns/name`) and when it took that value.
type Latest = Arc<Mutex<HashMap<String, (Instant, Value)>>>;

/// Keeps `latest` up to date with `resource`'s objects as `view` shows them.
async fn follow(
    wds: &kube::Client,
    resource: kube::core::ApiResource,
    latest: Latest,
    view: fn(&DynamicObject) -> Option<(String, Value)>,
) -> Result<tokio::task::JoinHandle<()>> {
    live::watch(wds.clone(), resource, move |object, _| {
        let Some((k, v)) = view(object) else {
            return;
        };
        let mut latest = latest.lock().unwrap();
        if latest.get(&k).is_none_or(|(_, was)| *was != v) {
            latest.insert(k, (Instant::now(), v));
        }
    })
    .await
}

fn key(ns: &str, name: &str) -> String {
    format!("{ns}/{name}")
}

/// A Widget's `.status`.
fn status_view(o: &DynamicObject) -> Option<(String, Value)> {
    let k = key(
        o.metadata.namespace.as_deref()?,
        o.metadata.name.as_deref()?,
    );
    Some((k, o.data.get("status").cloned().unwrap_or(Value::Null)))
}

/// A CombinedStatus of policy `combined`, by its object's `ns/name` (its labels): its
/// `results` as JSON text.
fn combined_view(cs: &DynamicObject) -> Option<(String, Value)> {
    let labels = cs.metadata.labels.as_ref()?;
    let label = |l: &str| labels.get(&format!("status.kubestellar.io/{l}"));
    if label("binding-policy")?.as_str() != "combined" {
        return None;
    }
    let k = key(label("namespace")?, label("name")?);
    Some((k, Value::String(cs.data["results"].to_string())))
}

/// Whether the CombinedStatus text `results` shows the WorkStatus values `v` of
/// `markers`.
fn shows(results: &Value, markers: &[String]) -> bool {
    let text = results.as_str().unwrap_or_default();
    markers.iter().all(|m| text.contains(&format!("\"{m}\"")))
}

/// Waits until every key of `want` satisfies it in `latest`, polling every `poll`, at
/// most `limit`; returns the latest time any of them took its value.
async fn await_all(
    latest: &Latest,
    want: &[Want],
    poll: Duration,
    limit: Duration,
    what: &str,
) -> Result<Instant> {
    let started = Instant::now();
    let mut told = started;
    loop {
        let (last, missing) = {
            let latest = latest.lock().unwrap();
            let mut last: Option<Instant> = None;
            let mut missing = Vec::new();
            for (k, ok) in want {
                match latest.get(k) {
                    Some((at, v)) if ok(v) => last = Some(last.map_or(*at, |l| l.max(*at))),
                    other => missing.push((k, other.map(|o| o.1.clone()))),
                }
            }
            (last, missing)
        };
        if missing.is_empty() {
            return Ok(last.unwrap_or_else(Instant::now));
        }
        if told.elapsed() > Duration::from_secs(30) || started.elapsed() > limit {
            told = Instant::now();
            let (k, v) = &missing[0];
            eprintln!(
                "[{BENCH}] {what}: {} of {} not there after {:.0} s; e.g. {k}: {v:?}",
                missing.len(),
                want.len(),
                started.elapsed().as_secs_f64()
            );
        }
        if started.elapsed() > limit {
            bail!("{what}: not there after {limit:?}");
        }
        tokio::time::sleep(poll).await;
    }
}

/// The WorkStatus name the stand-in gives object `ns/name` in `wec` (KubeStellar's
/// add-on: `<AppliedManifestWork UID>-<group+version>-<kind>-<namespace>-<name>`).
fn work_status_name(wec: &str, ns: &str, name: &str) -> String {
    let n: usize = wec.trim_start_matches("wec-").parse().unwrap_or(0);
    format!("00000000-0000-0000-0000-{n:012}-example.comv1-widget-{ns}-{name}")
}

/// A WorkStatus the stand-in keeps: WEC, object namespace and name, its binding key.
type Pair = (String, String, String, &'static str);

/// Writes the WorkStatuses `pairs` at `generation` (creating them when `create`), 32 in
/// flight.
async fn write_all(
    its: &kube::Client,
    pairs: &[Pair],
    generation: usize,
    create: bool,
) -> Result<()> {
    futures::stream::iter(pairs)
        .map(|(wec, ns, name, binding)| {
            let its = its.clone();
            async move {
                let ws = work_status_name(wec, ns, name);
                control_plane::write_work_status(
                    &its,
                    (wec, &ws),
                    (WDS_NAME, binding),
                    widget_ref(ns, name),
                    &reported(wec, generation),
                    create,
                )
                .await
                .with_context(|| format!("WorkStatus {wec}/{ws}"))
            }
        })
        .buffer_unordered(32)
        .try_collect::<Vec<_>>()
        .await?;
    Ok(())
}

/// The (WEC, namespace, name) pairs Binding `name` lists, once it lists `expected`.
async fn binding_pairs(
    wds: &kube::Client,
    name: &'static str,
    expected: usize,
) -> Result<Vec<Pair>> {
    let deadline = Instant::now() + Duration::from_secs(900);
    loop {
        if let Some(b) = control_plane::get(wds, &res::bindings(), None, name).await? {
            let spec = &b.data["spec"];
            let mut pairs = Vec::new();
            for d in spec["destinations"].as_array().into_iter().flatten() {
                for e in spec["workload"]["namespaceScope"]
                    .as_array()
                    .into_iter()
                    .flatten()
                {
                    if let (Some(wec), Some(ns), Some(n)) = (
                        d["clusterId"].as_str(),
                        e["namespace"].as_str(),
                        e["name"].as_str(),
                    ) {
                        pairs.push((wec.to_string(), ns.to_string(), n.to_string(), name));
                    }
                }
            }
            if pairs.len() == expected {
                return Ok(pairs);
            }
        }
        if Instant::now() > deadline {
            bail!("Binding {name} does not list {expected} pairs after 900 s");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// A phase's CPU seconds and the peak RSS at its end.
#[derive(Default, Clone, Copy)]
struct Usage {
    cpu: f64,
    peak_rss_kb: u64,
}

struct Meter(u32, f64);

impl Meter {
    fn new(pid: u32) -> Meter {
        Meter(pid, memory::cpu_seconds_of(pid).unwrap_or(f64::NAN))
    }
    /// The CPU since the last call (or `new`), and the peak RSS now.
    fn lap(&mut self) -> Usage {
        let now = memory::cpu_seconds_of(self.0).unwrap_or(f64::NAN);
        let cpu = now - self.1;
        self.1 = now;
        Usage {
            cpu,
            peak_rss_kb: memory::peak_rss_kb_of(self.0).unwrap_or(0),
        }
    }
}

/// A burst: the stand-in's writes done, all shown (seconds from the burst's start), its
/// WorkStatus events, the controller's CPU over it.
#[derive(Default)]
struct Burst {
    written: f64,
    shown: f64,
    events: usize,
    usage: Usage,
}

/// What one controller measured.
#[derive(Default)]
struct Results {
    /// Controller start to both status policies' Bindings complete.
    bindings: f64,
    /// The stand-in's creation of every WorkStatus with its status.
    ws_written: f64,
    /// From the first WorkStatus write to every object status / CombinedStatus in place.
    settle_status: f64,
    settle_combined: f64,
    settle_usage: Usage,
    /// Single changes: to the object's status, to the CombinedStatus (seconds).
    singleton_latency: Vec<f64>,
    singleton_usage: Usage,
    combined_latency: Vec<f64>,
    combined_usage: Usage,
    /// Bursts: writes done, all shown (seconds from the burst's start), events.
    /// The returned WorkStatuses' burst, then the collected ones'.
    bursts: Vec<Burst>,
}

async fn bench(sizes: Sizes, controller: &StatusController) -> Result<Results> {
    let step = |what: &str| eprintln!("[{BENCH}] {}: {what}", controller.name());
    step("starting servers");
    let w = World::start().await;
    control_plane::install_crds(&w.wds, &[objects::widget_crd()]).await?;
    let wecs: Vec<Value> = (0..sizes.wecs)
        .map(|i| objects::managed_cluster(&format!("wec-{i:03}"), &format!("r{}", i % REGIONS)))
        .collect();
    live::create_all(BENCH, &w.its, &res::managed_clusters(), wecs, "WECs").await?;
    let wec_namespaces = std::iter::once(SINGLETON_WEC)
        .chain(COLLECTED_WECS)
        .map(|wec| objects::namespace(wec, json!({})))
        .collect();
    live::create_all(
        BENCH,
        &w.its,
        &res::namespaces(),
        wec_namespaces,
        "WEC namespaces",
    )
    .await?;
    let namespaces = (0..NAMESPACES)
        .map(|j| objects::namespace(&format!("ns-{j:02}"), json!({})))
        .collect();
    live::create_all(BENCH, &w.wds, &res::namespaces(), namespaces, "namespaces").await?;
    let widgets = (0..sizes.objects).map(|k| widget(k, sizes)).collect();
    live::create_all(BENCH, &w.wds, &res::widgets(), widgets, "Widgets").await?;
    live::create_all(
        BENCH,
        &w.wds,
        &res::status_collectors(),
        collectors(),
        "StatusCollectors",
    )
    .await?;
    live::create_all(
        BENCH,
        &w.wds,
        &res::binding_policies(),
        policies(),
        "policies",
    )
    .await?;

    let statuses: Latest = Arc::default();
    let combined: Latest = Arc::default();
    let watches = [
        follow(&w.wds, res::widgets(), statuses.clone(), status_view).await?,
        follow(
            &w.wds,
            res::combined_statuses(),
            combined.clone(),
            combined_view,
        )
        .await?,
    ];

    let listen = format!("127.0.0.1:{}", free_port());
    // (Bindery's start builds its binary first, if need be: the clock starts after.)
    let mut process = controller.start(BENCH, &w, &listen, WDS_NAME)?;
    let started = Instant::now();
    let mut meter = Meter::new(process.pid());
    controller.ready(&listen).await?;
    step("waiting for the status policies' Bindings");
    let singleton_pairs = binding_pairs(&w.wds, "singleton", sizes.returned).await?;
    let combined_pairs = binding_pairs(&w.wds, "combined", 2 * sizes.collected).await?;
    let mut r = Results {
        bindings: started.elapsed().as_secs_f64(),
        ..Results::default()
    };
    step(&format!(
        "Bindings in {:.1} s; writing {} WorkStatuses",
        r.bindings,
        singleton_pairs.len() + combined_pairs.len()
    ));
    let writing = Instant::now();
    let all_pairs: Vec<Pair> = singleton_pairs
        .iter()
        .chain(&combined_pairs)
        .cloned()
        .collect();
    write_all(&w.its, &all_pairs, 0, true).await?;
    r.ws_written = writing.elapsed().as_secs_f64();
    step(&format!(
        "WorkStatuses written in {:.1} s; settling",
        r.ws_written
    ));

    // What an object's status and CombinedStatus show at a generation.
    let status_at = |pairs: &[Pair], generation: usize| -> Vec<Want> {
        pairs
            .iter()
            .map(|(wec, ns, name, _)| {
                let want = reported(wec, generation);
                let f: Check = Box::new(move |v| *v == want);
                (key(ns, name), f)
            })
            .collect()
    };
    let combined_at = |generation: usize| -> Vec<Want> {
        (sizes.returned..sizes.returned + sizes.collected)
            .map(|k| {
                let (ns, name) = object_name(k);
                let markers: Vec<String> = COLLECTED_WECS
                    .iter()
                    .map(|wec| format!("{wec}@{generation}"))
                    .collect();
                let f: Check = Box::new(move |v| shows(v, &markers));
                (key(&ns, &name), f)
            })
            .collect()
    };
    let long = Duration::from_secs(900);
    let poll = Duration::from_millis(100);
    let t = await_all(
        &statuses,
        &status_at(&singleton_pairs, 0),
        poll,
        long,
        "initial statuses",
    )
    .await?;
    r.settle_status = t.saturating_duration_since(writing).as_secs_f64();
    let t = await_all(
        &combined,
        &combined_at(0),
        poll,
        long,
        "initial CombinedStatuses",
    )
    .await?;
    r.settle_combined = t.saturating_duration_since(writing).as_secs_f64();
    r.settle_usage = meter.lap();
    step(&format!(
        "settled: statuses {:.1} s, CombinedStatuses {:.1} s",
        r.settle_status, r.settle_combined
    ));

    // Single changes, one at a time.
    let fine = Duration::from_millis(2);
    let single = Duration::from_secs(120);
    for i in 0..sizes.changes {
        let pair = &singleton_pairs[i % singleton_pairs.len()];
        let generation = 1000 + i;
        let t0 = Instant::now();
        write_all(&w.its, std::slice::from_ref(pair), generation, false).await?;
        let t = await_all(
            &statuses,
            &status_at(std::slice::from_ref(pair), generation),
            fine,
            single,
            "a singleton change",
        )
        .await?;
        r.singleton_latency
            .push(t.saturating_duration_since(t0).as_secs_f64());
    }
    r.singleton_usage = meter.lap();
    step(&format!(
        "singleton changes: p50 {}",
        fmt::seconds(stats::median(&r.singleton_latency))
    ));
    for i in 0..sizes.changes {
        let k = sizes.returned + i % sizes.collected;
        let (ns, name) = object_name(k);
        let pair: Pair = (
            COLLECTED_WECS[0].to_string(),
            ns.clone(),
            name.clone(),
            "combined",
        );
        let generation = 1000 + i;
        let t0 = Instant::now();
        write_all(&w.its, std::slice::from_ref(&pair), generation, false).await?;
        let marker = vec![format!("{}@{generation}", COLLECTED_WECS[0])];
        let f: Check = Box::new(move |v| shows(v, &marker));
        let t = await_all(
            &combined,
            &[(key(&ns, &name), f)],
            fine,
            single,
            "a collected change",
        )
        .await?;
        r.combined_latency
            .push(t.saturating_duration_since(t0).as_secs_f64());
    }
    r.combined_usage = meter.lap();
    step(&format!(
        "collected changes: p50 {}",
        fmt::seconds(stats::median(&r.combined_latency))
    ));

    // Bursts: every returned WorkStatus, then every collected one, to generation 1.
    let bursts = [
        (
            &statuses,
            &singleton_pairs,
            status_at(&singleton_pairs, 1),
            "returned",
        ),
        (&combined, &combined_pairs, combined_at(1), "collected"),
    ];
    for (latest, pairs, want, what) in bursts {
        let t0 = Instant::now();
        write_all(&w.its, pairs, 1, false).await?;
        let written = t0.elapsed().as_secs_f64();
        let t = await_all(latest, &want, poll, long, what).await?;
        let burst = Burst {
            written,
            shown: t.saturating_duration_since(t0).as_secs_f64(),
            events: pairs.len(),
            usage: meter.lap(),
        };
        step(&format!("{what} burst: {:.1} s", burst.shown));
        r.bursts.push(burst);
    }

    for watch in watches {
        watch.abort();
    }
    process.stop()?;
    Ok(r)
}

fn main() -> Result<()> {
    let mut sizes = Sizes {
        objects: 10_000,
        wecs: 100,
        returned: 1_000,
        collected: 1_000,
        changes: 50,
    };
    let mut kubestellar = None;
    let mut no_bindery = false;
    let mut args = cli::args();
    while let Some(arg) = args.next() {
        let mut value = || args.next().with_context(|| format!("{arg} N"));
        match arg.as_str() {
            "--objects" => sizes.objects = cli::count(&value()?)?,
            "--wecs" => sizes.wecs = cli::count(&value()?)?,
            "--returned" => sizes.returned = cli::count(&value()?)?,
            "--collected" => sizes.collected = cli::count(&value()?)?,
            "--changes" => sizes.changes = cli::count(&value()?)?,
            "--kubestellar" => kubestellar = Some(value()?),
            // KubeStellar's alone (to look into it).
            "--no-bindery" => no_bindery = true,
            other => bail!("unknown argument {other:?}"),
        }
    }
    if sizes.returned + sizes.collected > sizes.objects || sizes.wecs < 3 || sizes.changes == 0 {
        bail!("need returned + collected <= objects, at least 3 WECs and 1 change");
    }
    let mut controllers = StatusController::all(kubestellar.as_deref())?;
    if no_bindery {
        controllers.remove(0);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let mut all = Vec::new();
    for controller in &controllers {
        all.push(runtime.block_on(bench(sizes, controller))?);
    }
    print(sizes, &controllers, &all, kubestellar.is_some());
    Ok(())
}

fn print(sizes: Sizes, controllers: &[StatusController], all: &[Results], kubestellar: bool) {
    let Sizes {
        objects,
        wecs,
        returned,
        collected,
        changes,
    } = sizes;
    println!(
        "## Status return at scale, side by side: {objects} objects, {wecs} WECs, {returned} returned, {collected} collected\n"
    );
    println!(
        "`cargo bench -p bindery-bench --bench live_status_scale -- --objects {objects} --wecs {wecs} --returned {returned} --collected {collected} --changes {changes}{}`; one controller at a time, each on fresh servers. Bindery's binary: `{}`{}.\n",
        if kubestellar {
            " --kubestellar KS_BINARY"
        } else {
            ""
        },
        bindery_tests::bindery_bin().display(),
        if std::env::var_os("BINDERY_BIN").is_some() {
            " (`BINDERY_BIN`)"
        } else {
            " (built by the bench: dev profile)"
        }
    );
    let mut header = String::from("| |");
    let mut rule = String::from("| --- |");
    for c in controllers {
        header.push_str(&format!(" {} |", c.name()));
        rule.push_str(" --- |");
    }
    if all.len() == 2 {
        // Above 1: Bindery took less (for a rate: Bindery / KubeStellar, above 1: more).
        header.push_str(" KubeStellar / Bindery |");
        rule.push_str(" --- |");
    }
    println!("{header}\n{rule}");
    // `higher`: a rate, better higher (its ratio the other way round).
    let row_of =
        |what: &str, f: &dyn Fn(&Results) -> f64, show: &dyn Fn(f64) -> String, higher: bool| {
            let mut line = format!("| {what} |");
            for r in all {
                line.push_str(&format!(" {} |", show(f(r))));
            }
            if let [a, b] = all {
                let (a, b) = if higher { (f(b), f(a)) } else { (f(a), f(b)) };
                line.push_str(&format!(" {:.1}× |", b / a));
            }
            println!("{line}");
        };
    let row = |what: &str, f: &dyn Fn(&Results) -> f64, show: &dyn Fn(f64) -> String| {
        row_of(what, f, show, false)
    };
    let rate = &|v: f64| format!("{v:.0}/s");
    let s = &|v: f64| fmt::seconds(v);
    let cpu = &|v: f64| format!("{v:.2} s");
    let ms = &|v: f64| format!("{:.3} ms", v * 1e3);
    let mib = &|v: f64| format!("{v:.0} MiB");
    let q = |l: &[f64], p: f64| stats::quantile(l, p);
    let n_ws = returned + 2 * collected;
    row(
        "controller start to both status policies' Bindings complete",
        &|r| r.bindings,
        s,
    );
    row(
        &format!("stand-in writes {n_ws} WorkStatuses (create + status)"),
        &|r| r.ws_written,
        s,
    );
    row(
        &format!("first WorkStatus write to all {returned} object statuses"),
        &|r| r.settle_status,
        s,
    );
    row(
        &format!("first WorkStatus write to all {collected} CombinedStatuses"),
        &|r| r.settle_combined,
        s,
    );
    row(
        "CPU, controller start to settled",
        &|r| r.settle_usage.cpu,
        cpu,
    );
    row(
        &format!("single change to object status, p50 ({changes} changes)"),
        &|r| q(&r.singleton_latency, 0.5),
        s,
    );
    row(
        "single change to object status, p99",
        &|r| q(&r.singleton_latency, 0.99),
        s,
    );
    row(
        &format!("single change to CombinedStatus, p50 ({changes} changes)"),
        &|r| q(&r.combined_latency, 0.5),
        s,
    );
    row(
        "single change to CombinedStatus, p99",
        &|r| q(&r.combined_latency, 0.99),
        s,
    );
    row(
        "CPU per single change (object status)",
        &|r| r.singleton_usage.cpu / changes as f64,
        ms,
    );
    row(
        "CPU per single change (CombinedStatus)",
        &|r| r.combined_usage.cpu / changes as f64,
        ms,
    );
    let bursts = [
        (format!("{returned} returned"), "object statuses"),
        (format!("{} collected", 2 * collected), "CombinedStatuses"),
    ];
    for (b, (what, shown)) in bursts.iter().enumerate() {
        fn burst(r: &Results, b: usize) -> &Burst {
            &r.bursts[b]
        }
        row(
            &format!("burst of {what} WorkStatus changes: the stand-in's writes"),
            &|r| burst(r, b).written,
            s,
        );
        row(
            &format!("burst: to all {shown} shown"),
            &|r| burst(r, b).shown,
            s,
        );
        row_of(
            "burst: WorkStatus events/s absorbed",
            &|r| burst(r, b).events as f64 / burst(r, b).shown,
            rate,
            true,
        );
        row("burst: CPU", &|r| burst(r, b).usage.cpu, cpu);
        row(
            "burst: CPU per WorkStatus event",
            &|r| burst(r, b).usage.cpu / burst(r, b).events as f64,
            ms,
        );
    }
    row(
        "peak RSS (at the end)",
        &|r| r.bursts[1].usage.peak_rss_kb as f64 / 1024.0,
        mib,
    );
    println!();
}

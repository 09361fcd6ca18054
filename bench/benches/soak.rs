//! Soak: does a long run over a constant state keep a constant memory?
//!
//! Loads a deterministic state (fixed seed): 100 Namespaces, 10,000 workload objects
//! (configmaps, secrets, deployments, services in those namespaces, labelled `app`
//! (200 values), `tier` and sometimes `team`), 100 WECs and 50 BindingPolicies (object
//! selectors, `resources`, `namespaces`, `namespaceSelectors`, `objectNames` and a few
//! broad ones, cluster selectors with `matchLabels`, `In`, `NotIn` and `Exists`). Then it
//! applies events in epochs of `--epoch` events (default 100) and prints, at every
//! million events (every tenth of a shorter run), the events/s since the last line, the engine's interned strings, and
//! `VmRSS` (`/proc/self/status`). Modes:
//!
//! - `status` (default): status-only updates: a random object gets a new
//!   resourceVersion, labels unchanged (the bulk of a busy WDS's watch traffic);
//! - `churn`: a random object is deleted and a new one created in its place under a
//!   new name (`<prefix>-<serial>`) with a new `pod-template-hash`-like label value, as
//!   ReplicaSets and their Pods do; the state keeps its size and shape, but every event
//!   brings new strings.
//!
//! At the end the engine is checked against the oracle (exit status 1 if they
//! disagree), and it prints the RSS growth from the first million to the last, per event.
//!
//! ```text
//! cargo bench -p bindery-bench --bench soak                       # 10M status-only updates
//! cargo bench -p bindery-bench --bench soak -- --short            # 1M (quick check)
//! cargo bench -p bindery-bench --bench soak -- --mode churn --events 5000000 --epoch 100
//! ```
//!
//! `SOAK_EVENTS=N` sets the number of events too (`--events` wins).

use std::collections::BTreeMap;
use std::time::Instant;

use bindery_bench::changes::{self, Object, labels};
use bindery_bench::{Rng, cli, memory};
use bindery_engine::{Change, Engine, Oracle, WorkloadRef, WorkloadState};
use serde_json::{Value, json};

const SEED: u64 = 0x50AC_B1D0_2026;
const NAMESPACES: usize = 100;
const OBJECTS: usize = 10_000;
const WECS: usize = 100;
const APPS: usize = 200;
const TEAMS: usize = 20;
const REGIONS: usize = 10;
const TIERS: &[&str] = &["frontend", "backend", "cache", "db"];
/// (group, version, resource, name prefix)
const RESOURCES: &[(&str, &str, &str, &str)] = &[
    ("", "v1", "configmaps", "cm"),
    ("", "v1", "secrets", "secret"),
    ("apps", "v1", "deployments", "deploy"),
    ("", "v1", "services", "svc"),
];

/// The state's workload objects (Namespaces aside) and what the next ones get.
struct World {
    objects: Vec<Object>,
    resource_version: u64,
    serial: u64,
    rng: Rng,
}

impl World {
    /// The empty world, its generator at [`SEED`]: [`load`] then gives the same state.
    fn new() -> World {
        World {
            objects: Vec::new(),
            resource_version: 0,
            serial: 0,
            rng: Rng::new(SEED),
        }
    }

    fn next_rv(&mut self) -> String {
        self.resource_version += 1;
        self.resource_version.to_string()
    }

    fn new_object(&mut self, resource: usize, namespace: usize) -> Object {
        let (group, version, resource, prefix) = RESOURCES[resource];
        self.serial += 1;
        let app = self.rng.below(APPS);
        let mut labels = vec![
            ("app", format!("app-{app}")),
            ("tier", TIERS[self.rng.below(TIERS.len())].to_string()),
            (
                "pod-template-hash",
                format!("{:x}", self.serial * 2654435761),
            ),
        ];
        if self.rng.below(2) == 0 {
            labels.push(("team", format!("team-{}", self.rng.below(TEAMS))));
        }
        Object {
            object: WorkloadRef {
                group: group.into(),
                version: version.into(),
                resource: resource.into(),
                namespace: format!("ns-{namespace:03}"),
                name: format!("{prefix}-{}", self.serial),
            },
            state: WorkloadState {
                labels: changes::labels(&labels),
                resource_version: self.next_rv(),
                ..Default::default()
            },
        }
    }
}

fn policies() -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for k in 0..20 {
        out.push((
            format!("app-{k:02}"),
            json!({
                "clusterSelectors": [{"matchLabels": {"region": format!("region-{}", k % REGIONS)}}],
                "downsync": [{"objectSelectors": [{"matchLabels": {"app": format!("app-{}", 10 * k)}}]}]
            }),
        ));
    }
    for t in 0..10 {
        out.push((
            format!("team-{t}"),
            json!({
                "clusterSelectors": [{"matchLabels": {"location-group": "edge", "env": "prod"}}],
                "downsync": [{
                    "resources": ["configmaps", "secrets"],
                    "objectSelectors": [{"matchLabels": {"team": format!("team-{t}")}}]
                }]
            }),
        ));
    }
    for j in 0..6 {
        out.push((
            format!("nslist-{j}"),
            json!({
                "clusterSelectors": [{"matchExpressions": [
                    {"key": "region", "operator": "In", "values": [format!("region-{j}"), format!("region-{}", j + 4)]}
                ]}],
                "downsync": [{"namespaces": [format!("ns-{:03}", 3 * j), format!("ns-{:03}", 3 * j + 1)], "resources": ["deployments", "services"]}]
            }),
        ));
    }
    for t in 0..6 {
        out.push((
            format!("nssel-{t}"),
            json!({
                "clusterSelectors": [{"matchExpressions": [{"key": "env", "operator": "NotIn", "values": ["prod"]}]}],
                "downsync": [{
                    "apiGroup": "apps",
                    "namespaceSelectors": [{"matchLabels": {"team": format!("team-{t}")}}]
                }]
            }),
        ));
    }
    for j in 0..5 {
        out.push((
            format!("names-{j}"),
            json!({
                "clusterSelectors": [{"matchLabels": {"location-group": "core"}}],
                "downsync": [{"resources": ["namespaces"], "objectNames": [format!("ns-{:03}", j), format!("ns-{:03}", j + 50)]}]
            }),
        ));
    }
    out.push((
        "broad-configmaps".into(),
        json!({
            "clusterSelectors": [{"matchLabels": {"location-group": "edge"}}],
            "downsync": [{"resources": ["configmaps"], "createOnly": true}]
        }),
    ));
    out.push((
        "broad-frontend".into(),
        json!({
            "clusterSelectors": [{"matchExpressions": [{"key": "location-group", "operator": "Exists"}]}],
            "downsync": [{"objectSelectors": [{"matchLabels": {"tier": "frontend"}}], "statusCollectors": ["sc"]}]
        }),
    ));
    out.push((
        "broad-prod-namespaces".into(),
        json!({
            "clusterSelectors": [{"matchLabels": {"env": "prod"}}],
            "downsync": [{"namespaceSelectors": [{"matchLabels": {"env": "prod"}}], "wantMultiWECReportedState": true}]
        }),
    ));
    assert_eq!(out.len(), 50);
    out
}

fn load(world: &mut World) -> Vec<Change> {
    let mut out = Vec::new();
    for i in 0..NAMESPACES {
        let namespace_labels = labels(&[
            ("team", format!("team-{}", i % TEAMS)),
            ("env", ["dev", "staging", "prod"][i % 3].to_string()),
        ]);
        let namespace = changes::namespace(format!("ns-{i:03}"), namespace_labels, world.next_rv());
        out.push(namespace.change());
    }
    for i in 0..OBJECTS {
        let namespace = world.rng.below(NAMESPACES);
        let o = world.new_object(i % RESOURCES.len(), namespace);
        out.push(o.change());
        world.objects.push(o);
    }
    for i in 0..WECS {
        out.push(Change::Wec {
            name: format!("wec-{i:03}"),
            labels: Some(labels(&[
                (
                    "location-group",
                    if i % 2 == 0 { "edge" } else { "core" }.to_string(),
                ),
                ("region", format!("region-{}", i % REGIONS)),
                ("env", ["dev", "staging", "prod"][i % 3].to_string()),
            ])),
        });
    }
    for (name, spec) in policies() {
        out.push(changes::policy(&name, 1, &spec));
    }
    out
}

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Status,
    Churn,
}

/// The changes of one event.
fn event(world: &mut World, mode: Mode, out: &mut Vec<Change>) {
    let i = world.rng.below(world.objects.len());
    match mode {
        Mode::Status => {
            let rv = world.next_rv();
            world.objects[i].state.resource_version = rv;
            out.push(world.objects[i].change());
        }
        Mode::Churn => {
            out.push(world.objects[i].deletion());
            let old = &world.objects[i].object;
            let resource = RESOURCES
                .iter()
                .position(|r| r.2 == old.resource)
                .expect("known resource");
            let namespace = old.namespace["ns-".len()..].parse().expect("ns number");
            let o = world.new_object(resource, namespace);
            out.push(o.change());
            world.objects[i] = o;
        }
    }
}

fn main() {
    let mut events = std::env::var("SOAK_EVENTS")
        .ok()
        .and_then(|v| cli::count(&v).ok())
        .unwrap_or(10_000_000) as u64;
    let mut epoch: u64 = 100;
    let mut mode = Mode::Status;
    let mut check = true;
    let mut args = cli::args();
    while let Some(arg) = args.next() {
        let mut value = || args.next().expect("a value");
        let mut count = |what| cli::count(&value()).expect(what) as u64;
        match arg.as_str() {
            "--events" => events = count("--events N"),
            "--epoch" => epoch = count("--epoch N").max(1),
            "--short" => events = 1_000_000,
            "--mode" => {
                mode = match value().as_str() {
                    "status" => Mode::Status,
                    "churn" => Mode::Churn,
                    other => panic!("unknown mode {other:?} (status, churn)"),
                }
            }
            "--no-check" => check = false,
            other => eprintln!("ignoring unknown argument {other:?}"),
        }
    }
    let mode_name = match mode {
        Mode::Status => "status-only updates",
        Mode::Churn => "delete + create under a new name",
    };
    eprintln!(
        "soak: {events} events ({mode_name}) in epochs of {epoch}{}",
        if cfg!(debug_assertions) {
            " (debug build: timings are not representative)"
        } else {
            ""
        }
    );

    let mut world = World::new();
    let mut engine = Engine::new();
    let start = Instant::now();
    for c in load(&mut world) {
        engine.apply(&c);
    }
    engine.advance();
    let sizes = engine.sizes();
    let rss_loaded = memory::rss_kb().unwrap_or(0);
    println!(
        "loaded in {:.2?}: {} objects, {} WECs, {} policies, {} workload entries, {} destinations, {} interned strings; VmRSS {:.1} MiB\n",
        start.elapsed(),
        sizes.objects,
        sizes.wecs,
        sizes.policies,
        sizes.workload_entries,
        sizes.destinations,
        sizes.interned,
        rss_loaded as f64 / 1024.0
    );
    println!("| events | epochs | events/s (since the last line) | interned strings | VmRSS |");
    println!("|---|---|---|---|---|");
    println!(
        "| 0 | {} | | {} | {:.1} MiB |",
        engine.epoch(),
        sizes.interned,
        rss_loaded as f64 / 1024.0
    );

    // Every million events (every tenth of the run when shorter than 10 million).
    let report_every = 1_000_000u64.min((events / 10).max(1));
    let mut batch = Vec::new();
    let mut done = 0u64;
    let mut mark = Instant::now();
    let mut mark_done = 0u64;
    let mut rss_marks: Vec<(u64, u64)> = Vec::new();
    let run_start = Instant::now();
    while done < events {
        let n = epoch.min(events - done);
        for _ in 0..n {
            event(&mut world, mode, &mut batch);
        }
        for c in batch.drain(..) {
            engine.apply(&c);
        }
        engine.advance();
        let before = done;
        done += n;
        if done / report_every != before / report_every || done == events {
            let rate = (done - mark_done) as f64 / mark.elapsed().as_secs_f64();
            mark = Instant::now();
            mark_done = done;
            let rss = memory::rss_kb().unwrap_or(0);
            rss_marks.push((done, rss));
            println!(
                "| {done} | {} | {rate:.0} | {} | {:.1} MiB |",
                engine.epoch(),
                engine.sizes().interned,
                rss as f64 / 1024.0
            );
        }
    }
    let total = run_start.elapsed();
    println!(
        "\n{events} events in {:.1} s: {:.0} events/s overall",
        total.as_secs_f64(),
        events as f64 / total.as_secs_f64()
    );
    if let (Some(&(e0, r0)), Some(&(e1, r1))) = (rss_marks.first(), rss_marks.last())
        && e1 > e0
    {
        println!(
            "VmRSS from {e0} to {e1} events: {:+.1} MiB ({:+.2} bytes/event); from load to the end: {:+.1} MiB",
            (r1 as f64 - r0 as f64) / 1024.0,
            (r1 as f64 - r0 as f64) * 1024.0 / (e1 - e0) as f64,
            (r1 as f64 - rss_loaded as f64) / 1024.0,
        );
    }
    println!(
        "VmHWM (peak RSS): {:.1} MiB",
        memory::peak_rss_kb().unwrap_or(0) as f64 / 1024.0
    );

    if check {
        let mut oracle = Oracle::default();
        let mut final_state = Vec::new();
        // The oracle gets the final state directly (the state is what matters).
        for c in load(&mut World::new()) {
            if !matches!(c, Change::Workload { ref object, .. } if object.resource != "namespaces")
            {
                final_state.push(c);
            }
        }
        final_state.extend(world.objects.iter().map(Object::change));
        for c in &final_state {
            oracle.apply(c);
        }
        let json = |bs: Vec<bindery_engine::Binding>| {
            bs.iter().map(|b| b.to_json()).collect::<Vec<Value>>()
        };
        let same = json(engine.bindings()) == json(oracle.bindings())
            && engine.statuses() == oracle.statuses();
        let by_name: BTreeMap<_, _> = engine.statuses().into_iter().collect();
        println!(
            "engine = oracle at the end: {} ({} Bindings)",
            if same { "yes" } else { "NO" },
            by_name.len()
        );
        if !same {
            std::process::exit(1);
        }
    }
}

//! Incremental cost benchmark: is the work the engine does per change proportional to
//! what the change affects, rather than to the number of workload objects N?
//!
//! For each N (10,000 and 100,000 by default) it generates a deterministic synthetic
//! state (fixed seed, SplitMix64 PRNG):
//! - 100 Namespaces (labelled `team`, `env`), which are workload objects too;
//! - N workload objects: configmaps, secrets, services, `apps` deployments,
//!   `example.com` widgets (a CRD) in those namespaces, and cluster-scoped `rbac`
//!   clusterroles; each with 2-4 labels (`app` = app-0..app-199, `tier`, and sometimes
//!   `team`, `env`);
//! - 100 WECs labelled `location-group`, `region`, `env`;
//! - 53 BindingPolicies mixing `matchLabels`/`matchExpressions` object selectors,
//!   `resources`, `namespaces`, `namespaceSelectors`, `apiGroup` and `objectNames`,
//!   with modulations; most select well under 5% of the objects, three are broad
//!   (25-35% each).
//!
//! It loads everything in one epoch (timing it and reporting [`Engine::sizes`] and the
//! process's peak RSS), feeds the same changes to the [`Oracle`], checks that both agree,
//! and then times `engine.apply(..)` + `engine.advance()` for single changes, each
//! repeated (default 20 times, after one untimed forth-and-back pair):
//! - (0) no change at all, for the fixed cost of closing an epoch;
//! - (a) one object relabel (its `app` label moves to another value, which enters and
//!   leaves app-selecting Bindings; its resourceVersion changes too);
//! - (b) one object status-only update (same labels, new resourceVersion);
//! - (c) one WEC relabel (its `region` changes);
//! - (d) one policy edit (the `app` value of one policy's object selector changes);
//! - (e) one Namespace relabel (its `team` changes, which `namespaceSelectors` read);
//! - (f) one edit of the narrow clause (secrets with one `app` value) of a policy whose
//!   other clause is broad (every configmap): only the narrow clause's objects should
//!   cost anything.
//!
//! Changes go forth on even repetitions and back on odd ones, so the state stays
//! the same size throughout. For each, it reports the median and p90 time and the
//! median number of Binding entries changed (destinations and workload entries,
//! added plus removed), and compares with the time of a full oracle recompute
//! (`oracle.bindings()`, median of a few runs) at the same state. At the end the
//! engine is checked against the oracle again. It also times explain questions on the
//! loaded engine: about one object (`Engine::explain`, which copies only what the
//! question needs, against a full `Engine::to_oracle` copy) and a policy overview.
//!
//! Run (release, as benches are):
//!
//! ```text
//! cargo bench -p bindery-bench --bench incremental
//! cargo bench -p bindery-bench --bench incremental -- --objects 10000,100000 --repeats 20 --oracle-runs 3
//! ```
//!
//! Progress goes to stderr; the results (Markdown tables) go to stdout. The process
//! exits with status 1 if the engine and the oracle disagree.

use std::time::{Duration, Instant};

use bindery_bench::changes::{self, Object, entries_changed, labels};
use bindery_bench::stats::{median, quantile};
use bindery_bench::{Rng, cli, fmt, memory};
use bindery_engine::engine::Sizes;
use bindery_engine::{
    Change, Engine, LabelMap, ObjectKey, Oracle, Query, WorkloadRef, WorkloadState,
};
use serde_json::{Value, json};

/// Seed of the generator: the same N always gives the same state and changes.
const SEED: u64 = 0x5EED_B1D0_2024;
const NAMESPACES: usize = 100;
const WECS: usize = 100;
const APPS: usize = 200;
const TEAMS: usize = 20;
const REGIONS: usize = 10;
const TIERS: &[&str] = &["frontend", "backend", "cache", "db"];
const ENVS: &[&str] = &["dev", "staging", "prod"];

/// A workload resource of the synthetic state.
struct Resource {
    group: &'static str,
    version: &'static str,
    resource: &'static str,
    namespaced: bool,
    /// Relative frequency among the N objects.
    weight: u64,
    /// Object name prefix.
    prefix: &'static str,
}

const RESOURCES: &[Resource] = &[
    Resource::new("", "v1", "configmaps", true, 30, "cm"),
    Resource::new("", "v1", "secrets", true, 20, "secret"),
    Resource::new("", "v1", "services", true, 15, "svc"),
    Resource::new("apps", "v1", "deployments", true, 17, "deploy"),
    Resource::new("example.com", "v1", "widgets", true, 10, "widget"),
    Resource::new(
        "rbac.authorization.k8s.io",
        "v1",
        "clusterroles",
        false,
        8,
        "clusterrole",
    ),
];

impl Resource {
    const fn new(
        group: &'static str,
        version: &'static str,
        resource: &'static str,
        namespaced: bool,
        weight: u64,
        prefix: &'static str,
    ) -> Resource {
        Resource {
            group,
            version,
            resource,
            namespaced,
            weight,
            prefix,
        }
    }
}

// ---------------------------------------------------------------------------------
// Command line

struct Config {
    objects: Vec<usize>,
    repeats: usize,
    oracle_runs: usize,
}

const USAGE: &str = "usage: incremental [--objects N[,N...]] [--repeats R] [--oracle-runs K]";

fn parse_count(s: &str) -> usize {
    cli::count(s).unwrap_or_else(|e| {
        eprintln!("{e}\n{USAGE}");
        std::process::exit(2);
    })
}

/// Reads the arguments after `--`. Anything unknown is ignored (with a warning), so
/// `cargo bench -p bindery-bench -- ARGS` still runs the other benches.
fn parse_args() -> Config {
    let mut config = Config {
        objects: vec![10_000, 100_000],
        repeats: 20,
        oracle_runs: 3,
    };
    let mut args = cli::args();
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) => (f.to_string(), Some(v.to_string())),
            None => (arg.clone(), None),
        };
        let mut value = || {
            inline.clone().or_else(|| args.next()).unwrap_or_else(|| {
                eprintln!("{flag} needs a value\n{USAGE}");
                std::process::exit(2);
            })
        };
        match flag.as_str() {
            "--objects" => config.objects = value().split(',').map(parse_count).collect(),
            "--repeats" => config.repeats = parse_count(&value()).max(2),
            "--oracle-runs" => config.oracle_runs = parse_count(&value()).max(1),
            "-h" | "--help" => {
                eprintln!("{USAGE}");
                std::process::exit(0);
            }
            other => eprintln!("ignoring unknown argument {other:?}"),
        }
    }
    // Forth-and-back pairs keep the state stable: use an even count.
    config.repeats += config.repeats % 2;
    // Ascending, so the process-wide peak RSS read after each load is that load's.
    config.objects.sort_unstable();
    config.objects.dedup();
    config
}

// ---------------------------------------------------------------------------------
// Deterministic generator

/// A BindingPolicy of the synthetic state.
struct Policy {
    name: String,
    generation: i64,
    spec: Value,
}

impl Policy {
    fn change(&self) -> Change {
        changes::policy(&self.name, self.generation, &self.spec)
    }
}

/// The whole synthetic state, kept so that changes can be derived from it.
struct World {
    namespaces: Vec<Object>,
    objects: Vec<Object>,
    wecs: Vec<(String, LabelMap)>,
    policies: Vec<Policy>,
    /// Last resourceVersion handed out.
    resource_version: u64,
}

fn namespace_name(i: usize) -> String {
    format!("ns-{i:03}")
}

fn app(i: usize) -> String {
    format!("app-{i}")
}

fn region(i: usize) -> String {
    format!("region-{i}")
}

/// The app-selecting policy `app-kk`: objects labelled `app=app-<app>`, to WECs in one
/// region. Its `app` value is what the policy edit changes.
fn app_policy_spec(app_value: usize, region_value: usize) -> Value {
    json!({
        "clusterSelectors": [{"matchLabels": {"region": region(region_value)}}],
        "downsync": [{"objectSelectors": [{"matchLabels": {"app": app(app_value)}}]}]
    })
}

/// A broad policy (every configmap, to edge WECs) that also has a narrow clause (the
/// secrets labelled `app=app-<app>`): the extra policy edit changes that narrow clause
/// only, so the broad clause must not be re-evaluated.
fn broad_policy_spec(app_value: usize) -> Value {
    json!({
        "clusterSelectors": [{"matchLabels": {"location-group": "edge"}}],
        "downsync": [
            {"resources": ["configmaps"]},
            {
                "resources": ["secrets"],
                "objectSelectors": [{"matchLabels": {"app": app(app_value)}}],
                "createOnly": true
            }
        ]
    })
}

const BROAD_POLICY: &str = "broad-configmaps";
/// The `app` value the narrow clause of [`BROAD_POLICY`] selects at load.
const BROAD_POLICY_APP: usize = 42;

/// Number of `app-kk` policies; policy `app-kk` selects `app-(10*kk)`.
const APP_POLICIES: usize = 20;

/// The app label value an object relabel moves to: the next value some `app-kk` policy
/// selects, so the object enters (and, if it was in one, leaves) an app Binding.
fn next_selected_app(current: usize) -> usize {
    ((current / 10 + 1) * 10) % APPS
}

impl World {
    fn generate(n: usize) -> World {
        let mut rng = Rng::new(SEED);
        let mut resource_version = 0;
        let mut next_rv = || {
            resource_version += 1;
            resource_version.to_string()
        };
        let namespaces: Vec<Object> = (0..NAMESPACES)
            .map(|i| {
                changes::namespace(
                    namespace_name(i),
                    labels(&[
                        ("team", format!("team-{}", i % TEAMS)),
                        ("env", ENVS[i % ENVS.len()].to_string()),
                    ]),
                    next_rv(),
                )
            })
            .collect();
        let total_weight: u64 = RESOURCES.iter().map(|r| r.weight).sum();
        let objects: Vec<Object> = (0..n)
            .map(|i| {
                let mut pick = rng.next_u64() % total_weight;
                let r = RESOURCES
                    .iter()
                    .find(|r| {
                        if pick < r.weight {
                            true
                        } else {
                            pick -= r.weight;
                            false
                        }
                    })
                    .expect("weights cover the range");
                let mut l = vec![
                    ("app", app(rng.below(APPS))),
                    ("tier", TIERS[rng.below(TIERS.len())].to_string()),
                ];
                if rng.chance(50) {
                    l.push(("team", format!("team-{}", rng.below(TEAMS))));
                }
                if rng.chance(50) {
                    l.push(("env", ENVS[rng.below(ENVS.len())].to_string()));
                }
                Object {
                    object: WorkloadRef {
                        group: r.group.into(),
                        version: r.version.into(),
                        resource: r.resource.into(),
                        namespace: if r.namespaced {
                            namespace_name(rng.below(NAMESPACES))
                        } else {
                            String::new()
                        },
                        name: format!("{}-{i}", r.prefix),
                    },
                    state: WorkloadState {
                        labels: labels(&l),
                        resource_version: next_rv(),
                        ..Default::default()
                    },
                }
            })
            .collect();
        let wecs = (0..WECS)
            .map(|i| {
                let group = if i % 5 == 0 { "core" } else { "edge" };
                (
                    format!("wec-{i:03}"),
                    labels(&[
                        ("location-group", group.to_string()),
                        ("region", region(i % REGIONS)),
                        ("env", ENVS[i % ENVS.len()].to_string()),
                    ]),
                )
            })
            .collect();
        let clusterroles: Vec<String> = objects
            .iter()
            .filter(|o| o.object.resource == "clusterroles")
            .map(|o| o.object.name.clone())
            .collect();
        let policies = generate_policies(&mut rng, &clusterroles)
            .into_iter()
            .map(|(name, spec)| Policy {
                name,
                generation: 1,
                spec,
            })
            .collect();
        World {
            namespaces,
            objects,
            wecs,
            policies,
            resource_version,
        }
    }

    fn next_resource_version(&mut self) -> String {
        self.resource_version += 1;
        self.resource_version.to_string()
    }

    /// Every change that creates the state: namespaces, objects, WECs, policies.
    fn load_changes(&self) -> impl Iterator<Item = Change> + '_ {
        self.namespaces
            .iter()
            .chain(&self.objects)
            .map(Object::change)
            .chain(self.wecs.iter().map(|(name, labels)| Change::Wec {
                name: name.clone(),
                labels: Some(labels.clone()),
            }))
            .chain(self.policies.iter().map(Policy::change))
    }

    fn load_len(&self) -> usize {
        self.namespaces.len() + self.objects.len() + self.wecs.len() + self.policies.len()
    }
}

/// 53 policies: 20 narrow app selectors, 8 team selectors over two resources, 6
/// namespace lists, 6 namespace selectors, 4 CRD policies with `matchExpressions`, 3
/// `objectNames` policies, 3 multi-clause policies with modulations, and 3 broad ones.
fn generate_policies(rng: &mut Rng, clusterroles: &[String]) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for k in 0..APP_POLICIES {
        out.push((format!("app-{k:02}"), app_policy_spec(10 * k, k % REGIONS)));
    }
    for t in 0..8 {
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
        let namespaces: Vec<String> = (0..3)
            .map(|_| namespace_name(rng.below(NAMESPACES)))
            .collect();
        out.push((
            format!("nslist-{j}"),
            json!({
                "clusterSelectors": [{"matchExpressions": [
                    {"key": "region", "operator": "In", "values": [region(j), region(j + 4)]}
                ]}],
                "downsync": [{"namespaces": namespaces, "resources": ["deployments", "services"]}]
            }),
        ));
    }
    for t in 0..6 {
        out.push((
            format!("nssel-{t}"),
            json!({
                "clusterSelectors": [{"matchLabels": {"env": "staging"}}],
                "downsync": [{
                    "apiGroup": "apps",
                    "resources": ["deployments"],
                    "namespaceSelectors": [{"matchLabels": {"team": format!("team-{t}")}}]
                }]
            }),
        ));
    }
    let tier_sets: [&[&str]; 4] = [
        &["frontend"],
        &["backend"],
        &["cache", "db"],
        &["frontend", "cache"],
    ];
    for (j, tiers) in tier_sets.iter().enumerate() {
        out.push((
            format!("widgets-{j}"),
            json!({
                "clusterSelectors": [
                    {"matchLabels": {"location-group": "core"}},
                    {"matchLabels": {"region": region(j)}}
                ],
                "downsync": [{
                    "apiGroup": "example.com",
                    "resources": ["widgets"],
                    "objectSelectors": [{"matchExpressions": [
                        {"key": "tier", "operator": "In", "values": tiers},
                        {"key": "env", "operator": "NotIn", "values": ["dev"]}
                    ]}],
                    "statusCollectors": ["widget-status"],
                    "wantMultiWECReportedState": true
                }]
            }),
        ));
    }
    for j in 0..3 {
        let names: Vec<&String> = (0..5)
            .filter_map(|_| clusterroles.get(rng.below(clusterroles.len().max(1))))
            .collect();
        let mut downsync = vec![json!({
            "apiGroup": "rbac.authorization.k8s.io",
            "resources": ["clusterroles"],
            "objectNames": names
        })];
        if j == 0 {
            downsync.push(json!({
                "resources": ["namespaces"],
                "objectSelectors": [{"matchLabels": {"env": "prod"}}]
            }));
        }
        out.push((
            format!("rbac-{j}"),
            json!({
                "clusterSelectors": [{"matchLabels": {"location-group": "core"}}],
                "downsync": downsync
            }),
        ));
    }
    for j in 0..3 {
        let selector = json!([{"matchLabels": {"app": app(5 + j)}}]);
        out.push((
            format!("multi-{j}"),
            json!({
                "clusterSelectors": [{"matchExpressions": [
                    {"key": "env", "operator": "In", "values": ["prod", "staging"]},
                    {"key": "location-group", "operator": "NotIn", "values": ["core"]}
                ]}],
                "downsync": [
                    {"resources": ["configmaps"], "objectSelectors": selector, "createOnly": true},
                    {"objectSelectors": selector, "statusCollectors": [format!("sc-{j}")]},
                    {"namespaces": [namespace_name(j)], "apiGroup": "apps", "wantMultiWECReportedState": true}
                ]
            }),
        ));
    }
    out.push((BROAD_POLICY.into(), broad_policy_spec(BROAD_POLICY_APP)));
    out.push((
        "broad-prod-namespaces".into(),
        json!({
            "clusterSelectors": [{"matchLabels": {"env": "prod"}}],
            "downsync": [{"namespaceSelectors": [{"matchLabels": {"env": "prod"}}]}]
        }),
    ));
    out.push((
        "broad-frontend".into(),
        json!({
            "clusterSelectors": [{"matchExpressions": [{"key": "location-group", "operator": "Exists"}]}],
            "downsync": [{"objectSelectors": [{"matchLabels": {"tier": "frontend"}}]}]
        }),
    ));
    out
}

// ---------------------------------------------------------------------------------
// Measurement

/// The kinds of single change measured.
#[derive(Clone, Copy)]
enum Kind {
    /// No change at all: the fixed cost of closing an epoch.
    Empty,
    ObjectRelabel,
    StatusOnly,
    WecRelabel,
    PolicyEdit,
    NamespaceRelabel,
    BroadPolicyEdit,
}

const KINDS: &[(Kind, &str)] = &[
    (Kind::Empty, "(0) empty epoch (`advance` only)"),
    (Kind::ObjectRelabel, "(a) object relabel"),
    (Kind::StatusOnly, "(b) object status-only update"),
    (Kind::WecRelabel, "(c) WEC relabel"),
    (Kind::PolicyEdit, "(d) policy edit (one clause)"),
    (Kind::NamespaceRelabel, "(e) Namespace relabel (extra)"),
    (
        Kind::BroadPolicyEdit,
        "(f) policy edit, narrow clause of a broad policy (extra)",
    ),
];

/// Makes the change of repetition `rep` (forth on even `rep`, back on odd) for one kind.
/// Objects, WECs, policies and namespaces are varied across forth-and-back pairs.
struct ChangeMaker {
    kind: Kind,
    /// Objects to change, one per forth-and-back pair (status-only: one per repetition).
    picks: Vec<usize>,
    /// What the forth change replaced, restored by the back change.
    saved: Option<String>,
}

impl ChangeMaker {
    fn new(kind: Kind, world: &World, repetitions: usize, rng: &mut Rng) -> ChangeMaker {
        let picks = (0..repetitions)
            .map(|_| rng.below(world.objects.len()))
            .collect();
        ChangeMaker {
            kind,
            picks,
            saved: None,
        }
    }

    fn make(&mut self, world: &mut World, rep: usize) -> Option<Change> {
        let forth = rep.is_multiple_of(2);
        let pair = rep / 2;
        Some(match self.kind {
            Kind::Empty => return None,
            Kind::ObjectRelabel => {
                let i = self.picks[pair];
                let rv = world.next_resource_version();
                let o = &mut world.objects[i];
                let current = o.state.labels.get("app").cloned().expect("app label");
                let new = if forth {
                    let n: usize = current["app-".len()..].parse().expect("app number");
                    self.saved = Some(current);
                    app(next_selected_app(n))
                } else {
                    self.saved.take().expect("forth before back")
                };
                o.state.labels.insert("app".into(), new);
                o.state.resource_version = rv;
                o.change()
            }
            Kind::StatusOnly => {
                let i = self.picks[rep];
                let rv = world.next_resource_version();
                let o = &mut world.objects[i];
                o.state.resource_version = rv;
                o.change()
            }
            Kind::WecRelabel => {
                let (name, labels) = &mut world.wecs[(pair * 37) % WECS];
                let new = if forth {
                    let current = labels.get("region").cloned().expect("region label");
                    let n: usize = current["region-".len()..].parse().expect("region number");
                    self.saved = Some(current);
                    region((n + 1) % REGIONS)
                } else {
                    self.saved.take().expect("forth before back")
                };
                labels.insert("region".into(), new);
                Change::Wec {
                    name: name.clone(),
                    labels: Some(labels.clone()),
                }
            }
            Kind::PolicyEdit => {
                let k = (pair * 7) % APP_POLICIES;
                let policy = &mut world.policies[k];
                debug_assert_eq!(policy.name, format!("app-{k:02}"));
                let app_value = if forth { 10 * k + 5 } else { 10 * k };
                policy.spec = app_policy_spec(app_value, k % REGIONS);
                policy.generation += 1;
                policy.change()
            }
            Kind::BroadPolicyEdit => {
                let policy = world
                    .policies
                    .iter_mut()
                    .find(|p| p.name == BROAD_POLICY)
                    .expect("the broad policy");
                let app_value = if forth {
                    BROAD_POLICY_APP + 1 + pair % 50
                } else {
                    BROAD_POLICY_APP
                };
                policy.spec = broad_policy_spec(app_value);
                policy.generation += 1;
                policy.change()
            }
            Kind::NamespaceRelabel => {
                // Namespaces of teams 0..4 move to the next team: one nssel Binding
                // loses their deployments and another gains them.
                let i = (20 * pair + pair % 5) % NAMESPACES;
                let rv = world.next_resource_version();
                let ns = &mut world.namespaces[i];
                let new = if forth {
                    let current = ns.state.labels.get("team").cloned().expect("team label");
                    let n: usize = current["team-".len()..].parse().expect("team number");
                    self.saved = Some(current);
                    format!("team-{}", (n + 1) % TEAMS)
                } else {
                    self.saved.take().expect("forth before back")
                };
                ns.state.labels.insert("team".into(), new);
                ns.state.resource_version = rv;
                ns.change()
            }
        })
    }
}

/// Timings and effects of the repetitions of one kind of change.
struct Sample {
    times: Vec<Duration>,
    entries: Vec<usize>,
}

/// Times `apply` + `advance` of `repeats` single changes of one kind, after one untimed
/// forth-and-back pair. The oracle gets the same changes, untimed.
fn measure(
    kind: Kind,
    world: &mut World,
    engine: &mut Engine,
    oracle: &mut Oracle,
    repeats: usize,
    rng: &mut Rng,
) -> Sample {
    const WARMUP: usize = 2;
    let mut maker = ChangeMaker::new(kind, world, WARMUP + repeats, rng);
    let mut sample = Sample {
        times: Vec::with_capacity(repeats),
        entries: Vec::with_capacity(repeats),
    };
    for rep in 0..WARMUP + repeats {
        let change = maker.make(world, rep);
        let start = Instant::now();
        if let Some(change) = &change {
            engine.apply(change);
        }
        let out = engine.advance();
        let elapsed = start.elapsed();
        if let Some(change) = &change {
            oracle.apply(change);
        }
        if rep >= WARMUP {
            sample.times.push(elapsed);
            sample.entries.push(entries_changed(&out));
        }
    }
    sample
}

/// Does the engine agree with the oracle? Prints what differs when not.
fn agrees(engine: &Engine, oracle_bindings: &[bindery_engine::Binding], when: &str) -> bool {
    let got = engine.bindings();
    if got == oracle_bindings {
        eprintln!("  engine and oracle agree {when}");
        return true;
    }
    eprintln!(
        "  MISMATCH {when}: engine has {} Bindings, oracle {}",
        got.len(),
        oracle_bindings.len()
    );
    for (g, w) in got.iter().zip(oracle_bindings) {
        if g != w {
            eprintln!("    first differing Binding: {}", g.name);
            break;
        }
    }
    false
}

/// Everything measured at one N.
struct Run {
    n: usize,
    sizes: Sizes,
    load: Duration,
    load_changes: usize,
    rss_before_kb: Option<u64>,
    rss_after_load_kb: Option<u64>,
    hwm_after_load_kb: Option<u64>,
    rss_with_oracle_kb: Option<u64>,
    samples: Vec<Sample>,
    oracle: Vec<Duration>,
    explain: ExplainTimes,
    agrees: bool,
}

/// Times of one explain question, answered three ways.
struct ExplainTimes {
    /// `engine.explain` about one object (copies what the question needs).
    object: Vec<Duration>,
    /// `engine.to_oracle().explain` about the same object (copies everything).
    object_via_full_copy: Vec<Duration>,
    /// `engine.explain` of the policy's overview (reads every object).
    overview: Vec<Duration>,
}

/// Times the explain questions on the loaded engine, checking that the scoped answer
/// equals the full copy's.
fn measure_explain(engine: &Engine, world: &World, config: &Config) -> (ExplainTimes, bool) {
    let object = &world.objects[world.objects.len() / 2].object;
    let query = Query {
        policy: world.policies[0].name.clone(),
        object: Some(ObjectKey {
            group: object.group.clone(),
            resource: object.resource.clone(),
            namespace: object.namespace.clone(),
            name: object.name.clone(),
        }),
        cluster: None,
    };
    let overview = Query {
        object: None,
        ..query.clone()
    };
    let time = |runs: usize, f: &dyn Fn()| -> Vec<Duration> {
        (0..runs)
            .map(|_| {
                let start = Instant::now();
                f();
                start.elapsed()
            })
            .collect()
    };
    let same = engine.explain(&query) == engine.to_oracle().explain(&query);
    if !same {
        eprintln!("  MISMATCH: engine.explain differs from engine.to_oracle().explain");
    }
    let times = ExplainTimes {
        object: time(config.repeats, &|| {
            engine.explain(&query).expect("the object exists");
        }),
        object_via_full_copy: time(config.oracle_runs, &|| {
            engine
                .to_oracle()
                .explain(&query)
                .expect("the object exists");
        }),
        overview: time(config.oracle_runs, &|| {
            engine.explain(&overview).expect("the policy exists");
        }),
    };
    (times, same)
}

fn run(n: usize, config: &Config) -> Run {
    eprintln!("== N = {n} workload objects");
    let generated = Instant::now();
    let mut world = World::generate(n);
    eprintln!(
        "  generated {} namespaces, {} objects, {} WECs, {} policies in {:.2?}",
        world.namespaces.len(),
        world.objects.len(),
        world.wecs.len(),
        world.policies.len(),
        generated.elapsed()
    );
    let rss_before_kb = memory::rss_kb();

    let mut engine = Engine::new();
    let total = world.load_len();
    let start = Instant::now();
    for (i, change) in world.load_changes().enumerate() {
        engine.apply(&change);
        if (i + 1) % (total / 10).max(1) == 0 {
            eprintln!(
                "  loading: applied {}/{total} changes ({:.2?})",
                i + 1,
                start.elapsed()
            );
        }
    }
    eprintln!("  loading: advancing (running the dataflow over everything)...");
    let out = engine.advance();
    let load = start.elapsed();
    let sizes = engine.sizes();
    let rss_after_load_kb = memory::rss_kb();
    let hwm_after_load_kb = memory::peak_rss_kb();
    eprintln!(
        "  loaded in {load:.2?}: {} Bindings changed, {sizes:?}",
        out.changes.len()
    );

    let mut oracle = Oracle::default();
    for change in world.load_changes() {
        oracle.apply(&change);
    }
    let rss_with_oracle_kb = memory::rss_kb();
    let mut oracle_times = Vec::new();
    let mut agrees_all = true;
    for run in 0..config.oracle_runs {
        eprintln!(
            "  oracle full recompute {}/{}...",
            run + 1,
            config.oracle_runs
        );
        let start = Instant::now();
        let bindings = oracle.bindings();
        oracle_times.push(start.elapsed());
        if run == 0 {
            agrees_all &= agrees(&engine, &bindings, "after loading");
        }
    }

    eprintln!("  measuring explain...");
    let (explain, explain_agrees) = measure_explain(&engine, &world, config);
    agrees_all &= explain_agrees;

    let mut rng = Rng::new(SEED ^ 0x0C4A_46E5);
    let mut samples = Vec::new();
    for &(kind, label) in KINDS {
        eprintln!("  measuring {label} x {}...", config.repeats);
        samples.push(measure(
            kind,
            &mut world,
            &mut engine,
            &mut oracle,
            config.repeats,
            &mut rng,
        ));
    }
    agrees_all &= agrees(&engine, &oracle.bindings(), "after the measured changes");
    if engine.statuses() != oracle.statuses() {
        eprintln!("  MISMATCH: policy statuses differ after the measured changes");
        agrees_all = false;
    }
    Run {
        n,
        sizes,
        load,
        load_changes: total,
        rss_before_kb,
        rss_after_load_kb,
        hwm_after_load_kb,
        rss_with_oracle_kb,
        samples,
        oracle: oracle_times,
        explain,
        agrees: agrees_all,
    }
}

// ---------------------------------------------------------------------------------
// Report

fn fmt_count(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn fmt_mib(kb: Option<u64>) -> String {
    kb.map_or("n/a".into(), fmt::mib)
}

fn ratio(a: f64, b: f64) -> String {
    if b > 0.0 {
        format!("{:.1}×", a / b)
    } else {
        "n/a".into()
    }
}

fn report(runs: &[Run], config: &Config) {
    let (first, last) = (&runs[0], &runs[runs.len() - 1]);
    let ratio_header = if runs.len() > 1 {
        format!(" {}/{} (median) |", fmt_count(last.n), fmt_count(first.n))
    } else {
        String::new()
    };

    println!("\n### State after loading (one epoch)\n");
    print!("| |");
    for r in runs {
        print!(" N = {} |", fmt_count(r.n));
    }
    println!("\n|---|{}", "---|".repeat(runs.len()));
    let row = |label: &str, cell: fn(&Run) -> String| {
        print!("| {label} |");
        for r in runs {
            print!(" {} |", cell(r));
        }
        println!();
    };
    row("changes loaded", |r| fmt_count(r.load_changes));
    row("WECs", |r| fmt_count(r.sizes.wecs));
    row("workload objects (incl. Namespaces)", |r| {
        fmt_count(r.sizes.objects)
    });
    row("policies", |r| fmt_count(r.sizes.policies));
    row("Binding workload entries", |r| {
        fmt_count(r.sizes.workload_entries)
    });
    row("Binding destinations", |r| fmt_count(r.sizes.destinations));
    row("interned strings", |r| fmt_count(r.sizes.interned));
    row("load time", |r| fmt::duration(r.load));
    row("VmRSS before loading (generated input only)", |r| {
        fmt_mib(r.rss_before_kb)
    });
    row("VmRSS after engine load", |r| fmt_mib(r.rss_after_load_kb));
    row("VmHWM (peak RSS) after engine load", |r| {
        fmt_mib(r.hwm_after_load_kb)
    });
    row("VmRSS with the oracle loaded too", |r| {
        fmt_mib(r.rss_with_oracle_kb)
    });

    println!(
        "\n### One change: `engine.apply` + `engine.advance` ({} repetitions)\n",
        config.repeats
    );
    print!("| change |");
    for r in runs {
        let n = fmt_count(r.n);
        print!(" N={n} median | N={n} p90 | N={n} entries changed |");
    }
    println!("{ratio_header}");
    println!(
        "|---|{}{}",
        "---|".repeat(3 * runs.len()),
        if runs.len() > 1 { "---|" } else { "" }
    );
    for (k, &(_, label)) in KINDS.iter().enumerate() {
        print!("| {label} |");
        for r in runs {
            let s = &r.samples[k];
            print!(
                " {} | {} | {} |",
                fmt::duration(median(&s.times)),
                fmt::duration(quantile(&s.times, 0.9)),
                fmt_count(median(&s.entries))
            );
        }
        if runs.len() > 1 {
            print!(
                " {} |",
                ratio(
                    median(&last.samples[k].times).as_secs_f64(),
                    median(&first.samples[k].times).as_secs_f64()
                )
            );
        }
        println!();
    }
    print!("| full oracle recompute (`oracle.bindings()`) |");
    for r in runs {
        print!(
            " {} | {} | all |",
            fmt::duration(median(&r.oracle)),
            fmt::duration(quantile(&r.oracle, 0.9))
        );
    }
    if runs.len() > 1 {
        print!(
            " {} |",
            ratio(
                median(&last.oracle).as_secs_f64(),
                median(&first.oracle).as_secs_f64()
            )
        );
    }
    println!();
    print!("| load (one epoch, everything) |");
    for r in runs {
        print!(
            " {} | | {} |",
            fmt::duration(r.load),
            fmt_count(r.sizes.workload_entries + r.sizes.destinations)
        );
    }
    if runs.len() > 1 {
        print!(
            " {} |",
            ratio(last.load.as_secs_f64(), first.load.as_secs_f64())
        );
    }
    println!();

    println!("\n### Full oracle recompute / one incremental change (medians)\n");
    print!("| change |");
    for r in runs {
        print!(" N = {} |", fmt_count(r.n));
    }
    println!("\n|---|{}", "---|".repeat(runs.len()));
    for (k, &(_, label)) in KINDS.iter().enumerate() {
        print!("| {label} |");
        for r in runs {
            print!(
                " {} |",
                ratio(
                    median(&r.oracle).as_secs_f64(),
                    median(&r.samples[k].times).as_secs_f64()
                )
            );
        }
        println!();
    }

    println!("\n### Explain on the loaded engine (medians)\n");
    print!("| question |");
    for r in runs {
        print!(" N = {} |", fmt_count(r.n));
    }
    println!("\n|---|{}", "---|".repeat(runs.len()));
    let explain_row = |label: &str, times: fn(&ExplainTimes) -> &Vec<Duration>| {
        print!("| {label} |");
        for r in runs {
            print!(" {} |", fmt::duration(median(times(&r.explain))));
        }
        println!();
    };
    explain_row("one object: `engine.explain` (copies what it needs)", |e| {
        &e.object
    });
    explain_row(
        "one object: `engine.to_oracle().explain` (copies everything)",
        |e| &e.object_via_full_copy,
    );
    explain_row("overview of one policy: `engine.explain`", |e| &e.overview);

    println!(
        "\nEngine and oracle agree after loading and after the measured changes: {}",
        if runs.iter().all(|r| r.agrees) {
            "yes"
        } else {
            "NO"
        }
    );
}

fn main() {
    let config = parse_args();
    eprintln!(
        "incremental benchmark: objects {:?}, {} repetitions per change, {} oracle runs{}",
        config.objects,
        config.repeats,
        config.oracle_runs,
        if cfg!(debug_assertions) {
            " (debug build: timings are not representative)"
        } else {
            ""
        }
    );
    let runs: Vec<Run> = config.objects.iter().map(|&n| run(n, &config)).collect();
    if runs.is_empty() {
        eprintln!("nothing to run\n{USAGE}");
        std::process::exit(2);
    }
    report(&runs, &config);
    if !runs.iter().all(|r| r.agrees) {
        std::process::exit(1);
    }
}

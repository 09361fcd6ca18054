//! Seeded, synthetic watch logs at any scale, for benchmarks and tests (written by
//! `bindery generate`).
//!
//! The log starts with the initial lists (`RESET`, `ADDED`…, `SYNCED` per resource) of
//! N WECs with region/zone/tier/env labels, namespaces with team/env labels, M workload
//! objects over five resources (ConfigMaps, Deployments, Services, Secrets, and the
//! cluster-scoped ClusterRoles) and P BindingPolicies that mix `matchLabels`, `In`,
//! `NotIn`, `Exists`, `namespaceSelectors`, `objectNames`, `namespaces` and the
//! modulations. Then `churn` events follow, drawn from a fixed mix ([`ChurnKind`]):
//! status-only updates, object relabels, WEC relabels, policy edits, creates and
//! deletes; and two herds in the middle of the churn: one WEC relabel that enters every
//! policy, and a new policy selecting every object. The same spec and seed give the same
//! bytes.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result, ensure};
use bindery_ingest::WatchTarget;
use bindery_ingest::watchlog::{EventType, LogWriter, ResourceRef, Space, WatchEvent};
use serde_json::{Map, Value, json};

use crate::observe::progress::Progress;

/// What to generate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GenerateSpec {
    /// WECs (ManagedClusters).
    pub wecs: usize,
    /// Workload objects (namespaces not counted).
    pub objects: usize,
    /// BindingPolicies.
    pub policies: usize,
    /// Namespaces the namespaced objects are spread over.
    pub namespaces: usize,
    /// Churn events after the initial lists.
    pub churn: usize,
    /// Milliseconds between churn events in `ts`.
    pub churn_interval_ms: i64,
    /// The seed of the pseudo-random choices.
    pub seed: u64,
}

impl GenerateSpec {
    /// Checks the figures make a log: at least one WEC, object, policy and namespace.
    pub fn validate(&self) -> Result<()> {
        ensure!(self.wecs >= 1, "--wecs must be at least 1");
        ensure!(self.objects >= 1, "--objects must be at least 1");
        ensure!(self.policies >= 1, "--policies must be at least 1");
        ensure!(self.namespaces >= 1, "--namespaces must be at least 1");
        ensure!(self.churn_interval_ms >= 0, "--interval-ms must be >= 0");
        Ok(())
    }
}

/// The kinds of churn event, with their share of the churn (per 100).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum ChurnKind {
    /// A status-only update: a new `resourceVersion`, nothing else (60).
    StatusOnly,
    /// An object's labels change (15).
    Relabel,
    /// A WEC's labels change (5).
    WecRelabel,
    /// A policy's spec changes, with a new `generation` (5).
    PolicyEdit,
    /// A new object (8).
    Create,
    /// An object deleted (7).
    Delete,
    /// The first herd, once: one WEC relabel that enters every policy.
    WecHerd,
    /// The second herd, once: a new policy selecting every object for every WEC.
    PolicyHerd,
}

/// What was generated.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GenerateSummary {
    /// Event lines written (header excluded).
    pub events: u64,
    /// Churn events by kind.
    pub churn: BTreeMap<String, u64>,
}

/// Writes the log for `spec` to `path` (`.jsonl`, or zstd with `.zst`).
pub fn generate_to(spec: &GenerateSpec, path: &Path) -> Result<GenerateSummary> {
    spec.validate()?;
    let header = Map::from_iter([
        (
            "generatedBy".to_string(),
            json!(format!("bindery {} generate", env!("CARGO_PKG_VERSION"))),
        ),
        (
            "spec".to_string(),
            json!({"wecs": spec.wecs, "objects": spec.objects, "policies": spec.policies,
                   "namespaces": spec.namespaces, "churn": spec.churn, "seed": spec.seed}),
        ),
    ]);
    let mut writer =
        LogWriter::create(path, header).with_context(|| format!("creating {}", path.display()))?;
    let total = (spec.wecs + spec.namespaces + spec.objects + spec.policies + spec.churn) as u64;
    let mut progress = Progress::spinner(&format!("generating {}", path.display()));
    let summary = Generator::new(spec).run(
        &mut |event, _kind| {
            writer.write_event(event)?;
            Ok(())
        },
        &mut |written| {
            progress.status(|| format!("{written} of about {total} events"));
        },
    )?;
    writer
        .finish()
        .with_context(|| format!("finishing {}", path.display()))?;
    progress.finish();
    Ok(summary)
}

/// Generates the events of `spec` in memory, in log order, handing each to `on_event`
/// with its [`ChurnKind`] (`None` for the initial lists). The same events
/// [`generate_to`] writes.
pub fn generate_events(
    spec: &GenerateSpec,
    on_event: &mut dyn FnMut(&WatchEvent, Option<ChurnKind>) -> Result<()>,
) -> Result<GenerateSummary> {
    spec.validate()?;
    Generator::new(spec).run(on_event, &mut |_| {})
}

/// A small, fast, seeded pseudo-random generator (SplitMix64).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// Skewed towards small values in `0..n`: the smaller of two draws.
    fn skewed(&mut self, n: usize) -> usize {
        self.below(n).min(self.below(n))
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

const REGIONS: usize = 8;
const TIERS: [&str; 3] = ["edge", "core", "cloud"];
const ENVS: [&str; 3] = ["prod", "staging", "dev"];
const APP_TIERS: [&str; 3] = ["frontend", "backend", "data"];
const TEAMS: usize = 20;
const APPS: usize = 100;
/// The label the WEC herd adds: every policy has a cluster selector for it.
const HERD_LABEL: &str = "bindery.example/herd";

/// One workload resource of the generated WDS.
struct Kind {
    group: &'static str,
    version: &'static str,
    resource: &'static str,
    kind: &'static str,
    namespaced: bool,
    /// Share of the objects, per 100.
    share: usize,
    prefix: &'static str,
}

const KINDS: [Kind; 5] = [
    Kind {
        group: "",
        version: "v1",
        resource: "configmaps",
        kind: "ConfigMap",
        namespaced: true,
        share: 60,
        prefix: "cm",
    },
    Kind {
        group: "apps",
        version: "v1",
        resource: "deployments",
        kind: "Deployment",
        namespaced: true,
        share: 15,
        prefix: "deploy",
    },
    Kind {
        group: "",
        version: "v1",
        resource: "services",
        kind: "Service",
        namespaced: true,
        share: 10,
        prefix: "svc",
    },
    Kind {
        group: "",
        version: "v1",
        resource: "secrets",
        kind: "Secret",
        namespaced: true,
        share: 10,
        prefix: "secret",
    },
    Kind {
        group: "rbac.authorization.k8s.io",
        version: "v1",
        resource: "clusterroles",
        kind: "ClusterRole",
        namespaced: false,
        share: 5,
        prefix: "role",
    },
];

/// A WEC's labels, as small numbers.
#[derive(Clone, Copy)]
struct Wec {
    region: u8,
    zone: u8,
    tier: u8,
    env: u8,
    gpu: bool,
    herd: bool,
}

/// A workload object: its kind, namespace, name number, labels as small numbers.
#[derive(Clone, Copy)]
struct Object {
    kind: u8,
    namespace: u32,
    number: u32,
    app: u8,
    tier: u8,
    version: u8,
    critical: bool,
}

struct Generator<'a> {
    spec: &'a GenerateSpec,
    rng: Rng,
    ts: i64,
    rv: u64,
    wecs: Vec<Wec>,
    objects: Vec<Object>,
    next_number: u32,
    /// Each policy's spec seed and generation.
    policies: Vec<(u64, i64)>,
    /// The kind of the churn event being emitted (`None` in the initial lists).
    kind: Option<ChurnKind>,
    summary: GenerateSummary,
}

type Sink<'s> = dyn FnMut(&WatchEvent, Option<ChurnKind>) -> Result<()> + 's;

impl<'a> Generator<'a> {
    fn new(spec: &'a GenerateSpec) -> Self {
        Generator {
            spec,
            rng: Rng(spec.seed),
            ts: 1_764_151_200_000,
            rv: 1000,
            wecs: Vec::new(),
            objects: Vec::new(),
            next_number: 0,
            policies: Vec::new(),
            kind: None,
            summary: GenerateSummary::default(),
        }
    }

    fn run(mut self, out: &mut Sink<'_>, progress: &mut dyn FnMut(u64)) -> Result<GenerateSummary> {
        // Initial lists.
        let its = wec_resource();
        self.emit(out, &its, EventType::Reset, None)?;
        for i in 0..self.spec.wecs {
            let wec = self.random_wec();
            self.wecs.push(wec);
            let obj = self.wec_object(i);
            self.emit(out, &its, EventType::Added, Some(obj))?;
        }
        self.emit(out, &its, EventType::Synced, None)?;

        let namespaces = resource(Space::Wds, "", "v1", "namespaces");
        self.emit(out, &namespaces, EventType::Reset, None)?;
        for n in 0..self.spec.namespaces {
            let obj = self.namespace_object(n);
            self.emit(out, &namespaces, EventType::Added, Some(obj))?;
        }
        self.emit(out, &namespaces, EventType::Synced, None)?;

        for (k, kind) in KINDS.iter().enumerate() {
            let count = (self.spec.objects * kind.share).div_ceil(100);
            let r = kind_resource(kind);
            self.emit(out, &r, EventType::Reset, None)?;
            for _ in 0..count {
                if self.objects.len() >= self.spec.objects {
                    break;
                }
                let object = self.random_object(k as u8);
                self.objects.push(object);
                let obj = self.object_json(&object);
                self.emit(out, &r, EventType::Added, Some(obj))?;
                progress(self.summary.events);
            }
            self.emit(out, &r, EventType::Synced, None)?;
        }

        let policies = policy_resource();
        self.emit(out, &policies, EventType::Reset, None)?;
        for p in 0..self.spec.policies {
            let seed = self.rng.next();
            self.policies.push((seed, 1));
            let obj = self.policy_object(p);
            self.emit(out, &policies, EventType::Added, Some(obj))?;
        }
        self.emit(out, &policies, EventType::Synced, None)?;

        // Churn, with the two herds in the middle.
        for i in 0..self.spec.churn {
            self.ts += self.spec.churn_interval_ms;
            if i == self.spec.churn / 2 {
                self.herds(out)?;
            }
            let kind = self.churn_kind();
            self.kind = Some(kind);
            self.churn_event(kind, out)?;
            self.count_churn(kind);
            progress(self.summary.events);
        }
        Ok(self.summary)
    }

    fn emit(
        &mut self,
        out: &mut Sink<'_>,
        resource: &ResourceRef,
        event_type: EventType,
        object: Option<Value>,
    ) -> Result<()> {
        self.summary.events += 1;
        out(
            &WatchEvent {
                ts: self.ts,
                resource: resource.clone(),
                event_type,
                object,
            },
            self.kind,
        )
    }

    fn count_churn(&mut self, kind: ChurnKind) {
        *self.summary.churn.entry(format!("{kind:?}")).or_default() += 1;
    }

    fn next_rv(&mut self) -> String {
        self.rv += 1;
        self.rv.to_string()
    }

    fn churn_kind(&mut self) -> ChurnKind {
        match self.rng.below(100) {
            0..60 => ChurnKind::StatusOnly,
            60..75 => ChurnKind::Relabel,
            75..80 => ChurnKind::WecRelabel,
            80..85 => ChurnKind::PolicyEdit,
            85..93 => ChurnKind::Create,
            _ => ChurnKind::Delete,
        }
    }

    fn churn_event(&mut self, kind: ChurnKind, out: &mut Sink<'_>) -> Result<()> {
        match kind {
            ChurnKind::StatusOnly | ChurnKind::Relabel if !self.objects.is_empty() => {
                let i = self.rng.below(self.objects.len());
                if kind == ChurnKind::Relabel {
                    let relabelled = self.random_object(self.objects[i].kind);
                    let o = &mut self.objects[i];
                    o.app = relabelled.app;
                    o.tier = relabelled.tier;
                    o.version = relabelled.version;
                    o.critical = relabelled.critical;
                }
                let object = self.objects[i];
                let obj = self.object_json(&object);
                self.emit(
                    out,
                    &kind_resource(&KINDS[object.kind as usize]),
                    EventType::Modified,
                    Some(obj),
                )
            }
            ChurnKind::WecRelabel => {
                let i = self.rng.below(self.wecs.len());
                let fresh = self.random_wec();
                let wec = &mut self.wecs[i];
                wec.tier = fresh.tier;
                wec.env = fresh.env;
                wec.gpu = fresh.gpu;
                let obj = self.wec_object(i);
                let its = wec_resource();
                self.emit(out, &its, EventType::Modified, Some(obj))
            }
            ChurnKind::PolicyEdit => {
                let p = self.rng.below(self.policies.len());
                let seed = self.rng.next();
                let policy = &mut self.policies[p];
                policy.0 = seed;
                policy.1 += 1;
                let obj = self.policy_object(p);
                self.emit(out, &policy_resource(), EventType::Modified, Some(obj))
            }
            ChurnKind::Delete if self.objects.len() > 1 => {
                let i = self.rng.below(self.objects.len());
                let object = self.objects.swap_remove(i);
                let obj = self.object_json(&object);
                self.emit(
                    out,
                    &kind_resource(&KINDS[object.kind as usize]),
                    EventType::Deleted,
                    Some(obj),
                )
            }
            _ => {
                let kind = self.random_kind();
                let object = self.random_object(kind);
                self.objects.push(object);
                let obj = self.object_json(&object);
                self.emit(
                    out,
                    &kind_resource(&KINDS[kind as usize]),
                    EventType::Added,
                    Some(obj),
                )
            }
        }
    }

    /// One WEC relabel that enters every policy (each has a cluster selector for
    /// [`HERD_LABEL`]), and a new policy selecting every object for every WEC.
    fn herds(&mut self, out: &mut Sink<'_>) -> Result<()> {
        let i = self.rng.below(self.wecs.len());
        self.wecs[i].herd = true;
        let obj = self.wec_object(i);
        let its = wec_resource();
        self.kind = Some(ChurnKind::WecHerd);
        self.emit(out, &its, EventType::Modified, Some(obj))?;
        self.count_churn(ChurnKind::WecHerd);
        let rv = self.next_rv();
        let everything = json!({
            "apiVersion": "control.kubestellar.io/v1alpha1", "kind": "BindingPolicy",
            "metadata": {"name": "herd-everything", "uid": "uid-policy-herd", "resourceVersion": rv,
                         "generation": 1},
            "spec": {"clusterSelectors": [{}], "downsync": [{"resources": ["*"]}]}
        });
        self.kind = Some(ChurnKind::PolicyHerd);
        self.emit(out, &policy_resource(), EventType::Added, Some(everything))?;
        self.count_churn(ChurnKind::PolicyHerd);
        Ok(())
    }

    fn random_wec(&mut self) -> Wec {
        Wec {
            region: self.rng.below(REGIONS) as u8,
            zone: self.rng.below(3) as u8,
            tier: self.rng.below(TIERS.len()) as u8,
            env: self.rng.below(ENVS.len()) as u8,
            gpu: self.rng.chance(10),
            herd: false,
        }
    }

    fn random_kind(&mut self) -> u8 {
        let mut draw = self.rng.below(100);
        for (k, kind) in KINDS.iter().enumerate() {
            if draw < kind.share {
                return k as u8;
            }
            draw -= kind.share;
        }
        0
    }

    fn random_object(&mut self, kind: u8) -> Object {
        self.next_number += 1;
        Object {
            kind,
            namespace: self.rng.skewed(self.spec.namespaces) as u32,
            number: self.next_number,
            app: self.rng.skewed(APPS) as u8,
            tier: self.rng.below(APP_TIERS.len()) as u8,
            version: self.rng.below(3) as u8 + 1,
            critical: self.rng.chance(10),
        }
    }

    fn wec_object(&mut self, i: usize) -> Value {
        let w = self.wecs[i];
        let mut labels = json!({
            "name": wec_name(i),
            "region": format!("r{}", w.region),
            "zone": format!("r{}-z{}", w.region, w.zone),
            "tier": TIERS[w.tier as usize],
            "env": ENVS[w.env as usize],
        });
        if w.gpu {
            labels["gpu"] = json!("true");
        }
        if w.herd {
            labels[HERD_LABEL] = json!("yes");
        }
        let rv = self.next_rv();
        json!({"apiVersion": "cluster.open-cluster-management.io/v1", "kind": "ManagedCluster",
               "metadata": {"name": wec_name(i), "uid": format!("uid-wec-{i}"), "resourceVersion": rv,
                            "labels": labels}})
    }

    fn namespace_object(&mut self, n: usize) -> Value {
        let rv = self.next_rv();
        json!({"apiVersion": "v1", "kind": "Namespace",
               "metadata": {"name": namespace_name(n), "uid": format!("uid-ns-{n}"), "resourceVersion": rv,
                            "labels": {"team": format!("t{}", n % TEAMS), "env": ENVS[n % ENVS.len()],
                                       "kubernetes.io/metadata.name": namespace_name(n)}}})
    }

    fn object_json(&mut self, o: &Object) -> Value {
        let kind = &KINDS[o.kind as usize];
        let name = format!("{}-{:07}", kind.prefix, o.number);
        let mut labels = json!({
            "app": format!("a{}", o.app),
            "tier": APP_TIERS[o.tier as usize],
            "version": format!("v{}", o.version),
        });
        if o.critical {
            labels["critical"] = json!("true");
        }
        let mut metadata = json!({"name": name, "uid": format!("uid-{}", o.number),
                                  "resourceVersion": self.next_rv(), "labels": labels});
        if kind.namespaced {
            metadata["namespace"] = json!(namespace_name(o.namespace as usize));
        }
        let api_version = if kind.group.is_empty() {
            kind.version.to_string()
        } else {
            format!("{}/{}", kind.group, kind.version)
        };
        json!({"apiVersion": api_version, "kind": kind.kind, "metadata": metadata})
    }

    fn policy_object(&mut self, p: usize) -> Value {
        let (seed, generation) = self.policies[p];
        let spec = policy_spec(seed, self.spec.namespaces);
        let rv = self.next_rv();
        json!({"apiVersion": "control.kubestellar.io/v1alpha1", "kind": "BindingPolicy",
               "metadata": {"name": format!("policy-{p:05}"), "uid": format!("uid-policy-{p}"),
                            "resourceVersion": rv, "generation": generation},
               "spec": spec})
    }
}

/// A policy spec drawn from `seed`: one or two cluster selectors (plus the herd's), one
/// to three downsync clauses.
fn policy_spec(seed: u64, namespaces: usize) -> Value {
    let mut rng = Rng(seed);
    let mut cluster_selectors = vec![match rng.below(5) {
        0 => json!({"matchLabels": {"region": format!("r{}", rng.below(REGIONS))}}),
        1 => json!({"matchExpressions": [{"key": "region", "operator": "In",
                    "values": [format!("r{}", rng.below(REGIONS)), format!("r{}", rng.below(REGIONS))]}]}),
        2 => json!({"matchLabels": {"env": ENVS[rng.below(ENVS.len())]},
                    "matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["cloud"]}]}),
        3 => json!({"matchExpressions": [{"key": "gpu", "operator": "Exists"}]}),
        _ => json!({"matchLabels": {"zone": format!("r{}-z{}", rng.below(REGIONS), rng.below(3))}}),
    }];
    if rng.chance(20) {
        cluster_selectors.push(json!({"matchLabels": {"tier": TIERS[rng.below(TIERS.len())]}}));
    }
    cluster_selectors.push(json!({"matchLabels": {HERD_LABEL: "yes"}}));
    let clauses = 1 + rng.below(3);
    let downsync: Vec<Value> = (0..clauses)
        .map(|_| {
            let mut clause = match rng.below(6) {
                0 => json!({"resources": ["configmaps"],
                            "objectSelectors": [{"matchLabels": {"app": format!("a{}", rng.skewed(APPS))}}]}),
                1 => json!({"apiGroup": "apps", "resources": ["deployments"],
                            "namespaceSelectors": [{"matchLabels": {"team": format!("t{}", rng.below(TEAMS))}}]}),
                2 => json!({"namespaces": [namespace_name(rng.skewed(namespaces))],
                            "objectSelectors": [{"matchExpressions": [{"key": "tier", "operator": "In",
                                                 "values": [APP_TIERS[rng.below(3)], APP_TIERS[rng.below(3)]]}]}]}),
                3 => json!({"resources": ["services", "configmaps"],
                            "objectSelectors": [{"matchLabels": {"critical": "true", "app": format!("a{}", rng.skewed(APPS))}}]}),
                4 => json!({"apiGroup": "rbac.authorization.k8s.io", "resources": ["clusterroles"],
                            "objectSelectors": [{"matchExpressions": [{"key": "version", "operator": "NotIn", "values": ["v1"]},
                                                                      {"key": "app", "operator": "In", "values": [format!("a{}", rng.skewed(APPS))]}]}]}),
                _ => json!({"resources": ["namespaces"],
                            "objectNames": [namespace_name(rng.below(namespaces))]}),
            };
            if rng.chance(20) {
                clause["createOnly"] = json!(true);
            }
            if rng.chance(10) {
                clause["statusCollectors"] = json!([format!("collector-{}", rng.below(3))]);
            }
            if rng.chance(5) {
                clause["wantMultiWECReportedState"] = json!(true);
            }
            clause
        })
        .collect();
    json!({"clusterSelectors": cluster_selectors, "downsync": downsync})
}

fn resource(space: Space, group: &str, version: &str, resource: &str) -> ResourceRef {
    ResourceRef {
        space,
        group: group.to_string(),
        version: version.to_string(),
        resource: resource.to_string(),
    }
}

fn kind_resource(kind: &Kind) -> ResourceRef {
    resource(Space::Wds, kind.group, kind.version, kind.resource)
}

/// The ITS's ManagedClusters, as a live run watches them.
fn wec_resource() -> ResourceRef {
    WatchTarget::managed_clusters().resource
}

/// The WDS's BindingPolicies, as a live run watches them.
fn policy_resource() -> ResourceRef {
    WatchTarget::binding_policies().resource
}

fn wec_name(i: usize) -> String {
    format!("wec-{i:05}")
}

fn namespace_name(n: usize) -> String {
    format!("ns-{n:04}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> GenerateSpec {
        GenerateSpec {
            wecs: 20,
            objects: 300,
            policies: 15,
            namespaces: 6,
            churn: 400,
            churn_interval_ms: 1,
            seed: 7,
        }
    }

    fn events(spec: &GenerateSpec) -> (Vec<WatchEvent>, GenerateSummary) {
        let mut all = Vec::new();
        let summary = generate_events(spec, &mut |e, _| {
            all.push(e.clone());
            Ok(())
        })
        .unwrap();
        (all, summary)
    }

    #[test]
    fn the_same_seed_gives_the_same_events_and_another_seed_others() {
        let (a, _) = events(&small());
        let (b, _) = events(&small());
        assert_eq!(a, b);
        let (c, _) = events(&GenerateSpec { seed: 8, ..small() });
        assert_ne!(a, c);
    }

    #[test]
    fn initial_lists_come_first_and_every_churn_kind_occurs() {
        let spec = small();
        let (all, summary) = events(&spec);
        assert_eq!(summary.events as usize, all.len());
        let synced = all
            .iter()
            .rposition(|e| e.event_type == EventType::Synced)
            .unwrap();
        // Initial lists: 8 resources (WECs, namespaces, 5 workload kinds, policies), each
        // RESET + objects + SYNCED.
        assert_eq!(
            synced + 1,
            spec.wecs + spec.namespaces + spec.objects + spec.policies + 16
        );
        assert_eq!(
            all.len(),
            synced + 1 + spec.churn + 2,
            "churn plus the two herds"
        );
        for kind in [
            "StatusOnly",
            "Relabel",
            "WecRelabel",
            "PolicyEdit",
            "Create",
            "Delete",
        ] {
            assert!(
                summary.churn.get(kind).is_some_and(|n| *n > 0),
                "{kind}: {summary:?}"
            );
        }
        assert_eq!(summary.churn["WecHerd"], 1);
        assert_eq!(summary.churn["PolicyHerd"], 1);
        // Timestamps never go back.
        assert!(all.windows(2).all(|w| w[0].ts <= w[1].ts));
    }

    #[test]
    fn each_event_comes_with_its_churn_kind() {
        let spec = small();
        let mut kinds = Vec::new();
        let summary = generate_events(&spec, &mut |_, kind| {
            kinds.push(kind);
            Ok(())
        })
        .unwrap();
        let initial = kinds.iter().take_while(|k| k.is_none()).count();
        assert_eq!(
            initial,
            spec.wecs + spec.namespaces + spec.objects + spec.policies + 16
        );
        let mut counted: BTreeMap<String, u64> = BTreeMap::new();
        for kind in &kinds[initial..] {
            *counted
                .entry(format!("{:?}", kind.expect("every churn event has a kind")))
                .or_default() += 1;
        }
        assert_eq!(counted, summary.churn);
        // The herds are in the middle of the churn, the WEC herd first.
        let herd = kinds
            .iter()
            .position(|k| *k == Some(ChurnKind::WecHerd))
            .unwrap();
        assert_eq!(kinds[herd + 1], Some(ChurnKind::PolicyHerd));
        assert_eq!(herd - initial, spec.churn / 2);
    }
}

//! Status return's cost per WorkStatus event, as the engine grows: does a WEC's report
//! cost the same whatever the number of Bindings and objects?
//!
//! For each N (10,000 and 100,000 objects by default): 100 WECs (`region` r0-r4, 20
//! each), N ConfigMaps in 100 namespaces (`app` app-0..app-199), 20 bulk policies each
//! selecting 10 `app` values for one region (the Bindings that grow with N), and two
//! status-return policies on 1,000 objects each (labelled `ret`, the same at every N):
//! - `singleton`: `ret=s` to WEC c0 with `wantSingletonReportedState` (1,000
//!   WorkStatuses, one per object);
//! - `collect`: `ret=c` to region r0 (20 WECs) naming two StatusCollectors, an
//!   aggregation (COUNT, SUM, MAX by `phase`) and a selection (20,000 WorkStatuses).
//!
//! It loads everything in one epoch, then times `apply` + `advance` (median and p90 of
//! `--repeats`, default 50) of: (a) one singleton object's WorkStatus changing its
//! status, (b) one collected object's WorkStatus in one WEC, (c) an empty epoch, and
//! (d) a burst of 1,000 singleton WorkStatus changes in one epoch (events per second).
//! The engine's returned statuses and CombinedStatuses are checked against the oracle
//! once after the load (at the smallest N only: the oracle is a full recomputation).
//!
//! ```text
//! cargo bench -p bindery-bench --bench status_return
//! cargo bench -p bindery-bench --bench status_return -- --objects 10000,100000 --repeats 50
//! ```

use std::time::Instant;

use anyhow::{Result, bail};
use bindery_bench::changes::{Object, labels, policy};
use bindery_bench::{cli, stats};
use bindery_engine::{
    Change, CollectorInput, Engine, ObjectKey, Oracle, WorkStatusReport, WorkloadRef, WorkloadState,
};
use serde_json::{Value, json};

const WECS: usize = 100;
const NAMESPACES: usize = 100;
const ASKING: usize = 1_000;

struct Config {
    objects: Vec<usize>,
    repeats: usize,
}

fn parse_args() -> Result<Config> {
    let mut config = Config {
        objects: vec![10_000, 100_000],
        repeats: 50,
    };
    let mut args = cli::args();
    while let Some(arg) = args.next() {
        let mut value = || {
            args.next()
                .ok_or_else(|| anyhow::anyhow!("{arg} needs a value"))
        };
        match arg.as_str() {
            "--objects" => config.objects = cli::counts(&value()?)?,
            "--repeats" => config.repeats = cli::count(&value()?)?.max(2),
            other => bail!("unknown argument {other:?} (--objects N,N --repeats R)"),
        }
    }
    Ok(config)
}

fn wec(i: usize) -> String {
    format!("c{i}")
}

/// ConfigMap `i`: `ret=s` for the first 1,000, `ret=c` for the next 1,000.
fn object(i: usize) -> Object {
    let mut l = vec![("app", format!("app-{}", i % 200))];
    if i < ASKING {
        l.push(("ret", "s".to_string()));
    } else if i < 2 * ASKING {
        l.push(("ret", "c".to_string()));
    }
    Object {
        object: WorkloadRef {
            group: String::new(),
            version: "v1".into(),
            resource: "configmaps".into(),
            namespace: format!("ns-{}", i % NAMESPACES),
            name: format!("cm-{i}"),
        },
        state: WorkloadState {
            labels: labels(&l),
            resource_version: "1".into(),
            uid: format!("uid-cm-{i}"),
            kind: "ConfigMap".into(),
        },
    }
}

/// WorkStatus of object `i` in WEC `w`, reporting `phase` and `ready`.
fn work_status(i: usize, w: usize, phase: &str, ready: i64) -> Change {
    Change::WorkStatus {
        wec: wec(w),
        name: format!("ws-cm-{i}"),
        report: Some(WorkStatusReport {
            object: ObjectKey {
                group: String::new(),
                resource: "configmaps".into(),
                namespace: format!("ns-{}", i % NAMESPACES),
                name: format!("cm-{i}"),
            },
            status: Some(json!({"phase": phase, "readyReplicas": ready})),
            last_update: Some("2026-12-07T10:00:00Z".into()),
        }),
    }
}

/// Everything, in one list: WECs, objects, policies, collectors, WorkStatuses.
fn initial(n: usize) -> Vec<Change> {
    let mut out = Vec::new();
    for w in 0..WECS {
        out.push(Change::Wec {
            name: wec(w),
            labels: Some(labels(&[
                ("region", format!("r{}", w % 5)),
                ("name", wec(w)),
            ])),
        });
    }
    for i in 0..n {
        out.push(object(i).change());
    }
    for p in 0..20 {
        let apps: Vec<String> = (0..10).map(|k| format!("app-{}", p * 10 + k)).collect();
        let spec = json!({"clusterSelectors": [{"matchLabels": {"region": format!("r{}", p % 5)}}],
                          "downsync": [{"resources": ["configmaps"], "objectSelectors": [
                              {"matchExpressions": [{"key": "app", "operator": "In", "values": apps}]}]}]});
        out.push(policy(&format!("bulk-{p}"), 1, &spec));
    }
    out.push(policy(
        "singleton",
        1,
        &json!({"clusterSelectors": [{"matchLabels": {"name": "c0"}}],
                "downsync": [{"objectSelectors": [{"matchLabels": {"ret": "s"}}],
                              "wantSingletonReportedState": true}]}),
    ));
    out.push(policy(
        "collect",
        1,
        &json!({"clusterSelectors": [{"matchLabels": {"region": "r0"}}],
                "downsync": [{"objectSelectors": [{"matchLabels": {"ret": "c"}}],
                              "statusCollectors": ["by-phase", "per-wec"]}]}),
    ));
    let collectors: [(&str, Value); 2] = [
        (
            "by-phase",
            json!({"groupBy": [{"name": "phase", "def": "returned.status.phase"}],
                   "combinedFields": [{"name": "wecs", "type": "COUNT"},
                                      {"name": "ready", "type": "SUM", "subject": "returned.status.readyReplicas"},
                                      {"name": "most", "type": "MAX", "subject": "returned.status.readyReplicas"}],
                   "limit": 20}),
        ),
        (
            "per-wec",
            json!({"select": [{"name": "wec", "def": "inventory.name"},
                              {"name": "ready", "def": "returned.status.readyReplicas"}],
                   "limit": 20}),
        ),
    ];
    for (name, spec) in collectors {
        out.push(Change::Collector {
            name: name.into(),
            collector: Some(CollectorInput {
                generation: 1,
                spec,
            }),
        });
    }
    for i in 0..ASKING {
        out.push(work_status(i, 0, "Running", 1));
    }
    for i in ASKING..2 * ASKING {
        for w in (0..WECS).filter(|w| w % 5 == 0) {
            out.push(work_status(i, w, "Running", 1));
        }
    }
    out
}

/// Times `apply` of `changes(rep)` + `advance`, `repeats` times; returns the times in
/// seconds.
fn time(engine: &mut Engine, repeats: usize, changes: impl Fn(usize) -> Vec<Change>) -> Vec<f64> {
    (0..repeats)
        .map(|rep| {
            let changes = changes(rep);
            let started = Instant::now();
            for c in &changes {
                engine.apply(c);
            }
            engine.advance();
            started.elapsed().as_secs_f64()
        })
        .collect()
}

fn micros(samples: &[f64]) -> String {
    format!(
        "{:>9.1} µs  p90 {:>9.1} µs",
        stats::median(samples) * 1e6,
        stats::quantile(samples, 0.9) * 1e6
    )
}

fn main() -> Result<()> {
    let config = parse_args()?;
    println!("status return: one WorkStatus event's cost as the objects grow (1 worker)");
    for (k, &n) in config.objects.iter().enumerate() {
        let changes = initial(n);
        let mut engine = Engine::new();
        let started = Instant::now();
        for c in &changes {
            engine.apply(c);
        }
        engine.advance();
        let load = started.elapsed().as_secs_f64();
        let sizes = engine.sizes();
        if k == 0 {
            let mut oracle = Oracle::default();
            for c in &changes {
                oracle.apply(c);
            }
            if engine.reports() != oracle.reports()
                || engine.combined_statuses() != oracle.combined_statuses()
            {
                bail!("the engine's statuses differ from the oracle's at {n} objects");
            }
        }
        let r = config.repeats;
        let phase = |rep: usize| {
            if rep.is_multiple_of(2) {
                "Pending"
            } else {
                "Running"
            }
        };
        let singleton = time(&mut engine, r, |rep| {
            vec![work_status(rep % ASKING, 0, phase(rep), (rep % 2) as i64)]
        });
        let collected = time(&mut engine, r, |rep| {
            vec![work_status(
                ASKING + rep % ASKING,
                0,
                phase(rep),
                (rep % 2) as i64,
            )]
        });
        let empty = time(&mut engine, r, |_| Vec::new());
        let bursts = time(&mut engine, 5, |rep| {
            (0..ASKING)
                .map(|i| work_status(i, 0, phase(rep), rep as i64))
                .collect()
        });
        println!(
            "\n{n} objects: {} Binding entries, {} WorkStatuses, {} returned statuses, {} CombinedStatuses; load {:.2} s",
            sizes.workload_entries,
            sizes.work_statuses,
            sizes.reports,
            sizes.combined_statuses,
            load
        );
        println!(
            "  (a) a singleton object's report      {}",
            micros(&singleton)
        );
        println!(
            "  (b) a collected object's report      {}",
            micros(&collected)
        );
        println!("  (c) an empty epoch                   {}", micros(&empty));
        println!(
            "  (d) 1,000 reports in one epoch       {:>9.1} ms  ({:.0} events/s)",
            stats::median(&bursts) * 1e3,
            ASKING as f64 / stats::median(&bursts)
        );
    }
    Ok(())
}

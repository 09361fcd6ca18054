//! Memory of large selectors: does a policy's cost in memory grow linearly with its
//! size, whatever kind of selector holds a long `In` list?
//!
//! Each case runs in a child process of its own (the peak RSS, `VmHWM`, is
//! process-wide): a small state (100 WECs labelled `name=wec-<i>`, 100 Namespaces
//! labelled `team=team-<i>`, 1,000 ConfigMaps labelled `app=app-<i mod 100>`) is loaded
//! in one epoch, then one policy whose selector has an `In` list of V values (`wec-0`..,
//! `team-0`.., `app-0`..; the first 100 match) is added, edited (its generation and
//! `createOnly` change, the selector does not) and deleted, one epoch each. Cases:
//! - `cluster`: the list is in a `clusterSelectors` entry;
//! - `namespace`: in a clause's `namespaceSelectors` (the clause has no other test);
//! - `object`: in a clause's `objectSelectors`;
//! - `names`: the clause's `objectNames` lists V names instead (no selector);
//! - `none`: no policy at all, for the baseline.
//!
//! Reported per case: the time of each of the three epochs, the RSS before the policy and
//! the peak RSS over the run (`/proc/self/status`). Each child checks the engine against
//! the oracle after adding the policy (and exits with status 1 if they disagree).
//!
//! ```text
//! cargo bench -p bindery-bench --bench big_selectors                  # V = 20,000
//! cargo bench -p bindery-bench --bench big_selectors -- --values 20000,100000
//! cargo bench -p bindery-bench --bench big_selectors -- --case cluster --values 20000
//! ```

use std::time::{Duration, Instant};

use bindery_bench::changes::{self, labels};
use bindery_bench::{cli, fmt, memory};
use bindery_engine::{Change, Engine, LabelMap, Oracle, WorkloadRef, WorkloadState};
use serde_json::{Value, json};

const WECS: usize = 100;
const NAMESPACES: usize = 100;
const OBJECTS: usize = 1_000;
const CASES: &[&str] = &["none", "cluster", "namespace", "object", "names"];

fn object(resource: &str, namespace: &str, name: String, labels: LabelMap) -> Change {
    Change::Workload {
        object: WorkloadRef {
            group: String::new(),
            version: "v1".into(),
            resource: resource.into(),
            namespace: namespace.into(),
            name,
        },
        state: Some(WorkloadState {
            labels,
            resource_version: "1".into(),
            ..Default::default()
        }),
    }
}

fn state() -> Vec<Change> {
    let mut out = Vec::new();
    for i in 0..WECS {
        out.push(Change::Wec {
            name: format!("wec-{i}"),
            labels: Some(labels(&[("name", format!("wec-{i}"))])),
        });
    }
    for i in 0..NAMESPACES {
        out.push(object(
            "namespaces",
            "",
            format!("ns-{i}"),
            labels(&[("team", format!("team-{i}"))]),
        ));
    }
    for i in 0..OBJECTS {
        out.push(object(
            "configmaps",
            &format!("ns-{}", i % NAMESPACES),
            format!("cm-{i}"),
            labels(&[("app", format!("app-{}", i % 100))]),
        ));
    }
    out
}

fn in_list(key: &str, prefix: &str, values: usize) -> Value {
    let values: Vec<String> = (0..values).map(|i| format!("{prefix}-{i}")).collect();
    json!({"matchExpressions": [{"key": key, "operator": "In", "values": values}]})
}

fn policy_spec(case: &str, values: usize, create_only: bool) -> Value {
    let all_wecs = json!([{"matchExpressions": [{"key": "name", "operator": "Exists"}]}]);
    match case {
        "cluster" => json!({
            "clusterSelectors": [in_list("name", "wec", values)],
            "downsync": [{"resources": ["configmaps"], "createOnly": create_only}]
        }),
        "namespace" => json!({
            "clusterSelectors": all_wecs,
            "downsync": [{"namespaceSelectors": [in_list("team", "team", values)], "createOnly": create_only}]
        }),
        "object" => json!({
            "clusterSelectors": all_wecs,
            "downsync": [{"objectSelectors": [in_list("app", "app", values)], "createOnly": create_only}]
        }),
        "names" => {
            let names: Vec<String> = (0..values).map(|i| format!("cm-{i}")).collect();
            json!({
                "clusterSelectors": all_wecs,
                "downsync": [{"objectNames": names, "createOnly": create_only}]
            })
        }
        other => panic!("unknown case {other:?}"),
    }
}

fn policy(case: &str, values: usize, generation: i64) -> Change {
    let spec = policy_spec(case, values, generation > 1);
    changes::policy("big", generation, &spec)
}

/// One case, in this process: prints one tab-separated result line on stdout.
fn child(case: &str, values: usize) {
    let mut engine = Engine::new();
    let mut oracle = Oracle::default();
    for c in state() {
        engine.apply(&c);
        oracle.apply(&c);
    }
    engine.advance();
    let rss_before = memory::rss_kb().unwrap_or(0);
    let mut times = [Duration::ZERO; 3];
    let mut agrees = true;
    if case != "none" {
        let steps = [
            policy(case, values, 1),
            policy(case, values, 2),
            Change::Policy {
                name: "big".into(),
                policy: None,
            },
        ];
        for (i, step) in steps.iter().enumerate() {
            let start = Instant::now();
            engine.apply(step);
            engine.advance();
            times[i] = start.elapsed();
            if i == 0 {
                oracle.apply(step);
                let want: Vec<Value> = oracle.bindings().iter().map(|b| b.to_json()).collect();
                let got: Vec<Value> = engine.bindings().iter().map(|b| b.to_json()).collect();
                agrees = want == got && !got.is_empty();
                let entries = got[0]["spec"]["workload"]["namespaceScope"]
                    .as_array()
                    .map_or(0, Vec::len);
                let dests = got[0]["spec"]["destinations"]
                    .as_array()
                    .map_or(0, Vec::len);
                eprintln!("  {case}: {dests} destinations, {entries} workload entries");
            }
        }
    }
    let hwm = memory::peak_rss_kb().unwrap_or(0);
    println!(
        "{case}\t{values}\t{}\t{}\t{}\t{rss_before}\t{hwm}\t{agrees}",
        times[0].as_micros(),
        times[1].as_micros(),
        times[2].as_micros(),
    );
    if !agrees {
        std::process::exit(1);
    }
}

fn main() {
    let mut values = vec![20_000];
    let mut case: Option<String> = None;
    let mut args = cli::args();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--values" => {
                let list = args.next().expect("--values N[,N...]");
                values = cli::counts(&list).expect("--values N[,N...]");
            }
            "--case" => case = Some(args.next().expect("--case NAME")),
            other => eprintln!("ignoring unknown argument {other:?}"),
        }
    }
    if let Some(case) = case {
        for v in values {
            child(&case, v);
        }
        return;
    }
    println!(
        "| selector with an `In` list of V values | V | add policy | edit policy | delete policy | RSS before the policy | peak RSS (VmHWM) | engine = oracle |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    let exe = std::env::current_exe().expect("current exe");
    let mut ok = true;
    for &v in &values {
        for &c in CASES {
            if c == "none" && v != values[0] {
                continue;
            }
            eprintln!("running {c} with {v} values...");
            let out = std::process::Command::new(&exe)
                .args(["--case", c, "--values", &v.to_string()])
                .stderr(std::process::Stdio::inherit())
                .output()
                .expect("run the case");
            ok &= out.status.success();
            let line = String::from_utf8_lossy(&out.stdout);
            let f: Vec<&str> = line.trim().split('\t').collect();
            if f.len() != 8 {
                println!("| {c} | {v} | failed: {} | | | | | |", out.status);
                continue;
            }
            let t = |i: usize| fmt::duration(Duration::from_micros(f[i].parse().unwrap_or(0)));
            let kb = |i: usize| fmt::mib(f[i].parse().unwrap_or(0));
            let (add, edit, del) = if c == "none" {
                ("".into(), "".into(), "".into())
            } else {
                (t(2), t(3), t(4))
            };
            println!(
                "| {c} | {v} | {add} | {edit} | {del} | {} | {} | {} |",
                kb(5),
                kb(6),
                if f[7] == "true" { "yes" } else { "NO" }
            );
        }
    }
    if !ok {
        std::process::exit(1);
    }
}

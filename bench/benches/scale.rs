//! Scale benchmark: replay of `bindery generate` logs at 10k, 100k and 1M objects, with
//! the latency of each kind of change measured apart.
//!
//! For each number of objects N, timely workers W and processes P, a child process
//! of this bench (so that its peak RSS is its own):
//! 1. generates the log of `bindery generate --objects N --churn C` (the defaults: 100
//!    WECs, 50 policies, one namespace per 200 objects) into a temporary file, noting
//!    the [`ChurnKind`] of every churn event;
//! 2. loads the initial lists as `bindery replay` does (read, JSON-parsed, through the
//!    relist tracker into the engine: [`Pipeline`]) and closes one epoch: the initial
//!    load, in events/s, parsing included;
//! 3. replays the churn one event per epoch, timing each (read, parse, push and close)
//!    and counting the Binding entries it changed (destinations and workload entries,
//!    added plus removed: the output volume);
//! 4. times empty epochs on the final state (the fixed cost of an epoch);
//! 5. copies the final input state into the [`Oracle`](bindery_engine::Oracle), times
//!    its full recompute and checks that it gives the engine's Bindings.
//!
//! The parent prints, per run, a Markdown table of p50/p99/max/mean per kind of change,
//! the ratio of the oracle's full recompute to the p50, the load rate, peak RSS and the
//! bytes per workload object and per (object + Binding entry). It exits with status 1
//! if the engine and the oracle disagree in any run.
//!
//! ```text
//! cargo bench -p bindery-bench --bench scale
//! cargo bench -p bindery-bench --bench scale -- --objects 10000,100000,1000000 --churn 20000 --workers 1,2
//! cargo bench -p bindery-bench --bench scale -- --objects 100000 --processes 1,2   # 2: timely cluster on loopback
//! ```
//!
//! With `--processes 2`, process 0 (the child run) feeds the engine and a second child
//! (`--serve-peer`) serves its dataflow over a loopback socket; its peak RSS is printed
//! apart.
//!
//! Progress goes to stderr, the tables to stdout.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use bindery::{ChurnKind, GenerateSpec, Pipeline, ProcessPlan, Topology, generate_events};
use bindery_bench::changes::entries_changed;
use bindery_bench::{cli, fmt, memory, stats};
use bindery_ingest::watchlog::{LogReader, LogWriter};
use serde::{Deserialize, Serialize};

// As the `bindery` binary.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Empty epochs timed on the final state.
const EMPTY_EPOCHS: usize = 200;

/// What one run measured.
#[derive(Debug, Serialize, Deserialize)]
struct RunResult {
    objects: usize,
    /// Workers in each process.
    workers: usize,
    processes: usize,
    /// Peak RSS of each process but the first.
    peer_hwm_kb: Vec<u64>,
    churn: usize,
    initial_events: usize,
    log_bytes: u64,
    load_seconds: f64,
    /// Per kind of change: (kind, every epoch's seconds, every epoch's entries changed).
    kinds: Vec<KindResult>,
    empty_epoch_seconds: Vec<f64>,
    churn_seconds: f64,
    rss_before_kb: u64,
    rss_after_load_kb: u64,
    hwm_after_load_kb: u64,
    rss_end_kb: u64,
    hwm_end_kb: u64,
    workload_objects: usize,
    workload_entries_after_load: usize,
    workload_entries: usize,
    destinations: usize,
    oracle_seconds: f64,
    oracle_agrees: bool,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct KindResult {
    kind: String,
    seconds: Vec<f64>,
    entries: Vec<usize>,
}

/// Process 0's pipeline on `workers` workers in each of `processes` processes: with
/// several, the others are children of this one (`--serve-peer`) on loopback ports.
fn start_engine(workers: usize, processes: usize, dir: &Path) -> Result<(Pipeline, Vec<Child>)> {
    if processes == 1 {
        return Ok((Pipeline::with_workers(workers), Vec::new()));
    }
    let hosts_path = dir.join(format!("scale-hosts-{}", std::process::id()));
    let hosts: Vec<String> = (0..processes)
        .map(|_| {
            let port = std::net::TcpListener::bind("127.0.0.1:0")?
                .local_addr()?
                .port();
            Ok(format!("127.0.0.1:{port}"))
        })
        .collect::<Result<_>>()?;
    std::fs::write(&hosts_path, hosts.join("\n"))?;
    let exe = std::env::current_exe()?;
    let peers = (1..processes)
        .map(|i| {
            Command::new(&exe)
                .args(["--serve-peer", &hosts_path.display().to_string()])
                .args([
                    "--process-index",
                    &i.to_string(),
                    "--workers",
                    &workers.to_string(),
                ])
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .context("starting a peer process")
        })
        .collect::<Result<Vec<_>>>()?;
    let topology = Topology {
        workers,
        processes: Some(ProcessPlan { process: 0, hosts }),
    };
    Ok((topology.pipeline()?, peers))
}

/// Serves process 0's dataflow as process `index` (`--serve-peer HOSTS`); prints this
/// process's peak RSS in KiB at the end.
fn serve_peer(hosts: &Path, index: usize, workers: usize) -> Result<()> {
    let hosts: Vec<String> = std::fs::read_to_string(hosts)?
        .lines()
        .map(String::from)
        .collect();
    let peer = Topology {
        workers,
        processes: Some(ProcessPlan {
            process: index,
            hosts,
        }),
    };
    ensure!(peer.serve_if_peer()?, "--process-index must be 1 or more");
    println!("{}", memory::peak_rss_kb().unwrap_or(0));
    Ok(())
}

/// One run, in this process (and, with several processes, its children).
fn run(
    objects: usize,
    workers: usize,
    processes: usize,
    churn: usize,
    dir: &Path,
) -> Result<RunResult> {
    let spec = GenerateSpec {
        wecs: 100,
        objects,
        policies: 50,
        namespaces: objects.div_ceil(200).max(1),
        churn,
        churn_interval_ms: 1,
        seed: 1,
    };
    let path = dir.join(format!("scale-{objects}.jsonl"));
    eprintln!(
        "[{objects} objects, {workers} workers] generating {}",
        path.display()
    );
    let mut kinds: Vec<Option<ChurnKind>> = Vec::new();
    {
        let mut writer = LogWriter::create(&path, Default::default())?;
        generate_events(&spec, &mut |event, kind| {
            kinds.push(kind);
            writer.write_event(event)?;
            Ok(())
        })?;
        writer.finish()?;
    }
    let log_bytes = std::fs::metadata(&path)?.len();
    let initial = kinds.iter().take_while(|k| k.is_none()).count();

    let rss_before_kb = memory::rss_kb().unwrap_or(0);
    let mut reader = LogReader::open(&path)?;
    let (mut pipeline, peers) = start_engine(workers, processes, dir)?;
    eprintln!("[{objects} objects, {workers} workers] loading {initial} events");
    let started = Instant::now();
    for _ in 0..initial {
        let line = reader
            .next()
            .context("the log ends in its initial lists")??;
        pipeline.push(line.event)?;
    }
    ensure!(
        pipeline.publishable(),
        "every resource synced after the initial lists"
    );
    pipeline.close_epoch();
    let load_seconds = started.elapsed().as_secs_f64();
    let rss_after_load_kb = memory::rss_kb().unwrap_or(0);
    let hwm_after_load_kb = memory::peak_rss_kb().unwrap_or(0);
    let workload_entries_after_load = pipeline.engine().sizes().workload_entries;

    let mut by_kind: BTreeMap<String, KindResult> = BTreeMap::new();
    let churn_started = Instant::now();
    let mut last_report = Instant::now();
    for (i, kind) in kinds[initial..].iter().enumerate() {
        let kind = format!("{:?}", kind.context("a churn event without a kind")?);
        let t = Instant::now();
        let line = reader.next().context("the log ends early")??;
        pipeline.push(line.event)?;
        let out = pipeline.close_epoch();
        let dt = t.elapsed().as_secs_f64();
        let k = by_kind.entry(kind.clone()).or_default();
        k.kind = kind;
        k.seconds.push(dt);
        k.entries.push(entries_changed(&out));
        if last_report.elapsed() > Duration::from_secs(10) {
            last_report = Instant::now();
            eprintln!(
                "[{objects} objects, {workers} workers] churn {}/{} events, {:.0} s",
                i + 1,
                kinds.len() - initial,
                churn_started.elapsed().as_secs_f64()
            );
        }
    }
    let churn_seconds = churn_started.elapsed().as_secs_f64();
    ensure!(
        reader.next().is_none(),
        "the log has more events than generated"
    );
    let mut empty_epoch_seconds = Vec::with_capacity(EMPTY_EPOCHS);
    for _ in 0..EMPTY_EPOCHS {
        let t = Instant::now();
        pipeline.close_epoch();
        empty_epoch_seconds.push(t.elapsed().as_secs_f64());
    }
    let rss_end_kb = memory::rss_kb().unwrap_or(0);
    let hwm_end_kb = memory::peak_rss_kb().unwrap_or(0);
    let sizes = pipeline.engine().sizes();

    eprintln!("[{objects} objects, {workers} workers] full recompute on the oracle");
    let oracle = pipeline.engine().to_oracle();
    let t = Instant::now();
    let expected = oracle.bindings();
    let oracle_seconds = t.elapsed().as_secs_f64();
    let oracle_agrees = expected == pipeline.engine().bindings();
    std::fs::remove_file(&path)?;
    // The dataflow ends with process 0's engine: then the peers tell their peak RSS.
    drop(pipeline);
    let peer_hwm_kb = peers
        .into_iter()
        .map(|peer| {
            let out = peer.wait_with_output()?;
            ensure!(out.status.success(), "a peer process failed");
            Ok(String::from_utf8_lossy(&out.stdout).trim().parse()?)
        })
        .collect::<Result<_>>()?;
    Ok(RunResult {
        objects,
        workers,
        processes,
        peer_hwm_kb,
        churn,
        initial_events: initial,
        log_bytes,
        load_seconds,
        kinds: by_kind.into_values().collect(),
        empty_epoch_seconds,
        churn_seconds,
        rss_before_kb,
        rss_after_load_kb,
        hwm_after_load_kb,
        rss_end_kb,
        hwm_end_kb,
        workload_objects: sizes.objects,
        workload_entries_after_load,
        workload_entries: sizes.workload_entries,
        destinations: sizes.destinations,
        oracle_seconds,
        oracle_agrees,
    })
}

fn mean(seconds: &[f64]) -> f64 {
    seconds.iter().sum::<f64>() / seconds.len() as f64
}

/// The cells of a row of timings (seconds): how many, p50, p99, max and mean.
fn latency_cells(seconds: &[f64]) -> String {
    format!(
        "{} | {} | {} | {} | {}",
        seconds.len(),
        fmt::seconds(stats::median(seconds)),
        fmt::seconds(stats::quantile(seconds, 0.99)),
        fmt::seconds(stats::quantile(seconds, 1.0)),
        fmt::seconds(mean(seconds)),
    )
}

fn print_run(r: &RunResult) {
    println!(
        "### {} objects, {} worker{}{}\n",
        r.objects,
        r.workers,
        if r.workers == 1 { "" } else { "s" },
        if r.processes > 1 {
            format!(" in each of {} processes (loopback)", r.processes)
        } else {
            String::new()
        }
    );
    println!(
        "Load: {} events ({:.1} MB of log) in {}: {:.0} events/s, JSON parsing included.",
        r.initial_events,
        r.log_bytes as f64 / 1e6,
        fmt::seconds(r.load_seconds),
        r.initial_events as f64 / r.load_seconds
    );
    println!(
        "Churn: {} events, one epoch each, in {} ({} per event on average).\n",
        r.kinds.iter().map(|k| k.seconds.len()).sum::<usize>(),
        fmt::seconds(r.churn_seconds),
        fmt::seconds(r.churn_seconds / r.churn.max(1) as f64)
    );
    println!(
        "| change | events | p50 | p99 | max | mean | entries changed (median, max) | oracle full recompute / p50 |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- |");
    for k in &r.kinds {
        println!(
            "| {} | {} | {}, {} | {:.0}× |",
            k.kind,
            latency_cells(&k.seconds),
            stats::median(&k.entries),
            stats::quantile(&k.entries, 1.0),
            r.oracle_seconds / stats::median(&k.seconds)
        );
    }
    println!(
        "| empty epoch (final state) | {} | 0, 0 | {:.0}× |",
        latency_cells(&r.empty_epoch_seconds),
        r.oracle_seconds / stats::median(&r.empty_epoch_seconds)
    );
    let per = |kb: u64, n: usize| kb as f64 * 1024.0 / n.max(1) as f64;
    let grown_load = r.rss_after_load_kb.saturating_sub(r.rss_before_kb);
    println!();
    println!(
        "Memory: RSS {} before the load, {} after it (peak {}), {} at the end (peak {}).",
        fmt::mib(r.rss_before_kb),
        fmt::mib(r.rss_after_load_kb),
        fmt::mib(r.hwm_after_load_kb),
        fmt::mib(r.rss_end_kb),
        fmt::mib(r.hwm_end_kb)
    );
    println!(
        "After the load: {} workload objects, {} Binding workload entries; RSS grown by the load {:.0} B per object, {:.0} B per (object + entry); peak RSS {:.0} B per (object + entry).",
        r.workload_objects,
        r.workload_entries_after_load,
        per(grown_load, r.workload_objects),
        per(
            grown_load,
            r.workload_objects + r.workload_entries_after_load
        ),
        per(
            r.hwm_after_load_kb,
            r.workload_objects + r.workload_entries_after_load
        ),
    );
    println!(
        "At the end: {} Binding workload entries (the policy herd added one per object), {} destinations; peak RSS {:.0} B per (object + entry).",
        r.workload_entries,
        r.destinations,
        per(r.hwm_end_kb, r.workload_objects + r.workload_entries)
    );
    if !r.peer_hwm_kb.is_empty() {
        println!(
            "Peak RSS of the other processes: {}.",
            r.peer_hwm_kb
                .iter()
                .map(|&kb| fmt::mib(kb))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    println!(
        "Oracle full recompute: {}; the engine's Bindings {} the oracle's.\n",
        fmt::seconds(r.oracle_seconds),
        if r.oracle_agrees {
            "equal"
        } else {
            "DIFFER FROM"
        }
    );
}

/// The counts of option `what`, whose value is `arg`.
fn list(arg: Option<String>, what: &str) -> Result<Vec<usize>> {
    let arg = arg.with_context(|| format!("{what} needs a value"))?;
    cli::counts(&arg).with_context(|| format!("{what} {arg}"))
}

fn main() -> Result<()> {
    let mut objects = vec![10_000, 100_000];
    let mut workers = vec![1];
    let mut processes = vec![1];
    let mut churn = 20_000;
    let mut child = false;
    let mut serve: Option<String> = None;
    let mut index = 0;
    let mut args = cli::args();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--objects" => objects = list(args.next(), "--objects")?,
            "--workers" => workers = list(args.next(), "--workers")?,
            "--churn" => churn = list(args.next(), "--churn")?[0],
            "--processes" => processes = list(args.next(), "--processes")?,
            "--child" => child = true,
            "--serve-peer" => serve = args.next(),
            "--process-index" => index = list(args.next(), "--process-index")?[0],
            other => bail!("unknown argument {other:?}"),
        }
    }
    let dir = std::env::temp_dir();
    if let Some(hosts) = serve {
        return serve_peer(Path::new(&hosts), index, workers[0]);
    }
    if child {
        let r = run(objects[0], workers[0], processes[0], churn, &dir)?;
        println!("{}", serde_json::to_string(&r)?);
        return Ok(());
    }
    let exe = std::env::current_exe()?;
    println!("## Scale: replay of generated logs, per kind of change\n");
    println!(
        "`cargo bench -p bindery-bench --bench scale -- --objects {} --churn {churn} --workers {} --processes {}`; {} cores; each run in a process of its own.\n",
        objects
            .iter()
            .map(usize::to_string)
            .collect::<Vec<_>>()
            .join(","),
        workers
            .iter()
            .map(usize::to_string)
            .collect::<Vec<_>>()
            .join(","),
        processes
            .iter()
            .map(usize::to_string)
            .collect::<Vec<_>>()
            .join(","),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let mut all_agree = true;
    let mut results = Vec::new();
    for &n in &objects {
        for (w, p) in workers
            .iter()
            .flat_map(|&w| processes.iter().map(move |&p| (w, p)))
        {
            let out = Command::new(&exe)
                .args([
                    "--child",
                    "--objects",
                    &n.to_string(),
                    "--workers",
                    &w.to_string(),
                    "--processes",
                    &p.to_string(),
                    "--churn",
                    &churn.to_string(),
                ])
                .stderr(Stdio::inherit())
                .output()
                .context("running a child run")?;
            ensure!(
                out.status.success(),
                "the run at {n} objects on {w} workers × {p} processes failed"
            );
            let r: RunResult = serde_json::from_slice(&out.stdout)?;
            all_agree &= r.oracle_agrees;
            print_run(&r);
            results.push(r);
        }
    }
    if results.len() > 1 {
        println!("### p50 per kind of change, across runs\n");
        let header: Vec<String> = results
            .iter()
            .map(|r| format!("{} objects, {}w × {}p", r.objects, r.workers, r.processes))
            .collect();
        println!("| change | {} |", header.join(" | "));
        println!("| --- |{}", " --- |".repeat(results.len()));
        let mut kinds: Vec<String> = results[0].kinds.iter().map(|k| k.kind.clone()).collect();
        kinds.push("empty epoch".into());
        for kind in kinds {
            let cells: Vec<String> = results
                .iter()
                .map(|r| {
                    let seconds = if kind == "empty epoch" {
                        Some(&r.empty_epoch_seconds)
                    } else {
                        r.kinds.iter().find(|k| k.kind == kind).map(|k| &k.seconds)
                    };
                    seconds.map_or("-".into(), |s| fmt::seconds(stats::median(s)))
                })
                .collect();
            println!("| {kind} | {} |", cells.join(" | "));
        }
        println!();
    }
    if !all_agree {
        bail!("the engine and the oracle disagree in at least one run");
    }
    Ok(())
}

//! The initial load of a generated log, phase by phase: where the time to the first
//! publish goes (BENCHMARKS.md, "Load, phase by phase").
//!
//! For each number of objects N, the log of `bindery generate --objects N --churn 0`
//! (100 WECs, 50 policies, one namespace per 200 objects) is written in two forms,
//! both with one millisecond between events (as a recording of a real list has):
//! - `RESET first`: every resource's `RESET` at the top, as `bindery run --record`
//!   writes it (no epoch closes before every resource has synced);
//! - `as listed`: each resource's `RESET` just before its list, as tools that list one
//!   resource after the other write it (the view is complete after the first list; each
//!   later event is an epoch of its own whose change is held back until its resource
//!   syncs).
//!
//! Each phase runs in a child process of its own (its peak RSS is its own), reading the
//! log from disk, cumulatively:
//! - `parse`: the log reader (lines, JSON);
//! - `track`: + the relist tracker and the feed (`Change`s, applied nowhere);
//! - `apply`: + the engine's input (`Engine::apply`), no epoch closed;
//! - `load`: + epochs closed as `bindery replay` closes them (window 0), to the first
//!   publish: the load as `replay` does it, on one thread;
//! - `load, read ahead`: the same with the log read and parsed on a thread of its own
//!   (`LogReader::read_ahead`), as `replay`, `history` and `explain` read logs;
//! - `arrangements` (not run unless asked for): the read-ahead load on an engine whose
//!   arrangements are measured (`Engine::with_arrangement_log`; its time includes
//!   timely's logging), and a table of the updates each arrangement holds after the
//!   first publish and at most.
//!
//! ```text
//! cargo bench -p bindery-bench --bench load -- [--objects 200k,1M] [--phases parse,track,apply,load,ahead,arrangements]
//! ```

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail, ensure};
use bindery::bench_hooks::{Loader, Target};
use bindery::{GenerateSpec, Pipeline, generate_events};
use bindery_bench::cli::{args, counts};
use bindery_bench::{fmt, memory};
use bindery_engine::{ArrangementSize, Change, Engine, PolicyInput};
use bindery_ingest::watchlog::{LogReader, LogWriter};
use bindery_ingest::{EventType, WatchEvent};
use serde::{Deserialize, Serialize};

// As the `bindery` binary.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const PHASES: [&str; 5] = ["parse", "track", "apply", "load", "ahead"];

/// The phase that measures the arrangements (asked for by name).
const ARRANGEMENTS: &str = "arrangements";

/// What one phase measured, in its own process.
#[derive(Debug, Serialize, Deserialize)]
struct PhaseResult {
    events: u64,
    epochs: u64,
    seconds: f64,
    rss_kb: u64,
    hwm_kb: u64,
    /// What each arrangement holds after the first publish (phase `arrangements`).
    #[serde(default)]
    arrangements: Vec<ArrangementSize>,
}

/// A target that only counts the changes it is told: the tracker's and feed's cost.
#[derive(Default)]
struct Count(u64);

impl Target for Count {
    fn apply(&mut self, _change: &Change) {
        self.0 += 1;
    }
    fn policy(&self, _name: &str) -> Option<&PolicyInput> {
        None
    }
}

/// Runs `phase` on `log` in this process.
fn run_phase(phase: &str, log: &Path) -> Result<PhaseResult> {
    let started = Instant::now();
    let mut events = 0u64;
    let mut epochs = 0u64;
    let mut arrangements = Vec::new();
    match phase {
        "parse" => {
            for line in LogReader::open(log)? {
                std::hint::black_box(line?);
                events += 1;
            }
        }
        "track" => {
            let mut loader = Loader::new(Count::default());
            for line in LogReader::open(log)? {
                loader.push(line?.event)?;
                events += 1;
            }
            std::hint::black_box(loader.target().0);
        }
        "apply" => {
            let mut pipeline = Pipeline::new();
            for line in LogReader::open(log)? {
                pipeline.push(line?.event)?;
                events += 1;
            }
            std::hint::black_box(pipeline.pending());
        }
        "load" | "ahead" | ARRANGEMENTS => {
            let lines: Box<dyn Iterator<Item = _>> = if phase == "load" {
                Box::new(LogReader::open(log)?)
            } else {
                Box::new(LogReader::open(log)?.read_ahead())
            };
            let mut pipeline = if phase == ARRANGEMENTS {
                Pipeline::with_engine(Engine::with_arrangement_log(1))
            } else {
                Pipeline::new()
            };
            let mut epoch_start = None;
            for line in lines {
                let event = line?.event;
                if pipeline.closes_before(epoch_start, event.ts, 0) {
                    pipeline.close_epoch();
                    epochs += 1;
                    epoch_start = None;
                }
                epoch_start.get_or_insert(event.ts);
                pipeline.push(event)?;
                events += 1;
            }
            ensure!(pipeline.publishable(), "the log's lists are complete");
            pipeline.close_epoch();
            epochs += 1;
            ensure!(
                pipeline.engine().bindings().len() == 50,
                "every policy has its Binding"
            );
            arrangements = pipeline.engine().arrangement_sizes();
            // Left to the process's exit: a heap profiler (heaptrack) then reports the
            // state after the load as not freed, by where it was allocated.
            std::mem::forget(pipeline);
        }
        other => bail!("unknown phase {other:?} (one of {PHASES:?}, or {ARRANGEMENTS:?})"),
    }
    Ok(PhaseResult {
        events,
        epochs,
        seconds: started.elapsed().as_secs_f64(),
        rss_kb: memory::rss_kb().unwrap_or(0),
        hwm_kb: memory::peak_rss_kb().unwrap_or(0),
        arrangements,
    })
}

/// Writes the initial lists of `objects` generated objects to `path`, one millisecond
/// apart, with every `RESET` first or each before its list.
fn write_log(objects: usize, resets_first: bool, path: &Path) -> Result<()> {
    let spec = GenerateSpec {
        wecs: 100,
        objects,
        policies: 50,
        namespaces: objects.div_ceil(200).max(1),
        churn: 0,
        churn_interval_ms: 1,
        seed: 1,
    };
    // Two passes over the seeded generator (the same events each time), so that only
    // the `RESET`s are held in memory.
    let mut resets: Vec<WatchEvent> = Vec::new();
    if resets_first {
        generate_events(&spec, &mut |event, _| {
            if event.event_type == EventType::Reset {
                resets.push(event.clone());
            }
            Ok(())
        })?;
    }
    let mut writer = LogWriter::create(path, Default::default())?;
    let mut n = 0i64;
    let mut write = |event: &WatchEvent, base: i64| -> Result<()> {
        let mut event = event.clone();
        event.ts = base + n;
        writer.write_event(&event)?;
        n += 1;
        Ok(())
    };
    let base = resets.first().map_or(0, |e| e.ts);
    for event in &resets {
        write(event, base)?;
    }
    generate_events(&spec, &mut |event, _| {
        if resets_first && event.event_type == EventType::Reset {
            return Ok(());
        }
        write(event, if resets_first { base } else { event.ts })
    })?;
    writer.finish()?;
    Ok(())
}

fn main() -> Result<()> {
    let mut objects = vec![200_000];
    let mut phases: Vec<String> = PHASES.iter().map(ToString::to_string).collect();
    let mut child: Option<(String, PathBuf)> = None;
    let mut it = args();
    while let Some(arg) = it.next() {
        let mut value = || it.next().with_context(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--objects" => objects = counts(&value()?)?,
            "--phases" => phases = value()?.split(',').map(String::from).collect(),
            "--child" => child = Some((value()?, PathBuf::from(value()?))),
            other => bail!("unknown option {other:?} (--objects N,..., --phases P,...)"),
        }
    }
    if let Some((phase, log)) = child {
        println!("{}", serde_json::to_string(&run_phase(&phase, &log)?)?);
        return Ok(());
    }
    let exe = std::env::current_exe()?;
    println!(
        "## Load, phase by phase\n\n`cargo bench -p bindery-bench --bench load -- --objects {}`; {} cores; each phase in a process of its own, cumulative.\n",
        objects
            .iter()
            .map(usize::to_string)
            .collect::<Vec<_>>()
            .join(","),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!(
        "| objects | log | phase | events | epochs | time | events/s | RSS after | peak RSS | peak B per object |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    let mut measured = Vec::new();
    for &n in &objects {
        for (form, resets_first) in [("RESET first", true), ("as listed", false)] {
            let path = std::env::temp_dir().join(format!(
                "load-{n}-{}-{}.jsonl",
                if resets_first { "resets" } else { "listed" },
                std::process::id()
            ));
            eprintln!("[{n} objects, {form}] writing {}", path.display());
            write_log(n, resets_first, &path)?;
            for phase in &phases {
                eprintln!("[{n} objects, {form}] {phase}");
                let out = Command::new(&exe)
                    .args(["--child", phase, &path.display().to_string()])
                    .output()
                    .context("running a phase")?;
                ensure!(
                    out.status.success(),
                    "phase {phase} failed: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
                let r: PhaseResult = serde_json::from_slice(&out.stdout)?;
                let name = if phase == "ahead" {
                    "load, read ahead"
                } else {
                    phase.as_str()
                };
                println!(
                    "| {n} | {form} | {name} | {} | {} | {} | {:.0} | {} | {} | {:.0} |",
                    r.events,
                    r.epochs,
                    fmt::seconds(r.seconds),
                    r.events as f64 / r.seconds,
                    fmt::mib(r.rss_kb),
                    fmt::mib(r.hwm_kb),
                    r.hwm_kb as f64 * 1024.0 / n as f64
                );
                if !r.arrangements.is_empty() {
                    measured.push((n, form, r.arrangements));
                }
            }
            std::fs::remove_file(&path)?;
        }
    }
    for (n, form, sizes) in measured {
        print_arrangements(n, form, &sizes);
    }
    Ok(())
}

/// The table of what each arrangement holds after the load of `n` objects.
fn print_arrangements(n: usize, form: &str, sizes: &[ArrangementSize]) {
    println!(
        "\n### Arrangements after the first publish, {n} objects, {form}\n\nOperators in the order the dataflow builds them (`engine/src/dataflow.rs`); updates summed over the workers.\n"
    );
    println!("| operator | name | updates | per object | most at once | most in its batcher |");
    println!("| --- | --- | --- | --- | --- | --- |");
    let per = |records: usize| records as f64 / n as f64;
    for s in sizes {
        println!(
            "| {} | {} | {} | {:.2} | {} | {} |",
            s.operator,
            s.name,
            s.records,
            per(s.records),
            s.peak_records,
            s.peak_batcher_records
        );
    }
    let total: usize = sizes.iter().map(|s| s.records).sum();
    let peak: usize = sizes.iter().map(|s| s.peak_records).sum();
    let batched: usize = sizes.iter().map(|s| s.peak_batcher_records).sum();
    println!(
        "| | every arrangement | {total} | {:.2} | {peak} | {batched} |",
        per(total)
    );
}

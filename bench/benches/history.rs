//! History's costs (BENCHMARKS.md, "History"):
//!
//! 1. the attribution's overhead on a replay: `bindery replay LOG --dump-bindings
//!    /dev/null` against `bindery history --log LOG --binding policy-00000` (one
//!    Binding's changes) and `bindery history --log LOG` (every change), each a child
//!    process of the release binary, on generated logs of N objects with 20,000 churn
//!    events; wall time, CPU time and peak RSS (`wait4`), the least of `--runs` runs
//!    taken in turn (this machine is shared: the three commands alternate, so that a
//!    slow spell falls on each of them, and another process only ever adds time);
//! 2. the live journal: a generated log fed through a `Pipeline` and a `Journal` as the
//!    engine loop does (in a child process of this bench: without a journal, keeping 1
//!    change, and keeping `--keep` changes: the attribution's state per object, the RSS
//!    per change kept), and the time of `GET /history`'s queries on the full journal.
//!
//! ```text
//! cargo build --release
//! cargo bench -p bindery-bench --bench history -- [--objects 10k,100k,1m] [--churn 20000]
//!     [--bin target/release/bindery] [--keep 10000] [--runs 1] [--skip-replay]
//!     [--skip-journal]
//! ```

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::rc::Rc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use bindery::history::Filter;
use bindery::history::journal::{Journal, JournalLimit};
use bindery::{GenerateSpec, Pipeline, generate_to};
use bindery_bench::cli::{args, count, counts};
use bindery_bench::fmt::{mib, seconds};
use bindery_bench::memory::rss_kb;
use bindery_engine::ObjectKey;
use bindery_ingest::LogReader;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The generated log of `objects` objects and `churn` churn events (cached in `dir`).
fn log(dir: &Path, objects: usize, churn: usize) -> Result<PathBuf> {
    let path = dir.join(format!("history-{objects}-{churn}.jsonl.zst"));
    if !path.exists() {
        let spec = GenerateSpec {
            wecs: 100,
            objects,
            policies: 50,
            namespaces: (objects / 200).max(10),
            churn,
            churn_interval_ms: 1,
            seed: 1,
        };
        eprintln!("  generating {}", path.display());
        let partial = path.with_extension("partial");
        generate_to(&spec, &partial)?;
        std::fs::rename(&partial, &path)?;
    }
    Ok(path)
}

/// What one run of a command cost.
#[derive(Clone, Copy)]
struct Cost {
    wall: Duration,
    /// User and system CPU time.
    cpu: Duration,
    /// Peak RSS (KiB).
    peak_kb: u64,
}

/// Runs `bin args` with stdout to /dev/null: what it cost.
fn measure(bin: &Path, args: &[&str]) -> Result<Cost> {
    let started = Instant::now();
    let child = Command::new(bin)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("starting {}", bin.display()))?;
    let pid = i32::try_from(child.id())?;
    let mut status = 0;
    // SAFETY: a zeroed rusage is a valid out-parameter; `pid` is our child, not waited
    // for elsewhere.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let waited = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let elapsed = started.elapsed();
    ensure!(waited == pid, "wait4 on {pid}");
    ensure!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "{} {args:?} failed (status {status})",
        bin.display()
    );
    let time = |t: libc::timeval| {
        Duration::from_secs(u64::try_from(t.tv_sec).unwrap_or(0))
            + Duration::from_micros(u64::try_from(t.tv_usec).unwrap_or(0))
    };
    Ok(Cost {
        wall: elapsed,
        cpu: time(usage.ru_utime) + time(usage.ru_stime),
        peak_kb: u64::try_from(usage.ru_maxrss)?,
    })
}

/// The least of `costs`, field by field.
fn least(costs: &[Cost]) -> Cost {
    Cost {
        wall: costs.iter().map(|c| c.wall).min().unwrap_or_default(),
        cpu: costs.iter().map(|c| c.cpu).min().unwrap_or_default(),
        peak_kb: costs.iter().map(|c| c.peak_kb).min().unwrap_or_default(),
    }
}

/// The child of part 2: feeds `log` through a pipeline and a journal keeping `keep`
/// changes; prints `RSS_KB_BEFORE_CHURN RSS_KB_AFTER CHANGES_KEPT` and the queries'
/// times.
fn journal_child(log: &Path, keep: usize) -> Result<()> {
    let reader = LogReader::open(log)?;
    let mut pipeline = Pipeline::new();
    let limit = JournalLimit {
        count: keep,
        max_age: Duration::from_secs(366 * 24 * 3600),
    };
    let mut journal = Journal::new(limit, None);
    let (mut epoch_start, mut line_no, mut published) = (None, 1u64, false);
    let mut before = 0;
    let close = |pipeline: &mut Pipeline, journal: &mut Journal, published: &mut bool| {
        let out = pipeline.close_epoch();
        if keep > 0 {
            journal.close(out.epoch, &out.changes, !*published);
        }
        *published = true;
    };
    for line in reader {
        let event = line?.event;
        if pipeline.closes_before(epoch_start, event.ts, 0) {
            close(&mut pipeline, &mut journal, &mut published);
            if before == 0 {
                before = rss_kb().unwrap_or(0);
            }
            epoch_start = None;
        }
        epoch_start.get_or_insert(event.ts);
        line_no += 1;
        // Keeping 0: no journal at all, as `--history-limit 0`.
        if keep > 0 {
            journal.push(&mut pipeline, line_no, event)?;
        } else {
            pipeline.push(event)?;
        }
    }
    close(&mut pipeline, &mut journal, &mut published);
    let after = rss_kb().unwrap_or(0);
    println!("{before} {after} {}", journal.len());
    // The queries, on the full journal.
    // As the engine loop answers: each Binding rendered once per question.
    let engine = pipeline.engine();
    let object: ObjectKey = "/configmaps/ns-0000/cm-0000001".parse()?;
    let queries = [
        ("latest 20 (the dashboard)", Filter::default(), Some(20)),
        (
            "one Binding",
            Filter {
                binding: Some("policy-00000".into()),
                ..Filter::default()
            },
            None,
        ),
        (
            "one WEC",
            Filter {
                cluster: Some("wec-00000".into()),
                ..Filter::default()
            },
            None,
        ),
        (
            "one object",
            Filter {
                object: Some(object),
                ..Filter::default()
            },
            None,
        ),
    ];
    for (what, filter, last) in queries {
        let started = Instant::now();
        let runs = 20;
        let mut found = 0;
        for _ in 0..runs {
            let mut rendered = std::collections::HashMap::new();
            let mut binding = |name: &str| {
                rendered
                    .entry(name.to_string())
                    .or_insert_with(|| engine.binding(name).map(Rc::new))
                    .clone()
            };
            found = journal
                .query(&filter, None, last, 0, &mut binding)
                .changes
                .len();
        }
        let each = started.elapsed() / runs;
        println!("{what}\t{found}\t{}", bindery_bench::fmt::duration(each));
    }
    Ok(())
}

fn main() -> Result<()> {
    let (mut objects, mut churn, mut keep) = (vec![10_000, 100_000, 1_000_000], 20_000, 10_000);
    let mut bin = PathBuf::from("target/release/bindery");
    let (mut skip_replay, mut skip_journal, mut child) = (false, false, None);
    let mut runs = 1;
    let mut it = args();
    while let Some(arg) = it.next() {
        let mut value = || {
            it.next()
                .ok_or_else(|| anyhow::anyhow!("{arg} needs a value"))
        };
        match arg.as_str() {
            "--objects" => objects = counts(&value()?)?,
            "--churn" => churn = count(&value()?)?,
            "--keep" => keep = count(&value()?)?,
            "--bin" => bin = PathBuf::from(value()?),
            "--skip-replay" => skip_replay = true,
            "--skip-journal" => skip_journal = true,
            "--runs" => runs = count(&value()?)?.max(1),
            "--journal-child" => child = Some((PathBuf::from(value()?), count(&value()?)?)),
            other => bail!(
                "unknown option {other:?} (--objects N,..., --churn N, --keep N, --runs N, --bin PATH, --skip-replay, --skip-journal)"
            ),
        }
    }
    if let Some((log, keep)) = child {
        return journal_child(&log, keep);
    }
    // Cargo runs benches in the package's directory: paths from the workspace root.
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let bin = if bin.is_absolute() {
        bin
    } else {
        root.join(bin)
    };
    ensure!(
        bin.exists(),
        "{} missing: cargo build --release",
        bin.display()
    );
    let dir = root.join("target/bench-logs");
    std::fs::create_dir_all(&dir)?;
    if !skip_replay {
        println!(
            "1. replay against history, {churn} churn events (wall time, CPU time, peak RSS; the least of {runs} runs)"
        );
        println!(
            "{:>10} {:>30} {:>30} {:>30}",
            "objects", "replay", "history, one Binding", "history, every change"
        );
        for &n in &objects {
            let log = log(&dir, n, churn)?;
            let l = log.to_str().unwrap();
            let commands = [
                &["replay", l, "--dump-bindings", "/dev/null"][..],
                &[
                    "history",
                    "--log",
                    l,
                    "--binding",
                    "policy-00000",
                    "-o",
                    "json",
                ][..],
                &["history", "--log", l, "-o", "json"][..],
            ];
            let mut costs = vec![Vec::new(); commands.len()];
            for run in 1..=runs {
                for (args, costs) in commands.iter().zip(&mut costs) {
                    let cost = measure(&bin, args)?;
                    eprintln!(
                        "  {n} objects, run {run}, {} {}: {} wall, {} CPU",
                        args[0],
                        args[3],
                        seconds(cost.wall.as_secs_f64()),
                        seconds(cost.cpu.as_secs_f64())
                    );
                    costs.push(cost);
                }
            }
            let row: Vec<String> = costs
                .iter()
                .map(|c| {
                    let c = least(c);
                    format!(
                        "{}, {} CPU, {}",
                        seconds(c.wall.as_secs_f64()),
                        seconds(c.cpu.as_secs_f64()),
                        mib(c.peak_kb)
                    )
                })
                .collect();
            println!("{n:>10} {:>30} {:>30} {:>30}", row[0], row[1], row[2]);
        }
    }
    if skip_journal {
        return Ok(());
    }
    let n = objects[0];
    let log = log(&dir, n, churn)?;
    println!("2. the journal on {n} objects and {churn} churn events, keeping {keep} changes");
    let me = std::env::current_exe()?;
    let run = |keep: usize| -> Result<String> {
        let out = Command::new(&me)
            .args(["--journal-child", log.to_str().unwrap(), &keep.to_string()])
            .stderr(Stdio::inherit())
            .output()?;
        ensure!(out.status.success(), "the journal child failed");
        Ok(String::from_utf8(out.stdout)?)
    };
    let none = run(0)?;
    let small = run(1)?;
    let full = run(keep)?;
    let figures = |out: &str| -> Result<(i64, i64, i64)> {
        let first = out.lines().next().context("no output")?;
        let v: Vec<i64> = first
            .split_whitespace()
            .map(str::parse)
            .collect::<Result<_, _>>()?;
        Ok((v[0], v[1], v[2]))
    };
    let (b0, _, _) = figures(&none)?;
    let (b1, a1, _) = figures(&small)?;
    println!(
        "   the attribution's state after the load: {} KiB more RSS than no journal, {} bytes per object",
        b1 - b0,
        (b1 - b0) * 1024 / i64::try_from(n)?
    );
    let (b2, a2, kept) = figures(&full)?;
    let grown = (a2 - b2) - (a1 - b1);
    println!(
        "   {kept} changes kept: {} KiB more RSS than keeping 1, {} bytes per change",
        grown,
        grown * 1024 / kept.max(1)
    );
    println!("   {:<28} {:>8} {:>12}", "query", "changes", "time");
    for line in full.lines().skip(1) {
        let f: Vec<&str> = line.split('\t').collect();
        println!("   {:<28} {:>8} {:>12}", f[0], f[1], f[2]);
    }
    Ok(())
}

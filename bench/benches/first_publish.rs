//! The engine loop of `bindery run` on a large initial list: the time from its first
//! watch event to its first published epoch, for initial lists of N ConfigMaps fed
//! through the live ingest's bounded channel as fast as the loop takes them (no API
//! server: the loop's own cost; BENCHMARKS.md, "First publish").
//!
//! ```text
//! cargo bench -p bindery-bench --bench first_publish -- [--objects 10k,200k] [--runs 3]
//! ```

use anyhow::{Result, bail};
use bindery::bench_hooks::measure_first_publish;
use bindery_bench::cli::{args, count, counts};
use bindery_bench::fmt::duration;
use bindery_bench::stats::median;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> Result<()> {
    let (mut objects, mut runs) = (vec![10_000, 200_000], 3);
    let mut it = args();
    while let Some(arg) = it.next() {
        let mut value = || {
            it.next()
                .ok_or_else(|| anyhow::anyhow!("{arg} needs a value"))
        };
        match arg.as_str() {
            "--objects" => objects = counts(&value()?)?,
            "--runs" => runs = count(&value()?)?.max(1),
            other => bail!("unknown option {other:?} (--objects N,..., --runs N)"),
        }
    }
    println!("first publish of an initial list (engine loop, no API server), median of {runs}");
    println!(
        "{:>10} {:>10} {:>12} {:>14}",
        "objects", "events", "time", "events/s"
    );
    for &n in &objects {
        let mut times = Vec::with_capacity(runs);
        let mut events = 0;
        for run in 0..runs {
            let measured = measure_first_publish(n)?;
            eprintln!(
                "  {n} objects, run {}: {}",
                run + 1,
                duration(measured.elapsed)
            );
            events = measured.events;
            times.push(measured.elapsed.as_secs_f64());
        }
        let time = median(&times);
        println!(
            "{n:>10} {events:>10} {:>12} {:>14.0}",
            bindery_bench::fmt::seconds(time),
            events as f64 / time
        );
    }
    Ok(())
}

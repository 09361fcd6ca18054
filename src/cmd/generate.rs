//! `bindery generate`: writes a seeded synthetic watch log ([`crate::input::synthetic`]).

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Result;

use crate::input::synthetic::{GenerateSpec, generate_to};

/// The flags of `bindery generate`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The log to write (`.jsonl`, or zstd-compressed with `.jsonl.zst`).
    #[arg(long, value_name = "LOG")]
    out: PathBuf,
    /// WECs (ManagedClusters).
    #[arg(long, default_value_t = 100)]
    wecs: usize,
    /// Workload objects (60% ConfigMaps, 15% Deployments, 10% Services, 10% Secrets,
    /// 5% ClusterRoles).
    #[arg(long, default_value_t = 10_000)]
    objects: usize,
    /// BindingPolicies.
    #[arg(long, default_value_t = 50)]
    policies: usize,
    /// Namespaces (default: one per 200 objects, at least 10).
    #[arg(long)]
    namespaces: Option<usize>,
    /// Churn events after the initial lists.
    #[arg(long, default_value_t = 10_000)]
    churn: usize,
    /// Milliseconds between churn events (their `ts`).
    #[arg(long, default_value_t = 1, value_name = "MS")]
    interval_ms: i64,
    /// Seed of the pseudo-random choices: the same figures and seed give the same log.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

impl Args {
    /// The spec these flags give (checked when generating).
    pub fn spec(&self) -> GenerateSpec {
        GenerateSpec {
            wecs: self.wecs,
            objects: self.objects,
            policies: self.policies,
            namespaces: self.namespaces.unwrap_or((self.objects / 200).max(10)),
            churn: self.churn,
            churn_interval_ms: self.interval_ms,
            seed: self.seed,
        }
    }
}

/// `bindery generate`: writes the log and logs what it holds.
pub fn execute(args: Args) -> Result<()> {
    let spec = args.spec();
    let started = Instant::now();
    let summary = generate_to(&spec, &args.out)?;
    tracing::info!(
        log = %args.out.display(),
        events = summary.events,
        wecs = spec.wecs,
        namespaces = spec.namespaces,
        objects = spec.objects,
        policies = spec.policies,
        churn = ?summary.churn,
        seconds = format_args!("{:.1}", started.elapsed().as_secs_f64()),
        "wrote the log"
    );
    Ok(())
}

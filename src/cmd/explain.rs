//! `bindery explain`: loads the state of a watch log's end or of live servers into the
//! oracle (the plain recomputation of the semantics, [`crate::input::loader`]) and explains,
//! on it, why a BindingPolicy binds what it binds: overall, for one WEC, and/or for
//! one workload object.

use anyhow::{Context, Result, bail};
use bindery_engine::{ObjectKey, Query};

use crate::input::loader;
use crate::input::snapshot::{StateArgs, StateSource};

/// How `bindery explain` prints its explanation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// Indented text, one line per test, ✓ held / ✗ failed.
    #[default]
    Text,
    /// The explanation as pretty JSON, for scripts.
    Json,
}

/// The flags of `bindery explain`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Where the state comes from.
    #[command(flatten)]
    source: StateArgs,
    /// The BindingPolicy to explain.
    #[arg(long, value_name = "NAME")]
    policy: String,
    /// A workload object: GROUP/RESOURCE/[NAMESPACE/]NAME, GROUP empty for the core
    /// group (`/namespaces/nginx`, `apps/deployments/nginx/nginx-deployment`).
    #[arg(long, value_name = "GROUP/RESOURCE/[NAMESPACE/]NAME")]
    object: Option<String>,
    /// A WEC (cluster id, the ManagedCluster's name).
    #[arg(long, value_name = "C")]
    cluster: Option<String>,
    /// With --log: explain the state at T (RFC 3339, or Unix ms): the log up to its
    /// first event later than T.
    #[arg(long, value_name = "T", requires = "log", value_parser = crate::cmd::log_time::parse)]
    at: Option<i64>,
    /// Output format: `text` (default) or `json`.
    #[arg(short = 'o', long, value_enum, default_value_t = OutputFormat::Text)]
    output: OutputFormat,
}

impl Args {
    /// The options these flags give, checked.
    pub fn options(self) -> Result<ExplainOptions> {
        Ok(ExplainOptions {
            source: self.source.source()?,
            policy: self.policy,
            object: self.object,
            cluster: self.cluster,
            at: self.at,
            output: self.output,
        })
    }
}

/// `bindery explain`: prints the explanation on stdout.
pub fn execute(args: Args) -> Result<()> {
    let opts = args.options()?;
    crate::cmd::stdout::print(&explain(&opts)?)?;
    Ok(())
}

/// Options of `bindery explain`.
#[derive(Clone, Debug)]
pub struct ExplainOptions {
    /// Where the state comes from: a watch log's end or live servers.
    pub source: StateSource,
    /// The BindingPolicy to explain.
    pub policy: String,
    /// `GROUP/RESOURCE/[NAMESPACE/]NAME` of a workload object.
    pub object: Option<String>,
    /// Cluster id of a WEC.
    pub cluster: Option<String>,
    /// With a log source: the state at this time (Unix ms), not at the log's end.
    pub at: Option<i64>,
    /// Output format.
    pub output: OutputFormat,
}

/// Runs `bindery explain`: returns the rendered explanation (text or JSON), or an error
/// naming what is malformed or was not found.
pub fn explain(opts: &ExplainOptions) -> Result<String> {
    let object: Option<ObjectKey> = opts.object.as_deref().map(str::parse).transpose()?;
    let (loaded, on) = match (&opts.source, opts.at) {
        (StateSource::Log(log), Some(at)) => (
            loader::load_log_until(log, Some(at))?,
            format!(
                "{} at {}",
                opts.source.describe(),
                crate::cmd::log_time::display(at)
            ),
        ),
        (StateSource::Live(_), Some(_)) => bail!("--at applies to a watch log: add --log"),
        (source, None) => (loader::load(source)?, source.describe()),
    };
    let explanation = loaded
        .into_oracle()
        .explain(&Query {
            policy: opts.policy.clone(),
            object,
            cluster: opts.cluster.clone(),
        })
        .with_context(|| format!("explaining on {on}"))?;
    Ok(match opts.output {
        OutputFormat::Text => explanation.to_text(),
        OutputFormat::Json => {
            let mut json = serde_json::to_string_pretty(&explanation)?;
            json.push('\n');
            json
        }
    })
}

//! `bindery history`: each change of the Bindings over a watch log, in time order, with
//! the events that caused it ([`crate::history`]).

use std::io::{BufWriter, Write};
use std::path::PathBuf;

use anyhow::{Context, Result};
use bindery_engine::ObjectKey;
use bindery_ingest::LogReader;

use crate::cmd::explain::OutputFormat;
use crate::history::{Change, Filter, to_text};
use crate::observe::progress::Progress;

/// The flags of `bindery history`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The watch log (`.jsonl` or `.jsonl.zst`).
    #[arg(long, value_name = "LOG")]
    log: PathBuf,
    /// Only this Binding's changes.
    #[arg(long, value_name = "P")]
    binding: Option<String>,
    /// Only changes that move this object: its entries, and the destinations of the
    /// Bindings listing it (GROUP/RESOURCE/[NAMESPACE/]NAME).
    #[arg(long, value_name = "GROUP/RESOURCE/[NAMESPACE/]NAME")]
    object: Option<String>,
    /// Only changes that involve this WEC: it as a destination, and the entries of the
    /// Bindings that have it.
    #[arg(long, value_name = "C")]
    cluster: Option<String>,
    /// Only changes at or after T (RFC 3339, or Unix ms).
    #[arg(long, value_name = "T", value_parser = crate::cmd::log_time::parse)]
    since: Option<i64>,
    /// Read the log only up to its first event later than T (RFC 3339, or Unix ms).
    #[arg(long, value_name = "T", value_parser = crate::cmd::log_time::parse)]
    until: Option<i64>,
    /// Output format: `text` (default) or `json`.
    #[arg(short = 'o', long, value_enum, default_value_t = OutputFormat::Text)]
    output: OutputFormat,
}

/// `bindery history`: prints the changes on stdout as each epoch gives them (text, or
/// a JSON array written element by element), so memory does not grow with the answer.
pub fn execute(args: Args) -> Result<()> {
    let object: Option<ObjectKey> = args.object.as_deref().map(str::parse).transpose()?;
    let filter = Filter {
        binding: args.binding,
        object,
        cluster: args.cluster,
        since: args.since,
    };
    let mut out = BufWriter::new(crate::cmd::stdout::stdout());
    let json = args.output == OutputFormat::Json;
    let mut written = 0u64;
    if json {
        out.write_all(b"[")?;
    }
    history(&args.log, &filter, args.until, &mut |changes| {
        if json {
            for change in changes {
                out.write_all(if written == 0 { b"\n" } else { b",\n" })?;
                serde_json::to_writer_pretty(&mut out, change)?;
                written += 1;
            }
        } else {
            out.write_all(to_text(changes).as_bytes())?;
        }
        Ok(())
    })?;
    if json {
        out.write_all(if written == 0 { b"]\n" } else { b"\n]\n" })?;
    }
    out.flush().context("writing the history")?;
    Ok(())
}

/// Hands the changes of `log` (up to `until`) that `filter` asks for to `emit`, epoch
/// by epoch, in time order ([`crate::history::replay`] over the log's lines).
pub fn history(
    log: &std::path::Path,
    filter: &Filter,
    until: Option<i64>,
    emit: &mut dyn FnMut(&[Change]) -> Result<()>,
) -> Result<()> {
    let mut reader = LogReader::open(log)?.read_ahead();
    let name = reader.name().to_string();
    let mut progress = Progress::new(&format!("reading {name}"), reader.total_bytes());
    let mut events = 0u64;
    let lines = std::iter::from_fn(|| {
        let line = reader.next()?;
        events += 1;
        progress.update(reader.bytes_read(), || format!("{events} events"));
        Some(line.map(|l| (l.line, l.event)).map_err(anyhow::Error::from))
    });
    crate::history::replay(lines, filter, until, &name, emit)?;
    progress.finish();
    Ok(())
}

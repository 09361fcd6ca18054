//! The text form of a history: a block per change, a line per cause.

use super::journal::JournalAnswer;
use super::{Cause, Change, What};

/// The changes as text, one block per change: its time, epoch, Binding and what
/// changed, then a line per cause.
pub fn to_text(changes: &[Change]) -> String {
    let mut out = String::new();
    for c in changes {
        let what = match &c.change {
            What::DestinationAdded { cluster } => format!("+ destination {cluster}"),
            What::DestinationRemoved { cluster } => format!("- destination {cluster}"),
            What::WorkloadAdded { object } => format!("+ workload {object}"),
            What::WorkloadRemoved { object } => format!("- workload {object}"),
            What::WorkloadChanged { object } => format!("~ workload {object}"),
            What::Owner {
                exists: true,
                generation,
            } => format!(
                "~ Binding of policy generation {}",
                generation.map_or_else(|| "?".to_string(), |g| g.to_string())
            ),
            What::Owner { exists: false, .. } => "- Binding".to_string(),
            What::Problems { problems } if problems.is_empty() => "~ problems: none".to_string(),
            What::Problems { problems } => format!("~ problems: {}", problems.join("; ")),
        };
        out.push_str(&format!(
            "{}  epoch {}  {}  {}\n",
            crate::cmd::log_time::display(c.ts),
            c.epoch,
            c.binding,
            what
        ));
        if c.causes.is_empty() {
            out.push_str("    cause: none found in the epoch's events\n");
        }
        for cause in &c.causes {
            let mut line = format!("    line {}  {}", cause.line, cause_text(cause));
            line.push('\n');
            out.push_str(&line);
        }
    }
    out
}

/// A `GET /history` answer as text: since when the journal is complete and where
/// older changes are, then the changes.
pub fn journal_text(answer: &JournalAnswer) -> String {
    let since = answer
        .complete_since
        .map_or_else(|| "its start".to_string(), crate::cmd::log_time::display);
    let older = match &answer.recording {
        Some(r) => format!("older changes: bindery history --log {r}"),
        None => "older changes are not kept (no --record)".to_string(),
    };
    let mut out = format!("# every change since {since}; {older}\n");
    if answer.changes.is_empty() {
        out.push_str("# no change\n");
    }
    out.push_str(&to_text(&answer.changes));
    out
}

/// A cause in one line, without its log line: the event, its entity, what it changed
/// (`MODIFIED namespaces shop  team: retail → platform  resourceVersion 720 → 750`).
pub fn cause_text(cause: &Cause) -> String {
    let mut line = format!("{} {}", cause.event_type, cause.resource);
    match (cause.namespace.is_empty(), cause.name.is_empty()) {
        (_, true) => line.push_str(" (relist)"),
        (true, false) => line.push_str(&format!(" {}", cause.name)),
        (false, false) => line.push_str(&format!(" {}/{}", cause.namespace, cause.name)),
    }
    let show = |v: &Option<String>| v.clone().unwrap_or_else(|| "(none)".to_string());
    for (key, d) in &cause.labels {
        line.push_str(&format!("  {key}: {} → {}", show(&d.old), show(&d.new)));
    }
    if let Some(g) = &cause.generation {
        let show = |v: Option<i64>| v.map_or_else(|| "(none)".to_string(), |g| g.to_string());
        line.push_str(&format!("  generation {} → {}", show(g.old), show(g.new)));
    }
    if let Some(rv) = &cause.resource_version {
        line.push_str(&format!(
            "  resourceVersion {} → {}",
            show(&rv.old),
            show(&rv.new)
        ));
    }
    line
}

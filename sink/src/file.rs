//! File and stream output: `--dump-bindings`, `--dump-statuses` and `--emit-deltas`.

use std::io::{self, Write};

use bindery_engine::collector::{CollectorStatus, CombinedResult};
use bindery_engine::reported::Report;
use bindery_engine::{Binding, EpochOutput, WorkloadRef, binding_list};
use serde_json::{Value, json};

/// Everything status return writes, as an engine has it at one moment.
#[derive(Clone, Debug, Default)]
pub struct Statuses {
    /// What is written into workload objects ([`Engine::reports`](bindery_engine::Engine::reports)).
    pub reports: Vec<(WorkloadRef, Report)>,
    /// The CombinedStatuses.
    pub combined: Vec<CombinedResult>,
    /// The StatusCollectors' statuses.
    pub collectors: Vec<CollectorStatus>,
}

impl Statuses {
    /// What `engine` has now.
    pub fn of(engine: &bindery_engine::Engine) -> Statuses {
        Statuses {
            reports: engine.reports(),
            combined: engine.combined_statuses(),
            collectors: engine.collector_statuses(),
        }
    }
}

/// The `--dump-statuses` document: `{"objectStatuses": [...], "combinedStatuses":
/// [...], "statusCollectors": [...]}`. `objectStatuses`: one entry per workload object
/// Bindery returns status into or clears, in the order given (the engine's: by group,
/// resource, namespace, name), each `{"object": {group, version, resource, namespace,
/// name}, "status": .., "label": "singleton"|"multiwec"}` or `{"object": .., "clear":
/// true}`; `combinedStatuses`: KubeStellar's objects, by namespace and name;
/// `statusCollectors`: `{"name", "observedGeneration", "errors"}` by name.
pub fn statuses_document(statuses: &Statuses) -> Value {
    let reports = &statuses.reports;
    let entries: Vec<Value> = reports
        .iter()
        .map(|(o, report)| {
            let mut entry = json!({"object": {
                "group": o.group, "version": o.version, "resource": o.resource,
                "namespace": o.namespace, "name": o.name,
            }});
            if let (Some(entry), Value::Object(fields)) = (entry.as_object_mut(), report.to_json())
            {
                entry.extend(fields);
            }
            entry
        })
        .collect();
    let combined: Vec<Value> = statuses
        .combined
        .iter()
        .map(CombinedResult::to_json)
        .collect();
    let collectors: Vec<Value> = statuses
        .collectors
        .iter()
        .map(|c| json!({"name": c.name, "observedGeneration": c.observed_generation, "errors": c.errors}))
        .collect();
    json!({
        "objectStatuses": entries,
        "combinedStatuses": combined,
        "statusCollectors": collectors,
    })
}

/// Writes [`statuses_document`] of `statuses`, pretty-printed.
pub fn write_statuses(out: &mut dyn Write, statuses: &Statuses) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, &statuses_document(statuses))?;
    out.write_all(b"\n")?;
    out.flush()
}

/// Writes `bindings` as a Kubernetes `List`, items sorted by name, pretty-printed.
pub fn write_binding_list(out: &mut dyn Write, bindings: &[Binding]) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, &binding_list(bindings))?;
    out.write_all(b"\n")?;
    out.flush()
}

/// Writes each epoch's Binding changes as JSON lines: one line per changed Binding,
/// `{"epoch": N, "binding": NAME, "exists": .., "destinations": {"added": [..], "removed": [..]},
/// "workload": {"added": [..], "removed": [..]}, "generation": G, "problems": [..]}`.
pub struct DeltaWriter<W: Write> {
    out: W,
    lines: u64,
}

impl<W: Write> DeltaWriter<W> {
    /// A writer onto `out`.
    pub fn new(out: W) -> Self {
        DeltaWriter { out, lines: 0 }
    }

    /// Writes the changes of one epoch.
    pub fn write_epoch(&mut self, epoch: &EpochOutput) -> io::Result<()> {
        for change in &epoch.changes {
            let mut line = json!({ "epoch": epoch.epoch });
            if let (Some(line), serde_json::Value::Object(change)) =
                (line.as_object_mut(), change.to_json())
            {
                line.extend(change);
            }
            serde_json::to_writer(&mut self.out, &line)?;
            self.out.write_all(b"\n")?;
            self.lines += 1;
        }
        Ok(())
    }

    /// Lines written so far.
    pub fn lines(&self) -> u64 {
        self.lines
    }

    /// Flushes the underlying stream.
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bindery_engine::BindingChange;

    #[test]
    fn delta_lines_start_with_the_epoch() {
        let mut w = DeltaWriter::new(Vec::new());
        let change = BindingChange {
            binding: "p".into(),
            exists: true,
            generation: Some(2),
            destinations_added: vec!["c1".into()],
            ..BindingChange::default()
        };
        w.write_epoch(&EpochOutput {
            epoch: 3,
            changes: vec![change],
            ..EpochOutput::default()
        })
        .unwrap();
        let text = String::from_utf8(w.out).unwrap();
        assert!(
            text.starts_with(r#"{"epoch":3,"binding":"p","exists":true,"#),
            "{text}"
        );
        let v: serde_json::Value = serde_json::from_str(text.trim()).unwrap();
        assert_eq!(v["destinations"]["added"], json!(["c1"]));
        assert_eq!(v["generation"], json!(2));
    }
}

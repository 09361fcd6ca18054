//! File and stream output: `--dump-bindings`, `--dump-statuses` and `--emit-deltas`.

use std::borrow::Borrow;
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
    let mut sorted: Vec<&Binding> = bindings.iter().collect();
    sorted.sort_by(|a, b| a.name.cmp(&b.name));
    write_binding_list_of(out, sorted)
}

/// Writes `bindings`, given in name order, as [`write_binding_list`] does, holding one
/// Binding's JSON at a time (a dump of a large engine renders each in turn).
pub fn write_binding_list_of(
    out: &mut dyn Write,
    bindings: impl IntoIterator<Item = impl Borrow<Binding>>,
) -> io::Result<()> {
    // The document around the items, as serde_json prints it (its key order and
    // indentation), split where the items go.
    let frame = serde_json::to_string_pretty(&binding_list(&[]))?;
    let (head, tail) = frame
        .split_once(ITEMS_EMPTY)
        .ok_or_else(|| io::Error::other("a Binding list without its items key"))?;
    out.write_all(head.as_bytes())?;
    out.write_all(b"\"items\": [")?;
    let mut written = 0usize;
    for binding in bindings {
        out.write_all(if written == 0 { b"\n" } else { b",\n" })?;
        // An item sits two levels deep: its lines indented by four spaces (no JSON
        // string holds a raw newline).
        let item = serde_json::to_string_pretty(&binding.borrow().to_json())?;
        out.write_all(ITEM_INDENT.as_bytes())?;
        out.write_all(item.replace('\n', ITEM_NEWLINE).as_bytes())?;
        written += 1;
    }
    out.write_all(if written == 0 { b"]" } else { b"\n  ]" })?;
    out.write_all(tail.as_bytes())?;
    out.write_all(b"\n")?;
    out.flush()
}

/// How serde_json prints an empty `items`, and the indentation of an item's lines.
const ITEMS_EMPTY: &str = "\"items\": []";
const ITEM_INDENT: &str = "    ";
const ITEM_NEWLINE: &str = "\n    ";

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

    fn binding(name: &str, entries: usize) -> Binding {
        let entry = |i: usize| bindery_engine::WorkloadEntry {
            group: "apps".into(),
            version: "v1".into(),
            resource: "deployments".into(),
            namespace: format!("ns-{i}"),
            name: format!("d \"quoted\"\n{i}"),
            resource_version: i.to_string(),
            create_only: i.is_multiple_of(2),
            status_collectors: vec!["c".into()],
            want_singleton_reported_state: false,
            want_multi_wec_reported_state: true,
        };
        Binding::new(
            name.into(),
            format!("uid-{name}"),
            vec!["wec-1".into(), "wec-2".into()],
            (0..entries).map(entry),
        )
    }

    #[test]
    fn the_streamed_list_is_the_whole_document_printed_at_once() {
        let sets = [
            vec![],
            vec![binding("only", 0)],
            vec![binding("b", 3), binding("a", 1), binding("c", 0)],
        ];
        for bindings in sets {
            let mut whole = serde_json::to_vec_pretty(&binding_list(&bindings)).unwrap();
            whole.push(b'\n');
            let mut streamed = Vec::new();
            write_binding_list(&mut streamed, &bindings).unwrap();
            assert_eq!(
                String::from_utf8(streamed).unwrap(),
                String::from_utf8(whole).unwrap()
            );
        }
    }

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

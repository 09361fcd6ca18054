//! Reading the acceptance sample logs, and round trips through real files.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use bindery_ingest::{
    EventType, LogLine, LogReader, LogWriter, RelistTracker, StateChange, WatchEvent,
};
use serde_json::{Map, json};

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

fn read_all(path: &Path) -> (LogReader, Vec<WatchEvent>) {
    let mut reader = LogReader::open(path).unwrap();
    let events = reader
        .by_ref()
        .map(|line| line.unwrap_or_else(|e| panic!("{e}")).event)
        .collect();
    (reader, events)
}

fn count_types(events: &[WatchEvent]) -> BTreeMap<EventType, usize> {
    let mut counts = BTreeMap::new();
    for event in events {
        *counts.entry(event.event_type).or_default() += 1;
    }
    counts
}

#[test]
fn case3_reads_without_error() {
    let path = data("case3.jsonl");
    let (reader, events) = read_all(&path);
    assert_eq!(events.len(), 519, "520 lines minus the header");
    assert_eq!(reader.torn_last_line(), None);
    assert!(!reader.is_compressed());
    let size = std::fs::metadata(&path).unwrap().len();
    assert_eq!(reader.total_bytes(), Some(size));
    assert_eq!(reader.bytes_read(), size);
    let counts = count_types(&events);
    assert_eq!(counts[&EventType::Reset], 3);
    assert!(counts[&EventType::Synced] >= 3);
    assert!(events.windows(2).all(|w| w[0].ts <= w[1].ts));
}

#[test]
fn case3_relists_apply_cleanly() {
    let mut reader = LogReader::open(&data("case3.jsonl")).unwrap();
    let mut tracker = RelistTracker::new();
    let mut was_synced = false;
    let mut relist_deletes = Vec::new();
    for line in reader.by_ref() {
        let LogLine { line, event } = line.unwrap();
        let changes = tracker.apply(&event).unwrap();
        if event.event_type == EventType::Synced {
            for change in changes {
                if let StateChange::Delete {
                    resource,
                    namespace,
                    name,
                } = change
                {
                    relist_deletes.push((line, resource.resource, namespace, name));
                }
            }
        }
        if event.event_type == EventType::Reset {
            assert!(!tracker.all_synced());
            assert!(tracker.is_relisting(&event.resource), "line {line}");
        }
        was_synced |= tracker.all_synced();
    }
    assert!(was_synced);
    // The namespaces relist (RESET on line 189) does not list ns-1 again.
    assert_eq!(
        relist_deletes,
        vec![(
            192,
            "namespaces".to_owned(),
            String::new(),
            "ns-1".to_owned()
        )]
    );
    assert!(
        tracker.all_synced(),
        "unsynced at the end: {:?}",
        tracker.unsynced()
    );
}

#[test]
fn case0_reads_and_syncs() {
    let (reader, events) = read_all(&data("case0-nginx.jsonl"));
    assert_eq!(
        reader.header().extra["note"],
        json!("the seed's nginx example")
    );
    let mut tracker = RelistTracker::new();
    let mut upserts = 0;
    for event in &events {
        for change in tracker.apply(event).unwrap() {
            upserts += usize::from(matches!(change, StateChange::Upsert { .. }));
        }
    }
    assert!(upserts > 0);
    assert!(tracker.all_synced());
}

fn file_round_trip(file_name: &str, compressed: bool) {
    let (source, events) = read_all(&data("case3.jsonl"));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(file_name);
    let mut writer = LogWriter::create(&path, source.header().extra.clone()).unwrap();
    for event in &events {
        writer.write_event(event).unwrap();
    }
    writer.finish().unwrap();

    let (reader, back) = read_all(&path);
    assert_eq!(reader.is_compressed(), compressed);
    assert_eq!(reader.header(), source.header());
    assert_eq!(back, events);
    assert_eq!(reader.bytes_read(), reader.total_bytes().unwrap());
}

#[test]
fn file_round_trip_plain() {
    file_round_trip("log.jsonl", false);
}

#[test]
fn file_round_trip_zstd() {
    file_round_trip("log.jsonl.zst", true);
}

#[test]
fn zstd_detected_by_content_not_name() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("misnamed.jsonl");
    let file = std::fs::File::create(&path).unwrap();
    let mut writer = LogWriter::to_writer(file, true, Map::new()).unwrap();
    writer
        .write_event(&WatchEvent {
            ts: 1,
            resource: bindery_ingest::ResourceRef::new(bindery_ingest::Space::Its, "g", "v1", "r"),
            event_type: EventType::Synced,
            object: None,
        })
        .unwrap();
    writer.finish().unwrap();
    let (reader, events) = read_all(&path);
    assert!(reader.is_compressed());
    assert_eq!(events.len(), 1);
}

#[test]
fn missing_file_is_an_io_error_naming_it() {
    let err = LogReader::open(Path::new("/nonexistent/dir/x.jsonl")).unwrap_err();
    assert!(
        err.to_string().starts_with("/nonexistent/dir/x.jsonl: "),
        "{err}"
    );
}

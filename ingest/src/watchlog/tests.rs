//! Tests of the watch log reader and writer on in-memory streams.

use std::io::{self, Cursor, Read, Write};
use std::sync::{Arc, Mutex};

use serde_json::{Map, Value, json};

use super::*;

/// A `Write` whose bytes can be looked at while (and after) a writer owns it.
#[derive(Clone, Default)]
struct SharedBuf(Arc<Mutex<Vec<u8>>>);

impl SharedBuf {
    fn bytes(&self) -> Vec<u8> {
        self.0.lock().unwrap().clone()
    }
}

impl Write for SharedBuf {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

const HEADER: &str = r#"{"watchLog":1,"recordedAt":"2026-11-26T10:00:00Z"}"#;

fn deployments() -> ResourceRef {
    ResourceRef::new(Space::Wds, "apps", "v1", "deployments")
}

fn added(ts: i64, name: &str) -> WatchEvent {
    WatchEvent {
        ts,
        resource: deployments(),
        event_type: EventType::Added,
        object: Some(json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name, "namespace": "ns", "uid": format!("u-{name}")}
        })),
    }
}

fn synced(ts: i64) -> WatchEvent {
    WatchEvent {
        ts,
        resource: deployments(),
        event_type: EventType::Synced,
        object: None,
    }
}

fn event_line(event: &WatchEvent) -> String {
    serde_json::to_string(event).unwrap()
}

fn reader(name: &str, text: impl Into<Vec<u8>>) -> Result<LogReader, LogError> {
    LogReader::from_reader(name.to_owned(), Cursor::new(text.into()))
}

/// Runs `f` with a subscriber that captures warnings as text.
fn capture_warnings<T>(f: impl FnOnce() -> T) -> (T, String) {
    let buf = SharedBuf::default();
    let writer = buf.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::WARN)
        .finish();
    let result = tracing::subscriber::with_default(subscriber, f);
    (result, String::from_utf8(buf.bytes()).unwrap())
}

fn sample_events() -> Vec<WatchEvent> {
    vec![
        added(1, "a"),
        added(2, "b"),
        synced(3),
        WatchEvent {
            ts: 4,
            resource: ResourceRef::new(
                Space::Its,
                "cluster.open-cluster-management.io",
                "v1",
                "managedclusters",
            ),
            event_type: EventType::Reset,
            object: None,
        },
        WatchEvent {
            event_type: EventType::Deleted,
            ..added(5, "a")
        },
    ]
}

#[test]
fn event_serializes_in_spec_key_order() {
    let line = event_line(&added(7, "n"));
    assert!(
        line.starts_with(
            r#"{"ts":7,"space":"wds","group":"apps","version":"v1","resource":"deployments","type":"ADDED","object":{"#
        ),
        "{line}"
    );
    assert_eq!(
        event_line(&synced(8)),
        r#"{"ts":8,"space":"wds","group":"apps","version":"v1","resource":"deployments","type":"SYNCED"}"#
    );
}

#[test]
fn event_deserializes_with_serde() {
    let event = added(7, "n");
    let back: WatchEvent = serde_json::from_str(&event_line(&event)).unwrap();
    assert_eq!(back, event);
    let err = serde_json::from_str::<WatchEvent>(r#"{"ts":1}"#).unwrap_err();
    assert!(err.to_string().contains("`space`"), "{err}");
}

#[test]
fn header_writes_version_first() {
    let mut extra = Map::new();
    extra.insert("recordedAt".into(), json!("now"));
    extra.insert("watchLog".into(), json!(99));
    extra.insert("engine".into(), json!("bindery"));
    assert_eq!(
        serde_json::to_string(&LogHeader::new(extra)).unwrap(),
        r#"{"watchLog":1,"recordedAt":"now","engine":"bindery"}"#
    );
}

fn round_trip(compressed: bool) {
    let buf = SharedBuf::default();
    let mut extra = Map::new();
    extra.insert("recordedAt".into(), json!("2026-11-26T10:00:00Z"));
    let mut writer = LogWriter::to_writer(buf.clone(), compressed, extra.clone()).unwrap();
    for event in sample_events() {
        writer.write_event(&event).unwrap();
    }
    writer.finish().unwrap();

    let bytes = buf.bytes();
    assert_eq!(bytes.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]), compressed);
    let total = bytes.len() as u64;
    let mut reader = reader("rt", bytes).unwrap();
    assert_eq!(reader.is_compressed(), compressed);
    assert_eq!(reader.header(), &LogHeader { version: 1, extra });
    let lines: Vec<LogLine> = reader.by_ref().collect::<Result<_, _>>().unwrap();
    let events: Vec<WatchEvent> = lines.iter().map(|l| l.event.clone()).collect();
    assert_eq!(events, sample_events());
    let numbers: Vec<u64> = lines.iter().map(|l| l.line).collect();
    assert_eq!(numbers, vec![2, 3, 4, 5, 6]);
    assert_eq!(reader.torn_last_line(), None);
    assert_eq!(reader.bytes_read(), total);
    assert_eq!(reader.total_bytes(), None);
}

#[test]
fn round_trip_plain() {
    round_trip(false);
}

#[test]
fn round_trip_zstd() {
    round_trip(true);
}

#[test]
fn plain_output_is_one_compact_line_per_event() {
    let buf = SharedBuf::default();
    let mut writer = LogWriter::to_writer(buf.clone(), false, Map::new()).unwrap();
    writer.write_event(&synced(1)).unwrap();
    writer.finish().unwrap();
    assert_eq!(
        String::from_utf8(buf.bytes()).unwrap(),
        "{\"watchLog\":1}\n{\"ts\":1,\"space\":\"wds\",\"group\":\"apps\",\"version\":\"v1\",\
         \"resource\":\"deployments\",\"type\":\"SYNCED\"}\n"
    );
}

#[test]
fn writer_rejects_event_without_object() {
    let mut writer = LogWriter::to_writer(SharedBuf::default(), false, Map::new()).unwrap();
    let event = WatchEvent {
        object: None,
        ..added(1, "a")
    };
    let err = writer.write_event(&event).unwrap_err();
    assert!(matches!(err, LogError::InvalidEvent { .. }), "{err}");
}

#[test]
fn sample_header_and_events_parse() {
    let text = format!(
        "{HEADER}\n{}\n",
        r#"{"ts":1764151200003,"space":"wds","group":"apps","version":"v1","resource":"deployments","type":"SYNCED"}"#
    );
    let mut r = reader("ex.jsonl", text).unwrap();
    assert_eq!(
        r.header().extra["recordedAt"],
        json!("2026-11-26T10:00:00Z")
    );
    let line = r.next().unwrap().unwrap();
    assert_eq!(line.line, 2);
    assert_eq!(line.event, synced(1764151200003));
    assert!(r.next().is_none());
}

fn header_error(text: &str) -> LogError {
    reader("h.jsonl", text).unwrap_err()
}

#[test]
fn not_a_header() {
    let event = event_line(&synced(1));
    for text in [
        String::new(),
        "\n".to_owned(),
        format!("{event}\n"),
        "[1]\n".to_owned(),
        "{\"watchLog\":\"1\"}\n".to_owned(),
        "{\"watchLog\":1.5}\n".to_owned(),
        "{\"watchLog\":-1}\n".to_owned(),
        "watchLog 1\n".to_owned(),
        "{\"watchLog\":1\n".to_owned(),
    ] {
        let err = header_error(&text);
        assert!(
            matches!(err, LogError::NotAHeader { .. }),
            "{text:?}: {err}"
        );
        assert!(
            err.to_string()
                .starts_with("h.jsonl:1: not a watch log header: "),
            "{err}"
        );
    }
    assert!(
        header_error(&format!("{event}\n"))
            .to_string()
            .contains("missing key `watchLog`")
    );
}

#[test]
fn unsupported_version() {
    let text = format!("{{\"watchLog\":2}}\n{}\n", event_line(&synced(1)));
    let err = header_error(&text);
    assert!(
        matches!(err, LogError::UnsupportedVersion { version: 2, .. }),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        "h.jsonl:1: unsupported watch log version 2 (this reader supports version 1)"
    );
}

#[test]
fn header_without_newline_is_an_empty_log() {
    let mut r = reader("h.jsonl", HEADER).unwrap();
    assert!(r.next().is_none());
    assert_eq!(r.torn_last_line(), None);
}

#[test]
fn header_with_bom_and_crlf() {
    let text = format!("\u{feff}{HEADER}\r\n{}\r\n", event_line(&synced(1)));
    let events: Vec<_> = reader("h.jsonl", text)
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(events.len(), 1);
}

/// Reads `body` (after a header) and returns the events before the first error,
/// the error, and what the reader yields after it.
fn read_until_error(body: &str) -> (Vec<LogLine>, LogError, usize) {
    let mut r = reader("case1.jsonl", format!("{HEADER}\n{body}")).unwrap();
    let mut ok = Vec::new();
    for item in r.by_ref() {
        match item {
            Ok(line) => ok.push(line),
            Err(e) => {
                let after = r.by_ref().count();
                return (ok, e, after);
            }
        }
    }
    panic!("no error in {body:?}");
}

fn bad_reason(err: &LogError, want_line: u64) -> &str {
    match err {
        LogError::BadLine { file, line, reason } => {
            assert_eq!(file, "case1.jsonl");
            assert_eq!(*line, want_line, "{err}");
            reason
        }
        other => panic!("not a BadLine: {other}"),
    }
}

#[test]
fn bad_json_reports_line_and_stops() {
    let good = event_line(&synced(1));
    let body = format!("{good}\n{good}\n{{\"ts\":}}\n{good}\n");
    let (ok, err, after) = read_until_error(&body);
    assert_eq!(ok.len(), 2);
    assert_eq!(after, 0, "iteration continued after the error");
    assert_eq!(
        bad_reason(&err, 4),
        "invalid JSON: expected value at column 7"
    );
    assert_eq!(
        err.to_string(),
        "case1.jsonl:4: invalid JSON: expected value at column 7"
    );
}

#[test]
fn missing_required_keys_are_named() {
    let full = event_line(&added(1, "a"));
    for key in [
        "ts", "space", "group", "version", "resource", "type", "object",
    ] {
        let mut map: Map<String, Value> = serde_json::from_str(&full).unwrap();
        map.remove(key);
        let line = serde_json::to_string(&map).unwrap();
        let (ok, err, _) = read_until_error(&format!("{line}\n"));
        assert!(ok.is_empty());
        let reason = bad_reason(&err, 2);
        assert!(
            reason.starts_with(&format!("missing required key `{key}`")),
            "{key}: {reason}"
        );
    }
}

#[test]
fn bad_values_are_bad_lines() {
    let cases = [
        (
            r#"{"ts":1,"space":"xds","group":"","version":"v1","resource":"r","type":"SYNCED"}"#,
            "unknown space \"xds\"",
        ),
        (
            r#"{"ts":1,"space":"wds","group":"","version":"v1","resource":"r","type":"UPDATED"}"#,
            "unknown event type \"UPDATED\"",
        ),
        (
            r#"{"ts":"1","space":"wds","group":"","version":"v1","resource":"r","type":"SYNCED"}"#,
            "key `ts` must be an integer",
        ),
        (
            r#"{"ts":1.5,"space":"wds","group":"","version":"v1","resource":"r","type":"SYNCED"}"#,
            "key `ts` must be an integer",
        ),
        (
            r#"{"ts":1,"space":"wds","group":null,"version":"v1","resource":"r","type":"SYNCED"}"#,
            "key `group` must be a string",
        ),
        (
            r#"{"ts":1,"space":"wds","group":"","version":"v1","resource":"r","type":"ADDED","object":[1]}"#,
            "key `object` must be a JSON object",
        ),
        (
            r#"{"ts":1,"space":"wds","group":"","version":"v1","resource":"r","type":"ADDED","object":null}"#,
            "key `object` must be a JSON object",
        ),
        (r#"[1,2]"#, "expected a JSON object"),
        ("   ", "empty line"),
        ("", "empty line"),
    ];
    for (line, want) in cases {
        let (_, err, after) = read_until_error(&format!("{line}\n{}\n", event_line(&synced(1))));
        assert_eq!(after, 0);
        let reason = bad_reason(&err, 2);
        assert!(reason.contains(want), "{line}: {reason}");
    }
}

#[test]
fn unknown_keys_ignored_and_object_dropped_on_synced() {
    let line = r#"{"ts":1,"space":"wds","group":"apps","version":"v1","resource":"deployments","type":"SYNCED","object":{"x":1},"extra":true}"#;
    let mut r = reader("x", format!("{HEADER}\n{line}\n")).unwrap();
    assert_eq!(r.next().unwrap().unwrap().event, synced(1));
}

#[test]
fn torn_last_line_is_a_warning() {
    let good = event_line(&added(1, "a"));
    for torn in [r#"{"ts":2,"space":"wd"#.to_owned(), event_line(&synced(2))] {
        let text = format!("{HEADER}\n{good}\n{good}\n{torn}");
        let ((events, torn_line), warnings) = capture_warnings(|| {
            let mut r = reader("crash.jsonl", text).unwrap();
            let events: Vec<LogLine> = r.by_ref().collect::<Result<_, _>>().unwrap();
            (events, r.torn_last_line())
        });
        assert_eq!(events.len(), 2);
        assert_eq!(torn_line, Some(4));
        assert!(warnings.contains("WARN"), "{warnings}");
        assert!(
            warnings.contains("crash.jsonl:4: incomplete last line"),
            "{warnings}"
        );
    }
}

#[test]
fn truncated_zstd_stream_keeps_flushed_events() {
    let buf = SharedBuf::default();
    let mut writer = LogWriter::to_writer(buf.clone(), true, Map::new()).unwrap();
    for event in sample_events() {
        writer.write_event(&event).unwrap();
    }
    writer.flush().unwrap();
    // A crash now leaves a frame that is never finished.
    let crashed = buf.bytes();
    writer.finish().unwrap();

    let ((events, torn), warnings) = capture_warnings(|| {
        let mut r = reader("crash.jsonl.zst", crashed.clone()).unwrap();
        let events: Vec<WatchEvent> = r.by_ref().map(|l| l.unwrap().event).collect();
        (events, r.torn_last_line())
    });
    assert_eq!(events, sample_events());
    assert_eq!(torn, None);
    assert!(warnings.contains("middle of a zstd frame"), "{warnings}");

    // Cut inside the last block: whatever is decoded is a prefix, never an error.
    for cut in 1..16 {
        let bytes = crashed[..crashed.len() - cut].to_vec();
        let Ok(r) = reader("cut.jsonl.zst", bytes) else {
            continue;
        };
        let events: Vec<WatchEvent> = r
            .map(|l| l.map(|l| l.event))
            .collect::<Result<_, _>>()
            .unwrap_or_else(|e| panic!("cut {cut}: {e}"));
        assert_eq!(events[..], sample_events()[..events.len()]);
    }
}

#[test]
fn detects_zstd_from_a_slow_pipe() {
    /// Delivers one byte per read.
    struct Trickle(Cursor<Vec<u8>>);
    impl io::Read for Trickle {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = buf.len().min(1);
            self.0.read(&mut buf[..n])
        }
    }
    let buf = SharedBuf::default();
    let mut writer = LogWriter::to_writer(buf.clone(), true, Map::new()).unwrap();
    writer.write_event(&synced(1)).unwrap();
    writer.finish().unwrap();
    let r = LogReader::from_reader("pipe".into(), Trickle(Cursor::new(buf.bytes()))).unwrap();
    assert!(r.is_compressed());
    assert_eq!(
        r.map(|l| l.unwrap().event).collect::<Vec<_>>(),
        vec![synced(1)]
    );
}

#[test]
fn resource_ref_display() {
    assert_eq!(deployments().to_string(), "wds:apps/v1/deployments");
    assert_eq!(
        ResourceRef::new(Space::Wds, "", "v1", "namespaces").to_string(),
        "wds:v1/namespaces"
    );
}

#[test]
fn reader_and_writer_are_send() {
    fn assert_send<T: Send>() {}
    assert_send::<LogReader>();
    assert_send::<LogWriter>();
}

/// An event line of `len` bytes (padding in an unknown key), without its newline.
fn line_of(len: usize) -> Vec<u8> {
    let head = r#"{"ts":1,"space":"wds","group":"","version":"v1","resource":"namespaces","type":"SYNCED","pad":""#;
    let mut line = head.as_bytes().to_vec();
    line.resize(len - 2, b'x');
    line.extend_from_slice(b"\"}");
    line
}

#[test]
fn a_line_at_the_limit_is_read_and_a_longer_one_is_an_error_naming_it() {
    let mut text = format!("{HEADER}\n").into_bytes();
    text.extend(line_of(MAX_LINE_BYTES));
    text.push(b'\n');
    text.extend(line_of(MAX_LINE_BYTES + 1));
    text.extend(b"\n{}\n");
    let mut r = reader("big.jsonl", text).unwrap();
    assert_eq!(r.next().unwrap().unwrap().line, 2);
    let err = r.next().unwrap().unwrap_err().to_string();
    assert_eq!(
        err,
        "big.jsonl:3: line longer than 16 MiB (the longest a watch log line may be)"
    );
    assert!(r.next().is_none(), "nothing after a bad line");
    assert!(r.buffer_capacity() <= MAX_LINE_BYTES + 1 + 64 * 1024);
}

#[test]
fn an_overlong_tail_without_newline_is_a_torn_line_read_in_bounded_memory() {
    // A NUL-filled tail after a crash, longer than the limit: never held whole.
    let tail = io::repeat(0).take(3 * MAX_LINE_BYTES as u64);
    let input = Cursor::new(format!("{HEADER}\n").into_bytes()).chain(tail);
    let mut r = LogReader::from_reader("zeros.jsonl".into(), input).unwrap();
    assert!(r.next().is_none());
    assert_eq!(r.torn_last_line(), Some(2));
    assert!(r.buffer_capacity() <= MAX_LINE_BYTES + 1 + 64 * 1024);
}

#[test]
fn an_overlong_first_line_is_not_a_header_and_is_not_read_to_its_end() {
    // `/dev/zero`: an endless first line.
    let err = LogReader::from_reader("/dev/zero".into(), io::repeat(0)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "/dev/zero:1: not a watch log header: the first line is longer than 16 MiB"
    );
}

#[test]
fn duplicate_keys_in_a_policy_spec_are_marked_for_the_policy() {
    let policy = r#"{"ts":1,"space":"wds","group":"control.kubestellar.io","version":"v1alpha1","resource":"bindingpolicies","type":"ADDED","object":{"metadata":{"name":"p","name":"q","uid":"u"},"spec":{"clusterSelectors":[{"matchLabels":{"a":"b","a":"c"}}]}}}"#;
    let other = r#"{"ts":1,"space":"wds","group":"","version":"v1","resource":"configmaps","type":"ADDED","object":{"metadata":{"name":"a","name":"b"}}}"#;
    let mut r = reader("dups.jsonl", format!("{HEADER}\n{policy}\n{other}\n")).unwrap();
    let object = r.next().unwrap().unwrap().event.object.unwrap();
    // Outside the spec: the last one kept, the mark removed (and warned about).
    assert_eq!(object["metadata"], json!({"name": "q", "uid": "u"}));
    let labels = object["spec"]["clusterSelectors"][0]["matchLabels"]
        .as_object()
        .unwrap();
    assert_eq!(
        bindery_engine::strict_json::duplicate_keys(labels),
        Some(vec!["a".to_string()])
    );
    let spec = bindery_engine::PolicySpec::parse(object.get("spec"));
    assert_eq!(spec.cluster_selectors, vec![None]);
    assert!(
        spec.problems[0].contains("duplicate key \"a\""),
        "{:?}",
        spec.problems
    );
    // Not a policy: read as before, the last one kept.
    let object = r.next().unwrap().unwrap().event.object.unwrap();
    assert_eq!(object, json!({"metadata": {"name": "b"}}));
}

/// What a reader yields: each line's number and event, or the error's text.
fn yielded(
    items: impl Iterator<Item = Result<LogLine, LogError>>,
) -> Vec<Result<(u64, WatchEvent), String>> {
    items
        .map(|item| item.map(|l| (l.line, l.event)).map_err(|e| e.to_string()))
        .collect()
}

#[test]
fn read_ahead_yields_what_the_reader_yields() {
    // Several batches of lines, then a bad line (the end), and a log with a torn last
    // line, plain and compressed.
    let good: String = (0..3000)
        .map(|i| event_line(&added(i, &format!("o{i}"))) + "\n")
        .collect();
    let bad = format!("{HEADER}\n{good}{{\"ts\":}}\n{good}");
    let torn = format!("{HEADER}\n{good}{}", r#"{"ts":2,"space":"wd"#);
    for text in [bad, torn] {
        let compressed = zstd::encode_all(text.as_bytes(), 1).unwrap();
        for bytes in [text.clone().into_bytes(), compressed] {
            let plain = yielded(reader("a.jsonl", bytes.clone()).unwrap());
            let mut ahead = reader("a.jsonl", bytes.clone()).unwrap().read_ahead();
            assert_eq!(ahead.name(), "a.jsonl");
            assert_eq!(yielded(ahead.by_ref()), plain);
            assert_eq!(ahead.next().map(|r| r.is_ok()), None, "fused");
            let mut direct = reader("a.jsonl", bytes).unwrap();
            direct.by_ref().for_each(drop);
            assert_eq!(ahead.torn_last_line(), direct.torn_last_line());
        }
    }
}

#[test]
fn a_read_ahead_dropped_early_stops_its_thread() {
    let good: String = (0..20_000)
        .map(|i| event_line(&added(i, &format!("o{i}"))) + "\n")
        .collect();
    let mut ahead = reader("a.jsonl", format!("{HEADER}\n{good}"))
        .unwrap()
        .read_ahead();
    assert_eq!(ahead.next().unwrap().unwrap().line, 2);
    // The thread is blocked on a full channel; dropping the reader must end it (the
    // test would hang in `join` below otherwise).
    let thread = ahead.thread.take().unwrap();
    drop(ahead);
    assert_eq!(thread.join().unwrap(), None);
}

//! The journal on a small live-like stream: the first publish only starts it, each
//! later change is kept with its causes, and the count and age limits drop the oldest
//! (moving the time since which it is complete).

use std::time::Duration;

use bindery_engine::ObjectKey;
use bindery_ingest::{EventType, ResourceRef, WatchEvent};
use serde_json::{Value, json};

use super::*;
use crate::history::What;
use crate::input::pipeline::Pipeline;
use crate::test_support::{configmaps, policies, wecs};

fn event(
    ts: i64,
    resource: ResourceRef,
    event_type: EventType,
    object: Option<Value>,
) -> WatchEvent {
    WatchEvent {
        ts,
        resource,
        event_type,
        object,
    }
}

fn wec(name: &str, rv: u32, env: &str) -> Value {
    json!({"metadata": {"name": name, "uid": format!("u-{name}"), "resourceVersion": rv.to_string(),
                        "labels": {"env": env}}})
}

fn configmap(name: &str, rv: u32, app: &str) -> Value {
    json!({"kind": "ConfigMap", "metadata": {"name": name, "namespace": "ns", "uid": format!("u-{name}"),
           "resourceVersion": rv.to_string(), "labels": {"app": app}}})
}

/// A journal and the engine it follows, as the engine loop drives them.
struct Live {
    pipeline: Pipeline,
    journal: Journal,
    line: u64,
    published: bool,
}

impl Live {
    fn new(limit: JournalLimit) -> Live {
        Live {
            pipeline: Pipeline::new(),
            journal: Journal::new(limit, Some("rec.jsonl".into())),
            line: 1,
            published: false,
        }
    }

    fn push(&mut self, events: Vec<WatchEvent>) {
        for e in events {
            self.line += 1;
            self.journal.push(&mut self.pipeline, self.line, e).unwrap();
        }
        let out = self.pipeline.close_epoch();
        self.journal.close(out.epoch, &out.changes, !self.published);
        self.published = true;
    }

    fn query(&mut self, filter: &Filter, now: i64) -> JournalAnswer {
        let engine = self.pipeline.engine();
        let mut binding = |name: &str| engine.binding(name).map(Rc::new);
        self.journal.query(filter, None, None, now, &mut binding)
    }
}

fn started(limit: JournalLimit) -> Live {
    let policy = json!({"metadata": {"name": "p", "uid": "u-p", "resourceVersion": "1", "generation": 1},
        "spec": {"clusterSelectors": [{"matchLabels": {"env": "prod"}}],
                 "downsync": [{"resources": ["configmaps"], "objectSelectors": [{"matchLabels": {"app": "x"}}]}]}});
    let mut live = Live::new(limit);
    live.push(vec![
        event(1, wecs(), EventType::Added, Some(wec("c1", 1, "prod"))),
        event(1, wecs(), EventType::Added, Some(wec("c2", 2, "dev"))),
        event(1, wecs(), EventType::Synced, None),
        event(1, policies(), EventType::Added, Some(policy)),
        event(1, policies(), EventType::Synced, None),
        event(
            1,
            configmaps(),
            EventType::Added,
            Some(configmap("a", 3, "x")),
        ),
        event(1, configmaps(), EventType::Synced, None),
    ]);
    live
}

const ROOMY: JournalLimit = JournalLimit {
    count: 100,
    max_age: Duration::from_secs(3600),
};

#[test]
fn the_first_publish_starts_the_journal_and_later_changes_come_with_their_causes() {
    let mut live = started(ROOMY);
    let answer = live.query(&Filter::default(), 1);
    assert!(answer.changes.is_empty(), "{:?}", answer.changes);
    assert_eq!(answer.complete_since, Some(1));
    live.push(vec![event(
        10,
        wecs(),
        EventType::Modified,
        Some(wec("c2", 4, "prod")),
    )]);
    live.push(vec![event(
        20,
        configmaps(),
        EventType::Modified,
        Some(configmap("a", 5, "y")),
    )]);
    let answer = live.query(&Filter::default(), 20);
    let summary: Vec<(i64, What, Vec<u64>)> = answer
        .changes
        .iter()
        .map(|c| {
            (
                c.ts,
                c.change.clone(),
                c.causes.iter().map(|k| k.line).collect(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            (
                10,
                What::DestinationAdded {
                    cluster: "c2".into()
                },
                vec![9]
            ),
            (
                20,
                What::WorkloadRemoved {
                    object: "/configmaps/ns/a".into()
                },
                vec![10]
            ),
        ]
    );
    assert_eq!(answer.recording.as_deref(), Some("rec.jsonl"));
    // The filters: the cluster's own change; the object's entry (and no destination:
    // no Binding lists it now).
    let c2 = Filter {
        cluster: Some("c2".into()),
        ..Filter::default()
    };
    let answer = live.query(&c2, 20);
    assert_eq!(answer.changes.len(), 2, "{:?}", answer.changes);
    let object = Filter {
        object: Some("/configmaps/ns/a".parse::<ObjectKey>().unwrap()),
        ..Filter::default()
    };
    let answer = live.query(&object, 20);
    assert_eq!(answer.changes.len(), 1, "{:?}", answer.changes);
    assert_eq!(answer.changes[0].ts, 20);
}

#[test]
fn the_count_and_age_limits_drop_the_oldest_changes() {
    let limit = JournalLimit {
        count: 2,
        max_age: Duration::from_millis(1000),
    };
    let mut live = started(limit);
    // Three changes: c2 in, out, in again.
    for (ts, env) in [(10, "prod"), (20, "dev"), (30, "prod")] {
        let rv = u32::try_from(ts).unwrap();
        live.push(vec![event(
            ts,
            wecs(),
            EventType::Modified,
            Some(wec("c2", rv, env)),
        )]);
    }
    let answer = live.query(&Filter::default(), 30);
    let times: Vec<i64> = answer.changes.iter().map(|c| c.ts).collect();
    assert_eq!(times, vec![20, 30]);
    assert_eq!(answer.complete_since, Some(11));
    // A second later the change at 20 is too old; at 40 s all are.
    let answer = live.query(&Filter::default(), 1_025);
    let times: Vec<i64> = answer.changes.iter().map(|c| c.ts).collect();
    assert_eq!(times, vec![30]);
    assert_eq!(answer.complete_since, Some(21));
    let answer = live.query(&Filter::default(), 40_000);
    assert!(answer.changes.is_empty());
    assert_eq!(answer.complete_since, Some(39_000));
    assert_eq!(live.journal.len(), 0);
}

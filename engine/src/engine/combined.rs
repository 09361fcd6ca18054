//! The CombinedStatuses materialized on worker 0: each (policy, object)'s table as the
//! dataflow outputs it (step 9), its collectors evaluated on its rows and combined.
//! Each row's evaluation is kept and reused while its WorkStatus and the collector's
//! spec stay the same, so a changed row costs its own evaluation and the combination.
//! A collector's edit, an object's new uid or kind and a policy's new uid (all beside
//! the dataflow) render again the tables they touch.
//!
//! Beside the tables, each policy's missing StatusCollectors (those its tables name
//! that do not exist or are invalid: the `StatusCollectorsAvailable` condition), kept
//! up to date where the tables are: a policy's set is computed again when one of its
//! tables comes, goes or changes, or a collector it names is touched.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use super::state::{InputState, Touched};
use crate::collector::status::computable;
use crate::collector::{
    CollectorSpec, CollectorStatus, CombinedResult, RowEvaluation, TableRow, combine, evaluate_row,
};
use crate::dataflow::CombinedRecord;
use crate::input::WorkloadRef;
use crate::intern::Sym;
use crate::model::{Json, ObjectKey};

/// How one epoch changed one CombinedStatus (by namespace and name).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CombinedChange {
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
    /// What it is now (`None`: it must not exist).
    pub status: Option<CombinedResult>,
}

/// The StatusCollectors' row evaluations of one epoch (an evaluation kept from an
/// earlier epoch is not counted again).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct EvaluationWork {
    /// Rows evaluated (one collector on one WEC's row).
    pub rows: u64,
    /// Expressions that failed in them (filter, select, groupBy or subject).
    pub errors: u64,
    /// Time spent evaluating them.
    pub time: std::time::Duration,
}

impl EvaluationWork {
    fn count(&mut self, evaluation: &RowEvaluation, time: std::time::Duration) {
        self.rows += 1;
        if let RowEvaluation::Kept { errors, .. } = evaluation {
            self.errors += errors.len() as u64;
        }
        self.time += time;
    }
}

/// A (policy, object) key.
type TableKey = (Sym, ObjectKey);

/// One row's evaluation by one collector, and what it was computed from.
struct Evaluated {
    spec: Arc<CollectorSpec>,
    status: Option<Json>,
    last_update: Option<String>,
    /// The object's content, for a collector that reads `obj`.
    obj: Option<Json>,
    evaluation: RowEvaluation,
}

struct Table {
    record: CombinedRecord,
    /// By (collector, WEC).
    evaluations: HashMap<(Sym, Sym), Evaluated>,
    rendered: Option<CombinedResult>,
    /// A valid collector of it reads `obj` (as of its last rendering).
    reads_obj: bool,
}

/// See the module docs.
#[derive(Default)]
pub(super) struct CombinedStore {
    tables: BTreeMap<TableKey, Table>,
    by_collector: HashMap<Sym, BTreeSet<TableKey>>,
    by_object: HashMap<ObjectKey, BTreeSet<Sym>>,
    /// Per object, how many of its tables read `obj`: whose content is wanted.
    reading_obj: HashMap<ObjectKey, usize>,
    /// Objects whose content may be wanted since the last
    /// [`take_content_requests`](Self::take_content_requests).
    content_checks: BTreeSet<ObjectKey>,
    /// The row evaluations since the last [`take_work`](Self::take_work).
    work: EvaluationWork,
    /// Per policy: how many of its tables name each collector.
    named: HashMap<Sym, HashMap<Sym, usize>>,
    /// Per collector: the policies with a table naming it.
    namers: HashMap<Sym, HashSet<Sym>>,
    /// Per policy with missing collectors: their names, sorted (never empty).
    missing: HashMap<Sym, Vec<String>>,
}

impl CombinedStore {
    fn index(&mut self, key: &TableKey, record: &CombinedRecord, add: bool) {
        let p = key.0;
        for c in &record.collectors {
            let set = self.by_collector.entry(*c).or_default();
            if add {
                set.insert(*key);
            } else {
                set.remove(key);
                if set.is_empty() {
                    self.by_collector.remove(c);
                }
            }
            let named = self.named.entry(p).or_default();
            let count = named.entry(*c).or_default();
            if add {
                *count += 1;
                if *count == 1 {
                    self.namers.entry(*c).or_default().insert(p);
                }
            } else {
                *count -= 1;
                if *count == 0 {
                    named.remove(c);
                    if named.is_empty() {
                        self.named.remove(&p);
                    }
                    if let Some(set) = self.namers.get_mut(c) {
                        set.remove(&p);
                        if set.is_empty() {
                            self.namers.remove(c);
                        }
                    }
                }
            }
        }
        let set = self.by_object.entry(key.1).or_default();
        if add {
            set.insert(key.0);
        } else {
            set.remove(&key.0);
            if set.is_empty() {
                self.by_object.remove(&key.1);
            }
        }
    }

    /// Applies an epoch's consolidated `updates` and what `touched` says changed beside
    /// the dataflow; returns the CombinedStatuses that changed, sorted by namespace and
    /// name (a renamed one, of an object created again, as its old name gone and its new
    /// one written), and the policies whose missing collectors changed, sorted by name.
    pub(super) fn apply(
        &mut self,
        state: &InputState,
        updates: Vec<((TableKey, CombinedRecord), isize)>,
        touched: Touched,
    ) -> (Vec<CombinedChange>, Vec<String>) {
        let mut dirty: BTreeSet<TableKey> = BTreeSet::new();
        let mut after: BTreeMap<TableKey, Option<CombinedRecord>> = BTreeMap::new();
        for ((key, record), diff) in updates {
            debug_assert!(diff == 1 || diff == -1, "multiplicity {diff}");
            let slot = after.entry(key).or_insert(None);
            if diff > 0 {
                *slot = Some(record);
            }
        }
        let mut before: BTreeMap<TableKey, Option<CombinedResult>> = BTreeMap::new();
        for (key, record) in after {
            let old = self.tables.remove(&key);
            if let Some(old) = &old {
                self.index(&key, &old.record, false);
            }
            let (evaluations, rendered, reads_obj) = old.map_or_else(
                || (HashMap::new(), None, false),
                |t| (t.evaluations, t.rendered, t.reads_obj),
            );
            before.insert(key, rendered.clone());
            match record {
                Some(record) => {
                    self.index(&key, &record, true);
                    self.tables.insert(
                        key,
                        Table {
                            record,
                            evaluations,
                            rendered,
                            reads_obj,
                        },
                    );
                }
                None => self.count_reading(key.1, reads_obj, false),
            }
            dirty.insert(key);
        }
        let mut policies: HashSet<Sym> = dirty.iter().map(|(p, _)| *p).collect();
        for c in &touched.collectors {
            dirty.extend(self.by_collector.get(c).into_iter().flatten().copied());
            policies.extend(self.namers.get(c).into_iter().flatten().copied());
        }
        let missing_changed = self.update_missing(state, policies);
        for o in &touched.objects {
            let policies = self.by_object.get(o).into_iter().flatten();
            dirty.extend(policies.map(|&p| (p, *o)));
        }
        self.content_checks.extend(
            touched
                .stale_contents
                .iter()
                .filter(|o| self.reading_obj.contains_key(*o)),
        );
        for &p in &touched.policies {
            let low = (p, (Sym(0), Sym(0), Sym(0), Sym(0)));
            let high = (
                p,
                (Sym(u32::MAX), Sym(u32::MAX), Sym(u32::MAX), Sym(u32::MAX)),
            );
            dirty.extend(self.tables.range(low..=high).map(|(k, _)| *k));
        }
        let mut out = Vec::new();
        for key in dirty {
            let old = match before.remove(&key) {
                Some(old) => old,
                None => self.tables.get(&key).and_then(|t| t.rendered.clone()),
            };
            let mut new = None;
            if let Some(table) = self.tables.get_mut(&key) {
                let reads_before = table.reads_obj;
                new = render(state, &key, table, &mut self.work);
                table.rendered = new.clone();
                let reads_now = table.reads_obj;
                self.count_reading(key.1, reads_before, reads_now);
                if reads_now {
                    self.content_checks.insert(key.1);
                }
            }
            changes(old, new, &mut out);
        }
        out.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
        (out, missing_changed)
    }

    /// Computes again the missing collectors of `policies`; returns the names of those
    /// whose set changed, sorted.
    fn update_missing(&mut self, state: &InputState, policies: HashSet<Sym>) -> Vec<String> {
        let i = &state.interner;
        let mut changed = Vec::new();
        for p in policies {
            let mut now: Vec<String> = self
                .named
                .get(&p)
                .into_iter()
                .flat_map(HashMap::keys)
                .filter(|c| state.collectors.get(c).is_none_or(|c| c.spec.is_err()))
                .map(|&c| i.resolve(c).to_string())
                .collect();
            now.sort();
            let before = if now.is_empty() {
                self.missing.remove(&p)
            } else {
                self.missing.insert(p, now.clone())
            };
            if before.unwrap_or_default() != now {
                changed.push(i.resolve(p).to_string());
            }
        }
        changed.sort();
        changed
    }

    /// The missing collectors of policy `p`, sorted (empty when none is).
    pub(super) fn missing(&self, p: Sym) -> Vec<String> {
        self.missing.get(&p).cloned().unwrap_or_default()
    }

    /// Every policy with missing collectors: their names, sorted, by policy name.
    pub(super) fn all_missing(&self, state: &InputState) -> BTreeMap<String, Vec<String>> {
        self.missing
            .iter()
            .map(|(&p, m)| (state.interner.resolve(p).to_string(), m.clone()))
            .collect()
    }

    /// The row evaluations since the last call.
    pub(super) fn take_work(&mut self) -> EvaluationWork {
        std::mem::take(&mut self.work)
    }

    /// Counts a table of `object` that read `obj` (`before`) and reads it (`now`).
    fn count_reading(&mut self, object: ObjectKey, before: bool, now: bool) {
        match (before, now) {
            (false, true) => *self.reading_obj.entry(object).or_default() += 1,
            (true, false) => {
                if let Some(n) = self.reading_obj.get_mut(&object) {
                    *n -= 1;
                    if *n == 0 {
                        self.reading_obj.remove(&object);
                    }
                }
            }
            _ => {}
        }
    }

    /// The objects whose content is wanted and was not asked for since it became so:
    /// read by a table's collector, and missing or older than the object (by
    /// `resourceVersion`), sorted; each with the `resourceVersion` it has now.
    pub(super) fn take_content_requests(
        &mut self,
        state: &InputState,
    ) -> Vec<(WorkloadRef, String)> {
        std::mem::take(&mut self.content_checks)
            .into_iter()
            .filter(|o| self.reading_obj.contains_key(o))
            .filter_map(|o| content_wanted(state, &o))
            .collect()
    }

    /// Every object whose content is wanted now (missing, or older than the object).
    pub(super) fn contents_wanted(&self, state: &InputState) -> Vec<(WorkloadRef, String)> {
        let mut out: Vec<(WorkloadRef, String)> = self
            .reading_obj
            .keys()
            .filter_map(|o| content_wanted(state, o))
            .collect();
        out.sort_by(|a, b| a.0.identity().cmp(&b.0.identity()));
        out
    }

    /// Every CombinedStatus, in [`CombinedResult::order`].
    pub(super) fn all(&self) -> Vec<CombinedResult> {
        let mut out: Vec<CombinedResult> = self
            .tables
            .values()
            .filter_map(|t| t.rendered.clone())
            .collect();
        out.sort_by(|a, b| a.order().cmp(&b.order()));
        out
    }

    /// How many tables there are.
    pub(super) fn len(&self) -> usize {
        self.tables.len()
    }
}

/// `object` with its current `resourceVersion`, if its content is missing or older.
fn content_wanted(state: &InputState, object: &ObjectKey) -> Option<(WorkloadRef, String)> {
    let id = *state.object_ids.get(object)?;
    let (_, version) = state.objects[id as usize].as_ref()?;
    let current = &version.resource_version;
    if state
        .contents
        .get(&id)
        .is_some_and(|(rv, _)| **rv == **current)
    {
        return None;
    }
    let i = &state.interner;
    let s = |sym: Sym| i.resolve(sym).to_string();
    let object = WorkloadRef {
        group: s(object.0),
        version: s(version.version),
        resource: s(object.1),
        namespace: s(object.2),
        name: s(object.3),
    };
    Some((object, current.to_string()))
}

/// The changes from `old` to `new` of one table.
fn changes(
    old: Option<CombinedResult>,
    new: Option<CombinedResult>,
    out: &mut Vec<CombinedChange>,
) {
    if old == new {
        return;
    }
    let place = |r: &CombinedResult| (r.namespace().to_string(), r.name());
    if let Some(old) = &old
        && new.as_ref().is_none_or(|n| place(n) != place(old))
    {
        let (namespace, name) = place(old);
        out.push(CombinedChange {
            namespace,
            name,
            status: None,
        });
    }
    if let Some(new) = new {
        let (namespace, name) = place(&new);
        out.push(CombinedChange {
            namespace,
            name,
            status: Some(new),
        });
    }
}

/// The CombinedStatus of `table` (`None` while its policy or object is unknown: both
/// are retracted in the same epoch; and while a collector reads `obj` whose content
/// has not come yet). Sets [`Table::reads_obj`].
fn render(
    state: &InputState,
    key: &TableKey,
    table: &mut Table,
    work: &mut EvaluationWork,
) -> Option<CombinedResult> {
    let i = &state.interner;
    let (p, object) = key;
    let s = |sym: Sym| i.resolve(sym).to_string();
    let mut collectors: Vec<(String, Sym, &Arc<CollectorSpec>)> = table
        .record
        .collectors
        .iter()
        .filter_map(|&c| match state.collectors.get(&c).map(|c| &c.spec) {
            Some(Ok(spec)) => Some((s(c), c, spec)),
            _ => None,
        })
        .collect();
    collectors.sort_by(|a, b| a.0.cmp(&b.0));
    table.reads_obj = collectors.iter().any(|(_, _, spec)| spec.uses().obj);
    let policy = state.policies.get(p)?;
    let id = *state.object_ids.get(object)?;
    let (uid, kind) = &state.identities[id as usize];
    let content = state.contents.get(&id).map(|(_, json)| json);
    if !computable(
        collectors.iter().map(|(_, _, spec)| &***spec),
        content.map(Json::value),
    ) {
        table.evaluations.clear();
        return None;
    }
    let mut kept = HashMap::new();
    let mut results = Vec::new();
    for (name, c, spec) in collectors {
        let obj = content.filter(|_| spec.uses().obj).cloned();
        let mut rows = Vec::with_capacity(table.record.rows.len());
        for (wec, ws) in &table.record.rows {
            let status = ws.as_ref().and_then(|w| w.status.clone());
            let last_update = ws.as_ref().and_then(|w| w.last_update.clone());
            let reuse = table.evaluations.remove(&(c, *wec)).filter(|e| {
                Arc::ptr_eq(&e.spec, spec)
                    && e.status == status
                    && e.last_update == last_update
                    && e.obj == obj
            });
            let evaluated = reuse.unwrap_or_else(|| {
                let wec_name = i.resolve(*wec);
                let row = TableRow {
                    wec: wec_name,
                    obj: obj.as_ref().map(Json::value),
                    status: status.as_ref().map(Json::value),
                    last_update: last_update.as_deref(),
                };
                let started = std::time::Instant::now();
                let evaluation = evaluate_row(spec, &row);
                work.count(&evaluation, started.elapsed());
                Evaluated {
                    spec: spec.clone(),
                    evaluation,
                    status,
                    last_update,
                    obj: obj.clone(),
                }
            });
            rows.push((s(*wec), evaluated.evaluation.clone()));
            kept.insert((c, *wec), evaluated);
        }
        results.push(combine(&name, spec, &rows));
    }
    table.evaluations = kept;
    Some(CombinedResult {
        policy: s(*p),
        policy_uid: policy.input.uid.clone(),
        object: WorkloadRef {
            group: s(object.0),
            version: s(table.record.version),
            resource: s(object.1),
            namespace: s(object.2),
            name: s(object.3),
        },
        object_uid: uid.to_string(),
        object_kind: s(*kind),
        results,
    })
}

/// The status of every StatusCollector in `state`, or of those in `only`.
pub(super) fn collector_statuses(
    state: &InputState,
    only: Option<&std::collections::HashSet<Sym>>,
) -> Vec<CollectorStatus> {
    let mut out: Vec<CollectorStatus> = state
        .collectors
        .iter()
        .filter(|(name, _)| only.is_none_or(|o| o.contains(name)))
        .map(|(&name, c)| CollectorStatus {
            name: state.interner.resolve(name).to_string(),
            observed_generation: c.generation,
            errors: c.spec.as_ref().err().cloned().unwrap_or_default(),
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::test_support::{object, policy};
    use crate::engine::Engine;
    use crate::input::{Change, CollectorInput};

    fn collector(name: &str, valid: bool) -> Change {
        let spec = if valid {
            json!({"select": [{"name": "w", "def": "inventory.name"}], "limit": 1})
        } else {
            json!({"select": [{"name": "w", "def": "inventory.name"}],
                   "groupBy": [{"name": "g", "def": "1"}], "limit": 1})
        };
        Change::Collector {
            name: name.into(),
            collector: Some(CollectorInput {
                generation: 1,
                spec,
            }),
        }
    }

    fn missing(e: &Engine) -> Vec<String> {
        e.status("p").unwrap().missing_collectors
    }

    #[test]
    fn missing_collectors_follow_collectors_and_objects() {
        let mut e = Engine::new();
        e.apply(&policy(
            "p",
            1,
            json!({"clusterSelectors": [{}],
                   "downsync": [{"resources": ["deployments"], "statusCollectors": ["b", "a"]}]}),
        ));
        // No object: nothing is missing, whatever the clause names.
        assert!(e.advance().missing_collectors.is_empty());
        assert_eq!(missing(&e), Vec::<String>::new());
        let d = |present: bool| {
            object(
                "apps",
                "v1",
                "deployments",
                "ns",
                "d",
                present.then_some((&[][..], "1")),
            )
        };
        e.apply(&d(true));
        e.apply(&collector("a", true));
        assert_eq!(e.advance().missing_collectors, ["p"]);
        assert_eq!(missing(&e), ["b"]);
        // An invalid collector is missing too.
        e.apply(&collector("b", true));
        assert_eq!(e.advance().missing_collectors, ["p"]);
        assert_eq!(missing(&e), Vec::<String>::new());
        e.apply(&collector("a", false));
        e.advance();
        assert_eq!(missing(&e), ["a"]);
        // A collector no table names changes nothing.
        e.apply(&collector("c", false));
        assert!(e.advance().missing_collectors.is_empty());
        // The object gone: nothing is missing.
        e.apply(&d(false));
        assert_eq!(e.advance().missing_collectors, ["p"]);
        assert_eq!(missing(&e), Vec::<String>::new());
        assert!(e.missing_collectors().is_empty());
        e.apply(&d(true));
        e.advance();
        assert_eq!(e.missing_collectors(), e.to_oracle().missing_collectors());
        // The policy gone: told, and nothing left.
        e.apply(&Change::Policy {
            name: "p".into(),
            policy: None,
        });
        assert_eq!(e.advance().missing_collectors, ["p"]);
        assert!(e.missing_collectors().is_empty());
    }
}

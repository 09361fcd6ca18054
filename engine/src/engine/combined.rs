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

/// A (policy, object) key.
type TableKey = (Sym, ObjectKey);

/// One row's evaluation by one collector, and what it was computed from.
struct Evaluated {
    spec: Arc<CollectorSpec>,
    status: Option<Json>,
    last_update: Option<String>,
    evaluation: RowEvaluation,
}

struct Table {
    record: CombinedRecord,
    /// By (collector, WEC).
    evaluations: HashMap<(Sym, Sym), Evaluated>,
    rendered: Option<CombinedResult>,
}

/// See the module docs.
#[derive(Default)]
pub(super) struct CombinedStore {
    tables: BTreeMap<TableKey, Table>,
    by_collector: HashMap<Sym, BTreeSet<TableKey>>,
    by_object: HashMap<ObjectKey, BTreeSet<Sym>>,
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
            let (evaluations, rendered) =
                old.map_or_else(|| (HashMap::new(), None), |t| (t.evaluations, t.rendered));
            before.insert(key, rendered.clone());
            if let Some(record) = record {
                self.index(&key, &record, true);
                self.tables.insert(
                    key,
                    Table {
                        record,
                        evaluations,
                        rendered,
                    },
                );
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
            let new = self
                .tables
                .get_mut(&key)
                .and_then(|table| render(state, &key, table));
            if let Some(table) = self.tables.get_mut(&key) {
                table.rendered = new.clone();
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
/// are retracted in the same epoch).
fn render(state: &InputState, key: &TableKey, table: &mut Table) -> Option<CombinedResult> {
    let i = &state.interner;
    let (p, object) = key;
    let policy = state.policies.get(p)?;
    let id = *state.object_ids.get(object)?;
    let (uid, kind) = &state.identities[id as usize];
    let s = |sym: Sym| i.resolve(sym).to_string();
    let mut collectors: Vec<(String, Sym)> =
        table.record.collectors.iter().map(|&c| (s(c), c)).collect();
    collectors.sort();
    let mut kept = HashMap::new();
    let mut results = Vec::new();
    for (name, c) in collectors {
        let Some(Ok(spec)) = state.collectors.get(&c).map(|c| &c.spec) else {
            continue;
        };
        let mut rows = Vec::with_capacity(table.record.rows.len());
        for (wec, ws) in &table.record.rows {
            let status = ws.as_ref().and_then(|w| w.status.clone());
            let last_update = ws.as_ref().and_then(|w| w.last_update.clone());
            let reuse = table.evaluations.remove(&(c, *wec)).filter(|e| {
                Arc::ptr_eq(&e.spec, spec) && e.status == status && e.last_update == last_update
            });
            let evaluated = reuse.unwrap_or_else(|| {
                let wec_name = i.resolve(*wec);
                let row = TableRow {
                    wec: wec_name,
                    status: status.as_ref().map(Json::value),
                    last_update: last_update.as_deref(),
                };
                Evaluated {
                    spec: spec.clone(),
                    evaluation: evaluate_row(spec, &row),
                    status,
                    last_update,
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

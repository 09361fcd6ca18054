//! The differential dataflow. With the `engine` module (whose `workers.rs` runs it on
//! timely workers), the only code that uses timely and differential-dataflow (both break
//! their APIs between minor versions).
//!
//! Inputs: WECs, workload objects (selection part and version part apart), policies.
//! Joins, all on index keys or ids:
//! - destinations: cluster selectors x WECs, on label keys;
//! - namespace matches: namespace selectors x Namespace objects, on label keys;
//! - candidates: clauses x objects, on [`IndexKey`]s, then each candidate evaluated
//!   against the object record (joined on its id);
//! - clauses with namespace selectors: semijoined with the namespace matches;
//! - modulations combined per (policy, object), then joined with object versions.
//!
//! Output: `(policy, OutputRecord)` updates, captured per time.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

use differential_dataflow::input::{Input, InputSession};
use differential_dataflow::{AsCollection, VecCollection};
use serde::{Deserialize, Serialize};
use timely::dataflow::operators::Exchange;
use timely::dataflow::operators::probe::Handle as ProbeHandle;
use timely::worker::Worker;

use crate::index::{IndexKey, label_keys, object_keys};
use crate::intern::Sym;
use crate::labels::Labels;
use crate::model::{ObjectId, ObjectRecord, ObjectVersion};
use crate::policy::{
    Clause, ClauseKeys, CompiledPolicy, Modulation, SelectorSet, singleton_problem,
};
use crate::selector::Selector;

/// Logical time: the engine's epoch.
pub type Time = u64;

type Collection<'s, D> = VecCollection<'s, Time, D, isize>;

/// Index of a clause within its policy's `spec.downsync`.
type ClauseIndex = u32;

/// One record of a policy's Binding and status, as the dataflow outputs it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum OutputRecord {
    /// The policy exists: its Binding exists, owned by this uid, reflecting this generation.
    Owner {
        /// Policy uid.
        uid: String,
        /// Policy generation.
        generation: i64,
    },
    /// A destination WEC.
    Destination(Sym),
    /// A selected workload object with its combined modulation.
    Workload(ObjectVersion, Modulation),
    /// A problem for the policy's status.
    Problem(String),
}

/// The dataflow's input sessions.
pub struct Inputs {
    /// `(cluster id, labels)`.
    pub wecs: InputSession<Time, (Sym, Labels), isize>,
    /// `(object id, selection record)`.
    pub objects: InputSession<Time, (ObjectId, ObjectRecord), isize>,
    /// `(object id, version record)`.
    pub versions: InputSession<Time, (ObjectId, ObjectVersion), isize>,
    /// `(policy name, compiled policy)`.
    pub policies: InputSession<Time, (Sym, CompiledPolicy), isize>,
}

impl Inputs {
    /// Advances every input to `time` and tells timely.
    pub fn advance_to(&mut self, time: Time) {
        self.wecs.advance_to(time);
        self.objects.advance_to(time);
        self.versions.advance_to(time);
        self.policies.advance_to(time);
        self.wecs.flush();
        self.objects.flush();
        self.versions.flush();
        self.policies.flush();
    }
}

/// Output updates not yet taken by the engine.
pub type OutputBuffer = Rc<RefCell<Vec<((Sym, OutputRecord), Time, isize)>>>;

/// A built dataflow: where to put input, how to tell progress, where output lands.
pub struct Dataflow {
    /// Input sessions.
    pub inputs: Inputs,
    /// Probe on the output: times it has passed are complete.
    pub probe: ProbeHandle<Time>,
    /// Captured output updates.
    pub output: OutputBuffer,
}

/// Identifies one selector: its owner (`tag`) and its index among the owner's selectors.
type SelectorId<Tag> = (Tag, u32);

/// Matches selectors against `(id, labels)` targets through label index keys, then
/// evaluates each candidate. `selectors` holds each selector's body once, under its
/// [`SelectorId`]. Output: `(tag, id)`, possibly repeated when several selectors of one
/// tag match.
///
/// Memory stays linear in the selectors' size: the index keys carry only the selector's
/// id (a selector with an `In` list of V values has V keys), candidates carry the id and
/// the target's labels, and the body is looked up by id in the last join.
fn match_selectors<'s, Tag>(
    selectors: Collection<'s, (SelectorId<Tag>, Selector)>,
    targets: Collection<'s, (Sym, Labels)>,
) -> Collection<'s, (Tag, Sym)>
where
    Tag: differential_dataflow::ExchangeData + std::hash::Hash + Copy,
{
    let selector_keys = selectors
        .clone()
        .flat_map(|(sid, sel)| sel.index_keys().into_iter().map(move |k| (k, sid)))
        .arrange_by_key();
    let target_keys = targets
        .clone()
        .flat_map(|(id, labels)| label_keys(&labels).map(|k| (k, id)).collect::<Vec<_>>())
        .arrange_by_key();
    let candidates = selector_keys.join_core(target_keys, |_key, sid, id| Some((*id, *sid)));
    let with_labels = candidates
        .arrange_by_key()
        .join_core(targets.arrange_by_key(), |id, sid, labels| {
            Some((*sid, (*id, labels.clone())))
        });
    with_labels
        .arrange_by_key()
        .join_core(selectors.arrange_by_key(), |sid, (id, labels), sel| {
            sel.matches(labels).then_some((sid.0, *id))
        })
}

/// `(policy, clause index)`: one downsync clause.
type ClauseId = (Sym, ClauseIndex);

/// A candidate that passed its clause's object tests: `(clause, (object, its namespace,
/// whether the clause has no namespace selectors, the clause's modulation))`.
type Passed = (ClauseId, (ObjectId, Sym, bool, Modulation));

/// Builds the dataflow in `worker`. `namespaces` is the interned `"namespaces"`. With
/// several workers, every worker builds it, and all output reaches worker 0's buffer.
///
/// The steps are those of the join list in `docs/ARCHITECTURE.md`, one function each.
pub fn build(worker: &mut Worker, namespaces: Sym) -> Dataflow {
    let several_workers = worker.peers() > 1;
    let output: OutputBuffer = Rc::new(RefCell::new(Vec::new()));
    let probe = ProbeHandle::new();
    let sink = output.clone();
    let inputs = worker.dataflow::<Time, _, _>(|scope| {
        let (wec_input, wecs) = scope.new_collection::<(Sym, Labels), isize>();
        let (object_input, objects) = scope.new_collection::<(ObjectId, ObjectRecord), isize>();
        let (version_input, versions) = scope.new_collection::<(ObjectId, ObjectVersion), isize>();
        let (policy_input, policies) = scope.new_collection::<(Sym, CompiledPolicy), isize>();

        // 1. Destinations.
        let destinations = destinations(policies.clone(), wecs);
        // 2. Namespace matches.
        let clause_namespaces = clause_namespaces(policies.clone(), objects.clone(), namespaces);
        // 3. Candidates.
        let clause_keys = clause_keys(policies.clone(), clause_namespaces.clone());
        let passed = candidates(clause_keys, policies.clone(), objects);
        // 4. Namespace restriction.
        let passing = restrict_to_namespaces(passed, clause_namespaces);
        // 5. Selection.
        let selected = selection(passing);
        // 6. Entries.
        let workload = workload_entries(selected.clone(), versions);
        // 7. Status.
        let singleton_problems = singleton_problems(selected, destinations.clone());

        let records = policy_records(policies)
            .concat(singleton_problems)
            .concat(destinations.map(|(p, w)| (p, OutputRecord::Destination(w))))
            .concat(workload);
        capture(records, several_workers, sink, &probe);

        Inputs {
            wecs: wec_input,
            objects: object_input,
            versions: version_input,
            policies: policy_input,
        }
    });
    Dataflow {
        inputs,
        probe,
        output,
    }
}

/// Step 1, destinations: takes the policies and the WECs `(wec, labels)`, gives
/// `(policy, wec)` for each WEC matching any of the policy's cluster selectors, once.
fn destinations<'s>(
    policies: Collection<'s, (Sym, CompiledPolicy)>,
    wecs: Collection<'s, (Sym, Labels)>,
) -> Collection<'s, (Sym, Sym)> {
    let cluster_selectors = policies.flat_map(|(p, pol)| {
        pol.cluster_selectors
            .into_iter()
            .enumerate()
            .map(move |(si, s)| ((p, si as u32), s))
    });
    match_selectors(cluster_selectors, wecs).distinct()
}

/// Step 2, namespace matches: takes the policies and the objects, gives `(clause, ns)`
/// for each Namespace object `ns` matching any of the clause's namespace selectors, once.
fn clause_namespaces<'s>(
    policies: Collection<'s, (Sym, CompiledPolicy)>,
    objects: Collection<'s, (ObjectId, ObjectRecord)>,
    namespaces: Sym,
) -> Collection<'s, (ClauseId, Sym)> {
    let namespace_labels = objects
        .filter(move |(_, o)| o.is_namespace(namespaces))
        .map(|(_, o)| (o.name, o.labels));
    let namespace_selectors = policies.flat_map(|(p, pol)| {
        let mut out = Vec::new();
        for (ci, clause) in pol.clauses.iter().enumerate() {
            if let SelectorSet::OneOf(sels) = &clause.namespace_selectors {
                out.extend(
                    sels.iter()
                        .enumerate()
                        .map(|(si, s)| (((p, ci as ClauseIndex), si as u32), s.clone())),
                );
            }
        }
        out
    });
    match_selectors(namespace_selectors, namespace_labels).distinct()
}

/// Step 3a, clause index keys: takes the policies and the namespace matches (step 2),
/// gives `(key, clause)`: each clause's static keys, and for each matched namespace of
/// a clause keyed by its namespace selectors, a `NamespacedResource(ns, r)` key per
/// resource `r` it names (a `Namespace(ns)` key when it names none).
fn clause_keys<'s>(
    policies: Collection<'s, (Sym, CompiledPolicy)>,
    clause_namespaces: Collection<'s, (ClauseId, Sym)>,
) -> Collection<'s, (IndexKey, ClauseId)> {
    let static_keys = policies.clone().flat_map(|(p, pol)| {
        let mut out = Vec::new();
        for (ci, clause) in pol.clauses.iter().enumerate() {
            if let ClauseKeys::Static(keys) = clause.keys() {
                out.extend(keys.into_iter().map(|k| (k, (p, ci as ClauseIndex))));
            }
        }
        out
    });
    let namespace_keyed = policies.flat_map(|(p, pol)| {
        let mut out = Vec::new();
        for (ci, clause) in pol.clauses.iter().enumerate() {
            if let ClauseKeys::MatchedNamespaces(resources) = clause.keys() {
                out.push(((p, ci as ClauseIndex), resources));
            }
        }
        out
    });
    let dynamic_keys = clause_namespaces
        .join_map(namespace_keyed, |clause, ns, resources| {
            (*clause, *ns, resources.clone())
        })
        .flat_map(|(clause, ns, resources)| {
            let keys: Vec<IndexKey> = if resources.is_empty() {
                vec![IndexKey::Namespace(ns)]
            } else {
                resources
                    .into_iter()
                    .map(|r| IndexKey::NamespacedResource(ns, r))
                    .collect()
            };
            keys.into_iter().map(move |k| (k, clause))
        });
    static_keys.concat(dynamic_keys)
}

/// Step 3b, candidates: takes the clause keys (step 3a), the policies and the objects,
/// gives the [`Passed`] candidates: the clause keys meet the object index, then each
/// `(clause, object)` is evaluated against its object record with every test but the
/// namespace selectors.
///
/// The keys carry only the clause's id (a clause listing V names has V keys), and its
/// body (shared, `Arc`) is joined once per candidate.
fn candidates<'s>(
    clause_keys: Collection<'s, (IndexKey, ClauseId)>,
    policies: Collection<'s, (Sym, CompiledPolicy)>,
    objects: Collection<'s, (ObjectId, ObjectRecord)>,
) -> Collection<'s, Passed> {
    let clause_keys = clause_keys.arrange_by_key();
    let object_index = objects
        .clone()
        .flat_map(|(id, o)| object_keys(&o).map(|k| (k, id)).collect::<Vec<_>>())
        .arrange_by_key();
    let clause_bodies = policies.flat_map(|(p, pol)| {
        pol.clauses
            .into_iter()
            .enumerate()
            .map(move |(ci, clause)| ((p, ci as ClauseIndex), clause))
    });
    let candidates = clause_keys
        .join_core(object_index, |_key, clause, id| Some((*clause, *id)))
        .arrange_by_key()
        .join_core(clause_bodies.arrange_by_key(), |&(p, ci), id, clause| {
            Some((*id, (p, ci, clause.clone())))
        });
    candidates.arrange_by_key().join_core(
        objects.arrange_by_key(),
        |id, (p, ci, clause): &(Sym, ClauseIndex, Arc<Clause>), object| {
            clause.passes_object_tests(object).then(|| {
                let unrestricted = clause.namespace_selectors == SelectorSet::Any;
                (
                    (*p, *ci),
                    (
                        *id,
                        object.namespace,
                        unrestricted,
                        clause.modulation.clone(),
                    ),
                )
            })
        },
    )
}

/// Step 4, namespace restriction: takes the passed candidates (step 3b) and the
/// namespace matches (step 2), gives `((policy, object), (clause, modulation))` for each
/// candidate of a clause without namespace selectors, and for each candidate of a clause
/// with them whose namespace the clause matched.
fn restrict_to_namespaces<'s>(
    passed: Collection<'s, Passed>,
    clause_namespaces: Collection<'s, (ClauseId, Sym)>,
) -> Collection<'s, ((Sym, ObjectId), (ClauseIndex, Modulation))> {
    let unrestricted = passed
        .clone()
        .filter(|(_, (_, _, unrestricted, _))| *unrestricted)
        .map(|((p, ci), (id, _, _, m))| ((p, id), (ci, m)));
    let restricted = passed
        .filter(|(_, (_, _, unrestricted, _))| !*unrestricted)
        .map(|((p, ci), (id, ns, _, m))| (((p, ci), ns), (id, m)))
        .semijoin(clause_namespaces)
        .map(|(((p, ci), _ns), (id, m))| ((p, id), (ci, m)));
    unrestricted.concat(restricted)
}

/// Step 5, selection: takes `((policy, object), (clause, modulation))` (step 4), gives
/// `((policy, object), modulation)` once per selected object, the modulations of every
/// clause it passed combined (flags ORed, status collectors united).
fn selection<'s>(
    passing: Collection<'s, ((Sym, ObjectId), (ClauseIndex, Modulation))>,
) -> Collection<'s, ((Sym, ObjectId), Modulation)> {
    passing.reduce(|_key, clauses, out| {
        let mut combined = Modulation::default();
        for ((_ci, m), _count) in clauses {
            combined.merge(m);
        }
        out.push((combined, 1));
    })
}

/// Step 6, entries: takes the selection (step 5) and the object versions, gives
/// `(policy, Workload(version, modulation))`.
fn workload_entries<'s>(
    selected: Collection<'s, ((Sym, ObjectId), Modulation)>,
    versions: Collection<'s, (ObjectId, ObjectVersion)>,
) -> Collection<'s, (Sym, OutputRecord)> {
    selected
        .map(|((p, id), m)| (id, (p, m)))
        .join_map(versions, |_id, (p, m), v| {
            (*p, OutputRecord::Workload(v.clone(), m.clone()))
        })
}

/// Step 7, the status problem the dataflow finds: takes the selection (step 5) and the
/// destinations (step 1), gives `(policy, Problem(..))` for each policy selecting an
/// object with `wantSingletonReportedState` while it has other than exactly one
/// destination.
fn singleton_problems<'s>(
    selected: Collection<'s, ((Sym, ObjectId), Modulation)>,
    destinations: Collection<'s, (Sym, Sym)>,
) -> Collection<'s, (Sym, OutputRecord)> {
    let singleton = selected
        .filter(|(_, m)| m.want_singleton_reported_state)
        .map(|((p, _), _)| p)
        .distinct()
        .map(|p| (p, ()));
    let destination_counts = destinations.map(|(p, _)| p).count();
    let wrong_count = singleton
        .clone()
        .join_map(destination_counts.clone(), |p, _, count| {
            (*p, *count as usize)
        })
        .filter(|(_, count)| *count != 1);
    let none = singleton
        .antijoin(destination_counts.map(|(p, _)| p))
        .map(|(p, _)| (p, 0));
    wrong_count
        .concat(none)
        .map(|(p, n)| (p, OutputRecord::Problem(singleton_problem(n))))
}

/// Output, from the policies alone: takes the policies, gives `(policy, Owner{..})` and
/// `(policy, Problem(..))` for each problem found when compiling it.
fn policy_records<'s>(
    policies: Collection<'s, (Sym, CompiledPolicy)>,
) -> Collection<'s, (Sym, OutputRecord)> {
    let owners = policies.clone().map(|(p, pol)| {
        (
            p,
            OutputRecord::Owner {
                uid: pol.uid,
                generation: pol.generation,
            },
        )
    });
    let problems = policies.flat_map(|(p, pol)| {
        pol.problems
            .into_iter()
            .map(move |e| (p, OutputRecord::Problem(e)))
    });
    owners.concat(problems)
}

/// Output: takes every `(policy, OutputRecord)`, sends it to worker 0 (which
/// materializes the Bindings) when there are several workers, appends each batch to
/// `sink` and probes it with `probe`.
fn capture(
    records: Collection<'_, (Sym, OutputRecord)>,
    several_workers: bool,
    sink: OutputBuffer,
    probe: &ProbeHandle<Time>,
) {
    let records = if several_workers {
        records.inner.exchange(|_| 0).as_collection()
    } else {
        records
    };
    records
        .inspect_batch(move |_time, updates| sink.borrow_mut().extend_from_slice(updates))
        .probe_with(probe);
}

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
//! - modulations combined per (policy, object), then joined with object versions;
//! - reported state: the selections asking for it x the policies' destinations, per
//!   object a [`Plan`], then x the WorkStatuses of the object;
//! - CombinedStatus tables: the selections naming collectors x the policies'
//!   destinations, each row x the WorkStatuses of its (object, WEC).
//!
//! Output: `(policy, OutputRecord)`, `(object, ReportRecord)` and `((policy, object),
//! CombinedRecord)` updates, captured per time.

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
use crate::model::{ObjectId, ObjectKey, ObjectRecord, ObjectVersion, WorkStatusRecord};
use crate::policy::{
    Clause, ClauseKeys, CompiledPolicy, Modulation, SelectorSet, singleton_problem,
};
use crate::reported::{Plan, Request, decide};
use crate::selector::Selector;

/// Logical time: the engine's epoch.
pub type Time = u64;

type Collection<'s, D> = VecCollection<'s, Time, D, isize>;

/// The object versions arranged by object: arranged once, read by the joins of steps 6,
/// 8b and 9.
type VersionsById<'s> = differential_dataflow::operators::arrange::Arranged<
    's,
    differential_dataflow::operators::arrange::TraceAgent<
        differential_dataflow::trace::implementations::ValSpine<
            ObjectId,
            ObjectVersion,
            Time,
            isize,
        >,
    >,
>;

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

/// What an object's reported state is computed from, as the dataflow outputs it: the
/// plan, whether the object carries a status-return label, and the WorkStatuses the
/// plan reads, `(wec, WorkStatus name, status)` sorted. Worker 0 turns it into a
/// [`Report`](crate::reported::Report) (with the WECs' names, whose order matters).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ReportRecord {
    /// The API version the object was last seen in (to write it).
    pub version: Sym,
    /// Where the status comes from.
    pub plan: Plan<Sym>,
    /// Whether the object carries `managed-by.kubestellar.io/singletonstatus` or
    /// `.../multiwecstatus`.
    pub labelled: bool,
    /// The WorkStatuses the plan reads.
    pub work_statuses: Vec<WorkStatusRecord>,
}

/// What a CombinedStatus is computed from, as the dataflow outputs it for one (policy,
/// object) whose entry names collectors: the collectors and the table's rows, one per
/// destination WEC with the WEC's WorkStatus of the object (`None`: none, or more than
/// one). Worker 0 evaluates the collectors on the rows.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct CombinedRecord {
    /// The API version the object was last seen in.
    pub version: Sym,
    /// The collectors the entry names, sorted by symbol.
    pub collectors: Vec<Sym>,
    /// `(wec, WorkStatus)`, sorted by WEC symbol.
    pub rows: Vec<(Sym, Option<WorkStatusRecord>)>,
}

/// Symbols the dataflow is built with, interned first by every engine so that every
/// process of a cluster has the same ones.
#[derive(Clone, Copy, Debug)]
pub struct WellKnown {
    /// `namespaces`.
    pub namespaces: Sym,
    /// `managed-by.kubestellar.io/singletonstatus`.
    pub singleton_label: Sym,
    /// `managed-by.kubestellar.io/multiwecstatus`.
    pub multi_wec_label: Sym,
    /// `apiextensions.k8s.io`.
    pub crd_group: Sym,
    /// `customresourcedefinitions`.
    pub crds: Sym,
}

impl WellKnown {
    /// Whether the WECs may set the status of objects of `group`/`resource`: not core
    /// Namespaces or CRDs ([`returnable_resource`](crate::reported::returnable_resource)).
    pub fn returnable(&self, group: Sym, resource: Sym) -> bool {
        !((group == Sym::EMPTY && resource == self.namespaces)
            || (group == self.crd_group && resource == self.crds))
    }
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
    /// `(the object reported on, WorkStatus)`.
    pub work_statuses: InputSession<Time, (ObjectKey, WorkStatusRecord), isize>,
}

impl Inputs {
    /// Advances every input to `time` and tells timely.
    pub fn advance_to(&mut self, time: Time) {
        self.wecs.advance_to(time);
        self.objects.advance_to(time);
        self.versions.advance_to(time);
        self.policies.advance_to(time);
        self.work_statuses.advance_to(time);
        self.wecs.flush();
        self.objects.flush();
        self.versions.flush();
        self.policies.flush();
        self.work_statuses.flush();
    }
}

/// Captured updates of `D` not yet taken by the engine.
pub type Captured<D> = Rc<RefCell<Vec<(D, Time, isize)>>>;

/// Output updates not yet taken by the engine.
pub type OutputBuffer = Captured<(Sym, OutputRecord)>;

/// Reported-state output updates not yet taken by the engine.
pub type ReportBuffer = Captured<(ObjectKey, ReportRecord)>;

/// CombinedStatus output updates not yet taken by the engine.
pub type CombinedBuffer = Captured<((Sym, ObjectKey), CombinedRecord)>;

/// A built dataflow: where to put input, how to tell progress, where output lands.
pub struct Dataflow {
    /// Input sessions.
    pub inputs: Inputs,
    /// Probe on the output: times it has passed are complete.
    pub probe: ProbeHandle<Time>,
    /// Captured output updates.
    pub output: OutputBuffer,
    /// Captured reported-state updates.
    pub reports: ReportBuffer,
    /// Captured CombinedStatus updates.
    pub combined: CombinedBuffer,
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
        .arrange_by_key_named("Arrange: selector index keys");
    let target_keys = targets
        .clone()
        .flat_map(|(id, labels)| label_keys(&labels).map(|k| (k, id)).collect::<Vec<_>>())
        .arrange_by_key_named("Arrange: target label keys");
    let candidates = selector_keys.join_core(target_keys, |_key, sid, id| Some((*id, *sid)));
    let with_labels = candidates
        .arrange_by_key_named("Arrange: selector candidates by target")
        .join_core(
            targets.arrange_by_key_named("Arrange: targets"),
            |id, sid, labels| Some((*sid, (*id, labels.clone()))),
        );
    with_labels
        .arrange_by_key_named("Arrange: candidates with labels by selector")
        .join_core(
            selectors.arrange_by_key_named("Arrange: selector bodies"),
            |sid, (id, labels), sel| sel.matches(labels).then_some((sid.0, *id)),
        )
}

/// `(policy, clause index)`: one downsync clause.
type ClauseId = (Sym, ClauseIndex);

/// A candidate that passed its clause's object tests: `(clause, (object, its namespace,
/// whether the clause has no namespace selectors, the clause's modulation))`.
type Passed = (ClauseId, (ObjectId, Sym, bool, Modulation));

/// Builds the dataflow in `worker`, with the symbols of `known`. With several workers,
/// every worker builds it, and all output reaches worker 0's buffers.
///
/// The steps are those of the join list in `docs/ARCHITECTURE.md`, one function each.
pub fn build(worker: &mut Worker, known: WellKnown) -> Dataflow {
    let several_workers = worker.peers() > 1;
    let output: OutputBuffer = Rc::new(RefCell::new(Vec::new()));
    let reports: ReportBuffer = Rc::new(RefCell::new(Vec::new()));
    let probe = ProbeHandle::new();
    let sink = output.clone();
    let report_sink = reports.clone();
    let combined: CombinedBuffer = Rc::new(RefCell::new(Vec::new()));
    let combined_sink = combined.clone();
    let inputs = worker.dataflow::<Time, _, _>(|scope| {
        let (wec_input, wecs) = scope.new_collection::<(Sym, Labels), isize>();
        let (object_input, objects) = scope.new_collection::<(ObjectId, ObjectRecord), isize>();
        let (version_input, versions) = scope.new_collection::<(ObjectId, ObjectVersion), isize>();
        let (policy_input, policies) = scope.new_collection::<(Sym, CompiledPolicy), isize>();
        let (work_status_input, work_statuses) =
            scope.new_collection::<(ObjectKey, WorkStatusRecord), isize>();

        // 1. Destinations.
        let destinations = destinations(policies.clone(), wecs);
        // 2. Namespace matches.
        let clause_namespaces =
            clause_namespaces(policies.clone(), objects.clone(), known.namespaces);
        // 3. Candidates.
        let clause_keys = clause_keys(policies.clone(), clause_namespaces.clone());
        let passed = candidates(clause_keys, policies.clone(), objects.clone());
        // 4. Namespace restriction.
        let passing = restrict_to_namespaces(passed, clause_namespaces);
        // 5. Selection.
        let selected = selection(passing);
        // 6. Entries.
        let versions = versions.arrange_by_key_named("Arrange: object versions");
        let workload = workload_entries(selected.clone(), versions.clone());
        // 7. Status.
        let singleton_problems = singleton_problems(selected.clone(), destinations.clone());
        // 8. Reported state.
        let plans = report_plans(selected.clone(), destinations.clone(), objects, known);
        let reports = reported_state(plans, versions.clone(), work_statuses.clone(), known);
        // 9. CombinedStatus tables.
        let tables = combined_tables(selected, destinations.clone(), versions, work_statuses);

        let records = policy_records(policies)
            .concat(singleton_problems)
            .concat(destinations.map(|(p, w)| (p, OutputRecord::Destination(w))))
            .concat(workload);
        capture(records, several_workers, sink, &probe);
        capture(reports, several_workers, report_sink, &probe);
        capture(tables, several_workers, combined_sink, &probe);

        Inputs {
            wecs: wec_input,
            objects: object_input,
            versions: version_input,
            policies: policy_input,
            work_statuses: work_status_input,
        }
    });
    Dataflow {
        inputs,
        probe,
        output,
        reports,
        combined,
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
    let clause_keys = clause_keys.arrange_by_key_named("Arrange: clause keys");
    let object_index = objects
        .clone()
        .flat_map(|(id, o)| object_keys(&o).map(|k| (k, id)).collect::<Vec<_>>())
        .arrange_by_key_named("Arrange: object index");
    let clause_bodies = policies.flat_map(|(p, pol)| {
        pol.clauses
            .into_iter()
            .enumerate()
            .map(move |(ci, clause)| ((p, ci as ClauseIndex), clause))
    });
    let candidates = clause_keys
        .join_core(object_index, |_key, clause, id| Some((*clause, *id)))
        .arrange_by_key_named("Arrange: clause candidates by clause")
        .join_core(
            clause_bodies.arrange_by_key_named("Arrange: clause bodies"),
            |&(p, ci), id, clause| Some((*id, (p, ci, clause.clone()))),
        );
    candidates
        .arrange_by_key_named("Arrange: clause candidates by object")
        .join_core(
            objects.arrange_by_key_named("Arrange: object records"),
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
    versions: VersionsById<'s>,
) -> Collection<'s, (Sym, OutputRecord)> {
    selected
        .map(|((p, id), m)| (id, (p, m)))
        .arrange_by_key_named("Arrange: selection by object")
        .join_core(versions, |_id, (p, m), v| {
            Some((*p, OutputRecord::Workload(v.clone(), m.clone())))
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

/// What one selection or object tells step 8a of an object's reported state.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
enum Ask {
    /// A policy selecting it asks for singleton (`.0`) and/or multi-WEC (`.1`) return.
    Flags(bool, bool),
    /// ... and has this destination.
    Destination(Sym, bool, bool),
    /// The object carries a status-return label.
    Labelled,
}

/// Step 8a, report plans: takes the selection (step 5), the destinations (step 1) and
/// the objects, gives `(object, (plan, labelled))` for every object some policy asks to
/// return status into, or that carries a status-return label (to be cleared), except
/// Namespaces and CustomResourceDefinitions. A destination change costs work for the
/// asking objects of that policy only.
fn report_plans<'s>(
    selected: Collection<'s, ((Sym, ObjectId), Modulation)>,
    destinations: Collection<'s, (Sym, Sym)>,
    objects: Collection<'s, (ObjectId, ObjectRecord)>,
    known: WellKnown,
) -> Collection<'s, (ObjectId, (Plan<Sym>, bool))> {
    let asking = selected
        .filter(|(_, m)| m.want_singleton_reported_state || m.want_multi_wec_reported_state)
        .map(|((p, id), m)| {
            let flags = (
                m.want_singleton_reported_state,
                m.want_multi_wec_reported_state,
            );
            (p, (id, flags))
        });
    let with_destinations = asking
        .clone()
        .join_map(destinations, |_p, &(id, (s, m)), &wec| {
            (id, Ask::Destination(wec, s, m))
        });
    let flags = asking.map(|(_p, (id, (s, m)))| (id, Ask::Flags(s, m)));
    let labelled = objects.flat_map(move |(id, o)| {
        let returnable = known.returnable(o.group, o.resource);
        let labelled = o.labels.get(known.singleton_label).is_some()
            || o.labels.get(known.multi_wec_label).is_some();
        (returnable && labelled).then_some((id, Ask::Labelled))
    });
    flags
        .concat(with_destinations)
        .concat(labelled)
        .reduce(|_id, asks, out| {
            let mut request = Request::default();
            let mut labelled = false;
            for (ask, _count) in asks {
                match **ask {
                    Ask::Flags(s, m) => {
                        request.singleton |= s;
                        request.multi |= m;
                    }
                    Ask::Destination(wec, s, m) => {
                        if s {
                            request.singleton_wecs.insert(wec);
                        }
                        if m {
                            request.multi_wecs.insert(wec);
                        }
                    }
                    Ask::Labelled => labelled = true,
                }
            }
            let plan = decide(&request);
            // A clear of an object without a label writes nothing.
            if plan != Plan::Clear || labelled {
                out.push(((plan, labelled), 1));
            }
        })
}

/// One value of step 8b's reduce: an object's plan, or one of its WorkStatuses.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
enum ReportPart {
    Plan(Sym, Plan<Sym>, bool),
    WorkStatus(WorkStatusRecord),
}

/// Step 8b, reported state: takes the plans (step 8a), the object versions and the
/// WorkStatuses, gives `(object, ReportRecord)` for each planned object that is not a
/// Namespace or CRD. A WorkStatus change costs work for its object only (its
/// WorkStatuses, one per WEC it is in).
fn reported_state<'s>(
    plans: Collection<'s, (ObjectId, (Plan<Sym>, bool))>,
    versions: VersionsById<'s>,
    work_statuses: Collection<'s, (ObjectKey, WorkStatusRecord)>,
    known: WellKnown,
) -> Collection<'s, (ObjectKey, ReportRecord)> {
    // The resourceVersion is left out: a status-only update's retraction and insertion
    // are the same part, and consolidate away before the reduce.
    let planned = plans.arrange_by_key_named("Arrange: plans").join_core(
        versions,
        move |_id, (plan, labelled), v| {
            known.returnable(v.group, v.resource).then(|| {
                let key = (v.group, v.resource, v.namespace, v.name);
                (key, ReportPart::Plan(v.version, plan.clone(), *labelled))
            })
        },
    );
    planned
        .concat(work_statuses.map(|(key, ws)| (key, ReportPart::WorkStatus(ws))))
        .reduce(|_key, parts, out| {
            let Some((version, plan, labelled)) = parts.iter().find_map(|(part, _)| match part {
                ReportPart::Plan(v, p, l) => Some((*v, p, *l)),
                ReportPart::WorkStatus(_) => None,
            }) else {
                return;
            };
            let work_statuses = parts
                .iter()
                .filter_map(|(part, _)| match part {
                    ReportPart::WorkStatus(ws) if plan.reads(&ws.wec) => Some(ws.clone()),
                    _ => None,
                })
                .collect();
            out.push((
                ReportRecord {
                    version,
                    plan: plan.clone(),
                    labelled,
                    work_statuses,
                },
                1,
            ));
        })
}

/// One value of step 9's reduces.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
enum TablePart {
    /// The (policy, object)'s entry: the object's API version, its collectors.
    Entry(Sym, Vec<Sym>),
    /// A row of a (policy, object): a WEC and its WorkStatus of the object.
    Row(Sym, Option<WorkStatusRecord>),
    /// A row wanted at (object, WEC), by this policy.
    Wanted(Sym),
    /// A WorkStatus at (object, WEC).
    Reported(WorkStatusRecord),
}

/// Step 9, CombinedStatus tables: takes the selection (step 5), the destinations (step
/// 1), the object versions and the WorkStatuses, gives `((policy, object key),
/// CombinedRecord)` for each selection naming collectors. A WorkStatus change costs
/// work for its (object, WEC) and the tables of the policies sending that object there;
/// a destination change the tables of that policy's collecting objects.
fn combined_tables<'s>(
    selected: Collection<'s, ((Sym, ObjectId), Modulation)>,
    destinations: Collection<'s, (Sym, Sym)>,
    versions: VersionsById<'s>,
    work_statuses: Collection<'s, (ObjectKey, WorkStatusRecord)>,
) -> Collection<'s, ((Sym, ObjectKey), CombinedRecord)> {
    let collecting = selected.flat_map(|((p, id), m)| {
        (!m.status_collectors.is_empty()).then_some((id, (p, m.status_collectors)))
    });
    // The resourceVersion is left out: a status-only update's retraction and insertion
    // are the same entry, and consolidate away before the joins and reduces below.
    let entries = collecting
        .arrange_by_key_named("Arrange: collecting selections")
        .join_core(versions, |_id, (p, collectors), v| {
            let key = (v.group, v.resource, v.namespace, v.name);
            Some(((*p, key), TablePart::Entry(v.version, collectors.clone())))
        });
    let wanted = entries
        .clone()
        .map(|((p, key), _)| (p, key))
        .join_map(destinations, |p, key, wec| {
            ((*key, *wec), TablePart::Wanted(*p))
        });
    let reported = work_statuses.map(|(key, ws)| ((key, ws.wec), TablePart::Reported(ws)));
    let rows = wanted.concat(reported).reduce(|_at, parts, out| {
        let reported: Vec<&WorkStatusRecord> = parts
            .iter()
            .filter_map(|(part, _)| match part {
                TablePart::Reported(ws) => Some(ws),
                _ => None,
            })
            .collect();
        // Two WorkStatuses of one object in one WEC: neither is the object's report.
        let one = match reported.as_slice() {
            [ws] => Some((*ws).clone()),
            _ => None,
        };
        for (part, _) in parts {
            if let TablePart::Wanted(p) = part {
                out.push(((*p, one.clone()), 1));
            }
        }
    });
    let rows = rows.map(|((key, wec), (p, ws))| ((p, key), TablePart::Row(wec, ws)));
    entries.concat(rows).reduce(|_pk, parts, out| {
        let Some((version, collectors)) = parts.iter().find_map(|(part, _)| match part {
            TablePart::Entry(v, c) => Some((*v, c.clone())),
            _ => None,
        }) else {
            return;
        };
        let rows = parts
            .iter()
            .filter_map(|(part, _)| match part {
                TablePart::Row(wec, ws) => Some((*wec, ws.clone())),
                _ => None,
            })
            .collect();
        out.push((
            CombinedRecord {
                version,
                collectors,
                rows,
            },
            1,
        ));
    })
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

/// Output: takes every `(key, record)`, sends it to worker 0 (which materializes the
/// Bindings and reports) when there are several workers, appends each batch to `sink`
/// and probes it with `probe`.
fn capture<K, R>(
    records: Collection<'_, (K, R)>,
    several_workers: bool,
    sink: Captured<(K, R)>,
    probe: &ProbeHandle<Time>,
) where
    (K, R): differential_dataflow::ExchangeData,
{
    let records = if several_workers {
        records.inner.exchange(|_| 0).as_collection()
    } else {
        records
    };
    records
        .inspect_batch(move |_time, updates| sink.borrow_mut().extend_from_slice(updates))
        .probe_with(probe);
}

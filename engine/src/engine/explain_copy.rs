//! The copy of the input state kept for explain and the oracle: the engine's current
//! WECs, objects and policies handed to an [`Oracle`] in strings, in full
//! ([`Engine::to_oracle`]) or as much as one explain question needs ([`Engine::explain`]).

use super::Engine;
use super::state::InputState;
use crate::explain::{ExplainError, Explanation, ObjectKey, Query};
use crate::input::{Change, WorkStatusReport, WorkloadRef, WorkloadState};
use crate::intern::Sym;
use crate::model::{
    ObjectId, ObjectKey as ObjectKeySyms, ObjectRecord, ObjectVersion, WorkStatusRecord,
};
use crate::oracle::Oracle;

impl Engine {
    /// The engine's current input state — every WEC with its labels, every workload
    /// object with the version it was last seen in, its labels and resourceVersion, and
    /// every policy as given (uid, generation, parsed spec) — as an [`Oracle`], so that
    /// what works on the oracle (e.g. [`Oracle::explain`]) works on a live engine's state.
    ///
    /// It is the state as applied so far, including the changes of the open epoch
    /// (which [`Engine::bindings`] reflects only after the next [`Engine::advance`]);
    /// after `advance`, its Bindings and statuses equal the engine's.
    ///
    /// Cost: O(state) time and memory (a full copy, in strings: every WEC, object and
    /// policy is resolved and inserted into the oracle's maps, O(n log n) overall); it
    /// does not touch the dataflow. Meant for one-off questions, not for every epoch.
    pub fn to_oracle(&self) -> Oracle {
        self.state.to_oracle()
    }

    /// Explains policy `query.policy` on the engine's current input state: the same
    /// answer as [`Oracle::explain`] on [`Engine::to_oracle`], but copying only what
    /// the question needs. Every WEC and policy is copied (they are few); of the
    /// workload objects, only the one asked about and its Namespace (or, when it does
    /// not exist, those of the same resource and name elsewhere, for the error).
    /// Every object is copied only for an overview (no object, no cluster: it counts
    /// what every clause selects) and for a policy with a `wantSingletonReportedState`
    /// clause (whose problem depends on every object it selects).
    pub fn explain(&self, query: &Query) -> Result<Explanation, ExplainError> {
        self.state.explain(query)
    }
}

impl InputState {
    /// Every WEC, object and policy, as an [`Oracle`].
    fn to_oracle(&self) -> Oracle {
        let mut oracle = Oracle::default();
        self.copy_wecs_and_policies(&mut oracle);
        for (id, slot) in self.objects.iter().enumerate() {
            if let Some((record, version)) = slot {
                oracle.apply(&self.object_change(id as ObjectId, record, version));
            }
        }
        for (&name, c) in &self.collectors {
            oracle.apply(&Change::Collector {
                name: self.interner.resolve(name).to_string(),
                collector: Some(c.input.clone()),
            });
        }
        for (key, record) in self.work_statuses.values() {
            oracle.apply(&self.work_status_change(key, record));
        }
        for (&id, (rv, content)) in &self.contents {
            if let Some((record, _)) = &self.objects[id as usize] {
                let s = |sym| self.interner.resolve(sym).to_string();
                oracle.apply(&Change::Content {
                    object: ObjectKey {
                        group: s(record.group),
                        resource: s(record.resource),
                        namespace: s(record.namespace),
                        name: s(record.name),
                    },
                    content: Some(crate::input::ObjectContent {
                        resource_version: rv.to_string(),
                        object: content.value().clone(),
                    }),
                });
            }
        }
        oracle
    }

    /// The change that creates one stored WorkStatus, in strings.
    fn work_status_change(&self, key: &ObjectKeySyms, record: &WorkStatusRecord) -> Change {
        let s = |sym| self.interner.resolve(sym).to_string();
        Change::WorkStatus {
            wec: s(record.wec),
            name: s(record.name),
            report: Some(WorkStatusReport {
                object: ObjectKey {
                    group: s(key.0),
                    resource: s(key.1),
                    namespace: s(key.2),
                    name: s(key.3),
                },
                status: record.status.as_ref().map(|j| j.value().clone()),
                last_update: record.last_update.clone(),
            }),
        }
    }

    /// Explains `query`, copying only what it needs into an [`Oracle`].
    fn explain(&self, query: &Query) -> Result<Explanation, ExplainError> {
        let policy = self
            .interner
            .get(&query.policy)
            .and_then(|name| self.policies.get(&name));
        let every_object = policy.is_some_and(|stored| {
            (query.object.is_none() && query.cluster.is_none())
                || stored
                    .input
                    .spec
                    .downsync
                    .iter()
                    .any(|c| c.want_singleton_reported_state)
        });
        if every_object {
            return self.to_oracle().explain(query);
        }
        let mut oracle = Oracle::default();
        self.copy_wecs_and_policies(&mut oracle);
        if let Some(object) = &query.object {
            for id in self.objects_to_explain(object) {
                let (record, version) = self.objects[id as usize]
                    .as_ref()
                    .expect("object id in use");
                oracle.apply(&self.object_change(id, record, version));
            }
            // Its WorkStatuses (where its status comes from).
            for (key, record) in self.work_statuses.values() {
                let s = |sym| self.interner.resolve(sym);
                if (s(key.0), s(key.1), s(key.2), s(key.3))
                    == (
                        object.group.as_str(),
                        object.resource.as_str(),
                        object.namespace.as_str(),
                        object.name.as_str(),
                    )
                {
                    oracle.apply(&self.work_status_change(key, record));
                }
            }
        }
        oracle.explain(query)
    }

    /// The ids of the objects that explaining `object` reads: the object and its
    /// Namespace when it exists, else the objects of its group, resource and name in
    /// other namespaces.
    fn objects_to_explain(&self, object: &ObjectKey) -> Vec<ObjectId> {
        let sym = |s: &str| self.interner.get(s);
        let (Some(group), Some(resource), Some(name)) =
            (sym(&object.group), sym(&object.resource), sym(&object.name))
        else {
            return Vec::new();
        };
        let namespace = sym(&object.namespace);
        if let Some(&id) =
            namespace.and_then(|ns| self.object_ids.get(&(group, resource, ns, name)))
        {
            let namespace_object = match (namespace, sym("namespaces")) {
                (Some(ns), Some(namespaces)) if ns != Sym::EMPTY => self
                    .object_ids
                    .get(&(Sym::EMPTY, namespaces, Sym::EMPTY, ns))
                    .copied(),
                _ => None,
            };
            return std::iter::once(id).chain(namespace_object).collect();
        }
        self.object_ids
            .iter()
            .filter(|((g, r, _, n), _)| (*g, *r, *n) == (group, resource, name))
            .map(|(_, &id)| id)
            .collect()
    }

    /// Copies every WEC and every policy into `oracle`.
    fn copy_wecs_and_policies(&self, oracle: &mut Oracle) {
        for (&name, wec) in &self.wecs {
            oracle.apply(&Change::Wec {
                name: self.interner.resolve(name).to_string(),
                labels: Some(wec.resolve(&self.interner)),
            });
        }
        for (&name, stored) in &self.policies {
            oracle.apply(&Change::Policy {
                name: self.interner.resolve(name).to_string(),
                policy: Some(stored.input.clone()),
            });
        }
    }

    /// The change that creates one stored workload object, in strings.
    fn object_change(
        &self,
        id: ObjectId,
        record: &ObjectRecord,
        version: &ObjectVersion,
    ) -> Change {
        let resolve = |sym: Sym| self.interner.resolve(sym).to_string();
        let (uid, kind) = &self.identities[id as usize];
        Change::Workload {
            object: WorkloadRef {
                group: resolve(version.group),
                version: resolve(version.version),
                resource: resolve(version.resource),
                namespace: resolve(version.namespace),
                name: resolve(version.name),
            },
            state: Some(WorkloadState {
                labels: record.labels.resolve(&self.interner),
                resource_version: version.resource_version.clone(),
                uid: uid.to_string(),
                kind: resolve(*kind),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::test_support::{labels, object, oracle_of, policy};
    use crate::binding::Binding;
    use crate::engine::Engine;
    use crate::input::Change;

    #[test]
    fn to_oracle_holds_the_current_inputs_after_updates_and_deletes() {
        let mut engine = Engine::new();
        let history = [
            Change::Wec {
                name: "c1".into(),
                labels: Some(labels(&[("group", "edge")])),
            },
            Change::Wec {
                name: "c2".into(),
                labels: Some(labels(&[("group", "core")])),
            },
            object(
                "",
                "v1",
                "namespaces",
                "",
                "ns1",
                Some((&[("env", "prod")], "1")),
            ),
            object(
                "apps",
                "v1",
                "deployments",
                "ns1",
                "web",
                Some((&[("app", "web")], "2")),
            ),
            object("", "v1", "configmaps", "ns1", "cfg", Some((&[], "3"))),
            object(
                "example.com",
                "v1",
                "widgets",
                "ns1",
                "w",
                Some((&[("a", "b")], "4")),
            ),
            policy(
                "p",
                1,
                json!({"clusterSelectors": [{"matchLabels": {"group": "edge"}}],
                       "downsync": [{"resources": ["deployments"], "wantSingletonReportedState": true}]}),
            ),
            policy("gone", 1, json!({"downsync": [{"resources": ["*"]}]})),
        ];
        for c in &history {
            engine.apply(c);
        }
        engine.advance();
        // Later: a relabel, a version switch, a new resourceVersion, deletes, an edit.
        let later = [
            Change::Wec {
                name: "c2".into(),
                labels: Some(labels(&[("group", "edge")])),
            },
            object(
                "apps",
                "v1",
                "deployments",
                "ns1",
                "web",
                Some((&[("app", "web"), ("tier", "1")], "5")),
            ),
            object(
                "example.com",
                "v2",
                "widgets",
                "ns1",
                "w",
                Some((&[("a", "b")], "6")),
            ),
            object("", "v1", "configmaps", "ns1", "cfg", None),
            Change::Policy {
                name: "gone".into(),
                policy: None,
            },
            policy(
                "p",
                2,
                json!({"clusterSelectors": [{"matchLabels": {"group": "edge"}}, {"matchLabels": {"x": "y z"}}],
                       "downsync": [{"resources": ["deployments", "widgets"], "wantSingletonReportedState": true}]}),
            ),
        ];
        for c in &later {
            engine.apply(c);
        }
        // Before `advance` the oracle already holds the open epoch's inputs.
        let want = oracle_of(&history.iter().chain(&later).cloned().collect::<Vec<_>>());
        let got = engine.to_oracle();
        assert_eq!(format!("{got:?}"), format!("{want:?}"));
        engine.advance();
        let got = engine.to_oracle();
        let json = |bs: Vec<Binding>| bs.iter().map(Binding::to_json).collect::<Vec<_>>();
        assert_eq!(json(got.bindings()), json(engine.bindings()));
        assert_eq!(got.statuses(), engine.statuses());
        // The widget in the version it was last seen in; the deleted ConfigMap is gone.
        let p = got.binding("p").unwrap().to_json();
        let entries = p["spec"]["workload"]["namespaceScope"].as_array().unwrap();
        assert_eq!(entries.len(), 2, "{p}");
        assert_eq!(entries[1]["version"], json!("v2"));
        assert_eq!(entries[1]["resourceVersion"], json!("6"));
        assert_eq!(
            got.problems("p").unwrap().len(),
            2,
            "the invalid selector and the singleton problem"
        );
        assert!(got.binding("gone").is_none());
    }

    #[test]
    fn to_oracle_of_a_new_engine_is_empty() {
        let oracle = Engine::new().to_oracle();
        assert!(oracle.bindings().is_empty());
        assert!(oracle.statuses().is_empty());
    }
}

//! Index keys: how the dataflow joins selectors and clauses with the objects they can
//! select without testing every object. A clause or selector is joined on keys that
//! every object it can select carries; objects carry one key per name, namespace,
//! resource, group, label pair and label key, plus [`IndexKey::All`], and namespaced
//! objects their (namespace, resource) pair.

use serde::{Deserialize, Serialize};

use crate::intern::Sym;
use crate::labels::Labels;
use crate::model::ObjectRecord;

/// A join key between tests and objects.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum IndexKey {
    /// Carried by every object: the key of tests with no positive part.
    All,
    /// The object's name.
    Name(Sym),
    /// The object's namespace (`Sym::EMPTY` for cluster-scoped objects).
    Namespace(Sym),
    /// The object's plural resource name.
    Resource(Sym),
    /// A namespaced object's namespace and plural resource name: the key of clauses
    /// that restrict both (`namespaceSelectors` and `resources`).
    NamespacedResource(Sym, Sym),
    /// The object's API group.
    Group(Sym),
    /// A label pair the object carries.
    Label(Sym, Sym),
    /// A label key the object carries.
    LabelKey(Sym),
}

/// The index keys of a label set: [`IndexKey::All`], each pair and each key.
pub fn label_keys(labels: &Labels) -> impl Iterator<Item = IndexKey> + '_ {
    std::iter::once(IndexKey::All)
        .chain(labels.pairs().iter().map(|&(k, v)| IndexKey::Label(k, v)))
        .chain(labels.pairs().iter().map(|&(k, _)| IndexKey::LabelKey(k)))
}

/// The index keys of a workload object.
pub fn object_keys(object: &ObjectRecord) -> impl Iterator<Item = IndexKey> + '_ {
    let namespaced = (object.namespace != Sym::EMPTY).then_some(IndexKey::NamespacedResource(
        object.namespace,
        object.resource,
    ));
    [
        IndexKey::Name(object.name),
        IndexKey::Namespace(object.namespace),
        IndexKey::Resource(object.resource),
        IndexKey::Group(object.group),
    ]
    .into_iter()
    .chain(namespaced)
    .chain(label_keys(&object.labels))
}

//! Label sets in interned form.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::intern::{Interner, Sym};

/// The labels of an object: `(key, value)` pairs sorted by key symbol, keys unique.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Labels(Vec<(Sym, Sym)>);

impl Labels {
    /// Interns a string label map.
    pub fn intern(map: &BTreeMap<String, String>, interner: &mut Interner) -> Labels {
        let mut pairs: Vec<(Sym, Sym)> = map
            .iter()
            .map(|(k, v)| (interner.intern(k), interner.intern(v)))
            .collect();
        pairs.sort_unstable();
        Labels(pairs)
    }

    /// Gives back the interner references [`Labels::intern`] took.
    pub fn release(&self, interner: &mut Interner) {
        for &(k, v) in &self.0 {
            interner.release(k);
            interner.release(v);
        }
    }

    /// The labels back in strings (the inverse of [`Labels::intern`]).
    pub fn resolve(&self, interner: &Interner) -> BTreeMap<String, String> {
        self.0
            .iter()
            .map(|&(k, v)| {
                (
                    interner.resolve(k).to_string(),
                    interner.resolve(v).to_string(),
                )
            })
            .collect()
    }

    /// The value of label `key`, if present.
    pub fn get(&self, key: Sym) -> Option<Sym> {
        self.0
            .binary_search_by_key(&key, |(k, _)| *k)
            .ok()
            .map(|i| self.0[i].1)
    }

    /// The `(key, value)` pairs, sorted by key symbol.
    pub fn pairs(&self) -> &[(Sym, Sym)] {
        &self.0
    }
}

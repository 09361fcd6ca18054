//! Interned strings: every name, label key and label value the dataflow handles is a
//! [`Sym`], a `u32`, so records stay small and compare fast.

use lasso::{Key, Rodeo, Spur};
use serde::{Deserialize, Serialize};

/// An interned string. Only meaningful with the [`Interner`] that produced it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Sym(pub u32);

impl Sym {
    /// The empty string, interned first by every [`Interner`] (the core group, the
    /// namespace of a cluster-scoped object).
    pub const EMPTY: Sym = Sym(0);
}

/// Maps strings to [`Sym`]s and back. Strings are never freed.
pub struct Interner {
    rodeo: Rodeo,
}

impl Default for Interner {
    fn default() -> Self {
        let mut rodeo = Rodeo::default();
        let empty = rodeo.get_or_intern_static("");
        debug_assert_eq!(empty.into_usize(), 0);
        Interner { rodeo }
    }
}

impl Interner {
    /// Interns `s`, returning its symbol.
    pub fn intern(&mut self, s: &str) -> Sym {
        Sym(self.rodeo.get_or_intern(s).into_usize() as u32)
    }

    /// The symbol of `s` if it was interned before.
    pub fn get(&self, s: &str) -> Option<Sym> {
        self.rodeo.get(s).map(|k| Sym(k.into_usize() as u32))
    }

    /// The string behind `sym`.
    pub fn resolve(&self, sym: Sym) -> &str {
        let key = Spur::try_from_usize(sym.0 as usize).expect("symbol out of range");
        self.rodeo.resolve(&key)
    }

    /// Number of distinct strings interned.
    pub fn len(&self) -> usize {
        self.rodeo.len()
    }

    /// True when only the empty string is interned.
    pub fn is_empty(&self) -> bool {
        self.rodeo.len() <= 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_empty() {
        let mut i = Interner::default();
        assert_eq!(i.get(""), Some(Sym::EMPTY));
        let a = i.intern("apps");
        assert_ne!(a, Sym::EMPTY);
        assert_eq!(i.intern("apps"), a);
        assert_eq!(i.resolve(a), "apps");
        assert_eq!(i.get("nope"), None);
    }
}

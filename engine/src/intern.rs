//! Interned strings: every name, label key and label value the dataflow handles is a
//! [`Sym`], a `u32`, so records stay small and compare fast.
//!
//! Strings are reference-counted, so a long run does not keep every name it ever saw:
//! [`Interner::intern`] takes a reference, [`Interner::release`] gives one back, and
//! [`Interner::collect`] frees the strings whose count is zero, for their symbols to be
//! reused. Freeing is deferred to `collect` (the engine calls it once an epoch's output
//! has been rendered), so an output record retracting a just-released symbol still
//! resolves to its string.

use std::collections::HashMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// An interned string. Only meaningful with the [`Interner`] that produced it.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Sym(pub u32);

impl Sym {
    /// The empty string, interned first by every [`Interner`] (the core group, the
    /// namespace of a cluster-scoped object). Never freed.
    pub const EMPTY: Sym = Sym(0);
}

/// One symbol's string (`None` while the symbol is free) and reference count.
struct Slot {
    string: Option<Arc<str>>,
    refs: u32,
}

/// Maps strings to [`Sym`]s and back, with a reference count per string.
pub struct Interner {
    symbols: HashMap<Arc<str>, Sym>,
    slots: Vec<Slot>,
    /// Free symbols, reused by new strings.
    free: Vec<Sym>,
    /// Symbols whose count reached zero since the last [`Interner::collect`].
    zeroed: Vec<Sym>,
    /// The symbols interned while [`Interner::recording`] runs.
    recorded: Option<Vec<Sym>>,
}

impl Default for Interner {
    fn default() -> Self {
        let mut interner = Interner {
            symbols: HashMap::new(),
            slots: Vec::new(),
            free: Vec::new(),
            zeroed: Vec::new(),
            recorded: None,
        };
        let empty = interner.intern("");
        debug_assert_eq!(empty, Sym::EMPTY);
        interner
    }
}

impl Interner {
    /// Interns `s` and takes one reference to it, returning its symbol. Each call must
    /// be matched by one [`Interner::release`] for the string to be freed (strings that
    /// are never released live as long as the interner).
    pub fn intern(&mut self, s: &str) -> Sym {
        let sym = match self.symbols.get(s) {
            Some(&sym) => {
                self.slots[sym.0 as usize].refs += 1;
                sym
            }
            None => {
                let string: Arc<str> = Arc::from(s);
                let slot = Slot {
                    string: Some(string.clone()),
                    refs: 1,
                };
                let sym = match self.free.pop() {
                    Some(sym) => {
                        self.slots[sym.0 as usize] = slot;
                        sym
                    }
                    None => {
                        let sym = Sym(u32::try_from(self.slots.len()).expect("2^32 symbols"));
                        self.slots.push(slot);
                        sym
                    }
                };
                self.symbols.insert(string, sym);
                sym
            }
        };
        if let Some(recorded) = &mut self.recorded {
            recorded.push(sym);
        }
        sym
    }

    /// Gives back one reference taken by [`Interner::intern`]. The string stays
    /// resolvable until the next [`Interner::collect`], and is kept if it is interned
    /// again before that.
    pub fn release(&mut self, sym: Sym) {
        let slot = &mut self.slots[sym.0 as usize];
        debug_assert!(
            slot.string.is_some() && slot.refs > 0,
            "release of unreferenced {sym:?}"
        );
        slot.refs -= 1;
        if slot.refs == 0 {
            self.zeroed.push(sym);
        }
    }

    /// Releases every symbol of `syms` (one reference each).
    pub fn release_all(&mut self, syms: impl IntoIterator<Item = Sym>) {
        for sym in syms {
            self.release(sym);
        }
    }

    /// Runs `f` and returns, with its result, every symbol it interned (one entry per
    /// [`Interner::intern`] call, so releasing them all gives back exactly the
    /// references `f` took).
    pub fn recording<R>(&mut self, f: impl FnOnce(&mut Interner) -> R) -> (R, Vec<Sym>) {
        let outer = self.recorded.replace(Vec::new());
        let result = f(self);
        let recorded = std::mem::replace(&mut self.recorded, outer).unwrap_or_default();
        if let Some(outer) = &mut self.recorded {
            outer.extend_from_slice(&recorded);
        }
        (result, recorded)
    }

    /// Frees every string whose count is zero; their symbols are reused by strings
    /// interned later. Returns how many were freed.
    pub fn collect(&mut self) -> usize {
        let mut freed = 0;
        for sym in std::mem::take(&mut self.zeroed) {
            let slot = &mut self.slots[sym.0 as usize];
            if slot.refs == 0
                && let Some(string) = slot.string.take()
            {
                self.symbols.remove(&string);
                self.free.push(sym);
                freed += 1;
            }
        }
        if freed > 0 && self.symbols.capacity() > 4 * self.symbols.len() + 1024 {
            self.symbols.shrink_to_fit();
        }
        freed
    }

    /// The symbol of `s` if it is interned (takes no reference).
    pub fn get(&self, s: &str) -> Option<Sym> {
        self.symbols.get(s).copied()
    }

    /// The string behind `sym`.
    pub fn resolve(&self, sym: Sym) -> &str {
        self.slots
            .get(sym.0 as usize)
            .and_then(|slot| slot.string.as_deref())
            .expect("symbol out of range or freed")
    }

    /// Number of distinct strings interned (and not freed).
    pub fn len(&self) -> usize {
        self.symbols.len()
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

    #[test]
    fn released_strings_are_freed_at_collect_and_their_symbols_reused() {
        let mut i = Interner::default();
        let a = i.intern("a");
        let a2 = i.intern("a");
        assert_eq!(a, a2);
        let b = i.intern("b");
        i.release(a);
        assert_eq!(i.collect(), 0, "one reference to a is left");
        i.release(a);
        i.release(b);
        // Still resolvable until collect; interning again keeps it.
        assert_eq!(i.resolve(a), "a");
        assert_eq!(i.intern("b"), b);
        assert_eq!(i.collect(), 1);
        assert_eq!(i.get("a"), None);
        assert_eq!(i.get("b"), Some(b));
        assert_eq!(i.len(), 2, "the empty string and b");
        let c = i.intern("c");
        assert_eq!(c, a, "a's symbol is reused");
        assert_eq!(i.resolve(c), "c");
        assert_eq!(i.get("c"), Some(c));
    }

    #[test]
    fn recording_lists_every_intern_call() {
        let mut i = Interner::default();
        let x = i.intern("x");
        let ((), inner) = i.recording(|i| {
            i.intern("x");
            i.intern("y");
            i.intern("x");
        });
        assert_eq!(inner.len(), 3);
        i.release_all(inner);
        assert_eq!(i.collect(), 1, "y");
        assert_eq!(i.get("x"), Some(x));
        i.release(x);
        assert_eq!(i.collect(), 1);
        assert_eq!(i.len(), 1, "only the empty string is left");
    }
}

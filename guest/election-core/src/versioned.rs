//! A value that counts its changes, so work derived from it can be skipped
//! while it has not changed.
//!
//! The state machine answers every call with its status and, for a
//! follower, recomputes its place in the fast-failover line on every
//! heartbeat. Both walk the membership: at 51 members that was most of the
//! simulator's time, though the membership changes a few times per run.
//! Wrapped in [`Versioned`], a value can be read freely (it derefs to the
//! value) but changed only through [`Versioned::edit`] or
//! [`Versioned::set`], each of which moves its [`Versioned::version`] on.
//! So "the version is the one I saw" proves "the value is the one I saw",
//! by construction rather than by convention: there is no `DerefMut`, and
//! the compiler finds every write.
//!
//! Versions only ever grow within one instance and are not part of any
//! persisted or exported state: a restarted or swapped-in node starts at
//! 0 with nothing cached.

use core::ops::Deref;

/// A value and the number of times it may have changed. See the module
/// docs.
#[derive(Clone, Debug, Default)]
pub struct Versioned<T> {
    value: T,
    version: u64,
}

impl<T> Versioned<T> {
    /// Wraps `value` at version 0.
    pub fn new(value: T) -> Self {
        Versioned { value, version: 0 }
    }

    /// The value, to change: moves the version on (whether or not the
    /// caller then changes anything, which only costs a recomputation).
    pub fn edit(&mut self) -> &mut T {
        self.version += 1;
        &mut self.value
    }

    /// Replaces the value, moving the version on.
    pub fn set(&mut self, value: T) {
        *self.edit() = value;
    }

    /// How many times the value was handed out to change: equal versions
    /// of one instance mean an unchanged value.
    pub fn version(&self) -> u64 {
        self.version
    }
}

impl<T> Deref for Versioned<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.value
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::collections::BTreeSet;

    #[test]
    fn every_way_to_change_the_value_moves_the_version() {
        let mut set: Versioned<BTreeSet<u32>> = Versioned::default();
        let seen = set.version();
        assert!(set.contains(&1) || set.is_empty(), "reads need no edit");
        assert_eq!(set.version(), seen, "reading does not move it");
        set.edit().insert(1);
        assert!(set.version() > seen);
        let seen = set.version();
        set.set(BTreeSet::new());
        assert!(set.version() > seen);
        assert!(set.is_empty());
    }
}

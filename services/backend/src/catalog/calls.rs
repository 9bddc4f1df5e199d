//! A count of the catalog calls that reached the backend, so that a test can
//! prove a gateway answered without calling it.

use std::sync::{
    Arc,
    atomic::{AtomicU64, Ordering},
};

/// A shared count of `catalog.v1` calls; clones count into the same total.
#[derive(Clone, Debug, Default)]
pub struct CallCounter {
    /// Shared by every clone. Relaxed ordering is enough: the count orders
    /// nothing else, and a test reads it after the calls it counts returned.
    calls: Arc<AtomicU64>,
}

impl CallCounter {
    /// Counts one call.
    pub(crate) fn record(&self) {
        self.calls.fetch_add(1, Ordering::Relaxed);
    }

    /// The number of calls counted so far.
    pub fn get(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_share_the_count() {
        let counter = CallCounter::default();
        let clone = counter.clone();
        counter.record();
        clone.record();
        assert_eq!(counter.get(), 2);
        assert_eq!(clone.get(), 2);
    }
}

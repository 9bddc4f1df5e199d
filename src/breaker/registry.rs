//! One circuit per name, so that each backend method trips on its own: a
//! failing method does not cut off the healthy ones. Bounded, so that a
//! gateway in front of many methods does not grow without limit.

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex, PoisonError},
};

use arc_swap::ArcSwap;

use super::{BreakerConfig, Circuit, InvalidBreakerConfig};

/// The circuits of a process, by name, all made with one configuration.
///
/// Looking a circuit up takes no lock (the map is swapped whole when a
/// circuit is added, which happens at most `max_circuits` times). Names
/// beyond the bound share one circuit, [`CircuitRegistry::OVERFLOW`]:
/// their calls are still guarded, together.
#[derive(Debug)]
pub struct CircuitRegistry {
    config: BreakerConfig,
    max_circuits: usize,
    circuits: ArcSwap<BTreeMap<Arc<str>, &'static Circuit>>,
    /// The circuit of the names beyond the bound.
    overflow: &'static Circuit,
    /// Serializes additions, so that two callers of a new name share one
    /// circuit.
    additions: Mutex<()>,
}

impl CircuitRegistry {
    /// The name of the circuit that the names beyond the bound share.
    pub const OVERFLOW: &'static str = "_other";

    /// An empty registry of at most `max_circuits` named circuits (and the
    /// shared overflow circuit), made with `config`.
    pub fn new(config: BreakerConfig, max_circuits: usize) -> Result<Self, InvalidBreakerConfig> {
        config.validate()?;
        Ok(Self {
            overflow: Circuit::new(Self::OVERFLOW, config.clone()),
            config,
            max_circuits,
            circuits: ArcSwap::default(),
            additions: Mutex::default(),
        })
    }

    /// The circuit called `name`, made on first use; the overflow circuit
    /// once the registry is full.
    pub fn circuit(&self, name: &str) -> &'static Circuit {
        if let Some(circuit) = self.get(name) {
            return circuit;
        }
        let _adding = self
            .additions
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let circuits = self.circuits.load();
        if let Some(circuit) = circuits.get(name) {
            return circuit;
        }
        if circuits.len() >= self.max_circuits {
            tracing::debug!(
                circuit = name,
                shared = Self::OVERFLOW,
                "circuit registry full"
            );
            return self.overflow;
        }
        let circuit = Circuit::new(name, self.config.clone());
        let mut grown = BTreeMap::clone(&circuits);
        grown.insert(name.into(), circuit);
        self.circuits.store(Arc::new(grown));
        circuit
    }

    /// The circuit called `name`, if it exists (the overflow circuit
    /// included); never makes one.
    pub fn get(&self, name: &str) -> Option<&'static Circuit> {
        if name == Self::OVERFLOW {
            return Some(self.overflow);
        }
        self.circuits.load().get(name).copied()
    }

    /// Every named circuit, ordered by name, then the overflow circuit if
    /// any call went through it.
    pub fn circuits(&self) -> Vec<&'static Circuit> {
        let mut circuits: Vec<_> = self.circuits.load().values().copied().collect();
        let overflow = self.overflow.snapshot();
        if overflow.counts != Default::default() || overflow.state != super::CircuitState::Closed {
            circuits.push(self.overflow);
        }
        circuits
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_circuit_per_name() {
        let registry = CircuitRegistry::new(BreakerConfig::default(), 10).unwrap();
        let a = registry.circuit("/a");
        assert!(std::ptr::eq(a, registry.circuit("/a")));
        registry.circuit("/b");
        let names: Vec<_> = registry
            .circuits()
            .iter()
            .map(|c| c.name().to_owned())
            .collect();
        assert_eq!(names, ["/a", "/b"]);
        assert!(registry.get("/c").is_none(), "get never makes a circuit");
    }

    #[test]
    fn names_beyond_the_bound_share_the_overflow_circuit() {
        let registry = CircuitRegistry::new(BreakerConfig::default(), 2).unwrap();
        registry.circuit("/a");
        registry.circuit("/b");
        let c = registry.circuit("/c");
        let d = registry.circuit("/d");
        assert_eq!(c.name(), CircuitRegistry::OVERFLOW);
        assert!(std::ptr::eq(c, d));
        // Many more names add nothing.
        for n in 0..1000 {
            registry.circuit(&format!("/n{n}"));
        }
        assert_eq!(registry.circuits.load().len(), 2);
    }

    #[tokio::test]
    async fn the_overflow_circuit_is_listed_once_used() {
        let registry = CircuitRegistry::new(BreakerConfig::default(), 0).unwrap();
        assert!(registry.circuits().is_empty());
        registry
            .circuit("/a")
            .try_acquire()
            .unwrap()
            .record(crate::breaker::Outcome::Success);
        let names: Vec<_> = registry
            .circuits()
            .iter()
            .map(|c| c.name().to_owned())
            .collect();
        assert_eq!(names, [CircuitRegistry::OVERFLOW]);
    }

    #[test]
    fn rejects_a_bad_config() {
        let config = BreakerConfig {
            buckets: 0,
            ..BreakerConfig::default()
        };
        assert!(CircuitRegistry::new(config, 10).is_err());
    }
}

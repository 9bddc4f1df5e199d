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
    circuits: ArcSwap<BTreeMap<Arc<str>, Arc<Circuit>>>,
    /// The circuit of the names beyond the bound.
    overflow: Arc<Circuit>,
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
            overflow: Arc::new(Circuit::new(Self::OVERFLOW, config.clone())),
            config,
            max_circuits,
            circuits: ArcSwap::default(),
            additions: Mutex::default(),
        })
    }

    /// The circuit called `name`, made on first use; the overflow circuit
    /// once the registry is full.
    pub fn circuit(&self, name: &str) -> Arc<Circuit> {
        if let Some(circuit) = self.get(name) {
            return circuit;
        }
        let _adding = self
            .additions
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let circuits = self.circuits.load();
        if let Some(circuit) = circuits.get(name) {
            return Arc::clone(circuit);
        }
        if circuits.len() >= self.max_circuits {
            tracing::debug!(
                circuit = name,
                shared = Self::OVERFLOW,
                "circuit registry full"
            );
            return Arc::clone(&self.overflow);
        }
        let circuit = Arc::new(Circuit::new(name, self.config.clone()));
        let mut grown = BTreeMap::clone(&circuits);
        grown.insert(name.into(), Arc::clone(&circuit));
        self.circuits.store(Arc::new(grown));
        circuit
    }

    /// The circuit called `name`, if it exists (the overflow circuit
    /// included); never makes one.
    pub fn get(&self, name: &str) -> Option<Arc<Circuit>> {
        if name == Self::OVERFLOW {
            return Some(Arc::clone(&self.overflow));
        }
        self.circuits.load().get(name).cloned()
    }

    /// Every named circuit, ordered by name, then the overflow circuit if
    /// any call went through it.
    pub fn circuits(&self) -> Vec<Arc<Circuit>> {
        let mut circuits: Vec<_> = self.circuits.load().values().cloned().collect();
        let overflow = self.overflow.snapshot();
        if overflow.counts != Default::default() || overflow.state != super::CircuitState::Closed {
            circuits.push(Arc::clone(&self.overflow));
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
        assert!(Arc::ptr_eq(&a, &registry.circuit("/a")));
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
        assert!(Arc::ptr_eq(&c, &d));
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

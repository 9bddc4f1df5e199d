//! One circuit per name, so that each backend method trips on its own: a
//! failing method does not cut off the healthy ones.

use std::{
    collections::BTreeMap,
    sync::{Arc, PoisonError, RwLock},
};

use super::{BreakerConfig, Circuit, InvalidBreakerConfig};

/// The circuits of a process, by name, all made with one configuration.
#[derive(Debug)]
pub struct CircuitRegistry {
    config: BreakerConfig,
    circuits: RwLock<BTreeMap<Arc<str>, Arc<Circuit>>>,
}

impl CircuitRegistry {
    /// An empty registry whose circuits will use `config`.
    pub fn new(config: BreakerConfig) -> Result<Self, InvalidBreakerConfig> {
        config.validate()?;
        Ok(Self {
            config,
            circuits: RwLock::default(),
        })
    }

    /// The circuit called `name`, made on first use.
    pub fn circuit(&self, name: &str) -> Arc<Circuit> {
        if let Some(circuit) = self
            .circuits
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(name)
        {
            return Arc::clone(circuit);
        }
        let mut circuits = self
            .circuits
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        Arc::clone(
            circuits
                .entry(name.into())
                .or_insert_with(|| Arc::new(Circuit::new(name, self.config.clone()))),
        )
    }

    /// Every circuit, ordered by name.
    pub fn circuits(&self) -> Vec<Arc<Circuit>> {
        self.circuits
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_circuit_per_name() {
        let registry = CircuitRegistry::new(BreakerConfig::default()).unwrap();
        let a = registry.circuit("/a");
        assert!(Arc::ptr_eq(&a, &registry.circuit("/a")));
        registry.circuit("/b");
        let names: Vec<_> = registry
            .circuits()
            .iter()
            .map(|c| c.name().to_owned())
            .collect();
        assert_eq!(names, ["/a", "/b"]);
    }

    #[test]
    fn rejects_a_bad_config() {
        let config = BreakerConfig {
            buckets: 0,
            ..BreakerConfig::default()
        };
        assert!(CircuitRegistry::new(config).is_err());
    }
}

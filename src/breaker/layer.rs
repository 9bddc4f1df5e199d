//! The layer that puts a circuit in front of a service.

use tower::Layer;

use super::{Circuit, CircuitBreaker};

/// Wraps services in a [`CircuitBreaker`] that shares one [`Circuit`]: every
/// service made by this layer trips and recovers together.
#[derive(Clone, Debug)]
pub struct CircuitBreakerLayer<C> {
    circuit: &'static Circuit,
    classifier: C,
}

impl<C> CircuitBreakerLayer<C> {
    /// A layer over `circuit` that judges outcomes with `classifier`.
    pub fn new(circuit: &'static Circuit, classifier: C) -> Self {
        Self {
            circuit,
            classifier,
        }
    }
}

impl<S, C: Clone> Layer<S> for CircuitBreakerLayer<C> {
    type Service = CircuitBreaker<S, C>;

    fn layer(&self, inner: S) -> Self::Service {
        CircuitBreaker::new(inner, self.circuit, self.classifier.clone())
    }
}

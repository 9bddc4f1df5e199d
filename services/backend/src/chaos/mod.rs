//! Faults injected into catalog calls on purpose, so that the gateway's
//! behaviour under a slow or failing backend can be shown and tested.

mod faults;
mod service;
mod settings;

pub use faults::Faults;
pub use service::ChaosApi;
pub use settings::{FaultSettings, InvalidFault};

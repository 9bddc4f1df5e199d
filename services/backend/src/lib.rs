//! The catalog backend: the source of truth for `catalog.v1`, which can be
//! made slow or failing on purpose to show how the gateway copes.
//!
//! # Layout
//!
//! * [`catalog`]: the products, read once from JSON (the bundled file or
//!   `--catalog`), and the `catalog.v1.CatalogService` that serves them. Its
//!   page tokens name the last id served, so paging survives a changed
//!   catalog.
//! * [`chaos`]: the faults (latency, error rate, error code) that every
//!   catalog call suffers, and the `backend.v1.ChaosService` that changes
//!   them at run time.
//! * [`config`]: the command line, checked once at start-up.
//! * [`Backend`] (in `server`): everything above, plus health and
//!   reflection, on one listener with a graceful shutdown. The binary and
//!   the tests start it the same way.

#![warn(missing_docs)]

pub mod catalog;
pub mod chaos;
pub mod config;
mod server;

pub use catalog::{CallCounter, Catalog, CatalogError};
pub use chaos::{FaultSettings, Faults};
pub use config::Config;
pub use server::Backend;

//! Tools for the end-to-end tests and the benchmarks (feature `gui`); the app does not use them.

pub mod notifyd;

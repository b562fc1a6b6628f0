//! Tools for the end-to-end tests and the benchmarks (feature `devtools`), never compiled into
//! the shipped app.

pub mod notifyd;
pub mod trayd;

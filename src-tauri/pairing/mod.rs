//! Pairing rules and formats, pure (no IO): DM codes and decisions, device identity and
//! fingerprints, tokens, setup codes.

pub mod device;
pub mod dm;
pub mod setup;
pub mod token;

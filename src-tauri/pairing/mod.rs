//! Pairing rules and formats, pure (no IO): DM codes and decisions, device identity and
//! fingerprints, tokens, setup codes and their certificate pins.

pub mod device;
pub mod dm;
pub mod pin;
pub mod setup;
pub mod token;

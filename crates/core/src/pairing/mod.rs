//! Pairing rules and formats, pure (no IO): DM codes and decisions, device identity and
//! fingerprints (and the keys already seen), roles and scopes, who may approve what, tokens, setup codes and their
//! certificate pins.

pub mod authority;
pub mod device;
pub mod dm;
pub mod keys;
pub mod node;
pub mod pin;
pub mod scope;
pub mod setup;
pub mod token;

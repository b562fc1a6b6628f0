//! ClawPair's core: explicit-consent pairing for a personal AI-agent gateway.
//!
//! The store, the pairing rules, the protocol, the service, the gateway, the client, the CLI and
//! the chat channels, with no GUI in the dependency tree. The tray app (the `clawpair-app` crate
//! at the top of the workspace) is a thin shell over this crate.

pub mod approval;
pub mod attach;
pub mod channels;
pub mod cli;
pub mod client;
pub mod clock;
pub mod config;
pub mod events;
pub mod gateway;
pub mod import;
pub mod logging;
pub mod net;
pub mod owner;
pub mod pairing;
pub mod ports;
pub mod protocol;
pub mod qr;
pub mod rpc;
pub mod sanitize;
pub mod service;
pub mod store;
pub mod tls;

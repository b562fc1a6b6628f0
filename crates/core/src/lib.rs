//! ClawPair: explicit-consent pairing for a personal AI-agent gateway.
//!
//! The core (`config`, `store`, `pairing`, `service`, `events`, `channels`) has no GUI dependency
//! and is what the CLI, the gateway and the tray app all call. Only `app` (feature `gui`) uses Tauri.

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

#[cfg(feature = "gui")]
pub mod app;
#[cfg(feature = "devtools")]
pub mod devtools;

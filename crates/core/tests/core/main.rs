//! Every integration test of the core in one binary, a module per area. They drive real
//! sockets on loopback, real files in temp dirs, and the real `clawpair` binary as a child
//! process (the core's, built with this test: the same command line the app ships).

/// The `clawpair` binary the harness runs.
const CLAWPAIR: &str = env!("CARGO_BIN_EXE_clawpair");

mod common;

mod attach_transport;
mod authorization;
mod cli;
mod device_pairing;
mod dm_pairing;
mod fault;
mod gateway_hardening;
mod headless;
mod interop;
mod locks;
mod loopback_ns;
mod module_graph;
mod names;
mod openclaw_import;
mod openclaw_protocol;
mod owner_api;
mod revocation;
mod sessions;
mod settings_file;
mod state_dir;
mod store;
mod telegram;
mod watch;

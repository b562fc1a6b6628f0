//! Stand-ins for what cannot exist on a test machine, for the tests and the benchmarks: a
//! desktop notification server, a tray host, and Telegram's Bot API, each speaking the real
//! protocol (D-Bus `org.freedesktop.Notifications`, `StatusNotifierWatcher`, HTTP Bot API);
//! and the real OpenClaw's install and sandbox (`openclaw`). A dev-only crate: the shipped app cannot contain it.

pub mod botapi;
pub mod notifyd;
pub mod openclaw;
pub mod trayd;

//! The ClawPair tray app: a thin Tauri shell (window commands, tray, notifications, the
//! gateway's lifecycle) over `clawpair_core`, which holds everything else.

pub mod app;

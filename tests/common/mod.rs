//! The harness of the app's own tests: the core's (crates/core/tests/core/common) and what only
//! the desktop needs (the display, WebDriver, the accessibility audit).
#![allow(dead_code, unused_imports)]

#[path = "../../crates/core/tests/core/common/mod.rs"]
mod core;

pub use self::core::*;

pub mod a11y;
pub mod desktop;
pub mod webdriver;

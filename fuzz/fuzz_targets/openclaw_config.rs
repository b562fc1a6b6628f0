//! OpenClaw's config (`openclaw.json`, JSON5) as OpenClaw or a person left it, read as
//! companion mode reads it to find OpenClaw's gateway: its address and admin token, then the
//! URL made into the request ClawPair would send.

#![no_main]

use clawpair_core::attach::discover;
use clawpair_fuzz::{fresh_state, plant};
use libfuzzer_sys::fuzz_target;
use tungstenite::client::IntoClientRequest;

fuzz_target!(|data: &[u8]| {
    let paths = fresh_state();
    let dir = paths.root().join("openclaw");
    let config = dir.join("openclaw.json");
    plant(&config, data);
    let Ok(found) = discover::at(&dir, &config) else {
        return;
    };
    assert!(
        found.url.as_str().into_client_request().is_ok(),
        "the URL it derives is one to connect to: {}",
        found.url
    );
    let _ = found.token();
});

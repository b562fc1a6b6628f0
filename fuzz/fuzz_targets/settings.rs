//! `clawpair.json` (the settings) as a person or another process left it: read without
//! creating anything (`doctor`), checked for problems, loaded as every start loads it (a
//! missing admin token minted and written) and edited under its lock. A file that does not
//! parse is the owner's to correct: left exactly as it was, refused with where the mistake is;
//! what the store wrote reads back the same.

#![no_main]

use clawpair_core::config;
use clawpair_core::store::StoreError;
use clawpair_fuzz::{clock, fresh_state, moved_aside_with, plant};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let paths = fresh_state();
    let file = paths.settings();
    plant(&file, data);
    let clock = clock();
    match config::read(&paths, &*clock) {
        Ok(s) => {
            let _ = s.problems();
            let _ = (
                s.dm_limits(),
                s.device_pending_ttl_ms(),
                s.setup_code_ttl_ms(),
            );
            let _ = s.stale_after_ms();
            let _ = s.gateway.tls_on().map(|t| t.problems());
            let _ = s.dm_policy("telegram");
        }
        Err(StoreError::Invalid { .. }) => {
            // The owner's file: never moved aside nor rewritten, and every start refuses it
            // too, saying where the mistake is.
            assert_eq!(std::fs::read(&file).ok().as_deref(), Some(data), "left as it was");
            assert!(
                matches!(
                    config::load_or_init(&paths, &*clock),
                    Err(StoreError::Invalid { .. })
                ),
                "refused at start as well"
            );
            assert_eq!(std::fs::read(&file).ok().as_deref(), Some(data), "still as it was");
            return;
        }
        Err(StoreError::Corrupt { .. }) => {
            assert!(moved_aside_with(&file, data), "moved aside whole");
        }
        Err(e) => panic!("unexpected error: {e}"),
    }
    let (loaded, _created) = config::load_or_init(&paths, &*clock).expect("loaded");
    assert!(!loaded.gateway.auth.token.is_empty(), "an admin token");
    assert_eq!(
        config::read(&paths, &*clock).expect("read back"),
        loaded,
        "what was loaded is what is on disk"
    );
    let _ = config::update(&paths, &*clock, |s| {
        s.ui.show_guide = !s.ui.show_guide;
        Ok(())
    });
});

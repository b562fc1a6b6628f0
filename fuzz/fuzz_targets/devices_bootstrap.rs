//! `devices/bootstrap.json` (the setup codes issued) as another process or an editor left it:
//! a presented code checked as a connect checks it, bound to the device as its request is
//! recorded, a new code issued (retiring older ones), and every code revoked. A file that does not parse must be moved aside whole, and
//! no code accepted from it.

#![no_main]

use clawpair_core::config::Settings;
use clawpair_core::store::devices::{DeviceStore, DeviceStoreError};
use clawpair_core::store::StoreError;
use clawpair_fuzz::{candidate, clock, fresh_state, moved_aside_with, plant, rng};
use libfuzzer_sys::fuzz_target;

/// The token the seeds' records hash to (`hash_token("fuzz-setup-token")`).
const PRESENTED: &str = "fuzz-setup-token";

fuzz_target!(|data: &[u8]| {
    let paths = fresh_state();
    let file = paths.bootstrap();
    plant(&file, data);
    let store = DeviceStore::new(paths.clone(), clock());
    let device = candidate();
    match store.bootstrap_check(PRESENTED, &device.device_id) {
        Ok(rec) => {
            let s = Settings::default();
            let (ttl, max) = (s.device_pending_ttl_ms(), s.devices.max_pending);
            let _ = store.request(device.clone(), Some(&rec.token_hash), ttl, max);
        }
        Err(DeviceStoreError::Store(StoreError::Corrupt { .. })) => {
            assert!(moved_aside_with(&file, data), "moved aside whole");
            assert!(
                store.bootstrap_check(PRESENTED, &device.device_id).is_err(),
                "no code accepted from a corrupt file"
            );
            return;
        }
        Err(DeviceStoreError::Bootstrap(_)) => {}
        Err(e) => panic!("unexpected error: {e}"),
    }
    let _ = store.bootstrap_revoke_for_device("0000");
    let (token, _, _) = store
        .bootstrap_create("ws://192.168.1.20:18789", 600_000, "cli", true, &mut rng())
        .expect("a new code is issued over whatever parsed");
    store
        .bootstrap_check(&token, &device.device_id)
        .expect("the code just issued is accepted");
    let _ = store.bootstrap_cleanup();
});

//! `devices/pending.json` as another process or an editor left it, read and changed through
//! the device store as the gateway and the owner do: listed (expired requests pruned and the
//! file rewritten), approved, rejected, a new request recorded, a removed device's requests
//! dropped. A file that does not parse must be moved aside whole and nothing admitted from it.

#![no_main]

use clawpair_core::config::Settings;
use clawpair_core::pairing::authority::Authority;
use clawpair_core::store::devices::{DeviceStore, DeviceStoreError};
use clawpair_core::store::StoreError;
use clawpair_fuzz::{candidate, clock, fresh_state, moved_aside_with, plant, rng};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let paths = fresh_state();
    let file = paths.pending_devices();
    plant(&file, data);
    let store = DeviceStore::new(paths.clone(), clock());
    let ttl = Settings::default().device_pending_ttl_ms();
    let live = match store.pending(ttl) {
        Ok((live, _expired)) => live,
        Err(DeviceStoreError::Store(StoreError::Corrupt { .. })) => {
            assert!(moved_aside_with(&file, data), "moved aside whole");
            let (again, _) = store.pending(ttl).expect("read after moving aside");
            assert!(again.is_empty(), "nothing admitted from a corrupt file");
            return;
        }
        Err(e) => panic!("unexpected error: {e}"),
    };
    let (again, _) = store.pending(ttl).expect("the file it wrote reads back");
    assert_eq!(again, live, "listing twice lists the same");

    if let Some(r) = live.first() {
        let _ = r.shown_name();
        let _ = store.approve(&r.request_id, &[], &Authority::owner(), ttl);
    }
    if let Some(r) = live.get(1) {
        let _ = store.reject(&r.request_id, ttl);
    }
    let max_pending = Settings::default().devices.max_pending;
    let _ = store.request(candidate(), None, ttl, max_pending);
    if let Some(r) = live.last() {
        let _ = store.forget_requests(&r.device_id, ttl);
    }
    let _ = store.issue_token_on_connect(&candidate().device_id, "node", None, &mut rng());
});

//! `devices/paired.json` as another process or an editor left it, read through the store's
//! cache as every connect reads it, then changed as the gateway and the owner change it: use
//! recorded, a token minted on connect, renamed, a role revoked, a device removed. A file that
//! does not parse must be moved aside whole and nothing admitted from it.

#![no_main]

use clawpair_core::clock::Millis;
use clawpair_core::config::Settings;
use clawpair_core::pairing::authority::Authority;
use clawpair_core::store::devices::{DeviceStore, DeviceStoreError};
use clawpair_core::store::StoreError;
use clawpair_fuzz::{clock, fresh_state, moved_aside_with, plant, rng, NOW};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let paths = fresh_state();
    let file = paths.paired_devices();
    plant(&file, data);
    let store = DeviceStore::new(paths.clone(), clock());
    let paired = match store.paired() {
        Ok(m) => m,
        Err(DeviceStoreError::Store(StoreError::Corrupt { .. })) => {
            assert!(moved_aside_with(&file, data), "moved aside whole");
            let again = store.paired().expect("read after moving aside");
            assert!(again.is_empty(), "nothing admitted from a corrupt file");
            return;
        }
        Err(e) => panic!("unexpected error: {e}"),
    };
    let stale_after = Settings::default()
        .stale_after_ms()
        .unwrap_or(30 * 86_400_000);
    let mut seen: Vec<(String, String, Millis)> = Vec::new();
    for d in paired.values().take(8) {
        let _ = d.shown_name();
        let _ = d.is_stale(NOW, stale_after);
        for role in d.roles.iter().take(2) {
            seen.push((d.device_id.clone(), role.clone(), NOW));
        }
    }
    let _ = store.touch(&seen);
    let Some((id, role, _)) = seen.first().cloned() else {
        return;
    };
    let _ = store.issue_token_on_connect(&id, &role, None, &mut rng());
    let owner = Authority::owner();
    let _ = store.rename(&id, "fuzz label", &owner);
    let _ = store.revoke(&id, &role, &owner);
    let _ = store.remove(&id, &owner);
    let _ = store.paired().expect("the file the store wrote reads back");
});

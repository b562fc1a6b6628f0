//! `credentials/<channel>-pairing.json` (chat senders waiting for a code) as OpenClaw, another
//! process or an editor left it: listed (expired requests pruned and the file rewritten), a
//! request approved into its account's allowlist, one rejected, a new sender recorded, and
//! requests naming an account that cannot be a file removed. Whatever a request names, nothing
//! is written outside `credentials/`; a file that does not parse is moved aside whole.

#![no_main]

use clawpair_core::config::Settings;
use clawpair_core::store::dm::{DmStore, DmStoreError};
use clawpair_core::store::{AccountId, ChannelName, StoreError};
use clawpair_fuzz::{clock, files_outside, fresh_state, moved_aside_with, plant, rng, CHANNEL};
use libfuzzer_sys::fuzz_target;
use serde_json::{json, Map};

fuzz_target!(|data: &[u8]| {
    let paths = fresh_state();
    let channel = ChannelName::parse(CHANNEL).expect("a channel name");
    let file = paths.pairing_file(&channel);
    plant(&file, data);
    let store = DmStore::new(paths.clone(), clock());
    let limits = Settings::default().dm_limits();
    let live = match store.list(&channel, limits) {
        Ok((live, _expired)) => live,
        Err(DmStoreError::Store(StoreError::Corrupt { .. })) => {
            assert!(moved_aside_with(&file, data), "moved aside whole");
            let (again, _) = store
                .list(&channel, limits)
                .expect("read after moving aside");
            assert!(again.is_empty(), "nothing admitted from a corrupt file");
            return;
        }
        Err(e) => panic!("unexpected error: {e}"),
    };
    let (again, _) = store
        .list(&channel, limits)
        .expect("the file it wrote reads back");
    assert_eq!(again, live, "listing twice lists the same");

    if let Some(r) = live.first() {
        let _ = store.approve(&channel, &r.code, None, "fuzz", limits);
    }
    if let Some(r) = live.get(1) {
        let _ = store.reject(&channel, &r.code, None, limits);
    }
    let mut meta = Map::new();
    meta.insert("username".into(), json!("fuzz_sender"));
    let _ = store.upsert(
        &channel,
        &AccountId::default_account(),
        "424242",
        &meta,
        limits,
        &mut rng(),
    );
    let _ = store.remove_invalid(&channel);
    let stray = files_outside(paths.root(), &paths.credentials_dir());
    assert!(stray.is_empty(), "written outside credentials/: {stray:?}");
});

//! `credentials/<channel>-allowFrom.json` (the approved chat senders) as OpenClaw, another
//! process or an editor left it: asked whether a sender is allowed (through the cache every
//! message goes through), listed, and changed as the owner and the channel change it. The
//! wildcard and the empty sender are never allowed, whatever the file says; a file that does
//! not parse is moved aside whole and allows no one.

#![no_main]

use clawpair_core::store::dm::{DmStore, DmStoreError};
use clawpair_core::store::{AccountId, ChannelName, StoreError};
use clawpair_fuzz::{clock, fresh_state, moved_aside_with, plant, CHANNEL, NOW};
use libfuzzer_sys::fuzz_target;

const SENDER: &str = "424242";

fuzz_target!(|data: &[u8]| {
    let paths = fresh_state();
    let channel = ChannelName::parse(CHANNEL).expect("a channel name");
    let account = AccountId::default_account();
    let file = paths.allow_file(&channel, &account);
    plant(&file, data);
    let store = DmStore::new(paths.clone(), clock());
    match store.is_allowed(&channel, &account, SENDER) {
        Ok(_) => {}
        Err(DmStoreError::Store(StoreError::Corrupt { .. })) => {
            assert!(moved_aside_with(&file, data), "moved aside whole");
            assert!(
                !store
                    .is_allowed(&channel, &account, SENDER)
                    .expect("read after moving aside"),
                "no one allowed from a corrupt file"
            );
            return;
        }
        Err(e) => panic!("unexpected error: {e}"),
    }
    for nobody in ["*", ""] {
        assert!(
            !store
                .is_allowed(&channel, &account, nobody)
                .expect("read again"),
            "{nobody:?} is never allowed"
        );
    }
    let entries = store.allow_entries(&channel, &account).expect("listed");
    assert!(entries
        .iter()
        .all(|e| e.sender != "*" && !e.sender.is_empty()));
    let _ = store.touch_last_message(&channel, &account, SENDER, NOW);
    if let Some(e) = entries.first() {
        let _ = store.allow_remove(&channel, &account, &e.sender);
    }
    let _ = store.allow_add(&channel, &account, "515151", "fuzz");
    assert!(
        store
            .is_allowed(&channel, &account, "515151")
            .expect("read again"),
        "a sender just added is allowed"
    );
});

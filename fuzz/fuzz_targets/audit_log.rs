//! `logs/audit.jsonl` as another process, a crash or an editor left it: its tail read as
//! `clawpair audit` and the window read it (lines that do not parse skipped), then an entry
//! appended, which must read back as the newest entry whatever was there before.

#![no_main]

use clawpair_core::store::audit::{self, AuditEntry};
use clawpair_fuzz::{fresh_state, plant, NOW};
use libfuzzer_sys::fuzz_target;
use serde_json::{json, Map};

fuzz_target!(|data: &[u8]| {
    let paths = fresh_state();
    let file = paths.audit_log();
    plant(&file, data);
    let entries = audit::tail(&file, 200).expect("the tail of any file");
    assert!(entries.len() <= 200);
    let mut details = Map::new();
    details.insert("requestId".into(), json!("fuzz"));
    let entry = AuditEntry::new(NOW, "device.approved", "fuzz@admin-token", details);
    audit::append(&file, &entry).expect("appended");
    let last = audit::tail(&file, 1).expect("read back");
    assert_eq!(last, [entry], "the entry just appended is the newest");
});

//! The store under stress: many processes at once, processes killed mid-write, a permissive
//! umask.

use crate::common;

use std::process::Stdio;
use std::time::Duration;

use common::{mode, State};
use serde_json::Value;

#[test]
fn twenty_four_concurrent_cli_processes_lose_no_allowlist_entry() {
    let st = State::new();
    st.ok(&["doctor"]); // settings written once, so the race is on the allowlist only
    let children: Vec<_> = (0..24)
        .map(|i| {
            st.cmd(&["allowlist", "add", "telegram", &format!("sender{i}")])
                .stdout(Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    for mut c in children {
        assert!(c.wait().unwrap().success());
    }
    let f: Value = serde_json::from_str(&st.read("credentials/telegram-allowFrom.json")).unwrap();
    let list = f["allowFrom"].as_array().unwrap();
    assert_eq!(list.len(), 24, "{f}");
    for i in 0..24 {
        assert!(list.contains(&Value::from(format!("sender{i}"))));
    }
}

#[test]
fn a_process_killed_mid_write_leaves_a_file_that_parses() {
    let st = State::new();
    st.ok(&["allowlist", "add", "telegram", "base"]);
    let mut acknowledged = vec!["base".to_string()];
    for i in 0..40u64 {
        let sender = format!("s{i}");
        let mut child = st
            .cmd(&["allowlist", "add", "telegram", &sender])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Kill at a different moment each time: sometimes before, during or after the write.
        std::thread::sleep(Duration::from_micros((i * 397) % 4000));
        let _ = child.kill();
        let status = child.wait().unwrap();
        if status.success() {
            acknowledged.push(sender);
        }
        let text = st.read("credentials/telegram-allowFrom.json");
        let f: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("after kill {i}: file does not parse ({e}): {text:?}"));
        let list: Vec<&str> = f["allowFrom"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_str)
            .collect();
        for a in &acknowledged {
            assert!(
                list.contains(&a.as_str()),
                "acknowledged {a} lost after kill {i}"
            );
        }
    }
    // No temp files are taken for state: doctor cleans any that a kill left behind.
    st.run(&["doctor", "--fix"]);
    let leftovers: Vec<_> = std::fs::read_dir(st.file("credentials"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty());
}

#[test]
fn permissions_are_0600_and_0700_even_under_umask_000() {
    let st = State::new();
    let bin = crate::CLAWPAIR;
    let dir = st.dir.path().join("fresh");
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("umask 000; '{bin}' --state-dir '{}' qr --url ws://10.1.1.1:18789/ --json > /dev/null && exec '{bin}' --state-dir '{}' allowlist add telegram 1", dir.display(), dir.display()))
        .status()
        .unwrap();
    assert!(status.success());
    let mut checked = 0;
    for (p, _) in common::files_under(&dir) {
        assert_eq!(mode(&p), 0o600, "{}", p.display());
        checked += 1;
    }
    for d in ["", "credentials", "devices", "logs"] {
        assert_eq!(mode(&dir.join(d)), 0o700, "{d}");
    }
    assert!(checked >= 4);
}

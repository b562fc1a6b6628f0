//! Where the state lives: ClawPair's own default directory, the environment's precedence, and
//! the one-time move of an earlier ClawPair's state out of OpenClaw's directory (including what
//! OpenClaw 2026.9 already did to it, and a move cut short). The real CLI binary runs with
//! `HOME` pointed at a temp dir.

use crate::common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use clawpair_core::client::{Identity, IdentityFile};
use clawpair_core::clock::SystemClock;
use clawpair_core::service::{DeviceAsk, Service};
use clawpair_core::store::StatePaths;
use common::{files_under, mode, stderr, stdout, Home};
use serde_json::Value;

const NOTICE: &str = "Moved ClawPair's state from ~/.openclaw to ~/.local/share/clawpair (OpenClaw 2026.9 empties ~/.openclaw)";

/// Files under `dir` by path relative to it, `.lock` sidecars left out.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    files_under(dir)
        .into_iter()
        .filter(|(p, _)| !p.to_string_lossy().ends_with(".lock"))
        .map(|(p, b)| (p.strip_prefix(dir).unwrap().to_path_buf(), b))
        .collect()
}

fn write(p: &Path, bytes: &[u8]) {
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, bytes).unwrap();
}

/// OpenClaw's own files, as a 2026.9 install keeps them beside ClawPair's.
const OPENCLAW_FILES: &[(&str, &[u8])] = &[
    ("openclaw.json", b"{ gateway: { mode: 'local' } }\n"),
    ("state/openclaw.sqlite", b"SQLite format 3\0 (stand-in)"),
    ("credentials/oauth.json", b"{\"provider\":\"x\"}"),
    ("credentials/whatsapp/default/creds.json", b"{}"),
    ("devices/nodes.json", b"{}"),
    ("logs/gateway.log", b"started\n"),
    ("agents/main/agent/models.json", b"{}"),
];

/// A paired device and its token, written through the service into `dir`.
fn pair_a_device(dir: &Path) -> (String, String) {
    let (svc, _) = Service::open(StatePaths::new(dir), Arc::new(SystemClock)).unwrap();
    let phone = Identity::generate();
    let (rec, _) = svc
        .device_request(DeviceAsk {
            device_id: phone.device_id(),
            public_key: phone.public_key(),
            fingerprint: phone.fingerprint(),
            display_name: "Pixel".into(),
            platform: "android".into(),
            client_id: "clawpair-node".into(),
            client_mode: "node".into(),
            role: "node".into(),
            remote_ip: "192.168.1.9".into(),
            reason: "not-paired".into(),
            ..Default::default()
        })
        .unwrap();
    svc.device_approve(&rec.request.request_id, "test").unwrap();
    let (token, _) = svc
        .token_issue_on_connect(&phone.device_id(), "node")
        .unwrap();
    (phone.device_id(), token)
}

/// An earlier ClawPair's state in `~/.openclaw`, beside OpenClaw's own files.
fn earlier_clawpair(home: &Home) -> PathBuf {
    let old = home.openclaw();
    let o = home.run(&[
        "--state-dir",
        old.to_str().unwrap(),
        "allowlist",
        "add",
        "telegram",
        "111",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = home.run(&[
        "--state-dir",
        old.to_str().unwrap(),
        "allowlist",
        "add",
        "telegram",
        "222",
        "--account",
        "work",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    pair_a_device(&old);
    let now = chrono::Utc::now();
    write(
        &old.join("credentials/telegram-pairing.json"),
        format!(
            r#"{{"version":1,"requests":[{{"id":"333","code":"ABCD2345","createdAt":"{0}","lastSeenAt":"{0}","meta":{{"accountId":"default"}}}}]}}"#,
            now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
        )
        .as_bytes(),
    );
    write(
        &old.join("credentials/telegram-offset.json"),
        b"{\"offset\":42}",
    );
    IdentityFile::new(&Identity::generate(), now.timestamp_millis())
        .save(&old.join("identity/device.json"))
        .unwrap();
    write(&old.join("logs/audit.jsonl.1"), b"{\"old\":1}\n");
    write(&old.join("logs/clawpair.log"), b"a log line\n");
    write(&old.join("logs/clawpair.log.1"), b"an older log line\n");
    for (rel, bytes) in OPENCLAW_FILES {
        write(&old.join(rel), bytes);
    }
    old
}

fn is_openclaws(rel: &Path) -> bool {
    OPENCLAW_FILES.iter().any(|(f, _)| Path::new(f) == rel)
}

#[test]
fn default_state_dir_is_clawpairs_own_and_not_openclaws() {
    let home = Home::new();
    let o = home.run(&["allowlist", "add", "telegram", "5"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let dir = home.default_state();
    assert!(dir.join("credentials/telegram-allowFrom.json").exists());
    assert!(dir.join("clawpair.json").exists());
    assert_eq!(mode(&dir), 0o700);
    assert!(!home.openclaw().exists(), "~/.openclaw must not be created");
    assert!(!stderr(&o).contains("Moved"), "{}", stderr(&o));
}

#[test]
fn clawpair_state_dir_env_beats_the_default_and_the_flag_beats_both() {
    let home = Home::new();
    let env_dir = home.path().join("from-env");
    let flag_dir = home.path().join("from-flag");
    let openclaw_dir = home.path().join("openclaw-env");
    // $OPENCLAW_STATE_DIR never picks ClawPair's directory.
    let o = home
        .cmd(&["allowlist", "add", "telegram", "1"])
        .env("OPENCLAW_STATE_DIR", &openclaw_dir)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(home.default_state().join("clawpair.json").exists());
    assert!(!openclaw_dir.exists(), "OpenClaw's directory is only read");

    let o = home
        .cmd(&["allowlist", "add", "telegram", "2"])
        .env("CLAWPAIR_STATE_DIR", &env_dir)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(env_dir.join("credentials/telegram-allowFrom.json").exists());

    let o = home
        .cmd(&[
            "--state-dir",
            flag_dir.to_str().unwrap(),
            "allowlist",
            "add",
            "telegram",
            "3",
        ])
        .env("CLAWPAIR_STATE_DIR", &env_dir)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(flag_dir
        .join("credentials/telegram-allowFrom.json")
        .exists());
    let env_list =
        std::fs::read_to_string(env_dir.join("credentials/telegram-allowFrom.json")).unwrap();
    assert!(!env_list.contains("\"3\""), "{env_list}");

    // An empty variable counts as unset.
    let o = home
        .cmd(&["allowlist", "list", "--json"])
        .env("CLAWPAIR_STATE_DIR", "")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["entries"].as_array().unwrap().len(), 1, "{v}");
}

#[test]
fn legacy_state_moves_once_and_openclaw_files_stay() {
    let home = Home::new();
    let old = earlier_clawpair(&home);
    let before = snapshot(&old);

    let o = home.run(&["allowlist", "list", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    assert_eq!(err.matches(NOTICE).count(), 1, "{err}");
    assert_eq!(err.lines().count(), 1, "one line only: {err}");
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    let senders: Vec<(&str, &str)> = v["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["accountId"].as_str().unwrap(),
                e["senderId"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(senders, vec![("default", "111"), ("work", "222")]);

    let new = home.default_state();
    let after_old = snapshot(&old);
    let after_new = snapshot(&new);
    for (rel, bytes) in &before {
        if is_openclaws(rel) {
            assert_eq!(
                after_old.get(rel),
                Some(bytes),
                "{} was touched",
                rel.display()
            );
            assert!(!after_new.contains_key(rel), "{} was copied", rel.display());
            continue;
        }
        assert!(
            !after_old.contains_key(rel),
            "{} stayed behind",
            rel.display()
        );
        let moved = after_new
            .get(rel)
            .unwrap_or_else(|| panic!("{} did not arrive", rel.display()));
        if rel == Path::new("logs/audit.jsonl") {
            assert!(moved.starts_with(bytes), "the audit log only grows");
            let tail = String::from_utf8_lossy(&moved[bytes.len()..]).into_owned();
            assert!(tail.contains("\"action\":\"state.moved\""), "{tail}");
        } else {
            assert_eq!(moved, bytes, "{} changed on the way", rel.display());
        }
        assert_eq!(mode(&new.join(rel)), 0o600, "{}", rel.display());
    }
    assert_eq!(
        after_old.len(),
        OPENCLAW_FILES.len(),
        "{:?}",
        after_old.keys()
    );
    let leftovers: Vec<_> = files_under(&old)
        .into_iter()
        .map(|(p, _)| p)
        .filter(|p| p.to_string_lossy().ends_with(".lock"))
        .collect();
    assert!(leftovers.is_empty(), "lock files left: {leftovers:?}");
    for d in ["", "credentials", "devices", "identity", "logs"] {
        assert_eq!(mode(&new.join(d)), 0o700, "{d}");
    }
    assert!(!old.join("identity").exists(), "emptied directories go");
    assert!(old.join("credentials/oauth.json").exists());

    // The second start has nothing to do.
    let o = home.run(&["devices", "list", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!stderr(&o).contains("Moved"), "{}", stderr(&o));
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["paired"].as_array().unwrap().len(), 1, "{v}");
    assert_eq!(snapshot(&old), after_old);
    assert_eq!(snapshot(&new), after_new);
}

#[test]
fn openclaw_migrated_devices_are_restored_and_the_loss_is_named() {
    let home = Home::new();
    let old = earlier_clawpair(&home);
    // What `openclaw doctor` leaves: chat pairing files deleted (a named account's file kept),
    // device files renamed to *.migrated.
    // (OpenClaw leaves the deleted files' `.lock` sidecars behind.)
    for f in [
        "credentials/telegram-allowFrom.json",
        "credentials/telegram-pairing.json",
    ] {
        std::fs::remove_file(old.join(f)).unwrap();
        write(&old.join(format!("{f}.lock")), b"");
    }
    for f in ["paired.json", "pending.json"] {
        let from = old.join("devices").join(f);
        std::fs::rename(&from, old.join("devices").join(format!("{f}.migrated"))).unwrap();
    }
    let paired = std::fs::read(old.join("devices/paired.json.migrated")).unwrap();

    let o = home.run(&["devices", "list", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains(NOTICE), "{err}");
    assert!(
        err.contains(
            "Restored devices/pending.json, devices/paired.json from the *.migrated copies"
        ),
        "{err}"
    );
    assert!(err.contains("Could not be recovered: OpenClaw had already imported ClawPair's chat pairing files and deleted them"), "{err}");
    assert!(
        err.contains("run `clawpair import --from-openclaw ~/.openclaw`"),
        "{err}"
    );
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["paired"][0]["displayName"], "Pixel", "{v}");

    let new = home.default_state();
    assert_eq!(
        std::fs::read(new.join("devices/paired.json")).unwrap(),
        paired
    );
    assert!(!old.join("devices/paired.json.migrated").exists());
    assert!(!old
        .join("credentials/telegram-allowFrom.json.lock")
        .exists());
    assert!(!old.join("devices/pending.json.migrated").exists());
    assert!(new
        .join("credentials/telegram-work-allowFrom.json")
        .exists());
    assert_eq!(
        std::fs::read(old.join("state/openclaw.sqlite")).unwrap(),
        b"SQLite format 3\0 (stand-in)"
    );
    let audit = std::fs::read_to_string(new.join("logs/audit.jsonl")).unwrap();
    assert!(audit.contains("\"openclawMigrated\":true"), "{audit}");
}

#[test]
fn a_move_interrupted_half_way_is_finished_by_the_next_start() {
    let home = Home::new();
    let old = earlier_clawpair(&home);
    let before = snapshot(&old);
    let new = home.default_state();
    // As a crash leaves it: one file already renamed over, one copied across filesystems but
    // its source not yet removed, and clawpair.json (which goes last) still in the old place.
    for rel in ["credentials/telegram-allowFrom.json", "logs/clawpair.log.1"] {
        write(&new.join(rel), &std::fs::read(old.join(rel)).unwrap());
    }
    std::fs::remove_file(old.join("credentials/telegram-allowFrom.json")).unwrap();
    std::fs::set_permissions(&new, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();

    let o = home.run(&["allowlist", "list", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains(NOTICE), "{}", stderr(&o));
    assert!(!stderr(&o).contains("Left "), "{}", stderr(&o));
    let after_new = snapshot(&new);
    for (rel, bytes) in &before {
        if is_openclaws(rel) || rel == Path::new("logs/audit.jsonl") {
            continue;
        }
        assert_eq!(after_new.get(rel), Some(bytes), "{}", rel.display());
        assert!(!old.join(rel).exists(), "{} stayed behind", rel.display());
    }
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["entries"].as_array().unwrap().len(), 2, "{v}");
}

#[test]
fn a_file_the_new_directory_already_has_differently_is_left_and_named() {
    let home = Home::new();
    let old = earlier_clawpair(&home);
    let new = home.default_state();
    write(
        &new.join("credentials/telegram-offset.json"),
        b"{\"offset\":7}",
    );
    let o = home.run(&["allowlist", "list"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("Left ~/.openclaw/credentials/telegram-offset.json where it is"),
        "{}",
        stderr(&o)
    );
    assert_eq!(
        std::fs::read(old.join("credentials/telegram-offset.json")).unwrap(),
        b"{\"offset\":42}"
    );
    assert_eq!(
        std::fs::read(new.join("credentials/telegram-offset.json")).unwrap(),
        b"{\"offset\":7}"
    );
}

#[test]
fn a_running_earlier_gateway_stops_the_move_with_a_reason() {
    let home = Home::new();
    let old = earlier_clawpair(&home);
    write(
        &old.join("run/gateway.json"),
        format!(
            r#"{{"pid":{},"address":"127.0.0.1:1","startedAtMs":0}}"#,
            std::process::id()
        )
        .as_bytes(),
    );
    let before = snapshot(&old);
    let o = home.run(&["allowlist", "list"]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.contains("an earlier ClawPair gateway") && err.contains("still runs on ~/.openclaw"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert_eq!(snapshot(&old), before);
    assert!(!home.default_state().join("clawpair.json").exists());
}

#[test]
fn an_explicit_state_dir_never_moves_anything() {
    let home = Home::new();
    let old = earlier_clawpair(&home);
    let before = snapshot(&old);
    let mine = home.path().join("mine");
    let o = home
        .cmd(&["allowlist", "list"])
        .env("CLAWPAIR_STATE_DIR", &mine)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!stderr(&o).contains("Moved"), "{}", stderr(&o));
    assert_eq!(snapshot(&old), before);
    assert!(!home.default_state().exists());
}

#[test]
fn doctor_reports_openclaws_store_in_and_beside_the_state_dir_and_migrated_leftovers() {
    let home = Home::new();
    // A state directory OpenClaw shares: its store, and a device file it renamed.
    let shared = home.path().join("shared");
    let (device_id, _) = pair_a_device(&shared);
    std::fs::rename(
        shared.join("devices/paired.json"),
        shared.join("devices/paired.json.migrated"),
    )
    .unwrap();
    write(&shared.join("state/openclaw.sqlite"), b"stand-in");
    let run = |args: &[&str]| {
        home.cmd(args)
            .env("CLAWPAIR_STATE_DIR", &shared)
            .output()
            .unwrap()
    };
    let o = run(&["doctor"]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    let out = stdout(&o);
    assert!(
        out.contains(
            "/state/openclaw.sqlite is OpenClaw's store: OpenClaw 2026.9 uses this directory too"
        ),
        "{out}"
    );
    assert!(out.contains("clawpair import --from-openclaw"), "{out}");
    assert!(
        out.contains("holds paired.json.migrated: device files OpenClaw imported and renamed"),
        "{out}"
    );
    let o = run(&["doctor", "--fix"]);
    assert!(
        stdout(&o).contains("fixed") && stdout(&o).contains("restored devices/paired.json"),
        "{}",
        stdout(&o)
    );
    let o = run(&["devices", "list", "--json"]);
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["paired"][0]["deviceId"], device_id.as_str(), "{v}");

    // OpenClaw installed beside ClawPair's own directory: a note, not a problem.
    write(&home.openclaw().join("state/openclaw.sqlite"), b"stand-in");
    write(&home.openclaw().join("devices/paired.json.migrated"), b"{}");
    let o = home.run(&["doctor"]);
    assert!(o.status.success(), "{}", stdout(&o));
    let out = stdout(&o);
    assert!(
        out.contains("note   OpenClaw keeps its store beside ClawPair's, in ~/.openclaw/state/openclaw.sqlite"),
        "{out}"
    );
    assert!(
        out.contains("run `clawpair import --from-openclaw ~/.openclaw`"),
        "{out}"
    );
    assert!(
        out.contains("~/.openclaw/devices/ holds paired.json.migrated"),
        "{out}"
    );
}

/// As ssh does with `~/.ssh`: a state directory or `clawpair.json` that another user could
/// change is refused by every command, the gateway included, and the message says the fix.
#[test]
fn a_state_directory_or_settings_others_could_change_are_refused_with_the_fix() {
    use std::os::unix::fs::PermissionsExt;
    let st = common::State::new();
    st.ok(&["allowlist", "list"]);
    let chmod =
        |p: &Path, m: u32| std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap();
    let refused = |args: &[&str], want: &str| {
        let o = st.run(args);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {}", stderr(&o));
        let e = stderr(&o);
        assert!(
            e.contains("refusing to use") && e.contains(want),
            "{args:?}: {e}"
        );
    };
    chmod(st.path(), 0o775);
    refused(&["pairing", "list"], "chmod 700");
    refused(&["gateway", "--port", "0"], "chmod 700");
    chmod(st.path(), 0o700);
    chmod(&st.file("clawpair.json"), 0o664);
    refused(&["devices", "list"], "chmod 600");
    chmod(&st.file("clawpair.json"), 0o600);
    st.ok(&["pairing", "list"]);
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        std::os::unix::fs::chown(st.path(), Some(65534), None).unwrap();
        refused(&["pairing", "list"], "owned by uid 65534");
        std::os::unix::fs::chown(st.path(), Some(0), None).unwrap();
    }
    st.ok(&["pairing", "list"]);
}

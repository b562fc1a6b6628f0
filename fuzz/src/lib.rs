//! What the fuzz targets share: a scratch state directory (on tmpfs when there is one) that
//! each input starts afresh in, the fixed clock every target reads, and the challenge a
//! connect is checked against.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use clawpair_core::clock::{ManualClock, Millis};
use clawpair_core::store::StatePaths;

/// The time every target runs at: when OpenClaw's captured device connect (the seed
/// `first_frame/openclaw-device-setup-code`) was signed. Fixed, so signed seeds never go stale.
pub const NOW: Millis = 1_796_154_781_730;

/// The nonce of the gateway's `connect.challenge` the first-frame target answers.
pub const CHALLENGE_NONCE: &str = "3ef0d36e-5ac8-4c39-a7cd-7f2f65358cb2";

/// The channel whose DM pairing files the targets use.
pub const CHANNEL: &str = "telegram";

/// The key of the device the seeds and targets connect as (never a real device's).
pub const DEVICE_SEED: [u8; 32] = [7; 32];

/// A clock stopped at [`NOW`].
pub fn clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(NOW))
}

static ROOT: OnceLock<PathBuf> = OnceLock::new();

extern "C" fn remove_scratch() {
    if let Some(root) = ROOT.get() {
        let _ = fs::remove_dir_all(root);
    }
}

/// This process's scratch directory: under `$CLAWPAIR_FUZZ_SCRATCH`, else `/dev/shm` (the
/// store's fsyncs cost nothing there), else the temp directory. Removed when the process exits.
fn scratch_root() -> &'static Path {
    ROOT.get_or_init(|| {
        let base = std::env::var_os("CLAWPAIR_FUZZ_SCRATCH")
            .map(PathBuf::from)
            .or_else(|| Some(PathBuf::from("/dev/shm")).filter(|p| p.is_dir()))
            .unwrap_or_else(std::env::temp_dir);
        let root = base.join(format!("clawpair-fuzz-{}", std::process::id()));
        // SAFETY: registers a plain function to run at exit; nothing else is involved.
        unsafe { libc::atexit(remove_scratch) };
        root
    })
}

/// A state directory, empty (mode `0700`) each time it is asked for.
pub fn fresh_state() -> StatePaths {
    let root = scratch_root().join("state");
    match fs::remove_dir_all(&root) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => panic!("cannot empty the scratch directory {}: {e}", root.display()),
    }
    fs::create_dir_all(&root).expect("the scratch directory");
    fs::set_permissions(&root, fs::Permissions::from_mode(0o700)).expect("mode 0700");
    StatePaths::new(root)
}

/// Writes `bytes` as the state file at `path` (mode `0600`, parents `0700`), as another
/// process or a person with an editor would have left it.
pub fn plant(path: &Path, bytes: &[u8]) {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).expect("the file's directory");
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).expect("mode 0700");
    }
    fs::write(path, bytes).expect("the planted file");
    fs::set_permissions(path, fs::Permissions::from_mode(0o600)).expect("mode 0600");
}

/// Whether `path` was moved aside as corrupt: gone, and a `<name>.corrupt-<stamp>` beside it
/// holds exactly what was planted.
pub fn moved_aside_with(path: &Path, bytes: &[u8]) -> bool {
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        return false;
    };
    let prefix = format!("{name}.corrupt-");
    let Some(dir) = path.parent() else {
        return false;
    };
    !path.exists()
        && fs::read_dir(dir).into_iter().flatten().flatten().any(|e| {
            e.file_name()
                .to_str()
                .is_some_and(|n| n.starts_with(&prefix))
                && fs::read(e.path()).is_ok_and(|b| b == bytes)
        })
}

/// A fixed RNG, so a crash replays with the same codes and tokens.
pub fn rng() -> rand::rngs::StdRng {
    rand::SeedableRng::seed_from_u64(7)
}

/// A device asking to pair, as the gateway records one (read from JSON, the file's own form).
pub fn candidate() -> clawpair_core::pairing::device::PendingDevice {
    let id = clawpair_core::client::Identity::from_seed(DEVICE_SEED);
    serde_json::from_value(serde_json::json!({
        "requestId": "0b4bb9ab-5d1c-4a5f-9d0e-3c43b5a8e0f1",
        "deviceId": id.device_id(),
        "publicKey": id.public_key(),
        "displayName": "fuzz phone",
        "platform": "ios",
        "clientId": "openclaw-ios",
        "clientMode": "node",
        "role": "node",
        "scopes": [],
        "remoteIp": "192.168.1.20",
        "fingerprint": id.fingerprint(),
        "reason": "not-paired",
        "ts": NOW,
    }))
    .expect("a pending request")
}

/// Files under `root` that are not under `inside`: what a store wrote where it must not.
pub fn files_outside(root: &Path, inside: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(d) = dirs.pop() {
        for e in fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                dirs.push(p);
            } else if !p.starts_with(inside) {
                out.push(p);
            }
        }
    }
    out
}

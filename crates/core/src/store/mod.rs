//! The state directory on disk: where each file lives, and the stores that read and write them
//! (always through [`fs`]: atomic writes, sidecar locks, `0600`/`0700`).

pub mod audit;
pub mod devices;
pub mod dm;
pub mod fs;
pub mod identity;
pub mod legacy;
pub mod names;
pub mod openclaw;
pub mod runrec;

use std::path::{Path, PathBuf};

pub use fs::{StoreError, StoreResult};
pub use names::{AccountId, ChannelName, InvalidName, MAX_NAME_LEN};

/// Names ClawPair's state directory (when no `--state-dir` is given).
pub const STATE_DIR_ENV: &str = "CLAWPAIR_STATE_DIR";
/// The log of the long-running processes, in `logs/` (rotated as `clawpair.log.1` …).
pub const LOG_FILE: &str = "clawpair.log";

/// A path as a person would type it: `~/…` under the home directory.
pub fn shown_path(p: &Path) -> String {
    if let Some(home) = directories::BaseDirs::new().map(|b| b.home_dir().to_path_buf()) {
        if let Ok(rest) = p.strip_prefix(&home) {
            if rest.as_os_str().is_empty() {
                return "~".into();
            }
            return format!("~/{}", rest.display());
        }
    }
    p.display().to_string()
}

/// Paths of every file in the state directory. The files of a channel are built here and only
/// here, from a [`ChannelName`] and an [`AccountId`]: names that passed the rule.
#[derive(Debug, Clone)]
pub struct StatePaths {
    root: PathBuf,
}

impl StatePaths {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        StatePaths { root: root.into() }
    }
    pub fn root(&self) -> &Path {
        &self.root
    }
    pub fn settings(&self) -> PathBuf {
        self.root.join("clawpair.json")
    }
    /// The last settings ClawPair wrote successfully, kept for `doctor` to offer back when
    /// `clawpair.json` no longer parses.
    pub fn settings_last_good(&self) -> PathBuf {
        self.root.join("clawpair.json.last-good")
    }
    pub fn credentials_dir(&self) -> PathBuf {
        self.root.join("credentials")
    }
    /// `credentials/<channel>-pairing.json`.
    pub fn pairing_file(&self, channel: &ChannelName) -> PathBuf {
        self.credentials_dir()
            .join(format!("{channel}-pairing.json"))
    }
    /// `credentials/<channel>-allowFrom.json` for the default account, else
    /// `credentials/<channel>-<account>-allowFrom.json`.
    pub fn allow_file(&self, channel: &ChannelName, account: &AccountId) -> PathBuf {
        if account.is_default() {
            self.credentials_dir()
                .join(format!("{channel}-allowFrom.json"))
        } else {
            self.credentials_dir()
                .join(format!("{channel}-{account}-allowFrom.json"))
        }
    }
    /// `credentials/<channel>-default-allowFrom.json`: also read (and merged) for the default account.
    pub fn scoped_default_allow_file(&self, channel: &ChannelName) -> PathBuf {
        self.credentials_dir()
            .join(format!("{channel}-default-allowFrom.json"))
    }
    /// `credentials/<channel>-offset.json`: how far a polling channel has read its updates.
    pub fn channel_offset(&self, channel: &ChannelName) -> PathBuf {
        self.credentials_dir()
            .join(format!("{channel}-offset.json"))
    }
    pub fn devices_dir(&self) -> PathBuf {
        self.root.join("devices")
    }
    pub fn pending_devices(&self) -> PathBuf {
        self.devices_dir().join("pending.json")
    }
    pub fn paired_devices(&self) -> PathBuf {
        self.devices_dir().join("paired.json")
    }
    pub fn bootstrap(&self) -> PathBuf {
        self.devices_dir().join("bootstrap.json")
    }
    pub fn logs_dir(&self) -> PathBuf {
        self.root.join("logs")
    }
    pub fn audit_log(&self) -> PathBuf {
        self.logs_dir().join("audit.jsonl")
    }
    pub fn run_dir(&self) -> PathBuf {
        self.root.join("run")
    }
    pub fn gateway_record(&self) -> PathBuf {
        self.run_dir().join("gateway.json")
    }
    /// Held by the running gateway for as long as it runs (see [`crate::store::runrec`]).
    pub fn gateway_lock(&self) -> PathBuf {
        self.run_dir().join("gateway.lock")
    }
    /// The gateway's self-signed certificate and key (`gateway.tls.selfSigned`).
    pub fn tls_dir(&self) -> PathBuf {
        self.root.join("tls")
    }
    pub fn identity_dir(&self) -> PathBuf {
        self.root.join("identity")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allow_files_use_openclaw_names() {
        let p = StatePaths::new("/s");
        let tg = ChannelName::from_static("telegram");
        assert_eq!(
            p.allow_file(&tg, &AccountId::default_account()),
            Path::new("/s/credentials/telegram-allowFrom.json")
        );
        assert_eq!(
            p.allow_file(&tg, &AccountId::from_static("work")),
            Path::new("/s/credentials/telegram-work-allowFrom.json")
        );
        assert_eq!(
            p.scoped_default_allow_file(&tg),
            Path::new("/s/credentials/telegram-default-allowFrom.json")
        );
        assert_eq!(
            p.pairing_file(&tg),
            Path::new("/s/credentials/telegram-pairing.json")
        );
        assert_eq!(
            p.channel_offset(&tg),
            Path::new("/s/credentials/telegram-offset.json")
        );
    }
}

//! The state directory on disk: where each file lives, and the stores that read and write them
//! (always through [`fs`]: atomic writes, sidecar locks, `0600`/`0700`).

pub mod audit;
pub mod devices;
pub mod dm;
pub mod fs;
pub mod legacy;
pub mod openclaw;

use std::path::{Path, PathBuf};

pub use fs::{StoreError, StoreResult};

/// The longest channel or account name.
pub const MAX_NAME_LEN: usize = 64;

/// Why a channel or account name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind} name {shown:?}: use 1-64 characters from a-z, 0-9, '_' and '-', starting with a letter or digit")]
pub struct InvalidName {
    pub kind: &'static str,
    pub shown: String,
}

/// Accepts `[a-z0-9][a-z0-9_-]{0,63}`: nothing that could become a path trick.
pub fn check_name(kind: &'static str, name: &str) -> Result<(), InvalidName> {
    let b = name.as_bytes();
    let ok = !b.is_empty()
        && b.len() <= MAX_NAME_LEN
        && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'_' || *c == b'-');
    if ok {
        Ok(())
    } else {
        Err(InvalidName {
            kind,
            shown: crate::sanitize::sanitize(name),
        })
    }
}

/// Paths of every file in the state directory.
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
    pub fn credentials_dir(&self) -> PathBuf {
        self.root.join("credentials")
    }
    /// `credentials/<channel>-pairing.json`. The channel must have passed [`check_name`].
    pub fn pairing_file(&self, channel: &str) -> PathBuf {
        self.credentials_dir()
            .join(format!("{channel}-pairing.json"))
    }
    /// `credentials/<channel>-allowFrom.json` for the default account, else
    /// `credentials/<channel>-<account>-allowFrom.json`.
    pub fn allow_file(&self, channel: &str, account: &str) -> PathBuf {
        if account == crate::pairing::dm::DEFAULT_ACCOUNT {
            self.credentials_dir()
                .join(format!("{channel}-allowFrom.json"))
        } else {
            self.credentials_dir()
                .join(format!("{channel}-{account}-allowFrom.json"))
        }
    }
    /// `credentials/<channel>-default-allowFrom.json`: also read (and merged) for the default account.
    pub fn scoped_default_allow_file(&self, channel: &str) -> PathBuf {
        self.credentials_dir()
            .join(format!("{channel}-default-allowFrom.json"))
    }
    /// `credentials/<channel>-offset.json`: how far a polling channel has read its updates.
    pub fn channel_offset(&self, channel: &str) -> PathBuf {
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
    pub fn identity_dir(&self) -> PathBuf {
        self.root.join("identity")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_like_names_are_refused() {
        for bad in [
            "",
            "../x",
            "a/b",
            "Tele",
            "-x",
            "x.y",
            "a\0",
            &"a".repeat(65),
            "é",
        ] {
            assert!(
                check_name("channel", bad).is_err(),
                "{bad:?} should be refused"
            );
        }
        for good in ["telegram", "x", "a-b_c9", "9", &"a".repeat(64)] {
            assert!(check_name("channel", good).is_ok(), "{good:?} should pass");
        }
    }

    #[test]
    fn allow_files_use_openclaw_names() {
        let p = StatePaths::new("/s");
        assert_eq!(
            p.allow_file("telegram", "default"),
            Path::new("/s/credentials/telegram-allowFrom.json")
        );
        assert_eq!(
            p.allow_file("telegram", "work"),
            Path::new("/s/credentials/telegram-work-allowFrom.json")
        );
        assert_eq!(
            p.scoped_default_allow_file("telegram"),
            Path::new("/s/credentials/telegram-default-allowFrom.json")
        );
        assert_eq!(
            p.pairing_file("telegram"),
            Path::new("/s/credentials/telegram-pairing.json")
        );
    }
}

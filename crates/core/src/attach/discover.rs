//! Finding an OpenClaw installation on this computer: its state directory, its config
//! (JSON5), the gateway's address and the admin token it was given. Read only: nothing here
//! writes OpenClaw's files, and the token is read when connecting, never copied.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::config::openclaw_state_dir;

/// Why an OpenClaw installation could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DiscoverError {
    #[error("no OpenClaw installation here (no {0})")]
    NotInstalled(String),
    #[error("cannot read OpenClaw's config {path}: {reason}")]
    Unreadable { path: String, reason: String },
    #[error("OpenClaw's config {0} sets no gateway token (gateway.auth.token); type it in ClawPair's Settings")]
    NoToken(String),
}

/// An OpenClaw installation found on this computer.
#[derive(Clone, PartialEq, Eq)]
pub struct Installation {
    pub state_dir: PathBuf,
    pub config: PathBuf,
    /// Where its gateway listens, as ClawPair connects to it.
    pub url: String,
    /// `gateway.auth.token` from its config (or `$OPENCLAW_GATEWAY_TOKEN`), when it has one.
    pub token: Option<String>,
}

impl std::fmt::Debug for Installation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Installation")
            .field("state_dir", &self.state_dir)
            .field("url", &self.url)
            .field("token", &self.token.as_ref().map(|_| "<set>"))
            .finish()
    }
}

impl Installation {
    /// The token to connect with, or why there is none.
    pub fn token(&self) -> Result<&str, DiscoverError> {
        self.token
            .as_deref()
            .ok_or_else(|| DiscoverError::NoToken(self.config.display().to_string()))
    }
}

/// OpenClaw's installation in its default place (`$OPENCLAW_STATE_DIR`, else `~/.openclaw`).
pub fn find() -> Result<Installation, DiscoverError> {
    let dir =
        openclaw_state_dir().ok_or_else(|| DiscoverError::NotInstalled("home directory".into()))?;
    let config = std::env::var_os("OPENCLAW_CONFIG_PATH")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| dir.join("openclaw.json"));
    at(&dir, &config)
}

/// The installation whose state directory is `dir` and config `config`.
pub fn at(dir: &Path, config: &Path) -> Result<Installation, DiscoverError> {
    if !config.exists() {
        return Err(DiscoverError::NotInstalled(config.display().to_string()));
    }
    let unreadable = |reason: String| DiscoverError::Unreadable {
        path: config.display().to_string(),
        reason,
    };
    let text = std::fs::read_to_string(config).map_err(|e| unreadable(e.to_string()))?;
    let v: Value = json5::from_str(&text).map_err(|e| unreadable(e.to_string()))?;
    let env_token = std::env::var("OPENCLAW_GATEWAY_TOKEN")
        .ok()
        .filter(|t| !t.trim().is_empty());
    Ok(Installation {
        state_dir: dir.to_path_buf(),
        config: config.to_path_buf(),
        url: gateway_url(&v),
        token: config_token(&v).or(env_token),
    })
}

/// `ws://127.0.0.1:<gateway.port>` (wss when its TLS is on): ClawPair runs on the same
/// computer, so loopback reaches the gateway whatever it binds to.
pub fn gateway_url(config: &Value) -> String {
    let gw = &config["gateway"];
    let port = gw["port"]
        .as_u64()
        .filter(|p| (1..=65535).contains(p))
        .unwrap_or(18789);
    let tls = gw["tls"]["enabled"].as_bool().unwrap_or(false);
    format!("{}://127.0.0.1:{port}", if tls { "wss" } else { "ws" })
}

/// A plain-string `gateway.auth.token` (a secret reference is left to the owner to type).
fn config_token(config: &Value) -> Option<String> {
    config["gateway"]["auth"]["token"]
        .as_str()
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(String::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gateway_and_its_token_come_from_openclaws_json5_config() {
        let tmp = tempfile::tempdir().unwrap();
        let config = tmp.path().join("openclaw.json");
        std::fs::write(
            &config,
            "// OpenClaw writes JSON5\n{ gateway: { port: 18999, bind: 'lan', auth: { mode: 'token', token: 'tok-123', }, }, }",
        )
        .unwrap();
        let i = at(tmp.path(), &config).unwrap();
        assert_eq!(i.url, "ws://127.0.0.1:18999");
        assert_eq!(i.token().unwrap(), "tok-123");
        assert!(
            !format!("{i:?}").contains("tok-123"),
            "the token is never printed"
        );

        std::fs::write(
            &config,
            r#"{"gateway":{"auth":{"token":{"source":"env","id":"X"}},"tls":{"enabled":true}}}"#,
        )
        .unwrap();
        let i = at(tmp.path(), &config).unwrap();
        assert_eq!(i.url, "wss://127.0.0.1:18789");
        if std::env::var_os("OPENCLAW_GATEWAY_TOKEN").is_none() {
            assert!(matches!(i.token(), Err(DiscoverError::NoToken(_))));
        }
        std::fs::write(&config, "{ not json").unwrap();
        assert!(matches!(
            at(tmp.path(), &config),
            Err(DiscoverError::Unreadable { .. })
        ));
        assert!(matches!(
            at(tmp.path(), &tmp.path().join("none.json")),
            Err(DiscoverError::NotInstalled(_))
        ));
    }
}

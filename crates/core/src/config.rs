//! Settings (`clawpair.json`) with their defaults, and where the state directory is.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::clock::{Clock, Millis};
use crate::pairing::dm::{DmLimits, DmPolicy};
use crate::store::fs::{self as sfs, StoreError};
use crate::store::StatePaths;

pub mod channels;
mod patch;
pub use patch::SettingsPatch;

pub const DEFAULT_PORT: u16 = 18789;
pub const DEFAULT_BIND: &str = "127.0.0.1";
pub use crate::store::{shown_path, STATE_DIR_ENV};
/// Names OpenClaw's state directory. ClawPair only reads it: to find an OpenClaw installation
/// and to move an earlier ClawPair's state out of it.
pub const OPENCLAW_STATE_DIR_ENV: &str = "OPENCLAW_STATE_DIR";

/// Why no state directory could be settled on.
#[derive(Debug, thiserror::Error)]
pub enum StateDirError {
    #[error("cannot find your home directory; set {STATE_DIR_ENV} or pass --state-dir")]
    NoHome,
    #[error(transparent)]
    Move(#[from] crate::store::legacy::MoveError),
}

/// Where the state directory came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateDirSource {
    Flag,
    Env,
    Default,
}

/// ClawPair's own default directory: the platform's data directory for the app
/// (`~/.local/share/clawpair` on Linux, honouring `$XDG_DATA_HOME`). Never `~/.openclaw`,
/// which OpenClaw 2026.9 migrates and empties.
pub fn default_state_dir() -> Option<PathBuf> {
    directories::ProjectDirs::from("dev", "clawpair", "clawpair")
        .map(|p| p.data_dir().to_path_buf())
}

/// OpenClaw's state directory: `$OPENCLAW_STATE_DIR` (non-empty), else `~/.openclaw`. Read,
/// never written by the gateway.
pub fn openclaw_state_dir() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os(OPENCLAW_STATE_DIR_ENV).filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(p));
    }
    directories::BaseDirs::new().map(|b| b.home_dir().join(".openclaw"))
}

/// The precedence rule, on its own: the flag, else the environment's value (non-empty), else
/// the default directory.
pub fn choose_state_dir(
    flag: Option<&Path>,
    env: Option<std::ffi::OsString>,
    default: Option<PathBuf>,
) -> Result<(PathBuf, StateDirSource), StateDirError> {
    if let Some(p) = flag {
        return Ok((p.to_path_buf(), StateDirSource::Flag));
    }
    if let Some(p) = env.filter(|v| !v.is_empty()) {
        return Ok((PathBuf::from(p), StateDirSource::Env));
    }
    default
        .map(|d| (d, StateDirSource::Default))
        .ok_or(StateDirError::NoHome)
}

/// The state directory: `--state-dir`, else `$CLAWPAIR_STATE_DIR`, else [`default_state_dir`].
///
/// This is the one place it is settled, so the CLI, the headless gateway and the app all get
/// the same answer. With the default directory it first moves an earlier ClawPair's state out
/// of OpenClaw's directory ([`crate::store::legacy`]), and says so on stderr.
pub fn resolve_state_dir(flag: Option<&Path>) -> Result<PathBuf, StateDirError> {
    let (dir, source) =
        choose_state_dir(flag, std::env::var_os(STATE_DIR_ENV), default_state_dir())?;
    if source == StateDirSource::Default {
        if let Some(legacy) = openclaw_state_dir() {
            let moved = crate::store::legacy::move_earlier_state(
                &legacy,
                &dir,
                &crate::clock::SystemClock,
            )?;
            if let Some(report) = moved {
                for line in report.notice() {
                    eprintln!("{line}");
                }
            }
        }
    }
    Ok(dir)
}

fn yes() -> bool {
    true
}

#[derive(Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct AuthSettings {
    /// The admin token: full operator rights on the gateway. Secret.
    #[serde(default)]
    pub token: String,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl fmt::Debug for AuthSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AuthSettings { token: <hidden> }")
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RateLimitSettings {
    pub max_failures: u32,
    pub window_seconds: u64,
    pub lockout_seconds: u64,
    pub exempt_loopback: bool,
}

impl Default for RateLimitSettings {
    fn default() -> Self {
        RateLimitSettings {
            max_failures: 10,
            window_seconds: 60,
            lockout_seconds: 300,
            exempt_loopback: true,
        }
    }
}

/// `gateway.tls`: the gateway serves `wss://` itself, with a certificate from files, or one it
/// generates once and keeps in the state directory (`tls/cert.pem`, `tls/key.pem`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
pub struct TlsSettings {
    /// A PEM certificate chain, leaf first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cert_path: Option<String>,
    /// The PEM private key of that certificate (PKCS#8, PKCS#1 or SEC1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_path: Option<String>,
    /// Generate a self-signed certificate on first start and keep it.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub self_signed: bool,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl TlsSettings {
    pub fn enabled(&self) -> bool {
        self.self_signed || self.cert_path.is_some() || self.key_path.is_some()
    }

    /// One-line reasons these settings cannot be used.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        let blank = |p: &Option<String>| p.as_deref().is_some_and(|p| p.trim().is_empty());
        if blank(&self.cert_path) || blank(&self.key_path) {
            out.push("gateway.tls.certPath and gateway.tls.keyPath must not be empty".into());
        }
        match (&self.cert_path, &self.key_path, self.self_signed) {
            (Some(_), Some(_), true) => out.push(
                "gateway.tls: give either certPath and keyPath, or selfSigned: true, not both"
                    .into(),
            ),
            (Some(_), None, _) | (None, Some(_), _) => out.push(
                "gateway.tls: certPath and keyPath go together (or use selfSigned: true)".into(),
            ),
            _ => {}
        }
        out
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct GatewaySettings {
    pub bind: String,
    pub port: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_url: Option<String>,
    pub auth: AuthSettings,
    pub allowed_origins: Vec<String>,
    pub rate_limit: RateLimitSettings,
    /// Reverse proxies and tunnels (addresses or CIDR networks) whose `Forwarded` /
    /// `X-Forwarded-For` headers name the client. Headers from anyone else are ignored.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub trusted_proxies: Vec<String>,
    /// Built-in TLS (`wss://`); off when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsSettings>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl GatewaySettings {
    /// The TLS settings when TLS is on.
    pub fn tls_on(&self) -> Option<&TlsSettings> {
        self.tls.as_ref().filter(|t| t.enabled())
    }
}

impl Default for GatewaySettings {
    fn default() -> Self {
        GatewaySettings {
            bind: DEFAULT_BIND.into(),
            port: DEFAULT_PORT,
            public_url: None,
            auth: AuthSettings::default(),
            allowed_origins: Vec::new(),
            rate_limit: RateLimitSettings::default(),
            trusted_proxies: Vec::new(),
            tls: None,
            extra: Map::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct PairingSettings {
    pub ttl_minutes: u64,
    pub max_pending: usize,
}

impl Default for PairingSettings {
    fn default() -> Self {
        PairingSettings {
            ttl_minutes: 60,
            max_pending: 3,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct DeviceSettings {
    pub pending_ttl_minutes: u64,
    pub setup_code_ttl_minutes: u64,
    pub max_pending: usize,
    /// A paired device not seen for this many days is flagged as stale (off when absent).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stale_after_days: Option<u64>,
    /// With `staleAfterDays`, stale devices are removed (their tokens stop working).
    pub expire_stale: bool,
}

impl Default for DeviceSettings {
    fn default() -> Self {
        DeviceSettings {
            pending_ttl_minutes: 5,
            setup_code_ttl_minutes: 10,
            max_pending: 10,
            stale_after_days: None,
            expire_stale: false,
        }
    }
}

#[derive(Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
pub struct ChannelSettings {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dm_policy: Option<DmPolicy>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub allow_from: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub owners: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Telegram's bot token. Secret: never printed or logged.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bot_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_base: Option<String>,
    /// How long one Telegram long poll (`getUpdates`) may wait for news, in seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub poll_timeout_seconds: Option<u64>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl fmt::Debug for ChannelSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChannelSettings")
            .field("dm_policy", &self.dm_policy)
            .field("allow_from", &self.allow_from)
            .field("owners", &self.owners)
            .field("enabled", &self.enabled)
            .field("bot_token", &self.bot_token.as_ref().map(|_| "<hidden>"))
            .field("api_base", &self.api_base)
            .field("poll_timeout_seconds", &self.poll_timeout_seconds)
            .finish()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct UiSettings {
    pub start_at_login: bool,
    #[serde(default = "yes")]
    pub notifications: bool,
    /// New DM and device requests are dropped while paused.
    pub paused: bool,
    pub show_guide: bool,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Default for UiSettings {
    fn default() -> Self {
        UiSettings {
            start_at_login: false,
            notifications: true,
            paused: false,
            show_guide: false,
            extra: Map::new(),
        }
    }
}

/// Companion mode: attach to an OpenClaw gateway instead of running ClawPair's own.
#[derive(Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
pub struct AttachSettings {
    pub enabled: bool,
    /// The gateway's URL; absent: the one OpenClaw's config on this computer names.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// A token typed by the owner; absent: read from OpenClaw's config at each connect
    /// (never copied here).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// The SHA-256 of a `wss://` gateway's certificate, pinned (as OpenClaw's own
    /// `gateway.remote.tlsFingerprint`); required for a gateway not on loopback.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_fingerprint: Option<String>,
    /// More gateways to be the approval desk of at the same time (other computers', or a
    /// second OpenClaw here), each with its own token.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub gateways: Vec<AttachGateway>,
    /// Attached, ClawPair's own gateway keeps running too: its requests join the same queue.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub own_gateway: bool,
}

impl AttachSettings {
    /// Whether ClawPair's own gateway runs: not attached, or attached with it kept on.
    pub fn own_gateway_runs(&self) -> bool {
        !self.enabled || self.own_gateway
    }
}

impl fmt::Debug for AttachSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AttachSettings")
            .field("enabled", &self.enabled)
            .field("url", &self.url)
            .field("token", &self.token.as_ref().map(|_| "<set>"))
            .field("tls_fingerprint", &self.tls_fingerprint)
            .field("gateways", &self.gateways)
            .field("own_gateway", &self.own_gateway)
            .finish()
    }
}

/// One more gateway ClawPair is attached to (`attach.gateways`).
#[derive(Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
pub struct AttachGateway {
    pub url: String,
    /// Its admin token (`0600` with the rest of the settings; never printed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// The SHA-256 of its certificate, for `wss://`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_fingerprint: Option<String>,
    /// The owner's name for it ("home server"); absent: its host and port.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl fmt::Debug for AttachGateway {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AttachGateway")
            .field("url", &self.url)
            .field("token", &self.token.as_ref().map(|_| "<set>"))
            .field("tls_fingerprint", &self.tls_fingerprint)
            .field("label", &self.label)
            .finish()
    }
}

/// Everything in `clawpair.json`. Unknown keys are kept as they are.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
pub struct Settings {
    pub gateway: GatewaySettings,
    pub pairing: PairingSettings,
    pub devices: DeviceSettings,
    pub channels: BTreeMap<String, ChannelSettings>,
    pub ui: UiSettings,
    pub attach: AttachSettings,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Settings {
    pub fn dm_limits(&self) -> DmLimits {
        DmLimits {
            ttl_ms: minutes(self.pairing.ttl_minutes),
            max_pending: self.pairing.max_pending,
        }
    }
    pub fn device_pending_ttl_ms(&self) -> Millis {
        minutes(self.devices.pending_ttl_minutes)
    }
    pub fn setup_code_ttl_ms(&self) -> Millis {
        minutes(self.devices.setup_code_ttl_minutes)
    }
    /// Where the gateway listens by these settings, when `gateway.bind` is an address.
    pub fn listen_addr(&self) -> Option<std::net::SocketAddr> {
        crate::net::bind_ip(self.gateway.bind.trim())
            .map(|ip| std::net::SocketAddr::new(ip, self.gateway.port))
    }
    /// How long a paired device may go unseen before it is stale, when that is on.
    pub fn stale_after_ms(&self) -> Option<Millis> {
        self.devices
            .stale_after_days
            .map(|d| minutes(d.saturating_mul(24 * 60)))
    }
    pub fn channel(&self, name: &str) -> Option<&ChannelSettings> {
        self.channels.get(name)
    }
    pub fn dm_policy(&self, channel: &str) -> DmPolicy {
        self.channel(channel)
            .and_then(|c| c.dm_policy)
            .unwrap_or_default()
    }

    /// Problems that make these settings unusable, as one-line reasons.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.gateway.bind.trim().is_empty() {
            out.push("Listen on is empty: give an address (127.0.0.1 for this computer only, 0.0.0.0 for the local network)".to_string());
        }
        if self.pairing.ttl_minutes == 0 {
            out.push("A chat code's lifetime must be at least 1 minute".into());
        }
        if self.pairing.max_pending == 0 {
            out.push("Pending per account must be at least 1".into());
        }
        if self.devices.pending_ttl_minutes == 0 || self.devices.setup_code_ttl_minutes == 0 {
            out.push(
                "A device request's and a setup code's lifetimes must be at least 1 minute".into(),
            );
        }
        if self.devices.max_pending == 0 {
            out.push(
                "At least 1 device request must be allowed to wait (devices.maxPending)".into(),
            );
        }
        if self
            .devices
            .stale_after_days
            .is_some_and(|d| !(1..=3650).contains(&d))
        {
            out.push("Devices not seen for a while are flagged after 1 to 3650 days".into());
        }
        if self.devices.expire_stale && self.devices.stale_after_days.is_none() {
            out.push("Removing devices not seen for a while needs the number of days after which they are flagged".into());
        }
        for e in &self.gateway.trusted_proxies {
            if let Err(e) = crate::net::Cidr::parse(e) {
                out.push(format!("gateway.trustedProxies: {e}"));
            }
        }
        if let Some(t) = &self.gateway.tls {
            out.extend(t.problems());
        }
        if let Some(u) = &self.gateway.public_url {
            if let Err(e) = crate::pairing::setup::check_url(u) {
                out.push(format!("Public URL: {e}"));
            }
        }
        for name in self.channels.keys() {
            if let Err(e) = crate::store::ChannelName::parse(name) {
                out.push(format!("channels: {e}"));
            }
        }
        if let Some(tg) = self.channel(channels::telegram::CHANNEL) {
            out.extend(channels::telegram::problems(tg));
        }
        out
    }
}

fn minutes(m: u64) -> Millis {
    (m.min(10_000_000) as Millis) * 60_000
}

/// Loads `clawpair.json`, writing it with defaults and a fresh admin token on first run (under
/// the file's lock, so two processes starting together agree on one token). Returns the settings
/// and whether this run created the file.
pub fn load_or_init(paths: &StatePaths, clock: &dyn Clock) -> Result<(Settings, bool), StoreError> {
    sfs::ensure_dir(paths.root())?;
    let path = paths.settings();
    // Settings decide who gets in; nobody else may be able to change them.
    sfs::check_trusted(paths.root())?;
    sfs::check_trusted(&path)?;
    if path.exists() {
        let s: Settings = sfs::read_json(&path, clock)?;
        if !s.gateway.auth.token.is_empty() {
            keep_last_good(paths)?;
            return Ok((s, false));
        }
    }
    let created = !path.exists();
    let s = sfs::update_json(&path, clock, |s: &mut Settings| {
        if s.gateway.auth.token.is_empty() {
            s.gateway.auth.token = crate::pairing::token::new_token(&mut rand::rngs::OsRng);
        }
        if created {
            s.ui.show_guide = true;
        }
        Ok::<_, StoreError>(s.clone())
    })?;
    keep_last_good(paths)?;
    Ok((s, created))
}

/// Copies `clawpair.json`, which just parsed, to `clawpair.json.last-good` (`0600`) when that
/// holds something else: the last settings ClawPair read or wrote whole, for `doctor` to offer
/// back after an edit breaks the file.
fn keep_last_good(paths: &StatePaths) -> Result<(), StoreError> {
    let Some(now) = sfs::read_bytes(&paths.settings())? else {
        return Ok(());
    };
    if serde_json::from_slice::<Settings>(&now).is_err() {
        return Ok(());
    }
    let kept = paths.settings_last_good();
    if sfs::read_bytes(&kept)?.as_deref() != Some(now.as_slice()) {
        sfs::write_atomic(&kept, &now)?;
    }
    Ok(())
}

/// The last settings ClawPair wrote, when `clawpair.json` no longer parses.
#[derive(Debug, Clone)]
pub struct LastGood {
    pub path: PathBuf,
    /// When they were kept, in local time (`2026-12-07 09:41`), if the file system says.
    pub when: Option<String>,
    bytes: Vec<u8>,
}

/// The settings kept in `clawpair.json.last-good`, if they are there and parse.
pub fn last_good(paths: &StatePaths) -> Option<LastGood> {
    let path = paths.settings_last_good();
    let bytes = sfs::read_bytes(&path).ok().flatten()?;
    serde_json::from_slice::<Settings>(&bytes).ok()?;
    let when = std::fs::metadata(&path)
        .and_then(|m| m.modified())
        .ok()
        .map(|t| {
            chrono::DateTime::<chrono::Local>::from(t)
                .format("%Y-%m-%d %H:%M")
                .to_string()
        });
    Some(LastGood { path, when, bytes })
}

/// Puts `last` back as `clawpair.json`, keeping the file it replaces as
/// `clawpair.json.invalid-<time>`; returns that path.
pub fn restore_last_good(
    paths: &StatePaths,
    last: &LastGood,
    clock: &dyn Clock,
) -> Result<PathBuf, String> {
    let file = paths.settings();
    let _lock = sfs::FileLock::acquire(&file).map_err(|e| e.to_string())?;
    let stamp = crate::clock::file_stamp(clock.now_ms());
    let aside = file.with_file_name(format!("clawpair.json.invalid-{stamp}"));
    std::fs::rename(&file, &aside)
        .map_err(|e| format!("cannot keep {} aside: {e}", file.display()))?;
    sfs::write_atomic(&file, &last.bytes).map_err(|e| e.to_string())?;
    Ok(aside)
}

/// Reads `clawpair.json` without creating it (for `doctor` and read-only tools).
pub fn read(paths: &StatePaths, clock: &dyn Clock) -> Result<Settings, StoreError> {
    sfs::read_json(&paths.settings(), clock)
}

/// Edits `clawpair.json` under its lock, refusing results that do not validate.
pub fn update<R>(
    paths: &StatePaths,
    clock: &dyn Clock,
    change: impl FnOnce(&mut Settings) -> Result<R, String>,
) -> Result<R, String> {
    let r: Result<R, SettingsUpdateError> =
        sfs::update_json(&paths.settings(), clock, |s: &mut Settings| {
            let r = change(s)?;
            let problems = s.problems();
            if problems.is_empty() {
                Ok(r)
            } else {
                Err(SettingsUpdateError(problems.join("; ")))
            }
        });
    let r = r.map_err(|e| e.0)?;
    keep_last_good(paths).map_err(|e| e.to_string())?;
    Ok(r)
}

struct SettingsUpdateError(String);
impl From<StoreError> for SettingsUpdateError {
    fn from(e: StoreError) -> Self {
        SettingsUpdateError(e.to_string())
    }
}
impl From<String> for SettingsUpdateError {
    fn from(e: String) -> Self {
        SettingsUpdateError(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::SystemClock;

    #[test]
    fn first_run_writes_defaults_with_a_random_admin_token() {
        let tmp = tempfile::tempdir().unwrap();
        let paths = StatePaths::new(tmp.path().join("state"));
        let (s, created) = load_or_init(&paths, &SystemClock).unwrap();
        assert!(created);
        assert_eq!(s.gateway.port, DEFAULT_PORT);
        assert_eq!(s.gateway.bind, "127.0.0.1");
        assert_eq!(s.gateway.auth.token.len(), 43);
        assert_eq!(s.pairing.max_pending, 3);
        assert!(s.gateway.rate_limit.exempt_loopback);
        let (again, created) = load_or_init(&paths, &SystemClock).unwrap();
        assert!(!created);
        assert_eq!(again.gateway.auth.token, s.gateway.auth.token);
        assert_eq!(sfs::mode_of(&paths.settings()).unwrap(), 0o600);
        assert_eq!(sfs::mode_of(paths.root()).unwrap(), 0o700);
    }

    #[test]
    fn state_dir_precedence_is_flag_then_env_then_default() {
        let d = Some(PathBuf::from("/home/u/.local/share/clawpair"));
        let (p, src) =
            choose_state_dir(Some(Path::new("/f")), Some("/e".into()), d.clone()).unwrap();
        assert_eq!((p.as_path(), src), (Path::new("/f"), StateDirSource::Flag));
        let (p, src) = choose_state_dir(None, Some("/e".into()), d.clone()).unwrap();
        assert_eq!((p.as_path(), src), (Path::new("/e"), StateDirSource::Env));
        let (p, src) = choose_state_dir(None, Some("".into()), d.clone()).unwrap();
        assert_eq!(
            (p.as_path(), src),
            (
                Path::new("/home/u/.local/share/clawpair"),
                StateDirSource::Default
            )
        );
        assert!(matches!(
            choose_state_dir(None, None, None),
            Err(StateDirError::NoHome)
        ));
    }

    #[test]
    fn debug_output_never_shows_secrets() {
        let mut s = Settings::default();
        s.gateway.auth.token = "very-secret-admin".into();
        s.attach.token = Some("typed-openclaw-secret".into());
        s.channels.insert(
            "telegram".into(),
            ChannelSettings {
                bot_token: Some("123:bot-secret".into()),
                ..Default::default()
            },
        );
        let shown = format!("{s:?}");
        assert!(
            !shown.contains("very-secret-admin")
                && !shown.contains("bot-secret")
                && !shown.contains("typed-openclaw-secret"),
            "{shown}"
        );
    }

    #[test]
    fn unknown_keys_survive_a_rewrite_and_bad_values_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let paths = StatePaths::new(tmp.path());
        std::fs::write(
            paths.settings(),
            r#"{"gateway":{"port":1234,"future":1},"custom":{"a":2}}"#,
        )
        .unwrap();
        load_or_init(&paths, &SystemClock).unwrap();
        let v: Value = serde_json::from_slice(&std::fs::read(paths.settings()).unwrap()).unwrap();
        assert_eq!(v["gateway"]["future"], 1);
        assert_eq!(v["custom"]["a"], 2);
        assert_eq!(v["gateway"]["port"], 1234);
        let err = update(&paths, &SystemClock, |s| {
            s.pairing.max_pending = 0;
            Ok(())
        })
        .unwrap_err();
        assert!(err.contains("Pending per account"), "{err}");
        let err = update(&paths, &SystemClock, |s| {
            s.gateway.trusted_proxies = vec!["127.0.0.1".into(), "10.0.0.0/33".into()];
            Ok(())
        })
        .unwrap_err();
        assert!(
            err.contains("gateway.trustedProxies") && err.contains("10.0.0.0/33"),
            "{err}"
        );
        for (tls, want) in [
            (r#"{"certPath":"/c.pem"}"#, "go together"),
            (
                r#"{"certPath":"/c","keyPath":"/k","selfSigned":true}"#,
                "not both",
            ),
            (r#"{"certPath":" ","keyPath":"/k"}"#, "must not be empty"),
        ] {
            let t: TlsSettings = serde_json::from_str(tls).unwrap();
            let err = update(&paths, &SystemClock, |s| {
                s.gateway.tls = Some(t);
                Ok(())
            })
            .unwrap_err();
            assert!(err.contains(want), "{tls}: {err}");
        }
        assert_eq!(read(&paths, &SystemClock).unwrap().pairing.max_pending, 3);
    }
}

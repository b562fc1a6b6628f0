//! A protocol client: what a phone, the CLI or a channel bridge does to talk to a gateway.
//! Used by `clawpair node`, by the CLI when a gateway runs, by the tests and the benchmarks.

use std::collections::VecDeque;
use std::path::Path;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ed25519_dalek::{Signer, SigningKey};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Map, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::pairing::device::{device_id_for, fingerprint_for, signed_string_v3, SignedFields};
use crate::protocol::ErrorCode;
use crate::rpc::RpcError;
use crate::store::identity::HIDDEN;
pub use crate::store::identity::{IdentityFile, StoredToken};

/// An Ed25519 device identity.
#[derive(Clone)]
pub struct Identity {
    key: SigningKey,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Identity({})", self.device_id())
    }
}

impl Identity {
    pub fn generate() -> Identity {
        Identity {
            key: SigningKey::generate(&mut rand::rngs::OsRng),
        }
    }
    pub fn from_seed(seed: [u8; 32]) -> Identity {
        Identity {
            key: SigningKey::from_bytes(&seed),
        }
    }
    pub fn public_key(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.key.verifying_key().as_bytes())
    }
    pub fn device_id(&self) -> String {
        device_id_for(self.key.verifying_key().as_bytes())
    }
    pub fn fingerprint(&self) -> String {
        fingerprint_for(self.key.verifying_key().as_bytes())
    }
    pub fn sign(&self, fields: &SignedFields) -> String {
        URL_SAFE_NO_PAD.encode(
            self.key
                .sign(signed_string_v3(fields).as_bytes())
                .to_bytes(),
        )
    }
    pub fn seed(&self) -> [u8; 32] {
        self.key.to_bytes()
    }
}

impl IdentityFile {
    pub fn new(id: &Identity, now: i64) -> Self {
        IdentityFile {
            version: 1,
            device_id: id.device_id(),
            public_key: id.public_key(),
            private_key: URL_SAFE_NO_PAD.encode(id.seed()),
            created_at_ms: now,
            gateway_url: None,
            gateway_tls_fingerprint: None,
            tokens: Default::default(),
        }
    }
    pub fn identity(&self) -> Result<Identity, String> {
        let seed: [u8; 32] = URL_SAFE_NO_PAD
            .decode(self.private_key.trim())
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or("the identity file's private key is not 32 bytes of base64url")?;
        let id = Identity::from_seed(seed);
        if id.device_id() != self.device_id {
            return Err("the identity file's device id does not match its key".into());
        }
        Ok(id)
    }
    /// Loads the file, or `None` when it does not exist.
    pub fn load(path: &Path) -> Result<Option<IdentityFile>, String> {
        match crate::store::fs::read_bytes(path) {
            Ok(None) => Ok(None),
            Ok(Some(b)) => serde_json::from_slice(&b)
                .map(Some)
                .map_err(|e| format!("{} does not parse: {e}", path.display())),
            Err(e) => Err(e.to_string()),
        }
    }
    pub fn save(&self, path: &Path) -> Result<(), String> {
        crate::store::fs::write_json(path, self).map_err(|e| e.to_string())
    }
}

/// Which credential `connect` carries. Its `Debug` names the kind, never the token.
#[derive(Clone)]
pub enum Auth {
    None,
    Token(String),
    DeviceToken(String),
    BootstrapToken(String),
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self {
            Auth::None => return f.write_str("None"),
            Auth::Token(_) => "Token",
            Auth::DeviceToken(_) => "DeviceToken",
            Auth::BootstrapToken(_) => "BootstrapToken",
        };
        f.debug_tuple(kind).field(&HIDDEN).finish()
    }
}

/// Everything `connect` sends. Its `Debug` hides the credential (see [`Auth`]).
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    pub url: String,
    pub client_id: String,
    pub client_mode: String,
    pub platform: String,
    pub device_family: String,
    pub display_name: Option<String>,
    pub role: String,
    pub scopes: Vec<String>,
    pub auth: Auth,
    pub identity: Option<Identity>,
    pub wait_for_approval: bool,
    /// Sent as the `Origin` header (browsers do; native clients do not).
    pub origin: Option<String>,
    /// For `wss://`: accept only the certificate with this SHA-256 (a setup code's
    /// `tlsFingerprint`) instead of asking the system's certificate authorities.
    pub tls_pin: Option<String>,
    pub timeout: Duration,
    /// Client capabilities declared in `connect` (`caps`): an approval desk says which
    /// approvals it takes (`exec-approvals`) so OpenClaw routes them to it.
    pub caps: Vec<String>,
}

impl ConnectOptions {
    /// An operator with the admin token (the CLI, the tray, a bridge).
    pub fn operator(url: &str, token: &str, client_id: &str) -> Self {
        ConnectOptions {
            url: url.into(),
            client_id: client_id.into(),
            client_mode: "cli".into(),
            platform: std::env::consts::OS.into(),
            device_family: String::new(),
            display_name: None,
            role: "operator".into(),
            scopes: vec![crate::pairing::device::SCOPE_ADMIN.into()],
            auth: Auth::Token(token.into()),
            identity: None,
            wait_for_approval: false,
            origin: None,
            tls_pin: None,
            timeout: Duration::from_secs(10),
            caps: Vec::new(),
        }
    }
    /// A node device with an identity. The client id is OpenClaw's generic `gateway-client`
    /// (its gateway accepts only ids from its own list, and this is a generic client, not
    /// OpenClaw's node host), in mode `node`.
    pub fn node(url: &str, identity: Identity, auth: Auth) -> Self {
        ConnectOptions {
            url: url.into(),
            client_id: "gateway-client".into(),
            client_mode: "node".into(),
            platform: std::env::consts::OS.into(),
            device_family: "computer".into(),
            display_name: None,
            role: "node".into(),
            scopes: vec![],
            auth,
            identity: Some(identity),
            wait_for_approval: false,
            origin: None,
            tls_pin: None,
            timeout: Duration::from_secs(10),
            caps: Vec::new(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot reach the gateway at {url}: {reason}")]
    Connect { url: String, reason: String },
    #[error("{0}")]
    Rejected(RpcError),
    #[error("the gateway closed the connection{}", .0.as_ref().map(|r| format!(" ({r})")).unwrap_or_default())]
    Closed(Option<String>),
    #[error("protocol error: {0}")]
    Protocol(String),
    #[error("timed out waiting for the gateway")]
    Timeout,
    #[error("the gateway at {url} presented a certificate other than the pinned one (SHA-256 {expected}); it is not the gateway that issued the setup code, or its certificate was replaced: ask for a new setup code")]
    CertificateMismatch { url: String, expected: String },
}

impl ClientError {
    /// The error code when the gateway answered with one.
    pub fn error_code(&self) -> Option<&ErrorCode> {
        match self {
            ClientError::Rejected(e) => Some(&e.code),
            _ => None,
        }
    }
    /// The same, as its wire string.
    pub fn code(&self) -> Option<&str> {
        self.error_code().map(ErrorCode::as_str)
    }
}

pub type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A connected, authenticated client.
pub struct Client {
    ws: Socket,
    next_id: u64,
    events: VecDeque<(String, Value)>,
    pub hello: Value,
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl Client {
    /// Connects and authenticates; events that arrive first are passed to `on_event`
    /// (e.g. `device.pair.pending` while waiting for approval).
    pub async fn connect(
        opts: &ConnectOptions,
        on_event: impl FnMut(&str, &Value),
    ) -> Result<Client, ClientError> {
        Self::connect_on(opts, None, on_event).await
    }

    /// The same over a TCP connection already made to the gateway, for a caller that checks
    /// where it leads before anything is sent (companion mode on loopback).
    pub async fn connect_over(
        opts: &ConnectOptions,
        stream: TcpStream,
        on_event: impl FnMut(&str, &Value),
    ) -> Result<Client, ClientError> {
        Self::connect_on(opts, Some(stream), on_event).await
    }

    async fn connect_on(
        opts: &ConnectOptions,
        stream: Option<TcpStream>,
        mut on_event: impl FnMut(&str, &Value),
    ) -> Result<Client, ClientError> {
        let secure = opts.url.starts_with("wss:");
        if secure {
            crate::tls::ensure_crypto_provider();
        }
        let pin = match (&opts.tls_pin, secure) {
            (Some(p), true) => {
                Some(
                    crate::tls::PinnedCert::new(p).ok_or_else(|| ClientError::Connect {
                        url: opts.url.clone(),
                        reason: "the certificate pin is not a SHA-256 fingerprint".into(),
                    })?,
                )
            }
            _ => None,
        };
        let connector = match &pin {
            Some(p) => Some(tokio_tungstenite::Connector::Rustls(std::sync::Arc::new(
                p.client_config().map_err(|e| ClientError::Connect {
                    url: opts.url.clone(),
                    reason: e.to_string(),
                })?,
            ))),
            None => None,
        };
        let mut req =
            opts.url
                .as_str()
                .into_client_request()
                .map_err(|e| ClientError::Connect {
                    url: opts.url.clone(),
                    reason: e.to_string(),
                })?;
        if let Some(o) = &opts.origin {
            if let Ok(v) = o.parse() {
                req.headers_mut().insert("origin", v);
            }
        }
        let cfg = WebSocketConfig::default()
            .read_buffer_size(4096)
            .max_message_size(Some(16 << 20));
        let handshake = async {
            match stream {
                None => {
                    tokio_tungstenite::connect_async_tls_with_config(
                        req,
                        Some(cfg),
                        true,
                        connector,
                    )
                    .await
                }
                Some(s) => {
                    tokio_tungstenite::client_async_tls_with_config(req, s, Some(cfg), connector)
                        .await
                }
            }
        };
        let (mut ws, _) = tokio::time::timeout(opts.timeout, handshake)
            .await
            .map_err(|_| ClientError::Timeout)?
            .map_err(|e| match &pin {
                Some(p) if p.saw_another_certificate() => ClientError::CertificateMismatch {
                    url: opts.url.clone(),
                    expected: p.fingerprint().to_string(),
                },
                _ => ClientError::Connect {
                    url: opts.url.clone(),
                    reason: e.to_string(),
                },
            })?;
        let challenge = tokio::time::timeout(opts.timeout, next_json(&mut ws))
            .await
            .map_err(|_| ClientError::Timeout)??;
        if challenge["event"] != "connect.challenge" {
            return Err(ClientError::Protocol(format!(
                "expected connect.challenge, got {challenge}"
            )));
        }
        let nonce = challenge["payload"]["nonce"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let params = connect_params(opts, &nonce);
        let id = "connect".to_string();
        ws.send(Message::text(
            json!({ "type": "req", "id": id, "method": "connect", "params": params }).to_string(),
        ))
        .await
        .map_err(|e| ClientError::Closed(Some(e.to_string())))?;
        let mut events = VecDeque::new();
        loop {
            // A waiting device may wait as long as its request lives.
            let wait = if opts.wait_for_approval {
                Duration::from_secs(3600)
            } else {
                opts.timeout
            };
            let v = tokio::time::timeout(wait, next_json(&mut ws))
                .await
                .map_err(|_| ClientError::Timeout)??;
            match v["type"].as_str() {
                Some("event") => {
                    let name = v["event"].as_str().unwrap_or_default().to_string();
                    on_event(&name, &v["payload"]);
                    events.push_back((name, v["payload"].clone()));
                }
                Some("res") if v["id"] == id.as_str() => {
                    if v["ok"] == true {
                        return Ok(Client {
                            ws,
                            next_id: 1,
                            events,
                            hello: v["payload"].clone(),
                        });
                    }
                    return Err(ClientError::Rejected(rpc_error(&v["error"])));
                }
                _ => {}
            }
        }
    }

    /// Calls a method and waits for its answer (events arriving meanwhile are queued).
    pub async fn call(&mut self, method: &str, params: Value) -> Result<Value, ClientError> {
        self.next_id += 1;
        let id = format!("r{}", self.next_id);
        self.ws
            .send(Message::text(
                json!({ "type": "req", "id": id, "method": method, "params": params }).to_string(),
            ))
            .await
            .map_err(|e| ClientError::Closed(Some(e.to_string())))?;
        loop {
            let v = tokio::time::timeout(Duration::from_secs(30), next_json(&mut self.ws))
                .await
                .map_err(|_| ClientError::Timeout)??;
            match v["type"].as_str() {
                Some("event") => self.events.push_back((
                    v["event"].as_str().unwrap_or_default().to_string(),
                    v["payload"].clone(),
                )),
                Some("res") if v["id"] == id.as_str() => {
                    return if v["ok"] == true {
                        Ok(v["payload"].clone())
                    } else {
                        Err(ClientError::Rejected(rpc_error(&v["error"])))
                    };
                }
                _ => {}
            }
        }
    }

    /// The next event (queued first), or `None` after `wait`.
    pub async fn next_event(
        &mut self,
        wait: Duration,
    ) -> Result<Option<(String, Value)>, ClientError> {
        if let Some(e) = self.events.pop_front() {
            return Ok(Some(e));
        }
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let v = match tokio::time::timeout_at(deadline, next_json(&mut self.ws)).await {
                Err(_) => return Ok(None),
                Ok(r) => r?,
            };
            if v["type"] == "event" {
                return Ok(Some((
                    v["event"].as_str().unwrap_or_default().to_string(),
                    v["payload"].clone(),
                )));
            }
        }
    }

    /// Waits for a named event (others are dropped), up to `wait`.
    pub async fn wait_event(
        &mut self,
        name: &str,
        wait: Duration,
    ) -> Result<Option<Value>, ClientError> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next_event(left).await? {
                Some((n, p)) if n == name => return Ok(Some(p)),
                Some(_) => continue,
                None => return Ok(None),
            }
        }
    }

    /// Waits until the gateway closes the connection; returns the close reason.
    pub async fn closed(&mut self, wait: Duration) -> Result<Option<String>, ClientError> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            match tokio::time::timeout_at(deadline, next_json(&mut self.ws)).await {
                Err(_) => return Err(ClientError::Timeout),
                Ok(Err(ClientError::Closed(r))) => return Ok(r),
                Ok(Err(e)) => return Err(e),
                Ok(Ok(v)) => {
                    if v["type"] == "event" {
                        self.events.push_back((
                            v["event"].as_str().unwrap_or_default().to_string(),
                            v["payload"].clone(),
                        ));
                    }
                }
            }
        }
    }

    /// The socket and the events that arrived before hello-ok, for a caller that drives the
    /// connection itself (several requests in flight, events as they come).
    pub fn into_socket(self) -> (Socket, VecDeque<(String, Value)>) {
        (self.ws, self.events)
    }

    pub async fn close(mut self) {
        let _ = self.ws.close(None).await;
    }
}

fn rpc_error(e: &Value) -> RpcError {
    RpcError {
        code: ErrorCode::from_wire(e["code"].as_str().unwrap_or("UNKNOWN")),
        message: e["message"].as_str().unwrap_or("refused").to_string(),
        details: e.get("details").cloned(),
    }
}

async fn next_json(ws: &mut Socket) -> Result<Value, ClientError> {
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(t))) => {
                return serde_json::from_str(t.as_str())
                    .map_err(|e| ClientError::Protocol(e.to_string()))
            }
            Some(Ok(Message::Close(f))) => {
                return Err(ClientError::Closed(
                    f.map(|f| format!("{} {}", u16::from(f.code), f.reason)),
                ))
            }
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Err(ClientError::Closed(Some(e.to_string()))),
            None => return Err(ClientError::Closed(None)),
        }
    }
}

/// The `connect` params for these options, signed with the identity when there is one.
pub fn connect_params(opts: &ConnectOptions, nonce: &str) -> Value {
    let mut auth = Map::new();
    let token = match &opts.auth {
        Auth::None => String::new(),
        Auth::Token(t) => {
            auth.insert("token".into(), t.clone().into());
            t.clone()
        }
        Auth::DeviceToken(t) => {
            auth.insert("deviceToken".into(), t.clone().into());
            t.clone()
        }
        Auth::BootstrapToken(t) => {
            auth.insert("bootstrapToken".into(), t.clone().into());
            t.clone()
        }
    };
    let mut params = json!({
        "minProtocol": crate::protocol::MIN_PROTOCOL,
        "maxProtocol": crate::protocol::MAX_PROTOCOL,
        "client": {
            "id": opts.client_id,
            "version": env!("CARGO_PKG_VERSION"),
            "platform": opts.platform,
            "mode": opts.client_mode,
        },
        "role": opts.role,
        "scopes": opts.scopes,
        "auth": auth,
    });
    // Optional fields are left out when empty: OpenClaw's schema refuses empty strings.
    if !opts.device_family.is_empty() {
        params["client"]["deviceFamily"] = opts.device_family.clone().into();
    }
    if let Some(n) = &opts.display_name {
        params["client"]["displayName"] = n.clone().into();
    }
    if opts.wait_for_approval {
        params["waitForApproval"] = true.into();
    }
    if !opts.caps.is_empty() {
        params["caps"] = opts.caps.clone().into();
    }
    if let Some(id) = &opts.identity {
        let device_id = id.device_id();
        let signed_at = now_ms();
        let scopes = opts.scopes.join(",");
        let fields = SignedFields {
            device_id: &device_id,
            client_id: &opts.client_id,
            client_mode: &opts.client_mode,
            role: &opts.role,
            scopes: &scopes,
            signed_at,
            token: &token,
            nonce,
            platform: &opts.platform,
            device_family: &opts.device_family,
        };
        params["device"] = json!({
            "id": device_id,
            "publicKey": id.public_key(),
            "signature": id.sign(&fields),
            "signedAt": signed_at,
            "nonce": nonce,
        });
    }
    params
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_of_what_holds_a_token_never_shows_it() {
        let secret = "tok-0123456789-secret";
        let id = Identity::from_seed([3; 32]);
        let mut file = IdentityFile::new(&id, 0);
        file.tokens.insert(
            "node".into(),
            StoredToken {
                token: secret.into(),
                scopes: vec![],
            },
        );
        let mut opts =
            ConnectOptions::node("ws://127.0.0.1:1", id, Auth::DeviceToken(secret.into()));
        let shown = [
            format!("{opts:?}"),
            format!("{file:?}"),
            format!("{:?}", Auth::Token(secret.into())),
            format!("{:?}", Auth::BootstrapToken(secret.into())),
        ];
        for s in &shown {
            assert!(!s.contains(secret), "{s}");
            assert!(!s.contains(&file.private_key), "{s}");
        }
        opts.auth = Auth::None;
        assert!(format!("{opts:?}").contains("None"));
    }
}

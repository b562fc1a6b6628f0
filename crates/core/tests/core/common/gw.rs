//! An in-process gateway on loopback for tests, and raw WebSocket helpers for speaking the
//! protocol by hand (to send what a well-behaved client never would).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use clawpair_core::client::{Auth, Client, ClientError, ConnectOptions, Identity};
use clawpair_core::clock::SystemClock;
use clawpair_core::gateway::{Gateway, Limits, ShutdownHandle};
use clawpair_core::pairing::authority::Authority;
use clawpair_core::rpc::RpcError;
use clawpair_core::service::Service;
use clawpair_core::store::StatePaths;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub type Raw = WebSocketStream<MaybeTlsStream<TcpStream>>;

pub struct TestGateway {
    pub addr: SocketAddr,
    /// `ws://…/`, or `wss://…/` when the gateway serves TLS (`gateway.tls`).
    pub url: String,
    pub token: String,
    /// With TLS on, the SHA-256 of the gateway's certificate (what clients pin).
    pub tls_fingerprint: Option<String>,
    pub service: Arc<Service>,
    handle: ShutdownHandle,
    task: tokio::task::JoinHandle<()>,
}

impl TestGateway {
    pub async fn start(state: &std::path::Path) -> TestGateway {
        Self::start_with(state, Limits::default(), |_| {}).await
    }

    /// Starts a gateway after editing its settings.
    pub async fn start_with(
        state: &std::path::Path,
        limits: Limits,
        edit: impl FnOnce(&mut clawpair_core::config::Settings),
    ) -> TestGateway {
        Self::launch(state, limits, edit, true).await
    }

    /// Starts a gateway that writes no run record, so the CLI finds no gateway to talk to and
    /// acts on the files directly, as another process would.
    pub async fn start_unrecorded(state: &std::path::Path) -> TestGateway {
        Self::launch(state, Limits::default(), |_| {}, false).await
    }

    async fn launch(
        state: &std::path::Path,
        limits: Limits,
        edit: impl FnOnce(&mut clawpair_core::config::Settings),
        record: bool,
    ) -> TestGateway {
        let (service, _) =
            Service::open(StatePaths::new(state), Arc::new(SystemClock)).expect("open state");
        service
            .update_settings("test", |s| {
                edit(s);
                Ok(())
            })
            .expect("settings");
        let service = Arc::new(service);
        let gw = Gateway::bind(service.clone(), "127.0.0.1:0".parse().unwrap(), limits)
            .await
            .expect("bind")
            .with_run_record(record);
        let addr = gw.local_addr();
        let tls_fingerprint = gw.tls_fingerprint().map(String::from);
        let handle = gw.shutdown_handle();
        let task = tokio::spawn(gw.run());
        let token = service.settings().gateway.auth.token.clone();
        let scheme = if tls_fingerprint.is_some() {
            "wss"
        } else {
            "ws"
        };
        TestGateway {
            addr,
            url: format!("{scheme}://{addr}/"),
            token,
            tls_fingerprint,
            service,
            handle,
            task,
        }
    }

    pub async fn stop(self) {
        self.handle.shutdown();
        let _ = tokio::time::timeout(Duration::from_secs(10), self.task).await;
    }

    /// Options for an operator with the admin token (pinning the certificate with TLS on).
    pub fn operator_options(&self, client_id: &str) -> ConnectOptions {
        let mut o = ConnectOptions::operator(&self.url, &self.token, client_id);
        o.tls_pin = self.tls_fingerprint.clone();
        o
    }

    /// An operator connected with the admin token.
    pub async fn operator(&self) -> Client {
        Client::connect(&self.operator_options("test-operator"), |_, _| {})
            .await
            .expect("operator connects")
    }

    /// A setup code for this gateway and its bootstrap token.
    pub fn setup_token(&self) -> String {
        let code = self
            .service
            .setup_create(Some(&self.url), None, "test", false)
            .expect("setup code");
        clawpair_core::pairing::setup::decode_setup_code(&code.setup_code)
            .unwrap()
            .bootstrap_token
    }

    pub fn phone(&self, id: &Identity, auth: Auth) -> ConnectOptions {
        let mut o = ConnectOptions::node(&self.url, id.clone(), auth);
        o.tls_pin = self.tls_fingerprint.clone();
        o.display_name = Some("Test Phone".into());
        o.platform = "android".into();
        o
    }

    /// What a device of `role` asking for `scopes` sends (an operator in `backend` mode).
    pub fn device(&self, id: &Identity, auth: Auth, role: &str, scopes: &[&str]) -> ConnectOptions {
        let mut o = self.phone(id, auth);
        o.role = role.into();
        if role == "operator" {
            o.client_mode = "backend".into();
        }
        o.scopes = scopes.iter().map(|s| s.to_string()).collect();
        o
    }

    /// A new device's first connect with a fresh setup code, which the owner must decide:
    /// its identity and request id.
    pub async fn device_request(&self, role: &str, scopes: &[&str]) -> (Identity, String) {
        let id = Identity::generate();
        let opts = self.device(&id, Auth::BootstrapToken(self.setup_token()), role, scopes);
        (id, request_id(&opts).await)
    }

    /// A device paired by the owner through a setup code: its options, now with its token.
    pub async fn pair_device(&self, role: &str, scopes: &[&str]) -> ConnectOptions {
        let id = Identity::generate();
        let mut opts = self.device(&id, Auth::BootstrapToken(self.setup_token()), role, scopes);
        let request = request_id(&opts).await;
        self.service
            .device_approve(&request, "test")
            .expect("owner approves");
        let c = Client::connect(&opts, |_, _| {})
            .await
            .expect("approved device connects");
        let token = c.hello["auth"]["deviceToken"]
            .as_str()
            .expect("a token")
            .to_string();
        c.close().await;
        opts.auth = Auth::DeviceToken(token);
        opts
    }

    /// A device paired for `role` and `scopes` through a setup code with the owner's
    /// approval: its identity and device token.
    pub async fn paired(&self, role: &str, scopes: &[&str]) -> (Identity, String) {
        let opts = self.pair_device(role, scopes).await;
        let Auth::DeviceToken(token) = opts.auth else {
            panic!("a device token")
        };
        (opts.identity.expect("an identity"), token)
    }

    /// The owner revokes a role's token of this device.
    pub fn revoke(&self, id: &Identity, role: &str) {
        self.service
            .token_revoke(&id.device_id(), role, &Authority::owner(), "test")
            .expect("revoked");
    }

    /// The owner rotates a role's token of this device: the new token.
    pub fn rotate(&self, id: &Identity, role: &str) -> String {
        self.service
            .token_rotate(&id.device_id(), role, &Authority::owner(), "test")
            .expect("rotated")
            .0
    }

    /// A phone paired for `node`: its identity and device token.
    pub async fn paired_phone(&self) -> (Identity, String) {
        self.paired("node", &[]).await
    }

    /// Whether the gateway still answers a fresh operator.
    pub async fn answers(&self) -> bool {
        match tokio::time::timeout(
            Duration::from_secs(5),
            Client::connect(&self.operator_options("probe"), |_, _| {}),
        )
        .await
        {
            Ok(Ok(mut c)) => c.call("pairing.list", json!({})).await.is_ok(),
            _ => false,
        }
    }
}

/// The error answer a connect (or call) got; panics on anything else.
pub fn rejected<T: std::fmt::Debug>(r: Result<T, ClientError>) -> RpcError {
    match r {
        Err(ClientError::Rejected(e)) => e,
        Err(other) => panic!("expected an error answer, got {other:?}"),
        Ok(ok) => panic!("expected a refusal, got {ok:?}"),
    }
}

/// The gateway's refusal of this connect.
pub async fn refused(opts: &ConnectOptions) -> RpcError {
    rejected(Client::connect(opts, |_, _| {}).await.map(|c| c.hello))
}

/// Connects, must be let in, and leaves.
pub async fn connects(opts: &ConnectOptions) {
    Client::connect(opts, |_, _| {})
        .await
        .expect("let in")
        .close()
        .await;
}

/// A field of an error's details.
pub fn detail(e: &RpcError, key: &str) -> Value {
    e.details.clone().unwrap_or_default()[key].clone()
}

/// A connect the owner must decide first: the request id of its `NOT_PAIRED` answer.
pub async fn request_id(opts: &ConnectOptions) -> String {
    match Client::connect(opts, |_, _| {}).await {
        Err(clawpair_core::client::ClientError::Rejected(e)) => {
            assert_eq!(e.code, "NOT_PAIRED", "{e:?}");
            e.details.unwrap_or_default()["requestId"]
                .as_str()
                .expect("a request id")
                .to_string()
        }
        Err(other) => panic!("expected NOT_PAIRED, got {other:?}"),
        Ok(c) => panic!("expected NOT_PAIRED, got hello-ok {}", c.hello),
    }
}

/// The next answer (`res`) on a raw socket, skipping events; panics after 10 s.
pub async fn next_answer(ws: &mut Raw) -> Value {
    loop {
        let v = recv(ws).await.expect("an answer before the socket closed");
        if v["type"] == "res" {
            return v;
        }
    }
}

/// Opens a raw socket and reads the challenge; returns the socket and the nonce.
pub async fn raw(url: &str) -> (Raw, String) {
    let (mut ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("upgrade");
    let v = recv(&mut ws).await.expect("challenge");
    assert_eq!(v["event"], "connect.challenge", "{v}");
    let nonce = v["payload"]["nonce"].as_str().unwrap().to_string();
    (ws, nonce)
}

pub async fn send(ws: &mut Raw, v: &Value) {
    ws.send(Message::text(v.to_string())).await.expect("send");
}

pub async fn send_text(ws: &mut Raw, t: String) -> bool {
    ws.send(Message::text(t)).await.is_ok()
}

/// The next JSON text frame, or `None` when the socket closed.
pub async fn recv(ws: &mut Raw) -> Option<Value> {
    loop {
        match tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .ok()?
        {
            Some(Ok(Message::Text(t))) => return serde_json::from_str(t.as_str()).ok(),
            Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return None,
            Some(Ok(_)) => continue,
        }
    }
}

/// Reads until the close frame and returns its code (`None` if the socket just dropped).
pub async fn close_code(ws: &mut Raw) -> Option<u16> {
    loop {
        match tokio::time::timeout(Duration::from_secs(15), ws.next())
            .await
            .ok()?
        {
            Some(Ok(Message::Close(Some(f)))) => return Some(u16::from(f.code)),
            Some(Ok(Message::Close(None))) | None | Some(Err(_)) => return None,
            Some(Ok(_)) => continue,
        }
    }
}

/// A `connect` request as a phone with `id` would send it, signed for `nonce`.
pub fn signed_connect(id: &Identity, nonce: &str, auth: Auth) -> Value {
    let o = ConnectOptions::node("ws://unused/", id.clone(), auth);
    json!({ "type": "req", "id": "c1", "method": "connect", "params": clawpair_core::client::connect_params(&o, nonce) })
}

/// A raw socket whose source address is `src` (any 127.x address works on Linux), so a test
/// can be "another client IP" on loopback.
pub async fn raw_from(src: &str, addr: SocketAddr) -> (Raw, String) {
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.bind(format!("{src}:0").parse().unwrap()).unwrap();
    let tcp = sock.connect(addr).await.expect("tcp connect");
    let (mut ws, _) =
        tokio_tungstenite::client_async(format!("ws://{addr}/"), MaybeTlsStream::Plain(tcp))
            .await
            .expect("upgrade");
    let v = recv(&mut ws).await.expect("challenge");
    let nonce = v["payload"]["nonce"].as_str().unwrap().to_string();
    (ws, nonce)
}

/// An upgrade from source address `src` carrying extra request headers (as a reverse proxy
/// would add them); returns the socket and the nonce, or the upgrade's error (an HTTP refusal).
pub async fn raw_with_headers(
    src: &str,
    addr: SocketAddr,
    headers: &[(&str, &str)],
) -> Result<(Raw, String), tokio_tungstenite::tungstenite::Error> {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.bind(format!("{src}:0").parse().unwrap()).unwrap();
    let tcp = sock.connect(addr).await.expect("tcp connect");
    let mut req = format!("ws://{addr}/").into_client_request().unwrap();
    for (k, v) in headers {
        req.headers_mut().append(
            tokio_tungstenite::tungstenite::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            v.parse().unwrap(),
        );
    }
    let (mut ws, _) = tokio_tungstenite::client_async(req, MaybeTlsStream::Plain(tcp)).await?;
    let v = recv(&mut ws).await.expect("challenge");
    let nonce = v["payload"]["nonce"].as_str().unwrap().to_string();
    Ok((ws, nonce))
}

/// An operator `connect` with `token` (the admin token, or a guess).
pub fn operator_connect(token: &str) -> Value {
    json!({ "type": "req", "id": "c", "method": "connect", "params": {
        "minProtocol": 3, "maxProtocol": 3, "client": { "id": "x", "mode": "cli" },
        "role": "operator", "auth": { "token": token } } })
}

/// A connect signed with chosen `signedAt` and nonce (for the failure cases).
pub fn connect_signed_at(
    id: &Identity,
    nonce_signed: &str,
    nonce_sent: &str,
    signed_at: i64,
    auth_token: &str,
) -> Value {
    use clawpair_core::pairing::device::SignedFields;
    let device_id = id.device_id();
    let fields = SignedFields {
        device_id: &device_id,
        client_id: "clawpair-node",
        client_mode: "node",
        role: "node",
        scopes: "",
        signed_at,
        token: auth_token,
        nonce: nonce_signed,
        platform: "linux",
        device_family: "computer",
    };
    json!({ "type": "req", "id": "c1", "method": "connect", "params": {
        "minProtocol": 3, "maxProtocol": 3,
        "client": { "id": "clawpair-node", "version": "1", "platform": "linux", "mode": "node", "deviceFamily": "computer" },
        "role": "node", "scopes": [], "auth": { "bootstrapToken": auth_token },
        "device": { "id": device_id, "publicKey": id.public_key(), "signature": id.sign(&fields), "signedAt": signed_at, "nonce": nonce_sent }
    }})
}

/// Runs the CLI binary (blocking work off the runtime) and returns its output.
pub async fn cli(state: &std::path::Path, args: &[&str]) -> std::process::Output {
    let state = state.to_path_buf();
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        std::process::Command::new(crate::CLAWPAIR)
            .arg("--state-dir")
            .arg(&state)
            .args(&args)
            .env_remove("OPENCLAW_STATE_DIR")
            .env_remove("CLAWPAIR_STATE_DIR")
            .output()
            .expect("run clawpair")
    })
    .await
    .unwrap()
}

pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

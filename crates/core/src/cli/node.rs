//! `clawpair node pair|connect`: what a phone does, from the command line. Keeps an Ed25519
//! identity (`0600`), pairs with a setup code, waits for the owner, stores its device token.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use super::{CliError, CliResult, NodeCmd};
use crate::client::{
    Auth, Client, ClientError, ConnectOptions, Identity, IdentityFile, StoredToken,
};
use crate::pairing::setup::decode_setup_code;
use crate::protocol::{Code, ErrorCode};

fn identity_path(state_dir: Option<&Path>, explicit: Option<PathBuf>) -> Result<PathBuf, CliError> {
    match explicit {
        Some(p) => Ok(p),
        None => {
            let dir = crate::config::resolve_state_dir(state_dir)
                .map_err(|e| CliError::refused(e.to_string()))?;
            Ok(crate::store::StatePaths::new(dir)
                .identity_dir()
                .join("device.json"))
        }
    }
}

fn load_or_create(path: &Path) -> Result<IdentityFile, CliError> {
    if let Some(f) = IdentityFile::load(path).map_err(CliError::refused)? {
        f.identity()
            .map_err(|e| CliError::refused(format!("{}: {e}", path.display())))?;
        return Ok(f);
    }
    let id = Identity::generate();
    let f = IdentityFile::new(&id, chrono::Utc::now().timestamp_millis());
    f.save(path).map_err(CliError::refused)?;
    Ok(f)
}

fn runtime() -> Result<tokio::runtime::Runtime, CliError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::refused(format!("cannot start the runtime: {e}")))
}

fn refusal(e: crate::client::ClientError) -> CliError {
    match e.error_code() {
        Some(ErrorCode::Known(Code::PairingRejected)) => {
            CliError::refused("the owner rejected this device")
        }
        Some(ErrorCode::Known(Code::PairingExpired)) => CliError::refused(
            "the pairing request expired before the owner decided; ask for a new setup code",
        ),
        _ => CliError::refused(e.to_string()),
    }
}

pub fn run(state_dir: Option<&Path>, cmd: NodeCmd) -> CliResult {
    match cmd {
        NodeCmd::Pair {
            setup_code,
            name,
            identity,
        } => {
            let path = identity_path(state_dir, identity)?;
            let payload = decode_setup_code(&setup_code)
                .map_err(|e| CliError::refused(format!("invalid setup code: {e}")))?;
            let mut file = load_or_create(&path)?;
            let id = file.identity().map_err(CliError::refused)?;
            println!(
                "This device's fingerprint: {} (device id {}).",
                id.fingerprint(),
                &id.device_id()[..16]
            );
            println!("Connecting to {} …", payload.url);
            if let Some(pin) = &payload.tls_fingerprint {
                println!("Pinning the gateway's certificate: SHA-256 {pin}.");
            }
            let mut opts = ConnectOptions::node(
                &payload.url,
                id.clone(),
                Auth::BootstrapToken(payload.bootstrap_token.clone()),
            );
            opts.tls_pin = payload.tls_fingerprint.clone();
            opts.display_name = Some(name.unwrap_or_else(default_name));
            opts.wait_for_approval = true;
            let fp = id.fingerprint();
            let client = runtime()?.block_on(pair_and_wait(opts, &fp))?;
            let auth = &client.hello["auth"];
            let Some(token) = auth["deviceToken"].as_str() else {
                return Err(CliError::refused(
                    "the gateway accepted the device but sent no token",
                ));
            };
            let role = auth["role"].as_str().unwrap_or("node").to_string();
            let scopes = auth["scopes"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|s| s.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default();
            file.gateway_url = Some(payload.url.clone());
            file.gateway_tls_fingerprint = payload.tls_fingerprint.clone();
            file.tokens.insert(
                role.clone(),
                StoredToken {
                    token: token.to_string(),
                    scopes,
                },
            );
            file.save(&path).map_err(CliError::refused)?;
            println!(
                "Paired as {role}. The device token is stored in {}.",
                path.display()
            );
            Ok(())
        }
        NodeCmd::Connect { identity, stay } => {
            let path = identity_path(state_dir, identity)?;
            let file = IdentityFile::load(&path)
                .map_err(CliError::refused)?
                .ok_or_else(|| {
                    CliError::refused(format!(
                        "no identity at {}; pair first with `clawpair node pair SETUP_CODE`",
                        path.display()
                    ))
                })?;
            let id = file.identity().map_err(CliError::refused)?;
            let url = file.gateway_url.clone().ok_or_else(|| {
                CliError::refused("this identity has not paired with a gateway yet")
            })?;
            let (role, tok) = file
                .tokens
                .iter()
                .next()
                .ok_or_else(|| CliError::refused("this identity holds no device token"))?;
            let mut opts = ConnectOptions::node(&url, id, Auth::DeviceToken(tok.token.clone()));
            opts.tls_pin = file.gateway_tls_fingerprint.clone();
            opts.role = role.clone();
            opts.scopes = tok.scopes.clone();
            let rt = runtime()?;
            rt.block_on(async {
                let mut client = Client::connect(&opts, |_, _| {}).await.map_err(refusal)?;
                println!(
                    "Connected to {url} as {role} (connection {}).",
                    client.hello["server"]["connId"].as_str().unwrap_or("?")
                );
                if !stay {
                    client.close().await;
                    return Ok(());
                }
                let reason = client
                    .closed(Duration::from_secs(u64::MAX / 4))
                    .await
                    .map_err(|e| CliError::refused(e.to_string()))?;
                Err(CliError::refused(format!(
                    "the gateway closed the connection{}",
                    reason.map(|r| format!(": {r}")).unwrap_or_default()
                )))
            })
        }
    }
}

/// Says once that the device waits, naming the request the owner will see.
fn waiting(request_id: &str, fp: &str) {
    println!(
        "Waiting for the owner to approve request {request_id} — they should see fingerprint {fp}."
    );
}

/// Whether a refusal says the gateway does not know `waitForApproval` (OpenClaw's connect
/// schema is closed: it refuses fields it does not list).
fn wait_unknown(e: &ClientError) -> bool {
    matches!(e, ClientError::Rejected(r) if r.code.is(Code::InvalidRequest)
        && (r.message.contains("waitForApproval") || r.message.contains("additional propert")
            || r.message.contains("unexpected propert")))
}

/// Connects with a setup code and waits for the owner: on the same socket where the gateway
/// offers `waitForApproval` (ClawPair), else by retrying the same connect, as OpenClaw's own
/// node host does, until the owner decided or the request expired.
async fn pair_and_wait(mut opts: ConnectOptions, fp: &str) -> Result<Client, CliError> {
    let mut told: Option<String> = None;
    let first = Client::connect(&opts, |event, payload: &Value| {
        if event == "device.pair.pending" {
            let id = payload["requestId"].as_str().unwrap_or("?").to_string();
            waiting(&id, fp);
        }
    })
    .await;
    match first {
        Err(e) if wait_unknown(&e) => opts.wait_for_approval = false,
        other => return other.map_err(refusal),
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15 * 60);
    let mut pause = Duration::from_secs(1);
    loop {
        let e = match Client::connect(&opts, |_, _| {}).await {
            Ok(c) => return Ok(c),
            Err(e) => e,
        };
        let ClientError::Rejected(r) = &e else {
            return Err(refusal(e));
        };
        let details = r.details.clone().unwrap_or_default();
        match details["code"].as_str() {
            Some("PAIRING_REQUIRED") => {
                let id = details["requestId"].as_str().unwrap_or("?").to_string();
                if told.as_deref() != Some(id.as_str()) {
                    waiting(&id, fp);
                    told = Some(id);
                }
            }
            // The owner rejected the device (OpenClaw revokes its setup code), or it expired.
            Some("AUTH_BOOTSTRAP_TOKEN_INVALID") if told.is_some() => {
                return Err(CliError::refused(
                    "the owner rejected this device, or its setup code expired; ask for a new one",
                ))
            }
            _ => return Err(refusal(e)),
        }
        if tokio::time::Instant::now() + pause > deadline {
            return Err(CliError::refused(
                "the owner did not decide within 15 minutes; ask for a new setup code",
            ));
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(5));
    }
}

fn default_name() -> String {
    std::fs::read_to_string("/etc/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "clawpair node".into())
}

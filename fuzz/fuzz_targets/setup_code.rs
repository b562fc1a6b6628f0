//! A setup code as `clawpair node pair` takes it, pasted or scanned from a QR: decoded (base64
//! of any kind, or raw JSON) with its URL and certificate pin checked, the pin turned into the
//! certificate check, the URL into the WebSocket request, and the `connect` the node then
//! signs checked by the gateway's own rules. What decodes must survive encoding again.

#![no_main]

use clawpair_core::client::{connect_params, Auth, ConnectOptions, Identity};
use clawpair_core::gateway::connect;
use clawpair_core::gateway::limits::MAX_CONNECT_FIELD;
use clawpair_core::pairing::setup::{decode_setup_code, encode_setup_code, MAX_SETUP_CODE_CHARS};
use clawpair_core::tls::PinnedCert;
use clawpair_fuzz::DEVICE_SEED;
use libfuzzer_sys::fuzz_target;
use tungstenite::client::IntoClientRequest;

fuzz_target!(|data: &[u8]| {
    let Ok(code) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(payload) = decode_setup_code(code) else {
        return;
    };
    if let Some(pin) = &payload.tls_fingerprint {
        assert!(
            PinnedCert::new(pin).is_some(),
            "a pin the decoder accepted is one the client can check"
        );
    }
    let _ = payload.url.as_str().into_client_request();

    let again = encode_setup_code(&payload);
    if again.len() <= MAX_SETUP_CODE_CHARS {
        assert_eq!(
            decode_setup_code(&again).as_ref(),
            Ok(&payload),
            "a decoded code encodes to the same code"
        );
    }

    // The node's connect with this code's token, checked as the gateway checks it.
    if payload.bootstrap_token.len() > MAX_CONNECT_FIELD {
        return;
    }
    let opts = ConnectOptions::node(
        &payload.url,
        Identity::from_seed(DEVICE_SEED),
        Auth::BootstrapToken(payload.bootstrap_token.clone()),
    );
    let nonce = "fuzz-challenge";
    let params = connect::parse(connect_params(&opts, nonce))
        .expect("the gateway reads what the client sends");
    connect::validate(&params).expect("the gateway accepts the shape the client sends");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    assert!(
        matches!(connect::verify_device(&params, nonce, now), Ok(Some(_))),
        "the gateway verifies the signature the client made"
    );
});

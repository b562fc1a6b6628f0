//! A device's identity file (`clawpair node`, `identity/device.json`) as a person or another
//! process left it: loaded, its key checked against its device id, and the reconnect it
//! describes prepared as `clawpair node connect` prepares it (URL, certificate pin, the
//! stored token and the signed `connect`).

#![no_main]

use clawpair_core::client::{connect_params, Auth, ConnectOptions, IdentityFile};
use clawpair_core::tls::PinnedCert;
use clawpair_fuzz::{fresh_state, plant};
use libfuzzer_sys::fuzz_target;
use tungstenite::client::IntoClientRequest;

fuzz_target!(|data: &[u8]| {
    let paths = fresh_state();
    let path = paths.identity_dir().join("device.json");
    plant(&path, data);
    let Ok(Some(file)) = IdentityFile::load(&path) else {
        return;
    };
    let Ok(id) = file.identity() else {
        return;
    };
    assert_eq!(id.device_id(), file.device_id, "the key is the device's");
    let Some(url) = &file.gateway_url else {
        return;
    };
    let _ = url.as_str().into_client_request();
    if let Some(pin) = &file.gateway_tls_fingerprint {
        let _ = PinnedCert::new(pin);
    }
    let Some((role, tok)) = file.tokens.iter().next() else {
        return;
    };
    let mut opts = ConnectOptions::node(url, id, Auth::DeviceToken(tok.token.clone()));
    opts.role = role.clone();
    opts.scopes = tok.scopes.clone();
    let _ = connect_params(&opts, "fuzz-challenge");
});

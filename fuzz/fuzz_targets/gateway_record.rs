//! `run/gateway.json` (where a running gateway listens) as another process or a crash left
//! it: read as the CLI reads it to find the gateway, its local URL made into the request the
//! CLI would send (with the certificate pin it names), and a stale record removed.

#![no_main]

use clawpair_core::store::runrec;
use clawpair_core::tls::PinnedCert;
use clawpair_fuzz::{fresh_state, plant};
use libfuzzer_sys::fuzz_target;
use tungstenite::client::IntoClientRequest;

fuzz_target!(|data: &[u8]| {
    let paths = fresh_state();
    plant(&paths.gateway_record(), data);
    let Some(rec) = runrec::read(&paths) else {
        return;
    };
    if let Some(url) = rec.local_url() {
        let _ = url.into_client_request();
    }
    if let Some(pin) = &rec.tls_fingerprint {
        let _ = PinnedCert::new(pin);
    }
    assert!(
        runrec::read_live(&paths).is_none(),
        "no gateway holds the lock"
    );
    assert!(runrec::stale(&paths).is_some(), "so the record is stale");
    assert!(runrec::remove_stale(&paths).expect("removed"));
    assert!(runrec::read(&paths).is_none());
});

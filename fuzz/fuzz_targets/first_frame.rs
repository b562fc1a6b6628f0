//! The first frame a stranger sends the gateway, taken as the handshake takes it
//! (`gateway/conn/handshake.rs`): parsed as a request, refused unless it is `connect`, its
//! params parsed (role and scopes into their types) and checked, and the device's signature
//! verified against the challenge. The answers to refusals are built too, as they echo what
//! the client sent. Stops where the decision reads the store.

#![no_main]

use clawpair_core::gateway::{connect, frames, Limits};
use clawpair_fuzz::{CHALLENGE_NONCE, NOW};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // A bigger frame is closed unread; a text frame is UTF-8 (the WebSocket layer checks).
    if data.len() > Limits::default().max_preauth_frame {
        return;
    }
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let req = match frames::parse_req(text) {
        Ok(r) => r,
        Err((id, msg)) => {
            let _ = frames::err(&id, frames::error_body("INVALID_REQUEST", &msg, None));
            return;
        }
    };
    if req.method != "connect" {
        return;
    }
    let params = match connect::parse(req.params) {
        Ok(p) => p,
        Err(r) => {
            let _ = frames::err(
                &req.id,
                frames::error_body("INVALID_REQUEST", &r.message, r.details),
            );
            return;
        }
    };
    if connect::validate(&params).is_err() {
        return;
    }
    if let Ok(Some(device)) = connect::verify_device(&params, CHALLENGE_NONCE, NOW) {
        // Only a key that signed this challenge gets here, and its id is the key's.
        assert!(connect::key_is_valid(&device.public_key));
    }
});

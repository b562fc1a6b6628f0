//! The app binary's own command line (`clawpair` as shipped): what it refuses before any window
//! opens. Every other command is the core's and is tested there (crates/core/tests/core).

/// The `clawpair` the app ships, built here as `clawpair-app`.
const CLAWPAIR: &str = env!("CARGO_BIN_EXE_clawpair-app");

mod common;

use common::State;

/// `clawpair --attach ws://<not loopback>` stops with the reason, and remembers nothing.
#[test]
fn the_command_line_refuses_plain_ws_to_another_computer_and_keeps_nothing() {
    let st = State::new();
    let o = st.run(&["--attach", "ws://10.0.0.5:18789"]);
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("refusing to send OpenClaw's token in clear to 10.0.0.5: use wss://"),
        "{err}"
    );
    let o = st.run(&["--attach", "wss://10.0.0.5:18789"]);
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("without a pinned certificate"),
        "{o:?}"
    );
    let o = st.run(&[
        "--attach",
        "wss://10.0.0.5:18789",
        "--tls-fingerprint",
        "abcd",
    ]);
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("not a certificate's SHA-256"),
        "{o:?}"
    );
    let settings = std::fs::read_to_string(st.file("clawpair.json")).unwrap_or_default();
    assert!(
        !settings.contains("10.0.0.5"),
        "a refused URL is not remembered: {settings}"
    );
    // A pin needs --attach.
    assert_eq!(
        st.run(&["--tls-fingerprint", &"ab".repeat(32)])
            .status
            .code(),
        Some(2)
    );
}

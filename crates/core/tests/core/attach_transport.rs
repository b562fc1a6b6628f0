//! Companion mode never sends OpenClaw's token in clear over a network, nor to a loopback socket
//! another user holds (SPEC §6): plain `ws://` to another computer's address is refused before
//! any connection, `wss://` there needs the certificate pinned, and on loopback the listener
//! must belong to this user or root. Real sockets throughout: ClawPair's own gateway stands in
//! for OpenClaw (same protocol), and a listener of another uid runs in a child process.

use crate::common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

use clawpair_core::attach::remote::{Remote, Status, Target, TokenSource};
use clawpair_core::events::{Event, EventBus};
use clawpair_core::gateway::{Gateway, Limits, ShutdownHandle};
use common::gw::TestGateway;
use common::State;

/// Stands for OpenClaw's admin token: it must reach none of the listeners refused here.
const TOKEN: &str = "attach-transport-test-token-never-sent";
const WAIT: Duration = Duration::from_secs(20);
/// The uid the other user's listener runs as (`nobody`).
const OTHER_UID: u32 = 65534;
/// Set for the child process that plays the other user's listener.
const CHILD: &str = "CLAWPAIR_TEST_OTHER_USERS_LISTENER";

fn target(url: &str, pin: Option<&str>, token: &str) -> Target {
    Target {
        url: url.into(),
        token: TokenSource::Given(token.into()),
        tls_pin: pin.map(String::from),
        local_state: None,
        label: "test".into(),
    }
}

/// Attaches and waits for the first status that settles it: attached, or down with a reason.
async fn attach(t: Target) -> (Arc<Remote>, Status) {
    let bus = EventBus::new(64);
    let mut rx = bus.subscribe();
    let remote = Remote::spawn(t, bus);
    let end = tokio::time::Instant::now() + WAIT;
    loop {
        let st = remote.status();
        if !matches!(st, Status::Connecting { .. }) {
            return (remote, st);
        }
        match tokio::time::timeout_at(end, rx.recv()).await {
            Ok(Ok(Event::AttachStatus { line, .. })) => {
                assert!(!line.contains(TOKEN), "the token is never shown: {line}");
            }
            Ok(_) => {}
            Err(_) => panic!("no attachment status within {WAIT:?}: {st:?}"),
        }
    }
}

fn reason(st: &Status) -> &str {
    match st {
        Status::Down { reason, .. } => reason,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

/// A non-loopback address of this computer that can be connected to without a scope (not
/// IPv6 link-local), if it has one.
fn lan_address() -> Option<IpAddr> {
    clawpair_core::net::lan_addresses()
        .into_iter()
        .find(|ip| match ip {
            IpAddr::V4(v4) => !v4.is_link_local(),
            IpAddr::V6(v6) => (v6.segments()[0] & 0xffc0) != 0xfe80,
        })
}

fn unspecified(like: IpAddr) -> IpAddr {
    match like {
        IpAddr::V4(_) => IpAddr::from([0, 0, 0, 0]),
        IpAddr::V6(_) => IpAddr::from([0u16; 8]),
    }
}

/// Whether a connection is waiting on a non-blocking listener.
fn has_connection(l: &TcpListener) -> bool {
    match l.accept() {
        Ok(_) => true,
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => false,
        Err(e) => panic!("accept: {e}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_ws_to_another_computer_is_refused_before_any_connection() {
    let Some(ip) = lan_address() else {
        eprintln!("note: this computer has no non-loopback address; the LAN refusal is covered by the unit tests only");
        return;
    };
    // Listening on every address, so a connection to the LAN address would arrive here.
    let listener = TcpListener::bind(SocketAddr::new(unspecified(ip), 0)).unwrap();
    listener.set_nonblocking(true).unwrap();
    let at = SocketAddr::new(ip, listener.local_addr().unwrap().port());

    let (remote, st) = attach(target(&format!("ws://{at}/"), None, TOKEN)).await;
    let host = match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format!("[{v6}]"),
    };
    assert_eq!(
        reason(&st),
        format!("refusing to send OpenClaw's token in clear to {host}: use wss:// with the certificate's SHA-256 pinned (--tls-fingerprint)")
    );
    assert!(
        st.line()
            .starts_with(&format!("Not attached to OpenClaw at ws://{at}/: refusing")),
        "{}",
        st.line()
    );
    drop(remote);

    // wss:// there without a pin is refused too, before connecting.
    let (remote, st) = attach(target(&format!("wss://{at}/"), None, TOKEN)).await;
    assert!(
        reason(&st).contains("without a pinned certificate"),
        "{st:?}"
    );
    drop(remote);

    assert!(
        !has_connection(&listener),
        "a refused attachment opened no connection at all"
    );
    // The address was reachable all along: what stopped the connection was the refusal.
    let _probe = std::net::TcpStream::connect(at).unwrap();
    let end = std::time::Instant::now() + WAIT;
    while !has_connection(&listener) {
        assert!(std::time::Instant::now() < end, "the probe never arrived");
        std::thread::yield_now();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_loopback_gateway_of_this_user_is_attached_over_plain_ws() {
    let st = State::new();
    let gw = TestGateway::start(st.path()).await;
    let port = gw.addr.port();
    for url in [
        format!("ws://127.0.0.1:{port}/"),
        format!("ws://localhost:{port}/"),
    ] {
        let (remote, status) = attach(target(&url, None, &gw.token)).await;
        assert!(
            matches!(status, Status::Attached { .. }),
            "{url}: {status:?}"
        );
        remote
            .call_raw("device.pair.list", serde_json::json!({}))
            .await
            .expect("the attached gateway answers");
    }
    // Nothing on [::1] at that port: said so, nothing sent.
    let (_remote, status) = attach(target(&format!("ws://[::1]:{port}/"), None, &gw.token)).await;
    assert_eq!(
        reason(&status),
        format!("nothing listens on [::1]:{port} (is the gateway running?)")
    );
    gw.stop().await;
}

/// The other user's listener, in a child process of the test below (the test harness runs it
/// as a test of this file, by name): drops to uid 65534, listens on 127.0.0.1, says where, and
/// when its stdin closes prints how many connections and bytes it got.
#[test]
fn other_users_listener() {
    if std::env::var_os(CHILD).is_none() {
        return;
    }
    // SAFETY: plain system calls, checked; this process is a throwaway child.
    unsafe {
        assert_eq!(libc::setgroups(0, std::ptr::null()), 0, "setgroups");
        assert_eq!(libc::setgid(OTHER_UID), 0, "setgid");
        assert_eq!(libc::setuid(OTHER_UID), 0, "setuid");
    }
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let connections = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let bytes = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (c, b) = (connections.clone(), bytes.clone());
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for s in listener.incoming().flatten() {
            c.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let b = b.clone();
            std::thread::spawn(move || {
                let mut s = s;
                let mut buf = [0u8; 4096];
                while let Ok(n @ 1..) = s.read(&mut buf) {
                    b.fetch_add(n, std::sync::atomic::Ordering::SeqCst);
                }
            });
        }
    });
    println!("LISTENING {port}");
    std::io::stdout().flush().unwrap();
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
    println!(
        "RECEIVED {} {}",
        connections.load(std::sync::atomic::Ordering::SeqCst),
        bytes.load(std::sync::atomic::Ordering::SeqCst)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_loopback_listener_of_another_user_is_refused_naming_its_uid_and_gets_nothing() {
    // SAFETY: geteuid has no preconditions.
    let me = unsafe { libc::geteuid() };
    if me != 0 {
        eprintln!("note: not root, so no listener of another user can be made; covered by the unit tests only");
        return;
    }
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "attach_transport::other_users_listener",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, "1")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    let port: u16 = loop {
        line.clear();
        assert!(
            out.read_line(&mut line).unwrap() > 0,
            "the listener did not start"
        );
        // The harness may have begun the line with the test's name.
        if let Some((_, p)) = line.trim().split_once("LISTENING ") {
            break p.parse().unwrap();
        }
    };

    for url in [
        format!("ws://127.0.0.1:{port}/"),
        format!("ws://localhost:{port}/"),
    ] {
        let (remote, st) = attach(target(&url, None, TOKEN)).await;
        assert_eq!(
            reason(&st),
            format!("refusing to send OpenClaw's token to 127.0.0.1:{port}: the socket there belongs to uid {OTHER_UID}, not to this user (uid 0) or root"),
            "{url}"
        );
        drop(remote);
    }

    drop(child.stdin.take());
    let mut rest = String::new();
    out.read_to_string(&mut rest).unwrap();
    let _ = child.wait();
    assert!(
        rest.lines().any(|l| l.trim().ends_with("RECEIVED 0 0")),
        "the other user's listener got no connection and no byte: {rest}"
    );
}

/// ClawPair's gateway with its self-signed certificate, on every address (TestGateway keeps to
/// loopback).
async fn tls_gateway_on_every_address(
    st: &State,
    ip: IpAddr,
) -> (SocketAddr, String, String, ShutdownHandle) {
    let service = st.service();
    service
        .update_settings("test", |s| {
            s.gateway.tls = Some(clawpair_core::config::TlsSettings {
                self_signed: true,
                ..Default::default()
            });
            Ok(())
        })
        .unwrap();
    let service = Arc::new(service);
    let gw = Gateway::bind(
        service.clone(),
        SocketAddr::new(unspecified(ip), 0),
        Limits::default(),
    )
    .await
    .unwrap();
    let fp = gw.tls_fingerprint().expect("TLS on").to_string();
    let at = SocketAddr::new(ip, gw.local_addr().port());
    let handle = gw.shutdown_handle();
    tokio::spawn(gw.run());
    (
        at,
        fp,
        service.settings().gateway.auth.token.clone(),
        handle,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wss_to_another_computer_is_attached_only_with_its_pinned_certificate() {
    let Some(ip) = lan_address() else {
        eprintln!("note: this computer has no non-loopback address; the pinned LAN case is covered by the unit tests only");
        return;
    };
    let st = State::new();
    let (at, fp, token, handle) = tls_gateway_on_every_address(&st, ip).await;
    let url = format!("wss://{at}/");

    let colons = fp
        .as_bytes()
        .chunks(2)
        .map(|c| String::from_utf8_lossy(c).to_uppercase())
        .collect::<Vec<_>>()
        .join(":");
    let (remote, status) = attach(target(&url, Some(&colons), &token)).await;
    assert!(matches!(status, Status::Attached { .. }), "{status:?}");
    drop(remote);

    let other = "ab".repeat(32);
    let (remote, status) = attach(target(&url, Some(&other), &token)).await;
    assert!(
        reason(&status).contains("presented a certificate other than the pinned one")
            && reason(&status).contains("the token was not sent"),
        "{status:?}"
    );
    drop(remote);
    handle.shutdown();
}

/// A gateway on this computer that restarts is attached again as soon as it listens, however
/// long it was down: its port is watched in the kernel's tables meanwhile (nothing is sent to it
/// until it listens), and the backoff does not grow while it is simply not there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_local_gateway_that_comes_back_is_attached_again_at_once() {
    let st = State::new();
    let gw = TestGateway::start(st.path()).await;
    let addr = gw.addr;
    let token = gw.token.clone();
    let (remote, status) = attach(target(&format!("ws://{addr}/"), None, &token)).await;
    assert!(matches!(status, Status::Attached { .. }), "{status:?}");
    gw.stop().await;
    // The closed socket is noticed (on a loaded machine, a moment after the stop returns).
    let noticed = tokio::time::Instant::now() + Duration::from_secs(10);
    while matches!(remote.status(), Status::Attached { .. }) {
        assert!(
            tokio::time::Instant::now() < noticed,
            "still attached to a stopped gateway"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Down for several attempts' worth: it stays at the shortest wait.
    let end = tokio::time::Instant::now() + Duration::from_secs(4);
    while tokio::time::Instant::now() < end {
        match remote.status() {
            Status::Down { retry_in_s, .. } => assert!(retry_in_s <= 1, "{:?}", remote.status()),
            Status::Connecting { .. } => {}
            other => panic!("{other:?}"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let service = st.service();
    let back = Gateway::bind(Arc::new(service), addr, Limits::default())
        .await
        .expect("the gateway listens again on its port");
    let handle: ShutdownHandle = back.shutdown_handle();
    let task = tokio::spawn(back.run());
    let listening = std::time::Instant::now();
    while !matches!(remote.status(), Status::Attached { .. }) {
        assert!(
            listening.elapsed() < Duration::from_secs(2),
            "attached again within 2 s of the gateway listening: {:?}",
            remote.status()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(remote);
    handle.shutdown();
    let _ = tokio::time::timeout(WAIT, task).await;
}

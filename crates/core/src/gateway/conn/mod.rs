//! One connection, from TCP accept to close: the upgrade (Origin checked), the challenge, the
//! `connect` request and its decision, an optional wait for the owner, then requests and events.
//! Each stage has its file: `handshake` (accept to a decision), `waiting` (`waitForApproval`),
//! `greet` (hello-ok), `session` (the authenticated connection) and `wire` (reading, sending,
//! refusing and closing).

mod greet;
mod handshake;
mod session;
mod waiting;
mod wire;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;

use super::stream::LimitedStream;
use super::Shared;
pub use greet::HelloFeatures;
use handshake::handshake;

type Ws = WebSocketStream<LimitedStream>;

/// Serves one accepted TCP connection until it closes. `reserved`: it holds one of the slots
/// kept for local clients ([`super::Limits::loopback_reserve`]).
pub async fn serve(
    shared: Arc<Shared>,
    tcp: TcpStream,
    peer: SocketAddr,
    accepted: Instant,
    reserved: bool,
) {
    // The handshake's futures (the upgrade, the connect decision, a wait for the owner, the
    // greeting) are large and short-lived, the session's small and long-lived. Each is boxed
    // and everything else is scoped to the block, so an idle connection holds only its
    // session. (A box made inside the awaiting statement would keep the future's full size
    // here as a temporary; hence the separate statements.)
    let session = {
        let handshake = Box::pin(handshake(shared, tcp, peer, accepted, reserved));
        let Some((conn, ws, grant)) = handshake.await else {
            return;
        };
        let greet = Box::pin(conn.greet(ws, grant));
        let Some(session) = greet.await else {
            return;
        };
        Box::pin(Box::new(session).run())
    };
    session.await;
}

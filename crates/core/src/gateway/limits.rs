//! Every limit of the gateway in one place, with its default and the reason for it.

use std::time::Duration;

use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

/// The longest string field of a `connect` request (ids, names, platform, tokens, …).
pub const MAX_CONNECT_FIELD: usize = 512;
/// Scopes one `connect` may ask for.
pub const MAX_SCOPES: usize = 32;
pub use crate::pairing::scope::MAX_SCOPE_LEN;
/// Bytes a client waiting for the owner's decision (`waitForApproval`) may send meanwhile:
/// room for pings and pongs, not for requests.
pub const WAITING_BUDGET: usize = 16 * 1024;
/// How long the gateway waits for a client to answer its close frame before it drops the
/// socket.
pub const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);
/// A message this large (either way) makes a session give its grown buffers back once it is
/// handled, so an idle session after a 1 MiB frame costs what any idle session costs.
pub const LARGE_FRAME: usize = 16 * 1024;

/// Gateway limits. The defaults are the protocol's (SPEC §5.6); tests shorten the times.
/// The fixed limits of the `connect` request and of closing are the constants above.
#[derive(Debug, Clone)]
pub struct Limits {
    /// From TCP accept to a `connect` answer (covers the HTTP upgrade too).
    pub handshake_timeout: Duration,
    /// Bytes a client may send before it is authenticated: the upgrade request plus one
    /// `connect` frame of at most 64 KiB.
    pub preauth_bytes: usize,
    /// The largest `connect` frame.
    pub max_preauth_frame: usize,
    /// The largest message after hello-ok.
    pub max_message: usize,
    /// Initial read buffer per connection; it grows only for large messages, so an idle
    /// connection costs a few KiB instead of the library's 128 KiB. After a message (in or
    /// out) larger than [`LARGE_FRAME`], the session's buffers are given back.
    pub read_buffer: usize,
    /// Outgoing bytes queued for a slow reader before the connection is dropped.
    pub max_write_buffer: usize,
    pub ping_interval: Duration,
    /// Close when nothing (not even a pong) arrived for this long.
    pub idle_timeout: Duration,
    /// Unauthenticated connections allowed at once from one IP.
    pub max_preauth_per_ip: u32,
    /// Authenticated sessions one paired device may hold at once, over all its roles (as
    /// OpenClaw's apps use it: a phone holds one or two). One more is refused at `connect`.
    pub max_sessions_per_device: usize,
    /// Authenticated sessions one IP (an IPv6 /64) may hold at once, whatever credentials
    /// they used: room for a household behind one NAT, not for one client to take every slot.
    /// Loopback is exempt with `gateway.rateLimit.exemptLoopback`.
    pub max_sessions_per_ip: u32,
    /// How long one write to a client may take before the session is dropped: a client that
    /// stops reading cannot hold its session past a kick or the idle timeout.
    pub write_timeout: Duration,
    /// All connections at once (a guard against file-descriptor exhaustion), the loopback
    /// reserve included.
    pub max_connections: usize,
    /// Of `max_connections`, the slots only a loopback client without forwarded headers may
    /// take (the owner's CLI and app), so a flood from the network or through a local proxy
    /// never locks the owner out.
    pub loopback_reserve: usize,
    /// The most client addresses the failed-authentication and lockout tables hold; beyond
    /// it, the stalest entry is forgotten (an IPv6 client counts per /64).
    pub max_tracked_addresses: usize,
    /// Connections the kernel queues before the gateway accepts them (capped by
    /// `net.core.somaxconn`). The usual 128 overflows when many phones reconnect at once
    /// after a restart: the kernel then answers with SYN cookies and drops handshakes.
    pub accept_backlog: u32,
    /// Device keys the gateway remembers decoded once they signed a `connect` (see
    /// [`crate::pairing::keys`]): a paired device's reconnect then skips the key's decoding.
    /// Past this many it starts again empty, so ever new keys cannot grow it.
    pub max_known_keys: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            handshake_timeout: Duration::from_secs(10),
            preauth_bytes: 64 * 1024 + 16 * 1024,
            max_preauth_frame: 64 * 1024,
            max_message: 1024 * 1024,
            read_buffer: 2048,
            max_write_buffer: 4 * 1024 * 1024,
            ping_interval: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(60),
            max_preauth_per_ip: 32,
            max_sessions_per_device: 8,
            max_sessions_per_ip: 128,
            write_timeout: Duration::from_secs(10),
            max_connections: 20_000,
            loopback_reserve: 64,
            max_tracked_addresses: 16_384,
            accept_backlog: 1024,
            max_known_keys: 4096,
        }
    }
}

impl Limits {
    pub fn ws_config(&self) -> WebSocketConfig {
        WebSocketConfig::default()
            .read_buffer_size(self.read_buffer)
            .write_buffer_size(0)
            .max_write_buffer_size(self.max_write_buffer)
            .max_message_size(Some(self.max_message))
            .max_frame_size(Some(self.max_message))
            .accept_unmasked_frames(false)
    }
}

//! The baseline: a bare tokio-tungstenite server that accepts and echoes, nothing else. It uses
//! the gateway's own buffer sizes (`Limits::ws_config`), so a row's ratio is the protocol's cost
//! (challenge, JSON, signature check, token lookup, per-connection state), not a buffer setting.

use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::Message;

/// Serves until killed; prints the bound address first so the parent can connect.
pub fn run() -> std::process::ExitCode {
    clawpair_core::gateway::raise_fd_limit();
    // The same runtime the headless gateway builds (one worker per core).
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        // The gateway's accept backlog, not tokio's default of 128.
        let socket = TcpSocket::new_v4().expect("socket");
        socket.set_reuseaddr(true).expect("reuseaddr");
        socket.bind("127.0.0.1:0".parse().unwrap()).expect("bind");
        let backlog = clawpair_core::gateway::Limits::default().accept_backlog;
        let listener = socket.listen(backlog).expect("listen");
        println!("{}", listener.local_addr().expect("address"));
        loop {
            match listener.accept().await {
                Ok((tcp, _)) => {
                    tokio::spawn(serve(tcp));
                }
                Err(_) => tokio::time::sleep(std::time::Duration::from_millis(50)).await,
            }
        }
    })
}

async fn serve(tcp: TcpStream) {
    let _ = tcp.set_nodelay(true);
    let config = clawpair_core::gateway::Limits::default().ws_config();
    let Ok(mut ws) = tokio_tungstenite::accept_async_with_config(tcp, Some(config)).await else {
        return;
    };
    while let Some(Ok(msg)) = ws.next().await {
        let echo = matches!(msg, Message::Text(_) | Message::Binary(_));
        if matches!(msg, Message::Close(_)) || (echo && ws.send(msg).await.is_err()) {
            return;
        }
    }
}

//! The load: WebSocket clients that speak the protocol (device handshakes, pipelined requests)
//! or only echo (the baseline), the drivers that run them closed-loop, open-loop or held idle,
//! and the latency statistics.

use std::collections::VecDeque;
use std::future::Future;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clawpair_core::client::{connect_params, ConnectOptions};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};
use tokio_tungstenite::WebSocketStream;

pub type Ws = WebSocketStream<TcpStream>;

/// How long any single step may take before it counts as an error.
const STEP_TIMEOUT: Duration = Duration::from_secs(10);

/// Small read buffers: the harness holds thousands of sockets itself.
fn client_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(4096)
        .max_message_size(Some(16 << 20))
}

/// TCP connect and WebSocket upgrade.
pub async fn open(addr: SocketAddr) -> Result<Ws, String> {
    let tcp = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let _ = tcp.set_nodelay(true);
    let (ws, _) = tokio_tungstenite::client_async_with_config(
        format!("ws://{addr}/"),
        tcp,
        Some(client_config()),
    )
    .await
    .map_err(|e| format!("upgrade: {e}"))?;
    Ok(ws)
}

/// The next text frame.
pub async fn next_text(ws: &mut Ws) -> Result<String, String> {
    next_utf8(ws).await.map(|t| t.as_str().to_owned())
}

/// The next text frame, as received (no copy).
async fn next_utf8(ws: &mut Ws) -> Result<Utf8Bytes, String> {
    loop {
        match tokio::time::timeout(STEP_TIMEOUT, ws.next()).await {
            Err(_) => return Err("timed out waiting for a frame".into()),
            Ok(Some(Ok(Message::Text(t)))) => return Ok(t),
            Ok(Some(Ok(Message::Close(f)))) => return Err(format!("closed: {f:?}")),
            Ok(Some(Ok(_))) => continue,
            Ok(Some(Err(e))) => return Err(e.to_string()),
            Ok(None) => return Err("closed".into()),
        }
    }
}

/// The full protocol handshake: challenge, signed `connect`, hello-ok.
pub async fn handshake(addr: SocketAddr, opts: &ConnectOptions) -> Result<Ws, String> {
    let mut ws = open(addr).await?;
    let challenge = next_utf8(&mut ws).await?;
    let nonce = challenge_nonce(&challenge)?;
    ws.send(Message::text(connect_frame(opts, &nonce)))
        .await
        .map_err(|e| e.to_string())?;
    hello(&mut ws).await?;
    Ok(ws)
}

/// A `connect` request frame, as [`handshake`] sends it.
pub fn connect_frame(opts: &ConnectOptions, nonce: &str) -> String {
    let params = connect_params(opts, nonce);
    json!({ "type": "req", "id": "c", "method": "connect", "params": params }).to_string()
}

/// [`handshake`] for a client without a device identity, whose `connect` signs nothing and so
/// is the same frame every time: `connect` is made once, by the caller, and not per connection.
/// What a load generator spends per connection it takes from the server it measures, on a
/// machine they share.
pub async fn handshake_unsigned(addr: SocketAddr, connect: Utf8Bytes) -> Result<Ws, String> {
    let mut ws = open(addr).await?;
    let challenge = next_utf8(&mut ws).await?;
    if !challenge.contains("\"connect.challenge\"") {
        return Err(format!("not a challenge: {}", challenge.as_str()));
    }
    ws.send(Message::Text(connect))
        .await
        .map_err(|e| e.to_string())?;
    hello(&mut ws).await?;
    Ok(ws)
}

/// The nonce of a `connect.challenge` event.
fn challenge_nonce(frame: &str) -> Result<String, String> {
    let v: Value = serde_json::from_str(frame).map_err(|e| format!("{e}: {frame}"))?;
    match v["payload"]["nonce"].as_str() {
        Some(n) => Ok(n.to_owned()),
        None => Err(format!("no nonce in {frame}")),
    }
}

/// Waits for `hello-ok`; anything else is the refusal.
async fn hello(ws: &mut Ws) -> Result<(), String> {
    let hello = next_utf8(ws).await?;
    if !hello.contains("\"hello-ok\"") {
        return Err(format!("connect refused: {}", hello.as_str()));
    }
    Ok(())
}

/// The baseline's equivalent: upgrade, one message echoed.
pub async fn echo_handshake(addr: SocketAddr) -> Result<Ws, String> {
    let mut ws = open(addr).await?;
    ws.send(Message::text("hello"))
        .await
        .map_err(|e| e.to_string())?;
    let back = next_text(&mut ws).await?;
    if back != "hello" {
        return Err(format!("echo said {back:?}"));
    }
    Ok(ws)
}

/// Sends one request and returns the answer to it (events before it are skipped).
pub async fn request(ws: &mut Ws, req: Message) -> Result<String, String> {
    ws.send(req).await.map_err(|e| e.to_string())?;
    loop {
        let text = next_text(ws).await?;
        if !text.contains(r#""type":"event""#) {
            return Ok(text);
        }
    }
}

/// The same connection over fresh buffers: tungstenite keeps a write buffer as large as the
/// largest message sent, which the harness, holding a thousand connections after a 1 MiB
/// message each, need not keep. Only once a request is answered, when nothing else is on its
/// way (a node gets no events, and its first `tick` comes after 30 s).
pub async fn renewed(ws: Ws) -> Ws {
    WebSocketStream::from_raw_socket(ws.into_inner(), Role::Client, Some(client_config())).await
}

/// Drops a connection with a reset (`SO_LINGER` 0), so a storm of short connections does not
/// leave tens of thousands of sockets in TIME_WAIT on loopback. Both servers get the same.
pub fn reset(ws: Ws) {
    let fd = ws.get_ref().as_raw_fd();
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: a valid socket fd owned by `ws`, and a correctly sized option value.
    unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
    drop(ws);
}

/// Outcomes and latencies of one measured run.
#[derive(Default)]
pub struct Run {
    pub ok: u64,
    pub errors: u64,
    pub first_error: Option<String>,
    pub elapsed: Duration,
    pub latencies: Vec<Duration>,
    /// The server's CPU time over the run, where it was measured (whole process tree).
    pub server_cpu: Duration,
}

impl Run {
    pub fn rate(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
    /// The `p`-th percentile latency (0–100), nearest rank.
    pub fn pct(&mut self, p: f64) -> Duration {
        if self.latencies.is_empty() {
            return Duration::ZERO;
        }
        self.latencies.sort_unstable();
        let rank = ((p / 100.0) * self.latencies.len() as f64).ceil() as usize;
        self.latencies[rank.clamp(1, self.latencies.len()) - 1]
    }
    /// The server's CPU time per successful attempt.
    pub fn server_cpu_each(&self) -> Duration {
        self.server_cpu / self.ok.max(1) as u32
    }
    /// Rounds of one measurement as one run: the rate of the median round (its count, time and
    /// server CPU), the latencies and errors of every round.
    pub fn median_of(mut rounds: Vec<Run>) -> Run {
        rounds.sort_by(|a, b| a.rate().total_cmp(&b.rate()));
        let (ok, elapsed, server_cpu) = rounds
            .get(rounds.len() / 2)
            .map(|r| (r.ok, r.elapsed, r.server_cpu))
            .unwrap_or_default();
        let mut all = Run::default();
        for r in rounds {
            all.absorb(r);
        }
        all.ok = ok;
        all.elapsed = elapsed;
        all.server_cpu = server_cpu;
        all
    }
    fn absorb(&mut self, other: Run) {
        self.ok += other.ok;
        self.errors += other.errors;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
        self.latencies.extend(other.latencies);
    }
    fn record(&mut self, r: Result<Duration, String>) {
        match r {
            Ok(lat) => {
                self.ok += 1;
                self.latencies.push(lat);
            }
            Err(e) => self.error(e),
        }
    }
    fn error(&mut self, e: String) {
        self.errors += 1;
        self.first_error.get_or_insert(e);
    }
}

/// `n` attempts one after another, each reset once it is done, each allowed `limit`: one
/// connection at a time, so that what a server does for each is the same from run to run.
pub async fn one_by_one<F, Fut>(n: usize, limit: Duration, attempt: F) -> Run
where
    F: Fn(u64) -> Fut,
    Fut: Future<Output = Result<Ws, String>>,
{
    let mut run = Run::default();
    let start = Instant::now();
    for i in 0..n as u64 {
        let t0 = Instant::now();
        match tokio::time::timeout(limit, attempt(i)).await {
            Ok(Ok(ws)) => {
                run.record(Ok(t0.elapsed()));
                reset(ws);
            }
            Ok(Err(e)) => run.error(e),
            Err(_) => run.error(format!("not done within {} s", limit.as_secs())),
        }
    }
    run.elapsed = start.elapsed();
    run
}

/// `conc` clients, each connecting, completing `attempt`, and resetting, back to back for `dur`.
pub async fn closed_loop<F, Fut>(conc: usize, dur: Duration, attempt: F) -> Run
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Ws, String>> + Send,
{
    let attempt = Arc::new(attempt);
    let start = Instant::now();
    let deadline = start + dur;
    let mut tasks = JoinSet::new();
    for c in 0..conc as u64 {
        let attempt = attempt.clone();
        tasks.spawn(async move {
            let mut run = Run::default();
            let mut i = c;
            while Instant::now() < deadline {
                let t0 = Instant::now();
                match attempt(i).await {
                    Ok(ws) => {
                        run.latencies.push(t0.elapsed());
                        run.ok += 1;
                        reset(ws);
                    }
                    Err(e) => run.error(e),
                }
                i += conc as u64;
            }
            run
        });
    }
    let mut total = Run::default();
    while let Some(r) = tasks.join_next().await {
        total.absorb(r.expect("client task"));
    }
    total.elapsed = start.elapsed();
    total
}

/// Starts `attempt` at a fixed `rate` per second for `dur`, whatever the server does (open
/// loop). Latency counts from the scheduled start, so a stalled server cannot hide its queue.
pub async fn open_loop<F, Fut>(rate: f64, dur: Duration, attempt: F) -> Run
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Ws, String>> + Send + 'static,
{
    let attempt = Arc::new(attempt);
    let n = (rate * dur.as_secs_f64()).max(1.0) as u64;
    let start = tokio::time::Instant::now();
    let mut tasks = JoinSet::new();
    let mut run = Run::default();
    for i in 0..n {
        let at = start + Duration::from_secs_f64(i as f64 / rate);
        tokio::time::sleep_until(at).await;
        let attempt = attempt.clone();
        tasks.spawn(async move {
            let r = attempt(i).await;
            let lat = at.elapsed();
            // Done with it at once: an open loop must not pile up open sockets.
            r.map(|ws| {
                reset(ws);
                lat
            })
        });
        // Collect finished ones as we go, so the set stays small.
        while let Some(r) = tasks.try_join_next() {
            run.record(r.expect("client task"));
        }
    }
    while let Some(r) = tasks.join_next().await {
        run.record(r.expect("client task"));
    }
    run.elapsed = start.elapsed();
    run
}

/// Opens `n` connections, at most `conc` handshakes at a time (so the accept backlog is never
/// what limits), and returns them open.
pub async fn hold<F, Fut>(n: usize, conc: usize, attempt: F) -> (Vec<Ws>, Run)
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Ws, String>> + Send + 'static,
{
    let attempt = Arc::new(attempt);
    let gate = Arc::new(Semaphore::new(conc));
    let start = Instant::now();
    let mut tasks = JoinSet::new();
    for i in 0..n as u64 {
        let permit = gate.clone().acquire_owned().await.expect("semaphore");
        let attempt = attempt.clone();
        tasks.spawn(async move {
            let r = attempt(i).await;
            drop(permit);
            r
        });
    }
    let mut held = Vec::with_capacity(n);
    let mut run = Run::default();
    while let Some(r) = tasks.join_next().await {
        match r.expect("client task") {
            Ok(ws) => {
                run.ok += 1;
                held.push(ws);
            }
            Err(e) => run.error(e),
        }
    }
    run.elapsed = start.elapsed();
    (held, run)
}

/// Answers counted by what they said.
#[derive(Default, Debug, Clone)]
pub struct Answers {
    pub expected: u64,
    pub other: u64,
    pub first_other: Option<String>,
}

/// Sends requests on `sockets` for `dur`, keeping `window` in flight on each, and times each
/// answer (the gateway answers a socket's requests in order). `make(socket, i)` builds the
/// i-th request; an answer containing `expect` counts as expected.
pub async fn pipelined(
    sockets: Vec<Ws>,
    window: usize,
    dur: Duration,
    make: impl Fn(usize, u64) -> String + Send + Sync + 'static,
    expect: &'static str,
) -> (Run, Answers) {
    let make = Arc::new(make);
    let start = Instant::now();
    let deadline = start + dur;
    let mut tasks = JoinSet::new();
    for (s, ws) in sockets.into_iter().enumerate() {
        let make = make.clone();
        tasks.spawn(async move {
            let (mut sink, mut stream) = ws.split();
            let credit = Arc::new(Semaphore::new(window));
            let sent_at = Arc::new(Mutex::new(VecDeque::<Instant>::new()));
            let sent = Arc::new(AtomicU64::new(0));
            let done = Arc::new(AtomicBool::new(false));
            let writer = {
                let (credit, sent_at, sent, done) =
                    (credit.clone(), sent_at.clone(), sent.clone(), done.clone());
                async move {
                    let mut i = 0u64;
                    while Instant::now() < deadline {
                        let permit = match credit.clone().try_acquire_owned() {
                            Ok(p) => p,
                            Err(_) => {
                                // About to wait for answers: push out what is queued first.
                                if sink.flush().await.is_err() {
                                    break;
                                }
                                credit.clone().acquire_owned().await.expect("semaphore")
                            }
                        };
                        permit.forget();
                        sent_at.lock().expect("lock").push_back(Instant::now());
                        if sink.feed(Message::text(make(s, i))).await.is_err() {
                            break;
                        }
                        sent.fetch_add(1, Ordering::SeqCst);
                        i += 1;
                    }
                    let _ = sink.flush().await;
                    done.store(true, Ordering::SeqCst);
                    sink
                }
            };
            let reader = async move {
                let mut run = Run::default();
                let mut answers = Answers::default();
                let mut received = 0u64;
                loop {
                    if done.load(Ordering::SeqCst) && received >= sent.load(Ordering::SeqCst) {
                        break;
                    }
                    let msg = match tokio::time::timeout(STEP_TIMEOUT, stream.next()).await {
                        // Events are not answers (a bridge should get none anyway).
                        Ok(Some(Ok(Message::Text(t))))
                            if t.as_str().contains(r#""type":"event""#) =>
                        {
                            continue
                        }
                        Ok(Some(Ok(Message::Text(t)))) => t,
                        Ok(Some(Ok(_))) => continue,
                        Ok(other) => {
                            run.error(format!("socket ended: {other:?}"));
                            break;
                        }
                        Err(_) => {
                            // The writer may have finished without sending more.
                            if done.load(Ordering::SeqCst) {
                                run.error("answers missing at the end".into());
                                break;
                            }
                            continue;
                        }
                    };
                    received += 1;
                    if let Some(t0) = sent_at.lock().expect("lock").pop_front() {
                        run.latencies.push(t0.elapsed());
                    }
                    if msg.as_str().contains(expect) {
                        answers.expected += 1;
                        run.ok += 1;
                    } else {
                        answers.other += 1;
                        answers.first_other.get_or_insert(msg.as_str().to_owned());
                    }
                    credit.add_permits(1);
                }
                (run, answers)
            };
            let (_sink, (run, answers)) = tokio::join!(writer, reader);
            (run, answers)
        });
    }
    let mut total = Run::default();
    let mut all = Answers::default();
    while let Some(r) = tasks.join_next().await {
        let (run, a) = r.expect("client task");
        total.absorb(run);
        all.expected += a.expected;
        all.other += a.other;
        if all.first_other.is_none() {
            all.first_other = a.first_other;
        }
    }
    total.elapsed = start.elapsed();
    (total, all)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clawpair_core::clock::SystemClock;
    use clawpair_core::gateway::{Gateway, Limits};
    use clawpair_core::service::Service;
    use clawpair_core::store::StatePaths;

    /// The operator's `connect`, made once and sent on every connection, is taken by a real
    /// gateway each time; a wrong token in it is refused, and the refusal says so.
    #[tokio::test]
    async fn one_unsigned_connect_frame_serves_every_connection() {
        let dir = std::env::temp_dir().join(format!("clawpair-bench-load-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let (service, _) =
            Service::open(StatePaths::new(dir.join("state")), Arc::new(SystemClock)).unwrap();
        let token = service.settings().gateway.auth.token.clone();
        let gw = Gateway::bind(
            Arc::new(service),
            "127.0.0.1:0".parse().unwrap(),
            Limits::default(),
        )
        .await
        .unwrap();
        let addr = gw.local_addr();
        let stop = gw.shutdown_handle();
        let served = tokio::spawn(gw.run());

        let frame = |token: &str| {
            let opts = ConnectOptions::operator(&format!("ws://{addr}/"), token, "bench");
            Utf8Bytes::from(connect_frame(&opts, ""))
        };
        let good = frame(&token);
        for _ in 0..3 {
            reset(handshake_unsigned(addr, good.clone()).await.unwrap());
        }
        let refused = handshake_unsigned(addr, frame("not-the-token"))
            .await
            .err()
            .unwrap();
        assert!(refused.starts_with("connect refused"), "{refused}");

        stop.shutdown();
        served.await.unwrap();
        let _ = std::fs::remove_dir_all(&dir);
    }
}

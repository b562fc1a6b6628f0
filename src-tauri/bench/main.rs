//! `clawpair-bench`: measures the gateway against baselines measured in the same run and prints
//! one table (docs/BENCHMARKS.md). The gateway and the baseline echo server each run as a child
//! process on loopback (this binary re-executes itself into `clawpair gateway`'s own entry
//! point, so the build measured is always the current one); this process is the load.
//!
//! `--quick` finishes well under a minute; without it, the full run holds 10,000 connections.
//! `--peer openclaw` measures OpenClaw's own gateway beside ClawPair's instead (`versus`), and
//! `--gui` the tray app (`gui`).

mod echo;
#[cfg(all(feature = "gui", feature = "devtools"))]
mod gui;
mod load;
mod peer;
mod proc;
mod rows;
mod versus;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use clawpair::client::{Auth, Client, ConnectOptions, Identity};
use clawpair::clock::SystemClock;
use clawpair::service::{DeviceAsk, Service};
use clawpair::store::StatePaths;

use load::Run;
use proc::Server;
use rows::{Row, Table};

/// Hidden first arguments that turn this binary into one of the servers under test.
pub const CHILD_GATEWAY: &str = "__gateway";
pub const CHILD_ECHO: &str = "__echo";
pub const CHILD_CLI: &str = "__cli";

#[derive(Parser, Debug)]
#[command(
    name = "clawpair-bench",
    about = "ClawPair gateway benchmarks, each beside a baseline measured in the same run"
)]
struct Args {
    /// A short run (well under a minute): fewer connections, shorter windows
    #[arg(long)]
    quick: bool,
    /// Idle connections to hold (default: 1,000 quick, 10,000 full)
    #[arg(long, value_name = "N")]
    connections: Option<usize>,
    /// Keep the temporary state directory and the gateway's log
    #[arg(long)]
    keep: bool,
    /// Run one phase only (for profiling)
    #[arg(long, value_enum, value_name = "PHASE")]
    only: Option<Phase>,
    /// Measure the tray app instead: request-to-notification latency and idle CPU/RSS (needs a
    /// build with the `gui` and `devtools` features, a D-Bus session and a display)
    #[arg(long)]
    gui: bool,
    /// Measure ClawPair against another gateway, side by side in the same run: `openclaw`
    /// (OpenClaw as scripts/openclaw-peer.sh installs it; run through scripts/bench-openclaw.sh,
    /// which provides the loopback-only network namespace it needs)
    #[arg(long, value_enum, value_name = "PEER")]
    peer: Option<Peer>,
    /// Where OpenClaw is installed (default: $CLAWPAIR_OPENCLAW_HOME, else
    /// ~/.cache/clawpair/openclaw-peer)
    #[arg(long, value_name = "DIR")]
    openclaw_home: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Peer {
    Openclaw,
}

/// How long and how hard each measurement runs.
#[derive(Debug, Clone)]
pub struct Plan {
    pub quick: bool,
    pub only: Option<Phase>,
    /// Devices paired before the run (their tokens are reused round-robin).
    pub devices: usize,
    /// Allowed senders on the allowlist.
    pub allowed: usize,
    /// Concurrent clients in the closed-loop handshake runs.
    pub handshake_clients: usize,
    pub warmup: Duration,
    pub rate_window: Duration,
    pub open_loop_window: Duration,
    pub idle_connections: usize,
    /// Handshakes in flight while opening the idle connections.
    pub opening_pace: usize,
    pub idle_cpu_window: Duration,
    /// Sockets and requests in flight per socket for `channel.inbound`.
    pub inbound_sockets: usize,
    pub inbound_window: usize,
    pub inbound_time: Duration,
    pub challenge_time: Duration,
    pub approvals: usize,
}

impl Plan {
    fn new(a: &Args) -> Plan {
        let quick = a.quick;
        let pick = |q: u64, f: u64| Duration::from_millis(if quick { q } else { f });
        Plan {
            quick,
            only: a.only,
            devices: if quick { 32 } else { 256 },
            allowed: 1_000,
            handshake_clients: 32,
            warmup: pick(500, 1_500),
            rate_window: pick(2_000, 10_000),
            open_loop_window: pick(2_000, 10_000),
            idle_connections: a.connections.unwrap_or(if quick { 1_000 } else { 10_000 }),
            opening_pace: 64,
            idle_cpu_window: pick(2_000, 10_000),
            inbound_sockets: 4,
            inbound_window: 32,
            inbound_time: pick(2_000, 10_000),
            challenge_time: pick(1_500, 5_000),
            approvals: if quick { 100 } else { 500 },
        }
    }
}

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().collect();
    match argv.get(1).map(String::as_str) {
        Some(CHILD_GATEWAY) => {
            return child_gateway(
                argv.get(2).map(String::as_str),
                argv.get(3).map(String::as_str),
            )
        }
        Some(CHILD_CLI) => return child_cli(&argv[2..]),
        Some(CHILD_ECHO) => return echo::run(),
        #[cfg(all(feature = "gui", feature = "devtools"))]
        Some(gui::CHILD_APP) => return gui::child_app(argv.get(2).map(String::as_str)),
        _ => {}
    }
    let args = Args::parse();
    clawpair::gateway::raise_fd_limit();
    let plan = Plan::new(&args);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    if args.gui {
        return run_gui(&rt, &plan);
    }
    if let Some(Peer::Openclaw) = args.peer {
        return run_versus(&rt, &args);
    }
    match rt.block_on(run(plan, args.keep)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("clawpair-bench: {e}");
            ExitCode::from(1)
        }
    }
}

#[cfg(all(feature = "gui", feature = "devtools"))]
fn run_gui(rt: &tokio::runtime::Runtime, plan: &Plan) -> ExitCode {
    match rt.block_on(gui::run(plan)) {
        Ok(t) => {
            println!("{}", t.render());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("clawpair-bench --gui: {e}");
            ExitCode::from(1)
        }
    }
}

#[cfg(not(all(feature = "gui", feature = "devtools")))]
fn run_gui(_rt: &tokio::runtime::Runtime, _plan: &Plan) -> ExitCode {
    eprintln!("clawpair-bench --gui needs a build with the gui and devtools features: cargo run --release --features devtools --bin clawpair-bench -- --gui");
    ExitCode::from(2)
}

/// `--peer openclaw`: the table of ClawPair beside OpenClaw.
fn run_versus(rt: &tokio::runtime::Runtime, args: &Args) -> ExitCode {
    let result = peer::OpenClaw::find(args.openclaw_home.as_deref()).and_then(|oc| {
        let plan = versus::VsPlan::new(args.quick, args.connections);
        rt.block_on(versus::run(plan, &oc, args.keep))
    });
    match result {
        Ok(mut t) => {
            t.machine = proc::machine();
            println!("{}", t.render());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("clawpair-bench --peer openclaw: {e}");
            ExitCode::from(1)
        }
    }
}

/// The gateway child: exactly what `clawpair --state-dir DIR gateway --port PORT` runs (port 0
/// unless given).
fn child_gateway(dir: Option<&str>, port: Option<&str>) -> ExitCode {
    let Some(dir) = dir else {
        eprintln!("{CHILD_GATEWAY} needs a state directory");
        return ExitCode::from(2);
    };
    let port = port.unwrap_or("0");
    let cli =
        clawpair::cli::Cli::parse_from(["clawpair", "--state-dir", dir, "gateway", "--port", port]);
    clawpair::logging::init_cli();
    clawpair::cli::run(cli)
}

/// The CLI child: `clawpair ARGS…`, the same entry point as the `clawpair` binary.
fn child_cli(args: &[String]) -> ExitCode {
    let cli = clawpair::cli::Cli::parse_from(
        std::iter::once("clawpair".to_string()).chain(args.iter().cloned()),
    );
    clawpair::logging::init_cli();
    clawpair::cli::run(cli)
}

/// Pairs `n` devices through the service (request, owner approval, token issue: the same
/// calls the gateway makes), so every benchmark handshake is a paired device's reconnect.
fn pair_devices(service: &Service, n: usize) -> Result<Vec<ConnectOptions>, String> {
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let id = Identity::generate();
        let ask = DeviceAsk {
            device_id: id.device_id(),
            public_key: id.public_key(),
            fingerprint: id.fingerprint(),
            display_name: format!("bench phone {i}"),
            platform: std::env::consts::OS.into(),
            device_family: "computer".into(),
            client_id: "clawpair-node".into(),
            client_mode: "node".into(),
            role: "node".into(),
            scopes: vec![],
            remote_ip: "127.0.0.1".into(),
            reason: "not-paired".into(),
            is_repair: false,
            regains: false,
            setup_code: None,
        };
        let (rec, _) = service.device_request(ask).map_err(|e| e.to_string())?;
        service
            .device_approve(&rec.request.request_id, "bench")
            .map_err(|e| e.to_string())?;
        let (token, _) = service
            .token_issue_on_connect(&id.device_id(), "node")
            .map_err(|e| e.to_string())?;
        out.push(ConnectOptions::node(
            "ws://unused/",
            id,
            Auth::DeviceToken(token),
        ));
    }
    Ok(out)
}

fn allowed_sender(i: u64, allowed: usize) -> String {
    format!("user-{}", i % allowed as u64)
}

/// Puts `n` senders on the `bench` channel's allowlist in one write.
fn allow_senders(paths: &StatePaths, n: usize) -> Result<(), String> {
    let file = clawpair::pairing::dm::AllowFile {
        allow_from: (0..n as u64).map(|i| allowed_sender(i, n)).collect(),
        ..Default::default()
    };
    let channel = clawpair::store::ChannelName::from_static("bench");
    let account = clawpair::store::AccountId::DEFAULT;
    clawpair::store::fs::write_json(&paths.allow_file(&channel, &account), &file)
        .map_err(|e| e.to_string())
}

struct Setup {
    dir: PathBuf,
    paths: StatePaths,
    admin_token: String,
    /// Paired devices, ready to reconnect with their tokens.
    devices: Arc<Vec<ConnectOptions>>,
}

fn setup(plan: &Plan) -> Result<Setup, String> {
    let dir = std::env::temp_dir().join(format!("clawpair-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let paths = StatePaths::new(dir.join("state"));
    let (service, _) =
        Service::open(paths.clone(), Arc::new(SystemClock)).map_err(|e| e.to_string())?;
    let devices = pair_devices(&service, plan.devices)?;
    allow_senders(&paths, plan.allowed)?;
    Ok(Setup {
        admin_token: service.settings().gateway.auth.token.clone(),
        dir,
        paths,
        devices: Arc::new(devices),
    })
}

async fn run(plan: Plan, keep: bool) -> Result<(), String> {
    let s = setup(&plan)?;
    let gateway = proc::start_gateway(s.paths.root(), &s.dir.join("gateway.log"))?;
    let echo = match proc::start_echo() {
        Ok(e) => e,
        Err(e) => {
            gateway.stop();
            return Err(e);
        }
    };
    let result = measure(&plan, &s, &gateway, &echo).await;
    gateway.stop();
    echo.stop();
    let mut table = result?;
    table.machine = proc::machine();
    println!("{}", table.render());
    if keep {
        eprintln!("state and gateway log kept in {}", s.dir.display());
    } else {
        let _ = std::fs::remove_dir_all(&s.dir);
    }
    Ok(())
}

/// One attempt of a load: a connection that ends authenticated (or echoed), or why not.
type Attempt = Pin<Box<dyn Future<Output = Result<load::Ws, String>> + Send>>;

/// A paired device's reconnect, the devices taken round-robin.
fn device_attempt(
    addr: SocketAddr,
    devices: Arc<Vec<ConnectOptions>>,
) -> impl Fn(u64) -> Attempt + Send + Sync + 'static {
    move |i| {
        let d = devices[(i as usize) % devices.len()].clone();
        Box::pin(async move { load::handshake(addr, &d).await })
    }
}

/// The baseline's connection: upgrade and one echoed message.
fn echo_attempt(addr: SocketAddr) -> impl Fn(u64) -> Attempt + Send + Sync + 'static {
    move |_| Box::pin(load::echo_handshake(addr))
}

/// What running `f` cost the server, the load generator and the machine.
async fn with_cpu<T>(server: &Server, f: impl Future<Output = T>) -> (T, proc::Usage) {
    let meter = proc::Meter::start(server);
    let out = f.await;
    (out, meter.stop())
}

/// The phases, in the order they run. Idle comes first, on fresh servers, so its memory
/// reading is not blurred by what the storms leave in the allocator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Phase {
    Idle,
    Handshakes,
    Inbound,
    Challenges,
    Approve,
}

async fn measure(plan: &Plan, s: &Setup, gw: &Server, echo: &Server) -> Result<Table, String> {
    let mut t = Table::new(plan);
    let on = |p: Phase| plan.only.is_none_or(|o| o == p);
    let idle_rows = if on(Phase::Idle) {
        idle_phase(plan, s, gw, echo, &mut t).await
    } else {
        vec![]
    };
    if on(Phase::Handshakes) {
        handshake_phase(plan, s, gw, echo, &mut t).await;
    }
    // Shown after the handshake rows, though measured first.
    for r in idle_rows {
        t.push(r);
    }
    if on(Phase::Inbound) {
        inbound_phase(plan, s, gw, &mut t).await?;
    }
    if on(Phase::Challenges) {
        challenge_phase(plan, s, gw, &mut t).await?;
    }
    if on(Phase::Approve) {
        approve_phase(plan, s, gw, &mut t).await?;
    }
    t.push(Row::notification());
    Ok(t)
}

/// Idle connections: memory per connection, and CPU while they sit there.
async fn idle_phase(plan: &Plan, s: &Setup, gw: &Server, echo: &Server, t: &mut Table) -> Vec<Row> {
    let n = plan.idle_connections;
    eprintln!("idle: {n} connections on each server");
    let base = idle(echo, n, plan, echo_attempt(echo.addr)).await;
    let ours = idle(gw, n, plan, device_attempt(gw.addr, s.devices.clone())).await;
    t.note_errors("idle device connections", &ours.run);
    t.note_errors("idle echo connections", &base.run);
    vec![
        Row::idle_held(&ours, &base, n),
        Row::idle_rss(&ours, &base),
        Row::idle_cpu(&ours, &base, plan.idle_cpu_window),
    ]
}

/// Handshakes, closed loop (as many as the clients can complete), then open loop at half that
/// rate: the latency a client sees when the gateway is busy but not saturated.
async fn handshake_phase(plan: &Plan, s: &Setup, gw: &Server, echo: &Server, t: &mut Table) {
    let devices = s.devices.clone();
    let clients = plan.handshake_clients;
    eprintln!("handshakes: warm-up, then {:?} each", plan.rate_window);
    load::closed_loop(clients, plan.warmup, echo_attempt(echo.addr)).await;
    load::closed_loop(
        clients,
        plan.warmup,
        device_attempt(gw.addr, devices.clone()),
    )
    .await;
    let (mut base, base_cpu) = with_cpu(
        echo,
        load::closed_loop(clients, plan.rate_window, echo_attempt(echo.addr)),
    )
    .await;
    let (mut ours, our_cpu) = with_cpu(
        gw,
        load::closed_loop(
            clients,
            plan.rate_window,
            device_attempt(gw.addr, devices.clone()),
        ),
    )
    .await;
    t.note_errors("device handshakes", &ours);
    t.note_errors("echo connections", &base);
    t.note_cpu("device handshakes", &our_cpu, ours.ok);
    t.note_cpu("echo connections (baseline)", &base_cpu, base.ok);
    let (sign, verify) = rows::crypto_floor(2_000);
    t.note(format!(
        "Ed25519 on this machine (thread CPU time): the device signs in {sign:.0} µs, the gateway verifies in {verify:.0} µs"
    ));
    t.push(Row::handshake_rate(&ours, &base, clients));
    t.push(Row::handshake_latency(&mut ours, &mut base));

    let rate = (ours.rate() / 2.0).max(1.0);
    eprintln!(
        "open loop at {rate:.0}/s for {:?} each",
        plan.open_loop_window
    );
    let mut base_ol = load::open_loop(rate, plan.open_loop_window, echo_attempt(echo.addr)).await;
    let mut ours_ol = load::open_loop(
        rate,
        plan.open_loop_window,
        device_attempt(gw.addr, devices),
    )
    .await;
    t.note_errors("open-loop handshakes", &ours_ol);
    t.note_errors("open-loop echo connections", &base_ol);
    t.push(Row::open_loop(&mut ours_ol, &mut base_ol, rate));
}

/// `channel.inbound` for allowed senders, pipelined on a few bridge sockets.
async fn inbound_phase(plan: &Plan, s: &Setup, gw: &Server, t: &mut Table) -> Result<(), String> {
    eprintln!(
        "channel.inbound: allowed senders for {:?}",
        plan.inbound_time
    );
    let raw = rows::raw_decisions(plan.allowed, Duration::from_millis(500));
    let sockets = bridges(gw.addr, &s.admin_token, plan.inbound_sockets).await?;
    let allowed = plan.allowed;
    let ((mut run, answers), cpu) = with_cpu(
        gw,
        load::pipelined(
            sockets,
            plan.inbound_window,
            plan.inbound_time,
            move |sock, i| {
                inbound_req(
                    i,
                    "bench",
                    &allowed_sender(i * 7 + sock as u64 * 131, allowed),
                )
            },
            "\"decision\":\"allow\"",
        ),
    )
    .await;
    t.note_answers("allowed-sender decisions", &answers);
    t.note_errors("allowed-sender decisions", &run);
    t.note_cpu("allowed-sender decisions", &cpu, run.ok);
    t.push(Row::decisions(&mut run, raw, plan));
    Ok(())
}

/// First-time senders: each answer is a challenge with a new code, written to disk.
async fn challenge_phase(plan: &Plan, s: &Setup, gw: &Server, t: &mut Table) -> Result<(), String> {
    eprintln!(
        "channel.inbound: first-time senders for {:?}",
        plan.challenge_time
    );
    let raw = rows::raw_atomic_writes(
        &s.dir.join("baseline"),
        plan.inbound_sockets,
        plan.challenge_time,
    )
    .await;
    let sockets = bridges(gw.addr, &s.admin_token, plan.inbound_sockets).await?;
    let ((run, answers), cpu) = with_cpu(
        gw,
        load::pipelined(
            sockets,
            plan.inbound_window,
            plan.challenge_time,
            // At most 3 pending requests per channel (the default cap), so spread them.
            |sock, i| inbound_req(i, &format!("c{sock}-{}", i / 3), &format!("new-{sock}-{i}")),
            "\"decision\":\"challenge\"",
        ),
    )
    .await;
    t.note_answers("first-time challenges", &answers);
    t.note_errors("first-time challenges", &run);
    t.note_cpu("first-time challenges", &cpu, run.ok);
    t.push(Row::challenges(&run, &raw, plan));
    Ok(())
}

/// `pairing.approve`, one at a time, each durable before it is answered.
async fn approve_phase(plan: &Plan, s: &Setup, gw: &Server, t: &mut Table) -> Result<(), String> {
    eprintln!("pairing.approve: {} approvals", plan.approvals);
    let mut raw = rows::raw_atomic_writes_seq(&s.dir.join("baseline-seq"), plan.approvals).await;
    let mut run = approve_run(gw.addr, &s.admin_token, plan.approvals).await?;
    t.note_errors("approvals", &run);
    t.push(Row::approve(&mut run, &mut raw));
    Ok(())
}

fn inbound_req(i: u64, channel: &str, sender: &str) -> String {
    serde_json::json!({
        "type": "req", "id": i, "method": "channel.inbound",
        "params": { "channel": channel, "senderId": sender, "text": "hello" }
    })
    .to_string()
}

/// Channel-bridge sockets: the admin token, asking only for `channel.ingest` (a bridge does
/// not need the operator events, and so gets none).
async fn bridges(addr: SocketAddr, token: &str, n: usize) -> Result<Vec<load::Ws>, String> {
    let mut opts = ConnectOptions::operator("ws://unused/", token, "bench-bridge");
    opts.scopes = vec!["channel.ingest".into()];
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(load::handshake(addr, &opts).await?);
    }
    Ok(out)
}

/// Creates a request (a first-time sender's `channel.inbound`), then times its approval.
async fn approve_run(addr: SocketAddr, token: &str, n: usize) -> Result<Run, String> {
    let url = format!("ws://{addr}/");
    let mut c = Client::connect(&ConnectOptions::operator(&url, token, "bench"), |_, _| {})
        .await
        .map_err(|e| e.to_string())?;
    let mut run = Run::default();
    let start = std::time::Instant::now();
    for i in 0..n {
        let channel = format!("ap-{}", i / 3);
        let d = c
            .call(
                "channel.inbound",
                serde_json::json!({ "channel": channel, "senderId": format!("asker-{i}") }),
            )
            .await
            .map_err(|e| e.to_string())?;
        let code = d["code"].as_str().unwrap_or_default().to_string();
        let t0 = std::time::Instant::now();
        match c
            .call(
                "pairing.approve",
                serde_json::json!({ "channel": channel, "code": code }),
            )
            .await
        {
            Ok(_) => {
                run.latencies.push(t0.elapsed());
                run.ok += 1;
            }
            Err(e) => {
                run.errors += 1;
                run.first_error.get_or_insert(e.to_string());
            }
        }
    }
    run.elapsed = start.elapsed();
    c.close().await;
    Ok(run)
}

/// What holding `n` idle connections cost a server.
pub struct Idle {
    pub run: Run,
    pub held: usize,
    pub rss_before_kib: u64,
    pub rss_after_kib: u64,
    pub cpu: Duration,
}

impl Idle {
    pub fn kib_per_conn(&self) -> f64 {
        (self.rss_after_kib.saturating_sub(self.rss_before_kib)) as f64 / self.held.max(1) as f64
    }
}

async fn idle<F, Fut>(server: &Server, n: usize, plan: &Plan, attempt: F) -> Idle
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<load::Ws, String>> + Send + 'static,
{
    // Warm up first (runtime threads, allocator arenas), so the reading before is not missing
    // what any first connection costs.
    let attempt = Arc::new(attempt);
    let a = attempt.clone();
    let (warm, _) = load::hold(plan.opening_pace * 4, plan.opening_pace, move |i| a(i)).await;
    warm.into_iter().for_each(load::reset);
    settle().await;
    let rss_before_kib = server.rss_kib();
    let (held, run) = load::hold(n, plan.opening_pace, move |i| attempt(i)).await;
    settle().await;
    let rss_after_kib = server.rss_kib();
    let before = server.cpu();
    tokio::time::sleep(plan.idle_cpu_window).await;
    let cpu = server.cpu().saturating_sub(before);
    let count = held.len();
    for ws in held {
        load::reset(ws);
    }
    Idle {
        run,
        held: count,
        rss_before_kib,
        rss_after_kib,
        cpu,
    }
}

/// Lets closed sockets and finished tasks be cleaned up before a reading.
async fn settle() {
    tokio::time::sleep(Duration::from_millis(1_000)).await;
}

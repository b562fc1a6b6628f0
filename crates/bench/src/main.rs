//! `clawpair-bench`: measures the gateway against baselines measured in the same run and prints
//! one table (docs/BENCHMARKS.md). The gateway and the baseline echo server each run as a child
//! process on loopback (this binary re-executes itself into `clawpair gateway`'s own entry
//! point, so the build measured is always the current one); this process is the load.
//!
//! `--quick` finishes well under a minute; without it, the full run holds 10,000 connections.
//! `--peer openclaw` measures OpenClaw's own gateway beside ClawPair's instead (`versus`),
//! `--gui` the tray app (`gui`), and `--instructions` adds the instructions each connection
//! costs, counted under callgrind (`instructions`).

mod companion;
mod echo;
#[cfg(feature = "gui")]
mod gui;
mod instructions;
mod load;
mod peer;
mod proc;
mod rows;
mod versus;

use std::ffi::OsString;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use clawpair_core::client::{Auth, Client, ConnectOptions, Identity};
use clawpair_core::clock::SystemClock;
use clawpair_core::pairing::device::PairedDevice;
use clawpair_core::service::Service;
use clawpair_core::store::StatePaths;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

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
    /// Also count the instructions per device handshake, per admin-token connect and per echo
    /// connection under valgrind's callgrind (`--only instructions` for these alone)
    #[arg(long)]
    instructions: bool,
    /// Measure the tray app instead: request-to-notification latency and idle CPU/RSS (needs a
    /// build with the `gui` feature, a D-Bus session and a display)
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
    /// With `--peer openclaw`: only the companion table (ClawPair attached to OpenClaw beside
    /// OpenClaw's own Linux companion), not the gateways side by side
    #[arg(long)]
    companion: bool,
    /// Run the main gateway (the one of the idle, handshake and request phases) under this
    /// command, split at spaces: a heap profiler's preload, e.g. `env
    /// LD_PRELOAD=/usr/lib/heaptrack/libheaptrack_preload.so DUMP_HEAPTRACK_OUTPUT=/tmp/gw.raw`.
    /// The command must exec the gateway in place (its pid is how it is recognised)
    #[arg(long, value_name = "COMMAND")]
    wrap_gateway: Option<String>,
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
    /// Whether to count instructions under callgrind (`--instructions`, `--only instructions`).
    pub instructions: bool,
    /// Devices paired before the run (their tokens are reused round-robin): enough that no
    /// device is asked for more sessions than the gateway allows one ([`devices_needed`]).
    pub devices: usize,
    /// Allowed senders on the allowlist.
    pub allowed: usize,
    /// Concurrent clients in the closed-loop handshake runs.
    pub handshake_clients: usize,
    pub warmup: Duration,
    pub rate_window: Duration,
    pub open_loop_window: Duration,
    pub idle_connections: usize,
    /// Idle connections held after each sent one ~1 MiB message: as many as the quick run's
    /// plain idle row holds, in both runs. A few hundred would mostly land in the memory the
    /// warm-up's closed sessions left free, and read as almost nothing.
    pub large_connections: usize,
    /// Handshakes in flight while opening the idle connections.
    pub opening_pace: usize,
    /// Large messages in flight while opening those connections: one, so that the free memory
    /// a burst of them leaves in the allocator is not counted as what each session keeps.
    pub large_pace: usize,
    /// How long the gateway's CPU is read while the idle connections sit there. The full run
    /// covers two whole keepalive intervals (`Limits::ping_interval`, 30 s), in each of which
    /// every session sends its tick and ping once, so the reading is what idling costs, not
    /// whether the window happened to catch the ticks (and the kernel's 10 ms accounting tick
    /// is a sixth of the 0.1% target, not a third); the quick run's 2 s only say it is not
    /// busy.
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
        let handshake_clients = 32;
        let idle_connections = a.connections.unwrap_or(if quick { 1_000 } else { 10_000 });
        let large_connections = 1_000;
        Plan {
            quick,
            only: a.only,
            instructions: a.instructions || a.only == Some(Phase::Instructions),
            devices: devices_needed(
                if quick { 32 } else { 256 },
                idle_connections.max(large_connections),
                handshake_clients,
            ),
            allowed: 1_000,
            handshake_clients,
            warmup: pick(500, 1_500),
            rate_window: pick(2_000, 10_000),
            open_loop_window: pick(2_000, 10_000),
            idle_connections,
            large_connections,
            opening_pace: 64,
            large_pace: 1,
            idle_cpu_window: if quick {
                Duration::from_millis(2_000)
            } else {
                clawpair_core::gateway::Limits::default().ping_interval * 2
            },
            inbound_sockets: 4,
            inbound_window: 32,
            inbound_time: pick(2_000, 10_000),
            challenge_time: pick(1_500, 5_000),
            approvals: if quick { 100 } else { 500 },
        }
    }
}

/// Devices to pair: at least `least`, enough that `held` connections spread round-robin put
/// no more on one device than the gateway lets it hold (`Limits::max_sessions_per_device`),
/// and a multiple of the closed-loop `clients`, so that each device is only ever used by one
/// of them (client `c` takes the attempts `c`, `c + clients`, …: the devices `≡ c` modulo
/// `clients`, see [`clients_per_device`]).
fn devices_needed(least: usize, held: usize, clients: usize) -> usize {
    let per_device = clawpair_core::gateway::Limits::default().max_sessions_per_device;
    least
        .max(held.div_ceil(per_device.max(1)))
        .next_multiple_of(clients.max(1))
}

/// The most closed-loop clients that ever use one device when `clients` take the attempts
/// round-robin over `devices` devices: those congruent modulo gcd(clients, devices).
pub fn clients_per_device(clients: usize, devices: usize) -> usize {
    fn gcd(a: usize, b: usize) -> usize {
        if b == 0 {
            a
        } else {
            gcd(b, a % b)
        }
    }
    clients / gcd(clients, devices).max(1)
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
        #[cfg(feature = "gui")]
        Some(gui::CHILD_APP) => return gui::child_app(argv.get(2).map(String::as_str)),
        _ => {}
    }
    let args = Args::parse();
    clawpair_core::gateway::raise_fd_limit();
    let plan = Plan::new(&args);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.spawn(proc::stop_servers_on_signal());
    if args.gui {
        return run_gui(&rt, &plan);
    }
    if let Some(Peer::Openclaw) = args.peer {
        return run_versus(&rt, &args);
    }
    let wrap: Vec<OsString> = args
        .wrap_gateway
        .as_deref()
        .unwrap_or_default()
        .split_whitespace()
        .map(OsString::from)
        .collect();
    match rt.block_on(run(plan, args.keep, &wrap)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("clawpair-bench: {e}");
            ExitCode::from(1)
        }
    }
}

#[cfg(feature = "gui")]
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

#[cfg(not(feature = "gui"))]
fn run_gui(_rt: &tokio::runtime::Runtime, _plan: &Plan) -> ExitCode {
    eprintln!("clawpair-bench --gui needs a build with the gui feature: cargo run --release -p clawpair-bench --features gui -- --gui");
    ExitCode::from(2)
}

/// `--peer openclaw`: the table of ClawPair beside OpenClaw, then the companion table (ClawPair
/// attached to OpenClaw beside OpenClaw's own Linux companion); `--companion`: that one alone.
fn run_versus(rt: &tokio::runtime::Runtime, args: &Args) -> ExitCode {
    let oc = match peer::OpenClaw::find(args.openclaw_home.as_deref()) {
        Ok(oc) => oc,
        Err(e) => {
            eprintln!("clawpair-bench --peer openclaw: {e}");
            return ExitCode::from(1);
        }
    };
    if !args.companion {
        let plan = versus::VsPlan::new(args.quick, args.connections);
        match rt.block_on(versus::run(plan, &oc, args.keep)) {
            Ok(mut t) => {
                t.machine = proc::machine();
                println!("{}", t.render());
            }
            Err(e) => {
                eprintln!("clawpair-bench --peer openclaw: {e}");
                return ExitCode::from(1);
            }
        }
    }
    let dir = std::env::temp_dir().join(format!("clawpair-bench-companion-{}", std::process::id()));
    let result = std::fs::create_dir_all(&dir)
        .map_err(|e| format!("{}: {e}", dir.display()))
        .and_then(|()| rt.block_on(companion::run(&oc, args.quick, &dir)));
    if args.keep || result.is_err() {
        eprintln!("state and logs kept in {}", dir.display());
    } else {
        let _ = std::fs::remove_dir_all(&dir);
    }
    match result {
        Ok(mut t) => {
            t.machine = proc::machine();
            println!("{}", t.render());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("clawpair-bench --peer openclaw (companion): {e}");
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
    let cli = clawpair_core::cli::Cli::parse_from([
        "clawpair",
        "--state-dir",
        dir,
        "gateway",
        "--port",
        port,
    ]);
    clawpair_core::logging::init_cli();
    clawpair_core::cli::run(cli)
}

/// The CLI child: `clawpair ARGS…`, the same entry point as the `clawpair` binary.
fn child_cli(args: &[String]) -> ExitCode {
    let cli = clawpair_core::cli::Cli::parse_from(
        std::iter::once("clawpair".to_string()).chain(args.iter().cloned()),
    );
    clawpair_core::logging::init_cli();
    clawpair_core::cli::run(cli)
}

/// Pairs `n` node devices, each with its own token, so every benchmark handshake is a paired
/// device's reconnect. The records are made by the pairing rules the gateway's own approval and
/// token issue apply (`approve_into`, `install_token`), then written in one go
/// (`DeviceStore::add_paired`): going through request, approval and token issue per device
/// would rewrite a growing paired.json three times each, with fsync, for over a thousand
/// devices. Returns the devices ready to reconnect, and their records (for another state
/// directory, [`fresh_gateway`]).
fn pair_devices(
    service: &Service,
    n: usize,
) -> Result<(Vec<ConnectOptions>, Vec<PairedDevice>), String> {
    use clawpair_core::pairing::device::{self, PairedMap, PendingDevice};
    use clawpair_core::pairing::token;
    let now = service.now_ms();
    let mut paired = PairedMap::new();
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let id = Identity::generate();
        let request = PendingDevice {
            request_id: format!("bench-{i}"),
            device_id: id.device_id(),
            public_key: id.public_key(),
            display_name: format!("bench phone {i}"),
            platform: std::env::consts::OS.into(),
            device_family: "computer".into(),
            client_id: "clawpair-node".into(),
            client_mode: "node".into(),
            role: "node".into(),
            scopes: vec![],
            remote_ip: "127.0.0.1".into(),
            fingerprint: id.fingerprint(),
            is_repair: false,
            reason: "not-paired".into(),
            regains: false,
            ts: now,
            extra: Default::default(),
        };
        device::approve_into(&mut paired, &request, now);
        let secret = token::new_token(&mut rand::rngs::OsRng);
        let record = paired
            .get_mut(&request.device_id)
            .ok_or("the approved device is not in the map")?;
        device::install_token(record, &request.role, token::hash_token(&secret), now);
        out.push(ConnectOptions::node(
            "ws://unused/",
            id,
            Auth::DeviceToken(secret),
        ));
    }
    let records: Vec<PairedDevice> = paired.into_values().collect();
    add_paired(service, records.clone())?;
    Ok((out, records))
}

/// Writes paired devices' records in one go; every one must be new.
fn add_paired(service: &Service, records: Vec<PairedDevice>) -> Result<(), String> {
    let n = records.len();
    let (added, kept) = service
        .devices
        .add_paired(records)
        .map_err(|e| e.to_string())?;
    if added.len() != n {
        return Err(format!(
            "paired {} of {n} devices ({} ids already paired)",
            added.len(),
            kept.len()
        ));
    }
    Ok(())
}

fn allowed_sender(i: u64, allowed: usize) -> String {
    format!("user-{}", i % allowed as u64)
}

/// Puts `n` senders on the `bench` channel's allowlist in one write.
fn allow_senders(paths: &StatePaths, n: usize) -> Result<(), String> {
    let file = clawpair_core::pairing::dm::AllowFile {
        allow_from: (0..n as u64).map(|i| allowed_sender(i, n)).collect(),
        ..Default::default()
    };
    let channel = clawpair_core::store::ChannelName::from_static("bench");
    let account = clawpair_core::store::AccountId::DEFAULT;
    clawpair_core::store::fs::write_json(&paths.allow_file(&channel, &account), &file)
        .map_err(|e| e.to_string())
}

struct Setup {
    dir: PathBuf,
    paths: StatePaths,
    admin_token: String,
    /// Paired devices, ready to reconnect with their tokens.
    devices: Arc<Vec<ConnectOptions>>,
    /// Their records, as the gateway keeps them.
    paired: Vec<PairedDevice>,
}

fn setup(plan: &Plan) -> Result<Setup, String> {
    let dir = std::env::temp_dir().join(format!("clawpair-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let paths = StatePaths::new(dir.join("state"));
    let (service, _) =
        Service::open(paths.clone(), Arc::new(SystemClock)).map_err(|e| e.to_string())?;
    let (devices, paired) = pair_devices(&service, plan.devices)?;
    allow_senders(&paths, plan.allowed)?;
    Ok(Setup {
        admin_token: service.settings().gateway.auth.token.clone(),
        dir,
        paths,
        devices: Arc::new(devices),
        paired,
    })
}

/// Another gateway, started fresh on a state directory of its own (`name`, beside the main
/// one) that holds the same paired devices: for a memory reading that nothing measured before
/// has blurred (sessions closed earlier leave free memory the next ones reuse).
fn fresh_gateway(s: &Setup, name: &str, env: &[(&str, &str)]) -> Result<Server, String> {
    let paths = StatePaths::new(s.dir.join(name));
    let (service, _) =
        Service::open(paths.clone(), Arc::new(SystemClock)).map_err(|e| e.to_string())?;
    add_paired(&service, s.paired.clone())?;
    drop(service);
    proc::start_gateway_with(paths.root(), &s.dir.join(format!("{name}.log")), env)
}

async fn run(plan: Plan, keep: bool, wrap: &[OsString]) -> Result<(), String> {
    let s = setup(&plan)?;
    let log = s.dir.join("gateway.log");
    let gateway = proc::start_gateway_under(s.paths.root(), &log, wrap, proc::GATEWAY_READY)?;
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

/// An operator's connect with the gateway's admin token, as a script or bridge makes it.
fn admin_attempt(addr: SocketAddr, token: &str) -> impl Fn(u64) -> Attempt + Send + Sync + 'static {
    let opts = ConnectOptions::operator(&format!("ws://{addr}/"), token, "bench");
    operator_attempt(addr, opts)
}

/// The same connect, `opts`, every time (an operator's, without a device identity).
fn operator_attempt(
    addr: SocketAddr,
    opts: ConnectOptions,
) -> impl Fn(u64) -> Attempt + Send + Sync + 'static {
    let connect = Utf8Bytes::from(load::connect_frame(&opts, ""));
    move |_| Box::pin(load::handshake_unsigned(addr, connect.clone()))
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
    /// Only with `--instructions` or `--only instructions`: it needs valgrind, and takes its
    /// own servers.
    Instructions,
}

async fn measure(plan: &Plan, s: &Setup, gw: &Server, echo: &Server) -> Result<Table, String> {
    let mut t = Table::new(plan);
    let on = |p: Phase| plan.only.is_none_or(|o| o == p);
    let idle_rows = if on(Phase::Idle) {
        idle_phase(plan, s, gw, echo, &mut t).await?
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
    if plan.instructions {
        instructions_phase(s, &mut t).await?;
    }
    t.push(Row::notification());
    Ok(t)
}

/// Instructions per connection under callgrind, on servers of their own; without valgrind the
/// rows are left out, with a note that says why.
async fn instructions_phase(s: &Setup, t: &mut Table) -> Result<(), String> {
    if let Err(why) = instructions::available() {
        eprintln!("instructions: skipped, valgrind is needed ({why})");
        t.note(format!(
            "instruction counts skipped: they need valgrind and callgrind_control ({why})"
        ));
        return Ok(());
    }
    let c = instructions::count(s).await?;
    eprintln!(
        "instructions: dumps {}, {} and {} (kept with --keep, for callgrind_annotate)",
        c.device.dump.display(),
        c.token.dump.display(),
        c.echo.dump.display()
    );
    t.note_errors("counted device handshakes", &c.device.run);
    t.note_errors("counted admin-token connects", &c.token.run);
    t.note_errors("counted echo connections", &c.echo.run);
    t.note(format!(
        "instructions (callgrind `Ir`, server process only, all its threads): {} over {} device handshakes, {} over {} admin-token connects, {} over {} echo connections",
        rows::thousands(c.device.instructions as f64),
        c.device.run.ok,
        rows::thousands(c.token.instructions as f64),
        c.token.run.ok,
        rows::thousands(c.echo.instructions as f64),
        c.echo.run.ok,
    ));
    t.push(Row::instructions_device(&c));
    t.push(Row::instructions_token(&c));
    Ok(())
}

/// Idle connections: memory per connection, and CPU while they sit there; then, on a fresh
/// gateway, memory per connection once each has carried one ~1 MiB message.
async fn idle_phase(
    plan: &Plan,
    s: &Setup,
    gw: &Server,
    echo: &Server,
    t: &mut Table,
) -> Result<Vec<Row>, String> {
    let n = plan.idle_connections;
    let window = plan.idle_cpu_window;
    eprintln!("idle: {n} connections on each server");
    let opening = || Opening {
        n,
        pace: plan.opening_pace,
        cpu_window: window,
    };
    let base = idle(echo, plan, opening(), echo_attempt(echo.addr)).await;
    let devices = s.devices.clone();
    let ours = idle(gw, plan, opening(), device_attempt(gw.addr, devices)).await;
    t.note_errors("idle device connections", &ours.run);
    t.note_errors("idle echo connections", &base.run);
    let m = plan.large_connections;
    eprintln!("idle: {m} connections after one ~1 MiB message each, on a fresh gateway");
    // Measured like the row above, on a gateway as fresh as that one was: on this one, the
    // sessions just closed have left free memory that new ones would reuse.
    let large = idle_after_large(plan, s, "state-large", &[]).await?;
    t.note_errors("idle device connections after a 1 MiB message", &large.run);
    // The same again with large buffers mapped and unmapped on their own: glibc otherwise
    // serves them from its heap once one was freed, and the sessions' small allocations then
    // land in the freed space and keep it resident. What is left is what the sessions keep.
    let mapped = [("MALLOC_MMAP_THRESHOLD_", "131072")];
    let apart = idle_after_large(plan, s, "state-large-mapped", &mapped).await?;
    t.note_errors("the same, large buffers mapped apart", &apart.run);
    t.note(format!(
        "RSS per idle connection after one 1 MiB message, with glibc's mmap threshold pinned at its default 128 KiB (`MALLOC_MMAP_THRESHOLD_=131072` for that gateway only, so large buffers never enter the heap): {:.1} KiB (VmRSS {} → {} MiB), against {:.1} KiB with the allocator as it is",
        apart.kib_per_conn(),
        apart.rss_before_kib / 1024,
        apart.rss_after_kib / 1024,
        large.kib_per_conn()
    ));
    Ok(vec![
        Row::idle_held(&ours, &base, n),
        Row::idle_rss(&ours, &base),
        Row::idle_rss_after_large(&large, &ours, &base, LARGE_MESSAGE),
        Row::idle_cpu(&ours, &base, window),
    ])
}

/// Idle connections that each sent one large message first, held on a fresh gateway (state
/// directory `name`, `env` added to its environment); the messages go one at a time, so that
/// a burst of them does not leave free memory in the allocator to blur the reading.
async fn idle_after_large(
    plan: &Plan,
    s: &Setup,
    name: &str,
    env: &[(&str, &str)],
) -> Result<Idle, String> {
    let gw = fresh_gateway(s, name, env)?;
    let opening = Opening {
        n: plan.large_connections,
        pace: plan.large_pace,
        cpu_window: Duration::ZERO,
    };
    let attempt = large_message_attempt(gw.addr, s.devices.clone());
    let large = idle(&gw, plan, opening, attempt).await;
    gw.stop();
    Ok(large)
}

/// The size of the request each connection of the large-message row sends: 1 KiB under the
/// gateway's largest message (`Limits::max_message`, 1 MiB).
const LARGE_MESSAGE: usize = 1024 * 1024 - 1024;

/// A `node.event` request of exactly [`LARGE_MESSAGE`] bytes (a node may report events; the
/// gateway answers without looking at the params).
fn large_event() -> String {
    let head = r#"{"type":"req","id":"large","method":"node.event","params":{"blob":""#;
    let tail = r#""}}"#;
    let blob = "x".repeat(LARGE_MESSAGE - head.len() - tail.len());
    format!("{head}{blob}{tail}")
}

/// A paired device's reconnect that then sends one ~1 MiB `node.event` and reads its answer,
/// the devices taken round-robin.
fn large_message_attempt(
    addr: SocketAddr,
    devices: Arc<Vec<ConnectOptions>>,
) -> impl Fn(u64) -> Attempt + Send + Sync + 'static {
    // One copy, shared by every connection's message.
    let body = Utf8Bytes::from(large_event());
    move |i| {
        let d = devices[(i as usize) % devices.len()].clone();
        let body = body.clone();
        Box::pin(async move {
            let mut ws = load::handshake(addr, &d).await?;
            let answer = load::request(&mut ws, Message::Text(body)).await?;
            if !answer.contains(r#""ok":true"#) {
                let end = answer.len().min(300);
                return Err(format!("node.event refused: {}", &answer[..end]));
            }
            Ok(load::renewed(ws).await)
        })
    }
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

    // The operator's connect with the admin token (no device identity), on the same clients.
    load::closed_loop(clients, plan.warmup, admin_attempt(gw.addr, &s.admin_token)).await;
    let (admin, admin_cpu) = with_cpu(
        gw,
        load::closed_loop(
            clients,
            plan.rate_window,
            admin_attempt(gw.addr, &s.admin_token),
        ),
    )
    .await;
    t.note_errors("admin-token connects", &admin);
    t.note_cpu("admin-token connects", &admin_cpu, admin.ok);
    t.push(Row::admin_rate(&admin, &base, clients));

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

/// How [`idle`] opens the connections it holds.
struct Opening {
    /// Connections held for the reading.
    n: usize,
    /// Handshakes (and whatever else `attempt` does) in flight at a time.
    pace: usize,
    /// How long to read the server's CPU for while they sit there.
    cpu_window: Duration,
}

/// Holds connections made by `attempt` after a warm-up of the same (closed again before the
/// reading), reads the server's memory before and after, then its CPU while they sit there.
async fn idle<F, Fut>(server: &Server, plan: &Plan, open: Opening, attempt: F) -> Idle
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<load::Ws, String>> + Send + 'static,
{
    // Warm up first (runtime threads, allocator arenas), so the reading before is not missing
    // what any first connection costs.
    let attempt = Arc::new(attempt);
    let a = attempt.clone();
    let (warm, _) = load::hold(plan.opening_pace * 4, open.pace, move |i| a(i)).await;
    warm.into_iter().for_each(load::reset);
    settle().await;
    let rss_before_kib = server.rss_kib();
    let (held, run) = load::hold(open.n, open.pace, move |i| attempt(i)).await;
    settle().await;
    let rss_after_kib = server.rss_kib();
    // The connections' own deferred work (the gateway writes the devices' last-seen times
    // a moment after they connect, and again for those that came during that write) is over
    // before idling is read.
    tokio::time::sleep(DEFERRED_WORK).await;
    let before = server.cpu();
    tokio::time::sleep(open.cpu_window).await;
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

/// How long after the idle connections opened (and a [`settle`]) the gateway may still be
/// recording their last-seen times: two of its batches.
const DEFERRED_WORK: Duration = clawpair_core::gateway::LAST_SEEN_DELAY.saturating_mul(2);

/// Lets closed sockets and finished tasks be cleaned up before a reading.
async fn settle() {
    tokio::time::sleep(Duration::from_millis(1_000)).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn most_per_device(held: usize, devices: usize) -> usize {
        held.div_ceil(devices)
    }

    #[test]
    fn no_device_is_asked_for_more_sessions_than_the_gateway_allows() {
        let max = clawpair_core::gateway::Limits::default().max_sessions_per_device;
        for (least, held) in [(32, 1_000), (256, 10_000), (32, 50), (256, 20_000)] {
            let devices = devices_needed(least, held, 32);
            assert!(devices >= least);
            assert!(most_per_device(held, devices) <= max, "{held} on {devices}");
            assert_eq!(clients_per_device(32, devices), 1, "{devices} devices");
        }
        // `--peer openclaw`: 16 clients over 8 (quick) or 24 (full) devices.
        let vs = [
            versus::VsPlan::new(true, None),
            versus::VsPlan::new(false, None),
        ];
        for plan in vs {
            let per = clients_per_device(plan.handshake_clients, plan.devices);
            assert!(per <= max, "{per} clients on one device");
        }
    }

    #[test]
    fn the_large_message_is_as_long_as_it_says_and_within_the_gateway_limit() {
        let m = large_event();
        assert_eq!(m.len(), LARGE_MESSAGE);
        assert!(m.len() <= clawpair_core::gateway::Limits::default().max_message);
        let v: serde_json::Value = serde_json::from_str(&m).expect("JSON");
        assert_eq!(v["method"], "node.event");
    }
}

//! `--peer openclaw`: ClawPair's gateway and OpenClaw's, side by side, driven by the same
//! client code in the same run. Each measurement alternates between the two, several times,
//! and reports medians; the ratio says how many times better (or worse) ClawPair did.
//!
//! Both gateways are fresh: ClawPair on a new state directory, OpenClaw on a new home with
//! token auth and loopback devices left for the owner to approve (`autoApproveLocal: false`),
//! so a new device waits for approval on both, as it does for a user.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clawpair_core::client::{Auth, Client, ClientError, ConnectOptions, Identity};
use clawpair_core::clock::SystemClock;
use clawpair_core::service::Service;
use clawpair_core::store::StatePaths;
use serde_json::json;

use crate::load::{self, Run};
use crate::peer::{self, OpenClaw};
use crate::proc::{self, ProcessRun, Server};
use crate::rows::{Row, Table};

mod rows;
use rows::{
    held_of, judged, kib, mib, of_runs, row_cpu_each, row_latency, row_memory, row_rate, row_time,
    Goal,
};

/// How long and how often: `--quick` stays well under two minutes with OpenClaw's start-up.
pub struct VsPlan {
    pub quick: bool,
    /// Gateway starts timed, per contender.
    pub starts: usize,
    /// Alternating rounds of each rate measurement, and how long each round lasts.
    pub rounds: usize,
    pub window: Duration,
    pub concurrency: [usize; 2],
    pub handshake_clients: usize,
    /// Devices paired through the owner's approval (each one an approve-latency sample). The
    /// device handshakes take them round-robin: with 16 clients, each device is used by two
    /// at most (`crate::clients_per_device`), well within the sessions the gateway allows one.
    pub devices: usize,
    pub idle_connections: usize,
    pub opening_pace: usize,
    /// Whole-process runs of each CLI command.
    pub cli_runs: usize,
}

impl VsPlan {
    pub fn new(quick: bool, connections: Option<usize>) -> VsPlan {
        VsPlan {
            quick,
            starts: if quick { 1 } else { 3 },
            rounds: if quick { 3 } else { 5 },
            window: Duration::from_millis(if quick { 1_000 } else { 3_000 }),
            concurrency: [4, 16],
            handshake_clients: 16,
            devices: if quick { 8 } else { 24 },
            idle_connections: connections.unwrap_or(1_000),
            opening_pace: 32,
            cli_runs: if quick { 2 } else { 5 },
        }
    }
}

/// The admin token both gateways are given (a fresh ClawPair makes its own).
const OPENCLAW_TOKEN: &str = "bench-openclaw-token-0123456789abcdef";

/// One of the two gateways under test, running.
struct Contender {
    name: &'static str,
    server: Server,
    url: String,
    token: String,
    /// ClawPair's state directory, or OpenClaw's home.
    home: PathBuf,
    /// Paired devices, ready to reconnect with their tokens.
    devices: Arc<Vec<ConnectOptions>>,
}

impl Contender {
    fn addr(&self) -> SocketAddr {
        self.server.addr
    }
    /// The operator every client here is: the admin token, OpenClaw's generic client id.
    fn operator(&self) -> ConnectOptions {
        let mut o = ConnectOptions::operator(&self.url, &self.token, "gateway-client");
        o.client_mode = "backend".into();
        o
    }
}

/// What starting a gateway took: until its first `connect.challenge`, and its memory then.
struct Start {
    time: Duration,
    rss_kib: u64,
}

pub async fn run(plan: VsPlan, oc: &OpenClaw, keep: bool) -> Result<Table, String> {
    peer::check_loopback_only()?;
    let dir = std::env::temp_dir().join(format!("clawpair-bench-vs-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut t = Table::versus(plan.quick, &format!("OpenClaw {}", oc.version));
    let result = contest(&plan, oc, &dir, &mut t).await;
    if keep || result.is_err() {
        eprintln!("state and logs kept in {}", dir.display());
    } else {
        let _ = std::fs::remove_dir_all(&dir);
    }
    result.map(|()| t)
}

async fn contest(plan: &VsPlan, oc: &OpenClaw, dir: &Path, t: &mut Table) -> Result<(), String> {
    // Start-up, alternating; the last start of each is the gateway measured from then on.
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    let mut live: (Option<Contender>, Option<Contender>) = (None, None);
    for round in 0..plan.starts {
        let last = round + 1 == plan.starts;
        eprintln!(
            "start-up {}/{}: ClawPair, then OpenClaw",
            round + 1,
            plan.starts
        );
        let (c, s) = start_clawpair(&dir.join(format!("clawpair-{round}"))).await?;
        ours.push(s);
        let (o, s) = match start_openclaw(oc, &dir.join(format!("openclaw-{round}"))).await {
            Ok(v) => v,
            Err(e) => {
                c.server.stop();
                return Err(e);
            }
        };
        theirs.push(s);
        if last {
            live = (Some(c), Some(o));
        } else {
            c.server.stop();
            o.server.stop();
        }
    }
    let (Some(mut cp), Some(mut ocg)) = live else {
        return Err("no gateway was started".into());
    };
    let result = measure(plan, oc, &mut cp, &mut ocg, &ours, &theirs, t).await;
    cp.server.stop();
    ocg.server.stop();
    result
}

async fn measure(
    plan: &VsPlan,
    install: &OpenClaw,
    cp: &mut Contender,
    oc: &mut Contender,
    ours: &[Start],
    theirs: &[Start],
    t: &mut Table,
) -> Result<(), String> {
    // OpenClaw goes on loading after its first challenge (plugins, catalogues, workers):
    // "at rest" is once it says it is ready and a few seconds have passed.
    wait_ready(oc).await?;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let rest = (cp.server.tree_rss_kib(), oc.server.tree_rss_kib());
    let times = medians(ours, theirs, |s| s.time);
    let rss = medians(ours, theirs, |s| s.rss_kib);
    t.push(row_time(
        &format!(
            "start-up to the first `connect.challenge` ({})",
            of_runs(ours.len(), "start")
        ),
        times.0,
        times.1,
    ));
    t.push(row_memory(
        "resident memory at the first challenge (process tree)",
        rss.0,
        rss.1,
        None,
    ));
    t.push(row_memory(
        "resident memory at rest, idle after start-up (process tree)",
        rest.0,
        rest.1,
        Some(20.0),
    ));

    for &conc in &plan.concurrency {
        eprintln!(
            "admin-token connects, {conc} clients: {} rounds of {:?} each",
            plan.rounds, plan.window
        );
        let (mut a, mut b) = alternate(plan, conc, cp, oc, admin_attempt).await;
        note_errors(t, &format!("admin-token connects ({conc} clients)"), &a, &b);
        t.push(row_rate(
            &format!("admin-token connects/s, {conc} clients (closed loop)"),
            &a,
            &b,
        ));
        t.push(row_cpu_each(
            &format!("gateway CPU per admin-token connect, {conc} clients (process tree, the median round's)"),
            &a,
            &b,
        ));
        t.push(row_latency(
            &format!("admin-token connect latency p50 / p99, {conc} clients"),
            &mut a,
            &mut b,
        ));
    }

    eprintln!(
        "pairing {} devices on each, through the owner's approval",
        plan.devices
    );
    let (mut ap_ours, mut ap_theirs) = (Run::default(), Run::default());
    let (mut dev_ours, mut dev_theirs) = (Vec::new(), Vec::new());
    let mut admin_ours = admin_client(cp).await?;
    let mut admin_theirs = admin_client(oc).await?;
    for i in 0..plan.devices {
        pair_one(&mut admin_ours, cp, i, &mut ap_ours, &mut dev_ours).await;
        pair_one(&mut admin_theirs, oc, i, &mut ap_theirs, &mut dev_theirs).await;
    }
    admin_ours.close().await;
    admin_theirs.close().await;
    note_errors(t, "pairing through approval", &ap_ours, &ap_theirs);
    cp.devices = Arc::new(dev_ours);
    oc.devices = Arc::new(dev_theirs);

    if cp.devices.is_empty() || oc.devices.is_empty() {
        t.note("device handshakes: not measured, no device could be paired on both".into());
    } else {
        eprintln!(
            "device handshakes, {} clients: {} rounds of {:?} each",
            plan.handshake_clients, plan.rounds, plan.window
        );
        let (mut a, mut b) = alternate(plan, plan.handshake_clients, cp, oc, device_attempt).await;
        note_errors(t, "device handshakes", &a, &b);
        t.push(row_rate(
            &format!(
                "device handshakes/s (Ed25519-signed `connect` with a device token), {} clients",
                plan.handshake_clients
            ),
            &a,
            &b,
        ));
        t.push(row_cpu_each(
            "gateway CPU per device handshake (process tree, the median round's)",
            &a,
            &b,
        ));
        t.push(row_latency(
            &format!(
                "device handshake latency p50 / p99, {} clients",
                plan.handshake_clients
            ),
            &mut a,
            &mut b,
        ));
    }

    eprintln!(
        "{} idle authenticated connections on each",
        plan.idle_connections
    );
    let idle_ours = idle(plan, cp).await;
    let idle_theirs = idle(plan, oc).await;
    note_errors(t, "idle connections", &idle_ours.run, &idle_theirs.run);
    t.push(Row {
        metric: "idle authenticated connections held (admin token)".into(),
        ours: held_of(idle_ours.held, plan.idle_connections),
        baseline: held_of(idle_theirs.held, plan.idle_connections),
        ratio: "—".into(),
        target: "—".into(),
        met: "—".into(),
    });
    t.push(Row {
        metric: format!(
            "resident memory per idle authenticated connection (process tree, {} held; ClawPair {} → {}, OpenClaw {} → {})",
            crate::rows::thousands(plan.idle_connections as f64),
            mib(idle_ours.before_kib),
            mib(idle_ours.after_kib),
            mib(idle_theirs.before_kib),
            mib(idle_theirs.after_kib)
        ),
        ours: kib(idle_ours.kib_per_conn()),
        baseline: kib(idle_theirs.kib_per_conn()),
        ..judged(idle_ours.kib_per_conn(), idle_theirs.kib_per_conn(), Goal::AtMost(20.0))
    });
    // The marginal figure of a garbage-collected heap moves with when it last collected; this
    // one is what holding them takes, the gateway included.
    let all_in = |i: &IdleVs| i.after_kib as f64 / i.held.max(1) as f64;
    t.push(Row {
        metric: format!(
            "resident memory with {} idle authenticated connections held, per connection (the whole process tree ÷ connections)",
            crate::rows::thousands(plan.idle_connections as f64)
        ),
        ours: kib(all_in(&idle_ours)),
        baseline: kib(all_in(&idle_theirs)),
        ..judged(all_in(&idle_ours), all_in(&idle_theirs), Goal::AtMost(20.0))
    });

    eprintln!("the CLI as whole processes, {} runs each", plan.cli_runs);
    cli_rows(plan, install, cp, oc, t)?;

    t.push(row_latency(
        &format!(
            "approve latency p50 / p99: a new device's request on the socket → the owner approves → the device is connected ({} devices)",
            plan.devices
        ),
        &mut ap_ours,
        &mut ap_theirs,
    ));
    Ok(())
}

/// A fresh ClawPair state directory (its admin token made as a first run makes it), the
/// gateway started on a free port and timed to its first challenge.
async fn start_clawpair(state: &Path) -> Result<(Contender, Start), String> {
    let paths = StatePaths::new(state.to_path_buf());
    let (service, _) =
        Service::open(paths.clone(), Arc::new(SystemClock)).map_err(|e| e.to_string())?;
    let token = service.settings().gateway.auth.token.clone();
    drop(service);
    let port = peer::free_port()?;
    let log = state.join("bench-gateway.log");
    let mut server = proc::spawn_gateway_on(state, &log, port)?;
    let start = match until_challenge(&mut server, &log).await {
        Ok(s) => s,
        Err(e) => {
            server.stop();
            return Err(e);
        }
    };
    let c = Contender {
        name: "ClawPair",
        url: format!("ws://{}", server.addr),
        server,
        token,
        home: state.to_path_buf(),
        devices: Arc::new(Vec::new()),
    };
    Ok((c, start))
}

async fn start_openclaw(oc: &OpenClaw, home: &Path) -> Result<(Contender, Start), String> {
    let port = peer::free_port()?;
    let mut server = oc.start_gateway(home, port, OPENCLAW_TOKEN)?;
    let start = match until_challenge(&mut server, &home.join("gateway.log")).await {
        Ok(s) => s,
        Err(e) => {
            server.stop();
            return Err(e);
        }
    };
    let c = Contender {
        name: "OpenClaw",
        url: format!("ws://{}", server.addr),
        server,
        token: OPENCLAW_TOKEN.into(),
        home: home.to_path_buf(),
        devices: Arc::new(Vec::new()),
    };
    Ok((c, start))
}

/// From the spawn (just before) to the first `connect.challenge` a client receives.
async fn until_challenge(server: &mut Server, log: &Path) -> Result<Start, String> {
    let t0 = Instant::now();
    let limit = Duration::from_secs(180);
    loop {
        if let Some(status) = server.exited() {
            let tail = std::fs::read_to_string(log).unwrap_or_default();
            let tail: String = tail.lines().rev().take(20).collect::<Vec<_>>().join("\n");
            return Err(format!(
                "the gateway exited ({status}) before answering:\n{tail}"
            ));
        }
        if t0.elapsed() > limit {
            return Err(format!(
                "no connect.challenge within {limit:?} (log: {})",
                log.display()
            ));
        }
        let probe = async {
            let mut ws = load::open(server.addr).await?;
            let first = load::next_text(&mut ws).await?;
            load::reset(ws);
            Ok::<_, String>(first)
        };
        match tokio::time::timeout(Duration::from_secs(5), probe).await {
            Ok(Ok(first)) if first.contains("connect.challenge") => {
                return Ok(Start {
                    time: t0.elapsed(),
                    rss_kib: server.tree_rss_kib(),
                })
            }
            _ => tokio::time::sleep(Duration::from_millis(5)).await,
        }
    }
}

/// Waits for OpenClaw's "[gateway] ready" line (ClawPair is ready at its first challenge).
async fn wait_ready(c: &mut Contender) -> Result<(), String> {
    let log = c.home.join("gateway.log");
    let until = Instant::now() + Duration::from_secs(180);
    while !std::fs::read_to_string(&log)
        .unwrap_or_default()
        .contains("[gateway] ready")
    {
        if let Some(status) = c.server.exited() {
            return Err(format!("{}'s gateway exited ({status})", c.name));
        }
        if Instant::now() > until {
            return Err(format!("{}'s gateway never said it was ready", c.name));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

type Attempt = crate::Attempt;

fn admin_attempt(c: &Contender) -> impl Fn(u64) -> Attempt + Send + Sync + 'static {
    crate::operator_attempt(c.addr(), c.operator())
}

fn device_attempt(c: &Contender) -> impl Fn(u64) -> Attempt + Send + Sync + 'static {
    crate::device_attempt(c.addr(), c.devices.clone())
}

/// `rounds` closed-loop runs on each, alternating which goes first; the rate and the server's
/// CPU are the median round's, the latencies are every round's.
async fn alternate<F, A>(
    plan: &VsPlan,
    conc: usize,
    cp: &Contender,
    oc: &Contender,
    make: F,
) -> (Run, Run)
where
    F: Fn(&Contender) -> A,
    A: Fn(u64) -> Attempt + Send + Sync + 'static,
{
    // A short warm-up each: first connections pay for lazy set-up on both sides.
    load::closed_loop(conc, plan.window / 4, make(cp)).await;
    load::closed_loop(conc, plan.window / 4, make(oc)).await;
    let (mut a, mut b) = (Vec::new(), Vec::new());
    let round = |c| round(plan, conc, c, make(c));
    for i in 0..plan.rounds {
        if i % 2 == 0 {
            a.push(round(cp).await);
            b.push(round(oc).await);
        } else {
            b.push(round(oc).await);
            a.push(round(cp).await);
        }
    }
    (Run::median_of(a), Run::median_of(b))
}

/// One closed-loop round on `c`, with what it cost `c`'s process tree in CPU.
async fn round<A>(plan: &VsPlan, conc: usize, c: &Contender, attempt: A) -> Run
where
    A: Fn(u64) -> Attempt + Send + Sync + 'static,
{
    let cpu = c.server.tree_cpu();
    let mut run = load::closed_loop(conc, plan.window, attempt).await;
    run.server_cpu = c.server.tree_cpu().saturating_sub(cpu);
    run
}

fn note_errors(t: &mut Table, what: &str, ours: &Run, theirs: &Run) {
    t.note_errors(&format!("{what}, ClawPair"), ours);
    t.note_errors(&format!("{what}, OpenClaw"), theirs);
}

async fn admin_client(c: &Contender) -> Result<Client, String> {
    Client::connect(&c.operator(), |_, _| {})
        .await
        .map_err(|e| format!("{}: the admin connection: {e}", c.name))
}

/// A new phone pairs: the owner makes a setup code (`device.pair.setupCode`, on both), the
/// device connects with it and is refused with a request id, the owner approves it, the device
/// connects again and gets its token. Timed from the device's first connect to hello-ok.
async fn pair_one(
    admin: &mut Client,
    c: &Contender,
    i: usize,
    latencies: &mut Run,
    devices: &mut Vec<ConnectOptions>,
) {
    match pair(admin, c, i).await {
        Ok((opts, took)) => {
            latencies.ok += 1;
            latencies.latencies.push(took);
            devices.push(opts);
        }
        Err(e) => {
            latencies.errors += 1;
            latencies.first_error.get_or_insert(e);
        }
    }
}

async fn pair(
    admin: &mut Client,
    c: &Contender,
    i: usize,
) -> Result<(ConnectOptions, Duration), String> {
    let code = admin
        .call("device.pair.setupCode", json!({ "publicUrl": c.url }))
        .await
        .map_err(|e| format!("device.pair.setupCode: {e}"))?;
    let setup = code["setupCode"]
        .as_str()
        .ok_or_else(|| format!("no setupCode in {code}"))?;
    let payload =
        clawpair_core::pairing::setup::decode_setup_code(setup).map_err(|e| e.to_string())?;
    let identity = Identity::generate();
    let mut opts = ConnectOptions::node(
        &c.url,
        identity.clone(),
        Auth::BootstrapToken(payload.bootstrap_token.clone()),
    );
    opts.display_name = Some(format!("bench phone {i}"));
    let t0 = Instant::now();
    let request_id = match Client::connect(&opts, |_, _| {}).await {
        Err(ClientError::Rejected(e)) => e
            .details
            .as_ref()
            .and_then(|d| d["requestId"].as_str())
            .map(str::to_owned)
            .ok_or_else(|| format!("refused without a request id: {} {}", e.code, e.message))?,
        Err(e) => return Err(format!("the first connect: {e}")),
        Ok(_) => return Err("a new device was let in without the owner's approval".into()),
    };
    admin
        .call("device.pair.approve", json!({ "requestId": request_id }))
        .await
        .map_err(|e| format!("device.pair.approve: {e}"))?;
    let device = Client::connect(&opts, |_, _| {})
        .await
        .map_err(|e| format!("the connect after approval: {e}"))?;
    let took = t0.elapsed();
    let token = device.hello["auth"]["deviceToken"]
        .as_str()
        .map(str::to_owned)
        .ok_or("no deviceToken in hello-ok after approval")?;
    device.close().await;
    let mut again = ConnectOptions::node(&c.url, identity, Auth::DeviceToken(token));
    again.display_name = opts.display_name;
    Ok((again, took))
}

/// What holding idle authenticated connections cost a gateway's whole process tree.
pub struct IdleVs {
    pub run: Run,
    pub held: usize,
    pub before_kib: u64,
    pub after_kib: u64,
}

impl IdleVs {
    pub fn kib_per_conn(&self) -> f64 {
        self.after_kib.saturating_sub(self.before_kib) as f64 / self.held.max(1) as f64
    }
}

async fn idle(plan: &VsPlan, c: &Contender) -> IdleVs {
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before_kib = c.server.tree_rss_kib();
    let (held, run) = load::hold(plan.idle_connections, plan.opening_pace, admin_attempt(c)).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after_kib = c.server.tree_rss_kib();
    let count = held.len();
    held.into_iter().for_each(load::reset);
    IdleVs {
        run,
        held: count,
        before_kib,
        after_kib,
    }
}

/// `pairing list` and `devices list`, each as users run it, alternating ClawPair and OpenClaw.
fn cli_rows(
    plan: &VsPlan,
    install: &OpenClaw,
    cp: &Contender,
    oc: &Contender,
    t: &mut Table,
) -> Result<(), String> {
    let state = cp.home.display().to_string();
    let commands: [(&str, Vec<&str>, Vec<&str>); 2] = [
        (
            "pairing list",
            vec![
                "--state-dir",
                &state,
                "pairing",
                "list",
                "telegram",
                "--json",
            ],
            vec!["pairing", "list", "telegram", "--json"],
        ),
        (
            "devices list",
            vec!["--state-dir", &state, "devices", "list", "--json"],
            vec![
                "devices", "list", "--url", &oc.url, "--token", &oc.token, "--json",
            ],
        ),
    ];
    for (what, ours_args, theirs_args) in commands {
        let (mut a, mut b) = (Vec::new(), Vec::new());
        let out = oc.home.join("cli.out");
        for _ in 0..plan.cli_runs {
            a.push(checked(
                proc::run_whole(proc::clawpair_cli(&ours_args), &out)?,
                what,
                "clawpair",
            )?);
            b.push(checked(
                proc::run_whole(install.command(&oc.home, &theirs_args), &out)?,
                what,
                "openclaw",
            )?);
        }
        let wall = medians(&a, &b, |r| r.wall);
        let peak = medians(&a, &b, |r| r.peak_kib);
        t.push(row_time(
            &format!(
                "`{what}`, a whole process: wall time ({})",
                of_runs(plan.cli_runs, "run")
            ),
            wall.0,
            wall.1,
        ));
        t.push(row_memory(
            &format!("`{what}`: peak resident memory (process tree)"),
            peak.0,
            peak.1,
            None,
        ));
    }
    Ok(())
}

fn checked(r: ProcessRun, what: &str, prog: &str) -> Result<ProcessRun, String> {
    if r.ok {
        Ok(r)
    } else {
        Err(format!("`{prog} {what}` failed: {}", r.output.trim()))
    }
}

/// The medians of one figure of each side's runs.
fn medians<S, T: Copy + PartialOrd + Default>(
    ours: &[S],
    theirs: &[S],
    figure: impl Fn(&S) -> T,
) -> (T, T) {
    let mut a: Vec<T> = ours.iter().map(&figure).collect();
    let mut b: Vec<T> = theirs.iter().map(&figure).collect();
    (median(&mut a), median(&mut b))
}

/// The median of `v` (sorted in place); zero when empty.
pub fn median<T: Copy + PartialOrd + Default>(v: &mut [T]) -> T {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    v.get(v.len() / 2).copied().unwrap_or_default()
}

//! The servers under test as child processes (the gateway and the baseline echo server), and
//! what `/proc` says about them: resident memory and CPU time. Each server runs in its own
//! process so its memory and CPU are its own, not the load generator's.

use std::ffi::OsString;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A server child process and the address it listens on.
pub struct Server {
    pub addr: SocketAddr,
    child: Child,
    /// The child leads its own process group, and stopping it stops the group (OpenClaw's
    /// gateway starts helper processes of its own).
    group: bool,
}

/// What to signal to stop each server still running: its pid, or its group's negated id.
static LIVE: Mutex<Vec<i32>> = Mutex::new(Vec::new());

fn live() -> std::sync::MutexGuard<'static, Vec<i32>> {
    LIVE.lock().unwrap_or_else(|p| p.into_inner())
}

/// Kills every server still running and exits when the run is interrupted (SIGINT, SIGTERM).
/// A server that leads its own process group (OpenClaw's) does not get the terminal's Ctrl-C.
pub async fn stop_servers_on_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut int), Ok(mut term)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        return;
    };
    tokio::select! {
        _ = int.recv() => {}
        _ = term.recv() => {}
    }
    for &target in live().iter() {
        // SAFETY: signalling our own child (or the process group it leads).
        unsafe { libc::kill(target, libc::SIGKILL) };
    }
    eprintln!("interrupted: the servers of this run were stopped");
    std::process::exit(130);
}

impl Server {
    fn new(addr: SocketAddr, child: Child, group: bool) -> Server {
        let server = Server { addr, child, group };
        live().push(server.target());
        server
    }

    /// A server spawned as the leader of its own process group (`process_group(0)`).
    pub fn group_leader(addr: SocketAddr, child: Child) -> Server {
        Server::new(addr, child, true)
    }

    /// A server spawned by this process (the gateway, the echo server, the tray app of
    /// `--gui`), listening (or about to) at `addr`.
    pub fn spawned(addr: SocketAddr, child: Child) -> Server {
        Server::new(addr, child, false)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Resident memory now, in KiB (`VmRSS`).
    pub fn rss_kib(&self) -> u64 {
        rss_kib(self.pid()).unwrap_or(0)
    }

    /// CPU time used so far (user + system).
    pub fn cpu(&self) -> Duration {
        cpu_time(self.pid()).unwrap_or_default()
    }

    /// Whether it is still running; `Some(why)` once it has exited.
    pub fn exited(&mut self) -> Option<String> {
        match self.child.try_wait() {
            Ok(Some(status)) => Some(status.to_string()),
            Ok(None) => None,
            Err(e) => Some(e.to_string()),
        }
    }

    /// Resident memory of the process and all its descendants, in KiB.
    pub fn tree_rss_kib(&self) -> u64 {
        tree(self.pid()).iter().filter_map(|&p| rss_kib(p)).sum()
    }

    /// CPU time used so far by the process and its living descendants.
    pub fn tree_cpu(&self) -> Duration {
        tree(self.pid()).iter().filter_map(|&p| cpu_time(p)).sum()
    }

    /// What a signal to stop it goes to: the process, or the group it leads (a process group
    /// is addressed by the negated id of its leader).
    fn target(&self) -> i32 {
        if self.group {
            -(self.pid() as i32)
        } else {
            self.pid() as i32
        }
    }

    /// SIGTERM, then SIGKILL if it has not exited within a few seconds.
    pub fn stop(mut self) {
        let target = self.target();
        // SAFETY: sending a signal to our own child (or the process group it leads).
        unsafe { libc::kill(target, libc::SIGTERM) };
        let until = Instant::now() + Duration::from_secs(8);
        while Instant::now() < until {
            if let Ok(Some(_)) = self.child.try_wait() {
                if self.group {
                    // Helpers that outlived their leader go with it.
                    unsafe { libc::kill(target, libc::SIGKILL) };
                }
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        // SAFETY: as above.
        unsafe { libc::kill(target, libc::SIGKILL) };
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A server the run lets go of without [`Server::stop`] (an error, a panic) is killed, so no
/// gateway outlives a failed run to take CPU from the next one.
impl Drop for Server {
    fn drop(&mut self) {
        let target = self.target();
        live().retain(|&t| t != target);
        if let Ok(None) = self.child.try_wait() {
            // SAFETY: sending a signal to our own child (or the process group it leads).
            unsafe { libc::kill(self.target(), libc::SIGKILL) };
            let _ = self.child.wait();
        }
    }
}

fn this_exe() -> PathBuf {
    std::env::current_exe().expect("the benchmark knows its own path")
}

/// How long a gateway run directly may take to start listening.
pub const GATEWAY_READY: Duration = Duration::from_secs(15);

/// Starts the gateway on loopback, port 0, on `state_dir`, with these variables added to its
/// environment, and waits for its run record (`run/gateway.json`) to learn the port.
pub fn start_gateway_with(
    state_dir: &Path,
    log: &Path,
    env: &[(&str, &str)],
) -> Result<Server, String> {
    start_gateway_as(state_dir, log, env, &[], GATEWAY_READY)
}

/// [`start_gateway_with`] run by another program (`wrap`, its arguments before this binary's path:
/// valgrind and its options), which may take `ready_within` to get it listening.
pub fn start_gateway_under(
    state_dir: &Path,
    log: &Path,
    wrap: &[OsString],
    ready_within: Duration,
) -> Result<Server, String> {
    start_gateway_as(state_dir, log, &[], wrap, ready_within)
}

fn start_gateway_as(
    state_dir: &Path,
    log: &Path,
    env: &[(&str, &str)],
    wrap: &[OsString],
    ready_within: Duration,
) -> Result<Server, String> {
    let mut server = spawn_gateway(state_dir, log, 0, env, wrap)?;
    let pid = server.pid();
    let record = state_dir.join("run/gateway.json");
    let until = Instant::now() + ready_within;
    while Instant::now() < until {
        if let Ok(Some(status)) = server.child.try_wait() {
            let tail = std::fs::read_to_string(log).unwrap_or_default();
            return Err(format!("the gateway exited ({status}): {tail}"));
        }
        if let Ok(text) = std::fs::read_to_string(&record) {
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) {
                let addr = v["address"].as_str().and_then(|a| a.parse().ok());
                if let (Some(addr), true) = (addr, v["pid"] == pid) {
                    server.addr = addr;
                    return Ok(server);
                }
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    server.stop();
    Err(format!(
        "the gateway did not write run/gateway.json within {} s",
        ready_within.as_secs()
    ))
}

/// Starts the gateway on `state_dir` at 127.0.0.1:`port` and returns at once: the caller
/// times how long it takes to answer.
pub fn spawn_gateway_on(state_dir: &Path, log: &Path, port: u16) -> Result<Server, String> {
    spawn_gateway(state_dir, log, port, &[], &[])
}

fn spawn_gateway(
    state_dir: &Path,
    log: &Path,
    port: u16,
    env: &[(&str, &str)],
    wrap: &[OsString],
) -> Result<Server, String> {
    let log_file = std::fs::File::create(log).map_err(|e| format!("{}: {e}", log.display()))?;
    let child = this_exe_under(wrap)
        .arg(super::CHILD_GATEWAY)
        .arg(state_dir)
        .arg(port.to_string())
        .env("RUST_LOG", "warn")
        .env_remove("OPENCLAW_STATE_DIR")
        .env_remove("CLAWPAIR_STATE_DIR")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log_file)
        .spawn()
        .map_err(|e| format!("cannot start the gateway: {e}"))?;
    Ok(Server::spawned(
        SocketAddr::from(([127, 0, 0, 1], port)),
        child,
    ))
}

/// `clawpair ARGS…` as its own process: this binary re-executed into the CLI's entry point.
pub fn clawpair_cli(args: &[&str]) -> Command {
    let mut c = Command::new(this_exe());
    c.arg(super::CHILD_CLI)
        .args(args)
        .env_remove("OPENCLAW_STATE_DIR")
        .env_remove("CLAWPAIR_STATE_DIR")
        .stdin(Stdio::null());
    c
}

/// What a whole process cost: from spawn to exit, and its peak resident memory (the largest
/// sum of its process tree's high-water marks seen while it ran).
pub struct ProcessRun {
    pub wall: Duration,
    pub peak_kib: u64,
    pub ok: bool,
    pub output: String,
}

/// Runs `c` to its end, its output to the file `out`, sampling its process tree's memory
/// every few milliseconds. The samples are `VmHWM` (the peak since `exec`), so a peak between
/// two samples still counts. Not `wait4`'s `ru_maxrss`: it also counts the memory of the
/// process that spawned the child before `exec`, which here is this benchmark.
pub fn run_whole(mut c: Command, out: &Path) -> Result<ProcessRun, String> {
    let file = std::fs::File::create(out).map_err(|e| format!("{}: {e}", out.display()))?;
    let err = file
        .try_clone()
        .map_err(|e| format!("{}: {e}", out.display()))?;
    let t0 = Instant::now();
    let child = c
        .stdout(file)
        .stderr(err)
        .spawn()
        .map_err(|e| format!("cannot run {c:?}: {e}"))?;
    let pid = child.id();
    let mut tree_peak = 0;
    let mut status = 0;
    loop {
        let now: u64 = tree(pid)
            .iter()
            .filter_map(|&p| status_kib(p, "VmHWM:"))
            .sum();
        tree_peak = tree_peak.max(now);
        // SAFETY: waiting (without blocking) for our own child, with a valid out-pointer.
        let r = unsafe { libc::waitpid(pid as i32, &mut status, libc::WNOHANG) };
        if r == pid as i32 {
            break;
        }
        if r < 0 {
            return Err(format!("waitpid: {}", std::io::Error::last_os_error()));
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let wall = t0.elapsed();
    Ok(ProcessRun {
        wall,
        peak_kib: tree_peak,
        ok: libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        output: std::fs::read_to_string(out).unwrap_or_default(),
    })
}

/// This binary as a command, run by `wrap` if that is not empty (`wrap[0]` the program, the
/// rest its arguments, this binary's path after them).
fn this_exe_under(wrap: &[OsString]) -> Command {
    match wrap.split_first() {
        Some((program, args)) => {
            let mut c = Command::new(program);
            c.args(args).arg(this_exe());
            c
        }
        None => Command::new(this_exe()),
    }
}

/// Starts the baseline echo server; it prints its address as its first line.
pub fn start_echo() -> Result<Server, String> {
    start_echo_under(&[])
}

/// [`start_echo`] run by another program (`wrap`, as for [`start_gateway_under`]).
pub fn start_echo_under(wrap: &[OsString]) -> Result<Server, String> {
    let mut child = this_exe_under(wrap)
        .arg(super::CHILD_ECHO)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("cannot start the echo server: {e}"))?;
    let mut line = String::new();
    let out = child.stdout.take().expect("piped stdout");
    let read = BufReader::new(out).read_line(&mut line);
    let addr = read.map_err(|e| format!("echo server: {e}")).and_then(|_| {
        line.trim()
            .parse()
            .map_err(|_| format!("echo server printed {line:?} instead of its address"))
    });
    match addr {
        Ok(addr) => Ok(Server::spawned(addr, child)),
        Err(e) => {
            // Not left running (or, exited, unreaped) behind the error.
            let _ = child.kill();
            let _ = child.wait();
            Err(e)
        }
    }
}

/// `VmRSS` of a process, in KiB.
pub fn rss_kib(pid: u32) -> Option<u64> {
    status_kib(pid, "VmRSS:")
}

/// A memory field of `/proc/<pid>/status` (`VmRSS:`, `VmHWM:`), in KiB.
fn status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// `pid` and every process descended from it, from the parent ids in `/proc/*/stat`.
pub fn tree(pid: u32) -> Vec<u32> {
    let mut parent_of = Vec::new();
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for e in dir.flatten() {
            let Some(p) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
                continue;
            };
            if let Some(pp) = parent_pid(p) {
                parent_of.push((p, pp));
            }
        }
    }
    let mut out = vec![pid];
    let mut i = 0;
    while i < out.len() {
        let p = out[i];
        out.extend(parent_of.iter().filter(|(_, pp)| *pp == p).map(|(c, _)| *c));
        i += 1;
    }
    out
}

fn parent_pid(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat[stat.rfind(')')? + 2..]
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// User + system CPU time of a process (`/proc/<pid>/stat` fields 14 and 15).
pub fn cpu_time(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may contain spaces; the fields after its ')' are fixed.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Some(Duration::from_micros(ticks * 1_000_000 / hz))
}

/// CPU use of the whole machine, from the first line of `/proc/stat`: (busy, total) ticks.
fn machine_ticks() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let f: Vec<u64> = stat
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    let total: u64 = f.iter().take(8).sum();
    // idle and iowait are the 4th and 5th fields.
    let idle = f.get(3).copied().unwrap_or(0) + f.get(4).copied().unwrap_or(0);
    (total - idle, total)
}

/// What a stretch of load cost: the server's CPU, this process's CPU (the load generator), and
/// how busy the machine was overall.
pub struct Usage {
    pub server: Duration,
    pub load: Duration,
    pub machine_busy: f64,
}

/// Starts counting; [`Meter::stop`] gives the [`Usage`] since.
pub struct Meter {
    server_pid: u32,
    server: Duration,
    load: Duration,
    machine: (u64, u64),
}

impl Meter {
    pub fn start(server: &Server) -> Meter {
        Meter {
            server_pid: server.pid(),
            server: server.cpu(),
            load: cpu_time(std::process::id()).unwrap_or_default(),
            machine: machine_ticks(),
        }
    }
    pub fn stop(self) -> Usage {
        let (busy, total) = machine_ticks();
        let dt = total.saturating_sub(self.machine.1).max(1);
        Usage {
            server: cpu_time(self.server_pid)
                .unwrap_or_default()
                .saturating_sub(self.server),
            load: cpu_time(std::process::id())
                .unwrap_or_default()
                .saturating_sub(self.load),
            machine_busy: busy.saturating_sub(self.machine.0) as f64 / dt as f64,
        }
    }
}

/// The machine, as `/proc` describes it: CPU model, cores, memory, kernel.
pub fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|v| v.trim_start_matches([' ', '\t', ':']).trim().to_string())
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mem_kib: u64 = std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!(
        "{model}, {cores} cores, {:.1} GiB RAM, Linux {}",
        mem_kib as f64 / (1024.0 * 1024.0),
        kernel.trim()
    )
}

//! Instructions per connection, counted by callgrind (`--instructions`): a gateway and an echo
//! server of their own run under `valgrind --tool=callgrind` with instrumentation off; only the
//! measured connections are counted (`callgrind_control -i on`, `-i off`, then a dump), and the
//! dump's total is divided by their number. Unlike a rate on two shared cores, the count hardly
//! moves with what else the machine is doing, so it can be compared from change to change.

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clawpair_core::client::ConnectOptions;
use clawpair_core::pairing::device::PairedDevice;
use clawpair_core::service::Service;
use clawpair_core::store::StatePaths;

use crate::load::{self, Run};
use crate::proc::{self, Server};
use crate::{Attempt, Setup};

/// Connections counted per measurement. Under callgrind a handshake takes some 50 times as
/// long, so a few hundred keep the whole phase near a minute.
pub const COUNTED: usize = 200;
/// Connections made before counting: the code on their path is translated by valgrind, the
/// caches and allocator arenas are warm.
const WARM_UP: usize = 20;
/// Paired devices on the counted gateway, whatever the run's mode: its paired.json is rewritten
/// with their last-seen times while connections come in, and that write's cost grows with the
/// file, so a fixed number keeps the count comparable between quick and full runs.
const DEVICES: usize = 32;
/// How long one counted connection may take under callgrind.
const ATTEMPT_LIMIT: Duration = Duration::from_secs(60);
/// How long a server under callgrind may take to start listening.
const READY_WITHIN: Duration = Duration::from_secs(180);
/// Waited before counting starts and before it stops: longer than the gateway's delay before it
/// writes the devices' last-seen times (2 s), so the warm-up's write falls before the count and
/// the counted connections' own writes fall inside it.
const QUIET: Duration = Duration::from_millis(2_500);

/// What a callgrind dump says, or why it says nothing usable.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DumpError {
    #[error("no `events:` line")]
    NoEvents,
    #[error("no `Ir` among the events ({0})")]
    NoIr(String),
    #[error("no `totals:` or `summary:` line")]
    NoTotals,
    #[error("the totals line {0:?} is not a list of counts")]
    BadTotals(String),
}

/// The instructions executed (`Ir`) in the part a callgrind dump covers: the `totals:` line at
/// its end, or the `summary:` line of its header where there is no `totals:`, read at the
/// position of `Ir` in the `events:` line.
pub fn total_instructions(dump: &str) -> Result<u64, DumpError> {
    let field = |name: &str| {
        dump.lines()
            .rev()
            .find_map(|l| l.strip_prefix(name))
            .map(str::trim)
    };
    let events = field("events:").ok_or(DumpError::NoEvents)?;
    let at = events
        .split_whitespace()
        .position(|e| e == "Ir")
        .ok_or_else(|| DumpError::NoIr(events.to_string()))?;
    let totals = field("totals:")
        .or_else(|| field("summary:"))
        .ok_or(DumpError::NoTotals)?;
    totals
        .split_whitespace()
        .nth(at)
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| DumpError::BadTotals(totals.to_string()))
}

/// One counted measurement: the connections made and the instructions the server spent on them.
pub struct Count {
    pub run: Run,
    pub instructions: u64,
    /// The dump it was read from (for `callgrind_annotate`, with `--keep`).
    pub dump: PathBuf,
}

impl Count {
    pub fn per_connection(&self) -> f64 {
        self.instructions as f64 / self.run.ok.max(1) as f64
    }
}

/// The three counts of the phase, each on its own server under callgrind.
pub struct Counts {
    pub device: Count,
    pub token: Count,
    pub echo: Count,
}

/// Whether valgrind and callgrind_control can be run; why not if they cannot.
pub fn available() -> Result<(), String> {
    for tool in ["valgrind", "callgrind_control"] {
        let ran = Command::new(tool)
            .arg("--version")
            .output()
            .map_err(|e| format!("cannot run {tool}: {e}"))?;
        if !ran.status.success() {
            return Err(format!("{tool} --version failed ({})", ran.status));
        }
    }
    Ok(())
}

/// Counts a paired device's reconnect and an admin-token connect on a gateway under callgrind,
/// and an echo connection on the echo server under callgrind.
pub async fn count(s: &Setup) -> Result<Counts, String> {
    let dir = s.dir.join("callgrind");
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let (devices, paired) = first_devices(s, DEVICES)?;
    let paths = StatePaths::new(s.dir.join("state-callgrind"));
    let (service, _) = Service::open(paths.clone(), Arc::new(clawpair_core::clock::SystemClock))
        .map_err(|e| format!("{}: {e}", paths.root().display()))?;
    crate::add_paired(&service, paired)?;
    let admin_token = service.settings().gateway.auth.token.clone();
    drop(service);

    let gw_out = dir.join("gateway.out");
    eprintln!("instructions: starting the gateway under callgrind");
    let gw = proc::start_gateway_under(
        paths.root(),
        &s.dir.join("gateway-callgrind.log"),
        &valgrind(&gw_out),
        READY_WITHIN,
    )?;
    let on_gateway = async {
        let mut gw_dumps = Dumps::new(gw_out.clone());
        eprintln!("instructions: {COUNTED} device handshakes, one at a time");
        let device = counted(&gw, &mut gw_dumps, crate::device_attempt(gw.addr, devices)).await?;
        eprintln!("instructions: {COUNTED} admin-token connects, one at a time");
        let token = counted(&gw, &mut gw_dumps, token_attempt(gw.addr, admin_token)).await?;
        Ok::<_, String>((device, token))
    }
    .await;
    gw.stop();
    let (device, token) = on_gateway?;

    let echo_out = dir.join("echo.out");
    eprintln!("instructions: {COUNTED} echo connections, one at a time");
    let echo = proc::start_echo_under(&valgrind(&echo_out))?;
    let mut echo_dumps = Dumps::new(echo_out);
    let echo_count = counted(&echo, &mut echo_dumps, crate::echo_attempt(echo.addr)).await;
    echo.stop();
    Ok(Counts {
        device,
        token,
        echo: echo_count?,
    })
}

/// valgrind's command line for a server whose dumps go to `out` (`out.1`, `out.2`, … for the
/// dumps asked for, `out` itself at exit), counting nothing until told to.
fn valgrind(out: &Path) -> Vec<OsString> {
    let mut file = OsString::from("--callgrind-out-file=");
    file.push(out);
    vec![
        "valgrind".into(),
        "-q".into(),
        "--tool=callgrind".into(),
        "--instr-atstart=no".into(),
        file,
    ]
}

/// The first `n` of the paired devices, ready to reconnect, and their records.
fn first_devices(
    s: &Setup,
    n: usize,
) -> Result<(Arc<Vec<ConnectOptions>>, Vec<PairedDevice>), String> {
    let devices: Vec<ConnectOptions> = s.devices.iter().take(n).cloned().collect();
    let ids: Vec<String> = devices
        .iter()
        .filter_map(|d| d.identity.as_ref().map(|i| i.device_id()))
        .collect();
    let paired: Vec<PairedDevice> = s
        .paired
        .iter()
        .filter(|p| ids.contains(&p.device_id))
        .cloned()
        .collect();
    if paired.len() != devices.len() {
        return Err(format!(
            "found the records of {} of the first {} paired devices",
            paired.len(),
            devices.len()
        ));
    }
    Ok((Arc::new(devices), paired))
}

/// An operator's connect with the gateway's admin token and no device identity.
fn token_attempt(addr: SocketAddr, token: String) -> impl Fn(u64) -> Attempt {
    let opts = ConnectOptions::operator("ws://unused/", &token, "bench");
    move |_| {
        let opts = opts.clone();
        Box::pin(async move { load::handshake(addr, &opts).await })
    }
}

/// Warms `server` up with `attempt`, then counts the instructions of [`COUNTED`] more.
async fn counted(
    server: &Server,
    dumps: &mut Dumps,
    attempt: impl Fn(u64) -> Attempt,
) -> Result<Count, String> {
    let warm = load::one_by_one(WARM_UP, ATTEMPT_LIMIT, &attempt).await;
    if warm.ok == 0 {
        return Err(format!(
            "no warm-up connection succeeded under callgrind (first error: {})",
            warm.first_error.as_deref().unwrap_or("?")
        ));
    }
    tokio::time::sleep(QUIET).await;
    control(server.pid(), &["-i", "on"])?;
    let run = load::one_by_one(COUNTED, ATTEMPT_LIMIT, &attempt).await;
    // Closing the last sessions and writing their last-seen times are part of what they cost.
    tokio::time::sleep(QUIET).await;
    control(server.pid(), &["-i", "off"])?;
    control(server.pid(), &["-d"])?;
    let (dump, text) = dumps.next()?;
    let instructions = total_instructions(&text).map_err(|e| format!("{}: {e}", dump.display()))?;
    if run.ok == 0 {
        return Err(format!(
            "no counted connection succeeded (first error: {})",
            run.first_error.as_deref().unwrap_or("?")
        ));
    }
    Ok(Count {
        run,
        instructions,
        dump,
    })
}

/// `callgrind_control ARGS PID`, which talks to the process through valgrind's gdbserver.
fn control(pid: u32, args: &[&str]) -> Result<(), String> {
    let out = Command::new("callgrind_control")
        .args(args)
        .arg(pid.to_string())
        .output()
        .map_err(|e| format!("cannot run callgrind_control: {e}"))?;
    let said = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() || !said.contains("OK") {
        return Err(format!(
            "callgrind_control {} {pid}: {} {}",
            args.join(" "),
            said.trim(),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(())
}

/// The dumps one server under callgrind writes, numbered from 1 after its output file's name.
struct Dumps {
    out: PathBuf,
    taken: u32,
}

impl Dumps {
    fn new(out: PathBuf) -> Dumps {
        Dumps { out, taken: 0 }
    }

    /// The next dump and its text, once it is written out to its `totals:` line.
    fn next(&mut self) -> Result<(PathBuf, String), String> {
        self.taken += 1;
        let mut name = self.out.clone().into_os_string();
        name.push(format!(".{}", self.taken));
        let path = PathBuf::from(name);
        let until = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(text) = std::fs::read_to_string(&path) {
                if text.lines().any(|l| l.starts_with("totals:")) {
                    return Ok((path, text));
                }
            }
            if Instant::now() > until {
                return Err(format!("{}: no complete dump within 30 s", path.display()));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The start and the end of a dump callgrind 3.19 wrote for `/bin/true`: the middle cut,
    /// trailing spaces trimmed.
    const DUMP: &str = "# callgrind format
version: 1
creator: callgrind-3.19.0
pid: 31801
cmd:  /bin/true
part: 1


desc: I1 cache:
desc: D1 cache:
desc: LL cache:

desc: Timerange: Basic block 0 - 28986
desc: Trigger: Program termination

positions: line
events: Ir
summary: 126743


ob=(5) /usr/bin/true
fl=(139) ???
fn=(536) 0x0000000000002310
0 4

fi=(175) ./wcsmbs/../sysdeps/x86_64/multiarch/wmemcmp.c
-18 2
fe=(113)

totals: 126743
";

    #[test]
    fn the_instructions_are_read_from_the_totals_line() {
        assert_eq!(total_instructions(DUMP), Ok(126_743));
    }

    #[test]
    fn the_totals_line_wins_over_the_summary_and_ir_is_found_among_other_events() {
        let dump = "events: Dr Ir Dw\nsummary: 1 2 3\n\nfn=(1) main\n1 1 1 1\n\ntotals: 10 20 30\n";
        assert_eq!(total_instructions(dump), Ok(20));
    }

    #[test]
    fn a_dump_without_totals_falls_back_to_its_summary() {
        let dump = "events: Ir\nsummary: 42\n";
        assert_eq!(total_instructions(dump), Ok(42));
    }

    #[test]
    fn a_dump_cut_short_or_without_ir_says_what_is_missing() {
        assert_eq!(total_instructions("version: 1\n"), Err(DumpError::NoEvents));
        assert_eq!(
            total_instructions("events: Dr\ntotals: 1\n"),
            Err(DumpError::NoIr("Dr".into()))
        );
        assert_eq!(total_instructions("events: Ir\n"), Err(DumpError::NoTotals));
        assert_eq!(
            total_instructions("events: Ir Dr\ntotals: x 1\n"),
            Err(DumpError::BadTotals("x 1".into()))
        );
    }

    #[test]
    fn an_instrumentation_off_dump_counts_nothing() {
        let dump = "events: Ir\nsummary: 0\n\n\ntotals: 0";
        assert_eq!(total_instructions(dump), Ok(0));
    }
}

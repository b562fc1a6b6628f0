//! The table: one row per measurement, ClawPair beside its baseline, the ratio and the target;
//! and the baselines that need no server (an in-memory decision loop, raw durable writes).

use std::collections::HashSet;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use clawpair_core::pairing::dm::{gate, Decision, DmPolicy, SenderFacts};

use crate::instructions::{Count, Counts};
use crate::load::{Answers, Run};
use crate::proc::Usage;
use crate::{Idle, Plan};

/// One line of the table.
pub struct Row {
    pub metric: String,
    pub ours: String,
    pub baseline: String,
    pub ratio: String,
    pub target: String,
    pub met: String,
}

/// The whole table, plus notes (CPU per operation, any errors) printed under it.
pub struct Table {
    pub machine: String,
    mode: &'static str,
    /// The heading of the column ClawPair is compared with.
    against: String,
    rows: Vec<Row>,
    notes: Vec<String>,
}

pub fn yes(ok: bool) -> String {
    if ok { "yes" } else { "**no**" }.into()
}

pub fn thousands(n: f64) -> String {
    let s = format!("{:.0}", n.max(0.0));
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

pub fn rate(n: f64) -> String {
    format!("{}/s", thousands(n))
}

pub fn ms(d: Duration) -> String {
    let v = d.as_secs_f64() * 1000.0;
    if v < 10.0 {
        format!("{v:.2} ms")
    } else {
        format!("{v:.1} ms")
    }
}

fn percent(x: f64) -> String {
    if x < 0.01 {
        format!("{:.2}%", x * 100.0)
    } else {
        format!("{:.0}%", x * 100.0)
    }
}

fn times(x: f64) -> String {
    format!("×{x:.1}")
}

impl Table {
    pub fn new(plan: &Plan) -> Table {
        Table::versus(plan.quick, "baseline")
    }

    /// A table of ClawPair against another program (`--peer`), named in the heading.
    pub fn versus(quick: bool, against: &str) -> Table {
        Table {
            machine: String::new(),
            mode: if quick { "quick" } else { "full" },
            against: against.into(),
            rows: Vec::new(),
            notes: Vec::new(),
        }
    }

    pub fn push(&mut self, r: Row) {
        self.rows.push(r);
    }

    pub fn note_errors(&mut self, what: &str, run: &Run) {
        if run.errors > 0 {
            self.notes.push(format!(
                "{what}: {} errors (first: {})",
                run.errors,
                run.first_error.as_deref().unwrap_or("?")
            ));
        }
    }

    pub fn note(&mut self, text: String) {
        self.notes.push(text);
    }

    pub fn note_answers(&mut self, what: &str, a: &Answers) {
        if a.other > 0 {
            self.notes.push(format!(
                "{what}: {} unexpected answers (first: {})",
                a.other,
                a.first_other.as_deref().unwrap_or("?")
            ));
        }
    }

    /// CPU per operation of the server and of the load generator, and how busy the machine was.
    pub fn note_cpu(&mut self, what: &str, u: &Usage, ops: u64) {
        if ops > 0 {
            let per = |d: Duration| d.as_secs_f64() * 1e6 / ops as f64;
            self.notes.push(format!(
                "{what}: server {:.0} µs CPU per operation, load generator {:.0} µs; machine {:.0}% busy",
                per(u.server),
                per(u.load),
                u.machine_busy * 100.0
            ));
        }
    }

    pub fn render(&self) -> String {
        let args: Vec<String> = std::env::args().skip(1).collect();
        let mut s = format!(
            "ClawPair benchmark ({} run: clawpair-bench {}), {} UTC\n{}\n\n",
            self.mode,
            args.join(" "),
            chrono::Utc::now().format("%Y-%m-%d %H:%M"),
            self.machine
        );
        s.push_str(&format!(
            "| measurement | ClawPair | {} | ratio | target | met |\n",
            self.against
        ));
        s.push_str("|---|---|---|---|---|---|\n");
        for r in &self.rows {
            s.push_str(&format!(
                "| {} | {} | {} | {} | {} | {} |\n",
                r.metric, r.ours, r.baseline, r.ratio, r.target, r.met
            ));
        }
        if !self.notes.is_empty() {
            s.push('\n');
            for n in &self.notes {
                s.push_str(&format!("- {n}\n"));
            }
        }
        s
    }
}

impl Row {
    pub fn handshake_rate(ours: &Run, base: &Run, clients: usize) -> Row {
        let ratio = ours.rate() / base.rate().max(1e-9);
        Row {
            metric: format!(
                "device handshakes/s ({clients} clients, closed loop); baseline: echo connections/s"
            ),
            ours: rate(ours.rate()),
            baseline: rate(base.rate()),
            ratio: percent(ratio),
            target: "≥ 5,000/s and ≥ 50%".into(),
            met: yes(ours.rate() >= 5_000.0 && ratio >= 0.5),
        }
    }

    /// Admin-token connects against echo connections: the target is OpenClaw's row (25× its
    /// rate, `scripts/bench-openclaw.sh`); this one shows the gateway's share without it.
    pub fn admin_rate(ours: &Run, base: &Run, clients: usize) -> Row {
        Row {
            metric: format!(
                "admin-token connects/s ({clients} clients, closed loop, no device identity); baseline: echo connections/s"
            ),
            ours: rate(ours.rate()),
            baseline: rate(base.rate()),
            ratio: percent(ours.rate() / base.rate().max(1e-9)),
            target: "—".into(),
            met: "—".into(),
        }
    }

    pub fn handshake_latency(ours: &mut Run, base: &mut Run) -> Row {
        let (o50, o99, b50, b99) = (
            ours.pct(50.0),
            ours.pct(99.0),
            base.pct(50.0),
            base.pct(99.0),
        );
        Row {
            metric: "handshake latency p50 / p99 (closed loop)".into(),
            ours: format!("{} / {}", ms(o50), ms(o99)),
            baseline: format!("{} / {}", ms(b50), ms(b99)),
            ratio: format!(
                "p99 {}",
                times(o99.as_secs_f64() / b99.as_secs_f64().max(1e-9))
            ),
            target: "—".into(),
            met: "—".into(),
        }
    }

    pub fn open_loop(ours: &mut Run, base: &mut Run, offered: f64) -> Row {
        let (o50, o99, b50, b99) = (
            ours.pct(50.0),
            ours.pct(99.0),
            base.pct(50.0),
            base.pct(99.0),
        );
        Row {
            metric: format!(
                "handshake p50 / p99 at half the maximum rate ({}, open loop)",
                rate(offered)
            ),
            ours: format!("{} / {}", ms(o50), ms(o99)),
            baseline: format!("{} / {}", ms(b50), ms(b99)),
            ratio: format!(
                "p99 {}",
                times(o99.as_secs_f64() / b99.as_secs_f64().max(1e-9))
            ),
            target: "p99 ≤ 10 ms".into(),
            met: yes(o99 <= Duration::from_millis(10) && ours.errors == 0),
        }
    }

    pub fn idle_held(ours: &Idle, base: &Idle, asked: usize) -> Row {
        Row {
            metric: "idle authenticated connections held; baseline: idle echo connections".into(),
            ours: thousands(ours.held as f64),
            baseline: thousands(base.held as f64),
            ratio: percent(ours.held as f64 / base.held.max(1) as f64),
            target: "10,000".into(),
            met: if asked < 10_000 {
                format!("n/a ({} asked)", thousands(asked as f64))
            } else {
                yes(ours.held >= 10_000)
            },
        }
    }

    pub fn idle_rss(ours: &Idle, base: &Idle) -> Row {
        Row {
            metric: format!(
                "RSS per idle connection (VmRSS {} → {} MiB)",
                ours.rss_before_kib / 1024,
                ours.rss_after_kib / 1024
            ),
            ours: format!("{:.1} KiB", ours.kib_per_conn()),
            baseline: format!("{:.1} KiB", base.kib_per_conn()),
            ratio: times(ours.kib_per_conn() / base.kib_per_conn().max(1e-9)),
            target: "≤ 12 KiB".into(),
            met: yes(ours.kib_per_conn() <= 12.0),
        }
    }

    /// Idle connections that each carried one large message: what a session keeps of it.
    /// Judged against a plain idle session of the same run (`idle`), shown beside the bare
    /// echo server's idle connection.
    pub fn idle_rss_after_large(large: &Idle, idle: &Idle, base: &Idle, bytes: usize) -> Row {
        let limit = idle.kib_per_conn() * 1.1;
        Row {
            metric: format!(
                "RSS per idle connection after one 1 MiB message ({} connections on a fresh gateway, each a `node.event` of {} bytes sent one at a time and answered; VmRSS {} → {} MiB); baseline: idle echo connection",
                thousands(large.held as f64),
                thousands(bytes as f64),
                large.rss_before_kib / 1024,
                large.rss_after_kib / 1024
            ),
            ours: format!("{:.1} KiB", large.kib_per_conn()),
            baseline: format!("{:.1} KiB", base.kib_per_conn()),
            ratio: times(large.kib_per_conn() / base.kib_per_conn().max(1e-9)),
            target: format!(
                "≤ 1.1 × an idle session's {:.1} KiB = {limit:.1} KiB",
                idle.kib_per_conn()
            ),
            met: yes(large.kib_per_conn() <= limit && large.held > 0 && large.run.errors == 0),
        }
    }

    pub fn idle_cpu(ours: &Idle, base: &Idle, window: Duration) -> Row {
        let share = |i: &Idle| i.cpu.as_secs_f64() / window.as_secs_f64();
        Row {
            metric: format!(
                "CPU while holding them idle ({:.0} s, utime+stime)",
                window.as_secs_f64()
            ),
            ours: format!("{:.2}% of a core", share(ours) * 100.0),
            baseline: format!("{:.2}% of a core", share(base) * 100.0),
            ratio: "—".into(),
            target: "≤ 0.1% of a core".into(),
            met: yes(share(ours) <= 0.001),
        }
    }

    pub fn decisions(ours: &mut Run, raw: f64, plan: &Plan) -> Row {
        let p99 = ours.pct(99.0);
        Row {
            metric: format!(
                "`channel.inbound` allowed-sender decisions/s ({} sockets × {} in flight, p99 {}); baseline: in-memory `gate` over a HashSet",
                plan.inbound_sockets, plan.inbound_window, ms(p99)
            ),
            ours: rate(ours.rate()),
            baseline: rate(raw),
            ratio: percent(ours.rate() / raw.max(1e-9)),
            target: "≥ 50,000/s".into(),
            met: yes(ours.rate() >= 50_000.0),
        }
    }

    pub fn challenges(ours: &Run, raw: &Run, plan: &Plan) -> Row {
        Row {
            metric: format!(
                "`channel.inbound` first-time challenges/s (new code, durable write; {} sockets); baseline: raw atomic writes/s, {} writers",
                plan.inbound_sockets, plan.inbound_sockets
            ),
            ours: rate(ours.rate()),
            baseline: rate(raw.rate()),
            ratio: percent(ours.rate() / raw.rate().max(1e-9)),
            target: "—".into(),
            met: "—".into(),
        }
    }

    pub fn approve(ours: &mut Run, raw: &mut Run) -> Row {
        let (o50, o99, b50, b99) = (ours.pct(50.0), ours.pct(99.0), raw.pct(50.0), raw.pct(99.0));
        Row {
            metric: "`pairing.approve` latency p50 / p99 (fsync); baseline: one raw atomic write"
                .into(),
            ours: format!("{} / {}", ms(o50), ms(o99)),
            baseline: format!("{} / {}", ms(b50), ms(b99)),
            ratio: format!(
                "p50 {}",
                times(o50.as_secs_f64() / b50.as_secs_f64().max(1e-9))
            ),
            target: "—".into(),
            met: "—".into(),
        }
    }

    /// Instructions per paired device's reconnect, beside an echo connection's.
    pub fn instructions_device(c: &Counts) -> Row {
        Row {
            metric: format!(
                "instructions per device handshake (callgrind, {} paired-device reconnects one at a time); baseline: per echo connection (upgrade, one message echoed)",
                c.device.run.ok
            ),
            ..Row::instructions(&c.device, &c.echo)
        }
    }

    /// Instructions per admin-token connect (an operator without a device identity).
    pub fn instructions_token(c: &Counts) -> Row {
        Row {
            metric: format!(
                "instructions per admin-token connect (callgrind, {} operator connects one at a time, no device identity); baseline: per echo connection",
                c.token.run.ok
            ),
            ..Row::instructions(&c.token, &c.echo)
        }
    }

    fn instructions(ours: &Count, echo: &Count) -> Row {
        Row {
            metric: String::new(),
            ours: thousands(ours.per_connection()),
            baseline: thousands(echo.per_connection()),
            ratio: times(ours.per_connection() / echo.per_connection().max(1e-9)),
            target: "—".into(),
            met: "—".into(),
        }
    }

    /// Request-to-notification latency needs the GUI build and a D-Bus notification server;
    /// the `--gui` mode fills this row. Until then it says so instead of showing a number.
    pub fn notification() -> Row {
        Row {
            metric: "request → notification latency p99 (`channel.inbound` to D-Bus `Notify`)"
                .into(),
            ours: "see `clawpair-bench --gui` (docs/BENCHMARKS.md)".into(),
            baseline: "n/a".into(),
            ratio: "—".into(),
            target: "≤ 100 ms".into(),
            met: "n/a".into(),
        }
    }
}

/// The `p`-quantile (0–1) of `v`, nearest rank (sorts `v`).
pub fn pct(v: &mut [Duration], p: f64) -> Duration {
    v.sort();
    if v.is_empty() {
        return Duration::ZERO;
    }
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

/// CPU time of the calling thread: robust to other processes competing for the cores.
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// What the protocol's Ed25519 costs on this machine, per handshake: the device signs the v3
/// string, the gateway verifies it (`verify_identity`, as `connect` does). Returns µs each.
pub fn crypto_floor(n: u32) -> (f64, f64) {
    use clawpair_core::client::Identity;
    use clawpair_core::pairing::device::{verify_identity, SignedFields};
    let id = Identity::generate();
    let device_id = id.device_id();
    let now = chrono::Utc::now().timestamp_millis();
    let fields = SignedFields {
        device_id: &device_id,
        client_id: "clawpair-node",
        client_mode: "node",
        role: "node",
        scopes: "",
        signed_at: now,
        token: "0123456789012345678901234567890123456789012",
        nonce: "6f1c5f0e-8f43-4a4b-9d55-0c6a8a7f1b2e",
        platform: "linux",
        device_family: "computer",
    };
    let start = thread_cpu();
    let mut sig = String::new();
    for _ in 0..n {
        sig = id.sign(std::hint::black_box(&fields));
    }
    let sign = (thread_cpu() - start).as_secs_f64() * 1e6 / n as f64;
    let key = id.public_key();
    let start = thread_cpu();
    for _ in 0..n {
        let ok = verify_identity(&fields, &key, std::hint::black_box(&sig), fields.nonce, now);
        assert!(ok.is_ok(), "the signature verifies");
    }
    let verify = (thread_cpu() - start).as_secs_f64() * 1e6 / n as f64;
    (sign, verify)
}

/// The floor for an allowed-sender decision: the pure rule over an in-memory set, per second of
/// one thread's CPU.
pub fn raw_decisions(allowed: usize, dur: Duration) -> f64 {
    let set: HashSet<String> = (0..allowed).map(|i| format!("user-{i}")).collect();
    let senders: Vec<String> = (0..allowed * 2).map(|i| format!("user-{i}")).collect();
    let start = Instant::now();
    let cpu = thread_cpu();
    let mut n = 0u64;
    let mut allowed_count = 0u64;
    while start.elapsed() < dur {
        for s in &senders {
            let facts = SenderFacts {
                policy: DmPolicy::Pairing,
                is_group: false,
                is_owner: false,
                in_config_allow_from: false,
                in_stored_allowlist: set.contains(std::hint::black_box(s.as_str())),
            };
            if let Some(Decision::Allow(_)) = gate(std::hint::black_box(facts)) {
                allowed_count += 1;
            }
            n += 1;
        }
    }
    std::hint::black_box(allowed_count);
    n as f64 / (thread_cpu() - cpu).as_secs_f64().max(1e-9)
}

/// One atomic durable write, done by hand: temp file, write, fsync, rename, fsync the directory.
fn raw_atomic_write(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = dir.join(format!(".{name}.tmp"));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, dir.join(name))?;
    std::fs::File::open(dir)?.sync_all()
}

const RAW_BYTES: &[u8] = br#"{"version":1,"requests":[{"id":"new-0-1","code":"ABCD2345","createdAt":"2026-01-01T00:00:00.000Z","lastSeenAt":"2026-01-01T00:00:00.000Z","meta":{"accountId":"default"}}]}"#;

/// Raw atomic writes from `writers` threads, each to its own file, for `dur`.
pub async fn raw_atomic_writes(dir: &Path, writers: usize, dur: Duration) -> Run {
    let _ = std::fs::create_dir_all(dir);
    let mut handles = Vec::new();
    for w in 0..writers {
        let dir = dir.to_path_buf();
        handles.push(tokio::task::spawn_blocking(move || {
            let mut run = Run::default();
            let start = Instant::now();
            while start.elapsed() < dur {
                let t0 = Instant::now();
                match raw_atomic_write(&dir, &format!("w{w}.json"), RAW_BYTES) {
                    Ok(()) => {
                        run.ok += 1;
                        run.latencies.push(t0.elapsed());
                    }
                    Err(e) => {
                        run.errors += 1;
                        run.first_error.get_or_insert(e.to_string());
                    }
                }
            }
            run
        }));
    }
    let mut total = Run::default();
    for h in handles {
        let r = h.await.expect("writer");
        total.ok += r.ok;
        total.errors += r.errors;
    }
    total.elapsed = dur;
    total
}

/// `n` raw atomic writes one after another, each timed.
pub async fn raw_atomic_writes_seq(dir: &Path, n: usize) -> Run {
    let dir = dir.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let _ = std::fs::create_dir_all(&dir);
        let mut run = Run::default();
        for _ in 0..n {
            let t0 = Instant::now();
            if raw_atomic_write(&dir, "seq.json", RAW_BYTES).is_ok() {
                run.ok += 1;
                run.latencies.push(t0.elapsed());
            } else {
                run.errors += 1;
            }
        }
        run
    })
    .await
    .expect("writer")
}

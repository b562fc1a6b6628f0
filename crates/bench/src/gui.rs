//! `clawpair-bench --gui` (built with the `gui` feature, run under a D-Bus session and a display:
//! `dbus-run-session -- xvfb-run -a …`): the tray app's own figures. Request-to-notification
//! latency — from `channel.inbound` to the `Notify` call reaching a stand-in notification
//! server — beside a bare notify-rust call from this process; and the idle tray app's CPU and
//! memory beside the headless gateway's, over the same window.

use std::path::Path;
use std::process::{Command, ExitCode, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clawpair_core::client::{Client, ConnectOptions};
use clawpair_core::clock::SystemClock;
use clawpair_core::service::Service;
use clawpair_core::store::StatePaths;
use clawpair_devtools::notifyd::Notifyd;
use serde_json::json;

use crate::proc::{self, Server};
use crate::rows::{ms, pct, Row, Table};
use crate::Plan;

/// Hidden first argument that turns this binary into the tray app (hidden, no window).
pub const CHILD_APP: &str = "__app";

/// The tray app child: exactly what `clawpair --state-dir DIR --hidden` runs.
pub fn child_app(dir: Option<&str>) -> ExitCode {
    let Some(dir) = dir else {
        eprintln!("{CHILD_APP} needs a state directory");
        return ExitCode::from(2);
    };
    clawpair_core::logging::init_cli();
    let args = clawpair_app::app::AppArgs {
        state_dir: Some(dir.into()),
        hidden: true,
        show: false,
        attach: None,
        tls_fingerprint: None,
    };
    match clawpair_app::app::run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(1)
        }
    }
}

/// Starts the tray app on `dir` and waits for its gateway's run record.
fn start_app(dir: &Path, log: &Path) -> Result<Server, String> {
    let log_file = std::fs::File::create(log).map_err(|e| format!("{}: {e}", log.display()))?;
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let child = Command::new(exe)
        .arg(CHILD_APP)
        .arg(dir)
        .env("RUST_LOG", "warn")
        .env_remove("OPENCLAW_STATE_DIR")
        .env_remove("CLAWPAIR_STATE_DIR")
        .stdout(Stdio::null())
        .stderr(log_file)
        .spawn()
        .map_err(|e| format!("cannot start the tray app: {e}"))?;
    let record = StatePaths::new(dir).gateway_record();
    let end = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(rec) = clawpair_core::store::runrec::read(&StatePaths::new(dir)) {
            if rec.pid == child.id() {
                let addr = rec
                    .address
                    .parse()
                    .map_err(|_| format!("bad address {:?}", rec.address))?;
                return Ok(Server::spawned(addr, child));
            }
        }
        if Instant::now() > end {
            return Err(format!(
                "the tray app wrote no {} within a minute (see {})",
                record.display(),
                log.display()
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub async fn run(plan: &Plan) -> Result<Table, String> {
    let notifyd = Notifyd::start().await?;
    let n = if plan.quick { 40 } else { 200 };
    let wait = Duration::from_secs(10);

    // Baseline: this process shows a notification itself, the shortest path to the server.
    eprintln!("notifications: {n} straight from notify-rust");
    let mut base = Vec::with_capacity(n);
    for i in 0..n {
        let tag = format!("baseline-{i}");
        let t0 = Instant::now();
        notify_rust::Notification::new()
            .appname("clawpair-bench")
            .summary("baseline")
            .body(&tag)
            .show_async()
            .await
            .map_err(|e| format!("baseline notification: {e}"))?;
        base.push(notifyd.wait_shown(&tag, wait).await?.at - t0);
    }

    let root = std::env::temp_dir().join(format!("clawpair-bench-gui-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let app_dir = root.join("app");
    let (service, _) = Service::open(StatePaths::new(&app_dir), Arc::new(SystemClock))
        .map_err(|e| e.to_string())?;
    service
        .update_settings("bench", |s| {
            s.gateway.port = 0;
            s.ui.notifications = true;
            s.ui.show_guide = false;
            Ok(())
        })
        .map_err(|e| e.to_string())?;
    let token = service.settings().gateway.auth.token.clone();
    drop(service);
    let app = start_app(&app_dir, &root.join("app.log"))?;

    let result = async {
        let url = format!("ws://{}/", app.addr);
        let mut bridge = Client::connect(&ConnectOptions::operator(&url, &token, "bench-bridge"), |_, _| {})
            .await
            .map_err(|e| e.to_string())?;
        eprintln!("notifications: {n} through the tray app");
        let mut ours = Vec::with_capacity(n);
        for i in 0..n {
            let tag = format!("bench-{i}");
            let t0 = Instant::now();
            // One account per request, so the three-per-account cap never drops one.
            let d = bridge
                .call(
                    "channel.inbound",
                    json!({ "channel": "bench", "accountId": format!("a{i}"), "senderId": format!("s{i}"), "meta": { "username": tag } }),
                )
                .await
                .map_err(|e| e.to_string())?;
            if d["decision"] != "challenge" {
                return Err(format!("expected a challenge, got {d}"));
            }
            ours.push(notifyd.wait_shown(&tag, wait).await?.at - t0);
        }
        bridge.close().await;

        // Idle: the tray app beside a headless gateway, over the same window.
        let gw_dir = root.join("gateway");
        Service::open(StatePaths::new(&gw_dir), Arc::new(SystemClock)).map_err(|e| e.to_string())?;
        let gw = proc::start_gateway_with(&gw_dir, &root.join("gateway.log"), &[])?;
        let window = if plan.quick { Duration::from_secs(10) } else { Duration::from_secs(60) };
        eprintln!("idle: {window:?} of the tray app beside the headless gateway");
        tokio::time::sleep(Duration::from_secs(2)).await;
        let (a0, g0) = (app.cpu(), gw.cpu());
        tokio::time::sleep(window).await;
        let (a1, g1) = (app.cpu(), gw.cpu());
        let (app_rss, gw_rss) = (app.rss_kib(), gw.rss_kib());
        gw.stop();
        let share = |d: Duration| d.as_secs_f64() / window.as_secs_f64() * 100.0;
        let (app_cpu, gw_cpu) = (share(a1.saturating_sub(a0)), share(g1.saturating_sub(g0)));

        let (o50, o99, b50, b99) = (pct(&mut ours, 0.5), pct(&mut ours, 0.99), pct(&mut base, 0.5), pct(&mut base, 0.99));
        let mut t = Table::new(plan);
        t.push(Row {
            metric: format!("request → notification latency p50 / p99 (`channel.inbound` to D-Bus `Notify`, {n} requests)"),
            ours: format!("{} / {}", ms(o50), ms(o99)),
            baseline: format!("{} / {} (notify-rust call from this process)", ms(b50), ms(b99)),
            ratio: format!("p99 +{}", ms(o99.saturating_sub(b99))),
            target: "p99 ≤ 100 ms".into(),
            met: if o99 <= Duration::from_millis(100) { "yes".into() } else { "**no**".into() },
        });
        t.push(Row {
            metric: format!("idle CPU over {} s: tray app (hidden) vs headless gateway", window.as_secs()),
            ours: format!("{app_cpu:.2}%"),
            baseline: format!("{gw_cpu:.2}%"),
            ratio: "—".into(),
            target: "~0% (no polling timers)".into(),
            met: if app_cpu < 0.5 { "yes".into() } else { "**no**".into() },
        });
        t.push(Row {
            metric: "resident memory: tray app (hidden, no window yet) vs headless gateway".into(),
            ours: format!("{:.1} MiB", app_rss as f64 / 1024.0),
            baseline: format!("{:.1} MiB", gw_rss as f64 / 1024.0),
            ratio: format!("×{:.1}", app_rss as f64 / gw_rss.max(1) as f64),
            target: "—".into(),
            met: "—".into(),
        });
        Ok(t)
    }
    .await;
    app.stop();
    let _ = std::fs::remove_dir_all(&root);
    let mut t = result?;
    t.machine = proc::machine();
    Ok(t)
}

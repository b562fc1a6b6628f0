//! `clawpair-bench --peer openclaw` (also alone with `--companion`): ClawPair attached to a real
//! OpenClaw gateway as its approval desk, beside what OpenClaw's own Linux companion does, which
//! polls the local gateway about every 15 s (its documented interval; a request waits for the
//! next poll, uniformly 0–15 s). Two figures:
//! - **request → ClawPair**: from a device's connect with a setup code (OpenClaw records its
//!   pairing request and answers `NOT_PAIRED`) to the request reaching ClawPair's event stream,
//!   which the tray's notification is shown from (that last D-Bus call is `--gui`'s row);
//! - **re-attached after a restart**: OpenClaw stopped and started again on its port; from the
//!   moment it accepts an operator's connect again to ClawPair being attached.

use std::path::Path;
use std::time::{Duration, Instant};

use clawpair_core::attach::remote::{Remote, Target, TokenSource};
use clawpair_core::client::{Auth, Client, ConnectOptions, Identity};
use clawpair_core::events::{Event, EventBus};
use clawpair_core::owner::OwnerRequest;
use tokio::sync::broadcast;

use crate::peer::{self, OpenClaw};
use crate::proc::Server;
use crate::rows::{ms, pct, yes, Row, Table};

const TOKEN: &str = "clawpair-bench-companion-token";

/// OpenClaw's Linux companion's polling interval, as its sources set it.
const POLL: Duration = Duration::from_secs(15);

/// How long anything here may take before the run gives up.
const LIMIT: Duration = Duration::from_secs(180);

pub async fn run(oc: &OpenClaw, quick: bool, dir: &Path) -> Result<Table, String> {
    peer::check_loopback_only()?;
    let home = dir.join("openclaw-companion");
    let port = peer::free_port()?;
    let url = format!("ws://127.0.0.1:{port}");
    let mut t = Table::versus(quick, "OpenClaw's Linux companion (polls every 15 s)");
    eprintln!("companion: starting OpenClaw's gateway on {url}");
    let server = oc.start_gateway(&home, port, TOKEN)?;
    let mut server = Some(server);
    let result = measure(oc, &home, port, &url, quick, &mut server, &mut t).await;
    if let Some(s) = server {
        s.stop();
    }
    result.map(|()| t)
}

async fn measure(
    oc: &OpenClaw,
    home: &Path,
    port: u16,
    url: &str,
    quick: bool,
    server: &mut Option<Server>,
    t: &mut Table,
) -> Result<(), String> {
    accepting(url).await?;
    let events = EventBus::new(1024);
    let mut rx = events.subscribe();
    let remote = Remote::spawn(
        Target {
            url: url.to_string(),
            token: TokenSource::Given(TOKEN.into()),
            tls_pin: None,
            local_state: None,
            label: "bench".into(),
        },
        events,
    );
    wait_attached(&mut rx).await?;

    // Device requests, one at a time, each rejected once seen so none piles up.
    let n = if quick { 10 } else { 40 };
    let mut lags = Vec::with_capacity(n);
    for i in 0..n {
        let code = remote
            .answer(&OwnerRequest::SetupCreate {
                url: Some(url.to_string()),
                retire_previous: false,
            })
            .await
            .ok_or("no setup code from OpenClaw")?
            .map_err(|e| format!("a setup code from OpenClaw: {}", e.message))?;
        let setup = code["setupCode"].as_str().unwrap_or_default();
        let bootstrap = clawpair_core::pairing::setup::decode_setup_code(setup)
            .map_err(|e| format!("OpenClaw's setup code: {e}"))?
            .bootstrap_token;
        let phone = Identity::generate();
        let mut opts = ConnectOptions::node(url, phone.clone(), Auth::BootstrapToken(bootstrap));
        opts.display_name = Some(format!("bench phone {i}"));
        let asked = Instant::now();
        let connect = tokio::spawn(async move { Client::connect(&opts, |_, _| {}).await });
        let device = phone.device_id();
        let request = next(&mut rx, "the device's request", |e| match e {
            Event::DevicePairRequested(r) if r.device_id == device => Some(r.request_id.clone()),
            _ => None,
        })
        .await?;
        lags.push(asked.elapsed());
        let _ = connect.await;
        remote
            .answer(&OwnerRequest::DeviceReject {
                request_id: request,
            })
            .await
            .ok_or("no answer to the reject")?
            .map_err(|e| format!("rejecting on OpenClaw: {}", e.message))?;
    }
    let (p50, p99) = (pct(&mut lags, 0.5), pct(&mut lags, 0.99));
    // A request made at a random moment waits for the companion's next poll.
    let (poll50, poll99) = (POLL.mul_f64(0.5), POLL.mul_f64(0.99));
    for (label, ours, theirs) in [("p50", p50, poll50), ("p99", p99, poll99)] {
        t.push(Row {
            metric: format!("device request → ClawPair's notification, {label} ({n} requests)"),
            ours: ms(ours),
            baseline: ms(theirs),
            ratio: format!("{:.0}× sooner", theirs.as_secs_f64() / ours.as_secs_f64()),
            target: "≤ 1 s".into(),
            met: yes(ours <= Duration::from_secs(1)),
        });
    }

    // OpenClaw restarts on the same port. The attach is timed as it happens, by a task of its
    // own: it may come before this run's probe is let in.
    eprintln!("companion: restarting OpenClaw's gateway");
    let mut seen = rx.resubscribe();
    let back = tokio::spawn(async move {
        next(&mut seen, "the detach", |e| {
            matches!(
                e,
                Event::AttachStatus {
                    attached: false,
                    ..
                }
            )
            .then_some(())
        })
        .await?;
        next(&mut seen, "the re-attach", |e| {
            matches!(e, Event::AttachStatus { attached: true, .. }).then_some(())
        })
        .await?;
        Ok::<Instant, String>(Instant::now())
    });
    if let Some(s) = server.take() {
        s.stop();
    }
    *server = Some(oc.start_gateway(home, port, TOKEN)?);
    let ready = accepting(url).await?;
    let attached = back.await.map_err(|e| e.to_string())??;
    // Attached before this run's own probe got in: no wait at all.
    let lag = attached.saturating_duration_since(ready);
    t.push(Row {
        metric: "re-attached after OpenClaw restarts (from it accepting connects again)".into(),
        ours: ms(lag),
        baseline: format!("{} (next poll)", ms(poll50)),
        ratio: "—".into(),
        target: "≤ 2 s".into(),
        met: yes(lag <= Duration::from_secs(2)),
    });
    t.note(format!(
        "request → notification is measured to ClawPair's event stream, which the tray shows \
         the notification from at once; the companion's figures are its 15 s polling interval \
         (a request waits for the next poll: p50 {}, p99 {}).",
        ms(poll50),
        ms(poll99)
    ));
    Ok(())
}

/// Waits until an operator's connect with the token is let in (OpenClaw answers "gateway
/// starting" for a while after it listens); returns when it was.
async fn accepting(url: &str) -> Result<Instant, String> {
    let end = Instant::now() + LIMIT;
    loop {
        let opts = ConnectOptions::operator(url, TOKEN, "gateway-client");
        if let Ok(c) = Client::connect(&opts, |_, _| {}).await {
            let at = Instant::now();
            c.close().await;
            return Ok(at);
        }
        if Instant::now() > end {
            return Err(format!("OpenClaw at {url} did not let an operator in"));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits for the first attach.
async fn wait_attached(rx: &mut broadcast::Receiver<Event>) -> Result<(), String> {
    next(rx, "the attach", |e| {
        matches!(e, Event::AttachStatus { attached: true, .. }).then_some(())
    })
    .await
}

/// The next event `pick` accepts, within [`LIMIT`].
async fn next<T>(
    rx: &mut broadcast::Receiver<Event>,
    what: &str,
    mut pick: impl FnMut(&Event) -> Option<T>,
) -> Result<T, String> {
    let end = tokio::time::Instant::now() + LIMIT;
    loop {
        match tokio::time::timeout_at(end, rx.recv()).await {
            Ok(Ok(e)) => {
                if let Some(v) = pick(&e) {
                    return Ok(v);
                }
            }
            Ok(Err(broadcast::error::RecvError::Lagged(_))) => {}
            Ok(Err(e)) => return Err(format!("the event stream ended waiting for {what}: {e}")),
            Err(_) => return Err(format!("no {what} within {LIMIT:?}")),
        }
    }
}

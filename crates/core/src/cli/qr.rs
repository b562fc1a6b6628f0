//! `clawpair qr`: a setup code for a phone, as a terminal QR, text, JSON or PNG.

use super::output::{print_json, s, until};
use super::{CliError, CliResult, Ctx, QrArgs};
use crate::owner::OwnerRequest;

pub fn run(ctx: &Ctx, a: QrArgs) -> CliResult {
    let mut v = ctx.call(OwnerRequest::SetupCreate {
        url: a.url.clone(),
        retire_previous: false,
    })?;
    // What would keep a phone from using it, said before it is scanned (on stderr: the code
    // itself stays alone on stdout for scripts).
    let live = crate::store::runrec::read_live(ctx.service.paths());
    let listening = live.as_ref().and_then(|r| r.address.parse().ok());
    let mut warnings = crate::service::setup_warnings(&s(&v, "url"), listening);
    if live.is_none() {
        warnings.push(
            "no gateway is running here: start it (`clawpair gateway`, or the app) before the phone scans this code".into(),
        );
    }
    for w in &warnings {
        eprintln!("warning: {w}");
    }
    v["warnings"] = warnings.into();
    // The code is ours, not requester text: print it whole.
    let code = v["setupCode"].as_str().unwrap_or_default().to_string();
    if let Some(path) = &a.png {
        let png = crate::qr::png(&code, 8).map_err(|e| CliError::refused(e.to_string()))?;
        crate::store::fs::write_atomic(path, &png).map_err(|e| CliError::refused(e.to_string()))?;
    }
    if a.json {
        print_json(&v);
        return Ok(());
    }
    if a.setup_code_only {
        println!("{code}");
        return Ok(());
    }
    let qr = crate::qr::terminal(&code).map_err(|e| CliError::refused(e.to_string()))?;
    println!("{qr}");
    println!("Setup code: {code}");
    println!("Gateway:    {}", s(&v, "url"));
    println!(
        "Expires:    {} (single use; bound to the first device that uses it)",
        until(ctx.now(), v["expiresAtMs"].as_i64())
    );
    if let Some(p) = &a.png {
        println!("QR image:   {}", p.display());
    }
    println!(
        "Scan it with the OpenClaw app on the phone (or run `clawpair node pair <code>` on a computer)."
    );
    println!(
        "The phone shows a fingerprint: approve only if `clawpair devices list` shows the same, with"
    );
    println!("`clawpair devices approve <fingerprint or request id>`.");
    Ok(())
}

//! `clawpair attach`: the OpenClaw gateways companion mode is the approval desk of, listed,
//! added and removed in `clawpair.json` (`attach.url` and `attach.gateways`). A running app
//! follows the change at once. Tokens are read from standard input, kept `0600` with the
//! settings, and never printed.

use std::io::BufRead;

use serde::Serialize;
use serde_json::json;

use super::output::{print_json, table};
use super::{AttachCmd, CliError, CliResult, Ctx};
use crate::attach::{add_gateway, default_label, remove_gateway, THIS_COMPUTER};
use crate::config::{AttachGateway, AttachSettings};
use crate::sanitize::sanitize;

pub fn run(ctx: &Ctx, c: AttachCmd) -> CliResult {
    match c {
        AttachCmd::List { json } => list(&ctx.service.settings().attach, json),
        AttachCmd::Add {
            url,
            label,
            tls_fingerprint,
            token_stdin,
        } => {
            if !token_stdin {
                return Err(CliError::usage(
                    "a gateway's token is needed: pass it on standard input with --token-stdin \
                     (never on the command line, where other users can see it)",
                ));
            }
            let token = read_token()?;
            let g = AttachGateway {
                url,
                token: Some(token),
                tls_fingerprint,
                label,
                ..Default::default()
            };
            let shown = g.label.clone().unwrap_or_else(|| default_label(&g.url));
            let url = g.url.trim().to_string();
            let on = ctx
                .service
                .update_settings("cli", move |s| {
                    add_gateway(&mut s.attach, g)?;
                    Ok(s.attach.enabled)
                })
                .map_err(|e| CliError::refused(e.to_string()))?;
            println!("Added {shown} ({url}).");
            if !on {
                println!(
                    "Companion mode is off: start the app with `clawpair --attach` (or attach in Settings) to be its approval desk."
                );
            }
            Ok(())
        }
        AttachCmd::Remove { gateway } => {
            let gone = ctx
                .service
                .update_settings("cli", move |s| remove_gateway(&mut s.attach, &gateway))
                .map_err(|e| CliError::refused(e.to_string()))?;
            println!(
                "Removed {} ({}).",
                gone.label.unwrap_or_else(|| default_label(&gone.url)),
                gone.url
            );
            Ok(())
        }
    }
}

/// The token: the first line of standard input, which must not be empty.
fn read_token() -> Result<String, CliError> {
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).map_err(|e| {
        CliError::refused(format!("cannot read the token from standard input: {e}"))
    })?;
    let t = line.trim().to_string();
    if t.is_empty() {
        return Err(CliError::usage(
            "standard input held no token (give it on one line)",
        ));
    }
    Ok(t)
}

/// One gateway companion mode attaches to, as listed: whether its token is set, never the
/// token.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Row<'a> {
    label: String,
    url: Option<&'a str>,
    tls_fingerprint: Option<&'a str>,
    token_set: bool,
    /// The one `attach.url` (or this computer's OpenClaw) names.
    primary: bool,
}

/// Every gateway companion mode attaches to, first the one `attach.url` (or this computer's
/// OpenClaw) names.
fn rows(a: &AttachSettings) -> Vec<Row<'_>> {
    let mut out = vec![Row {
        label: a
            .url
            .as_deref()
            .map_or_else(|| THIS_COMPUTER.to_string(), default_label),
        url: a.url.as_deref(),
        tls_fingerprint: a.tls_fingerprint.as_deref(),
        token_set: a.token.is_some(),
        primary: true,
    }];
    out.extend(a.gateways.iter().map(|g| Row {
        label: g.label.clone().unwrap_or_else(|| default_label(&g.url)),
        url: Some(&g.url),
        tls_fingerprint: g.tls_fingerprint.as_deref(),
        token_set: g.token.is_some(),
        primary: false,
    }));
    out
}

fn list(a: &AttachSettings, json: bool) -> CliResult {
    let rows = rows(a);
    if json {
        print_json(&json!({ "enabled": a.enabled, "gateways": rows }));
        return Ok(());
    }
    let lines: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                sanitize(&r.label),
                r.url
                    .map_or("(found in OpenClaw's config)".into(), sanitize),
                match (r.token_set, r.primary) {
                    (true, _) => "given".into(),
                    (false, true) => "OpenClaw's config".into(),
                    (false, false) => "missing".into(),
                },
                r.tls_fingerprint
                    .map_or("-".into(), |p| p.chars().take(11).collect::<String>() + "…"),
            ]
        })
        .collect();
    print!(
        "{}",
        table(&["GATEWAY", "URL", "TOKEN", "PINNED CERTIFICATE"], &lines)
    );
    println!(
        "Companion mode is {}.",
        if a.enabled {
            "on"
        } else {
            "off (`clawpair --attach` turns it on)"
        }
    );
    Ok(())
}

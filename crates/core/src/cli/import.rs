//! `clawpair import --from-openclaw [DIR]`: takes OpenClaw's approved senders and paired
//! devices into ClawPair's store, and says what it took and what it skipped. The work is in
//! [`crate::import`]; this file reads the arguments and prints.

use std::path::PathBuf;

use super::output::{print_json, table};
use super::{CliError, CliResult, Ctx, ImportArgs};
use crate::import::{self, ImportReport};
use crate::store::openclaw;

/// The OpenClaw directory to read: the argument, else `$OPENCLAW_STATE_DIR`, else `~/.openclaw`.
fn source_dir(arg: Option<Option<PathBuf>>) -> Result<PathBuf, CliError> {
    match arg.flatten() {
        Some(d) => Ok(d),
        None => crate::config::openclaw_state_dir().ok_or_else(|| {
            CliError::refused(
                "cannot find your home directory; name OpenClaw's directory: clawpair import --from-openclaw DIR",
            )
        }),
    }
}

pub fn run(ctx: &Ctx, a: ImportArgs) -> CliResult {
    let dir = source_dir(a.from_openclaw)?;
    let store = openclaw::read(&openclaw::store_path(&dir))
        .map_err(|e| CliError::refused(e.to_string()))?;
    let report = import::apply(&ctx.service, &store, a.dry_run, "cli")
        .map_err(|e| CliError::refused(e.to_string()))?;
    if a.json {
        print_json(&serde_json::to_value(&report).unwrap_or_default());
    } else {
        print!("{}", human(&report));
    }
    Ok(())
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// The report for people. Every text in it is sanitised already; no token is in it.
pub fn human(r: &ImportReport) -> String {
    let mut out = format!(
        "OpenClaw store {} (schema version {}){}\n",
        r.source,
        r.schema_version,
        if r.wal_skipped {
            "; its -wal file could not be read (a read-only directory), so the latest writes of a running OpenClaw may be missing"
        } else {
            ""
        }
    );
    let verb = if r.dry_run {
        "Would import"
    } else {
        "Imported"
    };
    out.push_str(&format!(
        "{verb} {}\n",
        plural(r.senders.len(), "approved sender", "approved senders")
    ));
    if !r.senders.is_empty() {
        let rows: Vec<Vec<String>> = r
            .senders
            .iter()
            .map(|s| vec![s.channel.clone(), s.account_id.clone(), s.sender_id.clone()])
            .collect();
        out.push_str(&indent(&table(&["CHANNEL", "ACCOUNT", "SENDER"], &rows)));
    }
    out.push_str(&format!(
        "{verb} {}{}\n",
        plural(r.devices.len(), "paired device", "paired devices"),
        if r.devices.iter().any(|d| !d.token_roles.is_empty()) {
            " (their existing tokens keep working)"
        } else {
            ""
        }
    ));
    if !r.devices.is_empty() {
        let rows: Vec<Vec<String>> = r
            .devices
            .iter()
            .map(|d| {
                vec![
                    d.display_name.clone(),
                    d.fingerprint.clone(),
                    d.roles.join(","),
                    if d.token_roles.is_empty() {
                        "none: pairs again with a setup code".into()
                    } else {
                        d.token_roles.join(",")
                    },
                    d.device_id.clone(),
                ]
            })
            .collect();
        out.push_str(&indent(&table(
            &["NAME", "FINGERPRINT", "ROLES", "TOKENS", "DEVICE ID"],
            &rows,
        )));
    }
    if !r.skipped.is_empty() {
        out.push_str(&format!("Skipped {}:\n", r.skipped.len()));
        for s in &r.skipped {
            out.push_str(&format!("  {} {}: {}\n", s.kind, s.what, s.reason));
        }
    }
    for n in &r.notes {
        out.push_str(&format!("Note: {} {}: {}\n", n.kind, n.what, n.reason));
    }
    if r.dry_run {
        out.push_str("Nothing was written (--dry-run).\n");
    }
    out
}

fn indent(t: &str) -> String {
    t.lines().map(|l| format!("  {l}\n")).collect()
}

//! `clawpair audit`: the audit log, as a table or JSON lines, optionally following it.

use std::io::{Read, Seek, SeekFrom};
use std::time::Duration;

use serde_json::json;

use super::output::{print_json, table};
use super::{AuditArgs, CliError, CliResult, Ctx};
use crate::store::audit::AuditEntry;

fn row(e: &AuditEntry) -> Vec<String> {
    let details: Vec<String> = e
        .details
        .iter()
        .map(|(k, v)| {
            format!(
                "{k}={}",
                v.as_str()
                    .map(crate::sanitize::sanitize)
                    .unwrap_or_else(|| v.to_string())
            )
        })
        .collect();
    vec![
        super::output::short_time(&e.ts),
        e.action.clone(),
        if e.credential.is_empty() || e.credential == "local" {
            e.via.clone()
        } else {
            format!("{} ({})", e.via, e.credential)
        },
        details.join(" "),
    ]
}

pub fn run(ctx: &Ctx, a: AuditArgs) -> CliResult {
    let entries = ctx
        .service
        .audit_tail(a.limit.max(1))
        .map_err(|e| CliError::refused(e.to_string()))?;
    if a.json && !a.follow {
        print_json(&json!({ "entries": entries }));
    } else if a.json {
        for e in &entries {
            println!("{}", serde_json::to_string(e).unwrap_or_default());
        }
    } else if entries.is_empty() && !a.follow {
        println!("The audit log is empty.");
    } else {
        let rows: Vec<Vec<String>> = entries.iter().map(row).collect();
        print!("{}", table(&["TIME", "ACTION", "VIA", "DETAILS"], &rows));
    }
    if !a.follow {
        return Ok(());
    }
    // Follow the file like `tail -f`, woken by the file's changes; rotation starts it over.
    let path = ctx.service.paths().audit_log();
    let watch =
        crate::service::watch::DirWatch::new(&[ctx.service.paths().logs_dir()], is_audit_log)
            .map_err(|e| eprintln!("warning: {e}; looking at the log every second instead"))
            .ok();
    let mut pos = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    let mut partial = Vec::new();
    loop {
        match &watch {
            Some((_, rx)) => {
                if crate::service::watch::next_burst(rx).is_none() {
                    return Ok(());
                }
            }
            None => std::thread::sleep(Duration::from_secs(1)),
        }
        let len = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        if len < pos {
            pos = 0;
        }
        if len == pos {
            continue;
        }
        let Ok(mut f) = std::fs::File::open(&path) else {
            continue;
        };
        if f.seek(SeekFrom::Start(pos)).is_err() {
            continue;
        }
        let mut buf = Vec::new();
        if f.take(len - pos).read_to_end(&mut buf).is_err() {
            continue;
        }
        pos = len;
        partial.extend_from_slice(&buf);
        while let Some(nl) = partial.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = partial.drain(..=nl).collect();
            if let Ok(e) = serde_json::from_slice::<AuditEntry>(&line) {
                if a.json {
                    println!("{}", serde_json::to_string(&e).unwrap_or_default());
                } else {
                    println!("{}", row(&e).join("  "));
                }
            }
        }
    }
}

/// The audit log and the file it is rotated to.
fn is_audit_log(p: &std::path::Path) -> bool {
    p.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with("audit.jsonl"))
}

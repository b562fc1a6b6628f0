//! `clawpair audit`: the audit log, as a table or JSON lines, optionally following it.

use std::io::{Read, Seek, SeekFrom};
use std::time::Duration;

use serde_json::json;

use super::output::{print_json, table};
use super::{AuditArgs, CliError, CliResult, Ctx};
use crate::service::activity::Names;
use crate::store::audit::AuditEntry;

/// One entry for a person: when, and what happened in a sentence (`--json` keeps the record).
fn row(e: &AuditEntry, names: &Names) -> Vec<String> {
    vec![
        super::output::short_time(&e.ts),
        crate::service::activity::sentence(e, names),
    ]
}

pub fn run(ctx: &Ctx, a: AuditArgs) -> CliResult {
    let entries = ctx
        .service
        .audit_tail(a.limit.max(1))
        .map_err(|e| CliError::refused(e.to_string()))?;
    let paired = ctx
        .service
        .device_list()
        .map(|l| l.paired)
        .unwrap_or_default();
    let mut names = Names::gather(&entries, &paired);
    if a.json && !a.follow {
        print_json(&json!({ "entries": entries }));
    } else if a.json {
        for e in &entries {
            println!("{}", serde_json::to_string(e).unwrap_or_default());
        }
    } else if entries.is_empty() && !a.follow {
        println!("The audit log is empty.");
    } else {
        let rows: Vec<Vec<String>> = entries.iter().map(|e| row(e, &names)).collect();
        print!("{}", table(&["TIME", "WHAT HAPPENED"], &rows));
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
                    names = Names::gather(std::slice::from_ref(&e), &[]).over(names);
                    println!("{}", row(&e, &names).join("  "));
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

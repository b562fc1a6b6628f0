//! `clawpair doctor [--fix]`: permissions, corrupt and moved-aside files, stale entries, names
//! read from files that may not become paths, and OpenClaw's store in or beside the state
//! directory.

use std::path::{Path, PathBuf};

use super::{CliError, CliResult, Ctx};
use crate::clock::{Clock, SystemClock};
use crate::config::shown_path;
use crate::pairing::dm::PairingFile;
use crate::sanitize::sanitize;
use crate::service::Service;
use crate::store::dm::stored_account;
use crate::store::fs::{mode_of, owner_edited, read_bytes, set_mode, DIR_MODE, FILE_MODE};
use crate::store::legacy::{self, OPENCLAW_STORE};
use crate::store::{ChannelName, StatePaths};

struct Report {
    fix: bool,
    problems: usize,
}

impl Report {
    fn ok(&self, msg: &str) {
        println!("ok     {msg}");
    }
    /// Worth knowing, not a problem.
    fn note(&self, msg: &str) {
        println!("note   {msg}");
    }
    /// A problem; `repair` runs with --fix and says what it did.
    fn problem(&mut self, msg: &str, repair: Option<&dyn Fn() -> Result<String, String>>) {
        match (self.fix, repair) {
            (true, Some(f)) => match f() {
                Ok(done) => println!("fixed  {msg}: {done}"),
                Err(e) => {
                    self.problems += 1;
                    println!("FAIL   {msg}: could not fix: {e}");
                }
            },
            _ => {
                self.problems += 1;
                println!("warn   {msg}");
            }
        }
    }
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        let Ok(ft) = e.file_type() else { continue };
        if ft.is_symlink() {
            continue;
        }
        out.push(p.clone());
        if ft.is_dir() {
            walk(&p, out);
        }
    }
}

fn same_dir(a: &Path, b: &Path) -> bool {
    a == b
        || matches!((std::fs::canonicalize(a), std::fs::canonicalize(b)), (Ok(x), Ok(y)) if x == y)
}

/// OpenClaw's SQLite store in the state directory (OpenClaw shares it and will empty it) or in
/// OpenClaw's own directory beside it, and `*.migrated` files OpenClaw left behind.
fn openclaw(r: &mut Report, root: &Path) {
    let shown = shown_path(root);
    let default = crate::config::default_state_dir()
        .map(|d| shown_path(&d))
        .unwrap_or_else(|| "ClawPair's own directory".into());
    if root.join(OPENCLAW_STORE).exists() {
        r.problem(
            &format!(
                "{shown}/{OPENCLAW_STORE} is OpenClaw's store: OpenClaw 2026.9 uses this directory too, and `openclaw doctor` or its gateway's start imports and deletes ClawPair's credentials/*-pairing.json and *-allowFrom.json and renames devices/*.json to *.migrated; give ClawPair its own directory (start it without --state-dir and {} to use {default}; from ~/.openclaw or $OPENCLAW_STATE_DIR its first start moves ClawPair's files there), then run `clawpair import --from-openclaw {shown}` for what OpenClaw took",
                crate::config::STATE_DIR_ENV
            ),
            None,
        );
    }
    let leftovers = legacy::migrated_leftovers(root);
    if !leftovers.is_empty() {
        let dir = root.to_path_buf();
        r.problem(
            &format!(
                "{shown}/devices/ holds {}: device files OpenClaw imported and renamed, which ClawPair does not read",
                leftovers.join(", ")
            ),
            Some(&move || {
                legacy::restore_in_place(&dir)
                    .map(|done| {
                        if done.is_empty() {
                            "nothing could be restored (see the files)".into()
                        } else {
                            format!("restored {}", done.join(", "))
                        }
                    })
                    .map_err(|e| e.to_string())
            }),
        );
    }
    let Some(oc) = crate::config::openclaw_state_dir() else {
        return;
    };
    if same_dir(&oc, root) {
        return;
    }
    let oc_shown = shown_path(&oc);
    if oc.join(OPENCLAW_STORE).exists() {
        r.note(&format!(
            "OpenClaw keeps its store beside ClawPair's, in {oc_shown}/{OPENCLAW_STORE}; ClawPair only reads it. To take over its approved senders and paired devices (their tokens keep working), run `clawpair import --from-openclaw {oc_shown}` (add --dry-run to see what it would take)"
        ));
    }
    if legacy::holds_clawpair_state(&oc) {
        r.note(&format!(
            "{oc_shown} still holds an earlier ClawPair's state (clawpair.json); ClawPair started without --state-dir and {} moves it to {default}",
            crate::config::STATE_DIR_ENV
        ));
    }
    let left = legacy::migrated_leftovers(&oc);
    if !left.is_empty() {
        r.note(&format!(
            "{oc_shown}/devices/ holds {}, left by OpenClaw's import of the JSON files; if ClawPair used that directory, `clawpair import --from-openclaw {oc_shown}` takes its paired devices",
            left.join(", ")
        ));
    }
}

/// Channel and account names that come from files and do not pass the rule. A pending request
/// stored under such an account is listed but can never be approved; `--fix` removes just
/// those requests (as a rejection would: the sender gets a new code on the next message).
/// Files in `credentials/` whose names do not pass are never read; they are named, not touched.
/// Invalid channel keys in settings are reported with the other settings problems.
fn names(r: &mut Report, svc: &Service, paths: &StatePaths, now: crate::clock::Millis) {
    let mut clean = true;
    match svc.dm_ignored_files() {
        Ok(ignored) => {
            for f in ignored {
                clean = false;
                r.problem(
                    &format!(
                        "credentials/{}: {}; ClawPair ignores this file (rename or remove it)",
                        f.file, f.name
                    ),
                    None,
                );
            }
        }
        Err(e) => r.problem(&format!("cannot list credentials/: {e}"), None),
    }
    let ttl = svc.settings().dm_limits().ttl_ms;
    let mut files: Vec<(ChannelName, PathBuf)> = std::fs::read_dir(paths.credentials_dir())
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let channel = ChannelName::parse(name.strip_suffix("-pairing.json")?).ok()?;
            Some((channel, e.path()))
        })
        .collect();
    files.sort();
    for (channel, path) in files {
        let Ok(Some(bytes)) = read_bytes(&path) else {
            continue;
        };
        let Ok(file) = serde_json::from_slice::<PairingFile>(&bytes) else {
            continue;
        };
        let bad: Vec<String> = file
            .requests
            .iter()
            .filter(|q| !q.is_expired(now, ttl))
            .filter_map(|q| {
                let e = stored_account(q).err()?;
                Some(format!(
                    "request {} from sender {} is stored under an {e}",
                    sanitize(&q.code),
                    sanitize(&q.id)
                ))
            })
            .collect();
        if bad.is_empty() {
            continue;
        }
        clean = false;
        r.problem(
            &format!(
                "{}: {}; such a request is listed but cannot be approved: reject it, or correct its meta.accountId",
                path.display(),
                bad.join("; ")
            ),
            Some(&move || {
                svc.dm_remove_invalid(channel.as_str(), "doctor")
                    .map(|gone| {
                        format!(
                            "removed {} request(s), as if rejected (the sender gets a new code on the next message)",
                            gone.len()
                        )
                    })
                    .map_err(|e| e.to_string())
            }),
        );
    }
    if clean {
        r.ok("every channel and account name in credentials/ is valid");
    }
}

/// `doctor` on a state directory: the whole check, or, when `clawpair.json` does not parse
/// (and nothing else can start), what is wrong with it and the way back.
pub fn open_and_run(state_dir: Option<&Path>, fix: bool, restore_settings: bool) -> CliResult {
    let dir = crate::config::resolve_state_dir(state_dir)
        .map_err(|e| CliError::refused(e.to_string()))?;
    let paths = StatePaths::new(dir);
    match crate::config::read(&paths, &SystemClock) {
        Err(e @ crate::store::StoreError::Invalid { .. }) => {
            broken_settings(&paths, &e, restore_settings || (fix && asked_to_restore()))
        }
        _ if restore_settings => Err(CliError::refused(format!(
            "{} parses: nothing to restore",
            paths.settings().display()
        ))),
        _ => run(&Ctx::open(state_dir)?, fix),
    }
}

/// `doctor --fix` at a terminal, with settings that do not parse: asks before putting back
/// the last ones that did (never without a yes; off a terminal, `--restore-settings` says it).
fn asked_to_restore() -> bool {
    use std::io::{BufRead, IsTerminal, Write};
    if !std::io::stdin().is_terminal() {
        return false;
    }
    print!("clawpair.json does not parse. Put back the last settings ClawPair wrote? [y/N] ");
    let _ = std::io::stdout().flush();
    let mut answer = String::new();
    let _ = std::io::stdin().lock().read_line(&mut answer);
    matches!(answer.trim(), "y" | "Y" | "yes" | "Yes")
}

/// `clawpair.json` does not parse: say where and what, and offer the last settings ClawPair
/// wrote. With `restore`, put them back, keeping the broken file beside them.
fn broken_settings(paths: &StatePaths, e: &crate::store::StoreError, restore: bool) -> CliResult {
    let file = paths.settings();
    println!("State directory: {}", paths.root().display());
    println!("FAIL   {e}");
    let Some(last) = crate::config::last_good(paths) else {
        return Err(CliError::refused(format!(
            "no earlier settings were kept ({} is missing or unreadable): correct {} by hand; ClawPair starts again once it parses",
            paths.settings_last_good().display(),
            file.display()
        )));
    };
    let when = last.when.clone().unwrap_or_else(|| "earlier".into());
    if !restore {
        println!(
            "note   the last settings ClawPair wrote ({when}) are in {}",
            last.path.display()
        );
        return Err(CliError::refused(format!(
            "{} does not parse; correct it, or run `clawpair doctor --restore-settings` to put back the settings of {when} (your file is kept beside them)",
            file.display()
        )));
    }
    let aside =
        crate::config::restore_last_good(paths, &last, &SystemClock).map_err(CliError::refused)?;
    println!(
        "fixed  put back the settings of {when} from {}; your file is kept as {}",
        last.path.display(),
        aside.display()
    );
    Ok(())
}

pub fn run(ctx: &Ctx, fix: bool) -> CliResult {
    let mut r = Report { fix, problems: 0 };
    let paths = ctx.service.paths().clone();
    let root = paths.root().to_path_buf();
    println!("State directory: {}", root.display());

    // Permissions: 0700 for directories, 0600 for files.
    let mut all = vec![root.clone()];
    walk(&root, &mut all);
    let mut loose = 0;
    for p in &all {
        let is_dir = p.is_dir();
        let want = if is_dir { DIR_MODE } else { FILE_MODE };
        match mode_of(p) {
            Ok(m) if m & 0o077 != 0 => {
                loose += 1;
                let shown = format!("{} is {:o}, should be {:o}", p.display(), m, want);
                let target = p.clone();
                r.problem(
                    &shown,
                    Some(&move || {
                        set_mode(&target, want)
                            .map(|_| format!("now {want:o}"))
                            .map_err(|e| e.to_string())
                    }),
                );
            }
            _ => {}
        }
    }
    if loose == 0 {
        r.ok("permissions: directories 0700, files 0600");
    }

    // Files that were moved aside because they did not parse, and files that do not parse now.
    let mut corrupt_seen = false;
    for p in &all {
        let name = p
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if name.contains(".corrupt-") {
            corrupt_seen = true;
            r.problem(
                &format!(
                    "{} holds the content of a corrupt file; inspect it, then delete it",
                    p.display()
                ),
                None,
            );
        } else if name.ends_with(".json") && p.is_file() && !owner_edited(p) {
            if let Ok(Some(bytes)) = read_bytes(p) {
                if let Err(e) = serde_json::from_slice::<serde_json::Value>(&bytes) {
                    corrupt_seen = true;
                    let target = p.clone();
                    r.problem(
                        &format!("{} does not parse ({e})", p.display()),
                        Some(&move || {
                            crate::store::fs::move_aside(&target, &SystemClock)
                                .map(|to| format!("moved aside to {}", to.display()))
                                .map_err(|e| e.to_string())
                        }),
                    );
                }
            }
        } else if name.starts_with('.') && name.ends_with(".tmp") {
            let target = p.clone();
            r.problem(
                &format!("{} is a leftover temporary file", p.display()),
                Some(&move || {
                    std::fs::remove_file(&target)
                        .map(|_| "removed".to_string())
                        .map_err(|e| e.to_string())
                }),
            );
        }
    }
    if !corrupt_seen {
        r.ok("every state file parses");
    }

    // Settings that make no sense.
    match crate::config::read(&paths, &SystemClock) {
        Ok(s) => {
            let problems = s.problems();
            if problems.is_empty() {
                r.ok("clawpair.json settings are valid");
            }
            for p in problems {
                r.problem(&format!("clawpair.json: {p}"), None);
            }
        }
        Err(e) => r.problem(&e.to_string(), None),
    }

    // Stale pending entries (expired but still in the files).
    let now = SystemClock.now_ms();
    let settings = ctx.service.settings();
    let mut stale = 0usize;
    if let Ok(rd) = std::fs::read_dir(paths.credentials_dir()) {
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.ends_with("-pairing.json") {
                if let Ok(Some(b)) = read_bytes(&e.path()) {
                    if let Ok(f) = serde_json::from_slice::<crate::pairing::dm::PairingFile>(&b) {
                        stale += f
                            .requests
                            .iter()
                            .filter(|q| q.is_expired(now, settings.dm_limits().ttl_ms))
                            .count();
                    }
                }
            }
        }
    }
    if let Ok(Some(b)) = read_bytes(&paths.pending_devices()) {
        if let Ok(m) = serde_json::from_slice::<crate::pairing::device::PendingMap>(&b) {
            stale += m
                .values()
                .filter(|q| q.is_expired(now, settings.device_pending_ttl_ms()))
                .count();
        }
    }
    if stale == 0 {
        r.ok("no stale pending requests");
    } else {
        let svc = &ctx.service;
        r.problem(
            &format!("{stale} expired pending requests are still in the files"),
            Some(&|| {
                svc.dm_list(None).map_err(|e| e.to_string())?;
                svc.device_list().map_err(|e| e.to_string())?;
                Ok("pruned".into())
            }),
        );
    }

    names(&mut r, &ctx.service, &paths, now);

    openclaw(&mut r, &root);

    // A gateway record left behind by a crash: no gateway holds run/gateway.lock, whatever
    // process has the recorded pid now.
    if let Some(rec) = crate::store::runrec::stale(&paths) {
        let p = paths.clone();
        r.problem(
            &format!(
                "run/gateway.json names pid {} at {}, but no gateway holds run/gateway.lock (stale: the CLI ignores it)",
                rec.pid, rec.address
            ),
            Some(&move || {
                crate::store::runrec::remove_stale(&p)
                    .map(|gone| if gone { "removed" } else { "a gateway runs now; kept" }.to_string())
                    .map_err(|e| e.to_string())
            }),
        );
    } else {
        match crate::store::runrec::read_live(&paths) {
            Some(rec) => r.ok(&format!(
                "gateway running (pid {}, {})",
                rec.pid, rec.address
            )),
            None => {
                let s = ctx.service.settings();
                let at = s.listen_addr();
                match at.and_then(|at| {
                    crate::ports::port_holders(at)
                        .first()
                        .map(|h| (at, h.clone()))
                }) {
                    Some((at, h)) => r.problem(
                        &format!(
                            "no gateway running, and it cannot start: {}",
                            crate::ports::in_use(at, &h)
                        ),
                        None,
                    ),
                    None => r.ok("no gateway running"),
                }
            }
        }
    }

    if r.problems == 0 {
        println!("No problems found.");
        Ok(())
    } else {
        Err(CliError::refused(format!(
            "{} problem(s) found{}",
            r.problems,
            if fix {
                " that could not be fixed"
            } else {
                "; run `clawpair doctor --fix`"
            }
        )))
    }
}

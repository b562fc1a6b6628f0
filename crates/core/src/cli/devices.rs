//! `clawpair devices …`.

use serde_json::json;

use super::output::{ago, or_dash, print_json, s, short_ms, table, until};
use super::{read, CliError, CliResult, Ctx, DevicesCmd};
use crate::owner::{DeviceApproved, OwnerRequest};
use crate::sanitize::sanitize;
use crate::service::{DeviceList, PairedDeviceView, PendingDeviceView};

fn pending_rows(now: i64, pending: &[PendingDeviceView]) -> Vec<Vec<String>> {
    pending
        .iter()
        .map(|v| {
            let r = &v.request;
            vec![
                r.request_id.clone(),
                or_dash(sanitize(&v.name)),
                or_dash(sanitize(&r.platform)),
                r.fingerprint.clone(),
                sanitize(&r.role),
                or_dash(words(&r.scopes)),
                or_dash(sanitize(&r.remote_ip)),
                ago(now, Some(r.ts)),
                until(now, Some(v.expires_at_ms)),
                or_dash(v.kind.clone()),
            ]
        })
        .collect()
}

/// A list, comma-separated and sanitised for the terminal.
fn words(list: &[String]) -> String {
    list.iter()
        .map(|x| sanitize(x))
        .collect::<Vec<_>>()
        .join(",")
}

/// The fingerprint as typed, compared without case or dash (`dlsm l6kv` is `DLSM-L6KV`).
fn fingerprint_key(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

/// The pending request `arg` names: its id, a unique start of its id, or its device's
/// fingerprint. An argument that names none is passed on as it is (the gateway then says why
/// it is unknown: approved already, expired…); one that names several is refused with them.
fn pick_request(pending: &[PendingDeviceView], arg: &str) -> Result<String, CliError> {
    let arg = arg.trim();
    if pending.iter().any(|r| r.request.request_id == arg) {
        return Ok(arg.to_string());
    }
    let fp = fingerprint_key(arg);
    let by_fingerprint: Vec<&PendingDeviceView> = pending
        .iter()
        .filter(|r| fp.len() == 8 && fingerprint_key(&r.request.fingerprint) == fp)
        .collect();
    let by_prefix: Vec<&PendingDeviceView> = pending
        .iter()
        .filter(|r| arg.len() >= 4 && r.request.request_id.starts_with(&arg.to_ascii_lowercase()))
        .collect();
    let found = if by_fingerprint.is_empty() {
        by_prefix
    } else {
        by_fingerprint
    };
    match found.as_slice() {
        [] => Ok(arg.to_string()),
        [one] => Ok(one.request.request_id.clone()),
        many => {
            let list: Vec<String> = many
                .iter()
                .map(|r| {
                    format!(
                        "{} ({}, {})",
                        r.request.request_id,
                        or_dash(sanitize(&r.name)),
                        r.request.fingerprint
                    )
                })
                .collect();
            Err(CliError::refused(format!(
                "{arg:?} matches {} requests: {}; give more of the request id",
                many.len(),
                list.join(", ")
            )))
        }
    }
}

/// `arg` as an exact request id (looked up among the pending requests when it is not one
/// already).
fn request_named(ctx: &Ctx, arg: &str) -> Result<String, CliError> {
    // A whole request id (a UUID) needs no lookup.
    if arg.trim().len() == 36 {
        return Ok(arg.trim().to_string());
    }
    let list: DeviceList = ctx.ask(OwnerRequest::DeviceList {})?;
    pick_request(&list.pending, arg)
}

/// What an approved device may do, for the confirmation line.
fn scopes_in_words(d: &PairedDeviceView) -> String {
    let roles = if d.roles.is_empty() {
        "no role".to_string()
    } else {
        format!("role {}", words(&d.roles))
    };
    if d.scopes.is_empty() {
        roles
    } else {
        format!("{roles} and scopes {}", words(&d.scopes))
    }
}

fn print_preview(newest: &PendingDeviceView, json: bool) {
    let id = &newest.request.request_id;
    if json {
        print_json(
            &json!({ "selected": newest, "approveCommand": format!("clawpair devices approve {id}") }),
        );
        return;
    }
    let r = &newest.request;
    println!(
        "Newest request: {} ({}), fingerprint {}, role {}, from {}.",
        or_dash(sanitize(&newest.name)),
        or_dash(sanitize(&r.platform)),
        r.fingerprint,
        sanitize(&r.role),
        or_dash(sanitize(&r.remote_ip))
    );
    println!("Check the fingerprint on the device, then approve exactly this request with:");
    println!("  clawpair devices approve {id}");
}

pub fn run(ctx: &Ctx, cmd: DevicesCmd) -> CliResult {
    match cmd {
        DevicesCmd::List { json } => {
            let v = ctx.call(OwnerRequest::DeviceList {})?;
            if json {
                print_json(&v);
                return Ok(());
            }
            let DeviceList { pending, paired } = read(&OwnerRequest::DeviceList {}, v)?;
            let now = ctx.now();
            if pending.is_empty() && paired.is_empty() {
                println!("No device pairing entries.");
                return Ok(());
            }
            if !pending.is_empty() {
                println!("Pending ({})", pending.len());
                print!(
                    "{}",
                    table(
                        &[
                            "REQUEST",
                            "DEVICE",
                            "PLATFORM",
                            "FINGERPRINT",
                            "ROLE",
                            "SCOPES",
                            "IP",
                            "AGE",
                            "EXPIRES",
                            "WHAT"
                        ],
                        &pending_rows(now, &pending)
                    )
                );
            }
            if !paired.is_empty() {
                if !pending.is_empty() {
                    println!();
                }
                println!("Paired ({})", paired.len());
                let rows: Vec<Vec<String>> = paired
                    .iter()
                    .map(|d| {
                        let tokens: Vec<String> = (d.tokens.iter())
                            .map(|t| {
                                let revoked = if t.revoked_at_ms.is_some() {
                                    " (revoked)"
                                } else {
                                    ""
                                };
                                format!("{}{revoked}", sanitize(&t.role))
                            })
                            .collect();
                        vec![
                            d.device_id.clone(),
                            or_dash(sanitize(&d.name)),
                            or_dash(sanitize(&d.platform)),
                            d.fingerprint.clone(),
                            or_dash(words(&d.roles)),
                            or_dash(tokens.join(",")),
                            or_dash(sanitize(&d.remote_ip)),
                            short_ms(Some(d.approved_at_ms)),
                            format!(
                                "{}{}",
                                ago(now, d.last_seen_at_ms),
                                if d.stale { " (stale)" } else { "" }
                            ),
                        ]
                    })
                    .collect();
                print!(
                    "{}",
                    table(
                        &[
                            "DEVICE ID",
                            "NAME",
                            "PLATFORM",
                            "FINGERPRINT",
                            "ROLES",
                            "TOKENS",
                            "IP",
                            "PAIRED",
                            "LAST SEEN"
                        ],
                        &rows
                    )
                );
            }
            Ok(())
        }
        DevicesCmd::Approve {
            request_id,
            latest,
            without_admin,
            json,
        } => {
            let id = match request_id {
                Some(id) if !latest => request_named(ctx, &id)?,
                _ => {
                    // Never approve "whatever came last": show it and ask for the exact id.
                    let list: DeviceList = ctx.ask(OwnerRequest::DeviceList {})?;
                    let Some(newest) = list.pending.iter().max_by_key(|r| r.request.ts) else {
                        return Err(CliError::refused("no device is waiting for approval"));
                    };
                    print_preview(newest, json);
                    return Err(CliError::refused("not approved: pass the exact request id"));
                }
            };
            ctx.act_as(
                OwnerRequest::DeviceApprove {
                    request_id: id,
                    without_admin,
                },
                json,
                |a: DeviceApproved| {
                    let d = &a.device;
                    println!(
                        "Approved {} ({}), fingerprint {} ({}), with {}.",
                        or_dash(sanitize(&d.name)),
                        d.device_id,
                        d.fingerprint,
                        a.request_id,
                        scopes_in_words(d)
                    );
                },
            )
        }
        DevicesCmd::Reject { request_id, json } => ctx.act(
            OwnerRequest::DeviceReject {
                request_id: request_named(ctx, &request_id)?,
            },
            json,
            |v| {
                println!(
                    "Rejected {} (device {}).",
                    s(v, "requestId"),
                    s(v, "deviceId")
                );
            },
        ),
        DevicesCmd::Remove { device_id, json } => {
            ctx.act(OwnerRequest::DeviceRemove { device_id }, json, |v| {
                println!("Removed device {}.", s(v, "deviceId"));
            })
        }
        DevicesCmd::Clear { yes, pending, json } => {
            if !yes {
                let list: DeviceList = ctx.ask(OwnerRequest::DeviceList {})?;
                let (n, p) = (list.paired.len(), list.pending.len());
                let what = if pending {
                    format!("{n} paired devices and {p} pending requests")
                } else {
                    format!("{n} paired devices")
                };
                return Err(CliError::refused(format!(
                    "this would remove {what}; run again with --yes to do it"
                )));
            }
            ctx.act(OwnerRequest::DeviceClear { pending }, json, |v| {
                println!(
                    "Removed {} paired devices; rejected {} pending requests.",
                    s(v, "removed"),
                    s(v, "rejected")
                );
            })
        }
        DevicesCmd::Rotate { device, role, json } => ctx.act(
            OwnerRequest::TokenRotate {
                device_id: device,
                role,
            },
            json,
            |v| {
                println!(
                    "New {} token for {} (shown once; the old one no longer works):",
                    s(v, "role"),
                    s(v, "deviceId")
                );
                println!("{}", s(v, "token"));
            },
        ),
        DevicesCmd::Revoke { device, role, json } => ctx.act(
            OwnerRequest::TokenRevoke {
                device_id: device,
                role,
            },
            json,
            |v| {
                println!(
                    "Revoked the {} token of {}.",
                    s(v, "role"),
                    s(v, "deviceId")
                );
            },
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending() -> Vec<PendingDeviceView> {
        [
            ("5f0c1a2b-0000-4000-8000-000000000001", "Pixel", "DLSM-L6KV"),
            ("5f0c9999-0000-4000-8000-000000000002", "iPad", "AB2C-DE3F"),
        ]
        .into_iter()
        .map(|(id, name, fp)| {
            let mut r: PendingDeviceView = serde_json::from_value(json!({
                "requestId": id, "deviceId": "d", "publicKey": "k", "displayName": name,
                "platform": "", "deviceFamily": "", "clientId": "", "clientMode": "",
                "role": "operator", "scopes": [], "remoteIp": "", "fingerprint": fp, "isRepair": false,
                "ts": 0, "name": name, "kind": "new device", "roles": ["operator"], "silent": false,
                "expiresAtMs": 0
            }))
            .unwrap();
            r.name = name.into();
            r
        })
        .collect()
    }

    #[test]
    fn a_request_is_named_by_fingerprint_or_a_unique_start_of_its_id() {
        let p = pending();
        let first = "5f0c1a2b-0000-4000-8000-000000000001";
        assert_eq!(pick_request(&p, "DLSM-L6KV").unwrap(), first);
        assert_eq!(pick_request(&p, "dlsm l6kv").unwrap(), first);
        assert_eq!(pick_request(&p, "5f0c1a").unwrap(), first);
        assert_eq!(
            pick_request(&p, "AB2CDE3F").unwrap(),
            "5f0c9999-0000-4000-8000-000000000002"
        );
        let e = pick_request(&p, "5f0c").unwrap_err().message;
        assert!(
            e.contains("matches 2 requests") && e.contains("Pixel") && e.contains("iPad"),
            "{e}"
        );
        // Too short to be a prefix, or naming nothing: passed on for the gateway to answer.
        assert_eq!(pick_request(&p, "5f").unwrap(), "5f");
        assert_eq!(pick_request(&p, "nope").unwrap(), "nope");
    }
}

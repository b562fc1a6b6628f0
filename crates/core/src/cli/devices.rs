//! `clawpair devices …`.

use serde_json::{json, Value};

use super::output::{ago, i, or_dash, print_json, s, short_ms, table, until};
use super::{CliError, CliResult, Ctx, DevicesCmd};
use crate::owner::OwnerRequest;

fn pending_rows(now: i64, pending: &[Value]) -> Vec<Vec<String>> {
    pending
        .iter()
        .map(|r| {
            let name = or_dash(s(r, "name"));
            vec![
                s(r, "requestId"),
                name,
                or_dash(s(r, "platform")),
                s(r, "fingerprint"),
                s(r, "role"),
                or_dash(s(r, "scopes")),
                or_dash(s(r, "remoteIp")),
                ago(now, i(r, "ts")),
                until(now, i(r, "expiresAtMs")),
                or_dash(s(r, "kind")),
            ]
        })
        .collect()
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
fn pick_request(pending: &[Value], arg: &str) -> Result<String, CliError> {
    let arg = arg.trim();
    if pending.iter().any(|r| s(r, "requestId") == arg) {
        return Ok(arg.to_string());
    }
    let fp = fingerprint_key(arg);
    let by_fingerprint: Vec<&Value> = pending
        .iter()
        .filter(|r| fp.len() == 8 && fingerprint_key(&s(r, "fingerprint")) == fp)
        .collect();
    let by_prefix: Vec<&Value> = pending
        .iter()
        .filter(|r| arg.len() >= 4 && s(r, "requestId").starts_with(&arg.to_ascii_lowercase()))
        .collect();
    let found = if by_fingerprint.is_empty() {
        by_prefix
    } else {
        by_fingerprint
    };
    match found.as_slice() {
        [] => Ok(arg.to_string()),
        [one] => Ok(s(one, "requestId")),
        many => {
            let list: Vec<String> = many
                .iter()
                .map(|r| {
                    format!(
                        "{} ({}, {})",
                        s(r, "requestId"),
                        or_dash(s(r, "name")),
                        s(r, "fingerprint")
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
    let v = ctx.call(OwnerRequest::DeviceList {})?;
    let pending = v["pending"].as_array().cloned().unwrap_or_default();
    pick_request(&pending, arg)
}

/// What an approved device may do, for the confirmation line.
fn scopes_in_words(d: &Value) -> String {
    let scopes: Vec<&str> = d["scopes"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let roles: Vec<&str> = d["roles"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let roles = if roles.is_empty() {
        "no role".to_string()
    } else {
        format!("role {}", roles.join(", "))
    };
    if scopes.is_empty() {
        roles
    } else {
        format!("{roles} and scopes {}", scopes.join(", "))
    }
}

fn print_preview(newest: &Value, json: bool) {
    let id = s(newest, "requestId");
    if json {
        print_json(
            &json!({ "selected": newest, "approveCommand": format!("clawpair devices approve {id}") }),
        );
        return;
    }
    println!(
        "Newest request: {} ({}), fingerprint {}, role {}, from {}.",
        or_dash(s(newest, "name")),
        or_dash(s(newest, "platform")),
        s(newest, "fingerprint"),
        s(newest, "role"),
        or_dash(s(newest, "remoteIp"))
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
            let now = ctx.now();
            let pending = v["pending"].as_array().cloned().unwrap_or_default();
            let paired = v["paired"].as_array().cloned().unwrap_or_default();
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
                        let tokens: Vec<String> = d["tokens"]
                            .as_array()
                            .map(|t| {
                                t.iter()
                                    .map(|t| {
                                        format!(
                                            "{}{}",
                                            s(t, "role"),
                                            if t["revokedAtMs"].is_null() {
                                                ""
                                            } else {
                                                " (revoked)"
                                            }
                                        )
                                    })
                                    .collect()
                            })
                            .unwrap_or_default();
                        vec![
                            s(d, "deviceId"),
                            or_dash(s(d, "name")),
                            or_dash(s(d, "platform")),
                            s(d, "fingerprint"),
                            or_dash(s(d, "roles")),
                            or_dash(tokens.join(",")),
                            or_dash(s(d, "remoteIp")),
                            short_ms(i(d, "approvedAtMs")),
                            format!(
                                "{}{}",
                                ago(now, i(d, "lastSeenAtMs")),
                                if d["stale"] == true { " (stale)" } else { "" }
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
                    let v = ctx.call(OwnerRequest::DeviceList {})?;
                    let pending = v["pending"].as_array().cloned().unwrap_or_default();
                    let Some(newest) = pending.iter().max_by_key(|r| i(r, "ts").unwrap_or(0))
                    else {
                        return Err(CliError::refused("no device is waiting for approval"));
                    };
                    print_preview(newest, json);
                    return Err(CliError::refused("not approved: pass the exact request id"));
                }
            };
            ctx.act(
                OwnerRequest::DeviceApprove {
                    request_id: id,
                    without_admin,
                },
                json,
                |v| {
                    let d = &v["device"];
                    println!(
                        "Approved {} ({}), fingerprint {} ({}), with {}.",
                        or_dash(s(d, "name")),
                        s(d, "deviceId"),
                        s(d, "fingerprint"),
                        s(v, "requestId"),
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
                let v = ctx.call(OwnerRequest::DeviceList {})?;
                let n = v["paired"].as_array().map_or(0, Vec::len);
                let p = v["pending"].as_array().map_or(0, Vec::len);
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

    fn pending() -> Vec<Value> {
        vec![
            json!({ "requestId": "5f0c1a2b-0000-4000-8000-000000000001", "name": "Pixel", "fingerprint": "DLSM-L6KV" }),
            json!({ "requestId": "5f0c9999-0000-4000-8000-000000000002", "name": "iPad", "fingerprint": "AB2C-DE3F" }),
        ]
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

//! `clawpair devices …`.

use serde_json::{json, Value};

use super::output::{ago, i, or_dash, print_json, s, short_ms, table, until};
use super::{CliError, CliResult, Ctx, DevicesCmd};

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
            let v = ctx.call("device.pair.list", json!({}))?;
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
                Some(id) if !latest => id,
                _ => {
                    // Never approve "whatever came last": show it and ask for the exact id.
                    let v = ctx.call("device.pair.list", json!({}))?;
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
                "device.pair.approve",
                json!({ "requestId": id, "withoutAdmin": without_admin }),
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
            "device.pair.reject",
            json!({ "requestId": request_id }),
            json,
            |v| {
                println!(
                    "Rejected {} (device {}).",
                    s(v, "requestId"),
                    s(v, "deviceId")
                );
            },
        ),
        DevicesCmd::Remove { device_id, json } => ctx.act(
            "device.pair.remove",
            json!({ "deviceId": device_id }),
            json,
            |v| {
                println!("Removed device {}.", s(v, "deviceId"));
            },
        ),
        DevicesCmd::Clear { yes, pending, json } => {
            if !yes {
                let v = ctx.call("device.pair.list", json!({}))?;
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
            ctx.act(
                "device.pair.clear",
                json!({ "pending": pending }),
                json,
                |v| {
                    println!(
                        "Removed {} paired devices; rejected {} pending requests.",
                        s(v, "removed"),
                        s(v, "rejected")
                    );
                },
            )
        }
        DevicesCmd::Rotate { device, role, json } => ctx.act(
            "device.token.rotate",
            json!({ "deviceId": device, "role": role }),
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
            "device.token.revoke",
            json!({ "deviceId": device, "role": role }),
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

//! `clawpair pairing …` and `clawpair allowlist …`.

use serde_json::{json, Value};

use super::output::{ago, or_dash, print_json, s, short_time, table, until};
use super::{AllowlistCmd, CliError, CliResult, Ctx, PairingCmd};
use crate::clock::ms_from_iso;
use crate::owner::OwnerRequest;

/// `[CHANNEL] CODE` → (channel, code).
fn channel_and_code(args: &[String]) -> Result<(Option<String>, String), CliError> {
    match args {
        [code] => Ok((None, code.clone())),
        [channel, code] => Ok((Some(channel.trim().to_ascii_lowercase()), code.clone())),
        _ => Err(CliError::usage("expected [CHANNEL] CODE")),
    }
}

pub fn pairing(ctx: &Ctx, cmd: PairingCmd) -> CliResult {
    match cmd {
        PairingCmd::List {
            channel,
            account,
            json,
        } => {
            let v = ctx.call(OwnerRequest::DmList {
                channel: channel.clone(),
            })?;
            let mut reqs: Vec<Value> = v["requests"].as_array().cloned().unwrap_or_default();
            if let Some(a) = &account {
                reqs.retain(|r| r["accountId"] == a.as_str());
            }
            if json {
                print_json(&json!({ "channel": channel, "requests": reqs }));
                return Ok(());
            }
            if reqs.is_empty() {
                match &channel {
                    Some(c) => println!("No pending {c} pairing requests."),
                    None => println!("No pending pairing requests."),
                }
                return Ok(());
            }
            let now = ctx.now();
            let rows: Vec<Vec<String>> = reqs
                .iter()
                .map(|r| {
                    let name = ["username", "name", "firstName"]
                        .iter()
                        .map(|k| s(&r["meta"], k))
                        .find(|x| !x.is_empty())
                        .unwrap_or_default();
                    let account = if r["invalidName"] == true {
                        format!("{} (invalid name)", s(r, "accountId"))
                    } else {
                        s(r, "accountId")
                    };
                    vec![
                        s(r, "code"),
                        s(r, "channel"),
                        account,
                        s(r, "id"),
                        or_dash(name),
                        ago(now, ms_from_iso(&s(r, "createdAt"))),
                        until(now, ms_from_iso(&s(r, "expiresAt"))),
                    ]
                })
                .collect();
            println!("Pairing requests ({})", rows.len());
            print!(
                "{}",
                table(
                    &[
                        "CODE",
                        "CHANNEL",
                        "ACCOUNT",
                        "SENDER",
                        "NAME",
                        "REQUESTED",
                        "EXPIRES"
                    ],
                    &rows
                )
            );
            if reqs.iter().any(|r| r["invalidName"] == true) {
                println!(
                    "A request whose account has an invalid name cannot be approved: reject it, \
                     or correct its meta.accountId in the pairing file (`clawpair doctor` names the file)."
                );
            }
            Ok(())
        }
        PairingCmd::Approve {
            args,
            account,
            notify,
            json,
        } => {
            let (channel, code) = channel_and_code(&args)?;
            let v = ctx.call(OwnerRequest::DmApprove {
                channel,
                code,
                account_id: account,
                notify,
            })?;
            if notify && !ctx.via_gateway() {
                // Only a running gateway's channels can reach the sender.
                eprintln!(
                    "warning: no gateway is running, so nobody can deliver the confirmation; \
                     the sender is approved but was not told"
                );
            } else if notify
                && s(&v, "channel") == crate::channels::telegram::CHANNEL
                && !crate::channels::telegram::configured(&ctx.service.settings())
            {
                eprintln!(
                    "warning: no Telegram bot is set up (channels.telegram in clawpair.json), so \
                     nobody can deliver the confirmation; the sender is approved but was not told"
                );
            }
            if json {
                print_json(&v);
            } else {
                println!(
                    "Approved {} sender {}.",
                    s(&v, "channel"),
                    s(&v, "senderId")
                );
            }
            Ok(())
        }
        PairingCmd::Reject {
            args,
            account,
            json,
        } => {
            let (channel, code) = channel_and_code(&args)?;
            ctx.act(
                OwnerRequest::DmReject {
                    channel,
                    code,
                    account_id: account,
                },
                json,
                |v| {
                    println!("Rejected {} sender {}.", s(v, "channel"), s(v, "senderId"));
                },
            )
        }
    }
}

pub fn allowlist(ctx: &Ctx, cmd: AllowlistCmd) -> CliResult {
    match cmd {
        AllowlistCmd::List { channel, json } => {
            let v = ctx.call(OwnerRequest::AllowList {
                channel: channel.clone(),
            })?;
            if json {
                print_json(&v);
                return Ok(());
            }
            let entries = v["entries"].as_array().cloned().unwrap_or_default();
            if entries.is_empty() {
                println!(
                    "No allowed senders{}.",
                    channel.map(|c| format!(" for {c}")).unwrap_or_default()
                );
                return Ok(());
            }
            let rows: Vec<Vec<String>> = entries
                .iter()
                .map(|e| {
                    vec![
                        s(e, "channel"),
                        s(e, "accountId"),
                        s(e, "senderId"),
                        or_dash(s(e, "label")),
                        short_time(&s(e, "approvedAt")),
                        or_dash(s(e, "approvedVia")),
                        short_time(&s(e, "lastMessageAt")),
                    ]
                })
                .collect();
            print!(
                "{}",
                table(
                    &[
                        "CHANNEL",
                        "ACCOUNT",
                        "SENDER",
                        "LABEL",
                        "APPROVED",
                        "VIA",
                        "LAST MESSAGE"
                    ],
                    &rows
                )
            );
            Ok(())
        }
        AllowlistCmd::Add {
            channel,
            sender,
            account,
            json,
        } => {
            let v = ctx.call(OwnerRequest::AllowAdd {
                channel: channel.clone(),
                sender_id: sender.clone(),
                account_id: account,
            })?;
            if json {
                print_json(&v);
            } else if v["added"] == true {
                println!(
                    "Allowed {channel} sender {}.",
                    crate::sanitize::sanitize(&sender)
                );
            } else {
                println!(
                    "{channel} sender {} was already allowed.",
                    crate::sanitize::sanitize(&sender)
                );
            }
            Ok(())
        }
        AllowlistCmd::Remove {
            channel,
            sender,
            account,
            json,
        } => {
            let v = ctx.call(OwnerRequest::AllowRemove {
                channel: channel.clone(),
                sender_id: sender.clone(),
                account_id: account,
            })?;
            if json {
                print_json(&v);
            }
            if v["removed"] == true {
                if !json {
                    println!(
                        "Removed {channel} sender {}.",
                        crate::sanitize::sanitize(&sender)
                    );
                }
                Ok(())
            } else {
                Err(CliError::refused(format!(
                    "{channel} sender {} is not on the allowlist",
                    crate::sanitize::sanitize(&sender)
                )))
            }
        }
    }
}

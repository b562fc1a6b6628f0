//! `clawpair pairing …` and `clawpair allowlist …`.

use serde_json::{json, Value};

use super::output::{ago, or_dash, print_json, s, short_time, table, until};
use super::{read, AllowlistCmd, CliError, CliResult, Ctx, PairingCmd};
use crate::clock::ms_from_iso;
use crate::owner::{AllowAdded, AllowRemoved, Allowlist, DmRequests, OwnerRequest};
use crate::sanitize::sanitize;
use crate::service::DmApproved;

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
            let list: DmRequests = ctx.ask(OwnerRequest::DmList {
                channel: channel.clone(),
            })?;
            let mut reqs = list.requests;
            if let Some(a) = &account {
                reqs.retain(|r| r.account_id == *a);
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
                        .find_map(|k| r.meta.get(*k).and_then(Value::as_str).map(sanitize))
                        .filter(|x| !x.is_empty())
                        .unwrap_or_default();
                    let account = sanitize(&r.account_id);
                    vec![
                        sanitize(&r.code),
                        sanitize(&r.channel),
                        if r.invalid_name {
                            format!("{account} (invalid name)")
                        } else {
                            account
                        },
                        sanitize(&r.id),
                        or_dash(name),
                        ago(now, ms_from_iso(&r.created_at)),
                        until(now, ms_from_iso(&r.expires_at)),
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
            if reqs.iter().any(|r| r.invalid_name) {
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
            let req = OwnerRequest::DmApprove {
                channel,
                code,
                account_id: account,
                notify,
            };
            let v = ctx.call(req.clone())?;
            let approved: DmApproved = read(&req, v.clone())?;
            if notify && !ctx.via_gateway() {
                // Only a running gateway's channels can reach the sender.
                eprintln!(
                    "warning: no gateway is running, so nobody can deliver the confirmation; \
                     the sender is approved but was not told"
                );
            } else if notify
                && approved.channel == crate::channels::telegram::CHANNEL
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
                    sanitize(&approved.channel),
                    sanitize(&approved.sender_id)
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
            let req = OwnerRequest::AllowList {
                channel: channel.clone(),
            };
            let v = ctx.call(req.clone())?;
            if json {
                print_json(&v);
                return Ok(());
            }
            let Allowlist { entries } = read(&req, v)?;
            if entries.is_empty() {
                println!(
                    "No allowed senders{}.",
                    channel.map(|c| format!(" for {c}")).unwrap_or_default()
                );
                return Ok(());
            }
            let text = |x: &Option<String>| x.as_deref().map(sanitize).unwrap_or_default();
            let rows: Vec<Vec<String>> = entries
                .iter()
                .map(|e| {
                    vec![
                        sanitize(&e.channel),
                        sanitize(&e.account_id),
                        sanitize(&e.sender_id),
                        or_dash(text(&e.label)),
                        short_time(&text(&e.approved_at)),
                        or_dash(text(&e.approved_via)),
                        short_time(&text(&e.last_message_at)),
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
            let req = OwnerRequest::AllowAdd {
                channel: channel.clone(),
                sender_id: sender.clone(),
                account_id: account,
            };
            let v = ctx.call(req.clone())?;
            let AllowAdded { added } = read(&req, v.clone())?;
            if json {
                print_json(&v);
            } else if added {
                println!("Allowed {channel} sender {}.", sanitize(&sender));
            } else {
                println!(
                    "{channel} sender {} was already allowed.",
                    sanitize(&sender)
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
            let req = OwnerRequest::AllowRemove {
                channel: channel.clone(),
                sender_id: sender.clone(),
                account_id: account,
            };
            let v = ctx.call(req.clone())?;
            let AllowRemoved { removed } = read(&req, v.clone())?;
            if json {
                print_json(&v);
            }
            if !removed {
                return Err(CliError::refused(format!(
                    "{channel} sender {} is not on the allowlist",
                    sanitize(&sender)
                )));
            }
            if !json {
                println!("Removed {channel} sender {}.", sanitize(&sender));
            }
            Ok(())
        }
    }
}

//! The owner's `/pair` commands and every text the bot sends, as pure functions: parsing,
//! wording and HTML escaping, unit-tested without a network. Requester-controlled text (device
//! names, platforms) is sanitised and escaped here before it reaches a message.

use crate::clock::Millis;
use crate::sanitize::sanitize;
use crate::service::{PairedDeviceView, PendingDeviceView};

/// One `/pair` command. Anything after `/pair` that is not a known subcommand asks for help.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PairCommand {
    /// `/pair`: a setup code, in two messages.
    Issue,
    /// `/pair qr`: the setup code as a QR photo.
    Qr,
    /// `/pair pending` (or `status`).
    Pending,
    /// `/pair approve [requestId]`.
    Approve(Option<String>),
    /// `/pair reject <requestId>`.
    Reject(Option<String>),
    /// `/pair cleanup`.
    Cleanup,
    /// `/pair help`, or a subcommand this bot does not know.
    Help,
}

/// Parses `/pair …` (also `/pair@SomeBot …`, as Telegram writes commands picked from a menu).
/// Any other text is `None`: it is an ordinary message.
pub fn parse(text: &str) -> Option<PairCommand> {
    let mut words = text.split_whitespace();
    let head = words.next()?;
    let name = head.split_once('@').map_or(head, |(n, _)| n);
    if !name.eq_ignore_ascii_case("/pair") {
        return None;
    }
    let sub = words.next().map(str::to_ascii_lowercase);
    let arg = words.next().map(str::to_string);
    Some(match sub.as_deref() {
        None => PairCommand::Issue,
        Some("qr") => PairCommand::Qr,
        Some("pending" | "status" | "list") => PairCommand::Pending,
        Some("approve") => PairCommand::Approve(arg),
        Some("reject") => PairCommand::Reject(arg),
        Some("cleanup") => PairCommand::Cleanup,
        Some(_) => PairCommand::Help,
    })
}

/// Escapes text for Telegram's HTML parse mode.
pub fn html_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            _ => out.push(c),
        }
    }
    out
}

fn code(text: &str) -> String {
    format!("<code>{}</code>", html_escape(text))
}

/// The service's pairing reply in HTML: every line escaped, and the code and the approve
/// command in `<code>` blocks, which Telegram copies with one tap.
pub fn challenge_html(reply: &str, pairing_code: &str) -> String {
    reply
        .lines()
        .map(|line| {
            let t = line.trim();
            if t == pairing_code || (t.starts_with("clawpair ") && t.contains(pairing_code)) {
                code(t)
            } else {
                html_escape(line)
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Whole minutes until `expires_at_ms`, rounded up (at least 1).
pub fn minutes_left(now_ms: Millis, expires_at_ms: Millis) -> u64 {
    let ms = (expires_at_ms - now_ms).max(0) as u64;
    ms.div_ceil(60_000).max(1)
}

fn plural(n: u64, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}

/// What a non-owner gets for any `/pair` command.
pub const REFUSED: &str = "Only the owner of this assistant can use /pair.";

/// The first of the two `/pair` messages: the steps and the security note (plain text).
pub fn setup_instructions(minutes: u64, url: &str) -> String {
    format!(
        "Pair a new device with this gateway:\n\
         1. On the phone, open the app's gateway settings (on a computer: clawpair node pair SETUP_CODE).\n\
         2. Paste the setup code from the next message and connect.\n\
         3. Come back here and send /pair approve, after checking the fingerprint the device shows.\n\
         \n\
         Security: the code expires in {} and works once — the first device that uses it is bound \
         to it. Anyone holding it can ask to pair, so do not forward it, and send /pair cleanup at \
         once if it leaks (or when you are done).\n\
         Gateway: {}",
        plural(minutes, "minute", "minutes"),
        sanitize(url)
    )
}

/// The caption of the `/pair qr` photo (plain text).
pub fn qr_caption(minutes: u64) -> String {
    format!(
        "Scan this QR code with the ClawPair app on the new device, then send /pair approve. \
         Single use, bound to the first device that scans it, expires in {}. \
         If it leaks, send /pair cleanup.",
        plural(minutes, "minute", "minutes")
    )
}

fn pending_line(p: &PendingDeviceView) -> String {
    let r = &p.request;
    let or_dash = |s: String| if s.is_empty() { "—".to_string() } else { s };
    let scopes = if r.scopes.is_empty() {
        String::new()
    } else {
        format!(" ({})", r.scopes.join(", "))
    };
    format!(
        "• <b>{}</b> · {} · as {}{} · {} · IP {} · fingerprint {} · requestId {}",
        html_escape(&r.shown_name()),
        html_escape(&p.kind),
        html_escape(&r.role),
        html_escape(&scopes),
        html_escape(&or_dash(sanitize(&r.platform))),
        html_escape(&or_dash(sanitize(&r.remote_ip))),
        code(&sanitize(&r.fingerprint)),
        code(&sanitize(&r.request_id)),
    )
}

/// `/pair pending` (HTML): one line per request, or that none is waiting.
pub fn pending_list(pending: &[PendingDeviceView]) -> String {
    if pending.is_empty() {
        return NONE_WAITING.to_string();
    }
    let mut out = format!("Devices waiting for approval ({}):\n", pending.len());
    for p in pending {
        out.push_str(&pending_line(p));
        out.push('\n');
    }
    out.push_str("Approve one with /pair approve &lt;requestId&gt;, or refuse it with /pair reject &lt;requestId&gt;.");
    out
}

/// `/pair approve` without an id when the one request is a paired device asking for more
/// (HTML): it is approved only by its id.
pub fn upgrade_needs_id(p: &PendingDeviceView) -> String {
    format!(
        "The only request is from a device already paired, which {}. Approve it explicitly:\n{}\nwith /pair approve &lt;requestId&gt;.",
        html_escape(&p.kind),
        pending_line(p)
    )
}

/// When no device request is pending.
pub const NONE_WAITING: &str = "No devices are waiting.";

/// `/pair approve` without an id while several wait (HTML).
pub fn which_one(pending: &[PendingDeviceView]) -> String {
    let mut out = format!(
        "{} devices are waiting; say which one with /pair approve &lt;requestId&gt;:\n",
        pending.len()
    );
    for p in pending {
        out.push_str(&pending_line(p));
        out.push('\n');
    }
    out.trim_end().to_string()
}

fn paired_name(d: &PairedDeviceView) -> String {
    crate::pairing::device::name_to_show(&d.display_name, &d.client_id, &d.device_id)
}

/// After `/pair approve` (HTML): names the device and its fingerprint.
pub fn approved(d: &PairedDeviceView) -> String {
    let platform = sanitize(&d.platform);
    let platform = if platform.is_empty() {
        String::new()
    } else {
        format!(" ({})", html_escape(&platform))
    };
    format!(
        "✅ Paired <b>{}</b>{platform}, fingerprint {}.",
        html_escape(&paired_name(d)),
        code(&sanitize(&d.fingerprint))
    )
}

/// After `/pair reject` (HTML).
pub fn rejected(name: &str, fingerprint: &str) -> String {
    format!(
        "Rejected <b>{}</b> (fingerprint {}).",
        html_escape(&sanitize(name)),
        code(&sanitize(fingerprint))
    )
}

/// After `/pair cleanup` (plain).
pub fn cleaned(removed: usize) -> String {
    match removed {
        0 => "No setup codes to invalidate.".to_string(),
        n => format!(
            "Invalidated {}.",
            plural(
                n as u64,
                "setup code not used yet",
                "setup codes not used yet"
            )
        ),
    }
}

/// `/pair reject` without an id (plain).
pub const REJECT_NEEDS_ID: &str =
    "Say which request to reject: /pair reject <requestId> (see /pair pending).";

/// `/pair help` or an unknown subcommand (plain).
pub const HELP: &str = "Pairing commands:\n\
    /pair — a setup code for a new device\n\
    /pair qr — the setup code as a QR code\n\
    /pair pending — devices waiting for approval\n\
    /pair approve [requestId] — approve one (the id may be left out when only one waits)\n\
    /pair reject <requestId> — refuse one\n\
    /pair cleanup — invalidate every setup code not used yet";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pairing::device::PendingDevice;

    #[test]
    fn pair_commands_parse_with_or_without_the_bot_name() {
        assert_eq!(parse("/pair"), Some(PairCommand::Issue));
        assert_eq!(parse("  /pair@ClawBot  "), Some(PairCommand::Issue));
        assert_eq!(parse("/PAIR QR"), Some(PairCommand::Qr));
        assert_eq!(parse("/pair status"), Some(PairCommand::Pending));
        assert_eq!(parse("/pair approve"), Some(PairCommand::Approve(None)));
        assert_eq!(
            parse("/pair approve abc-1"),
            Some(PairCommand::Approve(Some("abc-1".into())))
        );
        assert_eq!(parse("/pair reject"), Some(PairCommand::Reject(None)));
        assert_eq!(parse("/pair cleanup"), Some(PairCommand::Cleanup));
        assert_eq!(parse("/pair frobnicate"), Some(PairCommand::Help));
        assert_eq!(parse("/pairing"), None);
        assert_eq!(parse("hello /pair"), None);
        assert_eq!(parse("/start"), None);
        assert_eq!(parse(""), None);
    }

    #[test]
    fn challenge_puts_code_and_command_in_code_blocks_and_escapes_the_rest() {
        let reply = crate::pairing::dm::pairing_reply("telegram", "1001", "ABCD2345");
        let html = challenge_html(&reply, "ABCD2345");
        assert!(html.contains("\n<code>ABCD2345</code>\n"), "{html}");
        assert!(html.contains("<code>clawpair pairing approve telegram ABCD2345</code>"));
        assert!(html.contains("1001"));
        let html = challenge_html("a <b> & \"c\"\nXYZ", "XYZ");
        assert_eq!(html, "a &lt;b&gt; &amp; &quot;c&quot;\n<code>XYZ</code>");
    }

    #[test]
    fn minutes_round_up() {
        assert_eq!(minutes_left(0, 600_000), 10);
        assert_eq!(minutes_left(1, 600_000), 10);
        assert_eq!(minutes_left(0, 600_001), 11);
        assert_eq!(minutes_left(10, 0), 1);
        assert!(setup_instructions(10, "ws://192.168.1.2:18789/").contains("expires in 10 minutes"));
        assert!(setup_instructions(1, "ws://x/").contains("expires in 1 minute "));
    }

    #[test]
    fn requester_text_in_lists_is_sanitised_and_escaped() {
        let p = PendingDeviceView {
            request: PendingDevice {
                request_id: "req-1".into(),
                device_id: "d".repeat(64),
                public_key: String::new(),
                display_name: "<script>Ev\u{202E}il</script>".into(),
                platform: "android".into(),
                device_family: String::new(),
                client_id: String::new(),
                client_mode: String::new(),
                role: "node".into(),
                scopes: vec![],
                remote_ip: "192.168.1.9".into(),
                fingerprint: "ABCD-EFGH".into(),
                is_repair: false,
                reason: String::new(),
                regains: false,
                ts: 0,
                extra: Default::default(),
            },
            roles: vec!["node".into()],
            silent: false,
            name: "Evil".into(),
            kind: "new device".into(),
            expires_at_ms: 0,
        };
        let text = pending_list(std::slice::from_ref(&p));
        assert!(text.contains("&lt;script&gt;Evil&lt;/script&gt;"), "{text}");
        assert!(text.contains("android") && text.contains("192.168.1.9"));
        assert!(text.contains("<code>ABCD-EFGH</code>") && text.contains("<code>req-1</code>"));
        assert_eq!(pending_list(&[]), NONE_WAITING);
        assert!(which_one(&[p.clone(), p]).starts_with("2 devices are waiting"));
    }
}

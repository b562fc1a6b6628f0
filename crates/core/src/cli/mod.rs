//! The command line: parse, dispatch, print. Logic lives in the core ([`crate::rpc`],
//! [`crate::service`]); these files only turn answers into tables or JSON.

mod announce;
mod attach;
mod audit;
mod devices;
mod dm;
mod doctor;
pub mod gateway;
mod import;
mod node;
pub mod output;
mod qr;

use std::cell::RefCell;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Parser, Subcommand};
use serde_json::Value;

use crate::client::{Client, ClientError, ConnectOptions};
use crate::clock::SystemClock;
use crate::owner::{Answer, OwnerRequest};
use crate::rpc::{self, Caller, RpcError};
use crate::service::Service;
use crate::store::StatePaths;

#[derive(Parser, Debug)]
#[command(name = "clawpair", version, about = "Explicit-consent pairing for your AI-agent gateway", long_about = None)]
pub struct Cli {
    /// State directory (default: $CLAWPAIR_STATE_DIR, else ClawPair's data directory, ~/.local/share/clawpair on Linux; never ~/.openclaw, which OpenClaw 2026.9 empties)
    #[arg(long, global = true, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Start in the tray only, without opening the window
    #[arg(long)]
    pub hidden: bool,
    /// Open the window at start
    #[arg(long, conflicts_with = "hidden")]
    pub show: bool,
    /// Be the approval desk of an OpenClaw gateway that already runs (its URL; default: the
    /// one OpenClaw's config on this computer names), instead of running ClawPair's own
    #[arg(long, value_name = "URL", num_args = 0..=1, default_missing_value = "")]
    pub attach: Option<String>,
    /// With --attach wss://…: the SHA-256 of the gateway's certificate, pinned (needed for any
    /// gateway not on this computer; plain ws:// is for loopback only)
    #[arg(long, value_name = "SHA256", requires = "attach")]
    pub tls_fingerprint: Option<String>,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Chat senders waiting for approval (DM pairing)
    #[command(subcommand)]
    Pairing(PairingCmd),
    /// Approved chat senders, per channel and account
    #[command(subcommand)]
    Allowlist(AllowlistCmd),
    /// Phones and computers: pending requests and paired devices
    #[command(subcommand)]
    Devices(DevicesCmd),
    /// Issue a setup code (QR) for pairing a phone
    Qr(QrArgs),
    /// Show the audit log
    Audit(AuditArgs),
    /// Run the gateway without the desktop app (until SIGINT/SIGTERM)
    Gateway {
        /// Address to listen on (default: gateway.bind, 127.0.0.1)
        #[arg(long, value_name = "ADDR")]
        bind: Option<String>,
        /// Port (default: gateway.port, 18789; 0 picks a free one)
        #[arg(long, value_name = "N")]
        port: Option<u16>,
    },
    /// Act as a phone: pair with a setup code, or reconnect with the stored token
    #[command(subcommand)]
    Node(NodeCmd),
    /// Print a shell completion script (e.g. `clawpair completions bash > ~/.local/share/bash-completion/completions/clawpair`)
    Completions { shell: clap_complete::Shell },
    /// Take approved senders and paired devices from OpenClaw's store (read only)
    Import(ImportArgs),
    /// The gateway's admin token
    #[command(subcommand)]
    Token(TokenCmd),
    /// The OpenClaw gateways companion mode (`clawpair --attach`) is the approval desk of
    #[command(subcommand)]
    Attach(AttachCmd),
    /// Check the state directory (permissions, corrupt files, stale entries, OpenClaw's store)
    Doctor {
        /// Repair what can be repaired safely
        #[arg(long)]
        fix: bool,
        /// When clawpair.json does not parse: put back the last settings ClawPair wrote
        /// (clawpair.json.last-good); the broken file is kept beside it
        #[arg(long)]
        restore_settings: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum AttachCmd {
    /// Every gateway attached to, with whether its token is set (never the token)
    List {
        /// Print JSON for scripts instead of a table
        #[arg(long)]
        json: bool,
    },
    /// Attach to one more gateway, beside the others
    Add {
        /// Its URL: ws:// on this computer only, wss:// with --tls-fingerprint elsewhere
        url: String,
        /// A name for it in lists and notifications (default: its host and port)
        #[arg(long)]
        label: Option<String>,
        /// The SHA-256 of its certificate, pinned (for wss://)
        #[arg(long, value_name = "SHA256")]
        tls_fingerprint: Option<String>,
        /// Read its admin token (OpenClaw's gateway.auth.token) from standard input
        #[arg(long)]
        token_stdin: bool,
    },
    /// Stop attaching to a gateway added with `attach add` (its URL or name)
    Remove { gateway: String },
}

#[derive(Subcommand, Debug)]
pub enum TokenCmd {
    /// Replace the admin token: sessions that used the old one are closed, and it is refused
    /// from now on (the new one is in clawpair.json, never printed)
    Rotate {
        /// Print JSON for scripts instead of text
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum PairingCmd {
    /// List pending requests
    List {
        /// Only this channel (telegram, or a bridge's name; case does not matter)
        #[arg(value_parser = channel_arg)]
        channel: Option<String>,
        /// The channel account, when the bot has several (default: the default account)
        #[arg(long, value_name = "ID")]
        account: Option<String>,
        /// Print JSON for scripts instead of text
        #[arg(long)]
        json: bool,
    },
    /// Approve a sender by code: `approve [CHANNEL] CODE`
    Approve {
        /// CHANNEL (optional when only one channel has pending requests) and CODE
        #[arg(num_args = 1..=2, required = true, value_names = ["CHANNEL", "CODE"])]
        args: Vec<String>,
        /// The channel account, when the bot has several (default: the default account)
        #[arg(long, value_name = "ID")]
        account: Option<String>,
        /// Tell the sender they were approved
        #[arg(long)]
        notify: bool,
        /// Print JSON for scripts instead of text
        #[arg(long)]
        json: bool,
    },
    /// Reject a request by code: `reject [CHANNEL] CODE`
    Reject {
        #[arg(num_args = 1..=2, required = true, value_names = ["CHANNEL", "CODE"])]
        args: Vec<String>,
        /// The channel account, when the bot has several (default: the default account)
        #[arg(long, value_name = "ID")]
        account: Option<String>,
        /// Print JSON for scripts instead of text
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum AllowlistCmd {
    /// List allowed senders
    List {
        /// Only this channel (telegram, or a bridge's name; case does not matter)
        #[arg(value_parser = channel_arg)]
        channel: Option<String>,
        /// Print JSON for scripts instead of text
        #[arg(long)]
        json: bool,
    },
    /// Allow a sender by hand
    Add {
        /// The channel (telegram, or a bridge's name; case does not matter)
        #[arg(value_parser = channel_arg)]
        channel: String,
        /// The sender's id on that channel (as `pairing list` and `allowlist list` show it)
        sender: String,
        /// The channel account, when the bot has several (default: the default account)
        #[arg(long, value_name = "ID")]
        account: Option<String>,
        /// Print JSON for scripts instead of text
        #[arg(long)]
        json: bool,
    },
    /// Remove a sender (they are challenged again on their next message)
    Remove {
        /// The channel (telegram, or a bridge's name; case does not matter)
        #[arg(value_parser = channel_arg)]
        channel: String,
        /// The sender's id on that channel (as `pairing list` and `allowlist list` show it)
        sender: String,
        /// The channel account, when the bot has several (default: the default account)
        #[arg(long, value_name = "ID")]
        account: Option<String>,
        /// Print JSON for scripts instead of text
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum DevicesCmd {
    /// List pending requests and paired devices
    List {
        /// Print JSON for scripts instead of text
        #[arg(long)]
        json: bool,
    },
    /// Approve a request by its id, a unique start of it, or the device's fingerprint (no id
    /// or --latest only previews)
    Approve {
        /// The request id (or a unique start of it), or the fingerprint shown on the device
        /// (`DLSM-L6KV`)
        #[arg(value_name = "REQUEST")]
        request_id: Option<String>,
        /// Preview the newest request and print the command that approves it
        #[arg(long)]
        latest: bool,
        /// Grant what the device asked for less operator.admin
        #[arg(long)]
        without_admin: bool,
        /// Print JSON for scripts instead of text
        #[arg(long)]
        json: bool,
    },
    /// Reject a pending request (by id, a unique start of it, or the device's fingerprint)
    Reject {
        #[arg(value_name = "REQUEST")]
        request_id: String,
        /// Print JSON for scripts instead of text
        #[arg(long)]
        json: bool,
    },
    /// Forget a paired device (its connections close at once)
    Remove {
        /// The device id (`devices list` shows it)
        device_id: String,
        /// Print JSON for scripts instead of text
        #[arg(long)]
        json: bool,
    },
    /// Remove every paired device
    Clear {
        /// Really do it
        #[arg(long)]
        yes: bool,
        /// Also reject every pending request
        #[arg(long)]
        pending: bool,
        /// Print JSON for scripts instead of text
        #[arg(long)]
        json: bool,
    },
    /// Issue a new token for a device's role (the old one stops working)
    Rotate {
        /// The device id (`devices list` shows it)
        #[arg(long, value_name = "ID")]
        device: String,
        /// The role whose token it is: operator or node
        #[arg(long, value_parser = ["operator", "node"])]
        role: String,
        /// Print JSON for scripts instead of text
        #[arg(long)]
        json: bool,
    },
    /// Revoke a device's token for a role
    Revoke {
        /// The device id (`devices list` shows it)
        #[arg(long, value_name = "ID")]
        device: String,
        /// The role whose token it is: operator or node
        #[arg(long, value_parser = ["operator", "node"])]
        role: String,
        /// Print JSON for scripts instead of text
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum NodeCmd {
    /// Pair with a gateway using a setup code; waits for the owner's approval
    Pair {
        setup_code: String,
        /// Name shown to the owner (default: this computer's host name)
        #[arg(long)]
        name: Option<String>,
        /// Identity file (default: <state dir>/identity/device.json)
        #[arg(long, value_name = "FILE")]
        identity: Option<PathBuf>,
    },
    /// Reconnect with the stored device token
    Connect {
        #[arg(long, value_name = "FILE")]
        identity: Option<PathBuf>,
        /// Stay connected until the gateway closes the connection
        #[arg(long)]
        stay: bool,
    },
}

#[derive(Args, Debug)]
pub struct QrArgs {
    /// Gateway URL to put in the code (ws:// for LAN hosts, else wss://)
    #[arg(long)]
    pub url: Option<String>,
    /// Print {setupCode, url, expiresAtMs}
    /// Print JSON for scripts instead of text
    #[arg(long)]
    pub json: bool,
    /// Print only the setup code
    #[arg(long)]
    pub setup_code_only: bool,
    /// Also write the QR as a PNG image
    #[arg(long, value_name = "FILE")]
    pub png: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct ImportArgs {
    /// OpenClaw's state directory, or its state/openclaw.sqlite (default: $OPENCLAW_STATE_DIR, else ~/.openclaw); only read
    #[arg(long = "from-openclaw", value_name = "DIR", num_args = 0..=1, required = true)]
    pub from_openclaw: Option<Option<PathBuf>>,
    /// Only report what would be imported; write nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Print JSON for scripts instead of text
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct AuditArgs {
    /// Keep printing new entries
    #[arg(long)]
    pub follow: bool,
    /// Print JSON for scripts instead of text
    #[arg(long)]
    pub json: bool,
    /// How many recent entries to show
    #[arg(long, default_value_t = 50)]
    pub limit: usize,
}

/// A channel as typed: `Telegram` is `telegram` (stored channel names are lowercase).
fn channel_arg(s: &str) -> Result<String, String> {
    Ok(s.trim().to_ascii_lowercase())
}

/// A refusal to print: one line, and the exit code (1 refused/not found, 2 usage).
#[derive(Debug)]
pub struct CliError {
    pub exit: u8,
    pub message: String,
}

impl CliError {
    pub fn refused(message: impl Into<String>) -> Self {
        CliError {
            exit: 1,
            message: message.into(),
        }
    }
    pub fn usage(message: impl Into<String>) -> Self {
        CliError {
            exit: 2,
            message: message.into(),
        }
    }
}

impl From<RpcError> for CliError {
    fn from(e: RpcError) -> Self {
        let code = if e.code.is(crate::protocol::Code::InvalidRequest)
            && e.message.starts_with("invalid params")
        {
            2
        } else {
            1
        };
        CliError {
            exit: code,
            message: e.message,
        }
    }
}

pub type CliResult = Result<(), CliError>;

/// A live gateway the CLI talks to.
struct Remote {
    rt: tokio::runtime::Runtime,
    client: RefCell<Client>,
}

/// What a command runs against: the running gateway when there is one (so an approval reaches
/// a waiting phone at once), else the state files under their locks.
pub struct Ctx {
    pub service: Service,
    remote: Option<Remote>,
}

/// The gateway that runs now, if one does: only a record whose gateway still holds
/// `run/gateway.lock` is believed (see [`crate::store::runrec`]), since the admin token goes to the
/// address it names. With TLS the connection pins the certificate the record names.
fn connect_remote(service: &Service) -> Option<Remote> {
    let rec = crate::store::runrec::read_live(service.paths())?;
    let url = rec.local_url()?;
    let token = service.settings().gateway.auth.token.clone();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .ok()?;
    let mut opts = ConnectOptions::operator(&url, &token, "cli");
    opts.tls_pin = rec.tls_fingerprint.clone();
    opts.timeout = std::time::Duration::from_secs(5);
    match rt.block_on(Client::connect(&opts, |_, _| {})) {
        Ok(client) => Some(Remote {
            rt,
            client: RefCell::new(client),
        }),
        Err(e) => {
            eprintln!(
                "warning: the gateway (pid {}) did not answer ({e}); acting on the files directly",
                rec.pid
            );
            None
        }
    }
}

impl Ctx {
    pub fn open(state_dir: Option<&std::path::Path>) -> Result<Ctx, CliError> {
        let dir = crate::config::resolve_state_dir(state_dir)
            .map_err(|e| CliError::refused(e.to_string()))?;
        let (service, _) = Service::open(StatePaths::new(dir), Arc::new(SystemClock))
            .map_err(|e| CliError::refused(e.to_string()))?;
        let remote = connect_remote(&service);
        Ok(Ctx { service, remote })
    }

    /// Whether commands go through a running gateway.
    pub fn via_gateway(&self) -> bool {
        self.remote.is_some()
    }

    /// One of the owner's actions (through the gateway when one runs, else on the files).
    pub fn call(&self, req: OwnerRequest) -> Result<Value, CliError> {
        let (method, params) = (req.method(), req.params());
        match &self.remote {
            Some(r) => {
                let mut client = r.client.borrow_mut();
                r.rt.block_on(client.call(method, params))
                    .map_err(|e| match e {
                        ClientError::Rejected(rpc) => CliError::from(rpc),
                        other => CliError::refused(format!("lost the gateway: {other}")),
                    })
            }
            None => Ok(rpc::call(
                &self.service,
                &Caller::owner("cli", None),
                method,
                params,
            )?),
        }
    }

    /// One of the owner's actions, its answer read as the type the action answers.
    pub fn ask<A: Answer>(&self, req: OwnerRequest) -> Result<A, CliError> {
        let v = self.call(req.clone())?;
        read(&req, v)
    }

    /// An action, then its answer printed: as JSON for scripts, else read as its type and
    /// given to `human`.
    pub fn act_as<A: Answer>(
        &self,
        req: OwnerRequest,
        json: bool,
        human: impl FnOnce(A),
    ) -> CliResult {
        let v = self.call(req.clone())?;
        if json {
            output::print_json(&v);
        } else {
            human(read(&req, v)?);
        }
        Ok(())
    }

    /// An action, then its answer printed: as JSON for scripts, else through `human`.
    pub fn act(&self, req: OwnerRequest, json: bool, human: impl FnOnce(&Value)) -> CliResult {
        let v = self.call(req)?;
        if json {
            output::print_json(&v);
        } else {
            human(&v);
        }
        Ok(())
    }

    pub fn now(&self) -> i64 {
        self.service.now_ms()
    }
}

/// An answer read as the type its action answers (an answer out of shape is refused, named).
pub(crate) fn read<A: Answer>(req: &OwnerRequest, v: Value) -> Result<A, CliError> {
    A::read(req, v).map_err(CliError::from)
}

/// The whole `clawpair` program: parses the command line, sets up logging and runs the command.
/// With no command, `desktop` starts the tray app: the app binary passes its own; the core's
/// binary, which has no desktop, passes one that says so.
pub fn main(desktop: impl FnOnce(Cli) -> ExitCode) -> ExitCode {
    let cli = <Cli as clap::Parser>::parse();
    let long_running = matches!(cli.command, None | Some(Command::Gateway { .. }));
    if long_running {
        let logs = crate::config::resolve_state_dir(cli.state_dir.as_deref())
            .ok()
            .map(|d| crate::store::StatePaths::new(d).logs_dir());
        crate::logging::init_long_running(logs.as_deref());
    } else {
        crate::logging::init_cli();
    }
    if cli.command.is_none() {
        return desktop(cli);
    }
    run(cli)
}

/// Runs a parsed command and returns the process exit code.
pub fn run(cli: Cli) -> ExitCode {
    let Some(command) = cli.command else {
        eprintln!("error: no command given; see `clawpair --help`");
        return ExitCode::from(2);
    };
    let state_dir = cli.state_dir.as_deref();
    let result = match command {
        Command::Gateway { bind, port } => gateway::run(state_dir, bind, port),
        Command::Node(c) => node::run(state_dir, c),
        // It must speak even when the settings do not parse (every other command refuses).
        Command::Doctor {
            fix,
            restore_settings,
        } => doctor::open_and_run(state_dir, fix, restore_settings),
        Command::Completions { shell } => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut cmd, "clawpair", &mut std::io::stdout());
            Ok(())
        }
        other => Ctx::open(state_dir).and_then(|ctx| dispatch(&ctx, other)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", e.message);
            ExitCode::from(e.exit)
        }
    }
}

fn dispatch(ctx: &Ctx, command: Command) -> CliResult {
    match command {
        Command::Pairing(c) => dm::pairing(ctx, c),
        Command::Allowlist(c) => dm::allowlist(ctx, c),
        Command::Devices(c) => devices::run(ctx, c),
        Command::Qr(a) => qr::run(ctx, a),
        Command::Audit(a) => audit::run(ctx, a),
        Command::Import(a) => import::run(ctx, a),
        Command::Attach(c) => attach::run(ctx, c),
        Command::Token(TokenCmd::Rotate { json }) => ctx.act(
            OwnerRequest::AdminTokenRotate {},
            json,
            |_| {
                println!(
                    "Rotated the gateway's admin token. The old one is refused from now on and \
                     its sessions are closed; the new one is in {} (for this computer's CLI and app).",
                    ctx.service.paths().settings().display()
                )
            },
        ),
        Command::Doctor { fix, .. } => doctor::run(ctx, fix),
        Command::Gateway { .. } | Command::Node(_) | Command::Completions { .. } => {
            Err(CliError::usage("not a state command"))
        }
    }
}

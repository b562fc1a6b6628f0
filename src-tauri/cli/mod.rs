//! The command line: parse, dispatch, print. Logic lives in the core ([`crate::rpc`],
//! [`crate::service`]); these files only turn answers into tables or JSON.

mod audit;
mod devices;
mod dm;
mod doctor;
pub mod output;
mod qr;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Parser, Subcommand};
use serde_json::Value;

use crate::clock::SystemClock;
use crate::rpc::{self, Caller, RpcError};
use crate::service::Service;
use crate::store::StatePaths;

#[derive(Parser, Debug)]
#[command(name = "clawpair", version, about = "Explicit-consent pairing for your AI-agent gateway", long_about = None)]
pub struct Cli {
    /// State directory (default: $OPENCLAW_STATE_DIR, else ~/.openclaw)
    #[arg(long, global = true, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Start in the tray only, without opening the window
    #[arg(long)]
    pub hidden: bool,
    /// Open the window at start
    #[arg(long, conflicts_with = "hidden")]
    pub show: bool,
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
    /// Check the state directory (permissions, corrupt files, stale entries)
    Doctor {
        /// Repair what can be repaired safely
        #[arg(long)]
        fix: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum PairingCmd {
    /// List pending requests
    List {
        channel: Option<String>,
        #[arg(long, value_name = "ID")]
        account: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Approve a sender by code: `approve [CHANNEL] CODE`
    Approve {
        /// CHANNEL (optional when only one channel has pending requests) and CODE
        #[arg(num_args = 1..=2, required = true, value_names = ["CHANNEL", "CODE"])]
        args: Vec<String>,
        #[arg(long, value_name = "ID")]
        account: Option<String>,
        /// Tell the sender they were approved
        #[arg(long)]
        notify: bool,
        #[arg(long)]
        json: bool,
    },
    /// Reject a request by code: `reject [CHANNEL] CODE`
    Reject {
        #[arg(num_args = 1..=2, required = true, value_names = ["CHANNEL", "CODE"])]
        args: Vec<String>,
        #[arg(long, value_name = "ID")]
        account: Option<String>,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum AllowlistCmd {
    /// List allowed senders
    List {
        channel: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Allow a sender by hand
    Add {
        channel: String,
        sender: String,
        #[arg(long, value_name = "ID")]
        account: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Remove a sender (they are challenged again on their next message)
    Remove {
        channel: String,
        sender: String,
        #[arg(long, value_name = "ID")]
        account: Option<String>,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum DevicesCmd {
    /// List pending requests and paired devices
    List {
        #[arg(long)]
        json: bool,
    },
    /// Approve a request by its exact id (no id or --latest only previews)
    Approve {
        request_id: Option<String>,
        /// Preview the newest request and print the command that approves it
        #[arg(long)]
        latest: bool,
        #[arg(long)]
        json: bool,
    },
    /// Reject a pending request
    Reject {
        request_id: String,
        #[arg(long)]
        json: bool,
    },
    /// Forget a paired device (its connections close at once)
    Remove {
        device_id: String,
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
        #[arg(long)]
        json: bool,
    },
    /// Issue a new token for a device's role (the old one stops working)
    Rotate {
        #[arg(long, value_name = "ID")]
        device: String,
        #[arg(long)]
        role: String,
        #[arg(long)]
        json: bool,
    },
    /// Revoke a device's token for a role
    Revoke {
        #[arg(long, value_name = "ID")]
        device: String,
        #[arg(long)]
        role: String,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args, Debug)]
pub struct QrArgs {
    /// Gateway URL to put in the code (ws:// for LAN hosts, else wss://)
    #[arg(long)]
    pub url: Option<String>,
    /// Print {setupCode, url, expiresAtMs}
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
pub struct AuditArgs {
    /// Keep printing new entries
    #[arg(long)]
    pub follow: bool,
    #[arg(long)]
    pub json: bool,
    /// How many recent entries to show
    #[arg(long, default_value_t = 50)]
    pub limit: usize,
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
        let code = if e.code == "INVALID_REQUEST" && e.message.starts_with("invalid params") {
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

/// What a command runs against: the state files (or, when one is live, the gateway).
pub struct Ctx {
    pub service: Service,
}

impl Ctx {
    pub fn open(state_dir: Option<&std::path::Path>) -> Result<Ctx, CliError> {
        let dir = crate::config::resolve_state_dir(state_dir).map_err(CliError::refused)?;
        let (service, _) = Service::open(StatePaths::new(dir), Arc::new(SystemClock))
            .map_err(|e| CliError::refused(e.to_string()))?;
        Ok(Ctx { service })
    }

    /// Calls a protocol method as the owner.
    pub fn call(&self, method: &str, params: Value) -> Result<Value, CliError> {
        Ok(rpc::call(
            &self.service,
            &Caller::owner("cli", None),
            method,
            params,
        )?)
    }

    pub fn now(&self) -> i64 {
        self.service.now_ms()
    }
}

/// Runs a parsed command and returns the process exit code.
pub fn run(cli: Cli) -> ExitCode {
    let Some(command) = cli.command else {
        eprintln!("error: no command given; see `clawpair --help`");
        return ExitCode::from(2);
    };
    let result = Ctx::open(cli.state_dir.as_deref()).and_then(|ctx| match command {
        Command::Pairing(c) => dm::pairing(&ctx, c),
        Command::Allowlist(c) => dm::allowlist(&ctx, c),
        Command::Devices(c) => devices::run(&ctx, c),
        Command::Qr(a) => qr::run(&ctx, a),
        Command::Audit(a) => audit::run(&ctx, a),
        Command::Doctor { fix } => doctor::run(&ctx, fix),
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", e.message);
            ExitCode::from(e.exit)
        }
    }
}

/// Installs the stderr logger (`RUST_LOG` honoured; warnings by default).
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}

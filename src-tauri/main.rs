//! The `clawpair` binary: parse the command line and dispatch. No logic here.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = clawpair::cli::Cli::parse();
    let long_running = matches!(
        cli.command,
        None | Some(clawpair::cli::Command::Gateway { .. })
    );
    if long_running {
        let logs = clawpair::config::resolve_state_dir(cli.state_dir.as_deref())
            .ok()
            .map(|d| clawpair::store::StatePaths::new(d).logs_dir());
        clawpair::logging::init_long_running(logs.as_deref());
    } else {
        clawpair::logging::init_cli();
    }
    if cli.command.is_none() {
        return start_app(cli);
    }
    clawpair::cli::run(cli)
}

#[cfg(feature = "gui")]
fn start_app(cli: clawpair::cli::Cli) -> ExitCode {
    let args = clawpair::app::AppArgs {
        state_dir: cli.state_dir,
        hidden: cli.hidden,
        show: cli.show,
        attach: cli.attach,
        tls_fingerprint: cli.tls_fingerprint,
    };
    match clawpair::app::run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}

#[cfg(not(feature = "gui"))]
fn start_app(_cli: clawpair::cli::Cli) -> ExitCode {
    eprintln!("error: this build has no desktop app (built without the `gui` feature); run `clawpair gateway` or see `clawpair --help`");
    ExitCode::from(2)
}

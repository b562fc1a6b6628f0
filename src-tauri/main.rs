//! The `clawpair` the app ships (built as `clawpair-app`, installed as `clawpair`): every
//! command of the core's command line, and with no command the tray app.

use std::process::ExitCode;

fn main() -> ExitCode {
    clawpair_core::cli::main(|cli| {
        let args = clawpair_app::app::AppArgs {
            state_dir: cli.state_dir,
            hidden: cli.hidden,
            show: cli.show,
            attach: cli.attach,
            tls_fingerprint: cli.tls_fingerprint,
        };
        match clawpair_app::app::run(args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(1)
            }
        }
    })
}

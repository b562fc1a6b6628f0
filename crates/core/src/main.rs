//! `clawpair` without the desktop app: every command, and `clawpair gateway` for machines with
//! no display. The shipped app binary runs the same `cli::main` and adds the tray.

use std::process::ExitCode;

fn main() -> ExitCode {
    clawpair_core::cli::main(|_cli| {
        eprintln!(
            "error: this build has no desktop app; run `clawpair gateway` for the headless gateway, or see `clawpair --help`"
        );
        ExitCode::from(2)
    })
}

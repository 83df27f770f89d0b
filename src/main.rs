//! The `vds-proxy` command.

use std::process::ExitCode;

use vds_proxy::app;

/// Static (musl) builds use mimalloc: musl's allocator is slow under the relay's load.
#[cfg(target_env = "musl")]
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;
use vds_proxy::commands;

fn main() -> ExitCode {
    // The one list of systems, handed down to everything below.
    let systems = vds_proxy::roles::all();
    let matches = vds_proxy::cli::command(&systems.verbs).get_matches();
    let code = match commands::run_matches(matches, &systems) {
        Ok(code) => code,
        Err(e) => {
            for line in format!("{e:#}").lines() {
                eprintln!("error: {line}");
            }
            app::exit_code(&e)
        }
    };
    ExitCode::from(code as u8)
}

//! The `vds-proxy` command.

use std::process::ExitCode;

use vds_proxy::app;

/// Static (musl) builds use mimalloc: musl's allocator is slow under the relay's load.
#[cfg(target_env = "musl")]
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;
use vds_proxy::commands;

fn main() -> ExitCode {
    let code = match commands::run_matches(vds_proxy::cli::command().get_matches()) {
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

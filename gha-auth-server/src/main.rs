//! The `gha-auth` binary. All logic is in the library (`gha_auth_server::run`).

use std::process::ExitCode;

use clap::Parser;
use gha_auth_server::cli::Cli;
use gha_auth_server::run;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            let _ = std::io::Write::write_fmt(
                &mut std::io::stderr(),
                format_args!("error: cannot start the async runtime: {e}\n"),
            );
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(run(cli))
}

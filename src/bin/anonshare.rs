//! `anonshare`: parses the command line, runs it, prints the error once and maps it to an exit code.

use std::process::ExitCode;

use anonshare::cli::{parse_args, run};
use anonshare::client::ClientError;

fn main() -> ExitCode {
    let invocation = match parse_args(std::env::args_os().skip(1)) {
        Ok(invocation) => invocation,
        Err(err) => {
            eprintln!("anonshare: {err}");
            return ExitCode::from(1);
        }
    };
    match run(&invocation, &mut std::io::stdout().lock()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            if !matches!(err, ClientError::Told(_)) {
                eprintln!("anonshare: {err}");
            }
            ExitCode::from(err.exit_code())
        }
    }
}

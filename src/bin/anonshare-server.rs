//! `anonshare-server`: parses the command line, binds, takes over SIGTERM, SIGINT and SIGHUP,
//! prints the bound address, serves until a signal stops it.

use std::io::Write;
use std::process::ExitCode;

use anonshare::server::{Invocation, Server, parse_args, signals, usage};

fn main() -> ExitCode {
    let config = match parse_args(std::env::args_os().skip(1)) {
        Ok(Invocation::Serve(config)) => *config,
        Ok(Invocation::Help) => {
            print!("{}", usage());
            return ExitCode::SUCCESS;
        }
        Ok(Invocation::Version) => {
            println!("anonshare-server {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        Err(err) => {
            eprintln!("anonshare-server: {err}");
            return ExitCode::from(1);
        }
    };
    let result = Server::bind(config).and_then(|server| {
        signals::watch(server.shared())?;
        let mut stdout = std::io::stdout().lock();
        // One write, so a reader that takes only the first line and hangs up does not make
        // the next lines fail.
        let mut lines = format!("anonshare-server listening on {}\n", server.local_addr()?);
        for line in server.start_lines() {
            lines.push_str(&line);
            lines.push('\n');
        }
        stdout.write_all(lines.as_bytes())?;
        stdout.flush()?;
        drop(stdout);
        server.run()
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("anonshare-server: {err:#}");
            ExitCode::from(2)
        }
    }
}

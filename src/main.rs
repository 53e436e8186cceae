//! The `lcurve` command line: parses arguments, calls the library, prints, sets the exit code.

mod cli;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(cli::execute(args)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            // Libraries often repeat their source in their own message: print each text once.
            let mut last = e.to_string();
            for cause in e.chain().skip(1).map(|c| c.to_string()) {
                if !last.contains(&cause) {
                    eprintln!("  caused by: {cause}");
                }
                last = cause;
            }
            ExitCode::FAILURE
        }
    }
}

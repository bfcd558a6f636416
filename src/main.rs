//! The `privca` binary: parse the command line and hand over to [`privca::cli::run`].

use clap::Parser;

fn main() -> std::process::ExitCode {
    privca::cli::run(privca::cli::Cli::parse())
}

//! The `kdump-dma-observer` command: parse the arguments, run one subcommand (`cli/`).
use std::process::ExitCode;

use clap::Parser as _;

mod cli;

use cli::{Cli, Command};

fn main() -> ExitCode {
    observer::status::mark_main_entered();
    let cli = Cli::parse();
    cli::init_logging(&cli.log);
    let result = match &cli.command {
        Command::Run(args) => cli::run::execute(args),
        Command::Cmdline => cli::cmdline::execute(),
        Command::Setup(args) => cli::setup::execute(args),
        Command::Probes(args) => cli::probes::execute(args),
        Command::Report(args) => cli::report::execute(args),
        Command::Replay(args) => cli::replay::execute(args),
        Command::Recover(args) => cli::recover::execute(args),
        Command::Fleet(args) => cli::fleet::execute(args),
        Command::Man(args) => cli::man::execute(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("kdump-dma-observer: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

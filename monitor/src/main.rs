//! `kubelet-drift`: see `kubelet-drift --help`.

use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

/// Watches a Kubernetes node for drift of the kubelet's makeIPTablesUtilChains
/// (CIS Kubernetes Benchmark 4.2.7) and reports it the moment it happens.
#[derive(Parser)]
#[command(name = "kubelet-drift", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the monitor: attach the probes, report a baseline, then report every change.
    Run(kubelet_drift::daemon::RunArgs),
    /// Evaluate once, like a scanner: the live node, an offline image, or given arguments.
    Check(kubelet_drift::check::CheckArgs),
    /// Print the raw kernel events as JSON lines (for diagnosing a node).
    Events(kubelet_drift::events::EventsArgs),
    /// Write the man pages and shell completions into DIR (for packaging).
    #[command(hide = true)]
    GenerateDocs { dir: std::path::PathBuf },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Run(args) => kubelet_drift::daemon::main(args),
        Command::Check(args) => kubelet_drift::check::main(args),
        Command::Events(args) => kubelet_drift::events::main(args),
        Command::GenerateDocs { dir } => match kubelet_drift::docs::write(Cli::command(), &dir) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("kubelet-drift: {e:#}");
                ExitCode::FAILURE
            }
        },
    }
}

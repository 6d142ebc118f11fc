//! `cargo xtask <task>`: the project's own commands. Each installs what is missing first
//! (see `setup.rs`), says what it does, and is safe to run again.
//!
//! - `cargo xtask run [-- ARGS]`   build, then run the monitor in the foreground (embedded defaults)
//! - `cargo xtask test [-- ARGS]`  build, then run the whole test suite (as root: it loads eBPF)
//! - `cargo xtask build`           install the toolchain pieces and build (release)
//! - `cargo xtask setup`           only install what is missing
//! - `cargo xtask bench`           benchmarks; prints a table, writes target/bench/summary.json
//! - `cargo xtask deb`             build the .deb package
//! - `cargo xtask image`           build the container image (an OCI archive)
//! - `cargo xtask fidelity --cases N`  the evaluator against the kubelet's own libraries, N cases
//! - `cargo xtask sizes`           functions over 120 lines outside tests, daemon files over 400

mod bench;
mod deb;
mod fidelity;
mod image;
mod setup;
mod sizes;

use std::process::{Command, ExitCode};

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "cargo xtask",
    about = "kubelet-drift's build, run, test and bench tasks"
)]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Install what is missing (nightly rust-src, llvm-22-dev, bpf-linker, test tools).
    Setup,
    /// Set up, then build kubelet-drift (release) with its eBPF programs.
    Build,
    /// Set up, build, then run `kubelet-drift run` in the foreground with the embedded defaults
    /// (and `--text true`, so findings show on stderr even when it is not a terminal).
    Run {
        /// Arguments passed to `kubelet-drift run`.
        #[arg(last = true)]
        args: Vec<String>,
    },
    /// Set up, then run the whole test suite (unit, rules, and the real-kernel integration tests).
    Test {
        /// Arguments passed to `cargo test`.
        #[arg(last = true)]
        args: Vec<String>,
    },
    /// Build the .deb package (binary, unit, default config, journald catalog) with cargo-deb.
    Deb,
    /// Build the container image as an OCI archive (target/image/kubelet-drift-VERSION.oci.tar)
    /// from the release binary, with no base image: `podman load -i`, `ctr images import`.
    Image,
    /// Benchmarks (as root): latency, host overhead, footprint; prints a table and writes
    /// target/bench/summary.json (see BENCHMARKS.md).
    Bench,
    /// The differential harness on a larger sweep: the evaluator against the kubelet's own
    /// libraries (tests/kubelet-ref) on N generated cases; prints the agreement and each kind of
    /// disagreement (false pass, wrong, cautious error) by construct. Fails on any false pass
    /// or wrong verdict.
    Fidelity {
        /// How many generated cases.
        #[arg(long, default_value_t = 100_000)]
        cases: u64,
        /// Replay a seed (decimal or 0x-hex); default: a fresh one, printed.
        #[arg(long)]
        seed: Option<String>,
        /// How many shrunk example cases to print per kind of disagreement.
        #[arg(long, default_value_t = 12)]
        examples: u64,
    },
    /// The size rules: lists every function over 120 lines outside tests (monitor/, xtask/)
    /// and every daemon source file over 400 lines; fails when there is one.
    Sizes,
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.task {
        Task::Setup => setup::ensure(setup::Needs::All),
        Task::Build => {
            setup::ensure(setup::Needs::Build)?;
            cargo(&["build", "--release", "-p", "kubelet-drift"])
        }
        Task::Run { args } => {
            setup::ensure(setup::Needs::Build)?;
            cargo(&["build", "--release", "-p", "kubelet-drift"])?;
            let bin = setup::workspace_root().join("target/release/kubelet-drift");
            // In the foreground the findings go to the terminal whatever stderr is (a pipe,
            // a CI log): the embedded defaults would show text only on a terminal.
            let args = if args.is_empty() {
                vec!["--text".to_string(), "true".to_string()]
            } else {
                args
            };
            setup::say(&format!(
                "running {} run {} (Ctrl-C stops it)",
                bin.display(),
                args.join(" ")
            ));
            let status = Command::new(&bin)
                .arg("run")
                .args(&args)
                .status()
                .with_context(|| format!("starting {}", bin.display()))?;
            if !status.success() {
                bail!("kubelet-drift exited with {status}");
            }
            Ok(())
        }
        Task::Deb => {
            setup::ensure(setup::Needs::Build)?;
            deb::deb()
        }
        Task::Image => {
            setup::ensure(setup::Needs::Build)?;
            cargo(&["build", "--release", "-p", "kubelet-drift"])?;
            let target = std::env::var_os("CARGO_TARGET_DIR")
                .map(std::path::PathBuf::from)
                .unwrap_or_else(|| setup::workspace_root().join("target"));
            let version = env!("CARGO_PKG_VERSION");
            let out = target.join(format!("image/kubelet-drift-{version}.oci.tar"));
            let reference =
                image::write_archive(&target.join("release/kubelet-drift"), version, &out)?;
            setup::say(&format!(
                "{} ({reference}): `podman load -i {0}` or `ctr -n k8s.io images import {0}`",
                out.display()
            ));
            Ok(())
        }
        Task::Bench => bench::run(),
        Task::Sizes => sizes::run(),
        Task::Fidelity {
            cases,
            seed,
            examples,
        } => fidelity::sweep(cases, seed.as_deref(), examples),
        Task::Test { args } => {
            setup::ensure(setup::Needs::Test)?;
            fidelity::export_reference(&fidelity::build_reference()?);
            if !is_root() {
                bail!(
                    "the test suite loads eBPF programs and drives real processes: run it as root"
                );
            }
            let mut a = vec!["test", "--no-fail-fast"];
            a.extend(args.iter().map(String::as_str));
            cargo(&a)
        }
    }
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Runs cargo (the one running us) in the workspace root with the toolchain env set up.
pub fn cargo(args: &[&str]) -> Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    setup::say(&format!("cargo {}", args.join(" ")));
    let status = Command::new(cargo)
        .args(args)
        .current_dir(setup::workspace_root())
        .env("PATH", setup::path_with_cargo_bin())
        .status()
        .context("running cargo")?;
    if !status.success() {
        bail!("cargo {} failed ({status})", args.join(" "));
    }
    Ok(())
}

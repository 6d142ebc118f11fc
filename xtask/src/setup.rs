//! Installs what a fresh machine of this kind lacks, and nothing it already has:
//! - the nightly toolchain's `rust-src` (the eBPF crate is built with `-Z build-std=core`);
//! - `llvm-22-dev` (bpf-linker links against LLVM 22, the LLVM of that nightly);
//! - `bpf-linker`, built against it (`--no-default-features --features llvm-22`: the default
//!   features look for LLVM 23 and fail);
//! - for the tests: Go and the kubelet's libraries from Debian, to build the differential
//!   reference `tests/kubelet-ref` (GOPATH mode, no network: see `fidelity.rs`); vim-tiny
//!   (editor evasion tests), skopeo (image test), gcc and linux-libc-dev (io_uring client),
//!   and from PyPI kubernetes-validate (manifest schemas);
//! - for the benchmarks also inotify-tools and bpftrace.

use std::{
    env,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context, Result, bail};

/// The nightly that matches bpf-linker's LLVM 22. A newer one's LLVM would not match.
pub const NIGHTLY: &str = "nightly-2026-05-19";
pub const BPF_LINKER_VERSION: &str = "0.13.0";
const LLVM_PREFIX: &str = "/usr/lib/llvm-22";

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Needs {
    /// The eBPF build: nightly rust-src, llvm-22-dev, bpf-linker.
    Build,
    /// The test suite: the build, plus vim-tiny (editor evasion tests) and journald's binary.
    Test,
    /// Everything, benchmarks included (inotify-tools, bpftrace).
    All,
}

pub fn say(msg: &str) {
    eprintln!("xtask: {msg}");
}

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn cargo_home() -> PathBuf {
    env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env::var_os("HOME").unwrap_or_else(|| "/root".into())).join(".cargo")
        })
}

/// PATH with `$CARGO_HOME/bin` in front, so that a freshly installed bpf-linker is found.
pub fn path_with_cargo_bin() -> std::ffi::OsString {
    let mut paths = vec![cargo_home().join("bin")];
    if let Some(p) = env::var_os("PATH") {
        paths.extend(env::split_paths(&p));
    }
    env::join_paths(paths).unwrap_or_default()
}

fn run(cmd: &mut Command, what: &str) -> Result<()> {
    say(what);
    let status = cmd
        .env("PATH", path_with_cargo_bin())
        .status()
        .with_context(|| format!("{what}: could not start"))?;
    if !status.success() {
        bail!("{what}: failed ({status})");
    }
    Ok(())
}

fn output_ok(cmd: &mut Command) -> Option<String> {
    let out = cmd.env("PATH", path_with_cargo_bin()).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

pub fn ensure(needs: Needs) -> Result<()> {
    ensure_nightly()?;
    ensure_bpf_linker()?;
    if matches!(needs, Needs::Test | Needs::All) {
        ensure_debs(&crate::fidelity::go_packages())?;
        // vim (editor evasion tests), skopeo (the image archive test), gcc and the kernel's
        // uapi headers (the io_uring client the blind-spot tests build).
        ensure_apt(&[("vi", "vim-tiny"), ("skopeo", "skopeo"), ("gcc", "gcc")])?;
        ensure_debs(&["linux-libc-dev"])?;
        ensure_pip("kubernetes-validate", "kubernetes-validate")?;
    }
    if needs == Needs::All {
        ensure_apt(&[
            ("inotifywait", "inotify-tools"),
            ("bpftrace", "bpftrace"),
            ("vi", "vim-tiny"),
        ])?;
    }
    Ok(())
}

/// The eBPF build uses the toolchain named `nightly` (aya-build's default): it must be the
/// one bpf-linker's LLVM matches, with rust-src.
fn ensure_nightly() -> Result<()> {
    let version = output_ok(Command::new("rustup").args(["run", "nightly", "rustc", "--version"]));
    match version {
        Some(v) if v.contains("2026-05-19") || v.contains("2026-05-1") => {}
        Some(v) => say(&format!(
            "warning: the `nightly` toolchain is {} — bpf-linker is built for LLVM 22 ({NIGHTLY}); \
             a different LLVM may fail to link",
            v.trim()
        )),
        None => {
            run(
                Command::new("rustup").args([
                    "toolchain",
                    "install",
                    NIGHTLY,
                    "--profile",
                    "minimal",
                    "--component",
                    "rust-src",
                ]),
                &format!("installing the {NIGHTLY} toolchain"),
            )?;
            let dir = output_ok(
                Command::new("rustup").args(["run", NIGHTLY, "rustc", "--print", "sysroot"]),
            )
            .context("finding the new toolchain's sysroot")?;
            run(
                Command::new("rustup").args(["toolchain", "link", "nightly", dir.trim()]),
                &format!("naming {NIGHTLY} `nightly` for the eBPF build"),
            )?;
        }
    }
    let installed = output_ok(Command::new("rustup").args([
        "component",
        "list",
        "--toolchain",
        "nightly",
        "--installed",
    ]))
    .unwrap_or_default();
    if !installed.lines().any(|l| l.starts_with("rust-src")) {
        run(
            Command::new("rustup").args(["component", "add", "rust-src", "--toolchain", "nightly"]),
            "adding rust-src to the nightly toolchain (for -Z build-std)",
        )?;
    }
    Ok(())
}

fn ensure_bpf_linker() -> Result<()> {
    if output_ok(Command::new("bpf-linker").arg("--version")).is_some() {
        return Ok(());
    }
    if !Path::new(LLVM_PREFIX).join("bin/llvm-config").exists() {
        apt_install(&["llvm-22-dev"])?;
    }
    run(
        Command::new(env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args([
                "install",
                "--locked",
                "bpf-linker",
                "--version",
                BPF_LINKER_VERSION,
                "--no-default-features",
                "--features",
                "llvm-22",
            ])
            .env("LLVM_PREFIX", LLVM_PREFIX),
        &format!("building bpf-linker {BPF_LINKER_VERSION} against LLVM 22 (about 90 s)"),
    )
}

/// (command that proves it is there, Debian package that brings it)
fn ensure_apt(wanted: &[(&str, &str)]) -> Result<()> {
    let missing: Vec<&str> = wanted
        .iter()
        .filter(|(cmd, _)| {
            output_ok(Command::new("sh").args(["-c", &format!("command -v {cmd}")])).is_none()
        })
        .map(|(_, pkg)| *pkg)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    apt_install(&missing)
}

/// A command from PyPI (the manifests test's Kubernetes schema validator, which carries the
/// schemas, so it works offline), installed with the machine's pip.
fn ensure_pip(cmd: &str, pkg: &str) -> Result<()> {
    if output_ok(Command::new("sh").args(["-c", &format!("command -v {cmd}")])).is_some() {
        return Ok(());
    }
    run(
        Command::new("python3").args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            pkg,
        ]),
        &format!("installing {pkg} (pip)"),
    )
}

/// Debian packages that bring no command of their own (Go libraries): asked of dpkg.
fn ensure_debs(pkgs: &[&str]) -> Result<()> {
    let missing: Vec<&str> = pkgs
        .iter()
        .copied()
        .filter(|p| {
            output_ok(Command::new("dpkg-query").args(["-W", "-f=${Status}", p]))
                .is_none_or(|s| !s.contains("install ok installed"))
        })
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    apt_install(&missing)
}

fn apt_install(pkgs: &[&str]) -> Result<()> {
    run(
        Command::new("apt-get").args(["update", "-qq"]),
        "apt-get update",
    )?;
    run(
        Command::new("apt-get")
            .args(["install", "-y", "-qq", "--no-install-recommends"])
            .args(pkgs)
            .env("DEBIAN_FRONTEND", "noninteractive"),
        &format!("installing {}", pkgs.join(" ")),
    )
}

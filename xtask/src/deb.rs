//! `cargo xtask deb`: the Debian package, built by cargo-deb from `[package.metadata.deb]`
//! in monitor/Cargo.toml (binary, hardened unit, default config as conffile, journald
//! catalog). Installs cargo-deb first if it is missing. The .deb lands in
//! target/debian/ and is never committed.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context, bail};

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_path_buf()
}

fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}

fn cargo_deb_installed() -> bool {
    Command::new(cargo())
        .args(["deb", "--version"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// Builds target/debian/kubelet-drift_<version>_<arch>.deb (release build of the monitor,
/// then packaging). Honours AYA_BUILD_SKIP like any build of the monitor.
pub fn deb() -> anyhow::Result<()> {
    if !cargo_deb_installed() {
        eprintln!("cargo-deb not found: cargo install --locked cargo-deb");
        let st = Command::new(cargo())
            .args(["install", "--locked", "cargo-deb"])
            .status()
            .context("running cargo install")?;
        if !st.success() {
            bail!("cargo install --locked cargo-deb failed ({st})");
        }
    }
    let root = workspace_root();
    let out = Command::new(cargo())
        .current_dir(&root)
        .args(["deb", "-p", "kubelet-drift"])
        .stderr(std::process::Stdio::inherit())
        .output()
        .context("running cargo deb")?;
    if !out.status.success() {
        bail!("cargo deb -p kubelet-drift failed ({})", out.status);
    }
    // cargo-deb prints the package path on stdout.
    let path = String::from_utf8_lossy(&out.stdout).trim().to_string();
    println!("{path}");
    if Path::new(&path).exists() {
        let _ = Command::new("dpkg-deb").arg("-c").arg(&path).status();
    }
    Ok(())
}

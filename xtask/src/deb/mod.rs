//! `cargo xtask deb`: the Debian package, built by cargo-deb from `[package.metadata.deb]`
//! in monitor/Cargo.toml (binary, hardened unit, default config as conffile, journald
//! catalog). Installs cargo-deb first if it is missing. The .deb lands in
//! target/debian/ and is never committed. Its DEP-5 copyright file is generated first, from
//! the lock file (see `copyright.rs`), into `deploy/debian/copyright` (ignored by git).

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context, bail};

mod copyright;

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
    let crates = copyright::linked_crates(&root)?;
    let dest = root.join("deploy/debian/copyright");
    std::fs::write(&dest, copyright::render(&crates))
        .with_context(|| format!("writing {}", dest.display()))?;
    eprintln!(
        "xtask: {} lists {} statically linked crates",
        dest.display(),
        crates.len()
    );
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
        lintian(&path)?;
    }
    Ok(())
}

/// Debian's own package checker: any error fails the task (warnings are printed).
fn lintian(deb: &str) -> anyhow::Result<()> {
    let present = Command::new("lintian")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !present {
        eprintln!("xtask: lintian not found: apt-get install -y lintian");
        let st = Command::new("apt-get")
            .args(["install", "-y", "--no-install-recommends", "lintian"])
            .status()
            .context("running apt-get")?;
        if !st.success() {
            bail!("apt-get install lintian failed ({st})");
        }
    }
    eprintln!("xtask: lintian {deb}");
    let st = Command::new("lintian")
        .args(["--fail-on", "error", "--info", deb])
        .status()
        .context("running lintian")?;
    if !st.success() {
        bail!("lintian reports errors for {deb}");
    }
    Ok(())
}

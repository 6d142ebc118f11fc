//! The differential reference and the fidelity sweep.
//!
//! `tests/kubelet-ref` is a Go program on the kubelet's own libraries (spf13/pflag,
//! sigs.k8s.io/yaml on go-yaml v2, sigs.k8s.io/json, evanphx/json-patch), built in GOPATH
//! mode from Debian's packages: no module download, no network. `cargo xtask test` builds it
//! and hands its path to `tests/fidelity.rs` (`KUBELET_REF`); `cargo xtask fidelity --cases N`
//! runs that harness on N generated cases and prints the agreement and every kind of
//! disagreement by construct.

use std::{path::PathBuf, process::Command};

use anyhow::{Context, Result, bail};

use crate::setup;

/// What the reference is built from (installed by `setup::ensure(Needs::Test)`), one a line
/// after the comments, in the list the tests read too.
pub fn go_packages() -> Vec<&'static str> {
    include_str!("../../tests/kubelet-ref/debian-packages")
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(str::trim)
        .collect()
}

/// Debian's GOPATH for `-dev` Go packages.
const GOPATH: &str = "/usr/share/gocode";

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| setup::workspace_root().join("target"))
}

/// Builds `tests/kubelet-ref` into `<target>/kubelet-ref/kubelet-ref` and returns its path.
pub fn build_reference() -> Result<PathBuf> {
    let out_dir = target_dir().join("kubelet-ref");
    let bin = out_dir.join("kubelet-ref");
    setup::say(&format!(
        "building the differential reference tests/kubelet-ref -> {}",
        bin.display()
    ));
    let status = Command::new("go")
        .args(["build", "-o"])
        .arg(&bin)
        .arg(".")
        .current_dir(setup::workspace_root().join("tests/kubelet-ref"))
        .env("GOPATH", GOPATH)
        .env("GO111MODULE", "off")
        .env("GOFLAGS", "")
        .env("GOCACHE", out_dir.join("go-cache"))
        .status()
        .context("running go (golang-go)")?;
    if !status.success() {
        bail!("building tests/kubelet-ref failed ({status})");
    }
    Ok(bin)
}

/// Makes the reference known to the test harness run by this process's cargo.
pub fn export_reference(bin: &std::path::Path) {
    // SAFETY: xtask is single-threaded here; the variable is read by the cargo it starts.
    unsafe { std::env::set_var("KUBELET_REF", bin) };
}

/// `cargo xtask fidelity`: the harness on `cases` cases (of `seed`, or a fresh one).
pub fn sweep(cases: u64, seed: Option<&str>, examples: u64) -> Result<()> {
    setup::ensure(setup::Needs::Test)?;
    let bin = build_reference()?;
    export_reference(&bin);
    // SAFETY: as above.
    unsafe {
        std::env::set_var("FIDELITY_CASES", cases.to_string());
        std::env::set_var("FIDELITY_EXAMPLES", examples.to_string());
        std::env::set_var("FIDELITY_SHOW_CAUTIOUS", "1");
        if let Some(s) = seed {
            std::env::set_var("FIDELITY_SEED", s);
        }
    }
    crate::cargo(&[
        "test",
        "-p",
        "kubelet-drift-tests",
        "--test",
        "fidelity",
        "--",
        "--nocapture",
        "evaluator_agrees_with_the_kubelet",
    ])
}

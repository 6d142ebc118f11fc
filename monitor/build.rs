//! Builds the kernel programs (`monitor-ebpf`) with aya-build and embeds them.
//!
//! When bpf-linker is not installed (a plain `cargo build`/`cargo clippy` of the host crates,
//! or `AYA_BUILD_SKIP=1`), an empty object is embedded instead and the binary says so
//! clearly when it tries to load it: `cargo xtask build` installs what is missing.
use std::{env, fs, path::PathBuf};

fn main() -> anyhow::Result<()> {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR"));
    let object = out.join("kubelet-drift-ebpf");
    println!("cargo:rerun-if-env-changed=AYA_BUILD_SKIP");
    println!("cargo:rerun-if-env-changed=PATH");
    let skip = env::var("AYA_BUILD_SKIP").is_ok_and(|v| v == "1" || v.eq_ignore_ascii_case("true"));
    let have_linker = env::split_paths(&env::var_os("PATH").unwrap_or_default())
        .any(|dir| dir.join("bpf-linker").is_file());
    if skip || !have_linker {
        println!(
            "cargo:warning=building without the eBPF programs ({}); `cargo xtask build` installs bpf-linker and builds them",
            if skip {
                "AYA_BUILD_SKIP is set"
            } else {
                "bpf-linker not found in PATH"
            }
        );
        fs::write(&object, b"")?;
        return Ok(());
    }
    let pkg = aya_build::Package {
        name: "monitor-ebpf",
        root_dir: concat!(env!("CARGO_MANIFEST_DIR"), "/../monitor-ebpf"),
        ..Default::default()
    };
    aya_build::build_ebpf([pkg], aya_build::Toolchain::Nightly)
}

//! Helpers shared by the assembly tests.

use std::os::unix::fs::symlink;

use crate::kubelet::rootfs::RootFs;
pub(super) use crate::kubelet::rootfs::test_root as node;

pub(super) use crate::kubelet::rootfs::corpus_text as corpus;

/// Makes `at` (inside the root) a symlink to `target`.
pub(super) fn link(dir: &tempfile::TempDir, at: &str, target: &str) {
    let host = dir.path().join(at.trim_start_matches('/'));
    std::fs::create_dir_all(host.parent().unwrap()).unwrap();
    symlink(target, host).unwrap();
}

/// The assembled argv of `kubelet.service`.
pub(super) fn argv(fs: &RootFs) -> Vec<String> {
    super::assemble(fs, "kubelet.service").unwrap().argv
}

pub(super) fn words(s: &[&str]) -> Vec<String> {
    s.iter().map(|s| s.to_string()).collect()
}

pub(super) const BASE: &str = "[Service]\nExecStart=/usr/bin/kubelet\n";

//! The test kit of the kubelet's rules: a node root in a temporary directory, and the one
//! locator of the shared test corpus.

use std::path::{Path, PathBuf};

use super::RootFs;

/// A node root in a temporary directory holding `files` (path inside the root, content), for
/// tests. The directory lives as long as the returned guard.
pub(crate) fn test_root(files: &[(&str, &str)]) -> (tempfile::TempDir, RootFs) {
    let dir = tempfile::tempdir().unwrap();
    for (p, text) in files {
        let host = dir.path().join(p.trim_start_matches('/'));
        std::fs::create_dir_all(host.parent().unwrap()).unwrap();
        std::fs::write(host, text).unwrap();
    }
    let fs = RootFs::new(dir.path());
    (dir, fs)
}

/// The environment variable that points the tests at the shared corpus when it is not next to
/// the checkout.
pub(crate) const CORPUS_ENV: &str = "KUBELET_DRIFT_CORPUS";

/// The shared test corpus (third-party kubelet configs, units and env files, with their
/// origins in `SOURCES.md`), for tests: `shared/corpus` next to the checkout, i.e.
/// `<workspace root>/../shared/corpus`, or the directory named by `KUBELET_DRIFT_CORPUS`.
/// The repository holds no copy of these files. Panics with what to do when it is missing.
pub(crate) fn corpus_dir() -> PathBuf {
    let p = match std::env::var_os(CORPUS_ENV) {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus"),
    };
    assert!(
        p.join("SOURCES.md").is_file(),
        "the shared test corpus is missing: expected shared/corpus next to the checkout, at {} \
         (a directory holding SOURCES.md); put it there or set {CORPUS_ENV} to its directory",
        p.display()
    );
    p
}

/// The text of `rel` in the shared test corpus ([`corpus_dir`]).
pub(crate) fn corpus_text(rel: &str) -> String {
    let p = corpus_dir().join(rel);
    std::fs::read_to_string(&p)
        .unwrap_or_else(|e| panic!("corpus file {} cannot be read: {e}", p.display()))
}

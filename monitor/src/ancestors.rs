//! Every ancestor counts: the directories on the path of an input (`/`, `etc`, `kubernetes`,
//! …), lexically and after resolving symlinks. Renaming, removing or mounting over any of
//! them changes what the kubelet reads as surely as writing the file. The kernel programs
//! cannot resolve paths, so they match the last component of a rename/unlink/rmdir against
//! these directories' names (`ANCESTOR_NAMES`); userspace then resolves the path and keeps it
//! when it is one of these directories ([`crate::watched::WatchSet::matches`]).

use std::{
    collections::BTreeSet,
    os::unix::ffi::OsStrExt,
    path::{Path, PathBuf},
};

use crate::watched::{Canonical, WatchSet};

/// Adds the ancestors of `path` (absolute, normalized), and of its resolved form, to `names`
/// (basenames) and `paths`. A watched directory counts as its own ancestor (a rename of it).
pub fn add(
    names: &mut BTreeSet<Vec<u8>>,
    paths: &mut BTreeSet<PathBuf>,
    path: &Path,
    is_dir: bool,
    canonical: &Canonical,
) {
    let mut chains = vec![path.to_path_buf()];
    if let Some(real) = resolved(path, canonical)
        && real != path
    {
        chains.push(real);
    }
    for chain in chains {
        let first = if is_dir {
            Some(chain.as_path())
        } else {
            chain.parent()
        };
        for a in first.into_iter().flat_map(Path::ancestors) {
            if let Some(name) = a.file_name() {
                names.insert(name.as_bytes().to_vec());
                paths.insert(a.to_path_buf());
            }
        }
    }
}

/// `path` with symlinks resolved: the deepest existing ancestor canonicalized, the rest
/// appended (the input may not exist yet).
pub(crate) fn resolved(path: &Path, canonical: &Canonical) -> Option<PathBuf> {
    let mut rest = Vec::new();
    for a in path.ancestors() {
        if let Some(real) = canonical.of(a) {
            let mut out = real;
            for part in rest.iter().rev() {
                out.push(part);
            }
            return Some(out);
        }
        rest.push(a.file_name()?.to_os_string());
    }
    None
}

/// The names the kernel matches: every ancestor's, and every watched directory's (a watched
/// directory renamed as `dir/`, with a trailing slash).
pub fn kernel_names(set: &WatchSet) -> BTreeSet<Vec<u8>> {
    let mut names = set.ancestor_names.clone();
    for d in &set.dirs {
        if let Some(n) = d.file_name() {
            names.insert(n.as_bytes().to_vec());
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;

    #[test]
    fn lexical_and_resolved_ancestors() {
        let t = tempfile::tempdir().unwrap();
        let real = t.path().join("data/k8s");
        fs::create_dir_all(&real).unwrap();
        fs::create_dir(t.path().join("etc")).unwrap();
        std::os::unix::fs::symlink(&real, t.path().join("etc/kubernetes")).unwrap();
        let input = t.path().join("etc/kubernetes/kubelet/config.yaml");
        let (mut names, mut paths) = (BTreeSet::new(), BTreeSet::new());
        add(&mut names, &mut paths, &input, false, &Canonical::default());
        for n in ["etc", "kubernetes", "kubelet", "data", "k8s"] {
            assert!(names.contains(n.as_bytes()), "{n} missing from {names:?}");
        }
        assert!(!names.contains(b"config.yaml".as_slice()));
        let real_root = fs::canonicalize(t.path()).unwrap();
        assert!(paths.contains(&real_root.join("data/k8s/kubelet")));
        assert!(paths.contains(&t.path().join("etc/kubernetes")));
        assert!(!paths.contains(Path::new("/")));
        // A directory is its own ancestor.
        let (mut names, mut paths) = (BTreeSet::new(), BTreeSet::new());
        add(&mut names, &mut paths, &real, true, &Canonical::default());
        assert!(names.contains(b"k8s".as_slice()));
    }
}

//! A relative path whose process is gone, placed by the directory the kernel saw it given
//! against. A short-lived writer (`cd /var/lib/kubelet && sed -i … config.yaml`) can exit
//! before its record is read, and with it its `/proc/<pid>/cwd` and fds; the kernel read the
//! cwd's or the dirfd's inode at the call (`FileEvent::base_*`). The path is placed only where
//! that is certain: a watched path that ends with it, whose head is that same directory now.
//! Anything else stays unplaced (and is then taken on its name alone, never guessed here).

use std::path::{Component, Path, PathBuf};

use crate::watched::WatchSet;

/// The watched path `rel` names when given against the directory `base` (kernel device
/// number, inode), if a watched file, listed directory or directory on an input's path ends
/// with it and the head before that suffix is `base` now: (that head, the placed path).
pub fn by_base(set: &WatchSet, base: (u32, u64), rel: &Path) -> Option<(PathBuf, PathBuf)> {
    by_base_with(set, base, rel, live_inode)
}

/// Both paths of a path operation (rename, link): each placed by [`by_base`], and a path
/// that is not watched itself (sed's temporary file) placed through the other's head when
/// both were given against the same directory.
pub fn pair(
    set: &WatchSet,
    first: (Option<(u32, u64)>, &Path),
    second: (Option<(u32, u64)>, &Path),
) -> (Option<PathBuf>, Option<PathBuf>) {
    pair_with(set, first, second, live_inode)
}

fn live_inode(p: &Path) -> Option<(u32, u64)> {
    crate::probes::inode_key_of(p).map(|k| (k.dev, k.ino))
}

/// [`pair`] with the directory lookup given (tests).
pub fn pair_with(
    set: &WatchSet,
    (b1, p1): (Option<(u32, u64)>, &Path),
    (b2, p2): (Option<(u32, u64)>, &Path),
    inode_of: impl Fn(&Path) -> Option<(u32, u64)>,
) -> (Option<PathBuf>, Option<PathBuf>) {
    let one = b1.and_then(|b| by_base_with(set, b, p1, &inode_of));
    let two = b2.and_then(|b| by_base_with(set, b, p2, &inode_of));
    let through = |other: &Option<(PathBuf, PathBuf)>, rel: &Path| {
        let (h, _) = other.as_ref()?;
        Some(h.join(plain(rel)?))
    };
    let first = match (&one, b1 == b2) {
        (Some((_, p)), _) => Some(p.clone()),
        (None, true) if b1.is_some() => through(&two, p1),
        _ => None,
    };
    let second = match (&two, b1 == b2) {
        (Some((_, p)), _) => Some(p.clone()),
        (None, true) if b2.is_some() => through(&one, p2),
        _ => None,
    };
    (first, second)
}

/// A relative path as plain names (`./sedAb12` is `sedAb12`; `..` would need the directory
/// tree as it was at the call, and an absolute path is not relative to anything).
fn plain(rel: &Path) -> Option<PathBuf> {
    let mut parts = PathBuf::new();
    for c in rel.components() {
        match c {
            Component::Normal(n) => parts.push(n),
            Component::CurDir => {}
            _ => return None,
        }
    }
    (!parts.as_os_str().is_empty()).then_some(parts)
}

/// Is `rel` a single name (`config.yaml`, `./config.yaml`): its directory is the base itself?
pub fn bare(rel: &Path) -> bool {
    plain(rel).is_some_and(|p| p.components().count() == 1)
}

/// [`by_base`] with the directory lookup given (tests).
pub fn by_base_with(
    set: &WatchSet,
    base: (u32, u64),
    rel: &Path,
    inode_of: impl Fn(&Path) -> Option<(u32, u64)>,
) -> Option<(PathBuf, PathBuf)> {
    let rel = plain(rel)?;
    let parent = rel.parent().unwrap_or(Path::new("")).to_path_buf();
    let exact = set
        .files
        .iter()
        .chain(&set.dirs)
        .chain(&set.ancestor_paths)
        .filter_map(|w| head(w, &rel));
    // Any name in a listed (drop-in) directory: the directory ends with the path's parent.
    let listed = set.dirs.iter().filter_map(|d| head(d, &parent));
    let mut seen: Vec<PathBuf> = Vec::new();
    for h in exact.chain(listed) {
        if seen.contains(&h) {
            continue;
        }
        if inode_of(&h) == Some(base) {
            let placed = h.join(&rel);
            return Some((h, placed));
        }
        seen.push(h);
    }
    None
}

/// `w` without the trailing components `suffix` (all of `w` when `suffix` is empty), when
/// it ends with them and something is left.
fn head(w: &Path, suffix: &Path) -> Option<PathBuf> {
    let n = suffix.components().count();
    if !w.ends_with(suffix) {
        return None;
    }
    let mut h = w.to_path_buf();
    for _ in 0..n {
        if !h.pop() {
            return None;
        }
    }
    (!h.as_os_str().is_empty()).then_some(h)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(files: &[&str], dirs: &[&str], ancestors: &[&str]) -> WatchSet {
        let mut s = WatchSet::new();
        s.files = files.iter().map(PathBuf::from).collect();
        s.dirs = dirs.iter().map(PathBuf::from).collect();
        s.ancestor_paths = ancestors.iter().map(PathBuf::from).collect();
        s
    }

    /// A fake tree: each directory's inode.
    fn tree(dirs: &[(&str, u64)]) -> impl Fn(&Path) -> Option<(u32, u64)> {
        let m: Vec<(PathBuf, u64)> = dirs.iter().map(|(p, i)| (PathBuf::from(p), *i)).collect();
        move |p: &Path| m.iter().find(|(d, _)| d == p).map(|(_, i)| (8, *i))
    }

    #[test]
    fn places_only_where_the_directory_is_the_one_the_kernel_saw() {
        let s = set(
            &["/node/var/lib/kubelet/config.yaml"],
            &["/node/etc/systemd/system/kubelet.service.d"],
            &[
                "/node/var/lib/kubelet",
                "/node/var/lib",
                "/node/etc/systemd/system",
            ],
        );
        let fs = tree(&[
            ("/node/var/lib/kubelet", 10),
            ("/node/var/lib", 11),
            ("/node/etc/systemd/system", 12),
            ("/node/etc/systemd/system/kubelet.service.d", 13),
        ]);
        let cases: &[(u64, &str, Option<&str>)] = &[
            // A bare name in the config's directory.
            (10, "config.yaml", Some("/node/var/lib/kubelet/config.yaml")),
            // The same name given in another directory: not ours, not placed.
            (99, "config.yaml", None),
            // Two components from the parent.
            (
                11,
                "kubelet/config.yaml",
                Some("/node/var/lib/kubelet/config.yaml"),
            ),
            (10, "kubelet/config.yaml", None),
            // Any name in a drop-in directory, bare or through its parent.
            (
                13,
                "99-x.conf",
                Some("/node/etc/systemd/system/kubelet.service.d/99-x.conf"),
            ),
            (
                12,
                "kubelet.service.d/99-x.conf",
                Some("/node/etc/systemd/system/kubelet.service.d/99-x.conf"),
            ),
            // A directory on the input's path, renamed by a relative name.
            (11, "kubelet", Some("/node/var/lib/kubelet")),
            // A leading `./` is the directory itself; `..` is never placed.
            (
                10,
                "./config.yaml",
                Some("/node/var/lib/kubelet/config.yaml"),
            ),
            (10, "../kubelet/config.yaml", None),
            // A name that is nowhere in the set.
            (10, "other.yaml", None),
        ];
        for (base, rel, want) in cases {
            assert_eq!(
                by_base_with(&s, (8, *base), Path::new(rel), &fs).map(|(_, p)| p),
                want.map(PathBuf::from),
                "{rel} against inode {base}"
            );
        }
    }

    #[test]
    fn another_device_with_the_same_inode_is_another_directory() {
        let s = set(&["/node/var/lib/kubelet/config.yaml"], &[], &[]);
        let fs = tree(&[("/node/var/lib/kubelet", 10)]);
        assert_eq!(
            by_base_with(&s, (9, 10), Path::new("config.yaml"), &fs),
            None
        );
    }
}

//! The watch set: which names and inodes the kernel programs report, built from the files
//! that feed the kubelet's configuration, and the exact userspace match behind the kernel's
//! prefilter.

use std::{
    collections::{BTreeMap, BTreeSet},
    ffi::OsStr,
    fs,
    os::unix::ffi::OsStrExt,
    path::{Component, Path, PathBuf},
};

use monitor_common::{InodeKey, watch};

use crate::probes::{Probes, inode_key};

/// Where kubelets usually get their configuration: watched even before (or without) an
/// evaluation naming them, so that the first write to any of them is seen.
pub const DEFAULT_PATHS: &[&str] = &[
    // kubeadm, kind
    "/var/lib/kubelet/config.yaml",
    "/var/lib/kubelet/config.yml",
    "/var/lib/kubelet/kubeadm-flags.env",
    "/etc/default/kubelet",
    "/etc/sysconfig/kubelet",
    // kubespray
    "/etc/kubernetes/kubelet-config.yaml",
    "/etc/kubernetes/kubelet.env",
    // EKS AL2 and AL2023 (nodeadm)
    "/etc/kubernetes/kubelet/kubelet-config.json",
    "/etc/kubernetes/kubelet/config.json",
    "/etc/kubernetes/kubelet/config.json.d",
    "/etc/eks/kubelet/environment",
    // GKE (COS), other kube-bench-known locations
    "/home/kubernetes/kubelet-config.yaml",
    "/home/kubernetes/kubelet-config.yml",
    "/etc/kubernetes/kubelet/config",
    "/etc/kubernetes/kubelet.yaml",
    "/etc/default/kubeletconfig.json",
    // snaps (MicroK8s, the kubelet snap): flag files
    "/var/snap/microk8s/current/args/kubelet",
    "/var/snap/kubelet/current/args",
    // RKE2 / k3s drop-ins
    "/var/lib/rancher/rke2/agent/etc/kubelet.conf.d",
    "/var/lib/rancher/k3s/agent/etc/kubelet.conf.d",
    // systemd units and drop-ins
    "/etc/systemd/system/kubelet.service",
    "/etc/systemd/system/kubelet.service.d",
    "/run/systemd/system/kubelet.service.d",
    "/lib/systemd/system/kubelet.service",
    "/lib/systemd/system/kubelet.service.d",
    "/usr/lib/systemd/system/kubelet.service",
    "/usr/lib/systemd/system/kubelet.service.d",
    "/usr/bin/kubelet",
];

/// How many directory levels below a watched directory are watched (drop-in dirs are walked
/// recursively by the kubelet).
const MAX_DEPTH: usize = 8;
/// Bound on the inodes one watched directory may add.
const MAX_DIR_ENTRIES: usize = 4096;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WatchSet {
    /// Watched files (as given, and symlink targets).
    pub files: BTreeSet<PathBuf>,
    /// Watched directories (recursively).
    pub dirs: BTreeSet<PathBuf>,
    /// Basenames for the kernel's path prefilter.
    pub names: BTreeSet<Vec<u8>>,
    /// Inodes for the kernel's open/ftruncate match.
    pub inodes: BTreeMap<InodeKey, u32>,
    /// Names and paths of the directories on the inputs' paths (see `crate::ancestors`).
    pub ancestor_names: BTreeSet<Vec<u8>>,
    pub ancestor_paths: BTreeSet<PathBuf>,
}

impl WatchSet {
    pub fn new() -> WatchSet {
        WatchSet::default()
    }

    /// Watches `path`: a file (or one that may appear) or a directory (recursively). A
    /// symlink is watched as a name and its target as a file too.
    pub fn add(&mut self, path: &Path) {
        let path = normalize(path);
        self.add_name(&path);
        let is_dir = fs::metadata(&path).map(|m| m.is_dir()).unwrap_or(false);
        crate::ancestors::add(
            &mut self.ancestor_names,
            &mut self.ancestor_paths,
            &path,
            is_dir,
        );
        if is_dir {
            self.add_dir(&path, 0);
        } else {
            if let Ok(meta) = fs::metadata(&path) {
                self.inodes.entry(inode_key(&meta)).or_insert(watch::FILE);
            }
            if let Ok(target) = fs::canonicalize(&path)
                && target != path
            {
                self.add_name(&target);
                self.files.insert(target);
            }
            self.files.insert(path);
        }
    }

    fn add_dir(&mut self, dir: &Path, depth: usize) {
        self.add_name(dir);
        if let Ok(meta) = fs::metadata(dir) {
            *self.inodes.entry(inode_key(&meta)).or_insert(0) |= watch::DIR_ANY;
        }
        self.dirs.insert(dir.to_path_buf());
        if depth >= MAX_DEPTH {
            return;
        }
        let Ok(entries) = fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten().take(MAX_DIR_ENTRIES) {
            let p = entry.path();
            match entry.file_type() {
                Ok(t) if t.is_dir() => self.add_dir(&p, depth + 1),
                Ok(_) => {
                    if let Ok(meta) = fs::metadata(&p) {
                        self.inodes.entry(inode_key(&meta)).or_insert(watch::FILE);
                    }
                }
                Err(_) => {}
            }
        }
    }

    fn add_name(&mut self, path: &Path) {
        if let Some(name) = path.file_name() {
            self.names.insert(name.as_bytes().to_vec());
        }
    }

    /// Pushes the set into the kernel maps (only the differences are written).
    pub fn apply(&self, probes: &mut Probes) -> anyhow::Result<()> {
        probes.set_names(&self.names)?;
        probes.set_ancestor_names(&crate::ancestors::kernel_names(self))?;
        probes.set_inodes(&self.inodes)
    }

    /// The exact match behind the kernel's prefilter: is this resolved path one we watch,
    /// inside a watched directory, or an ancestor of either (a rename of a parent)?
    pub fn matches(&self, path: &Path) -> bool {
        let path = normalize(path);
        self.files.contains(&path)
            || self
                .dirs
                .iter()
                .any(|d| path.starts_with(d) || d.starts_with(&path))
            || self.files.iter().any(|f| f.starts_with(&path))
            || self.ancestor_paths.contains(&path)
    }

    /// Is this inode one of ours (for events matched by inode, whatever the name used)?
    pub fn has_inode(&self, dev: u32, ino: u64) -> bool {
        self.inodes.contains_key(&InodeKey { dev, _pad: 0, ino })
    }
}

/// Lexical normalization: removes `.` and resolves `..` without touching the filesystem.
pub fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other.as_os_str()),
        }
    }
    out
}

/// Resolves a path a process gave to a syscall: absolute as is, relative against the
/// process's cwd (`dirfd == AT_FDCWD`) or against `dirfd`. Best effort: the process may be
/// gone by now (then `None`).
pub fn resolve(tgid: u32, dirfd: i32, path: &Path) -> Option<PathBuf> {
    if path.as_os_str().is_empty() {
        return None;
    }
    if path.is_absolute() {
        return Some(normalize(path));
    }
    let base = if dirfd == libc::AT_FDCWD {
        fs::read_link(format!("/proc/{tgid}/cwd")).ok()?
    } else {
        fs::read_link(format!("/proc/{tgid}/fd/{dirfd}")).ok()?
    };
    Some(normalize(&base.join(path)))
}

/// For a path the kernel cut to its buffer (`path_truncated`): `head` is the first bytes of
/// the path the process gave. Relative heads are taken against the process's cwd or `dirfd`
/// (not normalized: a cut component cannot be). Relevant when the head could continue into
/// a watched path (it is a byte prefix of one), or when it is already inside a watched
/// directory; and whenever the head cannot be placed (the process is gone) or holds `.`/`..`
/// components, which make a byte comparison meaningless.
pub fn truncated_matches(set: &WatchSet, tgid: u32, dirfd: i32, head: &Path) -> bool {
    let full = if head.is_absolute() {
        head.to_path_buf()
    } else {
        let base = if dirfd == libc::AT_FDCWD {
            fs::read_link(format!("/proc/{tgid}/cwd"))
        } else {
            fs::read_link(format!("/proc/{tgid}/fd/{dirfd}"))
        };
        match base {
            Ok(b) => b.join(head),
            Err(_) => return true,
        }
    };
    if full
        .components()
        .any(|c| matches!(c, Component::CurDir | Component::ParentDir))
    {
        return true;
    }
    let h = full.as_os_str().as_bytes();
    set.files
        .iter()
        .chain(set.dirs.iter())
        .any(|w| w.as_os_str().as_bytes().starts_with(h))
        || set.dirs.iter().any(|d| full.starts_with(d))
}

/// For a name-matched path that could not be resolved: does its basename belong to the set?
pub fn name_matches(set: &WatchSet, path: &Path) -> bool {
    path.file_name()
        .map(|n| set.names.contains(n.as_bytes()) || n.as_bytes().ends_with(b".conf"))
        .unwrap_or(false)
        || path.as_os_str() == OsStr::new("")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes() {
        assert_eq!(normalize(Path::new("/a/./b/../c")), PathBuf::from("/a/c"));
        assert_eq!(normalize(Path::new("/../a")), PathBuf::from("/a"));
    }

    #[test]
    fn watches_files_dirs_and_symlinks() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path().join("conf.d");
        fs::create_dir_all(d.join("sub")).unwrap();
        fs::write(d.join("sub/10.conf"), "x").unwrap();
        let real = t.path().join("real.yaml");
        fs::write(&real, "x").unwrap();
        let link = t.path().join("config.yaml");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let mut w = WatchSet::new();
        w.add(&link);
        w.add(&d);
        w.add(&t.path().join("missing.env"));
        assert!(w.names.contains(b"config.yaml".as_slice()));
        assert!(w.names.contains(b"real.yaml".as_slice()));
        assert!(w.names.contains(b"missing.env".as_slice()));
        assert!(w.matches(&real));
        assert!(w.matches(&d.join("sub/new.conf")));
        assert!(w.matches(t.path()), "renaming a parent moves the files");
        assert!(!w.matches(&t.path().join("other")));
        let meta = fs::metadata(&real).unwrap();
        let k = inode_key(&meta);
        assert!(w.has_inode(k.dev, k.ino));
        let dk = inode_key(&fs::metadata(d.join("sub")).unwrap());
        assert_eq!(w.inodes[&dk] & watch::DIR_ANY, watch::DIR_ANY);
    }

    #[test]
    fn truncated_heads() {
        let t = tempfile::tempdir().unwrap();
        let deep = t.path().join("a".repeat(100)).join("b".repeat(100));
        let conf = deep.join("var/lib/kubelet/config.yaml");
        fs::create_dir(t.path().join("conf.d")).unwrap();
        let mut w = WatchSet::new();
        w.add(&conf);
        w.add(&t.path().join("conf.d"));
        let me = std::process::id();
        let cut =
            |p: &Path, n: usize| PathBuf::from(OsStr::from_bytes(&p.as_os_str().as_bytes()[..n]));
        // The head of the watched path, cut mid-component.
        assert!(truncated_matches(&w, me, libc::AT_FDCWD, &cut(&conf, 150)));
        // The head of another path under the same parent.
        let other = deep.join("var/lib/other/config.yaml");
        assert!(!truncated_matches(
            &w,
            me,
            libc::AT_FDCWD,
            &cut(&other, other.as_os_str().len() - 5)
        ));
        assert!(!truncated_matches(
            &w,
            me,
            libc::AT_FDCWD,
            Path::new("/usr/share/x")
        ));
        // Inside a watched directory.
        assert!(truncated_matches(
            &w,
            me,
            libc::AT_FDCWD,
            &t.path().join("conf.d/x".to_owned() + &"y".repeat(300))
        ));
        // Dots: cannot compare bytes.
        assert!(truncated_matches(
            &w,
            me,
            libc::AT_FDCWD,
            Path::new("/usr/../tmp/x")
        ));
    }
}

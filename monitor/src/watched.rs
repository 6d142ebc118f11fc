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

use monitor_common::{EntryKey, InodeKey, NAME_LEN, name_bits, name_hash, watch};

use crate::probes::{Probes, inode_key};

pub mod parts;

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
    // snaps (MicroK8s, the kubelet snap): flag files, kubelite's own args (its
    // --kubelet-args-file), the unit
    "/var/snap/microk8s/current/args/kubelet",
    "/var/snap/microk8s/current/args/kubelite",
    "/var/snap/kubelet/current/args",
    "/etc/systemd/system/snap.microk8s.daemon-kubelite.service",
    // k3s and RKE2 (`super::kubelet::distro::rancher`): config files and their drop-in
    // directories, the managed kubelet drop-ins, the units and their env files
    "/etc/rancher/k3s/config.yaml",
    "/etc/rancher/k3s/config.yaml.d",
    "/etc/rancher/rke2/config.yaml",
    "/etc/rancher/rke2/config.yaml.d",
    "/var/lib/rancher/rke2/agent/etc/kubelet.conf.d",
    "/var/lib/rancher/k3s/agent/etc/kubelet.conf.d",
    "/etc/systemd/system/k3s.service",
    "/etc/systemd/system/k3s.service.d",
    "/etc/systemd/system/k3s.service.env",
    "/etc/systemd/system/k3s-agent.service",
    "/etc/systemd/system/k3s-agent.service.d",
    "/etc/systemd/system/k3s-agent.service.env",
    "/etc/systemd/system/rke2-server.service",
    "/etc/systemd/system/rke2-agent.service",
    "/usr/local/lib/systemd/system/rke2-server.service",
    "/usr/local/lib/systemd/system/rke2-agent.service",
    "/usr/lib/systemd/system/rke2-server.service",
    "/usr/lib/systemd/system/rke2-agent.service",
    "/etc/default/k3s",
    "/etc/default/k3s-agent",
    "/etc/sysconfig/k3s",
    "/etc/sysconfig/k3s-agent",
    "/etc/default/rke2-server",
    "/etc/default/rke2-agent",
    "/etc/sysconfig/rke2-server",
    "/etc/sysconfig/rke2-agent",
    "/usr/local/lib/systemd/system/rke2-server.env",
    "/usr/local/lib/systemd/system/rke2-agent.env",
    // OpenShift / RHCOS (the Machine Config Operator's renderings)
    "/etc/kubernetes/kubelet.conf",
    "/etc/openshift/kubelet.conf.d",
    "/etc/kubernetes/kubelet-env",
    "/etc/node-sizing.env",
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
/// Names that reopen another file (symlinks to `/proc/self/fd/N`): an open through them is
/// decided by the file it reaches (the kernel walks it), like `/proc/*/fd/N` itself.
const REOPEN_NAMES: &[&str] = &["stdin", "stdout", "stderr"];

/// What the kernel programs watch (see the maps in `monitor-ebpf/src/main.rs`): an input file
/// by inode, a looked-for name by (directory inode, name), a listed directory by inode, and
/// basenames for the decision at sys_enter. Only regular files and directories are watched by
/// inode: never a device, FIFO or socket, and a symlink only as a name (a unit masked by a
/// link to /dev/null is a name to watch, not /dev/null).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WatchSet {
    /// Watched files and names (as given, and symlink targets that are regular files).
    pub files: BTreeSet<PathBuf>,
    /// Listed (drop-in) directories, recursively.
    pub dirs: BTreeSet<PathBuf>,
    /// Basenames → `name_bits::*`, for the kernel's decisions on paths.
    pub names: BTreeMap<Vec<u8>, u8>,
    /// Inodes for the kernel's open/ftruncate match (`watch::*` bits).
    pub inodes: BTreeMap<InodeKey, u32>,
    /// Names looked for, by directory inode.
    pub entries: BTreeSet<EntryKey>,
    /// A name cannot decide (a watched file has another hard link, or a watched name is too
    /// long for the kernel's scan): every write-intent open is walked.
    pub walk_all: bool,
    /// Names and paths of the directories on the inputs' paths (see `crate::ancestors`).
    pub ancestor_names: BTreeSet<Vec<u8>>,
    pub ancestor_paths: BTreeSet<PathBuf>,
    /// Watched paths that lead elsewhere: a symlink, a path through a symlinked directory,
    /// an entry of a listed directory that is a symlink. Only these can name an input under
    /// another path (see `daemon::naming::Read::of`), and a change far from their own path
    /// (the link's target) can change what they add to the set (see [`parts`]).
    pub linked: BTreeSet<PathBuf>,
    /// realpath(3) of the paths looked at while this set is built (see [`Canonical`]).
    canonical: Canonical,
}

/// `fs::canonicalize`, each path once per watch-set build. A build resolves every ancestor of
/// every input and default location (~100 paths, most missing), and realpath(3) reads the
/// link of every component: without this, one build on an exec or a rename made ~5 000
/// readlink calls (~15 ms, on the path to the report). Not part of the set's value: sets
/// compare, clone and print without it (a clone starts with nothing kept).
#[derive(Default)]
pub struct Canonical(
    std::cell::RefCell<BTreeMap<PathBuf, Option<PathBuf>>>,
    /// `fs::metadata` and `fs::symlink_metadata` of the directories names are looked for in
    /// (the same few parents for most names), and of each component resolved.
    std::cell::RefCell<BTreeMap<(PathBuf, bool), Option<fs::Metadata>>>,
);

impl Canonical {
    /// `fs::metadata` (`follow`) or `fs::symlink_metadata` of a path, remembered for the
    /// rest of this build.
    fn dir_meta(&self, path: &Path, follow: bool) -> Option<fs::Metadata> {
        let key = (path.to_path_buf(), follow);
        if let Some(m) = self.1.borrow().get(&key) {
            return m.clone();
        }
        let m = if follow {
            fs::metadata(path)
        } else {
            fs::symlink_metadata(path)
        }
        .ok();
        self.1.borrow_mut().insert(key, m.clone());
        m
    }

    /// `fs::canonicalize(path).ok()`, remembered for the rest of this build. An absolute
    /// path of plain components is resolved from its parent's result and one lstat of its
    /// last component (realpath(3)'s own walk, sharing the parents); a symlink, or any other
    /// path, goes to `fs::canonicalize` itself.
    pub fn of(&self, path: &Path) -> Option<PathBuf> {
        if let Some(r) = self.0.borrow().get(path) {
            return r.clone();
        }
        let r = self.resolve(path);
        self.0.borrow_mut().insert(path.to_path_buf(), r.clone());
        r
    }

    fn resolve(&self, path: &Path) -> Option<PathBuf> {
        use std::path::Component;
        let plain = path.is_absolute()
            && path
                .components()
                .skip(1)
                .all(|c| matches!(c, Component::Normal(_)));
        let (Some(parent), Some(name), true) = (path.parent(), path.file_name(), plain) else {
            return fs::canonicalize(path).ok();
        };
        let here = self.of(parent)?.join(name);
        let m = self.dir_meta(&here, false)?;
        if m.file_type().is_symlink() {
            return fs::canonicalize(&here).ok();
        }
        Some(here)
    }
}

impl Clone for Canonical {
    fn clone(&self) -> Canonical {
        Canonical::default()
    }
}

impl PartialEq for Canonical {
    fn eq(&self, _: &Canonical) -> bool {
        true
    }
}

impl Eq for Canonical {}

impl std::fmt::Debug for Canonical {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Canonical")
    }
}

impl WatchSet {
    pub fn new() -> WatchSet {
        let mut w = WatchSet::default();
        for n in REOPEN_NAMES {
            w.names.insert(n.as_bytes().to_vec(), name_bits::REOPEN);
        }
        w
    }

    /// Watches `path`: a file (or a name that may appear) or a directory that is listed
    /// (recursively). A symlink is watched as a name, and its target too when that is a
    /// regular file or a directory. Unit search directories are not listed: only the names
    /// systemd looks for there count, and the evaluation names those as inputs.
    pub fn add(&mut self, path: &Path) {
        let path = normalize(path);
        // Every directory on the input's path: a rename, unlink or mount of one of them is a
        // change of the input (see `crate::ancestors`).
        let is_dir = fs::metadata(&path).map(|m| m.is_dir()).unwrap_or(false);
        crate::ancestors::add(
            &mut self.ancestor_names,
            &mut self.ancestor_paths,
            &path,
            is_dir,
            &self.canonical,
        );
        if crate::ancestors::resolved(&path, &self.canonical).is_some_and(|r| r != path) {
            self.linked.insert(path.clone());
        }
        let Ok(meta) = fs::symlink_metadata(&path) else {
            // Missing: a name that may appear.
            self.add_entry(&path);
            self.files.insert(path);
            return;
        };
        let ft = meta.file_type();
        if ft.is_dir() {
            if is_unit_dir(&path) {
                self.add_entry(&path);
                return;
            }
            self.add_entry(&path);
            self.add_dir(&path, 0);
        } else if ft.is_file() {
            self.add_file(&path, &meta);
        } else {
            self.add_entry(&path);
            self.files.insert(path.clone());
            if ft.is_symlink() {
                self.linked.insert(path.clone());
            }
            if ft.is_symlink()
                && let Some(target) = self.canonical.of(&path)
                && let Ok(tm) = fs::metadata(&target)
            {
                if tm.is_file() {
                    self.add_file(&target, &tm);
                } else if tm.is_dir() && !is_unit_dir(&target) {
                    self.add_entry(&target);
                    self.add_dir(&target, 0);
                }
                // Anything else (a device: a masked unit's /dev/null) is not watched.
            }
        }
    }

    /// A regular file an evaluation read: by inode, and as a name in its directory.
    fn add_file(&mut self, path: &Path, meta: &fs::Metadata) {
        use std::os::unix::fs::MetadataExt;
        self.inodes.entry(inode_key(meta)).or_insert(0);
        *self.inodes.get_mut(&inode_key(meta)).unwrap() |= watch::FILE;
        if meta.nlink() > 1 {
            self.walk_all = true;
        }
        self.add_entry(path);
        if let Some(n) = path.file_name() {
            self.add_name(n.as_bytes(), name_bits::FILE);
        }
        self.files.insert(path.to_path_buf());
    }

    /// `path`'s name, looked for in its directory (lexical and resolved). When the directory
    /// itself is missing, its name is looked for in its own parent, and so on up to the
    /// nearest existing directory: a `mkdir -p` that creates the path is seen, and the watch
    /// set follows it down.
    fn add_entry(&mut self, path: &Path) {
        let Some(name) = path.file_name() else {
            return;
        };
        let name = name.as_bytes();
        self.add_name(name, name_bits::ENTRY);
        let Some(parent) = path.parent() else {
            return;
        };
        for dir in [Some(parent.to_path_buf()), self.canonical.of(parent)]
            .into_iter()
            .flatten()
        {
            if let Some(pn) = dir.file_name() {
                self.add_name(pn.as_bytes(), name_bits::PARENT);
            }
            if let Some(m) = self.canonical.dir_meta(&dir, true)
                && m.is_dir()
            {
                let k = inode_key(&m);
                *self.inodes.entry(k).or_insert(0) |= watch::DIR_NAMED;
                self.entries.insert(EntryKey {
                    dev: k.dev,
                    _pad: 0,
                    ino: k.ino,
                    name: name_hash(name),
                });
            }
        }
        if parent.parent().is_some() && self.canonical.dir_meta(parent, false).is_none() {
            self.add_entry(parent);
        }
    }

    fn add_name(&mut self, name: &[u8], bits: u8) {
        if name.len() >= NAME_LEN {
            // The kernel's basename scan stops at NAME_LEN bytes: only the walk can see it.
            self.walk_all = true;
        }
        *self.names.entry(name.to_vec()).or_insert(0) |= bits;
    }

    fn add_dir(&mut self, dir: &Path, depth: usize) {
        if let Some(n) = dir.file_name() {
            self.add_name(n.as_bytes(), name_bits::LISTED);
        }
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
            if entry.file_type().is_ok_and(|t| t.is_symlink()) {
                self.linked.insert(p.clone());
            }
            // Followed, as the kubelet and systemd follow them; only regular files and
            // directories are watched.
            match fs::metadata(&p) {
                // A symlink to a directory is not walked (a loop could).
                Ok(m) if m.is_dir() && entry.file_type().is_ok_and(|t| t.is_dir()) => {
                    self.add_dir(&p, depth + 1);
                }
                Ok(m) if m.is_file() => {
                    use std::os::unix::fs::MetadataExt;
                    *self.inodes.entry(inode_key(&m)).or_insert(0) |= watch::FILE;
                    if m.nlink() > 1 {
                        self.walk_all = true;
                    }
                }
                _ => {}
            }
        }
    }

    /// Adds everything `other` watches (a union: the same set as adding its paths here).
    pub fn merge(&mut self, other: &WatchSet) {
        self.files.extend(other.files.iter().cloned());
        self.dirs.extend(other.dirs.iter().cloned());
        for (n, b) in &other.names {
            match self.names.get_mut(n) {
                Some(v) => *v |= *b,
                None => {
                    self.names.insert(n.clone(), *b);
                }
            }
        }
        for (k, b) in &other.inodes {
            *self.inodes.entry(*k).or_insert(0) |= *b;
        }
        self.entries.extend(other.entries.iter().copied());
        self.walk_all |= other.walk_all;
        self.ancestor_names
            .extend(other.ancestor_names.iter().cloned());
        self.ancestor_paths
            .extend(other.ancestor_paths.iter().cloned());
        self.linked.extend(other.linked.iter().cloned());
    }

    /// Pushes the set into the kernel maps (only the differences are written). The mode goes
    /// first when it widens and last when it narrows, so that no open falls between.
    pub fn apply(&self, probes: &mut Probes) -> anyhow::Result<()> {
        if self.walk_all {
            probes.set_walk_all(true)?;
        }
        probes.set_names(&self.names)?;
        probes.set_entries(&self.entries)?;
        probes.set_inodes(&self.inodes)?;
        probes.set_ancestor_names(&crate::ancestors::kernel_names(self))?;
        if !self.walk_all {
            probes.set_walk_all(false)?;
        }
        Ok(())
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

/// Is `dir` one of systemd's unit search directories (under any host root)? Those are not
/// listed: only the unit names and drop-in directories systemd consults there count.
fn is_unit_dir(dir: &Path) -> bool {
    crate::kubelet::unit::UNIT_PATH.iter().any(|u| {
        let u = Path::new(u.trim_start_matches('/'));
        dir.ends_with(u)
    })
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
        .map(|n| {
            set.names
                .get(n.as_bytes())
                .is_some_and(|b| b & (name_bits::ENTRY | name_bits::LISTED) != 0)
                || n.as_bytes().ends_with(b".conf")
        })
        .unwrap_or(false)
        || path.as_os_str() == OsStr::new("")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The build's resolution is realpath(3)'s: the same answer as `fs::canonicalize` for
    /// plain paths, through symlinked directories and files, relative links, links to
    /// missing targets, missing components, and the root.
    #[test]
    fn canonical_agrees_with_realpath() {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        std::fs::create_dir_all(r.join("real/kubernetes")).unwrap();
        std::fs::write(r.join("real/kubernetes/kubelet.conf"), "x").unwrap();
        std::os::unix::fs::symlink(r.join("real"), r.join("etc")).unwrap();
        std::os::unix::fs::symlink("kubernetes", r.join("real/k8s")).unwrap();
        std::os::unix::fs::symlink("kubelet.conf", r.join("real/kubernetes/link.conf")).unwrap();
        std::os::unix::fs::symlink("nowhere", r.join("real/dangling")).unwrap();
        std::os::unix::fs::symlink("/", r.join("real/up")).unwrap();
        let paths = [
            "/".into(),
            r.to_path_buf(),
            r.join("etc"),
            r.join("etc/kubernetes/kubelet.conf"),
            r.join("etc/k8s/kubelet.conf"),
            r.join("etc/k8s/link.conf"),
            r.join("etc/dangling"),
            r.join("etc/dangling/x"),
            r.join("etc/missing/x/y"),
            r.join("etc/up/etc"),
            r.join("etc/kubernetes/kubelet.conf/below-a-file"),
            PathBuf::from("relative/path"),
        ];
        let c = Canonical::default();
        for p in &paths {
            // Twice: the second answer comes from what the first kept.
            for _ in 0..2 {
                assert_eq!(c.of(p), fs::canonicalize(p).ok(), "{}", p.display());
            }
        }
    }

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
        assert!(w.names.contains_key(b"config.yaml".as_slice()));
        assert!(w.names.contains_key(b"real.yaml".as_slice()));
        assert!(w.names.contains_key(b"missing.env".as_slice()));
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

    fn entry(dir: &Path, name: &str) -> EntryKey {
        let k = inode_key(&fs::metadata(dir).unwrap());
        EntryKey {
            dev: k.dev,
            _pad: 0,
            ino: k.ino,
            name: name_hash(name.as_bytes()),
        }
    }

    /// A masked unit (a link to /dev/null) is a name, /dev/null is not watched; a unit
    /// directory is not listed (its other units are not watched); a missing path is looked
    /// for up to its nearest existing ancestor; a hard-linked input makes every open walked.
    #[test]
    fn only_the_inputs() {
        let t = tempfile::tempdir().unwrap();
        let units = t.path().join("etc/systemd/system");
        fs::create_dir_all(&units).unwrap();
        std::os::unix::fs::symlink("/dev/null", units.join("kubelet.service")).unwrap();
        fs::write(units.join("other.service"), "[Service]\n").unwrap();
        let mut w = WatchSet::new();
        w.add(&units.join("kubelet.service"));
        w.add(&units);
        w.add(&t.path().join("etc/kubernetes/kubelet/config.json"));
        let null = inode_key(&fs::metadata("/dev/null").unwrap());
        assert!(!w.inodes.contains_key(&null), "/dev/null watched");
        let other = inode_key(&fs::metadata(units.join("other.service")).unwrap());
        assert!(!w.inodes.contains_key(&other), "another unit watched");
        let ud = inode_key(&fs::metadata(&units).unwrap());
        assert_eq!(
            w.inodes[&ud],
            watch::DIR_NAMED,
            "the unit directory is listed"
        );
        assert!(w.entries.contains(&entry(&units, "kubelet.service")));
        assert_eq!(
            w.names[b"kubelet.service".as_slice()],
            name_bits::ENTRY,
            "not a file"
        );
        assert!(w.names[b"system".as_slice()] & name_bits::PARENT != 0);
        assert!(!w.dirs.contains(&units));
        // etc/kubernetes is missing: "kubernetes" is looked for in etc.
        assert!(
            w.entries
                .contains(&entry(&t.path().join("etc"), "kubernetes"))
        );
        assert!(w.names[b"kubelet".as_slice()] & name_bits::PARENT != 0);
        assert!(!w.walk_all);
        // A hard link: names cannot decide.
        let cfg = t.path().join("config.yaml");
        fs::write(&cfg, "a: 1\n").unwrap();
        fs::hard_link(&cfg, t.path().join("alias")).unwrap();
        w.add(&cfg);
        assert!(w.walk_all);
        assert_eq!(
            w.inodes[&inode_key(&fs::metadata(&cfg).unwrap())],
            watch::FILE
        );
    }

    #[test]
    fn name_hash_is_over_reversed_bytes() {
        // The kernel scans a basename back from the path's end: the same hash both ways.
        let mut h = monitor_common::FNV_OFFSET;
        for b in b"config.yaml".iter().rev() {
            h ^= *b as u64;
            h = h.wrapping_mul(monitor_common::FNV_PRIME);
        }
        assert_eq!(name_hash(b"config.yaml"), h);
        assert_ne!(name_hash(b"config.yaml"), name_hash(b"config.yml"));
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

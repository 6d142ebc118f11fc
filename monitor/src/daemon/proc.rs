//! What classification and scheduling ask of /proc, behind a trait: the live procfs in the
//! daemon, a fake in the unit tests that replay recorded records.

use std::path::{Path, PathBuf};

use super::schedule::FdStamp;
use crate::{
    attribution,
    decode::KernelActor,
    report::Actor,
    watched::{self, WatchSet},
};

pub trait ProcView {
    /// A path a process gave, resolved against its cwd or `dirfd` (see [`watched::resolve`]).
    fn resolve(&self, tgid: u32, dirfd: i32, path: &Path) -> Option<PathBuf>;
    /// A cut path that may continue into a watched one (see [`watched::truncated_matches`]).
    fn truncated_matches(&self, set: &WatchSet, tgid: u32, dirfd: i32, head: &Path) -> bool;
    /// The report's actor for a kernel event's actor.
    fn actor(&self, a: &KernelActor) -> Actor;
    /// Another fd of process `tgid` (not `closed`) open on the same file, if any.
    fn other_fd_on(&self, tgid: u32, closed: i32, dev: u32, ino: u64) -> Option<i32>;
    /// The stamp of the file a process's fd refers to; `None` when the fd or process is gone.
    fn fd_stamp(&self, tgid: u32, fd: i32) -> Option<FdStamp>;
    /// A regular file's (dev, ino) now (`None` for anything else: a device, a FIFO, a
    /// missing file).
    fn file_inode(&self, path: &Path) -> Option<(u32, u64)>;
    /// `path` through its directory's real path, when that differs (`/proc/<pid>/root/...`
    /// of a kubelet in the host's root, a symlinked directory).
    fn real_path(&self, path: &Path) -> Option<PathBuf>;
    /// What a symlink at `path` leads to (the file itself for anything else).
    fn target(&self, path: &Path) -> Option<PathBuf>;
    /// [`ProcView::target`] of each of `targets` and [`ProcView::real_path`] of each of
    /// `real`, in order. The live procfs resolves each directory once for all of them (see
    /// [`Resolver`]).
    fn resolve_many(&self, targets: &[PathBuf], real: &[&Path]) -> Resolved {
        (
            targets.iter().map(|p| self.target(p)).collect(),
            real.iter().map(|p| self.real_path(p)).collect(),
        )
    }
}

/// What [`ProcView::resolve_many`] found: the targets, then the real paths.
pub type Resolved = (Vec<Option<PathBuf>>, Vec<Option<PathBuf>>);

/// The host's procfs.
pub struct LiveProc;

impl ProcView for LiveProc {
    fn resolve(&self, tgid: u32, dirfd: i32, path: &Path) -> Option<PathBuf> {
        watched::resolve(tgid, dirfd, path)
    }

    fn truncated_matches(&self, set: &WatchSet, tgid: u32, dirfd: i32, head: &Path) -> bool {
        watched::truncated_matches(set, tgid, dirfd, head)
    }

    fn actor(&self, a: &KernelActor) -> Actor {
        attribution::actor(a)
    }

    fn other_fd_on(&self, tgid: u32, closed: i32, dev: u32, ino: u64) -> Option<i32> {
        fd_on(tgid, closed, monitor_common::InodeKey { dev, _pad: 0, ino })
    }

    fn fd_stamp(&self, tgid: u32, fd: i32) -> Option<FdStamp> {
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::metadata(format!("/proc/{tgid}/fd/{fd}")).ok()?;
        Some((
            m.dev(),
            m.ino(),
            m.mtime(),
            m.mtime_nsec(),
            m.ctime(),
            m.ctime_nsec(),
            m.size(),
        ))
    }

    fn file_inode(&self, path: &Path) -> Option<(u32, u64)> {
        let m = std::fs::metadata(path).ok().filter(|m| m.is_file())?;
        let k = crate::probes::inode_key(&m);
        Some((k.dev, k.ino))
    }

    fn target(&self, path: &Path) -> Option<PathBuf> {
        std::fs::canonicalize(path).ok()
    }

    fn resolve_many(&self, targets: &[PathBuf], real: &[&Path]) -> Resolved {
        let mut r = Resolver::default();
        (
            targets.iter().map(|p| r.real(p)).collect(),
            real.iter().map(|p| r.real_path(p)).collect(),
        )
    }

    fn real_path(&self, path: &Path) -> Option<PathBuf> {
        let dir = std::fs::canonicalize(path.parent()?).ok()?;
        let real = dir.join(path.file_name()?);
        (real != path).then_some(real)
    }
}

/// An fd of process `tgid` other than `closed` open on the file `want`, by a scan of
/// `/proc/<tgid>/fd` at the close of every write in flight (a shell's `> file` dup2s its fd
/// to 1 and closes the original before writing). Each fd is stat'ed relative to the listed
/// directory (`fstatat` follows its link to the file), not through its full path: a path
/// lookup of `/proc/<tgid>/fd/<n>` walked /proc and the pid's directory again for each fd.
fn fd_on(tgid: u32, closed: i32, want: monitor_common::InodeKey) -> Option<i32> {
    let path = std::ffi::CString::new(format!("/proc/{tgid}/fd")).ok()?;
    // SAFETY: a NUL-terminated path; the stream is closed by the guard below.
    let dir = unsafe { libc::opendir(path.as_ptr()) };
    if dir.is_null() {
        return None;
    }
    struct Close(*mut libc::DIR);
    impl Drop for Close {
        fn drop(&mut self) {
            // SAFETY: opened above, closed once.
            unsafe { libc::closedir(self.0) };
        }
    }
    let dir = Close(dir);
    // SAFETY: a valid open stream.
    let dfd = unsafe { libc::dirfd(dir.0) };
    loop {
        // SAFETY: a valid open stream; the entry lives until the next readdir on it.
        let e = unsafe { libc::readdir64(dir.0) };
        if e.is_null() {
            return None;
        }
        // SAFETY: d_name is NUL-terminated within the entry readdir returned.
        let name = unsafe { std::ffi::CStr::from_ptr((*e).d_name.as_ptr()) };
        let Some(fd) = std::str::from_utf8(name.to_bytes())
            .ok()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue; // "." and ".."
        };
        if fd == closed {
            continue;
        }
        // SAFETY: zeroed is a valid `stat64`, which fstatat writes.
        let mut st: libc::stat64 = unsafe { std::mem::zeroed() };
        // SAFETY: a valid directory fd, a NUL-terminated name, a buffer of the right type.
        if unsafe { libc::fstatat64(dfd, name.as_ptr(), &mut st, 0) } != 0 {
            continue; // closed meanwhile
        }
        let (major, minor) = (libc::major(st.st_dev), libc::minor(st.st_dev));
        if (major << 20) | minor == want.dev && st.st_ino == want.ino {
            return Some(fd);
        }
    }
}

/// realpath(3) of many paths that share their directories (the watch set: ~100 paths in a
/// dozen directories). realpath reads the link of every component of every path (~700
/// readlink calls for the watch set, ~1 ms on the path to a report after a rename); here
/// each directory is resolved once, from its parent's resolution and one `lstat`, and each
/// path with one more `lstat`. Only a symlink is resolved by realpath itself. The result is
/// realpath's: a path whose real parent is `P` and whose last component is no symlink is
/// `P/name` when it exists; a symlink leads where realpath says; anything missing, or
/// under something that is not a directory, is `None`.
#[derive(Default)]
pub struct Resolver {
    dirs: std::collections::HashMap<PathBuf, Option<PathBuf>>,
}

impl Resolver {
    /// realpath(3) of `path` (absolute), or `None` when it does not resolve.
    pub fn real(&mut self, path: &Path) -> Option<PathBuf> {
        let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
            return std::fs::canonicalize(path).ok();
        };
        if !path.is_absolute() || name == ".." || name == "." {
            return std::fs::canonicalize(path).ok();
        }
        let dir = self.dir(parent)?;
        let joined = dir.join(name);
        match std::fs::symlink_metadata(&joined) {
            Ok(m) if m.file_type().is_symlink() => std::fs::canonicalize(&joined).ok(),
            Ok(_) => Some(joined),
            Err(_) => None,
        }
    }

    /// [`LiveProc::real_path`]: `path` through its directory's realpath(3), when that
    /// differs.
    pub fn real_path(&mut self, path: &Path) -> Option<PathBuf> {
        if !path.is_absolute() {
            return LiveProc.real_path(path);
        }
        let real = self.dir(path.parent()?)?.join(path.file_name()?);
        (real != path).then_some(real)
    }

    /// realpath(3) of `dir` (absolute), kept for the next paths; `None` when it does not
    /// resolve. (A name under something that is no directory fails its own `lstat`.)
    fn dir(&mut self, dir: &Path) -> Option<PathBuf> {
        if dir == Path::new("/") {
            return Some(dir.to_path_buf());
        }
        if let Some(r) = self.dirs.get(dir) {
            return r.clone();
        }
        let r = self.real(dir);
        self.dirs.insert(dir.to_path_buf(), r.clone());
        r
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;

    use super::*;

    /// Another fd on the same file is found, whether a dup (one open file) or a second open;
    /// the closed fd itself, fds on other files and a gone process are not.
    #[test]
    fn other_fds_on_a_file() {
        use std::os::fd::AsRawFd;
        let d = tempfile::tempdir().unwrap();
        let (a, b) = (d.path().join("a"), d.path().join("b"));
        std::fs::write(&a, "a").unwrap();
        std::fs::write(&b, "b").unwrap();
        let key = |p: &Path| {
            let k = crate::probes::inode_key_of(p).unwrap();
            (k.dev, k.ino)
        };
        let me = std::process::id();
        let f = std::fs::OpenOptions::new().append(true).open(&a).unwrap();
        let _other = std::fs::File::open(&b).unwrap();
        let fd = f.as_raw_fd();
        let (dev, ino) = key(&a);
        assert_eq!(LiveProc.other_fd_on(me, fd, dev, ino), None, "only itself");
        let dup = f.try_clone().unwrap();
        assert_eq!(
            LiveProc.other_fd_on(me, fd, dev, ino),
            Some(dup.as_raw_fd()),
            "a dup"
        );
        drop(dup);
        let again = std::fs::File::open(&a).unwrap();
        assert_eq!(
            LiveProc.other_fd_on(me, fd, dev, ino),
            Some(again.as_raw_fd()),
            "another open"
        );
        drop(again);
        assert_ne!(key(&b), (dev, ino));
        assert_eq!(LiveProc.other_fd_on(me, fd, dev, ino), None);
        assert_eq!(
            LiveProc.other_fd_on(u32::MAX, fd, dev, ino),
            None,
            "no process"
        );
    }

    /// The resolver says what realpath(3) says, for files, symlinks to files and to
    /// directories, symlinked directories, dangling and looping links, missing names, and a
    /// name under a regular file.
    #[test]
    fn resolver_agrees_with_realpath() {
        let d = tempfile::tempdir().unwrap();
        let root = std::fs::canonicalize(d.path()).unwrap();
        let p = |s: &str| root.join(s);
        std::fs::create_dir_all(p("etc/systemd/system/kubelet.service.d")).unwrap();
        std::fs::create_dir_all(p("lib/systemd/system")).unwrap();
        std::fs::create_dir_all(p("var/lib/kubelet")).unwrap();
        std::fs::write(p("lib/systemd/system/kubelet.service"), "x").unwrap();
        std::fs::write(p("var/lib/kubelet/config.yaml"), "x").unwrap();
        symlink(
            p("lib/systemd/system/kubelet.service"),
            p("etc/systemd/system/kubelet.service"),
        )
        .unwrap();
        symlink("/dev/null", p("etc/systemd/system/masked.service")).unwrap();
        symlink("../var/lib/kubelet", p("etc/kl")).unwrap();
        symlink("kl", p("etc/kl2")).unwrap();
        symlink("nowhere", p("etc/dangling")).unwrap();
        symlink("loop", p("etc/loop")).unwrap();
        let paths: Vec<PathBuf> = [
            "etc/systemd/system/kubelet.service",
            "etc/systemd/system/masked.service",
            "etc/systemd/system/kubelet.service.d",
            "etc/systemd/system/kubelet.service.d/10-kubeadm.conf",
            "etc/kl/config.yaml",
            "etc/kl2/config.yaml",
            "etc/kl2/missing.yaml",
            "etc/dangling",
            "etc/dangling/x",
            "etc/loop",
            "etc/loop/x",
            "var/lib/kubelet/config.yaml",
            "var/lib/kubelet/config.yaml/under-a-file",
            "var/lib/kubelet/../kubelet/config.yaml",
            "missing/dir/file",
            "",
        ]
        .iter()
        .map(|s| p(s))
        .chain([PathBuf::from("/"), PathBuf::from("/proc/self/exe")])
        .collect();
        let refs: Vec<&Path> = paths.iter().map(PathBuf::as_path).collect();
        let (targets, real) = LiveProc.resolve_many(&paths, &refs);
        for ((path, target), real) in paths.iter().zip(targets).zip(real) {
            assert_eq!(
                target,
                std::fs::canonicalize(path).ok(),
                "{}",
                path.display()
            );
            assert_eq!(real, LiveProc.real_path(path), "{}", path.display());
        }
    }
}

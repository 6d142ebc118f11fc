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
}

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
        let want = monitor_common::InodeKey { dev, _pad: 0, ino };
        std::fs::read_dir(format!("/proc/{tgid}/fd"))
            .ok()?
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
            .filter(|fd| *fd != closed)
            .find(|fd| {
                std::fs::metadata(format!("/proc/{tgid}/fd/{fd}"))
                    .is_ok_and(|m| crate::probes::inode_key(&m) == want)
            })
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

    fn real_path(&self, path: &Path) -> Option<PathBuf> {
        let dir = std::fs::canonicalize(path.parent()?).ok()?;
        let real = dir.join(path.file_name()?);
        (real != path).then_some(real)
    }
}

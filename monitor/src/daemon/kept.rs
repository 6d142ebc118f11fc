//! What the core keeps between evaluations, and which records make it forget: the
//! assembled unit in the [`RootFs`](crate::kubelet::rootfs::RootFs) (checked against every
//! lstat its reading made, so only changes a stat cannot show must forget it here), what
//! recent findings read as records may name it ([`naming::Read::of`]), and the node's
//! distribution as detected.

use std::path::PathBuf;

use super::{core::Core, naming};
use crate::{
    decode::Record,
    kubelet::{discovery::KubeletProcess, distro::Detection},
};

/// A finding's inputs and input directories, and what [`naming::Read::of`] found for them.
pub(super) type KeptRead = (Vec<PathBuf>, Vec<PathBuf>, naming::Read);

/// Whether a record may stand for a change that a file's stat does not show, so that the
/// results kept across evaluations are forgotten: a write through a shared mapping (mmap,
/// msync, munmap, a mapper's exit), io_uring requests, mounts, lost records. Writes through
/// an fd and path operations change the stats that kept results are checked against.
pub(super) fn forgets_kept(rec: &Record) -> bool {
    use crate::decode::{Event, FileOp};
    if rec.lost_before > 0 {
        return true;
    }
    match &rec.event {
        Event::File(f) => matches!(
            f.op,
            FileOp::MmapShared
                | FileOp::Msync
                | FileOp::Munmap
                | FileOp::MmapExit
                | FileOp::IoUring
                | FileOp::IoUringSubmit
                | FileOp::Mount
                | FileOp::Umount
        ),
        Event::Exec(_) | Event::Exit(_) => false,
    }
}

/// Whether a record leaves every name, link and path → inode mapping as it was, so that
/// what [`naming::Read::of`] found stays true: writes to a file's content (close, truncate,
/// a writer's exit), and opens that create nothing (no `O_CREAT`, or of an inode one of the
/// kept reads already found). Everything else (path operations, mounts, exec and exit,
/// mappings, io_uring, lost records) may have changed them.
pub(super) fn keeps_names(rec: &Record, reads: &[KeptRead]) -> bool {
    use crate::decode::{Event, FileOp};
    if rec.lost_before > 0 {
        return false;
    }
    let Event::File(f) = &rec.event else {
        return false;
    };
    match f.op {
        FileOp::Close | FileOp::Truncate | FileOp::Ftruncate | FileOp::WriterExit => true,
        FileOp::Open => {
            f.sys_flags & libc::O_CREAT as u64 == 0
                || reads
                    .iter()
                    .any(|(_, _, r)| r.inodes.iter().any(|(i, _)| *i == (f.dev, f.ino)))
        }
        _ => false,
    }
}

/// Where the [`RootFs`](crate::kubelet::rootfs::RootFs) keeps what the node's files say of
/// its distribution.
const DETECTION_FILES: &str = "daemon.detection_files";

impl Core {
    /// The node's distribution for `running` (kept: see [`Core::detection`]). What the files
    /// alone say (a few dozen `lstat`s of units and marker files, /etc/os-release read) is
    /// kept by the root with every `lstat` it made, as the assembled unit is: a path
    /// operation elsewhere (a rename over config.yaml) keeps it, a unit or marker that
    /// appears, goes or changes does not, whether watched or not.
    pub(super) fn distribution(&self, running: &[KubeletProcess]) -> Detection {
        let pids: Vec<u32> = running.iter().map(|p| p.pid).collect();
        let mut kept = self.detection.borrow_mut();
        match kept.as_ref() {
            Some((p, d)) if *p == pids => d.clone(),
            _ => {
                let snap = self.fs.snapshot();
                let mut files = snap.kept::<Option<Detection>>(DETECTION_FILES);
                let d = match files {
                    Some(_) => crate::kubelet::distro::detect_keeping(&snap, running, &mut files),
                    None => {
                        // Read on a snapshot of its own: its lstats are the detection's alone.
                        let snap = self.fs.snapshot();
                        let start = snap.keep_start();
                        let d = crate::kubelet::distro::detect_keeping(&snap, running, &mut files);
                        if let Some(f) = files {
                            snap.keep(DETECTION_FILES, f, start);
                        }
                        d
                    }
                };
                *kept = Some((pids, d.clone()));
                d
            }
        }
    }

    /// A record may have changed a name, a link or what a path leads to: what was kept of
    /// the names (naming's reads, the distribution's detection for these pids) is read again.
    pub(super) fn forget_names(&mut self) {
        self.reads.get_mut().clear();
        *self.detection.get_mut() = None;
    }
}

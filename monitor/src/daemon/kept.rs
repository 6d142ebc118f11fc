//! What the core keeps between evaluations, and which records make it forget: the
//! assembled unit in the [`RootFs`](crate::kubelet::rootfs::RootFs) (checked against every
//! lstat its reading made, so only changes a stat cannot show must forget it here), and what
//! recent findings read as records may name it ([`naming::Read::of`]).

use std::path::PathBuf;

use super::naming;
use crate::decode::Record;

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

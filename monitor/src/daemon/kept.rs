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
    watched::parts::Dirty,
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

/// Whether a record that may change names is told to the kept reads by its facts (the
/// paths its trigger names, see [`Core::names_changed_by`]): a path operation or an open, with
/// no records lost before it. Any other (exec, exit, mount, mapping, io_uring, lost records)
/// forgets every read.
pub(super) fn names_placed(rec: &Record) -> bool {
    use crate::decode::{Event, FileOp};
    rec.lost_before == 0
        && matches!(&rec.event, Event::File(f) if matches!(
            f.op,
            FileOp::Rename
                | FileOp::Unlink
                | FileOp::Symlink
                | FileOp::Mkdir
                | FileOp::Rmdir
                | FileOp::Link
                | FileOp::Open
        ))
}

/// Whether a path operation on `touched` (absolute, and through their directories' real
/// paths) leaves `read` of `inputs` and `dirs` true but for its inodes: it names no
/// directory on the path of an input, an input directory or an alias of one (which decide
/// the real paths [`naming::Read::of`] found), and there is no watched link (which decide its
/// aliases through their targets).
fn read_survives((inputs, dirs, read): &KeptRead, touched: &[PathBuf], links: bool) -> bool {
    let above = |p: &PathBuf| {
        inputs
            .iter()
            .chain(dirs)
            .chain(&read.files)
            .chain(&read.dirs)
            .any(|i| i != p && i.starts_with(p))
    };
    !links && !touched.iter().any(above)
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
    /// the names (naming's reads, the distribution's detection for these pids) is read again,
    /// but for the reads the records' paths cannot have changed (see [`Core::read_kept`]).
    pub(super) fn forget_names(&mut self) {
        let reads = std::mem::take(self.reads.get_mut());
        let (stale, _) = self.stale_reads.get_mut();
        stale.extend(reads);
        if stale.len() > 16 {
            self.names_changed(None);
        }
        *self.detection.get_mut() = None;
    }

    /// `rec` may have changed names: the reads are forgotten, and told which paths it may
    /// have changed when that is known now. Returns the record's own paths (`None`: not
    /// placed) when its facts are to tell them (a path operation or an open).
    pub(super) fn forget_names_for(&mut self, rec: &Record) -> Option<Option<Vec<PathBuf>>> {
        use crate::decode::Event;
        self.forget_names();
        if names_placed(rec) {
            return Some(self.record_paths(rec));
        }
        if matches!(rec.event, Event::Exec(_) | Event::Exit(_)) && rec.lost_before == 0 {
            // A process came or went: no file changed, but what a `/proc/<pid>/...` path
            // leads to may have.
            self.names_changed(Some(vec![PathBuf::from("/proc")]));
        } else {
            self.names_changed(None);
        }
        None
    }

    /// Paths (`None`: any) that records named since the stale reads were forgotten.
    pub(super) fn names_changed(&mut self, paths: Option<Vec<PathBuf>>) {
        let (stale, dirty) = self.stale_reads.get_mut();
        dirty.add(paths);
        if *dirty == Dirty::All || stale.is_empty() {
            stale.clear();
            *dirty = Dirty::Nothing;
        }
    }

    /// The paths of a path operation's record, resolved as classification resolves them
    /// (`None`: cut, or not resolvable any more). A symlink's first path is its target's text.
    pub(super) fn record_paths(&self, rec: &Record) -> Option<Vec<PathBuf>> {
        let crate::decode::Event::File(f) = &rec.event else {
            return None;
        };
        let mut out = Vec::with_capacity(2);
        if f.op != crate::decode::FileOp::Symlink {
            if f.path_truncated {
                return None;
            }
            out.push(self.proc.resolve(f.actor.tgid, f.dirfd, &f.path)?);
        }
        if let Some(p2) = &f.path2 {
            if f.path2_truncated {
                return None;
            }
            out.push(self.proc.resolve(f.actor.tgid, f.dirfd2, p2)?);
        }
        Some(out)
    }

    /// The paths a trigger's record may have created, removed or replaced, told to the
    /// stale reads.
    pub(super) fn names_changed_by(&mut self, t: &crate::report::Trigger) {
        if let crate::report::TriggerOp::File(op) = t.op
            && !self.stale_reads.get_mut().0.is_empty()
        {
            let paths = self.touched(t, op);
            self.names_changed(paths);
        }
    }

    /// A read of `f` forgotten since, that the paths records named cannot have changed, with
    /// its input files' inodes taken now (as [`naming::Read::of`] takes them).
    pub(super) fn read_kept(&self, f: &crate::finding::Finding) -> Option<naming::Read> {
        let mut guard = self.stale_reads.borrow_mut();
        let (stale, dirty) = &mut *guard;
        let at = stale
            .iter()
            .rposition(|(i, d, _)| *i == f.inputs && *d == f.input_dirs)?;
        let kept = stale.remove(at);
        let touched = match dirty {
            Dirty::Nothing => Some(Vec::new()),
            Dirty::Paths(p) => crate::watched::parts::candidates(p, &Default::default()),
            Dirty::All => None,
        };
        if stale.is_empty() {
            *dirty = Dirty::Nothing;
        }
        let survives =
            touched.is_some_and(|t| read_survives(&kept, &t, !self.watch.linked.is_empty()));
        tracing::trace!(survives, "naming's read kept");
        if !survives {
            return None;
        }
        let mut r = kept.2;
        r.inodes = f
            .inputs
            .iter()
            .filter_map(|i| Some((self.proc.file_inode(i)?, i.clone())))
            .collect();
        Some(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A read stays true but for its inodes after a path operation on an input itself or
    /// inside an input directory; not after one on a directory above an input, an input
    /// directory or an alias, nor while any watched path is a link.
    #[test]
    fn which_path_operations_a_read_survives() {
        let p = PathBuf::from;
        let read = naming::Read {
            files: vec![
                p("/n/var/lib/kubelet/config.yaml"),
                p("/real/kubelet/config.yaml"),
            ],
            dirs: vec![p("/n/etc/systemd/system/kubelet.service.d")],
            inodes: vec![],
        };
        let kept: KeptRead = (
            vec![p("/n/var/lib/kubelet/config.yaml")],
            vec![p("/n/etc/systemd/system/kubelet.service.d")],
            read,
        );
        let cases: &[(&str, bool, bool)] = &[
            ("/n/var/lib/kubelet/config.yaml", false, true),
            ("/n/var/lib/kubelet/.config.yaml.tmp", false, true),
            (
                "/n/etc/systemd/system/kubelet.service.d/20.conf",
                false,
                true,
            ),
            ("/n/etc/systemd/system/kubelet.service.d", false, true),
            ("/n/other/file", false, true),
            ("/n/var/lib/kubelet/config.yaml", true, false),
            ("/n/var/lib/kubelet", false, false),
            ("/n/var", false, false),
            ("/n", false, false),
            ("/n/etc/systemd/system", false, false),
            ("/real/kubelet", false, false),
            ("/real", false, false),
        ];
        for (touched, links, survives) in cases {
            assert_eq!(
                read_survives(&kept, &[p(touched)], *links),
                *survives,
                "{touched} (links: {links})"
            );
        }
        assert!(read_survives(&kept, &[], false));
    }
}

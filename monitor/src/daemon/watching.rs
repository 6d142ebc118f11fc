//! The watch set follows the evaluation: every input of every finding, the usual locations,
//! the kubelet binaries and extra paths, each kept as its own part (`crate::watched::parts`).
//! A path operation reads again only the parts it can have changed; an exec or an exit only
//! the paths it adds (its executable, its inputs); whatever cannot be placed reads all.

use std::path::{Path, PathBuf};

use anyhow::Result;

use super::core::{Core, Kernel, in_root};
use crate::{
    decode::FileOp,
    report::{Trigger, TriggerOp},
    watched::{self, parts::Dirty},
};

/// How long before a watch set's build links count as seen in it: a link's record is taken
/// at its syscall's entry, and the link made a little later; a process preempted in between
/// for longer than this is reported by the link's own record, which rebuilds the set.
const LINK_SETTLE: std::time::Duration = std::time::Duration::from_secs(1);

/// CLOCK_MONOTONIC in ns, the clock of `bpf_ktime_get_ns`.
fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes the timespec it is given, which lives on this stack.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

impl Core {
    /// Reads the whole watch set again. Returns whether it changed.
    pub fn refresh_watch(&mut self, kernel: &mut dyn Kernel) -> Result<bool> {
        self.refresh_watch_for(kernel, &Dirty::All)
    }

    /// The watch set for the current findings and kubelets, reading again the parts `dirty`
    /// may have changed and the paths not watched yet. Returns whether it changed.
    pub(super) fn refresh_watch_for(
        &mut self,
        kernel: &mut dyn Kernel,
        dirty: &Dirty,
    ) -> Result<bool> {
        // Before any stat: a link made after this may be missing from the set.
        let built_from = monotonic_ns().saturating_sub(LINK_SETTLE.as_nanos() as u64);
        // The usual locations in the root are made once (~100 joins and allocations on every
        // evaluation were a tenth of a content edit's); the findings' inputs are borrowed.
        self.rooted.refresh(&self.settings);
        let exes: Vec<PathBuf> = self
            .kubelets
            .running()
            .iter()
            .filter_map(|p| Some(in_root(&p.root, p.exe.as_ref()?)))
            .collect();
        let inputs = self
            .state
            .findings()
            .flat_map(|f| f.inputs.iter().chain(f.input_dirs.iter()));
        let paths =
            (self.rooted.paths.iter().chain(inputs).chain(exes.iter())).map(PathBuf::as_path);
        let (set, read) = self.parts.update(paths, dirty);
        // No part read or dropped: the union is the set made last time, which is ours.
        let set = set.filter(|s| **s != self.watch).cloned();
        self.note_watched_inputs();
        let changed = set.is_some();
        if let Some(set) = set {
            tracing::debug!(
                files = set.files.len(),
                dirs = set.dirs.len(),
                inodes = set.inodes.len(),
                names = set.names.len(),
                parts_read = read,
                "watch set updated"
            );
            if let Err(e) = kernel.apply_watch(&set) {
                // Made again next time, so that the kernel's maps are tried again.
                self.parts.forget_union();
                return Err(e);
            }
            if set.linked != self.watch.linked {
                // Naming's reads depend on the watched links (see `Core::read_of`).
                self.names_changed(None);
            }
            self.watch = set;
            self.forget_names();
        }
        // Changed or not, the set reflects every link made before `built_from` (a hard link's
        // st_nlink, a symlink's name): those need no walk of every open any more. Only a set
        // read whole says so of every link.
        if *dirty == Dirty::All {
            kernel.links_seen(built_from)?;
        }
        Ok(changed)
    }

    /// Whether the findings' inputs are those the watch set was last built with, in the same
    /// order (the findings are kept by key, each one's inputs in the order it read them): no
    /// allocation and no sort, on every evaluation. Another order of the same inputs only
    /// makes the caller look at the watch set again, which finds nothing to read.
    pub(super) fn inputs_unchanged(&self) -> bool {
        let mut kept = self.watched_inputs.iter();
        self.state
            .findings()
            .flat_map(|f| f.inputs.iter().chain(f.input_dirs.iter()))
            .all(|p| kept.next().is_some_and(|k| k.as_os_str() == p.as_os_str()))
            && kept.next().is_none()
    }

    /// Notes the findings' inputs as those the watch set was built with.
    fn note_watched_inputs(&mut self) {
        if self.inputs_unchanged() {
            return;
        }
        let v = &mut self.watched_inputs;
        v.clear();
        v.extend(
            self.state
                .findings()
                .flat_map(|f| f.inputs.iter().chain(f.input_dirs.iter()))
                .cloned(),
        );
    }

    /// What the triggers of an evaluation may have changed in the watch set. Lost records,
    /// a rescan or a baseline may hide any change: everything.
    pub(super) fn dirty_of(&self, triggers: &[Trigger]) -> Dirty {
        let mut d = Dirty::Nothing;
        if self.sched.losses_pending() {
            return Dirty::All;
        }
        for t in triggers {
            match t.op {
                TriggerOp::Exec | TriggerOp::Exit => {}
                TriggerOp::File(op) => d.add(self.touched(t, op)),
                _ => d.add(None),
            }
        }
        // Operations that named no path (content writes) changed no name: nothing, so that
        // a content edit's evaluation does not look at the watch set at all.
        match d {
            Dirty::Paths(p) if p.is_empty() => Dirty::Nothing,
            d => d,
        }
    }

    /// Whether an open's file is a watched inode: the kernel's, or the one its resolved path
    /// leads to now.
    fn opened_watched(&self, t: &Trigger) -> bool {
        let watched = |(dev, ino): (u32, u64)| self.watch.has_inode(dev, ino);
        t.inode.is_some_and(watched)
            || (!t.guessed && !t.cut)
                && t.path
                    .as_deref()
                    .and_then(|p| std::fs::metadata(p).ok())
                    .is_some_and(|m| {
                        let k = crate::probes::inode_key(&m);
                        watched((k.dev, k.ino))
                    })
    }

    /// The paths a file operation may have created, removed or replaced (empty: none), or
    /// `None` when they cannot be placed exactly.
    pub(super) fn touched(&self, t: &Trigger, op: FileOp) -> Option<Vec<PathBuf>> {
        let paths = match op {
            // Content, and mappings: no name changes.
            FileOp::Close
            | FileOp::Truncate
            | FileOp::Ftruncate
            | FileOp::WriterExit
            | FileOp::MmapShared
            | FileOp::Msync
            | FileOp::Munmap
            | FileOp::MmapExit => return Some(Vec::new()),
            // An open of a watched inode created nothing; another may have (O_CREAT). An
            // open never replaces a file: when the name (followed, as the open followed it)
            // leads to a watched inode now, that file was there before.
            FileOp::Open if self.opened_watched(t) => return Some(Vec::new()),
            // What the kernel cannot name, what changes every path below it, and a new hard
            // link (rare; a set read whole tells the kernel which links it has seen, see
            // `Kernel::links_seen`).
            FileOp::Mount
            | FileOp::Umount
            | FileOp::IoUring
            | FileOp::IoUringSubmit
            | FileOp::Link => {
                return None;
            }
            // A symlink's first path is its target as written: only the link's name is made.
            FileOp::Symlink => vec![t.path2.clone()?],
            _ => t.path.iter().chain(t.path2.iter()).cloned().collect(),
        };
        // A path taken on its name alone or cut, none at all, or given in a container's own
        // root (its absolute paths are not the host's): not placed.
        let in_container = t.actor.as_ref().is_some_and(|a| a.container_id.is_some());
        if t.guessed || t.cut || paths.is_empty() || in_container {
            return None;
        }
        Some(paths)
    }
}

/// The usual locations and the extra paths of the settings, in the root, as last made.
#[derive(Debug, Default)]
pub(super) struct Rooted {
    root: PathBuf,
    extra: Vec<PathBuf>,
    made: bool,
    pub(super) paths: Vec<PathBuf>,
}

impl Rooted {
    /// Made again only when the root or the extra paths differ from the last time.
    fn refresh(&mut self, settings: &crate::settings::Settings) {
        if self.made && self.root == settings.host_root && self.extra == settings.watch_extra {
            return;
        }
        let root = &settings.host_root;
        self.paths = watched::DEFAULT_PATHS
            .iter()
            .map(|p| in_root(root, Path::new(p)))
            .chain(settings.watch_extra.iter().map(|p| in_root(root, p)))
            .collect();
        self.root = root.clone();
        self.extra = settings.watch_extra.clone();
        self.made = true;
    }
}

//! The watch set kept as the union of each watched path's own part, so that a path operation
//! re-reads only the parts it can change instead of the world (~100 default locations of six
//! distributions and every ancestor of each: ~1 200 statx per rebuild).
//!
//! A part is what [`WatchSet::add`] of one path adds; the set is their union (every field is a
//! union or an OR of bits), so a set made of parts is the set one build of all the paths
//! gives. A part depends only on the names it holds: its files, its listed directories and
//! what lies under them, and every directory on its path (`ancestor_paths`). A path operation
//! on a path `p` (or on `p` through a symlinked directory, taken by its real path) can change
//! a part only when [`WatchSet::matches`] of that part says `p` is one of those. A part that
//! holds a link ([`WatchSet::linked`]: a symlink, a path through a symlinked directory, a
//! symlink in a listed directory) also depends on names far from its own (the link's target,
//! the directories the link's text walks), and so does a part whose file has another hard
//! link (removing that link, under any name, ends `walk_all`): such a part is read again at
//! every path operation. Whatever cannot be placed (a path the kernel cut or that could not be resolved,
//! a mount, io_uring, lost records, a rescan) reads every part again ([`Dirty::All`]).

use std::{
    collections::{HashMap, HashSet},
    os::unix::ffi::OsStrExt,
    path::{Path, PathBuf},
};

use self::{counted::Counted, index::Index};
use super::{Canonical, WatchSet, normalize};

mod counted;
mod index;

/// What changed since the parts were read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Dirty {
    /// No name: only the list of paths may differ.
    Nothing,
    /// Path operations on these paths (resolved, absolute).
    Paths(Vec<PathBuf>),
    /// Anything: every part is read again.
    All,
}

impl Dirty {
    /// Adds the paths of one more operation (`None`: it cannot be placed).
    pub fn add(&mut self, paths: Option<Vec<PathBuf>>) {
        match (paths, &mut *self) {
            (_, Dirty::All) => {}
            (None, _) => *self = Dirty::All,
            (Some(p), Dirty::Paths(v)) => v.extend(p),
            (Some(p), Dirty::Nothing) => *self = Dirty::Paths(p),
        }
    }
}

/// Each watched path's part, by path, their union, and which parts each path can change.
#[derive(Debug, Default)]
pub struct Parts {
    parts: HashMap<PathBuf, WatchSet>,
    /// The union of `parts`, kept up to date part by part.
    union: Counted,
    /// Which parts a path operation can change ([`WatchSet::matches`], by lookup).
    index: Index,
    /// The parts that names far from their own can change ([`far_reaching`]).
    far: HashSet<PathBuf>,
    /// The paths of the last update, as given and normalized: a content edit's update with
    /// the same paths returns at once (normalizing and looking up ~100 paths cost more than
    /// the evaluation).
    last_paths: Vec<PathBuf>,
    want: Vec<PathBuf>,
    /// Whether the next update hands out the union even if it did not change: none was
    /// made yet, or the last one was not applied ([`Parts::forget_union`]).
    resend: bool,
    made: bool,
}

impl Parts {
    /// The watch set of `paths`: the kept parts that `dirty` cannot have changed, the others
    /// read now. Returns the set and how many parts were read.
    pub fn build<'a>(
        &mut self,
        paths: impl IntoIterator<Item = &'a Path>,
        dirty: &Dirty,
    ) -> (WatchSet, usize) {
        let (_, read) = self.update(paths, dirty);
        (self.union.set().clone(), read)
    }

    /// The next [`Parts::update`] hands the union out even if it did not change (the last
    /// one was not applied).
    pub fn forget_union(&mut self) {
        self.resend = true;
    }

    /// As [`Parts::build`], but the set only when it may differ from the one last handed out
    /// (`None`: the union is the same).
    pub fn update<'a>(
        &mut self,
        paths: impl IntoIterator<Item = &'a Path>,
        dirty: &Dirty,
    ) -> (Option<&WatchSet>, usize) {
        let given: Vec<&Path> = paths.into_iter().collect();
        let same_paths = self.last_paths.len() == given.len()
            && self
                .last_paths
                .iter()
                .zip(&given)
                .all(|(a, b)| a.as_os_str() == b.as_os_str());
        let no_name = match dirty {
            Dirty::Nothing => true,
            Dirty::Paths(p) => p.is_empty(),
            Dirty::All => false,
        };
        if same_paths && no_name && self.made && !self.resend {
            return (None, 0);
        }
        if !same_paths {
            self.last_paths = given.iter().map(|p| p.to_path_buf()).collect();
            // Sorted and deduplicated by bytes: normalized paths are equal exactly when their
            // bytes are (a `Path`'s own order compares component by component: an exec or
            // an exit, which change the list, spent ~0.3 ms here).
            let mut want: Vec<PathBuf> = given.into_iter().map(normal).collect();
            want.sort_unstable_by(|a, b| a.as_os_str().as_bytes().cmp(b.as_os_str().as_bytes()));
            want.dedup_by(|a, b| a.as_os_str() == b.as_os_str());
            self.want = want;
        }
        let mut canonical = Canonical::default();
        let drop = self.to_drop(dirty, &canonical, !same_paths);
        // Parts read again are added before the old ones are removed: what both hold stays
        // in the union, untouched.
        let dropped: Vec<(PathBuf, WatchSet)> = drop
            .into_iter()
            .filter_map(|k| self.parts.remove_entry(&k))
            .collect();
        for (key, part) in &dropped {
            self.index.remove(key, part);
            self.far.remove(key);
        }
        let mut read = 0;
        for path in &self.want {
            if self.parts.contains_key(path) {
                continue;
            }
            let part = part_of(path, &mut canonical);
            self.union.add(&part);
            self.index.add(path, &part);
            if far_reaching(&part) {
                self.far.insert(path.clone());
            }
            self.parts.insert(path.clone(), part);
            read += 1;
        }
        for (_, part) in &dropped {
            self.union.remove(part);
        }
        let changed = self.union.take_changed() || self.resend || !self.made;
        self.made = true;
        self.resend = false;
        (changed.then(|| self.union.set()), read)
    }

    /// The kept parts that must be read again: those no longer wanted (only when the wanted
    /// paths changed: every update leaves a part for each wanted path and no other), and
    /// those `dirty` may have changed.
    fn to_drop(
        &self,
        dirty: &Dirty,
        canonical: &Canonical,
        want_changed: bool,
    ) -> HashSet<PathBuf> {
        let touched = match dirty {
            Dirty::Nothing => Some(Vec::new()),
            Dirty::Paths(p) => candidates(p, canonical),
            Dirty::All => None,
        };
        let Some(touched) = touched else {
            return self.parts.keys().cloned().collect();
        };
        let mut drop: HashSet<PathBuf> = if !want_changed {
            HashSet::new()
        } else {
            self.parts
                .keys()
                .filter(|k| {
                    self.want
                        .binary_search_by(|w| {
                            w.as_os_str().as_bytes().cmp(k.as_os_str().as_bytes())
                        })
                        .is_err()
                })
                .cloned()
                .collect()
        };
        if !touched.is_empty() {
            drop.extend(self.far.iter().cloned());
            for p in &touched {
                self.index.touched(p, &mut drop);
            }
        }
        drop
    }
}

/// [`normalize`], without building a new path when `p` is already normal (absolute, no `.`
/// or `..` component, no repeated or trailing '/'): nearly every watched path is.
fn normal(p: &Path) -> PathBuf {
    let b = p.as_os_str().as_bytes();
    let plain = b.first() == Some(&b'/')
        && (b.len() == 1 || b.last() != Some(&b'/'))
        && !b.windows(2).any(|w| w == b"//")
        && !b.split(|c| *c == b'/').any(|c| c == b"." || c == b"..");
    if plain { p.to_path_buf() } else { normalize(p) }
}

/// Whether names far from the part's own can change it: a link (its target, the directories
/// its text walks), or a watched file with another hard link (`walk_all`: the link's removal
/// elsewhere, under a name that is none of ours, ends it).
fn far_reaching(part: &WatchSet) -> bool {
    !part.linked.is_empty() || part.walk_all
}

/// What [`WatchSet::add`] of `path` alone adds, resolving with (and adding to) `canonical`.
fn part_of(path: &Path, canonical: &mut Canonical) -> WatchSet {
    let mut part = WatchSet::default();
    std::mem::swap(&mut part.canonical, canonical);
    part.add(path);
    std::mem::swap(&mut part.canonical, canonical);
    part
}

/// The paths an operation touched, as given and through their directory's real path (a
/// process may name a watched file through a symlinked directory). `None` when a directory
/// cannot be resolved any more (renamed or removed since): it cannot be placed.
pub fn candidates(paths: &[PathBuf], canonical: &Canonical) -> Option<Vec<PathBuf>> {
    let mut out = Vec::with_capacity(paths.len() * 2);
    for p in paths {
        let p = normalize(p);
        if !p.is_absolute() {
            return None;
        }
        if let (Some(dir), Some(name)) = (p.parent(), p.file_name()) {
            let real = canonical.of(dir)?.join(name);
            if real != p {
                out.push(real);
            }
        }
        out.push(p);
    }
    Some(out)
}

#[cfg(test)]
mod tests;

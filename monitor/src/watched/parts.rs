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
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
};

use super::{Canonical, WatchSet, normalize};

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

/// Each watched path's part, by path, and their union as last made.
#[derive(Debug, Default)]
pub struct Parts {
    parts: BTreeMap<PathBuf, WatchSet>,
    /// The union of `parts`, made again only when a part was read or dropped: merging ~100
    /// parts (path-keyed maps) cost ~2 ms, on every content edit's evaluation.
    union: Option<WatchSet>,
    /// The paths of the last update, as given: a content edit's update with the same paths
    /// returns at once (normalizing and looking up ~100 paths cost more than the evaluation).
    last_paths: Vec<PathBuf>,
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
        (self.union.clone().unwrap_or_default(), read)
    }

    /// The next [`Parts::update`] makes the union again (the last one was not applied).
    pub fn forget_union(&mut self) {
        self.union = None;
    }

    /// As [`Parts::build`], but the set only when it may differ from the one last made
    /// (`None`: no part was read or dropped, so the union is the same).
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
        if same_paths && no_name && self.union.is_some() {
            return (None, 0);
        }
        if !same_paths {
            self.last_paths = given.iter().map(|p| p.to_path_buf()).collect();
        }
        let mut canonical = Canonical::default();
        let want: BTreeSet<PathBuf> = given.into_iter().map(normalize).collect();
        let touched = match dirty {
            Dirty::Nothing => Some(Vec::new()),
            Dirty::Paths(p) => candidates(p, &canonical),
            Dirty::All => None,
        };
        let before = self.parts.len();
        match &touched {
            None => self.parts.clear(),
            Some(t) => self.parts.retain(|path, part| {
                want.contains(path)
                    && (t.is_empty() || !(far_reaching(part) || t.iter().any(|p| part.matches(p))))
            }),
        }
        let dropped = self.parts.len() != before;
        let mut read = 0;
        for path in want {
            if self.parts.contains_key(&path) {
                continue;
            }
            self.parts
                .insert(path.clone(), part_of(&path, &mut canonical));
            read += 1;
        }
        if read == 0 && !dropped && self.union.is_some() {
            return (None, 0);
        }
        let mut set = WatchSet::new();
        for part in self.parts.values() {
            set.merge(part);
        }
        self.union = Some(set);
        (self.union.as_ref(), read)
    }
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

//! Which parts a path operation can change, by lookup: [`WatchSet::matches`] of every part
//! for every touched path cost ~0.5 ms per rename (~100 parts, component-wise comparisons).
//!
//! `part.matches(p)` holds when `p` is one of its files or an ancestor of one, one of its
//! listed directories or an ancestor of one, one of its ancestor paths, or lies under one of
//! its listed directories. The first three are one lookup of `p` in `near`; the last is one
//! lookup of each of `p`'s ancestors in `listed`.

use std::{
    collections::{HashMap, HashSet},
    path::{Path, PathBuf},
};

use crate::watched::WatchSet;

#[derive(Debug, Default)]
pub(super) struct Index {
    /// A path → the parts it matches as itself (see the module's comment).
    near: HashMap<PathBuf, HashSet<PathBuf>>,
    /// A listed directory → the parts that list it.
    listed: HashMap<PathBuf, HashSet<PathBuf>>,
}

/// The paths a part is matched by as themselves.
fn near_paths(part: &WatchSet) -> impl Iterator<Item = &Path> {
    part.files
        .iter()
        .chain(&part.dirs)
        .flat_map(|p| p.ancestors())
        .chain(part.ancestor_paths.iter().map(PathBuf::as_path))
}

impl Index {
    pub fn add(&mut self, key: &Path, part: &WatchSet) {
        for p in near_paths(part) {
            insert(&mut self.near, p, key);
        }
        for d in &part.dirs {
            insert(&mut self.listed, d, key);
        }
    }

    pub fn remove(&mut self, key: &Path, part: &WatchSet) {
        for p in near_paths(part) {
            remove(&mut self.near, p, key);
        }
        for d in &part.dirs {
            remove(&mut self.listed, d, key);
        }
    }

    /// Adds to `out` the key of every part that `matches` the normalized path `p`.
    pub fn touched(&self, p: &Path, out: &mut HashSet<PathBuf>) {
        if let Some(keys) = self.near.get(p) {
            out.extend(keys.iter().cloned());
        }
        for a in p.ancestors() {
            if let Some(keys) = self.listed.get(a) {
                out.extend(keys.iter().cloned());
            }
        }
    }
}

fn insert(map: &mut HashMap<PathBuf, HashSet<PathBuf>>, p: &Path, key: &Path) {
    match map.get_mut(p) {
        Some(keys) => {
            if !keys.contains(key) {
                keys.insert(key.to_path_buf());
            }
        }
        None => {
            map.insert(p.to_path_buf(), HashSet::from([key.to_path_buf()]));
        }
    }
}

fn remove(map: &mut HashMap<PathBuf, HashSet<PathBuf>>, p: &Path, key: &Path) {
    if let Some(keys) = map.get_mut(p) {
        keys.remove(key);
        if keys.is_empty() {
            map.remove(p);
        }
    }
}

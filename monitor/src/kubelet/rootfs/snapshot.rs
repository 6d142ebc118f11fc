//! A root seen for one evaluation: each host path `lstat`ed and each link read at most once.

use std::collections::HashMap;
use std::fs::{self, Metadata};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{FsError, Resolved, RootFs};

/// One snapshot's `lstat` and `readlink` results by host path (errors as errno values), and
/// its resolutions by path inside the root. Keyed by the paths' bytes: hashing a `Path`
/// component by component cost more than the system calls saved.
pub(super) struct Memo {
    lstat: HashMap<Vec<u8>, Result<Metadata, i32>>,
    readlink: HashMap<Vec<u8>, Result<PathBuf, i32>>,
    resolved: HashMap<Vec<u8>, Result<Resolved, FsError>>,
    /// Directories listed (see `super::kept`: only their entries' names and kinds depend on
    /// their mtime).
    listed: std::collections::HashSet<Vec<u8>>,
}

impl Default for Memo {
    /// Sized for an evaluation of a kubeadm node (~30 paths `lstat`ed and resolved): the
    /// tables are not grown and rehashed on the way.
    fn default() -> Memo {
        Memo {
            lstat: HashMap::with_capacity(64),
            readlink: HashMap::new(),
            resolved: HashMap::with_capacity(32),
            listed: std::collections::HashSet::new(),
        }
    }
}

impl Memo {
    /// Every `lstat` made so far: the host path, what it gave or the errno, and whether the
    /// path was listed as a directory.
    pub(super) fn lstats(&self) -> Vec<(Vec<u8>, Result<Metadata, i32>, bool)> {
        self.lstat
            .iter()
            .map(|(p, r)| (p.clone(), r.clone(), self.listed.contains(p)))
            .collect()
    }
}

fn key(p: &Path) -> &[u8] {
    p.as_os_str().as_bytes()
}

fn errno(e: &io::Error) -> i32 {
    e.raw_os_error().unwrap_or(libc::EIO)
}

impl RootFs {
    /// The same root for one evaluation: each host path is `lstat`ed (and each link read) at
    /// most once in the snapshot, so it must not outlive the evaluation. Files are still read
    /// each time, and a kept directory listing is used only while the directory's inode is
    /// unchanged (see [`crate::kubelet::fscache`]).
    /// A snapshot of a snapshot is the same snapshot: an evaluation that takes one can hand it
    /// to code that takes its own.
    pub fn snapshot(&self) -> RootFs {
        if self.memo.is_some() {
            return self.clone();
        }
        RootFs {
            root: self.root.clone(),
            memo: Some(Arc::default()),
            kept: self.kept.clone(),
        }
    }

    /// `lstat(2)` of a host path, once per snapshot.
    pub(super) fn lstat(&self, host: &Path) -> io::Result<Metadata> {
        let Some(memo) = &self.memo else {
            return fs::symlink_metadata(host);
        };
        if let Some(r) = memo
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .lstat
            .get(key(host))
        {
            return r.clone().map_err(io::Error::from_raw_os_error);
        }
        let r = fs::symlink_metadata(host);
        let kept = r.as_ref().map(Metadata::clone).map_err(errno);
        memo.lock()
            .unwrap_or_else(|p| p.into_inner())
            .lstat
            .insert(key(host).to_vec(), kept);
        r
    }

    /// Notes that a host path was listed (its `lstat` made first).
    pub(super) fn note_listed(&self, host: &Path) {
        if let Some(memo) = &self.memo {
            memo.lock()
                .unwrap_or_else(|p| p.into_inner())
                .listed
                .insert(key(host).to_vec());
        }
    }

    /// `readlink(2)` of a host path, once per snapshot.
    pub(super) fn readlink(&self, host: &Path) -> io::Result<PathBuf> {
        let Some(memo) = &self.memo else {
            return fs::read_link(host);
        };
        if let Some(r) = memo
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .readlink
            .get(key(host))
        {
            return r.clone().map_err(io::Error::from_raw_os_error);
        }
        let r = fs::read_link(host);
        let kept = r.as_ref().map(PathBuf::clone).map_err(errno);
        memo.lock()
            .unwrap_or_else(|p| p.into_inner())
            .readlink
            .insert(key(host).to_vec(), kept);
        r
    }

    /// `resolve` of `shown` (absolute inside the root), once per snapshot.
    pub(super) fn resolve_memo(
        &self,
        shown: PathBuf,
        resolve: impl FnOnce(PathBuf) -> Result<Resolved, FsError>,
    ) -> Result<Resolved, FsError> {
        let Some(memo) = &self.memo else {
            return resolve(shown);
        };
        if let Some(r) = memo
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .resolved
            .get(key(&shown))
        {
            return r.clone();
        }
        let k = key(&shown).to_vec();
        let r = resolve(shown);
        memo.lock()
            .unwrap_or_else(|p| p.into_inner())
            .resolved
            .insert(k, r.clone());
        r
    }
}

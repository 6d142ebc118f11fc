//! Directory listings [`super::rootfs::RootFs`] has made, kept across evaluations so that an
//! unchanged directory is not listed again, keyed by the directory inode's `(dev, ino, size,
//! mtime, ctime, mode)`.
//!
//! Why a stat says "unchanged" exactly: every change to a directory's entries (create, unlink,
//! rename in or out, link, symlink, mkdir, a mount over it changes dev/ino) sets its mtime and
//! ctime to the current time at once, and ctime cannot be set from user space. A listing is
//! only kept when the directory's ctime is older than the start of the listing by more than
//! [`SETTLE`] (far over the coarse clock's tick, at most 10 ms at HZ=100): a change during or
//! after the listing then gets a later ctime, so the next lookup misses. The lstat that path
//! resolution makes anyway gives the key, so a hit costs no open or getdents.
//!
//! File texts are not kept here: a write through a shared writable mapping changes a file
//! without touching its ctime while the page stays dirty (the time is set only at the write
//! fault of a clean page), so a text keyed by its stat alone could be stale, and a stale
//! "true" is a false pass. The daemon keeps its assembled unit (texts included) in
//! [`super::rootfs::RootFs::keeping`], where the records that a stat cannot show (mmap,
//! io_uring, mounts, lost records) forget it.
//!
//! The cache is bounded ([`MAX_BYTES`], [`MAX_ENTRIES`]); past a bound it starts over.

use std::collections::HashMap;
use std::ffi::OsString;
use std::fs::Metadata;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::rootfs::FileKind;

/// How much older than the listing a directory's ctime must be for the listing to be kept.
pub const SETTLE: Duration = Duration::from_millis(50);
/// Bytes of names kept at most.
pub const MAX_BYTES: usize = 32 * 1024 * 1024;
/// Directories kept at most.
pub const MAX_ENTRIES: usize = 8192;

/// What identifies an inode's content without reading it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StatKey {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
    mode: u32,
}

impl StatKey {
    pub fn of(m: &Metadata) -> StatKey {
        StatKey {
            dev: m.dev(),
            ino: m.ino(),
            size: m.size(),
            mtime: (m.mtime(), m.mtime_nsec()),
            ctime: (m.ctime(), m.ctime_nsec()),
            mode: m.mode(),
        }
    }

    /// Whether the inode is a directory.
    pub fn is_dir(&self) -> bool {
        self.mode & libc::S_IFMT == libc::S_IFDIR
    }

    /// Whether the inode last changed more than [`SETTLE`] before `read_start`.
    pub fn settled_before(&self, read_start: SystemTime) -> bool {
        let Ok(start) = read_start.duration_since(UNIX_EPOCH) else {
            return false;
        };
        let Some(limit) = start.checked_sub(SETTLE) else {
            return false;
        };
        let (s, ns) = self.ctime;
        let Ok(s) = u64::try_from(s) else {
            return true; // before 1970: long settled
        };
        Duration::new(s, ns.clamp(0, 999_999_999) as u32) < limit
    }
}

/// One listed directory entry: its name and kind (symlinks not followed).
pub type Listing = Arc<Vec<(OsString, FileKind)>>;

#[derive(Default)]
struct Cache {
    dirs: HashMap<PathBuf, (StatKey, Listing)>,
    bytes: usize,
}

impl Cache {
    fn make_room(&mut self, bytes: usize) {
        if self.bytes + bytes > MAX_BYTES || self.dirs.len() >= MAX_ENTRIES {
            *self = Cache::default();
        }
    }
}

static CACHE: LazyLock<Mutex<Cache>> = LazyLock::new(Default::default);

fn cache() -> MutexGuard<'static, Cache> {
    // A panic while holding the lock leaves nothing half-done that matters: start over.
    CACHE.lock().unwrap_or_else(|poisoned| {
        let mut c = poisoned.into_inner();
        *c = Cache::default();
        c
    })
}

/// The listing of the directory at `host` if it was listed while its inode was as `key` says.
pub fn listing(host: &Path, key: StatKey) -> Option<Listing> {
    match cache().dirs.get(host) {
        Some((k, l)) if *k == key => Some(l.clone()),
        _ => None,
    }
}

/// Keeps the listing of `host`, listed from `read_start` on while its inode was as `key` says.
pub fn put_listing(host: &Path, key: StatKey, listing: Listing, read_start: SystemTime) {
    if !key.settled_before(read_start) {
        return;
    }
    let names: usize = listing.iter().map(|(n, _)| n.len() + 16).sum();
    let mut c = cache();
    c.make_room(names);
    c.bytes += names;
    c.dirs.insert(host.to_path_buf(), (key, listing));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settling() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("d");
        std::fs::create_dir(&p).unwrap();
        let key = StatKey::of(&std::fs::symlink_metadata(&p).unwrap());
        let l: Listing = Arc::new(vec![]);
        // Just changed: not kept.
        put_listing(&p, key, l.clone(), SystemTime::now());
        assert!(listing(&p, key).is_none());
        // Listed well after the change: kept, and found under the same key only.
        put_listing(&p, key, l.clone(), SystemTime::now() + SETTLE * 2);
        assert!(listing(&p, key).is_some());
        std::thread::sleep(SETTLE * 2);
        std::fs::write(p.join("x"), "").unwrap();
        let key2 = StatKey::of(&std::fs::symlink_metadata(&p).unwrap());
        assert_ne!(key, key2, "an entry added changes the key");
        assert!(listing(&p, key2).is_none());
    }
}

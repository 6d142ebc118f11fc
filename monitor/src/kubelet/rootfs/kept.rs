//! Results computed from a root's files (the assembled `kubelet.service`: unit, drop-ins,
//! environment files, the listings of the unit search path), kept across evaluations by a
//! root that asks for it ([`RootFs::keeping`]: the daemon; `check` never does).
//!
//! A kept result comes with every `lstat` its computation made (the snapshot's memo: each
//! component of each path resolved, each file before it was read, each directory before it
//! was listed). It is used again only while each of those gives the same
//! `(dev, ino, size, mtime, ctime, mode)` or the same error:
//! - a new, removed or renamed entry changes its directory's mtime and ctime, a mount over a
//!   path changes what `lstat` gives for it, a symlink is replaced, never rewritten; a
//!   directory that was only walked through (never listed) is checked by its inode and mode
//!   alone, each name looked up in it having a check of its own;
//! - a write through an fd (`write`, `truncate`, `copy_file_range`, io_uring, ...) sets the
//!   file's mtime and ctime, which user space cannot set back (ctime);
//! - a name looked for and missing is covered by its directory's key when that directory was
//!   listed, or only walked through while its whole key is the one it had (settled) when the
//!   result was kept; it is re-checked on its own otherwise (a walked directory whose entries
//!   changed beside it);
//! - a result is kept only when every inode it depends on last changed more than
//!   [`fscache::SETTLE`] before the computation started, so a change in the same tick of a
//!   coarse clock still gets a later ctime.
//!
//! What a stat cannot see is a write through a shared writable mapping: the file changes
//! while its dirty page stays mapped, with no new ctime. The daemon therefore forgets
//! everything ([`RootFs::forget_kept`]) on every mmap, msync, munmap, io_uring, mount or
//! umount record of a watched file, on lost records, at a rescan, and does not use kept
//! results at all while any watched file is mapped shared or held open for writing since
//! before its start (see `crate::blindspots`). A result computed while something was
//! forgotten is not kept (the generation changed).

use std::any::Any;
use std::collections::HashMap;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use super::RootFs;
use crate::kubelet::fscache::StatKey;

/// What an `lstat` gave: the inode's key, or an errno.
#[derive(Debug)]
struct Check {
    path: PathBuf,
    seen: Result<Seen, i32>,
    /// A walked directory's whole key, when it had settled: while it is the same, no entry
    /// of the directory was added, removed or renamed.
    dir_key: Option<StatKey>,
    /// A missing name's directory, when that is a walked directory with a `dir_key` (its
    /// index among the checks, which come parents first): while the directory's key is the
    /// same, the name is still missing and needs no `lstat` of its own.
    covered_by: Option<usize>,
}

/// What a check compares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Seen {
    /// Everything a change sets: a file, a link, a listed directory.
    Key(StatKey),
    /// A directory only walked through (its names looked up, never listed): which inode it
    /// is and its mode. Each name looked up in it has a check of its own (found or missing),
    /// so an entry added, removed or renamed beside them (a rename over config.yaml next
    /// to a looked-for kubeadm-flags.env) changes nothing that was read.
    Walked { dev: u64, ino: u64, mode: u32 },
}

impl Seen {
    fn of(m: &std::fs::Metadata, listed: bool) -> Seen {
        use std::os::unix::fs::MetadataExt;
        if m.is_dir() && !listed {
            Seen::Walked {
                dev: m.dev(),
                ino: m.ino(),
                mode: m.mode(),
            }
        } else {
            Seen::Key(StatKey::of(m))
        }
    }
}

struct Entry {
    /// Shared with each use: the checks are made on every evaluation, outside the lock, and
    /// copying their paths each time was a tenth of a config edit's evaluation.
    checks: Arc<[Check]>,
    value: Arc<dyn Any + Send + Sync>,
}

#[derive(Default)]
pub(super) struct Kept {
    generation: u64,
    entries: HashMap<String, Entry>,
}

/// Where a computation started: what [`RootFs::keep`] needs to decide whether it may be kept.
#[derive(Clone, Copy, Debug)]
pub struct KeepStart {
    generation: u64,
    at: SystemTime,
}

fn lock(k: &Mutex<Kept>) -> MutexGuard<'_, Kept> {
    // A panic while holding the lock may leave a half-made entry: start over.
    k.lock().unwrap_or_else(|p| {
        let mut g = p.into_inner();
        g.entries.clear();
        g.generation += 1;
        g
    })
}

impl RootFs {
    /// This root keeps results across evaluations (see the module's documentation).
    pub fn keeping(mut self) -> RootFs {
        self.kept = Some(Arc::new(Mutex::new(Kept::default())));
        self
    }

    /// Forgets every kept result; what is being computed now will not be kept either.
    pub fn forget_kept(&self) {
        if let Some(k) = &self.kept {
            let mut g = lock(k);
            g.entries.clear();
            g.generation += 1;
        }
    }

    /// Called before a computation that may be kept.
    pub fn keep_start(&self) -> Option<KeepStart> {
        let k = self.kept.as_ref()?;
        Some(KeepStart {
            generation: lock(k).generation,
            at: SystemTime::now(),
        })
    }

    /// The result kept under `key`, if every `lstat` its computation made still gives the
    /// same. In a snapshot, the `lstat`s made here are the snapshot's.
    pub fn kept<T: Clone + 'static>(&self, key: &str) -> Option<T> {
        let k = self.kept.as_ref()?;
        let (checks, value) = {
            let g = lock(k);
            let e = g.entries.get(key)?;
            (e.checks.clone(), e.value.clone())
        };
        // Which walked directories still have their whole key (see `Check::covered_by`).
        let mut unchanged = vec![false; checks.len()];
        for (i, c) in checks.iter().enumerate() {
            if c.covered_by.is_some_and(|d| unchanged[d]) {
                continue;
            }
            let got = self.lstat(&c.path);
            let same = match (&got, &c.seen) {
                (Ok(m), Ok(seen)) => Seen::of(m, matches!(seen, Seen::Key(_))) == *seen,
                (Err(e), Err(errno)) => e.raw_os_error() == Some(*errno),
                _ => false,
            };
            if !same {
                lock(k).entries.remove(key);
                return None;
            }
            if let (Some(want), Ok(m)) = (c.dir_key, &got) {
                unchanged[i] = StatKey::of(m) == want;
            }
        }
        value.downcast_ref::<T>().cloned()
    }

    /// Keeps `value` under `key` with the `lstat`s this snapshot made, if nothing was
    /// forgotten since `start` and every inode they found had settled before it.
    pub fn keep<T: Send + Sync + 'static>(&self, key: &str, value: T, start: Option<KeepStart>) {
        let (Some(k), Some(start), Some(memo)) = (&self.kept, start, &self.memo) else {
            return;
        };
        let seen = memo.lock().unwrap_or_else(|p| p.into_inner()).lstats();
        let Some(checks) = checks_of(&seen, start.at) else {
            return;
        };
        let mut g = lock(k);
        if g.generation != start.generation {
            return;
        }
        g.entries.insert(
            key.to_owned(),
            Entry {
                checks: checks.into(),
                value: Arc::new(value),
            },
        );
    }
}

/// The checks for what a snapshot's `lstat`s gave (each with whether it was listed), parents
/// before their entries, or `None` when an inode changed too recently (or an error other
/// than a missing name makes the result doubtful).
fn checks_of(
    seen: &[(Vec<u8>, Result<std::fs::Metadata, i32>, bool)],
    start: SystemTime,
) -> Option<Vec<Check>> {
    let listed_dirs: HashMap<&[u8], bool> = seen
        .iter()
        .map(|(p, r, listed)| (p.as_slice(), *listed && matches!(r, Ok(m) if m.is_dir())))
        .collect();
    // By bytes: a directory's path is a prefix of its entries', so it comes first.
    let mut order: Vec<_> = seen.iter().collect();
    order.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    // Walked directories whose whole key had settled, by path: their checks' indexes.
    let mut walked: HashMap<&[u8], usize> = HashMap::new();
    let mut out = Vec::with_capacity(seen.len());
    for (p, r, listed) in order {
        let path = Path::new(OsStr::from_bytes(p));
        let parent = path.parent().map(|d| d.as_os_str().as_bytes());
        let mut covered_by = None;
        let mut dir_key = None;
        let seen = r.as_ref().map(|m| Seen::of(m, *listed)).map_err(|e| *e);
        match seen {
            // A walked directory's times do not matter; every other key's must have settled.
            Ok(Seen::Key(key)) if !key.settled_before(start) => return None,
            Ok(Seen::Walked { .. }) => {
                let key = r.as_ref().map(StatKey::of).ok();
                dir_key = key.filter(|k| k.settled_before(start));
            }
            Err(e) if e == libc::ENOENT => {
                // Covered by its directory's key when that directory was listed and is
                // checked too.
                if parent.is_some_and(|d| listed_dirs.get(d) == Some(&true)) {
                    continue;
                }
                // Or, while a walked directory's key is what it was, by that key.
                covered_by = parent.and_then(|d| walked.get(d).copied());
            }
            Err(e) if e != libc::ENOTDIR && e != libc::ELOOP => return None,
            _ => {}
        }
        if dir_key.is_some() {
            walked.insert(p.as_slice(), out.len());
        }
        out.push(Check {
            path: path.to_path_buf(),
            seen,
            dir_key,
            covered_by,
        });
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::kubelet::fscache::SETTLE;

    /// A root with a settled unit directory holding one file; the kept value is its text.
    fn setup() -> (tempfile::TempDir, RootFs) {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("etc/u")).unwrap();
        std::fs::write(d.path().join("etc/u/a.conf"), "one").unwrap();
        std::thread::sleep(SETTLE * 2);
        let fs = RootFs::new(d.path()).keeping();
        (d, fs)
    }

    /// Reads `/etc/u/a.conf` and looks for `/etc/u/b.conf`, keeping what it found.
    fn compute(fs: &RootFs) -> (String, bool) {
        let snap = fs.snapshot();
        if let Some(v) = snap.kept::<(String, bool)>("k") {
            return v;
        }
        let start = snap.keep_start();
        let a = snap
            .read_text(Path::new("/etc/u/a.conf"), Path::new("/"))
            .unwrap()
            .text;
        let b = snap
            .read_text_optional(Path::new("/etc/u/b.conf"), Path::new("/"))
            .unwrap()
            .is_some();
        snap.keep("k", (a.clone(), b), start);
        (a, b)
    }

    fn is_kept(fs: &RootFs) -> bool {
        fs.snapshot().kept::<(String, bool)>("k").is_some()
    }

    #[test]
    fn kept_until_a_stat_changes() {
        let (d, fs) = setup();
        assert_eq!(compute(&fs), ("one".into(), false));
        assert!(is_kept(&fs));
        // Rewritten with the same size: mtime and ctime change.
        std::fs::write(d.path().join("etc/u/a.conf"), "two").unwrap();
        assert!(!is_kept(&fs));
        assert_eq!(compute(&fs), ("two".into(), false));
        // Just changed: not kept (a change in the same clock tick could be missed).
        assert!(!is_kept(&fs));
        std::thread::sleep(SETTLE * 2);
        compute(&fs);
        assert!(is_kept(&fs));
        // A name looked for appears: its directory changes.
        std::fs::write(d.path().join("etc/u/b.conf"), "").unwrap();
        assert_eq!(compute(&fs), ("two".into(), true));
    }

    /// A directory only walked through keeps the result when another entry of it changes (a
    /// rename over config.yaml beside a looked-for env file); a listed one does not.
    #[test]
    fn a_walked_directory_is_checked_by_its_names_a_listed_one_by_its_key() {
        let (d, fs) = setup();
        compute(&fs);
        assert!(is_kept(&fs));
        std::fs::write(d.path().join("etc/u/other"), "x").unwrap();
        std::fs::rename(d.path().join("etc/u/other"), d.path().join("etc/u/c.conf")).unwrap();
        assert!(is_kept(&fs), "an entry beside the names looked up");
        std::fs::write(d.path().join("etc/u/b.conf"), "").unwrap();
        assert!(!is_kept(&fs), "a name looked for appeared");
        let list = |fs: &RootFs| {
            let snap = fs.snapshot();
            if let Some(v) = snap.kept::<usize>("l") {
                return v;
            }
            let start = snap.keep_start();
            let n = snap
                .read_dir_sorted(Path::new("/etc/u"), Path::new("/"))
                .unwrap()
                .len();
            snap.keep("l", n, start);
            n
        };
        std::thread::sleep(SETTLE * 2);
        assert_eq!(list(&fs), 3);
        assert!(fs.snapshot().kept::<usize>("l").is_some());
        std::fs::write(d.path().join("etc/u/d.conf"), "").unwrap();
        assert!(
            fs.snapshot().kept::<usize>("l").is_none(),
            "a listed directory"
        );
        assert_eq!(list(&fs), 4);
    }

    /// Whether the last use of the kept "k" `lstat`ed `/etc/u/b.conf` (the missing name).
    fn looked_for_b(fs: &RootFs, d: &Path) -> bool {
        let snap = fs.snapshot();
        let _ = snap.kept::<(String, bool)>("k");
        let b = d.join("etc/u/b.conf");
        let memo = snap.memo.as_ref().unwrap().lock().unwrap().lstats();
        memo.iter()
            .any(|(p, _, _)| p.as_slice() == b.as_os_str().as_bytes())
    }

    /// A missing name in a walked directory needs no `lstat` of its own while the directory's
    /// key is what it was; once an entry beside it changed, it is checked on its own, and its
    /// appearing is seen either way.
    #[test]
    fn a_missing_name_is_covered_by_its_unchanged_directory() {
        let (d, fs) = setup();
        compute(&fs);
        assert!(is_kept(&fs));
        assert!(!looked_for_b(&fs, d.path()), "covered by /etc/u's key");
        std::fs::write(d.path().join("etc/u/other"), "x").unwrap();
        assert!(is_kept(&fs), "an entry beside");
        assert!(looked_for_b(&fs, d.path()), "checked on its own");
        std::fs::write(d.path().join("etc/u/b.conf"), "").unwrap();
        assert!(!is_kept(&fs), "the name appeared");
        assert_eq!(compute(&fs), ("one".into(), true));
        // Kept again once settled, then the name goes with nothing else changed.
        std::fs::remove_file(d.path().join("etc/u/b.conf")).unwrap();
        std::thread::sleep(SETTLE * 2);
        assert_eq!(compute(&fs), ("one".into(), false));
        assert!(is_kept(&fs));
        assert!(!looked_for_b(&fs, d.path()));
        std::fs::write(d.path().join("etc/u/b.conf"), "").unwrap();
        assert!(!is_kept(&fs), "the name appeared in an unchanged directory");
        assert_eq!(compute(&fs), ("one".into(), true));
    }

    #[test]
    fn a_swapped_directory_or_a_forget_drops_it() {
        let (d, fs) = setup();
        compute(&fs);
        assert!(is_kept(&fs));
        fs.forget_kept();
        assert!(!is_kept(&fs));
        compute(&fs);
        assert!(is_kept(&fs));
        // The directory replaced by another with the same content (a rename over it).
        let other = d.path().join("etc/v");
        std::fs::create_dir_all(&other).unwrap();
        std::fs::write(other.join("a.conf"), "one").unwrap();
        std::fs::remove_dir_all(d.path().join("etc/u")).unwrap();
        std::fs::rename(&other, d.path().join("etc/u")).unwrap();
        assert!(!is_kept(&fs));
    }

    #[test]
    fn forgotten_while_computing_is_not_kept() {
        let (_d, fs) = setup();
        let snap = fs.snapshot();
        let start = snap.keep_start();
        snap.read_text(Path::new("/etc/u/a.conf"), Path::new("/"))
            .unwrap();
        fs.forget_kept();
        snap.keep("k", ("one".to_string(), false), start);
        assert!(!is_kept(&fs));
    }

    #[test]
    fn a_root_that_does_not_keep_keeps_nothing() {
        let (d, _) = setup();
        let fs = RootFs::new(d.path());
        compute(&fs);
        assert!(!is_kept(&fs));
    }
}

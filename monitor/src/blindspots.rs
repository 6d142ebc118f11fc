//! The daemon's side of the blind-spot records that need more than the generic file-change
//! path (rmdir, ancestor renames and io_uring records take that path as they are):
//! - mounts: relevant when the target is a watched path or an ancestor of one; when it cannot
//!   be placed (the process is gone, a path through an fd); always in the host's mount
//!   namespace (a symlinked or `/proc/self/fd` target resolves differently than a path
//!   compare expects, and mounts there are rare); in other namespaces by the target's name;
//! - shared writable mappings of a watched file: the file can change with no syscall at all,
//!   so its content is polled while any process maps it;
//! - io_uring requests seen when submitted (their completion is not posted): they have not
//!   run yet, so they are evaluated at once and again [`LATER`] (the request may run in a
//!   worker thread after the first evaluation).

use std::{
    collections::{BTreeSet, HashMap, hash_map::DefaultHasher},
    fs,
    hash::{Hash, Hasher},
    io::Read,
    os::unix::ffi::OsStrExt,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use monitor_common::InodeKey;

use crate::{
    attribution,
    decode::{FileInfo, FileOp},
    report::{Trigger, TriggerOp},
    watched::{self, WatchSet},
};

/// How often the content of a file mapped shared is looked at.
pub const MAP_POLL: Duration = Duration::from_millis(100);
/// When an io_uring request seen at submission is evaluated again.
pub const LATER: [Duration; 2] = [Duration::from_millis(100), Duration::from_secs(1)];
/// Evaluations put off that fall within this of one already planned are merged into it.
const LATER_MERGE: Duration = Duration::from_millis(50);
/// Bytes of a mapped file hashed per poll (kubelet inputs are a few KiB; the kubelet's own
/// readers refuse much less than this).
const MAX_READ: u64 = 16 << 20;

/// What the daemon does with a record: `None` for records this module does not handle (the
/// generic path takes them), else the triggers to push (possibly none).
pub fn classify(f: &FileInfo, set: &WatchSet, state: &mut BlindSpots) -> Option<Vec<Trigger>> {
    match f.op {
        FileOp::Mount | FileOp::Umount => Some(mount(f, set).into_iter().collect()),
        FileOp::MmapShared => Some(state.mapped(f).into_iter().collect()),
        FileOp::Msync | FileOp::Munmap | FileOp::MmapExit => Some(state.mapper_op(f)),
        FileOp::IoUring => (f.ret >= 0).then(|| vec![uring(f, set)]),
        FileOp::IoUringSubmit => Some(vec![state.submitted(f, set)]),
        _ => None,
    }
}

fn trigger(f: &FileInfo, path: Option<PathBuf>, guessed: bool) -> Trigger {
    Trigger {
        op: TriggerOp::File(f.op),
        path,
        path2: None,
        actor: Some(attribution::actor(&f.actor)),
        guessed,
        inode: (f.ino != 0).then_some((f.dev, f.ino)),
        seq: 0,
        cut: false,
    }
}

/// An io_uring request on a watched file (named by its path, found by its inode), or a path
/// operation or open the kernel could not place. The process that made it is certain; only
/// the file is unknown in the second case, so the trigger is not a guess about who.
fn uring(f: &FileInfo, set: &WatchSet) -> Trigger {
    let path = (f.dev != 0 && set.has_inode(f.dev, f.ino))
        .then(|| path_of_inode(set, f.dev, f.ino))
        .flatten();
    trigger(f, path, false)
}

/// The watched file with this inode, if any (a stat of each watched file: only for the rare
/// records that name a file by inode alone).
fn path_of_inode(set: &WatchSet, dev: u32, ino: u64) -> Option<PathBuf> {
    let want = InodeKey { dev, _pad: 0, ino };
    set.files
        .iter()
        .find(|p| crate::probes::inode_key_of(p) == Some(want))
        .cloned()
}

fn mount(f: &FileInfo, set: &WatchSet) -> Option<Trigger> {
    if f.ret < 0 {
        return None;
    }
    let tgid = f.actor.tgid;
    let resolved = if f.path_truncated {
        None
    } else {
        watched::resolve(tgid, f.dirfd, &f.path)
    };
    if let Some(p) = &resolved {
        // After the mount the target resolves through any symlink to the mountpoint.
        let real = fs::canonicalize(p).ok();
        if set.matches(p) || real.as_deref().is_some_and(|r| set.matches(r)) {
            return Some(trigger(f, resolved.clone(), false));
        }
    }
    let path = resolved.clone().or_else(|| Some(f.path.clone()));
    let relevant = match same_mount_ns_as_init(tgid) {
        // Gone, or in the host's namespace: what it did cannot be ruled out.
        None | Some(true) => true,
        Some(false) => resolved.is_none() || name_is_watched(set, &f.path),
    };
    relevant.then(|| trigger(f, path, true))
}

/// Is `tgid` in the mount namespace of pid 1 (the host's, also with hostPID)? `None` when it
/// cannot be told.
fn same_mount_ns_as_init(tgid: u32) -> Option<bool> {
    let theirs = fs::read_link(format!("/proc/{tgid}/ns/mnt")).ok()?;
    let init = fs::read_link("/proc/1/ns/mnt").ok()?;
    Some(theirs == init)
}

fn name_is_watched(set: &WatchSet, path: &Path) -> bool {
    watched::name_matches(set, path)
        || path
            .file_name()
            .is_some_and(|n| set.ancestor_names.contains(n.as_bytes()))
}

/// One watched file mapped shared by some processes.
struct Mapping {
    /// Processes known to map it (the one whose mmap was seen; children that inherited it).
    pids: BTreeSet<u32>,
    /// Named in reports: the mmap, by its process.
    trigger: Trigger,
    /// The content's hash at the last look (before the evaluation it led to).
    digest: Option<u64>,
    next: Instant,
}

/// What the blind spots keep between records: files mapped shared (polled every
/// [`MAP_POLL`] while mapped) and evaluations put off (io_uring requests that had not run).
#[derive(Default)]
pub struct BlindSpots {
    live: HashMap<InodeKey, Mapping>,
    later: Vec<(Instant, Trigger)>,
    /// Fds open for writing on watched files since before the monitor started (their opens
    /// were never seen), by (pid, fd): polled like mappings while they stay open.
    held: HashMap<(u32, i32), Held>,
}

struct Held {
    key: InodeKey,
    trigger: Trigger,
    digest: Option<u64>,
    next: Instant,
}

impl BlindSpots {
    /// An io_uring request seen at submission: evaluate now, and again [`LATER`].
    fn submitted(&mut self, f: &FileInfo, set: &WatchSet) -> Trigger {
        let t = uring(f, set);
        let now = Instant::now();
        for d in LATER {
            let at = now + d;
            let near = |when: &Instant| {
                let gap = if *when > at { *when - at } else { at - *when };
                gap < LATER_MERGE
            };
            if !self.later.iter().any(|(when, _)| near(when)) {
                self.later.push((at, t.clone()));
            }
        }
        t
    }

    /// A new shared mapping of a watched file (the record comes at mmap's exit, so it exists):
    /// its content now, then an evaluation (a write may already have been made).
    fn mapped(&mut self, f: &FileInfo) -> Option<Trigger> {
        if f.ret < 0 {
            return None;
        }
        let key = InodeKey {
            dev: f.dev,
            _pad: 0,
            ino: f.ino,
        };
        let tgid = f.actor.tgid;
        let found = find_mapping(tgid, key);
        let path = found.as_ref().map(|m| m.path.clone());
        let digest = found.as_ref().and_then(|m| digest(tgid, &m.range));
        tracing::debug!(
            tgid,
            ?path,
            found = found.is_some(),
            "watched file mapped shared"
        );
        let t = trigger(f, path, false);
        let m = self.live.entry(key).or_insert_with(|| Mapping {
            pids: BTreeSet::new(),
            trigger: t.clone(),
            digest,
            next: Instant::now() + MAP_POLL,
        });
        m.pids.insert(tgid);
        m.trigger = t.clone();
        m.digest = digest;
        Some(t)
    }

    /// msync, munmap or exit of a process that mapped a watched file: evaluate now, and look
    /// at once whether the mapping is gone.
    fn mapper_op(&mut self, f: &FileInfo) -> Vec<Trigger> {
        let tgid = f.actor.tgid;
        let mut out = Vec::new();
        for m in self.live.values_mut().filter(|m| m.pids.contains(&tgid)) {
            let mut t = m.trigger.clone();
            t.op = TriggerOp::File(f.op);
            out.push(t);
            m.next = Instant::now();
        }
        out
    }

    /// Whether some watched file is polled now (mapped shared, or held open for writing
    /// since before the start): its content can change with no syscall.
    pub fn polling(&self) -> bool {
        !self.live.is_empty() || !self.held.is_empty()
    }

    /// The mapping of one of `inputs` whose content changed since it was last looked at, if
    /// any: an evaluation that another event called for found a change that this mapping's
    /// writer made before our poll saw it. Its trigger names the change.
    pub fn changed_on(&mut self, inputs: &[PathBuf]) -> Option<Trigger> {
        for (key, m) in self.live.iter_mut() {
            if !m.trigger.path.as_ref().is_some_and(|p| inputs.contains(p)) {
                continue;
            }
            let now = m
                .pids
                .iter()
                .find_map(|&pid| digest(pid, &find_mapping(pid, *key)?.range));
            if now.is_some() && now != m.digest {
                m.digest = now;
                return Some(m.trigger.clone());
            }
        }
        for (&(pid, fd), h) in self.held.iter_mut() {
            if !h.trigger.path.as_ref().is_some_and(|p| inputs.contains(p)) {
                continue;
            }
            let now = digest_path(&format!("/proc/{pid}/fd/{fd}"));
            if now.is_some() && now != h.digest {
                h.digest = now;
                return Some(h.trigger.clone());
            }
        }
        None
    }

    /// Writers that were there before the monitor started: shared mappings of watched files
    /// and fds open for writing on them (their mmaps and opens were never seen). Their
    /// content is polled from now on, as for a mapping seen by its mmap. One scan of /proc,
    /// at start. Returns a trigger per writer found: its content was taken now, after the
    /// baseline's read, so what it wrote in between is evaluated at once.
    pub fn adopt_existing(&mut self, set: &WatchSet) -> Vec<Trigger> {
        let mut found = Vec::new();
        let watched: BTreeSet<InodeKey> = set
            .inodes
            .iter()
            .filter(|(_, v)| **v & monitor_common::watch::FILE != 0)
            .map(|(k, _)| *k)
            .collect();
        let me = std::process::id();
        let Ok(dir) = fs::read_dir("/proc") else {
            return found;
        };
        let pids = dir
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok());
        for pid in pids.filter(|&p| p != me) {
            if let Ok(text) = fs::read(format!("/proc/{pid}/maps")) {
                for line in text.split(|&b| b == b'\n') {
                    let Some((m, shared)) = parse_maps(line) else {
                        continue;
                    };
                    if shared && watched.contains(&m.key) && !self.live.contains_key(&m.key) {
                        let t = existing_trigger(pid, FileOp::MmapShared, &m.path);
                        tracing::debug!(pid, path = ?m.path, "shared mapping from before the start");
                        found.push(t.clone());
                        self.live.insert(
                            m.key,
                            Mapping {
                                pids: BTreeSet::from([pid]),
                                trigger: t,
                                digest: digest(pid, &m.range),
                                next: Instant::now() + MAP_POLL,
                            },
                        );
                    }
                }
            }
            for (fd, key) in write_fds(pid) {
                if watched.contains(&key) {
                    let path = fs::read_link(format!("/proc/{pid}/fd/{fd}")).unwrap_or_default();
                    tracing::debug!(pid, fd, ?path, "write fd from before the start");
                    let t = existing_trigger(pid, FileOp::Open, &path);
                    found.push(t.clone());
                    self.held.insert(
                        (pid, fd),
                        Held {
                            key,
                            trigger: t,
                            digest: digest_path(&format!("/proc/{pid}/fd/{fd}")),
                            next: Instant::now() + MAP_POLL,
                        },
                    );
                }
            }
        }
        found
    }

    /// When the next look is due.
    pub fn next_poll(&self) -> Option<Instant> {
        let later = self.later.iter().map(|(at, _)| *at);
        let held = self.held.values().map(|h| h.next);
        self.live
            .values()
            .map(|m| m.next)
            .chain(later)
            .chain(held)
            .min()
    }

    /// Fds from before the start that are due: a changed content, or the fd gone (what was
    /// written through it is final), is a trigger.
    fn poll_held(&mut self, now: Instant, out: &mut Vec<Trigger>) {
        self.held.retain(|&(pid, fd), h| {
            if h.next > now {
                return true;
            }
            let link = format!("/proc/{pid}/fd/{fd}");
            let same = fs::metadata(&link).is_ok_and(|m| crate::probes::inode_key(&m) == h.key);
            if !same {
                let mut t = h.trigger.clone();
                t.op = TriggerOp::File(FileOp::Close);
                out.push(t);
                return false;
            }
            let d = digest_path(&link);
            if d.is_none() || d != h.digest {
                out.push(h.trigger.clone());
            }
            h.digest = d;
            h.next = now + MAP_POLL;
            true
        });
    }

    /// Looks at the mapped files that are due: a changed content, or a mapping gone (its
    /// writes are final), is a trigger.
    pub fn poll(&mut self, now: Instant) -> Vec<Trigger> {
        let mut out = Vec::new();
        let (due, rest): (Vec<_>, Vec<_>) = self.later.drain(..).partition(|(at, _)| *at <= now);
        self.later = rest;
        out.extend(due.into_iter().map(|(_, t)| t));
        self.poll_held(now, &mut out);
        let due: Vec<InodeKey> = self
            .live
            .iter()
            .filter(|(_, m)| m.next <= now)
            .map(|(k, _)| *k)
            .collect();
        for key in due {
            let Some(m) = self.live.get_mut(&key) else {
                continue;
            };
            m.pids.retain(|&pid| find_mapping(pid, key).is_some());
            if m.pids.is_empty() {
                // Inherited across fork by a process we never saw map it?
                m.pids = mappers_of(key);
            }
            let Some((pid, found)) = m
                .pids
                .iter()
                .find_map(|&pid| find_mapping(pid, key).map(|f| (pid, f)))
            else {
                tracing::debug!(?key, "shared mapping gone");
                let mut t = m.trigger.clone();
                t.op = TriggerOp::File(FileOp::Munmap);
                out.push(t);
                self.live.remove(&key);
                continue;
            };
            let d = digest(pid, &found.range);
            tracing::trace!(pid, range = %found.range, changed = d != m.digest, "mapping polled");
            // Unreadable content: evaluate every poll rather than miss a write.
            if d.is_none() || d != m.digest {
                out.push(m.trigger.clone());
            }
            m.digest = d;
            m.next = now + MAP_POLL;
        }
        out
    }
}

struct Found {
    /// `start-end`, the name of its `/proc/<pid>/map_files/` entry.
    range: String,
    path: PathBuf,
    key: InodeKey,
}

/// A mapping of `key` in `/proc/<pid>/maps`, if any.
fn find_mapping(pid: u32, key: InodeKey) -> Option<Found> {
    let text = fs::read(format!("/proc/{pid}/maps")).ok()?;
    text.split(|&b| b == b'\n')
        .find_map(|line| parse_maps_line(line, key))
}

/// A line of `/proc/<pid>/maps` when its device and inode are `key`'s.
fn parse_maps_line(line: &[u8], key: InodeKey) -> Option<Found> {
    parse_maps(line).map(|(f, _)| f).filter(|f| f.key == key)
}

/// `start-end perms offset major:minor inode path`: the mapping, and whether it is shared.
fn parse_maps(line: &[u8]) -> Option<(Found, bool)> {
    let mut fields = line.splitn(6, |&b| b == b' ');
    let range = fields.next()?;
    let perms = fields.next()?;
    let _offset = fields.next()?;
    let dev = std::str::from_utf8(fields.next()?).ok()?;
    let ino: u64 = std::str::from_utf8(fields.next()?).ok()?.parse().ok()?;
    let (major, minor) = dev.split_once(':')?;
    let major = u32::from_str_radix(major, 16).ok()?;
    let minor = u32::from_str_radix(minor, 16).ok()?;
    if ino == 0 {
        return None;
    }
    let path = fields.next().unwrap_or_default().trim_ascii_start();
    let found = Found {
        range: String::from_utf8_lossy(range).into_owned(),
        path: PathBuf::from(std::ffi::OsStr::from_bytes(path)),
        key: InodeKey {
            dev: (major << 20) | minor,
            _pad: 0,
            ino,
        },
    };
    Some((found, perms.get(3) == Some(&b's')))
}

/// The fds of `pid` open for writing, with their files' keys (from `fdinfo`'s flags).
fn write_fds(pid: u32) -> Vec<(i32, InodeKey)> {
    let Ok(dir) = fs::read_dir(format!("/proc/{pid}/fd")) else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(|fd| {
            let m = fs::metadata(format!("/proc/{pid}/fd/{fd}")).ok()?;
            if !m.is_file() {
                return None;
            }
            let info = fs::read_to_string(format!("/proc/{pid}/fdinfo/{fd}")).ok()?;
            let flags = info
                .lines()
                .find_map(|l| l.strip_prefix("flags:"))
                .and_then(|v| u32::from_str_radix(v.trim(), 8).ok())?;
            let writable = flags & (libc::O_WRONLY | libc::O_RDWR) as u32 != 0;
            writable.then(|| (fd, crate::probes::inode_key(&m)))
        })
        .collect()
}

/// A trigger for a writer found by the scan at start (its own event was never seen).
fn existing_trigger(pid: u32, op: FileOp, path: &Path) -> Trigger {
    let exe = fs::read_link(format!("/proc/{pid}/exe")).ok();
    let argv: Vec<String> = fs::read(format!("/proc/{pid}/cmdline"))
        .unwrap_or_default()
        .split(|&b| b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    Trigger {
        op: TriggerOp::File(op),
        path: Some(path.to_path_buf()),
        path2: None,
        actor: Some(attribution::process_actor(pid, exe, &argv)),
        guessed: false,
        inode: None,
        seq: 0,
        cut: false,
    }
}

/// Every process that maps `key` now (a scan of /proc: only when the known ones stopped).
fn mappers_of(key: InodeKey) -> BTreeSet<u32> {
    let Ok(dir) = fs::read_dir("/proc") else {
        return BTreeSet::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| find_mapping(pid, key).is_some())
        .collect()
}

/// A hash of the mapped file's content, read through the mapping's `map_files` entry (the
/// file itself, whatever its name now or in which mount namespace).
fn digest(pid: u32, range: &str) -> Option<u64> {
    digest_path(&format!("/proc/{pid}/map_files/{range}"))
}

/// A hash of what reading `path` gives now.
fn digest_path(path: &str) -> Option<u64> {
    let f = fs::File::open(path).ok()?;
    let mut buf = Vec::new();
    f.take(MAX_READ).read_to_end(&mut buf).ok()?;
    let mut h = DefaultHasher::new();
    buf.hash(&mut h);
    Some(h.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_lines() {
        let key = InodeKey {
            dev: (0xfd << 20) | 1,
            _pad: 0,
            ino: 1234,
        };
        let line = b"7f12a000-7f12b000 rw-s 00000000 fd:01 1234                       /var/lib/kubelet/config.yaml";
        let f = parse_maps_line(line, key).unwrap();
        assert_eq!(f.range, "7f12a000-7f12b000");
        assert_eq!(f.path, PathBuf::from("/var/lib/kubelet/config.yaml"));
        assert!(parse_maps_line(b"7f12a000-7f12b000 rw-s 00000000 fd:02 1234 /x", key).is_none());
        assert!(parse_maps_line(b"7f12a000-7f12b000 rw-p 00000000 00:00 0 ", key).is_none());
        assert!(parse_maps_line(b"garbage", key).is_none());
        assert!(parse_maps_line(b"", key).is_none());
    }

    /// This process maps a file shared: found, hashed, and changes seen through the mapping.
    #[test]
    fn finds_and_hashes_own_mapping() {
        use std::os::unix::io::AsRawFd;
        let t = tempfile::NamedTempFile::new().unwrap();
        fs::write(t.path(), b"abcd").unwrap();
        let file = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(t.path())
            .unwrap();
        // SAFETY: a fresh shared mapping of 4 bytes of our own file, unmapped below.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                4,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                file.as_raw_fd(),
                0,
            )
        };
        assert_ne!(p, libc::MAP_FAILED);
        let key = crate::probes::inode_key(&fs::metadata(t.path()).unwrap());
        let me = std::process::id();
        let found = find_mapping(me, key).expect("own mapping");
        let before = digest(me, &found.range).expect("readable as root");
        // SAFETY: within the 4-byte mapping.
        unsafe { *(p as *mut u8) = b'z' };
        assert_ne!(digest(me, &found.range), Some(before));
        // SAFETY: the mapping made above.
        unsafe { libc::munmap(p, 4) };
        assert!(find_mapping(me, key).is_none());
    }
}

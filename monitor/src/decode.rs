//! Ring-buffer records to typed events. Every record is checked: at least a header, a known
//! kind, a size that matches the kind's struct, a known file operation. Nothing is
//! transmuted from an unchecked id; a bad record is an error, never a panic.

use std::{ffi::OsStr, mem::size_of, os::unix::ffi::OsStrExt, path::PathBuf};

use monitor_common::{
    Actor, FLAG_MATCH_INODE, FLAG_MATCH_NAME, FLAG_MATCH_PARENT, FLAG_PATH_TRUNCATED,
    FLAG_PATH2_TRUNCATED, FileEvent, Header, PATH_LEN, ProcEvent, blind, kind, op,
};
use serde::Serialize;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RecordError {
    #[error("record of {got} bytes is shorter than the {need}-byte {what}")]
    Short {
        got: usize,
        need: usize,
        what: &'static str,
    },
    #[error("unknown record kind {0}")]
    UnknownKind(u32),
    #[error("record kind {kind} says {size} bytes, expected {expected}")]
    SizeMismatch {
        kind: u32,
        size: u32,
        expected: usize,
    },
    #[error("unknown file operation {0}")]
    UnknownOp(u32),
}

/// One decoded record.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Record {
    /// Records the kernel lost on this CPU just before this one (ring buffer full).
    pub lost_before: u32,
    /// Kernel boot-time clock, nanoseconds.
    pub ktime_ns: u64,
    #[serde(flatten)]
    pub event: Event,
}

#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    Exec(ProcInfo),
    Exit(ProcInfo),
    File(FileInfo),
}

/// The task named by a kernel record, as the record gives it (see `report::Actor` for the
/// actor a report names, completed from /proc).
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct KernelActor {
    pub pid: u32,
    pub tgid: u32,
    pub ppid: u32,
    pub uid: u32,
    pub gid: u32,
    pub cgroup_id: u64,
    /// The kernel's comm, bytes as they are (any byte is possible).
    #[serde(serialize_with = "ser_bytes")]
    pub comm: Vec<u8>,
    /// The executable, from the kernel's dentry walk (`…/` in front when the walk stopped
    /// before the root; within one mount, so a separate /usr shows as `/bin/sed`).
    #[serde(serialize_with = "ser_opt_path")]
    pub exe: Option<PathBuf>,
}

#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct ProcInfo {
    #[serde(flatten)]
    pub actor: KernelActor,
    /// Exit: wait(2)-style status; exec: 0.
    pub exit_code: i32,
    /// Exec: the executed filename as the kernel saw it.
    #[serde(serialize_with = "ser_path")]
    pub path: PathBuf,
}

#[derive(Clone, Copy, Debug, Serialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum FileOp {
    Open,
    Close,
    Rename,
    Unlink,
    Truncate,
    Ftruncate,
    Link,
    Symlink,
    Mkdir,
    /// A writer of a watched file exited (its fds, dup'ed ones included, are closed now).
    WriterExit,
    /// rmdir(2) of a directory on an input's path.
    Rmdir,
    /// mount(2) or move_mount(2); `path` is the target.
    Mount,
    /// umount2(2); `path` is the target.
    Umount,
    /// mmap(MAP_SHARED) of a watched file (`dirfd` is the fd; `sys_flags` prot << 32 | flags).
    MmapShared,
    /// msync, munmap, exit of a process that mapped a watched file shared.
    Msync,
    Munmap,
    MmapExit,
    /// An io_uring request completed (`sys_flags` is its opcode): on a watched file (matched
    /// by inode), or a path operation on a file the kernel cannot name.
    IoUring,
    /// The same, sent when submitted (its completion is not posted): it has not run yet.
    IoUringSubmit,
}

impl FileOp {
    fn from_wire(v: u32) -> Result<FileOp, RecordError> {
        Ok(match v {
            op::OPEN => FileOp::Open,
            op::CLOSE => FileOp::Close,
            op::RENAME => FileOp::Rename,
            op::UNLINK => FileOp::Unlink,
            op::TRUNCATE => FileOp::Truncate,
            op::FTRUNCATE => FileOp::Ftruncate,
            op::LINK => FileOp::Link,
            op::SYMLINK => FileOp::Symlink,
            op::MKDIR => FileOp::Mkdir,
            op::WRITER_EXIT => FileOp::WriterExit,
            blind::op::RMDIR => FileOp::Rmdir,
            blind::op::MOUNT => FileOp::Mount,
            blind::op::UMOUNT => FileOp::Umount,
            blind::op::MMAP_SHARED => FileOp::MmapShared,
            blind::op::MSYNC => FileOp::Msync,
            blind::op::MUNMAP => FileOp::Munmap,
            blind::op::MMAP_EXIT => FileOp::MmapExit,
            blind::op::IO_URING => FileOp::IoUring,
            blind::op::IO_URING_SUBMIT => FileOp::IoUringSubmit,
            other => return Err(RecordError::UnknownOp(other)),
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            FileOp::Open => "open",
            FileOp::Close => "close",
            FileOp::Rename => "rename",
            FileOp::Unlink => "unlink",
            FileOp::Truncate => "truncate",
            FileOp::Ftruncate => "ftruncate",
            FileOp::Link => "link",
            FileOp::Symlink => "symlink",
            FileOp::Mkdir => "mkdir",
            FileOp::WriterExit => "writer_exit",
            FileOp::Rmdir => "rmdir",
            FileOp::Mount => "mount",
            FileOp::Umount => "umount",
            FileOp::MmapShared => "mmap_shared",
            FileOp::Msync => "msync",
            FileOp::Munmap => "munmap",
            FileOp::MmapExit => "mmap_exit",
            FileOp::IoUring => "io_uring",
            FileOp::IoUringSubmit => "io_uring_submit",
        }
    }

    /// Operations whose record carries no path (the file is known by fd or inode, or not at
    /// all).
    fn pathless(self) -> bool {
        matches!(
            self,
            FileOp::Close
                | FileOp::Ftruncate
                | FileOp::WriterExit
                | FileOp::MmapShared
                | FileOp::Msync
                | FileOp::Munmap
                | FileOp::MmapExit
                | FileOp::IoUring
                | FileOp::IoUringSubmit
        )
    }
}

#[derive(Clone, Copy, Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum MatchedBy {
    Inode,
    ParentDir,
    Name,
    /// close/ftruncate of an fd recorded at open.
    Fd,
}

#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct FileInfo {
    #[serde(flatten)]
    pub actor: KernelActor,
    pub op: FileOp,
    pub matched_by: MatchedBy,
    /// The syscall's result: an fd for opens, 0 or -errno otherwise.
    pub ret: i64,
    /// The dirfd (`-100` = AT_FDCWD) or, for close/ftruncate, the fd.
    pub dirfd: i32,
    pub dirfd2: i32,
    /// open(2) flags, or rename/link/unlink flags.
    pub sys_flags: u64,
    /// Kernel device number (major << 20 | minor) and inode, when matched by inode.
    pub dev: u32,
    pub ino: u64,
    /// As the process gave it (empty for close/ftruncate).
    #[serde(serialize_with = "ser_path")]
    pub path: PathBuf,
    pub path_truncated: bool,
    /// rename/link: the new name; symlink: the link created.
    #[serde(serialize_with = "ser_opt_path")]
    pub path2: Option<PathBuf>,
    pub path2_truncated: bool,
    /// Path operations: the directory (kernel device number, inode) a relative `path` /
    /// `path2` was given against, read by the kernel at the call; `None` for an absolute
    /// path, a symlink's target, or without BTF.
    pub base: Option<(u32, u64)>,
    pub base2: Option<(u32, u64)>,
}

fn ser_bytes<S: serde::Serializer>(b: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&escape_bytes(b).0)
}

/// A path as a JSON string, whatever its bytes (see [`escape_bytes`]).
pub fn ser_path<S: serde::Serializer>(p: &std::path::Path, s: S) -> Result<S::Ok, S::Error> {
    ser_bytes(p.as_os_str().as_bytes(), s)
}

pub fn ser_opt_path<S: serde::Serializer>(p: &Option<PathBuf>, s: S) -> Result<S::Ok, S::Error> {
    match p {
        Some(p) => ser_path(p, s),
        None => s.serialize_none(),
    }
}

/// Bytes as a string without losing any: valid UTF-8 as it is; otherwise every byte that is
/// not part of valid UTF-8 becomes `\xNN` and every backslash `\\`, so that the escaped
/// form reads back unambiguously. The bool says whether it was escaped (whoever prints it
/// flags the record, see `Record::escaped`).
pub fn escape_bytes(b: &[u8]) -> (String, bool) {
    if let Ok(s) = std::str::from_utf8(b) {
        return (s.to_string(), false);
    }
    let mut out = String::with_capacity(b.len() + 8);
    for chunk in b.utf8_chunks() {
        for c in chunk.valid().chars() {
            if c == '\\' {
                out.push_str("\\\\");
            } else {
                out.push(c);
            }
        }
        for byte in chunk.invalid() {
            out.push_str(&format!("\\x{byte:02x}"));
        }
    }
    (out, true)
}

impl Record {
    /// Whether any byte string of the record (paths, comm, exe) is not UTF-8, and so is
    /// printed escaped (see [`escape_bytes`]).
    pub fn escaped(&self) -> bool {
        let bad = |b: &[u8]| std::str::from_utf8(b).is_err();
        let p = |p: &std::path::Path| bad(p.as_os_str().as_bytes());
        let actor = |a: &KernelActor| bad(&a.comm) || a.exe.as_deref().is_some_and(p);
        match &self.event {
            Event::Exec(e) | Event::Exit(e) => actor(&e.actor) || p(&e.path),
            Event::File(f) => actor(&f.actor) || p(&f.path) || f.path2.as_deref().is_some_and(p),
        }
    }
}

/// Reads a `T` from the front of `buf`, if it is long enough. `T` must be plain old data:
/// only the #[repr(C)] integer/array structs of monitor-common are used here.
fn read_pod<T: Copy>(buf: &[u8], what: &'static str) -> Result<T, RecordError> {
    if buf.len() < size_of::<T>() {
        return Err(RecordError::Short {
            got: buf.len(),
            need: size_of::<T>(),
            what,
        });
    }
    // SAFETY: length checked above; T is a #[repr(C)] struct of integers and byte arrays,
    // valid for any bit pattern; read_unaligned copes with the ring buffer's alignment.
    Ok(unsafe { std::ptr::read_unaligned(buf.as_ptr() as *const T) })
}

fn cstr(bytes: &[u8], len: u32) -> Vec<u8> {
    let len = (len as usize).min(bytes.len());
    let b = &bytes[..len];
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    b[..end].to_vec()
}

fn actor(a: &Actor) -> KernelActor {
    KernelActor {
        pid: a.pid,
        tgid: a.tgid,
        ppid: a.ppid,
        uid: a.uid,
        gid: a.gid,
        cgroup_id: a.cgroup_id,
        comm: cstr(&a.comm, a.comm.len() as u32),
        exe: exe_path(a),
    }
}

/// Joins the kernel's dentry names (innermost first) into a path.
fn exe_path(a: &Actor) -> Option<PathBuf> {
    let n = (a.exe_parts as usize).min(a.exe.len());
    if n == 0 {
        return None;
    }
    let mut parts: Vec<Vec<u8>> = a.exe[..n].iter().map(|p| cstr(p, p.len() as u32)).collect();
    let complete = a.exe_complete != 0;
    if complete {
        parts.pop(); // the root's own name, "/"
    }
    parts.reverse();
    let mut out: Vec<u8> = if complete {
        Vec::new()
    } else {
        "…".as_bytes().to_vec()
    };
    for p in parts {
        out.push(b'/');
        out.extend_from_slice(&p);
    }
    if out.is_empty() {
        out.push(b'/');
    }
    Some(path(out))
}

fn path(b: Vec<u8>) -> PathBuf {
    PathBuf::from(OsStr::from_bytes(&b))
}

pub fn record(buf: &[u8]) -> Result<Record, RecordError> {
    let h: Header = read_pod(buf, "header")?;
    let expected = match h.kind {
        kind::EXEC | kind::EXIT => size_of::<ProcEvent>(),
        kind::FILE => size_of::<FileEvent>(),
        other => return Err(RecordError::UnknownKind(other)),
    };
    if h.size as usize != expected {
        return Err(RecordError::SizeMismatch {
            kind: h.kind,
            size: h.size,
            expected,
        });
    }
    let event = match h.kind {
        kind::EXEC | kind::EXIT => {
            let e: ProcEvent = read_pod(buf, "process event")?;
            let info = ProcInfo {
                actor: actor(&e.actor),
                exit_code: e.exit_code,
                path: path(cstr(&e.path, e.path_len.min(PATH_LEN as u32))),
            };
            if h.kind == kind::EXEC {
                Event::Exec(info)
            } else {
                Event::Exit(info)
            }
        }
        _ => {
            let e: FileEvent = read_pod(buf, "file event")?;
            let op = FileOp::from_wire(e.op)?;
            let matched_by = if matches!(
                op,
                FileOp::Close
                    | FileOp::WriterExit
                    | FileOp::Msync
                    | FileOp::Munmap
                    | FileOp::MmapExit
            ) {
                MatchedBy::Fd
            } else if e.flags & FLAG_MATCH_INODE != 0 {
                MatchedBy::Inode
            } else if e.flags & FLAG_MATCH_PARENT != 0 {
                MatchedBy::ParentDir
            } else if e.flags & FLAG_MATCH_NAME != 0 {
                MatchedBy::Name
            } else {
                MatchedBy::Fd
            };
            let has_path2 = matches!(op, FileOp::Rename | FileOp::Link | FileOp::Symlink);
            let p = if op.pathless() {
                Vec::new()
            } else {
                cstr(&e.path, e.path_len)
            };
            Event::File(FileInfo {
                actor: actor(&e.actor),
                op,
                matched_by,
                ret: e.ret,
                dirfd: e.dirfd,
                dirfd2: e.dirfd2,
                sys_flags: e.sys_flags,
                dev: e.dev,
                ino: e.ino,
                path: path(p),
                path_truncated: e.flags & FLAG_PATH_TRUNCATED != 0,
                path2: has_path2.then(|| path(cstr(&e.path2, e.path2_len))),
                path2_truncated: has_path2 && e.flags & FLAG_PATH2_TRUNCATED != 0,
                base: (e.base_ino != 0).then_some((e.base_dev, e.base_ino)),
                base2: (has_path2 && e.base2_ino != 0).then_some((e.base2_dev, e.base2_ino)),
            })
        }
    };
    Ok(Record {
        lost_before: h.lost_before,
        ktime_ns: h.ktime_ns,
        event,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use monitor_common::COMM_LEN;

    fn bytes_of<T>(v: &T) -> Vec<u8> {
        // SAFETY: test-only view of a #[repr(C)] POD value.
        unsafe { std::slice::from_raw_parts(v as *const T as *const u8, size_of::<T>()).to_vec() }
    }

    fn actor_fixture() -> Actor {
        let mut comm = [0u8; COMM_LEN];
        comm[..3].copy_from_slice(b"sed");
        let mut exe = [[0u8; monitor_common::EXE_PART_LEN]; monitor_common::EXE_PARTS];
        exe[0][..3].copy_from_slice(b"sed");
        exe[1][..3].copy_from_slice(b"bin");
        exe[2][..3].copy_from_slice(b"usr");
        exe[3][..1].copy_from_slice(b"/");
        Actor {
            pid: 10,
            tgid: 10,
            ppid: 1,
            uid: 0,
            gid: 0,
            _pad: 0,
            cgroup_id: 7,
            comm,
            exe,
            exe_parts: 4,
            exe_complete: 1,
        }
    }

    fn file_event(op_: u32, path_: &[u8]) -> FileEvent {
        let mut e: FileEvent = unsafe { std::mem::zeroed() };
        e.header = Header {
            kind: kind::FILE,
            size: size_of::<FileEvent>() as u32,
            lost_before: 2,
            _pad: 0,
            ktime_ns: 5,
        };
        e.actor = actor_fixture();
        e.op = op_;
        e.flags = FLAG_MATCH_NAME;
        e.path[..path_.len()].copy_from_slice(path_);
        e.path_len = path_.len() as u32;
        e.path2[..3].copy_from_slice(b"new");
        e.path2_len = 3;
        e
    }

    #[test]
    fn decodes_rename() {
        let r = record(&bytes_of(&file_event(op::RENAME, b"/etc/x.conf"))).unwrap();
        assert_eq!(r.lost_before, 2);
        let Event::File(f) = r.event else { panic!() };
        assert_eq!(f.op, FileOp::Rename);
        assert_eq!(f.path, PathBuf::from("/etc/x.conf"));
        assert_eq!(f.path2, Some(PathBuf::from("new")));
        assert_eq!(f.actor.comm, b"sed");
        assert_eq!(f.actor.exe, Some(PathBuf::from("/usr/bin/sed")));
        assert_eq!(f.matched_by, MatchedBy::Name);
    }

    #[test]
    fn exe_path_from_dentry_names() {
        let mut a = actor_fixture();
        assert_eq!(exe_path(&a), Some(PathBuf::from("/usr/bin/sed")));
        // The walk stopped before the root: the path says so.
        a.exe_complete = 0;
        a.exe_parts = 2;
        assert_eq!(exe_path(&a), Some(PathBuf::from("…/bin/sed")));
        a.exe_parts = 0;
        assert_eq!(exe_path(&a), None);
        a.exe_parts = 99; // clamped, never an out-of-bounds read
        assert!(exe_path(&a).is_some());
    }

    #[test]
    fn rejects_short_unknown_and_mismatched() {
        let good = bytes_of(&file_event(op::OPEN, b"a"));
        assert!(matches!(
            record(&good[..10]),
            Err(RecordError::Short { .. })
        ));
        assert!(matches!(
            record(&good[..100]),
            Err(RecordError::Short { .. })
        ));
        let mut bad = file_event(op::OPEN, b"a");
        bad.header.kind = 99;
        assert_eq!(record(&bytes_of(&bad)), Err(RecordError::UnknownKind(99)));
        let mut bad = file_event(op::OPEN, b"a");
        bad.header.size = 12;
        assert!(matches!(
            record(&bytes_of(&bad)),
            Err(RecordError::SizeMismatch { .. })
        ));
        let bad = file_event(77, b"a");
        assert_eq!(record(&bytes_of(&bad)), Err(RecordError::UnknownOp(77)));
    }

    /// The blind-spot operations decode to their variants, with a path only where the
    /// kernel sends one, and the ancestor flag reads as a name match.
    #[test]
    fn decodes_blind_spot_operations() {
        let cases = [
            (blind::op::RMDIR, FileOp::Rmdir, true),
            (blind::op::MOUNT, FileOp::Mount, true),
            (blind::op::UMOUNT, FileOp::Umount, true),
            (blind::op::MMAP_SHARED, FileOp::MmapShared, false),
            (blind::op::MSYNC, FileOp::Msync, false),
            (blind::op::MUNMAP, FileOp::Munmap, false),
            (blind::op::MMAP_EXIT, FileOp::MmapExit, false),
            (blind::op::IO_URING, FileOp::IoUring, false),
            (blind::op::IO_URING_SUBMIT, FileOp::IoUringSubmit, false),
        ];
        for (wire, want, has_path) in cases {
            let mut e = file_event(wire, b"/var/lib");
            e.flags = FLAG_MATCH_NAME | blind::FLAG_MATCH_ANCESTOR;
            let Event::File(f) = record(&bytes_of(&e)).unwrap().event else {
                panic!()
            };
            assert_eq!(f.op, want);
            assert_eq!(f.path.as_os_str().is_empty(), !has_path, "{want:?}");
            assert_eq!(f.path2, None, "{want:?}");
            assert!(!f.op.as_str().is_empty());
        }
        let mut e = file_event(op::RENAME, b"kl/");
        e.flags = FLAG_MATCH_NAME | blind::FLAG_MATCH_ANCESTOR;
        let Event::File(f) = record(&bytes_of(&e)).unwrap().event else {
            panic!()
        };
        assert_eq!(f.matched_by, MatchedBy::Name);
        assert_eq!(
            record(&bytes_of(&file_event(41, b"x"))),
            Err(RecordError::UnknownOp(41))
        );
    }

    #[test]
    fn path_len_is_clamped() {
        let mut e = file_event(op::UNLINK, b"abc");
        e.path_len = 100_000;
        let Event::File(f) = record(&bytes_of(&e)).unwrap().event else {
            panic!()
        };
        assert_eq!(f.path, PathBuf::from("abc"));
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        let mut seed = 0x9e3779b97f4a7c15u64;
        for n in 0..2000usize {
            let len = n % (size_of::<FileEvent>() + 16);
            let buf: Vec<u8> = (0..len)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    seed as u8
                })
                .collect();
            let _ = record(&buf);
            let mut e = bytes_of(&file_event(op::OPEN, b"x"));
            let i = n % e.len();
            e[i] = seed as u8;
            let _ = record(&e);
        }
    }
}

//! Types shared by the kernel programs (`monitor-ebpf`) and the daemon (`monitor`).
//!
//! Every record that crosses the ring buffer starts with a [`Header`]; userspace reads the
//! header's `kind` and `size` with length checks before it touches the rest (see
//! `monitor/src/decode.rs`). Nothing is transmuted from an unchecked id.
#![no_std]

/// Bytes kept of a path as the process gave it. Longer paths are truncated and flagged
/// ([`FLAG_PATH_TRUNCATED`]); the inode match in the kernel does not depend on the path.
pub const PATH_LEN: usize = 256;
/// The kernel's TASK_COMM_LEN.
pub const COMM_LEN: usize = 16;
/// Path components of an actor's executable kept, and bytes per component.
pub const EXE_PARTS: usize = 6;
pub const EXE_PART_LEN: usize = 32;
/// Bytes of a basename in the watched-names map (NUL padded). Longer names cannot be watched.
pub const NAME_LEN: usize = 64;

/// Record kinds. Values are stable: they are the wire format between kernel and userspace.
pub mod kind {
    pub const EXEC: u32 = 1;
    pub const EXIT: u32 = 2;
    pub const FILE: u32 = 3;
}

/// File operations reported by the kernel programs.
pub mod op {
    pub const OPEN: u32 = 1;
    pub const CLOSE: u32 = 2;
    pub const RENAME: u32 = 3;
    pub const UNLINK: u32 = 4;
    pub const TRUNCATE: u32 = 5;
    pub const FTRUNCATE: u32 = 6;
    pub const LINK: u32 = 7;
    pub const SYMLINK: u32 = 8;
    /// A watched directory name created (a drop-in dir that did not exist): userspace
    /// starts watching it.
    pub const MKDIR: u32 = 9;
    /// A process that had a watched file open for writing exited: whatever it wrote, through
    /// any fd (a shell's `>` dup2s the fd to 1 and closes the original before writing), is
    /// final now.
    pub const WRITER_EXIT: u32 = 10;
}

/// `path` was longer than [`PATH_LEN`] (or unreadable) and is cut.
pub const FLAG_PATH_TRUNCATED: u32 = 1;
/// `path2` likewise.
pub const FLAG_PATH2_TRUNCATED: u32 = 2;
/// The open was matched by the inode of the opened file (a watched file, under any name).
pub const FLAG_MATCH_INODE: u32 = 4;
/// The open was matched by the inode of the opened file's parent directory.
pub const FLAG_MATCH_PARENT: u32 = 8;
/// Matched by the basename (watched-names map or the `.conf` suffix rule).
pub const FLAG_MATCH_NAME: u32 = 16;

/// Values of the watched-inodes map: what about this inode is watched.
pub mod watch {
    /// A file an evaluation read: any write-intent open or truncate of it, by any name.
    pub const FILE: u32 = 1;
    /// A directory an evaluation listed (a drop-in directory): any child created, opened for
    /// writing, renamed or removed.
    pub const DIR_ANY: u32 = 2;
    /// A directory holding names an evaluation looked for (found or not): only those
    /// children count, as `(directory inode, name hash)` keys of the watched-entries map.
    pub const DIR_NAMED: u32 = 4;
}

/// Values of the watched-names map (keyed by [`name_hash`]): what a basename is to the watch
/// set. A path operation on a path with a '/' is decided by its last two components: the
/// name, and the name of the directory it is in.
pub mod name_bits {
    /// A name an evaluation looked for (an input, found or not), in some directory.
    pub const ENTRY: u8 = 1;
    /// The name of a directory holding such names.
    pub const PARENT: u8 = 2;
    /// The name of a listed (drop-in) directory: any child counts.
    pub const LISTED: u8 = 4;
    /// A name that reopens a file under another name (`/dev/stdout`): opens only, the
    /// walk decides.
    pub const REOPEN: u8 = 8;
    /// The name of an input that exists as a regular file: a symlink or hard link made to
    /// it gives that file a name that is not watched (see `state::LINKED`, `state::SYMLINKED`).
    pub const FILE: u8 = 16;
}

/// Indices of the `STATE` array (one u64 each), shared by the programs and userspace.
pub mod state {
    /// Write-intent opens stashed at sys_enter and not yet taken at sys_exit: while it is 0,
    /// which is nearly always, an open's sys_exit returns after one array load.
    pub const PENDING_OPENS: u32 = 0;
    /// `mode::*` bits, set by userspace.
    pub const MODE: u32 = 1;
    /// Set by the kernel programs to the time (`bpf_ktime_get_ns`, CLOCK_MONOTONIC) of the
    /// last hard link made to a watched name: a watched file may now be opened under a name
    /// that is not watched. While it is later than
    /// [`LINKED_SEEN`], every write-intent open is walked, from the very next one (userspace
    /// learns of the link only from its record).
    pub const LINKED: u32 = 2;
    /// Set by userspace after it rebuilt its watch set: hard links made before this time
    /// (CLOCK_MONOTONIC ns) are in the set (a file's `st_nlink` > 1 sets `mode::WALK_ALL` for
    /// as long as the link exists), so they no longer need every open walked. Without it the
    /// walk would stay on for good after the first hard link, even once it is gone.
    pub const LINKED_SEEN: u32 = 3;
    /// Set (to 1) by the kernel programs, never cleared: a symlink was made to a watched
    /// file's name, to an fd path or to a path that could not be read. Nothing in the watch
    /// set stands for it (a symlink leaves `st_nlink` alone), so every write-intent open is
    /// walked from then on.
    pub const SYMLINKED: u32 = 4;
    pub const COUNT: u32 = 5;
}

/// Bits of `state::MODE`.
pub mod mode {
    /// Every write-intent open takes the fd-table walk at sys_exit, whatever its name: set
    /// while a watched file has another hard link (`st_nlink > 1`) or a watched name does not
    /// fit the names map, i.e. while a name cannot decide.
    pub const WALK_ALL: u64 = 1;
}

/// FNV-1a 64 offset basis and prime, for [`name_hash`].
pub const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
pub const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// The watched-names filter: a bitmap of `NAME_FILTER_WORDS` u64 words (an Array map, whose
/// lookups the kernel inlines) with one bit per watched [`name_hash`]. The programs look a
/// basename up in the watched-names hash map (a helper call) only when its bit is set, so an
/// unrelated write-intent open costs a load and a mask instead. Userspace sets a name's bit
/// before the name enters the map and clears it only after the name has left, so a watched
/// name's bit is always set.
pub const NAME_FILTER_WORDS: u32 = 1024;

/// (word index, bit mask) of a [`name_hash`] in the watched-names filter: the hash's top 16
/// bits (FNV-1a's last step is a multiplication, so they depend on every byte).
#[inline(always)]
pub const fn name_filter_bit(hash: u64) -> (u32, u64) {
    let bit = hash >> 48;
    ((bit >> 6) as u32, 1u64 << (bit & 63))
}

/// The tail filter: a second bitmap of `TAIL_FILTER_WORDS` u64 words, one bit per watched
/// name's last four bytes ([`name_tail`]) and one for `conf` (`*.conf` drop-ins are decided
/// at exit, by their directory). It is the programs' first test of a write-intent open's
/// path, before the basename is scanned: when the path's last four bytes hold no '/' they
/// are the basename's own last four, and if they are not all `[0-9a-f-]` (an fd number or
/// a `map_files` range, which reopen another file) and their bit is clear, the basename is
/// no watched name and no `*.conf`. A shorter basename (a '/' among the last four bytes)
/// always takes the scan, so names under four bytes need no bit. Kept like the names filter:
/// bits set before a name enters, cleared after it left.
pub const TAIL_FILTER_WORDS: u32 = 1024;

/// The last four bytes of a name, as the programs load them (little-endian); `None` when it
/// is shorter.
pub fn name_tail(name: &[u8]) -> Option<u32> {
    let t: [u8; 4] = name.get(name.len().checked_sub(4)?..)?.try_into().ok()?;
    Some(u32::from_le_bytes(t))
}

/// (word index, bit mask) of a [`name_tail`] in the tail filter (a multiplicative hash's
/// top 16 bits).
#[inline(always)]
pub const fn tail_filter_bit(tail: u32) -> (u32, u64) {
    let bit = tail.wrapping_mul(0x9E37_79B1) >> 16;
    (bit >> 6, 1u64 << (bit & 63))
}

/// A byte of an fd number or a `map_files` range (`[0-9a-f-]`).
#[inline(always)]
pub const fn is_hexdash(b: u8) -> bool {
    b.is_ascii_digit() || (b >= b'a' && b <= b'f') || b == b'-'
}

/// The key of a basename in the watched-names and watched-entries maps: FNV-1a over its
/// bytes taken from the LAST to the first (the kernel finds a basename by scanning back
/// from the end of the path). A collision only makes the kernel look closer (a walk, or a
/// record that userspace checks), never miss.
pub fn name_hash(name: &[u8]) -> u64 {
    let mut h = FNV_OFFSET;
    let mut i = name.len();
    while i > 0 {
        i -= 1;
        h ^= name[i] as u64;
        h = h.wrapping_mul(FNV_PRIME);
    }
    h
}

/// Key of the watched-entries map: a name looked for in a directory (found or not).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EntryKey {
    /// The directory's device (kernel encoding) and inode.
    pub dev: u32,
    pub _pad: u32,
    pub ino: u64,
    /// [`name_hash`] of the name.
    pub name: u64,
}

/// Values of the `TRACKED` map (per tgid): why its exit is reported.
pub mod tracked {
    /// A kubelet whose exec was seen (or that userspace found running): its exit is a
    /// `kind::EXIT` record.
    pub const KUBELET: u8 = 1;
    /// A process that opened a watched file for writing: its exit closes every fd it still
    /// had (dup'ed ones too), so its exit is a `op::WRITER_EXIT` file record.
    pub const WRITER: u8 = 2;
}

/// Per-CPU counters, indices into the `COUNTERS` per-CPU array.
pub mod counter {
    /// Execs seen by the exec program.
    pub const EXEC_SEEN: u32 = 0;
    /// Execs the kernel dropped because the comm is not watched.
    pub const EXEC_FILTERED: u32 = 1;
    /// File syscalls examined (write-intent opens, renames, unlinks, ...).
    pub const FILE_SEEN: u32 = 2;
    /// File syscalls the kernel dropped because nothing about them is watched.
    pub const FILE_FILTERED: u32 = 3;
    /// Records written to the ring buffer.
    pub const SENT: u32 = 4;
    /// Records lost: ring-buffer reservation failed.
    pub const DROPPED: u32 = 5;
    /// Exits of tracked kubelets reported.
    pub const EXIT_SEEN: u32 = 6;
    /// Enter/exit pairing failures (stash map full).
    pub const STASH_FULL: u32 = 7;
    pub const COUNT: u32 = 8;
}

/// Starts every ring-buffer record.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct Header {
    /// One of [`kind`].
    pub kind: u32,
    /// Size in bytes of the whole record, header included.
    pub size: u32,
    /// Records this CPU failed to reserve since its previous successful one.
    pub lost_before: u32,
    pub _pad: u32,
    /// `bpf_ktime_get_boot_ns()` at the event: monotonic, includes suspend.
    pub ktime_ns: u64,
}

/// The task that did something.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct Actor {
    /// Thread id.
    pub pid: u32,
    /// Process id (thread-group id).
    pub tgid: u32,
    /// Parent's process id (real_parent->tgid; 0 when kernel offsets were unavailable).
    pub ppid: u32,
    pub uid: u32,
    pub gid: u32,
    pub _pad: u32,
    pub cgroup_id: u64,
    pub comm: [u8; COMM_LEN],
    /// The executable's path, as the names of its dentry and its parents, innermost first
    /// (`sed`, `bin`, `usr`), read from task->mm->exe_file in the kernel: a short-lived
    /// writer is gone from /proc before userspace could read its exe link. Each name is
    /// NUL-padded (cut at EXE_PART_LEN - 1 bytes); an empty one ends the chain.
    pub exe: [[u8; EXE_PART_LEN]; EXE_PARTS],
    /// How many parts were filled, and whether the walk reached the filesystem's root
    /// (`exe_complete` = 1) or stopped at EXE_PARTS.
    pub exe_parts: u32,
    pub exe_complete: u32,
}

/// `kind::EXEC` or `kind::EXIT`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct ProcEvent {
    pub header: Header,
    pub actor: Actor,
    /// Exit: the task's exit_code (status as wait(2) encodes it); exec: 0.
    pub exit_code: i32,
    pub flags: u32,
    /// Bytes used in `path` (no NUL).
    pub path_len: u32,
    pub _pad: u32,
    /// Exec: the filename the kernel executed (sched_process_exec's `filename`).
    pub path: [u8; PATH_LEN],
}

/// `kind::FILE`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct FileEvent {
    pub header: Header,
    pub actor: Actor,
    /// One of [`op`].
    pub op: u32,
    /// `FLAG_*` bits.
    pub flags: u32,
    /// The syscall's return value (fd for opens, 0 or -errno otherwise).
    pub ret: i64,
    /// The dirfd for `*at` syscalls (`AT_FDCWD` = -100), or the fd for close/ftruncate; -1 if none.
    pub dirfd: i32,
    /// The second dirfd (renameat/linkat new dir), -1 if none.
    pub dirfd2: i32,
    /// Open flags, rename/link flags.
    pub sys_flags: u64,
    /// Device (kernel encoding: major << 20 | minor) and inode matched, when known.
    pub dev: u32,
    pub path_len: u32,
    pub ino: u64,
    pub path2_len: u32,
    pub _pad: u32,
    /// Path operations: the directory a relative `path` / `path2` was given against (the
    /// dirfd's or the cwd's inode, read at sys_enter), so that userspace can place the path
    /// when the process is gone before its /proc entries could be read; 0 for an absolute
    /// path, a symlink's target, or without BTF.
    pub base_dev: u32,
    pub base2_dev: u32,
    pub base_ino: u64,
    pub base2_ino: u64,
    /// The path as the process gave it (old name for rename/link, the link path for symlink).
    pub path: [u8; PATH_LEN],
    /// The second path: rename/link new name, symlink target.
    pub path2: [u8; PATH_LEN],
}

/// Key of the watched-inodes map.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InodeKey {
    /// Kernel encoding: major << 20 | minor.
    pub dev: u32,
    pub _pad: u32,
    pub ino: u64,
}

/// Key of the watched-names and watched-comms maps: NUL-padded bytes.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct NameKey {
    pub name: [u8; NAME_LEN],
}

/// Key of the watched-comms map (the kernel's view of an executable's basename).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CommKey {
    pub comm: [u8; COMM_LEN],
}

/// Offset of the first argument in a `syscalls:sys_enter_*` record (`struct
/// trace_event_raw_sys_enter`: the 8-byte common header, `__syscall_nr` padded to 8, then
/// `args[6]` of 8 bytes each), and of `ret` in a `sys_exit_*` record. The programs load them
/// at these constant offsets straight from their context (a verifier requirement for a direct
/// load); userspace checks every tracepoint's tracefs `format` against them before loading.
pub const SYS_ARG0: u32 = 16;
pub const SYS_RET: u32 = 16;

/// Offsets the kernel programs need, found at load time by userspace: tracepoint fields from
/// tracefs `format` files, kernel structure members from BTF. A zero `task_real_parent`
/// means "unknown" and the program leaves the dependent fields at 0.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct Offsets {
    // sched:sched_process_exec
    pub exec_filename: u32,
    // syscalls:sys_enter_* argument offsets. Arguments are 8 bytes wide on 64-bit kernels;
    // each is the offset of the nth argument of that tracepoint.
    pub sys_arg: [u32; 6],
    // syscalls:sys_exit_* `ret`.
    pub sys_ret: u32,
    // BTF: struct members (bytes).
    pub task_real_parent: u32,
    pub task_tgid: u32,
    pub task_files: u32,
    pub task_exit_code: u32,
    pub files_fdt: u32,
    pub fdt_fd: u32,
    pub fdt_max_fds: u32,
    pub file_inode: u32,
    pub file_dentry: u32,
    pub dentry_parent: u32,
    pub dentry_inode: u32,
    /// `dentry.d_name` + `qstr.name`: the pointer to the dentry's name.
    pub dentry_name: u32,
    pub inode_ino: u32,
    pub inode_sb: u32,
    pub sb_dev: u32,
    /// Non-zero when the file-table walk offsets above are all known.
    pub have_files: u32,
    /// Non-zero when real_parent/tgid are known.
    pub have_parent: u32,
    /// task_struct.mm and mm_struct.exe_file, for the actor's executable.
    pub task_mm: u32,
    pub mm_exe_file: u32,
    /// Non-zero when the exe walk offsets are known (needs have_files too).
    pub have_exe: u32,
    /// task_struct.fs, fs_struct.pwd.dentry: the current directory, for path operations on a
    /// bare name (decided by (directory, name) in the kernel).
    pub task_fs: u32,
    pub fs_pwd_dentry: u32,
    /// Non-zero when the two above are known (needs have_files too).
    pub have_cwd: u32,
}

impl Offsets {
    /// All unknown; the kernel programs' globals start as this.
    pub const ZERO: Offsets = Offsets {
        exec_filename: 0,
        sys_arg: [0; 6],
        sys_ret: 0,
        task_real_parent: 0,
        task_tgid: 0,
        task_files: 0,
        task_exit_code: 0,
        files_fdt: 0,
        fdt_fd: 0,
        fdt_max_fds: 0,
        file_inode: 0,
        file_dentry: 0,
        dentry_parent: 0,
        dentry_inode: 0,
        dentry_name: 0,
        inode_ino: 0,
        inode_sb: 0,
        sb_dev: 0,
        have_files: 0,
        have_parent: 0,
        task_mm: 0,
        mm_exe_file: 0,
        have_exe: 0,
        task_fs: 0,
        fs_pwd_dentry: 0,
        have_cwd: 0,
    };
}

/// A write-intent open waiting for its sys_exit (key: pid_tgid).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct OpenStash {
    /// User pointer to the path.
    pub path: u64,
    pub flags: u64,
    pub dirfd: i64,
}

// The records' layouts, checked at compile time on both sides of the ring buffer: each is the
// sum of its fields (no implicit padding the kernel could leave unwritten) and a multiple of 8
// bytes (the ring buffer's records and the maps' keys stay aligned). A field added or resized
// changes the sum here too.
const _: () = {
    use core::mem::size_of;
    const U32: usize = 4;
    const U64: usize = 8;
    assert!(size_of::<Header>() == 4 * U32 + U64);
    assert!(size_of::<Actor>() == 6 * U32 + U64 + COMM_LEN + EXE_PARTS * EXE_PART_LEN + 2 * U32);
    assert!(
        size_of::<ProcEvent>() == size_of::<Header>() + size_of::<Actor>() + 4 * U32 + PATH_LEN
    );
    assert!(
        size_of::<FileEvent>()
            == size_of::<Header>()
                + size_of::<Actor>()
                + 2 * U32
                + U64
                + 2 * U32
                + U64
                + 2 * U32
                + U64
                + 2 * U32
                + 2 * U32
                + 2 * U64
                + 2 * PATH_LEN
    );
    assert!(size_of::<InodeKey>() == 2 * U32 + U64);
    assert!(size_of::<EntryKey>() == 2 * U32 + 2 * U64);
    assert!(size_of::<NameKey>() == NAME_LEN);
    assert!(size_of::<CommKey>() == COMM_LEN);
    assert!(size_of::<OpenStash>() == 3 * U64);
    assert!(size_of::<Header>().is_multiple_of(8));
    assert!(size_of::<Actor>().is_multiple_of(8));
    assert!(size_of::<ProcEvent>().is_multiple_of(8));
    assert!(size_of::<FileEvent>().is_multiple_of(8));
};

#[cfg(feature = "user")]
mod user {
    use super::*;
    // SAFETY: plain-old-data, #[repr(C)], no padding holes that matter for equality (all
    // padding is explicit and zeroed by the constructors).
    unsafe impl aya::Pod for InodeKey {}
    unsafe impl aya::Pod for EntryKey {}
    unsafe impl aya::Pod for NameKey {}
    unsafe impl aya::Pod for CommKey {}
    unsafe impl aya::Pod for Offsets {}
    unsafe impl aya::Pod for OpenStash {}
}

impl NameKey {
    /// `None` if the name does not fit.
    pub fn new(name: &[u8]) -> Option<Self> {
        if name.is_empty() || name.len() >= NAME_LEN {
            return None;
        }
        let mut k = NameKey {
            name: [0; NAME_LEN],
        };
        k.name[..name.len()].copy_from_slice(name);
        Some(k)
    }
}

impl CommKey {
    /// The kernel truncates comm to 15 bytes; so does this.
    pub fn new(name: &[u8]) -> Self {
        let mut k = CommKey {
            comm: [0; COMM_LEN],
        };
        let n = name.len().min(COMM_LEN - 1);
        k.comm[..n].copy_from_slice(&name[..n]);
        k
    }
}

/// What the blind-spot programs add (`ancestors.rs`, `mount.rs`, `mmap.rs`, `handle.rs`,
/// `io_uring.rs` in monitor-ebpf): their operations, flags and load-time offsets. Operation
/// values start at 32 so that they never meet [`op`]'s.
pub mod blind {
    /// File operations (the `op` field of a [`FileEvent`](super::FileEvent)).
    pub mod op {
        /// rmdir(2) of a directory on the path of an input.
        pub const RMDIR: u32 = 32;
        /// mount(2) or move_mount(2) (the only ways a tree becomes visible: open_tree and
        /// fsmount make detached ones); `path` is the target, `dirfd` move_mount's to_dfd.
        pub const MOUNT: u32 = 33;
        /// umount2(2); `path` is the target.
        pub const UMOUNT: u32 = 34;
        /// mmap(MAP_SHARED) of a watched file: writes through it need no syscall. `dirfd` is
        /// the fd, `sys_flags` is `prot << 32 | flags`.
        pub const MMAP_SHARED: u32 = 35;
        /// msync(2) by a process that mapped a watched file shared.
        pub const MSYNC: u32 = 36;
        /// munmap(2) by such a process.
        pub const MUNMAP: u32 = 37;
        /// Such a process exited (its mappings are gone, unless a child inherited them).
        pub const MMAP_EXIT: u32 = 38;
        /// An io_uring request completed: on a watched file (`FLAG_MATCH_INODE`, with `dev`
        /// and `ino`), or a path operation whose file the tracepoint cannot name (no match
        /// flag). `sys_flags` is the opcode, `ret` the result.
        pub const IO_URING: u32 = 39;
        /// An io_uring request sent when submitted, because its completion will not be posted
        /// (`IOSQE_CQE_SKIP_SUCCESS`); as `IO_URING` otherwise, but it has not run yet, so
        /// userspace evaluates again later.
        pub const IO_URING_SUBMIT: u32 = 40;
    }

    /// A rename/unlink/rmdir matched because its last component (trailing slashes aside) is
    /// the name of a directory on the path of an input, or a mount op (always sent).
    pub const FLAG_MATCH_ANCESTOR: u32 = 1 << 16;
    /// The record comes from an io_uring completion (an `OPEN` through the ring).
    pub const FLAG_VIA_IO_URING: u32 = 1 << 17;

    /// io_uring opcodes (include/uapi/linux/io_uring.h; stable ABI).
    pub mod uring {
        pub const READV: u8 = 1;
        pub const READ_FIXED: u8 = 4;
        pub const OPENAT: u8 = 18;
        pub const READ: u8 = 22;
        pub const OPENAT2: u8 = 28;
        pub const RENAMEAT: u8 = 35;
        pub const UNLINKAT: u8 = 36;
        pub const MKDIRAT: u8 = 37;
        pub const SYMLINKAT: u8 = 38;
        pub const LINKAT: u8 = 39;
        /// `io_kiocb.flags` bits that mirror the SQE's (`REQ_F_*_BIT = IOSQE_*_BIT`).
        pub const REQ_F_FIXED_FILE: u64 = 1 << 0;
        pub const REQ_F_CQE_SKIP: u64 = 1 << 6;
    }

    /// Offsets the blind-spot programs need, from tracefs and BTF at load time (the
    /// `BLIND_OFFSETS` global). `have_uring` = 0: the io_uring program does nothing.
    #[repr(C)]
    #[derive(Clone, Copy, Debug, Default)]
    pub struct BlindOffsets {
        /// io_uring:io_uring_complete `req` and `res`.
        pub uring_req: u32,
        pub uring_res: u32,
        /// BTF: io_kiocb.opcode and io_kiocb.file.
        pub kiocb_opcode: u32,
        pub kiocb_file: u32,
        pub have_uring: u32,
        /// io_uring:io_uring_submit_req `ctx`, `req`, `opcode`, `flags`.
        pub sub_ctx: u32,
        pub sub_req: u32,
        pub sub_opcode: u32,
        pub sub_flags: u32,
        /// BTF: io_kiocb.cqe.fd (the fd or fixed-file index a request names).
        pub kiocb_fd: u32,
        /// BTF: the ring's fixed-file table (io_ring_ctx.file_table.data.nr and .nodes) and
        /// io_rsrc_node.file_ptr; `have_fixed` = 0 when this kernel lays them out otherwise.
        pub ctx_files_nr: u32,
        pub ctx_files_nodes: u32,
        pub rsrc_file_ptr: u32,
        pub have_fixed: u32,
        pub have_submit: u32,
        pub _pad: u32,
    }

    impl BlindOffsets {
        pub const ZERO: BlindOffsets = BlindOffsets {
            uring_req: 0,
            uring_res: 0,
            kiocb_opcode: 0,
            kiocb_file: 0,
            have_uring: 0,
            sub_ctx: 0,
            sub_req: 0,
            sub_opcode: 0,
            sub_flags: 0,
            kiocb_fd: 0,
            ctx_files_nr: 0,
            ctx_files_nodes: 0,
            rsrc_file_ptr: 0,
            have_fixed: 0,
            have_submit: 0,
            _pad: 0,
        };
    }

    const _: () = assert!(core::mem::size_of::<BlindOffsets>() == 64);

    #[cfg(feature = "user")]
    // SAFETY: #[repr(C)] integers only, no implicit padding.
    unsafe impl aya::Pod for BlindOffsets {}
}

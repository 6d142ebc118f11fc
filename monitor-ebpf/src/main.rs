//! kubelet-drift's kernel programs. Tracepoints only: they load on every kernel this product
//! supports (no kprobes, fentry or LSM needed). Each program exits early on anything that is
//! not about the kubelet or a watched file, so that userspace wakes only for what matters.
//!
//! | file          | programs                                   | tracepoints (kernel needed)                       |
//! |---------------|--------------------------------------------|---------------------------------------------------|
//! | `exec.rs`     | `kd_exec`                                  | sched:sched_process_exec (3.4)                    |
//! | `exit.rs`     | `kd_exit`                                  | sched:sched_process_exit (2.6.32)                 |
//! | `open.rs`     | `kd_open`, `kd_openat`, `kd_openat2`, `kd_creat` | syscalls:sys_enter_open/openat/creat, openat2 (5.6) |
//! | `close.rs`    | `kd_close`                                 | syscalls:sys_enter_close                          |
//! | `path_ops.rs` | `kd_rename*`, `kd_unlink*`, `kd_link*`, `kd_symlink*`, `kd_mkdir*`, `kd_truncate`, `kd_ftruncate` | syscalls:sys_enter_* |
//! | `sys_exit.rs` | `kd_open_exit`, `kd_path_exit` (each attached to the `sys_exit_*` of its family) | syscalls:sys_exit_* |
//! | `ancestors.rs`| `kd_anc_*`, `kd_blind_exit`: rename/unlink/rmdir of a directory on an input's path | syscalls:sys_enter/exit_* |
//! | `mount.rs`    | `kd_mount`, `kd_move_mount`, `kd_umount`                 | syscalls:sys_enter_mount/move_mount (5.2)/umount |
//! | `mmap.rs`     | `kd_mmap`, `kd_msync`, `kd_munmap`, `kd_mmap_exit`        | syscalls:sys_enter_mmap/msync/munmap, sched_process_exit |
//! | `handle.rs`   | `kd_open_by_handle_at` (its exit is `kd_open_exit`)       | syscalls:sys_enter_open_by_handle_at |
//! | `io_uring.rs` | `kd_uring_complete`                                        | io_uring:io_uring_complete (5.5) |
//!
//! Tracepoint field offsets and kernel structure offsets come from userspace at load time
//! (tracefs `format` files and BTF) through the `OFFSETS` global. The one exception: syscall
//! arguments and `ret` are loaded at constant offsets (`monitor_common::SYS_ARG0`, a direct
//! context load needs one), which userspace checks against tracefs before loading.
// Built for bpfel-unknown-none; on the host (e.g. `cargo build --workspace`) it is an empty
// program, so workspace-wide commands work.
#![cfg_attr(target_arch = "bpf", no_std)]
#![cfg_attr(target_arch = "bpf", no_main)]
#![cfg_attr(target_arch = "bpf", feature(asm_experimental_arch))]

#[cfg(target_arch = "bpf")]
mod ancestors;
#[cfg(target_arch = "bpf")]
mod close;
#[cfg(target_arch = "bpf")]
mod exec;
#[cfg(target_arch = "bpf")]
mod exit;
#[cfg(target_arch = "bpf")]
mod handle;
#[cfg(target_arch = "bpf")]
mod io_uring;
#[cfg(target_arch = "bpf")]
mod mmap;
#[cfg(target_arch = "bpf")]
mod mount;
#[cfg(target_arch = "bpf")]
mod open;
#[cfg(target_arch = "bpf")]
mod path_ops;
#[cfg(target_arch = "bpf")]
mod sys_exit;
#[cfg(target_arch = "bpf")]
mod util;

#[cfg(target_arch = "bpf")]
use aya_ebpf::{
    macros::map,
    maps::{Array, HashMap, LruHashMap, PerCpuArray, RingBuf},
};
#[cfg(target_arch = "bpf")]
use monitor_common::{
    CommKey, EntryKey, FileEvent, InodeKey, NameKey, Offsets, OpenStash, counter, state,
};

/// Set by userspace before load (`EbpfLoader::set_global`).
#[cfg(target_arch = "bpf")]
#[unsafe(no_mangle)]
static OFFSETS: Offsets = Offsets::ZERO;

/// Records to userspace. Userspace may resize it at load time.
#[cfg(target_arch = "bpf")]
#[map]
static EVENTS: RingBuf = RingBuf::with_byte_size(256 * 1024, 0);

/// `counter::*` indices.
#[cfg(target_arch = "bpf")]
#[map]
static COUNTERS: PerCpuArray<u64> = PerCpuArray::with_max_entries(counter::COUNT, 0);

/// Reservations this CPU lost since its last successful one; carried by the next record.
#[cfg(target_arch = "bpf")]
#[map]
static LOST: PerCpuArray<u32> = PerCpuArray::with_max_entries(1, 0);

/// Executable names to report (the kernel's comm: basename cut to 15 bytes).
#[cfg(target_arch = "bpf")]
#[map]
static WATCHED_COMMS: HashMap<CommKey, u8> = HashMap::with_max_entries(64, 0);

// What reaches userspace. A record is sent only if it can change an input of an evaluation:
// - a file it read: by inode (WATCHED_INODES, `watch::FILE`), whatever name or path was used
//   (the fd-table walk at sys_exit sees the opened file itself);
// - a name it looked for and did not find, or found (a unit, a drop-in, a config file that may
//   appear or be replaced): by (directory inode, name hash) in WATCHED_ENTRIES, the directory
//   being marked `watch::DIR_NAMED`;
// - a directory it listed (drop-in directories): by the directory's inode, `watch::DIR_ANY`.
// Userspace puts only regular files and directories in these maps: never a device, a FIFO
// or a socket, and a symlink (a masked unit's link to /dev/null) only as its name.
//
// Deciding by inode costs the fd-table walk, which only sys_exit can take (the file is known
// once opened). To keep it off the write-intent opens of unrelated files, sys_enter first
// looks at the basename the process gave (WATCHED_NAMES, keyed by `name_hash`): a file can be
// opened under another basename only through a hard link (userspace sets `mode::WALK_ALL`
// while a watched file has st_nlink > 1; a new link is a `link` record on a watched name),
// an fd reopen (`/proc/*/fd/N`, `/dev/fd/N`, `map_files`: names of `[0-9a-f-]`, and
// `/dev/std*`, walked), or a symlink or bind mount made before the monitor started (the
// rescan's). Cut or unreadable paths are walked.
// Path operations (rename, unlink, link, symlink, mkdir, truncate) have no fd: a bare name is
// decided by (the dirfd's or cwd's inode, name); a path with a '/' by its last two components
// (`name_bits`), and sent when the directory component cannot decide (`.`, `..`, cut).

/// Basename hashes (`name_hash`) → `name_bits::*`.
#[cfg(target_arch = "bpf")]
#[map]
static WATCHED_NAMES: HashMap<u64, u8> = HashMap::with_max_entries(4096, 0);

/// `monitor_common::name_filter_bit` of every key of WATCHED_NAMES (see NAME_FILTER_WORDS):
/// most basenames are ruled out here, without the hash lookup.
#[cfg(target_arch = "bpf")]
#[map]
static NAME_FILTER: Array<u64> = Array::with_max_entries(monitor_common::NAME_FILTER_WORDS, 0);

/// `monitor_common::tail_filter_bit` of every watched name's last four bytes, and of `conf`
/// (see TAIL_FILTER_WORDS): most write-intent opens are ruled out here, before the scan.
#[cfg(target_arch = "bpf")]
#[map]
static TAIL_FILTER: Array<u64> = Array::with_max_entries(monitor_common::TAIL_FILTER_WORDS, 0);

/// Inodes of watched files and directories; values are `watch::*` bits.
#[cfg(target_arch = "bpf")]
#[map]
static WATCHED_INODES: HashMap<InodeKey, u32> = HashMap::with_max_entries(8192, 0);

/// Names looked for in a directory: (directory inode, `name_hash`).
#[cfg(target_arch = "bpf")]
#[map]
static WATCHED_ENTRIES: HashMap<EntryKey, u8> = HashMap::with_max_entries(8192, 0);

/// `state::*`: the pending-opens gauge and the mode bits.
#[cfg(target_arch = "bpf")]
#[map]
static STATE: Array<u64> = Array::with_max_entries(state::COUNT, 0);

/// A path read at sys_enter of an open, with room in front for `util::component`'s tail read.
#[cfg(target_arch = "bpf")]
#[repr(C)]
pub struct PathScratch {
    pub _front: [u8; monitor_common::NAME_LEN],
    pub path: [u8; monitor_common::PATH_LEN],
}

#[cfg(target_arch = "bpf")]
#[map]
static PATHS: PerCpuArray<PathScratch> = PerCpuArray::with_max_entries(1, 0);

/// `util::component`'s results pass through here so that the verifier sees plain numbers
/// (see there).
#[cfg(target_arch = "bpf")]
#[map]
static COMP: PerCpuArray<[u64; 4]> = PerCpuArray::with_max_entries(1, 0);

/// Processes (tgid) whose exit is reported, with why (`tracked::*` bits): kubelets whose exec
/// was reported, and writers of watched files.
#[cfg(target_arch = "bpf")]
#[map]
static TRACKED: HashMap<u32, u8> = HashMap::with_max_entries(16384, 0);

/// How many processes hold (or held, until they exit) a watched file open for writing. While it
/// is zero, which is nearly always, `kd_close` returns after one array load.
#[cfg(target_arch = "bpf")]
#[map]
static WRITERS: Array<u64> = Array::with_max_entries(1, 0);

/// Write-intent opens between sys_enter and sys_exit, keyed by pid_tgid. A plain
/// (preallocated) hash: every enter is paired with its exit, even for a killed task, so
/// entries do not leak, and it is cheaper than an LRU hash.
#[cfg(target_arch = "bpf")]
#[map]
static OPEN_STASH: HashMap<u64, OpenStash> = HashMap::with_max_entries(16384, 0);

/// Matched path operations between sys_enter and sys_exit, keyed by pid_tgid.
#[cfg(target_arch = "bpf")]
#[map]
static PATH_STASH: HashMap<u64, FileEvent> = HashMap::with_max_entries(1024, 0);

/// Watched files open for writing, keyed by tgid << 32 | fd, so that their close is reported.
#[cfg(target_arch = "bpf")]
#[map]
static OPEN_FDS: LruHashMap<u64, InodeKey> = LruHashMap::with_max_entries(4096, 0);

/// Room to build a FileEvent (too large for the 512-byte stack).
#[cfg(target_arch = "bpf")]
#[map]
static SCRATCH: PerCpuArray<FileEvent> = PerCpuArray::with_max_entries(1, 0);

/// Set by userspace before load, for the blind-spot programs (io_uring offsets).
#[cfg(target_arch = "bpf")]
#[unsafe(no_mangle)]
static BLIND_OFFSETS: monitor_common::blind::BlindOffsets =
    monitor_common::blind::BlindOffsets::ZERO;

/// Names of the directories on the paths of the inputs (and of watched directories): a
/// rename, unlink or rmdir whose last component is one of them is sent (`ancestors.rs`).
#[cfg(target_arch = "bpf")]
#[map]
static ANCESTOR_NAMES: HashMap<NameKey, u8> = HashMap::with_max_entries(1024, 0);

/// Matched ancestor operations and mount operations between sys_enter and sys_exit, keyed by
/// pid_tgid (`kd_blind_exit` sends them with their result).
#[cfg(target_arch = "bpf")]
#[map]
static BLIND_STASH: HashMap<u64, FileEvent> = HashMap::with_max_entries(256, 0);

/// Processes (tgid) that mapped a watched file shared: their msync, munmap and exit are sent.
#[cfg(target_arch = "bpf")]
#[map]
static MMAP_TGIDS: HashMap<u32, u8> = HashMap::with_max_entries(1024, 0);

/// How many entries `MMAP_TGIDS` holds: while 0 (nearly always), msync/munmap/exit return
/// after one array load.
#[cfg(target_arch = "bpf")]
#[map]
static MMAP_ANY: Array<u64> = Array::with_max_entries(1, 0);

#[cfg(target_arch = "bpf")]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[cfg(not(target_arch = "bpf"))]
fn main() {
    eprintln!("kubelet-drift-ebpf is built for bpfel-unknown-none (see monitor/build.rs)");
}

//! Helpers shared by the programs: counters, the actor, ring-buffer records, path components,
//! and the matchers (by inode through the task's file table; by (directory, name)).

use aya_ebpf::{
    EbpfContext as _,
    helpers::{
        bpf_get_current_comm, bpf_get_current_pid_tgid, bpf_get_current_uid_gid, bpf_ktime_get_ns,
        bpf_probe_read_kernel, bpf_probe_read_kernel_str_bytes, bpf_probe_read_user_str_bytes,
    },
    programs::TracePointContext,
};
use monitor_common::{
    Actor, EXE_PARTS, EntryKey, FLAG_MATCH_INODE, FLAG_MATCH_PARENT, FNV_OFFSET, FNV_PRIME,
    FileEvent, Header, InodeKey, NAME_LEN, PATH_LEN, counter, mode, state, watch,
};

use crate::{
    COMP, COUNTERS, EVENTS, LOST, SCRATCH, WATCHED_ENTRIES, WATCHED_INODES, WATCHED_NAMES,
};

/// Reads one field of the `OFFSETS` global. `read_volatile` keeps the compiler from folding
/// the zero initialiser into the code: userspace rewrites the value before load.
macro_rules! off {
    ($field:ident) => {{
        #[allow(unused_unsafe)]
        let v = unsafe { core::ptr::read_volatile(&raw const crate::OFFSETS.$field) };
        v
    }};
}
pub(crate) use off;

#[inline(always)]
pub fn count(index: u32) {
    if let Some(p) = COUNTERS.get_ptr_mut(index) {
        unsafe { *p += 1 };
    }
}

/// Called when a ring-buffer reservation fails: counted, and remembered for the next record.
#[inline(always)]
pub fn lost() {
    count(counter::DROPPED);
    if let Some(p) = LOST.get_ptr_mut(0) {
        unsafe { *p = (*p).saturating_add(1) };
    }
}

#[inline(always)]
pub fn header(kind: u32, size: usize) -> Header {
    let mut lost_before = 0;
    if let Some(p) = LOST.get_ptr_mut(0) {
        unsafe {
            lost_before = *p;
            *p = 0;
        }
    }
    Header {
        kind,
        size: size as u32,
        lost_before,
        _pad: 0,
        ktime_ns: unsafe { aya_ebpf::helpers::generated::bpf_ktime_get_boot_ns() },
    }
}

#[inline(always)]
fn current_task() -> *const u8 {
    unsafe { aya_ebpf::helpers::generated::bpf_get_current_task() as *const u8 }
}

#[inline(always)]
unsafe fn read_ptr(base: *const u8, offset: u32) -> Option<*const u8> {
    if base.is_null() {
        return None;
    }
    let p: u64 = unsafe { bpf_probe_read_kernel(base.add(offset as usize) as *const u64) }.ok()?;
    if p == 0 { None } else { Some(p as *const u8) }
}

#[inline(always)]
pub fn fill_actor(a: &mut Actor) {
    let id = bpf_get_current_pid_tgid();
    let ug = bpf_get_current_uid_gid();
    a.pid = id as u32;
    a.tgid = (id >> 32) as u32;
    a.uid = ug as u32;
    a.gid = (ug >> 32) as u32;
    a._pad = 0;
    a.cgroup_id = unsafe { aya_ebpf::helpers::generated::bpf_get_current_cgroup_id() };
    a.comm = bpf_get_current_comm().unwrap_or([0; 16]);
    fill_exe(a);
    a.ppid = 0;
    if off!(have_parent) != 0 {
        let task = current_task();
        if let Some(parent) = unsafe { read_ptr(task, off!(task_real_parent)) } {
            a.ppid = unsafe {
                bpf_probe_read_kernel(parent.add(off!(task_tgid) as usize) as *const u32)
            }
            .unwrap_or(0);
        }
    }
}

/// The current task's executable, as dentry names innermost first (see `Actor::exe`).
#[inline(always)]
fn fill_exe(a: &mut Actor) {
    a.exe_parts = 0;
    a.exe_complete = 0;
    a.exe[0][0] = 0;
    if off!(have_exe) == 0 || off!(have_files) == 0 {
        return;
    }
    let Some(mm) = (unsafe { read_ptr(current_task(), off!(task_mm)) }) else {
        return; // a kernel thread
    };
    let Some(file) = (unsafe { read_ptr(mm, off!(mm_exe_file)) }) else {
        return;
    };
    let Some(mut dentry) = (unsafe { read_ptr(file, off!(file_dentry)) }) else {
        return;
    };
    let mut i = 0usize;
    while i < EXE_PARTS {
        let Some(name) = (unsafe { read_ptr(dentry, off!(dentry_name)) }) else {
            break;
        };
        let part = &mut a.exe[i];
        part[0] = 0;
        if unsafe { bpf_probe_read_kernel_str_bytes(name, part) }.is_err() {
            break;
        }
        a.exe_parts = (i + 1) as u32;
        let Some(parent) = (unsafe { read_ptr(dentry, off!(dentry_parent)) }) else {
            break;
        };
        if parent == dentry {
            // The root's parent is itself: the path is whole (its own name is "/").
            a.exe_complete = 1;
            break;
        }
        dentry = parent;
        i += 1;
    }
}

/// The file behind `fd` of the current task: (its inode, its parent directory's inode, the
/// dentry's name pointer). Walks task->files->fdt->fd[fd] with offsets from BTF.
#[inline(always)]
pub fn inode_of_fd(fd: i64) -> Option<(InodeKey, InodeKey, *const u8)> {
    if off!(have_files) == 0 || fd < 0 {
        return None;
    }
    unsafe {
        let files = read_ptr(current_task(), off!(task_files))?;
        let fdt = read_ptr(files, off!(files_fdt))?;
        let max: u32 =
            bpf_probe_read_kernel(fdt.add(off!(fdt_max_fds) as usize) as *const u32).ok()?;
        if fd as u64 >= max as u64 {
            return None;
        }
        let fds = read_ptr(fdt, off!(fdt_fd))?;
        let file = read_ptr(fds, (fd as u32) * 8)?;
        let inode = read_ptr(file, off!(file_inode))?;
        let file_key = inode_key(inode)?;
        let dentry = read_ptr(file, off!(file_dentry))?;
        let parent = read_ptr(dentry, off!(dentry_parent))?;
        let pinode = read_ptr(parent, off!(dentry_inode))?;
        // A dentry's parent is on the same superblock (a mount's root is its own parent
        // within that filesystem): the file's device serves for both.
        let pino: u64 =
            bpf_probe_read_kernel(pinode.add(off!(inode_ino) as usize) as *const u64).ok()?;
        let parent_key = InodeKey {
            dev: file_key.dev,
            _pad: 0,
            ino: pino,
        };
        let name = read_ptr(dentry, off!(dentry_name)).unwrap_or(core::ptr::null());
        Some((file_key, parent_key, name))
    }
}

#[inline(always)]
unsafe fn inode_key(inode: *const u8) -> Option<InodeKey> {
    unsafe {
        let ino: u64 =
            bpf_probe_read_kernel(inode.add(off!(inode_ino) as usize) as *const u64).ok()?;
        let sb = read_ptr(inode, off!(inode_sb))?;
        let dev: u32 = bpf_probe_read_kernel(sb.add(off!(sb_dev) as usize) as *const u32).ok()?;
        Some(InodeKey { dev, _pad: 0, ino })
    }
}

/// Is the open file behind `fd` one of an evaluation's inputs? Returns the `FLAG_MATCH_*`
/// bit and the file's key. In order: the file's own inode (an input read, under any of its
/// names: hard links, /proc/*/fd, chroots, other mount namespaces); its directory's inode
/// when that directory was listed (a drop-in directory: any child); the (directory, name)
/// pair when the directory holds names that were looked for (a unit or config file that may
/// appear). Nothing else: not a device, not a same-named file elsewhere.
#[inline(always)]
pub fn match_fd(fd: i64) -> Option<(u32, InodeKey)> {
    let (file, parent, name) = inode_of_fd(fd)?;
    if unsafe { WATCHED_INODES.get(&file) }.is_some_and(|b| *b & watch::FILE != 0) {
        return Some((FLAG_MATCH_INODE, file));
    }
    let dir = unsafe { WATCHED_INODES.get(&parent) }.copied().unwrap_or(0);
    if dir & watch::DIR_ANY != 0 {
        return Some((FLAG_MATCH_PARENT, file));
    }
    if dir & watch::DIR_NAMED != 0
        && !name.is_null()
        && entry_watched(&parent, kernel_name_hash(name))
    {
        return Some((FLAG_MATCH_PARENT, file));
    }
    None
}

/// Is `name` (a [`monitor_common::name_hash`]) looked for in directory `dir`?
#[inline(always)]
pub fn entry_watched(dir: &InodeKey, name: u64) -> bool {
    let key = EntryKey {
        dev: dir.dev,
        _pad: 0,
        ino: dir.ino,
        name,
    };
    unsafe { WATCHED_ENTRIES.get(&key) }.is_some()
}

/// `name_bits::*` of a basename hash (0: not watched).
#[inline(always)]
pub fn name_lookup(hash: u64) -> u8 {
    let (word, mask) = monitor_common::name_filter_bit(hash);
    if crate::NAME_FILTER.get(word).is_none_or(|w| *w & mask == 0) {
        return 0;
    }
    unsafe { WATCHED_NAMES.get(&hash) }.copied().unwrap_or(0)
}

/// [`monitor_common::name_hash`] of a dentry name (kernel memory). A name of NAME_LEN bytes
/// or more is cut, and then matches nothing (userspace walks every open while such a name
/// is watched, and matches it by inode once it exists).
#[inline(always)]
fn kernel_name_hash(name: *const u8) -> u64 {
    let mut buf = [0u8; NAME_LEN];
    let len = unsafe { bpf_probe_read_kernel_str_bytes(name, &mut buf) }
        .map(|s| s.len())
        .unwrap_or(0);
    let mut h = FNV_OFFSET;
    let mut j = 0usize;
    while j < NAME_LEN {
        if j >= len {
            break;
        }
        h ^= buf[(len - 1 - j) & (NAME_LEN - 1)] as u64;
        h = h.wrapping_mul(FNV_PRIME);
        j += 1;
    }
    h
}

/// The current directory's inode (task->fs->pwd.dentry->d_inode).
#[inline(always)]
pub fn cwd_inode() -> Option<InodeKey> {
    if off!(have_cwd) == 0 || off!(have_files) == 0 {
        return None;
    }
    unsafe {
        let fs = read_ptr(current_task(), off!(task_fs))?;
        let dentry = read_ptr(fs, off!(fs_pwd_dentry))?;
        let inode = read_ptr(dentry, off!(dentry_inode))?;
        inode_key(inode)
    }
}

/// The inode of the directory a `*at` syscall's bare name is relative to.
#[inline(always)]
pub fn dir_inode(dirfd: i64) -> Option<InodeKey> {
    if dirfd as i32 == AT_FDCWD {
        cwd_inode()
    } else {
        inode_of_fd(dirfd as i32 as i64).map(|(f, _, _)| f)
    }
}

pub const AT_FDCWD: i32 = -100;

/// The path component could not be read.
pub const C_UNREADABLE: u32 = 1;
/// No '/' within NAME_LEN bytes before its end: longer than any name the maps can hold.
pub const C_TOO_LONG: u32 = 2;
/// It ends in `.conf`.
pub const C_CONF: u32 = 4;
/// Only `[0-9a-f-]`: an fd number (`/proc/*/fd/N`, `/dev/fd/N`) or a `map_files` range, which
/// reopen a file under a name that is not its own.
pub const C_HEXDASH: u32 = 8;
/// `.` or `..`.
pub const C_DOTS: u32 = 16;
/// Internal to [`component`].
const C_NOT_HEXDASH: u32 = 32;

/// One path component, found by scanning back from a given end.
pub struct Comp {
    /// [`monitor_common::name_hash`] of its bytes.
    pub hash: u64,
    pub len: u32,
    /// Index of the '/' before it, or -1 when it starts the string.
    pub slash: i64,
    /// `C_*` bits.
    pub flags: u32,
}

/// The component of the NUL-free string at `buf` that ends at byte `end` (exclusive): its
/// hash, length and kind. `buf` must point into a map value with PATH_LEN bytes from it
/// (every caller's is a `[u8; PATH_LEN]` field of a map value): its bytes are loaded in place
/// with the index masked to PATH_LEN (a power of two), so the verifier sees a bounded offset
/// and no helper is called (a `bpf_probe_read_kernel` copy of the tail cost a helper call on
/// every write-intent open). The scan goes back from `end` with a constant-bounded counter (a
/// loop bound taken from the data would multiply the verifier's states).
#[inline(always)]
pub fn component(buf: *const u8, end: usize) -> Comp {
    let mut c = Comp {
        hash: FNV_OFFSET,
        len: 0,
        slash: -1,
        flags: 0,
    };
    // SAFETY: the index is masked into the PATH_LEN bytes at `buf` (see above).
    let at = |i: usize| unsafe { core::ptr::read_volatile(buf.add(i & (PATH_LEN - 1))) };
    let mut hexdash = true;
    let mut stopped = false;
    let mut j = 0usize;
    while j < NAME_LEN {
        if j >= end {
            stopped = true;
            break;
        }
        let b = at(end - 1 - j);
        if b == b'/' {
            c.slash = (end - 1 - j) as i64;
            stopped = true;
            break;
        }
        c.hash ^= b as u64;
        c.hash = c.hash.wrapping_mul(FNV_PRIME);
        c.len += 1;
        if !(b.is_ascii_digit() || (b'a'..=b'f').contains(&b) || b == b'-') {
            hexdash = false;
        }
        j += 1;
    }
    if !stopped {
        c.flags |= C_TOO_LONG;
    }
    if !hexdash {
        c.flags |= C_NOT_HEXDASH;
    }
    // The loop has 129 ways out, each with its own constants: without this, the verifier
    // would walk the rest of the program once per way out (hundreds of thousands of
    // instructions per program, seconds of load time). Through a map value the results are
    // just numbers to it, and the ways out merge.
    if let Some(p) = COMP.get_ptr_mut(0) {
        unsafe {
            core::ptr::write_volatile(p, [c.hash, c.len as u64, c.slash as u64, c.flags as u64]);
            let v = core::ptr::read_volatile(p);
            c.hash = v[0];
            c.len = v[1] as u32;
            c.slash = v[2] as i64;
            c.flags = v[3] as u32;
        }
    }
    if c.flags & C_TOO_LONG != 0 {
        return c;
    }
    let hexdash = c.flags & C_NOT_HEXDASH == 0;
    c.flags &= !C_NOT_HEXDASH;
    // The ith byte from the end (1-based); only read for i <= c.len, so within the component.
    let t = |i: usize| at(end.wrapping_sub(i & 7));
    if c.len >= 5 && t(5) == b'.' && t(4) == b'c' && t(3) == b'o' && t(2) == b'n' && t(1) == b'f' {
        c.flags |= C_CONF;
    }
    if hexdash && c.len > 0 {
        c.flags |= C_HEXDASH;
    }
    if (c.len == 1 && t(1) == b'.') || (c.len == 2 && t(1) == b'.' && t(2) == b'.') {
        c.flags |= C_DOTS;
    }
    c
}

/// Reads a user path into `dst`. Returns its length and whether it is whole (not cut at
/// the buffer's size, and readable).
#[inline(always)]
pub fn read_user_path(src: u64, dst: &mut [u8; PATH_LEN]) -> (usize, bool) {
    match unsafe { bpf_probe_read_user_str_bytes(src as *const u8, dst) } {
        Ok(s) => (s.len(), s.len() < PATH_LEN - 1),
        Err(_) => {
            dst[0] = 0;
            (0, false)
        }
    }
}

/// Reads a user path into `dst` and says (whether its basename is a watched name or
/// `*.conf`, whether it was cut). A cut path counts as matched: the kernel cannot tell, so
/// userspace decides. For programs that have only a path (no fd, no directory inode). `dst`
/// must have NAME_LEN bytes in front of it in the same map value (`FileEvent::path` and
/// `path2` do), see [`component`].
#[allow(dead_code)]
#[inline(always)]
pub fn read_path_and_match(src: u64, dst: &mut [u8; PATH_LEN], len_out: &mut u32) -> (bool, bool) {
    let (len, whole) = read_user_path(src, dst);
    *len_out = len as u32;
    if !whole {
        return (len > 0, len > 0);
    }
    if len == 0 {
        return (false, false);
    }
    let c = component(dst.as_ptr(), len);
    let hit = c.flags & (C_UNREADABLE | C_CONF) != 0
        || (c.flags & C_TOO_LONG == 0
            && name_lookup(c.hash) & monitor_common::name_bits::ENTRY != 0);
    (hit, false)
}

/// `v`, as a number the verifier knows nothing about: code after a function with many ways
/// out (each returning its own constant) is then verified once, not once per way out.
#[inline(always)]
pub fn opaque(v: u64) -> u64 {
    match crate::COMP.get_ptr_mut(0) {
        Some(p) => unsafe {
            let slot = (p as *mut u64).add(3);
            core::ptr::write_volatile(slot, v);
            core::ptr::read_volatile(slot)
        },
        None => v,
    }
}

/// `state::*` value.
#[inline(always)]
pub fn state(index: u32) -> u64 {
    crate::STATE.get(index).copied().unwrap_or(0)
}

/// Adds `delta` to a `state::*` value (atomically: every CPU updates it).
#[inline(always)]
pub fn state_add(index: u32, delta: i64) {
    if let Some(p) = crate::STATE.get_ptr_mut(index) {
        atomic_add(p, delta);
    }
}

#[inline(always)]
fn atomic_add(p: *mut u64, delta: i64) {
    // BPF_ATOMIC add (XADD): core's atomics are not available for this target, the
    // instruction is (since the first eBPF kernels).
    unsafe {
        core::arch::asm!(
            "lock *(u64 *)({p} + 0) += {v}",
            p = in(reg) p,
            v = in(reg) delta,
            options(nostack)
        )
    };
}

/// Does every write-intent open take the walk (`mode::WALK_ALL`, a symlink to a watched
/// name, or a hard link made since userspace last rebuilt its watch set: `state::LINKED` >
/// `state::LINKED_SEEN`)?
#[inline(always)]
pub fn walk_all() -> bool {
    state(state::MODE) & mode::WALK_ALL != 0
        || state(state::SYMLINKED) != 0
        || state(state::LINKED) > state(state::LINKED_SEEN)
}

/// A hard link to a watched name was made: walk every write-intent open until userspace has
/// a watch set built after it (which sets `mode::WALK_ALL` from the file's `st_nlink` for as
/// long as the link exists).
#[inline(always)]
pub fn set_linked() {
    if let Some(p) = crate::STATE.get_ptr_mut(state::LINKED) {
        unsafe { *p = bpf_ktime_get_ns() };
    }
}

/// A symlink to a watched file's name, to an fd path, or to a path that could not be read:
/// nothing in userspace's watch set stands for it (a symlink leaves `st_nlink` alone, and its
/// own name is not known to be an input), so every write-intent open is walked from now on.
#[inline(always)]
pub fn set_linked_for_good() {
    if let Some(p) = crate::STATE.get_ptr_mut(state::SYMLINKED) {
        unsafe { *p = 1 };
    }
}

/// The per-CPU scratch record, reset for a new file event.
#[inline(always)]
pub fn scratch() -> Option<&'static mut FileEvent> {
    let p = SCRATCH.get_ptr_mut(0)?;
    let ev = unsafe { &mut *p };
    ev.flags = 0;
    ev.ret = 0;
    ev.dirfd = -1;
    ev.dirfd2 = -1;
    ev.sys_flags = 0;
    ev.dev = 0;
    ev.ino = 0;
    ev.path_len = 0;
    ev.path2_len = 0;
    ev._pad = 0;
    ev.base_dev = 0;
    ev.base2_dev = 0;
    ev.base_ino = 0;
    ev.base2_ino = 0;
    Some(ev)
}

/// Copies a finished FileEvent to the ring buffer.
#[inline(always)]
/// Reserves first, and takes this CPU's lost count into the header only once the record is
/// sure to be sent, so that a run of failures is counted in full.
pub fn submit_file(ev: &mut FileEvent) {
    let Some(mut entry) = EVENTS.reserve::<FileEvent>(0) else {
        lost();
        return;
    };
    fill_actor(&mut ev.actor);
    ev.header = header(
        monitor_common::kind::FILE,
        core::mem::size_of::<FileEvent>(),
    );
    unsafe { core::ptr::copy_nonoverlapping(ev as *const FileEvent, entry.as_mut_ptr(), 1) };
    entry.submit(0);
    count(counter::SENT);
}

/// The nth argument of a `sys_enter_*` tracepoint: a direct load from the context at a
/// constant offset (userspace checked tracefs against [`monitor_common::SYS_ARG0`] before
/// load). `TracePointContext::read_at` would be a helper call per argument.
#[inline(always)]
pub fn arg(ctx: &TracePointContext, n: usize) -> u64 {
    let at = monitor_common::SYS_ARG0 as usize + 8 * n;
    // SAFETY: a tracepoint's context is readable at constant 8-aligned offsets within its
    // record; `n` < 6 is a literal at every call site.
    unsafe { core::ptr::read_volatile((ctx.as_ptr() as *const u8).add(at) as *const u64) }
}

/// The `ret` of a `sys_exit_*` tracepoint (a direct load, see [`arg`]).
#[inline(always)]
pub fn ret(ctx: &TracePointContext) -> i64 {
    let at = monitor_common::SYS_RET as usize;
    // SAFETY: as in `arg`.
    unsafe { core::ptr::read_volatile((ctx.as_ptr() as *const u8).add(at) as *const i64) }
}

/// Adds `delta` to the writers count (see `WRITERS`).
#[inline(always)]
pub fn writers_add(delta: i64) {
    if let Some(p) = crate::WRITERS.get_ptr_mut(0) {
        atomic_add(p, delta);
    }
}

/// Is any watched file open for writing anywhere?
#[inline(always)]
pub fn any_writers() -> bool {
    crate::WRITERS.get(0).is_some_and(|n| *n != 0)
}

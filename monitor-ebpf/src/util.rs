//! Helpers shared by the programs: counters, the actor, ring-buffer records, and the two
//! matchers (by inode through the task's file table, by basename through the names map).

use aya_ebpf::{
    helpers::{
        bpf_get_current_comm, bpf_get_current_pid_tgid, bpf_get_current_uid_gid,
        bpf_probe_read_kernel, bpf_probe_read_kernel_buf, bpf_probe_read_kernel_str_bytes,
        bpf_probe_read_user_str_bytes,
    },
    programs::TracePointContext,
};
use monitor_common::{
    Actor, EXE_PARTS, FLAG_MATCH_INODE, FLAG_MATCH_NAME, FLAG_MATCH_PARENT, FileEvent, Header,
    InodeKey, NAME_LEN, NameKey, PATH_LEN, counter, watch,
};

use crate::{COUNTERS, EVENTS, LOST, OFFSETS, SCRATCH, WATCHED_INODES, WATCHED_NAMES};

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

/// Is the open file behind `fd` watched? Returns the `FLAG_MATCH_*` bit and the file's key.
/// In order: the file's own inode (any name of it); its directory's inode (drop-in dirs); its
/// name (watched names and `*.conf`, wherever they are: this also covers overlayfs, where the
/// file's inode is the lower/upper one and not what stat(2) shows userspace).
#[inline(always)]
pub fn match_fd(fd: i64) -> Option<(u32, InodeKey)> {
    let (file, parent, name) = inode_of_fd(fd)?;
    if unsafe { WATCHED_INODES.get(&file) }.is_some() {
        return Some((FLAG_MATCH_INODE, file));
    }
    if let Some(dir) = unsafe { WATCHED_INODES.get(&parent) } {
        if *dir & watch::DIR_ANY != 0 {
            return Some((FLAG_MATCH_PARENT, file));
        }
    }
    if !name.is_null() {
        let mut key = NameKey {
            name: [0; NAME_LEN],
        };
        let len = unsafe { bpf_probe_read_kernel_str_bytes(name, &mut key.name) }
            .map(|s| s.len())
            .unwrap_or(0);
        if name_watched(&key, len) {
            return Some((FLAG_MATCH_NAME, file));
        }
    }
    None
}

/// `key` holds a NUL-padded basename of `len` bytes.
#[inline(always)]
fn name_watched(key: &NameKey, len: usize) -> bool {
    if len >= 5 && len < NAME_LEN {
        let end = len & (NAME_LEN - 1);
        if end >= 5
            && key.name[(end - 5) & (NAME_LEN - 1)] == b'.'
            && key.name[(end - 4) & (NAME_LEN - 1)] == b'c'
            && key.name[(end - 3) & (NAME_LEN - 1)] == b'o'
            && key.name[(end - 2) & (NAME_LEN - 1)] == b'n'
            && key.name[(end - 1) & (NAME_LEN - 1)] == b'f'
        {
            return true;
        }
    }
    len > 0 && unsafe { WATCHED_NAMES.get(key) }.is_some()
}

/// Reads a user path into `dst` and says whether its basename is watched. A path that does
/// not fit counts as matched: the kernel cannot tell, so userspace decides (and re-evaluates).
#[inline(always)]
pub fn read_path_and_match(src: u64, dst: &mut [u8; PATH_LEN], len_out: &mut u32) -> (bool, bool) {
    let len = match unsafe { bpf_probe_read_user_str_bytes(src as *const u8, dst) } {
        Ok(s) => s.len(),
        Err(_) => {
            *len_out = 0;
            return (false, true);
        }
    };
    *len_out = len as u32;
    if len >= PATH_LEN - 1 {
        return (true, true);
    }
    // The basename starts after the last '/'. Only the last NAME_LEN bytes matter (a longer
    // basename cannot be in the names map): copy the NAME_LEN bytes that END at the string's
    // end to the stack, so the string's last byte is always tail[NAME_LEN - 1], and scan them
    // with a constant-bounded index and no comparison with `len` inside the loop (a
    // data-dependent bound there multiplies the verifier's states). For a short string the
    // bytes before it are other fields: a '/' found there just means "no '/' in the string".
    let base = dst.as_ptr() as u64 + len as u64 - NAME_LEN as u64;
    let mut tail = [0u8; NAME_LEN];
    if unsafe { bpf_probe_read_kernel_buf(base as *const u8, &mut tail) }.is_err() {
        return (false, false);
    }
    let mut slash = usize::MAX;
    let mut j = NAME_LEN;
    while j > 0 {
        j -= 1;
        if tail[j] == b'/' {
            slash = j;
            break;
        }
    }
    let string_start = NAME_LEN.saturating_sub(len);
    let start = if slash != usize::MAX && slash + 1 > string_start {
        slash + 1
    } else if len < NAME_LEN {
        string_start
    } else {
        // No '/' in the last NAME_LEN bytes: the basename is too long to be watched.
        return (false, false);
    };
    if start >= NAME_LEN {
        return (false, false);
    }
    let mut key = NameKey {
        name: [0; NAME_LEN],
    };
    let got = unsafe {
        bpf_probe_read_kernel_str_bytes((base + start as u64) as *const u8, &mut key.name)
    }
    .map(|s| s.len())
    .unwrap_or(0);
    (name_watched(&key, got), false)
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

/// The nth argument of a `sys_enter_*` tracepoint, at the offset read from tracefs.
#[inline(always)]
pub fn arg(ctx: &TracePointContext, n: usize) -> u64 {
    let o = unsafe { core::ptr::read_volatile(&raw const OFFSETS.sys_arg[n]) };
    unsafe { ctx.read_at::<u64>(o as usize) }.unwrap_or(0)
}

/// The `ret` of a `sys_exit_*` tracepoint.
#[inline(always)]
pub fn ret(ctx: &TracePointContext) -> i64 {
    unsafe { ctx.read_at::<i64>(off!(sys_ret) as usize) }.unwrap_or(-1)
}

/// Adds `delta` to the writers count (see `WRITERS`).
#[inline(always)]
pub fn writers_add(delta: i64) {
    if let Some(p) = crate::WRITERS.get_ptr_mut(0) {
        // BPF_ATOMIC add (XADD): every CPU updates the one counter. core's atomics are not
        // available for this target, the instruction is (since the first eBPF kernels).
        unsafe {
            core::arch::asm!(
                "lock *(u64 *)({p} + 0) += {v}",
                p = in(reg) p,
                v = in(reg) delta,
                options(nostack)
            )
        };
    }
}

/// Is any watched file open for writing anywhere?
#[inline(always)]
pub fn any_writers() -> bool {
    crate::WRITERS.get(0).is_some_and(|n| *n != 0)
}

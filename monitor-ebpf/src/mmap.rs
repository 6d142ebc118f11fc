//! Shared mappings of watched files: after `mmap(MAP_SHARED)` a process writes the file with
//! plain stores, no syscall, even after close(2). The mmap of a watched fd (same inode match
//! as an open; any MAP_SHARED mapping, since mprotect(2) can add PROT_WRITE later when the fd
//! was writable) is sent at its sys_exit with the mapping's address, the process is remembered in `MMAP_TGIDS`, and its msync(2),
//! munmap(2) and exit are sent too. Userspace polls the file's content while the mapping
//! lives. Everyone else's mmap costs a flag test; their msync/munmap/exit one array load.

use aya_ebpf::{
    helpers::bpf_get_current_pid_tgid, macros::tracepoint, programs::TracePointContext,
};
use monitor_common::{blind, counter};

use crate::{
    MMAP_ANY, MMAP_TGIDS,
    ancestors::stash,
    util::{arg, count, match_fd, scratch, submit_file},
};

/// MAP_TYPE bits: MAP_SHARED (1) and MAP_SHARED_VALIDATE (3) share; MAP_PRIVATE (2) does not.
const MAP_TYPE: u64 = 0x0f;
const MAP_SHARED: u64 = 0x01;
const MAP_SHARED_VALIDATE: u64 = 0x03;

#[inline(always)]
fn any_add(delta: i64) {
    if let Some(p) = MMAP_ANY.get_ptr_mut(0) {
        // BPF_ATOMIC add: every CPU updates the one counter (see util::writers_add).
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

/// mmap(addr, len, prot, flags, fd, off).
#[tracepoint]
pub fn kd_mmap(ctx: TracePointContext) -> u32 {
    let flags = arg(&ctx, 3);
    let kind = flags & MAP_TYPE;
    if kind != MAP_SHARED && kind != MAP_SHARED_VALIDATE {
        return 0;
    }
    let fd = arg(&ctx, 4) as i32 as i64;
    if fd < 0 {
        return 0;
    }
    count(counter::FILE_SEEN);
    let Some((how, key)) = match_fd(fd) else {
        count(counter::FILE_FILTERED);
        return 0;
    };
    let tgid = (bpf_get_current_pid_tgid() >> 32) as u32;
    if unsafe { MMAP_TGIDS.get(&tgid) }.is_none() && MMAP_TGIDS.insert(&tgid, &1, 0).is_ok() {
        any_add(1);
    }
    let Some(ev) = scratch() else { return 0 };
    ev.op = blind::op::MMAP_SHARED;
    ev.flags = how;
    ev.dirfd = fd as i32;
    ev.dev = key.dev;
    ev.ino = key.ino;
    ev.sys_flags = (arg(&ctx, 2) << 32) | (flags & 0xffff_ffff);
    ev.path[0] = 0;
    ev.path2[0] = 0;
    // Sent at sys_exit (`kd_blind_exit`), with the mapping's address: it exists by then.
    stash(ev);
    0
}

#[inline(always)]
fn mapper_op(op: u32, exiting: bool) {
    if MMAP_ANY.get(0).is_none_or(|n| *n == 0) {
        return;
    }
    let id = bpf_get_current_pid_tgid();
    let tgid = (id >> 32) as u32;
    if exiting && id as u32 != tgid {
        return; // a thread, not the process
    }
    if unsafe { MMAP_TGIDS.get(&tgid) }.is_none() {
        return;
    }
    if exiting && MMAP_TGIDS.remove(&tgid).is_ok() {
        any_add(-1);
    }
    let Some(ev) = scratch() else { return };
    ev.op = op;
    ev.path[0] = 0;
    ev.path2[0] = 0;
    submit_file(ev);
}

#[tracepoint]
pub fn kd_msync(_ctx: TracePointContext) -> u32 {
    mapper_op(blind::op::MSYNC, false);
    0
}

#[tracepoint]
pub fn kd_munmap(_ctx: TracePointContext) -> u32 {
    mapper_op(blind::op::MUNMAP, false);
    0
}

/// On sched:sched_process_exit.
#[tracepoint]
pub fn kd_mmap_exit(_ctx: TracePointContext) -> u32 {
    mapper_op(blind::op::MMAP_EXIT, true);
    0
}

//! io_uring: requests run in the kernel with no syscall of their own, so the syscall
//! tracepoints never see an `IORING_OP_OPENAT`, a `RENAMEAT` or a `WRITE`. One program on
//! `io_uring:io_uring_complete` (fired for every completion with the request) looks at the
//! request's opcode and file (offsets from BTF):
//! - an open that returned an fd: the fd's inode decides, as for open(2), and a match is sent
//!   as an `OPEN` (flagged `FLAG_VIA_IO_URING`) so that userspace follows the fd like any
//!   write-intent open. A direct open into a fixed slot (result 0) cannot be placed: sent with
//!   no match, userspace re-evaluates;
//! - a path operation (renameat, unlinkat, mkdirat, symlinkat, linkat) that succeeded: its
//!   names are freed by completion time, so it is sent with no match and userspace
//!   re-evaluates (they are rare: one evaluation each, never a miss);
//! - anything else on a file (write, writev, write_fixed, fallocate, ftruncate, splice/tee
//!   into it, ...), reads aside: sent when the file's inode is watched.
//!
//! Completions of unrelated requests cost a few reads and one hash lookup. A request whose
//! completion is not posted (`IOSQE_CQE_SKIP_SUCCESS`) is looked at when submitted instead
//! (`kd_uring_submit`).

use aya_ebpf::{
    helpers::{bpf_get_current_pid_tgid, bpf_probe_read_kernel},
    macros::tracepoint,
    programs::TracePointContext,
};
use monitor_common::{
    FLAG_MATCH_INODE, FileEvent, InodeKey, blind, blind::uring, counter, op, tracked,
};

use crate::{
    OPEN_FDS, TRACKED, WATCHED_INODES,
    util::{count, match_fd, off, scratch, submit_file, writers_add},
};

macro_rules! boff {
    ($field:ident) => {{
        #[allow(unused_unsafe)]
        let v = unsafe { core::ptr::read_volatile(&raw const crate::BLIND_OFFSETS.$field) };
        v
    }};
}

#[inline(always)]
unsafe fn read_ptr(base: u64, offset: u32) -> Option<u64> {
    if base == 0 {
        return None;
    }
    let p: u64 = unsafe { bpf_probe_read_kernel((base + offset as u64) as *const u64) }.ok()?;
    if p == 0 { None } else { Some(p) }
}

/// The inode key of a `struct file *`.
#[inline(always)]
fn file_key(file: u64) -> Option<InodeKey> {
    if off!(have_files) == 0 {
        return None;
    }
    unsafe {
        let inode = read_ptr(file, off!(file_inode))?;
        let ino: u64 =
            bpf_probe_read_kernel((inode + off!(inode_ino) as u64) as *const u64).ok()?;
        let sb = read_ptr(inode, off!(inode_sb))?;
        let dev: u32 = bpf_probe_read_kernel((sb + off!(sb_dev) as u64) as *const u32).ok()?;
        Some(InodeKey { dev, _pad: 0, ino })
    }
}

#[inline(always)]
fn send(ev: &mut FileEvent, op_: u32, flags: u32, res: i32, opcode: u8, key: Option<InodeKey>) {
    ev.op = op_;
    ev.flags = flags | blind::FLAG_VIA_IO_URING;
    ev.ret = res as i64;
    ev.dirfd = if op_ == op::OPEN { -100 } else { -1 };
    ev.sys_flags = opcode as u64;
    if let Some(k) = key {
        ev.dev = k.dev;
        ev.ino = k.ino;
    }
    ev.path[0] = 0;
    ev.path2[0] = 0;
    submit_file(ev);
}

#[tracepoint]
pub fn kd_uring_complete(ctx: TracePointContext) -> u32 {
    if boff!(have_uring) == 0 {
        return 0;
    }
    let Ok(req) = (unsafe { ctx.read_at::<u64>(boff!(uring_req) as usize) }) else {
        return 0;
    };
    if req == 0 {
        return 0; // an auxiliary completion, not a request's
    }
    let res: i32 = unsafe { ctx.read_at::<i32>(boff!(uring_res) as usize) }.unwrap_or(-1);
    let Ok(opcode) =
        (unsafe { bpf_probe_read_kernel((req + boff!(kiocb_opcode) as u64) as *const u8) })
    else {
        return 0;
    };
    match opcode {
        uring::OPENAT | uring::OPENAT2 => {
            if res < 0 {
                return 0;
            }
            count(counter::FILE_SEEN);
            if res == 0 {
                // A direct open into a fixed-file slot: the file is not in the fd table.
                if let Some(ev) = scratch() {
                    send(ev, blind::op::IO_URING, 0, res, opcode, None);
                }
                return 0;
            }
            let Some((how, key)) = match_fd(res as i64) else {
                count(counter::FILE_FILTERED);
                return 0;
            };
            // Followed like an open(2): its close(2) and its process's exit are reported.
            let id = bpf_get_current_pid_tgid();
            let fd_key = (id & 0xffff_ffff_0000_0000) | (res as u32 as u64);
            let _ = OPEN_FDS.insert(&fd_key, &key, 0);
            let tgid = (id >> 32) as u32;
            let was = unsafe { TRACKED.get(&tgid) }.copied().unwrap_or(0);
            if was & tracked::WRITER == 0
                && TRACKED.insert(&tgid, &(was | tracked::WRITER), 0).is_ok()
            {
                writers_add(1);
            }
            if let Some(ev) = scratch() {
                send(ev, op::OPEN, how, res, opcode, Some(key));
            }
        }
        uring::RENAMEAT | uring::UNLINKAT | uring::MKDIRAT | uring::SYMLINKAT | uring::LINKAT => {
            if res < 0 {
                return 0;
            }
            count(counter::FILE_SEEN);
            if let Some(ev) = scratch() {
                send(ev, blind::op::IO_URING, 0, res, opcode, None);
            }
        }
        uring::READ | uring::READV | uring::READ_FIXED => {}
        _ => {
            let Some(file) = (unsafe { read_ptr(req, boff!(kiocb_file)) }) else {
                return 0;
            };
            let Some(key) = file_key(file) else { return 0 };
            if unsafe { WATCHED_INODES.get(&key) }.is_none() {
                return 0;
            }
            count(counter::FILE_SEEN);
            if let Some(ev) = scratch() {
                send(
                    ev,
                    blind::op::IO_URING,
                    FLAG_MATCH_INODE,
                    res,
                    opcode,
                    Some(key),
                );
            }
        }
    }
    0
}

/// The file a request names by fixed-file index: the ring's table, `nodes[index]->file_ptr`
/// with its flag bits cleared.
#[inline(always)]
fn fixed_file(ctx: u64, index: u32) -> Option<u64> {
    if boff!(have_fixed) == 0 {
        return None;
    }
    let nr: u32 =
        unsafe { bpf_probe_read_kernel((ctx + boff!(ctx_files_nr) as u64) as *const u32) }.ok()?;
    if index >= nr {
        return None;
    }
    let nodes = unsafe { read_ptr(ctx, boff!(ctx_files_nodes)) }?;
    let node = unsafe { read_ptr(nodes, index * 8) }?;
    let ptr = unsafe { read_ptr(node, boff!(rsrc_file_ptr)) }?;
    Some(ptr & !3)
}

/// `io_uring:io_uring_submit_req`: a request whose completion will not be posted
/// (`IOSQE_CQE_SKIP_SUCCESS`) is invisible to `kd_uring_complete`, so it is looked at when
/// submitted (and so is every path operation, sent before it runs): its file (by fd, or by fixed-file index through the ring's table) decides; an
/// open or path operation, or a file that cannot be found, is sent with no match. It has not
/// run yet: userspace evaluates now and again later. Other requests cost two reads.
#[tracepoint]
pub fn kd_uring_submit(ctx: TracePointContext) -> u32 {
    if boff!(have_submit) == 0 {
        return 0;
    }
    let flags: u64 = unsafe { ctx.read_at::<u64>(boff!(sub_flags) as usize) }.unwrap_or(0);
    let opcode: u8 = unsafe { ctx.read_at::<u8>(boff!(sub_opcode) as usize) }.unwrap_or(0);
    // Path operations (rare) are also sent when submitted, whatever their flags: the record
    // is then there before the change can be seen, for any evaluation to name it.
    let path_op = matches!(
        opcode,
        uring::RENAMEAT | uring::UNLINKAT | uring::MKDIRAT | uring::SYMLINKAT | uring::LINKAT
    );
    if flags & uring::REQ_F_CQE_SKIP == 0 && !path_op {
        return 0;
    }
    let req: u64 = unsafe { ctx.read_at::<u64>(boff!(sub_req) as usize) }.unwrap_or(0);
    let ring: u64 = unsafe { ctx.read_at::<u64>(boff!(sub_ctx) as usize) }.unwrap_or(0);
    count(counter::FILE_SEEN);
    match opcode {
        uring::READ | uring::READV | uring::READ_FIXED => {}
        uring::OPENAT
        | uring::OPENAT2
        | uring::RENAMEAT
        | uring::UNLINKAT
        | uring::MKDIRAT
        | uring::SYMLINKAT
        | uring::LINKAT => {
            if let Some(ev) = scratch() {
                send(ev, blind::op::IO_URING_SUBMIT, 0, 0, opcode, None);
            }
        }
        _ => {
            let Ok(fd) =
                (unsafe { bpf_probe_read_kernel((req + boff!(kiocb_fd) as u64) as *const i32) })
            else {
                return 0;
            };
            let matched = if flags & uring::REQ_F_FIXED_FILE != 0 {
                let Some(file) = fixed_file(ring, fd as u32) else {
                    // The table cannot be read here: the file is unknown.
                    if let Some(ev) = scratch() {
                        send(ev, blind::op::IO_URING_SUBMIT, 0, 0, opcode, None);
                    }
                    return 0;
                };
                file_key(file).filter(|k| unsafe { WATCHED_INODES.get(k) }.is_some())
            } else {
                // Same match as an open of it: inode, directory or name.
                match_fd(fd as i64).map(|(_, k)| k)
            };
            let Some(key) = matched else {
                count(counter::FILE_FILTERED);
                return 0;
            };
            if let Some(ev) = scratch() {
                send(
                    ev,
                    blind::op::IO_URING_SUBMIT,
                    FLAG_MATCH_INODE,
                    0,
                    opcode,
                    Some(key),
                );
            }
        }
    }
    0
}

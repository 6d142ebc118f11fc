//! Every ancestor counts: a rename, unlink or rmdir of a directory on the path of an input
//! (`/etc`, `/var/lib`, `kubelet`, ...) changes what the kubelet reads without touching the
//! file. The names of those directories are in `ANCESTOR_NAMES` (userspace keeps it in step
//! with the watch set); an operation whose last component is one of them, trailing slashes
//! ignored (`mv kl/ kl.old/` is legal for a directory), is stashed until its sys_exit and sent
//! with its result by `kd_blind_exit`. The kernel cannot resolve the path, so the name is a
//! prefilter: userspace resolves it and keeps only real ancestors.

use aya_ebpf::{
    helpers::{bpf_get_current_pid_tgid, bpf_probe_read_kernel_buf, bpf_probe_read_user_str_bytes},
    macros::tracepoint,
    programs::TracePointContext,
};
use monitor_common::{
    FLAG_MATCH_NAME, FLAG_PATH_TRUNCATED, FLAG_PATH2_TRUNCATED, FileEvent, NAME_LEN, NameKey,
    PATH_LEN, blind, counter, op,
};

use crate::{
    ANCESTOR_NAMES, BLIND_STASH, EVENTS,
    util::{arg, count, dir_inode, fill_actor, header, lost, ret, scratch},
};

const AT_FDCWD: i32 = -100;
const NONE: usize = usize::MAX;
/// Bytes of the path's end examined: the last name (< NAME_LEN) and its trailing slashes.
const TAIL: usize = 2 * NAME_LEN;

/// Reads a user path into `dst`; returns (its last component is an ancestor name, it was cut).
/// A cut or unreadable-tail path counts as matched: userspace decides.
#[inline(always)]
fn read_and_match(src: u64, dst: &mut [u8; PATH_LEN], len_out: &mut u32) -> (bool, bool) {
    let len = match unsafe { bpf_probe_read_user_str_bytes(src as *const u8, dst) } {
        Ok(s) => s.len(),
        Err(_) => {
            *len_out = 0;
            return (false, false);
        }
    };
    *len_out = len as u32;
    if len >= PATH_LEN - 1 {
        return (true, true);
    }
    if len == 0 {
        return (false, false);
    }
    // The TAIL bytes that end where the string ends, so that indices are constant-bounded
    // (bytes before a short string are other fields of the record: never looked at).
    let base = dst.as_ptr() as u64 + len as u64 - TAIL as u64;
    let mut tail = [0u8; TAIL];
    if unsafe { bpf_probe_read_kernel_buf(base as *const u8, &mut tail) }.is_err() {
        return (true, false);
    }
    // Every loop below ends by `break` at its first hit, so the verifier follows one path per
    // iteration count (loops that go on after a hit multiply its states).
    let first = TAIL.saturating_sub(len);
    // One trailing slash is followed exactly ("kl/"); more than one is unusual enough that
    // userspace decides (it resolves the path). Constant `end`s keep the verifier's work small.
    let mut end = TAIL;
    if tail[TAIL - 1] == b'/' {
        end = TAIL - 1;
        if len > 1 && tail[TAIL - 2] == b'/' {
            return (true, false);
        }
    }
    // The last '/' before `end`, at most NAME_LEN bytes back.
    let mut start = usize::MAX;
    let mut j = 1;
    while j <= NAME_LEN + 1 {
        if end < first + j {
            break; // the string's start: no '/'
        }
        let i = end - j;
        if tail[i & (TAIL - 1)] == b'/' {
            start = i + 1;
            break;
        }
        j += 1;
    }
    if start == usize::MAX {
        if end - first > NAME_LEN {
            return (false, false); // longer than any name we watch
        }
        start = first;
    }
    let n = end.saturating_sub(start);
    if n == 0 || n >= NAME_LEN {
        return (false, false);
    }
    let mut key = NameKey {
        name: [0; NAME_LEN],
    };
    let src = unsafe { tail.as_ptr().add(start & (TAIL - 1)) };
    if unsafe {
        aya_ebpf::helpers::generated::bpf_probe_read_kernel(
            key.name.as_mut_ptr() as *mut core::ffi::c_void,
            (n & (NAME_LEN - 1)) as u32,
            src as *const core::ffi::c_void,
        )
    } != 0
    {
        return (true, false);
    }
    (unsafe { ANCESTOR_NAMES.get(&key) }.is_some(), false)
}

/// `dfd`, `p1`, `dfd2`, `p2`, `flags` are argument indices (NONE when the syscall has none).
#[inline(always)]
fn ancestor_op(
    ctx: &TracePointContext,
    op: u32,
    dfd: usize,
    p1: usize,
    dfd2: usize,
    p2: usize,
    flags: usize,
) {
    let Some(ev) = scratch() else { return };
    let (m1, t1) = read_and_match(arg(ctx, p1), &mut ev.path, &mut ev.path_len);
    let (m2, t2) = if p2 != NONE {
        read_and_match(arg(ctx, p2), &mut ev.path2, &mut ev.path2_len)
    } else {
        ev.path2[0] = 0;
        (false, false)
    };
    if !(m1 || m2) {
        return;
    }
    ev.op = op;
    ev.flags = FLAG_MATCH_NAME
        | blind::FLAG_MATCH_ANCESTOR
        | if t1 { FLAG_PATH_TRUNCATED } else { 0 }
        | if t2 { FLAG_PATH2_TRUNCATED } else { 0 };
    ev.dirfd = if dfd != NONE {
        arg(ctx, dfd) as i32
    } else {
        AT_FDCWD
    };
    ev.dirfd2 = if dfd2 != NONE {
        arg(ctx, dfd2) as i32
    } else if p2 != NONE {
        AT_FDCWD
    } else {
        -1
    };
    ev.sys_flags = if flags != NONE { arg(ctx, flags) } else { 0 };
    // Where a relative name was given (as in `path_ops`): without it, a directory of the
    // same name removed or renamed anywhere by a process gone before userspace could read
    // its cwd or dirfd could only be taken on its name, and its process named for a change
    // it did not make.
    if ev.path_len > 0 && ev.path[0] != b'/' {
        if let Some(d) = dir_inode(ev.dirfd as i64) {
            ev.base_dev = d.dev;
            ev.base_ino = d.ino;
        }
    }
    if p2 != NONE && ev.path2_len > 0 && ev.path2[0] != b'/' {
        if let Some(d) = dir_inode(ev.dirfd2 as i64) {
            ev.base2_dev = d.dev;
            ev.base2_ino = d.ino;
        }
    }
    stash(ev);
}

/// Keeps `ev` for `kd_blind_exit`.
#[inline(always)]
pub fn stash(ev: &FileEvent) {
    if BLIND_STASH
        .insert(&bpf_get_current_pid_tgid(), ev, 0)
        .is_err()
    {
        count(counter::STASH_FULL);
    }
}

#[tracepoint]
pub fn kd_anc_rename(ctx: TracePointContext) -> u32 {
    ancestor_op(&ctx, op::RENAME, NONE, 0, NONE, 1, NONE);
    0
}

#[tracepoint]
pub fn kd_anc_renameat(ctx: TracePointContext) -> u32 {
    ancestor_op(&ctx, op::RENAME, 0, 1, 2, 3, NONE);
    0
}

#[tracepoint]
pub fn kd_anc_renameat2(ctx: TracePointContext) -> u32 {
    ancestor_op(&ctx, op::RENAME, 0, 1, 2, 3, 4);
    0
}

/// unlink of an ancestor that is a symlink (`/etc/kubernetes -> /data/k8s`).
#[tracepoint]
pub fn kd_anc_unlink(ctx: TracePointContext) -> u32 {
    ancestor_op(&ctx, op::UNLINK, NONE, 0, NONE, NONE, NONE);
    0
}

#[tracepoint]
pub fn kd_anc_unlinkat(ctx: TracePointContext) -> u32 {
    ancestor_op(&ctx, op::UNLINK, 0, 1, NONE, NONE, 2);
    0
}

#[tracepoint]
pub fn kd_anc_rmdir(ctx: TracePointContext) -> u32 {
    ancestor_op(&ctx, blind::op::RMDIR, NONE, 0, NONE, NONE, NONE);
    0
}

/// On the sys_exit of every syscall above and of the mount family: sends what its enter
/// stashed, with the result (userspace drops failures).
#[tracepoint]
pub fn kd_blind_exit(ctx: TracePointContext) -> u32 {
    let id = bpf_get_current_pid_tgid();
    let Some(p) = BLIND_STASH.get_ptr_mut(&id) else {
        return 0;
    };
    let r = ret(&ctx);
    let Some(mut entry) = EVENTS.reserve::<FileEvent>(0) else {
        let _ = BLIND_STASH.remove(&id);
        lost();
        return 0;
    };
    unsafe {
        (*p).ret = r;
        (*p).header = header(
            monitor_common::kind::FILE,
            core::mem::size_of::<FileEvent>(),
        );
        fill_actor(&mut (*p).actor);
        core::ptr::copy_nonoverlapping(p as *const FileEvent, entry.as_mut_ptr(), 1);
    }
    entry.submit(0);
    count(counter::SENT);
    let _ = BLIND_STASH.remove(&id);
    0
}

//! Path-based changes: rename, unlink, link, symlink, truncate (and ftruncate, by inode). The
//! basename of either path decides (watched-names map, or a `.conf` suffix); a match is kept
//! in `PATH_STASH` until sys_exit adds the result (see `sys_exit.rs`).

use aya_ebpf::{
    helpers::bpf_get_current_pid_tgid, macros::tracepoint, programs::TracePointContext,
};
use monitor_common::{FLAG_MATCH_NAME, FLAG_PATH_TRUNCATED, FLAG_PATH2_TRUNCATED, counter, op};

use crate::{
    PATH_STASH,
    util::{arg, count, match_fd, read_path_and_match, scratch},
};

const AT_FDCWD: i32 = -100;
const NONE: usize = usize::MAX;

/// `dfd`, `p1`, `dfd2`, `p2`, `flags` are argument indices (NONE when the syscall has none).
#[inline(always)]
fn path_op(
    ctx: &TracePointContext,
    op: u32,
    dfd: usize,
    p1: usize,
    dfd2: usize,
    p2: usize,
    flags: usize,
) {
    count(counter::FILE_SEEN);
    let Some(ev) = scratch() else { return };
    let (m1, t1) = read_path_and_match(arg(ctx, p1), &mut ev.path, &mut ev.path_len);
    let (m2, t2) = if p2 != NONE {
        read_path_and_match(arg(ctx, p2), &mut ev.path2, &mut ev.path2_len)
    } else {
        (false, false)
    };
    if !(m1 || m2) {
        count(counter::FILE_FILTERED);
        return;
    }
    ev.op = op;
    ev.flags = FLAG_MATCH_NAME
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
    if PATH_STASH
        .insert(&bpf_get_current_pid_tgid(), &*ev, 0)
        .is_err()
    {
        count(counter::STASH_FULL);
    }
}

#[tracepoint]
pub fn kd_rename(ctx: TracePointContext) -> u32 {
    path_op(&ctx, op::RENAME, NONE, 0, NONE, 1, NONE);
    0
}

#[tracepoint]
pub fn kd_renameat(ctx: TracePointContext) -> u32 {
    path_op(&ctx, op::RENAME, 0, 1, 2, 3, NONE);
    0
}

#[tracepoint]
pub fn kd_renameat2(ctx: TracePointContext) -> u32 {
    path_op(&ctx, op::RENAME, 0, 1, 2, 3, 4);
    0
}

#[tracepoint]
pub fn kd_unlink(ctx: TracePointContext) -> u32 {
    path_op(&ctx, op::UNLINK, NONE, 0, NONE, NONE, NONE);
    0
}

#[tracepoint]
pub fn kd_unlinkat(ctx: TracePointContext) -> u32 {
    path_op(&ctx, op::UNLINK, 0, 1, NONE, NONE, 2);
    0
}

#[tracepoint]
pub fn kd_link(ctx: TracePointContext) -> u32 {
    path_op(&ctx, op::LINK, NONE, 0, NONE, 1, NONE);
    0
}

#[tracepoint]
pub fn kd_linkat(ctx: TracePointContext) -> u32 {
    path_op(&ctx, op::LINK, 0, 1, 2, 3, 4);
    0
}

/// symlink(target, linkpath): `path` is the target, `path2` the new link.
#[tracepoint]
pub fn kd_symlink(ctx: TracePointContext) -> u32 {
    path_op(&ctx, op::SYMLINK, NONE, 0, NONE, 1, NONE);
    0
}

/// symlinkat(target, newdirfd, linkpath).
#[tracepoint]
pub fn kd_symlinkat(ctx: TracePointContext) -> u32 {
    path_op(&ctx, op::SYMLINK, NONE, 0, 1, 2, NONE);
    0
}

#[tracepoint]
pub fn kd_truncate(ctx: TracePointContext) -> u32 {
    path_op(&ctx, op::TRUNCATE, NONE, 0, NONE, NONE, NONE);
    0
}

/// ftruncate(fd, length): by inode, like opens, so any name of the file counts.
#[tracepoint]
pub fn kd_ftruncate(ctx: TracePointContext) -> u32 {
    count(counter::FILE_SEEN);
    let fd = arg(&ctx, 0) as i64;
    let Some((how, key)) = match_fd(fd) else {
        count(counter::FILE_FILTERED);
        return 0;
    };
    let Some(ev) = scratch() else { return 0 };
    ev.op = op::FTRUNCATE;
    ev.flags = how;
    ev.dirfd = fd as i32;
    ev.dev = key.dev;
    ev.ino = key.ino;
    ev.sys_flags = arg(&ctx, 1);
    ev.path[0] = 0;
    if PATH_STASH
        .insert(&bpf_get_current_pid_tgid(), &*ev, 0)
        .is_err()
    {
        count(counter::STASH_FULL);
    }
    0
}

#[tracepoint]
pub fn kd_mkdir(ctx: TracePointContext) -> u32 {
    path_op(&ctx, op::MKDIR, NONE, 0, NONE, NONE, NONE);
    0
}

#[tracepoint]
pub fn kd_mkdirat(ctx: TracePointContext) -> u32 {
    path_op(&ctx, op::MKDIR, 0, 1, NONE, NONE, NONE);
    0
}

//! `sys_enter_open`, `openat`, `openat2`, `creat`: remember write-intent opens until their
//! sys_exit, where the opened file's inode decides (see `sys_exit.rs`). Read-only opens cost a
//! flag test and nothing else.

use aya_ebpf::{
    helpers::{bpf_get_current_pid_tgid, bpf_probe_read_user},
    macros::tracepoint,
    programs::TracePointContext,
};
use monitor_common::OpenStash;

use monitor_common::counter;

use crate::{
    OPEN_STASH,
    util::{arg, count},
};

const O_WRONLY: u64 = 0o1;
const O_RDWR: u64 = 0o2;
const O_CREAT: u64 = 0o100;
const O_TRUNC: u64 = 0o1000;
/// Linux truncates on O_TRUNC even with O_RDONLY, so O_TRUNC alone is write intent.
const WRITE_INTENT: u64 = O_WRONLY | O_RDWR | O_CREAT | O_TRUNC;
const AT_FDCWD: i64 = -100;

#[inline(always)]
fn stash(path: u64, flags: u64, dirfd: i64) {
    if flags & WRITE_INTENT == 0 {
        return;
    }
    if OPEN_STASH
        .insert(
            &bpf_get_current_pid_tgid(),
            &OpenStash { path, flags, dirfd },
            0,
        )
        .is_err()
    {
        count(counter::STASH_FULL);
    }
}

#[tracepoint]
pub fn kd_open(ctx: TracePointContext) -> u32 {
    stash(arg(&ctx, 0), arg(&ctx, 1), AT_FDCWD);
    0
}

#[tracepoint]
pub fn kd_openat(ctx: TracePointContext) -> u32 {
    stash(arg(&ctx, 1), arg(&ctx, 2), arg(&ctx, 0) as i32 as i64);
    0
}

#[tracepoint]
pub fn kd_openat2(ctx: TracePointContext) -> u32 {
    // struct open_how { u64 flags; u64 mode; u64 resolve; }: flags first.
    let how = arg(&ctx, 2);
    let flags: u64 = unsafe { bpf_probe_read_user(how as *const u64) }.unwrap_or(0);
    stash(arg(&ctx, 1), flags, arg(&ctx, 0) as i32 as i64);
    0
}

#[tracepoint]
pub fn kd_creat(ctx: TracePointContext) -> u32 {
    stash(arg(&ctx, 0), O_CREAT | O_WRONLY | O_TRUNC, AT_FDCWD);
    0
}

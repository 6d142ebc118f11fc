//! `sys_enter_open`, `openat`, `openat2`, `creat`: a write-intent open whose basename may be
//! an input's (see the maps in `main.rs`) is remembered until its sys_exit, where the opened
//! file's inode decides (see `sys_exit.rs`). Read-only opens cost a flag test; write-intent
//! opens of unrelated names, a path read and a basename lookup.

use aya_ebpf::{
    helpers::{bpf_get_current_pid_tgid, bpf_probe_read_user},
    macros::tracepoint,
    programs::TracePointContext,
};
use monitor_common::{OpenStash, counter, name_bits, state};

use crate::{
    OPEN_STASH, PATHS,
    util::{
        C_CONF, C_DOTS, C_HEXDASH, C_TOO_LONG, C_UNREADABLE, arg, component, count, name_lookup,
        read_user_path, state_add, walk_all,
    },
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
    count(counter::FILE_SEEN);
    if !walk_all() && !name_may_be_watched(path) {
        count(counter::FILE_FILTERED);
        return;
    }
    let id = bpf_get_current_pid_tgid();
    // An entry left by an enter whose exit was not seen (attached in between) is replaced,
    // and must not count twice in the gauge.
    let stale = unsafe { OPEN_STASH.get(&id) }.is_some();
    if OPEN_STASH
        .insert(&id, &OpenStash { path, flags, dirfd }, 0)
        .is_err()
    {
        count(counter::STASH_FULL);
        return;
    }
    if !stale {
        state_add(state::PENDING_OPENS, 1);
    }
}

/// Can the file this path names be an input? Only its basename can tell "no" (the walk at
/// exit tells "yes"): a name that is not watched, is not `*.conf` (a drop-in, decided at exit
/// by its directory), and cannot reopen another file.
#[inline(always)]
fn name_may_be_watched(path: u64) -> bool {
    let Some(p) = PATHS.get_ptr_mut(0) else {
        return true;
    };
    let buf = unsafe { &mut (*p).path };
    let (len, whole) = read_user_path(path, buf);
    if !whole || len == 0 {
        return true;
    }
    let c = component(buf.as_ptr(), len);
    if c.flags & C_UNREADABLE != 0 || c.len == 0 {
        return true;
    }
    if c.flags & C_TOO_LONG != 0 {
        // Longer than any name in the map (userspace walks all while such a name is watched).
        return false;
    }
    if c.flags & (C_CONF | C_HEXDASH | C_DOTS) != 0 {
        return true;
    }
    name_lookup(c.hash) & (name_bits::ENTRY | name_bits::REOPEN) != 0
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

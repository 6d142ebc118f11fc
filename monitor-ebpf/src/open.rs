//! `sys_enter_open`, `openat`, `openat2`, `creat`: a write-intent open whose basename may be
//! an input's (see the maps in `main.rs`) is remembered until its sys_exit, where the opened
//! file's inode decides (see `sys_exit.rs`). Read-only opens cost a flag test; write-intent
//! opens of unrelated names, a path read and a test of its last four bytes (most), or a
//! basename scan and lookup.

use aya_ebpf::{
    helpers::{bpf_get_current_pid_tgid, bpf_probe_read_user},
    macros::tracepoint,
    programs::TracePointContext,
};
use monitor_common::{OpenStash, PATH_LEN, counter, is_hexdash, name_bits, state, tail_filter_bit};

use crate::{
    OPEN_STASH, PATHS, TAIL_FILTER,
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
    if len >= 4 && !tail_may_be_watched(buf.as_ptr(), len) {
        return false;
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

/// The first test (see `monitor_common::TAIL_FILTER_WORDS`): four loads and a bit, where
/// the scan of the basename costs a loop over every byte of it. `buf` is a map value's
/// PATH_LEN bytes (as in `component`), `len` >= 4 its string's length.
#[inline(always)]
fn tail_may_be_watched(buf: *const u8, len: usize) -> bool {
    // SAFETY: the index is masked into the PATH_LEN bytes at `buf`.
    let at = |i: usize| unsafe { core::ptr::read_volatile(buf.add((len - i) & (PATH_LEN - 1))) };
    let (a, b, c, d) = (at(4), at(3), at(2), at(1));
    if a == b'/' || b == b'/' || c == b'/' || d == b'/' {
        return true; // a basename shorter than four bytes: the scan decides
    }
    if is_hexdash(a) && is_hexdash(b) && is_hexdash(c) && is_hexdash(d) {
        return true;
    }
    let (word, mask) = tail_filter_bit(u32::from_le_bytes([a, b, c, d]));
    TAIL_FILTER.get(word).is_none_or(|w| *w & mask != 0)
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

//! Two programs complete what a sys_enter program stashed: `kd_open_exit` on the exits of the
//! open family, `kd_path_exit` on the exits of the path operations (one lookup each, so a
//! read-only openat costs one hash miss at exit).
//! - a write-intent open that sys_enter could not rule out by its name: the returned fd's
//!   inode (or its directory's with its name) decides, by BTF walk of the file table; so hard
//!   links, `/proc/self/fd/N`, dirfds, chroots, other mount namespaces and paths of any length
//!   are all seen. Matched fds are remembered for close. While nothing is stashed (the
//!   `state::PENDING_OPENS` gauge is 0), an open's exit costs one array load.
//! - a matched path operation: its result is added and it is sent.

use aya_ebpf::{
    helpers::bpf_get_current_pid_tgid, macros::tracepoint, programs::TracePointContext,
};
use monitor_common::{
    FLAG_MATCH_NAME, FLAG_PATH_TRUNCATED, FileEvent, counter, op, state, tracked,
};

use crate::{
    EVENTS, OPEN_FDS, OPEN_STASH, PATH_STASH, TRACKED,
    util::{
        count, fill_actor, header, lost, match_fd, off, read_user_path, ret, scratch, state,
        state_add, submit_file, writers_add,
    },
};

#[tracepoint]
pub fn kd_open_exit(ctx: TracePointContext) -> u32 {
    if state(state::PENDING_OPENS) == 0 {
        return 0;
    }
    let id = bpf_get_current_pid_tgid();
    if let Some(p) = OPEN_STASH.get_ptr(&id) {
        let stash = unsafe { *p };
        if OPEN_STASH.remove(&id).is_ok() {
            state_add(state::PENDING_OPENS, -1);
        }
        open_exit(&ctx, id, stash.path, stash.flags, stash.dirfd);
    }
    0
}

#[tracepoint]
pub fn kd_path_exit(ctx: TracePointContext) -> u32 {
    let id = bpf_get_current_pid_tgid();
    if let Some(p) = PATH_STASH.get_ptr_mut(&id) {
        let r = ret(&ctx);
        let Some(mut entry) = EVENTS.reserve::<FileEvent>(0) else {
            let _ = PATH_STASH.remove(&id);
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
        let _ = PATH_STASH.remove(&id);
    }
    0
}

#[inline(always)]
fn open_exit(ctx: &TracePointContext, id: u64, path: u64, flags: u64, dirfd: i64) {
    let r = ret(ctx);
    if off!(have_files) != 0 {
        // The inode is authoritative; a failed open changed nothing. (The scratch record is
        // taken only once matched: unrelated opens pay for the match and nothing else.)
        let Some((how, key)) = (if r >= 0 { match_fd(r) } else { None }) else {
            count(counter::FILE_FILTERED);
            return;
        };
        let Some(ev) = scratch() else { return };
        ev.flags = how;
        ev.dev = key.dev;
        ev.ino = key.ino;
        let (len, whole) = read_user_path(path, &mut ev.path);
        ev.path_len = len as u32;
        if !whole {
            ev.flags |= FLAG_PATH_TRUNCATED;
        }
        let fd_key = (id & 0xffff_ffff_0000_0000) | (r as u64 & 0xffff_ffff);
        let _ = OPEN_FDS.insert(&fd_key, &key, 0);
        let tgid = (id >> 32) as u32;
        let was = unsafe { TRACKED.get(&tgid) }.copied().unwrap_or(0);
        if was & tracked::WRITER == 0 && TRACKED.insert(&tgid, &(was | tracked::WRITER), 0).is_ok()
        {
            writers_add(1);
        }
        finish_open(ev, r, dirfd, flags);
    } else {
        // Degraded (no BTF): the basename decided at sys_enter; userspace resolves the path.
        if r < 0 {
            count(counter::FILE_FILTERED);
            return;
        }
        let Some(ev) = scratch() else { return };
        let (len, whole) = read_user_path(path, &mut ev.path);
        ev.path_len = len as u32;
        ev.flags = FLAG_MATCH_NAME | if whole { 0 } else { FLAG_PATH_TRUNCATED };
        finish_open(ev, r, dirfd, flags);
    }
}

#[inline(always)]
fn finish_open(ev: &mut FileEvent, r: i64, dirfd: i64, flags: u64) {
    ev.op = op::OPEN;
    ev.ret = r;
    ev.dirfd = dirfd as i32;
    ev.sys_flags = flags;
    ev.path2[0] = 0;
    submit_file(ev);
}

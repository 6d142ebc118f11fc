//! Two programs complete what a sys_enter program stashed: `kd_open_exit` on the exits of the
//! open family, `kd_path_exit` on the exits of the path operations (one lookup each, so a
//! read-only openat costs one hash miss at exit).
//! - a write-intent open: the returned fd's inode (or its directory's) decides, by BTF walk of
//!   the file table; so hard links, `/proc/self/fd/N`, dirfds, chroots, other mount
//!   namespaces and paths of any length are all seen. Matched fds are remembered for close.
//! - a matched path operation: its result is added and it is sent.

use aya_ebpf::{
    helpers::bpf_get_current_pid_tgid, macros::tracepoint, programs::TracePointContext,
};
use monitor_common::{FLAG_MATCH_NAME, FLAG_PATH_TRUNCATED, FileEvent, counter, op, tracked};

use crate::{
    EVENTS, OPEN_FDS, OPEN_STASH, PATH_STASH, TRACKED,
    util::{
        count, fill_actor, header, lost, match_fd, off, read_path_and_match, ret, scratch,
        submit_file, writers_add,
    },
};

#[tracepoint]
pub fn kd_open_exit(ctx: TracePointContext) -> u32 {
    let id = bpf_get_current_pid_tgid();
    if let Some(p) = OPEN_STASH.get_ptr(&id) {
        let stash = unsafe { *p };
        let _ = OPEN_STASH.remove(&id);
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
    count(counter::FILE_SEEN);
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
        let (_, truncated) = read_path_and_match(path, &mut ev.path, &mut ev.path_len);
        if truncated {
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
        // Degraded (no BTF): the basename decides.
        let Some(ev) = scratch() else { return };
        let (m, truncated) = read_path_and_match(path, &mut ev.path, &mut ev.path_len);
        if !m || r < 0 {
            count(counter::FILE_FILTERED);
            return;
        }
        ev.flags = FLAG_MATCH_NAME | if truncated { FLAG_PATH_TRUNCATED } else { 0 };
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

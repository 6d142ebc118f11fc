//! Path-based changes: rename, unlink, link, symlink, mkdir, truncate (and ftruncate, by
//! inode). Either path can make the operation relevant; each is decided from the path the
//! process gave (see the maps in `main.rs`):
//! - a bare name (no '/'): by (the dirfd's or the cwd's inode, name): a name looked for in
//!   that directory, or any name in a listed directory;
//! - otherwise by its last two components: a looked-for name in a directory of a name that
//!   holds looked-for names, or any name in a directory named like a listed one; and when the
//!   directory component cannot tell (`.`, `..`, empty, too long), a looked-for or `.conf`
//!   name;
//! - a cut or unreadable path: always (userspace compares its head).
//!
//! A match is kept in `PATH_STASH` until sys_exit adds the result (see `sys_exit.rs`).

use aya_ebpf::{
    helpers::bpf_get_current_pid_tgid, macros::tracepoint, programs::TracePointContext,
};
use monitor_common::{
    FLAG_MATCH_NAME, FLAG_MATCH_PARENT, FLAG_PATH_TRUNCATED, FLAG_PATH2_TRUNCATED, PATH_LEN,
    counter, name_bits, op, watch,
};

use crate::{
    PATH_STASH, WATCHED_INODES,
    util::{
        AT_FDCWD, C_CONF, C_DOTS, C_HEXDASH, C_TOO_LONG, C_UNREADABLE, arg, component, count,
        dir_inode, entry_watched, match_fd, name_lookup, opaque, read_user_path, scratch,
        set_linked, set_linked_for_good, walk_all,
    },
};

const NONE: usize = usize::MAX;

/// How one path of a path operation is relevant: 0 (not), or a `FLAG_MATCH_*` bit, plus
/// `truncated` when it was cut.
#[inline(always)]
fn decide(path: u64, dirfd: i32, dst: &mut [u8; PATH_LEN], len_out: &mut u32) -> (u32, bool) {
    let (len, whole) = read_user_path(path, dst);
    *len_out = len as u32;
    if !whole {
        // Cut or unreadable: the kernel cannot tell, userspace compares what it has.
        return (if len > 0 { FLAG_MATCH_NAME } else { 0 }, len > 0);
    }
    if len == 0 {
        return (0, false);
    }
    let c = component(dst.as_ptr(), len);
    if c.flags & C_UNREADABLE != 0 || c.len == 0 {
        return (FLAG_MATCH_NAME, false);
    }
    if c.flags & C_TOO_LONG != 0 {
        return (if walk_all() { FLAG_MATCH_NAME } else { 0 }, false);
    }
    let bits = name_lookup(c.hash);
    if c.slash < 0 && c.flags & C_DOTS == 0 {
        // A bare name: the directory is known by inode.
        let Some(dir) = dir_inode(dirfd as i64) else {
            // No BTF: by name.
            let hit = bits & name_bits::ENTRY != 0 || c.flags & C_CONF != 0;
            return (if hit { FLAG_MATCH_NAME } else { 0 }, false);
        };
        let d = unsafe { WATCHED_INODES.get(&dir) }.copied().unwrap_or(0);
        let hit = d & watch::DIR_ANY != 0
            || (d & watch::DIR_NAMED != 0
                && bits & name_bits::ENTRY != 0
                && entry_watched(&dir, c.hash));
        return (if hit { FLAG_MATCH_PARENT } else { 0 }, false);
    }
    let named = bits & name_bits::ENTRY != 0;
    if c.slash <= 0 {
        // "/name", or "." / "..": the directory component cannot tell.
        return (
            if named || c.flags & C_CONF != 0 {
                FLAG_MATCH_NAME
            } else {
                0
            },
            false,
        );
    }
    let p = component(dst.as_ptr(), c.slash as usize);
    if p.len == 0 || p.flags & (C_UNREADABLE | C_TOO_LONG | C_DOTS) != 0 {
        let hit = named || c.flags & (C_CONF | C_DOTS) != 0;
        return (if hit { FLAG_MATCH_NAME } else { 0 }, false);
    }
    let pbits = name_lookup(p.hash);
    let hit = pbits & name_bits::LISTED != 0 || (named && pbits & name_bits::PARENT != 0);
    (if hit { FLAG_MATCH_NAME } else { 0 }, false)
}

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
    let d1 = if dfd != NONE {
        arg(ctx, dfd) as i32
    } else {
        AT_FDCWD
    };
    let d2 = if dfd2 != NONE {
        arg(ctx, dfd2) as i32
    } else if p2 != NONE {
        AT_FDCWD
    } else {
        -1
    };
    // symlink(target, linkpath): the target is a string, not resolved against a dirfd; it
    // counts by its name (a link to an input is a new name of it, which userspace watches).
    let (m1, t1) = if op == monitor_common::op::SYMLINK {
        let (len, whole) = read_user_path(arg(ctx, p1), &mut ev.path);
        ev.path_len = len as u32;
        let m = if whole && len > 0 {
            let c = component(ev.path.as_ptr(), len);
            let b = name_lookup(c.hash);
            if b & name_bits::FILE != 0 || c.flags & C_HEXDASH != 0 {
                // A new name for a watched file (or an fd reopen): names cannot decide opens
                // any more.
                set_linked_for_good();
            }
            c.flags & (C_TOO_LONG | C_CONF | C_DOTS | C_UNREADABLE) != 0
                || b & (name_bits::ENTRY | name_bits::LISTED | name_bits::PARENT) != 0
        } else {
            set_linked_for_good();
            len > 0
        };
        (if m { FLAG_MATCH_NAME } else { 0 }, !whole && len > 0)
    } else {
        decide(arg(ctx, p1), d1, &mut ev.path, &mut ev.path_len)
    };
    // Each decision has many ways out; see `opaque`.
    let (m1, t1) = (opaque(m1 as u64) as u32, opaque(t1 as u64) != 0);
    if op == monitor_common::op::LINK && m1 != 0 {
        // A hard link of a watched name: userspace sets the walk from st_nlink once it has
        // the record; this covers the opens in between.
        set_linked();
    }
    let (m2, t2) = if p2 != NONE {
        decide(arg(ctx, p2), d2, &mut ev.path2, &mut ev.path2_len)
    } else {
        (0, false)
    };
    let (m2, t2) = (opaque(m2 as u64) as u32, opaque(t2 as u64) != 0);
    if m1 | m2 == 0 {
        count(counter::FILE_FILTERED);
        return;
    }
    ev.op = op;
    ev.flags = m1
        | m2
        | if t1 { FLAG_PATH_TRUNCATED } else { 0 }
        | if t2 { FLAG_PATH2_TRUNCATED } else { 0 };
    ev.dirfd = d1;
    ev.dirfd2 = d2;
    ev.sys_flags = if flags != NONE { arg(ctx, flags) } else { 0 };
    // Where a relative path was given: the process (and with it its cwd and fds in /proc)
    // may be gone before userspace reads the record. A symlink's target is only a string.
    if op != monitor_common::op::SYMLINK && ev.path_len > 0 && ev.path[0] != b'/' {
        if let Some(d) = dir_inode(d1 as i64) {
            ev.base_dev = d.dev;
            ev.base_ino = d.ino;
        }
    }
    if p2 != NONE && ev.path2_len > 0 && ev.path2[0] != b'/' {
        if let Some(d) = dir_inode(d2 as i64) {
            ev.base2_dev = d.dev;
            ev.base2_ino = d.ino;
        }
    }
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

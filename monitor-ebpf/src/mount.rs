//! Mounts: a `mount --bind` over a config file, or any mount or unmount on the path of an
//! input, changes what the kubelet reads without a write. mount(2), move_mount(2) and
//! umount2(2) are rare, so every one is stashed and sent with its result (by
//! `kd_blind_exit`); userspace decides whether its target concerns an input. open_tree(2)
//! and fsmount(2) make detached trees, which become visible only through move_mount(2).

use aya_ebpf::{
    helpers::bpf_probe_read_user_str_bytes, macros::tracepoint, programs::TracePointContext,
};
use monitor_common::{FLAG_PATH_TRUNCATED, PATH_LEN, blind};

use crate::{
    ancestors::stash,
    util::{arg, scratch},
};

const AT_FDCWD: i32 = -100;

#[inline(always)]
fn mount_op(ctx: &TracePointContext, op: u32, dirfd: Option<usize>, path: usize, flags: usize) {
    let Some(ev) = scratch() else { return };
    let src = arg(ctx, path) as *const u8;
    let (len, cut) = match unsafe { bpf_probe_read_user_str_bytes(src, &mut ev.path) } {
        Ok(s) => (s.len(), s.len() >= PATH_LEN - 1),
        // Unreadable: userspace cannot place it, so it re-evaluates.
        Err(_) => (0, true),
    };
    ev.path_len = len as u32;
    ev.op = op;
    ev.flags = blind::FLAG_MATCH_ANCESTOR | if cut { FLAG_PATH_TRUNCATED } else { 0 };
    ev.dirfd = dirfd.map_or(AT_FDCWD, |i| arg(ctx, i) as i32);
    ev.sys_flags = arg(ctx, flags);
    ev.path2[0] = 0;
    stash(ev);
}

/// mount(dev_name, dir_name, type, flags, data): the target is `dir_name`.
#[tracepoint]
pub fn kd_mount(ctx: TracePointContext) -> u32 {
    mount_op(&ctx, blind::op::MOUNT, None, 1, 3);
    0
}

/// move_mount(from_dfd, from_path, to_dfd, to_path, flags).
#[tracepoint]
pub fn kd_move_mount(ctx: TracePointContext) -> u32 {
    mount_op(&ctx, blind::op::MOUNT, Some(2), 3, 4);
    0
}

/// umount2(target, flags) (the tracepoint is `sys_enter_umount`).
#[tracepoint]
pub fn kd_umount(ctx: TracePointContext) -> u32 {
    mount_op(&ctx, blind::op::UMOUNT, None, 0, 1);
    0
}

//! `sys_enter_close`: the writer of a watched file is done, so its content is final. Only fds
//! recorded in `OPEN_FDS` (watched files opened for writing) are reported.

use aya_ebpf::{
    helpers::bpf_get_current_pid_tgid, macros::tracepoint, programs::TracePointContext,
};
use monitor_common::op;

use crate::{
    OPEN_FDS,
    util::{any_writers, arg, scratch, submit_file},
};

#[tracepoint]
pub fn kd_close(ctx: TracePointContext) -> u32 {
    if !any_writers() {
        return 0;
    }
    let fd = arg(&ctx, 0) as u32;
    let key = (bpf_get_current_pid_tgid() & 0xffff_ffff_0000_0000) | fd as u64;
    let Some(inode) = (unsafe { OPEN_FDS.get(&key) }).copied() else {
        return 0;
    };
    let _ = OPEN_FDS.remove(&key);
    let Some(ev) = scratch() else { return 0 };
    ev.op = op::CLOSE;
    ev.dirfd = fd as i32;
    ev.dev = inode.dev;
    ev.ino = inode.ino;
    ev.path[0] = 0;
    submit_file(ev);
    0
}

//! open_by_handle_at(2): opens a file by its handle, with no path at all. Write-intent calls
//! are stashed like any open (path unknown); `kd_open_exit`, attached to its sys_exit too,
//! then decides by the opened file's inode exactly as for open(2).

use aya_ebpf::{
    helpers::bpf_get_current_pid_tgid, macros::tracepoint, programs::TracePointContext,
};
use monitor_common::{OpenStash, counter, state};

use crate::{
    OPEN_STASH,
    util::{arg, count, state_add},
};

const O_WRONLY: u64 = 0o1;
const O_RDWR: u64 = 0o2;
const O_CREAT: u64 = 0o100;
const O_TRUNC: u64 = 0o1000;
const WRITE_INTENT: u64 = O_WRONLY | O_RDWR | O_CREAT | O_TRUNC;

/// open_by_handle_at(mount_fd, handle, flags).
#[tracepoint]
pub fn kd_open_by_handle_at(ctx: TracePointContext) -> u32 {
    let flags = arg(&ctx, 2);
    if flags & WRITE_INTENT == 0 {
        return 0;
    }
    let stash = OpenStash {
        path: 0,
        flags,
        dirfd: arg(&ctx, 0) as i32 as i64,
    };
    let id = bpf_get_current_pid_tgid();
    // As `open.rs`: `kd_open_exit` looks at the stash only while the gauge of pending opens
    // is above 0, and a stale entry (its exit unseen) must not count twice. No path, so no
    // name can rule it out: every write-intent open_by_handle_at is decided at exit.
    let stale = unsafe { OPEN_STASH.get(&id) }.is_some();
    if OPEN_STASH.insert(&id, &stash, 0).is_err() {
        count(counter::STASH_FULL);
        return 0;
    }
    if !stale {
        state_add(state::PENDING_OPENS, 1);
    }
    0
}

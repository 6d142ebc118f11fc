//! `sched:sched_process_exit`: a tracked process ended: a kubelet (its exec was reported), or
//! a writer of a watched file (its remaining fds are closed by the exit). Threads and
//! untracked processes cost one hash lookup.

use aya_ebpf::{
    helpers::{bpf_get_current_pid_tgid, bpf_probe_read_kernel},
    macros::tracepoint,
    programs::TracePointContext,
};
use monitor_common::{ProcEvent, counter, kind, op, tracked};

use crate::{
    EVENTS, TRACKED,
    util::{count, fill_actor, header, lost, off, scratch, submit_file, writers_add},
};

#[tracepoint]
pub fn kd_exit(_ctx: TracePointContext) -> u32 {
    let id = bpf_get_current_pid_tgid();
    let (pid, tgid) = (id as u32, (id >> 32) as u32);
    if pid != tgid {
        return 0;
    }
    let Some(why) = (unsafe { TRACKED.get(&tgid) }).copied() else {
        return 0;
    };
    let _ = TRACKED.remove(&tgid);
    if why & tracked::WRITER != 0 {
        writers_add(-1);
        if let Some(ev) = scratch() {
            ev.op = op::WRITER_EXIT;
            ev.path[0] = 0;
            submit_file(ev);
        }
    }
    if why & tracked::KUBELET == 0 {
        return 0;
    }
    count(counter::EXIT_SEEN);
    let Some(mut entry) = EVENTS.reserve::<ProcEvent>(0) else {
        lost();
        return 0;
    };
    let ev = unsafe { &mut *entry.as_mut_ptr() };
    ev.header = header(kind::EXIT, core::mem::size_of::<ProcEvent>());
    fill_actor(&mut ev.actor);
    ev.exit_code = 0;
    if off!(have_parent) != 0 {
        let task = unsafe { aya_ebpf::helpers::generated::bpf_get_current_task() } as *const u8;
        ev.exit_code =
            unsafe { bpf_probe_read_kernel(task.add(off!(task_exit_code) as usize) as *const i32) }
                .unwrap_or(0);
    }
    ev.flags = 0;
    ev._pad = 0;
    ev.path_len = 0;
    ev.path[0] = 0;
    entry.submit(0);
    count(counter::SENT);
    0
}

//! `sched:sched_process_exec`: a watched executable started. The kernel has already set the
//! new comm (the basename of the executed file, cut to 15 bytes), so one hash lookup on it
//! drops every unrelated exec before anything is copied.

use aya_ebpf::{
    EbpfContext,
    helpers::{bpf_get_current_comm, bpf_get_current_pid_tgid, bpf_probe_read_kernel_str_bytes},
    macros::tracepoint,
    programs::TracePointContext,
};
use monitor_common::{CommKey, ProcEvent, counter, kind, tracked};

use crate::{
    EVENTS, TRACKED, WATCHED_COMMS,
    util::{count, fill_actor, header, lost, off},
};

#[tracepoint]
pub fn kd_exec(ctx: TracePointContext) -> u32 {
    count(counter::EXEC_SEEN);
    let Ok(comm) = bpf_get_current_comm() else {
        return 0;
    };
    if unsafe { WATCHED_COMMS.get(&CommKey { comm }) }.is_none() {
        count(counter::EXEC_FILTERED);
        return 0;
    }
    let tgid = (bpf_get_current_pid_tgid() >> 32) as u32;
    let why = unsafe { TRACKED.get(&tgid) }.copied().unwrap_or(0) | tracked::KUBELET;
    let _ = TRACKED.insert(&tgid, &why, 0);
    let Some(mut entry) = EVENTS.reserve::<ProcEvent>(0) else {
        lost();
        return 0;
    };
    let ev = unsafe { &mut *entry.as_mut_ptr() };
    ev.header = header(kind::EXEC, core::mem::size_of::<ProcEvent>());
    fill_actor(&mut ev.actor);
    ev.exit_code = 0;
    ev.flags = 0;
    ev._pad = 0;
    // `__data_loc char[] filename`: low 16 bits offset in the record, high 16 bits length.
    let loc: u32 = unsafe { ctx.read_at(off!(exec_filename) as usize) }.unwrap_or(0);
    let src = unsafe { (ctx.as_ptr() as *const u8).add((loc & 0xffff) as usize) };
    ev.path_len = match unsafe { bpf_probe_read_kernel_str_bytes(src, &mut ev.path) } {
        Ok(s) => s.len() as u32,
        Err(_) => 0,
    };
    entry.submit(0);
    count(counter::SENT);
    0
}

//! The floor under the per-open figure on this machine: what any design costs that runs one
//! program per tracepoint and reads the path a process gave at `sys_enter_openat`. Two
//! bpftrace programs on the same file workload, with the statistics on: an empty one (the
//! cost of being run at all, with bpf_stats' own clock reads) and one that only copies the
//! path from user memory (`bpf_probe_read_user_str`, the one helper a name-based filter
//! cannot avoid). Our three programs per iteration (open enter and exit, close) therefore
//! cannot cost less than 3 × empty + (copy − empty).

use anyhow::Result;

use super::{
    bpf,
    procs::{BpfStats, Bpftrace},
    workload::{Prepared, Workload},
};

/// ns per run of each calibration program (medians over rounds).
#[derive(Clone, Copy, Debug, Default)]
pub struct Floor {
    pub empty_ns: f64,
    pub copy_ns: f64,
}

impl Floor {
    /// The least three programs per write-open cost when one of them copies the path.
    pub fn per_open_ns(&self) -> f64 {
        3.0 * self.empty_ns + (self.copy_ns - self.empty_ns)
    }
}

const EMPTY: &str = "tracepoint:syscalls:sys_enter_openat { }";
/// The comparison keeps the copy from being optimised away; it never holds.
const COPY: &str = "tracepoint:syscalls:sys_enter_openat { $p = str(args->filename); \
                    if ($p == \"kd-never\") { @n = count(); } }";

pub fn measure(work: &Prepared, stats: &BpfStats, rounds: usize) -> Result<Floor> {
    let mut empty = Vec::new();
    let mut copy = Vec::new();
    for _ in 0..rounds {
        empty.push(ns_per_run(EMPTY, work, stats)?);
        copy.push(ns_per_run(COPY, work, stats)?);
    }
    Ok(Floor {
        empty_ns: super::stats::median(&empty),
        copy_ns: super::stats::median(&copy),
    })
}

/// ns per run of the one program of `program`, during the file workload.
fn ns_per_run(program: &str, work: &Prepared, stats: &BpfStats) -> Result<f64> {
    let mut b = Bpftrace::start_program(program, 1)?;
    stats.set(true)?;
    let res = (|| -> Result<f64> {
        let before = bpf::prog_breakdown(b.pid)?;
        work.run(Workload::File)?;
        let after = bpf::prog_breakdown(b.pid)?;
        let (mut ns, mut runs) = (0u64, 0u64);
        for (name, (t1, c1)) in &after {
            let (t0, c0) = before.get(name).copied().unwrap_or((0, 0));
            ns += t1.saturating_sub(t0);
            runs += c1.saturating_sub(c0);
        }
        anyhow::ensure!(runs > 0, "the calibration program never ran");
        Ok(ns as f64 / runs as f64)
    })();
    stats.set(false)?;
    b.stop();
    res
}

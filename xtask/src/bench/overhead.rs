//! Host overhead: the workloads' CPU time with no watcher, with the daemon, and with the
//! naive bpftrace peer, interleaved over rounds (the order flips every round so a drift of
//! the machine's speed does not favour one side). In each watched phase the workloads run
//! twice: once with kernel.bpf_stats_enabled=0 for the CPU-time ratio (so the statistics'
//! own clock reads do not inflate it), once with it on, for the programs' run time.

use std::collections::BTreeMap;

use anyhow::Result;

use super::{
    bpf,
    procs::{self, BpfStats, Bpftrace, Daemon, ProgStats},
    setup_say,
    workload::{EXECS, FILE_ITERATIONS, Prepared, Workload},
};

#[derive(Default)]
pub struct Watched {
    /// CPU seconds per round, statistics off.
    pub cpu_file: Vec<f64>,
    pub cpu_exec: Vec<f64>,
    /// Programs' run time / workload CPU time, per round (statistics on).
    pub share_file: Vec<f64>,
    pub share_exec: Vec<f64>,
    /// Program runs per workload iteration and ns per run (statistics on).
    pub runs_per_file_iter: Vec<f64>,
    pub ns_per_run_file: Vec<f64>,
    pub runs_per_exec: Vec<f64>,
    pub ns_per_run_exec: Vec<f64>,
    /// Per program name, summed over rounds: (run_time_ns, run_cnt) during each workload.
    pub progs_file: BTreeMap<String, (u64, u64)>,
    pub progs_exec: BTreeMap<String, (u64, u64)>,
}

impl Watched {
    /// eBPF ns per file-workload iteration (one unrelated write-intent open, its write and
    /// close), per round: runs per iteration × ns per run, all programs.
    pub fn ns_per_file_iteration(&self) -> Vec<f64> {
        self.runs_per_file_iter
            .iter()
            .zip(&self.ns_per_run_file)
            .map(|(r, n)| r * n)
            .collect()
    }
}

#[derive(Default)]
pub struct Overhead {
    pub rounds: usize,
    pub off_file: Vec<f64>,
    pub off_exec: Vec<f64>,
    pub daemon: Watched,
    pub bpftrace: Watched,
    /// What any path-reading design costs per write-open here (see `calibrate`).
    pub floor: super::calibrate::Floor,
}

impl Overhead {
    /// Per-round with/without ratios.
    pub fn ratios(&self, w: &Watched, which: Workload) -> Vec<f64> {
        let (on, off) = match which {
            Workload::File => (&w.cpu_file, &self.off_file),
            Workload::Exec => (&w.cpu_exec, &self.off_exec),
        };
        on.iter().zip(off).map(|(a, b)| a / b).collect()
    }
}

#[derive(Clone, Copy, Debug)]
enum Phase {
    Off,
    Daemon,
    Bpftrace,
}

pub fn run(
    rounds: usize,
    work: &Prepared,
    stats: &BpfStats,
    mut start_daemon: impl FnMut() -> Result<Daemon>,
) -> Result<Overhead> {
    let mut o = Overhead {
        rounds,
        ..Default::default()
    };
    stats.set(false)?;
    for r in 0..rounds {
        let order = if r % 2 == 0 {
            [Phase::Off, Phase::Daemon, Phase::Bpftrace]
        } else {
            [Phase::Bpftrace, Phase::Daemon, Phase::Off]
        };
        for phase in order {
            match phase {
                Phase::Off => {
                    o.off_file.push(work.run(Workload::File)?);
                    o.off_exec.push(work.run(Workload::Exec)?);
                }
                Phase::Daemon => {
                    let mut d = start_daemon()?;
                    watched(work, stats, d.pid, &mut o.daemon)?;
                    d.stop();
                }
                Phase::Bpftrace => {
                    let mut b = Bpftrace::start()?;
                    watched(work, stats, b.pid, &mut o.bpftrace)?;
                    b.stop();
                }
            }
        }
        setup_say(&format!(
            "overhead round {}/{rounds}: file {:.3}s off / {:.3}s daemon / {:.3}s bpftrace; \
             exec {:.3}s / {:.3}s / {:.3}s",
            r + 1,
            o.off_file[r],
            o.daemon.cpu_file[r],
            o.bpftrace.cpu_file[r],
            o.off_exec[r],
            o.daemon.cpu_exec[r],
            o.bpftrace.cpu_exec[r],
        ));
    }
    Ok(o)
}

fn watched(work: &Prepared, stats: &BpfStats, pid: u32, w: &mut Watched) -> Result<()> {
    w.cpu_file.push(work.run(Workload::File)?);
    w.cpu_exec.push(work.run(Workload::Exec)?);
    stats.set(true)?;
    let res = (|| -> Result<()> {
        let b0 = bpf::prog_breakdown(pid)?;
        let s0 = procs::prog_stats(pid)?;
        let cf = work.run(Workload::File)?;
        let s1 = procs::prog_stats(pid)?;
        let b1 = bpf::prog_breakdown(pid)?;
        let ce = work.run(Workload::Exec)?;
        let s2 = procs::prog_stats(pid)?;
        let b2 = bpf::prog_breakdown(pid)?;
        add_delta(&mut w.progs_file, &b0, &b1);
        add_delta(&mut w.progs_exec, &b1, &b2);
        let (f, e): (ProgStats, ProgStats) = (s1 - s0, s2 - s1);
        w.share_file.push(f.run_time_ns as f64 / (cf * 1e9));
        w.share_exec.push(e.run_time_ns as f64 / (ce * 1e9));
        w.runs_per_file_iter
            .push(f.run_cnt as f64 / FILE_ITERATIONS as f64);
        w.ns_per_run_file
            .push(f.run_time_ns as f64 / f.run_cnt.max(1) as f64);
        w.runs_per_exec.push(e.run_cnt as f64 / EXECS as f64);
        w.ns_per_run_exec
            .push(e.run_time_ns as f64 / e.run_cnt.max(1) as f64);
        Ok(())
    })();
    stats.set(false)?;
    res
}

fn add_delta(
    acc: &mut BTreeMap<String, (u64, u64)>,
    before: &BTreeMap<String, (u64, u64)>,
    after: &BTreeMap<String, (u64, u64)>,
) {
    for (name, (t1, c1)) in after {
        let (t0, c0) = before.get(name).copied().unwrap_or((0, 0));
        let e = acc.entry(name.clone()).or_insert((0, 0));
        e.0 += t1.saturating_sub(t0);
        e.1 += c1.saturating_sub(c0);
    }
}

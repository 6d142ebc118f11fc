//! The daemon's footprint: RSS and wakeups when idle, CPU during an edit storm, and whether
//! its verdict after the storm is the file's final content.

use std::{
    fs,
    io::Write,
    path::Path,
    thread,
    time::{Duration, Instant},
};

use anyhow::Result;

use super::{
    bpf,
    latency::config_text,
    procs::{self, Daemon},
};

pub struct Idle {
    pub rss_mib: f64,
    pub wakeups: u64,
    pub involuntary: u64,
    pub cpu_percent: f64,
    pub lines: usize,
    pub seconds: f64,
    /// Ring-buffer records the daemon's programs sent in the window (other processes'
    /// activity on the machine that passed the kernel prefilter).
    pub records: u64,
}

/// Called right after the baseline: settles 1 s, reads VmRSS, then counts context switches
/// of all the daemon's threads over `secs` seconds of quiet.
pub fn idle(d: &mut Daemon, secs: u64) -> Result<Idle> {
    thread::sleep(Duration::from_secs(1));
    d.drain();
    let rss_kib = procs::status_field(d.pid, "VmRSS", false)?;
    let v0 = procs::status_field(d.pid, "voluntary_ctxt_switches", true)?;
    let n0 = procs::status_field(d.pid, "nonvoluntary_ctxt_switches", true)?;
    let c0 = procs::cpu_seconds(d.pid)?;
    let k0 = bpf::counters(d.pid)?;
    let t0 = Instant::now();
    thread::sleep(Duration::from_secs(secs));
    let k1 = bpf::counters(d.pid)?;
    let v1 = procs::status_field(d.pid, "voluntary_ctxt_switches", true)?;
    let n1 = procs::status_field(d.pid, "nonvoluntary_ctxt_switches", true)?;
    let c1 = procs::cpu_seconds(d.pid)?;
    let wall = t0.elapsed().as_secs_f64();
    Ok(Idle {
        rss_mib: rss_kib as f64 / 1024.0,
        wakeups: v1 - v0,
        involuntary: n1 - n0,
        cpu_percent: (c1 - c0) / wall * 100.0,
        lines: d.drain().len(),
        seconds: wall,
        records: k1[bpf::SENT] - k0[bpf::SENT],
    })
}

pub struct Storm {
    pub edits: usize,
    pub seconds: f64,
    pub edits_per_s: f64,
    pub cpu_percent: f64,
    pub rss_mib: f64,
    pub reports: usize,
    pub final_value: bool,
    pub last_reported: Option<String>,
    pub verdict_right: bool,
    pub records: u64,
    pub dropped: u64,
}

/// O_TRUNC rewrites of `config` paced at `rate` per second for `secs` seconds, alternating
/// the value and ending on `false`; then up to 3 s for the daemon to settle.
pub fn storm(d: &mut Daemon, config: &Path, rate: u32, secs: f64) -> Result<Storm> {
    d.drain();
    let texts = [config_text(false), config_text(true)];
    let total = (f64::from(rate) * secs) as usize;
    let total = total + (total % 2); // an even count: edit i writes i % 2 == 1, the last false
    let period = Duration::from_secs_f64(1.0 / f64::from(rate));
    let c0 = procs::cpu_seconds(d.pid)?;
    let k0 = bpf::counters(d.pid)?;
    let start = Instant::now();
    let mut reports = 0;
    let mut last: Option<String> = None;
    let take = |d: &mut Daemon, reports: &mut usize, last: &mut Option<String>| {
        for (_, v) in d.drain() {
            *reports += 1;
            if procs::subject_kind(&v) == "after_restart" {
                *last = v["unmapped"]["effective"].as_str().map(String::from);
            }
        }
    };
    for i in 0..total {
        let value = if i + 1 == total { false } else { i % 2 == 1 };
        let due = start + period * i as u32;
        loop {
            let now = Instant::now();
            if now >= due {
                break;
            }
            if due - now > Duration::from_micros(300) {
                thread::sleep(due - now - Duration::from_micros(200));
            } else {
                std::hint::spin_loop();
            }
        }
        let mut f = fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(config)?;
        f.write_all(texts[usize::from(value)].as_bytes())?;
        if i % 1024 == 0 {
            take(d, &mut reports, &mut last);
        }
    }
    let wall = start.elapsed().as_secs_f64();
    let c1 = procs::cpu_seconds(d.pid)?;
    let rss_kib = procs::status_field(d.pid, "VmRSS", false)?;
    // Settle: the last after-restart report must come within 3 s of the last edit. Reports
    // only come on a change, so the last one (during or after the storm) is the verdict.
    let settle = Instant::now() + Duration::from_secs(3);
    while Instant::now() < settle {
        thread::sleep(Duration::from_millis(100));
        take(d, &mut reports, &mut last);
    }
    let k1 = bpf::counters(d.pid)?;
    Ok(Storm {
        records: k1[bpf::SENT] - k0[bpf::SENT],
        dropped: k1[bpf::DROPPED] - k0[bpf::DROPPED],
        edits: total,
        seconds: wall,
        edits_per_s: total as f64 / wall,
        cpu_percent: (c1 - c0) / wall * 100.0,
        rss_mib: rss_kib as f64 / 1024.0,
        reports,
        final_value: false,
        verdict_right: last.as_deref() == Some("false"),
        last_reported: last,
    })
}

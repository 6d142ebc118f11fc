//! Processes the bench starts and watches: the daemon (its JSON lines, stamped on arrival),
//! inotifywait, bpftrace; /proc readings (RSS, CPU ticks, context switches, eBPF program
//! run time from fdinfo); the bpf_stats sysctl. Every process is ended by its own pid.

use std::{
    fs,
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::mpsc::{self, Receiver, RecvTimeoutError},
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use serde_json::Value;

/// A running `kubelet-drift run --json-out -`: each stdout line is parsed and stamped with
/// `Instant::now()` (CLOCK_MONOTONIC) by a reader thread the moment it is readable.
pub struct Daemon {
    child: Child,
    pub pid: u32,
    lines: Receiver<(Instant, Value)>,
    stderr: PathBuf,
}

impl Daemon {
    /// Starts the daemon and waits for its after-restart baseline (it is attached then).
    pub fn start(bin: &Path, args: &[String], stderr: &Path) -> Result<Daemon> {
        Daemon::start_with_env(bin, args, stderr, &[])
    }

    /// [`Daemon::start`] with extra environment variables.
    pub fn start_with_env(
        bin: &Path,
        args: &[String],
        stderr: &Path,
        env: &[(&str, &str)],
    ) -> Result<Daemon> {
        let err = fs::File::create(stderr)?;
        let mut child = Command::new(bin)
            .envs(env.iter().copied())
            .arg("run")
            .args(["--json-out", "-", "--journald", "false", "--text", "false"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(err)
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let out = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            let mut r = BufReader::new(out);
            let mut line = String::new();
            loop {
                line.clear();
                match r.read_line(&mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
                let t = Instant::now();
                if let Ok(v) = serde_json::from_str::<Value>(&line)
                    && tx.send((t, v)).is_err()
                {
                    break;
                }
            }
        });
        let pid = child.id();
        let mut d = Daemon {
            child,
            pid,
            lines: rx,
            stderr: stderr.to_path_buf(),
        };
        // Loading (BTF, ~25 programs through the verifier) takes seconds, and much longer on
        // a machine loaded by other work.
        let base = d.wait_for(Duration::from_secs(120), |v| {
            change(v) == "baseline" && subject_kind(v) == "after_restart"
        });
        if base.is_none() {
            let tail = d.stderr_tail();
            d.stop();
            bail!(
                "the daemon reported no after-restart baseline within 120 s; its stderr:\n{tail}"
            );
        }
        Ok(d)
    }

    /// The next line matching `pred` within `timeout` (other lines are dropped).
    pub fn wait_for(
        &mut self,
        timeout: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> Option<(Instant, Value)> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok((t, v)) if pred(&v) => return Some((t, v)),
                Ok(_) => {}
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => return None,
            }
        }
    }

    /// Every line that arrived so far.
    pub fn drain(&mut self) -> Vec<(Instant, Value)> {
        self.lines.try_iter().collect()
    }

    pub fn stderr_tail(&self) -> String {
        let s = fs::read_to_string(&self.stderr).unwrap_or_default();
        let lines: Vec<&str> = s.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// SIGTERM, then SIGKILL after 5 s; waits for the exit.
    pub fn stop(&mut self) {
        stop_child(&mut self.child, libc::SIGTERM);
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Sends `sig` to the child (by its pid), waits up to 5 s, then SIGKILLs it.
pub fn stop_child(child: &mut Child, sig: i32) {
    if let Ok(Some(_)) = child.try_wait() {
        return;
    }
    // SAFETY: kill(2) on the pid of a child we started and have not reaped yet.
    unsafe { libc::kill(child.id() as i32, sig) };
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        thread::sleep(Duration::from_millis(10));
    }
    let _ = child.kill();
    let _ = child.wait();
}

pub fn change(v: &Value) -> &str {
    v["unmapped"]["change"].as_str().unwrap_or("")
}

pub fn subject_kind(v: &Value) -> &str {
    v["unmapped"]["subject"]["kind"].as_str().unwrap_or("")
}

/// `inotifywait -m` on a directory: lines (`EVENTS NAME`) naming `name`, stamped on arrival.
pub struct Inotify {
    child: Child,
    lines: Receiver<(Instant, String)>,
}

impl Inotify {
    pub fn start(dir: &Path, name: &str) -> Result<Inotify> {
        let mut child = Command::new("inotifywait")
            .args([
                "-m",
                "-e",
                "modify,close_write,moved_to,create,delete,attrib,move_self,delete_self",
            ])
            .args(["--format", "%e %f"])
            .arg(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("starting inotifywait")?;
        // It says "Watches established." on stderr once its watch is in place.
        let mut err = BufReader::new(child.stderr.take().unwrap());
        let mut line = String::new();
        loop {
            line.clear();
            if err.read_line(&mut line)? == 0 {
                bail!("inotifywait ended before establishing its watch");
            }
            if line.contains("Watches established") {
                break;
            }
        }
        thread::spawn(move || for _ in err.lines() {});
        let out = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        let suffix = format!(" {name}");
        thread::spawn(move || {
            let mut r = BufReader::new(out);
            let mut line = String::new();
            loop {
                line.clear();
                match r.read_line(&mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
                let t = Instant::now();
                if line.trim_end().ends_with(&suffix)
                    && tx.send((t, line.trim_end().to_string())).is_err()
                {
                    break;
                }
            }
        });
        Ok(Inotify { child, lines: rx })
    }

    /// The first line at or after `since`, within `timeout`.
    pub fn first_after(&self, since: Instant, timeout: Duration) -> Option<(Instant, String)> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok((t, l)) if t >= since => return Some((t, l)),
                Ok(_) => {}
                Err(_) => return None,
            }
        }
    }

    pub fn drain(&self) {
        while self.lines.try_recv().is_ok() {}
    }
}

impl Drop for Inotify {
    fn drop(&mut self) {
        stop_child(&mut self.child, libc::SIGTERM);
    }
}

/// The naive peer: bpftrace counting openat entries and execs in per-CPU maps.
pub struct Bpftrace {
    child: Child,
    pub pid: u32,
}

pub const BPFTRACE_PROGRAM: &str = "tracepoint:syscalls:sys_enter_openat { @o = count(); } \
                                    tracepoint:sched:sched_process_exec { @e = count(); }";

impl Bpftrace {
    pub fn start() -> Result<Bpftrace> {
        Bpftrace::start_program(BPFTRACE_PROGRAM, 2)
    }

    /// bpftrace running `program`, once its `probes` programs are loaded and attached.
    pub fn start_program(program: &str, probes: usize) -> Result<Bpftrace> {
        let child = Command::new("bpftrace")
            .args(["-e", program])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting bpftrace")?;
        let pid = child.id();
        let mut b = Bpftrace { child, pid };
        // Loaded: a bpf-prog fd per probe; attached: a perf_event fd per probe.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let progs = fd_links(pid, "anon_inode:bpf-prog");
            let perfs =
                fd_links(pid, "anon_inode:[perf_event]") + fd_links(pid, "anon_inode:bpf_link");
            if progs >= probes && perfs >= probes {
                break;
            }
            if Instant::now() > deadline || matches!(b.child.try_wait(), Ok(Some(_))) {
                bail!("bpftrace did not load and attach its {probes} programs within 30 s");
            }
            thread::sleep(Duration::from_millis(20));
        }
        thread::sleep(Duration::from_millis(200));
        Ok(b)
    }

    pub fn stop(&mut self) {
        stop_child(&mut self.child, libc::SIGINT);
    }
}

impl Drop for Bpftrace {
    fn drop(&mut self) {
        self.stop();
    }
}

fn fd_links(pid: u32, target: &str) -> usize {
    let Ok(rd) = fs::read_dir(format!("/proc/{pid}/fd")) else {
        return 0;
    };
    rd.filter_map(|e| e.ok())
        .filter(|e| fs::read_link(e.path()).is_ok_and(|l| l.as_os_str() == target))
        .count()
}

/// Sum of run_time_ns and run_cnt over the eBPF programs `pid` holds (fdinfo of its
/// "anon_inode:bpf-prog" fds). Counted only while kernel.bpf_stats_enabled=1.
#[derive(Clone, Copy, Debug, Default)]
pub struct ProgStats {
    pub run_time_ns: u64,
    pub run_cnt: u64,
    pub progs: usize,
}

impl std::ops::Sub for ProgStats {
    type Output = ProgStats;
    fn sub(self, o: ProgStats) -> ProgStats {
        ProgStats {
            run_time_ns: self.run_time_ns.saturating_sub(o.run_time_ns),
            run_cnt: self.run_cnt.saturating_sub(o.run_cnt),
            progs: self.progs,
        }
    }
}

pub fn prog_stats(pid: u32) -> Result<ProgStats> {
    let mut s = ProgStats::default();
    for e in fs::read_dir(format!("/proc/{pid}/fd"))? {
        let e = e?;
        if !fs::read_link(e.path()).is_ok_and(|l| l.as_os_str() == "anon_inode:bpf-prog") {
            continue;
        }
        let info = fs::read_to_string(format!(
            "/proc/{pid}/fdinfo/{}",
            e.file_name().to_string_lossy()
        ))
        .unwrap_or_default();
        s.progs += 1;
        for l in info.lines() {
            let mut it = l.split_whitespace();
            match (it.next(), it.next().and_then(|v| v.parse::<u64>().ok())) {
                (Some("run_time_ns:"), Some(v)) => s.run_time_ns += v,
                (Some("run_cnt:"), Some(v)) => s.run_cnt += v,
                _ => {}
            }
        }
    }
    if s.progs == 0 {
        bail!("process {pid} holds no eBPF program fds");
    }
    Ok(s)
}

/// A `/proc/<pid>/status` field in its first unit (kB for VmRSS), summed over threads when
/// `all_threads`.
pub fn status_field(pid: u32, field: &str, all_threads: bool) -> Result<u64> {
    let files: Vec<PathBuf> = if all_threads {
        fs::read_dir(format!("/proc/{pid}/task"))?
            .filter_map(|e| e.ok())
            .map(|e| e.path().join("status"))
            .collect()
    } else {
        vec![PathBuf::from(format!("/proc/{pid}/status"))]
    };
    let mut sum = 0;
    for f in files {
        let s = fs::read_to_string(&f).with_context(|| format!("reading {}", f.display()))?;
        let v = s
            .lines()
            .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
            .with_context(|| format!("no {field} in {}", f.display()))?;
        sum += v;
    }
    Ok(sum)
}

/// utime + stime of the whole process, in seconds (from /proc/<pid>/stat).
pub fn cpu_seconds(pid: u32) -> Result<f64> {
    let s = fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the comm's closing parenthesis: state is field 3, utime 14, stime 15.
    let rest = &s[s.rfind(')').context("malformed stat")? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f[11].parse::<u64>()? + f[12].parse::<u64>()?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    Ok(ticks as f64 / hz)
}

/// kernel.bpf_stats_enabled, restored to what it was when dropped.
pub struct BpfStats {
    original: String,
}

const BPF_STATS: &str = "/proc/sys/kernel/bpf_stats_enabled";

impl BpfStats {
    pub fn new() -> Result<BpfStats> {
        let original = fs::read_to_string(BPF_STATS).context("reading kernel.bpf_stats_enabled")?;
        Ok(BpfStats {
            original: original.trim().to_string(),
        })
    }

    pub fn set(&self, on: bool) -> Result<()> {
        fs::write(BPF_STATS, if on { "1" } else { "0" }).context("setting kernel.bpf_stats_enabled")
    }
}

impl Drop for BpfStats {
    fn drop(&mut self) {
        let _ = fs::write(BPF_STATS, &self.original);
    }
}

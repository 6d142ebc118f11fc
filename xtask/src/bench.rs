//! `cargo xtask bench`: what kubelet-drift costs and how fast it reports, measured on this
//! machine in one run (as root: it loads eBPF), against a fake node root in a temp dir.
//!
//! 1. Idle: the daemon's RSS after its baseline, and its context switches over 10 s.
//! 2. Edit to finding: alternating edits of the watched config.yaml (O_TRUNC rewrite and
//!    rename-over), from just before the edit's system call to the moment the daemon's JSON
//!    line is readable on its stdout pipe; `inotifywait -m` on the same edits as reference.
//! 3. Kubelet exec to finding: a copy of /bin/sleep named `kubelet-bench`, spawn to its
//!    `kubelet_started` line.
//! 4. Storm: 10 000 rewrites per second for 5 s; the daemon's CPU, and whether its last
//!    verdict is the file's final content.
//! 5. Edit to finding again with `coalesce: 0s` (diagnostic: what the burst window costs).
//! 6. Host overhead: a file workload and an exec storm, without a watcher, with the daemon,
//!    with a naive bpftrace watcher, interleaved over rounds.
//! 7. Node noise: /dev/null, unrelated *.conf, log, /tmp and unit-directory writes and
//!    /bin/true for 10 s beside the daemon: records sent, wakeups, daemon CPU (target 0).
//! 8. The evaluation's own time for a config edit (the daemon's debug log).
//!
//! Prints a table with PASS/MISS per target and writes target/bench/summary.json. See
//! BENCHMARKS.md for the method and what the figures mean.

mod bpf;
mod calibrate;
mod large_inputs;
mod latency;
mod noise;
mod overhead;
mod procs;
mod resources;
mod stats;
mod workload;

use std::{
    fmt::Write as _,
    fs,
    path::{Path, PathBuf},
    time::Instant,
};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use crate::setup;
use procs::Daemon;
use stats::{max, median, min, percentile};
use workload::Workload;

const EDITS: usize = 240;
const EDITS_COALESCE0: usize = 120;
const EXEC_STARTS: usize = 100;
const IDLE_SECS: u64 = 10;
const STORM_RATE: u32 = 10_000;
const STORM_SECS: f64 = 5.0;
const ROUNDS: usize = 7;
const NOISE_SECS: u64 = 10;
const EVAL_EDITS: usize = 60;

pub(crate) fn setup_say(msg: &str) {
    setup::say(msg);
}

/// A temp dir removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(base: &Path, name: &str) -> Result<TempDir> {
        let p = base.join(format!("{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&p);
        fs::create_dir_all(&p).with_context(|| format!("creating {}", p.display()))?;
        Ok(TempDir(p))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// A kubeadm-style node: the upstream unit, kind's 10-kubeadm.conf drop-in, and
/// var/lib/kubelet/config.yaml holding makeIPTablesUtilChains: true. Returns config.yaml.
fn fake_node(root: &Path) -> Result<PathBuf> {
    let corpus = noise::corpus_dir(&setup::workspace_root())?;
    let files = [
        (
            "kubernetes-release/kubelet.service",
            "lib/systemd/system/kubelet.service",
        ),
        (
            "kind/10-kubeadm.conf",
            "etc/systemd/system/kubelet.service.d/10-kubeadm.conf",
        ),
    ];
    for (from, to) in files {
        let to = root.join(to);
        fs::create_dir_all(to.parent().unwrap())?;
        fs::copy(corpus.join(from), &to).with_context(|| {
            format!(
                "copying {} (the shared corpus)",
                corpus.join(from).display()
            )
        })?;
    }
    let config = root.join("var/lib/kubelet/config.yaml");
    fs::create_dir_all(config.parent().unwrap())?;
    fs::write(&config, latency::config_text(true))?;
    noise::prepare(root)?;
    Ok(config)
}

/// What every part runs against: the daemon's binary, a fake node in a temp dir on tmpfs,
/// the daemon's arguments for it.
struct Bench {
    bin: PathBuf,
    /// The overhead workload's files, inside `tmp` (declared first: dropped first).
    shm: TempDir,
    tmp: TempDir,
    root: PathBuf,
    config: PathBuf,
    stand_in: PathBuf,
    base_args: Vec<String>,
    stderr: PathBuf,
}

impl Bench {
    fn new(bin: PathBuf) -> Result<Bench> {
        // tmpfs: on this VM's ext4 an O_TRUNC rewrite costs ~280 µs (auto_da_alloc flushes the
        // data on truncate), which would cap the storm at ~3 500 edits/s.
        let tmp = TempDir::new(Path::new("/dev/shm"), "kd-bench")?;
        let shm = TempDir::new(&tmp.0, "work")?;
        let root = tmp.0.join("node");
        let config = fake_node(&root)?;
        let stand_in = latency::stand_in(&tmp.0)?;
        let base_args: Vec<String> = [
            "--host-root",
            root.to_str().context("temp dir is not UTF-8")?,
            "--kubelet-name",
            "kubelet-bench",
            "--node-name",
            "bench",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let stderr = tmp.0.join("daemon.stderr");
        Ok(Bench {
            bin,
            shm,
            tmp,
            root,
            config,
            stand_in,
            base_args,
            stderr,
        })
    }
}

/// One part of the bench (see `KD_BENCH_ONLY` in [`run`]), its figures printed.
fn run_only(only: &str, b: &Bench) -> Result<()> {
    let (bin, base_args, stderr) = (&b.bin, &b.base_args, &b.stderr);
    match only {
        "eval" => {
            let us = noise::evaluation_us(bin, base_args, stderr, &b.config, EVAL_EDITS)?;
            if us.is_empty() {
                bail!("no evaluation logged (see {})", stderr.display());
            }
            println!(
                "evaluation of a config edit (daemon took_us): n={} p50 {:.0} µs, p90 {:.0} µs, p99 {:.0} µs, min {:.0} µs, max {:.0} µs",
                us.len(),
                percentile(&us, 0.5),
                percentile(&us, 0.9),
                percentile(&us, 0.99),
                min(&us),
                max(&us)
            );
        }
        "overhead" => {
            let rounds: usize = std::env::var("KD_BENCH_ROUNDS")
                .ok()
                .and_then(|r| r.parse().ok())
                .unwrap_or(3);
            let work = workload::Prepared::new(&b.shm.0)?;
            let bpf_stats = procs::BpfStats::new()?;
            let mut ov = overhead::run(rounds, &work, &bpf_stats, || {
                Daemon::start(bin, base_args, stderr)
            })?;
            ov.floor = calibrate::measure(&work, &bpf_stats, 2)?;
            drop(bpf_stats);
            println!(
                "floor of a path-reading design: {:.0} ns per write open (empty program {:.0} ns, path copy {:.0} ns)",
                ov.floor.per_open_ns(),
                ov.floor.empty_ns,
                ov.floor.copy_ns
            );
            let per_open = ov.daemon.ns_per_file_iteration();
            let rf = ov.ratios(&ov.daemon, Workload::File);
            let bf = ov.ratios(&ov.bpftrace, Workload::File);
            println!(
                "per unrelated write open: {:.0} ns (rounds {per_open:.0?}); share file {:.2} % (rounds {:.2?}); ratio file {:.3} (rounds {rf:.3?}; bpftrace {:.3})",
                median(&per_open),
                median(&ov.daemon.share_file) * 100.0,
                ov.daemon
                    .share_file
                    .iter()
                    .map(|s| s * 100.0)
                    .collect::<Vec<_>>(),
                median(&rf),
                median(&bf),
            );
            for (name, (ns, runs)) in &ov.daemon.progs_file {
                let iters = (rounds * workload::FILE_ITERATIONS) as f64;
                if *runs > 0 {
                    println!(
                        "  {name}: {:.2} runs × {:.0} ns per file iteration",
                        *runs as f64 / iters,
                        *ns as f64 / *runs as f64
                    );
                }
            }
        }
        "latency" => {
            let ino = procs::Inotify::start(b.config.parent().unwrap(), "config.yaml")?;
            let mut d = Daemon::start(bin, base_args, stderr)?;
            // The kernel watch is armed after the baseline (see one_daemon).
            std::thread::sleep(std::time::Duration::from_secs(1));
            d.drain();
            let ed = latency::edits(&mut d, Some(&ino), &b.config, EDITS)?;
            let ex = latency::execs(&mut d, &b.stand_in, EXEC_STARTS)?;
            d.stop();
            let line = |what: &str, v: &[f64]| {
                if !v.is_empty() {
                    println!(
                        "{what}: n={} p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
                        v.len(),
                        percentile(v, 0.5),
                        percentile(v, 0.9),
                        percentile(v, 0.99),
                        max(v)
                    );
                }
            };
            line("edit to finding", &ed.daemon_ms);
            line("  truncate", &ed.daemon_ms_by_kind[0]);
            line("  rename-over", &ed.daemon_ms_by_kind[1]);
            line("inotifywait", &ed.inotify_ms);
            line("exec to finding", &ex.ms);
            println!(
                "missing: {} findings, {} inotify, {} starts",
                ed.missing_findings, ed.missing_inotify, ex.missing
            );
        }
        other => bail!("KD_BENCH_ONLY={other}: known parts are eval, overhead and latency"),
    }
    Ok(())
}

/// Cargo's target directory: `CARGO_TARGET_DIR` when set (relative to the workspace), else
/// `target/` of the workspace. The release binary the bench runs is the one cargo just built.
fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(d) if !d.is_empty() => setup::workspace_root().join(d),
        _ => setup::workspace_root().join("target"),
    }
}

/// The daemon's binary: the release build, built now.
fn binary() -> Result<PathBuf> {
    // KD_BENCH_BIN: another build's binary (a before/after comparison), not built here.
    Ok(match std::env::var_os("KD_BENCH_BIN") {
        Some(b) => PathBuf::from(b),
        None => {
            crate::cargo(&["build", "--release", "-p", "kubelet-drift"])?;
            target_dir().join("release/kubelet-drift")
        }
    })
}

pub fn run() -> Result<()> {
    setup::ensure(setup::Needs::All)?;
    if !crate::is_root() {
        bail!("the bench loads eBPF programs and reads other processes' fdinfo: run it as root");
    }
    let bin = binary()?;
    let started = Instant::now();
    let b = Bench::new(bin)?;
    // KD_BENCH_ONLY=eval|overhead|latency: only that part, printed (nothing written); for comparing
    // a change before and after without the whole four minutes.
    if let Ok(only) = std::env::var("KD_BENCH_ONLY") {
        return run_only(&only, &b);
    }

    // The parts, in this order: 1-4 and 7, 5, 8, 6.
    let one = one_daemon(&b)?;
    let ed0 = coalesce0(&b)?;
    let eval_us = evaluation(&b)?;
    let ov = overhead_part(&b)?;
    let m = Measured {
        one,
        ed0,
        eval_us,
        ov,
    };

    let f = Figures::new(&m);
    let summary = summary(&m, &f, started);
    let mut table = render(&rows(&m, &f));
    table.push_str(
        "\n\nPer kernel program, during the workloads (bpf_stats on; summed over rounds):\n\n",
    );
    table.push_str(&breakdown(&m.ov.daemon));
    table.push_str(&large_inputs::table(&b.bin, &b.tmp.0)?);
    println!("{table}");
    println!("bench took {:.0} s", started.elapsed().as_secs_f64());
    write_out(summary, table)
}

/// Parts 1-4 and 7, measured on one daemon.
struct OneDaemon {
    idle: resources::Idle,
    noise: noise::Noise,
    ed: latency::EditResult,
    ex: latency::ExecResult,
    storm: resources::Storm,
    /// The daemon's VmRSS after the storm, MiB.
    idle_after_rss: f64,
}

/// Every part's results.
struct Measured {
    one: OneDaemon,
    /// Part 5: edit to finding with `coalesce: 0s`.
    ed0: latency::EditResult,
    /// Part 8: the evaluation's own time, µs.
    eval_us: Vec<f64>,
    /// Part 6.
    ov: overhead::Overhead,
}

/// 1-4 (and 7): one daemon, inotifywait beside it.
fn one_daemon(b: &Bench) -> Result<OneDaemon> {
    let ino = procs::Inotify::start(b.config.parent().unwrap(), "config.yaml")?;
    let mut d = Daemon::start(&b.bin, &b.base_args, &b.stderr)?;
    setup::say(&format!(
        "daemon pid {} attached; idle for {IDLE_SECS} s",
        d.pid
    ));
    let idle = resources::idle(&mut d, IDLE_SECS)?;
    setup::say(&format!(
        "node noise for {NOISE_SECS} s (after {NOISE_SECS} s without it)"
    ));
    let noise = noise::run(&mut d, &b.root, NOISE_SECS)?;
    setup::say(&format!("{EDITS} edits"));
    let ed = latency::edits(&mut d, Some(&ino), &b.config, EDITS)?;
    setup::say(&format!("{EXEC_STARTS} kubelet starts"));
    let ex = latency::execs(&mut d, &b.stand_in, EXEC_STARTS)?;
    drop(ino);
    setup::say(&format!("edit storm: {STORM_RATE}/s for {STORM_SECS} s"));
    let storm = resources::storm(&mut d, &b.config, STORM_RATE, STORM_SECS)?;
    let idle_after_rss = procs::status_field(d.pid, "VmRSS", false)? as f64 / 1024.0;
    d.stop();
    Ok(OneDaemon {
        idle,
        noise,
        ed,
        ex,
        storm,
        idle_after_rss,
    })
}

/// 5: the same edits with no burst window.
fn coalesce0(b: &Bench) -> Result<latency::EditResult> {
    fs::write(&b.config, latency::config_text(true))?;
    let c0 = b.tmp.0.join("coalesce0.yaml");
    fs::write(&c0, "coalesce: 0s\n")?;
    let mut args0 = b.base_args.clone();
    args0.extend(["--config".to_string(), c0.display().to_string()]);
    let mut d0 = Daemon::start(&b.bin, &args0, &b.stderr)?;
    // The daemon arms its kernel watch only after it has reported the baseline: an edit in
    // that window is missed (see BENCHMARKS.md). Give it time, as the idle phase does above.
    std::thread::sleep(std::time::Duration::from_millis(500));
    setup::say(&format!("{EDITS_COALESCE0} edits with coalesce: 0s"));
    let ed0 = latency::edits(&mut d0, None, &b.config, EDITS_COALESCE0)?;
    d0.stop();
    drop(d0);
    Ok(ed0)
}

/// 8: the evaluation's own time.
fn evaluation(b: &Bench) -> Result<Vec<f64>> {
    fs::write(&b.config, latency::config_text(true))?;
    setup::say(&format!(
        "{EVAL_EDITS} edits with KUBELET_DRIFT_LOG=debug (evaluation time)"
    ));
    noise::evaluation_us(&b.bin, &b.base_args, &b.stderr, &b.config, EVAL_EDITS)
}

/// 6: overhead.
fn overhead_part(b: &Bench) -> Result<overhead::Overhead> {
    fs::write(&b.config, latency::config_text(true))?;
    let work = workload::Prepared::new(&b.shm.0)?;
    let bpf_stats = procs::BpfStats::new()?;
    setup::say(&format!(
        "overhead: {ROUNDS} rounds of {} file iterations and {} execs, off / daemon / bpftrace",
        workload::FILE_ITERATIONS,
        workload::EXECS
    ));
    let mut ov = overhead::run(ROUNDS, &work, &bpf_stats, || {
        Daemon::start(&b.bin, &b.base_args, &b.stderr)
    })?;
    setup::say("overhead: the floor of a path-reading design (two bpftrace programs)");
    ov.floor = calibrate::measure(&work, &bpf_stats, 2)?;
    drop(bpf_stats);
    Ok(ov)
}

/// The figures derived from the samples, shared by summary.json and the table.
struct Figures {
    edit_p50: f64,
    edit_p99: f64,
    ino_p50: f64,
    ino_p99: f64,
    exec_p50: f64,
    exec_p99: f64,
    e0_p50: f64,
    e0_p99: f64,
    /// eBPF ns per file-workload iteration, per round: the daemon's and bpftrace's.
    per_open: Vec<f64>,
    bper_open: Vec<f64>,
    eval_p50: f64,
    eval_p99: f64,
    /// Per-round with/without ratios: daemon file and exec, bpftrace file and exec.
    rf: Vec<f64>,
    re: Vec<f64>,
    bf: Vec<f64>,
    be: Vec<f64>,
}

impl Figures {
    fn new(m: &Measured) -> Figures {
        let (ed, ex, ed0, eval_us, ov) = (&m.one.ed, &m.one.ex, &m.ed0, &m.eval_us, &m.ov);
        Figures {
            edit_p50: percentile(&ed.daemon_ms, 0.5),
            edit_p99: percentile(&ed.daemon_ms, 0.99),
            ino_p50: percentile(&ed.inotify_ms, 0.5),
            ino_p99: percentile(&ed.inotify_ms, 0.99),
            exec_p50: percentile(&ex.ms, 0.5),
            exec_p99: percentile(&ex.ms, 0.99),
            e0_p50: percentile(&ed0.daemon_ms, 0.5),
            e0_p99: percentile(&ed0.daemon_ms, 0.99),
            per_open: ov.daemon.ns_per_file_iteration(),
            bper_open: ov.bpftrace.ns_per_file_iteration(),
            eval_p50: if eval_us.is_empty() {
                f64::NAN
            } else {
                percentile(eval_us, 0.5)
            },
            eval_p99: if eval_us.is_empty() {
                f64::NAN
            } else {
                percentile(eval_us, 0.99)
            },
            rf: ov.ratios(&ov.daemon, Workload::File),
            re: ov.ratios(&ov.daemon, Workload::Exec),
            bf: ov.ratios(&ov.bpftrace, Workload::File),
            be: ov.ratios(&ov.bpftrace, Workload::Exec),
        }
    }
}

fn put(m: &mut serde_json::Map<String, Value>, k: &str, v: Value) {
    m.insert(k.to_string(), v);
}

/// summary.json: the headline figures, then each part's samples under `details`.
fn summary(m: &Measured, f: &Figures, started: Instant) -> Value {
    let mut summary = headline(m, f);
    let mut details = details(m);
    put(&mut details, "overhead", overhead_details(&m.ov, f));
    put(
        &mut details,
        "seconds",
        json!(started.elapsed().as_secs_f64()),
    );
    put(
        &mut details,
        "kernel",
        json!(
            fs::read_to_string("/proc/sys/kernel/osrelease")
                .unwrap_or_default()
                .trim()
        ),
    );
    put(
        &mut details,
        "cpus",
        json!(
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(0)
        ),
    );
    summary.insert("details".into(), Value::Object(details));
    Value::Object(summary)
}

/// summary.json's top-level figures.
fn headline(m: &Measured, f: &Figures) -> serde_json::Map<String, Value> {
    let OneDaemon {
        idle, noise, storm, ..
    } = &m.one;
    let ov = &m.ov;
    let &Figures {
        edit_p50,
        edit_p99,
        ino_p50,
        ino_p99,
        exec_p50,
        exec_p99,
        e0_p50,
        e0_p99,
        ref per_open,
        ref bper_open,
        eval_p50,
        eval_p99,
        ref rf,
        ref re,
        ref bf,
        ref be,
    } = f;
    let mut summary = serde_json::Map::new();
    for (k, v) in [
        ("edit_to_finding_p50_ms", edit_p50),
        ("edit_to_finding_p99_ms", edit_p99),
        ("inotifywait_p50_ms", ino_p50),
        ("inotifywait_p99_ms", ino_p99),
        ("exec_to_finding_p50_ms", exec_p50),
        ("exec_to_finding_p99_ms", exec_p99),
        ("edit_to_finding_coalesce0_p50_ms", e0_p50),
        ("edit_to_finding_coalesce0_p99_ms", e0_p99),
        ("ebpf_share_file", median(&ov.daemon.share_file)),
        ("ebpf_share_exec", median(&ov.daemon.share_exec)),
        ("overhead_file_ratio", median(rf)),
        ("overhead_exec_ratio", median(re)),
        ("bpftrace_share_file", median(&ov.bpftrace.share_file)),
        ("bpftrace_share_exec", median(&ov.bpftrace.share_exec)),
        ("bpftrace_file_ratio", median(bf)),
        ("bpftrace_exec_ratio", median(be)),
        ("idle_rss_mib", idle.rss_mib),
        ("idle_cpu_percent", idle.cpu_percent),
        ("storm_cpu_percent", storm.cpu_percent),
        ("storm_rss_mib", storm.rss_mib),
        ("storm_edits_per_s", storm.edits_per_s),
        ("ebpf_ns_per_unrelated_write_open", median(per_open)),
        ("bpftrace_ns_per_unrelated_write_open", median(bper_open)),
        ("ebpf_floor_ns_per_write_open", ov.floor.per_open_ns()),
        ("ebpf_floor_empty_program_ns", ov.floor.empty_ns),
        ("ebpf_floor_path_copy_program_ns", ov.floor.copy_ns),
        ("noise_daemon_cpu_ms", noise.cpu_ms),
        ("evaluation_us_p50", eval_p50),
        ("evaluation_us_p99", eval_p99),
    ] {
        put(&mut summary, k, json!(v));
    }
    put(&mut summary, "idle_wakeups_10s", json!(idle.wakeups));
    put(&mut summary, "noise_records", json!(noise.records));
    put(&mut summary, "noise_wakeups", json!(noise.wakeups));
    put(
        &mut summary,
        "storm_final_verdict_right",
        json!(storm.verdict_right),
    );
    summary
}

/// summary.json's `details` of parts 1-5, 7 and 8: their samples and counts.
fn details(m: &Measured) -> serde_json::Map<String, Value> {
    let OneDaemon {
        idle,
        noise,
        ed,
        ex,
        storm,
        idle_after_rss,
    } = &m.one;
    let (ed0, eval_us) = (&m.ed0, &m.eval_us);
    let mut details = serde_json::Map::new();
    put(
        &mut details,
        "edits",
        json!({
            "edits": ed.edits, "missing_findings": ed.missing_findings,
            "missing_inotify": ed.missing_inotify, "missing": ed.missing,
            "daemon_ms": stats::summary(&ed.daemon_ms),
        "daemon_ms_truncate": stats::summary(&ed.daemon_ms_by_kind[0]),
        "daemon_ms_rename_over": stats::summary(&ed.daemon_ms_by_kind[1]),
        "inotifywait_ms": stats::summary(&ed.inotify_ms),
            "daemon_max_ms": max(&ed.daemon_ms), "inotifywait_max_ms": max(&ed.inotify_ms),
        }),
    );
    put(
        &mut details,
        "edits_coalesce0",
        json!({
            "edits": ed0.edits, "missing_findings": ed0.missing_findings, "missing": ed0.missing,
            "daemon_ms": stats::summary(&ed0.daemon_ms),
        }),
    );
    put(
        &mut details,
        "noise",
        json!({
            "seconds": noise.seconds, "iterations": noise.iterations, "records": noise.records,
            "wakeups": noise.wakeups, "daemon_cpu_ms": noise.cpu_ms, "json_lines": noise.lines,
            "control_records": noise.control_records, "control_wakeups": noise.control_wakeups,
        }),
    );
    put(
        &mut details,
        "evaluation_us",
        json!({ "edits": EVAL_EDITS, "samples": stats::summary(eval_us) }),
    );
    put(
        &mut details,
        "execs",
        json!({
            "starts": ex.starts, "missing": ex.missing, "ms": stats::summary(&ex.ms),
        }),
    );
    put(
        &mut details,
        "idle",
        json!({
            "seconds": idle.seconds, "voluntary": idle.wakeups, "involuntary": idle.involuntary,
            "json_lines": idle.lines, "ring_records": idle.records, "rss_mib_after_all": idle_after_rss,
        }),
    );
    put(
        &mut details,
        "storm",
        json!({
            "edits": storm.edits, "seconds": storm.seconds, "reports": storm.reports,
            "final_value": storm.final_value, "ring_records": storm.records, "ring_dropped": storm.dropped, "last_after_restart_effective": storm.last_reported,
        }),
    );
    details
}

/// summary.json's `details.overhead` (part 6).
fn overhead_details(ov: &overhead::Overhead, f: &Figures) -> Value {
    json!({
        "rounds": ov.rounds,
        "file_iterations": workload::FILE_ITERATIONS, "execs": workload::EXECS,
        "off": {"cpu_file_s": stats::summary(&ov.off_file), "cpu_exec_s": stats::summary(&ov.off_exec)},
        "daemon": watched(&ov.daemon, &f.rf, &f.re, ov.rounds),
        "bpftrace": watched(&ov.bpftrace, &f.bf, &f.be, ov.rounds),
        "bpftrace_program": procs::BPFTRACE_PROGRAM,
    })
}

/// One watcher's overhead samples (`rf`, `re`: its file and exec ratios).
fn watched(w: &overhead::Watched, rf: &[f64], re: &[f64], rounds: usize) -> Value {
    json!({
        "cpu_file_s": stats::summary(&w.cpu_file), "cpu_exec_s": stats::summary(&w.cpu_exec),
        "ratio_file": stats::summary(rf), "ratio_exec": stats::summary(re),
        "share_file": stats::summary(&w.share_file), "share_exec": stats::summary(&w.share_exec),
        "runs_per_file_iteration": stats::summary(&w.runs_per_file_iter),
        "ns_per_run_file": stats::summary(&w.ns_per_run_file),
        "ns_per_file_iteration": stats::summary(&w.ns_per_file_iteration()),
        "runs_per_exec": stats::summary(&w.runs_per_exec),
        "ns_per_run_exec": stats::summary(&w.ns_per_run_exec),
        "programs_file": progs(&w.progs_file, workload::FILE_ITERATIONS * rounds),
        "programs_exec": progs(&w.progs_exec, workload::EXECS * rounds),
    })
}

/// Writes target/bench/summary.json and table.md.
fn write_out(summary: Value, table: String) -> Result<()> {
    let out = target_dir().join("bench");
    fs::create_dir_all(&out)?;
    fs::write(
        out.join("summary.json"),
        serde_json::to_string_pretty(&summary)? + "\n",
    )?;
    fs::write(out.join("table.md"), table + "\n")?;
    setup::say(&format!("wrote {}", out.join("summary.json").display()));
    Ok(())
}

/// The table's rows, in order: latency, overhead, resources.
fn rows(m: &Measured, f: &Figures) -> Vec<[String; 5]> {
    let mut rows = latency_rows(m, f);
    rows.extend(overhead_rows(&m.ov, f));
    rows.extend(resource_rows(&m.one));
    rows
}

/// Edit, exec and evaluation times.
fn latency_rows(m: &Measured, f: &Figures) -> Vec<[String; 5]> {
    let (ed, ex, ed0, eval_us) = (&m.one.ed, &m.one.ex, &m.ed0, &m.eval_us);
    let &Figures {
        edit_p50,
        edit_p99,
        ino_p50,
        ino_p99,
        exec_p50,
        exec_p99,
        e0_p50,
        e0_p99,
        eval_p50,
        eval_p99,
        ..
    } = f;
    vec![
        row(
            "edit_to_finding p50 / p99",
            format!("{edit_p50:.2} / {edit_p99:.2} ms"),
            format!("max {:.2} ms, n={}", max(&ed.daemon_ms), ed.daemon_ms.len()),
            "p99 ≤ inotifywait p99",
            Some(edit_p99 <= ino_p99),
        ),
        row(
            "inotifywait p50 / p99",
            format!("{ino_p50:.2} / {ino_p99:.2} ms"),
            format!(
                "max {:.2} ms, n={}",
                max(&ed.inotify_ms),
                ed.inotify_ms.len()
            ),
            "reference",
            None,
        ),
        row(
            "  (coalesce: 0s) p50 / p99",
            format!("{e0_p50:.2} / {e0_p99:.2} ms"),
            format!("n={}", ed0.daemon_ms.len()),
            "diagnostic",
            None,
        ),
        row(
            "exec_to_finding p50 / p99",
            format!("{exec_p50:.2} / {exec_p99:.2} ms"),
            format!("max {:.2} ms, n={}", max(&ex.ms), ex.ms.len()),
            "report only",
            None,
        ),
        row(
            "evaluation time (config edit)",
            format!("{eval_p50:.0} µs"),
            format!("p99 {eval_p99:.0} µs, n={}", eval_us.len()),
            "p50 ≤ 150 µs",
            Some(eval_p50 <= 150.0),
        ),
    ]
}

/// The eBPF programs' cost, beside bpftrace's.
fn overhead_rows(ov: &overhead::Overhead, f: &Figures) -> Vec<[String; 5]> {
    let Figures {
        per_open,
        bper_open,
        rf,
        re,
        bf,
        be,
        ..
    } = f;
    let pct = |v: f64| format!("{:.2} %", v * 100.0);
    let spread_pct = |v: &[f64]| format!("{:.2}–{:.2} %", min(v) * 100.0, max(v) * 100.0);
    let spread_r = |v: &[f64]| format!("{:.3}–{:.3}", min(v), max(v));
    let share_f = median(&ov.daemon.share_file);
    let share_e = median(&ov.daemon.share_exec);
    let bshare_f = median(&ov.bpftrace.share_file);
    let bshare_e = median(&ov.bpftrace.share_exec);
    let (mrf, mre, mbf, mbe) = (median(rf), median(re), median(bf), median(be));
    vec![
        row(
            "ebpf per unrelated write open",
            format!("{:.0} ns", median(per_open)),
            format!(
                "{:.0}–{:.0} ns (bpftrace {:.0} ns); floor of any path-reading design here {:.0} ns (empty program {:.0} ns, path copy {:.0} ns)",
                min(per_open),
                max(per_open),
                median(bper_open),
                ov.floor.per_open_ns(),
                ov.floor.empty_ns,
                ov.floor.copy_ns
            ),
            "≤ 400 ns",
            Some(median(per_open) <= 400.0),
        ),
        row(
            "ebpf_share_file",
            pct(share_f),
            spread_pct(&ov.daemon.share_file),
            "≤ 3 %",
            Some(share_f <= 0.03),
        ),
        row(
            "bpftrace_share_file",
            pct(bshare_f),
            spread_pct(&ov.bpftrace.share_file),
            "peer",
            None,
        ),
        row(
            "ebpf_share_exec",
            pct(share_e),
            spread_pct(&ov.daemon.share_exec),
            "≤ 2 % and < bpftrace",
            Some(share_e <= 0.02 && share_e < bshare_e),
        ),
        row(
            "bpftrace_share_exec",
            pct(bshare_e),
            spread_pct(&ov.bpftrace.share_exec),
            "peer",
            None,
        ),
        row(
            "overhead_file_ratio",
            format!("{mrf:.3}"),
            spread_r(rf),
            "≤ 1.05",
            Some(mrf <= 1.05),
        ),
        row(
            "bpftrace_file_ratio",
            format!("{mbf:.3}"),
            spread_r(bf),
            "peer",
            None,
        ),
        row(
            "overhead_exec_ratio",
            format!("{mre:.3}"),
            spread_r(re),
            "≤ 1.05 and < bpftrace",
            Some(mre <= 1.05 && mre < mbe),
        ),
        row(
            "bpftrace_exec_ratio",
            format!("{mbe:.3}"),
            spread_r(be),
            "peer",
            None,
        ),
    ]
}

/// Idle, node noise and the storm.
fn resource_rows(one: &OneDaemon) -> Vec<[String; 5]> {
    let OneDaemon {
        idle,
        noise,
        storm,
        idle_after_rss,
        ..
    } = one;
    vec![
        row(
            "idle_rss_mib",
            format!("{:.1} MiB", idle.rss_mib),
            format!("{idle_after_rss:.1} MiB after the run"),
            "≤ 16 MiB",
            Some(idle.rss_mib <= 16.0),
        ),
        row(
            "idle_wakeups_10s",
            idle.wakeups.to_string(),
            format!("{} ring records, {} lines", idle.records, idle.lines),
            "0 between rescans",
            Some(idle.wakeups == 0),
        ),
        row(
            "noise_records / wakeups",
            format!("{} / {}", noise.records, noise.wakeups),
            format!(
                "{} loops in {:.0} s, daemon CPU {:.1} ms, {} lines; without the loop: {} / {}",
                noise.iterations,
                noise.seconds,
                noise.cpu_ms,
                noise.lines,
                noise.control_records,
                noise.control_wakeups
            ),
            "0 / 0",
            Some(noise.records == 0 && noise.wakeups == 0),
        ),
        row(
            "storm_cpu_percent",
            format!("{:.1} %", storm.cpu_percent),
            format!(
                "{:.0} edits/s, {:.1} MiB RSS",
                storm.edits_per_s, storm.rss_mib
            ),
            "report only",
            None,
        ),
        row(
            "storm_final_verdict_right",
            storm.verdict_right.to_string(),
            format!(
                "last after_restart: {}",
                storm.last_reported.as_deref().unwrap_or("none")
            ),
            "true",
            Some(storm.verdict_right),
        ),
    ]
}

/// Per program: runs per workload iteration and ns per run.
fn progs(p: &std::collections::BTreeMap<String, (u64, u64)>, iterations: usize) -> Value {
    let mut m = serde_json::Map::new();
    for (name, (t, c)) in p {
        if *c == 0 {
            continue;
        }
        m.insert(
            name.clone(),
            json!({
                "runs_per_iteration": *c as f64 / iterations as f64,
                "ns_per_run": *t as f64 / *c as f64,
                "ns_per_iteration": *t as f64 / iterations as f64,
            }),
        );
    }
    Value::Object(m)
}

fn breakdown(w: &overhead::Watched) -> String {
    let rounds = w.cpu_file.len().max(1);
    let mut rows = Vec::new();
    for (label, p, iters) in [
        (
            "file iteration",
            &w.progs_file,
            workload::FILE_ITERATIONS * rounds,
        ),
        ("exec", &w.progs_exec, workload::EXECS * rounds),
    ] {
        let mut v: Vec<_> = p.iter().filter(|(_, (_, c))| *c > 0).collect();
        v.sort_by_key(|(_, (t, _))| std::cmp::Reverse(*t));
        for (name, (t, c)) in v.into_iter().take(5) {
            rows.push([
                format!("per {label}: {name}"),
                format!("{:.0} ns", *t as f64 / iters as f64),
                format!(
                    "{:.2} runs × {:.0} ns",
                    *c as f64 / iters as f64,
                    *t as f64 / *c as f64
                ),
                String::new(),
                String::new(),
            ]);
        }
    }
    render(&rows)
}

fn row(name: &str, value: String, spread: String, target: &str, ok: Option<bool>) -> [String; 5] {
    let verdict = match ok {
        Some(true) => "PASS",
        Some(false) => "MISS",
        None => "",
    };
    [
        name.to_string(),
        value,
        spread,
        target.to_string(),
        verdict.to_string(),
    ]
}

/// A Markdown table (readable as text too).
fn render(rows: &[[String; 5]]) -> String {
    let head = ["figure", "value (median)", "spread / detail", "target", ""];
    let mut w = [0usize; 5];
    for r in std::iter::once(&head.map(String::from)).chain(rows) {
        for (i, c) in r.iter().enumerate() {
            w[i] = w[i].max(c.chars().count());
        }
    }
    let line = |r: &[String; 5]| {
        let mut s = String::from("|");
        for (i, c) in r.iter().enumerate() {
            let _ = write!(s, " {c}{} |", " ".repeat(w[i] - c.chars().count()));
        }
        s
    };
    let mut out = line(&head.map(String::from));
    out.push('\n');
    out.push('|');
    for wi in w {
        out.push_str(&"-".repeat(wi + 2));
        out.push('|');
    }
    for r in rows {
        out.push('\n');
        out.push_str(&line(r));
    }
    out
}

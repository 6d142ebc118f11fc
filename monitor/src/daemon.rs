//! `kubelet-drift run`: attach the probes, report a baseline, then report every change.
//!
//! One tokio thread. The loop waits on the ring buffer (`events::Stream`), a coalescing
//! deadline, the periodic rescan, the watchdog and signals. Records are classified at once
//! (cheap: an exact path/inode match and a few /proc reads for attribution); evaluation runs
//! when the burst window closes, a few milliseconds after the first relevant event.

use std::{
    collections::{BTreeMap, HashMap},
    path::{Path, PathBuf},
    process::ExitCode,
    time::{Duration, Instant, SystemTime},
};

use anyhow::{Context, Result};

use crate::{
    attribution,
    decode::{Event, FileInfo, FileOp, MatchedBy, Record},
    drift::{DriftState, Transition},
    events::Stream,
    finding::{Benchmark, Finding},
    kubelet::{
        discovery::{self, KubeletProcess},
        node,
        rootfs::RootFs,
    },
    output::Outputs,
    probes::{ProbeOptions, Probes},
    report::{DriftReport, Notice, NoticeLevel, Trigger},
    settings::{self, Settings, Toggle},
    watch::{self, WatchSet},
};

#[derive(clap::Args, Debug, Default)]
#[command(after_help = "\
Reports go to journald (SYSLOG_IDENTIFIER=kubelet-drift, fields KUBELET_DRIFT_*), to OCSF JSON \
lines (--json-out), and as text on stderr when it is a terminal. The first reports are the \
baseline: one per running kubelet and one for the after-restart state; then one per change.

Examples:
  kubelet-drift run                               # embedded defaults + /etc/kubelet-drift/config.yaml
  kubelet-drift run --json-out - --text false     # OCSF JSON lines on stdout, for a SIEM shipper
  kubelet-drift run --config ./config.yaml --rescan-interval 1m

Needs root (CAP_BPF, CAP_PERFMON, CAP_SYS_PTRACE, CAP_DAC_READ_SEARCH) and kernel BTF.")]
pub struct RunArgs {
    /// Configuration file (default: /etc/kubelet-drift/config.yaml if it exists, else the
    /// embedded defaults).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Append OCSF JSON lines to PATH ("-" = stdout).
    #[arg(long, value_name = "PATH")]
    pub json_out: Option<String>,
    /// journald output: true, false or auto (when the journald socket exists).
    #[arg(long, value_name = "WHEN", value_parser = parse_toggle)]
    pub journald: Option<Toggle>,
    /// Text on stderr: true, false or auto (when stderr is a terminal).
    #[arg(long, value_name = "WHEN", value_parser = parse_toggle)]
    pub text: Option<Toggle>,
    /// Full re-evaluation interval ("5m", "300s").
    #[arg(long, value_name = "DURATION", value_parser = settings::parse_duration)]
    pub rescan_interval: Option<Duration>,
    /// Node name in reports (default: NODE_NAME, then the hostname).
    #[arg(long)]
    pub node_name: Option<String>,
    /// Control numbering.
    #[arg(long, value_enum)]
    pub benchmark: Option<Benchmark>,
    /// Kubelet executable names (repeatable).
    #[arg(long = "kubelet-name", value_name = "NAME")]
    pub kubelet_names: Vec<String>,
    /// Ring-buffer size in bytes (a power of two, >= 4096).
    #[arg(long, value_name = "BYTES")]
    pub ring_bytes: Option<u32>,
    /// Where the host's filesystem is mounted ("/" on the host, "/host" in the DaemonSet).
    #[arg(long, value_name = "DIR")]
    pub host_root: Option<PathBuf>,
    /// Watch this path too (repeatable).
    #[arg(long, value_name = "PATH")]
    pub watch: Vec<PathBuf>,
}

fn parse_toggle(s: &str) -> Result<Toggle, String> {
    match s {
        "true" | "on" | "yes" => Ok(Toggle::On),
        "false" | "off" | "no" => Ok(Toggle::Off),
        "auto" => Ok(Toggle::Auto),
        _ => Err(format!("expected true, false or auto, found {s:?}")),
    }
}

pub fn main(args: RunArgs) -> ExitCode {
    // Diagnostics for people debugging the daemon (KUBELET_DRIFT_LOG=debug): what triggered
    // each evaluation and how long it took. Findings never go through this.
    // A bare level ("debug") is about this crate; aya's loader is very talkative at debug.
    let filter = match std::env::var("KUBELET_DRIFT_LOG") {
        Ok(v) if !v.contains(['=', ',']) => format!("warn,kubelet_drift={v}"),
        Ok(v) => v,
        Err(_) => "warn".into(),
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(std::io::stderr)
        .try_init();
    let settings = match effective_settings(&args) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("kubelet-drift: {e:#}");
            return ExitCode::from(2);
        }
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("kubelet-drift: starting the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match rt.block_on(run(settings)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("kubelet-drift: {e:#}");
            let _ = sd_notify::notify(&[sd_notify::NotifyState::Status(&format!("failed: {e:#}"))]);
            ExitCode::from(1)
        }
    }
}

/// The settings file (or the embedded defaults), with the command line on top.
pub fn effective_settings(args: &RunArgs) -> Result<Settings> {
    let mut s = settings::load(args.config.as_deref())?;
    if let Some(j) = &args.json_out {
        s.outputs.json_out = Some(j.clone());
    }
    if let Some(t) = args.journald {
        s.outputs.journald = t;
    }
    if let Some(t) = args.text {
        s.outputs.text = t;
    }
    if let Some(d) = args.rescan_interval {
        s.rescan_interval = d;
    }
    if let Some(n) = &args.node_name {
        s.node_name = Some(n.clone());
    }
    if let Some(b) = args.benchmark {
        s.benchmark = b;
    }
    if !args.kubelet_names.is_empty() {
        s.kubelet_names = args.kubelet_names.clone();
    }
    if let Some(r) = args.ring_bytes {
        if r < 4096 || !r.is_power_of_two() {
            anyhow::bail!("--ring-bytes must be a power of two and at least 4096, not {r}");
        }
        s.ring_buffer_bytes = r;
    }
    if let Some(h) = &args.host_root {
        s.host_root = h.clone();
    }
    s.watch_extra.extend(args.watch.iter().cloned());
    Ok(s)
}

/// How long a write-intent open may stay open before we evaluate without its close.
const OPEN_GRACE: Duration = Duration::from_millis(200);
/// How often a write-intent fd still open after its grace period is checked for writes (the
/// kernel programs see opens and closes, not writes).
const HELD_POLL: Duration = Duration::from_millis(100);
/// The longest a write in flight may hold back an evaluation that other events call for.
const MAX_DEFER: Duration = Duration::from_millis(50);

/// A write-intent open of a watched file, waiting for its close.
struct OpenWrite {
    /// When to evaluate (the grace period's end), then when to look at the file again.
    deadline: Instant,
    trigger: Trigger,
    /// After the grace period: the file's identity and change stamp as last seen through
    /// `/proc/<tgid>/fd/<fd>`, taken before the evaluation it leads to.
    seen: Option<FdStamp>,
}

/// dev, ino, and what a write changes: mtime, ctime (seconds and nanoseconds), size.
type FdStamp = (u64, u64, i64, i64, i64, i64, u64);

/// The stamp of the file a process's fd refers to; `None` when the fd or process is gone.
fn fd_stamp(tgid: u32, fd: i32) -> Option<FdStamp> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(format!("/proc/{tgid}/fd/{fd}")).ok()?;
    Some((
        m.dev(),
        m.ino(),
        m.mtime(),
        m.mtime_nsec(),
        m.ctime(),
        m.ctime_nsec(),
        m.size(),
    ))
}

struct Daemon {
    settings: Settings,
    probes: Probes,
    outputs: Outputs,
    state: DriftState,
    watch: WatchSet,
    fs: RootFs,
    node: String,
    running: BTreeMap<u32, KubeletProcess>,
    /// Triggers waiting for the burst window to close, and when it closes.
    triggers: Vec<Trigger>,
    deadline: Option<Instant>,
    /// When the oldest waiting trigger came (bounds how long writes in flight may defer).
    since: Option<Instant>,
    /// The evaluation's inputs when the watch set was last built: rebuilt when they change
    /// or a path operation may have changed what exists.
    watched_inputs: Vec<PathBuf>,
    /// Kubelet pids whose exec was seen, to evaluate.
    started: Vec<(u32, Trigger)>,
    full_rescan: bool,
    /// Write-intent opens of watched files waiting for their close: (tgid, fd).
    open_writes: HashMap<(u32, i32), OpenWrite>,
    lost_total: u64,
    next_rescan: Instant,
    /// Watched files mapped shared, polled while mapped, and evaluations put off (blind
    /// spots: see `crate::blindspots`).
    blind: crate::blindspots::BlindSpots,
}

async fn run(settings: Settings) -> Result<()> {
    let mut probes = Probes::load(&ProbeOptions {
        ring_bytes: settings.ring_buffer_bytes,
    })?;
    let mut outputs = Outputs::from_settings(&settings)?;
    for w in probes.warnings.clone() {
        outputs.notice(&Notice {
            level: NoticeLevel::Warning,
            message: w,
        });
    }
    if outputs.is_empty() {
        eprintln!(
            "kubelet-drift: warning: no output is enabled (no journald socket, no --json-out, stderr \
             is not a terminal): findings go nowhere"
        );
    }
    probes.set_comms(&settings.kubelet_names)?;
    let stream = Stream::new(probes.take_ring()?)?;
    let node = settings
        .node_name
        .clone()
        .unwrap_or_else(|| "unknown".into());
    let mut d = Daemon {
        fs: RootFs::new(&settings.host_root),
        next_rescan: Instant::now() + settings.rescan_interval,
        settings,
        probes,
        outputs,
        state: DriftState::new(),
        watch: WatchSet::new(),
        node,
        running: BTreeMap::new(),
        triggers: Vec::new(),
        deadline: None,
        since: None,
        watched_inputs: Vec::new(),
        started: Vec::new(),
        full_rescan: false,
        open_writes: HashMap::new(),
        lost_total: 0,
        blind: Default::default(),
    };
    d.baseline()?;
    // Writers from before the start (their opens and mmaps were never seen) are polled.
    for t in d.blind.adopt_existing(&d.watch) {
        d.push_trigger(t);
    }
    // Start-up (BTF, program loading) leaves tens of MiB of freed heap that glibc keeps; give
    // it back once, so the resident size is what the daemon really uses.
    // SAFETY: malloc_trim has no preconditions.
    unsafe { libc::malloc_trim(0) };
    let _ = sd_notify::notify(&[
        sd_notify::NotifyState::Ready,
        sd_notify::NotifyState::Status("watching; baseline reported"),
    ]);
    d.main_loop(stream).await
}

impl Daemon {
    fn report(&mut self, t: Transition, trigger: &Trigger) {
        let r = DriftReport {
            change: t.change,
            finding: t.finding,
            previous: t.previous,
            trigger: trigger.clone(),
            node: self.node.clone(),
            time: SystemTime::now(),
            benchmark: self.settings.benchmark,
        };
        self.outputs.report(&r);
    }

    fn notice(&mut self, level: NoticeLevel, message: String) {
        self.outputs.notice(&Notice { level, message });
    }

    fn baseline(&mut self) -> Result<()> {
        // The usual locations are watched before anything is read, so that no write between
        // the read and the watch goes unseen; the inputs the evaluation names follow below.
        self.refresh_watch()?;
        let trigger = Trigger {
            op: "baseline".into(),
            path: None,
            path2: None,
            actor: None,
            guessed: false,
        };
        for p in discovery::find_kubelets(&self.settings.kubelet_names) {
            // Its exec happened before we were attached: track it so its exit is reported.
            let _ = self.probes.track(p.pid);
            let f = node::evaluate_process(&p, self.settings.benchmark, true);
            let t = self.state.baseline(f);
            let mut tr = trigger.clone();
            tr.actor = Some(attribution::process_actor(p.pid, p.exe.clone(), &p.argv));
            self.report(t, &tr);
            self.running.insert(p.pid, p);
        }
        let after = self.evaluate_after_restart();
        let t = self.state.baseline(after);
        self.report(t, &trigger);
        for t in self.state.pending() {
            self.report(t, &trigger);
        }
        self.refresh_watch()?;
        Ok(())
    }

    fn evaluate_after_restart(&self) -> Finding {
        let running: Vec<KubeletProcess> = self.running.values().cloned().collect();
        node::evaluate_after_restart(&self.fs, &running, self.settings.benchmark)
    }

    /// The watch set follows the evaluation: every input of every finding, the usual
    /// locations, the kubelet binaries, and extra paths. Returns whether it changed.
    fn refresh_watch(&mut self) -> Result<bool> {
        let mut set = WatchSet::new();
        for p in watch::DEFAULT_PATHS {
            set.add(&in_root(&self.settings.host_root, Path::new(p)));
        }
        for p in &self.settings.watch_extra {
            set.add(&in_root(&self.settings.host_root, p));
        }
        for f in self.state.findings() {
            for p in f.inputs.iter().chain(f.input_dirs.iter()) {
                set.add(p);
            }
        }
        for p in self.running.values() {
            if let Some(exe) = &p.exe {
                set.add(&in_root(&p.root, exe));
            }
        }
        self.watched_inputs = self.current_inputs();
        let changed = set != self.watch;
        if changed {
            tracing::debug!(
                files = set.files.len(),
                dirs = set.dirs.len(),
                inodes = set.inodes.len(),
                names = set.names.len(),
                "watch set updated"
            );
            set.apply(&mut self.probes)
                .context("updating the kernel watch maps")?;
            self.watch = set;
        }
        Ok(changed)
    }

    fn current_inputs(&self) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = self
            .state
            .findings()
            .flat_map(|f| f.inputs.iter().chain(f.input_dirs.iter()).cloned())
            .collect();
        v.sort();
        v.dedup();
        v
    }

    /// The earliest end of a grace period of a write still in flight (an open of a watched
    /// file whose close has not come): reading the file before it would see it half written.
    fn writes_in_flight(&self, now: Instant) -> Option<Instant> {
        self.open_writes
            .values()
            .filter(|o| o.seen.is_none() && o.deadline > now)
            .map(|o| o.deadline)
            .min()
    }

    async fn main_loop(&mut self, mut stream: Stream) -> Result<()> {
        let mut sigterm =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        let mut sigint = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?;
        let watchdog = sd_notify::watchdog_enabled().map(|d| d / 2);
        let mut next_ping = watchdog.map(|d| Instant::now() + d);
        let mut batch: Vec<Record> = Vec::new();
        loop {
            let mut wake = self.next_rescan;
            if let Some(d) = self.deadline {
                wake = wake.min(d);
            }
            if let Some(p) = next_ping {
                wake = wake.min(p);
            }
            if let Some(d) = self.open_writes.values().map(|o| o.deadline).min() {
                wake = wake.min(d);
            }
            if let Some(d) = self.blind.next_poll() {
                wake = wake.min(d);
            }
            tokio::select! {
                r = stream.next_batch(&mut batch) => {
                    r.context("reading the ring buffer")?;
                    for rec in batch.drain(..) {
                        self.classify(rec);
                    }
                }
                _ = tokio::time::sleep_until(wake.into()) => {}
                _ = sigterm.recv() => break,
                _ = sigint.recv() => break,
            }
            let now = Instant::now();
            for t in self.blind.poll(now) {
                self.push_trigger(t);
            }
            // Opens whose close did not come in time are evaluated anyway; while the fd stays
            // open, the file is looked at again every HELD_POLL, and any write through it (or
            // the fd going away without a close we saw) is evaluated too.
            let expired: Vec<(u32, i32)> = self
                .open_writes
                .iter()
                .filter(|(_, o)| o.deadline <= now)
                .map(|(k, _)| *k)
                .collect();
            for k in expired {
                let Some(mut o) = self.open_writes.remove(&k) else {
                    continue;
                };
                let stamp = fd_stamp(k.0, k.1);
                let changed = match (&o.seen, &stamp) {
                    // The grace period ended: evaluate now.
                    (None, _) => true,
                    (Some(old), Some(new)) => old != new,
                    // Closed (or the process died) without a close event.
                    (Some(_), None) => true,
                };
                let same_file = match (&o.seen, &stamp) {
                    (Some(old), Some(new)) => (old.0, old.1) == (new.0, new.1),
                    _ => true,
                };
                if changed {
                    self.push_trigger(o.trigger.clone());
                }
                if let Some(st) = stamp.filter(|_| same_file) {
                    o.seen = Some(st);
                    o.deadline = now + HELD_POLL;
                    self.open_writes.insert(k, o);
                }
            }
            if now >= self.next_rescan {
                self.full_rescan = true;
                self.push_trigger(Trigger {
                    op: "rescan".into(),
                    path: None,
                    path2: None,
                    actor: None,
                    guessed: false,
                });
                self.next_rescan = now + self.settings.rescan_interval;
            }
            if self.deadline.is_some_and(|d| d <= Instant::now()) {
                self.evaluate(&mut stream)?;
            }
            if let (Some(p), Some(every)) = (next_ping, watchdog)
                && Instant::now() >= p
            {
                let _ = sd_notify::notify(&[sd_notify::NotifyState::Watchdog]);
                next_ping = Some(Instant::now() + every);
            }
        }
        let _ = sd_notify::notify(&[sd_notify::NotifyState::Stopping]);
        Ok(())
    }

    fn push_trigger(&mut self, t: Trigger) {
        self.triggers.push(t);
        let now = Instant::now();
        if self.since.is_none() {
            self.since = Some(now);
        }
        // The burst window runs from the first trigger; a later trigger only brings it
        // forward (when an evaluation put off for a write in flight can now go ahead).
        let end = now + self.settings.coalesce;
        self.deadline = Some(self.deadline.map_or(end, |d| d.min(end)));
    }

    /// Decides what a record means. Only cheap work here: no evaluation.
    fn classify(&mut self, rec: Record) {
        if rec.lost_before > 0 {
            self.lost_total += rec.lost_before as u64;
            self.full_rescan = true;
            let msg = format!(
                "{} kernel event(s) lost (ring buffer full; {} in all): full rescan now",
                rec.lost_before, self.lost_total
            );
            self.notice(NoticeLevel::Warning, msg);
            self.push_trigger(Trigger {
                op: "lost_events".into(),
                path: None,
                path2: None,
                actor: None,
                guessed: false,
            });
        }
        match rec.event {
            Event::Exec(p) => {
                let actor = attribution::actor(&p.actor);
                let t = Trigger {
                    op: "exec".into(),
                    path: Some(p.path.clone()),
                    path2: None,
                    actor: Some(actor),
                    guessed: false,
                };
                self.started.push((p.actor.tgid, t.clone()));
                self.push_trigger(t);
            }
            Event::Exit(p) => {
                let tgid = p.actor.tgid;
                let mut actor = report_actor_from_exit(&p.actor);
                // It is gone from /proc now; what we read while it ran still names it.
                if let Some(k) = self.running.remove(&tgid) {
                    actor.exe = k.exe;
                    actor.argv = Some(k.argv);
                }
                let t = Trigger {
                    op: "exit".into(),
                    path: None,
                    path2: None,
                    actor: Some(actor),
                    guessed: false,
                };
                if let Some(tr) = self.state.stopped(tgid) {
                    self.report(tr, &t);
                }
                self.push_trigger(t);
            }
            Event::File(f) => self.classify_file(f),
        }
    }

    fn classify_file(&mut self, f: FileInfo) {
        if let Some(ts) = crate::blindspots::classify(&f, &self.watch, &mut self.blind) {
            for t in ts {
                self.push_trigger(t);
            }
            return;
        }
        let key = (f.actor.tgid, f.dirfd);
        if f.op == FileOp::WriterExit {
            // Every fd it had is closed now, dup'ed ones included: what it wrote is final.
            // (Without a write still waiting, its last close was already the end of it.)
            let keys: Vec<(u32, i32)> = self
                .open_writes
                .keys()
                .filter(|k| k.0 == f.actor.tgid)
                .copied()
                .collect();
            for k in keys {
                if let Some(o) = self.open_writes.remove(&k) {
                    self.push_trigger(Trigger {
                        op: "close".into(),
                        ..o.trigger
                    });
                }
            }
            return;
        }
        if f.op == FileOp::Close {
            if let Some(o) = self.open_writes.remove(&key) {
                match other_fd_on(f.actor.tgid, key.1, f.dev, f.ino) {
                    // Still open through a dup (a shell's `>` dup2s it to 1 and closes the
                    // original before writing): wait for that fd, or the writer's exit.
                    Some(fd) => {
                        self.open_writes.insert(
                            (f.actor.tgid, fd),
                            OpenWrite {
                                deadline: Instant::now() + OPEN_GRACE,
                                ..o
                            },
                        );
                    }
                    None => self.push_trigger(Trigger {
                        op: "close".into(),
                        ..o.trigger
                    }),
                }
            } else if self.watch.has_inode(f.dev, f.ino) {
                let t = self.file_trigger(&f, None, None, false);
                self.push_trigger(t);
            }
            return;
        }
        if f.ret < 0 {
            return; // a failed syscall changed nothing
        }
        let resolved = watch::resolve(f.actor.tgid, f.dirfd, &f.path);
        let resolved2 = f
            .path2
            .as_ref()
            .and_then(|p| watch::resolve(f.actor.tgid, f.dirfd2, p));
        // Some(exact) when relevant: exact when tied to a watched inode or path, not exact
        // when taken on its name alone.
        let relevant: Option<bool> = match f.matched_by {
            MatchedBy::Inode | MatchedBy::Fd if self.watch.has_inode(f.dev, f.ino) => Some(true),
            _ => {
                let tgid = f.actor.tgid;
                let check = |r: &Option<PathBuf>, given: &Path, dirfd: i32, truncated: bool| {
                    if truncated {
                        // A cut path resolves to a path that does not exist: compare its head.
                        return watch::truncated_matches(&self.watch, tgid, dirfd, given)
                            .then_some(true);
                    }
                    match r {
                        Some(p) => self.watch.matches(p).then_some(true),
                        // Unresolvable (the process is gone): decide by name, err on the side
                        // of re-evaluating.
                        None => watch::name_matches(&self.watch, given).then_some(false),
                    }
                };
                let first = check(&resolved, &f.path, f.dirfd, f.path_truncated);
                let second = f
                    .path2
                    .as_ref()
                    .and_then(|p| check(&resolved2, p, f.dirfd2, f.path2_truncated));
                match (first, second) {
                    (Some(true), _) | (_, Some(true)) => Some(true),
                    (Some(false), _) | (_, Some(false)) => Some(false),
                    _ => None,
                }
            }
        };
        let Some(exact) = relevant else {
            return;
        };
        let t = self.file_trigger(&f, resolved, resolved2, !exact);
        if f.op == FileOp::Open {
            // Evaluate once the writer is done (its close), or after a grace period and then
            // whenever the file changes while the fd stays open.
            self.open_writes.insert(
                (f.actor.tgid, f.ret as i32),
                OpenWrite {
                    deadline: Instant::now() + OPEN_GRACE,
                    trigger: t,
                    seen: None,
                },
            );
        } else {
            self.push_trigger(t);
        }
    }

    fn file_trigger(
        &self,
        f: &FileInfo,
        resolved: Option<PathBuf>,
        resolved2: Option<PathBuf>,
        guessed: bool,
    ) -> Trigger {
        Trigger {
            op: f.op.as_str().into(),
            path: resolved.or_else(|| (!f.path.as_os_str().is_empty()).then(|| f.path.clone())),
            path2: resolved2.or_else(|| f.path2.clone()),
            actor: Some(attribution::actor(&f.actor)),
            guessed,
        }
    }

    /// The burst window closed: evaluate what the triggers call for and report changes.
    fn evaluate(&mut self, stream: &mut Stream) -> Result<()> {
        let mut batch = Vec::new();
        self.drain_into_triggers(stream, &mut batch);
        let since = self.since.unwrap_or_else(Instant::now);
        if self.defer_for_writes(since) {
            return Ok(());
        }
        self.deadline = None;
        self.since = None;
        let started_at = Instant::now();
        let mut triggers = std::mem::take(&mut self.triggers);
        let path_ops = triggers
            .iter()
            .any(|t| !matches!(t.op.as_str(), "open" | "close" | "truncate" | "ftruncate"));
        // The trigger reported: the last one with an actor (the write that completed the change).
        let mut main = last_with_actor(&triggers)
            .or_else(|| triggers.last())
            .cloned()
            .unwrap_or(Trigger {
                op: "rescan".into(),
                path: None,
                path2: None,
                actor: None,
                guessed: false,
            });
        let names = self.settings.kubelet_names.clone();
        for (pid, t) in std::mem::take(&mut self.started) {
            // The files now are what the kubelet reads: evaluate at once.
            if let Ok(Some(p)) = discovery::read_kubelet(pid, &names) {
                let f = node::evaluate_process(&p, self.settings.benchmark, false);
                let mut t = t.clone();
                if let Some(a) = t.actor.as_mut() {
                    a.argv = Some(p.argv.clone());
                }
                self.running.insert(pid, p);
                if let Some(tr) = self.state.update(f) {
                    self.report(tr, &t);
                }
            }
        }
        if std::mem::take(&mut self.full_rescan) {
            self.rediscover(&main);
        }
        // Up to three rounds: an evaluation can name new inputs (a new --config path); the
        // watch set follows, then the state is read again so no write falls in between.
        for round in 0..3 {
            // Events that came while we evaluated (another write, right after the one we were
            // called for) are taken first, and again after the read: what the read sees is
            // named for the last write known when it ended; when one came during the read,
            // it is read again. Their triggers stay queued and lead to one more (quiet)
            // evaluation.
            let mut after = None;
            for _ in 0..4 {
                self.drain_into_triggers(stream, &mut batch);
                if self.defer_for_writes(since) {
                    // A new write started meanwhile: read after it, with the same triggers.
                    triggers.append(&mut self.triggers);
                    self.triggers = triggers;
                    self.since = Some(since);
                    return Ok(());
                }
                // A trigger taken on its name alone does not displace an exact one.
                if let Some(t) = last_with_actor(&self.triggers)
                    && (!t.guessed || main.guessed)
                {
                    main = t.clone();
                }
                // A write that started during the read shows as a new open waiting for its
                // close, not as a trigger: count both.
                let known = (self.triggers.len(), self.open_writes.len());
                let f = self.evaluate_after_restart();
                self.drain_into_triggers(stream, &mut batch);
                let quiet = (self.triggers.len(), self.open_writes.len()) == known;
                after = Some(f);
                if quiet {
                    break;
                }
            }
            let after = after.expect("read at least once");
            if let Some(tr) = self.state.update(after) {
                // Name the change after the event on a file this evaluation read, when there
                // is one: other processes' events on same-named files elsewhere only trigger.
                let named =
                    trigger_on_inputs(triggers.iter().chain(self.triggers.iter()), &tr.finding)
                        .cloned()
                        .or_else(|| self.blind.changed_on(&tr.finding.inputs))
                        .unwrap_or_else(|| main.clone());
                self.report(tr, &named);
            }
            // Writes to files that exist change no inode or name we watch: the watch set is
            // rebuilt (a stat of every watched path) only after a path operation, an exec or
            // exit, a rescan, or when the evaluation names other inputs.
            if round == 0 && !path_ops && self.current_inputs() == self.watched_inputs {
                break;
            }
            if !self.refresh_watch()? {
                break;
            }
        }
        for tr in self.state.pending() {
            self.report(tr, &main);
        }
        tracing::debug!(
            triggers = triggers.len(),
            trigger = %main.op,
            since_first_us = since.elapsed().as_micros() as u64,
            took_us = started_at.elapsed().as_micros() as u64,
            "evaluated"
        );
        Ok(())
    }

    /// While a watched file is being written (an open whose close has not come), reading it
    /// would see it half written: put the evaluation off until the write ends, but never past
    /// MAX_DEFER after the first trigger. Says whether it was put off.
    fn defer_for_writes(&mut self, since: Instant) -> bool {
        let now = Instant::now();
        let cap = since + MAX_DEFER;
        match self.writes_in_flight(now) {
            Some(until) if now < cap => {
                self.deadline = Some(until.min(cap));
                true
            }
            _ => false,
        }
    }

    /// Classifies the records available now, without waiting.
    fn drain_into_triggers(&mut self, stream: &mut Stream, batch: &mut Vec<Record>) {
        stream.drain_now(batch);
        for rec in batch.drain(..) {
            self.classify(rec);
        }
    }

    /// A full rescan: kubelets that appeared or vanished without our seeing it.
    fn rediscover(&mut self, trigger: &Trigger) {
        let found = discovery::find_kubelets(&self.settings.kubelet_names);
        let alive: Vec<u32> = found.iter().map(|p| p.pid).collect();
        for pid in self.state.running_pids() {
            if !alive.contains(&pid) {
                self.running.remove(&pid);
                if let Some(tr) = self.state.stopped(pid) {
                    self.report(tr, trigger);
                }
            }
        }
        for p in found {
            if self.running.contains_key(&p.pid) {
                continue;
            }
            let _ = self.probes.track(p.pid);
            let f = node::evaluate_process(&p, self.settings.benchmark, true);
            let mut t = trigger.clone();
            t.actor = Some(attribution::process_actor(p.pid, p.exe.clone(), &p.argv));
            self.running.insert(p.pid, p);
            if let Some(tr) = self.state.update(f) {
                self.report(tr, &t);
            }
        }
    }
}

/// Another fd of process `tgid` (not `closed`) open on the same file, if any.
fn other_fd_on(tgid: u32, closed: i32, dev: u32, ino: u64) -> Option<i32> {
    let want = monitor_common::InodeKey { dev, _pad: 0, ino };
    std::fs::read_dir(format!("/proc/{tgid}/fd"))
        .ok()?
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|fd| *fd != closed)
        .find(|fd| {
            std::fs::metadata(format!("/proc/{tgid}/fd/{fd}"))
                .is_ok_and(|m| crate::probes::inode_key(&m) == want)
        })
}

/// The last trigger with an actor whose path is one of the finding's inputs (or inside one of
/// its input directories), if any.
fn trigger_on_inputs<'a>(
    triggers: impl DoubleEndedIterator<Item = &'a Trigger>,
    f: &Finding,
) -> Option<&'a Trigger> {
    let read =
        |p: &Path| f.inputs.iter().any(|i| i == p) || f.input_dirs.iter().any(|d| p.starts_with(d));
    triggers.rev().find(|t| {
        t.actor.is_some()
            && !t.guessed
            && t.op != "exit"
            && (t.path.as_deref().is_some_and(read) || t.path2.as_deref().is_some_and(read))
    })
}

/// The trigger a report names: the last one with an actor (the write that completed the
/// change), exits aside (they report themselves).
fn last_with_actor(triggers: &[Trigger]) -> Option<&Trigger> {
    let named = |t: &&Trigger| t.actor.is_some() && t.op != "exit";
    triggers
        .iter()
        .rev()
        .find(|t| named(t) && !t.guessed)
        .or_else(|| triggers.iter().rev().find(named))
}

fn report_actor_from_exit(a: &crate::decode::ActorInfo) -> crate::report::Actor {
    crate::report::Actor {
        pid: a.tgid,
        ppid: a.ppid,
        uid: a.uid,
        user: attribution::user_name(a.uid),
        gid: a.gid,
        comm: String::from_utf8_lossy(&a.comm).into_owned(),
        exe: None,
        cgroup_id: a.cgroup_id,
        container_id: None,
        argv: None,
    }
}

/// `path` (absolute, as seen inside `root`) as a host path.
fn in_root(root: &Path, path: &Path) -> PathBuf {
    if root == Path::new("/") {
        return path.to_path_buf();
    }
    root.join(path.strip_prefix("/").unwrap_or(path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        finding::{Source, Status, Subject},
        report::Actor,
    };

    fn trigger(op: &str, path: &str, pid: u32, guessed: bool) -> Trigger {
        Trigger {
            op: op.into(),
            path: Some(PathBuf::from(path)),
            path2: None,
            actor: Some(Actor {
                pid,
                ..Default::default()
            }),
            guessed,
        }
    }

    /// A report names the write to a file the evaluation read, not a later event that only
    /// matched by name; with no such write, an exact trigger before a guessed one.
    #[test]
    fn reports_name_the_event_on_what_was_read() {
        let f = Finding {
            control: "4.2.7".into(),
            status: Status::Fail,
            effective: Some(false),
            subject: Subject::AfterRestart {
                unit: None,
                argv: vec![],
                exec_start_from: None,
            },
            source: Source::Default,
            reason: String::new(),
            remediation: String::new(),
            inputs: vec![PathBuf::from("/node/var/lib/kubelet/config.yaml")],
            input_dirs: vec![PathBuf::from("/node/etc/kubernetes/kubelet.conf.d")],
        };
        let ts = [
            trigger("rename", "/node/var/lib/kubelet/config.yaml", 1, false),
            trigger("unlink", "/elsewhere/config.yaml", 2, true),
            trigger("close", "/elsewhere/x.yaml", 3, false),
        ];
        assert_eq!(
            trigger_on_inputs(ts.iter(), &f)
                .unwrap()
                .actor
                .as_ref()
                .unwrap()
                .pid,
            1
        );
        let in_dir = [trigger(
            "open",
            "/node/etc/kubernetes/kubelet.conf.d/sub/9.conf",
            4,
            false,
        )];
        assert_eq!(
            trigger_on_inputs(in_dir.iter(), &f)
                .unwrap()
                .actor
                .as_ref()
                .unwrap()
                .pid,
            4
        );
        assert!(trigger_on_inputs(ts[1..].iter(), &f).is_none());
        assert_eq!(
            last_with_actor(&ts[..2])
                .unwrap()
                .actor
                .as_ref()
                .unwrap()
                .pid,
            1
        );
        assert_eq!(
            last_with_actor(&ts[1..2])
                .unwrap()
                .actor
                .as_ref()
                .unwrap()
                .pid,
            2
        );
    }
}

//! Test harness shared by the integration tests: the real kernel programs, real processes,
//! real edits. Everything here needs root (`require_root`).
//!
//! Every loaded [`Monitor`] sees every process on the machine, and the tests of one binary
//! run in parallel: tests filter records by their own pids and paths and never assume
//! silence from anyone else.

pub mod daemon;
pub mod journald;

use std::{
    fmt, fs,
    os::unix::{fs::PermissionsExt, process::CommandExt},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{Condvar, Mutex, MutexGuard, OnceLock},
    time::{Duration, Instant},
};

use anyhow::{Context, Result};
use kubelet_drift::{
    decode::{Event, FileInfo, Record},
    events::Stream,
    probes::{Counters, ProbeOptions, Probes},
    settings::RingSize,
    watched::WatchSet,
};

/// The shared test corpus: `shared/corpus` beside the checkout (the repository holds none
/// of those third-party files), or `KUBELET_DRIFT_CORPUS` when set (a checkout elsewhere).
/// Panics with what is missing and how to provide it.
pub fn corpus() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = match std::env::var_os("KUBELET_DRIFT_CORPUS") {
            Some(d) => PathBuf::from(d),
            None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus"),
        };
        assert!(
            dir.join("SOURCES.md").is_file(),
            "the test corpus is missing: expected shared/corpus beside the checkout, at {} \
             (or set KUBELET_DRIFT_CORPUS to its directory)",
            dir.display()
        );
        dir
    })
}

/// How long a test waits for an event it caused. Generous: on a loaded CI machine the
/// drain can lag, but when things work every wait ends within milliseconds.
pub const TIMEOUT: Duration = Duration::from_secs(5);

/// Panics unless the effective uid is 0: these tests load eBPF programs and must not be
/// skipped silently.
pub fn require_root() {
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(
        euid, 0,
        "the kubelet-drift pipeline tests load eBPF programs and must run as root (euid is \
         {euid}); run them with sudo, e.g. `sudo -E cargo test -p kubelet-drift-tests --test \
         pipeline`"
    );
}

/// `/usr/bin/python3` when present (not a pyenv-style shim whose exec chain changes the
/// comm), else `python3` from PATH.
pub fn python3() -> &'static str {
    if Path::new("/usr/bin/python3").exists() {
        "/usr/bin/python3"
    } else {
        "python3"
    }
}

/// Starts the stand-in kubelet (`exe`: `env!("CARGO_BIN_EXE_kubelet")` in an integration
/// test) with `args`. Its stdio is null; kill it with [`Child::kill`], or hold it in a
/// [`KillOnDrop`] so that a failing test does not leave it running.
pub fn spawn_kubelet(exe: &Path, args: &[&str]) -> Child {
    Command::new(exe)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("spawning the stand-in kubelet {}: {e}", exe.display()))
}

/// Spawns `cmd`. A copy of an executable just written can be "busy" for a moment (ETXTBSY):
/// another test thread's fork may hold the copy's write fd until its own exec. That, and only
/// that, is retried.
pub fn spawn_retrying_busy(cmd: &mut Command) -> std::io::Result<Child> {
    let mut tries = 0;
    loop {
        match cmd.spawn() {
            Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) && tries < 100 => {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            r => return r,
        }
    }
}

/// A stand-in kubelet run from a copy named `kubelet` in a fresh directory (readable by
/// everyone), with `cwd` as its working directory and the given uid/gid.
pub struct CopiedKubelet {
    pub dir: tempfile::TempDir,
    pub exe: PathBuf,
    pub child: Child,
}

pub fn spawn_kubelet_copy(
    exe: &Path,
    args: &[&str],
    cwd: &Path,
    uid: u32,
    gid: u32,
) -> CopiedKubelet {
    let dir = tempfile::Builder::new()
        .prefix("kd-kubelet-")
        .tempdir()
        .expect("tempdir");
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).expect("chmod tempdir");
    let copy = dir.path().join("kubelet");
    fs::copy(exe, &copy).expect("copying the stand-in kubelet");
    fs::set_permissions(&copy, fs::Permissions::from_mode(0o755)).expect("chmod kubelet");
    let child = spawn_retrying_busy(
        Command::new(&copy)
            .args(args)
            .current_dir(cwd)
            .uid(uid)
            .gid(gid)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    )
    .unwrap_or_else(|e| panic!("spawning {}: {e}", copy.display()));
    CopiedKubelet {
        dir,
        exe: copy,
        child,
    }
}

/// Kills and reaps the child when dropped (a test that panics leaves no process behind).
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs `cmd` to completion and returns its pid and stdout; panics if it fails. The pid is
/// the actor the kernel reports for whatever the command did itself (exec keeps the pid).
pub fn run(cmd: &mut Command) -> (u32, String) {
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawning {cmd:?}: {e}"));
    let pid = child.id();
    let out = child
        .wait_with_output()
        .unwrap_or_else(|e| panic!("waiting for {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    (pid, String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `sh -c script` in `cwd`.
pub fn sh(cwd: &Path, script: &str) -> Command {
    let mut c = Command::new("sh");
    c.arg("-c").arg(script).current_dir(cwd);
    c
}

/// The loaded programs, their ring buffer's reader, and what the test watches.
pub struct Monitor {
    pub probes: Probes,
    pub stream: Stream,
    pub watch: WatchSet,
}

impl Monitor {
    /// Loads the programs with a `ring` ring buffer, reports execs of `comms`, and
    /// watches `paths` (through [`WatchSet`], as the daemon does). Needs a tokio runtime
    /// with I/O enabled (`#[tokio::test]`).
    pub fn start(ring: RingSize, comms: &[&str], paths: &[&Path]) -> Result<Monitor> {
        let mut probes = Probes::load(&ProbeOptions { ring }).context("Probes::load")?;
        probes.set_comms(comms)?;
        let mut watch = WatchSet::new();
        for p in paths {
            watch.add(p);
        }
        watch.apply(&mut probes)?;
        let stream = Stream::new(probes.take_ring()?)?;
        Ok(Monitor {
            probes,
            stream,
            watch,
        })
    }

    /// Like [`Monitor::start`] with the default ring size; panics on error.
    pub fn new(comms: &[&str], paths: &[&Path]) -> Monitor {
        Monitor::start(RingSize::default(), comms, paths)
            .unwrap_or_else(|e| panic!("loading the probes: {e:#}"))
    }

    /// The kernel counters (per-CPU sums) of this instance's programs.
    pub fn counters(&self) -> Counters {
        self.probes.counters().expect("reading the counters")
    }

    /// Everything in the ring buffer now, without waiting.
    pub fn drain_now(&mut self) -> Vec<Record> {
        let mut out = Vec::new();
        self.stream.drain_now(&mut out);
        out
    }

    /// Drains records until one satisfies `pred` or `timeout` passes. Returns every record
    /// drained by this call (the matching one and the rest of its batch included), or, on
    /// timeout, a [`Timeout`] holding what was seen.
    pub async fn collect_until(
        &mut self,
        mut pred: impl FnMut(&Record) -> bool,
        timeout: Duration,
    ) -> Result<Vec<Record>, Timeout> {
        let start = Instant::now();
        let mut all: Vec<Record> = Vec::new();
        loop {
            let mut batch = Vec::new();
            let left = timeout.saturating_sub(start.elapsed());
            match tokio::time::timeout(left, self.stream.next_batch(&mut batch)).await {
                Ok(r) => r.expect("reading the ring buffer"),
                Err(_) => {
                    return Err(Timeout {
                        after: timeout,
                        records: all,
                    });
                }
            }
            let hit = batch.iter().any(&mut pred);
            all.append(&mut batch);
            if hit {
                return Ok(all);
            }
        }
    }

    /// [`Monitor::collect_until`] that panics on timeout, saying what it waited for.
    pub async fn wait_for(&mut self, what: &str, pred: impl FnMut(&Record) -> bool) -> Vec<Record> {
        match self.collect_until(pred, TIMEOUT).await {
            Ok(r) => r,
            Err(t) => panic!("waiting for {what}: {t:?}"),
        }
    }
}

/// One loaded instance of the programs shared by the tests that only observe (each load
/// parses the kernel's BTF and verifies ~25 programs: seconds on a busy CI machine). A
/// background thread drains its ring buffer into an append-only log; tests take a cursor
/// (the log's length) before they act and look at what came after it.
pub struct SharedMonitor {
    probes: Mutex<(Probes, WatchSet)>,
    log: Mutex<Vec<Record>>,
    grew: Condvar,
}

/// The basename of [`SharedMonitor::sync`]'s marker: watched by the shared instance only.
const SYNC_MARKER: &str = "/nonexistent-kd-sync/kd-shared-sync-marker";

/// The shared instance, loaded on first use, reporting execs of `kubelet`.
pub fn shared() -> &'static SharedMonitor {
    static SHARED: OnceLock<SharedMonitor> = OnceLock::new();
    static STARTED: std::sync::Once = std::sync::Once::new();
    let m = SHARED.get_or_init(|| {
        let mut probes = Probes::load(&ProbeOptions::default())
            .unwrap_or_else(|e| panic!("loading the probes: {e:#}"));
        probes.set_comms(&["kubelet"]).expect("set_comms");
        let mut set = WatchSet::new();
        set.add(Path::new(SYNC_MARKER));
        set.apply(&mut probes).expect("applying the watch set");
        SharedMonitor {
            probes: Mutex::new((probes, set)),
            log: Mutex::new(Vec::new()),
            grew: Condvar::new(),
        }
    });
    STARTED.call_once(|| {
        let ring = lock(&m.probes).0.take_ring().expect("take_ring");
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("kd-shared-drain".into())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("runtime");
                rt.block_on(async move {
                    let mut stream = Stream::new(ring).expect("Stream::new");
                    ready_tx.send(()).unwrap();
                    loop {
                        let mut batch = Vec::new();
                        stream
                            .next_batch(&mut batch)
                            .await
                            .expect("reading the ring buffer");
                        assert_eq!(
                            stream.decode_errors, 0,
                            "undecodable records: {:?}",
                            stream.last_decode_error
                        );
                        lock(&m.log).extend(batch);
                        m.grew.notify_all();
                    }
                })
            })
            .expect("spawning the drain thread");
        ready_rx.recv().expect("the drain thread started");
    });
    m
}

/// A poisoned lock only means another test failed while holding it.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl SharedMonitor {
    /// Adds `paths` to what is watched and returns a cursor for the records from now on.
    pub fn watch(&self, paths: &[&Path]) -> usize {
        let mut g = lock(&self.probes);
        let (probes, set) = &mut *g;
        for p in paths {
            set.add(p);
        }
        set.apply(probes).expect("applying the watch set");
        self.cursor()
    }

    /// The log's length: records after it are newer than this call.
    pub fn cursor(&self) -> usize {
        lock(&self.log).len()
    }

    pub fn counters(&self) -> Counters {
        lock(&self.probes)
            .0
            .counters()
            .expect("reading the counters")
    }

    /// Waits until a record after `since` satisfies `pred`; returns all records from `since`
    /// up to now. Panics after [`TIMEOUT`], listing what was seen.
    pub fn wait_for(
        &self,
        since: usize,
        what: &str,
        mut pred: impl FnMut(&Record) -> bool,
    ) -> Vec<Record> {
        let deadline = Instant::now() + TIMEOUT;
        let mut log = lock(&self.log);
        let mut checked = since;
        loop {
            if log[checked..].iter().any(&mut pred) {
                return log[since..].to_vec();
            }
            checked = log.len();
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                panic!(
                    "waiting for {what}: {:?}",
                    Timeout {
                        after: TIMEOUT,
                        records: log[since..].to_vec()
                    }
                );
            }
            log = self
                .grew
                .wait_timeout(log, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Every record after `since` of everything that happened before this call: causes a
    /// marker event (an unlink of a nonexistent path whose basename only this instance
    /// watches, reported by name) and waits for it, so that whatever was in the ring before
    /// it is in the log.
    pub fn sync(&self, since: usize) -> Vec<Record> {
        static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        // Unique, and still decided by the kernel as the watched (directory name, name):
        // the last two components are SYNC_MARKER's.
        let marker = PathBuf::from(format!(
            "/nonexistent-kd-sync-{}-{n}/..{SYNC_MARKER}",
            std::process::id()
        ));
        let _ = fs::remove_file(&marker);
        let mut recs = self.wait_for(
            since,
            "the sync marker",
            |r| matches!(&r.event, Event::File(f) if f.path == marker),
        );
        recs.retain(|r| !matches!(&r.event, Event::File(f) if f.path == marker));
        recs
    }
}

/// No record matched in time.
pub struct Timeout {
    pub after: Duration,
    pub records: Vec<Record>,
}

impl fmt::Debug for Timeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "no matching record within {:?}; {} records seen{}",
            self.after,
            self.records.len(),
            if self.records.len() > 40 {
                " (last 40 shown)"
            } else {
                ""
            }
        )?;
        let skip = self.records.len().saturating_sub(40);
        for r in &self.records[skip..] {
            writeln!(f, "  {}", summary(r))?;
        }
        Ok(())
    }
}

/// One line about a record, for failure messages.
pub fn summary(r: &Record) -> String {
    match &r.event {
        Event::Exec(p) | Event::Exit(p) => format!(
            "{} pid={} tgid={} ppid={} comm={:?} exit_code={} path={} lost_before={}",
            if matches!(r.event, Event::Exec(_)) {
                "exec"
            } else {
                "exit"
            },
            p.actor.pid,
            p.actor.tgid,
            p.actor.ppid,
            String::from_utf8_lossy(&p.actor.comm),
            p.exit_code,
            p.path.display(),
            r.lost_before
        ),
        Event::File(f) => format!(
            "file pid={} tgid={} comm={:?} {} lost_before={}",
            f.actor.pid,
            f.actor.tgid,
            String::from_utf8_lossy(&f.actor.comm),
            file_summary(f),
            r.lost_before
        ),
    }
}

/// A file record's operation and what it names, for failure messages.
pub fn file_summary(f: &FileInfo) -> String {
    format!(
        "{} by={:?} ret={} dirfd={} dev={} ino={} path={:?} path2={:?} flags={:#o}",
        f.op.as_str(),
        f.matched_by,
        f.ret,
        f.dirfd,
        f.dev,
        f.ino,
        f.path,
        f.path2,
        f.sys_flags
    )
}

/// The file events of process `tgid`, in ring order.
pub fn file_events(records: &[Record], tgid: u32) -> Vec<&FileInfo> {
    records
        .iter()
        .filter_map(|r| match &r.event {
            Event::File(f) if f.actor.tgid == tgid => Some(f),
            _ => None,
        })
        .collect()
}

/// Is `r` a file event of process `tgid`?
pub fn is_file_of(r: &Record, tgid: u32) -> bool {
    matches!(&r.event, Event::File(f) if f.actor.tgid == tgid)
}

/// A fresh directory (removed on drop) holding `config.yaml` with some content.
pub struct ConfigDir {
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
}

impl ConfigDir {
    pub fn new() -> ConfigDir {
        let dir = tempfile::Builder::new()
            .prefix("kd-pipeline-")
            .tempdir()
            .expect("tempdir");
        let config = dir.path().join("config.yaml");
        fs::write(&config, "makeIPTablesUtilChains: true\n").expect("writing config.yaml");
        ConfigDir { dir, config }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Default for ConfigDir {
    fn default() -> Self {
        ConfigDir::new()
    }
}

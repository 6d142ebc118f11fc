//! Test harness shared by the integration tests: the real kernel programs, real processes,
//! real edits. Everything here needs root (`require_root`).
//!
//! Every loaded [`Monitor`] sees every process on the machine, and the tests of one binary
//! run in parallel: tests filter records by their own pids and paths and never assume
//! silence from anyone else.

use std::{
    fmt,
    fs,
    os::unix::{fs::PermissionsExt, process::CommandExt},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context, Result};
use kubelet_drift::{
    decode::{Event, FileInfo, Record},
    events::Stream,
    probes::{Counters, ProbeOptions, Probes},
    watch::WatchSet,
};

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
/// test) with `args`. Its stdin/stdout are null; kill it with [`Child::kill`].
pub fn spawn_kubelet(exe: &Path, args: &[&str]) -> Child {
    Command::new(exe)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("spawning the stand-in kubelet {}: {e}", exe.display()))
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
    let child = Command::new(&copy)
        .args(args)
        .current_dir(cwd)
        .uid(uid)
        .gid(gid)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("spawning {}: {e}", copy.display()));
    CopiedKubelet {
        dir,
        exe: copy,
        child,
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
    /// Loads the programs with a `ring_bytes` ring buffer, reports execs of `comms`, and
    /// watches `paths` (through [`WatchSet`], as the daemon does). Needs a tokio runtime
    /// with I/O enabled (`#[tokio::test]`).
    pub fn start(ring_bytes: u32, comms: &[&str], paths: &[&Path]) -> Result<Monitor> {
        let mut probes = Probes::load(&ProbeOptions { ring_bytes }).context("Probes::load")?;
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
        Monitor::start(ProbeOptions::default().ring_bytes, comms, paths)
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
    pub async fn wait_for(
        &mut self,
        what: &str,
        pred: impl FnMut(&Record) -> bool,
    ) -> Vec<Record> {
        match self.collect_until(pred, TIMEOUT).await {
            Ok(r) => r,
            Err(t) => panic!("waiting for {what}: {t:?}"),
        }
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
            "file {} pid={} tgid={} comm={:?} by={:?} ret={} dirfd={} dev={} ino={} path={:?} \
             path2={:?} lost_before={}",
            f.op.as_str(),
            f.actor.pid,
            f.actor.tgid,
            String::from_utf8_lossy(&f.actor.comm),
            f.matched_by,
            f.ret,
            f.dirfd,
            f.dev,
            f.ino,
            f.path,
            f.path2,
            r.lost_before
        ),
    }
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

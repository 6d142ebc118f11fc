//! Latency: a config edit, or a kubelet start, to the daemon's JSON line; inotifywait on the
//! same edits as the reference. Both sides are `Instant` (CLOCK_MONOTONIC) in this process:
//! taken just before the edit's system call, and by the reader threads the moment a line is
//! readable.

use std::{
    fs,
    io::Write,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};

use super::procs::{self, Daemon, Inotify};

pub fn config_text(value: bool) -> String {
    format!(
        "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n\
         makeIPTablesUtilChains: {value}\n"
    )
}

#[derive(Clone, Copy, Debug)]
pub enum EditKind {
    /// open(O_WRONLY|O_TRUNC), write, close: t0 before the open.
    Truncate,
    /// The new content is written to a temporary file first; t0 before rename(2) over.
    RenameOver,
}

/// Writes `value` to `path` the given way; returns the instant just before the edit's call.
pub fn edit(path: &Path, value: bool, kind: EditKind) -> Result<Instant> {
    let text = config_text(value);
    match kind {
        EditKind::Truncate => {
            let t0 = Instant::now();
            let mut f = fs::OpenOptions::new()
                .write(true)
                .truncate(true)
                .open(path)?;
            f.write_all(text.as_bytes())?;
            drop(f);
            Ok(t0)
        }
        EditKind::RenameOver => {
            let tmp = path.with_file_name(".config.yaml.bench-new");
            fs::write(&tmp, text.as_bytes())?;
            let t0 = Instant::now();
            fs::rename(&tmp, path)?;
            Ok(t0)
        }
    }
}

pub struct EditResult {
    /// ms, one per edit whose finding arrived.
    pub daemon_ms: Vec<f64>,
    /// The same samples split by edit kind (truncate, rename-over).
    pub daemon_ms_by_kind: [Vec<f64>; 2],
    pub inotify_ms: Vec<f64>,
    pub edits: usize,
    pub missing_findings: usize,
    pub missing_inotify: usize,
    /// For each edit whose expected line did not come: (index, value, kind, changes seen).
    pub missing: Vec<String>,
}

/// `edits` alternating edits (false, true, ...), alternating truncate and rename-over. The
/// file must hold `true` and the daemon must have reported that as its baseline.
pub fn edits(
    d: &mut Daemon,
    ino: Option<&Inotify>,
    config: &Path,
    edits: usize,
) -> Result<EditResult> {
    let mut r = EditResult {
        daemon_ms: Vec::new(),
        daemon_ms_by_kind: [Vec::new(), Vec::new()],
        inotify_ms: Vec::new(),
        edits,
        missing_findings: 0,
        missing_inotify: 0,
        missing: Vec::new(),
    };
    for i in 0..edits {
        let value = i % 2 == 1; // the file holds true before edit 0
        let kind = if (i / 2) % 2 == 0 {
            EditKind::Truncate
        } else {
            EditKind::RenameOver
        };
        let want = if value {
            "drift_resolved"
        } else {
            "drift_detected"
        };
        let t0 = edit(config, value, kind)?;
        let seen = std::cell::RefCell::new(Vec::new());
        match d.wait_for(Duration::from_secs(3), |v| {
            seen.borrow_mut()
                .push(format!("{}/{}", procs::change(v), procs::subject_kind(v)));
            procs::change(v) == want && procs::subject_kind(v) == "after_restart"
        }) {
            Some((t, _)) => {
                r.daemon_ms.push(ms(t - t0));
                r.daemon_ms_by_kind[kind as usize].push(ms(t - t0));
            }
            None => {
                r.missing_findings += 1;
                r.missing.push(format!(
                    "edit {i} ({kind:?} to {value}): saw {:?}",
                    seen.borrow()
                ));
            }
        }
        if let Some(ino) = ino {
            match ino.first_after(t0, Duration::from_secs(1)) {
                Some((t, _)) => r.inotify_ms.push(ms(t - t0)),
                None => r.missing_inotify += 1,
            }
        }
        // Let the burst settle (the daemon re-reads the files; editors' trailing events).
        thread::sleep(Duration::from_millis(4));
        d.drain();
        if let Some(ino) = ino {
            ino.drain();
        }
    }
    if r.daemon_ms.is_empty() {
        bail!(
            "no finding arrived for any of {edits} edits; daemon stderr:\n{}",
            d.stderr_tail()
        );
    }
    Ok(r)
}

pub struct ExecResult {
    pub ms: Vec<f64>,
    pub starts: usize,
    pub missing: usize,
}

/// Starts a copy of /bin/sleep named `kubelet-bench` `starts` times; spawn to its
/// kubelet_started line. Each is killed (by pid) and its kubelet_stopped awaited.
pub fn execs(d: &mut Daemon, stand_in: &Path, starts: usize) -> Result<ExecResult> {
    let mut r = ExecResult {
        ms: Vec::new(),
        starts,
        missing: 0,
    };
    for _ in 0..starts {
        let t0 = Instant::now();
        let mut child = Command::new(stand_in)
            .arg("600")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {}", stand_in.display()))?;
        let pid = u64::from(child.id());
        let got = d.wait_for(Duration::from_secs(3), |v| {
            procs::change(v) == "kubelet_started"
                && v["unmapped"]["subject"]["pid"].as_u64() == Some(pid)
        });
        match got {
            Some((t, _)) => r.ms.push(ms(t - t0)),
            None => r.missing += 1,
        }
        procs::stop_child(&mut child, libc::SIGKILL);
        d.wait_for(Duration::from_secs(2), |v| {
            procs::change(v) == "kubelet_stopped"
                && v["unmapped"]["subject"]["pid"].as_u64() == Some(pid)
        });
        thread::sleep(Duration::from_millis(4));
        d.drain();
    }
    if r.ms.is_empty() {
        bail!(
            "no kubelet_started line for any of {starts} starts; daemon stderr:\n{}",
            d.stderr_tail()
        );
    }
    Ok(r)
}

/// /bin/sleep copied as `<dir>/kubelet-bench`.
pub fn stand_in(dir: &Path) -> Result<PathBuf> {
    let p = dir.join("kubelet-bench");
    fs::copy("/bin/sleep", &p).context("copying /bin/sleep")?;
    Ok(p)
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

//! The daemon's core driven by recorded record sequences: no kernel, no sinks, a fake
//! /proc, a node root in a tempdir. Each test replays what the kernel sent in a race that
//! once made the daemon do the wrong thing.

mod classify;
mod replay;
mod schedule;

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    time::Instant,
};

use super::{
    core::{Core, Emit, Kernel},
    proc::{LiveProc, ProcView},
    source::Recorded,
};
use crate::{
    decode::{Event, FileInfo, FileOp, KernelActor, MatchedBy, ProcInfo, Record},
    drift::Transition,
    report::{Actor, Change, Trigger},
    settings::Settings,
    watched::{self, WatchSet},
};

/// /proc as the test says: cwds and dup'ed fds by pid; no process is alive.
#[derive(Default)]
pub struct FakeProc {
    pub cwd: HashMap<u32, PathBuf>,
    pub dups: HashMap<(u32, i32), i32>,
}

impl ProcView for FakeProc {
    fn resolve(&self, tgid: u32, _dirfd: i32, path: &Path) -> Option<PathBuf> {
        if path.as_os_str().is_empty() {
            return None;
        }
        if path.is_absolute() {
            return Some(watched::normalize(path));
        }
        self.cwd
            .get(&tgid)
            .map(|c| watched::normalize(&c.join(path)))
    }
    fn truncated_matches(&self, _: &WatchSet, _: u32, _: i32, _: &Path) -> bool {
        true
    }
    fn actor(&self, a: &KernelActor) -> Actor {
        Actor {
            pid: a.tgid,
            ppid: a.ppid,
            uid: a.uid,
            comm: String::from_utf8_lossy(&a.comm).into_owned(),
            ..Default::default()
        }
    }
    fn other_fd_on(&self, tgid: u32, closed: i32, _: u32, _: u64) -> Option<i32> {
        self.dups.get(&(tgid, closed)).copied()
    }
    fn fd_stamp(&self, _: u32, _: i32) -> Option<super::schedule::FdStamp> {
        None
    }
    fn file_inode(&self, path: &Path) -> Option<(u32, u64)> {
        LiveProc.file_inode(path)
    }
    fn real_path(&self, path: &Path) -> Option<PathBuf> {
        LiveProc.real_path(path)
    }
    fn target(&self, path: &Path) -> Option<PathBuf> {
        LiveProc.target(path)
    }
}

/// Kernel maps that take anything.
pub struct NoKernel;

impl Kernel for NoKernel {
    fn apply_watch(&mut self, _: &WatchSet) -> anyhow::Result<()> {
        Ok(())
    }
    fn track(&mut self, _: u32) {}
}

pub const UNIT: &str = "[Unit]\nDescription=kubelet\n[Service]\n\
    ExecStart=/usr/bin/kubelet --config=/var/lib/kubelet/config.yaml\n";

pub fn config(value: bool) -> String {
    format!(
        "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n\
         makeIPTablesUtilChains: {value}\n"
    )
}

/// A node root with kubelet.service and a config saying true, and a core on it (baseline
/// taken, its reports dropped). No kubelet runs (`kubelet_names` matches no process).
pub struct Replay {
    pub dir: tempfile::TempDir,
    pub core: Core,
    /// The replay's clock.
    pub clock: Instant,
}

impl Replay {
    pub fn new(proc: FakeProc) -> Replay {
        let dir = tempfile::tempdir().unwrap();
        let put = |p: &str, text: &str| {
            let host = dir.path().join(p);
            std::fs::create_dir_all(host.parent().unwrap()).unwrap();
            std::fs::write(host, text).unwrap();
        };
        put("etc/systemd/system/kubelet.service", UNIT);
        put("var/lib/kubelet/config.yaml", &config(true));
        let settings = Settings {
            host_root: dir.path().to_path_buf(),
            kubelet_names: vec!["kdt-replay-none".into()],
            node_name: Some("node-replay".into()),
            ..Settings::default()
        };
        let clock = Instant::now();
        let mut core = Core::new(settings, Box::new(proc), clock);
        core.baseline(&mut NoKernel).unwrap();
        let base = core.take_emitted();
        assert!(
            base.iter().any(|e| matches!(e, Emit::Report(b)
                if b.0.change == Change::Baseline && b.0.finding.status == crate::finding::Status::Pass)),
            "{base:?}"
        );
        Replay { dir, core, clock }
    }

    /// `rel` inside the node root, on the host.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// The records, ingested as they come, then evaluations until nothing is due, on a
    /// clock that moves 1 ms per step (`Recorded` batches arrive one per drain: one a step,
    /// and more during evaluations). Returns the reports and the time the replay took.
    pub fn run(
        &mut self,
        first: Vec<Record>,
        later: Vec<Vec<Record>>,
    ) -> (Vec<(Transition, Trigger)>, std::time::Duration) {
        let mut source = Recorded::new(later);
        let t0 = self.clock;
        self.core.ingest(first, self.clock);
        for _ in 0..3000 {
            self.clock += std::time::Duration::from_millis(1);
            let now = self.clock;
            // Records come as the loop would take them, one batch a step.
            self.core.drain(&mut source, now);
            self.core.tick(now);
            if self.core.sched.due(now) {
                self.core
                    .evaluate(&mut source, &mut NoKernel, || now)
                    .unwrap();
            } else if source.is_empty()
                && self.core.sched.wake() > now + std::time::Duration::from_secs(1)
            {
                break;
            }
        }
        let reports = self
            .core
            .take_emitted()
            .into_iter()
            .filter_map(|e| match e {
                Emit::Report(b) => Some(*b),
                Emit::Notice(_) => None,
            })
            .collect();
        (reports, self.clock - t0)
    }
}

pub fn actor(pid: u32, comm: &str) -> KernelActor {
    KernelActor {
        pid,
        tgid: pid,
        ppid: 1,
        uid: 0,
        gid: 0,
        cgroup_id: 1,
        comm: comm.as_bytes().to_vec(),
        exe: None,
    }
}

/// A file record as the kernel sends it.
pub fn file(pid: u32, comm: &str, op: FileOp, path: &str) -> FileInfo {
    FileInfo {
        actor: actor(pid, comm),
        op,
        matched_by: MatchedBy::Name,
        ret: 0,
        dirfd: libc::AT_FDCWD,
        dirfd2: libc::AT_FDCWD,
        sys_flags: 0,
        dev: 0,
        ino: 0,
        path: PathBuf::from(path),
        path_truncated: false,
        path2: None,
        path2_truncated: false,
        base: None,
        base2: None,
    }
}

pub fn rec(f: FileInfo) -> Record {
    Record {
        lost_before: 0,
        ktime_ns: 0,
        event: Event::File(f),
    }
}

/// The kernel's (dev, ino) of anything (a device node too), as the watch set keys it.
pub fn inode_of(path: &Path) -> (u32, u64) {
    std::fs::metadata(path)
        .map(|m| {
            let k = crate::probes::inode_key(&m);
            (k.dev, k.ino)
        })
        .unwrap_or((0, 0))
}

/// An open for writing of `path` that returned `fd`, matched by the file's inode.
pub fn open_w(pid: u32, comm: &str, path: &Path, fd: i64) -> Record {
    let (dev, ino) = inode_of(path);
    let mut f = file(pid, comm, FileOp::Open, path.to_str().unwrap());
    f.matched_by = MatchedBy::Inode;
    (f.dev, f.ino, f.ret) = (dev, ino, fd);
    rec(f)
}

/// The close of an fd recorded at its open.
pub fn close(pid: u32, comm: &str, fd: i32, path: &Path) -> Record {
    let (dev, ino) = inode_of(path);
    let mut f = file(pid, comm, FileOp::Close, "");
    f.matched_by = MatchedBy::Fd;
    (f.dev, f.ino, f.dirfd) = (dev, ino, fd);
    rec(f)
}

pub fn rename(pid: u32, comm: &str, from: &Path, to: &Path) -> Record {
    let mut f = file(pid, comm, FileOp::Rename, from.to_str().unwrap());
    f.path2 = Some(to.to_path_buf());
    rec(f)
}

pub fn exec(pid: u32, comm: &str, path: &str) -> Record {
    Record {
        lost_before: 0,
        ktime_ns: 0,
        event: Event::Exec(ProcInfo {
            actor: actor(pid, comm),
            exit_code: 0,
            path: PathBuf::from(path),
        }),
    }
}

pub fn comm(t: &Trigger) -> Option<&str> {
    t.actor.as_ref().map(|a| a.comm.as_str())
}

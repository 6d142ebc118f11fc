//! The kubelets: which processes are the node's kubelet (a trust decision), which run, which
//! were started and wait to be evaluated, which impostors were already told.
//!
//! A process named like a kubelet decides a verdict only if it is plausibly the node's
//! kubelet: its executable is owned by root and writable by no one else, it runs as root or
//! in the kubelet unit's cgroup (where the unit's `User=` applies), and when it is in a
//! systemd unit's cgroup at all, that unit is the kubelet's or a distribution's supervisor.
//! Anyone can run a binary named `kubelet`; none of that can be had without root.

use std::{
    collections::{BTreeMap, HashSet},
    os::unix::fs::MetadataExt,
};

use crate::{
    finding::{Finding, Status},
    kubelet::discovery::{self, KubeletProcess},
    report::Trigger,
};

/// Units that run a kubelet as their child: the distributions' supervisors.
const SUPERVISOR_UNITS: &[&str] = &[
    "kubelet.service",
    "rke2-server.service",
    "rke2-agent.service",
    "k3s.service",
    "k3s-agent.service",
    "snap.microk8s.daemon-kubelite.service",
    "snap.kubelet.daemon.service",
];

/// A process with a kubelet's name.
#[derive(Clone, Debug)]
pub enum Candidate {
    /// Trusted as the node's kubelet.
    Kubelet(KubeletProcess),
    /// Not trusted, and why.
    Impostor(KubeletProcess, String),
}

#[derive(Debug)]
pub struct Inventory {
    names: Vec<String>,
    unit: String,
    running: BTreeMap<u32, KubeletProcess>,
    /// Kubelet pids whose exec was seen, to evaluate.
    started: Vec<(u32, Trigger)>,
    /// Impostors already reported: (pid, start time).
    told: HashSet<(u32, u64)>,
}

impl Inventory {
    pub fn new(names: Vec<String>, unit: String) -> Inventory {
        Inventory {
            names,
            unit,
            running: BTreeMap::new(),
            started: Vec::new(),
            told: HashSet::new(),
        }
    }

    /// Every process with a kubelet's name now, judged.
    pub fn discover(&self) -> Vec<Candidate> {
        discovery::find_kubelets(&self.names)
            .into_iter()
            .map(|p| self.judge(p))
            .collect()
    }

    /// Process `pid` if it (still) has a kubelet's name, judged.
    pub fn read(&self, pid: u32) -> Option<Candidate> {
        let p = discovery::read_kubelet(pid, &self.names).ok().flatten()?;
        Some(self.judge(p))
    }

    fn judge(&self, p: KubeletProcess) -> Candidate {
        match distrust(&p, &self.unit) {
            Some(why) => Candidate::Impostor(p, why),
            None => Candidate::Kubelet(p),
        }
    }

    /// True the first time an impostor is seen (it is reported once).
    pub fn first_sight(&mut self, p: &KubeletProcess) -> bool {
        self.told.insert((p.pid, p.start_time))
    }

    pub fn exec_seen(&mut self, pid: u32, trigger: Trigger) {
        self.started.push((pid, trigger));
    }

    pub fn take_started(&mut self) -> Vec<(u32, Trigger)> {
        std::mem::take(&mut self.started)
    }

    pub fn insert(&mut self, p: KubeletProcess) {
        self.running.insert(p.pid, p);
    }

    pub fn contains(&self, pid: u32) -> bool {
        self.running.contains_key(&pid)
    }

    /// A kubelet ended (or was not found by a rescan): what we knew of it.
    pub fn remove(&mut self, pid: u32) -> Option<KubeletProcess> {
        self.running.remove(&pid)
    }

    /// The trusted running kubelets, by pid.
    pub fn running(&self) -> Vec<KubeletProcess> {
        self.running.values().cloned().collect()
    }
}

/// Why `p` is not trusted as the node's kubelet, or `None` when it is.
fn distrust(p: &KubeletProcess, kubelet_unit: &str) -> Option<String> {
    let in_kubelet_unit = p.systemd_unit.as_deref() == Some(kubelet_unit);
    if let Some(u) = &p.systemd_unit
        && !in_kubelet_unit
        && !SUPERVISOR_UNITS.contains(&u.as_str())
    {
        return Some(format!(
            "it runs in the cgroup of {u}, not of {kubelet_unit} or a distribution's supervisor"
        ));
    }
    // /proc/<pid>/exe is the file it runs, whatever its path and mounts say.
    let exe = match std::fs::metadata(format!("/proc/{}/exe", p.pid)) {
        Ok(m) => m,
        Err(e) => return Some(format!("its executable cannot be checked: {e}")),
    };
    if exe.uid() != 0 {
        return Some(format!("its executable is owned by uid {}", exe.uid()));
    }
    let mode = exe.mode();
    if mode & 0o002 != 0 || (mode & 0o020 != 0 && exe.gid() != 0) {
        return Some(format!(
            "its executable is writable by others (mode {:o})",
            mode & 0o7777
        ));
    }
    match process_uids(p.pid) {
        Some((0, 0)) => None,
        Some(_) if in_kubelet_unit => None, // the unit's User=
        Some((r, e)) => Some(format!("it runs as uid {r} (effective {e}), not root")),
        None => Some("its user cannot be read".into()),
    }
}

/// The real and effective uid of a process.
fn process_uids(pid: u32) -> Option<(u32, u32)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find_map(|l| l.strip_prefix("Uid:"))?;
    let mut ids = line.split_whitespace().map(|v| v.parse::<u32>().ok());
    Some((ids.next()??, ids.next()??))
}

/// The worst of several verdicts for the same subject: a fail, then an error, then a pass.
/// Never the first or the best: one kubelet among several that would restart with `false`
/// is a fail.
pub fn worst(findings: Vec<Finding>) -> Option<Finding> {
    let rank = |s: Status| match s {
        Status::Fail => 2,
        Status::Error => 1,
        Status::Pass => 0,
    };
    let mut inputs = Vec::new();
    let mut dirs = Vec::new();
    for f in &findings {
        inputs.extend(f.inputs.iter().cloned());
        dirs.extend(f.input_dirs.iter().cloned());
    }
    let mut w = findings.into_iter().max_by_key(|f| rank(f.status))?;
    // Every candidate's inputs are watched: a change to any may change the worst.
    inputs.sort();
    inputs.dedup();
    dirs.sort();
    dirs.dedup();
    w.inputs = inputs;
    w.input_dirs = dirs;
    Some(w)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::finding::{Source, Subject};
    use std::path::PathBuf;

    fn me(unit: Option<&str>) -> KubeletProcess {
        KubeletProcess {
            pid: std::process::id(),
            argv: vec!["kubelet".into()],
            exe: None,
            root: "/".into(),
            cwd: "/".into(),
            env: Default::default(),
            start_time: 0,
            systemd_unit: unit.map(str::to_string),
            non_utf8: false,
            notes: vec![],
        }
    }

    /// The test runs as root from a root-owned binary (the integration tests cover the
    /// other users and owners with real processes).
    #[test]
    fn trust_follows_the_cgroup() {
        if nix::unistd::geteuid().as_raw() != 0 {
            return;
        }
        assert_eq!(distrust(&me(None), "kubelet.service"), None);
        assert_eq!(
            distrust(&me(Some("kubelet.service")), "kubelet.service"),
            None
        );
        assert_eq!(
            distrust(&me(Some("rke2-agent.service")), "kubelet.service"),
            None
        );
        let why = distrust(&me(Some("evil.service")), "kubelet.service").unwrap();
        assert!(why.contains("evil.service"), "{why}");
    }

    #[test]
    fn the_worst_verdict_wins() {
        let f = |s: Status, input: &str| Finding {
            control: "4.2.7".into(),
            status: s,
            effective: None,
            subject: Subject::AfterRestart {
                unit: None,
                argv: vec![],
                exec_start_from: None,
            },
            source: Source::Default,
            reason: input.into(),
            remediation: String::new(),
            inputs: vec![PathBuf::from(input)],
            input_dirs: vec![],
        };
        let w = worst(vec![
            f(Status::Pass, "/a"),
            f(Status::Fail, "/b"),
            f(Status::Error, "/c"),
        ])
        .unwrap();
        assert_eq!((w.status, w.reason.as_str()), (Status::Fail, "/b"));
        assert_eq!(w.inputs.len(), 3);
        let w = worst(vec![f(Status::Pass, "/a"), f(Status::Error, "/c")]).unwrap();
        assert_eq!(w.status, Status::Error);
        assert!(worst(vec![]).is_none());
    }
}

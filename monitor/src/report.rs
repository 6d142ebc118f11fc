//! What the daemon emits: a [`DriftReport`] is a [`Finding`] plus what changed and who did it.
//! Every output (journald, OCSF JSON lines, text) renders this one type.

use std::{path::PathBuf, time::SystemTime};

use serde::Serialize;

use crate::{
    decode::FileOp,
    finding::{Benchmark, Finding, Status},
};

/// Why this report was emitted. Each has its own journald MESSAGE_ID (see `output/journald.rs`
/// and `deploy/kubelet-drift.catalog`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    /// State at daemon start (or after a full rescan that found no previous state).
    Baseline,
    /// pass -> fail.
    DriftDetected,
    /// fail -> pass.
    DriftResolved,
    /// anything -> error.
    ErrorAppeared,
    /// error -> pass/fail.
    ErrorCleared,
    /// A kubelet process appeared (exec seen); the finding is its running state.
    KubeletStarted,
    /// A kubelet process exited; the finding is its last known state.
    KubeletStopped,
    /// The after-restart state now differs from a running kubelet's.
    PendingDriftAppeared,
    /// The after-restart state agrees with the running kubelet again.
    PendingDriftCleared,
    /// A process named like a kubelet that is not trusted as the node's kubelet (not
    /// root-owned, run by another user, in another unit's cgroup): reported once, with the
    /// actor, and never allowed to change a verdict. The finding is the unchanged
    /// after-restart state.
    ImpostorKubelet,
}

impl Change {
    pub fn as_str(self) -> &'static str {
        match self {
            Change::Baseline => "baseline",
            Change::DriftDetected => "drift_detected",
            Change::DriftResolved => "drift_resolved",
            Change::ErrorAppeared => "error_appeared",
            Change::ErrorCleared => "error_cleared",
            Change::KubeletStarted => "kubelet_started",
            Change::KubeletStopped => "kubelet_stopped",
            Change::PendingDriftAppeared => "pending_drift_appeared",
            Change::PendingDriftCleared => "pending_drift_cleared",
            Change::ImpostorKubelet => "impostor_kubelet",
        }
    }
}

/// The process that caused a change (from the kernel event, completed from /proc when it
/// was still there).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Actor {
    pub pid: u32,
    pub ppid: u32,
    pub uid: u32,
    /// From the node's passwd database, when the uid has a name.
    pub user: Option<String>,
    pub gid: u32,
    /// The kernel's comm (15 bytes at most); may hold any bytes, escaped by every output.
    pub comm: String,
    pub exe: Option<PathBuf>,
    pub cgroup_id: u64,
    /// A container id found in the actor's cgroup path (docker, containerd, cri-o), if any.
    pub container_id: Option<String>,
    /// The actor's argv, when still readable.
    pub argv: Option<Vec<String>>,
}

/// What caused an evaluation. Written as the strings of [`TriggerOp::as_str`] in every output.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TriggerOp {
    /// The state at the daemon's start.
    Baseline,
    /// The periodic full re-evaluation.
    Rescan,
    /// Kernel records were lost: a full re-evaluation, with no event to name.
    LostEvents,
    /// A change was seen whose record is not on any input of the evaluation (or was
    /// lost): the report names no process rather than a bystander.
    Unattributed,
    /// `kubelet-drift check` (its OCSF output): a one-off evaluation.
    Check,
    /// A sink came back after an outage: the current state restated on it.
    Resync,
    Exec,
    Exit,
    /// A file operation ("open", "close", "rename", ...; see [`FileOp::as_str`]).
    File(FileOp),
}

impl TriggerOp {
    pub fn as_str(self) -> &'static str {
        match self {
            TriggerOp::Baseline => "baseline",
            TriggerOp::Rescan => "rescan",
            TriggerOp::LostEvents => "lost_events",
            TriggerOp::Unattributed => "unattributed",
            TriggerOp::Check => "check",
            TriggerOp::Resync => "resync",
            TriggerOp::Exec => "exec",
            TriggerOp::Exit => "exit",
            TriggerOp::File(op) => op.as_str(),
        }
    }

    /// An operation on a file's content through an fd (it changes no name we watch).
    pub fn is_content(self) -> bool {
        matches!(
            self,
            TriggerOp::File(FileOp::Open | FileOp::Close | FileOp::Truncate | FileOp::Ftruncate)
        )
    }

    /// No process caused it: the daemon's own baseline, rescan, or a loss.
    pub fn is_internal(self) -> bool {
        matches!(
            self,
            TriggerOp::Baseline
                | TriggerOp::Rescan
                | TriggerOp::LostEvents
                | TriggerOp::Unattributed
                | TriggerOp::Check
                | TriggerOp::Resync
        )
    }
}

impl std::fmt::Display for TriggerOp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for TriggerOp {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// What triggered the evaluation that produced this report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Trigger {
    pub op: TriggerOp,
    /// The path involved, resolved in userspace when possible (as given otherwise).
    pub path: Option<PathBuf>,
    /// The second path (rename/link target).
    pub path2: Option<PathBuf>,
    pub actor: Option<Actor>,
    /// The event could not be tied to a watched path exactly (its process was gone before
    /// its relative path could be resolved) and was taken on its name alone: it triggers an
    /// evaluation, but a report names an exact trigger when there is one.
    #[serde(skip)]
    pub guessed: bool,
    /// The file's (dev, ino) as the kernel matched it, when it did (an open, close or
    /// truncate of a watched inode, whatever name was used).
    #[serde(skip)]
    pub inode: Option<(u32, u64)>,
    /// The order in which the daemon took it (0 before): a record that named one change
    /// names no later one.
    #[serde(skip)]
    pub seq: u64,
    /// A path was cut by the kernel's buffer: it is the head of the path the process gave.
    #[serde(skip)]
    pub cut: bool,
}

impl Trigger {
    /// A trigger no process caused (baseline, rescan, lost records, unattributed).
    pub fn internal(op: TriggerOp) -> Trigger {
        Trigger {
            op,
            path: None,
            path2: None,
            actor: None,
            guessed: false,
            inode: None,
            seq: 0,
            cut: false,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DriftReport {
    pub change: Change,
    pub finding: Finding,
    /// The subject's previous status, if it had one.
    pub previous: Option<Status>,
    pub trigger: Trigger,
    pub node: String,
    #[serde(serialize_with = "serialize_time")]
    pub time: SystemTime,
    pub benchmark: Benchmark,
    /// The node's distribution (detected, or given with `--distribution`) when the report was
    /// made; `None` for reports that are not about a node.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub distribution: Option<crate::kubelet::distro::Detection>,
}

fn serialize_time<S: serde::Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
    let ms = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    s.serialize_u64(ms)
}

/// Operational notices that are not findings (lost events, an output that stopped working).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Notice {
    pub level: NoticeLevel,
    pub message: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NoticeLevel {
    Info,
    Warning,
    Error,
}

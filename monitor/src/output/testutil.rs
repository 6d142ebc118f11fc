//! Shared report fixtures for the output tests (and, through them, every sink).

use std::{path::PathBuf, time::SystemTime};

use crate::{
    decode::FileOp,
    finding::{Benchmark, Finding, Source, Status, Subject},
    report::{Actor, Change, DriftReport, Trigger, TriggerOp},
};

pub const ALL_CHANGES: [Change; 10] = [
    Change::Baseline,
    Change::DriftDetected,
    Change::DriftResolved,
    Change::ErrorAppeared,
    Change::ErrorCleared,
    Change::KubeletStarted,
    Change::KubeletStopped,
    Change::PendingDriftAppeared,
    Change::PendingDriftCleared,
    Change::ImpostorKubelet,
];

pub const HOSTILE: &str = "x\nPRIORITY=0\nKUBELET_DRIFT_STATUS=pass";

/// A report shaped like the daemon's, with the status that fits the change.
pub fn report(change: Change) -> DriftReport {
    let status = match change {
        Change::DriftDetected | Change::PendingDriftAppeared => Status::Fail,
        Change::ErrorAppeared => Status::Error,
        _ => Status::Pass,
    };
    let subject = if matches!(
        change,
        Change::PendingDriftAppeared | Change::PendingDriftCleared
    ) {
        Subject::AfterRestart {
            unit: Some("/lib/systemd/system/kubelet.service".into()),
            argv: vec![
                "/usr/bin/kubelet".into(),
                "--config=/var/lib/kubelet/config.yaml".into(),
            ],
            exec_start_from: Some("/etc/systemd/system/kubelet.service.d/10-kubeadm.conf".into()),
        }
    } else {
        Subject::Running {
            pid: 1234,
            argv: vec![
                "/usr/bin/kubelet".into(),
                "--config=/var/lib/kubelet/config.yaml".into(),
            ],
            evaluated_late: false,
        }
    };
    DriftReport {
        change,
        finding: Finding {
            control: "4.2.7".into(),
            status,
            effective: match status {
                Status::Pass => Some(true),
                Status::Fail => Some(false),
                Status::Error => None,
            },
            subject,
            source: Source::ConfigFile {
                path: "/var/lib/kubelet/config.yaml".into(),
                line: Some(3),
            },
            reason: "/var/lib/kubelet/config.yaml line 3 sets it false".into(),
            remediation: "Set makeIPTablesUtilChains: true in /var/lib/kubelet/config.yaml and restart the kubelet".into(),
            inputs: vec![],
            input_dirs: vec![],
        },
        previous: Some(Status::Pass),
        trigger: Trigger {
            op: TriggerOp::File(FileOp::Rename),
            path: Some("/var/lib/kubelet/config.yaml".into()),
            path2: None,
            actor: Some(Actor {
                pid: 99,
                ppid: 98,
                uid: 0,
                user: Some("root".into()),
                gid: 0,
                comm: "sed".into(),
                exe: Some(PathBuf::from("/usr/bin/sed")),
                cgroup_id: 4242,
                container_id: None,
                argv: Some(vec!["sed".into(), "-i".into(), "s/true/false/".into()]),
            }),
            guessed: false,
            inode: None,
            seq: 0,
        },
        node: "node-1".into(),
        time: SystemTime::UNIX_EPOCH + std::time::Duration::from_millis(1_700_000_000_123),
        benchmark: Benchmark::Cis16,
    }
}

/// A report whose every free-text value is hostile: forged fields, terminal escapes,
/// invalid UTF-8 (in paths: lossy-converted to U+FFFD).
pub fn hostile_report(change: Change) -> DriftReport {
    use std::os::unix::ffi::OsStrExt;
    let mut r = report(change);
    let bad_path = PathBuf::from(std::ffi::OsStr::from_bytes(
        b"/etc/\xff\x1b[31mk\nPRIORITY=0",
    ));
    r.finding.reason = format!("{HOSTILE}\x1b]0;pwned\x07\x1b[2J=x");
    r.finding.remediation = HOSTILE.into();
    r.finding.source = Source::Flag {
        index: 5,
        text: HOSTILE.into(),
    };
    r.node = HOSTILE.into();
    r.trigger.path = Some(bad_path.clone());
    if let Some(a) = r.trigger.actor.as_mut() {
        a.comm = "\x1b[2Jevil\nX=1".into();
        a.exe = Some(bad_path);
        a.user = Some(HOSTILE.into());
        a.container_id = Some(HOSTILE.into());
    }
    r
}

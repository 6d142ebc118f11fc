//! The test kit: finding and report fixtures and the OCSF line validator, shared by the unit
//! tests and (with the `testkit` feature) the integration tests in `tests/`.

use std::{path::PathBuf, time::SystemTime};

use serde_json::Value;

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

/// Waits (5 s at most) until process `pid` has exec'd `exe`: its exe link names it and its
/// new command line is in place (the link changes first). `spawn()` returns after the fork.
pub fn wait_for_exec(pid: u32, exe: &std::path::Path) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while std::fs::read_link(format!("/proc/{pid}/exe"))
        .ok()
        .as_deref()
        != Some(exe)
        || std::fs::read(format!("/proc/{pid}/cmdline")).map_or(true, |c| c.is_empty())
    {
        assert!(
            std::time::Instant::now() < deadline,
            "{} (pid {pid}) never exec'd",
            exe.display()
        );
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
}

/// A bare finding on `subject` with `status` (the value that fits it, the default's source, no
/// text, no inputs).
pub fn finding(subject: Subject, status: Status) -> Finding {
    Finding {
        control: "4.2.7".into(),
        status,
        effective: match status {
            Status::Pass => Some(true),
            Status::Fail => Some(false),
            Status::Error => None,
        },
        subject,
        source: Source::Default,
        reason: String::new(),
        remediation: String::new(),
        inputs: vec![],
        input_dirs: vec![],
    }
}

/// A running kubelet `pid` (argv `kubelet`, start time 0).
pub fn running(pid: u32) -> Subject {
    Subject::Running {
        pid,
        start_time: 0,
        argv: vec!["kubelet".into()],
        evaluated_late: false,
    }
}

/// The after-restart subject with no unit and no command line.
pub fn after_restart() -> Subject {
    Subject::AfterRestart {
        unit: None,
        argv: vec![],
        exec_start_from: None,
    }
}

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
            start_time: 5678,
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
            source: Source::ConfigFile {
                path: "/var/lib/kubelet/config.yaml".into(),
                line: Some(3),
            },
            reason: "/var/lib/kubelet/config.yaml line 3 sets it false".into(),
            remediation: "Set makeIPTablesUtilChains: true in /var/lib/kubelet/config.yaml and restart the kubelet".into(),
            ..finding(subject, status)
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
            cut: false,
        },
        node: "node-1".into(),
        time: SystemTime::UNIX_EPOCH + std::time::Duration::from_millis(1_700_000_000_123),
        benchmark: Benchmark::Cis16,
        distribution: None,
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

/// Checks the OCSF fields every line must have (Compliance Finding 1.3.0 as documented in
/// docs/siem.md), its time around now included. Returns the problems found, empty when the
/// line is valid.
pub fn ocsf_problems(v: &Value) -> Vec<String> {
    let mut p = ocsf_shape_problems(v);
    let t = v["time"].as_u64().unwrap_or(0);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    if t + 3_600_000 < now || t > now + 60_000 {
        p.push(format!(
            "time {t} is not ms since the epoch around now ({now})"
        ));
    }
    p
}

/// [`ocsf_problems`] but for the time's value (fixtures carry a fixed time).
pub fn ocsf_shape_problems(v: &Value) -> Vec<String> {
    let mut p = Vec::new();
    let at = |path: &str| path.split('.').fold(v, |v, k| &v[k]);
    let int = |path: &str, p: &mut Vec<String>| {
        if !at(path).is_u64() {
            p.push(format!("{path} is not an integer: {}", at(path)));
        }
    };
    let string = |path: &str, p: &mut Vec<String>| {
        if at(path).as_str().is_none_or(|s| s.is_empty()) {
            p.push(format!("{path} is not a non-empty string: {}", at(path)));
        }
    };
    for k in [
        "class_uid",
        "category_uid",
        "activity_id",
        "type_uid",
        "time",
        "severity_id",
        "status_id",
        "compliance.status_id",
    ] {
        int(k, &mut p);
    }
    for k in [
        "metadata.version",
        "metadata.product.name",
        "metadata.product.vendor_name",
        "metadata.product.version",
        "metadata.uid",
        "finding_info.uid",
        "finding_info.title",
        "compliance.control",
        "compliance.status",
        "device.hostname",
        "message",
        "unmapped.change",
    ] {
        string(k, &mut p);
    }
    if v["class_uid"] != 2003 {
        p.push(format!("class_uid {}", v["class_uid"]));
    }
    if v["category_uid"] != 2 {
        p.push(format!("category_uid {}", v["category_uid"]));
    }
    let a = v["activity_id"].as_u64().unwrap_or(0);
    if !(1..=3).contains(&a) {
        p.push(format!("activity_id {a}"));
    }
    if v["type_uid"].as_u64() != Some(2003 * 100 + a) {
        p.push(format!("type_uid {} for activity {a}", v["type_uid"]));
    }
    if !v["metadata"]["version"]
        .as_str()
        .is_some_and(|s| s.starts_with("1."))
    {
        p.push("metadata.version".into());
    }
    if v["compliance"]["control"] != "4.2.7" {
        p.push(format!("compliance.control {}", v["compliance"]["control"]));
    }
    if !v["compliance"]["standards"]
        .as_array()
        .is_some_and(|a| !a.is_empty() && a.iter().all(Value::is_string))
    {
        p.push("compliance.standards".into());
    }
    let (sev, cst) = match status(v) {
        "Pass" => (1, 1),
        "Fail" => (4, 3),
        "Error" => (3, 99),
        other => {
            p.push(format!("compliance.status {other}"));
            (0, 0)
        }
    };
    if v["severity_id"] != sev || v["compliance"]["status_id"] != cst {
        p.push(format!(
            "severity_id {} / compliance.status_id {} for {}",
            v["severity_id"],
            v["compliance"]["status_id"],
            status(v)
        ));
    }
    if !v["remediation"]["desc"].is_string() {
        p.push("remediation.desc missing".into());
    }
    if status(v) != "Pass" {
        string("remediation.desc", &mut p);
    }
    // The actor: every report caused by an event names who did it. Reports from the
    // baseline, rescans, losses and unattributed changes have no actor, except a running
    // kubelet's (the process itself) while it runs: the Close of one that ended while the
    // daemon was down names nobody.
    let op = trigger_op(v);
    let has_actor = !matches!(op, "baseline" | "rescan" | "lost_events" | "unattributed")
        || (kind(v) == "running" && v["activity_id"] != 3);
    if has_actor {
        for k in ["actor.process.pid", "actor.process.parent_process.pid"] {
            int(k, &mut p);
        }
        for k in ["actor.process.name", "actor.process.user.uid"] {
            string(k, &mut p);
        }
    }
    p
}

/// [`ocsf_problems`] plus `actor.process.file.path`, which needs the actor still running
/// when the daemon reads `/proc/<pid>/exe`.
pub fn ocsf_problems_with_exe(v: &Value) -> Vec<String> {
    let mut p = ocsf_problems(v);
    p.extend(exe_problems(v));
    p
}

/// `actor.process.file.path` where there is an actor.
pub fn exe_problems(v: &Value) -> Option<String> {
    (v.get("actor").is_some() && !v["actor"]["process"]["file"]["path"].is_string())
        .then(|| "actor.process.file.path missing".into())
}

fn status(v: &Value) -> &str {
    v["compliance"]["status"].as_str().unwrap_or("")
}

fn kind(v: &Value) -> &str {
    v["unmapped"]["subject"]["kind"].as_str().unwrap_or("")
}

fn trigger_op(v: &Value) -> &str {
    v["unmapped"]["trigger"]["op"].as_str().unwrap_or("")
}

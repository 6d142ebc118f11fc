//! JSON lines: one OCSF 1.3.0 Compliance Finding (class_uid 2003, category_uid 2) per report,
//! one object per line, appended to a file (`--json-out PATH`), a FIFO, or stdout (`-`),
//! whole lines only (see [`super::line`]). The field-by-field mapping, and the ECS
//! equivalents, are in `docs/siem.md`.
//!
//! Choices (documented in docs/siem.md too):
//! - One finding per node + control + subject: `finding_info.uid` hashes the node, the
//!   control and the subject's identity (a kubelet process by boot id, pid and start time,
//!   which no later process with the same pid shares; or the after-restart state).
//! - Lifecycle ([`Lifecycle`]): 1 Create the first time a finding is written, 2 Update for
//!   every later line about it (a drift, its resolution, a resync, a baseline after the
//!   daemon restarted), 3 Close only when its subject is gone (`kubelet_stopped`, or a kubelet
//!   that ended while the daemon was down). The open findings are kept in a state file so a
//!   restart of the daemon does not Create them again.
//! - `status_id` (the finding's): 4 Resolved when compliance passes, 1 New when it fails or
//!   is in error, 99 Other ("Closed") when its subject is gone.
//! - `compliance.status_id`: 1 Pass, 3 Fail, 99 Other with `compliance.status` "Error"
//!   (OCSF's enum is 0 Unknown, 1 Pass, 2 Warning, 3 Fail, 99 Other).
//! - `severity_id`: pass 1 Informational, error 3 Medium, fail 4 High.
//! - `metadata.uid` is unique per line.
//! - Notices (lost kernel events, an output failing or recovering) are OCSF Base Events
//!   (`class_uid` 0) on the same stream: see [`notice_to_ocsf`].

use std::path::PathBuf;

use anyhow::Context;
use serde_json::{Value, json};

use super::{
    Sink, effective_str, join_argv,
    lifecycle::{self, Lifecycle},
    line::{LineWriter, Target},
    sentence, source_str, status_str, subject_kind,
};
use crate::{
    finding::{CONTROL_TITLE, Status, Subject, has_non_utf8_path, path_text},
    report::{Change, DriftReport, Notice, NoticeLevel},
};

pub const OCSF_VERSION: &str = "1.3.0";
pub const CLASS_UID: u32 = 2003;
pub const CATEGORY_UID: u32 = 2;
pub const VENDOR_NAME: &str = "kubelet-drift project";

/// The activity of a report seen alone (as `check` does): Create on first sight, Close when
/// the subject is gone, Update otherwise. The daemon's JSON output decides with its
/// [`Lifecycle`], which knows what it wrote before.
pub fn activity_id(c: Change) -> u32 {
    match c {
        Change::Baseline | Change::KubeletStarted => 1,
        Change::KubeletStopped => 3,
        Change::DriftDetected
        | Change::DriftResolved
        | Change::ErrorAppeared
        | Change::ErrorCleared
        | Change::PendingDriftAppeared
        | Change::PendingDriftCleared
        // The after-restart finding it carries is unchanged: an update, never a new one.
        | Change::ImpostorKubelet => 2,
    }
}

/// Sets the activity (and the fields derived from it) of a finding line.
pub fn set_activity(v: &mut Value, activity: u32) {
    v["activity_id"] = json!(activity);
    v["activity_name"] = json!(activity_name(activity));
    v["type_uid"] = json!(CLASS_UID * 100 + activity);
    v["type_name"] = json!(format!("Compliance Finding: {}", activity_name(activity)));
}

pub fn activity_name(id: u32) -> &'static str {
    match id {
        1 => "Create",
        2 => "Update",
        _ => "Close",
    }
}

/// FNV-1a over the parts (NUL-separated), twice with different bases, shaped like a UUID
/// (version 8: custom). Stable across runs and Rust versions.
pub fn stable_uid(parts: &[&str]) -> String {
    fn fnv(seed: u64, parts: &[&str]) -> u64 {
        let mut h = seed;
        for p in parts {
            for b in p.bytes().chain(std::iter::once(0)) {
                h ^= u64::from(b);
                h = h.wrapping_mul(0x0000_0100_0000_01b3);
            }
        }
        h
    }
    let a = fnv(0xcbf2_9ce4_8422_2325, parts);
    let b = fnv(0x84222325_cbf29ce4, parts);
    let a = (a & !0xf000) | 0x8000; // version 8
    let b = (b & 0x3fff_ffff_ffff_ffff) | 0x8000_0000_0000_0000; // RFC 4122 variant
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xffff,
        b >> 48,
        b & 0xffff_ffff_ffff
    )
}

/// A UUID-shaped id unique to each line written: this process's identity (boot id, pid,
/// start time) and a counter, hashed. OCSF's `metadata.uid` is unique per event; two lines
/// with the same content (two kubelets' pending drift in one evaluation) still differ here.
pub fn event_uid() -> String {
    use std::sync::{
        OnceLock,
        atomic::{AtomicU64, Ordering},
    };
    static SEED: OnceLock<String> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let seed = SEED.get_or_init(|| {
        let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap_or_default();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        format!("{}:{}:{now}", boot.trim(), std::process::id())
    });
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    stable_uid(&["event", seed, &n.to_string()])
}

/// A path as JSON text: [`path_text`] (escaped bytes when not UTF-8, flagged by
/// `unmapped.non_utf8`).
fn lossy(p: &std::path::Path) -> String {
    path_text(p).into_owned()
}

/// `/etc/machine-id`, read once: the device's uid when readable.
fn machine_id() -> Option<&'static str> {
    static ID: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    ID.get_or_init(|| {
        std::fs::read_to_string("/etc/machine-id")
            .ok()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
    })
    .as_deref()
}

/// The finding's uid: node, control, subject identity.
pub fn finding_uid(r: &DriftReport) -> String {
    stable_uid(&[&r.node, &r.finding.control, &r.finding.subject.identity()])
}

/// The kubelet the finding is about, as an OCSF resource.
fn kubelet_resource(r: &DriftReport) -> Value {
    match &r.finding.subject {
        Subject::Running {
            pid, start_time, ..
        } => {
            // The kubelet's own container is known when it is the actor (its baseline, its
            // start); the JSON output fills it from /proc otherwise.
            let container = r
                .trigger
                .actor
                .as_ref()
                .filter(|a| a.pid == *pid)
                .and_then(|a| a.container_id.clone());
            json!({
                "type": "Kubelet Process",
                "name": "kubelet",
                "uid": r.finding.subject.identity(),
                "data": {
                    "pid": pid,
                    "start_time": start_time,
                    "boot_id": crate::finding::boot_id(),
                    "container_id": container,
                },
            })
        }
        Subject::AfterRestart { unit, .. } => json!({
            "type": "Kubelet Service",
            "name": unit.as_deref().and_then(|u| u.file_name()).map(|n| lossy(std::path::Path::new(n))).unwrap_or_else(|| "kubelet".into()),
            "uid": "after_restart",
            "data": {"unit": unit.as_deref().map(lossy)},
        }),
        Subject::Arguments { .. } => json!({
            "type": "Kubelet Arguments",
            "name": "kubelet",
            "uid": "arguments",
        }),
    }
}

/// The remediation of a finding; for a pass, what keeps it passing.
pub fn remediation(r: &DriftReport) -> String {
    let f = &r.finding;
    if !f.remediation.is_empty() {
        return f.remediation.clone();
    }
    match f.status {
        Status::Pass => "Nothing to fix. To keep it passing: leave makeIPTablesUtilChains true or unset in the kubelet's config file and drop-ins (true is the kubelet's default), never pass --make-iptables-util-chains=false, and restart the kubelet only with a configuration that passes `kubelet-drift check`.".into(),
        Status::Fail => "Set makeIPTablesUtilChains: true (or remove the setting and any --make-iptables-util-chains=false flag), then restart the kubelet.".into(),
        Status::Error => "Make the kubelet's configuration readable and valid (the reason says what failed), then run `kubelet-drift check`.".into(),
    }
}

fn subject_json(s: &Subject) -> Value {
    match s {
        Subject::Running {
            pid,
            start_time,
            argv,
            evaluated_late,
        } => json!({"kind": "running", "pid": pid, "start_time": start_time, "argv": argv,
                    "cmd_line": join_argv(argv), "evaluated_late": evaluated_late}),
        Subject::AfterRestart {
            unit,
            argv,
            exec_start_from,
        } => json!({"kind": "after_restart", "argv": argv, "cmd_line": join_argv(argv),
                    "unit": unit.as_deref().map(lossy),
                    "exec_start_from": exec_start_from.as_deref().map(lossy)}),
        Subject::Arguments { argv, cwd } => json!({"kind": "arguments", "argv": argv,
                    "cmd_line": join_argv(argv), "cwd": lossy(cwd)}),
    }
}

/// A path of the trigger (or its actor's executable) is not UTF-8.
fn trigger_non_utf8(r: &DriftReport) -> bool {
    [
        r.trigger.path.as_deref(),
        r.trigger.path2.as_deref(),
        r.trigger.actor.as_ref().and_then(|a| a.exe.as_deref()),
    ]
    .into_iter()
    .flatten()
    .any(|p| matches!(path_text(p), std::borrow::Cow::Owned(_)))
}

/// `actor`, its observables and the container profile.
fn add_actor(v: &mut Value, a: &crate::report::Actor) {
    let mut user = json!({"uid": a.uid.to_string()});
    if let Some(u) = &a.user {
        user["name"] = json!(u);
    }
    let mut process = json!({
        "pid": a.pid,
        "name": a.comm,
        "user": user,
        "parent_process": {"pid": a.ppid},
    });
    let obs = v["observables"].as_array_mut().expect("an array above");
    obs.push(json!({"name": "actor.process.name", "type_id": 9, "type": "Process Name", "value": a.comm}));
    if let Some(u) = &a.user {
        obs.push(json!({"name": "actor.user.name", "type_id": 4, "type": "User Name", "value": u}));
    }
    if let Some(exe) = &a.exe {
        let path = lossy(exe);
        let name = exe
            .file_name()
            .map(|n| lossy(std::path::Path::new(n)))
            .unwrap_or_default();
        obs.push(json!({"name": "actor.process.file.name", "type_id": 7, "type": "File Name", "value": name}));
        process["file"] = json!({"path": path, "name": name, "type_id": 1});
    }
    if let Some(argv) = &a.argv {
        process["cmd_line"] = json!(join_argv(argv));
    }
    if let Some(c) = &a.container_id {
        // The container profile: the container the actor ran in.
        process["container"] = json!({"uid": c});
        v["container"] = json!({"uid": c});
        v["metadata"]["profiles"] = json!(["host", "container"]);
    }
    v["actor"] = json!({"process": process, "user": user});
    v["unmapped"]["actor"] = json!({
        "gid": a.gid,
        "cgroup_id": a.cgroup_id,
        "container_id": a.container_id,
    });
}

/// `unmapped.trigger`: the operation and its paths, absolute or null; a relative path whose
/// directory is not known is in `path_given` / `path2_given` instead (see [`super::placed`]).
fn trigger_json(r: &DriftReport) -> Value {
    let (path, given) = super::placed(r.trigger.path.as_deref());
    let (path2, given2) = super::placed(r.trigger.path2.as_deref());
    let mut t = json!({
        "op": r.trigger.op,
        "path": path.map(lossy),
        "path2": path2.map(lossy),
    });
    if let Some(g) = given {
        t["path_given"] = json!(lossy(g));
    }
    if let Some(g) = given2 {
        t["path2_given"] = json!(lossy(g));
    }
    t
}

/// The OCSF object for a report, with the activity it has seen alone ([`activity_id`]).
pub fn to_ocsf(r: &DriftReport) -> Value {
    let f = &r.finding;
    let activity = activity_id(r.change);
    let time_ms = r
        .time
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    let (severity_id, severity) = match f.status {
        Status::Pass => (1, "Informational"),
        Status::Fail => (4, "High"),
        Status::Error => (3, "Medium"),
    };
    let (status_id, status) = match (r.change, f.status) {
        (Change::KubeletStopped, _) => (99, "Closed"),
        (_, Status::Pass) => (4, "Resolved"),
        _ => (1, "New"),
    };
    let (c_status_id, c_status) = match f.status {
        Status::Pass => (1, "Pass"),
        Status::Fail => (3, "Fail"),
        Status::Error => (99, "Error"),
    };
    let finding_uid = finding_uid(r);

    let subject = subject_json(&f.subject);
    debug_assert_eq!(subject["kind"], subject_kind(&f.subject));

    let mut device = json!({
        "hostname": r.node,
        "name": r.node,
        "type_id": 1,
        "type": "Server",
    });
    if let Some(id) = machine_id() {
        device["uid"] = json!(id);
    }
    let title = format!("CIS {} {}", f.control, CONTROL_TITLE);
    let mut v = json!({
        "class_uid": CLASS_UID,
        "class_name": "Compliance Finding",
        "category_uid": CATEGORY_UID,
        "category_name": "Findings",
        "time": time_ms,
        "timezone_offset": 0,
        "severity_id": severity_id,
        "severity": severity,
        "status_id": status_id,
        "status": status,
        "message": sentence(r),
        "metadata": {
            "version": OCSF_VERSION,
            "uid": event_uid(),
            "profiles": ["host"],
            "product": {
                "name": "kubelet-drift",
                "vendor_name": VENDOR_NAME,
                "version": env!("CARGO_PKG_VERSION"),
            },
        },
        "finding_info": {
            "uid": finding_uid,
            "title": title,
            "desc": f.reason,
            "types": ["CIS Kubernetes Benchmark", "Configuration Drift"],
            "analytic": {
                "uid": f.control,
                "name": title,
                "type_id": 1,
                "type": "Rule",
            },
        },
        "compliance": {
            "control": f.control,
            "standards": [r.benchmark.standard()],
            "requirements": [title],
            "status_id": c_status_id,
            "status": c_status,
            "status_detail": f.reason,
        },
        "device": device,
        "resources": [kubelet_resource(r)],
        "remediation": { "desc": remediation(r) },
        "observables": [
            {"name": "device.hostname", "type_id": 1, "type": "Hostname", "value": r.node},
        ],
        "unmapped": {
            "change": r.change.as_str(),
            "previous_status": r.previous.map(status_str),
            "subject": subject,
            "source": source_str(&f.source),
            "effective": effective_str(f.effective),
            "reason": f.reason,
            "benchmark": r.benchmark.standard(),
            "trigger": trigger_json(r),
        },
    });
    set_activity(&mut v, activity);
    if let Some(d) = &r.distribution {
        v["unmapped"]["distribution"] = json!({"id": d.distribution.id(), "name": d.distribution.name(), "evidence": d.evidence});
    }

    if has_non_utf8_path(f) || trigger_non_utf8(r) {
        v["unmapped"]["non_utf8"] = json!(true);
    }
    if let Some(a) = &r.trigger.actor {
        add_actor(&mut v, a);
    }
    v
}

/// OCSF's Base Event (class_uid 0, category 0 "Uncategorized") for notices: they are not
/// findings, but a JSON-only deployment must learn that events or records were lost.
pub fn notice_to_ocsf(n: &Notice, node: Option<&str>, time: std::time::SystemTime) -> Value {
    let time_ms = time
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    let (severity_id, severity, level) = match n.level {
        NoticeLevel::Info => (1, "Informational", "info"),
        NoticeLevel::Warning => (3, "Medium", "warning"),
        NoticeLevel::Error => (4, "High", "error"),
    };
    let mut v = json!({
        "class_uid": 0,
        "class_name": "Base Event",
        "category_uid": 0,
        "category_name": "Uncategorized",
        "activity_id": 99,
        "activity_name": "Notice",
        "type_uid": 99,
        "type_name": "Base Event: Other",
        "time": time_ms,
        "severity_id": severity_id,
        "severity": severity,
        "message": n.message,
        "metadata": {
            "version": OCSF_VERSION,
            "uid": event_uid(),
            "product": {
                "name": "kubelet-drift",
                "vendor_name": VENDOR_NAME,
                "version": env!("CARGO_PKG_VERSION"),
            },
        },
        "unmapped": { "notice_level": level },
    });
    if let Some(node) = node {
        v["device"] = json!({"hostname": node, "name": node, "type_id": 1, "type": "Server"});
    }
    v
}

pub struct OcsfSink {
    out: LineWriter,
    lifecycle: Lifecycle,
    /// The node name of the last report, for notices (which carry none of their own).
    node: Option<String>,
    /// The last state-file problem told on this stream (each is told once).
    told_state: Option<String>,
}

impl OcsfSink {
    /// `-` is stdout; anything else a file opened for appending (created 0640 if missing) or
    /// a FIFO. A FIFO without a reader is not an error here: its records are refused (and
    /// counted) until a reader opens it. The lifecycle is kept in
    /// [`lifecycle::default_state_path`].
    pub fn open(target: &str) -> anyhow::Result<Self> {
        Self::open_with_state(target, lifecycle::default_state_path())
    }

    /// [`OcsfSink::open`] with the lifecycle state in `state` (`None`: in memory only).
    pub fn open_with_state(target: &str, state: Option<PathBuf>) -> anyhow::Result<Self> {
        use std::os::unix::fs::FileTypeExt;
        let t = if target == "-" {
            Target::Fd(1)
        } else {
            Target::Path(PathBuf::from(target))
        };
        let (out, err) = LineWriter::new(t);
        let fifo = std::fs::metadata(target).is_ok_and(|m| m.file_type().is_fifo());
        match err {
            Some(e) if !fifo => Err(e).context("opening the JSON output"),
            _ => Ok(OcsfSink {
                out,
                lifecycle: Lifecycle::new(state),
                node: None,
                told_state: None,
            }),
        }
    }

    fn write(&mut self, v: &Value) -> anyhow::Result<()> {
        // A finding's line is 3-6 KiB: one allocation, not a doubling from 128 bytes.
        let mut line = Vec::with_capacity(8192);
        serde_json::to_writer(&mut line, v)?;
        line.push(b'\n');
        self.out.write_line(&line)?;
        Ok(())
    }
}

/// The running kubelet's container, from its cgroup, when the report did not name it.
fn fill_container(v: &mut Value) {
    let d = &mut v["resources"][0]["data"];
    if d["container_id"].is_null()
        && let Some(pid) = d["pid"].as_u64()
        && let Ok(cg) = std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
        && let Some(id) = crate::attribution::container_id(&cg)
    {
        d["container_id"] = json!(id);
    }
}

impl Sink for OcsfSink {
    fn report(&mut self, r: &DriftReport) -> anyhow::Result<()> {
        if self.node.as_deref() != Some(&r.node) {
            self.node = Some(r.node.clone());
        }
        let mut v = to_ocsf(r);
        fill_container(&mut v);
        // Shares the lines it keeps: no copy (nor the old line's drop) before the write.
        let before = self.lifecycle.snapshot();
        let (closes, line) = self
            .lifecycle
            .apply_owned(v, r.change == Change::KubeletStopped);
        let written = closes
            .iter()
            .chain(line.as_deref().ok())
            .try_for_each(|l| self.write(l));
        match written {
            Ok(()) => self.lifecycle.save(&r.node),
            // Not written: the next line about it is still its Create (or its Close).
            Err(_) => self.lifecycle.restore(before),
        }
        written?;
        if let Some(p) = self.lifecycle.problem.clone()
            && self.told_state.as_ref() != Some(&p)
        {
            self.told_state = Some(p.clone());
            self.notice(&Notice {
                level: NoticeLevel::Warning,
                message: p,
            })?;
        }
        Ok(())
    }

    fn notice(&mut self, n: &Notice) -> anyhow::Result<()> {
        let v = notice_to_ocsf(n, self.node.as_deref(), std::time::SystemTime::now());
        self.write(&v)
    }

    fn reopen(&mut self) {
        self.out.reopen();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::testutil::{self, ALL_CHANGES, HOSTILE};

    fn at<'a>(v: &'a Value, path: &str) -> &'a Value {
        path.split('.').fold(v, |v, k| &v[k])
    }

    /// Every line passes the test kit's validator, and the fixture's reports (an actor with
    /// its exe, user and command line) fill every other field too.
    fn check_line(line: &str, c: Change) {
        let v: Value = serde_json::from_str(line).unwrap();
        let mut problems = testutil::ocsf_shape_problems(&v);
        problems.extend(testutil::exe_problems(&v));
        assert!(problems.is_empty(), "{c:?}: {problems:?}\n{line}");
        let k = "device.type_id";
        assert!(
            at(&v, k).is_u64(),
            "{k} not an integer in {c:?}: {}",
            at(&v, k)
        );
        let strs = [
            "severity",
            "status",
            "finding_info.desc",
            "actor.process.user.name",
            "actor.process.cmd_line",
            "remediation.desc",
            "unmapped.source",
            "unmapped.effective",
            "unmapped.subject.kind",
            "unmapped.trigger.op",
        ];
        for k in strs {
            assert!(
                at(&v, k).is_string(),
                "{k} not a string in {c:?}: {}",
                at(&v, k)
            );
        }
        assert_eq!(v["unmapped"]["change"], c.as_str());
    }

    #[test]
    fn a_relative_trigger_path_is_given_not_placed() {
        let r = testutil::report(Change::DriftDetected);
        let t = &to_ocsf(&r)["unmapped"]["trigger"];
        assert_eq!(t["path"], "/var/lib/kubelet/config.yaml");
        assert!(t.get("path_given").is_none(), "{t}");
        let mut r = r;
        r.trigger.path = Some("./sedAb12".into());
        r.trigger.path2 = Some("config.yaml".into());
        r.time = std::time::SystemTime::now();
        let v = to_ocsf(&r);
        let t = &v["unmapped"]["trigger"];
        assert!(t["path"].is_null() && t["path2"].is_null(), "{t}");
        assert_eq!(t["path_given"], "./sedAb12");
        assert_eq!(t["path2_given"], "config.yaml");
        let m = v["message"].as_str().unwrap();
        assert!(
            m.contains("rename of ./sedAb12 (as given: a relative path whose directory is no longer known) by sed"),
            "{m}"
        );
        let p = testutil::ocsf_problems(&v);
        assert!(p.is_empty(), "{p:?}");
    }

    #[test]
    fn every_change_emits_a_valid_line_to_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("findings.json");
        std::fs::write(&path, "{\"earlier\":1}\n").unwrap();
        let mut s = OcsfSink::open_with_state(path.to_str().unwrap(), None).unwrap();
        for c in ALL_CHANGES {
            s.report(&testutil::report(c)).unwrap();
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 1 + ALL_CHANGES.len(), "appends");
        for (line, c) in lines[1..].iter().zip(ALL_CHANGES) {
            check_line(line, c);
        }
        let first: Value = serde_json::from_str(lines[1]).unwrap();
        assert_eq!(first["activity_id"], 1);
        assert_eq!(first["compliance"]["control"], "4.2.7");
        assert_eq!(
            first["compliance"]["standards"][0],
            "CIS Kubernetes Benchmark v1.6"
        );
        assert_eq!(
            first["metadata"]["product"]["version"],
            env!("CARGO_PKG_VERSION")
        );
    }

    #[test]
    fn mapping_details() {
        let v = to_ocsf(&testutil::report(Change::DriftDetected));
        assert_eq!(v["activity_id"], 2);
        assert_eq!(v["type_uid"], 200302);
        assert_eq!(v["time"], 1_700_000_000_123u64);
        assert_eq!(v["severity_id"], 4);
        assert_eq!(v["compliance"]["status_id"], 3);
        assert_eq!(v["compliance"]["status"], "Fail");
        assert_eq!(v["actor"]["process"]["name"], "sed");
        assert_eq!(v["actor"]["process"]["file"]["path"], "/usr/bin/sed");
        assert_eq!(v["actor"]["process"]["user"]["uid"], "0");
        assert_eq!(v["actor"]["process"]["parent_process"]["pid"], 98);
        assert_eq!(
            v["unmapped"]["source"],
            "file:/var/lib/kubelet/config.yaml:3"
        );
        assert_eq!(v["unmapped"]["effective"], "false");
        let mut e = testutil::report(Change::ErrorAppeared);
        e.finding.status = Status::Error;
        let v = to_ocsf(&e);
        assert_eq!(v["compliance"]["status_id"], 99);
        assert_eq!(v["compliance"]["status"], "Error");
        // A resolution updates the finding; only a subject gone closes it.
        assert_eq!(
            to_ocsf(&testutil::report(Change::DriftResolved))["activity_id"],
            2
        );
        assert_eq!(
            to_ocsf(&testutil::report(Change::KubeletStopped))["activity_id"],
            3
        );
        // Recommended attributes, and a remediation on every line (for a pass: what keeps
        // it passing).
        assert_eq!(v["timezone_offset"], 0);
        assert_eq!(v["finding_info"]["analytic"]["uid"], "4.2.7");
        assert_eq!(v["finding_info"]["analytic"]["type_id"], 1);
        let mut pass = testutil::report(Change::Baseline);
        pass.finding.remediation.clear();
        let pass = to_ocsf(&pass);
        let rem = pass["remediation"]["desc"].as_str().unwrap();
        assert!(
            rem.starts_with("Nothing to fix. To keep it passing"),
            "{rem}"
        );
        let res = &pass["resources"][0];
        assert_eq!(res["name"], "kubelet");
        assert_eq!(res["type"], "Kubelet Process");
        assert_eq!(res["data"]["pid"], 1234);
        assert_eq!(res["data"]["start_time"], 5678);
        assert!(res["uid"].as_str().unwrap().ends_with(":1234:5678"));
        let pending = to_ocsf(&testutil::report(Change::PendingDriftAppeared));
        assert_eq!(pending["resources"][0]["uid"], "after_restart");
        assert_eq!(pending["resources"][0]["name"], "kubelet.service");
        let obs: Vec<&str> = v["observables"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            obs,
            [
                "device.hostname",
                "actor.process.name",
                "actor.user.name",
                "actor.process.file.name"
            ]
        );
        // Same subject, same finding uid; different event uid.
        let a = to_ocsf(&testutil::report(Change::DriftDetected));
        let b = to_ocsf(&testutil::report(Change::DriftResolved));
        assert_eq!(a["finding_info"]["uid"], b["finding_info"]["uid"]);
        assert_ne!(a["metadata"]["uid"], b["metadata"]["uid"]);
        let uid = a["finding_info"]["uid"].as_str().unwrap();
        assert_eq!(uid.len(), 36);
        assert_eq!(&uid[14..15], "8");
    }

    #[test]
    fn hostile_strings_round_trip_as_json_strings() {
        for c in ALL_CHANGES {
            let r = testutil::hostile_report(c);
            let mut line = serde_json::to_string(&to_ocsf(&r)).unwrap();
            assert!(!line.contains('\n') && !line.contains('\x1b'));
            line.push('\n');
            check_line(line.trim_end(), c);
            let v: Value = serde_json::from_str(&line).unwrap();
            assert_eq!(v["device"]["hostname"], HOSTILE);
            assert_eq!(v["remediation"]["desc"], HOSTILE);
            assert_eq!(v["actor"]["process"]["name"], "\x1b[2Jevil\nX=1");
            // Not UTF-8: the bytes escaped, flagged, nothing lost.
            assert_eq!(
                v["actor"]["process"]["file"]["path"],
                "/etc/\\xff\x1b[31mk\nPRIORITY=0"
            );
            assert_eq!(v["unmapped"]["non_utf8"], true);
            assert_eq!(v["unmapped"]["source"], format!("flag:argv[5]:{HOSTILE}"));
        }
    }

    #[test]
    fn unopenable_file_is_an_error_and_a_missing_file_is_recreated() {
        assert!(OcsfSink::open_with_state("/nonexistent-dir/x.json", None).is_err());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.json");
        let mut s = OcsfSink::open_with_state(path.to_str().unwrap(), None).unwrap();
        s.report(&testutil::report(Change::Baseline)).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count(), 1);
    }

    #[test]
    fn reopen_follows_a_rotated_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.json");
        let mut s = OcsfSink::open_with_state(path.to_str().unwrap(), None).unwrap();
        s.report(&testutil::report(Change::Baseline)).unwrap();
        std::fs::rename(&path, dir.path().join("f.json.1")).unwrap();
        s.reopen();
        s.report(&testutil::report(Change::DriftDetected)).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count(), 1);
        let old = std::fs::read_to_string(dir.path().join("f.json.1")).unwrap();
        assert_eq!(old.lines().count(), 1);
    }

    #[test]
    fn notices_are_base_events_on_the_same_stream() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.json");
        let mut s = OcsfSink::open_with_state(path.to_str().unwrap(), None).unwrap();
        s.report(&testutil::report(Change::Baseline)).unwrap();
        s.notice(&Notice {
            level: NoticeLevel::Warning,
            message: "3 kernel event(s) lost\nX".into(),
        })
        .unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        let n = &lines[1];
        assert_eq!(n["class_uid"], 0);
        assert_eq!(n["category_uid"], 0);
        assert_eq!(n["activity_id"], 99);
        assert_eq!(n["type_uid"], 99);
        assert_eq!(n["severity_id"], 3);
        assert_eq!(n["message"], "3 kernel event(s) lost\nX");
        assert_eq!(n["unmapped"]["notice_level"], "warning");
        assert_eq!(n["device"]["hostname"], "node-1");
        assert!(n["time"].is_u64() && n["metadata"]["uid"].is_string());
        assert_ne!(n["metadata"]["uid"], lines[0]["metadata"]["uid"]);
    }

    #[test]
    fn metadata_uid_is_unique_per_line_even_for_identical_reports() {
        let r = testutil::report(Change::PendingDriftAppeared);
        let a = to_ocsf(&r);
        let b = to_ocsf(&r);
        assert_ne!(a["metadata"]["uid"], b["metadata"]["uid"]);
        assert_eq!(a["finding_info"]["uid"], b["finding_info"]["uid"]);
    }
}

//! JSON lines: one OCSF 1.3.0 Compliance Finding (class_uid 2003, category_uid 2) per report,
//! one object per line, flushed per line, appended to a file (`--json-out PATH`) or written to
//! stdout (`-`). A failed write drops the file handle; the next report reopens it.
//! The field-by-field mapping, and the ECS equivalents, are in `docs/siem.md`.
//!
//! Choices (documented in docs/siem.md too):
//! - `activity_id`: 1 Create for `baseline` and `kubelet_started` (a subject is first seen);
//!   3 Close for `drift_resolved`, `pending_drift_cleared` and `kubelet_stopped`; 2 Update
//!   for every other change.
//! - `status_id` (the finding's): 4 Resolved when compliance passes, 1 New when it fails or
//!   is in error, 99 Other ("Closed") for `kubelet_stopped` (the subject is gone).
//! - `compliance.status_id`: 1 Pass, 3 Fail, 99 Other with `compliance.status` "Error"
//!   (OCSF's enum is 0 Unknown, 1 Pass, 2 Warning, 3 Fail, 99 Other).
//! - `severity_id`: pass 1 Informational, fail 4 High, error 3 Medium.
//! - `finding_info.uid`: stable per node + control + subject (one kubelet pid, or the
//!   after-restart state), so a SIEM can follow one finding through its updates;
//!   `metadata.uid` is unique per event.
//! - Notices (lost kernel events, an output failing or recovering) are OCSF Base Events
//!   (`class_uid` 0) on the same stream: see [`notice_to_ocsf`].

use std::path::PathBuf;

use anyhow::Context;
use serde_json::{Value, json};

use super::{
    Sink, effective_str, join_argv,
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

pub fn activity_id(c: Change) -> u32 {
    match c {
        Change::Baseline | Change::KubeletStarted => 1,
        Change::DriftResolved | Change::PendingDriftCleared | Change::KubeletStopped => 3,
        Change::DriftDetected
        | Change::ErrorAppeared
        | Change::ErrorCleared
        | Change::PendingDriftAppeared => 2,
    }
}

fn activity_name(id: u32) -> &'static str {
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

/// The OCSF object for a report.
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
    let subject_key = f.subject.key();
    let finding_uid = stable_uid(&[&r.node, &f.control, &subject_key]);

    let subject = match &f.subject {
        Subject::Running {
            pid,
            argv,
            evaluated_late,
        } => json!({"kind": "running", "pid": pid, "argv": argv, "cmd_line": join_argv(argv),
                    "evaluated_late": evaluated_late}),
        Subject::AfterRestart {
            unit,
            argv,
            exec_start_from,
        } => json!({"kind": "after_restart", "argv": argv, "cmd_line": join_argv(argv),
                    "unit": unit.as_deref().map(lossy),
                    "exec_start_from": exec_start_from.as_deref().map(lossy)}),
        Subject::Arguments { argv, cwd } => json!({"kind": "arguments", "argv": argv,
                    "cmd_line": join_argv(argv), "cwd": lossy(cwd)}),
    };
    debug_assert_eq!(subject["kind"], subject_kind(&f.subject));

    let mut v = json!({
        "class_uid": CLASS_UID,
        "class_name": "Compliance Finding",
        "category_uid": CATEGORY_UID,
        "category_name": "Findings",
        "activity_id": activity,
        "activity_name": activity_name(activity),
        "type_uid": CLASS_UID * 100 + activity,
        "type_name": format!("Compliance Finding: {}", activity_name(activity)),
        "time": time_ms,
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
            "title": format!("CIS {} {}", f.control, CONTROL_TITLE),
            "desc": f.reason,
            "types": ["CIS Kubernetes Benchmark", "Configuration Drift"],
        },
        "compliance": {
            "control": f.control,
            "standards": [r.benchmark.standard()],
            "requirements": [format!("CIS {} {}", f.control, CONTROL_TITLE)],
            "status_id": c_status_id,
            "status": c_status,
            "status_detail": f.reason,
        },
        "device": {
            "hostname": r.node,
            "name": r.node,
            "type_id": 1,
            "type": "Server",
        },
        "remediation": { "desc": f.remediation },
        "unmapped": {
            "change": r.change.as_str(),
            "previous_status": r.previous.map(status_str),
            "subject": subject,
            "source": source_str(&f.source),
            "effective": effective_str(f.effective),
            "reason": f.reason,
            "benchmark": r.benchmark.standard(),
            "trigger": {
                "op": r.trigger.op,
                "path": r.trigger.path.as_deref().map(lossy),
                "path2": r.trigger.path2.as_deref().map(lossy),
            },
        },
    });

    let trigger_paths = [
        r.trigger.path.as_deref(),
        r.trigger.path2.as_deref(),
        r.trigger.actor.as_ref().and_then(|a| a.exe.as_deref()),
    ];
    if has_non_utf8_path(f)
        || trigger_paths
            .into_iter()
            .flatten()
            .any(|p| matches!(path_text(p), std::borrow::Cow::Owned(_)))
    {
        v["unmapped"]["non_utf8"] = json!(true);
    }
    if let Some(a) = &r.trigger.actor {
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
        if let Some(exe) = &a.exe {
            let path = lossy(exe);
            let name = exe
                .file_name()
                .map(|n| lossy(std::path::Path::new(n)))
                .unwrap_or_default();
            process["file"] = json!({"path": path, "name": name, "type_id": 1});
        }
        if let Some(argv) = &a.argv {
            process["cmd_line"] = json!(join_argv(argv));
        }
        v["actor"] = json!({"process": process, "user": user});
        v["unmapped"]["actor"] = json!({
            "gid": a.gid,
            "cgroup_id": a.cgroup_id,
            "container_id": a.container_id,
        });
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
    /// The node name of the last report, for notices (which carry none of their own).
    node: Option<String>,
}

impl OcsfSink {
    /// `-` is stdout; anything else a file opened for appending (created 0640 if missing) or
    /// a FIFO. A FIFO without a reader is not an error here: its records are refused (and
    /// counted) until a reader opens it.
    pub fn open(target: &str) -> anyhow::Result<Self> {
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
            _ => Ok(OcsfSink { out, node: None }),
        }
    }

    fn write(&mut self, v: &Value) -> anyhow::Result<()> {
        let mut line = serde_json::to_vec(v)?;
        line.push(b'\n');
        self.out.write_line(&line)?;
        Ok(())
    }
}

impl Sink for OcsfSink {
    fn report(&mut self, r: &DriftReport) -> anyhow::Result<()> {
        if self.node.as_deref() != Some(&r.node) {
            self.node = Some(r.node.clone());
        }
        self.write(&to_ocsf(r))
    }

    fn notice(&mut self, n: &Notice) -> anyhow::Result<()> {
        let v = notice_to_ocsf(n, self.node.as_deref(), std::time::SystemTime::now());
        self.write(&v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::testutil::{self, ALL_CHANGES, HOSTILE};

    fn at<'a>(v: &'a Value, path: &str) -> &'a Value {
        path.split('.').fold(v, |v, k| &v[k])
    }

    /// The required fields and their JSON types, checked on every line.
    fn check_line(line: &str, c: Change) {
        let v: Value = serde_json::from_str(line).unwrap();
        let ints = [
            "class_uid",
            "category_uid",
            "activity_id",
            "type_uid",
            "time",
            "severity_id",
            "status_id",
            "compliance.status_id",
            "device.type_id",
            "actor.process.pid",
            "actor.process.parent_process.pid",
        ];
        for k in ints {
            assert!(
                at(&v, k).is_u64(),
                "{k} not an integer in {c:?}: {}",
                at(&v, k)
            );
        }
        let strs = [
            "severity",
            "status",
            "message",
            "metadata.version",
            "metadata.uid",
            "metadata.product.name",
            "metadata.product.vendor_name",
            "metadata.product.version",
            "finding_info.uid",
            "finding_info.title",
            "finding_info.desc",
            "compliance.control",
            "compliance.status",
            "device.hostname",
            "actor.process.name",
            "actor.process.file.path",
            "actor.process.user.uid",
            "actor.process.user.name",
            "actor.process.cmd_line",
            "remediation.desc",
            "unmapped.change",
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
        assert_eq!(v["class_uid"], 2003);
        assert_eq!(v["category_uid"], 2);
        let a = v["activity_id"].as_u64().unwrap();
        assert!((1..=3).contains(&a));
        assert_eq!(v["type_uid"].as_u64().unwrap(), 2003 * 100 + a);
        assert!([1, 3, 99].contains(&v["compliance"]["status_id"].as_u64().unwrap()));
        assert!(
            v["compliance"]["standards"]
                .as_array()
                .unwrap()
                .iter()
                .all(Value::is_string)
        );
        assert!(v["metadata"]["version"].as_str().unwrap().starts_with("1."));
        assert_eq!(v["unmapped"]["change"], c.as_str());
    }

    #[test]
    fn every_change_emits_a_valid_line_to_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("findings.json");
        std::fs::write(&path, "{\"earlier\":1}\n").unwrap();
        let mut s = OcsfSink::open(path.to_str().unwrap()).unwrap();
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
        assert_eq!(
            to_ocsf(&testutil::report(Change::DriftResolved))["activity_id"],
            3
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
        assert!(OcsfSink::open("/nonexistent-dir/x.json").is_err());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.json");
        let mut s = OcsfSink::open(path.to_str().unwrap()).unwrap();
        s.report(&testutil::report(Change::Baseline)).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count(), 1);
    }

    #[test]
    fn notices_are_base_events_on_the_same_stream() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.json");
        let mut s = OcsfSink::open(path.to_str().unwrap()).unwrap();
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

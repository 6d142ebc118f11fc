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

mod schema;

#[cfg(test)]
mod reference;

use std::path::PathBuf;

use anyhow::Context;
use serde_json::{Value, json};

use super::{
    Sink,
    lifecycle::{self, Lifecycle},
    line::{LineWriter, Target},
};
use crate::{
    finding::{Status, Subject, path_text},
    report::{Change, DriftReport, Notice, NoticeLevel},
};
pub use schema::{FindingLine, NoticeLine, Parts};

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

/// The remediation of a finding; for a pass, what keeps it passing.
pub fn remediation(r: &DriftReport) -> String {
    remediation_text(r).to_string()
}

fn remediation_text(r: &DriftReport) -> &str {
    let f = &r.finding;
    if !f.remediation.is_empty() {
        return &f.remediation;
    }
    match f.status {
        Status::Pass => {
            "Nothing to fix. To keep it passing: leave makeIPTablesUtilChains true or unset in the kubelet's config file and drop-ins (true is the kubelet's default), never pass --make-iptables-util-chains=false, and restart the kubelet only with a configuration that passes `kubelet-drift check`."
        }
        Status::Fail => {
            "Set makeIPTablesUtilChains: true (or remove the setting and any --make-iptables-util-chains=false flag), then restart the kubelet."
        }
        Status::Error => {
            "Make the kubelet's configuration readable and valid (the reason says what failed), then run `kubelet-drift check`."
        }
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

/// The OCSF object for a report, with the activity it has seen alone ([`activity_id`]).
/// The JSON output writes the same line from its typed form ([`FindingLine`]) directly.
pub fn to_ocsf(r: &DriftReport) -> Value {
    let uid = finding_uid(r);
    let parts = Parts::new(r, activity_id(r.change), &uid, None);
    // Plain structs of strings, numbers and sequences: nothing in them can fail.
    serde_json::to_value(FindingLine::new(r, &parts)).expect("a finding line is plain JSON")
}

/// OCSF's Base Event (class_uid 0, category 0 "Uncategorized") for notices: they are not
/// findings, but a JSON-only deployment must learn that events or records were lost.
pub fn notice_to_ocsf(n: &Notice, node: Option<&str>, time: std::time::SystemTime) -> Value {
    let uid = event_uid();
    serde_json::to_value(NoticeLine::new(n, node, time, &uid)).expect("a notice line is plain JSON")
}

/// A finding line is 3-6 KiB: one allocation, not a doubling from 128 bytes.
const LINE_CAPACITY: usize = 8192;

/// `v` as one line of JSON text, newline included.
fn line_of(v: &impl serde::Serialize) -> serde_json::Result<Vec<u8>> {
    let mut line = Vec::with_capacity(LINE_CAPACITY);
    serde_json::to_writer(&mut line, v)?;
    line.push(b'\n');
    Ok(line)
}

/// How many kubelet processes' containers the JSON output remembers.
const CONTAINERS_KEPT: usize = 16;

pub struct OcsfSink {
    out: LineWriter,
    lifecycle: Lifecycle,
    /// The node name of the last report, for notices (which carry none of their own).
    node: Option<String>,
    /// The last state-file problem told on this stream (each is told once).
    told_state: Option<String>,
    /// Running kubelets' containers read from /proc, by (pid, start time): a process keeps
    /// its container, and the read is the sink's only file access for a line.
    containers: Vec<((u32, u64), Option<String>)>,
    /// The node whose lines were written since the state file was last saved, and since
    /// when: saved once the queue is empty ([`Sink::idle`]), or after [`SAVE_AT_LEAST`] of
    /// lines that keep coming, so that an evaluation's second line does not wait for the
    /// first one's fsync.
    unsaved: Option<(String, std::time::Instant)>,
}

/// The longest the state file lags the lines written while lines keep coming.
const SAVE_AT_LEAST: std::time::Duration = std::time::Duration::from_secs(1);

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
                containers: Vec::new(),
                unsaved: None,
            }),
        }
    }

    fn write(&mut self, v: &Value) -> anyhow::Result<()> {
        self.out.write_line(&line_of(v)?)?;
        Ok(())
    }

    /// The running kubelet's container, from its cgroup, when the report does not name it
    /// (it does when the kubelet is its actor). Read once per kubelet process; its last line
    /// (`kubelet_stopped`) reads it again, as it is then, and forgets it.
    fn kubelet_container(&mut self, r: &DriftReport) -> Option<String> {
        let Subject::Running {
            pid, start_time, ..
        } = r.finding.subject
        else {
            return None;
        };
        let key = (pid, start_time);
        let kept = self.containers.iter().position(|(k, _)| *k == key);
        let named = r
            .trigger
            .actor
            .as_ref()
            .is_some_and(|a| a.pid == pid && a.container_id.is_some());
        if r.change == Change::KubeletStopped {
            if let Some(i) = kept {
                self.containers.swap_remove(i);
            }
            return if named {
                None
            } else {
                read_container(pid).flatten()
            };
        }
        if named {
            return None;
        }
        if let Some(i) = kept {
            return self.containers[i].1.clone();
        }
        // Not kept when unreadable: read again with the next line.
        let c = read_container(pid)?;
        if self.containers.len() >= CONTAINERS_KEPT {
            self.containers.remove(0);
        }
        self.containers.push((key, c.clone()));
        c
    }
}

impl Drop for OcsfSink {
    /// A sink going away (shutdown, a test) saves what it wrote.
    fn drop(&mut self) {
        let _ = self.save();
    }
}

impl OcsfSink {
    /// Saves the state file for the lines written since the last save, and tells a state-file
    /// problem once.
    fn save(&mut self) -> anyhow::Result<()> {
        let Some((node, _)) = self.unsaved.take() else {
            return Ok(());
        };
        self.lifecycle.save(&node);
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
}

/// The container in `/proc/<pid>/cgroup`; `None` when the file cannot be read.
fn read_container(pid: u32) -> Option<Option<String>> {
    let cg = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    Some(crate::attribution::container_id(&cg))
}

impl Sink for OcsfSink {
    fn report(&mut self, r: &DriftReport) -> anyhow::Result<()> {
        if self.node.as_deref() != Some(&r.node) {
            self.node = Some(r.node.clone());
        }
        let uid = finding_uid(r);
        let container = self.kubelet_container(r);
        let restart_baseline = r.change == Change::Baseline && r.trigger.op.as_str() == "baseline";
        // Shares the lines it keeps: no copy (nor the old line's drop) before the write.
        let before = self.lifecycle.snapshot();
        let applied = self.lifecycle.apply_line(
            &r.node,
            &uid,
            r.change == Change::KubeletStopped,
            restart_baseline,
            |activity| {
                line_of(&FindingLine::new(
                    r,
                    &Parts::new(r, activity, &uid, container.as_deref()),
                ))
            },
        );
        let written = applied
            .map_err(anyhow::Error::from)
            .and_then(|(closes, line)| {
                closes.iter().try_for_each(|l| self.write(l))?;
                match line.as_deref().and_then(lifecycle::Kept::text) {
                    Some(text) => Ok(self.out.write_line(text)?),
                    None => Ok(()),
                }
            });
        match written {
            Ok(()) => {
                if self.unsaved.as_ref().is_some_and(|(n, _)| *n != r.node) {
                    self.save()?;
                }
                let since = self
                    .unsaved
                    .get_or_insert_with(|| (r.node.clone(), std::time::Instant::now()))
                    .1;
                if since.elapsed() >= SAVE_AT_LEAST {
                    self.save()?;
                }
            }
            // Not written: the next line about it is still its Create (or its Close).
            Err(_) => self.lifecycle.restore(before),
        }
        written?;
        Ok(())
    }

    fn idle(&mut self) {
        let _ = self.save();
    }

    fn notice(&mut self, n: &Notice) -> anyhow::Result<()> {
        let uid = event_uid();
        let line = NoticeLine::new(n, self.node.as_deref(), std::time::SystemTime::now(), &uid);
        self.out.write_line(&line_of(&line)?)?;
        Ok(())
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

    /// This test process as a running kubelet (alive, its real start time).
    fn me() -> Subject {
        let pid = std::process::id();
        Subject::Running {
            pid,
            start_time: lifecycle::start_time(u64::from(pid)).unwrap(),
            argv: vec!["kubelet".into()],
            evaluated_late: false,
        }
    }

    fn lines(path: &std::path::Path) -> Vec<String> {
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// The sink's lines, byte for byte, are the reference builder's with the lifecycle's
    /// activity and the kubelet's container from /proc (as the old sink filled it).
    #[test]
    fn the_sink_writes_the_reference_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.json");
        let mut s = OcsfSink::open_with_state(path.to_str().unwrap(), None).unwrap();
        let at = |c: Change, subject: Option<Subject>| {
            let mut r = testutil::report(c);
            if let Some(s) = subject {
                r.finding.subject = s;
            }
            r
        };
        let seq = [
            (at(Change::Baseline, Some(me())), 1),
            (at(Change::DriftDetected, Some(me())), 2),
            (at(Change::PendingDriftAppeared, None), 1),
            (at(Change::DriftResolved, Some(me())), 2),
            (at(Change::PendingDriftCleared, None), 2),
            (at(Change::KubeletStopped, Some(me())), 3),
        ];
        let cgroup = std::fs::read_to_string("/proc/self/cgroup").unwrap();
        let container = crate::attribution::container_id(&cgroup);
        for (r, _) in &seq {
            s.report(r).unwrap();
        }
        let written = lines(&path);
        assert_eq!(written.len(), seq.len());
        for ((r, activity), line) in seq.iter().zip(&written) {
            let got: Value = serde_json::from_str(line).unwrap();
            let mut want = reference::to_ocsf(r);
            set_activity(&mut want, *activity);
            want["metadata"]["uid"] = got["metadata"]["uid"].clone();
            if let Some(d) = want["resources"][0].get_mut("data")
                && d["pid"].is_u64()
                && d["container_id"].is_null()
            {
                d["container_id"] = json!(container);
            }
            assert_eq!(*line, serde_json::to_string(&want).unwrap());
        }
    }

    /// The state file is saved once the queue is empty (or the sink goes away), not after
    /// each line: an evaluation's second line does not wait for the first one's fsync.
    #[test]
    fn the_state_file_is_saved_when_the_queue_is_empty() {
        let dir = tempfile::tempdir().unwrap();
        let (out, state) = (dir.path().join("f.json"), dir.path().join("state.json"));
        let mut s = OcsfSink::open_with_state(out.to_str().unwrap(), Some(state.clone())).unwrap();
        let mut r = testutil::report(Change::DriftDetected);
        r.finding.subject = me();
        s.report(&r).unwrap();
        assert_eq!(lines(&out).len(), 1, "the line is written at once");
        assert!(!state.exists(), "the save waits for the queue to empty");
        s.idle();
        let kept: Value = serde_json::from_slice(&std::fs::read(&state).unwrap()).unwrap();
        assert_eq!(kept["open"].as_object().unwrap().len(), 1);
        // Nothing new: idle again writes nothing.
        std::fs::remove_file(&state).unwrap();
        s.idle();
        assert!(!state.exists());
        // Dropped with a line unsaved: saved.
        s.report(&r).unwrap();
        drop(s);
        assert!(state.exists());
    }

    /// A restart of the daemon: its baseline about a finding the state file holds open is
    /// not written when nothing changed, and is an Update when something did.
    #[test]
    fn a_restart_baseline_through_the_sink_is_written_only_when_something_changed() {
        let dir = tempfile::tempdir().unwrap();
        let (out, state) = (dir.path().join("f.json"), dir.path().join("state.json"));
        let baseline = |status: Status| {
            let mut r = testutil::report(Change::Baseline);
            r.finding.subject = me();
            r.finding.status = status;
            r.trigger = crate::report::Trigger::internal(crate::report::TriggerOp::Baseline);
            r
        };
        let sink = || OcsfSink::open_with_state(out.to_str().unwrap(), Some(state.clone()));
        sink().unwrap().report(&baseline(Status::Pass)).unwrap();
        assert_eq!(lines(&out).len(), 1);
        // The state file holds the line as written.
        let kept: Value = serde_json::from_slice(&std::fs::read(&state).unwrap()).unwrap();
        let first: Value = serde_json::from_str(&lines(&out)[0]).unwrap();
        assert_eq!(
            kept["open"][first["finding_info"]["uid"].as_str().unwrap()],
            first
        );

        let mut s = sink().unwrap();
        s.report(&baseline(Status::Pass)).unwrap();
        assert_eq!(lines(&out).len(), 1, "unchanged: not written again");
        s.report(&baseline(Status::Pass)).unwrap();
        assert_eq!(lines(&out).len(), 2, "within a run every line is written");

        let mut s = sink().unwrap();
        s.report(&baseline(Status::Fail)).unwrap();
        let all = lines(&out);
        assert_eq!(all.len(), 3);
        let v: Value = serde_json::from_str(&all[2]).unwrap();
        assert_eq!(v["activity_id"], 2);
        assert_eq!(v["compliance"]["status"], "Fail");
    }
}

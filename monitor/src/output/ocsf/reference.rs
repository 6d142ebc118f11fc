//! The `serde_json::Value` builder the JSON output used before [`super::schema`]: kept
//! as the reference the typed lines are compared with (`typed_lines_are_the_value_lines`).

use serde_json::{Value, json};

use super::{
    CATEGORY_UID, CLASS_UID, OCSF_VERSION, VENDOR_NAME, activity_id, event_uid, finding_uid,
    machine_id, remediation, set_activity, trigger_non_utf8,
};
use crate::{
    finding::{CONTROL_TITLE, Status, Subject, has_non_utf8_path, path_text},
    output::{effective_str, join_argv, sentence, source_str, status_str, subject_kind},
    report::{Change, DriftReport, Notice, NoticeLevel},
};

/// A path as JSON text: [`path_text`] (escaped bytes when not UTF-8, flagged by
/// `unmapped.non_utf8`).
fn lossy(p: &std::path::Path) -> String {
    path_text(p).into_owned()
}

/// The kubelet the finding is about, as an OCSF resource.
fn kubelet_resource(r: &DriftReport) -> Value {
    match &r.finding.subject {
        Subject::Running {
            pid, start_time, ..
        } => {
            // The JSON output fills it from /proc when the kubelet is not the actor.
            let container = super::schema::own_container(r, *pid).map(str::to_owned);
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
/// directory is not known is in `path_given` / `path2_given` instead (see [`crate::output::placed`]).
fn trigger_json(r: &DriftReport) -> Value {
    let (path, given) = crate::output::placed(r.trigger.path.as_deref());
    let (path2, given2) = crate::output::placed(r.trigger.path2.as_deref());
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
    // The code tables are shared (the mapping's own values are `mapping_details`' to check).
    let super::schema::Codes {
        severity: (severity_id, severity),
        status: (status_id, status),
        compliance: (c_status_id, c_status),
    } = super::schema::Codes::of(r.change, f.status);
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
    let (severity_id, severity, level) = super::schema::notice_codes(n.level);
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

#[cfg(test)]
mod tests {
    use std::{ffi::OsStr, os::unix::ffi::OsStrExt, path::PathBuf};

    use proptest::prelude::*;

    use super::*;
    use crate::{
        decode::FileOp,
        finding::Source,
        kubelet::distro::{Detection, Distribution},
        output::{
            ocsf::{FindingLine, NoticeLine, Parts, line_of},
            testutil::{self, ALL_CHANGES},
        },
        report::{Actor, Trigger, TriggerOp},
    };

    /// The typed line of `r` with `activity` and `container` against the reference's Value
    /// with the same (and the old sink's container fill), byte for byte. The event uid,
    /// unique per line, is taken from the typed line.
    fn same_line(r: &DriftReport, activity: u32, container: Option<&str>) {
        let uid = finding_uid(r);
        let typed = line_of(&FindingLine::new(
            r,
            &Parts::new(r, activity, &uid, container),
        ))
        .unwrap();
        let parsed: Value = serde_json::from_slice(&typed).unwrap();
        let mut v = to_ocsf(r);
        set_activity(&mut v, activity);
        v["metadata"]["uid"] = parsed["metadata"]["uid"].clone();
        // The old sink's fill, for a process resource (its `&mut v[..]["data"]` also added a
        // `"data": null` to an arguments resource, which no daemon report has).
        if let Some(c) = container
            && let Some(d) = v["resources"][0].get_mut("data")
            && d["container_id"].is_null()
            && d["pid"].is_u64()
        {
            d["container_id"] = json!(c);
        }
        let mut want = serde_json::to_vec(&v).unwrap();
        want.push(b'\n');
        assert_eq!(
            String::from_utf8_lossy(&typed),
            String::from_utf8_lossy(&want),
            "{r:#?}"
        );
        // The public Value form is the same object.
        let mut public = crate::output::ocsf::to_ocsf(r);
        let mut v = to_ocsf(r);
        v["metadata"]["uid"] = json!("");
        public["metadata"]["uid"] = json!("");
        assert_eq!(public, v);
    }

    fn bytes_path(b: &[u8]) -> PathBuf {
        PathBuf::from(OsStr::from_bytes(b))
    }

    fn actor(pid: u32) -> Actor {
        Actor {
            pid,
            ppid: 1,
            uid: 1000,
            user: None,
            gid: 1000,
            comm: "vim".into(),
            exe: None,
            cgroup_id: 7,
            container_id: None,
            argv: None,
        }
    }

    /// Reports of every kind the daemon and `check` make.
    fn table() -> Vec<DriftReport> {
        let mut out = Vec::new();
        for c in ALL_CHANGES {
            out.push(testutil::report(c));
            out.push(testutil::hostile_report(c));
            // Internal triggers: no actor.
            for op in [
                TriggerOp::Baseline,
                TriggerOp::Rescan,
                TriggerOp::LostEvents,
                TriggerOp::Unattributed,
                TriggerOp::Resync,
                TriggerOp::Check,
            ] {
                let mut r = testutil::report(c);
                r.trigger = Trigger::internal(op);
                out.push(r);
            }
        }
        let base = testutil::report(Change::DriftDetected);
        let with = |f: &dyn Fn(&mut DriftReport)| {
            let mut r = base.clone();
            f(&mut r);
            r
        };
        out.extend([
            // Actors: bare, with a container, the kubelet itself with and without one.
            with(&|r| r.trigger.actor = Some(actor(55))),
            with(&|r| {
                let mut a = actor(55);
                a.container_id = Some("c0ffee".into());
                a.argv = Some(vec![]);
                a.exe = Some("/".into());
                r.trigger.actor = Some(a);
            }),
            with(&|r| {
                let mut a = actor(1234);
                a.container_id = Some("k8s-kubelet".into());
                r.trigger.op = TriggerOp::Exec;
                r.change = Change::KubeletStarted;
                r.trigger.actor = Some(a);
            }),
            with(&|r| {
                r.trigger.op = TriggerOp::Exit;
                r.change = Change::KubeletStopped;
                r.trigger.actor = Some(actor(1234));
            }),
            // Trigger paths: relative ones (given, not placed), a second path, not UTF-8.
            with(&|r| {
                r.trigger.op = TriggerOp::File(FileOp::Rename);
                r.trigger.path = Some("./sedAb12".into());
                r.trigger.path2 = Some("config.yaml".into());
            }),
            with(&|r| {
                r.trigger.path = Some("/etc/kubernetes/x".into());
                r.trigger.path2 = Some("rel".into());
            }),
            with(&|r| r.trigger.path2 = Some(bytes_path(b"/tmp/\xfe\\x"))),
            with(&|r| {
                r.trigger.op = TriggerOp::File(FileOp::Truncate);
                r.trigger.path = None;
            }),
            // Findings: an error with nothing known, sources of every kind, no remediation.
            with(&|r| {
                r.finding.status = Status::Error;
                r.finding.effective = None;
                r.finding.source = Source::None {
                    detail: "no kubelet".into(),
                };
                r.finding.remediation.clear();
                r.previous = None;
            }),
            with(&|r| {
                r.finding.source = Source::DropIn {
                    path: "/etc/kubernetes/kubelet.conf.d/10.conf".into(),
                    line: None,
                };
                r.finding.remediation.clear();
            }),
            with(&|r| {
                r.finding.status = Status::Pass;
                r.finding.effective = Some(true);
                r.finding.source = Source::Default;
                r.finding.remediation.clear();
                r.finding.reason.clear();
            }),
            with(&|r| {
                r.finding.source = Source::Unit {
                    path: bytes_path(b"/etc/systemd/system/k\xff.service"),
                    line: Some(9),
                }
            }),
            with(&|r| {
                r.distribution = Some(Detection {
                    distribution: Distribution::K3s,
                    evidence: "process k3s (pid 1)".into(),
                })
            }),
            with(&|r| r.benchmark = crate::finding::Benchmark::Managed),
            with(&|r| r.finding.control = "4.2.6 \"quoted\"".into()),
            // Subjects: after-restart without a unit or with one not UTF-8, arguments.
            with(&|r| {
                r.change = Change::PendingDriftAppeared;
                r.finding.subject = testutil::after_restart();
            }),
            with(&|r| {
                r.change = Change::PendingDriftCleared;
                r.finding.subject = Subject::AfterRestart {
                    unit: Some(bytes_path(b"/run/systemd/system/ku\xc3belet.service")),
                    argv: vec!["kubelet".into(), "--a=b c".into(), "it's".into()],
                    exec_start_from: Some(bytes_path(b"/etc/\x80.conf")),
                };
            }),
            with(&|r| {
                r.change = Change::Baseline;
                r.trigger = Trigger::internal(TriggerOp::Check);
                r.finding.subject = Subject::Arguments {
                    argv: vec!["--make-iptables-util-chains=false".into()],
                    cwd: bytes_path(b"/home/\xffx"),
                };
            }),
            with(&|r| {
                r.finding.subject = Subject::Running {
                    pid: 1,
                    start_time: u64::MAX,
                    argv: vec![],
                    evaluated_late: true,
                }
            }),
            with(&|r| r.time = std::time::UNIX_EPOCH - std::time::Duration::from_secs(1)),
        ]);
        out
    }

    #[test]
    fn typed_lines_are_the_value_lines() {
        let table = table();
        assert!(table.len() > 90);
        for r in &table {
            for activity in [1, 2, 3] {
                same_line(r, activity, None);
                same_line(r, activity, Some("3f2a9c"));
            }
        }
    }

    #[test]
    fn typed_notices_are_the_value_notices() {
        let time = std::time::UNIX_EPOCH + std::time::Duration::from_millis(1_700_000_000_001);
        for level in [NoticeLevel::Info, NoticeLevel::Warning, NoticeLevel::Error] {
            for node in [None, Some("node-1"), Some(testutil::HOSTILE)] {
                let n = Notice {
                    level,
                    message: format!("{} lost\n\u{1b}[2J\"", testutil::HOSTILE),
                };
                let typed = line_of(&NoticeLine::new(&n, node, time, "uid-1")).unwrap();
                let mut v = notice_to_ocsf(&n, node, time);
                v["metadata"]["uid"] = json!("uid-1");
                let mut want = serde_json::to_vec(&v).unwrap();
                want.push(b'\n');
                assert_eq!(
                    String::from_utf8_lossy(&typed),
                    String::from_utf8_lossy(&want)
                );
            }
        }
    }

    fn any_text() -> impl Strategy<Value = String> {
        prop_oneof![Just(String::new()), "[a-z/._ -]{1,12}", any::<String>(),]
    }

    fn any_path() -> impl Strategy<Value = PathBuf> {
        prop_oneof![
            "/[a-z/.]{0,16}".prop_map(PathBuf::from),
            "[a-z.]{1,8}(/[a-z]{1,4})?".prop_map(PathBuf::from),
            proptest::collection::vec(any::<u8>(), 1..16).prop_map(|b| {
                let b: Vec<u8> = b.into_iter().filter(|&c| c != 0).collect();
                bytes_path(&b)
            }),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

        /// Any strings and paths, any options: the typed line is the Value line.
        #[test]
        fn typed_lines_are_the_value_lines_for_any_text(
            change in 0..ALL_CHANGES.len(),
            comm in any_text(),
            user in proptest::option::of(any_text()),
            exe in proptest::option::of(any_path()),
            argv in proptest::option::of(proptest::collection::vec(any_text(), 0..4)),
            container in proptest::option::of(any_text()),
            node in any_text(),
            reason in any_text(),
            path in proptest::option::of(any_path()),
            path2 in proptest::option::of(any_path()),
            unit in proptest::option::of(any_path()),
            subject in 0..3u8,
            actor_present in any::<bool>(),
            fill in proptest::option::of("[0-9a-f]{1,16}"),
        ) {
            let mut r = testutil::report(ALL_CHANGES[change]);
            r.node = node;
            r.finding.reason = reason;
            r.trigger.path = path;
            r.trigger.path2 = path2;
            r.finding.subject = match subject {
                0 => r.finding.subject.clone(),
                1 => Subject::AfterRestart {
                    unit,
                    argv: argv.clone().unwrap_or_default(),
                    exec_start_from: None,
                },
                _ => Subject::Arguments {
                    argv: argv.clone().unwrap_or_default(),
                    cwd: unit.unwrap_or_default(),
                },
            };
            r.trigger.actor = actor_present.then(|| Actor {
                comm,
                user,
                exe,
                argv,
                container_id: container,
                ..actor(1234)
            });
            same_line(&r, 2, fill.as_deref());
        }
    }
}

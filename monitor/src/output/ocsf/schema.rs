//! The OCSF lines as typed records that borrow from the report, serialized straight to
//! bytes: no `serde_json::Value` tree is built (and dropped) per line.
//!
//! The bytes are those `serde_json` writes for the equivalent `Value` (see the reference
//! builder in the tests): `Value` objects are sorted maps, so every record below declares its
//! fields in byte order of their JSON names, keys that the `Value` form leaves out are
//! skipped (`Option` with `skip_serializing_if`), and keys it writes as `null` are plain
//! `Option`s. Field order is checked by the tests (a line parsed and written again is the same
//! line) and the content by the differential test against the `Value` builder.

use std::borrow::Cow;
use std::path::Path;

use serde::{Serialize, Serializer};

use super::{
    CATEGORY_UID, CLASS_UID, OCSF_VERSION, VENDOR_NAME, activity_name, machine_id, remediation_text,
};
use crate::{
    finding::{CONTROL_TITLE, Status, Subject, has_non_utf8_path, path_text},
    output::{effective_str, join_argv, placed, sentence, source_str, status_str},
    report::{Actor, Change, DriftReport, Notice, NoticeLevel},
};

/// Serializes a `u32` as a JSON string (OCSF's `user.uid` is a string).
fn as_text<S: Serializer>(n: &u32, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(n)
}

#[derive(Serialize)]
struct Product {
    name: &'static str,
    vendor_name: &'static str,
    version: &'static str,
}

const PRODUCT: Product = Product {
    name: "kubelet-drift",
    vendor_name: VENDOR_NAME,
    version: env!("CARGO_PKG_VERSION"),
};

#[derive(Serialize)]
struct Device<'a> {
    hostname: &'a str,
    name: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    type_id: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    uid: Option<&'a str>,
}

impl<'a> Device<'a> {
    fn server(node: &'a str, uid: Option<&'a str>) -> Self {
        Device {
            hostname: node,
            name: node,
            kind: "Server",
            type_id: 1,
            uid,
        }
    }
}

#[derive(Serialize)]
struct Metadata<'a> {
    product: Product,
    profiles: &'static [&'static str],
    uid: &'a str,
    version: &'static str,
}

#[derive(Serialize)]
struct Analytic<'a> {
    name: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    type_id: u32,
    uid: &'a str,
}

#[derive(Serialize)]
struct FindingInfo<'a> {
    analytic: Analytic<'a>,
    desc: &'a str,
    title: &'a str,
    types: [&'static str; 2],
    uid: &'a str,
}

#[derive(Serialize)]
struct Compliance<'a> {
    control: &'a str,
    requirements: [&'a str; 1],
    standards: [&'static str; 1],
    status: &'static str,
    status_detail: &'a str,
    status_id: u32,
}

#[derive(Serialize)]
struct Desc<'a> {
    desc: &'a str,
}

#[derive(Serialize)]
struct Uid<'a> {
    uid: &'a str,
}

#[derive(Serialize)]
struct Observable<'a> {
    name: &'static str,
    #[serde(rename = "type")]
    kind: &'static str,
    type_id: u32,
    value: Cow<'a, str>,
}

#[derive(Serialize)]
#[serde(untagged)]
enum ResourceData<'a> {
    Process {
        boot_id: &'static str,
        container_id: Option<&'a str>,
        pid: u32,
        start_time: u64,
    },
    Service {
        unit: Option<Cow<'a, str>>,
    },
}

#[derive(Serialize)]
struct Resource<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<ResourceData<'a>>,
    name: Cow<'a, str>,
    #[serde(rename = "type")]
    kind: &'static str,
    uid: Cow<'a, str>,
}

#[derive(Serialize)]
struct FileObj<'a> {
    name: Cow<'a, str>,
    path: Cow<'a, str>,
    type_id: u32,
}

#[derive(Serialize)]
struct Pid {
    pid: u32,
}

#[derive(Serialize)]
struct User<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    #[serde(serialize_with = "as_text")]
    uid: u32,
}

#[derive(Serialize)]
struct Process<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    cmd_line: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    container: Option<Uid<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    file: Option<FileObj<'a>>,
    name: &'a str,
    parent_process: Pid,
    pid: u32,
    user: User<'a>,
}

#[derive(Serialize)]
struct ActorObj<'a> {
    process: Process<'a>,
    user: User<'a>,
}

#[derive(Serialize)]
struct UnmappedActor<'a> {
    cgroup_id: u64,
    container_id: Option<&'a str>,
    gid: u32,
}

#[derive(Serialize)]
struct Distribution<'a> {
    evidence: &'a str,
    id: &'static str,
    name: &'static str,
}

#[derive(Serialize)]
#[serde(untagged)]
enum SubjectObj<'a> {
    Running {
        argv: &'a [String],
        cmd_line: String,
        evaluated_late: bool,
        kind: &'static str,
        pid: u32,
        start_time: u64,
    },
    AfterRestart {
        argv: &'a [String],
        cmd_line: String,
        exec_start_from: Option<Cow<'a, str>>,
        kind: &'static str,
        unit: Option<Cow<'a, str>>,
    },
    Arguments {
        argv: &'a [String],
        cmd_line: String,
        cwd: Cow<'a, str>,
        kind: &'static str,
    },
}

#[derive(Serialize)]
struct TriggerObj<'a> {
    op: &'static str,
    path: Option<Cow<'a, str>>,
    path2: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    path2_given: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    path_given: Option<Cow<'a, str>>,
}

#[derive(Serialize)]
struct Unmapped<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    actor: Option<UnmappedActor<'a>>,
    benchmark: &'static str,
    change: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    distribution: Option<Distribution<'a>>,
    effective: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    non_utf8: Option<bool>,
    previous_status: Option<&'static str>,
    reason: &'a str,
    source: String,
    subject: SubjectObj<'a>,
    trigger: TriggerObj<'a>,
}

/// A Compliance Finding line (class 2003).
#[derive(Serialize)]
pub struct FindingLine<'a> {
    activity_id: u32,
    activity_name: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    actor: Option<ActorObj<'a>>,
    category_name: &'static str,
    category_uid: u32,
    class_name: &'static str,
    class_uid: u32,
    compliance: Compliance<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    container: Option<Uid<'a>>,
    device: Device<'a>,
    finding_info: FindingInfo<'a>,
    message: String,
    metadata: Metadata<'a>,
    observables: Vec<Observable<'a>>,
    remediation: Desc<'a>,
    resources: [Resource<'a>; 1],
    severity: &'static str,
    severity_id: u32,
    status: &'static str,
    status_id: u32,
    time: u64,
    timezone_offset: u32,
    type_name: &'static str,
    type_uid: u32,
    unmapped: Unmapped<'a>,
}

/// What a finding line borrows besides its report: the strings made once per line, and
/// the parts the sink decides.
pub struct Parts<'p> {
    /// `finding_info.uid` ([`super::finding_uid`]).
    finding_uid: &'p str,
    /// `metadata.uid` ([`super::event_uid`]): a new one for every line.
    event_uid: String,
    activity: u32,
    /// The running kubelet's container when the report does not name it (the JSON sink
    /// reads it from /proc).
    kubelet_container: Option<&'p str>,
    title: String,
    identity: Option<String>,
}

impl<'p> Parts<'p> {
    /// The parts of `r`'s line with `activity`, its finding uid (the sink has it already),
    /// and the running kubelet's container when known otherwise.
    pub fn new(
        r: &DriftReport,
        activity: u32,
        finding_uid: &'p str,
        kubelet_container: Option<&'p str>,
    ) -> Parts<'p> {
        let f = &r.finding;
        Parts {
            finding_uid,
            event_uid: super::event_uid(),
            activity,
            kubelet_container,
            title: format!("CIS {} {}", f.control, CONTROL_TITLE),
            identity: match f.subject {
                Subject::Running { .. } => Some(f.subject.identity()),
                _ => None,
            },
        }
    }
}

fn ms(t: std::time::SystemTime) -> u64 {
    t.duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn text(p: &Path) -> Cow<'_, str> {
    path_text(p)
}

fn file_name(p: &Path) -> Option<Cow<'_, str>> {
    p.file_name().map(|n| text(Path::new(n)))
}

fn type_name(activity: u32) -> &'static str {
    match activity_name(activity) {
        "Create" => "Compliance Finding: Create",
        "Update" => "Compliance Finding: Update",
        _ => "Compliance Finding: Close",
    }
}

/// A finding's OCSF codes, (id, name) each: its severity, its status (the finding's
/// lifecycle: Closed once the kubelet stopped) and its compliance status.
pub(super) struct Codes {
    pub severity: (u32, &'static str),
    pub status: (u32, &'static str),
    pub compliance: (u32, &'static str),
}

impl Codes {
    pub fn of(change: Change, status: Status) -> Codes {
        Codes {
            severity: match status {
                Status::Pass => (1, "Informational"),
                Status::Fail => (4, "High"),
                Status::Error => (3, "Medium"),
            },
            status: match (change, status) {
                (Change::KubeletStopped, _) => (99, "Closed"),
                (_, Status::Pass) => (4, "Resolved"),
                _ => (1, "New"),
            },
            compliance: match status {
                Status::Pass => (1, "Pass"),
                Status::Fail => (3, "Fail"),
                Status::Error => (99, "Error"),
            },
        }
    }
}

/// A notice's severity (id, name) and level word.
pub(super) fn notice_codes(level: NoticeLevel) -> (u32, &'static str, &'static str) {
    match level {
        NoticeLevel::Info => (1, "Informational", "info"),
        NoticeLevel::Warning => (3, "Medium", "warning"),
        NoticeLevel::Error => (4, "High", "error"),
    }
}

impl<'a> FindingLine<'a> {
    /// The line of `r`; `parts` holds what it borrows besides the report.
    pub fn new(r: &'a DriftReport, parts: &'a Parts<'a>) -> FindingLine<'a> {
        let f = &r.finding;
        let activity = parts.activity;
        let Codes {
            severity: (severity_id, severity),
            status: (status_id, status),
            compliance: (c_status_id, c_status),
        } = Codes::of(r.change, f.status);
        let a = r.trigger.actor.as_ref();
        let container = a.and_then(|a| a.container_id.as_deref());
        let title = parts.title.as_str();
        FindingLine {
            activity_id: activity,
            activity_name: activity_name(activity),
            actor: a.map(actor),
            category_name: "Findings",
            category_uid: CATEGORY_UID,
            class_name: "Compliance Finding",
            class_uid: CLASS_UID,
            compliance: Compliance {
                control: &f.control,
                requirements: [title],
                standards: [r.benchmark.standard()],
                status: c_status,
                status_detail: &f.reason,
                status_id: c_status_id,
            },
            container: container.map(|uid| Uid { uid }),
            device: Device::server(&r.node, machine_id()),
            finding_info: FindingInfo {
                analytic: Analytic {
                    name: title,
                    kind: "Rule",
                    type_id: 1,
                    uid: &f.control,
                },
                desc: &f.reason,
                title,
                types: ["CIS Kubernetes Benchmark", "Configuration Drift"],
                uid: parts.finding_uid,
            },
            message: sentence(r),
            metadata: Metadata {
                product: PRODUCT,
                profiles: if container.is_some() {
                    &["host", "container"]
                } else {
                    &["host"]
                },
                uid: &parts.event_uid,
                version: OCSF_VERSION,
            },
            observables: observables(r),
            remediation: Desc {
                desc: remediation_text(r),
            },
            resources: [resource(r, parts)],
            severity,
            severity_id,
            status,
            status_id,
            time: ms(r.time),
            timezone_offset: 0,
            type_name: type_name(activity),
            type_uid: CLASS_UID * 100 + activity,
            unmapped: unmapped(r),
        }
    }
}

fn observables(r: &DriftReport) -> Vec<Observable<'_>> {
    let mut obs = Vec::with_capacity(4);
    obs.push(Observable {
        name: "device.hostname",
        kind: "Hostname",
        type_id: 1,
        value: Cow::Borrowed(&r.node),
    });
    if let Some(a) = &r.trigger.actor {
        obs.push(Observable {
            name: "actor.process.name",
            kind: "Process Name",
            type_id: 9,
            value: Cow::Borrowed(&a.comm),
        });
        if let Some(u) = &a.user {
            obs.push(Observable {
                name: "actor.user.name",
                kind: "User Name",
                type_id: 4,
                value: Cow::Borrowed(u),
            });
        }
        if let Some(exe) = &a.exe {
            obs.push(Observable {
                name: "actor.process.file.name",
                kind: "File Name",
                type_id: 7,
                value: file_name(exe).unwrap_or_default(),
            });
        }
    }
    obs
}

/// The running kubelet's container, when the kubelet is the report's actor (its baseline,
/// its start): known without reading /proc.
pub(super) fn own_container(r: &DriftReport, pid: u32) -> Option<&str> {
    r.trigger
        .actor
        .as_ref()
        .filter(|a| a.pid == pid)
        .and_then(|a| a.container_id.as_deref())
}

/// The kubelet the finding is about, as an OCSF resource.
fn resource<'a>(r: &'a DriftReport, parts: &'a Parts<'a>) -> Resource<'a> {
    match &r.finding.subject {
        Subject::Running {
            pid, start_time, ..
        } => {
            // The JSON sink fills it from /proc when the kubelet is not the actor.
            let container = own_container(r, *pid).or(parts.kubelet_container);
            Resource {
                data: Some(ResourceData::Process {
                    boot_id: crate::finding::boot_id(),
                    container_id: container,
                    pid: *pid,
                    start_time: *start_time,
                }),
                name: Cow::Borrowed("kubelet"),
                kind: "Kubelet Process",
                uid: Cow::Borrowed(parts.identity.as_deref().unwrap_or_default()),
            }
        }
        Subject::AfterRestart { unit, .. } => Resource {
            data: Some(ResourceData::Service {
                unit: unit.as_deref().map(text),
            }),
            name: unit
                .as_deref()
                .and_then(file_name)
                .unwrap_or(Cow::Borrowed("kubelet")),
            kind: "Kubelet Service",
            uid: Cow::Borrowed("after_restart"),
        },
        Subject::Arguments { .. } => Resource {
            data: None,
            name: Cow::Borrowed("kubelet"),
            kind: "Kubelet Arguments",
            uid: Cow::Borrowed("arguments"),
        },
    }
}

fn actor(a: &Actor) -> ActorObj<'_> {
    let user = || User {
        name: a.user.as_deref(),
        uid: a.uid,
    };
    ActorObj {
        process: Process {
            cmd_line: a.argv.as_deref().map(join_argv),
            container: a.container_id.as_deref().map(|uid| Uid { uid }),
            file: a.exe.as_deref().map(|exe| FileObj {
                name: file_name(exe).unwrap_or_default(),
                path: text(exe),
                type_id: 1,
            }),
            name: &a.comm,
            parent_process: Pid { pid: a.ppid },
            pid: a.pid,
            user: user(),
        },
        user: user(),
    }
}

fn subject(s: &Subject) -> SubjectObj<'_> {
    let kind = super::super::subject_kind(s);
    match s {
        Subject::Running {
            pid,
            start_time,
            argv,
            evaluated_late,
        } => SubjectObj::Running {
            argv,
            cmd_line: join_argv(argv),
            evaluated_late: *evaluated_late,
            kind,
            pid: *pid,
            start_time: *start_time,
        },
        Subject::AfterRestart {
            unit,
            argv,
            exec_start_from,
        } => SubjectObj::AfterRestart {
            argv,
            cmd_line: join_argv(argv),
            exec_start_from: exec_start_from.as_deref().map(text),
            kind,
            unit: unit.as_deref().map(text),
        },
        Subject::Arguments { argv, cwd } => SubjectObj::Arguments {
            argv,
            cmd_line: join_argv(argv),
            cwd: text(cwd),
            kind,
        },
    }
}

fn unmapped(r: &DriftReport) -> Unmapped<'_> {
    let f = &r.finding;
    let (path, given) = placed(r.trigger.path.as_deref());
    let (path2, given2) = placed(r.trigger.path2.as_deref());
    Unmapped {
        actor: r.trigger.actor.as_ref().map(|a| UnmappedActor {
            cgroup_id: a.cgroup_id,
            container_id: a.container_id.as_deref(),
            gid: a.gid,
        }),
        benchmark: r.benchmark.standard(),
        change: r.change.as_str(),
        distribution: r.distribution.as_ref().map(|d| Distribution {
            evidence: &d.evidence,
            id: d.distribution.id(),
            name: d.distribution.name(),
        }),
        effective: effective_str(f.effective),
        non_utf8: (has_non_utf8_path(f) || super::trigger_non_utf8(r)).then_some(true),
        previous_status: r.previous.map(status_str),
        reason: &f.reason,
        source: source_str(&f.source),
        subject: subject(&f.subject),
        trigger: TriggerObj {
            op: r.trigger.op.as_str(),
            path: path.map(text),
            path2: path2.map(text),
            path2_given: given2.map(text),
            path_given: given.map(text),
        },
    }
}

#[derive(Serialize)]
struct NoticeMetadata<'a> {
    product: Product,
    uid: &'a str,
    version: &'static str,
}

#[derive(Serialize)]
struct NoticeUnmapped {
    notice_level: &'static str,
}

/// A notice's line: OCSF's Base Event (class 0).
#[derive(Serialize)]
pub struct NoticeLine<'a> {
    activity_id: u32,
    activity_name: &'static str,
    category_name: &'static str,
    category_uid: u32,
    class_name: &'static str,
    class_uid: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    device: Option<Device<'a>>,
    message: &'a str,
    metadata: NoticeMetadata<'a>,
    severity: &'static str,
    severity_id: u32,
    time: u64,
    type_name: &'static str,
    type_uid: u32,
    unmapped: NoticeUnmapped,
}

impl<'a> NoticeLine<'a> {
    pub fn new(
        n: &'a Notice,
        node: Option<&'a str>,
        time: std::time::SystemTime,
        event_uid: &'a str,
    ) -> NoticeLine<'a> {
        let (severity_id, severity, level) = notice_codes(n.level);
        NoticeLine {
            activity_id: 99,
            activity_name: "Notice",
            category_name: "Uncategorized",
            category_uid: 0,
            class_name: "Base Event",
            class_uid: 0,
            device: node.map(|n| Device::server(n, None)),
            message: &n.message,
            metadata: NoticeMetadata {
                product: PRODUCT,
                uid: event_uid,
                version: OCSF_VERSION,
            },
            severity,
            severity_id,
            time: ms(time),
            type_name: "Base Event: Other",
            type_uid: 99,
            unmapped: NoticeUnmapped {
                notice_level: level,
            },
        }
    }
}

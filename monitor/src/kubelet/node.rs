//! The whole node: every running kubelet, and what the kubelet would run with after a restart.
//!
//! Distribution-aware ([`super::distro`]): the node's distribution is detected (or given), and
//! k3s / RKE2 / MicroK8s nodes are evaluated from their own files; wrappers (`hyperkube
//! kubelet`, `kubenswrapper`) are stripped from any assembled or running argv. What follows
//! describes kubeadm-style nodes (and OpenShift, whose unit is the same after stripping):
//!
//! - Running: each kubelet process, evaluated against its own root (`/proc/<pid>/root`) and
//!   working directory, with the files as they are now (`evaluated_late`).
//! - After restart: `kubelet.service` as systemd would assemble it now, evaluated against the
//!   files as they are now (cwd `/` unless `WorkingDirectory=`). Without that unit, a running
//!   kubelet's systemd unit inside its own root (a kind node, another unit name), else the
//!   running kubelet's own command line. Without either: an error, never a pass.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::discovery::{KubeletProcess, find_kubelets};
use super::distro::version;
use super::distro::{self, Detection, Distribution, HostKind, openshift, rancher_eval};
use super::evaluate::{EvalInput, Evaluation, evaluate, evaluate_versioned};
use super::rootfs::RootFs;
use super::unit::{self, AssembledUnit, UnitError, UnitErrorKind};
use crate::finding::{Benchmark, Finding, Source, Status, Subject};

/// The unit the after-restart truth is read from.
pub const KUBELET_UNIT: &str = "kubelet.service";

/// Every running kubelet (when `live`) and one after-restart finding.
pub fn evaluate_node(
    fs: &RootFs,
    live: bool,
    names: &[String],
    benchmark: Benchmark,
) -> Vec<Finding> {
    evaluate_node_as(fs, live, names, benchmark, None).1
}

/// [`evaluate_node`], with the distribution given (`--distribution`) or detected, and said.
pub fn evaluate_node_as(
    fs: &RootFs,
    live: bool,
    names: &[String],
    benchmark: Benchmark,
    given: Option<Distribution>,
) -> (Detection, Vec<Finding>) {
    let running = if live {
        find_kubelets(names)
    } else {
        Vec::new()
    };
    let mut out: Vec<Finding> = running
        .iter()
        .map(|p| evaluate_process(p, benchmark, true))
        .collect();
    let detection = distro::detect_as(fs, &running, given.or_else(distro::given));
    out.push(after_restart_for(fs, &running, benchmark, &detection));
    (detection, out)
}

fn exe_name(p: &KubeletProcess) -> String {
    match &p.exe {
        Some(e) => e
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        None => p
            .argv
            .first()
            .map(|a| a.rsplit('/').next().unwrap_or(a).to_string())
            .unwrap_or_default(),
    }
}

/// A running kubelet, against its own root and cwd; for k3s and kubelite, the kubelet they
/// embed.
pub fn evaluate_process(p: &KubeletProcess, benchmark: Benchmark, evaluated_late: bool) -> Finding {
    match distro::host_kind(&exe_name(p), &p.argv) {
        Some(HostKind::K3s) => {
            return rancher_eval::running(p, &distro::k3s::FLAVOR, benchmark, evaluated_late);
        }
        Some(HostKind::Kubelite) => return distro::microk8s::running(p, benchmark, evaluated_late),
        _ => {}
    }
    let mut ev = evaluate_own_command_line(p);
    if evaluated_late {
        ev.reason.push_str(
            " (the kubelet was already running: its files were read as they are now, not as it read them at start)",
        );
    }
    for n in &p.notes {
        ev.reason.push_str(&format!(" (note: {n})"));
    }
    ev.into_finding(
        Subject::Running {
            pid: p.pid,
            start_time: p.start_time,
            argv: p.argv.clone(),
            evaluated_late,
        },
        benchmark,
    )
}

/// An argument or environment entry we could not read exactly: never a pass or fail.
fn not_exact(mut ev: Evaluation) -> Evaluation {
    ev.status = Status::Error;
    ev.effective = None;
    ev.reason = format!(
        "an argument or environment entry of the kubelet is not UTF-8 text and cannot be read exactly, so the verdict is unknown (read lossily: {})",
        ev.reason
    );
    ev.remediation =
        "make the kubelet's arguments plain UTF-8 text, then restart the kubelet".into();
    ev
}

pub(crate) fn merge(mut a: Vec<PathBuf>, b: Vec<PathBuf>) -> Vec<PathBuf> {
    use std::os::unix::ffi::OsStrExt;
    // A set, not `a.contains`: a unit with 20k drop-ins has as many inputs. Keyed by bytes:
    // hashing a `Path` goes component by component and cost more than the rest of a config
    // edit's evaluation; these paths are built by joining components (no `//`, `.` or
    // trailing `/`), so their bytes compare as their components do.
    // The set borrows the paths (no copy of each): which of `b` are new is decided first.
    // Few paths (a kubeadm node's ~30 inputs and 3 dirs): comparing each pair costs less
    // than building the set, on every evaluation.
    if a.len().saturating_mul(b.len()) <= 1024 {
        for p in b {
            let bytes = p.as_os_str().as_bytes();
            if !a.iter().any(|q| q.as_os_str().as_bytes() == bytes) {
                a.push(p);
            }
        }
        return a;
    }
    let new: Vec<bool> = {
        let mut seen: std::collections::HashSet<&[u8]> =
            a.iter().map(|p| p.as_os_str().as_bytes()).collect();
        b.iter()
            .map(|p| seen.insert(p.as_os_str().as_bytes()))
            .collect()
    };
    a.extend(b.into_iter().zip(new).filter_map(|(p, n)| n.then_some(p)));
    a
}

/// Evaluates an assembled unit inside `fs`.
fn evaluate_unit(fs: &RootFs, u: AssembledUnit, benchmark: Benchmark) -> Finding {
    // RootDirectory=: the kubelet runs chrooted; its paths resolve there.
    let eval_fs = match &u.root_directory {
        Some(r) => match fs.resolve(r, Path::new("/")) {
            Ok(h) => RootFs::new(h),
            Err(e) => {
                return Finding {
                    control: benchmark.control_id().into(),
                    status: Status::Error,
                    effective: None,
                    subject: after_restart_subject(Some(&u)),
                    source: Source::Unit {
                        path: u.unit_path.clone(),
                        line: None,
                    },
                    reason: format!("RootDirectory= {} cannot be resolved: {e}", r.display()),
                    remediation: "fix the unit's RootDirectory=, then restart the kubelet".into(),
                    inputs: u.inputs,
                    input_dirs: u.input_dirs,
                };
            }
        },
        None => fs.clone(),
    };
    let cwd = u
        .working_directory
        .clone()
        .unwrap_or_else(|| PathBuf::from("/"));
    let stripped = match openshift::strip_wrappers(&u.argv) {
        Ok(s) => s,
        Err(why) => {
            return Finding {
                control: benchmark.control_id().into(),
                status: Status::Error,
                effective: None,
                subject: after_restart_subject(Some(&u)),
                source: Source::Unit {
                    path: u.exec_start_from.clone(),
                    line: Some(u.exec_start_line),
                },
                reason: format!(
                    "the kubelet would not start after a restart: the ExecStart= at {} line {} runs a wrapper: {why}",
                    u.exec_start_from.display(),
                    u.exec_start_line
                ),
                remediation: "make the unit's ExecStart= run the kubelet (directly or through `hyperkube kubelet` / `kubenswrapper /usr/bin/kubelet`), then systemctl daemon-reload".into(),
                inputs: u.inputs,
                input_dirs: u.input_dirs,
            };
        }
    };
    let kv = version::of_program(&eval_fs, &stripped.argv[0]);
    let mut ev = evaluate_versioned(
        &EvalInput {
            fs: &eval_fs,
            argv: &stripped.argv,
            cwd: &cwd,
            env: &u.env,
        },
        kv.as_ref().ok(),
    );
    version::explain_unknown(&mut ev, &kv);
    if let Source::ConfigFile { path, .. } = &ev.source
        && ev.status == Status::Fail
        && let Some(r) = openshift::remediation_for(path)
        && !stripped.wrapper.is_empty()
    {
        ev.remediation = r;
    }
    ev.reason = format!(
        "{} (argv assembled from {} line {} by systemd's rules){}",
        ev.reason,
        u.exec_start_from.display(),
        u.exec_start_line,
        stripped.note()
    );
    let mut subject = after_restart_subject(Some(&u));
    if let Subject::AfterRestart { argv, .. } = &mut subject {
        *argv = stripped.argv.clone();
    }
    let inputs = merge(std::mem::take(&mut ev.inputs), u.inputs);
    let input_dirs = merge(std::mem::take(&mut ev.input_dirs), u.input_dirs);
    let mut f = ev.into_finding(subject, benchmark);
    f.inputs = inputs;
    f.input_dirs = input_dirs;
    f
}

fn after_restart_subject(u: Option<&AssembledUnit>) -> Subject {
    match u {
        Some(u) => Subject::AfterRestart {
            unit: Some(u.unit_path.clone()),
            argv: u.argv.clone(),
            exec_start_from: Some(u.exec_start_from.clone()),
        },
        None => Subject::AfterRestart {
            unit: None,
            argv: Vec::new(),
            exec_start_from: None,
        },
    }
}

pub(crate) fn unit_error_finding(e: UnitError, benchmark: Benchmark) -> Finding {
    let remediation = match e.kind {
        UnitErrorKind::Masked => format!(
            "unmask {KUBELET_UNIT} (systemctl unmask {KUBELET_UNIT}) and make sure it runs the kubelet with --make-iptables-util-chains=true or without the flag"
        ),
        UnitErrorKind::EnvironmentFileMissing => {
            "create the missing EnvironmentFile (or prefix its path with '-'), then restart the kubelet".into()
        }
        UnitErrorKind::MultipleExecStart => {
            "reset ExecStart= with an empty `ExecStart=` line before the new one in the drop-in, then systemctl daemon-reload".into()
        }
        UnitErrorKind::NoExecStart => {
            "give the unit an ExecStart= that runs the kubelet, then systemctl daemon-reload".into()
        }
        _ => "fix the file named in the reason, then systemctl daemon-reload and restart the kubelet".into(),
    };
    let start = match e.kind {
        UnitErrorKind::Unsupported => "the after-restart command line cannot be determined",
        UnitErrorKind::Unreadable => "a unit, drop-in or environment file cannot be read",
        _ => "the kubelet would not start after a restart",
    };
    let unit = e
        .path
        .clone()
        .filter(|p| p.extension().is_some_and(|x| x == "service"));
    Finding {
        control: benchmark.control_id().into(),
        status: Status::Error,
        effective: None,
        subject: Subject::AfterRestart {
            unit,
            argv: Vec::new(),
            exec_start_from: None,
        },
        source: match &e.path {
            Some(p) => Source::Unit {
                path: p.clone(),
                line: e.line,
            },
            None => Source::None {
                detail: e.message.clone(),
            },
        },
        reason: format!("{start}: {e}"),
        remediation,
        inputs: e.inputs,
        input_dirs: e.input_dirs,
    }
}

/// A kubelet's own argv, cwd and environment against the files in its own root, as they are
/// now. An argument that could not be read exactly makes it an error.
fn evaluate_own_command_line(p: &KubeletProcess) -> super::evaluate::Evaluation {
    let fs = RootFs::new(&p.root);
    // An old Go `hyperkube kubelet …` process: the kubelet's argv follows the wrapper.
    let stripped = openshift::strip_wrappers(&p.argv).unwrap_or_else(|_| openshift::Stripped {
        argv: p.argv.clone(),
        wrapper: Vec::new(),
    });
    let kv = version::of_process(&p.root);
    let mut ev = evaluate_versioned(
        &EvalInput {
            fs: &fs,
            argv: &stripped.argv,
            cwd: &p.cwd,
            env: &p.env,
        },
        kv.as_ref().ok(),
    );
    version::explain_unknown(&mut ev, &kv);
    ev.reason.push_str(&stripped.note());
    if p.non_utf8 { not_exact(ev) } else { ev }
}

/// What the kubelet would run with if (re)started now: `kubelet.service`, or the detected
/// distribution's own sources.
pub fn evaluate_after_restart(
    fs: &RootFs,
    running: &[KubeletProcess],
    benchmark: Benchmark,
) -> Finding {
    let detection = distro::detect(fs, running);
    after_restart_for(fs, running, benchmark, &detection)
}

/// The after-restart finding for a node of the given distribution.
pub fn after_restart_for(
    fs: &RootFs,
    running: &[KubeletProcess],
    benchmark: Benchmark,
    detection: &Detection,
) -> Finding {
    after_restart_for_unit(fs, KUBELET_UNIT, running, benchmark, detection)
}

/// [`after_restart_for`], with `unit_name` as the kubelet's unit of a kubeadm-style or
/// OpenShift node (the daemon's `kubelet_unit` setting).
pub fn after_restart_for_unit(
    fs: &RootFs,
    unit_name: &str,
    running: &[KubeletProcess],
    benchmark: Benchmark,
    detection: &Detection,
) -> Finding {
    let mut f = after_restart_of_distribution(fs, unit_name, running, benchmark, detection);
    name_distribution(&mut f, detection);
    f
}

/// An error on a node of another distribution than kubeadm's starts by naming it (and why it
/// was taken for one): the reason and remedy then name that distribution's file, never only a
/// generic "no kubelet.service".
fn name_distribution(f: &mut Finding, d: &Detection) {
    let name = d.distribution.name();
    if f.status == Status::Error
        && d.distribution != Distribution::Plain
        && !f.reason.starts_with(name)
    {
        f.reason = format!("{name} node ({}): {}", d.evidence, f.reason);
    }
}

fn after_restart_of_distribution(
    fs: &RootFs,
    unit_name: &str,
    running: &[KubeletProcess],
    benchmark: Benchmark,
    detection: &Detection,
) -> Finding {
    let rancher = match detection.distribution {
        Distribution::K3s => Some(&distro::k3s::FLAVOR),
        Distribution::Rke2 => Some(&distro::rke2::FLAVOR),
        _ => None,
    };
    if let Some(flavor) = rancher
        && let Some(f) = rancher_eval::after_restart(fs, flavor, running, benchmark)
    {
        return f;
    }
    if detection.distribution == Distribution::Microk8s {
        return distro::microk8s::after_restart(fs, benchmark);
    }
    let mut f = unit_after_restart(fs, unit_name, running, benchmark);
    let generic = matches!(f.source, Source::None { .. }) && f.status == Status::Error;
    match detection.distribution {
        Distribution::Talos if generic => {
            f.reason = format!(
                "Talos node ({}), and no kubelet is running: Talos starts the kubelet in a container from its machine config, which is not on the node's filesystem, so the after-restart flags cannot be read",
                detection.evidence
            );
            f.remediation = format!("look at {}", distro::talos::WHERE);
        }
        Distribution::Openshift if generic => {
            f.reason = format!(
                "OpenShift node ({}), but no kubelet.service was found: the Machine Config Operator renders it to /etc/systemd/system/kubelet.service; {}",
                detection.evidence, f.reason
            );
            f.remediation = "look at /etc/systemd/system/kubelet.service and /etc/kubernetes/kubelet.conf (rendered from the MachineConfig / KubeletConfig resources)".into();
        }
        Distribution::Talos => {
            f.reason = format!(
                "{} (Talos: it restarts the kubelet with the same flags unless the machine config changes; look at {})",
                f.reason,
                distro::talos::WHERE
            );
        }
        _ => {}
    }
    f
}

/// What the kubelet would run with if (re)started now, on this node's distribution (detected
/// from `running` and the files, or given with `--distribution`): `unit_name` is the kubelet's
/// unit on kubeadm-style and OpenShift nodes; k3s, RKE2 and MicroK8s nodes are read from their
/// own units and files. The daemon's after-restart evaluation.
pub fn evaluate_after_restart_of(
    fs: &RootFs,
    unit_name: &str,
    running: &[KubeletProcess],
    benchmark: Benchmark,
) -> Finding {
    let detection = distro::detect(fs, running);
    after_restart_for_unit(fs, unit_name, running, benchmark, &detection)
}

/// What the kubelet would run with if systemd (re)started `unit_name` now (no distribution's
/// own files).
fn unit_after_restart(
    fs: &RootFs,
    unit_name: &str,
    running: &[KubeletProcess],
    benchmark: Benchmark,
) -> Finding {
    let fs = &fs.snapshot(); // one lstat per path for the unit and the config (rootfs)
    let not_found = match unit::assemble(fs, unit_name) {
        Ok(u) => return evaluate_unit(fs, u, benchmark),
        Err(e) if e.kind == UnitErrorKind::NotFound => e,
        Err(e) => return unit_error_finding(e, benchmark),
    };
    // No kubelet.service in this root. A running kubelet may be managed by systemd inside its
    // own root (kind) or by a unit of another name.
    for p in running {
        let Some(name) = &p.systemd_unit else {
            continue;
        };
        let proc_fs = RootFs::new(&p.root);
        match unit::assemble(&proc_fs, name) {
            Ok(u) => return evaluate_unit(&proc_fs, u, benchmark),
            Err(e) if e.kind == UnitErrorKind::NotFound => continue,
            Err(e) => return unit_error_finding(e, benchmark),
        }
    }
    if let Some(p) = running.first() {
        // Not managed by a unit we can read: it restarts with its own command line.
        let mut ev = evaluate_own_command_line(p);
        ev.reason = format!(
            "{} (no {unit_name} found: the command line of the running kubelet pid {} is assumed to be reused on restart{})",
            ev.reason,
            p.pid,
            if running.len() > 1 {
                ", the first of several"
            } else {
                ""
            }
        );
        let inputs = merge(std::mem::take(&mut ev.inputs), not_found.inputs);
        let input_dirs = merge(std::mem::take(&mut ev.input_dirs), not_found.input_dirs);
        let mut f = ev.into_finding(
            Subject::AfterRestart {
                unit: None,
                argv: p.argv.clone(),
                exec_start_from: None,
            },
            benchmark,
        );
        f.inputs = inputs;
        f.input_dirs = input_dirs;
        return f;
    }
    Finding {
        control: benchmark.control_id().into(),
        status: Status::Error,
        effective: None,
        subject: after_restart_subject(None),
        source: Source::None {
            detail: format!(
                "no running kubelet and no {unit_name} in {}",
                fs.root().display()
            ),
        },
        reason: format!(
            "no kubelet is running and no {unit_name} was found under {} ({}): nothing to evaluate",
            fs.root().display(),
            not_found.message
        ),
        remediation: "run the check on a Kubernetes node (or give --root the node's filesystem), or name the kubelet executable with --kubelet-name".into(),
        inputs: not_found.inputs,
        input_dirs: not_found.input_dirs,
    }
}

/// Evaluates arguments given by a person: argv[0] is "kubelet".
pub fn evaluate_arguments(
    fs: &RootFs,
    args: &[String],
    cwd: &Path,
    benchmark: Benchmark,
) -> Finding {
    let argv: Vec<String> = std::iter::once("kubelet".to_string())
        .chain(args.iter().cloned())
        .collect();
    let env = HashMap::new();
    let ev = evaluate(&EvalInput {
        fs,
        argv: &argv,
        cwd,
        env: &env,
    });
    ev.into_finding(
        Subject::Arguments {
            argv,
            cwd: cwd.to_path_buf(),
        },
        benchmark,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::kubelet::rootfs::test_root as node;

    const CFG_FALSE: &str = "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\nmakeIPTablesUtilChains: false\n";
    const CFG_NONE: &str =
        "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n";
    const UNIT: &str = "[Service]\nEnvironmentFile=-/var/lib/kubelet/kubeadm-flags.env\nExecStart=/usr/bin/kubelet --config=config.yaml $KUBELET_KUBEADM_ARGS\nWorkingDirectory=/var/lib/kubelet\n";

    /// A merge keeps `a` as it is and appends each path of `b` not seen yet, once: the same
    /// for few paths (compared pairwise) and many (through a set).
    #[test]
    fn merge_appends_what_is_new_once() {
        let p = |v: &[&str]| v.iter().map(PathBuf::from).collect::<Vec<_>>();
        let a = p(&["/a", "/b", "/a"]);
        let b = p(&["/c", "/b", "/c", "/d"]);
        assert_eq!(merge(a, b), p(&["/a", "/b", "/a", "/c", "/d"]));
        let many = |n: usize, k: usize| (0..n).map(move |i| PathBuf::from(format!("/p{}", i % k)));
        let (a, b): (Vec<_>, Vec<_>) = (many(60, 50).collect(), many(80, 70).collect());
        let mut want = a.clone();
        for x in &b {
            if !want.contains(x) {
                want.push(x.clone());
            }
        }
        assert!(a.len() * b.len() > 1024, "through the set");
        assert_eq!(merge(a, b), want);
    }

    fn process(root: &Path, argv: &[&str], unit: Option<&str>) -> KubeletProcess {
        KubeletProcess {
            pid: 42,
            argv: argv.iter().map(|s| s.to_string()).collect(),
            exe: Some("/usr/bin/kubelet".into()),
            root: root.to_path_buf(),
            cwd: "/var/lib/kubelet".into(),
            env: HashMap::new(),
            start_time: 1,
            systemd_unit: unit.map(str::to_owned),
            non_utf8: false,
            notes: Vec::new(),
        }
    }

    #[test]
    fn after_restart_from_unit_with_working_directory() {
        let (d, fs) = node(&[
            ("/lib/systemd/system/kubelet.service", UNIT),
            ("/var/lib/kubelet/config.yaml", CFG_FALSE),
        ]);
        let f = evaluate_after_restart(&fs, &[], Benchmark::Cis16);
        assert_eq!(f.status, Status::Fail, "{f:?}");
        assert_eq!(f.effective, Some(false));
        assert!(
            matches!(&f.source, Source::ConfigFile { path, .. } if path == Path::new("/var/lib/kubelet/config.yaml"))
        );
        let root = d.path();
        assert!(f.inputs.contains(&root.join("var/lib/kubelet/config.yaml")));
        assert!(
            f.inputs
                .contains(&root.join("var/lib/kubelet/kubeadm-flags.env"))
        );
        assert!(
            f.inputs
                .contains(&root.join("lib/systemd/system/kubelet.service"))
        );
        assert!(
            f.input_dirs
                .contains(&root.join("etc/systemd/system/kubelet.service.d"))
        );
        // the env file's flag wins over the config file
        std::fs::write(
            root.join("var/lib/kubelet/kubeadm-flags.env"),
            "KUBELET_KUBEADM_ARGS=\"--make-iptables-util-chains=true\"\n",
        )
        .unwrap();
        let f = evaluate_after_restart(&fs, &[], Benchmark::Cis17);
        assert_eq!(f.status, Status::Pass, "{f:?}");
        assert_eq!(f.control, "4.2.6");
        assert!(matches!(f.subject, Subject::AfterRestart { ref argv, .. } if argv.len() == 3));
    }

    #[test]
    fn no_unit_uses_running_command_line_or_errors() {
        let (d, fs) = node(&[("/var/lib/kubelet/config.yaml", CFG_NONE)]);
        let p = process(
            d.path(),
            &["/usr/bin/kubelet", "--config=config.yaml"],
            None,
        );
        let f = evaluate_after_restart(&fs, std::slice::from_ref(&p), Benchmark::Cis16);
        assert_eq!(f.status, Status::Pass, "{f:?}");
        assert!(matches!(
            f.subject,
            Subject::AfterRestart { unit: None, .. }
        ));
        assert!(f.reason.contains("pid 42"));
        let f = evaluate_after_restart(&fs, &[], Benchmark::Cis16);
        assert_eq!(f.status, Status::Error);
        assert!(matches!(f.source, Source::None { .. }));
        // non-UTF-8 argument: never a pass
        let mut q = p.clone();
        q.non_utf8 = true;
        assert_eq!(
            evaluate_process(&q, Benchmark::Cis16, true).status,
            Status::Error
        );
        let r = evaluate_process(&p, Benchmark::Cis16, true);
        assert_eq!(r.status, Status::Pass);
        assert!(matches!(
            r.subject,
            Subject::Running {
                pid: 42,
                evaluated_late: true,
                ..
            }
        ));
    }

    #[test]
    fn unit_inside_the_kubelets_own_root() {
        // kind: the host has no kubelet.service, the node container does
        let (host, host_fs) = node(&[]);
        let (kind, _) = node(&[
            ("/etc/systemd/system/kubelet.service", UNIT),
            ("/var/lib/kubelet/config.yaml", CFG_FALSE),
        ]);
        let _ = host;
        let p = process(kind.path(), &["/usr/bin/kubelet"], Some("kubelet.service"));
        let f = evaluate_after_restart(&host_fs, &[p], Benchmark::Cis16);
        assert_eq!(f.status, Status::Fail, "{f:?}");
        assert!(matches!(
            f.subject,
            Subject::AfterRestart { unit: Some(_), .. }
        ));
    }

    #[test]
    fn unit_errors_are_errors() {
        let (_d, fs) = node(&[(
            "/lib/systemd/system/kubelet.service",
            "[Service]\nEnvironmentFile=/etc/eks/kubelet/environment\nExecStart=/usr/bin/kubelet $NODEADM_KUBELET_ARGS\n",
        )]);
        let f = evaluate_after_restart(&fs, &[], Benchmark::Cis16);
        assert_eq!(f.status, Status::Error);
        assert!(matches!(&f.source, Source::Unit { line: Some(2), .. }));
        assert!(
            f.inputs
                .iter()
                .any(|p| p.ends_with("etc/eks/kubelet/environment"))
        );
        let offline = evaluate_node(&fs, false, &[], Benchmark::Managed);
        assert_eq!(offline.len(), 1);
        assert_eq!(offline[0].control, "3.2.6");
    }

    #[test]
    fn live_node_finds_a_running_kubelet() {
        // a copy of sleep named like a kubelet: its argv ("30") is a positional the kubelet
        // refuses. A name of its own, so that other tests' stand-in kubelets are not found.
        let d = tempfile::tempdir().unwrap();
        let exe = d.path().join("kubelet-node-t");
        std::fs::copy("/bin/sleep", &exe).unwrap();
        let mut child = std::process::Command::new(&exe).arg("30").spawn().unwrap();
        let pid = child.id();
        crate::output::testutil::wait_for_exec(pid, &exe);
        let (_e, empty) = node(&[]);
        let found = evaluate_node(
            &empty,
            true,
            &["kubelet-node-t".to_string()],
            Benchmark::Cis16,
        );
        child.kill().unwrap();
        child.wait().unwrap();
        let running = found
            .iter()
            .find(|f| matches!(f.subject, Subject::Running { pid: p, .. } if p == pid))
            .unwrap_or_else(|| panic!("the fake kubelet {pid} is not among {found:#?}"));
        assert_eq!(running.status, Status::Error, "{running:?}");
        // no unit in the (empty) root: the after-restart finding reuses a running command line
        let after = found.last().unwrap();
        assert!(matches!(
            after.subject,
            Subject::AfterRestart { unit: None, .. }
        ));
        assert_ne!(after.status, Status::Pass);
    }

    /// On a node of each distribution, what cannot be evaluated is an error that starts with
    /// the distribution and names the file to look at, never a generic "no kubelet.service".
    #[test]
    fn errors_name_the_distribution_and_its_file() {
        let k3s_unit = "[Service]\nExecStart=/usr/local/bin/k3s server\n";
        // (what, the node's files, the distribution's name, the file the error names)
        type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a str, &'a str);
        let cases: &[Case] = &[
            (
                "k3s, a config file k3s cannot read",
                &[
                    ("/etc/systemd/system/k3s.service", k3s_unit),
                    ("/etc/rancher/k3s/config.yaml", "kubelet-arg: [a\n"),
                ],
                "k3s",
                "/etc/rancher/k3s/config.yaml",
            ),
            (
                "k3s, its env file missing",
                &[(
                    "/etc/systemd/system/k3s.service",
                    "[Service]\nEnvironmentFile=/etc/systemd/system/k3s.service.env\nExecStart=/usr/local/bin/k3s server\n",
                )],
                "k3s",
                "/etc/systemd/system/k3s.service.env",
            ),
            (
                "k3s without its unit",
                &[("/etc/rancher/k3s/config.yaml", "")],
                "k3s",
                "k3s.service",
            ),
            (
                "RKE2 without its unit or a kubelet",
                &[("/etc/rancher/rke2/config.yaml", "")],
                "RKE2",
                "rke2-server.service",
            ),
            (
                "MicroK8s without its args file",
                &[(
                    "/etc/systemd/system/snap.microk8s.daemon-kubelite.service",
                    "[Service]\nExecStart=/usr/bin/snap run microk8s.daemon-kubelite\n",
                )],
                "MicroK8s",
                "/var/snap/microk8s/current/args/kubelet",
            ),
            (
                "OpenShift, node-sizing.env missing",
                &[
                    ("/etc/os-release", "ID=\"rhcos\"\n"),
                    (
                        "/etc/systemd/system/kubelet.service",
                        "[Service]\nEnvironmentFile=/etc/node-sizing.env\nExecStart=/usr/bin/kubenswrapper /usr/bin/kubelet --config=/etc/kubernetes/kubelet.conf\n",
                    ),
                ],
                "OpenShift",
                "/etc/node-sizing.env",
            ),
            (
                "OpenShift without kubelet.service",
                &[("/etc/os-release", "ID=\"rhcos\"\n")],
                "OpenShift",
                "/etc/kubernetes/kubelet.conf",
            ),
            (
                "Talos, no kubelet running",
                &[("/etc/os-release", "ID=talos\n")],
                "Talos",
                "machine config",
            ),
        ];
        for (what, files, name, file) in cases {
            let (_d, fs) = node(files);
            let f = evaluate_after_restart(&fs, &[], Benchmark::Cis16);
            assert_eq!(f.status, Status::Error, "{what}: {f:#?}");
            assert!(f.reason.starts_with(name), "{what}: {}", f.reason);
            assert!(
                f.reason.contains(file) || f.remediation.contains(file),
                "{what}: {file} not named: {} / {}",
                f.reason,
                f.remediation
            );
        }
    }

    /// What the daemon watches covers each distribution's files: before the first read (the
    /// default paths) and after it (the after-restart evaluation's inputs).
    #[test]
    fn each_distributions_files_are_watched() {
        use crate::watched::DEFAULT_PATHS;
        for p in [
            "/etc/rancher/k3s/config.yaml",
            "/etc/rancher/k3s/config.yaml.d",
            "/etc/systemd/system/k3s.service",
            "/etc/systemd/system/k3s.service.env",
            "/etc/systemd/system/k3s-agent.service",
            "/etc/systemd/system/k3s-agent.service.env",
            "/etc/default/k3s",
            "/etc/sysconfig/k3s",
            "/var/lib/rancher/k3s/agent/etc/kubelet.conf.d",
            "/etc/rancher/rke2/config.yaml",
            "/etc/rancher/rke2/config.yaml.d",
            "/usr/local/lib/systemd/system/rke2-server.service",
            "/usr/local/lib/systemd/system/rke2-agent.service",
            "/usr/local/lib/systemd/system/rke2-server.env",
            "/etc/default/rke2-server",
            "/var/lib/rancher/rke2/agent/etc/kubelet.conf.d",
            "/var/snap/microk8s/current/args/kubelet",
            "/var/snap/microk8s/current/args/kubelite",
            "/etc/systemd/system/snap.microk8s.daemon-kubelite.service",
            "/etc/kubernetes/kubelet.conf",
            "/etc/openshift/kubelet.conf.d",
            "/etc/systemd/system/kubelet.service",
        ] {
            assert!(
                DEFAULT_PATHS.contains(&p),
                "{p} is not watched before the first read"
            );
        }
        let k3s_unit = "[Service]\nEnvironmentFile=-/etc/systemd/system/k3s.service.env\nExecStart=/usr/local/bin/k3s server\n";
        let rke2_unit = "[Service]\nEnvironmentFile=-/usr/local/lib/systemd/system/%N.env\nExecStart=/usr/local/bin/rke2 agent\n";
        // (the node's files, inputs and input directories its after-restart finding names)
        type Case<'a> = (&'a [(&'a str, &'a str)], &'a [&'a str], &'a [&'a str]);
        let cases: &[Case] = &[
            (
                &[
                    ("/etc/systemd/system/k3s.service", k3s_unit),
                    ("/etc/rancher/k3s/config.yaml", ""),
                    (
                        "/var/lib/rancher/k3s/agent/etc/kubelet.conf.d/00-k3s-defaults.conf",
                        CFG_NONE,
                    ),
                ],
                &[
                    "/etc/systemd/system/k3s.service",
                    "/etc/systemd/system/k3s.service.env",
                    "/etc/rancher/k3s/config.yaml",
                    "/var/lib/rancher/k3s/agent/etc/kubelet.conf.d/00-k3s-defaults.conf",
                ],
                &[
                    "/etc/rancher/k3s/config.yaml.d",
                    "/var/lib/rancher/k3s/agent/etc/kubelet.conf.d",
                    "/etc/systemd/system/k3s.service.d",
                ],
            ),
            (
                &[
                    (
                        "/usr/local/lib/systemd/system/rke2-agent.service",
                        rke2_unit,
                    ),
                    ("/etc/rancher/rke2/config.yaml", ""),
                ],
                &[
                    "/usr/local/lib/systemd/system/rke2-agent.service",
                    "/usr/local/lib/systemd/system/rke2-agent.env",
                    "/etc/rancher/rke2/config.yaml",
                ],
                &[
                    "/etc/rancher/rke2/config.yaml.d",
                    "/var/lib/rancher/rke2/agent/etc/kubelet.conf.d",
                ],
            ),
            (
                &[
                    (
                        "/etc/systemd/system/snap.microk8s.daemon-kubelite.service",
                        "[Service]\nExecStart=/usr/bin/snap run microk8s.daemon-kubelite\n",
                    ),
                    ("/var/snap/microk8s/current/args/kubelet", "--v=2\n"),
                    (
                        "/var/snap/microk8s/current/args/kubelite",
                        "--kubelet-args-file=$SNAP_DATA/args/kubelet\n",
                    ),
                ],
                &[
                    "/var/snap/microk8s/current/args/kubelet",
                    "/var/snap/microk8s/current/args/kubelite",
                    "/etc/systemd/system/snap.microk8s.daemon-kubelite.service",
                ],
                &[],
            ),
            (
                &[
                    ("/etc/os-release", "ID=\"rhcos\"\n"),
                    (
                        "/etc/systemd/system/kubelet.service",
                        "[Service]\nEnvironmentFile=-/etc/kubernetes/kubelet-env\nExecStart=/usr/bin/kubenswrapper /usr/bin/kubelet --config=/etc/kubernetes/kubelet.conf --config-dir=/etc/openshift/kubelet.conf.d\n",
                    ),
                    ("/etc/kubernetes/kubelet.conf", CFG_NONE),
                    ("/etc/openshift/kubelet.conf.d/10-x.conf", CFG_NONE),
                ],
                &[
                    "/etc/systemd/system/kubelet.service",
                    "/etc/kubernetes/kubelet-env",
                    "/etc/kubernetes/kubelet.conf",
                    "/etc/openshift/kubelet.conf.d/10-x.conf",
                ],
                &[
                    "/etc/openshift/kubelet.conf.d",
                    "/etc/systemd/system/kubelet.service.d",
                ],
            ),
        ];
        for (files, inputs, dirs) in cases {
            let (d, fs) = node(files);
            let f = evaluate_after_restart(&fs, &[], Benchmark::Cis16);
            assert_eq!(f.status, Status::Pass, "{f:#?}");
            let host = |p: &str| d.path().join(p.trim_start_matches('/'));
            for p in *inputs {
                assert!(
                    f.inputs.contains(&host(p)),
                    "{p} not among the inputs {:#?}",
                    f.inputs
                );
            }
            for p in *dirs {
                assert!(
                    f.input_dirs.contains(&host(p)),
                    "{p} not among the input dirs {:#?}",
                    f.input_dirs
                );
            }
        }
    }

    /// A fake procfs entry whose root is a node image: what the daemon reads for a process.
    fn fake_proc(
        proc_root: &Path,
        pid: u32,
        cmdline: &[u8],
        exe: &str,
        env: &[u8],
        unit: &str,
        image: &Path,
    ) {
        use std::os::unix::fs::symlink;
        let d = proc_root.join(pid.to_string());
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("cmdline"), cmdline).unwrap();
        std::fs::write(d.join("environ"), env).unwrap();
        let mut stat = format!("{pid} (x) S");
        for _ in 0..18 {
            stat.push_str(" 0");
        }
        stat.push_str(" 77");
        for _ in 0..30 {
            stat.push_str(" 0");
        }
        std::fs::write(d.join("stat"), stat + "\n").unwrap();
        std::fs::write(d.join("cgroup"), format!("0::/system.slice/{unit}\n")).unwrap();
        symlink("/", d.join("cwd")).unwrap();
        symlink(exe, d.join("exe")).unwrap();
        symlink(image, d.join("root")).unwrap();
    }

    #[test]
    fn running_k3s_and_kubelite_evaluate_their_embedded_kubelet() {
        let (img, _fs) = node(&[
            (
                "/etc/systemd/system/k3s.service",
                "[Service]\nExecStart=/usr/local/bin/k3s server\n",
            ),
            (
                "/etc/rancher/k3s/config.yaml",
                "kubelet-arg: [make-iptables-util-chains=true]\n",
            ),
            (
                "/srv/k3s.yaml",
                "kubelet-arg: [make-iptables-util-chains=false]\n",
            ),
            (
                "/var/snap/microk8s/9/args/kubelet",
                "--v=2\n--make-iptables-util-chains=${FLAG}\n",
            ),
        ]);
        let t = tempfile::tempdir().unwrap();
        let names = super::super::discovery::default_names();
        // k3s with its rewritten title; K3S_CONFIG_FILE in its environment decides the file
        fake_proc(
            t.path(),
            31,
            b"/usr/local/bin/k3s server\0\0\0\0",
            "/var/lib/rancher/k3s/data/x/bin/k3s",
            b"K3S_CONFIG_FILE=/srv/k3s.yaml\0",
            "k3s.service",
            img.path(),
        );
        // kubelite: its args file and its environment (exact: an unset variable is empty)
        fake_proc(
            t.path(),
            32,
            b"/snap/microk8s/9/kubelite\0--kubelet-args-file=/var/snap/microk8s/9/args/kubelet\0",
            "/snap/microk8s/9/kubelite",
            b"SNAP_DATA=/var/snap/microk8s/9\0FLAG=false\0",
            "snap.microk8s.daemon-kubelite.service",
            img.path(),
        );
        let found = super::super::discovery::find_kubelets_in(t.path(), &names);
        assert_eq!(
            found.iter().map(|p| p.pid).collect::<Vec<_>>(),
            vec![31, 32]
        );
        // its start seen: the files now are what it read
        let k3s = evaluate_process(&found[0], Benchmark::Cis16, false);
        assert_eq!(k3s.status, Status::Fail, "{k3s:#?}");
        assert!(k3s.reason.contains("hides its arguments"), "{}", k3s.reason);
        assert!(
            matches!(k3s.source, Source::ConfigFile { ref path, line: Some(1) } if path == Path::new("/srv/k3s.yaml"))
        );
        // found running (start tick 77, just after boot): its files changed since it started,
        // so what its hidden kubelet read is not known: an error, not the files' verdict
        let late = evaluate_process(&found[0], Benchmark::Cis16, true);
        assert_eq!(late.status, Status::Error, "{late:#?}");
        assert!(
            late.reason.contains("changed after k3s started")
                && late.reason.contains("/srv/k3s.yaml"),
            "{}",
            late.reason
        );
        assert!(matches!(
            late.subject,
            Subject::Running {
                pid: 31,
                evaluated_late: true,
                ..
            }
        ));
        let kl = evaluate_process(&found[1], Benchmark::Cis16, false);
        assert_eq!(kl.status, Status::Fail, "{kl:#?}");
        // found running: its args file changed after its start (tick 77): unknown, an error
        let late = evaluate_process(&found[1], Benchmark::Cis16, true);
        assert_eq!(late.status, Status::Error, "{late:#?}");
        assert!(
            late.reason.contains("changed after it started")
                && late.reason.contains("args/kubelet"),
            "{}",
            late.reason
        );
        assert!(matches!(
            kl.source,
            Source::ConfigFile { line: Some(2), .. }
        ));
        // the node is k3s (the running process says so); after a restart: the unit's env has no
        // K3S_CONFIG_FILE, so /etc/rancher/k3s/config.yaml (true) applies
        let det = distro::detect_as(&RootFs::new(img.path()), &found, None);
        assert_eq!(det.distribution, Distribution::K3s);
        let after = after_restart_for(&RootFs::new(img.path()), &found, Benchmark::Cis16, &det);
        assert_eq!(after.status, Status::Pass, "{after:#?}");
        // a k3s process whose root has no k3s unit: an error naming k3s, not a pass
        let (bare, _b) = node(&[]);
        let t2 = tempfile::tempdir().unwrap();
        fake_proc(
            t2.path(),
            33,
            b"/usr/local/bin/k3s agent\0",
            "/usr/local/bin/k3s",
            b"",
            "k3s-agent.service",
            bare.path(),
        );
        let p = super::super::discovery::find_kubelets_in(t2.path(), &names);
        let f = evaluate_process(&p[0], Benchmark::Cis16, true);
        assert_eq!(f.status, Status::Error);
        assert!(f.reason.starts_with("k3s node"), "{}", f.reason);
    }
}

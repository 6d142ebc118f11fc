//! Distributions: how to recognise the node, where the kubelet's effective command line comes
//! from (after a restart and while it runs), which processes are "the kubelet" for exec/exit
//! triggers, and which files feed it. One file per distribution; each names the source it
//! follows.
//!
//! - [`plain`]: a `kubelet` started by `kubelet.service` (kubeadm, kind, EKS, GKE, AKS,
//!   Bottlerocket): the unit assembled by systemd's rules (`super::unit`).
//! - [`openshift`]: the same unit, whose `ExecStart=` runs a wrapper (`hyperkube kubelet`,
//!   `kubenswrapper /usr/bin/kubelet`): the wrapper is stripped as it strips itself.
//! - [`k3s`] and [`rke2`]: the kubelet's flags computed from the distribution's config files
//!   and unit by the rules in [`rancher`] (k3s's `configfilearg` and `GetArgs`, shared by RKE2).
//! - [`microk8s`]: kubelite's args file, read as kubelite reads it.
//! - [`talos`]: a kubelet in a container: its files are read through `/proc/<pid>/root`.
//! - [`version`]: the kubelet's version, read from its executable.
//! - [`started`]: whether the files an embedded kubelet read at its start changed since.
//!
//! Detection looks at running processes first (they are what runs), then at files of the
//! root; `--distribution` (or [`set_override`]) replaces it.

pub mod k3s;
pub mod microk8s;
pub mod openshift;
pub mod plain;
pub mod rancher;
pub mod rancher_eval;
pub mod rke2;
pub mod started;
pub mod talos;
pub mod version;

use std::path::Path;
use std::sync::RwLock;

use super::discovery::KubeletProcess;
use super::rootfs::RootFs;

/// The kinds of node whose kubelet settings live in different places.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Distribution {
    /// A `kubelet` started by `kubelet.service` (kubeadm, kind, EKS, GKE, AKS, Bottlerocket).
    #[value(name = "kubeadm", alias = "plain")]
    #[serde(rename = "kubeadm")]
    Plain,
    /// k3s: the kubelet runs inside the k3s process; flags from /etc/rancher/k3s.
    K3s,
    /// RKE2: `rke2` starts a real kubelet; flags from /etc/rancher/rke2.
    Rke2,
    /// MicroK8s: the kubelet runs inside kubelite; flags from the snap's args file.
    Microk8s,
    /// OpenShift / RHCOS: `kubelet.service` runs the kubelet through `hyperkube` or `kubenswrapper`.
    Openshift,
    /// Talos: the kubelet runs in a container; no unit on the host.
    Talos,
}

impl Distribution {
    /// The `--distribution` value (and the journald/OCSF field's value): "kubeadm", "k3s",
    /// "rke2", "microk8s", "openshift", "talos".
    pub fn id(self) -> &'static str {
        match self {
            Distribution::Plain => "kubeadm",
            Distribution::K3s => "k3s",
            Distribution::Rke2 => "rke2",
            Distribution::Microk8s => "microk8s",
            Distribution::Openshift => "openshift",
            Distribution::Talos => "talos",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Distribution::Plain => "kubeadm-style (kubelet.service)",
            Distribution::K3s => "k3s",
            Distribution::Rke2 => "RKE2",
            Distribution::Microk8s => "MicroK8s",
            Distribution::Openshift => "OpenShift",
            Distribution::Talos => "Talos",
        }
    }
}

/// Which distribution, and why we think so.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Detection {
    pub distribution: Distribution,
    /// What decided: a process, a file, or the override.
    pub evidence: String,
}

impl std::fmt::Display for Detection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.distribution.name(), self.evidence)
    }
}

static OVERRIDE: RwLock<Option<Distribution>> = RwLock::new(None);

/// Replaces detection for every later evaluation in this process (`--distribution`).
pub fn set_override(d: Option<Distribution>) {
    if let Ok(mut g) = OVERRIDE.write() {
        *g = d;
    }
}

/// The distribution given with [`set_override`], if any.
pub fn given() -> Option<Distribution> {
    OVERRIDE.read().ok().and_then(|g| *g)
}

/// Executable names whose exec and exit matter: the kubelet, the processes that host an
/// embedded kubelet (k3s, kubelite), the wrappers that exec it, and RKE2's supervisor, whose
/// restart restarts its kubelet.
pub const PROCESS_NAMES: &[&str] = &[
    "kubelet",
    "k3s",
    "k3s-server",
    "k3s-agent",
    "kubelite",
    "hyperkube",
    "kubenswrapper",
    "rke2",
];

/// What a process found by name is, for the kubelet rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HostKind {
    /// A kubelet process (its own argv; an old Go `hyperkube kubelet` has the wrapper stripped).
    Kubelet,
    /// `k3s server` / `k3s agent`: the kubelet runs in a goroutine; its argv is hidden.
    K3s,
    /// MicroK8s `kubelite`: the kubelet runs in a goroutine, flags from `--kubelet-args-file`.
    Kubelite,
}

/// The words of a process title: k3s rewrites its title into one argument with spaces
/// (`gspt.SetProcTitle(os.Args[0] + " server")`), padded with NULs over the old arguments,
/// which /proc shows as one string followed by empty ones.
pub fn title_words(argv: &[String]) -> Vec<&str> {
    let used = argv
        .iter()
        .rposition(|a| !a.is_empty())
        .map_or(0, |i| i + 1);
    if used == 1 {
        argv[0].split_whitespace().collect()
    } else {
        argv.iter().map(String::as_str).collect()
    }
}

fn base(p: &str) -> &str {
    p.rsplit('/').next().unwrap_or(p)
}

/// What a process whose executable name is `exe_name` is; `None` when it hosts no kubelet
/// (RKE2's supervisor, `k3s kubectl`, a wrapper still running as a shell script).
pub fn host_kind(exe_name: &str, argv: &[String]) -> Option<HostKind> {
    let words = title_words(argv);
    let arg0 = words.first().map(|w| base(w)).unwrap_or("");
    match exe_name {
        "k3s" | "k3s-server" | "k3s-agent" => {
            // k3s is a multi-call binary: kubectl, crictl, ctr, containerd... share its exe.
            let sub = words.get(1).copied().unwrap_or("");
            let is_node = matches!(arg0, "k3s" | "k3s-server" | "k3s-agent")
                && matches!(sub, "server" | "agent");
            is_node.then_some(HostKind::K3s)
        }
        "kubelite" => Some(HostKind::Kubelite),
        "rke2" | "kubenswrapper" => None,
        "hyperkube" => (words.get(1).copied() == Some("kubelet")).then_some(HostKind::Kubelet),
        _ => Some(HostKind::Kubelet),
    }
}

/// Whether `path` (inside the root) exists, symlinks followed inside the root.
pub(crate) fn exists(fs: &RootFs, path: &str) -> bool {
    // The resolution knows: no second `lstat` of each path (detection asks ~80 of them).
    fs.kind(Path::new(path), Path::new("/")).is_some()
}

/// Whether a systemd unit of that name exists in any unit directory.
pub(crate) fn unit_exists(fs: &RootFs, name: &str) -> bool {
    super::unit::UNIT_PATH
        .iter()
        .any(|d| exists(fs, &format!("{d}/{name}")))
}

fn os_release_id(fs: &RootFs) -> Option<String> {
    for p in ["/etc/os-release", "/usr/lib/os-release"] {
        if let Ok(t) = fs.read_text(Path::new(p), Path::new("/")) {
            return super::envfile::parse(&t.text)
                .get("ID")
                .map(|s| s.trim().to_owned());
        }
    }
    None
}

fn det(d: Distribution, evidence: impl Into<String>) -> Detection {
    Detection {
        distribution: d,
        evidence: evidence.into(),
    }
}

/// Which distribution this node (root `fs`, with these running kubelets) is.
pub fn detect(fs: &RootFs, running: &[KubeletProcess]) -> Detection {
    detect_as(fs, running, given())
}

/// [`detect`] for the daemon, keeping what the files say (see [`detect_kept`]).
pub fn detect_keeping(
    fs: &RootFs,
    running: &[KubeletProcess],
    files: &mut Option<Option<Detection>>,
) -> Detection {
    detect_kept(fs, running, given(), files)
}

/// [`detect`], with `given` (from `--distribution`) taking its place when set.
pub fn detect_as(
    fs: &RootFs,
    running: &[KubeletProcess],
    given: Option<Distribution>,
) -> Detection {
    detect_kept(fs, running, given, &mut None)
}

/// [`detect_as`], with what the node's files say kept in `files` (filled when `None`): the
/// daemon keeps it until a path operation, a mount or a rescan, while the processes' part is
/// decided again for every set of running kubelets.
pub fn detect_kept(
    fs: &RootFs,
    running: &[KubeletProcess],
    given: Option<Distribution>,
    files: &mut Option<Option<Detection>>,
) -> Detection {
    if let Some(d) = given {
        return det(d, "given with --distribution");
    }
    for p in running {
        let name = p
            .exe
            .as_deref()
            .and_then(|e| e.file_name())
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        match host_kind(&name, &p.argv) {
            Some(HostKind::K3s) => {
                return det(Distribution::K3s, format!("process {} is k3s", p.pid));
            }
            Some(HostKind::Kubelite) => {
                return det(
                    Distribution::Microk8s,
                    format!("process {} is MicroK8s kubelite", p.pid),
                );
            }
            _ => {}
        }
        if let Some(u) = &p.systemd_unit
            && u.starts_with("rke2-")
        {
            return det(
                Distribution::Rke2,
                format!("kubelet pid {} runs under {u}", p.pid),
            );
        }
    }
    if let Some(d) = files.get_or_insert_with(|| detect_files(fs)) {
        return d.clone();
    }
    det(Distribution::Plain, "no other distribution's files found")
}

fn detect_files(fs: &RootFs) -> Option<Detection> {
    // One snapshot for the whole detection: its ~60 paths share a dozen directories, each
    // `lstat`ed once instead of once per path that goes through it.
    let fs = &fs.snapshot();
    // RKE2 before k3s: both live under /etc/rancher and /var/lib/rancher.
    let rancher = [
        (Distribution::Rke2, &rke2::FLAVOR),
        (Distribution::K3s, &k3s::FLAVOR),
    ];
    for (d, flavor) in &rancher {
        if let Some(u) = flavor.units.iter().find(|u| unit_exists(fs, u)) {
            return Some(det(*d, format!("unit {u} exists")));
        }
    }
    if unit_exists(fs, microk8s::UNIT) {
        return Some(det(
            Distribution::Microk8s,
            format!("unit {} exists", microk8s::UNIT),
        ));
    }
    // Without their units, their files decide only on a node without kubelet.service (a
    // leftover /etc/rancher must not hide a kubeadm node's unit).
    if !unit_exists(fs, plain::UNIT) {
        for (d, flavor) in &rancher {
            if let Some(f) = flavor.marker_files.iter().find(|f| exists(fs, f)) {
                return Some(det(*d, format!("{f} exists")));
            }
        }
        if let Some(f) = microk8s::MARKERS.iter().find(|f| exists(fs, f)) {
            return Some(det(Distribution::Microk8s, format!("{f} exists")));
        }
    }
    if let Some(f) = openshift::MARKERS.iter().find(|f| exists(fs, f)) {
        return Some(det(Distribution::Openshift, format!("{f} exists")));
    }
    match os_release_id(fs).as_deref() {
        Some("talos") => Some(det(Distribution::Talos, "/etc/os-release says ID=talos")),
        Some(id @ ("rhcos" | "scos")) => Some(det(
            Distribution::Openshift,
            format!("/etc/os-release says ID={id}"),
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kubelet::rootfs::test_root;

    fn argv(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn host_kinds() {
        assert_eq!(
            host_kind("k3s", &argv(&["/usr/local/bin/k3s server"])),
            Some(HostKind::K3s)
        );
        assert_eq!(
            host_kind("k3s", &argv(&["/usr/local/bin/k3s", "agent"])),
            Some(HostKind::K3s)
        );
        assert_eq!(host_kind("k3s", &argv(&["kubectl", "get", "pods"])), None);
        assert_eq!(
            host_kind("k3s", &argv(&["/usr/local/bin/k3s", "kubectl"])),
            None
        );
        assert_eq!(host_kind("k3s", &argv(&["containerd", "-c", "x"])), None);
        assert_eq!(
            host_kind("kubelite", &argv(&["/snap/microk8s/1/kubelite"])),
            Some(HostKind::Kubelite)
        );
        assert_eq!(host_kind("rke2", &argv(&["rke2", "server"])), None);
        assert_eq!(
            host_kind("hyperkube", &argv(&["hyperkube", "kubelet", "--v=2"])),
            Some(HostKind::Kubelet)
        );
        assert_eq!(
            host_kind("hyperkube", &argv(&["hyperkube", "kube-apiserver"])),
            None
        );
        assert_eq!(
            host_kind("kubelet", &argv(&["kubelet"])),
            Some(HostKind::Kubelet)
        );
        assert_eq!(
            host_kind("my-kubelet", &argv(&["x"])),
            Some(HostKind::Kubelet)
        );
    }

    /// The distribution a report carries: the baseline's sentence, journald's
    /// KUBELET_DRIFT_DISTRIBUTION, OCSF's unmapped.distribution.
    #[test]
    fn reports_carry_the_distribution() {
        use crate::output::{journald, ocsf, sentence, testutil};
        use crate::report::Change;
        let mut r = testutil::report(Change::Baseline);
        r.time = std::time::SystemTime::now();
        r.distribution = Some(det(Distribution::K3s, "unit k3s.service exists"));
        assert!(
            sentence(&r).contains("on a k3s node (unit k3s.service exists)"),
            "{}",
            sentence(&r)
        );
        let fields = journald::fields(&r);
        assert!(
            fields
                .iter()
                .any(|(k, v)| k == "KUBELET_DRIFT_DISTRIBUTION" && v == "k3s"),
            "{fields:?}"
        );
        let v = ocsf::to_ocsf(&r);
        assert_eq!(v["unmapped"]["distribution"]["id"], "k3s");
        assert_eq!(v["unmapped"]["distribution"]["name"], "k3s");
        assert_eq!(
            v["unmapped"]["distribution"]["evidence"],
            "unit k3s.service exists"
        );
        let p = crate::output::testutil::ocsf_problems(&v);
        assert!(p.is_empty(), "{p:?}");
        // a drift (not the baseline) keeps its sentence; no distribution, no field
        r.change = Change::DriftDetected;
        assert!(!sentence(&r).contains("k3s node"));
        r.distribution = None;
        assert!(
            !journald::fields(&r)
                .iter()
                .any(|(k, _)| k == "KUBELET_DRIFT_DISTRIBUTION")
        );
        assert!(ocsf::to_ocsf(&r)["unmapped"].get("distribution").is_none());
        for d in [
            Distribution::Plain,
            Distribution::K3s,
            Distribution::Rke2,
            Distribution::Microk8s,
            Distribution::Openshift,
            Distribution::Talos,
        ] {
            // the field's value is what --distribution takes
            use clap::ValueEnum;
            assert_eq!(d.to_possible_value().unwrap().get_name(), d.id(), "{d:?}");
        }
    }

    #[test]
    fn detection_from_files() {
        let cases: &[(&[(&str, &str)], Distribution)] = &[
            (&[("/etc/rancher/k3s/config.yaml", "")], Distribution::K3s),
            (
                &[("/etc/systemd/system/k3s-agent.service", "[Service]\n")],
                Distribution::K3s,
            ),
            (
                &[
                    ("/etc/rancher/rke2/config.yaml", ""),
                    ("/etc/rancher/k3s/x", ""),
                ],
                Distribution::Rke2,
            ),
            (
                &[("/usr/local/lib/systemd/system/rke2-server.service", "")],
                Distribution::Rke2,
            ),
            (
                &[("/var/snap/microk8s/current/args/kubelet", "")],
                Distribution::Microk8s,
            ),
            (&[("/usr/bin/kubenswrapper", "")], Distribution::Openshift),
            (&[("/etc/os-release", "ID=talos\n")], Distribution::Talos),
            (
                &[("/etc/os-release", "ID=\"rhcos\"\n")],
                Distribution::Openshift,
            ),
            (
                &[("/lib/systemd/system/kubelet.service", "[Service]\n")],
                Distribution::Plain,
            ),
            // a leftover k3s directory does not hide kubelet.service
            (
                &[
                    ("/lib/systemd/system/kubelet.service", "[Service]\n"),
                    ("/etc/rancher/k3s/config.yaml", ""),
                ],
                Distribution::Plain,
            ),
        ];
        for (files, want) in cases {
            let (_d, fs) = test_root(files);
            assert_eq!(detect(&fs, &[]).distribution, *want, "{files:?}");
        }
    }
}

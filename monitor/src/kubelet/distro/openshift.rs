//! OpenShift / RHCOS: `kubelet.service` (rendered by the Machine Config Operator,
//! openshift/machine-config-operator `templates/*/01-*-kubelet/_base/units/kubelet.service.yaml`)
//! runs the kubelet through a wrapper:
//!
//! - 4.11 and older: `ExecStart=/usr/bin/hyperkube kubelet --config=/etc/kubernetes/kubelet.conf …`.
//!   `hyperkube` (openshift/kubernetes `openshift-hack/images/hyperkube/hyperkube`) is a bash
//!   script: with no argument, `--help` or `help` it prints its usage and exits 0; a first
//!   argument not among `kube-apiserver kube-controller-manager kube-scheduler kubelet` prints
//!   "command not supported" and the usage; otherwise it shifts it and `exec`s that command
//!   (found on `PATH`) with the remaining arguments. Old upstream Go `hyperkube` binaries
//!   dispatched on the same first argument.
//! - 4.12+: `ExecStart=/usr/bin/kubenswrapper /usr/bin/kubelet …`. The wrapper is `kubensenter`
//!   (same directory): it consumes leading `-h`/`--help` (usage, exit 1), `-v`/`--verbose`,
//!   `-q`/`--quiet`, stops at the first other (or empty) argument, and runs
//!   `exec nsenter [--mount=…] "$@"`; nsenter stops at its first non-option, so the command and
//!   its arguments reach `exec` unchanged.
//!
//! The kubelet's settings: `/etc/kubernetes/kubelet.conf` (rendered by the MCO from the
//! `KubeletConfig` custom resources: edits on the node are reverted), env files
//! `/etc/kubernetes/kubelet-env`, `/etc/node-sizing.env`, newer releases also
//! `/etc/openshift/kubelet.conf.d` through `--config-dir`.

use std::path::Path;

/// Files that only an OpenShift / RHCOS node has.
pub const MARKERS: &[&str] = &[
    "/usr/bin/kubenswrapper",
    "/usr/bin/kubensenter",
    "/etc/machine-config-daemon",
    "/etc/mcs-machine-config-content.json",
];

/// The kubelet config file the Machine Config Operator renders.
pub const RENDERED_CONFIG: &str = "/etc/kubernetes/kubelet.conf";

const HYPERKUBE_BINS: &[&str] = &[
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kubelet",
];

/// A wrapper taken off the front of an argv.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stripped {
    /// The kubelet's own argv (argv[0] is the kubelet).
    pub argv: Vec<String>,
    /// The words removed, e.g. `["/usr/bin/kubenswrapper"]` or `["/usr/bin/hyperkube"]`.
    pub wrapper: Vec<String>,
}

impl Stripped {
    /// A clause for the finding's reason, or "" when nothing was stripped.
    pub fn note(&self) -> String {
        if self.wrapper.is_empty() {
            return String::new();
        }
        format!(
            " (the wrapper `{}` was stripped: it execs {} with the arguments that follow, which are evaluated as the kubelet's argv)",
            self.wrapper.join(" "),
            self.argv
                .first()
                .map(String::as_str)
                .unwrap_or("the kubelet")
        )
    }
}

fn base(p: &str) -> &str {
    p.rsplit('/').next().unwrap_or(p)
}

/// Takes `hyperkube kubelet` / `kubenswrapper [opts]` (nested too) off the front of `argv`, as
/// those wrappers do before they exec the kubelet. An argv without a wrapper comes back as is.
/// `Err` says why no kubelet would run.
pub fn strip_wrappers(argv: &[String]) -> Result<Stripped, String> {
    let mut rest: &[String] = argv;
    let mut wrapper: Vec<String> = Vec::new();
    for _ in 0..8 {
        let Some(first) = rest.first() else {
            return Err("the command line is empty".into());
        };
        match base(first) {
            "hyperkube" => {
                let sub = rest.get(1).map(String::as_str);
                match sub {
                    None | Some("--help") | Some("help") => {
                        return Err(format!(
                            "`{first}` without a command prints its usage and exits: no kubelet runs"
                        ));
                    }
                    Some("kubelet") => {
                        wrapper.push(first.clone());
                        // The script execs `kubelet` found on PATH: argv[0] is "kubelet".
                        let mut v = vec!["kubelet".to_string()];
                        v.extend(rest[2..].iter().cloned());
                        return Ok(Stripped { argv: v, wrapper });
                    }
                    Some(other) if HYPERKUBE_BINS.contains(&other) => {
                        return Err(format!("`{first} {other}` runs {other}, not the kubelet"));
                    }
                    Some(other) => {
                        return Err(format!(
                            "`{first} {other}`: hyperkube says \"{other}: command not supported\" and exits: no kubelet runs"
                        ));
                    }
                }
            }
            "kubenswrapper" | "kubensenter" => {
                wrapper.push(first.clone());
                let mut i = 1;
                while let Some(a) = rest.get(i) {
                    match a.as_str() {
                        "-h" | "--help" => {
                            return Err(format!(
                                "`{first} {a}` prints its usage and exits: no kubelet runs"
                            ));
                        }
                        "-v" | "--verbose" | "-q" | "--quiet" => {
                            wrapper.push(a.clone());
                            i += 1;
                        }
                        _ => break,
                    }
                }
                match rest.get(i) {
                    None => {
                        return Err(format!(
                            "`{first}` without a command starts a shell: no kubelet runs"
                        ));
                    }
                    Some(a) if a.is_empty() || a.starts_with('-') => {
                        return Err(format!(
                            "`{first}` passes {a:?} to nsenter as an option, not a command: this is not modelled"
                        ));
                    }
                    Some(_) => rest = &rest[i..],
                }
            }
            _ => {
                return Ok(Stripped {
                    argv: rest.to_vec(),
                    wrapper,
                });
            }
        }
    }
    Err("wrappers nested too deeply".into())
}

/// Whether the evaluated argv still is a kubelet's (after stripping).
pub fn runs_kubelet(argv: &[String]) -> bool {
    argv.first().is_some_and(|a| base(a) == "kubelet")
}

/// The remediation on OpenShift when the rendered config decided: the file is the MCO's.
pub fn remediation_for(path: &Path) -> Option<String> {
    (path == Path::new(RENDERED_CONFIG)).then(|| {
        format!(
            "{RENDERED_CONFIG} is rendered by the Machine Config Operator (edits on the node are reverted): set makeIPTablesUtilChains: true (or remove it) in the KubeletConfig custom resource's spec.kubeletConfig (oc edit kubeletconfig NAME) and let the MCO roll it out"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn wrappers() {
        let s = strip_wrappers(&v(&["/usr/bin/hyperkube", "kubelet", "--config=/c"])).unwrap();
        assert_eq!(s.argv, v(&["kubelet", "--config=/c"]));
        assert_eq!(s.wrapper, v(&["/usr/bin/hyperkube"]));
        assert!(s.note().contains("hyperkube"));
        let s =
            strip_wrappers(&v(&["/usr/bin/kubenswrapper", "/usr/bin/kubelet", "--v=2"])).unwrap();
        assert_eq!(s.argv, v(&["/usr/bin/kubelet", "--v=2"]));
        let s = strip_wrappers(&v(&[
            "kubenswrapper",
            "-v",
            "/usr/bin/hyperkube",
            "kubelet",
            "x",
        ]))
        .unwrap();
        assert_eq!(s.argv, v(&["kubelet", "x"]));
        assert_eq!(s.wrapper.len(), 3);
        let s = strip_wrappers(&v(&["/usr/bin/kubelet", "--v=2"])).unwrap();
        assert!(s.wrapper.is_empty());
        assert_eq!(s.note(), "");
        for bad in [
            v(&["hyperkube"]),
            v(&["hyperkube", "--help"]),
            v(&["hyperkube", "kube-apiserver"]),
            v(&["hyperkube", "kubectl"]),
            v(&["kubenswrapper"]),
            v(&["kubenswrapper", "--help", "/usr/bin/kubelet"]),
            v(&["kubenswrapper", "--mount=/x", "/usr/bin/kubelet"]),
            v(&["kubenswrapper", "", "/usr/bin/kubelet"]),
        ] {
            assert!(strip_wrappers(&bad).is_err(), "{bad:?}");
        }
        assert!(runs_kubelet(&v(&["/usr/bin/kubelet"])));
        assert!(!runs_kubelet(&v(&["/usr/bin/sleep"])));
    }
}

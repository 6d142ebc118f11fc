//! The corpus files that are not a kubelet config or unit by themselves, turned into the argv or
//! files the kubelet really gets, the way each distribution does it, and evaluated. (Config
//! files, unit files and env files are covered in `evaluate.rs` and `systemd/`.) The corpus is
//! found by [`super::rootfs::corpus_dir`], the one locator of the unit tests.

use std::{collections::HashMap, path::Path};

use serde_json::Value;

use super::{
    evaluate::{EvalInput, Evaluation, evaluate},
    rootfs::corpus_text,
};
use crate::{
    finding::{Benchmark, Source, Status},
    watched,
};

const HEAD: &str = "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n";

fn corpus(rel: &str) -> String {
    corpus_text(rel)
}

/// A corpus manifest read as plain data (the YAML reader the product uses for its own settings).
fn yaml(rel: &str) -> Value {
    serde_saphyr::from_str(&corpus(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// Evaluates `args` (without argv[0]) in a root holding `files`.
fn eval(files: &[(&str, &str)], args: &[String]) -> Evaluation {
    let (_d, fs) = super::rootfs::test_root(files);
    let argv: Vec<String> = std::iter::once("kubelet".to_string())
        .chain(args.iter().cloned())
        .collect();
    evaluate(&EvalInput {
        fs: &fs,
        argv: &argv,
        cwd: Path::new("/"),
        env: &HashMap::new(),
    })
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|s| {
            s.iter()
                .filter_map(|x| x.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// A pod that runs the kubelet: its container's `command` + `args` is the argv.
fn pod_argv(pod: &Value) -> Vec<String> {
    let c = &pod["spec"]["containers"][0];
    let mut argv = strings(&c["command"]);
    argv.extend(strings(&c["args"]));
    assert_eq!(
        argv.first().map(String::as_str),
        Some("kubelet"),
        "{argv:?}"
    );
    argv.remove(0);
    argv
}

#[test]
fn pods_that_run_the_kubelet() {
    // kics: command and args in flow style; checkov: a block-style command list.
    for rel in [
        "kics/positive1-pod-flag-false.yaml",
        "checkov/KubeletMakeIptablesUtilChains-FAILED.yaml",
    ] {
        let ev = eval(&[], &pod_argv(&yaml(rel)));
        assert_eq!(ev.status, Status::Fail, "{rel}: {}", ev.reason);
        assert!(
            matches!(ev.source, Source::Flag { index: 1, .. }),
            "{rel}: {:?}",
            ev.source
        );
    }
}

/// rke2 and k3s pass each `kubelet-arg` entry to the kubelet as `--ENTRY`.
#[test]
fn rke2_and_k3s_kubelet_args() {
    for (rel, want) in [
        (
            "rke2/config-remediation.yaml",
            Source::Flag {
                index: 1,
                text: "--make-iptables-util-chains=true".into(),
            },
        ),
        (
            "k3s/config-hardened-v1.24-and-older.yaml",
            Source::Flag {
                index: 2,
                text: "--make-iptables-util-chains=true".into(),
            },
        ),
        ("k3s/config-hardened-v1.25-and-newer.yaml", Source::Default),
    ] {
        let args: Vec<String> = strings(&yaml(rel)["kubelet-arg"])
            .iter()
            .map(|a| format!("--{a}"))
            .collect();
        assert!(!args.is_empty(), "{rel}");
        let ev = eval(&[], &args);
        assert_eq!(
            (ev.status, &ev.source),
            (Status::Pass, &want),
            "{rel}: {}",
            ev.reason
        );
    }
}

/// MicroK8s: one flag per line in `args/kubelet`, with `${SNAP_DATA}`/`${SNAP_COMMON}`, read
/// by the snap's launcher as a bash array (quotes removed).
#[test]
fn microk8s_args_file() {
    let text = corpus("microk8s/args-kubelet");
    let args: Vec<String> = text
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .map(|l| {
            l.trim()
                .replace("${SNAP_DATA}", "/var/snap/microk8s/current")
                .replace("${SNAP_COMMON}", "/var/snap/microk8s/common")
                .replace('"', "")
        })
        .collect();
    assert!(args.len() > 10);
    let ev = eval(&[], &args);
    assert_eq!(
        (ev.status, ev.source),
        (Status::Pass, Source::Default),
        "{}",
        ev.reason
    );
}

/// EKS nodeadm: `spec.kubelet.flags` are passed through; `spec.kubelet.config` becomes a
/// drop-in `00-nodeadm.conf` (with apiVersion/kind merged in) under --config-dir.
#[test]
fn eks_nodeadm_nodeconfigs() {
    let flags = strings(
        &yaml("amazon-eks-ami/nodeadm-nodeconfig-kubelet-flags.yaml")["spec"]["kubelet"]["flags"],
    );
    assert_eq!(flags.len(), 3);
    let ev = eval(&[], &flags);
    assert_eq!(
        (ev.status, ev.source),
        (Status::Pass, Source::Default),
        "{}",
        ev.reason
    );

    // nodeadm writes the drop-in as JSON, apiVersion and kind merged into the fragment.
    let nc = yaml("amazon-eks-ami/nodeadm-nodeconfig-kubelet-config.yaml");
    let dropin_with = |extra: Option<bool>| {
        let mut fragment = nc["spec"]["kubelet"]["config"].clone();
        let obj = fragment
            .as_object_mut()
            .expect("spec.kubelet.config is a mapping");
        obj.insert("apiVersion".into(), "kubelet.config.k8s.io/v1beta1".into());
        obj.insert("kind".into(), "KubeletConfiguration".into());
        if let Some(v) = extra {
            obj.insert("makeIPTablesUtilChains".into(), v.into());
        }
        serde_json::to_string_pretty(&fragment).unwrap()
    };
    let dropin = dropin_with(None);
    let main = corpus("amazon-eks-ami/nodeadm-expected-kubelet-config.json");
    let files = [
        ("/etc/kubernetes/kubelet/config.json", main.as_str()),
        (
            "/etc/kubernetes/kubelet/config.json.d/00-nodeadm.conf",
            dropin.as_str(),
        ),
    ];
    let args = [
        "--config=/etc/kubernetes/kubelet/config.json".to_string(),
        "--config-dir=/etc/kubernetes/kubelet/config.json.d".to_string(),
    ];
    let ev = eval(&files, &args);
    assert_eq!(ev.status, Status::Pass, "{}", ev.reason);
    // The same NodeConfig with the key set false under spec.kubelet.config: the drop-in decides.
    let dropin_false = dropin_with(Some(false));
    let files = [
        files[0],
        (
            "/etc/kubernetes/kubelet/config.json.d/00-nodeadm.conf",
            dropin_false.as_str(),
        ),
    ];
    let ev = eval(&files, &args);
    assert_eq!(ev.status, Status::Fail, "{}", ev.reason);
    assert!(
        matches!(ev.source, Source::DropIn { .. }),
        "{:?}",
        ev.source
    );
}

/// kubespray's template writes `makeIPTablesUtilChains: {{ ... | bool }}`; Jinja prints Python's
/// `True`/`False`, which are YAML 1.1 booleans.
#[test]
fn kubespray_config_template_line() {
    let template = corpus("kubespray/kubelet-config.v1beta1.yaml.j2");
    let line = template
        .lines()
        .find(|l| l.starts_with("makeIPTablesUtilChains:"))
        .expect("the template writes the key");
    for (jinja, want) in [("True", Status::Pass), ("False", Status::Fail)] {
        let rendered = format!(
            "{HEAD}{}\n",
            line.replace("{{ kubelet_make_iptables_util_chains | bool }}", jinja)
        );
        assert!(!rendered.contains("{{"), "{rendered}");
        let ev = eval(
            &[("/etc/kubernetes/kubelet-config.yaml", &rendered)],
            &["--config=/etc/kubernetes/kubelet-config.yaml".into()],
        );
        assert_eq!(ev.status, want, "{jinja}: {}", ev.reason);
    }
    // The unit and env templates are covered, rendered, by systemd/tests_layouts.rs; they name the env file the
    // rendered unit reads.
    assert!(
        corpus("kubespray/kubelet.service.j2")
            .contains("EnvironmentFile=-{{ kube_config_dir }}/kubelet.env")
    );
    assert!(corpus("kubespray/kubelet.env.v1beta1.j2").contains("--config="));
}

/// kube-bench numbers this check 4.2.7 in the older benchmarks and 4.2.6 from CIS 1.7 on: the
/// same numbers our `benchmark` setting prints.
#[test]
fn kube_bench_numbering_matches() {
    let id_of = |rel: &str| -> String {
        let groups = yaml(rel)["groups"].as_array().cloned().unwrap_or_default();
        groups
            .iter()
            .flat_map(|g| g["checks"].as_array().cloned().unwrap_or_default())
            .find(|c| {
                c["text"]
                    .as_str()
                    .is_some_and(|t| t.contains("--make-iptables-util-chains"))
            })
            .and_then(|c| {
                c["id"]
                    .as_str()
                    .map(String::from)
                    .or_else(|| c["id"].as_f64().map(|f| f.to_string()))
            })
            .expect("the check is there")
    };
    assert_eq!(
        id_of("kube-bench/kube-bench-node-cis-1.24.yaml"),
        Benchmark::Cis16.control_id()
    );
    assert_eq!(
        id_of("kube-bench/kube-bench-node.yaml"),
        Benchmark::Cis17.control_id()
    );
}

/// Every kubelet config and unit location kube-bench knows is watched by default.
#[test]
fn kube_bench_locations_are_watched() {
    let cfg = yaml("kube-bench/kube-bench-config.yaml");
    let kubelet = &cfg["node"]["kubelet"];
    let mut paths = strings(&kubelet["confs"]);
    paths.extend(strings(&kubelet["svc"]));
    let watched = |p: &str| {
        watched::DEFAULT_PATHS
            .iter()
            .any(|w| p == *w || Path::new(p).starts_with(w))
    };
    let missing: Vec<&String> = paths
        .iter()
        // Not kubelet configuration: the Azure cloud config, a kubeconfig (credentials), other
        // distributions' services.
        .filter(|p| {
            !p.ends_with("azure.json")
                && !p.ends_with("/kubeconfig")
                && !p.contains("snap.")
                && !p.contains("openshift")
                && !p.contains("origin-node")
        })
        .filter(|p| !watched(p))
        .collect();
    assert!(missing.is_empty(), "not watched by default: {missing:?}");
}

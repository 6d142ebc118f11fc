//! Node images per distribution, in each one's real layout, run through `check --root`: the
//! verdict must be the kubelet's own (pass, fail, or an error naming the distribution's file),
//! never a false pass. Each fixture is written here in the shape the distribution produces;
//! the comment above it names where that shape comes from. Files of the shared corpus
//! (`../shared/corpus`, see its SOURCES.md) are read, never copied.

use std::path::{Path, PathBuf};

use kubelet_drift::check::{CheckArgs, run_check_detected};
use kubelet_drift::finding::{Finding, Source, Status, Subject};
use kubelet_drift::kubelet::distro::{Detection, Distribution};

fn corpus(rel: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/corpus")
        .join(rel);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("corpus file {}: {e}", p.display()))
}

struct Img {
    dir: tempfile::TempDir,
}

impl Img {
    fn new() -> Img {
        Img {
            dir: tempfile::tempdir().unwrap(),
        }
    }
    fn host(&self, p: &str) -> PathBuf {
        self.dir.path().join(p.trim_start_matches('/'))
    }
    fn file(&self, p: &str, text: &str) -> &Img {
        let h = self.host(p);
        std::fs::create_dir_all(h.parent().unwrap()).unwrap();
        std::fs::write(h, text).unwrap();
        self
    }
    fn link(&self, p: &str, target: &str) -> &Img {
        let h = self.host(p);
        std::fs::create_dir_all(h.parent().unwrap()).unwrap();
        let _ = std::fs::remove_file(&h);
        std::os::unix::fs::symlink(target, h).unwrap();
        self
    }
    fn check_as(&self, d: Option<Distribution>) -> (Detection, Finding) {
        let args = CheckArgs {
            root: Some(self.dir.path().to_path_buf()),
            distribution: d,
            ..Default::default()
        };
        let (det, findings, _) = run_check_detected(&args);
        (
            det.expect("a node was checked"),
            findings.last().cloned().expect("an after-restart finding"),
        )
    }
    fn check(&self) -> (Detection, Finding) {
        self.check_as(None)
    }
}

const CFG: &str = "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n";

fn cfg_false() -> String {
    format!("{CFG}makeIPTablesUtilChains: false\n")
}

fn assert_status(f: &Finding, want: Status, what: &str) {
    assert_eq!(f.status, want, "{what}: {f:#?}");
    if want != Status::Pass {
        assert_ne!(f.effective, Some(true), "{what}");
    }
}

// ---------------------------------------------------------------------------------------------
// kubeadm-style nodes.

/// kubeadm (deb/rpm packages): kubernetes/release `kubelet.service` + `10-kubeadm.conf`
/// (corpus), kubeadm's `/var/lib/kubelet/config.yaml` and `kubeadm-flags.env`.
fn kubeadm(config: &str, extra: &str) -> Img {
    let i = Img::new();
    i.file("/lib/systemd/system/kubelet.service", &corpus("kubernetes-release/kubelet.service"))
        .file("/etc/systemd/system/kubelet.service.d/10-kubeadm.conf", &corpus("kubernetes-release/10-kubeadm.conf"))
        .file("/var/lib/kubelet/config.yaml", config)
        .file("/var/lib/kubelet/kubeadm-flags.env", "KUBELET_KUBEADM_ARGS=\"--container-runtime-endpoint=unix:///var/run/containerd/containerd.sock\"\n")
        .file("/etc/sysconfig/kubelet", &format!("KUBELET_EXTRA_ARGS={extra}\n"));
    i
}

#[test]
fn kubeadm_and_kind() {
    let (d, f) = kubeadm(CFG, "").check();
    assert_eq!(d.distribution, Distribution::Plain);
    assert_status(&f, Status::Pass, "kubeadm default");
    assert_status(
        &kubeadm(&cfg_false(), "").check().1,
        Status::Fail,
        "kubeadm config false",
    );
    let (_, f) = kubeadm(CFG, "--make-iptables-util-chains=false").check();
    assert_status(&f, Status::Fail, "kubeadm extra args false");
    // trap: a bool flag never takes the next argument
    let (_, f) = kubeadm(&cfg_false(), "\"--make-iptables-util-chains true\"").check();
    assert_status(&f, Status::Error, "space-separated bool");

    // kind node image: kubernetes-sigs/kind images/base/files (corpus).
    let i = Img::new();
    i.file(
        "/etc/systemd/system/kubelet.service",
        &corpus("kind/kubelet.service"),
    )
    .file(
        "/etc/systemd/system/kubelet.service.d/10-kubeadm.conf",
        &corpus("kind/10-kubeadm.conf"),
    )
    .file(
        "/etc/systemd/system/kubelet.service.d/11-kind.conf",
        &corpus("kind/11-kind.conf"),
    )
    .file("/etc/default/kubelet", &corpus("kind/etc-default-kubelet"))
    .file("/var/lib/kubelet/config.yaml", CFG);
    assert_status(&i.check().1, Status::Pass, "kind");
    i.file("/var/lib/kubelet/config.yaml", &cfg_false());
    assert_status(&i.check().1, Status::Fail, "kind false");
}

#[test]
fn eks_gke_aks() {
    // EKS AL2023: awslabs/amazon-eks-ami templates/al2023 kubelet.service (corpus); nodeadm
    // writes /etc/eks/kubelet/environment with NODEADM_KUBELET_ARGS (nodeadm/internal/kubelet).
    let i = Img::new();
    i.file("/etc/systemd/system/kubelet.service", &corpus("amazon-eks-ami/al2023-kubelet.service"))
        .file("/etc/kubernetes/kubelet/config.json", &corpus("amazon-eks-ami/nodeadm-expected-kubelet-config.json"))
        .file("/etc/kubernetes/kubelet/config.json.d/40-nodeadm.conf", &corpus("amazon-eks-ami/nodeadm-expected-kubelet-config-drop-in.json"))
        .file(
            "/etc/eks/kubelet/environment",
            "NODEADM_KUBELET_ARGS=\"--node-ip=10.0.0.1 --config=/etc/kubernetes/kubelet/config.json --config-dir=/etc/kubernetes/kubelet/config.json.d --kubeconfig=/var/lib/kubelet/kubeconfig\"\n",
        );
    assert_status(&i.check().1, Status::Pass, "EKS AL2023");
    i.file(
        "/etc/kubernetes/kubelet/config.json.d/40-nodeadm.conf",
        "{\"apiVersion\":\"kubelet.config.k8s.io/v1beta1\",\"kind\":\"KubeletConfiguration\",\"makeIPTablesUtilChains\":false}",
    );
    assert_status(&i.check().1, Status::Fail, "EKS AL2023 drop-in false");
    // the environment file is required: without it the kubelet does not start
    std::fs::remove_file(i.host("/etc/eks/kubelet/environment")).unwrap();
    assert_status(&i.check().1, Status::Error, "EKS AL2023 no environment");

    // EKS AL2: templates/al2 kubelet-containerd.service + kubelet-config.json (corpus);
    // bootstrap.sh writes the drop-in 30-kubelet-extra-args.conf.
    let i = Img::new();
    i.file(
        "/etc/systemd/system/kubelet.service",
        &corpus("amazon-eks-ami/al2-kubelet-containerd.service"),
    )
    .file(
        "/etc/kubernetes/kubelet/kubelet-config.json",
        &corpus("amazon-eks-ami/al2-kubelet-config.json"),
    );
    assert_status(&i.check().1, Status::Pass, "EKS AL2");
    i.file(
        "/etc/systemd/system/kubelet.service.d/30-kubelet-extra-args.conf",
        "[Service]\nEnvironment='KUBELET_EXTRA_ARGS=--make-iptables-util-chains=false'\n",
    );
    assert_status(&i.check().1, Status::Fail, "EKS AL2 extra args");

    // GKE COS: kubernetes cluster/gce/gci/configure-helper.sh writes /etc/default/kubelet
    // KUBELET_OPTS and a kubelet.service running /home/kubernetes/bin/kubelet $KUBELET_OPTS.
    let i = Img::new();
    i.file(
        "/etc/systemd/system/kubelet.service",
        "[Unit]\nDescription=Kubernetes kubelet\n[Service]\nRestart=always\nRestartSec=10\nEnvironmentFile=/etc/default/kubelet\nExecStart=/home/kubernetes/bin/kubelet $KUBELET_OPTS\n",
    )
    .file("/etc/default/kubelet", "KUBELET_OPTS=\"--v=2 --cloud-provider=external --config /home/kubernetes/kubelet-config.yaml\"\n")
    .file("/home/kubernetes/kubelet-config.yaml", CFG);
    assert_status(&i.check().1, Status::Pass, "GKE");
    i.file(
        "/home/kubernetes/kubelet-config.yaml",
        &format!("{CFG}makeIPTablesUtilChains: no\n"),
    );
    assert_status(&i.check().1, Status::Fail, "GKE YAML 1.1 no");

    // AKS: Azure/AgentBaker parts/linux/cloud-init/artifacts/kubelet.service (KUBELET_FLAGS from
    // /etc/default/kubelet) and 10-componentconfig.conf (--config=/etc/default/kubeletconfig.json).
    let i = Img::new();
    i.file(
        "/etc/systemd/system/kubelet.service",
        "[Service]\nEnvironmentFile=/etc/default/kubelet\nExecStart=/usr/local/bin/kubelet \\\n        --enable-server \\\n        --node-labels=\"${KUBELET_NODE_LABELS}\" \\\n        $KUBELET_TLS_BOOTSTRAP_FLAGS \\\n        $KUBELET_CONFIG_FILE_FLAGS \\\n        $KUBELET_FLAGS\n",
    )
    .file(
        "/etc/systemd/system/kubelet.service.d/10-componentconfig.conf",
        "[Service]\nEnvironment=\"KUBELET_CONFIG_FILE_FLAGS=--config /etc/default/kubeletconfig.json\"\n",
    )
    .file("/etc/default/kubelet", "KUBELET_FLAGS=--cgroups-per-qos=true --enforce-node-allocatable=pods\nKUBELET_NODE_LABELS=agentpool=nodepool1\n")
    .file("/etc/default/kubeletconfig.json", "{\"kind\":\"KubeletConfiguration\",\"apiVersion\":\"kubelet.config.k8s.io/v1beta1\",\"makeIPTablesUtilChains\":true}");
    assert_status(&i.check().1, Status::Pass, "AKS");
    i.file(
        "/etc/default/kubelet",
        "KUBELET_FLAGS=--make-iptables-util-chains=false\n",
    );
    assert_status(&i.check().1, Status::Fail, "AKS flags");
}

// ---------------------------------------------------------------------------------------------
// OpenShift.

/// openshift/machine-config-operator templates/*/01-*-kubelet/_base/units/kubelet.service.yaml,
/// rendered: required EnvironmentFile=/etc/os-release and /etc/node-sizing.env.
fn openshift(exec: &str, kubelet_conf: &str) -> Img {
    let i = Img::new();
    i.file(
        "/etc/systemd/system/kubelet.service",
        &format!(
            "[Unit]\nDescription=Kubernetes Kubelet\n[Service]\nType=notify\nExecStartPre=/bin/mkdir --parents /etc/kubernetes/manifests\nEnvironmentFile=/etc/os-release\nEnvironmentFile=-/etc/kubernetes/kubelet-workaround\nEnvironmentFile=-/etc/kubernetes/kubelet-env\nEnvironmentFile=/etc/node-sizing.env\n\nExecStart={exec} \\\n    --config=/etc/kubernetes/kubelet.conf \\\n    --bootstrap-kubeconfig=/etc/kubernetes/kubeconfig \\\n    --kubeconfig=/var/lib/kubelet/kubeconfig \\\n    --container-runtime-endpoint=/var/run/crio/crio.sock \\\n    --node-labels=node-role.kubernetes.io/worker,node.openshift.io/os_id=${{ID}} \\\n    --node-ip=${{KUBELET_NODE_IP}} \\\n    --system-reserved=cpu=${{SYSTEM_RESERVED_CPU}},memory=${{SYSTEM_RESERVED_MEMORY}} \\\n    --v=${{KUBELET_LOG_LEVEL}}\n\nRestart=always\n"
        ),
    )
    // The level comes from the MCO's drop-in (Red Hat KB 4619431: "the default is set in
    // /etc/systemd/system/kubelet.service.d/20-logging.conf"); without it `--v=` is empty,
    // which klog refuses: the kubelet would not start.
    .file(
        "/etc/systemd/system/kubelet.service.d/20-logging.conf",
        "[Service]\nEnvironment=\"KUBELET_LOG_LEVEL=2\"\n",
    )
    .file("/etc/os-release", "NAME=\"Red Hat Enterprise Linux CoreOS\"\nID=\"rhcos\"\n")
    .file("/etc/node-sizing.env", "SYSTEM_RESERVED_MEMORY=1Gi\nSYSTEM_RESERVED_CPU=500m\n")
    .file("/etc/kubernetes/kubelet.conf", kubelet_conf);
    i
}

#[test]
fn openshift_411_and_412() {
    // The MCO renders kubelet.conf as JSON (no makeIPTablesUtilChains by default).
    let rendered = "{\"kind\":\"KubeletConfiguration\",\"apiVersion\":\"kubelet.config.k8s.io/v1beta1\",\"cgroupDriver\":\"systemd\",\"rotateCertificates\":true}";
    let rendered_false = "{\"kind\":\"KubeletConfiguration\",\"apiVersion\":\"kubelet.config.k8s.io/v1beta1\",\"cgroupDriver\":\"systemd\",\"makeIPTablesUtilChains\":false}";
    for exec in [
        "/usr/bin/hyperkube \\\n      kubelet",
        "/usr/bin/kubenswrapper \\\n    /usr/bin/kubelet",
    ] {
        let i = openshift(exec, rendered);
        let (d, f) = i.check();
        assert_eq!(d.distribution, Distribution::Openshift, "{d:?}");
        assert_status(&f, Status::Pass, exec);
        assert!(f.reason.contains("was stripped"), "{}", f.reason);
        let Subject::AfterRestart { argv, .. } = &f.subject else {
            panic!()
        };
        assert!(
            argv[0].ends_with("kubelet") && argv[1] == "--config=/etc/kubernetes/kubelet.conf",
            "{argv:?}"
        );
        // A KubeletConfig rendered to false: a fail, remedied in the custom resource.
        let i = openshift(exec, rendered_false);
        let (_, f) = i.check();
        assert_status(&f, Status::Fail, "KubeletConfig false");
        assert!(f.remediation.contains("KubeletConfig"), "{}", f.remediation);
        assert!(!f.remediation.contains("argv[1]"), "{}", f.remediation);
        // YAML rendering (older releases) too
        i.file("/etc/kubernetes/kubelet.conf", &cfg_false());
        assert_status(&i.check().1, Status::Fail, "YAML kubelet.conf false");
        // the required node-sizing env file is missing: the kubelet does not start
        std::fs::remove_file(i.host("/etc/node-sizing.env")).unwrap();
        assert_status(&i.check().1, Status::Error, "no node-sizing.env");
    }
    // hyperkube with something else than kubelet: no kubelet runs, never a pass
    let i = openshift("/usr/bin/hyperkube kube-apiserver", rendered);
    let (_, f) = i.check();
    assert_status(&f, Status::Error, "hyperkube kube-apiserver");
    // an OpenShift drop-in dir through --config-dir
    let i = openshift(
        "/usr/bin/kubenswrapper /usr/bin/kubelet --config-dir=/etc/openshift/kubelet.conf.d",
        rendered,
    );
    i.file("/etc/openshift/kubelet.conf.d/99-x.conf", &cfg_false());
    assert_status(&i.check().1, Status::Fail, "OpenShift drop-in");
}

// ---------------------------------------------------------------------------------------------
// RKE2.

/// rancher/rke2 bundle/lib/systemd/system/rke2-server.service (ExecStart=/usr/local/bin/rke2
/// server, EnvironmentFile=-/etc/default/%N etc.), config.yaml (rke2-docs configuration
/// page), and the generated defaults drop-in (corpus rke2/00-rke2-defaults.conf).
fn rke2(config: &str) -> Img {
    let i = Img::new();
    i.file(
        "/usr/local/lib/systemd/system/rke2-server.service",
        "[Unit]\nDescription=Rancher Kubernetes Engine v2 (server)\n[Service]\nType=notify\nEnvironmentFile=-/etc/default/%N\nEnvironmentFile=-/etc/sysconfig/%N\nEnvironmentFile=-/usr/local/lib/systemd/system/%N.env\nKillMode=process\nExecStartPre=-/sbin/modprobe br_netfilter\nExecStart=/usr/local/bin/rke2 server\n",
    )
    .file("/etc/rancher/rke2/config.yaml", config)
    .file("/var/lib/rancher/rke2/agent/etc/kubelet.conf.d/00-rke2-defaults.conf", &corpus("rke2/00-rke2-defaults.conf"));
    i
}

#[test]
fn rke2_nodes() {
    let (d, f) = rke2("write-kubeconfig-mode: \"0644\"\n").check();
    assert_eq!(d.distribution, Distribution::Rke2);
    assert_status(&f, Status::Pass, "RKE2 default");
    // the CIS remediation (corpus): true
    let (_, f) = rke2(&corpus("rke2/config-remediation.yaml")).check();
    assert_status(&f, Status::Pass, "RKE2 remediation");
    // false in config.yaml: the finding names config.yaml and its line
    let i = rke2("token: x\nkubelet-arg:\n  - \"v=2\"\n  - \"make-iptables-util-chains=false\"\n");
    let (_, f) = i.check();
    assert_status(&f, Status::Fail, "RKE2 kubelet-arg false");
    assert_eq!(
        f.source,
        Source::ConfigFile {
            path: "/etc/rancher/rke2/config.yaml".into(),
            line: Some(4)
        }
    );
    assert!(
        f.remediation
            .contains("/etc/rancher/rke2/config.yaml line 4"),
        "{}",
        f.remediation
    );
    // trap: a later drop-in's plain key replaces the list (true wins); `+` would append
    i.file(
        "/etc/rancher/rke2/config.yaml.d/50-cis.yaml",
        "kubelet-arg: [make-iptables-util-chains=true]\n",
    );
    assert_status(&i.check().1, Status::Pass, "RKE2 drop-in replaces");
    i.file(
        "/etc/rancher/rke2/config.yaml.d/50-cis.yaml",
        "kubelet-arg+: [protect-kernel-defaults=true]\n",
    );
    assert_status(&i.check().1, Status::Fail, "RKE2 drop-in appends");
    // a user drop-in in the managed kubelet.conf.d
    let i = rke2("");
    i.file(
        "/var/lib/rancher/rke2/agent/etc/kubelet.conf.d/50-user.conf",
        &cfg_false(),
    );
    assert_status(&i.check().1, Status::Fail, "RKE2 kubelet.conf.d drop-in");
    // RKE2_CONFIG_FILE in the unit's env file moves the config
    let i = rke2("kubelet-arg: [make-iptables-util-chains=false]\n");
    i.file(
        "/etc/default/rke2-server",
        "RKE2_CONFIG_FILE=/etc/rke2-other.yaml\n",
    );
    assert_status(&i.check().1, Status::Pass, "RKE2_CONFIG_FILE elsewhere");
    // not a mapping: RKE2 refuses to start
    let (_, f) = rke2("- kubelet-arg\n").check();
    assert_status(&f, Status::Error, "RKE2 bad YAML");
    assert!(f.reason.contains("RKE2"), "{}", f.reason);
}

// ---------------------------------------------------------------------------------------------
// k3s.

/// k3s-io/k3s install.sh `create_systemd_service_file` (each argument single-quoted, env file
/// /etc/systemd/system/k3s.service.env), 1.32+ managed kubelet.conf.d with
/// 00-k3s-defaults.conf (pkg/daemons/agent/agent.go writeKubeletConfig).
fn k3s(exec_args: &str, config: &str) -> Img {
    let i = Img::new();
    i.file(
        "/etc/systemd/system/k3s.service",
        &format!(
            "[Unit]\nDescription=Lightweight Kubernetes\n[Service]\nType=notify\nEnvironmentFile=-/etc/default/%N\nEnvironmentFile=-/etc/sysconfig/%N\nEnvironmentFile=-/etc/systemd/system/k3s.service.env\nKillMode=process\nExecStartPre=-/sbin/modprobe br_netfilter\nExecStart=/usr/local/bin/k3s \\\n    server \\\n{exec_args}\n"
        ),
    )
    .file("/etc/systemd/system/k3s.service.env", "K3S_TOKEN=secret\n")
    .file("/etc/rancher/k3s/config.yaml", config)
    .file(
        "/var/lib/rancher/k3s/agent/etc/kubelet.conf.d/00-k3s-defaults.conf",
        "address: 0.0.0.0\napiVersion: kubelet.config.k8s.io/v1beta1\nauthentication:\n  anonymous:\n    enabled: false\ncgroupDriver: cgroupfs\nkind: KubeletConfiguration\nreadOnlyPort: 0\n",
    );
    i
}

#[test]
fn k3s_nodes() {
    let (d, f) = k3s("", "write-kubeconfig-mode: \"0644\"\n").check();
    assert_eq!(d.distribution, Distribution::K3s);
    assert_status(&f, Status::Pass, "k3s default");
    assert!(!f.reason.contains("kubelet.service"), "{}", f.reason);
    // the hardening guides' config.yaml (corpus): true / default
    assert_status(
        &k3s("", &corpus("k3s/config-hardened-v1.24-and-older.yaml"))
            .check()
            .1,
        Status::Pass,
        "hardened 1.24",
    );
    assert_status(
        &k3s("", &corpus("k3s/config-hardened-v1.25-and-newer.yaml"))
            .check()
            .1,
        Status::Pass,
        "hardened 1.25",
    );
    // --kubelet-arg in the unit's ExecStart comes after config.yaml's: false wins
    let i = k3s(
        "\t'--kubelet-arg' \\\n\t'make-iptables-util-chains=false' \\\n",
        &corpus("k3s/config-hardened-v1.24-and-older.yaml"),
    );
    let (_, f) = i.check();
    assert_status(&f, Status::Fail, "k3s CLI kubelet-arg");
    assert!(
        matches!(&f.source, Source::Unit { path, .. } if path == Path::new("/etc/systemd/system/k3s.service")),
        "{:?}",
        f.source
    );
    // config.yaml.d with `+`: appended after config.yaml's true
    let i = k3s("", "kubelet-arg:\n  - make-iptables-util-chains=true\n");
    i.file(
        "/etc/rancher/k3s/config.yaml.d/90-x.yaml",
        "kubelet-arg+:\n  - make-iptables-util-chains=false\n",
    );
    let (_, f) = i.check();
    assert_status(&f, Status::Fail, "k3s .d append");
    assert!(
        f.reason
            .contains("/etc/rancher/k3s/config.yaml.d/90-x.yaml line 2"),
        "{}",
        f.reason
    );
    assert!(
        f.remediation.contains("90-x.yaml line 2"),
        "{}",
        f.remediation
    );
    // trap: an entry without '=' swallows the next entry (k3s's extractConfigArgs)
    let i = k3s(
        "",
        "kubelet-arg:\n  - make-iptables-util-chains\n  - make-iptables-util-chains=false\n",
    );
    assert_status(&i.check().1, Status::Pass, "k3s swallowed entry");
    // kubelet-arg config=: copied to 10-cli-config.conf at each start
    let i = k3s("", "kubelet-arg: [config=/etc/rancher/k3s/kubelet.yaml]\n");
    i.file("/etc/rancher/k3s/kubelet.yaml", &cfg_false());
    let (_, f) = i.check();
    assert_status(&f, Status::Error, "stale copy");
    assert!(f.reason.contains("10-cli-config.conf"), "{}", f.reason);
    i.file(
        "/var/lib/rancher/k3s/agent/etc/kubelet.conf.d/10-cli-config.conf",
        &cfg_false(),
    );
    let (_, f) = i.check();
    assert_status(&f, Status::Fail, "copied config false");
    assert!(
        f.remediation.contains("/etc/rancher/k3s/kubelet.yaml"),
        "{}",
        f.remediation
    );
    // K3S_CONFIG_FILE in the env file
    let i = k3s("", "kubelet-arg: [make-iptables-util-chains=false]\n");
    assert_status(&i.check().1, Status::Fail, "k3s config false");
    i.file(
        "/etc/systemd/system/k3s.service.env",
        "K3S_CONFIG_FILE=/etc/k3s-other.yaml\n",
    );
    assert_status(&i.check().1, Status::Pass, "K3S_CONFIG_FILE elsewhere");
    // an agent node
    let i = Img::new();
    i.file(
        "/etc/systemd/system/k3s-agent.service",
        "[Service]\nExecStart=/usr/local/bin/k3s agent '--server' 'https://10.0.0.1:6443' '--kubelet-arg=make-iptables-util-chains=0'\n",
    );
    let (d, f) = i.check();
    assert_eq!(d.distribution, Distribution::K3s);
    assert_status(&f, Status::Fail, "k3s agent");
    // k3s files but no unit: an error naming k3s, never the generic one
    let i = Img::new();
    i.file("/etc/rancher/k3s/config.yaml", "kubelet-arg: [v=2]\n");
    let (_, f) = i.check();
    assert_status(&f, Status::Error, "k3s without unit");
    assert!(
        f.reason.contains("k3s.service") && f.reason.starts_with("k3s node"),
        "{}",
        f.reason
    );
    assert!(
        f.remediation.contains("/etc/rancher/k3s/config.yaml"),
        "{}",
        f.remediation
    );
    // --distribution overrides detection
    let (d, f) = i.check_as(Some(Distribution::Plain));
    assert_eq!(d.distribution, Distribution::Plain);
    assert_status(&f, Status::Error, "forced kubeadm");
}

// ---------------------------------------------------------------------------------------------
// MicroK8s.

/// canonical/microk8s: /var/snap/microk8s/current -> <revision>, args/kubelet
/// (microk8s-resources/default-args/kubelet, corpus) and args/kubelite.
fn microk8s(extra: &str) -> Img {
    let i = Img::new();
    i.link("/var/snap/microk8s/current", "6789")
        .file("/var/snap/microk8s/6789/args/kubelet", &(corpus("microk8s/args-kubelet") + extra))
        .file(
            "/var/snap/microk8s/6789/args/kubelite",
            "--scheduler-args-file=$SNAP_DATA/args/kube-scheduler\n--kubelet-args-file=$SNAP_DATA/args/kubelet\n--start-control-plane=true\n",
        )
        .file("/etc/systemd/system/snap.microk8s.daemon-kubelite.service", "[Service]\nExecStart=/usr/bin/snap run microk8s.daemon-kubelite\n");
    i
}

#[test]
fn microk8s_nodes() {
    let (d, f) = microk8s("").check();
    assert_eq!(d.distribution, Distribution::Microk8s);
    assert_status(&f, Status::Pass, "MicroK8s default");
    let (_, f) = microk8s("--make-iptables-util-chains=\"false\"\n").check();
    assert_status(&f, Status::Fail, "MicroK8s quoted false");
    let n = corpus("microk8s/args-kubelet").lines().count() + 1;
    assert_eq!(
        f.source,
        Source::ConfigFile {
            path: "/var/snap/microk8s/6789/args/kubelet".into(),
            line: Some(n)
        }
    );
    // trap: two spaces make an empty argument, which the kubelet refuses
    assert_status(
        &microk8s("--make-iptables-util-chains  false\n").check().1,
        Status::Error,
        "double space",
    );
    // trap: a variable kubelite's environment may not hold, deciding the flag
    assert_status(
        &microk8s("--make-iptables-util-chains=$FLAG\n").check().1,
        Status::Error,
        "unknown variable",
    );
    // a --config through ${SNAP_DATA}
    let i = microk8s("--config=${SNAP_DATA}/args/kubelet.yaml\n");
    i.file("/var/snap/microk8s/6789/args/kubelet.yaml", &cfg_false());
    assert_status(&i.check().1, Status::Fail, "MicroK8s config file");
    // the args file is gone: kubelite exits
    std::fs::remove_file(i.host("/var/snap/microk8s/6789/args/kubelet")).unwrap();
    let (_, f) = i.check();
    assert_status(&f, Status::Error, "no args file");
    assert!(f.reason.contains("MicroK8s"), "{}", f.reason);
}

// ---------------------------------------------------------------------------------------------
// Talos.

#[test]
fn talos_without_a_running_kubelet() {
    // siderolabs/talos: no systemd, os-release ID=talos.
    let i = Img::new();
    i.file("/etc/os-release", "NAME=\"Talos\"\nID=talos\n");
    let (d, f) = i.check();
    assert_eq!(d.distribution, Distribution::Talos);
    assert_status(&f, Status::Error, "Talos");
    assert!(
        f.reason.contains("Talos") && f.remediation.contains("machine config"),
        "{f:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// The kubelet's version, read from its executable.

/// A stand-in kubelet executable carrying the stamp a Kubernetes build puts in its build info
/// (hack/lib/version.sh ldflags, recorded by Go as the `-ldflags` build setting).
fn stamped(version: &str) -> String {
    format!(
        "\x7fELF stand-in\n\tbuild\t-ldflags=\"-X 'k8s.io/client-go/pkg/version.gitVersion={version}' -X 'k8s.io/component-base/version.gitVersion={version}'\"\n"
    )
}

#[test]
fn version_decides_the_dropin_merge() {
    // A wrong-case key in a drop-in: false on 1.28-1.31 (internal base), true on 1.32+.
    let i = kubeadm(CFG, "--config-dir=/etc/kubernetes/kubelet.conf.d");
    i.file(
        "/etc/kubernetes/kubelet.conf.d/50-x.conf",
        &format!("{CFG}MakeIPTablesUtilChains: false\n"),
    )
    .file(
        "/etc/default/kubelet",
        "KUBELET_CONFIG_DROPIN_DIR_ALPHA=1\n",
    );
    // no executable: the verdict depends on the version, which cannot be read
    let (_, f) = i.check();
    assert_status(&f, Status::Error, "unknown version");
    assert!(
        f.reason.contains("version could not be read"),
        "{}",
        f.reason
    );
    i.file("/usr/bin/kubelet", &stamped("v1.31.2"));
    let (_, f) = i.check();
    assert_status(&f, Status::Fail, "1.31");
    assert!(f.reason.contains("v1.31.2"), "{}", f.reason);
    i.file("/usr/bin/kubelet", &stamped("v1.33.1"));
    let (_, f) = i.check();
    assert_status(&f, Status::Pass, "1.33");
    assert!(f.reason.contains("v1.33.1"), "{}", f.reason);
    // 1.29 refuses --config-dir without the alpha variable in its environment
    let i = kubeadm(CFG, "--config-dir=/etc/kubernetes/kubelet.conf.d");
    i.file("/etc/kubernetes/kubelet.conf.d/50-x.conf", CFG)
        .file("/usr/bin/kubelet", &stamped("v1.29.4"));
    let (_, f) = i.check();
    assert_status(&f, Status::Error, "1.29 without alpha");
    assert!(
        f.reason.contains("v1.29.4") && f.reason.contains("KUBELET_CONFIG_DROPIN_DIR_ALPHA"),
        "{}",
        f.reason
    );
    // k3s: the embedded kubelet's version is k3s's
    let i = k3s("", "");
    i.file(
        "/var/lib/rancher/k3s/agent/etc/kubelet.conf.d/50-x.conf",
        &format!("{CFG}MakeIPTablesUtilChains: false\n"),
    );
    assert_status(&i.check().1, Status::Error, "k3s unknown version");
    i.file("/usr/local/bin/k3s", &stamped("v1.30.6+k3s1"));
    assert_status(&i.check().1, Status::Fail, "k3s 1.30");
    i.file("/usr/local/bin/k3s", &stamped("v1.32.1+k3s1"));
    assert_status(&i.check().1, Status::Pass, "k3s 1.32");
}

// ---------------------------------------------------------------------------------------------
// Live: stand-in processes named like each distribution's, found and evaluated through /proc.

struct Standin {
    _dir: tempfile::TempDir,
    child: std::process::Child,
}

impl Drop for Standin {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The stand-in kubelet copied to `<tmp>/<name>` and run with `arg0` and `args`, once its exec
/// is complete (exe link and cmdline in place).
fn standin(name: &str, arg0: &str, args: &[&str], env: &[(&str, &str)]) -> Standin {
    use std::os::unix::process::CommandExt;
    let dir = tempfile::tempdir().unwrap();
    let exe = dir.path().join(name);
    std::fs::copy(env!("CARGO_BIN_EXE_kubelet"), &exe).unwrap();
    let mut cmd = std::process::Command::new(&exe);
    cmd.arg0(arg0)
        .args(args)
        .envs(env.iter().copied())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let child = kubelet_drift_tests::spawn_retrying_busy(&mut cmd).unwrap();
    kubelet_drift::output::testutil::wait_for_exec(child.id(), &exe);
    Standin { _dir: dir, child }
}

#[test]
fn live_standins_are_found_and_evaluated_as_their_distribution() {
    use kubelet_drift::kubelet::discovery::{default_names, read_kubelet};
    use kubelet_drift::kubelet::node::evaluate_process;
    let names = default_names();
    // k3s with its rewritten title (one argument): found; its kubelet is evaluated as k3s's
    let k3s = standin("k3s", "/usr/local/bin/k3s server", &[], &[]);
    let p = read_kubelet(k3s.child.id(), &names)
        .unwrap()
        .expect("k3s is a kubelet host");
    let f = evaluate_process(&p, Default::default(), false);
    assert_ne!(f.status, Status::Pass, "{f:#?}");
    assert!(f.reason.contains("k3s"), "{}", f.reason);
    assert!(!f.reason.contains("positional"), "{}", f.reason);
    // `k3s kubectl` shares the executable: not a kubelet
    let kubectl = standin("k3s", "kubectl", &["get", "pods"], &[]);
    assert!(read_kubelet(kubectl.child.id(), &names).unwrap().is_none());
    // RKE2's supervisor hosts no kubelet
    let rke2 = standin("rke2", "/usr/local/bin/rke2", &["server"], &[]);
    assert!(read_kubelet(rke2.child.id(), &names).unwrap().is_none());
    // kubelite: its args file and its environment
    let d = tempfile::tempdir().unwrap();
    let args = d.path().join("args/kubelet");
    std::fs::create_dir_all(args.parent().unwrap()).unwrap();
    std::fs::write(&args, "--v=2\n--make-iptables-util-chains=${FLAG}\n").unwrap();
    let flag = format!("--kubelet-args-file={}", args.display());
    let kl = standin(
        "kubelite",
        "/snap/microk8s/1/kubelite",
        &[&flag],
        &[("FLAG", "false")],
    );
    let p = read_kubelet(kl.child.id(), &names)
        .unwrap()
        .expect("kubelite is a kubelet host");
    let f = evaluate_process(&p, Default::default(), false);
    assert_eq!(f.status, Status::Fail, "{f:#?}");
    assert_eq!(
        f.source,
        Source::ConfigFile {
            path: args.clone(),
            line: Some(2)
        }
    );
    assert!(
        f.remediation
            .contains("snap restart microk8s.daemon-kubelite"),
        "{}",
        f.remediation
    );
    // an old Go `hyperkube kubelet …`: the wrapper is stripped
    let hk = standin(
        "hyperkube",
        "/usr/bin/hyperkube",
        &["kubelet", "--make-iptables-util-chains=false"],
        &[],
    );
    let p = read_kubelet(hk.child.id(), &names)
        .unwrap()
        .expect("hyperkube kubelet");
    let f = evaluate_process(&p, Default::default(), false);
    assert_eq!(f.status, Status::Fail, "{f:#?}");
    assert!(f.reason.contains("was stripped"), "{}", f.reason);
}

//! Assembly of real layouts (kubeadm, kind, EKS, kubespray), unit search and drop-in order,
//! masking and unreadable files.

use std::path::{Path, PathBuf};

use super::testkit::{BASE, argv, corpus, link, node, words};
use super::{UnitErrorKind, assemble};

#[test]
fn kubeadm_deb_layout() {
    let (dir, fs) = node(&[
        (
            "/lib/systemd/system/kubelet.service",
            &corpus("kubernetes-release/kubelet.service"),
        ),
        (
            "/etc/systemd/system/kubelet.service.d/10-kubeadm.conf",
            &corpus("kubernetes-release/10-kubeadm.conf"),
        ),
        (
            "/var/lib/kubelet/kubeadm-flags.env",
            &corpus("kubeadm-generated/salpadding-kubeadm-flags.env"),
        ),
        (
            "/var/lib/kubelet/config.yaml",
            "kind: KubeletConfiguration\n",
        ),
    ]);
    let u = assemble(&fs, "kubelet.service").unwrap();
    assert_eq!(
        u.argv,
        words(&[
            "/usr/bin/kubelet",
            "--bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf",
            "--kubeconfig=/etc/kubernetes/kubelet.conf",
            "--config=/var/lib/kubelet/config.yaml",
            "--container-runtime-endpoint=unix:///var/run/crio/crio.sock",
            "--v=8",
        ])
    );
    assert_eq!(
        u.unit_path,
        Path::new("/lib/systemd/system/kubelet.service")
    );
    assert_eq!(
        u.exec_start_from,
        Path::new("/etc/systemd/system/kubelet.service.d/10-kubeadm.conf")
    );
    assert_eq!(u.exec_start_line, 11);
    let root = dir.path();
    // every file read or looked for, and the directories
    for p in [
        "etc/systemd/system/kubelet.service",
        "lib/systemd/system/kubelet.service",
        "etc/systemd/system/kubelet.service.d/10-kubeadm.conf",
        "var/lib/kubelet/kubeadm-flags.env",
        "etc/sysconfig/kubelet",
    ] {
        assert!(
            u.inputs.contains(&root.join(p)),
            "{p} not in {:?}",
            u.inputs
        );
    }
    for p in [
        "etc/systemd/system/kubelet.service.d",
        "usr/lib/systemd/system/kubelet.service.d",
        "etc/systemd/system/service.d",
        "lib/systemd/system",
    ] {
        assert!(
            u.input_dirs.contains(&root.join(p)),
            "{p} not in {:?}",
            u.input_dirs
        );
    }
    assert!(
        u.notes
            .iter()
            .any(|n| n.contains("$KUBELET_EXTRA_ARGS is not set"))
    );
}

#[test]
fn kind_layout_env_without_trailing_newline() {
    let (_d, fs) = node(&[
        (
            "/etc/systemd/system/kubelet.service",
            &corpus("kind/kubelet.service"),
        ),
        (
            "/etc/systemd/system/kubelet.service.d/10-kubeadm.conf",
            &corpus("kind/10-kubeadm.conf"),
        ),
        (
            "/etc/systemd/system/kubelet.service.d/11-kind.conf",
            &corpus("kind/11-kind.conf"),
        ),
        ("/etc/default/kubelet", &corpus("kind/etc-default-kubelet")),
        (
            "/var/lib/kubelet/kubeadm-flags.env",
            &corpus("kubeadm-generated/coderdba-kubeadm-flags.env"),
        ),
    ]);
    let a = argv(&fs);
    assert_eq!(a[0], "/usr/bin/kubelet");
    assert_eq!(a[3], "--config=/var/lib/kubelet/config.yaml");
    // '' inside the double-quoted env value: quotes removed when $VAR is split
    assert!(
        a.contains(&"--enforce-node-allocatable=".to_string()),
        "{a:?}"
    );
    assert_eq!(
        a.last().unwrap(),
        "--runtime-cgroups=/system.slice/containerd.service"
    );
    assert_eq!(a.len(), 3 + 1 + 5 + 1);
}

#[test]
fn eks_al2_space_separated_config_and_dropins() {
    let (_d, fs) = node(&[
        (
            "/etc/systemd/system/kubelet.service",
            &corpus("amazon-eks-ami/al2-kubelet-containerd.service"),
        ),
        (
            "/etc/systemd/system/kubelet.service.d/10-kubelet-args.conf",
            "[Service]\nEnvironment='KUBELET_ARGS=--node-ip=10.0.0.1 --pod-infra-container-image=602401143452.dkr.ecr.us-west-2.amazonaws.com/eks/pause:3.5 --v=2'\n",
        ),
        (
            "/etc/systemd/system/kubelet.service.d/30-kubelet-extra-args.conf",
            "[Service]\nEnvironment='KUBELET_EXTRA_ARGS=--make-iptables-util-chains=false'\n",
        ),
    ]);
    let u = assemble(&fs, "kubelet.service").unwrap();
    assert_eq!(
        &u.argv[1..3],
        &words(&["--config", "/etc/kubernetes/kubelet/kubelet-config.json"])
    );
    assert_eq!(u.argv.last().unwrap(), "--make-iptables-util-chains=false");
    assert_eq!(u.argv.len(), 1 + 10 + 3 + 1);
    assert_eq!(u.exec_start_line, 10);
}

#[test]
fn eks_al2023_required_environment_file() {
    let unit = corpus("amazon-eks-ami/al2023-kubelet.service");
    let (_d, fs) = node(&[("/etc/systemd/system/kubelet.service", &unit)]);
    let e = assemble(&fs, "kubelet.service").unwrap_err();
    assert_eq!(e.kind, UnitErrorKind::EnvironmentFileMissing);
    assert_eq!(e.line, Some(9));
    assert!(
        e.inputs
            .iter()
            .any(|p| p.ends_with("etc/eks/kubelet/environment"))
    );
    let (_d, fs) = node(&[
        ("/etc/systemd/system/kubelet.service", &unit),
        (
            "/etc/eks/kubelet/environment",
            "NODEADM_KUBELET_ARGS=\"--node-ip=10.0.0.2 --config=/etc/kubernetes/kubelet/config.json --config-dir=/etc/kubernetes/kubelet/config.json.d\"\n",
        ),
    ]);
    assert_eq!(
        argv(&fs),
        words(&[
            "/usr/bin/kubelet",
            "--node-ip=10.0.0.2",
            "--config=/etc/kubernetes/kubelet/config.json",
            "--config-dir=/etc/kubernetes/kubelet/config.json.d"
        ])
    );
}

#[test]
fn dropin_with_a_non_utf8_name_is_an_error() {
    use std::os::unix::ffi::OsStrExt;
    let (d, fs) = node(&[(
        "/lib/systemd/system/kubelet.service",
        "[Service]\nExecStart=/usr/bin/kubelet\n",
    )]);
    let dir = d.path().join("etc/systemd/system/kubelet.service.d");
    std::fs::create_dir_all(&dir).unwrap();
    let name = std::ffi::OsStr::from_bytes(b"20-\xff.conf");
    std::fs::write(
        dir.join(name),
        "[Service]\nExecStart=\nExecStart=/usr/bin/kubelet --make-iptables-util-chains=false\n",
    )
    .unwrap();
    let e = assemble(&fs, "kubelet.service").unwrap_err();
    assert_eq!(e.kind, UnitErrorKind::Unsupported, "{e:?}");
}

#[test]
fn kubespray_rendered_tab_continuations() {
    // The env file kubespray's kubelet.env.v1beta1.j2 renders for a worker (values chosen here):
    // a double-quoted value continued with `\` + newline.
    let env = "KUBE_LOG_LEVEL=\"--v=2\"\nKUBELET_ADDRESS=\"--node-ip=10.0.0.5\"\n\n\
        KUBELET_ARGS=\"--bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf \\\n\
        --config=/etc/kubernetes/kubelet-config.yaml \\\n\
        --kubeconfig=/etc/kubernetes/kubelet.conf \\\n\
        --runtime-cgroups=/system.slice/containerd.service \\\n\
        \x20--node-labels=role=worker --make-iptables-util-chains=false\"\n\
        KUBELET_CLOUDPROVIDER=\"\"\n\n\
        PATH=/usr/local/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n";
    let (_d, fs) = node(&[
        ("/etc/systemd/system/kubelet.service", &kubespray_unit()),
        ("/etc/kubernetes/kubelet.env", env),
    ]);
    assert_eq!(
        argv(&fs),
        words(&[
            "/usr/local/bin/kubelet",
            "--v=2",
            "--node-ip=10.0.0.5",
            "--bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf",
            "--config=/etc/kubernetes/kubelet-config.yaml",
            "--kubeconfig=/etc/kubernetes/kubelet.conf",
            "--runtime-cgroups=/system.slice/containerd.service",
            "--node-labels=role=worker",
            "--make-iptables-util-chains=false",
        ])
    );
}

/// kubespray's kubelet.service.j2 rendered as a node gets it (`bin_dir` /usr/local/bin,
/// `kube_config_dir` /etc/kubernetes): its `EnvironmentFile=` and its `ExecStart=` with the tab
/// continuations, taken from the template itself.
fn kubespray_unit() -> String {
    let template = corpus("kubespray/kubelet.service.j2");
    let mut unit = String::from("[Service]\n");
    let mut continued = false;
    for l in template.lines() {
        if continued || l.starts_with("EnvironmentFile=") || l.starts_with("ExecStart=") {
            unit.push_str(
                &l.replace("{{ kube_config_dir }}", "/etc/kubernetes")
                    .replace("{{ bin_dir }}", "/usr/local/bin"),
            );
            unit.push('\n');
            continued = l.ends_with('\\');
        }
    }
    assert!(!unit.contains("{{"), "{unit}");
    assert!(unit.contains("\t\t$KUBELET_ARGS \\\n"), "{unit}");
    unit
}

#[test]
fn masked_unit_and_search_order() {
    let (d, fs) = node(&[
        ("/lib/systemd/system/kubelet.service", BASE),
        (
            "/usr/lib/systemd/system/kubelet.service",
            "[Service]\nExecStart=/opt/k\n",
        ),
    ]);
    assert_eq!(argv(&fs), words(&["/opt/k"]));
    link(&d, "/etc/systemd/system/kubelet.service", "/dev/null");
    assert_eq!(
        assemble(&fs, "kubelet.service").unwrap_err().kind,
        UnitErrorKind::Masked
    );
    // an empty unit file masks too
    let (_d, fs) = node(&[
        ("/etc/systemd/system/kubelet.service", ""),
        ("/lib/systemd/system/kubelet.service", BASE),
    ]);
    assert_eq!(
        assemble(&fs, "kubelet.service").unwrap_err().kind,
        UnitErrorKind::Masked
    );
    // a symlinked unit is followed inside the root
    let (d, fs) = node(&[(
        "/opt/units/kubelet.service",
        "[Service]\nExecStart=/opt/k2\n",
    )]);
    link(
        &d,
        "/etc/systemd/system/kubelet.service",
        "../../../opt/units/kubelet.service",
    );
    assert_eq!(argv(&fs), words(&["/opt/k2"]));
    let (_d, fs) = node(&[]);
    assert_eq!(
        assemble(&fs, "kubelet.service").unwrap_err().kind,
        UnitErrorKind::NotFound
    );
}

#[test]
fn dropin_masking_and_order() {
    let low = "[Service]\nExecStart=\nExecStart=/usr/bin/kubelet --low\n";
    let high = "[Service]\nExecStart=\nExecStart=/usr/bin/kubelet --high $X\n";
    let (d, fs) = node(&[
        ("/lib/systemd/system/kubelet.service", BASE),
        ("/usr/lib/systemd/system/kubelet.service.d/10-a.conf", low),
        ("/etc/systemd/system/kubelet.service.d/10-a.conf", high),
        (
            "/usr/lib/systemd/system/kubelet.service.d/20-b.conf",
            "[Service]\nEnvironment=X=from-b\n",
        ),
        (
            "/run/systemd/system/kubelet.service.d/05-c.conf",
            "[Service]\nEnvironment=X=from-c\n",
        ),
    ]);
    let u = assemble(&fs, "kubelet.service").unwrap();
    // 05-c, 10-a (/etc masks /usr/lib), 20-b: sorted by name across directories
    assert_eq!(u.argv, words(&["/usr/bin/kubelet", "--high", "from-b"]));
    assert_eq!(
        u.dropins,
        vec![
            PathBuf::from("/run/systemd/system/kubelet.service.d/05-c.conf"),
            PathBuf::from("/etc/systemd/system/kubelet.service.d/10-a.conf"),
            PathBuf::from("/usr/lib/systemd/system/kubelet.service.d/20-b.conf"),
        ]
    );
    // a drop-in linked to /dev/null masks the same name in lower-priority directories
    std::fs::remove_file(
        d.path()
            .join("etc/systemd/system/kubelet.service.d/10-a.conf"),
    )
    .unwrap();
    link(
        &d,
        "/etc/systemd/system/kubelet.service.d/10-a.conf",
        "/dev/null",
    );
    assert_eq!(argv(&fs), words(&["/usr/bin/kubelet"]));
    // a dangling drop-in symlink: refused, not guessed
    link(
        &d,
        "/etc/systemd/system/kubelet.service.d/30-x.conf",
        "/nowhere.conf",
    );
    assert_eq!(
        assemble(&fs, "kubelet.service").unwrap_err().kind,
        UnitErrorKind::Unsupported
    );
}

#[test]
fn top_level_service_d() {
    let (d, fs) = node(&[
        (
            "/lib/systemd/system/kubelet.service",
            "[Service]\nExecStart=/usr/bin/kubelet $X\n",
        ),
        (
            "/etc/systemd/system/service.d/50-x.conf",
            "[Service]\nEnvironment=X=top\n",
        ),
    ]);
    assert_eq!(argv(&fs), words(&["/usr/bin/kubelet", "top"]));
    // the unit's own drop-in of the same name (even in a lower-priority dir) masks it
    std::fs::create_dir_all(d.path().join("usr/lib/systemd/system/kubelet.service.d")).unwrap();
    std::fs::write(
        d.path()
            .join("usr/lib/systemd/system/kubelet.service.d/50-x.conf"),
        "[Service]\nEnvironment=X=own\n",
    )
    .unwrap();
    assert_eq!(argv(&fs), words(&["/usr/bin/kubelet", "own"]));
}

#[test]
fn unreadable_unit_files() {
    let (d, fs) = node(&[]);
    std::fs::create_dir_all(d.path().join("etc/systemd/system/kubelet.service")).unwrap();
    assert_eq!(
        assemble(&fs, "kubelet.service").unwrap_err().kind,
        UnitErrorKind::Unreadable
    );
    let (d, fs) = node(&[]);
    link(&d, "/etc/systemd/system/kubelet.service", "kubelet.service");
    assert_eq!(
        assemble(&fs, "kubelet.service").unwrap_err().kind,
        UnitErrorKind::Unreadable
    );
    // a symlink escaping the root stays inside it
    let (d, fs) = node(&[]);
    link(
        &d,
        "/etc/systemd/system/kubelet.service",
        "../../../../../../../../etc/passwd",
    );
    assert_eq!(
        assemble(&fs, "kubelet.service").unwrap_err().kind,
        UnitErrorKind::NotFound
    );
}

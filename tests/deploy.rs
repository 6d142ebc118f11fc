//! The files in deploy/ as a packager or a cluster admin takes them: the systemd unit passes
//! systemd's own checks and hardening threshold; the DaemonSet has the shape the daemon
//! needs, and its ConfigMap is a valid settings file.

use std::path::{Path, PathBuf};

use kubelet_drift::settings;
use serde_json::Value;

fn deploy(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../deploy")
        .join(name)
}

/// The unit's hardening and syntax (systemd-analyze comes with systemd, which
/// `cargo xtask test` installs when missing: without it this test fails, not skips).
#[test]
fn systemd_unit_is_hardened_and_valid() {
    use std::process::Command;
    let unit = deploy("kubelet-drift.service");
    assert!(
        Command::new("systemd-analyze")
            .arg("--version")
            .output()
            .is_ok(),
        "systemd-analyze is needed to check the unit (apt-get install systemd)"
    );
    // bpf (in @privileged) and perf_event_open (in @debug) must survive the deny line:
    // the last SystemCallFilter= line adds them back.
    let text = std::fs::read_to_string(&unit).unwrap();
    let last = text
        .lines()
        .rfind(|l| l.starts_with("SystemCallFilter="))
        .unwrap();
    assert!(
        !last.contains('~') && last.contains("bpf") && last.contains("perf_event_open"),
        "{last}"
    );
    // Exposure is checked on systemd's 0-100 scale: 15 is the printed 1.5.
    let out = Command::new("systemd-analyze")
        .args(["security", "--offline=true", "--threshold=15", "--no-pager"])
        .arg(&unit)
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    let last = report
        .lines()
        .rev()
        .find(|l| l.contains("Overall exposure"))
        .unwrap_or("");
    assert!(out.status.success(), "exposure above 1.5: {last}\n{report}");
    // verify: in a scratch root holding the unit, systemd's own units, a stand-in
    // /usr/bin/kubelet-drift and /bin/kill (verify insists that ExecStart= and ExecReload=
    // exist). verify exits 0 on settings it ignores, so any diagnostic at all fails the test.
    // The man pages of Documentation= are the package's (generated at packaging time), so
    // verify does not look them up here (--man=no).
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    std::fs::create_dir_all(r.join("usr/bin")).unwrap();
    std::fs::create_dir_all(r.join("etc/systemd/system")).unwrap();
    std::fs::create_dir_all(r.join("lib/systemd")).unwrap();
    std::fs::copy("/bin/true", r.join("usr/bin/kubelet-drift")).unwrap();
    std::fs::create_dir_all(r.join("bin")).unwrap();
    std::fs::copy("/bin/true", r.join("bin/kill")).unwrap();
    std::fs::copy(&unit, r.join("etc/systemd/system/kubelet-drift.service")).unwrap();
    let cp = Command::new("cp")
        .args(["-r", "/lib/systemd/system"])
        .arg(r.join("lib/systemd/"))
        .status()
        .unwrap();
    assert!(cp.success());
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg("--man=no")
        .arg(format!("--root={}", r.display()))
        .arg("kubelet-drift.service")
        .output()
        .unwrap();
    let diag = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && diag.trim().is_empty(),
        "verify: {diag}"
    );
}

#[test]
fn daemonset_has_the_right_shape() {
    let text = std::fs::read_to_string(deploy("daemonset.yaml")).unwrap();
    let docs: Vec<Value> = serde_saphyr::from_multiple(&text).unwrap();
    let kind = |k: &str| {
        docs.iter()
            .find(|d| d["kind"] == k)
            .unwrap_or_else(|| panic!("no {k}"))
    };
    let ds = kind("DaemonSet");
    let ns = ds["metadata"]["namespace"].as_str().unwrap();
    assert_eq!(kind("Namespace")["metadata"]["name"], ns);
    let pod = &ds["spec"]["template"]["spec"];
    assert_eq!(pod["hostPID"], true);
    assert_ne!(pod["hostNetwork"], true);
    assert_eq!(
        ds["spec"]["selector"]["matchLabels"],
        ds["spec"]["template"]["metadata"]["labels"]
    );
    let c = &pod["containers"][0];
    let cmd: Vec<&str> = c["command"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(cmd.last(), Some(&"run"));
    let env = c["env"].as_array().unwrap();
    let node = env.iter().find(|e| e["name"] == "NODE_NAME").unwrap();
    assert_eq!(node["valueFrom"]["fieldRef"]["fieldPath"], "spec.nodeName");
    let sc = &c["securityContext"];
    assert_eq!(sc["privileged"], false);
    assert_eq!(sc["allowPrivilegeEscalation"], false);
    assert_eq!(sc["readOnlyRootFilesystem"], true);
    assert_eq!(sc["runAsUser"], 0);
    assert_eq!(sc["capabilities"]["drop"][0], "ALL");
    let add: Vec<&str> = sc["capabilities"]["add"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(add, ["BPF", "PERFMON", "SYS_PTRACE", "DAC_READ_SEARCH"]);
    assert!(sc["seccompProfile"]["type"].is_string());
    for k in ["cpu", "memory"] {
        assert!(c["resources"]["requests"][k].is_string());
    }
    // Every mount is read-only except journald's socket directory and the findings' state.
    let volumes = pod["volumes"].as_array().unwrap();
    for m in c["volumeMounts"].as_array().unwrap() {
        let name = m["name"].as_str().unwrap();
        assert!(volumes.iter().any(|v| v["name"] == name), "{name}");
        let ro = m["readOnly"] == true;
        let written = ["/run/systemd/journal", "/var/lib/kubelet-drift"];
        assert_eq!(
            ro,
            !written.contains(&m["mountPath"].as_str().unwrap()),
            "{name}"
        );
    }
    // The probes and the metrics port agree with the settings the ConfigMap gives.
    assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(c["startupProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(c["ports"][0]["containerPort"], 9761);
    // system-node-critical is refused outside kube-system (GKE): a class of its own.
    let pc = pod["priorityClassName"].as_str().unwrap();
    assert_ne!(pc, "system-node-critical");
    assert_eq!(kind("PriorityClass")["metadata"]["name"], pc);
    assert_eq!(sc["seccompProfile"]["type"], "RuntimeDefault");
    assert_eq!(sc["appArmorProfile"]["type"], "Unconfined");
    let host = volumes.iter().find(|v| v["name"] == "host-root").unwrap();
    assert_eq!(host["hostPath"]["path"], "/");
    // The ConfigMap is a valid settings file that points host_root at the mount.
    let cfg = kind("ConfigMap")["data"]["config.yaml"].as_str().unwrap();
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), cfg).unwrap();
    let s = settings::load(Some(file.path())).unwrap();
    assert_eq!(s.host_root, Path::new("/host"));
    assert_eq!(s.metrics.listen.as_deref(), Some("0.0.0.0:9761"));
    let mounted = c["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "config")
        .unwrap();
    assert_eq!(
        Path::new(mounted["mountPath"].as_str().unwrap()).join("config.yaml"),
        Path::new(settings::DEFAULT_PATH)
    );
}

//! `kubelet-drift check`'s contract with scripts, on the built binary: exit codes (0 pass,
//! 1 fail, 2 error finding, 64 usage error), the JSON report's node/time/benchmark/version,
//! OCSF lines, and arguments that are not UTF-8. No eBPF: needs no root, but the node
//! images are built by the daemon harness.

use kubelet_drift_tests::daemon as harness;

use std::{
    ffi::OsStr,
    fs,
    os::unix::ffi::OsStrExt,
    process::{Command, Output},
};

use harness::{Node, config_text, daemon_exe};
use serde_json::Value;

fn check(args: &[&OsStr]) -> Output {
    Command::new(daemon_exe())
        .arg("check")
        .args(args)
        .env_remove("NODE_NAME")
        .output()
        .expect("running kubelet-drift check")
}

fn os(s: &str) -> &OsStr {
    OsStr::new(s)
}

fn code(o: &Output) -> i32 {
    o.status.code().expect("exited, not killed")
}

#[test]
fn usage_errors_exit_64_and_help_says_so() {
    for bad in [
        vec!["--bogus"],
        vec!["--format", "yaml"],
        vec!["--benchmark", "cis-9"],
        vec!["--root"],
    ] {
        let a: Vec<&OsStr> = bad.iter().map(|s| os(s)).collect();
        let o = check(&a);
        assert_eq!(code(&o), 64, "{bad:?}: {o:?}");
        assert!(o.stdout.is_empty(), "{bad:?}: nothing on stdout");
        assert!(!o.stderr.is_empty());
    }
    let o = Command::new(daemon_exe())
        .arg("no-such-command")
        .output()
        .unwrap();
    assert_eq!(code(&o), 64);
    let o = check(&[os("--help")]);
    assert_eq!(code(&o), 0);
    let help = String::from_utf8_lossy(&o.stdout);
    assert!(help.contains("64  usage error"), "{help}");
    assert!(
        help.contains("2   none fails, but at least one is an error"),
        "{help}"
    );
}

#[test]
fn verdicts_exit_0_1_2() {
    let node = Node::new();
    let root = node.root.as_os_str();
    let o = check(&[os("--root"), root]);
    assert_eq!(code(&o), 0, "{o:?}");
    // The distribution detected comes first, then the findings.
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.starts_with("distribution: "), "{out}");
    assert!(out.lines().any(|l| l.starts_with("[PASS] 4.2.7")), "{out}");
    fs::write(node.config(), config_text(false)).unwrap();
    let o = check(&[os("--root"), root]);
    assert_eq!(code(&o), 1, "{o:?}");
    fs::write(node.config(), "makeIPTablesUtilChains: [not a bool\n").unwrap();
    let o = check(&[os("--root"), root]);
    assert_eq!(code(&o), 2, "{o:?}");
    let empty = tempfile::tempdir().unwrap();
    let o = check(&[os("--root"), empty.path().as_os_str()]);
    assert_eq!(
        code(&o),
        2,
        "no kubelet, no unit: an error, not a pass: {o:?}"
    );
}

#[test]
fn json_and_ocsf_reports() {
    let node = Node::new();
    fs::write(node.config(), config_text(false)).unwrap();
    let root = node.root.as_os_str();
    let o = check(&[
        os("--root"),
        root,
        os("--format"),
        os("json"),
        os("--node-name"),
        os("worker-7"),
    ]);
    assert_eq!(code(&o), 1);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["node"], "worker-7");
    assert_eq!(v["tool"]["name"], "kubelet-drift");
    assert!(v["tool"]["version"].is_string());
    assert_eq!(v["benchmark"]["id"], "cis-1.6");
    assert_eq!(v["benchmark"]["control"], "4.2.7");
    assert!(v["time"].as_str().unwrap().ends_with('Z'));
    assert_eq!(v["findings"][0]["status"], "fail");

    // Without --node-name: NODE_NAME, then the hostname.
    let o = Command::new(daemon_exe())
        .args([os("check"), os("--root"), root, os("--format"), os("json")])
        .env("NODE_NAME", "from-env")
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["node"], "from-env");

    let o = check(&[os("--root"), root, os("--format"), os("ocsf")]);
    assert_eq!(code(&o), 1);
    let lines: Vec<Value> = o
        .stdout
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1);
    // A check has no actor (the harness expects one for ops other than baseline/rescan).
    let p: Vec<String> = harness::ocsf_problems(&lines[0])
        .into_iter()
        .filter(|p| !p.starts_with("actor."))
        .collect();
    assert!(lines[0].get("actor").is_none());
    assert!(p.is_empty(), "{p:?} in {}", lines[0]);
    assert_eq!(lines[0]["compliance"]["status"], "Fail");
    assert_eq!(lines[0]["unmapped"]["trigger"]["op"], "check");
}

#[test]
fn non_utf8_arguments_are_evaluated_not_refused() {
    let node = Node::new();
    fs::write(node.config(), config_text(false)).unwrap();
    let config = format!("--config={}", node.config().display());
    let o = Command::new(daemon_exe())
        .args([os("check"), os("--format"), os("json"), os("--")])
        .arg(&config)
        .arg(OsStr::from_bytes(b"--node-labels=zone=\xff"))
        .output()
        .unwrap();
    assert_eq!(code(&o), 1, "{o:?}");
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["findings"][0]["status"], "fail");
    assert_eq!(v["findings"][0]["non_utf8"], true);
    assert_eq!(
        v["findings"][0]["subject"]["argv"][2],
        "--node-labels=zone=\\xff"
    );
}

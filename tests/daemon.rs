//! `kubelet-drift run` as users see it: the real binary on a fake node root, stand-in
//! kubelets, real edits by real programs, and its OCSF JSON lines and journald entries read
//! back. Run as root.

use kubelet_drift_tests::daemon as harness;

use std::{
    ffi::OsStr,
    fs,
    os::unix::{ffi::OsStrExt, fs::PermissionsExt},
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

use harness::*;
use kubelet_drift_tests::journald::{self, Journald};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(10);

#[test]
fn baseline_reports_each_running_kubelet_and_the_after_restart_state() {
    let s = Scenario::start(Opts::tagged("base"), &[&[], &["--v=2"]]);
    let (d, bin, k1, k2) = (&s.daemon, &s.bin, &s.kubelets[0], &s.kubelets[1]);
    // The after-restart line comes after the running ones: the baseline is complete.
    let lines = d.lines();
    let base: Vec<&Value> = lines.iter().filter(|v| change(v) == "baseline").collect();
    assert_eq!(base.len(), 3, "{}", d.summary());
    for k in [&k1, &k2] {
        let v = base
            .iter()
            .find(|v| subject_pid(v) == Some(k.pid() as u64))
            .unwrap_or_else(|| panic!("no baseline for pid {}: {}", k.pid(), d.summary()));
        assert_eq!(kind(v), "running");
        assert_eq!(status(v), "Pass");
        assert_eq!(v["unmapped"]["subject"]["argv"], serde_json::json!(k.argv));
        assert_eq!(v["unmapped"]["subject"]["evaluated_late"], true);
        assert_eq!(v["activity_id"], 1);
        // The running kubelet itself is the actor, read from /proc while it runs.
        assert_eq!(actor_pid(v), Some(k.pid() as u64));
        assert_eq!(
            v["actor"]["process"]["file"]["path"],
            bin.exe.to_str().unwrap()
        );
    }
    let after: Vec<_> = base.iter().filter(|v| kind(v) == "after_restart").collect();
    assert_eq!(after.len(), 1);
    assert_eq!(status(after[0]), "Pass");
    assert_eq!(trigger_op(after[0]), "baseline");
    assert!(
        after[0]["unmapped"]["source"]
            .as_str()
            .unwrap()
            .starts_with("file:/var/lib/kubelet/config.yaml:"),
        "{}",
        after[0]
    );
    // Agreeing states: no pending drift.
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(d.lines().len(), 3, "{}", d.summary());
    assert_all_valid(d);
}

#[test]
fn sed_edit_is_detected_with_its_actor_and_resolved() {
    let mut s = Scenario::one_kubelet("sed");
    let (node, d) = (&s.node, &s.daemon);

    let sed1 = sed(TO_FALSE, &node.config());
    let v = d.wait_for("drift_detected by sed", WAIT, |v| {
        change(v) == "drift_detected" && actor_pid(v) == Some(sed1 as u64)
    });
    assert_eq!(kind(&v), "after_restart");
    assert_eq!(status(&v), "Fail");
    assert_eq!(v["severity_id"], 4);
    assert_eq!(actor_name(&v), "sed");
    assert_eq!(v["actor"]["process"]["user"]["uid"], "0");
    assert_eq!(
        v["actor"]["process"]["parent_process"]["pid"],
        std::process::id()
    );
    // sed renames its temporary file over the config: the config is the rename's target.
    assert_eq!(trigger_op(&v), "rename");
    assert_eq!(
        v["unmapped"]["trigger"]["path2"],
        node.config().to_str().unwrap()
    );
    assert_eq!(v["unmapped"]["effective"], "false");
    let rem = v["remediation"]["desc"].as_str().unwrap();
    assert!(rem.contains("makeIPTablesUtilChains: true"), "{rem}");
    assert!(
        v["message"].as_str().unwrap().contains("by sed (pid"),
        "{v}"
    );
    // The running kubelet still passes: pending drift.
    let p = d.wait_for("pending_drift_appeared", WAIT, |v| {
        change(v) == "pending_drift_appeared"
    });
    assert_eq!(status(&p), "Fail");
    assert!(
        !d.lines()
            .iter()
            .any(|v| kind(v) == "running" && change(v) != "baseline"),
        "the running kubelet did not change: {}",
        d.summary()
    );

    let sed2 = sed(TO_TRUE, &node.config());
    let v = d.wait_for("drift_resolved by sed", WAIT, |v| {
        change(v) == "drift_resolved" && actor_pid(v) == Some(sed2 as u64)
    });
    assert_eq!(status(&v), "Pass");
    // An Update: the finding is closed only when its subject is gone.
    assert_eq!(v["activity_id"], 2);
    assert_eq!(actor_name(&v), "sed");
    d.wait_for("pending_drift_cleared", WAIT, |v| {
        change(v) == "pending_drift_cleared"
    });
    s.kubelets.clear();
    assert_all_valid(d);
}

/// The OCSF actor should name the writer's executable (`actor.process.file.path`), but `sed`
/// is gone before the daemon reads `/proc/<pid>/exe`, and the kernel's file events carry no
/// executable path.
#[test]
fn short_lived_writer_is_named_by_its_executable() {
    let s = Scenario::no_kubelet("sedexe");
    let (node, d) = (&s.node, &s.daemon);
    let pid = sed(TO_FALSE, &node.config());
    let v = d.wait_for("drift_detected by sed", WAIT, |v| {
        change(v) == "drift_detected" && actor_pid(v) == Some(pid as u64)
    });
    let p = ocsf_problems_with_exe(&v);
    assert!(p.is_empty(), "{p:?}");
    assert_eq!(v["actor"]["process"]["file"]["path"], "/usr/bin/sed");
}

#[test]
fn kubelet_restarted_with_a_false_flag_is_stopped_then_started_failing() {
    let mut s = Scenario::one_kubelet("restart");
    let (node, bin, d) = (&s.node, &s.bin, &s.daemon);
    let k1 = &mut s.kubelets[0];
    let old = k1.pid();
    k1.kill();
    let v = d.wait_for("kubelet_stopped", WAIT, |v| {
        change(v) == "kubelet_stopped" && subject_pid(v) == Some(old as u64)
    });
    assert_eq!(status(&v), "Pass", "its last known state");
    assert_eq!(v["activity_id"], 3);
    assert_eq!(v["status_id"], 99);
    assert_eq!(actor_pid(&v), Some(old as u64));
    assert_eq!(trigger_op(&v), "exit");
    // Gone from /proc by now, but the daemon knew its executable and argv.
    assert_eq!(
        v["actor"]["process"]["file"]["path"],
        bin.exe.to_str().unwrap()
    );
    assert_eq!(v["actor"]["process"]["name"], "kdt-restart");
    assert_eq!(
        v["actor"]["process"]["cmd_line"],
        format!("{} {}", bin.exe.display(), node.config_flag())
    );

    let k2 = bin.spawn(&[&node.config_flag(), "--make-iptables-util-chains=false"]);
    let v = d.wait_for("kubelet_started", WAIT, |v| {
        change(v) == "kubelet_started" && subject_pid(v) == Some(k2.pid() as u64)
    });
    assert_eq!(status(&v), "Fail");
    assert_eq!(kind(&v), "running");
    assert_eq!(v["unmapped"]["subject"]["argv"], serde_json::json!(k2.argv));
    assert_eq!(v["unmapped"]["subject"]["evaluated_late"], false);
    assert_eq!(
        v["unmapped"]["source"],
        "flag:argv[2]:--make-iptables-util-chains=false"
    );
    assert_eq!(actor_pid(&v), Some(k2.pid() as u64));
    assert_eq!(trigger_op(&v), "exec");
    assert_eq!(
        v["actor"]["process"]["cmd_line"],
        format!(
            "{} {} --make-iptables-util-chains=false",
            bin.exe.display(),
            node.config_flag()
        )
    );
    // The files say true: a restart would fix it, which is pending drift too.
    d.wait_for("pending_drift_appeared", WAIT, |v| {
        change(v) == "pending_drift_appeared"
    });
    drop(k2);
    assert_all_valid(d);
}

#[test]
fn unit_dropin_edit_fails_after_restart_and_is_pending_drift() {
    let mut s = Scenario::one_kubelet("dropin");
    let (node, d) = (&s.node, &s.daemon);
    let dropin = node.dropin_dir().join("20-x.conf");
    let writer = python(
        "import sys; open(sys.argv[1], 'w').write(sys.argv[2])",
        &[
            dropin.as_os_str(),
            OsStr::new(
                "[Service]\nEnvironment=\"KUBELET_EXTRA_ARGS=--make-iptables-util-chains=false\"\n",
            ),
        ],
    );
    let v = d.wait_for("drift_detected by the drop-in", WAIT, |v| {
        change(v) == "drift_detected" && kind(v) == "after_restart"
    });
    assert_eq!(status(&v), "Fail");
    assert_eq!(actor_pid(&v), Some(writer as u64));
    assert_eq!(v["unmapped"]["trigger"]["path"], dropin.to_str().unwrap());
    let argv = v["unmapped"]["subject"]["argv"].as_array().unwrap();
    assert!(
        argv.iter()
            .any(|a| a == "--make-iptables-util-chains=false"),
        "{v}"
    );
    let p = d.wait_for("pending_drift_appeared", WAIT, |v| {
        change(v) == "pending_drift_appeared"
    });
    assert_eq!(status(&p), "Fail", "after-restart fails");
    assert_eq!(p["unmapped"]["previous_status"], "pass", "running passes");
    s.kubelets.clear();
    assert_all_valid(d);
}

/// Fields of a journald entry that are not ours, journald's (`_*`, `__*`) or the standard
/// ones we send: there must be none (no value can forge a field).
fn foreign_fields(e: &journald::Entry) -> Vec<String> {
    e.keys()
        .filter(|k| {
            !k.starts_with('_')
                && !k.starts_with("KUBELET_DRIFT_")
                && !["MESSAGE", "PRIORITY", "SYSLOG_IDENTIFIER", "MESSAGE_ID"].contains(&k.as_str())
        })
        .cloned()
        .collect()
}

fn one(e: &journald::Entry, name: &str) -> Vec<u8> {
    let v = journald::field(e, name);
    assert_eq!(v.len(), 1, "{name} appears {} times in {e:?}", v.len());
    v.into_iter().next().unwrap()
}

/// A test journald, a fake node with a running stand-in kubelet, and the daemon writing to
/// both the journald and its JSON file.
fn daemon_with_journald(tag: &str) -> (Journald, Scenario) {
    require_root();
    let j = Journald::start().unwrap();
    let mut o = Opts::tagged(tag);
    o.journald = true;
    o.journal_dir = Some(Some(PathBuf::from(format!(
        "/run/systemd/journal.{}",
        j.namespace()
    ))));
    (j, Scenario::start(o, &[&[]]))
}

/// The journald match on this daemon's node.
fn node_field(d: &Daemon) -> String {
    format!("KUBELET_DRIFT_NODE={}", d.node_name)
}

/// This daemon's one drift_detected entry in the test journald.
fn drift_detected_entry(j: &Journald, d: &Daemon) -> journald::Entry {
    let mut e = j
        .wait_for(
            &[&node_field(d), "KUBELET_DRIFT_CHANGE=drift_detected"],
            1,
            WAIT,
        )
        .unwrap();
    assert_eq!(e.len(), 1, "{e:?}");
    e.remove(0)
}

#[test]
fn journald_entries_carry_the_documented_fields() {
    let (j, s) = daemon_with_journald("journal");
    let (node, d) = (&s.node, &s.daemon);
    let sed1 = sed(TO_FALSE, &node.config());
    d.wait_for("drift_detected", WAIT, |v| change(v) == "drift_detected");

    let node_match = node_field(d);
    let e = &drift_detected_entry(&j, d);
    let msg = String::from_utf8(one(e, "MESSAGE")).unwrap();
    assert!(msg.starts_with("CIS 4.2.7 drift detected: kubelet after a restart would run with makeIPTablesUtilChains=false"), "{msg}");
    assert!(msg.contains(&format!("by sed (pid {sed1}, ppid ")), "{msg}");
    assert_eq!(one(e, "PRIORITY"), b"3");
    assert_eq!(one(e, "SYSLOG_IDENTIFIER"), b"kubelet-drift");
    assert_eq!(one(e, "MESSAGE_ID"), b"541a3c8fe1c0426da2cc6dc14e2a023a");
    assert_eq!(one(e, "KUBELET_DRIFT_CONTROL"), b"4.2.7");
    assert_eq!(one(e, "KUBELET_DRIFT_STATUS"), b"fail");
    assert_eq!(one(e, "KUBELET_DRIFT_PREVIOUS_STATUS"), b"pass");
    assert_eq!(one(e, "KUBELET_DRIFT_SUBJECT"), b"after_restart");
    assert_eq!(one(e, "KUBELET_DRIFT_ACTOR_COMM"), b"sed");
    assert_eq!(
        one(e, "KUBELET_DRIFT_ACTOR_PID"),
        sed1.to_string().as_bytes()
    );
    assert_eq!(one(e, "KUBELET_DRIFT_ACTOR_UID"), b"0");
    assert_eq!(one(e, "KUBELET_DRIFT_NODE"), d.node_name.as_bytes());
    assert_eq!(
        one(e, "KUBELET_DRIFT_TRIGGER_PATH2"),
        node.config().as_os_str().as_bytes()
    );
    assert!(foreign_fields(e).is_empty(), "{:?}", foreign_fields(e));

    // The baseline is there too, at info priority; and every entry is ours and well formed.
    let all = j.entries(&[&node_match]).unwrap();
    let base: Vec<_> = all
        .iter()
        .filter(|e| journald::field(e, "KUBELET_DRIFT_CHANGE") == vec![b"baseline".to_vec()])
        .collect();
    assert_eq!(base.len(), 2, "{all:?}");
    for e in &base {
        assert_eq!(one(e, "PRIORITY"), b"6");
        assert_eq!(one(e, "MESSAGE_ID"), b"57f0334aef3b4015ad817e6892b639a0");
    }
    // One journald entry per JSON line.
    assert_eq!(all.len(), d.lines().len(), "{all:?}\n{}", d.summary());
}

#[test]
fn help_mentions_the_key_options() {
    let exe = daemon_exe();
    let help = |args: &[&str]| {
        let out = Command::new(exe).args(args).output().unwrap();
        assert!(out.status.success(), "{args:?}: {}", out.status);
        String::from_utf8(out.stdout).unwrap()
    };
    let top = help(&["--help"]);
    for w in ["run", "check", "events", "4.2.7", "makeIPTablesUtilChains"] {
        assert!(top.contains(w), "--help lacks {w}:\n{top}");
    }
    let run = help(&["run", "--help"]);
    for w in [
        "--config",
        "--json-out",
        "--journald",
        "--text",
        "--rescan-interval",
        "--host-root",
        "--kubelet-name",
        "--ring-bytes",
        "--watch",
        "--node-name",
        "journald",
        "OCSF",
    ] {
        assert!(run.contains(w), "run --help lacks {w}:\n{run}");
    }
    let check = help(&["check", "--help"]);
    for w in ["--root", "--format", "--benchmark", "--kubelet-name"] {
        assert!(check.contains(w), "check --help lacks {w}:\n{check}");
    }
    assert!(
        help(&["--version"]).contains(env!("CARGO_PKG_VERSION")),
        "--version"
    );
}

/// An executable shell script named `name` (any bytes but `/`): `NAME FILE TEXT` writes TEXT
/// to FILE with the shell's own redirection, so the writing process's comm is `name`.
fn writer_named(dir: &Path, name: &[u8]) -> PathBuf {
    let p = dir.join(OsStr::from_bytes(name));
    fs::write(&p, "#!/bin/sh\nprintf '%s' \"$2\" > \"$1\"\n").unwrap();
    fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
    p
}

#[test]
fn hostile_comm_and_paths_are_escaped_in_json_and_journald() {
    let (j, s) = daemon_with_journald("hostile");
    let (node, d) = (&s.node, &s.daemon);

    // A writer whose comm (15 bytes) holds an escape sequence, invalid UTF-8, a newline and
    // a would-be journald field.
    let comm: &[u8] = b"\x1b[J\xff\nPRIORITY=0";
    assert_eq!(comm.len(), 15);
    let tools = tempfile::tempdir().unwrap();
    let w = writer_named(tools.path(), comm);
    // A drop-in whose name holds the same kinds of bytes, and a right-to-left override. (Valid
    // UTF-8: a drop-in name that is not makes the after-restart state an error, not a fail.)
    let dropin_name: &[u8] = "x\nPRIORITY=0\n\x1b[31m\u{202e}=1.conf".as_bytes();
    let dropin = node.dropin_dir().join(OsStr::from_bytes(dropin_name));
    let pid = run(Command::new(&w)
        .arg(&dropin)
        .arg("[Service]\nEnvironment=\"KUBELET_EXTRA_ARGS=--make-iptables-util-chains=false\"\n"));
    let v = d.wait_for("drift_detected by the hostile writer", WAIT, |v| {
        change(v) == "drift_detected" && actor_pid(v) == Some(pid as u64)
    });
    let lossy_comm = String::from_utf8_lossy(comm).into_owned();
    let lossy_path = dropin.to_string_lossy().into_owned();
    assert_eq!(actor_name(&v), lossy_comm);
    assert_eq!(v["unmapped"]["trigger"]["path"], lossy_path.as_str());
    // The JSON file: one object per line, every line valid (lines() panics otherwise), and no
    // raw control byte anywhere in it.
    let raw = fs::read(&d.json).unwrap();
    assert!(
        raw.iter().all(|&b| b == b'\n' || !b.is_ascii_control()),
        "raw control bytes in the JSON lines"
    );
    // One object per line, counted in the same read (the daemon may append meanwhile).
    let objects = raw
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice::<Value>(l).expect("a JSON line"))
        .inspect(|v| assert!(v.is_object(), "not an object: {v}"))
        .count();
    assert_eq!(raw.iter().filter(|&&b| b == b'\n').count(), objects);
    assert_all_valid(d);

    let node_match = node_field(d);
    let e = &drift_detected_entry(&j, d);
    assert_eq!(one(e, "PRIORITY"), b"3", "no forged priority");
    assert_eq!(one(e, "KUBELET_DRIFT_STATUS"), b"fail");
    assert_eq!(one(e, "KUBELET_DRIFT_ACTOR_COMM"), lossy_comm.as_bytes());
    assert_eq!(one(e, "KUBELET_DRIFT_TRIGGER_PATH"), lossy_path.as_bytes());
    assert!(foreign_fields(e).is_empty(), "{:?}", foreign_fields(e));
    let msg = one(e, "MESSAGE");
    assert!(
        !msg.iter().any(|b| b.is_ascii_control()),
        "control bytes in MESSAGE: {}",
        String::from_utf8_lossy(&msg)
    );
    let msg = String::from_utf8(msg).unwrap();
    assert!(msg.contains(r" by \x1b[J"), "{msg}");
    // Every entry of this daemon: one PRIORITY, no foreign field.
    for e in j.entries(&[&node_match]).unwrap() {
        assert_eq!(journald::field(&e, "PRIORITY").len(), 1, "{e:?}");
        assert!(foreign_fields(&e).is_empty(), "{e:?}");
    }
}

/// Two writers in quick succession: each change is named for the writer that made it, even
/// when the second write lands while the daemon is still busy with the first.
#[test]
fn back_to_back_edits_are_each_named_for_their_writer() {
    let s = Scenario::no_kubelet("b2b");
    let (node, d) = (&s.node, &s.daemon);
    for _ in 0..5 {
        let s1 = sed(TO_FALSE, &node.config());
        d.wait_for("drift_detected", WAIT, |v| {
            change(v) == "drift_detected" && actor_pid(v) == Some(s1 as u64)
        });
        let s2 = sed(TO_TRUE, &node.config());
        let v = d.wait_for("drift_resolved", WAIT, |v| {
            change(v) == "drift_resolved" && trigger_op(v) == "rename" && {
                let a = actor_pid(v).unwrap_or(0);
                a == s1 as u64 || a == s2 as u64
            }
        });
        assert_eq!(
            actor_pid(&v),
            Some(s2 as u64),
            "the second sed's change named for the first:\n{}",
            d.summary()
        );
    }
    assert_all_valid(d);
}

/// GET `path` from the daemon's metrics endpoint: (status line, body).
fn http_get(addr: &str, path: &str) -> (String, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).expect("the metrics endpoint listens");
    s.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let (head, body) = out.split_once("\r\n\r\n").unwrap_or((&out, ""));
    (
        head.lines().next().unwrap_or("").to_string(),
        body.to_string(),
    )
}

#[test]
fn metrics_and_health_are_served_and_follow_the_verdict() {
    // A port of its own per test process (the tests of this file run in parallel).
    let addr = format!("127.0.0.1:{}", 20000 + std::process::id() % 20000);
    let mut o = Opts::tagged("metrics");
    o.args
        .extend(["--metrics-listen".to_string(), addr.clone()]);
    let s = Scenario::start(o, &[]);
    let (node, d) = (&s.node, &s.daemon);
    // Ready once the baseline is out (the line and the readiness are set a moment apart).
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let (status_line, body) = loop {
        let r = http_get(&addr, "/healthz");
        if r.0.contains(" 200") || std::time::Instant::now() > deadline {
            break r;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status_line.contains(" 200"), "{status_line} {body}");
    assert_eq!(body, "ok\n");
    let (_, m) = http_get(&addr, "/metrics");
    assert!(
        m.contains(r#"kubelet_drift_finding_status{control="4.2.7",subject="after_restart",status="pass"} 1"#),
        "{m}"
    );
    assert!(
        m.contains("kubelet_drift_reports_total{change=\"baseline\"}"),
        "{m}"
    );
    assert!(m.ends_with("# EOF\n"), "{m}");
    // A drift moves the gauge and counts an evaluation.
    sed(TO_FALSE, &node.config());
    d.wait_for("drift_detected", WAIT, |v| change(v) == "drift_detected");
    let (_, m) = http_get(&addr, "/metrics");
    assert!(
        m.contains(r#"kubelet_drift_finding_status{control="4.2.7",subject="after_restart",status="fail"} 1"#),
        "{m}"
    );
    let evals = m
        .lines()
        .find_map(|l| l.strip_prefix("kubelet_drift_evaluations_total "))
        .and_then(|n| n.trim().parse::<u64>().ok())
        .unwrap_or(0);
    assert!(evals >= 1, "{m}");
}

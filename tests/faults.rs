//! The daemon under faults: a ring buffer that overflows, a SIGKILL and restart, a kubelet
//! that dies as it starts, the config file deleted and recreated, journald absent.

use kubelet_drift_tests::daemon as harness;

use std::{ffi::OsStr, fs, process::Command, time::Duration};

use harness::*;
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(10);

/// The after-restart status the reports so far add up to.
fn after_restart_status(d: &Daemon) -> String {
    d.lines()
        .iter()
        .rfind(|v| {
            kind(v) == "after_restart"
                && !matches!(
                    change(v),
                    "pending_drift_appeared" | "pending_drift_cleared"
                )
        })
        .map(|v| status(v).to_string())
        .unwrap_or_default()
}

#[test]
fn ring_buffer_overflow_is_told_and_followed_by_a_full_rescan_with_the_right_verdict() {
    let mut o = Opts::tagged("ring");
    o.args = vec![
        "--ring-bytes".into(),
        "4096".into(),
        "--rescan-interval".into(),
        "1h".into(),
    ];
    let s = Scenario::start(o, &[]);
    let (node, d) = (&s.node, &s.daemon);
    // Thousands of renames onto the watched name, alternating true and false, ending false.
    python(
        "import sys, os\n\
         d = os.path.dirname(sys.argv[1])\n\
         texts = [sys.argv[2].encode(), sys.argv[3].encode()]\n\
         for i in range(6000):\n\
         \x20   t = os.path.join(d, '.n%d' % (i % 8))\n\
         \x20   fd = os.open(t, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)\n\
         \x20   os.write(fd, texts[i % 2]); os.close(fd)\n\
         \x20   os.rename(t, sys.argv[1])\n",
        &[
            node.config().as_os_str(),
            OsStr::new(&config_text(true)),
            OsStr::new(&config_text(false)),
        ],
    );
    // The loss is told on stderr (text output), and triggers a full rescan.
    let deadline = std::time::Instant::now() + WAIT;
    while !d.stderr_text().contains("event(s) lost") && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let err = d.stderr_text();
    assert!(
        err.contains("kernel event(s) lost (ring buffer full"),
        "no loss notice:\n{err}"
    );
    assert!(err.contains("full rescan now"), "{err}");
    // Told once per window with its count, never a line per lost batch: thousands of
    // renames on a 4 KiB ring give a handful of lines, each with a count.
    let started = d.started;
    let told: Vec<&str> = err
        .lines()
        .filter(|l| l.contains("event(s) lost"))
        .collect();
    let windows = started.elapsed().as_secs() + 2;
    assert!(
        told.len() as u64 <= windows,
        "{} loss lines in {windows} s:\n{err}",
        told.len()
    );
    for l in &told {
        let n = l
            .split_whitespace()
            .find(|w| w.chars().all(|c| c.is_ascii_digit()))
            .and_then(|w| w.parse::<u64>().ok());
        assert!(n.is_some_and(|n| n > 0), "no count in {l:?}");
    }
    d.wait_for("a report after the loss", WAIT, |v| {
        trigger_op(v) == "lost_events" || change(v) == "drift_detected"
    });
    // The final verdict is right: the file says false.
    let deadline = std::time::Instant::now() + WAIT;
    while after_restart_status(d) != "Fail" && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(after_restart_status(d), "Fail", "{}", d.summary());
    assert_all_valid(d);
}

#[test]
fn sigkill_and_restart_reports_the_baseline_again() {
    let o = Opts::tagged("sigkill");
    let mut s = Scenario::start(o.clone(), &[&[]]);
    let (node, k, d1) = (&s.node, &s.kubelets[0], &mut s.daemon);
    // SAFETY: signalling our own child.
    unsafe {
        libc::kill(d1.pid() as libc::pid_t, libc::SIGKILL);
    }
    let _ = d1.child.wait();
    fs::write(node.config(), config_text(false)).unwrap();

    let d2 = Daemon::start(node, o);
    let base: Vec<Value> = d2
        .lines()
        .into_iter()
        .filter(|v| change(v) == "baseline")
        .collect();
    assert_eq!(base.len(), 2, "{}", d2.summary());
    let running = base.iter().find(|v| kind(v) == "running").unwrap();
    assert_eq!(subject_pid(running), Some(k.pid() as u64));
    let after = base.iter().find(|v| kind(v) == "after_restart").unwrap();
    assert_eq!(status(after), "Fail", "the change made while it was down");
    // The running kubelet was already running: read with the files as they are now.
    assert_eq!(status(running), "Fail");
    assert_eq!(running["unmapped"]["subject"]["evaluated_late"], true);
    // And it watches: an edit is seen.
    let pid = sed(TO_TRUE, &node.config());
    d2.wait_for("drift_resolved", WAIT, |v| {
        change(v) == "drift_resolved" && actor_pid(v) == Some(pid as u64)
    });
    assert_all_valid(&d2);
}

#[test]
fn kubelet_killed_right_after_exec_leaves_no_phantom() {
    let s = Scenario::no_kubelet("phantom");
    let (node, bin, d) = (&s.node, &s.bin, &s.daemon);
    let mut pids = Vec::new();
    for _ in 0..20 {
        let mut k = bin.spawn(&[&node.config_flag(), "--make-iptables-util-chains=false"]);
        pids.push(k.pid());
        k.kill();
    }
    // A survivor, to know the daemon got past all of them.
    let survivor = bin.spawn(&[&node.config_flag()]);
    d.wait_for("the survivor's start", WAIT, |v| {
        change(v) == "kubelet_started" && subject_pid(v) == Some(survivor.pid() as u64)
    });
    std::thread::sleep(Duration::from_millis(500));
    let lines = d.lines();
    for pid in &pids {
        let of = |c: &str| {
            lines
                .iter()
                .filter(|v| change(v) == c && subject_pid(v) == Some(*pid as u64))
                .count()
        };
        assert!(of("kubelet_started") <= 1, "{}", d.summary());
        assert_eq!(
            of("kubelet_started"),
            of("kubelet_stopped"),
            "pid {pid}: a start without its stop leaves a phantom running kubelet:\n{}",
            d.summary()
        );
    }
    // The survivor agrees with the files: no pending drift is left from the dead ones.
    let pending: Vec<&Value> = lines
        .iter()
        .filter(|v| change(v).starts_with("pending_drift"))
        .collect();
    if let Some(last) = pending.last() {
        assert_eq!(change(last), "pending_drift_cleared", "{}", d.summary());
    }
    assert!(!d.exited());
    assert_all_valid(d);
}

#[test]
fn config_deleted_is_an_error_and_recreated_clears_it() {
    let s = Scenario::no_kubelet("delete");
    let (node, d) = (&s.node, &s.daemon);
    let rm = run(Command::new("rm").arg(node.config()));
    let v = d.wait_for("error_appeared", WAIT, |v| change(v) == "error_appeared");
    assert_eq!(kind(&v), "after_restart");
    assert_eq!(status(&v), "Error");
    assert_eq!(v["compliance"]["status_id"], 99);
    assert_eq!(v["severity_id"], 3);
    assert_eq!(actor_pid(&v), Some(rm as u64));
    assert_eq!(trigger_op(&v), "unlink");
    let w = python(
        "import sys; open(sys.argv[1], 'w').write(sys.argv[2])",
        &[node.config().as_os_str(), OsStr::new(&config_text(true))],
    );
    let v = d.wait_for("error_cleared", WAIT, |v| change(v) == "error_cleared");
    assert_eq!(status(&v), "Pass");
    assert_eq!(v["unmapped"]["previous_status"], "error");
    assert_eq!(actor_pid(&v), Some(w as u64));
    assert_all_valid(d);
}

#[test]
fn journald_absent_keeps_json_working_and_says_so_once() {
    let mut o = Opts::tagged("nojournal");
    o.journald = true;
    // An empty /run/systemd: no journald socket.
    o.journal_dir = Some(None);
    let s = Scenario::start(o, &[]);
    let (node, d) = (&s.node, &s.daemon);
    for expr in [TO_FALSE, TO_TRUE] {
        let pid = sed(expr, &node.config());
        d.wait_for("a report of the edit", WAIT, |v| {
            actor_pid(v) == Some(pid as u64)
        });
    }
    assert!(!d.exited(), "{}", d.stderr_text());
    let err = d.stderr_text();
    assert_eq!(
        err.matches("output journald failed").count(),
        1,
        "said once:\n{err}"
    );
    assert!(err.contains("/run/systemd/journal/socket"), "{err}");
    assert!(d.lines().len() >= 3);
    assert_all_valid(d);
}

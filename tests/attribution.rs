//! Never blame a bystander: a `sed -i` drift, 100 times over, while other processes write
//! /dev/null, files with the config's name elsewhere (sed among them) and unrelated .conf
//! files. Every report of the drift names that edit's own sed. Run as root.

use kubelet_drift_tests::{KillOnDrop, daemon::*, sh};

use std::time::Duration;

const WAIT: Duration = Duration::from_secs(10);
#[test]
fn every_drift_report_names_its_own_sed_among_bystanders() {
    require_root();
    let node = Node::new();
    let d = Daemon::start(&node, Opts::tagged("blame"));
    let scratch = tempfile::tempdir().unwrap();
    std::fs::write(scratch.path().join("config.yaml"), "a: 1\n").unwrap();
    // Bystanders, busy (a write every millisecond or so each, on a 2-core machine shared
    // with the rest of the suite): /dev/null, a same-named config.yaml (written, sed -i'd,
    // renamed), unrelated .conf files, and short-lived processes giving relative names of
    // inputs and of their directories (`rmdir kubelet`, `mv config.yaml ...` in another
    // directory), gone before the daemon can read their cwd: the kernel's record of the
    // directory they were given against places them elsewhere.
    let _noise: Vec<KillOnDrop> = [
        "while :; do echo x > /dev/null; echo y > /dev/null; sleep 0.001; done",
        "while :; do printf 'a: 1\\n' > \"$PWD/config.yaml\"; sed -i s/1/2/ \"$PWD/config.yaml\"; \
         cp \"$PWD/config.yaml\" \"$PWD/c.tmp\"; mv \"$PWD/c.tmp\" \"$PWD/config.yaml\"; sleep 0.001; done",
        "while :; do printf 'x=1\\n' > \"$PWD/some-app.conf\"; printf y >> \"$PWD/other.conf\"; sleep 0.001; done",
        "mkdir -p rel && cd rel && while :; do mkdir kubelet; rmdir kubelet; : > config.yaml; \
         mv config.yaml kubelet.conf; rm kubelet.conf; sleep 0.001; done",
    ]
    .iter()
    .map(|s| KillOnDrop(sh(scratch.path(), s).spawn().unwrap()))
    .collect();
    let mut seen = 0;
    for i in 0..100 {
        for (expr, change_) in [(TO_FALSE, "drift_detected"), (TO_TRUE, "drift_resolved")] {
            let before = d.lines().len();
            let pid = sed(expr, &node.config());
            // The report of this edit: the first such change after it.
            let deadline = std::time::Instant::now() + WAIT;
            let lines = loop {
                let lines = d.lines();
                if lines[before..].iter().any(|v| change(v) == change_) {
                    break lines;
                }
                assert!(
                    std::time::Instant::now() < deadline,
                    "iteration {i}: no {change_} within {WAIT:?} (daemon exited: {}):\n{}\nstderr:\n{}",
                    d.exited(),
                    d.summary(),
                    d.stderr_text()
                );
                std::thread::sleep(Duration::from_millis(2));
            };
            for v in &lines[before..] {
                if kind(v) == "after_restart"
                    && matches!(change(v), "drift_detected" | "drift_resolved")
                {
                    seen += 1;
                    assert_eq!(
                        (actor_pid(v), actor_name(v), trigger_op(v)),
                        (Some(pid as u64), "sed", "rename"),
                        "iteration {i}: {change_} not named for sed pid {pid}: {v}\n{}",
                        d.summary()
                    );
                }
            }
        }
    }
    assert!(seen >= 200, "{seen} reports");
}

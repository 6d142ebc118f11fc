//! The OCSF finding lifecycle as a SIEM sees it across a whole run: a baseline (Create), a
//! drift (Update), a restart of the daemon (no second Create, no Update unless something
//! changed), a kubelet restarted while the daemon runs and while it is down (the old
//! kubelet's finding Closed, the new one Created), a corrupt state file (tolerated and said),
//! every `metadata.uid` unique. And the daemon's own diagnostics on a stderr nobody reads
//! never keep it from reporting.

use kubelet_drift_tests::daemon as harness;

use std::{
    collections::{BTreeMap, BTreeSet},
    fs,
    os::fd::{FromRawFd, OwnedFd},
    path::Path,
    path::PathBuf,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use harness::*;
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(10);
const START: Duration = Duration::from_secs(90);

/// Where a run's daemons write: one JSON file and one state file shared by every daemon of
/// the run, as on a node across restarts.
struct Run {
    dir: tempfile::TempDir,
    opts: Opts,
}

impl Run {
    fn new(tag: &str) -> Run {
        Run {
            dir: tempfile::Builder::new()
                .prefix("kd-life-")
                .tempdir()
                .unwrap(),
            opts: Opts::tagged(tag),
        }
    }

    fn json(&self) -> PathBuf {
        self.dir.path().join("findings.json")
    }

    fn state(&self) -> PathBuf {
        self.dir.path().join("state.json")
    }

    /// Starts a daemon writing to this run's files, with `stderr` (a file when `None`), text on stderr as asked
    /// and `env`; does not wait.
    fn spawn(
        &self,
        node: &Node,
        stderr: Option<Stdio>,
        text: bool,
        env: &[(&str, &str)],
    ) -> Daemon {
        let dir = tempfile::Builder::new()
            .prefix("kd-run-")
            .tempdir()
            .unwrap();
        let stderr_path = dir.path().join("stderr");
        let stderr = match stderr {
            Some(s) => s,
            None => Stdio::from(fs::File::create(&stderr_path).unwrap()),
        };
        let conf = dir.path().join("config.yaml");
        fs::write(
            &conf,
            format!(
                "outputs:\n  journald: false\n  text: false\n  state_file: {}\nring_buffer_bytes: 4MiB\n",
                self.state().display()
            ),
        )
        .unwrap();
        let child = Command::new(daemon_exe())
            .arg("run")
            .arg("--config")
            .arg(&conf)
            .arg("--host-root")
            .arg(&node.root)
            .arg("--json-out")
            .arg(self.json())
            .args(["--text", if text { "true" } else { "false" }])
            .args(["--node-name", &self.opts.node_name])
            .args(["--kubelet-name", &self.opts.kubelet_name])
            .args(["--rescan-interval", "1h"])
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("starting kubelet-drift");
        Daemon {
            child,
            dir,
            json: self.json(),
            stderr: stderr_path,
            node_name: self.opts.node_name.clone(),
            started: Instant::now(),
        }
    }

    /// A daemon with its text output in a file, started and past its baseline (told on
    /// stderr: the JSON output writes no baseline about a finding that did not change).
    fn start(&self, node: &Node) -> Daemon {
        let d = self.spawn(node, None, true, &[]);
        let deadline = Instant::now() + START;
        while !d
            .stderr_text()
            .lines()
            .any(|l| l.contains(" baseline ") && l.contains("kubelet after a restart"))
        {
            assert!(
                Instant::now() < deadline && !d.exited(),
                "no baseline; stderr:\n{}",
                d.stderr_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        settle(&d);
        d
    }
}

/// Waits until the JSON output has not grown for half a second (its writer has a thread of
/// its own, behind the text one).
fn settle(d: &Daemon) {
    let size = || fs::metadata(&d.json).map(|m| m.len()).unwrap_or(0);
    let deadline = Instant::now() + WAIT;
    let mut last = size();
    loop {
        std::thread::sleep(Duration::from_millis(500));
        let now = size();
        if now == last || Instant::now() > deadline {
            return;
        }
        last = now;
    }
}

fn uid(v: &Value) -> &str {
    v["finding_info"]["uid"].as_str().unwrap_or("")
}

fn activity(v: &Value) -> u64 {
    v["activity_id"].as_u64().unwrap_or(0)
}

/// What a finding line says (not when or why): an Update must change it.
fn said(v: &Value) -> Value {
    serde_json::json!([
        v["compliance"]["status_id"],
        v["unmapped"]["effective"],
        v["unmapped"]["reason"],
        v["unmapped"]["subject"]["argv"],
    ])
}

/// The lifecycle of `lines` (in order): a finding is Created once, by its first line, then
/// only Updated, until its Close, after which nothing is written about it.
fn assert_lifecycle(lines: &[Value]) {
    let mut state: BTreeMap<&str, u64> = BTreeMap::new();
    for v in lines {
        let before = state.get(uid(v)).copied();
        match (before, activity(v)) {
            (None, 1) | (Some(1 | 2), 2 | 3) => {}
            other => panic!("{other:?} for {}:\n{v}", uid(v)),
        }
        state.insert(uid(v), activity(v));
    }
}

fn running_of(lines: &[Value], pid: u32) -> Vec<&Value> {
    lines
        .iter()
        .filter(|v| kind(v) == "running" && subject_pid(v) == Some(u64::from(pid)))
        .collect()
}

#[test]
fn findings_keep_their_lifecycle_across_daemon_and_kubelet_restarts() {
    require_root();
    let node = Node::new();
    let run = Run::new("life");
    let bin = KubeletBin::new(&run.opts.kubelet_name);
    let mut k1 = bin.spawn(&[&node.config_flag()]);

    // 1. Baseline: Created.
    let mut d = run.start(&node);
    let lines = d.lines();
    let r1 = running_of(&lines, k1.pid());
    assert_eq!(r1.len(), 1, "{}", d.summary());
    let (uid_k1, uid_after) = {
        let after = lines
            .iter()
            .find(|v| kind(v) == "after_restart")
            .unwrap_or_else(|| {
                panic!(
                    "no after_restart baseline:\n{}\n{}",
                    d.summary(),
                    d.stderr_text()
                )
            });
        (uid(r1[0]).to_string(), uid(after).to_string())
    };
    assert_ne!(uid_k1, uid_after);
    assert!(lines.iter().all(|v| activity(v) == 1), "{}", d.summary());

    // 2. A drift: the after-restart finding is Updated.
    let sed = run_sed(&node, true);
    let v = d.wait_for("drift_detected", WAIT, |v| {
        change(v) == "drift_detected" && actor_pid(v) == Some(u64::from(sed))
    });
    assert_eq!(uid(&v), uid_after);
    assert_eq!(activity(&v), 2);
    settle(&d);

    // 3. The daemon restarts: nothing changed, so no Create and no Update of these findings.
    d.stop();
    let n = d.lines().len();
    let d = run.start(&node);
    let lines = d.lines();
    for v in &lines[n..] {
        assert!(
            uid(v) != uid_k1 && uid(v) != uid_after || activity(v) != 1,
            "Created again after a daemon restart: {v}"
        );
    }
    let mut last: BTreeMap<&str, &Value> = BTreeMap::new();
    for (i, v) in lines.iter().enumerate() {
        if i >= n
            && let Some(prev) = last.get(uid(v))
        {
            assert_ne!(
                said(prev),
                said(v),
                "an Update that changes nothing after a daemon restart:\n{prev}\n{v}"
            );
        }
        last.insert(uid(v), v);
    }

    // 4. The kubelet restarts while the daemon runs: Closed, and the new one Created.
    let old = k1.pid();
    k1.kill();
    let v = d.wait_for("kubelet_stopped", WAIT, |v| {
        change(v) == "kubelet_stopped" && subject_pid(v) == Some(u64::from(old))
    });
    assert_eq!((uid(&v), activity(&v)), (uid_k1.as_str(), 3));
    let k2 = bin.spawn(&[&node.config_flag()]);
    let v = d.wait_for("kubelet_started", WAIT, |v| {
        change(v) == "kubelet_started" && subject_pid(v) == Some(u64::from(k2.pid()))
    });
    assert_eq!(activity(&v), 1);
    let uid_k2 = uid(&v).to_string();
    assert_ne!(uid_k2, uid_k1);

    // 5. The daemon restarts again: the kubelet it saw start is "already running" to the
    // next run, which is no change: nothing is written about it.
    let mut d = d;
    d.stop();
    let n = d.lines().len();
    let mut d = run.start(&node);
    let again: Vec<Value> = d.lines().split_off(n);
    assert!(
        !again.iter().any(|v| uid(v) == uid_k2),
        "a restart wrote about a finding that did not change:\n{}",
        d.summary()
    );

    // 6. The kubelet restarts while the daemon is down: the old one's finding is Closed at
    // the next start, the new one Created.
    d.stop();
    drop(k2);
    let k3 = bin.spawn(&[&node.config_flag()]);
    let mut d = run.start(&node);
    let lines = d.lines();
    let closed: Vec<&Value> = lines.iter().filter(|v| uid(v) == uid_k2).collect();
    assert_eq!(
        closed.last().map(|v| activity(v)),
        Some(3),
        "{}",
        d.summary()
    );
    let r3 = running_of(&lines, k3.pid());
    assert_eq!(r3.len(), 1, "{}", d.summary());
    assert_eq!(activity(r3[0]), 1);
    assert_lifecycle(&lines);

    // 7. A corrupt state file: said, and the daemon works on (its open findings may be
    // Created again: a duplicate, never a lost finding).
    d.stop();
    let n = d.all_lines().len();
    fs::write(run.state(), b"{\"version\":1,\"open\":{\"x\":").unwrap();
    let d = run.start(&node);
    let notice = d
        .all_lines()
        .into_iter()
        .skip(n)
        .find(|v| v["class_uid"] == 0)
        .unwrap_or_else(|| panic!("no notice of the corrupt state file:\n{}", d.summary()));
    let m = notice["message"].as_str().unwrap();
    assert!(
        m.contains("state file") && m.contains("read as empty") && m.contains("rewritten"),
        "{m}"
    );
    let sed = run_sed(&node, false);
    d.wait_for("drift_resolved", WAIT, |v| {
        change(v) == "drift_resolved" && actor_pid(v) == Some(u64::from(sed))
    });
    settle(&d);
    let state: Value = serde_json::from_slice(&fs::read(run.state()).unwrap())
        .expect("the state file is whole again");
    assert_eq!(state["version"], 1);

    // Every line of the whole run: valid, and its metadata.uid its own.
    let all = d.all_lines();
    let mut seen = BTreeSet::new();
    for v in &all {
        let uid = v["metadata"]["uid"].as_str().unwrap_or("").to_string();
        assert!(seen.insert(uid), "metadata.uid twice: {v}");
    }
    for v in d.lines() {
        let p = ocsf_problems(&v);
        assert!(p.is_empty(), "{p:?} in {v}");
        assert_placed(&v);
    }
    drop(k3);
}

/// `sed -i` from true to false (`to_false`) or back; its pid.
fn run_sed(node: &Node, to_false: bool) -> u32 {
    let (from, to) = if to_false {
        (TRUE_LINE, FALSE_LINE)
    } else {
        (FALSE_LINE, TRUE_LINE)
    };
    run(Command::new("sed")
        .arg("-i")
        .arg(format!("s/{from}/{to}/"))
        .arg(node.config()))
}

/// A pipe nobody reads, one page big: (read end, kept open; write end).
fn unread_pipe() -> (OwnedFd, OwnedFd) {
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills two descriptors that we then own.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: both are ours.
    let (r, w) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    // SAFETY: resizing a pipe we own.
    unsafe { libc::fcntl(fds[1], libc::F_SETPIPE_SZ, 4096) };
    (r, w)
}

/// Bytes waiting in a pipe.
fn queued(fd: &OwnedFd) -> i32 {
    use std::os::fd::AsRawFd;
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD into an int.
    unsafe { libc::ioctl(fd.as_raw_fd(), libc::FIONREAD, &mut n) };
    n
}

#[test]
fn a_stderr_nobody_reads_does_not_stop_the_findings() {
    require_root();
    let node = Node::new();
    let run = Run::new("mute");
    let (reader, writer) = unread_pipe();
    // Debug diagnostics: a few lines per evaluation, far more than the page the pipe holds.
    let d = run.spawn(
        &node,
        Some(Stdio::from(writer)),
        false,
        &[("KUBELET_DRIFT_LOG", "debug")],
    );
    d.wait_for("the baseline", START, |v| {
        change(v) == "baseline" && kind(v) == "after_restart"
    });
    for i in 0..12 {
        let sed = run_sed(&node, i % 2 == 0);
        let want = if i % 2 == 0 {
            "drift_detected"
        } else {
            "drift_resolved"
        };
        d.wait_for(want, WAIT, |v| {
            change(v) == want && actor_pid(v) == Some(u64::from(sed))
        });
    }
    // Full: lines are written whole or not at all, so the page stops short of 4096 bytes by
    // less than the line that did not fit (a debug line is a few hundred bytes; the daemon's
    // notice below says a line was dropped).
    assert!(
        queued(&reader) >= 4096 - 1024,
        "stderr never filled up ({} bytes): the test proves nothing",
        queued(&reader)
    );
    // The loss of its own lines is told where findings go.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let told = d.notices().into_iter().any(|v| {
            v["message"]
                .as_str()
                .is_some_and(|m| m.contains("own diagnostics could not be written to stderr"))
        });
        if told {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the dropped diagnostics were not told:\n{:?}",
            d.notices()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(!d.exited());
    drop(reader);
}

/// `unmapped.trigger` of a line: each path absolute, or null with the path as the process
/// gave it in `path_given` / `path2_given` (a relative path whose directory is no longer
/// known); never a relative `path`.
fn assert_placed(v: &Value) {
    let t = &v["unmapped"]["trigger"];
    for k in ["path", "path2"] {
        match &t[k] {
            Value::Null => {}
            Value::String(p) => assert!(p.starts_with('/'), "{k} {p:?} is relative: {v}"),
            other => panic!("{k} is {other}: {v}"),
        }
        if let Some(g) = t.get(format!("{k}_given")) {
            assert!(t[k].is_null(), "both {k} and {k}_given: {t}");
            assert!(!g.as_str().unwrap().starts_with('/'), "{t}");
        }
    }
}

#[test]
fn trigger_paths_given_relative_are_reported_absolute_or_as_given() {
    require_root();
    let node = Node::new();
    let d = Daemon::start(
        &node,
        Opts {
            args: vec!["--rescan-interval".into(), "1h".into()],
            ..Opts::tagged("relpath")
        },
    );
    let dir = node.config().parent().unwrap().to_path_buf();
    let name = node.config().file_name().unwrap().to_owned();
    let config = node.config().to_string_lossy().into_owned();

    // A write through a relative name (the shell's `>`): the file is an input by inode, so
    // its path is the input's, whether or not the shell was still there to resolve it.
    let src = tempfile::NamedTempFile::new().unwrap();
    fs::write(src.path(), config_text(false)).unwrap();
    let shell = run(Command::new("sh")
        .current_dir(&dir)
        .arg("-c")
        .arg("cat \"$0\" > \"$1\"")
        .arg(src.path())
        .arg(&name));
    let v = d.wait_for("drift_detected by the shell", WAIT, |v| {
        change(v) == "drift_detected" && actor_pid(v) == Some(u64::from(shell))
    });
    assert_placed(&v);
    assert_eq!(v["unmapped"]["trigger"]["path"], config.as_str(), "{v}");

    // sed -i on a relative name: a rename of ./sedXXXXXX onto config.yaml. Resolved against
    // sed's cwd while it runs, else placed by the directory the kernel saw (its inode is in
    // the record): absolute either way, the temporary file in the same directory.
    let sed = run(Command::new("sed")
        .current_dir(&dir)
        .arg("-i")
        .arg(format!("s/{FALSE_LINE}/{TRUE_LINE}/"))
        .arg(&name));
    let v = d.wait_for("drift_resolved by sed", WAIT, |v| {
        change(v) == "drift_resolved" && actor_pid(v) == Some(u64::from(sed))
    });
    assert_placed(&v);
    let t = &v["unmapped"]["trigger"];
    eprintln!("sed's rename reported as {t}");
    assert_eq!(t["path2"], config.as_str(), "{t}");
    let tmp = t["path"].as_str().unwrap_or_default();
    assert!(
        Path::new(tmp).parent() == Some(dir.as_path()) && tmp.contains("sed"),
        "{t}"
    );
    for v in d.lines() {
        assert_placed(&v);
    }
}

//! Sinks that cannot stall or blind the monitor (issue 10, item 4): the real daemon with its
//! JSON output on a pipe whose reader never reads, on a FIFO without a reader, and on a
//! 64 KiB tmpfs that fills up. Detection goes on (the text sink reports every change), no
//! line is torn or glued, every record the JSON output missed is counted on it once it
//! recovers, and the current state is restated to it. Run as root.

use kubelet_drift_tests::daemon as harness;

use std::{
    fs,
    io::Read,
    os::fd::{AsRawFd, FromRawFd, OwnedFd},
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use harness::{Node, config_text, daemon_exe, require_root};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(20);
/// Loading the eBPF programs on a loaded machine (as the harness allows).
const START: Duration = Duration::from_secs(60);

/// A `kubelet-drift run` with `--json-out` as given, text on a stderr file.
struct Run {
    child: Child,
    _dir: tempfile::TempDir,
    stderr: PathBuf,
    node: String,
}

impl Run {
    fn spawn(node: &Node, tag: &str, json_out: &str, stdout: Stdio) -> Run {
        let dir = tempfile::Builder::new()
            .prefix("kd-sinks-")
            .tempdir()
            .unwrap();
        let conf = dir.path().join("config.yaml");
        fs::write(&conf, "outputs:\n  journald: false\n  text: false\n").unwrap();
        let stderr = dir.path().join("stderr");
        let name = format!("node-{tag}");
        let child = Command::new(daemon_exe())
            .arg("run")
            .arg("--config")
            .arg(&conf)
            .arg("--host-root")
            .arg(&node.root)
            .args([
                "--json-out",
                json_out,
                "--text",
                "true",
                "--journald",
                "false",
            ])
            .args([
                "--node-name",
                &name,
                "--kubelet-name",
                &format!("kds-{tag}"),
            ])
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(fs::File::create(&stderr).unwrap())
            .spawn()
            .expect("starting kubelet-drift");
        Run {
            child,
            _dir: dir,
            stderr,
            node: name,
        }
    }

    fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&fs::read(&self.stderr).unwrap_or_default()).into_owned()
    }

    /// The text sink's report lines about this node: `(change, status)`.
    fn text_reports(&self) -> Vec<(String, String)> {
        let tag = format!("[{}]", self.node);
        self.stderr_text()
            .lines()
            .filter_map(|l| {
                let w: Vec<&str> = l.splitn(5, ' ').collect();
                (w.len() == 5 && w[3] == tag && w[2] != "notice")
                    .then(|| (w[2].to_string(), w[1].to_string()))
            })
            .collect()
    }

    /// The records every output gets, in the text sink's order: reports, and notices that are
    /// not about the JSON output itself (those are told on the other outputs only).
    fn text_records(&self) -> Vec<String> {
        records_in(&self.stderr_text(), &self.node)
    }

    fn wait_text(&self, what: &str, pred: impl Fn(&str) -> bool) {
        self.wait_text_for(what, WAIT, pred)
    }

    /// Waits for the baseline (the programs loaded).
    fn wait_start(&self) {
        self.wait_text_for("baseline", START, |l| l.contains(" baseline ["));
    }

    fn wait_text_for(&self, what: &str, within: Duration, pred: impl Fn(&str) -> bool) {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if self.stderr_text().lines().any(&pred) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!(
            "no {what} within {within:?}; stderr:\n{}",
            self.stderr_text()
        );
    }

    /// Waits for the n-th report of this node on the text sink.
    fn wait_reports(&self, n: usize) {
        let deadline = Instant::now() + WAIT;
        while self.text_reports().len() < n {
            assert!(
                Instant::now() < deadline,
                "fewer than {n} reports within {WAIT:?}; stderr:\n{}",
                self.stderr_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGTERM; the exit status and how long it took.
    fn stop(&mut self) -> (ExitStatus, Duration) {
        let t = Instant::now();
        // SAFETY: signalling our own child.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return (s, t.elapsed());
            }
            if t.elapsed() > Duration::from_secs(30) {
                let _ = self.child.kill();
                panic!(
                    "SIGTERM had no effect in 30 s; stderr:\n{}",
                    self.stderr_text()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Flips the node's config and waits for the text sink to report it: detection goes on.
fn flip(run: &Run, node: &Node, value: bool) {
    let before = run.text_reports().len();
    fs::write(node.config(), config_text(value)).unwrap();
    run.wait_reports(before + 1);
}

/// Every line of `bytes` is one complete JSON object (no torn or glued record).
fn json_lines(bytes: &[u8]) -> Vec<Value> {
    assert!(
        bytes.is_empty() || bytes.ends_with(b"\n"),
        "a torn last line: {:?}",
        String::from_utf8_lossy(&bytes[bytes.len().saturating_sub(200)..])
    );
    bytes
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| {
            let v: Value = serde_json::from_slice(l).unwrap_or_else(|e| {
                panic!(
                    "not one JSON object ({e}): {:?}",
                    String::from_utf8_lossy(l)
                )
            });
            assert!(v.is_object());
            v
        })
        .collect()
}

fn is_report(v: &Value) -> bool {
    v["class_uid"] == 2003
}

/// [`Run::text_records`] in a part of the stderr text.
fn records_in(text: &str, node: &str) -> Vec<String> {
    let tag = format!("[{node}]");
    text.lines()
        .filter(|l| {
            let w: Vec<&str> = l.splitn(5, ' ').collect();
            w.len() == 5 && (w[3] == tag || (w[2] == "notice" && !l.contains("notice output json")))
        })
        .map(String::from)
        .collect()
}

/// The JSON stream's share of [`Run::text_records`]: reports (not resyncs) and notices
/// other than the JSON output's own recovery.
fn json_records(lines: &[Value]) -> usize {
    lines
        .iter()
        .filter(|v| (is_report(v) && !is_resync(v)) || (v["class_uid"] == 0 && missed(v).is_none()))
        .count()
}

fn is_resync(v: &Value) -> bool {
    is_report(v) && v["unmapped"]["trigger"]["op"] == "resync"
}

/// The number in a recovery notice: "output json works again; N record(s) could not ...".
fn missed(v: &Value) -> Option<u64> {
    let m = v["message"].as_str()?;
    let rest = m.strip_prefix("output json works again; ")?;
    rest.split(' ').next()?.parse().ok()
}

/// Reads a pipe or FIFO in a thread of its own once `go` is set, until EOF.
fn reader(fd: OwnedFd, go: Arc<Mutex<bool>>) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        while !*go.lock().unwrap() {
            std::thread::sleep(Duration::from_millis(10));
        }
        let mut f = fs::File::from(fd);
        let mut all = Vec::new();
        let _ = f.read_to_end(&mut all);
        all
    })
}

#[test]
fn a_json_reader_that_never_reads_does_not_stop_detection_or_sigterm() {
    require_root();
    let node = Node::new();
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills two descriptors we then own.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: fresh descriptors from pipe2.
    let (r, w) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    // One page: the pipe is full after a record or two.
    // SAFETY: fcntl on a descriptor we own.
    unsafe { libc::fcntl(w.as_raw_fd(), libc::F_SETPIPE_SZ, 4096) };
    let mut run = Run::spawn(&node, "stall", "-", Stdio::from(w));
    run.wait_start();
    let go = Arc::new(Mutex::new(false));
    let read = reader(r, go.clone());

    // The reader never reads: detection goes on, reported on the text sink.
    for i in 0..6 {
        flip(&run, &node, i % 2 == 1);
    }
    run.wait_text("the JSON output's failure told on the text sink", |l| {
        l.contains("notice output json failed") && l.contains("has not read")
    });

    // The reader reads again: the JSON output recovers, counts what it missed, restates.
    *go.lock().unwrap() = true;
    run.wait_text("the JSON output's recovery told on the text sink", |l| {
        l.contains("notice output json works again")
    });
    flip(&run, &node, false);
    let (status, took) = run.stop();
    assert!(status.success(), "{status}");
    assert!(took < Duration::from_secs(10), "{took:?}");
    let lines = json_lines(&read.join().unwrap());
    let records = run.text_records();
    let notice = lines
        .iter()
        .find(|v| missed(v).is_some())
        .unwrap_or_else(|| panic!("no recovery notice in {lines:#?}"));
    assert_eq!(notice["class_uid"], 0, "{notice}");
    // Every record the text sink got is in the JSON stream or counted as missed there.
    assert_eq!(
        json_records(&lines) as u64 + missed(notice).unwrap(),
        records.len() as u64,
        "{records:#?}\n{lines:#?}"
    );
    assert!(missed(notice).unwrap() > 0);
    let resync: Vec<&Value> = lines.iter().filter(|v| is_resync(v)).collect();
    assert!(
        resync
            .iter()
            .any(|v| v["unmapped"]["subject"]["kind"] == "after_restart"),
        "{lines:#?}"
    );
}

#[test]
fn a_fifo_without_reader_does_not_block_start_up() {
    require_root();
    let node = Node::new();
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("findings.fifo");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let run = Run::spawn(&node, "fifo", fifo.to_str().unwrap(), Stdio::null());
    // Start-up is not held by the FIFO: the baseline comes, and the JSON output's failure
    // is told on the text sink.
    run.wait_start();
    run.wait_text("no reader told", |l| {
        l.contains("notice output json failed") && l.contains("FIFO with no reader")
    });
    // A reader comes (a blocking open, as `cat` does: it waits for the writer): within a
    // retry it gets the recovery notice and the current state.
    let path = fifo.clone();
    let read = std::thread::spawn(move || {
        let mut all = Vec::new();
        let _ = fs::File::open(&path).and_then(|mut f| f.read_to_end(&mut all));
        all
    });
    run.wait_text("recovery", |l| l.contains("notice output json works again"));
    flip(&run, &node, false);
    let mut run = run;
    let (status, _) = run.stop();
    assert!(status.success());
    let lines = json_lines(&read.join().unwrap());
    assert!(lines.iter().any(|v| missed(v).is_some()), "{lines:#?}");
    assert!(
        lines
            .iter()
            .any(|v| is_resync(v) && v["unmapped"]["subject"]["kind"] == "after_restart"),
        "{lines:#?}"
    );
    assert!(
        lines
            .iter()
            .any(|v| v["unmapped"]["change"] == "drift_detected"),
        "{lines:#?}"
    );
}

/// A tmpfs of 64 KiB, unmounted on drop.
struct Tmpfs(tempfile::TempDir);

impl Tmpfs {
    fn new() -> Tmpfs {
        let d = tempfile::Builder::new()
            .prefix("kd-full-")
            .tempdir()
            .unwrap();
        let st = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=64k", "tmpfs"])
            .arg(d.path())
            .status()
            .unwrap();
        assert!(st.success(), "mount tmpfs: {st}");
        Tmpfs(d)
    }
    fn path(&self) -> &Path {
        self.0.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.0.path()).status();
    }
}

/// Fills the filesystem of `dir` with a file until ENOSPC.
fn fill(dir: &Path) -> PathBuf {
    use std::io::Write;
    let p = dir.join("filler");
    let mut f = fs::File::create(&p).unwrap();
    let chunk = [b'.'; 512];
    while f.write_all(&chunk).is_ok() {}
    // The last partial chunk: fill to the byte.
    while f.write_all(b".").is_ok() {}
    p
}

#[test]
fn disk_full_leaves_no_torn_line_and_every_lost_report_is_counted() {
    require_root();
    let node = Node::new();
    let fs_ = Tmpfs::new();
    let json = fs_.path().join("findings.json");
    let mut run = Run::spawn(&node, "full", json.to_str().unwrap(), Stdio::null());
    run.wait_start();
    run.wait_reports(1);
    let filler = fill(fs_.path());
    // false, true, false: three reports while full, the last state a fail.
    for i in 0..3 {
        flip(&run, &node, i % 2 == 1);
    }
    run.wait_text("the failure told on the text sink", |l| {
        l.contains("notice output json failed") && l.contains("No space left")
    });
    // No torn record even while full.
    json_lines(&fs::read(&json).unwrap());
    fs::remove_file(&filler).unwrap();
    run.wait_text("recovery", |l| l.contains("notice output json works again"));
    flip(&run, &node, true);
    let lines = {
        let deadline = Instant::now() + WAIT;
        loop {
            let l = json_lines(&fs::read(&json).unwrap());
            // After the recovery notice: a report (not a resync) of the pass flipped back to.
            let after: Vec<&Value> = l.iter().skip_while(|v| missed(v).is_none()).collect();
            if after
                .iter()
                .any(|v| is_report(v) && !is_resync(v) && v["compliance"]["status"] == "Pass")
            {
                break l;
            }
            assert!(Instant::now() < deadline, "{l:#?}");
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    let (status, _) = run.stop();
    assert!(status.success());
    let notice = lines.iter().find(|v| missed(v).is_some()).unwrap();
    // Every record the text sink got before the recovery is in the file before the recovery
    // notice or counted as missed by it.
    let text = run.stderr_text();
    let recovered_at = text.find("notice output json works again").unwrap();
    let upto = records_in(&text[..recovered_at], &run.node).len();
    let before_notice: Vec<Value> = lines
        .iter()
        .take_while(|v| missed(v).is_none())
        .cloned()
        .collect();
    let lost = missed(notice).unwrap();
    assert_eq!(
        json_records(&before_notice) as u64 + lost,
        upto as u64,
        "{text}\n{lines:#?}"
    );
    assert!(lost >= 3, "three reports while full: {lines:#?}");
    // Then the current state, restated.
    assert!(lines.iter().any(|v| is_resync(v)
        && v["unmapped"]["subject"]["kind"] == "after_restart"
        && v["compliance"]["status"] == "Fail"));
}

/// Lost kernel records reach every output: the OCSF stream gets the loss as a Base Event
/// (class 0), as text and journald get their notice.
#[test]
fn lost_kernel_events_reach_the_json_stream() {
    require_root();
    let node = Node::new();
    let o = harness::Opts {
        kubelet_name: "kds-lost".into(),
        node_name: "node-s-lost".into(),
        args: vec!["--ring-bytes".into(), "4096".into()],
        ..Default::default()
    };
    let d = harness::Daemon::start(&node, o);
    // Thousands of renames onto the watched name: more records than a 4 KiB ring holds.
    harness::python(
        "import sys, os\n\
         d = os.path.dirname(sys.argv[1])\n\
         for i in range(6000):\n\
         \x20   t = os.path.join(d, '.n%d' % (i % 8))\n\
         \x20   fd = os.open(t, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)\n\
         \x20   os.write(fd, sys.argv[2].encode()); os.close(fd)\n\
         \x20   os.rename(t, sys.argv[1])\n",
        &[
            node.config().as_os_str(),
            std::ffi::OsStr::new(&config_text(true)),
        ],
    );
    let deadline = Instant::now() + WAIT;
    let lost = loop {
        if let Some(n) = d.notices().into_iter().find(|n| {
            n["message"]
                .as_str()
                .is_some_and(|m| m.contains("kernel event(s) lost (ring buffer full"))
        }) {
            break n;
        }
        assert!(
            Instant::now() < deadline,
            "no loss notice in the JSON stream; stderr:\n{}",
            d.stderr_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(lost["class_uid"], 0);
    assert_eq!(lost["type_uid"], 99);
    assert_eq!(lost["unmapped"]["notice_level"], "warning");
    assert_eq!(lost["device"]["hostname"], "node-s-lost");
    assert!(d.stderr_text().contains("kernel event(s) lost"));
}

/// One finding per subject with a lifecycle OCSF's way: Create on first sight, Update on
/// every change (a drift and its resolution included), Close only when the kubelet is gone;
/// a restarted kubelet is a new finding; every line has its own `metadata.uid`.
#[test]
fn findings_follow_their_subject_from_create_to_close() {
    require_root();
    let node = Node::new();
    let o = harness::Opts {
        kubelet_name: "kds-life".into(),
        node_name: "node-s-life".into(),
        ..Default::default()
    };
    let bin = harness::KubeletBin::new(&o.kubelet_name);
    let mut k1 = bin.spawn(&[&node.config_flag()]);
    let d = harness::Daemon::start(&node, o);
    let wait = |what: &str, pred: &dyn Fn(&Value) -> bool| d.wait_for(what, WAIT, pred);
    let running = |v: &Value, pid: u32| harness::subject_pid(v) == Some(u64::from(pid));
    let b1 = wait("k1 baseline", &|v| {
        harness::change(v) == "baseline" && running(v, k1.pid())
    });
    fs::write(node.config(), config_text(false)).unwrap();
    wait("drift", &|v| harness::change(v) == "drift_detected");
    fs::write(node.config(), config_text(true)).unwrap();
    let resolved = wait("resolved", &|v| harness::change(v) == "drift_resolved");
    let old = k1.pid();
    k1.kill();
    let stopped = wait("k1 stopped", &|v| {
        harness::change(v) == "kubelet_stopped" && running(v, old)
    });
    let k2 = bin.spawn(&[&node.config_flag()]);
    let started = wait("k2 started", &|v| {
        harness::change(v) == "kubelet_started" && running(v, k2.pid())
    });

    assert_eq!(b1["activity_id"], 1, "{b1}");
    assert_eq!(stopped["activity_id"], 3);
    assert_eq!(stopped["finding_info"]["uid"], b1["finding_info"]["uid"]);
    assert_eq!(started["activity_id"], 1, "a new kubelet is a new finding");
    assert_ne!(started["finding_info"]["uid"], b1["finding_info"]["uid"]);
    let res = &started["resources"][0];
    assert_eq!(res["name"], "kubelet");
    assert_eq!(res["data"]["pid"], k2.pid());
    assert!(res["data"]["start_time"].as_u64().unwrap() > 0);
    // The after-restart finding: created once, then only updated (a resolution too).
    assert_eq!(resolved["activity_id"], 2);
    let lines = d.lines();
    let after: Vec<u64> = lines
        .iter()
        .filter(|v| harness::kind(v) == "after_restart")
        .map(|v| v["activity_id"].as_u64().unwrap())
        .collect();
    assert_eq!(after[0], 1, "{}", d.summary());
    assert!(
        after[1..].iter().all(|&a| a == 2),
        "{after:?}\n{}",
        d.summary()
    );
    // Per finding: one Create first, a Close only last.
    let mut by_uid: std::collections::BTreeMap<String, Vec<u64>> = Default::default();
    for v in &lines {
        by_uid
            .entry(v["finding_info"]["uid"].as_str().unwrap().to_string())
            .or_default()
            .push(v["activity_id"].as_u64().unwrap());
    }
    for (uid, acts) in &by_uid {
        assert_eq!(acts[0], 1, "{uid}: {acts:?}");
        assert!(!acts[1..].contains(&1), "{uid}: created twice: {acts:?}");
        if let Some(i) = acts.iter().position(|&a| a == 3) {
            assert_eq!(i, acts.len() - 1, "{uid}: a line after its Close: {acts:?}");
        }
    }
    // Every line, notices included, has a metadata.uid of its own; every finding a remediation.
    let all = d.all_lines();
    let mut uids: Vec<&str> = all
        .iter()
        .map(|v| v["metadata"]["uid"].as_str().unwrap())
        .collect();
    let n = uids.len();
    uids.sort();
    uids.dedup();
    assert_eq!(uids.len(), n, "a metadata.uid used twice");
    assert!(lines.iter().all(|v| {
        v["remediation"]["desc"]
            .as_str()
            .is_some_and(|r| !r.is_empty())
    }));
}

//! The cost of the JSON output's hop, in process: turning a report into its OCSF line, the
//! whole `OcsfSink::report` (lifecycle, the kubelet's container, the write), and the hand-off
//! from the caller of `Outputs::report` to the sink's writer thread.
//!
//! `cargo run --release -p kubelet-drift --example ocsf_cost [ITERATIONS]`
//!
//! Reports shaped like the daemon's after a config edit: a pending drift of the after-restart
//! subject and a drift of a running kubelet (this process stands in for it, so its container
//! is looked up in a real `/proc/<pid>/cgroup`), each naming `sed` as the actor. Lines go to
//! `/dev/null`. The hand-off is timed with the sink's thread idle between reports (as the
//! daemon's is between edits): from just before `Outputs::report` to the sink being entered
//! (the wake-up) and to its line written.

use std::{
    path::PathBuf,
    sync::{Arc, Mutex},
    time::{Duration, Instant, SystemTime},
};

use kubelet_drift::{
    decode::FileOp,
    finding::{Benchmark, Finding, Source, Status, Subject},
    output::{Outputs, Sink, ocsf},
    report::{Actor, Change, DriftReport, Notice, Trigger, TriggerOp},
};

fn report(change: Change, subject: Subject) -> DriftReport {
    DriftReport {
        change,
        finding: Finding {
            control: "4.2.7".into(),
            status: Status::Fail,
            effective: Some(false),
            subject,
            source: Source::ConfigFile {
                path: "/var/lib/kubelet/config.yaml".into(),
                line: Some(3),
            },
            reason: "/var/lib/kubelet/config.yaml line 3 sets makeIPTablesUtilChains: false".into(),
            remediation: String::new(),
            inputs: vec![
                "/lib/systemd/system/kubelet.service".into(),
                "/etc/systemd/system/kubelet.service.d/10-kubeadm.conf".into(),
                "/var/lib/kubelet/config.yaml".into(),
            ],
            input_dirs: vec![],
        },
        previous: Some(Status::Pass),
        trigger: Trigger {
            op: TriggerOp::File(FileOp::Truncate),
            path: Some("/var/lib/kubelet/config.yaml".into()),
            path2: None,
            actor: Some(Actor {
                pid: 4242,
                ppid: 4241,
                uid: 0,
                user: Some("root".into()),
                gid: 0,
                comm: "sed".into(),
                exe: Some(PathBuf::from("/usr/bin/sed")),
                cgroup_id: 1234,
                container_id: None,
                argv: Some(vec![
                    "sed".into(),
                    "-i".into(),
                    "s/true/false/".into(),
                    "/var/lib/kubelet/config.yaml".into(),
                ]),
            }),
            guessed: false,
            inode: None,
            seq: 1,
            cut: false,
        },
        node: "node-1".into(),
        time: SystemTime::now(),
        benchmark: Benchmark::Cis16,
        distribution: None,
    }
}

fn reports() -> Vec<DriftReport> {
    let argv = vec![
        "/usr/bin/kubelet".into(),
        "--bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf".into(),
        "--kubeconfig=/etc/kubernetes/kubelet.conf".into(),
        "--config=/var/lib/kubelet/config.yaml".into(),
        "--container-runtime-endpoint=unix:///var/run/containerd/containerd.sock".into(),
    ];
    let pid = std::process::id();
    vec![
        report(
            Change::PendingDriftAppeared,
            Subject::AfterRestart {
                unit: Some("/lib/systemd/system/kubelet.service".into()),
                argv: argv.clone(),
                exec_start_from: Some(
                    "/etc/systemd/system/kubelet.service.d/10-kubeadm.conf".into(),
                ),
            },
        ),
        report(
            Change::DriftDetected,
            Subject::Running {
                pid,
                start_time: kubelet_drift::output::lifecycle::start_time(u64::from(pid))
                    .unwrap_or(0),
                argv,
                evaluated_late: false,
            },
        ),
    ]
}

fn stats(name: &str, mut us: Vec<f64>) {
    us.sort_by(f64::total_cmp);
    let q = |p: f64| us[((us.len() - 1) as f64 * p) as usize];
    println!(
        "{name:<44} p50 {:>7.1} µs  p90 {:>7.1}  p99 {:>7.1}  min {:>6.1}  (n={})",
        q(0.5),
        q(0.9),
        q(0.99),
        us[0],
        us.len()
    );
}

fn time_each(n: usize, rs: &[DriftReport], mut f: impl FnMut(&DriftReport)) -> Vec<f64> {
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let r = &rs[i % rs.len()];
        let t = Instant::now();
        f(r);
        out.push(t.elapsed().as_secs_f64() * 1e6);
    }
    out
}

/// A sink around the JSON one that notes when it was entered and when its line was written.
struct Timed {
    inner: ocsf::OcsfSink,
    marks: Arc<Mutex<Vec<(Instant, Instant)>>>,
}

impl Sink for Timed {
    fn report(&mut self, r: &DriftReport) -> anyhow::Result<()> {
        let entered = Instant::now();
        let res = self.inner.report(r);
        self.marks.lock().unwrap().push((entered, Instant::now()));
        res
    }
    fn notice(&mut self, n: &Notice) -> anyhow::Result<()> {
        self.inner.notice(n)
    }
}

/// A sink that does nothing but note when it was entered.
struct Noop(Arc<Mutex<Vec<(Instant, Instant)>>>);

impl Sink for Noop {
    fn report(&mut self, _: &DriftReport) -> anyhow::Result<()> {
        let now = Instant::now();
        self.0.lock().unwrap().push((now, now));
        Ok(())
    }
    fn notice(&mut self, _: &Notice) -> anyhow::Result<()> {
        Ok(())
    }
}

/// The caller's part alone: `Outputs::report` with no sink (the copy of the report kept
/// for resyncs) and with one that does nothing (plus the queue and the wake-up).
fn caller(n: usize, rs: &[DriftReport]) {
    let mut o = Outputs::new();
    let mut none = vec![];
    for i in 0..n {
        std::thread::sleep(Duration::from_millis(3));
        let t = Instant::now();
        o.report(&rs[i % rs.len()]);
        none.push(t.elapsed().as_secs_f64() * 1e6);
    }
    stats("Outputs::report, no sink", none);
    let marks = Arc::new(Mutex::new(Vec::new()));
    o.add("noop", Box::new(Noop(marks.clone())));
    let (mut call, mut wake) = (vec![], vec![]);
    for i in 0..n {
        std::thread::sleep(Duration::from_millis(3));
        let t = Instant::now();
        o.report(&rs[i % rs.len()]);
        call.push(t.elapsed().as_secs_f64() * 1e6);
        assert!(o.flush(Duration::from_secs(5)));
        wake.push((marks.lock().unwrap()[i].0 - t).as_secs_f64() * 1e6);
    }
    stats("Outputs::report, a sink doing nothing", call);
    stats("hand-off -> that sink entered", wake);
}

fn handoff(n: usize, rs: &[DriftReport]) {
    let marks = Arc::new(Mutex::new(Vec::new()));
    let mut o = Outputs::new();
    o.add(
        "json",
        Box::new(Timed {
            inner: ocsf::OcsfSink::open_with_state("/dev/null", None).unwrap(),
            marks: marks.clone(),
        }),
    );
    let (mut wake, mut written, mut call) = (vec![], vec![], vec![]);
    for i in 0..n {
        let r = &rs[i % rs.len()];
        // Idle, as between two edits.
        std::thread::sleep(Duration::from_millis(3));
        let t = Instant::now();
        o.report(r);
        call.push(t.elapsed().as_secs_f64() * 1e6);
        assert!(o.flush(Duration::from_secs(5)));
        let (entered, done) = marks.lock().unwrap()[i];
        wake.push((entered - t).as_secs_f64() * 1e6);
        written.push((done - t).as_secs_f64() * 1e6);
    }
    stats("Outputs::report (caller's cost)", call);
    stats("hand-off -> sink entered (wake-up)", wake);
    stats("hand-off -> line written", written);
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(2000);
    let rs = reports();
    for r in &rs {
        let v = ocsf::to_ocsf(r);
        println!(
            "{}: line of {} bytes",
            r.change.as_str(),
            serde_json::to_vec(&v).unwrap().len() + 1
        );
    }
    // Warm up (machine id, boot id, allocator).
    for r in &rs {
        let _ = serde_json::to_vec(&ocsf::to_ocsf(r));
    }
    stats(
        "to_ocsf + serialize (Value tree)",
        time_each(n, &rs, |r| {
            let mut line = Vec::with_capacity(8192);
            serde_json::to_writer(&mut line, &ocsf::to_ocsf(r)).unwrap();
            line.push(b'\n');
            std::hint::black_box(line);
        }),
    );
    stats(
        "typed FindingLine + serialize",
        time_each(n, &rs, |r| {
            let uid = ocsf::finding_uid(r);
            let parts = ocsf::Parts::new(r, 2, &uid, None);
            let mut line = Vec::with_capacity(8192);
            serde_json::to_writer(&mut line, &ocsf::FindingLine::new(r, &parts)).unwrap();
            line.push(b'\n');
            std::hint::black_box(line);
        }),
    );
    let mut sink = ocsf::OcsfSink::open_with_state("/dev/null", None).unwrap();
    stats(
        "OcsfSink::report to /dev/null",
        time_each(n, &rs, |r| sink.report(r).unwrap()),
    );
    caller(n.min(300), &rs);
    handoff(n.min(500), &rs);
    cold_steps(300, &rs);
}

/// The same steps after an idle pause each (caches cold, as the daemon's sink thread finds
/// them after an edit): building the Value tree, serializing it, dropping it, then the whole
/// sink for that report.
fn cold_steps(n: usize, rs: &[DriftReport]) {
    let mut a = vec![];
    let mut b = vec![];
    let mut c = vec![];
    let mut d = vec![];
    let mut sink = ocsf::OcsfSink::open_with_state("/dev/null", None).unwrap();
    let mut e = vec![];
    for i in 0..n {
        let r = &rs[i % rs.len()];
        std::thread::sleep(Duration::from_millis(3));
        let t = Instant::now();
        let uid = ocsf::finding_uid(r);
        let parts = ocsf::Parts::new(r, 2, &uid, None);
        let mut line = Vec::with_capacity(8192);
        serde_json::to_writer(&mut line, &ocsf::FindingLine::new(r, &parts)).unwrap();
        e.push(t.elapsed().as_secs_f64() * 1e6);
        std::hint::black_box(line);
        std::thread::sleep(Duration::from_millis(3));
        let t = Instant::now();
        let v = ocsf::to_ocsf(r);
        let t1 = Instant::now();
        let mut line = Vec::with_capacity(8192);
        serde_json::to_writer(&mut line, &v).unwrap();
        let t2 = Instant::now();
        drop(v);
        let t3 = Instant::now();
        sink.report(r).unwrap();
        let t4 = Instant::now();
        a.push((t1 - t).as_secs_f64() * 1e6);
        b.push((t2 - t1).as_secs_f64() * 1e6);
        c.push((t3 - t2).as_secs_f64() * 1e6);
        d.push((t4 - t3).as_secs_f64() * 1e6);
    }
    stats("cold: typed line (build + serialize)", e);
    stats("cold: to_ocsf (Value tree)", a);
    stats("cold: serialize", b);
    stats("cold: drop Value", c);
    stats("cold: OcsfSink::report after those", d);
}

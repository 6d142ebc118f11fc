//! Where reports go: journald (native protocol), OCSF JSON lines, human text on stderr.
//!
//! Every sink implements [`Sink`]; [`Outputs`] fans one report out to all of them, and never
//! waits for any of them: each sink has a bounded [`queue::Queue`] and a writer thread of its
//! own, and its writes do not block for long either (see [`line`]). So a stalled pipe, a FIFO
//! without a reader, a full disk or a hung journald cannot stop the monitor or the other sinks.
//!
//! A sink is *failing* from its first refused record (a write error, a stall, or its queue
//! full because it does not keep up) until it works again. Both transitions are told once, as
//! a [`Notice`] through the sinks that work (and on stderr when no working sink writes
//! there). Records it could not take meanwhile are counted; when it works again it gets, before
//! anything else, a notice saying how many were lost, then a *resync*: the current state of
//! every subject restated as `baseline` reports whose trigger op is `resync`. A failing sink is
//! retried with every record, and every [`RETRY`] when there is none.

pub mod diag;
pub mod journald;
pub mod lifecycle;
pub mod line;
pub mod ocsf;
pub mod queue;
pub mod text;

use std::{
    collections::BTreeMap,
    io::Write,
    sync::{
        Arc, Mutex, RwLock,
        atomic::{AtomicBool, Ordering},
    },
    thread::JoinHandle,
    time::{Duration, Instant, SystemTime},
};

use crate::{
    finding::{Source, Status, Subject, path_text},
    report::{Change, DriftReport, Notice, NoticeLevel, Trigger, TriggerOp},
};
use queue::{Pop, Queue};

/// One destination for reports. Called from the sink's own writer thread only.
pub trait Sink: Send {
    fn report(&mut self, r: &DriftReport) -> anyhow::Result<()>;
    fn notice(&mut self, n: &Notice) -> anyhow::Result<()>;
    /// Opens its file again with the next record (SIGHUP, after a log rotation).
    fn reopen(&mut self) {}
    /// Its queue is empty: work put off while lines were waiting can be done now (the OCSF
    /// sink's state file, whose fsync would otherwise hold back the next line).
    fn idle(&mut self) {}
}

/// Records a sink's queue holds before further ones are dropped (and counted).
pub const QUEUE_CAPACITY: usize = 1024;
/// How often a failing sink with nothing to write is tried again.
pub const RETRY: Duration = Duration::from_secs(1);
/// How long dropping [`Outputs`] waits for the writers to finish what is queued.
pub const SHUTDOWN: Duration = Duration::from_secs(3);

#[derive(Clone)]
enum Item {
    Report(Arc<DriftReport>),
    Notice(Notice),
    Reopen,
}

struct Slot {
    name: String,
    /// The sink writes to stderr (text): while it works, a failure told through it is not
    /// written to stderr a second time.
    on_stderr: bool,
    queue: Queue<Item>,
    failing: AtomicBool,
}

/// What the writers share.
struct Hub {
    slots: RwLock<Vec<Arc<Slot>>>,
    /// Where failures of sinks are told besides the other sinks (stderr; a buffer in tests).
    stderr: Mutex<Box<dyn Write + Send>>,
    /// The last report of every current subject, restated to a sink after its outage.
    current: Mutex<BTreeMap<String, Arc<DriftReport>>>,
}

/// Fan-out to several sinks. See the module documentation for the failure rules.
pub struct Outputs {
    hub: Arc<Hub>,
    workers: Vec<JoinHandle<()>>,
    capacity: usize,
}

impl Default for Outputs {
    fn default() -> Self {
        Self::new()
    }
}

/// stderr for the direct telling of failures: one non-blocking write per line, never waited on.
struct StderrLines(line::LineWriter);

impl Write for StderrLines {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.write_line(buf).map_err(std::io::Error::other)?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Outputs {
    pub fn new() -> Self {
        let (w, _) = line::LineWriter::new(line::Target::Fd(2));
        Outputs {
            hub: Arc::new(Hub {
                slots: RwLock::new(Vec::new()),
                stderr: Mutex::new(Box::new(StderrLines(w.with_stall(Duration::ZERO)))),
                current: Mutex::new(BTreeMap::new()),
            }),
            workers: Vec::new(),
            capacity: QUEUE_CAPACITY,
        }
    }

    /// Tells sink failures to `w` instead of stderr (tests).
    pub fn with_stderr(self, w: Box<dyn Write + Send>) -> Self {
        *lock(&self.hub.stderr) = w;
        self
    }

    /// The queue capacity of sinks added from now on (tests).
    pub fn with_capacity(mut self, n: usize) -> Self {
        self.capacity = n;
        self
    }

    /// Adds a sink; `name` ("journald", "json", "text") names it in failure notices.
    pub fn add(&mut self, name: impl Into<String>, sink: Box<dyn Sink>) {
        self.add_slot(name.into(), sink, false);
    }

    /// Adds a sink that writes to the same stderr failures are told on.
    pub fn add_on_stderr(&mut self, name: impl Into<String>, sink: Box<dyn Sink>) {
        self.add_slot(name.into(), sink, true);
    }

    fn add_slot(&mut self, name: String, sink: Box<dyn Sink>, on_stderr: bool) {
        let slot = Arc::new(Slot {
            name: name.clone(),
            on_stderr,
            queue: Queue::new(self.capacity),
            failing: AtomicBool::new(false),
        });
        self.hub
            .slots
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .push(slot.clone());
        let hub = self.hub.clone();
        match std::thread::Builder::new()
            .name(format!("sink-{name}"))
            .spawn(move || writer(&hub, &slot, sink))
        {
            Ok(h) => self.workers.push(h),
            Err(e) => {
                let _ = writeln!(
                    lock(&self.hub.stderr),
                    "kubelet-drift: output {name}: cannot start its writer thread: {e}"
                );
            }
        }
    }

    /// The sinks the settings ask for: journald when its socket exists (or when forced),
    /// JSON lines when `json_out` is set, text when stderr is a terminal (or when forced).
    pub fn from_settings(s: &crate::settings::Settings) -> anyhow::Result<Self> {
        let mut o = Outputs::new();
        if s.outputs
            .journald
            .resolve(journald::JournaldSink::available)
        {
            o.add("journald", Box::new(journald::JournaldSink::new()));
        }
        if let Some(target) = &s.outputs.json_out {
            let state = s
                .outputs
                .state_file
                .clone()
                .or_else(lifecycle::default_state_path);
            o.add(
                "json",
                Box::new(ocsf::OcsfSink::open_with_state(target, state)?),
            );
        }
        if s.outputs.text.resolve(|| {
            use std::io::IsTerminal;
            std::io::stderr().is_terminal()
        }) {
            o.add_on_stderr("text", Box::new(text::TextSink::stderr()));
        }
        Ok(o)
    }

    fn slots(&self) -> Vec<Arc<Slot>> {
        self.hub.slots()
    }

    pub fn len(&self) -> usize {
        self.slots().len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots().is_empty()
    }

    /// Names of the sinks currently failing.
    pub fn failing(&self) -> Vec<String> {
        self.slots()
            .iter()
            .filter(|s| s.failing.load(Ordering::SeqCst))
            .map(|s| s.name.clone())
            .collect()
    }

    /// Queues a report for every sink (failing ones included: that is the retry). Never waits.
    pub fn report(&mut self, r: &DriftReport) {
        // One copy, shared by the queues and the state kept for resyncs.
        let r = Arc::new(r.clone());
        self.hub.remember(&r);
        self.push(Item::Report(r));
    }

    /// Queues a notice for every sink (failing ones included). Never waits.
    pub fn notice(&mut self, n: &Notice) {
        self.push(Item::Notice(n.clone()));
    }

    /// Has every sink open its file again before its next record (the daemon's SIGHUP, so
    /// that `json_out` can be rotated). Never waits.
    pub fn reopen(&mut self) {
        self.push(Item::Reopen);
    }

    fn push(&mut self, item: Item) {
        for s in self.slots() {
            if !s.queue.push(item.clone()) {
                self.hub.overflow(&s);
            }
        }
    }

    /// Waits until every queue is empty and every writer idle, at most `timeout`; whether
    /// that happened.
    pub fn flush(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.slots().iter().all(|s| s.queue.is_settled()) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

impl Drop for Outputs {
    /// The writers finish what is queued, for [`SHUTDOWN`] at most (a stalled sink is left
    /// behind: the process is exiting).
    fn drop(&mut self) {
        for s in self.slots() {
            s.queue.close();
        }
        let deadline = Instant::now() + SHUTDOWN;
        while Instant::now() < deadline && !self.workers.iter().all(|w| w.is_finished()) {
            std::thread::sleep(Duration::from_millis(5));
        }
        for w in self.workers.drain(..) {
            if w.is_finished() {
                let _ = w.join();
            }
        }
    }
}

fn lock<T: ?Sized>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Hub {
    fn slots(&self) -> Vec<Arc<Slot>> {
        self.slots.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Keeps the last report of every current subject, for resyncs.
    fn remember(&self, r: &Arc<DriftReport>) {
        let key = r.finding.subject.key();
        let mut cur = lock(&self.current);
        match r.change {
            Change::KubeletStopped => {
                cur.remove(&key);
            }
            // About the after-restart subject relative to a running one: the two subjects'
            // own reports restate it.
            Change::PendingDriftAppeared | Change::PendingDriftCleared => {}
            _ => {
                cur.insert(key, r.clone());
            }
        }
    }

    /// The current state of every subject as resync reports.
    fn resync_reports(&self) -> Vec<DriftReport> {
        let now = SystemTime::now();
        lock(&self.current)
            .values()
            .map(|r| DriftReport {
                change: Change::Baseline,
                finding: r.finding.clone(),
                previous: None,
                trigger: Trigger::internal(TriggerOp::Resync),
                node: r.node.clone(),
                time: now,
                benchmark: r.benchmark,
                distribution: r.distribution.clone(),
            })
            .collect()
    }

    /// A record could not be queued for `slot`.
    fn overflow(&self, slot: &Slot) {
        let message = format!(
            "its queue of {} records is full (it does not keep up); records for it are dropped and counted",
            slot.queue.capacity()
        );
        self.fail(slot, &message);
    }

    /// `slot` refused a record: told once, until it works again.
    fn fail(&self, slot: &Slot, why: &str) {
        if slot.failing.swap(true, Ordering::SeqCst) {
            return;
        }
        let message = format!(
            "output {} failed: {}; it is retried, and when it works again the records it missed are counted and the current state restated",
            slot.name,
            text::escape(why)
        );
        self.tell(
            slot,
            Notice {
                level: NoticeLevel::Error,
                message,
            },
        );
    }

    /// Tells a transition of `about` through the other working sinks, and on stderr when
    /// none of them writes there.
    fn tell(&self, about: &Slot, n: Notice) {
        let slots = self.slots();
        let others = || {
            slots.iter().filter(move |s| {
                !std::ptr::eq(s.as_ref(), about) && !s.failing.load(Ordering::SeqCst)
            })
        };
        if !others().any(|s| s.on_stderr) {
            let _ =
                lock(&self.stderr).write_all(format!("kubelet-drift: {}\n", n.message).as_bytes());
        }
        for s in others() {
            if !s.queue.push(Item::Notice(n.clone())) {
                // Each sink goes from working to failing once: this ends.
                self.overflow(s);
            }
        }
    }
}

/// The writer thread of one sink.
fn writer(hub: &Hub, slot: &Slot, mut sink: Box<dyn Sink>) {
    // Records this sink refused (not those dropped at its full queue: the queue counts them).
    let mut lost: u64 = 0;
    loop {
        let wait = if slot.failing.load(Ordering::SeqCst) {
            RETRY
        } else {
            Duration::MAX
        };
        match slot.queue.pop(wait) {
            Pop::Closed => {
                sink.idle();
                return;
            }
            Pop::Empty => {
                if slot.failing.load(Ordering::SeqCst) {
                    recover(hub, slot, sink.as_mut(), &mut lost);
                }
            }
            Pop::Item(item) => {
                let res = match &item {
                    Item::Report(r) => sink.report(r),
                    Item::Notice(n) => sink.notice(n),
                    Item::Reopen => {
                        sink.reopen();
                        Ok(())
                    }
                };
                match res {
                    Ok(()) if slot.failing.load(Ordering::SeqCst) && slot.queue.is_empty() => {
                        recover(hub, slot, sink.as_mut(), &mut lost);
                    }
                    Ok(()) => {}
                    Err(e) => {
                        if !taken(&e) {
                            lost += 1;
                        }
                        hub.fail(slot, &format!("{e:#}"));
                    }
                }
                if slot.queue.is_empty() {
                    sink.idle();
                }
                slot.queue.idle();
            }
        }
    }
}

/// A refused line that was handed on in part: delayed, not lost.
fn taken(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<line::LineError>().is_some_and(|l| l.taken)
            || c.downcast_ref::<std::io::Error>()
                .and_then(|io| io.get_ref())
                .and_then(|i| i.downcast_ref::<line::LineError>())
                .is_some_and(|l| l.taken)
    })
}

/// Tries a failing sink with the notice of its recovery; if it takes it, the others are told
/// and the sink gets the current state again when it missed records.
fn recover(hub: &Hub, slot: &Slot, sink: &mut dyn Sink, lost: &mut u64) {
    let dropped = slot.queue.take_dropped();
    let missed = *lost + dropped;
    let n = if missed == 0 {
        Notice {
            level: NoticeLevel::Info,
            message: format!("output {} works again; it missed no record", slot.name),
        }
    } else {
        Notice {
            level: NoticeLevel::Warning,
            message: format!(
                "output {} works again; {missed} record(s) could not be written to it while it failed ({dropped} dropped at its full queue); the current state is restated to it (trigger op \"resync\")",
                slot.name
            ),
        }
    };
    if sink.notice(&n).is_err() {
        slot.queue.add_dropped(dropped);
        return;
    }
    *lost = 0;
    slot.failing.store(false, Ordering::SeqCst);
    hub.tell(slot, n);
    if missed > 0 {
        for r in hub.resync_reports() {
            if let Err(e) = sink.report(&r) {
                if !taken(&e) {
                    *lost += 1;
                }
                hub.fail(slot, &format!("{e:#}"));
                return;
            }
        }
    }
}

/// "running", "after_restart" or "arguments": the kind of a subject, as every output names it.
pub fn subject_kind(s: &Subject) -> &'static str {
    match s {
        Subject::Running { .. } => "running",
        Subject::AfterRestart { .. } => "after_restart",
        Subject::Arguments { .. } => "arguments",
    }
}

pub fn status_str(s: Status) -> &'static str {
    match s {
        Status::Pass => "pass",
        Status::Fail => "fail",
        Status::Error => "error",
    }
}

/// "true", "false" or "unknown".
pub fn effective_str(e: Option<bool>) -> &'static str {
    match e {
        Some(true) => "true",
        Some(false) => "false",
        None => "unknown",
    }
}

/// One-string form of a [`Source`]: `file:PATH:LINE`, `dropin:PATH:LINE`, `unit:PATH:LINE`
/// (`:LINE` only when known), `flag:argv[N]:TEXT`, `default`, `none:DETAIL`.
/// Paths that are not UTF-8 are in [`path_text`] form.
pub fn source_str(s: &Source) -> String {
    fn with_line(kind: &str, p: &std::path::Path, line: &Option<usize>) -> String {
        match line {
            Some(l) => format!("{kind}:{}:{l}", path_text(p)),
            None => format!("{kind}:{}", path_text(p)),
        }
    }
    match s {
        Source::Flag { index, text } => format!("flag:argv[{index}]:{text}"),
        Source::ConfigFile { path, line } => with_line("file", path, line),
        Source::DropIn { path, line } => with_line("dropin", path, line),
        Source::Unit { path, line } => with_line("unit", path, line),
        Source::Default => "default".into(),
        Source::None { detail } => format!("none:{detail}"),
    }
}

/// A trigger path as the outputs give it: `(absolute, as_given)`. The daemon resolves a
/// relative path against its process's cwd or dirfd, or takes the input matched by inode
/// (`daemon::naming::absolute_paths`); one still relative belongs to a process gone before
/// that, in a directory no longer known: it is given as the process gave it, never as a
/// path.
pub fn placed(p: Option<&std::path::Path>) -> (Option<&std::path::Path>, Option<&std::path::Path>) {
    match p {
        Some(p) if p.is_relative() => (None, Some(p)),
        p => (p, None),
    }
}

/// The subject's argv, if it has one.
pub fn subject_argv(s: &Subject) -> &[String] {
    match s {
        Subject::Running { argv, .. }
        | Subject::AfterRestart { argv, .. }
        | Subject::Arguments { argv, .. } => argv,
    }
}

/// An argv as one line a shell would split back the same way (single quotes where needed).
pub fn join_argv(argv: &[String]) -> String {
    argv.iter()
        .map(|a| {
            let plain = !a.is_empty()
                && a.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_=./:,@+%".contains(&b));
            if plain {
                a.clone()
            } else {
                format!("'{}'", a.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The plain sentence every output uses for a report, e.g.
/// "CIS 4.2.7 drift detected: kubelet (pid 1234) runs with makeIPTablesUtilChains=false:
/// /var/lib/kubelet/config.yaml line 3 sets it false; rename of /var/lib/kubelet/config.yaml by sed (pid 99, ppid 98, uid 0 root)".
/// Values are not escaped here (paths that are not UTF-8 are in [`path_text`] form): JSON
/// escapes what it needs. Terminals and journald's MESSAGE use [`sentence_escaped`].
pub fn sentence(r: &DriftReport) -> String {
    sentence_with(r, &|s| s.to_string(), &|p| path_text(p).into_owned())
}

/// [`sentence`] with every value escaped for a terminal ([`text::escape`],
/// [`text::escape_path`]): no value can start a line, forge a field or move the cursor.
pub fn sentence_escaped(r: &DriftReport) -> String {
    sentence_with(r, &text::escape, &text::escape_path)
}

type Fmt<'a, T> = &'a dyn Fn(&T) -> String;

fn sentence_with(r: &DriftReport, v: Fmt<'_, str>, path: Fmt<'_, std::path::Path>) -> String {
    use crate::report::Change::*;
    let f = &r.finding;
    let what = match r.change {
        Baseline => match &r.distribution {
            Some(d) => format!(
                "baseline {} on a {} node ({})",
                status_str(f.status),
                d.distribution.name(),
                v(&d.evidence)
            ),
            None => format!("baseline {}", status_str(f.status)),
        },
        DriftDetected => "drift detected".into(),
        DriftResolved => "drift resolved".into(),
        ErrorAppeared => "evaluation error".into(),
        ErrorCleared => format!("evaluation error cleared, now {}", status_str(f.status)),
        KubeletStarted => format!("kubelet started, {}", status_str(f.status)),
        KubeletStopped => "kubelet stopped".into(),
        PendingDriftAppeared => "pending drift (a restart would change the setting)".into(),
        PendingDriftCleared => "pending drift cleared".into(),
        ImpostorKubelet => "impostor kubelet ignored".into(),
    };
    let (who, verb) = match &f.subject {
        Subject::Running { pid, .. } => (format!("kubelet (pid {pid})"), "runs"),
        Subject::AfterRestart { .. } => ("kubelet after a restart".to_string(), "would run"),
        Subject::Arguments { .. } => ("kubelet with these arguments".to_string(), "would run"),
    };
    let value = match f.effective {
        Some(b) => format!("{who} {verb} with makeIPTablesUtilChains={b}"),
        None => format!("{who}: makeIPTablesUtilChains is unknown"),
    };
    let mut s = format!("CIS {} {what}: {value}", v(&f.control));
    if !f.reason.is_empty() {
        s.push_str(": ");
        s.push_str(&v(&f.reason));
    }
    if let Some(a) = &r.trigger.actor {
        let mut who = format!(
            "{} (pid {}, ppid {}, uid {}",
            v(&a.comm),
            a.pid,
            a.ppid,
            a.uid
        );
        if let Some(u) = &a.user {
            who.push(' ');
            who.push_str(&v(u));
        }
        who.push(')');
        let p = r.trigger.path.as_deref().map(path);
        let clause = match (r.trigger.op.as_str(), p) {
            ("exec", _) if r.change == ImpostorKubelet => format!("; impostor: {who}"),
            ("exec", _) => format!("; started: {who}"),
            ("exit", _) => format!("; exited: {who}"),
            ("baseline" | "rescan" | "lost_events" | "resync", _) => {
                format!("; found running: {who}")
            }
            (op, Some(p)) if r.trigger.path.as_deref().is_some_and(|p| p.is_relative()) => {
                format!(
                    "; {} of {p} (as given: a relative path whose directory is no longer known) by {who}",
                    v(op)
                )
            }
            (op, Some(p)) => format!("; {} of {p} by {who}", v(op)),
            (op, None) => format!("; {} by {who}", v(op)),
        };
        s.push_str(&clause);
    }
    s
}

#[cfg(any(test, feature = "testkit"))]
pub mod testutil;

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::report::Change;

    #[derive(Default)]
    struct Log {
        reports: Vec<String>,
        notices: Vec<String>,
    }

    /// A sink that fails while `fail` is set and blocks while `block` is set.
    struct Fake {
        log: Arc<Mutex<Log>>,
        fail: Arc<Mutex<bool>>,
        block: Arc<Mutex<bool>>,
    }

    impl Fake {
        fn gate(&self) -> anyhow::Result<()> {
            while *self.block.lock().unwrap() {
                std::thread::sleep(Duration::from_millis(1));
            }
            if *self.fail.lock().unwrap() {
                anyhow::bail!("socket gone");
            }
            Ok(())
        }
    }

    impl Sink for Fake {
        fn report(&mut self, r: &DriftReport) -> anyhow::Result<()> {
            self.gate()?;
            self.log.lock().unwrap().reports.push(format!(
                "{} {}",
                r.change.as_str(),
                r.trigger.op
            ));
            Ok(())
        }
        fn notice(&mut self, n: &Notice) -> anyhow::Result<()> {
            self.gate()?;
            self.log.lock().unwrap().notices.push(n.message.clone());
            Ok(())
        }
    }

    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);
    impl Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    impl Buf {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }

    struct Handle {
        log: Arc<Mutex<Log>>,
        fail: Arc<Mutex<bool>>,
        block: Arc<Mutex<bool>>,
    }
    impl Handle {
        fn reports(&self) -> Vec<String> {
            self.log.lock().unwrap().reports.clone()
        }
        fn notices(&self) -> Vec<String> {
            self.log.lock().unwrap().notices.clone()
        }
        fn set_fail(&self, v: bool) {
            *self.fail.lock().unwrap() = v;
        }
        fn set_block(&self, v: bool) {
            *self.block.lock().unwrap() = v;
        }
    }

    fn fake() -> (Box<Fake>, Handle) {
        let log = Arc::new(Mutex::new(Log::default()));
        let fail = Arc::new(Mutex::new(false));
        let block = Arc::new(Mutex::new(false));
        (
            Box::new(Fake {
                log: log.clone(),
                fail: fail.clone(),
                block: block.clone(),
            }),
            Handle { log, fail, block },
        )
    }

    fn settle(o: &Outputs) {
        assert!(o.flush(Duration::from_secs(10)), "outputs did not settle");
    }

    #[test]
    fn failing_sink_is_told_once_retried_and_recovery_told_once() {
        let err = Buf::default();
        let mut o = Outputs::new().with_stderr(Box::new(err.clone()));
        let (a, ah) = fake();
        let (b, bh) = fake();
        o.add("journald", a);
        o.add("json", b);
        let r = testutil::report(Change::DriftDetected);

        ah.set_fail(true);
        for _ in 0..3 {
            o.report(&r);
        }
        settle(&o);
        assert_eq!(o.failing(), vec!["journald"]);
        assert_eq!(bh.reports().len(), 3, "the other sink never stops");
        let bn = bh.notices();
        assert_eq!(bn.len(), 1, "{bn:?}");
        assert!(
            bn[0].contains("output journald failed: socket gone"),
            "{bn:?}"
        );
        assert_eq!(
            err.text().matches("output journald failed").count(),
            1,
            "{}",
            err.text()
        );

        ah.set_fail(false);
        o.report(&r);
        settle(&o);
        o.report(&r);
        settle(&o);
        assert!(o.failing().is_empty());
        // The first report after the outage, then the loss notice and the resync, then the next.
        let an = ah.notices();
        assert_eq!(an.len(), 1, "{an:?}");
        assert!(
            an[0].contains("works again; 3 record(s) could not be written"),
            "{an:?}"
        );
        assert_eq!(
            ah.reports(),
            vec![
                "drift_detected rename",
                "baseline resync",
                "drift_detected rename"
            ]
        );
        let bn = bh.notices();
        assert_eq!(bn.len(), 2);
        assert_eq!(bn[1], an[0]);
        assert_eq!(
            err.text().matches("output journald works again").count(),
            1,
            "{}",
            err.text()
        );
    }

    #[test]
    fn a_blocked_sink_never_blocks_the_caller_and_its_drops_are_counted() {
        let err = Buf::default();
        let mut o = Outputs::new()
            .with_stderr(Box::new(err.clone()))
            .with_capacity(4);
        let (a, ah) = fake();
        let (b, bh) = fake();
        o.add("json", a);
        o.add_on_stderr("text", b);
        ah.set_block(true);
        let t = Instant::now();
        let mut r = testutil::report(Change::Baseline);
        for i in 0..50 {
            r.finding.subject = Subject::Running {
                pid: 1000 + i,
                start_time: 1,
                argv: vec!["kubelet".into()],
                evaluated_late: false,
            };
            o.report(&r);
            // Slow enough for the working sink's writer to keep up with its small queue.
            std::thread::sleep(Duration::from_millis(3));
        }
        assert!(t.elapsed() < Duration::from_secs(2), "report() waited");
        // The other sink got everything and was told of the stall.
        assert!(!o.flush(Duration::from_millis(300)), "json is blocked");
        std::thread::sleep(Duration::from_millis(100));
        assert_eq!(bh.reports().len(), 50, "{:?}", bh.reports());
        let bn = bh.notices();
        assert_eq!(bn.len(), 1, "{bn:?}");
        assert!(
            bn[0].contains("output json failed: its queue of 4 records is full"),
            "{bn:?}"
        );
        assert_eq!(o.failing(), vec!["json"]);
        // It unblocks: it writes what it had (4 queued, and one in hand if it took one before
        // the queue filled), then the loss, then every current subject restated (50 running
        // kubelets).
        ah.set_block(false);
        settle(&o);
        let ar = ah.reports();
        let written = ar.len() - 50;
        assert!((4..=5).contains(&written), "{ar:?}");
        assert!(ar[written..].iter().all(|r| r == "baseline resync"));
        let lost = 50 - written;
        let an = ah.notices();
        assert_eq!(an.len(), 1, "{an:?}");
        assert!(
            an[0].contains(&format!(
                "{lost} record(s) could not be written to it while it failed ({lost} dropped at its full queue)"
            )),
            "{an:?}"
        );
        assert!(o.failing().is_empty());
        assert_eq!(bh.notices().len(), 2);
        assert!(err.text().is_empty(), "told through text: {}", err.text());
    }

    #[test]
    fn a_failure_is_not_told_twice_on_stderr() {
        let err = Buf::default();
        let mut o = Outputs::new().with_stderr(Box::new(err.clone()));
        let (a, ah) = fake();
        let (text, th) = fake();
        o.add("journald", a);
        o.add_on_stderr("text", text);
        ah.set_fail(true);
        o.report(&testutil::report(Change::DriftDetected));
        settle(&o);
        // Told through the text sink, which is stderr: not written there directly too.
        assert_eq!(th.notices().len(), 1);
        assert!(err.text().is_empty());
        // With the text sink failing as well, stderr is written directly.
        th.set_fail(true);
        o.report(&testutil::report(Change::DriftDetected));
        settle(&o);
        assert!(err.text().contains("output text failed"), "{}", err.text());
    }

    #[test]
    fn all_sinks_failing_does_not_loop_or_panic() {
        let mut o = Outputs::new().with_stderr(Box::new(Buf::default()));
        let (a, ah) = fake();
        let (b, bh) = fake();
        ah.set_fail(true);
        bh.set_fail(true);
        o.add("a", a);
        o.add("b", b);
        o.notice(&Notice {
            level: NoticeLevel::Warning,
            message: "lost 3 events".into(),
        });
        settle(&o);
        let mut f = o.failing();
        f.sort();
        assert_eq!(f, vec!["a", "b"]);
    }

    #[test]
    fn drop_waits_for_queued_records_but_not_for_a_stalled_sink() {
        let (a, ah) = fake();
        let (b, bh) = fake();
        {
            let mut o = Outputs::new().with_stderr(Box::new(Buf::default()));
            o.add("a", a);
            o.add("b", b);
            bh.set_block(true);
            for _ in 0..20 {
                o.report(&testutil::report(Change::Baseline));
            }
            let t = Instant::now();
            drop(o);
            assert!(t.elapsed() < SHUTDOWN + Duration::from_secs(1));
        }
        assert_eq!(ah.reports().len(), 20);
        bh.set_block(false);
    }

    #[test]
    fn sentence_reads_plainly() {
        let r = testutil::report(Change::DriftDetected);
        assert_eq!(
            sentence(&r),
            "CIS 4.2.7 drift detected: kubelet (pid 1234) runs with makeIPTablesUtilChains=false: \
             /var/lib/kubelet/config.yaml line 3 sets it false; rename of /var/lib/kubelet/config.yaml by sed (pid 99, ppid 98, uid 0 root)"
        );
    }

    #[test]
    fn source_and_argv_strings() {
        assert_eq!(
            source_str(&Source::ConfigFile {
                path: "/var/lib/kubelet/config.yaml".into(),
                line: Some(3)
            }),
            "file:/var/lib/kubelet/config.yaml:3"
        );
        assert_eq!(
            source_str(&Source::Flag {
                index: 5,
                text: "--make-iptables-util-chains=false".into()
            }),
            "flag:argv[5]:--make-iptables-util-chains=false"
        );
        assert_eq!(source_str(&Source::Default), "default");
        assert_eq!(
            join_argv(&["/usr/bin/kubelet".into(), "a b".into(), "it's".into()]),
            r"/usr/bin/kubelet 'a b' 'it'\''s'"
        );
    }
}

//! Where reports go: journald (native protocol), OCSF JSON lines, human text on stderr.
//!
//! Every sink implements [`Sink`]; [`Outputs`] fans one report out to all of them. A sink that
//! fails never stops the others: its first failure is told once (on stderr and, as a
//! [`Notice`], through the sinks that still work), it is retried with every later report or
//! notice, and when it works again that is told once too.

pub mod journald;
pub mod ocsf;
pub mod text;

use std::io::Write;

use crate::{
    finding::{Source, Status, Subject},
    report::{DriftReport, Notice, NoticeLevel},
};

/// One destination for reports.
pub trait Sink: Send {
    fn report(&mut self, r: &DriftReport) -> anyhow::Result<()>;
    fn notice(&mut self, n: &Notice) -> anyhow::Result<()>;
}

struct Slot {
    name: String,
    sink: Box<dyn Sink>,
    /// Set while the sink is failing (after its failure has been told once).
    failing: bool,
    /// The sink writes to stderr (text): while it works, a failure told through it is not
    /// written to stderr a second time.
    on_stderr: bool,
}

/// Fan-out to several sinks. See the module documentation for the failure rules.
pub struct Outputs {
    slots: Vec<Slot>,
    /// Where failures of sinks are told besides the other sinks (stderr; a buffer in tests).
    stderr: Box<dyn Write + Send>,
}

impl Default for Outputs {
    fn default() -> Self {
        Self::new()
    }
}

impl Outputs {
    pub fn new() -> Self {
        Outputs {
            slots: Vec::new(),
            stderr: Box::new(std::io::stderr()),
        }
    }

    /// Tells sink failures to `w` instead of stderr (tests).
    pub fn with_stderr(mut self, w: Box<dyn Write + Send>) -> Self {
        self.stderr = w;
        self
    }

    /// Adds a sink; `name` ("journald", "json", "text") names it in failure notices.
    pub fn add(&mut self, name: impl Into<String>, sink: Box<dyn Sink>) {
        self.slots.push(Slot {
            name: name.into(),
            sink,
            failing: false,
            on_stderr: false,
        });
    }

    /// Adds a sink that writes to the same stderr failures are told on.
    pub fn add_on_stderr(&mut self, name: impl Into<String>, sink: Box<dyn Sink>) {
        self.add(name, sink);
        if let Some(s) = self.slots.last_mut() {
            s.on_stderr = true;
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
            o.add("json", Box::new(ocsf::OcsfSink::open(target)?));
        }
        if s.outputs.text.resolve(|| {
            use std::io::IsTerminal;
            std::io::stderr().is_terminal()
        }) {
            o.add_on_stderr("text", Box::new(text::TextSink::stderr()));
        }
        Ok(o)
    }

    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Names of the sinks currently failing.
    pub fn failing(&self) -> Vec<&str> {
        self.slots
            .iter()
            .filter(|s| s.failing)
            .map(|s| s.name.as_str())
            .collect()
    }

    /// Sends a report to every sink (failing ones included: that is the retry).
    pub fn report(&mut self, r: &DriftReport) {
        let results: Vec<_> = self.slots.iter_mut().map(|s| s.sink.report(r)).collect();
        self.settle(results);
    }

    /// Sends a notice to every sink (failing ones included: that is the retry).
    pub fn notice(&mut self, n: &Notice) {
        let results: Vec<_> = self.slots.iter_mut().map(|s| s.sink.notice(n)).collect();
        self.settle(results);
    }

    /// Turns per-sink results into state transitions, and tells each transition once.
    fn settle(&mut self, results: Vec<anyhow::Result<()>>) {
        let mut pending: Vec<(usize, Notice)> = Vec::new();
        for (i, res) in results.into_iter().enumerate() {
            if let Some(n) = self.transition(i, res) {
                pending.push((i, n));
            }
        }
        // Tell each transition through the other sinks that work; a sink failing while it
        // is told is itself a transition, told the same way. Each sink can go from working to
        // failing once here, so this ends.
        while let Some((about, n)) = pending.pop() {
            for j in 0..self.slots.len() {
                if j == about || self.slots[j].failing {
                    continue;
                }
                let res = self.slots[j].sink.notice(&n);
                if let Some(n2) = self.transition(j, res) {
                    pending.push((j, n2));
                }
            }
        }
    }

    fn transition(&mut self, i: usize, res: anyhow::Result<()>) -> Option<Notice> {
        // A working sink on stderr other than this one tells it there (as a notice) already.
        let told_on_stderr = self
            .slots
            .iter()
            .enumerate()
            .any(|(j, s)| j != i && s.on_stderr && !s.failing);
        let slot = &mut self.slots[i];
        match (res, slot.failing) {
            (Err(e), false) => {
                slot.failing = true;
                let message = format!(
                    "output {} failed: {}; it is retried with each report, and its recovery will be reported",
                    slot.name,
                    text::escape(&format!("{e:#}"))
                );
                if !told_on_stderr {
                    let _ = writeln!(self.stderr, "kubelet-drift: {message}");
                }
                Some(Notice {
                    level: NoticeLevel::Error,
                    message,
                })
            }
            (Ok(()), true) => {
                slot.failing = false;
                let message = format!("output {} works again", slot.name);
                if !told_on_stderr {
                    let _ = writeln!(self.stderr, "kubelet-drift: {message}");
                }
                Some(Notice {
                    level: NoticeLevel::Info,
                    message,
                })
            }
            _ => None,
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
/// Paths that are not UTF-8 get replacement characters.
pub fn source_str(s: &Source) -> String {
    fn with_line(kind: &str, p: &std::path::Path, line: &Option<usize>) -> String {
        match line {
            Some(l) => format!("{kind}:{}:{l}", p.to_string_lossy()),
            None => format!("{kind}:{}", p.to_string_lossy()),
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
/// Values are not escaped here: each output escapes for its medium.
pub fn sentence(r: &DriftReport) -> String {
    use crate::report::Change::*;
    let f = &r.finding;
    let what = match r.change {
        Baseline => format!("baseline {}", status_str(f.status)),
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
        Some(v) => format!("{who} {verb} with makeIPTablesUtilChains={v}"),
        None => format!("{who}: makeIPTablesUtilChains is unknown"),
    };
    let mut s = format!("CIS {} {what}: {value}", f.control);
    if !f.reason.is_empty() {
        s.push_str(": ");
        s.push_str(&f.reason);
    }
    if let Some(a) = &r.trigger.actor {
        let mut who = format!("{} (pid {}, ppid {}, uid {}", a.comm, a.pid, a.ppid, a.uid);
        if let Some(u) = &a.user {
            who.push(' ');
            who.push_str(u);
        }
        who.push(')');
        let path = r.trigger.path.as_ref().map(|p| p.display().to_string());
        let clause = match (r.trigger.op.as_str(), path) {
            ("exec", _) if r.change == ImpostorKubelet => format!("; impostor: {who}"),
            ("exec", _) => format!("; started: {who}"),
            ("exit", _) => format!("; exited: {who}"),
            ("baseline" | "rescan" | "lost_events", _) => format!("; found running: {who}"),
            (op, Some(p)) => format!("; {op} of {p} by {who}"),
            (op, None) => format!("; {op} by {who}"),
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
        reports: usize,
        notices: Vec<String>,
    }

    struct Fake {
        log: Arc<Mutex<Log>>,
        fail: Arc<Mutex<bool>>,
    }

    impl Sink for Fake {
        fn report(&mut self, _: &DriftReport) -> anyhow::Result<()> {
            if *self.fail.lock().unwrap() {
                anyhow::bail!("socket gone");
            }
            self.log.lock().unwrap().reports += 1;
            Ok(())
        }
        fn notice(&mut self, n: &Notice) -> anyhow::Result<()> {
            if *self.fail.lock().unwrap() {
                anyhow::bail!("socket gone");
            }
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

    fn fake() -> (Box<Fake>, Arc<Mutex<Log>>, Arc<Mutex<bool>>) {
        let log = Arc::new(Mutex::new(Log::default()));
        let fail = Arc::new(Mutex::new(false));
        (
            Box::new(Fake {
                log: log.clone(),
                fail: fail.clone(),
            }),
            log,
            fail,
        )
    }

    #[test]
    fn failing_sink_is_told_once_retried_and_recovery_told_once() {
        let err = Buf::default();
        let mut o = Outputs::new().with_stderr(Box::new(err.clone()));
        let (a, alog, afail) = fake();
        let (b, blog, _) = fake();
        o.add("journald", a);
        o.add("json", b);
        let r = testutil::report(Change::DriftDetected);

        *afail.lock().unwrap() = true;
        for _ in 0..3 {
            o.report(&r);
        }
        assert_eq!(o.failing(), vec!["journald"]);
        assert_eq!(
            blog.lock().unwrap().reports,
            3,
            "the other sink never stops"
        );
        let bn = blog.lock().unwrap().notices.clone();
        assert_eq!(bn.len(), 1, "{bn:?}");
        assert!(bn[0].contains("output journald failed: socket gone"));
        let e = String::from_utf8(err.0.lock().unwrap().clone()).unwrap();
        assert_eq!(e.matches("failed").count(), 1, "{e}");

        *afail.lock().unwrap() = false;
        o.report(&r);
        o.report(&r);
        assert!(o.failing().is_empty());
        assert_eq!(alog.lock().unwrap().reports, 2);
        let bn = blog.lock().unwrap().notices.clone();
        assert_eq!(bn.len(), 2);
        assert_eq!(bn[1], "output journald works again");
        let e = String::from_utf8(err.0.lock().unwrap().clone()).unwrap();
        assert_eq!(e.matches("works again").count(), 1, "{e}");
    }

    #[test]
    fn a_failure_is_not_told_twice_on_stderr() {
        let err = Buf::default();
        let mut o = Outputs::new().with_stderr(Box::new(err.clone()));
        let (a, _, afail) = fake();
        let (text, tlog, tfail) = fake();
        o.add("journald", a);
        o.add_on_stderr("text", text);
        *afail.lock().unwrap() = true;
        o.report(&testutil::report(Change::DriftDetected));
        // Told through the text sink, which is stderr: not written there directly too.
        assert_eq!(tlog.lock().unwrap().notices.len(), 1);
        assert!(err.0.lock().unwrap().is_empty());
        // With the text sink failing as well, stderr is written directly.
        *tfail.lock().unwrap() = true;
        *afail.lock().unwrap() = false;
        o.report(&testutil::report(Change::DriftDetected));
        let e = String::from_utf8(err.0.lock().unwrap().clone()).unwrap();
        assert!(e.contains("output text failed"), "{e}");
    }

    #[test]
    fn all_sinks_failing_does_not_loop_or_panic() {
        let mut o = Outputs::new().with_stderr(Box::new(Buf::default()));
        let (a, _, af) = fake();
        let (b, _, bf) = fake();
        *af.lock().unwrap() = true;
        *bf.lock().unwrap() = true;
        o.add("a", a);
        o.add("b", b);
        o.notice(&Notice {
            level: NoticeLevel::Warning,
            message: "lost 3 events".into(),
        });
        assert_eq!(o.failing(), vec!["a", "b"]);
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

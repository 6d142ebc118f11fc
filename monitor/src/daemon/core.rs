//! The daemon's core, without the kernel or the sinks: records in, reports out. The flow is
//! one way: records → facts ([`classify`]) → the scheduler → evaluation → the drift state →
//! reports, collected here and handed to the sinks by the loop. The kernel's maps and the
//! sinks are traits, so the whole core runs in unit tests on a recorded sequence.

use std::{
    path::{Path, PathBuf},
    time::{Instant, SystemTime},
};

use anyhow::Result;

use super::{
    classify::{self, Context, Fact},
    inventory::{Candidate, Inventory},
    kept::{KeptRead, forgets_kept, keeps_names},
    proc::ProcView,
    schedule::{Scheduler, loss_notice},
    source::RecordSource,
};
use crate::{
    attribution,
    decode::Record,
    drift::{DriftState, Transition},
    kubelet::{discovery::KubeletProcess, rootfs::RootFs},
    report::{Change, DriftReport, Notice, Trigger, TriggerOp},
    settings::Settings,
    watched::WatchSet,
};

/// What the core needs of the kernel programs.
pub trait Kernel {
    /// Puts the watch set into the kernel maps.
    fn apply_watch(&mut self, set: &WatchSet) -> Result<()>;
    /// Reports this process's exit (its exec happened before we were attached).
    fn track(&mut self, pid: u32);
    /// The watch set applied now was built from `ns` (CLOCK_MONOTONIC) on: links made
    /// before then no longer need every open walked (`monitor_common::state::LINKED_SEEN`).
    fn links_seen(&mut self, _ns: u64) -> Result<()> {
        Ok(())
    }
}

/// Where reports and notices go.
pub trait Sink {
    fn report(&mut self, r: &DriftReport);
    fn notice(&mut self, n: &Notice);
}

/// What the core emits, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Emit {
    Report(Box<(Transition, Trigger)>),
    Notice(Notice),
}

pub struct Core {
    pub settings: Settings,
    pub node: String,
    pub state: DriftState,
    pub watch: WatchSet,
    pub fs: RootFs,
    pub kubelets: Inventory,
    pub sched: Scheduler,
    pub(super) proc: Box<dyn ProcView>,
    /// The evaluation's inputs when the watch set was last built: rebuilt when they change
    /// or a path operation may have changed what exists.
    pub(super) watched_inputs: Vec<PathBuf>,
    /// The usual locations in the root, made once (see `super::watching`).
    pub(super) rooted: super::watching::Rooted,
    /// The watch set by watched path, each part read again only when a record may have
    /// changed it (see `crate::watched::parts`).
    pub(super) parts: crate::watched::parts::Parts,
    /// The [`Trigger::seq`] of the last record that named a change.
    pub(super) named_upto: u64,
    /// Watched files mapped shared (polled while mapped), io_uring requests, writers from
    /// before the start: the blind spots of syscall tracepoints (see `crate::blindspots`).
    pub blind: crate::blindspots::BlindSpots,
    /// What recent findings read, as records may name it ([`naming::Read::of`](super::naming::Read::of): a
    /// canonicalisation of every watched path and input), kept until a record may have
    /// changed a name, a link or which inode a path leads to (see [`keeps_names`]), or the
    /// watch set changes.
    pub(super) reads: std::cell::RefCell<Vec<KeptRead>>,
    /// Reads forgotten since, and the paths records named since they were forgotten (see
    /// `super::kept`): a read no such path can have changed is used again with its input
    /// files' inodes taken anew.
    pub(super) stale_reads: std::cell::RefCell<(Vec<KeptRead>, crate::watched::parts::Dirty)>,
    /// The node's distribution as detected for these running kubelets' pids, kept as long as
    /// `reads` is (the processes' part is decided again without I/O; what the files say is
    /// kept in the [`RootFs`] and checked by the `lstat`s it made, see `super::kept`).
    pub(super) detection: std::cell::RefCell<Option<(Vec<u32>, crate::kubelet::distro::Detection)>>,
    out: Vec<Emit>,
    facts: Vec<Fact>,
    batch: Vec<Record>,
}

impl Core {
    pub fn new(settings: Settings, proc: Box<dyn ProcView>, now: Instant) -> Core {
        let node = settings
            .node_name
            .clone()
            .unwrap_or_else(|| "unknown".into());
        Core {
            // The unit assembly is kept across evaluations (`kubelet::rootfs::kept`): it is
            // forgotten by the records below that a file's stat cannot show.
            fs: RootFs::new(&settings.host_root).keeping(),
            kubelets: Inventory::new(
                settings.kubelet_names.clone(),
                settings.kubelet_unit.clone(),
            ),
            sched: Scheduler::new(now, settings.coalesce, settings.rescan_interval),
            settings,
            node,
            state: DriftState::new(),
            watch: WatchSet::new(),
            proc,
            watched_inputs: Vec::new(),
            rooted: Default::default(),
            parts: Default::default(),
            named_upto: 0,
            blind: Default::default(),
            reads: Default::default(),
            stale_reads: std::cell::RefCell::new((
                Vec::new(),
                crate::watched::parts::Dirty::Nothing,
            )),
            detection: Default::default(),
            out: Vec::new(),
            facts: Vec::new(),
            batch: Vec::new(),
        }
    }

    pub(super) fn emit(&mut self, t: Transition, trigger: Trigger) {
        self.out.push(Emit::Report(Box::new((t, trigger))));
    }

    /// What was emitted since the last call.
    pub fn take_emitted(&mut self) -> Vec<Emit> {
        std::mem::take(&mut self.out)
    }

    /// Hands what was emitted to `sink`, as reports of this node.
    pub fn flush(&mut self, sink: &mut dyn Sink) {
        let emitted = self.take_emitted();
        // The node's distribution, as the evaluation detected it.
        let distribution = emitted
            .iter()
            .any(|e| matches!(e, Emit::Report(_)))
            .then(|| self.distribution(&self.kubelets.running()));
        for e in emitted {
            match e {
                Emit::Report(b) => {
                    let (t, trigger) = *b;
                    sink.report(&DriftReport {
                        change: t.change,
                        finding: t.finding,
                        previous: t.previous,
                        trigger,
                        node: self.node.clone(),
                        time: SystemTime::now(),
                        benchmark: self.settings.benchmark,
                        distribution: distribution.clone(),
                    })
                }
                Emit::Notice(n) => sink.notice(&n),
            }
        }
    }

    /// The state at start: every trusted kubelet, then the after-restart state, then any
    /// pending drift; impostors are told once.
    pub fn baseline(&mut self, kernel: &mut dyn Kernel) -> Result<()> {
        // The usual locations are watched before anything is read, so that no write between
        // the read and the watch goes unseen; the inputs the evaluation names follow below.
        self.refresh_watch(kernel)?;
        let trigger = Trigger::internal(TriggerOp::Baseline);
        let mut impostors = Vec::new();
        for c in self.kubelets.discover() {
            match c {
                Candidate::Kubelet(p) => {
                    // Its exec happened before we were attached: track it so its exit is
                    // reported.
                    kernel.track(p.pid);
                    let f =
                        crate::kubelet::node::evaluate_process(&p, self.settings.benchmark, true);
                    let t = self.state.baseline(f);
                    self.emit(t, found_running(&trigger, &p));
                    self.kubelets.insert(p);
                }
                Candidate::Impostor(p, why) => impostors.push((p, why)),
            }
        }
        let after = self.evaluate_after_restart();
        let t = self.state.baseline(after);
        self.emit(t, trigger.clone());
        for t in self.state.pending() {
            self.emit(t, trigger.clone());
        }
        for (p, why) in impostors {
            let t = found_running(&trigger, &p);
            self.impostor(&p, &why, t);
        }
        self.refresh_watch(kernel)?;
        Ok(())
    }

    /// An impostor, told once: the unchanged after-restart finding, named for it.
    pub(super) fn impostor(&mut self, p: &KubeletProcess, why: &str, trigger: Trigger) {
        if !self.kubelets.first_sight(p) {
            return;
        }
        let Some(mut f) = self.state.get("after_restart").cloned() else {
            return;
        };
        let previous = Some(f.status);
        f.reason = format!(
            "pid {} runs a kubelet executable but is not trusted as the node's kubelet ({why}): \
             it changes no verdict; {}",
            p.pid, f.reason
        );
        let t = Transition {
            change: Change::ImpostorKubelet,
            finding: f,
            previous,
        };
        self.emit(t, trigger);
    }

    /// Classifies the records available now, without waiting.
    pub fn drain(&mut self, source: &mut dyn RecordSource, now: Instant) {
        let mut batch = std::mem::take(&mut self.batch);
        source.drain_now(&mut batch);
        self.ingest(batch.drain(..), now);
        self.batch = batch;
    }

    /// Records to facts, and each fact to the scheduler or the inventory.
    pub fn ingest(&mut self, records: impl IntoIterator<Item = Record>, now: Instant) {
        let mut facts = std::mem::take(&mut self.facts);
        for rec in records {
            if forgets_kept(&rec) {
                self.fs.forget_kept();
            }
            // A record that may change names: its facts tell the kept reads which paths (see
            // `super::kept`); one with no fact on a watched path tells them nothing exact.
            let placed = if keeps_names(&rec, &self.reads.borrow()) {
                None
            } else {
                self.forget_names_for(&rec)
            };
            if let crate::decode::Event::File(f) = &rec.event
                && let Some(ts) = crate::blindspots::classify(f, &self.watch, &mut self.blind)
            {
                if rec.lost_before > 0 {
                    self.sched.lost(rec.lost_before, now);
                }
                for t in ts {
                    self.sched.push(t, now);
                }
                continue;
            }
            let cx = Context {
                watch: &self.watch,
                sched: &self.sched,
                proc: self.proc.as_ref(),
            };
            classify::classify(rec, &cx, &mut facts);
            if let Some(paths) = placed
                && !facts
                    .iter()
                    .any(|f| matches!(f, Fact::Change(_) | Fact::OpenWrite { .. }))
            {
                // On no watched path: told by its own paths.
                self.names_changed(paths);
            }
            for f in facts.drain(..) {
                self.apply(f, now);
            }
        }
        self.facts = facts;
    }

    fn apply(&mut self, fact: Fact, now: Instant) {
        match fact {
            Fact::Lost(n) => {
                self.fs.forget_kept();
                self.sched.lost(n, now)
            }
            Fact::Exec { pid, trigger } => {
                self.kubelets.exec_seen(pid, trigger.clone());
                self.sched.push(trigger, now);
            }
            Fact::Exit { pid, mut trigger } => {
                // It is gone from /proc now; what we read while it ran still names it.
                if let Some(k) = self.kubelets.remove(pid)
                    && let Some(a) = trigger.actor.as_mut()
                {
                    a.exe = k.exe;
                    a.argv = Some(k.argv);
                }
                if let Some(tr) = self.state.stopped(pid) {
                    self.emit(tr, trigger.clone());
                }
                self.sched.push(trigger, now);
            }
            Fact::Change(t) => {
                self.names_changed_by(&t);
                self.sched.push(t, now)
            }
            Fact::OpenWrite { key, trigger } => {
                self.names_changed_by(&trigger);
                self.sched.open_write(key, trigger, now)
            }
            Fact::WriteClosed { key, dup } => self.sched.close(key, dup, now),
            Fact::WriterExit { tgid } => self.sched.writer_exited(tgid, now),
        }
    }

    /// Time passed: writes held open are looked at, a loss window that ended is told once.
    pub fn tick(&mut self, now: Instant) {
        for t in self.blind.poll(now) {
            // A mapped file's content changed: no stat may show it.
            self.fs.forget_kept();
            self.sched.push(t, now);
        }
        let proc = self.proc.as_ref();
        if let Some(l) = self.sched.tick(now, &|(tgid, fd)| proc.fd_stamp(tgid, fd)) {
            self.out.push(Emit::Notice(loss_notice(l)));
        }
    }
}

/// A kubelet found running (at start or by a rescan): it is its own actor.
pub(super) fn found_running(trigger: &Trigger, p: &KubeletProcess) -> Trigger {
    let mut t = trigger.clone();
    t.actor = Some(attribution::process_actor(p.pid, p.exe.clone(), &p.argv));
    t
}

/// `path` (absolute, as seen inside `root`) as a host path.
pub(super) fn in_root(root: &Path, path: &Path) -> PathBuf {
    if root == Path::new("/") {
        return path.to_path_buf();
    }
    root.join(path.strip_prefix("/").unwrap_or(path))
}

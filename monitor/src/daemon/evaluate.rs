//! One evaluation: when the burst window closes, read what the triggers call for (kubelets
//! that started, a full rescan, the after-restart state), update the drift state, and emit
//! its transitions, each named by [`naming`].

use std::time::{Duration, Instant};

use anyhow::Result;

use super::{
    core::{Core, Kernel, found_running},
    inventory::{self, Candidate},
    naming, schedule,
    source::RecordSource,
};
use crate::{
    finding::{Finding, Subject},
    kubelet::node,
    report::{Trigger, TriggerOp},
    watched::parts::Dirty,
};

impl Core {
    /// The after-restart state from the kubelet's unit; without one, from the running
    /// kubelets' own command lines, the worst of them when there are several.
    pub fn evaluate_after_restart(&self) -> Finding {
        if self.blind.polling() {
            // A watched file is mapped shared or held open for writing from before the start:
            // its content can change with no stat showing it. Nothing kept is used meanwhile.
            self.fs.forget_kept();
        }
        let running = self.kubelets.running();
        let (unit, bench) = (&self.settings.kubelet_unit, self.settings.benchmark);
        let detection = self.distribution(&running);
        let f = node::after_restart_for_unit(&self.fs, unit, &running, bench, &detection);
        let from_command_line = matches!(
            &f.subject,
            Subject::AfterRestart { unit: None, argv, .. } if !argv.is_empty()
        );
        if running.len() > 1 && from_command_line {
            let each = running
                .iter()
                .map(|p| {
                    node::evaluate_after_restart_of(&self.fs, unit, std::slice::from_ref(p), bench)
                })
                .collect();
            return inventory::worst(each).unwrap_or(f);
        }
        f
    }

    /// The burst window closed: evaluate what the triggers call for and emit the changes.
    pub fn evaluate(
        &mut self,
        source: &mut dyn RecordSource,
        kernel: &mut dyn Kernel,
        now: impl Fn() -> Instant,
    ) -> Result<()> {
        self.drain(source, now());
        let Some((mut triggers, since)) = self.sched.begin(now()) else {
            return Ok(());
        };
        let started_at = now();
        let mut dirty = self.dirty_of(&triggers);
        self.evaluate_started();
        if self.sched.take_full_rescan() {
            dirty = Dirty::All;
            self.fs.forget_kept();
            self.forget_names();
            self.names_changed(None);
            let t = naming::unnamed(triggers.iter());
            self.rediscover(&t, kernel);
        }
        // Writes to files that exist change no inode or name we watch. After a path
        // operation, an exec or exit, or a rescan, the watch set follows first (only the
        // parts the records can have changed, and the paths a new kubelet adds), so that the
        // files are read under the new set and no write between goes unseen.
        if dirty != Dirty::Nothing || triggers.iter().any(|t| !t.op.is_content()) {
            self.refresh_watch_for(kernel, &dirty)?;
        }
        let mut after_named: Option<Trigger> = None;
        // Up to three rounds: an evaluation can name new inputs (a new --config path); the
        // watch set follows, then the state is read again so no write falls in between.
        for _ in 0..3 {
            let Some(after) = self.read_quietly(source, &now, since) else {
                // A new write started meanwhile: read after it, with the same triggers.
                self.sched.put_back(triggers, since);
                return Ok(());
            };
            if let Some(limit) = self.hold(&after, &triggers, now()) {
                // Its record is still on its way: wait for it rather than name no one.
                self.sched.hold(triggers, since, now(), limit);
                return Ok(());
            }
            self.sched.hold_done();
            if let Some(tr) = self.state.update(after) {
                // Named after a record on what this evaluation read, or not at all: other
                // processes' events on other files only trigger.
                let lost = self.lost_marker();
                let all: Vec<&Trigger> = self.fresh(&triggers).chain(&lost).collect();
                let read = self.read_of(&tr.finding);
                let mut named = naming::name_change(&all, &read);
                // No record on what was read: a shared mapping or an io_uring request that
                // changed an input is named for its process (see `crate::blindspots`).
                if named.actor.is_none()
                    && let Some(b) = self.blind.changed_on(&tr.finding.inputs)
                {
                    named = b;
                }
                self.named_upto = self.named_upto.max(named.seq);
                after_named = Some(named.clone());
                self.emit(tr, named);
            }
            // The evaluation named other inputs: watch them, then read again.
            if self.inputs_unchanged() || !self.refresh_watch_for(kernel, &Dirty::Nothing)? {
                break;
            }
        }
        triggers.extend(self.sched.waiting().iter().cloned());
        let lost = self.lost_marker();
        let all: Vec<&Trigger> = triggers.iter().chain(&lost).collect();
        for tr in self.state.pending() {
            let t = naming::name_pending(&all, after_named.as_ref());
            self.emit(tr, t);
        }
        tracing::debug!(
            triggers = triggers.len(),
            trigger = %after_named.as_ref().map_or(TriggerOp::Unattributed, |t| t.op),
            since_first_us = since.elapsed().as_micros() as u64,
            took_us = started_at.elapsed().as_micros() as u64,
            "evaluated"
        );
        Ok(())
    }

    /// While records are being lost, a change with no record on its inputs is said to be
    /// seen after a loss (its record may be among the lost).
    fn lost_marker(&self) -> Option<Trigger> {
        self.sched
            .losses_pending()
            .then(|| Trigger::internal(TriggerOp::LostEvents))
    }

    /// Whether `after` changes the state with no record on its inputs among the triggers yet,
    /// while a process caused the evaluation (not a rescan or a loss) and MAX_HOLD has not
    /// passed since the change was first seen: its own record is still on its way.
    /// Returns how long it may be held in all: MAX_HOLD, or GUESS_HOLD when a record taken
    /// on its name alone could name it.
    fn hold(&self, after: &Finding, triggers: &[Trigger], now: Instant) -> Option<Duration> {
        let changes = self
            .state
            .get(&after.subject.key())
            .is_some_and(|p| p.status != after.status);
        if !changes {
            return None;
        }
        let all: Vec<&Trigger> = self.fresh(triggers).collect();
        if self.sched.losses_pending() || all.iter().any(|t| t.op.is_internal()) {
            return None;
        }
        let read = self.read_of(after);
        if naming::trigger_on_inputs(all.iter().copied(), &read).is_some() {
            return None;
        }
        let limit = if naming::guess_on_inputs(all.into_iter(), &read).is_some() {
            schedule::GUESS_HOLD
        } else {
            schedule::MAX_HOLD
        };
        self.sched.may_hold(now, limit).then_some(limit)
    }

    /// What `f` read, as records may name it; kept while no record may have changed a name
    /// (see `kept::keeps_names`): canonicalising every watched path and input was most of
    /// an evaluation's time.
    fn read_of(&self, f: &Finding) -> naming::Read {
        let mut reads = self.reads.borrow_mut();
        if let Some((_, _, r)) = reads
            .iter()
            .find(|(i, d, _)| *i == f.inputs && *d == f.input_dirs)
        {
            return r.clone();
        }
        let r = self.read_kept(f).unwrap_or_else(|| {
            // Only a watched path that leads elsewhere can name an input under another path:
            // the others resolve to themselves (or to nothing), which adds nothing.
            let watched: Vec<_> = self.watch.linked.iter().cloned().collect();
            naming::Read::of(f, self.proc.as_ref(), &watched)
        });
        if reads.len() >= 8 {
            reads.remove(0);
        }
        reads.push((f.inputs.clone(), f.input_dirs.clone(), r.clone()));
        r
    }

    /// The triggers of this evaluation and those that came since, except those taken before
    /// a record that already named a change (put back with a deferred evaluation, they must
    /// not name a later change).
    fn fresh<'a>(
        &'a self,
        triggers: &'a [Trigger],
    ) -> impl DoubleEndedIterator<Item = &'a Trigger> {
        let upto = self.named_upto;
        triggers
            .iter()
            .chain(self.sched.waiting())
            .filter(move |t| t.seq > upto)
    }

    /// Reads the after-restart state once no record came during the read (at most four
    /// reads). Events that came while we evaluated (another write, right after the one we
    /// were called for) are taken first, and again after the read; when one came during the
    /// read, it is read again. Their triggers stay queued and lead to one more (quiet)
    /// evaluation. `None`: a write started meanwhile, the evaluation is put off.
    fn read_quietly(
        &mut self,
        source: &mut dyn RecordSource,
        now: &dyn Fn() -> Instant,
        since: Instant,
    ) -> Option<Finding> {
        let mut after = None;
        for _ in 0..4 {
            self.drain(source, now());
            let t = now();
            if self.sched.defer_for_writes(since, t) {
                return None;
            }
            // A write that started during the read shows as a new open waiting for its
            // close, not as a trigger: count both.
            let known = (self.sched.waiting().len(), self.sched.open_count());
            let f = self.evaluate_after_restart();
            self.drain(source, now());
            let quiet = (self.sched.waiting().len(), self.sched.open_count()) == known;
            after = Some(f);
            if quiet {
                break;
            }
        }
        after
    }

    /// Kubelets whose exec was seen: the files now are what the kubelet reads.
    fn evaluate_started(&mut self) {
        for (pid, mut t) in self.kubelets.take_started() {
            match self.kubelets.read(pid) {
                Some(Candidate::Kubelet(p)) => {
                    let f = node::evaluate_process(&p, self.settings.benchmark, false);
                    if let Some(a) = t.actor.as_mut() {
                        a.argv = Some(p.argv.clone());
                    }
                    self.kubelets.insert(p);
                    if let Some(tr) = self.state.update(f) {
                        self.emit(tr, t);
                    }
                }
                Some(Candidate::Impostor(p, why)) => {
                    if let Some(a) = t.actor.as_mut() {
                        a.argv = Some(p.argv.clone());
                    }
                    self.impostor(&p, &why, t);
                }
                None => {}
            }
        }
    }

    /// A full rescan: kubelets that appeared or vanished without our seeing it. Named for
    /// the rescan or the loss that called for it, never for another process.
    fn rediscover(&mut self, trigger: &Trigger, kernel: &mut dyn Kernel) {
        let found = self.kubelets.discover();
        let alive: Vec<u32> = found
            .iter()
            .filter_map(|c| match c {
                Candidate::Kubelet(p) => Some(p.pid),
                Candidate::Impostor(..) => None,
            })
            .collect();
        for pid in self.state.running_pids() {
            if !alive.contains(&pid) {
                self.kubelets.remove(pid);
                if let Some(tr) = self.state.stopped(pid) {
                    self.emit(tr, trigger.clone());
                }
            }
        }
        for c in found {
            match c {
                Candidate::Kubelet(p) if !self.kubelets.contains(p.pid) => {
                    kernel.track(p.pid);
                    let f = node::evaluate_process(&p, self.settings.benchmark, true);
                    let t = found_running(trigger, &p);
                    self.kubelets.insert(p);
                    if let Some(tr) = self.state.update(f) {
                        self.emit(tr, t);
                    }
                }
                Candidate::Kubelet(_) => {}
                Candidate::Impostor(p, why) => {
                    let t = found_running(trigger, &p);
                    self.impostor(&p, &why, t);
                }
            }
        }
    }
}

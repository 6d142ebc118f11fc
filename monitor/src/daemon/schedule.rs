//! When to evaluate: the triggers waiting for their burst window, the writes in flight that
//! hold an evaluation back, the periodic rescan and the loss window. Pure: every method takes
//! `now`, so every deadline is a unit test.

use std::{
    collections::HashMap,
    mem,
    time::{Duration, Instant},
};

use crate::report::{Notice, NoticeLevel, Trigger, TriggerOp};

/// How long a write-intent open may stay open before we evaluate without its close.
pub const OPEN_GRACE: Duration = Duration::from_millis(200);
/// How often a write-intent fd still open after its grace period is checked for writes (the
/// kernel programs see opens and closes, not writes).
pub const HELD_POLL: Duration = Duration::from_millis(100);
/// The longest a write in flight may hold back an evaluation that other events call for.
pub const MAX_DEFER: Duration = Duration::from_millis(50);
/// How long a change whose record has not come yet is held back, from the first read that
/// saw it, waiting for that record (the kernel writes a rename's record at the syscall's
/// exit, after the new name is visible: an evaluation started by another event can see the
/// change first, and on a loaded machine the writer may be preempted in between for a long
/// time). The record's arrival ends the hold at once; past it, the change is reported
/// unattributed, never named for a bystander.
pub const MAX_HOLD: Duration = Duration::from_secs(1);
/// The hold when a record taken on its name alone could be the change's (a short-lived
/// process's relative path, e.g. `cd /var/lib/kubelet && sed -i ... config.yaml`): long
/// enough for an exact record in flight to come first, short enough to report at once.
pub const GUESS_HOLD: Duration = Duration::from_millis(20);
/// Lost records are told once per window, with their count, and lead to one rescan at the
/// window's end (rescanning in the middle of the burst that fills the ring would only be
/// followed by another loss).
pub const LOSS_WINDOW: Duration = Duration::from_secs(1);

/// A process's fd: (tgid, fd).
pub type FdKey = (u32, i32);

/// dev, ino, and what a write changes: mtime, ctime (seconds and nanoseconds), size.
pub type FdStamp = (u64, u64, i64, i64, i64, i64, u64);

/// A write-intent open of a watched file, waiting for its close.
#[derive(Clone, Debug)]
pub struct OpenWrite {
    /// When to evaluate (the grace period's end), then when to look at the file again.
    pub deadline: Instant,
    pub trigger: Trigger,
    /// After the grace period: the file's identity and change stamp as last seen through
    /// `/proc/<tgid>/fd/<fd>`, taken before the evaluation it leads to.
    pub seen: Option<FdStamp>,
}

/// A loss window that closed: told once, followed by one rescan.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LossReport {
    /// Records lost in this window.
    pub count: u64,
    /// Records lost since the daemon started.
    pub total: u64,
    /// Windows with a loss since the daemon started.
    pub windows: u64,
}

#[derive(Debug, Default)]
struct Loss {
    pending: u64,
    window_end: Option<Instant>,
    total: u64,
    windows: u64,
}

#[derive(Debug)]
pub struct Scheduler {
    coalesce: Duration,
    rescan_every: Duration,
    /// Triggers waiting for the burst window to close, and when it closes.
    triggers: Vec<Trigger>,
    deadline: Option<Instant>,
    /// When the oldest waiting trigger came (bounds how long writes in flight may defer).
    since: Option<Instant>,
    /// Write-intent opens of watched files waiting for their close.
    open_writes: HashMap<FdKey, OpenWrite>,
    next_rescan: Instant,
    full_rescan: bool,
    loss: Loss,
    /// When the change being held (see [`MAX_HOLD`]) was first seen.
    held_since: Option<Instant>,
    /// The last trigger's [`Trigger::seq`].
    seq: u64,
}

impl Scheduler {
    pub fn new(now: Instant, coalesce: Duration, rescan_every: Duration) -> Scheduler {
        Scheduler {
            coalesce,
            rescan_every,
            triggers: Vec::new(),
            deadline: None,
            since: None,
            open_writes: HashMap::new(),
            next_rescan: now + rescan_every,
            full_rescan: false,
            loss: Loss::default(),
            held_since: None,
            seq: 0,
        }
    }

    /// A trigger: evaluate when the burst window that it opens (or joins) closes.
    pub fn push(&mut self, mut t: Trigger, now: Instant) {
        self.seq += 1;
        t.seq = self.seq;
        self.triggers.push(t);
        if self.since.is_none() {
            self.since = Some(now);
        }
        // The burst window runs from the first trigger; a later trigger only brings it
        // forward (when an evaluation put off for a write in flight can now go ahead).
        let end = now + self.coalesce;
        self.deadline = Some(self.deadline.map_or(end, |d| d.min(end)));
    }

    /// A write-intent open of a watched file: evaluate once the writer is done (its close),
    /// or after a grace period and then whenever the file changes while the fd stays open.
    pub fn open_write(&mut self, key: FdKey, trigger: Trigger, now: Instant) {
        self.open_writes.insert(
            key,
            OpenWrite {
                deadline: now + OPEN_GRACE,
                trigger,
                seen: None,
            },
        );
    }

    pub fn is_open(&self, key: FdKey) -> bool {
        self.open_writes.contains_key(&key)
    }

    /// The close of an open write. Still open through a dup (a shell's `>` dup2s it to 1 and
    /// closes the original before writing): wait for that fd, or the writer's exit.
    /// Otherwise the write is complete: its trigger, as a close.
    pub fn close(&mut self, key: FdKey, dup: Option<i32>, now: Instant) {
        let Some(o) = self.open_writes.remove(&key) else {
            return;
        };
        match dup {
            Some(fd) => {
                self.open_writes.insert(
                    (key.0, fd),
                    OpenWrite {
                        deadline: now + OPEN_GRACE,
                        ..o
                    },
                );
            }
            None => self.push(as_close(o.trigger), now),
        }
    }

    /// A writer exited: every fd it had is closed now, dup'ed ones included, and what it
    /// wrote is final. (Without a write still waiting, its last close was already the end.)
    pub fn writer_exited(&mut self, tgid: u32, now: Instant) {
        let mut keys: Vec<FdKey> = self
            .open_writes
            .keys()
            .filter(|k| k.0 == tgid)
            .copied()
            .collect();
        keys.sort_unstable();
        for k in keys {
            if let Some(o) = self.open_writes.remove(&k) {
                self.push(as_close(o.trigger), now);
            }
        }
    }

    /// `n` records were lost before a record: counted into the current loss window.
    pub fn lost(&mut self, n: u32, now: Instant) {
        self.loss.pending += u64::from(n);
        self.loss.total += u64::from(n);
        if self.loss.window_end.is_none() {
            self.loss.window_end = Some(now + LOSS_WINDOW);
        }
    }

    /// Records were lost in the loss window still open: what the daemon sees now may lack
    /// the record of a change.
    pub fn losses_pending(&self) -> bool {
        self.loss.pending > 0
    }

    /// Records lost since the daemon started.
    pub fn lost_total(&self) -> u64 {
        self.loss.total
    }

    /// When something is due: the burst window, a grace period, the loss window, the rescan.
    pub fn wake(&self) -> Instant {
        [
            self.deadline,
            self.open_writes.values().map(|o| o.deadline).min(),
            self.loss.window_end,
        ]
        .into_iter()
        .flatten()
        .fold(self.next_rescan, Instant::min)
    }

    /// Time passed: opens whose close did not come in time are evaluated anyway; while the fd
    /// stays open, the file is looked at again every HELD_POLL (`stamp`), and any write
    /// through it (or the fd going away without a close we saw) is evaluated too. A loss
    /// window that ended is told (returned) and rescanned; the periodic rescan is started.
    pub fn tick(
        &mut self,
        now: Instant,
        stamp: &dyn Fn(FdKey) -> Option<FdStamp>,
    ) -> Option<LossReport> {
        let mut expired: Vec<FdKey> = self
            .open_writes
            .iter()
            .filter(|(_, o)| o.deadline <= now)
            .map(|(k, _)| *k)
            .collect();
        expired.sort_unstable();
        for k in expired {
            let Some(mut o) = self.open_writes.remove(&k) else {
                continue;
            };
            let st = stamp(k);
            let changed = match (&o.seen, &st) {
                // The grace period ended: evaluate now.
                (None, _) => true,
                (Some(old), Some(new)) => old != new,
                // Closed (or the process died) without a close event.
                (Some(_), None) => true,
            };
            let same_file = match (&o.seen, &st) {
                (Some(old), Some(new)) => (old.0, old.1) == (new.0, new.1),
                _ => true,
            };
            if changed {
                self.push(o.trigger.clone(), now);
            }
            if let Some(st) = st.filter(|_| same_file) {
                o.seen = Some(st);
                o.deadline = now + HELD_POLL;
                self.open_writes.insert(k, o);
            }
        }
        let loss = self.close_loss_window(now);
        if now >= self.next_rescan {
            self.full_rescan = true;
            self.push(Trigger::internal(TriggerOp::Rescan), now);
            self.next_rescan = now + self.rescan_every;
        }
        loss
    }

    fn close_loss_window(&mut self, now: Instant) -> Option<LossReport> {
        if self.loss.window_end.is_none_or(|end| end > now) {
            return None;
        }
        self.loss.window_end = None;
        self.loss.windows += 1;
        self.full_rescan = true;
        self.push(Trigger::internal(TriggerOp::LostEvents), now);
        Some(LossReport {
            count: mem::take(&mut self.loss.pending),
            total: self.loss.total,
            windows: self.loss.windows,
        })
    }

    /// The burst window has closed.
    pub fn due(&self, now: Instant) -> bool {
        self.deadline.is_some_and(|d| d <= now)
    }

    /// An evaluation begins: the waiting triggers and when the first came, or `None` when it
    /// is put off for a write in flight.
    pub fn begin(&mut self, now: Instant) -> Option<(Vec<Trigger>, Instant)> {
        let since = self.since.unwrap_or(now);
        if self.defer_for_writes(since, now) {
            return None;
        }
        self.deadline = None;
        self.since = None;
        Some((mem::take(&mut self.triggers), since))
    }

    /// An evaluation put off after it began: its triggers wait again, ahead of newer ones.
    pub fn put_back(&mut self, mut triggers: Vec<Trigger>, since: Instant) {
        triggers.append(&mut self.triggers);
        self.triggers = triggers;
        self.since = Some(since);
    }

    /// An evaluation that saw a change before its record: its triggers wait again, and it is
    /// tried again when a record comes (it brings the deadline forward) or MAX_HOLD after the
    /// change was first seen.
    pub fn hold(&mut self, triggers: Vec<Trigger>, since: Instant, now: Instant, limit: Duration) {
        let until = *self.held_since.get_or_insert(now) + limit;
        self.put_back(triggers, since);
        self.deadline = Some(self.deadline.map_or(until, |d| d.min(until)));
    }

    /// Whether a change seen at `now` may still be held for its record, for `limit` from
    /// when it was first seen.
    pub fn may_hold(&self, now: Instant, limit: Duration) -> bool {
        self.held_since.is_none_or(|t| now < t + limit)
    }

    /// The change held is reported (named or not): the next one gets its own MAX_HOLD.
    pub fn hold_done(&mut self) {
        self.held_since = None;
    }

    /// While a watched file is being written (an open whose close has not come), reading it
    /// would see it half written: put the evaluation off until the write ends, but never past
    /// MAX_DEFER after the first trigger. Says whether it was put off.
    pub fn defer_for_writes(&mut self, since: Instant, now: Instant) -> bool {
        let cap = since + MAX_DEFER;
        let in_flight = self
            .open_writes
            .values()
            .filter(|o| o.seen.is_none() && o.deadline > now)
            .map(|o| o.deadline)
            .min();
        match in_flight {
            Some(until) if now < cap => {
                self.deadline = Some(until.min(cap));
                true
            }
            _ => false,
        }
    }

    /// Whether a full rescan (kubelets appearing or vanishing unseen) is due; clears it.
    pub fn take_full_rescan(&mut self) -> bool {
        mem::take(&mut self.full_rescan)
    }

    /// Triggers that came after the evaluation began (they lead to one more evaluation).
    pub fn waiting(&self) -> &[Trigger] {
        &self.triggers
    }

    /// The opens of writes in flight or held open: records on a watched file whose writer
    /// may be making the change an evaluation sees (a pwrite through an fd held open shows
    /// only at the next look at the file).
    pub fn open_write_triggers(&self) -> impl Iterator<Item = &Trigger> {
        self.open_writes.values().map(|o| &o.trigger)
    }

    /// Writes in flight, counted (a write that started during a read shows here).
    pub fn open_count(&self) -> usize {
        self.open_writes.len()
    }
}

fn as_close(t: Trigger) -> Trigger {
    Trigger {
        op: TriggerOp::File(crate::decode::FileOp::Close),
        ..t
    }
}

/// The one warning a loss window gives, with its count.
pub(super) fn loss_notice(l: LossReport) -> Notice {
    Notice {
        level: NoticeLevel::Warning,
        message: format!(
            "{} kernel event(s) lost (ring buffer full; {} in all, in {} burst(s)) within {} ms: \
             full rescan now",
            l.count,
            l.total,
            l.windows,
            LOSS_WINDOW.as_millis()
        ),
    }
}

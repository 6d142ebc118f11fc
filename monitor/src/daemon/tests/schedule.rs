//! The scheduler's deadlines, driven by a clock the tests move.

use crate::daemon::schedule::*;
use crate::report::{Trigger, TriggerOp};
use crate::{decode::FileOp, report::Actor};
use std::time::{Duration, Instant};

fn t(op: FileOp, pid: u32) -> Trigger {
    Trigger {
        actor: Some(Actor {
            pid,
            ..Default::default()
        }),
        path: Some("/etc/kubernetes/kubelet.yaml".into()),
        ..Trigger::internal(TriggerOp::File(op))
    }
}
fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}
fn none(_: FdKey) -> Option<FdStamp> {
    None
}

#[test]
fn burst_window_and_rescan() {
    let t0 = Instant::now();
    let mut s = Scheduler::new(t0, ms(5), ms(1000));
    assert_eq!(s.wake(), t0 + ms(1000));
    s.push(t(FileOp::Rename, 1), t0);
    s.push(t(FileOp::Rename, 2), t0 + ms(3));
    // The window runs from the first trigger.
    assert_eq!(s.wake(), t0 + ms(5));
    assert!(!s.due(t0 + ms(4)));
    assert!(s.due(t0 + ms(5)));
    let (ts, since) = s.begin(t0 + ms(5)).unwrap();
    assert_eq!(ts.len(), 2);
    assert_eq!(since, t0);
    assert!(!s.due(t0 + ms(6)));
    assert!(s.tick(t0 + ms(1000), &none).is_none());
    assert!(s.take_full_rescan());
    assert!(!s.take_full_rescan());
    let (ts, _) = s.begin(t0 + ms(1005)).unwrap();
    assert_eq!(ts[0].op, TriggerOp::Rescan);
}

/// An open defers the evaluation up to MAX_DEFER, its close is the trigger; a close
/// through a dup waits for the dup; a writer's exit ends every write it had.
#[test]
fn writes_in_flight() {
    let t0 = Instant::now();
    let mut s = Scheduler::new(t0, Duration::ZERO, ms(100_000));
    s.open_write((7, 3), t(FileOp::Open, 7), t0);
    assert!(s.is_open((7, 3)));
    s.push(t(FileOp::Rename, 8), t0);
    // The rename is due, but the write in flight holds it back, to MAX_DEFER at most.
    assert!(s.due(t0));
    assert!(s.begin(t0).is_none());
    assert_eq!(s.wake(), t0 + MAX_DEFER);
    assert!(s.begin(t0 + ms(20)).is_none());
    s.close((7, 3), Some(1), t0 + ms(30));
    assert!(s.is_open((7, 1)) && !s.is_open((7, 3)));
    s.writer_exited(7, t0 + ms(40));
    assert_eq!(s.open_count(), 0);
    let (ts, since) = s.begin(t0 + ms(40)).unwrap();
    assert_eq!(since, t0);
    let ops: Vec<_> = ts.iter().map(|t| t.op.as_str()).collect();
    assert_eq!(ops, ["rename", "close"]);
    // Past MAX_DEFER the evaluation goes ahead.
    s.open_write((9, 4), t(FileOp::Open, 9), t0 + ms(50));
    s.push(t(FileOp::Unlink, 10), t0 + ms(50));
    assert!(s.begin(t0 + ms(50)).is_none());
    assert!(s.begin(t0 + ms(100)).is_some());
}

/// A fd held open past its grace period is evaluated once, then again only when the file
/// it refers to changes, and once more when it goes away unseen.
#[test]
fn held_fd_is_polled() {
    let t0 = Instant::now();
    let mut s = Scheduler::new(t0, Duration::ZERO, ms(100_000));
    s.open_write((7, 3), t(FileOp::Open, 7), t0);
    let stamp = |_: FdKey| Some((1, 2, 0, 0, 0, 0, 10));
    s.tick(t0 + OPEN_GRACE, &stamp);
    assert_eq!(s.begin(t0 + OPEN_GRACE).unwrap().0.len(), 1);
    s.tick(t0 + OPEN_GRACE + HELD_POLL, &stamp);
    assert!(!s.due(t0 + OPEN_GRACE + HELD_POLL), "unchanged: quiet");
    let grown = |_: FdKey| Some((1, 2, 0, 0, 0, 0, 11));
    s.tick(t0 + OPEN_GRACE + HELD_POLL * 2, &grown);
    assert!(s.due(t0 + OPEN_GRACE + HELD_POLL * 2));
    s.begin(t0 + OPEN_GRACE + HELD_POLL * 2).unwrap();
    s.tick(t0 + OPEN_GRACE + HELD_POLL * 3, &none);
    assert_eq!(s.begin(t0 + OPEN_GRACE + HELD_POLL * 3).unwrap().0.len(), 1);
    assert_eq!(s.open_count(), 0);
}

/// A burst of losses is told once per window, with its count, and rescanned once.
#[test]
fn losses_are_aggregated_per_window() {
    let t0 = Instant::now();
    let mut s = Scheduler::new(t0, Duration::ZERO, ms(100_000));
    for i in 0..500 {
        s.lost(3, t0 + Duration::from_micros(i));
    }
    assert_eq!(s.wake(), t0 + LOSS_WINDOW);
    assert!(s.tick(t0 + ms(999), &none).is_none());
    assert!(!s.take_full_rescan());
    let r = s.tick(t0 + LOSS_WINDOW, &none).unwrap();
    assert_eq!(
        r,
        LossReport {
            count: 1500,
            total: 1500,
            windows: 1
        }
    );
    assert!(s.take_full_rescan());
    let (ts, _) = s.begin(t0 + LOSS_WINDOW).unwrap();
    assert_eq!(ts.len(), 1);
    assert_eq!(ts[0].op, TriggerOp::LostEvents);
    assert!(s.tick(t0 + ms(5000), &none).is_none(), "told once");
    s.lost(2, t0 + ms(6000));
    let r = s.tick(t0 + ms(7000), &none).unwrap();
    assert_eq!((r.count, r.total, r.windows), (2, 1502, 2));
}

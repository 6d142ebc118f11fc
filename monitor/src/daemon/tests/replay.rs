//! Whole evaluations replayed from recorded sequences: who a report names, and what a burst
//! of lost records gives.

use std::{path::Path, time::Duration};

use super::*;
use crate::{
    daemon::schedule::LOSS_WINDOW,
    report::{Change, TriggerOp},
};

/// A node with a masked drop-in (a symlink to /dev/null). The watch set no longer holds
/// /dev/null's inode (a masked unit is a name, not its target), but naming must be right
/// with the widest filter too: /dev/null's inode is put back by hand, so that every shell's
/// `> /dev/null` is a record, as it was before the kernel filter was narrowed.
fn masked_node() -> Replay {
    let r = Replay::new(FakeProc::default());
    let dropins = r.path("etc/systemd/system/kubelet.service.d");
    std::fs::create_dir_all(&dropins).unwrap();
    std::os::unix::fs::symlink("/dev/null", dropins.join("99-masked.conf")).unwrap();
    let mut r = r;
    r.core.refresh_watch(&mut NoKernel).unwrap();
    let (dev, ino) = inode_of(Path::new("/dev/null"));
    assert!(
        !r.core.watch.has_inode(dev, ino),
        "a masked unit's target is not watched"
    );
    r.core.watch.inodes.insert(
        monitor_common::InodeKey { dev, _pad: 0, ino },
        monitor_common::watch::FILE,
    );
    r
}

/// What sed -i does on disk: a new file renamed over the config.
fn sed_to(r: &Replay, value: bool) -> (std::path::PathBuf, std::path::PathBuf) {
    let config = r.path("var/lib/kubelet/config.yaml");
    let tmp = r.path("var/lib/kubelet/sedX1y2Z3");
    std::fs::write(&tmp, config_text(value)).unwrap();
    std::fs::rename(&tmp, &config).unwrap();
    (tmp, config)
}

fn config_text(value: bool) -> String {
    config(value)
}

fn bash_dev_null(pid: u32) -> Vec<Record> {
    let null = Path::new("/dev/null");
    vec![open_w(pid, "bash", null, 3), close(pid, "bash", 3, null)]
}

fn drift(reports: &[(Transition, Trigger)]) -> Vec<&(Transition, Trigger)> {
    reports
        .iter()
        .filter(|(t, _)| t.change == Change::DriftDetected)
        .collect()
}

/// The race that named a bystander: bash writes /dev/null at the moment sed renames its new
/// file over the config; bash's records start the evaluation, which reads sed's change
/// before sed's record has come. The change waits for that record and names sed.
#[test]
fn a_bystander_never_takes_the_name_of_a_change_it_did_not_make() {
    let mut r = masked_node();
    let (tmp, config) = sed_to(&r, false);
    let late = vec![
        vec![],
        vec![],
        vec![],
        vec![rename(200, "sed", &tmp, &config)],
    ];
    let (reports, _) = r.run(bash_dev_null(100), late);
    let d = drift(&reports);
    assert_eq!(d.len(), 1, "{reports:?}");
    assert_eq!(comm(&d[0].1), Some("sed"), "{:?}", d[0].1);
    assert_eq!(d[0].1.op, TriggerOp::File(FileOp::Rename));
    assert!(
        reports.iter().all(|(_, t)| comm(t) != Some("bash")),
        "{reports:?}"
    );
}

/// The same with sed's record first and bash's after, in one batch.
#[test]
fn the_record_on_the_input_wins_over_a_later_bystander() {
    let mut r = masked_node();
    let (tmp, config) = sed_to(&r, false);
    let mut first = vec![rename(200, "sed", &tmp, &config)];
    first.extend(bash_dev_null(100));
    let (reports, _) = r.run(first, vec![]);
    let d = drift(&reports);
    assert_eq!(d.len(), 1, "{reports:?}");
    assert_eq!(comm(&d[0].1), Some("sed"));
}

/// A same-named file elsewhere, written by a process that is gone before its relative path
/// is resolved: taken on its name (it triggers), never named.
#[test]
fn a_same_named_file_elsewhere_is_not_named() {
    let mut r = masked_node();
    let (tmp, config) = sed_to(&r, false);
    let elsewhere = rec(file(300, "cp", FileOp::Unlink, "config.yaml"));
    let late = vec![vec![], vec![rename(200, "sed", &tmp, &config)]];
    let (reports, _) = r.run(vec![elsewhere], late);
    let d = drift(&reports);
    assert_eq!(d.len(), 1, "{reports:?}");
    assert_eq!(comm(&d[0].1), Some("sed"));
}

/// The change's record never comes (lost, or filtered): after MAX_HOLD the change is
/// reported plainly, with no process.
#[test]
fn a_change_without_its_record_names_no_one() {
    let mut r = masked_node();
    sed_to(&r, false);
    let (reports, took) = r.run(bash_dev_null(100), vec![]);
    let d = drift(&reports);
    assert_eq!(d.len(), 1, "{reports:?}");
    assert_eq!(d[0].1.op, TriggerOp::Unattributed);
    assert_eq!(d[0].1.actor, None);
    assert!(took >= crate::daemon::schedule::MAX_HOLD, "{took:?}");
}

/// Hundreds of records each after a loss: one warning with the count, one rescan.
#[test]
fn a_burst_of_losses_is_told_once_and_rescanned_once() {
    let mut r = Replay::new(FakeProc::default());
    let t0 = r.clock;
    let records: Vec<Record> = (0..300)
        .map(|i| {
            let mut x = rec(file(400 + i, "noise", FileOp::Unlink, "/tmp/unrelated"));
            x.lost_before = 5;
            x
        })
        .collect();
    r.core.ingest(records, t0);
    r.core.tick(t0 + Duration::from_millis(500));
    assert!(r.core.take_emitted().is_empty(), "nothing told mid-window");
    r.core.tick(t0 + LOSS_WINDOW);
    let emitted = r.core.take_emitted();
    let notices: Vec<_> = emitted
        .iter()
        .filter_map(|e| match e {
            Emit::Notice(n) => Some(n.message.clone()),
            Emit::Report(..) => None,
        })
        .collect();
    assert_eq!(notices.len(), 1, "{emitted:?}");
    assert!(
        notices[0].starts_with("1500 kernel event(s) lost"),
        "{}",
        notices[0]
    );
    assert_eq!(r.core.sched.lost_total(), 1500);
    // One rescan: the trigger waiting is the loss's, and the rescan is due once.
    let ops: Vec<_> = r.core.sched.waiting().iter().map(|t| t.op).collect();
    assert_eq!(ops, [TriggerOp::LostEvents]);
    r.core.tick(t0 + LOSS_WINDOW * 3);
    assert!(r.core.take_emitted().is_empty(), "told once");
}

/// An exec of a process that is no kubelet (gone, or another name) reports nothing.
#[test]
fn an_exec_of_a_vanished_process_reports_nothing() {
    let mut r = Replay::new(FakeProc::default());
    let (reports, _) = r.run(
        vec![exec(u32::MAX - 7, "kdt-replay-none", "/usr/bin/kubelet")],
        vec![],
    );
    assert!(
        reports
            .iter()
            .all(|(t, _)| t.change != Change::KubeletStarted),
        "{reports:?}"
    );
}

/// A record that named one change names no later one: sed A's rename, put back with an
/// evaluation deferred for a write in flight, must not name sed B's change whose record is
/// late; B's record, once it comes, does.
#[test]
fn a_record_that_named_a_change_names_no_later_one() {
    let mut r = masked_node();
    let (tmp, config) = sed_to(&r, false);
    let (reports, _) = r.run(vec![rename(200, "sed", &tmp, &config)], vec![]);
    let first = drift(&reports)[0].1.clone();
    assert_eq!(comm(&first), Some("sed"));
    assert!(first.seq > 0);
    // The deferral puts A's trigger back; B's edit lands, its record late.
    let since = r.clock;
    r.core.sched.put_back(vec![first.clone()], since);
    r.core
        .sched
        .push(Trigger::internal(TriggerOp::File(FileOp::Close)), since);
    let (tmp, config) = sed_to(&r, true);
    let mut late = vec![vec![]; 10];
    late.push(vec![rename(201, "sed", &tmp, &config)]);
    let (reports, _) = r.run(vec![], late);
    let resolved: Vec<_> = reports
        .iter()
        .filter(|(t, _)| t.change == Change::DriftResolved)
        .collect();
    assert_eq!(resolved.len(), 1, "{reports:?}");
    assert_eq!(resolved[0].1.actor.as_ref().map(|a| a.pid), Some(201));
}

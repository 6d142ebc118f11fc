//! Records to facts, from recorded records: no evaluation, no report.

use std::time::Instant;

use super::*;
use crate::daemon::{
    classify::{Context, Fact, classify},
    schedule::Scheduler,
};

fn facts(r: &Replay, proc: &dyn ProcView, sched: &Scheduler, rec: Record) -> Vec<Fact> {
    let cx = Context {
        watch: &r.core.watch,
        sched,
        proc,
    };
    let mut out = Vec::new();
    classify(rec, &cx, &mut out);
    out
}

fn sched() -> Scheduler {
    Scheduler::new(
        Instant::now(),
        Default::default(),
        std::time::Duration::from_secs(60),
    )
}

/// Every file operation without a rule of its own is a change of what it names, by the same
/// exact match: operations added to the decoder need nothing here.
#[test]
fn any_other_operation_is_a_change_of_a_watched_name() {
    let r = Replay::new(FakeProc::default());
    let p = FakeProc::default();
    let s = sched();
    let config = r.path("var/lib/kubelet/config.yaml");
    for op in [
        FileOp::Rename,
        FileOp::Unlink,
        FileOp::Truncate,
        FileOp::Link,
        FileOp::Symlink,
        FileOp::Mkdir,
    ] {
        let got = facts(&r, &p, &s, rec(file(1, "x", op, config.to_str().unwrap())));
        assert!(
            matches!(&got[..], [Fact::Change(t)] if t.op == crate::report::TriggerOp::File(op) && !t.guessed),
            "{op:?}: {got:?}"
        );
        let got = facts(&r, &p, &s, rec(file(1, "x", op, "/srv/elsewhere/app.yaml")));
        assert!(got.is_empty(), "{op:?}: {got:?}");
    }
    // A failed syscall changed nothing.
    let mut f = file(1, "x", FileOp::Unlink, config.to_str().unwrap());
    f.ret = -2;
    assert!(facts(&r, &p, &s, rec(f)).is_empty());
}

/// A relative path of a process that is gone: taken on its name alone (guessed).
#[test]
fn unresolvable_names_are_guesses() {
    let r = Replay::new(FakeProc::default());
    let s = sched();
    let p = FakeProc::default();
    let got = facts(&r, &p, &s, rec(file(1, "x", FileOp::Unlink, "config.yaml")));
    assert!(
        matches!(&got[..], [Fact::Change(t)] if t.guessed),
        "{got:?}"
    );
    let mut cwd = FakeProc::default();
    cwd.cwd.insert(1, "/srv".into());
    let got = facts(
        &r,
        &cwd,
        &s,
        rec(file(1, "x", FileOp::Unlink, "config.yaml")),
    );
    assert!(got.is_empty(), "resolved elsewhere: {got:?}");
}

/// An open waits for its close; a close through a dup (a shell's `>`) waits for the dup; a
/// lost-records count comes first; exec and exit are facts of their own.
#[test]
fn writes_exec_exit_and_losses() {
    let r = Replay::new(FakeProc::default());
    let config = r.path("var/lib/kubelet/config.yaml");
    let mut p = FakeProc::default();
    p.dups.insert((7, 3), 1);
    let mut s = sched();
    let got = facts(&r, &p, &s, open_w(7, "sh", &config, 3));
    let Fact::OpenWrite { key, trigger } = &got[0] else {
        panic!("{got:?}");
    };
    assert_eq!(*key, (7, 3));
    s.open_write(*key, trigger.clone(), Instant::now());
    let got = facts(&r, &p, &s, close(7, "sh", 3, &config));
    assert_eq!(
        got,
        [Fact::WriteClosed {
            key: (7, 3),
            dup: Some(1)
        }]
    );
    // The close of an fd we did not see opened, on a watched inode: a change.
    let got = facts(&r, &p, &s, close(8, "dd", 4, &config));
    assert!(matches!(&got[..], [Fact::Change(_)]), "{got:?}");
    let got = facts(&r, &p, &s, rec(file(7, "sh", FileOp::WriterExit, "")));
    assert_eq!(got, [Fact::WriterExit { tgid: 7 }]);
    let mut e = exec(9, "kubelet", "/usr/bin/kubelet");
    e.lost_before = 4;
    let got = facts(&r, &p, &s, e);
    assert!(
        matches!(&got[..], [Fact::Lost(4), Fact::Exec { pid: 9, .. }]),
        "{got:?}"
    );
}

/// The same, with the directory the kernel saw the path given against (`FileEvent::base_*`):
/// placed exactly when that directory holds the input, dropped when it is another one.
#[test]
fn a_gone_process_s_relative_path_is_placed_by_the_directory_the_kernel_saw() {
    let r = Replay::new(FakeProc::default());
    let s = sched();
    let p = FakeProc::default();
    let config = r.path("var/lib/kubelet/config.yaml");
    let key = |d: &std::path::Path| {
        let k = crate::probes::inode_key_of(d).unwrap();
        Some((k.dev, k.ino))
    };
    let mut f = file(1, "x", FileOp::Unlink, "config.yaml");
    f.base = key(config.parent().unwrap());
    let got = facts(&r, &p, &s, rec(f));
    assert!(
        matches!(&got[..], [Fact::Change(t)] if !t.guessed && t.path.as_deref() == Some(config.as_path())),
        "{got:?}"
    );
    let mut f = file(1, "x", FileOp::Unlink, "config.yaml");
    f.base = key(r.dir.path());
    assert!(facts(&r, &p, &s, rec(f)).is_empty(), "placed elsewhere");
    // A directory on the config's path given by its name (`rmdir kubelet`, which the
    // kernel's ancestor programs report): placed in var/lib, dropped in any other directory.
    let mut f = file(1, "x", FileOp::Unlink, "kubelet");
    f.base = key(config.parent().unwrap().parent().unwrap());
    let got = facts(&r, &p, &s, rec(f));
    assert!(
        matches!(&got[..], [Fact::Change(t)] if !t.guessed && t.path.as_deref() == config.parent()),
        "{got:?}"
    );
    let mut f = file(1, "x", FileOp::Unlink, "kubelet");
    f.base = key(r.dir.path());
    assert!(
        facts(&r, &p, &s, rec(f)).is_empty(),
        "a kubelet directory elsewhere"
    );
    // sed -i: its temporary file renamed over the config, both given against its cwd.
    let mut f = file(1, "sed", FileOp::Rename, "./sedAb12");
    f.path2 = Some("config.yaml".into());
    f.base = key(config.parent().unwrap());
    f.base2 = f.base;
    let got = facts(&r, &p, &s, rec(f));
    assert!(
        matches!(&got[..], [Fact::Change(t)] if !t.guessed
            && t.path2.as_deref() == Some(config.as_path())
            && t.path.as_deref() == Some(config.with_file_name("sedAb12").as_path())),
        "{got:?}"
    );
}

//! What a record means, as facts: a kubelet exec or exit, a write in flight, a completed
//! change to an input, lost records. Only cheap work here (an exact path or inode match and
//! a few /proc reads for attribution); nothing is evaluated and nothing is reported.
//!
//! Every file operation is a generic change of a watched name or inode unless it is one of
//! the few handled on their own (an open waits for its close; a close ends a write; a
//! writer's exit ends all of its writes): a new operation decoded from the kernel triggers
//! an evaluation by the same exact match, with no change here.

use std::path::{Path, PathBuf};

use super::{
    placed,
    proc::ProcView,
    schedule::{FdKey, Scheduler},
};
use crate::{
    decode::{Event, FileInfo, FileOp, MatchedBy, Record},
    report::{Actor, Trigger, TriggerOp},
    watched::{self, WatchSet},
};

/// What a record means for the daemon.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fact {
    /// Records the kernel lost just before this one (the ring buffer was full).
    Lost(u32),
    /// A process with a kubelet's name executed: read it and evaluate it.
    Exec { pid: u32, trigger: Trigger },
    /// A tracked process exited (its exe and argv are completed from the inventory).
    Exit { pid: u32, trigger: Trigger },
    /// A completed change to a watched name or inode: evaluate.
    Change(Trigger),
    /// A write-intent open of a watched file: evaluate at its close.
    OpenWrite { key: FdKey, trigger: Trigger },
    /// The close of a write in flight: done, or still open through a dup.
    WriteClosed { key: FdKey, dup: Option<i32> },
    /// A writer exited: every write it had in flight is complete.
    WriterExit { tgid: u32 },
}

/// What classification looks at: the watch set's exact match, the writes in flight, /proc.
pub struct Context<'a> {
    pub watch: &'a WatchSet,
    pub sched: &'a Scheduler,
    pub proc: &'a dyn ProcView,
}

/// The facts of one record, appended to `out`.
pub fn classify(rec: Record, cx: &Context<'_>, out: &mut Vec<Fact>) {
    if rec.lost_before > 0 {
        out.push(Fact::Lost(rec.lost_before));
    }
    match rec.event {
        Event::Exec(p) => out.push(Fact::Exec {
            pid: p.actor.tgid,
            trigger: Trigger {
                path: Some(p.path.clone()),
                actor: Some(cx.proc.actor(&p.actor)),
                ..Trigger::internal(TriggerOp::Exec)
            },
        }),
        Event::Exit(p) => out.push(Fact::Exit {
            pid: p.actor.tgid,
            trigger: Trigger {
                actor: Some(exit_actor(&p.actor)),
                ..Trigger::internal(TriggerOp::Exit)
            },
        }),
        Event::File(f) => classify_file(f, cx, out),
    }
}

fn classify_file(f: FileInfo, cx: &Context<'_>, out: &mut Vec<Fact>) {
    let key = (f.actor.tgid, f.dirfd);
    if f.op == FileOp::WriterExit {
        out.push(Fact::WriterExit { tgid: f.actor.tgid });
        return;
    }
    if f.op == FileOp::Close {
        if cx.sched.is_open(key) {
            let dup = cx.proc.other_fd_on(f.actor.tgid, key.1, f.dev, f.ino);
            out.push(Fact::WriteClosed { key, dup });
        } else if cx.watch.has_inode(f.dev, f.ino) {
            out.push(Fact::Change(file_trigger(&f, None, None, false, cx)));
        }
        return;
    }
    if f.ret < 0 {
        return; // a failed syscall changed nothing
    }
    let mut resolved = cx.proc.resolve(f.actor.tgid, f.dirfd, &f.path);
    let mut resolved2 = f
        .path2
        .as_ref()
        .and_then(|p| cx.proc.resolve(f.actor.tgid, f.dirfd2, p));
    // A process gone before its cwd or dirfd could be read: the directory the kernel saw.
    if (resolved.is_none() && f.base.is_some()) || (resolved2.is_none() && f.base2.is_some()) {
        let empty = PathBuf::new();
        let p2 = f.path2.as_ref().unwrap_or(&empty);
        let (a, b) = placed::pair(cx.watch, (f.base, &f.path), (f.base2, p2));
        resolved = resolved.or(a);
        resolved2 = resolved2.or(b.filter(|_| f.path2.is_some()));
    }
    let Some(exact) = relevance(&f, &resolved, &resolved2, cx) else {
        return;
    };
    let t = file_trigger(&f, resolved, resolved2, !exact, cx);
    if f.op == FileOp::Open {
        out.push(Fact::OpenWrite {
            key: (f.actor.tgid, f.ret as i32),
            trigger: t,
        });
    } else {
        out.push(Fact::Change(t));
    }
}

/// `Some(exact)` when relevant: exact when tied to a watched inode or path, not exact when
/// taken on its name alone (the process was gone before its relative path was resolved).
fn relevance(
    f: &FileInfo,
    resolved: &Option<PathBuf>,
    resolved2: &Option<PathBuf>,
    cx: &Context<'_>,
) -> Option<bool> {
    if matches!(f.matched_by, MatchedBy::Inode | MatchedBy::Fd) && cx.watch.has_inode(f.dev, f.ino)
    {
        return Some(true);
    }
    let tgid = f.actor.tgid;
    let check = |r: &Option<PathBuf>,
                 given: &Path,
                 dirfd: i32,
                 truncated: bool,
                 base: Option<(u32, u64)>| {
        if truncated {
            // A cut path resolves to a path that does not exist: compare its head.
            return cx
                .proc
                .truncated_matches(cx.watch, tgid, dirfd, given)
                .then_some(true);
        }
        match r {
            Some(p) => cx.watch.matches(p).then_some(true),
            // A bare name given in a directory the kernel saw, and that directory holds no
            // watched path: a same-named file elsewhere. (The kernel decides bare names by
            // this same directory key, so a name in a watched directory is always placed.)
            None if base.is_some() && placed::bare(given) => None,
            // Unresolvable (the process is gone): decide by name, err on the side of
            // re-evaluating.
            None => watched::name_matches(cx.watch, given).then_some(false),
        }
    };
    let first = check(resolved, &f.path, f.dirfd, f.path_truncated, f.base);
    let second = f
        .path2
        .as_ref()
        .and_then(|p| check(resolved2, p, f.dirfd2, f.path2_truncated, f.base2));
    match (first, second) {
        (Some(true), _) | (_, Some(true)) => Some(true),
        (Some(false), _) | (_, Some(false)) => Some(false),
        _ => None,
    }
}

fn file_trigger(
    f: &FileInfo,
    resolved: Option<PathBuf>,
    resolved2: Option<PathBuf>,
    guessed: bool,
    cx: &Context<'_>,
) -> Trigger {
    Trigger {
        op: TriggerOp::File(f.op),
        path: resolved.or_else(|| (!f.path.as_os_str().is_empty()).then(|| f.path.clone())),
        path2: resolved2.or_else(|| f.path2.clone()),
        actor: Some(cx.proc.actor(&f.actor)),
        guessed,
        inode: (f.ino != 0).then_some((f.dev, f.ino)),
        seq: 0,
        cut: f.path_truncated || f.path2_truncated,
    }
}

/// The actor of an exit: the process is gone from /proc, so only the kernel's view.
fn exit_actor(a: &crate::decode::KernelActor) -> Actor {
    Actor {
        pid: a.tgid,
        ppid: a.ppid,
        uid: a.uid,
        user: crate::attribution::user_name(a.uid),
        gid: a.gid,
        comm: String::from_utf8_lossy(&a.comm).into_owned(),
        exe: None,
        cgroup_id: a.cgroup_id,
        container_id: None,
        argv: None,
    }
}

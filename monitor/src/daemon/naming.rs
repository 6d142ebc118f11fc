//! Which record a report names. Never a bystander: a change is named after a record on one
//! of the inputs its evaluation read (by path, by a name that created, replaced or removed
//! one, by a directory on its path, or by the input's inode whatever name was used). When
//! there is none (a rescan, lost records, a change whose record was not seen), the report
//! says so plainly and names no process.

use std::{
    os::unix::ffi::OsStrExt,
    path::{Path, PathBuf},
};

use super::proc::ProcView;
use crate::{
    decode::FileOp,
    finding::Finding,
    report::{Trigger, TriggerOp},
};

/// What an evaluation read, as records may name it: its input files (and the same files
/// through their directories' real paths: a kubelet's `/proc/<pid>/root/...`, a symlinked
/// directory), its input directories, and its input files' inodes now (with the input's
/// path).
#[derive(Clone, Debug, Default)]
pub struct Read {
    pub files: Vec<PathBuf>,
    pub dirs: Vec<PathBuf>,
    pub inodes: Vec<((u32, u64), PathBuf)>,
}

impl Read {
    /// What `f` read, with the aliases and inodes `proc` finds for it now, and the watched
    /// names (symlinks) that lead to one of its files.
    pub fn of(f: &Finding, proc: &dyn ProcView, watched: &[PathBuf]) -> Read {
        let mut r = Read::plain(f);
        let asked: Vec<&Path> = f
            .inputs
            .iter()
            .chain(&f.input_dirs)
            .map(PathBuf::as_path)
            .collect();
        let (targets, real) = proc.resolve_many(watched, &asked);
        for (w, target) in watched.iter().zip(targets) {
            if let Some(target) = target
                && f.inputs.contains(&target)
                && !r.files.contains(w)
            {
                r.files.push(w.clone());
            }
        }
        let (real_files, real_dirs) = real.split_at(f.inputs.len());
        for (i, a) in f.inputs.iter().zip(real_files) {
            if let Some(a) = a {
                r.files.push(a.clone());
            }
            if let Some(ino) = proc.file_inode(i) {
                r.inodes.push((ino, i.clone()));
            }
        }
        r.dirs.extend(real_dirs.iter().flatten().cloned());
        r
    }

    /// The paths as the finding names them, no inodes.
    pub fn plain(f: &Finding) -> Read {
        Read {
            files: f.inputs.clone(),
            dirs: f.input_dirs.clone(),
            inodes: Vec::new(),
        }
    }
}

/// Is `t` a record on one of the inputs read?
pub fn on_inputs(t: &Trigger, read: &Read) -> bool {
    if t.actor.is_none() || t.guessed || !matches!(t.op, TriggerOp::File(_)) {
        return false;
    }
    let touches = |p: &Path| {
        read.files.iter().any(|i| i == p)
            || read.dirs.iter().any(|d| p.starts_with(d))
            // A directory on an input's path renamed, removed or replaced.
            || (!t.op.is_content() && read.files.iter().chain(&read.dirs).any(|i| i.starts_with(p)))
    };
    // A symlink's first path is its target as written: creating a link changes only the
    // name it creates.
    let first = if t.op == TriggerOp::File(FileOp::Symlink) {
        None
    } else {
        t.path.as_deref()
    };
    if first.is_some_and(touches) || t.path2.as_deref().is_some_and(touches) {
        return true;
    }
    // A path the kernel cut: the head of an input's path (as the kernel filter matched it).
    if t.cut {
        let head_of = |p: &Path| {
            let h = p.as_os_str().as_bytes();
            read.files
                .iter()
                .chain(&read.dirs)
                .any(|i| i.as_os_str().as_bytes().starts_with(h))
        };
        if first.is_some_and(head_of) || t.path2.as_deref().is_some_and(head_of) {
            return true;
        }
    }
    // Written through another name (a hard link, /proc/self/fd): the same inode.
    t.inode
        .is_some_and(|ino| read.inodes.iter().any(|(i, _)| *i == ino))
}

/// The last trigger that is a record on one of the inputs read, if any.
pub fn trigger_on_inputs<'a>(
    triggers: impl DoubleEndedIterator<Item = &'a Trigger>,
    read: &Read,
) -> Option<&'a Trigger> {
    triggers.rev().find(|t| on_inputs(t, read))
}

/// The last record taken on its name alone (its process was gone before its relative path
/// could be resolved) whose name is an input's name: it may be the change's, or a same-named
/// file's elsewhere. Used only when no exact record names the change (after a short hold).
pub fn guess_on_inputs<'a>(
    triggers: impl DoubleEndedIterator<Item = &'a Trigger>,
    read: &Read,
) -> Option<&'a Trigger> {
    let names: Vec<&std::ffi::OsStr> = read.files.iter().filter_map(|f| f.file_name()).collect();
    // Only a relative path can be unresolved: an absolute one elsewhere is elsewhere.
    let named = |p: &Option<PathBuf>| {
        p.as_deref()
            .filter(|p| p.is_relative())
            .and_then(Path::file_name)
            .is_some_and(|n| names.contains(&n))
    };
    triggers.rev().find(|t| {
        t.guessed
            && t.actor.is_some()
            && matches!(t.op, TriggerOp::File(_))
            && (named(&t.path) || named(&t.path2))
    })
}

/// What a change with no record on its inputs is named: the loss or rescan that led to the
/// evaluation, else "unattributed". Never a process.
pub fn unnamed<'a>(triggers: impl Iterator<Item = &'a Trigger>) -> Trigger {
    let mut op = TriggerOp::Unattributed;
    for t in triggers {
        match t.op {
            TriggerOp::LostEvents => op = TriggerOp::LostEvents,
            TriggerOp::Rescan if op != TriggerOp::LostEvents => op = TriggerOp::Rescan,
            TriggerOp::Baseline if op == TriggerOp::Unattributed => op = TriggerOp::Baseline,
            _ => {}
        }
    }
    Trigger::internal(op)
}

/// The name of a change: the last record on the inputs read, else the last record taken on
/// an input's name alone ([`guess_on_inputs`]), else [`unnamed`]; its paths made absolute
/// where that is certain ([`absolute_paths`]).
pub fn name_change(triggers: &[&Trigger], read: &Read) -> Trigger {
    trigger_on_inputs(triggers.iter().copied(), read)
        .or_else(|| guess_on_inputs(triggers.iter().copied(), read))
        .cloned()
        .map(|t| absolute_paths(t, read))
        .unwrap_or_else(|| unnamed(triggers.iter().copied()))
}

/// A record's paths are resolved when it is classified, against its process's cwd or dirfd
/// (`watch::resolve`); a path still relative here belongs to a process that was gone by
/// then, and its directory is not known. When the record's file is an input by inode (an
/// open, close or truncate), its path is that input's, whatever name the process used (an
/// fd's close has no name at all). Otherwise it stays as given, and the outputs say so
/// (`path_given`): a directory is never guessed, not even from an input of the same name.
pub fn absolute_paths(mut t: Trigger, read: &Read) -> Trigger {
    let unplaced = t.path.as_deref().is_none_or(Path::is_relative);
    if unplaced
        && (t.path.is_some() || t.op.is_content())
        && let Some((_, input)) = t
            .inode
            .and_then(|ino| read.inodes.iter().find(|(i, _)| *i == ino))
    {
        t.path = Some(input.clone());
    }
    t
}

/// The name of a pending-drift change: the change of the after-restart state that caused it
/// in this evaluation, else the kubelet's own exec (a kubelet started with other settings),
/// else [`unnamed`].
pub fn name_pending(triggers: &[&Trigger], after_restart: Option<&Trigger>) -> Trigger {
    if let Some(t) = after_restart {
        return t.clone();
    }
    triggers
        .iter()
        .rev()
        .find(|t| t.op == TriggerOp::Exec)
        .map(|t| (*t).clone())
        .unwrap_or_else(|| unnamed(triggers.iter().copied()))
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::{
        finding::{Source, Status, Subject},
        report::Actor,
    };

    fn trigger(op: FileOp, path: &str, pid: u32, guessed: bool) -> Trigger {
        Trigger {
            path: Some(PathBuf::from(path)),
            actor: Some(Actor {
                pid,
                ..Default::default()
            }),
            guessed,
            ..Trigger::internal(TriggerOp::File(op))
        }
    }

    pub(crate) fn finding(inputs: &[&str], dirs: &[&str]) -> Finding {
        Finding {
            control: "4.2.7".into(),
            status: Status::Fail,
            effective: Some(false),
            subject: Subject::AfterRestart {
                unit: None,
                argv: vec![],
                exec_start_from: None,
            },
            source: Source::Default,
            reason: String::new(),
            remediation: String::new(),
            inputs: inputs.iter().map(PathBuf::from).collect(),
            input_dirs: dirs.iter().map(PathBuf::from).collect(),
        }
    }

    fn pid(t: &Trigger) -> Option<u32> {
        t.actor.as_ref().map(|a| a.pid)
    }

    /// A report names the write to a file the evaluation read, not a later event that only
    /// matched by name or touched another file; with none, it names no process.
    #[test]
    fn reports_name_the_event_on_what_was_read() {
        let f = finding(
            &["/node/var/lib/kubelet/config.yaml"],
            &["/node/etc/kubernetes/kubelet.conf.d"],
        );
        let ts = [
            trigger(
                FileOp::Rename,
                "/node/var/lib/kubelet/config.yaml",
                1,
                false,
            ),
            trigger(FileOp::Unlink, "/elsewhere/config.yaml", 2, true),
            trigger(FileOp::Close, "/elsewhere/x.yaml", 3, false),
        ];
        let refs: Vec<&Trigger> = ts.iter().collect();
        assert_eq!(pid(&name_change(&refs, &Read::plain(&f))), Some(1));
        let in_dir = trigger(
            FileOp::Open,
            "/node/etc/kubernetes/kubelet.conf.d/sub/9.conf",
            4,
            false,
        );
        assert_eq!(pid(&name_change(&[&in_dir], &Read::plain(&f))), Some(4));
        // Only bystanders: no process is named.
        let n = name_change(&refs[1..], &Read::plain(&f));
        assert_eq!((n.op, n.actor), (TriggerOp::Unattributed, None));
        // A relative name of a process gone before it was resolved: named when nothing
        // exact is there, after an exact record.
        let guess = trigger(FileOp::Rename, "config.yaml", 5, true);
        assert_eq!(
            pid(&name_change(&[&ts[2], &guess], &Read::plain(&f))),
            Some(5)
        );
        assert_eq!(
            pid(&name_change(&[&guess, &ts[0]], &Read::plain(&f))),
            Some(1)
        );
        let rescan = Trigger::internal(TriggerOp::Rescan);
        let n = name_change(&[&ts[2], &rescan], &Read::plain(&f));
        assert_eq!((n.op, n.actor), (TriggerOp::Rescan, None));
    }

    /// sed's rename onto the config (path2), a parent directory swapped, a hard link's write.
    #[test]
    fn names_that_replace_an_input_and_inodes() {
        let f = finding(&["/n/var/lib/kubelet/config.yaml"], &[]);
        let mut sed = trigger(FileOp::Rename, "/n/var/lib/kubelet/sedAb12", 5, false);
        sed.path2 = Some("/n/var/lib/kubelet/config.yaml".into());
        assert!(on_inputs(&sed, &Read::plain(&f)));
        let swap = trigger(FileOp::Rename, "/n/var/lib/kubelet", 6, false);
        assert!(on_inputs(&swap, &Read::plain(&f)));
        // A write to the parent directory's name is no write to the input.
        let odd = trigger(FileOp::Open, "/n/var/lib/kubelet", 6, false);
        assert!(!on_inputs(&odd, &Read::plain(&f)));
        let mut link = trigger(FileOp::Close, "/n/tmp/other-name", 7, false);
        link.inode = Some((8, 1234));
        assert!(!on_inputs(&link, &Read::plain(&f)));
        let mut read = Read::plain(&f);
        read.inodes
            .push(((8, 1234), "/n/var/lib/kubelet/config.yaml".into()));
        assert!(on_inputs(&link, &read));
        // The same file through its directory's real path (a kubelet's /proc/<pid>/root).
        let mut via_root = Read::plain(&finding(
            &["/proc/42/root/n/var/lib/kubelet/config.yaml"],
            &[],
        ));
        assert!(!on_inputs(&sed, &via_root));
        via_root.files.push("/n/var/lib/kubelet/config.yaml".into());
        assert!(on_inputs(&sed, &via_root));
        let exit = Trigger {
            op: TriggerOp::Exit,
            ..link.clone()
        };
        assert!(!on_inputs(&exit, &read), "an exit names nothing");
        // A path cut by the kernel names the input it is the head of.
        let mut cut = trigger(FileOp::Rename, "/n/var/lib/kub", 9, false);
        cut.path2 = Some("/n/var/lib/kubelet/conf".into());
        assert!(!on_inputs(&cut, &Read::plain(&f)));
        cut.cut = true;
        assert!(on_inputs(&cut, &Read::plain(&f)));
    }

    #[test]
    fn pending_drift_is_named_after_its_cause() {
        let f = trigger(FileOp::Rename, "/x", 1, false);
        let exec = Trigger {
            op: TriggerOp::Exec,
            ..trigger(FileOp::Open, "/usr/bin/kubelet", 2, false)
        };
        let bystander = trigger(FileOp::Close, "/dev/null", 3, false);
        assert_eq!(pid(&name_pending(&[&exec, &bystander], Some(&f))), Some(1));
        assert_eq!(pid(&name_pending(&[&exec, &bystander], None)), Some(2));
        assert_eq!(name_pending(&[&bystander], None).actor, None);
    }

    /// Paths in a report are absolute, or said to be as given: a relative path of a process
    /// gone before it was resolved becomes the input it matched by inode, and nothing else.
    #[test]
    fn relative_paths_become_the_input_matched_by_inode_or_stay_as_given() {
        let f = finding(&["/n/var/lib/kubelet/config.yaml"], &[]);
        let mut read = Read::plain(&f);
        read.inodes
            .push(((8, 1234), "/n/var/lib/kubelet/config.yaml".into()));
        // An open by a relative name, its process gone: the inode says which file.
        let mut open = trigger(FileOp::Open, "config.yaml", 1, false);
        open.inode = Some((8, 1234));
        let named = name_change(&[&open], &read);
        assert_eq!(
            named.path.as_deref(),
            Some(Path::new("/n/var/lib/kubelet/config.yaml"))
        );
        // A close carries no name: the same.
        let mut close = trigger(FileOp::Close, "", 1, false);
        close.path = None;
        close.inode = Some((8, 1234));
        assert_eq!(
            absolute_paths(close, &read).path.as_deref(),
            Some(Path::new("/n/var/lib/kubelet/config.yaml"))
        );
        // Another inode (the file was replaced since): as given, not guessed.
        open.inode = Some((8, 99));
        assert_eq!(
            absolute_paths(open, &read).path.as_deref(),
            Some(Path::new("config.yaml"))
        );
        // sed's rename taken on its name alone: both paths as given, even though an input
        // has that name.
        let mut sed = trigger(FileOp::Rename, "./sedAb12", 5, true);
        sed.path2 = Some("config.yaml".into());
        let named = name_change(&[&sed], &read);
        assert_eq!(named.path.as_deref(), Some(Path::new("./sedAb12")));
        assert_eq!(named.path2.as_deref(), Some(Path::new("config.yaml")));
        // Absolute paths are kept.
        let abs = trigger(FileOp::Rename, "/n/var/lib/kubelet/config.yaml", 6, false);
        assert_eq!(absolute_paths(abs.clone(), &read), abs);
    }
}

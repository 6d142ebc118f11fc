//! The event pipeline on the real kernel: the kernel programs loaded and attached, real
//! processes exec'ing and exiting, real tools editing a watched file, the ring buffer
//! overflowing. Runs as root (`require_root` fails otherwise, it never skips).
//!
//! Every test loads its own programs; each sees every process on the machine (and the other
//! tests of this binary, running in parallel), so every assertion is about the test's own
//! pids and paths.

use std::{
    fs,
    path::{Path, PathBuf},
    process::{Child, Command},
    time::{SystemTime, UNIX_EPOCH},
};

use kubelet_drift::{
    decode::{Event, FileInfo, FileOp, MatchedBy, Record},
    probes::{ProbeOptions, Probes, inode_key},
    settings::RingSize,
};
use kubelet_drift_tests::{
    ConfigDir, KillOnDrop, Monitor, file_events, file_summary, is_file_of, python3, require_root,
    run, sh, shared, spawn_kubelet, spawn_kubelet_copy, summary,
};
use monitor_common::InodeKey;

const KUBELET: &str = env!("CARGO_BIN_EXE_kubelet");
const AT_FDCWD: i32 = -100;

fn key_of(path: &Path) -> InodeKey {
    inode_key(&fs::metadata(path).unwrap_or_else(|e| panic!("stat {}: {e}", path.display())))
}

fn show(events: &[&FileInfo]) -> String {
    events
        .iter()
        .map(|f| format!("\n  {}", file_summary(f)))
        .collect()
}

/// A name no other test (or run) uses.
fn unique(prefix: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{prefix}-{}-{nanos}", std::process::id())
}

// ---------------------------------------------------------------------------------------
// 1. exec and exit of the kubelet
// ---------------------------------------------------------------------------------------

/// Starts a kubelet with `spawn` (which returns it and the path it executed), checks its
/// exec, kills it and checks its exit.
fn exec_and_exit(spawn: impl FnOnce() -> (Child, PathBuf), uid: u32, gid: u32) {
    let m = shared();
    let since = m.cursor();
    let (child, exe) = spawn();
    let mut child = KillOnDrop(child);
    let pid = child.0.id();
    let is_exec = |r: &Record| matches!(&r.event, Event::Exec(p) if p.actor.tgid == pid);
    let recs = m.wait_for(since, "the kubelet's exec", is_exec);
    let exec_rec = recs.iter().find(|r| is_exec(r)).unwrap();
    let Event::Exec(exec) = &exec_rec.event else {
        unreachable!()
    };
    assert_eq!(exec.actor.pid, pid, "exec: pid");
    assert_eq!(exec.actor.tgid, pid, "exec: tgid");
    assert_eq!(
        exec.actor.ppid,
        std::process::id(),
        "exec: ppid is the test"
    );
    assert_eq!(exec.actor.uid, uid, "exec: uid");
    assert_eq!(exec.actor.gid, gid, "exec: gid");
    assert_eq!(exec.actor.comm, b"kubelet", "exec: comm");
    assert_eq!(exec.path, exe, "exec: the executed file");
    assert_eq!(exec.exit_code, 0);

    child.0.kill().expect("kill");
    child.0.wait().expect("wait");
    let is_exit = |r: &Record| matches!(&r.event, Event::Exit(p) if p.actor.tgid == pid);
    let recs = m.wait_for(since, "the kubelet's exit", is_exit);
    let exit_rec = recs.iter().find(|r| is_exit(r)).unwrap();
    let Event::Exit(exit) = &exit_rec.event else {
        unreachable!()
    };
    assert_eq!(exit.actor.pid, pid, "exit: pid");
    assert_eq!(exit.actor.tgid, pid, "exit: tgid");
    assert_eq!(exit.actor.comm, b"kubelet", "exit: comm");
    assert_eq!(
        exit.exit_code & 0x7f,
        libc::SIGKILL,
        "exit: wait status says killed by SIGKILL ({})",
        summary(exit_rec)
    );
    assert!(exit_rec.ktime_ns > exec_rec.ktime_ns, "exit after exec");
    let n = |f: &dyn Fn(&Record) -> bool| recs.iter().filter(|r| f(r)).count();
    assert_eq!((n(&is_exec), n(&is_exit)), (1, 1), "one exec, one exit");
}

#[test]
fn kubelet_exec_and_exit_are_delivered() {
    require_root();
    exec_and_exit(
        || {
            let child = spawn_kubelet(Path::new(KUBELET), &["--config", "/nonexistent.yaml"]);
            (child, PathBuf::from(KUBELET))
        },
        0,
        0,
    );
    assert!(shared().counters().exit_seen >= 1);
}

#[test]
fn kubelet_copy_as_other_user_and_cwd_is_delivered() {
    require_root();
    let cwd = tempfile::tempdir().unwrap();
    let mut dirs = Vec::new();
    exec_and_exit(
        || {
            let k = spawn_kubelet_copy(Path::new(KUBELET), &["--v=2"], cwd.path(), 65534, 65533);
            dirs.push(k.dir);
            (k.child, k.exe)
        },
        65534,
        65533,
    );
}

// ---------------------------------------------------------------------------------------
// 2. other programs' execs are dropped in the kernel
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn execs_of_other_programs_are_filtered_in_the_kernel() {
    require_root();
    let mut m = Monitor::new(&["kubelet"], &[]);
    m.drain_now();
    let c0 = m.counters();
    let pids: Vec<u32> = (0..50)
        .map(|_| run(&mut Command::new("/bin/true")).0)
        .collect();
    let c1 = m.counters();
    let recs = m.drain_now();
    let ours: Vec<&Record> = recs
        .iter()
        .filter(
            |r| matches!(&r.event, Event::Exec(p) | Event::Exit(p) if pids.contains(&p.actor.tgid)),
        )
        .collect();
    assert!(
        ours.is_empty(),
        "execs of /bin/true delivered: {:?}",
        ours.iter().map(|r| summary(r)).collect::<Vec<_>>()
    );
    assert!(
        c1.exec_seen - c0.exec_seen >= 50,
        "exec_seen grew by {} for 50 execs",
        c1.exec_seen - c0.exec_seen
    );
    assert!(
        c1.exec_filtered - c0.exec_filtered >= 50,
        "exec_filtered grew by {} for 50 unwatched execs",
        c1.exec_filtered - c0.exec_filtered
    );
    // Whatever was sent meanwhile (other tests' kubelets, `*.conf` edits anywhere) is in what
    // was drained, and none of it is ours: nothing was sent for /bin/true.
    assert!(
        c1.sent - c0.sent <= recs.len() as u64,
        "sent grew by {} but only {} records were delivered",
        c1.sent - c0.sent,
        recs.len()
    );
    // Control: the same programs deliver /bin/true once it is watched.
    m.probes.set_comms(&["kubelet", "true"]).unwrap();
    let (pid, _) = run(&mut Command::new("/bin/true"));
    let recs = m
        .wait_for("the exec of a watched /bin/true", |r| {
            matches!(&r.event, Event::Exec(p) if p.actor.tgid == pid && p.actor.comm == b"true")
        })
        .await;
    assert!(!recs.is_empty());
}

// ---------------------------------------------------------------------------------------
// 3. edits of a watched file, by each tool
// ---------------------------------------------------------------------------------------

/// Watches `d/config.yaml`, runs `cmd`, and returns its pid, its stdout and all the file
/// events of that pid (all of them are in the ring once the process has exited).
fn edit(d: &ConfigDir, cmd: &mut Command) -> (u32, String, Vec<FileInfo>) {
    let m = shared();
    let since = m.watch(&[&d.config]);
    let (pid, stdout) = run(cmd);
    let recs = m.sync(since);
    let events: Vec<FileInfo> = file_events(&recs, pid).into_iter().cloned().collect();
    assert!(!events.is_empty(), "no file event from {cmd:?} (pid {pid})");
    (pid, stdout, events)
}

fn assert_actor(events: &[FileInfo], pid: u32, comm: &str) {
    for f in events {
        assert_eq!(f.actor.pid, pid, "actor pid");
        assert_eq!(f.actor.tgid, pid, "actor tgid");
        assert_eq!(f.actor.ppid, std::process::id(), "actor ppid is the test");
        assert_eq!(f.actor.uid, 0);
        assert_eq!(
            String::from_utf8_lossy(&f.actor.comm),
            comm,
            "actor comm of {} {:?}",
            f.op.as_str(),
            f.path
        );
    }
}

/// The write-intent open of `key` (matched by inode), then its close with the same dev/ino
/// and the fd the open returned. Returns the open.
fn assert_open_then_close<'a>(events: &'a [FileInfo], key: InodeKey, path: &str) -> &'a FileInfo {
    let refs: Vec<&FileInfo> = events.iter().collect();
    let i = events
        .iter()
        .position(|f| f.op == FileOp::Open && f.ino == key.ino)
        .unwrap_or_else(|| panic!("no open of ino {}: {}", key.ino, show(&refs)));
    let open = &events[i];
    assert_eq!(open.matched_by, MatchedBy::Inode, "{}", show(&refs));
    assert_eq!(open.dev, key.dev);
    assert_eq!(open.path, PathBuf::from(path));
    assert!(open.ret >= 0, "open succeeded: {}", show(&refs));
    assert!(
        open.sys_flags & (libc::O_WRONLY | libc::O_RDWR) as u64 != 0,
        "open flags {:#o} are write intent",
        open.sys_flags
    );
    let close = events[i + 1..]
        .iter()
        .find(|f| f.op == FileOp::Close && f.dirfd as i64 == open.ret)
        .unwrap_or_else(|| {
            panic!(
                "no close of fd {} after the open: {}",
                open.ret,
                show(&refs)
            )
        });
    assert_eq!(close.matched_by, MatchedBy::Fd);
    assert_eq!(
        (close.dev, close.ino),
        (key.dev, key.ino),
        "close: same file"
    );
    open
}

fn renames_onto_config<'a>(events: &'a [FileInfo], from_prefix: &str) -> &'a FileInfo {
    let refs: Vec<&FileInfo> = events.iter().collect();
    let r = events
        .iter()
        .find(|f| {
            f.op == FileOp::Rename
                && f.ret == 0
                && f.path2.as_deref() == Some(Path::new("config.yaml"))
        })
        .unwrap_or_else(|| panic!("no successful rename onto config.yaml: {}", show(&refs)));
    // A bare name: decided in the kernel by (the cwd's inode, name).
    assert_eq!(r.matched_by, MatchedBy::ParentDir);
    assert!(
        r.path.to_string_lossy().starts_with(from_prefix),
        "renamed from {:?}, expected {from_prefix}...",
        r.path
    );
    r
}

#[test]
fn edit_by_shell_redirect() {
    require_root();
    let d = ConfigDir::new();
    let key = key_of(&d.config);
    let (pid, _, ev) = edit(&d, &mut sh(d.path(), "echo x > config.yaml"));
    assert_actor(&ev, pid, "sh");
    let open = assert_open_then_close(&ev, key, "config.yaml");
    assert_eq!(open.dirfd, AT_FDCWD);
    assert!(open.sys_flags & libc::O_TRUNC as u64 != 0);
    assert_eq!(fs::read_to_string(&d.config).unwrap(), "x\n");
    // The shell dup2s the fd to 1 and closes the original BEFORE echo writes: the close is not
    // the end of the write. The writer's exit is, and it is reported, after the close.
    let ops: Vec<FileOp> = ev.iter().map(|f| f.op).collect();
    let close = ops.iter().position(|o| *o == FileOp::Close).unwrap();
    let exit = ops
        .iter()
        .position(|o| *o == FileOp::WriterExit)
        .unwrap_or_else(|| panic!("no writer_exit for the shell: {ops:?}"));
    assert!(close < exit, "{ops:?}");
    assert_eq!(ev[exit].actor.tgid, pid);
}

/// `cmd`, run in a fresh config directory, renames a file whose name starts with `from` onto
/// config.yaml: its records name it (`comm`) and the rename. `prepare` writes what it needs
/// first. Returns the directory.
fn renamed_onto_config_by(
    mut cmd: Command,
    comm: &str,
    from: &str,
    prepare: impl FnOnce(&Path),
) -> ConfigDir {
    require_root();
    let d = ConfigDir::new();
    prepare(d.path());
    cmd.current_dir(d.path());
    let (pid, _, ev) = edit(&d, &mut cmd);
    assert_actor(&ev, pid, comm);
    renames_onto_config(&ev, from);
    d
}

/// A command with its arguments.
fn command(program: &str, args: &[&str]) -> Command {
    let mut c = Command::new(program);
    c.args(args);
    c
}

#[test]
fn edit_by_sed_in_place() {
    let d = renamed_onto_config_by(
        command("sed", &["-i", "s/true/false/", "config.yaml"]),
        "sed",
        "./sed",
        |_| {},
    );
    assert!(fs::read_to_string(&d.config).unwrap().contains("false"));
}

#[test]
fn edit_by_mv() {
    let mv = command("mv", &["other", "config.yaml"]);
    renamed_onto_config_by(mv, "mv", "other", |dir| {
        fs::write(dir.join("other"), "a: 1\n").unwrap()
    });
}

#[test]
fn edit_by_cp() {
    require_root();
    let d = ConfigDir::new();
    fs::write(d.path().join("src"), "a: 1\n").unwrap();
    let key = key_of(&d.config);
    let mut cmd = Command::new("cp");
    cmd.args(["src", "config.yaml"]).current_dir(d.path());
    let (pid, _, ev) = edit(&d, &mut cmd);
    assert_actor(&ev, pid, "cp");
    let open = assert_open_then_close(&ev, key, "config.yaml");
    assert!(open.sys_flags & libc::O_TRUNC as u64 != 0);
    assert_eq!(fs::read_to_string(&d.config).unwrap(), "a: 1\n");
}

/// A watched directory (a drop-in dir): a new `*.conf` file created in it is delivered,
/// matched by its parent directory's inode, not by its name; a file of another name there is
/// not (neither the kubelet nor systemd reads it). (Its own instance: the shared one keeps the
/// inodes of other tests' deleted files, whose numbers the new file may reuse.)
#[tokio::test]
async fn new_file_in_a_watched_directory_is_matched_by_its_parent() {
    require_root();
    let d = ConfigDir::new();
    let dir = d.path().join("conf.d");
    fs::create_dir(&dir).unwrap();
    let mut m = Monitor::new(&[], &[&dir]);
    let (other, _) = run(&mut sh(&dir, "echo x > unrelated-name.yaml"));
    let (pid, _) = run(&mut sh(&dir, "echo x > 20-new-drop-in.conf"));
    let recs = m
        .wait_for(
            "the open in the watched directory",
            |r| matches!(&r.event, Event::File(f) if f.actor.tgid == pid && f.op == FileOp::Open),
        )
        .await;
    let ev = file_events(&recs, pid);
    let open = ev.iter().find(|f| f.op == FileOp::Open).unwrap();
    assert_eq!(open.matched_by, MatchedBy::ParentDir, "{open:?}");
    assert_eq!(open.path, PathBuf::from("20-new-drop-in.conf"));
    assert_eq!(open.ino, key_of(&dir.join("20-new-drop-in.conf")).ino);
    let leaked = file_events(&recs, other);
    assert!(leaked.is_empty(), "a non-.conf file delivered: {leaked:?}");
}

#[test]
fn edit_by_truncate() {
    require_root();
    let d = ConfigDir::new();
    let key = key_of(&d.config);
    let mut cmd = Command::new("truncate");
    cmd.args(["-s", "0", "config.yaml"]).current_dir(d.path());
    let (pid, _, ev) = edit(&d, &mut cmd);
    assert_actor(&ev, pid, "truncate");
    let refs: Vec<&FileInfo> = ev.iter().collect();
    // coreutils truncate(1) opens the file (O_WRONLY|O_CREAT|O_NONBLOCK) and ftruncate(2)s
    // the fd; a truncate(2) by path would do as well.
    if let Some(t) = ev.iter().find(|f| f.op == FileOp::Truncate) {
        assert_eq!(t.path, PathBuf::from("config.yaml"));
        assert_eq!(t.ret, 0);
    } else {
        let open = assert_open_then_close(&ev, key, "config.yaml");
        let ft = ev
            .iter()
            .find(|f| f.op == FileOp::Ftruncate)
            .unwrap_or_else(|| panic!("neither truncate nor ftruncate: {}", show(&refs)));
        assert_eq!(ft.dirfd as i64, open.ret, "ftruncate of the opened fd");
        assert_eq!((ft.dev, ft.ino), (key.dev, key.ino));
        assert_eq!(ft.matched_by, MatchedBy::Inode);
        assert_eq!(ft.sys_flags, 0, "length 0");
        assert_eq!(ft.ret, 0);
    }
    assert_eq!(fs::metadata(&d.config).unwrap().len(), 0);
}

#[test]
fn edit_by_python_os_replace() {
    renamed_onto_config_by(
        command(
            python3(),
            &[
                "-c",
                "import os\nwith open('new.tmp', 'w') as f: f.write('a: 2\\n')\nos.replace('new.tmp', 'config.yaml')",
            ],
        ),
        "python3",
        "new.tmp",
        |_| {},
    );
}

#[test]
fn edit_through_relative_path_after_cd() {
    require_root();
    let d = ConfigDir::new();
    let parent = d.path().parent().unwrap();
    let name = d.path().file_name().unwrap().to_str().unwrap();
    let script = format!("cd '{name}' && echo x > config.yaml");
    shell_writes_config(&d, parent, &script, "config.yaml");
}

/// A shell started in `cwd` runs `script`, which writes the config through the path `given`:
/// the open names that path relative to the shell's cwd (AT_FDCWD), then the close follows.
fn shell_writes_config(d: &ConfigDir, cwd: &Path, script: &str, given: &str) {
    let key = key_of(&d.config);
    let (pid, _, ev) = edit(d, &mut sh(cwd, script));
    assert_actor(&ev, pid, "sh");
    let open = assert_open_then_close(&ev, key, given);
    assert_eq!(open.dirfd, AT_FDCWD);
}

#[test]
fn edit_through_dotdot_path_from_another_cwd() {
    require_root();
    let d = ConfigDir::new();
    let sub = d.path().join("sub");
    fs::create_dir(&sub).unwrap();
    shell_writes_config(&d, &sub, "echo x > ../config.yaml", "../config.yaml");
}

/// python3 (in `/`) runs `code` on `arg`: it prints a number (an fd) and then writes the
/// config through the path `given`. Returns that number, the config's open (checked to be
/// python's and followed by its close) and every record of python's.
fn python_writes_config(
    d: &ConfigDir,
    code: &str,
    arg: &Path,
    given: &str,
) -> (i64, FileInfo, Vec<FileInfo>) {
    require_root();
    let key = key_of(&d.config);
    let mut cmd = Command::new(python3());
    cmd.args(["-c", code]).arg(arg).current_dir("/");
    let (pid, stdout, ev) = edit(d, &mut cmd);
    let n: i64 = stdout.trim().parse().expect("python printed a number");
    assert_actor(&ev, pid, "python3");
    let open = assert_open_then_close(&ev, key, given).clone();
    (n, open, ev)
}

#[test]
fn edit_through_openat_with_a_dirfd() {
    let d = ConfigDir::new();
    let (dirfd, open, _) = python_writes_config(
        &d,
        "import os, sys\n\
         d = os.open(sys.argv[1], os.O_RDONLY | os.O_DIRECTORY)\n\
         print(d, flush=True)\n\
         f = os.open('config.yaml', os.O_WRONLY | os.O_TRUNC, dir_fd=d)\n\
         os.write(f, b'a: 3\\n')\n\
         os.close(f)",
        d.path(),
        "config.yaml",
    );
    assert_eq!(i64::from(open.dirfd), dirfd, "the dirfd given to openat");
    assert_eq!(fs::read_to_string(&d.config).unwrap(), "a: 3\n");
}

#[test]
fn open_write_close_gives_open_then_close_of_the_same_file() {
    let d = ConfigDir::new();
    let (fd, open, ev) = python_writes_config(
        &d,
        "import os, sys\n\
         f = os.open(sys.argv[1], os.O_WRONLY)\n\
         print(f, flush=True)\n\
         os.write(f, b'# edited\\n')\n\
         os.close(f)",
        &d.config,
        d.config.to_str().unwrap(),
    );
    assert_eq!(open.ret, fd);
    assert_eq!(open.sys_flags & libc::O_TRUNC as u64, 0);
    let ops: Vec<FileOp> = ev.iter().map(|f| f.op).collect();
    assert_eq!(
        ops,
        [FileOp::Open, FileOp::Close, FileOp::WriterExit],
        "exactly an open, a close, and the writer's exit"
    );
}

// ---------------------------------------------------------------------------------------
// 4. unrelated files are dropped in the kernel
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn writes_to_unrelated_files_are_filtered_in_the_kernel() {
    require_root();
    let d = ConfigDir::new();
    let elsewhere = tempfile::tempdir().unwrap();
    // Its own instance: the shared one keeps the inodes of other tests' deleted files, and a
    // new file here may get one of those numbers.
    let mut m = Monitor::new(&[], &[&d.config]);
    m.drain_now();
    let c0 = m.counters();
    let mut pids = Vec::new();
    for (dir, script) in [
        (d.path(), "echo x > other.yaml"),
        (d.path(), "echo x > config.yaml.bak"),
        (d.path(), "echo x >> notes.txt"),
        (elsewhere.path(), "echo x > kubelet.yaml"),
        (elsewhere.path(), "echo x > config.yml"),
    ] {
        pids.push(run(&mut sh(dir, script)).0);
    }
    for (dir, args) in [
        (d.path(), &["mv", "other.yaml", "other2.yaml"][..]),
        (d.path(), &["truncate", "-s", "0", "config.yaml.bak"]),
        (d.path(), &["cp", "notes.txt", "notes2.txt"]),
        (d.path(), &["rm", "notes2.txt"]),
        (elsewhere.path(), &["mv", "config.yml", "config.yml.1"]),
    ] {
        let mut cmd = Command::new(args[0]);
        cmd.args(&args[1..]).current_dir(dir);
        pids.push(run(&mut cmd).0);
    }
    let c1 = m.counters();
    // Control, after all of the above: the ring is ordered, so anything they caused would
    // be drained before this.
    let (ctl, _) = run(&mut sh(d.path(), "echo x > config.yaml"));
    let recs = m
        .wait_for("the control write", |r| is_file_of(r, ctl))
        .await;
    let leaked: Vec<String> = recs
        .iter()
        .filter(|r| matches!(&r.event, Event::File(f) if pids.contains(&f.actor.tgid)))
        .map(summary)
        .collect();
    assert!(leaked.is_empty(), "unrelated edits delivered: {leaked:#?}");
    // 5 redirects + mv + truncate's open and ftruncate + cp's open + rm + mv, at least.
    assert!(
        c1.file_filtered - c0.file_filtered >= 10,
        "file_filtered grew by {} for 11 unrelated write opens and path operations",
        c1.file_filtered - c0.file_filtered
    );
}

/// What every node does all day, beside a node whose kubelet unit is masked (a link to
/// /dev/null in /etc/systemd/system): writes to /dev/null, an unrelated `*.conf` in /etc, a
/// log append, a scratch file in /tmp, an unrelated unit created by a rename and removed in
/// the unit directory, /bin/true. None of it may reach userspace: /dev/null is not watched
/// through the masked unit, `*.conf` counts only in drop-in directories, and the unit
/// directory counts only for the names systemd looks up there. The kernel's own counters
/// agree: every record they sent in the window is another process's (the programs see the
/// whole machine), and the loop's opens and path operations were filtered.
#[tokio::test]
async fn node_noise_beside_a_masked_unit_sends_nothing() {
    require_root();
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    let units = r.join("etc/systemd/system");
    fs::create_dir_all(&units).unwrap();
    fs::create_dir_all(r.join("var/log")).unwrap();
    fs::create_dir_all(r.join("var/lib/kubelet")).unwrap();
    fs::write(r.join("var/lib/kubelet/config.yaml"), "a: 1\n").unwrap();
    std::os::unix::fs::symlink("/dev/null", units.join("kubelet.service")).unwrap();
    // What an evaluation of this node names: the masked unit (read), the drop-in directories
    // (missing), the unit directory (as the unit evaluation lists it), the config.
    let inputs = [
        units.join("kubelet.service"),
        units.join("kubelet.service.d"),
        units.join("service.d"),
        units.clone(),
        r.join("var/lib/kubelet/config.yaml"),
    ];
    let refs: Vec<&Path> = inputs.iter().map(|p| p.as_path()).collect();
    let mut m = Monitor::new(&[], &refs);
    let null = key_of(Path::new("/dev/null"));
    assert!(
        !m.watch.inodes.contains_key(&null),
        "/dev/null is watched through the masked unit"
    );
    m.drain_now();
    let c0 = m.counters();
    let script = r#"
        r="$1"; i=0
        while [ "$i" -lt 40 ]; do
            echo > /dev/null
            printf 'key = %s\n' "$i" > "$r/etc/some-app.conf"
            echo "line $i" >> "$r/var/log/some-app.log"
            printf '%s\n' "$i" > "/tmp/kd-noise-test.$$"
            printf '[Service]\nExecStart=/bin/true\n' > "$r/etc/systemd/system/noise.service.tmp"
            mv "$r/etc/systemd/system/noise.service.tmp" "$r/etc/systemd/system/noise.service"
            rm -f "$r/etc/systemd/system/noise.service"
            /bin/true
            i=$((i + 1))
        done
        rm -f "/tmp/kd-noise-test.$$"
        echo done"#;
    let mut cmd = Command::new("bash");
    cmd.arg("-c").arg(script).arg("noise").arg(r);
    let (noise, out) = run(&mut cmd);
    assert_eq!(out.trim(), "done");
    let c1 = m.counters();
    // Control, after all of the above: the ring is ordered, so anything the loop caused
    // would be drained before this.
    let (ctl, _) = run(&mut sh(r, "echo x > var/lib/kubelet/config.yaml"));
    let recs = m
        .wait_for("the control write", |rec| is_file_of(rec, ctl))
        .await;
    let ours = |f: &FileInfo| f.actor.tgid == noise || f.actor.ppid == noise;
    let leaked: Vec<String> = recs
        .iter()
        .filter(|rec| matches!(&rec.event, Event::File(f) if ours(f)))
        .map(summary)
        .collect();
    assert!(leaked.is_empty(), "node noise delivered: {leaked:#?}");
    let others = recs
        .iter()
        .filter(|rec| !matches!(&rec.event, Event::File(f) if f.actor.tgid == ctl))
        .count() as u64;
    // `sent` counts records reserved in the ring before c1 was read; every one of them is
    // among the records drained before the control's.
    assert!(
        c1.sent - c0.sent <= others,
        "the kernel sent {} records during the noise, {others} of them seen from other processes",
        c1.sent - c0.sent
    );
    // 40 × (3 redirects + /tmp + the unit's write, mv, rm), at least.
    assert!(
        c1.file_filtered - c0.file_filtered >= 40 * 6,
        "file_filtered grew by {} for the loop",
        c1.file_filtered - c0.file_filtered
    );
}

// ---------------------------------------------------------------------------------------
// 5. ring-buffer overflow and loss accounting
// ---------------------------------------------------------------------------------------

/// Pins the calling thread to one CPU (the per-CPU "lost" count travels with the next record
/// *of the same CPU*), restoring its affinity on drop.
struct Pinned(libc::cpu_set_t);

impl Pinned {
    fn here() -> Pinned {
        // SAFETY: plain libc calls on a zeroed cpu_set_t for the calling thread (pid 0).
        unsafe {
            let mut old: libc::cpu_set_t = std::mem::zeroed();
            assert_eq!(
                libc::sched_getaffinity(0, size_of::<libc::cpu_set_t>(), &mut old),
                0
            );
            let cpu = libc::sched_getcpu();
            assert!(cpu >= 0);
            let mut one: libc::cpu_set_t = std::mem::zeroed();
            libc::CPU_SET(cpu as usize, &mut one);
            assert_eq!(
                libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &one),
                0
            );
            Pinned(old)
        }
    }
}

impl Drop for Pinned {
    fn drop(&mut self) {
        // SAFETY: restores the mask read in `here`.
        unsafe { libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &self.0) };
    }
}

fn touches(f: &FileInfo, name: &str) -> bool {
    let is = |p: &Path| p.file_name().is_some_and(|n| n == name);
    is(&f.path) || f.path2.as_deref().is_some_and(is)
}

/// Overflows a one-page ring with `burst` (which causes `caused` matched events of this
/// process on the pinned CPU), drains, causes `more` more with `one_more`, and checks the
/// loss accounting. `ours` says which records are the test's own.
async fn overflow(
    burst: impl FnOnce(),
    caused: u64,
    one_more: impl FnOnce(),
    more: u64,
    m: &mut Monitor,
    ours: impl Fn(&FileInfo) -> bool,
) {
    let me = std::process::id();
    let _pin = Pinned::here();
    m.drain_now();
    let before = m.counters();
    burst();
    let after_burst = m.counters();
    let mut all = m.drain_now();
    let delivered_in_burst = all.len();
    one_more();
    let last = m
        .wait_for(
            "the record after the overflow",
            |r| matches!(&r.event, Event::File(f) if f.actor.tgid == me && ours(f)),
        )
        .await;
    all.extend(last);
    all.extend(m.drain_now());
    let c = m.counters();
    let own: Vec<&Record> = all
        .iter()
        .filter(|r| matches!(&r.event, Event::File(f) if f.actor.tgid == me && ours(f)))
        .collect();
    let dropped = c.dropped - before.dropped;
    assert!(
        after_burst.dropped > before.dropped,
        "a one-page ring did not overflow: {after_burst:?} ({delivered_in_burst} delivered)"
    );
    // The first own record after the drain carries what this CPU lost before it.
    let first_after = all[delivered_in_burst..]
        .iter()
        .find(|r| matches!(&r.event, Event::File(f) if f.actor.tgid == me && ours(f)))
        .expect("a record after the drain");
    assert!(
        first_after.lost_before > 0,
        "the first record after the overflow says nothing was lost: {}",
        summary(first_after)
    );
    assert_eq!(
        own.len() as u64 + dropped,
        caused + more,
        "records received ({}) + dropped ({dropped}) == events caused ({})",
        own.len(),
        caused + more
    );
    // `sent` counts successful submissions only: what was sent is what was received.
    assert_eq!(
        c.sent - before.sent,
        all.len() as u64,
        "sent ({}) == records received ({})",
        c.sent - before.sent,
        all.len()
    );
    let reported: u64 = all.iter().map(|r| r.lost_before as u64).sum();
    assert_eq!(
        reported,
        dropped,
        "sum of lost_before over the records ({reported}) == the dropped counter ({dropped}); \
         first record after the drain: {}",
        summary(first_after)
    );
    assert_eq!(m.stream.decode_errors, 0);
}

#[tokio::test]
async fn ring_overflow_of_renames_is_accounted() {
    require_root();
    let d = tempfile::tempdir().unwrap();
    let name = unique("kd-overflow-rename") + ".yaml";
    let watched = d.path().join(&name);
    let other = d.path().join("other.yaml");
    fs::write(&watched, "x").unwrap();
    let mut m = Monitor::start(ring(4096), &["kd-no-such-comm"], &[&watched]).unwrap();
    const N: u64 = 2000;
    overflow(
        || {
            for i in 0..N {
                let (a, b) = if i % 2 == 0 {
                    (&watched, &other)
                } else {
                    (&other, &watched)
                };
                fs::rename(a, b).unwrap();
            }
        },
        N,
        || fs::rename(&watched, &other).unwrap(),
        1,
        &mut m,
        |f| f.op == FileOp::Rename && touches(f, &name),
    )
    .await;
}

#[tokio::test]
async fn ring_overflow_of_opens_is_accounted() {
    require_root();
    let d = tempfile::tempdir().unwrap();
    let name = unique("kd-overflow-open") + ".yaml";
    let watched = d.path().join(&name);
    fs::write(&watched, "x").unwrap();
    let key = key_of(&watched);
    let mut m = Monitor::start(ring(4096), &["kd-no-such-comm"], &[&watched]).unwrap();
    let write_once = || {
        drop(
            fs::OpenOptions::new()
                .write(true)
                .open(&watched)
                .expect("open"),
        )
    };
    const N: u64 = 1000;
    overflow(
        || (0..N).for_each(|_| write_once()),
        2 * N, // an open and a close each
        write_once,
        2,
        &mut m,
        |f| f.ino == key.ino && f.dev == key.dev,
    )
    .await;
}

// ---------------------------------------------------------------------------------------
// 6. bad settings fail clearly
// ---------------------------------------------------------------------------------------

fn ring(n: u64) -> RingSize {
    RingSize::new(n).unwrap()
}

/// The ring-buffer size is one checked type ([`RingSize`]) from the settings file and the
/// `run` and `events` command lines to the probes: its smallest and largest sizes load.
#[test]
fn ring_sizes_at_the_bounds_load() {
    require_root();
    for n in [RingSize::MIN, RingSize::MAX] {
        Probes::load(&ProbeOptions { ring: ring(n) })
            .unwrap_or_else(|e| panic!("a {n}-byte ring should load: {e:#}"));
    }
}

/// Sizes that cannot be made valid are refused where they are read, with a message that
/// names the ring-buffer size, by `run` and `events` alike (aya would round 12288 up and a
/// size above 2 GiB would overflow its rounding).
#[test]
fn ring_size_that_cannot_work_is_a_clear_error() {
    let mut problems = Vec::new();
    for bad in ["0", "12288", "1024", "2GiB", "4294967295", "lots"] {
        for cmd in ["run", "events"] {
            let out = std::process::Command::new(kubelet_drift_tests::daemon::daemon_exe())
                .args([cmd, "--ring-bytes", bad])
                .output()
                .unwrap();
            let err = String::from_utf8_lossy(&out.stderr);
            if out.status.success() || !(err.contains("ring") || err.contains("size")) {
                problems.push(format!("{cmd} --ring-bytes {bad}: {:?} {err}", out.status));
            }
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
}

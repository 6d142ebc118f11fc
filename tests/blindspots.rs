//! The blind spots of a syscall-tracing monitor, each reproduced as an attacker would: a swap
//! of a directory on the config's path, a shared mapping written after close(2),
//! open_by_handle_at(2), io_uring, a bind mount over the config. Each must produce a
//! drift_detected by its event: the daemon runs with `--rescan-interval 1h`, and the report
//! must arrive within 2 s, name the process that made the change, and not be a rescan's.
//! Run with `--nocapture` to see each one's latency.

use kubelet_drift_tests::daemon as harness;

use std::{
    ffi::OsStr,
    fs,
    io::BufRead,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::OnceLock,
    time::Duration,
};

use harness::*;
use serde_json::Value;

const DEADLINE: Duration = Duration::from_secs(2);

/// One blind-spot test at a time: each starts a daemon of its own, and each test's change
/// should be the only one its daemon sees. (Another test's node root being removed —
/// `remove_dir_all` unlinks a `kubelet` through a directory fd closed before it can be
/// resolved — is placed elsewhere by the directory the kernel recorded: the io_uring rename
/// test runs beside such a bystander on purpose.) The guard is taken before the node is
/// made, so it outlives it.
fn serial() -> std::sync::MutexGuard<'static, ()> {
    static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Runs [`caught_by_event`] and asserts whom the report names: the process that made the
/// change, or — only where the kernel's record carries no file — no process at all; never
/// another one.
fn caught(tag: &str, node: &Node, act: impl FnOnce(&Node) -> u32) -> Value {
    let (v, writer) = caught_by_event("blind spot", tag, node, DEADLINE, act);
    let honest_unnamed =
        unnamed_ok(tag) && trigger_op(&v) == "unattributed" && actor_pid(&v).is_none();
    assert!(
        honest_unnamed || actor_pid(&v) == Some(writer as u64),
        "{tag}: not attributed to the writer: {v}"
    );
    v
}

/// The cases whose record carries no file (io_uring path operations and requests that post no
/// completion): the daemon cannot tie them to the input, so "unattributed" is the honest name.
fn unnamed_ok(tag: &str) -> bool {
    tag.starts_with("uring")
}

/// Every test's start: the serial guard (taken first, so that it outlives the node), root,
/// a fresh node.
fn serial_node() -> (std::sync::MutexGuard<'static, ()>, Node) {
    let guard = serial();
    require_root();
    (guard, Node::new())
}

/// Where the node's config says `true`, in bytes: "true\n" written over as "false" keeps
/// the file's length.
fn true_offset(node: &Node) -> usize {
    let text = fs::read_to_string(node.config()).unwrap();
    text.find(TRUE_LINE).unwrap() + "makeIPTablesUtilChains: ".len()
}

/// The io_uring client writing false into the node's config its `op` way; its pid.
fn uring_writes(exe: &Path, op: &str, n: &Node) -> u32 {
    run(Command::new(exe).arg(op).arg(n.config()).arg(false_text()))
}

fn false_text() -> String {
    config_text(false)
}

/// `mv lib lib.old; mv lib.new lib` one level above the config's directory: the config file
/// itself is never opened, renamed or unlinked, and no name on its path is a watched name.
#[test]
fn parent_directory_swapped() {
    let (_serial, node) = serial_node();
    let v = caught("dirswap", &node, |n| {
        python(
            "import sys, os, shutil\n\
             lib = sys.argv[1]\n\
             shutil.copytree(lib, lib + '.new')\n\
             open(lib + '.new/kubelet/config.yaml', 'w').write(sys.argv[2])\n\
             os.rename(lib, lib + '.old')\n\
             os.rename(lib + '.new/', lib + '/')",
            &[n.path("var/lib").as_os_str(), OsStr::new(&false_text())],
        )
    });
    assert_eq!(trigger_op(&v), "rename");
}

/// renameat2(RENAME_EXCHANGE) of the config's directory with a prepared one.
#[test]
fn parent_directory_exchanged() {
    let (_serial, node) = serial_node();
    let other = node.path("var/lib/kubelet.prepared");
    fs::create_dir(&other).unwrap();
    fs::write(other.join("config.yaml"), false_text()).unwrap();
    caught("dirxchg", &node, |n| {
        python(
            "import sys, ctypes, os\n\
             libc = ctypes.CDLL(None, use_errno=True)\n\
             r = libc.renameat2(-100, sys.argv[1].encode(), -100, sys.argv[2].encode(), 2)\n\
             assert r == 0, os.strerror(ctypes.get_errno())",
            &[other.as_os_str(), n.path("var/lib/kubelet").as_os_str()],
        )
    });
}

/// mmap(MAP_SHARED) of the config, close(2) of its fd, then a write through the mapping while
/// the writer lives on: no syscall touches the file after the close.
#[test]
fn shared_mapping_written_after_close() {
    let (_serial, node) = serial_node();
    let off = true_offset(&node);
    let mut child = None;
    caught("mmap", &node, |n| {
        // "true\n" becomes "false": same length.
        // libc's mmap through ctypes: Python's mmap module would keep a dup of the fd.
        let c = python_living_on(
            &format!(
                "{PY_MAP_SHARED}\
             assert not [f for f in os.listdir('/proc/self/fd') if os.path.realpath('/proc/self/fd/' + f) == os.path.realpath(sys.argv[1])]\n\
             time.sleep(0.5)\n\
             ctypes.memmove(p + int(sys.argv[2]), b'false', 5)"
            ),
            &[n.config().as_os_str(), OsStr::new(&off.to_string())],
        );
        let pid = c.id();
        child = Some(c);
        pid
    });
    let mut c = child.unwrap();
    let _ = c.kill();
    let _ = c.wait();
}

/// open_by_handle_at(2) for writing: the file is opened with no path at all.
#[test]
fn open_by_handle_at() {
    let (_serial, node) = serial_node();
    caught("handle", &node, |n| {
        python(
            "import sys, os, ctypes\n\
             libc = ctypes.CDLL(None, use_errno=True)\n\
             buf = ctypes.create_string_buffer(8 + 128)\n\
             ctypes.c_uint.from_buffer(buf, 0).value = 128\n\
             mount_id = ctypes.c_int()\n\
             r = libc.name_to_handle_at(-100, sys.argv[1].encode(), buf, ctypes.byref(mount_id), 0)\n\
             assert r == 0, os.strerror(ctypes.get_errno())\n\
             mfd = os.open(os.path.dirname(sys.argv[1]), os.O_RDONLY | os.O_DIRECTORY)\n\
             fd = libc.open_by_handle_at(mfd, buf, os.O_WRONLY | os.O_TRUNC)\n\
             assert fd >= 0, os.strerror(ctypes.get_errno())\n\
             os.write(fd, sys.argv[2].encode()); os.close(fd)",
            &[n.config().as_os_str(), OsStr::new(&false_text())],
        )
    });
}

/// A small io_uring client on the raw syscalls (liburing may be absent): `write PATH TEXT`
/// opens PATH with IORING_OP_OPENAT (O_WRONLY|O_TRUNC), writes TEXT with IORING_OP_WRITE and
/// closes it with IORING_OP_CLOSE; `rename OLD NEW` is IORING_OP_RENAMEAT; `hidden PATH TEXT`
/// does the open into a fixed-file slot and the write through it, both with
/// IOSQE_CQE_SKIP_SUCCESS (no completion posted, no fd in the process's table), linked to a
/// NOP that is waited for.
const URING_C: &str = r#"
#include <fcntl.h>
#include <linux/io_uring.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

struct ring {
    int fd;
    unsigned *sq_tail, *sq_mask, *sq_array, *cq_head, *cq_tail, *cq_mask;
    struct io_uring_sqe *sqes;
    struct io_uring_cqe *cqes;
};

static void die(const char *what) { perror(what); exit(2); }

static void ring_init(struct ring *r) {
    struct io_uring_params p;
    memset(&p, 0, sizeof p);
    r->fd = syscall(__NR_io_uring_setup, 8, &p);
    if (r->fd < 0) die("io_uring_setup");
    size_t sq_sz = p.sq_off.array + p.sq_entries * sizeof(unsigned);
    size_t cq_sz = p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe);
    if (p.features & IORING_FEAT_SINGLE_MMAP) sq_sz = cq_sz = sq_sz > cq_sz ? sq_sz : cq_sz;
    char *sq = mmap(0, sq_sz, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, r->fd,
                    IORING_OFF_SQ_RING);
    if (sq == MAP_FAILED) die("mmap sq");
    char *cq = sq;
    if (!(p.features & IORING_FEAT_SINGLE_MMAP)) {
        cq = mmap(0, cq_sz, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, r->fd,
                  IORING_OFF_CQ_RING);
        if (cq == MAP_FAILED) die("mmap cq");
    }
    r->sqes = mmap(0, p.sq_entries * sizeof(struct io_uring_sqe), PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_POPULATE, r->fd, IORING_OFF_SQES);
    if (r->sqes == MAP_FAILED) die("mmap sqes");
    r->sq_tail = (unsigned *)(sq + p.sq_off.tail);
    r->sq_mask = (unsigned *)(sq + p.sq_off.ring_mask);
    r->sq_array = (unsigned *)(sq + p.sq_off.array);
    r->cq_head = (unsigned *)(cq + p.cq_off.head);
    r->cq_tail = (unsigned *)(cq + p.cq_off.tail);
    r->cq_mask = (unsigned *)(cq + p.cq_off.ring_mask);
    r->cqes = (struct io_uring_cqe *)(cq + p.cq_off.cqes);
}

/* Submits one request and waits for its completion; returns its result. */
static int run(struct ring *r, const struct io_uring_sqe *req) {
    unsigned tail = *r->sq_tail, idx = tail & *r->sq_mask;
    r->sqes[idx] = *req;
    r->sq_array[idx] = idx;
    __atomic_store_n(r->sq_tail, tail + 1, __ATOMIC_RELEASE);
    if (syscall(__NR_io_uring_enter, r->fd, 1, 1, IORING_ENTER_GETEVENTS, NULL, 0) < 0)
        die("io_uring_enter");
    unsigned head = __atomic_load_n(r->cq_head, __ATOMIC_ACQUIRE);
    if (head == __atomic_load_n(r->cq_tail, __ATOMIC_ACQUIRE)) {
        fprintf(stderr, "no completion\n");
        exit(2);
    }
    int res = r->cqes[head & *r->cq_mask].res;
    __atomic_store_n(r->cq_head, head + 1, __ATOMIC_RELEASE);
    return res;
}

int main(int argc, char **argv) {
    if (argc != 4) { fprintf(stderr, "usage: uring write PATH TEXT | rename OLD NEW\n"); return 2; }
    struct ring r;
    ring_init(&r);
    struct io_uring_sqe s;
    memset(&s, 0, sizeof s);
    if (!strcmp(argv[1], "write")) {
        s.opcode = IORING_OP_OPENAT;
        s.fd = AT_FDCWD;
        s.addr = (unsigned long)argv[2];
        s.open_flags = O_WRONLY | O_TRUNC;
        int fd = run(&r, &s);
        if (fd < 0) { fprintf(stderr, "openat: %s\n", strerror(-fd)); return 1; }
        memset(&s, 0, sizeof s);
        s.opcode = IORING_OP_WRITE;
        s.fd = fd;
        s.addr = (unsigned long)argv[3];
        s.len = strlen(argv[3]);
        int n = run(&r, &s);
        if (n != (int)strlen(argv[3])) { fprintf(stderr, "write: %d\n", n); return 1; }
        memset(&s, 0, sizeof s);
        s.opcode = IORING_OP_CLOSE;
        s.fd = fd;
        int c = run(&r, &s);
        if (c < 0) { fprintf(stderr, "close: %s\n", strerror(-c)); return 1; }
    } else if (!strcmp(argv[1], "hidden")) {
        int slots[1] = {-1};
        if (syscall(__NR_io_uring_register, r.fd, IORING_REGISTER_FILES, slots, 1) < 0)
            die("io_uring_register");
        struct io_uring_sqe q[3];
        memset(q, 0, sizeof q);
        q[0].opcode = IORING_OP_OPENAT;
        q[0].fd = AT_FDCWD;
        q[0].addr = (unsigned long)argv[2];
        q[0].open_flags = O_WRONLY | O_TRUNC;
        q[0].file_index = 1; /* slot 0 */
        q[0].flags = IOSQE_IO_LINK | IOSQE_CQE_SKIP_SUCCESS;
        q[1].opcode = IORING_OP_WRITE;
        q[1].fd = 0; /* slot 0 */
        q[1].addr = (unsigned long)argv[3];
        q[1].len = strlen(argv[3]);
        q[1].flags = IOSQE_FIXED_FILE | IOSQE_IO_LINK | IOSQE_CQE_SKIP_SUCCESS;
        q[2].opcode = IORING_OP_NOP;
        unsigned tail = *r.sq_tail;
        for (int i = 0; i < 3; i++) {
            unsigned idx = (tail + i) & *r.sq_mask;
            r.sqes[idx] = q[i];
            r.sq_array[idx] = idx;
        }
        __atomic_store_n(r.sq_tail, tail + 3, __ATOMIC_RELEASE);
        if (syscall(__NR_io_uring_enter, r.fd, 3, 1, IORING_ENTER_GETEVENTS, NULL, 0) < 0)
            die("io_uring_enter");
        unsigned head = __atomic_load_n(r.cq_head, __ATOMIC_ACQUIRE);
        struct io_uring_cqe *c = &r.cqes[head & *r.cq_mask];
        if (c->res < 0) { fprintf(stderr, "a linked request failed: %s\n", strerror(-c->res)); return 1; }
    } else if (!strcmp(argv[1], "rename")) {
        s.opcode = IORING_OP_RENAMEAT;
        s.fd = AT_FDCWD;
        s.addr = (unsigned long)argv[2];
        s.len = AT_FDCWD;
        s.addr2 = (unsigned long)argv[3];
        int res = run(&r, &s);
        if (res < 0) { fprintf(stderr, "renameat: %s\n", strerror(-res)); return 1; }
    } else {
        return 2;
    }
    return 0;
}
"#;

/// The io_uring client, built once per test binary with the machine's gcc.
fn uring_exe() -> &'static Path {
    static EXE: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    let (_, exe) = EXE.get_or_init(|| {
        let dir = tempfile::Builder::new()
            .prefix("kd-uring-")
            .tempdir()
            .unwrap();
        let src = dir.path().join("uring.c");
        fs::write(&src, URING_C).unwrap();
        let exe = dir.path().join("uring");
        let out = Command::new("gcc")
            .args(["-O2", "-Wall", "-o"])
            .arg(&exe)
            .arg(&src)
            .output()
            .expect("running gcc (the io_uring tests build their client with it)");
        assert!(
            out.status.success(),
            "gcc failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        (dir, exe)
    });
    exe
}

#[test]
fn io_uring_open_and_write() {
    let (_serial, node) = serial_node();
    let exe = uring_exe();
    caught("uringwrite", &node, |n| uring_writes(exe, "write", n));
}

/// Open into a fixed-file slot and write through it, with no completion posted for either.
#[test]
fn io_uring_hidden_open_and_write() {
    let (_serial, node) = serial_node();
    let exe = uring_exe();
    caught("uringhide", &node, |n| uring_writes(exe, "hidden", n));
}

#[test]
fn io_uring_rename_over_the_config() {
    let (_serial, node) = serial_node();
    let exe = uring_exe();
    let new = node.path("var/lib/kubelet/.staged");
    fs::write(&new, false_text()).unwrap();
    // A bystander removing directories named like one on the config's path, by a relative
    // name, from processes gone at once (as a test's temporary node being removed does):
    // the kernel's record of the directory they were given against places them elsewhere,
    // so the io_uring rename (whose own record carries no file) is never named for them.
    let elsewhere = tempfile::tempdir().unwrap();
    let _bystander = kubelet_drift_tests::KillOnDrop(
        kubelet_drift_tests::sh(
            elsewhere.path(),
            "while :; do mkdir kubelet; rmdir kubelet; sleep 0.001; done",
        )
        .spawn()
        .unwrap(),
    );
    std::thread::sleep(Duration::from_millis(100));
    caught("uringmv", &node, |n| {
        run(Command::new(exe).arg("rename").arg(&new).arg(n.config()))
    });
}

/// Unmounts (lazily) what a test mounted, even when it fails.
struct Unmount(PathBuf);

impl Drop for Unmount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// `mount --bind` of another file over the config: the config's inode, name and directory
/// are untouched; the kubelet reads the other file.
#[test]
fn bind_mount_over_the_config() {
    let (_serial, node) = serial_node();
    let other = node.path("false.yaml");
    fs::write(&other, false_text()).unwrap();
    let _guard = Unmount(node.config());
    let v = caught("bindfile", &node, |n| {
        run(Command::new("mount")
            .arg("--bind")
            .arg(&other)
            .arg(n.config()))
    });
    assert_eq!(trigger_op(&v), "mount");
}

/// `mount --bind` of a prepared directory over the config's parent directory.
#[test]
fn bind_mount_over_a_parent_directory() {
    let (_serial, node) = serial_node();
    let other = node.path("prepared");
    fs::create_dir(&other).unwrap();
    fs::write(other.join("config.yaml"), false_text()).unwrap();
    let target = node.path("var/lib/kubelet");
    let _guard = Unmount(target.clone());
    caught("binddir", &node, |_| {
        run(Command::new("mount").arg("--bind").arg(&other).arg(&target))
    });
}

/// A python3 writer started before the daemon: it runs `prepare` (which opens or maps the
/// config), says "ready", waits for a line on stdin, runs `change`, says "done" and lives on.
struct EarlyWriter(Child);

impl EarlyWriter {
    fn start(prepare: &str, change: &str, args: &[&OsStr]) -> EarlyWriter {
        let mut c = Command::new("python3")
            .arg("-c")
            .arg(format!(
                "{prepare}\nprint('ready', flush=True)\nimport sys, time\nsys.stdin.readline()\n\
                 {change}\nprint('done', flush=True)\ntime.sleep(10)"
            ))
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut out = std::io::BufReader::new(c.stdout.take().unwrap());
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        assert_eq!(line, "ready\n");
        c.stdout = Some(out.into_inner());
        EarlyWriter(c)
    }

    /// Lets it make its change; returns its pid once the change is made.
    fn go(&mut self) -> u32 {
        use std::io::Write;
        self.0.stdin.as_mut().unwrap().write_all(b"go\n").unwrap();
        let mut line = String::new();
        std::io::BufReader::new(self.0.stdout.as_mut().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line, "done\n");
        self.0.id()
    }
}

impl Drop for EarlyWriter {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// An fd opened for writing before the monitor started, written after: its open was never
/// seen, so the daemon finds it by its scan at start and follows it.
#[test]
fn fd_opened_before_the_monitor_started() {
    let (_serial, node) = serial_node();
    let off = true_offset(&node);
    let mut w = EarlyWriter::start(
        "import sys, os\nfd = os.open(sys.argv[1], os.O_RDWR)",
        "os.pwrite(fd, b'false', int(sys.argv[2]))",
        &[node.config().as_os_str(), OsStr::new(&off.to_string())],
    );
    caught("earlyfd", &node, |_| w.go());
}

/// A shared mapping made (and its fd closed) before the monitor started, written after.
#[test]
fn mapping_made_before_the_monitor_started() {
    let (_serial, node) = serial_node();
    let off = true_offset(&node);
    let mut w = EarlyWriter::start(
        PY_MAP_SHARED,
        "ctypes.memmove(p + int(sys.argv[2]), b'false', 5)",
        &[node.config().as_os_str(), OsStr::new(&off.to_string())],
    );
    caught("earlymap", &node, |_| w.go());
}

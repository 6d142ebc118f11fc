//! Ways of changing the kubelet's config file that a path-matching monitor could miss. Each
//! must produce a drift_detected by the event path: the daemon runs with `--rescan-interval
//! 1h`, and the report must arrive within 2 s with a file event (not a rescan) as its trigger.
//! Run with `--nocapture` to see each one's latency.

use kubelet_drift_tests::daemon as harness;

use std::{ffi::OsStr, fs, os::unix::fs::symlink, process::Command, time::Duration};

use harness::*;
use serde_json::Value;

const DEADLINE: Duration = Duration::from_secs(2);

/// Runs [`caught_by_event`] and asserts that the report names the process that made the
/// change (not some other process on the machine whose event caused a re-evaluation).
fn evade(tag: &str, node: &Node, act: impl FnOnce(&Node) -> u32) -> Value {
    let (v, writer) = caught_by_event("evasion", tag, node, DEADLINE, act);
    assert_eq!(
        actor_pid(&v),
        Some(writer as u64),
        "{tag}: not attributed to the writer: {v}"
    );
    v
}

fn false_text() -> String {
    config_text(false)
}

fn py(code: &str, args: &[&OsStr]) -> u32 {
    python(code, args)
}

/// python3 runs `code` with the node's config and the false text as its arguments.
fn py_false(code: &str, n: &Node) -> u32 {
    py(code, &[n.config().as_os_str(), OsStr::new(&false_text())])
}

/// Root required, and a fresh node.
fn root_node() -> Node {
    require_root();
    Node::new()
}

#[test]
fn rename_over_the_config() {
    let node = root_node();
    let v = evade("rename", &node, |n| {
        let tmp = n.path("var/lib/kubelet/.config.yaml.new");
        py(
            "import sys, os; open(sys.argv[1], 'w').write(sys.argv[3]); os.rename(sys.argv[1], sys.argv[2])",
            &[
                tmp.as_os_str(),
                n.config().as_os_str(),
                OsStr::new(&false_text()),
            ],
        )
    });
    assert_eq!(trigger_op(&v), "rename");
}

#[test]
fn sed_in_place() {
    let node = root_node();
    let v = evade("sed", &node, |n| sed(TO_FALSE, &n.config()));
    assert_eq!(actor_name(&v), "sed");
}

#[test]
fn vim_backup_then_rename_write() {
    let node = root_node();
    let v = evade("vim", &node, |n| {
        // backupcopy=no: vim renames the original to the backup and writes a new file.
        run(Command::new("vi")
            .args(["-u", "NONE", "-i", "NONE", "-e", "-s"])
            .args(["-c", "set backup backupcopy=no backupdir=."])
            .arg("-c")
            .arg(format!("%s/{TRUE_LINE}/{FALSE_LINE}/"))
            .args(["-c", "wq"])
            .arg(n.config())
            .current_dir(n.path("var/lib/kubelet")))
    });
    assert!(actor_name(&v).starts_with("vi"), "{v}");
}

#[test]
fn symlink_swapped_at_the_config_path() {
    let node = root_node();
    let dir = node.path("var/lib/kubelet");
    fs::rename(node.config(), dir.join("real.yaml")).unwrap();
    fs::write(dir.join("other.yaml"), false_text()).unwrap();
    symlink("real.yaml", node.config()).unwrap();
    evade("symlink", &node, |n| {
        run(Command::new("ln")
            .args(["-sfn", "other.yaml", "config.yaml"])
            .current_dir(n.path("var/lib/kubelet")))
    });
}

#[test]
fn hardlink_written_through_its_other_name() {
    let node = root_node();
    let alias = node.path("alias.yaml");
    fs::hard_link(node.config(), &alias).unwrap();
    evade("hardlink", &node, |_| {
        py(
            "import sys; open(sys.argv[1], 'w').write(sys.argv[2])",
            &[alias.as_os_str(), OsStr::new(&false_text())],
        )
    });
}

#[test]
fn relative_path_with_a_dirfd() {
    let node = root_node();
    evade("dirfd", &node, |n| {
        py(
            "import sys, os\n\
             d = os.open(sys.argv[1], os.O_RDONLY | os.O_DIRECTORY)\n\
             fd = os.open('config.yaml', os.O_WRONLY | os.O_TRUNC, dir_fd=d)\n\
             os.write(fd, sys.argv[2].encode()); os.close(fd)",
            &[
                n.path("var/lib/kubelet").as_os_str(),
                OsStr::new(&false_text()),
            ],
        )
    });
}

#[test]
fn openat2() {
    let node = root_node();
    evade("openat2", &node, |n| {
        py_false(
            "import sys, os, ctypes\n\
             class how(ctypes.Structure):\n\
             \x20   _fields_ = [('flags', ctypes.c_uint64), ('mode', ctypes.c_uint64), ('resolve', ctypes.c_uint64)]\n\
             libc = ctypes.CDLL(None, use_errno=True)\n\
             h = how(os.O_WRONLY | os.O_TRUNC, 0, 0)\n\
             fd = libc.syscall(437, -100, sys.argv[1].encode(), ctypes.byref(h), ctypes.sizeof(h))\n\
             assert fd >= 0, ctypes.get_errno()\n\
             os.write(fd, sys.argv[2].encode()); os.close(fd)",
            n,
        )
    });
}

#[test]
fn o_trunc_then_write() {
    let node = root_node();
    evade("otrunc", &node, |n| {
        py_false(
            "import sys, os, time\n\
             fd = os.open(sys.argv[1], os.O_WRONLY | os.O_TRUNC)\n\
             time.sleep(0.05)\n\
             os.write(fd, sys.argv[2].encode()); os.close(fd)",
            n,
        )
    });
}

/// An fd opened O_RDWR after the daemon started, written with pwrite well after the open, and
/// kept open: the write comes after the open's grace period and there is no close to wait for.
#[test]
fn pwrite_into_an_fd_held_open() {
    let node = root_node();
    let text = fs::read_to_string(node.config()).unwrap();
    let off = text.find(TRUE_LINE).unwrap() + "makeIPTablesUtilChains: ".len();
    let mut child = None;
    evade("pwrite", &node, |n| {
        // "true\n" becomes "false": same length.
        let c = Command::new("python3")
            .arg("-c")
            .arg(
                "import sys, os, time\n\
                 fd = os.open(sys.argv[1], os.O_RDWR)\n\
                 time.sleep(0.5)\n\
                 os.pwrite(fd, b'false', int(sys.argv[2]))\n\
                 print('written', flush=True)\n\
                 time.sleep(10)",
            )
            .arg(n.config())
            .arg(off.to_string())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child = Some(c);
        // Returns once the write is done.
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(child.as_mut().unwrap().stdout.as_mut().unwrap()),
            &mut line,
        )
        .unwrap();
        assert_eq!(line, "written\n");
        child.as_ref().unwrap().id()
    });
    let mut c = child.unwrap();
    let _ = c.kill();
    let _ = c.wait();
}

#[test]
fn pwrite_then_close() {
    let node = root_node();
    let text = fs::read_to_string(node.config()).unwrap();
    let off = text.find(TRUE_LINE).unwrap() + "makeIPTablesUtilChains: ".len();
    evade("pwriteclose", &node, |n| {
        py(
            "import sys, os\n\
             fd = os.open(sys.argv[1], os.O_RDWR)\n\
             os.pwrite(fd, b'false', int(sys.argv[2])); os.close(fd)",
            &[n.config().as_os_str(), OsStr::new(&off.to_string())],
        )
    });
}

#[test]
fn truncate_by_path() {
    let node = root_node();
    // Duplicate keys: the last wins. Cutting the last line leaves false.
    let keep = false_text().to_string();
    fs::write(node.config(), format!("{keep}{TRUE_LINE}\n")).unwrap();
    let v = evade("truncate", &node, |n| {
        py(
            "import sys, os; os.truncate(sys.argv[1], int(sys.argv[2]))",
            &[n.config().as_os_str(), OsStr::new(&keep.len().to_string())],
        )
    });
    assert_eq!(trigger_op(&v), "truncate");
}

#[test]
fn write_through_proc_self_fd() {
    let node = root_node();
    evade("procfd", &node, |n| {
        py_false(
            "import sys, os\n\
             r = os.open(sys.argv[1], os.O_RDONLY)\n\
             fd = os.open('/proc/self/fd/%d' % r, os.O_WRONLY | os.O_TRUNC)\n\
             os.write(fd, sys.argv[2].encode()); os.close(fd); os.close(r)",
            n,
        )
    });
}

#[test]
fn writer_in_another_mount_namespace() {
    let node = root_node();
    evade("mntns", &node, |n| {
        run(Command::new("unshare")
            .args(["-m", "sh", "-c", "printf '%s' \"$1\" > \"$2\"", "sh"])
            .arg(false_text())
            .arg(n.config()))
    });
}

#[test]
fn path_longer_than_the_kernel_buffer() {
    require_root();
    let node = Node::deep(300);
    assert!(node.config().as_os_str().len() > 300);
    evade("longpath", &node, |n| sed(TO_FALSE, &n.config()));
}

#[test]
fn long_path_written_in_place() {
    require_root();
    let node = Node::deep(300);
    evade("longopen", &node, |n| {
        py_false("import sys; open(sys.argv[1], 'w').write(sys.argv[2])", n)
    });
}

#[test]
fn writer_in_a_chroot() {
    let node = root_node();
    evade("chroot", &node, |n| {
        py(
            "import sys, os\n\
             os.chroot(sys.argv[1]); os.chdir('/')\n\
             open('/var/lib/kubelet/config.yaml', 'w').write(sys.argv[2])",
            &[n.root.as_os_str(), OsStr::new(&false_text())],
        )
    });
}

#[test]
fn renamed_in_a_chroot() {
    let node = root_node();
    evade("chrootmv", &node, |n| {
        py(
            "import sys, os\n\
             os.chroot(sys.argv[1]); os.chdir('/var/lib/kubelet')\n\
             open('new.yaml', 'w').write(sys.argv[2])\n\
             os.rename('new.yaml', 'config.yaml')",
            &[n.root.as_os_str(), OsStr::new(&false_text())],
        )
    });
}

/// A symlink with an unrelated name made to the config while the monitor runs, then written
/// through: the link is a record on a watched name, and from then on every write-intent open
/// is decided by the file it reaches.
#[test]
fn symlink_made_after_start_then_written_through() {
    let node = root_node();
    let link = node.path("innocent-name");
    evade("latesymlink", &node, |n| {
        // The link first (its record alone re-evaluates, and finds nothing changed), then the
        // write by another process.
        run(Command::new("ln").arg("-s").arg(n.config()).arg(&link));
        std::thread::sleep(std::time::Duration::from_millis(300));
        py(
            "import sys; open(sys.argv[1], 'w').write(sys.argv[2])",
            &[link.as_os_str(), OsStr::new(&false_text())],
        )
    });
}

/// Likewise a hard link made while the monitor runs, written at once.
#[test]
fn hardlink_made_after_start_then_written_through() {
    let node = root_node();
    let alias = node.path("innocent-alias");
    evade("latelink", &node, |n| {
        // As for the symlink: the link first (its record re-evaluates, nothing changed), then
        // the write by another process.
        run(Command::new("ln").arg(n.config()).arg(&alias));
        std::thread::sleep(std::time::Duration::from_millis(300));
        py(
            "import sys; open(sys.argv[1], 'w').write(sys.argv[2])",
            &[alias.as_os_str(), OsStr::new(&false_text())],
        )
    });
}

//! What the daemon keeps across evaluations (the assembled `kubelet.service`: unit, drop-ins,
//! environment files) must never hide a change. The assembly is first kept and used (config
//! edits), then a drop-in is changed in ways a kept result could miss: through a shared
//! mapping (no new ctime while the page stays dirty) and by a rewrite of the same size. Each
//! must produce a drift_detected by its event within 2 s, named for the process that made it
//! (the daemon runs with `--rescan-interval 1h`).

use kubelet_drift_tests::daemon as harness;

use std::{ffi::OsStr, fs, time::Duration};

use harness::*;

const DEADLINE: Duration = Duration::from_secs(2);
const CONFIG_ARG: &str = "/var/lib/kubelet/config.yaml";
/// Same length as `config.yaml`'s path: the drop-in keeps its size.
const OTHER_CONFIG: &str = "/var/lib/kubelet/config.falz";

fn serial() -> std::sync::MutexGuard<'static, ()> {
    static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// A node whose drop-in names the config, and a second config (false) of a same-length
/// name beside it; everything settled, so that the daemon keeps its assembly.
fn node() -> (Node, usize) {
    let node = Node::new();
    fs::write(
        node.path(OTHER_CONFIG.trim_start_matches('/')),
        config_text(false),
    )
    .unwrap();
    let text = fs::read_to_string(dropin(&node)).unwrap();
    let off = text
        .find(CONFIG_ARG)
        .expect("the kind drop-in names the config");
    std::thread::sleep(Duration::from_millis(300));
    (node, off)
}

fn dropin(node: &Node) -> std::path::PathBuf {
    node.dropin_dir().join("10-kubeadm.conf")
}

/// Config edits that leave it true: evaluations that keep, then use, the assembly.
fn edits_that_keep_the_assembly(node: &Node) {
    for _ in 0..3 {
        fs::write(node.config(), config_text(true)).unwrap();
        std::thread::sleep(Duration::from_millis(150));
    }
}

/// The drop-in written through a shared mapping, its fd closed first: the file's size, and
/// while the page stays dirty its ctime, do not change.
#[test]
fn dropin_written_through_a_shared_mapping() {
    let _serial = serial();
    require_root();
    let (node, off) = node();
    let mut child = None;
    let (v, writer) = caught_by_event("kept", "mmapdropin", &node, DEADLINE, |n| {
        edits_that_keep_the_assembly(n);
        let c = python_living_on(
            &format!(
                "{PY_MAP_SHARED}\
             time.sleep(0.5)\n\
             ctypes.memmove(p + int(sys.argv[2]), sys.argv[3].encode(), len(sys.argv[3]))"
            ),
            &[
                dropin(n).as_os_str(),
                OsStr::new(&off.to_string()),
                OsStr::new(OTHER_CONFIG),
            ],
        );
        let pid = c.id();
        child = Some(c);
        pid
    });
    assert_named("mmapdropin", &v, writer);
    let mut c = child.unwrap();
    let _ = c.kill();
    let _ = c.wait();
}

/// The drop-in rewritten in place with the same size (pwrite, no truncate): only its mtime
/// and ctime tell.
#[test]
fn dropin_rewritten_with_the_same_size() {
    let _serial = serial();
    require_root();
    let (node, off) = node();
    let (v, writer) = caught_by_event("kept", "pwritedrop", &node, DEADLINE, |n| {
        edits_that_keep_the_assembly(n);
        python(
            "import sys, os\n\
             fd = os.open(sys.argv[1], os.O_WRONLY)\n\
             os.pwrite(fd, sys.argv[3].encode(), int(sys.argv[2]))\n\
             os.close(fd)",
            &[
                dropin(n).as_os_str(),
                OsStr::new(&off.to_string()),
                OsStr::new(OTHER_CONFIG),
            ],
        )
    });
    assert_named("pwritedrop", &v, writer);
}

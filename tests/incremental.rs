//! The watch set is kept by parts, and a path operation reads again only the parts it can
//! change (`monitor/src/watched/parts.rs`). Each path operation that can change the verdict
//! must still be seen by its own record, after earlier path operations were taken
//! incrementally, and named for the process that made it: a rename over config.yaml, a
//! drop-in that appears or disappears, a unit renamed into place, swapped drop-in
//! directories, a directory on the config's path replaced. The daemon runs with
//! `--rescan-interval 1h`: only the event can find it.

use kubelet_drift_tests::daemon as harness;

use std::{ffi::OsStr, fs, time::Duration};

use harness::*;

const DEADLINE: Duration = Duration::from_secs(2);
const EXTRA_FALSE: &str =
    "[Service]\nEnvironment=\"KUBELET_EXTRA_ARGS=--make-iptables-util-chains=false\"\n";
const EXTRA_TRUE: &str =
    "[Service]\nEnvironment=\"KUBELET_EXTRA_ARGS=--make-iptables-util-chains=true\"\n";

fn serial() -> std::sync::MutexGuard<'static, ()> {
    static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// `python3 -c CODE ARGS...` with the node's paths: writes `text` to `tmp`, renames it over
/// `to`, and before that renames unrelated files and rewrites config.yaml (true) by rename
/// a few times, so that the change comes after incremental updates. Returns its pid.
fn renames_then(node: &Node, tmp: &OsStr, to: &OsStr, text: &str) -> u32 {
    python(
        "import sys, os, time\n\
         cfg, true_text, tmp, to, text, other = sys.argv[1:7]\n\
         for i in range(3):\n\
         \x20   open(cfg + '.tmp', 'w').write(true_text)\n\
         \x20   os.rename(cfg + '.tmp', cfg)\n\
         \x20   open(other, 'w').write('x')\n\
         \x20   os.rename(other, other + '.moved')\n\
         \x20   time.sleep(0.1)\n\
         open(tmp, 'w').write(text)\n\
         os.rename(tmp, to)",
        &[
            node.config().as_os_str(),
            OsStr::new(&config_text(true)),
            tmp,
            to,
            OsStr::new(text),
            node.path("var/lib/other").as_os_str(),
        ],
    )
}

#[test]
fn rename_over_config_yaml() {
    let _serial = serial();
    require_root();
    let node = Node::new();
    let (v, w) = caught_by_event("incremental", "renamecfg", &node, DEADLINE, |n| {
        let tmp = n.path("var/lib/kubelet/.config.yaml.new");
        renames_then(
            n,
            tmp.as_os_str(),
            n.config().as_os_str(),
            &config_text(false),
        )
    });
    assert_named("renamecfg", &v, w);
    assert_eq!(trigger_op(&v), "rename", "{v}");
}

#[test]
fn dropin_renamed_in() {
    let _serial = serial();
    require_root();
    let node = Node::new();
    let (v, w) = caught_by_event("incremental", "dropinin", &node, DEADLINE, |n| {
        let tmp = n.path("var/lib/20-x.conf");
        let to = n.dropin_dir().join("20-x.conf");
        renames_then(n, tmp.as_os_str(), to.as_os_str(), EXTRA_FALSE)
    });
    assert_named("dropinin", &v, w);
}

/// A drop-in that set the flag true over a config that says false is removed.
#[test]
fn dropin_removed() {
    let _serial = serial();
    require_root();
    let node = Node::new();
    fs::write(node.config(), config_text(false)).unwrap();
    let fix = node.dropin_dir().join("20-fix.conf");
    fs::write(&fix, EXTRA_TRUE).unwrap();
    let (v, w) = caught_by_event("incremental", "dropinrm", &node, DEADLINE, |n| {
        // Renamed away over a file outside the unit's directories: an unlink of its name.
        let away = n.path("var/lib/20-fix.conf.old");
        python(
            "import sys, os, time\n\
             for i in range(3):\n\
             \x20   open(sys.argv[3], 'w').write('x')\n\
             \x20   os.rename(sys.argv[3], sys.argv[3] + '.moved')\n\
             \x20   time.sleep(0.1)\n\
             os.rename(sys.argv[1], sys.argv[2])",
            &[
                fix.as_os_str(),
                away.as_os_str(),
                n.path("var/lib/other").as_os_str(),
            ],
        )
    });
    assert_named("dropinrm", &v, w);
}

/// A unit of higher priority (/etc over /lib) renamed into place, with the flag false.
#[test]
fn unit_renamed_into_place() {
    let _serial = serial();
    require_root();
    let node = Node::new();
    let unit = fs::read_to_string(node.path("lib/systemd/system/kubelet.service")).unwrap();
    // The kind drop-in replaces ExecStart= and passes $KUBELET_EXTRA_ARGS: set it here.
    let unit = unit.replace("[Service]\n", EXTRA_FALSE);
    assert!(unit.contains("=false"), "the upstream unit has [Service]");
    let (v, w) = caught_by_event("incremental", "unitin", &node, DEADLINE, |n| {
        let tmp = n.path("etc/systemd/system/.kubelet.service.tmp");
        let to = n.path("etc/systemd/system/kubelet.service");
        renames_then(n, tmp.as_os_str(), to.as_os_str(), &unit)
    });
    assert_named("unitin", &v, w);
}

/// The drop-in directory swapped for another holding one more drop-in (two renames).
#[test]
fn dropin_directories_swapped() {
    let _serial = serial();
    require_root();
    let node = Node::new();
    let other = node.path("etc/systemd/system/kubelet.new");
    fs::create_dir_all(&other).unwrap();
    fs::copy(
        node.dropin_dir().join("10-kubeadm.conf"),
        other.join("10-kubeadm.conf"),
    )
    .unwrap();
    fs::write(other.join("20-x.conf"), EXTRA_FALSE).unwrap();
    let (v, w) = caught_by_event("incremental", "dirswap", &node, DEADLINE, |n| {
        let old = n.path("etc/systemd/system/kubelet.old");
        python(
            "import sys, os, time\n\
             d, old, new = sys.argv[1:4]\n\
             for i in range(3):\n\
             \x20   open(sys.argv[4], 'w').write('x')\n\
             \x20   os.rename(sys.argv[4], sys.argv[4] + '.moved')\n\
             \x20   time.sleep(0.1)\n\
             os.rename(d, old)\n\
             os.rename(new, d)",
            &[
                n.dropin_dir().as_os_str(),
                old.as_os_str(),
                other.as_os_str(),
                n.path("var/lib/other").as_os_str(),
            ],
        )
    });
    assert_named("dirswap", &v, w);
}

/// /var/lib/kubelet replaced by a directory whose config.yaml says false.
#[test]
fn config_directory_replaced() {
    let _serial = serial();
    require_root();
    let node = Node::new();
    let other = node.path("var/lib/kubelet.new");
    fs::create_dir_all(&other).unwrap();
    fs::write(other.join("config.yaml"), config_text(false)).unwrap();
    let (v, w) = caught_by_event("incremental", "cfgdir", &node, DEADLINE, |n| {
        let dir = n.path("var/lib/kubelet");
        let old = n.path("var/lib/kubelet.old");
        python(
            "import sys, os, time\n\
             d, old, new, cfg = sys.argv[1:5]\n\
             for i in range(3):\n\
             \x20   open(cfg + '.tmp', 'w').write(sys.argv[5])\n\
             \x20   os.rename(cfg + '.tmp', cfg)\n\
             \x20   time.sleep(0.1)\n\
             os.rename(d, old)\n\
             os.rename(new, d)",
            &[
                dir.as_os_str(),
                old.as_os_str(),
                other.as_os_str(),
                n.config().as_os_str(),
                OsStr::new(&config_text(true)),
            ],
        )
    });
    assert_named("cfgdir", &v, w);
}

//! The daemon's kept evaluation (a [`RootFs::keeping`] root: the assembled unit kept across
//! evaluations, checked against every `lstat` its reading made) against a fresh one, after
//! each kind of change a node's files see: a config edit, a same-size rewrite with its mtime
//! set back, a new and a removed drop-in, a symlink retargeted, the unit and an environment
//! file changed, the environment file removed and written anew, entries added and removed
//! beside the names the unit looks for. Each change is evaluated at once (inside the settle window, where nothing
//! may be kept) and again once it settled (twice: the second from what the first kept), and
//! every result must equal what a root that keeps nothing says. Random sequences of the same
//! changes follow, as a property. The verdict each change leads to is checked too, so a test
//! that compared two stale results would fail.

use std::{
    fs,
    os::unix::fs::symlink,
    path::{Path, PathBuf},
    time::{Duration, SystemTime},
};

use proptest::prelude::*;

use super::{distro, fscache::SETTLE, node::after_restart_for_unit, rootfs::RootFs};
use crate::finding::{Benchmark, Finding, Status};

const UNIT: &str =
    "[Unit]\nDescription=kubelet\n[Service]\nExecStart=/usr/bin/kubelet\nRestart=always\n";
const DROPIN: &str = "[Service]\n\
Environment=\"KUBELET_CONFIG_ARGS=--config=/var/lib/kubelet/config.yaml\"\n\
EnvironmentFile=-/var/lib/kubelet/kubeadm-flags.env\n\
ExecStart=\n\
ExecStart=/usr/bin/kubelet $KUBELET_CONFIG_ARGS $KUBELET_KUBEADM_ARGS $KUBELET_EXTRA_ARGS\n";
const DROPIN_DIR: &str = "etc/systemd/system/kubelet.service.d";

fn config(v: &str) -> String {
    format!(
        "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n\
         makeIPTablesUtilChains: {v}\n"
    )
}

/// `KUBELET_EXTRA_ARGS` set to the flag with `v` (`"true "` and `"false"` have one size).
fn extra(v: &str) -> String {
    format!("[Service]\nEnvironment=\"KUBELET_EXTRA_ARGS=--make-iptables-util-chains={v}\"\n")
}

/// The environment file: the flag with `true ` or `false`, or (`None`) another flag of the
/// same length, so that every version of it has one size.
fn env_file(v: Option<bool>) -> String {
    let flag = match v {
        Some(true) => "--make-iptables-util-chains=true ",
        Some(false) => "--make-iptables-util-chains=false",
        None => "--hostname-override=nodeaaaaaaaaa",
    };
    format!("KUBELET_KUBEADM_ARGS=\"{flag}\"\n")
}

struct Node {
    _dir: tempfile::TempDir,
    root: PathBuf,
    kept: RootFs,
}

impl Node {
    fn new() -> Node {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        let n = Node {
            kept: RootFs::new(&root).keeping(),
            root,
            _dir: dir,
        };
        n.put("lib/systemd/system/kubelet.service", UNIT);
        n.put(&format!("{DROPIN_DIR}/10-kubeadm.conf"), DROPIN);
        n.put("var/lib/kubelet/config.yaml", &config("true"));
        n.put("var/lib/kubelet/kubeadm-flags.env", &env_file(None));
        n.put("opt/a.conf", &extra("true "));
        n.put("opt/b.conf", &extra("false"));
        n
    }

    fn path(&self, p: &str) -> PathBuf {
        self.root.join(p)
    }

    fn put(&self, p: &str, text: &str) {
        let p = self.path(p);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, text).unwrap();
    }

    /// Rewrites `p` in place (O_TRUNC) with `text` of the same size, its mtime set back to
    /// what it was: only ctime (which user space cannot set) tells.
    fn same_size_same_mtime(&self, p: &str, text: &str) {
        let p = self.path(p);
        let before = fs::metadata(&p).unwrap();
        assert_eq!(before.len(), text.len() as u64, "{}", p.display());
        fs::write(&p, text).unwrap();
        let f = fs::File::options().write(true).open(&p).unwrap();
        f.set_modified(before.modified().unwrap()).unwrap();
        drop(f);
        assert_eq!(
            fs::metadata(&p).unwrap().modified().unwrap(),
            before.modified().unwrap()
        );
    }

    /// `ln -sfn`: a new symlink renamed over the old name.
    fn link(&self, name: &str, target: &str) {
        let tmp = self.path(&format!("{DROPIN_DIR}/.tmp-link"));
        let _ = fs::remove_file(&tmp);
        // Relative: an absolute target is read inside the node's root.
        symlink(Path::new("../../../..").join(target), &tmp).unwrap();
        fs::rename(&tmp, self.path(&format!("{DROPIN_DIR}/{name}"))).unwrap();
    }

    fn evaluate(&self, fs: &RootFs) -> Finding {
        let detection = distro::detect(&RootFs::new(&self.root), &[]);
        after_restart_for_unit(fs, "kubelet.service", &[], Benchmark::Cis16, &detection)
    }

    /// The kept evaluation equals a fresh one now, and its verdict is `want`.
    fn agree(&self, want: Status, what: &str) {
        let fresh = self.evaluate(&RootFs::new(&self.root));
        let kept = self.evaluate(&self.kept);
        assert_eq!(
            kept, fresh,
            "{what}: the kept evaluation differs from a fresh one"
        );
        assert_eq!(fresh.status, want, "{what}: {}", fresh.reason);
    }

    /// [`Node::agree`] at once, then once the change settled, twice (the second evaluation
    /// uses what the first kept).
    fn agree_settled(&self, want: Status, what: &str) {
        self.agree(want, &format!("{what}, at once"));
        settle();
        self.agree(want, &format!("{what}, settled"));
        // What the comparisons are worth: the assembly is kept now, and the next
        // evaluation uses it.
        assert!(
            self.unit_kept(),
            "{what}: the settled assembly was not kept"
        );
        self.agree(want, &format!("{what}, settled and kept"));
    }

    fn unit_kept(&self) -> bool {
        type Kept = Result<super::systemd::AssembledUnit, super::systemd::UnitError>;
        self.kept
            .snapshot()
            .kept::<Kept>("systemd unit kubelet.service")
            .is_some()
    }
}

fn settle() {
    std::thread::sleep(SETTLE * 2 + Duration::from_millis(10));
}

/// One change of the node's files, and the verdict after it.
#[derive(Clone, Copy, Debug)]
enum Change {
    ConfigFalse,
    ConfigTrue,
    /// `true ` / `false` rewritten in place, same size, mtime set back.
    ConfigSameSize(bool),
    DropInAdded(bool),
    DropInRemoved,
    /// A drop-in symlink to `opt/a.conf` (true) or `opt/b.conf` (false), retargeted.
    LinkTo(bool),
    LinkRemoved,
    /// The environment file rewritten with the same size and mtime.
    EnvSameSize(Option<bool>),
    /// The unit rewritten with the same size and mtime (its description): the verdict stays,
    /// the unit must be assembled again.
    UnitTouched,
    /// The environment file removed (a name the unit looks for goes missing).
    EnvRemoved,
    /// The environment file written anew (a missing name appears).
    EnvPut(Option<bool>),
    /// Unrelated entries added (or removed) beside the names the unit looks for, in the
    /// directories only walked through: their keys change, nothing read does.
    Beside,
}

impl Change {
    fn apply(self, n: &Node) {
        match self {
            Change::ConfigFalse => n.put("var/lib/kubelet/config.yaml", &config("false")),
            Change::ConfigTrue => n.put("var/lib/kubelet/config.yaml", &config("true")),
            Change::ConfigSameSize(v) => n.same_size_same_mtime(
                "var/lib/kubelet/config.yaml",
                &config(if v { "true " } else { "false" }),
            ),
            Change::DropInAdded(v) => n.put(
                &format!("{DROPIN_DIR}/20-extra.conf"),
                &extra(if v { "true " } else { "false" }),
            ),
            Change::DropInRemoved => {
                let _ = fs::remove_file(n.path(&format!("{DROPIN_DIR}/20-extra.conf")));
            }
            Change::LinkTo(v) => {
                n.link("30-link.conf", if v { "opt/a.conf" } else { "opt/b.conf" })
            }
            Change::LinkRemoved => {
                let _ = fs::remove_file(n.path(&format!("{DROPIN_DIR}/30-link.conf")));
            }
            Change::EnvSameSize(v) => {
                n.same_size_same_mtime("var/lib/kubelet/kubeadm-flags.env", &env_file(v))
            }
            Change::UnitTouched => {
                let p = "lib/systemd/system/kubelet.service";
                let text = fs::read_to_string(n.path(p)).unwrap();
                let other = if text.contains("Description=kubelet\n") {
                    text.replace("Description=kubelet\n", "Description=kubeleT\n")
                } else {
                    text.replace("Description=kubeleT\n", "Description=kubelet\n")
                };
                n.same_size_same_mtime(p, &other);
            }
            Change::EnvRemoved => {
                let _ = fs::remove_file(n.path("var/lib/kubelet/kubeadm-flags.env"));
            }
            Change::EnvPut(v) => n.put("var/lib/kubelet/kubeadm-flags.env", &env_file(v)),
            Change::Beside => {
                for p in [
                    "var/lib/kubelet/pod-state",
                    "etc/systemd/system/other.service",
                ] {
                    if fs::remove_file(n.path(p)).is_err() {
                        n.put(p, "x\n");
                    }
                }
            }
        }
    }
}

/// The verdict of the node's files as they are, by the kubelet's rules: the config file,
/// then the flags on top (the environment file's, then the drop-ins' in name order).
fn expected(n: &Node) -> Status {
    let read = |p: &str| fs::read_to_string(n.path(p)).ok();
    let says = |text: Option<String>| -> Option<bool> {
        let t = text?;
        if t.contains("=false") || t.contains(": false") {
            Some(false)
        } else if t.contains("=true") || t.contains(": true") {
            Some(true)
        } else {
            None
        }
    };
    let mut value = says(read("var/lib/kubelet/config.yaml")).unwrap_or(true);
    // Flags win over the file; of the flags, the last one on the command line:
    // $KUBELET_KUBEADM_ARGS comes before $KUBELET_EXTRA_ARGS, whose last definition (the
    // drop-ins in name order: 20-extra, then 30-link) wins.
    if let Some(v) = says(read("var/lib/kubelet/kubeadm-flags.env")) {
        value = v;
    }
    let extra = [
        format!("{DROPIN_DIR}/30-link.conf"),
        format!("{DROPIN_DIR}/20-extra.conf"),
    ]
    .into_iter()
    .find_map(|p| read(&p));
    if let Some(v) = says(extra) {
        value = v;
    }
    if value { Status::Pass } else { Status::Fail }
}

/// Each kind of change alone, from a node whose unit is kept.
#[test]
fn a_kept_evaluation_equals_a_fresh_one_after_each_kind_of_change() {
    let n = Node::new();
    n.agree_settled(Status::Pass, "start");
    let table = [
        (Change::ConfigFalse, Status::Fail),
        (Change::ConfigSameSize(true), Status::Pass),
        (Change::ConfigSameSize(false), Status::Fail),
        (Change::ConfigTrue, Status::Pass),
        (Change::DropInAdded(false), Status::Fail),
        (Change::DropInRemoved, Status::Pass),
        (Change::LinkTo(true), Status::Pass),
        (Change::LinkTo(false), Status::Fail),
        (Change::LinkTo(true), Status::Pass),
        (Change::LinkRemoved, Status::Pass),
        (Change::EnvSameSize(Some(false)), Status::Fail),
        (Change::UnitTouched, Status::Fail),
        (Change::EnvSameSize(Some(true)), Status::Pass),
        (Change::UnitTouched, Status::Pass),
        (Change::ConfigFalse, Status::Pass),
        (Change::EnvSameSize(None), Status::Fail),
        (Change::EnvRemoved, Status::Fail),
        (Change::Beside, Status::Fail),
        (Change::EnvPut(Some(true)), Status::Pass),
        (Change::EnvRemoved, Status::Fail),
        (Change::Beside, Status::Fail),
        (Change::ConfigTrue, Status::Pass),
        (Change::EnvPut(Some(false)), Status::Fail),
        (Change::Beside, Status::Fail),
        (Change::EnvRemoved, Status::Pass),
    ];
    for (change, want) in table {
        change.apply(&n);
        assert_eq!(expected(&n), want, "{change:?}: the table's own verdict");
        n.agree_settled(want, &format!("{change:?}"));
    }
}

/// A change that only ctime shows, made after a result was kept: the kept result is checked
/// before every use and never outlives the change, however many evaluations in a row come.
#[test]
fn invalidation_cannot_be_skipped() {
    let n = Node::new();
    n.put("var/lib/kubelet/config.yaml", &config("true "));
    settle();
    for _ in 0..3 {
        n.agree(Status::Pass, "kept");
    }
    assert!(n.unit_kept());
    let start = SystemTime::now();
    Change::ConfigSameSize(false).apply(&n);
    // Right after the change, and after it settled: both see it, every time.
    for i in 0..3 {
        n.agree(Status::Fail, &format!("same-size config, evaluation {i}"));
    }
    settle();
    Change::EnvSameSize(Some(false)).apply(&n);
    Change::ConfigSameSize(true).apply(&n);
    for i in 0..3 {
        n.agree(
            Status::Fail,
            &format!("env file then config, evaluation {i}"),
        );
    }
    assert!(start.elapsed().unwrap() < Duration::from_secs(30));
}

fn change() -> impl Strategy<Value = Change> {
    prop_oneof![
        Just(Change::ConfigFalse),
        Just(Change::ConfigTrue),
        any::<bool>().prop_map(Change::ConfigSameSize),
        any::<bool>().prop_map(Change::DropInAdded),
        Just(Change::DropInRemoved),
        any::<bool>().prop_map(Change::LinkTo),
        Just(Change::LinkRemoved),
        any::<Option<bool>>().prop_map(Change::EnvSameSize),
        Just(Change::UnitTouched),
        Just(Change::EnvRemoved),
        any::<Option<bool>>().prop_map(Change::EnvPut),
        Just(Change::Beside),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 8, ..ProptestConfig::default() })]

    /// Random sequences of changes, each evaluated at once and settled: kept equals fresh,
    /// and both say what the files say.
    #[test]
    fn kept_equals_fresh_over_random_changes(changes in prop::collection::vec((change(), any::<bool>()), 1..6)) {
        let n = Node::new();
        n.agree(Status::Pass, "start");
        for (c, wait) in changes {
            // A config edit written as "true " leaves the same-size rewrite's size: keep the
            // sizes the rewrites need.
            if matches!(c, Change::ConfigSameSize(_))
                && fs::metadata(n.path("var/lib/kubelet/config.yaml")).unwrap().len()
                    != config("false").len() as u64
            {
                continue;
            }
            // A same-size rewrite needs the file there.
            if matches!(c, Change::EnvSameSize(_))
                && !n.path("var/lib/kubelet/kubeadm-flags.env").exists()
            {
                continue;
            }
            c.apply(&n);
            let want = expected(&n);
            if wait {
                n.agree_settled(want, &format!("{c:?}"));
            } else {
                n.agree(want, &format!("{c:?}"));
            }
        }
    }
}

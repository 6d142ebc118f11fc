//! Impostor kubelets: anyone can run a binary named like the kubelet. Such a process is told
//! once (`impostor_kubelet`, with its actor) and never changes a verdict. Run as root.

use kubelet_drift_tests::{KillOnDrop, daemon::*};

use std::{
    fs,
    os::unix::{fs::PermissionsExt, process::CommandExt},
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::Duration,
};

const WAIT: Duration = Duration::from_secs(10);
const NOBODY: u32 = 65534;

/// A copy of the stand-in kubelet named `name`, owned by `nobody`, in a directory `nobody`
/// can enter.
struct UserCopy {
    _dir: tempfile::TempDir,
    exe: PathBuf,
}

impl UserCopy {
    fn new(name: &str) -> UserCopy {
        let dir = tempfile::Builder::new()
            .prefix("kd-imp-")
            .tempdir()
            .unwrap();
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
        let exe = dir.path().join(name);
        fs::copy(standin_exe(), &exe).unwrap();
        fs::set_permissions(&exe, fs::Permissions::from_mode(0o755)).unwrap();
        std::os::unix::fs::chown(&exe, Some(NOBODY), Some(NOBODY)).unwrap();
        UserCopy { _dir: dir, exe }
    }

    /// Runs it as `nobody`.
    fn spawn(&self, args: &[&str]) -> Child {
        kubelet_drift_tests::spawn_retrying_busy(
            Command::new(&self.exe)
                .args(args)
                .uid(NOBODY)
                .gid(NOBODY)
                .current_dir("/")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
        )
        .unwrap()
    }
}

/// A node with no kubelet.service: the after-restart verdict comes from the running
/// kubelets' own command lines.
fn node_without_unit() -> Node {
    let node = Node::new();
    fs::remove_file(node.path("lib/systemd/system/kubelet.service")).unwrap();
    fs::remove_dir_all(node.dropin_dir()).unwrap();
    node
}

/// The impostor (lower pid, uid 65534, a user-owned copy, its own config saying true) is
/// told once and ignored; the real kubelet's config going false is detected.
#[test]
fn an_impostor_with_a_lower_pid_changes_no_verdict() {
    require_root();
    let node = node_without_unit();
    let name = "kdt-impostor";
    let own = node.path("impostor/config.yaml");
    fs::create_dir_all(own.parent().unwrap()).unwrap();
    fs::write(&own, config_text(true)).unwrap();
    fs::set_permissions(own.parent().unwrap(), fs::Permissions::from_mode(0o755)).unwrap();
    let fake = UserCopy::new(name);
    let imp = KillOnDrop(fake.spawn(&[
        &format!("--config={}", own.display()),
        "--make-iptables-util-chains=true",
    ]));
    let bin = KubeletBin::new(name);
    let real = bin.spawn(&[&node.config_flag()]);
    assert!(imp.0.id() < real.pid(), "pids wrapped: run again");
    let d = Daemon::start(&node, Opts::tagged("impostor"));
    let v = d.wait_for("impostor_kubelet", WAIT, |v| {
        change(v) == "impostor_kubelet"
    });
    assert_eq!(actor_pid(&v), Some(imp.0.id() as u64), "{v}");
    assert_eq!(v["actor"]["user"]["uid"], NOBODY.to_string(), "{v}");
    let lines = d.lines();
    assert!(
        lines
            .iter()
            .all(|v| subject_pid(v) != Some(imp.0.id() as u64)),
        "the impostor is no subject:\n{}",
        d.summary()
    );
    assert!(
        lines
            .iter()
            .any(|v| change(v) == "baseline" && subject_pid(v) == Some(real.pid() as u64)),
        "{}",
        d.summary()
    );
    // The real kubelet's config goes false: detected, named for sed.
    let s = sed(
        "s/makeIPTablesUtilChains: true/makeIPTablesUtilChains: false/",
        &node.config(),
    );
    let v = d.wait_for("drift_detected", WAIT, |v| {
        change(v) == "drift_detected" && kind(v) == "after_restart"
    });
    assert_eq!(actor_pid(&v), Some(s as u64), "{}", d.summary());
    let told = d
        .lines()
        .iter()
        .filter(|v| change(v) == "impostor_kubelet")
        .count();
    assert_eq!(told, 1, "told once:\n{}", d.summary());
    for v in d.lines() {
        if change(&v) != "impostor_kubelet" {
            assert_ne!(v["actor"]["user"]["uid"], NOBODY.to_string(), "{v}");
        }
    }
}

/// 200 impostors exec and exit: at most one report each, never a kubelet_started/stopped.
#[test]
fn impostor_churn_is_told_at_most_once_each_and_starts_nothing() {
    require_root();
    let node = Node::new();
    let name = "kdt-churn";
    let d = Daemon::start(&node, Opts::tagged("churn"));
    let fake = UserCopy::new(name);
    let mut pids = Vec::new();
    for _ in 0..200 {
        let c = KillOnDrop(fake.spawn(&["--make-iptables-util-chains=true"]));
        pids.push(c.0.id() as u64);
        std::thread::sleep(Duration::from_millis(5));
        drop(c);
    }
    std::thread::sleep(Duration::from_millis(500));
    let lines = d.lines();
    let told: Vec<u64> = lines
        .iter()
        .filter(|v| change(v) == "impostor_kubelet")
        .filter_map(actor_pid)
        .collect();
    for p in &pids {
        assert!(
            told.iter().filter(|t| *t == p).count() <= 1,
            "pid {p} told twice"
        );
    }
    assert!(
        !told.is_empty(),
        "no impostor told at all:\n{}",
        d.summary()
    );
    assert!(
        lines
            .iter()
            .all(|v| !matches!(change(v), "kubelet_started" | "kubelet_stopped")),
        "{}",
        d.summary()
    );
}

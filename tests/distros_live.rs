//! The daemon live on k3s, MicroK8s, OpenShift and RKE2 layouts: a baseline that names the
//! distribution, then every edit of the distribution's own files and every restart of its
//! processes reported within seconds, each naming the process that made the change. Run as
//! root (the real eBPF programs, real processes, real edits).
//!
//! How a test layout is evaluated without touching the host's `/etc`: the daemon's
//! `--host-root` (the setting the DaemonSet uses for the host's `/` mounted at `/host`) points
//! it at a fresh directory holding the distribution's files, for detection and the
//! after-restart truth. The stand-in processes run chrooted into that directory (set up before
//! their exec, with the stand-in and its shared libraries copied in), so their
//! `/proc/<pid>/root` is the layout, exactly as a containerised kubelet's root is its
//! container: the running truth is read there too. Nothing is written outside the tempdir,
//! and nothing needs cleaning up on the host if a test fails.
//!
//! Every daemon sees every process named like a kubelet on the machine: the tests here run one
//! at a time (`SERIAL`), and each filters what it reads by the pids it started.

use kubelet_drift_tests::daemon as harness;

use std::{
    ffi::CString,
    fs,
    os::unix::{ffi::OsStrExt, fs::PermissionsExt, process::CommandExt},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::Mutex,
    time::{Duration, Instant},
};

use harness::*;
use serde_json::Value;

/// How long a change may take to be reported on this loaded, shared machine.
const WAIT: Duration = Duration::from_secs(10);

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// A node image in a tempdir: the harness's [`Node`] emptied of its kubeadm files.
struct Layout {
    node: Node,
}

impl Layout {
    fn new() -> Layout {
        let node = Node::new();
        for e in fs::read_dir(&node.root).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                fs::remove_dir_all(&p).unwrap();
            } else {
                fs::remove_file(&p).unwrap();
            }
        }
        fs::set_permissions(&node.root, fs::Permissions::from_mode(0o755)).unwrap();
        Layout { node }
    }

    /// `p` (absolute inside the layout) on the host.
    fn host(&self, p: &str) -> PathBuf {
        self.node.path(p)
    }

    fn file(&self, p: &str, text: &str) -> &Layout {
        let h = self.host(p);
        fs::create_dir_all(h.parent().unwrap()).unwrap();
        fs::write(&h, text).unwrap();
        self
    }

    fn dir(&self, p: &str) -> &Layout {
        fs::create_dir_all(self.host(p)).unwrap();
        self
    }

    fn link(&self, p: &str, target: &str) -> &Layout {
        let h = self.host(p);
        fs::create_dir_all(h.parent().unwrap()).unwrap();
        std::os::unix::fs::symlink(target, &h).unwrap();
        self
    }

    /// The stand-in at `p` inside the layout, stamped with a Kubernetes `version` as the
    /// linker stamps real builds (`-X 'k8s.io/component-base/version.gitVersion=…'` in the Go
    /// build info, `hack/lib/version.sh`), and the shared libraries it needs for a chrooted
    /// exec.
    fn install(&self, p: &str, version: &str) -> &Layout {
        let dst = self.host(p);
        fs::create_dir_all(dst.parent().unwrap()).unwrap();
        let mut bin = fs::read(env!("CARGO_BIN_EXE_distro-standin")).unwrap();
        bin.extend_from_slice(
            format!(
                "\n\tbuild\t-ldflags=\"-X 'k8s.io/component-base/version.gitVersion={version}'\"\n"
            )
            .as_bytes(),
        );
        fs::write(&dst, bin).unwrap();
        fs::set_permissions(&dst, fs::Permissions::from_mode(0o755)).unwrap();
        for lib in shared_libraries() {
            let to = self.node.root.join(lib.strip_prefix("/").unwrap());
            if !to.exists() {
                fs::create_dir_all(to.parent().unwrap()).unwrap();
                fs::copy(&lib, &to).unwrap();
            }
        }
        self
    }

    /// Starts the stand-in at `exe` (inside the layout) chrooted into it, with `args` and only
    /// `env` in its environment (as systemd gives a service), in a process group of its own.
    /// Returns once its exec is complete (and its title rewritten, with `KD_TITLE`).
    fn start(&self, exe: &str, args: &[&str], env: &[(&str, &str)]) -> Running {
        let root = CString::new(self.node.root.as_os_str().as_bytes()).unwrap();
        let mut cmd = Command::new(exe);
        cmd.args(args)
            .env_clear()
            .env(
                "PATH",
                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            )
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0);
        // SAFETY: chroot and chdir are async-signal-safe; `root` was allocated before fork.
        unsafe {
            cmd.pre_exec(move || {
                if libc::chroot(root.as_ptr()) != 0 || libc::chdir(c"/".as_ptr()) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = kubelet_drift_tests::spawn_retrying_busy(&mut cmd)
            .unwrap_or_else(|e| panic!("starting {exe} in {}: {e}", self.node.root.display()));
        let pid = child.id();
        let want_exe = self.host(exe);
        let title = env.iter().find(|(k, _)| *k == "KD_TITLE").map(|(_, v)| *v);
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let exe_ok = fs::read_link(format!("/proc/{pid}/exe")).ok().as_deref()
                == Some(want_exe.as_path());
            let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let title_ok = match title {
                Some(t) => cmdline.starts_with(format!("{t}\0").as_bytes()),
                None => !cmdline.is_empty(),
            };
            if exe_ok && title_ok {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{exe} never started: {cmdline:?}"
            );
            std::thread::sleep(Duration::from_millis(2));
        }
        Running { child }
    }
}

/// The libraries the stand-in loads (`ldd`), and its interpreter.
fn shared_libraries() -> Vec<PathBuf> {
    let out = Command::new("ldd")
        .arg(env!("CARGO_BIN_EXE_distro-standin"))
        .output()
        .expect("running ldd");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let l = l.trim();
            let path = match l.split_once("=>") {
                Some((_, rest)) => rest.trim().split(' ').next()?,
                None => l.split(' ').next()?,
            };
            path.starts_with('/').then(|| PathBuf::from(path))
        })
        .collect()
}

/// A stand-in process group, killed when dropped.
struct Running {
    child: Child,
}

impl Running {
    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Its child (the kubelet an rke2 or kubenswrapper stand-in started), once it has exec'd.
    fn child_pid(&self, exe_on_host: &Path) -> u32 {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let children = fs::read_to_string(format!("/proc/{0}/task/{0}/children", self.pid()))
                .unwrap_or_default();
            for c in children.split_whitespace() {
                if fs::read_link(format!("/proc/{c}/exe")).ok().as_deref() == Some(exe_on_host)
                    && fs::read(format!("/proc/{c}/cmdline")).is_ok_and(|c| !c.is_empty())
                {
                    return c.parse().unwrap();
                }
            }
            assert!(
                Instant::now() < deadline,
                "no child of {} runs {}",
                self.pid(),
                exe_on_host.display()
            );
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// SIGKILL to the whole group (the stand-in and its child), then reaped.
    fn stop(&mut self) {
        // SAFETY: signalling a process group this test created.
        unsafe {
            libc::kill(-(self.child.id() as libc::pid_t), libc::SIGKILL);
        }
        let _ = self.child.wait();
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The daemon on `l`, looking for processes named `names`, the periodic rescan an hour away
/// (every report below is caused by an event).
fn daemon(l: &Layout, tag: &str, names: &[&str]) -> Daemon {
    let mut args = vec!["--rescan-interval".to_string(), "1h".into()];
    for n in &names[1..] {
        args.extend(["--kubelet-name".to_string(), n.to_string()]);
    }
    Daemon::start(
        &l.node,
        Opts {
            kubelet_name: names[0].into(),
            node_name: format!("node-live-{tag}"),
            args,
            ..Default::default()
        },
    )
}

/// The first line after the first `from` lines that matches `pred`; panics after [`WAIT`].
fn next(d: &Daemon, from: usize, what: &str, pred: impl Fn(&Value) -> bool) -> (usize, Value) {
    let deadline = Instant::now() + WAIT;
    loop {
        let lines = d.lines();
        if let Some((i, v)) = lines.iter().enumerate().skip(from).find(|(_, v)| pred(v)) {
            return (i + 1, v.clone());
        }
        assert!(
            Instant::now() < deadline && !d.exited(),
            "no {what} within {WAIT:?}; lines:\n{}\nstderr:\n{}",
            d.summary(),
            d.stderr_text()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A change of the after-restart state to `change`, named for process `pid`.
fn after_restart_change(
    d: &Daemon,
    from: usize,
    change_: &str,
    pid: u32,
    what: &str,
) -> (usize, Value) {
    let (n, v) = next(d, from, what, |v| {
        change(v) == change_ && kind(v) == "after_restart"
    });
    assert_eq!(
        actor_pid(&v),
        Some(pid as u64),
        "{what}: not named for its writer: {v}"
    );
    let acted = ACTED_MS.load(std::sync::atomic::Ordering::Relaxed);
    eprintln!(
        "{what}: {change_} {} ms after the change began, named {}({pid})",
        v["time"].as_u64().unwrap_or(0).saturating_sub(acted),
        actor_name(&v)
    );
    (n, v)
}

/// The baseline: every line names the distribution; the after-restart state and the running
/// process `pid` pass.
fn baseline(d: &Daemon, pid: u32, id: &str, name: &str) -> usize {
    let lines = d.lines();
    let after = lines
        .iter()
        .find(|v| change(v) == "baseline" && kind(v) == "after_restart")
        .expect("the after-restart baseline");
    assert_eq!(status(after), "Pass", "{after}");
    let running = lines
        .iter()
        .find(|v| change(v) == "baseline" && subject_pid(v) == Some(pid as u64))
        .unwrap_or_else(|| panic!("no baseline for pid {pid}:\n{}", d.summary()));
    assert_eq!(status(running), "Pass", "{running}");
    for v in [after, running] {
        assert_eq!(v["unmapped"]["distribution"]["id"], id, "{v}");
        let msg = v["message"].as_str().unwrap();
        assert!(msg.contains(&format!("on a {name} node")), "{msg}");
    }
    assert_all_valid(d);
    lines.len()
}

/// A restart: the old process's stop and the new one's start, each named for itself.
fn restarted(d: &Daemon, from: usize, old: u32, new: u32, new_parent: Option<u32>) -> usize {
    let (_, stop) = next(d, from, "kubelet_stopped", |v| {
        change(v) == "kubelet_stopped" && subject_pid(v) == Some(old as u64)
    });
    assert_eq!(actor_pid(&stop), Some(old as u64), "{stop}");
    let (n, start) = next(d, from, "kubelet_started", |v| {
        change(v) == "kubelet_started" && subject_pid(v) == Some(new as u64)
    });
    assert_eq!(status(&start), "Pass", "{start}");
    assert_eq!(actor_pid(&start), Some(new as u64), "{start}");
    if let Some(p) = new_parent {
        assert_eq!(
            start["actor"]["process"]["parent_process"]["pid"], p,
            "{start}"
        );
    }
    n
}

/// A process that starts the kubelet as its child, with the arguments `kubelet_args`
/// (kubenswrapper, rke2; the stand-in reads them from `KD_CHILD`).
struct Wrapper<'a> {
    exe: &'a str,
    args: &'a [&'a str],
    kubelet: &'a str,
    kubelet_args: String,
}

impl Wrapper<'_> {
    /// Starts it; returns it and its kubelet's pid.
    fn start(&self, l: &Layout) -> (Running, u32) {
        let w = l.start(self.exe, self.args, &[("KD_CHILD", &self.kubelet_args)]);
        let kubelet = w.child_pid(&l.host(self.kubelet));
        (w, kubelet)
    }

    /// Stops `w` and starts it again: `kubelet` is reported stopped, and the new kubelet
    /// started with the new wrapper as its parent; every line was valid.
    fn restart(&self, l: &Layout, d: &Daemon, from: usize, kubelet: u32, mut w: Running) {
        w.stop();
        let (w, new) = self.start(l);
        restarted(d, from, kubelet, new, Some(w.pid()));
        assert_all_valid(d);
        eprintln!("{}", d.summary());
    }
}

/// When the last change began (ms since the epoch): each report's delay is printed from it.
static ACTED_MS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

fn mark() {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    ACTED_MS.store(now, std::sync::atomic::Ordering::Relaxed);
}

fn sed(expr: &str, file: &Path) -> u32 {
    mark();
    run(Command::new("sed").arg("-i").arg(expr).arg(file))
}

/// Creates `file` (and its missing directories) holding `text`, from one python process.
fn create(file: &Path, text: &str) -> u32 {
    mark();
    python(
        "import os, sys\nos.makedirs(os.path.dirname(sys.argv[1]), exist_ok=True)\nopen(sys.argv[1], 'w').write(sys.argv[2])",
        &[file.as_os_str(), std::ffi::OsStr::new(text)],
    )
}

fn remove(file: &Path) -> u32 {
    mark();
    run(Command::new("rm").arg(file))
}

/// A file that appears (written by a process of ours) and drifts the after-restart state,
/// its report's `field` naming `names`; then removed, which resolves it. Returns the next
/// line to look from.
fn appears_then_goes(
    d: &Daemon,
    from: usize,
    file: &Path,
    text: &str,
    (field, names): (&str, &str),
    what: &str,
) -> usize {
    let w = create(file, text);
    let (m, v) = after_restart_change(d, from, "drift_detected", w, what);
    let got = match field {
        "remediation" => v["remediation"]["desc"].as_str(),
        f => v["unmapped"][f].as_str(),
    };
    assert!(
        got.unwrap_or("").contains(names),
        "{what}: {field} does not name {names}: {v}"
    );
    let w = remove(file);
    after_restart_change(d, m, "drift_resolved", w, &format!("{what}, removed")).0
}

// ---------------------------------------------------------------------------------------------
// k3s

#[test]
fn k3s_edits_of_its_config_files_and_env_file_and_a_restart() {
    require_root();
    let _g = serial();
    let l = Layout::new();
    // k3s-io/k3s install.sh `create_systemd_service_file`: the unit, its env file (written by
    // the installer with the K3S_* variables), each ExecStart argument single-quoted.
    l.file(
        "/etc/systemd/system/k3s.service",
        "[Unit]\nDescription=Lightweight Kubernetes\nWants=network-online.target\n\n[Install]\nWantedBy=multi-user.target\n\n[Service]\nType=notify\nEnvironmentFile=-/etc/default/%N\nEnvironmentFile=-/etc/sysconfig/%N\nEnvironmentFile=-/etc/systemd/system/k3s.service.env\nKillMode=process\nDelegate=yes\nExecStartPre=-/sbin/modprobe br_netfilter\nExecStart=/usr/local/bin/k3s \\\n    server \\\n\t'--write-kubeconfig-mode' \\\n\t'644' \\\n",
    )
    .file("/etc/systemd/system/k3s.service.env", "K3S_TOKEN=kd-test\n")
    // docs.k3s.io "Configuration File": kubelet-arg as a list in /etc/rancher/k3s/config.yaml.
    .file(
        "/etc/rancher/k3s/config.yaml",
        "write-kubeconfig-mode: \"0644\"\nkubelet-arg:\n  - \"max-pods=110\"\n",
    )
    // k3s-io/k3s pkg/daemons/agent/agent.go writeKubeletConfig (1.32+): the managed drop-in.
    .file(
        "/var/lib/rancher/k3s/agent/etc/kubelet.conf.d/00-k3s-defaults.conf",
        "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\ncgroupDriver: cgroupfs\nreadOnlyPort: 0\n",
    )
    .install("/usr/local/bin/k3s", "v1.33.5+k3s1");
    // The files are older than k3s's start (the start time is known to the second): found
    // running, its hidden kubelet's flags are those of the files.
    std::thread::sleep(Duration::from_millis(1200));
    // Its command line as the unit gives it; the title k3s sets over it.
    let args = ["server", "--write-kubeconfig-mode", "644"];
    let title = "/usr/local/bin/k3s server";
    let mut k3s = l.start("/usr/local/bin/k3s", &args, &[("KD_TITLE", title)]);
    // Its arguments are gone from /proc, as k3s's are: the title, then NULs.
    let cmdline = fs::read(format!("/proc/{}/cmdline", k3s.pid())).unwrap();
    assert!(
        cmdline.starts_with(b"/usr/local/bin/k3s server\0\0")
            && !cmdline.windows(4).any(|w| w == b"644\0"),
        "{}",
        String::from_utf8_lossy(&cmdline)
    );

    let d = daemon(&l, "k3s", &["k3s", "k3s-server", "k3s-agent"]);
    let mut n = baseline(&d, k3s.pid(), "k3s", "k3s");
    let running = d
        .lines()
        .into_iter()
        .find(|v| subject_pid(v) == Some(k3s.pid() as u64))
        .unwrap();
    let reason = running["unmapped"]["reason"].as_str().unwrap();
    assert!(reason.contains("hides its arguments"), "{reason}");
    assert!(
        reason.contains("none of which changed since it started"),
        "{reason}"
    );

    // config.yaml: sed -i replaces it (a rename by sed).
    let cfg = l.host("/etc/rancher/k3s/config.yaml");
    let w = sed("s/max-pods=110/make-iptables-util-chains=false/", &cfg);
    let (m, v) = after_restart_change(&d, n, "drift_detected", w, "config.yaml edited to false");
    assert_eq!(actor_name(&v), "sed");
    assert!(
        v["unmapped"]["source"]
            .as_str()
            .unwrap()
            .contains("/etc/rancher/k3s/config.yaml"),
        "{v}"
    );
    let w = sed("s/make-iptables-util-chains=false/max-pods=110/", &cfg);
    (n, _) = after_restart_change(&d, m, "drift_resolved", w, "config.yaml restored");

    // A config.yaml.d file that appears later (its directory too), appending to kubelet-arg.
    let dropin = l.host("/etc/rancher/k3s/config.yaml.d/50-kd.yaml");
    n = appears_then_goes(
        &d,
        n,
        &dropin,
        "kubelet-arg+:\n  - make-iptables-util-chains=false\n",
        ("reason", "config.yaml.d/50-kd.yaml"),
        "a new config.yaml.d file",
    );

    // The unit's env file names another config file (K3S_CONFIG_FILE).
    l.file(
        "/etc/rancher/k3s/alt.yaml",
        "kubelet-arg: [make-iptables-util-chains=false]\n",
    );
    let env = l.host("/etc/systemd/system/k3s.service.env");
    let w = sed("$a K3S_CONFIG_FILE=/etc/rancher/k3s/alt.yaml", &env);
    let (m, v) = after_restart_change(
        &d,
        n,
        "drift_detected",
        w,
        "K3S_CONFIG_FILE in the env file",
    );
    assert!(
        v["unmapped"]["source"]
            .as_str()
            .unwrap()
            .contains("/etc/rancher/k3s/alt.yaml"),
        "{v}"
    );
    let w = sed("/K3S_CONFIG_FILE/d", &env);
    (n, _) = after_restart_change(&d, m, "drift_resolved", w, "the env file restored");

    // A restart of k3s: the stop and the start, each named for its process.
    let old = k3s.pid();
    k3s.stop();
    let k3s = l.start("/usr/local/bin/k3s", &args, &[("KD_TITLE", title)]);
    n = restarted(&d, n, old, k3s.pid(), None);
    let started = &d.lines()[n - 1];
    assert_eq!(actor_name(started), "k3s", "{started}");
    assert_all_valid(&d);
    eprintln!("{}", d.summary());

    // config.yaml changes while k3s runs, then the monitor restarts: what the running k3s
    // read at its start is no longer on disk, and its arguments are hidden, so its running
    // verdict is unknown (an error saying so), never the files' verdict; after a restart,
    // the files' fail.
    let w = sed("s/max-pods=110/make-iptables-util-chains=false/", &cfg);
    after_restart_change(
        &d,
        n,
        "drift_detected",
        w,
        "config.yaml edited while k3s runs",
    );
    drop(d);
    let d = daemon(&l, "k3s2", &["k3s", "k3s-server", "k3s-agent"]);
    let running = d
        .lines()
        .into_iter()
        .find(|v| change(v) == "baseline" && subject_pid(v) == Some(k3s.pid() as u64))
        .unwrap_or_else(|| panic!("no baseline of k3s:\n{}", d.summary()));
    assert_eq!(status(&running), "Error", "{running}");
    let reason = running["unmapped"]["reason"].as_str().unwrap();
    assert!(
        reason.contains("/etc/rancher/k3s/config.yaml changed after k3s started"),
        "{reason}"
    );
    let after = d
        .lines()
        .into_iter()
        .find(|v| change(v) == "baseline" && kind(v) == "after_restart")
        .unwrap();
    assert_eq!(status(&after), "Fail", "{after}");
    assert_all_valid(&d);
}

// ---------------------------------------------------------------------------------------------
// MicroK8s

#[test]
fn microk8s_edit_of_the_args_file_and_a_restart_of_kubelite() {
    require_root();
    let _g = serial();
    let l = Layout::new();
    // canonical/microk8s: /var/snap/microk8s/current -> <revision>; the kubelet's flags one per
    // line in $SNAP_DATA/args/kubelet (microk8s-resources/default-args/kubelet: ${SNAP_DATA} and
    // ${SNAP_COMMON} variables, quoted values); $SNAP_DATA/args/kubelite names that file
    // (microk8s-resources/default-args/kubelite); the snap's unit.
    l.link("/var/snap/microk8s/current", "4321")
        .link("/snap/microk8s/current", "4321")
        .file(
            "/var/snap/microk8s/4321/args/kubelet",
            "--kubeconfig=${SNAP_DATA}/credentials/kubelet.config\n--cert-dir=${SNAP_DATA}/certs\n--client-ca-file=${SNAP_DATA}/certs/ca.crt\n--anonymous-auth=false\n--root-dir=${SNAP_COMMON}/var/lib/kubelet\n--fail-swap-on=false\n--eviction-hard=\"memory.available<100Mi,nodefs.available<1Gi,imagefs.available<1Gi\"\n--container-runtime-endpoint=${SNAP_COMMON}/run/containerd.sock\n--node-labels=\"microk8s.io/cluster=true\"\n--authentication-token-webhook=true\n--read-only-port=0\n",
        )
        .file(
            "/var/snap/microk8s/4321/args/kubelite",
            "--scheduler-args-file=$SNAP_DATA/args/kube-scheduler\n--controller-manager-args-file=$SNAP_DATA/args/kube-controller-manager\n--proxy-args-file=$SNAP_DATA/args/kube-proxy\n--kubelet-args-file=$SNAP_DATA/args/kubelet\n--apiserver-args-file=$SNAP_DATA/args/kube-apiserver\n",
        )
        .file(
            "/etc/systemd/system/snap.microk8s.daemon-kubelite.service",
            "[Unit]\nDescription=Service for snap application microk8s.daemon-kubelite\n[Service]\nEnvironmentFile=-/etc/environment\nExecStart=/usr/bin/snap run microk8s.daemon-kubelite\nRestart=always\n",
        )
        .install("/snap/microk8s/4321/kubelite", "v1.33.4");
    // kubelite as the wrapper (microk8s-resources/wrappers/run-kubelite-with-args) execs it:
    // the words of args/kubelite, the snap's variables in its environment.
    let snap_env = [
        ("SNAP", "/snap/microk8s/4321"),
        ("SNAP_DATA", "/var/snap/microk8s/4321"),
        ("SNAP_COMMON", "/var/snap/microk8s/common"),
    ];
    let args = [
        "--scheduler-args-file=/var/snap/microk8s/4321/args/kube-scheduler",
        "--kubelet-args-file=/var/snap/microk8s/4321/args/kubelet",
    ];
    // The files are older than kubelite's start (known to the second): found running, its
    // kubelet's flags are those of the files.
    std::thread::sleep(Duration::from_millis(1200));
    let mut kl = l.start("/snap/microk8s/4321/kubelite", &args, &snap_env);
    let d = daemon(&l, "mk8s", &["kubelite"]);
    let mut n = baseline(&d, kl.pid(), "microk8s", "MicroK8s");

    // The args file, edited where users edit it (through `current`).
    let file = l.host("/var/snap/microk8s/current/args/kubelet");
    let w = sed("$a --make-iptables-util-chains=false", &file);
    let (m, v) = after_restart_change(&d, n, "drift_detected", w, "args/kubelet edited to false");
    assert_eq!(actor_name(&v), "sed");
    assert!(
        v["unmapped"]["source"]
            .as_str()
            .unwrap()
            .contains("args/kubelet"),
        "{v}"
    );
    assert!(
        v["remediation"]["desc"]
            .as_str()
            .unwrap()
            .contains("snap restart microk8s.daemon-kubelite"),
        "{v}"
    );
    let w = sed("/make-iptables-util-chains/d", &file);
    (n, _) = after_restart_change(&d, m, "drift_resolved", w, "args/kubelet restored");

    // A snap refresh: a new revision whose args file says false, then `current` re-pointed
    // to it (snapd replaces the symlink with a rename over it).
    let old_args = fs::read_to_string(l.host("/var/snap/microk8s/4321/args/kubelet")).unwrap();
    let kubelite_args =
        fs::read_to_string(l.host("/var/snap/microk8s/4321/args/kubelite")).unwrap();
    l.file(
        "/var/snap/microk8s/4322/args/kubelet",
        &format!("{old_args}--make-iptables-util-chains=false\n"),
    )
    .file("/var/snap/microk8s/4322/args/kubelite", &kubelite_args);
    let snap = l.host("/var/snap/microk8s");
    let repoint = |rev: &str| {
        mark();
        python(
            "import os, sys\nos.chdir(sys.argv[1])\nos.symlink(sys.argv[2], 'current.new')\nos.rename('current.new', 'current')",
            &[snap.as_os_str(), std::ffi::OsStr::new(rev)],
        )
    };
    let w = repoint("4322");
    let (m, v) = after_restart_change(
        &d,
        n,
        "drift_detected",
        w,
        "current re-pointed to a revision saying false",
    );
    assert!(
        v["unmapped"]["source"]
            .as_str()
            .unwrap()
            .contains("4322/args/kubelet"),
        "{v}"
    );
    let w = repoint("4321");
    (n, _) = after_restart_change(&d, m, "drift_resolved", w, "current re-pointed back");

    // A restart of kubelite.
    let old = kl.pid();
    kl.stop();
    let kl = l.start("/snap/microk8s/4321/kubelite", &args, &snap_env);
    n = restarted(&d, n, old, kl.pid(), None);
    assert_eq!(actor_name(&d.lines()[n - 1]), "kubelite");
    assert_all_valid(&d);
    eprintln!("{}", d.summary());
}

// ---------------------------------------------------------------------------------------------
// OpenShift

/// openshift/machine-config-operator templates/*/01-*-kubelet/_base/units/kubelet.service.yaml
/// (4.12+: `kubenswrapper /usr/bin/kubelet`), with the worker's
/// `--config-dir=/etc/openshift/kubelet.conf.d` right after `--config` (the MCO's
/// pkg/controller/template test TestKubeletConfigDirParameterSpecific).
const OPENSHIFT_UNIT: &str = "[Unit]\nDescription=Kubernetes Kubelet\n[Service]\nType=notify\nExecStartPre=/bin/mkdir --parents /etc/kubernetes/manifests\nEnvironmentFile=/etc/os-release\nEnvironmentFile=-/etc/kubernetes/kubelet-workaround\nEnvironmentFile=-/etc/kubernetes/kubelet-env\nEnvironmentFile=/etc/node-sizing.env\n\nExecStart=/usr/bin/kubenswrapper \\\n    /usr/bin/kubelet \\\n      --config=/etc/kubernetes/kubelet.conf \\\n      --config-dir=/etc/openshift/kubelet.conf.d \\\n      --bootstrap-kubeconfig=/etc/kubernetes/kubeconfig \\\n      --kubeconfig=/var/lib/kubelet/kubeconfig \\\n      --container-runtime-endpoint=/var/run/crio/crio.sock \\\n      --node-labels=node-role.kubernetes.io/worker,node.openshift.io/os_id=${ID} \\\n      --system-reserved=cpu=${SYSTEM_RESERVED_CPU},memory=${SYSTEM_RESERVED_MEMORY} \\\n      --v=${KUBELET_LOG_LEVEL}\n\nRestart=always\n";

/// The MCO renders kubelet.conf as JSON, without makeIPTablesUtilChains.
const OPENSHIFT_CONF: &str = "{\"kind\":\"KubeletConfiguration\",\"apiVersion\":\"kubelet.config.k8s.io/v1beta1\",\"cgroupDriver\":\"systemd\",\"rotateCertificates\":true}";

#[test]
fn openshift_dropin_and_kubelet_conf_edits_and_a_restart() {
    require_root();
    let _g = serial();
    let l = Layout::new();
    l.file("/etc/systemd/system/kubelet.service", OPENSHIFT_UNIT)
        // the MCO's logging drop-in (Red Hat KB 4619431)
        .file(
            "/etc/systemd/system/kubelet.service.d/20-logging.conf",
            "[Service]\nEnvironment=\"KUBELET_LOG_LEVEL=2\"\n",
        )
        .file(
            "/etc/os-release",
            "NAME=\"Red Hat Enterprise Linux CoreOS\"\nID=\"rhcos\"\n",
        )
        .file(
            "/etc/node-sizing.env",
            "SYSTEM_RESERVED_MEMORY=1Gi\nSYSTEM_RESERVED_CPU=500m\n",
        )
        .file("/etc/kubernetes/kubelet.conf", OPENSHIFT_CONF)
        .dir("/etc/openshift/kubelet.conf.d")
        .install("/usr/bin/kubenswrapper", "v1.32.6")
        .install("/usr/bin/kubelet", "v1.32.6");
    // The kubelet's argv as systemd assembles it, the wrapper stripped.
    let wrapper = Wrapper {
        exe: "/usr/bin/kubenswrapper",
        args: &["/usr/bin/kubelet"],
        kubelet: "/usr/bin/kubelet",
        kubelet_args: [
            "/usr/bin/kubelet",
            "--config=/etc/kubernetes/kubelet.conf",
            "--config-dir=/etc/openshift/kubelet.conf.d",
            "--bootstrap-kubeconfig=/etc/kubernetes/kubeconfig",
            "--kubeconfig=/var/lib/kubelet/kubeconfig",
            "--container-runtime-endpoint=/var/run/crio/crio.sock",
            "--node-labels=node-role.kubernetes.io/worker,node.openshift.io/os_id=rhcos",
            "--system-reserved=cpu=500m,memory=1Gi",
            "--v=2",
        ]
        .join("\x1f"),
    };
    let (running, kubelet) = wrapper.start(&l);
    let d = daemon(&l, "ocp", &["kubelet", "kubenswrapper"]);
    let mut n = baseline(&d, kubelet, "openshift", "OpenShift");

    // A drop-in in /etc/openshift/kubelet.conf.d.
    let dropin = l.host("/etc/openshift/kubelet.conf.d/99-kd.conf");
    n = appears_then_goes(
        &d,
        n,
        &dropin,
        "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\nmakeIPTablesUtilChains: false\n",
        ("source", "/etc/openshift/kubelet.conf.d/99-kd.conf"),
        "an OpenShift drop-in",
    );

    // /etc/kubernetes/kubelet.conf, rewritten in place (as a KubeletConfig rendering would).
    let conf = l.host("/etc/kubernetes/kubelet.conf");
    let w = sed(
        "s/\"rotateCertificates\":true/\"makeIPTablesUtilChains\":false/",
        &conf,
    );
    let (m, v) = after_restart_change(&d, n, "drift_detected", w, "kubelet.conf edited to false");
    assert!(
        v["remediation"]["desc"]
            .as_str()
            .unwrap()
            .contains("KubeletConfig"),
        "{v}"
    );
    let w = sed(
        "s/\"makeIPTablesUtilChains\":false/\"rotateCertificates\":true/",
        &conf,
    );
    (n, _) = after_restart_change(&d, m, "drift_resolved", w, "kubelet.conf restored");

    // A restart through the wrapper: the new kubelet is named, its parent the wrapper.
    wrapper.restart(&l, &d, n, kubelet, running);
}

// ---------------------------------------------------------------------------------------------
// RKE2

#[test]
fn rke2_new_config_file_and_a_restart_of_rke2() {
    require_root();
    let _g = serial();
    let l = Layout::new();
    // rancher/rke2 bundle/lib/systemd/system/rke2-server.service; /etc/rancher/rke2/config.yaml
    // (docs.rke2.io "Configuration Options"); the generated 00-rke2-defaults.conf (rke2 vendors
    // k3s's pkg/daemons/agent writeKubeletConfig).
    l.file(
        "/usr/local/lib/systemd/system/rke2-server.service",
        "[Unit]\nDescription=Rancher Kubernetes Engine v2 (server)\n[Service]\nType=notify\nEnvironmentFile=-/etc/default/%N\nEnvironmentFile=-/etc/sysconfig/%N\nEnvironmentFile=-/usr/local/lib/systemd/system/%N.env\nKillMode=process\nDelegate=yes\nExecStartPre=-/sbin/modprobe br_netfilter\nExecStart=/usr/local/bin/rke2 server\n",
    )
    .file("/etc/rancher/rke2/config.yaml", "write-kubeconfig-mode: \"0644\"\n")
    .file(
        "/var/lib/rancher/rke2/agent/etc/kubelet.conf.d/00-rke2-defaults.conf",
        "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\ncgroupDriver: systemd\nreadOnlyPort: 0\n",
    )
    .install("/usr/local/bin/rke2", "v1.33.5+rke2r1")
    .install("/var/lib/rancher/rke2/bin/kubelet", "v1.33.5+rke2r1");
    // rke2 starts the kubelet from its data directory with the managed --config-dir
    // (pkg/executor/staticpod, k3s's GetArgs).
    let wrapper = Wrapper {
        exe: "/usr/local/bin/rke2",
        args: &["server"],
        kubelet: "/var/lib/rancher/rke2/bin/kubelet",
        kubelet_args: [
            "/var/lib/rancher/rke2/bin/kubelet",
            "--config-dir=/var/lib/rancher/rke2/agent/etc/kubelet.conf.d",
            "--kubeconfig=/var/lib/rancher/rke2/agent/kubelet.kubeconfig",
        ]
        .join("\x1f"),
    };
    let (running, kubelet) = wrapper.start(&l);
    let d = daemon(&l, "rke2", &["rke2", "kubelet"]);
    let mut n = baseline(&d, kubelet, "rke2", "RKE2");

    // A config.yaml.d file that appears later.
    let dropin = l.host("/etc/rancher/rke2/config.yaml.d/50-kd.yaml");
    n = appears_then_goes(
        &d,
        n,
        &dropin,
        "kubelet-arg:\n  - make-iptables-util-chains=false\n",
        ("remediation", "config.yaml.d/50-kd.yaml"),
        "a new RKE2 config.yaml.d file",
    );

    // config.yaml itself.
    let cfg = l.host("/etc/rancher/rke2/config.yaml");
    let w = sed("$a kubelet-arg: [make-iptables-util-chains=false]", &cfg);
    let (m, _) = after_restart_change(&d, n, "drift_detected", w, "config.yaml edited to false");
    let w = sed("/kubelet-arg/d", &cfg);
    (n, _) = after_restart_change(&d, m, "drift_resolved", w, "config.yaml restored");

    // A restart of rke2: it starts a new kubelet, named with rke2 as its parent.
    wrapper.restart(&l, &d, n, kubelet, running);
}

// ---------------------------------------------------------------------------------------------
// --distribution

/// A node with both a kubeadm kubelet.service (its config says false) and k3s's unit and
/// config (true): detected as k3s (its unit exists); `--distribution kubeadm` makes `run` and
/// `check` evaluate kubelet.service instead, and both say which distribution and why.
#[test]
fn distribution_given_on_the_command_line_replaces_detection() {
    require_root();
    let _g = serial();
    let l = Layout::new();
    l.file(
        "/lib/systemd/system/kubelet.service",
        "[Service]\nExecStart=/usr/bin/kubelet --config=/var/lib/kubelet/config.yaml\n",
    )
    .file(
        "/var/lib/kubelet/config.yaml",
        "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\nmakeIPTablesUtilChains: false\n",
    )
    .file(
        "/etc/systemd/system/k3s.service",
        "[Service]\nType=notify\nExecStart=/usr/local/bin/k3s server\n",
    )
    .file(
        "/etc/rancher/k3s/config.yaml",
        "kubelet-arg: [make-iptables-util-chains=true]\n",
    );
    let check = |extra: &[&str]| -> Value {
        let out = Command::new(daemon_exe())
            .args(["check", "--format", "json", "--root"])
            .arg(&l.node.root)
            .args(extra)
            .output()
            .unwrap();
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
    };
    let detected = check(&[]);
    assert_eq!(detected["distribution"]["id"], "k3s", "{detected}");
    assert_eq!(detected["findings"][0]["status"], "pass", "{detected}");
    let given = check(&["--distribution", "kubeadm"]);
    assert_eq!(given["distribution"]["id"], "kubeadm", "{given}");
    assert_eq!(
        given["distribution"]["evidence"], "given with --distribution",
        "{given}"
    );
    assert_eq!(given["findings"][0]["status"], "fail", "{given}");

    let d = Daemon::start(
        &l.node,
        Opts {
            kubelet_name: "kdx-none".into(),
            node_name: "node-live-given".into(),
            args: vec!["--distribution".into(), "kubeadm".into()],
            ..Default::default()
        },
    );
    let after = d
        .lines()
        .into_iter()
        .find(|v| change(v) == "baseline" && kind(v) == "after_restart")
        .unwrap();
    assert_eq!(status(&after), "Fail", "{after}");
    assert_eq!(
        after["unmapped"]["distribution"]["id"], "kubeadm",
        "{after}"
    );
    assert_eq!(
        after["unmapped"]["distribution"]["evidence"], "given with --distribution",
        "{after}"
    );
    assert_all_valid(&d);
}

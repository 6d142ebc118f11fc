//! Harness for running the real `kubelet-drift run` as users do: a fake node root in a
//! tempdir, stand-in kubelets under names of their own, and the daemon's OCSF JSON lines read
//! back from its `--json-out` file. [`Scenario`] is the one set-up of the daemon and fault
//! tests (node, stand-in kubelet, kubelets, daemon with its baseline); [`sed`] the usual edit.
//!
//! Tests in one binary run in parallel and every daemon sees every process and file event on
//! the machine, so each test uses its own node root, its own kubelet name (`--kubelet-name`)
//! and filters what it reads by node name, pid and path.

// Included with #[path] by every test binary, which each use a part of it.
#![allow(dead_code)]

use std::{
    ffi::OsStr,
    fs,
    io::Read,
    os::unix::{ffi::OsStrExt, fs::PermissionsExt},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::OnceLock,
    time::{Duration, Instant},
};

use serde_json::Value;

/// These tests load eBPF programs and run the daemon: without root they cannot run, and a
/// skipped test must not look like a passed one.
pub fn require_root() {
    crate::require_root();
}

/// `target/<profile>/`: where cargo put this test's executable's sibling binaries.
fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    // target/<profile>/deps/<test>-<hash>
    exe.parent()
        .and_then(Path::parent)
        .expect("test exe in target/<profile>/deps")
        .to_path_buf()
}

/// The real `kubelet-drift` binary, built (once per test binary) from the current sources:
/// cargo does not build a dependency's binaries for another package's tests, and a stale
/// binary would test old code.
pub fn daemon_exe() -> &'static Path {
    static EXE: OnceLock<PathBuf> = OnceLock::new();
    EXE.get_or_init(|| {
        let dir = target_dir();
        let exe = dir.join("kubelet-drift");
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.toml");
        let mut cmd = Command::new(cargo);
        cmd.args([
            "build",
            "--quiet",
            "-p",
            "kubelet-drift",
            "--bin",
            "kubelet-drift",
        ])
        .arg("--manifest-path")
        .arg(&manifest);
        if dir.file_name() == Some(OsStr::new("release")) {
            cmd.arg("--release");
        }
        match cmd.status() {
            Ok(s) if s.success() => {}
            other => {
                assert!(
                    exe.exists(),
                    "building kubelet-drift failed ({other:?}) and {} does not exist",
                    exe.display()
                );
                eprintln!(
                    "daemon harness: building kubelet-drift failed ({other:?}); using {}",
                    exe.display()
                );
            }
        }
        exe
    })
}

/// The stand-in kubelet (ignores its arguments, waits until killed).
pub fn standin_exe() -> PathBuf {
    target_dir().join("kubelet")
}

/// A fake node root: kubeadm's unit and drop-in, and a config file that says
/// `makeIPTablesUtilChains: true` on a line of its own.
pub struct Node {
    _dir: Option<tempfile::TempDir>,
    pub root: PathBuf,
}

pub const TRUE_LINE: &str = "makeIPTablesUtilChains: true";
pub const FALSE_LINE: &str = "makeIPTablesUtilChains: false";
/// `sed` expressions that turn the node's config false, and back.
pub const TO_FALSE: &str = "s/makeIPTablesUtilChains: true/makeIPTablesUtilChains: false/";
pub const TO_TRUE: &str = "s/makeIPTablesUtilChains: false/makeIPTablesUtilChains: true/";

/// `sed -i EXPR FILE`, the usual editor of the tests (it renames a temporary file over
/// FILE); returns its pid once it has finished.
pub fn sed(expr: &str, file: &Path) -> u32 {
    run(Command::new("sed").arg("-i").arg(expr).arg(file))
}

impl Node {
    pub fn new() -> Node {
        let dir = tempfile::Builder::new()
            .prefix("kd-node-")
            .tempdir()
            .expect("tempdir");
        let root = dir.path().to_path_buf();
        let n = Node {
            _dir: Some(dir),
            root,
        };
        n.populate();
        n
    }

    /// A node whose root is `base` followed by directories until the root's path is at least
    /// `min_len` bytes (for paths longer than the kernel's buffers).
    pub fn deep(min_len: usize) -> Node {
        let dir = tempfile::Builder::new()
            .prefix("kd-deep-")
            .tempdir()
            .expect("tempdir");
        let mut root = dir.path().to_path_buf();
        let mut i = 0;
        while root.as_os_str().len() < min_len {
            root.push(format!("d{i:02}-{}", "x".repeat(40)));
            i += 1;
        }
        fs::create_dir_all(&root).unwrap();
        let n = Node {
            _dir: Some(dir),
            root,
        };
        n.populate();
        n
    }

    fn populate(&self) {
        let unit_dir = self.path("lib/systemd/system");
        fs::create_dir_all(&unit_dir).unwrap();
        fs::copy(
            crate::corpus().join("kubernetes-release/kubelet.service"),
            unit_dir.join("kubelet.service"),
        )
        .unwrap();
        fs::create_dir_all(self.dropin_dir()).unwrap();
        fs::copy(
            crate::corpus().join("kind/10-kubeadm.conf"),
            self.dropin_dir().join("10-kubeadm.conf"),
        )
        .unwrap();
        fs::create_dir_all(self.path("var/lib/kubelet")).unwrap();
        fs::write(self.config(), config_text(true)).unwrap();
    }

    /// `rel` (relative to the node's /) on the host.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel.trim_start_matches('/'))
    }

    /// `/var/lib/kubelet/config.yaml` on the host.
    pub fn config(&self) -> PathBuf {
        self.path("var/lib/kubelet/config.yaml")
    }

    /// `/etc/systemd/system/kubelet.service.d` on the host.
    pub fn dropin_dir(&self) -> PathBuf {
        self.path("etc/systemd/system/kubelet.service.d")
    }

    /// `--config=<host path of the config>`: the stand-in kubelet runs in the host's root.
    pub fn config_flag(&self) -> String {
        format!("--config={}", self.config().display())
    }
}

impl Default for Node {
    fn default() -> Self {
        Self::new()
    }
}

/// kubeadm's generated config, with makeIPTablesUtilChains on a line of its own.
pub fn config_text(value: bool) -> String {
    let base =
        fs::read_to_string(crate::corpus().join("kubeadm-generated/joneconsulting-config.yaml"))
            .unwrap();
    format!("{base}{}\n", if value { TRUE_LINE } else { FALSE_LINE })
}

/// A stand-in kubelet, copied under `name` (its comm) into a tempdir of its own.
pub struct Kubelet {
    pub child: Child,
    pub argv: Vec<String>,
}

/// A directory holding a copy of the stand-in kubelet named `name`.
pub struct KubeletBin {
    _dir: tempfile::TempDir,
    pub exe: PathBuf,
}

impl KubeletBin {
    pub fn new(name: &str) -> KubeletBin {
        assert!(name.len() <= 15, "comm is cut to 15 bytes: {name}");
        let dir = tempfile::Builder::new()
            .prefix("kd-bin-")
            .tempdir()
            .unwrap();
        let exe = dir.path().join(name);
        fs::copy(standin_exe(), &exe).expect("copying the stand-in kubelet");
        fs::set_permissions(&exe, fs::Permissions::from_mode(0o755)).unwrap();
        KubeletBin { _dir: dir, exe }
    }

    pub fn spawn(&self, args: &[&str]) -> Kubelet {
        let child =
            crate::spawn_retrying_busy(Command::new(&self.exe).args(args).stdin(Stdio::null()))
                .unwrap_or_else(|e| {
                    panic!("starting the stand-in kubelet {}: {e}", self.exe.display())
                });
        let mut argv = vec![self.exe.to_string_lossy().into_owned()];
        argv.extend(args.iter().map(|s| s.to_string()));
        Kubelet { child, argv }
    }
}

impl Kubelet {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Kubelet {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A running `kubelet-drift run`, its stderr and JSON lines in files of its own.
pub struct Daemon {
    pub child: Child,
    pub dir: tempfile::TempDir,
    pub json: PathBuf,
    pub stderr: PathBuf,
    pub node_name: String,
    pub started: Instant,
}

/// What a test wants different from the defaults.
#[derive(Clone, Debug, Default)]
pub struct Opts {
    /// `--kubelet-name`.
    pub kubelet_name: String,
    /// `--node-name` (also what lines are filtered by).
    pub node_name: String,
    /// `--journald true` (else false).
    pub journald: bool,
    /// Extra arguments.
    pub args: Vec<String>,
    /// Run inside `unshare -m` with `/run/systemd` replaced by a tmpfs holding, as
    /// `/run/systemd/journal`, this directory (a test journald's namespace directory), or
    /// nothing when `Some(None)`.
    pub journal_dir: Option<Option<PathBuf>>,
}

impl Opts {
    /// The usual scenario: kubelets named `kdt-<tag>`, the node `node-<tag>`.
    pub fn tagged(tag: &str) -> Opts {
        Opts {
            kubelet_name: format!("kdt-{tag}"),
            node_name: format!("node-{tag}"),
            ..Default::default()
        }
    }
}

/// The daemon and fault tests' one set-up: root required, a fresh node, the stand-in kubelet
/// named as the options say, the kubelets started on the node's config (before the daemon, so
/// the baseline holds them), then the daemon, its baseline out. Fields drop in their order:
/// the daemon first, the node's files last.
pub struct Scenario {
    pub daemon: Daemon,
    pub kubelets: Vec<Kubelet>,
    pub bin: KubeletBin,
    pub node: Node,
}

impl Scenario {
    /// `kubelets`: the extra arguments of each kubelet to start (after `--config=`).
    pub fn start(o: Opts, kubelets: &[&[&str]]) -> Scenario {
        require_root();
        let node = Node::new();
        let bin = KubeletBin::new(&o.kubelet_name);
        let flag = node.config_flag();
        let kubelets = kubelets
            .iter()
            .map(|extra| {
                let args: Vec<&str> = std::iter::once(flag.as_str())
                    .chain(extra.iter().copied())
                    .collect();
                bin.spawn(&args)
            })
            .collect();
        let daemon = Daemon::start(&node, o);
        Scenario {
            daemon,
            kubelets,
            bin,
            node,
        }
    }

    /// The usual one: a kubelet running with the node's config, options tagged `tag`.
    pub fn one_kubelet(tag: &str) -> Scenario {
        Scenario::start(Opts::tagged(tag), &[&[]])
    }

    /// No kubelet running, options tagged `tag`.
    pub fn no_kubelet(tag: &str) -> Scenario {
        Scenario::start(Opts::tagged(tag), &[])
    }
}

/// Every line so far is a valid OCSF Compliance Finding of this daemon's node.
pub fn assert_all_valid(d: &Daemon) {
    let lines = d.lines();
    assert!(!lines.is_empty(), "no line at all");
    for v in &lines {
        let p = ocsf_problems(v);
        assert!(p.is_empty(), "{p:?} in {v}");
        assert_eq!(v["device"]["hostname"], d.node_name.as_str());
    }
}

impl Daemon {
    /// Starts the daemon on `node` and waits for its baseline (its after-restart line).
    pub fn start(node: &Node, o: Opts) -> Daemon {
        let d = Daemon::spawn(node, o);
        d.wait_for("baseline after_restart", Duration::from_secs(60), |v| {
            change(v) == "baseline" && kind(v) == "after_restart"
        });
        d
    }

    /// Starts the daemon without waiting.
    pub fn spawn(node: &Node, o: Opts) -> Daemon {
        let dir = tempfile::Builder::new()
            .prefix("kd-run-")
            .tempdir()
            .unwrap();
        let json = dir.path().join("findings.json");
        let stderr = dir.path().join("stderr");
        let conf = dir.path().join("config.yaml");
        // Hermetic: no /etc/kubelet-drift/config.yaml of the machine. Every test sees every
        // process of a busy shared machine: a 4 MiB ring keeps their load from losing the
        // records a test checks the names of (losses have their own test, with a 4 KiB ring
        // given on the command line, which wins over the file).
        fs::write(
            &conf,
            "outputs:\n  journald: false\n  text: false\nring_buffer_bytes: 4MiB\n",
        )
        .unwrap();
        let mut args: Vec<String> = vec![
            "run".into(),
            "--config".into(),
            conf.to_string_lossy().into_owned(),
            "--host-root".into(),
            node.root.to_string_lossy().into_owned(),
            "--json-out".into(),
            json.to_string_lossy().into_owned(),
            "--text".into(),
            "true".into(),
            "--journald".into(),
            if o.journald { "true" } else { "false" }.into(),
            "--node-name".into(),
            o.node_name.clone(),
            "--kubelet-name".into(),
            o.kubelet_name.clone(),
        ];
        args.extend(o.args.iter().cloned());
        let exe = daemon_exe();
        let mut cmd = match &o.journal_dir {
            None => {
                let mut c = Command::new(exe);
                c.args(&args);
                c
            }
            Some(jd) => {
                // As systemd does for a unit with LogNamespace=: the namespace's socket
                // directory appears as /run/systemd/journal in a mount namespace of its own.
                let stash = dir.path().join("journal-stash");
                fs::create_dir(&stash).unwrap();
                let mut script = String::from("set -e\n");
                if jd.is_some() {
                    script.push_str("mount --bind \"$JD\" \"$STASH\"\n");
                }
                script.push_str("mount -t tmpfs tmpfs /run/systemd\nmkdir /run/systemd/journal\n");
                if jd.is_some() {
                    script.push_str("mount --move \"$STASH\" /run/systemd/journal\n");
                }
                script.push_str("exec \"$@\"\n");
                let mut c = Command::new("unshare");
                c.args(["-m", "--propagation", "private", "sh", "-c", &script, "sh"])
                    .arg(exe)
                    .args(&args)
                    .env("STASH", &stash)
                    .env("JD", jd.clone().unwrap_or_default());
                c
            }
        };
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(&stderr).unwrap())
            .spawn()
            .expect("starting kubelet-drift");
        Daemon {
            child,
            dir,
            json,
            stderr,
            node_name: o.node_name,
            started: Instant::now(),
        }
    }

    /// Every finding line (OCSF class 2003) written so far (complete lines only), parsed.
    /// Panics on a line that is not one JSON object.
    pub fn lines(&self) -> Vec<Value> {
        self.all_lines()
            .into_iter()
            .filter(|v| v["class_uid"] == 2003)
            .collect()
    }

    /// The notice lines (OCSF Base Events, class 0: lost events, outputs failing) so far.
    pub fn notices(&self) -> Vec<Value> {
        self.all_lines()
            .into_iter()
            .filter(|v| v["class_uid"] == 0)
            .collect()
    }

    /// Every JSON line written so far (complete lines only), parsed. Panics on a line that is
    /// not one JSON object.
    pub fn all_lines(&self) -> Vec<Value> {
        let Ok(text) = fs::read(&self.json) else {
            return Vec::new();
        };
        let complete = match text.iter().rposition(|&b| b == b'\n') {
            Some(i) => &text[..=i],
            None => return Vec::new(),
        };
        complete
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| {
                let v: Value = serde_json::from_slice(l).unwrap_or_else(|e| {
                    panic!("not a JSON line ({e}): {:?}", String::from_utf8_lossy(l))
                });
                assert!(v.is_object(), "not an object: {v}");
                v
            })
            .collect()
    }

    /// Waits for a line matching `pred`; panics with everything seen after `timeout`.
    pub fn wait_for(&self, what: &str, timeout: Duration, pred: impl Fn(&Value) -> bool) -> Value {
        self.try_wait_for(timeout, pred).unwrap_or_else(|| {
            panic!(
                "no {what} within {timeout:?}; lines:\n{}\nstderr:\n{}",
                self.summary(),
                self.stderr_text()
            )
        })
    }

    pub fn try_wait_for(&self, timeout: Duration, pred: impl Fn(&Value) -> bool) -> Option<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(v) = self.lines().into_iter().find(|v| pred(v)) {
                return Some(v);
            }
            if Instant::now() > deadline {
                return None;
            }
            if self.exited() {
                // One last look: it may have written before exiting.
                return self.lines().into_iter().find(|v| pred(v));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// One line per report: change, subject, status, trigger op and actor, for failure output.
    pub fn summary(&self) -> String {
        self.lines()
            .iter()
            .map(|v| {
                format!(
                    "  {} {} {} pid={} {} op={} path={} actor={}({})",
                    v["time"],
                    change(v),
                    kind(v),
                    v["unmapped"]["subject"]["pid"],
                    v["compliance"]["status"],
                    v["unmapped"]["trigger"]["op"],
                    v["unmapped"]["trigger"]["path"],
                    v["actor"]["process"]["name"],
                    v["actor"]["process"]["pid"],
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    pub fn stderr_text(&self) -> String {
        let mut s = String::new();
        if let Ok(mut f) = fs::File::open(&self.stderr) {
            let mut b = Vec::new();
            let _ = f.read_to_end(&mut b);
            s = String::from_utf8_lossy(&b).into_owned();
        }
        s
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the daemon has exited (a zombie, not yet waited for).
    pub fn exited(&self) -> bool {
        match fs::read_to_string(format!("/proc/{}/stat", self.pid())) {
            Ok(s) => s
                .rsplit(')')
                .next()
                .is_some_and(|r| r.trim_start().starts_with('Z')),
            Err(_) => true,
        }
    }

    /// SIGTERM and wait; returns the exit status.
    pub fn stop(&mut self) -> Option<std::process::ExitStatus> {
        // SAFETY: signalling our own child.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(Some(s)) = self.child.try_wait() {
                return Some(s);
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                return self.child.wait().ok();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.stop();
        }
    }
}

/// `unmapped.change`.
pub fn change(v: &Value) -> &str {
    v["unmapped"]["change"].as_str().unwrap_or("")
}

/// `unmapped.subject.kind`: running or after_restart.
pub fn kind(v: &Value) -> &str {
    v["unmapped"]["subject"]["kind"].as_str().unwrap_or("")
}

pub fn status(v: &Value) -> &str {
    v["compliance"]["status"].as_str().unwrap_or("")
}

pub fn subject_pid(v: &Value) -> Option<u64> {
    v["unmapped"]["subject"]["pid"].as_u64()
}

pub fn actor_pid(v: &Value) -> Option<u64> {
    v["actor"]["process"]["pid"].as_u64()
}

/// The line names `writer` as its actor.
pub fn assert_named(tag: &str, v: &Value, writer: u32) {
    assert_eq!(
        actor_pid(v),
        Some(u64::from(writer)),
        "{tag}: not attributed to the writer: {v}"
    );
}

pub fn actor_name(v: &Value) -> &str {
    v["actor"]["process"]["name"].as_str().unwrap_or("")
}

pub fn trigger_op(v: &Value) -> &str {
    v["unmapped"]["trigger"]["op"].as_str().unwrap_or("")
}

/// Runs a command to completion; panics unless it succeeds. Returns its pid.
pub fn run(cmd: &mut Command) -> u32 {
    let mut child = crate::spawn_retrying_busy(cmd.stdin(Stdio::null()))
        .unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    let pid = child.id();
    let st = child.wait().unwrap();
    assert!(st.success(), "{cmd:?}: {st}");
    pid
}

/// Runs a python3 snippet (argv[1..] are `args`) to completion; returns its pid.
pub fn python(code: &str, args: &[&OsStr]) -> u32 {
    run(Command::new("python3").arg("-c").arg(code).args(args))
}

/// Python that maps `sys.argv[1]` shared and writable through libc's mmap (Python's `mmap`
/// module would keep a dup of the fd) and closes the fd; `p` is the mapping's address. The
/// blind-spot and kept-assembly tests write through it.
pub const PY_MAP_SHARED: &str = "import sys, os, ctypes, time\n\
    libc = ctypes.CDLL(None, use_errno=True)\n\
    libc.mmap.restype = ctypes.c_void_p\n\
    libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]\n\
    fd = os.open(sys.argv[1], os.O_RDWR)\n\
    p = libc.mmap(None, os.fstat(fd).st_size, 3, 1, fd, 0)\n\
    assert p not in (None, ctypes.c_void_p(-1).value), os.strerror(ctypes.get_errno())\n\
    os.close(fd)\n";

/// A python3 that runs `code` with `args`, prints "done" when the change is made and then
/// lives on for 10 s (so that nothing but the change itself can be what the daemon saw).
/// Returns the child (killed by the caller) once "done" is read.
pub fn python_living_on(code: &str, args: &[&OsStr]) -> Child {
    use std::io::BufRead;
    let mut c = Command::new("python3")
        .arg("-c")
        .arg(format!(
            "{code}\nprint('done', flush=True)\nimport time\ntime.sleep(10)"
        ))
        .args(args)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(c.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line, "done\n");
    c
}

/// The path as bytes, for snippets that need exact bytes.
pub fn bytes(p: &Path) -> &[u8] {
    p.as_os_str().as_bytes()
}

/// The one OCSF line validator, shared with the unit tests.
pub use kubelet_drift::output::testutil::{ocsf_problems, ocsf_problems_with_exe};

/// The evasion and blind-spot scenario: a daemon on `node` with the periodic rescan an hour
/// away, `act` (which returns the pid of the process that made the change), then a
/// drift_detected of the after-restart state within `deadline`, triggered by an event (not a
/// rescan or the baseline), every line valid OCSF. Returns the report and that pid; each
/// suite asserts whom the report names.
pub fn caught_by_event(
    what: &str,
    tag: &str,
    node: &Node,
    deadline: Duration,
    act: impl FnOnce(&Node) -> u32,
) -> (Value, u32) {
    assert!(tag.len() <= 11);
    let d = Daemon::start(
        node,
        Opts {
            kubelet_name: format!("kd{}-{tag}", &what[..1]),
            node_name: format!("node-{}-{tag}", &what[..2]),
            args: vec!["--rescan-interval".into(), "1h".into()],
            ..Default::default()
        },
    );
    let now_ms = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64
    };
    let t0 = now_ms();
    let writer = act(node);
    let acted = now_ms();
    let v = d
        .try_wait_for(deadline, |v| {
            change(v) == "drift_detected" && kind(v) == "after_restart"
        })
        .unwrap_or_else(|| {
            panic!(
                "{tag}: no drift_detected within {deadline:?} of the change; lines:\n{}\nstderr:\n{}",
                d.summary(),
                d.stderr_text()
            )
        });
    if std::env::var_os("KD_SHOW_STDERR").is_some() {
        eprintln!("{tag} stderr:\n{}", d.stderr_text());
    }
    let at = v["time"].as_u64().unwrap();
    eprintln!(
        "{what} {tag}: drift_detected {} ms after the change began ({} ms after it ended), trigger {} by {}",
        at.saturating_sub(t0),
        at.saturating_sub(acted),
        trigger_op(&v),
        actor_name(&v)
    );
    assert_eq!(status(&v), "Fail");
    assert_eq!(v["unmapped"]["effective"], "false", "{v}");
    assert!(
        !matches!(trigger_op(&v), "rescan" | "baseline"),
        "{tag}: found by a rescan, not by the event: {v}"
    );
    for l in d.lines() {
        let p = ocsf_problems(&l);
        assert!(p.is_empty(), "{p:?} in {l}");
    }
    (v, writer)
}

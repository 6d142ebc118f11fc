//! Running kubelets, found through procfs.
//!
//! A process is a kubelet when the basename of its executable (`/proc/<pid>/exe`, without a
//! ` (deleted)` suffix) — or of argv[0] when the executable cannot be read — is one of the
//! given names. `cmdline` and `environ` are read as raw bytes (NUL-separated); anything that
//! is not UTF-8 is converted lossily and flagged in [`KubeletProcess::non_utf8`], so that the
//! evaluation can refuse to pass on arguments it cannot read exactly. A process that vanishes
//! while being read is skipped, never an error.
//!
//! Besides `kubelet`, the default names are the processes that host an embedded kubelet
//! (`k3s server|agent`, MicroK8s `kubelite`), the wrappers that exec it (`hyperkube`,
//! `kubenswrapper`) and RKE2's supervisor (`rke2`), whose restart restarts its kubelet
//! ([`super::distro::PROCESS_NAMES`]). A process so named that hosts no kubelet (`k3s kubectl`,
//! `rke2 server`, a wrapper still running as a shell) is not returned
//! ([`super::distro::host_kind`]); its exec still triggers an evaluation in the daemon.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// The executable names looked for by default.
pub const DEFAULT_NAMES: &[&str] = super::distro::PROCESS_NAMES;

pub fn default_names() -> Vec<String> {
    DEFAULT_NAMES.iter().map(|s| s.to_string()).collect()
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KubeletProcess {
    pub pid: u32,
    pub argv: Vec<String>,
    /// The executable (`/proc/<pid>/exe`, a path inside the process's root), if readable.
    pub exe: Option<PathBuf>,
    /// `/proc/<pid>/root`: the process's root on the host.
    pub root: PathBuf,
    /// The process's working directory, a path inside its root.
    pub cwd: PathBuf,
    pub env: HashMap<String, String>,
    /// Clock ticks since boot at which the process started (`stat` field 22): with the pid,
    /// identifies the process across pid reuse.
    pub start_time: u64,
    /// The systemd unit whose cgroup the process is in (e.g. `kubelet.service`).
    pub systemd_unit: Option<String>,
    /// An argument or environment entry was not UTF-8 and was converted lossily: the argv is
    /// not exactly what the kubelet parsed.
    pub non_utf8: bool,
    /// What could not be read (environment, cwd), for the finding's reason.
    pub notes: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    #[error("cannot read /proc/{pid}/{what}: {source}")]
    Io {
        pid: u32,
        what: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("cannot read /proc/{pid}/stat: {message}")]
    Stat { pid: u32, message: String },
}

/// The host's procfs.
const PROC: &str = "/proc";

/// Every running process whose executable name is in `names`, sorted by pid.
pub fn find_kubelets(names: &[String]) -> Vec<KubeletProcess> {
    find_kubelets_in(Path::new(PROC), names)
}

/// [`find_kubelets`] in a procfs mounted at `proc_root` (tests use a fake one).
pub fn find_kubelets_in(proc_root: &Path, names: &[String]) -> Vec<KubeletProcess> {
    let Ok(rd) = std::fs::read_dir(proc_root) else {
        return Vec::new();
    };
    let mut pids: Vec<u32> = rd
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse().ok()))
        .collect();
    pids.sort_unstable();
    pids.into_iter()
        .filter_map(|pid| read_kubelet_in(proc_root, pid, names).ok().flatten())
        .collect()
}

/// Reads process `pid` if it is a kubelet: `Ok(None)` when it is not one, or is gone.
pub fn read_kubelet(pid: u32, names: &[String]) -> Result<Option<KubeletProcess>, DiscoveryError> {
    read_kubelet_in(Path::new(PROC), pid, names)
}

fn gone(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ENOENT) | Some(libc::ESRCH))
}

/// Splits NUL-separated bytes; says whether any part was not UTF-8.
fn split_nul(bytes: &[u8]) -> (Vec<String>, bool) {
    let bytes = bytes.strip_suffix(&[0]).unwrap_or(bytes);
    if bytes.is_empty() {
        return (Vec::new(), false);
    }
    let mut lossy = false;
    let parts = bytes
        .split(|&b| b == 0)
        .map(|p| match std::str::from_utf8(p) {
            Ok(s) => s.to_owned(),
            Err(_) => {
                lossy = true;
                String::from_utf8_lossy(p).into_owned()
            }
        })
        .collect();
    (parts, lossy)
}

fn basename(p: &str) -> &str {
    p.rsplit('/').next().unwrap_or(p)
}

/// The systemd unit of a `/proc/<pid>/cgroup` text: the last `*.service` component of the
/// unified (`0::`) or `name=systemd` hierarchy.
pub fn unit_from_cgroup(text: &str) -> Option<String> {
    let path = text.lines().find_map(|l| {
        let mut parts = l.splitn(3, ':');
        let (_id, ctrl, path) = (parts.next()?, parts.next()?, parts.next()?);
        (ctrl.is_empty() || ctrl == "name=systemd").then_some(path)
    })?;
    path.split('/')
        .rev()
        .find(|c| c.ends_with(".service"))
        .map(str::to_owned)
}

/// [`read_kubelet`] in a procfs mounted at `proc_root`.
pub fn read_kubelet_in(
    proc_root: &Path,
    pid: u32,
    names: &[String],
) -> Result<Option<KubeletProcess>, DiscoveryError> {
    let dir = proc_root.join(pid.to_string());
    let io_err = |what: &'static str, source: io::Error| DiscoveryError::Io { pid, what, source };

    let cmdline = match std::fs::read(dir.join("cmdline")) {
        Ok(b) => b,
        Err(e) if gone(&e) => return Ok(None),
        Err(e) => return Err(io_err("cmdline", e)),
    };
    let (argv, mut non_utf8) = split_nul(&cmdline);
    if argv.is_empty() {
        return Ok(None); // kernel thread or zombie
    }
    let exe = match std::fs::read_link(dir.join("exe")) {
        Ok(p) => {
            let b = p.as_os_str().as_bytes();
            let b = b.strip_suffix(b" (deleted)").unwrap_or(b);
            Some(PathBuf::from(OsStr::from_bytes(b)))
        }
        Err(e) if gone(&e) && !dir.exists() => return Ok(None),
        Err(_) => None,
    };
    let name = match &exe {
        Some(p) => p
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        // k3s's rewritten title is one argument with spaces: its first word is argv[0].
        None => basename(
            super::distro::title_words(&argv)
                .first()
                .copied()
                .unwrap_or(""),
        )
        .to_owned(),
    };
    if !names.contains(&name) || super::distro::host_kind(&name, &argv).is_none() {
        return Ok(None);
    }

    let mut notes = Vec::new();
    let cwd = match std::fs::read_link(dir.join("cwd")) {
        Ok(p) => p,
        Err(e) if gone(&e) && !dir.exists() => return Ok(None),
        Err(e) => {
            notes.push(format!(
                "the working directory could not be read ({e}); taken as /"
            ));
            PathBuf::from("/")
        }
    };
    let env = match std::fs::read(dir.join("environ")) {
        Ok(b) => {
            let (vars, lossy) = split_nul(&b);
            non_utf8 |= lossy;
            vars.into_iter()
                .filter_map(|v| v.split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned())))
                .collect()
        }
        Err(e) if gone(&e) && !dir.exists() => return Ok(None),
        Err(e) => {
            notes.push(format!("the environment could not be read ({e})"));
            HashMap::new()
        }
    };
    let start_time =
        match procfs::process::Process::new_with_root(dir.clone()).and_then(|p| p.stat()) {
            Ok(s) => s.starttime,
            Err(procfs::ProcError::NotFound(_)) => return Ok(None),
            Err(e) => {
                if !dir.exists() {
                    return Ok(None);
                }
                return Err(DiscoveryError::Stat {
                    pid,
                    message: e.to_string(),
                });
            }
        };
    let systemd_unit = std::fs::read_to_string(dir.join("cgroup"))
        .ok()
        .and_then(|t| unit_from_cgroup(&t));
    if non_utf8 {
        notes.push("an argument or environment entry is not UTF-8 text".into());
    }
    Ok(Some(KubeletProcess {
        pid,
        argv,
        exe,
        root: dir.join("root"),
        cwd,
        env,
        start_time,
        systemd_unit,
        non_utf8,
        notes,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn stat_line(pid: u32, comm: &str, start: u64) -> String {
        // pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime
        // stime cutime cstime priority nice threads itrealvalue starttime ...
        let mut f = vec![format!("{pid}"), format!("({comm})"), "S".into()];
        f.extend(std::iter::repeat_n("0".to_string(), 18));
        f.push(start.to_string());
        f.extend(std::iter::repeat_n("0".to_string(), 30));
        f.join(" ") + "\n"
    }

    fn fake(proc_root: &Path, pid: u32, cmdline: &[u8], exe: Option<&str>, cgroup: &str) {
        let d = proc_root.join(pid.to_string());
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("cmdline"), cmdline).unwrap();
        std::fs::write(
            d.join("environ"),
            b"A=1\0KUBELET_CONFIG_DROPIN_DIR_ALPHA=\0",
        )
        .unwrap();
        std::fs::write(d.join("stat"), stat_line(pid, "kubelet", 4242)).unwrap();
        std::fs::write(d.join("cgroup"), cgroup).unwrap();
        symlink("/var/lib/kubelet", d.join("cwd")).unwrap();
        if let Some(exe) = exe {
            symlink(exe, d.join("exe")).unwrap();
        }
    }

    fn names() -> Vec<String> {
        default_names()
    }

    #[test]
    fn finds_kubelets_in_fake_proc() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path();
        fake(
            p,
            100,
            b"/usr/bin/kubelet\0--config=/var/lib/kubelet/config.yaml\0",
            Some("/usr/bin/kubelet"),
            "0::/system.slice/kubelet.service\n",
        );
        // exe unreadable: argv[0] decides
        fake(
            p,
            200,
            b"kubelet\0--v=2\0",
            None,
            "12:pids:/x\n1:name=systemd:/kubelet.slice/kubelet.service\n",
        );
        // not a kubelet, and a kubelet-named argv[0] of another exe
        fake(p, 300, b"/bin/sh\0", Some("/bin/sh"), "0::/\n");
        fake(p, 400, b"kubelet\0", Some("/usr/bin/python3"), "0::/\n");
        // deleted (upgraded) executable
        fake(
            p,
            500,
            b"/usr/bin/kubelet\0",
            Some("/usr/bin/kubelet (deleted)"),
            "0::/kubepods/x\n",
        );
        // zombie / kernel thread: empty cmdline
        fake(p, 600, b"", Some("/usr/bin/kubelet"), "0::/\n");
        // not a pid directory
        std::fs::create_dir_all(p.join("self-not-a-pid")).unwrap();

        let found = find_kubelets_in(p, &names());
        let pids: Vec<u32> = found.iter().map(|k| k.pid).collect();
        assert_eq!(pids, vec![100, 200, 500]);
        let k = &found[0];
        assert_eq!(
            k.argv,
            vec!["/usr/bin/kubelet", "--config=/var/lib/kubelet/config.yaml"]
        );
        assert_eq!(k.exe, Some(PathBuf::from("/usr/bin/kubelet")));
        assert_eq!(k.cwd, PathBuf::from("/var/lib/kubelet"));
        assert_eq!(k.root, p.join("100/root"));
        assert_eq!(k.start_time, 4242);
        assert_eq!(k.systemd_unit.as_deref(), Some("kubelet.service"));
        assert_eq!(
            k.env
                .get("KUBELET_CONFIG_DROPIN_DIR_ALPHA")
                .map(String::as_str),
            Some("")
        );
        assert!(!k.non_utf8);
        assert_eq!(found[1].systemd_unit.as_deref(), Some("kubelet.service"));
        assert_eq!(found[2].exe, Some(PathBuf::from("/usr/bin/kubelet")));
        assert_eq!(found[2].systemd_unit, None);
        // other names
        assert_eq!(find_kubelets_in(p, &["sh".to_string()]).len(), 1);
    }

    #[test]
    fn distribution_hosts() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path();
        // k3s's rewritten title: one argument with a space
        fake(
            p,
            10,
            b"/usr/local/bin/k3s server\0\0\0",
            Some("/var/lib/rancher/k3s/data/abc/bin/k3s"),
            "0::/system.slice/k3s.service\n",
        );
        // k3s kubectl shares the executable: not a kubelet
        fake(
            p,
            11,
            b"kubectl\0get\0pods\0",
            Some("/var/lib/rancher/k3s/data/abc/bin/k3s"),
            "0::/\n",
        );
        fake(
            p,
            12,
            b"/snap/microk8s/1/kubelite\0--kubelet-args-file=/a\0",
            Some("/snap/microk8s/1/kubelite"),
            "0::/\n",
        );
        // RKE2's supervisor hosts no kubelet; its kubelet is its own process
        fake(
            p,
            13,
            b"/usr/local/bin/rke2\0server\0",
            Some("/usr/local/bin/rke2"),
            "0::/\n",
        );
        fake(
            p,
            14,
            b"kubelet\0--v=2\0",
            Some("/var/lib/rancher/rke2/data/v1/bin/kubelet"),
            "0::/system.slice/rke2-server.service\n",
        );
        // exe unreadable: the title's first word decides
        fake(p, 15, b"/usr/local/bin/k3s agent\0", None, "0::/\n");
        let pids: Vec<u32> = find_kubelets_in(p, &names())
            .iter()
            .map(|k| k.pid)
            .collect();
        assert_eq!(pids, vec![10, 12, 14, 15]);
        // with only "kubelet", none of the hosts
        let pids: Vec<u32> = find_kubelets_in(p, &["kubelet".into()])
            .iter()
            .map(|k| k.pid)
            .collect();
        assert_eq!(pids, vec![14]);
    }

    #[test]
    fn non_utf8_args_are_flagged() {
        let t = tempfile::tempdir().unwrap();
        fake(
            t.path(),
            7,
            b"/usr/bin/kubelet\0--make-iptables-util-chains=f\xffalse\0",
            Some("/usr/bin/kubelet"),
            "0::/\n",
        );
        let k = read_kubelet_in(t.path(), 7, &names()).unwrap().unwrap();
        assert!(k.non_utf8);
        assert_eq!(k.argv[1], "--make-iptables-util-chains=f\u{fffd}alse");
    }

    #[test]
    fn vanished_pid_is_none() {
        let t = tempfile::tempdir().unwrap();
        assert!(
            read_kubelet_in(t.path(), 12345, &names())
                .unwrap()
                .is_none()
        );
        // vanishes between files: cmdline there, the rest gone
        let d = t.path().join("9");
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("cmdline"), b"/usr/bin/kubelet\0").unwrap();
        symlink("/usr/bin/kubelet", d.join("exe")).unwrap();
        assert!(read_kubelet_in(t.path(), 9, &names()).unwrap().is_none());
    }

    #[test]
    fn live_proc_reads_ourselves() {
        let me = std::process::id();
        let exe = std::fs::read_link("/proc/self/exe").unwrap();
        let name = exe.file_name().unwrap().to_string_lossy().into_owned();
        let k = read_kubelet(me, &[name]).unwrap().unwrap();
        assert_eq!(k.pid, me);
        assert!(k.start_time > 0);
        assert_eq!(k.cwd, std::env::current_dir().unwrap());
        assert!(find_kubelets(&names()).iter().all(|k| k.pid != me));
    }

    #[test]
    fn cgroup_units() {
        assert_eq!(
            unit_from_cgroup("0::/system.slice/kubelet.service\n").as_deref(),
            Some("kubelet.service")
        );
        assert_eq!(
            unit_from_cgroup("0::/user.slice/user-0.slice/session-1.scope\n"),
            None
        );
        assert_eq!(
            unit_from_cgroup("3:cpu:/a.service\n1:name=systemd:/system.slice/snap.microk8s.daemon-kubelite.service\n").as_deref(),
            Some("snap.microk8s.daemon-kubelite.service")
        );
        assert_eq!(unit_from_cgroup(""), None);
    }
}

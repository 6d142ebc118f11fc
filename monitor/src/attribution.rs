//! Who did it: the actor of a kernel event, completed from /proc while the process may still
//! be there (exe, argv, container id) and from the node's user database (user name).

use std::{fs, os::unix::ffi::OsStrExt, path::PathBuf};

use crate::{decode::KernelActor, report::Actor};

/// Builds the report's actor from a kernel event's actor. Reads /proc/<tgid> once; every
/// read is best effort (a short-lived `sed` is often gone by now). This runs for the open of
/// every write to a watched file, on the path to its report: each file is read with one
/// `read` into a buffer of its usual size (`fs::read` first asks procfs for a size it does
/// not give, then reads in 32-byte steps: 5 to 7 calls per file).
pub fn actor(a: &KernelActor) -> Actor {
    use std::io::Write as _;
    let mut path = [0u8; 32];
    let mut at = |leaf: &str| -> PathBuf {
        let mut w = &mut path[..];
        let _ = write!(w, "/proc/{}/{leaf}", a.tgid);
        let n = 32 - w.len();
        PathBuf::from(std::ffi::OsStr::from_bytes(&path[..n]))
    };
    // /proc gives the whole path across mounts while the process lives; the kernel's walk,
    // taken at the event, still names a writer that is gone.
    let exe = fs::read_link(at("exe")).ok().or_else(|| a.exe.clone());
    let argv = read_small(&at("cmdline"))
        .filter(|b| !b.is_empty())
        .map(|b| {
            b.split(|&c| c == 0)
                .filter(|s| !s.is_empty())
                .map(|s| String::from_utf8_lossy(s).into_owned())
                .collect::<Vec<_>>()
        });
    let container_id = read_small(&at("cgroup"))
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|t| container_id(&t));
    Actor {
        pid: a.tgid,
        ppid: a.ppid,
        uid: a.uid,
        user: user_name(a.uid),
        gid: a.gid,
        comm: String::from_utf8_lossy(&a.comm).into_owned(),
        exe,
        cgroup_id: a.cgroup_id,
        container_id,
        argv,
    }
}

/// A small procfs file, whole: read into a 4 KiB buffer (one `read` for a usual command
/// line or cgroup, then the one that says the end), growing for a longer one.
fn read_small(path: &std::path::Path) -> Option<Vec<u8>> {
    use std::io::Read as _;
    let mut f = fs::File::open(path).ok()?;
    let mut buf = Vec::with_capacity(4096);
    loop {
        if buf.len() == buf.capacity() {
            buf.reserve(buf.capacity());
        }
        let len = buf.len();
        let cap = buf.capacity();
        buf.resize(cap, 0);
        match f.read(&mut buf[len..]) {
            Ok(0) => {
                buf.truncate(len);
                return Some(buf);
            }
            Ok(n) => buf.truncate(len + n),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => buf.truncate(len),
            Err(_) => return None,
        }
    }
}

/// An actor from a process read through procfs (a kubelet found at start or at its exec).
pub fn process_actor(pid: u32, exe: Option<PathBuf>, argv: &[String]) -> Actor {
    let proc = format!("/proc/{pid}");
    let stat = fs::read_to_string(format!("{proc}/stat")).unwrap_or_default();
    // comm is in parentheses and may contain anything: take the fields after the last ')'.
    let (comm, rest) = match (stat.find('('), stat.rfind(')')) {
        (Some(a), Some(b)) if b > a => (stat[a + 1..b].to_string(), &stat[b + 1..]),
        _ => (String::new(), ""),
    };
    let ppid = rest
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let status = fs::read_to_string(format!("{proc}/status")).unwrap_or_default();
    let id = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or(0)
    };
    let uid = id("Uid:");
    Actor {
        pid,
        ppid,
        uid,
        user: user_name(uid),
        gid: id("Gid:"),
        comm,
        exe,
        cgroup_id: 0,
        container_id: fs::read_to_string(format!("{proc}/cgroup"))
            .ok()
            .and_then(|t| container_id(&t)),
        argv: Some(argv.to_vec()),
    }
}

/// The user name of `uid` from the node's user database. Every open and close record names
/// its actor, and getpwuid(3) reads and parses /etc/passwd each time (a profile of a
/// config-edit loop put it at ~8 % of the daemon's time), so names are kept for at most
/// [`USER_NAMES_FOR`]: within a burst of records, one lookup per uid. The uid itself is
/// always reported too, so a renamed user is at worst a second late in the name.
pub fn user_name(uid: u32) -> Option<String> {
    user_name_with(uid, std::time::Instant::now(), lookup_user)
}

const USER_NAMES_FOR: std::time::Duration = std::time::Duration::from_secs(1);

fn lookup_user(uid: u32) -> Option<String> {
    nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
        .ok()
        .flatten()
        .map(|u| u.name)
}

/// Names looked up since the instant they were first kept (all forgotten together).
type UserNames = Option<(
    std::time::Instant,
    std::collections::BTreeMap<u32, Option<String>>,
)>;

static USER_NAMES: std::sync::Mutex<UserNames> = std::sync::Mutex::new(None);

fn user_name_with(
    uid: u32,
    now: std::time::Instant,
    lookup: impl FnOnce(u32) -> Option<String>,
) -> Option<String> {
    let mut kept = USER_NAMES.lock().unwrap_or_else(|e| e.into_inner());
    if kept
        .as_ref()
        .is_none_or(|(since, _)| now.saturating_duration_since(*since) >= USER_NAMES_FOR)
    {
        *kept = Some((now, Default::default()));
    }
    let (_, names) = kept.as_mut().expect("set above");
    names.entry(uid).or_insert_with(|| lookup(uid)).clone()
}

/// A 64-hex-digit container id in a cgroup path (docker-<id>.scope, cri-containerd-<id>.scope,
/// crio-<id>.scope, /docker/<id>, /kubepods/.../<id>).
pub fn container_id(cgroup: &str) -> Option<String> {
    for line in cgroup.lines() {
        let path = line.rsplit(':').next().unwrap_or("");
        for part in path.split('/').rev() {
            let part = part.trim_end_matches(".scope");
            let id = part.rsplit(['-', ':']).next().unwrap_or(part);
            if id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Some(id.to_string());
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_names_are_kept_for_a_second_then_looked_up_again() {
        use std::time::{Duration, Instant};
        // A uid no other test looks up; the lookups are counted.
        let uid = 4_000_000_001;
        let t0 = Instant::now() + Duration::from_secs(3600);
        let calls = std::cell::Cell::new(0);
        let look = |name: &str| {
            let name = name.to_string();
            let calls = &calls;
            move |_| {
                calls.set(calls.get() + 1);
                Some(name)
            }
        };
        assert_eq!(user_name_with(uid, t0, look("a")).as_deref(), Some("a"));
        let later = t0 + Duration::from_millis(500);
        assert_eq!(user_name_with(uid, later, look("b")).as_deref(), Some("a"));
        assert_eq!(calls.get(), 1, "kept within the second");
        let next = t0 + Duration::from_millis(1500);
        assert_eq!(user_name_with(uid, next, look("b")).as_deref(), Some("b"));
        assert_eq!(calls.get(), 2, "looked up again after it");
        // The real database: root is root.
        assert_eq!(user_name(0).as_deref(), Some("root"));
    }

    #[test]
    fn container_ids() {
        let id = "a".repeat(64);
        for text in [
            format!("0::/system.slice/docker-{id}.scope"),
            format!("0::/kubepods.slice/kubepods-besteffort.slice/cri-containerd-{id}.scope"),
            format!("12:pids:/docker/{id}"),
            format!("0::/kubepods/burstable/pod1234/{id}"),
            format!("0::/crio-{id}.scope"),
        ] {
            assert_eq!(container_id(&text).as_deref(), Some(id.as_str()), "{text}");
        }
        assert_eq!(container_id("0::/user.slice/session-3.scope"), None);
        assert_eq!(container_id("0::/init.scope\n"), None);
    }

    /// A procfs file read in one piece equals `fs::read`, short or longer than the buffer.
    #[test]
    fn small_reads_are_whole() {
        let me = std::process::id();
        // (Not `status`: its counters move between two reads while other tests run.)
        for leaf in ["cmdline", "cgroup"] {
            let p = std::path::PathBuf::from(format!("/proc/{me}/{leaf}"));
            assert_eq!(read_small(&p), fs::read(&p).ok(), "{leaf}");
        }
        // Longer than the buffer: read in several pieces.
        let d = tempfile::tempdir().unwrap();
        let long: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(d.path().join("long"), &long).unwrap();
        assert_eq!(read_small(&d.path().join("long")), Some(long));
        assert_eq!(read_small(std::path::Path::new("/proc/0/cmdline")), None);
        let a = actor(&KernelActor {
            pid: me,
            tgid: me,
            ppid: 1,
            uid: 0,
            gid: 0,
            cgroup_id: 0,
            comm: b"x".to_vec(),
            exe: None,
        });
        assert_eq!(a.exe, fs::read_link("/proc/self/exe").ok());
        assert_eq!(
            a.argv,
            Some(
                std::env::args()
                    .filter(|s| !s.is_empty())
                    .collect::<Vec<_>>()
            )
        );
    }

    #[test]
    fn reads_own_process() {
        let me = std::process::id();
        let a = process_actor(me, None, &["x".into()]);
        assert_eq!(a.pid, me);
        assert!(a.ppid > 0);
        assert!(!a.comm.is_empty());
    }
}

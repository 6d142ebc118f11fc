//! Who did it: the actor of a kernel event, completed from /proc while the process may still
//! be there (exe, argv, container id) and from the node's user database (user name).

use std::{fs, path::PathBuf};

use crate::{decode::KernelActor, report::Actor};

/// Builds the report's actor from a kernel event's actor. Reads /proc/<tgid> once; every
/// read is best effort (a short-lived `sed` is often gone by now).
pub fn actor(a: &KernelActor) -> Actor {
    let proc = format!("/proc/{}", a.tgid);
    // /proc gives the whole path across mounts while the process lives; the kernel's walk,
    // taken at the event, still names a writer that is gone.
    let exe = fs::read_link(format!("{proc}/exe"))
        .ok()
        .or_else(|| a.exe.clone());
    let argv = fs::read(format!("{proc}/cmdline"))
        .ok()
        .filter(|b| !b.is_empty())
        .map(|b| {
            b.split(|&c| c == 0)
                .filter(|s| !s.is_empty())
                .map(|s| String::from_utf8_lossy(s).into_owned())
                .collect::<Vec<_>>()
        });
    let container_id = fs::read_to_string(format!("{proc}/cgroup"))
        .ok()
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

pub fn user_name(uid: u32) -> Option<String> {
    nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
        .ok()
        .flatten()
        .map(|u| u.name)
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

    #[test]
    fn reads_own_process() {
        let me = std::process::id();
        let a = process_actor(me, None, &["x".into()]);
        assert_eq!(a.pid, me);
        assert!(a.ppid > 0);
        assert!(!a.comm.is_empty());
    }
}

//! journald through its native protocol: one datagram per entry to
//! `/run/systemd/journal/socket`, values with newlines (or any control byte) in the
//! length-prefixed binary form, entries too large for a datagram in a sealed memfd passed with
//! SCM_RIGHTS (as `sd_journal_sendv` does).
//!
//! Written here rather than taken from a crate: `tracing-journald` prefixes or lowercases
//! field names and maps levels to fixed priorities, and `libsystemd::logging::journal_send`
//! hard-codes the socket path in a process-wide socket (so tests cannot aim it at a socket of
//! their own) and silently drops fields whose names it rejects. The protocol is small and
//! stable (systemd's "Native Journal Protocol" document); this is about a hundred lines.
//!
//! # Fields
//! `MESSAGE` (a plain sentence, control characters escaped so `journalctl --all` cannot be
//! turned into a terminal-escape vector), `PRIORITY`, `SYSLOG_IDENTIFIER=kubelet-drift`,
//! `MESSAGE_ID` (see [`message_id`]) and the structured fields under the one prefix
//! [`FIELD_PREFIX`] (`KUBELET_DRIFT_`), whose values are kept literally (any bytes; invalid
//! UTF-8 already became U+FFFD): CONTROL, STATUS, PREVIOUS_STATUS, CHANGE, EFFECTIVE,
//! SUBJECT, KUBELET_PID, KUBELET_ARGV, SOURCE, REASON, REMEDIATION, TRIGGER_OP, TRIGGER_PATH,
//! TRIGGER_PATH2 (absolute; TRIGGER_PATH_GIVEN, TRIGGER_PATH2_GIVEN instead for a relative
//! path whose directory is not known), ACTOR_PID, ACTOR_PPID, ACTOR_UID, ACTOR_GID, ACTOR_USER, ACTOR_COMM,
//! ACTOR_EXE, ACTOR_ARGV, ACTOR_CGROUP_ID, ACTOR_CONTAINER_ID, NODE, BENCHMARK, DISTRIBUTION; for
//! notices NOTICE_LEVEL. Fields whose value is unknown are left out.

use std::{
    io::Write,
    os::{fd::AsRawFd, unix::net::UnixDatagram},
    path::{Path, PathBuf},
    time::Duration,
};

use anyhow::Context;

use super::{
    Sink, effective_str, join_argv, sentence_escaped, source_str, status_str, subject_kind, text,
};
use crate::finding::path_text;
use crate::{
    finding::{Status, Subject},
    report::{Change, DriftReport, Notice, NoticeLevel},
};

/// journald's native-protocol socket.
pub const SOCKET: &str = "/run/systemd/journal/socket";
/// The one prefix of every structured field this program sends.
pub const FIELD_PREFIX: &str = "KUBELET_DRIFT_";
pub const SYSLOG_IDENTIFIER: &str = "kubelet-drift";

/// Fixed MESSAGE_IDs, one per [`Change`] kind and one for notices. Never change them: SIEM
/// rules and `deploy/kubelet-drift.catalog` key on them.
pub mod ids {
    pub const BASELINE: &str = "57f0334aef3b4015ad817e6892b639a0";
    pub const DRIFT_DETECTED: &str = "541a3c8fe1c0426da2cc6dc14e2a023a";
    pub const DRIFT_RESOLVED: &str = "bb981a007c7f416794a5eeeea74a8199";
    pub const ERROR_APPEARED: &str = "3cddebed27454e9fb71fb54435418097";
    pub const ERROR_CLEARED: &str = "9f06aa12143f4dbd88ae922370ae0dd4";
    pub const KUBELET_STARTED: &str = "ed39b754ccac4f6da51fc336889fb62b";
    pub const KUBELET_STOPPED: &str = "0f330fbfc05440f6852ec72e7cb0f375";
    pub const PENDING_DRIFT_APPEARED: &str = "ece56c1e3e5c4d888627a558d5bd2ba3";
    pub const PENDING_DRIFT_CLEARED: &str = "6dde1f65f51f488b964a330e7f500217";
    pub const IMPOSTOR_KUBELET: &str = "2f13445a34aa44f782956ba845f1e655";
    /// Operational notices (lost events, an output failing or recovering).
    pub const NOTICE: &str = "a6e07ff876d44dfbbb4fd3326f68df2f";
}

pub fn message_id(c: Change) -> &'static str {
    match c {
        Change::Baseline => ids::BASELINE,
        Change::DriftDetected => ids::DRIFT_DETECTED,
        Change::DriftResolved => ids::DRIFT_RESOLVED,
        Change::ErrorAppeared => ids::ERROR_APPEARED,
        Change::ErrorCleared => ids::ERROR_CLEARED,
        Change::KubeletStarted => ids::KUBELET_STARTED,
        Change::KubeletStopped => ids::KUBELET_STOPPED,
        Change::PendingDriftAppeared => ids::PENDING_DRIFT_APPEARED,
        Change::PendingDriftCleared => ids::PENDING_DRIFT_CLEARED,
        Change::ImpostorKubelet => ids::IMPOSTOR_KUBELET,
    }
}

/// syslog priority, ranked as OCSF severity ranks the status (fail High > error Medium >
/// pass Informational): fail 3 (err); error 4 (warning); a kubelet exit, or a change back
/// to pass, 5 (notice); a pass at baseline or at a kubelet's start 6 (info).
pub fn priority(r: &DriftReport) -> u8 {
    match (r.finding.status, r.change) {
        (_, Change::KubeletStopped) => 5,
        (Status::Fail, _) => 3,
        (Status::Error, _) => 4,
        (Status::Pass, Change::Baseline | Change::KubeletStarted) => 6,
        (Status::Pass, _) => 5,
    }
}

/// The entry for a report, in sending order. Names are field names as journald stores them.
pub fn fields(r: &DriftReport) -> Vec<(String, String)> {
    let f = &r.finding;
    let mut v: Vec<(String, String)> = vec![
        ("MESSAGE".into(), sentence_escaped(r)),
        ("PRIORITY".into(), priority(r).to_string()),
        ("SYSLOG_IDENTIFIER".into(), SYSLOG_IDENTIFIER.into()),
        ("MESSAGE_ID".into(), message_id(r.change).into()),
    ];
    let mut put = |k: &str, val: String| v.push((format!("{FIELD_PREFIX}{k}"), val));
    put("CONTROL", f.control.clone());
    put("STATUS", status_str(f.status).into());
    if let Some(p) = r.previous {
        put("PREVIOUS_STATUS", status_str(p).into());
    }
    put("CHANGE", r.change.as_str().into());
    put("EFFECTIVE", effective_str(f.effective).into());
    put("SUBJECT", subject_kind(&f.subject).into());
    if let Subject::Running { pid, .. } = &f.subject {
        put("KUBELET_PID", pid.to_string());
    }
    let argv = super::subject_argv(&f.subject);
    if !argv.is_empty() {
        put("KUBELET_ARGV", join_argv(argv));
    }
    put("SOURCE", source_str(&f.source));
    put("REASON", f.reason.clone());
    put("REMEDIATION", super::ocsf::remediation(r));
    put("TRIGGER_OP", r.trigger.op.as_str().into());
    // Absolute paths only; a relative one whose directory is not known is given as such.
    for (p, field, given) in [
        (&r.trigger.path, "TRIGGER_PATH", "TRIGGER_PATH_GIVEN"),
        (&r.trigger.path2, "TRIGGER_PATH2", "TRIGGER_PATH2_GIVEN"),
    ] {
        match super::placed(p.as_deref()) {
            (Some(p), _) => put(field, path_text(p).into_owned()),
            (_, Some(g)) => put(given, path_text(g).into_owned()),
            _ => {}
        }
    }
    if let Some(a) = &r.trigger.actor {
        put("ACTOR_PID", a.pid.to_string());
        put("ACTOR_PPID", a.ppid.to_string());
        put("ACTOR_UID", a.uid.to_string());
        put("ACTOR_GID", a.gid.to_string());
        if let Some(u) = &a.user {
            put("ACTOR_USER", u.clone());
        }
        put("ACTOR_COMM", a.comm.clone());
        if let Some(e) = &a.exe {
            put("ACTOR_EXE", path_text(e).into_owned());
        }
        if let Some(av) = &a.argv {
            put("ACTOR_ARGV", join_argv(av));
        }
        put("ACTOR_CGROUP_ID", a.cgroup_id.to_string());
        if let Some(c) = &a.container_id {
            put("ACTOR_CONTAINER_ID", c.clone());
        }
    }
    put("NODE", r.node.clone());
    put("BENCHMARK", r.benchmark.standard().into());
    if let Some(d) = &r.distribution {
        put("DISTRIBUTION", d.distribution.id().into());
    }
    v
}

pub fn notice_fields(n: &Notice) -> Vec<(String, String)> {
    let (prio, level) = match n.level {
        NoticeLevel::Info => (6, "info"),
        NoticeLevel::Warning => (4, "warning"),
        NoticeLevel::Error => (3, "error"),
    };
    vec![
        ("MESSAGE".into(), text::escape(&n.message)),
        ("PRIORITY".into(), prio.to_string()),
        ("SYSLOG_IDENTIFIER".into(), SYSLOG_IDENTIFIER.into()),
        ("MESSAGE_ID".into(), ids::NOTICE.into()),
        (format!("{FIELD_PREFIX}NOTICE_LEVEL"), level.into()),
    ]
}

/// Serializes an entry. Names are ours (constants, checked in debug builds); a value with a
/// newline or any other control byte goes in the binary form `NAME\n<u64 LE length>VALUE\n`,
/// so no value can end its field early and start another.
pub fn encode(fields: &[(String, String)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(512);
    for (k, v) in fields {
        debug_assert!(
            !k.is_empty()
                && !k.starts_with('_')
                && k.bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_'),
            "bad journald field name {k:?}"
        );
        out.extend_from_slice(k.as_bytes());
        if v.bytes().any(|b| b.is_ascii_control()) {
            out.push(b'\n');
            out.extend_from_slice(&(v.len() as u64).to_le_bytes());
        } else {
            out.push(b'=');
        }
        out.extend_from_slice(v.as_bytes());
        out.push(b'\n');
    }
    out
}

/// Sends to journald. Every send is bounded by a 1 s timeout, so a stuck journald cannot
/// block the daemon; a missing or refusing socket is an error for [`super::Outputs`] to report.
pub struct JournaldSink {
    path: PathBuf,
    sock: Option<UnixDatagram>,
}

impl Default for JournaldSink {
    fn default() -> Self {
        Self::new()
    }
}

impl JournaldSink {
    pub fn new() -> Self {
        Self::with_socket(SOCKET)
    }

    /// A sink that sends to another socket (tests, or a journal namespace's socket).
    pub fn with_socket(path: impl Into<PathBuf>) -> Self {
        JournaldSink {
            path: path.into(),
            sock: None,
        }
    }

    /// Whether journald's socket exists (for `outputs.journald: auto`).
    pub fn available() -> bool {
        Path::new(SOCKET).exists()
    }

    fn socket(&mut self) -> anyhow::Result<&UnixDatagram> {
        if self.sock.is_none() {
            let s = UnixDatagram::unbound().context("creating a datagram socket")?;
            s.set_write_timeout(Some(Duration::from_secs(1)))?;
            s.connect(&self.path)
                .with_context(|| format!("connecting to {}", self.path.display()))?;
            self.sock = Some(s);
        }
        Ok(self.sock.as_ref().expect("just set"))
    }

    pub fn send(&mut self, fields: &[(String, String)]) -> anyhow::Result<()> {
        let data = encode(fields);
        // journald may have restarted (new socket inode): one retry on a fresh socket.
        match self.send_once(&data) {
            Ok(()) => Ok(()),
            Err(_) => {
                self.sock = None;
                self.send_once(&data)
            }
        }
    }

    fn send_once(&mut self, data: &[u8]) -> anyhow::Result<()> {
        let path = self.path.clone();
        let sock = self.socket()?;
        match sock.send(data) {
            Ok(_) => Ok(()),
            Err(e) if matches!(e.raw_os_error(), Some(libc::EMSGSIZE) | Some(libc::ENOBUFS)) => {
                send_memfd(sock, data)
                    .with_context(|| format!("sending to {} via memfd", path.display()))
            }
            Err(e) => Err(e).with_context(|| format!("sending to {}", path.display())),
        }
    }
}

/// The large-entry path: the entry in a sealed memfd, its descriptor sent alone with
/// SCM_RIGHTS (journald only accepts sealed memfds).
fn send_memfd(sock: &UnixDatagram, data: &[u8]) -> anyhow::Result<()> {
    use std::os::fd::{FromRawFd, OwnedFd};
    // SAFETY: a NUL-terminated name and valid flags; the result is checked.
    let fd = unsafe {
        libc::memfd_create(
            c"kubelet-drift-journal".as_ptr(),
            libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING,
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error()).context("memfd_create");
    }
    // SAFETY: fd is a new descriptor we own.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let mut file = std::fs::File::from(fd);
    file.write_all(data).context("writing the memfd")?;
    let seals = libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE | libc::F_SEAL_SEAL;
    // SAFETY: plain fcntl on a valid descriptor.
    if unsafe { libc::fcntl(file.as_raw_fd(), libc::F_ADD_SEALS, seals) } < 0 {
        return Err(std::io::Error::last_os_error()).context("sealing the memfd");
    }
    let raw = file.as_raw_fd();
    // SAFETY: msghdr points at a control buffer big enough for one fd (CMSG_SPACE), filled
    // with the CMSG_* helpers; the socket is connected so msg_name stays null.
    unsafe {
        let space = libc::CMSG_SPACE(std::mem::size_of::<libc::c_int>() as u32) as usize;
        let mut cbuf = vec![0u8; space];
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_control = cbuf.as_mut_ptr().cast();
        msg.msg_controllen = space as _;
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        (*cmsg).cmsg_level = libc::SOL_SOCKET;
        (*cmsg).cmsg_type = libc::SCM_RIGHTS;
        (*cmsg).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<libc::c_int>() as u32) as _;
        std::ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<libc::c_int>(), raw);
        if libc::sendmsg(sock.as_raw_fd(), &msg, libc::MSG_NOSIGNAL) < 0 {
            return Err(std::io::Error::last_os_error()).context("sendmsg with SCM_RIGHTS");
        }
    }
    Ok(())
}

impl Sink for JournaldSink {
    fn report(&mut self, r: &DriftReport) -> anyhow::Result<()> {
        self.send(&fields(r))
    }
    fn notice(&mut self, n: &Notice) -> anyhow::Result<()> {
        self.send(&notice_fields(n))
    }
}

/// Parses an entry as journald does (tests; the integration harness uses the real journald).
pub fn parse_entry(mut b: &[u8]) -> Result<Vec<(String, Vec<u8>)>, String> {
    let mut out = Vec::new();
    while !b.is_empty() {
        let nl = b.iter().position(|&c| c == b'\n').ok_or("no newline")?;
        let line = &b[..nl];
        if let Some(eq) = line.iter().position(|&c| c == b'=') {
            out.push((
                String::from_utf8_lossy(&line[..eq]).into_owned(),
                line[eq + 1..].to_vec(),
            ));
            b = &b[nl + 1..];
        } else {
            let name = String::from_utf8_lossy(line).into_owned();
            let rest = &b[nl + 1..];
            if rest.len() < 8 {
                return Err("short length".into());
            }
            let len = u64::from_le_bytes(rest[..8].try_into().unwrap()) as usize;
            let body = rest.get(8..8 + len).ok_or("short value")?;
            if rest.get(8 + len) != Some(&b'\n') {
                return Err("value not followed by newline".into());
            }
            out.push((name, body.to_vec()));
            b = &rest[8 + len + 1..];
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::os::fd::FromRawFd;

    use super::*;
    use crate::output::testutil::{self, ALL_CHANGES, HOSTILE};

    fn get<'a>(f: &'a [(String, Vec<u8>)], k: &str) -> Vec<&'a [u8]> {
        f.iter()
            .filter(|(n, _)| n == k)
            .map(|(_, v)| v.as_slice())
            .collect()
    }

    #[test]
    fn message_ids_are_distinct_128_bit_lowercase_hex() {
        let mut all: Vec<&str> = ALL_CHANGES.iter().map(|c| message_id(*c)).collect();
        all.push(ids::NOTICE);
        for id in &all {
            assert_eq!(id.len(), 32);
            assert!(
                id.bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
            );
        }
        let n = all.len();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), n);
    }

    #[test]
    fn catalog_covers_every_message_id() {
        let cat = include_str!("../../../deploy/kubelet-drift.catalog");
        for c in ALL_CHANGES {
            assert!(cat.contains(&format!("-- {}\n", message_id(c))), "{c:?}");
        }
        assert!(cat.contains(&format!("-- {}\n", ids::NOTICE)));
        // Every @FIELD@ the catalog substitutes is one we send.
        let sent: Vec<String> = fields(&testutil::report(Change::DriftDetected))
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        for part in cat.split('@').skip(1).step_by(2) {
            assert!(
                sent.iter().any(|k| k == part) || part == "KUBELET_DRIFT_NOTICE_LEVEL",
                "catalog uses @{part}@ which is never sent"
            );
        }
    }

    /// journald's own catalog compiler accepts the file and lists every MESSAGE_ID (what
    /// `journalctl --update-catalog` does when the .deb is installed).
    #[test]
    fn journalctl_compiles_the_catalog() {
        use std::process::Command;
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("usr/lib/systemd/catalog");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::create_dir_all(root.path().join("var/lib/systemd/catalog")).unwrap();
        std::fs::write(
            dir.join("kubelet-drift.catalog"),
            include_str!("../../../deploy/kubelet-drift.catalog"),
        )
        .unwrap();
        let run = |args: &[&str]| {
            let out = Command::new("journalctl")
                .arg(format!("--root={}", root.path().display()))
                .args(args)
                .output()
                .expect("journalctl (apt-get install systemd)");
            assert!(out.status.success(), "journalctl {args:?}: {out:?}");
            String::from_utf8(out.stdout).unwrap()
        };
        run(&["--update-catalog"]);
        let listed = run(&["--list-catalog"]);
        for id in ALL_CHANGES.map(message_id).iter().chain([&ids::NOTICE]) {
            assert!(
                listed.contains(&format!("{id} kubelet-drift: ")),
                "{id} not in:\n{listed}"
            );
        }
    }

    #[test]
    fn a_relative_trigger_path_is_given_not_placed() {
        let field = |r: &DriftReport, k: &str| {
            fields(r)
                .into_iter()
                .find(|(n, _)| n == &format!("KUBELET_DRIFT_{k}"))
                .map(|(_, v)| v)
        };
        let mut r = testutil::report(Change::DriftDetected);
        assert_eq!(
            field(&r, "TRIGGER_PATH").as_deref(),
            Some("/var/lib/kubelet/config.yaml")
        );
        assert_eq!(field(&r, "TRIGGER_PATH_GIVEN"), None);
        r.trigger.path = Some("./sedAb12".into());
        r.trigger.path2 = Some("config.yaml".into());
        assert_eq!(field(&r, "TRIGGER_PATH"), None);
        assert_eq!(field(&r, "TRIGGER_PATH2"), None);
        assert_eq!(
            field(&r, "TRIGGER_PATH_GIVEN").as_deref(),
            Some("./sedAb12")
        );
        assert_eq!(
            field(&r, "TRIGGER_PATH2_GIVEN").as_deref(),
            Some("config.yaml")
        );
    }

    #[test]
    fn priorities() {
        let p = |c| priority(&testutil::report(c));
        assert_eq!(p(Change::DriftDetected), 3);
        assert_eq!(p(Change::ErrorAppeared), 4);
        assert_eq!(p(Change::DriftResolved), 5);
        assert_eq!(p(Change::Baseline), 6);
        let mut r = testutil::report(Change::Baseline);
        r.finding.status = Status::Fail;
        assert_eq!(priority(&r), 3);
        // The same order as OCSF severity: a fail ranks above an error in both.
        let rank = |s: Status| {
            let mut r = testutil::report(Change::Baseline);
            r.finding.status = s;
            (
                priority(&r),
                crate::output::ocsf::to_ocsf(&r)["severity_id"]
                    .as_u64()
                    .unwrap(),
            )
        };
        let (pf, sf) = rank(Status::Fail);
        let (pe, se) = rank(Status::Error);
        let (pp, sp) = rank(Status::Pass);
        assert!(pf < pe && pe < pp, "journald: lower is more severe");
        assert!(sf > se && se > sp, "OCSF: higher is more severe");
    }

    #[test]
    fn every_change_encodes_and_field_names_are_valid() {
        for c in ALL_CHANGES {
            let r = testutil::report(c);
            let f = fields(&r);
            let d = parse_entry(&encode(&f)).unwrap();
            assert_eq!(d.len(), f.len());
            for (k, _) in &d {
                assert!(
                    k.bytes()
                        .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
                );
                assert!(!k.starts_with('_'));
                assert!(
                    k.starts_with(FIELD_PREFIX)
                        || ["MESSAGE", "PRIORITY", "SYSLOG_IDENTIFIER", "MESSAGE_ID"]
                            .contains(&k.as_str())
                );
            }
            assert_eq!(get(&d, "MESSAGE_ID"), vec![message_id(c).as_bytes()]);
            assert_eq!(get(&d, "KUBELET_DRIFT_CHANGE"), vec![c.as_str().as_bytes()]);
        }
    }

    #[test]
    fn hostile_values_cannot_forge_fields() {
        let r = testutil::hostile_report(Change::DriftDetected);
        let d = parse_entry(&encode(&fields(&r))).unwrap();
        assert_eq!(get(&d, "PRIORITY"), vec![b"3".as_slice()]);
        assert_eq!(get(&d, "KUBELET_DRIFT_STATUS"), vec![b"fail".as_slice()]);
        assert_eq!(get(&d, "KUBELET_DRIFT_NODE"), vec![HOSTILE.as_bytes()]);
        assert_eq!(
            get(&d, "KUBELET_DRIFT_REMEDIATION"),
            vec![HOSTILE.as_bytes()]
        );
        assert_eq!(
            get(&d, "KUBELET_DRIFT_ACTOR_USER"),
            vec![HOSTILE.as_bytes()]
        );
        let path = String::from_utf8(get(&d, "KUBELET_DRIFT_TRIGGER_PATH")[0].to_vec()).unwrap();
        assert_eq!(path, "/etc/\\xff\x1b[31mk\nPRIORITY=0");
        let msg = get(&d, "MESSAGE")[0];
        assert!(
            !msg.iter().any(|b| b.is_ascii_control()),
            "{:?}",
            String::from_utf8_lossy(msg)
        );
        assert!(get(&d, "X").is_empty());
    }

    fn recv_entry(rx: &UnixDatagram) -> Vec<u8> {
        // Receive with room for one descriptor, like journald does.
        let mut buf = vec![0u8; 1 << 16];
        let mut cbuf = [0u8; 64];
        let mut iov = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        // SAFETY: buffers outlive the call; results checked.
        unsafe {
            let mut msg: libc::msghdr = std::mem::zeroed();
            msg.msg_iov = &mut iov;
            msg.msg_iovlen = 1;
            msg.msg_control = cbuf.as_mut_ptr().cast();
            msg.msg_controllen = cbuf.len() as _;
            let n = libc::recvmsg(rx.as_raw_fd(), &mut msg, 0);
            assert!(n >= 0, "{}", std::io::Error::last_os_error());
            let cmsg = libc::CMSG_FIRSTHDR(&msg);
            if cmsg.is_null() {
                buf.truncate(n as usize);
                return buf;
            }
            assert_eq!((*cmsg).cmsg_type, libc::SCM_RIGHTS);
            let fd = std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast::<libc::c_int>());
            let seals = libc::fcntl(fd, libc::F_GET_SEALS);
            assert!(seals & libc::F_SEAL_WRITE != 0, "memfd must be sealed");
            let mut f = std::fs::File::from_raw_fd(fd);
            // The descriptor shares the sender's file offset (at the end): read from 0, as
            // journald does (it maps the file).
            std::io::Seek::seek(&mut f, std::io::SeekFrom::Start(0)).unwrap();
            let mut v = Vec::new();
            std::io::Read::read_to_end(&mut f, &mut v).unwrap();
            assert_eq!(n, 0, "memfd entries carry no payload");
            v
        }
    }

    #[test]
    fn sends_datagrams_and_memfd_for_large_entries() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("socket");
        let rx = UnixDatagram::bind(&path).unwrap();
        let mut sink = JournaldSink::with_socket(&path);

        let r = testutil::hostile_report(Change::DriftDetected);
        sink.report(&r).unwrap();
        let d = parse_entry(&recv_entry(&rx)).unwrap();
        assert_eq!(get(&d, "KUBELET_DRIFT_NODE"), vec![HOSTILE.as_bytes()]);

        let mut big = testutil::report(Change::ErrorAppeared);
        big.finding.reason = "r".repeat(1 << 20);
        sink.report(&big).unwrap();
        let raw = recv_entry(&rx);
        let d = parse_entry(&raw).unwrap();
        let names: Vec<_> = d.iter().map(|(k, v)| (k.clone(), v.len())).collect();
        assert_eq!(
            get(&d, "KUBELET_DRIFT_REASON").first().map(|v| v.len()),
            Some(1 << 20),
            "{} {names:?}",
            raw.len()
        );
        assert_eq!(get(&d, "PRIORITY"), vec![b"4".as_slice()]);
    }

    #[test]
    fn missing_socket_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let mut sink = JournaldSink::with_socket(dir.path().join("nope"));
        assert!(sink.report(&testutil::report(Change::Baseline)).is_err());
        // A socket that was there and went away (journald stopped): refused, not blocked.
        let path = dir.path().join("socket");
        let rx = UnixDatagram::bind(&path).unwrap();
        let mut sink = JournaldSink::with_socket(&path);
        sink.notice(&Notice {
            level: NoticeLevel::Info,
            message: "hi".into(),
        })
        .unwrap();
        drop(rx);
        assert!(sink.report(&testutil::report(Change::Baseline)).is_err());
    }
}

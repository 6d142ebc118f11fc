//! A real systemd-journald for integration tests, in a journal namespace of its own.
//!
//! `systemd-journald NAMESPACE` (systemd >= 245) binds its own sockets under
//! `/run/systemd/journal.NAMESPACE/` and keeps its entries apart (`journalctl
//! --namespace=NAMESPACE`), so tests neither need systemd as PID 1 nor a private mount
//! namespace, never see the machine's other entries, and can run in parallel (one namespace
//! per [`Journald`]). A drop-in `/run/systemd/journald@NAMESPACE.conf` makes it volatile and
//! unrate-limited. Everything is removed on drop.
//!
//! Needs root and `/lib/systemd/systemd-journald`; [`Journald::start`] fails, saying which,
//! when either is missing: a test that cannot run fails rather than looking passed.

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::atomic::{AtomicUsize, Ordering},
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use serde_json::{Map, Value};

const JOURNALD: &str = "/lib/systemd/systemd-journald";

pub struct Journald {
    ns: String,
    child: Child,
}

/// One journal entry as `journalctl -o json` gives it.
pub type Entry = Map<String, Value>;

impl Journald {
    pub fn start() -> anyhow::Result<Journald> {
        // SAFETY: geteuid has no preconditions.
        // A test that cannot run must fail, not look passed.
        if unsafe { libc::geteuid() } != 0 {
            anyhow::bail!("the journald harness needs root");
        }
        if !Path::new(JOURNALD).exists() {
            anyhow::bail!("{JOURNALD} is missing (apt-get install systemd)");
        }
        static N: AtomicUsize = AtomicUsize::new(0);
        let ns = format!(
            "kdtest{}x{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        std::fs::create_dir_all("/run/systemd")?;
        std::fs::write(
            conf_path(&ns),
            "[Journal]\nStorage=volatile\nRateLimitBurst=0\nReadKMsg=no\nForwardToSyslog=no\nForwardToWall=no\n",
        )?;
        let child = Command::new(JOURNALD)
            .arg(&ns)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {JOURNALD} {ns}"))?;
        let j = Journald { ns, child };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !j.socket().exists() {
            if Instant::now() > deadline {
                bail!("{} did not appear", j.socket().display());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        j.sync()?;
        Ok(j)
    }

    pub fn namespace(&self) -> &str {
        &self.ns
    }

    /// The native-protocol socket to send to (`JournaldSink::with_socket`).
    pub fn socket(&self) -> PathBuf {
        PathBuf::from(format!("/run/systemd/journal.{}/socket", self.ns))
    }

    /// Returns once journald has written everything it received.
    pub fn sync(&self) -> anyhow::Result<()> {
        let st = Command::new("journalctl")
            .arg(format!("--namespace={}", self.ns))
            .arg("--sync")
            .stdout(Stdio::null())
            .status()?;
        if !st.success() {
            bail!("journalctl --sync failed ({st})");
        }
        Ok(())
    }

    /// Entries matching `matches` (`FIELD=value`, as journalctl takes them), all fields in
    /// full (`--all`: large and binary values too).
    pub fn entries(&self, matches: &[&str]) -> anyhow::Result<Vec<Entry>> {
        self.sync()?;
        let out = Command::new("journalctl")
            .arg(format!("--namespace={}", self.ns))
            .args(["--all", "--no-pager", "-o", "json"])
            .args(matches)
            .output()?;
        if !out.status.success() {
            bail!(
                "journalctl failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        String::from_utf8(out.stdout)?
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| Ok(serde_json::from_str::<Entry>(l)?))
            .collect()
    }

    /// Polls until at least `n` entries match, or the timeout.
    pub fn wait_for(
        &self,
        matches: &[&str],
        n: usize,
        timeout: Duration,
    ) -> anyhow::Result<Vec<Entry>> {
        let deadline = Instant::now() + timeout;
        loop {
            let e = self.entries(matches)?;
            if e.len() >= n || Instant::now() > deadline {
                return Ok(e);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// The values of a field of an entry, as bytes. journalctl gives a string for printable
/// UTF-8, an array of byte numbers otherwise, and an array of those when the field repeats.
pub fn field(e: &Entry, name: &str) -> Vec<Vec<u8>> {
    fn one(v: &Value) -> Option<Vec<u8>> {
        match v {
            Value::String(s) => Some(s.as_bytes().to_vec()),
            Value::Array(a) if a.iter().all(Value::is_u64) => {
                Some(a.iter().map(|b| b.as_u64().unwrap_or(0) as u8).collect())
            }
            _ => None,
        }
    }
    match e.get(name) {
        None | Some(Value::Null) => vec![],
        Some(v) => match one(v) {
            Some(b) => vec![b],
            None => v
                .as_array()
                .map(|a| a.iter().filter_map(one).collect())
                .unwrap_or_default(),
        },
    }
}

fn conf_path(ns: &str) -> PathBuf {
    PathBuf::from(format!("/run/systemd/journald@{ns}.conf"))
}

impl Drop for Journald {
    fn drop(&mut self) {
        // SAFETY: signalling our own child by its pid.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM);
        }
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(format!("/run/systemd/journal.{}", self.ns));
        let _ = std::fs::remove_file(conf_path(&self.ns));
        for base in ["/run/log/journal", "/var/log/journal"] {
            if let Ok(rd) = std::fs::read_dir(base) {
                for d in rd.flatten() {
                    if d.file_name()
                        .to_string_lossy()
                        .ends_with(&format!(".{}", self.ns))
                    {
                        let _ = std::fs::remove_dir_all(d.path());
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use kubelet_drift::{
        output::{
            Sink,
            journald::JournaldSink,
            testutil::{self, HOSTILE},
        },
        report::{Change, DriftReport, Notice, NoticeLevel},
    };

    use super::*;

    /// The shared fixture, with this reason, a hostile remediation and a hostile comm.
    fn report(reason: String) -> DriftReport {
        let mut r = testutil::report(Change::DriftDetected);
        r.finding.reason = reason;
        r.finding.remediation = HOSTILE.into();
        if let Some(a) = r.trigger.actor.as_mut() {
            a.comm = "\x1b[2Jsed".into();
        }
        r.time = SystemTime::now();
        r
    }

    #[test]
    fn real_journald_keeps_hostile_values_in_one_field_and_takes_memfd_entries() {
        let j = Journald::start().unwrap();
        let mut sink = JournaldSink::with_socket(j.socket());
        sink.report(&report("line 3 sets it false".into())).unwrap();
        // Over any datagram limit: goes through the sealed-memfd path.
        sink.report(&report("r".repeat(1 << 20))).unwrap();
        sink.notice(&Notice {
            level: NoticeLevel::Warning,
            message: "lost 3 events".into(),
        })
        .unwrap();

        let e = j
            .wait_for(
                &["SYSLOG_IDENTIFIER=kubelet-drift"],
                3,
                Duration::from_secs(10),
            )
            .unwrap();
        assert_eq!(e.len(), 3, "{e:?}");
        let first = &e[0];
        assert_eq!(field(first, "PRIORITY"), vec![b"3".to_vec()]);
        assert_eq!(field(first, "KUBELET_DRIFT_STATUS"), vec![b"fail".to_vec()]);
        assert_eq!(
            field(first, "KUBELET_DRIFT_REMEDIATION"),
            vec![HOSTILE.as_bytes().to_vec()]
        );
        assert_eq!(
            field(first, "MESSAGE_ID"),
            vec![b"541a3c8fe1c0426da2cc6dc14e2a023a".to_vec()]
        );
        assert_eq!(
            field(first, "KUBELET_DRIFT_ACTOR_COMM"),
            vec![b"\x1b[2Jsed".to_vec()]
        );
        let msg = &field(first, "MESSAGE")[0];
        assert!(!msg.contains(&0x1b), "{}", String::from_utf8_lossy(msg));
        assert_eq!(field(&e[1], "KUBELET_DRIFT_REASON")[0].len(), 1 << 20);
        assert_eq!(
            field(&e[2], "KUBELET_DRIFT_NOTICE_LEVEL"),
            vec![b"warning".to_vec()]
        );
        // Matching by a field works as a SIEM query would.
        let m = j.entries(&["KUBELET_DRIFT_CHANGE=drift_detected"]).unwrap();
        assert_eq!(m.len(), 2);
    }

    #[test]
    fn stopped_journald_is_an_error_not_a_hang() {
        let j = Journald::start().unwrap();
        let path = j.socket();
        let mut sink = JournaldSink::with_socket(&path);
        sink.report(&report("ok".into())).unwrap();
        drop(j);
        assert!(sink.report(&report("gone".into())).is_err());
    }
}

//! The OCSF lifecycle of findings: Create on first sight, Update on every later line about
//! the same finding, Close only when its subject is gone, and never Create twice, across
//! restarts of the daemon too.
//!
//! The open findings (their last OCSF line) are kept in a small state file, written
//! atomically (a temporary file, fsync, rename) under an advisory lock after every line, and
//! read at start. A missing, unreadable or corrupt file is an empty state (its findings are
//! Created again: a duplicate Create, never a lost finding). Entries are per node, so daemons
//! sharing the file (tests) do not touch each other's. At the first line about a node, its
//! open findings whose kubelet process ended while the daemon was down (another boot, or no
//! process with that pid and start time) are closed.

use std::{
    collections::{BTreeMap, BTreeSet},
    fs,
    io::Write,
    os::{fd::AsRawFd, unix::fs::OpenOptionsExt},
    path::{Path, PathBuf},
    sync::{Arc, OnceLock},
    time::SystemTime,
};

use serde_json::{Value, json};

use super::ocsf::{event_uid, set_activity};

/// The directory of the default state file; the file is used only when the directory exists
/// (the package's and the DaemonSet's `StateDirectory=` / hostPath).
pub const STATE_DIR: &str = "/var/lib/kubelet-drift";
pub const STATE_FILE: &str = "state.json";
/// A bigger file is not ours (or not sane): ignored.
const MAX_STATE_BYTES: u64 = 4 << 20;

/// `/var/lib/kubelet-drift/state.json` when the directory exists.
pub fn default_state_path() -> Option<PathBuf> {
    let dir = Path::new(STATE_DIR);
    dir.is_dir().then(|| dir.join(STATE_FILE))
}

/// A line the lifecycle keeps: the bytes the JSON output wrote, or a value (a line read from
/// the state file, or given as a value). Bytes are parsed only when the line is looked into
/// (the state file, a Close after a restart, a restart's baseline), never on the way to the
/// output.
pub struct Kept {
    text: Option<Vec<u8>>,
    value: OnceLock<Value>,
}

impl Kept {
    /// A line as written (its newline included).
    pub fn line(text: Vec<u8>) -> Kept {
        Kept {
            text: Some(text),
            value: OnceLock::new(),
        }
    }

    fn of_value(v: Value) -> Kept {
        Kept {
            text: None,
            value: OnceLock::from(v),
        }
    }

    /// The bytes to write, when it was made as bytes.
    pub fn text(&self) -> Option<&[u8]> {
        self.text.as_deref()
    }

    pub fn value(&self) -> &Value {
        self.value.get_or_init(|| {
            // Our own serializer's output: it parses (Null would only make it a finding
            // of no node, Created again after a restart).
            self.text
                .as_deref()
                .and_then(|t| serde_json::from_slice(t).ok())
                .unwrap_or(Value::Null)
        })
    }
}

pub struct Lifecycle {
    path: Option<PathBuf>,
    /// Finding uid -> the last line written about it, for every open finding of every node.
    /// Shared, so that [`Lifecycle::snapshot`] (taken before every line) copies no line.
    open: BTreeMap<String, Arc<Kept>>,
    /// Nodes whose findings left open by an earlier run were checked.
    checked: Vec<String>,
    /// Open findings read from the state file that no line of this run was about yet: the
    /// daemon's baseline about one of them is written only if something changed.
    carried: BTreeSet<String>,
    /// Why the state file could not be read or written (told once by the caller).
    pub problem: Option<String>,
}

fn node_of(v: &Value) -> &str {
    v["device"]["hostname"].as_str().unwrap_or("")
}

impl Lifecycle {
    /// The lifecycle kept in `path` (`None`: in memory only).
    pub fn new(path: Option<PathBuf>) -> Lifecycle {
        let mut l = Lifecycle {
            path,
            open: BTreeMap::new(),
            checked: Vec::new(),
            carried: BTreeSet::new(),
            problem: None,
        };
        if let Some(p) = &l.path {
            match read_state(p) {
                Ok(open) => {
                    l.carried = open.keys().cloned().collect();
                    l.open = open
                        .into_iter()
                        .map(|(k, v)| (k, Arc::new(Kept::of_value(v))))
                        .collect();
                }
                Err(e) => {
                    l.problem = Some(format!(
                        "state file {}: {e}: read as empty, so the findings it held may be Created again; it is rewritten with the next line",
                        p.display()
                    ))
                }
            }
        }
        l
    }

    /// Sets the activity of `v` (a finding line about to be written; `gone`: its subject is
    /// gone) and returns the Close lines to write before it (this node's findings whose
    /// kubelet ended while the daemon was not running) and whether `v` itself is to be
    /// written: the daemon's baseline about a finding an earlier run left open, with nothing
    /// changed since, is not (a restart of the daemon is no event of the finding).
    pub fn apply(&mut self, v: &mut Value, gone: bool) -> (Vec<Value>, bool) {
        let node = node_of(v).to_string();
        let uid = v["finding_info"]["uid"].as_str().unwrap_or("").to_string();
        let (closes, activity) = self.decide(&node, &uid, gone, |o| {
            is_restart_baseline(v) && state_of(o) == state_of(v)
        });
        let Some(activity) = activity else {
            return (closes, false);
        };
        set_activity(v, activity);
        if !gone {
            self.open.insert(uid, Arc::new(Kept::of_value(v.clone())));
        }
        (closes, true)
    }

    /// [`Lifecycle::apply`] for a line made as bytes by `render(activity)` (the JSON
    /// output's typed lines) about finding `uid` of `node`; `restart_baseline`: it is the
    /// daemon's own baseline at its start. Returns the Close lines and the line to write
    /// (kept, not copied, as the finding's last line), `None` when it is not to be written.
    /// `render` is called once, or twice for a restart's baseline about a finding an earlier
    /// run left open (its state is compared with the open one's first).
    pub fn apply_line<E>(
        &mut self,
        node: &str,
        uid: &str,
        gone: bool,
        restart_baseline: bool,
        mut render: impl FnMut(u32) -> Result<Vec<u8>, E>,
    ) -> Result<(Vec<Value>, Option<Arc<Kept>>), E> {
        let mut failed = None;
        let (closes, activity) = self.decide(node, uid, gone, |o| {
            restart_baseline
                && match render(0) {
                    Ok(text) => state_of(o) == state_of(Kept::line(text).value()),
                    Err(e) => {
                        failed = Some(e);
                        false
                    }
                }
        });
        if let Some(e) = failed {
            return Err(e);
        }
        let Some(activity) = activity else {
            return Ok((closes, None));
        };
        let line = Arc::new(Kept::line(render(activity)?));
        if !gone {
            self.open.insert(uid.to_string(), line.clone());
        }
        Ok((closes, Some(line)))
    }

    /// The Close lines to write before a line about finding `uid` of `node`, and that line's
    /// activity (`None`: not to be written, when `unchanged` says an open finding an earlier
    /// run left is as the line says).
    fn decide(
        &mut self,
        node: &str,
        uid: &str,
        gone: bool,
        unchanged: impl FnOnce(&Value) -> bool,
    ) -> (Vec<Value>, Option<u32>) {
        let mut closes = Vec::new();
        if !self.checked.iter().any(|c| c == node) {
            self.checked.push(node.to_string());
            let stale: Vec<String> = self
                .open
                .iter()
                .filter(|(_, o)| node_of(o.value()) == node && !alive(o.value()))
                .map(|(k, _)| k.clone())
                .collect();
            for k in stale {
                if let Some(o) = self.open.remove(&k) {
                    closes.push(closed(o.value().clone()));
                }
            }
        }
        if self.carried.remove(uid) && self.open.get(uid).is_some_and(|o| unchanged(o.value())) {
            return (closes, None);
        }
        let activity = if gone {
            self.open.remove(uid);
            3
        } else if self.open.contains_key(uid) {
            2
        } else {
            1
        };
        (closes, Some(activity))
    }

    /// What [`Lifecycle::apply`] changes, to put back when the lines could not be written.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot(
            self.open.clone(),
            self.checked.clone(),
            self.carried.clone(),
        )
    }

    pub fn restore(&mut self, s: Snapshot) {
        Snapshot(self.open, self.checked, self.carried) = s;
    }

    /// Writes this node's open findings to the state file (after the lines were written),
    /// keeping the other nodes' as the file has them.
    pub fn save(&mut self, node: &str) {
        let Some(path) = self.path.clone() else {
            return;
        };
        if let Err(e) = self.save_to(&path, node) {
            self.problem = Some(format!(
                "state file {}: {e}: the OCSF finding lifecycle is kept in memory only (a restart may Create open findings again)",
                path.display()
            ));
        }
    }

    fn save_to(&self, path: &Path, node: &str) -> std::io::Result<()> {
        let lock = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(path.with_extension("lock"))?;
        // SAFETY: flock on a descriptor we own; released when it is closed.
        if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        let mut all = read_state(path).unwrap_or_default();
        all.retain(|_, v| node_of(v) != node);
        all.extend(
            self.open
                .iter()
                .filter(|(_, v)| node_of(v.value()) == node)
                .map(|(k, v)| (k.clone(), v.value().clone())),
        );
        let tmp = path.with_extension("tmp");
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(&serde_json::to_vec(&json!({"version": 1, "open": all}))?)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    }
}

/// What [`Lifecycle::snapshot`] keeps.
pub struct Snapshot(BTreeMap<String, Arc<Kept>>, Vec<String>, BTreeSet<String>);

/// The line is the daemon's own baseline at its start (not a resync to an output that
/// missed records, which restates on purpose).
fn is_restart_baseline(v: &Value) -> bool {
    v["unmapped"]["change"] == "baseline" && v["unmapped"]["trigger"]["op"] == "baseline"
}

/// What a finding says, without when and why it was written: a baseline equal to the last
/// line an earlier run wrote says nothing new. The reason's wording is left out (a kubelet
/// seen starting by one run is "already running" to the next); what decided is in `source`
/// (the file and line, the flag, the default).
fn state_of(v: &Value) -> Value {
    let u = &v["unmapped"];
    let mut subject = u["subject"].clone();
    if let Some(o) = subject.as_object_mut() {
        // Evaluated against the files as they are now, as at every daemon start.
        o.remove("evaluated_late");
    }
    json!([
        v["compliance"]["status_id"],
        u["effective"],
        u["source"],
        subject,
        v["resources"][0]["uid"],
        u["benchmark"],
    ])
}

/// The open findings a state file holds. Missing is empty; corrupt is an error.
fn read_state(path: &Path) -> std::io::Result<BTreeMap<String, Value>> {
    let bytes = match fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(e) => return Err(e),
        Ok(m) if !m.is_file() || m.len() > MAX_STATE_BYTES => {
            return Err(std::io::Error::other("not a regular file of a sane size"));
        }
        Ok(_) => fs::read(path)?,
    };
    let v: Value = serde_json::from_slice(&bytes).map_err(std::io::Error::other)?;
    match v.get("open").and_then(Value::as_object) {
        Some(o) if v["version"] == 1 => Ok(o
            .iter()
            .filter(|(_, v)| v.is_object())
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()),
        _ => Err(std::io::Error::other("not a kubelet-drift state file")),
    }
}

/// Whether the kubelet process a finding line is about still runs (findings about anything
/// but a running kubelet never end this way).
fn alive(v: &Value) -> bool {
    let r = &v["resources"][0];
    if r["type"] != "Kubelet Process" {
        return true;
    }
    let d = &r["data"];
    let (Some(pid), Some(start)) = (d["pid"].as_u64(), d["start_time"].as_u64()) else {
        return false;
    };
    d["boot_id"] == crate::finding::boot_id() && start_time(pid) == Some(start)
}

/// `/proc/<pid>/stat` field 22.
pub fn start_time(pid: u64) -> Option<u64> {
    let s = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The comm (field 2) may hold spaces and parentheses: count from the last ')'.
    s.rsplit_once(')')?
        .1
        .split_whitespace()
        .nth(19)?
        .parse()
        .ok()
}

/// The Close line for a finding whose kubelet ended while the daemon was not running.
fn closed(mut v: Value) -> Value {
    set_activity(&mut v, 3);
    let time_ms = SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    let pid = v["resources"][0]["data"]["pid"].clone();
    v["time"] = json!(time_ms);
    v["status_id"] = json!(99);
    v["status"] = json!("Closed");
    v["metadata"]["uid"] = json!(event_uid());
    v["message"] = json!(format!(
        "CIS {} kubelet stopped: kubelet (pid {pid}) ended while kubelet-drift was not running; its finding is closed",
        v["compliance"]["control"].as_str().unwrap_or("")
    ));
    v["unmapped"]["change"] = json!("kubelet_stopped");
    v["unmapped"]["previous_status"] = json!(
        v["compliance"]["status"]
            .as_str()
            .unwrap_or("")
            .to_lowercase()
    );
    // Found at the daemon's start, as its baseline is: no process to name.
    v["unmapped"]["trigger"] = json!({"op": "baseline", "path": null, "path2": null});
    if let Some(o) = v.as_object_mut() {
        o.remove("actor");
        o.remove("container");
    }
    // Nothing acted: the actor's observables and the container profile go with it.
    if let Some(obs) = v["observables"].as_array_mut() {
        obs.retain(|o| !o["name"].as_str().is_some_and(|n| n.starts_with("actor.")));
    }
    v["metadata"]["profiles"] = json!(["host"]);
    if let Some(u) = v["unmapped"].as_object_mut() {
        u.remove("actor");
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        finding::{Status, Subject},
        output::{ocsf::to_ocsf, testutil},
        report::Change,
    };

    fn line(change: Change, subject: Option<Subject>, node: &str) -> Value {
        let mut r = testutil::report(change);
        if let Some(s) = subject {
            r.finding.subject = s;
        }
        if change == Change::DriftResolved {
            r.finding.status = Status::Pass;
        }
        r.node = node.into();
        to_ocsf(&r)
    }

    fn me() -> Subject {
        // This test process: alive, with its real start time.
        let pid = std::process::id();
        Subject::Running {
            pid,
            start_time: start_time(u64::from(pid)).unwrap(),
            argv: vec!["kubelet".into()],
            evaluated_late: false,
        }
    }

    fn after() -> Option<Subject> {
        Some(Subject::AfterRestart {
            unit: Some("/lib/systemd/system/kubelet.service".into()),
            argv: vec!["kubelet".into()],
            exec_start_from: None,
        })
    }

    fn gone() -> Subject {
        Subject::Running {
            pid: std::process::id(),
            start_time: 1,
            argv: vec!["kubelet".into()],
            evaluated_late: false,
        }
    }

    fn activities(l: &mut Lifecycle, seq: &[(Change, Option<Subject>)]) -> Vec<u64> {
        let mut out = Vec::new();
        for (c, s) in seq {
            let mut v = line(*c, s.clone(), "n1");
            let (closes, write) = l.apply(&mut v, *c == Change::KubeletStopped);
            assert!(write);
            for close in closes {
                out.push(100 + close["activity_id"].as_u64().unwrap());
            }
            l.save("n1");
            out.push(v["activity_id"].as_u64().unwrap());
        }
        out
    }

    #[test]
    fn create_update_close_per_subject() {
        let mut l = Lifecycle::new(None);
        let after = after();
        let seq = [
            (Change::Baseline, Some(me())),
            (Change::DriftDetected, Some(me())),
            (Change::DriftResolved, Some(me())),
            (Change::PendingDriftAppeared, after.clone()),
            (Change::PendingDriftCleared, after.clone()),
            (Change::PendingDriftAppeared, after),
            (Change::KubeletStopped, Some(me())),
            (Change::KubeletStarted, Some(gone())),
        ];
        assert_eq!(activities(&mut l, &seq), vec![1, 2, 2, 1, 2, 2, 3, 1]);
    }

    #[test]
    fn a_restart_does_not_create_again_and_closes_what_ended_meanwhile() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        let mut l = Lifecycle::new(Some(path.clone()));
        assert_eq!(
            activities(
                &mut l,
                &[
                    (Change::Baseline, Some(me())),
                    (Change::Baseline, Some(gone())),
                    (Change::Baseline, after()),
                ]
            ),
            vec![1, 1, 1]
        );
        assert!(l.problem.is_none(), "{:?}", l.problem);
        // Another node's daemon shares the file.
        let mut other = Lifecycle::new(Some(path.clone()));
        let mut v = line(Change::Baseline, after(), "n2");
        assert!(other.apply(&mut v, false).0.is_empty());
        other.save("n2");
        assert_eq!(v["activity_id"], 1);

        // The daemon restarts: the process that ended meanwhile is closed first, the others
        // are updated, not created.
        let mut l = Lifecycle::new(Some(path.clone()));
        let mut v = line(Change::Baseline, Some(me()), "n1");
        let (closes, _) = l.apply(&mut v, false);
        assert_eq!(closes.len(), 1, "{closes:#?}");
        assert_eq!(closes[0]["activity_id"], 3);
        assert_eq!(closes[0]["type_uid"], 200303);
        assert_eq!(closes[0]["status"], "Closed");
        assert_eq!(closes[0]["unmapped"]["change"], "kubelet_stopped");
        let p = testutil::ocsf_problems(&closes[0]);
        assert!(p.is_empty(), "{p:?} in {}", closes[0]);
        assert_eq!(
            closes[0]["finding_info"]["uid"],
            line(Change::Baseline, Some(gone()), "n1")["finding_info"]["uid"]
        );
        assert_eq!(v["activity_id"], 2);
        let mut v = line(Change::Baseline, after(), "n1");
        assert!(l.apply(&mut v, false).0.is_empty());
        l.save("n1");
        assert_eq!(v["activity_id"], 2);
        // n2's finding survived n1's saves.
        let mut o = Lifecycle::new(Some(path));
        let mut v = line(Change::Baseline, after(), "n2");
        o.apply(&mut v, false);
        assert_eq!(v["activity_id"], 2);
    }

    #[test]
    fn a_corrupt_state_file_is_an_empty_state_not_a_failure() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        for junk in [
            &b"{\"version\":1,\"open\":"[..],
            b"\xff\x00",
            b"[]",
            b"{\"version\":9}",
        ] {
            fs::write(&path, junk).unwrap();
            let mut l = Lifecycle::new(Some(path.clone()));
            assert!(l.problem.is_some());
            let mut v = line(Change::Baseline, after(), "n1");
            assert!(l.apply(&mut v, false).0.is_empty());
            l.save("n1");
            assert_eq!(v["activity_id"], 1);
            // Rewritten whole.
            assert!(read_state(&path).unwrap().len() == 1);
        }
    }

    #[test]
    fn a_pid_reused_after_a_reboot_is_another_finding() {
        let a = line(Change::Baseline, Some(me()), "n1");
        let b = line(Change::Baseline, Some(gone()), "n1");
        assert_ne!(a["finding_info"]["uid"], b["finding_info"]["uid"]);
        assert_eq!(
            a["resources"][0]["uid"].as_str().unwrap(),
            format!(
                "running:{}:{}:{}",
                crate::finding::boot_id(),
                std::process::id(),
                start_time(u64::from(std::process::id())).unwrap()
            )
        );
    }

    /// The daemon's own baseline at a restart.
    fn restart_baseline(subject: Option<Subject>, status: Status) -> Value {
        let mut r = testutil::report(Change::Baseline);
        if let Some(s) = subject {
            r.finding.subject = s;
        }
        r.finding.status = status;
        r.trigger = crate::report::Trigger::internal(crate::report::TriggerOp::Baseline);
        r.node = "n1".into();
        to_ocsf(&r)
    }

    #[test]
    fn a_restart_baseline_is_written_only_when_something_changed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        let mut l = Lifecycle::new(Some(path.clone()));
        for s in [Some(me()), after()] {
            let mut v = restart_baseline(s, Status::Pass);
            assert_eq!(l.apply(&mut v, false), (vec![], true));
            l.save("n1");
            assert_eq!(v["activity_id"], 1);
        }
        // Restart: the running kubelet is as it was (not written); the after-restart
        // state failed meanwhile (an Update).
        let mut l = Lifecycle::new(Some(path.clone()));
        let mut v = restart_baseline(Some(me()), Status::Pass);
        assert_eq!(l.apply(&mut v, false), (vec![], false));
        let mut v = restart_baseline(after(), Status::Fail);
        assert_eq!(l.apply(&mut v, false), (vec![], true));
        assert_eq!(v["activity_id"], 2);
        l.save("n1");
        // Within a run, and for a resync, every line is written.
        let mut v = restart_baseline(Some(me()), Status::Pass);
        assert!(l.apply(&mut v, false).1);
        assert_eq!(v["activity_id"], 2);
        let mut r = testutil::report(Change::Baseline);
        r.trigger = crate::report::Trigger::internal(crate::report::TriggerOp::Resync);
        r.node = "n1".into();
        let mut v = to_ocsf(&r);
        assert!(l.apply(&mut v, false).1);
    }

    /// The same pid and start time in another boot: a finding of another kubelet. The open
    /// one is closed at the restart, the new one created.
    #[test]
    fn a_pid_and_start_time_of_another_boot_do_not_merge() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        let mut l = Lifecycle::new(Some(path.clone()));
        let mut v = restart_baseline(Some(me()), Status::Pass);
        l.apply(&mut v, false);
        l.save("n1");
        // Written by a daemon of an earlier boot: its boot id and so its identity differ.
        let text = fs::read_to_string(&path).unwrap();
        let ours = crate::finding::boot_id();
        assert!(!ours.is_empty() && text.contains(ours));
        let other = "00000000-0000-4000-8000-000000000000";
        let old_uid = stable_uid_of_other_boot(&v, ours, other);
        let text = text
            .replace(ours, other)
            .replace(v["finding_info"]["uid"].as_str().unwrap(), &old_uid);
        fs::write(&path, text).unwrap();

        let mut l = Lifecycle::new(Some(path));
        assert!(l.problem.is_none(), "{:?}", l.problem);
        let mut v = restart_baseline(Some(me()), Status::Pass);
        let (closes, write) = l.apply(&mut v, false);
        assert!(write);
        assert_eq!(closes.len(), 1, "{closes:#?}");
        assert_eq!(closes[0]["finding_info"]["uid"], old_uid.as_str());
        assert_eq!(closes[0]["activity_id"], 3);
        assert_eq!(
            v["activity_id"], 1,
            "the new boot's kubelet is another finding"
        );
        assert_ne!(closes[0]["metadata"]["uid"], v["metadata"]["uid"]);
    }

    fn stable_uid_of_other_boot(v: &Value, ours: &str, other: &str) -> String {
        let identity = v["resources"][0]["uid"]
            .as_str()
            .unwrap()
            .replace(ours, other);
        crate::output::ocsf::stable_uid(&["n1", "4.2.7", &identity])
    }
}

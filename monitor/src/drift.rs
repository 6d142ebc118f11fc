//! The drift state: the last finding per subject, and the changes a new finding makes.
//! Pure logic (no I/O), so every transition is a table test.
//!
//! Subjects: one `running:<pid>` per kubelet process and one `after_restart`. A running
//! kubelet's truth changes only when it (re)starts; the after-restart truth changes with
//! every edit. When they disagree, that is pending drift.

use std::collections::BTreeMap;

use crate::{
    finding::{Finding, Status, Subject},
    report::Change,
};

/// A change to report: what changed, the finding now, the subject's previous status.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transition {
    pub change: Change,
    pub finding: Finding,
    pub previous: Option<Status>,
}

#[derive(Debug, Default)]
pub struct DriftState {
    findings: BTreeMap<String, Finding>,
    /// Running pids whose after-restart state currently differs from theirs.
    pending: BTreeMap<u32, bool>,
    /// The last pass or fail per subject, kept through errors: a moment of error between a
    /// pass and a fail (a config directory swapped in two renames, a file made unreadable
    /// then rewritten) must still read as drift, not as an error that cleared, or a SIEM
    /// rule on `drift_detected` would never see it.
    settled: BTreeMap<String, Status>,
}

/// The change from `prev` to `now`, given the last pass or fail before any error.
fn status_change(prev: Status, now: Status, settled: Option<Status>) -> Option<Change> {
    use Status::*;
    match (prev, now) {
        (a, b) if a == b => None,
        (Pass, Fail) => Some(Change::DriftDetected),
        (Fail, Pass) => Some(Change::DriftResolved),
        (_, Error) => Some(Change::ErrorAppeared),
        (Error, Fail) if settled != Some(Fail) => Some(Change::DriftDetected),
        (Error, Pass) if settled == Some(Fail) => Some(Change::DriftResolved),
        (Error, _) => Some(Change::ErrorCleared),
        _ => None,
    }
}

impl DriftState {
    pub fn new() -> DriftState {
        DriftState::default()
    }

    pub fn get(&self, key: &str) -> Option<&Finding> {
        self.findings.get(key)
    }

    pub fn findings(&self) -> impl Iterator<Item = &Finding> {
        self.findings.values()
    }

    /// Running kubelet pids known.
    pub fn running_pids(&self) -> Vec<u32> {
        self.findings
            .values()
            .filter_map(|f| match f.subject {
                Subject::Running { pid, .. } => Some(pid),
                _ => None,
            })
            .collect()
    }

    /// Records `f` as the state at start: every subject is reported once as a baseline.
    pub fn baseline(&mut self, f: Finding) -> Transition {
        let previous = self.findings.get(&f.subject.key()).map(|p| p.status);
        self.settle(&f);
        self.findings.insert(f.subject.key(), f.clone());
        Transition {
            change: Change::Baseline,
            finding: f,
            previous,
        }
    }

    /// A new evaluation of a subject. A new running subject is a start; otherwise a status
    /// change is reported, and nothing when the status is the same.
    pub fn update(&mut self, f: Finding) -> Option<Transition> {
        let key = f.subject.key();
        let settled = self.settled.get(&key).copied();
        self.settle(&f);
        let prev = self.findings.insert(key, f.clone());
        match prev {
            None if matches!(f.subject, Subject::Running { .. }) => Some(Transition {
                change: Change::KubeletStarted,
                finding: f,
                previous: None,
            }),
            None => Some(Transition {
                change: Change::Baseline,
                finding: f,
                previous: None,
            }),
            Some(p) => status_change(p.status, f.status, settled).map(|change| Transition {
                change,
                finding: f,
                previous: Some(p.status),
            }),
        }
    }

    /// Keeps `f`'s status as its subject's last pass or fail (an error keeps the one before).
    fn settle(&mut self, f: &Finding) {
        if f.status != Status::Error {
            self.settled.insert(f.subject.key(), f.status);
        }
    }

    /// A running kubelet ended: its last finding is reported as stopped.
    pub fn stopped(&mut self, pid: u32) -> Option<Transition> {
        self.pending.remove(&pid);
        self.settled.remove(&format!("running:{pid}"));
        let f = self.findings.remove(&format!("running:{pid}"))?;
        let previous = Some(f.status);
        Some(Transition {
            change: Change::KubeletStopped,
            finding: f,
            previous,
        })
    }

    /// Compares the after-restart finding with every running kubelet's: pending drift
    /// appears when they disagree (status or effective value) and clears when they agree.
    pub fn pending(&mut self) -> Vec<Transition> {
        let Some(after) = self.findings.get("after_restart").cloned() else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (key, running) in &self.findings {
            let Subject::Running { pid, .. } = running.subject else {
                continue;
            };
            let _ = key;
            let differs = running.status != after.status || running.effective != after.effective;
            let was = self.pending.get(&pid).copied().unwrap_or(false);
            if differs != was {
                out.push(Transition {
                    change: if differs {
                        Change::PendingDriftAppeared
                    } else {
                        Change::PendingDriftCleared
                    },
                    finding: after.clone(),
                    previous: Some(running.status),
                });
            }
            self.pending.insert(pid, differs);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::testutil::{after_restart as after, finding, running};

    #[test]
    fn status_transitions() {
        use Status::*;
        let table = [
            (Pass, Fail, Some(Change::DriftDetected)),
            (Fail, Pass, Some(Change::DriftResolved)),
            (Pass, Error, Some(Change::ErrorAppeared)),
            (Fail, Error, Some(Change::ErrorAppeared)),
            (Error, Pass, Some(Change::ErrorCleared)),
            (Error, Fail, Some(Change::DriftDetected)),
            (Pass, Pass, None),
            (Fail, Fail, None),
            (Error, Error, None),
        ];
        for (a, b, want) in table {
            let mut s = DriftState::new();
            s.baseline(finding(after(), a));
            let t = s.update(finding(after(), b));
            assert_eq!(t.as_ref().map(|t| t.change), want, "{a:?} -> {b:?}");
            if let Some(t) = t {
                assert_eq!(t.previous, Some(a));
                assert_eq!(t.finding.status, b);
            }
        }
    }

    /// An error between two settled states: pass → error → fail is drift (the error hid
    /// nothing), fail → error → pass is a resolution, and back to the same state is an error
    /// that cleared.
    #[test]
    fn an_error_in_between_keeps_the_settled_status() {
        use Status::*;
        let table = [
            (Pass, Fail, Change::DriftDetected),
            (Fail, Pass, Change::DriftResolved),
            (Pass, Pass, Change::ErrorCleared),
            (Fail, Fail, Change::ErrorCleared),
        ];
        for (a, c, want) in table {
            let mut s = DriftState::new();
            s.baseline(finding(after(), a));
            assert_eq!(
                s.update(finding(after(), Error)).map(|t| t.change),
                Some(Change::ErrorAppeared)
            );
            // Two errors in a row change nothing, and keep the settled status.
            assert_eq!(s.update(finding(after(), Error)), None);
            let t = s.update(finding(after(), c)).unwrap();
            assert_eq!(t.change, want, "{a:?} -> error -> {c:?}");
            assert_eq!(t.previous, Some(Error));
        }
    }

    #[test]
    fn start_stop_and_pending() {
        let mut s = DriftState::new();
        s.baseline(finding(after(), Status::Pass));
        let t = s.update(finding(running(10), Status::Pass)).unwrap();
        assert_eq!(t.change, Change::KubeletStarted);
        assert!(
            s.pending().is_empty(),
            "agreeing states are not pending drift"
        );
        // The config file is edited: after-restart fails, the running kubelet still passes.
        let t = s.update(finding(after(), Status::Fail)).unwrap();
        assert_eq!(t.change, Change::DriftDetected);
        let p = s.pending();
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].change, Change::PendingDriftAppeared);
        assert!(s.pending().is_empty(), "reported once");
        // Restored.
        s.update(finding(after(), Status::Pass)).unwrap();
        let p = s.pending();
        assert_eq!(p[0].change, Change::PendingDriftCleared);
        let t = s.stopped(10).unwrap();
        assert_eq!(t.change, Change::KubeletStopped);
        assert_eq!(t.previous, Some(Status::Pass));
        assert!(s.stopped(10).is_none());
        assert_eq!(s.running_pids(), Vec::<u32>::new());
    }
}

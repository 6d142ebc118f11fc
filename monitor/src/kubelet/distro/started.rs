//! What a process found already running read at its start: for a kubelet embedded in another
//! process (k3s, kubelite), its flags come from files it read once, at its start. A file whose
//! inode changed (its ctime, which no one can set back) after the process started may no longer
//! hold what it read, so a verdict computed from it is not the running one.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// When the process started (wall clock), from its start in clock ticks since boot (`stat`
/// field 22). Never later than the real start: `btime` is whole seconds, rounded down, so a
/// file changed up to a second before the start counts as changed after it (an error, never a
/// pass). `UNIX_EPOCH` when the boot time cannot be read: every file then counts as changed.
pub fn process_started(start_ticks: u64) -> SystemTime {
    let at = || {
        let boot = procfs::boot_time_secs().ok()?;
        let tps = procfs::ticks_per_second().max(1);
        let ms = boot.checked_mul(1000)? + start_ticks.checked_mul(1000)? / tps;
        Some(SystemTime::UNIX_EPOCH + Duration::from_millis(ms))
    };
    at().unwrap_or(SystemTime::UNIX_EPOCH)
}

/// The first of `inputs` (host paths), outside `except`, whose inode changed after `started`.
pub fn changed_since(
    inputs: &[PathBuf],
    except: Option<&Path>,
    started: SystemTime,
) -> Option<PathBuf> {
    inputs
        .iter()
        .filter(|p| !except.is_some_and(|m| p.starts_with(m)))
        .find(|p| {
            std::fs::metadata(p).is_ok_and(|m| {
                let ctime = SystemTime::UNIX_EPOCH
                    + Duration::new(m.ctime().max(0) as u64, m.ctime_nsec().max(0) as u32);
                ctime > started
            })
        })
        .cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_changed_after_the_start_is_found() {
        let d = tempfile::tempdir().unwrap();
        let old = d.path().join("old");
        let new = d.path().join("new");
        let skipped = d.path().join("managed/x");
        std::fs::write(&old, "a").unwrap();
        std::thread::sleep(Duration::from_millis(20));
        let started = SystemTime::now();
        std::thread::sleep(Duration::from_millis(20));
        std::fs::create_dir(d.path().join("managed")).unwrap();
        std::fs::write(&skipped, "b").unwrap();
        assert_eq!(
            changed_since(
                &[old.clone(), skipped.clone()],
                Some(&d.path().join("managed")),
                started
            ),
            None
        );
        std::fs::write(&new, "c").unwrap();
        let missing = d.path().join("missing");
        assert_eq!(
            changed_since(&[old.clone(), missing, new.clone()], None, started),
            Some(new)
        );
        // this test process started before any of them
        let me = procfs::process::Process::myself()
            .unwrap()
            .stat()
            .unwrap()
            .starttime;
        assert!(process_started(me) <= SystemTime::now());
        assert_eq!(
            changed_since(&[old], None, process_started(me)),
            Some(d.path().join("old"))
        );
    }
}

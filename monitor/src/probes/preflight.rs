//! Before loading anything: does this process have what loading and attaching need? Said at
//! start, exactly, instead of an `EPERM` from deep inside the loader.
//!
//! - The four capabilities the hardened unit grants (`CAP_BPF`, `CAP_PERFMON`,
//!   `CAP_SYS_PTRACE`, `CAP_DAC_READ_SEARCH`), read from `/proc/self/status` `CapEff`.
//! - `kernel.perf_event_paranoid`: upstream kernels know -1..2, and CAP_PERFMON passes them
//!   all. Debian's and Ubuntu's kernels add 3 (Debian's default; Ubuntu also 4), which refuses
//!   `perf_event_open` — how tracepoints are attached — to processes without CAP_SYS_ADMIN
//!   on some of their kernel versions even when they hold CAP_PERFMON (the patch
//!   "security,perf: Allow further restriction of perf_event_open" accepts CAP_PERFMON in its
//!   later versions only). So at 3 or more without CAP_SYS_ADMIN, the daemon says what to do
//!   if attaching is then refused.

use std::fs;

/// Capability numbers (linux/capability.h).
const CAP_DAC_READ_SEARCH: u32 = 2;
const CAP_SYS_PTRACE: u32 = 19;
const CAP_SYS_ADMIN: u32 = 21;
const CAP_PERFMON: u32 = 38;
const CAP_BPF: u32 = 39;

/// What the daemon needs, each with why.
const NEEDED: [(u32, &str, &str); 4] = [
    (
        CAP_BPF,
        "CAP_BPF",
        "load the programs and create their maps",
    ),
    (
        CAP_PERFMON,
        "CAP_PERFMON",
        "attach to tracepoints and read kernel memory from them",
    ),
    (
        CAP_SYS_PTRACE,
        "CAP_SYS_PTRACE",
        "read the kubelet's /proc/<pid>/{environ,root,cwd,exe}",
    ),
    (
        CAP_DAC_READ_SEARCH,
        "CAP_DAC_READ_SEARCH",
        "read the kubelet's files and tracefs whatever their mode",
    ),
];

/// What the checks found.
#[derive(Debug, PartialEq, Eq)]
pub struct Preflight {
    /// Capabilities missing, as "CAP_X (to …)".
    pub missing: Vec<String>,
    /// A warning about perf_event_paranoid, when it applies.
    pub paranoid: Option<String>,
}

impl Preflight {
    /// Reads this process's effective capabilities and the sysctl.
    pub fn check() -> Preflight {
        let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
        let paranoid = fs::read_to_string("/proc/sys/kernel/perf_event_paranoid")
            .ok()
            .and_then(|s| s.trim().parse().ok());
        Preflight::from(cap_eff(&status), paranoid)
    }

    fn from(cap_eff: Option<u64>, paranoid: Option<i32>) -> Preflight {
        // Unreadable capabilities: say nothing rather than guess (the loader's own error,
        // explained, still follows).
        let has = |c: u32| cap_eff.is_none_or(|e| e & (1u64 << c) != 0);
        let missing = NEEDED
            .iter()
            .filter(|(c, _, _)| !has(*c))
            .map(|(_, name, why)| format!("{name} (to {why})"))
            .collect();
        let paranoid = match paranoid {
            Some(p) if p >= 3 && !has(CAP_SYS_ADMIN) => Some(format!(
                "kernel.perf_event_paranoid is {p}: Debian and Ubuntu kernels then refuse \
                 perf_event_open (attaching tracepoints) to processes without CAP_SYS_ADMIN on \
                 some versions, even with CAP_PERFMON; if attaching fails, run \
                 `sysctl -w kernel.perf_event_paranoid=2` (and set it in /etc/sysctl.d/) or \
                 grant CAP_SYS_ADMIN"
            )),
            _ => None,
        };
        Preflight { missing, paranoid }
    }

    /// The error to stop with, if a needed capability is missing.
    pub fn error(&self) -> Option<String> {
        (!self.missing.is_empty()).then(|| {
            format!(
                "kubelet-drift lacks {}: run it as root, or grant exactly \
                 CAP_BPF CAP_PERFMON CAP_SYS_PTRACE CAP_DAC_READ_SEARCH \
                 (AmbientCapabilities= in the unit, capabilities.add in the DaemonSet)",
                self.missing.join(", ")
            )
        })
    }
}

/// `CapEff:\t000001ffffffffff` → the bits.
fn cap_eff(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    const FOUR: u64 =
        (1 << CAP_BPF) | (1 << CAP_PERFMON) | (1 << CAP_SYS_PTRACE) | (1 << CAP_DAC_READ_SEARCH);

    #[test]
    fn root_and_the_unit_pass() {
        assert_eq!(
            cap_eff("Name:\tx\nCapEff:\t000001ffffffffff\n"),
            Some(0x1ff_ffff_ffff)
        );
        let root = Preflight::from(Some(0x1ff_ffff_ffff), Some(3));
        assert_eq!(root.error(), None);
        assert_eq!(root.paranoid, None, "root has CAP_SYS_ADMIN");
        let unit = Preflight::from(Some(FOUR), Some(2));
        assert_eq!(unit.error(), None);
        assert_eq!(unit.paranoid, None);
    }

    #[test]
    fn a_missing_capability_is_named_with_its_reason() {
        let p = Preflight::from(Some(FOUR & !(1 << CAP_BPF)), Some(2));
        let e = p.error().unwrap();
        assert!(e.contains("CAP_BPF (to load the programs"), "{e}");
        assert!(!e.contains("CAP_PERFMON (to"), "{e}");
    }

    #[test]
    fn paranoid_three_without_sys_admin_is_explained() {
        let p = Preflight::from(Some(FOUR), Some(3));
        assert_eq!(p.error(), None);
        let w = p.paranoid.unwrap();
        assert!(w.contains("perf_event_paranoid is 3"), "{w}");
        assert!(w.contains("kernel.perf_event_paranoid=2"), "{w}");
    }

    #[test]
    fn unreadable_status_says_nothing() {
        let p = Preflight::from(None, None);
        assert_eq!(p.error(), None);
        assert_eq!(p.paranoid, None);
    }

    #[test]
    fn this_process_reads() {
        // The test suite runs as root: nothing missing.
        let p = Preflight::check();
        assert_eq!(p.error(), None, "{p:?}");
    }
}

//! The verdict model: one [`Finding`] per subject (a running kubelet, the after-restart
//! configuration, or arguments given on the command line).
//!
//! JSON names and values here are a published contract (`kubelet-drift check --format json`,
//! the daemon's outputs): `control`, `status` (`pass`/`fail`/`error`), `effective`
//! (`true`/`false`/`null`), `subject`, `source`, `reason`, `remediation`. Add fields, never
//! rename them.

use std::{
    borrow::Cow,
    os::unix::ffi::OsStrExt,
    path::{Path, PathBuf},
};

use serde::{Serialize, Serializer};

/// A path as JSON text that loses nothing: a UTF-8 path as it is; any other with each byte
/// that is not UTF-8 written `\xHH` and each backslash `\\` (such a finding carries
/// `"non_utf8": true`, see [`has_non_utf8_path`]). JSON output never fails on a path.
pub fn path_text(p: &Path) -> Cow<'_, str> {
    let b = p.as_os_str().as_bytes();
    match std::str::from_utf8(b) {
        Ok(s) => Cow::Borrowed(s),
        Err(_) => {
            let mut out = String::with_capacity(b.len() + 8);
            for chunk in b.utf8_chunks() {
                out.push_str(&chunk.valid().replace('\\', "\\\\"));
                for byte in chunk.invalid() {
                    out.push_str(&format!("\\x{byte:02x}"));
                }
            }
            Cow::Owned(out)
        }
    }
}

fn ser_path<S: Serializer>(p: &Path, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&path_text(p))
}

fn ser_opt_path<S: Serializer>(p: &Option<PathBuf>, s: S) -> Result<S::Ok, S::Error> {
    match p {
        Some(p) => ser_path(p, s),
        None => s.serialize_none(),
    }
}

fn ser_paths<S: Serializer>(v: &[PathBuf], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(v.iter().map(|p| path_text(p)))
}

fn non_utf8(p: &Path) -> bool {
    std::str::from_utf8(p.as_os_str().as_bytes()).is_err()
}

/// Whether any path of the finding is not UTF-8 (its JSON text is escaped, see [`path_text`]).
pub fn has_non_utf8_path(f: &Finding) -> bool {
    let subject = match &f.subject {
        Subject::Running { .. } => false,
        Subject::AfterRestart {
            unit,
            exec_start_from,
            ..
        } => unit
            .iter()
            .chain(exec_start_from.iter())
            .any(|p| non_utf8(p)),
        Subject::Arguments { cwd, .. } => non_utf8(cwd),
    };
    let source = match &f.source {
        Source::ConfigFile { path, .. }
        | Source::DropIn { path, .. }
        | Source::Unit { path, .. } => non_utf8(path),
        _ => false,
    };
    subject
        || source
        || f.inputs
            .iter()
            .chain(f.input_dirs.iter())
            .any(|p| non_utf8(p))
}

/// Which CIS benchmark numbering to print the control under. The rule is the same.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Benchmark {
    /// CIS Kubernetes Benchmark up to 1.6 / 1.20-1.24 (and the rule this product was asked for): 4.2.7.
    #[default]
    #[value(name = "cis-1.6")]
    Cis16,
    /// CIS Kubernetes Benchmark 1.7 and later: 4.2.6.
    #[value(name = "cis-1.7")]
    Cis17,
    /// CIS EKS / AKS / GKE benchmarks: 3.2.6.
    #[value(name = "managed")]
    Managed,
}

impl Benchmark {
    pub fn control_id(self) -> &'static str {
        match self {
            Benchmark::Cis16 => "4.2.7",
            Benchmark::Cis17 => "4.2.6",
            Benchmark::Managed => "3.2.6",
        }
    }
    pub fn standard(self) -> &'static str {
        match self {
            Benchmark::Cis16 => "CIS Kubernetes Benchmark v1.6",
            Benchmark::Cis17 => "CIS Kubernetes Benchmark v1.7+",
            Benchmark::Managed => "CIS Amazon EKS / Azure AKS / Google GKE Benchmark",
        }
    }
}

pub const CONTROL_TITLE: &str =
    "Ensure that the --make-iptables-util-chains argument is set to true";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pass,
    Fail,
    /// The kubelet would not start with this configuration, a source could not be read, or
    /// anything is unknown. Never a pass on doubt.
    Error,
}

/// What a finding is about.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Subject {
    /// A kubelet process as it runs now (flags and files as it read them at start).
    Running {
        pid: u32,
        /// Clock ticks since boot at which it started (`/proc/<pid>/stat` field 22): with the
        /// boot id and the pid, names this process and no later one with the same pid.
        start_time: u64,
        argv: Vec<String>,
        /// `true` when the process was already running when the monitor started, so its
        /// files were read as they are now, not as they were at its exec.
        evaluated_late: bool,
    },
    /// What the kubelet would run with if systemd (re)started it now.
    AfterRestart {
        /// The unit file systemd would load, inside `root`.
        #[serde(serialize_with = "ser_opt_path")]
        unit: Option<PathBuf>,
        /// The argv the unit assembles (after `$VAR` expansion).
        argv: Vec<String>,
        /// Where the ExecStart came from (unit or drop-in path).
        #[serde(serialize_with = "ser_opt_path")]
        exec_start_from: Option<PathBuf>,
    },
    /// Arguments given to `kubelet-drift check -- ARGS...`.
    Arguments {
        argv: Vec<String>,
        #[serde(serialize_with = "ser_path")]
        cwd: PathBuf,
    },
}

/// This boot's id (`/proc/sys/kernel/random/boot_id`), read once; empty when unreadable.
pub fn boot_id() -> &'static str {
    static ID: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    ID.get_or_init(|| {
        std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
            .map(|s| s.trim().to_string())
            .unwrap_or_default()
    })
}

impl Subject {
    /// Who the finding is about, across pid reuse and reboots: `running:<boot id>:<pid>:<start
    /// time>` for a kubelet process, `after_restart`, `arguments`. The OCSF finding uid and
    /// the kubelet's resource uid derive from it.
    pub fn identity(&self) -> String {
        match self {
            Subject::Running {
                pid, start_time, ..
            } => format!("running:{}:{pid}:{start_time}", boot_id()),
            other => other.key(),
        }
    }

    /// A stable key for the drift state machine: one per running pid, one for after-restart.
    pub fn key(&self) -> String {
        match self {
            Subject::Running { pid, .. } => format!("running:{pid}"),
            Subject::AfterRestart { .. } => "after_restart".into(),
            Subject::Arguments { .. } => "arguments".into(),
        }
    }
}

/// What decided the effective value (or the error).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Source {
    /// A command-line flag: its index in argv (argv[0] is the program) and its text.
    Flag { index: usize, text: String },
    /// The `--config` file.
    ConfigFile {
        #[serde(serialize_with = "ser_path")]
        path: PathBuf,
        line: Option<usize>,
    },
    /// A `--config-dir` drop-in.
    DropIn {
        #[serde(serialize_with = "ser_path")]
        path: PathBuf,
        line: Option<usize>,
    },
    /// No source sets it: the kubelet's default (true).
    Default,
    /// A unit file, drop-in or EnvironmentFile (errors in assembling the after-restart argv).
    Unit {
        #[serde(serialize_with = "ser_path")]
        path: PathBuf,
        line: Option<usize>,
    },
    /// Nothing could be evaluated (no kubelet, no unit): `detail` says what was looked for.
    None { detail: String },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// "4.2.7" unless another benchmark numbering was chosen.
    pub control: String,
    pub status: Status,
    /// The effective makeIPTablesUtilChains; `None` (JSON null) when unknown.
    pub effective: Option<bool>,
    pub subject: Subject,
    pub source: Source,
    /// A plain sentence for a person.
    pub reason: String,
    pub remediation: String,
    /// Every file that fed this evaluation (config, drop-ins, unit files, env files), so the
    /// daemon can watch exactly them. Not part of the fixed contract.
    #[serde(skip_serializing_if = "Vec::is_empty", serialize_with = "ser_paths")]
    pub inputs: Vec<PathBuf>,
    /// Directories whose new children would change this evaluation (the drop-in dir, unit
    /// drop-in dirs), watched recursively by the daemon.
    #[serde(skip_serializing_if = "Vec::is_empty", serialize_with = "ser_paths")]
    pub input_dirs: Vec<PathBuf>,
}

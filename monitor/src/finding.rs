//! The verdict model: one [`Finding`] per subject (a running kubelet, the after-restart
//! configuration, or arguments given on the command line).
//!
//! JSON names and values here are a published contract (`kubelet-drift check --format json`,
//! the daemon's outputs): `control`, `status` (`pass`/`fail`/`error`), `effective`
//! (`true`/`false`/`null`), `subject`, `source`, `reason`, `remediation`. Add fields, never
//! rename them.

use std::path::PathBuf;

use serde::Serialize;

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
        argv: Vec<String>,
        /// `true` when the process was already running when the monitor started, so its
        /// files were read as they are now, not as they were at its exec.
        evaluated_late: bool,
    },
    /// What the kubelet would run with if systemd (re)started it now.
    AfterRestart {
        /// The unit file systemd would load, inside `root`.
        unit: Option<PathBuf>,
        /// The argv the unit assembles (after `$VAR` expansion).
        argv: Vec<String>,
        /// Where the ExecStart came from (unit or drop-in path).
        exec_start_from: Option<PathBuf>,
    },
    /// Arguments given to `kubelet-drift check -- ARGS...`.
    Arguments { argv: Vec<String>, cwd: PathBuf },
}

impl Subject {
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
    ConfigFile { path: PathBuf, line: Option<usize> },
    /// A `--config-dir` drop-in.
    DropIn { path: PathBuf, line: Option<usize> },
    /// No source sets it: the kubelet's default (true).
    Default,
    /// A unit file, drop-in or EnvironmentFile (errors in assembling the after-restart argv).
    Unit { path: PathBuf, line: Option<usize> },
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
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub inputs: Vec<PathBuf>,
    /// Directories whose new children would change this evaluation (the drop-in dir, unit
    /// drop-in dirs), watched recursively by the daemon.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub input_dirs: Vec<PathBuf>,
}

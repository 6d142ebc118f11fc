//! `kubelet-drift run`'s command line. Each option overrides one setting; the overlay itself
//! is [`settings::Overrides`], applied in `settings.rs` with every other source.

use std::{path::PathBuf, time::Duration};

use crate::{
    finding::Benchmark,
    settings::{self, Overrides, RingSize, Toggle},
};

#[derive(clap::Args, Debug, Default)]
#[command(after_help = "\
Reports go to journald (SYSLOG_IDENTIFIER=kubelet-drift, fields KUBELET_DRIFT_*), to OCSF JSON \
lines (--json-out), and as text on stderr when it is a terminal. The first reports are the \
baseline: one per running kubelet and one for the after-restart state; then one per change.

Examples:
  kubelet-drift run                               # embedded defaults + /etc/kubelet-drift/config.yaml
  kubelet-drift run --json-out - --text false     # OCSF JSON lines on stdout, for a SIEM shipper
  kubelet-drift run --config ./config.yaml --rescan-interval 1m

Needs root (CAP_BPF, CAP_PERFMON, CAP_SYS_PTRACE, CAP_DAC_READ_SEARCH) and kernel BTF.")]
pub struct RunArgs {
    /// Configuration file (default: /etc/kubelet-drift/config.yaml if it exists, else the
    /// embedded defaults).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Append OCSF JSON lines to PATH ("-" = stdout).
    #[arg(long, value_name = "PATH")]
    pub json_out: Option<String>,
    /// journald output: true, false or auto (when the journald socket exists).
    #[arg(long, value_name = "WHEN")]
    pub journald: Option<Toggle>,
    /// Text on stderr: true, false or auto (when stderr is a terminal).
    #[arg(long, value_name = "WHEN")]
    pub text: Option<Toggle>,
    /// Full re-evaluation interval ("5m", "300s"; at least 1s).
    #[arg(long, value_name = "DURATION", value_parser = settings::parse_duration)]
    pub rescan_interval: Option<Duration>,
    /// Node name in reports (default: NODE_NAME, then the hostname).
    #[arg(long)]
    pub node_name: Option<String>,
    /// Control numbering.
    #[arg(long, value_enum)]
    pub benchmark: Option<Benchmark>,
    /// Kubelet executable names (repeatable).
    #[arg(long = "kubelet-name", value_name = "NAME")]
    pub kubelet_names: Vec<String>,
    /// Ring-buffer size in bytes (a power of two, >= 4096; "256KiB", "1MiB" also work).
    #[arg(long, value_name = "BYTES")]
    pub ring_bytes: Option<RingSize>,
    /// Where the host's filesystem is mounted ("/" on the host, "/host" in the DaemonSet).
    #[arg(long, value_name = "DIR")]
    pub host_root: Option<PathBuf>,
    /// Watch this path too (repeatable).
    #[arg(long, value_name = "PATH")]
    pub watch: Vec<PathBuf>,
    /// The node's distribution, instead of detecting it at each evaluation (kubeadm, k3s,
    /// rke2, microk8s, openshift, talos).
    #[arg(long, value_enum, value_name = "NAME")]
    pub distribution: Option<crate::kubelet::distro::Distribution>,
    /// Serve /metrics (Prometheus) and /healthz on ADDR ("127.0.0.1:9761").
    #[arg(long, value_name = "ADDR")]
    pub metrics_listen: Option<String>,
    /// Keep a node_exporter textfile-collector file (*.prom) up to date.
    #[arg(long, value_name = "PATH")]
    pub metrics_textfile: Option<PathBuf>,
}

impl RunArgs {
    /// What the command line changes.
    pub fn overrides(&self) -> Overrides {
        Overrides {
            json_out: self.json_out.clone(),
            journald: self.journald,
            text: self.text,
            rescan_interval: self.rescan_interval,
            node_name: self.node_name.clone(),
            benchmark: self.benchmark,
            kubelet_names: self.kubelet_names.clone(),
            ring_buffer_bytes: self.ring_bytes,
            host_root: self.host_root.clone(),
            watch_extra: self.watch.clone(),
            metrics_listen: self.metrics_listen.clone(),
            metrics_textfile: self.metrics_textfile.clone(),
        }
    }
}

//! kubelet-drift: watches a node for changes to the kubelet's effective
//! `makeIPTablesUtilChains` (CIS Kubernetes Benchmark 4.2.7) and reports drift at once.
//!
//! Rooms:
//! - [`probes`]: loading and attaching the kernel programs, their maps and counters.
//! - [`decode`]: ring-buffer bytes to typed [`decode::Event`]s, with length checks.
//! - [`kubelet`]: the kubelet's own rules (flags, config file, drop-ins, systemd unit).
//! - [`finding`] and [`report`]: the verdict model and what the daemon emits.
//! - [`drift`]: the state machine that turns evaluations into changes.
//! - [`watched`]: which names and inodes the kernel reports, and the exact match behind it.
//! - [`output`]: journald, OCSF JSON lines, text.
//! - [`attribution`]: who did it (actor, user, container).
//! - [`metrics`]: Prometheus metrics and /healthz.
//! - [`daemon`]: `kubelet-drift run`; [`check`]: `kubelet-drift check`; [`events`]: `kubelet-drift events`.

pub mod ancestors;
pub mod attribution;
pub mod blindspots;
pub mod check;
pub mod daemon;
pub mod decode;
pub mod docs;
pub mod drift;
pub mod events;
pub mod finding;
pub mod kubelet;
pub mod metrics;
pub mod output;
pub mod probes;
pub mod report;
pub mod settings;
pub mod watched;

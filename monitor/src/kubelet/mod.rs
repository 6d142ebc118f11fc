//! The kubelet's own rules, as `cmd/kubelet/app` applies them.
//!
//! - [`flags`]: the kubelet's flag table and pflag's parsing rules.
//! - [`config`]: the `--config` file and `--config-dir` drop-ins, decoded as the kubelet does.
//! - [`yaml`]: the kubelet's reading of a YAML or JSON buffer (go-yaml v2, sigs.k8s.io/yaml), as an allowlist.
//! - [`evaluate`]: flags + files -> the effective value with its provenance.
//! - [`rootfs`]: reading files safely inside a root (a node image, `/proc/<pid>/root`);
//!   [`fscache`]: what it read, kept while the inode is unchanged.
//! - [`systemd`]: the after-restart argv, as systemd assembles it (`unit` and `envfile` are its
//!   names from before the split).
//! - [`discovery`]: running kubelets, through procfs.
//! - [`distro`]: distributions (k3s, RKE2, MicroK8s, OpenShift, Talos): detection, their own
//!   sources of the kubelet's flags, wrappers, the kubelet's version.
//! - [`node`]: the whole node: running kubelets and the after-restart truth, as findings.

pub mod config;
pub mod discovery;
pub mod distro;
pub mod evaluate;
pub mod flags;
pub mod flagvalues;
pub mod fscache;
pub mod node;
pub mod rootfs;
pub mod schema;
pub mod systemd;
pub mod yaml;

pub use systemd as unit;
pub use systemd::envfile;

#[cfg(test)]
mod corpus_tests;
#[cfg(test)]
mod kept_tests;

//! RKE2 (rancher/rke2): `rke2-server.service` / `rke2-agent.service` run `rke2 server|agent`,
//! which computes the kubelet's arguments with k3s's agent code (RKE2 vendors k3s: the same
//! `configfilearg` loader with `/etc/rancher/rke2/config.yaml` + `config.yaml.d` and
//! `RKE2_CONFIG_FILE`, the same `kubelet-arg` handling and `GetArgs`, the managed drop-ins in
//! `/var/lib/rancher/rke2/agent/etc/kubelet.conf.d/` with `00-rke2-defaults.conf`), and runs a
//! real `kubelet` process from its data directory, restarted every 5 s when it exits
//! (`pkg/executor/staticpod/staticpod.go`). Rules in [`super::rancher`].
//!
//! Running: the kubelet process itself (its argv is real). After a restart: computed from the
//! unit and config files. Where a user edits: `/etc/rancher/rke2/config.yaml` (or
//! `config.yaml.d/`).

use super::rancher::Flavor;

pub const FLAVOR: Flavor = Flavor {
    name: "RKE2",
    program: "rke2",
    config_default: "/etc/rancher/rke2/config.yaml",
    config_env: "RKE2_CONFIG_FILE",
    data_dir_default: "/var/lib/rancher/rke2",
    units: ["rke2-server.service", "rke2-agent.service"],
    marker_files: ["/etc/rancher/rke2", "/var/lib/rancher/rke2/agent"],
    embedded: false,
};

//! Talos (and other nodes whose kubelet runs in a container with no unit on the host).
//!
//! Talos renders the kubelet's flags and `/etc/kubernetes/kubelet.yaml` from the machine
//! config (`machine.kubelet.extraArgs` / `extraConfig`, newer releases a `KubeletConfig`
//! document) and runs `/usr/local/bin/kubelet` in a containerd container that shares the host's
//! PID and network namespaces but has its own mount namespace (siderolabs/talos
//! `internal/app/machined/pkg/system/services/kubelet.go`). There is no systemd: the running
//! kubelet is read through `/proc/<pid>/root`, and after a restart Talos starts it again with
//! the same flags unless the machine config changed, which is not on the node's filesystem in
//! a form this tool reads. So: running = the process; after restart = the running command line
//! (said so), or, with no kubelet running, an error naming the machine config.

/// Where a Talos user looks.
pub const WHERE: &str = "the machine config (talosctl get machineconfig -o yaml: machine.kubelet.extraArgs and machine.kubelet.extraConfig), rendered to /etc/kubernetes/kubelet.yaml inside the kubelet's container";

//! kubeadm-style nodes (kubeadm, kind, EKS AL2/AL2023, GKE COS, AKS, Bottlerocket): a `kubelet`
//! started by `kubelet.service`. After a restart: the unit as systemd assembles it
//! (`super::super::unit`, with its drop-ins and `EnvironmentFile=`s: kubeadm's
//! `10-kubeadm.conf` + `/var/lib/kubelet/kubeadm-flags.env` + `/etc/default/kubelet` or
//! `/etc/sysconfig/kubelet`, nodeadm's `/etc/eks/kubelet/environment`, GKE's
//! `/etc/default/kubelet` `KUBELET_OPTS`, AKS's `/etc/default/kubelet` `KUBELET_FLAGS`), see
//! `../shared/notes/distributions.md`. Running: the kubelet process's own argv, against its own
//! root (a kind node's kubelet runs in the node container: `/proc/<pid>/root`), and when the
//! host has no `kubelet.service`, the unit of the kubelet's cgroup inside that root.

/// The unit the after-restart truth is read from.
pub const UNIT: &str = "kubelet.service";

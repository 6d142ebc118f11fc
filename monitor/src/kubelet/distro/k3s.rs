//! k3s (k3s-io/k3s): the kubelet runs in a goroutine of the k3s process
//! (`pkg/daemons/executor/embed.go`); `/usr/local/bin/k3s` execs
//! `<data-dir>/data/<hash>/bin/k3s-server` or `k3s-agent` (`cmd/k3s/main.go`), a link to the
//! same multi-call binary, which rewrites its title to `<argv0> server|agent` to hide its
//! arguments (`pkg/cli/server`, `pkg/cli/agent`: `gspt.SetProcTitle`).
//!
//! Its settings: `/etc/rancher/k3s/config.yaml` + `config.yaml.d/*.yaml` (`kubelet-arg`,
//! `kubelet-arg+`), `--kubelet-arg` in the `k3s.service` / `k3s-agent.service` `ExecStart=`
//! (the install script writes each argument single-quoted), its env files
//! (`/etc/systemd/system/k3s.service.env`, `K3S_CONFIG_FILE`), and the managed drop-ins in
//! `/var/lib/rancher/k3s/agent/etc/kubelet.conf.d/` — rules in [`super::rancher`].
//! Where a user edits: `/etc/rancher/k3s/config.yaml` (or a file in `config.yaml.d/`), never
//! the generated `00-k3s-defaults.conf` or the copies `10-cli-config.conf` /
//! `20-cli-config-dir/` that k3s rewrites at each start.

use super::rancher::Flavor;

pub const FLAVOR: Flavor = Flavor {
    name: "k3s",
    program: "k3s",
    config_default: "/etc/rancher/k3s/config.yaml",
    config_env: "K3S_CONFIG_FILE",
    data_dir_default: "/var/lib/rancher/k3s",
    units: ["k3s.service", "k3s-agent.service"],
    marker_files: ["/etc/rancher/k3s", "/var/lib/rancher/k3s/agent"],
    embedded: true,
};

//! The cost of one after-restart evaluation after a config edit, in process: the part of the
//! daemon's re-evaluation that reads the node (unit search, drop-ins, environment files, the
//! config file), without the daemon's own attribution and watch-set work.
//!
//! `cargo run --release -p kubelet-drift --example evaluation_cost [ITERATIONS] [--daemon] [--gap-ms N]`
//! (`--daemon`: what the daemon evaluates, `kubelet.service` with the assembly kept and the
//! distribution detected once, as the daemon keeps it; then what naming a change reads
//! (`daemon::naming::Read::of`) after a rename made the daemon forget it. Without it, what
//! `check` evaluates: distribution detection first, nothing kept. `--gap-ms N`: a pause of N ms
//! before each edit, as between a node's edits: the caches are then as cold as the daemon's,
//! whose debug log times an evaluation that follows tens of ms of sleep)
//!
//! A kubeadm-style node in a temporary directory (the upstream unit, a drop-in that reads an
//! env file, config.yaml); each iteration rewrites config.yaml (O_TRUNC, true/false in turn),
//! then times `evaluate_after_restart` and checks its verdict.

use std::path::Path;
use std::time::Instant;

use kubelet_drift::finding::{Benchmark, Finding, Status};
use kubelet_drift::kubelet::distro;
use kubelet_drift::kubelet::node::{after_restart_for_unit, evaluate_after_restart};
use kubelet_drift::kubelet::rootfs::RootFs;

const UNIT: &str =
    "[Unit]\nDescription=kubelet\n[Service]\nExecStart=/usr/bin/kubelet\nRestart=always\n";
const DROPIN: &str = "[Service]\n\
Environment=\"KUBELET_KUBECONFIG_ARGS=--bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf --kubeconfig=/etc/kubernetes/kubelet.conf\"\n\
Environment=\"KUBELET_CONFIG_ARGS=--config=/var/lib/kubelet/config.yaml\"\n\
EnvironmentFile=-/var/lib/kubelet/kubeadm-flags.env\n\
EnvironmentFile=-/etc/default/kubelet\n\
ExecStart=\n\
ExecStart=/usr/bin/kubelet $KUBELET_KUBECONFIG_ARGS $KUBELET_CONFIG_ARGS $KUBELET_KUBEADM_ARGS $KUBELET_EXTRA_ARGS\n";

fn config(value: bool) -> String {
    format!(
        "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n\
         makeIPTablesUtilChains: {value}\n"
    )
}

fn write(root: &Path, p: &str, text: &str) {
    let host = root.join(p.trim_start_matches('/'));
    std::fs::create_dir_all(host.parent().unwrap()).unwrap();
    std::fs::write(host, text).unwrap();
}

/// This thread's CPU time: on a loaded machine, wall time also counts the waits for a core.
fn cpu_now() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes the timespec it is given, which lives on this stack.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 * 1e6 + ts.tv_nsec as f64 / 1e3
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(2000);
    // `--daemon`: what the daemon calls (the unit named in its settings, no distribution
    // detection); without it, what `check` calls.
    let daemon = std::env::args().any(|a| a == "--daemon");
    let args: Vec<String> = std::env::args().collect();
    let gap = args
        .iter()
        .position(|a| a == "--gap-ms")
        .and_then(|i| args.get(i + 1)?.parse().ok())
        .map(std::time::Duration::from_millis);
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(root, "/lib/systemd/system/kubelet.service", UNIT);
    write(
        root,
        "/etc/systemd/system/kubelet.service.d/10-kubeadm.conf",
        DROPIN,
    );
    write(
        root,
        "/var/lib/kubelet/kubeadm-flags.env",
        "KUBELET_KUBEADM_ARGS=\"--container-runtime-endpoint=unix:///run/containerd/containerd.sock\"\n",
    );
    write(root, "/var/lib/kubelet/config.yaml", &config(true));
    // Everything but the config older than the cache's settling time, as on a real node.
    std::thread::sleep(std::time::Duration::from_millis(200));
    // The daemon's root keeps the assembled unit across evaluations (`rootfs::kept`).
    let fs = if daemon {
        RootFs::new(root).keeping()
    } else {
        RootFs::new(root)
    };
    // The daemon detects the node's distribution once and keeps it until a path operation.
    let detection = distro::detect(&fs, &[]);
    let mut us = Vec::with_capacity(n);
    let mut cpu = Vec::with_capacity(n);
    let mut last = None;
    for i in 0..n {
        let value = i % 2 == 1;
        if let Some(g) = gap {
            std::thread::sleep(g);
        }
        write(root, "/var/lib/kubelet/config.yaml", &config(value));
        let (t, c) = (Instant::now(), cpu_now());
        let f = if daemon {
            after_restart_for_unit(&fs, "kubelet.service", &[], Benchmark::Cis16, &detection)
        } else {
            evaluate_after_restart(&fs, &[], Benchmark::Cis16)
        };
        cpu.push(cpu_now() - c);
        us.push(t.elapsed().as_secs_f64() * 1e6);
        let want = if value { Status::Pass } else { Status::Fail };
        assert_eq!(f.status, want, "iteration {i}: {}", f.reason);
        last = Some(f);
    }
    print(
        "evaluate_after_restart after a config edit",
        &mut us,
        &mut cpu,
    );
    if daemon && let Some(f) = last {
        naming_cost(root, &f, n.min(500));
    }
}

fn print(what: &str, us: &mut [f64], cpu: &mut [f64]) {
    for (clock, v) in [("wall", us), ("cpu", cpu)] {
        v.sort_by(f64::total_cmp);
        let q = |p: f64| v[((v.len() - 1) as f64 * p).round() as usize];
        println!(
            "{what}, {clock} time: n={} p50 {:.0} µs, p90 {:.0} µs, p99 {:.0} µs, min {:.0} µs",
            v.len(),
            q(0.5),
            q(0.9),
            q(0.99),
            v[0]
        );
    }
}

/// What naming a change reads when nothing of it is kept (after a rename): every watched
/// path's target and the inputs' inodes, against the daemon's watch set for this node.
fn naming_cost(root: &Path, f: &Finding, n: usize) {
    use kubelet_drift::daemon::{naming::Read, proc::LiveProc};
    let mut set = kubelet_drift::watched::WatchSet::new();
    for p in kubelet_drift::watched::DEFAULT_PATHS {
        set.add(&root.join(p.trim_start_matches('/')));
    }
    for p in f.inputs.iter().chain(&f.input_dirs) {
        set.add(p);
    }
    let watched: Vec<_> = set.files.iter().cloned().collect();
    let (mut us, mut cpu) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for _ in 0..n {
        let (t, c) = (Instant::now(), cpu_now());
        let r = Read::of(f, &LiveProc, &watched);
        cpu.push(cpu_now() - c);
        us.push(t.elapsed().as_secs_f64() * 1e6);
        assert!(!r.inodes.is_empty());
    }
    print(
        &format!("naming's reads of {} watched paths", watched.len()),
        &mut us,
        &mut cpu,
    );
}

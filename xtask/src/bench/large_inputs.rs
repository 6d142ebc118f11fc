//! Large inputs and the cost of one evaluation.
//!
//! - `kubelet-drift check --root` on a fake node whose unit has 200 000 continuation lines
//!   (~600 KB), whose unit directory holds 20 000 empty drop-ins, and whose unit names one
//!   environment file 50 000 times: the unit parser, the drop-in collection and the
//!   environment resolution must stay linear (they were quadratic: 25 s, 23 s). A plain kubeadm
//!   node is the reference.
//! - The daemon's own evaluation time for a config edit (`took_us` of its `evaluated` debug
//!   line), over O_TRUNC rewrites of config.yaml: what is left once unchanged files are no
//!   longer re-read.

use std::{
    fs,
    io::{BufRead, BufReader},
    path::Path,
    process::{Command, Stdio},
    sync::mpsc,
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use serde_json::Value;

use super::{TempDir, latency, render, row, stats};

/// Runs of `check` per case (the median is shown).
const CHECK_RUNS: usize = 5;
/// Config edits timed in the daemon.
const EDITS: usize = 200;

const UNIT: &str = "[Service]\nExecStart=/usr/bin/kubelet --config=/var/lib/kubelet/config.yaml\n";

/// Writes `files` (path inside the root, content) under `root`.
fn write_all(root: &Path, files: &[(&str, String)]) -> Result<()> {
    for (p, text) in files {
        let host = root.join(p.trim_start_matches('/'));
        fs::create_dir_all(host.parent().unwrap())?;
        fs::write(&host, text).with_context(|| format!("writing {}", host.display()))?;
    }
    Ok(())
}

/// A node whose kubelet.service is `unit`, with a config.yaml that says true.
fn node(base: &Path, name: &str, unit: String) -> Result<TempDir> {
    let d = TempDir::new(base, name)?;
    write_all(
        &d.0,
        &[
            ("/lib/systemd/system/kubelet.service", unit),
            ("/var/lib/kubelet/config.yaml", latency::config_text(true)),
        ],
    )?;
    Ok(d)
}

/// CPU time (user + system) of the children waited for so far, in ms.
fn children_cpu_ms() -> f64 {
    // SAFETY: getrusage fills the struct it is given, zeroed here, on this stack.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: as above; RUSAGE_CHILDREN is a valid `who`.
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut ru) };
    let ms = |t: libc::timeval| t.tv_sec as f64 * 1e3 + t.tv_usec as f64 / 1e3;
    ms(ru.ru_utime) + ms(ru.ru_stime)
}

/// `check --root` on `root`: the median CPU and wall times in ms (on a loaded machine the wall
/// time is mostly waiting for a core), and the after-restart status.
fn check(bin: &Path, root: &Path) -> Result<(f64, f64, String)> {
    let mut ms = Vec::new();
    let mut cpu = Vec::new();
    let mut status = String::new();
    for _ in 0..CHECK_RUNS {
        let c = children_cpu_ms();
        let t = Instant::now();
        let out = Command::new(bin)
            .args(["check", "--format", "json", "--root"])
            .arg(root)
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
            .with_context(|| format!("running {} check", bin.display()))?;
        ms.push(t.elapsed().as_secs_f64() * 1000.0);
        cpu.push(children_cpu_ms() - c);
        let v: Value = serde_json::from_slice(&out.stdout)
            .with_context(|| format!("check's JSON on {}", root.display()))?;
        status = v["findings"][0]["status"]
            .as_str()
            .unwrap_or("none")
            .to_string();
    }
    Ok((stats::median(&cpu), stats::median(&ms), status))
}

/// The daemon's `took_us` for each of `EDITS` O_TRUNC rewrites of the config, on a kubeadm-style
/// node (`root`, `config`).
fn evaluation_times(bin: &Path, root: &Path, config: &Path, work: &Path) -> Result<Vec<f64>> {
    let stderr = work.join("evaluations.stderr");
    let mut child = Command::new(bin)
        .arg("run")
        .args(["--json-out", "-", "--journald", "false", "--text", "false"])
        .arg("--host-root")
        .arg(root)
        .args(["--kubelet-name", "kubelet-bench", "--node-name", "bench"])
        .env("KUBELET_DRIFT_LOG", "debug")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(fs::File::create(&stderr)?)
        .spawn()
        .with_context(|| format!("starting {}", bin.display()))?;
    let (tx, rx) = mpsc::channel();
    let out = child.stdout.take().unwrap();
    thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            if line.is_err() || tx.send(()).is_err() {
                break;
            }
        }
    });
    let baseline = rx.recv_timeout(Duration::from_secs(30));
    let result = (|| -> Result<()> {
        if baseline.is_err() {
            bail!("the daemon gave no baseline (see {})", stderr.display());
        }
        // Its kernel watch is armed just after the baseline.
        thread::sleep(Duration::from_millis(500));
        for i in 0..EDITS {
            fs::write(config, latency::config_text(i % 2 == 1))?;
            // One evaluation per edit: wait for its report.
            let _ = rx.recv_timeout(Duration::from_secs(2));
            thread::sleep(Duration::from_millis(5));
        }
        Ok(())
    })();
    // SAFETY: kill(2) on the pid of a child we started and have not reaped.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    let _ = child.wait();
    result?;
    let log = strip_ansi(&fs::read_to_string(&stderr)?);
    let took: Vec<f64> = log
        .lines()
        .filter(|l| l.contains("evaluated") && !l.contains("trigger=rescan"))
        .filter_map(|l| {
            let v = l.split("took_us=").nth(1)?;
            v.split(|c: char| !c.is_ascii_digit()).next()?.parse().ok()
        })
        .collect();
    if took.len() < EDITS / 2 {
        bail!(
            "only {} evaluations logged for {EDITS} edits (see {})",
            took.len(),
            stderr.display()
        );
    }
    Ok(took)
}

/// `s` without terminal colour sequences (`ESC [ ... m`), which the log may carry.
fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The rows of the large-input and evaluation-cost figures, as a table section.
pub fn table(bin: &Path, base: &Path) -> Result<String> {
    super::setup_say("large inputs: check on large units and many drop-ins");
    let mut rows = Vec::new();
    let mut case = |label: &str, d: &TempDir, want: &str, target_ms: Option<f64>| -> Result<()> {
        let (cpu, wall, status) = check(bin, &d.0)?;
        if status != want {
            bail!("{label}: check says {status}, expected {want}");
        }
        rows.push(row(
            label,
            format!("{cpu:.0} ms CPU"),
            format!("{wall:.0} ms wall; check --root, median of {CHECK_RUNS}, {status}"),
            &target_ms.map_or("reference".into(), |t| format!("≤ {t:.0} ms CPU (linear)")),
            target_ms.map(|t| cpu <= t),
        ));
        Ok(())
    };

    let plain = node(base, "kd-plain", UNIT.into())?;
    case("large: plain node", &plain, "pass", None)?;

    let mut unit = String::from("[Service]\nExecStart=/usr/bin/kubelet \\\n");
    for _ in 0..200_000 {
        unit.push_str("\t\\\n");
    }
    unit.push_str("  --make-iptables-util-chains=false\n");
    let long = node(base, "kd-long-unit", unit)?;
    case(
        "large: 200k continuation lines",
        &long,
        "fail",
        Some(1000.0),
    )?;
    drop(long);

    let many = node(base, "kd-dropins", UNIT.into())?;
    let dir = many.0.join("etc/systemd/system/kubelet.service.d");
    fs::create_dir_all(&dir)?;
    for i in 0..20_000 {
        fs::write(dir.join(format!("{i:05}.conf")), "")?;
    }
    case("large: 20k empty drop-ins", &many, "pass", Some(1000.0))?;
    drop(many);

    let vars: String = (0..20_000)
        .map(|i| format!("V{i}=--v={}\n", i % 10))
        .collect();
    let refs = "EnvironmentFile=/etc/k.env\n".repeat(50_000);
    let envs = node(
        base,
        "kd-envfiles",
        format!(
            "[Service]\n{refs}ExecStart=/usr/bin/kubelet --config=/var/lib/kubelet/config.yaml $V7\n"
        ),
    )?;
    write_all(&envs.0, &[("/etc/k.env", vars)])?;
    case(
        "large: one env file named 50k times",
        &envs,
        "pass",
        Some(1000.0),
    )?;
    drop(envs);

    super::setup_say(&format!(
        "evaluation cost: {EDITS} config edits, daemon debug log"
    ));
    let kubeadm = TempDir::new(base, "kd-eval")?;
    let config = super::fake_node(&kubeadm.0)?;
    let took = evaluation_times(bin, &kubeadm.0, &config, base)?;
    let p50 = stats::percentile(&took, 0.5);
    rows.push(row(
        "evaluation of a config edit p50 / p99",
        format!("{p50:.0} / {:.0} µs", stats::percentile(&took, 0.99)),
        format!("daemon took_us, n={}, kubeadm node", took.len()),
        "p50 ≤ 150 µs",
        Some(p50 <= 150.0),
    ));
    Ok(format!(
        "\n\nLarge inputs and evaluation cost:\n\n{}",
        render(&rows)
    ))
}

#[cfg(test)]
mod tests {
    /// The section alone, against a release build: `cargo build --release -p kubelet-drift`,
    /// then `cargo test -p xtask large_inputs -- --ignored --nocapture` as root.
    #[test]
    #[ignore = "needs a release build of kubelet-drift and root (the daemon loads eBPF)"]
    fn large_inputs_section() {
        let bin = std::env::var_os("KUBELET_DRIFT_BIN")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| crate::setup::workspace_root().join("target/release/kubelet-drift"));
        let base = super::TempDir::new(std::path::Path::new("/dev/shm"), "kd-large").unwrap();
        println!("{}", super::table(&bin, &base.0).unwrap());
    }
}

//! Node noise: what every node does all day, none of it about the kubelet. The daemon must
//! not hear of it: 0 ring-buffer records, 0 wakeups. And the evaluation's own time for a
//! config edit, from the daemon's debug log.

use std::{
    fs,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};

use super::{
    bpf,
    latency::{self, EditKind},
    procs::{self, Daemon},
};

/// The loop, for `secs` seconds: a write to /dev/null, a rewrite of an unrelated `*.conf` in
/// the node's /etc, an append to a log, a rewrite of a scratch file in /tmp, an unrelated unit
/// created (by a rename, as tools do) and removed in the node's /etc/systemd/system (next to a
/// masked unit, a link to /dev/null), and /bin/true. Prints the number of iterations.
const LOOP: &str = r#"
r="$1"; secs="$2"; scratch="/tmp/kd-bench-noise.$$"; i=0
unit="$r/etc/systemd/system/kd-bench-noise.service"
while [ "$SECONDS" -lt "$secs" ]; do
    echo > /dev/null
    printf 'key = %s\n' "$i" > "$r/etc/some-app.conf"
    echo "line $i" >> "$r/var/log/some-app.log"
    printf '%s\n' "$i" > "$scratch"
    printf '[Service]\nExecStart=/bin/true\n' > "$unit.tmp"
    mv "$unit.tmp" "$unit"
    rm -f "$unit"
    /bin/true
    i=$((i + 1))
done
rm -f "$scratch"
echo "$i"
"#;

pub struct Noise {
    /// The same measures over an equal window just before, without the loop: what the
    /// rest of the machine causes (on this shared VM, other sessions' kubelet-shaped tests).
    pub control_records: u64,
    pub control_wakeups: u64,
    pub seconds: f64,
    pub iterations: u64,
    /// Ring-buffer records the daemon's programs sent during the loop.
    pub records: u64,
    /// Voluntary context switches of all the daemon's threads during the loop.
    pub wakeups: u64,
    pub cpu_ms: f64,
    /// Lines (reports) the daemon wrote during the loop.
    pub lines: usize,
}

/// Adds what the loop needs to the fake node: a masked unit (a link to /dev/null) among the
/// units, as real nodes have, and the log directory.
pub fn prepare(root: &Path) -> Result<()> {
    let masked = root.join("etc/systemd/system/kd-bench-masked.service");
    let _ = fs::remove_file(&masked);
    std::os::unix::fs::symlink("/dev/null", &masked)
        .with_context(|| format!("creating {}", masked.display()))?;
    fs::create_dir_all(root.join("var/log"))?;
    Ok(())
}

/// Runs the loop for `secs` seconds beside the daemon, after a control window as long.
pub fn run(d: &mut Daemon, root: &Path, secs: u64) -> Result<Noise> {
    thread::sleep(Duration::from_millis(300));
    d.drain();
    let cv0 = procs::status_field(d.pid, "voluntary_ctxt_switches", true)?;
    let ck0 = bpf::counters(d.pid)?;
    thread::sleep(Duration::from_secs(secs));
    let ck1 = bpf::counters(d.pid)?;
    let cv1 = procs::status_field(d.pid, "voluntary_ctxt_switches", true)?;
    let v0 = procs::status_field(d.pid, "voluntary_ctxt_switches", true)?;
    let c0 = procs::cpu_seconds(d.pid)?;
    let k0 = bpf::counters(d.pid)?;
    let t0 = Instant::now();
    let out = Command::new("bash")
        .arg("-c")
        .arg(LOOP)
        .arg("kd-bench-noise")
        .arg(root)
        .arg(secs.to_string())
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .context("running the noise loop (bash)")?;
    let wall = t0.elapsed().as_secs_f64();
    // Records already sent are in the ring; give the daemon a moment to wake for them.
    thread::sleep(Duration::from_millis(200));
    let k1 = bpf::counters(d.pid)?;
    let v1 = procs::status_field(d.pid, "voluntary_ctxt_switches", true)?;
    let c1 = procs::cpu_seconds(d.pid)?;
    if !out.status.success() {
        bail!("the noise loop failed: {}", out.status);
    }
    let iterations = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(0);
    Ok(Noise {
        control_records: ck1[bpf::SENT] - ck0[bpf::SENT],
        control_wakeups: cv1 - cv0,
        seconds: wall,
        iterations,
        records: k1[bpf::SENT] - k0[bpf::SENT],
        wakeups: v1 - v0,
        cpu_ms: (c1 - c0) * 1000.0,
        lines: d.drain().len(),
    })
}

/// The evaluation's own time (`took_us` of the daemon's `evaluated` debug lines) for `edits`
/// O_TRUNC rewrites of config.yaml, each awaited. The daemon runs with
/// `KUBELET_DRIFT_LOG=debug` (a separate run: the log costs time of its own).
pub fn evaluation_us(
    bin: &Path,
    args: &[String],
    stderr: &Path,
    config: &Path,
    edits: usize,
) -> Result<Vec<f64>> {
    let mut d = Daemon::start_with_env(bin, args, stderr, &[("KUBELET_DRIFT_LOG", "debug")])?;
    thread::sleep(Duration::from_millis(300));
    let from = fs::metadata(stderr).map(|m| m.len()).unwrap_or(0) as usize;
    for i in 0..edits {
        // The file holds true: false, true, false, ...
        let value = i % 2 == 1;
        latency::edit(config, value, EditKind::Truncate)?;
        let want = value.to_string();
        d.wait_for(Duration::from_secs(5), |v| {
            procs::subject_kind(v) == "after_restart" && v["unmapped"]["effective"] == want
        })
        .with_context(|| format!("no finding for edit {i} of the evaluation-time run"))?;
        thread::sleep(Duration::from_millis(5));
    }
    fs::write(config, latency::config_text(true))?;
    thread::sleep(Duration::from_millis(200));
    d.stop();
    let text = fs::read(stderr).unwrap_or_default();
    let text = String::from_utf8_lossy(&text[from.min(text.len())..]).into_owned();
    Ok(took_us(&text))
}

/// `took_us=N` of every `evaluated` line whose trigger is a write (open/close).
fn took_us(log: &str) -> Vec<f64> {
    strip_ansi(log)
        .lines()
        .filter(|l| {
            l.contains("evaluated") && (l.contains("trigger=close") || l.contains("trigger=open"))
        })
        .filter_map(|l| {
            let v = l.split("took_us=").nth(1)?;
            let end = v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len());
            v[..end].parse().ok()
        })
        .collect()
}

/// The log without terminal escapes (tracing colours its fields even into a file).
fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut it = s.chars().peekable();
    while let Some(c) = it.next() {
        if c == '\u{1b}' && it.peek() == Some(&'[') {
            it.next();
            for d in it.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The corpus of third-party files the fake node is built from: `../shared/corpus` next to
/// the checkout.
pub fn corpus_dir(workspace: &Path) -> Result<PathBuf> {
    let corpus = workspace.join("../shared/corpus");
    if corpus.is_dir() {
        return Ok(corpus);
    }
    bail!(
        "the shared corpus is missing: expected it at {} (the `shared` directory next to this \
         checkout, holding kubernetes-release/kubelet.service and kind/10-kubeadm.conf); the \
         bench builds its fake node from it",
        corpus.display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_took_us() {
        let log = "2026-12-01T10:00:00Z DEBUG kubelet_drift::daemon: evaluated triggers=1 trigger=close since_first_us=310 took_us=142\n\
                   DEBUG evaluated triggers=1 trigger=rescan took_us=900\n\
                   DEBUG evaluated trigger=open took_us=77 other=1\n";
        assert_eq!(took_us(log), vec![142.0, 77.0]);
        let colored = "\u{1b}[2m2026\u{1b}[0m DEBUG evaluated \u{1b}[3mtrigger\u{1b}[0m\u{1b}[2m=\u{1b}[0mclose \u{1b}[3mtook_us\u{1b}[0m\u{1b}[2m=\u{1b}[0m512\n";
        assert_eq!(took_us(colored), vec![512.0]);
    }

    #[test]
    fn missing_corpus_is_a_clear_error() {
        let t = std::env::temp_dir().join(format!("kd-no-corpus-{}", std::process::id()));
        fs::create_dir_all(t.join("ws")).unwrap();
        let e = corpus_dir(&t.join("ws")).unwrap_err().to_string();
        assert!(e.contains("shared corpus is missing"), "{e}");
        fs::remove_dir_all(&t).unwrap();
    }
}

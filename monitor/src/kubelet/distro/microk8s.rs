//! MicroK8s (canonical/microk8s): `snap.microk8s.daemon-kubelite.service` runs
//! `microk8s-resources/wrappers/run-kubelite-with-args`, which execs
//! `$SNAP/kubelite "${args[@]}"` with the words of `$SNAP_DATA/args/kubelite`
//! (`declare -a args="($(cat …))"`), by default
//! `--kubelet-args-file=${SNAP_DATA}/args/kubelet` among the other components' files.
//! kubelite runs the kubelet in a goroutine (`cmd/kubelite/app/cmd.go`:
//! `daemon.StartKubelet(options.ReadArgsFromFile(opts.KubeletArgsFile))`, default file
//! `/var/snap/microk8s/current/args/kubelet`).
//!
//! `ReadArgsFromFile` (`cmd/kubelite/app/options/options.go`): for each line (bufio.Scanner),
//! `strings.TrimSpace`; skip it when empty or starting with `#`; delete every `"` and `'`;
//! split on single spaces (two spaces make an empty argument); `os.ExpandEnv` each part
//! (`$VAR`, `${VAR}`, unset is empty) with kubelite's environment (the snap's `SNAP`,
//! `SNAP_DATA`, `SNAP_COMMON`, …). The result is the kubelet's argv after argv[0].
//!
//! Running: the kubelite process's `--kubelet-args-file` and environment, exactly. After a
//! restart: the same file, with the snap's variables for the current revision
//! (`/var/snap/microk8s/current` -> `<rev>`); a variable outside that set in an argument that
//! can matter is an error. Where a user edits: the args file itself, then
//! `snap restart microk8s.daemon-kubelite`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::super::discovery::KubeletProcess;
use super::super::evaluate::{EvalInput, Evaluation, evaluate_versioned};
use super::super::rootfs::RootFs;
use super::version::{self, KubeletVersion};
use crate::finding::{Benchmark, Finding, Source, Status, Subject};

pub const MARKERS: &[&str] = &[
    "/var/snap/microk8s/current/args/kubelet",
    "/snap/microk8s/current",
    "/var/snap/microk8s",
];
pub const UNIT: &str = "snap.microk8s.daemon-kubelite.service";
pub const DEFAULT_ARGS_FILE: &str = "/var/snap/microk8s/current/args/kubelet";
const RESTART: &str = "restart kubelite (snap restart microk8s.daemon-kubelite)";

fn is_special(c: u8) -> bool {
    matches!(
        c,
        b'*' | b'#' | b'$' | b'@' | b'!' | b'?' | b'-' | b'0'..=b'9'
    )
}

fn is_alnum(c: u8) -> bool {
    c == b'_' || c.is_ascii_alphanumeric()
}

/// Go's `getShellName`: the name after `$`, and how many bytes it takes.
fn shell_name(s: &[u8]) -> (&[u8], usize) {
    if s[0] == b'{' {
        if s.len() > 2 && is_special(s[1]) && s[2] == b'}' {
            return (&s[1..2], 3);
        }
        for i in 1..s.len() {
            if s[i] == b'}' {
                if i == 1 {
                    return (b"", 2); // bad syntax: "${}" is eaten
                }
                return (&s[1..i], i + 1);
            }
        }
        return (b"", 1); // bad syntax: "${" is eaten
    }
    if is_special(s[0]) {
        return (&s[0..1], 1);
    }
    let n = s.iter().take_while(|&&c| is_alnum(c)).count();
    (&s[..n], n)
}

/// Go's `os.Expand(s, lookup)`; names `lookup` cannot answer are pushed to `unknown` (and
/// expand to nothing, as an unset variable does).
pub fn go_expand(
    s: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    unknown: &mut Vec<String>,
) -> String {
    let b = s.as_bytes();
    let mut out: Vec<u8> = Vec::with_capacity(b.len());
    let mut i = 0;
    let mut j = 0;
    while j < b.len() {
        if b[j] == b'$' && j + 1 < b.len() {
            out.extend_from_slice(&b[i..j]);
            let (name, w) = shell_name(&b[j + 1..]);
            if name.is_empty() && w > 0 {
                // invalid syntax: the characters are eaten
            } else if name.is_empty() {
                out.push(b'$');
            } else {
                let name = String::from_utf8_lossy(name).into_owned();
                match lookup(&name) {
                    Some(v) => out.extend_from_slice(v.as_bytes()),
                    None => unknown.push(name),
                }
            }
            j += w;
            i = j + 1;
        }
        j += 1;
    }
    out.extend_from_slice(&b[i.min(b.len())..]);
    String::from_utf8_lossy(&out).into_owned()
}

/// One kubelet argument from the args file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Part {
    pub text: String,
    pub line: usize,
    /// Variables whose value is not known (after restart only).
    pub unknown: Vec<String>,
}

/// `ReadArgsFromFile`, with `lookup` as the environment.
pub fn read_args(text: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Vec<Part> {
    let mut out = Vec::new();
    // bufio.Scanner's ScanLines: lines split on \n, a trailing \r dropped.
    for (n, raw) in text.split('\n').enumerate() {
        if n + 1 == text.split('\n').count() && raw.is_empty() {
            break;
        }
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        let line = line.trim_matches(|c: char| c.is_whitespace());
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line: String = line.chars().filter(|&c| c != '"' && c != '\'').collect();
        for part in line.split(' ') {
            let mut unknown = Vec::new();
            let text = go_expand(part, lookup, &mut unknown);
            out.push(Part {
                text,
                line: n + 1,
                unknown,
            });
        }
    }
    out
}

/// The snap's variables for the revision `/var/snap/microk8s/current` points to.
fn snap_env(fs: &RootFs) -> HashMap<String, String> {
    let rev = fs
        .resolve(Path::new("/var/snap/microk8s"), Path::new("/"))
        .ok()
        .and_then(|h| std::fs::read_link(h.join("current")).ok())
        .and_then(|t| t.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "current".into());
    [
        ("SNAP", format!("/snap/microk8s/{rev}")),
        ("SNAP_DATA", format!("/var/snap/microk8s/{rev}")),
        ("SNAP_COMMON", "/var/snap/microk8s/common".into()),
        ("SNAP_NAME", "microk8s".into()),
        ("SNAP_INSTANCE_NAME", "microk8s".into()),
        ("SNAP_REVISION", rev.clone()),
        ("SNAP_USER_DATA", format!("/root/snap/microk8s/{rev}")),
        ("SNAP_USER_COMMON", "/root/snap/microk8s/common".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// kubelite's `--kubelet-args-file` (pflag: `--f=v` or `--f v`; the last wins).
fn args_file_flag(words: &[String]) -> Option<String> {
    let mut found = None;
    let mut i = 0;
    while i < words.len() {
        let w = &words[i];
        if let Some(v) = w.strip_prefix("--kubelet-args-file=") {
            found = Some(v.to_string());
        } else if w == "--kubelet-args-file" {
            found = words.get(i + 1).cloned();
            i += 1;
        }
        i += 1;
    }
    found
}

/// The words of `$SNAP_DATA/args/kubelite` as the wrapper's `declare -a args="($(cat …))"`
/// makes them, for the common shapes (blank-separated words, quotes removed, `$VAR`/`${VAR}`).
fn kubelite_words(text: &str, env: &HashMap<String, String>) -> Vec<String> {
    let mut out = Vec::new();
    for line in text.lines() {
        for w in line.split_whitespace() {
            if w.starts_with('#') {
                break;
            }
            let w: String = w.chars().filter(|&c| c != '"' && c != '\'').collect();
            let mut unknown = Vec::new();
            out.push(go_expand(&w, &|n| env.get(n).cloned(), &mut unknown));
        }
    }
    out
}

fn matters(part: &Part) -> bool {
    let t = part.text.trim_start_matches('-');
    let name = t.split('=').next().unwrap_or("").replace('_', "-");
    part.text.is_empty()
        || !part.text.starts_with('-')
        || name.starts_with("config")
        || name.starts_with("make-iptables")
}

/// Evaluates the kubelet argv read from `file` (inside `fs`) with `lookup` as kubelite's
/// environment.
fn evaluate_args_file(
    fs: &RootFs,
    file: &Path,
    cwd: &Path,
    env: &HashMap<String, String>,
    lookup: &dyn Fn(&str) -> Option<String>,
    kv: &Result<KubeletVersion, String>,
) -> (Evaluation, Vec<String>) {
    let text = match fs.read_text(file, cwd) {
        Ok(t) => t,
        Err(e) => {
            let ev = Evaluation {
                status: Status::Error,
                effective: None,
                source: Source::ConfigFile {
                    path: file.to_path_buf(),
                    line: None,
                },
                reason: format!(
                    "MicroK8s: kubelite cannot read the kubelet's args file and exits: {e}"
                ),
                remediation: format!(
                    "restore {} (one kubelet flag per line), then {RESTART}",
                    file.display()
                ),
                inputs: fs.resolve(file, cwd).ok().into_iter().collect(),
                input_dirs: Vec::new(),
            };
            return (ev, vec!["kubelet".into()]);
        }
    };
    let parts = read_args(&text.text, lookup);
    let argv: Vec<String> = std::iter::once("kubelet".to_string())
        .chain(parts.iter().map(|p| p.text.clone()))
        .collect();
    let mut ev = evaluate_versioned(
        &EvalInput {
            fs,
            argv: &argv,
            cwd,
            env,
        },
        kv.as_ref().ok(),
    );
    version::explain_unknown(&mut ev, kv);
    ev.inputs.push(text.host_path.clone());
    let shown = text.path_in_root.clone();
    if let Some(p) = parts.iter().find(|p| !p.unknown.is_empty() && matters(p)) {
        ev.status = Status::Error;
        ev.effective = None;
        ev.source = Source::ConfigFile {
            path: shown.clone(),
            line: Some(p.line),
        };
        ev.reason = format!(
            "MicroK8s: {} line {} uses ${} whose value in kubelite's environment is not known here, in an argument that can decide the verdict",
            shown.display(),
            p.line,
            p.unknown.join(", $")
        );
        ev.remediation = format!(
            "write the value out at {} line {}, then {RESTART}",
            shown.display(),
            p.line
        );
        return (ev, argv);
    }
    if let Source::Flag { index, text: t } = ev.source.clone()
        && index >= 1
        && let Some(p) = parts.get(index - 1)
    {
        ev.reason = format!(
            "MicroK8s: {} line {} gives the kubelet {t:?}: {}",
            shown.display(),
            p.line,
            ev.reason
        );
        ev.remediation = if ev.status == Status::Error {
            format!(
                "fix or remove line {} of {}, then {RESTART}",
                p.line,
                shown.display()
            )
        } else {
            format!(
                "change line {} of {} to --make-iptables-util-chains=true (or remove it), then {RESTART}",
                p.line,
                shown.display()
            )
        };
        if ev.status != Status::Pass {
            ev.source = Source::ConfigFile {
                path: shown.clone(),
                line: Some(p.line),
            };
        }
    }
    ev.reason = format!(
        "{} (MicroK8s: the kubelet's flags read from {} as kubelite reads them)",
        ev.reason,
        shown.display()
    );
    (ev, argv)
}

/// After a restart: kubelite's args file for the current revision.
pub fn after_restart(fs: &RootFs, benchmark: Benchmark) -> Finding {
    let env = snap_env(fs);
    let mut inputs = Vec::new();
    let kl = Path::new(&env["SNAP_DATA"]).join("args/kubelite");
    inputs.extend(fs.resolve(&kl, Path::new("/")).ok());
    let words = match fs.read_text_optional(&kl, Path::new("/")) {
        Ok(Some(t)) => kubelite_words(&t.text, &env),
        _ => Vec::new(),
    };
    let file = args_file_flag(&words).unwrap_or_else(|| DEFAULT_ARGS_FILE.to_string());
    let lookup = |n: &str| env.get(n).cloned();
    let kv = version::of_program(fs, "/snap/microk8s/current/kubelite");
    let (ev, argv) = evaluate_args_file(fs, Path::new(&file), Path::new("/"), &env, &lookup, &kv);
    let unit = super::super::unit::UNIT_PATH
        .iter()
        .map(|d| Path::new(d).join(UNIT))
        .find(|p| super::exists(fs, &p.to_string_lossy()));
    // The snap's unit is watched too (the one found, or where snapd writes it): it is this
    // finding's subject.
    let unit_name = unit
        .clone()
        .unwrap_or_else(|| Path::new("/etc/systemd/system").join(UNIT));
    inputs.extend(fs.resolve(&unit_name, Path::new("/")).ok());
    let mut f = ev.into_finding(
        Subject::AfterRestart {
            unit,
            argv,
            exec_start_from: Some(PathBuf::from(&file)),
        },
        benchmark,
    );
    f.inputs.extend(inputs);
    f
}

/// A running kubelite: its own `--kubelet-args-file` and environment.
pub fn running(p: &KubeletProcess, benchmark: Benchmark, evaluated_late: bool) -> Finding {
    let fs = RootFs::new(&p.root);
    let file = args_file_flag(&p.argv).unwrap_or_else(|| DEFAULT_ARGS_FILE.to_string());
    // Exact: an unset variable is empty for kubelite too.
    let lookup = |n: &str| Some(p.env.get(n).cloned().unwrap_or_default());
    let kv = version::of_process(&p.root);
    let (mut ev, _argv) = evaluate_args_file(&fs, Path::new(&file), &p.cwd, &p.env, &lookup, &kv);
    // kubelite read its args file (and the kubelet its config) once, at its start: found
    // already running, a file changed since makes the running verdict unknown.
    let started = super::started::process_started(p.start_time);
    if evaluated_late && let Some(path) = super::started::changed_since(&ev.inputs, None, started) {
        ev.status = Status::Error;
        ev.effective = None;
        ev.reason = format!(
            "MicroK8s: kubelite pid {} read the kubelet's flags at its start, and {} changed after it started, so what its kubelet runs with is not known (as the files are now: {})",
            p.pid,
            path.display(),
            ev.reason
        );
        ev.remediation = format!(
            "the after-restart finding says what kubelite will run with; {RESTART} so that the running kubelet matches the files"
        );
    } else if evaluated_late {
        ev.reason.push_str(&format!(
            " (kubelite pid {} was already running: its args file and the files it names have not changed since it started)",
            p.pid
        ));
    }
    if p.non_utf8 {
        ev.status = Status::Error;
        ev.effective = None;
        ev.reason = format!(
            "kubelite's environment or arguments are not UTF-8 text: {}",
            ev.reason
        );
    }
    ev.into_finding(
        Subject::Running {
            pid: p.pid,
            start_time: p.start_time,
            argv: p.argv.clone(),
            evaluated_late,
        },
        benchmark,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(k: &str) -> Option<String> {
        match k {
            "SNAP_DATA" => Some("/var/snap/microk8s/42".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn go_expand_matches_os_expand() {
        let cases = [
            ("${SNAP_DATA}/args", "/var/snap/microk8s/42/args", 0),
            ("$SNAP_DATA/args", "/var/snap/microk8s/42/args", 0),
            ("$SNAP_DATAx", "", 1),
            ("a$", "a$", 0),
            ("${}x", "x", 0),
            ("${x", "x", 0),
            ("$$", "", 1),
            ("$1a", "a", 1),
            ("${EMPTY}z", "z", 0),
            ("a$-b", "ab", 1),
            ("no vars", "no vars", 0),
            ("$", "$", 0),
            ("$/", "$/", 0),
        ];
        for (s, want, unknown) in cases {
            let mut u = Vec::new();
            assert_eq!(go_expand(s, &env, &mut u), want, "{s}");
            assert_eq!(u.len(), unknown, "{s}: {u:?}");
        }
    }

    #[test]
    fn args_file_as_kubelite_reads_it() {
        let text = "# comment\n--kubeconfig=${SNAP_DATA}/credentials/kubelet.config\n  --node-labels=\"a=b\"  \n\n--x='y z'\n--a  --b\r\n--last";
        let parts = read_args(text, &env);
        let got: Vec<(&str, usize)> = parts.iter().map(|p| (p.text.as_str(), p.line)).collect();
        assert_eq!(
            got,
            vec![
                (
                    "--kubeconfig=/var/snap/microk8s/42/credentials/kubelet.config",
                    2
                ),
                ("--node-labels=a=b", 3),
                ("--x=y", 5),
                ("z", 5),
                ("--a", 6),
                ("", 6),
                ("--b", 6),
                ("--last", 7),
            ]
        );
    }

    #[test]
    fn kubelite_own_args() {
        let env: HashMap<String, String> =
            [("SNAP_DATA".to_string(), "/var/snap/microk8s/7".to_string())].into();
        let w = kubelite_words(
            "--scheduler-args-file=$SNAP_DATA/args/kube-scheduler\n--kubelet-args-file=\"${SNAP_DATA}/args/kubelet\" # x\n",
            &env,
        );
        assert_eq!(
            args_file_flag(&w).as_deref(),
            Some("/var/snap/microk8s/7/args/kubelet")
        );
        let v: Vec<String> = [
            "kubelite",
            "--kubelet-args-file",
            "/a",
            "--kubelet-args-file=/b",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(args_file_flag(&v).as_deref(), Some("/b"));
    }
}

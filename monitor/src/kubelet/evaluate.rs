//! Flags + files -> the effective makeIPTablesUtilChains, with provenance, in the kubelet's
//! order (`cmd/kubelet/app/server.go` `NewKubeletCommand`): parse flags -> `--config` file
//! (replaces everything) -> `--config-dir` drop-ins (merged) -> the same flags again on top.
//! Never a pass on doubt: anything the kubelet would refuse, anything unreadable, and anything
//! that depends on the (unknown) kubelet version is an error.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::config::{self, FIELD, FileSettings, MergeEra, Origin};
use super::distro::version::KubeletVersion;
use super::flags;
use super::rootfs::RootFs;
use crate::finding::{Benchmark, Finding, Source, Status, Subject};

pub struct EvalInput<'a> {
    pub fs: &'a RootFs,
    pub argv: &'a [String],
    /// The kubelet's working directory, inside the root.
    pub cwd: &'a Path,
    /// The kubelet's environment (for `KUBELET_CONFIG_DROPIN_DIR_ALPHA`).
    pub env: &'a HashMap<String, String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Evaluation {
    pub status: Status,
    pub effective: Option<bool>,
    pub source: Source,
    pub reason: String,
    pub remediation: String,
    /// Host paths of every file read, or that would be read if it existed.
    pub inputs: Vec<PathBuf>,
    /// Host paths of the `--config-dir`.
    pub input_dirs: Vec<PathBuf>,
}

impl Evaluation {
    pub fn into_finding(self, subject: Subject, benchmark: Benchmark) -> Finding {
        Finding {
            control: benchmark.control_id().to_string(),
            status: self.status,
            effective: self.effective,
            subject,
            source: self.source,
            reason: self.reason,
            remediation: self.remediation,
            inputs: self.inputs,
            input_dirs: self.input_dirs,
        }
    }
}

pub const DROPIN_ALPHA_ENV: &str = "KUBELET_CONFIG_DROPIN_DIR_ALPHA";

const RESTART: &str = "then restart the kubelet";

fn error(source: Source, reason: String, remediation: String) -> Evaluation {
    Evaluation {
        status: Status::Error,
        effective: None,
        source,
        reason,
        remediation,
        inputs: Vec::new(),
        input_dirs: Vec::new(),
    }
}

fn decided(value: bool, source: Source, reason: String, remediation: String) -> Evaluation {
    Evaluation {
        status: if value { Status::Pass } else { Status::Fail },
        effective: Some(value),
        source,
        reason,
        remediation: if value { String::new() } else { remediation },
        inputs: Vec::new(),
        input_dirs: Vec::new(),
    }
}

/// The files and directories an evaluation read, or would read if they existed (host paths):
/// what the daemon watches.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Inputs {
    pub files: Vec<PathBuf>,
    pub dirs: Vec<PathBuf>,
}

/// The configuration as the kubelet's steps build it, with the provenance of the value.
struct Acc {
    value: bool,
    source: Source,
    reason: String,
    remediation: String,
    notes: Vec<String>,
}

impl Acc {
    /// Before any file: the kubelet's default.
    fn defaults() -> Self {
        Acc {
            value: true,
            source: Source::Default,
            reason: format!(
                "no flag, config file or drop-in sets {FIELD}; the kubelet's default is true"
            ),
            remediation: String::new(),
            notes: Vec::new(),
        }
    }

    fn decided(self) -> Evaluation {
        let reason = if self.notes.is_empty() {
            self.reason
        } else {
            format!("{} (note: {})", self.reason, self.notes.join("; "))
        };
        decided(self.value, self.source, reason, self.remediation)
    }
}

/// An evaluation that stops at a step: the kubelet would not start, or we cannot tell.
type Stop = Box<Evaluation>;

pub fn evaluate(input: &EvalInput) -> Evaluation {
    evaluate_versioned(input, None)
}

/// [`evaluate`] for a kubelet whose version was read from its executable
/// ([`super::distro::version`]): what depends on the version is decided, and says so.
pub fn evaluate_versioned(input: &EvalInput, version: Option<&KubeletVersion>) -> Evaluation {
    let mut inputs = Inputs::default();
    let mut ev = match steps(input, version, &mut inputs) {
        Ok(acc) => acc.decided(),
        Err(stop) => *stop,
    };
    ev.inputs = inputs.files;
    ev.input_dirs = inputs.dirs;
    ev
}

fn line_of(l: Option<usize>) -> String {
    l.map(|l| format!(" line {l}")).unwrap_or_default()
}

/// The kubelet's four steps (`NewKubeletCommand`): flags, `--config`, `--config-dir`, flags
/// again on top.
fn steps(
    input: &EvalInput,
    version: Option<&KubeletVersion>,
    inputs: &mut Inputs,
) -> Result<Acc, Stop> {
    let parsed = parse_flags(input)?;
    let mut acc = Acc::defaults();
    // Without a --config file, the configuration the drop-ins merge over is the one the first
    // parse built, this flag included (the second parse may not re-apply it).
    if parsed.config_path().is_none()
        && let Some(first) = &parsed.before_files
    {
        apply_flag(first, &mut acc);
    }
    if let Some(path) = parsed.config_path() {
        config_file(input, Path::new(path), &mut acc, inputs)?;
    }
    if let Some(dir) = parsed.config_dir_path() {
        config_dir(input, Path::new(dir), &parsed, version, &mut acc, inputs)?;
    }
    flags_on_top(&parsed, &mut acc);
    Ok(acc)
}

/// Step 1: the command line, which the kubelet refuses or obeys as a whole.
fn parse_flags(input: &EvalInput) -> Result<flags::ParsedFlags, Stop> {
    let parsed = flags::parse(input.argv).map_err(|e| {
        error(
            Source::Flag {
                index: e.index,
                text: e.text.clone(),
            },
            format!(
                "the kubelet would not start: argv[{}] {:?}: {}",
                e.index, e.text, e.reason
            ),
            format!(
                "fix or remove argv[{}] {:?} (for this control use --make-iptables-util-chains=true), {RESTART}",
                e.index, e.text
            ),
        )
    })?;
    if let Some(at) = &parsed.exits_early {
        return Err(Box::new(error(
            Source::Flag {
                index: at.index,
                text: at.text.clone(),
            },
            format!(
                "{} at argv[{}] makes the kubelet print and exit instead of running",
                at.text, at.index
            ),
            format!(
                "remove {} from the kubelet's command line, {RESTART}",
                at.text
            ),
        )));
    }
    Ok(parsed)
}

/// The reason for a file the kubelet refuses, or whose reading we do not reproduce.
fn decode_reason(what: &str, shown: &Path, e: &config::ConfigError) -> String {
    if e.refused {
        format!(
            "kubelet-drift cannot tell how the kubelet reads {what}{}{}: {} (outside the YAML it reads exactly: see the README)",
            shown.display(),
            line_of(e.line),
            e.reason
        )
    } else {
        format!(
            "the kubelet would not start: {what}{}{}: {}",
            shown.display(),
            line_of(e.line),
            e.reason
        )
    }
}

/// Step 2: `--config` replaces the flag-built configuration.
fn config_file(
    input: &EvalInput,
    path: &Path,
    acc: &mut Acc,
    inputs: &mut Inputs,
) -> Result<(), Stop> {
    if let Ok(h) = input.fs.resolve(path, input.cwd) {
        inputs.files.push(h);
    }
    let text = input.fs.read_text(path, input.cwd).map_err(|e| {
        error(
            Source::ConfigFile {
                path: e.path.clone(),
                line: None,
            },
            format!("the kubelet would not start: its --config file cannot be read: {e}"),
            format!(
                "make {} a readable KubeletConfiguration file, {RESTART}",
                e.path.display()
            ),
        )
    })?;
    let shown = text.path_in_root.clone();
    let main = config::parse(&text.text, false)
        .and_then(|s| config::main_outcome(&s))
        .map_err(|e| {
            error(
                Source::ConfigFile {
                    path: shown.clone(),
                    line: e.line,
                },
                decode_reason("", &shown, &e),
                format!(
                    "fix {}{} (a kubelet.config.k8s.io/v1beta1 KubeletConfiguration with {FIELD}: true), {RESTART}",
                    shown.display(),
                    line_of(e.line)
                ),
            )
        })?;
    acc.notes.extend(
        main.notes
            .iter()
            .map(|n| format!("{}: {n}", shown.display())),
    );
    match main.set {
        Some((b, e)) => {
            acc.value = b;
            acc.source = Source::ConfigFile {
                path: shown.clone(),
                line: Some(e.line),
            };
            let yaml11 = if e.written != "true" && e.written != "false" {
                format!(" (YAML 1.1 {b})")
            } else {
                String::new()
            };
            acc.reason = format!(
                "{} line {} sets {FIELD}: {}{yaml11}",
                shown.display(),
                e.line,
                e.written
            );
            acc.remediation = format!(
                "set {FIELD}: true at {} line {} (or remove the line), {RESTART}",
                shown.display(),
                e.line
            );
        }
        None => {
            acc.source = Source::ConfigFile {
                path: shown.clone(),
                line: None,
            };
            acc.reason = format!(
                "{} does not set {FIELD} and no flag or drop-in does; the kubelet's default is true",
                shown.display()
            );
        }
    }
    Ok(())
}

/// The `*.conf` files of the `--config-dir`, decoded strictly, in the kubelet's order.
fn read_dropins(
    input: &EvalInput,
    dir: &Path,
    dir_shown: &Path,
    inputs: &mut Inputs,
) -> Result<Vec<(PathBuf, FileSettings)>, Stop> {
    if let Ok(h) = input.fs.resolve(dir, input.cwd) {
        inputs.dirs.push(h);
    }
    let files = input.fs.walk_files(dir, input.cwd).map_err(|e| {
        error(
            Source::DropIn {
                path: e.path.clone(),
                line: None,
            },
            format!("the kubelet would not start: its --config-dir cannot be walked: {e}"),
            format!(
                "create {} or fix --config-dir, {RESTART}",
                dir_shown.display()
            ),
        )
    })?;
    let mut dropins = Vec::new();
    for f in files.iter().filter(|f| config::is_dropin_name(f)) {
        if let Ok(h) = input.fs.resolve(f, Path::new("/")) {
            inputs.files.push(h);
        }
        let remove = format!("fix or remove {}, {RESTART}", f.display());
        let text = input.fs.read_text(f, Path::new("/")).map_err(|e| {
            error(
                Source::DropIn {
                    path: f.clone(),
                    line: None,
                },
                format!("the kubelet would not start: a drop-in cannot be read: {e}"),
                remove.clone(),
            )
        })?;
        let s = config::parse(&text.text, true).map_err(|e| {
            error(
                Source::DropIn {
                    path: f.clone(),
                    line: e.line,
                },
                decode_reason("drop-in ", f, &e),
                remove.clone(),
            )
        })?;
        dropins.push((f.clone(), s));
    }
    Ok(dropins)
}

/// Step 3: the drop-ins, merged over the configuration so far. Their semantics depend on the
/// kubelet version: a result that differs between versions is an error.
fn config_dir(
    input: &EvalInput,
    dir: &Path,
    parsed: &flags::ParsedFlags,
    version: Option<&KubeletVersion>,
    acc: &mut Acc,
    inputs: &mut Inputs,
) -> Result<(), Stop> {
    let dir_shown = super::rootfs::absolute_in_root(dir, input.cwd);
    refused_by_version(input, version, &dir_shown)?;
    let dropins = read_dropins(input, dir, &dir_shown, inputs)?;
    let settings: Vec<FileSettings> = dropins.iter().map(|(_, s)| s.clone()).collect();
    let merged = |era| {
        config::merge_dropins(acc.value, &settings, era).map_err(|(i, e)| -> Stop {
            let p = &dropins[i].0;
            Box::new(error(
                Source::DropIn {
                    path: p.clone(),
                    line: e.line,
                },
                decode_reason("drop-in ", p, &e),
                format!(
                    "set {FIELD}: true in {}{} or remove it, {RESTART}",
                    p.display(),
                    line_of(e.line)
                ),
            ))
        })
    };
    let mut a = merged(MergeEra::Internal)?;
    let mut b = merged(MergeEra::Versioned)?;
    if let Some(v) = version {
        // The merge changed in 1.32: the kubelet's own version decides.
        let o = if (v.major, v.minor) >= (1, 32) { b } else { a };
        (a, b) = (o.clone(), o);
        acc.notes
            .push(format!("drop-ins merged as kubelet {v} does"));
    }
    let flag = parsed.make_iptables_util_chains.as_ref().map(|(_, v)| *v);
    let final_of = |v: bool| flag.unwrap_or(v);
    // Kubelet 1.28-1.29 refuse to start with --config-dir unless KUBELET_CONFIG_DROPIN_DIR_ALPHA
    // is set ("startup fails"), and 1.30+ apply the drop-ins: no version ignores them, so the
    // verdict is the applied one (a kubelet that does not start runs with nothing).
    if final_of(a.0) != final_of(b.0) {
        let why = format!(
            "the drop-ins in {} give {FIELD} {} on kubelet 1.28-1.31 but {} on 1.32+ (the merge changed in 1.32)",
            dir_shown.display(),
            a.0,
            b.0
        );
        return Err(Box::new(error(
            Source::DropIn {
                path: dir_shown.clone(),
                line: None,
            },
            format!("the result depends on the kubelet version: {why}"),
            format!(
                "set {FIELD}: true explicitly in a drop-in in {} (lowercase, not null), or pass --make-iptables-util-chains=true, {RESTART}",
                dir_shown.display()
            ),
        )));
    }
    // Same verdict in every era: report the 1.32+ provenance (or 1.28-1.31 if it is a drop-in).
    let (v, origin) = match (&a.1, &b.1) {
        (_, o @ Origin::DropIn(..)) => (b.0, o.clone()),
        (o @ Origin::DropIn(..), _) => (a.0, o.clone()),
        (_, o) => (b.0, o.clone()),
    };
    match origin {
        Origin::DropIn(i, e) => {
            let p = &dropins[i].0;
            acc.value = v;
            acc.source = Source::DropIn {
                path: p.clone(),
                line: Some(e.line),
            };
            acc.reason = format!(
                "drop-in {} line {} sets {}: {}",
                p.display(),
                e.line,
                e.key,
                e.written
            );
            acc.remediation = format!(
                "set {FIELD}: true at {} line {} (or remove the line), {RESTART}",
                p.display(),
                e.line
            );
        }
        Origin::Default if v != acc.value || !matches!(acc.source, Source::Default) => {
            acc.value = v;
            acc.reason = format!(
                "a drop-in in {} sets {FIELD} to null, which restores the default true on kubelet 1.32+",
                dir_shown.display()
            );
            acc.source = Source::DropIn {
                path: dir_shown.clone(),
                line: None,
            };
        }
        _ => {}
    }
    if !input.env.contains_key(DROPIN_ALPHA_ENV) && !dropins.is_empty() && version.is_none() {
        acc.notes.push(format!(
            "kubelet 1.28-1.29 refuse to start with --config-dir unless {DROPIN_ALPHA_ENV} is set; 1.30+ apply the drop-ins"
        ));
    }
    Ok(())
}

/// A kubelet older than 1.30 whose version is known: 1.28-1.29 refuse --config-dir without
/// the alpha variable, older ones do not know the flag.
fn refused_by_version(
    input: &EvalInput,
    version: Option<&KubeletVersion>,
    dir_shown: &Path,
) -> Result<(), Stop> {
    let Some(v) = version.filter(|v| (v.major, v.minor) < (1, 30)) else {
        return Ok(());
    };
    let why = if v.minor < 28 {
        "does not know --config-dir (added in 1.28)".to_string()
    } else if !input.env.contains_key(DROPIN_ALPHA_ENV) {
        format!(
            "refuses --config-dir unless {DROPIN_ALPHA_ENV} is set in its environment (1.28-1.29)"
        )
    } else {
        return Ok(());
    };
    Err(Box::new(error(
        Source::DropIn {
            path: dir_shown.to_path_buf(),
            line: None,
        },
        format!("the kubelet would not start: kubelet {v} {why}"),
        format!("remove --config-dir (or upgrade the kubelet to 1.30+), {RESTART}"),
    )))
}

/// Step 4: the flags again, on top of the files.
fn flags_on_top(parsed: &flags::ParsedFlags, acc: &mut Acc) {
    if let Some(flag) = &parsed.make_iptables_util_chains {
        apply_flag(flag, acc);
    }
}

fn apply_flag((at, b): &(flags::FlagAt, bool), acc: &mut Acc) {
    let (at, b) = (at.clone(), *b);
    let overrides = match &acc.source {
        Source::ConfigFile { .. } => " overrides the config file",
        Source::DropIn { .. } => " overrides the drop-ins",
        _ => "",
    };
    acc.reason = format!("{} at argv[{}]{overrides}", at.text, at.index);
    acc.remediation = format!(
        "change argv[{}] {} to --make-iptables-util-chains=true (or remove it), {RESTART}",
        at.index, at.text
    );
    acc.value = b;
    acc.source = Source::Flag {
        index: at.index,
        text: at.text,
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kubelet::config::corpus_dir;
    use std::fs;

    struct World {
        _d: tempfile::TempDir,
        fs: RootFs,
    }

    fn world(files: &[(&str, &str)]) -> World {
        let (d, fs) = crate::kubelet::rootfs::test_root(files);
        World { _d: d, fs }
    }

    fn corpus(rel: &str) -> String {
        fs::read_to_string(corpus_dir().join(rel)).unwrap()
    }

    fn run(w: &World, args: &[&str], env: &[(&str, &str)]) -> Evaluation {
        let argv: Vec<String> = std::iter::once("/usr/bin/kubelet")
            .chain(args.iter().copied())
            .map(String::from)
            .collect();
        let env: HashMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        evaluate(&EvalInput {
            fs: &w.fs,
            argv: &argv,
            cwd: Path::new("/"),
            env: &env,
        })
    }

    const HEAD: &str = "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n";

    #[test]
    fn corpus_config_files() {
        let cases: &[(&str, Status)] = &[
            ("kics/positive2-config-false.yaml", Status::Fail),
            ("kics/positive3-config-false.json", Status::Fail),
            ("kics/negative2-config-true.yaml", Status::Pass),
            ("kics/negative3-config-absent.yaml", Status::Pass),
            ("kubeadm-generated/joneconsulting-config.yaml", Status::Pass),
            ("amazon-eks-ami/al2-kubelet-config.json", Status::Pass),
            (
                "amazon-eks-ami/nodeadm-expected-kubelet-config.json",
                Status::Pass,
            ),
            ("rke2/00-rke2-defaults.conf", Status::Pass),
            // Only the first document counts, and it is a kubeadm InitConfiguration: the
            // kubelet refuses the file, whatever the later KubeletConfiguration says.
            (
                "kubernetes/kubeadm-testdata-defaulted-multidoc.yaml",
                Status::Error,
            ),
        ];
        for (rel, want) in cases {
            let w = world(&[("/etc/kubelet.yaml", &corpus(rel))]);
            let ev = run(&w, &["--config=/etc/kubelet.yaml"], &[]);
            assert_eq!(ev.status, *want, "{rel}: {}", ev.reason);
            assert_eq!(ev.inputs, vec![w.fs.root().join("etc/kubelet.yaml")]);
        }
        // The kics false file, overridden by a flag.
        let w = world(&[(
            "/etc/kubelet.yaml",
            &corpus("kics/positive2-config-false.yaml"),
        )]);
        let ev = run(
            &w,
            &[
                "--config",
                "/etc/kubelet.yaml",
                "--make-iptables-util-chains",
            ],
            &[],
        );
        assert_eq!(ev.status, Status::Pass);
        assert!(
            ev.reason.contains("argv[3]") && ev.reason.contains("overrides the config file"),
            "{}",
            ev.reason
        );
    }

    #[test]
    fn corpus_kubespray_rendered_true() {
        let w = world(&[(
            "/etc/kubernetes/kubelet-config.yaml",
            &format!("{HEAD}makeIPTablesUtilChains: True\n"),
        )]);
        let ev = run(&w, &["--config=/etc/kubernetes/kubelet-config.yaml"], &[]);
        assert_eq!(ev.status, Status::Pass, "{}", ev.reason);
        assert!(
            corpus("kubespray/ubuntu24-calico-all-in-one-hardening.yml")
                .contains("kubelet_make_iptables_util_chains: true")
        );
    }

    #[test]
    fn corpus_argv_sources() {
        // kics pod: args: ["--make-iptables-util-chains=false"]; checkov: a command list.
        assert!(
            corpus("kics/positive1-pod-flag-false.yaml")
                .contains("--make-iptables-util-chains=false")
        );
        assert!(
            corpus("checkov/KubeletMakeIptablesUtilChains-FAILED.yaml")
                .contains("- --make-iptables-util-chains=false")
        );
        let w = world(&[]);
        assert_eq!(
            run(&w, &["--make-iptables-util-chains=false"], &[]).status,
            Status::Fail
        );
        // rke2/k3s kubelet-arg "make-iptables-util-chains=true" becomes --make-iptables-util-chains=true.
        assert!(corpus("rke2/config-remediation.yaml").contains("make-iptables-util-chains=true"));
        assert_eq!(
            run(&w, &["--make-iptables-util-chains=true"], &[]).status,
            Status::Pass
        );
        // Without the rke2 prefix, the raw word is a positional argument.
        assert_eq!(
            run(&w, &["make-iptables-util-chains=true"], &[]).status,
            Status::Error
        );
        // kubeadm-flags.env style: no iptables flag -> default.
        let ev = run(
            &w,
            &[
                "--container-runtime-endpoint=unix:///run/containerd/containerd.sock",
                "--v=8",
            ],
            &[],
        );
        assert_eq!((ev.status, ev.source), (Status::Pass, Source::Default));
    }

    #[test]
    fn corpus_eks_dropins() {
        let w = world(&[
            (
                "/etc/kubernetes/kubelet/config.json",
                &corpus("amazon-eks-ami/nodeadm-expected-kubelet-config.json"),
            ),
            (
                "/etc/kubernetes/kubelet/config.json.d/40-nodeadm.conf",
                &corpus("amazon-eks-ami/nodeadm-expected-kubelet-config-drop-in.json"),
            ),
            (
                "/etc/kubernetes/kubelet/config.json.d/00-rke2-defaults.conf",
                &corpus("rke2/00-rke2-defaults.conf"),
            ),
        ]);
        let args = [
            "--config",
            "/etc/kubernetes/kubelet/config.json",
            "--config-dir=/etc/kubernetes/kubelet/config.json.d",
        ];
        let ev = run(&w, &args, &[]);
        assert_eq!(ev.status, Status::Pass, "{}", ev.reason);
        assert_eq!(ev.inputs.len(), 3);
        assert_eq!(
            ev.input_dirs,
            vec![w.fs.root().join("etc/kubernetes/kubelet/config.json.d")]
        );
    }

    #[test]
    fn dropin_rules() {
        let cfg_false = format!("{HEAD}makeIPTablesUtilChains: false\n");
        let d = |body: &str| format!("{HEAD}{body}");
        let args = ["--config=/c.yaml", "--config-dir=/d"];
        let alpha = [(DROPIN_ALPHA_ENV, "1")];
        // A drop-in false: same on every version that applies drop-ins. Without the alpha env,
        // 1.28-1.29 refuse to start and 1.30+ apply it: a fail either way, never a pass.
        let w = world(&[
            ("/c.yaml", HEAD),
            ("/d/sub/10.conf", &d("makeIPTablesUtilChains: false\n")),
            ("/d/10.yaml", &d("makeIPTablesUtilChains: true\n")),
        ]);
        let ev = run(&w, &args, &alpha);
        assert_eq!(ev.status, Status::Fail, "{}", ev.reason);
        assert!(
            matches!(&ev.source, Source::DropIn { path, line: Some(3) } if path == Path::new("/d/sub/10.conf"))
        );
        let ev = run(&w, &args, &[]);
        assert_eq!(ev.status, Status::Fail, "{}", ev.reason);
        assert!(
            ev.reason.contains("1.28-1.29 refuse to start"),
            "{}",
            ev.reason
        );
        // A drop-in null after a config-file false: 1.28-1.31 keeps false, 1.32+ defaults to true.
        let w = world(&[
            ("/c.yaml", &cfg_false),
            ("/d/10.conf", &d("makeIPTablesUtilChains: null\n")),
        ]);
        let ev = run(&w, &args, &alpha);
        assert_eq!(ev.status, Status::Error);
        assert!(
            ev.reason.contains("depends on the kubelet version"),
            "{}",
            ev.reason
        );
        // ... unless a flag decides anyway.
        let mut a2 = args.to_vec();
        a2.push("--make-iptables-util-chains=false");
        assert_eq!(run(&w, &a2, &alpha).status, Status::Fail);
        // Wrong case in a drop-in: 1.28-1.31 false, 1.32+ ignored -> error.
        let w = world(&[
            ("/c.yaml", HEAD),
            ("/d/10.conf", &d("MakeIPTablesUtilChains: false\n")),
        ]);
        assert_eq!(run(&w, &args, &alpha).status, Status::Error);
        // Duplicate key in a drop-in: fatal.
        let w = world(&[
            ("/c.yaml", HEAD),
            (
                "/d/10.conf",
                &d("makeIPTablesUtilChains: true\nmakeIPTablesUtilChains: true\n"),
            ),
        ]);
        assert_eq!(run(&w, &args, &alpha).status, Status::Error);
        // Drop-in without apiVersion/kind: fatal. Non-.conf files are skipped.
        let w = world(&[
            ("/c.yaml", HEAD),
            ("/d/10.conf", "makeIPTablesUtilChains: true\n"),
            ("/d/x.conf.bak", "junk"),
        ]);
        assert_eq!(run(&w, &args, &alpha).status, Status::Error);
        let w = world(&[("/c.yaml", HEAD), ("/d/x.conf.bak", "junk")]);
        assert_eq!(run(&w, &args, &[]).status, Status::Pass);
        // Only --config-dir: the first parse's flag is the base; a global boolean swallowing
        // it in the second parse does not undo it.
        let w = world(&[("/d/x.conf.bak", "junk")]);
        let ev = run(
            &w,
            &[
                "--config-dir=/d",
                "--log-cadvisor-usage",
                "--make-iptables-util-chains=0",
            ],
            &[],
        );
        assert_eq!(ev.status, Status::Fail, "{}", ev.reason);
        // A missing --config-dir: the walk fails, the kubelet does not start.
        let w = world(&[("/c.yaml", HEAD)]);
        assert_eq!(run(&w, &args, &[]).status, Status::Error);
    }

    #[test]
    fn config_file_rules_and_errors() {
        let w = world(&[
            (
                "/var/lib/kubelet/config.yaml",
                &format!("{HEAD}# c\nmakeIPTablesUtilChains: off\n"),
            ),
            (
                "/quoted.yaml",
                &format!("{HEAD}makeIPTablesUtilChains: \"false\"\n"),
            ),
            (
                "/wrong.yaml",
                &format!("{HEAD}MakeIPTablesUtilChains: false\n"),
            ),
        ]);
        let ev = run(&w, &["--config=config.yaml"], &[]);
        assert_eq!(ev.status, Status::Error, "relative to cwd /: missing");
        let argv: Vec<String> = ["kubelet", "--config=config.yaml"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let ev = evaluate(&EvalInput {
            fs: &w.fs,
            argv: &argv,
            cwd: Path::new("/var/lib/kubelet"),
            env: &HashMap::new(),
        });
        assert_eq!(ev.status, Status::Fail);
        assert_eq!(
            ev.reason,
            "/var/lib/kubelet/config.yaml line 4 sets makeIPTablesUtilChains: off (YAML 1.1 false)"
        );
        assert!(ev.remediation.contains("line 4"));
        assert_eq!(
            run(&w, &["--config=/quoted.yaml"], &[]).status,
            Status::Error
        );
        let ev = run(&w, &["--config=/wrong.yaml"], &[]);
        assert_eq!(ev.status, Status::Pass);
        assert!(ev.reason.contains("case-sensitive"), "{}", ev.reason);
        assert_eq!(run(&w, &["--config="], &[]).source, Source::Default);
        assert_eq!(run(&w, &["--help"], &[]).status, Status::Error);
        let ev = run(&w, &["--make-iptables-util-chains", "false"], &[]);
        assert_eq!(ev.status, Status::Error);
        assert!(ev.reason.contains("unknown command false"), "{}", ev.reason);
        let f = ev.into_finding(
            Subject::Arguments {
                argv: vec![],
                cwd: "/".into(),
            },
            Benchmark::Cis16,
        );
        assert_eq!(f.control, "4.2.7");
    }
}

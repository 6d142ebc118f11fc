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

pub fn evaluate(input: &EvalInput) -> Evaluation {
    evaluate_versioned(input, None)
}

/// [`evaluate`] for a kubelet whose version was read from its executable
/// ([`super::distro::version`]): what depends on the version is decided, and says so.
pub fn evaluate_versioned(input: &EvalInput, version: Option<&KubeletVersion>) -> Evaluation {
    let mut inputs = Vec::new();
    let mut input_dirs = Vec::new();
    let mut ev = evaluate_inner(input, version, &mut inputs, &mut input_dirs);
    ev.inputs = inputs;
    ev.input_dirs = input_dirs;
    ev
}

fn line_of(l: Option<usize>) -> String {
    l.map(|l| format!(" line {l}")).unwrap_or_default()
}

fn evaluate_inner(
    input: &EvalInput,
    version: Option<&KubeletVersion>,
    inputs: &mut Vec<PathBuf>,
    input_dirs: &mut Vec<PathBuf>,
) -> Evaluation {
    let parsed = match flags::parse(input.argv) {
        Ok(p) => p,
        Err(e) => {
            return error(
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
            );
        }
    };
    if let Some(at) = &parsed.exits_early {
        return error(
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
        );
    }
    let flag_override = parsed.make_iptables_util_chains.clone();

    // --config: replaces the flag-built configuration.
    let mut value = true;
    let mut source = Source::Default;
    let mut reason =
        format!("no flag, config file or drop-in sets {FIELD}; the kubelet's default is true");
    let mut remediation = String::new();
    let mut notes: Vec<String> = Vec::new();
    if let Some(path) = parsed.config_path() {
        let path = Path::new(path);
        if let Ok(h) = input.fs.resolve(path, input.cwd) {
            inputs.push(h);
        }
        let text = match input.fs.read_text(path, input.cwd) {
            Ok(t) => t,
            Err(e) => {
                return error(
                    Source::ConfigFile {
                        path: e.path.clone(),
                        line: None,
                    },
                    format!("the kubelet would not start: its --config file cannot be read: {e}"),
                    format!(
                        "make {} a readable KubeletConfiguration file, {RESTART}",
                        e.path.display()
                    ),
                );
            }
        };
        let shown = text.path_in_root.clone();
        let cfg_err = |e: config::DecodeError| {
            error(
                Source::ConfigFile {
                    path: shown.clone(),
                    line: e.line,
                },
                format!(
                    "the kubelet would not start: {}{}: {}",
                    shown.display(),
                    line_of(e.line),
                    e.reason
                ),
                format!(
                    "fix {}{} (a kubelet.config.k8s.io/v1beta1 KubeletConfiguration with {FIELD}: true), {RESTART}",
                    shown.display(),
                    line_of(e.line)
                ),
            )
        };
        let main = match config::decode(&text.text, false).and_then(|s| config::main_outcome(&s)) {
            Ok(m) => m,
            Err(e) => return cfg_err(e),
        };
        notes.extend(
            main.notes
                .iter()
                .map(|n| format!("{}: {n}", shown.display())),
        );
        match main.set {
            Some((b, e)) => {
                value = b;
                source = Source::ConfigFile {
                    path: shown.clone(),
                    line: Some(e.line),
                };
                let yaml11 = if e.written != "true" && e.written != "false" {
                    format!(" (YAML 1.1 {b})")
                } else {
                    String::new()
                };
                reason = format!(
                    "{} line {} sets {FIELD}: {}{yaml11}",
                    shown.display(),
                    e.line,
                    e.written
                );
                remediation = format!(
                    "set {FIELD}: true at {} line {} (or remove the line), {RESTART}",
                    shown.display(),
                    e.line
                );
            }
            None => {
                source = Source::ConfigFile {
                    path: shown.clone(),
                    line: None,
                };
                reason = format!(
                    "{} does not set {FIELD} and no flag or drop-in does; the kubelet's default is true",
                    shown.display()
                );
            }
        }
    }

    // --config-dir: drop-ins, whose semantics depend on the kubelet version.
    if let Some(dir) = parsed.config_dir_path() {
        let dir = Path::new(dir);
        if let Ok(h) = input.fs.resolve(dir, input.cwd) {
            input_dirs.push(h);
        }
        let dir_shown = super::rootfs::absolute_in_root(dir, input.cwd);
        if let Some(v) = version
            && (v.major, v.minor) < (1, 30)
        {
            let refused = if v.minor < 28 {
                Some("does not know --config-dir (added in 1.28)".to_string())
            } else if !input.env.contains_key(DROPIN_ALPHA_ENV) {
                Some(format!(
                    "refuses --config-dir unless {DROPIN_ALPHA_ENV} is set in its environment (1.28-1.29)"
                ))
            } else {
                None
            };
            if let Some(why) = refused {
                return error(
                    Source::DropIn {
                        path: dir_shown.clone(),
                        line: None,
                    },
                    format!("the kubelet would not start: kubelet {v} {why}"),
                    format!("remove --config-dir (or upgrade the kubelet to 1.30+), {RESTART}"),
                );
            }
        }
        let files = match input.fs.walk_files(dir, input.cwd) {
            Ok(f) => f,
            Err(e) => {
                return error(
                    Source::DropIn {
                        path: e.path.clone(),
                        line: None,
                    },
                    format!("the kubelet would not start: its --config-dir cannot be walked: {e}"),
                    format!(
                        "create {} or fix --config-dir, {RESTART}",
                        dir_shown.display()
                    ),
                );
            }
        };
        let mut dropins: Vec<(PathBuf, FileSettings)> = Vec::new();
        for f in files.iter().filter(|f| config::is_dropin_name(f)) {
            if let Ok(h) = input.fs.resolve(f, Path::new("/")) {
                inputs.push(h);
            }
            let text = match input.fs.read_text(f, Path::new("/")) {
                Ok(t) => t,
                Err(e) => {
                    return error(
                        Source::DropIn {
                            path: f.clone(),
                            line: None,
                        },
                        format!("the kubelet would not start: a drop-in cannot be read: {e}"),
                        format!("fix or remove {}, {RESTART}", f.display()),
                    );
                }
            };
            match config::decode(&text.text, true) {
                Ok(s) => dropins.push((f.clone(), s)),
                Err(e) => {
                    return error(
                        Source::DropIn {
                            path: f.clone(),
                            line: e.line,
                        },
                        format!(
                            "the kubelet would not start: drop-in {}{}: {}",
                            f.display(),
                            line_of(e.line),
                            e.reason
                        ),
                        format!("fix or remove {}, {RESTART}", f.display()),
                    );
                }
            }
        }
        let settings: Vec<FileSettings> = dropins.iter().map(|(_, s)| s.clone()).collect();
        let mut outcomes = Vec::new();
        for era in [MergeEra::Internal, MergeEra::Versioned] {
            match config::merge_dropins(value, &settings, era) {
                Ok(o) => outcomes.push((era, o)),
                Err((i, e)) => {
                    let p = &dropins[i].0;
                    return error(
                        Source::DropIn {
                            path: p.clone(),
                            line: e.line,
                        },
                        format!(
                            "the kubelet would not start: drop-in {}{}: {}",
                            p.display(),
                            line_of(e.line),
                            e.reason
                        ),
                        format!(
                            "set {FIELD}: true in {}{} or remove it, {RESTART}",
                            p.display(),
                            line_of(e.line)
                        ),
                    );
                }
            }
        }
        let final_of = |v: bool| flag_override.as_ref().map(|(_, b)| *b).unwrap_or(v);
        let (mut a, mut b) = (&outcomes[0].1, &outcomes[1].1);
        if let Some(v) = version {
            // The merge changed in 1.32: the kubelet's own version decides.
            let o = if (v.major, v.minor) >= (1, 32) { b } else { a };
            (a, b) = (o, o);
            notes.push(format!("drop-ins merged as kubelet {v} does"));
        }
        // Kubelet 1.28-1.29 refuse to start with --config-dir unless KUBELET_CONFIG_DROPIN_DIR_ALPHA
        // is set ("startup fails"), and 1.30+ apply the drop-ins: no version ignores them, so the
        // verdict is the applied one (a kubelet that does not start runs with nothing).
        let differs_by_era = final_of(a.0) != final_of(b.0);
        if differs_by_era {
            let why = format!(
                "the drop-ins in {} give {FIELD} {} on kubelet 1.28-1.31 but {} on 1.32+ (the merge changed in 1.32)",
                dir_shown.display(),
                a.0,
                b.0
            );
            return error(
                Source::DropIn {
                    path: dir_shown.clone(),
                    line: None,
                },
                format!("the result depends on the kubelet version: {why}"),
                format!(
                    "set {FIELD}: true explicitly in a drop-in in {} (lowercase, not null), or pass --make-iptables-util-chains=true, {RESTART}",
                    dir_shown.display()
                ),
            );
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
                value = v;
                source = Source::DropIn {
                    path: p.clone(),
                    line: Some(e.line),
                };
                reason = format!(
                    "drop-in {} line {} sets {}: {}",
                    p.display(),
                    e.line,
                    e.key,
                    e.written
                );
                remediation = format!(
                    "set {FIELD}: true at {} line {} (or remove the line), {RESTART}",
                    p.display(),
                    e.line
                );
            }
            Origin::Default if v != value || !matches!(source, Source::Default) => {
                value = v;
                reason = format!(
                    "a drop-in in {} sets {FIELD} to null, which restores the default true on kubelet 1.32+",
                    dir_shown.display()
                );
                source = Source::DropIn {
                    path: dir_shown.clone(),
                    line: None,
                };
            }
            _ => {}
        }
        if !input.env.contains_key(DROPIN_ALPHA_ENV) && !dropins.is_empty() && version.is_none() {
            notes.push(format!(
                "kubelet 1.28-1.29 refuse to start with --config-dir unless {DROPIN_ALPHA_ENV} is set; 1.30+ apply the drop-ins"
            ));
        }
    }

    // Flags again, on top.
    if let Some((at, b)) = flag_override {
        let overrides = match &source {
            Source::ConfigFile { .. } => " overrides the config file",
            Source::DropIn { .. } => " overrides the drop-ins",
            _ => "",
        };
        reason = format!("{} at argv[{}]{overrides}", at.text, at.index);
        remediation = format!(
            "change argv[{}] {} to --make-iptables-util-chains=true (or remove it), {RESTART}",
            at.index, at.text
        );
        value = b;
        source = Source::Flag {
            index: at.index,
            text: at.text,
        };
    }
    if !notes.is_empty() {
        reason = format!("{reason} (note: {})", notes.join("; "));
    }
    decided(value, source, reason, remediation)
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

//! `kubelet-drift check`: evaluate once, like a scanner.
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::finding::{Benchmark, CONTROL_TITLE, Finding, Source, Status, Subject};
use crate::kubelet::discovery::default_names;
use crate::kubelet::distro::{Detection, Distribution};
use crate::kubelet::node::{evaluate_arguments, evaluate_node_as};
use crate::kubelet::rootfs::RootFs;

const AFTER_HELP: &str = "\
What it checks:
  The kubelet's effective makeIPTablesUtilChains (CIS Kubernetes Benchmark 4.2.7; 4.2.6 in
  CIS 1.7+, 3.2.6 in the EKS/AKS/GKE benchmarks): flags, then the --config file, then the
  --config-dir drop-ins, as the kubelet applies them. Two truths are reported:
  running (each kubelet process, from its command line and its files as they are now) and
  after restart (the command line kubelet.service assembles under systemd's rules, unit
  drop-ins and EnvironmentFile= included, against the files as they are now).
  Anything unreadable, ambiguous or that the kubelet would refuse is an error, never a pass.

Examples:
  kubelet-drift check                                  # this node: running kubelets + after restart
  kubelet-drift check --root /mnt/node-image           # an offline node image (after restart only)
  kubelet-drift check -- --config=/var/lib/kubelet/config.yaml --make-iptables-util-chains=false
  kubelet-drift check --root /mnt/img --cwd /var/lib/kubelet -- --config=config.yaml
  kubelet-drift check --format json --benchmark cis-1.7

Exit codes:
  0  every finding passes
  1  at least one finding fails (makeIPTablesUtilChains is false)
  2  none fails, but at least one is an error (unknown, unreadable, or the kubelet would not start)";

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// One block per finding, for people.
    #[default]
    Text,
    /// `{"findings":[...]}`.
    Json,
}

/// Evaluate the kubelet's makeIPTablesUtilChains once: the live node, an offline image, or given arguments.
#[derive(clap::Args, Debug, Default, Clone)]
#[command(after_long_help = AFTER_HELP)]
pub struct CheckArgs {
    /// Evaluate the node image rooted at DIR instead of the live node (after-restart only);
    /// every path resolves inside DIR, symlinks included.
    #[arg(long, value_name = "DIR")]
    pub root: Option<PathBuf>,
    /// With `-- ARGS`: the kubelet's working directory, inside the root (default /).
    #[arg(long, value_name = "DIR")]
    pub cwd: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Which CIS numbering to report the control under.
    #[arg(long, value_enum, default_value_t = Benchmark::Cis16)]
    pub benchmark: Benchmark,
    /// Executable name of the kubelet (repeatable; default: kubelet and the processes that
    /// host or wrap one: k3s, k3s-server, k3s-agent, kubelite, hyperkube, kubenswrapper, rke2).
    #[arg(long = "kubelet-name", value_name = "NAME")]
    pub kubelet_names: Vec<String>,
    /// The node's distribution, instead of detecting it.
    #[arg(long, value_enum, value_name = "NAME")]
    pub distribution: Option<Distribution>,
    /// Kubelet arguments to evaluate instead of a node (argv[0] is "kubelet").
    #[arg(last = true, value_name = "ARGS")]
    pub args: Vec<String>,
}

/// The findings and the exit code (0 pass, 1 any fail, 2 any error without a fail).
pub fn run_check(args: &CheckArgs) -> (Vec<Finding>, u8) {
    let (_, findings, code) = run_check_detected(args);
    (findings, code)
}

/// [`run_check`], with the distribution detected (none for given arguments).
pub fn run_check_detected(args: &CheckArgs) -> (Option<Detection>, Vec<Finding>, u8) {
    let names = if args.kubelet_names.is_empty() {
        default_names()
    } else {
        args.kubelet_names.clone()
    };
    let fs = match &args.root {
        Some(r) => RootFs::new(r),
        None => RootFs::host(),
    };
    let (detection, findings) = if !args.args.is_empty() || args.cwd.is_some() {
        let cwd = args.cwd.clone().unwrap_or_else(|| PathBuf::from("/"));
        (
            None,
            vec![evaluate_arguments(&fs, &args.args, &cwd, args.benchmark)],
        )
    } else {
        let (d, f) = evaluate_node_as(
            &fs,
            args.root.is_none(),
            &names,
            args.benchmark,
            args.distribution,
        );
        (Some(d), f)
    };
    let code = exit_code(&findings);
    (detection, findings, code)
}

pub fn exit_code(findings: &[Finding]) -> u8 {
    if findings.iter().any(|f| f.status == Status::Fail) {
        1
    } else if findings.is_empty() || findings.iter().any(|f| f.status == Status::Error) {
        2
    } else {
        0
    }
}

fn describe_subject(s: &Subject) -> String {
    match s {
        Subject::Running {
            pid,
            argv,
            evaluated_late,
        } => format!(
            "running kubelet pid {pid}{}: {}",
            if *evaluated_late {
                " (already running: files read as they are now)"
            } else {
                ""
            },
            shell_words(argv)
        ),
        Subject::AfterRestart {
            unit,
            argv,
            exec_start_from,
        } => {
            let mut s = String::from("after restart");
            if let Some(u) = unit {
                s.push_str(&format!(" of {}", u.display()));
            }
            if let Some(e) = exec_start_from {
                s.push_str(&format!(" (ExecStart= from {})", e.display()));
            }
            if !argv.is_empty() {
                s.push_str(&format!(": {}", shell_words(argv)));
            }
            s
        }
        Subject::Arguments { argv, cwd } => {
            format!("arguments (cwd {}): {}", cwd.display(), shell_words(argv))
        }
    }
}

fn shell_words(argv: &[String]) -> String {
    argv.iter()
        .map(|a| {
            if !a.is_empty()
                && a.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_=/.:,@%+".contains(c))
            {
                a.clone()
            } else {
                format!("'{}'", a.replace('\'', "'\\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn describe_source(s: &Source) -> String {
    let at = |p: &Path, l: &Option<usize>| match l {
        Some(l) => format!("{} line {l}", p.display()),
        None => p.display().to_string(),
    };
    match s {
        Source::Flag { index, text } => format!("flag argv[{index}] {text}"),
        Source::ConfigFile { path, line } => format!("config file {}", at(path, line)),
        Source::DropIn { path, line } => format!("config drop-in {}", at(path, line)),
        Source::Default => "the kubelet's default (true)".into(),
        Source::Unit { path, line } => format!("systemd unit file {}", at(path, line)),
        Source::None { detail } => format!("none ({detail})"),
    }
}

/// The text report.
pub fn render_text(findings: &[Finding]) -> String {
    let mut out = String::new();
    for f in findings {
        let status = match f.status {
            Status::Pass => "PASS",
            Status::Fail => "FAIL",
            Status::Error => "ERROR",
        };
        let effective = match f.effective {
            Some(b) => b.to_string(),
            None => "unknown".into(),
        };
        out.push_str(&format!("[{status}] {} {CONTROL_TITLE}\n", f.control));
        out.push_str(&format!("  effective:   {effective}\n"));
        out.push_str(&format!(
            "  subject:     {}\n",
            describe_subject(&f.subject)
        ));
        out.push_str(&format!("  source:      {}\n", describe_source(&f.source)));
        out.push_str(&format!("  reason:      {}\n", f.reason));
        if !f.remediation.is_empty() {
            out.push_str(&format!("  remediation: {}\n", f.remediation));
        }
        out.push('\n');
    }
    out
}

/// The JSON report: `{"findings":[...]}`.
pub fn render_json(findings: &[Finding]) -> String {
    #[derive(serde::Serialize)]
    struct Report<'a> {
        findings: &'a [Finding],
    }
    serde_json::to_string_pretty(&Report { findings })
        .unwrap_or_else(|e| format!("{{\"error\":{:?}}}", e.to_string()))
}

pub fn main(args: CheckArgs) -> ExitCode {
    let (detection, findings, code) = run_check_detected(&args);
    let text = match args.format {
        Format::Text => {
            let head = detection
                .map(|d| format!("distribution: {d}\n\n"))
                .unwrap_or_default();
            head + &render_text(&findings)
        }
        Format::Json => render_json(&findings) + "\n",
    };
    let mut stdout = std::io::stdout().lock();
    if stdout.write_all(text.as_bytes()).is_err() {
        return ExitCode::from(2);
    }
    ExitCode::from(code)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;
    use std::time::{Duration, Instant};

    const UNIT: &str = "[Service]\nExecStart=/usr/bin/kubelet\n";
    const DROPIN: &str = "[Service]\nEnvironment=\"KUBELET_CONFIG_ARGS=--config=/var/lib/kubelet/config.yaml\"\nEnvironmentFile=-/var/lib/kubelet/kubeadm-flags.env\nExecStart=\nExecStart=/usr/bin/kubelet $KUBELET_CONFIG_ARGS $KUBELET_KUBEADM_ARGS\n";
    const CFG: &str = "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n";

    enum Config {
        Text(String),
        None,
        Fifo,
        Dir,
        Dangling,
        Huge,
        Binary,
        Loop,
    }

    fn node(config: Config, env: Option<&str>) -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        let w = |p: &str, t: &[u8]| {
            let h = d.path().join(p);
            std::fs::create_dir_all(h.parent().unwrap()).unwrap();
            std::fs::write(h, t).unwrap();
        };
        w("lib/systemd/system/kubelet.service", UNIT.as_bytes());
        w(
            "etc/systemd/system/kubelet.service.d/10-kubeadm.conf",
            DROPIN.as_bytes(),
        );
        if let Some(e) = env {
            w("var/lib/kubelet/kubeadm-flags.env", e.as_bytes());
        }
        let cfg = d.path().join("var/lib/kubelet/config.yaml");
        std::fs::create_dir_all(cfg.parent().unwrap()).unwrap();
        match config {
            Config::Text(t) => std::fs::write(&cfg, t).unwrap(),
            Config::None => {}
            Config::Fifo => {
                nix::unistd::mkfifo(&cfg, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap()
            }
            Config::Dir => std::fs::create_dir(&cfg).unwrap(),
            Config::Dangling => symlink("/nowhere/config.yaml", &cfg).unwrap(),
            Config::Huge => {
                let f = std::fs::File::create(&cfg).unwrap();
                f.set_len(64 * 1024 * 1024).unwrap();
            }
            Config::Binary => std::fs::write(&cfg, b"apiVersion: \0\x01\x02").unwrap(),
            Config::Loop => symlink("config.yaml", &cfg).unwrap(),
        }
        d
    }

    fn offline(d: &tempfile::TempDir) -> CheckArgs {
        CheckArgs {
            root: Some(d.path().to_path_buf()),
            ..Default::default()
        }
    }

    #[test]
    fn offline_table() {
        let t = |b: &str| Config::Text(format!("{CFG}makeIPTablesUtilChains: {b}\n"));
        let cases: Vec<(&str, Config, Option<&str>, Status, u8)> = vec![
            ("config true", t("true"), None, Status::Pass, 0),
            ("config false", t("false"), None, Status::Fail, 1),
            ("config yaml1.1 off", t("off"), None, Status::Fail, 1),
            (
                "key absent",
                Config::Text(CFG.into()),
                None,
                Status::Pass,
                0,
            ),
            (
                "flag in env file beats config",
                t("false"),
                Some("KUBELET_KUBEADM_ARGS=\"--make-iptables-util-chains=true\"\n"),
                Status::Pass,
                0,
            ),
            (
                "flag false in env file",
                Config::Text(CFG.into()),
                Some("KUBELET_KUBEADM_ARGS='--make-iptables-util-chains=false'"),
                Status::Fail,
                1,
            ),
            ("missing config", Config::None, None, Status::Error, 2),
            ("fifo", Config::Fifo, None, Status::Error, 2),
            ("dir", Config::Dir, None, Status::Error, 2),
            ("dangling", Config::Dangling, None, Status::Error, 2),
            ("huge", Config::Huge, None, Status::Error, 2),
            ("binary", Config::Binary, None, Status::Error, 2),
            ("loop", Config::Loop, None, Status::Error, 2),
        ];
        for (name, cfg, env, status, code) in cases {
            let d = node(cfg, env);
            let start = Instant::now();
            let (f, c) = run_check(&offline(&d));
            assert!(start.elapsed() < Duration::from_secs(5), "{name}: too slow");
            assert_eq!(f.len(), 1, "{name}");
            assert_eq!(f[0].status, status, "{name}: {:?}", f[0]);
            assert_eq!(c, code, "{name}");
            assert!(
                matches!(f[0].subject, Subject::AfterRestart { unit: Some(_), .. }),
                "{name}"
            );
            // the text report renders every finding
            assert!(render_text(&f).contains(&f[0].control));
        }
    }

    #[test]
    fn offline_without_unit_is_an_error() {
        let d = tempfile::tempdir().unwrap();
        let (f, c) = run_check(&offline(&d));
        assert_eq!(c, 2);
        assert!(matches!(f[0].source, Source::None { .. }));
    }

    #[test]
    fn arguments_mode() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("var/lib/kubelet")).unwrap();
        std::fs::write(
            d.path().join("var/lib/kubelet/config.yaml"),
            format!("{CFG}makeIPTablesUtilChains: false\n"),
        )
        .unwrap();
        let args = |a: &[&str], cwd: Option<&str>| CheckArgs {
            root: Some(d.path().to_path_buf()),
            cwd: cwd.map(PathBuf::from),
            args: a.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        };
        let (f, c) = run_check(&args(&["--config=config.yaml"], Some("/var/lib/kubelet")));
        assert_eq!((f.len(), c), (1, 1));
        assert!(
            matches!(&f[0].subject, Subject::Arguments { argv, cwd } if argv[0] == "kubelet" && cwd == Path::new("/var/lib/kubelet"))
        );
        let (_, c) = run_check(&args(
            &["--config=config.yaml", "--make-iptables-util-chains=true"],
            Some("/var/lib/kubelet"),
        ));
        assert_eq!(c, 0);
        // relative to / by default: missing -> error
        let (_, c) = run_check(&args(&["--config=config.yaml"], None));
        assert_eq!(c, 2);
        // a path escaping the root stays inside it
        let (_, c) = run_check(&args(
            &["--config=../../../../../../var/lib/kubelet/config.yaml"],
            Some("/var/lib/kubelet"),
        ));
        assert_eq!(c, 1);
        let (f, c) = run_check(&args(&["--make-iptables-util-chains", "false"], None));
        assert_eq!((f[0].status, c), (Status::Error, 2));
        let (_, c) = run_check(&args(&["--make-iptables-util-chains=0"], None));
        assert_eq!(c, 1);
    }

    #[test]
    fn json_shape_and_benchmarks() {
        let d = node(
            Config::Text(format!("{CFG}makeIPTablesUtilChains: false\n")),
            None,
        );
        let mut a = offline(&d);
        a.benchmark = Benchmark::Cis17;
        let (f, _) = run_check(&a);
        let v: serde_json::Value = serde_json::from_str(&render_json(&f)).unwrap();
        let f0 = &v["findings"][0];
        assert_eq!(f0["control"], "4.2.6");
        assert_eq!(f0["status"], "fail");
        assert_eq!(f0["effective"], false);
        assert_eq!(f0["subject"]["kind"], "after_restart");
        assert_eq!(f0["source"]["kind"], "config_file");
        assert!(f0["reason"].is_string() && f0["remediation"].is_string());
        a.benchmark = Benchmark::Managed;
        assert_eq!(run_check(&a).0[0].control, "3.2.6");
        let d = tempfile::tempdir().unwrap();
        let v: serde_json::Value =
            serde_json::from_str(&render_json(&run_check(&offline(&d)).0)).unwrap();
        assert_eq!(v["findings"][0]["status"], "error");
        assert!(v["findings"][0]["effective"].is_null());
    }

    #[test]
    fn exit_codes() {
        let f = |s: Status| Finding {
            control: "4.2.7".into(),
            status: s,
            effective: None,
            subject: Subject::Arguments {
                argv: vec![],
                cwd: "/".into(),
            },
            source: Source::Default,
            reason: String::new(),
            remediation: String::new(),
            inputs: vec![],
            input_dirs: vec![],
        };
        assert_eq!(exit_code(&[f(Status::Pass), f(Status::Pass)]), 0);
        assert_eq!(exit_code(&[f(Status::Pass), f(Status::Error)]), 2);
        assert_eq!(exit_code(&[f(Status::Error), f(Status::Fail)]), 1);
        assert_eq!(exit_code(&[]), 2);
    }

    #[test]
    fn clap_parses_the_documented_forms() {
        use clap::Parser;
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            check: CheckArgs,
        }
        let c = Cli::try_parse_from([
            "check",
            "--root",
            "/img",
            "--cwd",
            "/var/lib/kubelet",
            "--format",
            "json",
            "--benchmark",
            "managed",
            "--kubelet-name",
            "kubelet",
            "--kubelet-name",
            "kubelite",
            "--",
            "--config=config.yaml",
            "--make-iptables-util-chains",
            "false",
        ])
        .unwrap()
        .check;
        assert_eq!(c.root, Some(PathBuf::from("/img")));
        assert_eq!(c.format, Format::Json);
        assert_eq!(c.benchmark, Benchmark::Managed);
        assert_eq!(c.kubelet_names, vec!["kubelet", "kubelite"]);
        assert_eq!(
            c.args,
            vec![
                "--config=config.yaml",
                "--make-iptables-util-chains",
                "false"
            ]
        );
        assert!(Cli::try_parse_from(["check", "--benchmark", "cis-1.7"]).is_ok());
    }
}

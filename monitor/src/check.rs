//! `kubelet-drift check`: evaluate once, like a scanner.
//!
//! Output cannot be forged: every value the text report prints (paths, argv, reasons) is
//! escaped ([`crate::output::text::escape`]: a drop-in named `x\n[PASS] ...` cannot print a
//! line of its own, no terminal escape gets through), bytes that are not UTF-8 are written
//! `\xHH`, and the JSON report never fails on a path (see [`crate::finding::path_text`]).
use std::ffi::{OsStr, OsString};
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use std::time::SystemTime;

use crate::output::text::{escape, escape_path};
use crate::report::{Change, DriftReport, Trigger, TriggerOp};

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
  kubelet-drift check --format ocsf                    # OCSF lines, as the daemon's --json-out

Exit codes:
  0   every finding passes
  1   at least one finding fails (makeIPTablesUtilChains is false)
  2   none fails, but at least one is an error (unknown, unreadable, or the kubelet would not
      start), or there is no finding at all
  64  usage error (an unknown option, a bad value): nothing was evaluated";

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// One block per finding, for people.
    #[default]
    Text,
    /// One JSON object: tool, node, time, benchmark and `findings`.
    Json,
    /// OCSF 1.3.0 Compliance Finding lines, mapped as the daemon's JSON output.
    Ocsf,
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
    /// Node name in JSON and OCSF output (default: NODE_NAME, then the hostname).
    #[arg(long, value_name = "NAME")]
    pub node_name: Option<String>,
    /// Executable name of the kubelet (repeatable; default: kubelet and the processes that
    /// host or wrap one: k3s, k3s-server, k3s-agent, kubelite, hyperkube, kubenswrapper, rke2).
    #[arg(long = "kubelet-name", value_name = "NAME")]
    pub kubelet_names: Vec<String>,
    /// The node's distribution, instead of detecting it.
    #[arg(long, value_enum, value_name = "NAME")]
    pub distribution: Option<Distribution>,
    /// Kubelet arguments to evaluate instead of a node (argv[0] is "kubelet"). Any bytes, as
    /// the kubelet takes them.
    #[arg(last = true, value_name = "ARGS", value_parser = clap::value_parser!(OsString))]
    pub args: Vec<OsString>,
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
            vec![evaluate_os_arguments(&fs, &args.args, &cwd, args.benchmark)],
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

/// `arg` as text: itself when UTF-8; otherwise each byte that is not UTF-8 replaced by `rep`.
fn with_replacement(arg: &OsStr, rep: &str) -> String {
    let mut out = String::new();
    for chunk in arg.as_bytes().utf8_chunks() {
        out.push_str(chunk.valid());
        for _ in chunk.invalid() {
            out.push_str(rep);
        }
    }
    out
}

/// `arg` as lossless text: UTF-8 as it is, otherwise [`crate::finding::path_text`]'s form
/// (`\xHH` for each byte that is not UTF-8, backslashes doubled).
fn arg_text(arg: &OsStr) -> String {
    crate::finding::path_text(Path::new(arg)).into_owned()
}

/// Evaluates arguments that may hold any bytes, as the kubelet takes them. The evaluation
/// works on text, so an argument that is not UTF-8 is evaluated twice, its odd bytes replaced
/// two different ways: when both give the same pass or fail, those bytes did not decide it
/// (a label, a name) and the verdict stands; otherwise (they name the config file, say) the
/// finding is an error, never a guess.
pub fn evaluate_os_arguments(
    fs: &RootFs,
    args: &[OsString],
    cwd: &Path,
    benchmark: Benchmark,
) -> Finding {
    let odd: Vec<usize> = args
        .iter()
        .enumerate()
        .filter(|(_, a)| a.to_str().is_none())
        .map(|(i, _)| i + 1)
        .collect();
    let texts =
        |rep: &str| -> Vec<String> { args.iter().map(|a| with_replacement(a, rep)).collect() };
    let mut f = evaluate_arguments(fs, &texts("\u{fffd}"), cwd, benchmark);
    if odd.is_empty() {
        return f;
    }
    let other = evaluate_arguments(fs, &texts("?"), cwd, benchmark);
    let which = odd
        .iter()
        .map(|i| format!("argv[{i}]"))
        .collect::<Vec<_>>()
        .join(", ");
    if f.status != Status::Error && (f.status, f.effective) == (other.status, other.effective) {
        f.reason.push_str(&format!(
            " ({which} not UTF-8: its bytes do not decide the setting)"
        ));
    } else {
        f.status = Status::Error;
        f.effective = None;
        f.reason = format!(
            "{which} is not UTF-8 text and decides the evaluation (it names a file or sets the value); kubelet-drift cannot follow it exactly, so the verdict is unknown (read with its odd bytes replaced: {})",
            f.reason
        );
    }
    if let Subject::Arguments { argv, .. } = &mut f.subject {
        for (i, a) in args.iter().enumerate() {
            if let Some(slot) = argv.get_mut(i + 1) {
                *slot = arg_text(a);
            }
        }
    }
    f
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
            ..
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
                s.push_str(&format!(" of {}", escape_path(u)));
            }
            if let Some(e) = exec_start_from {
                s.push_str(&format!(" (ExecStart= from {})", escape_path(e)));
            }
            if !argv.is_empty() {
                s.push_str(&format!(": {}", shell_words(argv)));
            }
            s
        }
        Subject::Arguments { argv, cwd } => {
            format!(
                "arguments (cwd {}): {}",
                escape_path(cwd),
                shell_words(argv)
            )
        }
    }
}

/// The argv shell-quoted, then escaped for the terminal.
fn shell_words(argv: &[String]) -> String {
    let words = argv
        .iter()
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
        .join(" ");
    escape(&words)
}

fn describe_source(s: &Source) -> String {
    let at = |p: &Path, l: &Option<usize>| match l {
        Some(l) => format!("{} line {l}", escape_path(p)),
        None => escape_path(p),
    };
    match s {
        Source::Flag { index, text } => format!("flag argv[{index}] {}", escape(text)),
        Source::ConfigFile { path, line } => format!("config file {}", at(path, line)),
        Source::DropIn { path, line } => format!("config drop-in {}", at(path, line)),
        Source::Default => "the kubelet's default (true)".into(),
        Source::Unit { path, line } => format!("systemd unit file {}", at(path, line)),
        Source::None { detail } => format!("none ({})", escape(detail)),
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
        out.push_str(&format!("  reason:      {}\n", escape(&f.reason)));
        if !f.remediation.is_empty() {
            out.push_str(&format!("  remediation: {}\n", escape(&f.remediation)));
        }
        out.push('\n');
    }
    out
}

/// What the JSON and OCSF reports say besides the findings.
#[derive(Clone, Debug)]
pub struct Meta {
    pub node: String,
    pub time: SystemTime,
    pub benchmark: Benchmark,
    /// `--root`: the node image evaluated instead of the live node.
    pub root: Option<PathBuf>,
    /// `-- ARGS` held bytes that are not UTF-8 (their argv entries are escaped).
    pub args_non_utf8: bool,
    /// The node's distribution (none when given arguments are evaluated).
    pub distribution: Option<Detection>,
}

impl Meta {
    pub fn new(args: &CheckArgs) -> Meta {
        let node =
            crate::settings::node_name(&[args.node_name.clone(), std::env::var("NODE_NAME").ok()]);
        Meta {
            node,
            time: SystemTime::now(),
            benchmark: args.benchmark,
            root: args.root.clone(),
            args_non_utf8: args.args.iter().any(|a| a.to_str().is_none()),
            distribution: None,
        }
    }
}

/// The benchmark's name on the command line (`cis-1.6`, `cis-1.7`, `managed`).
fn benchmark_id(b: Benchmark) -> String {
    use clap::ValueEnum;
    b.to_possible_value()
        .map(|v| v.get_name().to_string())
        .unwrap_or_default()
}

/// The JSON report: `{"tool":{..},"node":..,"time":..,"benchmark":{..},"findings":[...]}`.
/// It never fails as a whole: paths that are not UTF-8 are escaped and the finding flagged
/// `"non_utf8": true`.
pub fn render_json(findings: &[Finding], meta: &Meta) -> String {
    use serde_json::{Value, json};
    let findings: Vec<Value> = findings
        .iter()
        .map(|f| {
            let mut v = serde_json::to_value(f).unwrap_or_else(|e| {
                json!({"control": f.control, "status": "error", "effective": null,
                       "reason": format!("this finding could not be written as JSON: {e}")})
            });
            let args = meta.args_non_utf8 && matches!(f.subject, Subject::Arguments { .. });
            if args || crate::finding::has_non_utf8_path(f) {
                v["non_utf8"] = json!(true);
            }
            v
        })
        .collect();
    let report = json!({
        "tool": {"name": "kubelet-drift", "version": env!("CARGO_PKG_VERSION")},
        "node": meta.node,
        "time": crate::output::text::rfc3339(meta.time),
        "benchmark": {
            "id": benchmark_id(meta.benchmark),
            "name": meta.benchmark.standard(),
            "control": meta.benchmark.control_id(),
        },
        "root": meta.root.as_deref().map(|r| crate::finding::path_text(r).into_owned()),
        "distribution": meta.distribution.as_ref().map(|d| json!({
            "id": d.distribution.id(),
            "name": d.distribution.name(),
            "evidence": d.evidence,
        })),
        "findings": findings,
    });
    serde_json::to_string_pretty(&report).unwrap_or_else(|e| {
        // Unreachable with the values above; still a JSON object, never a bare error.
        format!("{{\"error\":{:?},\"findings\":[]}}", e.to_string())
    })
}

/// OCSF lines, one Compliance Finding per finding, mapped exactly as the daemon's JSON output
/// (a first sight: activity Create; trigger op `check`).
pub fn render_ocsf(findings: &[Finding], meta: &Meta) -> String {
    let mut out = String::new();
    for f in findings {
        let r = DriftReport {
            change: Change::Baseline,
            finding: f.clone(),
            previous: None,
            trigger: Trigger::internal(TriggerOp::Check),
            node: meta.node.clone(),
            time: meta.time,
            benchmark: meta.benchmark,
            distribution: meta.distribution.clone(),
        };
        let mut v = crate::output::ocsf::to_ocsf(&r);
        if meta.args_non_utf8 && matches!(f.subject, Subject::Arguments { .. }) {
            v["unmapped"]["non_utf8"] = serde_json::json!(true);
        }
        out.push_str(&v.to_string());
        out.push('\n');
    }
    out
}

/// The exit code of a usage error (BSD sysexits' EX_USAGE), apart from 1 and 2, which are
/// verdicts.
pub const USAGE_EXIT: u8 = 64;

/// Parses the command line; a usage error exits with [`USAGE_EXIT`] (clap's own would be 2,
/// which `check` uses for an error finding), `--help` and `--version` with 0.
pub fn parse_args<P: clap::Parser>() -> P {
    parse_from(std::env::args_os()).unwrap_or_else(|(code, e)| {
        let _ = e.print();
        std::process::exit(i32::from(code))
    })
}

/// [`parse_args`] on given arguments: the parsed command, or the exit code and clap's message.
pub fn parse_from<P: clap::Parser>(
    args: impl IntoIterator<Item = impl Into<OsString> + Clone>,
) -> Result<P, (u8, clap::Error)> {
    P::try_parse_from(args).map_err(|e| {
        let code = if e.use_stderr() { USAGE_EXIT } else { 0 };
        (code, e)
    })
}

pub fn main(args: CheckArgs) -> ExitCode {
    let (detection, findings, code) = run_check_detected(&args);
    let mut meta = Meta::new(&args);
    meta.distribution = detection.clone();
    let text = match args.format {
        Format::Text => {
            let head = detection
                .map(|d| format!("distribution: {d}\n\n"))
                .unwrap_or_default();
            head + &render_text(&findings)
        }
        Format::Json => render_json(&findings, &meta) + "\n",
        Format::Ocsf => render_ocsf(&findings, &meta),
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
            args: a.iter().map(OsString::from).collect(),
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
        let v: serde_json::Value = serde_json::from_str(&render_json(&f, &Meta::new(&a))).unwrap();
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
        let v: serde_json::Value = serde_json::from_str(&render_json(
            &run_check(&offline(&d)).0,
            &Meta::new(&offline(&d)),
        ))
        .unwrap();
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
            [
                "--config=config.yaml",
                "--make-iptables-util-chains",
                "false"
            ]
            .map(OsString::from)
        );
        assert!(Cli::try_parse_from(["check", "--benchmark", "cis-1.7"]).is_ok());
    }

    /// A root with a false config and a `--config-dir` holding one drop-in named `name`
    /// (bytes) with `body`.
    fn dropin_root(name: &[u8], body: &str) -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().join("etc/kubelet.d");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::create_dir_all(d.path().join("var/lib/kubelet")).unwrap();
        std::fs::write(
            d.path().join("var/lib/kubelet/config.yaml"),
            format!("{CFG}makeIPTablesUtilChains: true\n"),
        )
        .unwrap();
        std::fs::write(dir.join(OsStr::from_bytes(name)), body).unwrap();
        d
    }

    fn args_in(d: &tempfile::TempDir, a: Vec<OsString>) -> CheckArgs {
        CheckArgs {
            root: Some(d.path().to_path_buf()),
            args: a,
            node_name: Some("n1".into()),
            ..Default::default()
        }
    }

    fn dropin_args() -> Vec<OsString> {
        [
            "--config=/var/lib/kubelet/config.yaml",
            "--config-dir=/etc/kubelet.d",
        ]
        .map(OsString::from)
        .to_vec()
    }

    #[test]
    fn a_forged_dropin_name_cannot_print_a_pass_line_or_reach_the_terminal() {
        let name =
            b"10-x\n[PASS] 4.2.7 Ensure that all is fine\n\x1b[2J\x1b]0;t\x07\xc2\x9b31m.conf";
        let d = dropin_root(name, &format!("{CFG}makeIPTablesUtilChains: false\n"));
        let a = args_in(&d, dropin_args());
        let (f, code) = run_check(&a);
        assert_eq!((f[0].status, code), (Status::Fail, 1), "{f:?}");
        let text = render_text(&f);
        let starts: Vec<&str> = text.lines().filter(|l| l.starts_with('[')).collect();
        assert_eq!(
            starts,
            vec![
                "[FAIL] 4.2.7 Ensure that the --make-iptables-util-chains argument is set to true"
            ],
            "{text}"
        );
        assert!(
            !text.chars().any(|c| c.is_control() && c != '\n'),
            "{text:?}"
        );
        assert!(text.contains("10-x\\n[PASS] 4.2.7"), "{text}");
        assert!(text.contains("\\x1b[2J"), "{text}");
    }

    #[test]
    fn a_non_utf8_path_keeps_the_json_and_loses_nothing() {
        let d = dropin_root(
            b"10-\xff\xfe.conf",
            &format!("{CFG}makeIPTablesUtilChains: false\n"),
        );
        let a = args_in(&d, dropin_args());
        let (f, code) = run_check(&a);
        assert_eq!((f[0].status, code), (Status::Fail, 1), "{f:?}");
        let json = render_json(&f, &Meta::new(&a));
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert!(v.get("error").is_none(), "{json}");
        let f0 = &v["findings"][0];
        assert_eq!(f0["status"], "fail");
        assert_eq!(f0["non_utf8"], true);
        assert_eq!(
            f0["source"]["path"], "/etc/kubelet.d/10-\\xff\\xfe.conf",
            "{json}"
        );
        let text = render_text(&f);
        assert!(text.contains("/etc/kubelet.d/10-\\xff\\xfe.conf"), "{text}");
        // The same through the OCSF lines.
        let o: serde_json::Value =
            serde_json::from_str(render_ocsf(&f, &Meta::new(&a)).trim()).unwrap();
        assert_eq!(o["unmapped"]["non_utf8"], true);
        assert_eq!(
            o["unmapped"]["source"],
            "dropin:/etc/kubelet.d/10-\\xff\\xfe.conf:3"
        );
    }

    #[test]
    fn non_utf8_arguments_are_bytes_as_the_kubelet_takes_them() {
        let d = dropin_root(
            b"10-a.conf",
            &format!("{CFG}makeIPTablesUtilChains: false\n"),
        );
        // Bytes that do not decide anything: the verdict stands.
        let mut a = dropin_args();
        a.push(OsStr::from_bytes(b"--node-labels=zone=\xff\xfe").to_os_string());
        let a = args_in(&d, a);
        let (f, code) = run_check(&a);
        assert_eq!((f[0].status, code), (Status::Fail, 1), "{f:?}");
        assert!(f[0].reason.contains("argv[3] not UTF-8"), "{}", f[0].reason);
        let v: serde_json::Value = serde_json::from_str(&render_json(&f, &Meta::new(&a))).unwrap();
        assert_eq!(
            v["findings"][0]["subject"]["argv"][3],
            "--node-labels=zone=\\xff\\xfe"
        );
        assert_eq!(v["findings"][0]["non_utf8"], true);
        // Bytes that name the file that decides: never a guess.
        std::fs::write(
            d.path().join("var/lib/kubelet/\u{fffd}.yaml"),
            format!("{CFG}makeIPTablesUtilChains: true\n"),
        )
        .unwrap();
        let a = args_in(
            &d,
            vec![OsStr::from_bytes(b"--config=/var/lib/kubelet/\xff.yaml").to_os_string()],
        );
        let (f, code) = run_check(&a);
        assert_eq!((f[0].status, code), (Status::Error, 2), "{f:?}");
        assert!(
            f[0].reason.contains("argv[1] is not UTF-8"),
            "{}",
            f[0].reason
        );
        // clap takes them too.
        use clap::Parser;
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            check: CheckArgs,
        }
        let c = Cli::try_parse_from([
            OsStr::new("check"),
            OsStr::new("--"),
            OsStr::from_bytes(b"--config=\xff"),
        ])
        .unwrap();
        assert_eq!(c.check.args[0].as_bytes(), b"--config=\xff");
    }

    #[test]
    fn json_and_ocsf_carry_node_time_benchmark_and_version() {
        let d = node(
            Config::Text(format!("{CFG}makeIPTablesUtilChains: false\n")),
            None,
        );
        let mut a = offline(&d);
        a.node_name = Some("worker-7".into());
        a.benchmark = Benchmark::Cis17;
        let (f, _) = run_check(&a);
        let meta = Meta::new(&a);
        let v: serde_json::Value = serde_json::from_str(&render_json(&f, &meta)).unwrap();
        assert_eq!(v["node"], "worker-7");
        assert_eq!(v["tool"]["name"], "kubelet-drift");
        assert_eq!(v["tool"]["version"], env!("CARGO_PKG_VERSION"));
        assert_eq!(v["benchmark"]["id"], "cis-1.7");
        assert_eq!(v["benchmark"]["control"], "4.2.6");
        assert_eq!(v["benchmark"]["name"], "CIS Kubernetes Benchmark v1.7+");
        let t = v["time"].as_str().unwrap();
        assert!(t.len() == 24 && t.ends_with('Z'), "{t}");
        assert_eq!(v["root"], d.path().to_str().unwrap());
        let lines = render_ocsf(&f, &meta);
        assert_eq!(lines.lines().count(), f.len());
        let o: serde_json::Value = serde_json::from_str(lines.lines().next().unwrap()).unwrap();
        assert_eq!(o["class_uid"], 2003);
        assert_eq!(o["device"]["hostname"], "worker-7");
        assert_eq!(o["compliance"]["control"], "4.2.6");
        assert_eq!(o["compliance"]["status"], "Fail");
        assert_eq!(o["unmapped"]["trigger"]["op"], "check");
        assert_eq!(
            o["metadata"]["product"]["version"],
            env!("CARGO_PKG_VERSION")
        );
    }

    #[test]
    fn usage_errors_exit_64_help_exits_0() {
        #[derive(clap::Parser, Debug)]
        struct Cli {
            #[command(flatten)]
            check: CheckArgs,
        }
        let code = |a: &[&str]| parse_from::<Cli>(a.iter().copied()).err().map(|(c, _)| c);
        assert_eq!(code(&["check", "--bogus"]), Some(USAGE_EXIT));
        assert_eq!(code(&["check", "--format", "yaml"]), Some(USAGE_EXIT));
        assert_eq!(code(&["check", "--benchmark"]), Some(USAGE_EXIT));
        assert_eq!(code(&["check", "--help"]), Some(0));
        assert_eq!(code(&["check", "--format", "ocsf"]), None);
        assert!(AFTER_HELP.contains("64  usage error"));
    }
}

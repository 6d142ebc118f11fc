//! k3s and RKE2 findings: the kubelet's argv computed by [`super::rancher`], evaluated by the
//! kubelet's rules, and the verdict traced back to the distribution's file and line (and the
//! remedy to the place a user of that distribution edits, not a file it regenerates).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::super::discovery::KubeletProcess;
use super::super::evaluate::{EvalInput, Evaluation, evaluate_versioned};
use super::super::rootfs::RootFs;
use super::super::unit::{self, AssembledUnit, UnitErrorKind};
use super::rancher::{self, Flavor, Origin, RancherError};
use super::{started, version};
use crate::finding::{Benchmark, Finding, Source, Status, Subject};

/// The kubelet's argv as the distribution builds it, with the origin of each argument.
#[derive(Clone, Debug)]
pub struct Computed {
    pub argv: Vec<String>,
    /// Per argv index: the kubelet-arg it came from (`None`: argv[0] or a default).
    pub origins: Vec<Option<Origin>>,
    /// The managed `--config-dir`, when the distribution passes it (inside the root).
    pub managed_dir: Option<PathBuf>,
    /// `kubelet-arg` `config=` / `config-dir=`, copied into the managed directory.
    pub user_config: Option<(String, Origin)>,
    pub user_config_dir: Option<(String, Origin)>,
    /// Config files read (inside the root), for the reason.
    pub config_files: Vec<PathBuf>,
    /// The executable whose version is the kubelet's (k3s itself when embedded).
    pub version_program: String,
    /// Host paths read, and directories whose new entries matter.
    pub inputs: Vec<PathBuf>,
    pub input_dirs: Vec<PathBuf>,
}

fn host(fs: &RootFs, p: &Path) -> Option<PathBuf> {
    fs.resolve(p, Path::new("/")).ok()
}

/// Computes the kubelet's argv from `cli_argv` (the unit's `ExecStart=`) and the config files.
/// `check_copies`: the distribution will copy the user's `config`/`config-dir` into its managed
/// directory at its next start, so a copy that differs from its source is not what will run.
pub fn compute(
    fs: &RootFs,
    flavor: &Flavor,
    cli_argv: &[String],
    cli: &Origin,
    env: &HashMap<String, String>,
    check_copies: bool,
) -> Result<Computed, (RancherError, Vec<PathBuf>, Vec<PathBuf>)> {
    let mut inputs = Vec::new();
    let mut input_dirs = Vec::new();
    let config_file = env
        .get(flavor.config_env)
        .filter(|v| !v.is_empty())
        .cloned()
        .unwrap_or_else(|| flavor.config_default.to_string());
    inputs.extend(host(fs, Path::new(&config_file)));
    input_dirs.extend(host(fs, Path::new(&format!("{config_file}.d"))));
    let fail = |e: RancherError, i: &Vec<PathBuf>, d: &Vec<PathBuf>| (e, i.clone(), d.clone());
    let (flags, files) = rancher::combined_flags(fs, flavor, cli_argv, cli, env)
        .map_err(|e| fail(e, &inputs, &input_dirs))?;
    inputs.extend(host(fs, &files.file));
    for f in &files.files {
        inputs.extend(host(fs, f));
    }
    input_dirs.extend(host(fs, &files.dropin_dir));
    let data_dir = flags
        .data_dir
        .clone()
        .unwrap_or_else(|| flavor.data_dir_default.to_string());
    let dir = rancher::managed_dir(&data_dir);
    input_dirs.extend(host(fs, &dir));
    let mut c = Computed {
        argv: Vec::new(),
        origins: Vec::new(),
        managed_dir: None,
        user_config: None,
        user_config_dir: None,
        config_files: files.files.clone(),
        version_program: String::new(),
        inputs: Vec::new(),
        input_dirs: Vec::new(),
    };
    let mut initial = BTreeMap::new();
    let extra = if rancher::uses_managed_dir(fs, flavor, &dir) {
        let ex = rancher::extract_config_args(&flags.kubelet_args)
            .map_err(|e| fail(e, &inputs, &input_dirs))?;
        initial.insert("config-dir".to_string(), dir.display().to_string());
        c.managed_dir = Some(dir.clone());
        c.user_config = ex.config;
        c.user_config_dir = ex.config_dir;
        if check_copies {
            check_copy_sources(fs, flavor, &c, &dir, &mut inputs, &mut input_dirs)
                .map_err(|e| fail(e, &inputs, &input_dirs))?;
        }
        ex.args
    } else {
        flags.kubelet_args.clone()
    };
    let args = rancher::get_args(&initial, &extra);
    let argv0 = if flavor.embedded {
        "kubelet".to_string()
    } else {
        format!("{data_dir}/bin/kubelet")
    };
    c.argv = std::iter::once(argv0)
        .chain(args.iter().map(|(a, _)| a.clone()))
        .collect();
    c.version_program = if flavor.embedded {
        cli_argv.first().cloned().unwrap_or_default()
    } else {
        c.argv[0].clone()
    };
    c.origins = std::iter::once(None)
        .chain(args.into_iter().map(|(_, o)| o))
        .collect();
    c.inputs = inputs;
    c.input_dirs = input_dirs;
    Ok(c)
}

/// The user's `config` / `config-dir` as the next start will copy them: the copy in the managed
/// directory must match its source, else what will run is not on disk yet.
fn check_copy_sources(
    fs: &RootFs,
    flavor: &Flavor,
    c: &Computed,
    dir: &Path,
    inputs: &mut Vec<PathBuf>,
    input_dirs: &mut Vec<PathBuf>,
) -> Result<(), RancherError> {
    let inside = |src: &str| src.starts_with(&dir.display().to_string());
    let stale = |src: &str, dest: &Path, o: &Origin| RancherError {
        path: o.path.display().to_string(),
        line: Some(o.line),
        message: format!(
            "{} copies {src} (kubelet-arg at this line) to {} when it starts, and the copy differs from {src} now: what the kubelet will read after a restart is not on disk yet, so it is not evaluated (restart {} to refresh the copy, then check again)",
            flavor.name,
            dest.display(),
            flavor.name
        ),
    };
    if let Some((src, o)) = &c.user_config
        && !inside(src)
    {
        inputs.extend(host(fs, Path::new(src)));
        let dest = dir.join("10-cli-config.conf");
        let want = fs
            .read_text(Path::new(src), Path::new("/"))
            .map_err(|e| RancherError {
                path: o.path.display().to_string(),
                line: Some(o.line),
                message: format!(
                    "{} cannot copy kubelet-arg config={src} and fails to start: {e}",
                    flavor.name
                ),
            })?;
        let have = fs.read_text_optional(&dest, Path::new("/")).ok().flatten();
        if have.map(|t| t.text) != Some(want.text) {
            return Err(stale(src, &dest, o));
        }
    }
    if let Some((src, o)) = &c.user_config_dir
        && !inside(src)
    {
        input_dirs.extend(host(fs, Path::new(src)));
        let dest = dir.join("20-cli-config-dir");
        let files = fs
            .walk_files(Path::new(src), Path::new("/"))
            .map_err(|e| RancherError {
                path: o.path.display().to_string(),
                line: Some(o.line),
                message: format!(
                    "{} cannot copy kubelet-arg config-dir={src} and fails to start: {e}",
                    flavor.name
                ),
            })?;
        for f in files {
            let rel = f.strip_prefix(src).unwrap_or(&f).to_path_buf();
            let want = fs.read_text(&f, Path::new("/")).map(|t| t.text).ok();
            let have = fs
                .read_text(&dest.join(&rel), Path::new("/"))
                .map(|t| t.text)
                .ok();
            if want.is_none() || want != have {
                return Err(stale(src, &dest, o));
            }
        }
    }
    Ok(())
}

/// Evaluates a computed argv and traces the verdict to the distribution's files.
pub fn evaluate_computed(
    fs: &RootFs,
    flavor: &Flavor,
    c: &Computed,
    env: &HashMap<String, String>,
    restart: &str,
) -> Evaluation {
    let kv = version::of_program(fs, &c.version_program);
    let mut ev = evaluate_versioned(
        &EvalInput {
            fs,
            argv: &c.argv,
            cwd: Path::new("/"),
            env,
        },
        kv.as_ref().ok(),
    );
    version::explain_unknown(&mut ev, &kv);
    name_flag_origin(&mut ev, flavor, c, restart);
    name_managed_copy(&mut ev, flavor, c, restart);
    let files: Vec<String> = c
        .config_files
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    ev.reason = format!(
        "{} ({}: the kubelet's flags computed by {}'s rules from its command line and {})",
        ev.reason,
        flavor.name,
        flavor.name,
        if files.is_empty() {
            "no config file".to_string()
        } else {
            files.join(", ")
        }
    );
    add_distribution_inputs(&mut ev, c);
    ev
}

/// A verdict decided by a flag: name the distribution's file and line that gave it (a
/// `kubelet-arg` entry or the unit's `--kubelet-arg`), which is where the user edits.
fn name_flag_origin(ev: &mut Evaluation, flavor: &Flavor, c: &Computed, restart: &str) {
    let flag_at = match &ev.source {
        Source::Flag { index, text } => Some((*index, text.clone())),
        _ => None,
    };
    let Some((index, text)) = flag_at else { return };
    let Some(Some(o)) = c.origins.get(index) else {
        return;
    };
    ev.reason = format!(
        "{}: {} gives the kubelet {text:?}: {}",
        flavor.name,
        o.describe(),
        ev.reason
    );
    let fix = if ev.status == Status::Error {
        "fix or remove".to_string()
    } else {
        "change it to make-iptables-util-chains=true, or remove".to_string()
    };
    ev.remediation = if o.config_file {
        format!(
            "{fix} the kubelet-arg entry {:?} at {} line {}, then {restart}",
            o.entry,
            o.path.display(),
            o.line
        )
    } else {
        format!(
            "{fix} the --kubelet-arg {:?} in the ExecStart= at {} line {} (or move the kubelet args to {}), then systemctl daemon-reload and {restart}",
            o.entry,
            o.path.display(),
            o.line,
            flavor.config_default
        )
    };
    if ev.status != Status::Pass {
        ev.source = if o.config_file {
            Source::ConfigFile {
                path: o.path.clone(),
                line: Some(o.line),
            }
        } else {
            Source::Unit {
                path: o.path.clone(),
                line: Some(o.line),
            }
        };
    }
}

/// A verdict decided by a drop-in of the directory the distribution rewrites at each start:
/// the remedy names the user's file it was copied from, never the generated copy.
fn name_managed_copy(ev: &mut Evaluation, flavor: &Flavor, c: &Computed, restart: &str) {
    let (Source::DropIn { path, .. }, Some(dir)) = (&ev.source, &c.managed_dir) else {
        return;
    };
    if !path.starts_with(dir) || ev.status == Status::Pass {
        return;
    }
    let rel = path.strip_prefix(dir).unwrap_or(path);
    let first = rel
        .components()
        .next()
        .map(|c| c.as_os_str().to_string_lossy().into_owned());
    let via = match first.as_deref() {
        Some("10-cli-config.conf") => c.user_config.as_ref().map(|(s, o)| (s, o, "config")),
        Some("20-cli-config-dir") => c
            .user_config_dir
            .as_ref()
            .map(|(s, o)| (s, o, "config-dir")),
        _ => None,
    };
    if let Some((src, o, key)) = via {
        ev.remediation = format!(
            "{} is {}'s copy of {src} (kubelet-arg {key}= at {} line {}), rewritten at each start: set makeIPTablesUtilChains: true (or remove it) in {src}, then {restart}",
            path.display(),
            flavor.name,
            o.path.display(),
            o.line
        );
    } else if first.as_deref() == Some(&format!("00-{}-defaults.conf", flavor.program)) {
        ev.remediation = format!(
            "{} is generated by {} at each start and never sets makeIPTablesUtilChains: find who wrote it, then {restart} to regenerate it",
            path.display(),
            flavor.name
        );
    }
}

/// The distribution's own files (config.yaml and its .d, units, env files) are inputs too.
fn add_distribution_inputs(ev: &mut Evaluation, c: &Computed) {
    for p in &c.inputs {
        if !ev.inputs.contains(p) {
            ev.inputs.push(p.clone());
        }
    }
    for p in &c.input_dirs {
        if !ev.input_dirs.contains(p) {
            ev.input_dirs.push(p.clone());
        }
    }
}

fn restart_text(unit: &str) -> String {
    format!("restart it (systemctl restart {unit})")
}

fn error_finding(
    subject: Subject,
    benchmark: Benchmark,
    flavor: &Flavor,
    e: RancherError,
    inputs: Vec<PathBuf>,
    input_dirs: Vec<PathBuf>,
    restart: &str,
) -> Finding {
    let path = PathBuf::from(&e.path);
    let source = if path
        .extension()
        .is_some_and(|x| x == "service" || x == "conf")
    {
        Source::Unit {
            path: path.clone(),
            line: e.line,
        }
    } else {
        Source::ConfigFile {
            path: path.clone(),
            line: e.line,
        }
    };
    Finding {
        control: benchmark.control_id().into(),
        status: Status::Error,
        effective: None,
        subject,
        source,
        reason: format!(
            "{}: the kubelet's flags cannot be computed: {e}",
            flavor.name
        ),
        remediation: format!(
            "fix {}{}, then {restart}",
            e.path,
            e.line.map(|l| format!(" line {l}")).unwrap_or_default()
        ),
        inputs,
        input_dirs,
    }
}

/// The running process read files that changed since: its verdict is unknown.
fn changed_after_start(f: &mut Finding, flavor: &Flavor, pid: u32, unit: &str, path: PathBuf) {
    f.status = Status::Error;
    f.effective = None;
    f.reason = format!(
        "{} pid {pid} hides its arguments and its embedded kubelet has no command line of its own, so the running kubelet's flags can only be computed from the files; {} changed after {} started, so what it read then is not known (computed from the files as they are now: {})",
        flavor.name,
        path.display(),
        flavor.name,
        f.reason
    );
    f.remediation = format!(
        "the after-restart finding says what {} will run with; restart it (systemctl restart {unit}) so that the running kubelet matches the files",
        flavor.name
    );
}

#[allow(clippy::too_many_arguments)]
fn finding_from_unit(
    fs: &RootFs,
    flavor: &Flavor,
    u: &AssembledUnit,
    env: &HashMap<String, String>,
    subject: Subject,
    check_copies: bool,
    started: Option<(u32, SystemTime)>,
    benchmark: Benchmark,
) -> (Finding, bool) {
    let name = u
        .unit_path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let restart = restart_text(&name);
    match compute(
        fs,
        flavor,
        &u.argv,
        &rancher::cli_origin(u),
        env,
        check_copies,
    ) {
        Ok(c) => {
            let ev = evaluate_computed(fs, flavor, &c, env, &restart);
            let mut f = ev.into_finding(subject, benchmark);
            if let Subject::AfterRestart { argv, .. } = &mut f.subject {
                *argv = c.argv.clone();
            }
            for p in &u.inputs {
                if !f.inputs.contains(p) {
                    f.inputs.push(p.clone());
                }
            }
            for p in &u.input_dirs {
                if !f.input_dirs.contains(p) {
                    f.input_dirs.push(p.clone());
                }
            }
            // Not the managed directory: k3s rewrites it at each start.
            let managed = c.managed_dir.as_deref().and_then(|d| host(fs, d));
            if let Some((pid, at)) = started
                && let Some(changed) = started::changed_since(&f.inputs, managed.as_deref(), at)
            {
                changed_after_start(&mut f, flavor, pid, &name, changed);
                return (f, true);
            }
            (f, false)
        }
        Err((e, mut i, mut d)) => {
            i.extend(u.inputs.iter().cloned());
            d.extend(u.input_dirs.iter().cloned());
            let f = error_finding(subject, benchmark, flavor, e, i, d, &restart);
            (f, false)
        }
    }
}

/// The assembled unit of the distribution: the running process's unit first, then server,
/// then agent. `Ok(None)`: no unit at all.
fn assemble_unit(
    fs: &RootFs,
    flavor: &Flavor,
    running_units: &[String],
) -> Result<Option<AssembledUnit>, unit::UnitError> {
    for name in rancher::unit_of(flavor, running_units) {
        match unit::assemble(fs, name) {
            Ok(u) => return Ok(Some(u)),
            Err(e) if e.kind == UnitErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(None)
}

fn no_unit(flavor: &Flavor, subject: Subject, benchmark: Benchmark, why: &str) -> Finding {
    Finding {
        control: benchmark.control_id().into(),
        status: Status::Error,
        effective: None,
        subject,
        source: Source::None {
            detail: format!(
                "{} node without {} or {}",
                flavor.name, flavor.units[0], flavor.units[1]
            ),
        },
        reason: format!(
            "{} node, but neither {} nor {} exists: the command line that starts {} (with any --kubelet-arg) cannot be read{why}",
            flavor.name, flavor.units[0], flavor.units[1], flavor.name
        ),
        remediation: format!(
            "look at how {} is started on this node (its --kubelet-arg flags) and at {} (kubelet-arg); run {} from a systemd unit so that this check can read it",
            flavor.name, flavor.config_default, flavor.name
        ),
        inputs: Vec::new(),
        input_dirs: Vec::new(),
    }
}

/// After a restart: the distribution's unit, config files and managed drop-ins. `None` when
/// no unit exists and a running kubelet process can stand for it (RKE2).
pub fn after_restart(
    fs: &RootFs,
    flavor: &Flavor,
    running: &[KubeletProcess],
    benchmark: Benchmark,
) -> Option<Finding> {
    let units: Vec<String> = running
        .iter()
        .filter_map(|p| p.systemd_unit.clone())
        .collect();
    let u = match assemble_unit(fs, flavor, &units) {
        Ok(Some(u)) => u,
        Ok(None) if !flavor.embedded && !running.is_empty() => return None,
        Ok(None) => {
            let subject = Subject::AfterRestart {
                unit: None,
                argv: Vec::new(),
                exec_start_from: None,
            };
            let why = if flavor.embedded {
                " (k3s hides its own arguments from /proc)"
            } else {
                ""
            };
            return Some(no_unit(flavor, subject, benchmark, why));
        }
        Err(e) => {
            let mut f = super::super::node::unit_error_finding(e, benchmark);
            f.reason = format!("{}: {}", flavor.name, f.reason);
            return Some(f);
        }
    };
    let subject = Subject::AfterRestart {
        unit: Some(u.unit_path.clone()),
        argv: Vec::new(),
        exec_start_from: Some(u.exec_start_from.clone()),
    };
    Some(finding_from_unit(fs, flavor, &u, &u.env, subject, true, None, benchmark).0)
}

/// A running k3s process: its embedded kubelet's flags, computed from the unit of its cgroup
/// (inside its root) and the config files as they are now, with its own environment.
pub fn running(
    p: &KubeletProcess,
    flavor: &Flavor,
    benchmark: Benchmark,
    evaluated_late: bool,
) -> Finding {
    let fs = RootFs::new(&p.root);
    let subject = Subject::Running {
        pid: p.pid,
        start_time: p.start_time,
        argv: p.argv.clone(),
        evaluated_late,
    };
    let units: Vec<String> = p.systemd_unit.iter().cloned().collect();
    let u = match assemble_unit(&fs, flavor, &units) {
        Ok(Some(u)) => u,
        Ok(None) => {
            return no_unit(
                flavor,
                subject,
                benchmark,
                " (k3s hides its own arguments from /proc: its process title is rewritten)",
            );
        }
        Err(e) => {
            let mut f = super::super::node::unit_error_finding(e, benchmark);
            f.subject = subject;
            f.reason = format!("{} pid {}: {}", flavor.name, p.pid, f.reason);
            return f;
        }
    };
    // What the process had: its environment (K3S_CONFIG_FILE), not the unit's as it is now.
    // Found already running, the files may have changed since it read them: then the verdict
    // is unknown (an error), never the files' verdict passed off as the running one.
    let started = evaluated_late.then(|| (p.pid, started::process_started(p.start_time)));
    let (mut f, changed) = finding_from_unit(
        &fs,
        flavor,
        &u,
        &p.env,
        subject,
        !evaluated_late,
        started,
        benchmark,
    );
    if changed {
        return f;
    }
    f.reason = format!(
        "{} (the embedded kubelet of {} pid {} has no command line of its own and {} hides its arguments: computed from {} and the config files{})",
        f.reason,
        flavor.name,
        p.pid,
        flavor.name,
        u.unit_path.display(),
        if evaluated_late {
            " as they are now, none of which changed since it started"
        } else {
            ", read when its start was seen"
        }
    );
    f
}

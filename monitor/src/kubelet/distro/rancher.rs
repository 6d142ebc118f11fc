//! k3s and RKE2: the kubelet's flags, computed from the distribution's unit and config files
//! by the distribution's own rules, then evaluated by the kubelet's rules.
//!
//! Followed from k3s-io/k3s (RKE2 builds on the same packages, with `rke2` paths):
//! - `pkg/configfilearg/parser.go` `Parse` / `readConfigFile`: the config file is
//!   `$K3S_CONFIG_FILE` (`$RKE2_CONFIG_FILE`) when set and non-empty, else `--config`/`-c`,
//!   else `/etc/rancher/<p>/config.yaml`. Its `.d` directory (`config.yaml.d`) adds every
//!   non-directory entry whose name ends in `.yaml`/`.yml` (case-insensitive), in `os.ReadDir`
//!   (name) order, after the file itself; a missing file with no drop-ins means no config. Each
//!   file is a go-yaml v2 `MapSlice`; a key ending in `+` appends to the value so far (a scalar
//!   becomes a one-item list), any other key replaces it; keys keep the order they were first
//!   seen in. Each value becomes `--key=value` (a list: one per item; `-` for a one-letter
//!   key), inserted right after the subcommand (`server`/`agent`), before the command line's
//!   own arguments: for a repeatable flag such as `--kubelet-arg`, the file's values come
//!   first and the command line's follow (urfave/cli `StringSlice`, no comma splitting).
//! - `pkg/daemons/agent/agent.go` `startKubelet` / `extractConfigArgs` /
//!   `writeKubeletConfig`, `agent_linux.go` `kubeletArgsAndConfig` (k3s with kubelet
//!   `--config-dir`, 1.32 and backports): the default args hold
//!   `config-dir=<data-dir>/agent/etc/kubelet.conf.d`, where k3s writes
//!   `00-<p>-defaults.conf` at every start. `kubelet-arg`s named `config` / `config-dir` are
//!   taken out: their file is copied to `10-cli-config.conf`, their directory to
//!   `20-cli-config-dir/` (unless already inside the managed directory). An entry without `=`
//!   takes the next entry as its value and that entry is dropped, whatever its key.
//!   Older k3s (no `00-<p>-defaults.conf`): `kubelet-arg`s pass through as flags.
//! - `pkg/util/args.go` `GetArgs`: each `kubelet-arg` is `key[=value]` (`--` optional, no value
//!   means `true`); `key+` appends to a default, `key-` prepends, a plain key replaces the
//!   default; repeats accumulate; the result is `--key=value` sorted by key, repeats in order
//!   (so the kubelet's pflag takes the last of a repeated flag).
//!
//! The kubelet of k3s runs in a goroutine of the k3s process and k3s hides its own arguments
//! (`gspt.SetProcTitle`), so the running truth is computed the same way, from the unit of the
//! k3s process's cgroup and the files as they are now (said so in the finding).
//!
//! Not modelled (an error when it could matter): YAML anchors/aliases and non-scalar values in
//! the config keys read here; `K3S_*` environment variables other than the config file's;
//! remote (http) config files.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use yaml_rust2::parser::{Event, Parser};
use yaml_rust2::scanner::TScalarStyle;

use super::super::rootfs::RootFs;
use super::super::unit::AssembledUnit;

/// The places and names of one Rancher distribution.
#[derive(Clone, Debug)]
pub struct Flavor {
    /// For people: "k3s", "RKE2".
    pub name: &'static str,
    /// The program and file prefix: "k3s", "rke2".
    pub program: &'static str,
    pub config_default: &'static str,
    pub config_env: &'static str,
    pub data_dir_default: &'static str,
    /// The systemd units that run it (server first).
    pub units: [&'static str; 2],
    /// Files or directories only this distribution has.
    pub marker_files: [&'static str; 2],
    /// The kubelet runs inside the distribution's process (k3s) rather than as its own (RKE2).
    pub embedded: bool,
}

/// Where a kubelet argument came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Origin {
    /// A config file or the unit file whose `ExecStart=` holds it, inside the root.
    pub path: PathBuf,
    pub line: usize,
    /// `true` for a config file, `false` for the unit's command line.
    pub config_file: bool,
    /// The entry as written (the `kubelet-arg` value).
    pub entry: String,
}

impl Origin {
    pub fn describe(&self) -> String {
        if self.config_file {
            format!(
                "kubelet-arg {:?} at {} line {}",
                self.entry,
                self.path.display(),
                self.line
            )
        } else {
            format!(
                "--kubelet-arg {:?} in the ExecStart= at {} line {}",
                self.entry,
                self.path.display(),
                self.line
            )
        }
    }
}

/// Why the kubelet's flags cannot be computed (or the distribution would not start it).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{path}{}: {message}", line.map(|l| format!(" line {l}")).unwrap_or_default())]
pub struct RancherError {
    pub path: String,
    pub line: Option<usize>,
    pub message: String,
}

fn rerr(path: &Path, line: Option<usize>, message: impl Into<String>) -> RancherError {
    RancherError {
        path: path.display().to_string(),
        line,
        message: message.into(),
    }
}

// ---------------------------------------------------------------------------------------------
// The config files (configfilearg).

/// A scalar as go-yaml v2 + wrangler's `convert.ToString` turn it into text.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Scalar {
    text: String,
    /// A YAML string (quoted, or plain and not a bool/null/number): `toSlice` keeps it even empty.
    is_string: bool,
    line: usize,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum YVal {
    Scalar(Scalar),
    List(Vec<Scalar>),
    /// A mapping, a nested list or an alias: not modelled.
    Other(usize),
}

const BOOL_TRUE: &[&str] = &[
    "y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON",
];
const BOOL_FALSE: &[&str] = &[
    "n", "N", "no", "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF",
];

/// go-yaml v2's resolution of a plain scalar, as `convert.ToString` prints it.
fn resolve(value: String, style: TScalarStyle, line: usize) -> Scalar {
    if style != TScalarStyle::Plain {
        return Scalar {
            text: value,
            is_string: true,
            line,
        };
    }
    let v = value.as_str();
    if BOOL_TRUE.contains(&v) {
        return Scalar {
            text: "true".into(),
            is_string: false,
            line,
        };
    }
    if BOOL_FALSE.contains(&v) {
        return Scalar {
            text: "false".into(),
            is_string: false,
            line,
        };
    }
    if matches!(v, "" | "~" | "null" | "Null" | "NULL") {
        return Scalar {
            text: String::new(),
            is_string: false,
            line,
        };
    }
    let numeric = v.parse::<i64>().is_ok() || v.parse::<f64>().is_ok();
    Scalar {
        text: value,
        is_string: !numeric,
        line,
    }
}

/// The top-level mapping of a k3s config file, in order, with each value's line.
fn parse_config_yaml(text: &str, path: &Path) -> Result<Vec<(String, usize, YVal)>, RancherError> {
    // k3s reads its config with go-yaml v2 (YAML 1.1); yaml-rust2 is YAML 1.2 and differs on
    // exactly the constructs that can hide a value (NEL/LS/PS line breaks, tags, explicit
    // keys, ...). Only text inside the kubelet reader's allowlist, whose go-yaml meaning is
    // proven (`kubelet::yaml`), is read here; anything else is an error, never a guess.
    if let Err(e) = crate::kubelet::yaml::parse::first_document(text) {
        return Err(rerr(
            path,
            e.line,
            format!(
                "kubelet-drift cannot tell how k3s reads this YAML: {}",
                e.reason
            ),
        ));
    }
    let mut p = Parser::new_from_str(text);
    let next = |p: &mut Parser<std::str::Chars<'_>>| {
        p.next_token().map_err(|e| {
            rerr(
                path,
                Some(e.marker().line()),
                format!("invalid YAML: {}", e.info()),
            )
        })
    };
    // Skip to the first document's root node.
    let (root, root_mark) = loop {
        let (ev, m) = next(&mut p)?;
        match ev {
            Event::StreamStart | Event::DocumentStart | Event::Nothing => continue,
            Event::StreamEnd | Event::DocumentEnd => return Ok(Vec::new()),
            ev => break (ev, m),
        }
    };
    match root {
        Event::MappingStart(..) => {}
        // An empty document is a null scalar: no values.
        Event::Scalar(v, TScalarStyle::Plain, ..) if matches!(v.as_str(), "" | "~" | "null") => {
            return Ok(Vec::new());
        }
        _ => {
            return Err(rerr(
                path,
                Some(root_mark.line()),
                "the file is not a YAML mapping: k3s/RKE2 fail to start (yaml: cannot unmarshal into MapSlice)",
            ));
        }
    }
    let mut out = Vec::new();
    loop {
        let (ev, m) = next(&mut p)?;
        let key = match ev {
            Event::MappingEnd => break,
            Event::Scalar(v, style, ..) => resolve(v, style, m.line()).text,
            _ => {
                return Err(rerr(
                    path,
                    Some(m.line()),
                    "a key that is not a scalar is not modelled",
                ));
            }
        };
        let (ev, m) = next(&mut p)?;
        let val = match ev {
            Event::Scalar(v, style, ..) => YVal::Scalar(resolve(v, style, m.line())),
            Event::SequenceStart(..) => {
                let mut items = Vec::new();
                let mut other = false;
                loop {
                    let (ev, im) = next(&mut p)?;
                    match ev {
                        Event::SequenceEnd => break,
                        Event::Scalar(v, style, ..) => items.push(resolve(v, style, im.line())),
                        Event::SequenceStart(..) | Event::MappingStart(..) => {
                            skip_node(&mut p, path)?;
                            other = true;
                        }
                        _ => other = true,
                    }
                }
                if other {
                    YVal::Other(m.line())
                } else {
                    YVal::List(items)
                }
            }
            Event::MappingStart(..) => {
                skip_node(&mut p, path)?;
                YVal::Other(m.line())
            }
            _ => YVal::Other(m.line()),
        };
        out.push((key, m.line(), val));
    }
    Ok(out)
}

/// Skips the rest of a collection whose start was just read.
fn skip_node(p: &mut Parser<std::str::Chars<'_>>, path: &Path) -> Result<(), RancherError> {
    let mut depth = 1usize;
    while depth > 0 {
        let (ev, _) = p.next_token().map_err(|e| {
            rerr(
                path,
                Some(e.marker().line()),
                format!("invalid YAML: {}", e.info()),
            )
        })?;
        match ev {
            Event::SequenceStart(..) | Event::MappingStart(..) => depth += 1,
            Event::SequenceEnd | Event::MappingEnd => depth -= 1,
            Event::StreamEnd => break,
            _ => {}
        }
    }
    Ok(())
}

/// One `--key=value` argument made from a config file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigArg {
    pub key: String,
    pub value: String,
    pub origin: Origin,
    /// The value is a mapping or nested list, which k3s prints with Go's fmt: not modelled.
    pub unmodelled: bool,
}

/// What the config files give: the arguments, and every file and directory read.
#[derive(Clone, Debug, Default)]
pub struct ConfigFiles {
    /// The config file (inside the root), whether or not it exists.
    pub file: PathBuf,
    pub args: Vec<ConfigArg>,
    /// Files read (inside the root).
    pub files: Vec<PathBuf>,
    /// The `.d` directory (inside the root).
    pub dropin_dir: PathBuf,
}

type Values = Vec<(Scalar, PathBuf, bool)>;

/// `append(toSlice(old), toSlice(new)...)`: a non-string scalar that prints empty is nil, the
/// result is a list.
fn append_values(old: &mut Values, new: Values) {
    old.retain(|(s, _, in_list)| *in_list || s.is_string || !s.text.trim().is_empty());
    for (s, _, in_list) in &mut *old {
        if !*in_list && !s.is_string {
            s.text = s.text.trim().to_string();
        }
        *in_list = true;
    }
    for (mut s, p, in_list) in new {
        if !in_list && !s.is_string {
            s.text = s.text.trim().to_string();
            if s.text.is_empty() {
                continue;
            }
        }
        old.push((s, p, true));
    }
}

/// `readConfigFile(file)`: the file, then its `.d` drop-ins, merged.
pub fn read_config_files(fs: &RootFs, file: &Path) -> Result<ConfigFiles, RancherError> {
    let dropin_dir = PathBuf::from(format!("{}.d", file.display()));
    let mut files: Vec<PathBuf> = Vec::new();
    match fs.read_dir_sorted(&dropin_dir, Path::new("/")) {
        Ok(entries) => {
            for e in entries {
                let name = e.name.to_string_lossy().to_lowercase();
                if e.kind != super::super::rootfs::FileKind::Dir
                    && (name.ends_with(".yaml") || name.ends_with(".yml"))
                {
                    if e.name.to_str().is_none() {
                        return Err(rerr(
                            &e.path_in_root,
                            None,
                            "a config drop-in whose name is not UTF-8 is not modelled",
                        ));
                    }
                    files.push(e.path_in_root);
                }
            }
        }
        Err(e) if e.is_not_found() => {}
        Err(e) => return Err(rerr(&dropin_dir, None, e.to_string())),
    }
    match fs.read_text_optional(file, Path::new("/")) {
        Ok(Some(_)) => files.insert(0, file.to_path_buf()),
        Ok(None) => {}
        Err(e) => return Err(rerr(file, None, e.to_string())),
    }
    let mut order: Vec<String> = Vec::new();
    let mut values: HashMap<String, Values> = HashMap::new();
    let mut unmodelled: HashMap<String, (PathBuf, usize)> = HashMap::new();
    for f in &files {
        let text = fs
            .read_text(f, Path::new("/"))
            .map_err(|e| rerr(f, None, e.to_string()))?;
        for (raw_key, _line, val) in parse_config_yaml(&text.text, f)? {
            let append = raw_key.ends_with('+');
            let key = raw_key.strip_suffix('+').unwrap_or(&raw_key).to_string();
            if !order.contains(&key) {
                order.push(key.clone());
            }
            let new: Values = match &val {
                YVal::Scalar(s) => vec![(s.clone(), f.clone(), false)],
                YVal::List(items) => items.iter().map(|s| (s.clone(), f.clone(), true)).collect(),
                YVal::Other(l) => {
                    unmodelled.insert(key.clone(), (f.clone(), *l));
                    Vec::new()
                }
            };
            if !matches!(val, YVal::Other(_)) {
                unmodelled.remove(&key);
            }
            match values.get_mut(&key) {
                Some(old) if append => append_values(old, new),
                _ => {
                    values.insert(key.clone(), new);
                }
            }
        }
    }
    let mut args = Vec::new();
    for k in order {
        if let Some((p, l)) = unmodelled.get(&k) {
            args.push(ConfigArg {
                key: k.clone(),
                value: String::new(),
                origin: Origin {
                    path: p.clone(),
                    line: *l,
                    config_file: true,
                    entry: String::new(),
                },
                unmodelled: true,
            });
            continue;
        }
        for (s, p, _) in values.get(&k).into_iter().flatten() {
            args.push(ConfigArg {
                key: k.clone(),
                value: s.text.clone(),
                origin: Origin {
                    path: p.clone(),
                    line: s.line,
                    config_file: true,
                    entry: s.text.clone(),
                },
                unmodelled: false,
            });
        }
    }
    Ok(ConfigFiles {
        file: file.to_path_buf(),
        args,
        files,
        dropin_dir,
    })
}

// ---------------------------------------------------------------------------------------------
// The command line.

/// One argument of the distribution's command line, with where it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Word {
    text: String,
    origin: Origin,
}

/// The k3s/RKE2 flags that matter here, from the combined command line.
#[derive(Clone, Debug, Default)]
pub struct NodeFlags {
    /// `--kubelet-arg` values in order.
    pub kubelet_args: Vec<(String, Origin)>,
    pub data_dir: Option<String>,
}

/// Reads `--kubelet-arg` and `--data-dir`/`-d` from the arguments after the subcommand, as Go's
/// flag package (urfave/cli v1) parses them: `-f=v`, `--f=v`, `-f v`, `--f v`; parsing stops
/// at `--` or the first argument that is not a flag.
fn node_flags(words: &[Word]) -> Result<NodeFlags, RancherError> {
    let mut out = NodeFlags::default();
    let mut i = 0;
    while i < words.len() {
        let w = &words[i];
        let t = w.text.as_str();
        if t == "--" || !t.starts_with('-') || t == "-" {
            break;
        }
        let body = t.strip_prefix("--").unwrap_or(&t[1..]);
        let (name, inline) = match body.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (body, None),
        };
        let takes_next = inline.is_none()
            && words.get(i + 1).is_some_and(|n| {
                !n.text.starts_with('-') || matches!(name, "kubelet-arg" | "data-dir" | "d")
            });
        let value = match inline {
            Some(v) => Some(v),
            None if takes_next => Some(words[i + 1].text.clone()),
            None => None,
        };
        match name {
            "kubelet-arg" | "data-dir" | "d" => {
                let Some(v) = value else {
                    return Err(rerr(
                        &w.origin.path,
                        Some(w.origin.line),
                        format!("{t} has no value: the distribution refuses to start"),
                    ));
                };
                if name == "kubelet-arg" {
                    let mut o = w.origin.clone();
                    o.entry = v.clone();
                    out.kubelet_args.push((v, o));
                } else {
                    out.data_dir = Some(v);
                }
            }
            _ => {}
        }
        i += if takes_next { 2 } else { 1 };
    }
    Ok(out)
}

/// The unit's (or process's) argv with the config files' arguments inserted after the
/// subcommand, as `configfilearg.Parser.Parse` does. Returns the flags and the config files.
pub fn combined_flags(
    fs: &RootFs,
    flavor: &Flavor,
    argv: &[String],
    cli_origin: &Origin,
    env: &HashMap<String, String>,
) -> Result<(NodeFlags, ConfigFiles), RancherError> {
    let Some(sub) = argv.iter().position(|a| a == "server" || a == "agent") else {
        return Err(rerr(
            &cli_origin.path,
            Some(cli_origin.line),
            format!(
                "the command line {argv:?} has no `server` or `agent` subcommand: {} does not run a node (no kubelet)",
                flavor.name
            ),
        ));
    };
    let config_file = match env.get(flavor.config_env).filter(|v| !v.is_empty()) {
        Some(v) => v.clone(),
        None => find_config_flag(argv).unwrap_or_else(|| flavor.config_default.to_string()),
    };
    let files = read_config_files(fs, Path::new(&config_file))?;
    let mut words: Vec<Word> = Vec::new();
    for a in &files.args {
        if a.unmodelled && matches!(a.key.as_str(), "kubelet-arg" | "data-dir" | "d") {
            return Err(rerr(
                &a.origin.path,
                Some(a.origin.line),
                format!(
                    "{}: a value that is not a string or a list of strings is not modelled",
                    a.key
                ),
            ));
        }
        let dash = if a.key.chars().count() == 1 {
            "-"
        } else {
            "--"
        };
        words.push(Word {
            text: format!("{dash}{}={}", a.key, a.value),
            origin: a.origin.clone(),
        });
    }
    for a in &argv[sub + 1..] {
        words.push(Word {
            text: a.clone(),
            origin: cli_origin.clone(),
        });
    }
    Ok((node_flags(&words)?, files))
}

fn find_config_flag(argv: &[String]) -> Option<String> {
    for (i, a) in argv.iter().enumerate() {
        for f in ["--config", "-c"] {
            if a == f {
                return argv
                    .get(i + 1)
                    .cloned()
                    .or(Some(String::new()))
                    .filter(|s| !s.is_empty());
            }
            if let Some(v) = a.strip_prefix(&format!("{f}=")) {
                return Some(v.to_string());
            }
        }
    }
    None
}

// ---------------------------------------------------------------------------------------------
// The kubelet's argv (agent.go, args.go).

/// `--config` / `--config-dir` kubelet-args taken out (k3s with the managed drop-in dir).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Extracted {
    pub args: Vec<(String, Origin)>,
    pub config: Option<(String, Origin)>,
    pub config_dir: Option<(String, Origin)>,
}

/// `extractConfigArgs`.
pub fn extract_config_args(extra: &[(String, Origin)]) -> Result<Extracted, RancherError> {
    let mut out = Extracted::default();
    let mut skip = false;
    for (i, (a, o)) in extra.iter().enumerate() {
        if skip {
            skip = false;
            continue;
        }
        let key_full = a.strip_prefix("--").unwrap_or(a);
        let (key, val) = match key_full.split_once('=') {
            Some((k, v)) => (k, v.to_string()),
            None if extra.len() > i + 1 => {
                skip = true;
                (key_full, extra[i + 1].0.clone())
            }
            None => (key_full, String::new()),
        };
        match key {
            "config" | "config-dir" => {
                if val.is_empty() {
                    return Err(rerr(
                        &o.path,
                        Some(o.line),
                        format!(
                            "kubelet-arg {a:?}: \"value required for kubelet-arg --{key}\": the distribution refuses to start"
                        ),
                    ));
                }
                let slot = if key == "config" {
                    &mut out.config
                } else {
                    &mut out.config_dir
                };
                *slot = Some((val, o.clone()));
            }
            _ => out.args.push((a.clone(), o.clone())),
        }
    }
    Ok(out)
}

/// `GetArgs(initialArgs, extraArgs)`: the kubelet's arguments, each with the kubelet-arg it
/// came from (`None` for a default).
pub fn get_args(
    initial: &BTreeMap<String, String>,
    extra: &[(String, Origin)],
) -> Vec<(String, Option<Origin>)> {
    let mut initial = initial.clone();
    let mut multi: BTreeMap<String, Vec<(String, Option<Origin>)>> = BTreeMap::new();
    for (unsplit, origin) in extra {
        let body = unsplit.strip_prefix("--").unwrap_or(unsplit);
        let (arg, value) = match body.split_once('=') {
            Some((a, v)) => (a, v.to_string()),
            None => (body, "true".to_string()),
        };
        let cleaned = arg.trim_end_matches(['-', '+']).to_string();
        let init = initial.get(&cleaned).cloned();
        let existing = multi.get(&cleaned).cloned();
        let mut new: Vec<(String, Option<Origin>)> = Vec::new();
        let me = (value, Some(origin.clone()));
        if arg.ends_with('+') {
            new.extend(init.map(|v| (v, None)));
            new.extend(existing.into_iter().flatten());
            new.push(me);
        } else if arg.ends_with('-') {
            new.push(me);
            new.extend(init.map(|v| (v, None)));
            new.extend(existing.into_iter().flatten());
        } else {
            new.extend(existing.into_iter().flatten());
            new.push(me);
        }
        initial.remove(&cleaned);
        multi.insert(cleaned, new);
    }
    for (k, v) in initial {
        multi.insert(k, vec![(v, None)]);
    }
    let mut out = Vec::new();
    for (k, values) in multi {
        let k = k.strip_prefix("--").unwrap_or(&k).to_string();
        for (v, o) in values {
            out.push((format!("--{k}={v}"), o));
        }
    }
    out
}

/// The managed drop-in directory, inside the root.
pub fn managed_dir(data_dir: &str) -> PathBuf {
    Path::new(data_dir).join("agent/etc/kubelet.conf.d")
}

/// Whether the distribution runs the kubelet with its managed `--config-dir` (it wrote its
/// defaults drop-in there).
pub fn uses_managed_dir(fs: &RootFs, flavor: &Flavor, dir: &Path) -> bool {
    let f = dir.join(format!("00-{}-defaults.conf", flavor.program));
    super::exists(fs, &f.to_string_lossy())
}

/// The unit that runs the distribution, if any, for the unit-less error.
pub fn unit_of<'a>(flavor: &'a Flavor, running_units: &[String]) -> Vec<&'a str> {
    let mut v: Vec<&str> = flavor
        .units
        .iter()
        .copied()
        .filter(|u| running_units.iter().any(|r| r == u))
        .collect();
    for u in flavor.units {
        if !v.contains(&u) {
            v.push(u);
        }
    }
    v
}

/// The text form of an assembled unit's ExecStart origin.
pub fn cli_origin(u: &AssembledUnit) -> Origin {
    Origin {
        path: u.exec_start_from.clone(),
        line: u.exec_start_line,
        config_file: false,
        entry: String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kubelet::rootfs::test_root;

    fn o(line: usize) -> Origin {
        Origin {
            path: "/x".into(),
            line,
            config_file: true,
            entry: String::new(),
        }
    }

    #[test]
    fn yaml_outside_the_proven_set_is_an_error_not_a_guess() {
        // go-yaml v2 ends the comment at LS: k3s sees the kubelet-arg, yaml-rust2 does not.
        let hidden = "write-kubeconfig-mode: \"0644\" # note\u{2028}kubelet-arg: [make-iptables-util-chains=false]\n";
        let e = parse_config_yaml(hidden, Path::new("/etc/rancher/k3s/config.yaml")).unwrap_err();
        assert!(e.to_string().contains("cannot tell how k3s reads"), "{e}");
        for tricky in [
            "? kubelet-arg\n: [make-iptables-util-chains=false]\n",
            "kubelet-arg: !!binary bWFrZQ==\n",
            "%YAML 1.1\n---\nkubelet-arg: [x]\n",
        ] {
            assert!(
                parse_config_yaml(tricky, Path::new("/c.yaml")).is_err(),
                "{tricky:?}"
            );
        }
        let plain = "kubelet-arg:\n  - make-iptables-util-chains=false\n";
        let got = parse_config_yaml(plain, Path::new("/c.yaml")).unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].0, "kubelet-arg");
    }

    #[test]
    fn get_args_like_k3s() {
        let mut init = BTreeMap::new();
        init.insert("config-dir".to_string(), "/d".to_string());
        init.insert("node-labels".to_string(), "a=b".to_string());
        let extra: Vec<(String, Origin)> = [
            "make-iptables-util-chains=false",
            "--v=2",
            "node-labels+=c=d",
            "make-iptables-util-chains",
            "eviction-hard-=x",
        ]
        .iter()
        .enumerate()
        .map(|(i, s)| (s.to_string(), o(i + 1)))
        .collect();
        let got: Vec<String> = get_args(&init, &extra)
            .into_iter()
            .map(|(a, _)| a)
            .collect();
        assert_eq!(
            got,
            vec![
                "--config-dir=/d",
                "--eviction-hard=x",
                "--make-iptables-util-chains=false",
                "--make-iptables-util-chains=true",
                "--node-labels=a=b",
                "--node-labels=c=d",
                "--v=2",
            ]
        );
        let with_origin = get_args(&init, &extra);
        assert_eq!(with_origin[2].1.as_ref().unwrap().line, 1);
        assert_eq!(with_origin[0].1, None);
    }

    #[test]
    fn extract_config_args_like_k3s() {
        let extra: Vec<(String, Origin)> = [
            "config=/etc/k.yaml",
            "make-iptables-util-chains",
            "v=2",
            "--config-dir",
            "/etc/d",
        ]
        .iter()
        .enumerate()
        .map(|(i, s)| (s.to_string(), o(i + 1)))
        .collect();
        let e = extract_config_args(&extra).unwrap();
        assert_eq!(e.config.unwrap().0, "/etc/k.yaml");
        assert_eq!(e.config_dir.unwrap().0, "/etc/d");
        // an entry without '=' swallows the next one
        let args: Vec<&str> = e.args.iter().map(|(a, _)| a.as_str()).collect();
        assert_eq!(args, vec!["make-iptables-util-chains"]);
        assert!(extract_config_args(&[("config=".to_string(), o(1))]).is_err());
    }

    #[test]
    fn config_files_merge_like_configfilearg() {
        let (_d, fs) = test_root(&[
            (
                "/etc/rancher/k3s/config.yaml",
                "write-kubeconfig-mode: \"0644\"\nkubelet-arg:\n  - \"v=2\"\n  - make-iptables-util-chains=true\ndata-dir: /srv/k3s\n",
            ),
            (
                "/etc/rancher/k3s/config.yaml.d/10-a.yaml",
                "kubelet-arg+:\n  - make-iptables-util-chains=false\n",
            ),
            (
                "/etc/rancher/k3s/config.yaml.d/20-b.YML",
                "kubelet-arg+: feature-gates=X=true\n",
            ),
            (
                "/etc/rancher/k3s/config.yaml.d/30-c.txt",
                "kubelet-arg: [ignored]\n",
            ),
            (
                "/etc/rancher/k3s/config.yaml.d/40-d.yaml/x.yaml",
                "kubelet-arg: [ignored]\n",
            ),
        ]);
        let c = read_config_files(&fs, Path::new("/etc/rancher/k3s/config.yaml")).unwrap();
        let ka: Vec<(&str, usize)> = c
            .args
            .iter()
            .filter(|a| a.key == "kubelet-arg")
            .map(|a| (a.value.as_str(), a.origin.line))
            .collect();
        assert_eq!(
            ka,
            vec![
                ("v=2", 3),
                ("make-iptables-util-chains=true", 4),
                ("make-iptables-util-chains=false", 2),
                ("feature-gates=X=true", 1)
            ]
        );
        assert_eq!(c.files.len(), 3);
        // a later plain key replaces
        let (_d, fs) = test_root(&[
            ("/c.yaml", "kubelet-arg: [a=1]\n"),
            (
                "/c.yaml.d/x.yaml",
                "kubelet-arg: [make-iptables-util-chains=false]\n",
            ),
        ]);
        let c = read_config_files(&fs, Path::new("/c.yaml")).unwrap();
        let vals: Vec<&str> = c.args.iter().map(|a| a.value.as_str()).collect();
        assert_eq!(vals, vec!["make-iptables-util-chains=false"]);
        // drop-ins alone are enough; YAML 1.1 scalars print as Go does
        let (_d, fs) = test_root(&[("/c.yaml.d/x.yaml", "kubelet-arg: yes\nx: ~\n")]);
        let c = read_config_files(&fs, Path::new("/c.yaml")).unwrap();
        assert_eq!(c.args[0].value, "true");
        assert_eq!(c.args[1].value, "");
        // not a mapping: k3s refuses to start
        let (_d, fs) = test_root(&[("/c.yaml", "- a\n")]);
        assert!(read_config_files(&fs, Path::new("/c.yaml")).is_err());
        let (_d, fs) = test_root(&[("/c.yaml", "")]);
        assert!(
            read_config_files(&fs, Path::new("/c.yaml"))
                .unwrap()
                .args
                .is_empty()
        );
    }

    #[test]
    fn node_flags_from_cli_and_files() {
        let (_d, fs) = test_root(&[(
            "/etc/rancher/k3s/config.yaml",
            "kubelet-arg: [make-iptables-util-chains=true]\n",
        )]);
        let argv: Vec<String> = [
            "/usr/local/bin/k3s",
            "server",
            "--kubelet-arg",
            "make-iptables-util-chains=false",
            "--data-dir=/srv",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let cli = Origin {
            path: "/etc/systemd/system/k3s.service".into(),
            line: 9,
            config_file: false,
            entry: String::new(),
        };
        let (f, _) = combined_flags(
            &fs,
            &crate::kubelet::distro::k3s::FLAVOR,
            &argv,
            &cli,
            &HashMap::new(),
        )
        .unwrap();
        let v: Vec<&str> = f.kubelet_args.iter().map(|(a, _)| a.as_str()).collect();
        assert_eq!(
            v,
            vec![
                "make-iptables-util-chains=true",
                "make-iptables-util-chains=false"
            ]
        );
        assert!(!f.kubelet_args[1].1.config_file);
        assert_eq!(f.data_dir.as_deref(), Some("/srv"));
        // K3S_CONFIG_FILE moves the file
        let env: HashMap<String, String> =
            [("K3S_CONFIG_FILE".to_string(), "/nope.yaml".to_string())].into();
        let (f, _) =
            combined_flags(&fs, &crate::kubelet::distro::k3s::FLAVOR, &argv, &cli, &env).unwrap();
        assert_eq!(f.kubelet_args.len(), 1);
        // no subcommand: no node
        assert!(
            combined_flags(
                &fs,
                &crate::kubelet::distro::k3s::FLAVOR,
                &argv[..1],
                &cli,
                &env
            )
            .is_err()
        );
    }
}

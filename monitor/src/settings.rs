//! The daemon's configuration: `/etc/kubelet-drift/config.yaml` (optional) or `--config FILE`.
//!
//! The defaults are `deploy/config.yaml`, embedded here with `include_str!` and installed by
//! the .deb as the conffile: one file, so the documented defaults are the real ones. A file
//! given by the user only needs the keys it changes; unknown keys and bad values are errors
//! that name the file, line and column.

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use serde::{Deserialize, Deserializer};

use crate::finding::Benchmark;

/// The embedded defaults (also the installed `/etc/kubelet-drift/config.yaml`).
pub const DEFAULT_CONFIG: &str = include_str!("../../deploy/config.yaml");
/// Read when `--config` is not given, if it exists.
pub const DEFAULT_PATH: &str = "/etc/kubelet-drift/config.yaml";

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub kubelet_names: Vec<String>,
    pub kubelet_unit: String,
    #[serde(deserialize_with = "de_duration")]
    pub rescan_interval: Duration,
    #[serde(deserialize_with = "de_duration")]
    pub coalesce: Duration,
    pub outputs: OutputSettings,
    /// After [`load`]: never `None` (NODE_NAME, then the file, then the hostname).
    pub node_name: Option<String>,
    #[serde(deserialize_with = "de_benchmark")]
    pub benchmark: Benchmark,
    pub watch_extra: Vec<PathBuf>,
    pub ring_buffer_bytes: RingSize,
    /// The host's root: "/" on the host, "/host" in the DaemonSet.
    pub host_root: PathBuf,
    pub metrics: MetricsSettings,
}

/// Prometheus metrics and /healthz (see `crate::metrics`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsSettings {
    /// Address to serve /metrics and /healthz on ("127.0.0.1:9761"), or none.
    pub listen: Option<String>,
    /// A node_exporter textfile-collector file (`*.prom`) to keep up to date, or none.
    pub textfile: Option<PathBuf>,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputSettings {
    pub journald: Toggle,
    /// A path to append OCSF JSON lines to, or "-" for stdout.
    pub json_out: Option<String>,
    pub text: Toggle,
    /// Where the OCSF findings' lifecycle state is kept across restarts (default:
    /// /var/lib/kubelet-drift/state.json when that directory exists).
    pub state_file: Option<PathBuf>,
}

/// `true`, `false` or `auto`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Toggle {
    On,
    Off,
    Auto,
}

impl Toggle {
    /// On/Off as set; Auto asks `probe`.
    pub fn resolve(self, probe: impl FnOnce() -> bool) -> bool {
        match self {
            Toggle::On => true,
            Toggle::Off => false,
            Toggle::Auto => probe(),
        }
    }
}

impl std::str::FromStr for Toggle {
    type Err = String;
    /// The command line's spelling: the file's, plus on/off and yes/no.
    fn from_str(s: &str) -> Result<Toggle, String> {
        match s {
            "true" | "on" | "yes" => Ok(Toggle::On),
            "false" | "off" | "no" => Ok(Toggle::Off),
            "auto" => Ok(Toggle::Auto),
            _ => Err(format!("expected true, false or auto, found {s:?}")),
        }
    }
}

/// The ring buffer's size in bytes: a power of two from 4 KiB to 1 GiB, checked once where
/// it is read (file or command line) and carried checked everywhere after.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RingSize(u32);

impl RingSize {
    pub const MIN: u64 = 4096;
    pub const MAX: u64 = 1 << 30;

    pub fn new(n: u64) -> Result<RingSize, String> {
        if !n.is_power_of_two() || !(Self::MIN..=Self::MAX).contains(&n) {
            return Err(format!(
                "ring_buffer_bytes must be a power of two from 4096 to 1GiB, found {n}"
            ));
        }
        Ok(RingSize(n as u32))
    }

    pub fn get(self) -> u32 {
        self.0
    }
}

impl Default for RingSize {
    fn default() -> Self {
        RingSize(256 * 1024)
    }
}

impl std::str::FromStr for RingSize {
    type Err = String;
    /// An integer, or "256KiB", "1MiB", "1GiB".
    fn from_str(s: &str) -> Result<RingSize, String> {
        let t = s.trim();
        let (num, mul) = if let Some(x) = t.strip_suffix("KiB") {
            (x, 1u64 << 10)
        } else if let Some(x) = t.strip_suffix("MiB") {
            (x, 1 << 20)
        } else if let Some(x) = t.strip_suffix("GiB") {
            (x, 1 << 30)
        } else {
            (t, 1)
        };
        let n = num.trim().parse::<u64>().map_err(|_| {
            format!("bad size {s:?}: expected bytes or a KiB/MiB/GiB size like \"256KiB\"")
        })?;
        RingSize::new(n.saturating_mul(mul))
    }
}

impl<'de> Deserialize<'de> for RingSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(Scalar(
            |v| match v {
                ScalarValue::Str(s) => s.parse(),
                ScalarValue::Int(n) => RingSize::new(n),
                ScalarValue::Bool(_) => {
                    Err("ring_buffer_bytes must be a size like \"256KiB\"".into())
                }
            },
            "a size like \"256KiB\"",
        ))
    }
}

/// What the command line changes (`None` / empty: as the file says).
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    pub json_out: Option<String>,
    pub journald: Option<Toggle>,
    pub text: Option<Toggle>,
    pub rescan_interval: Option<Duration>,
    pub node_name: Option<String>,
    pub benchmark: Option<Benchmark>,
    pub kubelet_names: Vec<String>,
    pub ring_buffer_bytes: Option<RingSize>,
    pub host_root: Option<PathBuf>,
    /// Added to the file's `watch_extra`.
    pub watch_extra: Vec<PathBuf>,
    pub metrics_listen: Option<String>,
    pub metrics_textfile: Option<PathBuf>,
}

/// The shortest rescan interval: a full re-evaluation reads every input and /proc.
pub const MIN_RESCAN_INTERVAL: Duration = Duration::from_secs(1);

impl<'de> Deserialize<'de> for Toggle {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(Scalar(
            |v| match v {
                ScalarValue::Bool(true) => Ok(Toggle::On),
                ScalarValue::Bool(false) => Ok(Toggle::Off),
                ScalarValue::Str("auto") => Ok(Toggle::Auto),
                ScalarValue::Str(s) => Err(format!("expected true, false or auto, found {s:?}")),
                ScalarValue::Int(n) => Err(format!("expected true, false or auto, found {n}")),
            },
            "true, false or auto",
        ))
    }
}

/// The user file: every key optional, the same names and checks.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Overlay {
    kubelet_names: Option<Vec<String>>,
    kubelet_unit: Option<String>,
    #[serde(default, deserialize_with = "de_some_duration")]
    rescan_interval: Option<Duration>,
    #[serde(default, deserialize_with = "de_some_duration")]
    coalesce: Option<Duration>,
    outputs: Option<OutputsOverlay>,
    #[serde(default, deserialize_with = "de_nullable")]
    node_name: Option<Option<String>>,
    #[serde(default, deserialize_with = "de_some_benchmark")]
    benchmark: Option<Benchmark>,
    watch_extra: Option<Vec<PathBuf>>,
    ring_buffer_bytes: Option<RingSize>,
    host_root: Option<PathBuf>,
    metrics: Option<MetricsOverlay>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct MetricsOverlay {
    #[serde(default, deserialize_with = "de_nullable")]
    listen: Option<Option<String>>,
    #[serde(default, deserialize_with = "de_nullable")]
    textfile: Option<Option<PathBuf>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct OutputsOverlay {
    journald: Option<Toggle>,
    #[serde(default, deserialize_with = "de_nullable")]
    json_out: Option<Option<String>>,
    text: Option<Toggle>,
    #[serde(default, deserialize_with = "de_nullable")]
    state_file: Option<Option<PathBuf>>,
}

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// Not a readable regular text file of a sane size (a FIFO, a device, a directory,
    /// more than 4 MiB, binary): refused before reading, never waited on.
    #[error("settings file {source}")]
    Read {
        path: PathBuf,
        source: crate::kubelet::rootfs::FsError,
    },
    #[error("{path}:{line}:{column}: {message}")]
    Parse {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

impl Default for Settings {
    /// The embedded `deploy/config.yaml`, as is (node_name unresolved).
    fn default() -> Self {
        serde_saphyr::from_str(DEFAULT_CONFIG).expect("deploy/config.yaml is valid (tested)")
    }
}

/// Loads the settings: the defaults, overlaid with `path` (or [`DEFAULT_PATH`] if it exists
/// when `path` is `None`), then NODE_NAME and the hostname for `node_name`.
pub fn load(path: Option<&Path>) -> Result<Settings, SettingsError> {
    load_with(path, &|k| std::env::var(k).ok(), &hostname)
}

/// [`load`], then the command line on top; the result is checked as a whole.
pub fn load_with_overrides(path: Option<&Path>, o: &Overrides) -> Result<Settings, SettingsError> {
    let mut s = load(path)?;
    override_with(&mut s, o);
    check(&s, Path::new("the command line"))?;
    Ok(s)
}

fn override_with(s: &mut Settings, o: &Overrides) {
    if let Some(j) = &o.json_out {
        s.outputs.json_out = Some(j.clone());
    }
    if let Some(t) = o.journald {
        s.outputs.journald = t;
    }
    if let Some(t) = o.text {
        s.outputs.text = t;
    }
    if let Some(d) = o.rescan_interval {
        s.rescan_interval = d;
    }
    // The command line names the node over NODE_NAME, the file and the hostname.
    if let Some(n) = o.node_name.as_ref().filter(|n| !n.trim().is_empty()) {
        s.node_name = Some(n.clone());
    }
    if let Some(b) = o.benchmark {
        s.benchmark = b;
    }
    if !o.kubelet_names.is_empty() {
        s.kubelet_names = o.kubelet_names.clone();
    }
    if let Some(r) = o.ring_buffer_bytes {
        s.ring_buffer_bytes = r;
    }
    if let Some(h) = &o.host_root {
        s.host_root = h.clone();
    }
    s.watch_extra.extend(o.watch_extra.iter().cloned());
    if let Some(l) = &o.metrics_listen {
        s.metrics.listen = Some(l.clone());
    }
    if let Some(t) = &o.metrics_textfile {
        s.metrics.textfile = Some(t.clone());
    }
}

/// Checks that need the whole: names, the rescan interval's floor.
fn check(s: &Settings, origin: &Path) -> Result<(), SettingsError> {
    let invalid = |message: String| SettingsError::Invalid {
        path: origin.to_path_buf(),
        message,
    };
    if s.kubelet_names.is_empty() || s.kubelet_names.iter().any(|n| n.is_empty()) {
        return Err(invalid(
            "kubelet_names must list at least one non-empty name".into(),
        ));
    }
    if s.rescan_interval < MIN_RESCAN_INTERVAL {
        return Err(invalid(format!(
            "rescan_interval must be at least {}s, not {:?}",
            MIN_RESCAN_INTERVAL.as_secs(),
            s.rescan_interval
        )));
    }
    if s.kubelet_unit.trim().is_empty() {
        return Err(invalid("kubelet_unit must name a unit".into()));
    }
    if let Some(l) = &s.metrics.listen
        && l.parse::<std::net::SocketAddr>().is_err()
    {
        return Err(invalid(format!(
            "metrics.listen must be an address and port like \"127.0.0.1:9761\", not {l:?}"
        )));
    }
    if let Some(t) = &s.metrics.textfile
        && t.extension().is_none_or(|e| e != "prom")
    {
        return Err(invalid(format!(
            "metrics.textfile must end in .prom (node_exporter reads only those): {}",
            t.display()
        )));
    }
    Ok(())
}

fn load_with(
    path: Option<&Path>,
    env: &dyn Fn(&str) -> Option<String>,
    host: &dyn Fn() -> Option<String>,
) -> Result<Settings, SettingsError> {
    let mut s = Settings::default();
    let file = match path {
        Some(p) => Some(p.to_path_buf()),
        None => Some(PathBuf::from(DEFAULT_PATH)).filter(|p| p.exists()),
    };
    if let Some(p) = file {
        let text = read_safely(&p)?;
        let o = parse_overlay(&text).map_err(|e| locate(&p, e))?;
        apply(&mut s, o);
        check(&s, &p)?;
    }
    let named = [env("NODE_NAME"), s.node_name.take()];
    s.node_name = Some(node_name_with(&named, host));
    Ok(s)
}

/// The node's name as reports give it, resolved in this one place for `run` and `check`: the
/// first non-blank of `named` (highest precedence first: the command line, NODE_NAME, the
/// settings file), else the hostname, else "unknown".
pub fn node_name(named: &[Option<String>]) -> String {
    node_name_with(named, &hostname)
}

fn node_name_with(named: &[Option<String>], host: &dyn Fn() -> Option<String>) -> String {
    named
        .iter()
        .flatten()
        .find(|n| !n.trim().is_empty())
        .cloned()
        .or_else(host)
        .unwrap_or_else(|| "unknown".into())
}

/// The settings file through the same reader as the kubelet's files: regular files only
/// (a FIFO is never opened, a device never read), at most 4 MiB, UTF-8 text.
fn read_safely(p: &Path) -> Result<String, SettingsError> {
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
    let abs = if p.is_absolute() {
        p.to_path_buf()
    } else {
        cwd.join(p)
    };
    crate::kubelet::rootfs::RootFs::host()
        .read_text(&abs, &cwd)
        .map(|t| t.text)
        .map_err(|source| SettingsError::Read {
            path: p.to_path_buf(),
            source,
        })
}

fn parse_overlay(text: &str) -> Result<Overlay, serde_saphyr::Error> {
    // An empty file (or only comments) is valid: nothing changed.
    if text
        .lines()
        .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'))
    {
        return Ok(Overlay::default());
    }
    serde_saphyr::from_str(text)
}

fn locate(path: &Path, e: serde_saphyr::Error) -> SettingsError {
    let (line, column) = e
        .location()
        .map(|l| (l.line() as usize, l.column() as usize))
        .unwrap_or((1, 1));
    // The parser says where, and shows a snippet; our prefix says where already.
    let text = e.without_snippet().to_string();
    let mut message = text.lines().next().unwrap_or_default().trim();
    message = message.strip_prefix("error: ").unwrap_or(message);
    if let Some(rest) = message.strip_prefix("line ")
        && let Some((_, m)) = rest.split_once(": ")
    {
        message = m;
    }
    let mut message = message.to_string();
    if let Some(i) = message.find(" at line ") {
        message.truncate(i);
    }
    SettingsError::Parse {
        path: path.to_path_buf(),
        line,
        column,
        message,
    }
}

fn apply(s: &mut Settings, o: Overlay) {
    macro_rules! set {
        ($($f:ident),*) => { $( if let Some(v) = o.$f { s.$f = v; } )* };
    }
    set!(
        kubelet_names,
        kubelet_unit,
        rescan_interval,
        coalesce,
        node_name,
        benchmark,
        watch_extra,
        ring_buffer_bytes,
        host_root
    );
    if let Some(m) = o.metrics {
        if let Some(v) = m.listen {
            s.metrics.listen = v;
        }
        if let Some(v) = m.textfile {
            s.metrics.textfile = v;
        }
    }
    if let Some(out) = o.outputs {
        if let Some(v) = out.journald {
            s.outputs.journald = v;
        }
        if let Some(v) = out.json_out {
            s.outputs.json_out = v;
        }
        if let Some(v) = out.text {
            s.outputs.text = v;
        }
        if let Some(v) = out.state_file {
            s.outputs.state_file = v;
        }
    }
}

fn hostname() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
}

/// "300s", "5m", "2ms", "1h30m", "1m 30s", "0". A bare number other than 0 is an error
/// (seconds or milliseconds? say which).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    if t == "0" {
        return Ok(Duration::ZERO);
    }
    let mut total = Duration::ZERO;
    let mut rest = t;
    if rest.is_empty() {
        return Err("empty duration".into());
    }
    while !rest.is_empty() {
        rest = rest.trim_start();
        let n_end = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if n_end == 0 {
            return Err(format!("bad duration {s:?}: expected a number"));
        }
        let n: u64 = rest[..n_end]
            .parse()
            .map_err(|_| format!("bad duration {s:?}: number too large"))?;
        rest = rest[n_end..].trim_start();
        let u_end = rest
            .find(|c: char| !c.is_ascii_alphabetic())
            .unwrap_or(rest.len());
        let unit = match &rest[..u_end] {
            "ms" => Duration::from_millis(1),
            "s" | "sec" => Duration::from_secs(1),
            "m" | "min" => Duration::from_secs(60),
            "h" => Duration::from_secs(3600),
            "d" => Duration::from_secs(86_400),
            "" => {
                return Err(format!(
                    "bad duration {s:?}: a unit is needed (ms, s, m, h, d), e.g. \"300s\" or \"5m\""
                ));
            }
            u => {
                return Err(format!(
                    "bad duration {s:?}: unknown unit {u:?} (ms, s, m, h, d)"
                ));
            }
        };
        total = unit
            .checked_mul(u32::try_from(n).map_err(|_| format!("bad duration {s:?}: too large"))?)
            .and_then(|d| total.checked_add(d))
            .ok_or_else(|| format!("bad duration {s:?}: too large"))?;
        rest = rest[u_end..].trim_start();
    }
    Ok(total)
}

/// Parses a scalar inside serde's visitor, so that the YAML parser attaches the value's line and
/// column to the error (an error raised after deserializing would have no location).
struct Scalar<T>(fn(ScalarValue<'_>) -> Result<T, String>, &'static str);

enum ScalarValue<'a> {
    Str(&'a str),
    Int(u64),
    Bool(bool),
}

impl<'de, T> serde::de::Visitor<'de> for Scalar<T> {
    type Value = T;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str(self.1)
    }
    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<T, E> {
        (self.0)(ScalarValue::Str(v)).map_err(E::custom)
    }
    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<T, E> {
        (self.0)(ScalarValue::Int(v)).map_err(E::custom)
    }
    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<T, E> {
        match u64::try_from(v) {
            Ok(u) => self.visit_u64(u),
            Err(_) => Err(E::custom(format!("expected {}, found {v}", self.1))),
        }
    }
    fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<T, E> {
        (self.0)(ScalarValue::Bool(v)).map_err(E::custom)
    }
}

fn de_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    d.deserialize_any(Scalar(
        |v| match v {
            ScalarValue::Str(s) => parse_duration(s),
            ScalarValue::Int(0) => Ok(Duration::ZERO),
            ScalarValue::Int(n) => Err(format!(
                "bad duration {n}: a unit is needed (ms, s, m, h, d), e.g. \"300s\" or \"5m\""
            )),
            ScalarValue::Bool(b) => Err(format!("expected a duration like \"5m\", found {b}")),
        },
        "a duration like \"300s\" or \"5m\"",
    ))
}
fn de_some_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    de_duration(d).map(Some)
}
fn de_benchmark<'de, D: Deserializer<'de>>(d: D) -> Result<Benchmark, D::Error> {
    d.deserialize_any(Scalar(
        |v| {
            let s = match v {
                ScalarValue::Str(s) => s.to_string(),
                ScalarValue::Int(n) => n.to_string(),
                ScalarValue::Bool(b) => b.to_string(),
            };
            <Benchmark as clap::ValueEnum>::from_str(&s, false).map_err(|_| {
                format!("unknown benchmark {s:?}: expected cis-1.6, cis-1.7 or managed")
            })
        },
        "cis-1.6, cis-1.7 or managed",
    ))
}
fn de_some_benchmark<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Benchmark>, D::Error> {
    de_benchmark(d).map(Some)
}
/// Present-but-null is `Some(None)`, absent is `None` (with `#[serde(default)]`).
fn de_nullable<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_text(text: &str, env_node: Option<&str>) -> Result<Settings, SettingsError> {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("config.yaml");
        std::fs::write(&p, text).unwrap();
        let env_node = env_node.map(str::to_string);
        load_with(
            Some(&p),
            &move |k| (k == "NODE_NAME").then(|| env_node.clone()).flatten(),
            &|| Some("host-a".into()),
        )
    }

    #[test]
    fn metrics_settings_are_checked() {
        let o = Overrides {
            metrics_listen: Some("not an address".into()),
            ..Default::default()
        };
        let mut s = Settings::default();
        override_with(&mut s, &o);
        let e = check(&s, Path::new("x")).unwrap_err().to_string();
        assert!(e.contains("metrics.listen"), "{e}");
        let mut s = Settings::default();
        s.metrics.textfile = Some("/var/lib/kubelet-drift/metrics.txt".into());
        let e = check(&s, Path::new("x")).unwrap_err().to_string();
        assert!(e.contains(".prom"), "{e}");
        let o = parse_overlay("metrics:\n  listen: \"127.0.0.1:9761\"\n").unwrap();
        let mut s = Settings::default();
        apply(&mut s, o);
        assert_eq!(s.metrics.listen.as_deref(), Some("127.0.0.1:9761"));
        assert!(check(&s, Path::new("x")).is_ok());
    }

    #[test]
    fn embedded_defaults_are_complete_and_as_documented() {
        let s = Settings::default();
        // The executables the distributions run the kubelet as, in, or under.
        assert_eq!(
            s.kubelet_names,
            crate::kubelet::discovery::default_names(),
            "deploy/config.yaml's kubelet_names and the distributions' process names"
        );
        assert_eq!(s.kubelet_unit, "kubelet.service");
        assert_eq!(s.metrics, MetricsSettings::default());
        assert_eq!(s.rescan_interval, Duration::from_secs(300));
        assert_eq!(s.coalesce, Duration::ZERO);
        assert_eq!(s.outputs.journald, Toggle::Auto);
        assert_eq!(s.outputs.json_out, None);
        assert_eq!(s.outputs.text, Toggle::Auto);
        assert_eq!(s.node_name, None);
        assert_eq!(s.benchmark, Benchmark::Cis16);
        assert!(s.watch_extra.is_empty());
        assert_eq!(s.ring_buffer_bytes.get(), 256 * 1024);
        assert_eq!(s.host_root, PathBuf::from("/"));
        // The embedded file is also a valid user file (the .deb installs it as one).
        let l = load_text(DEFAULT_CONFIG, None).unwrap();
        assert_eq!(l.node_name.as_deref(), Some("host-a"));
    }

    #[test]
    fn good_files() {
        type Check = dyn Fn(&Settings) -> bool;
        let table: &[(&str, &Check)] = &[
            ("", &|s| s.rescan_interval == Duration::from_secs(300)),
            ("# only a comment\n", &|s| {
                s.kubelet_unit == "kubelet.service"
            }),
            ("rescan_interval: 300s\n", &|s| {
                s.rescan_interval == Duration::from_secs(300)
            }),
            ("rescan_interval: 1h30m\n", &|s| {
                s.rescan_interval == Duration::from_secs(5400)
            }),
            ("coalesce: 50ms\n", &|s| {
                s.coalesce == Duration::from_millis(50)
            }),
            ("coalesce: \"0\"\n", &|s| s.coalesce == Duration::ZERO),
            ("kubelet_names: [kubelet, k3s]\n", &|s| {
                s.kubelet_names == ["kubelet", "k3s"]
            }),
            (
                "outputs:\n  json_out: /var/log/kubelet-drift/findings.json\n",
                &|s| {
                    s.outputs.json_out.as_deref() == Some("/var/log/kubelet-drift/findings.json")
                        && s.outputs.journald == Toggle::Auto
                },
            ),
            (
                "outputs: {journald: false, text: true, json_out: \"-\"}\n",
                &|s| {
                    s.outputs.journald == Toggle::Off
                        && s.outputs.text == Toggle::On
                        && s.outputs.json_out.as_deref() == Some("-")
                },
            ),
            ("benchmark: cis-1.7\n", &|s| s.benchmark == Benchmark::Cis17),
            ("benchmark: managed\n", &|s| {
                s.benchmark == Benchmark::Managed
            }),
            ("ring_buffer_bytes: 1MiB\n", &|s| {
                s.ring_buffer_bytes.get() == 1 << 20
            }),
            ("ring_buffer_bytes: 65536\n", &|s| {
                s.ring_buffer_bytes.get() == 65536
            }),
            ("node_name: worker-7\n", &|s| {
                s.node_name.as_deref() == Some("worker-7")
            }),
            ("node_name: null\n", &|s| {
                s.node_name.as_deref() == Some("host-a")
            }),
            ("watch_extra: [/etc/kubernetes/extra]\n", &|s| {
                s.watch_extra.len() == 1
            }),
            ("host_root: /host\n", &|s| s.host_root == Path::new("/host")),
        ];
        for (text, ok) in table {
            let s = load_text(text, None).unwrap_or_else(|e| panic!("{text:?}: {e}"));
            assert!(ok(&s), "{text:?}: {s:?}");
        }
    }

    /// One resolver for `run` and `check`: the first non-blank name, then the hostname, then
    /// "unknown".
    #[test]
    fn node_name_is_the_first_non_blank_then_the_hostname() {
        let host = || Some("host-a".to_string());
        let none = || None;
        let s = |v: &str| Some(v.to_string());
        assert_eq!(node_name_with(&[s("cli"), s("env")], &host), "cli");
        assert_eq!(node_name_with(&[s(" "), None, s("file")], &host), "file");
        assert_eq!(node_name_with(&[s(""), None], &host), "host-a");
        assert_eq!(node_name_with(&[], &none), "unknown");
    }

    #[test]
    fn node_name_env_overrides_file_and_hostname() {
        let s = load_text("node_name: from-file\n", Some("from-env")).unwrap();
        assert_eq!(s.node_name.as_deref(), Some("from-env"));
        let s = load_text("node_name: from-file\n", Some("")).unwrap();
        assert_eq!(s.node_name.as_deref(), Some("from-file"));
    }

    #[test]
    fn bad_files_name_line_and_column() {
        // (file, line, column (0 = any), text the message must contain)
        let table: &[(&str, usize, usize, &str)] = &[
            (
                "kubelet_unit: k.service\nrescan_intreval: 5m\n",
                2,
                1,
                "unknown field `rescan_intreval`",
            ),
            ("rescan_interval: 5\n", 1, 18, "a unit is needed"),
            ("rescan_interval: 5 minutes\n", 1, 18, "unknown unit"),
            ("coalesce: fast\n", 1, 11, "expected a number"),
            (
                "outputs:\n  journald: maybe\n",
                2,
                13,
                "expected true, false or auto",
            ),
            ("outputs:\n  jsonout: x\n", 2, 3, "unknown field `jsonout`"),
            ("benchmark: cis-9\n", 1, 12, "unknown benchmark"),
            ("ring_buffer_bytes: 300000\n", 1, 20, "power of two"),
            ("ring_buffer_bytes: 1024\n", 1, 20, "power of two"),
            ("kubelet_names: kubelet\n", 1, 16, "expected sequence"),
            ("kubelet_unit: [a\n", 0, 0, ""),
            ("\tbad: indent\n", 1, 2, "unknown field `bad`"),
        ];
        for (text, line, col, msg) in table {
            match load_text(text, None) {
                Err(SettingsError::Parse {
                    line: l,
                    column: c,
                    message,
                    ..
                }) => {
                    if *line != 0 {
                        assert_eq!((l, c), (*line, *col), "{text:?}: {message}");
                    }
                    assert!(message.contains(msg), "{text:?}: {message}");
                    assert!(!message.contains(" at line "), "{message}");
                }
                other => panic!("{text:?}: {other:?}"),
            }
        }
        let e = load_text("kubelet_names: []\n", None).unwrap_err();
        assert!(matches!(e, SettingsError::Invalid { .. }), "{e}");
        let e = load_text("rescan_interval: 5\n", None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("config.yaml:1:18: "), "{e}");
        let e = load(Some(Path::new("/nonexistent/kubelet-drift.yaml"))).unwrap_err();
        assert!(matches!(e, SettingsError::Read { .. }));
    }

    /// A FIFO, a device, a directory, a huge file: a clear error at once, never a hang.
    #[test]
    fn settings_file_is_read_safely() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let big = dir.path().join("big.yaml");
        std::fs::write(&big, "#".repeat(5 << 20)).unwrap();
        for (p, want) in [
            (fifo.as_path(), "is a FIFO"),
            (Path::new("/dev/zero"), "character device"),
            (dir.path(), "is a directory"),
            (big.as_path(), "absurdly large"),
        ] {
            let started = std::time::Instant::now();
            let e = load(Some(p)).unwrap_err();
            assert!(matches!(e, SettingsError::Read { .. }), "{e}");
            assert!(e.to_string().contains(want), "{e}");
            assert!(started.elapsed() < std::time::Duration::from_secs(2));
        }
    }

    /// The rescan interval has a floor, from the file and from the command line.
    #[test]
    fn rescan_interval_has_a_floor() {
        let e = load_text("rescan_interval: 0s\n", None).unwrap_err();
        assert!(e.to_string().contains("at least 1s"), "{e}");
        let o = Overrides {
            rescan_interval: Some(Duration::ZERO),
            ..Default::default()
        };
        let e = load_with_overrides(Some(Path::new("/dev/null/x")), &o);
        assert!(e.is_err());
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.yaml");
        std::fs::write(&p, "").unwrap();
        let e = load_with_overrides(Some(&p), &o).unwrap_err().to_string();
        assert!(
            e.contains("the command line") && e.contains("at least 1s"),
            "{e}"
        );
        let ok = Overrides {
            rescan_interval: Some(Duration::from_secs(1)),
            ring_buffer_bytes: Some("1MiB".parse().unwrap()),
            node_name: Some("cli-node".into()),
            ..Default::default()
        };
        let s = load_with_overrides(Some(&p), &ok).unwrap();
        assert_eq!(s.rescan_interval, Duration::from_secs(1));
        assert_eq!(s.ring_buffer_bytes.get(), 1 << 20);
        assert_eq!(s.node_name.as_deref(), Some("cli-node"));
        assert!("3000".parse::<RingSize>().is_err());
        assert!("4096".parse::<RingSize>().is_ok());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("300s"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1m 30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("2ms"), Ok(Duration::from_millis(2)));
        assert!(parse_duration("").is_err());
        assert!(parse_duration("5").is_err());
        assert!(parse_duration("-5s").is_err());
        assert!(parse_duration("99999999999999999999s").is_err());
    }
}

//! The kubelet's command-line flags, parsed the way spf13/pflag parses them for the kubelet.
//!
//! The kubelet (`cmd/kubelet/app/server.go`, `NewKubeletCommand`) disables cobra's parsing and
//! calls `cleanFlagSet.Parse(args)` itself on a pflag set with `WordSepNormalizeFunc` (`_` ->
//! `-`), interspersed arguments allowed, and then refuses any positional argument
//! ("unknown command"). If `--config` or `--config-dir` is given it loads them and parses the
//! same argv again on top (`kubeletConfigFlagPrecedence`), so a flag-level error is fatal
//! either way. pflag's rules (flag.go `parseArgs`/`parseLongArg`/`parseSingleShortArg`):
//! `--name=value`; `--name value` for flags without a no-option default; bool flags (and
//! `--version`) take a value only through `=`; `-x` is a shorthand (cluster); `--` ends flags;
//! `-test.*` shorthands are ignored; an unknown name or shorthand is an error.

pub use super::flagvalues::ValueType;

/// How a flag takes its value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlagKind {
    /// `--flag` alone means true; a value only through `=`, parsed by Go's strconv.ParseBool.
    Bool,
    /// `--flag=value` or `--flag value` (the next argument, whatever it looks like), which
    /// must then parse for the flag's type.
    Value(ValueType),
    /// klog's `--version`: alone means true, `=raw` or a ParseBool value through `=`.
    Version,
}

/// The kubelet's flags (Linux), union of kubelet 1.24 to 1.35, sorted by name.
///
/// Gathered from kubernetes/kubernetes `cmd/kubelet/app/options/options.go`
/// (`KubeletFlags.AddFlags`, `ContainerRuntimeOptions.AddFlags`, `AddKubeletConfigFlags`),
/// `cmd/kubelet/app/options/globalflags*.go` (klog flags before their removal in 1.26, the
/// legacy cloud-provider flags, `--version`, and the cadvisor flags `addCadvisorFlags`
/// re-registers on Linux, e.g. `--containerd`, `--docker-root`, `--housekeeping-interval`), component-base `logs/api/v1` `AddFlags`
/// (`--v`, `--vmodule`, `--log-*`, `--logging-format`) and `server.go` (`--help`/`-h`).
/// Flags removed in a newer version are kept (they are flags there); a name in no version
/// makes every kubelet refuse to start. Windows-only flags are not registered on Linux.
pub static KUBELET_FLAGS: &[(&str, FlagKind)] = &[
    ("add-dir-header", FlagKind::Bool),
    ("address", FlagKind::Value(ValueType::Ip)),
    (
        "allowed-unsafe-sysctls",
        FlagKind::Value(ValueType::StringSlice),
    ),
    ("alsologtostderr", FlagKind::Bool),
    ("anonymous-auth", FlagKind::Bool),
    (
        "application-metrics-count-limit",
        FlagKind::Value(ValueType::Int64),
    ),
    ("authentication-token-webhook", FlagKind::Bool),
    (
        "authentication-token-webhook-cache-ttl",
        FlagKind::Value(ValueType::Duration),
    ),
    ("authorization-mode", FlagKind::Value(ValueType::Str)),
    (
        "authorization-webhook-cache-authorized-ttl",
        FlagKind::Value(ValueType::Duration),
    ),
    (
        "authorization-webhook-cache-unauthorized-ttl",
        FlagKind::Value(ValueType::Duration),
    ),
    (
        "azure-container-registry-config",
        FlagKind::Value(ValueType::Str),
    ),
    ("boot-id-file", FlagKind::Value(ValueType::Str)),
    ("bootstrap-kubeconfig", FlagKind::Value(ValueType::Str)),
    ("cert-dir", FlagKind::Value(ValueType::Str)),
    ("cgroup-driver", FlagKind::Value(ValueType::Str)),
    ("cgroup-root", FlagKind::Value(ValueType::Str)),
    ("cgroups-per-qos", FlagKind::Bool),
    ("client-ca-file", FlagKind::Value(ValueType::Str)),
    ("cloud-config", FlagKind::Value(ValueType::Str)),
    ("cloud-provider", FlagKind::Value(ValueType::Str)),
    (
        "cloud-provider-gce-l7lb-src-cidrs",
        FlagKind::Value(ValueType::Cidrs),
    ),
    (
        "cloud-provider-gce-lb-src-cidrs",
        FlagKind::Value(ValueType::Cidrs),
    ),
    ("cluster-dns", FlagKind::Value(ValueType::StringSlice)),
    ("cluster-domain", FlagKind::Value(ValueType::Str)),
    ("config", FlagKind::Value(ValueType::Str)),
    ("config-dir", FlagKind::Value(ValueType::Str)),
    ("container-hints", FlagKind::Value(ValueType::Str)),
    ("container-log-max-files", FlagKind::Value(ValueType::Int32)),
    ("container-log-max-size", FlagKind::Value(ValueType::Str)),
    (
        "container-log-max-workers",
        FlagKind::Value(ValueType::Int32),
    ),
    (
        "container-log-monitor-interval",
        FlagKind::Value(ValueType::Duration),
    ),
    ("container-runtime", FlagKind::Value(ValueType::Str)),
    (
        "container-runtime-endpoint",
        FlagKind::Value(ValueType::Str),
    ),
    ("containerd", FlagKind::Value(ValueType::Str)),
    ("containerd-namespace", FlagKind::Value(ValueType::Str)),
    ("contention-profiling", FlagKind::Bool),
    ("cpu-cfs-quota", FlagKind::Bool),
    ("cpu-cfs-quota-period", FlagKind::Value(ValueType::Duration)),
    ("cpu-manager-policy", FlagKind::Value(ValueType::Str)),
    (
        "cpu-manager-policy-options",
        FlagKind::Value(ValueType::MapStringStringNoSplit),
    ),
    (
        "cpu-manager-reconcile-period",
        FlagKind::Value(ValueType::Duration),
    ),
    ("docker", FlagKind::Value(ValueType::Str)),
    (
        "docker-env-metadata-whitelist",
        FlagKind::Value(ValueType::Str),
    ),
    ("docker-only", FlagKind::Bool),
    ("docker-root", FlagKind::Value(ValueType::Str)),
    ("docker-tls", FlagKind::Bool),
    ("docker-tls-ca", FlagKind::Value(ValueType::Str)),
    ("docker-tls-cert", FlagKind::Value(ValueType::Str)),
    ("docker-tls-key", FlagKind::Value(ValueType::Str)),
    ("enable-controller-attach-detach", FlagKind::Bool),
    ("enable-debugging-handlers", FlagKind::Bool),
    ("enable-load-reader", FlagKind::Bool),
    ("enable-server", FlagKind::Bool),
    (
        "enforce-node-allocatable",
        FlagKind::Value(ValueType::StringSlice),
    ),
    ("event-burst", FlagKind::Value(ValueType::Int32)),
    ("event-qps", FlagKind::Value(ValueType::Int32)),
    ("event-storage-age-limit", FlagKind::Value(ValueType::Str)),
    ("event-storage-event-limit", FlagKind::Value(ValueType::Str)),
    ("eviction-hard", FlagKind::Value(ValueType::LangleMap)),
    (
        "eviction-max-pod-grace-period",
        FlagKind::Value(ValueType::Int32),
    ),
    (
        "eviction-minimum-reclaim",
        FlagKind::Value(ValueType::MapStringString),
    ),
    (
        "eviction-pressure-transition-period",
        FlagKind::Value(ValueType::Duration),
    ),
    ("eviction-soft", FlagKind::Value(ValueType::LangleMap)),
    (
        "eviction-soft-grace-period",
        FlagKind::Value(ValueType::MapStringString),
    ),
    ("exit-on-lock-contention", FlagKind::Bool),
    ("experimental-allocatable-ignore-eviction", FlagKind::Bool),
    (
        "experimental-check-node-capabilities-before-mount",
        FlagKind::Bool,
    ),
    ("experimental-mounter-path", FlagKind::Value(ValueType::Str)),
    ("fail-swap-on", FlagKind::Bool),
    ("feature-gates", FlagKind::Value(ValueType::FeatureGates)),
    ("file-check-frequency", FlagKind::Value(ValueType::Duration)),
    (
        "global-housekeeping-interval",
        FlagKind::Value(ValueType::Duration),
    ),
    ("hairpin-mode", FlagKind::Value(ValueType::Str)),
    ("healthz-bind-address", FlagKind::Value(ValueType::Ip)),
    ("healthz-port", FlagKind::Value(ValueType::Int32)),
    ("help", FlagKind::Bool),
    ("hostname-override", FlagKind::Value(ValueType::Str)),
    (
        "housekeeping-interval",
        FlagKind::Value(ValueType::Duration),
    ),
    ("http-check-frequency", FlagKind::Value(ValueType::Duration)),
    (
        "image-credential-provider-bin-dir",
        FlagKind::Value(ValueType::Str),
    ),
    (
        "image-credential-provider-config",
        FlagKind::Value(ValueType::Str),
    ),
    ("image-gc-high-threshold", FlagKind::Value(ValueType::Int32)),
    ("image-gc-low-threshold", FlagKind::Value(ValueType::Int32)),
    ("image-service-endpoint", FlagKind::Value(ValueType::Str)),
    ("iptables-drop-bit", FlagKind::Value(ValueType::Int32)),
    ("iptables-masquerade-bit", FlagKind::Value(ValueType::Int32)),
    ("keep-terminated-pod-volumes", FlagKind::Bool),
    ("kernel-memcg-notification", FlagKind::Bool),
    ("kube-api-burst", FlagKind::Value(ValueType::Int32)),
    ("kube-api-content-type", FlagKind::Value(ValueType::Str)),
    ("kube-api-qps", FlagKind::Value(ValueType::Int32)),
    ("kube-reserved", FlagKind::Value(ValueType::MapStringString)),
    ("kube-reserved-cgroup", FlagKind::Value(ValueType::Str)),
    ("kubeconfig", FlagKind::Value(ValueType::Str)),
    ("kubelet-cgroups", FlagKind::Value(ValueType::Str)),
    ("local-storage-capacity-isolation", FlagKind::Bool),
    ("lock-file", FlagKind::Value(ValueType::Str)),
    (
        "log-backtrace-at",
        FlagKind::Value(ValueType::TraceLocation),
    ),
    ("log-cadvisor-usage", FlagKind::Bool),
    ("log-dir", FlagKind::Value(ValueType::Str)),
    ("log-file", FlagKind::Value(ValueType::Str)),
    ("log-file-max-size", FlagKind::Value(ValueType::Uint64)),
    ("log-flush-frequency", FlagKind::Value(ValueType::Duration)),
    (
        "log-json-info-buffer-size",
        FlagKind::Value(ValueType::Quantity),
    ),
    ("log-json-split-stream", FlagKind::Bool),
    (
        "log-text-info-buffer-size",
        FlagKind::Value(ValueType::Quantity),
    ),
    ("log-text-split-stream", FlagKind::Bool),
    ("logging-format", FlagKind::Value(ValueType::Str)),
    ("logtostderr", FlagKind::Bool),
    ("machine-id-file", FlagKind::Value(ValueType::Str)),
    ("make-iptables-util-chains", FlagKind::Bool),
    ("manifest-url", FlagKind::Value(ValueType::Str)),
    (
        "manifest-url-header",
        FlagKind::Value(ValueType::ColonMultimap),
    ),
    ("master-service-namespace", FlagKind::Value(ValueType::Str)),
    ("max-open-files", FlagKind::Value(ValueType::Int64)),
    ("max-pods", FlagKind::Value(ValueType::Int32)),
    ("maximum-dead-containers", FlagKind::Value(ValueType::Int32)),
    (
        "maximum-dead-containers-per-container",
        FlagKind::Value(ValueType::Int32),
    ),
    ("memory-manager-policy", FlagKind::Value(ValueType::Str)),
    (
        "minimum-container-ttl-duration",
        FlagKind::Value(ValueType::Duration),
    ),
    (
        "minimum-image-ttl-duration",
        FlagKind::Value(ValueType::Duration),
    ),
    ("node-ip", FlagKind::Value(ValueType::Str)),
    ("node-labels", FlagKind::Value(ValueType::ConfigurationMap)),
    ("node-status-max-images", FlagKind::Value(ValueType::Int32)),
    (
        "node-status-update-frequency",
        FlagKind::Value(ValueType::Duration),
    ),
    ("one-output", FlagKind::Bool),
    ("oom-score-adj", FlagKind::Value(ValueType::Int32)),
    ("pod-cidr", FlagKind::Value(ValueType::Str)),
    ("pod-infra-container-image", FlagKind::Value(ValueType::Str)),
    ("pod-manifest-path", FlagKind::Value(ValueType::Str)),
    ("pod-max-pids", FlagKind::Value(ValueType::Int64)),
    ("pods-per-core", FlagKind::Value(ValueType::Int32)),
    ("port", FlagKind::Value(ValueType::Int32)),
    ("protect-kernel-defaults", FlagKind::Bool),
    ("provider-id", FlagKind::Value(ValueType::Str)),
    ("qos-reserved", FlagKind::Value(ValueType::MapStringString)),
    ("read-only-port", FlagKind::Value(ValueType::Int32)),
    ("register-node", FlagKind::Bool),
    ("register-schedulable", FlagKind::Bool),
    ("register-with-taints", FlagKind::Value(ValueType::Taints)),
    ("registry-burst", FlagKind::Value(ValueType::Int32)),
    ("registry-qps", FlagKind::Value(ValueType::Int32)),
    ("reserved-cpus", FlagKind::Value(ValueType::Str)),
    (
        "reserved-memory",
        FlagKind::Value(ValueType::ReservedMemory),
    ),
    ("resolv-conf", FlagKind::Value(ValueType::Str)),
    ("root-dir", FlagKind::Value(ValueType::Str)),
    ("rotate-certificates", FlagKind::Bool),
    ("rotate-server-certificates", FlagKind::Bool),
    ("runonce", FlagKind::Bool),
    ("runtime-cgroups", FlagKind::Value(ValueType::Str)),
    (
        "runtime-request-timeout",
        FlagKind::Value(ValueType::Duration),
    ),
    ("seccomp-default", FlagKind::Bool),
    ("serialize-image-pulls", FlagKind::Bool),
    ("skip-headers", FlagKind::Bool),
    ("skip-log-headers", FlagKind::Bool),
    ("stderrthreshold", FlagKind::Value(ValueType::Severity)),
    (
        "storage-driver-buffer-duration",
        FlagKind::Value(ValueType::Duration),
    ),
    ("storage-driver-db", FlagKind::Value(ValueType::Str)),
    ("storage-driver-host", FlagKind::Value(ValueType::Str)),
    ("storage-driver-password", FlagKind::Value(ValueType::Str)),
    ("storage-driver-secure", FlagKind::Bool),
    ("storage-driver-table", FlagKind::Value(ValueType::Str)),
    ("storage-driver-user", FlagKind::Value(ValueType::Str)),
    (
        "streaming-connection-idle-timeout",
        FlagKind::Value(ValueType::Duration),
    ),
    ("sync-frequency", FlagKind::Value(ValueType::Duration)),
    ("system-cgroups", FlagKind::Value(ValueType::Str)),
    (
        "system-reserved",
        FlagKind::Value(ValueType::MapStringString),
    ),
    ("system-reserved-cgroup", FlagKind::Value(ValueType::Str)),
    ("tls-cert-file", FlagKind::Value(ValueType::Str)),
    ("tls-cipher-suites", FlagKind::Value(ValueType::Str)),
    ("tls-min-version", FlagKind::Value(ValueType::Str)),
    ("tls-private-key-file", FlagKind::Value(ValueType::Str)),
    ("topology-manager-policy", FlagKind::Value(ValueType::Str)),
    (
        "topology-manager-policy-options",
        FlagKind::Value(ValueType::MapStringStringNoSplit),
    ),
    ("topology-manager-scope", FlagKind::Value(ValueType::Str)),
    ("v", FlagKind::Value(ValueType::Level)),
    ("version", FlagKind::Version),
    ("vmodule", FlagKind::Value(ValueType::VModule)),
    ("volume-plugin-dir", FlagKind::Value(ValueType::Str)),
    (
        "volume-stats-agg-period",
        FlagKind::Value(ValueType::Duration),
    ),
];

/// The kubelet's only shorthands: `-h` (`--help`, server.go) and `-v` (klog's `--v`).
pub static KUBELET_SHORTHANDS: &[(char, &str)] = &[('h', "help"), ('v', "v")];

pub fn flag_kind(name: &str) -> Option<FlagKind> {
    KUBELET_FLAGS
        .binary_search_by(|(n, _)| (*n).cmp(name))
        .ok()
        .map(|i| KUBELET_FLAGS[i].1)
}

/// Go's strconv.ParseBool.
pub fn parse_go_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// One occurrence of a flag in argv.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlagAt {
    /// Index in argv (argv[0] is the program) of the flag's own argument.
    pub index: usize,
    /// The flag as written; `--flag value` written as two arguments is joined by a space.
    pub text: String,
    /// Its value (`true` for a bare bool flag).
    pub value: String,
}

/// What the kubelet takes from its argv for makeIPTablesUtilChains.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ParsedFlags {
    /// The last `--make-iptables-util-chains`, with its parsed value: the one applied on top
    /// of the files (by the second parse when there are files).
    pub make_iptables_util_chains: Option<(FlagAt, bool)>,
    /// The one the first parse applied: the base the drop-ins merge over when there is a
    /// `--config-dir` but no `--config` file (nothing replaces the flag-built configuration).
    pub before_files: Option<(FlagAt, bool)>,
    /// The last `--config` (its value may be empty: no config file).
    pub config: Option<FlagAt>,
    /// The last `--config-dir` (its value may be empty: no drop-ins).
    pub config_dir: Option<FlagAt>,
    /// `--help`/`-h` or `--version` set: the kubelet prints and exits instead of running.
    pub exits_early: Option<FlagAt>,
}

impl ParsedFlags {
    /// The `--config` path, if a non-empty one is given.
    pub fn config_path(&self) -> Option<&str> {
        self.config
            .as_ref()
            .map(|f| f.value.as_str())
            .filter(|v| !v.is_empty())
    }
    /// The `--config-dir` path, if a non-empty one is given.
    pub fn config_dir_path(&self) -> Option<&str> {
        self.config_dir
            .as_ref()
            .map(|f| f.value.as_str())
            .filter(|v| !v.is_empty())
    }
}

/// A command line the kubelet refuses: the offending argument and why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the kubelet refuses to start: argv[{index}] {text:?}: {reason}")]
pub struct FlagError {
    pub index: usize,
    pub text: String,
    pub reason: String,
}

/// Parses the kubelet's argv (argv[0] is the program) as pflag does.
///
/// With a non-empty `--config` or `--config-dir`, the kubelet parses argv a second time on
/// top of the files (`server.go` `kubeletConfigFlagPrecedence`), on a new flag set where
/// the global flags ([`GLOBAL_FLAGS`]) are `cliflag.NoOp` values registered with `VarP`: no
/// longer booleans, they take the next argument as their value. `--help`/`-h` is not
/// registered there (pflag answers `ErrHelp`). The flag that decides is then the one this
/// second parse applies.
pub fn parse(argv: &[String]) -> Result<ParsedFlags, FlagError> {
    let mut out = parse_pass(argv, false)?;
    out.before_files = out.make_iptables_util_chains.clone();
    if out.config_path().is_some() || out.config_dir_path().is_some() {
        let second = parse_pass(argv, true).map_err(|mut e| {
            e.reason = format!(
                "{} (in the kubelet's second parse of its flags, over the config files)",
                e.reason
            );
            e
        })?;
        out.make_iptables_util_chains = second.make_iptables_util_chains;
    }
    Ok(out)
}

/// The flags `options.AddGlobalFlags` registers (cadvisor's, the credential provider's,
/// `--version`, the GCE CIDR flags, and klog's before 1.26): `cliflag.NoOp` values in the
/// kubelet's second parse.
pub static GLOBAL_FLAGS: &[&str] = &[
    "add-dir-header",
    "alsologtostderr",
    "application-metrics-count-limit",
    "azure-container-registry-config",
    "boot-id-file",
    "cloud-provider-gce-l7lb-src-cidrs",
    "cloud-provider-gce-lb-src-cidrs",
    "container-hints",
    "containerd",
    "containerd-namespace",
    "docker",
    "docker-env-metadata-whitelist",
    "docker-only",
    "docker-root",
    "docker-tls",
    "docker-tls-ca",
    "docker-tls-cert",
    "docker-tls-key",
    "enable-load-reader",
    "event-storage-age-limit",
    "event-storage-event-limit",
    "global-housekeeping-interval",
    "housekeeping-interval",
    "log-backtrace-at",
    "log-cadvisor-usage",
    "log-dir",
    "log-file",
    "log-file-max-size",
    "logtostderr",
    "machine-id-file",
    "one-output",
    "skip-headers",
    "skip-log-headers",
    "stderrthreshold",
    "storage-driver-buffer-duration",
    "storage-driver-db",
    "storage-driver-host",
    "storage-driver-password",
    "storage-driver-secure",
    "storage-driver-table",
    "storage-driver-user",
    "version",
];

/// A flag's kind in the first or the second parse.
fn kind_in(name: &str, second: bool) -> Option<FlagKind> {
    if second && name == "help" {
        return None;
    }
    if second && GLOBAL_FLAGS.binary_search(&name).is_ok() {
        return Some(FlagKind::Value(ValueType::Str));
    }
    flag_kind(name)
}

fn flag_error(index: usize, text: &str, reason: String) -> FlagError {
    FlagError {
        index,
        text: text.to_string(),
        reason,
    }
}

fn parse_pass(argv: &[String], second: bool) -> Result<ParsedFlags, FlagError> {
    let mut out = ParsedFlags::default();
    let mut i = 1;
    let err = flag_error;
    while i < argv.len() {
        let arg = &argv[i];
        // The second parse only reports pflag's errors: the kubelet checks positional
        // arguments after the first.
        if second && (arg == "--") {
            break;
        }
        if second && (!arg.starts_with('-') || arg == "-") {
            i += 1;
            continue;
        }
        if arg == "--" {
            // Everything after `--` is a positional argument.
            if let Some(next) = argv.get(i + 1) {
                return Err(err(
                    i + 1,
                    next,
                    format!(
                        "it follows \"--\", so it is a positional argument, and the kubelet refuses positional arguments (\"unknown command {next}\")"
                    ),
                ));
            }
            break;
        }
        if !arg.starts_with('-') || arg == "-" {
            return Err(err(
                i,
                arg,
                format!(
                    "a positional argument: the kubelet refuses it (\"unknown command {arg}\"); a bool flag never takes the next argument as its value, use --flag=value"
                ),
            ));
        }
        if let Some(body) = arg.strip_prefix("--") {
            i = parse_long(argv, i, body, second, &mut out)?;
        } else {
            i = parse_shorthands(argv, i, second, &mut out)?;
        }
        i += 1;
    }
    Ok(out)
}

/// `argv[i]`, a `--name[=value]` flag (`body` without its dashes); returns the index of the
/// last argument it took (its value can be the next one).
fn parse_long(
    argv: &[String],
    mut i: usize,
    body: &str,
    second: bool,
    out: &mut ParsedFlags,
) -> Result<usize, FlagError> {
    let err = flag_error;
    let arg = &argv[i];
    if body.is_empty() || body.starts_with('-') || body.starts_with('=') {
        return Err(err(i, arg, format!("bad flag syntax: {arg}")));
    }
    let (raw_name, inline) = match body.split_once('=') {
        Some((n, v)) => (n, Some(v)),
        None => (body, None),
    };
    let name = raw_name.replace('_', "-");
    let Some(kind) = kind_in(&name, second) else {
        if name == "help" {
            return Err(err(
                i,
                arg,
                "--help is not a flag of the kubelet's second parse: pflag answers ErrHelp and the kubelet does not run".into(),
            ));
        }
        return Err(err(
            i,
            arg,
            format!("unknown flag: --{name} (no kubelet version 1.24 to 1.35 has it)"),
        ));
    };
    let start = i;
    let (value, text) = match (inline, kind) {
        (Some(v), _) => (v.to_string(), arg.clone()),
        (None, FlagKind::Bool | FlagKind::Version) => ("true".to_string(), arg.clone()),
        (None, FlagKind::Value(_)) => match argv.get(i + 1) {
            Some(v) => {
                i += 1;
                (v.clone(), format!("{arg} {v}"))
            }
            None => {
                return Err(err(i, arg, format!("flag needs an argument: --{name}")));
            }
        },
    };
    apply(out, &name, kind, start, text, value)?;
    Ok(i)
}

/// `argv[i]`, a single dash: a cluster of shorthands; returns the index of the last argument
/// it took (the last shorthand's value can be the next one).
fn parse_shorthands(
    argv: &[String],
    mut i: usize,
    second: bool,
    out: &mut ParsedFlags,
) -> Result<usize, FlagError> {
    let err = flag_error;
    let arg = &argv[i];
    let mut shorthands = &arg[1..];
    let start = i;
    while !shorthands.is_empty() {
        if shorthands.starts_with("test.") {
            // pflag silently ignores go test's -test.* flags.
            break;
        }
        let c = shorthands.chars().next().unwrap_or('?');
        let Some(name) = KUBELET_SHORTHANDS
            .iter()
            .find(|(s, _)| *s == c)
            .map(|(_, n)| *n)
        else {
            return Err(err(
                i,
                arg,
                format!(
                    "unknown shorthand flag: '{c}' in {arg} (a single dash starts a cluster of one-letter flags; the kubelet has only -h and -v)"
                ),
            ));
        };
        let Some(kind) = kind_in(name, second) else {
            return Err(err(
                i,
                arg,
                "-h is not a flag of the kubelet's second parse: pflag answers ErrHelp and the kubelet does not run".into(),
            ));
        };
        let rest = &shorthands[c.len_utf8()..];
        let (value, next_rest, text) = if let Some(v) = rest.strip_prefix('=') {
            (v.to_string(), "", arg.clone())
        } else if !matches!(kind, FlagKind::Value(_)) {
            ("true".to_string(), rest, arg.clone())
        } else if !rest.is_empty() {
            (rest.to_string(), "", arg.clone())
        } else if let Some(v) = argv.get(i + 1) {
            i += 1;
            (v.clone(), "", format!("{arg} {v}"))
        } else {
            return Err(err(
                i,
                arg,
                format!("flag needs an argument: '{c}' in {arg}"),
            ));
        };
        apply(out, name, kind, start, text, value)?;
        shorthands = next_rest;
    }
    Ok(i)
}

fn apply(
    out: &mut ParsedFlags,
    name: &str,
    kind: FlagKind,
    index: usize,
    text: String,
    value: String,
) -> Result<(), FlagError> {
    let bad = |text: &str, value: &str, extra: &str| FlagError {
        index,
        text: text.to_string(),
        reason: format!(
            "invalid argument {value:?} for --{name}: not a Go strconv.ParseBool value (1 t T TRUE true True 0 f F FALSE false False){extra}"
        ),
    };
    let at = FlagAt {
        index,
        text: text.clone(),
        value: value.clone(),
    };
    match kind {
        FlagKind::Bool => {
            let Some(b) = parse_go_bool(&value) else {
                return Err(bad(&text, &value, ""));
            };
            match name {
                "make-iptables-util-chains" => out.make_iptables_util_chains = Some((at, b)),
                "help" if b => out.exits_early = Some(at),
                "help"
                    if out.exits_early.as_ref().is_some_and(|e| {
                        e.text.starts_with("--help") || e.text.starts_with("-h")
                    }) =>
                {
                    out.exits_early = None
                }
                _ => {}
            }
        }
        FlagKind::Version => match value.as_str() {
            "raw" => out.exits_early = Some(at),
            v => match parse_go_bool(v) {
                Some(true) => out.exits_early = Some(at),
                Some(false) => {
                    if out
                        .exits_early
                        .as_ref()
                        .is_some_and(|e| e.text.starts_with("--version"))
                    {
                        out.exits_early = None;
                    }
                }
                None => return Err(bad(&text, &value, " or raw")),
            },
        },
        FlagKind::Value(t) => match t.check(&value) {
            Err(why) => {
                return Err(FlagError {
                    index,
                    text,
                    reason: format!(
                        "invalid argument {value:?} for --{name}: {why} (a non-boolean flag written without = takes the next argument as its value)"
                    ),
                });
            }
            Ok(()) => match name {
                "config" => out.config = Some(at),
                "config-dir" => out.config_dir = Some(at),
                _ => {}
            },
        },
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::type_complexity)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn argv(args: &[&str]) -> Vec<String> {
        std::iter::once("kubelet")
            .chain(args.iter().copied())
            .map(String::from)
            .collect()
    }

    fn mic(args: &[&str]) -> Result<Option<bool>, FlagError> {
        parse(&argv(args)).map(|p| p.make_iptables_util_chains.map(|(_, b)| b))
    }

    #[test]
    fn table_is_sorted_and_unique() {
        assert!(KUBELET_FLAGS.windows(2).all(|w| w[0].0 < w[1].0));
        assert!(GLOBAL_FLAGS.windows(2).all(|w| w[0] < w[1]));
        assert!(
            GLOBAL_FLAGS.iter().all(|g| flag_kind(g).is_some()),
            "globals are flags"
        );
        for (s, n) in KUBELET_SHORTHANDS {
            assert!(flag_kind(n).is_some(), "{s}");
        }
    }

    #[test]
    fn bool_rules() {
        let cases: &[(&[&str], Result<Option<bool>, &str>)] = &[
            (&[], Ok(None)),
            (&["--make-iptables-util-chains"], Ok(Some(true))),
            (&["--make-iptables-util-chains=false"], Ok(Some(false))),
            (&["--make_iptables_util_chains=false"], Ok(Some(false))),
            (&["--make-iptables_util-chains=0"], Ok(Some(false))),
            (&["--make-iptables-util-chains=F"], Ok(Some(false))),
            (&["--make-iptables-util-chains=FALSE"], Ok(Some(false))),
            (&["--make-iptables-util-chains=True"], Ok(Some(true))),
            (&["--make-iptables-util-chains=1"], Ok(Some(true))),
            (&["--make-iptables-util-chains=t"], Ok(Some(true))),
            (&["--make-iptables-util-chains=no"], Err("ParseBool")),
            (&["--make-iptables-util-chains=yes"], Err("ParseBool")),
            (&["--make-iptables-util-chains="], Err("ParseBool")),
            (&["--make-iptables-util-chains=fAlse"], Err("ParseBool")),
            (
                &["--make-iptables-util-chains", "false"],
                Err("unknown command false"),
            ),
            (
                &[
                    "--make-iptables-util-chains=false",
                    "--make-iptables-util-chains",
                ],
                Ok(Some(true)),
            ),
            (
                &[
                    "--make-iptables-util-chains",
                    "--make-iptables-util-chains=false",
                ],
                Ok(Some(false)),
            ),
            (
                &["-make-iptables-util-chains=false"],
                Err("unknown shorthand flag: 'm'"),
            ),
            (
                &["--", "--make-iptables-util-chains=false"],
                Err("positional"),
            ),
            (&["--make-iptables-util-chainz=false"], Err("unknown flag")),
            (&["---make-iptables-util-chains"], Err("bad flag syntax")),
            (&["--=x"], Err("bad flag syntax")),
            (&["make-iptables-util-chains=true"], Err("unknown command")),
            (&["-"], Err("unknown command")),
            // A value flag swallows the next argument even when it looks like a flag.
            (
                &["--hostname-override", "--make-iptables-util-chains=false"],
                Ok(None),
            ),
            // ... and that value must parse for the flag's type: a klog level here.
            (
                &["--v", "--make-iptables-util-chains=false"],
                Err("invalid argument"),
            ),
            (&["--max-pods", "-1"], Ok(None)),
            (&["--max-pods=lots"], Err("int32")),
            (
                &["--sync-frequency", "--make-iptables-util-chains"],
                Err("duration"),
            ),
            (
                &["--feature-gates", "--make-iptables-util-chains=false"],
                Err("feature-gate"),
            ),
            (
                &["-v", "--make-iptables-util-chains=false"],
                Err("invalid argument"),
            ),
            (&["-v=x"], Err("log level")),
            (
                &["-v", "2", "--make-iptables-util-chains=false"],
                Ok(Some(false)),
            ),
            (
                &["-v2", "--make-iptables-util-chains=false"],
                Ok(Some(false)),
            ),
            (&["-hv=3"], Ok(None)),
            (
                &["-test.v", "--make-iptables-util-chains=false"],
                Ok(Some(false)),
            ),
            (&["--node-labels"], Err("flag needs an argument")),
            (&["-v"], Err("flag needs an argument")),
            (&["--version=maybe"], Err("ParseBool")),
            (&["--help=nah"], Err("ParseBool")),
        ];
        for (args, want) in cases {
            let got = mic(args);
            match (want, &got) {
                (Ok(w), Ok(g)) => assert_eq!(w, g, "{args:?}"),
                (Err(msg), Err(e)) => assert!(e.reason.contains(msg), "{args:?}: {}", e.reason),
                _ => panic!("{args:?}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn provenance_and_config_flags() {
        let p = parse(&argv(&[
            "--config",
            "/etc/kubernetes/kubelet.yaml",
            "--make-iptables-util-chains=true",
            "--config=/var/lib/kubelet/config.yaml",
            "--make_iptables_util_chains=false",
            "--config-dir=/etc/kubernetes/kubelet.conf.d",
        ]))
        .unwrap();
        let (at, v) = p.make_iptables_util_chains.clone().unwrap();
        assert_eq!(
            (at.index, at.text.as_str(), v),
            (5, "--make_iptables_util_chains=false", false)
        );
        assert_eq!(p.config_path(), Some("/var/lib/kubelet/config.yaml"));
        assert_eq!(p.config.as_ref().unwrap().index, 4);
        assert_eq!(p.config_dir_path(), Some("/etc/kubernetes/kubelet.conf.d"));
        let p = parse(&argv(&["--config", "/x.yaml"])).unwrap();
        assert_eq!(p.config.unwrap().text, "--config /x.yaml");
        let p = parse(&argv(&["--config=/x.yaml", "--config="])).unwrap();
        assert_eq!(p.config_path(), None);
        assert!(p.config.is_some());
        let e = parse(&argv(&["--v=2", "--make-iptables-util-chains", "false"])).unwrap_err();
        assert_eq!((e.index, e.text.as_str()), (3, "false"));
    }

    #[test]
    fn second_parse_over_the_config_files() {
        // Global flags are NoOp values in the second parse: a cadvisor boolean takes the
        // next argument there, so the flag after it is not applied over the files.
        let p = parse(&argv(&[
            "--config=/c.yaml",
            "--enable-load-reader",
            "--make-iptables-util-chains=true",
        ]))
        .unwrap();
        assert_eq!(p.make_iptables_util_chains, None);
        // Without --config there is no second parse.
        let p = parse(&argv(&[
            "--enable-load-reader",
            "--make-iptables-util-chains=false",
        ]))
        .unwrap();
        assert_eq!(p.make_iptables_util_chains.map(|(_, b)| b), Some(false));
        // At the end of argv it needs an argument.
        assert!(parse(&argv(&["--config-dir=/d", "--docker-only"])).is_err());
        // A global boolean swallowing --config in the second parse leaves its value a
        // positional argument there, which only the first parse refuses.
        let p = parse(&argv(&["--storage-driver-secure", "--config", "/c.yaml"])).unwrap();
        assert_eq!(p.config_path(), Some("/c.yaml"));
        // The first parse's value stays the base when no --config file replaces it.
        let p = parse(&argv(&[
            "--config-dir=/d",
            "--log-cadvisor-usage",
            "--make-iptables-util-chains=0",
        ]))
        .unwrap();
        assert_eq!(p.make_iptables_util_chains, None);
        assert_eq!(p.before_files.map(|(_, b)| b), Some(false));
        assert!(parse(&argv(&["--config=", "--docker-only"])).is_ok());
        // --help=false and -h=false: ErrHelp in the second parse.
        for h in ["--help=false", "-h=false"] {
            let e = parse(&argv(&["--config=/c.yaml", h])).unwrap_err();
            assert!(e.reason.contains("ErrHelp"), "{}", e.reason);
        }
        assert!(parse(&argv(&["--help=false"])).is_ok());
        let p = parse(&argv(&[
            "--config=/c.yaml",
            "--make-iptables-util-chains=false",
            "--v=2",
        ]))
        .unwrap();
        assert_eq!(p.make_iptables_util_chains.map(|(_, b)| b), Some(false));
    }

    #[test]
    fn help_and_version_exit_early() {
        for args in [
            &["--help"][..],
            &["-h"],
            &["--version"],
            &["--version=raw"],
            &["--version=true"],
        ] {
            assert!(
                parse(&argv(args)).unwrap().exits_early.is_some(),
                "{args:?}"
            );
        }
        for args in [
            &["--help=false"][..],
            &["--version=false"],
            &["--version", "--version=false"],
        ] {
            assert!(
                parse(&argv(args)).unwrap().exits_early.is_none(),
                "{args:?}"
            );
        }
        // `--version raw`: --version takes no separate value, so `raw` is positional.
        assert!(parse(&argv(&["--version", "raw"])).is_err());
    }

    fn arb_arg() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("--make-iptables-util-chains".to_string()),
            Just("--make_iptables_util_chains=false".to_string()),
            Just("--config".to_string()),
            Just("--v".to_string()),
            Just("-v".to_string()),
            Just("-h".to_string()),
            Just("--".to_string()),
            Just("-".to_string()),
            Just("false".to_string()),
            "--[a-z_-]{0,30}(=[a-zA-Z0-9]{0,5})?",
            "-[a-z.=é]{0,6}",
            ".{0,12}",
        ]
    }

    proptest! {
        #[test]
        fn never_panics(args in proptest::collection::vec(arb_arg(), 0..8)) {
            let mut v = vec!["kubelet".to_string()];
            v.extend(args);
            let _ = parse(&v);
        }

        /// A non-boolean flag without `=` takes the next argument, whatever it is: a
        /// `--make-iptables-util-chains` it swallows is never applied, and a value that does
        /// not parse for the flag's type makes the kubelet (and us) refuse.
        #[test]
        fn value_flags_swallow_the_next_argument(
            i in 0..KUBELET_FLAGS.len(),
            next in prop_oneof![
                Just("--make-iptables-util-chains=false".to_string()),
                Just("--make-iptables-util-chains".to_string()),
                Just("-v".to_string()),
                "[-a-zA-Z0-9=,.:<_/]{0,12}",
            ],
        ) {
            let (name, kind) = KUBELET_FLAGS[i];
            let FlagKind::Value(t) = kind else { return Ok(()) };
            let r = parse(&argv(&[&format!("--{name}"), &next]));
            match t.check(&next) {
                Ok(()) => {
                    let p = r.unwrap();
                    prop_assert_eq!(p.make_iptables_util_chains, None);
                }
                Err(_) => {
                    let e = r.unwrap_err();
                    prop_assert!(e.reason.contains("invalid argument"), "{}", e.reason);
                }
            }
        }

        /// A value that parses for its type, given either way, leaves the next flag applied.
        #[test]
        fn typed_values_then_false(
            i in 0..KUBELET_FLAGS.len(),
            value in prop_oneof![
                Just(""), Just("0"), Just("10"), Just("-1"), Just("0x10"), Just("10s"),
                Just("1m30s"), Just("a,b"), Just("a=b"), Just("Foo=true"), Just("a<b"),
                Just("a:b"), Just("10.0.0.1"), Just("::1"), Just("10.0.0.0/8"), Just("ERROR"),
                Just("x.go:1"), Just("64Ki"), Just("k=v:NoSchedule"), Just("0:memory=1Gi"),
                Just("yes"),
            ],
            inline in any::<bool>(),
        ) {
            let (name, kind) = KUBELET_FLAGS[i];
            let FlagKind::Value(t) = kind else { return Ok(()) };
            prop_assume!(t.check(value).is_ok());
            let args: Vec<String> = if inline {
                vec![format!("--{name}={value}")]
            } else {
                vec![format!("--{name}"), value.to_string()]
            };
            let mut a: Vec<&str> = args.iter().map(String::as_str).collect();
            a.push("--make-iptables-util-chains=false");
            let p = parse(&argv(&a)).unwrap();
            prop_assert_eq!(p.make_iptables_util_chains.map(|(_, b)| b), Some(false));
        }

        #[test]
        fn appending_false_wins(args in proptest::collection::vec(arb_arg(), 0..8)) {
            let mut v = vec!["kubelet".to_string()];
            v.extend(args);
            if parse(&v).is_ok() {
                // Only when the argv does not end inside a value flag waiting for its value.
                let mut w = v.clone();
                w.push("--make-iptables-util-chains=false".to_string());
                let p = parse(&w);
                prop_assume!(p.is_ok());
                let p = p.unwrap();
                // The appended flag is argv's last element, unless the last arg was a value
                // flag that would swallow it (then v was not valid: "needs an argument").
                prop_assert_eq!(p.make_iptables_util_chains.map(|(_, b)| b), Some(false));
            }
        }
    }
}

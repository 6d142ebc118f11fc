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

use std::fmt;

/// How a flag takes its value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlagKind {
    /// `--flag` alone means true; a value only through `=`, parsed by Go's strconv.ParseBool.
    Bool,
    /// `--flag=value` or `--flag value` (the next argument, whatever it looks like).
    Value,
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
    ("address", FlagKind::Value),
    ("allowed-unsafe-sysctls", FlagKind::Value),
    ("alsologtostderr", FlagKind::Bool),
    ("anonymous-auth", FlagKind::Bool),
    ("application-metrics-count-limit", FlagKind::Value),
    ("authentication-token-webhook", FlagKind::Bool),
    ("authentication-token-webhook-cache-ttl", FlagKind::Value),
    ("authorization-mode", FlagKind::Value),
    (
        "authorization-webhook-cache-authorized-ttl",
        FlagKind::Value,
    ),
    (
        "authorization-webhook-cache-unauthorized-ttl",
        FlagKind::Value,
    ),
    ("azure-container-registry-config", FlagKind::Value),
    ("boot-id-file", FlagKind::Value),
    ("bootstrap-kubeconfig", FlagKind::Value),
    ("cert-dir", FlagKind::Value),
    ("cgroup-driver", FlagKind::Value),
    ("cgroup-root", FlagKind::Value),
    ("cgroups-per-qos", FlagKind::Bool),
    ("client-ca-file", FlagKind::Value),
    ("cloud-config", FlagKind::Value),
    ("cloud-provider", FlagKind::Value),
    ("cloud-provider-gce-l7lb-src-cidrs", FlagKind::Value),
    ("cloud-provider-gce-lb-src-cidrs", FlagKind::Value),
    ("cluster-dns", FlagKind::Value),
    ("cluster-domain", FlagKind::Value),
    ("config", FlagKind::Value),
    ("config-dir", FlagKind::Value),
    ("container-hints", FlagKind::Value),
    ("container-log-max-files", FlagKind::Value),
    ("container-log-max-size", FlagKind::Value),
    ("container-log-max-workers", FlagKind::Value),
    ("container-log-monitor-interval", FlagKind::Value),
    ("container-runtime", FlagKind::Value),
    ("container-runtime-endpoint", FlagKind::Value),
    ("containerd", FlagKind::Value),
    ("containerd-namespace", FlagKind::Value),
    ("contention-profiling", FlagKind::Bool),
    ("cpu-cfs-quota", FlagKind::Bool),
    ("cpu-cfs-quota-period", FlagKind::Value),
    ("cpu-manager-policy", FlagKind::Value),
    ("cpu-manager-policy-options", FlagKind::Value),
    ("cpu-manager-reconcile-period", FlagKind::Value),
    ("docker", FlagKind::Value),
    ("docker-env-metadata-whitelist", FlagKind::Value),
    ("docker-only", FlagKind::Bool),
    ("docker-root", FlagKind::Value),
    ("docker-tls", FlagKind::Bool),
    ("docker-tls-ca", FlagKind::Value),
    ("docker-tls-cert", FlagKind::Value),
    ("docker-tls-key", FlagKind::Value),
    ("enable-controller-attach-detach", FlagKind::Bool),
    ("enable-debugging-handlers", FlagKind::Bool),
    ("enable-load-reader", FlagKind::Bool),
    ("enable-server", FlagKind::Bool),
    ("enforce-node-allocatable", FlagKind::Value),
    ("event-burst", FlagKind::Value),
    ("event-qps", FlagKind::Value),
    ("event-storage-age-limit", FlagKind::Value),
    ("event-storage-event-limit", FlagKind::Value),
    ("eviction-hard", FlagKind::Value),
    ("eviction-max-pod-grace-period", FlagKind::Value),
    ("eviction-minimum-reclaim", FlagKind::Value),
    ("eviction-pressure-transition-period", FlagKind::Value),
    ("eviction-soft", FlagKind::Value),
    ("eviction-soft-grace-period", FlagKind::Value),
    ("exit-on-lock-contention", FlagKind::Bool),
    ("experimental-allocatable-ignore-eviction", FlagKind::Bool),
    (
        "experimental-check-node-capabilities-before-mount",
        FlagKind::Bool,
    ),
    ("experimental-mounter-path", FlagKind::Value),
    ("fail-swap-on", FlagKind::Bool),
    ("feature-gates", FlagKind::Value),
    ("file-check-frequency", FlagKind::Value),
    ("global-housekeeping-interval", FlagKind::Value),
    ("hairpin-mode", FlagKind::Value),
    ("healthz-bind-address", FlagKind::Value),
    ("healthz-port", FlagKind::Value),
    ("help", FlagKind::Bool),
    ("hostname-override", FlagKind::Value),
    ("housekeeping-interval", FlagKind::Value),
    ("http-check-frequency", FlagKind::Value),
    ("image-credential-provider-bin-dir", FlagKind::Value),
    ("image-credential-provider-config", FlagKind::Value),
    ("image-gc-high-threshold", FlagKind::Value),
    ("image-gc-low-threshold", FlagKind::Value),
    ("image-service-endpoint", FlagKind::Value),
    ("iptables-drop-bit", FlagKind::Value),
    ("iptables-masquerade-bit", FlagKind::Value),
    ("keep-terminated-pod-volumes", FlagKind::Bool),
    ("kernel-memcg-notification", FlagKind::Bool),
    ("kube-api-burst", FlagKind::Value),
    ("kube-api-content-type", FlagKind::Value),
    ("kube-api-qps", FlagKind::Value),
    ("kube-reserved", FlagKind::Value),
    ("kube-reserved-cgroup", FlagKind::Value),
    ("kubeconfig", FlagKind::Value),
    ("kubelet-cgroups", FlagKind::Value),
    ("local-storage-capacity-isolation", FlagKind::Bool),
    ("lock-file", FlagKind::Value),
    ("log-backtrace-at", FlagKind::Value),
    ("log-cadvisor-usage", FlagKind::Bool),
    ("log-dir", FlagKind::Value),
    ("log-file", FlagKind::Value),
    ("log-file-max-size", FlagKind::Value),
    ("log-flush-frequency", FlagKind::Value),
    ("log-json-info-buffer-size", FlagKind::Value),
    ("log-json-split-stream", FlagKind::Bool),
    ("log-text-info-buffer-size", FlagKind::Value),
    ("log-text-split-stream", FlagKind::Bool),
    ("logging-format", FlagKind::Value),
    ("logtostderr", FlagKind::Bool),
    ("machine-id-file", FlagKind::Value),
    ("make-iptables-util-chains", FlagKind::Bool),
    ("manifest-url", FlagKind::Value),
    ("manifest-url-header", FlagKind::Value),
    ("master-service-namespace", FlagKind::Value),
    ("max-open-files", FlagKind::Value),
    ("max-pods", FlagKind::Value),
    ("maximum-dead-containers", FlagKind::Value),
    ("maximum-dead-containers-per-container", FlagKind::Value),
    ("memory-manager-policy", FlagKind::Value),
    ("minimum-container-ttl-duration", FlagKind::Value),
    ("minimum-image-ttl-duration", FlagKind::Value),
    ("node-ip", FlagKind::Value),
    ("node-labels", FlagKind::Value),
    ("node-status-max-images", FlagKind::Value),
    ("node-status-update-frequency", FlagKind::Value),
    ("one-output", FlagKind::Bool),
    ("oom-score-adj", FlagKind::Value),
    ("pod-cidr", FlagKind::Value),
    ("pod-infra-container-image", FlagKind::Value),
    ("pod-manifest-path", FlagKind::Value),
    ("pod-max-pids", FlagKind::Value),
    ("pods-per-core", FlagKind::Value),
    ("port", FlagKind::Value),
    ("protect-kernel-defaults", FlagKind::Bool),
    ("provider-id", FlagKind::Value),
    ("qos-reserved", FlagKind::Value),
    ("read-only-port", FlagKind::Value),
    ("register-node", FlagKind::Bool),
    ("register-schedulable", FlagKind::Bool),
    ("register-with-taints", FlagKind::Value),
    ("registry-burst", FlagKind::Value),
    ("registry-qps", FlagKind::Value),
    ("reserved-cpus", FlagKind::Value),
    ("reserved-memory", FlagKind::Value),
    ("resolv-conf", FlagKind::Value),
    ("root-dir", FlagKind::Value),
    ("rotate-certificates", FlagKind::Bool),
    ("rotate-server-certificates", FlagKind::Bool),
    ("runonce", FlagKind::Bool),
    ("runtime-cgroups", FlagKind::Value),
    ("runtime-request-timeout", FlagKind::Value),
    ("seccomp-default", FlagKind::Bool),
    ("serialize-image-pulls", FlagKind::Bool),
    ("skip-headers", FlagKind::Bool),
    ("skip-log-headers", FlagKind::Bool),
    ("stderrthreshold", FlagKind::Value),
    ("storage-driver-buffer-duration", FlagKind::Value),
    ("storage-driver-db", FlagKind::Value),
    ("storage-driver-host", FlagKind::Value),
    ("storage-driver-password", FlagKind::Value),
    ("storage-driver-secure", FlagKind::Bool),
    ("storage-driver-table", FlagKind::Value),
    ("storage-driver-user", FlagKind::Value),
    ("streaming-connection-idle-timeout", FlagKind::Value),
    ("sync-frequency", FlagKind::Value),
    ("system-cgroups", FlagKind::Value),
    ("system-reserved", FlagKind::Value),
    ("system-reserved-cgroup", FlagKind::Value),
    ("tls-cert-file", FlagKind::Value),
    ("tls-cipher-suites", FlagKind::Value),
    ("tls-min-version", FlagKind::Value),
    ("tls-private-key-file", FlagKind::Value),
    ("topology-manager-policy", FlagKind::Value),
    ("topology-manager-policy-options", FlagKind::Value),
    ("topology-manager-scope", FlagKind::Value),
    ("v", FlagKind::Value),
    ("version", FlagKind::Version),
    ("vmodule", FlagKind::Value),
    ("volume-plugin-dir", FlagKind::Value),
    ("volume-stats-agg-period", FlagKind::Value),
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
    /// The last `--make-iptables-util-chains`, with its parsed value.
    pub make_iptables_util_chains: Option<(FlagAt, bool)>,
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
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlagError {
    pub index: usize,
    pub text: String,
    pub reason: String,
}

impl fmt::Display for FlagError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the kubelet refuses to start: argv[{}] {:?}: {}",
            self.index, self.text, self.reason
        )
    }
}

impl std::error::Error for FlagError {}

/// Parses the kubelet's argv (argv[0] is the program) as pflag does.
pub fn parse(argv: &[String]) -> Result<ParsedFlags, FlagError> {
    let mut out = ParsedFlags::default();
    let mut i = 1;
    let err = |index: usize, text: &str, reason: String| FlagError {
        index,
        text: text.to_string(),
        reason,
    };
    while i < argv.len() {
        let arg = &argv[i];
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
            if body.is_empty() || body.starts_with('-') || body.starts_with('=') {
                return Err(err(i, arg, format!("bad flag syntax: {arg}")));
            }
            let (raw_name, inline) = match body.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (body, None),
            };
            let name = raw_name.replace('_', "-");
            let Some(kind) = flag_kind(&name) else {
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
                (None, FlagKind::Value) => match argv.get(i + 1) {
                    Some(v) => {
                        i += 1;
                        (v.clone(), format!("{arg} {v}"))
                    }
                    None => {
                        return Err(err(i, arg, format!("flag needs an argument: --{name}")));
                    }
                },
            };
            apply(&mut out, &name, kind, start, text, value)?;
            i += 1;
            continue;
        }
        // Single dash: a cluster of shorthands.
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
            let kind = flag_kind(name).unwrap_or(FlagKind::Value);
            let rest = &shorthands[c.len_utf8()..];
            let (value, next_rest, text) = if let Some(v) = rest.strip_prefix('=') {
                (v.to_string(), "", arg.clone())
            } else if kind != FlagKind::Value {
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
            apply(&mut out, name, kind, start, text, value)?;
            shorthands = next_rest;
        }
        i += 1;
    }
    Ok(out)
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
        FlagKind::Value => match name {
            "config" => out.config = Some(at),
            "config-dir" => out.config_dir = Some(at),
            _ => {}
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
            (&["--v", "--make-iptables-util-chains=false"], Ok(None)),
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

//! The types of the KubeletConfiguration (kubelet.config.k8s.io/v1beta1) fields, and whether a
//! decoded value fits them: a value of the wrong type anywhere in the file (`maxPods: "110"`,
//! `syncFrequency: 60`, `clusterDNS: 10.96.0.10`, `authentication: true`) makes the JSON
//! decode fail, strict and lenient alike, and the kubelet does not start.
//!
//! From kubernetes/kubernetes `staging/src/k8s.io/kubelet/config/v1beta1/types.go` (union of
//! 1.28 to 1.35; a field a version lacks is an unknown field there, which is ignored) and Go's
//! encoding/json rules: `null` leaves a field alone, except a `metav1.Duration` value, whose
//! `UnmarshalJSON` then parses "" and fails; an integer field takes only an integer literal in
//! range; `sigs.k8s.io/yaml` writes a YAML float with an integral value below 1e21 as an
//! integer. The main file is decoded case-sensitively (sigs.k8s.io/json); the merged drop-ins
//! with encoding/json, which matches field names case-insensitively (every matching key is
//! decoded in turn, so each must fit).

use super::config::go_fold_eq;
use super::flagvalues::{go_parse_duration, go_parse_int, go_parse_uint};
use super::yaml::{Entry, Value};

/// A Go field type, as encoding/json decodes into it.
#[derive(Clone, Copy, Debug)]
pub enum Ty {
    Bool,
    Int32,
    Int64,
    Uint32,
    Float,
    Str,
    /// `metav1.Duration` (not a pointer: `null` fails).
    Duration,
    /// `*metav1.Duration`.
    PtrDuration,
    /// component-base's `TimeOrMetaDuration`: a duration string or an integer (nanoseconds).
    TimeOrDuration,
    /// `resource.Quantity`.
    Quantity,
    /// `metav1.Time` (RFC 3339 string): only the shape is checked.
    Time,
    List(&'static Ty),
    Map(&'static Ty),
    Struct(&'static [(&'static str, Ty)]),
}

use Ty::*;

const DURATION_TTL: &[(&str, Ty)] = &[("enabled", Bool), ("cacheTTL", Duration)];
const AUTHN: &[(&str, Ty)] = &[
    ("x509", Struct(&[("clientCAFile", Str)])),
    ("webhook", Struct(DURATION_TTL)),
    ("anonymous", Struct(&[("enabled", Bool)])),
];
const AUTHZ: &[(&str, Ty)] = &[
    ("mode", Str),
    (
        "webhook",
        Struct(&[
            ("cacheAuthorizedTTL", Duration),
            ("cacheUnauthorizedTTL", Duration),
        ]),
    ),
];
const ROUTING: &[(&str, Ty)] = &[("splitStream", Bool), ("infoBufferSize", Quantity)];
const LOGGING: &[(&str, Ty)] = &[
    ("format", Str),
    ("flushFrequency", TimeOrDuration),
    ("verbosity", Uint32),
    (
        "vmodule",
        List(&Struct(&[("filePattern", Str), ("verbosity", Uint32)])),
    ),
    (
        "options",
        Struct(&[("text", Struct(ROUTING)), ("json", Struct(ROUTING))]),
    ),
];

/// The top-level fields, sorted by name.
pub const KUBELET_CONFIGURATION: &[(&str, Ty)] = &[
    ("address", Str),
    ("allowedUnsafeSysctls", List(&Str)),
    ("authentication", Struct(AUTHN)),
    ("authorization", Struct(AUTHZ)),
    ("cgroupDriver", Str),
    ("cgroupRoot", Str),
    ("cgroupsPerQOS", Bool),
    ("clusterDNS", List(&Str)),
    ("clusterDomain", Str),
    ("configMapAndSecretChangeDetectionStrategy", Str),
    ("containerLogMaxFiles", Int32),
    ("containerLogMaxSize", Str),
    ("containerLogMaxWorkers", Int32),
    ("containerLogMonitorInterval", PtrDuration),
    ("containerRuntimeEndpoint", Str),
    ("contentType", Str),
    ("cpuCFSQuota", Bool),
    ("cpuCFSQuotaPeriod", PtrDuration),
    ("cpuManagerPolicy", Str),
    ("cpuManagerPolicyOptions", Map(&Str)),
    ("cpuManagerReconcilePeriod", Duration),
    (
        "crashLoopBackOff",
        Struct(&[("maxContainerRestartPeriod", PtrDuration)]),
    ),
    ("enableContentionProfiling", Bool),
    ("enableControllerAttachDetach", Bool),
    ("enableDebugFlagsHandler", Bool),
    ("enableDebuggingHandlers", Bool),
    ("enableProfilingHandler", Bool),
    ("enableServer", Bool),
    ("enableSystemLogHandler", Bool),
    ("enableSystemLogQuery", Bool),
    ("enforceNodeAllocatable", List(&Str)),
    ("eventBurst", Int32),
    ("eventRecordQPS", Int32),
    ("evictionHard", Map(&Str)),
    ("evictionMaxPodGracePeriod", Int32),
    ("evictionMinimumReclaim", Map(&Str)),
    ("evictionPressureTransitionPeriod", Duration),
    ("evictionSoft", Map(&Str)),
    ("evictionSoftGracePeriod", Map(&Str)),
    ("failCgroupV1", Bool),
    ("failSwapOn", Bool),
    ("featureGates", Map(&Bool)),
    ("fileCheckFrequency", Duration),
    ("hairpinMode", Str),
    ("healthzBindAddress", Str),
    ("healthzPort", Int32),
    ("httpCheckFrequency", Duration),
    ("imageGCHighThresholdPercent", Int32),
    ("imageGCLowThresholdPercent", Int32),
    ("imageMaximumGCAge", Duration),
    ("imageMinimumGCAge", Duration),
    ("imagePullCredentialsVerificationPolicy", Str),
    ("imageServiceEndpoint", Str),
    ("iptablesDropBit", Int32),
    ("iptablesMasqueradeBit", Int32),
    ("kernelMemcgNotification", Bool),
    ("kubeAPIBurst", Int32),
    ("kubeAPIQPS", Int32),
    ("kubeReserved", Map(&Str)),
    ("kubeReservedCgroup", Str),
    ("kubeletCgroups", Str),
    ("localStorageCapacityIsolation", Bool),
    ("logging", Struct(LOGGING)),
    ("makeIPTablesUtilChains", Bool),
    ("maxOpenFiles", Int64),
    ("maxParallelImagePulls", Int32),
    ("maxPods", Int32),
    ("memoryManagerPolicy", Str),
    ("memoryReservationPolicy", Str),
    ("memorySwap", Struct(&[("swapBehavior", Str)])),
    ("memoryThrottlingFactor", Float),
    ("mergeDefaultEvictionSettings", Bool),
    ("nodeLeaseDurationSeconds", Int32),
    ("nodeStatusMaxImages", Int32),
    ("nodeStatusReportFrequency", Duration),
    ("nodeStatusUpdateFrequency", Duration),
    ("oomScoreAdj", Int32),
    ("podCIDR", Str),
    ("podLogsDir", Str),
    ("podPidsLimit", Int64),
    ("podsPerCore", Int32),
    ("port", Int32),
    ("preloadedImagesVerificationAllowlist", List(&Str)),
    ("protectKernelDefaults", Bool),
    ("providerID", Str),
    ("qosReserved", Map(&Str)),
    ("readOnlyPort", Int32),
    ("registerNode", Bool),
    (
        "registerWithTaints",
        List(&Struct(&[
            ("key", Str),
            ("value", Str),
            ("effect", Str),
            ("timeAdded", Time),
        ])),
    ),
    ("registryBurst", Int32),
    ("registryPullQPS", Int32),
    (
        "reservedMemory",
        List(&Struct(&[("numaNode", Int32), ("limits", Map(&Quantity))])),
    ),
    ("reservedSystemCPUs", Str),
    ("resolvConf", Str),
    ("rotateCertificates", Bool),
    ("runOnce", Bool),
    ("runtimeRequestTimeout", Duration),
    ("seccompDefault", Bool),
    ("serializeImagePulls", Bool),
    ("serverTLSBootstrap", Bool),
    ("showHiddenMetricsForVersion", Str),
    ("shutdownGracePeriod", Duration),
    (
        "shutdownGracePeriodByPodPriority",
        List(&Struct(&[
            ("priority", Int32),
            ("shutdownGracePeriodSeconds", Int64),
        ])),
    ),
    ("shutdownGracePeriodCriticalPods", Duration),
    ("singleProcessOOMKill", Bool),
    ("staticPodPath", Str),
    ("staticPodURL", Str),
    ("staticPodURLHeader", Map(&List(&Str))),
    ("streamingConnectionIdleTimeout", Duration),
    ("syncFrequency", Duration),
    ("systemCgroups", Str),
    ("systemReserved", Map(&Str)),
    ("systemReservedCgroup", Str),
    ("tlsCertFile", Str),
    ("tlsCipherSuites", List(&Str)),
    ("tlsCurvePreferences", List(&Int32)),
    ("tlsMinVersion", Str),
    ("tlsPrivateKeyFile", Str),
    ("topologyManagerPolicy", Str),
    ("topologyManagerPolicyOptions", Map(&Str)),
    ("topologyManagerScope", Str),
    (
        "tracing",
        Struct(&[("endpoint", Str), ("samplingRatePerMillion", Int32)]),
    ),
    ("userNamespaces", Struct(&[("idsPerPod", Int64)])),
    ("volumePluginDir", Str),
    ("volumeStatsAggPeriod", Duration),
];

/// A number as the JSON text the kubelet decodes writes it.
enum Number {
    /// An integer literal.
    Int(i128),
    /// A literal with a fraction or an exponent.
    Float,
}

/// What a value is in the JSON text the kubelet decodes.
enum Kind<'a> {
    Null,
    Bool,
    Str(&'a str),
    Number(Number),
    Seq(&'a [Value]),
    Map(&'a [Entry]),
}

/// go-yaml v2's `resolve` for a plain scalar that may be a number (resolve.go: timestamps,
/// then `ParseInt`/`ParseUint` base 0 with underscores removed, then YAML-style floats),
/// and `json.Marshal`'s way of writing it.
fn yaml_plain_kind(s: &str) -> Kind<'_> {
    let b = s.as_bytes();
    if b.len() > 4 && b[..4].iter().all(u8::is_ascii_digit) && b[4] == b'-' {
        // A timestamp, or a string: a string either way.
        return Kind::Str(s);
    }
    let plain = s.replace('_', "");
    if let Some(i) = go_parse_int(&plain, 64) {
        return Kind::Number(Number::Int(i as i128));
    }
    if let Some(u) = go_parse_uint(&plain, 64) {
        return Kind::Number(Number::Int(u as i128));
    }
    if yaml_style_float(&plain)
        && let Ok(f) = plain.parse::<f64>()
        && f.is_finite()
    {
        // json.Marshal writes an integral float below 1e21 without fraction or exponent.
        return Kind::Number(if f.fract() == 0.0 && f.abs() < 1e21 {
            Number::Int(f as i128)
        } else {
            Number::Float
        });
    }
    Kind::Str(s)
}

/// resolve.go's `yamlStyleFloat`: `^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$`.
fn yaml_style_float(s: &str) -> bool {
    let s = s.strip_prefix(['+', '-']).unwrap_or(s);
    let (mantissa, exp) = match s.find(['e', 'E']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
    let mantissa_ok = match mantissa.split_once('.') {
        Some(("", frac)) => digits(frac),
        Some((int, frac)) => digits(int) && (frac.is_empty() || digits(frac)),
        None => digits(mantissa),
    };
    let exp_ok = exp.is_none_or(|e| digits(e.strip_prefix(['+', '-']).unwrap_or(e)));
    mantissa_ok && exp_ok
}

fn kind(v: &Value) -> Kind<'_> {
    match v {
        Value::Null => Kind::Null,
        Value::Bool(_) => Kind::Bool,
        Value::Str(s) => Kind::Str(s),
        Value::Scalar(s) => yaml_plain_kind(s),
        Value::Num(n) => Kind::Number(if n.contains(['.', 'e', 'E']) || n.contains("inf") {
            Number::Float
        } else {
            n.parse::<i128>().map(Number::Int).unwrap_or(Number::Float)
        }),
        Value::Seq(items) => Kind::Seq(items),
        Value::Map(m) => Kind::Map(m),
    }
}

fn int_fits(k: &Kind, min: i128, max: i128) -> bool {
    matches!(k, Kind::Null) || matches!(k, Kind::Number(Number::Int(i)) if (min..=max).contains(i))
}

/// Whether a value decodes into the type; `fold`: struct field names match
/// case-insensitively (encoding/json) rather than exactly (sigs.k8s.io/json).
fn fits(v: &Value, ty: Ty, fold: bool) -> bool {
    let k = kind(v);
    match ty {
        Bool => matches!(k, Kind::Null | Kind::Bool),
        Int32 => int_fits(&k, i32::MIN as i128, i32::MAX as i128),
        Int64 => int_fits(&k, i64::MIN as i128, i64::MAX as i128),
        Uint32 => int_fits(&k, 0, u32::MAX as i128),
        Float => matches!(k, Kind::Null | Kind::Number(_)),
        Str => matches!(k, Kind::Null | Kind::Str(_)),
        Duration => matches!(k, Kind::Str(s) if go_parse_duration(s).is_some()),
        PtrDuration => matches!(k, Kind::Null) || fits(v, Duration, fold),
        TimeOrDuration => {
            int_fits(&k, i64::MIN as i128, i64::MAX as i128) || fits(v, Duration, fold)
        }
        Quantity => match k {
            Kind::Null | Kind::Number(_) => true,
            Kind::Str(s) => super::flagvalues::ValueType::Quantity.check(s).is_ok(),
            _ => false,
        },
        Time => matches!(k, Kind::Null | Kind::Str(_)),
        List(t) => match k {
            Kind::Null => true,
            Kind::Seq(items) => items.iter().all(|i| fits(i, *t, fold)),
            _ => false,
        },
        Map(t) => match k {
            Kind::Null => true,
            Kind::Map(entries) => entries.iter().all(|e| fits(&e.value, *t, fold)),
            _ => false,
        },
        Struct(fields) => match k {
            Kind::Null => true,
            Kind::Map(entries) => struct_errors(entries, fields, fold).is_none(),
            _ => false,
        },
    }
}

/// The first key whose value does not fit its field.
fn struct_errors<'a>(entries: &'a [Entry], fields: &[(&str, Ty)], fold: bool) -> Option<&'a Entry> {
    entries.iter().find(|e| {
        fields
            .iter()
            .filter(|(name, _)| {
                if fold {
                    go_fold_eq(name, &e.key)
                } else {
                    *name == e.key
                }
            })
            .any(|(_, ty)| !fits(&e.value, *ty, fold))
    })
}

/// The first top-level key whose value does not fit its KubeletConfiguration field.
pub fn type_error(root: &[Entry], fold: bool) -> Option<&Entry> {
    struct_errors(root, KUBELET_CONFIGURATION, fold)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kubelet::yaml::read;

    const HEAD: &str = "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n";

    #[test]
    fn table_is_sorted() {
        assert!(KUBELET_CONFIGURATION.windows(2).all(|w| w[0].0 < w[1].0));
    }

    #[test]
    fn field_types() {
        for (body, ok) in [
            ("maxPods: 110\n", true),
            ("maxPods: \"110\"\n", false),
            ("maxPods: 1e3\n", true),
            ("maxPods: 1.5\n", false),
            ("maxPods: 0x10\n", true),
            ("maxPods: 1_000\n", true),
            ("maxPods: 3000000000\n", false),
            ("maxPods: ~\n", true),
            ("readOnlyPort: 1.5\n", false),
            ("failSwapOn: \"false\"\n", false),
            ("failSwapOn: no\n", true),
            ("syncFrequency: 60\n", false),
            ("syncFrequency: 1m\n", true),
            ("syncFrequency:\n", false),
            ("cpuCFSQuotaPeriod:\n", true),
            ("clusterDNS: 10.96.0.10\n", false),
            ("clusterDNS: [10.96.0.10]\n", true),
            ("authentication: true\n", false),
            ("authentication: {webhook: {cacheTTL: 2m}}\n", true),
            ("authentication: {webhook: {cacheTTL: 2}}\n", false),
            ("address: 0.0.0.0\n", true),
            ("address: 1.5\n", false),
            ("clusterDomain: 2024-01-01\n", true),
            ("evictionHard: {memory.available: 100Mi}\n", true),
            ("evictionHard: {memory.available: 100}\n", false),
            ("featureGates: {Foo: true}\n", true),
            ("featureGates: {Foo: 1}\n", false),
            ("logging: {flushFrequency: 5000000000}\n", true),
            ("logging: {flushFrequency: 5s, verbosity: -1}\n", false),
            ("MaxPods: \"x\"\n", true),
            ("unknownField: [1]\n", true),
        ] {
            let doc = read(&format!("{HEAD}{body}")).unwrap();
            assert_eq!(type_error(&doc.root, false).is_none(), ok, "{body}");
        }
        // Drop-ins: field names match case-insensitively after the merge.
        let doc = read(&format!("{HEAD}MaxPods: \"x\"\n")).unwrap();
        assert!(type_error(&doc.root, true).is_some());
        // JSON: every duplicate is decoded.
        let doc =
            read(r#"{"makeIPTablesUtilChains": 1, "makeIPTablesUtilChains": false}"#).unwrap();
        assert!(type_error(&doc.root, false).is_some());
        let doc = read(r#"{"maxPods": 1.0}"#).unwrap();
        assert!(type_error(&doc.root, false).is_some());
    }
}

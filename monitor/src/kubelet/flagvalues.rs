//! The value types of the kubelet's flags, and whether a value parses for its type: a value
//! pflag cannot `Set` makes the kubelet refuse to start ("invalid argument ... for ...
//! flag"), so `--v --make-iptables-util-chains=false` (pflag gives the second argument to
//! `--v`, a klog level) is a refusal, not a pass.
//!
//! Each check follows the `Set` method the flag is bound with (kubernetes/kubernetes
//! `cmd/kubelet/app/options/options.go`, `options/globalflags*.go`, component-base
//! `cli/flag` and `logs/api/v1`, k8s.io/klog v2, spf13/pflag, Go's `strconv` and `time`).
//! Where kubelet versions differ (klog's `-v` took a signed level before 1.26 and an
//! unsigned one after) or where the exact rule is not reproduced (quantities, reserved
//! memory, taints), only values every version accepts pass, and anything else is an error.

/// How a non-boolean flag's value is parsed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ValueType {
    /// Any string (`StringVar`).
    Str,
    /// `Int32Var`: `strconv.ParseInt(s, 0, 32)`.
    Int32,
    /// `Int64Var` and Go's `flag.Int` (cadvisor): `strconv.ParseInt(s, 0, 64)`.
    Int64,
    /// `Uint64Var`: `strconv.ParseUint(s, 0, 64)`.
    Uint64,
    /// `DurationVar`: `time.ParseDuration`.
    Duration,
    /// `StringSliceVar`: the first record of `encoding/csv`.
    StringSlice,
    /// `cliflag.MapStringString`: `k=v` pairs separated by commas.
    MapStringString,
    /// `cliflag.ConfigurationMap` (`--node-labels`, cmd/kubelet/app/options/options.go): a
    /// comma list in which a key without `=` is a key with an empty value; its `Set` never
    /// fails (OpenShift's units pass `node-role.kubernetes.io/worker` bare).
    ConfigurationMap,
    /// `cliflag.NewMapStringStringNoSplit`: one `k=v` per use.
    MapStringStringNoSplit,
    /// `--feature-gates`: `cliflag.MapStringBool`, gate names as Kubernetes spells them.
    FeatureGates,
    /// `cliflag.LangleSeparatedMapStringString`: `k<v` pairs.
    LangleMap,
    /// `cliflag.ColonSeparatedMultimapStringString`: `k:v` pairs.
    ColonMultimap,
    /// `utilflag.IPVar`: empty, or an IP address (`netutils.ParseIPSloppy`).
    Ip,
    /// The GCE `cidrs` flags: comma-separated CIDRs.
    Cidrs,
    /// klog's `--v` / component-base's `VerbosityLevel`.
    Level,
    /// `--vmodule`: `pattern=N` pairs.
    VModule,
    /// klog's `--stderrthreshold`: a severity name or number.
    Severity,
    /// klog's `--log-backtrace-at`: empty or `file.go:N`.
    TraceLocation,
    /// A `resource.Quantity` (`--log-*-info-buffer-size`).
    Quantity,
    /// `--register-with-taints`: `key=value:Effect` list.
    Taints,
    /// `--reserved-memory`: `N:name=quantity,...`.
    ReservedMemory,
}

/// Why a value does not parse for its type.
pub type Invalid = String;

impl ValueType {
    /// Checks a value as the flag's `Set` would.
    pub fn check(self, v: &str) -> Result<(), Invalid> {
        let ok = match self {
            ValueType::Str => true,
            ValueType::Int32 => go_parse_int(v, 32).is_some(),
            ValueType::Int64 => go_parse_int(v, 64).is_some(),
            ValueType::Uint64 => go_parse_uint(v, 64).is_some(),
            ValueType::Duration => go_parse_duration(v).is_some(),
            ValueType::StringSlice => csv_first_record_ok(v),
            ValueType::MapStringString => pairs(v, '=', |_, _| true),
            ValueType::ConfigurationMap => true,
            ValueType::MapStringStringNoSplit => v.contains('='),
            ValueType::FeatureGates => pairs(v, '=', |k, b| {
                feature_gate_name(k) && crate::kubelet::flags::parse_go_bool(b).is_some()
            }),
            ValueType::LangleMap => pairs(v, '<', |_, _| true),
            ValueType::ColonMultimap => pairs(v, ':', |_, _| true),
            ValueType::Ip => v.is_empty() || ip_sloppy(v),
            ValueType::Cidrs => v.split(',').all(cidr),
            ValueType::Level => level(v),
            ValueType::VModule => v.split(',').filter(|p| !p.is_empty()).all(|p| {
                matches!(p.split('=').collect::<Vec<_>>()[..], [pat, n] if !pat.is_empty() && level(n))
            }),
            ValueType::Severity => {
                matches!(
                    v.to_ascii_uppercase().as_str(),
                    "INFO" | "WARNING" | "ERROR" | "FATAL"
                ) && v.is_ascii()
                    || (v.bytes().all(|b| b.is_ascii_digit() || b == b'-' || b == b'+')
                        && go_parse_int_base10(v, 32).is_some())
            }
            ValueType::TraceLocation => {
                v.is_empty()
                    || matches!(v.split(':').collect::<Vec<_>>()[..],
                        [file, line] if file.contains('.')
                            && go_parse_int_base10(line, 64).is_some_and(|n| n > 0))
            }
            ValueType::Quantity => quantity(v),
            ValueType::Taints => v.split(',').filter(|t| !t.is_empty()).all(taint),
            ValueType::ReservedMemory => reserved_memory(v),
        };
        if ok {
            Ok(())
        } else {
            Err(format!("not a valid {}", self.describe()))
        }
    }

    fn describe(self) -> &'static str {
        match self {
            ValueType::Str => "string",
            ValueType::Int32 => "int32 (Go strconv.ParseInt)",
            ValueType::Int64 => "int64 (Go strconv.ParseInt)",
            ValueType::Uint64 => "uint64 (Go strconv.ParseUint)",
            ValueType::Duration => "duration (Go time.ParseDuration, e.g. 10s, 1m30s)",
            ValueType::StringSlice => "comma-separated list (CSV)",
            ValueType::MapStringString | ValueType::MapStringStringNoSplit => "key=value list",
            ValueType::ConfigurationMap => "key[=value] list",
            ValueType::FeatureGates => "feature-gate list (Name=bool,...)",
            ValueType::LangleMap => "key<value list",
            ValueType::ColonMultimap => "key:value list",
            ValueType::Ip => "IP address",
            ValueType::Cidrs => "list of CIDRs",
            ValueType::Level => "log level (a number from 0)",
            ValueType::VModule => "vmodule list (pattern=N,...)",
            ValueType::Severity => "severity (INFO, WARNING, ERROR, FATAL or a number)",
            ValueType::TraceLocation => "trace location (file.go:N)",
            ValueType::Quantity => "quantity (e.g. 64Ki)",
            ValueType::Taints => "taint list (key=value:Effect,...)",
            ValueType::ReservedMemory => "reserved-memory list (N:memory=1Gi,...)",
        }
    }
}

/// Go's `strconv.ParseUint(s, 0, bits)`, with its base prefixes and underscore rule.
pub fn go_parse_uint(s: &str, bits: u32) -> Option<u64> {
    if s.is_empty() {
        return None;
    }
    let b = s.as_bytes();
    let lower = |c: u8| c | 0x20;
    let (base, digits): (u32, &[u8]) = if b[0] == b'0' {
        match b.get(1).map(|c| lower(*c)) {
            Some(b'b') if b.len() >= 3 => (2, &b[2..]),
            Some(b'o') if b.len() >= 3 => (8, &b[2..]),
            Some(b'x') if b.len() >= 3 => (16, &b[2..]),
            _ => (8, &b[1..]),
        }
    } else {
        (10, b)
    };
    let mut n: u128 = 0;
    let mut underscores = false;
    for &c in digits {
        let d = match c {
            b'_' => {
                underscores = true;
                continue;
            }
            b'0'..=b'9' => (c - b'0') as u32,
            c if lower(c).is_ascii_lowercase() => (lower(c) - b'a') as u32 + 10,
            _ => return None,
        };
        if d >= base {
            return None;
        }
        n = n * base as u128 + d as u128;
        if n > u64::MAX as u128 {
            return None;
        }
    }
    if underscores && !underscore_ok(s) {
        return None;
    }
    let max = if bits == 64 {
        u64::MAX as u128
    } else {
        (1u128 << bits) - 1
    };
    (n <= max).then_some(n as u64)
}

/// Go's `underscoreOK`: underscores only between digits (or after a base prefix).
fn underscore_ok(s: &str) -> bool {
    let s = s.strip_prefix(['+', '-']).unwrap_or(s).as_bytes();
    let mut saw = b'^';
    let mut i = 0;
    let mut hex = false;
    if s.len() >= 2 && s[0] == b'0' && matches!(s[1] | 0x20, b'b' | b'o' | b'x') {
        i = 2;
        saw = b'0';
        hex = s[1] | 0x20 == b'x';
    }
    while i < s.len() {
        let c = s[i];
        if c.is_ascii_digit() || (hex && (b'a'..=b'f').contains(&(c | 0x20))) {
            saw = b'0';
        } else if c == b'_' {
            if saw != b'0' {
                return false;
            }
            saw = b'_';
        } else {
            if saw == b'_' {
                return false;
            }
            saw = b'!';
        }
        i += 1;
    }
    saw != b'_'
}

/// Go's `strconv.ParseInt(s, 0, bits)`.
pub fn go_parse_int(s: &str, bits: u32) -> Option<i64> {
    let (neg, body) = match s.as_bytes().first() {
        Some(b'+') => (false, &s[1..]),
        Some(b'-') => (true, &s[1..]),
        _ => (false, s),
    };
    let u = go_parse_uint(body, 64)? as u128;
    let cutoff = 1u128 << (bits - 1);
    if (!neg && u >= cutoff) || (neg && u > cutoff) {
        return None;
    }
    Some(if neg {
        (u as i128).wrapping_neg() as i64
    } else {
        u as i64
    })
}

/// Go's `strconv.ParseInt(s, 10, bits)` (no prefix, no underscore).
pub fn go_parse_int_base10(s: &str, bits: u32) -> Option<i64> {
    let (neg, body) = match s.as_bytes().first() {
        Some(b'+') => (false, &s[1..]),
        Some(b'-') => (true, &s[1..]),
        _ => (false, s),
    };
    if body.is_empty() || !body.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut n: u128 = 0;
    for c in body.bytes() {
        n = n * 10 + (c - b'0') as u128;
        if n > 1 << 64 {
            return None;
        }
    }
    let cutoff = 1u128 << (bits - 1);
    if (!neg && n >= cutoff) || (neg && n > cutoff) {
        return None;
    }
    Some(if neg {
        (n as i128).wrapping_neg() as i64
    } else {
        n as i64
    })
}

/// Go's `time.ParseDuration`.
pub fn go_parse_duration(s: &str) -> Option<i128> {
    let (neg, mut s) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if s == "0" {
        return Some(0);
    }
    if s.is_empty() {
        return None;
    }
    const LIMIT: u128 = 1 << 63;
    let mut total: u128 = 0;
    while !s.is_empty() {
        let b = s.as_bytes();
        if !(b[0] == b'.' || b[0].is_ascii_digit()) {
            return None;
        }
        let int_len = b.iter().take_while(|c| c.is_ascii_digit()).count();
        let mut v: u128 = 0;
        for &c in &b[..int_len] {
            if v > LIMIT / 10 {
                return None;
            }
            v = v * 10 + (c - b'0') as u128;
            if v > LIMIT {
                return None;
            }
        }
        s = &s[int_len..];
        let (mut frac, mut scale, mut post) = (0f64, 1f64, false);
        if let Some(rest) = s.strip_prefix('.') {
            let n = rest.bytes().take_while(|c| c.is_ascii_digit()).count();
            for c in rest[..n].bytes() {
                if scale < 1e18 {
                    frac = frac * 10.0 + (c - b'0') as f64;
                    scale *= 10.0;
                }
            }
            post = n > 0;
            s = &rest[n..];
        }
        if int_len == 0 && !post {
            return None;
        }
        let unit_len = s
            .char_indices()
            .find(|(_, c)| *c == '.' || c.is_ascii_digit())
            .map(|(i, _)| i)
            .unwrap_or(s.len());
        if unit_len == 0 {
            return None;
        }
        let unit: u128 = match &s[..unit_len] {
            "ns" => 1,
            "us" | "\u{b5}s" | "\u{3bc}s" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return None,
        };
        s = &s[unit_len..];
        if v > LIMIT / unit {
            return None;
        }
        v *= unit;
        if frac > 0.0 {
            v += (frac * (unit as f64 / scale)) as u128;
            if v > LIMIT {
                return None;
            }
        }
        total += v;
        if total > LIMIT {
            return None;
        }
    }
    if !neg && total > LIMIT - 1 {
        return None;
    }
    Some(if neg { -(total as i128) } else { total as i128 })
}

/// pflag's `readAsCSV`: the first record of `encoding/csv` (no lazy quotes) must parse.
fn csv_first_record_ok(v: &str) -> bool {
    if v.is_empty() {
        return true;
    }
    // encoding/csv skips empty lines; with nothing else, Read fails (EOF).
    let mut v = v;
    while let Some(rest) = v.strip_prefix('\n').or_else(|| v.strip_prefix("\r\n")) {
        v = rest;
    }
    if v.is_empty() {
        return false;
    }
    let b = v.as_bytes();
    let mut i = 0;
    loop {
        // One field.
        if b.get(i) == Some(&b'"') {
            i += 1;
            loop {
                match b.get(i) {
                    None => return false,
                    Some(b'"') if b.get(i + 1) == Some(&b'"') => i += 2,
                    Some(b'"') => {
                        i += 1;
                        break;
                    }
                    Some(_) => i += 1,
                }
            }
            match b.get(i) {
                None | Some(b'\n') => return true,
                Some(b'\r') if matches!(b.get(i + 1), None | Some(b'\n')) => return true,
                Some(b',') => i += 1,
                Some(_) => return false,
            }
        } else {
            loop {
                match b.get(i) {
                    None | Some(b'\n') => return true,
                    Some(b',') => {
                        i += 1;
                        break;
                    }
                    Some(b'"') => return false,
                    Some(_) => i += 1,
                }
            }
        }
    }
}

/// Comma-separated `k<sep>v` pairs; empty items are skipped, and (cautiously) an item of
/// white space only is refused.
fn pairs(v: &str, sep: char, ok: impl Fn(&str, &str) -> bool) -> bool {
    v.split(',').filter(|p| !p.is_empty()).all(|p| {
        p.trim()
            .split_once(sep)
            .is_some_and(|(k, val)| ok(k.trim(), val.trim()))
    })
}

/// Kubernetes feature gates are CamelCase names; any other key is an unknown gate, which
/// every kubelet refuses.
fn feature_gate_name(k: &str) -> bool {
    k.starts_with(|c: char| c.is_ascii_uppercase()) && k.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// `netutils.ParseIPSloppy`: IPv4 (leading zeros allowed) or IPv6.
fn ip_sloppy(v: &str) -> bool {
    ipv4_sloppy(v) || (v.contains(':') && v.parse::<std::net::Ipv6Addr>().is_ok())
}

fn ipv4_sloppy(v: &str) -> bool {
    let parts: Vec<&str> = v.split('.').collect();
    parts.len() == 4
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.len() <= 3
                && p.bytes().all(|b| b.is_ascii_digit())
                && p.parse::<u16>().is_ok_and(|n| n <= 255)
        })
}

fn cidr(c: &str) -> bool {
    let Some((ip, len)) = c.split_once('/') else {
        return false;
    };
    let max = if ip.contains(':') { 128 } else { 32 };
    let strict_v4 = ip.parse::<std::net::Ipv4Addr>().is_ok();
    let v6 = ip.contains(':') && ip.parse::<std::net::Ipv6Addr>().is_ok();
    (strict_v4 || v6)
        && !len.is_empty()
        && len.len() <= 3
        && len.bytes().all(|b| b.is_ascii_digit())
        && len.parse::<u32>().is_ok_and(|n| n <= max)
}

/// A level every kubelet accepts: decimal digits, at most `i32::MAX` (klog before 1.26
/// parsed an int32, component-base after a uint32).
fn level(v: &str) -> bool {
    !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) && go_parse_int_base10(v, 32).is_some()
}

/// A plain `resource.Quantity`: a decimal number and an optional suffix.
fn quantity(v: &str) -> bool {
    let body = v.strip_prefix(['+', '-']).unwrap_or(v);
    let num_len = body
        .bytes()
        .take_while(|b| b.is_ascii_digit() || *b == b'.')
        .count();
    let (num, suffix) = body.split_at(num_len);
    let dots = num.bytes().filter(|b| *b == b'.').count();
    let num_ok = !num.is_empty() && num != "." && dots <= 1 && num.len() <= 30;
    let suffix_ok = matches!(
        suffix,
        "" | "Ki"
            | "Mi"
            | "Gi"
            | "Ti"
            | "Pi"
            | "Ei"
            | "n"
            | "u"
            | "m"
            | "k"
            | "M"
            | "G"
            | "T"
            | "P"
            | "E"
    );
    num_ok && suffix_ok
}

/// A DNS-1123 label-like name part: `[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?`, at most 63.
fn name_part(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && s.as_bytes()[0].is_ascii_alphanumeric()
        && s.as_bytes()[s.len() - 1].is_ascii_alphanumeric()
}

/// A qualified name (`prefix/name` or `name`), as taint keys are validated.
fn qualified_name(s: &str) -> bool {
    match s.split_once('/') {
        Some((prefix, name)) => {
            !prefix.is_empty()
                && prefix.len() <= 253
                && prefix.split('.').all(|l| {
                    !l.is_empty()
                        && l.len() <= 63
                        && l.bytes()
                            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                        && !l.starts_with('-')
                        && !l.ends_with('-')
                })
                && name_part(name)
        }
        None => name_part(s),
    }
}

fn taint(t: &str) -> bool {
    let Some((kv, effect)) = t.rsplit_once(':') else {
        return false;
    };
    if !matches!(effect, "NoSchedule" | "PreferNoSchedule" | "NoExecute") {
        return false;
    }
    match kv.split_once('=') {
        Some((k, v)) => qualified_name(k) && (v.is_empty() || name_part(v)),
        None => qualified_name(kv),
    }
}

fn reserved_memory(v: &str) -> bool {
    let Some((numa, rest)) = v.split_once(':') else {
        return false;
    };
    !numa.is_empty()
        && numa.len() <= 9
        && numa.bytes().all(|b| b.is_ascii_digit())
        && rest.split(',').all(|item| {
            item.split_once('=').is_some_and(|(name, q)| {
                let name_ok =
                    name == "memory" || name.strip_prefix("hugepages-").is_some_and(quantity);
                name_ok && quantity(q) && !q.starts_with(['-', '+'])
            })
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_numbers() {
        for (s, bits, want) in [
            ("0", 32, Some(0)),
            ("017", 32, Some(15)),
            ("0x1F", 32, Some(31)),
            ("0o17", 32, Some(15)),
            ("0b101", 32, Some(5)),
            ("1_000", 32, Some(1000)),
            ("-2147483648", 32, Some(-2147483648)),
            ("2147483648", 32, None),
            ("+5", 32, Some(5)),
            ("", 32, None),
            ("0x", 32, None),
            ("0x_1", 32, Some(1)),
            ("_1", 32, None),
            ("1__0", 32, None),
            ("1_", 32, None),
            ("08", 32, None),
            ("--make-iptables-util-chains=false", 32, None),
            ("9223372036854775807", 64, Some(i64::MAX)),
            ("-9223372036854775808", 64, Some(i64::MIN)),
            ("9223372036854775808", 64, None),
        ] {
            assert_eq!(go_parse_int(s, bits), want, "{s}");
        }
        assert_eq!(go_parse_uint("18446744073709551615", 64), Some(u64::MAX));
        assert_eq!(go_parse_uint("-1", 64), None);
        assert_eq!(go_parse_int_base10("007", 32), Some(7));
        assert_eq!(go_parse_int_base10("0x7", 32), None);
        assert_eq!(go_parse_int_base10("-3", 32), Some(-3));
    }

    #[test]
    fn go_durations() {
        for (s, ok) in [
            ("0", true),
            ("10s", true),
            ("1m30s", true),
            ("1.5h", true),
            (".5s", true),
            ("5.s", true),
            ("-1s", true),
            ("+2ms", true),
            ("3\u{b5}s", true),
            ("1", false),
            ("", false),
            ("s", false),
            (".s", false),
            ("1d", false),
            ("1s!", false),
            ("2562047h", true),
            ("2562048h", false),
            ("--make-iptables-util-chains=false", false),
        ] {
            assert_eq!(go_parse_duration(s).is_some(), ok, "{s}");
        }
    }

    #[test]
    fn value_types() {
        use ValueType::*;
        for (t, v, ok) in [
            (Level, "2", true),
            (Level, "--make-iptables-util-chains=false", false),
            (Level, "-1", false),
            (Level, "", false),
            (StringSlice, "a,b", true),
            (StringSlice, "", true),
            (StringSlice, "\"a,b\",c", true),
            (StringSlice, "a\"b", false),
            (StringSlice, "\"a\"b", false),
            (StringSlice, "\"a", false),
            (StringSlice, "a\n\"", true),
            (MapStringString, "cpu=1,memory=1Gi", true),
            (MapStringString, "cpu", false),
            (MapStringString, "", true),
            (FeatureGates, "Foo=true,BarBaz=false", true),
            (FeatureGates, "--make-iptables-util-chains=false", false),
            (FeatureGates, "Foo=yes", false),
            (LangleMap, "memory.available<100Mi", true),
            (LangleMap, "memory.available=100Mi", false),
            (ColonMultimap, "a:b,c:d", true),
            (Ip, "0.0.0.0", true),
            (Ip, "010.1.1.1", true),
            (Ip, "::", true),
            (Ip, "", true),
            (Ip, "localhost", false),
            (Cidrs, "10.0.0.0/8,fd00::/8", true),
            (Cidrs, "10.0.0.0", false),
            (VModule, "gc*=3,x=1", true),
            (VModule, "gc*", false),
            (Severity, "error", true),
            (Severity, "2", true),
            (Severity, "loud", false),
            (TraceLocation, "main.go:10", true),
            (TraceLocation, "main:10", false),
            (Quantity, "64Ki", true),
            (Quantity, "lots", false),
            (Taints, "a=b:NoSchedule,example.com/c:NoExecute", true),
            (Taints, "a=b", false),
            (ReservedMemory, "0:memory=1Gi,hugepages-1Mi=2Gi", true),
            (ReservedMemory, "memory=1Gi", false),
        ] {
            assert_eq!(t.check(v).is_ok(), ok, "{t:?} {v:?}");
        }
    }
}

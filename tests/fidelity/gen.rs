//! The case generator: a command line, a `--config` file and `--config-dir` drop-ins built from
//! YAML, JSON and pflag constructs combined at random. Every construct a case uses is named in
//! its `tags`, so disagreements can be counted by construct.

use std::collections::BTreeSet;

pub const CONFIG: &str = "/etc/kubernetes/kubelet.yaml";
pub const DROPIN_DIR: &str = "/etc/kubernetes/kubelet.conf.d";
/// A config file that an earlier, overridden `--config` names.
pub const DECOY: &str = "/etc/kubernetes/decoy.yaml";
pub const FIELD: &str = "makeIPTablesUtilChains";
const API: &str = "kubelet.config.k8s.io/v1beta1";
const KIND: &str = "KubeletConfiguration";

/// SplitMix64: small, fast, and the same sequence everywhere for a seed.
#[derive(Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }
    /// True with probability `percent`/100.
    pub fn pct(&mut self, percent: u64) -> bool {
        self.next_u64() % 100 < percent
    }
    pub fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len())]
    }
    pub fn shuffle<T>(&mut self, xs: &mut [T]) {
        for i in (1..xs.len()).rev() {
            let j = self.below(i + 1);
            xs.swap(i, j);
        }
    }
}

/// The per-case seed: cases are independent, so one can be replayed alone.
pub fn case_seed(seed: u64, index: usize) -> u64 {
    let mut r = Rng::new(seed ^ (index as u64).wrapping_mul(0xD6E8_FEB8_6659_FD93));
    r.next_u64()
}

#[derive(Clone, Debug, Default)]
pub struct Case {
    /// (absolute path inside the root, bytes)
    pub files: Vec<(String, Vec<u8>)>,
    /// The kubelet's arguments (without argv[0]).
    pub args: Vec<String>,
    pub tags: BTreeSet<&'static str>,
}

impl Case {
    pub fn size(&self) -> usize {
        self.files
            .iter()
            .map(|(p, b)| p.len() + b.len())
            .sum::<usize>()
            + self.args.iter().map(|a| a.len() + 1).sum::<usize>()
    }
}

/// Configuration files real tools wrote (from `shared/corpus`): realistic documents the
/// generator edits, so that what real tools emit is measured too.
pub struct Corpus {
    pub yaml: Vec<Vec<u8>>,
    pub json: Vec<Vec<u8>>,
}

pub fn case(seed: u64, corpus: &Corpus) -> Case {
    let mut rng = Rng::new(seed);
    let mut c = Case::default();
    if rng.pct(15) {
        return real_case(&mut rng, c, corpus);
    }
    let config = if rng.pct(85) {
        if rng.pct(3) {
            c.tags.insert("file:config-missing");
        } else {
            let body = config_file(&mut rng, &mut c.tags, false);
            c.files.push((CONFIG.to_string(), body));
        }
        Some(if rng.pct(8) {
            c.tags.insert("path:relative");
            CONFIG.trim_start_matches('/').to_string()
        } else {
            CONFIG.to_string()
        })
    } else {
        None
    };
    let dir = if rng.pct(35) {
        dropins(&mut rng, &mut c);
        Some(DROPIN_DIR.to_string())
    } else {
        None
    };
    c.args = flags(&mut rng, &mut c.tags, config.as_deref(), dir.as_deref());
    if c.tags.contains("flag:config-repeated") {
        let body = format!("apiVersion: {API}\nkind: {KIND}\n{FIELD}: false\n");
        c.files.push((DECOY.to_string(), body.into_bytes()));
    }
    c
}

/// A real tool's file with the field set (or not) the way a person or a template would, as
/// the config file or as a drop-in, with an ordinary command line.
fn real_case(rng: &mut Rng, mut c: Case, corpus: &Corpus) -> Case {
    let json = rng.pct(35) && !corpus.json.is_empty();
    let docs = if json { &corpus.json } else { &corpus.yaml };
    let mut doc = rng.pick(docs).clone();
    let v = *rng.pick(&["true", "false", "True", "False", "off", "null"]);
    let set = rng.pct(70);
    if json {
        c.tags.insert("real:json");
        if set {
            let v = if v == "null" || v == "true" || v == "false" {
                v
            } else {
                "false"
            };
            let at = doc.iter().position(|b| *b == b'{').unwrap_or(0);
            let member = format!("\n  \"{FIELD}\": {v},");
            doc.splice(at + 1..at + 1, member.bytes());
        }
    } else {
        c.tags.insert("real:yaml");
        if set {
            if !doc.ends_with(b"\n") {
                doc.push(b'\n');
            }
            doc.extend_from_slice(format!("{FIELD}: {v}\n").as_bytes());
        }
    }
    let as_dropin = rng.pct(30);
    let mut args = Vec::new();
    if as_dropin {
        c.tags.insert("real:as-dropin");
        c.files.push((
            CONFIG.to_string(),
            format!("apiVersion: {API}\nkind: {KIND}\n").into_bytes(),
        ));
        c.files.push((format!("{DROPIN_DIR}/10-real.conf"), doc));
        args.push(format!("--config={CONFIG}"));
        args.push(format!("--config-dir={DROPIN_DIR}"));
    } else {
        c.files.push((CONFIG.to_string(), doc));
        args.push(format!("--config={CONFIG}"));
    }
    for a in [
        "--container-runtime-endpoint=unix:///run/containerd/containerd.sock",
        "--kubeconfig=/etc/kubernetes/kubelet.conf",
        "--v=2",
        "--node-ip=10.0.0.4",
        "--hostname-override=node-1",
    ] {
        if rng.pct(30) {
            args.push(a.to_string());
        }
    }
    if rng.pct(20) {
        args.push(format!(
            "--make-iptables-util-chains={}",
            rng.pick(&["true", "false"])
        ));
    }
    c.args = args;
    c
}

fn dropins(rng: &mut Rng, c: &mut Case) {
    const NAMES: &[&str] = &[
        "10-base.conf",
        "20-node.conf",
        "sub/30-nested.conf",
        "90-last.conf",
        ".hidden.conf",
        "50-ignored.conf.bak",
        "60-ignored.yaml",
    ];
    let n = rng.below(4);
    let mut used = BTreeSet::new();
    for _ in 0..n {
        let name = *rng.pick(NAMES);
        if !used.insert(name) {
            continue;
        }
        if !name.ends_with(".conf") {
            c.tags.insert("dropin:not-conf");
        }
        if name.contains('/') {
            c.tags.insert("dropin:subdir");
        }
        let mut tags = BTreeSet::new();
        let body = config_file(rng, &mut tags, true);
        c.tags
            .extend(tags.iter().map(|t| dropin_tag(t)).collect::<Vec<_>>());
        c.files.push((format!("{DROPIN_DIR}/{name}"), body));
    }
    if used.is_empty() {
        c.tags.insert("dropin:empty-dir");
        // An empty directory still has to exist: a placeholder the kubelet skips.
        c.files.push((
            format!("{DROPIN_DIR}/README.txt"),
            b"not a drop-in\n".to_vec(),
        ));
    }
}

/// The same construct seen in a drop-in: a tag of its own ("in-dropin:...").
fn dropin_tag(t: &'static str) -> &'static str {
    // Tags are a closed set of literals: leak the few combined names once.
    use std::sync::{Mutex, OnceLock};
    static NAMES: OnceLock<Mutex<std::collections::BTreeMap<&'static str, &'static str>>> =
        OnceLock::new();
    let m = NAMES.get_or_init(Default::default);
    let mut m = m.lock().unwrap();
    m.entry(t)
        .or_insert_with(|| Box::leak(format!("in-dropin/{t}").into_boxed_str()))
}

// ---------------------------------------------------------------- files

fn config_file(rng: &mut Rng, tags: &mut BTreeSet<&'static str>, dropin: bool) -> Vec<u8> {
    if rng.pct(12) {
        return json_file(rng, tags, dropin);
    }
    if rng.pct(2) {
        tags.insert("yaml:flow-document");
        let v = value(rng, tags);
        let lead = *rng.pick(&["", "# flow\n", "--- "]);
        return format!("{lead}{{apiVersion: {API}, kind: {KIND}, {FIELD}: {v}}}\n").into_bytes();
    }
    yaml_file(rng, tags, dropin)
}

/// A YAML document as lines; the line break style is chosen when they are joined.
fn yaml_file(rng: &mut Rng, tags: &mut BTreeSet<&'static str>, dropin: bool) -> Vec<u8> {
    let mut head: Vec<String> = Vec::new();
    if rng.pct(3) {
        tags.insert("yaml:directive");
        head.push("%YAML 1.1".into());
        head.push("---".into());
    } else if rng.pct(2) {
        tags.insert("yaml:tag-directive");
        head.push("%TAG !t! tag:yaml.org,2002:".into());
        head.push("---".into());
    } else if rng.pct(10) {
        tags.insert("yaml:document-start");
        head.push(rng.pick(&["---", "--- # start"]).to_string());
    }
    let mut entries: Vec<Vec<String>> = vec![header(rng, tags)];
    let targets = *rng.pick(&[0, 1, 1, 1, 1, 1, 1, 2]);
    if targets == 2 {
        tags.insert("yaml:duplicate-key");
    }
    for _ in 0..targets {
        entries.push(target_entry(rng, tags, dropin));
    }
    for _ in 0..rng.below(3) {
        entries.push(other_field(rng, tags));
    }
    if rng.pct(9) {
        entries.extend(merge_entries(rng, tags));
    }
    if rng.pct(5) {
        entries.push(alias_entry(rng, tags));
    }
    if rng.pct(3) {
        tags.insert("yaml:nested");
        let v = value(rng, tags);
        entries.push(vec!["authentication:".into(), format!("  {FIELD}: {v}")]);
    }
    if rng.pct(2) {
        entries.push(alias_bomb(rng, tags));
    }
    if rng.pct(6) {
        tags.insert("yaml:unicode-break-in-comment");
        let br = *rng.pick(&["\u{85}", "\u{2028}", "\u{2029}"]);
        let v = value(rng, tags);
        let mut e = vec![format!(
            "clusterDomain: cluster.local # note{br}{FIELD}: {v}"
        )];
        if rng.pct(30) {
            e = vec![format!("# comment{br}{FIELD}: {v}")];
        }
        entries.push(e);
    }
    if rng.pct(3) {
        tags.insert("yaml:unicode-break-in-scalar");
        let br = *rng.pick(&["\u{85}", "\u{2028}", "\u{2029}"]);
        entries.push(vec![format!("clusterDomain: \"a{br}b\"")]);
    }
    if rng.pct(15) {
        entries.push(vec![
            rng.pick(&["# a comment", "", "#", "   # indented comment"])
                .to_string(),
        ]);
    }
    // The header is usually first, as tools write it; order matters only for duplicates
    // and merges, which the shuffle varies.
    let first_header = rng.pct(80);
    if first_header {
        let h = entries.remove(0);
        rng.shuffle(&mut entries);
        entries.insert(0, h);
    } else {
        rng.shuffle(&mut entries);
    }
    let mut lines = head;
    lines.extend(entries.into_iter().flatten());
    if rng.pct(4) {
        tags.insert("yaml:second-document");
        let v = value(rng, tags);
        lines.push(rng.pick(&["---", "..."]).to_string());
        if lines.last().is_some_and(|l| l == "...") {
            lines.push("---".into());
        }
        lines.push(format!("{FIELD}: {v}"));
    }
    if rng.pct(3)
        && !lines
            .iter()
            .any(|l| l.starts_with('%') || l.starts_with("---"))
    {
        // The whole document indented alike is still one top-level mapping.
        tags.insert("yaml:indented-document");
        for l in lines.iter_mut() {
            l.insert_str(0, "  ");
        }
    }
    if rng.pct(2) {
        tags.insert("yaml:non-ascii-value");
        lines.push("clusterDomain: \"clüster.lоcal\"".into());
    }
    if rng.pct(3) {
        tags.insert("yaml:tab");
        let i = rng.below(lines.len());
        lines[i] = lines[i].replacen(": ", ":\t", 1);
    }
    let nl = match rng.below(100) {
        0..=79 => "\n",
        80..=91 => {
            tags.insert("yaml:crlf");
            "\r\n"
        }
        92..=96 => {
            tags.insert("yaml:cr");
            "\r"
        }
        _ => {
            tags.insert("yaml:nel-line-break");
            "\u{85}"
        }
    };
    let mut text = lines.join(nl);
    if rng.pct(90) {
        text.push_str(nl);
    }
    let mut out = Vec::new();
    if rng.pct(4) {
        tags.insert("yaml:bom");
        out.extend_from_slice("\u{feff}".as_bytes());
    }
    out.extend_from_slice(text.as_bytes());
    out
}

fn header(rng: &mut Rng, tags: &mut BTreeSet<&'static str>) -> Vec<String> {
    let mut lines = Vec::new();
    let api = match rng.below(100) {
        0..=2 => {
            tags.insert("header:no-apiversion");
            None
        }
        3..=5 => {
            tags.insert("header:quoted");
            Some(format!("apiVersion: \"{API}\""))
        }
        6..=7 => {
            tags.insert("header:key-case");
            Some(format!("APIVersion: {API}"))
        }
        8 => {
            tags.insert("header:wrong-version");
            Some("apiVersion: kubelet.config.k8s.io/v1".to_string())
        }
        _ => Some(format!("apiVersion: {API}")),
    };
    let kind = match rng.below(100) {
        0..=2 => {
            tags.insert("header:no-kind");
            None
        }
        3..=4 => {
            tags.insert("header:key-case");
            Some(format!("Kind: {KIND}"))
        }
        5 => {
            tags.insert("header:unicode-fold");
            Some(format!("\u{212a}ind: {KIND}"))
        }
        6 => {
            tags.insert("header:wrong-kind");
            Some("kind: KubeletConfig".to_string())
        }
        _ => Some(format!("kind: {KIND}")),
    };
    lines.extend(api);
    lines.extend(kind);
    if lines.is_empty() {
        lines.push("# no header".into());
    }
    lines
}

/// The field as a key: mostly as tools write it, sometimes as an attacker would.
fn key(rng: &mut Rng, tags: &mut BTreeSet<&'static str>, dropin: bool) -> String {
    let case_pct = if dropin { 14 } else { 6 };
    let r = rng.below(100) as u64;
    let mut t = |tag| {
        tags.insert(tag);
    };
    if r < case_pct {
        t("key:case");
        return rng
            .pick(&[
                "MakeIPTablesUtilChains",
                "makeiptablesutilchains",
                "MAKEIPTABLESUTILCHAINS",
                "makeIpTablesUtilChains",
                "makeIPTablesUtilchains",
            ])
            .to_string();
    }
    match r - case_pct {
        0..=7 => {
            t("key:double-quoted");
            format!("\"{FIELD}\"")
        }
        8..=12 => {
            t("key:single-quoted");
            format!("'{FIELD}'")
        }
        13..=14 => {
            t("key:unicode-fold");
            rng.pick(&["makeIPTableſUtilChainſ", "ma\u{212a}eIPTablesUtilChains"])
                .to_string()
        }
        15..=17 => {
            t("key:escape");
            rng.pick(&[
                "\"make\\x49PTablesUtilChains\"",
                "\"make\\u0049PTablesUtilChains\"",
                "\"makeIPTables\\\nUtilChains\"",
            ])
            .to_string()
        }
        18..=19 => {
            t("key:tag-str");
            format!("!!str {FIELD}")
        }
        20..=21 => {
            t("key:tag-binary");
            "!!binary bWFrZUlQVGFibGVzVXRpbENoYWlucw==".to_string()
        }
        22 => {
            t("key:anchor");
            format!("&k {FIELD}")
        }
        _ => FIELD.to_string(),
    }
}

/// A value for the field: YAML 1.1 scalars, quoting, tags, nulls, collections.
fn value(rng: &mut Rng, tags: &mut BTreeSet<&'static str>) -> String {
    let r = rng.below(100);
    let mut t = |tag| {
        tags.insert(tag);
    };
    match r {
        0..=44 => rng.pick(&["true", "false"]).to_string(),
        45..=59 => {
            t("value:yaml11-bool");
            rng.pick(&[
                "True", "False", "TRUE", "FALSE", "yes", "no", "Yes", "No", "YES", "NO", "on",
                "off", "On", "Off", "ON", "OFF", "y", "n", "Y", "N",
            ])
            .to_string()
        }
        60..=64 => {
            t("value:quoted");
            rng.pick(&["\"false\"", "'true'", "\"true\"", "'no'"])
                .to_string()
        }
        65..=70 => {
            t("value:null");
            rng.pick(&["null", "~", "Null", "NULL", ""]).to_string()
        }
        71..=73 => {
            t("value:number");
            rng.pick(&["0", "1", "0x0", "1.0"]).to_string()
        }
        74..=82 => {
            t("value:tag");
            rng.pick(&[
                "!!bool true",
                "!!bool false",
                "!!bool \"false\"",
                "!!bool yes",
                "!!str false",
                "!!null false",
                "!!null \"\"",
                "! true",
                "! false",
                "!!int 0",
                "!<tag:yaml.org,2002:bool> false",
                "!!binary ZmFsc2U=",
                "!t!bool false",
            ])
            .to_string()
        }
        83..=85 => {
            t("value:flow-collection");
            rng.pick(&["[false]", "{a: false}", "[]"]).to_string()
        }
        86..=89 => {
            t("value:comment");
            rng.pick(&["false # yes really", "true #x", "false#x", "true #"])
                .to_string()
        }
        90..=92 => {
            t("value:block-scalar");
            rng.pick(&["|\n  false", ">-\n  true", "|-\n  false"])
                .to_string()
        }
        93..=94 => {
            t("value:multiline-plain");
            rng.pick(&["false\n  true", "true\n\n  x"]).to_string()
        }
        _ => {
            t("value:anchor");
            format!("&v{} {}", rng.below(3), rng.pick(&["false", "true", "off"]))
        }
    }
}

fn target_entry(rng: &mut Rng, tags: &mut BTreeSet<&'static str>, dropin: bool) -> Vec<String> {
    let k = key(rng, tags, dropin);
    let v = if dropin && rng.pct(15) {
        tags.insert("value:null");
        "null".to_string()
    } else {
        value(rng, tags)
    };
    if rng.pct(4) {
        tags.insert("key:explicit");
        return vec![format!("? {k}"), format!(": {v}")];
    }
    if rng.pct(3) && !v.contains('\n') {
        // The value on the next line, indented (a comment may sit after the colon).
        tags.insert("yaml:value-next-line");
        let after = *rng.pick(&["", " # the value follows"]);
        return vec![format!("{k}:{after}"), format!("  {v}")];
    }
    let sep = if rng.pct(3) {
        tags.insert("yaml:space-before-colon");
        " : "
    } else {
        ": "
    };
    format!("{k}{sep}{v}").lines().map(String::from).collect()
}

/// Other fields of the configuration, mostly well typed.
fn other_field(rng: &mut Rng, tags: &mut BTreeSet<&'static str>) -> Vec<String> {
    const GOOD: &[&str] = &[
        "clusterDomain: cluster.local",
        "cgroupDriver: systemd",
        "failSwapOn: false",
        "serializeImagePulls: false",
        "maxPods: 110",
        "readOnlyPort: 0",
        "syncFrequency: 1m0s",
        "clusterDNS:\n- 10.96.0.10",
        "authentication:\n  anonymous:\n    enabled: false\n  webhook:\n    enabled: true",
        "evictionHard:\n  memory.available: 100Mi",
        "featureGates: {}",
        "containerRuntimeEndpoint: unix:///run/containerd/containerd.sock",
        "logging:\n  verbosity: 2",
        "rotateCertificates: true",
    ];
    const BAD: &[&str] = &[
        "maxPods: \"110\"",
        "syncFrequency: 60",
        "syncFrequency:",
        "failSwapOn: \"false\"",
        "clusterDNS: 10.96.0.10",
        "readOnlyPort: 1.5",
        "authentication: true",
    ];
    if rng.pct(6) {
        tags.insert("field:wrong-type");
        return rng.pick(BAD).lines().map(String::from).collect();
    }
    if rng.pct(4) {
        tags.insert("field:unknown");
        return vec!["someUnknownField: 1".into()];
    }
    rng.pick(GOOD).lines().map(String::from).collect()
}

fn merge_entries(rng: &mut Rng, tags: &mut BTreeSet<&'static str>) -> Vec<Vec<String>> {
    tags.insert("yaml:merge-key");
    let v = value_simple(rng);
    match rng.below(5) {
        0 => vec![vec![format!("<<: {{{FIELD}: {v}}}")]],
        1 => vec![vec!["<<:".into(), format!("  {FIELD}: {v}")]],
        2 => vec![
            vec![format!("base: &b {{{FIELD}: {v}}}")],
            vec!["<<: *b".into()],
        ],
        3 => {
            let w = value_simple(rng);
            vec![
                vec![format!("base: &b {{{FIELD}: {v}}}")],
                vec![format!("<<: [*b, {{{FIELD}: {w}}}]")],
            ]
        }
        _ => vec![vec![format!("!!merge <<: {{{FIELD}: {v}}}")]],
    }
}

const SIMPLE_VALUES: &[&str] = &["false", "true", "off", "null"];

fn value_simple(rng: &mut Rng) -> &'static str {
    SIMPLE_VALUES[rng.below(SIMPLE_VALUES.len())]
}

fn alias_entry(rng: &mut Rng, tags: &mut BTreeSet<&'static str>) -> Vec<String> {
    tags.insert("yaml:alias");
    let v = value_simple(rng);
    vec![format!("failSwapOn: &a {v}"), format!("{FIELD}: *a")]
}

fn alias_bomb(rng: &mut Rng, tags: &mut BTreeSet<&'static str>) -> Vec<String> {
    tags.insert("yaml:alias-bomb");
    let levels = 2 + rng.below(6);
    let mut lines = vec!["b0: &b0 [x, x, x, x, x, x, x, x, x]".to_string()];
    for i in 1..=levels {
        let p = format!("*b{}", i - 1);
        lines.push(format!("b{i}: &b{i} [{}]", vec![p; 9].join(", ")));
    }
    lines
}

fn json_file(rng: &mut Rng, tags: &mut BTreeSet<&'static str>, dropin: bool) -> Vec<u8> {
    tags.insert("json:document");
    let mut members: Vec<String> = Vec::new();
    if !rng.pct(3) {
        members.push(format!("\"apiVersion\": \"{API}\""));
    } else {
        tags.insert("header:no-apiversion");
    }
    if !rng.pct(3) {
        members.push(format!("\"kind\": \"{KIND}\""));
    } else {
        tags.insert("header:no-kind");
    }
    let targets = *rng.pick(&[0, 1, 1, 1, 1, 2]);
    if targets == 2 {
        tags.insert("json:duplicate-key");
    }
    for _ in 0..targets {
        let k = match rng.below(100) {
            0..=7 => {
                tags.insert("json:key-case");
                rng.pick(&["MakeIPTablesUtilChains", "makeiptablesutilchains"])
                    .to_string()
            }
            8..=11 => {
                tags.insert("json:key-escape");
                "make\\u0049PTablesUtilChains".to_string()
            }
            12 => {
                tags.insert("json:key-unicode-fold");
                "makeIPTableſUtilChainſ".to_string()
            }
            _ => FIELD.to_string(),
        };
        let v = match rng.below(100) {
            0..=69 => rng.pick(&["true", "false"]).to_string(),
            70..=79 => {
                tags.insert("value:null");
                "null".to_string()
            }
            80..=87 => {
                tags.insert("value:quoted");
                "\"false\"".to_string()
            }
            _ => {
                tags.insert("value:number");
                rng.pick(&["0", "1"]).to_string()
            }
        };
        members.push(format!("\"{k}\": {v}"));
    }
    if rng.pct(20) {
        members.push("\"clusterDomain\": \"cluster.local\"".into());
    }
    if !dropin && rng.pct(3) {
        tags.insert("field:wrong-type");
        members.push("\"maxPods\": \"110\"".into());
    }
    rng.shuffle(&mut members);
    let pretty = rng.pct(50);
    let sep = if pretty { ",\n  " } else { ", " };
    let mut body = if pretty {
        format!("{{\n  {}\n}}\n", members.join(sep))
    } else {
        format!("{{{}}}", members.join(sep))
    };
    if rng.pct(3) {
        tags.insert("json:trailing-comma");
        body = body.replacen('}', ",}", 1);
    }
    if rng.pct(3) {
        tags.insert("json:trailing-text");
        body.push_str("\n# done\n");
    }
    let lead = match rng.below(100) {
        0..=79 => "",
        80..=87 => {
            tags.insert("json:leading-space");
            " \n\t"
        }
        88..=91 => {
            tags.insert("json:leading-unicode-space");
            *rng.pick(&["\u{a0}", "\u{2028}", "\u{85}", "\u{3000}"])
        }
        92..=95 => {
            tags.insert("json:bom");
            "\u{feff}"
        }
        _ => {
            tags.insert("json:leading-comment");
            "# json below\n"
        }
    };
    format!("{lead}{body}").into_bytes()
}

// ---------------------------------------------------------------- flags

fn flags(
    rng: &mut Rng,
    tags: &mut BTreeSet<&'static str>,
    config: Option<&str>,
    dir: Option<&str>,
) -> Vec<String> {
    let mut parts: Vec<Vec<String>> = Vec::new();
    if let Some(c) = config {
        if rng.pct(4) {
            // An earlier --config: the last one wins, its file is never read.
            tags.insert("flag:config-repeated");
            parts.push(vec![format!("--config={DECOY}")]);
        }
        parts.push(path_flag(rng, tags, "config", c));
    } else if rng.pct(3) {
        tags.insert("flag:config-empty");
        parts.push(vec!["--config=".into()]);
    }
    if let Some(d) = dir {
        parts.push(path_flag(rng, tags, "config-dir", d));
    }
    let mics = *rng.pick(&[0, 0, 1, 1, 1, 2]);
    if mics == 2 {
        tags.insert("flag:repeated");
    }
    for _ in 0..mics {
        parts.push(mic_flag(rng, tags));
    }
    for _ in 0..rng.below(4) {
        parts.push(other_flag(rng, tags));
    }
    rng.shuffle(&mut parts);
    let mut args: Vec<String> = parts.into_iter().flatten().collect();
    if rng.pct(3) {
        tags.insert("flag:double-dash");
        let at = rng.below(args.len() + 1);
        args.insert(at, "--".into());
    }
    args
}

fn path_flag(
    rng: &mut Rng,
    tags: &mut BTreeSet<&'static str>,
    name: &str,
    path: &str,
) -> Vec<String> {
    match rng.below(10) {
        0..=5 => vec![format!("--{name}={path}")],
        6..=8 => {
            tags.insert("flag:value-next-arg");
            vec![format!("--{name}"), path.to_string()]
        }
        _ => {
            tags.insert("flag:underscore");
            vec![format!("--{}={path}", name.replace('-', "_"))]
        }
    }
}

fn mic_flag(rng: &mut Rng, tags: &mut BTreeSet<&'static str>) -> Vec<String> {
    const GOOD: &[&str] = &[
        "true", "false", "1", "0", "t", "f", "T", "F", "TRUE", "FALSE", "True", "False",
    ];
    const BAD: &[&str] = &["yes", "no", "off", "on", "", "tRUE", "2", " false"];
    let name = if rng.pct(10) {
        tags.insert("flag:underscore");
        "make_iptables_util_chains"
    } else {
        "make-iptables-util-chains"
    };
    match rng.below(100) {
        0..=14 => vec![format!("--{name}")],
        15..=69 => vec![format!("--{name}={}", rng.pick(GOOD))],
        70..=79 => {
            tags.insert("flag:bad-bool");
            vec![format!("--{name}={}", rng.pick(BAD))]
        }
        80..=91 => {
            tags.insert("flag:bool-next-arg");
            vec![
                format!("--{name}"),
                rng.pick(&["false", "true"]).to_string(),
            ]
        }
        _ => {
            tags.insert("flag:single-dash");
            vec![format!("-{name}={}", rng.pick(&["false", "true"]))]
        }
    }
}

fn other_flag(rng: &mut Rng, tags: &mut BTreeSet<&'static str>) -> Vec<String> {
    const TYPED: &[(&str, &[&str], &[&str])] = &[
        ("max-pods", &["110", "0"], &["abc", "1.5", ""]),
        ("sync-frequency", &["1m", "30s"], &["10", "abc"]),
        (
            "node-labels",
            &[
                "role=worker",
                "a=b,c=d",
                "node-role.kubernetes.io/worker,a=b",
            ],
            &[],
        ),
        ("cluster-dns", &["10.96.0.10", "10.0.0.10,10.0.0.11"], &[]),
        ("hostname-override", &["node-1"], &[]),
        ("pod-max-pids", &["100", "-1"], &["x"]),
        ("address", &["0.0.0.0", "::"], &["x.y"]),
        (
            "eviction-hard",
            &["memory.available<100Mi"],
            &["memory.available=100Mi"],
        ),
        ("vmodule", &["kubelet=4", ""], &["kubelet"]),
        ("cgroup-driver", &["systemd"], &[]),
        (
            "container-runtime-endpoint",
            &["unix:///run/containerd/containerd.sock"],
            &[],
        ),
        ("log-flush-frequency", &["5s"], &["x"]),
        ("system-reserved", &["cpu=100m,memory=100Mi"], &["cpu"]),
        ("kubeconfig", &["/etc/kubernetes/kubelet.conf"], &[]),
    ];
    const BOOLS: &[&str] = &[
        "fail-swap-on",
        "cgroups-per-qos",
        "serialize-image-pulls",
        "rotate-certificates",
        "anonymous-auth",
    ];
    const GLOBAL_BOOLS: &[&str] = &[
        "enable-load-reader",
        "log-cadvisor-usage",
        "storage-driver-secure",
    ];
    match rng.below(100) {
        0..=29 => verbosity_flag(rng, tags),
        30..=64 => {
            let (name, good, bad) = rng.pick(TYPED);
            let v = if !bad.is_empty() && rng.pct(15) {
                tags.insert("flag:bad-value");
                *rng.pick(bad)
            } else {
                *rng.pick(good)
            };
            if rng.pct(50) {
                vec![format!("--{name}={v}")]
            } else if rng.pct(8) {
                tags.insert("flag:value-swallows-flag");
                vec![format!("--{name}")]
            } else {
                tags.insert("flag:value-next-arg");
                vec![format!("--{name}"), v.to_string()]
            }
        }
        65..=79 => {
            let name = rng.pick(BOOLS);
            match rng.below(3) {
                0 => vec![format!("--{name}")],
                1 => vec![format!("--{name}=false")],
                _ => {
                    tags.insert("flag:bool-next-arg");
                    vec![format!("--{name}"), "true".into()]
                }
            }
        }
        80..=86 => {
            tags.insert("flag:global-bool");
            vec![format!("--{}", rng.pick(GLOBAL_BOOLS))]
        }
        87..=90 => {
            tags.insert("flag:help-version");
            vec![
                rng.pick(&[
                    "--help=false",
                    "-h=false",
                    "--version=false",
                    "-h",
                    "--version",
                    "--help",
                ])
                .to_string(),
            ]
        }
        91..=93 => {
            tags.insert("flag:unknown");
            vec![
                rng.pick(&["--no-such-flag", "--no-such-flag=1", "-x"])
                    .to_string(),
            ]
        }
        94..=95 => {
            tags.insert("flag:positional");
            vec![rng.pick(&["run", "-"]).to_string()]
        }
        _ => {
            tags.insert("flag:bad-syntax");
            vec![rng.pick(&["---v=2", "--=x", "--v=2=3"]).to_string()]
        }
    }
}

fn verbosity_flag(rng: &mut Rng, tags: &mut BTreeSet<&'static str>) -> Vec<String> {
    const LEVELS: &[&str] = &["0", "2", "4", "10"];
    const BAD: &[&str] = &["x", "-1", "+3", "0x3", "3.0"];
    let n = if rng.pct(15) {
        tags.insert("flag:bad-value");
        *rng.pick(BAD)
    } else {
        *rng.pick(LEVELS)
    };
    match rng.below(8) {
        0 | 1 => vec![format!("--v={n}")],
        2 => {
            tags.insert("flag:value-next-arg");
            vec!["--v".into(), n.into()]
        }
        3 => {
            tags.insert("flag:shorthand-v");
            vec!["-v".into(), n.into()]
        }
        4 => {
            tags.insert("flag:shorthand-v");
            vec![format!("-v{n}")]
        }
        5 => {
            tags.insert("flag:shorthand-v");
            vec![format!("-v={n}")]
        }
        6 => {
            tags.insert("flag:v-swallows-next");
            vec!["--v".into()]
        }
        _ => {
            tags.insert("flag:v-swallows-next");
            vec!["-v".into()]
        }
    }
}

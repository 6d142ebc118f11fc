//! The `--config` file and `--config-dir` drop-ins, decoded for makeIPTablesUtilChains the way
//! the kubelet decodes them.
//!
//! Confirmed in kubernetes/kubernetes:
//! - `pkg/kubelet/kubeletconfig/util/codec/codec.go` `DecodeKubeletConfiguration`: strict decode,
//!   and on a strict error a lenient decode with a logged warning. YAML goes to JSON through
//!   sigs.k8s.io/yaml on go-yaml v2 (YAML 1.1 scalars, first document only); the JSON decoder
//!   is case-sensitive, so `MakeIPTablesUtilChains` is an unknown field (strict error, then
//!   ignored). Duplicate keys: strict error, lenient decode keeps the last.
//! - `DecodeKubeletConfigurationIntoJSON` (drop-ins): strict decode into `Unstructured`: a
//!   duplicate key is fatal, unknown (e.g. wrong-case) keys are kept as they are.
//! - `cmd/kubelet/app/server.go` `mergeKubeletConfigurations`: every `*.conf` found by
//!   `filepath.WalkDir` is applied with `jsonpatch.MergePatch` (gopkg.in/evanphx/json-patch.v4,
//!   whose output is a Go map marshalled with sorted keys) over a base JSON, and the result is
//!   decoded with encoding/json (case-insensitive, the later of two matching keys wins).
//!   The base differs by version (PR #127421, kubelet 1.32):
//!   - 1.28-1.31: the base is `json.Marshal` of the *internal* config (no JSON tags: key
//!     `MakeIPTablesUtilChains`), decoded back into the same struct (an absent key keeps the
//!     value). So `makeIPTablesUtilChains: null` in a drop-in deletes nothing and changes
//!     nothing; `MakeIPTablesUtilChains: false` replaces the base key: false.
//!   - 1.32+: the base is the *v1beta1* JSON (key `makeIPTablesUtilChains`), decoded into a
//!     fresh object and defaulted. So `makeIPTablesUtilChains: null` deletes the key and the
//!     default (true) comes back; a wrong-case key sorts before the base key, which wins.

use std::collections::BTreeMap;
use std::path::Path;

use yaml_rust2::parser::{Event, Parser};
use yaml_rust2::scanner::TScalarStyle;

pub const FIELD: &str = "makeIPTablesUtilChains";
pub const API_VERSION: &str = "kubelet.config.k8s.io/v1beta1";
pub const KIND: &str = "KubeletConfiguration";

/// A YAML node of the first document, with the scalar style and 1-based line.
#[derive(Clone, Debug, PartialEq)]
enum Node {
    Scalar {
        value: String,
        plain: bool,
        tag: Option<String>,
        line: usize,
    },
    Seq(usize),
    Map(Vec<(Node, Node)>, usize),
}

impl Node {
    fn line(&self) -> usize {
        match self {
            Node::Scalar { line, .. } | Node::Seq(line) | Node::Map(_, line) => *line,
        }
    }
}

/// The JSON value a scalar becomes through sigs.k8s.io/yaml (go-yaml v2, YAML 1.1), as far as
/// a bool field cares.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    Bool(bool),
    Null,
    /// Anything else (a string, number, list, map): a type error for a bool field.
    Other(String),
}

/// One key of the top-level mapping that names the field (exactly or in another case).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub key: String,
    pub value: Value,
    /// The scalar as written.
    pub written: String,
    pub line: usize,
}

/// What one file says about the field.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FileSettings {
    /// Top-level keys equal to the field name ignoring case, in file order (duplicates kept).
    pub entries: Vec<Entry>,
}

/// A file the kubelet refuses (it would not start), with the line when known.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodeError {
    pub line: Option<usize>,
    pub reason: String,
}

fn derr(line: Option<usize>, reason: impl Into<String>) -> DecodeError {
    DecodeError {
        line,
        reason: reason.into(),
    }
}

const MAX_NODES: usize = 200_000;
const MAX_DEPTH: usize = 256;

/// Parses the first YAML document (what go-yaml v2's Unmarshal reads). `Ok(None)` for an empty
/// stream or document.
fn first_document(text: &str) -> Result<Option<Node>, DecodeError> {
    let mut parser = Parser::new_from_str(text);
    let mut anchors: BTreeMap<usize, Node> = BTreeMap::new();
    let mut budget = MAX_NODES;
    loop {
        let (ev, mark) = parser.next_token().map_err(|e| {
            derr(
                Some(e.marker().line()),
                format!("invalid YAML: {}", e.info()),
            )
        })?;
        match ev {
            Event::StreamStart | Event::DocumentStart | Event::Nothing => continue,
            Event::StreamEnd | Event::DocumentEnd => return Ok(None),
            ev => {
                let node = build(&mut parser, ev, mark.line(), &mut anchors, &mut budget, 0)?;
                return Ok(Some(node));
            }
        }
    }
}

fn build(
    parser: &mut Parser<std::str::Chars<'_>>,
    ev: Event,
    line: usize,
    anchors: &mut BTreeMap<usize, Node>,
    budget: &mut usize,
    depth: usize,
) -> Result<Node, DecodeError> {
    if depth > MAX_DEPTH {
        return Err(derr(Some(line), "YAML nested too deeply"));
    }
    if *budget == 0 {
        return Err(derr(Some(line), "YAML too large (alias expansion)"));
    }
    *budget -= 1;
    let next = |parser: &mut Parser<std::str::Chars<'_>>| {
        parser.next_token().map_err(|e| {
            derr(
                Some(e.marker().line()),
                format!("invalid YAML: {}", e.info()),
            )
        })
    };
    let (node, anchor) = match ev {
        Event::Scalar(value, style, anchor, tag) => (
            Node::Scalar {
                value,
                plain: style == TScalarStyle::Plain,
                tag: tag.map(|t| format!("{}{}", t.handle, t.suffix)),
                line,
            },
            anchor,
        ),
        Event::Alias(id) => {
            let n = anchors
                .get(&id)
                .cloned()
                .ok_or_else(|| derr(Some(line), "unknown YAML alias"))?;
            *budget = budget.saturating_sub(count(&n));
            if *budget == 0 {
                return Err(derr(Some(line), "YAML too large (alias expansion)"));
            }
            return Ok(n);
        }
        Event::SequenceStart(anchor, _) => {
            loop {
                let (ev, m) = next(parser)?;
                if ev == Event::SequenceEnd {
                    break;
                }
                build(parser, ev, m.line(), anchors, budget, depth + 1)?;
            }
            (Node::Seq(line), anchor)
        }
        Event::MappingStart(anchor, _) => {
            let mut pairs = Vec::new();
            loop {
                let (ev, m) = next(parser)?;
                if ev == Event::MappingEnd {
                    break;
                }
                let k = build(parser, ev, m.line(), anchors, budget, depth + 1)?;
                let (ev, m) = next(parser)?;
                let v = build(parser, ev, m.line(), anchors, budget, depth + 1)?;
                pairs.push((k, v));
            }
            (Node::Map(pairs, line), anchor)
        }
        other => return Err(derr(Some(line), format!("unexpected YAML event {other:?}"))),
    };
    if anchor > 0 {
        anchors.insert(anchor, node.clone());
    }
    Ok(node)
}

fn count(n: &Node) -> usize {
    match n {
        Node::Map(p, _) => 1 + p.iter().map(|(k, v)| count(k) + count(v)).sum::<usize>(),
        _ => 1,
    }
}

const YAML11_TRUE: &[&str] = &[
    "y", "Y", "yes", "Yes", "YES", "on", "On", "ON", "true", "True", "TRUE",
];
const YAML11_FALSE: &[&str] = &[
    "n", "N", "no", "No", "NO", "off", "Off", "OFF", "false", "False", "FALSE",
];

/// go-yaml v2's resolution of a scalar, as far as a bool field cares.
fn scalar_value(value: &str, plain: bool, tag: Option<&str>) -> Value {
    let tag = tag.map(|t| {
        t.trim_start_matches("tag:yaml.org,2002:")
            .trim_start_matches("!!")
    });
    match tag {
        Some("bool") => {
            if YAML11_TRUE.contains(&value) {
                return Value::Bool(true);
            }
            if YAML11_FALSE.contains(&value) {
                return Value::Bool(false);
            }
            return Value::Other(format!("{value:?} tagged !!bool (not a YAML 1.1 boolean)"));
        }
        Some("null") => return Value::Null,
        Some("str") => return Value::Other(format!("the string {value:?}")),
        Some(t) if !t.is_empty() && t != "!" => {
            return Value::Other(format!("{value:?} tagged {t}"));
        }
        _ => {}
    }
    if !plain {
        return Value::Other(format!("the quoted string {value:?}"));
    }
    if YAML11_TRUE.contains(&value) {
        Value::Bool(true)
    } else if YAML11_FALSE.contains(&value) {
        Value::Bool(false)
    } else if matches!(value, "" | "~" | "null" | "Null" | "NULL") {
        Value::Null
    } else {
        Value::Other(format!("{value:?}"))
    }
}

fn node_value(n: &Node) -> (Value, String) {
    match n {
        Node::Scalar {
            value, plain, tag, ..
        } => (scalar_value(value, *plain, tag.as_deref()), value.clone()),
        Node::Seq(_) => (Value::Other("a list".into()), "[...]".into()),
        Node::Map(..) => (Value::Other("a mapping".into()), "{...}".into()),
    }
}

/// Go's encoding/json case folding (ASCII, plus the Kelvin sign and long s that fold to k, s).
pub fn go_fold_eq(a: &str, b: &str) -> bool {
    let f = |s: &str| -> String {
        s.chars()
            .map(|c| match c {
                '\u{212A}' => 'K',
                '\u{017F}' => 'S',
                c => c.to_ascii_uppercase(),
            })
            .collect()
    };
    f(a) == f(b)
}

/// Decodes one file (main config or drop-in): checks apiVersion/kind and collects the
/// entries naming the field. `strict_duplicates`: a duplicate top-level key is fatal (drop-ins).
pub fn decode(text: &str, strict_duplicates: bool) -> Result<FileSettings, DecodeError> {
    let doc = first_document(text)?;
    let pairs = match doc {
        None => return Err(derr(None, "the document is empty: no apiVersion and kind")),
        Some(Node::Map(pairs, _)) => pairs,
        Some(n) => {
            return Err(derr(
                Some(n.line()),
                "the first YAML document is not a mapping (a KubeletConfiguration object)",
            ));
        }
    };
    let mut out = FileSettings::default();
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let (mut api, mut kind) = (None, None);
    for (k, v) in &pairs {
        let key = match k {
            Node::Scalar { value, .. } => value.clone(),
            _ => continue,
        };
        if let Some(first) = seen.insert(key.clone(), k.line())
            && strict_duplicates
        {
            return Err(derr(
                Some(k.line()),
                format!(
                    "duplicate key {key:?} (first at line {first}): strict decoding of a drop-in fails"
                ),
            ));
        }
        let (value, written) = node_value(v);
        match key.as_str() {
            "apiVersion" => api = Some(written.clone()),
            "kind" => kind = Some(written.clone()),
            _ => {}
        }
        if go_fold_eq(&key, FIELD) {
            out.entries.push(Entry {
                key,
                value,
                written,
                line: k.line(),
            });
        }
    }
    match (api.as_deref(), kind.as_deref()) {
        (Some(API_VERSION), Some(KIND)) => Ok(out),
        (None, _) | (_, None) => Err(derr(
            None,
            format!("it lacks apiVersion: {API_VERSION} and kind: {KIND}"),
        )),
        (Some(a), Some(k)) => Err(derr(
            None,
            format!("apiVersion {a:?}, kind {k:?} is not {API_VERSION} {KIND}"),
        )),
    }
}

/// What the main `--config` file sets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MainOutcome {
    /// `Some((value, entry))` when an exact-case key with a bool decides; `None`: default true.
    pub set: Option<(bool, Entry)>,
    /// Things worth a warning (wrong-case keys ignored, duplicates, null).
    pub notes: Vec<String>,
}

/// The main file as `DecodeKubeletConfiguration` decodes it (strict, then lenient).
pub fn main_outcome(s: &FileSettings) -> Result<MainOutcome, DecodeError> {
    let mut notes = Vec::new();
    let exact: Vec<&Entry> = s.entries.iter().filter(|e| e.key == FIELD).collect();
    for e in s.entries.iter().filter(|e| e.key != FIELD) {
        notes.push(format!(
            "line {} has {}: {} but field names are case-sensitive in the config file: the kubelet ignores it (unknown field)",
            e.line, e.key, e.written
        ));
    }
    if exact.len() > 1 {
        notes.push(format!(
            "{FIELD} appears {} times; the kubelet keeps the last (line {})",
            exact.len(),
            exact[exact.len() - 1].line
        ));
    }
    let Some(last) = exact.last() else {
        return Ok(MainOutcome { set: None, notes });
    };
    match &last.value {
        Value::Bool(b) => Ok(MainOutcome {
            set: Some((*b, (*last).clone())),
            notes,
        }),
        Value::Null => {
            notes.push(format!(
                "line {} sets {FIELD} to null, which leaves the default (true)",
                last.line
            ));
            Ok(MainOutcome { set: None, notes })
        }
        Value::Other(what) => Err(derr(
            Some(last.line),
            format!("{FIELD} is {what}, not a boolean: the kubelet cannot decode the file"),
        )),
    }
}

/// The kubelet's drop-in merge semantics, by version.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MergeEra {
    /// 1.28-1.31: base is the internal struct's JSON (key `MakeIPTablesUtilChains`).
    Internal,
    /// 1.32+: base is the v1beta1 JSON (key `makeIPTablesUtilChains`), defaulted after.
    Versioned,
}

/// Where a value came from in a merge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// The configuration before the drop-ins (config file, or defaults).
    Base,
    /// A drop-in (index into the list given) and its entry.
    DropIn(usize, Entry),
    /// Deleted by a null and defaulted (1.32+).
    Default,
}

/// Applies the drop-ins' entries as JSON merge patches over a base value and decodes the
/// result as encoding/json does, per [`MergeEra`] (see the module doc).
pub fn merge_dropins(
    base: bool,
    dropins: &[FileSettings],
    era: MergeEra,
) -> Result<(bool, Origin), (usize, DecodeError)> {
    let base_key = match era {
        MergeEra::Internal => "MakeIPTablesUtilChains",
        MergeEra::Versioned => FIELD,
    };
    // Only keys that fold to the field matter; a BTreeMap iterates in Go's sorted order.
    let mut merged: BTreeMap<String, (Value, Origin)> = BTreeMap::new();
    merged.insert(base_key.to_string(), (Value::Bool(base), Origin::Base));
    for (i, d) in dropins.iter().enumerate() {
        for e in &d.entries {
            if e.value == Value::Null {
                merged.remove(&e.key);
            } else {
                merged.insert(
                    e.key.clone(),
                    (e.value.clone(), Origin::DropIn(i, e.clone())),
                );
            }
        }
    }
    let mut cur = match era {
        MergeEra::Internal => Some((base, Origin::Base)),
        MergeEra::Versioned => None,
    };
    for (value, origin) in merged.values() {
        match value {
            Value::Bool(b) => cur = Some((*b, origin.clone())),
            Value::Null => {}
            Value::Other(what) => {
                let (i, line) = match origin {
                    Origin::DropIn(i, e) => (*i, Some(e.line)),
                    _ => (0, None),
                };
                return Err((
                    i,
                    derr(
                        line,
                        format!(
                            "{FIELD} is {what}, not a boolean: the merged configuration cannot be decoded"
                        ),
                    ),
                ));
            }
        }
    }
    Ok(cur.unwrap_or((true, Origin::Default)))
}

/// Go's `filepath.Ext(name) == ".conf"`.
pub fn is_dropin_name(path: &Path) -> bool {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    match name.rfind('.') {
        Some(i) => &name[i..] == ".conf",
        None => false,
    }
}

/// The corpus directory, for tests: one locator, in [`super::rootfs`].
#[cfg(test)]
pub(crate) use super::rootfs::corpus_dir;

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const HEAD: &str = "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n";

    fn main(body: &str) -> Result<Option<bool>, DecodeError> {
        let s = decode(&format!("{HEAD}{body}"), false)?;
        Ok(main_outcome(&s)?.set.map(|(b, _)| b))
    }

    #[test]
    fn main_file_scalars() {
        for (body, want) in [
            ("makeIPTablesUtilChains: false\n", Ok(Some(false))),
            ("makeIPTablesUtilChains: off\n", Ok(Some(false))),
            ("makeIPTablesUtilChains: N\n", Ok(Some(false))),
            ("makeIPTablesUtilChains: NO\n", Ok(Some(false))),
            ("makeIPTablesUtilChains: yes\n", Ok(Some(true))),
            ("makeIPTablesUtilChains: True\n", Ok(Some(true))),
            ("makeIPTablesUtilChains: !!bool off\n", Ok(Some(false))),
            ("makeIPTablesUtilChains: ~\n", Ok(None)),
            ("makeIPTablesUtilChains: null\n", Ok(None)),
            ("makeIPTablesUtilChains:\n", Ok(None)),
            ("makeIPTablesUtilChains: \"false\"\n", Err("quoted")),
            ("makeIPTablesUtilChains: 'no'\n", Err("quoted")),
            ("makeIPTablesUtilChains: 0\n", Err("not a boolean")),
            ("makeIPTablesUtilChains: fAlse\n", Err("not a boolean")),
            ("makeIPTablesUtilChains: [false]\n", Err("not a boolean")),
            ("MakeIPTablesUtilChains: false\n", Ok(None)),
            (
                "makeIPTablesUtilChains: false\nmakeIPTablesUtilChains: true\n",
                Ok(Some(true)),
            ),
            (
                "makeIPTablesUtilChains: true\nmakeIPTablesUtilChains: false\n",
                Ok(Some(false)),
            ),
            ("a: &x false\nmakeIPTablesUtilChains: *x\n", Ok(Some(false))),
            (
                "makeIPTablesUtilChains: false\n---\nmakeIPTablesUtilChains: true\n",
                Ok(Some(false)),
            ),
            ("{makeIPTablesUtilChains: off}\n", Err("invalid YAML")),
        ] {
            let got = main(body);
            match (&want, &got) {
                (Ok(w), Ok(g)) => assert_eq!(w, g, "{body}"),
                (Err(m), Err(e)) => assert!(e.reason.contains(m), "{body}: {}", e.reason),
                _ => panic!("{body}: got {got:?}"),
            }
        }
        let s = decode(&format!("{HEAD}MakeIPTablesUtilChains: false\n"), false).unwrap();
        assert!(main_outcome(&s).unwrap().notes[0].contains("case-sensitive"));
        let json = r#"{"apiVersion":"kubelet.config.k8s.io/v1beta1","kind":"KubeletConfiguration","makeIPTablesUtilChains":false}"#;
        assert!(
            !main_outcome(&decode(json, false).unwrap())
                .unwrap()
                .set
                .unwrap()
                .0
        );
        for bad in [
            "",
            "# only a comment\n",
            "- a\n",
            "kind: KubeletConfiguration\n",
            "apiVersion: v1\nkind: Pod\n",
            "a: [\n",
        ] {
            assert!(decode(bad, false).is_err(), "{bad:?}");
        }
    }

    fn dropin(body: &str) -> FileSettings {
        decode(&format!("{HEAD}{body}"), true).unwrap()
    }

    #[test]
    fn dropin_merge_by_era() {
        use MergeEra::*;
        let v = |base, ds: &[FileSettings], era| merge_dropins(base, ds, era).unwrap().0;
        let f = dropin("makeIPTablesUtilChains: false\n");
        let t = dropin("makeIPTablesUtilChains: true\n");
        let null = dropin("makeIPTablesUtilChains: null\n");
        let wrong = dropin("MakeIPTablesUtilChains: false\n");
        let none = dropin("clusterDomain: x\n");
        for era in [Internal, Versioned] {
            assert!(!v(true, std::slice::from_ref(&f), era));
            assert!(v(false, std::slice::from_ref(&t), era));
            assert!(!v(true, &[t.clone(), f.clone()], era));
            assert!(!v(false, std::slice::from_ref(&none), era));
        }
        // null: a no-op on 1.28-1.31, back to the default on 1.32+.
        assert!(!v(false, std::slice::from_ref(&null), Internal));
        assert!(v(false, std::slice::from_ref(&null), Versioned));
        // wrong case: replaces the base key on 1.28-1.31; sorted before the base key on 1.32+.
        assert!(!v(true, std::slice::from_ref(&wrong), Internal));
        assert!(v(true, std::slice::from_ref(&wrong), Versioned));
        // A quoted value is a type error after the merge.
        let q = dropin("makeIPTablesUtilChains: \"false\"\n");
        assert!(merge_dropins(true, &[q], Versioned).is_err());
        // Duplicates are fatal in drop-ins.
        assert!(decode(&format!("{HEAD}a: 1\na: 2\n"), true).is_err());
        assert!(go_fold_eq("MAKEIPTABLESUTILCHAINS", FIELD));
        assert!(go_fold_eq(
            "ma\u{212A}eIPTable\u{017F}UtilChain\u{017F}",
            FIELD
        ));
        assert!(is_dropin_name(Path::new("/x/10-a.conf")));
        assert!(!is_dropin_name(Path::new("/x/10-a.conf.bak")));
        assert!(!is_dropin_name(Path::new("/x/conf")));
        assert!(is_dropin_name(Path::new("/x/.conf")));
    }

    proptest! {
        #[test]
        fn decoder_never_panics(s in ".{0,200}") {
            let _ = decode(&s, false).map(|d| main_outcome(&d));
            let _ = decode(&s, true);
        }
        #[test]
        fn decoder_never_panics_yamlish(s in "(makeIPTablesUtilChains|apiVersion|kind|a|&x|\\*x|[:\\-\\[\\]{},'\"!~ \n]|off|no|1){0,60}") {
            let _ = decode(&format!("{HEAD}{s}"), false).map(|d| main_outcome(&d));
        }
    }
}

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

use super::yaml::{self, ReadError};

pub const FIELD: &str = "makeIPTablesUtilChains";
pub const API_VERSION: &str = "kubelet.config.k8s.io/v1beta1";
pub const KIND: &str = "KubeletConfiguration";

/// The JSON value the field's key holds, as far as a bool field cares.
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
    /// Top-level keys equal to the field name ignoring case, in the order of the JSON text
    /// the kubelet decodes (JSON: as written, duplicates kept; YAML: sorted, unique).
    pub entries: Vec<Entry>,
    /// What the kubelet's strict decode refuses (duplicate keys): fatal for a drop-in, a
    /// logged fallback to lenient decoding for the main file.
    pub strict_errors: Vec<String>,
}

/// A file the kubelet refuses (it would not start), with the line when known; or, with
/// `refused`, a file whose reading by the kubelet kubelet-drift does not reproduce.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}{reason}", line.map(|l| format!("line {l}: ")).unwrap_or_default())]
pub struct ConfigError {
    pub line: Option<usize>,
    pub reason: String,
    /// kubelet-drift's allowlist refused a construct (the kubelet may read it).
    pub refused: bool,
}

impl From<ReadError> for ConfigError {
    fn from(e: ReadError) -> Self {
        ConfigError {
            line: e.line,
            reason: e.reason,
            refused: e.refused,
        }
    }
}

fn derr(line: Option<usize>, reason: impl Into<String>) -> ConfigError {
    ConfigError {
        line,
        reason: reason.into(),
        refused: false,
    }
}

fn field_value(v: &yaml::Value) -> Value {
    match v {
        yaml::Value::Bool(b) => Value::Bool(*b),
        yaml::Value::Null => Value::Null,
        yaml::Value::Str(s) => Value::Other(format!("the string {s:?} (quoted or tagged)")),
        yaml::Value::Scalar(s) => Value::Other(format!("{s:?}")),
        yaml::Value::Num(n) => Value::Other(format!("the number {n}")),
        yaml::Value::Seq(_) => Value::Other("a list".into()),
        yaml::Value::Map(_) => Value::Other("a mapping".into()),
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

/// apiVersion or kind, as the kubelet finds it. apimachinery's `SimpleMetaFactory.Interpret`
/// reads them with encoding/json (keys matched case-insensitively, the last non-null wins,
/// a non-string fails), which is all the main file needs; a drop-in decoded into
/// `Unstructured` also reads the exact-case key: for a drop-in both must give `want`.
fn type_meta(
    root: &[yaml::Entry],
    name: &str,
    want: &str,
    dropin: bool,
) -> Result<(), ConfigError> {
    let mut folded: Option<&str> = None;
    let mut exact: Option<&yaml::Entry> = None;
    for e in root.iter().filter(|e| go_fold_eq(&e.key, name)) {
        match &e.value {
            yaml::Value::Str(s) => folded = Some(s),
            yaml::Value::Null => {}
            _ => {
                return Err(derr(
                    Some(e.line),
                    format!(
                        "{}: {} is not a string: the kubelet cannot read the file's kind",
                        e.key, e.written
                    ),
                ));
            }
        }
        if e.key == name {
            exact = Some(e);
        }
    }
    match (folded, exact) {
        (None, None) => Err(derr(
            None,
            format!("it lacks apiVersion: {API_VERSION} and kind: {KIND}"),
        )),
        (Some(v), Some(e)) if v == want && e.value == yaml::Value::Str(want.to_string()) => Ok(()),
        (Some(v), _) if v == want && !dropin => Ok(()),
        (v, e) => Err(derr(
            e.map(|e| e.line),
            format!(
                "{name} is {:?} (read case-insensitively by the kubelet's kind detection) and {:?} (exact case), not {want:?}: it lacks apiVersion: {API_VERSION} and kind: {KIND}",
                v.unwrap_or(""),
                e.map(|e| e.written.as_str()).unwrap_or("")
            ),
        )),
    }
}

/// Parses one file (main config or drop-in): checks apiVersion/kind and collects the
/// entries naming the field. `strict_duplicates`: a duplicate key is fatal (drop-ins).
pub fn parse(text: &str, strict_duplicates: bool) -> Result<FileSettings, ConfigError> {
    let doc = yaml::read(text)?;
    if strict_duplicates && let Some(e) = doc.strict_errors.first() {
        return Err(derr(
            None,
            format!("{e}: strict decoding of a drop-in fails"),
        ));
    }
    type_meta(&doc.root, "apiVersion", API_VERSION, strict_duplicates)?;
    type_meta(&doc.root, "kind", KIND, strict_duplicates)?;
    // The other fields' types (this one's is judged below, after the merge for drop-ins).
    // Drop-ins are merged, and the merge decoded by encoding/json (names matched in any case).
    let others: Vec<yaml::Entry> = doc
        .root
        .iter()
        .filter(|e| !go_fold_eq(&e.key, FIELD))
        .cloned()
        .collect();
    if let Some(e) = super::schema::type_error(&others, strict_duplicates) {
        return Err(derr(
            Some(e.line),
            format!(
                "{}: {} does not fit the KubeletConfiguration field's type: the kubelet cannot decode the file",
                e.key, e.written
            ),
        ));
    }
    let entries = doc
        .root
        .iter()
        .filter(|e| go_fold_eq(&e.key, FIELD))
        .map(|e| Entry {
            key: e.key.clone(),
            value: field_value(&e.value),
            written: e.written.clone(),
            line: e.line,
        })
        .collect();
    Ok(FileSettings {
        entries,
        strict_errors: doc.strict_errors,
    })
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
pub fn main_outcome(s: &FileSettings) -> Result<MainOutcome, ConfigError> {
    let mut notes = Vec::new();
    let exact: Vec<&Entry> = s.entries.iter().filter(|e| e.key == FIELD).collect();
    for e in s.entries.iter().filter(|e| e.key != FIELD) {
        notes.push(format!(
            "line {} has {}: {} but field names are case-sensitive in the config file: the kubelet ignores it (unknown field)",
            e.line, e.key, e.written
        ));
    }
    for e in s.strict_errors.iter().take(3) {
        notes.push(format!(
            "strict decoding fails ({e}); the kubelet logs it and decodes leniently"
        ));
    }
    if exact.len() > 1 {
        notes.push(format!(
            "{FIELD} appears {} times; the kubelet keeps the last (line {})",
            exact.len(),
            exact[exact.len() - 1].line
        ));
    }
    // JSON keeps duplicates: Go's decoder decodes each in turn and reports the first type
    // error even when a later duplicate is a boolean.
    for e in &exact {
        if let Value::Other(what) = &e.value {
            return Err(derr(
                Some(e.line),
                format!("{FIELD} is {what}, not a boolean: the kubelet cannot decode the file"),
            ));
        }
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
) -> Result<(bool, Origin), (usize, ConfigError)> {
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

    fn main(body: &str) -> Result<Option<bool>, ConfigError> {
        let s = parse(&format!("{HEAD}{body}"), false)?;
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
            ("{makeIPTablesUtilChains: off}\n", Err("block mapping")),
        ] {
            let got = main(body);
            match (&want, &got) {
                (Ok(w), Ok(g)) => assert_eq!(w, g, "{body}"),
                (Err(m), Err(e)) => assert!(e.reason.contains(m), "{body}: {}", e.reason),
                _ => panic!("{body}: got {got:?}"),
            }
        }
        let s = parse(&format!("{HEAD}MakeIPTablesUtilChains: false\n"), false).unwrap();
        assert!(main_outcome(&s).unwrap().notes[0].contains("case-sensitive"));
        let json = r#"{"apiVersion":"kubelet.config.k8s.io/v1beta1","kind":"KubeletConfiguration","makeIPTablesUtilChains":false}"#;
        assert!(
            !main_outcome(&parse(json, false).unwrap())
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
            assert!(parse(bad, false).is_err(), "{bad:?}");
        }
    }

    fn dropin(body: &str) -> FileSettings {
        parse(&format!("{HEAD}{body}"), true).unwrap()
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
        assert!(parse(&format!("{HEAD}a: 1\na: 2\n"), true).is_err());
        assert!(go_fold_eq("MAKEIPTABLESUTILCHAINS", FIELD));
        assert!(go_fold_eq(
            "ma\u{212A}eIPTable\u{017F}UtilChain\u{017F}",
            FIELD
        ));
        assert!(is_dropin_name(Path::new("/x/10-a.conf")));
        assert!(!is_dropin_name(Path::new("/x/10-a.conf.bak")));
        assert!(!is_dropin_name(Path::new("/x/conf")));
        assert!(is_dropin_name(Path::new("/x/.conf")));
        // The kind detection reads apiVersion/kind case-insensitively: enough for the main
        // file; a drop-in (Unstructured) also needs the exact keys.
        let upper = "APIVersion: kubelet.config.k8s.io/v1beta1\nKind: KubeletConfiguration\n";
        assert!(parse(upper, false).is_ok());
        assert!(parse(upper, true).is_err());
    }

    proptest! {
        #[test]
        fn decoder_never_panics(s in ".{0,200}") {
            let _ = parse(&s, false).map(|d| main_outcome(&d));
            let _ = parse(&s, true);
        }
        #[test]
        fn decoder_never_panics_yamlish(s in "(makeIPTablesUtilChains|apiVersion|kind|a|&x|\\*x|[:\\-\\[\\]{},'\"!~ \n]|off|no|1){0,60}") {
            let _ = parse(&format!("{HEAD}{s}"), false).map(|d| main_outcome(&d));
        }
    }
}

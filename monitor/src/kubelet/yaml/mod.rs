//! The kubelet's reading of a configuration buffer, exactly, or a refusal.
//!
//! What the kubelet does (kubernetes/kubernetes `pkg/kubelet/kubeletconfig/util/codec/codec.go`
//! through apimachinery's `CodecFactory.UniversalDecoder`):
//! - apimachinery's recognizer hands a buffer that starts with `{` after Unicode white space
//!   (`utilyaml.IsJSONBuffer`: `bytes.TrimLeftFunc(buf, unicode.IsSpace)`) to the JSON
//!   serializer, which decodes it as strict JSON (sigs.k8s.io/json, Go's encoding/json): so
//!   `{apiVersion: ...}` is refused by the kubelet. See [`json`].
//! - Any other buffer goes to the YAML serializer: `sigs.k8s.io/yaml.YAMLToJSON` (and
//!   `YAMLToJSONStrict` for the strict pass), i.e. go-yaml v2's `Unmarshal` into
//!   `interface{}` (first document only, YAML 1.1 resolution, merge keys, aliases), then
//!   `convertToJSONableObject` (map keys made strings) and `json.Marshal` (keys sorted, a
//!   NaN or infinity refused). See [`parse`] (the allowlist), [`scalar`] (go-yaml v2's
//!   `resolve.go`) and [`decode`] (go-yaml v2's `decode.go`).
//!
//! The YAML side is an allowlist: the reader accepts only constructs whose meaning in
//! go-yaml v2 (gopkg.in/yaml.v2 v2.4.0: `readerc.go`, `scannerc.go`, `parserc.go`,
//! `resolve.go`, `decode.go`) and sigs.k8s.io/yaml has been read from the source and checked
//! against those libraries; anything else is refused ([`ReadError::refused`]), which the
//! evaluator reports as an error, never as a pass. The allowlist is written down in
//! [`parse`]'s header.

pub mod decode;
pub mod json;
pub mod parse;
pub mod scalar;

/// A decoded value, as the kubelet's JSON decoder sees it.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    /// A string.
    Str(String),
    /// A YAML plain scalar that go-yaml resolves to a number or a string (which one does not
    /// matter to any verdict: neither is a boolean, neither can be a key we accept).
    Scalar(String),
    /// A JSON number, as written.
    Num(String),
    Seq(Vec<Value>),
    Map(Vec<Entry>),
}

impl Value {
    /// How the value was written, for messages.
    pub fn written(&self) -> String {
        match self {
            Value::Null => "null".into(),
            Value::Bool(b) => b.to_string(),
            Value::Str(s) | Value::Scalar(s) | Value::Num(s) => s.clone(),
            Value::Seq(_) => "[...]".into(),
            Value::Map(_) => "{...}".into(),
        }
    }
}

/// One key of a mapping, with the 1-based line of the key that set it.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    pub key: String,
    pub value: Value,
    pub line: usize,
    /// The value as written (the scalar's text), for messages.
    pub written: String,
}

/// Which serializer the kubelet uses for the buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Json,
    Yaml,
}

/// A buffer the kubelet decodes.
#[derive(Clone, Debug, PartialEq)]
pub struct Document {
    pub format: Format,
    /// The top-level object, in the order of the JSON text the kubelet decodes: for YAML the
    /// keys sorted as `json.Marshal` sorts them (no duplicates); for JSON as written,
    /// duplicates kept (Go's decoder assigns each in turn: the last wins).
    pub root: Vec<Entry>,
    /// What a strict decode refuses (duplicate keys at any depth, with their line).
    pub strict_errors: Vec<String>,
}

/// A buffer the kubelet refuses (`refused: false`), or one kubelet-drift does not read
/// because its meaning is not proven (`refused: true`).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct ReadError {
    pub line: Option<usize>,
    pub reason: String,
    pub refused: bool,
}

impl ReadError {
    /// The kubelet refuses this (go-yaml, sigs.k8s.io/yaml or the JSON decoder fail).
    pub fn invalid(line: Option<usize>, reason: impl Into<String>) -> Self {
        ReadError {
            line,
            reason: reason.into(),
            refused: false,
        }
    }
    /// A construct outside the allowlist.
    pub fn refused(line: Option<usize>, reason: impl Into<String>) -> Self {
        ReadError {
            line,
            reason: reason.into(),
            refused: true,
        }
    }
}

/// `utilyaml.IsJSONBuffer`: `{` after Unicode white space (Go's `unicode.IsSpace` is the
/// White_Space property, as Rust's `char::is_whitespace`).
pub fn is_json_buffer(text: &str) -> bool {
    text.trim_start_matches(char::is_whitespace)
        .starts_with('{')
}

/// Reads a configuration buffer as the kubelet does.
pub fn read(text: &str) -> Result<Document, ReadError> {
    if is_json_buffer(text) {
        json::read(text)
    } else {
        let doc = parse::first_document(text)?;
        decode::to_document(doc)
    }
}

/// A second, independent look at a buffer the reader accepted: the characters the allowlist
/// excludes (the YAML 1.1 line breaks NEL, LS and PS, a lone CR, a byte-order mark after the
/// start, control characters), found by a plain scan of the whole text. The fuzz target and
/// the property tests assert that [`read`] never accepts YAML in which this finds one.
pub fn excluded_character(text: &str) -> Option<char> {
    if is_json_buffer(text) {
        // serde_json decides JSON's characters (Go's rules).
        return None;
    }
    let t = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut chars = t.chars().peekable();
    while let Some(c) = chars.next() {
        let bad = match c {
            '\r' => chars.peek() != Some(&'\n'),
            '\t' | '\n' => false,
            '\u{85}' | '\u{2028}' | '\u{2029}' | '\u{feff}' | '\u{fffe}' | '\u{ffff}' => true,
            c => c.is_control(),
        };
        if bad {
            return Some(c);
        }
    }
    None
}

/// The document as the JSON text the kubelet decodes (`json.Marshal` of the converted
/// object); a YAML plain scalar that may be a number is written as a string. Reading it back
/// with [`read`] gives the same entries: the fuzz target checks it.
pub fn to_json(doc: &Document) -> String {
    fn value(v: &Value) -> serde_json::Value {
        match v {
            Value::Null => serde_json::Value::Null,
            Value::Bool(b) => serde_json::Value::Bool(*b),
            Value::Str(s) | Value::Scalar(s) => serde_json::Value::String(s.clone()),
            Value::Num(n) => serde_json::from_str(n).unwrap_or(serde_json::Value::Null),
            Value::Seq(items) => serde_json::Value::Array(items.iter().map(value).collect()),
            Value::Map(m) => object(m),
        }
    }
    fn object(entries: &[Entry]) -> serde_json::Value {
        let mut out = serde_json::Map::new();
        for e in entries {
            out.insert(e.key.clone(), value(&e.value));
        }
        serde_json::Value::Object(out)
    }
    object(&doc.root).to_string()
}

#[cfg(test)]
mod tests;

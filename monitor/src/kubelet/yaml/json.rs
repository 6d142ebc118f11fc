//! A JSON buffer, as the kubelet's JSON serializer decodes it (sigs.k8s.io/json, a fork of
//! Go's encoding/json: `UnmarshalCaseSensitivePreserveInts`, and `UnmarshalStrict` with
//! `DisallowDuplicateFields` for the strict pass).
//!
//! serde_json checks the grammar (RFC 8259, as Go's scanner: white space is space, tab, LF
//! and CR only; nothing after the value), the escapes (`\uXXXX` included, so an escaped key
//! is the same key) and the numbers. Duplicate keys are kept in order: Go's decoder assigns
//! each in turn (the last wins) and its strict pass reports them. Where serde_json is
//! stricter than Go (a lone surrogate escape, which Go replaces with U+FFFD; a number out
//! of f64 range in an ignored field; nesting deeper than 128) the buffer is refused.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

use super::{Document, Entry, Format, ReadError, Value};

struct Node(Value);

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Node, E> {
        Ok(Node(Value::Bool(v)))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Node, E> {
        Ok(Node(Value::Num(v.to_string())))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Node, E> {
        Ok(Node(Value::Num(v.to_string())))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Node, E> {
        // Debug formatting keeps the fraction ("1.0"): a literal with a fraction or an
        // exponent is not an integer to Go's decoder.
        Ok(Node(Value::Num(format!("{v:?}"))))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Node, E> {
        Ok(Node(Value::Str(v.to_string())))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Node, E> {
        Ok(Node(Value::Str(v)))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Node, E> {
        Ok(Node(Value::Null))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut items = Vec::new();
        while let Some(Node(v)) = seq.next_element()? {
            items.push(v);
        }
        Ok(Node(Value::Seq(items)))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut entries = Vec::new();
        while let Some((key, Node(value))) = map.next_entry::<String, Node>()? {
            entries.push(Entry {
                written: value.written(),
                key,
                value,
                line: 0,
            });
        }
        Ok(Node(Value::Map(entries)))
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Node, D::Error> {
        d.deserialize_any(NodeVisitor)
    }
}

/// Reads a JSON buffer (one that [`super::is_json_buffer`] recognizes).
pub fn read(text: &str) -> Result<Document, ReadError> {
    let Node(value) = serde_json::from_str::<Node>(text).map_err(|e| {
        let msg = e.to_string();
        let line = Some(e.line()).filter(|l| *l > 0);
        if msg.contains("recursion limit")
            || msg.contains("surrogate")
            || msg.contains("number out of range")
        {
            ReadError::refused(
                line,
                format!("JSON that Go's decoder may read differently: {msg}"),
            )
        } else {
            ReadError::invalid(
                line,
                format!(
                    "invalid JSON (a buffer starting with '{{' is decoded as strict JSON, not YAML): {msg}"
                ),
            )
        }
    })?;
    let Value::Map(mut root) = value else {
        return Err(ReadError::invalid(None, "the JSON value is not an object"));
    };
    for (e, line) in root.iter_mut().zip(top_level_key_lines(text)) {
        e.line = line;
    }
    let mut strict_errors = Vec::new();
    duplicates(&root, "", &mut strict_errors);
    Ok(Document {
        format: Format::Json,
        root,
        strict_errors,
    })
}

/// Duplicate keys at any depth (what `DisallowDuplicateFields` reports).
fn duplicates(entries: &[Entry], path: &str, out: &mut Vec<String>) {
    for (i, e) in entries.iter().enumerate() {
        if entries[..i].iter().any(|p| p.key == e.key) {
            let line = if e.line > 0 {
                format!("line {}: ", e.line)
            } else {
                String::new()
            };
            out.push(format!("{line}duplicate field {path}{:?}", e.key));
        }
        let sub = format!("{path}{:?}.", e.key);
        walk(&e.value, &sub, out);
    }
}

fn walk(v: &Value, path: &str, out: &mut Vec<String>) {
    match v {
        Value::Map(m) => duplicates(m, path, out),
        Value::Seq(items) => items.iter().for_each(|i| walk(i, path, out)),
        _ => {}
    }
}

/// The 1-based lines of the top-level object's keys, in order, in text already known to be
/// valid JSON.
fn top_level_key_lines(text: &str) -> Vec<usize> {
    let mut lines = Vec::new();
    let (mut line, mut depth) = (1, 0usize);
    let mut chars = text.chars().peekable();
    // Whether the next string at depth 1 is a key (after `{` or `,`).
    let mut expect_key = false;
    while let Some(c) = chars.next() {
        match c {
            '\n' => line += 1,
            '{' => {
                depth += 1;
                expect_key = depth == 1;
            }
            '[' => depth += 1,
            '}' | ']' => depth = depth.saturating_sub(1),
            ',' => expect_key = depth == 1,
            '"' => {
                if depth == 1 && expect_key {
                    lines.push(line);
                    expect_key = false;
                }
                // Skip the string (JSON strings hold no raw line break).
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => {
                            chars.next();
                        }
                        '"' => break,
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    lines
}

//! go-yaml v2's decoder (`decode.go` `decoder.unmarshal` into an `interface{}`), then
//! sigs.k8s.io/yaml's `convertToJSONableObject` and `json.Marshal`, over the node tree that
//! [`super::parse`] accepted.
//!
//! - A mapping becomes a Go `map[interface{}]interface{}`: its keys are set in document
//!   order and a later key replaces an earlier one (`setMapIndex`; the strict decode
//!   reports it instead: "key already set in map", at any depth).
//! - A merge key `<<` (a plain, untagged `<<`: `isMerge`) sets the merged mapping's keys into
//!   the same map at that point (`decoder.merge`): so a merged key replaces an explicit key
//!   written before the `<<` and is replaced by one written after it. A sequence of mappings
//!   is merged from its last element to its first (earlier ones win). Anything else as a
//!   merge value is go-yaml's error ("map merge requires map or sequence of maps").
//! - Aliases decode their anchor's node again; go-yaml counts the nodes decoded through
//!   aliases and fails on "excessive aliasing" only beyond 100 of them (and a ratio), so
//!   more than 100 is refused here.
//! - `json.Marshal` sorts the keys of every object.

use super::parse::Node;
use super::scalar::{self, Style, Tag};
use super::{Document, Entry, Format, ReadError, Value};

const MAX_ALIASED: usize = 100;

struct Decoder {
    alias_depth: usize,
    aliased: usize,
    strict_errors: Vec<String>,
}

/// The document the kubelet decodes from go-yaml's first document.
pub fn to_document(node: Option<Node>) -> Result<Document, ReadError> {
    let Some(node) = node else {
        return Err(ReadError::invalid(
            None,
            "the document is empty: no apiVersion and kind",
        ));
    };
    let Node::Map(pairs, _) = &node else {
        return Err(ReadError::invalid(
            Some(node.line()),
            "the first YAML document is not a mapping (a KubeletConfiguration object)",
        ));
    };
    let mut d = Decoder {
        alias_depth: 0,
        aliased: 0,
        strict_errors: Vec::new(),
    };
    d.count()?;
    let mut root = Vec::new();
    d.map_into(pairs, &mut root)?;
    sort(&mut root);
    Ok(Document {
        format: Format::Yaml,
        root,
        strict_errors: d.strict_errors,
    })
}

fn sort(entries: &mut [Entry]) {
    entries.sort_by(|a, b| a.key.as_bytes().cmp(b.key.as_bytes()));
    for e in entries.iter_mut() {
        sort_value(&mut e.value);
    }
}

fn sort_value(v: &mut Value) {
    match v {
        Value::Map(m) => sort(m),
        Value::Seq(items) => items.iter_mut().for_each(sort_value),
        _ => {}
    }
}

fn written(n: &Node) -> String {
    match n {
        Node::Scalar(s) => s.text.clone(),
        Node::Seq(..) => "[...]".into(),
        Node::Map(..) => "{...}".into(),
        Node::Alias(t, _) => written(t),
    }
}

fn want_map(line: usize) -> ReadError {
    ReadError::invalid(
        Some(line),
        "map merge requires map or sequence of maps as the value: go-yaml v2 fails",
    )
}

impl Decoder {
    /// One `decoder.unmarshal` call.
    fn count(&mut self) -> Result<(), ReadError> {
        if self.alias_depth > 0 {
            self.aliased += 1;
            if self.aliased > MAX_ALIASED {
                return Err(ReadError::refused(
                    None,
                    "more than 100 nodes decoded through aliases (go-yaml v2 fails on excessive aliasing beyond that, depending on the document's size)",
                ));
            }
        }
        Ok(())
    }

    fn value(&mut self, n: &Node) -> Result<Value, ReadError> {
        self.count()?;
        match n {
            Node::Scalar(s) => scalar::resolve(s),
            Node::Alias(target, _) => {
                self.alias_depth += 1;
                let v = self.value(target);
                self.alias_depth -= 1;
                v
            }
            Node::Seq(items, _) => Ok(Value::Seq(
                items
                    .iter()
                    .map(|i| self.value(i))
                    .collect::<Result<_, _>>()?,
            )),
            Node::Map(pairs, _) => {
                let mut out = Vec::new();
                self.map_into(pairs, &mut out)?;
                Ok(Value::Map(out))
            }
        }
    }

    /// `decoder.mapping` into an existing Go map.
    fn map_into(
        &mut self,
        pairs: &[(scalar::Scalar, Node)],
        out: &mut Vec<Entry>,
    ) -> Result<(), ReadError> {
        for (k, v) in pairs {
            if k.style == Style::Plain && k.tag == Tag::None && k.text == "<<" {
                self.merge(v, out)?;
                continue;
            }
            self.count()?;
            let key = scalar::key_string(k)?;
            let value = self.value(v)?;
            let entry = Entry {
                key,
                value,
                line: k.line,
                written: written(v),
            };
            match out.iter_mut().find(|e| e.key == entry.key) {
                Some(old) => {
                    self.strict_errors.push(format!(
                        "line {}: key {:?} already set in map (first at line {})",
                        v.line(),
                        entry.key,
                        old.line
                    ));
                    *old = entry;
                }
                None => out.push(entry),
            }
        }
        Ok(())
    }

    /// `decoder.merge`.
    fn merge(&mut self, v: &Node, out: &mut Vec<Entry>) -> Result<(), ReadError> {
        match v {
            Node::Map(pairs, _) => {
                self.count()?;
                self.map_into(pairs, out)
            }
            Node::Alias(target, line) => self.merge_alias(target, *line, out),
            Node::Seq(items, _) => {
                for item in items.iter().rev() {
                    match item {
                        Node::Map(pairs, _) => {
                            self.count()?;
                            self.map_into(pairs, out)?;
                        }
                        Node::Alias(target, line) => self.merge_alias(target, *line, out)?,
                        other => return Err(want_map(other.line())),
                    }
                }
                Ok(())
            }
            Node::Scalar(s) => Err(want_map(s.line)),
        }
    }

    fn merge_alias(
        &mut self,
        target: &Node,
        line: usize,
        out: &mut Vec<Entry>,
    ) -> Result<(), ReadError> {
        let Node::Map(pairs, _) = target else {
            return Err(want_map(line));
        };
        self.count()?;
        self.alias_depth += 1;
        let r = self.count().and_then(|()| self.map_into(pairs, out));
        self.alias_depth -= 1;
        r
    }
}

//! The allowlist: the YAML that kubelet-drift reads, into go-yaml v2's node tree for the first
//! document. Everything else is refused.
//!
//! Accepted (each checked against go-yaml v2 v2.4.0 and sigs.k8s.io/yaml):
//! - UTF-8 text; a byte-order mark only as the very first character (go-yaml skips it,
//!   `readerc.go` `yaml_parser_determine_encoding`). Lines end with LF or CRLF.
//! - Blank lines and comments (`#` at the start of a line's content or after a blank).
//!   A tab only inside a comment, inside a quoted scalar, or trailing a value.
//! - Before the document: comments and one `---` line (optionally with a comment).
//! - The document: a block mapping at column 0. It ends at the end of the text or at a
//!   `---` or `...` line at column 0: go-yaml v2's `Unmarshal` reads the first document only.
//! - Block mappings with single-line implicit keys (plain or quoted, up to 1000 bytes,
//!   followed by `:` and a blank or the end of line), block sequences (`- `), compact
//!   mappings and sequences in sequence entries, and a sequence at its key's indentation.
//! - Single-line scalars: plain, 'single-quoted', "double-quoted" (go-yaml's escapes).
//! - Single-line flow collections `[a, b]`, `{a: b}` (no trailing comma, `:` then a blank).
//! - Anchors `&name` on values and aliases `*name` as values, at most 100 nodes decoded
//!   through aliases (go-yaml v2 refuses "excessive aliasing" above a ratio that needs more
//!   than 100); an alias to its own enclosing node is go-yaml's error.
//! - Merge keys `<<` (plain) with a mapping, an alias to one, or a sequence of those.
//! - Tags `!!str`, `!!bool`, `!!null`, `!` and their verbatim forms on scalar values.
//!
//! Refused, because their meaning is not reproduced here: directives (`%YAML`, `%TAG`), any
//! other tag (`!!binary`, `!!int`, `!!float`, `!!merge`, `!!map`, local tags, tags on keys or
//! collections), explicit keys (`?`), non-scalar and non-string keys (a plain key that go-yaml
//! reads as a boolean, null or number), block scalars (`|`, `>`), multi-line scalars and flow
//! collections, a tab used as indentation or separator, the YAML 1.1 line breaks NEL U+0085,
//! LS U+2028 and PS U+2029 (go-yaml ends a line there, even inside a comment), a lone CR, a
//! byte-order mark after the start, control characters, and a document that does not start
//! at column 0.

use std::collections::HashMap;
use std::rc::Rc;

use super::ReadError;
use super::scalar::{self, Scalar, Stop, Style, Tag};

/// go-yaml v2's node tree (decode.go `node`), with scalar keys only.
#[derive(Clone, Debug, PartialEq)]
pub enum Node {
    Scalar(Scalar),
    Seq(Vec<Node>, usize),
    Map(Vec<(Scalar, Node)>, usize),
    Alias(Rc<Node>, usize),
}

impl Node {
    pub fn line(&self) -> usize {
        match self {
            Node::Scalar(s) => s.line,
            Node::Seq(_, l) | Node::Map(_, l) | Node::Alias(_, l) => *l,
        }
    }
}

const MAX_KEY: usize = 1000;
const MAX_DEPTH: usize = 100;

fn refuse(line: usize, what: impl Into<String>) -> ReadError {
    ReadError::refused(Some(line), what)
}

/// Splits the text into lines after the character checks. Returns 0-based lines.
fn lines(text: &str) -> Result<Vec<&str>, ReadError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut out = Vec::new();
    for (n, raw) in text.split('\n').enumerate() {
        let l = raw.strip_suffix('\r').unwrap_or(raw);
        for c in l.chars() {
            let what = match c {
                '\t' => continue,
                '\r' => "a carriage return not followed by a line feed (a line break to go-yaml)",
                '\u{85}' => {
                    "NEL (U+0085), a line break in YAML 1.1: go-yaml v2 ends the line there"
                }
                '\u{2028}' => {
                    "LS (U+2028), a line break in YAML 1.1: go-yaml v2 ends the line there"
                }
                '\u{2029}' => {
                    "PS (U+2029), a line break in YAML 1.1: go-yaml v2 ends the line there"
                }
                '\u{feff}' => "a byte-order mark after the start of the text",
                c if c < ' ' || ('\u{7f}'..='\u{9f}').contains(&c) => "a control character",
                '\u{fffe}' | '\u{ffff}' => "a non-character",
                _ => continue,
            };
            return Err(refuse(n + 1, format!("{what} (U+{:04X})", c as u32)));
        }
        out.push(l);
    }
    Ok(out)
}

/// A line that is blank or only a comment. A tab before the content is refused (go-yaml
/// refuses some, e.g. a tab starting a line inside a plain scalar's range).
fn is_blank_line(l: &str) -> bool {
    let t = l.trim_start_matches(' ');
    t.is_empty() || t.starts_with('#')
}

/// `---` or `...` at column 0 followed by a blank or the end (scannerc.go document indicators).
fn is_doc_marker(l: &str) -> bool {
    (l.starts_with("---") || l.starts_with("..."))
        && matches!(l.as_bytes().get(3), None | Some(b' ' | b'\t'))
}

fn indent(l: &str) -> usize {
    l.len() - l.trim_start_matches(' ').len()
}

/// Where a value sits: a mapping value or a sequence entry.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Ctx {
    MapValue,
    SeqEntry,
}

#[derive(Default)]
struct Props {
    anchor: Option<String>,
    tag: Option<Tag>,
}

struct Parser<'a> {
    lines: Vec<&'a str>,
    /// The current line (0-based).
    i: usize,
    /// The first line after the first document.
    end: usize,
    anchors: HashMap<String, Rc<Node>>,
    /// Anchors whose node is being parsed (go-yaml registers an anchor when its node starts).
    open: Vec<String>,
    depth: usize,
}

/// Parses the first document; `Ok(None)` when it is empty.
pub fn first_document(text: &str) -> Result<Option<Node>, ReadError> {
    let lines = lines(text)?;
    let mut p = Parser {
        end: lines.len(),
        lines,
        i: 0,
        anchors: HashMap::new(),
        open: Vec::new(),
        depth: 0,
    };
    p.preamble()?;
    let Some(first) = p.next_content() else {
        return Ok(None);
    };
    let l = p.lines[first];
    if indent(l) != 0 {
        return Err(refuse(
            first + 1,
            "a document that does not start at column 0",
        ));
    }
    let node = p.block_node(0, 0)?;
    if let Some(j) = p.next_content() {
        return Err(refuse(
            j + 1,
            "content after the document's top-level node that go-yaml would read otherwise",
        ));
    }
    Ok(Some(node))
}

impl<'a> Parser<'a> {
    /// Comments, blank lines and at most one `---` before the document; directives refused.
    fn preamble(&mut self) -> Result<(), ReadError> {
        let mut seen_start = false;
        while self.i < self.lines.len() {
            let l = self.lines[self.i];
            if l.starts_with('%') {
                return Err(refuse(self.i + 1, "a directive (%YAML, %TAG)"));
            }
            if is_blank_line(l) {
                if l.contains('\t') && !l.trim_start_matches(' ').starts_with('#') {
                    return Err(refuse(self.i + 1, "a tab in a blank line"));
                }
                self.i += 1;
                continue;
            }
            if l.starts_with("---") && !seen_start && is_doc_marker(l) {
                if !scalar::rest_is_empty(l, 3) {
                    return Err(refuse(self.i + 1, "content on the --- line"));
                }
                seen_start = true;
                self.i += 1;
                continue;
            }
            break;
        }
        // The document ends at the next marker at column 0.
        self.end = (self.i..self.lines.len())
            .find(|&j| is_doc_marker(self.lines[j]))
            .unwrap_or(self.lines.len());
        Ok(())
    }

    /// Skips blank and comment lines; the next content line of the document, if any.
    fn next_content(&mut self) -> Option<usize> {
        while self.i < self.end {
            let l = self.lines[self.i];
            if !is_blank_line(l) {
                return Some(self.i);
            }
            self.i += 1;
        }
        None
    }

    /// Checks a content line for a tab in its indentation.
    fn content_line(&self, j: usize) -> Result<&'a str, ReadError> {
        let l = self.lines[j];
        if l[indent(l)..].starts_with('\t') {
            return Err(refuse(j + 1, "a tab in the indentation"));
        }
        Ok(l)
    }

    /// A block node whose first token is at column `col` of the current line.
    fn block_node(&mut self, col: usize, parent: usize) -> Result<Node, ReadError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(refuse(self.i + 1, "nesting deeper than 100"));
        }
        let l = self.content_line(self.i)?;
        let r = if is_seq_entry(l, col) {
            self.block_seq(col)
        } else if key_at(l, col, self.i + 1)?.is_some() {
            self.block_map(col)
        } else {
            let (node, _) = self.inline_value(col, parent, Props::default())?;
            Ok(node)
        };
        self.depth -= 1;
        r
    }

    /// Moves to the next entry of the block collection at column `col`: false at its end (no
    /// more content, a line indented less, or one at `col` that `ends` gives to the parent), an
    /// error for a line indented deeper than its `entries`.
    fn next_entry(
        &mut self,
        col: usize,
        ends: impl Fn(&str) -> bool,
        entries: &str,
    ) -> Result<bool, ReadError> {
        let Some(j) = self.next_content() else {
            return Ok(false);
        };
        let l = self.content_line(j)?;
        let ind = indent(l);
        if ind < col || (ind == col && ends(l)) {
            return Ok(false);
        }
        if ind > col {
            return Err(refuse(
                j + 1,
                format!(
                    "a line indented deeper than its {entries} (a multi-line scalar, or invalid)"
                ),
            ));
        }
        Ok(true)
    }

    /// A block mapping whose first key is at column `col` of the current line.
    fn block_map(&mut self, col: usize) -> Result<Node, ReadError> {
        let start = self.i + 1;
        let mut pairs = Vec::new();
        let mut first = true;
        loop {
            if !first && !self.next_entry(col, |_| false, "mapping's keys")? {
                break;
            }
            first = false;
            let l = self.lines[self.i];
            if is_seq_entry(l, col) {
                return Err(refuse(self.i + 1, "a sequence entry among mapping keys"));
            }
            let Some((key, after)) = key_at(l, col, self.i + 1)? else {
                return Err(refuse(
                    self.i + 1,
                    "a line in a block mapping that is not a single-line `key: value`",
                ));
            };
            let value = self.value_after(after, col, Ctx::MapValue)?;
            pairs.push((key, value));
        }
        Ok(Node::Map(pairs, start))
    }

    /// A block sequence whose first `-` is at column `col` of the current line.
    fn block_seq(&mut self, col: usize) -> Result<Node, ReadError> {
        let start = self.i + 1;
        let mut items = Vec::new();
        let mut first = true;
        loop {
            if !first && !self.next_entry(col, |l| !is_seq_entry(l, col), "sequence's entries")? {
                break;
            }
            first = false;
            let value = self.value_after(col + 1, col, Ctx::SeqEntry)?;
            items.push(value);
        }
        Ok(Node::Seq(items, start))
    }

    /// The value after a `:` or `-` indicator ending at byte `pos` of the current line; the
    /// enclosing collection's indentation is `parent`.
    fn value_after(&mut self, pos: usize, parent: usize, ctx: Ctx) -> Result<Node, ReadError> {
        let line_no = self.i + 1;
        let l = self.lines[self.i];
        let rest = &l[pos..];
        let skipped = rest.len() - rest.trim_start_matches(' ').len();
        let mut p = pos + skipped;
        if skipped == 0 && p < l.len() {
            return Err(refuse(line_no, "no space after an indicator"));
        }
        if l[p..].starts_with('\t') {
            return Err(refuse(line_no, "a tab after an indicator"));
        }
        let (props, q) = properties(l, p, line_no)?;
        p = q;
        if scalar::rest_is_empty(l, p) {
            if l[p..].trim_start_matches(' ').starts_with('\t') {
                return Err(refuse(line_no, "a tab after an indicator"));
            }
            return self.value_below(parent, ctx, props, line_no);
        }
        let c = l[p..].chars().next().unwrap_or(' ');
        let next_is_blank = matches!(l.as_bytes().get(p + 1), None | Some(b' '));
        if c == '-' && next_is_blank {
            if ctx == Ctx::MapValue || props.anchor.is_some() || props.tag.is_some() {
                return Err(refuse(line_no, "a block sequence on its key's line"));
            }
            return self.nested(p, parent, |s| s.block_seq(p));
        }
        if key_at(l, p, line_no)?.is_some() {
            if ctx == Ctx::MapValue || props.anchor.is_some() || props.tag.is_some() {
                return Err(refuse(
                    line_no,
                    "a mapping on its key's line (`a: b: c`), or properties on a key",
                ));
            }
            return self.nested(p, parent, |s| s.block_map(p));
        }
        let (node, _) = self.inline_value(p, parent, props)?;
        Ok(node)
    }

    fn nested(
        &mut self,
        _col: usize,
        _parent: usize,
        f: impl FnOnce(&mut Self) -> Result<Node, ReadError>,
    ) -> Result<Node, ReadError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(refuse(self.i + 1, "nesting deeper than 100"));
        }
        let r = f(self);
        self.depth -= 1;
        r
    }

    /// A value on the lines below its indicator (or an empty scalar).
    fn value_below(
        &mut self,
        parent: usize,
        ctx: Ctx,
        props: Props,
        line_no: usize,
    ) -> Result<Node, ReadError> {
        self.i += 1;
        if props.tag.is_some() {
            return Err(refuse(
                line_no,
                "a tag on a value below its key, or on an empty value",
            ));
        }
        let below = self.next_content().map(|j| (j, self.lines[j]));
        let node = match below {
            Some((j, l))
                if indent(l) > parent
                    || (ctx == Ctx::MapValue && indent(l) == parent && is_seq_entry(l, parent)) =>
            {
                self.content_line(j)?;
                if let Some(a) = &props.anchor {
                    self.open.push(a.clone());
                }
                let n = self.block_node(indent(l), parent);
                if props.anchor.is_some() {
                    self.open.pop();
                }
                let n = n?;
                if !matches!(n, Node::Seq(..) | Node::Map(..)) {
                    return Err(refuse(j + 1, "a scalar on the line below its key"));
                }
                n
            }
            _ => Node::Scalar(Scalar {
                text: String::new(),
                style: Style::Plain,
                tag: Tag::None,
                line: line_no,
            }),
        };
        self.register(props.anchor, &node);
        Ok(node)
    }

    fn register(&mut self, anchor: Option<String>, node: &Node) {
        if let Some(a) = anchor {
            self.anchors.insert(a, Rc::new(node.clone()));
        }
    }

    /// A single-line value at byte `pos` of the current line (a scalar, a flow collection
    /// or an alias), then the end of the line; the next content line must not be indented
    /// deeper than `parent` (it would continue a plain scalar, or be invalid).
    fn inline_value(
        &mut self,
        pos: usize,
        parent: usize,
        props: Props,
    ) -> Result<(Node, usize), ReadError> {
        let line_no = self.i + 1;
        let l = self.lines[self.i];
        let (node, end) = self.flow_node(l, pos, line_no, false, props)?;
        if !scalar::rest_is_empty(l, end) {
            return Err(refuse(line_no, "unexpected text after a value"));
        }
        self.i += 1;
        if let Some(j) = self.next_content()
            && indent(self.lines[j]) > parent
        {
            return Err(refuse(
                j + 1,
                "a line indented below a value (a multi-line scalar, or invalid)",
            ));
        }
        Ok((node, end))
    }

    /// A node on one line at `pos`: properties, then an alias, a quoted or plain scalar, or a
    /// flow collection. Returns the node and the byte after it.
    fn flow_node(
        &mut self,
        l: &str,
        pos: usize,
        line: usize,
        flow: bool,
        outer: Props,
    ) -> Result<(Node, usize), ReadError> {
        let (mut props, p) = properties(l, pos, line)?;
        if outer.anchor.is_some() {
            if props.anchor.is_some() {
                return Err(refuse(line, "two anchors on one node"));
            }
            props.anchor = outer.anchor;
        }
        if outer.tag.is_some() {
            if props.tag.is_some() {
                return Err(refuse(line, "two tags on one node"));
            }
            props.tag = outer.tag;
        }
        let c = l[p..].chars().next();
        let next = c.and_then(|c| l[p + c.len_utf8()..].chars().next());
        let anchor = props.anchor.clone();
        if let Some(a) = &anchor {
            self.open.push(a.clone());
        }
        let r = self.flow_node_body(l, p, line, flow, &props, c, next);
        if anchor.is_some() {
            self.open.pop();
        }
        let (node, end) = r?;
        self.register(anchor, &node);
        Ok((node, end))
    }

    #[allow(clippy::too_many_arguments)]
    fn flow_node_body(
        &mut self,
        l: &str,
        p: usize,
        line: usize,
        flow: bool,
        props: &Props,
        c: Option<char>,
        next: Option<char>,
    ) -> Result<(Node, usize), ReadError> {
        let scalar = |text: String, style: Style| {
            Node::Scalar(Scalar {
                text,
                style,
                tag: props.tag.unwrap_or(Tag::None),
                line,
            })
        };
        let collection_props = || {
            if props.tag.is_some() {
                Err(refuse(line, "a tag on a collection"))
            } else {
                Ok(())
            }
        };
        match c {
            Some('*') => {
                if props.anchor.is_some() || props.tag.is_some() {
                    return Err(refuse(line, "properties on an alias"));
                }
                let (name, end) = anchor_name(l, p + 1, line, flow)?;
                if self.open.contains(&name) {
                    return Err(ReadError::invalid(
                        Some(line),
                        format!(
                            "the alias *{name} is inside its own anchor: go-yaml v2 fails (anchor value contains itself)"
                        ),
                    ));
                }
                let Some(target) = self.anchors.get(&name) else {
                    return Err(ReadError::invalid(
                        Some(line),
                        format!("unknown anchor '{name}' referenced: go-yaml v2 fails"),
                    ));
                };
                Ok((Node::Alias(target.clone(), line), end))
            }
            Some('"') => {
                let (s, end) = scalar::scan_double(l, p, line)?;
                Ok((scalar(s, Style::Quoted), end))
            }
            Some('\'') => {
                let (s, end) = scalar::scan_single(l, p, line)?;
                Ok((scalar(s, Style::Quoted), end))
            }
            Some('[') => {
                collection_props()?;
                self.flow_seq(l, p, line)
            }
            Some('{') => {
                collection_props()?;
                self.flow_map(l, p, line)
            }
            Some(c) if scalar::plain_start(c, next, flow) => {
                let (s, end, stop) = scalar::scan_plain(l, p, flow, line)?;
                if let Stop::Colon(_) = stop {
                    return Err(refuse(line, "a `:` value indicator inside a value"));
                }
                Ok((scalar(s, Style::Plain), end))
            }
            Some(c) => Err(refuse(
                line,
                format!(
                    "a value starting with {c:?} (block scalar, explicit key, reserved indicator or other construct outside the allowlist)"
                ),
            )),
            None => Err(refuse(line, "an empty value after properties")),
        }
    }

    fn flow_seq(&mut self, l: &str, pos: usize, line: usize) -> Result<(Node, usize), ReadError> {
        let mut items = Vec::new();
        let end = self.flow_collection(
            l,
            pos,
            line,
            (']', "sequence"),
            |me, p| {
                let (node, end) = me.flow_node(l, p, line, true, Props::default())?;
                items.push(node);
                Ok(end)
            },
            |c| {
                refuse(
                    line,
                    format!(
                        "{c:?} in a flow sequence (single-pair mappings and other forms are outside the allowlist)"
                    ),
                )
            },
        )?;
        Ok((Node::Seq(items, line), end))
    }

    fn flow_map(&mut self, l: &str, pos: usize, line: usize) -> Result<(Node, usize), ReadError> {
        let mut pairs = Vec::new();
        let end = self.flow_collection(
            l,
            pos,
            line,
            ('}', "mapping"),
            |me, p| {
                let Some((key, after)) = flow_key_at(l, p, line)? else {
                    return Err(refuse(
                        line,
                        "a flow mapping entry that is not `key: value`",
                    ));
                };
                let v = skip_spaces(l, after, line)?;
                if matches!(l[v..].chars().next(), None | Some(',' | '}')) {
                    return Err(refuse(line, "an empty value in a flow mapping"));
                }
                let (node, end) = me.flow_node(l, v, line, true, Props::default())?;
                pairs.push((key, node));
                Ok(end)
            },
            |c| refuse(line, format!("{c:?} in a flow mapping")),
        )?;
        Ok((Node::Map(pairs, line), end))
    }

    /// What flow sequences and mappings share: the opening bracket at `pos`, entries read by
    /// `entry` (from where one starts, to where it ends) separated by commas with no trailing
    /// one, the closing bracket (`close.0`; `close.1` names the collection), all on this line
    /// and at most [`MAX_DEPTH`] deep; `other` refuses any other character after an entry.
    /// Returns the position after the closing bracket.
    fn flow_collection(
        &mut self,
        l: &str,
        pos: usize,
        line: usize,
        (close, what): (char, &str),
        mut entry: impl FnMut(&mut Self, usize) -> Result<usize, ReadError>,
        other: impl Fn(char) -> ReadError,
    ) -> Result<usize, ReadError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(refuse(line, "nesting deeper than 100"));
        }
        let mut p = skip_spaces(l, pos + 1, line)?;
        if l[p..].starts_with(close) {
            self.depth -= 1;
            return Ok(p + 1);
        }
        loop {
            let end = entry(self, p)?;
            p = skip_spaces(l, end, line)?;
            match l[p..].chars().next() {
                Some(',') => {
                    p = skip_spaces(l, p + 1, line)?;
                    if l[p..].chars().next().is_none_or(|c| c == close) {
                        return Err(refuse(line, format!("a trailing comma in a flow {what}")));
                    }
                }
                Some(c) if c == close => break,
                None => {
                    return Err(refuse(
                        line,
                        format!("a flow {what} that continues on the next line"),
                    ));
                }
                Some(c) => return Err(other(c)),
            }
        }
        self.depth -= 1;
        Ok(p + 1)
    }
}

fn skip_spaces(l: &str, pos: usize, line: usize) -> Result<usize, ReadError> {
    let rest = &l[pos..];
    let t = rest.trim_start_matches(' ');
    if t.starts_with('\t') {
        return Err(refuse(line, "a tab inside a flow collection"));
    }
    Ok(pos + rest.len() - t.len())
}

/// `- ` (or a lone `-`) at column `col`.
fn is_seq_entry(l: &str, col: usize) -> bool {
    l.get(col..)
        .is_some_and(|r| r == "-" || r.starts_with("- "))
}

/// Node properties at `pos`: an anchor and a tag in either order, each followed by a space
/// or the end of the line. Returns them and the byte of what follows.
fn properties(l: &str, mut pos: usize, line: usize) -> Result<(Props, usize), ReadError> {
    let mut props = Props::default();
    loop {
        match l[pos..].chars().next() {
            Some('&') if props.anchor.is_none() => {
                let (name, end) = anchor_name(l, pos + 1, line, false)?;
                props.anchor = Some(name);
                pos = end;
            }
            Some('!') if props.tag.is_none() => {
                let end = l[pos..].find(' ').map(|i| pos + i).unwrap_or(l.len());
                props.tag = Some(tag(&l[pos..end], line)?);
                pos = end;
            }
            _ => return Ok((props, pos)),
        }
        let t = l[pos..].trim_start_matches(' ');
        if t.len() == l.len() - pos && !t.is_empty() {
            return Err(refuse(line, "a node property not followed by a space"));
        }
        pos = l.len() - t.len();
    }
}

/// The tags the allowlist accepts, as go-yaml v2's scanner and parser spell them.
fn tag(t: &str, line: usize) -> Result<Tag, ReadError> {
    match t {
        "!!str" | "!<tag:yaml.org,2002:str>" => Ok(Tag::Str),
        "!!bool" | "!<tag:yaml.org,2002:bool>" => Ok(Tag::Bool),
        "!!null" | "!<tag:yaml.org,2002:null>" => Ok(Tag::Null),
        "!" => Ok(Tag::NonSpecific),
        _ => Err(refuse(
            line,
            format!("the tag {t} (only !!str, !!bool, !!null and ! are read)"),
        )),
    }
}

/// An anchor or alias name (scannerc.go `yaml_parser_scan_anchor`: letters, digits, `_`, `-`),
/// which must be followed by a space, the end of the line, or in flow context `,]}`.
fn anchor_name(l: &str, pos: usize, line: usize, flow: bool) -> Result<(String, usize), ReadError> {
    let rest = &l[pos..];
    let n = rest
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
        .unwrap_or(rest.len());
    let after = rest[n..].chars().next();
    let ok_after = match after {
        None | Some(' ') => true,
        Some(',' | ']' | '}') => flow,
        _ => false,
    };
    if n == 0 || !ok_after {
        return Err(refuse(
            line,
            "an anchor or alias name outside [A-Za-z0-9_-] or not followed by a space",
        ));
    }
    Ok((rest[..n].to_string(), pos + n))
}

/// An implicit key at `pos` of a block line: a single-line plain or quoted scalar followed by
/// `:` and a blank or the end of the line. Returns the key and the byte after the `:`.
fn key_at(l: &str, pos: usize, line: usize) -> Result<Option<(Scalar, usize)>, ReadError> {
    let c = l[pos..].chars().next();
    let next = c.and_then(|c| l[pos + c.len_utf8()..].chars().next());
    let (text, style, end) = match c {
        Some('"') => match scalar::scan_double(l, pos, line) {
            Ok((s, e)) => (s, Style::Quoted, e),
            Err(_) => return Ok(None),
        },
        Some('\'') => match scalar::scan_single(l, pos, line) {
            Ok((s, e)) => (s, Style::Quoted, e),
            Err(_) => return Ok(None),
        },
        Some(c) if scalar::plain_start(c, next, false) => {
            let (s, _, stop) = scalar::scan_plain(l, pos, false, line)?;
            match stop {
                Stop::Colon(j) => {
                    let key = Scalar {
                        text: s,
                        style: Style::Plain,
                        tag: Tag::None,
                        line,
                    };
                    return Ok(Some((check_key(key, line)?, j + 1)));
                }
                _ => return Ok(None),
            }
        }
        _ => return Ok(None),
    };
    let t = l[end..].trim_start_matches(' ');
    let colon = l.len() - t.len();
    if t.starts_with(':') && matches!(t.as_bytes().get(1), None | Some(b' ' | b'\t')) {
        let key = Scalar {
            text,
            style,
            tag: Tag::None,
            line,
        };
        return Ok(Some((check_key(key, line)?, colon + 1)));
    }
    Ok(None)
}

fn check_key(key: Scalar, line: usize) -> Result<Scalar, ReadError> {
    if key.text.len() > MAX_KEY {
        return Err(refuse(
            line,
            "a key longer than 1000 bytes (go-yaml's simple-key limit is 1024 characters)",
        ));
    }
    Ok(key)
}

/// A key in a flow mapping: a quoted or plain scalar, then `: `.
fn flow_key_at(l: &str, pos: usize, line: usize) -> Result<Option<(Scalar, usize)>, ReadError> {
    let c = l[pos..].chars().next();
    let next = c.and_then(|c| l[pos + c.len_utf8()..].chars().next());
    let (text, style, end) = match c {
        Some('"') => {
            let (s, e) = scalar::scan_double(l, pos, line)?;
            (s, Style::Quoted, e)
        }
        Some('\'') => {
            let (s, e) = scalar::scan_single(l, pos, line)?;
            (s, Style::Quoted, e)
        }
        Some(c) if scalar::plain_start(c, next, true) => {
            let (s, e, _) = scalar::scan_plain(l, pos, true, line)?;
            (s, Style::Plain, e)
        }
        _ => return Ok(None),
    };
    let p = skip_spaces(l, end, line)?;
    if l[p..].starts_with(": ") {
        let key = Scalar {
            text,
            style,
            tag: Tag::None,
            line,
        };
        return Ok(Some((check_key(key, line)?, p + 1)));
    }
    Ok(None)
}

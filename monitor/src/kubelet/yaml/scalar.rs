//! Scalars: scanning one on a line (go-yaml v2 `scannerc.go`: `yaml_parser_scan_plain_scalar`,
//! `yaml_parser_scan_flow_scalar`) and resolving it (go-yaml v2 `resolve.go` `resolve`, and
//! `decode.go` `decoder.scalar` into an `interface{}`), for the scalars the allowlist accepts:
//! single-line plain, single-quoted and double-quoted scalars, untagged or tagged `!!str`,
//! `!!bool`, `!!null` or `!` (and the verbatim `!<tag:yaml.org,2002:...>` forms).

use super::{ReadError, Value};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Style {
    Plain,
    Quoted,
}

/// The tags the allowlist accepts, as go-yaml's parser expands them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tag {
    None,
    /// `!!str` = `tag:yaml.org,2002:str`.
    Str,
    /// `!!bool`.
    Bool,
    /// `!!null`.
    Null,
    /// `!`: the non-specific tag. go-yaml v2's parser makes it the tag `!`, which `resolve`
    /// does not know: the scalar stays a string (`! true` is the string "true").
    NonSpecific,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Scalar {
    pub text: String,
    pub style: Style,
    pub tag: Tag,
    /// 1-based line.
    pub line: usize,
}

/// resolve.go's table: the YAML 1.1 booleans go-yaml v2 knows.
pub fn yaml11_bool(s: &str) -> Option<bool> {
    match s {
        "y" | "Y" | "yes" | "Yes" | "YES" | "true" | "True" | "TRUE" | "on" | "On" | "ON" => {
            Some(true)
        }
        "n" | "N" | "no" | "No" | "NO" | "false" | "False" | "FALSE" | "off" | "Off" | "OFF" => {
            Some(false)
        }
        _ => None,
    }
}

fn yaml11_null(s: &str) -> bool {
    matches!(s, "" | "~" | "null" | "Null" | "NULL")
}

/// resolve.go's table: NaN and the infinities, which `json.Marshal` refuses.
fn yaml11_special_float(s: &str) -> bool {
    matches!(
        s,
        ".nan"
            | ".NaN"
            | ".NAN"
            | ".inf"
            | ".Inf"
            | ".INF"
            | "+.inf"
            | "+.Inf"
            | "+.INF"
            | "-.inf"
            | "-.Inf"
            | "-.INF"
    )
}

/// resolve.go's `resolveTable` hint: a first byte that may start a number or a timestamp.
fn may_be_number(s: &str) -> bool {
    matches!(s.as_bytes().first(), Some(b'0'..=b'9' | b'+' | b'-' | b'.'))
}

/// The value a scalar decodes to.
pub fn resolve(s: &Scalar) -> Result<Value, ReadError> {
    let line = Some(s.line);
    match (s.tag, s.style) {
        // decoder.scalar: an untagged quoted scalar is a string.
        (Tag::None, Style::Quoted) | (Tag::Str | Tag::NonSpecific, _) => {
            Ok(Value::Str(s.text.clone()))
        }
        (Tag::None, Style::Plain) => {
            if let Some(b) = yaml11_bool(&s.text) {
                Ok(Value::Bool(b))
            } else if yaml11_null(&s.text) {
                Ok(Value::Null)
            } else if yaml11_special_float(&s.text) {
                Err(ReadError::invalid(
                    line,
                    format!(
                        "{} is a YAML 1.1 NaN or infinity, which sigs.k8s.io/yaml cannot convert to JSON (json: unsupported value)",
                        s.text
                    ),
                ))
            } else if may_be_number(&s.text) {
                Ok(Value::Scalar(s.text.clone()))
            } else {
                // No hint, or a hint the map lookup already settled ("<<" included).
                Ok(Value::Str(s.text.clone()))
            }
        }
        // resolve() with a tag: the text is resolved as if plain, and anything but the
        // tag's own kind fails ("cannot decode !!str `x` as a !!bool").
        (Tag::Bool, _) => yaml11_bool(&s.text).map(Value::Bool).ok_or_else(|| {
            ReadError::invalid(
                line,
                format!("{:?} tagged !!bool is not a YAML 1.1 boolean: go-yaml v2 fails (cannot decode as a !!bool)", s.text),
            )
        }),
        (Tag::Null, _) => {
            if yaml11_null(&s.text) {
                Ok(Value::Null)
            } else {
                Err(ReadError::invalid(
                    line,
                    format!(
                        "{:?} tagged !!null is not null: go-yaml v2 fails (cannot decode as a !!null)",
                        s.text
                    ),
                ))
            }
        }
    }
}

/// A mapping key as sigs.k8s.io/yaml makes it a JSON key. Only keys that go-yaml resolves to
/// a string are accepted: a key it reads as a boolean, null or number becomes a different
/// string (`yes` -> "true", `0x10` -> "16"), or an error, through `convertToJSONableObject`.
pub fn key_string(s: &Scalar) -> Result<String, ReadError> {
    let line = Some(s.line);
    if s.tag != Tag::None {
        return Err(ReadError::refused(line, "a tagged mapping key"));
    }
    if s.style == Style::Quoted {
        return Ok(s.text.clone());
    }
    if yaml11_bool(&s.text).is_some() || yaml11_null(&s.text) || yaml11_special_float(&s.text) {
        return Err(ReadError::refused(
            line,
            format!(
                "the key {:?} is a YAML 1.1 boolean, null or float to go-yaml v2, not a string",
                s.text
            ),
        ));
    }
    if may_be_number(&s.text) {
        return Err(ReadError::refused(
            line,
            format!(
                "the plain key {:?} starts with a digit, sign or dot: go-yaml v2 may read it as a number",
                s.text
            ),
        ));
    }
    Ok(s.text.clone())
}

/// Where a plain scalar stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// End of line, or trailing white space / a comment.
    End,
    /// A `:` followed by a blank or the end of line (a value indicator), at this byte.
    Colon(usize),
    /// A flow indicator `,[]{}` at this byte (flow context only).
    Flow(usize),
}

fn refuse_at(line: usize, what: impl Into<String>) -> ReadError {
    ReadError::refused(Some(line), what)
}

/// Whether the rest of a line from `pos` is blanks and at most a comment (a `#` after a
/// blank, or at `pos` when `pos` follows a blank or starts the line).
pub fn rest_is_empty(text: &str, pos: usize) -> bool {
    let rest = &text[pos..];
    let t = rest.trim_start_matches([' ', '\t']);
    if t.is_empty() {
        return true;
    }
    let blank_before = t.len() < rest.len()
        || pos == 0
        || matches!(text.as_bytes().get(pos - 1), Some(b' ' | b'\t'));
    t.starts_with('#') && blank_before
}

/// Whether `c` can start a plain scalar followed by `next` (scannerc.go
/// `yaml_parser_fetch_next_token`), in block or flow context.
pub fn plain_start(c: char, next: Option<char>, flow: bool) -> bool {
    let blank_or_end = |n: Option<char>| matches!(n, None | Some(' ' | '\t'));
    match c {
        '-' | '?' | ':' => {
            let flow_indicator = matches!(next, Some(',' | '[' | ']' | '{' | '}'));
            !blank_or_end(next) && (!flow || !flow_indicator)
        }
        ',' | '[' | ']' | '{' | '}' | '#' | '&' | '*' | '!' | '|' | '>' | '\'' | '"' | '%'
        | '@' | '`' | ' ' | '\t' => false,
        _ => true,
    }
}

/// A single-line plain scalar starting at `pos` (which [`plain_start`] accepted). Returns its
/// text (trailing blanks dropped), the byte after its last character, and why it stopped.
pub fn scan_plain(
    text: &str,
    pos: usize,
    flow: bool,
    line: usize,
) -> Result<(String, usize, Stop), ReadError> {
    let bytes = text.as_bytes();
    let mut end = pos;
    let mut j = pos;
    let stop = loop {
        let Some(c) = text[j..].chars().next() else {
            break Stop::End;
        };
        let next = text[j + c.len_utf8()..].chars().next();
        match c {
            ':' if matches!(next, None | Some(' ' | '\t')) => break Stop::Colon(j),
            '#' if j > pos && matches!(bytes[j - 1], b' ' | b'\t') => break Stop::End,
            ' ' | '\t' if rest_is_empty(text, j) => break Stop::End,
            '\t' => {
                return Err(refuse_at(
                    line,
                    "a tab inside a plain scalar or between tokens",
                ));
            }
            ',' | '[' | ']' | '{' | '}' if flow => break Stop::Flow(j),
            ':' | '?' | '#' | '"' | '\'' if flow => {
                return Err(refuse_at(
                    line,
                    format!("{c:?} inside a plain scalar in a flow collection"),
                ));
            }
            _ => {}
        }
        j += c.len_utf8();
        if c != ' ' {
            end = j;
        }
    };
    Ok((text[pos..end].to_string(), end, stop))
}

/// A single-quoted scalar starting at `pos` (the quote); returns its value and the byte after
/// the closing quote. `''` is a quote.
pub fn scan_single(text: &str, pos: usize, line: usize) -> Result<(String, usize), ReadError> {
    let mut out = String::new();
    let mut j = pos + 1;
    loop {
        let Some(c) = text[j..].chars().next() else {
            return Err(refuse_at(
                line,
                "a single-quoted scalar that continues on the next line",
            ));
        };
        j += c.len_utf8();
        if c == '\'' {
            if text[j..].starts_with('\'') {
                out.push('\'');
                j += 1;
            } else {
                return Ok((out, j));
            }
        } else {
            out.push(c);
        }
    }
}

/// A double-quoted scalar starting at `pos`, with go-yaml v2's escapes (scannerc.go
/// `yaml_parser_scan_flow_scalar`: no `\/`; `\x`, `\u`, `\U` give a code point).
pub fn scan_double(text: &str, pos: usize, line: usize) -> Result<(String, usize), ReadError> {
    let mut out = String::new();
    let mut j = pos + 1;
    let unterminated = || {
        refuse_at(
            line,
            "a double-quoted scalar that continues on the next line",
        )
    };
    loop {
        let Some(c) = text[j..].chars().next() else {
            return Err(unterminated());
        };
        j += c.len_utf8();
        match c {
            '"' => return Ok((out, j)),
            '\\' => {
                let Some(e) = text[j..].chars().next() else {
                    return Err(unterminated());
                };
                j += e.len_utf8();
                let hex_len = match e {
                    '0' => {
                        out.push('\0');
                        0
                    }
                    'a' => {
                        out.push('\x07');
                        0
                    }
                    'b' => {
                        out.push('\x08');
                        0
                    }
                    't' | '\t' => {
                        out.push('\t');
                        0
                    }
                    'n' => {
                        out.push('\n');
                        0
                    }
                    'v' => {
                        out.push('\x0b');
                        0
                    }
                    'f' => {
                        out.push('\x0c');
                        0
                    }
                    'r' => {
                        out.push('\r');
                        0
                    }
                    'e' => {
                        out.push('\x1b');
                        0
                    }
                    ' ' | '"' | '\'' | '\\' => {
                        out.push(e);
                        0
                    }
                    'N' => {
                        out.push('\u{85}');
                        0
                    }
                    '_' => {
                        out.push('\u{a0}');
                        0
                    }
                    'L' => {
                        out.push('\u{2028}');
                        0
                    }
                    'P' => {
                        out.push('\u{2029}');
                        0
                    }
                    'x' => 2,
                    'u' => 4,
                    'U' => 8,
                    _ => {
                        return Err(ReadError::invalid(
                            Some(line),
                            format!(
                                "unknown escape \\{e} in a double-quoted scalar: go-yaml v2 fails"
                            ),
                        ));
                    }
                };
                if hex_len > 0 {
                    let digits = text
                        .get(j..j + hex_len)
                        .filter(|d| d.len() == hex_len && d.bytes().all(|b| b.is_ascii_hexdigit()));
                    let Some(digits) = digits else {
                        return Err(ReadError::invalid(
                            Some(line),
                            "a \\x, \\u or \\U escape without its hexadecimal digits: go-yaml v2 fails",
                        ));
                    };
                    j += hex_len;
                    let code = u32::from_str_radix(digits, 16).unwrap_or(u32::MAX);
                    let Some(ch) = char::from_u32(code) else {
                        return Err(ReadError::invalid(
                            Some(line),
                            format!(
                                "the escape \\{e}{digits} is not a Unicode scalar value: go-yaml v2 fails"
                            ),
                        ));
                    };
                    out.push(ch);
                }
            }
            c => out.push(c),
        }
    }
}

//! Unit file syntax, as systemd's `config_parse()` (conf-parser.c) reads it.

use super::words::WHITESPACE;

/// One `Key=Value` of a unit file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Assignment {
    pub section: String,
    pub key: String,
    pub value: String,
    /// 1-based physical line where the logical line starts.
    pub line: usize,
}

fn strip(s: &str) -> &str {
    s.trim_matches(WHITESPACE)
}

/// Parses unit file text into assignments, as systemd's config_parse() does.
/// `Err((line, message))` when systemd would refuse to load the file.
pub fn parse_unit_text(text: &str) -> Result<Vec<Assignment>, (usize, String)> {
    let mut out = Vec::new();
    let mut section: Option<String> = None;
    let mut continuation: Option<(usize, String)> = None;
    let mut logical: Vec<(usize, String)> = Vec::new();
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let text = text.split('\0').next().unwrap_or("");
    for (i, raw) in text.split('\n').enumerate() {
        let lineno = i + 1;
        let l = raw.strip_suffix('\r').unwrap_or(raw);
        let lead = l.trim_start_matches(WHITESPACE);
        if lead.starts_with(['#', ';']) {
            continue;
        }
        let (start, mut p) = match continuation.take() {
            Some((s, mut c)) => {
                c.push_str(l);
                (s, c)
            }
            None => (lineno, l.to_owned()),
        };
        let mut escaped = false;
        for c in p.chars() {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            }
        }
        if escaped {
            p.pop();
            p.push(' ');
            continuation = Some((start, p));
            continue;
        }
        logical.push((start, p));
    }
    if let Some(c) = continuation {
        logical.push(c);
    }
    for (line, l) in logical {
        let l = strip(&l);
        if l.is_empty() {
            continue;
        }
        if l.starts_with(".include") {
            return Err((
                line,
                ".include is not supported (removed from systemd)".into(),
            ));
        }
        if let Some(rest) = l.strip_prefix('[') {
            let Some(name) = rest.strip_suffix(']') else {
                return Err((line, format!("invalid section header {l:?}")));
            };
            section = Some(name.to_owned());
            continue;
        }
        let Some(sec) = &section else { continue };
        let Some((k, v)) = l.split_once('=') else {
            continue;
        };
        let k = strip(k);
        if k.is_empty() {
            continue;
        }
        out.push(Assignment {
            section: sec.clone(),
            key: k.to_owned(),
            value: strip(v).to_owned(),
            line,
        });
    }
    Ok(out)
}

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

/// systemd's `LONG_LINE_MAX` (1 MiB, basic/fileio.h). `config_parse()` reads each physical line
/// with `read_line(f, LONG_LINE_MAX, ...)`, which fails with ENOBUFS once a line holds that
/// many bytes ("Line too long"), and refuses a continued logical line longer than it
/// ("Continuation line too long"): either way the file, hence the unit, does not load.
pub const LONG_LINE_MAX: usize = 1024 * 1024;

fn strip(s: &str) -> &str {
    s.trim_matches(WHITESPACE)
}

/// The state of one `config_parse()` run: the current section and what is kept.
struct Parse<'f> {
    section: Option<String>,
    out: Vec<Assignment>,
    /// Which sections' assignments are kept.
    keep: &'f dyn Fn(&str) -> bool,
}

impl Parse<'_> {
    /// One logical line (`parse_line()`), starting at physical line `line`.
    fn logical_line(&mut self, line: usize, l: &str) -> Result<(), (usize, String)> {
        let l = strip(l);
        if l.is_empty() {
            return Ok(());
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
            self.section = Some(name.to_owned());
            return Ok(());
        }
        let Some(sec) = &self.section else {
            return Ok(());
        };
        let Some((k, v)) = l.split_once('=') else {
            return Ok(());
        };
        let k = strip(k);
        if k.is_empty() || !(self.keep)(sec) {
            return Ok(());
        }
        self.out.push(Assignment {
            section: sec.clone(),
            key: k.to_owned(),
            value: strip(v).to_owned(),
            line,
        });
        Ok(())
    }
}

/// Whether `piece` ends in an unescaped backslash (a continuation). A continued line's text so
/// far ends in the space that replaced its backslash, so scanning the new piece alone gives the
/// answer systemd gets by scanning the whole logical line: each byte is scanned once.
fn ends_escaped(piece: &str) -> bool {
    let mut escaped = false;
    for c in piece.chars() {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        }
    }
    escaped
}

/// The physical lines of `text` as systemd's `read_line()` (basic/fileio.c) cuts them: `\n`,
/// `\r`, `\r\n` and `\n\r` each end one line (a lone `\r` too, which an editor may show
/// inside a line: what follows it is a line of its own for systemd).
fn systemd_lines(text: &str) -> impl Iterator<Item = &str> {
    let b = text.as_bytes();
    let mut pos = 0;
    std::iter::from_fn(move || {
        if pos >= b.len() {
            return None;
        }
        let start = pos;
        while pos < b.len() && b[pos] != b'\n' && b[pos] != b'\r' {
            pos += 1;
        }
        let line = &text[start..pos];
        // One end of line holds each of `\n` and `\r` at most once.
        let mut seen = 0u8;
        while let Some(&c) = b.get(pos) {
            let m = match c {
                b'\n' => 1,
                b'\r' => 2,
                _ => break,
            };
            if seen & m != 0 {
                break;
            }
            seen |= m;
            pos += 1;
        }
        Some(line)
    })
}

/// [`parse_unit_text`], keeping only the assignments of the sections `keep` accepts (the others
/// are still parsed: their errors still fail the load).
pub(super) fn parse_unit_sections(
    text: &str,
    keep: &dyn Fn(&str) -> bool,
) -> Result<Vec<Assignment>, (usize, String)> {
    let mut st = Parse {
        section: None,
        out: Vec::new(),
        keep,
    };
    let mut continuation: Option<(usize, String)> = None;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let text = text.split('\0').next().unwrap_or("");
    for (i, l) in systemd_lines(text).enumerate() {
        let lineno = i + 1;
        if l.len() >= LONG_LINE_MAX {
            return Err((
                lineno,
                format!(
                    "line too long ({} bytes; systemd reads at most {} per line): the file does not load",
                    l.len(),
                    LONG_LINE_MAX - 1
                ),
            ));
        }
        let lead = l.trim_start_matches(WHITESPACE);
        if lead.starts_with(['#', ';']) {
            continue;
        }
        let (start, mut p) = match continuation.take() {
            Some((s, mut c)) => {
                if c.len() + l.len() > LONG_LINE_MAX {
                    return Err((
                        lineno,
                        format!(
                            "continuation line too long (over {LONG_LINE_MAX} bytes from line {s}): the file does not load"
                        ),
                    ));
                }
                c.push_str(l);
                (s, c)
            }
            None => (lineno, l.to_owned()),
        };
        if ends_escaped(l) {
            p.pop();
            p.push(' ');
            continuation = Some((start, p));
            continue;
        }
        st.logical_line(start, &p)?;
    }
    if let Some((start, p)) = continuation {
        st.logical_line(start, &p)?;
    }
    Ok(st.out)
}

/// Parses unit file text into assignments, as systemd's config_parse() does.
/// `Err((line, message))` when systemd would refuse to load the file.
pub fn parse_unit_text(text: &str) -> Result<Vec<Assignment>, (usize, String)> {
    parse_unit_sections(text, &|_| true)
}

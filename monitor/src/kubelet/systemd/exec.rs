//! `ExecStart=` values, as systemd's `config_parse_exec()` (load-fragment.c) parses them.

use super::specifiers::expand_specifiers;
use super::words::{EXEC_WORDS, WHITESPACE, WordError, extract_word_warn};

/// One command of an `ExecStart=` line, before environment expansion.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExecCommand {
    pub path: String,
    /// argv before `$VAR` expansion (argv[0] included).
    pub argv: Vec<String>,
    /// `-`: failure ignored.
    pub ignore_failure: bool,
    /// `:`: no environment variable expansion.
    pub no_env_expand: bool,
    /// `@`: argv[0] was given separately.
    pub separate_argv0: bool,
}

#[derive(Debug, PartialEq, Eq)]
pub enum ExecParse {
    /// systemd refuses to load the unit.
    Fatal(String),
    /// The tool cannot follow (unsupported specifier, 8-bit escape).
    Unsupported(String),
}

fn string_is_safe(s: &str) -> bool {
    !s.chars()
        .any(|c| (c as u32) < 0x20 || c == '\x7f' || c == '\\' || c == '"' || c == '\'')
}

/// The prefixes of an `ExecStart=` command that matter here (`+`, `!`, `!!` are accepted and
/// dropped: they change privileges, not the command line).
#[derive(Clone, Copy, Default)]
struct Prefixes {
    ignore: bool,
    argv0: bool,
    noenv: bool,
}

/// Splits the prefixes `-@:+!`/`!!` off the first word, as `config_parse_exec()` does.
fn strip_prefixes(first: &str) -> (Prefixes, &str) {
    let mut p = Prefixes::default();
    let (mut plus, mut bang, mut bangbang) = (false, false, false);
    let mut f = first;
    loop {
        match f.chars().next() {
            Some('-') if !p.ignore => p.ignore = true,
            Some('@') if !p.argv0 => p.argv0 = true,
            Some(':') if !p.noenv => p.noenv = true,
            Some('+') if !(plus || bang || bangbang) => plus = true,
            Some('!') if !(plus || bang || bangbang) => bang = true,
            Some('!') if !(plus || bangbang) => {
                bang = false;
                bangbang = true
            }
            _ => break,
        }
        f = &f[1..];
    }
    (p, f)
}

/// Why systemd refuses the executable path of a command, if it does.
fn path_refusal(path: &str, rvalue: &str) -> Option<String> {
    if path.is_empty() {
        Some(format!("empty executable path in {rvalue:?}"))
    } else if !string_is_safe(path) {
        Some(format!(
            "executable name contains special characters: {path:?}"
        ))
    } else if path.ends_with('/') {
        Some(format!("executable path is a directory: {path:?}"))
    } else if !path.starts_with('/') && (path.contains('/') || path == "." || path == "..") {
        Some(format!(
            "neither a valid executable name nor an absolute path: {path:?}"
        ))
    } else {
        None
    }
}

/// Why the arguments of a command could not be read.
enum ArgStop {
    /// The tool cannot follow.
    Unsupported(String),
    /// systemd refuses the command (or ignores it with `-`).
    Refused(String),
}

/// Skips blanks from `pos`.
fn skip_blanks(s: &[char], pos: &mut usize) {
    while *pos < s.len() && WHITESPACE.contains(&s[*pos]) {
        *pos += 1;
    }
}

/// The arguments after the executable, up to a lone `;` or the end of the value; `true` when a
/// `;` ended them (another command follows).
fn read_arguments(
    s: &[char],
    pos: &mut usize,
    unit_name: &str,
    rvalue: &str,
    argv: &mut Vec<String>,
) -> Result<bool, ArgStop> {
    let at_end = |i: usize| i >= s.len() || WHITESPACE.contains(&s[i]);
    while *pos < s.len() {
        if s[*pos] == ';' && at_end(*pos + 1) {
            *pos += 1;
            skip_blanks(s, pos);
            return Ok(true);
        }
        if s[*pos] == '\\' && s.get(*pos + 1) == Some(&';') && at_end(*pos + 2) {
            *pos += 2;
            skip_blanks(s, pos);
            argv.push(";".into());
            continue;
        }
        let word = match extract_word_warn(s, pos, EXEC_WORDS) {
            Ok(Some(w)) => w,
            Ok(None) => break,
            Err(WordError::EightBit) => {
                return Err(ArgStop::Unsupported(
                    "an escape produces a non-UTF-8 byte".into(),
                ));
            }
            Err(WordError::Invalid) => {
                return Err(ArgStop::Refused(format!(
                    "unbalanced quoting in {rvalue:?}"
                )));
            }
        };
        argv.push(expand_specifiers(&word, unit_name).map_err(ArgStop::Unsupported)?);
    }
    Ok(false)
}

/// Parses the value of one `ExecStart=` (not empty). Returns the commands systemd keeps and, when
/// it ignores the rest of the line, why.
pub fn parse_exec(
    rvalue: &str,
    unit_name: &str,
) -> Result<(Vec<ExecCommand>, Option<String>), ExecParse> {
    let s: Vec<char> = rvalue.chars().collect();
    let mut pos = 0usize;
    let mut cmds = Vec::new();
    loop {
        let first = match extract_word_warn(&s, &mut pos, EXEC_WORDS) {
            Ok(Some(w)) => w,
            Ok(None) => return Ok((cmds, None)),
            Err(WordError::EightBit) => {
                return Err(ExecParse::Unsupported(
                    "an escape produces a non-UTF-8 byte".into(),
                ));
            }
            Err(WordError::Invalid) => {
                return Ok((
                    cmds,
                    Some("unbalanced quoting, line ignored by systemd".into()),
                ));
            }
        };
        if first == ";" {
            continue;
        }
        let (pre, f) = strip_prefixes(&first);
        let fail = |msg: String| -> Result<(Vec<ExecCommand>, Option<String>), ExecParse> {
            if pre.ignore {
                Ok((
                    Vec::new(),
                    Some(format!("{msg}; ignored because of the '-' prefix")),
                ))
            } else {
                Err(ExecParse::Fatal(msg))
            }
        };
        let path = expand_specifiers(f, unit_name).map_err(ExecParse::Unsupported)?;
        if let Some(msg) = path_refusal(&path, rvalue) {
            return fail(msg);
        }
        let mut argv = Vec::new();
        if !pre.argv0 {
            argv.push(path.clone());
        }
        let semicolon = match read_arguments(&s, &mut pos, unit_name, rvalue, &mut argv) {
            Ok(semicolon) => semicolon,
            Err(ArgStop::Unsupported(m)) => return Err(ExecParse::Unsupported(m)),
            Err(ArgStop::Refused(m)) => return fail(m),
        };
        if argv.is_empty() {
            return fail(format!(
                "empty executable name or zeroeth argument: {rvalue:?}"
            ));
        }
        cmds.push(ExecCommand {
            path,
            argv,
            ignore_failure: pre.ignore,
            no_env_expand: pre.noenv,
            separate_argv0: pre.argv0,
        });
        if !semicolon {
            return Ok((cmds, None));
        }
    }
}

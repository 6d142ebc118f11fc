//! The after-restart argv of `kubelet.service`, assembled as systemd does when it starts the unit.
//!
//! Followed from systemd's source (conf-parser.c, load-fragment.c `config_parse_exec`/
//! `config_parse_environ`, extract-word.c, env-util.c `replace_env_argv`, dropin.c,
//! env-file.c) and systemd.unit(5), systemd.service(5), systemd.exec(5), systemd.syntax(7):
//!
//! - Unit search path, first found wins ([`UNIT_PATH`]); a unit that is a symlink to
//!   `/dev/null` or an empty file is masked (the kubelet will not start: an error).
//! - Drop-ins: `*.conf` in `kubelet.service.d/` of every unit directory, then in the top-level
//!   `service.d/` of every unit directory. A name seen first (more specific, then higher
//!   priority directory) masks the same name later; a drop-in linked to `/dev/null` (or empty)
//!   masks without content. The survivors apply sorted by file name, after the unit file.
//! - Syntax: comment lines (`#`, `;`, also inside a continuation), a trailing unescaped `\`
//!   continues the line (replaced by a space), keys and values trimmed, an invalid section
//!   header fails the load. Only `[Service]` keys `ExecStart`, `Environment`,
//!   `EnvironmentFile`, `UnsetEnvironment`, `Type`, `WorkingDirectory`, `RootDirectory` are read.
//! - `ExecStart=`: empty resets; a lone `;` separates commands; prefixes `-@:+!`/`!!`; words
//!   split with systemd's quoting and C escapes (an invalid escape is kept verbatim); more than one
//!   command in a non-oneshot unit is refused.
//! - `Environment=` (quoted words, invalid ones ignored, empty resets), `EnvironmentFile=`
//!   (`-` optional, glob in the last component, files override `Environment=` in order, a missing
//!   required file fails the start), `UnsetEnvironment=` applied last.
//! - At exec: `$VAR` as a whole word splits on blanks (with quote removal; unset or invalid:
//!   no word at all), `${VAR}` anywhere stays one word (unset: empty), `$$` is `$`; a `:` prefix
//!   turns expansion off.
//! - Specifiers: `%%`, `%n %N %p %P %i %I %j %J %f`, and the fixed directories
//!   `%t %S %C %L %E %T %V`. Specifiers that depend on the running host (`%H %m %b %u %h` ...)
//!   are refused as [`UnitErrorKind::Unsupported`]: an error finding, never a guess.
//!
//! Not modelled: the manager's own environment (`PATH`, `PassEnvironment=`, `$HOME`...), unit
//! aliases and their drop-ins, `foo-.service.d` prefix drop-ins (the name `kubelet` has no
//! dash), `.include`, and `RootDirectory=` images (reported, not applied here).

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use super::envfile;
use super::rootfs::{FileKind, FsError, RootFs};

/// systemd's system unit search path, highest priority first (systemd.unit(5)).
pub const UNIT_PATH: &[&str] = &[
    "/etc/systemd/system.control",
    "/run/systemd/system.control",
    "/run/systemd/transient",
    "/run/systemd/generator.early",
    "/etc/systemd/system",
    "/etc/systemd/system.attached",
    "/run/systemd/system",
    "/run/systemd/system.attached",
    "/run/systemd/generator",
    "/usr/local/lib/systemd/system",
    "/usr/lib/systemd/system",
    "/lib/systemd/system",
    "/run/systemd/generator.late",
];

/// What systemd would run for the unit's `ExecStart=`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AssembledUnit {
    /// The unit file, inside the root.
    pub unit_path: PathBuf,
    /// The file (unit or drop-in, inside the root) whose `ExecStart=` is used.
    pub exec_start_from: PathBuf,
    /// 1-based line of that `ExecStart=` (where its logical line starts).
    pub exec_start_line: usize,
    /// The argv after environment expansion; `argv[0]` is what the program sees.
    pub argv: Vec<String>,
    /// The environment systemd passes (from the unit only: the manager's own is not modelled).
    pub env: HashMap<String, String>,
    /// Host paths of every unit file, drop-in and environment file read or looked for.
    pub inputs: Vec<PathBuf>,
    /// Host paths of the unit directories and drop-in directories.
    pub input_dirs: Vec<PathBuf>,
    /// The drop-ins applied, in order, inside the root.
    pub dropins: Vec<PathBuf>,
    /// `WorkingDirectory=` inside the root, if set (systemd's default for system services: `/`).
    pub working_directory: Option<PathBuf>,
    /// `RootDirectory=`, if set: the kubelet then runs chrooted there.
    pub root_directory: Option<PathBuf>,
    /// Things systemd ignores or warns about (ignored lines, unset variables).
    pub notes: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnitErrorKind {
    /// No unit file in any unit directory.
    NotFound,
    /// The unit file is a symlink to `/dev/null` or empty.
    Masked,
    /// A unit file, drop-in or environment file could not be read.
    Unreadable,
    /// systemd refuses to load the unit (invalid section header, bad `ExecStart=`).
    Syntax,
    /// No `ExecStart=` is left.
    NoExecStart,
    /// More than one `ExecStart=` command in a unit that is not `Type=oneshot`.
    MultipleExecStart,
    /// A required `EnvironmentFile=` is missing: the unit fails to start.
    EnvironmentFileMissing,
    /// Something this tool does not model well enough to give a verdict.
    Unsupported,
}

/// Why no argv could be assembled; carries the inputs so that the daemon can still watch them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnitError {
    pub kind: UnitErrorKind,
    /// The file at fault, inside the root.
    pub path: Option<PathBuf>,
    pub line: Option<usize>,
    pub message: String,
    pub inputs: Vec<PathBuf>,
    pub input_dirs: Vec<PathBuf>,
}

impl fmt::Display for UnitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.path, self.line) {
            (Some(p), Some(l)) => write!(f, "{}:{}: {}", p.display(), l, self.message),
            (Some(p), None) => write!(f, "{}: {}", p.display(), self.message),
            _ => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for UnitError {}

// ---------------------------------------------------------------------------------------------
// Words: systemd's extract_first_word().

const WHITESPACE: &[char] = &[' ', '\t', '\n', '\r'];

#[derive(Clone, Copy, Default)]
struct Extract {
    unquote: bool,
    cunescape: bool,
    relax: bool,
    cunescape_relax: bool,
}

const EXEC_WORDS: Extract = Extract {
    unquote: true,
    cunescape: true,
    relax: false,
    cunescape_relax: false,
};
const VALUE_WORDS: Extract = Extract {
    unquote: true,
    cunescape: false,
    relax: true,
    cunescape_relax: false,
};

#[derive(Debug, PartialEq, Eq)]
enum WordError {
    /// Unbalanced quotes, a trailing backslash or an invalid escape (EINVAL).
    Invalid,
    /// An escape produces a byte that is not UTF-8 text on its own (`\xff`).
    EightBit,
}

/// One C escape after a backslash (`s` starts after the backslash): the char and how many chars
/// were consumed. systemd's cunescape_one(); NUL is refused.
fn cunescape_one(s: &[char]) -> Result<(char, usize), WordError> {
    let hex = |c: Option<&char>| c.and_then(|c| c.to_digit(16));
    let Some(&c) = s.first() else {
        return Err(WordError::Invalid);
    };
    let simple = match c {
        'a' => Some('\x07'),
        'b' => Some('\x08'),
        'f' => Some('\x0c'),
        'n' => Some('\n'),
        'r' => Some('\r'),
        't' => Some('\t'),
        'v' => Some('\x0b'),
        '\\' | '"' | '\'' => Some(c),
        's' => Some(' '),
        _ => None,
    };
    if let Some(ch) = simple {
        return Ok((ch, 1));
    }
    let eight_bit = |v: u32| -> Result<char, WordError> {
        match v {
            0 => Err(WordError::Invalid),
            1..=0x7f => Ok(char::from(v as u8)),
            _ => Err(WordError::EightBit),
        }
    };
    match c {
        'x' => {
            let (Some(a), Some(b)) = (hex(s.get(1)), hex(s.get(2))) else {
                return Err(WordError::Invalid);
            };
            Ok((eight_bit(a << 4 | b)?, 3))
        }
        'u' | 'U' => {
            let n = if c == 'u' { 4 } else { 8 };
            let mut v: u32 = 0;
            for i in 1..=n {
                v = v
                    .checked_mul(16)
                    .and_then(|v| hex(s.get(i)).map(|d| v + d))
                    .ok_or(WordError::Invalid)?;
            }
            match char::from_u32(v) {
                Some(ch) if v != 0 => Ok((ch, n + 1)),
                _ => Err(WordError::Invalid),
            }
        }
        '0'..='7' => {
            let oct = |c: Option<&char>| c.and_then(|c| c.to_digit(8));
            let (Some(a), Some(b), Some(d)) = (oct(s.first()), oct(s.get(1)), oct(s.get(2))) else {
                return Err(WordError::Invalid);
            };
            let v = a * 64 + b * 8 + d;
            if v > 255 {
                return Err(WordError::Invalid);
            }
            Ok((eight_bit(v)?, 3))
        }
        _ => Err(WordError::Invalid),
    }
}

/// systemd's extract_first_word() with whitespace separators. `Ok(None)`: no more words.
fn extract_first_word(
    s: &[char],
    pos: &mut usize,
    f: Extract,
) -> Result<Option<String>, WordError> {
    while *pos < s.len() && WHITESPACE.contains(&s[*pos]) {
        *pos += 1;
    }
    if *pos >= s.len() {
        return Ok(None);
    }
    let mut out = String::new();
    let mut quote: Option<char> = None;
    let mut backslash = false;
    loop {
        if backslash {
            backslash = false;
            let Some(&c) = s.get(*pos) else {
                if f.cunescape_relax && (quote.is_none() || f.relax) {
                    out.push('\\');
                    return Ok(Some(out));
                }
                if f.relax {
                    return Ok(Some(out));
                }
                return Err(WordError::Invalid);
            };
            if f.cunescape {
                match cunescape_one(&s[*pos..]) {
                    Ok((ch, n)) => {
                        out.push(ch);
                        *pos += n;
                    }
                    Err(WordError::Invalid) if f.cunescape_relax => {
                        out.push('\\');
                        out.push(c);
                        *pos += 1;
                    }
                    Err(e) => return Err(e),
                }
            } else {
                out.push(c);
                *pos += 1;
            }
        } else if let Some(q) = quote {
            loop {
                let Some(&c) = s.get(*pos) else {
                    if f.relax {
                        return Ok(Some(out));
                    }
                    return Err(WordError::Invalid);
                };
                *pos += 1;
                if c == q {
                    quote = None;
                    break;
                } else if c == '\\' {
                    backslash = true;
                    break;
                }
                out.push(c);
            }
        } else {
            loop {
                let Some(&c) = s.get(*pos) else {
                    return Ok(Some(out));
                };
                if f.unquote && (c == '\'' || c == '"') {
                    quote = Some(c);
                    *pos += 1;
                    break;
                } else if c == '\\' {
                    backslash = true;
                    *pos += 1;
                    break;
                } else if WHITESPACE.contains(&c) {
                    while *pos < s.len() && WHITESPACE.contains(&s[*pos]) {
                        *pos += 1;
                    }
                    return Ok(Some(out));
                }
                out.push(c);
                *pos += 1;
            }
        }
    }
}

/// extract_first_word_and_warn(): an invalid escape is retried and kept verbatim.
fn extract_word_warn(s: &[char], pos: &mut usize, f: Extract) -> Result<Option<String>, WordError> {
    let save = *pos;
    match extract_first_word(s, pos, f) {
        Err(WordError::Invalid) if !f.cunescape_relax => {
            *pos = save;
            extract_first_word(
                s,
                pos,
                Extract {
                    cunescape_relax: true,
                    ..f
                },
            )
        }
        r => r,
    }
}

/// Splits a value the way `$VAR` is split at exec time (blanks, quotes removed, no escapes).
pub fn split_value(value: &str) -> Vec<String> {
    let chars: Vec<char> = value.chars().collect();
    let mut pos = 0;
    let mut out = Vec::new();
    while let Ok(Some(w)) = extract_first_word(&chars, &mut pos, VALUE_WORDS) {
        out.push(w);
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Specifiers.

/// Expands `%` specifiers of `s` for `unit_name`, or says which one is not supported.
fn expand_specifiers(s: &str, unit_name: &str) -> Result<String, String> {
    let (stem, _suffix) = unit_name.rsplit_once('.').unwrap_or((unit_name, ""));
    let (prefix, instance) = match stem.split_once('@') {
        Some((p, i)) => (p, i),
        None => (stem, ""),
    };
    let last = prefix.rsplit('-').next().unwrap_or(prefix);
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let v: String = match chars.next() {
            Some('%') => "%".into(),
            Some('n') => unit_name.into(),
            Some('N') => stem.into(),
            Some('p') | Some('P') => prefix.into(),
            Some('i') | Some('I') => instance.into(),
            Some('j') | Some('J') => last.into(),
            Some('f') => format!(
                "/{}",
                if instance.is_empty() {
                    prefix
                } else {
                    instance
                }
            ),
            Some('t') => "/run".into(),
            Some('S') => "/var/lib".into(),
            Some('C') => "/var/cache".into(),
            Some('L') => "/var/log".into(),
            Some('E') => "/etc".into(),
            Some('T') => "/tmp".into(),
            Some('V') => "/var/tmp".into(),
            Some(o) => return Err(format!("the specifier %{o} is not supported by this tool")),
            None => return Err("a lone % at the end".into()),
        };
        out.push_str(&v);
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Unit file syntax (conf-parser.c).

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

// ---------------------------------------------------------------------------------------------
// ExecStart= (config_parse_exec).

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
        let mut semicolon = false;
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
        let (mut ignore, mut argv0, mut noenv, mut plus, mut bang, mut bangbang) =
            (false, false, false, false, false, false);
        let mut f = first.as_str();
        loop {
            match f.chars().next() {
                Some('-') if !ignore => ignore = true,
                Some('@') if !argv0 => argv0 = true,
                Some(':') if !noenv => noenv = true,
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
        let fail = |msg: String| -> Result<(Vec<ExecCommand>, Option<String>), ExecParse> {
            if ignore {
                Ok((
                    Vec::new(),
                    Some(format!("{msg}; ignored because of the '-' prefix")),
                ))
            } else {
                Err(ExecParse::Fatal(msg))
            }
        };
        let path = match expand_specifiers(f, unit_name) {
            Ok(p) => p,
            Err(e) => return Err(ExecParse::Unsupported(e)),
        };
        if path.is_empty() {
            return fail(format!("empty executable path in {rvalue:?}"));
        }
        if !string_is_safe(&path) {
            return fail(format!(
                "executable name contains special characters: {path:?}"
            ));
        }
        if path.ends_with('/') {
            return fail(format!("executable path is a directory: {path:?}"));
        }
        if !path.starts_with('/') && (path.contains('/') || path == "." || path == "..") {
            return fail(format!(
                "neither a valid executable name nor an absolute path: {path:?}"
            ));
        }
        let mut argv = Vec::new();
        if !argv0 {
            argv.push(path.clone());
        }
        while pos < s.len() {
            let at_end = |i: usize| i >= s.len() || WHITESPACE.contains(&s[i]);
            if s[pos] == ';' && at_end(pos + 1) {
                pos += 1;
                while pos < s.len() && WHITESPACE.contains(&s[pos]) {
                    pos += 1;
                }
                semicolon = true;
                break;
            }
            if s[pos] == '\\' && s.get(pos + 1) == Some(&';') && at_end(pos + 2) {
                pos += 2;
                while pos < s.len() && WHITESPACE.contains(&s[pos]) {
                    pos += 1;
                }
                argv.push(";".into());
                continue;
            }
            let word = match extract_word_warn(&s, &mut pos, EXEC_WORDS) {
                Ok(Some(w)) => w,
                Ok(None) => break,
                Err(WordError::EightBit) => {
                    return Err(ExecParse::Unsupported(
                        "an escape produces a non-UTF-8 byte".into(),
                    ));
                }
                Err(WordError::Invalid) => {
                    return fail(format!("unbalanced quoting in {rvalue:?}"));
                }
            };
            match expand_specifiers(&word, unit_name) {
                Ok(w) => argv.push(w),
                Err(e) => return Err(ExecParse::Unsupported(e)),
            }
        }
        if argv.is_empty() {
            return fail(format!(
                "empty executable name or zeroeth argument: {rvalue:?}"
            ));
        }
        cmds.push(ExecCommand {
            path,
            argv,
            ignore_failure: ignore,
            no_env_expand: noenv,
            separate_argv0: argv0,
        });
        if !semicolon {
            return Ok((cmds, None));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Environment expansion at exec time (env-util.c).

/// replace_env_full() without extensions: `${NAME}` anywhere (unset or invalid name: empty),
/// `$$` is `$`, everything else literal.
fn replace_env_word(word: &str, env: &HashMap<String, String>) -> String {
    #[derive(PartialEq)]
    enum St {
        Word,
        Curly,
        Variable,
    }
    let b = word.as_bytes();
    let mut st = St::Word;
    let mut start = 0usize;
    let mut out = String::new();
    for (i, &c) in b.iter().enumerate() {
        match st {
            St::Word => {
                if c == b'$' {
                    st = St::Curly;
                }
            }
            St::Curly => {
                if c == b'{' {
                    out.push_str(&word[start..i - 1]);
                    start = i - 1;
                    st = St::Variable;
                } else if c == b'$' {
                    out.push_str(&word[start..i]);
                    start = i + 1;
                    st = St::Word;
                } else {
                    st = St::Word;
                }
            }
            St::Variable => {
                if c == b'}' {
                    let name = &word[start + 2..i];
                    if let Some(v) = env.get(name).filter(|_| envfile::env_name_is_valid(name)) {
                        out.push_str(v);
                    }
                    start = i + 1;
                    st = St::Word;
                } else if c == b':' {
                    st = St::Word;
                }
            }
        }
    }
    out.push_str(&word[start..]);
    out
}

/// replace_env_argv(): the argv systemd executes. Also returns the names of unset (or invalid)
/// variables used as whole words.
pub fn expand_argv(argv: &[String], env: &HashMap<String, String>) -> (Vec<String>, Vec<String>) {
    let mut out = Vec::new();
    let mut unset = Vec::new();
    for w in argv {
        let b = w.as_bytes();
        if b.first() == Some(&b'$') && !matches!(b.get(1), Some(b'{') | Some(b'$')) {
            let name = &w[1..];
            match env.get(name) {
                Some(v) if envfile::env_name_is_valid(name) => out.extend(split_value(v)),
                _ => unset.push(name.to_owned()),
            }
            continue;
        }
        out.push(replace_env_word(w, env));
    }
    (out, unset)
}

// ---------------------------------------------------------------------------------------------
// Assembly.

fn lexical_host(fs: &RootFs, p: &Path) -> PathBuf {
    fs.root().join(p.strip_prefix("/").unwrap_or(p))
}

fn host_of(fs: &RootFs, p: &Path) -> PathBuf {
    fs.resolve(p, Path::new("/"))
        .unwrap_or_else(|_| lexical_host(fs, p))
}

/// Whether `p` (inside the root) resolves to `/dev/null` (a masked unit or drop-in).
fn is_dev_null(fs: &RootFs, p: &Path) -> bool {
    match fs.resolve(p, Path::new("/")) {
        Ok(h) => h == fs.root().join("dev/null"),
        Err(_) => false,
    }
}

struct Ctx<'a> {
    fs: &'a RootFs,
    inputs: Vec<PathBuf>,
    input_dirs: Vec<PathBuf>,
}

impl Ctx<'_> {
    fn err(
        &self,
        kind: UnitErrorKind,
        path: Option<&Path>,
        line: Option<usize>,
        message: String,
    ) -> UnitError {
        UnitError {
            kind,
            path: path.map(Path::to_path_buf),
            line,
            message,
            inputs: dedup(self.inputs.clone()),
            input_dirs: dedup(self.input_dirs.clone()),
        }
    }
    fn fs_err(&self, e: &FsError) -> UnitError {
        self.err(
            UnitErrorKind::Unreadable,
            Some(&e.path),
            None,
            e.to_string(),
        )
    }
    fn look(&mut self, p: &Path) {
        let lex = lexical_host(self.fs, p);
        let res = host_of(self.fs, p);
        self.inputs.push(lex.clone());
        if res != lex {
            self.inputs.push(res);
        }
    }
    /// Reads a unit file or drop-in: `Ok(None)` when missing, `Ok(Some(None))` when masked.
    fn read_unit_file(&mut self, p: &Path) -> Result<Option<Option<String>>, UnitError> {
        self.look(p);
        if is_dev_null(self.fs, p) {
            return Ok(Some(None));
        }
        match self.fs.read_text_optional(p, Path::new("/")) {
            Ok(None) => Ok(None),
            Ok(Some(t)) if t.text.is_empty() => Ok(Some(None)),
            Ok(Some(t)) => Ok(Some(Some(t.text))),
            Err(e) => Err(self.fs_err(&e)),
        }
    }
}

fn dedup(v: Vec<PathBuf>) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = Vec::with_capacity(v.len());
    for p in v {
        if !out.contains(&p) {
            out.push(p);
        }
    }
    out
}

struct EnvFileRef {
    pattern: String,
    optional: bool,
    from: PathBuf,
    line: usize,
}

/// Simple shell glob match of one path component (`*`, `?`; `[` is refused by the caller).
fn glob_match(pat: &[char], name: &[char]) -> bool {
    match pat.first() {
        None => name.is_empty(),
        Some('*') => (0..=name.len()).any(|i| glob_match(&pat[1..], &name[i..])),
        Some('?') => !name.is_empty() && glob_match(&pat[1..], &name[1..]),
        Some(c) => name.first() == Some(c) && glob_match(&pat[1..], &name[1..]),
    }
}

/// Assembles the argv systemd would start `unit_name` with, from the files in `fs`.
pub fn assemble(fs: &RootFs, unit_name: &str) -> Result<AssembledUnit, UnitError> {
    let mut cx = Ctx {
        fs,
        inputs: Vec::new(),
        input_dirs: Vec::new(),
    };
    for d in UNIT_PATH {
        cx.input_dirs.push(host_of(fs, Path::new(d)));
    }
    let dropin_dirs: Vec<PathBuf> = UNIT_PATH
        .iter()
        .map(|d| Path::new(d).join(format!("{unit_name}.d")))
        .chain(UNIT_PATH.iter().map(|d| {
            let ty = unit_name
                .rsplit_once('.')
                .map(|(_, t)| t)
                .unwrap_or("service");
            Path::new(d).join(format!("{ty}.d"))
        }))
        .collect();
    for d in &dropin_dirs {
        cx.input_dirs.push(host_of(fs, d));
    }

    // The unit file.
    let mut unit: Option<(PathBuf, String)> = None;
    for d in UNIT_PATH {
        let p = Path::new(d).join(unit_name);
        match cx.read_unit_file(&p)? {
            None => continue,
            Some(None) => {
                return Err(cx.err(
                    UnitErrorKind::Masked,
                    Some(&p),
                    None,
                    format!("{unit_name} is masked (linked to /dev/null or empty): systemd will not start it"),
                ));
            }
            Some(Some(text)) => {
                unit = Some((p, text));
                break;
            }
        }
    }
    let Some((unit_path, unit_text)) = unit else {
        return Err(cx.err(
            UnitErrorKind::NotFound,
            None,
            None,
            format!(
                "no {unit_name} in any systemd unit directory ({})",
                UNIT_PATH.join(", ")
            ),
        ));
    };

    // Drop-ins: first name wins, then sorted by name.
    let mut names: Vec<(String, PathBuf)> = Vec::new();
    for d in &dropin_dirs {
        let entries = match fs.read_dir_sorted(d, Path::new("/")) {
            Ok(e) => e,
            Err(e) if e.is_not_found() => continue,
            Err(e) if matches!(e.kind, super::rootfs::FsErrorKind::NotADirectoryToList) => continue,
            Err(e) => return Err(cx.fs_err(&e)),
        };
        for e in entries {
            let Some(name) = e.name.to_str() else {
                // systemd does not require UTF-8 file names: skipping one could hide a
                // drop-in that sets the flag. Unknown is an error, never a pass.
                use std::os::unix::ffi::OsStrExt;
                if e.name.as_bytes().ends_with(b".conf") && e.kind != FileKind::Dir {
                    return Err(cx.err(
                        UnitErrorKind::Unsupported,
                        Some(&e.path_in_root),
                        None,
                        "a drop-in whose name is not UTF-8 text cannot be evaluated exactly".into(),
                    ));
                }
                continue;
            };
            if !name.ends_with(".conf") || name.starts_with('.') || e.kind == FileKind::Dir {
                continue;
            }
            if names.iter().any(|(n, _)| n == name) {
                continue;
            }
            names.push((name.to_owned(), e.path_in_root.clone()));
        }
    }
    names.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    let mut files: Vec<(PathBuf, String)> = vec![(unit_path.clone(), unit_text)];
    let mut dropins = Vec::new();
    for (_, p) in names {
        let dangling = fs.is_symlink(&p, Path::new("/"))
            && !is_dev_null(fs, &p)
            && fs
                .read_text(&p, Path::new("/"))
                .is_err_and(|e| e.is_not_found());
        if dangling {
            cx.look(&p);
            return Err(cx.err(
                UnitErrorKind::Unsupported,
                Some(&p),
                None,
                "drop-in is a dangling symlink; systemd versions differ in whether it masks other drop-ins".into(),
            ));
        }
        match cx.read_unit_file(&p)? {
            None | Some(None) => {}
            Some(Some(text)) => {
                dropins.push(p.clone());
                files.push((p, text));
            }
        }
    }

    // Settings.
    let mut notes = Vec::new();
    let mut commands: Vec<(ExecCommand, PathBuf, usize)> = Vec::new();
    let mut environment: Vec<(String, String)> = Vec::new();
    let mut env_files: Vec<EnvFileRef> = Vec::new();
    let mut unset_env: Vec<String> = Vec::new();
    let mut service_type = String::new();
    let mut working_directory: Option<PathBuf> = None;
    let mut root_directory: Option<PathBuf> = None;
    for (path, text) in &files {
        let assignments = parse_unit_text(text)
            .map_err(|(line, msg)| cx.err(UnitErrorKind::Syntax, Some(path), Some(line), msg))?;
        for a in assignments.into_iter().filter(|a| a.section == "Service") {
            let here = |m: &str| format!("{}:{}: {m}", path.display(), a.line);
            match a.key.as_str() {
                "ExecStart" => {
                    if a.value.is_empty() {
                        commands.clear();
                        continue;
                    }
                    match parse_exec(&a.value, unit_name) {
                        Ok((cmds, ignored)) => {
                            if let Some(why) = ignored {
                                notes.push(here(&format!("ExecStart: {why}")));
                            }
                            commands.extend(cmds.into_iter().map(|c| (c, path.clone(), a.line)));
                        }
                        Err(ExecParse::Fatal(m)) => {
                            return Err(cx.err(
                                UnitErrorKind::Syntax,
                                Some(path),
                                Some(a.line),
                                format!(
                                    "ExecStart= refused by systemd, the unit does not load: {m}"
                                ),
                            ));
                        }
                        Err(ExecParse::Unsupported(m)) => {
                            return Err(cx.err(
                                UnitErrorKind::Unsupported,
                                Some(path),
                                Some(a.line),
                                m,
                            ));
                        }
                    }
                }
                "Environment" => {
                    if a.value.is_empty() {
                        environment.clear();
                        continue;
                    }
                    let s: Vec<char> = a.value.chars().collect();
                    let mut pos = 0;
                    loop {
                        let w = match extract_first_word(&s, &mut pos, EXEC_WORDS) {
                            Ok(Some(w)) => w,
                            Ok(None) => break,
                            Err(WordError::EightBit) => {
                                return Err(cx.err(
                                    UnitErrorKind::Unsupported,
                                    Some(path),
                                    Some(a.line),
                                    "Environment=: an escape produces a non-UTF-8 byte".into(),
                                ));
                            }
                            Err(WordError::Invalid) => {
                                notes.push(here("Environment=: invalid syntax, rest of the line ignored by systemd"));
                                break;
                            }
                        };
                        let w = match expand_specifiers(&w, unit_name) {
                            Ok(w) => w,
                            Err(e) => {
                                return Err(cx.err(
                                    UnitErrorKind::Unsupported,
                                    Some(path),
                                    Some(a.line),
                                    e,
                                ));
                            }
                        };
                        match w.split_once('=') {
                            Some((k, v)) if envfile::env_name_is_valid(k) => {
                                if let Some(slot) = environment.iter_mut().find(|(n, _)| n == k) {
                                    slot.1 = v.to_owned();
                                } else {
                                    environment.push((k.to_owned(), v.to_owned()));
                                }
                            }
                            _ => notes.push(here(&format!(
                                "Environment=: invalid assignment {w:?} ignored by systemd"
                            ))),
                        }
                    }
                }
                "EnvironmentFile" => {
                    if a.value.is_empty() {
                        env_files.clear();
                        continue;
                    }
                    let v = match expand_specifiers(&a.value, unit_name) {
                        Ok(v) => v,
                        Err(e) => {
                            return Err(cx.err(
                                UnitErrorKind::Unsupported,
                                Some(path),
                                Some(a.line),
                                e,
                            ));
                        }
                    };
                    let (optional, p) = match v.strip_prefix('-') {
                        Some(p) => (true, p.to_owned()),
                        None => (false, v.clone()),
                    };
                    if !p.starts_with('/') {
                        notes.push(here(&format!(
                            "EnvironmentFile={v}: not an absolute path, ignored by systemd"
                        )));
                        continue;
                    }
                    env_files.push(EnvFileRef {
                        pattern: p,
                        optional,
                        from: path.clone(),
                        line: a.line,
                    });
                }
                "UnsetEnvironment" => {
                    if a.value.is_empty() {
                        unset_env.clear();
                        continue;
                    }
                    let s: Vec<char> = a.value.chars().collect();
                    let mut pos = 0;
                    while let Ok(Some(w)) = extract_first_word(&s, &mut pos, EXEC_WORDS) {
                        match expand_specifiers(&w, unit_name) {
                            Ok(w) => unset_env.push(w),
                            Err(e) => {
                                return Err(cx.err(
                                    UnitErrorKind::Unsupported,
                                    Some(path),
                                    Some(a.line),
                                    e,
                                ));
                            }
                        }
                    }
                }
                "Type" => service_type = a.value.clone(),
                "WorkingDirectory" => {
                    let v = a.value.strip_prefix('-').unwrap_or(&a.value);
                    if v.is_empty() {
                        working_directory = None;
                    } else if v == "~" {
                        working_directory = Some(PathBuf::from("/root"));
                        notes.push(here(
                            "WorkingDirectory=~ taken as /root (the home of User=root)",
                        ));
                    } else {
                        match expand_specifiers(v, unit_name) {
                            Ok(v) if v.starts_with('/') => {
                                working_directory = Some(PathBuf::from(v))
                            }
                            Ok(v) => notes.push(here(&format!(
                                "WorkingDirectory={v}: not absolute, ignored by systemd"
                            ))),
                            Err(e) => {
                                return Err(cx.err(
                                    UnitErrorKind::Unsupported,
                                    Some(path),
                                    Some(a.line),
                                    e,
                                ));
                            }
                        }
                    }
                }
                "RootDirectory" => {
                    if a.value.is_empty() {
                        root_directory = None;
                    } else {
                        match expand_specifiers(&a.value, unit_name) {
                            Ok(v) if v.starts_with('/') => root_directory = Some(PathBuf::from(v)),
                            Ok(_) => {
                                notes.push(here("RootDirectory=: not absolute, ignored by systemd"))
                            }
                            Err(e) => {
                                return Err(cx.err(
                                    UnitErrorKind::Unsupported,
                                    Some(path),
                                    Some(a.line),
                                    e,
                                ));
                            }
                        }
                    }
                }
                _ => {}
            }
        }
    }

    let oneshot = service_type == "oneshot";
    if commands.is_empty() {
        return Err(cx.err(
            UnitErrorKind::NoExecStart,
            Some(&unit_path),
            None,
            format!(
                "{unit_name} has no ExecStart= after its drop-ins: systemd refuses to start it"
            ),
        ));
    }
    if commands.len() > 1 {
        let (_, p, l) = &commands[1];
        return Err(cx.err(
            if oneshot {
                UnitErrorKind::Unsupported
            } else {
                UnitErrorKind::MultipleExecStart
            },
            Some(p),
            Some(*l),
            if oneshot {
                "Type=oneshot unit with several ExecStart= commands: which one is the kubelet is not determined".into()
            } else {
                format!(
                    "{unit_name} has more than one ExecStart= (a drop-in adds one without resetting with an empty ExecStart= first): systemd refuses to load it"
                )
            },
        ));
    }
    let (cmd, exec_from, exec_line) = commands.remove(0);

    // The environment: Environment=, then each EnvironmentFile= in order, then UnsetEnvironment=.
    let mut env: HashMap<String, String> = environment.into_iter().collect();
    for r in &env_files {
        let mut paths = Vec::new();
        let p = Path::new(&r.pattern);
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let parent = p.parent().unwrap_or(Path::new("/"));
        let parent_glob = parent.to_string_lossy().contains(['*', '?', '[']);
        if parent_glob || name.contains('[') {
            cx.look(p);
            return Err(cx.err(
                UnitErrorKind::Unsupported,
                Some(&r.from),
                Some(r.line),
                format!(
                    "EnvironmentFile={}: this glob is not supported by this tool",
                    r.pattern
                ),
            ));
        }
        if name.contains(['*', '?']) {
            cx.input_dirs.push(host_of(fs, parent));
            let pat: Vec<char> = name.chars().collect();
            match fs.read_dir_sorted(parent, Path::new("/")) {
                Ok(entries) => {
                    for e in entries {
                        let Some(n) = e.name.to_str() else { continue };
                        let nc: Vec<char> = n.chars().collect();
                        if !n.starts_with('.') && glob_match(&pat, &nc) {
                            paths.push(e.path_in_root);
                        }
                    }
                }
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(cx.fs_err(&e)),
            }
        } else {
            paths.push(p.to_path_buf());
        }
        if paths.is_empty() && !r.optional {
            return Err(cx.err(
                UnitErrorKind::EnvironmentFileMissing,
                Some(&r.from),
                Some(r.line),
                format!(
                    "EnvironmentFile={} matches no file: the unit fails to start",
                    r.pattern
                ),
            ));
        }
        for p in paths {
            cx.look(&p);
            match fs.read_text_optional(&p, Path::new("/")) {
                Ok(Some(t)) => {
                    let ef = envfile::parse(&t.text);
                    for w in &ef.ignored {
                        notes.push(format!("{}: {w}", p.display()));
                    }
                    env.extend(ef.vars);
                }
                Ok(None) if r.optional => {}
                Ok(None) => {
                    return Err(cx.err(
                        UnitErrorKind::EnvironmentFileMissing,
                        Some(&r.from),
                        Some(r.line),
                        format!(
                            "EnvironmentFile={} is required (no '-' prefix) and missing: systemd fails to start the unit",
                            p.display()
                        ),
                    ));
                }
                Err(e) => return Err(cx.fs_err(&e)),
            }
        }
    }
    for u in &unset_env {
        match u.split_once('=') {
            Some((k, v)) => {
                if env.get(k).map(String::as_str) == Some(v) {
                    env.remove(k);
                }
            }
            None => {
                env.remove(u.as_str());
            }
        }
    }

    let argv = if cmd.no_env_expand {
        cmd.argv.clone()
    } else {
        let (argv, unset) = expand_argv(&cmd.argv, &env);
        for u in unset {
            notes.push(format!(
                "{}:{}: ${u} is not set: expands to no argument",
                exec_from.display(),
                exec_line
            ));
        }
        argv
    };
    if argv.is_empty() {
        return Err(cx.err(
            UnitErrorKind::NoExecStart,
            Some(&exec_from),
            Some(exec_line),
            "ExecStart= expands to an empty command line".into(),
        ));
    }

    Ok(AssembledUnit {
        unit_path,
        exec_start_from: exec_from,
        exec_start_line: exec_line,
        argv,
        env,
        inputs: dedup(cx.inputs),
        input_dirs: dedup(cx.input_dirs),
        dropins,
        working_directory,
        root_directory,
        notes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests-data/unit/corpus");

    fn corpus(name: &str) -> String {
        std::fs::read_to_string(format!("{CORPUS}/{name}")).unwrap()
    }

    /// A fake node root with `files` (path inside the root, content).
    use crate::kubelet::rootfs::test_root as node;

    fn link(dir: &tempfile::TempDir, at: &str, target: &str) {
        let host = dir.path().join(at.trim_start_matches('/'));
        std::fs::create_dir_all(host.parent().unwrap()).unwrap();
        symlink(target, host).unwrap();
    }

    fn argv(fs: &RootFs) -> Vec<String> {
        assemble(fs, "kubelet.service").unwrap().argv
    }

    fn words(s: &[&str]) -> Vec<String> {
        s.iter().map(|s| s.to_string()).collect()
    }

    const BASE: &str = "[Service]\nExecStart=/usr/bin/kubelet\n";

    #[test]
    fn kubeadm_deb_layout() {
        let (dir, fs) = node(&[
            (
                "/lib/systemd/system/kubelet.service",
                &corpus("kubernetes-release/kubelet.service"),
            ),
            (
                "/etc/systemd/system/kubelet.service.d/10-kubeadm.conf",
                &corpus("kubernetes-release/10-kubeadm.conf"),
            ),
            (
                "/var/lib/kubelet/kubeadm-flags.env",
                &corpus("kubeadm-generated/salpadding-kubeadm-flags.env"),
            ),
            (
                "/var/lib/kubelet/config.yaml",
                "kind: KubeletConfiguration\n",
            ),
        ]);
        let u = assemble(&fs, "kubelet.service").unwrap();
        assert_eq!(
            u.argv,
            words(&[
                "/usr/bin/kubelet",
                "--bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf",
                "--kubeconfig=/etc/kubernetes/kubelet.conf",
                "--config=/var/lib/kubelet/config.yaml",
                "--container-runtime-endpoint=unix:///var/run/crio/crio.sock",
                "--v=8",
            ])
        );
        assert_eq!(
            u.unit_path,
            Path::new("/lib/systemd/system/kubelet.service")
        );
        assert_eq!(
            u.exec_start_from,
            Path::new("/etc/systemd/system/kubelet.service.d/10-kubeadm.conf")
        );
        assert_eq!(u.exec_start_line, 11);
        let root = dir.path();
        // every file read or looked for, and the directories
        for p in [
            "etc/systemd/system/kubelet.service",
            "lib/systemd/system/kubelet.service",
            "etc/systemd/system/kubelet.service.d/10-kubeadm.conf",
            "var/lib/kubelet/kubeadm-flags.env",
            "etc/sysconfig/kubelet",
        ] {
            assert!(
                u.inputs.contains(&root.join(p)),
                "{p} not in {:?}",
                u.inputs
            );
        }
        for p in [
            "etc/systemd/system/kubelet.service.d",
            "usr/lib/systemd/system/kubelet.service.d",
            "etc/systemd/system/service.d",
            "lib/systemd/system",
        ] {
            assert!(
                u.input_dirs.contains(&root.join(p)),
                "{p} not in {:?}",
                u.input_dirs
            );
        }
        assert!(
            u.notes
                .iter()
                .any(|n| n.contains("$KUBELET_EXTRA_ARGS is not set"))
        );
    }

    #[test]
    fn kind_layout_env_without_trailing_newline() {
        let (_d, fs) = node(&[
            (
                "/etc/systemd/system/kubelet.service",
                &corpus("kind/kubelet.service"),
            ),
            (
                "/etc/systemd/system/kubelet.service.d/10-kubeadm.conf",
                &corpus("kind/10-kubeadm.conf"),
            ),
            (
                "/etc/systemd/system/kubelet.service.d/11-kind.conf",
                &corpus("kind/11-kind.conf"),
            ),
            ("/etc/default/kubelet", &corpus("kind/etc-default-kubelet")),
            (
                "/var/lib/kubelet/kubeadm-flags.env",
                &corpus("kubeadm-generated/coderdba-kubeadm-flags.env"),
            ),
        ]);
        let a = argv(&fs);
        assert_eq!(a[0], "/usr/bin/kubelet");
        assert_eq!(a[3], "--config=/var/lib/kubelet/config.yaml");
        // '' inside the double-quoted env value: quotes removed when $VAR is split
        assert!(
            a.contains(&"--enforce-node-allocatable=".to_string()),
            "{a:?}"
        );
        assert_eq!(
            a.last().unwrap(),
            "--runtime-cgroups=/system.slice/containerd.service"
        );
        assert_eq!(a.len(), 3 + 1 + 5 + 1);
    }

    #[test]
    fn eks_al2_space_separated_config_and_dropins() {
        let (_d, fs) = node(&[
            (
                "/etc/systemd/system/kubelet.service",
                &corpus("amazon-eks-ami/al2-kubelet-containerd.service"),
            ),
            (
                "/etc/systemd/system/kubelet.service.d/10-kubelet-args.conf",
                "[Service]\nEnvironment='KUBELET_ARGS=--node-ip=10.0.0.1 --pod-infra-container-image=602401143452.dkr.ecr.us-west-2.amazonaws.com/eks/pause:3.5 --v=2'\n",
            ),
            (
                "/etc/systemd/system/kubelet.service.d/30-kubelet-extra-args.conf",
                "[Service]\nEnvironment='KUBELET_EXTRA_ARGS=--make-iptables-util-chains=false'\n",
            ),
        ]);
        let u = assemble(&fs, "kubelet.service").unwrap();
        assert_eq!(
            &u.argv[1..3],
            &words(&["--config", "/etc/kubernetes/kubelet/kubelet-config.json"])
        );
        assert_eq!(u.argv.last().unwrap(), "--make-iptables-util-chains=false");
        assert_eq!(u.argv.len(), 1 + 10 + 3 + 1);
        assert_eq!(u.exec_start_line, 10);
    }

    #[test]
    fn eks_al2023_required_environment_file() {
        let unit = corpus("amazon-eks-ami/al2023-kubelet.service");
        let (_d, fs) = node(&[("/etc/systemd/system/kubelet.service", &unit)]);
        let e = assemble(&fs, "kubelet.service").unwrap_err();
        assert_eq!(e.kind, UnitErrorKind::EnvironmentFileMissing);
        assert_eq!(e.line, Some(9));
        assert!(
            e.inputs
                .iter()
                .any(|p| p.ends_with("etc/eks/kubelet/environment"))
        );
        let (_d, fs) = node(&[
            ("/etc/systemd/system/kubelet.service", &unit),
            (
                "/etc/eks/kubelet/environment",
                "NODEADM_KUBELET_ARGS=\"--node-ip=10.0.0.2 --config=/etc/kubernetes/kubelet/config.json --config-dir=/etc/kubernetes/kubelet/config.json.d\"\n",
            ),
        ]);
        assert_eq!(
            argv(&fs),
            words(&[
                "/usr/bin/kubelet",
                "--node-ip=10.0.0.2",
                "--config=/etc/kubernetes/kubelet/config.json",
                "--config-dir=/etc/kubernetes/kubelet/config.json.d"
            ])
        );
    }

    #[test]
    fn dropin_with_a_non_utf8_name_is_an_error() {
        use std::os::unix::ffi::OsStrExt;
        let (d, fs) = node(&[(
            "/lib/systemd/system/kubelet.service",
            "[Service]\nExecStart=/usr/bin/kubelet\n",
        )]);
        let dir = d.path().join("etc/systemd/system/kubelet.service.d");
        std::fs::create_dir_all(&dir).unwrap();
        let name = std::ffi::OsStr::from_bytes(b"20-\xff.conf");
        std::fs::write(
            dir.join(name),
            "[Service]\nExecStart=\nExecStart=/usr/bin/kubelet --make-iptables-util-chains=false\n",
        )
        .unwrap();
        let e = assemble(&fs, "kubelet.service").unwrap_err();
        assert_eq!(e.kind, UnitErrorKind::Unsupported, "{e:?}");
    }

    #[test]
    fn kubespray_rendered_tab_continuations() {
        let (_d, fs) = node(&[
            (
                "/etc/systemd/system/kubelet.service",
                &corpus("kubespray-rendered/kubelet.service"),
            ),
            (
                "/etc/kubernetes/kubelet.env",
                &corpus("kubespray-rendered/kubelet.env"),
            ),
        ]);
        assert_eq!(
            argv(&fs),
            words(&[
                "/usr/local/bin/kubelet",
                "--v=2",
                "--node-ip=10.0.0.5",
                "--bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf",
                "--config=/etc/kubernetes/kubelet-config.yaml",
                "--kubeconfig=/etc/kubernetes/kubelet.conf",
                "--runtime-cgroups=/system.slice/containerd.service",
                "--node-labels=role=worker",
                "--make-iptables-util-chains=false",
            ])
        );
    }

    #[test]
    fn masked_unit_and_search_order() {
        let (d, fs) = node(&[
            ("/lib/systemd/system/kubelet.service", BASE),
            (
                "/usr/lib/systemd/system/kubelet.service",
                "[Service]\nExecStart=/opt/k\n",
            ),
        ]);
        assert_eq!(argv(&fs), words(&["/opt/k"]));
        link(&d, "/etc/systemd/system/kubelet.service", "/dev/null");
        assert_eq!(
            assemble(&fs, "kubelet.service").unwrap_err().kind,
            UnitErrorKind::Masked
        );
        // an empty unit file masks too
        let (_d, fs) = node(&[
            ("/etc/systemd/system/kubelet.service", ""),
            ("/lib/systemd/system/kubelet.service", BASE),
        ]);
        assert_eq!(
            assemble(&fs, "kubelet.service").unwrap_err().kind,
            UnitErrorKind::Masked
        );
        // a symlinked unit is followed inside the root
        let (d, fs) = node(&[(
            "/opt/units/kubelet.service",
            "[Service]\nExecStart=/opt/k2\n",
        )]);
        link(
            &d,
            "/etc/systemd/system/kubelet.service",
            "../../../opt/units/kubelet.service",
        );
        assert_eq!(argv(&fs), words(&["/opt/k2"]));
        let (_d, fs) = node(&[]);
        assert_eq!(
            assemble(&fs, "kubelet.service").unwrap_err().kind,
            UnitErrorKind::NotFound
        );
    }

    #[test]
    fn dropin_masking_and_order() {
        let low = "[Service]\nExecStart=\nExecStart=/usr/bin/kubelet --low\n";
        let high = "[Service]\nExecStart=\nExecStart=/usr/bin/kubelet --high $X\n";
        let (d, fs) = node(&[
            ("/lib/systemd/system/kubelet.service", BASE),
            ("/usr/lib/systemd/system/kubelet.service.d/10-a.conf", low),
            ("/etc/systemd/system/kubelet.service.d/10-a.conf", high),
            (
                "/usr/lib/systemd/system/kubelet.service.d/20-b.conf",
                "[Service]\nEnvironment=X=from-b\n",
            ),
            (
                "/run/systemd/system/kubelet.service.d/05-c.conf",
                "[Service]\nEnvironment=X=from-c\n",
            ),
        ]);
        let u = assemble(&fs, "kubelet.service").unwrap();
        // 05-c, 10-a (/etc masks /usr/lib), 20-b: sorted by name across directories
        assert_eq!(u.argv, words(&["/usr/bin/kubelet", "--high", "from-b"]));
        assert_eq!(
            u.dropins,
            vec![
                PathBuf::from("/run/systemd/system/kubelet.service.d/05-c.conf"),
                PathBuf::from("/etc/systemd/system/kubelet.service.d/10-a.conf"),
                PathBuf::from("/usr/lib/systemd/system/kubelet.service.d/20-b.conf"),
            ]
        );
        // a drop-in linked to /dev/null masks the same name in lower-priority directories
        std::fs::remove_file(
            d.path()
                .join("etc/systemd/system/kubelet.service.d/10-a.conf"),
        )
        .unwrap();
        link(
            &d,
            "/etc/systemd/system/kubelet.service.d/10-a.conf",
            "/dev/null",
        );
        assert_eq!(argv(&fs), words(&["/usr/bin/kubelet"]));
        // a dangling drop-in symlink: refused, not guessed
        link(
            &d,
            "/etc/systemd/system/kubelet.service.d/30-x.conf",
            "/nowhere.conf",
        );
        assert_eq!(
            assemble(&fs, "kubelet.service").unwrap_err().kind,
            UnitErrorKind::Unsupported
        );
    }

    #[test]
    fn top_level_service_d() {
        let (d, fs) = node(&[
            (
                "/lib/systemd/system/kubelet.service",
                "[Service]\nExecStart=/usr/bin/kubelet $X\n",
            ),
            (
                "/etc/systemd/system/service.d/50-x.conf",
                "[Service]\nEnvironment=X=top\n",
            ),
        ]);
        assert_eq!(argv(&fs), words(&["/usr/bin/kubelet", "top"]));
        // the unit's own drop-in of the same name (even in a lower-priority dir) masks it
        std::fs::create_dir_all(d.path().join("usr/lib/systemd/system/kubelet.service.d")).unwrap();
        std::fs::write(
            d.path()
                .join("usr/lib/systemd/system/kubelet.service.d/50-x.conf"),
            "[Service]\nEnvironment=X=own\n",
        )
        .unwrap();
        assert_eq!(argv(&fs), words(&["/usr/bin/kubelet", "own"]));
    }

    #[test]
    fn exec_start_reset_and_duplicates() {
        let (_d, fs) = node(&[
            ("/lib/systemd/system/kubelet.service", BASE),
            (
                "/etc/systemd/system/kubelet.service.d/10-x.conf",
                "[Service]\nExecStart=/usr/bin/kubelet --x\n",
            ),
        ]);
        let e = assemble(&fs, "kubelet.service").unwrap_err();
        assert_eq!(e.kind, UnitErrorKind::MultipleExecStart);
        assert_eq!(e.line, Some(2));
        let (_d, fs) = node(&[(
            "/lib/systemd/system/kubelet.service",
            "[Service]\nType=oneshot\nExecStart=/a\nExecStart=/b\n",
        )]);
        assert_eq!(
            assemble(&fs, "kubelet.service").unwrap_err().kind,
            UnitErrorKind::Unsupported
        );
        // a lone ; makes two commands
        let (_d, fs) = node(&[(
            "/lib/systemd/system/kubelet.service",
            "[Service]\nExecStart=/a x ; /b\n",
        )]);
        assert_eq!(
            assemble(&fs, "kubelet.service").unwrap_err().kind,
            UnitErrorKind::MultipleExecStart
        );
        // \; is a literal argument
        let (_d, fs) = node(&[(
            "/lib/systemd/system/kubelet.service",
            "[Service]\nExecStart=/a x \\; y\n",
        )]);
        assert_eq!(argv(&fs), words(&["/a", "x", ";", "y"]));
        // reset with nothing after it
        let (_d, fs) = node(&[
            ("/lib/systemd/system/kubelet.service", BASE),
            (
                "/etc/systemd/system/kubelet.service.d/10-x.conf",
                "[Service]\nExecStart=\n",
            ),
        ]);
        assert_eq!(
            assemble(&fs, "kubelet.service").unwrap_err().kind,
            UnitErrorKind::NoExecStart
        );
        // ExecStart outside [Service] does not count
        let (_d, fs) = node(&[(
            "/lib/systemd/system/kubelet.service",
            "ExecStart=/x\n[Unit]\nExecStart=/y\n[Service]\nExecStart=/usr/bin/kubelet\n[Install]\nExecStart=/z\n",
        )]);
        assert_eq!(argv(&fs), words(&["/usr/bin/kubelet"]));
    }

    fn exec(v: &str) -> Vec<String> {
        let (cmds, _) = parse_exec(v, "kubelet.service").unwrap();
        assert_eq!(cmds.len(), 1);
        expand_argv(&cmds[0].argv, &HashMap::new()).0
    }

    #[test]
    fn exec_prefixes() {
        let (c, _) = parse_exec("-@/usr/bin/kubelet kubelet-real --a", "kubelet.service").unwrap();
        assert_eq!(c[0].path, "/usr/bin/kubelet");
        assert_eq!(c[0].argv, words(&["kubelet-real", "--a"]));
        assert!(c[0].ignore_failure && c[0].separate_argv0);
        let (c, _) = parse_exec(":/k $X ${X}", "kubelet.service").unwrap();
        assert!(c[0].no_env_expand);
        for p in ["+", "!", "!!", "-+", "@-", ":!!"] {
            let (c, _) = parse_exec(&format!("{p}/k --a"), "kubelet.service").unwrap();
            assert_eq!(c[0].path, "/k", "{p}");
        }
        // relative names are allowed (looked up in PATH); paths with a slash must be absolute
        assert_eq!(exec("kubelet --a"), words(&["kubelet", "--a"]));
        assert!(matches!(
            parse_exec("bin/kubelet", "k.service"),
            Err(ExecParse::Fatal(_))
        ));
        assert!(matches!(
            parse_exec("/usr/bin/", "k.service"),
            Err(ExecParse::Fatal(_))
        ));
        assert!(matches!(
            parse_exec("@/usr/bin/kubelet", "k.service"),
            Err(ExecParse::Fatal(_))
        ));
        // '-' turns a refused command into an ignored line
        assert!(
            parse_exec("-bin/kubelet", "k.service")
                .unwrap()
                .0
                .is_empty()
        );
        // unbalanced quote in the first word: systemd ignores the line
        let (c, why) = parse_exec("\"/k --a", "k.service").unwrap();
        assert!(c.is_empty() && why.is_some());
        // ... in a later word: the unit fails to load
        assert!(matches!(
            parse_exec("/k \"--a", "k.service"),
            Err(ExecParse::Fatal(_))
        ));
    }

    #[test]
    fn exec_quoting_and_escapes() {
        assert_eq!(
            exec(r#"/k "a b" 'c d' e\ f \x41 "x\ty" a"b c"d '\'' \q"#),
            // `\ ` is no C escape: systemd keeps it verbatim (and warns)
            words(&[
                "/k", "a b", "c d", "e\\ f", "A", "x\ty", "ab cd", "'", "\\q"
            ])
        );
        assert_eq!(exec("/k \\u00e9 \\101"), words(&["/k", "é", "A"]));
        assert!(matches!(
            parse_exec("/k \\xff", "k.service"),
            Err(ExecParse::Unsupported(_))
        ));
    }

    #[test]
    fn env_expansion() {
        let env: HashMap<String, String> = [
            ("A".to_string(), "1  2".to_string()),
            ("Q".to_string(), "--a='b c' \"--d\" e\\ f".to_string()),
            ("E".to_string(), "".to_string()),
        ]
        .into_iter()
        .collect();
        let (out, unset) = expand_argv(
            &words(&[
                "/k", "$A", "${A}", "x${A}y", "$UNSET", "${UNSET}", "$$A", "$Q", "$E", "x$A",
                "${A:-z}", "$", "$A/b",
            ]),
            &env,
        );
        assert_eq!(
            out,
            words(&[
                "/k", "1", "2", "1  2", "x1  2y", "", "$A", "--a=b c", "--d", "e f", "x$A",
                "${A:-z}"
            ])
        );
        assert_eq!(unset, words(&["UNSET", "", "A/b"]));
    }

    #[test]
    fn environment_and_files_order() {
        let (_d, fs) = node(&[
            (
                "/lib/systemd/system/kubelet.service",
                "[Service]\nEnvironmentFile=/etc/k.env\nEnvironment=\"A=from unit\" B=b 'C=c c' bad-name=1 D\nEnvironment=B=b2\nExecStart=/k ${A} ${B} ${C} ${F}\n",
            ),
            ("/etc/k.env", "A=from-file\n"),
            (
                "/etc/systemd/system/kubelet.service.d/x.conf",
                "[Service]\nEnvironmentFile=-/etc/k2.env\nEnvironmentFile=-/etc/none.env\n",
            ),
            ("/etc/k2.env", "F=f\nA=from-k2\n"),
        ]);
        let u = assemble(&fs, "kubelet.service").unwrap();
        // EnvironmentFile= beats Environment= whatever the line order; later files win
        assert_eq!(u.argv, words(&["/k", "from-k2", "b2", "c c", "f"]));
        assert!(u.notes.iter().any(|n| n.contains("bad-name=1")));
        // Environment= empty resets; UnsetEnvironment= applies last
        let (_d, fs) = node(&[(
            "/lib/systemd/system/kubelet.service",
            "[Service]\nEnvironment=A=1 B=2 C=3\nEnvironment=\nEnvironment=B=2 C=3\nUnsetEnvironment=B C=4\nExecStart=/k $A $B $C\n",
        )]);
        assert_eq!(argv(&fs), words(&["/k", "3"]));
        // EnvironmentFile= empty resets the list (the required missing file is dropped)
        let (_d, fs) = node(&[(
            "/lib/systemd/system/kubelet.service",
            "[Service]\nEnvironmentFile=/missing\nEnvironmentFile=\nExecStart=/k\n",
        )]);
        assert_eq!(argv(&fs), words(&["/k"]));
    }

    #[test]
    fn environment_file_glob_and_bad_files() {
        let (d, fs) = node(&[
            (
                "/lib/systemd/system/kubelet.service",
                "[Service]\nEnvironmentFile=/etc/k/*.env\nExecStart=/k $A\n",
            ),
            ("/etc/k/a.env", "A=1\n"),
            ("/etc/k/b.env", "A=2\n"),
        ]);
        assert_eq!(argv(&fs), words(&["/k", "2"]));
        // an optional env file that is a directory or a FIFO: an error, not a guess
        let (_d2, fs2) = node(&[(
            "/lib/systemd/system/kubelet.service",
            "[Service]\nEnvironmentFile=-/etc/k\nExecStart=/k\n",
        )]);
        std::fs::create_dir_all(_d2.path().join("etc/k")).unwrap();
        assert_eq!(
            assemble(&fs2, "kubelet.service").unwrap_err().kind,
            UnitErrorKind::Unreadable
        );
        nix::unistd::mkfifo(
            &d.path().join("etc/k/c.env"),
            nix::sys::stat::Mode::from_bits_truncate(0o600),
        )
        .unwrap();
        assert_eq!(
            assemble(&fs, "kubelet.service").unwrap_err().kind,
            UnitErrorKind::Unreadable
        );
    }

    #[test]
    fn syntax_rules() {
        let text = "\u{feff}[Service]\n  # comment\n; comment\nExecStart=/k \\\n# inside a continuation\n\t\t--a \\\n  --b\\\\\nType = simple  \n[Broken\n";
        let e = parse_unit_text(text).unwrap_err();
        assert_eq!(e.0, 9);
        let a = parse_unit_text(&text.replace("[Broken\n", "")).unwrap();
        assert_eq!(a[0].key, "ExecStart");
        assert_eq!(a[0].line, 4);
        assert_eq!(a[0].value, "/k  \t\t--a    --b\\\\");
        assert_eq!(a[1].key, "Type");
        assert_eq!(a[1].value, "simple");
        assert_eq!(exec(&a[0].value), words(&["/k", "--a", "--b\\"]));
        // CRLF line ends, a last line without newline, a continuation at EOF
        let a = parse_unit_text("[Service]\r\nExecStart=/k\r\nEnvironment=A=1 \\").unwrap();
        assert_eq!(a[0].value, "/k");
        assert_eq!(a[1].value, "A=1");
        // no '=' or empty key: ignored
        assert_eq!(parse_unit_text("[Service]\nfoo\n=bar\n").unwrap(), vec![]);
    }

    #[test]
    fn specifiers() {
        assert_eq!(
            exec("/k 100%% %n %N %p %i x%Iy %t %S"),
            words(&[
                "/k",
                "100%",
                "kubelet.service",
                "kubelet",
                "kubelet",
                "",
                "xy",
                "/run",
                "/var/lib"
            ])
        );
        assert!(matches!(
            parse_exec("/k %H", "kubelet.service"),
            Err(ExecParse::Unsupported(_))
        ));
        let (_d, fs) = node(&[(
            "/lib/systemd/system/kubelet.service",
            "[Service]\nExecStart=/k --hostname-override=%H\n",
        )]);
        assert_eq!(
            assemble(&fs, "kubelet.service").unwrap_err().kind,
            UnitErrorKind::Unsupported
        );
    }

    #[test]
    fn working_and_root_directory() {
        let (_d, fs) = node(&[(
            "/lib/systemd/system/kubelet.service",
            "[Service]\nWorkingDirectory=-/var/lib/kubelet\nRootDirectory=/srv/k\nExecStart=/k\n",
        )]);
        let u = assemble(&fs, "kubelet.service").unwrap();
        assert_eq!(u.working_directory, Some(PathBuf::from("/var/lib/kubelet")));
        assert_eq!(u.root_directory, Some(PathBuf::from("/srv/k")));
    }

    #[test]
    fn unreadable_unit_files() {
        let (d, fs) = node(&[]);
        std::fs::create_dir_all(d.path().join("etc/systemd/system/kubelet.service")).unwrap();
        assert_eq!(
            assemble(&fs, "kubelet.service").unwrap_err().kind,
            UnitErrorKind::Unreadable
        );
        let (d, fs) = node(&[]);
        link(&d, "/etc/systemd/system/kubelet.service", "kubelet.service");
        assert_eq!(
            assemble(&fs, "kubelet.service").unwrap_err().kind,
            UnitErrorKind::Unreadable
        );
        // a symlink escaping the root stays inside it
        let (d, fs) = node(&[]);
        link(
            &d,
            "/etc/systemd/system/kubelet.service",
            "../../../../../../../../etc/passwd",
        );
        assert_eq!(
            assemble(&fs, "kubelet.service").unwrap_err().kind,
            UnitErrorKind::NotFound
        );
    }

    proptest::proptest! {
        #[test]
        fn random_unit_text_never_panics(s in "(?s).{0,300}") {
            let _ = parse_unit_text(&s);
            let _ = parse_exec(&s, "kubelet.service");
            let env: HashMap<String, String> = [("A".to_string(), s.clone())].into_iter().collect();
            let _ = expand_argv(&[s.clone(), "$A".into(), "${A}".into()], &env);
        }
        #[test]
        fn unitish_text_never_panics(s in "[\\[\\]A-Za-z=$%{}\"' \\\\;\n\t#@:!+-]{0,200}") {
            if let Ok(a) = parse_unit_text(&s) {
                for a in a {
                    let _ = parse_exec(&a.value, "kubelet.service");
                }
            }
            let (_d, fs) = node(&[("/lib/systemd/system/kubelet.service", &s)]);
            let _ = assemble(&fs, "kubelet.service");
        }
    }
}

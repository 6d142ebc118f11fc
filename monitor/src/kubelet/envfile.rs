//! `EnvironmentFile=` files, parsed the way systemd's `load_env_file()` does
//! (src/basic/env-file.c, `parse_env_file_internal`), then cleaned like
//! `exec_context_load_environment()` (invalid assignments dropped).
//!
//! The rules, as systemd implements them (not as a shell would):
//! - Lines whose first non-blank character is `#` or `;` are comments (to the end of the line;
//!   a trailing `\` does not continue a comment since v254). Comments only start a line:
//!   `A=b # c` sets `A` to `b # c`.
//! - `KEY=VALUE`; blanks around the key are dropped, blanks after `=` are skipped. A line
//!   without `=` is ignored. `export KEY=V` is *not* understood: the key `export KEY` is
//!   invalid and the assignment is dropped.
//! - Unquoted values: trailing blanks are chomped, `\x` gives `x`, `\` + newline joins lines
//!   (eaten entirely), quotes in the middle of a value are literal.
//! - At the start of a value (or right after a closing quote) `'…'` is literal and `"…"`
//!   unescapes only `\"`, `\\`, `` \` `` and `\$` (other backslashes are kept), `\` + newline
//!   is eaten. After a closing quote blanks are skipped and further text is appended:
//!   `A="x" "y"` is `xy`, `A="x"   ` is `x`.
//! - `\n` and `\r` both end a line. The last line needs no newline.
//! - The last assignment of a key wins. Keys must be valid names (`[A-Za-z_][A-Za-z0-9_]*`).

/// One `KEY=VALUE` as parsed, before validation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawAssignment {
    pub key: String,
    pub value: String,
    /// 1-based line where the assignment started.
    pub line: usize,
}

/// The result of loading one environment file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EnvFile {
    /// Valid assignments in file order, each key once (the last value wins, at the position of
    /// its first appearance, as `strv_env_replace_consume` does).
    pub vars: Vec<(String, String)>,
    /// Assignments systemd drops, with why (for the finding's reason).
    pub ignored: Vec<String>,
}

impl EnvFile {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.vars
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

const WHITESPACE: &[char] = &[' ', '\t', '\n', '\r'];
const NEWLINE: &[char] = &['\n', '\r'];
const COMMENTS: &[char] = &['#', ';'];
const SHELL_NEED_ESCAPE: &[char] = &['"', '\\', '`', '$'];

/// A valid environment variable name, as systemd's `env_name_is_valid` (bash's character set).
pub fn env_name_is_valid(name: &str) -> bool {
    let mut chars = name.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphabetic() || c == '_' => {}
        _ => return false,
    }
    chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    PreKey,
    Key,
    PreValue,
    Value,
    ValueEscape,
    SingleQuote,
    DoubleQuote,
    DoubleQuoteEscape,
    Comment,
    CommentEscape,
}

/// Every assignment in `text`, in order, exactly as `parse_env_file_internal` pushes them.
/// Parsing stops at a NUL (systemd reads a C string).
pub fn parse_raw(text: &str) -> Vec<RawAssignment> {
    let text = text.split('\0').next().unwrap_or("");
    let mut out = Vec::new();
    let mut state = State::PreKey;
    let mut key = String::new();
    let mut value = String::new();
    // Byte length of the key/value before their trailing blanks, if they end in blanks.
    let mut last_key_ws: Option<usize> = None;
    let mut last_value_ws: Option<usize> = None;
    let mut line = 1usize;
    let mut start_line = 1usize;

    let push = |out: &mut Vec<RawAssignment>,
                key: &mut String,
                value: &mut String,
                last_key_ws: Option<usize>,
                chomp: Option<usize>,
                start_line: usize| {
        if let Some(n) = last_key_ws {
            key.truncate(n);
        }
        if let Some(n) = chomp {
            value.truncate(n);
        }
        out.push(RawAssignment {
            key: std::mem::take(key),
            value: std::mem::take(value),
            line: start_line,
        });
    };

    for c in text.chars() {
        match state {
            State::PreKey => {
                if COMMENTS.contains(&c) {
                    state = State::Comment;
                } else if !WHITESPACE.contains(&c) {
                    state = State::Key;
                    last_key_ws = None;
                    key.clear();
                    key.push(c);
                    start_line = line;
                } else if NEWLINE.contains(&c) {
                    line += 1;
                }
            }
            State::Key => {
                if NEWLINE.contains(&c) {
                    state = State::PreKey;
                    line += 1;
                    key.clear();
                } else if c == '=' {
                    state = State::PreValue;
                    last_value_ws = None;
                    value.clear();
                } else {
                    if !WHITESPACE.contains(&c) {
                        last_key_ws = None;
                    } else if last_key_ws.is_none() {
                        last_key_ws = Some(key.len());
                    }
                    key.push(c);
                }
            }
            State::PreValue => {
                if NEWLINE.contains(&c) {
                    push(
                        &mut out,
                        &mut key,
                        &mut value,
                        last_key_ws,
                        None,
                        start_line,
                    );
                    state = State::PreKey;
                    line += 1;
                } else if c == '\'' {
                    state = State::SingleQuote;
                } else if c == '"' {
                    state = State::DoubleQuote;
                } else if c == '\\' {
                    state = State::ValueEscape;
                } else if !WHITESPACE.contains(&c) {
                    state = State::Value;
                    value.push(c);
                }
            }
            State::Value => {
                if NEWLINE.contains(&c) {
                    push(
                        &mut out,
                        &mut key,
                        &mut value,
                        last_key_ws,
                        last_value_ws,
                        start_line,
                    );
                    state = State::PreKey;
                    line += 1;
                } else if c == '\\' {
                    state = State::ValueEscape;
                    last_value_ws = None;
                } else {
                    if !WHITESPACE.contains(&c) {
                        last_value_ws = None;
                    } else if last_value_ws.is_none() {
                        last_value_ws = Some(value.len());
                    }
                    value.push(c);
                }
            }
            State::ValueEscape => {
                state = State::Value;
                if NEWLINE.contains(&c) {
                    line += 1; // escaped newlines are eaten entirely
                } else {
                    value.push(c);
                }
            }
            State::SingleQuote => {
                if c == '\'' {
                    state = State::PreValue;
                } else {
                    if NEWLINE.contains(&c) {
                        line += 1;
                    }
                    value.push(c);
                }
            }
            State::DoubleQuote => {
                if c == '"' {
                    state = State::PreValue;
                } else if c == '\\' {
                    state = State::DoubleQuoteEscape;
                } else {
                    if NEWLINE.contains(&c) {
                        line += 1;
                    }
                    value.push(c);
                }
            }
            State::DoubleQuoteEscape => {
                state = State::DoubleQuote;
                if SHELL_NEED_ESCAPE.contains(&c) {
                    value.push(c);
                } else if c != '\n' {
                    value.push('\\');
                    value.push(c);
                } else {
                    line += 1;
                }
            }
            State::Comment => {
                if c == '\\' {
                    state = State::CommentEscape;
                } else if NEWLINE.contains(&c) {
                    state = State::PreKey;
                    line += 1;
                }
            }
            State::CommentEscape => {
                if NEWLINE.contains(&c) {
                    state = State::PreKey;
                    line += 1;
                } else {
                    state = State::Comment;
                }
            }
        }
    }

    match state {
        State::PreValue
        | State::ValueEscape
        | State::SingleQuote
        | State::DoubleQuote
        | State::DoubleQuoteEscape => push(
            &mut out,
            &mut key,
            &mut value,
            last_key_ws,
            None,
            start_line,
        ),
        State::Value => push(
            &mut out,
            &mut key,
            &mut value,
            last_key_ws,
            last_value_ws,
            start_line,
        ),
        _ => {}
    }
    out
}

/// Load an environment file's text as systemd does for `EnvironmentFile=`.
pub fn parse(text: &str) -> EnvFile {
    let mut env = EnvFile::default();
    for a in parse_raw(text) {
        if !env_name_is_valid(&a.key) {
            env.ignored.push(format!(
                "line {}: invalid variable name {:?}, ignored by systemd",
                a.line, a.key
            ));
            continue;
        }
        if let Some(slot) = env.vars.iter_mut().find(|(k, _)| *k == a.key) {
            slot.1 = a.value;
        } else {
            env.vars.push((a.key, a.value));
        }
    }
    env
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(text: &str, key: &str) -> Option<String> {
        parse(text).get(key).map(str::to_owned)
    }

    #[test]
    fn plain_and_comments() {
        let e = parse("# c\n; c2\n  A=1\nB = 2 \n\nC=x # not a comment\n");
        assert_eq!(
            e.vars,
            vec![
                ("A".into(), "1".into()),
                ("B".into(), "2".into()),
                ("C".into(), "x # not a comment".into())
            ]
        );
    }

    #[test]
    fn quotes() {
        assert_eq!(one("A=\"x y\"\n", "A").unwrap(), "x y");
        assert_eq!(one("A='x \\\" y'\n", "A").unwrap(), "x \\\" y");
        assert_eq!(one("A=\"a\\\"b\\$c\\d\"\n", "A").unwrap(), "a\"b$c\\d");
        // after a closing quote: blanks skipped, more text appended
        assert_eq!(one("A=\"x\" \"y\"\n", "A").unwrap(), "xy");
        assert_eq!(one("A=\"x\"y\n", "A").unwrap(), "xy");
        // quotes in the middle of an unquoted value are literal
        assert_eq!(one("A=x \"y\"\n", "A").unwrap(), "x \"y\"");
        // unterminated quote runs to the end of the file
        assert_eq!(one("A=\"x\nB=1", "A").unwrap(), "x\nB=1");
    }

    #[test]
    fn continuation_and_escapes() {
        assert_eq!(one("A=x \\\n  y\n", "A").unwrap(), "x   y");
        assert_eq!(one("A=\"x \\\ny\"\n", "A").unwrap(), "x y");
        assert_eq!(one("A=a\\ \n", "A").unwrap(), "a ");
        assert_eq!(one("A=a\\b\n", "A").unwrap(), "ab");
        // comment with trailing backslash does not swallow the next line (v254+)
        assert_eq!(one("# x \\\nA=1\n", "A").unwrap(), "1");
    }

    #[test]
    fn keys() {
        let e = parse("export A=1\nB C=2\n1X=3\nD\nE=\nF=1\nF=2\n");
        assert_eq!(e.get("A"), None);
        assert_eq!(e.get("export A"), None);
        assert_eq!(e.get("E"), Some(""));
        assert_eq!(e.get("F"), Some("2"));
        assert_eq!(e.get("D"), None);
        assert_eq!(e.ignored.len(), 3);
    }

    #[test]
    fn line_endings() {
        assert_eq!(parse("A=1\r\nB=2\r\n").get("B"), Some("2"));
        assert_eq!(parse("A=1\r\nB=2\r\n").get("A"), Some("1"));
        assert_eq!(parse("A=1").get("A"), Some("1"));
        assert_eq!(parse("A=1  ").get("A"), Some("1"));
        assert_eq!(parse("A=").get("A"), Some(""));
        assert_eq!(parse("A").vars, vec![]);
    }

    const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests-data/unit/corpus");

    fn corpus(name: &str) -> String {
        std::fs::read_to_string(format!("{CORPUS}/{name}")).unwrap()
    }

    #[test]
    fn corpus_env_files() {
        assert_eq!(
            parse(&corpus("kubernetes-release/kubelet.env")).get("KUBELET_EXTRA_ARGS"),
            Some("")
        );
        // no trailing newline
        assert_eq!(
            parse(&corpus("kind/etc-default-kubelet")).get("KUBELET_EXTRA_ARGS"),
            Some("--runtime-cgroups=/system.slice/containerd.service")
        );
        assert_eq!(
            parse(&corpus("kubeadm-generated/coderdba-kubeadm-flags.env"))
                .get("KUBELET_KUBEADM_ARGS"),
            Some(
                "--cgroup-driver=systemd --enforce-node-allocatable='' --pod-manifest-path=/etc/kubernetes/manifests --pod-infra-container-image=k8s.gcr.io/pause-amd64:3.1 --cgroups-per-qos=false"
            )
        );
        // trailing spaces after the closing quote
        assert_eq!(
            parse(&corpus("kubeadm-generated/cygu-kubeadm-flags.env")).get("KUBELET_KUBEADM_ARGS"),
            Some(
                "--cgroup-driver=cgroupfs --pod-infra-container-image=k8s.gcr.io/pause:3.1 --resolv-conf=/run/systemd/resolve/resolv.conf"
            )
        );
        assert_eq!(
            parse(&corpus("kubeadm-generated/salpadding-kubeadm-flags.env"))
                .get("KUBELET_KUBEADM_ARGS"),
            Some("--container-runtime-endpoint=unix:///var/run/crio/crio.sock --v=8")
        );
    }

    proptest::proptest! {
        #[test]
        fn never_panics(s in "(?s).{0,200}") {
            let _ = parse(&s);
        }
        #[test]
        fn never_panics_envish(s in "[A-Z_=\"' \\\\\n\r#;a-z]{0,120}") {
            let _ = parse(&s);
        }
    }
}

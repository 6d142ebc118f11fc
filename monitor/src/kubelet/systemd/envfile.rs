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

/// The state of one `parse_env_file_internal` run.
struct Parser {
    out: Vec<RawAssignment>,
    state: State,
    key: String,
    value: String,
    /// Byte length of the key/value before their trailing blanks, if they end in blanks.
    last_key_ws: Option<usize>,
    last_value_ws: Option<usize>,
    line: usize,
    start_line: usize,
}

impl Parser {
    /// Ends the current assignment; `chomp` cuts the value's trailing blanks.
    fn push(&mut self, chomp: Option<usize>) {
        if let Some(n) = self.last_key_ws {
            self.key.truncate(n);
        }
        if let Some(n) = chomp {
            self.value.truncate(n);
        }
        self.out.push(RawAssignment {
            key: std::mem::take(&mut self.key),
            value: std::mem::take(&mut self.value),
            line: self.start_line,
        });
    }

    /// Ends the line: back to looking for a key.
    fn newline(&mut self) {
        self.state = State::PreKey;
        self.line += 1;
    }

    fn pre_key(&mut self, c: char) {
        if COMMENTS.contains(&c) {
            self.state = State::Comment;
        } else if !WHITESPACE.contains(&c) {
            self.state = State::Key;
            self.last_key_ws = None;
            self.key.clear();
            self.key.push(c);
            self.start_line = self.line;
        } else if NEWLINE.contains(&c) {
            self.line += 1;
        }
    }

    fn in_key(&mut self, c: char) {
        if NEWLINE.contains(&c) {
            self.newline();
            self.key.clear();
        } else if c == '=' {
            self.state = State::PreValue;
            self.last_value_ws = None;
            self.value.clear();
        } else {
            if !WHITESPACE.contains(&c) {
                self.last_key_ws = None;
            } else if self.last_key_ws.is_none() {
                self.last_key_ws = Some(self.key.len());
            }
            self.key.push(c);
        }
    }

    fn pre_value(&mut self, c: char) {
        if NEWLINE.contains(&c) {
            self.push(None);
            self.newline();
        } else if c == '\'' {
            self.state = State::SingleQuote;
        } else if c == '"' {
            self.state = State::DoubleQuote;
        } else if c == '\\' {
            self.state = State::ValueEscape;
        } else if !WHITESPACE.contains(&c) {
            self.state = State::Value;
            self.value.push(c);
        }
    }

    fn in_value(&mut self, c: char) {
        if NEWLINE.contains(&c) {
            self.push(self.last_value_ws);
            self.newline();
        } else if c == '\\' {
            self.state = State::ValueEscape;
            self.last_value_ws = None;
        } else {
            if !WHITESPACE.contains(&c) {
                self.last_value_ws = None;
            } else if self.last_value_ws.is_none() {
                self.last_value_ws = Some(self.value.len());
            }
            self.value.push(c);
        }
    }

    /// Inside quotes: `close` ends them; in double quotes a backslash starts an escape.
    fn quoted(&mut self, c: char, close: char) {
        if c == close {
            self.state = State::PreValue;
        } else if c == '\\' && close == '"' {
            self.state = State::DoubleQuoteEscape;
        } else {
            if NEWLINE.contains(&c) {
                self.line += 1;
            }
            self.value.push(c);
        }
    }

    fn double_quote_escape(&mut self, c: char) {
        self.state = State::DoubleQuote;
        if SHELL_NEED_ESCAPE.contains(&c) {
            self.value.push(c);
        } else if c != '\n' {
            self.value.push('\\');
            self.value.push(c);
        } else {
            self.line += 1;
        }
    }

    fn feed(&mut self, c: char) {
        match self.state {
            State::PreKey => self.pre_key(c),
            State::Key => self.in_key(c),
            State::PreValue => self.pre_value(c),
            State::Value => self.in_value(c),
            State::ValueEscape => {
                self.state = State::Value;
                if NEWLINE.contains(&c) {
                    self.line += 1; // escaped newlines are eaten entirely
                } else {
                    self.value.push(c);
                }
            }
            State::SingleQuote => self.quoted(c, '\''),
            State::DoubleQuote => self.quoted(c, '"'),
            State::DoubleQuoteEscape => self.double_quote_escape(c),
            State::Comment => {
                if c == '\\' {
                    self.state = State::CommentEscape;
                } else if NEWLINE.contains(&c) {
                    self.newline();
                }
            }
            State::CommentEscape => {
                if NEWLINE.contains(&c) {
                    self.newline();
                } else {
                    self.state = State::Comment;
                }
            }
        }
    }

    /// The end of the text: an assignment in progress counts.
    fn finish(mut self) -> Vec<RawAssignment> {
        match self.state {
            State::PreValue
            | State::ValueEscape
            | State::SingleQuote
            | State::DoubleQuote
            | State::DoubleQuoteEscape => self.push(None),
            State::Value => self.push(self.last_value_ws),
            _ => {}
        }
        self.out
    }
}

/// Every assignment in `text`, in order, exactly as `parse_env_file_internal` pushes them.
/// Parsing stops at a NUL (systemd reads a C string).
pub fn parse_raw(text: &str) -> Vec<RawAssignment> {
    let text = text.split('\0').next().unwrap_or("");
    let mut p = Parser {
        out: Vec::new(),
        state: State::PreKey,
        key: String::new(),
        value: String::new(),
        last_key_ws: None,
        last_value_ws: None,
        line: 1,
        start_line: 1,
    };
    for c in text.chars() {
        p.feed(c);
    }
    p.finish()
}

/// Load an environment file's text as systemd does for `EnvironmentFile=`.
pub fn parse(text: &str) -> EnvFile {
    let mut env = EnvFile::default();
    // Where each key is in `vars`: a lookup per assignment keeps this linear in the file.
    let mut index: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for a in parse_raw(text) {
        if !env_name_is_valid(&a.key) {
            env.ignored.push(format!(
                "line {}: invalid variable name {:?}, ignored by systemd",
                a.line, a.key
            ));
            continue;
        }
        match index.get(&a.key) {
            Some(&i) => env.vars[i].1 = a.value,
            None => {
                index.insert(a.key.clone(), env.vars.len());
                env.vars.push((a.key, a.value));
            }
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

    use crate::kubelet::rootfs::corpus_text as corpus;

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

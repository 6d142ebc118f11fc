//! Environment expansion at exec time, as systemd's `replace_env_argv()` (env-util.c) does it.

use std::collections::HashMap;

use super::envfile;
use super::words::split_value;

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

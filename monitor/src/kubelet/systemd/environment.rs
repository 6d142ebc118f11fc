//! Environment expansion at exec time, as systemd's `replace_env_argv()` (env-util.c) does it.

use std::collections::HashMap;

use super::envfile;
use super::words::split_value;

/// The most bytes of argument strings (each with its NUL) `execve()` can take: the kernel's
/// `bprm_stack_limits()` (fs/exec.c) allows argv and envp together at most 3/4 of `_STK_LIM`
/// (8 MiB), whatever the stack rlimit, and fails with E2BIG beyond. A command line longer than
/// this never starts, so the expansion stops there: its work stays bounded however many times a
/// large variable is used.
pub const EXEC_ARGS_MAX: usize = 6 * 1024 * 1024;

/// The expanded command line is longer than [`EXEC_ARGS_MAX`]: `execve()` would fail (E2BIG).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "the expanded command line is longer than {EXEC_ARGS_MAX} bytes, more than execve() takes (E2BIG): the kubelet would not start"
)]
pub struct ArgsTooLong;

/// Bytes left for the command line.
struct Budget(usize);

impl Budget {
    /// Takes `n` bytes (an argument and its NUL).
    fn take(&mut self, n: usize) -> Result<(), ArgsTooLong> {
        self.0 = self.0.checked_sub(n).ok_or(ArgsTooLong)?;
        Ok(())
    }
}

/// replace_env_full() without extensions: `${NAME}` anywhere (unset or invalid name: empty),
/// `$$` is `$`, everything else literal.
/// Fails once the word outgrows `budget`.
fn replace_env_word(
    word: &str,
    env: &HashMap<String, String>,
    budget: &Budget,
) -> Result<String, ArgsTooLong> {
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
                        if out.len() + v.len() > budget.0 {
                            return Err(ArgsTooLong);
                        }
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
    Ok(out)
}

/// replace_env_argv(): the argv systemd executes. Also returns the names of unset (or invalid)
/// variables used as whole words. Linear in the input and the output, and the output is bounded
/// by [`EXEC_ARGS_MAX`]: each variable is split once however often it is used.
pub fn expand_argv(
    argv: &[String],
    env: &HashMap<String, String>,
) -> Result<(Vec<String>, Vec<String>), ArgsTooLong> {
    let mut out = Vec::new();
    let mut unset = Vec::new();
    let mut budget = Budget(EXEC_ARGS_MAX);
    let mut split: HashMap<&str, Vec<String>> = HashMap::new();
    for w in argv {
        let b = w.as_bytes();
        if b.first() == Some(&b'$') && !matches!(b.get(1), Some(b'{') | Some(b'$')) {
            let name = &w[1..];
            match env.get(name) {
                Some(v) if envfile::env_name_is_valid(name) => {
                    let words = split.entry(name).or_insert_with(|| split_value(v));
                    for word in words.iter() {
                        budget.take(word.len() + 1)?;
                        out.push(word.clone());
                    }
                }
                _ => unset.push(name.to_owned()),
            }
            continue;
        }
        let word = replace_env_word(w, env, &budget)?;
        budget.take(word.len() + 1)?;
        out.push(word);
    }
    Ok((out, unset))
}

//! Words, as systemd's `extract_first_word()` (extract-word.c) and `cunescape_one()`
//! (escape.c) split them: quoting, C escapes, and the relaxed variants used for values.

pub(super) const WHITESPACE: &[char] = &[' ', '\t', '\n', '\r'];

#[derive(Clone, Copy, Default)]
pub(super) struct Extract {
    pub(super) unquote: bool,
    pub(super) cunescape: bool,
    pub(super) relax: bool,
    pub(super) cunescape_relax: bool,
}

pub(super) const EXEC_WORDS: Extract = Extract {
    unquote: true,
    cunescape: true,
    relax: false,
    cunescape_relax: false,
};
pub(super) const VALUE_WORDS: Extract = Extract {
    unquote: true,
    cunescape: false,
    relax: true,
    cunescape_relax: false,
};

#[derive(Debug, PartialEq, Eq)]
pub(super) enum WordError {
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
pub(super) fn extract_first_word(
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
pub(super) fn extract_word_warn(
    s: &[char],
    pos: &mut usize,
    f: Extract,
) -> Result<Option<String>, WordError> {
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

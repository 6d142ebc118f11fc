//! Human text, one line per report (on stderr in the daemon). The status is coloured only when
//! the stream is a terminal. Every value is escaped with [`escape`]: control characters
//! (C0, DEL, C1) and bidirectional-override characters cannot reach the terminal.

use std::io::IsTerminal;

use super::{
    Sink,
    line::{LineOut, LineWriter, Target},
    sentence_escaped, status_str,
};
use crate::{
    finding::Status,
    report::{DriftReport, Notice, NoticeLevel},
};

/// Escapes what could move the cursor, change colours, set a window title or reorder text:
/// `\n`, `\r`, `\t` as themselves, other control characters as `\xHH` / `\u{HHHH}`, and a
/// literal backslash as `\\` (so an escaped value is not ambiguous).
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x80 && c.is_control() => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c if c.is_control()
                || ('\u{202a}'..='\u{202e}').contains(&c)
                || ('\u{2066}'..='\u{2069}').contains(&c) =>
            {
                out.push_str(&format!("\\u{{{:04x}}}", c as u32))
            }
            c => out.push(c),
        }
    }
    out
}

/// [`escape`] for bytes that may not be UTF-8: each byte that is not part of a UTF-8
/// character is written `\xHH` (so nothing is lost and nothing reaches the terminal raw).
pub fn escape_bytes(b: &[u8]) -> String {
    let mut out = String::with_capacity(b.len());
    for chunk in b.utf8_chunks() {
        out.push_str(&escape(chunk.valid()));
        for byte in chunk.invalid() {
            out.push_str(&format!("\\x{byte:02x}"));
        }
    }
    out
}

/// [`escape_bytes`] for a path.
pub fn escape_path(p: &std::path::Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    escape_bytes(p.as_os_str().as_bytes())
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ` (UTC) without a date crate.
pub fn rfc3339(t: std::time::SystemTime) -> String {
    let ms = t
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    let (days, rem) = (ms.div_euclid(86_400_000), ms.rem_euclid(86_400_000));
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3_600_000,
        rem / 60_000 % 60,
        rem / 1000 % 60,
        rem % 1000
    )
}

/// Writes whole lines: through a [`LineWriter`] (never waiting long on a stalled terminal
/// or pipe) in the daemon, to a buffer in tests.
pub struct TextSink<W: LineOut> {
    out: W,
    color: bool,
}

impl TextSink<LineWriter> {
    /// stderr, coloured when it is a terminal.
    pub fn stderr() -> Self {
        let color = std::io::stderr().is_terminal();
        let (out, _) = LineWriter::new(Target::Fd(2));
        TextSink { out, color }
    }
}

impl<W: LineOut> TextSink<W> {
    pub fn new(out: W, color: bool) -> Self {
        TextSink { out, color }
    }

    pub fn into_inner(self) -> W {
        self.out
    }

    fn paint(&self, word: &str, code: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{word}\x1b[0m")
        } else {
            word.to_string()
        }
    }
}

impl<W: LineOut> Sink for TextSink<W> {
    fn report(&mut self, r: &DriftReport) -> anyhow::Result<()> {
        let code = match r.finding.status {
            Status::Pass => "32",
            Status::Fail => "1;31",
            Status::Error => "1;33",
        };
        let status = self.paint(&status_str(r.finding.status).to_uppercase(), code);
        let line = format!(
            "{} {status} {} [{}] {}\n",
            rfc3339(r.time),
            r.change.as_str(),
            escape(&r.node),
            sentence_escaped(r)
        );
        self.out.put_line(line.as_bytes())?;
        Ok(())
    }

    fn notice(&mut self, n: &Notice) -> anyhow::Result<()> {
        let (word, code) = match n.level {
            NoticeLevel::Info => ("INFO", "36"),
            NoticeLevel::Warning => ("WARNING", "33"),
            NoticeLevel::Error => ("ERROR", "1;31"),
        };
        let word = self.paint(word, code);
        let line = format!(
            "{} {word} notice {}\n",
            rfc3339(std::time::SystemTime::now()),
            escape(&n.message)
        );
        self.out.put_line(line.as_bytes())?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{output::testutil, report::Change};

    #[test]
    fn escape_neutralises_terminal_controls() {
        assert_eq!(escape("a\x1b[2Jb"), "a\\x1b[2Jb");
        assert_eq!(escape("a\nb\\n"), "a\\nb\\\\n");
        assert_eq!(escape("\u{9b}31m \u{202e}txt"), "\\u{009b}31m \\u{202e}txt");
        assert_eq!(escape("\x07\x7f"), "\\x07\\x7f");
        assert_eq!(escape("plain é ✓"), "plain é ✓");
        assert_eq!(escape_bytes(b"a\xff\xc3b\n\xc3\xa9"), "a\\xff\\xc3b\\né");
        use std::os::unix::ffi::OsStrExt;
        let p = std::path::Path::new(std::ffi::OsStr::from_bytes(b"/etc/\x1b[31m\xfe\nx"));
        assert_eq!(escape_path(p), "/etc/\\x1b[31m\\xfe\\nx");
    }

    #[test]
    fn rfc3339_is_utc() {
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(1_700_000_000_123);
        assert_eq!(rfc3339(t), "2023-11-14T22:13:20.123Z");
        assert_eq!(rfc3339(std::time::UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
    }

    #[test]
    fn one_line_per_report_no_escapes_without_tty() {
        let mut s = TextSink::new(Vec::new(), false);
        for c in testutil::ALL_CHANGES {
            s.report(&testutil::hostile_report(c)).unwrap();
        }
        let out = String::from_utf8(s.into_inner()).unwrap();
        assert_eq!(out.lines().count(), testutil::ALL_CHANGES.len());
        assert!(!out.contains('\x1b'), "{out}");
        assert!(!out.chars().any(|c| c.is_control() && c != '\n'));
        assert!(out.contains("FAIL drift_detected"));
        assert!(out.contains("\\x1b[2Jevil\\nX=1"));
        // The trigger path's byte that is not UTF-8 is shown, escaped, not replaced.
        assert!(out.contains("/etc/\\xff\\x1b[31mk\\nPRIORITY=0"), "{out}");
    }

    #[test]
    fn colour_only_on_status_when_asked() {
        let mut s = TextSink::new(Vec::new(), true);
        s.report(&testutil::hostile_report(Change::DriftDetected))
            .unwrap();
        let out = String::from_utf8(s.into_inner()).unwrap();
        // Exactly our two escapes (colour on, reset), none from the values.
        assert_eq!(out.matches('\x1b').count(), 2, "{out:?}");
        assert!(out.contains("\x1b[1;31mFAIL\x1b[0m"));
    }
}

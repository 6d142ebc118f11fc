//! The daemon's own diagnostics (tracing, `KUBELET_DRIFT_LOG`) on stderr, never waited for.
//!
//! stderr may be a pipe nobody reads (a supervisor that stopped reading, a `2>&1 | cmd` whose
//! cmd hung): a blocking write there would freeze the event loop and with it every finding.
//! So each diagnostic line is written whole with one non-blocking attempt (see
//! [`line::LineWriter`] with no stall) or dropped; dropped lines are counted, and the loop
//! tells the count on the findings' outputs ([`DroppedLines`]) and in the metrics. Lossy on
//! purpose: diagnostics are for people debugging, findings never go through them.

use std::{
    io::Write,
    sync::{
        Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use super::line::{self, LineOut};

/// Diagnostic lines that could not be written (stderr full or broken) since start.
static DROPPED: AtomicU64 = AtomicU64::new(0);

/// stderr, opened non-blocking once (its own open file description: the inherited one's
/// flags are left alone).
static STDERR: Mutex<Option<Box<dyn LineOut>>> = Mutex::new(None);

/// Lines that could not be written since start.
pub fn dropped() -> u64 {
    DROPPED.load(Ordering::Relaxed)
}

/// Writes one line (a newline is added if missing) to `out` without waiting; counts it when
/// it is not taken.
fn put(out: &mut dyn LineOut, text: &[u8]) {
    let res = if text.ends_with(b"\n") {
        out.put_line(text)
    } else {
        let mut l = Vec::with_capacity(text.len() + 1);
        l.extend_from_slice(text);
        l.push(b'\n');
        out.put_line(&l)
    };
    if let Err(e) = res
        && !e.taken
    {
        DROPPED.fetch_add(1, Ordering::Relaxed);
    }
}

/// One line to stderr without waiting (what `eprintln!` would block on).
pub fn say(text: &str) {
    let mut g = STDERR.lock().unwrap_or_else(|e| e.into_inner());
    let out = g.get_or_insert_with(|| {
        let (w, _) = line::LineWriter::new(line::Target::Fd(2));
        Box::new(w.with_stall(Duration::ZERO))
    });
    put(out.as_mut(), text.as_bytes());
}

/// The daemon's last words (why it exits): waits up to [`line::STALL`] for a stalled reader,
/// then gives up.
pub fn say_last(text: &str) {
    let (mut w, _) = line::LineWriter::new(line::Target::Fd(2));
    put(&mut w, text.as_bytes());
}

/// The `MakeWriter` of the daemon's tracing subscriber: every event, formatted whole, is one
/// [`say`].
pub struct Writer;

impl Write for Writer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        say(&String::from_utf8_lossy(buf));
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Writer {
    type Writer = Writer;
    fn make_writer(&'a self) -> Writer {
        Writer
    }
}

/// Installs the daemon's tracing subscriber: `filter` (an EnvFilter directive) on a stderr
/// that is never waited for.
pub fn init(filter: &str) {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(Writer)
        .try_init();
}

/// How often at most the loss of diagnostic lines is told on the outputs.
pub const TELL_EVERY: Duration = Duration::from_secs(10);

/// Tells, at most every [`TELL_EVERY`], how many diagnostic lines were dropped since it last
/// told.
#[derive(Default)]
pub struct DroppedLines {
    told: u64,
    last: Option<Instant>,
}

impl DroppedLines {
    /// The number of lines dropped since the last time this returned something, when there
    /// are some and the last time was at least [`TELL_EVERY`] ago.
    pub fn due(&mut self, total: u64, now: Instant) -> Option<u64> {
        if total <= self.told || self.last.is_some_and(|t| now < t + TELL_EVERY) {
            return None;
        }
        let n = total - self.told;
        self.told = total;
        self.last = Some(now);
        Some(n)
    }

    /// The notice for `n` dropped lines.
    pub fn notice(n: u64) -> crate::report::Notice {
        crate::report::Notice {
            level: crate::report::NoticeLevel::Warning,
            message: format!(
                "{n} line(s) of kubelet-drift's own diagnostics could not be written to stderr \
                 (full or closed: nobody reads it) and were dropped; findings are not affected"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A pipe nobody reads, one page big: lines are dropped and counted, never waited for.
    #[test]
    fn a_full_pipe_drops_and_counts_without_waiting() {
        let mut fds = [0; 2];
        // SAFETY: pipe2 fills two descriptors we then own.
        assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
        // SAFETY: resizing a pipe we own.
        unsafe { libc::fcntl(fds[1], libc::F_SETPIPE_SZ, 4096) };
        let (w, _) = line::LineWriter::new(line::Target::Fd(fds[1]));
        let mut w = w.with_stall(Duration::ZERO);
        let before = dropped();
        let t = Instant::now();
        let text = "x".repeat(100);
        for _ in 0..1000 {
            put(&mut w, text.as_bytes());
        }
        assert!(t.elapsed() < Duration::from_secs(2), "waited");
        // At most 4096 bytes fit: ~40 lines of 101 bytes taken, the rest dropped.
        let n = dropped() - before;
        assert!((950..=1000).contains(&n), "{n} dropped");
        // SAFETY: closing what we opened.
        unsafe {
            libc::close(fds[0]);
            libc::close(fds[1]);
        }
    }

    #[test]
    fn the_loss_is_told_at_most_every_ten_seconds_with_the_count_since() {
        let mut d = DroppedLines::default();
        let t = Instant::now();
        assert_eq!(d.due(0, t), None);
        assert_eq!(d.due(5, t), Some(5));
        assert_eq!(d.due(9, t + Duration::from_secs(1)), None);
        assert_eq!(d.due(9, t + TELL_EVERY), Some(4));
        assert_eq!(d.due(9, t + TELL_EVERY * 3), None);
        assert!(DroppedLines::notice(4).message.starts_with("4 line(s)"));
    }
}

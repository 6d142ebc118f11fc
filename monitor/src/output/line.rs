//! Whole lines to a file, FIFO, pipe, terminal or socket, never waiting long for any of them.
//!
//! A record is one line, and a line reaches its destination whole or not at all:
//! - a regular file: the line is appended in one write; after `ENOSPC`, `EIO` or a short
//!   write the file is cut back to where it ended before (and, when that fails, to its last
//!   complete line before the next record), so no torn record is left and no two records
//!   are glued together. A file named by path (`json_out`) that ends in a torn line when
//!   opened is cut back the same way.
//! - a FIFO, pipe or terminal: written without blocking (a FIFO is opened `O_NONBLOCK`, so
//!   one without a reader is an error, not a hang; an inherited pipe is reopened through
//!   `/proc/self/fd` so the flag does not leak to the other processes sharing it). A line the
//!   reader has taken only part of is finished before anything else is written (a pipe cannot
//!   be cut back), waiting at most the stall time each call; a line that cannot even start
//!   within the stall time is refused.
//! - a socket (stdout of a systemd service is one): `send(MSG_DONTWAIT)`, same rules as a pipe.
//!
//! The caller (a sink's own writer thread, see [`super::Outputs`]) learns from
//! [`LineError::taken`] whether a refused line is lost or only delayed.

use std::{
    fs::File,
    io,
    os::{
        fd::{AsRawFd, FromRawFd, OwnedFd, RawFd},
        unix::{fs::FileTypeExt, fs::OpenOptionsExt},
    },
    path::PathBuf,
    time::{Duration, Instant},
};

/// How long one call may wait for a reader that does not read.
pub const STALL: Duration = Duration::from_secs(1);

/// A line that was not (entirely) written.
#[derive(Debug, thiserror::Error)]
#[error("{what}: {message}")]
pub struct LineError {
    what: String,
    message: String,
    /// The line was handed on in part and will be finished by a later call: delayed, not lost.
    pub taken: bool,
}

/// Where lines go.
#[derive(Clone, Debug)]
pub enum Target {
    /// A path: a regular file (appended to, created 0640) or a FIFO.
    Path(PathBuf),
    /// An inherited descriptor (1 for stdout, 2 for stderr).
    Fd(RawFd),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// Regular file; `append` when every write goes to the end.
    File { append: bool },
    /// FIFO, pipe or terminal, non-blocking.
    Stream,
    /// A socket: `send(MSG_DONTWAIT)`.
    Socket,
    /// Anything we could not make non-blocking: written from the sink's own thread anyway.
    Blocking,
}

pub struct LineWriter {
    target: Target,
    fd: Option<(OwnedFd, Kind)>,
    /// The rest of a line a stream has taken part of.
    tail: Vec<u8>,
    /// The file may end with a torn line: cut it back before the next record.
    dirty: bool,
    stall: Duration,
}

/// Writes lines to something that is not a file (tests, buffers).
pub trait LineOut: Send {
    fn put_line(&mut self, line: &[u8]) -> Result<(), LineError>;
}

impl LineOut for Vec<u8> {
    fn put_line(&mut self, line: &[u8]) -> Result<(), LineError> {
        self.extend_from_slice(line);
        Ok(())
    }
}

impl LineOut for LineWriter {
    fn put_line(&mut self, line: &[u8]) -> Result<(), LineError> {
        self.write_line(line)
    }
}

fn errno() -> io::Error {
    io::Error::last_os_error()
}

impl LineWriter {
    /// Opens `target` now; an error (a FIFO without a reader, say) leaves it to be opened
    /// again with the next line.
    pub fn new(target: Target) -> (LineWriter, Option<LineError>) {
        let mut w = LineWriter {
            target,
            fd: None,
            tail: Vec::new(),
            dirty: false,
            stall: STALL,
        };
        let err = w.open().err();
        (w, err)
    }

    /// Sets how long one call may wait on a stalled reader (tests).
    pub fn with_stall(mut self, stall: Duration) -> Self {
        self.stall = stall;
        self
    }

    fn what(&self) -> String {
        match &self.target {
            Target::Path(p) => p.display().to_string(),
            Target::Fd(1) => "stdout".into(),
            Target::Fd(2) => "stderr".into(),
            Target::Fd(n) => format!("fd {n}"),
        }
    }

    fn err(&self, message: impl std::fmt::Display, taken: bool) -> LineError {
        LineError {
            what: self.what(),
            message: message.to_string(),
            taken,
        }
    }

    fn open(&mut self) -> Result<(), LineError> {
        let (fd, kind) = match &self.target {
            Target::Path(p) => {
                // O_NONBLOCK: a FIFO without a reader fails with ENXIO instead of hanging.
                // Write-only: read-write would make us a FIFO's reader. A file is read back
                // through /proc (see `repair`).
                let f = std::fs::OpenOptions::new()
                    .append(true)
                    .create(true)
                    .mode(0o640)
                    .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
                    .open(p)
                    .map_err(|e| match e.raw_os_error() {
                        Some(libc::ENXIO) => self.err("a FIFO with no reader", false),
                        _ => self.err(format!("opening for appending: {e}"), false),
                    })?;
                let kind = kind_of(&f, true);
                (OwnedFd::from(f), kind)
            }
            Target::Fd(n) => reopen_fd(*n).map_err(|e| self.err(e, false))?,
        };
        self.tail.clear();
        self.fd = Some((fd, kind));
        // Our own file (json_out) may end in a record torn by an earlier run: cut it back.
        // An inherited stderr or stdout file is not ours to cut; only our failed writes are.
        if matches!(kind, Kind::File { .. }) && matches!(self.target, Target::Path(_)) {
            self.dirty = true;
            self.repair()?;
        }
        Ok(())
    }

    /// Closes a path target, so the next line opens the path again (SIGHUP after a log
    /// rotation). A line a pipe took in part is still finished first.
    pub fn reopen(&mut self) {
        if matches!(self.target, Target::Path(_)) {
            self.fd = None;
            self.tail.clear();
        }
    }

    /// Writes one line (which must end with `\n`) whole, or not at all (see the module
    /// documentation for what "not at all" means on each kind of target).
    pub fn write_line(&mut self, line: &[u8]) -> Result<(), LineError> {
        debug_assert!(line.ends_with(b"\n"));
        if self.fd.is_none() {
            self.open()?;
        }
        let (fd, kind) = self
            .fd
            .as_ref()
            .map(|(f, k)| (f.as_raw_fd(), *k))
            .expect("opened above");
        match kind {
            Kind::File { append } => self.write_file(fd, append, line),
            Kind::Stream | Kind::Socket | Kind::Blocking => self.write_stream(fd, kind, line),
        }
    }

    fn write_file(&mut self, fd: RawFd, append: bool, line: &[u8]) -> Result<(), LineError> {
        if self.dirty {
            self.repair()?;
        }
        let start = if append {
            file_size(fd)
        } else {
            // SAFETY: lseek on a descriptor we own.
            let off = unsafe { libc::lseek(fd, 0, libc::SEEK_CUR) };
            if off < 0 {
                Err(errno())
            } else {
                Ok(off as u64)
            }
        }
        .map_err(|e| self.err(e, false))?;
        let mut done = 0;
        let res = loop {
            // SAFETY: the pointer and length describe the unwritten rest of `line`.
            let n = unsafe { libc::write(fd, line[done..].as_ptr().cast(), line.len() - done) };
            if n > 0 {
                done += n as usize;
                if done == line.len() {
                    break Ok(());
                }
            } else if n == 0 {
                break Err(io::Error::from(io::ErrorKind::WriteZero));
            } else {
                let e = errno();
                if e.kind() != io::ErrorKind::Interrupted {
                    break Err(e);
                }
            }
        };
        res.map_err(|e| {
            // Cut back what this record left, so the next one starts on a line of its own.
            // SAFETY: ftruncate/lseek on a descriptor we own.
            let cut = unsafe { libc::ftruncate(fd, start as libc::off_t) } == 0
                && (append
                    || unsafe { libc::lseek(fd, start as libc::off_t, libc::SEEK_SET) } >= 0);
            if !cut {
                self.dirty = true;
            }
            self.err(
                format!("{e} ({done} of {} bytes written, cut back)", line.len()),
                false,
            )
        })
    }

    /// Cuts a file that does not end with a newline back to its last complete line.
    fn repair(&mut self) -> Result<(), LineError> {
        let Some((fd, Kind::File { append })) = self.fd.as_ref().map(|(f, k)| (f.as_raw_fd(), *k))
        else {
            self.dirty = false;
            return Ok(());
        };
        let keep = complete_len(fd)
            .or_else(|e| match e.raw_os_error() {
                // Write-only (an inherited stdout): read it through another open.
                Some(libc::EBADF) => File::open(format!("/proc/self/fd/{fd}"))
                    .and_then(|f| complete_len(f.as_raw_fd())),
                _ => Err(e),
            })
            .map_err(|e| self.err(format!("reading back: {e}"), false))?;
        let size = file_size(fd).map_err(|e| self.err(e, false))?;
        if keep != size {
            // SAFETY: ftruncate/lseek on a descriptor we own.
            let ok = unsafe { libc::ftruncate(fd, keep as libc::off_t) } == 0
                && (append || unsafe { libc::lseek(fd, keep as libc::off_t, libc::SEEK_SET) } >= 0);
            if !ok {
                return Err(self.err(format!("cutting back a torn line: {}", errno()), false));
            }
        }
        self.dirty = false;
        Ok(())
    }

    fn write_stream(&mut self, fd: RawFd, kind: Kind, line: &[u8]) -> Result<(), LineError> {
        let deadline = Instant::now() + self.stall;
        if !self.tail.is_empty() {
            match push(fd, kind, &mut self.tail, deadline) {
                Ok(()) => {}
                Err(None) => {
                    return Err(self.err(
                        format!(
                            "the reader has not read for {:?} (a record it took in part is finished first)",
                            self.stall
                        ),
                        false,
                    ));
                }
                Err(Some(e)) => return Err(self.broken(e)),
            }
        }
        self.tail.extend_from_slice(line);
        match push(fd, kind, &mut self.tail, deadline) {
            Ok(()) => Ok(()),
            Err(None) => {
                let taken = self.tail.len() < line.len();
                if !taken {
                    self.tail.clear();
                }
                Err(self.err(
                    format!("the reader has not read for {:?}", self.stall),
                    taken,
                ))
            }
            Err(Some(e)) => Err(self.broken(e)),
        }
    }

    /// The reader went away (EPIPE, a closed socket): open again with the next line.
    fn broken(&mut self, e: io::Error) -> LineError {
        self.fd = None;
        self.tail.clear();
        self.err(e, false)
    }
}

/// Writes `buf` out, draining it; `Err(None)` when the deadline passed first.
fn push(
    fd: RawFd,
    kind: Kind,
    buf: &mut Vec<u8>,
    deadline: Instant,
) -> Result<(), Option<io::Error>> {
    while !buf.is_empty() {
        // SAFETY: the pointer and length describe `buf`.
        let n = unsafe {
            if kind == Kind::Socket {
                libc::send(
                    fd,
                    buf.as_ptr().cast(),
                    buf.len(),
                    libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
                )
            } else {
                libc::write(fd, buf.as_ptr().cast(), buf.len())
            }
        };
        if n > 0 {
            buf.drain(..n as usize);
            continue;
        }
        let e = if n == 0 {
            io::Error::from(io::ErrorKind::WriteZero)
        } else {
            errno()
        };
        match e.kind() {
            io::ErrorKind::Interrupted => continue,
            io::ErrorKind::WouldBlock => {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(None);
                }
                let mut p = libc::pollfd {
                    fd,
                    events: libc::POLLOUT,
                    revents: 0,
                };
                // SAFETY: one valid pollfd. Its result only decides when to try again.
                unsafe { libc::poll(&mut p, 1, left.as_millis().clamp(1, 60_000) as i32) };
            }
            _ => return Err(Some(e)),
        }
    }
    Ok(())
}

fn file_size(fd: RawFd) -> io::Result<u64> {
    // SAFETY: fstat into a zeroed stat.
    unsafe {
        let mut st: libc::stat = std::mem::zeroed();
        if libc::fstat(fd, &mut st) != 0 {
            return Err(errno());
        }
        Ok(st.st_size as u64)
    }
}

/// The length of a file's complete lines: up to and including its last newline.
pub fn complete_len(fd: RawFd) -> io::Result<u64> {
    let size = file_size(fd)?;
    let mut end = size;
    let mut buf = [0u8; 4096];
    while end > 0 {
        let start = end.saturating_sub(buf.len() as u64);
        let len = (end - start) as usize;
        // SAFETY: reads at most `len` bytes into `buf`.
        let n = unsafe { libc::pread(fd, buf.as_mut_ptr().cast(), len, start as libc::off_t) };
        if n < 0 {
            return Err(errno());
        }
        if n as usize != len {
            return Err(io::Error::from(io::ErrorKind::UnexpectedEof));
        }
        if let Some(i) = buf[..len].iter().rposition(|&b| b == b'\n') {
            return Ok(start + i as u64 + 1);
        }
        end = start;
    }
    Ok(0)
}

fn kind_of(f: &File, append: bool) -> Kind {
    match f.metadata().map(|m| m.file_type()) {
        Ok(t) if t.is_file() => Kind::File { append },
        Ok(t) if t.is_fifo() || t.is_char_device() => Kind::Stream,
        Ok(t) if t.is_socket() => Kind::Socket,
        _ => Kind::Blocking,
    }
}

/// A descriptor of our own for an inherited one: a pipe, FIFO or terminal reopened
/// non-blocking through /proc (its own open file description, so other processes sharing the
/// old one are not affected); a file or socket duplicated.
fn reopen_fd(n: RawFd) -> io::Result<(OwnedFd, Kind)> {
    // SAFETY: F_DUPFD_CLOEXEC returns a new descriptor or -1.
    let dup = unsafe { libc::fcntl(n, libc::F_DUPFD_CLOEXEC, 3) };
    if dup < 0 {
        return Err(errno());
    }
    // SAFETY: `dup` is a new descriptor we own.
    let dup = unsafe { OwnedFd::from_raw_fd(dup) };
    let f = File::from(dup);
    // SAFETY: fcntl F_GETFL on a valid descriptor.
    let append = unsafe { libc::fcntl(f.as_raw_fd(), libc::F_GETFL) } & libc::O_APPEND != 0;
    match kind_of(&f, append) {
        Kind::Stream => {
            match std::fs::OpenOptions::new()
                .write(true)
                .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
                .open(format!("/proc/self/fd/{n}"))
            {
                Ok(own) => Ok((OwnedFd::from(own), Kind::Stream)),
                // No /proc, or a pipe with no reader now: its writes will say so.
                Err(_) => Ok((OwnedFd::from(f), Kind::Blocking)),
            }
        }
        k => Ok((OwnedFd::from(f), k)),
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};

    use super::*;

    #[test]
    fn complete_len_finds_the_last_newline() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        for (content, want) in [
            ("", 0),
            ("a\n", 2),
            ("a\nb\npart", 4),
            ("torn", 0),
            ("a\n\n", 3),
        ] {
            std::fs::write(&p, content).unwrap();
            let f = File::open(&p).unwrap();
            assert_eq!(complete_len(f.as_raw_fd()).unwrap(), want, "{content:?}");
        }
        // Across the 4 KiB chunks it reads backwards in.
        let mut long = "x".repeat(10_000);
        long.insert(3, '\n');
        std::fs::write(&p, &long).unwrap();
        let f = File::open(&p).unwrap();
        assert_eq!(complete_len(f.as_raw_fd()).unwrap(), 4);
    }

    #[test]
    fn a_torn_line_is_cut_back_before_the_next_record() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f.json");
        std::fs::write(&p, "{\"a\":1}\n{\"torn\":").unwrap();
        let (mut w, e) = LineWriter::new(Target::Path(p.clone()));
        assert!(e.is_none(), "{e:?}");
        w.write_line(b"{\"b\":2}\n").unwrap();
        assert_eq!(
            std::fs::read_to_string(&p).unwrap(),
            "{\"a\":1}\n{\"b\":2}\n"
        );
        // A torn line appearing later (a crash of another writer) is cut back too.
        w.dirty = true;
        std::fs::OpenOptions::new()
            .append(true)
            .open(&p)
            .unwrap()
            .write_all(b"{\"half")
            .unwrap();
        w.write_line(b"{\"c\":3}\n").unwrap();
        assert_eq!(
            std::fs::read_to_string(&p).unwrap(),
            "{\"a\":1}\n{\"b\":2}\n{\"c\":3}\n"
        );
    }

    #[test]
    fn a_fifo_without_reader_is_an_error_not_a_hang() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("fifo");
        nix::unistd::mkfifo(&p, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let t = Instant::now();
        let (mut w, e) = LineWriter::new(Target::Path(p.clone()));
        assert!(e.unwrap().to_string().contains("no reader"));
        assert!(w.write_line(b"x\n").is_err());
        // A reader arrives: the next line opens the FIFO and gets through.
        let mut r = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&p)
            .unwrap();
        w.write_line(b"hello\n").unwrap();
        let mut s = String::new();
        r.read_to_string(&mut s).unwrap_or_default();
        assert_eq!(s, "hello\n");
        assert!(t.elapsed() < Duration::from_secs(2));
    }

    #[test]
    fn a_stalled_pipe_is_not_waited_on_and_lines_stay_whole() {
        let (r, wfd) = nix::unistd::pipe().unwrap();
        let (mut w, e) = LineWriter::new(Target::Fd(wfd.as_raw_fd()));
        assert!(e.is_none());
        w = w.with_stall(Duration::from_millis(50));
        assert_eq!(w.fd.as_ref().unwrap().1, Kind::Stream);
        // Longer than PIPE_BUF, so a pipe may take part of one.
        let line = format!("{}\n", "y".repeat(10_000));
        let t = Instant::now();
        let mut results = Vec::new();
        for _ in 0..100 {
            results.push(w.write_line(line.as_bytes()));
        }
        assert!(t.elapsed() < Duration::from_secs(10));
        let refused = results.iter().filter(|r| r.is_err()).count();
        assert!(refused > 0, "a 64 KiB pipe cannot hold 1 MB");
        // One line was taken in part and is owed; the others were refused whole.
        let taken = results
            .iter()
            .filter(|r| r.as_ref().is_err_and(|e| e.taken))
            .count();
        assert_eq!(taken, 1);
        // The reader reads: the owed rest comes first, then new lines, all whole.
        let mut reader = File::from(r);
        let th = std::thread::spawn(move || {
            let mut all = Vec::new();
            reader.read_to_end(&mut all).unwrap();
            all
        });
        w.write_line(b"last\n").unwrap();
        drop(w);
        drop(wfd);
        let all = th.join().unwrap();
        let text = String::from_utf8(all).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(*lines.last().unwrap(), "last");
        assert!(
            lines[..lines.len() - 1]
                .iter()
                .all(|l| l.len() == 10_000 && l.bytes().all(|b| b == b'y'))
        );
        assert_eq!(lines.len() - 1, 100 - refused + taken);
    }
}

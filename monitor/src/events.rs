//! The ring-buffer drain ([`Stream`]) and `kubelet-drift events`, which prints every decoded
//! kernel event as one JSON line (for people diagnosing a node, and for tests).

use std::{
    io::{self, Write},
    path::PathBuf,
    process::ExitCode,
};

use aya::maps::{MapData, RingBuf};
use serde::Serialize;
use tokio::io::unix::AsyncFd;

use crate::{
    decode::{self, Event, Record},
    probes::{ProbeOptions, Probes},
    settings::RingSize,
    watched::{self, WatchSet},
};

/// Drains the ring buffer through `AsyncFd`: waits for readiness, then takes every record
/// available without blocking. Decoding is the only work done here; consumers get whole
/// batches and never hold up the drain.
pub struct Stream {
    fd: AsyncFd<RingBuf<MapData>>,
    /// Records that failed to decode (never expected; counted, not fatal).
    pub decode_errors: u64,
    pub last_decode_error: Option<decode::RecordError>,
}

impl Stream {
    pub fn new(ring: RingBuf<MapData>) -> io::Result<Stream> {
        // SAFETY: the RingBuf owns its map fd for its whole life and always returns that fd.
        let fd = unsafe { AsyncFd::register_with_interest(ring, tokio::io::Interest::READABLE) }
            .map_err(|e| io::Error::other(format!("registering the ring buffer: {e}")))?;
        Ok(Stream {
            fd,
            decode_errors: 0,
            last_decode_error: None,
        })
    }

    /// Waits until at least one record is available, then appends all available records.
    pub async fn next_batch(&mut self, out: &mut Vec<Record>) -> io::Result<()> {
        loop {
            let mut guard = self.fd.readable_mut().await?;
            take_all(
                guard.get_inner_mut(),
                out,
                &mut self.decode_errors,
                &mut self.last_decode_error,
            );
            guard.clear_ready();
            if !out.is_empty() {
                return Ok(());
            }
        }
    }

    /// Takes what is available now, without waiting.
    pub fn drain_now(&mut self, out: &mut Vec<Record>) {
        take_all(
            self.fd.get_mut(),
            out,
            &mut self.decode_errors,
            &mut self.last_decode_error,
        );
    }
}

/// Decodes every record available in `ring` into `out`; bad records are counted.
fn take_all(
    ring: &mut RingBuf<MapData>,
    out: &mut Vec<Record>,
    errors: &mut u64,
    last: &mut Option<decode::RecordError>,
) {
    while let Some(item) = ring.next() {
        match decode::record(&item) {
            Ok(r) => out.push(r),
            Err(e) => {
                *errors += 1;
                *last = Some(e);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::{ffi::OsStr, os::unix::ffi::OsStrExt};

    use super::*;
    use crate::decode::{FileInfo, FileOp, KernelActor, MatchedBy};

    fn file(path: &[u8], comm: &[u8]) -> Record {
        Record {
            lost_before: 0,
            ktime_ns: 1,
            event: Event::File(FileInfo {
                actor: KernelActor {
                    pid: 1,
                    tgid: 1,
                    ppid: 0,
                    uid: 0,
                    gid: 0,
                    cgroup_id: 0,
                    comm: comm.to_vec(),
                    exe: None,
                },
                op: FileOp::Open,
                matched_by: MatchedBy::Inode,
                ret: 3,
                dirfd: -100,
                dirfd2: -1,
                sys_flags: 1,
                dev: 1,
                ino: 2,
                path: PathBuf::from(OsStr::from_bytes(path)),
                path_truncated: false,
                path2: None,
                path2_truncated: false,
                base: None,
                base2: None,
            }),
        }
    }

    /// A non-UTF-8 path is printed escaped, flagged, on one whole line.
    #[test]
    fn non_utf8_paths_are_escaped_and_flagged() {
        let rec = file(b"/etc/k\\ube\xff\xfelet.conf", b"ed\x80");
        let r1 = Some(PathBuf::from(OsStr::from_bytes(b"/x/\xc3")));
        let line = line_of(&rec, r1, None);
        assert_eq!(line.iter().filter(|&&b| b == b'\n').count(), 1);
        assert_eq!(*line.last().unwrap(), b'\n');
        let v: serde_json::Value = serde_json::from_slice(&line).unwrap();
        assert_eq!(v["path"], "/etc/k\\\\ube\\xff\\xfelet.conf", "{v}");
        assert_eq!(v["comm"], "ed\\x80");
        assert_eq!(v["resolved_path"], "/x/\\xc3");
        assert_eq!(v["escaped"], true);
    }

    #[test]
    fn utf8_paths_are_as_they_are_and_unflagged() {
        let rec = file("/etc/kubelet\\é.conf".as_bytes(), b"sed");
        let v: serde_json::Value = serde_json::from_slice(&line_of(&rec, None, None)).unwrap();
        assert_eq!(v["path"], "/etc/kubelet\\é.conf");
        assert!(v.get("escaped").is_none(), "{v}");
        assert!(v.get("resolved_path").is_none());
    }
}

#[derive(clap::Args, Debug)]
#[command(after_help = "Each line is one JSON object: \
{\"event\":\"exec\"|\"exit\"|\"file\"|\"lost\", ...}. File events carry the operation, the path as \
the process gave it, `resolved_path` (against its cwd or dirfd, when the process was still there), \
the syscall's result and the actor (pid, tgid, ppid, uid, gid, comm, cgroup_id).")]
pub struct EventsArgs {
    /// Also watch this file or directory (repeatable); added to the usual kubelet config,
    /// unit and env file locations.
    #[arg(long, value_name = "PATH")]
    pub watch: Vec<PathBuf>,
    /// Do not watch the usual locations, only --watch paths.
    #[arg(long)]
    pub no_default_watch: bool,
    /// Executable names whose exec and exit are reported (repeatable; default: kubelet).
    #[arg(long = "kubelet-name", value_name = "NAME")]
    pub kubelet_names: Vec<String>,
    /// Ring-buffer size in bytes (a power of two, >= 4096; "256KiB", "1MiB" also work), checked
    /// as `run` checks it.
    #[arg(long, value_name = "BYTES", default_value = "256KiB")]
    pub ring_bytes: RingSize,
    /// Print the kernel counters to stderr on exit.
    #[arg(long)]
    pub counters: bool,
}

#[derive(Serialize)]
struct Line<'a> {
    #[serde(flatten)]
    record: &'a Record,
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "decode::ser_opt_path"
    )]
    resolved_path: Option<PathBuf>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "decode::ser_opt_path"
    )]
    resolved_path2: Option<PathBuf>,
    /// Present (true) when a path, comm or exe of the line was not UTF-8 and is escaped
    /// (`\xNN` for each such byte, `\\` for a backslash: see `decode::escape_bytes`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    escaped: bool,
}

/// One record as one complete JSON line (newline included), whatever bytes its paths hold.
fn line_of(rec: &Record, r1: Option<PathBuf>, r2: Option<PathBuf>) -> Vec<u8> {
    let bad = |p: &Option<PathBuf>| {
        p.as_deref()
            .is_some_and(|p| std::str::from_utf8(p.as_os_str().as_encoded_bytes()).is_err())
    };
    let line = Line {
        record: rec,
        escaped: rec.escaped() || bad(&r1) || bad(&r2),
        resolved_path: r1,
        resolved_path2: r2,
    };
    let mut buf = match serde_json::to_vec(&line) {
        Ok(b) => b,
        // Not expected (every field serializes); a line that says so, never a torn one.
        Err(e) => serde_json::to_vec(&serde_json::json!({
            "event": "unprintable", "error": e.to_string()
        }))
        .unwrap_or_default(),
    };
    buf.push(b'\n');
    buf
}

pub fn main(args: EventsArgs) -> ExitCode {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("kubelet-drift events: {e}");
            return ExitCode::from(2);
        }
    };
    match rt.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("kubelet-drift events: {e:#}");
            ExitCode::from(2)
        }
    }
}

pub fn watch_set_for(paths: &[PathBuf], defaults: bool) -> WatchSet {
    let mut set = WatchSet::new();
    if defaults {
        for p in watched::DEFAULT_PATHS {
            set.add(std::path::Path::new(p));
        }
    }
    for p in paths {
        let p = if p.is_absolute() {
            p.clone()
        } else {
            std::env::current_dir()
                .map(|c| c.join(p))
                .unwrap_or_else(|_| p.clone())
        };
        set.add(&p);
    }
    set
}

async fn run(args: EventsArgs) -> anyhow::Result<()> {
    let mut probes = Probes::load(&ProbeOptions {
        ring: args.ring_bytes,
    })?;
    for w in &probes.warnings {
        eprintln!("kubelet-drift events: warning: {w}");
    }
    let names = if args.kubelet_names.is_empty() {
        vec!["kubelet".to_string()]
    } else {
        args.kubelet_names.clone()
    };
    probes.set_comms(&names)?;
    let mut set = watch_set_for(&args.watch, !args.no_default_watch);
    set.apply(&mut probes)?;
    let mut stream = Stream::new(probes.take_ring()?)?;
    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut sigint = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?;
    // Tell whoever started us that the probes are attached (tests wait for this line).
    eprintln!("kubelet-drift events: ready");
    let stdout = io::stdout();
    let mut batch = Vec::new();
    loop {
        tokio::select! {
            r = stream.next_batch(&mut batch) => r?,
            _ = sigterm.recv() => break,
            _ = sigint.recv() => break,
        }
        // Each line is built whole, then written with one write_all: never a torn line
        // between two records.
        let mut out = stdout.lock();
        for rec in batch.drain(..) {
            if rec.lost_before > 0 {
                let lost = serde_json::json!({"event": "lost", "count": rec.lost_before});
                out.write_all(format!("{lost}\n").as_bytes())?;
            }
            let (r1, r2) = match &rec.event {
                Event::File(f) => (
                    watched::resolve(f.actor.tgid, f.dirfd, &f.path),
                    f.path2
                        .as_ref()
                        .and_then(|p| watched::resolve(f.actor.tgid, f.dirfd2, p)),
                ),
                _ => (None, None),
            };
            out.write_all(&line_of(&rec, r1, r2))?;
        }
        out.flush()?;
        drop(out);
        // Files are replaced (sed -i, editors): follow their new inodes, forget the old ones.
        let fresh = watch_set_for(&args.watch, !args.no_default_watch);
        if fresh != set {
            fresh.apply(&mut probes)?;
            set = fresh;
        }
    }
    if args.counters {
        eprintln!("{}", serde_json::to_string(&probes.counters()?)?);
    }
    Ok(())
}

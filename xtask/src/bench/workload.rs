//! The host workloads whose CPU time is compared with and without a watcher: each runs in a
//! forked child that makes only raw system calls (no allocation after fork), and its
//! user+sys CPU time (including the grandchildren it reaped) comes from wait4's rusage.

use std::{ffi::CString, os::unix::ffi::OsStrExt, path::Path};

use anyhow::{Result, bail};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Workload {
    /// open(O_WRONLY|O_CREAT|O_TRUNC)/write/close of unrelated files on tmpfs.
    File,
    /// fork + exec of /bin/true, waited for one at a time.
    Exec,
}

pub const FILE_ITERATIONS: usize = 100_000;
pub const EXECS: usize = 1_500;
const FILE_NAMES: usize = 16;

/// Everything the child needs, prepared before fork.
pub struct Prepared {
    paths: Vec<CString>,
    true_bin: CString,
}

impl Prepared {
    /// `dir` must be on tmpfs; the files there are named `data-N.bin` (unwatched names).
    pub fn new(dir: &Path) -> Result<Prepared> {
        let paths = (0..FILE_NAMES)
            .map(|i| CString::new(dir.join(format!("data-{i}.bin")).as_os_str().as_bytes()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Prepared {
            paths,
            true_bin: CString::new("/bin/true")?,
        })
    }

    /// Runs the workload in a child; returns its user+sys CPU seconds.
    pub fn run(&self, w: Workload) -> Result<f64> {
        // SAFETY: the child only makes async-signal-safe calls (open, write, close, fork,
        // execv, waitpid, _exit) on memory prepared before the fork, then _exits.
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            bail!("fork: {}", std::io::Error::last_os_error());
        }
        if pid == 0 {
            unsafe {
                match w {
                    Workload::File => self.file_child(),
                    Workload::Exec => self.exec_child(),
                }
                libc::_exit(0);
            }
        }
        let mut status = 0;
        let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: waiting for the child we just forked.
        let r = unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
        if r != pid {
            bail!("wait4: {}", std::io::Error::last_os_error());
        }
        if !libc::WIFEXITED(status) || libc::WEXITSTATUS(status) != 0 {
            bail!("the {w:?} workload failed (status {status:#x})");
        }
        let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
        Ok(tv(ru.ru_utime) + tv(ru.ru_stime))
    }

    unsafe fn file_child(&self) {
        let buf = [b'x'; 256];
        for i in 0..FILE_ITERATIONS {
            let p = self.paths[i % self.paths.len()].as_ptr();
            unsafe {
                let fd = libc::open(
                    p,
                    libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC | libc::O_CLOEXEC,
                    0o644,
                );
                if fd < 0 {
                    libc::_exit(2);
                }
                libc::write(fd, buf.as_ptr().cast(), buf.len());
                libc::close(fd);
            }
        }
    }

    unsafe fn exec_child(&self) {
        let argv = [self.true_bin.as_ptr(), std::ptr::null()];
        for _ in 0..EXECS {
            unsafe {
                let pid = libc::fork();
                if pid == 0 {
                    libc::execv(self.true_bin.as_ptr(), argv.as_ptr());
                    libc::_exit(127);
                }
                if pid < 0 {
                    libc::_exit(3);
                }
                let mut st = 0;
                libc::waitpid(pid, &mut st, 0);
                if !libc::WIFEXITED(st) || libc::WEXITSTATUS(st) != 0 {
                    libc::_exit(4);
                }
            }
        }
    }
}

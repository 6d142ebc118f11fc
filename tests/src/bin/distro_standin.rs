//! Stand-in for a distribution's kubelet host or supervisor (k3s, kubelite, rke2,
//! kubenswrapper) and for the kubelet it starts: waits until killed, after doing what the real
//! process does that the monitor sees.
//!
//! - `KD_TITLE`: rewrites the process title in place as k3s does (k3s-io/k3s
//!   `pkg/cli/server/server.go`: `gspt.SetProcTitle(os.Args[0] + " server")`, which clears the
//!   whole argv area and writes the title at its start), so `/proc/<pid>/cmdline` is the title
//!   followed by NULs and k3s's own arguments are gone.
//! - `KD_CHILD`: a program and its arguments, separated by `\x1f`, started as a child (RKE2's
//!   `rke2 server` starts its kubelet, OpenShift's `kubenswrapper` runs `/usr/bin/kubelet`).

use std::ffi::c_char;

unsafe extern "C" {
    /// glibc: `argv[0]` as given to `main`, the start of the argv area.
    static program_invocation_name: *mut c_char;
}

/// Overwrites the argv area (`argv[0]` through the last argument's NUL) with `title` and NULs.
fn set_title(title: &[u8]) {
    let area: usize = std::env::args_os().map(|a| a.len() + 1).sum();
    if area == 0 {
        return;
    }
    let n = title.len().min(area - 1);
    // SAFETY: the kernel lays argv's strings out contiguously from argv[0]; `area` bytes from
    // there are the strings and their NULs, which this process owns and nothing else reads
    // (std copied what it needs).
    unsafe {
        let start = program_invocation_name as *mut u8;
        std::ptr::write_bytes(start, 0, area);
        std::ptr::copy_nonoverlapping(title.as_ptr(), start, n);
    }
}

fn main() {
    use std::os::unix::ffi::OsStrExt;
    if let Some(t) = std::env::var_os("KD_TITLE") {
        set_title(t.as_bytes());
    }
    if let Ok(c) = std::env::var("KD_CHILD") {
        let mut parts = c.split('\x1f');
        let prog = parts.next().unwrap_or_default();
        let mut child = std::process::Command::new(prog)
            .args(parts)
            .env_remove("KD_CHILD")
            .env_remove("KD_TITLE")
            .spawn()
            .unwrap_or_else(|e| panic!("starting {prog}: {e}"));
        // Reaped when it exits, as a supervisor does.
        std::thread::spawn(move || child.wait());
    }
    loop {
        std::thread::park();
    }
}

//! The reference: `tests/kubelet-ref`, a Go program on the kubelet's own libraries, built in
//! GOPATH mode from Debian's packages (no network) and kept running: one case per line in,
//! one verdict per line out.

use std::{
    io::{BufRead, BufReader, Write},
    path::{Path, PathBuf},
    process::{Child, ChildStdin, ChildStdout, Command, Stdio},
};

use serde_json::{Value, json};

/// The Debian packages the reference is built from (GOPATH mode: /usr/share/gocode), one a
/// line after the comments; `cargo xtask setup` installs the same list.
pub fn go_packages() -> Vec<&'static str> {
    include_str!("../kubelet-ref/debian-packages")
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(str::trim)
        .collect()
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    /// "pass", "fail" or "error".
    pub status: String,
    pub reason: String,
}

pub struct Reference {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
}

fn source_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("kubelet-ref")
}

/// The reference binary: `$KUBELET_REF` (built by `cargo xtask test`), else built here.
pub fn binary() -> PathBuf {
    if let Some(p) = std::env::var_os("KUBELET_REF") {
        return PathBuf::from(p);
    }
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("kubelet-ref");
    let status = Command::new("go")
        .args(["build", "-o"])
        .arg(&out)
        .arg(".")
        .current_dir(source_dir())
        .env("GOPATH", "/usr/share/gocode")
        .env("GO111MODULE", "off")
        .env("GOFLAGS", "")
        .env(
            "GOCACHE",
            Path::new(env!("CARGO_TARGET_TMPDIR")).join("go-cache"),
        )
        .status();
    match status {
        Ok(s) if s.success() => out,
        other => panic!(
            "cannot build the differential reference tests/kubelet-ref ({other:?}): it needs Go and \
             the kubelet's libraries from Debian ({}); `cargo xtask test` installs them",
            go_packages().join(" ")
        ),
    }
}

impl Reference {
    pub fn start() -> Reference {
        let bin = binary();
        let mut child = Command::new(&bin)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", bin.display()));
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        Reference {
            child,
            stdin,
            stdout,
        }
    }

    fn request(root: &Path, args: &[String]) -> String {
        let mut line = json!({"root": root, "cwd": "/", "args": args}).to_string();
        line.push('\n');
        line
    }

    fn read_verdict(&mut self) -> Verdict {
        let mut line = String::new();
        let n = self
            .stdout
            .read_line(&mut line)
            .expect("reading the reference");
        assert!(n > 0, "the reference exited");
        let v: Value = serde_json::from_str(&line).expect("a verdict line");
        Verdict {
            status: v["status"].as_str().unwrap_or("?").to_string(),
            reason: v["reason"].as_str().unwrap_or("").to_string(),
        }
    }

    /// Many cases at once: written by a thread while the verdicts are read, so that neither
    /// pipe fills up.
    pub fn decide_all(&mut self, cases: &[(PathBuf, Vec<String>)]) -> Vec<Verdict> {
        let text: String = cases.iter().map(|(r, a)| Self::request(r, a)).collect();
        let mut stdin = self.stdin.take().unwrap();
        let writer = std::thread::spawn(move || {
            stdin
                .write_all(text.as_bytes())
                .expect("writing to the reference");
            stdin
        });
        let out = (0..cases.len()).map(|_| self.read_verdict()).collect();
        self.stdin = Some(writer.join().unwrap());
        out
    }

    pub fn decide(&mut self, root: &Path, args: &[String]) -> Verdict {
        let stdin = self.stdin.as_mut().unwrap();
        stdin
            .write_all(Self::request(root, args).as_bytes())
            .and_then(|_| stdin.flush())
            .expect("writing to the reference");
        self.read_verdict()
    }
}

impl Drop for Reference {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let _ = self.child.wait();
    }
}

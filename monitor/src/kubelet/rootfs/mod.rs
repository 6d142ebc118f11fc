//! Reading files safely inside a root: the host (`/`), an offline node image, or a
//! containerised kubelet's `/proc/<pid>/root`.
//!
//! Paths given to and reported by this module are paths *inside* the root; `host_path`s are
//! what the daemon stats and watches. Symlinks are followed component by component inside the
//! root (an absolute target is relative to the root, `..` never climbs above it), with a bound
//! on the number of links followed. Reading refuses, with a plain [`FsError`], anything that is
//! not a small UTF-8 text file: a FIFO is never opened blocking (it is `lstat`ed first and opened
//! with `O_NONBLOCK`), devices, sockets, directories, dangling or looping links, binary files
//! and absurdly large files.
//!
//! The final open uses `O_NOFOLLOW`, so a symlink swapped in after resolution fails (ELOOP)
//! instead of escaping the root. A race on an intermediate directory is not defended against.
//!
//! Directory listings are kept ([`super::fscache`]): a directory whose inode is unchanged is
//! not listed again. [`RootFs::snapshot`] gives a view for one evaluation in which each path is
//! also `lstat`ed only once (an evaluation resolves the same directories many times). Files
//! are always read: see `fscache` for why their texts are not kept.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::fmt;
use std::fs::{self, File};
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use super::fscache::{self, StatKey};

mod error;
mod kept;
mod snapshot;

use error::kind_of_meta;
pub use error::{FsError, FsErrorKind};
pub use kept::KeepStart;
use snapshot::Memo;

/// Files larger than this are refused as absurdly large for a kubelet config or unit file.
pub const MAX_TEXT_BYTES: u64 = 4 * 1024 * 1024;

/// Symlinks followed while resolving one path before giving up, as Linux's ELOOP (40).
pub const MAX_SYMLINKS: usize = 40;

/// A root to read files in.
#[derive(Clone)]
pub struct RootFs {
    root: PathBuf,
    /// In a [`RootFs::snapshot`]: what each host path's `lstat`/`readlink` gave.
    memo: Option<Arc<Mutex<Memo>>>,
    /// Results kept across evaluations ([`RootFs::keeping`]), shared by its snapshots.
    kept: Option<Arc<Mutex<kept::Kept>>>,
}

impl PartialEq for RootFs {
    fn eq(&self, other: &RootFs) -> bool {
        self.root == other.root
    }
}

impl Eq for RootFs {}

impl fmt::Debug for RootFs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RootFs")
            .field("root", &self.root)
            .field("snapshot", &self.memo.is_some())
            .finish()
    }
}

/// A text file read inside a root.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Text {
    /// The path as asked for, made absolute inside the root (symlinks not resolved): what users see.
    pub path_in_root: PathBuf,
    /// The resolved path on the host: what the daemon stats and watches.
    pub host_path: PathBuf,
    pub text: String,
}

/// The kind of a directory entry, not following symlinks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileKind {
    File,
    Dir,
    Symlink,
    Fifo,
    CharDevice,
    BlockDevice,
    Socket,
    Unknown,
}

impl FileKind {
    fn of(ft: fs::FileType) -> FileKind {
        if ft.is_symlink() {
            FileKind::Symlink
        } else if ft.is_file() {
            FileKind::File
        } else if ft.is_dir() {
            FileKind::Dir
        } else if ft.is_fifo() {
            FileKind::Fifo
        } else if ft.is_char_device() {
            FileKind::CharDevice
        } else if ft.is_block_device() {
            FileKind::BlockDevice
        } else if ft.is_socket() {
            FileKind::Socket
        } else {
            FileKind::Unknown
        }
    }
}

/// One entry of [`RootFs::read_dir_sorted`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirEntry {
    pub name: OsString,
    pub kind: FileKind,
    /// The entry's path inside the root (the directory as given, joined with the name).
    pub path_in_root: PathBuf,
}

/// Makes `path` absolute inside the root (against `cwd` when relative) without touching the
/// filesystem: what users see.
pub fn absolute_in_root(path: &Path, cwd: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        let mut p = if cwd.is_absolute() {
            cwd.to_path_buf()
        } else {
            Path::new("/").join(cwd)
        };
        p.push(path);
        p
    }
}

impl RootFs {
    /// The host's own root, `/`.
    pub fn host() -> RootFs {
        RootFs::new("/")
    }

    /// A root at `root` on the host: a node image directory or `/proc/<pid>/root`.
    pub fn new(root: impl Into<PathBuf>) -> RootFs {
        RootFs {
            root: root.into(),
            memo: None,
            kept: None,
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn host_of(&self, stack: &[OsString]) -> PathBuf {
        let mut p = self.root.clone();
        for c in stack {
            p.push(c);
        }
        p
    }

    /// Resolves `path` (absolute: inside the root; relative: against `cwd`, a path inside the
    /// root) to a host path, following symlinks inside the root. A missing tail is joined
    /// lexically (the path that would be read if it existed); reading it then says it is missing.
    pub fn resolve(&self, path: &Path, cwd: &Path) -> Result<PathBuf, FsError> {
        self.resolve_inner(path, cwd).map(|r| r.host)
    }

    fn resolve_inner(&self, path: &Path, cwd: &Path) -> Result<Resolved, FsError> {
        self.resolve_memo(absolute_in_root(path, cwd), |shown| {
            self.resolve_shown(shown)
        })
    }

    /// Resolves `shown`, a path absolute inside the root.
    fn resolve_shown(&self, shown: PathBuf) -> Result<Resolved, FsError> {
        let mut queue: VecDeque<OsString> = VecDeque::new();
        let mut stack: Vec<OsString> = Vec::new();
        push_components(&mut queue, &mut stack, &shown);
        let mut links = 0usize;
        let mut missing = false;
        let mut dangling: Option<PathBuf> = None;
        while let Some(name) = queue.pop_front() {
            if name == ".." {
                stack.pop();
                continue;
            }
            if missing {
                stack.push(name);
                continue;
            }
            let candidate = {
                let mut p = self.host_of(&stack);
                p.push(&name);
                p
            };
            match self.lstat(&candidate) {
                Ok(m) if m.file_type().is_symlink() => {
                    links += 1;
                    if links > MAX_SYMLINKS {
                        return Err(FsError::new(&shown, FsErrorKind::SymlinkLoop));
                    }
                    let target = self
                        .readlink(&candidate)
                        .map_err(|e| FsError::io(&shown, &e))?;
                    // The rest of the path goes after the link's target.
                    let mut rest: VecDeque<OsString> = VecDeque::new();
                    push_components(&mut rest, &mut stack, &target);
                    rest.extend(queue.drain(..));
                    queue = rest;
                    dangling = Some(target);
                }
                Ok(m) => {
                    if !m.is_dir() && !queue.is_empty() {
                        // `file/x` and `file/..`: ENOTDIR, as Linux says.
                        return Err(FsError::new(&shown, FsErrorKind::NotADirectory));
                    }
                    stack.push(name);
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    missing = true;
                    stack.push(name);
                }
                Err(e) => return Err(FsError::io(&shown, &e)),
            }
        }
        Ok(Resolved {
            shown,
            host: self.host_of(&stack),
            missing,
            dangling: if missing { dangling } else { None },
        })
    }

    /// What `path` (absolute inside the root, or relative to `cwd`) leads to, symlinks
    /// followed inside the root; `None` when it does not exist or does not resolve. In a
    /// snapshot this costs no system call beyond the resolution's own `lstat`s.
    pub fn kind(&self, path: &Path, cwd: &Path) -> Option<FileKind> {
        let r = self.resolve_inner(path, cwd).ok()?;
        if r.missing {
            return None;
        }
        self.lstat(&r.host)
            .ok()
            .map(|m| FileKind::of(m.file_type()))
    }

    /// Reads a regular file as UTF-8 text, refusing anything else with a plain error.
    pub fn read_text(&self, path: &Path, cwd: &Path) -> Result<Text, FsError> {
        let r = self.resolve_inner(path, cwd)?;
        if r.missing {
            return Err(FsError::new(
                &r.shown,
                match r.dangling {
                    Some(target) => FsErrorKind::DanglingSymlink { target },
                    None => FsErrorKind::NotFound,
                },
            ));
        }
        let shown = &r.shown;
        // lstat first: a FIFO must never be opened (even non-blocking opens are avoided).
        let m = self.lstat(&r.host).map_err(|e| FsError::io(shown, &e))?;
        if m.file_type().is_symlink() {
            // Swapped in after resolution.
            return Err(FsError::new(shown, FsErrorKind::SymlinkLoop));
        }
        if let Some(k) = kind_of_meta(&m) {
            return Err(FsError::new(shown, k));
        }
        if m.len() > MAX_TEXT_BYTES {
            return Err(FsError::new(shown, FsErrorKind::TooLarge { size: m.len() }));
        }
        let file = File::options()
            .read(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC | libc::O_NOFOLLOW)
            .open(&r.host)
            .map_err(|e| FsError::io(shown, &e))?;
        let m = file.metadata().map_err(|e| FsError::io(shown, &e))?;
        if let Some(k) = kind_of_meta(&m) {
            return Err(FsError::new(shown, k));
        }
        // Sized from fstat: one read for the text and one for the end, not a doubling series.
        let mut bytes = Vec::with_capacity(m.len().min(MAX_TEXT_BYTES) as usize + 1);
        file.take(MAX_TEXT_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| FsError::io(shown, &e))?;
        if bytes.len() as u64 > MAX_TEXT_BYTES {
            return Err(FsError::new(
                shown,
                FsErrorKind::TooLarge {
                    size: bytes.len() as u64,
                },
            ));
        }
        if let Some(offset) = bytes.iter().position(|&b| b == 0) {
            return Err(FsError::new(shown, FsErrorKind::Binary { offset }));
        }
        let text = String::from_utf8(bytes).map_err(|e| {
            FsError::new(
                shown,
                FsErrorKind::NotUtf8 {
                    offset: e.utf8_error().valid_up_to(),
                },
            )
        })?;
        Ok(Text {
            path_in_root: r.shown,
            host_path: r.host,
            text,
        })
    }

    /// Like [`RootFs::read_text`], but `Ok(None)` when the file does not exist (systemd's
    /// `EnvironmentFile=-...`). A dangling symlink counts as missing, as for open(2).
    pub fn read_text_optional(&self, path: &Path, cwd: &Path) -> Result<Option<Text>, FsError> {
        match self.read_text(path, cwd) {
            Ok(t) => Ok(Some(t)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The entries of a directory, sorted by name bytes, kinds not following symlinks.
    pub fn read_dir_sorted(&self, dir: &Path, cwd: &Path) -> Result<Vec<DirEntry>, FsError> {
        let r = self.resolve_inner(dir, cwd)?;
        if r.missing {
            return Err(FsError::new(
                &r.shown,
                match r.dangling {
                    Some(target) => FsErrorKind::DanglingSymlink { target },
                    None => FsErrorKind::NotFound,
                },
            ));
        }
        let m = self.lstat(&r.host).map_err(|e| FsError::io(&r.shown, &e))?;
        if !m.is_dir() {
            return Err(FsError::new(&r.shown, FsErrorKind::NotADirectoryToList));
        }
        self.note_listed(&r.host);
        let key = StatKey::of(&m);
        let listing = match fscache::listing(&r.host, key) {
            Some(l) => l,
            None => {
                let read_start = SystemTime::now();
                let l = Arc::new(list_sorted(&r.host).map_err(|e| FsError::io(&r.shown, &e))?);
                // Keyed by the lstat above: a change since then makes the next lookup miss.
                fscache::put_listing(&r.host, key, l.clone(), read_start);
                l
            }
        };
        Ok(listing
            .iter()
            .map(|(name, kind)| DirEntry {
                path_in_root: r.shown.join(name),
                name: name.clone(),
                kind: *kind,
            })
            .collect())
    }

    /// What Go's `filepath.WalkDir(dir, ...)` visits that is not a directory, in its order:
    /// lexical by name bytes, depth first, symlinks never followed (a symlink to a directory is
    /// a non-directory entry, not walked). Like WalkDir, `dir` itself is `lstat`ed: when it is
    /// a symlink or a file, the only entry is `dir` itself. Any error (missing `dir`, unreadable
    /// subdirectory) is returned, as the kubelet's walk callback returns it.
    pub fn walk_files(&self, dir: &Path, cwd: &Path) -> Result<Vec<PathBuf>, FsError> {
        let shown = absolute_in_root(dir, cwd);
        let host = self.resolve_nofollow(&shown)?;
        let m = self.lstat(&host).map_err(|e| FsError::io(&shown, &e))?;
        let mut out = Vec::new();
        if m.is_dir() {
            self.walk_into(&shown, &mut out, 0)?;
        } else {
            out.push(shown);
        }
        Ok(out)
    }

    fn walk_into(&self, dir: &Path, out: &mut Vec<PathBuf>, depth: usize) -> Result<(), FsError> {
        if depth > 256 {
            return Err(FsError::new(dir, FsErrorKind::SymlinkLoop));
        }
        for ent in self.read_dir_sorted(dir, Path::new("/"))? {
            if ent.kind == FileKind::Dir {
                self.walk_into(&ent.path_in_root, out, depth + 1)?;
            } else {
                out.push(ent.path_in_root);
            }
        }
        Ok(())
    }

    /// The host path of `shown` (absolute inside the root) with every component but the last
    /// resolved, the last left as is (for `lstat`).
    fn resolve_nofollow(&self, shown: &Path) -> Result<PathBuf, FsError> {
        match (shown.parent(), shown.file_name()) {
            (Some(parent), Some(name)) => {
                let r = self.resolve_inner(parent, Path::new("/"))?;
                Ok(r.host.join(name))
            }
            _ => self.resolve(shown, Path::new("/")),
        }
    }

    /// Whether the last component of `path` is itself a symlink (inside the root).
    pub fn is_symlink(&self, path: &Path, cwd: &Path) -> bool {
        let shown = absolute_in_root(path, cwd);
        match self.resolve_nofollow(&shown) {
            Ok(p) => self
                .lstat(&p)
                .map(|m| m.file_type().is_symlink())
                .unwrap_or(false),
            Err(_) => false,
        }
    }
}

/// The entries of the directory at `host`, sorted by name bytes, kinds not following symlinks.
fn list_sorted(host: &Path) -> io::Result<Vec<(OsString, FileKind)>> {
    let mut out = Vec::new();
    for ent in fs::read_dir(host)? {
        let ent = ent?;
        let kind = ent
            .file_type()
            .map(FileKind::of)
            .unwrap_or(FileKind::Unknown);
        out.push((ent.file_name(), kind));
    }
    out.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    Ok(out)
}

#[derive(Clone)]
struct Resolved {
    shown: PathBuf,
    host: PathBuf,
    missing: bool,
    dangling: Option<PathBuf>,
}

/// Appends the components of `p` to `queue`; an absolute `p` (the path asked for, or a link
/// target) restarts at the root by clearing `stack`.
fn push_components(queue: &mut VecDeque<OsString>, stack: &mut Vec<OsString>, p: &Path) {
    for c in p.components() {
        match c {
            Component::RootDir | Component::Prefix(_) => stack.clear(),
            Component::CurDir => {}
            Component::ParentDir => queue.push_back(OsString::from("..")),
            Component::Normal(n) => queue.push_back(n.to_os_string()),
        }
    }
}

#[cfg(test)]
mod testkit;
#[cfg(test)]
mod tests;
#[cfg(test)]
pub(crate) use testkit::{corpus_dir, corpus_text, test_root};

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

use std::collections::{HashMap, VecDeque};
use std::ffi::OsString;
use std::fmt;
use std::fs::{self, File, Metadata};
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use super::fscache::{self, StatKey};

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
}

/// One snapshot's `lstat` and `readlink` results, by host path (errors as errno values).
#[derive(Default)]
struct Memo {
    lstat: HashMap<PathBuf, Result<Metadata, i32>>,
    readlink: HashMap<PathBuf, Result<PathBuf, i32>>,
}

fn errno(e: &io::Error) -> i32 {
    e.raw_os_error().unwrap_or(libc::EIO)
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

/// Why a file could not be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FsErrorKind {
    NotFound,
    /// A symlink points at something that does not exist.
    DanglingSymlink {
        target: PathBuf,
    },
    /// A path component (not the last) is not a directory (ENOTDIR).
    NotADirectory,
    /// More than [`MAX_SYMLINKS`] symlinks, i.e. a loop (ELOOP).
    SymlinkLoop,
    /// EACCES/EPERM.
    PermissionDenied,
    Fifo,
    CharDevice,
    BlockDevice,
    Socket,
    Directory,
    /// Not a regular file, of no kind above.
    NotRegular,
    /// Expected a directory.
    NotADirectoryToList,
    TooLarge {
        size: u64,
    },
    NotUtf8 {
        offset: usize,
    },
    /// Contains NUL bytes.
    Binary {
        offset: usize,
    },
    /// Any other I/O error, with the system's message.
    Io(String),
}

/// A file could not be read: the path (inside the root, as given) and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FsError {
    pub path: PathBuf,
    pub kind: FsErrorKind,
}

impl FsError {
    fn new(path: &Path, kind: FsErrorKind) -> FsError {
        FsError {
            path: path.to_path_buf(),
            kind,
        }
    }
    fn io(path: &Path, e: &io::Error) -> FsError {
        FsError::new(path, kind_of_io(e))
    }
    /// The file (or a component of its path) does not exist, possibly through a dangling link.
    pub fn is_not_found(&self) -> bool {
        matches!(
            self.kind,
            FsErrorKind::NotFound | FsErrorKind::DanglingSymlink { .. }
        )
    }
}

fn kind_of_io(e: &io::Error) -> FsErrorKind {
    match e.raw_os_error() {
        Some(libc::ENOENT) => FsErrorKind::NotFound,
        Some(libc::ENOTDIR) => FsErrorKind::NotADirectory,
        Some(libc::ELOOP) => FsErrorKind::SymlinkLoop,
        Some(libc::EACCES) | Some(libc::EPERM) => FsErrorKind::PermissionDenied,
        Some(libc::EISDIR) => FsErrorKind::Directory,
        Some(libc::ENXIO) => FsErrorKind::NotRegular,
        _ => FsErrorKind::Io(e.to_string()),
    }
}

impl fmt::Display for FsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = self.path.display();
        match &self.kind {
            FsErrorKind::NotFound => write!(f, "{p} does not exist"),
            FsErrorKind::DanglingSymlink { target } => write!(
                f,
                "{p} does not exist: a symlink on its path points at {}, which does not exist",
                target.display()
            ),
            FsErrorKind::NotADirectory => {
                write!(
                    f,
                    "{p} cannot be reached: a component of its path is not a directory"
                )
            }
            FsErrorKind::SymlinkLoop => write!(
                f,
                "{p} cannot be reached: too many levels of symbolic links (a symlink loop)"
            ),
            FsErrorKind::PermissionDenied => write!(f, "{p} cannot be read: permission denied"),
            FsErrorKind::Fifo => write!(f, "{p} is a FIFO, not a regular file"),
            FsErrorKind::CharDevice => write!(f, "{p} is a character device, not a regular file"),
            FsErrorKind::BlockDevice => write!(f, "{p} is a block device, not a regular file"),
            FsErrorKind::Socket => write!(f, "{p} is a socket, not a regular file"),
            FsErrorKind::Directory => write!(f, "{p} is a directory, not a regular file"),
            FsErrorKind::NotRegular => write!(f, "{p} is not a regular file"),
            FsErrorKind::NotADirectoryToList => write!(f, "{p} is not a directory"),
            FsErrorKind::TooLarge { size } => write!(
                f,
                "{p} is absurdly large for a configuration file ({size} bytes, the limit is {MAX_TEXT_BYTES})"
            ),
            FsErrorKind::NotUtf8 { offset } => {
                write!(f, "{p} is not UTF-8 text (invalid byte at offset {offset})")
            }
            FsErrorKind::Binary { offset } => write!(
                f,
                "{p} is a binary file, not text (NUL byte at offset {offset})"
            ),
            FsErrorKind::Io(msg) => write!(f, "{p} cannot be read: {msg}"),
        }
    }
}

impl std::error::Error for FsError {}

fn kind_of_meta(m: &Metadata) -> Option<FsErrorKind> {
    let ft = m.file_type();
    if ft.is_file() {
        None
    } else if ft.is_fifo() {
        Some(FsErrorKind::Fifo)
    } else if ft.is_char_device() {
        Some(FsErrorKind::CharDevice)
    } else if ft.is_block_device() {
        Some(FsErrorKind::BlockDevice)
    } else if ft.is_socket() {
        Some(FsErrorKind::Socket)
    } else if ft.is_dir() {
        Some(FsErrorKind::Directory)
    } else {
        Some(FsErrorKind::NotRegular)
    }
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
        }
    }

    /// The same root for one evaluation: each host path is `lstat`ed (and each link read) at
    /// most once in the snapshot, so it must not outlive the evaluation. Files are still read
    /// each time, and a kept directory listing is used only while the directory's inode is
    /// unchanged (see [`super::fscache`]).
    pub fn snapshot(&self) -> RootFs {
        RootFs {
            root: self.root.clone(),
            memo: Some(Arc::default()),
        }
    }

    /// `lstat(2)` of a host path, once per snapshot.
    fn lstat(&self, host: &Path) -> io::Result<Metadata> {
        let Some(memo) = &self.memo else {
            return fs::symlink_metadata(host);
        };
        if let Some(r) = memo
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .lstat
            .get(host)
        {
            return r.clone().map_err(io::Error::from_raw_os_error);
        }
        let r = fs::symlink_metadata(host);
        let kept = r.as_ref().map(Metadata::clone).map_err(errno);
        memo.lock()
            .unwrap_or_else(|p| p.into_inner())
            .lstat
            .insert(host.to_path_buf(), kept);
        r
    }

    /// `readlink(2)` of a host path, once per snapshot.
    fn readlink(&self, host: &Path) -> io::Result<PathBuf> {
        let Some(memo) = &self.memo else {
            return fs::read_link(host);
        };
        if let Some(r) = memo
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .readlink
            .get(host)
        {
            return r.clone().map_err(io::Error::from_raw_os_error);
        }
        let r = fs::read_link(host);
        let kept = r.as_ref().map(PathBuf::clone).map_err(errno);
        memo.lock()
            .unwrap_or_else(|p| p.into_inner())
            .readlink
            .insert(host.to_path_buf(), kept);
        r
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
        let shown = absolute_in_root(path, cwd);
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
        let mut bytes = Vec::new();
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

/// A node root in a temporary directory holding `files` (path inside the root, content), for
/// tests. The directory lives as long as the returned guard.
#[cfg(test)]
pub(crate) fn test_root(files: &[(&str, &str)]) -> (tempfile::TempDir, RootFs) {
    let dir = tempfile::tempdir().unwrap();
    for (p, text) in files {
        let host = dir.path().join(p.trim_start_matches('/'));
        std::fs::create_dir_all(host.parent().unwrap()).unwrap();
        std::fs::write(host, text).unwrap();
    }
    let fs = RootFs::new(dir.path());
    (dir, fs)
}

/// The environment variable that points the tests at the shared corpus when it is not next to
/// the checkout.
#[cfg(test)]
pub(crate) const CORPUS_ENV: &str = "KUBELET_DRIFT_CORPUS";

/// The shared test corpus (third-party kubelet configs, units and env files, with their
/// origins in `SOURCES.md`), for tests: `shared/corpus` next to the checkout, i.e.
/// `<workspace root>/../shared/corpus`, or the directory named by `KUBELET_DRIFT_CORPUS`.
/// The repository holds no copy of these files. Panics with what to do when it is missing.
#[cfg(test)]
pub(crate) fn corpus_dir() -> PathBuf {
    let p = match std::env::var_os(CORPUS_ENV) {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus"),
    };
    assert!(
        p.join("SOURCES.md").is_file(),
        "the shared test corpus is missing: expected shared/corpus next to the checkout, at {} \
         (a directory holding SOURCES.md); put it there or set {CORPUS_ENV} to its directory",
        p.display()
    );
    p
}

/// The text of `rel` in the shared test corpus ([`corpus_dir`]).
#[cfg(test)]
pub(crate) fn corpus_text(rel: &str) -> String {
    let p = corpus_dir().join(rel);
    std::fs::read_to_string(&p)
        .unwrap_or_else(|e| panic!("corpus file {} cannot be read: {e}", p.display()))
}

#[cfg(test)]
#[allow(clippy::type_complexity)]
mod tests {
    use super::*;
    use std::ffi::CString;
    use std::os::unix::fs::symlink;

    fn setup() -> (tempfile::TempDir, RootFs) {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("root");
        fs::create_dir_all(root.join("etc/kubernetes")).unwrap();
        fs::create_dir_all(root.join("var/lib/kubelet")).unwrap();
        fs::write(
            root.join("var/lib/kubelet/config.yaml"),
            "kind: KubeletConfiguration\n",
        )
        .unwrap();
        // Outside the root: must never be reached.
        fs::write(d.path().join("secret.yaml"), "outside\n").unwrap();
        fs::create_dir_all(d.path().join("etc")).unwrap();
        fs::write(d.path().join("etc/outside.yaml"), "outside\n").unwrap();
        let fs = RootFs::new(&root);
        (d, fs)
    }

    fn mkfifo(p: &Path) {
        let c = CString::new(p.as_os_str().as_bytes()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
    }

    fn read(fs: &RootFs, p: &str) -> Result<String, FsError> {
        fs.read_text(Path::new(p), Path::new("/")).map(|t| t.text)
    }

    #[test]
    fn reads_plain_file_and_relative_paths() {
        let (_d, fs) = setup();
        let t = fs
            .read_text(Path::new("config.yaml"), Path::new("/var/lib/kubelet"))
            .unwrap();
        assert_eq!(t.text, "kind: KubeletConfiguration\n");
        assert_eq!(t.path_in_root, Path::new("/var/lib/kubelet/config.yaml"));
        assert_eq!(t.host_path, fs.root().join("var/lib/kubelet/config.yaml"));
        assert!(read(&fs, "/var/lib/../lib/./kubelet/config.yaml").is_ok());
    }

    #[test]
    fn symlinks_stay_inside_the_root() {
        let (_d, fs) = setup();
        let r = fs.root().to_path_buf();
        // Absolute target: relative to the root, not the host.
        symlink("/var/lib/kubelet/config.yaml", r.join("etc/abs.yaml")).unwrap();
        assert_eq!(
            read(&fs, "/etc/abs.yaml").unwrap(),
            "kind: KubeletConfiguration\n"
        );
        // Climbing out with ../../..: clamps at the root.
        symlink(
            "../../../../../secret.yaml",
            r.join("etc/kubernetes/escape.yaml"),
        )
        .unwrap();
        let e = read(&fs, "/etc/kubernetes/escape.yaml").unwrap_err();
        assert!(matches!(e.kind, FsErrorKind::DanglingSymlink { .. }), "{e}");
        assert_eq!(
            fs.resolve(Path::new("/etc/kubernetes/escape.yaml"), Path::new("/"))
                .unwrap(),
            r.join("secret.yaml")
        );
        // An absolute target naming a host path that exists outside: still inside the root.
        symlink(
            fs.root().parent().unwrap().join("etc/outside.yaml"),
            r.join("etc/host-abs.yaml"),
        )
        .unwrap();
        assert!(read(&fs, "/etc/host-abs.yaml").unwrap_err().is_not_found());
        // `..` in the asked path never climbs above the root either.
        assert!(read(&fs, "/../../secret.yaml").unwrap_err().is_not_found());
        assert_eq!(
            read(&fs, "/../../var/lib/kubelet/config.yaml").unwrap(),
            "kind: KubeletConfiguration\n"
        );
        // Directory symlinks in the middle, and `..` after them goes to the target's parent.
        symlink("/var/lib/kubelet", r.join("etc/kl")).unwrap();
        assert!(read(&fs, "/etc/kl/config.yaml").is_ok());
        assert!(read(&fs, "/etc/kl/../kubelet/config.yaml").is_ok());
    }

    #[test]
    fn refusals() {
        let (d, fs) = setup();
        let r = fs.root().to_path_buf();
        mkfifo(&r.join("etc/fifo.yaml"));
        symlink("/etc/fifo.yaml", r.join("etc/to-fifo.yaml")).unwrap();
        symlink("loop2", r.join("etc/loop1")).unwrap();
        symlink("loop1", r.join("etc/loop2")).unwrap();
        symlink("/nowhere.yaml", r.join("etc/dangling.yaml")).unwrap();
        let big = fs::File::create(r.join("etc/big.yaml")).unwrap();
        big.set_len(5 * 1024 * 1024).unwrap();
        fs::write(r.join("etc/big-text.yaml"), "a".repeat(5 * 1024 * 1024)).unwrap();
        fs::write(r.join("etc/latin1.yaml"), b"name: caf\xe9\n").unwrap();
        fs::write(r.join("etc/nul.yaml"), b"a: 1\n\0\0").unwrap();
        let sock = std::os::unix::net::UnixListener::bind(r.join("etc/sock")).unwrap();
        let cases: &[(&str, fn(&FsErrorKind) -> bool, &str)] = &[
            (
                "/etc/fifo.yaml",
                |k| *k == FsErrorKind::Fifo,
                "is a FIFO, not a regular file",
            ),
            ("/etc/to-fifo.yaml", |k| *k == FsErrorKind::Fifo, "FIFO"),
            (
                "/etc/loop1",
                |k| *k == FsErrorKind::SymlinkLoop,
                "symlink loop",
            ),
            (
                "/etc/loop1/x.yaml",
                |k| *k == FsErrorKind::SymlinkLoop,
                "symlink loop",
            ),
            (
                "/etc/dangling.yaml",
                |k| matches!(k, FsErrorKind::DanglingSymlink { .. }),
                "/nowhere.yaml, which does not exist",
            ),
            (
                "/etc/missing.yaml",
                |k| *k == FsErrorKind::NotFound,
                "does not exist",
            ),
            (
                "/etc/big.yaml",
                |k| matches!(k, FsErrorKind::TooLarge { .. }),
                "absurdly large",
            ),
            (
                "/etc/big-text.yaml",
                |k| matches!(k, FsErrorKind::TooLarge { .. }),
                "absurdly large",
            ),
            (
                "/etc/latin1.yaml",
                |k| *k == FsErrorKind::NotUtf8 { offset: 9 },
                "not UTF-8",
            ),
            (
                "/etc/nul.yaml",
                |k| *k == FsErrorKind::Binary { offset: 5 },
                "binary",
            ),
            (
                "/etc/kubernetes",
                |k| *k == FsErrorKind::Directory,
                "is a directory",
            ),
            ("/etc/sock", |k| *k == FsErrorKind::Socket, "is a socket"),
            // EACCES cannot be triggered as root (DAC override); a path under a file gives
            // ENOTDIR, which is refused the same way (and EACCES maps to PermissionDenied).
            (
                "/var/lib/kubelet/config.yaml/x",
                |k| *k == FsErrorKind::NotADirectory,
                "not a directory",
            ),
            (
                "/var/lib/kubelet/config.yaml/..",
                |k| *k == FsErrorKind::NotADirectory,
                "not a directory",
            ),
        ];
        for (p, ok, msg) in cases {
            let e = read(&fs, p).unwrap_err();
            assert!(ok(&e.kind), "{p}: {:?}", e.kind);
            assert_eq!(e.path, Path::new(p));
            let shown = e.to_string();
            assert!(shown.contains(msg), "{p}: {shown}");
            assert!(shown.starts_with(p), "{shown}");
        }
        assert_eq!(
            kind_of_io(&io::Error::from_raw_os_error(libc::EACCES)),
            FsErrorKind::PermissionDenied
        );
        assert_eq!(
            FsError::new(Path::new("/x"), FsErrorKind::PermissionDenied).to_string(),
            "/x cannot be read: permission denied"
        );
        // Optional reads: missing and dangling are None, everything else still an error.
        let cwd = Path::new("/");
        assert_eq!(
            fs.read_text_optional(Path::new("/etc/missing"), cwd),
            Ok(None)
        );
        assert_eq!(
            fs.read_text_optional(Path::new("/etc/dangling.yaml"), cwd),
            Ok(None)
        );
        assert!(
            fs.read_text_optional(Path::new("/etc/fifo.yaml"), cwd)
                .is_err()
        );
        assert!(fs.read_text_optional(Path::new("/etc/loop1"), cwd).is_err());
        drop(sock);
        drop(d);
    }

    #[test]
    fn host_char_device() {
        let e = RootFs::host()
            .read_text(Path::new("/dev/null"), Path::new("/"))
            .unwrap_err();
        assert_eq!(e.kind, FsErrorKind::CharDevice);
        assert_eq!(
            e.to_string(),
            "/dev/null is a character device, not a regular file"
        );
    }

    #[test]
    fn dir_listing_and_walk_in_lexical_order() {
        let (_d, fs) = setup();
        let r = fs.root().join("etc/kubelet.conf.d");
        fs::create_dir_all(r.join("b.d/z")).unwrap();
        fs::create_dir_all(r.join("a")).unwrap();
        fs::create_dir_all(r.join("B")).unwrap();
        for f in [
            "20.conf",
            "10.conf",
            "a/x.conf",
            "b.d/1.conf",
            "b.d/z/0.conf",
            "B/9.conf",
            "b.conf",
        ] {
            fs::write(r.join(f), "").unwrap();
        }
        symlink("/etc/kubernetes", r.join("c-link")).unwrap();
        let names: Vec<_> = fs
            .read_dir_sorted(Path::new("/etc/kubelet.conf.d"), Path::new("/"))
            .unwrap()
            .into_iter()
            .map(|e| (e.name.into_string().unwrap(), e.kind))
            .collect();
        assert_eq!(
            names,
            vec![
                ("10.conf".into(), FileKind::File),
                ("20.conf".into(), FileKind::File),
                ("B".into(), FileKind::Dir),
                ("a".into(), FileKind::Dir),
                ("b.conf".into(), FileKind::File),
                ("b.d".into(), FileKind::Dir),
                ("c-link".into(), FileKind::Symlink),
            ]
        );
        let walked: Vec<_> = fs
            .walk_files(Path::new("kubelet.conf.d"), Path::new("/etc"))
            .unwrap()
            .into_iter()
            .map(|p| {
                p.strip_prefix("/etc/kubelet.conf.d")
                    .unwrap()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        assert_eq!(
            walked,
            [
                "10.conf",
                "20.conf",
                "B/9.conf",
                "a/x.conf",
                "b.conf",
                "b.d/1.conf",
                "b.d/z/0.conf",
                "c-link"
            ]
        );
        // A symlinked root is lstat'ed, as WalkDir does: one non-directory entry.
        symlink("/etc/kubelet.conf.d", fs.root().join("etc/linked.d")).unwrap();
        assert_eq!(
            fs.walk_files(Path::new("/etc/linked.d"), Path::new("/"))
                .unwrap(),
            vec![PathBuf::from("/etc/linked.d")]
        );
        assert!(fs.is_symlink(Path::new("/etc/linked.d"), Path::new("/")));
        assert!(
            fs.walk_files(Path::new("/etc/none.d"), Path::new("/"))
                .unwrap_err()
                .is_not_found()
        );
        let e = fs
            .read_dir_sorted(Path::new("/var/lib/kubelet/config.yaml"), Path::new("/"))
            .unwrap_err();
        assert_eq!(e.kind, FsErrorKind::NotADirectoryToList);
    }

    /// Reads stay exact with kept listings: a change after a read is seen however small, at
    /// once and at the same size; a snapshot sees its own moment only.
    #[test]
    fn kept_reads_stay_exact() {
        let (_d, fs) = setup();
        let r = fs.root().to_path_buf();
        let cfg = "/var/lib/kubelet/config.yaml";
        fs::write(r.join("var/lib/kubelet/config.yaml"), "value: true \n").unwrap();
        fs::create_dir_all(r.join("etc/d")).unwrap();
        fs::write(r.join("etc/d/a.conf"), "").unwrap();
        // Old enough to be kept.
        std::thread::sleep(fscache::SETTLE * 2);
        let names = |fs: &RootFs| -> Vec<String> {
            fs.read_dir_sorted(Path::new("/etc/d"), Path::new("/"))
                .unwrap()
                .into_iter()
                .map(|e| e.name.into_string().unwrap())
                .collect()
        };
        for round in 0..20 {
            let (old, new) = if round % 2 == 0 {
                ("value: true \n", "value: false\n")
            } else {
                ("value: false\n", "value: true \n")
            };
            assert_eq!(read(&fs, cfg).unwrap(), old, "round {round}");
            assert_eq!(read(&fs, cfg).unwrap(), old, "round {round}, kept");
            // Same size, at once: the read after it sees it.
            fs::write(r.join("var/lib/kubelet/config.yaml"), new).unwrap();
            assert_eq!(read(&fs, cfg).unwrap(), new, "round {round}, changed");
            std::thread::sleep(fscache::SETTLE * 2);
        }
        // Replaced by rename, same size and same mtime: a new inode.
        let t = fs::metadata(r.join("var/lib/kubelet/config.yaml"))
            .unwrap()
            .modified()
            .unwrap();
        fs::write(r.join("var/lib/kubelet/new.yaml"), "value: fals3\n").unwrap();
        fs::File::options()
            .write(true)
            .open(r.join("var/lib/kubelet/new.yaml"))
            .unwrap()
            .set_modified(t)
            .unwrap();
        fs::rename(
            r.join("var/lib/kubelet/new.yaml"),
            r.join("var/lib/kubelet/config.yaml"),
        )
        .unwrap();
        assert_eq!(read(&fs, cfg).unwrap(), "value: fals3\n");
        // Listings: an entry added, removed, replaced by a symlink.
        assert_eq!(names(&fs), ["a.conf"]);
        assert_eq!(names(&fs), ["a.conf"]);
        fs::write(r.join("etc/d/b.conf"), "").unwrap();
        assert_eq!(names(&fs), ["a.conf", "b.conf"]);
        std::thread::sleep(fscache::SETTLE * 2);
        assert_eq!(names(&fs), ["a.conf", "b.conf"]);
        fs::remove_file(r.join("etc/d/a.conf")).unwrap();
        assert_eq!(names(&fs), ["b.conf"]);
        fs::remove_file(r.join("etc/d/b.conf")).unwrap();
        symlink("/dev/null", r.join("etc/d/b.conf")).unwrap();
        let e = fs
            .read_dir_sorted(Path::new("/etc/d"), Path::new("/"))
            .unwrap();
        assert_eq!(e[0].kind, FileKind::Symlink);
        // A snapshot answers from its own moment; a new one sees the change.
        let snap = fs.snapshot();
        assert!(snap.is_symlink(Path::new("/etc/d/b.conf"), Path::new("/")));
        fs::remove_file(r.join("etc/d/b.conf")).unwrap();
        assert!(snap.is_symlink(Path::new("/etc/d/b.conf"), Path::new("/")));
        assert!(
            !fs.snapshot()
                .is_symlink(Path::new("/etc/d/b.conf"), Path::new("/"))
        );
        assert!(!fs.is_symlink(Path::new("/etc/d/b.conf"), Path::new("/")));
    }
}

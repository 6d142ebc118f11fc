//! Why a file could not be read, in plain words.

use std::fmt;
use std::fs::Metadata;
use std::io;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};

use super::MAX_TEXT_BYTES;

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
    pub(super) fn new(path: &Path, kind: FsErrorKind) -> FsError {
        FsError {
            path: path.to_path_buf(),
            kind,
        }
    }
    pub(super) fn io(path: &Path, e: &io::Error) -> FsError {
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

pub(super) fn kind_of_io(e: &io::Error) -> FsErrorKind {
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

pub(super) fn kind_of_meta(m: &Metadata) -> Option<FsErrorKind> {
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
